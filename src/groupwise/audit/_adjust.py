"""The model-based view: group rate ratios adjusted for nuisance covariates.

A Poisson generalised estimating equation (GEE) of each row's errors with a
``log(den)`` offset (``log(reference words)`` for WER), the group as a factor with
deviation coding (each group against the unweighted mean of the groups, so the ratios read
like the raw gaps against the overall value), the named covariates, independence working
correlation within speakers and the bias-reduced sandwich of Mancl and DeRouen (2001) for
few clusters, as in Liu, Veliche and Peng (ICASSP 2022). Intervals and tests use Student t
on (clusters - 1) degrees of freedom; p-values are corrected across every group of the run.
Raw gaps confounded with a covariate (an accent recorded mostly in noise) shrink here.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sstats

from groupwise._errors import InputError
from groupwise.audit._inference import adjust as adjust_p

__all__ = ["adjusted_ratios"]

_MAX_LOG_RATIO = 20.0  # |log rate ratio| past this is separation, not an estimate


def _covariates(frame: pd.DataFrame, names: list[str], rows: np.ndarray) -> tuple[np.ndarray, list[str]]:
    cols, labels = [], []
    for name in names:
        series = frame.loc[rows, name]
        if series.isna().any():
            raise InputError(f"the --adjust covariate {name!r} has missing values", fix="fill or drop those rows first")
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            x = series.to_numpy(dtype=float)
            sd = x.std()
            if not sd > 0:
                raise InputError(
                    f"the --adjust covariate {name!r} is constant ({x[0]:g}), so there is nothing to adjust for",
                    fix="leave it out of --adjust",
                )
            cols.append((x - x.mean()) / sd)
            labels.append(name)
        else:
            codes, uniques = pd.factorize(series, sort=True)
            if len(uniques) < 2:
                raise InputError(
                    f"the --adjust covariate {name!r} has one value ({uniques[0]!r}), so there is nothing to adjust for",
                    fix="leave it out of --adjust",
                )
            for j in range(1, len(uniques)):
                cols.append((codes == j).astype(float))
                labels.append(f"{name}={uniques[j]}")
    return (np.column_stack(cols) if cols else np.empty((int(rows.sum()), 0))), labels


def adjusted_ratios(
    frame: pd.DataFrame,
    *,
    num: np.ndarray,
    den: np.ndarray,
    cluster: np.ndarray,
    families: list[Any],
    covariates: list[str],
    confidence: float,
    correction: str,
    min_clusters: int,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Per family, per group: adjusted rate ratio, interval and p (unadjusted); then corrected.

    A group without a single error has no finite log rate (its coefficient runs off to minus
    infinity, and the deviation coding carries that into every other group's ratio), so it
    is left out of the model, gets no adjusted ratio, and a note says so; a level of a
    covariate without errors is refused for the same reason. A fit that still does not
    converge, or ends with an estimate no data could support, is refused rather than
    reported. Returns the per-group fields and the notes.
    """
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import ConvergenceWarning, IterationLimitWarning

    out: list[dict[str, Any]] = []
    notes: list[str] = []
    pvals: list[float] = []
    where: list[int] = []
    for family in families:
        k = len(family.labels)
        rows = (family.codes >= 0) & (den > 0)
        results = [{"adjusted_ratio": None, "adjusted_ci_low": None, "adjusted_ci_high": None, "adjusted_p_value": None,
                    "adjusted_p_adjusted": None} for _ in range(k)]
        errors = np.bincount(family.codes[rows], weights=num[rows], minlength=k)
        present_all = np.unique(family.codes[rows])
        no_errors = [int(j) for j in present_all if not errors[j] > 0]
        if no_errors:
            names = ", ".join(_label(family.labels[j]) for j in no_errors)
            notes.append(f"{family.name}: no adjusted ratio for {names}: no errors, so no rate to adjust "
                         "(left out of the model; the others are against the mean of the groups with errors)")
            rows &= ~np.isin(family.codes, no_errors)
        present = np.unique(family.codes[rows])
        if k < 2 or present.size < 2:
            out += results
            continue
        codes = family.codes[rows]
        remap = np.full(k, -1)
        remap[present] = np.arange(present.size)
        c = remap[codes]
        m = present.size
        dev = np.zeros((c.size, m - 1))
        for j in range(m - 1):
            dev[:, j] = (c == j).astype(float) - (c == m - 1).astype(float)
        X_cov, labels = _covariates(frame, covariates, rows)
        for j, label in enumerate(labels):
            if "=" in label and not num[rows][X_cov[:, j] > 0].sum() > 0:
                name, _, level = label.partition("=")
                raise InputError(
                    f"the --adjust covariate {name!r} has no errors at {level!r} among the groups of {family.name!r}, "
                    "so the model has no finite effect for that level (separation)",
                    fix=f"merge {level!r} with a neighbouring level, or leave {name!r} out of --adjust",
                )
        exog = np.column_stack([np.ones(c.size), dev, X_cov])
        if np.linalg.matrix_rank(exog) < exog.shape[1]:
            raise InputError(
                f"the --adjust covariates {', '.join(covariates)} are collinear with each other or with "
                f"{family.name!r} (one is determined by the others), so their effects cannot be separated",
                fix="leave out the covariate that the grouping determines (or a redundant one)",
            )
        groups = pd.factorize(cluster[rows])[0]
        model = sm.GEE(num[rows], exog, groups=groups, family=sm.families.Poisson(), offset=np.log(den[rows]),
                       cov_struct=sm.cov_struct.Independence())
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            warnings.simplefilter("error", IterationLimitWarning)  # GEE's "iteration limit reached"
            warnings.filterwarnings("ignore", category=RuntimeWarning)
            try:
                fit = model.fit(cov_type="bias_reduced", maxiter=100)
            except (ConvergenceWarning, IterationLimitWarning, np.linalg.LinAlgError, ValueError) as exc:
                raise InputError(
                    f"the adjusted model of {family.name!r} with {', '.join(covariates)} did not converge ({exc})",
                    fix="adjust for fewer covariates, bin a continuous one, or drop groups with no errors",
                ) from None
        params, cov_all = np.asarray(fit.params), np.asarray(fit.cov_params())
        if not (np.all(np.isfinite(params)) and np.all(np.isfinite(cov_all)) and np.max(np.abs(params[1:])) < _MAX_LOG_RATIO):
            raise InputError(
                f"the adjusted model of {family.name!r} with {', '.join(covariates)} did not converge to finite "
                "estimates (a rate ratio beyond e^20, or an infinite variance)",
                fix="adjust for fewer covariates, bin a continuous one, or merge sparse levels and groups",
            )
        beta = params[1:m]
        cov = cov_all[1:m, 1:m]
        L = np.vstack([np.eye(m - 1), -np.ones(m - 1)])
        est = L @ beta
        se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", L, cov, L), 0.0))
        df = max(int(np.unique(groups).size) - 1, 1)
        q = sstats.t.ppf(0.5 + confidence / 2, df)
        with np.errstate(divide="ignore", invalid="ignore"):
            p = 2 * sstats.t.sf(np.abs(est / se), df)
        clusters_per = np.array([np.unique(groups[c == j]).size for j in range(m)])
        for j, cell in enumerate(present):
            if clusters_per[j] < min_clusters or not np.isfinite(se[j]):
                continue
            results[cell] = {
                "adjusted_ratio": float(np.exp(est[j])), "adjusted_ci_low": float(np.exp(est[j] - q * se[j])),
                "adjusted_ci_high": float(np.exp(est[j] + q * se[j])), "adjusted_p_value": float(p[j]),
                "adjusted_p_adjusted": None,
            }
            pvals.append(float(p[j]))
            where.append(len(out) + int(cell))
        out += results
    for i, padj in zip(where, adjust_p(np.array(pvals), correction)):
        out[i]["adjusted_p_adjusted"] = float(padj)
    return out, notes


def _label(group: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in group.items())
