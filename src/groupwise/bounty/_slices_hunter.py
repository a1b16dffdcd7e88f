"""The ``slices`` bounty hunter: slice discovery on the current model's loss.

The hunter treats the current model's per-row loss on the public training split as a
ratio metric (``num`` = loss, ``den`` = 1) and runs :func:`groupwise.slices` over its focus
features: conjunctions of up to three predicates are searched on a random half of the
training rows and the worst are audited on the other half, with Holm correction. Only the
slices confirmed there become candidate groups; each gets the better of a model fitted on
the group and one fitted on all rows, estimated on held-out rows like every hunter's
candidates (see :mod:`groupwise.bounty._hunters`). Rows of a bounty program are taken as
independent (no cluster column), as the checker takes them.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["register", "slices_strategy"]


def _unused(columns: Any, stem: str) -> str:
    name = stem
    while name in columns:
        name = "_" + name
    return name


def slices_strategy(hunter: Any, shortlist: int) -> list[Any]:
    """Candidates from the slices confirmed on held-out training rows (``_Hunter.slices``)."""
    from groupwise._errors import InputError
    from groupwise.audit._slices import slices

    frame = hunter.frame[list(hunter.focus)].copy()
    usable = [name for name in hunter.focus if frame[name].nunique(dropna=True) >= 2]
    if not usable:
        return []
    loss, one = _unused(frame.columns, "loss"), _unused(frame.columns, "one")
    frame[loss] = hunter.loss_f
    frame[one] = 1.0
    half = hunter.n // 2
    min_clusters = max(10, hunter.minimum // 2)
    if half < min_clusters:
        return []
    try:
        found = slices(
            frame, features=usable, metric="ratio", num=loss, den=one, cluster=None,
            max_order=min(3, len(usable)), top=max(4, 2 * shortlist), min_size=max(1, hunter.minimum // 2),
            min_clusters=min_clusters, min_examples=min_clusters, n_boot=200, seed=hunter.seed,
        )
    except InputError:
        return []
    out = []
    for group, mask, columns in hunter.group_masks(found.expressions)[:shortlist]:
        candidate = hunter.for_group(group, mask, columns)
        if candidate is not None:
            candidate.source = f"slices: {candidate.source}"
            out.append(candidate)
    return out


def register() -> None:
    """Add ``slices`` to the hunters' strategies (called once, at the end of ``_hunters``)."""
    hunters = sys.modules["groupwise.bounty._hunters"]
    if "slices" not in hunters.STRATEGIES:
        hunters.STRATEGIES = (*hunters.STRATEGIES, "slices")
    hunters._Hunter.slices = slices_strategy
