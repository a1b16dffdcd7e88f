"""The last-mile test: does a customer's condition raise the error more for some groups?

The same examples (utterances) are measured at baseline and under each condition (a hum
at a fixed frequency, a phone line). For every condition and group this reports the value
at baseline and under the condition, the *delta* (condition minus baseline) with a paired
cluster-bootstrap interval, and the *interaction*: the group's delta minus the delta of
the rest of the data, with a corrected test. The interaction answers the customer's real
question: not "does WER go up?" but "does it go up more for some accents than for others?"

Pairing comes from the joint cluster bootstrap: one weight per speaker per replicate
applies to that speaker's rows under every condition, so the baseline and condition
values of a replicate come from the same speakers and their correlation cancels out of
the delta. Interactions are tested by shuffling groups among speakers where speakers are
nested in groups (exact), and otherwise with the bootstrap standard error and Student t.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from scipy import stats as sstats

from groupwise._errors import InputError
from groupwise._io import check_columns, check_scalar, read_table, split_names
from groupwise.audit._metrics import MetricColumns, contributions, get_metric
from groupwise._provenance import Provenance
from groupwise.audit._result import format_value, group_label
from groupwise.audit._stats import _cell_sums, _percentile_ci, _ratio, _replicate_sums, adjust, permutation_p

__all__ = ["lastmile", "LastMileResult"]

_PERCENT = {"wer", "cer", "error_rate", "fpr", "fnr", "selection_rate"}


def _points(x: float | None, metric: str) -> str:
    if x is None:
        return "—"
    return f"{100 * x:.1f} points" if metric in _PERCENT else f"{x:.3g}"


@dataclass
class LastMileResult:
    """Per condition: overall and per-group baseline, condition value, delta and interaction.

    Attributes
    ----------
    metric : str
    baseline : str
    by : str
        The grouping (``accent`` or ``accent,noise``).
    conditions : list of dict
        One per non-baseline condition: ``condition`` (spec), ``overall`` (``baseline``,
        ``value``, ``delta``, ``delta_ci_low``, ``delta_ci_high``, ``p_value``,
        ``p_adjusted``) and ``groups`` (each with ``group``, ``n``, ``clusters``,
        ``baseline``, ``value``, ``delta`` and its interval, ``interaction`` (delta minus
        the rest's delta) with ``interaction_ci_low``, ``interaction_ci_high``,
        ``p_value``, ``p_adjusted``, ``flagged``, ``direction``, ``test``, ``status``).
    settings, provenance : dict
    """

    metric: str
    baseline: str
    by: str
    conditions: list[dict[str, Any]]
    settings: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "baseline": self.baseline,
            "by": self.by,
            "conditions": self.conditions,
            "settings": self.settings,
            "provenance": self.provenance,
            "findings": self.findings(),
        }

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False, default=str)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    def to_frame(self) -> pd.DataFrame:
        """One tidy row per (condition, group), plus an ``overall`` row per condition."""
        rows = []
        for c in self.conditions:
            rows.append({"condition": c["condition"], "label": "overall", **c["overall"]})
            for g in c["groups"]:
                rows.append({"condition": c["condition"], "label": group_label(g["group"]), **{k: v for k, v in g.items() if k != "group"}})
        return pd.DataFrame(rows)

    def findings(self) -> list[str]:
        """One plain sentence per condition, answering the customer's question."""
        out = []
        m = self.metric
        name = self.settings.get("metric_description", m).replace("word error rate", "WER")
        for c in self.conditions:
            o = c["overall"]
            verb = "raises" if (o["delta"] or 0) >= 0 else "lowers"
            sig = o["p_adjusted"] is not None and o["p_adjusted"] <= self.settings["alpha"]
            head = f"{c['name']} {verb} {name} by {_points(abs(o['delta']) if o['delta'] is not None else None, m)} overall"
            if not sig:
                head += " (not significant)"
            worse = [g for g in c["groups"] if g["flagged"] and g["direction"] == "larger"]
            better = [g for g in c["groups"] if g["flagged"] and g["direction"] == "smaller"]
            parts = []
            for g in worse:
                parts.append(
                    f"by {_points(g['delta'], m)} for {group_label(g['group'])}, significantly more than for the rest "
                    f"(interaction {_points(g['interaction'], m)}, adjusted p {g['p_adjusted']:.3g})"
                )
            for g in better:
                change = (
                    f"by only {_points(g['delta'], m)}" if g["delta"] >= 0 else f"not at all (it changes by {_points(g['delta'], m)})"
                )
                parts.append(
                    f"{change} for {group_label(g['group'])}, significantly less than for the rest "
                    f"(adjusted p {g['p_adjusted']:.3g})"
                )
            if parts:
                out.append(head + " and " + "; ".join(parts) + ".")
            else:
                out.append(head + f"; no {self.by} suffers significantly more than the rest.")
        return out

    def render(self, console: Any = None) -> None:
        from rich.console import Console
        from rich.table import Table

        console = console or Console()
        m = self.metric
        for c in self.conditions:
            table = Table(title=f"{c['name']} ({c['condition']}) against {self.baseline}", title_justify="left")
            for col in (self.by, "clusters", "baseline", "condition", "delta", "delta CI", "interaction", "p adj.", "status"):
                table.add_column(col, justify="left" if col in (self.by, "status") else "right")
            o = c["overall"]
            table.add_row(
                "[b]overall[/]", f"{o['clusters']:,}", format_value(o["baseline"], m), format_value(o["value"], m),
                _points(o["delta"], m), f"{_points(o['delta_ci_low'], m)} – {_points(o['delta_ci_high'], m)}", "", "", "",
            )
            for g in c["groups"]:
                status = f"[bold red]FLAGGED ({g['direction']})[/]" if g["flagged"] else g["status"]
                ci = f"{_points(g['delta_ci_low'], m)} – {_points(g['delta_ci_high'], m)}" if g["delta_ci_low"] is not None else "—"
                table.add_row(
                    group_label(g["group"]), f"{g['clusters']:,}", format_value(g["baseline"], m), format_value(g["value"], m),
                    _points(g["delta"], m), ci, _points(g["interaction"], m) if g["interaction"] is not None else "—",
                    "—" if g["p_adjusted"] is None else f"{g['p_adjusted']:.3g}", status,
                )
            console.print(table)
        for sentence in self.findings():
            console.print(sentence)

    def plot(self, path: str | os.PathLike[str] | None = None) -> Any:
        """Deltas per group with their intervals, one panel per condition."""
        from groupwise.audit._plot import _pyplot

        plt = _pyplot()
        scale = 100.0 if self.metric in _PERCENT else 1.0
        n = len(self.conditions)
        rows = max((len(c["groups"]) for c in self.conditions), default=1)
        fig, axes = plt.subplots(1, n, figsize=(4.2 * n + 1.5, 0.3 * rows + 1.6), squeeze=False, sharey=True)
        for axis, c in zip(axes[0], self.conditions):
            groups = c["groups"]
            for y, g in enumerate(groups):
                if g["delta"] is None:
                    continue
                color = "#c0392b" if g["flagged"] else ("0.6" if g["status"] != "tested" else "#2c5d8f")
                if g["delta_ci_low"] is not None:
                    axis.plot([g["delta_ci_low"] * scale, g["delta_ci_high"] * scale], [y, y], color=color, lw=2)
                axis.plot(g["delta"] * scale, y, "o", color=color)
            if c["overall"]["delta"] is not None:
                axis.axvline(c["overall"]["delta"] * scale, color="0.3", ls="--", lw=1)
            axis.axvline(0, color="0.8", lw=1)
            axis.set_yticks(range(len(groups)))
            axis.set_yticklabels([group_label(g["group"]) for g in groups], fontsize=8)
            axis.set_title(c["name"], fontsize=10, loc="left")
            axis.set_xlabel(f"change in {self.metric}" + (" (points)" if scale == 100 else ""), fontsize=9)
            axis.grid(axis="x", color="0.92")
        axes[0][0].invert_yaxis()
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=110)
        return fig


