"""Validity of the statistics under simulation with clustered data.

Speakers have log-normal random effects on their error rate, so utterances of a speaker
are correlated. The true group value is the population ratio E[num] / E[den], which the
simulation fixes. Seeds are fixed, so these tests are deterministic; the longer versions
(more repetitions, more settings) live in ``benchmarks/validity.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from groupwise.audit._stats import Family, analyse


def simulate(rng, *, n_groups, speakers_per_group, utterances, rates, speaker_sd=0.5):
    n_speakers = n_groups * speakers_per_group
    speaker_group = np.repeat(np.arange(n_groups), speakers_per_group)
    effect = np.exp(rng.normal(0.0, speaker_sd, n_speakers) - speaker_sd**2 / 2)
    per_speaker = rng.poisson(utterances, n_speakers) + 1
    cluster = np.repeat(np.arange(n_speakers), per_speaker)
    words = rng.integers(4, 16, cluster.size)
    p = np.clip(np.asarray(rates)[speaker_group[cluster]] * effect[cluster], 0, 1)
    errors = rng.binomial(words, p)
    return errors.astype(float), words.astype(float), cluster, speaker_group[cluster], n_speakers


def test_interval_coverage_is_nominal():
    rng = np.random.default_rng(20240601)
    rates = [0.10, 0.25]
    hits = total = 0
    for rep in range(250):
        num, den, cluster, group, n_speakers = simulate(
            rng, n_groups=2, speakers_per_group=25, utterances=8, rates=rates
        )
        fam = Family("g", group.astype(np.int64), [{"g": 0}, {"g": 1}])
        out = analyse(
            num=num, den=den, cluster=cluster, n_clusters=n_speakers, families=[fam],
            n_boot=400, seed=rep, min_clusters=5,
        )
        for g, true in zip(out["groups"], rates):
            hits += g["ci_low"] <= true <= g["ci_high"]
            total += 1
    coverage = hits / total
    assert 0.93 <= coverage <= 0.97, coverage


@pytest.mark.parametrize("speaker_sd", [0.5, 0.8])
def test_familywise_false_flags_at_most_alpha_under_the_null(speaker_sd):
    # With speakers nested in groups the default test is the cluster permutation test, which
    # is exact; the bootstrap t test alone runs above alpha in this far tail (Holm over 40
    # groups needs p < 0.00125) with 20 speakers per group: benchmarks/validity.py has both.
    test, reps = "auto", 150
    rng = np.random.default_rng(12)
    n_groups = 40
    any_flag = 0
    for rep in range(reps):
        num, den, cluster, group, n_speakers = simulate(
            rng, n_groups=n_groups, speakers_per_group=20, utterances=5, rates=[0.15] * n_groups,
            speaker_sd=speaker_sd,
        )
        fam = Family("g", group.astype(np.int64), [{"g": i} for i in range(n_groups)])
        out = analyse(
            num=num, den=den, cluster=cluster, n_clusters=n_speakers, families=[fam],
            n_boot=300, seed=rep, correction="holm", alpha=0.05, min_clusters=5, test=test,
        )
        assert out["n_tested"] == n_groups
        assert {g["test"] for g in out["groups"]} == {"permutation"}
        any_flag += any(g["flagged"] for g in out["groups"])
    rate = any_flag / reps
    monte_carlo = 2 * np.sqrt(0.05 * 0.95 / reps)
    assert rate <= 0.05 + monte_carlo, rate


def test_power_against_a_real_disparity():
    # The same design with one group 1.8x worse must be found most of the time.
    rng = np.random.default_rng(11)
    found = 0
    for rep in range(40):
        rates = [0.15] * 40
        rates[0] = 0.27
        num, den, cluster, group, n_speakers = simulate(
            rng, n_groups=40, speakers_per_group=20, utterances=5, rates=rates
        )
        fam = Family("g", group.astype(np.int64), [{"g": i} for i in range(40)])
        out = analyse(
            num=num, den=den, cluster=cluster, n_clusters=n_speakers, families=[fam],
            n_boot=300, seed=rep, min_clusters=5,
        )
        found += out["groups"][0]["flagged"] and out["groups"][0]["direction"] == "worse"
    assert found >= 24, found
