"""Audits of data larger than memory: Parquet shards reduced to per-(cluster, cell) sums.

Every number an audit reports depends on its examples only through sums per cluster and
cell (:func:`groupwise.audit._inference.cell_sums`): errors, words, examples and examples
with a non-zero denominator. A folder (or glob, or list) of Parquet files can therefore be
audited one batch at a time: each batch is normalised, aligned and reduced to one row per
(cluster, value of every grouping column, group expression) with those sums, the rows of
all batches are reduced again, and the statistics run on the result exactly as on the full
table. Memory holds one batch and the reduced rows, never the data.

Resuming: the reduced rows of each shard are kept in a cache directory under a key made
of the shard's path, size and modification time and of every setting that changes the
sums. A run that stops (a corrupt shard, a lost Ray worker, Ctrl-C) keeps the shards it
finished, and the next run with the same settings reads them instead of the data.

Engines: ``"local"`` reduces shard after shard in this process (the alignment itself uses
every core); ``"ray"`` runs the same reduction of each shard as a Ray Data batch map over
the list of shards, on a local Ray instance or an existing cluster
(``ray_address="ray://host:10001"`` or ``"auto"``), and collects the small reduced tables on
the driver. Both engines put the shards' reduced rows together in shard order, so the
statistics, including the permutation test's draws, are the same for the same seed.
"""

from __future__ import annotations

import glob as globlib
import hashlib
import io
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from groupwise import _lazy
from groupwise._errors import GroupwiseError, InputError

pd = _lazy.module("pandas")

__all__ = ["stream_source", "schema_frame", "reduce_to_rows", "ReducePlan", "Reduced", "reduce_shards", "BATCH_ROWS"]

PARQUET_SUFFIXES = (".parquet", ".pq")
BATCH_ROWS = 262_144
"""Rows read from a shard at a time."""
NUM, DEN, COUNT, COUNT_DEN = "__num", "__den", "__count", "__count_den"
_GLOB_CHARS = set("*?[")
_CACHE_VERSION = "1"


# ---------------------------------------------------------------------------------------
# What the data argument names.


def stream_source(data: Any) -> list[Path] | None:
    """The Parquet shards ``data`` names, or None when it is one table (or a DataFrame).

    A directory (every ``.parquet``/``.pq`` file below it), a glob pattern (``"eval/*.parquet"``,
    ``"eval/**/*.parquet"``) or a list of paths is a set of shards; anything else is left to
    :func:`groupwise._io.read_table`.

    Examples
    --------
    >>> stream_source("results.csv") is None
    True
    """
    if isinstance(data, (list, tuple)) and data and all(isinstance(p, (str, os.PathLike)) for p in data):
        if len(data) == 1:
            return stream_source(data[0]) or None
        paths = [Path(p) for p in data]
        for p in paths:
            _check_shard_path(p)
        seen: dict[Path, Path] = {}
        for p in paths:
            if p.resolve() in seen:
                raise InputError(
                    f"the shard {str(p)!r} is listed twice (as {str(seen[p.resolve()])!r} too), so its rows would count twice",
                    fix="list each file once",
                )
            seen[p.resolve()] = p
        return paths
    if not isinstance(data, (str, os.PathLike)):
        return None
    text = os.fspath(data)
    path = Path(text)
    if path.is_dir():
        # As Spark, Hive and pyarrow do: paths below the folder that start with "." or "_"
        # (_temporary/, .part-0.parquet.crc, _SUCCESS) are not data.
        shards = sorted(
            p for p in path.rglob("*")
            if p.is_file() and p.suffix.lower() in PARQUET_SUFFIXES
            and not any(part.startswith((".", "_")) for part in p.relative_to(path).parts)
        )
        if not shards:
            raise InputError(
                f"the folder {text!r} holds no Parquet files (.parquet or .pq)",
                fix="point at the folder that holds the shards, or at one file (CSV, TSV, JSONL or Parquet)",
            )
        return shards
    if _GLOB_CHARS & set(text) and not path.exists():
        matched = sorted(Path(p) for p in globlib.glob(text, recursive=True) if Path(p).is_file())
        if not matched:
            raise InputError(
                f"the pattern {text!r} matches no file",
                fix="check the folder and the pattern (quote it so that the shell does not expand it), e.g. "
                "'eval/*.parquet' or 'eval/**/*.parquet'",
            )
        for p in matched:
            _check_shard_path(p)
        return matched
    return None


