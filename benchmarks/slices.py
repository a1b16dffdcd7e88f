"""Slice discovery: validity, peers side by side, and speed.

    python benchmarks/slices.py                  # everything (about 15 minutes on 2 cores)
    python benchmarks/slices.py --reps 40 --skip-speed

1. **Validity.** Simulated word errors of speakers with a log-normal random effect (utterances
   of one speaker are correlated), features accent (speaker-level), gender (speaker-level),
   noise and SNR (utterance-level). On null data (no slice is worse), the share of runs in
   which ``groupwise.slices`` confirms any slice; on planted data (a stated slice has its
   error rate multiplied by a stated effect), recall (a confirmed slice whose rows overlap the
   planted slice's with Jaccard >= 0.5) and precision (confirmed slices whose true error rate,
   from the simulation's known rates, is above the rest's: what the audit's test claims).
2. **Peers** on the same data, each given the same discretised features (SNR in quartile
   brackets) and the per-utterance error rate: ``sliceline`` (Slicefinder with its default
   alpha 0.6, and with alpha 0.95, which weighs the gap more; the same top and minimum support), ``divexplorer`` (patterns with divergence t >= 2, its own
   significance, uncorrected) and ``pysubgroup`` (beam search, standard numeric quality,
   subgroups with positive quality). None of them has a confirmation step: what they
   report on null data is false by construction.
3. **Speed.** 1,000,000 utterances (simulated transcripts, WER from alignment) from 10,000
   speakers with ten features (about a hundred predicates), order 3: wall time and peak
   memory of the whole call (alignment, search, confirmation audit with 1,000 replicates).
"""

from __future__ import annotations

import argparse
import resource
import time
import warnings

import numpy as np
import pandas as pd

import groupwise
from groupwise._expr import parse_group

FEATURES = ["accent", "gender", "noise", "snr_db"]


def simulate(seed, *, n_speakers=120, per_speaker=25, plant=None, effect=2.0, sd=0.35):
    rng = np.random.default_rng(seed)
    speaker = np.repeat(np.arange(n_speakers), per_speaker)
    n = speaker.size
    frame = pd.DataFrame({
        "speaker": np.char.add("s", speaker.astype(str)),
        "accent": np.array(["a0", "a1", "a2", "a3"])[np.arange(n_speakers) % 4][speaker],
        "gender": rng.choice(["f", "m"], n_speakers)[speaker],
        "noise": rng.choice(["clean", "babble", "hum"], n),
        "snr_db": np.round(rng.uniform(0, 30, n), 1),
    })
    words = rng.integers(5, 20, n)
    rate = 0.1 * np.exp(rng.normal(0, sd, n_speakers) - sd**2 / 2)[speaker]
    planted = np.zeros(n, bool) if plant is None else plant(frame).to_numpy()
    rate = np.where(planted, rate * effect, rate)
    frame["errors"] = rng.binomial(words, np.clip(rate, 0, 1))
    frame["words"] = words
    frame["expected"] = rate * words
    return frame, planted


PLANTS = {
    'noise == "hum" and snr_db <= 7.5 (1/12 of rows, all speakers)':
        lambda d: (d["noise"] == "hum") & (d["snr_db"] <= 7.5),
    'accent == "a2" and noise == "hum" (1/12 of rows, 1/4 of speakers)':
        lambda d: (d["accent"] == "a2") & (d["noise"] == "hum"),
}


def ours(frame, seed, top=10, max_order=2):
    return groupwise.slices(frame, features=FEATURES, metric="ratio", num="errors", den="words", cluster="speaker",
                            max_order=max_order, top=top, n_boot=300, seed=seed)


def jaccard(a, b):
    union = (a | b).sum()
    return (a & b).sum() / union if union else 0.0


def true_gap(frame, mask):
    inside = frame["expected"][mask].sum() / frame["words"][mask].sum()
    outside = frame["expected"][~mask].sum() / frame["words"][~mask].sum()
    return inside - outside


