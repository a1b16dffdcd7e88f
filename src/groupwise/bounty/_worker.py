"""The sandbox worker: loads submitted model files and writes their predictions.

Run by :mod:`groupwise.bounty._sandbox` as ``python -m groupwise.bounty._worker JOB``
under CPU, memory, file-size and wall-clock limits. It reads a JSON job (model paths,
the schema, the ``.npy`` feature matrices of the splits), writes one ``.npy`` file of
predictions per model and split (never a pickle) and a ``result.json``. Nothing it returns
is trusted: the parent checks every array's shape, type and values.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _write(out: Path, result: dict) -> None:
    (out / "result.json").write_text(json.dumps(result), encoding="utf-8")


def main(job_path: str) -> int:
    job = json.loads(Path(job_path).read_text(encoding="utf-8"))
    out = Path(job["out"])
    try:
        import numpy as np

        from groupwise._errors import GroupwiseError
        from groupwise.bounty._models import load_model
        from groupwise.bounty._schema import Schema

        schema = Schema.from_dict(job["schema"])
        matrices = {split: np.load(path, mmap_mode="r", allow_pickle=False) for split, path in job["inputs"].items()}
        for key, spec in job["models"].items():
            try:
                model = load_model(spec["path"], schema, name=spec["name"])
            except GroupwiseError as exc:
                _write(out, {"ok": False, "kind": "input", "key": key, "reason": exc.message})
                return 0
            for split, matrix in matrices.items():
                pred = np.asarray(model.predict(np.asarray(matrix)))
                if pred.dtype == object:
                    pred = pred.astype(str)
                np.save(out / f"{key}.{split}.npy", pred, allow_pickle=False)
    except MemoryError:
        _write(out, {"ok": False, "kind": "memory", "reason": "MemoryError"})
        return 3
    except Exception as exc:  # noqa: BLE001 - any failure of untrusted code is reported, not raised
        text = f"{type(exc).__name__}: {exc}"
        kind = "memory" if "alloc" in text.lower() or "bad_alloc" in text else "crash"
        _write(out, {"ok": False, "kind": kind, "reason": text[:500]})
        return 4
    _write(out, {"ok": True})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
