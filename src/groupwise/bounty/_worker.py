"""The sandbox worker: loads submitted model files and writes their predictions.

Run by :mod:`groupwise.bounty._sandbox` as ``python -m groupwise.bounty._worker job.json``
in a directory that holds the job, the model files and the feature matrices, under CPU,
memory, file-size and wall-clock limits. The job lists phases of splits; after each phase
the worker writes one ``.npy`` file of predictions per model and split (never a pickle),
prints the phase's number on stdout and, before the next phase, waits for ``go`` on stdin
(the parent hands over the next phase's matrices only then). A failure is written to
``result.json``. Nothing it returns is trusted: the parent checks every array.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _write(result: dict) -> None:
    Path("result.json").write_text(json.dumps(result), encoding="utf-8")


def main(job_path: str) -> int:
    job = json.loads(Path(job_path).read_text(encoding="utf-8"))
    try:
        import numpy as np

        from groupwise._errors import GroupwiseError
        from groupwise.bounty._models import load_model
        from groupwise.bounty._schema import Schema

        schema = Schema.from_dict(job["schema"])
        models = {}
        for key, spec in job["models"].items():
            try:
                models[key] = load_model(spec["path"], schema, name=spec["name"])
            except GroupwiseError as exc:
                _write({"ok": False, "kind": "input", "key": key, "reason": exc.message})
                return 0
        sys.stdout.write("loaded\n")
        sys.stdout.flush()
        for index, phase in enumerate(job["phases"]):
            if index > 0 and sys.stdin.readline().strip() != "go":
                return 0
            for split, path in phase.items():
                matrix = np.load(path, allow_pickle=False)
                for key, model in models.items():
                    pred = np.asarray(model.predict(matrix))
                    if pred.dtype == object:
                        pred = pred.astype(str)
                    np.save(f"{key}.{split}.npy", pred, allow_pickle=False)
            sys.stdout.write(f"{index}\n")
            sys.stdout.flush()
    except MemoryError:
        _write({"ok": False, "kind": "memory", "reason": "MemoryError"})
        return 3
    except Exception as exc:  # noqa: BLE001 - any failure of untrusted code is reported, not raised
        text = f"{type(exc).__name__}: {exc}"
        kind = "memory" if "alloc" in text.lower() or "bad_alloc" in text else "crash"
        _write({"ok": False, "kind": kind, "reason": text[:500]})
        return 4
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
