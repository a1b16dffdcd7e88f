"""The audit's statistics: group values, intervals, gaps and corrected tests.

The input is per-row ``num`` and ``den`` (see :mod:`groupwise.audit._metrics`), a cluster
code per row (the speaker, the person: the unit sampled independently) and one or more
*families* of cells (a family is one grouping such as ``accent`` or ``accent,noise``; each
row is in at most one cell of a family). Rows are reduced to per-(cluster, cell) sums and
every number comes from the cluster-robust machinery of :mod:`groupwise.audit._inference`:

- a group's **value** is ``sum(num) / sum(den)`` with an exact count-model interval on its
  effective sample size (never [0, 0] for a group without errors);
- its **gap** against the reference (``overall``, ``complement`` or ``best``) is tested with
  a studentised statistic, the log of the ratio to the reference (the difference when one
  side has no errors) over its cluster-robust standard error: CR2-corrected variance,
  Satterthwaite degrees of freedom from effective numbers of clusters and from the data,
  and never less variance than independent counts at the pooled rate (score-type, so few
  or no errors never give a tiny p-value). The gap and ratio intervals and the p-value
  come from the same statistic, so they agree;
- ``best`` accounts for choosing the best group from the data: a group is flagged only if
  it is significantly worse than some other group of its family, each group's p-value
  being Bonferroni-corrected over the groups it is compared with, in the manner of Hsu's
  multiple comparisons with the best (1984);
- p-values are corrected across every group tested in the run with Holm (family-wise) or
  Benjamini-Hochberg (false discovery rate). A two-group family compared with its
  complement (or the overall value) asks one question, so it counts once.

Groups with fewer clusters or examples than the minimum *that enter the denominator* are
``insufficient``: no interval and no test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from groupwise.audit._inference import (
    CellSums,
    adjust,
    benjamini_hochberg,
    cell_sums,
    dispersion,
    holm,
    t_contrast,
    value_interval,
    value_se,
    welch_df,
)

__all__ = ["Family", "holm", "benjamini_hochberg", "adjust", "analyse"]

Compare = Literal["overall", "complement", "best"]
Correction = Literal["holm", "bh", "none"]
Test = Literal["auto", "t", "permutation"]

# Permutations stop being cheap past this many (cluster x permutation) draws.
_PERM_BUDGET = 400_000_000
_PERM_CAP = 20_000


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


def analyse(
    *,
    num: np.ndarray,
    den: np.ndarray,
    cluster: np.ndarray,
    n_clusters: int,
    families: Sequence[Family],
    extra: dict[str, np.ndarray] | None = None,
    kind: str = "count",
    inference: bool = True,
    confidence: float = 0.95,
    compare: Compare | tuple[str, Any] = "overall",
    correction: Correction = "holm",
    alpha: float = 0.05,
    min_clusters: int = 10,
    min_examples: int = 30,
    higher_is_worse: bool | None = True,
    test: Test = "auto",
    n_perm: int | None = None,
    seed: int | None = 0,
    count: np.ndarray | None = None,
    count_den: np.ndarray | None = None,
) -> dict[str, Any]:
    """Group values, intervals, gaps and corrected tests for every cell of every family.

    Each row is one example, or with ``count`` and ``count_den`` a sum over ``count``
    examples of one cluster and one cell of every family (``count_den`` of them with a
    non-zero denominator); the results are the same either way.

    ``compare`` is ``"overall"``, ``"complement"``, ``"best"`` or a named group as
    ``(column, value)``: each cell against the cell with that value and its own values of
    the family's other columns.

    ``kind`` is the metric's kind (``"count"``, ``"binary"`` or ``"continuous"``, see
    :class:`groupwise.audit._metrics.Metric`); ``inference=False`` gives point estimates
    only. Returns a plain dict with ``overall`` and ``groups`` (one dict per cell, in
    family order), ready for :class:`groupwise.AuditResult`.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> cluster = np.repeat(np.arange(40), 10)
    >>> words = rng.integers(5, 15, 400).astype(float)
    >>> errors = rng.binomial(words.astype(int), np.where(cluster < 20, 0.1, 0.3)).astype(float)
    >>> fam = Family("accent", (cluster >= 20).astype(np.int64), [{"accent": "a"}, {"accent": "b"}])
    >>> out = analyse(num=errors, den=words, cluster=cluster, n_clusters=40, families=[fam])
    >>> [(g["group"]["accent"], g["flagged"], g["direction"]) for g in out["groups"]]
    [('a', True, 'better'), ('b', True, 'worse')]
    """
    extra = extra or {}
    if (count is None) != (count_den is None):
        raise ValueError("count and count_den go together")
    n_rows = num.size if count is None else int(np.sum(count))
    total = cell_sums(cluster, np.zeros(num.size, dtype=np.int64), num, den, n_clusters, 1, count, count_den)
    disp_total = dispersion(kind, total)
    tot_num, tot_den = float(total.N[0]), float(total.D[0])
    R_T = float(total.R[0]) if tot_den > 0 else np.nan
    overall: dict[str, Any] = {
        "value": _none(R_T),
        "n": int(n_rows),
        "clusters": int(n_clusters),
        "n_with_den": int(total.n_den[0]),
        "clusters_with_den": int(total.clusters[0]),
        "num": tot_num,
        "den": tot_den,
        "ci_low": None,
        "ci_high": None,
    }
    overall.update({k: float(v.sum()) for k, v in extra.items()})
    if inference and tot_den > 0:
        lo, hi, _ = value_interval(kind, total, disp_total, confidence)
        overall["ci_low"], overall["ci_high"] = _none(lo[0]), _none(hi[0])

    # Per-cluster totals, for every contrast with the overall value or a complement.
    d_T = np.bincount(cluster, weights=den, minlength=n_clusters)
    n_T = np.bincount(cluster, weights=num, minlength=n_clusters)
    e_T = n_T - (0.0 if not np.isfinite(R_T) else R_T) * d_T
    Tee, Ted, Tdd = float(e_T @ e_T), float(e_T @ d_T), float(d_T @ d_T)
    lam_T = float(total.leverage[0])
    eff_T = float(total.eff_clusters[0])
    xbar_T = float(total.xbar[0])
    orient = -1.0 if higher_is_worse is False or higher_is_worse is None else 1.0

    groups: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []  # per family, arrays to be written once p is adjusted
    notes: list[str] = []
    m_planned = sum(len(f.labels) for f in families)
    draws = n_perm if n_perm is not None else int(min(_PERM_CAP, max(1_000, np.ceil(2 * m_planned / alpha))))
    rng = np.random.default_rng(None if seed is None else seed + 7919)
    n_perm_used = 0
    for family in families:
        k = len(family.labels)
        if k == 0:
            continue
        s = cell_sums(cluster, family.codes, num, den, n_clusters, k, count, count_den)
        disp = dispersion(kind, s)
        keep = family.codes >= 0
        kept = None if keep.all() else np.flatnonzero(keep)
        codes_kept = family.codes if kept is None else family.codes[kept]
        extra_sums = {
            name: np.bincount(codes_kept, weights=values if kept is None else values[kept], minlength=k)
            for name, values in extra.items()
        }
        sufficient = (s.clusters >= min_clusters) & (s.n_den >= min_examples) & (s.D > 0)
        if inference:
            low, high, _ = value_interval(kind, s, disp, confidence)
            se_value, df_value = value_se(kind, s, disp), s.df()
        else:
            low = high = se_value = df_value = np.full(k, np.nan)
        role = None
        if isinstance(compare, tuple):
            out, role = _named(
                s, family.labels, e=s.residual(), kind=kind, confidence=confidence, sufficient=sufficient,
                column=compare[0], value=compare[1],
            )
        else:
            out = _contrasts(
                s, disp=disp, kind=kind, compare=compare, confidence=confidence, sufficient=sufficient,
                R_T=R_T, D_T=tot_den, N_T=tot_num, e_T=e_T, d_T=d_T, Tee=Tee, Ted=Ted, Tdd=Tdd, lam_T=lam_T,
                eff_T=eff_T, xbar_T=xbar_T, disp_T=disp_total, orient=orient, min_clusters=min_clusters,
                min_examples=min_examples, n_rows=n_rows, n_den_total=int(total.n_den[0]),
                n_clusters_den=int(total.clusters[0]), nu_T=float(total.df()[0]),
            )
        test_name = "cluster-robust t"
        if inference and compare in ("overall", "complement") and test == "permutation" and k > 0:
            labels = _nested_labels(cluster, family.codes, n_clusters)
            reason = None
            if labels is None:
                reason = f"in the family {family.name!r} some clusters have rows in several groups (or rows without a group value)"
            elif n_perm is None and 2 * m_planned / alpha > _PERM_CAP:
                reason = (f"{m_planned} tests would need more than {_PERM_CAP:,} permutations for a corrected p-value "
                          f"to reach alpha={alpha}")
            elif n_clusters * draws > _PERM_BUDGET:
                reason = f"{n_clusters:,} clusters x {draws:,} permutations is past the permutation budget"
            if reason is not None:
                if test == "permutation":
                    raise _no_permutation(family.name, reason)
                notes.append(f"{family.name}: cluster-robust t test, because {reason}")
            else:
                perm_p, crit = _permutation(
                    labels, k, n_T=n_T, d_T=d_T, kind=kind, disp=disp, disp_T=disp_total, R_T=R_T, N_T=tot_num,
                    D_T=tot_den, Tee=Tee, Ted=Ted, Tdd=Tdd, xbar_T=xbar_T, compare=compare, n_perm=draws, rng=rng,
                    confidence=confidence, observed=s,
                )
                out = _contrasts(
                    s, disp=disp, kind=kind, compare=compare, confidence=confidence, sufficient=sufficient,
                    R_T=R_T, D_T=tot_den, N_T=tot_num, e_T=e_T, d_T=d_T, Tee=Tee, Ted=Ted, Tdd=Tdd, lam_T=1.0,
                    eff_T=eff_T, xbar_T=xbar_T, disp_T=disp_total, orient=orient, min_clusters=min_clusters,
                    min_examples=min_examples, n_rows=n_rows, n_den_total=int(total.n_den[0]),
                    n_clusters_den=int(total.clusters[0]), permutation=(perm_p, crit),
                )
                test_name = "studentised permutation"
                n_perm_used = draws
        tested = sufficient & out["ref_ok"] & np.isfinite(out["p"]) & inference
        # Two groups that fill their family, each against the other (or the overall value),
        # ask the same question: count it once.
        mirror = compare in ("overall", "complement") and k == 2 and bool(keep.all()) and tested.all()
        for j, label in enumerate(family.labels):
            groups.append(
                {
                    "family": family.name,
                    "group": label,
                    "n": int(s.n[j]),
                    "clusters": int(s.clusters[j]),
                    "n_with_den": int(s.n_den[j]),
                    "num": float(s.N[j]),
                    "den": float(s.D[j]),
                    **{name: float(v[j]) for name, v in extra_sums.items()},
                }
            )
        pending.append(
            {"start": len(groups) - k, "k": k, "s": s, "sufficient": sufficient, "tested": tested, "mirror": mirror,
             "low": low, "high": high, "se_value": se_value, "df_value": df_value, "test_name": test_name, "role": role,
             **out}
        )

    # One correction across every test of the run.
    p_all: list[float] = []
    slots: list[list[int]] = []
    for block in pending:
        idx = np.flatnonzero(block["tested"])
        if block["mirror"]:
            p_all.append(float(np.max(block["p"][idx])))
            slots.append([block["start"] + int(i) for i in idx])
        else:
            for i in idx:
                p_all.append(float(block["p"][i]))
                slots.append([block["start"] + int(i)])
    p_adj_all = adjust(np.array(p_all), correction) if p_all else np.empty(0)
    p_adj = np.full(len(groups), np.nan)
    for padj, where in zip(p_adj_all, slots):
        p_adj[where] = padj

    for block in pending:
        s, k, start = block["s"], block["k"], block["start"]
        for j in range(k):
            g = groups[start + j]
            if not (s.D[j] > 0):
                status = "undefined"
            elif not block["sufficient"][j]:
                status = "insufficient"
            elif block["role"] is not None and block["role"][j] == 1:
                status = "reference"
            elif block["role"] is not None and block["role"][j] == -1:
                status = "no_reference"
            elif not block["ref_ok"][j]:
                status = "insufficient_reference"
            elif not block["tested"][j]:
                status = "untestable" if inference else "not_tested"
            else:
                status = "tested"
            tested = status == "tested"
            show_ci = inference and status in ("tested", "insufficient_reference", "untestable", "reference", "no_reference")
            pa = p_adj[start + j]
            flagged = bool(tested and pa <= alpha)
            gap = block["gap"][j]
            direction = None
            if flagged:
                if higher_is_worse is None:
                    direction = "higher" if gap > 0 else "lower"
                else:
                    direction = "worse" if (gap > 0) == bool(higher_is_worse) else "better"
            g.update(
                {
                    "value": _none(s.R[j]),
                    "ci_low": _none(block["low"][j]) if show_ci else None,
                    "ci_high": _none(block["high"][j]) if show_ci else None,
                    "se_value": _none(block["se_value"][j]) if show_ci else None,
                    "df_value": _none(round(float(block["df_value"][j]), 2)) if show_ci else None,
                    "reference_value": _none(block["ref"][j]),
                    "gap": _none(gap) if status != "undefined" else None,
                    "gap_ci_low": _none(block["gap_low"][j]) if tested else None,
                    "gap_ci_high": _none(block["gap_high"][j]) if tested else None,
                    "ratio": _none(block["ratio"][j]) if status != "undefined" else None,
                    "ratio_ci_low": _none(block["ratio_low"][j]) if tested else None,
                    "ratio_ci_high": _none(block["ratio_high"][j]) if tested else None,
                    "se": _none(block["se"][j]) if tested else None,
                    "df": _none(round(float(block["df"][j]), 2)) if tested else None,
                    "test": block.get("test_name", "cluster-robust t") if tested else None,
                    "test_scale": block["scale"][j] if tested else None,
                    "variance": block["variance_source"][j] if tested else None,
                    "p_value": _none(block["p"][j]) if tested else None,
                    "p_adjusted": _none(pa) if tested else None,
                    "flagged": flagged,
                    "direction": direction,
                    "status": status,
                }
            )
    n_tests = len(p_all)
    return {
        "overall": overall, "groups": groups, "n_tested": int(sum(len(w) for w in slots)), "n_tests": n_tests,
        "tests": list(zip(slots, p_all)),
        "n_perm": n_perm_used, "notes": notes,
    }


def _contrasts(
    s: CellSums,
    *,
    disp: float,
    kind: str,
    compare: str,
    confidence: float,
    sufficient: np.ndarray,
    R_T: float,
    D_T: float,
    N_T: float,
    e_T: np.ndarray,
    d_T: np.ndarray,
    Tee: float,
    Ted: float,
    Tdd: float,
    lam_T: float,
    eff_T: float,
    xbar_T: float,
    disp_T: float,
    orient: float,
    min_clusters: int,
    min_examples: int,
    n_rows: int,
    n_den_total: int,
    n_clusters_den: int,
    nu_T: float | None = None,
    permutation: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Each cell against its reference: estimate, variance, df, test and intervals.

    With ``permutation=(p, crit)`` the p-values and the critical value of the intervals
    are the studentised permutation test's, and the statistic is computed without the
    CR2 factor, exactly as inside the permutations.
    """
    if compare == "best":
        return _best(s, e=s.residual(), kind=kind, disp=disp, confidence=confidence, sufficient=sufficient, orient=orient)
    k = s.k
    e = s.residual()
    # Cross sums of each cell's cluster residuals and denominators with the clusters' totals.
    cross = {
        "EeT": np.bincount(s.cols, weights=e * e_T[s.rows], minlength=k),
        "EdT": np.bincount(s.cols, weights=e * d_T[s.rows], minlength=k),
        "DeT": np.bincount(s.cols, weights=s.ad * e_T[s.rows], minlength=k),
        "DdT": np.bincount(s.cols, weights=s.ad * d_T[s.rows], minlength=k),
    }
    core = contrast_core(
        R=s.R, N=s.N, D=s.D, ee=s.ee, ed=s.ed, dd=s.dd, **cross, lam_A=s.leverage if permutation is None else 1.0,
        nu_A=s.df(), nu_T=nu_T,
        R_T=R_T, N_T=N_T, D_T=D_T, Tee=Tee, Ted=Ted, Tdd=Tdd, lam_T=lam_T, kind=kind, disp=disp,
        disp_T=disp_T, xbar_T=xbar_T, compare=compare,
    )
    if compare == "overall":
        ref_ok = np.full(k, np.isfinite(R_T))
    else:
        # The complement needs the same minimum support as a group.
        comp_clusters = n_clusters_den - s.clusters + _partly_outside(s, d_T)
        comp_rows = n_den_total - s.n_den
        ref_ok = (comp_clusters >= min_clusters) & (comp_rows >= min_examples) & (core["ref_D"] > 0)
    if permutation is not None:
        core["p"], core["crit"] = permutation
    out = finish_contrast(core, s.R, confidence)
    out["ref_ok"] = ref_ok
    return out


