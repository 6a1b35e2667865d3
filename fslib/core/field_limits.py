"""What a RunConfig's fields may hold beyond the lower bounds and choices of `fslib.store.config.check_values`: finite
numbers only, upper bounds that name themselves, types for the string and list fields, and language lists without
duplicates (which languages a grid may name: fslib.batch.params).

The upper bounds lie far beyond anything the paper or a sensible ablation uses (XLM-R reads at most 512 tokens;
the paper trains a few epochs at batch 32); they are there to refuse typos such as `epochs: 100000000000` before a
batch spends hours on them. Each error names the field, the value and the limit.
"""

from __future__ import annotations

import math

INTEGER_AT_MOST = {"k": 10_000, "seed": 2**32 - 1, "epochs": 1_000, "target_epochs": 1_000,
                   "train_batch_size": 65_536, "target_batch_size": 65_536, "grad_accum": 65_536,
                   "warmup_steps": 10_000_000, "max_length": 8_192, "doc_stride": 8_192, "max_query_length": 8_192,
                   "oracle_batch_size": 65_536, "select_every_steps": 10_000_000,
                   "similarity_source_batches": 1_000_000, "max_train_examples": 1_000_000_000,
                   "max_eval_examples": 1_000_000_000, "eval_batch_size": 65_536}
NUMBER_AT_MOST = {"learning_rate": 10.0, "adam_epsilon": 1.0, "max_grad_norm": 1e6, "weight_decay": 10.0,
                  "warmup_ratio": 1.0, "alpha": 1.0}
STRING_AT_MOST = {"task": 100, "method": 100, "model": 1_000, "source": 100, "output_dir": 4_096,
                  "device": 100, "notes": 2_000}  # characters
OPTIONAL_STRINGS = {"data_dir": 4_096, "method_label": 100}
LANGUAGE_LISTS = ("languages", "target_langs", "curve_langs")


def check_limits(config) -> None:
    """ValueError naming the field, the value and what is valid, for the first field of `config` (a RunConfig)
    out of its limits."""
    for name, most in INTEGER_AT_MOST.items():
        value = getattr(config, name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value > most):
            raise ValueError(f"{name} must be an integer of at most {most:,}, not {_short(value)}")
    for name, most in NUMBER_AT_MOST.items():
        value = getattr(config, name)
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)
                                  or not math.isfinite(value) or value > most):
            raise ValueError(f"{name} must be a finite number of at most {most:g}, not {_short(value)}")
    for name, most in {**STRING_AT_MOST, **OPTIONAL_STRINGS}.items():
        value = getattr(config, name)
        if value is None and name in OPTIONAL_STRINGS:
            continue
        if not isinstance(value, str) or len(value) > most:
            raise ValueError(f"{name} must be a string of at most {most:,} characters, not {_short(value)}")
    for name in LANGUAGE_LISTS:
        value = getattr(config, name)
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(lang, str) for lang in value):
            raise ValueError(f"{name} must be a list of language codes (or null), not {_short(value)}")
        repeated = sorted({lang for lang in value if value.count(lang) > 1})
        if repeated:
            raise ValueError(f"{name} names {', '.join(repeated)} more than once")
    if config.ud_treebanks is not None and not (isinstance(config.ud_treebanks, dict) and all(
            isinstance(key, str) and isinstance(value, str) for key, value in config.ud_treebanks.items())):
        raise ValueError(f"ud_treebanks must map language codes to treebank names, not {_short(config.ud_treebanks)}")


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} characters)"