# ---------------------------------------------------------------------------
# peers
# ---------------------------------------------------------------------------


def discretised(frame):
    """The features as the peers take them: SNR in quartile brackets, everything as text."""
    out = frame[FEATURES].astype(str).copy()
    out["snr_db"] = pd.qcut(frame["snr_db"], 4).astype(str)
    return out


def peer_sliceline(frame, top, max_order, min_sup, alpha=0.6):
    from sliceline.slicefinder import Slicefinder

    X = discretised(frame)
    err = (frame["errors"] / frame["words"]).to_numpy()
    started = time.perf_counter()
    finder = Slicefinder(alpha=alpha, k=top, max_l=max_order, min_sup=min_sup, verbose=False)
    finder.fit(X.to_numpy(), err)
    seconds = time.perf_counter() - started
    masks = []
    for row in finder.top_slices_:
        mask = np.ones(len(X), bool)
        for j, value in enumerate(row):
            if value is not None:
                mask &= X.iloc[:, j].to_numpy() == value
        masks.append(mask)
    return masks, seconds


def peer_divexplorer(frame, top, max_order, min_sup):
    from divexplorer import DivergenceExplorer

    X = discretised(frame)
    X["err"] = (frame["errors"] / frame["words"]).to_numpy()
    started = time.perf_counter()
    patterns = DivergenceExplorer(X).get_pattern_divergence(min_support=min_sup / len(X), quantitative_outcomes=["err"])
    seconds = time.perf_counter() - started
    patterns = patterns[(patterns["length"] <= max_order) & (patterns["length"] >= 1)]
    found = patterns[(patterns["err_div"] > 0) & (patterns["err_t"] >= 2)].sort_values("err_div", ascending=False)
    masks = []
    for itemset in found["itemset"]:
        mask = np.ones(len(X), bool)
        for item in itemset:
            column, value = item.split("=", 1)
            mask &= X[column].to_numpy() == value
        masks.append(mask)
    return masks, seconds


def peer_pysubgroup(frame, top, max_order, min_sup):
    import pysubgroup as ps

    X = discretised(frame)
    X["err"] = (frame["errors"] / frame["words"]).to_numpy()
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        task = ps.SubgroupDiscoveryTask(X, ps.NumericTarget("err"), ps.create_selectors(X, ignore=["err"]),
                                        result_set_size=top, depth=max_order, qf=ps.StandardQFNumeric(1.0))
        result = ps.BeamSearch(beam_width=max(20, top)).execute(task)
        seconds = time.perf_counter() - started
        masks = [np.asarray(sg.covers(X), bool) for quality, sg, *_ in result.results if quality > 0]
    masks = [m for m in masks if 0 < m.sum() < len(X)]
    return masks, seconds


PEERS = {
    "sliceline": peer_sliceline,
    "sliceline (alpha 0.95)": lambda *a: peer_sliceline(*a, alpha=0.95),
    "divexplorer": peer_divexplorer,
    "pysubgroup": peer_pysubgroup,
}


def available_peers():
    out = {}
    for name, fn in PEERS.items():
        try:
            __import__(name.split()[0])
            out[name] = fn
        except ImportError:
            print(f"({name} is not installed: pip install {name.split()[0]})")
    return out


# ---------------------------------------------------------------------------
# the runs
# ---------------------------------------------------------------------------


