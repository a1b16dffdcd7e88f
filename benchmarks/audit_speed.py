"""Speed of ``groupwise audit`` against fairlearn's MetricFrame with a jiwer WER metric.

The workload: N utterances (default 1,000,000) from 5,000 speakers in 20 accents x 3 noise
conditions, written once to a Parquet file. groupwise computes everything: default text
normalisation, WER alignment with S/D/I counts, the accent, noise and accent x noise
families, cluster-robust intervals and tests, Holm correction. The peer computes point
estimates only, one MetricFrame per family, with ``jiwer.wer`` as the metric, which is how
fairlearn users measure WER by group.

Three timings, side by side in one run:

- the command as users run it: ``python -m groupwise audit FILE.parquet --by accent
  --by noise --by accent,noise --cluster speaker`` in a fresh process each time, from
  interpreter start to exit (imports, reading the Parquet file, normalisation, alignment,
  statistics and the printed tables); one warm-up run (which also writes the JSON the
  numbers are checked with) and then ``--repeats`` timed runs, median. The child's
  environment is the caller's, with compiled bytecode cached outside the source tree
  (``PYTHONPYCACHEPREFIX``) as an installed package has it, even where
  ``PYTHONDONTWRITEBYTECODE`` is set;
- the API in one process: ``groupwise.audit(path, ...)`` (reading included) and
  ``groupwise.audit(df, ...)`` on the DataFrame already in memory, median of repeats;
- the peer on the same DataFrame in memory (reading and imports not counted), on all rows
  by default. ``--peer-rows K`` times it on the first K rows instead and scales the time
  linearly to N; the output then says so on every line that uses the estimate.

The overall WER of the command and of the peer must agree. The load average is printed
before and after: the machine may be shared.

    python benchmarks/audit_speed.py                         # 1,000,000 utterances
    python benchmarks/audit_speed.py --rows 100000           # quicker
    python benchmarks/audit_speed.py --peer-rows 100000      # peer on 100,000 rows, scaled
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
ACCENTS = [f"accent{i:02d}" for i in range(20)]
FAMILIES = (["accent"], ["noise"], ["accent", "noise"])
AUDIT_ARGS = ["--by", "accent", "--by", "noise", "--by", "accent,noise", "--cluster", "speaker"]


def make_data(rows: int, path: Path) -> None:
    import groupwise

    effect = {a: 1.0 + 0.05 * i for i, a in enumerate(ACCENTS)}
    df = groupwise.speech_example(
        rows, n_speakers=5000, accents=ACCENTS, noises=("clean", "babble", "hum"),
        accent_effect=effect, seed=1,
    )
    df.drop(columns=["true_rate"]).to_parquet(path)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(OUT / "pycache")
    return env


def run_command(args: list[str]) -> tuple[float, float]:
    """Run ``args`` to completion; its wall time in seconds and max RSS in MB."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{proc.stderr.read().decode()}")
    return elapsed, usage.ru_maxrss / 1024


def time_command(path: Path, repeats: int) -> dict:
    base = [sys.executable, "-m", "groupwise", "audit", str(path), *AUDIT_ARGS]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "audit.json"
        run_command([*base, "-q", "--json", str(out)])  # warm-up, and the numbers
        result = json.loads(out.read_text())
    runs = [run_command(base) for _ in range(repeats)]
    return {
        "command": " ".join(["python", "-m", "groupwise", "audit", str(path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path), *AUDIT_ARGS]),
        "times": [t for t, _ in runs],
        "max_rss_mb": max(m for _, m in runs),
        "overall": result["overall"]["value"],
        "groups": len(result["groups"]),
    }


