"""Validity simulations of the audit and last-mile statistics (the suite runs short versions).

For every hard design in ``tests/audit/designs.py`` and every test method this prints one
row of the table in ``docs/validity.md``: the coverage of 95% intervals of group values (or
last-mile deltas), the rate of runs with any flag under the null (Holm, target at most
0.05), the uncorrected false-flag rate of the group of interest where there is one, and
power where a real disparity is planted.

    python benchmarks/validity.py [--reps 500] [--only NAME]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "audit"))

from designs import crossed, nested, paired  # noqa: E402

from groupwise.audit._audit import audit  # noqa: E402
from groupwise.audit._lastmile import lastmile  # noqa: E402


def audit_row(make, reps, *, by="accent", compare="overall", test="auto", key=None, focus=None, power=None, seed=0,
              min_clusters=5):
    hits = total = any_flag = focus_flag = found = 0
    for rep in range(reps):
        frame, truth = make(np.random.default_rng(seed + rep))
        result = audit(frame, metric="ratio", by=by, cluster="speaker", compare=compare, test=test,
                       min_clusters=min_clusters, min_examples=10)
        for g in result.groups:
            k = key(g["group"]) if key else g["group"]["accent"]
            if g["ci_low"] is not None and k in truth:
                hits += g["ci_low"] <= truth[k] <= g["ci_high"]
                total += 1
            if focus is not None and k == focus:
                focus_flag += g["flagged"]
            if power is not None and k == power:
                found += g["flagged"] and g["direction"] == "worse"
        any_flag += any(g["flagged"] for g in result.groups)
    return {
        "coverage": hits / max(total, 1),
        "any flag": any_flag / reps if power is None else None,
        "focus flag": focus_flag / reps if focus is not None else None,
        "power": found / reps if power is not None else None,
    }


def adjusted_row(reps, seed=0):
    """Accent confounded with noise (a0 recorded mostly in babble, which doubles errors)."""
    import pandas as pd

    hits = total = raw = adj = 0
    for rep in range(reps):
        rng = np.random.default_rng(seed + rep)
        rows = []
        for a in range(4):
            for s in range(15):
                eff = np.exp(rng.normal(0, 0.4) - 0.08)
                for _ in range(8):
                    noisy = rng.random() < (0.8 if a == 0 else 0.2)
                    words = int(rng.integers(5, 15))
                    rows.append({"accent": a, "speaker": f"{a}-{s}", "noise": int(noisy), "den": words,
                                 "num": rng.poisson(words * 0.1 * eff * (2.0 if noisy else 1.0))})
        r = audit(pd.DataFrame(rows), metric="ratio", by="accent", cluster="speaker", adjust="noise")
        raw += r.groups[0]["flagged"]
        adj += (r.groups[0]["adjusted_p_adjusted"] or 1.0) <= 0.05
        for g in r.groups:
            if g["adjusted_ci_low"] is not None:
                hits += g["adjusted_ci_low"] <= 1.0 <= g["adjusted_ci_high"]
                total += 1
    return {"coverage": hits / max(total, 1), "any flag": adj / reps, "focus flag": raw / reps, "power": None}


def within_row(make, reps, *, compare, seed=0):
    """Strata of independent data sets, one correction over all."""
    import pandas as pd

    any_flag = 0
    for rep in range(reps):
        rng = np.random.default_rng(seed + rep)
        parts = []
        for stratum in range(3):
            frame, _ = make(rng)
            parts.append(frame.assign(system=stratum, speaker=frame.speaker.astype(str) + f"-{stratum}"))
        r = audit(pd.concat(parts), metric="ratio", by="accent", within="system", cluster="speaker", compare=compare,
                  min_clusters=5, min_examples=10)
        any_flag += any(g["flagged"] for g in r.groups)
    return {"coverage": None, "any flag": any_flag / reps, "focus flag": None, "power": None}


def lastmile_row(make, reps, *, scale, seed=0):
    hits = total = any_flag = 0
    for rep in range(reps):
        frame, truth = make(np.random.default_rng(seed + rep))
        r = lastmile(frame, by="accent", cluster="speaker", metric="ratio", item="utt", scale=scale, min_clusters=3)
        for g in r.conditions[0]["groups"]:
            b, v = truth[g["group"]["accent"]]
            if g["delta_ci_low"] is not None:
                hits += g["delta_ci_low"] <= v - b <= g["delta_ci_high"]
                total += 1
        any_flag += any(g["flagged"] for g in r.conditions[0]["groups"])
    return {"coverage": hits / max(total, 1), "any flag": any_flag / reps, "focus flag": None, "power": None}


def rows(reps):
    rates40 = [0.15] * 40
    hetero = dict(rates=[0.15] * 6, speakers=[12, 40, 40, 40, 40, 40], sds=[1.2] + [0.3] * 5)
    hetero8 = dict(rates=[0.15] * 6, speakers=[8, 40, 40, 40, 40, 40], sds=[1.5] + [0.3] * 5)
    power10 = [0.27] + [0.15] * 9
    power40 = [0.27] + [0.15] * 39
    yield ("40 groups x 20 speakers, speaker sd 0.5, null", "t",
           lambda: audit_row(lambda r: nested(r, rates=rates40, speakers=20, sd=0.5, utterances=5), reps))
    yield ("40 groups x 20 speakers, speaker sd 0.8, null", "t",
           lambda: audit_row(lambda r: nested(r, rates=rates40, speakers=20, sd=0.8, utterances=5), reps))
    yield ("40 groups x 20 speakers, speaker sd 0.8, null", "permutation",
           lambda: audit_row(lambda r: nested(r, rates=rates40, speakers=20, sd=0.8, utterances=5), reps, test="permutation"))
    yield ("40 groups, gamma speakers (heavier tail), null", "t",
           lambda: audit_row(lambda r: nested(r, rates=rates40, speakers=20, sd=0.8, tail="gamma", utterances=5), reps))
    yield ("good recogniser (WER 1%), accent x noise crossed, null", "t",
           lambda: audit_row(lambda r: crossed(r, accent_rates=[0.01] * 6, noise_mult=[1, 1, 1], speakers=12, utterances=5),
                             reps, by=["accent,noise"], key=lambda g: (g["accent"], g["noise"])))
    yield ("good recogniser, cells of ~250 words (many zero cells), null", "t",
           lambda: audit_row(lambda r: crossed(r, accent_rates=[0.01] * 6, noise_mult=[1, 1, 1], speakers=10, utterances=2),
                             reps, by=["accent,noise"], key=lambda g: (g["accent"], g["noise"])))
    for compare in ("overall", "complement"):
        yield (f"small accent (12 speakers, sd 1.2) vs 5 x 40 (sd 0.3), null, {compare}", "t",
               lambda compare=compare: audit_row(lambda r: nested(r, **hetero), reps, compare=compare, focus=0))
    yield ("small accent (12 speakers, sd 1.2) vs 5 x 40 (sd 0.3), null", "permutation",
           lambda: audit_row(lambda r: nested(r, **hetero), reps, focus=0, test="permutation"))
    yield ("small accent (8 speakers, sd 1.5) vs 5 x 40 (sd 0.3), null", "t",
           lambda: audit_row(lambda r: nested(r, **hetero8), reps, focus=0))
    yield ("20 equal accents, compare best", "t (best)",
           lambda: audit_row(lambda r: nested(r, rates=[0.15] * 20, speakers=15, utterances=6), reps, compare="best"))
    yield ("6 speakers per accent, Pareto utterances per speaker", "t",
           lambda: audit_row(lambda r: nested(r, rates=[0.1, 0.25], speakers=6, sizes="pareto", utterances=8), reps,
                             min_clusters=3))
    yield ("power: 1 of 10 accents 1.8x worse, 40 speakers each", "t",
           lambda: audit_row(lambda r: nested(r, rates=power10, speakers=40, sd=0.5, utterances=5), reps, power=0))
    yield ("power: 1 of 40 accents 1.8x worse, 20 speakers each", "t",
           lambda: audit_row(lambda r: nested(r, rates=power40, speakers=20, sd=0.5, utterances=5), reps, power=0))
    yield ("power: 1 of 40 accents 1.8x worse, 20 speakers each", "permutation",
           lambda: audit_row(lambda r: nested(r, rates=power40, speakers=20, sd=0.5, utterances=5), reps, power=0,
                             test="permutation"))
    yield ("named reference accent=0 among 6 equal accents", "t (named)",
           lambda: audit_row(lambda r: nested(r, rates=[0.15] * 6, speakers=15), reps, compare="accent=0"))
    yield ("within 3 strata, 6 equal accents each, overall", "t (within)",
           lambda: within_row(lambda r: nested(r, rates=[0.15] * 6, speakers=15), reps, compare="overall"))
    yield ("within 3 strata, 6 equal accents each, named accent=0", "t (within, named)",
           lambda: within_row(lambda r: nested(r, rates=[0.15] * 6, speakers=15), reps, compare="accent=0"))
    yield ("adjusted: accent confounded with noise (raw flag of a0 = odd-group column)", "GEE (adjusted)",
           lambda: adjusted_row(reps))
    yield ("last mile: condition x1.5 for all, 8 speakers, relative", "paired t",
           lambda: lastmile_row(lambda r: paired(r, rates=[0.05, 0.1, 0.2, 0.3], mult=1.5, speakers=8), reps,
                                scale="relative"))
    yield ("last mile: x1.5, one accent's speakers sd 1.2, relative", "paired t",
           lambda: lastmile_row(lambda r: paired(r, rates=[0.1] * 4, mult=1.5, speakers=8, sds=[1.2, .3, .3, .3]), reps,
                                scale="relative"))
    yield ("last mile: +5 points for all, 6 speakers, absolute", "paired t",
           lambda: lastmile_row(lambda r: paired(r, rates=[0.05, 0.1, 0.2, 0.3], mult=1, additive=[0.05] * 4, speakers=6),
                                reps, scale="absolute"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=500)
    parser.add_argument("--only", default=None, help="run the designs whose name contains this")
    args = parser.parse_args()
    print(f"reps = {args.reps}; 95% intervals; Holm at alpha 0.05; MC standard error of a 5% rate: "
          f"{np.sqrt(0.05 * 0.95 / args.reps):.3f}")
    print("| design | test | coverage | any flag (null) | flag of the odd group | power |")
    # Adjusted row: coverage of the adjusted ratios (truth 1), adjusted flag of a0, raw flag of a0.
    print("| --- | --- | --- | --- | --- | --- |")
    for name, method, run in rows(args.reps):
        if args.only and args.only not in name:
            continue
        t0 = time.perf_counter()
        out = run()
        cells = [f"{out[k]:.3f}" if out[k] is not None else "" for k in ("coverage", "any flag", "focus flag", "power")]
        print(f"| {name} | {method} | " + " | ".join(cells) + f" |  <!-- {time.perf_counter() - t0:.0f} s -->", flush=True)


if __name__ == "__main__":
    main()
