"""The checker of a bounty program: the only code that looks at the private holdout.

DESIGN.md ("Algorithmic bias bounty") defines it. A proposed pair (g, h) earns the
mass-weighted improvement

    score = mu(g) * (L(f, g) - L(h, g)) = (sum of f's loss on g - sum of h's loss on g) / n

on the holdout of n rows; it is accepted iff ``score >= 3 * eps / 4``. Every check is a
query; after ``floor(2 / eps)`` acceptances or ``max_queries`` queries the holdout is
exhausted and must be refreshed. Only accept or reject ever leaves this module.

The decision rules are pure functions of a :class:`CheckerState`; :class:`Holdout` keeps
what makes them fast: every version's holdout predictions and the table ``S[j, l]`` of
version l's summed loss on group j, grown by one row or column per new group or version, so
a repair scan over all (group, version) pairs is a look-up instead of a pass over the data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from groupwise._errors import GroupwiseError
from groupwise.bounty._loss import Loss

__all__ = ["CheckerState", "Holdout", "HoldoutExhausted", "RepairScanCut", "best_repair", "decide", "first_repair", "run_update"]


# 0.75 * eps is rarely exact in binary; a score that equals it in decimal must pass.
_TOLERANCE = 1e-12


class HoldoutExhausted(GroupwiseError):
    """The holdout has answered all the queries or acceptances it may: refresh it."""

    kind = "exhausted"


class RepairScanCut(Exception):
    """The budget ended before the repair scans after an accepted update were complete.

    The update must then not be published (an unrepaired list could be worse on an earlier
    group than the guarantee allows); ``state`` is the budget with every query spent.
    """

    def __init__(self, state: CheckerState) -> None:
        super().__init__("the query budget ended during a repair scan")
        self.state = state


@dataclass(frozen=True)
class CheckerState:
    """Budget of the checker.

    Examples
    --------
    >>> state = CheckerState(epsilon=0.5, max_queries=10)
    >>> state.threshold, state.max_acceptances
    (0.375, 4)
    >>> accepted, state = decide(state, 0.4)
    >>> accepted, state.queries, state.acceptances
    (True, 1, 1)
    """

    epsilon: float
    max_queries: int
    queries: int = 0
    acceptances: int = 0

    @property
    def threshold(self) -> float:
        return 0.75 * self.epsilon

    @property
    def max_acceptances(self) -> int:
        return math.floor(2 / self.epsilon)

    @property
    def exhausted(self) -> bool:
        return self.queries >= self.max_queries or self.acceptances >= self.max_acceptances

    @property
    def status(self) -> str:
        """``open`` or ``holdout exhausted: refresh it`` with the limit that was reached."""
        if self.acceptances >= self.max_acceptances:
            return f"holdout exhausted: refresh it ({self.acceptances} of {self.max_acceptances} acceptances used)"
        if self.queries >= self.max_queries:
            return f"holdout exhausted: refresh it ({self.queries:,} of {self.max_queries:,} queries used)"
        return "open"

    def to_dict(self) -> dict[str, Any]:
        return {"queries": self.queries, "acceptances": self.acceptances}


def exhausted_error(state: CheckerState) -> HoldoutExhausted:
    return HoldoutExhausted(
        state.status,
        fix="the program owner must refresh the holdout: start a new round (`groupwise bounty init`) with fresh labelled holdout rows and the exported bundle as its base model",
    )


def decide(state: CheckerState, score: float) -> tuple[bool, CheckerState]:
    """One query: accept iff ``score >= 3 eps / 4``. Raises when the holdout is exhausted."""
    if state.exhausted:
        raise exhausted_error(state)
    accepted = bool(score >= state.threshold - _TOLERANCE)
    return accepted, replace(state, queries=state.queries + 1, acceptances=state.acceptances + int(accepted))


def first_repair(state: CheckerState, scores: npt.NDArray[np.float64]) -> tuple[tuple[int, int] | None, CheckerState]:
    """Scan ``scores[j, l]`` (group j, version l) in order; stop at the first acceptance.

    Each pair scanned is one query. Pairs with a NaN score (the current version itself)
    are skipped without a query. When the budget ends mid-scan the state comes back
    exhausted and no repair is returned.

    Examples
    --------
    >>> s = np.array([[0.0, 0.1], [0.5, np.nan]])
    >>> first_repair(CheckerState(0.4, 100), s)
    ((1, 0), CheckerState(epsilon=0.4, max_queries=100, queries=3, acceptances=1))
    """
    flat = scores.ravel()
    valid = np.flatnonzero(~np.isnan(flat))
    hits = valid[flat[valid] >= state.threshold - _TOLERANCE]
    room = min(state.max_queries - state.queries, valid.size)
    if room <= 0 or state.acceptances >= state.max_acceptances:
        return None, state
    if hits.size:
        position = int(np.searchsorted(valid, hits[0]))
        if position < room:
            j, l = np.unravel_index(int(hits[0]), scores.shape)
            return (int(j), int(l)), replace(state, queries=state.queries + position + 1, acceptances=state.acceptances + 1)
    return None, replace(state, queries=state.queries + room)


def best_repair(state: CheckerState, scores: npt.NDArray[np.float64]) -> tuple[tuple[int, int] | None, CheckerState, bool]:
    """Scan ``scores[j, l]`` group by group; repair the first group with a pair that clears
    the bar, pointing to that group's *best* earlier version.

    Pairs are queried in order, one query each (NaN pairs, the current version, are
    skipped); the whole row of the first group with a hit is queried, so choosing its best
    version is paid for. Returns ``(pair, state, cut)``: ``cut`` is True when the budget
    (queries, or the acceptance that a repair needs) ended before the scan could finish,
    in which case no repair is returned and the caller must not publish the list.

    Examples
    --------
    >>> s = np.array([[0.0, 0.0, np.nan], [0.45, 0.5, np.nan]])
    >>> best_repair(CheckerState(0.4, 100), s)
    ((1, 1), CheckerState(epsilon=0.4, max_queries=100, queries=4, acceptances=1), False)
    >>> best_repair(CheckerState(0.4, 3), s)[2]
    True
    """
    flat = scores.ravel()
    valid = np.flatnonzero(~np.isnan(flat))
    room = max(0, state.max_queries - state.queries)
    hits = valid[flat[valid] >= state.threshold - _TOLERANCE]
    if not hits.size:
        if room < valid.size:
            return None, replace(state, queries=state.queries + room), True
        return None, replace(state, queries=state.queries + int(valid.size)), False
    row = int(hits[0]) // scores.shape[1]
    in_row = valid[valid // scores.shape[1] == row]
    cost = int(np.searchsorted(valid, in_row[-1])) + 1
    if cost > room or state.acceptances >= state.max_acceptances:
        return None, replace(state, queries=state.queries + min(cost, room)), True
    values = flat[in_row]
    best = int(in_row[int(np.argmax(values))])  # argmax: the earliest of equal bests
    j, l = np.unravel_index(best, scores.shape)
    return (int(j), int(l)), replace(state, queries=state.queries + cost, acceptances=state.acceptances + 1), False


class Holdout:
    """Holdout labels, every version's holdout predictions and the loss table ``S``.

    Parameters
    ----------
    y : ndarray
        Holdout labels (class indices or numbers).
    loss : Loss
    base_pred : ndarray
        The base model's holdout predictions (version 0).
    """

    def __init__(self, y: npt.NDArray[Any], loss: Loss, base_pred: npt.NDArray[Any]) -> None:
        self.y = np.asarray(y)
        self.loss = loss
        self.n = int(self.y.shape[0])
        self._dtype = np.int16 if loss.name == "zero_one" else np.float32
        self.preds: list[npt.NDArray[Any]] = []
        self.groups: list[npt.NDArray[np.bool_]] = []
        self.group_keys: list[str] = []
        self.losses: list[npt.NDArray[np.float32]] = []
        self._weights: list[npt.NDArray[np.float32]] = []
        self._sums = np.zeros((0, 0))  # S[j, l], always 2-D: groups x versions
        self.add_version(base_pred)

    def coded(self, pred: npt.NDArray[Any]) -> npt.NDArray[Any]:
        # Every version's predictions are kept in one compact type, and a candidate is
        # cast the same way, so all scores compare like with like.
        return np.asarray(pred).astype(self._dtype)

    def _loss(self, pred: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
        return self.loss(self.y, pred).astype(np.float32)

    @property
    def version(self) -> int:
        return len(self.preds) - 1

    def add_version(self, pred: npt.NDArray[Any]) -> None:
        pred = self.coded(pred)
        losses = self._loss(pred)
        # Sums over groups as float32 dot products (BLAS), not boolean indexing: the
        # repair table grows by a whole row or column per acceptance.
        column = np.array([float(np.dot(w, losses)) for w in self._weights], dtype=np.float64)
        self.preds.append(pred)
        self.losses.append(losses)
        self._sums = np.hstack([self._sums, column[:, None]])

    def add_group(self, key: str, mask: npt.NDArray[np.bool_]) -> int:
        """Register an update node's group once; returns its row in ``S``."""
        if key in self.group_keys:
            return self.group_keys.index(key)
        mask = np.asarray(mask, dtype=bool)
        weights = mask.astype(np.float32)
        row = np.array([float(np.dot(weights, losses)) for losses in self.losses], dtype=np.float64)
        self.groups.append(mask)
        self._weights.append(weights)
        self.group_keys.append(key)
        self._sums = np.vstack([self._sums, row[None, :]])
        return len(self.groups) - 1

    def update_pred(self, version: int, mask: npt.NDArray[np.bool_], values: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Holdout predictions of ``if g then values else version``."""
        return np.where(mask, self.coded(values), self.preds[version])

    def score(self, mask: npt.NDArray[np.bool_], candidate: npt.NDArray[Any], *, version: int | None = None) -> float:
        """Mass-weighted improvement of ``candidate`` over ``version`` (default: current) on ``mask``."""
        current = self.losses[self.version if version is None else version]
        weights = np.asarray(mask, dtype=np.float32)
        return (float(np.dot(weights, current)) - float(np.dot(weights, self._loss(self.coded(candidate))))) / self.n

    def repair_scores(self) -> npt.NDArray[np.float64]:
        """``scores[j, l]``: improvement of version l over the current version on group j."""
        scores = (self._sums[:, [-1]] - self._sums) / self.n
        scores[:, -1] = np.nan
        return scores

    def group_loss(self, j: int, version: int) -> float:
        """Mean holdout loss of ``version`` on group ``j`` (for the guarantee checks only)."""
        size = int(self.groups[j].sum())
        return float(self._sums[j, version] / size) if size else float("nan")


def run_update(
    holdout: Holdout, state: CheckerState, key: str, mask: npt.NDArray[np.bool_], candidate: npt.NDArray[Any]
) -> tuple[bool, CheckerState, list[tuple[str, int, int]]]:
    """Check ``(g, h)`` against the current version and, if accepted, apply it and repair.

    This is ``submit`` of DESIGN.md on the holdout alone: one query for the update; when it
    is accepted, a new head ``if g then h``, then repair scans (:func:`best_repair`) over
    every (earlier group, earlier version) pair, restarting after each accepted repair,
    until none is accepted. ``holdout`` is changed only when the update is accepted.

    Returns
    -------
    accepted : bool
    state : CheckerState
    steps : list of (kind, group row, pointer)
        ``("update", j, -1)`` then one ``("repair", j, l)`` per repair node, in order.

    Raises
    ------
    RepairScanCut
        The budget ended before the scans were done. ``holdout`` has been changed and must
        be rebuilt by the caller; the update is not to be published.
    """
    accepted, state = decide(state, holdout.score(mask, candidate))
    if not accepted:
        return False, state, []
    holdout.add_version(holdout.update_pred(holdout.version, mask, candidate))
    steps: list[tuple[str, int, int]] = [("update", holdout.add_group(key, mask), -1)]
    while True:
        pair, state, cut = best_repair(state, holdout.repair_scores())
        if cut:
            raise RepairScanCut(state)
        if pair is None:
            return True, state, steps
        j, pointer = pair
        holdout.add_version(np.where(holdout.groups[j], holdout.preds[pointer], holdout.preds[-1]))
        steps.append(("repair", j, pointer))
