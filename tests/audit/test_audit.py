"""End-to-end tests of groupwise.audit on tabular metrics, cross-checked with fairlearn."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import polars as pl
import pytest
from fairlearn.metrics import MetricFrame, false_negative_rate, false_positive_rate, selection_rate
from sklearn.metrics import mean_absolute_error, mean_squared_error

import groupwise
from groupwise import InputError, ProvenanceError, audit, tabular_example


@pytest.fixture(scope="module")
def tab():
    return tabular_example(3000, seed=1)


def _error_rate(y_true, y_pred):
    return float(np.mean(np.asarray(y_true) != np.asarray(y_pred)))


FAIRLEARN = {
    "error_rate": _error_rate,
    "fpr": false_positive_rate,
    "fnr": false_negative_rate,
    "selection_rate": selection_rate,
    "mae": mean_absolute_error,
    "mse": mean_squared_error,
}


@pytest.mark.parametrize("metric", list(FAIRLEARN))
@pytest.mark.parametrize("by", [["sex"], ["race"], ["sex", "race"]])
def test_group_values_equal_fairlearn(tab, metric, by):
    result = audit(tab, metric=metric, by=",".join(by), cluster="household", n_boot=0)
    mf = MetricFrame(metrics=FAIRLEARN[metric], y_true=tab["y_true"], y_pred=tab["y_pred"], sensitive_features=tab[by])
    assert result.overall["value"] == pytest.approx(mf.overall)
    for g in result.groups:
        key = tuple(g["group"][c] for c in by)
        expected = mf.by_group.loc[key if len(by) > 1 else key[0]]
        assert g["value"] == pytest.approx(expected)
    assert len(result.groups) == len(mf.by_group)


def test_json_has_the_documented_shape(tab, tmp_path):
    result = audit(tab, metric="fnr", by=["sex", "race"], cluster="household", n_boot=200, provenance={"sex": "self_reported"})
    path = tmp_path / "out.json"
    result.to_json(path)
    data = json.loads(path.read_text())
    assert data["metric"] == "fnr"
    assert set(data["overall"]) >= {"value", "ci_low", "ci_high", "n", "clusters"}
    keys = {"family", "group", "n", "clusters", "value", "ci_low", "ci_high", "gap", "gap_ci_low",
            "gap_ci_high", "p_value", "p_adjusted", "flagged", "status"}
    for g in data["groups"]:
        assert keys <= set(g)
    assert data["groups"][0]["family"] == "sex"
    assert data["groups"][0]["group"] == {"sex": "female"}
    assert data["settings"]["n_boot"] == 200 and data["settings"]["correction"] == "holm"
    assert data["provenance"]["sex"] == {"provenance": "self_reported", "protected": True}
    assert data["provenance"]["race"]["provenance"] == "unspecified"


def test_known_disparity_is_flagged(tab):
    result = audit(tab, metric="fnr", groups=["age >= 60"], by="sex", cluster="household", compare="complement")
    older = next(g for g in result.groups if g["family"] == "age >= 60")
    assert older["flagged"] and older["direction"] == "worse"
    assert older["group"] == {"expression": "age >= 60"}
    assert not any(g["flagged"] for g in result.groups if g["family"] == "sex")


def test_expression_group_equals_query(tab):
    result = audit(tab, metric="error_rate", groups='age < 30 and sex == "male"', n_boot=0)
    sub = tab.query('age < 30 and sex == "male"')
    g = result.groups[0]
    assert g["n"] == len(sub)
    assert g["value"] == pytest.approx(np.mean(sub.y_true != sub.y_pred))


def test_input_kinds_give_the_same_result(tab, tmp_path):
    base = audit(tab, metric="error_rate", by="race", cluster="household", n_boot=100).to_dict()
    tab.to_csv(tmp_path / "t.csv", index=False)
    tab.to_parquet(tmp_path / "t.parquet")
    tab.to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    tab.to_csv(tmp_path / "t.tsv", sep="\t", index=False)
    for source in (pl.from_pandas(tab), tmp_path / "t.csv", str(tmp_path / "t.parquet"), tmp_path / "t.jsonl", tmp_path / "t.tsv"):
        other = audit(source, metric="error_rate", by="race", cluster="household", n_boot=100).to_dict()
        assert other["groups"] == base["groups"]
        assert other["overall"] == base["overall"]


def test_a_polars_series_is_not_a_table(tab):
    with pytest.raises(InputError, match="data is a Series, not a table"):
        audit(pl.Series(tab["race"]), metric="error_rate", by="race")


def test_a_parquet_file_is_read_for_the_columns_the_audit_uses(tab, tmp_path):
    from groupwise.audit._audit import _columns_used
    from groupwise.audit._metrics import MetricColumns
    from groupwise.audit._prepare import open_data

    wide = tab.assign(notes=[f"free text {i}" for i in range(len(tab))], blob=[b"\x00" * 8] * len(tab))
    path = tmp_path / "wide.parquet"
    wide.to_parquet(path)
    used = _columns_used("error_rate", "race", ["age >= 60"], "household", "sex", None, MetricColumns())
    assert used == ["race", "age", "household", "sex", "y_true", "y_pred"]
    assert list(open_data(path, columns=used).frame.columns) == ["household", "age", "sex", "race", "y_true", "y_pred"]
    kwargs = {"metric": "error_rate", "by": "race", "groups": ["age >= 60"], "cluster": "household", "n_boot": 100}
    assert audit(path, **kwargs).to_dict()["groups"] == audit(tab, **kwargs).to_dict()["groups"]
    # A column the file lacks: everything is read, and the message lists every column.
    assert list(open_data(path, columns=["race", "nope"]).frame.columns) == list(wide.columns)
    with pytest.raises(InputError, match="blob, household") as err:
        audit(path, metric="error_rate", by="race", cluster="nope")
    assert "notes" in str(err.value)
    # A column pandas reads as the index is not a column either.
    tab.set_index("household").to_parquet(tmp_path / "indexed.parquet")
    with pytest.raises(InputError, match="age, race, sex, y_pred, y_true"):
        audit(tmp_path / "indexed.parquet", metric="error_rate", by="race", cluster="household")
    # Options given as one-shot iterators are read once for the columns and once for the audit.
    once = audit(path, metric="error_rate", by=iter(["race"]), groups=(g for g in ["age >= 60"]), cluster="household",
                 adjust=iter(["age"]), n_boot=100)
    assert [g["group"] for g in once.groups] == [g["group"] for g in audit(path, **kwargs, adjust=["age"]).groups]
    assert once.settings.get("adjust") == ["age"]
    # Options that do not parse: everything is read and the fault is reported as before.
    assert _columns_used("error_rate", "race", ["age >>> 60"], "household", None, None, MetricColumns()) is None


def test_to_frame_is_tidy(tab):
    frame = audit(tab, metric="error_rate", by=["sex", "sex,race"], n_boot=50).to_frame()
    assert len(frame) == 2 + 8
    assert {"family", "label", "sex", "race", "value", "ci_low", "p_adjusted"} <= set(frame.columns)
    assert frame.loc[frame.family == "sex", "race"].isna().all()


def test_several_families_are_corrected_together(tab):
    holm = audit(tab, metric="fnr", by=["sex", "race"], n_boot=200)
    assert holm.settings["n_tested"] == 6
    raw = [g["p_value"] for g in holm.groups]
    assert [g["p_adjusted"] for g in holm.groups] == pytest.approx(groupwise.audit._stats.holm(np.array(raw)).tolist())


def test_missing_group_values_are_left_out_and_counted(tab):
    df = tab.copy()
    df["race"] = df["race"].astype(object)
    df.loc[:9, "race"] = None
    result = audit(df, metric="error_rate", by="race", n_boot=0)
    assert sum(g["n"] for g in result.groups) == len(df) - 10
    assert result.settings["missing_group_values"] == {"race": 10}


def test_imputed_protected_attribute_is_refused(tab):
    with pytest.raises(ProvenanceError, match="imputed"):
        audit(tab, metric="error_rate", by="race", provenance={"race": "imputed"}, n_boot=0)
    ok = audit(tab, metric="error_rate", by="race", provenance={"race": "imputed"}, allow_imputed=True, n_boot=0)
    assert ok.provenance["race"]["provenance"] == "imputed"
    # Not protected: an imputed noise label is fine.
    df = tab.assign(noise=np.where(tab.age > 50, "loud", "quiet"))
    audit(df, metric="error_rate", by="noise", provenance={"noise": "imputed"}, n_boot=0)


def test_ratio_metric_and_pos_label():
    df = pd.DataFrame({"num": [1, 2, 0, 4], "den": [10, 10, 5, 5], "g": ["a", "a", "b", "b"]})
    r = audit(df, metric="ratio", by="g", n_boot=0, min_examples=1, min_clusters=1)
    assert [g["value"] for g in r.groups] == pytest.approx([0.15, 0.4])
    df2 = pd.DataFrame({"y_true": ["yes", "no", "yes", "no"], "y_pred": ["yes", "yes", "no", "no"], "g": ["a", "a", "b", "b"]})
    r2 = audit(df2, metric="fpr", by="g", pos_label="yes", n_boot=0, min_examples=1, min_clusters=1)
    assert [g["value"] for g in r2.groups] == [1.0, 0.0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"by": "nope"}, "group column 'nope' is not in the data"),
        ({"by": "sex", "cluster": "nope"}, "cluster column 'nope'"),
        ({}, "no groups were given"),
        ({"by": "sex", "metric": "auc"}, "metric 'auc' is not known"),
        ({"by": "sex", "n_boot": -1}, "'n_boot' parameter"),
        ({"by": "sex", "alpha": 1.5}, "'alpha' parameter"),
        ({"by": "sex", "compare": "worst"}, "'compare' parameter"),
        ({"by": "sex", "correction": "bonferroni"}, "'correction' parameter"),
        ({"groups": "age >> 3"}, "not allowed|not supported|operator"),
        ({"groups": "agee > 3"}, "agee"),
        ({"by": "sex", "metric": "wer"}, "reference column 'reference'"),
        ({"by": "sex", "metric": "mae", "y_true": "sex"}, "holds text"),
        ({"by": "sex", "metric": "fpr", "pos_label": 7}, "positive label 7 never occurs"),
    ],
)
def test_bad_input_names_the_problem_and_the_fix(tab, kwargs, message):
    kwargs = {"metric": "error_rate", **kwargs}
    with pytest.raises(groupwise.GroupwiseError, match=message) as info:
        audit(tab, **kwargs)
    assert "Fix:" in str(info.value)


def test_cluster_column_with_one_value(tab):
    with pytest.raises(InputError, match="single value"):
        audit(tab.assign(spk="x"), metric="error_rate", by="sex", cluster="spk")


def test_empty_data_and_missing_labels(tab):
    with pytest.raises(InputError, match="no rows"):
        audit(tab.iloc[:0], metric="error_rate", by="sex")
    df = tab.copy()
    df["y_pred"] = df["y_pred"].astype(float)
    df.loc[[3, 5], "y_pred"] = np.nan
    with pytest.raises(InputError, match="missing labels") as info:
        audit(df, metric="error_rate", by="sex")
    assert info.value.rows == [3, 5]


@pytest.mark.parametrize("alphabet", ["ascii", "unicode"])
def test_group_wer_and_edit_counts_equal_jiwer_and_fairlearn(alphabet):
    import jiwer

    df = groupwise.speech_example(3000, n_speakers=120, seed=11)
    if alphabet == "unicode":
        # Non-ASCII words: accents, CJK and Cyrillic, mapped one-to-one from the vocabulary.
        extra = ["café", "naïve", "größe", "東京", "очень", "ñandú", "İstanbul", "ﬁnal"]
        words = sorted({w for text in df.reference for w in text.split()})
        mapping = {w: f"{extra[i % len(extra)]}{i}" for i, w in enumerate(words)}
        for column in ("reference", "hypothesis"):
            df[column] = [" ".join(mapping.get(w, w) for w in text.split()) for text in df[column]]
    result = audit(df, metric="wer", by=["accent", "accent,noise"], normalize="none", n_boot=0)

    def wer(y_true, y_pred):
        return jiwer.wer(list(y_true), list(y_pred))

    for family in (["accent"], ["accent", "noise"]):
        mf = MetricFrame(metrics=wer, y_true=df["reference"], y_pred=df["hypothesis"], sensitive_features=df[family])
        assert result.overall["value"] == pytest.approx(mf.overall)
        for g in result.groups:
            if g["family"] != ",".join(family):
                continue
            key = tuple(g["group"][c] for c in family)
            assert g["value"] == pytest.approx(mf.by_group.loc[key if len(family) > 1 else key[0]])
            rows = np.logical_and.reduce([df[c].astype(str) == str(g["group"][c]) for c in family])
            counts = jiwer.process_words(df.reference[rows].tolist(), df.hypothesis[rows].tolist())
            assert (g["substitutions"], g["deletions"], g["insertions"], g["hits"]) == (
                counts.substitutions, counts.deletions, counts.insertions, counts.hits,
            )


def test_named_reference_group(tab):
    result = audit(tab, metric="fnr", by=["race", "race,sex", "sex"], cluster="household", compare="race=white")
    by_label = {(g["family"], tuple(sorted(g["group"].items()))): g for g in result.groups}
    white = by_label[("race", (("race", "white"),))]
    assert white["status"] == "reference" and white["p_value"] is None
    black = by_label[("race", (("race", "black"),))]
    assert black["reference_value"] == pytest.approx(white["value"])
    # Inside race,sex the reference is white of the same sex.
    bf = by_label[("race,sex", (("race", "black"), ("sex", "female")))]
    wf = by_label[("race,sex", (("race", "white"), ("sex", "female")))]
    assert bf["reference_value"] == pytest.approx(wf["value"]) and wf["status"] == "reference"
    assert all(g["status"] == "no_reference" for g in result.groups if g["family"] == "sex")
    with pytest.raises(InputError, match="no row has race equal to 'purple'"):
        audit(tab, metric="fnr", by="race", compare="race=purple")
    with pytest.raises(InputError, match="in no --by family"):
        audit(tab, metric="fnr", by="sex", compare="race=white")


def test_named_reference_false_flags_under_the_null():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from designs import nested

    flags = 0
    for rep in range(60):
        frame, _ = nested(np.random.default_rng(rep), rates=[0.15] * 6, speakers=15)
        result = audit(frame, metric="ratio", by="accent", cluster="speaker", compare="accent=0", min_clusters=5)
        flags += any(g["flagged"] for g in result.groups)
    assert flags / 60 <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / 60)


def test_within_strata_one_correction(tab):
    two = pd.concat([tab.assign(system="a"), tab.assign(system="b")], ignore_index=True)
    result = audit(two, metric="fnr", by="race", cluster="household", within="system", compare="complement")
    assert {g["group"]["system"] for g in result.groups} == {"a", "b"}
    assert all(" | system=" in g["family"] for g in result.groups)
    single = audit(tab, metric="fnr", by="race", cluster="household", compare="complement")
    # Stratum "a" is the whole original table: the same values and raw p-values ...
    a = [g for g in result.groups if g["group"]["system"] == "a"]
    assert [g["value"] for g in a] == pytest.approx([g["value"] for g in single.groups])
    assert [g["p_value"] for g in a] == pytest.approx([g["p_value"] for g in single.groups])
    # ... corrected over both strata: twice the tests.
    assert result.settings["n_tests_corrected"] == 2 * single.settings["n_tests_corrected"]
    assert [s["system"] for s in result.settings["strata"]] == ["a", "b"]
    with pytest.raises(InputError, match="one value"):
        audit(tab.assign(system="a"), metric="fnr", by="race", within="system")


def test_permutation_option_refusals_and_notes(tab):
    with pytest.raises(InputError, match="compare='best'"):
        audit(tab, metric="fnr", by="race", compare="best", test="permutation")
    with pytest.raises(InputError, match="no longer offered"):
        audit(tab, metric="fnr", by="race", test="bootstrap")
    wide = audit(tab, metric="error_rate", by="race", test="permutation", n_perm=200)
    assert {g["test"] for g in wide.groups if g["status"] == "tested"} == {"studentised permutation"}
    assert wide.settings["n_perm"] == 200


def test_wer_on_empty_references_names_the_reference_column():
    df = pd.DataFrame({"reference": [""] * 40, "hypothesis": ["a b"] * 40, "accent": ["x", "y"] * 20})
    with pytest.raises(InputError, match="--reference column"):
        audit(df, by="accent")


def _confounded(seed):
    """Accent a0 is recorded mostly in babble, which doubles errors; accents themselves are equal."""
    rng = np.random.default_rng(seed)
    rows = []
    for a in range(4):
        for s in range(15):
            eff = np.exp(rng.normal(0, 0.4) - 0.08)
            for u in range(8):
                noisy = rng.random() < (0.8 if a == 0 else 0.2)
                words = int(rng.integers(5, 15))
                rows.append({"accent": f"a{a}", "speaker": f"{a}-{s}", "noise": "babble" if noisy else "clean",
                             "length": words, "num": rng.poisson(words * 0.1 * eff * (2.0 if noisy else 1.0)), "den": words})
    return pd.DataFrame(rows)


def test_adjusted_rate_ratios_remove_a_confounder():
    raw_ratio, adj_ratio, covered, total = [], [], 0, 0
    for seed in range(15):
        r = audit(_confounded(seed), metric="ratio", by="accent", cluster="speaker", adjust="noise")
        raw_ratio.append(r.groups[0]["ratio"])
        adj_ratio.append(r.groups[0]["adjusted_ratio"])
        for g in r.groups:
            covered += g["adjusted_ci_low"] <= 1 <= g["adjusted_ci_high"]
            total += 1
        assert r.settings["adjust"] == ["noise"]
    assert np.mean(raw_ratio) > 1.2  # the raw gap is confounded with noise
    assert abs(np.mean(adj_ratio) - 1) < 0.06
    assert covered / total >= 0.9


def test_adjust_bad_input():
    df = _confounded(0)
    with pytest.raises(InputError, match="constant"):
        audit(df.assign(length=5), metric="ratio", by="accent", cluster="speaker", adjust="length")
    with pytest.raises(InputError, match="one value"):
        audit(df.assign(noise="clean"), metric="ratio", by="accent", cluster="speaker", adjust="noise")
    with pytest.raises(InputError, match="collinear"):
        audit(df.assign(region=df.accent), metric="ratio", by="accent", cluster="speaker", adjust="region")
    with pytest.raises(InputError, match="covariate column 'nope'|'nope'"):
        audit(df, metric="ratio", by="accent", cluster="speaker", adjust="nope")
