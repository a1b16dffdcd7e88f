"""Speed of the full audit against fairlearn's MetricFrame with a jiwer WER metric.

The workload: N utterances (default 1,000,000) from 5,000 speakers in 20 accents x 3 noise
conditions. groupwise computes everything: WER alignment with S/D/I counts, the accent,
noise and accent x noise families, 1,000 joint speaker-bootstrap replicates, Holm
correction. The peer computes point estimates only, one MetricFrame per family, with
``jiwer.wer`` as the metric, which is how fairlearn users measure WER by group.

Both run on the same in-memory DataFrame in one run, and the script prints the ratio.
groupwise runs in a fresh subprocess so that its peak memory (max RSS) is its own.

    python benchmarks/audit_speed.py                 # 1,000,000 utterances
    python benchmarks/audit_speed.py --rows 100000   # quicker
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
ACCENTS = [f"accent{i:02d}" for i in range(20)]


def make_data(rows: int, path: Path) -> None:
    import groupwise

    effect = {a: 1.0 + 0.05 * i for i, a in enumerate(ACCENTS)}
    df = groupwise.speech_example(
        rows, n_speakers=5000, accents=ACCENTS, noises=("clean", "babble", "hum"),
        accent_effect=effect, seed=1,
    )
    df.drop(columns=["true_rate"]).to_parquet(path)


def run_groupwise(path: Path, repeats: int) -> None:
    """Child process: time groupwise.audit and print JSON with times and max RSS."""
    import pandas as pd

    import groupwise

    df = pd.read_parquet(path)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = groupwise.audit(
            df, metric="wer", by=["accent", "noise", "accent,noise"], cluster="speaker",
            correction="holm", normalize="none", seed=0,
        )
        times.append(time.perf_counter() - start)
    start = time.perf_counter()
    groupwise.audit(df, metric="wer", by=["accent", "noise", "accent,noise"], cluster="speaker")
    default_norm = time.perf_counter() - start
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({
        "times": times, "default_normalisation": default_norm, "max_rss_mb": rss_mb,
        "overall": result.overall["value"], "groups": len(result.groups),
    }))


def run_fairlearn(path: Path) -> tuple[float, float]:
    import jiwer
    import pandas as pd
    from fairlearn.metrics import MetricFrame

    df = pd.read_parquet(path)

    def wer(y_true, y_pred):
        return jiwer.wer(list(y_true), list(y_pred))

    start = time.perf_counter()
    overall = None
    for family in (["accent"], ["noise"], ["accent", "noise"]):
        mf = MetricFrame(metrics=wer, y_true=df["reference"], y_pred=df["hypothesis"], sensitive_features=df[family])
        overall = mf.overall
    return time.perf_counter() - start, float(overall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_groupwise(args.child, args.repeats)
        return
    OUT.mkdir(exist_ok=True)
    path = OUT / f"speech_{args.rows}.parquet"
    if not path.exists():
        print(f"generating {args.rows:,} utterances ...", flush=True)
        make_data(args.rows, path)
    child = subprocess.run(
        [sys.executable, __file__, "--child", str(path), "--repeats", str(args.repeats)],
        capture_output=True, text=True, check=True,
    )
    ours = json.loads(child.stdout.strip().splitlines()[-1])
    median = statistics.median(ours["times"])
    print("groupwise audit (WER + S/D/I, 3 families, cluster-robust intervals and t tests, Holm):")
    print(f"  median {median:.2f} s over {len(ours['times'])} runs {['%.2f' % t for t in ours['times']]}; "
          f"with default text normalisation {ours['default_normalisation']:.2f} s; max RSS {ours['max_rss_mb']:.0f} MB")
    print("fairlearn MetricFrame + jiwer.wer, point estimates only, 3 families ...", flush=True)
    peer, peer_overall = run_fairlearn(path)
    print(f"  {peer:.2f} s")
    assert abs(peer_overall - ours["overall"]) < 1e-9, (peer_overall, ours["overall"])
    print(f"overall WER agrees: {ours['overall']:.6f}")
    print(f"ratio (fairlearn / groupwise): {peer / median:.1f}x")


if __name__ == "__main__":
    main()
