"""fslib.analysis.variance on a hand-made table: scores = 50 + language (0, 2, 4) + run (0, 3) + residual (+-1)."""

import pandas as pd
import pytest

from fslib.analysis.variance import variance_components


def test_components_by_hand():
    # language effects 0, 2, 4 (variance 4), run effects 0, 3, residual pattern +1 -1 / -1 +1 / 0 0
    residual = {("de", 1): 1, ("de", 2): -1, ("fr", 1): -1, ("fr", 2): 1, ("ja", 1): 0, ("ja", 2): 0}
    rows = [{"task": "pos", "method": "ord-FS", "k": 5, "seed": seed, "lang": lang, "split": "test",
             "metric": "f1", "value": 50 + 2 * i + 3 * (seed - 1) + residual[(lang, seed)]}
            for i, lang in enumerate(["de", "fr", "ja"]) for seed in (1, 2)]
    rows += [{**rows[0], "lang": "en", "value": 99.0}]  # the source is left out
    row = variance_components(pd.DataFrame(rows)).iloc[0]
    # MS_resid = 4 / 2 = 2; MS_lang = 2 * (4 + 0 + 4) / 2 = 8 -> (8 - 2) / 2 = 3;
    # MS_seed = 3 * (1.5^2 * 2) / 1 = 13.5 -> (13.5 - 2) / 3
    assert (row["n_langs"], row["n_seeds"]) == (3, 2)
    assert (row["var_resid"], row["var_lang"], row["var_seed"]) == pytest.approx((2, 3, 11.5 / 3))
