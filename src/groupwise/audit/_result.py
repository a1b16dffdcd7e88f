"""The one result shape of an audit, and its views: dict/JSON, tidy frame, table, plot.

Views only read the numbers :func:`groupwise.audit` computed; none recomputes anything.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

from groupwise import _lazy
from groupwise.audit._base import Result
from groupwise.audit._rows import AuditGroup, AuditOverall

pd = _lazy.module("pandas")

__all__ = ["AuditResult", "group_label", "format_value"]

_PERCENT_METRICS = {"wer", "cer", "error_rate", "fpr", "fnr", "selection_rate"}


def group_label(group: dict[str, Any]) -> str:
    """``{"accent": "hi", "noise": "clean"}`` -> ``'accent=hi, noise=clean'``.

    >>> group_label({"accent": "hi", "noise": "clean"})
    'accent=hi, noise=clean'
    >>> group_label({"expression": "snr_db < 10"})
    'snr_db < 10'
    """
    if list(group) == ["expression"]:
        return str(group["expression"])
    return ", ".join(f"{k}={v}" for k, v in group.items())


def format_value(value: float | None, metric: str) -> str:
    """Format a metric value for people: rates as percentages.

    >>> format_value(0.1234, "wer"), format_value(None, "wer"), format_value(2.5, "mae")
    ('12.3%', '—', '2.5')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if metric in _PERCENT_METRICS:
        return f"{100 * value:.1f}%"
    return f"{value:.4g}"


def _format_gap(value: float | None, metric: str) -> str:
    if value is None:
        return "—"
    if metric in _PERCENT_METRICS:
        return f"{100 * value:+.1f} pt"
    return f"{value:+.4g}"


def _format_p(p: float | None) -> str:
    if p is None:
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


