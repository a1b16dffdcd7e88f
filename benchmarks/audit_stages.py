"""Where the time of one ``groupwise audit`` command goes, stage by stage.

Runs the command of ``audit_speed.py`` (``python -m groupwise audit FILE --by accent --by noise
--by accent,noise --cluster speaker``) in a fresh process ``--runs`` times. Each process wraps
the pipeline's stages with timers (wall and CPU seconds, page faults) before it calls the
command-line program, and prints one JSON line; this script prints the median of each stage.
Bytecode is cached outside the tree, as in ``audit_speed.py``; one untimed run comes first.

    python benchmarks/audit_stages.py                  # benchmarks/out/speech_1000000.parquet
    python benchmarks/audit_stages.py --rows 100000    # a smaller table (written if missing)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from audit_speed import AUDIT_ARGS, OUT, child_env, make_data

# (label, module, attribute): the stages, in pipeline order. A stage's time includes the
# stages it calls. Inside "text", the caller's thread splits and encodes the words a slice
# of rows at a time while two threads align the slices already encoded, chunk by chunk:
# the chunks' wall times are summed over both threads, so they overlap the encoding and
# do not add up to the text's own time. CPU seconds and page faults are the whole
# process's while a stage runs, so those of the chunks overlap as well.
STAGES = [
    ("reading the Parquet file", "groupwise.audit._audit", "open_data"),
    ("text: normalise, encode, align", "groupwise.audit._align", "normalized_word_edits"),
    ("  aligning chunks (both threads)", "groupwise.audit._align", "_align_chunk"),
    ("    of which strings of word ids", "groupwise.audit._align", "_sequences"),
    ("statistics", "groupwise.audit._audit", "analyse"),
    ("audit, all of it", "groupwise.audit._audit", "audit"),
    ("printing the tables", "groupwise.audit._result", "AuditResult.render"),
]


def child(path: Path) -> None:
    import contextlib
    import importlib
    import io
    import resource
    import time

    def now() -> tuple[float, float, int]:
        return time.perf_counter(), time.process_time(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt

    start = now()
    import groupwise.cli as cli

    cli_imported = now()
    for module_name in {m for _, m, _ in STAGES}:
        importlib.import_module(module_name)
    imported = now()
    totals = {label: [0.0, 0.0, 0] for label, _, _ in STAGES}

    def timed(label, fn):  # noqa: ANN001, ANN202
        def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            before = now()
            try:
                return fn(*args, **kwargs)
            finally:
                after = now()
                for i in range(3):
                    totals[label][i] += after[i] - before[i]
        return wrapper

    for label, module_name, attr in STAGES:
        owner = sys.modules[module_name]
        *outer, name = attr.split(".")
        for part in outer:
            owner = getattr(owner, part)
        setattr(owner, name, timed(label, getattr(owner, name)))
    sys.argv = ["groupwise", "audit", str(path), *AUDIT_ARGS]
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            cli.main()
        except SystemExit as exc:
            if exc.code not in (0, None):
                raise
    end = now()
    whole = [b - a for a, b in zip(start, end)]
    imports = [b - a for a, b in zip(start, imported)]
    rest = [w - i - totals["audit, all of it"][k] - totals["printing the tables"][k]
            for k, (w, i) in enumerate(zip(whole, imports))]
    out = {"imports": imports, "  of them, the command-line program": [b - a for a, b in zip(start, cli_imported)],
           "parsing the options, the rest": rest, **totals, "whole process after start-up": whole}
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child)
        return
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"speech_{args.rows}.parquet"
    if not path.exists():
        print(f"writing {path} ...", flush=True)
        make_data(args.rows, path)
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(path)]
    runs = []
    for i in range(args.runs + 1):
        done = subprocess.run(command, env=child_env(), capture_output=True, text=True, check=True)
        if i:  # the first run writes the bytecode cache
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"groupwise audit {path.name} {' '.join(AUDIT_ARGS)}: median of {len(runs)} fresh processes")
    print(f"{'stage':40s} {'wall s':>8s} {'CPU s':>8s} {'page faults':>12s}")
    for label in runs[0]:
        wall, cpu, faults = (statistics.median(r[label][i] for r in runs) for i in range(3))
        print(f"{label:40s} {wall:8.2f} {cpu:8.2f} {faults:12,.0f}")


if __name__ == "__main__":
    main()
