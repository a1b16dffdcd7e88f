"""The prepare step shared by the audit, coverage and the paired comparison.

Every entry point turns its input into the same thing before any statistics:

1. :func:`open_data` reads a table (a DataFrame or one file) or names Parquet shards (a
   folder, a glob, several files), keeping an empty frame with the shards' columns so that
   options are checked before anything is read;
2. :func:`prepare` computes the metric's per-row contributions, or, for shards, reduces
   them batch by batch to sums per (cluster, cell) (:mod:`groupwise.audit._stream`); either
   way the result is a :class:`Prepared` table of rows, each with the number of examples
   it stands for, and the metric's count model;
3. :func:`cluster_codes` and :func:`family_from_columns` turn its columns into the codes
   the statistics take.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from groupwise import _lazy
from groupwise._errors import InputError
from groupwise._io import check_columns, is_polars_frame, missing_rows, read_parquet_polars, read_table
from groupwise.audit._metrics import Contributions, Metric, contributions
from groupwise.audit._stats import Family

pd = _lazy.module("pandas")

__all__ = [
    "Source", "Prepared", "open_data", "prepare", "metric_kind", "cluster_codes", "family_from_columns", "factorize",
    "plain",
]

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class Source:
    """What the data argument named: a table in memory, or Parquet shards.

    ``frame`` is the table (pandas; polars where :func:`open_data` was asked for it and
    could), or an empty frame with the first shard's columns.
    """

    frame: Any
    shards: list[Path] | None = None


@dataclass
class Prepared:
    """Rows ready for the statistics.

    Attributes
    ----------
    frame : pandas.DataFrame or polars.DataFrame
        The table, or one row per (cluster, cell) of reduced shards, with the grouping columns.
    contrib : Contributions or None
        Per-row ``num``, ``den`` and extra counts (None without a metric).
    count, count_den : numpy.ndarray or None
        Examples behind each row, and those with a non-zero denominator (None: one each).
    kind : str or None
        The metric's count model (see :func:`metric_kind`).
    normalizer : Normalizer or None
    stream : dict or None
        For shards: shards, examples, reduced rows, from cache, engine, seconds.
    """

    frame: Any
    contrib: Contributions | None
    count: np.ndarray | None
    count_den: np.ndarray | None
    kind: str | None
    normalizer: Any = None
    stream: dict[str, Any] | None = None

    @property
    def weight(self) -> np.ndarray:
        """Examples behind each row."""
        return np.ones(len(self.frame)) if self.count is None else self.count


def open_data(
    data: Any, *, engine: str = "local", columns: Sequence[str] | None = None, texts: Sequence[str] | None = None
) -> Source:
    """Read a table, or name the Parquet shards ``data`` points at (see :func:`groupwise.audit._stream.stream_source`).

    ``engine="ray"`` reads Parquet only, so one Parquet file becomes one shard there.
    ``columns``: the columns the caller uses; a Parquet file that has them all is read for
    those alone (see :func:`groupwise._io.read_table`). ``texts``: given (the transcript
    columns, possibly none) when the caller works on a polars frame as well: a Parquet
    file is then read with polars where that gives what pandas would
    (:func:`groupwise._io.read_parquet_polars`), and pandas is never imported.

    Examples
    --------
    >>> open_data(pd.DataFrame({"a": [1]})).shards is None
    True
    """
    from groupwise.audit._stream import schema_frame, stream_source

    if engine not in ENGINES:
        raise InputError(f"engine={engine!r} (--engine) is not known", fix="use local or ray")
    if isinstance(data, (list, tuple)) and len(data) == 1:
        data = data[0]
    shards = stream_source(data)
    if engine == "ray" and shards is None:
        if isinstance(data, (str, os.PathLike)) and Path(data).suffix.lower() in (".parquet", ".pq"):
            shards = [Path(data)]
        else:
            raise InputError(
                "engine='ray' (--engine ray) reads Parquet shards, and the data is not a folder, pattern or list of "
                "Parquet files",
                fix="write the table to Parquet (one file or several in a folder) and pass that, or use the local engine",
            )
    if shards is None:
        if texts is not None and columns is not None and engine == "local":
            frame = read_parquet_polars(data, columns=columns, texts=texts)
            if frame is not None:
                return Source(frame)
        return Source(read_table(data, columns=columns))
    return Source(schema_frame(shards[0]), shards)


def prepare(
    source: Source,
    spec: Metric | None,
    columns: Any,
    *,
    normalize: Any = "default",
    cluster: str | None = None,
    keys: Sequence[str] = (),
    expressions: Sequence[str] = (),
    pairing: tuple[str, str, tuple[str, ...], bool] | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    cache_dir: Any = None,
    progress: bool = False,
    frame: pd.DataFrame | None = None,
) -> Prepared:
    """Contributions of ``spec`` (None: count examples only), in memory or reduced from shards.

    ``keys`` (grouping columns) and ``expressions`` (group expressions, reduced to
    ``__group{i}`` columns) matter for shards only: they are the cells the sums are kept for.
    ``frame`` replaces the source's table (after filtering rows, say). Shards need
    ``cluster``: with every row its own cluster nothing reduces.
    """
    normalizer = None
    if spec is not None and spec.name in ("wer", "cer"):
        from groupwise.audit._text import parse_normalizer

        normalizer = parse_normalizer(normalize)
    if source.shards is None:
        table = source.frame if frame is None else frame
        if spec is None:
            return Prepared(table, None, None, None, None, normalizer)
        contrib = contributions(table, spec, columns, normalizer=normalizer)
        return Prepared(table, contrib, None, None, metric_kind(spec.kind, contrib.num, contrib.den), normalizer)
    if cluster is None:
        raise InputError(
            "data in shards is reduced to sums per cluster, and no cluster (--cluster) was given (with every row its "
            "own cluster there is nothing to reduce)",
            fix="pass --cluster with the speaker (or person) column, or pass one file that fits in memory",
        )
    check_columns(source.frame, [cluster], role="cluster", option="--cluster")
    from groupwise.audit._stream import reduce_to_rows

    table, contrib, count, count_den, kind, info = reduce_to_rows(
        source.shards, spec, columns, normalizer, cluster=cluster, keys=keys, expressions=expressions,
        engine=engine, ray_address=ray_address, cache_dir=cache_dir, progress=progress, pairing=pairing,
    )
    return Prepared(table, contrib if spec is not None else None, count, count_den, kind, normalizer, info)


def metric_kind(kind: str, num: np.ndarray, den: np.ndarray) -> str:
    """The count model of precomputed ``num``/``den`` (``metric="ratio"``), read from the data.

    Whole non-negative numbers are counts (errors in words: Poisson with overdispersion),
    and counts no larger than a 0/1 denominator are 0/1 outcomes (binomial); anything else
    gets no count model (cluster-robust variance only).

    Examples
    --------
    >>> metric_kind("continuous", np.array([0., 2., 1.]), np.array([5., 7., 3.]))
    'count'
    >>> metric_kind("continuous", np.array([0.5, 2.]), np.array([1., 1.]))
    'continuous'
    """
    if kind != "continuous" or num.size == 0:
        return kind
    whole = bool(np.all(num >= 0) and np.all(np.mod(num, 1) == 0) and np.all(den >= 0))
    if not whole:
        return "continuous"
    if np.all(np.isin(den, (0.0, 1.0))) and np.all(num <= den):
        return "binary"
    return "count"


def cluster_codes(frame: Any, cluster: str | None) -> tuple[np.ndarray, int]:
    """Each row's cluster as ``0..n-1`` in order of first appearance, and ``n``; rows without ``cluster``."""
    if cluster is None:
        return np.arange(len(frame)), len(frame)
    check_columns(frame, [cluster], role="cluster", option="--cluster")
    missing = missing_rows(frame, cluster)
    if missing:
        raise InputError(
            f"the cluster column {cluster!r} has {len(missing)} missing values",
            fix="give every row its speaker (or person); rows of unknown speakers can each get a unique id",
            rows=missing,
        )
    codes, uniques = factorize(frame, cluster, sort=False)
    if len(uniques) < 2:
        raise InputError(
            f"the cluster column {cluster!r} has a single value ({plain(uniques[0])!r}), so every row "
            "comes from one cluster and there is nothing to resample",
            fix="pass the column that identifies speakers (or persons), or leave --cluster out "
            "if rows are independent",
        )
    return codes.astype(np.int64), len(uniques)