_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


def _hive_parts(path: Path) -> dict[str, str | None]:
    """``key=value`` folders directly above a shard (``eval/accent=us/noise=hum/part-0.parquet``)."""
    from urllib.parse import unquote

    found: dict[str, str | None] = {}
    for folder in reversed(path.parent.parts):
        key, sep, value = folder.partition("=")
        if not sep or not key or key.startswith((".", "_")):
            break
        found.setdefault(unquote(key), None if value == _HIVE_NULL else unquote(value))
    return dict(reversed(list(found.items())))


def hive_partitions(shards: Sequence[Path]) -> list[dict[str, Any]]:
    """The partition columns of each shard from Hive-style folders, typed as pyarrow types them.

    A key whose every value is a whole number becomes an integer column, any other a text
    column, as :func:`pyarrow.dataset.partitioning` infers them. A column stored in the file
    itself wins over a folder of the same name.

    Examples
    --------
    >>> hive_partitions([Path("e/year=2024/accent=us/a.parquet"), Path("e/year=2025/accent=uk/b.parquet")])
    [{'year': 2024, 'accent': 'us'}, {'year': 2025, 'accent': 'uk'}]
    """
    raw = [_hive_parts(p) for p in shards]
    keys = list(dict.fromkeys(k for r in raw for k in r))
    whole = {k: all(v is None or _is_int(v) for r in raw if k in r for v in [r[k]]) for k in keys}
    return [{k: (int(v) if whole[k] and v is not None else v) for k, v in r.items()} for r in raw]


def _is_int(text: str) -> bool:
    body = text[1:] if text[:1] in "+-" else text
    return body.isdigit() and body.isascii()


def _check_shard_path(path: Path) -> None:
    if not path.is_file():
        raise InputError(f"the shard {str(path)!r} does not exist or is not a file", fix="check the path")
    if path.suffix.lower() not in PARQUET_SUFFIXES:
        raise InputError(
            f"{str(path)!r} is not a Parquet file: data split into shards must be Parquet",
            fix="convert the shards to Parquet (pandas: DataFrame.to_parquet; polars: DataFrame.write_parquet), "
            "or audit one CSV/TSV/JSONL file at a time",
        )


# ---------------------------------------------------------------------------------------
# What a batch is reduced to.


@dataclass(frozen=True)
class ReducePlan:
    """Everything needed to reduce a batch; plain data, so it travels to Ray workers.

    ``keys`` are the grouping, stratum and cluster columns; ``expressions`` the group
    expressions, each reduced to a true/false key column ``__group{i}``.
    """

    metric: str | None  # None: examples counted, no metric (coverage without a metric)
    columns: Any  # MetricColumns
    normalizer: Any  # a Normalizer or None
    cluster: str
    keys: tuple[str, ...]
    expressions: tuple[str, ...] = ()
    batch_rows: int = BATCH_ROWS
    # Paired data: (item column, condition column, every condition, strict). Only items
    # present under every condition in their shard are kept (strict: others are an error).
    pairing: tuple[str, str, tuple[str, ...], bool] | None = None

    @property
    def key_columns(self) -> list[str]:
        return list(dict.fromkeys([self.cluster, *self.keys])) + [f"__group{i}" for i in range(len(self.expressions))]

    def read_columns(self) -> list[str]:
        from groupwise._expr import parse_group
        from groupwise.audit._metrics import get_metric

        spec = get_metric(self.metric) if self.metric is not None else None
        metric_cols = [getattr(self.columns, role) for role in spec.inputs] if spec is not None else []

        expr_cols = [c for text in self.expressions for c in parse_group(text).columns]
        pair_cols = list(self.pairing[:2]) if self.pairing is not None else []
        return list(dict.fromkeys([*metric_cols, self.cluster, *self.keys, *expr_cols, *pair_cols]))

    def fingerprint(self) -> str:
        """What changes the sums, as text for the cache key."""
        spec = getattr(self.normalizer, "spec", None if self.normalizer is None else repr(self.normalizer))
        cols = {k: str(v) for k, v in vars(self.columns).items()} if hasattr(self.columns, "__dict__") else str(self.columns)
        from groupwise import __version__

        return json.dumps(
            {"v": _CACHE_VERSION, "groupwise": __version__, "metric": self.metric, "columns": cols, "normalize": spec, "cluster": self.cluster,
             "keys": list(self.keys), "expressions": list(self.expressions),
             "pairing": list(self.pairing) if self.pairing is not None else None},
            sort_keys=True, default=str,
        )


