"""Executing a notebook of the kit with papermill: the task notebooks (one per run, by fslib.batch.worker) and the
analysis notebooks (the reports, by fslib.analysis.reports). A `KernelSession` executes notebooks one after another
in one
kernel (a local batch's workers, a report build's threads: a fresh kernel's imports of torch and transformers
cost more than a small run's training); `execute_notebook` executes one in a kernel of its own.

The kernel is the kit's own interpreter: the kernelspec `fslib` that `make setup` installs into the venv
(`ipykernel install --sys-prefix`), looked up before any user-level or system kernelspec of that name, and where
it is missing or runs another interpreter, a kernelspec written for `sys.executable`. A kernel's connection file
and Unix sockets live in a private folder under the temporary directory (a socket path must stay under about
100 bytes, which a run folder need not), removed when the execution ends; folders of processes that were killed
before they could remove theirs are removed by the next execution on the same host.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from traitlets import default

NOTEBOOKS = Path(os.environ.get("FSLIB_NOTEBOOKS", Path(__file__).resolve().parents[2] / "notebooks"))
KIT_KERNEL = "fslib"  # the kernelspec name the notebooks' metadata and `make setup` use
SCRATCH = re.compile(r"^fslib-kernel-(?P<host>[0-9a-f]{6})-(?P<pid>\d+)-")
NOTEBOOKS_PER_KERNEL = 100  # a KernelSession's kernel is replaced after this many notebooks: a bound on whatever a
# run leaves behind that the reset between notebooks does not free (libraries' own caches)
SAVE_SECONDS = 2.0  # in a KernelSession, papermill writes the executed notebook at most this often while it runs


def _host() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]  # short: socket paths are limited


def kit_kernel_dirs(scratch: Path) -> list[str]:
    """Where the kit's kernelspec is found first: the venv's own (sys.prefix) when it runs this interpreter, else
    a kernelspec for `sys.executable` written under `scratch`."""
    installed = Path(sys.prefix) / "share" / "jupyter" / "kernels"
    try:
        command = json.loads((installed / KIT_KERNEL / "kernel.json").read_text())["argv"][0]
        # jupyter_client runs "python"/"python3" as sys.executable itself
        if command in ("python", "python3") or os.path.abspath(command) == os.path.abspath(sys.executable):
            return [str(installed)]
    except (OSError, ValueError, KeyError, IndexError):
        pass
    from ipykernel.kernelspec import get_kernel_dict

    spec = scratch / "kernels" / KIT_KERNEL
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({**get_kernel_dict(), "display_name": "fslib (this interpreter)"}))
    return [str(spec.parent)]


class IPCKernelManager(AsyncKernelManager):
    """Kernels talk over Unix sockets at a fresh path instead of TCP ports, so that papermill runs started at the
    same time cannot race for the same port (the known clash of parallel papermill runs); their connection file
    and sockets are in `scratch` (set per kernel, see `KernelSession`), and the kit's kernelspec comes
    first."""

    scratch: str = ""

    @default("transport")
    def _default_transport(self) -> str:
        return "ipc"

    @default("connection_file")
    def _default_connection_file(self) -> str:
        return os.path.join(self.scratch, "kernel.json")

    def _ip_default(self) -> str:
        return os.path.join(self.scratch, "k")

    @default("kernel_spec_manager")
    def _kit_kernel_spec_manager(self) -> KernelSpecManager:
        others = KernelSpecManager(data_dir=self.data_dir).kernel_dirs
        return KernelSpecManager(data_dir=self.data_dir, kernel_dirs=kit_kernel_dirs(Path(self.scratch)) + others)

    async def start_kernel(self, **kwargs) -> None:
        await super().start_kernel(**kwargs)
        with _LIVE_LOCK:
            _LIVE.add(self)

    async def _async_interrupt_kernel(self) -> None:
        # jupyter_client interrupts (SIGINT) every kernel it shuts down; one that is still finishing its last
        # message then logs "[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel." though nothing went wrong.
        # papermill shuts a kernel down only after its cells are done (or failed), and a kernel that does not
        # leave after the shutdown request is killed, so the interrupt is skipped there. Interrupts asked for
        # explicitly (nbclient's interrupt_kernel, on a cell timeout) go through the base class unchanged.
        if self.shutting_down:
            return
        await super()._async_interrupt_kernel()

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        with _LIVE_LOCK:
            _LIVE.discard(self)
        await super()._async_cleanup_resources(restart=restart)

    async def cleanup_resources(self, restart: bool = False) -> None:  # nbclient's path after a dead kernel
        await self._async_cleanup_resources(restart=restart)


_LIVE: set[IPCKernelManager] = set()  # kernels started and not yet cleaned up, for kill_kernels
_LIVE_LOCK = threading.Lock()


def kill_kernels() -> int:
    """SIGKILL every kernel this process started that is still up (their notebooks then fail at once with a dead
    kernel): how a build that is told to stop leaves without waiting for its notebooks. Returns how many."""
    with _LIVE_LOCK:
        managers = list(_LIVE)
    killed = 0
    for manager in managers:
        provisioner = manager.provisioner
        process = getattr(provisioner, "process", None)
        if process is None or process.poll() is not None:  # gone already
            continue
        pgid = getattr(provisioner, "pgid", None) or getattr(provisioner, "pid", None)
        if pgid:
            try:
                os.killpg(pgid, signal.SIGKILL)
                killed += 1
            except (ProcessLookupError, PermissionError):
                pass
    return killed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def sweep_leftovers(folder: Path | str | None = None) -> list[Path]:
    """Remove the kernel folders that processes of this host left in the temporary directory when they were
    killed (their owner is gone); returns what was removed."""
    removed = []
    for path in Path(folder or tempfile.gettempdir()).glob("fslib-kernel-*"):
        match = SCRATCH.match(path.name)
        if match and match["host"] == _host() and not _alive(int(match["pid"])) and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


@contextlib.contextmanager
def kernel_scratch() -> Iterator[Path]:
    """A private folder for one kernel's connection file and sockets, removed on the way out."""
    sweep_leftovers()
    scratch = Path(tempfile.mkdtemp(prefix=f"fslib-kernel-{_host()}-{os.getpid()}-"))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def notebook_file(name: str | Path) -> Path:
    """`notebooks/<name>.ipynb`, or `name` itself where it is the path of an .ipynb file (a notebook outside the
    kit: a task's or an analysis registered by a user)."""
    return Path(name) if str(name).endswith(".ipynb") else NOTEBOOKS / f"{name}.ipynb"


