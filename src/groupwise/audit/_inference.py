"""Cluster-robust inference for ratios of sums, from per-(cluster, cell) sums.

Every estimate groupwise reports is a ratio ``R = sum(num) / sum(den)`` over a cell's rows,
or a contrast of such ratios (a group against a reference, a condition against a baseline,
a difference of differences). This module holds the three pieces every entry point shares:

1. **Sums.** Rows are reduced to sums per (cluster, cell); every variance below is a sum
   over clusters of products of these, so a million utterances from five thousand speakers
   cost a few sparse passes.
2. **Cluster-robust variance with small-sample corrections.** The influence of cluster
   ``i`` on ``R`` is ``(n_i - R d_i) / D``; the variance of a contrast is the sum over
   clusters of its squared influence, computed once per cell from a Gram of the residual
   and denominator columns, so clusters that appear in several cells (a speaker recorded in
   several noise conditions, the same utterance under baseline and a hum) keep their
   covariance. Each side is inflated by the CR2 leverage factor ``1 / (1 - d_i / D)``
   (Bell and McCaffrey 2002), and tests use Student t with Satterthwaite degrees of freedom
   built from each side's *effective number of clusters*, ``(sum d_i)^2 / sum d_i^2 - 1``
   (Kish), which shrinks with unequal cluster sizes (Carter, Schnepel and Steigerwald 2017).
3. **Count models for few or no errors.** A cell with zero errors has zero empirical
   variance. Tests never use less variance than independent counts at the null (pooled)
   rate would have (Poisson for word and character errors, binomial for 0/1 outcomes),
   as a score test does. Intervals for a group's value invert an exact Poisson (Garwood)
   or Clopper-Pearson bound on the effective sample size ``D / deff`` (Korn and Graubard
   1998, with their degrees-of-freedom factor), where the design effect is evaluated at
   the bound itself: the cell's empirical one carried there by a count model with the
   family's overdispersion (Poisson with a negative-binomial speaker effect,
   ``Var = mu + kappa mu^2`` per cluster, or binomial with intra-cluster correlation,
   ``deff = 1 + (m - 1) rho``; ``kappa`` and ``rho`` by moments from within-cell
   residuals), or the model's alone for a cell without errors. Zero errors in 2,000
   words from 20 speakers thus give an interval like [0, 0.2%], never [0, 0], and a test
   against a 1% reference that is not significant.

Intervals of a contrast and its p-value come from the same t statistic, so an interval
excludes the null value exactly when the p-value is below ``1 - confidence``; ratio
intervals are Fieller intervals with the same critical value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy import special

__all__ = ["CellSums", "cell_sums", "value_interval", "t_contrast", "fieller", "adjust", "holm", "benjamini_hochberg"]

_MAX_LEVERAGE = 0.999


@dataclass
class CellSums:
    """Per-cell totals and variance pieces of one family of cells (or the whole data).

    Attributes
    ----------
    rows, cols : numpy.ndarray
        Cluster and cell of every non-empty (cluster, cell) pair.
    an, ad : numpy.ndarray
        Summed ``num`` and ``den`` of each pair.
    N, D, R : numpy.ndarray
        Per-cell sums and ratio (NaN where ``D`` is 0).
    n, n_den, clusters : numpy.ndarray
        Rows, rows with a non-zero denominator, clusters with a non-zero denominator.
    ee, ed, dd : numpy.ndarray
        Per-cell sums over clusters of ``e^2``, ``e d`` and ``d^2``, where ``e = n_i - R d_i``
        is a cluster's residual and ``d`` its denominator.
    leverage : numpy.ndarray
        The CR2 factor of each cell: ``sum(e^2 / (1 - h)) / sum(e^2)`` with ``h = d_i / D``
        (1 where ``sum(e^2)`` is 0).
    eff_clusters : numpy.ndarray
        Kish's effective number of clusters, ``D^2 / sum(d_i^2)``.
    xbar : numpy.ndarray
        Denominator-weighted mean cluster size, ``sum(d_i^2) / D``.
    e4 : numpy.ndarray
        Per-cell sum of ``e^4``, for the data's own Satterthwaite degrees of freedom
        ``(sum e^2)^2 / sum e^4``, small when a few clusters carry the variance.
    """

    def df(self) -> np.ndarray:
        """Degrees of freedom of each cell: the smaller of Kish's effective clusters - 1 and the data's own."""
        m = np.bincount(self.cols, minlength=self.k) if self.cols.size else np.maximum(self.clusters, 1)
        return np.maximum(np.minimum(self.eff_clusters - 1.0, empirical_df(self.ee, self.e4, m)), 1.0)

    rows: np.ndarray
    cols: np.ndarray
    an: np.ndarray
    ad: np.ndarray
    N: np.ndarray
    D: np.ndarray
    R: np.ndarray
    n: np.ndarray
    n_den: np.ndarray
    clusters: np.ndarray
    ee: np.ndarray
    ed: np.ndarray
    dd: np.ndarray
    leverage: np.ndarray
    eff_clusters: np.ndarray
    xbar: np.ndarray
    e4: np.ndarray
    k: int
    n_clusters: int

    def residual(self) -> np.ndarray:
        """Each pair's residual ``an - R ad`` at its cell's ratio."""
        return self.an - np.nan_to_num(self.R)[self.cols] * self.ad

    def matrix(self, values: np.ndarray) -> sparse.csr_matrix:
        """A (clusters x cells) sparse matrix of per-pair ``values``."""
        return sparse.csr_matrix((values, (self.rows, self.cols)), shape=(self.n_clusters, self.k))


def cell_sums(
    cluster: np.ndarray, codes: np.ndarray, num: np.ndarray, den: np.ndarray, n_clusters: int, k: int,
    count: np.ndarray | None = None, count_den: np.ndarray | None = None,
) -> CellSums:
    """Reduce rows to per-(cluster, cell) sums and the per-cell variance pieces.

    ``codes`` is each row's cell in ``[0, k)`` or -1 (outside every cell). A "row" may
    already be a sum of several examples of one cluster and cell (a streamed audit reduces
    its shards that way): ``count`` is then the number of examples in each row and
    ``count_den`` the number with a non-zero denominator (by default 1 and ``den > 0``).
    Every result depends on the rows only through per-(cluster, cell) sums, so reduced rows
    give exactly the numbers of the examples they stand for.

    Examples
    --------
    >>> s = cell_sums(np.array([0, 0, 1, 2]), np.array([0, 0, 0, 1]), np.array([1., 0., 2., 1.]),
    ...               np.array([2., 2., 4., 4.]), 3, 2)
    >>> s.R.tolist(), s.clusters.tolist()
    ([0.375, 0.25], [2, 1])
    """
    keep = codes >= 0
    all_rows = bool(keep.all())
    key = cluster.astype(np.int64) * k + codes if all_rows else cluster[keep].astype(np.int64) * k + codes[keep]
    num_k, den_k = (num, den) if all_rows else (num[keep], den[keep])
    if count is None:
        w_cnt, w_den = None, (den_k > 0).astype(float)
    else:
        w_cnt = np.asarray(count, dtype=float) if all_rows else np.asarray(count, dtype=float)[keep]
        w_den = np.asarray(count_den, dtype=float) if all_rows else np.asarray(count_den, dtype=float)[keep]
    if n_clusters * k <= 20_000_000:
        # Dense bincounts over every (cluster, cell) pair: linear time, no sort.
        size = n_clusters * k
        cnt_all = np.bincount(key, minlength=size)
        where = np.flatnonzero(cnt_all)
        an = np.bincount(key, weights=num_k, minlength=size)[where]
        ad = np.bincount(key, weights=den_k, minlength=size)[where]
        cnt = cnt_all[where] if w_cnt is None else np.bincount(key, weights=w_cnt, minlength=size)[where]
        cnt_den = np.bincount(key, weights=w_den, minlength=size)[where]
    else:
        where, index = np.unique(key, return_inverse=True)
        an = np.bincount(index, weights=num_k, minlength=where.size)
        ad = np.bincount(index, weights=den_k, minlength=where.size)
        cnt = np.bincount(index, minlength=where.size) if w_cnt is None else np.bincount(index, weights=w_cnt, minlength=where.size)
        cnt_den = np.bincount(index, weights=w_den, minlength=where.size)
    rows, cols = np.divmod(where, k)
    N = np.bincount(cols, weights=an, minlength=k)
    D = np.bincount(cols, weights=ad, minlength=k)
    with np.errstate(divide="ignore", invalid="ignore"):
        R = np.where(D > 0, N / np.where(D > 0, D, 1.0), np.nan)
    e = an - np.nan_to_num(R)[cols] * ad
    ee = np.bincount(cols, weights=e * e, minlength=k)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.minimum(np.where(D[cols] > 0, ad / np.where(D[cols] > 0, D[cols], 1.0), 0.0), _MAX_LEVERAGE)
        ee_cr2 = np.bincount(cols, weights=e * e / (1.0 - h), minlength=k)
        leverage = np.where(ee > 0, ee_cr2 / np.where(ee > 0, ee, 1.0), 1.0)
        sum_d2 = np.bincount(cols, weights=ad * ad, minlength=k)
        eff = np.where(sum_d2 > 0, D * D / np.where(sum_d2 > 0, sum_d2, 1.0), 0.0)
        xbar = np.where(D > 0, sum_d2 / np.where(D > 0, D, 1.0), 0.0)
    return CellSums(
        rows=rows, cols=cols, an=an, ad=ad, N=N, D=D, R=R,
        n=np.bincount(cols, weights=cnt, minlength=k).astype(np.int64),
        n_den=np.bincount(cols, weights=cnt_den, minlength=k).astype(np.int64),
        clusters=np.bincount(cols, weights=(ad > 0).astype(float), minlength=k).astype(np.int64),
        ee=ee, ed=np.bincount(cols, weights=e * ad, minlength=k), dd=sum_d2,
        leverage=leverage, eff_clusters=eff, xbar=xbar, e4=np.bincount(cols, weights=e**4, minlength=k),
        k=k, n_clusters=n_clusters,
    )


def empirical_df(s2: np.ndarray, s4: np.ndarray, m: np.ndarray | None = None) -> np.ndarray:
    """Degrees of freedom of a sum of squared cluster terms, from the data: ``s2^2 / s4``.

    ``s2`` and ``s4`` are the sums of the terms' squares and fourth powers. This is the
    Satterthwaite form with the terms' own fourth moments and no normal-theory credit: about
    ``m / 3`` for ``m`` normal terms and much smaller when a few clusters carry the variance
    (skewed speakers, very unequal sizes). It is deliberately conservative: with
    log-normal speaker effects the t statistic of a ratio is skewed, and only this small
    a number of degrees of freedom keeps Holm's far tail (p < alpha / 40) at its level in
    simulation, where ``2 s2^2 / (s4 - s2^2 / m)`` (about ``m`` for normal terms) flagged
    3.6 times too often (``benchmarks/validity.py``).
    """
    s2, s4 = np.asarray(s2, dtype=float), np.asarray(s4, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(s4 > 0, s2**2 / np.where(s4 > 0, s4, 1.0), np.inf)


def dispersion(kind: str, s: CellSums) -> float:
    """Overdispersion of the family's clusters by moments: ``kappa`` (counts) or ``rho`` (0/1).

    For counts, ``E[e_i^2] = R d_i + kappa R^2 d_i^2`` (a negative-binomial speaker effect);
    for 0/1 outcomes, ``E[e_i^2] = R (1 - R) d_i (1 + (d_i - 1) rho)``. Residuals are taken
    within each cell, so differences between cells do not count as overdispersion. Never
    negative; 0 for continuous metrics.
    """
    if kind not in ("count", "binary") or s.rows.size == 0:
        return 0.0
    R = np.nan_to_num(s.R)[s.cols]
    e = s.residual()
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.minimum(np.where(s.D[s.cols] > 0, s.ad / s.D[s.cols], 0.0), _MAX_LEVERAGE)
    e2 = float(np.sum(e * e / (1.0 - h)))
    if kind == "count":
        base, slope = float(np.sum(R * s.ad)), float(np.sum(R * R * s.ad * s.ad))
    else:
        phi = R * (1.0 - R)
        base, slope = float(np.sum(phi * s.ad)), float(np.sum(phi * s.ad * np.maximum(s.ad - 1.0, 0.0)))
    if slope <= 0:
        return 0.0
    return max(0.0, (e2 - base) / slope)


def design_effect(kind: str, rate: np.ndarray, xbar: np.ndarray, disp: float) -> np.ndarray:
    """The count model's design effect at ``rate`` for cells of mean cluster size ``xbar``."""
    rate = np.asarray(rate, dtype=float)
    if kind == "count":
        return 1.0 + disp * np.maximum(rate, 0.0) * xbar
    if kind == "binary":
        return 1.0 + np.maximum(xbar - 1.0, 0.0) * disp
    return np.ones_like(rate)


