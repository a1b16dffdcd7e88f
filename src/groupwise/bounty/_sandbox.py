"""Contained evaluation of submitted models.

Each evaluation runs in a fresh child process (``python -m groupwise.bounty._worker``)
whose limits are set before the interpreter starts: address space (memory), CPU seconds,
size of the files it may write, no core dumps; the parent kills the whole process group
when the wall clock runs out. The child gets paths and returns ``.npy`` arrays; the
parent loads them with ``allow_pickle=False`` and checks shape, type and values, so a
model that misbehaves in any way ends as a :class:`SandboxError` with a plain reason and
never as a change to the program.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from groupwise._errors import GroupwiseError
from groupwise.bounty._schema import Schema

__all__ = ["Limits", "SandboxError", "check_output", "run_models"]


@dataclass(frozen=True)
class Limits:
    """Resource limits of one evaluation.

    Parameters
    ----------
    cpu_seconds : float
        CPU time of the child (all its threads together).
    memory_mb : int
        Address-space limit of the child. It includes the interpreter, numpy and
        onnxruntime (about 1 GB of address space before any model is loaded).
    wall_seconds : float
        Wall-clock time after which the child and its process group are killed.
    max_upload_mb : float
        Largest model file accepted.
    """

    cpu_seconds: float = 60.0
    memory_mb: int = 3072
    wall_seconds: float = 120.0
    max_upload_mb: float = 100.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SandboxError(GroupwiseError):
    """A submitted model broke a limit, crashed or returned unusable predictions.

    Attributes
    ----------
    kind : str
        ``"input"`` (the file was refused), ``"limit"`` (CPU, memory or wall clock),
        ``"crash"`` or ``"output"`` (wrong shape, type or NaN).
    """

    def __init__(self, problem: str, *, fix: str, kind: str) -> None:
        self.kind = kind
        super().__init__(problem, fix=fix)


def _limit_child(limits: Limits, output_bytes: int) -> None:
    import resource

    memory = int(limits.memory_mb) * 1024 * 1024
    cpu = max(1, int(np.ceil(limits.cpu_seconds)))
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (output_bytes, output_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run_models(
    models: Mapping[str, tuple[Path, str]],
    inputs: Mapping[str, Path],
    schema: Schema,
    *,
    limits: Limits,
) -> dict[tuple[str, str], npt.NDArray[Any]]:
    """Run models on feature matrices in a contained child process.

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
    rows = {split: int(np.load(path, mmap_mode="r").shape[0]) for split, path in inputs.items()}
    # Room for predictions as 8-byte numbers or short strings, nothing more.
    output_bytes = 64 * 1024 * 1024 + sum(rows.values()) * len(models) * 64
    with tempfile.TemporaryDirectory(prefix="groupwise-sandbox-") as tmp:
        out = Path(tmp)
        job = {
            "schema": schema.to_dict(),
            "models": {key: {"path": str(path), "name": name} for key, (path, name) in models.items()},
            "inputs": {split: str(path) for split, path in inputs.items()},
            "out": str(out),
        }
        job_path = out / "job.json"
        job_path.write_text(json.dumps(job), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "PYTHONPATH", "HOME", "LANG", "TMPDIR", "SYSTEMROOT")}
        env.update({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
        started = time.monotonic()
        process = subprocess.Popen(  # noqa: S603 - fixed argv, our own module
            [sys.executable, "-I", "-m", "groupwise.bounty._worker", str(job_path)] if _isolated_ok() else
            [sys.executable, "-m", "groupwise.bounty._worker", str(job_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            cwd=tmp,
            start_new_session=True,
            preexec_fn=lambda: _limit_child(limits, output_bytes),  # noqa: PLW1509 - no threads hold locks here
        )
        try:
            _, stderr = process.communicate(timeout=limits.wall_seconds)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            raise SandboxError(
                f"the submission ran longer than the wall-clock limit of {limits.wall_seconds:g} s",
                fix="submit a smaller or faster model",
                kind="limit",
            ) from None
        elapsed = time.monotonic() - started
        result_path = out / "result.json"
        result = json.loads(result_path.read_text(encoding="utf-8")) if result_path.exists() else None
        code = process.returncode
        if result is None or not result.get("ok"):
            raise _failure(result, code, elapsed, limits, stderr.decode("utf-8", "replace")[-400:])
        found: dict[tuple[str, str], npt.NDArray[Any]] = {}
        for key in models:
            for split in inputs:
                path = out / f"{key}.{split}.npy"
                if not path.exists():
                    raise SandboxError(f"the submission produced no predictions for the {split} split", fix="check the model", kind="crash")
                try:
                    found[(key, split)] = np.load(path, allow_pickle=False)
                except ValueError:
                    raise SandboxError("the submission's predictions are not plain numbers or labels", fix="return numbers or class labels", kind="output") from None
        return found


def _isolated_ok() -> bool:
    # -I drops the user's site-packages and PYTHONPATH; only safe when groupwise is installed.
    return "PYTHONPATH" not in os.environ


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def _failure(result: dict[str, Any] | None, code: int, elapsed: float, limits: Limits, stderr: str) -> SandboxError:
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
