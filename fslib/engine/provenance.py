"""A run's provenance record (fslib.store.provenance), completed with what only the engine knows: the device it
ran on (GPU name and CUDA version, or the CPU model), the hub revision of a hub model (the commit its files were
downloaded at) and of the hub datasets a run loaded (read from datasets' cache folders, which name it)."""

from __future__ import annotations

import platform
from pathlib import Path

import torch
from datasets import Dataset
from transformers import AutoConfig

from fslib.store.provenance import UNKNOWN, base_record


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux), else what `platform` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or UNKNOWN


def device_record(device: torch.device) -> dict:
    """The device by name: a GPU's name and CUDA version, or the CPU's model (with torch's thread count)."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return {"type": "cuda", "name": torch.cuda.get_device_name(index), "cuda": torch.version.cuda,
                "cudnn": torch.backends.cudnn.version()}
    return {"type": device.type, "name": cpu_model(), "threads": torch.get_num_threads()}


def hub_revision(model: str) -> str | None:
    """The commit of a hub model's files as cached (None for a local folder, or where the cache does not say)."""
    if Path(model).expanduser().is_dir():
        return None
    try:
        return getattr(AutoConfig.from_pretrained(model), "_commit_hash", None)
    except (OSError, ValueError):
        return None


def dataset_revisions(datasets: list[Dataset]) -> list[str]:
    """The cache folders of hub datasets (`<owner>___<name>/<config>/<version>/<revision>`), which name the
    revision they were downloaded at."""
    folders = {Path(entry["filename"]).parent for dataset in datasets for entry in dataset.cache_files}
    return sorted("/".join(folder.parts[-4:]) for folder in folders)


def run_provenance(config, device: torch.device, loaded: list[Dataset]) -> dict:
    """The provenance record of a run of `config` (resolved) on `device` that loaded the datasets `loaded`."""
    record = base_record(config)
    record["device"] = device_record(device)
    revision = hub_revision(config.model)
    if revision:
        record["model"]["revision"] = revision
    if config.source == "hub":
        record["data"]["revision"] = "; ".join(dataset_revisions(loaded)) or UNKNOWN
    return record
