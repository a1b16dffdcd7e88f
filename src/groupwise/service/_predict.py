"""Public predictions and bundle exports, run in contained child processes.

The web process never loads an accepted model: ``POST /predict`` and bundle downloads hand
their work to a fresh child process (``python -m groupwise.service._predict``) that lives
for exactly one job. The child limits its own address space before it imports anything and
its CPU time once it has the job; the parent kills its whole process group when the wall
clock runs out. A model that loops, allocates without end or crashes the interpreter
(SIGSEGV) therefore fails only the request that ran it, with a plain reason.

One child is kept started ahead of time (:class:`ContainedRunner` ``spares``), its imports
already done, so a request does not wait for numpy, pandas and onnxruntime to load; it
still runs in a process that has never seen another request. A bundle that holds a skops
model imports skops and scikit-learn in its own job, since most bundles need neither.

:class:`BundleCache` keeps the exported bundles of the most recently used versions on disk
(folder and zip) and deletes the rest, so downloads are served from a file and old
exports do not pile up.

The child speaks JSON lines: it prints ``ready`` once its imports are done, reads one job
from its standard input and prints one result object.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["BundleCache", "ContainedRunner", "PredictionError", "PredictLimits", "PublicModels"]

log = logging.getLogger("groupwise.service")

_READY = b"ready"


@dataclass(frozen=True)
class PredictLimits:
    """Limits of one contained prediction or export.

    Parameters
    ----------
    cpu_seconds : float
        CPU time the child may use on the job (its imports are not counted).
    memory_mb : int
        Address-space limit of the child, interpreter and onnxruntime included (they take
        about 1 GB of address space before a model is loaded).
    wall_seconds : float
        Wall-clock time after which the child and its process group are killed.
    """

    cpu_seconds: float = 20.0
    memory_mb: int = 3072
    wall_seconds: float = 60.0


class PredictionError(Exception):
    """A contained job failed.

    Attributes
    ----------
    kind : str
        ``"input"`` (the rows do not fit the program: the caller's fault), ``"limit"``
        (CPU, memory or wall clock), ``"crash"`` (the child died), ``"model"`` (the model
        returned unusable predictions) or ``"busy"`` (no child could be started in time).
    message : str
        One sentence for the client; it never quotes model output.
    """

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        self.message = message
        super().__init__(message)


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "PYTHONPATH", "HOME", "LANG", "TMPDIR", "SYSTEMROOT", "VIRTUAL_ENV")}
    env.update({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"})
    return env


class ContainedRunner:
    """Runs jobs in one-shot child processes, keeping ``spares`` children warmed up.

    Parameters
    ----------
    limits : PredictLimits
    spares : int
        Children started ahead of time (0: start one per job).
    command : sequence of str, optional
        The child's argv (default: this module). Tests pass their own to check how a child
        that dies is reported.
    """

    def __init__(self, limits: PredictLimits | None = None, *, spares: int = 1, command: Sequence[str] | None = None) -> None:
        self.limits = limits or PredictLimits()
        self.spares = max(0, int(spares))
        self.command = list(command) if command is not None else [sys.executable, "-m", "groupwise.service._predict"]
        # How long a child may take to import numpy, pandas and onnxruntime.
        self.ready_seconds = 300.0
        self._pool: list[subprocess.Popen[bytes]] = []
        self._lock = threading.Lock()
        self._closed = False
        self._workdir = tempfile.mkdtemp(prefix="groupwise-predict-")

    # --- processes ---------------------------------------------------------------------------

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = _child_env()
        env[_LIMITS_VAR] = json.dumps({"memory_mb": self.limits.memory_mb, "cpu_seconds": self.limits.cpu_seconds})
        return subprocess.Popen(  # noqa: S603 - fixed argv: our own module
            self.command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=self._workdir,
            start_new_session=True,
        )

    def _take(self) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._closed:
                raise PredictionError("crash", "the service is shutting down; try again in a moment")
            process = None
            while self._pool:
                candidate = self._pool.pop(0)
                if candidate.poll() is None:
                    process = candidate
                    break
                candidate.wait()
            if process is None:
                process = self._spawn()
            # Start the next one now: its imports overlap this job.
            while len(self._pool) < self.spares:
                self._pool.append(self._spawn())
            return process

    def warm(self) -> None:
        """Start the spare children (they import in the background)."""
        with self._lock:
            while not self._closed and len(self._pool) < self.spares:
                self._pool.append(self._spawn())

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, []
        for process in pool:
            _kill_group(process)
        shutil.rmtree(self._workdir, ignore_errors=True)

    # --- jobs -------------------------------------------------------------------------------

    def run(self, job: dict[str, Any]) -> dict[str, Any]:
        """Run one job in a contained child; return its result or raise :class:`PredictionError`."""
        process = self._take()
        payload = json.dumps(job).encode("utf-8") + b"\n"
        # The wall clock of the job starts once the child has done its imports, which take
        # long on a busy machine and say nothing about the model.
        if not _wait_ready(process, self.ready_seconds):
            _kill_group(process)
            if process.returncode is not None and process.returncode < 0 and process.returncode != -signal.SIGKILL:
                raise PredictionError("crash", f"the prediction process died while starting (signal {-process.returncode})")
            raise PredictionError("busy", "the service is too busy to start a prediction process now; try again in a minute")
        started = time.monotonic()
        try:
            stdout, _ = process.communicate(payload, timeout=self.limits.wall_seconds)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            raise PredictionError(
                "limit", f"the model ran longer than the wall-clock limit of {self.limits.wall_seconds:g} s on these rows; send fewer rows"
            ) from None
        except BrokenPipeError:
            _kill_group(process)
            stdout = b""
        finally:
            # The child's process group may hold grandchildren (the engine's sandbox).
            _kill_group(process)
        lines = [line for line in stdout.splitlines() if line.strip() and line.strip() != _READY]
        result: dict[str, Any] | None = None
        if lines:
            try:
                result = json.loads(lines[-1])
            except (json.JSONDecodeError, UnicodeDecodeError):
                result = None
        code = process.returncode
        if isinstance(result, dict) and result.get("ok"):
            return result
        if isinstance(result, dict) and result.get("kind") in ("input", "model", "limit"):
            raise PredictionError(str(result["kind"]), str(result.get("reason") or "the job failed"))
        log.warning("contained job %s ended with code %s after %.1f s", job.get("op"), code, time.monotonic() - started)
        if code in (-signal.SIGXCPU, -signal.SIGKILL):
            raise PredictionError("limit", f"the model used more than the CPU-time limit of {self.limits.cpu_seconds:g} s on these rows; send fewer rows")
        if isinstance(result, dict) and result.get("kind") == "memory":
            raise PredictionError("limit", f"the model needed more than the memory limit of {self.limits.memory_mb:,} MB on these rows; send fewer rows")
        what = f"signal {-code}" if code is not None and code < 0 else f"exit status {code}"
        raise PredictionError("crash", f"the model crashed on these rows ({what}); the service's operator can see it in the log")


def _wait_ready(process: subprocess.Popen[bytes], timeout: float) -> bool:
    """Read the child's ``ready`` line; False if it does not come within ``timeout`` seconds."""
    import select

    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    seen = b""
    while b"\n" not in seen:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        readable, _, _ = select.select([process.stdout], [], [], remaining)
        if readable:
            # One byte at a time: nothing after the line may be taken from the pipe here.
            chunk = os.read(process.stdout.fileno(), 1)
            if not chunk:
                process.wait()
                return False
            seen += chunk
    return seen.strip() == _READY


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    # Only before the child is reaped: until then its pid (and group id) cannot be reused.
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL is not ignorable
        pass
    for stream in (process.stdin, process.stdout):
        if stream is not None and not stream.closed:
            stream.close()


# --- bundles ---------------------------------------------------------------------------------


class BundleCache:
    """Exported bundles of recently used versions, on disk; the least recently used beyond
    ``keep`` are deleted after every new export.

    Parameters
    ----------
    root : path
        A directory owned by this cache.
    runner : ContainedRunner
        Where exports run.
    keep : int
        Bundles (program and version pairs) kept.
    """

    def __init__(self, root: str | Path, runner: ContainedRunner, *, keep: int = 8) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.runner = runner
        self.keep = max(1, int(keep))
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def _key(self, directory: str, version: int) -> str:
        digest = hashlib.sha256(str(Path(directory).resolve()).encode("utf-8")).hexdigest()[:16]
        return f"{digest}-v{int(version)}"

    def get(self, directory: str, version: int) -> Path:
        """The entry of ``version`` (``bundle/`` and ``bundle.zip``), exported if needed."""
        key = self._key(directory, version)
        entry = self.root / key
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if not (entry / "bundle.zip").is_file():
                staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=self.root))
                try:
                    self.runner.run({"op": "export", "directory": str(directory), "version": int(version), "out": str(staging)})
                    if entry.exists():
                        shutil.rmtree(entry)
                    os.replace(staging, entry)
                finally:
                    if staging.exists():
                        shutil.rmtree(staging, ignore_errors=True)
                self._prune(keep=key)
            os.utime(entry)
        return entry

    def zip_path(self, directory: str, version: int) -> Path:
        return self.get(directory, version) / "bundle.zip"

    def entries(self) -> list[Path]:
        return sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def _prune(self, *, keep: str) -> None:
        entries = sorted(self.entries(), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        others = [p for p in entries if p.name != keep]
        for path in others[self.keep - 1 :]:
            shutil.rmtree(path, ignore_errors=True)


class PublicModels:
    """What the web process uses: contained predictions and cached bundles of programs.

    Children and the cache directory are made on first use and removed by :meth:`close`.

    Parameters
    ----------
    limits : PredictLimits
    spares : int
        Warmed-up children kept ready.
    keep : int
        Bundles kept on disk.
    """

    def __init__(self, limits: PredictLimits | None = None, *, spares: int = 1, keep: int = 8) -> None:
        self.limits = limits or PredictLimits()
        self.spares = spares
        self.keep = keep
        self._runner: ContainedRunner | None = None
        self._bundles: BundleCache | None = None
        self._root: str | None = None
        self._lock = threading.Lock()

    @property
    def runner(self) -> ContainedRunner:
        with self._lock:
            if self._runner is None:
                self._runner = ContainedRunner(self.limits, spares=self.spares)
            return self._runner

    @property
    def bundles(self) -> BundleCache:
        runner = self.runner
        with self._lock:
            if self._bundles is None:
                self._root = tempfile.mkdtemp(prefix="groupwise-bundles-")
                self._bundles = BundleCache(self._root, runner, keep=self.keep)
            return self._bundles

    def bundle_zip(self, directory: str, version: int) -> Path:
        """The zip of ``version``'s bundle (exported in a child on first request)."""
        return self.bundles.zip_path(directory, version)

    def predict(self, directory: str, version: int, rows: list[dict[str, Any]]) -> list[Any]:
        """Predictions of ``version`` for ``rows``, computed in a contained child."""
        folder = self.bundles.get(directory, version) / "bundle"
        return list(self.runner.run({"op": "predict", "bundle": str(folder), "rows": rows})["predictions"])

    def close(self) -> None:
        with self._lock:
            runner, self._runner, root, self._root = self._runner, None, self._root, None
            self._bundles = None
        if runner is not None:
            runner.close()
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)


