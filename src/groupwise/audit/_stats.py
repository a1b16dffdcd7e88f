"""The statistical core: per-(cluster, cell) sums and the joint cluster bootstrap.

Every number an audit reports comes from here. The input is per-row ``num`` and ``den``
(see :mod:`groupwise.audit._metrics`), a cluster code per row (the speaker, the person: the unit
that is sampled independently) and one or more *families* of cells (a family is one
grouping such as ``accent`` or ``accent,noise``; each row is in at most one cell of a
family).

The rows are first reduced to sums per (cluster, cell), which are small: a million
utterances from five thousand speakers become at most a few thousand sums per cell. The
bootstrap then draws one multinomial weight vector over *all* clusters per replicate and
applies it to every cell of every family at once (one matrix product per batch of
replicates). Because the same draw serves every cell, cells that share clusters keep their
correlation, and gaps between a group and its reference come out of the same draws. Unlike
a row bootstrap, a cluster can never be split across replicates, so utterances of one
speaker are never treated as independent.

Intervals and tests are built on the log scale, where the bootstrap standard error of an
error rate hardly depends on the estimate: a group value's interval is
``exp(log v +- t * se)`` and the test of "group equals reference" is a t test of the log of
their ratio, both with Student t on (clusters - 1) degrees of freedom and the k/(k-1)
small-sample inflation of cluster-robust inference. With 20 to 25 speakers per group and
log-normal speaker effects, this holds 95% coverage and the Holm family-wise error over 40
groups, where percentile intervals and difference-scale tests do not (the simulations are
in ``tests/test_validity.py`` and ``benchmarks/validity.py``). Where a value or a replicate
is zero the interval falls back to the bootstrap percentile one and the test to the
difference of square roots. The gap's own interval is the percentile interval of the
bootstrap gaps; the ratio's interval is the inverted test, so it excludes 1 exactly when
the unadjusted p-value is below 1 - confidence. Multiplicity is corrected across every
group tested in the run with Holm (family-wise error) or Benjamini-Hochberg (false
discovery rate).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import sparse
from scipy import stats as sstats

__all__ = ["Family", "bootstrap_weights", "holm", "benjamini_hochberg", "adjust", "analyse"]

Compare = Literal["overall", "complement", "best"]
Correction = Literal["holm", "bh", "none"]
Test = Literal["auto", "bootstrap", "permutation"]

# Permutation tests stop being cheap past this many (cluster x permutation) draws.
_PERM_BUDGET = 400_000_000

# Replicates are processed in batches so that a batch of weights stays near this many entries.
_BATCH_ENTRIES = 4_000_000


@dataclass
class Family:
    """One grouping of the rows into cells.

    Attributes
    ----------
    name : str
        For example ``"accent"`` or ``"accent,noise"``.
    codes : numpy.ndarray
        Cell code per row in ``[0, len(labels))``, or -1 for rows outside every cell
        (a missing group value; for an expression family, rows that do not match).
    labels : list of dict
        ``labels[k]`` maps each grouping column to the value of cell ``k``.
    """

    name: str
    codes: np.ndarray
    labels: list[dict[str, Any]]


def bootstrap_weights(rng: np.random.Generator, n_boot: int, n_clusters: int) -> np.ndarray:
    """Multinomial cluster weights, one row per replicate, each row summing to ``n_clusters``.

    Examples
    --------
    >>> w = bootstrap_weights(np.random.default_rng(0), 3, 5)
    >>> w.shape, w.sum(axis=1).tolist()
    ((3, 5), [5.0, 5.0, 5.0])
    """
    draws = rng.integers(0, n_clusters, size=(n_boot, n_clusters))
    draws += np.arange(n_boot)[:, None] * n_clusters
    counts = np.bincount(draws.ravel(), minlength=n_boot * n_clusters)
    return counts.reshape(n_boot, n_clusters).astype(np.float64)


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error under any dependence).

    Examples
    --------
    >>> holm(np.array([0.01, 0.04, 0.03])).round(3).tolist()
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(p, dtype=float)
    m = p.size
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(stepped, 1.0)
    return out


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (false discovery rate, independent or PRDS tests).

    Examples
    --------
    >>> benjamini_hochberg(np.array([0.01, 0.04, 0.03])).round(3).tolist()
    [0.03, 0.04, 0.04]
    """
    p = np.asarray(p, dtype=float)
    m = p.size
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")[::-1]
    ranks = m - np.arange(m)
    stepped = np.minimum.accumulate(p[order] * m / ranks)
    out = np.empty(m)
    out[order] = np.minimum(stepped, 1.0)
    return out


