"""A small simulated competition on Adult with fixed seeds: the guarantees hold."""

from __future__ import annotations

from groupwise.bounty._simulate import simulate_competition


def test_simulated_competition_keeps_the_guarantees(tmp_path):
    out = simulate_competition(tmp_path / "adult", rows=8000, rounds=1, budget=2, epsilon=0.02, seed=0, model="tree")
    program = out["program"]
    assert out["accepted_submissions"] >= 1
    assert out["acceptances"] <= out["max_acceptances"]
    assert out["test_loss_never_rises"]
    assert out["groups_within_bound"]
    assert out["trajectory"]["test_loss"].iloc[-1] < out["trajectory"]["test_loss"].iloc[0]
    vandal = out["submissions"][out["submissions"]["team"] == "vandals"]
    assert set(vandal["reason_kind"]) == {"group-size", "input", "check"}
    assert set(out["usage"].columns) >= {"sex", "age", "occupation"}
    assert program.replay() == []
