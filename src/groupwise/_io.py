"""Reading tables and checking options.

Every entry point accepts a pandas or polars DataFrame or a path to a CSV, TSV, JSONL or
Parquet file; this module turns any of them into a pandas DataFrame (:func:`read_table`),
reads a Parquet file as polars where that gives the same table without importing pandas
(:func:`read_parquet_polars`, for the audit of transcripts), and holds the small
validators whose messages all follow one template.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from groupwise import _lazy
from groupwise._errors import InputError
from groupwise._validation import check_scalar  # noqa: F401  (re-exported: one validator for every module)

pd = _lazy.module("pandas")

__all__ = [
    "read_table", "read_parquet_polars", "is_polars_frame", "missing_rows", "check_columns", "check_scalar",
    "TABLE_SUFFIXES",
]

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
    if _is_pandas(data):
        frame = data
    elif is_polars_frame(data):
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


def _is_pandas(data: Any) -> bool:
    # Without pandas loaded nothing is a pandas DataFrame; asking would import it.
    return "pandas" in sys.modules and isinstance(data, pd.DataFrame)


def is_polars_frame(frame: Any) -> bool:
    """Whether ``frame`` is a polars DataFrame (as :func:`read_parquet_polars` returns)."""
    return "polars" in sys.modules and isinstance(frame, sys.modules["polars"].DataFrame)


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
            try:
                return pd.read_parquet(path, columns=_parquet_subset(path, columns))
            except (TypeError, KeyError, AttributeError) as exc:  # malformed pandas metadata in the file
                raise ValueError(f"its pandas metadata is malformed ({type(exc).__name__}: {exc})") from exc
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


def read_parquet_polars(data: Any, *, columns: Sequence[str], texts: Sequence[str] = ()) -> Any:
    """``columns`` of the Parquet file ``data`` as a polars DataFrame holding what
    :func:`read_table` would give, or None where that needs pandas' own reading.

    The audit of a Parquet file reads it this way, without importing pandas. Each column
    reads as pandas would see it once grouped:

    - text (``string``, ``large_string``, ``string_view``) stays text; missing values
      stay missing (pandas: NaN);
    - integers and booleans without missing values keep their values;
    - a dictionary-encoded text column (a pandas Categorical when pandas wrote the file)
      becomes a polars Enum whose categories are its dictionary, unified over the row
      groups as pyarrow does when it converts to pandas, so that sorting follows the
      categories' order as pandas' does.

    Anything else returns None, and the caller reads the file with :func:`read_table`:
    a path that is not one ``.parquet``/``.pq`` file, a column missing or named twice (the
    full read reports it), an index that pandas would restore (row labels in messages
    would differ), other types (floats, dates, nested), integers or booleans with missing
    values (pandas turns them into floats or objects), a dictionary of non-text values or
    with missing entries, column names pandas would change (numbers, booleans, tuples),
    pandas metadata it cannot read, a file without rows, and anything that fails to read
    (pandas' reading then reports it). ``texts`` are the transcript columns, which must be
    plain text.

    Examples
    --------
    >>> read_parquet_polars("results.csv", columns=["a"]) is None
    True
    """
    if not isinstance(data, (str, os.PathLike)):
        return None
    path = Path(data)
    if path.suffix.lower() not in (".parquet", ".pq") or not path.is_file() or not columns:
        return None
    # The file is untrusted: whatever goes wrong here (a malformed footer or metadata, a
    # layout pyarrow and polars read differently) leaves the file to pandas' reading, which
    # reports faults in the usual way.
    try:
        plan = _polars_plan(path, list(columns), set(texts))
        return None if plan is None else _read_polars(path, list(columns), *plan)
    except Exception:  # noqa: BLE001 - see above
        return None


def _polars_plan(path: Path, columns: list[str], texts: set[str]) -> tuple[list[str], list[str], int] | None:
    """The columns polars reads as they are, those read as Enums, and the file's rows;
    None where pandas must read the file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as handle:
        schema, rows = handle.schema_arrow, handle.metadata.num_rows
    names = list(schema.names)
    if len(names) != len(set(names)) or not set(columns) <= set(names) or len(set(columns)) != len(columns):
        return None
    meta = schema.pandas_metadata
    if meta is None:
        meta = {"index_columns": [], "columns": []}
    elif not (isinstance(meta, dict) and isinstance(meta.get("index_columns"), list)
              and isinstance(meta.get("columns"), list) and all(isinstance(c, dict) for c in meta["columns"])
              and isinstance(meta.get("column_indexes", []), list)):
        return None  # pandas' own reading reports what is wrong with it
    for index in meta["index_columns"]:
        if not (isinstance(index, dict) and index.get("kind") == "range" and index.get("start") == 0
                and index.get("step") == 1):
            return None
    # Column names pandas turns back into numbers, booleans or tuples are not the file's.
    levels = meta.get("column_indexes", [])
    if len(levels) > 1 or any(level.get("pandas_type") not in ("unicode", "string", "str") for level in levels):
        return None
    declared: dict[str, dict[str, Any]] = {}
    for entry in meta["columns"]:
        field = entry.get("field_name", entry.get("name"))
        if field in declared or entry.get("name") is not None and str(entry["name"]) != field:
            return None  # pandas would name the column otherwise, or twice
        declared[field] = entry
    plain, coded = [], []
    for column in columns:
        kind = schema.field(column).type
        # What pandas made of the column when it wrote the file ("": not written by pandas).
        pandas_type = str(declared.get(column, {}).get("pandas_type") or "")
        if _is_text_type(pa, kind) and pandas_type != "categorical":
            plain.append(column)
        elif column in texts:
            return None
        elif pa.types.is_integer(kind) and (not pandas_type or pandas_type.startswith(("int", "uint"))):
            plain.append(column)
        elif pa.types.is_boolean(kind) and pandas_type in ("", "bool", "boolean"):
            plain.append(column)
        elif pa.types.is_dictionary(kind) and _is_text_type(pa, kind.value_type) and pa.types.is_integer(kind.index_type):
            coded.append(column)
        else:
            return None
    return (plain, coded, rows) if rows else None


def _read_polars(path: Path, columns: list[str], plain: list[str], coded: list[str], rows: int) -> Any:
    import polars as pl
    import pyarrow.parquet as pq

    # glob=False: a file named "take[1].parquet" is that file, not a pattern.
    frame = pl.read_parquet(path, columns=plain, glob=False) if plain else pl.DataFrame()
    if frame.columns != plain or frame.height != (rows if plain else 0):
        return None
    enums = {}
    if coded:
        # ParquetFile.read, unlike pyarrow.parquet.read_table, does not import pandas.
        with pq.ParquetFile(path) as handle:
            table = handle.read(columns=coded)
        for column in coded:
            enum = _enum_column(pl, table.column(column))
            if enum is None or len(enum) != rows:
                return None
            enums[column] = enum
        frame = frame.with_columns(**enums) if plain else pl.DataFrame(enums)
    frame = frame.select(columns)
    for column in plain:
        series = frame[column]
        if series.null_count() and series.dtype != pl.String:
            return None
    return frame


def _is_text_type(pa: Any, kind: Any) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind))


def _enum_column(pl: Any, chunks: Any) -> Any:
    """A dictionary-encoded column as a polars Enum of its unified dictionary; None with
    missing entries, or a dictionary that repeats or lacks a value."""
    if chunks.null_count or chunks.num_chunks == 0:
        return None
    chunks = chunks.unify_dictionaries()
    categories = chunks.chunk(0).dictionary
    if categories.null_count:
        return None
    labels = categories.to_pylist()
    if len(set(labels)) != len(labels):
        return None
    return pl.from_arrow(chunks).cast(pl.Enum(labels))


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


def missing_rows(frame: Any, column: str) -> list[Any]:
    """The rows where ``column`` is missing: index labels of a pandas frame, positions of a polars one."""
    series = frame[column]
    if is_polars_frame(frame):
        import numpy as np

        return np.flatnonzero(series.is_null().to_numpy()).tolist() if series.null_count() else []
    return series.index[series.isna().to_numpy()].tolist()


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