def run_api(path: Path, repeats: int) -> None:
    """Child process: time groupwise.audit on the path and on the DataFrame; print JSON."""
    import pandas as pd

    import groupwise

    options = dict(metric="wer", by=["accent", "noise", "accent,noise"], cluster="speaker")
    groupwise.audit(path, **options)  # warm-up: imports and first use
    on_path = []
    for _ in range(repeats):
        start = time.perf_counter()
        groupwise.audit(path, **options)
        on_path.append(time.perf_counter() - start)
    df = pd.read_parquet(path)
    in_memory = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = groupwise.audit(df, **options)
        in_memory.append(time.perf_counter() - start)
    print(json.dumps({"path": on_path, "frame": in_memory, "overall": result.overall["value"]}))


def run_fairlearn(path: Path, rows: int | None) -> tuple[float, float]:
    import jiwer
    import pandas as pd
    from fairlearn.metrics import MetricFrame

    df = pd.read_parquet(path)
    if rows is not None:
        df = df.iloc[:rows]

    def wer(y_true, y_pred):
        return jiwer.wer(list(y_true), list(y_pred))

    start = time.perf_counter()
    overall = None
    for family in FAMILIES:
        mf = MetricFrame(metrics=wer, y_true=df["reference"], y_pred=df["hypothesis"], sensitive_features=df[family])
        overall = mf.overall
    return time.perf_counter() - start, float(overall)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of the command and of the API")
    parser.add_argument("--peer-rows", type=int, default=None,
                        help="time the peer on the first K rows and scale linearly (default: all rows)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_api(args.child, args.repeats)
        return
    OUT.mkdir(exist_ok=True)
    path = OUT / f"speech_{args.rows}.parquet"
    if not path.exists():
        print(f"generating {args.rows:,} utterances ...", flush=True)
        make_data(args.rows, path)
    print(f"{os.cpu_count()} cores; load average before: {load()}", flush=True)

    cmd = time_command(path, args.repeats)
    median = statistics.median(cmd["times"])
    print("groupwise audit as a command (WER with default normalisation + S/D/I, 3 families, "
          "cluster-robust intervals and tests, Holm; everything from interpreter start to exit):")
    print(f"  {cmd['command']}")
    print(f"  median {median:.2f} s over {len(cmd['times'])} runs {['%.2f' % t for t in cmd['times']]}; "
          f"max RSS {cmd['max_rss_mb']:.0f} MB", flush=True)

    child = subprocess.run(
        [sys.executable, __file__, "--child", str(path), "--repeats", str(args.repeats)],
        capture_output=True, text=True, check=True, env=child_env(),
    )
    api = json.loads(child.stdout.strip().splitlines()[-1])
    api_path, api_frame = statistics.median(api["path"]), statistics.median(api["frame"])
    print("groupwise.audit from Python, one process, same options:")
    print(f"  on the Parquet path: median {api_path:.2f} s {['%.2f' % t for t in api['path']]}")
    print(f"  on the DataFrame in memory: median {api_frame:.2f} s {['%.2f' % t for t in api['frame']]}", flush=True)

    rows = args.rows if args.peer_rows is None else min(args.peer_rows, args.rows)
    scaled = rows < args.rows
    print(f"fairlearn MetricFrame + jiwer.wer, point estimates only, 3 families, on {rows:,} rows in memory ...", flush=True)
    peer, peer_overall = run_fairlearn(path, rows if scaled else None)
    if scaled:
        estimate = peer * args.rows / rows
        print(f"  {peer:.2f} s on {rows:,} rows; ESTIMATED for {args.rows:,} rows by linear scaling: {estimate:.1f} s")
        label = f"ESTIMATED (peer timed on {rows:,} rows, scaled linearly)"
    else:
        estimate = peer
        print(f"  {peer:.2f} s")
        label = "measured"
        assert abs(peer_overall - cmd["overall"]) < 1e-9, (peer_overall, cmd["overall"])
        print(f"overall WER agrees: {cmd['overall']:.6f}")
    assert abs(api["overall"] - cmd["overall"]) < 1e-12, (api["overall"], cmd["overall"])
    print(f"ratio fairlearn / groupwise command: {estimate / median:.1f}x ({label})")
    print(f"ratio fairlearn / groupwise.audit on the DataFrame: {estimate / api_frame:.1f}x ({label})")
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
