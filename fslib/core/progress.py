"""Progress bars for the long steps (tokenisation is datasets' own): widgets when a researcher runs a notebook
in JupyterLab; plain text, updated at most every TQDM_MININTERVAL seconds, when `fslib batch` executes the
notebook (FSLIB_PROGRESS=text), because there every widget update is one more message for papermill to store
and save, which slowed small runs down twofold."""

import os

if os.environ.get("FSLIB_PROGRESS") == "text":
    from tqdm.std import tqdm
else:
    from tqdm.auto import tqdm

__all__ = ["tqdm"]