@dataclass
class AuditResult(Result):
    """What :func:`groupwise.audit` found: the overall value and one entry per group.

    Attributes
    ----------
    metric : str
        The metric's short name (``"wer"``, ``"fpr"``, ...).
    metric_description : str
    higher_is_worse : bool or None
    overall : AuditOverall
        ``value``, ``ci_low``, ``ci_high``, ``n``, ``clusters`` and the summed counts.
    groups : list of AuditGroup
        One typed row per group (also readable as a mapping, ``g["gap"]``) with ``family``, ``group``, ``n``, ``clusters``, ``value``,
        ``ci_low``, ``ci_high``, ``gap``, ``gap_ci_low``, ``gap_ci_high``, ``ratio``,
        ``p_value``, ``p_adjusted``, ``flagged``, ``direction`` and ``status``
        (``tested``, ``reference``, ``insufficient``, ``insufficient_reference`` or
        ``undefined``).
    settings : dict
        Every option the audit ran with.
    provenance : dict
        Provenance and protection of every grouping column.
    """

    metric: str
    metric_description: str
    higher_is_worse: bool | None
    overall: AuditOverall
    groups: list[AuditGroup]
    settings: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.overall = AuditOverall.coerce(self.overall)
        self.groups = [AuditGroup.coerce(g) for g in self.groups]

    @property
    def flagged(self) -> list[AuditGroup]:
        """The groups whose gap is significant after correction."""
        return [g for g in self.groups if g["flagged"]]

    @property
    def families(self) -> list[str]:
        """Family names in the order they were given."""
        return list(dict.fromkeys(g["family"] for g in self.groups))

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON-ready Python objects."""
        return {
            "metric": self.metric,
            "metric_description": self.metric_description,
            "higher_is_worse": self.higher_is_worse,
            "overall": self.overall.to_dict(),
            "groups": [g.to_dict() for g in self.groups],
            "settings": dict(self.settings),
            "provenance": dict(self.provenance),
        }


    def to_frame(self) -> pd.DataFrame:
        """A tidy DataFrame: one row per group, one column per number.

        Grouping columns are spread into their own columns (missing where a family does
        not use them) and ``label`` gives a readable name.
        """
        rows = []
        for g in self.groups:
            row = {"family": g["family"], "label": group_label(g["group"])}
            row.update({f"group_{k}" if k in _RESERVED else k: v for k, v in g["group"].items()})
            row.update({k: v for k, v in g.items() if k not in ("family", "group")})
            rows.append(row)
        return pd.DataFrame(rows)

    def findings(self) -> list[str]:
        """Plain-language sentences on the flagged groups and the thin ones."""
        name = self.metric_description
        out = [
            f"Overall {name}: {format_value(self.overall['value'], self.metric)} "
            f"({format_value(self.overall.get('ci_low'), self.metric)} to "
            f"{format_value(self.overall.get('ci_high'), self.metric)}) over "
            f"{self.overall['n']:,} examples from {self.overall['clusters']:,} clusters."
        ]
        compare = str(self.settings.get("compare", "overall"))
        ref = {"overall": "overall", "complement": "the rest", "best": "the best group"}.get(compare, compare)
        correction = {"holm": "Holm", "bh": "Benjamini-Hochberg", "none": "no"}[
            self.settings.get("correction", "holm")
        ]
        for g in self.flagged:
            out.append(
                f"{group_label(g['group'])}: {format_value(g['value'], self.metric)}, "
                f"{_format_gap(g['gap'], self.metric)} against {ref} "
                f"({g['direction']}; adjusted p {_format_p(g['p_adjusted'])}, {correction} correction)."
            )
        if not self.flagged:
            out.append(
                f"No group differs significantly from {ref} after {correction} correction "
                f"at alpha {self.settings.get('alpha', 0.05)}."
            )
        thin = [g for g in self.groups if g["status"] == "insufficient"]
        if thin:
            shown = ", ".join(group_label(g["group"]) for g in thin[:8])
            more = f" and {len(thin) - 8} more" if len(thin) > 8 else ""
            out.append(
                f"Insufficient data for {len(thin)} group(s) (fewer than "
                f"{self.settings.get('min_clusters')} clusters or {self.settings.get('min_examples')} "
                f"examples): {shown}{more}."
            )
        return out

    def render(self, console: Any = None) -> None:
        """Print the result as tables in the terminal (rich)."""
        from rich.console import Console
        from rich.table import Table

        console = console or Console()
        if console.quiet:  # nothing would be shown
            return
        for family in self.families:
            rows = [g for g in self.groups if g["family"] == family]
            table = Table(title=f"{self.metric_description} by {family}", title_justify="left")
            table.add_column("group")
            for column in ("n", "clusters"):
                table.add_column(column, justify="right")
            table.add_column(self.metric, justify="right")
            table.add_column(f"{int(100 * self.settings.get('confidence', 0.95))}% CI", justify="right")
            table.add_column("gap", justify="right")
            table.add_column("p adj.", justify="right")
            table.add_column("status")
            for g in rows:
                status = g["status"]
                if g["flagged"]:
                    status = f"[bold red]FLAGGED ({g['direction']})[/]"
                elif status == "insufficient":
                    status = "[yellow]insufficient data[/]"
                ci = (
                    f"{format_value(g['ci_low'], self.metric)} – {format_value(g['ci_high'], self.metric)}"
                    if g["ci_low"] is not None
                    else "—"
                )
                value = format_value(g["value"], self.metric) if g["status"] != "insufficient" else f"[dim]{format_value(g['value'], self.metric)}[/]"
                table.add_row(
                    group_label(g["group"]),
                    f"{g['n']:,}",
                    f"{g['clusters']:,}",
                    value,
                    ci,
                    _format_gap(g["gap"], self.metric) if g["status"] in ("tested", "reference") else "—",
                    _format_p(g["p_adjusted"]),
                    status,
                )
            console.print(table)
        prov = ", ".join(f"{c}: {p['provenance']}" for c, p in self.provenance.items())
        if prov:
            console.print(f"[dim]Provenance of grouping columns: {prov}[/]")
        for sentence in self.findings():
            console.print(sentence)

    def plot(self, path: str | os.PathLike[str] | None = None, *, ax: Any = None) -> Any:
        """Plot group values with their intervals, one panel per family.

        Parameters
        ----------
        path : path, optional
            Where to save the figure (PNG, SVG or PDF by suffix).
        ax : matplotlib Axes, optional
            Draw everything into this one Axes instead of a new figure.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from groupwise.audit._plot import plot_audit

        return plot_audit(self, path=path, ax=ax)

    def __repr__(self) -> str:
        return (
            f"AuditResult(metric={self.metric!r}, overall={format_value(self.overall['value'], self.metric)}, "
            f"groups={len(self.groups)}, flagged={len(self.flagged)})"
        )


_RESERVED = {
    "family", "label", "n", "clusters", "value", "ci_low", "ci_high", "gap", "gap_ci_low",
    "gap_ci_high", "p_value", "p_adjusted", "flagged", "status", "ratio", "num", "den",
    "direction", "se", "df", "reference_value", "ratio_ci_low", "ratio_ci_high",
    "substitutions", "deletions", "insertions", "hits",
}
