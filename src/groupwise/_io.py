"""Reading tables and checking options.

Every entry point accepts a pandas or polars DataFrame or a path to a CSV, TSV, JSONL or
Parquet file; this module turns any of them into a pandas DataFrame and holds the small
validators whose messages all follow one template.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from groupwise._errors import InputError
from groupwise._validation import check_scalar  # noqa: F401  (re-exported: one validator for every module)

__all__ = ["read_table", "check_columns", "check_scalar", "TABLE_SUFFIXES"]

TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson", ".json", ".parquet", ".pq")


def read_table(data: Any, *, name: str = "data", columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Return ``data`` as a pandas DataFrame.

    Parameters
    ----------
    data : pandas.DataFrame, polars.DataFrame, str or os.PathLike
        A DataFrame, or the path of a ``.csv``, ``.tsv``, ``.jsonl`` (one JSON object a
        line) or ``.parquet`` file. Text columns are read as text, never guessed into
        numbers when they are identifiers such as speaker ids.
    name : str, default="data"
        How the input is called in error messages.
    columns : sequence of str, optional
        The columns the caller uses. A Parquet file that holds every one of them (once
        each) is read for those alone, in the file's order; any other input is read whole,
        so that a missing column is reported with every column the data has.

    Returns
    -------
    pandas.DataFrame

    Examples
    --------
    >>> import pandas as pd
    >>> read_table(pd.DataFrame({"a": [1, 2]})).shape
    (2, 1)
    """
    if isinstance(data, pd.DataFrame):
        frame = data
    elif _is_polars(data):
        frame = data.to_pandas()
    elif isinstance(data, (str, os.PathLike)):
        frame = _read_path(Path(data), name=name, columns=columns)
    else:
        raise InputError(
            f"{name} is a {type(data).__name__}, not a table",
            fix="pass a pandas or polars DataFrame, or the path of a CSV, TSV, JSONL or Parquet file",
        )
    if frame.shape[0] == 0:
        raise InputError(
            f"{name} has no rows",
            fix="check that the file is the one you meant and that any filter left rows in it",
        )
    if not frame.columns.is_unique:
        dupes = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        raise InputError(
            f"{name} has duplicate column names: {', '.join(dupes)}",
            fix="rename the columns so that each name appears once",
        )
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _is_polars(data: Any) -> bool:
    module = type(data).__module__
    return module.startswith("polars") and hasattr(data, "to_pandas")


def _read_path(path: Path, *, name: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
    if not path.exists():
        raise InputError(f"{name} file {str(path)!r} does not exist", fix="check the path")
    if path.is_dir():
        raise InputError(f"{name} path {str(path)!r} is a directory", fix="pass a file")
    suffix = path.suffix.lower()
    if suffix == ".gz":
        suffix = Path(path.stem).suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path, keep_default_na=False, na_values=[""], dtype_backend="numpy_nullable")
        if suffix == ".tsv":
            return pd.read_csv(
                path, sep="\t", keep_default_na=False, na_values=[""], quoting=3,
                dtype_backend="numpy_nullable",
            )
        if suffix in (".jsonl", ".ndjson"):
            return pd.read_json(path, lines=True, dtype_backend="numpy_nullable")
        if suffix == ".json":
            return pd.read_json(path, dtype_backend="numpy_nullable")
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path, columns=_parquet_subset(path, columns))
    except (ValueError, OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(
            f"{name} file {str(path)!r} could not be read as {suffix[1:].upper()}: {exc}",
            fix="check that the file is complete and in the format its suffix says",
        ) from exc
    raise InputError(
        f"{name} file {str(path)!r} has the unknown suffix {path.suffix!r}",
        fix=f"use one of {', '.join(TABLE_SUFFIXES)}",
    )


def _parquet_subset(path: Path, columns: Sequence[str] | None) -> list[str] | None:
    """``columns`` in the file's order when the file has each of them exactly once, else None (all)."""
    if columns is None:
        return None
    try:
        import pyarrow.parquet as pq

        schema = pq.read_schema(path)
        # Columns pandas turns into the index are not columns of the frame it reads.
        index = {c for c in (schema.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str)}
    except Exception:  # noqa: BLE001 - the full read that follows reports the fault
        return None
    names = [c for c in schema.names if c not in index]
    wanted = set(columns)
    if not wanted <= set(names) or len(names) != len(set(names)):
        return None
    return [c for c in names if c in wanted]


def check_columns(
    frame: pd.DataFrame, columns: Iterable[str], *, role: str, option: str
) -> None:
    """Raise :class:`InputError` when a needed column is missing.

    Examples
    --------
    >>> import pandas as pd
    >>> check_columns(pd.DataFrame({"a": [1]}), ["b"], role="cluster", option="--cluster")
    Traceback (most recent call last):
    ...
    groupwise._errors.InputError: the cluster column 'b' is not in the data. Fix: pass --cluster with one of the data's columns: a.
    """
    have = set(frame.columns)
    for column in columns:
        if column not in have:
            listed = ", ".join(sorted(map(str, frame.columns))[:40])
            raise InputError(
                f"the {role} column {column!r} is not in the data",
                fix=f"pass {option} with one of the data's columns: {listed}",
            )


def split_names(values: Sequence[str] | str | None) -> list[str]:
    """Split comma-separated names, dropping blanks.

    >>> split_names("accent, noise")
    ['accent', 'noise']
    """
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    return [part.strip() for value in values for part in value.split(",") if part.strip()]
