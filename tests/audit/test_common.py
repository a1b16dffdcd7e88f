"""Invariants every metric and entry point must keep (a registry-driven battery).

Shuffling rows, renaming groups and renaming clusters must not change a single number;
duplicating the data with distinct cluster names doubles the evidence (narrower intervals)
but not the values. Run over every metric of ``METRICS`` through ``audit`` and over
``lastmile`` and ``coverage``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from groupwise.audit._audit import audit
from groupwise.audit._coverage import coverage
from groupwise.audit._lastmile import lastmile
from groupwise.audit._metrics import METRICS

NUMBERS = ("value", "ci_low", "ci_high", "gap", "gap_ci_low", "gap_ci_high", "ratio_ci_low", "ratio_ci_high", "p_value",
           "p_adjusted")


def _table(metric: str, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 1500
    speaker = rng.integers(0, 90, n)
    accent = np.array(["a", "b", "c"])[speaker % 3]
    noise = rng.choice(["clean", "hum"], n)
    y_true = rng.integers(0, 2, n)
    flip = rng.random(n) < np.where(accent == "c", 0.3, 0.15)
    y_pred = np.where(flip, 1 - y_true, y_true)
    words = ["the", "cat", "sat", "on", "a", "mat", "dog"]
    ref = [" ".join(rng.choice(words, rng.integers(3, 8))) for _ in range(n)]
    hyp = [r if rng.random() > 0.4 else r.replace("cat", "bat").replace(" on", "") for r in ref]
    return pd.DataFrame({
        "speaker": [f"s{s}" for s in speaker], "accent": accent, "noise": noise, "y_true": y_true, "y_pred": y_pred,
        "yt": rng.normal(0, 1, n), "yp": rng.normal(0, 1, n), "reference": ref, "hypothesis": hyp,
        "num": rng.poisson(1.0, n).astype(float), "den": rng.integers(3, 9, n).astype(float),
    })


def _run(metric: str, frame: pd.DataFrame, **kw):
    cols = {"y_true": "yt", "y_pred": "yp"} if metric in ("mae", "mse") else {}
    return audit(frame, metric=metric, by=["accent", "accent,noise"], cluster="speaker", min_clusters=5, min_examples=10,
                 **cols, **kw)


def _numbers(result) -> dict:
    out = {}
    for g in result.groups:
        key = (g["family"], tuple(sorted(g["group"].items())))
        out[key] = tuple(g[k] for k in NUMBERS)
    return out


def _close(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        for x, y in zip(a[key], b[key]):
            assert (x is None) == (y is None), key
            if x is not None:
                assert x == pytest.approx(y, rel=1e-9, abs=1e-12), key


@pytest.mark.parametrize("metric", sorted(METRICS))
@pytest.mark.parametrize("compare", ["overall", "complement", "best"])
def test_row_order_and_relabelling_change_nothing(metric, compare):
    frame = _table(metric)
    base = _numbers(_run(metric, frame, compare=compare))
    shuffled = frame.sample(frac=1.0, random_state=1).reset_index(drop=True)
    _close(base, _numbers(_run(metric, shuffled, compare=compare)))
    renamed = frame.assign(speaker=frame.speaker.map(lambda s: f"zz-{s[::-1]}"))
    _close(base, _numbers(_run(metric, renamed, compare=compare)))
    # Renaming groups: map the labels back before comparing.
    names = {"a": "q", "b": "p", "c": "o"}
    back = {v: k for k, v in names.items()}
    relabelled = _run(metric, frame.assign(accent=frame.accent.map(names)), compare=compare)
    for g in relabelled.groups:
        g["group"] = {k: back.get(v, v) if k == "accent" else v for k, v in g["group"].items()}
    _close(base, _numbers(relabelled))


@pytest.mark.parametrize("metric", ["wer", "error_rate", "ratio"])
def test_duplicated_speakers_keep_values_and_narrow_intervals(metric):
    frame = _table(metric)
    twice = pd.concat([frame, frame.assign(speaker=frame.speaker + "-copy")], ignore_index=True)
    one, two = _run(metric, frame), _run(metric, twice)
    for g1, g2 in zip(one.groups, two.groups):
        assert g1["value"] == pytest.approx(g2["value"])
        if g1["ci_low"] is not None and g1["value"] > 0:
            assert g2["ci_high"] - g2["ci_low"] < g1["ci_high"] - g1["ci_low"]


def test_lastmile_and_coverage_ignore_row_order_and_names():
    rng = np.random.default_rng(3)
    rows = []
    for g in range(3):
        for s in range(10):
            for u in range(6):
                words = int(rng.integers(4, 12))
                base = rng.poisson(words * 0.1 * (g + 1))
                for cond, k in (("baseline", base), ("hum", base + rng.poisson(words * 0.05))):
                    rows.append({"audio": f"{g}{s}{u}", "accent": f"a{g}", "speaker": f"{g}-{s}", "condition": cond,
                                 "num": k, "den": words})
    frame = pd.DataFrame(rows)

    def numbers(df):
        r = lastmile(df, by="accent", metric="ratio")
        return {g["group"]["accent"]: (g["delta"], g["delta_ci_low"], g["interaction"], g["p_value"])
                for g in r.conditions[0]["groups"]}

    base = numbers(frame)
    shuffled = numbers(frame.sample(frac=1.0, random_state=2))
    renamed = numbers(frame.assign(speaker="x" + frame.speaker))
    for other in (shuffled, renamed):
        for k in base:
            assert other[k] == pytest.approx(base[k])
    cov = lambda df: [(c["cell"], c["half_width"], c["clusters_needed"]) for c in coverage(  # noqa: E731
        df, dims="accent", cluster="speaker", metric="ratio", target_half_width=0.03).cells]
    for a, b in zip(cov(frame), cov(frame.sample(frac=1.0, random_state=4))):
        assert a[0] == b[0] and a[1] == pytest.approx(b[1]) and a[2] == b[2]