def adjust(p: np.ndarray, method: Correction) -> np.ndarray:
    """Adjust p-values by ``method`` (``"holm"``, ``"bh"`` or ``"none"``)."""
    if method == "holm":
        return holm(p)
    if method == "bh":
        return benjamini_hochberg(p)
    return np.asarray(p, dtype=float).copy()


def _cell_sums(
    cluster: np.ndarray, codes: np.ndarray, arrays: Sequence[np.ndarray], n_clusters: int, n_cells: int
) -> tuple[sparse.csr_matrix, ...]:
    """Per-(cluster, cell) sums of each array as sparse (clusters x cells) matrices."""
    keep = codes >= 0
    key = cluster[keep].astype(np.int64) * n_cells + codes[keep]
    if n_clusters * n_cells <= 4_000_000:
        present = np.bincount(key, minlength=n_clusters * n_cells) > 0
        where = np.flatnonzero(present)
        index = None
    else:
        where, index = np.unique(key, return_inverse=True)
    rows, cols = np.divmod(where, n_cells)
    out = []
    for values in arrays:
        if index is None:
            sums = np.bincount(key, weights=values[keep], minlength=n_clusters * n_cells)[where]
        else:
            sums = np.bincount(index, weights=values[keep], minlength=where.size)
        out.append(sparse.csr_matrix((sums, (rows, cols)), shape=(n_clusters, n_cells)))
    return tuple(out)


