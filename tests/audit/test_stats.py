"""Unit tests of the statistical core: corrections, cluster-robust pieces, agreement of
intervals with p-values, zero-error cells, the best reference, the permutation option."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sstats

from groupwise.audit._inference import adjust, benjamini_hochberg, cell_sums, fieller, holm, t_contrast, value_interval
from groupwise.audit._stats import Family, analyse


def test_holm_matches_definition():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    order = np.argsort(p)
    m = p.size
    expected = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, (m - rank) * p[i])
        expected[i] = min(running, 1.0)
    assert holm(p) == pytest.approx(expected)


def test_bh_matches_scipy():
    p = np.random.default_rng(0).uniform(size=30) ** 2
    assert benjamini_hochberg(p) == pytest.approx(sstats.false_discovery_control(p, method="bh"))


def test_adjust_none_and_empty():
    assert adjust(np.array([0.2]), "none").tolist() == [0.2]
    assert holm(np.array([])).size == 0


def _sim(rng, rates, speakers=20, utterances=6, sd=0.5):
    rates = np.asarray(rates)
    g = np.repeat(np.arange(rates.size), speakers)
    effect = np.exp(rng.normal(0, sd, g.size) - sd**2 / 2)
    per = rng.poisson(utterances, g.size) + 1
    cluster = np.repeat(np.arange(g.size), per)
    words = rng.integers(4, 16, cluster.size).astype(float)
    errors = rng.poisson(words * rates[g[cluster]] * effect[cluster]).astype(float)
    return errors, words, cluster, g[cluster], g.size


def test_cell_sums_and_robust_variance_match_a_direct_computation():
    rng = np.random.default_rng(1)
    num, den, cluster, group, n = _sim(rng, [0.1, 0.2])
    s = cell_sums(cluster, group, num, den, n, 2)
    for j in range(2):
        rows = group == j
        N, D = num[rows].sum(), den[rows].sum()
        assert s.R[j] == pytest.approx(N / D)
        per_n = np.bincount(cluster[rows], weights=num[rows], minlength=n)
        per_d = np.bincount(cluster[rows], weights=den[rows], minlength=n)
        e = per_n - N / D * per_d
        assert s.ee[j] == pytest.approx(e @ e)
        h = per_d / D
        assert s.leverage[j] * s.ee[j] == pytest.approx(np.sum(e**2 / (1 - h)))
        assert s.eff_clusters[j] == pytest.approx(D**2 / (per_d @ per_d))
        assert s.clusters[j] == np.count_nonzero(per_d)


def test_point_values_are_ratios_of_sums():
    rng = np.random.default_rng(2)
    num, den, cluster, group, n = _sim(rng, [0.1, 0.3])
    out = analyse(num=num, den=den, cluster=cluster, n_clusters=n, families=[Family("g", group, [{"g": 0}, {"g": 1}])])
    assert out["overall"]["value"] == pytest.approx(num.sum() / den.sum())
    for j, g in enumerate(out["groups"]):
        assert g["value"] == pytest.approx(num[group == j].sum() / den[group == j].sum())


def test_intervals_agree_with_p_values():
    # Every tested gap: the gap and ratio intervals exclude no difference exactly when p < 1 - confidence.
    rng = np.random.default_rng(3)
    seen = set()
    for rep in range(30):
        rates = [0.1, 0.1, 0.1 * (1 + rep / 20), 0.13, 0.02 * rep]
        num, den, cluster, group, n = _sim(rng, rates, speakers=12)
        for compare in ("overall", "complement", "best"):
            out = analyse(
                num=num, den=den, cluster=cluster, n_clusters=n, compare=compare,
                families=[Family("g", group, [{"g": i} for i in range(5)])], min_clusters=5,
            )
            for g in out["groups"]:
                if g["status"] != "tested":
                    continue
                significant = g["p_value"] < 0.05
                if compare == "best":  # one-sided: is the group worse than the best?
                    excludes_gap, excludes_ratio = g["gap_ci_low"] > 0, (g["ratio_ci_low"] or 0) > 1
                else:
                    excludes_gap = g["gap_ci_low"] > 0 or g["gap_ci_high"] < 0
                    excludes_ratio = g["ratio_ci_low"] is not None and (g["ratio_ci_low"] > 1 or g["ratio_ci_high"] < 1)
                assert significant == excludes_gap, (compare, g)
                if g["ratio_ci_low"] is not None and g["ratio_ci_high"] is not None:  # undefined against a zero reference
                    assert significant == excludes_ratio, (compare, g)
                seen.add(significant)
    assert seen == {True, False}


def test_cluster_robust_interval_is_wider_than_treating_rows_as_independent():
    rng = np.random.default_rng(4)
    num, den, cluster, group, n = _sim(rng, [0.15, 0.15], speakers=15, utterances=20, sd=0.9)
    fam = [Family("g", group, [{"g": 0}, {"g": 1}])]
    by_speaker = analyse(num=num, den=den, cluster=cluster, n_clusters=n, families=fam)
    by_row = analyse(num=num, den=den, cluster=np.arange(num.size), n_clusters=num.size, families=fam)
    width = lambda o: o["groups"][0]["ci_high"] - o["groups"][0]["ci_low"]  # noqa: E731
    assert width(by_speaker) > 1.5 * width(by_row)


def test_a_group_without_errors_gets_an_honest_interval_and_no_tiny_p():
    # A good recogniser: 1% WER; one accent with no errors in about 300 words from 10
    # speakers (which happens by chance: about 3 errors are expected).
    rng = np.random.default_rng(5)
    num, den, cluster, group, n = _sim(rng, [0.01, 0.01, 0.01], speakers=10, utterances=3)
    num[group == 0] = 0.0
    out = analyse(num=num, den=den, cluster=cluster, n_clusters=n, families=[Family("g", group, [{"g": i} for i in range(3)])])
    zero = out["groups"][0]
    assert zero["value"] == 0.0 and zero["ci_low"] == 0.0
    assert zero["ci_high"] > 3.0 / den[group == 0].sum()  # at least the rule of three on words
    assert zero["p_value"] > 0.01
    assert zero["test_scale"] == "difference"


def test_insufficient_counts_only_clusters_with_a_denominator():
    # An FNR-like group: 15 people, only 3 of whom have an actual positive (den > 0).
    cluster = np.arange(30)
    den = np.zeros(30)
    den[[0, 1, 2]] = 1.0
    den[15:] = 1.0
    num = np.zeros(30)
    num[[0, 20, 21]] = 1.0
    group = (cluster >= 15).astype(np.int64)
    out = analyse(
        num=num, den=den, cluster=cluster, n_clusters=30, families=[Family("g", group, [{"g": 0}, {"g": 1}])],
        kind="binary", min_clusters=10, min_examples=5,
    )
    first = out["groups"][0]
    assert first["clusters"] == 3 and first["n_with_den"] == 3 and first["n"] == 15
    assert first["status"] == "insufficient" and first["p_value"] is None


def test_best_accounts_for_choosing_the_best():
    # Twenty equal groups: the best is chosen from the data, and nobody may be flagged for it.
    rng = np.random.default_rng(6)
    flags = 0
    for _ in range(10):
        num, den, cluster, group, n = _sim(rng, [0.15] * 20, speakers=15)
        out = analyse(
            num=num, den=den, cluster=cluster, n_clusters=n, compare="best",
            families=[Family("g", group, [{"g": i} for i in range(20)])], min_clusters=5,
        )
        flags += any(g["flagged"] for g in out["groups"])
        best = min(out["groups"], key=lambda g: g["value"])
        assert best["p_value"] == 1.0 and best["gap"] < 0
    assert flags <= 2
    # A truly worse group is still found.
    num, den, cluster, group, n = _sim(rng, [0.1] * 5 + [0.3], speakers=25)
    out = analyse(
        num=num, den=den, cluster=cluster, n_clusters=n, compare="best",
        families=[Family("g", group, [{"g": i} for i in range(6)])],
    )
    assert out["groups"][5]["flagged"] and out["groups"][5]["direction"] == "worse"


def test_two_groups_against_the_complement_count_once():
    rng = np.random.default_rng(7)
    num, den, cluster, group, n = _sim(rng, [0.1, 0.2])
    out = analyse(
        num=num, den=den, cluster=cluster, n_clusters=n, compare="complement",
        families=[Family("g", group, [{"g": 0}, {"g": 1}])],
    )
    assert out["n_tests"] == 1
    a, b = out["groups"]
    assert a["p_adjusted"] == b["p_adjusted"] == max(a["p_value"], b["p_value"])


def test_permutation_option_needs_nested_clusters_and_is_exact_in_spirit():
    rng = np.random.default_rng(8)
    num, den, cluster, group, n = _sim(rng, [0.15] * 4)
    fam = [Family("g", group, [{"g": i} for i in range(4)])]
    out = analyse(num=num, den=den, cluster=cluster, n_clusters=n, families=fam, test="permutation", n_perm=500, seed=1)
    assert {g["test"] for g in out["groups"]} == {"studentised permutation"}
    assert all(1 / 501 <= g["p_value"] <= 1 for g in out["groups"])
    # Crossed: one speaker in two groups.
    crossed = group.copy()
    crossed[cluster == 0] = np.where(np.arange((cluster == 0).sum()) % 2 == 0, 0, 1)
    fam = [Family("g", crossed, [{"g": i} for i in range(4)])]
    from groupwise import InputError

    with pytest.raises(InputError, match="several groups"):
        analyse(num=num, den=den, cluster=cluster, n_clusters=n, families=fam, test="permutation")


def test_value_interval_is_exact_poisson_without_clustering():
    # One word per cluster and no overdispersion: the interval is Garwood's on the counts.
    num = np.array([0.0] * 95 + [1.0] * 5)
    den = np.ones(100)
    s = cell_sums(np.arange(100), np.zeros(100, dtype=np.int64), num, den, 100, 1)
    low, high, _ = value_interval("count", s, 0.0, 0.95)
    z, t = sstats.norm.ppf(0.975), sstats.t.ppf(0.975, s.df()[0])
    n_eff = 100 * (z / t) ** 2 / max(s.ee[0] * s.leverage[0] / 100**2 / (0.05 / 100), 1.0)
    assert high[0] == pytest.approx(sstats.gamma.ppf(0.975, 0.05 * n_eff + 1) / n_eff, rel=1e-3)
    assert low[0] == pytest.approx(sstats.gamma.ppf(0.025, 0.05 * n_eff) / n_eff, rel=1e-3)


def test_t_contrast_and_fieller_agree_at_the_null():
    se, t, p, lo, hi = t_contrast(np.array([0.5, 0.1]), np.array([0.04, 0.04]), np.array([10, 10]), 0.95)
    assert (p < 0.05).tolist() == [(lo > 0)[0], (lo > 0)[1]]
    q = sstats.t.ppf(0.975, 10)
    rl, rh = fieller(np.array([2.0]), np.array([1.0]), np.array([0.1]), np.array([0.05]), np.array([0.0]), np.array([q]))
    # At r = 1 the Fieller statistic is the difference's t.
    t1 = (2.0 - 1.0) / np.sqrt(0.1 + 0.05)
    assert (rl[0] > 1) == (t1 > q)


def test_permutation_falls_back_to_t_with_a_note_when_it_cannot_reach_alpha():
    # 600 groups: Holm's first step needs p < 0.05 / 600, beyond 20,000 permutations.
    rng = np.random.default_rng(9)
    n_groups = 600
    cluster = np.repeat(np.arange(n_groups * 3), 4)
    group = cluster // 3
    den = np.full(cluster.size, 10.0)
    num = rng.poisson(1.0, cluster.size).astype(float)
    from groupwise import InputError

    with pytest.raises(InputError, match="permutations for a corrected p-value"):
        analyse(num=num, den=den, cluster=cluster, n_clusters=n_groups * 3, test="permutation",
                families=[Family("g", group, [{"g": i} for i in range(n_groups)])], min_clusters=2, min_examples=2)
    auto = analyse(num=num, den=den, cluster=cluster, n_clusters=n_groups * 3, test="auto",
                   families=[Family("g", group, [{"g": i} for i in range(n_groups)])], min_clusters=2, min_examples=2)
    assert auto["groups"][0]["test"] == "cluster-robust t"
