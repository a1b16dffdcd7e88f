"""Exports checked by their publishers' validators: MCT and EEE schemas, huggingface_hub's parser."""

from __future__ import annotations

import copy
import json

import pytest
from cardfixtures import *  # noqa: F403 - shared session fixtures

from groupwise.card._schema import schema_errors, vendored_schema


def _n_cells(card):
    n = 1 + sum(1 for g in card["fairness"]["groups"] if g["value"] is not None)
    if card["robustness"]:
        n += sum(1 for c in card["robustness"]["conditions"] for g in c["groups"] if g["value"] is not None)
    return n


def test_vendored_schemas_are_the_published_ones():
    mct, eee = vendored_schema("mct"), vendored_schema("eee")
    assert mct["$id"] == "https://modelcards.withgoogle.com/v0.0.1/model_card.schema.json"
    assert "performance_metric" in mct["definitions"]
    assert eee["version"] == "0.3.0" and "evaluation_results" in eee["required"]


def test_model_card_toolkit(v1_card):
    doc = json.loads((v1_card / "exports" / "model_card_toolkit.json").read_text())
    assert schema_errors(doc, vendored_schema("mct")) == []
    card = json.loads((v1_card / "card.json").read_text())
    metrics = doc["quantitative_analysis"]["performance_metrics"]
    by_slice = {m.get("slice", "overall"): m for m in metrics if m["type"] == "wer"}
    g = next(g for g in card["fairness"]["groups"] if g["label"] == "accent=en-029")
    assert float(by_slice["accent=en-029"]["value"]) == pytest.approx(g["value"], rel=1e-5)
    assert float(by_slice["accent=en-029"]["confidence_interval"]["lower_bound"]) == pytest.approx(g["ci_low"], rel=1e-5)
    thin = [m for m in metrics if m.get("slice") == "gender=nonbinary"]
    assert thin and thin[0]["type"] == "wer (insufficient data)" and "confidence_interval" not in thin[0]
    assert any(m["type"] == "change in wer from baseline" and "confidence_interval" in m for m in metrics)
    # The validator is real: a wrong type is caught.
    broken = copy.deepcopy(doc)
    broken["quantitative_analysis"]["performance_metrics"][0]["value"] = 0.1
    broken["unexpected"] = 1
    assert len(schema_errors(broken, vendored_schema("mct"))) == 2


def test_hugging_face_model_index(v1_card):
    from huggingface_hub import ModelCard, metadata_load
    from huggingface_hub.repocard_data import model_index_to_eval_results

    path = v1_card / "exports" / "README.md"
    meta = metadata_load(path)
    name, results = model_index_to_eval_results(meta["model-index"])
    card = json.loads((v1_card / "card.json").read_text())
    assert name == "Clinical dictation ASR 2.1"
    assert len(results) == _n_cells(card)
    hi = [r for r in results if r.dataset_config == "accent=hi"]
    assert len(hi) == 1 and hi[0].metric_type == "wer" and hi[0].task_type == "automatic-speech-recognition"
    g = next(g for g in card["fairness"]["groups"] if g["label"] == "accent=hi")
    assert hi[0].metric_value == g["value"] and hi[0].metric_args["ci_low"] == g["ci_low"]
    conditions = [r for r in results if r.dataset_args.get("condition")]
    assert len(conditions) == len(card["robustness"]["conditions"][0]["groups"])
    data = ModelCard.load(path).data
    assert len(data.eval_results) == len(results)


def test_every_eval_ever(v1_card):
    record = json.loads((v1_card / "exports" / "every_eval_ever.json").read_text())
    assert schema_errors(record, vendored_schema("eee")) == []
    card = json.loads((v1_card / "card.json").read_text())
    assert len(record["evaluation_results"]) == _n_cells(card)
    res = {r["score_details"]["details"]["slice"]: r for r in record["evaluation_results"]}
    g = next(g for g in card["fairness"]["groups"] if g["label"] == "accent=vi")
    unc = res["accent=vi"]["score_details"]["uncertainty"]
    assert {k: unc["confidence_interval"][k] for k in ("lower", "upper", "confidence_level")} == {
        "lower": g["ci_low"], "upper": g["ci_high"], "confidence_level": 0.95}
    assert unc["confidence_interval"]["method"] == card["methodology"]["intervals"]
    assert unc["standard_error"]["value"] == pytest.approx(g["summary"]["se"]) and unc["num_samples"] == g["n"]
    assert "confidence_interval" not in res["gender=nonbinary"]["score_details"].get("uncertainty", {})
    assert res["gender=nonbinary"]["score_details"]["details"]["status"] == "insufficient"
    assert res["accent=vi"]["metric_config"]["lower_is_better"] is True
    broken = copy.deepcopy(record)
    del broken["evaluation_results"][0]["metric_config"]["lower_is_better"]
    assert schema_errors(broken, vendored_schema("eee"))


def test_tabular_exports(tabular, tmp_path):
    from huggingface_hub import metadata_load
    from huggingface_hub.repocard_data import model_index_to_eval_results

    from groupwise.card import build

    out = build(tabular / "card.yaml", tabular / "audit.json", out=tmp_path / "card", export=["mct", "hf", "eee"])
    assert schema_errors(json.loads((out / "exports" / "model_card_toolkit.json").read_text()), vendored_schema("mct")) == []
    record = json.loads((out / "exports" / "every_eval_ever.json").read_text())
    assert schema_errors(record, vendored_schema("eee")) == []
    assert record["evaluation_results"][0]["metric_config"]["max_score"] == 1
    _, results = model_index_to_eval_results(metadata_load(out / "exports" / "README.md")["model-index"])
    assert {r.task_type for r in results} == {"tabular-classification"}
    assert any(r.dataset_config == "age >= 60" for r in results)