def _replicate_sums(design: sparse.csr_matrix, n_boot: int, seed: int | None) -> np.ndarray:
    """Bootstrap sums (n_boot x columns of ``design``), batch by batch."""
    n_clusters = design.shape[0]
    rng = np.random.default_rng(seed)
    batch = max(1, min(n_boot, _BATCH_ENTRIES // max(n_clusters, 1)))
    dense = design.toarray() if n_clusters * design.shape[1] <= 20_000_000 else None
    out = np.empty((n_boot, design.shape[1]))
    for start in range(0, n_boot, batch):
        stop = min(n_boot, start + batch)
        weights = bootstrap_weights(rng, stop - start, n_clusters)
        out[start:stop] = weights @ dense if dense is not None else (design.T @ weights.T).T
    return out


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _percentile_ci(reps: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    tail = (1.0 - level) / 2.0 * 100.0
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(reps)
        lows = np.full(reps.shape[1], np.nan)
        highs = np.full(reps.shape[1], np.nan)
        ok = finite.mean(axis=0) >= 0.5
        if ok.any():
            sub = np.where(finite[:, ok], reps[:, ok], np.nan)
            lows[ok], highs[ok] = np.nanpercentile(sub, [tail, 100.0 - tail], axis=0)
    return lows, highs


def analyse(
    *,
    num: np.ndarray,
    den: np.ndarray,
    cluster: np.ndarray,
    n_clusters: int,
    families: Sequence[Family],
    extra: dict[str, np.ndarray] | None = None,
    n_boot: int = 1000,
    seed: int | None = 0,
    confidence: float = 0.95,
    compare: Compare = "overall",
    correction: Correction = "holm",
    alpha: float = 0.05,
    min_clusters: int = 10,
    min_examples: int = 30,
    higher_is_worse: bool | None = True,
    test: Test = "auto",
    n_perm: int | None = None,
) -> dict[str, Any]:
    """Group values, intervals, gaps and corrected tests for every cell of every family.

    Returns a plain dict with ``overall`` and ``groups`` (one dict per cell, in family
    order), ready for :class:`groupwise.AuditResult`.
    """
    extra = extra or {}
    n_rows = num.size
    tot_num, tot_den = float(num.sum()), float(den.sum())
    overall: dict[str, Any] = {
        "value": tot_num / tot_den if tot_den > 0 else None,
        "n": int(n_rows),
        "clusters": int(n_clusters),
        "num": tot_num,
        "den": tot_den,
    }
    overall.update({k: float(v.sum()) for k, v in extra.items()})

    # One design matrix: overall num and den, then num and den of every cell of every family.
    ones = np.ones(n_rows)
    rows_per_cluster = np.bincount(cluster, minlength=n_clusters)
    blocks = [
        sparse.csr_matrix(
            (np.bincount(cluster, weights=num, minlength=n_clusters), (np.arange(n_clusters), np.zeros(n_clusters, dtype=int))),
            shape=(n_clusters, 1),
        ),
        sparse.csr_matrix(
            (np.bincount(cluster, weights=den, minlength=n_clusters), (np.arange(n_clusters), np.zeros(n_clusters, dtype=int))),
            shape=(n_clusters, 1),
        ),
    ]
    cells: list[dict[str, Any]] = []
    num_blocks: list[sparse.csr_matrix] = []
    family_layout: list[tuple[str, int, int, np.ndarray | None]] = []
    den_blocks: list[sparse.csr_matrix] = []
    for family in families:
        k = len(family.labels)
        if k == 0:
            continue
        fnum, fden, fcount = _cell_sums(cluster, family.codes, [num, den, ones], n_clusters, k)
        num_blocks.append(fnum)
        den_blocks.append(fden)
        clusters_per_cell = np.asarray((fcount > 0).sum(axis=0)).ravel()
        n_per_cell = np.asarray(fcount.sum(axis=0)).ravel()
        num_per_cell = np.asarray(fnum.sum(axis=0)).ravel()
        den_per_cell = np.asarray(fden.sum(axis=0)).ravel()
        # Clusters with rows outside each cell (a speaker recorded in several cells counts
        # on both sides), for the complement's sample size.
        coo = fcount.tocoo()
        partly_out = np.bincount(coo.col, weights=rows_per_cluster[coo.row] > coo.data, minlength=k)
        comp_per_cell = n_clusters - clusters_per_cell + partly_out
        keep = family.codes >= 0
        extra_sums = {
            name: np.bincount(family.codes[keep], weights=values[keep], minlength=k)
            for name, values in extra.items()
        }
        # A family is nested when every cluster sits in one cell (or outside all of them):
        # then permuting cells across clusters is exact under the null.
        cluster_label = np.full(n_clusters, -1, dtype=np.int64)
        cluster_label[cluster] = family.codes
        nested = bool(np.array_equal(cluster_label[cluster], family.codes))
        family_layout.append((family.name, len(cells), k, cluster_label if nested else None))
        for j, label in enumerate(family.labels):
            cells.append(
                {
                    "family": family.name,
                    "group": label,
                    "n": int(n_per_cell[j]),
                    "clusters": int(clusters_per_cell[j]),
                    "num": float(num_per_cell[j]),
                    "den": float(den_per_cell[j]),
                    "_complement_clusters": int(comp_per_cell[j]),
                    **{name: float(s[j]) for name, s in extra_sums.items()},
                }
            )
    design = sparse.hstack(blocks + num_blocks + den_blocks, format="csr")
    reps = _replicate_sums(design, n_boot, seed) if n_boot > 0 else np.empty((0, design.shape[1]))
    rep_tot = _ratio(reps[:, 0], reps[:, 1])
    n_cells = len(cells)
    cell_num = reps[:, 2 : 2 + n_cells]
    cell_den = reps[:, 2 + n_cells :]
    rep_val = _ratio(cell_num, cell_den)
    comp_val = _ratio(reps[:, [0]] - cell_num, reps[:, [1]] - cell_den)

    point = np.array([_ratio(np.array(c["num"]), np.array(c["den"])).item() for c in cells]) if cells else np.empty(0)
    cell_clusters = np.array([c["clusters"] for c in cells], dtype=float)
    low, high = _log_t_interval(point, rep_val, cell_clusters, confidence)
    olow, ohigh = _log_t_interval(
        np.array([overall["value"] if overall["value"] is not None else np.nan]),
        rep_tot[:, None], np.array([float(n_clusters)]), confidence,
    )
    overall["ci_low"], overall["ci_high"] = _none(olow[0]), _none(ohigh[0])

    # Reference per cell.
    sufficient = np.array(
        [c["clusters"] >= min_clusters and c["n"] >= min_examples and c["den"] > 0 for c in cells], dtype=bool
    )
    ref_point = np.full(n_cells, np.nan)
    ref_reps = np.full_like(rep_val, np.nan)
    ref_clusters = np.full(n_cells, n_clusters)
    is_reference = np.zeros(n_cells, dtype=bool)
    comp_clusters = np.array([c.pop("_complement_clusters") for c in cells], dtype=int)
    if compare == "overall":
        ref_point[:] = overall["value"] if overall["value"] is not None else np.nan
        ref_reps[:] = rep_tot[:, None]
    elif compare == "complement":
        comp_den = tot_den - np.array([c["den"] for c in cells])
        ref_point = _ratio(tot_num - np.array([c["num"] for c in cells]), comp_den)
        ref_reps = comp_val
        ref_clusters = comp_clusters
    else:
        start = 0
        for family in families:
            k = len(family.labels)
            idx = np.arange(start, start + k)
            start += k
            candidates = idx[sufficient[idx] & np.isfinite(point[idx])]
            if candidates.size == 0:
                continue
            if higher_is_worse is False or higher_is_worse is None:
                best = candidates[np.argmax(point[candidates])]
            else:
                best = candidates[np.argmin(point[candidates])]
            is_reference[best] = True
            ref_point[idx] = point[best]
            ref_reps[:, idx] = rep_val[:, [best]]
            ref_clusters[idx] = cells[best]["clusters"]

    gap = point - ref_point
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = point / ref_point
    ref_ok = np.isfinite(ref_point) & (
        (compare != "complement")
        | ((comp_clusters >= min_clusters) & (np.array([n_rows - c["n"] for c in cells]) >= min_examples))
    )
    df = np.maximum(np.minimum(cell_clusters, ref_clusters) - 1, 1)
    stat, stat_se, on_log = _test_statistic(point, ref_point, rep_val, ref_reps, np.minimum(cell_clusters, ref_clusters))
    tested = sufficient & ref_ok & ~is_reference & np.isfinite(stat_se)
    with np.errstate(divide="ignore", invalid="ignore"):
        tstat = np.where(stat_se > 0, stat / np.where(stat_se > 0, stat_se, 1.0), np.where(stat == 0, 0.0, np.inf))
    p = np.full(n_cells, np.nan)
    p[tested] = 2.0 * sstats.t.sf(np.abs(tstat[tested]), df[tested])
    gap_low, gap_high = _percentile_ci(rep_val - ref_reps, confidence) if n_cells and n_boot else (np.full(n_cells, np.nan),) * 2
    # The ratio interval is the test inverted, so it excludes 1 exactly when p < 1 - confidence.
    quant = sstats.t.ppf(0.5 + confidence / 2.0, df)
    with np.errstate(over="ignore", invalid="ignore"):
        ratio_low = np.where(on_log, np.exp(stat - quant * stat_se), np.nan)
        ratio_high = np.where(on_log, np.exp(stat + quant * stat_se), np.nan)
    if n_cells and n_boot and not on_log.all():
        with np.errstate(divide="ignore", invalid="ignore"):
            pl, ph = _percentile_ci(rep_val / ref_reps, confidence)
        ratio_low = np.where(on_log, ratio_low, pl)
        ratio_high = np.where(on_log, ratio_high, ph)
    gap_low = np.where(tested, gap_low, np.nan)
    gap_high = np.where(tested, gap_high, np.nan)
    se = stat_se
    method = np.where(tested, "bootstrap", None).astype(object)
    if test != "bootstrap" and compare != "best" and tested.any():
        m = int(tested.sum())
        draws = n_perm if n_perm is not None else int(min(20_000, max(1_000, np.ceil(2 * m / alpha))))
        rng = np.random.default_rng(None if seed is None else seed + 7919)
        cluster_num = np.bincount(cluster, weights=num, minlength=n_clusters)
        cluster_den = np.bincount(cluster, weights=den, minlength=n_clusters)
        for name, start, k, labels in family_layout:
            idx = np.arange(start, start + k)
            if not tested[idx].any():
                continue
            if labels is None or (test == "auto" and n_clusters * draws > _PERM_BUDGET):
                if test == "permutation":
                    raise _not_nested(name, labels is None)
                continue
            perm_p = permutation_p(labels, k, [cluster_num, cluster_den], gap_statistic(compare), draws, rng)
            use = idx[tested[idx]]
            p[use] = perm_p[use - start]
            method[use] = "permutation"
        n_perm_used = draws
    else:
        n_perm_used = 0
    p_adj = np.full(n_cells, np.nan)
    p_adj[tested] = adjust(p[tested], correction)
    flagged = tested & (p_adj <= alpha)

    groups = []
    for j, cell in enumerate(cells):
        if not (cell["den"] > 0):
            status = "undefined"
        elif not sufficient[j]:
            status = "insufficient"
        elif is_reference[j]:
            status = "reference"
        elif not ref_ok[j]:
            status = "insufficient_reference"
        else:
            status = "tested"
        show_ci = status in ("tested", "reference", "insufficient_reference")
        direction = None
        if flagged[j]:
            if higher_is_worse is None:
                direction = "higher" if gap[j] > 0 else "lower"
            else:
                direction = "worse" if (gap[j] > 0) == bool(higher_is_worse) else "better"
        groups.append(
            {
                **cell,
                "value": _none(point[j]),
                "ci_low": _none(low[j]) if show_ci else None,
                "ci_high": _none(high[j]) if show_ci else None,
                "reference_value": _none(ref_point[j]),
                "gap": _none(gap[j]) if status != "undefined" else None,
                "gap_ci_low": _none(gap_low[j]),
                "gap_ci_high": _none(gap_high[j]),
                "ratio": _none(ratio[j]) if status != "undefined" else None,
                "ratio_ci_low": _none(ratio_low[j]) if tested[j] else None,
                "ratio_ci_high": _none(ratio_high[j]) if tested[j] else None,
                "se": _none(se[j]) if tested[j] else None,
                "test": method[j],
                "test_scale": ("log" if on_log[j] else "sqrt") if method[j] == "bootstrap" else None,
                "df": int(df[j]) if tested[j] else None,
                "p_value": _none(p[j]),
                "p_adjusted": _none(p_adj[j]),
                "flagged": bool(flagged[j]),
                "direction": direction,
                "status": status,
            }
        )
    return {"overall": overall, "groups": groups, "n_tested": int(tested.sum()), "n_perm": n_perm_used}


def _not_nested(name: str, not_nested: bool) -> Exception:
    from groupwise._errors import InputError

    if not_nested:
        return InputError(
            f"a permutation test needs clusters nested in groups, but in the family {name!r} some "
            "clusters (speakers) have rows in several groups",
            fix="use test='auto' (--test auto), which takes the bootstrap test for such families",
        )
    return InputError(
        f"a permutation test of the family {name!r} would need more than {_PERM_BUDGET:,} draws",
        fix="use test='auto' or 'bootstrap', or pass fewer permutations (n_perm)",
    )


def gap_statistic(compare: str) -> Callable[[list[np.ndarray], list[float]], np.ndarray]:
    """The permutation statistic of a group's gap: its value minus the reference value."""

    def stat(sums: list[np.ndarray], totals: list[float]) -> np.ndarray:
        gnum, gden = sums
        tot_num, tot_den = totals
        with np.errstate(divide="ignore", invalid="ignore"):
            value = gnum / gden
            if compare == "complement":
                return value - (tot_num - gnum) / (tot_den - gden)
            return value - tot_num / tot_den

    return stat


def permutation_p(
    labels: np.ndarray,
    k: int,
    cluster_sums: Sequence[np.ndarray],
    statistic: Callable[[list[np.ndarray], list[float]], np.ndarray],
    n_perm: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Two-sided permutation p-values of every cell of a family whose clusters are nested.

    Under the null that a group's clusters are exchangeable with all others, shuffling the
    cells among clusters (group sizes in clusters fixed) gives the exact null distribution
    of any statistic of the groups' sums, however skewed the speakers' error rates are.
    ``labels`` is each cluster's cell in ``[-1, k)`` (-1: outside every cell);
    ``cluster_sums`` are per-cluster sums (num, den, ...); ``statistic(sums, totals)``
    maps per-cell sums (each of shape ``(batch, k)``) and the totals to the statistic. p is
    (1 + exceedances) / (1 + permutations), never zero.
    """
    n_clusters = labels.size
    slots = labels + 1  # 0 is "outside every cell"
    totals = [float(a.sum()) for a in cluster_sums]
    observed = [np.bincount(slots, weights=a, minlength=k + 1)[None, 1:] for a in cluster_sums]
    with np.errstate(invalid="ignore"):
        threshold = np.abs(statistic(observed, totals)[0]) * (1 - 1e-10)
    exceed = np.zeros(k)
    batch = max(1, min(n_perm, _BATCH_ENTRIES // max(n_clusters, 1)))
    for start in range(0, n_perm, batch):
        b = min(batch, n_perm - start)
        shuffled = rng.permuted(np.tile(slots, (b, 1)), axis=1)
        flat = (shuffled + (k + 1) * np.arange(b)[:, None]).ravel()
        sums = [
            np.bincount(flat, weights=np.tile(a, b), minlength=b * (k + 1)).reshape(b, k + 1)[:, 1:]
            for a in cluster_sums
        ]
        with np.errstate(invalid="ignore"):
            exceed += (np.abs(statistic(sums, totals)) >= threshold).sum(axis=0)
    return (1.0 + exceed) / (1.0 + n_perm)


def _small_sample(k: np.ndarray) -> np.ndarray:
    """The k/(k-1) variance inflation of cluster-robust inference (CR1), as a factor on se."""
    return np.sqrt(np.where(k > 1, k / np.maximum(k - 1, 1), np.nan))


def _log_sd(reps: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        logs = np.log(reps)
        ok = np.isfinite(logs).all(axis=0) & (reps.shape[0] > 1)
        sd = np.full(reps.shape[1], np.nan)
        if ok.any():
            sd[ok] = np.std(logs[:, ok], axis=0, ddof=1)
    return sd


def _log_t_interval(
    point: np.ndarray, reps: np.ndarray, clusters: np.ndarray, confidence: float
) -> tuple[np.ndarray, np.ndarray]:
    """Intervals exp(log v +- t * se) on the log scale, where every replicate is positive.

    Error rates are right-skewed with few clusters; on the log scale the bootstrap standard
    error is nearly independent of the estimate, so a Student t interval with (clusters - 1)
    degrees of freedom and the CR1 inflation holds its level far better than a percentile
    interval (see ``benchmarks/validity.py``). Cells with a zero value or zero replicates fall
    back to the percentile interval.
    """
    n = point.size
    if n == 0 or reps.shape[0] < 2:
        return np.full(n, np.nan), np.full(n, np.nan)
    sd = _log_sd(reps) * _small_sample(clusters)
    q = sstats.t.ppf(0.5 + confidence / 2.0, np.maximum(clusters - 1, 1))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        centre = np.log(point)
        low = np.exp(centre - q * sd)
        high = np.exp(centre + q * sd)
    use_log = np.isfinite(low) & np.isfinite(high) & (point > 0)
    if not use_log.all():
        plow, phigh = _percentile_ci(reps, confidence)
        low = np.where(use_log, low, plow)
        high = np.where(use_log, high, phigh)
    return low, high


def _test_statistic(
    point: np.ndarray, ref: np.ndarray, reps: np.ndarray, ref_reps: np.ndarray, clusters: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The statistic for 'group equals reference' and its bootstrap standard error.

    On the log scale (the log of the ratio) where both sides and all their replicates are
    positive; there the null distribution is close to t even with 20 clusters and 40 groups
    under Holm. Otherwise (zero errors somewhere) the difference of square roots, the
    variance-stabilising scale of counts. Returns (statistic, se, on_log).
    """
    n = point.size
    if n == 0 or reps.shape[0] < 2:
        return np.full(n, np.nan), np.full(n, np.nan), np.zeros(n, dtype=bool)
    inflate = _small_sample(clusters)
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        log_reps = np.log(reps) - np.log(ref_reps)
        on_log = np.isfinite(log_reps).all(axis=0) & (point > 0) & (ref > 0)
        sqrt_reps = np.sqrt(reps) - np.sqrt(ref_reps)
        stat = np.where(on_log, np.log(point) - np.log(ref), np.sqrt(point) - np.sqrt(ref))
        chosen = np.where(on_log[None, :], log_reps, sqrt_reps)
        se = np.nanstd(np.where(np.isfinite(chosen), chosen, np.nan), axis=0, ddof=1) * inflate
    return stat, se, on_log


def _none(x: Any) -> float | None:
    x = float(x)
    return None if not np.isfinite(x) else x
