"""The automated hunters: each strategy finds a planted weakness and gets it accepted.

The synthetic data of ``bounty_helpers`` has y = (u > 0.5) or (v > 0.8). A base model that
predicts ``u > 0.5`` is wrong exactly where u <= 0.5 and v > 0.8 (10% of the rows); one
that predicts ``v > 0.8`` is wrong where u > 0.5 and v <= 0.8 (40%).
"""

from __future__ import annotations

import numpy as np
import pytest

from groupwise._errors import InputError
from groupwise._expr import parse_group
from groupwise.bounty import STRATEGIES, Feature, Program, hunt
from groupwise.bounty._cli import feature_usage
from groupwise.bounty._hunters import _positive_region, _render_path

from bounty_helpers import EPS, make_program, models  # noqa: F401 - fixtures


def _groups(program: Program, team: str, decision: str | None = None) -> list[dict]:
    return [r["group"] for r in program.records
            if r["type"] == "submission" and r["team"] == team and (decision is None or r["decision"] == decision)]


@pytest.fixture
def blind_to_v(tmp_path, models):
    """Base model ``u > 0.5``: it misses the v > 0.8 rule."""
    return make_program(tmp_path / "blind_to_v", models, base_model=models["u"])


def test_demographic_hunter_finds_the_planted_group_from_its_own_features(blind_to_v):
    program = blind_to_v
    before = program.test_loss()
    results = hunt(program, strategy="demographic", features=["v", "c"], budget=3, model="tree", team="demo")
    assert 1 <= len(results) <= 3
    assert results[0].accepted, results[0].reason
    accepted = [g["expr"] for g in _groups(program, "demo", "accepted")]
    # Every group is built from the focus features only, and the accepted one is about v.
    assert all(set(parse_group(g["expr"]).columns) <= {"v", "c"} for g in _groups(program, "demo"))
    assert any("v" in parse_group(g).columns for g in accepted)
    assert program.test_loss() < before - 0.05
    usage = feature_usage(program)
    assert usage.loc["demo", "v"] >= 1 and usage.loc["demo", "u"] == 0


def test_tree_hunter_turns_a_high_error_leaf_into_an_accepted_group(tmp_path, models):
    program = make_program(tmp_path / "blind_to_u", models, base_model=models["v"])
    before = program.test_loss()
    results = hunt(program, strategy="tree", budget=2, model="tree", team="tree")
    assert results and results[0].accepted, results
    group = _groups(program, "tree", "accepted")[0]["expr"]
    assert "u" in parse_group(group).columns
    # The group is the high-error region: most of its rows have u > 0.5 and v <= 0.8.
    frame = program.frame("test")
    mask = parse_group(group).evaluate(frame)
    assert ((frame["u"] > 0.5) & (frame["v"] <= 0.8))[mask].mean() > 0.8
    assert program.test_loss() < before - 0.2


@pytest.mark.parametrize("certificate", ["model", "expression"])
def test_csc_certificate_is_accepted_as_a_group_model_or_an_expression(blind_to_v, certificate):
    program = blind_to_v
    before = program.test_loss()
    results = hunt(program, strategy="csc", budget=1, model="tree", certificate=certificate, team="csc")
    assert len(results) == 1 and results[0].accepted, results
    group = _groups(program, "csc")[0]
    if certificate == "model":
        assert "model" in group and "expr" not in group
    else:
        assert set(parse_group(group["expr"]).columns) & {"u", "v"}
    # The certificate covers the planted region: where the base model is wrong.
    ref = program.groups()[0]
    mask = program._mask(ref, "test")
    frame = program.frame("test")
    planted = ((frame["u"] <= 0.5) & (frame["v"] > 0.8)).to_numpy()
    assert mask[planted].mean() > 0.7
    assert program.test_loss() < before - 0.05


def test_no_weakness_means_no_submission_and_no_query(tmp_path, models):
    program = make_program(tmp_path / "perfect", models, base_model=models["truth"])
    for strategy in STRATEGIES:
        assert hunt(program, strategy=strategy, budget=2, model="tree") == []
    assert program.state.queries == 0 and program.version == 0


