"""Tests of groupwise.coverage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from groupwise import InputError, coverage
from groupwise.audit._stats import Family, analyse


def test_every_combination_is_listed_with_counts(speech_df):
    df = speech_df[~((speech_df.accent == "hi") & (speech_df.noise == "hum"))]
    result = coverage(df, dims="accent,noise", cluster="speaker", metric=None)
    assert len(result.cells) == 14 * 3
    empty = [c for c in result.cells if c["status"] == "empty"]
    assert [c["cell"] for c in empty] == [{"accent": "hi", "noise": "hum"}]
    for c in result.cells:
        sub = df[(df.accent == c["cell"]["accent"]) & (df.noise == c["cell"]["noise"])]
        assert c["n"] == len(sub)
        assert c["clusters"] == sub.speaker.nunique()
    assert result.summary["cells"] == 42


def test_thin_cells_and_more_clusters_without_metric():
    df = pd.DataFrame({"a": ["x"] * 50 + ["y"] * 5, "spk": list(range(50)) + [0, 1, 2, 3, 4]})
    result = coverage(df, dims="a", cluster="spk", metric=None, min_clusters=10, min_examples=10)
    by = {c["cell"]["a"]: c for c in result.cells}
    assert by["x"]["status"] == "ok" and by["x"]["more_clusters"] == 0
    assert by["y"]["status"] == "thin" and by["y"]["more_clusters"] == 5


def test_planned_clusters_reach_the_target_width():
    # Plan on a pilot, then simulate with the planned number of speakers: the bootstrap
    # half-width should be close to the target.
    rng = np.random.default_rng(0)

    def simulate(k):
        effect = np.exp(rng.normal(0, 0.5, k) - 0.125)
        cluster = np.repeat(np.arange(k), 10)
        den = np.full(cluster.size, 10.0)
        num = rng.binomial(10, np.clip(0.2 * effect[cluster], 0, 1)).astype(float)
        return pd.DataFrame({"num": num, "den": den, "spk": cluster, "cell": "c"})

    pilot = simulate(30)
    plan = coverage(pilot, dims="cell", cluster="spk", metric="ratio", target_half_width=0.02)
    needed = plan.cells[0]["clusters_needed"]
    assert plan.cells[0]["variance_source"] == "cell"
    assert needed > 30 and plan.cells[0]["more_clusters"] == needed - 30
    widths = []
    for _ in range(5):
        big = simulate(needed)
        out = analyse(num=big.num.to_numpy(), den=big.den.to_numpy(), cluster=big.spk.to_numpy(), n_clusters=needed,
                      families=[Family("c", np.zeros(len(big), dtype=np.int64), [{"c": 1}])], kind="count")
        g = out["groups"][0]
        widths.append((g["ci_high"] - g["ci_low"]) / 2)
    # The audit's own half-width at the planned size reaches the target (within noise).
    assert 0.017 < np.median(widths) <= 0.0215, widths
    smaller = coverage(simulate(needed - 5), dims="cell", cluster="spk", metric="ratio", target_half_width=0.02)
    assert smaller.cells[0]["more_clusters"] >= 1


def test_detectable_gap_shrinks_with_the_plan_and_covering_set(speech_df):
    result = coverage(speech_df, dims="accent,noise", cluster="speaker", metric="wer", target_half_width=0.02, strength=2)
    for c in result.cells:
        if c["status"] != "empty" and c["more_clusters"]:
            assert c["detectable_gap_planned"] < c["detectable_gap"]
    combos = {(c["cell"]["accent"], c["cell"]["noise"]) for c in result.covering}
    # 2-way over two dimensions is the full factorial.
    assert len(combos) == len(result.cells)
    wide = coverage(speech_df.assign(device=speech_df.speaker.str[-1]), dims="accent,noise,device", metric=None, strength=2)
    assert 0 < len(wide.covering) < len(wide.cells)
    assert {"cell", "in_data"} <= set(wide.covering[0])


def test_empty_cells_use_the_pooled_variance(speech_df):
    df = speech_df[~((speech_df.accent == "hi") & (speech_df.noise == "hum"))]
    result = coverage(df, dims="accent,noise", cluster="speaker", metric="wer", target_half_width=0.05)
    cell = next(c for c in result.cells if c["status"] == "empty")
    assert cell["variance_source"] == "pooled"
    assert cell["clusters_needed"] >= 10 and cell["more_clusters"] == cell["clusters_needed"]
    frame = result.to_frame()
    assert {"accent", "noise", "n", "clusters", "status", "more_clusters"} <= set(frame.columns)


def test_bad_input():
    df = pd.DataFrame({"a": [1, 2], "b": [1, 2]})
    with pytest.raises(InputError, match="dimension column 'c'"):
        coverage(df, dims="a,c", metric=None)
    with pytest.raises(InputError, match="no dimensions"):
        coverage(df, dims="", metric=None)
    big = pd.DataFrame({c: np.arange(1000) for c in "abc"})
    with pytest.raises(InputError, match="combinations"):
        coverage(big, dims="a,b,c", metric=None)
