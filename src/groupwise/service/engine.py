"""The web process's read-only window on the engine programs it serves.

Pages and public endpoints show what the engine computes on the public test split
(trajectory, per-group errors, teams by features, bundles, predictions); this module
loads each :class:`~groupwise.bounty.Program` once, reloads it when its log grows, and
caches the results per version. It never writes to a program directory (only the worker
does) and never touches the holdout.
"""

from __future__ import annotations

import io
import math
import shutil
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["EngineViews", "TTLCache"]

T = TypeVar("T")


class TTLCache:
    """A small thread-safe cache whose entries expire after ``ttl`` seconds (0: no caching)."""

    def __init__(self, ttl: float, max_entries: int = 256) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._data: dict[Hashable, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        if self.ttl <= 0:
            return build()
        stamp = time.monotonic()
        with self._lock:
            hit = self._data.get(key)
            if hit is not None and stamp - hit[0] < self.ttl:
                return hit[1]
        value = build()
        with self._lock:
            if len(self._data) >= self.max_entries:
                self._data.clear()
            self._data[key] = (stamp, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


def _finite(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


class _Loaded:
    def __init__(self, program: Any, signature: tuple[int, int]) -> None:
        self.program = program
        self.signature = signature
        self.lock = threading.Lock()
        self.results: dict[Hashable, Any] = {}


class EngineViews:
    """Cached engine results per program directory, refreshed when the program's log changes."""

    def __init__(self) -> None:
        self._loaded: dict[str, _Loaded] = {}
        self._lock = threading.Lock()
        self._bundles = tempfile.TemporaryDirectory(prefix="groupwise-bundles-")
        self._plot_lock = threading.Lock()

    def close(self) -> None:
        self._bundles.cleanup()

    @staticmethod
    def _signature(directory: str) -> tuple[int, int]:
        stat = (Path(directory) / "log.jsonl").stat()
        return stat.st_size, stat.st_mtime_ns

    def _get(self, directory: str) -> _Loaded:
        from groupwise.bounty import Program

        signature = self._signature(directory)
        with self._lock:
            loaded = self._loaded.get(directory)
            if loaded is None or loaded.signature != signature:
                loaded = _Loaded(Program.load(directory), signature)
                self._loaded[directory] = loaded
            return loaded

    def _cached(self, directory: str, key: Hashable, build: Callable[[Any], T]) -> T:
        loaded = self._get(directory)
        # Program objects fill their caches lazily and are not thread-safe.
        with loaded.lock:
            if key not in loaded.results:
                loaded.results[key] = build(loaded.program)
            return loaded.results[key]

    def schema(self, directory: str) -> dict[str, Any]:
        return self._cached(directory, "schema", lambda program: program.schema.to_dict())

    def example_group(self, directory: str) -> str:
        """A group expression that parses on this program's data, for the copy-paste example."""

        def build(program: Any) -> str:
            frame = program.frame("train")
            for feature in program.schema.features:
                if feature.kind == "numeric":
                    value = float(frame[feature.name].quantile(0.8))
                    return f"{feature.name} >= {value:.4g}"
            feature = program.schema.features[0]
            return f"{feature.name} == {str(feature.categories[0])!r}".replace("'", '"')

        return self._cached(directory, "example", build)

    # --- figures of the public test split ---------------------------------------------------

    def trajectory(self, directory: str) -> list[dict[str, Any]]:
        def build(program: Any) -> list[dict[str, Any]]:
            frame = program.trajectory()
            return [
                {"version": int(r.version), "kind": str(r.kind), "submission": str(r.submission), "team": str(r.team), "test_loss": float(r.test_loss)}
                for r in frame.itertuples()
            ]

        return self._cached(directory, "trajectory", build)

    def group_errors(self, directory: str) -> list[dict[str, Any]]:
        def build(program: Any) -> list[dict[str, Any]]:
            frame = program.group_errors()
            rows = []
            for record in frame.to_dict("records"):
                losses = [v for k, v in record.items() if k.startswith("loss_v")]
                rows.append({
                    "group": str(record["group"]),
                    "test_rows": int(record["test_rows"]),
                    "loss_base": _finite(losses[0]),
                    "loss_current": _finite(losses[-1]),
                })
            return rows

        return self._cached(directory, "groups", build)

    def group_trajectories(self, directory: str) -> dict[str, Any]:
        """Each group's public-test loss at every version (the bias bounty's main figure).

        ``{"versions": [...], "kinds": [...], "overall": [...], "groups": {name: [loss or None, ...]}}``.
        """

        def build(program: Any) -> dict[str, Any]:
            frame = program.group_trajectories()
            names = [c for c in frame.columns if c not in ("version", "kind", "test_loss")]
            return {
                "versions": [int(v) for v in frame["version"]],
                "kinds": [str(k) for k in frame["kind"]],
                "overall": [_finite(v) for v in frame["test_loss"]],
                "groups": {str(name): [_finite(v) for v in frame[name]] for name in names},
            }

        return self._cached(directory, "group-trajectories", build)

    def group_trajectories_png(self, directory: str) -> bytes:
        """:meth:`group_trajectories` drawn as a PNG by the engine."""

        def build(program: Any) -> bytes:
            with self._plot_lock, tempfile.TemporaryDirectory(prefix="groupwise-plot-") as tmp:
                return program.plot_group_trajectories(Path(tmp) / "groups.png").read_bytes()

        return self._cached(directory, "group-trajectories.png", build)

    def feature_usage(self, directory: str) -> dict[str, Any]:
        def build(program: Any) -> dict[str, Any]:
            frame = program.feature_usage()
            return {
                "features": [str(c) for c in frame.columns],
                "teams": [str(t) for t in frame.index],
                "counts": [[int(v) for v in row] for row in frame.to_numpy().tolist()],
            }

        return self._cached(directory, "usage", build)

    def trajectory_svg(self, directory: str) -> str:
        """The error trajectory as an SVG drawn by matplotlib (no JavaScript needed)."""
        rows = self.trajectory(directory)

        def build(_: Any) -> str:
            from matplotlib.figure import Figure

            with self._plot_lock:
                fig = Figure(figsize=(7.5, 3.2), dpi=100)
                ax = fig.add_subplot()
                versions = [r["version"] for r in rows]
                losses = [r["test_loss"] for r in rows]
                ax.step(versions, losses, where="post", color="#1f5f8b", linewidth=1.8)
                updates = [(r["version"], r["test_loss"]) for r in rows if r["kind"] == "update"]
                repairs = [(r["version"], r["test_loss"]) for r in rows if r["kind"] == "repair"]
                ax.plot([0], [losses[0]], "s", color="#555", label="base model")
                if updates:
                    ax.plot(*zip(*updates), "o", color="#1f5f8b", label="update")
                if repairs:
                    ax.plot(*zip(*repairs), "^", color="#c0392b", label="repair")
                ax.set_xlabel("model version")
                ax.set_ylabel("loss on the public test split")
                ax.set_title("Error trajectory")
                ax.grid(alpha=0.3)
                ax.legend(loc="upper right", fontsize=8)
                if len(versions) < 12:
                    ax.set_xticks(versions)
                fig.tight_layout()
                buffer = io.StringIO()
                fig.savefig(buffer, format="svg")
            text = buffer.getvalue()
            return text[text.index("<svg"):]

        return self._cached(directory, "trajectory.svg", build)

    # --- the current model ------------------------------------------------------------------

    def _bundle_dir(self, directory: str, version: int) -> Path:
        def build(program: Any) -> Path:
            out = Path(self._bundles.name) / f"{abs(hash(directory))}-v{version}"
            if out.exists():
                shutil.rmtree(out)
            return program.export(out, version=version)

        # Keyed by version, not the log: an old version's bundle never changes.
        loaded = self._get(directory)
        key = ("bundle", version)
        with loaded.lock:
            if key not in loaded.results:
                loaded.results[key] = build(loaded.program)
            return loaded.results[key]

    def version(self, directory: str) -> int:
        return int(self._get(directory).program.version)

    def bundle_zip(self, directory: str, version: int) -> bytes:
        folder = self._bundle_dir(directory, version)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    archive.write(path, Path("bundle") / path.relative_to(folder))
        return buffer.getvalue()

    def predict(self, directory: str, rows: list[dict[str, Any]]) -> tuple[int, list[Any]]:
        """Predictions of the current version for rows given as records (validated by the schema)."""
        import pandas as pd

        from groupwise.bounty import load_bundle

        version = self.version(directory)
        folder = self._bundle_dir(directory, version)
        loaded = self._get(directory)
        with loaded.lock:
            key = ("loaded-bundle", version)
            if key not in loaded.results:
                loaded.results[key] = load_bundle(folder)
            bundle = loaded.results[key]
        values = bundle.predict(pd.DataFrame.from_records(rows))
        return version, [v.item() if hasattr(v, "item") else v for v in values]
