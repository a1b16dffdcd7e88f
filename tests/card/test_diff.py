"""Diffs between versions: real changes found with intervals, no change where there is none."""

from __future__ import annotations

import json
import math

import pytest
from cardfixtures import *  # noqa: F403 - shared session fixtures
from cardutil import run_cli

from groupwise.card import diff
from groupwise.card._diff import INDEPENDENCE_NOTE, _adjust


def _by(d, section, label):
    return next(c for c in d["changes"] if c["section"] == section and c["label"] == label)


def test_a_card_against_itself_changes_nothing(v1_card):
    d = diff(v1_card / "card.json", v1_card / "card.json")
    tested = [c for c in d["changes"] if c["status"] == "tested"]
    assert len(tested) >= 10
    assert all(c["p_value"] == pytest.approx(1.0) and not c["significant"] for c in tested)
    assert all(c["ratio"] == pytest.approx(1.0) for c in tested if c["scale"] == "log")
    assert d["new_groups"] == [] and d["vanished_groups"] == []
    assert d["coverage"]["changed"] == []


def test_versions_with_known_changes(v1_card, v2_card):
    d = diff(v1_card / "card.json", v2_card / "card.json")
    # en-029 was fixed (1.8x -> 1x), vi got worse (1x -> 3.2x): both found, with intervals excluding no change.
    fixed, broke = _by(d, "fairness", "accent=en-029"), _by(d, "fairness", "accent=vi")
    assert fixed["direction"] == "better" and fixed["ratio_ci_high"] < 1
    assert broke["direction"] == "worse" and broke["ratio_ci_low"] > 1
    assert broke["new"] > broke["old"] and broke["change"] == pytest.approx(broke["new"] - broke["old"])
    # Unchanged accents: no flag (a test that could fail: en-us and fr kept their effect).
    assert not _by(d, "fairness", "accent=en-us")["significant"]
    assert not _by(d, "fairness", "accent=fr")["significant"]
    # Insufficient cells are listed but not tested.
    thin = _by(d, "fairness", "gender=nonbinary")
    assert thin["p_value"] is None and thin["status"].startswith("not tested")
    assert [g["label"] for g in d["new_groups"] if g["section"] == "fairness"] == ["accent=zh"]
    assert d["vanished_groups"] == []
    assert sorted(d["coverage"]["new_cells"]) == ["accent=zh, noise=babble", "accent=zh, noise=clean", "accent=zh, noise=hum"]
    assert d["method"]["independence"] == INDEPENDENCE_NOTE
    # The robustness comparison exists for every accent and condition in both cards.
    assert {c["label"] for c in d["changes"] if c["section"] == "robustness"} == {
        "accent=en-us", "accent=en-gb", "accent=en-029", "accent=hi", "accent=vi", "accent=fr"}


def test_interval_and_test_agree(v1_card, v2_card):
    d = diff(v1_card / "card.json", v2_card / "card.json", correction="none", confidence=0.95)
    for c in d["changes"]:
        if c["status"] != "tested":
            continue
        if c["scale"] == "log":
            excludes = c["ratio_ci_low"] > 1 or c["ratio_ci_high"] < 1
        else:
            excludes = c["change_ci_low"] > 0 or c["change_ci_high"] < 0
        assert excludes == (c["p_value"] < 0.05), c


def test_change_se_adds_the_two_variances(v1_card, v2_card):
    a = json.loads((v1_card / "card.json").read_text())
    b = json.loads((v2_card / "card.json").read_text())
    d = diff(a, b)
    c = _by(d, "fairness", "accent=hi")
    sa = next(g for g in a["fairness"]["groups"] if g["label"] == "accent=hi")["summary"]["se_log"]
    sb = next(g for g in b["fairness"]["groups"] if g["label"] == "accent=hi")["summary"]["se_log"]
    assert c["se"] == pytest.approx(math.hypot(sa, sb))


def test_holm_and_bh():
    assert _adjust([0.01, 0.02, 0.5], "holm") == pytest.approx([0.03, 0.04, 0.5])
    assert _adjust([0.01, 0.02, 0.5], "bh") == pytest.approx([0.03, 0.03, 0.5])
    assert _adjust([0.2], "none") == [0.2]


def test_diff_cli_writes_json_and_html(v1_card, v2_card, tmp_path):
    res = run_cli("card", "diff", str(v1_card / "card.json"), str(v2_card / "card.json"), "-o", str(tmp_path / "d"), "--correction", "bh")
    assert res.returncode == 0, res.stderr
    assert "accent=vi" in res.stdout and "worse" in res.stdout
    d = json.loads((tmp_path / "d" / "diff.json").read_text())
    assert d["method"]["correction"] == "bh" and d["summary"]["worse"] >= 1 and d["summary"]["better"] >= 1
    assert "independent test sets" in (tmp_path / "d" / "diff.html").read_text()


@pytest.mark.slow
def test_no_change_is_rarely_flagged():
    """Two independent test sets of one unchanged service: the per-change test holds its level.

    Measured with 100 pairs (8 and 20 speakers per accent): 0.045 and 0.037 of 600 tests
    rejected at 0.05 uncorrected, family-wise 0.04. Here 25 pairs with 8 speakers per accent.
    """
    import yaml

    import groupwise
    from groupwise.card._about import EXAMPLE_YAML, validate_about
    from groupwise.card._build import assemble

    about = validate_about(yaml.safe_load(EXAMPLE_YAML))
    accents = ("en-us", "en-gb", "en-029", "hi", "vi", "fr")

    def card(seed):
        df = groupwise.speech_example(1200, n_speakers=48, accents=accents, seed=seed)
        result = groupwise.audit(df, by="accent", cluster="speaker", n_boot=400, seed=seed, min_clusters=5)
        return assemble(about, json.loads(result.to_json()))

    p = []
    for r in range(25):
        d = diff(card(5000 + 2 * r), card(5001 + 2 * r), correction="none")
        p += [c["p_value"] for c in d["changes"] if c["p_value"] is not None]
    assert len(p) == 150
    rate = sum(x < 0.05 for x in p) / len(p)
    assert rate <= 0.09, rate


def test_tabular_cards_diff(tabular, tmp_path):
    """Two versions of a tabular model: expression groups and a complement reference diff like any other."""
    import groupwise
    from groupwise.card import build

    df = groupwise.tabular_example(3000, seed=1)
    groupwise.audit(
        df, metric="fnr", by=["sex", "race"], groups=["age >= 60"], cluster="household", compare="complement",
        provenance={"sex": "self_reported", "race": "self_reported"}, n_boot=300,
    ).to_json(tmp_path / "audit.json")
    old = build(tabular / "card.yaml", tabular / "audit.json", out=tmp_path / "old")
    new = build(tabular / "card.yaml", tmp_path / "audit.json", out=tmp_path / "new")
    d = diff(old / "card.json", new / "card.json")
    labels = {c["label"] for c in d["changes"]}
    assert "age >= 60" in labels and "sex=female" in labels
    assert d["summary"]["tested"] >= 5 and d["coverage"] is None
    res = run_cli("card", "diff", str(old / "card.json"), str(new / "card.json"), "-o", str(tmp_path / "d"))
    assert res.returncode == 0, res.stderr