def factorize(frame: Any, column: str, *, sort: bool) -> tuple[np.ndarray, Any]:
    """``pandas.factorize(frame[column], sort=sort)`` for a pandas or a polars frame.

    Codes ``0..k-1`` (-1 where the value is missing) and the ``k`` distinct values: sorted
    with ``sort`` (a categorical column, or a polars Enum, in the order of its categories,
    observed ones only), else in order of first appearance. The two kinds of frame give the
    same codes for the same data, so a polars read of a file groups it as pandas does.

    Examples
    --------
    >>> import polars as pl
    >>> codes, values = factorize(pl.DataFrame({"a": ["b", None, "a", "b"]}), "a", sort=True)
    >>> codes.tolist(), values
    ([1, -1, 0, 1], ['a', 'b'])
    >>> factorize(pl.DataFrame({"a": [3, 1, 3]}), "a", sort=False)[0].tolist()
    [0, 1, 0]
    """
    if not is_polars_frame(frame):
        return pd.factorize(frame[column], sort=sort)
    import polars as pl

    series = frame[column]
    codes = np.full(len(series), -1, dtype=np.int64)
    valid = None if not series.null_count() else ~series.is_null().to_numpy()
    present = series if valid is None else series.drop_nulls()
    if present.dtype == pl.Enum:
        physical = present.to_physical().to_numpy().astype(np.int64)
        n_categories = len(present.dtype.categories)
        if sort:
            order = np.flatnonzero(np.bincount(physical, minlength=n_categories))
        else:
            order = present.unique(maintain_order=True).to_physical().to_numpy().astype(np.int64)
        lookup = np.full(n_categories, -1, dtype=np.int64)
        lookup[order] = np.arange(len(order))
        found = lookup[physical]
        values = [present.dtype.categories[int(i)] for i in order]
    elif present.dtype == pl.String:
        distinct = present.unique(maintain_order=not sort)
        values = (distinct.sort() if sort else distinct).to_list()
        found = present.cast(pl.Enum(values)).to_physical().to_numpy().astype(np.int64)
    else:  # integers and booleans: no hashing of text needed
        array = present.to_numpy()
        ordered = np.unique(array)
        found = np.searchsorted(ordered, array).astype(np.int64)
        if sort:
            values = ordered.tolist()
        else:
            first = present.unique(maintain_order=True).to_numpy()
            rank = np.empty(len(ordered), dtype=np.int64)
            rank[np.searchsorted(ordered, first)] = np.arange(len(first))
            found = rank[found]
            values = first.tolist()
    if valid is None:
        codes = found
    else:
        codes[valid] = found
    return codes, values


