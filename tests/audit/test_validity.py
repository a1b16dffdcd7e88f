"""Validity of the statistics under simulation, one test per hard design.

Each design is a data-generating process from ``designs.py`` with speaker random effects,
so utterances of a speaker are correlated, and true values fixed in advance. Seeds are
fixed, so these tests are deterministic; ``benchmarks/validity.py`` runs the same designs
with many more repetitions and prints the table in ``docs/validity.md``. A rate "at most
alpha" is checked against alpha plus two Monte Carlo standard errors.
"""

from __future__ import annotations

import numpy as np

from designs import crossed, nested, paired
from groupwise.audit._audit import audit
from groupwise.audit._lastmile import lastmile


def _mc(rate: float, reps: int) -> float:
    return rate + 2 * np.sqrt(rate * (1 - rate) / reps)


def run_audit(make, reps, *, by="accent", compare="overall", key=None, seed=0, **kw):
    """Coverage of value intervals, rate of runs with any flag, and flags per group."""
    hits = total = any_flag = 0
    flags: dict = {}
    for rep in range(reps):
        frame, truth = make(np.random.default_rng(seed + rep))
        result = audit(frame, metric="ratio", by=by, cluster="speaker", compare=compare,
                       min_clusters=kw.get("min_clusters", 5), min_examples=kw.get("min_examples", 10),
                       test=kw.get("test", "auto"))
        for g in result.groups:
            k = key(g["group"]) if key else g["group"]["accent"]
            if g["ci_low"] is not None and k in truth:
                hits += g["ci_low"] <= truth[k] <= g["ci_high"]
                total += 1
            flags[k] = flags.get(k, 0) + bool(g["flagged"])
        any_flag += any(g["flagged"] for g in result.groups)
    return hits / max(total, 1), any_flag / reps, {k: v / reps for k, v in flags.items()}


def test_good_recogniser_with_zero_error_cells_crossed_with_noise():
    # WER about 1%, speakers crossed with three noise conditions, complete null: many
    # accent x noise cells have no errors at all. No [0, 0] intervals, no false flags.
    reps = 60
    make = lambda rng: crossed(rng, accent_rates=[0.01] * 6, noise_mult=[1, 1, 1], speakers=12, utterances=5)  # noqa: E731
    cov, fwer, _ = run_audit(make, reps, by=["accent,noise"], key=lambda g: (g["accent"], g["noise"]))
    assert cov >= 0.93, cov
    assert fwer <= _mc(0.05, reps), fwer
    zero = []
    for seed in range(20):  # cells of about 250 words: some have no errors by chance
        frame, _ = crossed(np.random.default_rng(seed), accent_rates=[0.01] * 6, noise_mult=[1, 1, 1], speakers=10, utterances=2)
        result = audit(frame, metric="ratio", by="accent,noise", cluster="speaker", min_clusters=5, min_examples=10)
        zero += [g for g in result.groups if g["num"] == 0]
    assert len(zero) >= 3
    assert all(g["ci_low"] == 0 and g["ci_high"] > 0 and g["p_value"] > 0.01 and not g["flagged"] for g in zero)


def test_a_small_group_whose_speakers_vary_much_more():
    # Same mean WER everywhere; one accent of 12 speakers with speaker sd 1.2 against five of
    # 40 speakers with sd 0.3. A raw-gap permutation test flags the small accent far too often.
    reps = 150
    make = lambda rng: nested(rng, rates=[0.15] * 6, speakers=[12, 40, 40, 40, 40, 40], sds=[1.2] + [0.3] * 5)  # noqa: E731
    for compare in ("overall", "complement"):
        _, fwer, flags = run_audit(make, reps, compare=compare, seed=1000)
        assert flags[0] <= _mc(0.05, reps), (compare, flags)
        assert fwer <= _mc(0.05, reps), (compare, fwer)


def test_best_reference_accounts_for_the_selection():
    # Twenty equal accents: the best one is picked from the data.
    reps = 60
    make = lambda rng: nested(rng, rates=[0.15] * 20, speakers=15, utterances=6)  # noqa: E731
    _, fwer, _ = run_audit(make, reps, compare="best", seed=2000)
    assert fwer <= _mc(0.05, reps), fwer


def test_few_and_very_unequal_clusters():
    # Six speakers per accent, utterances per speaker heavy-tailed (Pareto): intervals must
    # still cover.
    reps = 150
    make = lambda rng: nested(rng, rates=[0.1, 0.25], speakers=6, sizes="pareto", utterances=8)  # noqa: E731
    cov, fwer, _ = run_audit(make, reps, min_clusters=3, seed=3000)
    assert cov >= 0.93, cov
    assert fwer <= _mc(0.05, reps)


def test_many_groups_under_the_null_and_power_against_a_real_disparity():
    reps = 60
    make = lambda rng: nested(rng, rates=[0.15] * 40, speakers=20, sd=0.8, utterances=5)  # noqa: E731
    cov, fwer, _ = run_audit(make, reps, seed=4000)
    assert cov >= 0.93 and fwer <= _mc(0.05, reps), (cov, fwer)
    rates = [0.15] * 10
    rates[0] = 0.27
    make = lambda rng: nested(rng, rates=rates, speakers=40, sd=0.5, utterances=5)  # noqa: E731
    found = 0
    for rep in range(30):
        frame, _ = make(np.random.default_rng(4500 + rep))
        g = audit(frame, metric="ratio", by="accent", cluster="speaker", min_clusters=5).groups[0]
        found += g["flagged"] and g["direction"] == "worse"
    assert found >= 21, found


def _lastmile_rates(make, reps, *, scale, seed):
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
    return hits / total, any_flag / reps


def test_last_mile_with_few_speakers_and_unequal_spread():
    # Six to eight speakers per accent; a condition that multiplies every speaker's errors
    # by 1.5 (no interaction on the relative scale), once with one accent's speakers far
    # more spread out; and an additive condition (no interaction on the absolute scale).
    reps = 120
    cov, fwer = _lastmile_rates(lambda rng: paired(rng, rates=[0.05, 0.1, 0.2, 0.3], mult=1.5, speakers=8), reps,
                                scale="relative", seed=5000)
    assert cov >= 0.93 and fwer <= _mc(0.05, reps), (cov, fwer)
    cov, fwer = _lastmile_rates(lambda rng: paired(rng, rates=[0.1] * 4, mult=1.5, speakers=8, sds=[1.2, .3, .3, .3]),
                                reps, scale="relative", seed=6000)
    assert cov >= 0.92 and fwer <= _mc(0.05, reps), (cov, fwer)
    cov, fwer = _lastmile_rates(
        lambda rng: paired(rng, rates=[0.05, 0.1, 0.2, 0.3], mult=1, additive=[0.05] * 4, speakers=6), reps,
        scale="absolute", seed=7000,
    )
    assert cov >= 0.93 and fwer <= _mc(0.05, reps), (cov, fwer)
