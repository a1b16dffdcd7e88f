"""The adjusted view refuses what it cannot estimate instead of reporting absurd ratios."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from groupwise._errors import InputError
from groupwise.audit import audit


def _data(seed: int = 0, n: int = 3000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    speaker = rng.integers(0, 120, n)
    words = rng.integers(3, 10, n)
    return pd.DataFrame({
        "num": rng.poisson(words * 0.1), "den": words, "speaker": speaker,
        "accent": np.array(list("abc"))[speaker % 3], "noise": rng.choice(["x", "y", "z"], n),
    })


def test_a_group_without_errors_gets_no_ratio_and_does_not_spoil_the_others():
    df = _data()
    df.loc[df["accent"] == "c", "num"] = 0
    result = audit(df, metric="ratio", by="accent", cluster="speaker", adjust="noise")
    by_group = {g["group"]["accent"]: g for g in result.groups}
    assert by_group["c"]["adjusted_ratio"] is None and by_group["c"]["adjusted_p_value"] is None
    for name in "ab":
        g = by_group[name]
        assert 0.8 < g["adjusted_ratio"] < 1.25  # a and b have the same rate: near 1 against their mean
        assert 0 < g["adjusted_ci_low"] < g["adjusted_ratio"] < g["adjusted_ci_high"] < 2
    assert any("no adjusted ratio for accent=c" in note for note in result.settings["notes"])


def test_a_covariate_level_without_errors_is_refused():
    df = _data(1)
    df.loc[df["noise"] == "z", "num"] = 0
    with pytest.raises(InputError, match="no errors at 'z'") as info:
        audit(df, metric="ratio", by="accent", cluster="speaker", adjust="noise")
    assert "merge 'z'" in str(info.value)


def test_a_fit_that_does_not_converge_is_refused(monkeypatch):
    from statsmodels.genmod.generalized_estimating_equations import GEE

    original = GEE.fit

    def one_iteration(self, *args, **kwargs):  # a real fit, stopped before its criterion can be met
        kwargs["maxiter"], kwargs["ctol"] = 1, 0.0
        return original(self, *args, **kwargs)

    monkeypatch.setattr(GEE, "fit", one_iteration)
    df = _data(2)
    df["num"] = np.where(df["accent"] == "a", df["num"] * 4, df["num"])
    with pytest.raises(InputError, match="did not converge") as info:
        audit(df, metric="ratio", by="accent", cluster="speaker", adjust="noise")
    assert "Fix:" in str(info.value)
