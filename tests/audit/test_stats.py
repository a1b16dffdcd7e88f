"""Unit tests of the statistical core: corrections, weights and the bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sstats

from groupwise.audit._stats import Family, adjust, analyse, benjamini_hochberg, bootstrap_weights, holm


def test_holm_matches_definition():
    rng = np.random.default_rng(0)
    for _ in range(50):
        p = rng.random(rng.integers(1, 30)) ** 3
        m = p.size
        order = np.argsort(p)
        expected = np.empty(m)
        running = 0.0
        for rank, i in enumerate(order):
            running = max(running, min(1.0, (m - rank) * p[i]))
            expected[i] = running
        np.testing.assert_allclose(holm(p), expected)


def test_bh_matches_scipy():
    rng = np.random.default_rng(1)
    for _ in range(50):
        p = rng.random(rng.integers(1, 40)) ** 2
        np.testing.assert_allclose(benjamini_hochberg(p), sstats.false_discovery_control(p, method="bh"))


def test_adjust_none_and_empty():
    p = np.array([0.2, 0.01])
    np.testing.assert_array_equal(adjust(p, "none"), p)
    assert holm(np.array([])).size == 0
    assert benjamini_hochberg(np.array([])).size == 0


def test_bootstrap_weights_are_multinomial():
    w = bootstrap_weights(np.random.default_rng(2), 4000, 7)
    assert np.all(w.sum(axis=1) == 7)
    # Each cluster is drawn Binomial(7, 1/7) times: mean 1, variance 6/7.
    assert abs(w.mean() - 1.0) < 0.02
    assert abs(w.var() - 6 / 7) < 0.03


def _data(n_clusters=60, per=8, seed=0):
    rng = np.random.default_rng(seed)
    cluster = np.repeat(np.arange(n_clusters), per)
    den = rng.integers(5, 15, cluster.size).astype(float)
    num = rng.binomial(den.astype(int), 0.1 + 0.1 * (cluster % 2)).astype(float)
    return num, den, cluster


def test_point_values_are_ratios_of_sums():
    num, den, cluster = _data()
    fam = Family("parity", (cluster % 2).astype(np.int64), [{"parity": 0}, {"parity": 1}])
    out = analyse(num=num, den=den, cluster=cluster, n_clusters=60, families=[fam], n_boot=50)
    assert out["overall"]["value"] == pytest.approx(num.sum() / den.sum())
    for code, g in enumerate(out["groups"]):
        m = fam.codes == code
        assert g["value"] == pytest.approx(num[m].sum() / den[m].sum())
        assert g["clusters"] == 30 and g["n"] == 240
        assert g["ci_low"] < g["value"] < g["ci_high"]


def test_same_seed_same_numbers_and_seed_matters():
    num, den, cluster = _data()
    fam = Family("parity", (cluster % 2).astype(np.int64), [{"parity": 0}, {"parity": 1}])
    a = analyse(num=num, den=den, cluster=cluster, n_clusters=60, families=[fam], n_boot=200, seed=5)
    b = analyse(num=num, den=den, cluster=cluster, n_clusters=60, families=[fam], n_boot=200, seed=5)
    c = analyse(num=num, den=den, cluster=cluster, n_clusters=60, families=[fam], n_boot=200, seed=6)
    assert a == b
    assert a["groups"][0]["ci_low"] != c["groups"][0]["ci_low"]


def test_cluster_bootstrap_is_wider_than_row_bootstrap_with_correlated_rows():
    rng = np.random.default_rng(4)
    n_clusters, per = 40, 25
    cluster = np.repeat(np.arange(n_clusters), per)
    rate = np.exp(rng.normal(0, 0.8, n_clusters))[cluster] * 0.1
    den = np.full(cluster.size, 10.0)
    num = rng.binomial(10, np.clip(rate, 0, 1)).astype(float)
    fam = Family("all", np.zeros(cluster.size, dtype=np.int64), [{"all": 1}])
    clustered = analyse(num=num, den=den, cluster=cluster, n_clusters=n_clusters, families=[fam], n_boot=400, min_clusters=2)
    rows = analyse(num=num, den=den, cluster=np.arange(cluster.size), n_clusters=cluster.size, families=[fam], n_boot=400, min_clusters=2)
    width = lambda r: r["groups"][0]["ci_high"] - r["groups"][0]["ci_low"]  # noqa: E731
    assert width(clustered) > 2 * width(rows)


def test_insufficient_and_undefined_cells_are_not_tested():
    num, den, cluster = _data()
    codes = np.where(cluster < 3, 0, 1).astype(np.int64)
    den2 = den.copy()
    fam = Family("g", codes, [{"g": "small"}, {"g": "big"}])
    out = analyse(num=num, den=den2, cluster=cluster, n_clusters=60, families=[fam], n_boot=100, min_clusters=10)
    small, big = out["groups"]
    assert small["status"] == "insufficient"
    assert small["ci_low"] is None and small["p_value"] is None and not small["flagged"]
    assert big["status"] == "tested" and big["p_value"] is not None
    zero_den = np.where(codes == 0, 0.0, den)
    out = analyse(num=np.where(codes == 0, 0.0, num), den=zero_den, cluster=cluster, n_clusters=60, families=[fam], n_boot=100, min_clusters=1, min_examples=1)
    assert out["groups"][0]["status"] == "undefined" and out["groups"][0]["value"] is None


def test_compare_best_and_complement():
    num, den, cluster = _data()
    fam = Family("parity", (cluster % 2).astype(np.int64), [{"parity": 0}, {"parity": 1}])
    best = analyse(num=num, den=den, cluster=cluster, n_clusters=60, families=[fam], n_boot=300, compare="best")
    g0, g1 = best["groups"]
    assert g0["status"] == "reference" and g0["gap"] == 0
    assert g1["gap"] == pytest.approx(g1["value"] - g0["value"])
    assert g1["flagged"] and g1["direction"] == "worse"
    comp = analyse(num=num, den=den, cluster=cluster, n_clusters=60, families=[fam], n_boot=300, compare="complement")
    c0, c1 = comp["groups"]
    assert c0["gap"] == pytest.approx(-c1["gap"])
    assert c0["reference_value"] == pytest.approx(c1["value"])


def test_ratio_interval_and_p_value_agree():
    num, den, cluster = _data(seed=9)
    fam = Family("c", (cluster % 6).astype(np.int64), [{"c": i} for i in range(6)])
    out = analyse(num=num, den=den, cluster=cluster, n_clusters=60, families=[fam], n_boot=500, correction="none", min_clusters=5, test="bootstrap")
    for g in out["groups"]:
        assert g["test"] == "bootstrap" and g["test_scale"] == "log"
        excludes_one = g["ratio_ci_low"] > 1 or g["ratio_ci_high"] < 1
        assert excludes_one == (g["p_value"] < 0.05)
        assert g["gap_ci_low"] <= g["gap"] <= g["gap_ci_high"]


def test_permutation_test_is_used_for_nested_families_only():
    num, den, cluster = _data()
    nested = Family("parity", (cluster % 2).astype(np.int64), [{"parity": 0}, {"parity": 1}])
    rows = np.arange(cluster.size)
    crossed = Family("row", (rows % 2).astype(np.int64), [{"row": 0}, {"row": 1}])
    out = analyse(num=num, den=den, cluster=cluster, n_clusters=60, families=[nested, crossed], n_boot=200)
    assert [g["test"] for g in out["groups"]] == ["permutation"] * 2 + ["bootstrap"] * 2
    assert out["n_perm"] >= 1000
    assert out["groups"][1]["flagged"]  # odd clusters really are worse
    with pytest.raises(Exception, match="nested"):
        analyse(num=num, den=den, cluster=cluster, n_clusters=60, families=[crossed], n_boot=50, test="permutation")


def test_permutation_p_values_are_exact_under_exchangeability():
    # Under the null the p-values of one group are (discretely) uniform.
    rng = np.random.default_rng(3)
    ps = []
    for rep in range(300):
        cluster = np.repeat(np.arange(30), 4)
        den = np.full(cluster.size, 10.0)
        num = rng.binomial(10, np.exp(rng.normal(0, 0.8, 30))[cluster] * 0.05).astype(float)
        fam = Family("g", (np.arange(30) % 3)[cluster].astype(np.int64), [{"g": i} for i in range(3)])
        out = analyse(num=num, den=den, cluster=cluster, n_clusters=30, families=[fam], n_boot=20,
                      n_perm=199, seed=rep, min_clusters=2, test="permutation")
        ps.append(out["groups"][0]["p_value"])
    ps = np.array(ps)
    assert ps.min() >= 1 / 200
    for level in (0.05, 0.2, 0.5):
        assert abs((ps <= level).mean() - level) < 3 * np.sqrt(level * (1 - level) / 300) + 0.01
