"""The last-mile test: does a customer's condition raise the error more for some groups?

The same examples (utterances) are measured at baseline and under each condition (a hum
at a fixed frequency, a phone line). For every condition and group this reports the value
at baseline and under the condition, the *delta* (condition minus baseline) with a paired
interval, and the *interaction*: how the group's change compares with the change of the
rest of the labelled data, with a corrected test. The interaction answers the customer's
real question: not "does WER go up?" but "does it go up more for some accents than for
others?" It is reported on a named scale: relative (the group's condition/baseline ratio
over the rest's; the default, so a condition that multiplies every speaker's errors alike
flags nobody) or absolute (points).

Pairing enters through the influence of each speaker: a speaker's rows under baseline and
under the condition form one term, so their correlation cancels out of deltas and
interactions. Variances are cluster-robust with the CR2 leverage factor and tests use
Student t with Satterthwaite degrees of freedom from effective numbers of speakers (see
:mod:`groupwise.audit._inference`); every interval uses the same t as its p-value. Rows
without a group value count in the overall deltas and in no group comparison.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from groupwise._errors import InputError
from groupwise._io import check_columns, split_names
from groupwise._validation import DEFAULTS, check_choice, check_scalar
from groupwise.audit._metrics import MetricColumns, get_metric
from groupwise._provenance import Provenance
from groupwise.audit._result import format_value, group_label
from groupwise.audit._inference import adjust, empirical_df, t_contrast, welch_df
from groupwise.audit._base import Result
from groupwise.audit._rows import Condition

__all__ = ["lastmile", "LastMileResult"]

_PERCENT = {"wer", "cer", "error_rate", "fpr", "fnr", "selection_rate"}


def _points(x: float | None, metric: str) -> str:
    if x is None:
        return "—"
    return f"{100 * x:.1f} points" if metric in _PERCENT else f"{x:.3g}"


@dataclass
class LastMileResult(Result):
    """Per condition: overall and per-group baseline, condition value, delta and interaction.

    Attributes
    ----------
    metric : str
    baseline : str
    by : str
        The grouping (``accent`` or ``accent,noise``).
    conditions : list of Condition
        Typed rows (also readable as mappings), one per non-baseline condition: ``condition`` (spec), ``overall`` (``baseline``,
        ``value``, ``delta``, ``delta_ci_low``, ``delta_ci_high``, ``p_value``,
        ``p_adjusted``) and ``groups`` (each with ``group``, ``n``, ``clusters``,
        ``baseline``, ``value``, ``delta`` and its interval, ``interaction`` (on
        ``interaction_scale``: a ratio of ratios, or the delta minus the rest's delta) with
        ``interaction_ci_low``, ``interaction_ci_high``,
        ``p_value``, ``p_adjusted``, ``flagged``, ``direction``, ``test``, ``status``).
    settings, provenance : dict
    """

    metric: str
    baseline: str
    by: str
    conditions: list[Condition]
    settings: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.conditions = [Condition.coerce(c) for c in self.conditions]

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "baseline": self.baseline,
            "by": self.by,
            "conditions": [c.to_dict() for c in self.conditions],
            "settings": self.settings,
            "provenance": self.provenance,
            "findings": self.findings(),
        }


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
                    f"({_interaction_text(g, m)}, adjusted p {g['p_adjusted']:.3g})"
                )
            for g in better:
                change = (
                    f"by only {_points(g['delta'], m)}" if g["delta"] >= 0 else f"not at all (it changes by {_points(g['delta'], m)})"
                )
                parts.append(
                    f"{change} for {group_label(g['group'])}, significantly less than for the rest "
                    f"({_interaction_text(g, m)}, adjusted p {g['p_adjusted']:.3g})"
                )
            scale = self.settings.get("scale", "relative")
            on = "relative (ratio) scale" if scale == "relative" else "absolute (points) scale"
            if parts:
                out.append(head + " and " + "; ".join(parts) + f"; interactions on the {on}.")
            else:
                out.append(head + f"; no {self.by} suffers significantly more than the rest on the {on}.")
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
                    _points(g["delta"], m), ci, _interaction_cell(g, m),
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


def _interaction_cell(g: dict[str, Any], metric: str) -> str:
    if g["interaction"] is None:
        return "—"
    if g["interaction_scale"] == "ratio of ratios":
        return f"x{g['interaction']:.2f}"
    return _points(g["interaction"], metric)


def _interaction_text(g: dict[str, Any], metric: str) -> str:
    if g["interaction_scale"] == "ratio of ratios":
        return (
            f"its condition/baseline ratio is {g['interaction']:.2f} times the rest's, "
            f"{g['interaction_ci_low']:.2f} to {g['interaction_ci_high']:.2f}"
        )
    return f"interaction {_points(g['interaction'], metric)} beyond the rest's change"


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
    num: str = "num",
    den: str = "den",
    normalize: str = "default",
    scale: str = DEFAULTS["scale"],
    n_boot: int = 1000,
    n_perm: int | None = None,
    test: str = "auto",
    correction: str = DEFAULTS["correction"],
    alpha: float = DEFAULTS["alpha"],
    confidence: float = DEFAULTS["confidence"],
    min_clusters: int = DEFAULTS["min_clusters"],
    min_examples: int = DEFAULTS["min_examples"],
    seed: int | None = 0,
    provenance: Provenance | dict[str, str] | None = None,
    allow_imputed: bool = False,
    engine: str = "local",
    ray_address: str | None = None,
    cache_dir: Any = None,
    progress: bool = False,
    _strict_pairing: bool = False,
    _unpaired: int | None = None,
    _kind: str = "lastmile",
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
    metric, reference, hypothesis, y_true, y_pred, num, den, normalize
        As in :func:`groupwise.audit` (``metric="ratio"`` with ``num`` and ``den`` for
        precomputed error counts).
    scale : {"relative", "absolute"}, default="relative"
        The scale of the interaction. ``"relative"``: the group's ratio of condition to
        baseline over the rest's (1 = the condition multiplies everyone's error alike, so a
        condition that makes every speaker 1.5 times worse flags nobody). ``"absolute"``:
        the group's delta in points minus the rest's (a multiplicative condition then
        "hurts" high-error groups more). A group without errors at baseline is compared on
        the absolute scale; its ``interaction_scale`` says so.
    n_boot, seed
        Recorded only: every interval is analytic.
    n_perm : None
        Not used by the last mile (its test is the paired cluster-robust t test).
    test : {"auto", "t"}, default="auto"
        The interaction test: a paired cluster-robust t test (CR2 factor, Satterthwaite
        degrees of freedom from effective numbers of speakers), whose intervals use the same
        t, so an interval excludes no change exactly when p is below ``1 - confidence``.
    correction, alpha, confidence, min_clusters, min_examples
        As in :func:`groupwise.audit`; the interaction tests are corrected across every
        (condition, group) pair, and the overall deltas separately. ``min_clusters`` applies
        to the group and to the rest.
    provenance, allow_imputed
        As in :func:`groupwise.audit`.
    engine, ray_address, cache_dir, progress
        For data in Parquet shards (a folder, a glob or a list of files), as in
        :func:`groupwise.audit`: shards are reduced to sums per (speaker, group,
        condition), which is all the paired statistics use. Needs ``cluster``. Items are
        paired within a shard, so each item's rows (every condition) belong in one shard.

    Returns
    -------
    LastMileResult
    """
    from groupwise.audit._prepare import cluster_codes as get_cluster_codes
    from groupwise.audit._prepare import distinct_text, family_from_columns, open_data, pair_items, prepare
    from groupwise.audit._stream import distinct_values

    source = open_data(data, engine=engine)
    frame, shards = source.frame, source.shards
    spec = get_metric(metric)
    by_cols = split_names(by)
    if not by_cols:
        raise InputError("no grouping was given", fix="pass --by, e.g. --by accent")
    check_columns(frame, by_cols, role="group", option="--by")
    check_columns(frame, [condition], role="condition", option="--condition-column")
    check_scalar(n_boot, "n_boot", int, min_val=0)
    check_scalar(confidence, "confidence", float, min_val=0.0, max_val=1.0, include_min=False, include_max=False)
    check_scalar(alpha, "alpha", float, min_val=0.0, max_val=1.0, include_min=False, include_max=False)
    check_scalar(min_clusters, "min_clusters", int, min_val=1)
    correction = check_choice(correction, "correction", ("holm", "bh", "none"), caller="lastmile")
    if test not in ("auto", "t"):
        raise InputError(
            f"the last mile's 'test' parameter is {test!r}",
            fix="use auto or t (the paired cluster-robust t test); permutation and bootstrap tests of the raw "
            "interaction are not offered, as neither is valid when groups differ in speaker spread",
        )
    if n_perm is not None:
        raise InputError("n_perm was given, but the last mile runs no permutation test", fix="leave n_perm (--n-perm) out")
    scale = check_choice(scale, "scale", ("relative", "absolute"), caller="lastmile")
    prov = provenance if isinstance(provenance, Provenance) else Provenance(dict(provenance or {}))
    prov = prov.merged(frame.attrs.get("provenance", {})) if not isinstance(provenance, Provenance) else prov
    prov.check(by_cols, allow_imputed=allow_imputed)

    conditions = distinct_text(frame[condition]) if shards is None else distinct_values(shards, condition)
    if baseline not in conditions:
        raise InputError(
            f"the baseline condition {baseline!r} is not in the {condition!r} column (it has {', '.join(conditions[:10])})",
            fix="transcribe with --condition baseline as well, or pass --baseline with the name of the reference condition",
        )
    others = [c for c in conditions if c != baseline]
    if not others:
        raise InputError("the data has only the baseline condition", fix="transcribe with at least one --condition besides baseline")

    item = item if item is not None else ("audio" if "audio" in frame.columns else None)
    dropped = _unpaired or 0  # items the caller already left out (its rows all pair up)
    if item is not None:
        check_columns(frame, [item], role="item", option="--item")
    if shards is None and item is not None and _unpaired is None:
        pairing = pair_items(frame, item, condition, conditions)
        dropped = pairing.incomplete
        if not pairing.keep.all():
            frame = frame.loc[pairing.keep]
        if frame.empty:
            raise InputError("no example is present under every condition", fix=f"check the {item!r} and {condition!r} columns")
    prepared = prepare(
        source, spec, MetricColumns(reference, hypothesis, y_true, y_pred, num, den), normalize=normalize,
        cluster=cluster, keys=[*by_cols, condition], engine=engine, ray_address=ray_address, cache_dir=cache_dir,
        progress=progress, frame=frame,
        pairing=(item, condition, tuple(conditions), _strict_pairing) if item is not None else None,
    )
    frame, contrib, normalizer, stream_info = prepared.frame, prepared.contrib, prepared.normalizer, prepared.stream
    assert contrib is not None
    if shards is not None:
        dropped = int(stream_info.get("unpaired_items", 0)) if stream_info else 0
        if not len(frame) or not prepared.weight.sum() > 0:
            raise InputError("no example is present under every condition", fix=f"check the {item!r} and {condition!r} columns")
    cluster_codes, n_clusters = get_cluster_codes(frame, cluster)
    fam = family_from_columns(frame, by_cols)
    k = len(fam.labels)
    cond_codes = pd.Categorical(frame[condition].astype(str), categories=[baseline, *others]).codes.astype(np.int64)
    num, den = contrib.num, contrib.den
    # One rule for rows without a group value: they count in the overall deltas and in no
    # group comparison (neither a group nor "the rest").
    labelled = fam.codes >= 0
    weight = prepared.weight  # examples behind each row
    out_conditions = []
    delta_p: list[float] = []
    inter_p: list[float] = []
    inter_slots: list[tuple[int, int]] = []
    for ci, cond in enumerate(others, start=1):
        b_rows, c_rows = cond_codes == 0, cond_codes == ci
        overall = _overall_delta(cluster_codes, num, den, b_rows, c_rows, n_clusters, confidence, weight)
        delta_p.append(overall["p_value"] if overall["p_value"] is not None else np.nan)
        stats = _paired_groups(
            cluster_codes, fam.codes, num, den, b_rows & labelled, c_rows & labelled, n_clusters, k, scale, confidence,
            weight,
        )
        groups = []
        for j, label in enumerate(fam.labels):
            sufficient = bool(
                stats["clusters"][j] >= min_clusters and stats["n"][j] >= min_examples and stats["rest_clusters"][j] >= min_clusters
            )
            testable = sufficient and np.isfinite(stats["p"][j])
            g = {
                "group": label, "n": int(stats["n"][j]), "clusters": int(stats["clusters"][j]),
                "baseline": _f(stats["Rb"][j]), "value": _f(stats["Rc"][j]), "delta": _f(stats["delta"][j]),
                "delta_ci_low": _f(stats["delta_low"][j]) if sufficient else None,
                "delta_ci_high": _f(stats["delta_high"][j]) if sufficient else None,
                "delta_p_value": _f(stats["delta_p"][j]) if sufficient else None,
                "delta_se": _f(stats["delta_se"][j]) if sufficient else None,
                "delta_df": _f(round(float(stats["delta_df"][j]), 2)) if sufficient else None,
                "delta_ratio": _f(stats["delta_ratio"][j]),
                "rest_delta": _f(stats["rest_delta"][j]),
                "rest_delta_ratio": _f(stats["rest_delta_ratio"][j]),
                "interaction": _f(stats["inter"][j]) if testable else None,
                "interaction_ci_low": _f(stats["inter_low"][j]) if testable else None,
                "interaction_ci_high": _f(stats["inter_high"][j]) if testable else None,
                "interaction_scale": stats["inter_scale"][j] if testable else None,
                "p_value": _f(stats["p"][j]) if testable else None, "p_adjusted": None, "flagged": False,
                "direction": None, "test": "cluster-robust t" if testable else None,
                "df": _f(round(float(stats["df"][j]), 2)) if testable else None,
                "status": "tested" if testable else ("insufficient" if not sufficient else "untestable"),
            }
            groups.append(g)
            if testable:
                inter_p.append(float(stats["p"][j]))
                inter_slots.append((ci - 1, j))
        out_conditions.append({"condition": cond, "name": (names or {}).get(cond, cond), "overall": overall, "groups": groups})

    for ci, padj in enumerate(adjust(np.array(delta_p), correction)):
        out_conditions[ci]["overall"]["p_adjusted"] = _f(padj)
    for (ci, j), padj in zip(inter_slots, adjust(np.array(inter_p), correction)):
        g = out_conditions[ci]["groups"][j]
        g["p_adjusted"] = _f(padj)
        g["flagged"] = bool(padj <= alpha)
        if g["flagged"]:
            null = 1.0 if g["interaction_scale"] == "ratio of ratios" else 0.0
            g["direction"] = "larger" if g["interaction"] > null else "smaller"
    settings = {
        "metric": spec.name, "metric_description": spec.description, "by": by_cols, "cluster": cluster,
        "kind": "compare" if _kind == "compare" else "lastmile",
        "condition_column": condition, "baseline": baseline, "item": item, "items_not_in_every_condition": dropped,
        "scale": scale, "test": "cluster-robust t", "correction": correction, "alpha": alpha,
        "confidence": confidence, "min_clusters": min_clusters, "min_examples": min_examples, "seed": seed,
        "n_boot": n_boot,
        "normalize": normalizer.spec if normalizer is not None else None,
        "rows_without_group": int(weight[~labelled].sum()),
        "method": (
            "paired cluster-robust t: each speaker's rows under both conditions enter one influence, CR2 "
            "leverage factor, Satterthwaite df from effective numbers of speakers; deltas on the absolute "
            "scale, the interaction on the " + ("log-ratio (relative) scale: the group's condition/baseline ratio "
            "over the rest's" if scale == "relative" else "absolute scale: the group's delta minus the rest's")
        ),
    }
    if stream_info is not None:
        settings["stream"] = stream_info
    return LastMileResult(spec.name, baseline, ",".join(by_cols), out_conditions, settings, prov.describe(by_cols))


def _overall_delta(
    cluster: np.ndarray, num: np.ndarray, den: np.ndarray, b_rows: np.ndarray, c_rows: np.ndarray, n_clusters: int,
    confidence: float, weight: np.ndarray,
) -> dict[str, Any]:
    """The condition's delta over every row, paired by speaker."""
    nb = np.bincount(cluster[b_rows], weights=num[b_rows], minlength=n_clusters)
    db = np.bincount(cluster[b_rows], weights=den[b_rows], minlength=n_clusters)
    nc = np.bincount(cluster[c_rows], weights=num[c_rows], minlength=n_clusters)
    dc = np.bincount(cluster[c_rows], weights=den[c_rows], minlength=n_clusters)
    Db, Dc = db.sum(), dc.sum()
    Rb, Rc = (nb.sum() / Db if Db > 0 else np.nan), (nc.sum() / Dc if Dc > 0 else np.nan)
    psi = (nc - Rc * dc) / Dc - (nb - Rb * db) / Db if Db > 0 and Dc > 0 else np.zeros(n_clusters)
    lam = _cr2(psi, db, Db)
    V = lam * float(psi @ psi)
    df = _kish(db) - 1.0
    se, _, p, lo, hi = t_contrast(np.array([Rc - Rb]), np.array([V]), np.array([df]), confidence)
    return {
        "baseline": _f(Rb), "value": _f(Rc), "delta": _f(Rc - Rb), "delta_ci_low": _f(lo[0]), "delta_ci_high": _f(hi[0]),
        "delta_se": _f(se[0]), "delta_df": _f(round(float(df), 2)),
        "n": int(round(weight[c_rows].sum())), "clusters": int(np.count_nonzero(dc > 0)), "p_value": _f(p[0]), "p_adjusted": None,
    }


def _paired_groups(
    cluster: np.ndarray, codes: np.ndarray, num: np.ndarray, den: np.ndarray, b_rows: np.ndarray, c_rows: np.ndarray,
    n_clusters: int, k: int, scale: str, confidence: float, weight: np.ndarray,
) -> dict[str, np.ndarray]:
    """Per group: paired delta, and the interaction with the rest of the labelled rows."""

    def dense(rows: np.ndarray, values: np.ndarray) -> np.ndarray:
        key = cluster[rows] * k + codes[rows]
        return np.bincount(key, weights=values[rows], minlength=n_clusters * k).reshape(n_clusters, k)

    nb, db, nc, dc = dense(b_rows, num), dense(b_rows, den), dense(c_rows, num), dense(c_rows, den)
    cnt = dense(c_rows, weight)
    # The rest of each group: every other labelled row of the same speakers and the others.
    rb_n, rb_d = nb.sum(axis=1, keepdims=True) - nb, db.sum(axis=1, keepdims=True) - db
    rc_n, rc_d = nc.sum(axis=1, keepdims=True) - nc, dc.sum(axis=1, keepdims=True) - dc
    with np.errstate(divide="ignore", invalid="ignore"):
        Nb, Db, Nc, Dc = nb.sum(0), db.sum(0), nc.sum(0), dc.sum(0)
        RNb, RDb, RNc, RDc = rb_n.sum(0), rb_d.sum(0), rc_n.sum(0), rc_d.sum(0)
        Rb, Rc = Nb / Db, Nc / Dc
        Qb, Qc = RNb / RDb, RNc / RDc
        eb, ec = nb - Rb * db, nc - Rc * dc
        fb, fc = rb_n - Qb * rb_d, rc_n - Qc * rc_d
        # Absolute delta of the group (paired).
        psi_abs = ec / Dc - eb / Db
        rest_abs = fc / RDc - fb / RDb
        relative = (scale == "relative") & (Nb > 0) & (Nc > 0) & (RNb > 0) & (RNc > 0)
        psi_rel = ec / Nc - eb / Nb
        rest_rel = fc / RNc - fb / RNb
    psi_abs, rest_abs, psi_rel, rest_rel = (np.nan_to_num(a) for a in (psi_abs, rest_abs, psi_rel, rest_rel))
    lam_g = np.array([_cr2(psi_abs[:, j], db[:, j], Db[j]) for j in range(k)])
    lam_r = np.array([_cr2(rest_abs[:, j], rb_d[:, j], RDb[j]) for j in range(k)])
    nu_g = np.minimum(np.array([_kish(db[:, j]) for j in range(k)]) - 1.0, _empirical_df(psi_abs))
    nu_r = np.minimum(np.array([_kish(rb_d[:, j]) for j in range(k)]) - 1.0, _empirical_df(rest_abs))
    delta = Rc - Rb
    Vd = lam_g * (psi_abs**2).sum(0)
    delta_se, _, delta_p, delta_low, delta_high = t_contrast(delta, Vd, nu_g, confidence)
    psi = np.where(relative, psi_rel, psi_abs)
    rest = np.where(relative, rest_rel, rest_abs)
    Vg, Vr, C = lam_g * (psi**2).sum(0), lam_r * (rest**2).sum(0), np.sqrt(lam_g * lam_r) * (psi * rest).sum(0)
    df = welch_df([(Vg, nu_g), (Vr, nu_r)])
    with np.errstate(divide="ignore", invalid="ignore"):
        inter = np.where(relative, np.log(Rc / Rb) - np.log(Qc / Qb), (Rc - Rb) - (Qc - Qb))
    _, _, p, lo, hi = t_contrast(inter, Vg + Vr - 2 * C, df, confidence)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # Relative interactions are reported as ratios of ratios (1 = no interaction).
        inter_out = np.where(relative, np.exp(inter), inter)
        lo_out = np.where(relative, np.exp(lo), lo)
        hi_out = np.where(relative, np.exp(hi), hi)
        return {
            "Rb": Rb, "Rc": Rc, "delta": delta, "delta_low": delta_low, "delta_high": delta_high, "delta_p": delta_p,
            "delta_se": delta_se, "delta_df": nu_g,
            "delta_ratio": Rc / Rb, "rest_delta": Qc - Qb, "rest_delta_ratio": Qc / Qb,
            "inter": inter_out, "inter_low": lo_out, "inter_high": hi_out, "p": p, "df": df,
            "inter_scale": np.where(relative, "ratio of ratios", "difference of deltas"),
            "clusters": (db > 0).sum(0), "n": cnt.sum(0), "rest_clusters": (rb_d > 0).sum(0),
        }


def _empirical_df(psi: np.ndarray) -> np.ndarray:
    """Satterthwaite degrees of freedom of each column's sum of squared influences, from the data."""
    return empirical_df((psi**2).sum(axis=0), (psi**4).sum(axis=0), (psi != 0).sum(axis=0))


def _cr2(psi: np.ndarray, d: np.ndarray, D: float) -> float:
    """The CR2 leverage factor of a sum of squared cluster influences."""
    total = float(psi @ psi)
    if total <= 0 or D <= 0:
        return 1.0
    h = np.minimum(d / D, 0.999)
    return float((psi * psi / (1.0 - h)).sum() / total)


def _kish(d: np.ndarray) -> float:
    """Kish's effective number of clusters of denominators ``d`` (at least 2)."""
    s2 = float(d @ d)
    return max(float(d.sum()) ** 2 / s2, 2.0) if s2 > 0 else 2.0


def _f(x: Any) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None
