"""Out-of-core audit: many Parquet shards, more than memory holds, audited from the command line.

The workload: ``--shards`` files of ``--rows`` utterances each (default 100 x 1,000,000 =
100M utterances, about 5 GB of Parquet), simulated as in ``audit_speed.py`` (20 accents x 3
noise conditions, 5,000 speakers per shard, every shard its own speakers). Simulating text
is slower than auditing it, so ``--base`` distinct shards are simulated and the rest are
copies of them with the speaker ids renamed, which costs the audit exactly as much as new
text would.

The audit runs as users run it, ``python -m groupwise audit FOLDER --by accent --by noise
--by accent,noise --cluster speaker --no-cache``, in a subprocess whose wall time and peak
memory (max RSS) are measured. A second check audits the first ``--subset`` shards both
ways, as one Parquet file read into memory and as shards, and compares every number.

    python benchmarks/stream_speed.py                          # 100M utterances
    python benchmarks/stream_speed.py --shards 10              # 10M, quicker
    python benchmarks/stream_speed.py --engine ray --shards 10 # the same through Ray
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
ACCENTS = [f"accent{i:02d}" for i in range(20)]
FAMILIES = ["--by", "accent", "--by", "noise", "--by", "accent,noise", "--cluster", "speaker"]


def simulate(rows: int, seed: int, path: Path) -> None:
    import groupwise

    effect = {a: 1.0 + 0.05 * i for i, a in enumerate(ACCENTS)}
    df = groupwise.speech_example(
        rows, n_speakers=5000, accents=ACCENTS, noises=("clean", "babble", "hum"), accent_effect=effect, seed=seed,
    )
    df.drop(columns=["true_rate", "utterance"]).to_parquet(path)


def make_shards(folder: Path, shards: int, rows: int, base: int) -> None:
    import polars as pl

    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "manifest.json"
    want = {"shards": shards, "rows": rows, "base": base}
    if manifest.exists() and json.loads(manifest.read_text()) == want:
        return
    for old in folder.glob("*.parquet"):
        old.unlink()
    bases = folder.parent / f"{folder.name}-base"
    bases.mkdir(exist_ok=True)
    for b in range(min(base, shards)):
        path = bases / f"base-{b:03d}-{rows}.parquet"
        if not path.exists():
            start = time.perf_counter()
            simulate(rows, seed=1000 + b, path=path)
            print(f"simulated base shard {b + 1}/{base} in {time.perf_counter() - start:.1f} s", flush=True)
    for i in range(shards):
        source = bases / f"base-{i % base:03d}-{rows}.parquet"
        frame = pl.read_parquet(source).with_columns(pl.format("r{}-{}", pl.lit(i), pl.col("speaker")).alias("speaker"))
        frame.write_parquet(folder / f"part-{i:04d}.parquet")
    manifest.write_text(json.dumps(want))
    print(f"wrote {shards} shards of {rows:,} rows to {folder}", flush=True)


def run_cli(args: list[str]) -> tuple[float, float, str]:
    """Wall seconds and peak memory (MB, this process's own max RSS) of one ``groupwise audit``."""
    err = OUT / "stream_stderr.txt"
    start = time.perf_counter()
    with open(err, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "groupwise", "audit", *args], stdout=subprocess.DEVNULL,
                                stderr=fh, env={**os.environ, "CI": "true"})
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"groupwise audit failed:\n{err.read_text()}")
    return wall, usage.ru_maxrss / 1024, err.read_text()


def same_numbers(a: dict, b: dict) -> bool:
    keys = ("value", "ci_low", "ci_high", "gap", "gap_ci_low", "gap_ci_high", "p_value", "p_adjusted", "flagged", "n")
    rows_a = [[g.get(k) for k in keys] for g in a["groups"]]
    rows_b = [[g.get(k) for k in keys] for g in b["groups"]]
    return rows_a == rows_b and a["overall"] == b["overall"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=100)
    parser.add_argument("--rows", type=int, default=1_000_000, help="utterances per shard")
    parser.add_argument("--base", type=int, default=10, help="distinct simulated shards")
    parser.add_argument("--subset", type=int, default=2, help="shards audited both in memory and as shards")
    parser.add_argument("--engine", default="local", choices=["local", "ray"])
    parser.add_argument("--data", type=Path, default=OUT / "shards")
    args = parser.parse_args()

    make_shards(args.data, args.shards, args.rows, args.base)
    total = args.shards * args.rows
    size_gb = sum(p.stat().st_size for p in args.data.glob("*.parquet")) / 1e9
    print(f"auditing {total:,} utterances in {args.shards} shards ({size_gb:.1f} GB of Parquet), engine {args.engine}", flush=True)
    out_json = OUT / "stream_audit.json"
    wall, peak, _ = run_cli([str(args.data), *FAMILIES, "--no-cache", "--quiet", "--engine", args.engine,
                             "--json", str(out_json)])
    result = json.loads(out_json.read_text())

    # The same numbers as in memory, on a subset that fits.
    import polars as pl

    subset_dir = OUT / "stream_subset"
    subset_dir.mkdir(parents=True, exist_ok=True)
    for old in subset_dir.glob("*.parquet"):
        old.unlink()
    parts = sorted(args.data.glob("*.parquet"))[: args.subset]
    for p in parts:
        (subset_dir / p.name).write_bytes(p.read_bytes())
    whole = OUT / "stream_subset_whole.parquet"
    pl.concat([pl.read_parquet(p) for p in parts]).write_parquet(whole)
    mem_wall, mem_peak, _ = run_cli([str(whole), *FAMILIES, "--quiet", "--json", str(OUT / "subset_memory.json")])
    sh_wall, sh_peak, _ = run_cli([str(subset_dir), *FAMILIES, "--quiet", "--no-cache", "--json", str(OUT / "subset_shards.json")])
    same = same_numbers(json.loads((OUT / "subset_memory.json").read_text()), json.loads((OUT / "subset_shards.json").read_text()))
    load = os.getloadavg()

    print()
    print("| run | utterances | wall | utterances/s | peak memory |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| shards, {args.engine} engine | {total:,} | {wall:.1f} s | {total / wall:,.0f} | {peak:,.0f} MB |")
    n_sub = args.subset * args.rows
    print(f"| subset in memory (one file) | {n_sub:,} | {mem_wall:.1f} s | {n_sub / mem_wall:,.0f} | {mem_peak:,.0f} MB |")
    print(f"| subset as shards | {n_sub:,} | {sh_wall:.1f} s | {n_sub / sh_wall:,.0f} | {sh_peak:,.0f} MB |")
    print()
    print(f"overall WER {result['overall']['value']:.6f} over {result['overall']['n']:,} utterances, "
          f"{len(result['groups'])} groups; reduced to {result['settings']['stream']['reduced_rows']:,} rows")
    print(f"subset: every number the same in memory and as shards: {same}")
    print(f"load average while measuring (1, 5, 15 min): {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
