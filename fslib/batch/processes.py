"""The processes of a batch: who a process is (host, pid and start time: a pid alone is reused once the process
is gone), whether it still runs, workers that die with their batch, and the lock that lets one batch at a time
write an output folder.

Everything here is Linux-first: the start time is field 22 of /proc/<pid>/stat (psutil elsewhere, which
ipykernel already needs), and a worker asks the kernel for a signal when its batch dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import ctypes
import json
import os
import shlex
import signal
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

HOST = socket.gethostname()
LOCK_FILE = "batch.lock"  # in an output folder while a batch writes it; says which process holds it
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def start_time(pid: int) -> int | float | None:
    """When process `pid` started (clock ticks since boot on Linux); None if it does not run (or is a zombie,
    which has finished and only waits for its parent to read its exit status)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        if Path("/proc/self/stat").exists():
            return None  # a Linux /proc without this pid: gone
        return _psutil_start_time(pid)
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # the command name may hold spaces and parentheses
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])  # field 22 of the line, counted from the pid


def _psutil_start_time(pid: int) -> float | None:
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return round(process.create_time(), 3)
    except psutil.Error:
        return None


def identity(pid: int | None = None) -> dict:
    """What tells process `pid` (this one by default) from any other, past or future: {"host", "pid", "start"}."""
    pid = os.getpid() if pid is None else pid
    return {"host": HOST, "pid": pid, "start": start_time(pid)}


def runs_here(record: dict) -> bool:
    """Whether the process of `record` (an `identity`) runs on this host: the same pid *and* start time, so a pid
    the system gave to another process since is not it. A record without a start time cannot be told from a
    reused pid and counts as gone."""
    if record.get("host") != HOST or record.get("start") is None:
        return False
    try:
        return start_time(int(record["pid"])) == record["start"]
    except (KeyError, TypeError, ValueError):
        return False


# ---- workers that die with their batch -------------------------------------------------------------------------
def die_with_parent(parent: int, sig: int = signal.SIGTERM) -> None:
    """Have the kernel send `sig` to this process when `parent` (the process that started it) dies, SIGKILL of
    it included; if it died already, before this call, send it now. Linux only (elsewhere: nothing)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the parent died between starting us and the prctl: the signal will not come
        os.kill(os.getpid(), sig)


# ---- one batch per output folder -------------------------------------------------------------------------------
class OutputFolderBusy(RuntimeError):
    """Another batch holds the output folder."""


def lock_holder(folder: Path) -> dict | None:
    """The record of the batch that holds (or last held) `folder`'s lock: host, pid, start, since, command."""
    try:
        return json.loads((folder / LOCK_FILE).read_text())
    except (OSError, ValueError):
        return None


def _describe_holder(folder: Path) -> str:
    holder = lock_holder(folder)
    if not holder:
        return f"a process that has not yet written who it is into {folder / LOCK_FILE}"
    where = "this host" if holder.get("host") == HOST else f"host {holder.get('host')}"
    text = (f"pid {holder.get('pid')} on {where}, since {holder.get('since')}: {holder.get('command')}")
    if holder.get("host") == HOST and not runs_here(holder):
        text += " (that process is gone; a process it started may still hold the lock)"
    return text


@contextmanager
def hold_output_folders(folders: list[Path], command: str | None = None) -> Iterator[None]:
    """Hold the lock of each output folder (`<folder>/batch.lock`, flock through filelock) for the duration, or
    raise OutputFolderBusy naming the batch that holds one. The lock goes with its holder's process, so the lock of
    a batch that was killed (even with SIGKILL) is simply taken over; the file is left in place, saying who held it
    last."""
    from filelock import FileLock, Timeout

    record = {**identity(), "since": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
              "command": command or shlex.join(sys.argv)}

    def say_who(descriptor: int) -> None:
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, (json.dumps(record) + "\n").encode(), 0)

    with ExitStack() as held:
        for folder in sorted({Path(folder).resolve() for folder in folders}):
            folder.mkdir(parents=True, exist_ok=True)
            lock = FileLock(folder / LOCK_FILE, timeout=0, thread_local=False, preserve_lock_file=True,
                            on_acquired=say_who)
            try:
                lock.acquire()
            except Timeout:
                raise OutputFolderBusy(
                    f"output folder {folder} is in use by another fslib batch: {_describe_holder(folder)}. One batch "
                    f"at a time may write an output folder: let that one finish (its runs will count as done), stop "
                    f"it, or give this grid another output_dir") from None
            held.callback(lock.release)
        yield