def correct_jointly(
    runs: Sequence[dict[str, Any]], *, correction: Correction, alpha: float, higher_is_worse: bool | None
) -> list[dict[str, Any]]:
    """Groups of several :func:`analyse` runs (one per stratum), corrected as one family.

    Each run's tests (mirror pairs counted once) enter one Holm or Benjamini-Hochberg
    correction; adjusted p-values, flags and directions are rewritten.
    """
    groups: list[dict[str, Any]] = []
    tests: list[tuple[list[int], float]] = []
    for run in runs:
        offset = len(groups)
        groups += run["groups"]
        tests += [([offset + i for i in where], p) for where, p in run["tests"]]
    adjusted = adjust(np.array([p for _, p in tests]), correction) if tests else np.empty(0)
    for (where, _), padj in zip(tests, adjusted):
        for i in where:
            g = groups[i]
            g["p_adjusted"] = float(padj)
            g["flagged"] = bool(padj <= alpha)
            g["direction"] = None
            if g["flagged"]:
                if higher_is_worse is None:
                    g["direction"] = "higher" if g["gap"] > 0 else "lower"
                else:
                    g["direction"] = "worse" if (g["gap"] > 0) == bool(higher_is_worse) else "better"
    return groups


def _nested_labels(cluster: np.ndarray, codes: np.ndarray, n_clusters: int) -> np.ndarray | None:
    """Each cluster's cell when every cluster's rows share one cell (or all have none)."""
    label = np.full(n_clusters, -2, dtype=np.int64)
    label[cluster] = codes
    if not np.array_equal(label[cluster], codes):
        return None
    return np.where(label == -2, -1, label)


