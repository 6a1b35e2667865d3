"""Executing a notebook of the kit with papermill: the task notebooks (one per run, by fslib.worker) and the
analysis notebooks (the reports, by fslib.reports) go through `execute_notebook`."""

from __future__ import annotations

import os
import tempfile
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


def execute_notebook(name: str, executed: Path, parameters: dict, kernel_name: str = "python3") -> Path:
    """Execute `notebooks/<name>.ipynb` with `parameters` injected after its parameters cell into `executed`
    (kept even when a cell fails, with the error in it; the failure is raised); returns `executed`."""
    import papermill

    papermill.execute_notebook(NOTEBOOKS / f"{name}.ipynb", executed, parameters=parameters,
                               kernel_name=kernel_name, cwd=NOTEBOOKS, progress_bar=False,
                               kernel_manager_class=IPCKernelManager)
    return executed
