"""Plots of audit results (matplotlib, drawn off-screen).

Each family gets a panel with one row per group: the point value, its interval, the
overall value as a vertical line, flagged groups in red and groups with insufficient data
as hollow grey markers without an interval.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from groupwise.audit._result import group_label

if TYPE_CHECKING:
    from groupwise.audit._result import AuditResult

__all__ = ["plot_audit"]

_PERCENT = {"wer", "cer", "error_rate", "fpr", "fnr", "selection_rate"}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_audit(result: AuditResult, *, path: str | os.PathLike[str] | None = None, ax: Any = None) -> Any:
    """Draw ``result`` (see :meth:`AuditResult.plot`)."""
    plt = _pyplot()
    families = result.families
    scale = 100.0 if result.metric in _PERCENT else 1.0
    unit = " (%)" if scale == 100.0 else ""
    if ax is not None:
        axes = [ax] * len(families)
        fig = ax.figure
    else:
        heights = [max(1.2, 0.32 * sum(g["family"] == f for g in result.groups) + 0.9) for f in families]
        fig, axes_arr = plt.subplots(
            len(families), 1, figsize=(7.5, sum(heights)), squeeze=False,
            gridspec_kw={"height_ratios": heights},
        )
        axes = list(axes_arr[:, 0])
    overall = result.overall.get("value")
    for axis, family in zip(axes, families):
        rows = [g for g in result.groups if g["family"] == family]
        for y, g in enumerate(rows):
            value = g["value"]
            if value is None:
                continue
            if g["status"] == "insufficient":
                axis.plot(value * scale, y, "o", mfc="none", color="0.6")
                continue
            color = "#c0392b" if g["flagged"] else ("#1f6f43" if g["status"] == "reference" else "#2c5d8f")
            if g["ci_low"] is not None and g["ci_high"] is not None:
                axis.plot([g["ci_low"] * scale, g["ci_high"] * scale], [y, y], color=color, lw=2)
            axis.plot(value * scale, y, "o", color=color)
        axis.set_yticks(range(len(rows)))
        axis.set_yticklabels(
            [group_label(g["group"]) + (" (insufficient)" if g["status"] == "insufficient" else "") for g in rows],
            fontsize=8,
        )
        axis.invert_yaxis()
        if overall is not None:
            axis.axvline(overall * scale, color="0.3", ls="--", lw=1)
        axis.set_title(f"{result.metric_description} by {family}", fontsize=10, loc="left")
        axis.set_xlabel(f"{result.metric}{unit}", fontsize=9)
        axis.grid(axis="x", color="0.9")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
