"""Coverage: which combinations of conditions the data covers, and how much more it needs.

The number of combinations (accent x noise x device x ...) explodes, and most audits
discover too late that half the cells have two speakers. :func:`coverage` lists every
combination of the observed values of the given dimensions, including the empty ones, with
its examples and clusters, marks cells below the minimum, and, when a metric is available,
estimates how many clusters each cell needs for a target interval half-width.

The estimate uses the linearised variance of a ratio of sums. With ``k`` clusters whose
per-cluster sums are ``num_i`` and ``den_i`` and ``R = sum(num) / sum(den)``, the residuals
``e_i = num_i - R * den_i`` give ``var(R) ~= s_e^2 / (k * dbar^2)`` with ``s_e^2`` their
sample variance and ``dbar`` the mean ``den`` per cluster. Solving ``z * sqrt(var) = h``
for ``k`` gives the clusters needed. Cells with fewer than two clusters borrow the pooled
``s_e^2 / dbar^2`` of the whole table (and say so).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sstats

from groupwise._errors import InputError
from groupwise._io import check_columns, check_scalar, read_table, split_names
from groupwise.audit._metrics import MetricColumns, contributions, get_metric

__all__ = ["coverage", "CoverageResult"]

_MAX_CELLS = 200_000


@dataclass
class CoverageResult:
    """Every combination of the dimensions with its counts and needs.

    Attributes
    ----------
    dims : list of str
    cells : list of dict
        ``cell`` (dimension -> value), ``n``, ``clusters``, ``status`` (``ok``, ``thin`` or
        ``empty``), and with a metric ``value``, ``half_width`` (current estimate),
        ``clusters_needed``, ``more_clusters`` and ``variance_source`` (``cell`` or
        ``pooled``).
    settings : dict
    """

    dims: list[str]
    cells: list[dict[str, Any]]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> dict[str, int]:
        """Counts of cells by status."""
        out = {"cells": len(self.cells), "ok": 0, "thin": 0, "empty": 0}
        for c in self.cells:
            out[c["status"]] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"dims": self.dims, "summary": self.summary, "cells": self.cells, "settings": self.settings}

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False, default=str)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

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
    confidence: float = 0.95,
    min_clusters: int = 10,
    min_examples: int = 30,
    reference: str = "reference",
    hypothesis: str = "hypothesis",
    y_true: str = "y_true",
    y_pred: str = "y_pred",
    num: str = "num",
    den: str = "den",
    pos_label: object = 1,
    normalize: str = "default",
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
    min_clusters, min_examples : int
        Cells below either are ``thin``.
    reference, hypothesis, y_true, y_pred, num, den, pos_label, normalize
        As in :func:`groupwise.audit`.

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
    frame = read_table(data)
    dim_list = split_names(dims)
    if not dim_list:
        raise InputError("no dimensions were given", fix="pass --dims with one or more columns, e.g. --dims accent,noise")
    check_columns(frame, dim_list, role="dimension", option="--dims")
    check_scalar(min_clusters, "min_clusters", int, min_val=1)
    check_scalar(min_examples, "min_examples", int, min_val=1)
    check_scalar(confidence, "confidence", float, min_val=0.0, max_val=1.0, include_min=False, include_max=False)
    if target_half_width is not None:
        check_scalar(target_half_width, "target_half_width", float, min_val=0.0, include_min=False)
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

    if metric == "auto":
        if {reference, hypothesis} <= set(frame.columns):
            metric = "wer"
        elif {y_true, y_pred} <= set(frame.columns):
            metric = "error_rate"
        else:
            metric = None

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
    n_per_cell = np.bincount(key[keep], minlength=n_cells)
    pair = np.unique(key[keep] * n_clusters + cluster_codes[keep])
    clusters_per_cell = np.bincount(pair // n_clusters, minlength=n_cells)

    values = half = needed = None
    source: np.ndarray | None = None
    if metric is not None:
        spec = get_metric(metric)
        normalizer = None
        if spec.name in ("wer", "cer"):
            from groupwise.audit._text import parse_normalizer

            normalizer = parse_normalizer(normalize)
        contrib = contributions(
            frame, spec, MetricColumns(reference, hypothesis, y_true, y_pred, num, den, pos_label), normalizer=normalizer
        )
        values, half, needed, source = _plan(
            key[keep], cluster_codes[keep], contrib.num[keep], contrib.den[keep], n_cells, n_clusters,
            target_half_width, confidence, min_clusters,
        )

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
        "rows_with_missing_values": int(missing.sum()),
    }
    return CoverageResult(dim_list, cells, settings)


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
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-cell value, current half-width and clusters needed (see the module docstring)."""
    pair, inverse = np.unique(key * n_clusters + cluster, return_inverse=True)
    cell_of_pair = pair // n_clusters
    pnum = np.bincount(inverse, weights=num, minlength=pair.size)
    pden = np.bincount(inverse, weights=den, minlength=pair.size)
    cnum = np.bincount(cell_of_pair, weights=pnum, minlength=n_cells)
    cden = np.bincount(cell_of_pair, weights=pden, minlength=n_cells)
    k = np.bincount(cell_of_pair, minlength=n_cells).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(cden > 0, cnum / cden, np.nan)
        resid = pnum - value[cell_of_pair] * pden
        ss = np.bincount(cell_of_pair, weights=resid**2, minlength=n_cells)
        s2 = np.where(k > 1, ss / (k - 1), np.nan)
        dbar = np.where(k > 0, cden / k, np.nan)
        unit = s2 / dbar**2  # variance of one cluster's contribution, in metric units
        # Pooled over cells: within-cell residuals, so cell differences do not inflate it.
        good = np.isfinite(unit) & (k > 1)
        pooled = float(np.sum(ss[good]) / np.sum(k[good] - 1) / (np.sum(cden[good]) / np.sum(k[good])) ** 2) if good.any() else np.nan
        source = np.where(good, "cell", "pooled")
        unit = np.where(good, unit, pooled)
        z = sstats.norm.ppf(0.5 + confidence / 2.0)
        half = np.where(k > 1, z * np.sqrt(unit / np.maximum(k, 1)), np.nan)
        if target is None:
            needed = np.full(n_cells, float(min_clusters))
        else:
            needed = np.ceil(z**2 * unit / target**2)
            needed = np.where(np.isfinite(needed), np.maximum(needed, min_clusters), np.nan)
    return value, half, needed, source


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