@dataclass
class Reduced:
    """The reduced rows of every shard, with what the audit needs besides them."""

    frame: pd.DataFrame
    extra: list[str]
    whole: bool  # every num a whole non-negative number and every den non-negative
    binary: bool  # every den 0 or 1 and num <= den
    shards: int
    rows: int
    from_cache: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def kind(self, metric_kind: str) -> str:
        """The count model of every row together, as :func:`groupwise.audit._prepare.metric_kind` reads it from each batch."""
        if metric_kind != "continuous" or self.rows == 0:
            return metric_kind
        if not self.whole:
            return "continuous"
        return "binary" if self.binary else "count"


def reduce_batch(frame: pd.DataFrame, plan: ReducePlan) -> pd.DataFrame:
    """One batch (rows of one shard) as one row per key with the sums of its rows."""
    from groupwise._expr import parse_group
    from groupwise.audit._metrics import Contributions, contributions, get_metric
    from groupwise.audit._prepare import metric_kind

    if plan.metric is not None:
        contrib = contributions(frame, get_metric(plan.metric), plan.columns, normalizer=plan.normalizer)
    else:
        contrib = Contributions(np.zeros(len(frame)), np.zeros(len(frame)))
    cluster = frame[plan.cluster]
    if cluster.isna().any():
        raise InputError(
            f"the cluster column {plan.cluster!r} has {int(cluster.isna().sum())} missing values",
            fix="give every row its speaker (or person); rows of unknown speakers can each get a unique id",
            rows=frame.index[cluster.isna().to_numpy()].tolist(),
        )
    out = {c: frame[c] for c in dict.fromkeys([plan.cluster, *plan.keys])}
    for i, text in enumerate(plan.expressions):
        out[f"__group{i}"] = pd.Series(parse_group(text, columns=frame.columns).evaluate(frame), index=frame.index)
    num, den = contrib.num, contrib.den
    # The batch's count model by the in-memory rule; whole numbers and 0/1 outcomes in every
    # batch are the same in all rows (Reduced.kind).
    model = metric_kind("continuous", num, den) if len(num) else "binary"
    flags = pd.Series({"whole": model != "continuous", "binary": model == "binary"})
    out.update({NUM: num, DEN: den, COUNT: np.ones(len(frame)), COUNT_DEN: (den > 0).astype(float)})
    out.update({f"__extra_{k}": v for k, v in contrib.extra.items()})
    reduced = _group(pd.DataFrame(out, index=frame.index), plan.key_columns)
    reduced.attrs["flags"] = flags.to_dict()
    return reduced


