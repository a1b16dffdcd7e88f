"""Slice discovery: predicates, the search, confirmation on held-out speakers, the CLI, and
the slices bounty hunter.

The validity simulations use speaker random effects (log-normal, sd 0.35), so utterances
of one speaker are correlated, as in real speech data; the longer versions with their
tables are in ``benchmarks/slices.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import groupwise
from groupwise._expr import parse_group
from groupwise.audit._slices import _feature, slices
from groupwise.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bounty"))
from bounty_helpers import make_program, models  # noqa: E402,F401 - fixture

FEATURES = "accent,gender,noise,snr_db"


def simulate(seed, *, n_speakers=80, per_speaker=25, plant=None, effect=2.0, sd=0.35):
    """Word errors of speakers in four accents, two genders, three noises and an SNR.

    Returns the frame (``errors`` and ``words`` columns, ``expected`` = true error rate
    times words) and the mask of the planted slice (all False without one).
    """
    rng = np.random.default_rng(seed)
    speaker = np.repeat(np.arange(n_speakers), per_speaker)
    n = speaker.size
    frame = pd.DataFrame({
        "speaker": np.char.add("s", speaker.astype(str)),
        "accent": np.array(["a0", "a1", "a2", "a3"])[np.arange(n_speakers) % 4][speaker],
        "gender": rng.choice(["f", "m"], n_speakers)[speaker],
        "noise": rng.choice(["clean", "babble", "hum"], n),
        "snr_db": np.round(rng.uniform(0, 30, n), 1),
    })
    words = rng.integers(5, 20, n)
    rate = 0.1 * np.exp(rng.normal(0, sd, n_speakers) - sd**2 / 2)[speaker]
    planted = np.zeros(n, bool) if plant is None else plant(frame)
    rate = np.where(planted, rate * effect, rate)
    frame["errors"] = rng.binomial(words, np.clip(rate, 0, 1))
    frame["words"] = words
    frame["expected"] = rate * words
    return frame, planted


def run(frame, seed, **options):
    settings = dict(features=FEATURES, metric="ratio", num="errors", den="words", cluster="speaker",
                    max_order=2, top=10, n_boot=200, seed=seed)
    settings.update(options)
    return slices(frame, **settings)


def cli(monkeypatch, capsys, *args):
    """Run the command line in-process: (exit status, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["groupwise", *map(str, args)])
    monkeypatch.setenv("COLUMNS", "200")
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out = capsys.readouterr()
    return code, out.out, out.err


# ---------------------------------------------------------------------------
# predicates
# ---------------------------------------------------------------------------


def test_every_predicate_selects_the_rows_its_expression_selects():
    rng = np.random.default_rng(3)
    n = 500
    snr = rng.normal(10, 5, n)
    snr[:20] = np.nan
    frame = pd.DataFrame({
        "accent": pd.Categorical(rng.choice(["en-us", "hi", 'say "hi"'], n)),
        "snr_db": snr,
        "words": rng.integers(3, 6, n),  # 3 values: one predicate each
        "big": rng.integers(0, 1000, n),
        "flag": rng.random(n) < 0.3,
        "noise level": rng.choice(["low", "high", None], n),
    })
    for column in frame.columns:
        feature = _feature(frame[column], column, bins=4, max_values=50)
        for p, text in enumerate(feature.texts):
            expected = feature.table[:, p][feature.codes]
            got = parse_group(text, columns=frame.columns).evaluate(frame)
            assert np.array_equal(got, expected), text
            assert 0 < expected.sum() < n, text
    quantile = _feature(frame["snr_db"], "snr_db", bins=4, max_values=50)
    assert quantile.kind == "quantile" and len(quantile.texts) == 8  # 4 brackets and 4 thresholds
    assert _feature(frame["words"], "words", bins=4, max_values=50).texts == ["words == 3", "words == 4", "words == 5"]
    assert any(t.startswith("`noise level` ==") for t in _feature(frame["noise level"], "noise level", bins=4, max_values=50).texts)
    few = _feature(frame["big"], "big", bins=4, max_values=2)
    assert few.kind == "quantile"
    limited = _feature(pd.Series(rng.choice(list("abcdef"), n)), "c", bins=4, max_values=2)
    assert len(limited.texts) == 2 and "most frequent" in limited.note


