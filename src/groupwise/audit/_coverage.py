"""Coverage: which combinations of conditions the data covers, and how much more it needs.

The number of combinations (accent x noise x device x ...) explodes, and most audits
discover too late that half the cells have two speakers. :func:`coverage` lists every
combination of the observed values of the given dimensions, including the empty ones, with
its examples and clusters, marks cells below the minimum, and, when a metric is available,
estimates how many clusters each cell needs for a target interval half-width.

Plans are computed the way the audit computes intervals: a cell's per-cluster variance
pieces (its speakers' residuals and sizes) are scaled to a candidate number of clusters and
the audit's own interval (:mod:`groupwise.audit._inference`: the same effective sample
size, design effect, degrees of freedom and exact bounds) is evaluated there, so a cell
collected at the suggested size reaches the target half-width when its speakers resemble
those already seen. Each cell also says the smallest gap the audit could flag with 80%
power now and at the planned size. Cells with fewer than two clusters borrow the pooled
pieces of the others (and say so). When the full factorial is out of reach, ``strength``
proposes a t-way covering set of combinations to collect.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from groupwise._errors import InputError
from groupwise._io import check_columns, split_names
from groupwise._validation import DEFAULTS, check_scalar
from groupwise.audit._inference import CellSums, cell_sums, dispersion, value_interval
from groupwise.audit._metrics import MetricColumns, get_metric
from groupwise.audit._prepare import plain as _plain
from groupwise.audit._base import Result
from groupwise.audit._rows import CoverageCell

__all__ = ["coverage", "CoverageResult"]

_MAX_CELLS = 200_000


@dataclass
class CoverageResult(Result):
    """Every combination of the dimensions with its counts and needs.

    Attributes
    ----------
    dims : list of str
    cells : list of CoverageCell
        Typed rows (also readable as mappings): ``cell`` (dimension -> value), ``n``, ``clusters``, ``status`` (``ok``, ``thin`` or
        ``empty``), and with a metric ``value``, ``half_width`` (the audit's interval now),
        ``clusters_needed``, ``more_clusters``, ``variance_source`` (``cell`` or
        ``pooled``), ``detectable_gap`` and ``detectable_gap_planned`` (the smallest rise
        over the overall value found with 80% power now and at the planned size).
    settings : dict
    covering : list of dict
        With ``strength``: the proposed covering set, each ``cell`` with ``in_data``.
    """

    dims: list[str]
    cells: list[CoverageCell]
    settings: dict[str, Any] = field(default_factory=dict)
    covering: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.cells = [CoverageCell.coerce(c) for c in self.cells]

    @property
    def summary(self) -> dict[str, int]:
        """Counts of cells by status."""
        out = {"cells": len(self.cells), "ok": 0, "thin": 0, "empty": 0}
        for c in self.cells:
            out[c["status"]] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "dims": self.dims, "summary": self.summary, "cells": [c.to_dict() for c in self.cells], "settings": self.settings,
            "covering": self.covering,
        }


    def to_frame(self) -> pd.DataFrame:
        rows = [{**c["cell"], **{k: v for k, v in c.items() if k != "cell"}} for c in self.cells]
        return pd.DataFrame(rows)

    def render(self, console: Any = None, *, max_rows: int = 60) -> None:
        from rich.console import Console
        from rich.table import Table

        console = console or Console()
        has_metric = self.settings.get("metric") is not None
        table = Table(title=f"coverage of {' x '.join(self.dims)}", title_justify="left")
        for d in self.dims:
            table.add_column(d)
        table.add_column("n", justify="right")
        table.add_column("clusters", justify="right")
        if has_metric:
            table.add_column(self.settings["metric"], justify="right")
            table.add_column("± now", justify="right")
            table.add_column("more clusters", justify="right")
        table.add_column("status")
        order = sorted(self.cells, key=lambda c: ({"empty": 0, "thin": 1, "ok": 2}[c["status"]], c["clusters"]))
        for c in order[:max_rows]:
            status = {"empty": "[red]empty[/]", "thin": "[yellow]thin[/]", "ok": "ok"}[c["status"]]
            row = [str(c["cell"][d]) for d in self.dims] + [f"{c['n']:,}", f"{c['clusters']:,}"]
            if has_metric:
                row += [
                    "—" if c.get("value") is None else f"{c['value']:.3g}",
                    "—" if c.get("half_width") is None else f"{c['half_width']:.3g}",
                    "—" if c.get("more_clusters") is None else f"{c['more_clusters']:,}",
                ]
            table.add_row(*row, status)
        console.print(table)
        if len(order) > max_rows:
            console.print(f"[dim]{len(order) - max_rows} more cells in the JSON output.[/]")
        s = self.summary
        console.print(
            f"{s['cells']} combinations: {s['ok']} ok, {s['thin']} thin (below "
            f"{self.settings['min_clusters']} clusters or {self.settings['min_examples']} examples), "
            f"{s['empty']} empty."
        )


def coverage(
    data: Any,
    *,
    dims: list[str] | str,
    cluster: str | None = None,
    metric: str | None = "auto",
    target_half_width: float | None = None,
    confidence: float = DEFAULTS["confidence"],
    alpha: float = DEFAULTS["alpha"],
    min_clusters: int = DEFAULTS["min_clusters"],
    min_examples: int = DEFAULTS["min_examples"],
    strength: int | None = None,
    reference: str = "reference",
    hypothesis: str = "hypothesis",
    y_true: str = "y_true",
    y_pred: str = "y_pred",
    num: str = "num",
    den: str = "den",
    pos_label: object = 1,
    normalize: str = "default",
    engine: str = "local",
    ray_address: str | None = None,
    cache_dir: Any = None,
    progress: bool = False,
) -> CoverageResult:
    """List every combination of ``dims`` with its examples, clusters and needs.

    Parameters
    ----------
    data : DataFrame or path
    dims : str or list of str
        The dimensions, e.g. ``"accent,noise,device"``.
    cluster : str, optional
        The independently sampled unit (speaker); rows are their own clusters without it.
    metric : str or None, default="auto"
        The metric whose interval width is planned for. ``"auto"`` takes ``wer`` when the
        data has reference and hypothesis columns, ``error_rate`` when it has y_true and
        y_pred, and none otherwise (counts only). ``None`` means counts only.
    target_half_width : float, optional
        The interval half-width wanted in every cell (0.02 is two WER points). Without it
        ``clusters_needed`` is ``min_clusters``.
    confidence : float, default=0.95
        Level of the intervals the plan is for; the half-width is the audit's own,
        ``(ci_high - ci_low) / 2``.
    alpha : float, default=0.05
        Level of the tests behind ``detectable_gap``: each cell's smallest rise over the
        overall value that the audit would flag with 80% power now and at the planned
        size, at ``alpha / cells`` (the first step of Holm's correction over the cells).
    min_clusters, min_examples : int
        Cells below either are ``thin``.
    strength : int, optional
        Also propose a ``strength``-way covering set of combinations to collect (every
        pair of values of any two dimensions for 2, every triple for 3), far fewer than
        the full factorial; ``covering`` lists them with whether the data already has
        each.
    reference, hypothesis, y_true, y_pred, num, den, pos_label, normalize
        As in :func:`groupwise.audit`.
    engine, ray_address, cache_dir, progress
        For data in Parquet shards (a folder, a glob or a list of files), as in
        :func:`groupwise.audit`: the shards are reduced to sums per (cluster, cell) and the
        plan is the one the whole table would give. Needs ``cluster``.

    Returns
    -------
    CoverageResult

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"accent": ["a", "a", "b"], "noise": ["x", "y", "x"], "speaker": [1, 2, 3]})
    >>> result = coverage(df, dims="accent,noise", cluster="speaker", metric=None, min_clusters=1, min_examples=1)
    >>> [(c["cell"]["accent"], c["cell"]["noise"], c["status"]) for c in result.cells]
    [('a', 'x', 'ok'), ('a', 'y', 'ok'), ('b', 'x', 'ok'), ('b', 'y', 'empty')]
    """
    from groupwise.audit._prepare import open_data, prepare

    source = open_data(data, engine=engine)
    frame = source.frame
    dim_list = split_names(dims)
    if not dim_list:
        raise InputError("no dimensions were given", fix="pass --dims with one or more columns, e.g. --dims accent,noise")
    check_columns(frame, dim_list, role="dimension", option="--dims")
    check_scalar(min_clusters, "min_clusters", int, min_val=1)
    check_scalar(min_examples, "min_examples", int, min_val=1)
    check_scalar(confidence, "confidence", float, min_val=0.0, max_val=1.0, include_min=False, include_max=False)
    if target_half_width is not None:
        check_scalar(target_half_width, "target_half_width", float, min_val=0.0, include_min=False)
    check_scalar(alpha, "alpha", float, min_val=0.0, max_val=1.0, include_min=False, include_max=False)
    if strength is not None:
        check_scalar(strength, "strength", int, min_val=1, max_val=max(len(dim_list), 1))
    if metric == "auto":
        if {reference, hypothesis} <= set(frame.columns):
            metric = "wer"
        elif {y_true, y_pred} <= set(frame.columns):
            metric = "error_rate"
        else:
            metric = None
    spec = get_metric(metric) if metric is not None else None
    prepared = prepare(
        source, spec, MetricColumns(reference, hypothesis, y_true, y_pred, num, den, pos_label), normalize=normalize,
        cluster=cluster, keys=dim_list, engine=engine, ray_address=ray_address, cache_dir=cache_dir, progress=progress,
    )
    frame, contrib, kind, stream_info = prepared.frame, prepared.contrib, prepared.kind, prepared.stream
    weight = prepared.weight
    if cluster is not None:
        check_columns(frame, [cluster], role="cluster", option="--cluster")
        cluster_codes, _ = pd.factorize(frame[cluster])
        if (cluster_codes < 0).any():
            raise InputError(
                f"the cluster column {cluster!r} has missing values",
                fix="give every row its speaker (or person)",
                rows=frame.index[cluster_codes < 0].tolist(),
            )
    else:
        cluster_codes = np.arange(len(frame))
    n_clusters = int(cluster_codes.max()) + 1

    codes_per_dim, values_per_dim = [], []
    for d in dim_list:
        codes, uniques = pd.factorize(frame[d], sort=True)
        codes_per_dim.append(codes)
        values_per_dim.append(list(uniques))
    sizes = [len(v) for v in values_per_dim]
    n_cells = math.prod(sizes)
    if n_cells > _MAX_CELLS:
        raise InputError(
            f"the dimensions {', '.join(dim_list)} have {n_cells:,} combinations, more than "
            f"{_MAX_CELLS:,} can be listed",
            fix="use fewer dimensions, or bin continuous ones (such as SNR) into a few levels first",
        )
    key = np.zeros(len(frame), dtype=np.int64)
    missing = np.zeros(len(frame), dtype=bool)
    for codes, size in zip(codes_per_dim, sizes):
        missing |= codes < 0
        key = key * size + np.maximum(codes, 0)
    key[missing] = -1
    keep = ~missing
    n_per_cell = np.rint(np.bincount(key[keep], weights=weight[keep], minlength=n_cells)).astype(np.int64)
    pair = np.unique(key[keep] * n_clusters + cluster_codes[keep])
    clusters_per_cell = np.bincount(pair // n_clusters, minlength=n_cells)

    values = half = needed = None
    source: np.ndarray | None = None
    if spec is not None:
        assert contrib is not None and kind is not None
        plan = _plan(
            key[keep], cluster_codes[keep], contrib.num[keep], contrib.den[keep], n_cells, n_clusters,
            target_half_width, confidence, min_clusters, kind, alpha,
        )
        values, half, needed, source = plan["value"], plan["half"], plan["needed"], plan["source"]

    cells = []
    for index in range(n_cells):
        rest, parts = index, []
        for size in reversed(sizes):
            rest, r = divmod(rest, size)
            parts.append(r)
        parts.reverse()
        n, k = int(n_per_cell[index]), int(clusters_per_cell[index])
        status = "empty" if n == 0 else ("thin" if k < min_clusters or n < min_examples else "ok")
        cell: dict[str, Any] = {
            "cell": {d: _plain(values_per_dim[i][p]) for i, (d, p) in enumerate(zip(dim_list, parts))},
            "n": n,
            "clusters": k,
            "status": status,
        }
        if metric is not None:
            assert values is not None and half is not None and needed is not None and source is not None
            cell["value"] = _finite(values[index])
            cell["half_width"] = _finite(half[index])
            cell["clusters_needed"] = int(needed[index]) if np.isfinite(needed[index]) else None
            cell["more_clusters"] = (
                max(0, int(needed[index]) - k) if np.isfinite(needed[index]) else None
            )
            cell["variance_source"] = str(source[index])
            cell["detectable_gap"] = _finite(plan["detectable_now"][index])
            cell["detectable_gap_planned"] = _finite(plan["detectable_planned"][index])
        else:
            cell["clusters_needed"] = min_clusters
            cell["more_clusters"] = max(0, min_clusters - k)
        cells.append(cell)
    settings = {
        "dims": dim_list,
        "cluster": cluster,
        "metric": metric,
        "target_half_width": target_half_width,
        "confidence": confidence,
        "min_clusters": min_clusters,
        "min_examples": min_examples,
        "rows_with_missing_values": int(weight[missing].sum()),
        "alpha": alpha,
        "half_width": "the audit's interval, (ci_high - ci_low) / 2",
        "strength": strength,
    }
    if stream_info is not None:
        settings["stream"] = stream_info
    covering = []
    if strength is not None:
        present = {tuple(c["cell"][d] for d in dim_list) for c in cells if c["status"] != "empty"}
        for combo in covering_set(values_per_dim, strength):
            values = tuple(_plain(v) for v in combo)
            covering.append({"cell": dict(zip(dim_list, values)), "in_data": values in present})
    return CoverageResult(dim_list, cells, settings, covering)


def covering_set(values: list[list[Any]], strength: int = 2, *, seed: int = 0) -> list[tuple[Any, ...]]:
    """A small set of combinations in which every ``strength``-way tuple of values appears.

    Greedy construction in the manner of AETG (Cohen, Dalal, Fredman and Patton 1997):
    each new combination is built dimension by dimension, choosing the value that covers
    the most tuples not yet covered, and the best of a few randomised candidates is kept.

    Examples
    --------
    >>> rows = covering_set([["a", "b", "c"], [0, 1, 2], ["x", "y", "z"]], 2)
    >>> len(rows) < 27
    True
    >>> from itertools import combinations
    >>> pairs = {((i, r[i]), (j, r[j])) for r in rows for i, j in combinations(range(3), 2)}
    >>> len(pairs) == 3 * 9
    True
    """
    from itertools import combinations, product

    dims = len(values)
    if strength >= dims:
        return [tuple(c) for c in product(*values)]
    rng = np.random.default_rng(seed)
    subsets = list(combinations(range(dims), strength))
    uncovered = {(sub, idx) for sub in subsets for idx in product(*(range(len(values[d])) for d in sub))}
    rows: list[tuple[int, ...]] = []

    def gain(row: list[int | None]) -> int:
        count = 0
        for sub in subsets:
            if all(row[d] is not None for d in sub) and (sub, tuple(row[d] for d in sub)) in uncovered:  # type: ignore[misc]
                count += 1
        return count

    while uncovered:
        best_row, best_gain = None, -1
        for _ in range(10):
            order = rng.permutation(dims)
            row: list[int | None] = [None] * dims
            # Start from one uncovered tuple so that every row makes progress.
            sub0, idx0 = next(iter(uncovered)) if _ == 0 else list(uncovered)[int(rng.integers(len(uncovered)))]
            for d, v in zip(sub0, idx0):
                row[d] = v
            for d in order:
                if row[d] is not None:
                    continue
                scores = []
                for v in range(len(values[d])):
                    row[d] = v
                    scores.append(gain(row))
                row[d] = int(np.argmax(scores))
            g = gain(row)
            if g > best_gain:
                best_row, best_gain = row, g
        assert best_row is not None
        full = tuple(int(v) for v in best_row)  # type: ignore[arg-type]
        rows.append(full)
        for sub in subsets:
            uncovered.discard((sub, tuple(full[d] for d in sub)))
    return [tuple(values[d][i] for d, i in enumerate(r)) for r in rows]


def _plan(
    key: np.ndarray,
    cluster: np.ndarray,
    num: np.ndarray,
    den: np.ndarray,
    n_cells: int,
    n_clusters: int,
    target: float | None,
    confidence: float,
    min_clusters: int,
    kind: str = "count",
    alpha: float = 0.05,
) -> dict[str, np.ndarray]:
    """Per-cell value, the audit's half-width now and at the plan, and detectable gaps.

    Each cell's per-cluster variance pieces are scaled to ``k'`` clusters with the same
    spread of sizes and residuals (sums grow as ``k'/k``, the CR2 factor shrinks toward 1),
    and the audit's own interval (:func:`groupwise.audit._inference.value_interval`) is
    computed there; the plan is the smallest ``k'`` whose half-width, ``(high - low) / 2``,
    reaches the target. Cells with fewer than two clusters borrow the pooled pieces of the
    cells that have them (and say so). The detectable gap is the smallest rise over the
    overall value that a two-sided test of the log ratio at ``alpha / cells`` (the first
    Holm step) finds with 80% power.
    """
    s = cell_sums(cluster, key, num, den, n_clusters, n_cells)
    disp = dispersion(kind, s)
    k = s.clusters.astype(float)
    good = k >= 2
    # Per-cluster pieces (averages over a cell's clusters) and their pooled version.
    per = {name: np.where(good, getattr(s, name) / np.maximum(k, 1), np.nan) for name in ("D", "ee", "dd", "e4")}
    if good.any():
        pooled = {name: float(np.sum(getattr(s, name)[good]) / np.sum(k[good])) for name in per}
        R_pool = float(np.sum(s.N[good]) / np.sum(s.D[good]))
    else:
        pooled = {name: np.nan for name in per}
        R_pool = np.nan
    source = np.where(good, "cell", "pooled")
    for name in per:
        per[name] = np.where(good, per[name], pooled[name])
    R = np.where(good, s.R, R_pool)
    lev = np.where(good, s.leverage, 1.0)

    def half_width(kk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        kk = np.maximum(np.asarray(kk, dtype=float), 2.0)
        D = per["D"] * kk
        dd = per["dd"] * kk
        ee = per["ee"] * kk
        scaled = CellSums(
            rows=np.empty(0, dtype=np.int64), cols=np.empty(0, dtype=np.int64), an=np.empty(0), ad=np.empty(0),
            N=R * D, D=D, R=R, n=np.zeros(n_cells, dtype=np.int64), n_den=np.zeros(n_cells, dtype=np.int64),
            clusters=kk.astype(np.int64), ee=ee, ed=np.zeros(n_cells), dd=dd,
            leverage=1.0 + (lev - 1.0) * np.where(good, k, 2.0) / kk,
            eff_clusters=np.where(dd > 0, D * D / np.where(dd > 0, dd, 1.0), 0.0), xbar=np.where(D > 0, dd / D, 0.0),
            e4=per["e4"] * kk, k=n_cells, n_clusters=int(np.nanmax(kk)) if kk.size else 0,
        )
        low, high, df = value_interval(kind, scaled, disp, confidence)
        with np.errstate(invalid="ignore"):
            var = scaled.ee * scaled.leverage / D**2
        return (high - low) / 2.0, np.sqrt(var), df

    current, se_now, df_now = half_width(np.where(good, k, 2.0))
    current = np.where(good, current, np.nan)
    if target is None:
        needed = np.full(n_cells, float(min_clusters))
    else:
        lo = np.full(n_cells, 2.0)
        hi = np.full(n_cells, 2.0)
        ok = np.isfinite(per["D"]) & np.isfinite(R)
        for _ in range(40):  # double until the target is reached
            h, _, _ = half_width(hi)
            short = ok & ~(h <= target)
            if not short.any() or hi.max() > 1e7:
                break
            hi = np.where(short, hi * 2, hi)
        for _ in range(40):  # then bisect
            mid = np.floor((lo + hi) / 2)
            h, _, _ = half_width(mid)
            reach = h <= target
            hi = np.where(reach & (mid < hi), mid, hi)
            lo = np.where(~reach, mid, lo)
            if np.all(hi - lo <= 1):
                break
        h, _, _ = half_width(hi)
        needed = np.where(ok & (h <= target), np.maximum(hi, min_clusters), np.nan)
    planned_k = np.where(np.isfinite(needed), np.maximum(needed, k), np.nan)
    _, se_plan, df_plan = half_width(np.where(np.isfinite(planned_k), planned_k, 2.0))
    tests = max(int(np.count_nonzero(k > 0)), 1)
    level = alpha / tests

    def detectable(se: np.ndarray, df: np.ndarray) -> np.ndarray:
        q = special.stdtrit(df, 1 - level / 2) + special.stdtrit(df, 0.8)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return R * (np.exp(q * se / R) - 1.0)

    return {
        "value": np.where(k > 0, s.R, np.nan), "half": current, "needed": needed, "source": source,
        "detectable_now": np.where(good, detectable(se_now, df_now), np.nan),
        "detectable_planned": np.where(np.isfinite(planned_k), detectable(se_plan, df_plan), np.nan),
    }


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