def _group(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    sums = [c for c in frame.columns if c not in keys]
    # sort=False keeps keys in order of first appearance, so clusters keep the order of
    # their first row, as they have in the full table.
    return frame.groupby(keys, sort=False, dropna=False, observed=True)[sums].sum().reset_index()


def _combine(parts: Sequence[pd.DataFrame], keys: list[str]) -> pd.DataFrame:
    flags = {"whole": all(p.attrs.get("flags", {}).get("whole", True) for p in parts),
             "binary": all(p.attrs.get("flags", {}).get("binary", True) for p in parts),
             "unpaired_items": sum(int(p.attrs.get("flags", {}).get("unpaired_items", 0)) for p in parts)}
    frame = _group(pd.concat(parts, ignore_index=True), keys) if len(parts) > 1 else parts[0]
    frame.attrs["flags"] = flags
    return frame


# ---------------------------------------------------------------------------------------
# Shards: schema checks, reading, caching.


def check_schemas(shards: Sequence[Path], needed: Sequence[str], partitions: Sequence[dict[str, Any]] | None = None) -> None:
    """Every shard readable, with every needed column (in the file or its folders), of the first shard's types."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = list(partitions) if partitions is not None else hive_partitions(shards)
    first: dict[str, Any] = {}
    for i, path in enumerate(shards):
        try:
            schema = pq.read_schema(path)
        except (pa.ArrowException, OSError) as exc:
            raise _corrupt(path, exc) from None
        names = set(schema.names)
        missing = [c for c in needed if c not in names and c not in parts[i]]
        if missing:
            listed = ", ".join(sorted(schema.names)[:30])
            raise InputError(
                f"the shard {str(path)!r} has no column {', '.join(map(repr, missing))} (it has {listed})",
                fix="give every shard the same columns, or name the right column with its option",
            )
        types = {c: schema.field(c).type for c in needed if c in names}
        if i == 0:
            first = types
            continue
        for c in needed:
            if c in first and c in types and not _compatible(first[c], types[c]):
                raise InputError(
                    f"the shard {str(path)!r} stores the column {c!r} as {types[c]}, but {str(shards[0])!r} "
                    f"stores it as {first[c]}",
                    fix="write every shard with the same schema (cast the column, e.g. with "
                    "pyarrow.Table.cast or polars' cast, and rewrite that shard)",
                )


def _compatible(a: Any, b: Any) -> bool:
    import pyarrow.types as t

    if a == b:
        return True
    text = lambda x: t.is_string(x) or t.is_large_string(x) or t.is_string_view(x) or t.is_dictionary(x)  # noqa: E731
    return (text(a) and text(b)) or (t.is_integer(a) and t.is_integer(b)) or (t.is_null(a) or t.is_null(b))


def _corrupt(path: Path, exc: BaseException) -> InputError:
    detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return InputError(
        f"the shard {str(path)!r} is not a readable Parquet file ({detail}); it may be truncated or corrupt",
        fix="write that shard again (or move it out of the data) and run the same command: the shards already "
        "reduced are read back from the cache (unless it is turned off with --no-cache)",
    )


def _to_pandas(table: Any) -> pd.DataFrame:
    """An Arrow table as pandas, the way pandas.read_parquet converts it."""
    try:
        from pandas.io._util import arrow_table_to_pandas
    except ImportError:  # pragma: no cover - other pandas versions
        return table.to_pandas()
    return arrow_table_to_pandas(table)


def reduce_shard(
    path: Path, plan: ReducePlan, *, partitions: dict[str, Any] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Read a shard batch by batch and reduce it; errors name the shard and its rows.

    ``partitions`` are the shard's Hive folder columns (:func:`hive_partitions`), added to
    every batch where the file lacks them.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts: list[pd.DataFrame] = []
    offset = 0
    if partitions is None:
        partitions = hive_partitions([path])[0]
    try:
        handle = pq.ParquetFile(path)
        in_file = set(handle.schema_arrow.names)
        folder_cols = {k: v for k, v in partitions.items() if k not in in_file}
        paired, unpaired = (None, 0) if plan.pairing is None else _paired_items(handle, path, plan.pairing, folder_cols)
        columns = [c for c in plan.read_columns() if c in in_file]
        batches = handle.iter_batches(batch_size=plan.batch_rows, columns=columns)
        for batch in batches:
            frame = _to_pandas(pa.Table.from_batches([batch]))
            for key, value in folder_cols.items():
                frame[key] = value
            frame.index = pd.RangeIndex(offset, offset + len(frame))
            offset += len(frame)
            if paired is not None:  # the rows of this batch whose item pairs up in the shard
                frame = frame.loc[paired[frame.index[0] : frame.index[0] + len(frame)]] if len(frame) else frame
            try:
                if len(frame):
                    parts.append(reduce_batch(frame, plan))
            except GroupwiseError as exc:
                raise type(exc)(f"in the shard {str(path)!r}: {exc.problem}", fix=exc.fix, rows=exc.rows) from None
            if on_batch is not None:
                on_batch(len(frame))
    except (pa.ArrowException, OSError) as exc:
        raise _corrupt(path, exc) from None
    if not parts:
        empty = pd.DataFrame({c: pd.Series(dtype=object) for c in plan.key_columns})
        for c in (NUM, DEN, COUNT, COUNT_DEN):
            empty[c] = pd.Series(dtype=float)
        empty.attrs["flags"] = {"whole": True, "binary": True}
        parts = [empty]
    out = _combine(parts, plan.key_columns)
    out.attrs["flags"]["unpaired_items"] = unpaired
    return _canonical(out)


def _paired_items(
    handle: Any, path: Path, pairing: tuple[str, str, tuple[str, ...], bool], folder_cols: dict[str, Any]
) -> tuple[np.ndarray, int]:
    """Per row of the shard, whether its item is present under every condition; and the number of items that are not.

    Pairs are made within a shard: an item whose rows are spread over several shards counts
    as unpaired in each (an error when ``strict``), never as paired by mistake.
    """
    from groupwise.audit._prepare import pair_items

    item, condition, conditions, strict = pairing
    table = _to_pandas(handle.read(columns=[c for c in (item, condition) if c not in folder_cols]))
    for key, value in folder_cols.items():
        if key in (item, condition):
            table[key] = value
    found = pair_items(table, item, condition, conditions)
    if strict and found.repeated:
        raise InputError(
            f"in the shard {str(path)!r}: {found.repeated} rows repeat an ({item}, {condition}) pair, so items do not "
            "pair up one to one",
            fix="keep one row per item and system, or name the column that identifies an item with --item",
        )
    if strict and found.incomplete:
        raise InputError(
            f"in the shard {str(path)!r}: {found.incomplete} of {found.items} items are not present under every "
            f"{condition} (for example {found.examples}); pairs are made within a shard",
            fix="compare on items every system has, with each item's rows (every system) in one shard, or pass "
            "--drop-unpaired to leave the others out and count them",
        )
    return found.keep, found.incomplete


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """Through Arrow and back, so that a cached, a Ray-made and a fresh table are alike."""
    return _from_bytes(_to_bytes(frame))


def _to_bytes(frame: pd.DataFrame) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"groupwise_flags": json.dumps(frame.attrs.get("flags", {})).encode()})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _from_bytes(data: bytes) -> pd.DataFrame:
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(data))
    flags = json.loads((table.schema.metadata or {}).get(b"groupwise_flags", b"{}"))
    frame = _to_pandas(table)
    frame.attrs["flags"] = flags
    return frame


def default_cache_dir() -> Path:
    """``$GROUPWISE_CACHE/shards``, else ``~/.cache/groupwise/shards`` (the transcription cache's home)."""
    if os.environ.get("GROUPWISE_CACHE"):
        return Path(os.environ["GROUPWISE_CACHE"]).expanduser() / "shards"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "groupwise" / "shards"


def _shard_key(path: Path, plan: ReducePlan) -> str:
    st = path.stat()
    ident = json.dumps([str(path.resolve()), st.st_size, st.st_mtime_ns, plan.fingerprint()])
    return hashlib.sha256(ident.encode()).hexdigest()[:32]


class _Cache:
    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        if directory is not None:
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InputError(
                    f"the cache directory {str(directory)!r} cannot be created ({exc.strerror or exc})",
                    fix="pass --cache-dir with a writable folder, or --no-cache",
                ) from None

    def get(self, key: str) -> pd.DataFrame | None:
        if self.directory is None:
            return None
        file = self.directory / f"{key}.sums"
        if not file.is_file():
            return None
        try:
            return _from_bytes(file.read_bytes())
        except Exception:  # noqa: BLE001 - a damaged cache entry is recomputed, never trusted
            return None

    def put(self, key: str, frame: pd.DataFrame) -> None:
        if self.directory is None:
            return
        tmp = self.directory / f".{key}.{os.getpid()}.tmp"
        try:
            tmp.write_bytes(_to_bytes(frame))
            os.replace(tmp, self.directory / f"{key}.sums")
        except Exception:  # noqa: BLE001 - a cache that cannot be written only costs a rerun
            tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------
# Progress.


class Progress:
    """Shards and batches done, examples per second and memory, on standard error.

    A line at most every ``every`` seconds (and one at the end); silent when ``enabled`` is
    false (``--quiet``, or ``CI`` set in the environment).
    """

    def __init__(self, total_shards: int, *, enabled: bool = True, every: float = 2.0, stream: Any = None) -> None:
        self.total = total_shards
        self.enabled = enabled
        self.every = every
        self.stream = stream if stream is not None else sys.stderr
        self.start = time.perf_counter()
        self.last = 0.0
        self.rows = 0
        self.batches = 0
        self.shards = 0
        self.cached = 0

    def batch(self, rows: int) -> None:
        self.rows += rows
        self.batches += 1
        self._maybe()

    def shard(self, *, cached: bool = False, rows: int = 0) -> None:
        """A shard done; ``rows`` are its examples when they were not counted batch by batch."""
        self.shards += 1
        self.cached += cached
        self.rows += rows
        self._maybe(force=self.shards == self.total)

    def _maybe(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not self.enabled or (not force and now - self.last < self.every):
            return
        self.last = now
        elapsed = max(now - self.start, 1e-9)
        cached = f", {self.cached} from the cache" if self.cached else ""
        print(
            f"audit: {self.shards}/{self.total} shards{cached}, {self.batches} batches, {self.rows:,} examples, "
            f"{self.rows / elapsed:,.0f} examples/s, {_rss_mb():,.0f} MB",
            file=self.stream, flush=True,
        )


def _rss_mb() -> float:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def progress_enabled(quiet: bool) -> bool:
    """Progress lines unless ``--quiet`` or in CI (``CI`` set to anything but false/0)."""
    ci = os.environ.get("CI", "").strip().lower()
    return not quiet and ci in ("", "0", "false", "no")


# ---------------------------------------------------------------------------------------
# Driving the reduction.


class _Accumulator:
    """Reduced shards put together in shard order, whatever order they arrive in.

    The shards done from the first on are folded into one table once they hold as many
    rows as it does, so memory stays near the size of the final reduced table however many
    shards there are, at an amortised cost of a few group-bys of it.
    """

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys
        self.prefix: pd.DataFrame | None = None
        self.next = 0
        self.run: list[pd.DataFrame] = []
        self.waiting: dict[int, pd.DataFrame] = {}

    def add(self, index: int, frame: pd.DataFrame) -> None:
        self.waiting[index] = frame
        while self.next in self.waiting:
            self.run.append(self.waiting.pop(self.next))
            self.next += 1
        held = sum(len(f) for f in self.run)
        if held >= max(len(self.prefix) if self.prefix is not None else 0, 500_000):
            self._fold()

    def _fold(self) -> None:
        if self.run:
            self.prefix = _combine(([self.prefix] if self.prefix is not None else []) + self.run, self.keys)
            self.run = []

    def result(self) -> pd.DataFrame:
        if self.waiting:  # pragma: no cover - every shard is added before the result is asked for
            raise RuntimeError("shards missing from the reduction")
        self._fold()
        assert self.prefix is not None
        return self.prefix


def reduce_shards(
    shards: Sequence[Path],
    plan: ReducePlan,
    *,
    engine: str = "local",
    ray_address: str | None = None,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
) -> Reduced:
    """Reduce every shard (from the cache where it is there) and put them together in order."""
    started = time.perf_counter()
    partitions = hive_partitions(shards)
    check_schemas(shards, plan.read_columns(), partitions)
    cache = _Cache(cache_dir)
    keys = [_shard_key(p, plan) for p in shards]
    parts = _Accumulator(plan.key_columns)
    done: set[int] = set()
    for i, key in enumerate(keys):
        hit = cache.get(key)
        if hit is not None:
            parts.add(i, hit)
            done.add(i)
            if progress is not None:
                progress.shard(cached=True, rows=int(hit[COUNT].sum()) if len(hit) else 0)
    from_cache = len(done)
    todo = [i for i in range(len(shards)) if i not in done]
    if engine == "local":
        for i in todo:
            frame = reduce_shard(shards[i], plan, partitions=partitions[i],
                                 on_batch=progress.batch if progress is not None else None)
            cache.put(keys[i], frame)
            parts.add(i, frame)
            if progress is not None:
                progress.shard()
    elif engine == "ray":
        from groupwise.audit._ray import reduce_on_ray

        for i, frame in reduce_on_ray([shards[i] for i in todo], todo, plan, address=ray_address,
                                      partitions=[partitions[i] for i in todo]):
            cache.put(keys[i], frame)
            parts.add(i, frame)
            if progress is not None:
                progress.shard(rows=int(frame[COUNT].sum()) if len(frame) else 0)
    else:
        raise InputError(f"engine {engine!r} is not known", fix="use engine='local' or engine='ray'")
    frame = parts.result()
    flags = frame.attrs.get("flags", {})
    extra = [c[len("__extra_"):] for c in frame.columns if c.startswith("__extra_")]
    rows = int(frame[COUNT].sum()) if len(frame) else 0
    if rows == 0:
        raise InputError(
            f"the {len(shards)} shard(s) hold no rows", fix="check that the folder or pattern names the data you meant"
        )
    return Reduced(
        frame=frame, extra=extra, whole=bool(flags.get("whole", True)), binary=bool(flags.get("binary", True)),
        shards=len(shards), rows=rows, from_cache=from_cache, seconds=time.perf_counter() - started,
    )


# ---------------------------------------------------------------------------------------
# For the commands: the reduced rows as the rows the statistics run on.


def schema_frame(path: Path) -> pd.DataFrame:
    """An empty frame with the shard's columns (its Hive folder columns too), to check options before any reading."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        names = [str(n) for n in pq.read_schema(path).names if not str(n).startswith("__index_level_")]
    except (pa.ArrowException, OSError) as exc:
        raise _corrupt(path, exc) from None
    return pd.DataFrame(columns=list(dict.fromkeys([*names, *_hive_parts(path)])))


def reduce_to_rows(
    shards: Sequence[Path], spec: Any, columns: Any, normalizer: Any, *, cluster: str, keys: Sequence[str],
    expressions: Sequence[str] = (), engine: str = "local", ray_address: str | None = None, cache_dir: Any = None,
    progress: bool = False, pairing: tuple[str, str, tuple[str, ...], bool] | None = None,
) -> tuple[pd.DataFrame, Any, np.ndarray, np.ndarray, str | None, dict[str, Any]]:
    """Shards reduced to per-(cluster, cell) sums: ``(rows, contributions, count, count_den, kind, info)``.

    ``spec`` is the metric (None to count examples only); ``cache_dir`` None means
    :func:`default_cache_dir` and False no cache.
    """
    from groupwise.audit._metrics import Contributions

    plan = ReducePlan(metric=spec.name if spec is not None else None, columns=columns, normalizer=normalizer,
                      cluster=cluster, keys=tuple(keys), expressions=tuple(expressions), pairing=pairing)
    directory = None if cache_dir is False else Path(cache_dir) if cache_dir not in (None, True) else default_cache_dir()
    reporter = Progress(len(shards), enabled=bool(progress))
    reduced = reduce_shards(shards, plan, engine=engine, ray_address=ray_address, cache_dir=directory, progress=reporter)
    frame = reduced.frame
    contrib = Contributions(
        frame[NUM].to_numpy(dtype=float), frame[DEN].to_numpy(dtype=float),
        {name: frame[f"__extra_{name}"].to_numpy(dtype=float) for name in reduced.extra},
    )
    info = {
        "shards": reduced.shards, "examples": reduced.rows, "reduced_rows": len(frame), "from_cache": reduced.from_cache,
        "engine": engine, "seconds": round(reduced.seconds, 2),
    }
    if pairing is not None:
        info["unpaired_items"] = int(frame.attrs.get("flags", {}).get("unpaired_items", 0))
    kind = reduced.kind(spec.kind) if spec is not None else None
    return frame, contrib, frame[COUNT].to_numpy(dtype=float), frame[COUNT_DEN].to_numpy(dtype=float), kind, info


def distinct_values(shards: Sequence[Path], column: str) -> list[str]:
    """The values of one column over every shard, as text, in order of first appearance."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    seen: dict[str, None] = {}
    for path, folders in zip(shards, hive_partitions(shards)):
        try:
            if column not in pq.read_schema(path).names and column in folders:
                seen.setdefault(str(folders[column]), None)
                continue
            values = pq.read_table(path, columns=[column]).column(0)
        except (pa.ArrowException, OSError) as exc:
            raise _corrupt(path, exc) from None
        seen.update(dict.fromkeys(_to_pandas(pa.table({column: values}))[column].astype(str).drop_duplicates()))
    return list(seen)
