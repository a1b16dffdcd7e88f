"""Building a card: every number comes from the inputs, every input is hashed, the schema holds."""

from __future__ import annotations

import hashlib
import json

import pytest
import yaml
from cardfixtures import *  # noqa: F403 - shared session fixtures
from cardutil import leftovers, run_cli

from groupwise.card import build, schema
from groupwise.card._schema import schema_errors


def _card(folder):
    return json.loads((folder / "card.json").read_text(encoding="utf-8"))


def test_card_files_and_schema(v1_card):
    names = sorted(p.relative_to(v1_card).as_posix() for p in v1_card.rglob("*") if p.is_file())
    assert names == ["card.html", "card.json", "card.md", "exports/README.md", "exports/every_eval_ever.json", "exports/model_card_toolkit.json"]
    card = _card(v1_card)
    assert schema_errors(card, schema()) == []
    assert card["schema_version"].startswith("1.")


def test_every_group_number_is_copied_not_recomputed(v1, v1_card):
    audit = json.loads((v1 / "audit.json").read_text())
    card = _card(v1_card)
    assert len(card["fairness"]["groups"]) == len(audit["groups"])
    for src, cell in zip(audit["groups"], card["fairness"]["groups"]):
        for key, value in src.items():
            assert cell[key] == value, key
    assert {k: card["overall"][k] for k in audit["overall"]} == audit["overall"]
    last = json.loads((v1 / "lastmile.json").read_text())
    cond = card["robustness"]["conditions"][0]
    assert cond["recipe"] == last["conditions"][0]["condition"]
    assert cond["name"] == "hospital hum at 1200 Hz"
    for src, cell in zip(last["conditions"][0]["groups"], cond["groups"]):
        assert all(cell[k] == v for k, v in src.items())


def test_summary_holds_the_audits_standard_errors(v1, v1_card):
    """The stored standard error is the audit's own (what the diff relies on), its interval's width otherwise."""
    import math

    from scipy import stats

    card = _card(v1_card)
    audit_groups = {json.dumps(g["group"], sort_keys=True): g for g in json.loads((v1 / "audit.json").read_text())["groups"]}
    z = stats.norm.ppf(0.975)
    checked = 0
    for g in card["fairness"]["groups"]:
        s = g["summary"]
        if s is None:
            assert g["status"] == "insufficient" and g["ci_low"] is None
            continue
        source = audit_groups[json.dumps(g["group"], sort_keys=True)]
        if source.get("se_value") is not None:
            assert s["se"] == pytest.approx(source["se_value"]) and s["df"] == pytest.approx(source["df_value"])
            if g["value"] > 0:
                assert s["se_log"] == pytest.approx(source["se_value"] / g["value"])
        else:
            assert s["se"] == pytest.approx((g["ci_high"] - g["ci_low"]) / (2 * z))
            if g["ci_low"] > 0:
                assert s["se_log"] == pytest.approx((math.log(g["ci_high"]) - math.log(g["ci_low"])) / (2 * z))
        checked += 1
    assert checked >= 8
    assert card["run"]["per_cluster_data"] is False
    assert "speaker" not in json.dumps(card["fairness"]["groups"][0]["group"])


def test_hashes_seeds_and_settings(v1, v1_card):
    card = _card(v1_card)
    inputs = {i["role"]: i for i in card["run"]["inputs"]}
    assert set(inputs) == {"about", "audit", "lastmile", "coverage"}
    for role, name in (("about", "card.yaml"), ("audit", "audit.json"), ("lastmile", "lastmile.json"), ("coverage", "coverage.json")):
        assert inputs[role]["sha256"] == hashlib.sha256((v1 / name).read_bytes()).hexdigest()
    assert card["run"]["seeds"] == {"audit": 11, "lastmile": 11}
    assert card["run"]["settings"]["audit"]["n_boot"] == 300
    assert card["run"]["tool_version"] not in ("", None)
    html = (v1_card / "card.html").read_text()
    assert inputs["audit"]["sha256"] in html


