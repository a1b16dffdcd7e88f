"""Repairs point to the best earlier version, and a budget that ends during a repair scan
never leaves an unrepaired list published."""

from __future__ import annotations

import numpy as np
import pytest

from groupwise.bounty import Loss
from groupwise.bounty._checker import CheckerState, Holdout, RepairScanCut, best_repair, first_repair, run_update

from bounty_helpers import make_program, models  # noqa: F401 - fixtures


def _holdout_with_two_good_versions() -> Holdout:
    """Ten rows labelled 1; group g = rows 0-4. Version 1 is right on rows 0-3, version 2 on
    rows 0-4, version 3 (current) on none: both earlier versions clear the bar on g, and
    version 2 is the better one."""
    y = np.ones(10, dtype=np.int64)
    holdout = Holdout(y, Loss("zero_one"), np.zeros(10, dtype=np.int64))
    for right in (4, 5, 0):
        holdout.add_version(np.r_[np.ones(right), np.zeros(10 - right)].astype(np.int64))
    holdout.add_group("g", np.arange(10) < 5)
    return holdout


def test_a_repair_points_to_the_best_earlier_version_that_clears_the_bar():
    holdout = _holdout_with_two_good_versions()
    state = CheckerState(epsilon=0.4, max_queries=100)
    scores = holdout.repair_scores()
    assert scores[0, 1] >= state.threshold and scores[0, 2] > scores[0, 1]
    assert first_repair(state, scores)[0] == (0, 1)  # the first: what it did before
    pair, after, cut = best_repair(state, scores)
    assert pair == (0, 2) and not cut
    assert after.queries == 3 and after.acceptances == 1  # the whole row was queried


def test_a_scan_cut_by_the_budget_raises_instead_of_publishing():
    holdout = _holdout_with_two_good_versions()
    # An update on rows 5-9 that is right there: accepted, then a scan of 1 group x 4 versions.
    mask = np.arange(10) >= 5
    with pytest.raises(RepairScanCut) as caught:
        run_update(holdout, CheckerState(epsilon=0.4, max_queries=3), "h", mask, np.ones(10, dtype=np.int64))
    assert caught.value.state.queries == 3 and caught.value.state.exhausted
    fresh = _holdout_with_two_good_versions()
    accepted, state, steps = run_update(fresh, CheckerState(epsilon=0.4, max_queries=100), "h", mask, np.ones(10, dtype=np.int64))
    assert accepted and steps[0][0] == "update" and steps[1] == ("repair", 0, 2)


def test_the_budget_ending_in_a_repair_scan_publishes_nothing(tmp_path, models):
    program = make_program(tmp_path / "p", models, max_queries=3)
    first = program.submit(team="a", group="u > 0.5", model=models["u"])
    assert first.accepted and program.state.queries == 2  # the update and a scan of one pair
    # Accepted on its group but worse on u > 0.5: it needs a repair scan the budget cannot pay.
    second = program.submit(team="b", group="v > 0.7", model=models["v"])
    assert not second.accepted and second.reason_kind == "exhausted"
    assert "repair scan" in second.reason and "holdout exhausted: refresh it" in second.reason
    assert program.version == 1 and program.state.exhausted
    assert program.replay() == []