def family_from_columns(frame: Any, columns: list[str]) -> Family:
    """The cells of the intersection of ``columns`` present in the data, in sorted order."""
    combined = np.zeros(len(frame), dtype=np.int64)
    missing = np.zeros(len(frame), dtype=bool)
    uniques_per_col = []
    for column in columns:
        codes, uniques = factorize(frame, column, sort=True)
        missing |= codes < 0
        combined = combined * max(len(uniques), 1) + np.maximum(codes, 0)
        uniques_per_col.append(uniques)
    combined[missing] = -1
    kept = combined[~missing]
    n_keys = float(np.prod([max(len(u), 1) for u in uniques_per_col], dtype=float))
    if n_keys <= 4 * len(frame) + 1024:  # dense keys: a bincount, no sort
        seen = np.bincount(kept, minlength=int(n_keys)) > 0
        present = np.flatnonzero(seen)
        cell_codes = (np.cumsum(seen) - 1)[kept]
    else:
        present, cell_codes = np.unique(kept, return_inverse=True)
    codes = np.full(len(frame), -1, dtype=np.int64)
    codes[~missing] = cell_codes
    labels = []
    sizes = [len(u) for u in uniques_per_col]
    for key in present:
        parts = []
        for size in reversed(sizes):
            key, r = divmod(int(key), size)
            parts.append(r)
        parts.reverse()
        labels.append({c: plain(u[i]) for c, u, i in zip(columns, uniques_per_col, parts)})
    return Family(",".join(columns), codes, labels)


def plain(value: Any) -> Any:
    """A JSON-friendly Python scalar.

    >>> type(plain(np.int64(3)))
    <class 'int'>
    """
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass(frozen=True)
class Pairing:
    """How the rows of paired data (one row per item and condition) pair up.

    Attributes
    ----------
    keep : numpy.ndarray
        Per row: its item is present under every condition (rows of other conditions and
        rows without an item are never kept).
    items, incomplete : int
        Distinct items, and those missing under some condition.
    repeated : int
        Rows beyond the first of an (item, condition) pair.
    lacking : numpy.ndarray
        Per condition, the incomplete items that lack it.
    examples : list
        Up to three incomplete items.
    """

    keep: np.ndarray
    items: int
    incomplete: int
    repeated: int
    lacking: np.ndarray
    examples: list[Any]


def distinct_text(values: pd.Series) -> list[str]:
    """The values as text, each once, in order of first appearance (vectorised).

    >>> distinct_text(pd.Series(["b", "a", "b", 1]))
    ['b', 'a', '1']
    """
    return [str(v) for v in pd.unique(values.astype(str))]


def pair_items(frame: pd.DataFrame, item: str, condition: str, conditions: Sequence[str]) -> Pairing:
    """Which rows pair up across ``conditions``, with integer codes (no per-row Python).

    Examples
    --------
    >>> df = pd.DataFrame({"utt": ["u1", "u1", "u2", "u3", "u3", "u3"], "sys": ["a", "b", "a", "a", "b", "b"]})
    >>> p = pair_items(df, "utt", "sys", ["a", "b"])
    >>> p.keep.tolist(), p.incomplete, p.repeated, p.lacking.tolist()
    ([True, True, False, True, True, True], 1, 1, [0, 1])
    """
    item_codes, items = pd.factorize(frame[item])
    k = len(conditions)
    cond_codes = pd.Categorical(frame[condition].astype(str), categories=list(conditions)).codes.astype(np.int64)
    valid = (item_codes >= 0) & (cond_codes >= 0)
    key = item_codes.astype(np.int64) * k + cond_codes
    counts = np.bincount(key[valid], minlength=len(items) * k).reshape(len(items), k)
    present = counts > 0
    complete = present.all(axis=1)
    incomplete = np.flatnonzero(~complete)
    return Pairing(
        keep=valid & complete[np.maximum(item_codes, 0)],
        items=len(items),
        incomplete=int(incomplete.size),
        repeated=int((counts - 1)[counts > 1].sum()),
        lacking=(~present[incomplete]).sum(axis=0),
        examples=[plain(v) for v in items[incomplete[:3]]],
    )
