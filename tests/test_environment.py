"""The pins: environment.yml's pip section and requirements.lock list the same exact versions, torch is 2.13.0,
and the installed packages are the pinned ones."""

from importlib.metadata import version
from pathlib import Path

import yaml

ROOT = Path(__file__).parent.parent


def lock_pins() -> dict[str, str]:
    lines = [line.strip() for line in (ROOT / "requirements.lock").read_text().splitlines()]
    return dict(line.split("==") for line in lines if line and not line.startswith("#"))


def test_environment_yml_and_lock_agree():
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in environment["dependencies"]
    pip_section = next(item["pip"] for item in environment["dependencies"] if isinstance(item, dict))
    conda_pins = dict(line.split("==") for line in pip_section if "==" in line)
    assert conda_pins == lock_pins()


def test_every_pin_is_exact_and_torch_is_2_13():
    pins = lock_pins()
    assert pins["torch"] == "2.13.0"
    for package in ("transformers", "datasets", "papermill", "seqeval", "seaborn", "pandas", "jupyterlab"):
        assert package in pins


def test_installed_versions_are_the_pinned_ones():
    for package in ("torch", "transformers", "datasets", "tokenizers", "pandas", "papermill", "seqeval"):
        installed = version(package).split("+")[0]  # torch's local build tag (+cpu)
        assert installed == lock_pins()[package], package
