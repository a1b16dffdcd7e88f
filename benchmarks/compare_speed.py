"""The paired comparison of two systems costs no more than auditing each of them.

The workload: ``--rows`` utterances (default 1,000,000) transcribed by two systems, one row
per (utterance, system), 5,000 speakers in 20 accents (simulated as in ``audit_speed.py``;
the second system's transcripts differ from the first's in some words). Timed as users run
them, each a fresh command-line process on the same Parquet file:

* ``groupwise compare`` of the two systems by accent (paired deltas and interactions);
* ``groupwise audit`` of each system's rows by accent, twice (one per system).

The claim is that the first costs no more than the two audits together; the script prints
the medians and their ratio.

    python benchmarks/compare_speed.py                 # 1,000,000 utterances per system
    python benchmarks/compare_speed.py --rows 100000   # quicker
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
ACCENTS = [f"accent{i:02d}" for i in range(20)]


def make_data(rows: int, folder: Path) -> tuple[Path, Path, Path]:
    import polars as pl

    import groupwise

    folder.mkdir(parents=True, exist_ok=True)
    both, a_only, b_only = folder / f"systems-{rows}.parquet", folder / f"system-a-{rows}.parquet", folder / f"system-b-{rows}.parquet"
    if both.exists() and a_only.exists() and b_only.exists():
        return both, a_only, b_only
    df = groupwise.speech_example(rows, n_speakers=5000, accents=ACCENTS, noises=("clean", "babble", "hum"), seed=7)
    a = pl.from_pandas(df.drop(columns=["true_rate"])).with_columns(pl.lit("a").alias("system"))
    b = a.with_columns(
        pl.col("hypothesis").str.replace_all(r"\bthe\b", "a").str.replace_all(r"\bto\b", "two"), pl.lit("b").alias("system")
    )
    pl.concat([a, b]).sort("utterance", maintain_order=True).write_parquet(both)
    a.write_parquet(a_only)
    b.write_parquet(b_only)
    return both, a_only, b_only


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "groupwise", *args], capture_output=True, text=True,
                          env={**os.environ, "CI": "true"})
    if proc.returncode != 0:
        sys.exit(f"groupwise {' '.join(args[:2])} failed:\n{proc.stderr}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="utterances per system")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    both, a_only, b_only = make_data(args.rows, OUT)
    compare_args = ["compare", str(both), "--condition", "system", "--baseline", "a", "--by", "accent",
                    "--cluster", "speaker", "--item", "utterance", "--quiet"]
    audit_args = ["--by", "accent", "--cluster", "speaker", "--quiet"]
    compare_t, audits_t = [], []
    for _ in range(args.repeats):
        compare_t.append(timed(compare_args))
        audits_t.append(timed(["audit", str(a_only), *audit_args]) + timed(["audit", str(b_only), *audit_args]))
    c, a = statistics.median(compare_t), statistics.median(audits_t)
    load = os.getloadavg()
    print(f"utterances per system: {args.rows:,}; medians of {args.repeats} runs")
    print("| command | time |")
    print("| --- | --- |")
    print(f"| groupwise compare (two systems, paired, by accent) | {c:.2f} s |")
    print(f"| groupwise audit of system a + groupwise audit of system b | {a:.2f} s |")
    print(f"| ratio compare / two audits | {c / a:.2f} |")
    print(f"load average while measuring (1, 5, 15 min): {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")


if __name__ == "__main__":
    main()
