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
        assert g["test"] == "cluster-robust t"
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


def test_absolute_scale_and_json(tmp_path):
    r = lastmile(paired(extra={0: 0.2}), by="accent", metric="ratio", scale="absolute")
    assert {g["interaction_scale"] for g in r.conditions[0]["groups"]} == {"difference of deltas"}
    assert r.conditions[0]["groups"][0]["flagged"]
    assert "absolute (points) scale" in r.findings()[0]
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
    with pytest.raises(InputError, match="valid when groups differ in speaker spread"):
        lastmile(df, by="accent", metric="ratio", test="permutation")
    with pytest.raises(InputError, match="'scale' parameter"):
        lastmile(df, by="accent", metric="ratio", scale="log")


def _multiplied(seed, mult=1.5, speakers=12):
    """Every speaker's error rate multiplied by ``mult`` under the condition; accents differ at baseline."""
    rng = np.random.default_rng(seed)
    rows = []
    for g, rate in enumerate([0.05, 0.1, 0.2, 0.35]):
        for s in range(speakers):
            effect = np.exp(rng.normal(0, 0.4) - 0.08)
            for u in range(8):
                words = int(rng.integers(5, 15))
                base = rng.poisson(words * rate * effect)
                extra = rng.poisson(words * rate * effect * (mult - 1))
                for cond, k in (("baseline", base), ("hum", base + extra)):
                    rows.append({"audio": f"{g}-{s}-{u}", "accent": f"a{g}", "speaker": f"{g}-{s}", "condition": cond,
                                 "num": k, "den": words})
    return pd.DataFrame(rows)


def test_a_condition_that_multiplies_everyone_is_an_interaction_only_on_the_absolute_scale():
    rel = abs_ = 0
    for seed in range(6):
        df = _multiplied(seed)
        rel += any(g["flagged"] for g in lastmile(df, by="accent", metric="ratio").conditions[0]["groups"])
        abs_ += any(g["flagged"] for g in lastmile(df, by="accent", metric="ratio", scale="absolute").conditions[0]["groups"])
    assert rel <= 1
    assert abs_ >= 5
    sentence = lastmile(_multiplied(0), by="accent", metric="ratio").findings()[0]
    assert "relative (ratio) scale" in sentence


def test_rows_without_a_group_value_are_in_no_group_comparison():
    df = paired(extra={2: 0.15})
    df["accent"] = df["accent"].astype(object)
    # Speakers of a3 lose their accent: they must not count in "the rest" of any group.
    df.loc[df.accent == "a3", "accent"] = None
    r = lastmile(df, by="accent", metric="ratio")
    labelled = df[df.accent.notna()]
    g0 = r.conditions[0]["groups"][0]
    rest = labelled[labelled.accent != "a0"]
    b, h = rest[rest.condition == "baseline"], rest[rest.condition == "hum"]
    assert g0["rest_delta"] == pytest.approx(h.num.sum() / h.den.sum() - b.num.sum() / b.den.sum())
    assert r.settings["rows_without_group"] == int(df.accent.isna().sum())
    # ... while the overall delta uses every row.
    b, h = df[df.condition == "baseline"], df[df.condition == "hum"]
    assert r.conditions[0]["overall"]["delta"] == pytest.approx(h.num.sum() / h.den.sum() - b.num.sum() / b.den.sum())


def test_interaction_intervals_agree_with_p_values():
    for seed in range(4):
        for scale in ("relative", "absolute"):
            r = lastmile(paired(seed=seed, extra={1: 0.04 * seed}), by="accent", metric="ratio", scale=scale)
            for g in r.conditions[0]["groups"]:
                null = 1.0 if g["interaction_scale"] == "ratio of ratios" else 0.0
                excludes = g["interaction_ci_low"] > null or g["interaction_ci_high"] < null
                assert excludes == (g["p_value"] < 0.05)


def _systems(seed=0, drop=0):
    """Two recognisers on the same utterances; system b is worse for accent a2 only."""
    df = paired(seed=seed)
    base = df[df.condition == "baseline"].copy()
    rng = np.random.default_rng(seed)
    a = base.assign(system="a")
    b = base.assign(system="b", num=base.num + rng.poisson(np.where(base.accent == "a2", 3.0, 0.3)))
    out = pd.concat([a, b], ignore_index=True).drop(columns="condition")
    return out.iloc[drop:] if drop else out


def test_compare_systems_on_precomputed_counts(tmp_path):
    from groupwise import compare

    r = compare(_systems(), condition="system", baseline="a", by="accent", cluster="speaker", item="audio",
                metric="ratio", scale="absolute")
    (c,) = r.conditions
    assert c["condition"] == "b"
    assert [g["group"]["accent"] for g in c["groups"] if g["flagged"] and g["direction"] == "larger"] == ["a2"]


def test_compare_refuses_items_that_do_not_pair_up():
    from groupwise import compare

    with pytest.raises(InputError, match="not present under every system"):
        compare(_systems(drop=3), condition="system", baseline="a", by="accent", cluster="speaker", item="audio",
                metric="ratio")
    r = compare(_systems(drop=3), condition="system", baseline="a", by="accent", cluster="speaker", item="audio",
                metric="ratio", drop_unpaired=True)
    assert r.settings["items_not_in_every_condition"] == 3
    with pytest.raises(InputError, match="baseline 'c'"):
        compare(_systems(), condition="system", baseline="c", by="accent", item="audio", metric="ratio")
    twice = pd.concat([_systems(), _systems()])
    with pytest.raises(InputError, match="repeat an"):
        compare(twice, condition="system", baseline="a", by="accent", item="audio", metric="ratio")


def test_compare_command_and_python_m(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "systems.csv"
    _systems().to_csv(path, index=False)
    out = subprocess.run(
        [sys.executable, "-m", "groupwise", "compare", str(path), "--condition", "system", "--baseline", "a",
         "--by", "accent", "--cluster", "speaker", "--item", "audio", "--metric", "ratio", "--json",
         str(tmp_path / "c.json")], capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads((tmp_path / "c.json").read_text())["conditions"][0]["condition"] == "b"
    bad = subprocess.run([sys.executable, "-m", "groupwise", "compare", str(path), "--condition", "system",
                          "--baseline", "zzz", "--by", "accent", "--item", "audio", "--metric", "ratio"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "zzz" in (bad.stderr + bad.stdout)
