"""Transcribe a manifest of audio files, with a cache, resumption, workers and progress.

:func:`transcribe` runs every (manifest row, condition) pair through a recogniser from
:mod:`groupwise.speech._asr` and returns one row per pair with the hypothesis.

Caching
    Results go to a SQLite file (``transcripts.sqlite`` in ``$GROUPWISE_CACHE``, else
    ``$XDG_CACHE_HOME/groupwise``, else ``~/.cache/groupwise``), keyed by a hash of the
    original audio's samples, the condition, the seed and the recogniser's
    :meth:`~groupwise.speech._asr.Backend.config`. Every result is written the moment it
    is finished, by the process that made it, so an interrupted run (Ctrl-C, a killed
    process, a service that went down) loses only the utterances in flight: running
    the same call again resumes. The file is in WAL mode, so several processes and
    runs can share it.

Parallelism
    ``workers=N`` runs N recognisers. Recognisers that compute (PocketSphinx, Whisper)
    each get a process of their own, built once per process: the calling process and
    N-1 helper processes, which are sent chunks of jobs, longest utterances first,
    while the calling process takes the shortest. Recognisers that wait (a web service,
    another program) run in N threads sharing one instance, which also makes an
    ``http`` rate limit hold across all of them. ``engine="ray"`` runs the same chunks
    as Ray tasks instead.

Worker processes are started with the ``forkserver`` method where there is one (and
``spawn`` elsewhere), never by forking the calling process, which may hold threads and
locks; the fork server is told to preload groupwise and PocketSphinx. As with any
multiprocessing code, a script that calls :func:`transcribe` with ``workers > 1`` must
do so under ``if __name__ == "__main__":``.

Each utterance's condition gets a seed derived from ``seed`` and the audio's content
hash, so noise differs between utterances but not between runs, worker counts or
orders; PocketSphinx is reset before every utterance for the same reason.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import multiprocessing
import os
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from groupwise._errors import GroupwiseError, InputError
from groupwise._validation import check_choice, check_scalar
from groupwise.speech._asr import Backend, BackendUnavailable, TranscriptionError, get_backend
from groupwise.speech._audio import AudioError, audio_hash, read_audio

__all__ = ["transcribe", "default_cache_dir", "CACHE_FILE"]

log = logging.getLogger("groupwise")

CACHE_FILE = "transcripts.sqlite"
_SCHEMA = 1
_OUTPUT_COLUMNS = ("condition", "hypothesis", "audio_seconds", "cached", "error")
_MAX_CHUNK = 32
_CALLER_WORKS = True  # the calling process is one of the workers (see _execute_processes)


def default_cache_dir() -> Path:
    """Where transcripts are cached when no ``cache`` is given."""
    if os.environ.get("GROUPWISE_CACHE"):
        return Path(os.environ["GROUPWISE_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "groupwise"


# --------------------------------------------------------------------------- the cache


class _Cache:
    """The SQLite transcript cache; one connection per process (and per thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit: every result is its own transaction, durable once written.
            self.conn = sqlite3.connect(str(path), timeout=60, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise InputError(
                f"the transcript cache {str(path)!r} cannot be opened: {exc}",
                fix="pass cache= a writable directory, or set GROUPWISE_CACHE",
            ) from None
        try:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.executescript(
                """
                CREATE TABLE IF NOT EXISTS transcripts (
                    key TEXT PRIMARY KEY, hypothesis TEXT NOT NULL, audio_hash TEXT, condition TEXT,
                    seed INTEGER, backend TEXT, created REAL, seconds REAL);
                CREATE TABLE IF NOT EXISTS backends (id TEXT PRIMARY KEY, config TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS audio_files (
                    path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, hash TEXT, seconds REAL);
                """
            )
        except sqlite3.Error as exc:
            self.conn.close()
            raise InputError(
                f"the transcript cache {str(path)!r} is not a usable SQLite file: {exc}",
                fix="delete it, or pass cache= another directory",
            ) from None

    def close(self) -> None:
        self.conn.close()

    def lookup(self, keys: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for start in range(0, len(keys), 500):  # under SQLite's bound-variable limit
            batch = list(keys[start : start + 500])
            marks = ",".join("?" * len(batch))
            for key, hyp in self.conn.execute(
                f"SELECT key, hypothesis FROM transcripts WHERE key IN ({marks})", batch
            ):
                found[key] = hyp
        return found

    def put(self, job: _Job, hypothesis: str, seconds: float) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO transcripts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (job.key, hypothesis, job.audio_hash, job.condition, job.seed, job.backend_id, time.time(), seconds),
        )

    def put_backend(self, backend_id: str, config_json: str) -> None:
        self.conn.execute("INSERT OR IGNORE INTO backends VALUES (?, ?)", (backend_id, config_json))

    def audio_info(self, path: str, size: int, mtime_ns: int) -> tuple[str, float] | None:
        row = self.conn.execute(
            "SELECT hash, seconds FROM audio_files WHERE path = ? AND size = ? AND mtime_ns = ?", (path, size, mtime_ns)
        ).fetchone()
        return (row[0], row[1]) if row else None

    def put_audio_info(self, path: str, size: int, mtime_ns: int, digest: str, seconds: float) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO audio_files VALUES (?, ?, ?, ?, ?)", (path, size, mtime_ns, digest, seconds)
        )


def _cache_path(cache: str | os.PathLike[str] | None | bool) -> Path | None:
    if cache is False:
        return None
    if cache is None or cache is True:
        return default_cache_dir() / CACHE_FILE
    path = Path(cache).expanduser()
    if path.suffix in (".sqlite", ".sqlite3", ".db") or path.is_file():
        return path
    return path / CACHE_FILE


# --------------------------------------------------------------------------- jobs


@dataclass(frozen=True)
class _Job:
    """One recognition to run: picklable, small, self-contained."""

    key: str
    path: str
    condition: str
    seed: int | None  # the seed argument, in the cache row; None when it cannot matter
    utterance_seed: int  # the seed the condition gets
    audio_hash: str
    seconds: float
    backend_id: str


@dataclass
class _Outcome:
    key: str
    hypothesis: str | None
    error: tuple[str, str, str] | None  # (error class name, problem, fix)
    elapsed: float
    seconds: float
    pid: int = field(default_factory=os.getpid)  # which process did the work


def _utterance_seed(seed: int, digest: str) -> int:
    # Per-utterance noise that is different for every file yet the same on every run,
    # in every worker, and for every condition of a sweep (paired comparisons).
    h = hashlib.blake2b(f"{seed}:{digest}".encode(), digest_size=4).digest()
    return int.from_bytes(h, "little")


def _job_key(digest: str, condition: str, seed: int | None, backend_id: str, inputs: list[Any]) -> str:
    text = json.dumps([_SCHEMA, digest, condition, seed, backend_id, inputs], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _condition_inputs(spec: str) -> list[Any]:
    """Content identity of files a condition reads (a ``file:`` noise recording).

    A spec names the noise file by path only; keying on its content as well means a
    replaced recording is never answered from the cache.
    """
    from groupwise.speech._asr import _file_identity

    cond = _condition(spec)
    inputs = []
    for part in getattr(cond, "parts", None) or (cond,):
        path = getattr(part, "path", None)
        if isinstance(path, str) and path and Path(path).is_file():
            inputs.append(_file_identity(path))
    return inputs


@functools.lru_cache(maxsize=64)
def _condition(spec: str) -> Callable[..., tuple[np.ndarray, int]]:
    from groupwise.speech._conditions import parse_condition

    return parse_condition(spec)


def _load_one(job: _Job) -> tuple[np.ndarray, int]:
    audio, rate = read_audio(job.path)
    return _condition(job.condition)(audio, rate, seed=job.utterance_seed)


def _failure(job: _Job, exc: Exception, elapsed: float, stop_on_error: bool) -> _Outcome:
    if isinstance(exc, GroupwiseError):
        return _Outcome(job.key, None, (type(exc).__name__, exc.problem, exc.fix), elapsed, job.seconds)
    if stop_on_error:
        raise exc
    return _Outcome(
        job.key, None, ("TranscriptionError", f"{type(exc).__name__}: {exc}", "see the error message"),
        elapsed, job.seconds,
    )  # fmt: skip


def _run_jobs(
    backend: Backend,
    jobs: Iterable[_Job],
    *,
    cache: _Cache | None,
    stop_on_error: bool,
    done: Callable[[_Outcome], None] | None = None,
) -> list[_Outcome]:
    """Run jobs in order, caching each result at once.

    A recogniser whose ``batch`` is more than one gets that many utterances at a time
    (Whisper packs them into shared windows); each result is cached as soon as its
    batch is done. Errors of groupwise's own kinds come back as outcomes, because they
    cannot cross a process boundary (their keyword-only constructor does not unpickle);
    with ``stop_on_error`` the rest is left undone, and other exceptions propagate.
    """
    out: list[_Outcome] = []
    jobs = list(jobs)
    size = max(1, int(getattr(backend, "batch", 1)))
    for first in range(0, len(jobs), size):
        batch = jobs[first : first + size]
        start = time.perf_counter()
        outcomes: dict[str, _Outcome] = {}
        loaded: list[tuple[_Job, tuple[np.ndarray, int]]] = []
        for job in batch:
            try:
                loaded.append((job, _load_one(job)))
            except Exception as exc:  # noqa: BLE001 - reported per utterance
                outcomes[job.key] = _failure(job, exc, 0.0, stop_on_error)
        if loaded:
            try:
                if len(loaded) == 1:
                    hypotheses = [backend.transcribe(*loaded[0][1])]
                else:
                    hypotheses = backend.transcribe_batch([item for _, item in loaded])
            except Exception as exc:  # noqa: BLE001 - the whole batch failed
                elapsed = (time.perf_counter() - start) / len(loaded)
                for job, _ in loaded:
                    outcomes[job.key] = _failure(job, exc, elapsed, stop_on_error)
            else:
                total = sum(job.seconds for job, _ in loaded) or 1.0
                elapsed = time.perf_counter() - start
                for (job, _), hypothesis in zip(loaded, hypotheses):
                    outcome = _Outcome(job.key, hypothesis, None, elapsed * job.seconds / total, job.seconds)
                    if cache is not None:
                        cache.put(job, hypothesis, outcome.elapsed)
                    outcomes[job.key] = outcome
        for job in batch:
            outcome = outcomes[job.key]
            out.append(outcome)
            if done is not None:
                done(outcome)
        if stop_on_error and any(o.error is not None for o in outcomes.values()):
            break
    return out


# Per-process state of pool workers: a recogniser is built once per process, not per task.
_WORKER: dict[str, Any] = {}


def _worker_init(backend_name: str, options: dict[str, Any], cache_path: str | None) -> None:
    backend = get_backend(backend_name, **options)
    backend.load()
    _WORKER["backend"] = backend
    _WORKER["cache"] = _Cache(Path(cache_path)) if cache_path else None


def _worker_chunk(jobs: list[_Job], stop_on_error: bool) -> list[_Outcome]:
    return _run_jobs(_WORKER["backend"], jobs, cache=_WORKER["cache"], stop_on_error=stop_on_error)


def _ray_chunk(backend_name: str, options: dict[str, Any], jobs: list[_Job], stop_on_error: bool) -> list[_Outcome]:
    # Ray reuses worker processes between tasks, so the recogniser is kept per process.
    # The driver writes the cache: on a cluster the workers may not see its file.
    ident = json.dumps([backend_name, options], sort_keys=True, default=str)
    if _WORKER.get("ray_ident") != ident:
        _WORKER["ray_backend"] = get_backend(backend_name, **options)
        _WORKER["ray_ident"] = ident
    return _run_jobs(_WORKER["ray_backend"], jobs, cache=None, stop_on_error=stop_on_error)


def _chunk_size(jobs: int, workers: int) -> int:
    # Chunks amortise the cost of a task when utterances are short, but a big chunk
    # left at the end keeps one worker busy while the others idle: aim for eight chunks
    # per worker, at most 32 jobs each.
    return max(1, min(_MAX_CHUNK, math.ceil(jobs / (8 * workers))))


def _chunks(jobs: list[_Job], workers: int) -> list[list[_Job]]:
    # Longest utterances first (as in LPT scheduling), so the chunks handed out last
    # are the quickest.
    ordered = sorted(jobs, key=lambda j: -j.seconds)
    size = _chunk_size(len(ordered), workers)
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


def _pool_context() -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        # The fork server imports these once; every worker forked from it starts warm.
        ctx.set_forkserver_preload(["groupwise.speech._transcribe", "pocketsphinx", "scipy.signal", "soundfile"])
        return ctx
    return multiprocessing.get_context("spawn")


# --------------------------------------------------------------------------- progress


class _Progress:
    """A rich progress bar on stderr when it is a terminal; a summary line otherwise."""

    def __init__(self, enabled: bool, total: int, cached: int, backend: str) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.enabled = enabled
        self.live = enabled and self.console.is_terminal and total > 0
        self.total, self.cached, self.backend = total, cached, backend
        self.done = 0
        self.audio = 0.0
        self.start = time.perf_counter()
        self._bar: Any = None
        if self.live:
            from rich.progress import (
                BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
            )  # fmt: skip

            self._bar = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("utterances  {task.fields[speed]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                console=self.console,
            )  # fmt: skip
            cached_note = f", {cached} cached" if cached else ""
            self._task = self._bar.add_task(f"transcribing ({backend}{cached_note})", total=total, speed="")
            self._bar.start()

    def advance(self, outcomes: Sequence[_Outcome]) -> None:
        self.done += len(outcomes)
        self.audio += sum(o.seconds for o in outcomes if o.error is None)
        if self._bar is not None:
            self._bar.update(self._task, advance=len(outcomes), speed=f"{self.rate():.1f} audio s/s")

    def rate(self) -> float:
        return self.audio / max(time.perf_counter() - self.start, 1e-9)

    def close(self, problems: Sequence[dict[str, Any]]) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        if not self.enabled:
            if problems:
                shown = "; ".join(f"row {p['row']}: {p['audio']} ({p['problem']})" for p in problems[:10])
                more = f"; and {len(problems) - 10} more" if len(problems) > 10 else ""
                log.warning("%d utterance(s) skipped: %s%s", len(problems), shown, more)
            return
        if not self.live:
            self.console.print(
                f"transcribed {self.done} utterances with {self.backend} ({self.audio:.1f} s of audio, "
                f"{self.rate():.1f} audio s/s), {self.cached} from the cache",
                highlight=False,
            )
        if problems:
            self.console.print(f"[yellow]{len(problems)} utterance(s) skipped:[/yellow]")
            for p in problems[:20]:
                # soft_wrap: a long path stays on one line, whole, to copy and search for
                self.console.print(
                    f"  row {p['row']}: {p['audio']} ({p['problem']})", highlight=False, markup=False, soft_wrap=True
                )
            if len(problems) > 20:
                self.console.print(f"  and {len(problems) - 20} more", highlight=False)


# --------------------------------------------------------------------------- transcribe


def transcribe(
    manifest: pd.DataFrame,
    *,
    backend: str = "pocketsphinx",
    backend_options: dict[str, Any] | None = None,
    audio_column: str = "audio",
    conditions: Sequence[str] = ("baseline",),
    seed: int = 0,
    workers: int = 1,
    cache: str | os.PathLike[str] | None | bool = None,
    engine: Literal["local", "ray"] = "local",
    on_error: Literal["fail", "skip"] = "fail",
    progress: bool = True,
    ray_address: str | None = None,
) -> pd.DataFrame:
    """Transcribe every audio file of ``manifest`` under every condition.

    Parameters
    ----------
    manifest : DataFrame
        One row per utterance, with audio file paths in ``audio_column`` (any audio
        libsndfile reads, any rate, mono or multichannel).
    backend, backend_options
        The recogniser (see :func:`groupwise.speech._asr.get_backend`).
    conditions : sequence of str
        Last-mile condition specs (``"baseline"`` is the audio as it is).
    seed : int
        Seeds the conditions' randomness; each utterance gets its own seed derived from
        this and its audio, so runs are reproducible in any order and with any workers.
    workers : int
        Recognisers running at once.
    cache : path, None or False
        A cache directory (or ``.sqlite`` file); None for the default
        (:func:`default_cache_dir`), False for no cache.
    engine : {"local", "ray"}
        ``"ray"`` runs the work as tasks on Ray: on the cluster at ``ray_address``, or on a
        local Ray started with ``workers`` CPUs when this process is not connected to one
        (a Ray started here is shut down at the end, as the audit's Ray engine does).
    ray_address : str, optional
        An existing Ray cluster (``"auto"``, ``"HEAD:6379"``, ``"ray://HEAD:10001"``); its
        nodes need groupwise, the recogniser's model and the audio under the same paths.
    on_error : {"fail", "skip"}
        What to do with unusable audio and failed recognitions: raise one error listing
        them, or give those rows an ``error`` and no hypothesis.
    progress : bool
        Show a progress bar on stderr (a summary line when stderr is not a terminal).

    Returns
    -------
    DataFrame
        One row per (manifest row, condition), conditions in order, each block in
        manifest order with the manifest's index: the manifest's columns, then
        ``condition`` (canonical spec), ``hypothesis``, ``audio_seconds`` (of the
        original audio), ``cached`` and ``error``. ``attrs["problems"]`` lists
        skipped rows and ``attrs["transcription"]`` holds run statistics.

    Raises
    ------
    AudioError
        With ``on_error="fail"``, listing every row whose audio is missing, unreadable
        or empty, before anything is transcribed.
    TranscriptionError
        With ``on_error="fail"``, when the recogniser fails; results finished before
        are cached, so running again resumes.
    """
    started = time.perf_counter()
    if not isinstance(manifest, pd.DataFrame):
        raise InputError(
            f"manifest must be a pandas DataFrame, got {type(manifest).__name__}",
            fix="load it with load_manifest() or pandas",
        )
    if audio_column not in manifest.columns:
        raise InputError(
            f"the manifest has no audio column {audio_column!r} (columns: {', '.join(map(str, manifest.columns))})",
            fix="pass audio_column= the column holding the audio file paths",
        )
    clash = [c for c in _OUTPUT_COLUMNS if c in manifest.columns]
    if clash:
        raise InputError(
            f"the manifest already has column{'s' if len(clash) > 1 else ''} {', '.join(map(repr, clash))}, "
            "which transcribe() adds",
            fix="rename or drop them first (e.g. manifest.drop(columns=[...]))",
        )
    workers = int(check_scalar(workers, "workers", int, caller="transcribe", min_val=1))
    seed = int(check_scalar(seed, "seed", int, caller="transcribe"))
    engine = check_choice(engine, "engine", ("local", "ray"), caller="transcribe")
    on_error = check_choice(on_error, "on_error", ("fail", "skip"), caller="transcribe")
    if engine == "ray":
        from groupwise.audit._ray import _import_ray

        _import_ray()  # before any work, not after the audio has been read
    specs = _canonical_conditions(conditions)
    options = dict(backend_options or {})
    recogniser = get_backend(backend, **options)
    config_json = json.dumps(recogniser.config(), sort_keys=True, default=str)
    backend_id = hashlib.sha256(config_json.encode()).hexdigest()[:32]
    cache_path = _cache_path(cache)
    store = _Cache(cache_path) if cache_path is not None else None
    try:
        if store is not None:
            store.put_backend(backend_id, config_json)
        files, problems = _check_audio(manifest, audio_column, store)
        if problems and on_error == "fail":
            lines = "; ".join(f"row {p['row']}: {p['audio']} ({p['problem']})" for p in problems[:10])
            more = f"; and {len(problems) - 10} more" if len(problems) > 10 else ""
            raise AudioError(
                f"{len(problems)} of {len(manifest)} rows have audio that cannot be used: {lines}{more}",
                fix="fix or remove those rows, or pass on_error='skip' to leave them out with a report",
                rows=[p["row"] for p in problems],
            )

        # One job per distinct (audio, condition): duplicate files are recognised once.
        inputs = {spec: _condition_inputs(spec) for spec in specs}
        jobs: dict[str, _Job] = {}
        slots: list[tuple[str, int, str | None]] = []  # (condition, row position, key)
        for spec in specs:
            for pos in range(len(manifest)):
                info = files[pos]
                if isinstance(info, str):
                    slots.append((spec, pos, None))
                    continue
                digest, seconds, path = info
                # Baseline does not use the seed, so its results are shared by all seeds.
                key_seed = None if spec == "baseline" else seed
                key = _job_key(digest, spec, key_seed, backend_id, inputs[spec])
                slots.append((spec, pos, key))
                if key not in jobs:
                    utterance_seed = _utterance_seed(seed, digest)
                    jobs[key] = _Job(key, path, spec, key_seed, utterance_seed, digest, seconds, backend_id)
        hits = store.lookup(list(jobs)) if store is not None else {}
        todo = [job for key, job in jobs.items() if key not in hits]

        results: dict[str, _Outcome] = {}
        bar = _Progress(progress, len(todo), len(jobs) - len(todo), recogniser.name)
        try:
            if todo:
                _execute(
                    todo, recogniser, backend, options, workers=workers, engine=engine, store=store,
                    cache_path=cache_path, stop_on_error=on_error == "fail", results=results, bar=bar,
                    ray_address=ray_address,
                )  # fmt: skip
            failures = [o for o in results.values() if o.error is not None]
            rows_of: dict[str, list[Any]] = {}
            for _, pos, key in slots:
                if key is not None:
                    rows_of.setdefault(key, []).append(manifest.index[pos])
            if failures and on_error == "fail":
                first = failures[0]
                row = rows_of[first.key][0]
                kinds = {"AudioError": AudioError, "InputError": InputError, "BackendUnavailable": BackendUnavailable}
                kind = kinds.get(first.error[0], TranscriptionError)
                done = sum(o.error is None for o in results.values())
                raise kind(
                    f"transcribing row {row} ({jobs[first.key].path}, condition {jobs[first.key].condition!r}) "
                    f"failed: {first.error[1]}",
                    fix=f"{first.error[2]}; the {done} results finished in this run "
                    + ("are cached, so running again resumes" if store is not None else "were not cached (cache=False)"),
                )
            transcribe_problems = [
                {"row": r, "audio": jobs[o.key].path, "problem": f"{o.error[1]}", "condition": jobs[o.key].condition}
                for o in failures
                for r in rows_of[o.key]
            ]
            problems = problems + transcribe_problems
        finally:
            bar.close(problems if on_error == "skip" else [])
    finally:
        recogniser.close()
        if store is not None:
            store.close()

    out = _assemble(manifest, specs, slots, files, hits, results)
    out.attrs["problems"] = problems
    out.attrs["transcription"] = {
        "backend": json.loads(config_json),
        "jobs": len(jobs),
        "cached": len(jobs) - len(todo),
        "transcribed": sum(o.error is None for o in results.values()),
        "failed": sum(o.error is not None for o in results.values()),
        "audio_seconds": float(sum(o.seconds for o in results.values() if o.error is None)),
        "wall_seconds": time.perf_counter() - started,
        "workers": workers,
        "engine": engine,
        "processes": len({o.pid for o in results.values()}),
    }
    return out


def _canonical_conditions(conditions: Sequence[str] | str) -> list[str]:
    if isinstance(conditions, str):
        conditions = [conditions]
    specs: list[str] = []
    for spec in conditions:
        if not isinstance(spec, str):
            raise InputError(f"a condition must be a spec string, got {spec!r}", fix="e.g. conditions=['baseline']")
        canonical = "baseline" if spec.strip().lower() == "baseline" else _condition(spec.strip()).spec
        if canonical not in specs:  # the same condition twice would double its rows
            specs.append(canonical)
    if not specs:
        raise InputError("no conditions were given", fix="pass conditions=['baseline'] at least")
    return specs


def _check_audio(
    manifest: pd.DataFrame, column: str, store: _Cache | None
) -> tuple[list[tuple[str, float, str] | str], list[dict[str, Any]]]:
    """Hash every distinct file once; collect every unusable row instead of stopping.

    Each row gets (hash, seconds, absolute path), or the reason its audio is unusable.
    """
    by_path: dict[str, tuple[str, float, str] | str] = {}
    files: list[tuple[str, float, str] | str] = []
    problems: list[dict[str, Any]] = []
    for label, value in zip(manifest.index, manifest[column]):
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str) or not value.strip():
            problems.append({"row": label, "audio": value, "problem": "no audio path"})
            files.append("no audio path")
            continue
        if value not in by_path:
            by_path[value] = _inspect_file(value, store)
        info = by_path[value]
        if isinstance(info, str):
            problems.append({"row": label, "audio": value, "problem": info})
        files.append(info)
    return files, problems


def _inspect_file(value: str, store: _Cache | None) -> tuple[str, float, str] | str:
    path = Path(value).expanduser()
    try:
        st = path.stat()
    except OSError:
        return "file does not exist"
    if not path.is_file():
        return "not a file"
    absolute = str(path.resolve())
    # A file unchanged since a previous run (same size and modification time) is not
    # decoded again just to hash it: resuming a large corpus starts at once.
    known = store.audio_info(absolute, st.st_size, st.st_mtime_ns) if store is not None else None
    if known is not None:
        return known[0], known[1], absolute
    try:
        audio, rate = read_audio(path)
    except AudioError as exc:
        return exc.problem.replace(f"audio file {str(path)!r} ", "")
    digest, seconds = audio_hash(audio, rate), len(audio) / rate
    if store is not None:
        store.put_audio_info(absolute, st.st_size, st.st_mtime_ns, digest, seconds)
    return digest, seconds, absolute


def _execute(
    todo: list[_Job],
    recogniser: Backend,
    backend_name: str,
    options: dict[str, Any],
    *,
    workers: int,
    engine: str,
    store: _Cache | None,
    cache_path: Path | None,
    stop_on_error: bool,
    results: dict[str, _Outcome],
    bar: _Progress,
    ray_address: str | None = None,
) -> None:
    def record(outcomes: Sequence[_Outcome]) -> None:
        for o in outcomes:
            results[o.key] = o
        bar.advance(outcomes)

    def failed(outcomes: Sequence[_Outcome]) -> bool:
        return stop_on_error and any(o.error is not None for o in outcomes)

    if engine == "ray":
        _execute_ray(todo, backend_name, options, workers, store, stop_on_error, record, failed, ray_address)
    elif workers == 1 or len(todo) == 1:
        _run_jobs(recogniser, todo, cache=store, stop_on_error=stop_on_error, done=lambda o: record([o]))
    elif recogniser.parallel == "thread":
        _execute_threads(todo, recogniser, workers, store, stop_on_error, record, failed)
    else:
        _execute_processes(
            todo, recogniser, backend_name, options, workers, store, cache_path, stop_on_error, record, failed
        )


def _execute_threads(
    todo: list[_Job], recogniser: Backend, workers: int, store: _Cache | None, stop_on_error: bool,
    record: Callable[[Sequence[_Outcome]], None], failed: Callable[[Sequence[_Outcome]], bool],
) -> None:  # fmt: skip
    # The cache is written from this thread only: one connection, no locking needed.
    by_key = {j.key: j for j in todo}

    def keep(outcomes: Sequence[_Outcome]) -> None:
        if store is not None:
            for o in outcomes:
                if o.error is None:
                    store.put(by_key[o.key], o.hypothesis or "", o.elapsed)
        record(outcomes)

    with ThreadPoolExecutor(workers, thread_name_prefix="groupwise-asr") as pool:
        pending = {pool.submit(_run_jobs, recogniser, [job], cache=None, stop_on_error=stop_on_error) for job in todo}
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    outcomes = future.result()
                    keep(outcomes)
                    if failed(outcomes):
                        return
        finally:
            # Requests already sent finish (a thread cannot be interrupted); their
            # results are kept rather than thrown away, the rest is dropped.
            for future in pending:
                future.cancel()
            for future in pending:
                if not future.cancelled():
                    try:
                        keep(future.result())
                    except BaseException:  # noqa: BLE001 - the first failure is the one reported
                        pass


def _execute_processes(
    todo: list[_Job], recogniser: Backend, backend_name: str, options: dict[str, Any], workers: int,
    store: _Cache | None, cache_path: Path | None, stop_on_error: bool,
    record: Callable[[Sequence[_Outcome]], None], failed: Callable[[Sequence[_Outcome]], bool],
) -> None:  # fmt: skip
    # The calling process is one of the workers: a worker process takes a second or two
    # to start (a fresh interpreter imports groupwise and loads its model), which on a
    # minute of audio is most of what keeps two workers from being twice as fast as one.
    # The helper processes take chunks of the longest utterances from the front of the
    # queue and this process takes the shortest from the back, between which it hands
    # out more chunks; it keeps at least as much work for itself as each helper has in
    # hand, so that they all finish together instead of this one waiting at the end.
    caller_works = _CALLER_WORKS
    helpers = workers - 1 if caller_works else workers
    queue = deque(sorted(todo, key=lambda j: -j.seconds))
    left = sum(j.seconds for j in queue)  # audio seconds still in the queue
    size = _chunk_size(len(todo), workers)
    pending: dict[Future[list[_Outcome]], float] = {}  # chunk -> its audio seconds
    # Workers write their results to the cache themselves, as each one is finished.
    pool = ProcessPoolExecutor(
        helpers, mp_context=_pool_context(), initializer=_worker_init,
        initargs=(backend_name, options, str(cache_path) if cache_path else None),
    )  # fmt: skip
    submitted = False

    def feed() -> None:
        nonlocal left, submitted
        # Two chunks per helper: one running, one waiting in the pipe, so a helper never
        # waits for this process to finish an utterance before it gets more.
        while queue and len(pending) < 2 * helpers:
            n = min(size, len(queue))
            seconds = sum(queue[i].seconds for i in range(n))
            if caller_works and (sum(pending.values()) + seconds) / helpers > left - seconds:
                return
            chunk = [queue.popleft() for _ in range(n)]
            left -= seconds
            pending[pool.submit(_worker_chunk, chunk, stop_on_error)] = seconds
            submitted = True

    def collect(timeout: float | None) -> bool:
        finished, _ = wait(list(pending), timeout=timeout, return_when=FIRST_COMPLETED)
        for future in finished:
            del pending[future]
            outcomes = future.result()
            record(outcomes)
            if failed(outcomes):
                return True
        return False

    try:
        feed()
        while caller_works and queue:
            mine = [queue.pop() for _ in range(min(max(1, recogniser.batch), size, len(queue)))]
            left -= sum(job.seconds for job in mine)
            outcomes = _run_jobs(recogniser, mine, cache=store, stop_on_error=stop_on_error)
            record(outcomes)
            if failed(outcomes) or (pending and collect(0)):
                return
            feed()
        while pending or queue:
            if pending and collect(None):
                return
            feed()
    except BrokenProcessPool:
        raise TranscriptionError(
            "a recogniser worker process failed to start or died (killed, out of memory, or crashed in "
            "native code)",
            fix="run again to resume from the cache; with workers=1 the failing utterance shows in the traceback",
        ) from None
    finally:
        # Chunks not started are dropped; those running finish and land in the cache.
        pool.shutdown(wait=submitted, cancel_futures=True)


def _execute_ray(
    todo: list[_Job], backend_name: str, options: dict[str, Any], workers: int, store: _Cache | None,
    stop_on_error: bool, record: Callable[[Sequence[_Outcome]], None], failed: Callable[[Sequence[_Outcome]], bool],
    ray_address: str | None = None,
) -> None:  # fmt: skip
    from groupwise.audit._ray import _import_ray, connect

    ray = _import_ray()
    started = connect(ray_address, num_cpus=workers)
    by_key = {j.key: j for j in todo}
    refs: list[Any] = []
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(_ray_chunk)
        refs = [task.remote(backend_name, options, chunk, stop_on_error) for chunk in _chunks(todo, workers)]
        pending = list(refs)
        while pending:
            finished, pending = ray.wait(pending, num_returns=1)
            outcomes = ray.get(finished[0])
            if store is not None:
                for o in outcomes:
                    if o.error is None:
                        store.put(by_key[o.key], o.hypothesis or "", o.elapsed)
            record(outcomes)
            if failed(outcomes):
                for ref in pending:
                    ray.cancel(ref)
                return
    finally:
        if started:
            ray.shutdown()


def _assemble(
    manifest: pd.DataFrame,
    specs: list[str],
    slots: list[tuple[str, int, str | None]],
    files: list[tuple[str, float, str] | str],
    hits: dict[str, str],
    results: dict[str, _Outcome],
) -> pd.DataFrame:
    n = len(manifest)
    out = manifest.iloc[np.tile(np.arange(n), len(specs))].copy()
    hypotheses: list[str | None] = []
    seconds: list[float] = []
    cached: list[bool] = []
    errors: list[str | None] = []
    for spec, pos, key in slots:
        info = files[pos]
        seconds.append(float("nan") if isinstance(info, str) else info[1])
        if isinstance(info, str):
            hypotheses.append(None)
            cached.append(False)
            errors.append(info)
        elif key in hits:
            hypotheses.append(hits[key])
            cached.append(True)
            errors.append(None)
        else:
            outcome = results.get(key)
            cached.append(False)
            if outcome is None:
                hypotheses.append(None)
                errors.append("not transcribed")
            elif outcome.error is not None:
                hypotheses.append(None)
                errors.append(outcome.error[1])
            else:
                hypotheses.append(outcome.hypothesis)
                errors.append(None)
    # Plain arrays, not Series: the index repeats once per condition and must not align.
    out["condition"] = np.array([spec for spec, _, _ in slots], dtype=object)
    out["hypothesis"] = np.array(hypotheses, dtype=object)  # object keeps None for "no hypothesis"
    out["audio_seconds"] = np.asarray(seconds, dtype=float)
    out["cached"] = np.asarray(cached, dtype=bool)
    out["error"] = np.array(errors, dtype=object)
    return out