def test_insufficient_and_provenance_are_visible(v1_card):
    card = _card(v1_card)
    thin = [g for g in card["fairness"]["groups"] if g["status"] == "insufficient"]
    assert [g["label"] for g in thin] == ["gender=nonbinary"]
    assert thin[0]["summary"] is None and thin[0]["ci_low"] is None
    assert card["provenance"]["accent"]["synthetic"] and card["provenance"]["gender"]["self_reported"]
    html = (v1_card / "card.html").read_text()
    row = html[html.index("<td>gender=nonbinary</td>"):]
    row = row[: row.index("</tr>")]
    assert "insufficient" in row and "—" in row
    assert "class='tag synthetic'" in html and "class='tag self_reported'" in html
    assert "The evaluation data are synthetic." in html
    md = (v1_card / "card.md").read_text()
    for heading in ("## Overview", "## Intended use cases and limitations", "### Test-driven methodology", "### Fairness",
                    "### Robustness", "### Coverage", "## Deployment and performance best practices", "## Glossary"):
        assert heading in md
    assert "| gender=nonbinary |" in md


def test_unknown_fields_are_carried_through(v1, tmp_path):
    audit = json.loads((v1 / "audit.json").read_text())
    audit["groups"][0]["ci_method"] = "studentized bootstrap"
    audit["groups"][0]["status"] = "tested_new_kind"
    audit["new_top_level"] = {"x": 1}
    (tmp_path / "audit.json").write_text(json.dumps(audit))
    card = _card(build(v1 / "card.yaml", tmp_path / "audit.json", out=tmp_path / "card"))
    assert card["fairness"]["groups"][0]["ci_method"] == "studentized bootstrap"
    assert card["fairness"]["groups"][0]["status"] == "tested_new_kind"
    assert card["robustness"] is None and card["coverage"] is None


def test_tabular_card_from_the_cli(tabular, tmp_path):
    out = tmp_path / "card"
    res = run_cli("card", "build", "--about", str(tabular / "card.yaml"), "--audit", str(tabular / "audit.json"),
                  "--export", "mct,hf,eee", "-o", str(out))
    assert res.returncode == 0, res.stderr
    card = _card(out)
    assert card["metric"]["name"] == "fnr"
    assert [g["label"] for g in card["fairness"]["groups"] if g["family"] == "age >= 60"] == ["age >= 60"]
    assert "against the rest of the data" in (out / "card.md").read_text() or card["methodology"]["reference"] == "the rest of the data"
    assert leftovers(tmp_path) == []


def test_rebuild_replaces_the_card_whole(v1, tmp_path):
    out = tmp_path / "card"
    build(v1 / "card.yaml", v1 / "audit.json", out=out, export="mct")
    assert (out / "exports" / "model_card_toolkit.json").exists()
    build(v1 / "card.yaml", v1 / "audit.json", out=out)
    assert not (out / "exports").exists()
    assert leftovers(tmp_path) == []


def test_schema_and_example_commands():
    res = run_cli("card", "schema")
    assert res.returncode == 0
    assert json.loads(res.stdout) == schema()
    res = run_cli("card", "example")
    from groupwise.card._about import validate_about

    assert validate_about(yaml.safe_load(res.stdout))["service"]["name"]


def test_slices_become_found_by_search(v1, tmp_path):
    import groupwise

    df = groupwise.speech_example(2000, n_speakers=120, accents=("en-us", "en-029", "fr"), accent_effect={"en-029": 2.5}, seed=3)
    groupwise.slices(df, features="accent,noise", cluster="speaker", max_order=1, n_boot=200).to_json(tmp_path / "slices.json")
    out = build(v1 / "card.yaml", v1 / "audit.json", slices=tmp_path / "slices.json", out=tmp_path / "card")
    card = _card(out)
    found = card["found_by_search"]
    source = json.loads((tmp_path / "slices.json").read_text())["found_by_search"]
    assert found["slices"] == source["slices"] and len(found["slices"]) >= 1
    assert card["run"]["inputs"][-1]["role"] == "slices"
    html = (out / "card.html").read_text()
    first = found["slices"][0]["expression"].replace('"', "&quot;")
    assert "id='found-by-search'" in html and "id='found-plot'" in html and first in html
    with pytest.raises(groupwise.InputError, match="given to --slices"):
        build(v1 / "card.yaml", v1 / "audit.json", slices=v1 / "audit.json", out=tmp_path / "card2")