def _permutation(
    labels: np.ndarray,
    k: int,
    *,
    n_T: np.ndarray,
    d_T: np.ndarray,
    kind: str,
    disp: float,
    disp_T: float,
    R_T: float,
    N_T: float,
    D_T: float,
    Tee: float,
    Ted: float,
    Tdd: float,
    xbar_T: float,
    compare: str,
    n_perm: int,
    rng: np.random.Generator,
    confidence: float,
    observed: CellSums,
) -> tuple[np.ndarray, np.ndarray]:
    """Studentised cluster permutation test of every cell of a nested family.

    Groups are shuffled among the clusters that have one (clusters without a group value
    stay in the rest), and the statistic is the same studentised contrast as the t test
    (Chung and Romano 2013): exact when clusters are exchangeable across groups, and
    asymptotically valid when groups differ in spread, where a raw gap is not. Returns
    two-sided p-values ``(1 + exceedances) / (1 + permutations)`` and each cell's critical
    value (the ``confidence`` quantile of the permuted ``|T|``), which the intervals use.
    """
    have = np.flatnonzero(labels >= 0)
    slots = labels[have]
    arrays = [n_T[have], d_T[have], n_T[have] ** 2, n_T[have] * d_T[have], d_T[have] ** 2]

    def stat(sums: list[np.ndarray]) -> np.ndarray:
        N, D, Snn, Snd, Sdd = sums
        with np.errstate(divide="ignore", invalid="ignore"):
            R = np.where(D > 0, N / np.where(D > 0, D, 1.0), np.nan)
            Rz = np.nan_to_num(R)
            core = contrast_core(
                R=R, N=N, D=D, ee=Snn - 2 * Rz * Snd + Rz**2 * Sdd, ed=Snd - Rz * Sdd, dd=Sdd,
                EeT=Snn - (Rz + R_T) * Snd + Rz * R_T * Sdd, EdT=Snd - Rz * Sdd, DeT=Snd - R_T * Sdd, DdT=Sdd,
                lam_A=1.0, R_T=R_T, N_T=N_T, D_T=D_T, Tee=Tee, Ted=Ted, Tdd=Tdd, lam_T=1.0, kind=kind, disp=disp,
                disp_T=disp_T, xbar_T=xbar_T, compare=compare,
            )
            return np.abs(core["theta"] / np.sqrt(core["V"]))

    obs = stat([np.bincount(slots, weights=a, minlength=k)[None, :] for a in arrays])[0]
    threshold = obs * (1 - 1e-10)
    exceed = np.zeros(k)
    perm_stats = np.empty((n_perm, k))
    batch = max(1, min(n_perm, 4_000_000 // max(have.size, 1)))
    for start in range(0, n_perm, batch):
        b = min(batch, n_perm - start)
        shuffled = rng.permuted(np.tile(slots, (b, 1)), axis=1)
        flat = (shuffled + k * np.arange(b)[:, None]).ravel()
        sums = [np.bincount(flat, weights=np.tile(a, b), minlength=b * k).reshape(b, k) for a in arrays]
        t = stat(sums)
        t = np.where(np.isfinite(t), t, np.inf)
        perm_stats[start : start + b] = t
        exceed += (t >= threshold).sum(axis=0)
    p = (1.0 + exceed) / (1.0 + n_perm)
    p = np.where(np.isfinite(obs), p, np.nan)
    crit = np.quantile(perm_stats, confidence, axis=0, method="higher")
    return p, crit


def _no_permutation(name: str, reason: str) -> Exception:
    from groupwise._errors import InputError

    return InputError(
        f"test='permutation' (--test permutation) cannot test the family {name!r}: {reason}",
        fix="use test='auto' (the default), which takes the cluster-robust t test where a permutation test "
        "does not apply, or test='t'",
    )


def contrast_core(
    *,
    R: np.ndarray,
    N: np.ndarray,
    D: np.ndarray,
    ee: np.ndarray,
    ed: np.ndarray,
    dd: np.ndarray,
    EeT: np.ndarray,
    EdT: np.ndarray,
    DeT: np.ndarray,
    DdT: np.ndarray,
    lam_A: np.ndarray | float,
    R_T: float,
    nu_A: np.ndarray | None = None,
    nu_T: float | None = None,
    N_T: float,
    D_T: float,
    Tee: float,
    Ted: float,
    Tdd: float,
    lam_T: float,
    kind: str,
    disp: float,
    disp_T: float,
    xbar_T: float,
    compare: str,
) -> dict[str, np.ndarray]:
    """The statistic of 'cell equals reference' from per-cell sums (any array shape).

    The statistic is the log of the ratio of the cell to its reference where both have
    errors, and the difference otherwise (a group with no errors), with the variance of
    the delta method from cluster sums, each side inflated by its CR2 factor, and never
    less than independent counts (Poisson for counts, binomial for 0/1 outcomes) would
    have at the pooled rate: clustering can only add variance, so a cluster-robust
    estimate below that is an artefact of few errors. Degrees of freedom are
    Satterthwaite's over the two sides, each the smaller of Kish's effective clusters - 1
    and the data's own (``(sum e^2)^2 / sum e^4``).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        if nu_A is None:
            nu_A = np.maximum(np.where(dd > 0, D * D / np.where(dd > 0, dd, 1.0), 0.0) - 1.0, 1.0)
        if compare == "overall":
            ref = np.broadcast_to(np.float64(R_T), np.shape(R)).astype(float)
            ref_D = np.broadcast_to(np.float64(D_T), np.shape(R)).astype(float)
            VA_raw = ee / D**2
            VB_raw = np.broadcast_to(np.float64(Tee / D_T**2), np.shape(R))
            C_raw = EeT / (D * D_T)
            nu_B = np.broadcast_to(
                np.float64(nu_T if nu_T is not None else (max(D_T**2 / Tdd - 1.0, 1.0) if Tdd > 0 else 1.0)), np.shape(R)
            )
            pooled = ref
            phi = _phi(kind, pooled)
            # A inside the whole data: Cov(R_A, R_T) = Var(N_A) / (D_A D_T).
            VA_m, VB_m, C_m = phi / D, phi / D_T, phi / D_T
        else:  # complement
            D_c, N_c = D_T - D, N_T - N
            ref = np.where(D_c > 0, N_c / np.where(D_c > 0, D_c, 1.0), np.nan)
            ref_D = D_c
            dT = R_T - ref
            dA = R - ref
            VB_raw = (
                Tee + 2 * dT * Ted + dT**2 * Tdd + ee + 2 * dA * ed + dA**2 * dd
                - 2 * (EeT + dA * DeT + dT * EdT + dT * dA * DdT)
            ) / D_c**2
            VA_raw = ee / D**2
            C_raw = (EeT + dT * EdT - ee - dA * ed) / (D * D_c)
            sum_d2_c = Tdd - 2 * DdT + dd
            nu_B = np.maximum(np.where(sum_d2_c > 0, D_c**2 / np.where(sum_d2_c > 0, sum_d2_c, 1.0), 0.0) - 1.0, 1.0)
            if nu_T is not None:
                nu_B = np.minimum(nu_B, max(nu_T, 1.0))
            pooled = np.broadcast_to(np.float64(R_T), np.shape(R))
            phi = _phi(kind, pooled)
            VA_m, VB_m, C_m = phi / D, phi / D_c, np.zeros(np.shape(R))
        VA = lam_A * VA_raw
        VB = lam_T * VB_raw
        C = np.sqrt(lam_A * lam_T) * C_raw
        on_log = (R > 0) & (ref > 0) & np.isfinite(R) & np.isfinite(ref)
        # Scale factors of the two sides (delta method on the log scale).
        fa = np.where(on_log, 1.0 / np.where(on_log, R, 1.0), 1.0)
        fb = np.where(on_log, 1.0 / np.where(on_log, ref, 1.0), 1.0)
        fm = np.where(on_log & (pooled > 0), 1.0 / np.where(pooled > 0, pooled, 1.0), 1.0)
        va, vb, cv = VA * fa**2, VB * fb**2, C * fa * fb
        va_m, vb_m, cv_m = VA_m * fm**2, VB_m * fm**2, C_m * fm**2
        V = va + vb - 2 * cv
        V_m = va_m + vb_m - 2 * cv_m
        use_model = np.nan_to_num(V_m) > np.nan_to_num(V)
        va = np.where(use_model, va_m, va)
        vb = np.where(use_model, vb_m, vb)
        cv = np.where(use_model, cv_m, cv)
        V = va + vb - 2 * cv
        theta = np.where(on_log, np.log(np.where(on_log, R, 1.0)) - np.log(np.where(on_log, ref, 1.0)), R - ref)
    df = welch_df([(va, nu_A), (vb, nu_B)])
    return {"theta": theta, "V": V, "df": df, "on_log": on_log, "use_model": use_model, "ref": ref, "ref_D": ref_D}


def finish_contrast(core: dict[str, np.ndarray], R: np.ndarray, confidence: float) -> dict[str, np.ndarray]:
    """Test, gap, ratio and their intervals from the statistic (all from one t).

    On the log scale the ratio interval is ``exp(theta +- q se)`` and the gap interval is
    the reference value times (ratio interval - 1); on the difference scale (no errors on
    one side) the gap interval is ``theta +- q se`` and the ratio interval that divided by
    the reference. Either way both exclude no difference exactly when p < 1 - confidence.
    """
    theta, V, df, on_log, ref = core["theta"], core["V"], core["df"], core["on_log"], core["ref"]
    crit = core.get("crit")
    se, t, p, lo, hi = t_contrast(theta, V, df, confidence)
    if crit is not None:  # a permutation critical value and p-value replace Student's
        lo, hi = theta - crit * se, theta + crit * se
        p = core["p"]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = R / ref
        gap = R - ref
        ratio_low = np.where(on_log, np.exp(lo), 1.0 + lo / ref)
        ratio_high = np.where(on_log, np.exp(hi), 1.0 + hi / ref)
        gap_low = np.where(on_log, ref * (np.exp(lo) - 1.0), lo)
        gap_high = np.where(on_log, ref * (np.exp(hi) - 1.0), hi)
    return {
        "ref": ref, "gap": gap, "gap_low": gap_low, "gap_high": gap_high, "ratio": ratio,
        "ratio_low": ratio_low, "ratio_high": ratio_high, "se": se, "df": df, "p": p, "ref_D": core["ref_D"],
        "scale": np.where(on_log, "log ratio", "difference"),
        "variance_source": np.where(core["use_model"], "count model at the pooled rate", "cluster-robust (CR2)"),
    }


def _empty_contrasts(k: int) -> dict[str, np.ndarray]:
    nan = np.full(k, np.nan)
    out: dict[str, np.ndarray] = {
        name: nan.copy() for name in ("ref", "gap", "gap_low", "gap_high", "ratio", "ratio_low", "ratio_high", "se", "df", "p", "ref_D")
    }
    out["ref_ok"] = np.zeros(k, dtype=bool)
    out["variance_source"] = np.full(k, None, dtype=object)
    out["scale"] = np.full(k, None, dtype=object)
    return out


def _pair_grid(s: CellSums, e: np.ndarray, kind: str, idx: np.ndarray, level: float) -> dict[str, np.ndarray]:
    """Every ordered pair (g, j) of the cells ``idx``: the statistic of g against j.

    The log of the ratio (the difference where either has no errors), its variance from
    the clusters' Gram (shared clusters keep their covariance), each side's CR2 factor,
    never less than independent counts at the pair's pooled rate, Satterthwaite degrees of
    freedom; tests and intervals at ``level``.
    """
    m = idx.size
    R, D, Ng = s.R[idx], s.D[idx], s.N[idx]
    E = s.matrix(e)[:, idx]
    gram = (E.T @ E).toarray()
    lam = s.leverage[idx]
    nu = s.df()[idx]
    Rg, Rj = np.broadcast_to(R[:, None], (m, m)), np.broadcast_to(R[None, :], (m, m))
    with np.errstate(divide="ignore", invalid="ignore"):
        V1 = lam * np.diag(gram) / D**2
        C = np.sqrt(np.outer(lam, lam)) * gram / np.outer(D, D)
        np.fill_diagonal(C, 0.0)
        pooled = (Ng[:, None] + Ng[None, :]) / (D[:, None] + D[None, :])
        phi = _phi(kind, pooled)
        on_log = (Rg > 0) & (Rj > 0)
        fa = np.where(on_log, 1.0 / np.where(on_log, Rg, 1.0), 1.0)
        fb = np.where(on_log, 1.0 / np.where(on_log, Rj, 1.0), 1.0)
        fm = np.where(on_log & (pooled > 0), 1.0 / np.where(pooled > 0, pooled, 1.0), 1.0)
        va, vb, cv = V1[:, None] * fa**2, V1[None, :] * fb**2, C * fa * fb
        va_m, vb_m = phi / D[:, None] * fm**2, phi / D[None, :] * fm**2
        use_model = np.nan_to_num(va_m + vb_m) > np.nan_to_num(va + vb - 2 * cv)
        va, vb, cv = np.where(use_model, va_m, va), np.where(use_model, vb_m, vb), np.where(use_model, 0.0, cv)
        theta = np.where(on_log, np.log(np.where(on_log, Rg, 1.0)) - np.log(np.where(on_log, Rj, 1.0)), Rg - Rj)
    df = welch_df([(va, np.broadcast_to(nu[:, None], (m, m))), (vb, np.broadcast_to(nu[None, :], (m, m)))])
    se, _, p, lo, hi = t_contrast(theta, va + vb - 2 * cv, df, level)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        g_lo = np.where(on_log, Rj * (np.exp(lo) - 1.0), lo)
        g_hi = np.where(on_log, Rj * (np.exp(hi) - 1.0), hi)
        r_lo = np.where(on_log, np.exp(lo), 1.0 + lo / Rj)
        r_hi = np.where(on_log, np.exp(hi), 1.0 + hi / Rj)
    return {"R": R, "D": D, "se": se, "df": df, "p": p, "g_lo": g_lo, "g_hi": g_hi, "r_lo": r_lo, "r_hi": r_hi,
            "on_log": on_log, "use_model": use_model}


def _best(
    s: CellSums, *, e: np.ndarray, kind: str, disp: float, confidence: float, sufficient: np.ndarray, orient: float
) -> dict[str, np.ndarray]:
    """Each group against the best other group of its family, selection accounted for.

    Group g is significantly worse than the best if some other group j is significantly
    better than g, each pair tested at level ``alpha / (m - 1)`` (m sufficient groups), so
    the family-wise error of declaring a truly best group "worse" stays at ``alpha`` however
    the best was picked (a Bonferroni form of Hsu's multiple comparisons with the best).
    The gap and ratio intervals bound ``g - best`` and ``g / best`` by the pairs' intervals
    at the same level, so they exclude no difference exactly when the p-value is below
    ``1 - confidence``.
    """
    k = s.k
    idx = np.flatnonzero(sufficient & np.isfinite(s.R))
    m = idx.size
    out = _empty_contrasts(k)
    if m < 2:
        return out
    grid = _pair_grid(s, e, kind, idx, 1.0 - (1.0 - confidence) / (m - 1))
    R, D, p = grid["R"], grid["D"], grid["p"]
    off = ~np.eye(m, dtype=bool)
    better = off & (orient * (R[:, None] - R[None, :]) > 0)  # j is better than g
    for a, g in enumerate(idx):
        others = np.flatnonzero(off[a])
        best_j = others[np.argmin(orient * R[others])]
        out["ref"][g] = R[best_j]
        out["ref_D"][g] = D[best_j]
        out["gap"][g] = R[a] - R[best_j]
        with np.errstate(divide="ignore", invalid="ignore"):
            out["ratio"][g] = R[a] / R[best_j]
        cand = better[a]
        out["p"][g] = min(1.0, (m - 1) * float(np.nanmin(p[a][cand]))) if cand.any() and np.isfinite(p[a][cand]).any() else 1.0
        # In the worse direction, g - best = max_j (g - j) (min_j when lower is worse).
        pick = np.max if orient > 0 else np.min
        with np.errstate(invalid="ignore"):
            out["gap_low"][g], out["gap_high"][g] = pick(grid["g_lo"][a][others]), pick(grid["g_hi"][a][others])
            out["ratio_low"][g], out["ratio_high"][g] = pick(grid["r_lo"][a][others]), pick(grid["r_hi"][a][others])
        _pair_fields(out, grid, g, a, best_j)
    out["ref_ok"][idx] = True
    return out


def _named(
    s: CellSums, labels: list[dict[str, Any]], *, e: np.ndarray, kind: str, confidence: float, sufficient: np.ndarray,
    column: str, value: Any,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Each group against a named group: the cell with ``column == value`` and the group's
    other values (``race=white`` inside each sex for a ``race,sex`` family).

    Returns the contrasts and each cell's role: 1 the reference itself, 0 compared, -1 no
    reference in this family (the column is not in it, or that combination is missing or
    insufficient).
    """
    k = s.k
    out = _empty_contrasts(k)
    role = np.full(k, -1)
    if not labels or column not in labels[0]:
        return out, role
    target = {}
    for j, label in enumerate(labels):
        if str(label[column]) == str(value):
            target[tuple((c, v) for c, v in label.items() if c != column)] = j
    ref_of = np.full(k, -1)
    for g, label in enumerate(labels):
        j = target.get(tuple((c, v) for c, v in label.items() if c != column), -1)
        if j == g:
            role[g] = 1
        elif j >= 0 and sufficient[j] and np.isfinite(s.R[j]):
            ref_of[g] = j
            role[g] = 0
    idx = np.flatnonzero((ref_of >= 0) | (role == 1))
    if not (ref_of >= 0).any():
        return out, role
    grid = _pair_grid(s, e, kind, idx, confidence)
    pos = {int(c): i for i, c in enumerate(idx)}
    for g in np.flatnonzero(ref_of >= 0):
        a, b = pos[int(g)], pos[int(ref_of[g])]
        R = grid["R"]
        out["ref"][g], out["ref_D"][g] = R[b], grid["D"][b]
        out["gap"][g] = R[a] - R[b]
        with np.errstate(divide="ignore", invalid="ignore"):
            out["ratio"][g] = R[a] / R[b]
        out["p"][g] = grid["p"][a, b]
        out["gap_low"][g], out["gap_high"][g] = grid["g_lo"][a, b], grid["g_hi"][a, b]
        out["ratio_low"][g], out["ratio_high"][g] = grid["r_lo"][a, b], grid["r_hi"][a, b]
        _pair_fields(out, grid, g, a, b)
        out["ref_ok"][g] = True
    return out, role


def _pair_fields(out: dict[str, np.ndarray], grid: dict[str, np.ndarray], g: int, a: int, b: int) -> None:
    out["se"][g] = grid["se"][a, b]
    out["df"][g] = grid["df"][a, b]
    out["scale"][g] = "log ratio" if grid["on_log"][a, b] else "difference"
    out["variance_source"][g] = "count model at the pooled rate" if grid["use_model"][a, b] else "cluster-robust (CR2)"


def _partly_outside(s: CellSums, d_T: np.ndarray) -> np.ndarray:
    """Clusters with denominator inside the cell and also outside it (crossed designs)."""
    outside = d_T[s.rows] - s.ad > 0
    return np.bincount(s.cols, weights=(outside & (s.ad > 0)).astype(float), minlength=s.k).astype(np.int64)


def _phi(kind: str, rate: np.ndarray) -> np.ndarray:
    rate = np.clip(np.asarray(rate, dtype=float), 0.0, None)
    if kind == "count":
        return rate
    if kind == "binary":
        return rate * (1.0 - np.minimum(rate, 1.0))
    return np.zeros_like(rate)


def _none(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if not np.isfinite(x) else x