# ---------------------------------------------------------------------------
# validity
# ---------------------------------------------------------------------------


@pytest.mark.slow
def test_null_data_confirms_a_slice_in_at_most_alpha_of_runs():
    """No slice is worse: the discovery half always has a 'worst' slice, the confirmation
    half confirms one in at most alpha of the runs (100 runs: above 10 would be 2.3 binomial
    standard errors above 0.05)."""
    confirmed_runs, discovery_positive = 0, 0
    for rep in range(100):
        frame, _ = simulate(rep)
        result = run(frame, rep)
        confirmed_runs += bool(result.confirmed)
        discovery_positive += bool(result.slices) and result.slices[0]["discovery"]["gap"] > 0
    assert discovery_positive == 100  # what a finder without confirmation would report
    assert confirmed_runs <= 10, confirmed_runs


def _true_gap(frame, mask):
    inside = frame["expected"][mask].sum() / frame["words"][mask].sum()
    outside = frame["expected"][~mask].sum() / frame["words"][~mask].sum()
    return inside - outside


def _jaccard(a, b):
    return (a & b).sum() / (a | b).sum()


@pytest.mark.slow
def test_a_planted_slice_is_recovered_and_confirmed_slices_are_truly_worse():
    """A slice of 1/12 of the utterances (hum at low SNR, across all speakers) with twice
    the error rate."""
    plant = lambda d: (d["noise"] == "hum") & (d["snr_db"] <= 7.5)  # noqa: E731
    recovered, confirmed, truly_worse = 0, 0, 0
    for rep in range(10):
        frame, planted = simulate(1000 + rep, n_speakers=120, plant=plant, effect=2.0)
        result = run(frame, rep)
        masks = [parse_group(s["expression"]).evaluate(frame) for s in result.confirmed]
        recovered += any(_jaccard(m, planted) >= 0.5 for m in masks)
        confirmed += len(masks)
        truly_worse += sum(_true_gap(frame, m) > 0 for m in masks)
    assert recovered >= 8, recovered
    assert truly_worse == confirmed


def test_a_larger_slice_bad_only_through_a_confirmed_refinement_says_so():
    plant = lambda d: (d["noise"] == "hum") & (d["snr_db"] <= 7.5)  # noqa: E731
    frame, planted = simulate(1001, n_speakers=120, plant=plant, effect=2.0)
    result = run(frame, 1)
    carried = {s["expression"]: s["carried_by"] for s in result.confirmed if s["carried_by"]}
    assert carried, [s["expression"] for s in result.confirmed]
    for expression, carriers in carried.items():
        inside = parse_group(expression).evaluate(frame)
        assert planted[inside].mean() < 0.5  # the larger slice is mostly unplanted rows
        assert any(_jaccard(parse_group(c).evaluate(frame), planted) >= 0.5 for c in carriers)
    assert any("mostly through a confirmed refinement" in sentence for sentence in result.findings())