# --- the child -------------------------------------------------------------------------------

_LIMITS_VAR = "GROUPWISE_PREDICT_LIMITS"


def _limit_memory(memory_mb: int) -> None:
    import resource

    # Soft limits only: the engine's sandbox, started by an export, sets its own.
    memory = int(memory_mb) * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (memory if hard == resource.RLIM_INFINITY else min(memory, hard), hard))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _limit_cpu(cpu_seconds: float) -> None:
    import math
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = usage.ru_utime + usage.ru_stime
    soft = int(math.ceil(used + cpu_seconds))
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    resource.setrlimit(resource.RLIMIT_CPU, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))


def _predict(job: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd

    from groupwise._errors import GroupwiseError
    from groupwise.bounty import load_bundle

    try:
        bundle = load_bundle(job["bundle"])
    except GroupwiseError:
        return {"ok": False, "kind": "model", "reason": "the current model's bundle could not be loaded; the service's operator can see why"}
    frame = pd.DataFrame.from_records(job["rows"])
    try:
        frame = bundle.schema.validate(frame, name="the rows")
    except GroupwiseError as exc:
        return {"ok": False, "kind": "input", "reason": exc.message}
    try:
        values = bundle.predict(frame)
    except GroupwiseError:
        # Never the model's own words or output: one plain sentence.
        return {"ok": False, "kind": "model", "reason": "the current model could not predict these rows"}
    return {"ok": True, "predictions": [v.item() if hasattr(v, "item") else v for v in values]}


def _export(job: dict[str, Any]) -> dict[str, Any]:
    import zipfile

    from groupwise._errors import GroupwiseError
    from groupwise.bounty import Program

    out = Path(job["out"])
    try:
        folder = Program.load(job["directory"]).export(out / "bundle", version=int(job["version"]))
    except GroupwiseError as exc:
        return {"ok": False, "kind": "input", "reason": exc.message}
    partial = out / "bundle.zip.partial"
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, Path("bundle") / path.relative_to(folder))
    os.replace(partial, out / "bundle.zip")
    return {"ok": True}


