"""The Ray engine of a sharded audit: each shard reduced by a Ray Data batch map.

The list of shards is a Ray dataset of one row per shard; ``map_batches`` reduces each
shard (read, normalise, align, sum per cluster and cell: :func:`groupwise.audit._stream.reduce_shard`,
the same function the local engine runs) on whichever worker Ray picks, and the small
reduced tables stream back to the driver, which caches each one as it arrives and puts
them together in shard order. The statistics then run on the driver, unchanged.

On a real cluster every node needs groupwise and the shards: install the same version of
groupwise on each node (or ship it with a ``runtime_env``), and keep the shards on storage
every node sees under the same path (a shared file system). Ray retries a task whose
worker dies; a shard that still fails stops the run with one paragraph, and the shards
reduced before are kept in the cache for the rerun.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from groupwise._errors import GroupwiseError, InputError

__all__ = ["reduce_on_ray", "connect"]


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise InputError(
            "--engine ray needs Ray, which is not installed", fix='install it with pip install "groupwise[ray]"'
        ) from None
    return ray


class _Reducer:
    """The batch function: a batch of shard paths in, their reduced tables (as Parquet bytes) out."""

    def __init__(self, plan: Any) -> None:
        self.plan = plan

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from groupwise.audit._stream import _to_bytes, reduce_shard

        out: dict[str, list[Any]] = {"index": [], "data": [], "error": [], "fix": [], "rows": []}
        for index, path, folders in zip(batch["index"].tolist(), batch["path"].tolist(), batch["partitions"].tolist()):
            data, error, fix, rows = b"", "", "", "[]"
            try:
                data = _to_bytes(reduce_shard(Path(path), self.plan, partitions=json.loads(folders)))
            except GroupwiseError as exc:  # the user's data: reported on the driver, not retried
                error, fix, rows = exc.problem, exc.fix, json.dumps([int(r) for r in exc.rows[:1000]])
            out["index"].append(int(index))
            out["data"].append(data)
            out["error"].append(error)
            out["fix"].append(fix)
            out["rows"].append(rows)
        return {k: np.array(v, dtype=np.int64 if k == "index" else object) for k, v in out.items()}


def _unreachable(address: str | None, where: str, reason: str) -> InputError:
    fix = (
        "start the cluster (ray start --head on the head node) and pass its address with --ray-address "
        "(e.g. ray://HEAD:10001, HEAD:6379 or auto), or use --engine local"
    )
    if "auth" in reason.lower() or "token" in reason.lower():
        fix = ("the cluster uses token authentication: set RAY_AUTH_MODE=token and give this machine the cluster's "
               "token (RAY_AUTH_TOKEN, or the file ~/.ray/auth_token), as for any Ray driver")
    return InputError(f"could not start or reach a Ray cluster {where}: {reason}", fix=fix)


def _probe(address: str) -> None:
    """Refuse at once an address whose port does not answer (Ray itself would wait for minutes)."""
    import socket

    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto", "local" and the like: Ray decides
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=5):
            pass
    except OSError as exc:
        raise _unreachable(address, f"at {address!r}", f"nothing answers on {host}:{port} ({exc.strerror or exc})") from None


def connect(address: str | None = None, *, num_cpus: int | None = None) -> bool:
    """Join the Ray cluster at ``address``, or start a local Ray (``num_cpus`` CPUs, default all).

    Nothing happens when this process is already connected. Returns whether a connection
    was made here (the caller then shuts it down when done, as the transcription does). An
    address whose port does not answer, or a cluster that refuses this driver, is an
    :class:`InputError` with the fix.
    """
    ray = _import_ray()
    if ray.is_initialized():
        return False
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
    if address:
        _probe(address)
    try:
        if address:
            ray.init(address=address, **quiet)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, **quiet)
    except Exception as exc:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ValueError and its own
        where = f"at {address!r}" if address else "on this machine"
        reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        cause = exc.__cause__ or exc.__context__
        if cause is not None and "auth" in str(cause).lower():
            reason += " (the cluster refused this driver's authentication token)"
        raise _unreachable(address, where, reason) from None
    return True


def reduce_on_ray(
    paths: Sequence[Path], indices: Sequence[int], plan: Any, *, address: str | None = None,
    partitions: Sequence[dict[str, Any]] | None = None,
) -> Iterator[tuple[int, pd.DataFrame]]:
    """Reduce ``paths`` on Ray; yield ``(index, reduced table)`` as each shard finishes."""

    if not paths:
        return
    ray = _import_ray()
    started = connect(address)
    try:
        yield from _reduce(ray, paths, indices, plan, partitions)
    finally:
        if started:  # a Ray started for this run stops with it; one the caller started stays
            ray.shutdown()


def _reduce(
    ray: Any, paths: Sequence[Path], indices: Sequence[int], plan: Any, partitions: Sequence[dict[str, Any]] | None
) -> Iterator[tuple[int, pd.DataFrame]]:
    from groupwise.audit._stream import _from_bytes

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    folders = list(partitions) if partitions is not None else [{} for _ in paths]
    items = [{"index": int(i), "path": str(Path(p).resolve()), "partitions": json.dumps(f)}
             for i, p, f in zip(indices, paths, folders)]
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    mapped = ds.map_batches(_Reducer(plan), batch_size=1, batch_format="numpy", num_cpus=1)
    errors: list[tuple[int, str, str]] = []
    try:
        for row in mapped.iter_rows():
            if row["error"]:
                errors.append((int(row["index"]), str(row["error"]), str(row["fix"]), str(row["rows"])))
                continue
            yield int(row["index"]), _from_bytes(bytes(row["data"]))
    except GroupwiseError:
        raise
    except Exception as exc:  # noqa: BLE001 - a lost node or worker surfaces as one of many Ray errors
        if not _is_ray_failure(ray, exc):
            raise
        text = str(exc).strip().splitlines()
        detail = next((line for line in text if "node" in line.lower() or "worker" in line.lower()), text[0] if text else "")
        raise InputError(
            f"the Ray cluster failed while reducing the shards ({type(exc).__name__}: {detail[:300]})",
            fix="check the cluster (ray status) and run the same command again: the shards reduced so far are "
            "kept in the cache and are not read again",
        ) from None
    if errors:
        index, problem, fix, rows = min(errors)
        raise InputError(problem, fix=fix, rows=json.loads(rows))


def _is_ray_failure(ray: Any, exc: BaseException) -> bool:
    """A failure of the cluster (a dead node, worker or object), not a bug in the batch function."""
    system = tuple(
        getattr(ray.exceptions, name)
        for name in ("RaySystemError", "WorkerCrashedError", "NodeDiedError", "ObjectLostError", "OwnerDiedError",
                     "ActorDiedError", "LocalRayletDiedError", "GetTimeoutError", "ObjectReconstructionFailedError")
        if hasattr(ray.exceptions, name)
    )
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, system) or isinstance(exc, ConnectionError):
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False
