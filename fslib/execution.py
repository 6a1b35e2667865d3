"""Executing a notebook of the kit with papermill: the task notebooks (one per run, by fslib.worker) and the
analysis notebooks (the reports, by fslib.reports) go through `execute_notebook`."""

from __future__ import annotations

import os
import signal
import tempfile
import threading
import uuid
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from traitlets import default

NOTEBOOKS = Path(os.environ.get("FSLIB_NOTEBOOKS", Path(__file__).resolve().parent.parent / "notebooks"))


class IPCKernelManager(AsyncKernelManager):
    """Kernels talk over Unix sockets at a fresh path instead of TCP ports, so that papermill runs started at the
    same time cannot race for the same port (the known clash of parallel papermill runs)."""

    @default("transport")
    def _default_transport(self) -> str:
        return "ipc"

    def _ip_default(self) -> str:
        return os.path.join(tempfile.gettempdir(), f"fslib-kernel-{uuid.uuid4().hex[:12]}")

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


def execute_notebook(name: str, executed: Path, parameters: dict, kernel_name: str = "python3") -> Path:
    """Execute `notebooks/<name>.ipynb` with `parameters` injected after its parameters cell into `executed`
    (kept even when a cell fails, with the error in it; the failure is raised); returns `executed`."""
    import papermill

    papermill.execute_notebook(NOTEBOOKS / f"{name}.ipynb", executed, parameters=parameters,
                               kernel_name=kernel_name, cwd=NOTEBOOKS, progress_bar=False,
                               kernel_manager_class=IPCKernelManager)
    return executed
