"""Metrics as per-example contributions to a ratio of sums.

Every metric groupwise reports is ``sum(num) / sum(den)`` over a group's rows, so that a
group's value pools its examples the way the field does (corpus WER, never the mean of
per-utterance WERs) and so that resampling speakers only needs per-speaker sums. This
module turns the columns of a table into the per-row ``num`` and ``den`` of a named
metric, plus extra counts where they mean something (substitutions, deletions and
insertions for ``wer`` and ``cer``).

=================  ==========================================  ==========================
metric             num                                         den
=================  ==========================================  ==========================
``wer``            substitutions + deletions + insertions      reference words
``cer``            the same on characters                      reference characters
``error_rate``     1 if y_pred != y_true                       1
``fpr``            1 if predicted positive, actually negative  1 if actually negative
``fnr``            1 if predicted negative, actually positive  1 if actually positive
``selection_rate`` 1 if predicted positive                     1
``mae``            abs(y_true - y_pred)                        1
``mse``            (y_true - y_pred) ** 2                      1
``ratio``          the ``num`` column                          the ``den`` column
=================  ==========================================  ==========================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from groupwise import _lazy
from groupwise._errors import InputError
from groupwise._io import check_columns, is_polars_frame, missing_rows

pd = _lazy.module("pandas")

__all__ = ["METRICS", "Metric", "MetricColumns", "Contributions", "contributions"]


@dataclass(frozen=True)
class Metric:
    """A metric's name, meaning, which direction is worse, and its kind of count.

    ``kind`` says what the per-row ``num`` is, which decides the variance model that
    bounds intervals where a group has few or no errors: ``"count"`` (errors that can
    exceed one per unit of ``den``, such as word errors: Poisson with speaker
    overdispersion), ``"binary"`` (0/1 outcomes: binomial with intra-cluster correlation)
    or ``"continuous"`` (no count model; cluster-robust variance only).
    """

    name: str
    description: str
    higher_is_worse: bool | None
    inputs: tuple[str, ...]
    kind: str = "continuous"


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("wer", "word error rate", True, ("reference", "hypothesis"), "count"),
        Metric("cer", "character error rate", True, ("reference", "hypothesis"), "count"),
        Metric("error_rate", "error rate (0/1 loss)", True, ("y_true", "y_pred"), "binary"),
        Metric("fpr", "false positive rate", True, ("y_true", "y_pred"), "binary"),
        Metric("fnr", "false negative rate", True, ("y_true", "y_pred"), "binary"),
        Metric("selection_rate", "selection rate", None, ("y_pred",), "binary"),
        Metric("mae", "mean absolute error", True, ("y_true", "y_pred")),
        Metric("mse", "mean squared error", True, ("y_true", "y_pred")),
        Metric("ratio", "ratio of summed num to summed den", True, ("num", "den")),
    )
}


@dataclass(frozen=True)
class MetricColumns:
    """Names of the columns a metric reads; each has a default.

    Examples
    --------
    >>> MetricColumns().reference
    'reference'
    """

    reference: str = "reference"
    hypothesis: str = "hypothesis"
    y_true: str = "y_true"
    y_pred: str = "y_pred"
    num: str = "num"
    den: str = "den"
    pos_label: object = 1


@dataclass
class Contributions:
    """Per-row ``num`` and ``den`` of a metric, and extra per-row counts."""

    num: np.ndarray
    den: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)


_OPTION = {
    "reference": "--reference",
    "hypothesis": "--hypothesis",
    "y_true": "--y-true",
    "y_pred": "--y-pred",
    "num": "--num",
    "den": "--den",
}


def get_metric(name: str) -> Metric:
    """Look a metric up by name, with a helpful error."""
    try:
        return METRICS[name]
    except KeyError:
        raise InputError(
            f"metric {name!r} is not known", fix=f"use one of {', '.join(METRICS)}"
        ) from None


def contributions(
    frame: pd.DataFrame,
    metric: Metric,
    columns: MetricColumns,
    *,
    normalizer: object | None = None,
) -> Contributions:
    """Compute the per-row contributions of ``metric`` from ``frame``.

    Parameters
    ----------
    frame : pandas.DataFrame
    metric : Metric
    columns : MetricColumns
    normalizer : callable, optional
        Text normalisation applied to references and hypotheses (``wer`` and ``cer``).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"y_true": [1, 0, 1], "y_pred": [1, 1, 0]})
    >>> c = contributions(df, METRICS["fpr"], MetricColumns())
    >>> c.num.tolist(), c.den.tolist()
    ([0.0, 1.0, 0.0], [0.0, 1.0, 0.0])
    """
    names = {role: getattr(columns, role) for role in metric.inputs}
    for role, column in names.items():
        check_columns(frame, [column], role=role.replace("_", " "), option=_OPTION[role])
    if metric.name in ("wer", "cer"):
        return _text_contributions(frame, metric.name, names, normalizer)
    if metric.name == "ratio":
        num = _numeric(frame, names["num"], "num")
        den = _numeric(frame, names["den"], "den")
        if (den < 0).any():
            rows = frame.index[den < 0].tolist()
            raise InputError(
                f"the den column {names['den']!r} has negative values",
                fix="a ratio metric needs non-negative denominators (counts, words, trials)",
                rows=rows,
            )
        return Contributions(num, den)
    if metric.name in ("mae", "mse"):
        y_true = _numeric(frame, names["y_true"], "y true")
        y_pred = _numeric(frame, names["y_pred"], "y pred")
        diff = y_true - y_pred
        num = np.abs(diff) if metric.name == "mae" else diff * diff
        return Contributions(num, np.ones_like(num))
    y_pred = _labels(frame, names["y_pred"], "y pred")
    ones = np.ones(len(frame))
    if metric.name == "selection_rate":
        pred_pos = _is_positive(y_pred, columns.pos_label, names["y_pred"])
        return Contributions(pred_pos.astype(float), ones)
    y_true = _labels(frame, names["y_true"], "y true")
    if metric.name == "error_rate":
        return Contributions((y_true != y_pred).astype(float), ones)
    true_pos = _is_positive(y_true, columns.pos_label, names["y_true"], check_present=False)
    pred_pos = _is_positive(y_pred, columns.pos_label, names["y_pred"], check_present=False)
    if not true_pos.any() and not pred_pos.any():
        _raise_missing_label(y_true, columns.pos_label, names["y_true"])
    if metric.name == "fpr":
        return Contributions((pred_pos & ~true_pos).astype(float), (~true_pos).astype(float))
    return Contributions((~pred_pos & true_pos).astype(float), true_pos.astype(float))


def _rows_with_missing(series: pd.Series) -> list[object]:
    return series.index[series.isna().to_numpy()].tolist()


def _numeric(frame: pd.DataFrame, column: str, role: str) -> np.ndarray:
    series = frame[column]
    if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        converted = pd.to_numeric(series, errors="coerce")
        bad = series.notna() & converted.isna()
        if bad.any() or pd.api.types.is_bool_dtype(series):
            raise InputError(
                f"the {role} column {column!r} holds text, not numbers",
                fix=f"point the {role} option at a numeric column",
                rows=series.index[bad.to_numpy()].tolist(),
            )
        series = converted
    missing = _rows_with_missing(series)
    if missing:
        raise InputError(
            f"the {role} column {column!r} has {len(missing)} missing values",
            fix="fill or drop those rows before the audit",
            rows=missing,
        )
    return series.to_numpy(dtype=float, na_value=np.nan)


def _labels(frame: pd.DataFrame, column: str, role: str) -> np.ndarray:
    series = frame[column]
    missing = _rows_with_missing(series)
    if missing:
        raise InputError(
            f"the {role} column {column!r} has {len(missing)} missing labels",
            fix="fill or drop those rows before the audit",
            rows=missing,
        )
    values = series.to_numpy()
    if values.dtype == object:
        # Mixed "1" and 1 would silently never match: compare labels as text then.
        kinds = {type(v) for v in values[:1000]}
        if len(kinds) > 1:
            values = values.astype(str)
    return values


def _is_positive(
    values: np.ndarray, pos_label: object, column: str, *, check_present: bool = True
) -> np.ndarray:
    mask = values == _coerce_label(pos_label, values)
    mask = np.asarray(mask, dtype=bool)
    if check_present and not mask.any():
        _raise_missing_label(values, pos_label, column)
    return mask


def _coerce_label(pos_label: object, values: np.ndarray) -> object:
    # The CLI passes --pos-label as text; match it to the column's kind.
    if isinstance(pos_label, str) and values.dtype.kind in "iuf":
        try:
            return float(pos_label)
        except ValueError:
            return pos_label
    if isinstance(pos_label, str) and values.dtype.kind == "b":
        return pos_label.lower() in ("1", "true", "yes")
    return pos_label


def _raise_missing_label(values: np.ndarray, pos_label: object, column: str) -> None:
    seen = sorted({str(v) for v in pd.unique(values)})[:20]
    raise InputError(
        f"the positive label {pos_label!r} never occurs in column {column!r}",
        fix=f"pass --pos-label (pos_label=) with one of its values: {', '.join(seen)}",
    )


def _texts(frame: Any, column: str, role: str) -> Any:
    """The column's transcripts, checked: a polars Series when pandas holds them as
    strings (Arrow-backed, as Parquet gives them) or the frame is polars, else a numpy
    array of str."""
    series = frame[column]
    missing = missing_rows(frame, column)
    if missing:
        raise InputError(
            f"the {role} column {column!r} has {len(missing)} missing transcripts (NaN or None)",
            fix='fill them with "" where the recogniser produced no words, or drop the rows '
            "whose transcript was lost",
            rows=missing,
        )
    if is_polars_frame(frame):
        import polars as pl

        if series.dtype == pl.String:  # the only text type read_parquet_polars gives
            return series
        frame = frame.select(column).to_pandas()
        series = frame[column]
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        raise InputError(
            f"the {role} column {column!r} holds numbers, not transcripts",
            fix=f"point --{role} at the column with the {role} text",
        )
    if series.dtype != object and pd.api.types.is_string_dtype(series.dtype):
        # Every value is a str (missing ones were refused above): hand the Arrow strings
        # on without building a Python string per row.
        import polars as pl

        try:
            return pl.Series(values=series)
        except (TypeError, ValueError, pl.exceptions.PolarsError):
            pass
    values = series.to_numpy(dtype=object)
    if pd.api.types.infer_dtype(values, skipna=False) == "string":
        return values
    not_text = np.fromiter((not isinstance(v, str) for v in values), dtype=bool, count=len(values))
    if not_text.any():
        raise InputError(
            f"the {role} column {column!r} has values that are not text",
            fix=f"point --{role} at the column with the {role} text",
            rows=series.index[not_text].tolist(),
        )
    return values


def _text_contributions(
    frame: pd.DataFrame, name: str, names: dict[str, str], normalizer: object | None
) -> Contributions:
    from groupwise.audit._align import char_edits, normalized_word_edits

    refs = _texts(frame, names["reference"], "reference")
    hyps = _texts(frame, names["hypothesis"], "hypothesis")
    if names["reference"] == names["hypothesis"]:
        raise InputError(
            f"the reference and hypothesis columns are both {names['reference']!r}",
            fix="pass --reference and --hypothesis with two different columns",
        )
    if name == "wer":
        # Normalises each distinct piece of text once where the normaliser allows it.
        edits = normalized_word_edits(refs, hyps, normalizer)
    else:
        if normalizer is not None:
            from groupwise.audit._text import Normalizer

            if not isinstance(normalizer, Normalizer):  # any callable gets arrays, as before
                refs, hyps = (x.to_numpy() if hasattr(x, "to_numpy") else x for x in (refs, hyps))
            refs = normalizer(refs)  # type: ignore[operator]
            hyps = normalizer(hyps)  # type: ignore[operator]
        edits = char_edits(refs, hyps)
    num = (edits.substitutions + edits.deletions + edits.insertions).astype(float)
    extra = {
        "substitutions": edits.substitutions.astype(float),
        "deletions": edits.deletions.astype(float),
        "insertions": edits.insertions.astype(float),
        "hits": edits.hits.astype(float),
    }
    return Contributions(num, edits.ref_len.astype(float), extra)
