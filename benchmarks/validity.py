"""Longer validity simulations of the audit statistics (the suite runs short versions).

For several designs (speakers per group, speaker heterogeneity) it reports:

- the coverage of 95% intervals for group WERs (target 0.95), and
- the family-wise rate of false flags under the null with Holm over 40 groups (target at
  most 0.05) for the permutation test (the default where speakers are nested in groups)
  and the bootstrap t test, and the rate of any flag with Benjamini-Hochberg (under the
  complete null, any flag is a false discovery, so this too should be at most 0.05).

    python benchmarks/validity.py [--reps 1000]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_validity import simulate  # noqa: E402

from groupwise.audit._stats import Family, analyse  # noqa: E402


def coverage(reps: int, speakers: int, sd: float, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    rates = [0.08, 0.25]
    hits = total = 0
    for rep in range(reps):
        num, den, cluster, group, n = simulate(rng, n_groups=2, speakers_per_group=speakers, utterances=8, rates=rates, speaker_sd=sd)
        fam = Family("g", group.astype(np.int64), [{"g": 0}, {"g": 1}])
        out = analyse(num=num, den=den, cluster=cluster, n_clusters=n, families=[fam], n_boot=400, seed=rep, min_clusters=2)
        for g, true in zip(out["groups"], rates):
            hits += g["ci_low"] <= true <= g["ci_high"]
            total += 1
    return hits / total


def false_flags(reps: int, speakers: int, sd: float, correction: str, test: str = "auto", seed: int = 1) -> float:
    rng = np.random.default_rng(seed)
    flagged = 0
    for rep in range(reps):
        num, den, cluster, group, n = simulate(rng, n_groups=40, speakers_per_group=speakers, utterances=5, rates=[0.15] * 40, speaker_sd=sd)
        fam = Family("g", group.astype(np.int64), [{"g": i} for i in range(40)])
        out = analyse(num=num, den=den, cluster=cluster, n_clusters=n, families=[fam], n_boot=300, seed=rep,
                      correction=correction, min_clusters=2, test=test)
        flagged += any(g["flagged"] for g in out["groups"])
    return flagged / reps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=1000)
    args = parser.parse_args()
    print("Holm FWER and BH any-flag rate under the null, 40 groups; 'perm' is the default for nested speakers")
    print(f"{'speakers/group':>15} {'speaker sd':>10} {'95% coverage':>13} {'Holm perm':>10} {'Holm boot':>10} {'BH perm':>8}")
    for speakers in (10, 20, 40):
        for sd in (0.3, 0.5, 0.8):
            cov = coverage(args.reps, speakers, sd)
            n = max(200, args.reps // 2)
            perm = false_flags(n, speakers, sd, "holm", "permutation")
            boot = false_flags(n, speakers, sd, "holm", "bootstrap")
            bh = false_flags(n, speakers, sd, "bh", "permutation")
            print(f"{speakers:>15} {sd:>10.1f} {cov:>13.3f} {perm:>10.3f} {boot:>10.3f} {bh:>8.3f}", flush=True)


if __name__ == "__main__":
    main()