def test_a_planted_slice_is_the_top_discovery_and_is_found_on_tabular_data():
    rng = np.random.default_rng(7)
    n = 6000
    frame = pd.DataFrame({
        "household": rng.integers(0, 2000, n).astype(str),
        "age": rng.integers(18, 90, n),
        "sex": rng.choice(["female", "male"], n),
        "race": rng.choice(["a", "b", "c"], n),
        "y_true": rng.integers(0, 2, n),
    })
    bad = (frame["age"] > 60) & (frame["sex"] == "female")
    flip = rng.random(n) < np.where(bad, 0.35, 0.1)
    frame["y_pred"] = np.where(flip, 1 - frame["y_true"], frame["y_true"])
    result = slices(frame, metric="error_rate", features=["age", "sex", "race"], cluster="household", max_order=2,
                    top=10, n_boot=200, seed=1)
    top = result.confirmed[0]["expression"]
    assert "sex == \"female\"" in top and "age >" in top
    assert _jaccard(parse_group(top).evaluate(frame), bad.to_numpy()) > 0.6
    # Discovery and confirmation never share a household.
    split = result.settings["split"]
    assert split["discovery_clusters"] + split["confirmation_clusters"] == frame["household"].nunique()


def test_the_split_is_by_speaker_and_reproducible():
    frame, _ = simulate(5)
    a, b = run(frame, 3), run(frame, 3)
    da, db = a.to_dict(), b.to_dict()
    da["settings"]["search"].pop("seconds"), db["settings"]["search"].pop("seconds")
    assert da == db
    split = a.settings["split"]
    assert split["discovery_rows"] + split["confirmation_rows"] == len(frame)
    assert split["discovery_rows"] % 25 == 0  # whole speakers (25 utterances each) on each side


def test_children_no_worse_than_a_parent_are_not_candidates_and_near_duplicates_merge():
    frame, _ = simulate(11, n_speakers=120, plant=lambda d: d["noise"] == "hum", effect=2.0)
    # A copy of the noise column under another name gives slices with the very same rows.
    frame["noise_copy"] = frame["noise"]
    result = run(frame, 0, features=FEATURES + ",noise_copy")
    first = result.slices[0]
    assert first["expression"] in ('noise == "hum"', 'noise_copy == "hum"')
    twin = 'noise_copy == "hum"' if first["expression"] == 'noise == "hum"' else 'noise == "hum"'
    assert {"expression": twin, "jaccard": 1.0} == {k: first["merged"][0][k] for k in ("expression", "jaccard")}
    assert result.confirmed and result.confirmed[0]["expression"] == first["expression"]
    # No candidate is a hum slice refined by gender only (hum is bad for both genders).
    for s in result.slices:
        if "hum" in s["expression"] and s["order"] == 2:
            assert s["discovery"]["value"] > first["discovery"]["value"]
    assert any("merged" in sentence for sentence in result.findings())
    # A confirmed refinement of the hum slice names it, and says whether it is worse still.
    assert any(s["within"] for s in result.confirmed)
    assert first["carried_by"] is None  # hum is bad in all its rows
    for s in result.confirmed:
        if s["order"] == 2 and "hum" in s["expression"]:
            assert s["within"] == first["expression"]
            assert s["worse_than_within"] == (s["confirmation"]["value"] > first["confirmation"]["value"])
        if s["order"] == 1:
            assert s["within"] is None


# ---------------------------------------------------------------------------
# outputs: the audit and the bounty accept the expressions as they are
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hyps(tmp_path_factory):
    path = tmp_path_factory.mktemp("slices") / "hyps.csv"
    groupwise.speech_example(4000, n_speakers=160, seed=2).to_csv(path, index=False)
    return path


def test_cli_writes_json_plot_and_csv_and_its_expressions_feed_the_audit(hyps, tmp_path, monkeypatch, capsys):
    code, out, err = cli(monkeypatch, capsys, "slices", hyps, "--features", "accent,noise,gender", "--cluster", "speaker",
                         "--max-order", "2", "--top", "6", "--n-boot", "200", "--json", tmp_path / "s.json",
                         "--plot", tmp_path / "s.png", "--csv", tmp_path / "s.csv")
    assert code == 0, err
    assert "CONFIRMED" in out and "Searched" in out
    data = json.loads((tmp_path / "s.json").read_text())
    assert (tmp_path / "s.png").stat().st_size > 10_000
    assert len(pd.read_csv(tmp_path / "s.csv")) == len(data["slices"])
    card = data["found_by_search"]
    assert card["slices"] and all(s["p_adjusted"] <= 0.05 for s in card["slices"])
    for s in data["slices"]:
        for key in ("n", "clusters", "discovery", "confirmation", "merged", "confirmed"):
            assert key in s
    expression = card["slices"][0]["expression"]
    code, out, err = cli(monkeypatch, capsys, "audit", hyps, "--group", expression, "--cluster", "speaker",
                         "--compare", "complement", "--n-boot", "200", "--json", tmp_path / "a.json")
    assert code == 0, err
    audited = json.loads((tmp_path / "a.json").read_text())
    assert audited["groups"][0]["group"] == {"expression": expression}