def lastmile(
    data: Any,
    *,
    by: str | list[str] = "accent",
    cluster: str | None = "speaker",
    condition: str = "condition",
    baseline: str = "baseline",
    item: str | None = None,
    names: dict[str, str] | None = None,
    metric: str = "wer",
    reference: str = "reference",
    hypothesis: str = "hypothesis",
    y_true: str = "y_true",
    y_pred: str = "y_pred",
    normalize: str = "default",
    n_boot: int = 1000,
    n_perm: int | None = None,
    test: str = "auto",
    correction: str = "holm",
    alpha: float = 0.05,
    confidence: float = 0.95,
    min_clusters: int = 5,
    min_examples: int = 20,
    seed: int | None = 0,
    provenance: Provenance | dict[str, str] | None = None,
    allow_imputed: bool = False,
) -> LastMileResult:
    """Compare each condition with the baseline, per group, with paired cluster statistics.

    Parameters
    ----------
    data : DataFrame or path
        One row per (example, condition), e.g. the output of ``groupwise transcribe`` with
        several ``--condition`` options.
    by : str
        The grouping column (or ``col1,col2``).
    cluster : str or None, default="speaker"
    condition : str, default="condition"
        The column naming each row's condition.
    baseline : str, default="baseline"
        The condition every other is compared with.
    item : str, optional
        A column identifying the example (``audio`` by default when present). Only
        examples present under every condition are compared; the number left out is
        reported.
    names : dict, optional
        Readable names of conditions (``{"hum:freq=1200,...": "hum at 1200 Hz"}``).
    metric, reference, hypothesis, y_true, y_pred, normalize
        As in :func:`groupwise.audit`.
    n_boot, n_perm, test, correction, alpha, confidence, min_clusters, min_examples, seed
        As in :func:`groupwise.audit`; the interaction tests are corrected across every
        (condition, group) pair, and the deltas separately.
    provenance, allow_imputed
        As in :func:`groupwise.audit`.

    Returns
    -------
    LastMileResult
    """
    frame = read_table(data)
    spec = get_metric(metric)
    by_cols = split_names(by)
    if not by_cols:
        raise InputError("no grouping was given", fix="pass --by, e.g. --by accent")
    check_columns(frame, by_cols, role="group", option="--by")
    check_columns(frame, [condition], role="condition", option="--condition-column")
    check_scalar(n_boot, "n_boot", int, min_val=2)
    check_scalar(alpha, "alpha", float, min_val=0.0, max_val=1.0, include_min=False, include_max=False)
    check_scalar(min_clusters, "min_clusters", int, min_val=1)
    if correction not in ("holm", "bh", "none"):
        raise InputError(f"the 'correction' parameter is {correction!r}", fix="use holm, bh or none")
    if test not in ("auto", "bootstrap", "permutation"):
        raise InputError(f"the 'test' parameter is {test!r}", fix="use auto, bootstrap or permutation")
    prov = provenance if isinstance(provenance, Provenance) else Provenance(dict(provenance or {}))
    prov = prov.merged(frame.attrs.get("provenance", {})) if not isinstance(provenance, Provenance) else prov
    prov.check(by_cols, allow_imputed=allow_imputed)

    conditions = list(dict.fromkeys(frame[condition].astype(str)))
    if baseline not in conditions:
        raise InputError(
            f"the baseline condition {baseline!r} is not in the {condition!r} column (it has {', '.join(conditions[:10])})",
            fix="transcribe with --condition baseline as well, or pass --baseline with the name of the reference condition",
        )
    others = [c for c in conditions if c != baseline]
    if not others:
        raise InputError("the data has only the baseline condition", fix="transcribe with at least one --condition besides baseline")

    item = item if item is not None else ("audio" if "audio" in frame.columns else None)
    dropped = 0
    if item is not None:
        check_columns(frame, [item], role="item", option="--item")
        counts = frame.groupby(item, sort=False)[condition].nunique()
        complete = counts.index[counts == len(conditions)]
        keep = frame[item].isin(complete).to_numpy()
        dropped = int(frame.loc[~keep, item].nunique())
        frame = frame.loc[keep]
        if frame.empty:
            raise InputError("no example is present under every condition", fix=f"check the {item!r} and {condition!r} columns")

    normalizer = None
    if spec.name in ("wer", "cer"):
        from groupwise.audit._text import parse_normalizer

        normalizer = parse_normalizer(normalize)
    contrib = contributions(frame, spec, MetricColumns(reference, hypothesis, y_true, y_pred), normalizer=normalizer)
    from groupwise.audit._audit import _cluster_codes, _family_from_columns

    cluster_codes, n_clusters = _cluster_codes(frame, cluster)
    fam = _family_from_columns(frame, by_cols)
    k = len(fam.labels)
    cond_codes = pd.Categorical(frame[condition].astype(str), categories=[baseline, *others]).codes.astype(np.int64)
    n_cond = len(others) + 1
    has_group = fam.codes >= 0
    cell = np.where(has_group, cond_codes * k + fam.codes, -1)
    num, den = contrib.num, contrib.den
    cnum, cden, ccount = _cell_sums(cluster_codes, cell, [num, den, np.ones(len(num))], n_clusters, n_cond * k)
    onum, oden, ocount = _cell_sums(cluster_codes, cond_codes, [num, den, np.ones(len(num))], n_clusters, n_cond)
    design = sparse.hstack([onum, oden, cnum, cden], format="csr")
    reps = _replicate_sums(design, n_boot, seed)
    o_val = _ratio(reps[:, :n_cond], reps[:, n_cond : 2 * n_cond])
    c_num_r = reps[:, 2 * n_cond : 2 * n_cond + n_cond * k]
    c_den_r = reps[:, 2 * n_cond + n_cond * k :]
    c_val = _ratio(c_num_r, c_den_r)
    pt_onum, pt_oden = np.asarray(onum.sum(axis=0)).ravel(), np.asarray(oden.sum(axis=0)).ravel()
    pt_cnum, pt_cden = np.asarray(cnum.sum(axis=0)).ravel(), np.asarray(cden.sum(axis=0)).ravel()
    o_pt = _ratio(pt_onum, pt_oden)
    c_pt = _ratio(pt_cnum, pt_cden)
    clusters_cell = np.asarray((ccount > 0).sum(axis=0)).ravel()
    n_cell = np.asarray(ccount.sum(axis=0)).ravel()
    # Rest of the data (same condition, other groups), for the interaction.
    r_num_r = np.repeat(reps[:, :n_cond], k, axis=1) - c_num_r
    r_den_r = np.repeat(reps[:, n_cond : 2 * n_cond], k, axis=1) - c_den_r
    r_val = _ratio(r_num_r, r_den_r)
    r_pt = _ratio(np.repeat(pt_onum, k) - pt_cnum, np.repeat(pt_oden, k) - pt_cden)

    # Speaker-level sums for permutation tests: nested when each speaker is in one group.
    cluster_label = np.full(n_clusters, -1, dtype=np.int64)
    cluster_label[cluster_codes[has_group]] = fam.codes[has_group]
    nested = bool(np.array_equal(cluster_label[cluster_codes[has_group]], fam.codes[has_group]))
    rng = np.random.default_rng(None if seed is None else seed + 104729)

    out_conditions = []
    delta_p: list[float] = []
    delta_slots: list[tuple[int, int | None]] = []
    inter_p: list[float] = []
    inter_slots: list[tuple[int, int]] = []
    for ci, cond in enumerate(others, start=1):
        o_delta_r = o_val[:, ci] - o_val[:, 0]
        o_delta = o_pt[ci] - o_pt[0]
        low, high = _percentile_ci(o_delta_r[:, None], confidence)
        overall = {
            "baseline": _f(o_pt[0]), "value": _f(o_pt[ci]), "delta": _f(o_delta),
            "delta_ci_low": _f(low[0]), "delta_ci_high": _f(high[0]),
            "n": int(np.asarray(ocount.sum(axis=0)).ravel()[ci]), "clusters": int(n_clusters),
            "p_value": _t_p(o_delta, o_delta_r, n_clusters), "p_adjusted": None,
        }
        delta_p.append(overall["p_value"] if overall["p_value"] is not None else np.nan)
        delta_slots.append((ci - 1, None))
        b_idx = np.arange(k)
        c_idx = ci * k + np.arange(k)
        d_r = c_val[:, c_idx] - c_val[:, b_idx]
        d_pt = c_pt[c_idx] - c_pt[b_idx]
        rest_d_r = r_val[:, c_idx] - r_val[:, b_idx]
        rest_d_pt = r_pt[c_idx] - r_pt[b_idx]
        inter_r = d_r - rest_d_r
        inter_pt = d_pt - rest_d_pt
        d_low, d_high = _percentile_ci(d_r, confidence)
        i_low, i_high = _percentile_ci(inter_r, confidence)
        perm = None
        if test != "bootstrap" and nested:
            arrays = []
            for code in (0, ci):
                m = cond_codes == code
                arrays.append(np.bincount(cluster_codes[m], weights=num[m], minlength=n_clusters))
                arrays.append(np.bincount(cluster_codes[m], weights=den[m], minlength=n_clusters))
            draws = n_perm if n_perm is not None else int(min(20_000, max(1_000, np.ceil(2 * k * len(others) / alpha))))
            perm = permutation_p(cluster_label, k, arrays, _interaction_statistic, draws, rng)
        elif test == "permutation":
            raise InputError(
                f"a permutation test needs speakers nested in the groups of {','.join(by_cols)!r}, and some speakers are in several",
                fix="use --test auto or --test bootstrap",
            )
        groups = []
        for j, label in enumerate(fam.labels):
            sufficient = (
                clusters_cell[j] >= min_clusters and clusters_cell[c_idx[j]] >= min_clusters
                and n_cell[j] >= min_examples and np.isfinite(inter_pt[j])
            )
            p = None
            method = None
            if sufficient:
                if perm is not None:
                    p, method = float(perm[j]), "permutation"
                else:
                    p, method = _t_p(inter_pt[j], inter_r[:, j], int(clusters_cell[j])), "bootstrap"
            g = {
                "group": label, "n": int(n_cell[c_idx[j]]), "clusters": int(clusters_cell[c_idx[j]]),
                "baseline": _f(c_pt[b_idx[j]]), "value": _f(c_pt[c_idx[j]]), "delta": _f(d_pt[j]),
                "delta_ci_low": _f(d_low[j]) if sufficient else None, "delta_ci_high": _f(d_high[j]) if sufficient else None,
                "rest_delta": _f(rest_d_pt[j]), "interaction": _f(inter_pt[j]) if sufficient else None,
                "interaction_ci_low": _f(i_low[j]) if sufficient else None,
                "interaction_ci_high": _f(i_high[j]) if sufficient else None,
                "delta_p_value": _t_p(d_pt[j], d_r[:, j], int(clusters_cell[j])) if sufficient else None,
                "p_value": p, "p_adjusted": None, "flagged": False, "direction": None, "test": method,
                "status": "tested" if sufficient else "insufficient",
            }
            groups.append(g)
            if p is not None:
                inter_p.append(p)
                inter_slots.append((ci - 1, j))
        out_conditions.append({"condition": cond, "name": (names or {}).get(cond, _name(cond)), "overall": overall, "groups": groups})

    for (ci, _), padj in zip(delta_slots, adjust(np.array(delta_p), correction)):  # type: ignore[arg-type]
        out_conditions[ci]["overall"]["p_adjusted"] = _f(padj)
    for (ci, j), padj in zip(inter_slots, adjust(np.array(inter_p), correction)):  # type: ignore[arg-type]
        g = out_conditions[ci]["groups"][j]
        g["p_adjusted"] = _f(padj)
        g["flagged"] = bool(padj <= alpha)
        if g["flagged"]:
            g["direction"] = "larger" if g["interaction"] > 0 else "smaller"
    settings = {
        "metric": spec.name, "metric_description": spec.description, "by": by_cols, "cluster": cluster,
        "condition_column": condition, "baseline": baseline, "item": item, "items_not_in_every_condition": dropped,
        "n_boot": n_boot, "test": test, "correction": correction, "alpha": alpha, "confidence": confidence,
        "min_clusters": min_clusters, "min_examples": min_examples, "seed": seed,
        "normalize": normalizer.spec if normalizer is not None else None, "clusters_nested_in_groups": nested,
    }
    return LastMileResult(spec.name, baseline, ",".join(by_cols), out_conditions, settings, prov.describe(by_cols))


def _interaction_statistic(sums: list[np.ndarray], totals: list[float]) -> np.ndarray:
    bn, bd, cn, cd = sums
    tbn, tbd, tcn, tcd = totals
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = cn / cd - bn / bd
        rest = (tcn - cn) / (tcd - cd) - (tbn - bn) / (tbd - bd)
        return delta - rest


def _t_p(point: float, reps: np.ndarray, clusters: int) -> float | None:
    finite = reps[np.isfinite(reps)]
    if finite.size < 2 or not np.isfinite(point):
        return None
    se = float(np.std(finite, ddof=1)) * np.sqrt(clusters / max(clusters - 1, 1))
    if se == 0:
        return 1.0 if point == 0 else 0.0
    return float(2 * sstats.t.sf(abs(point) / se, max(clusters - 1, 1)))


def _f(x: Any) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def _name(spec: str) -> str:
    """A readable name for a condition spec, when the caller gives none."""
    try:
        from groupwise.speech._conditions import parse_condition

        return parse_condition(spec).name
    except Exception:  # not a speech condition (tabular last-mile data): keep the label
        return spec