def test_the_margin_and_the_budget_are_respected(blind_to_v):
    program = blind_to_v
    assert hunt(program, strategy="demographic", budget=2, model="tree", margin=1000.0) == []
    assert program.state.queries == 0
    results = hunt(program, strategy="demographic", budget=1, model="tree")
    assert len(results) == 1
    with pytest.raises(InputError, match="The .certificate. parameter of hunt must be one of"):
        hunt(program, strategy="csc", certificate="pickle")


def test_hunters_look_only_at_the_public_training_split(blind_to_v, monkeypatch):
    """Estimates come from the public train split: never the holdout, nor the public test split."""
    seen: list[str] = []
    submitting = [False]
    for name in ("X", "y", "frame", "predict_public"):
        original = getattr(Program, name)

        def spy(self, split, *args, _original=original, **kwargs):
            if not submitting[0]:
                seen.append(split)
            return _original(self, split, *args, **kwargs)

        monkeypatch.setattr(Program, name, spy)
    submit = Program.submit

    def checked_submit(self, **kwargs):
        submitting[0] = True
        try:
            return submit(self, **kwargs)
        finally:
            submitting[0] = False

    monkeypatch.setattr(Program, "submit", checked_submit)
    accepted = 0
    for strategy in STRATEGIES:
        accepted += sum(r.accepted for r in hunt(blind_to_v, strategy=strategy, budget=1, model="tree"))
    assert accepted >= 1
    assert set(seen) == {"train"}


def test_tree_paths_render_as_simplified_expressions():
    features = [Feature("snr db", "numeric"), Feature("accent", "categorical", ("a", "b", "c", "d"))]
    path = [(0, True, 10.0), (0, False, 2.5), (0, True, 7.25), (1, False, 0.5), (1, True, 2.5)]
    text = _render_path(path, features)
    assert text == '`snr db` > 2.5 and `snr db` <= 7.25 and accent in ["b", "c"]'
    assert parse_group(text).columns == ("snr db", "accent")
    assert _render_path([(1, False, 0.5)], features) == 'accent != "a"'
    assert _render_path([(1, True, 0.5)], features) == 'accent == "a"'


def test_positive_region_is_the_union_of_paths_then_each_path():
    from sklearn.tree import DecisionTreeRegressor

    rng = np.random.default_rng(0)
    X = rng.random((2000, 2))
    d = np.where((X[:, 0] > 0.7) | (X[:, 1] < 0.2), 1.0, -1.0)
    reg = DecisionTreeRegressor(max_depth=2, random_state=0).fit(X, d)
    features = [Feature("x", "numeric"), Feature("y", "numeric")]
    regions = _positive_region(reg, features)
    assert len(regions) == 3 and " or " in regions[0]
    import pandas as pd

    frame = pd.DataFrame({"x": X[:, 0], "y": X[:, 1]})
    union = parse_group(regions[0]).evaluate(frame)
    assert (union == (d > 0)).mean() > 0.97
    assert np.array_equal(union, parse_group(regions[1]).evaluate(frame) | parse_group(regions[2]).evaluate(frame))
    everything = DecisionTreeRegressor(max_depth=1).fit(X, np.ones(2000) + X[:, 0])
    assert _positive_region(everything, features) == []


def test_a_small_competition_has_several_teams_accepted(tmp_path):
    from groupwise.bounty._simulate import simulate_competition

    out = simulate_competition(tmp_path / "adult", rows=12000, rounds=1, budget=1, epsilon=0.01, seed=0, model="tree")
    assert len(out["accepting_teams"]) >= 2, out["submissions"][["team", "group", "decision"]]
    assert out["test_loss_never_rises"] and out["groups_within_bound"] and out["bad_submissions_rejected"]
    usage = out["usage_accepted"]
    assert (usage.sum(axis=1) > 0).sum() >= 2 and (usage.sum(axis=0) > 0).sum() >= 3
    assert out["program"].replay() == []