def execute_notebook(name: str, executed: Path, parameters: dict, kernel_name: str | None = None) -> Path:
    """Execute `notebook_file(name)` with `parameters` injected after its parameters cell into `executed`
    (kept even when a cell fails, with the error in it; the failure is raised); returns `executed`. The kernel, a
    new one, is the kit's own interpreter unless `kernel_name` names another kernelspec."""
    with KernelSession(kernel_name, notebooks_per_kernel=1) as session:
        return session.execute_notebook(name, executed, parameters)


# ---- one kernel, several notebooks -----------------------------------------------------------------------------
def fresh_namespace() -> None:
    """What a KernelSession runs in its kernel before each notebook: the notebook then starts as in a new kernel,
    with the modules already imported. Figures closed, the namespace and the output history emptied, execution
    counts from 1 again, warnings shown again, the previous run's objects (a model on the GPU too) freed. Global
    settings a notebook changes (matplotlib's rcParams, pandas options) would stay: the kit's notebooks change
    none."""
    from IPython import get_ipython

    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close("all")
    with warnings.catch_warnings():  # entering it makes every module forget which warnings it has shown
        pass
    get_ipython().reset(new_session=True)
    gc.collect()
    # what survives is the kernel's own: modules, their caches. Frozen, the collector no longer walks it (half a
    # million objects once torch and transformers are in: 0.25 s a collection, several per run)
    gc.freeze()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


@functools.cache
def _session_engine() -> str:
    """papermill's nbclient engine on a KernelSession's kernel and client (registered as "fslib-session" on first
    use): both are left running after the notebook, and the kernel's namespace is reset before it."""
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.log import logger

    class SessionClient(PapermillNotebookClient):
        def __init__(self, nb_man, session: KernelSession, **kwargs):
            super().__init__(nb_man, km=session.manager, **kwargs)
            self.kc = session.client  # started with the kernel: nbclient starts neither

        def papermill_execute_cells(self) -> None:
            reply = self.wait_for_reply(self.kc.execute(
                "__import__('fslib.core.execution').core.execution.fresh_namespace()", silent=True,
                store_history=False))
            if reply["content"]["status"] != "ok":
                raise RuntimeError(f"the reused kernel could not be reset: {reply['content'].get('evalue')}")
            # papermill writes the notebook as each cell starts and ends: in runs of seconds, most of its own cost.
            # While the cells run, at most one write every SAVE_SECONDS; the last write, at the end, as always.
            save, last = self.nb_man.save, [0.0]

            def save_now_and_then(**kwargs) -> None:
                if time.monotonic() - last[0] >= SAVE_SECONDS:
                    save(**kwargs)
                    last[0] = time.monotonic()

            self.nb_man.save = save_now_and_then
            try:
                super().papermill_execute_cells()
            finally:
                del self.nb_man.save

    class SessionEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, start_timeout=60,
                                     execution_timeout=None, session=None, **ignored):
            return SessionClient(nb_man, session, kernel_name=kernel_name, log=logger,
                                 log_output=log_output, startup_timeout=start_timeout,
                                 timeout=execution_timeout).execute()

    papermill_engines.register("fslib-session", SessionEngine)
    return "fslib-session"


