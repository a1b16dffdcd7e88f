"""Contained evaluation of submitted models.

Each evaluation runs in a fresh child process (``python -m groupwise.bounty._worker``)
whose limits are set before the interpreter starts: address space (memory), CPU seconds,
size of the files it may write, no core dumps; the parent kills the whole process group
when the wall clock runs out. The child works in an empty temporary directory that holds
only the model files and the feature matrices it is given, and returns ``.npy`` arrays;
the parent loads them with ``allow_pickle=False`` and checks shape, type and values.

An evaluation has two phases. The *public* phase runs the models on the public splits;
everything that can go wrong with a submission (the file, its inputs, its outputs, the
limits) shows there and is reported in full. Only when the parent has accepted those
outputs does it copy the holdout's feature matrix into the child's directory and let the
child go on to the *private* phase, whose outcome is a bare success or failure: no text,
shape or value computed from the holdout ever leaves :class:`Evaluation`.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from groupwise._errors import GroupwiseError
from groupwise._validation import check_choice
from groupwise.bounty._schema import Schema

__all__ = [
    "ISOLATION_MODES", "Evaluation", "HoldoutFailed", "IsolationUnavailable", "Limits", "SandboxError",
    "check_output", "isolation_available", "jail_argv", "run_models",
]

ISOLATION_MODES = ("auto", "required", "off")

log = logging.getLogger("groupwise.bounty.sandbox")


@dataclass(frozen=True)
class Limits:
    """Resource limits of one evaluation.

    Parameters
    ----------
    cpu_seconds : float
        CPU time of the child (all its threads together, both phases).
    memory_mb : int
        Address-space limit of the child. It includes the interpreter, numpy and
        onnxruntime (about 1 GB of address space before any model is loaded).
    wall_seconds : float
        Wall-clock time of each phase after which the child and its process group are killed.
    max_upload_mb : float
        Largest model file accepted.
    decision_seconds : float
        When positive, a decision that consulted the holdout is returned exactly this many
        seconds after the holdout run started (the run is stopped then if it is still going),
        so how long the holdout run took is never visible. 0 (the default of a local
        program) returns it as soon as it is made; the service sets its own delay.
    """

    cpu_seconds: float = 60.0
    memory_mb: int = 3072
    wall_seconds: float = 120.0
    max_upload_mb: float = 100.0
    decision_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SandboxError(GroupwiseError):
    """A submitted model broke a limit, crashed or returned unusable predictions on public data.

    Attributes
    ----------
    kind : str
        ``"input"`` (the file was refused), ``"limit"`` (CPU, memory or wall clock),
        ``"crash"`` or ``"output"`` (wrong shape, type or NaN).
    """

    def __init__(self, problem: str, *, fix: str, kind: str) -> None:
        self.kind = kind
        super().__init__(problem, fix=fix)


class HoldoutFailed(Exception):
    """The private phase of an evaluation did not produce usable predictions.

    It carries no detail on purpose: whatever went wrong on the holdout (a crash, a limit,
    an invalid output) is an ordinary rejection to the submitter.
    """

    def __init__(self) -> None:
        super().__init__("the evaluation on the private holdout did not complete")


def _limit_child(limits: Limits, output_bytes: int) -> None:
    import resource

    memory = int(limits.memory_mb) * 1024 * 1024
    cpu = max(1, int(np.ceil(limits.cpu_seconds)))
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (output_bytes, output_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _rows(path: Path) -> int:
    return int(np.load(path, mmap_mode="r").shape[0])


class Evaluation:
    """One contained run of models: a public phase, then (optionally) a private one.

    Parameters
    ----------
    models : mapping of key to (path, display name)
    public : mapping of split name to the path of its ``X`` matrix (``.npy``)
    private : mapping of split name to the path of its ``X`` matrix, optional
        Copied into the child's directory only when :meth:`run_private` is called.
    schema : Schema
    limits : Limits
    isolation : {"auto", "required", "off"}
        Run the child in Linux namespaces (see :func:`jail_argv`): ``auto`` when they are
        available (with a logged warning when not), ``required`` or fail with
        :class:`IsolationUnavailable`, ``off`` never.

    Use it as a context manager: ``with Evaluation(...) as ev: ev.run_public(); ev.run_private()``.
    """

    def __init__(
        self,
        models: Mapping[str, tuple[Path, str]],
        public: Mapping[str, Path],
        schema: Schema,
        *,
        limits: Limits,
        private: Mapping[str, Path] | None = None,
        isolation: Literal["auto", "required", "off"] = "auto",
    ) -> None:
        self.isolation = check_choice(isolation, "isolation", ISOLATION_MODES, caller="Evaluation")
        self.models = dict(models)
        self.public = dict(public)
        self.private = dict(private or {})
        self.schema = schema
        self.limits = limits
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: Any = None
        self._phase = -1
        self._seen: dict[str, float] = {}
        self._buffer = b""
        #: Seconds the public phase took, from start and from the models being loaded.
        self.public_seconds = 0.0
        self.predict_seconds = 0.0

    # -- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> Evaluation:
        self._tmp = tempfile.TemporaryDirectory(prefix="groupwise-sandbox-")
        base = Path(self._tmp.name)
        job_dir = base / "job"
        job_dir.mkdir()
        # The child's directory holds copies of exactly what it needs, under neutral names.
        names: dict[str, dict[str, str]] = {}
        for i, (key, (path, name)) in enumerate(self.models.items()):
            local = f"model{i}{Path(str(path)).suffix}"
            shutil.copyfile(path, job_dir / local)
            names[key] = {"path": local, "name": name}
        for split, path in self.public.items():
            shutil.copyfile(path, job_dir / f"X_{split}.npy")
        rows = sum(_rows(p) for p in [*self.public.values(), *self.private.values()])
        # Room for predictions as 8-byte numbers or short strings, nothing more.
        output_bytes = 64 * 1024 * 1024 + rows * len(self.models) * 64 + sum(p.stat().st_size for p in self.private.values())
        phases = [list(self.public)] + ([list(self.private)] if self.private else [])
        job = {
            "schema": self.schema.to_dict(),
            "models": names,
            "phases": [{split: f"X_{split}.npy" for split in splits} for splits in phases],
        }
        (job_dir / "job.json").write_text(json.dumps(job), encoding="utf-8")
        self._job_dir = job_dir
        self._stderr = open(base / "stderr.txt", "w+b")  # noqa: SIM115 - closed in __exit__
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "PYTHONPATH", "HOME", "LANG", "TMPDIR", "SYSTEMROOT")}
        env.update({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
        jail = _jail_mode(self.isolation)
        self._jailed = jail is not None
        if jail is not None:
            argv = jail_argv(job_dir, [sys.executable, *_jailed_flags(), "-m", "groupwise.bounty._worker", "job.json"], env)
        else:
            argv = [sys.executable, *(["-I"] if _isolated_ok() else []), "-m", "groupwise.bounty._worker", "job.json"]
        limits = self.limits
        self._process = subprocess.Popen(  # noqa: S603 - fixed argv, our own module
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
            cwd=job_dir,
            start_new_session=True,
            preexec_fn=lambda: _limit_child(limits, output_bytes),  # noqa: PLW1509 - no threads hold locks here
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._process is not None:
            if self._process.poll() is None:
                _kill_group(self._process)
            for stream in (self._process.stdin, self._process.stdout):
                if stream is not None:
                    try:
                        stream.close()
                    except OSError:
                        pass
            self._process = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # -- phases -------------------------------------------------------------------------

    def _wait_phase(self, phase: int, timeout: float) -> bool:
        """Wait until the child reports ``phase`` done; False if it ended first.

        Every line the child prints is time-stamped in ``self._seen`` (``loaded`` when its
        models are loaded, then each phase's number).
        """
        process = self._process
        assert process is not None and process.stdout is not None
        deadline = time.monotonic() + timeout
        fd = process.stdout.fileno()
        while True:
            if str(phase) in self._seen:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _kill_group(process)
                raise TimeoutError
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, 256)
            if not chunk:
                process.wait()
                return False
            self._buffer += chunk
            while b"\n" in self._buffer and len(self._seen) < 16:
                line, _, self._buffer = self._buffer.partition(b"\n")
                self._seen.setdefault(line.decode("ascii", "replace").strip(), time.monotonic())

    def _collect(self, splits: Sequence[str]) -> dict[tuple[str, str], npt.NDArray[Any]]:
        found: dict[tuple[str, str], npt.NDArray[Any]] = {}
        for key in self.models:
            for split in splits:
                path = self._job_dir / f"{key}.{split}.npy"
                if not path.is_file():
                    raise SandboxError(f"the submission produced no predictions for the {split} split", fix="check the model", kind="crash")
                try:
                    found[(key, split)] = np.load(path, allow_pickle=False)
                except (ValueError, OSError):
                    raise SandboxError("the submission's predictions are not plain numbers or labels", fix="return numbers or class labels", kind="output") from None
        return found

    def run_public(self) -> dict[tuple[str, str], npt.NDArray[Any]]:
        """Run the public phase and return ``{(key, split): raw predictions}``.

        Raises
        ------
        SandboxError
            The child refused a file, broke a limit or crashed; the reason is in full.
        """
        assert self._process is not None and self._phase == -1, "run_public comes first, once"
        self._phase = 0
        started = time.monotonic()
        try:
            done = self._wait_phase(0, self.limits.wall_seconds)
        except TimeoutError:
            raise SandboxError(
                f"the submission ran longer than the wall-clock limit of {self.limits.wall_seconds:g} s",
                fix="submit a smaller or faster model",
                kind="limit",
            ) from None
        self.public_seconds = time.monotonic() - started
        self.predict_seconds = self._seen.get("0", started) - self._seen.get("loaded", started)
        if not done:
            result_path = self._job_dir / "result.json"
            try:
                result = json.loads(result_path.read_text(encoding="utf-8")) if result_path.is_file() else None
            except (ValueError, OSError):
                result = None
            assert self._stderr is not None
            self._stderr.seek(0)
            stderr = self._stderr.read()[-2000:].decode("utf-8", "replace")
            code = self._process.returncode
            if code is None:
                code = -1
            elif self._jailed and code > 128:
                code = -(code - 128)  # bwrap reports a child killed by signal N as 128 + N
            raise _failure(result, code, self.limits, stderr)
        return self._collect(list(self.public))

    def run_private(self, timeout: float | None = None) -> dict[tuple[str, str], npt.NDArray[Any]]:
        """Hand the child the private matrices, run them, return the raw predictions.

        Raises
        ------
        HoldoutFailed
            Anything went wrong (crash, limit, time, missing or unreadable output); no detail.
        """
        assert self._phase == 0 and self.private, "run_private follows a successful run_public"
        self._phase = 1
        process = self._process
        assert process is not None and process.stdin is not None
        try:
            for split, path in self.private.items():
                shutil.copyfile(path, self._job_dir / f"X_{split}.npy")
            process.stdin.write(b"go\n")
            process.stdin.flush()
            if not self._wait_phase(1, self.limits.wall_seconds if timeout is None else timeout):
                raise HoldoutFailed
            return self._collect(list(self.private))
        except (TimeoutError, OSError, SandboxError):
            raise HoldoutFailed from None
        finally:
            if process.poll() is None:
                _kill_group(process)


class IsolationUnavailable(GroupwiseError):
    """Linux namespaces (bubblewrap) are not usable here, and isolation was required.

    A fault of the service, not of the submission (``kind = "service"``).
    """

    kind = "service"


@functools.lru_cache(maxsize=1)
def isolation_available() -> str | None:
    """None when the sandbox can isolate its child here, else the reason it cannot.

    Isolation uses bubblewrap (``bwrap``, Debian package ``bubblewrap``): it is tried once
    per process with the same options a real evaluation uses.
    """
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed; install it with `apt-get install bubblewrap`"
    with tempfile.TemporaryDirectory(prefix="groupwise-jailtest-") as tmp:
        argv = jail_argv(Path(tmp), [sys.executable, *_jailed_flags(), "-c", "import groupwise; open('ok', 'w').write('ok')"], {})
        try:
            done = subprocess.run(argv, capture_output=True, timeout=60, check=False)  # noqa: S603 - fixed argv
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"bubblewrap could not start ({exc})"
        if done.returncode != 0 or not (Path(tmp) / "ok").is_file():
            return f"bubblewrap cannot create namespaces here ({done.stderr.decode('utf-8', 'replace').strip()[:200]})"
    return None


def _jail_mode(isolation: str) -> str | None:
    if isolation == "off":
        return None
    why = isolation_available()
    if why is None:
        return "bwrap"
    if isolation == "required":
        raise IsolationUnavailable(
            f"submissions must run isolated from the file system and the network, but {why}",
            fix="install bubblewrap, or allow unisolated evaluation explicitly (only where no other data or network is reachable)",
        )
    _warn_once(why)
    return None


@functools.lru_cache(maxsize=1)
def _warn_once(why: str) -> None:
    log.warning("evaluating submissions without isolation: %s; the child can read what this user can read and reach the network", why)


def _read_only_roots() -> list[Path]:
    """Directories the child needs to run Python, numpy, onnxruntime and groupwise."""
    import groupwise

    roots = [Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix), Path(os.path.realpath(sys.executable)).parent.parent]
    roots += [Path(p) for p in sys.path if p and Path(p).name in ("site-packages", "dist-packages") and Path(p).is_dir()]
    # The package itself (an editable install lives outside site-packages): this folder
    # only, not the checkout around it.
    roots.append(Path(groupwise.__file__).resolve().parent)
    kept: list[Path] = []
    for root in sorted({r.resolve() for r in roots if r.exists()}, key=lambda p: len(p.parts)):
        if root == Path("/") or any(root.is_relative_to(k) for k in kept) or root.is_relative_to("/usr"):
            continue
        kept.append(root)
    return kept


def jail_argv(job_dir: Path, argv: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """``argv`` wrapped in bubblewrap: the child sees ``job_dir`` (as ``/job``, its only
    writable and current directory), read-only system and Python directories, an empty
    ``/tmp``, and nothing else; no network (its own empty network namespace), its own
    PID, IPC and user namespaces (as ``nobody``), no capabilities, a cleared environment.
    """
    out = [
        "bwrap", "--unshare-all", "--unshare-user", "--uid", "65534", "--gid", "65534",
        "--die-with-parent", "--new-session", "--cap-drop", "ALL",
        "--ro-bind", "/usr", "/usr",
    ]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / name
        if path.is_symlink():
            out += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            out += ["--ro-bind", str(path), str(path)]
    for name in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d"):
        out += ["--ro-bind-try", name, name]
    # The empty /tmp comes before the Python directories: a checkout or virtual environment
    # that lives under /tmp is then bound on top of it instead of being hidden by it.
    out += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for root in _read_only_roots():
        out += ["--ro-bind", str(root), str(root)]
    out += ["--bind", str(job_dir), "/job", "--chdir", "/job", "--clearenv"]
    for key, value in env.items():
        if key not in ("PYTHONPATH", "TMPDIR", "HOME"):
            out += ["--setenv", key, value]
    import groupwise

    # Inside, the folder above the package holds the package only, so it is safe on the path.
    out += ["--setenv", "PYTHONPATH", str(Path(groupwise.__file__).resolve().parent.parent)]
    out += ["--setenv", "HOME", "/job", "--setenv", "TMPDIR", "/tmp", "--"]
    return out + list(argv)


def _jailed_flags() -> list[str]:
    # No user site-packages, and (Python 3.11+) the working directory, where the job's files
    # are, is not put on the module path.
    return ["-s", "-P"] if sys.version_info >= (3, 11) else ["-s"]


def run_models(
    models: Mapping[str, tuple[Path, str]],
    inputs: Mapping[str, Path],
    schema: Schema,
    *,
    limits: Limits,
    isolation: str = "auto",
) -> dict[tuple[str, str], npt.NDArray[Any]]:
    """Run models on feature matrices in a contained child process (one public phase).

    Parameters
    ----------
    models : mapping of key to (path, display name)
    inputs : mapping of split name to the path of its ``X`` matrix (``.npy``)
    schema : Schema
    limits : Limits

    Returns
    -------
    dict
        ``{(key, split): predictions}``, raw (see :func:`check_output`).

    Raises
    ------
    SandboxError
        The child refused a file, broke a limit or crashed.
    """
    with Evaluation(models, inputs, schema, limits=limits, isolation=isolation) as evaluation:
        return evaluation.run_public()


def _isolated_ok() -> bool:
    # -I drops the user's site-packages and PYTHONPATH; only safe when groupwise is installed.
    return "PYTHONPATH" not in os.environ


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def _failure(result: dict[str, Any] | None, code: int, limits: Limits, stderr: str) -> SandboxError:
    if result is not None and result.get("kind") == "input":
        return _input_error(str(result["reason"]))
    if code in (-signal.SIGXCPU, -signal.SIGKILL) and (result is None):
        return SandboxError(
            f"the submission used more than the CPU-time limit of {limits.cpu_seconds:g} s",
            fix="submit a smaller or faster model",
            kind="limit",
        )
    if (result is not None and result.get("kind") == "memory") or "bad_alloc" in stderr or "MemoryError" in stderr:
        return SandboxError(
            f"the submission needed more memory than the limit of {limits.memory_mb:,} MB",
            fix="submit a smaller model, or one that does not build huge intermediate tensors",
            kind="limit",
        )
    if code == -signal.SIGXFSZ:
        return SandboxError("the submission wrote more output than allowed", fix="return one prediction per row", kind="limit")
    reason = result.get("reason") if result else (f"signal {-code}" if code < 0 else f"exit status {code}")
    return SandboxError(f"the submission crashed while predicting ({reason})", fix="check that the model runs on the program's public data", kind="crash")


def _input_error(message: str) -> SandboxError:
    problem, _, fix = message.partition(" Fix: ")
    return SandboxError(problem, fix=fix or "check the file", kind="input")


def check_output(pred: npt.NDArray[Any], *, role: str, schema: Schema, rows: int) -> npt.NDArray[Any]:
    """Check a model's raw predictions and return them in the program's coding.

    Models of a classification program return class indices (int64) or class labels;
    groups return booleans or 0/1; regression models return finite numbers (float64).

    Examples
    --------
    >>> from groupwise.bounty._schema import Feature, Schema
    >>> s = Schema((Feature("x", "numeric"),), "y", "classification", ("no", "yes"))
    >>> check_output(np.array(["yes", "no"]), role="model", schema=s, rows=2).tolist()
    [1, 0]
    >>> try:
    ...     check_output(np.zeros(3), role="model", schema=s, rows=2)
    ... except SandboxError as err:
    ...     print(err.kind, "|", err.problem)
    output | the model returned predictions of shape (3,) for 2 rows
    """
    what = "group" if role == "group" else "model"
    if pred.ndim == 2 and pred.shape[1] == 1:
        pred = pred[:, 0]
    if pred.ndim != 1 or pred.shape[0] != rows:
        raise SandboxError(
            f"the {what} returned predictions of shape {tuple(pred.shape)} for {rows} rows",
            fix="return one prediction per row (shape [N] or [N, 1])",
            kind="output",
        )
    if pred.dtype.kind in "US":
        if role == "model" and schema.task == "classification":
            lookup = {c: i for i, c in enumerate(schema.classes)}
            codes = np.array([lookup.get(str(v), -1) for v in np.unique(pred)])
            uniq, inverse = np.unique(pred, return_inverse=True)
            if (codes < 0).any():
                bad = [str(u) for u, c in zip(uniq, codes) if c < 0][:3]
                raise SandboxError(f"the model predicts labels outside the classes: {', '.join(map(repr, bad))}", fix=f"predict one of {list(schema.classes)}", kind="output")
            return codes[inverse].astype(np.int64)
        raise SandboxError(f"the {what} returned text where numbers were expected", fix="return numbers", kind="output")
    if pred.dtype.kind not in "biuf":
        raise SandboxError(f"the {what} returned values of type {pred.dtype}", fix="return numbers", kind="output")
    values = pred.astype(np.float64)
    if not np.isfinite(values).all():
        raise SandboxError(f"the {what} returned NaN or infinite predictions", fix="make the model return finite numbers for every row", kind="output")
    if role == "group":
        if not np.isin(values, (0.0, 1.0)).all():
            raise SandboxError("the group model returned values other than 0/1", fix="use a classifier whose labels are 0 and 1 (or False and True)", kind="output")
        return values.astype(bool)
    if schema.task == "classification":
        if not (np.isin(values, np.arange(len(schema.classes))).all()):
            raise SandboxError(
                f"the model returned values that are not class indices 0..{len(schema.classes) - 1}",
                fix=f"predict the class index (0 = {schema.classes[0]!r}, ...) or the label itself",
                kind="output",
            )
        return values.astype(np.int64)
    return values