def model_variance(kind: str, rate: np.ndarray, D: np.ndarray, xbar: np.ndarray, disp: float) -> np.ndarray:
    """Variance of a cell's ratio under the count model at ``rate`` (0 for continuous metrics)."""
    rate = np.clip(np.asarray(rate, dtype=float), 0.0, None)
    if kind == "count":
        phi = rate
    elif kind == "binary":
        phi = rate * (1.0 - np.minimum(rate, 1.0))
    else:
        return np.zeros_like(rate)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(D > 0, phi * design_effect(kind, rate, xbar, disp) / np.where(D > 0, D, 1.0), np.nan)


def value_se(kind: str, s: CellSums, disp: float) -> np.ndarray:
    """Standard error of each cell's ratio: the CR2 cluster-robust variance, never below the
    count model's at the cell's own rate (so a cell without errors still has one).

    With :meth:`CellSums.df` this is what a comparison of two independent measurements of
    the same cell needs (a service card's diff between versions).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        v_rob = np.where(s.D > 0, s.ee * s.leverage / np.where(s.D > 0, s.D, 1.0) ** 2, np.nan)
        v = np.fmax(v_rob, model_variance(kind, np.nan_to_num(s.R), s.D, s.xbar, disp))
    return np.sqrt(v)


def value_interval(
    kind: str, s: CellSums, disp: float, confidence: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Interval of each cell's ratio; returns (low, high, degrees of freedom).

    Counts and 0/1 outcomes: the exact Poisson (Garwood) or Clopper-Pearson interval of the
    effective count ``R n_eff`` in ``n_eff = D / deff`` units, where ``deff`` is the cell's
    empirical design effect (cluster-robust over model variance, at least 1) carried to the
    bound being computed by the count model's shape (score-type: the variance is evaluated
    where the bound is), or the model's alone for a cell without errors, and ``n_eff``
    carries the Korn-Graubard factor ``(z / t_df)^2``. Continuous metrics: ``R +- t_df se``.
    """
    alpha = 1.0 - confidence
    df = s.df()
    with np.errstate(divide="ignore", invalid="ignore"):
        v_rob = np.where(s.D > 0, s.ee * s.leverage / np.where(s.D > 0, s.D, 1.0) ** 2, np.nan)
    R = s.R
    if kind not in ("count", "binary"):
        q = special.stdtrit(df, 1 - alpha / 2)
        se = np.sqrt(v_rob)
        return R - q * se, R + q * se, df
    z = special.ndtri(1 - alpha / 2)
    kg = (z / special.stdtrit(df, 1 - alpha / 2)) ** 2
    m_own = model_variance(kind, R, s.D, s.xbar, disp)
    with np.errstate(divide="ignore", invalid="ignore"):
        base = model_variance(kind, R, s.D, s.xbar, 0.0)
        deff_emp = np.where(base > 0, v_rob / np.where(base > 0, base, 1.0), 1.0)
    deff_emp = np.nan_to_num(deff_emp, nan=1.0)
    del m_own

    model_here = design_effect(kind, np.nan_to_num(R), s.xbar, disp)

    def bound(upper: bool) -> np.ndarray:
        # The design effect at the bound: the cell's own (empirical) one carried to the
        # bound by the model's shape; with no errors, the model's alone.
        b = np.where(np.isfinite(R), R, 0.0).copy()
        for _ in range(40):
            shape = design_effect(kind, b, s.xbar, disp) / model_here
            deff = np.where(np.nan_to_num(R) > 0, np.maximum(deff_emp * shape, 1.0), design_effect(kind, b, s.xbar, disp))
            with np.errstate(divide="ignore", invalid="ignore"):
                n_eff = s.D / deff * kg
            x = np.nan_to_num(R) * n_eff
            new = _exact(kind, x, n_eff, alpha, upper)
            if np.allclose(new, b, rtol=1e-9, atol=1e-12, equal_nan=True):
                b = new
                break
            b = new
        return b

    low, high = bound(False), bound(True)
    undefined = ~(s.D > 0)
    low[undefined] = np.nan
    high[undefined] = np.nan
    return low, high, df