def _main() -> int:
    limits = json.loads(os.environ.get(_LIMITS_VAR) or "{}")
    _limit_memory(int(limits.get("memory_mb", PredictLimits.memory_mb)))
    # The result goes to a private copy of stdout; whatever a model library prints goes nowhere.
    out = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        import numpy  # noqa: F401 - imported ahead of the job
        import pandas  # noqa: F401

        import groupwise._expr  # noqa: F401
        import groupwise._io  # noqa: F401
        from groupwise.bounty import _models, _pdl  # noqa: F401

        # What loading an ONNX model needs (the runtime and the message definitions that
        # its checks read), so that a job spends its time on the job. skops (and with it
        # scikit-learn and SciPy, several seconds of imports) is left to the jobs whose
        # bundle holds a skops model: bundles hold ONNX models unless a team sent skops.
        import onnxruntime  # noqa: F401

        _models._model_proto_class()
        out.write(_READY + b"\n")
        out.flush()
        line = sys.stdin.buffer.readline()
        if not line:
            return 0
        job = json.loads(line)
        _limit_cpu(float(limits.get("cpu_seconds", PredictLimits.cpu_seconds)))
        result = {"predict": _predict, "export": _export}[job["op"]](job)
    except MemoryError:
        result = {"ok": False, "kind": "memory", "reason": "memory"}
    except Exception as exc:  # noqa: BLE001 - whatever a model library raises ends as one plain answer
        # onnxruntime reports a failed allocation as its own exception type.
        if "alloc" in str(exc).lower():
            result = {"ok": False, "kind": "memory", "reason": "memory"}
        else:
            result = {"ok": False, "kind": "model", "reason": "the current model failed on these rows"}
    out.write(json.dumps(result).encode("utf-8") + b"\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_main())
