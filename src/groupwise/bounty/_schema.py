"""The feature schema of a bounty program: names, kinds and category values.

Everything that crosses into the program (training data, a submitter's prediction data,
the inputs of an ONNX model) is checked against the schema, so a model never sees a
column it was not promised and a group never silently matches nothing because of a typo
in a category value.

Models see the features in one of two encodings:

* ``X``: one float32 matrix, features in schema order, a categorical feature as the
  index of its value in the schema's sorted category list;
* one input per feature named like the feature: float32 ``[N, 1]`` for a numeric
  feature, string ``[N, 1]`` for a categorical one (what skl2onnx makes of a
  ``ColumnTransformer`` pipeline).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:  # pandas is imported where a frame is handled: the sandbox worker needs none
    import pandas as pd

from groupwise._errors import InputError
from groupwise._validation import check_choice

__all__ = ["Feature", "Schema"]

_MAX_CATEGORIES = 1000
_TASKS = ("classification", "regression")


@dataclass(frozen=True)
class Feature:
    """One feature: a name, ``numeric`` or ``categorical``, and the allowed values."""

    name: str
    kind: str
    categories: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.kind == "categorical":
            out["categories"] = list(self.categories)
        return out


@dataclass(frozen=True)
class Schema:
    """The features and target of a bounty program.

    Build one with :meth:`infer` from the training data; it round-trips through
    :meth:`to_dict` / :meth:`from_dict` (JSON).

    Examples
    --------
    >>> import pandas as pd
    >>> import pandas as pd
    >>> df = pd.DataFrame({"age": [30, 40], "sex": ["F", "M"], "y": ["no", "yes"]})
    >>> schema = Schema.infer(df, target="y", features=["age", "sex"], task="classification")
    >>> schema.encode(df).tolist()
    [[30.0, 0.0], [40.0, 1.0]]
    >>> schema.encode_target(df["y"]).tolist()
    [0, 1]
    """

    features: tuple[Feature, ...]
    target: str
    task: str
    classes: tuple[str, ...] = ()
    _index: Mapping[str, Feature] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {f.name: f for f in self.features})

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def __getitem__(self, name: str) -> Feature:
        return self._index[name]

    # -- construction -----------------------------------------------------------------

    @classmethod
    def infer(cls, frame: pd.DataFrame, *, target: str, features: Sequence[str] | None, task: str) -> Schema:
        """Read the schema off the training data (numbers are numeric, the rest categorical)."""
        from pandas.api import types as pdt

        task = check_choice(task, "task", _TASKS, caller="Schema.infer", fix="use classification or regression (--task on the command line)")
        columns = [str(c) for c in frame.columns]
        if target not in columns:
            raise InputError(
                f"the target column {target!r} is not in the data",
                fix=f"pass --target with one of the data's columns: {', '.join(columns[:40])}",
            )
        names = [c for c in columns if c != target] if not features else list(features)
        if not names:
            raise InputError("no features were left", fix="pass --features with at least one column")
        for name in names:
            if name not in columns:
                raise InputError(
                    f"the feature {name!r} is not in the data",
                    fix=f"pass --features with the data's columns: {', '.join(columns[:40])}",
                )
            if name == target:
                raise InputError(f"the target {target!r} is also listed as a feature", fix="drop it from --features")
        if len(set(names)) != len(names):
            raise InputError("a feature is listed twice", fix="list every feature once")
        built = []
        for name in names:
            series = frame[name]
            if series.isna().any():
                raise InputError(
                    f"the feature {name!r} has missing values",
                    fix="fill them in (e.g. with an explicit 'unknown' category) before creating the program",
                    rows=list(series.index[series.isna()][:10]),
                )
            if pdt.is_numeric_dtype(series.dtype) and not pdt.is_bool_dtype(series.dtype):
                built.append(Feature(name, "numeric"))
            else:
                values = sorted({str(v) for v in series.unique()})
                if len(values) > _MAX_CATEGORIES:
                    raise InputError(
                        f"the text feature {name!r} has {len(values):,} distinct values",
                        fix=f"leave identifier columns out of --features (at most {_MAX_CATEGORIES} categories)",
                    )
                built.append(Feature(name, "categorical", tuple(values)))
        y = frame[target]
        if y.isna().any():
            raise InputError(f"the target {target!r} has missing values", fix="drop those rows first")
        classes: tuple[str, ...] = ()
        if task == "classification":
            classes = tuple(sorted({str(v) for v in y.unique()}))
            if len(classes) < 2:
                raise InputError(f"the target {target!r} has a single class", fix="use data with at least two classes")
        elif not pdt.is_numeric_dtype(y.dtype):
            raise InputError(f"the regression target {target!r} is not numeric", fix="use --task classification or a numeric target")
        return cls(tuple(built), target, task, classes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": [f.to_dict() for f in self.features],
            "target": self.target,
            "task": self.task,
            "classes": list(self.classes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schema:
        features = tuple(
            Feature(str(f["name"]), str(f["kind"]), tuple(str(c) for c in f.get("categories", ())))
            for f in data["features"]
        )
        return cls(features, str(data["target"]), str(data["task"]), tuple(str(c) for c in data.get("classes", ())))

    # -- validation and encoding --------------------------------------------------------

    def validate(self, frame: pd.DataFrame, *, name: str = "data", target: bool = False) -> pd.DataFrame:
        """Return the features (and target) checked and typed by the schema.

        Numeric features become float64, categorical ones ``pandas.Categorical`` with the
        schema's categories (so group expressions compare codes, not strings).

        Raises
        ------
        InputError
            A feature is missing, a numeric feature holds text or missing values, or a
            categorical feature holds a value the schema does not know.
        """
        import pandas as pd

        columns = {str(c) for c in frame.columns}
        missing = [n for n in self.names if n not in columns]
        if target and self.target not in columns:
            missing.append(self.target)
        if missing:
            raise InputError(
                f"{name} lacks the column(s) {', '.join(map(repr, missing))} of the program's schema",
                fix=f"give {name} the columns {', '.join(self.names)}" + (f" and {self.target}" if target else ""),
            )
        out: dict[str, Any] = {}
        for feature in self.features:
            out[feature.name] = self._column(frame[feature.name], feature, name)
        if target:
            out[self.target] = self._target_column(frame[self.target], name)
        return pd.DataFrame(out, index=pd.RangeIndex(len(frame)))

    def _column(self, series: pd.Series, feature: Feature, name: str) -> Any:
        import pandas as pd
        from pandas.api import types as pdt

        if feature.kind == "numeric":
            if pdt.is_bool_dtype(series.dtype) or not pdt.is_numeric_dtype(series.dtype):
                bad = pd.to_numeric(series, errors="coerce").isna() & series.notna()
                if bad.any():
                    raise InputError(
                        f"the numeric feature {feature.name!r} of {name} holds text such as {str(series[bad].iloc[0])!r}",
                        fix=f"give {feature.name!r} numbers only",
                        rows=list(np.flatnonzero(bad.to_numpy())[:10]),
                    )
            values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            bad_rows = np.flatnonzero(~np.isfinite(values))
            if bad_rows.size:
                raise InputError(
                    f"the numeric feature {feature.name!r} of {name} has missing or infinite values",
                    fix="fill or drop those rows",
                    rows=list(bad_rows[:10]),
                )
            return values
        text = series.astype("string").to_numpy(dtype=object, na_value=None)
        codes = pd.Index(list(feature.categories)).get_indexer(text)
        unknown = np.flatnonzero(codes < 0)
        if unknown.size:
            seen = sorted({str(v) for v in series.iloc[unknown[:1000]]})[:5]
            allowed = ", ".join(repr(c) for c in feature.categories[:20])
            more = " ..." if len(feature.categories) > 20 else ""
            raise InputError(
                f"the categorical feature {feature.name!r} of {name} has values the schema does not know: "
                + ", ".join(repr(v) for v in seen),
                fix=f"use only the values {allowed}{more}",
                rows=list(unknown[:10]),
            )
        return pd.Categorical.from_codes(codes, categories=list(feature.categories))

    def _target_column(self, series: pd.Series, name: str) -> Any:
        import pandas as pd

        if self.task == "classification":
            text = series.astype("string").to_numpy(dtype=object, na_value=None)
            codes = pd.Index(list(self.classes)).get_indexer(text)
            unknown = np.flatnonzero(codes < 0)
            if unknown.size:
                raise InputError(
                    f"the target {self.target!r} of {name} has values outside the classes {list(self.classes)}",
                    fix="drop those rows or fix the labels",
                    rows=list(unknown[:10]),
                )
            return pd.Categorical.from_codes(codes, categories=list(self.classes))
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise InputError(f"the target {self.target!r} of {name} has missing or non-numeric values", fix="drop those rows", rows=list(bad[:10]))
        return values

    def encode(self, frame: pd.DataFrame) -> npt.NDArray[np.float32]:
        """The ``X`` matrix: float32, categorical features as category codes."""
        checked = frame if _is_validated(frame, self) else self.validate(frame)
        out = np.empty((len(checked), len(self.features)), dtype=np.float32)
        for j, feature in enumerate(self.features):
            column = checked[feature.name]
            out[:, j] = column.cat.codes.to_numpy() if feature.kind == "categorical" else column.to_numpy()
        return out

    def decode(self, matrix: npt.NDArray[np.float32]) -> pd.DataFrame:
        """Invert :meth:`encode` (used by the sandbox, which only gets the matrix)."""
        import pandas as pd

        out: dict[str, Any] = {}
        for j, feature in enumerate(self.features):
            if feature.kind == "categorical":
                out[feature.name] = pd.Categorical.from_codes(matrix[:, j].astype(np.int64), categories=list(feature.categories))
            else:
                out[feature.name] = matrix[:, j].astype(np.float64)
        return pd.DataFrame(out)

    def encode_target(self, series: pd.Series) -> npt.NDArray[Any]:
        """Class index (int64) for classification, float64 for regression."""
        import pandas as pd

        if self.task == "classification":
            values = series if isinstance(series.dtype, pd.CategoricalDtype) else self._target_column(series, "data")
            return pd.Index(list(self.classes)).get_indexer(np.asarray(values, dtype=object)).astype(np.int64)
        return np.asarray(series, dtype=np.float64)

    def decode_target(self, values: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Class labels for class indices; numbers unchanged for regression."""
        if self.task == "classification":
            return np.asarray(self.classes, dtype=object)[np.asarray(values, dtype=np.int64)]
        return np.asarray(values, dtype=np.float64)


def _is_validated(frame: pd.DataFrame, schema: Schema) -> bool:
    import pandas as pd

    for feature in schema.features:
        if feature.name not in frame.columns:
            return False
        dtype = frame[feature.name].dtype
        if feature.kind == "categorical":
            if not isinstance(dtype, pd.CategoricalDtype) or tuple(dtype.categories) != feature.categories:
                return False
        elif dtype != np.float64:
            return False
    return True
