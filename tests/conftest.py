"""Shared fixtures. The datasets cache goes to a per-session folder so tests never see a stale cache, and the
hub is switched off: everything runs offline on files the kit writes itself."""

import os
import tempfile
from pathlib import Path

_CACHE = tempfile.mkdtemp(prefix="fslib-test-cache-")
os.environ["HF_DATASETS_CACHE"] = _CACHE
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def xtreme_fixtures() -> Path:
    return FIXTURES / "xtreme"


@pytest.fixture(scope="session")
def mini_dir(tmp_path_factory) -> Path:
    from fslib.mini import generate

    return generate(tmp_path_factory.mktemp("mini"), seed=0)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, mini_dir) -> Path:
    from fslib.models import build_tiny_model, mini_corpus

    return build_tiny_model(tmp_path_factory.mktemp("tiny-xlmr"), mini_corpus(mini_dir))


@pytest.fixture(scope="session")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)