class KernelSession:
    """One kernel that executes notebooks one after another (`execute_notebook`), each starting from a fresh
    namespace (`fresh_namespace`) with the imports of the notebooks before it still loaded. A notebook that fails
    takes the kernel with it (a failed run may leave anything behind), and after `notebooks_per_kernel` notebooks
    a new kernel starts. The kernel's own output (not a cell's: the kernel's start-up and dying words) goes to
    this process's stderr at the time it is written, so that in a worker it lands in the log of the job that runs.
    Use it as a context manager; one thread at a time."""

    def __init__(self, kernel_name: str | None = None, notebooks_per_kernel: int = NOTEBOOKS_PER_KERNEL):
        if notebooks_per_kernel < 1:
            raise ValueError(f"notebooks_per_kernel must be at least 1, got {notebooks_per_kernel}")
        self.kernel_name = kernel_name or KIT_KERNEL
        self.notebooks_per_kernel = notebooks_per_kernel
        self.manager: IPCKernelManager | None = None
        self.client: AsyncKernelClient | None = None  # the manager's client, its channels started
        self.executed = 0  # notebooks executed by the current kernel
        self.scratch: Path | None = None  # the current kernel's connection file and sockets
        self._scratch: contextlib.ExitStack | None = None

    def __enter__(self) -> KernelSession:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _start(self) -> None:
        self._scratch = contextlib.ExitStack()
        self.scratch = self._scratch.enter_context(kernel_scratch())
        manager = type("IPCKernelManager", (IPCKernelManager,), {"scratch": str(self.scratch)})
        self.manager = manager(kernel_name=self.kernel_name)
        output, kernel_output = os.pipe()
        threading.Thread(target=_relay, args=(output,), daemon=True).start()
        try:
            run_sync(self.manager.start_kernel)(extra_arguments=["--HistoryManager.hist_file=:memory:"],
                                                cwd=str(NOTEBOOKS), stdout=kernel_output, stderr=kernel_output)
        finally:
            os.close(kernel_output)  # the kernel holds its end: the relay ends when the kernel does
        self.client = self.manager.client()
        self.client.allow_stdin = False
        self.client.start_channels()
        run_sync(self.client.wait_for_ready)(timeout=60)
        self.executed = 0

    def execute_notebook(self, name: str, executed: Path, parameters: dict) -> Path:
        """`fslib.core.execution.execute_notebook`, in this session's kernel."""
        import papermill

        try:
            if self.manager is None:
                self._start()
            papermill.execute_notebook(notebook_file(name), executed, parameters=parameters,
                                       kernel_name=self.kernel_name, cwd=NOTEBOOKS, progress_bar=False,
                                       engine_name=_session_engine(), session=self)
        except BaseException:
            self.close()
            raise
        self.executed += 1
        if self.executed >= self.notebooks_per_kernel:
            self.close()
        return executed

    def close(self) -> None:
        """Shut the kernel down (killed if it does not go), remove its scratch folder."""
        manager, client, self.manager, self.client = self.manager, self.client, None, None
        if client is not None:
            client.stop_channels()
        try:
            if manager is not None:
                if run_sync(manager.is_alive)():
                    run_sync(manager.shutdown_kernel)()
                else:  # died (a failed run may have killed it): what it left
                    run_sync(manager.cleanup_resources)()
        finally:
            if self._scratch is not None:
                self._scratch.close()
                self._scratch = self.scratch = None


def _relay(descriptor: int) -> None:
    """Copy what a kernel writes to its stdout and stderr to this process's stderr, until the kernel is gone."""
    with open(descriptor, "rb", buffering=0) as output:
        while chunk := output.read(65536):
            os.write(2, chunk)