def _exact(kind: str, x: np.ndarray, n: np.ndarray, alpha: float, upper: bool) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "count":
            if upper:
                return special.gammaincinv(x + 1.0, 1 - alpha / 2) / n
            return np.where(x > 0, special.gammaincinv(np.maximum(x, 1e-300), alpha / 2) / n, 0.0)
        x = np.minimum(x, n)
        if upper:
            return np.where(x < n, special.betaincinv(x + 1.0, np.maximum(n - x, 1e-300), 1 - alpha / 2), 1.0)
        return np.where(x > 0, special.betaincinv(np.maximum(x, 1e-300), n - x + 1.0, alpha / 2), 0.0)


def t_contrast(
    estimate: np.ndarray, variance: np.ndarray, df: np.ndarray, confidence: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two-sided t test of ``estimate = 0`` and the matching interval.

    Returns (se, t, p, low, high). The interval excludes 0 exactly when ``p < 1 -
    confidence``. A zero variance with a zero estimate gives p = 1; with a non-zero
    estimate, NaN (no test: the data show no variation to judge it by).
    """
    estimate = np.asarray(estimate, dtype=float)
    se = np.sqrt(np.maximum(np.asarray(variance, dtype=float), 0.0))
    df = np.maximum(np.asarray(df, dtype=float), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(se > 0, estimate / np.where(se > 0, se, 1.0), np.where(estimate == 0, 0.0, np.nan))
    p = np.where(np.isfinite(t), 2.0 * special.stdtr(df, -np.abs(t)), np.nan)
    q = special.stdtrit(df, 0.5 + confidence / 2.0)
    return se, t, p, estimate - q * se, estimate + q * se


def fieller(
    a: np.ndarray, b: np.ndarray, va: np.ndarray, vb: np.ndarray, cov: np.ndarray, q: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Fieller interval of ``a / b`` at critical value ``q``; NaN where it is unbounded.

    It is the set of ``r`` whose t statistic ``(a - r b) / se(a - r b)`` is within ``q``,
    so it excludes 1 exactly when the t test of ``a - b`` rejects at ``q``.
    """
    q2 = np.asarray(q, dtype=float) ** 2
    A = b * b - q2 * vb
    B = -2.0 * (a * b - q2 * cov)
    C = a * a - q2 * va
    disc = B * B - 4 * A * C
    ok = (A > 0) & (disc >= 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        root = np.sqrt(np.where(ok, disc, 0.0))
        low = np.where(ok, (-B - root) / (2 * np.where(ok, A, 1.0)), np.nan)
        high = np.where(ok, (-B + root) / (2 * np.where(ok, A, 1.0)), np.nan)
    return low, high


def welch_df(parts: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Satterthwaite degrees of freedom of a sum of variance parts ``(v_j, df_j)``."""
    total = sum(np.maximum(v, 0.0) for v, _ in parts)
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = sum(np.maximum(v, 0.0) ** 2 / np.maximum(d, 1.0) for v, d in parts)
        out = np.where(denom > 0, total**2 / np.where(denom > 0, denom, 1.0), np.nan)
    fallback = np.minimum.reduce([np.maximum(d, 1.0) for _, d in parts])
    return np.maximum(np.where(np.isfinite(out), out, fallback), 1.0)


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


def adjust(p: np.ndarray, method: str) -> np.ndarray:
    """Adjust p-values by ``method`` (``"holm"``, ``"bh"`` or ``"none"``).

    Examples
    --------
    >>> adjust(np.array([0.01, 0.02]), "none").tolist()
    [0.01, 0.02]
    """
    if method == "holm":
        return holm(p)
    if method == "bh":
        return benjamini_hochberg(p)
    return np.asarray(p, dtype=float).copy()
