"""What a process pays to check an ONNX model, and what the service's prediction child preloads.

Every sandbox worker, prediction child and bundle load parses the submitted ONNX file to check
it (operator domains, external data). Side by side, each in a fresh process, ``--runs`` times
interleaved, after one untimed round:

- the onnx package: ``import onnx`` and ``onnx.load_model_from_string`` (what the checks used);
- groupwise: ``parse_onnx`` and ``check_onnx`` (onnx's message definitions, without the package);
- the prediction child's preload before (numpy, pandas, onnx, onnxruntime, skops.io) and now
  (numpy, pandas, onnxruntime and the message definitions).

Prints the median wall and CPU seconds of each and the ratios.

    python benchmarks/model_load.py
    python benchmarks/model_load.py --runs 9
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from audit_speed import OUT, child_env

MODEL = OUT / "model_load.onnx"

COMMON = "import numpy, pandas, groupwise._expr, groupwise._io\nfrom groupwise.bounty import _models, _pdl\n"
CASES = {
    "onnx package: import onnx + load_model_from_string": (
        "import sys, onnx\nonnx.load_model_from_string(open(sys.argv[1], 'rb').read())\n"
    ),
    "groupwise: parse_onnx + check_onnx": (
        "import sys\nfrom groupwise.bounty._models import check_onnx, parse_onnx\n"
        "check_onnx(parse_onnx(open(sys.argv[1], 'rb').read()))\n"
        "assert 'onnx' not in sys.modules\n"
    ),
    "prediction child preload, before": COMMON + "import onnx, onnxruntime, skops.io\n",
    "prediction child preload, now": COMMON + "import onnxruntime\n_models._model_proto_class()\n",
}
PAIRS = [
    ("onnx package: import onnx + load_model_from_string", "groupwise: parse_onnx + check_onnx"),
    ("prediction child preload, before", "prediction child preload, now"),
]


def write_model() -> None:
    import numpy as np
    from skl2onnx import to_onnx
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(0)
    X = rng.random((5000, 3)).astype(np.float32)
    model = DecisionTreeClassifier(max_depth=6, random_state=0).fit(X, (X[:, 0] > 0.5).astype(np.int64))
    MODEL.parent.mkdir(parents=True, exist_ok=True)
    MODEL.write_bytes(to_onnx(model, X[:1]).SerializeToString())


def run(code: str) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of ``python -c code MODEL`` in a fresh process."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, str(MODEL)], env=child_env(), stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"a case failed:\n{code}\n{proc.stderr.read().decode()}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed processes per case (default 5)")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if not MODEL.exists():
        write_model()
    for code in CASES.values():  # untimed: bytecode caches and the page cache
        run(code)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in CASES}
    for _ in range(args.runs):
        for name, code in CASES.items():
            times[name].append(run(code))
    med = {name: (statistics.median(w for w, _ in t), statistics.median(c for _, c in t)) for name, t in times.items()}
    print(f"{'case':<55} {'wall s':>8} {'CPU s':>8}   (median of {args.runs} fresh processes)")
    for name, (wall, cpu) in med.items():
        print(f"{name:<55} {wall:8.2f} {cpu:8.2f}")
    for before, now in PAIRS:
        print(f"{before} / {now}: wall {med[before][0] / med[now][0]:.1f}x, CPU {med[before][1] / med[now][1]:.1f}x")


if __name__ == "__main__":
    main()
