"""The names the README shows keep working after the restructure into subpackages, and are the same objects as
their layer's."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_names_are_importable_and_are_the_layers_own():
    from fslib.analysis import compare_methods
    from fslib.analysis.tables import compare_methods as tables_compare
    from fslib.config import RunConfig
    from fslib.results import load_results
    from fslib.store.config import RunConfig as StoreRunConfig
    from fslib.store.results import load_results as store_load

    assert RunConfig is StoreRunConfig and load_results is store_load and compare_methods is tables_compare


def test_the_engine_and_encoder_names_are_importable():
    code = ("from fslib.runner import run_experiment; from fslib.engine.runner import run_experiment as r\n"
            "from fslib.models import build_offline_encoder; "
            "from fslib.prepare.offline_encoder import build_offline_encoder as b\n"
            "assert run_experiment is r and build_offline_encoder is b")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
