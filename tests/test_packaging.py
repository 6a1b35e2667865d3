"""Packaging: pyproject.toml asks for ranges (a cluster's torch build stays where it is in range), the exact pins
of requirements.lock fall inside them; and saved models are readable as the umask allows (safetensors writes
its weights 0600)."""

import os
import stat
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from fslib.core.files import save_pretrained

ROOT = Path(__file__).resolve().parent.parent


def lock_pins() -> dict[str, str]:
    lines = [line.strip() for line in (ROOT / "requirements.lock").read_text().splitlines()]
    return {canonicalize_name(name): pin for name, pin in
            (line.split("==") for line in lines if line and not line.startswith("#"))}


def test_pyproject_asks_for_ranges_that_the_lock_satisfies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(text) for text in project["dependencies"] +
                    [text for extra in project["optional-dependencies"].values() for text in extra]]
    pins = lock_pins()
    for requirement in requirements:
        assert not [spec for spec in requirement.specifier if spec.operator in ("==", "===")], requirement
        assert pins[canonicalize_name(requirement.name)] in requirement.specifier, requirement
    torch = next(r for r in requirements if r.name == "torch").specifier
    assert "2.6.0" in torch and "2.13.0" in torch and "3.0.0" not in torch and "2.5.1" not in torch


@pytest.mark.parametrize("umask, file_mode, folder_mode", [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)])
def test_saved_models_are_readable_as_the_umask_allows(tmp_path, umask, file_mode, folder_mode):
    from transformers import BertConfig, BertModel

    model = BertModel(BertConfig(vocab_size=16, hidden_size=4, num_hidden_layers=1, num_attention_heads=1,
                                 intermediate_size=4))
    previous = os.umask(umask)
    try:
        save_pretrained(tmp_path / "model", model)
    finally:
        os.umask(previous)
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in (tmp_path / "model").iterdir()}
    assert modes == {"config.json": file_mode, "model.safetensors": file_mode}
    assert stat.S_IMODE((tmp_path / "model").stat().st_mode) == folder_mode