def test_expressions_are_accepted_by_bounty_submit(tmp_path, models, monkeypatch, capsys):  # noqa: F811
    program = make_program(tmp_path / "program", models, base_model=models["u"])
    frame = program.frame("train").copy()
    frame["loss"] = program.loss(program.y("train"), program.predict_public("train"))
    frame["one"] = 1.0
    result = slices(frame, features=["u", "v", "c"], metric="ratio", num="loss", den="one", max_order=2, top=5,
                    n_boot=200, min_clusters=30)
    assert result.confirmed
    expression = result.confirmed[0]["expression"]
    assert "v" in parse_group(expression).columns
    code, out, err = cli(monkeypatch, capsys, "bounty", "submit", tmp_path / "program", "--group", expression,
                         "--model", models["truth"], "--team", "auditors")
    assert code in (0, 1), err  # accepted or rejected by the holdout, never refused
    submitted = [r["group"] for r in type(program).load(tmp_path / "program").records if r["type"] == "submission"]
    assert submitted == [{"expr": expression}]


def test_slices_hunter_submits_a_confirmed_slice(tmp_path, models):  # noqa: F811
    from groupwise.bounty import STRATEGIES, hunt

    assert "slices" in STRATEGIES
    program = make_program(tmp_path / "program", models, base_model=models["u"])
    before = program.test_loss()
    results = hunt(program, strategy="slices", budget=1, model="tree", team="slicer")
    assert results and results[0].accepted, results
    group = [r["group"]["expr"] for r in program.records if r["type"] == "submission"][0]
    assert "v" in parse_group(group).columns
    assert program.test_loss() < before - 0.03


# ---------------------------------------------------------------------------
# bad input: one paragraph with the fix, exit 2
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    frame, _ = simulate(0)
    frame["one_value"] = "x"
    frame["empty"] = np.nan
    path = tmp_path_factory.mktemp("bad") / "small.csv"
    frame.to_csv(path, index=False)
    frame.head(200).to_csv(path.with_name("tiny.csv"), index=False)  # 8 speakers
    return path


@pytest.mark.parametrize(("features", "extra", "words"), [
    ("accent,nope", [], "'nope' is not in the data"),
    ("accent,one_value", [], "single value"),
    ("accent,empty", [], "every value is missing"),
    ("accent,noise", ["--max-order", "3"], "--max-order 2 or less"),
    ("accent,speaker", [], "cluster column"),
    ("accent,noise", ["--correction", "none"], "holm"),
    ("accent,noise", ["--metric", "selection_rate"], "no worse direction"),
    ("accent,noise", ["tiny"], "too few to split"),
])
def test_bad_input_is_one_paragraph_with_the_fix_and_exit_2(small, monkeypatch, capsys, features, extra, words):
    path = small
    if extra == ["tiny"]:
        path, extra = small.with_name("tiny.csv"), []
    options = ["--metric", "ratio", "--num", "errors", "--den", "words", "--max-order", "2"]
    code, out, err = cli(monkeypatch, capsys, "slices", path, "--features", features, "--cluster", "speaker",
                         *options, *extra)
    assert code == 2
    assert words in err and "Fix:" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 6
