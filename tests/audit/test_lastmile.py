"""Tests of the last-mile analysis: paired deltas and group-by-condition interactions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from groupwise import InputError
from groupwise.audit._lastmile import lastmile


def paired(seed=0, extra=None, n_groups=5, speakers=12, utts=10):
    """Rows per (utterance, condition); 'hum' adds errors, more for the groups in ``extra``."""
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(n_groups):
        for s in range(speakers):
            effect = np.exp(rng.normal(0, 0.4))
            for u in range(utts):
                words = int(rng.integers(5, 15))
                base_p = min(1, 0.1 * effect)
                hum_p = min(1, base_p + 0.05 + (extra or {}).get(g, 0.0))
                item = f"g{g}s{s}u{u}"
                for cond, p in (("baseline", base_p), ("hum", hum_p)):
                    rows.append({"audio": item, "accent": f"a{g}", "speaker": f"g{g}s{s}", "condition": cond,
                                 "num": rng.binomial(words, p), "den": words})
    return pd.DataFrame(rows)


def test_deltas_and_a_real_interaction():
    df = paired(extra={2: 0.15})
    r = lastmile(df, by="accent", metric="ratio", n_boot=400)
    (c,) = r.conditions
    base = df[df.condition == "baseline"]
    hum = df[df.condition == "hum"]
    assert c["overall"]["delta"] == pytest.approx(hum.num.sum() / hum.den.sum() - base.num.sum() / base.den.sum())
    for g in c["groups"]:
        a = g["group"]["accent"]
        d = hum[hum.accent == a].num.sum() / hum[hum.accent == a].den.sum() - base[base.accent == a].num.sum() / base[base.accent == a].den.sum()
        assert g["delta"] == pytest.approx(d)
        assert g["delta_ci_low"] <= g["delta"] <= g["delta_ci_high"]
        assert g["test"] == "permutation"
    flagged = [g["group"]["accent"] for g in c["groups"] if g["flagged"]]
    assert flagged == ["a2"]
    assert c["groups"][2]["direction"] == "larger"
    sentence = r.findings()[0]
    assert "a2" in sentence and "significantly more than for the rest" in sentence
    assert c["overall"]["p_adjusted"] < 0.05


def test_no_interaction_under_the_null():
    flags = 0
    for seed in range(10):
        r = lastmile(paired(seed=seed), by="accent", metric="ratio", n_boot=200)
        flags += any(g["flagged"] for g in r.conditions[0]["groups"])
    assert flags <= 2


def test_bootstrap_test_and_json(tmp_path):
    r = lastmile(paired(extra={0: 0.2}), by="accent", metric="ratio", n_boot=300, test="bootstrap")
    assert {g["test"] for g in r.conditions[0]["groups"]} == {"bootstrap"}
    assert r.conditions[0]["groups"][0]["flagged"]
    r.to_json(tmp_path / "l.json")
    data = json.loads((tmp_path / "l.json").read_text())
    assert data["baseline"] == "baseline" and data["findings"]
    frame = r.to_frame()
    assert list(frame.label[:2]) == ["overall", "accent=a0"]
    assert r.plot(tmp_path / "l.png") is not None


def test_unpaired_items_are_left_out_and_counted():
    df = paired()
    df = df.drop(df[(df.condition == "hum") & (df.audio == "g0s0u0")].index)
    r = lastmile(df, by="accent", metric="ratio", n_boot=50)
    assert r.settings["items_not_in_every_condition"] == 1


def test_bad_input():
    df = paired()
    with pytest.raises(InputError, match="baseline condition 'clean'"):
        lastmile(df, by="accent", metric="ratio", baseline="clean")
    with pytest.raises(InputError, match="only the baseline"):
        lastmile(df[df.condition == "baseline"], by="accent", metric="ratio")
    with pytest.raises(InputError, match="group column 'nope'"):
        lastmile(df, by="nope", metric="ratio")
    crossed = df.assign(accent=np.where(df.index % 2 == 0, "x", "y"))
    with pytest.raises(InputError, match="nested"):
        lastmile(crossed, by="accent", metric="ratio", test="permutation", n_boot=50)