def validity(reps, planted_reps, peers):
    print("\n## Validity and peers\n")
    rows = []
    null_counts = {name: [] for name in ["groupwise", *peers]}
    times = {name: [] for name in ["groupwise", *peers]}
    for sd in (0.35, 0.8):
        confirmed_runs = 0
        for rep in range(reps):
            frame, _ = simulate(rep, sd=sd)
            started = time.perf_counter()
            result = ours(frame, rep)
            seconds = time.perf_counter() - started
            confirmed_runs += bool(result.confirmed)
            if sd == 0.35:
                null_counts["groupwise"].append(len(result.confirmed))
                times["groupwise"].append(seconds)
                if rep < max(10, reps // 5):
                    for name, fn in peers.items():
                        masks, peer_seconds = fn(frame, 10, 2, result.settings["min_size"])
                        null_counts[name].append(len(masks))
                        times[name].append(peer_seconds)
        rate = confirmed_runs / reps
        se = np.sqrt(max(rate * (1 - rate), 0.05 * 0.95) / reps)
        rows.append(("null", f"speaker sd {sd}", "-", f"{rate:.3f} (MC se {se:.3f})", "-", "-", "-", "-", "-"))
    print("| data | design | planted effect | runs confirming any slice | recall | precision (confirmed truly worse) "
          "| confirmed slices mostly planted rows | confirmed per run | the same, leaving out slices marked as "
          "inheriting a gap or carried by a refinement |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    top_hits = {name: 0 for name in ["groupwise (top confirmed)", *peers]}
    top_total = 0
    for label, plant in PLANTS.items():
        for effect in (1.5, 2.0, 3.0):
            recovered, confirmed, truly, mostly, own, own_mostly = 0, 0, 0, 0, 0, 0
            for rep in range(planted_reps):
                frame, planted = simulate(10_000 + rep, plant=plant, effect=effect)
                result = ours(frame, rep)
                masks = [parse_group(s["expression"]).evaluate(frame) for s in result.confirmed]
                recovered += any(jaccard(m, planted) >= 0.5 for m in masks)
                confirmed += len(masks)
                truly += sum(true_gap(frame, m) > 0 for m in masks)
                mostly += sum(planted[m].mean() >= 0.5 for m in masks)
                for s, m in zip(result.confirmed, masks):
                    if (not s["within"] or s["worse_than_within"]) and not s["carried_by"]:
                        own += 1
                        own_mostly += planted[m].mean() >= 0.5
                if effect == 2.0:
                    top_total += 1
                    top_hits["groupwise (top confirmed)"] += bool(masks) and jaccard(masks[0], planted) >= 0.5
                    for name, fn in peers.items():
                        peer_masks, _ = fn(frame, 10, 2, result.settings["min_size"])
                        top_hits[name] += bool(peer_masks) and jaccard(peer_masks[0], planted) >= 0.5
            precision = f"{truly / confirmed:.3f} ({truly}/{confirmed})" if confirmed else "-"
            strict = f"{mostly / confirmed:.3f}" if confirmed else "-"
            strict_own = f"{own_mostly / own:.3f} ({own / planted_reps:.1f} per run)" if own else "-"
            print(f"| planted | {label} | x{effect} | - | {recovered / planted_reps:.2f} | {precision} | {strict} | "
                  f"{confirmed / planted_reps:.1f} | {strict_own} |")
    print(f"\n({reps} null runs per row, {planted_reps} planted runs per row; 120 speakers x 25 utterances, "
          "order 2, top 10, Holm at 0.05.)\n")
    print("| tool | slices reported per null run (mean) | null runs reporting any slice | top slice = planted "
          "(x2 effect, Jaccard >= 0.5) | time per run | time vs groupwise |")
    print("| --- | --- | --- | --- | --- | --- |")
    base = np.median(times["groupwise"])
    for name in ["groupwise", *peers]:
        counts = np.array(null_counts[name])
        hits = top_hits["groupwise (top confirmed)" if name == "groupwise" else name]
        t = np.median(times[name])
        print(f"| {name} | {counts.mean():.2f} | {(counts > 0).mean():.2f} | {hits}/{top_total} | {t:.3f} s | "
              f"{t / base:.2f}x |")
    print("\n(groupwise time is the whole call: search on half the speakers and the confirmation audit; "
          "peers' times are their search on all rows.)")


def speed_data(rows):
    """Simulated transcripts with ten features (about a hundred predicates with bins=6)."""
    rng = np.random.default_rng(0)
    frame = groupwise.speech_example(rows, n_speakers=10_000, seed=0)
    n = len(frame)
    speaker = frame["speaker"].str[3:].astype(int).to_numpy()
    frame["region"] = np.array([f"r{i}" for i in range(12)])[speaker % 12]
    frame["device"] = rng.choice([f"d{i}" for i in range(10)], n)
    frame["age_band"] = np.array(["18-29", "30-39", "40-49", "50-59", "60-69", "70+"])[speaker % 6]
    frame["snr_db"] = np.round(rng.uniform(-5, 35, n), 1)
    frame["duration_s"] = np.round(rng.gamma(4.0, 1.2, n), 2)
    frame["speaking_rate"] = np.round(rng.normal(3.0, 0.5, n), 2)
    frame["words"] = frame["reference"].str.count(" ") + 1
    features = ["accent", "noise", "gender", "region", "device", "age_band", "snr_db", "duration_s",
                "speaking_rate", "words"]
    return frame, features


def speed(rows):
    print(f"\n## Speed: {rows:,} utterances, ten features, order 3\n")
    frame, features = speed_data(rows)
    n = len(frame)
    cpu = time.process_time()
    started = time.perf_counter()
    result = groupwise.slices(frame, features=features, metric="wer", cluster="speaker", max_order=3, bins=6,
                              top=20, n_boot=1000, normalize="none")
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    predicates = sum(len(p["predicates"]) for p in result.predicates)
    s = result.settings["search"]
    print(f"predicates: {predicates}; slices scored: {s['slices_scored']:,}; combinations looked at: "
          f"{s.get('combinations_order_1', 0)} + {s.get('combinations_order_2', 0)} + {s.get('combinations_order_3', 0)}"
          f" ({s.get('combinations_pruned', 0)} pruned); cluster checks: {s.get('cluster_checks', 0)}")
    print(f"whole call: {seconds:.1f} s wall, {cpu:.1f} s CPU (search, including the discovery half's alignment: "
          f"{s['seconds']:.1f} s wall); "
          f"peak RSS of the process: {peak:,.0f} MB (including the {n:,}-row DataFrame)")
    print(f"confirmed: {len(result.confirmed)} of {len(result.slices)} candidates; top: "
          + "; ".join(x["expression"] for x in result.confirmed[:3]))


def speed_peer(rows):
    """sliceline on the same rows and features (numbers in 6 quantile brackets), order 3."""
    from sliceline.slicefinder import Slicefinder

    from groupwise.audit._metrics import METRICS, MetricColumns, contributions
    from groupwise.audit._text import parse_normalizer

    frame, features = speed_data(rows)
    c = contributions(frame, METRICS["wer"], MetricColumns(), normalizer=parse_normalizer("none"))
    err = c.num / np.maximum(c.den, 1)
    X = pd.DataFrame({f: (pd.qcut(frame[f], 6, duplicates="drop") if frame[f].dtype.kind == "f" else frame[f]).astype(str)
                      for f in features}).to_numpy()
    cpu = time.process_time()
    started = time.perf_counter()
    finder = Slicefinder(alpha=0.95, k=20, max_l=3, min_sup=max(30, rows // 200), verbose=False)
    finder.fit(X, err)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"sliceline on {rows:,} rows, order 3, k 20, all rows (no split, no confirmation): {seconds:.1f} s wall, "
          f"{cpu:.1f} s CPU; peak RSS {peak:,.0f} MB; top: {finder.top_slices_[0]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=300, help="null runs per design")
    parser.add_argument("--planted-reps", type=int, default=40, help="runs per planted design")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the speed run")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--speed-only", action="store_true", help="only the speed run")
    parser.add_argument("--speed-peer", action="store_true", help="only sliceline on the speed data")
    args = parser.parse_args()
    if args.speed_peer:
        speed_peer(args.rows)
        return
    if args.speed_only:
        speed(args.rows)
        return
    peers = {} if args.skip_peers else available_peers()
    validity(args.reps, args.planted_reps, peers)
    if not args.skip_speed:
        speed(args.rows)


if __name__ == "__main__":
    main()
