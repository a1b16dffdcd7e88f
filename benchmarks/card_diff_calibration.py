"""Calibration and power of ``groupwise card diff`` (the suite runs a short version).

Two independent audits of one unchanged population (no change) are built into cards and
diffed; a good test rejects at most alpha of the time. Then one accent gets worse in the
new version and the rate at which the diff finds it is its power. Each is measured twice:
with the audits' own standard errors (``se_value``/``df_value``: Welch-Satterthwaite df,
Student t; what cards store from 1.2.0) and with standard errors read back from the
intervals (normal reference; what older cards stored), by removing ``se_value`` and
``df_value`` from the same audit JSONs.

    python benchmarks/card_diff_calibration.py [--pairs 1000] [--speakers 8 20]

Latest run (``--pairs 500 --power-pairs 200``; 8 utterances per speaker, log-normal speaker
effects with sd 0.35, 10% word errors; power is the share of diffs that flag the worse
accent after Holm):

| speakers per accent | standard errors | rejected at 0.05 (uncorrected) | at 0.10 | any flag after Holm | power, 1.5x | power, 2x |
| --- | --- | --- | --- | --- | --- | --- |
| 8 | audit's (t, Welch df) | 0.010 of 2000 | 0.045 | 0.004 | 0.040 | 0.255 |
| 8 | read back (normal) | 0.004 of 2000 | 0.013 | 0.002 | 0.030 | 0.210 |
| 20 | audit's (t, Welch df) | 0.025 of 2000 | 0.071 | 0.016 | 0.450 | 0.960 |
| 20 | read back (normal) | 0.018 of 2000 | 0.049 | 0.014 | 0.405 | 0.950 |

Both stay below the nominal level. What keeps the audits' own standard errors
conservative: with 12 speakers per accent the stored ``se_log`` is about 13% above the
spread of log values over replicates (0.151 against 0.134), and ``df_value`` is about 4.5.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd
import yaml

import groupwise
from groupwise.card import diff
from groupwise.card._about import EXAMPLE_YAML, validate_about
from groupwise.card._build import assemble

ABOUT = validate_about(yaml.safe_load(EXAMPLE_YAML))
ACCENTS = ("a", "b", "c", "d")


def table(seed: int, speakers: int, effect: dict[str, float] | None = None, utterances: int = 8) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    k = len(ACCENTS) * speakers
    spk = np.repeat(np.arange(k), utterances)
    acc = np.repeat(np.repeat(np.array(ACCENTS), speakers), utterances)
    mult = np.array([(effect or {}).get(a, 1.0) for a in acc])
    rate = 0.1 * mult * np.exp(rng.normal(0, 0.35, k))[spk]
    words = rng.integers(6, 15, spk.size)
    return pd.DataFrame({"speaker": spk, "accent": acc, "errors": rng.binomial(words, np.minimum(rate, 1)), "words": words})


def cards(seed: int, speakers: int, effect: dict[str, float] | None = None) -> tuple[dict, dict]:
    """The card with the audit's standard errors, and the same card as an older audit JSON gives it."""
    data = json.loads(groupwise.audit(
        table(seed, speakers, effect), metric="ratio", num="errors", den="words", by="accent", cluster="speaker", min_clusters=5,
    ).to_json())
    new = assemble(ABOUT, data)
    for g in data["groups"]:
        g.pop("se_value", None)
        g.pop("df_value", None)
    return new, assemble(ABOUT, data)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--power-pairs", type=int, default=200)
    ap.add_argument("--speakers", type=int, nargs="+", default=[8, 20])
    args = ap.parse_args()
    print("| speakers per accent | standard errors | rejected at 0.05 (uncorrected) | at 0.10 | any flag after Holm | power, 1.5x | power, 2x |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for speakers in args.speakers:
        t0 = time.perf_counter()
        null = [cards(100_000 + 2 * i, speakers) + cards(100_001 + 2 * i, speakers) for i in range(args.pairs)]
        rows = {}
        for j, name in ((0, "audit's (t, Welch df)"), (1, "read back (normal)")):
            p, flag = [], 0
            for pair in null:
                d = diff(pair[j], pair[2 + j])
                p += [c["p_value"] for c in d["changes"] if c["p_value"] is not None]
                flag += d["summary"]["better"] + d["summary"]["worse"] > 0
            p = np.array(p)
            rows[name] = [f"{(p < 0.05).mean():.3f} of {p.size}", f"{(p < 0.10).mean():.3f}", f"{flag / len(null):.3f}"]
        for effect in (1.5, 2.0):
            hits = {name: 0 for name in rows}
            for i in range(args.power_pairs):
                old = cards(200_000 + 2 * i, speakers)
                new = cards(200_001 + 2 * i, speakers, {"b": effect})
                for j, name in enumerate(rows):
                    d = diff(old[j], new[j])
                    hits[name] += next(c for c in d["changes"] if c["label"] == "accent=b")["direction"] == "worse"
            for name in rows:
                rows[name].append(f"{hits[name] / args.power_pairs:.3f}")
        for name, cells in rows.items():
            print(f"| {speakers} | {name} | " + " | ".join(cells) + " |")
        print(f"<!-- {speakers} speakers per accent: {time.perf_counter() - t0:.0f} s -->")


if __name__ == "__main__":
    main()
