"""Bad input: one paragraph naming the problem and the fix, exit 2, nothing half-written."""

from __future__ import annotations

import json

import pytest
import yaml
from cardfixtures import *  # noqa: F403 - shared session fixtures
from cardutil import leftovers, run_cli

from groupwise import InputError
from groupwise.card import build, diff
from groupwise.card._about import EXAMPLE_YAML, validate_about


def _about(**changes):
    about = yaml.safe_load(EXAMPLE_YAML)
    for dotted, value in changes.items():
        node = about
        *path, last = dotted.split("__")
        for p in path:
            node = node[p]
        if value is KeyError:
            del node[last]
        else:
            node[last] = value
    return about


@pytest.mark.parametrize(
    ("changes", "message", "fix"),
    [
        ({"service__version": 2.1}, "'service.version' must be text, got a number (2.1)", 'version: "2.1"'),
        ({"service__name": KeyError}, "the field 'service.name' is missing", "add service.name"),
        ({"service__as_of": "last tuesday"}, "'service.as_of' is 'last tuesday', not a date", "2026-11-30"),
        ({"intended_uses": "dictation"}, "'intended_uses' must be a list, got text", "one item per line"),
        ({"intended_uses": []}, "the list 'intended_uses' is empty", "at least one item"),
        ({"limitations": ["ok", 3]}, "item 2 of 'limitations' must be a sentence of text", "'- '"),
        ({"evaluation_data__self_reported": "yes"}, "'evaluation_data.self_reported' must be true or false", "self_reported: true"),
        ({"evaluation_data": KeyError}, "the field 'evaluation_data' is missing", "add evaluation_data"),
        ({"deployment_advise": ["x"]}, "unknown field(s) deployment_advise", "check the spelling"),
        ({"service__model_availability": "free"}, "'service.model_availability' is 'free'", "open_weights"),
    ],
)
def test_card_yaml_errors_name_the_field(changes, message, fix):
    with pytest.raises(InputError) as info:
        validate_about(_about(**changes))
    assert message in str(info.value)
    assert fix in info.value.fix


def test_card_yaml_that_is_not_a_mapping_or_not_yaml(tmp_path, v1):
    (tmp_path / "a.yaml").write_text("- just\n- a list\n")
    with pytest.raises(InputError, match="must be a mapping"):
        build(tmp_path / "a.yaml", v1 / "audit.json", out=tmp_path / "card")
    (tmp_path / "b.yaml").write_text("service: {name: [unclosed\n")
    with pytest.raises(InputError, match="is not valid YAML at line"):
        build(tmp_path / "b.yaml", v1 / "audit.json", out=tmp_path / "card")
    assert not (tmp_path / "card").exists()


def _cli_fails(args, tmp_path, *words):
    res = run_cli(*args, cwd=tmp_path)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    text = " ".join(res.stderr.split())
    assert text.startswith("error:") and "Fix:" in text
    for w in words:
        assert w in text, (w, text)
    return text


def test_missing_malformed_and_misplaced_json(v1, tmp_path):
    about = str(v1 / "card.yaml")
    _cli_fails(["card", "build", "--about", about, "--audit", "nope.json", "-o", "card"], tmp_path, "does not exist", "groupwise audit --json")
    (tmp_path / "cut.json").write_text(json.dumps(json.loads((v1 / "audit.json").read_text()))[:500])
    _cli_fails(["card", "build", "--about", about, "--audit", "cut.json", "-o", "card"], tmp_path, "not valid JSON", "line 1")
    _cli_fails(["card", "build", "--about", about, "--audit", str(v1 / "lastmile.json"), "-o", "card"], tmp_path, "--lastmile instead")
    _cli_fails(["card", "build", "--about", about, "--audit", str(v1 / "audit.json"), "--coverage", str(v1 / "audit.json"), "-o", "card"],
               tmp_path, "given to --coverage", "--audit instead")
    _cli_fails(["card", "build", "--about", about, "--audit", str(v1 / "audit.json"), "--export", "mct,pdf", "-o", "card"], tmp_path, "pdf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.json"]


def test_mixed_metrics_refused_unless_allowed(v1, tmp_path):
    last = json.loads((v1 / "lastmile.json").read_text())
    last["metric"] = "cer"
    (tmp_path / "lastmile_cer.json").write_text(json.dumps(last))
    text = _cli_fails(["card", "build", "--about", str(v1 / "card.yaml"), "--audit", str(v1 / "audit.json"),
                       "--lastmile", "lastmile_cer.json", "-o", "card"], tmp_path, "different metrics", "audit: wer", "lastmile: cer", "--allow-mixed")
    assert text
    assert not (tmp_path / "card").exists()
    card = build(v1 / "card.yaml", v1 / "audit.json", lastmile=tmp_path / "lastmile_cer.json", out=tmp_path / "card", allow_mixed=True)
    data = json.loads((card / "card.json").read_text())
    assert data["metric"]["mixed"] and data["metric"]["by_section"] == {"audit": "wer", "lastmile": "cer"}


def test_failed_build_leaves_the_old_card_untouched(v1, tmp_path):
    out = build(v1 / "card.yaml", v1 / "audit.json", out=tmp_path / "card")
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    (tmp_path / "bad.yaml").write_text(EXAMPLE_YAML.replace('version: "2.1"', "version: [2, 1]"))
    _cli_fails(["card", "build", "--about", "bad.yaml", "--audit", str(v1 / "audit.json"), "-o", "card"], tmp_path, "service.version")
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert leftovers(tmp_path) == []


def test_output_folder_with_other_files_is_refused(v1, tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    _cli_fails(["card", "build", "--about", str(v1 / "card.yaml"), "--audit", str(v1 / "audit.json"), "-o", "notes"], tmp_path, "not empty")
    assert (tmp_path / "notes" / "keep.txt").read_text() == "mine"


def test_diff_refuses_other_services_metrics_and_non_cards(v1_card, tabular, tmp_path):
    card = json.loads((v1_card / "card.json").read_text())
    other = dict(card, service=dict(card["service"], name="Another service"))
    (tmp_path / "other.json").write_text(json.dumps(other))
    _cli_fails(["card", "diff", str(v1_card / "card.json"), "other.json"], tmp_path, "different services", "same service")
    metric = dict(card, metric=dict(card["metric"], name="cer"))
    (tmp_path / "cer.json").write_text(json.dumps(metric))
    _cli_fails(["card", "diff", str(v1_card / "card.json"), "cer.json"], tmp_path, "different metrics")
    _cli_fails(["card", "diff", str(v1_card / "card.json"), str(tabular / "audit.json")], tmp_path, "not a valid groupwise service card")
    (tmp_path / "v9.json").write_text(json.dumps(dict(card, schema_version="9.0.0")))
    _cli_fails(["card", "diff", str(v1_card / "card.json"), "v9.json"], tmp_path, "schema version '9.0.0'")
    with pytest.raises(InputError, match="correction"):
        diff(v1_card / "card.json", v1_card / "card.json", correction="bonferroni")


def test_conflicting_provenance_refused_unless_allowed(v1, tmp_path):
    last = json.loads((v1 / "lastmile.json").read_text())
    last["provenance"]["accent"]["provenance"] = "self_reported"
    (tmp_path / "lastmile.json").write_text(json.dumps(last))
    _cli_fails(["card", "build", "--about", str(v1 / "card.yaml"), "--audit", str(v1 / "audit.json"), "--lastmile", "lastmile.json",
                "-o", "card"], tmp_path, "different provenance", "'accent' (synthetic and self_reported)", "--allow-mixed")
    assert not (tmp_path / "card").exists()
    out = build(v1 / "card.yaml", v1 / "audit.json", lastmile=tmp_path / "lastmile.json", out=tmp_path / "card", allow_mixed=True)
    assert json.loads((out / "card.json").read_text())["provenance"]["accent"]["provenance"] == "synthetic"


def test_unspecified_provenance_is_no_conflict(v1, tmp_path):
    audit = json.loads((v1 / "audit.json").read_text())
    audit["provenance"]["accent"] = {"provenance": "unspecified", "protected": False}
    (tmp_path / "audit.json").write_text(json.dumps(audit))
    out = build(v1 / "card.yaml", tmp_path / "audit.json", lastmile=v1 / "lastmile.json", out=tmp_path / "card")
    assert json.loads((out / "card.json").read_text())["provenance"]["accent"]["provenance"] == "synthetic"


def test_different_text_normalisation_refused_unless_allowed(v1, tmp_path):
    last = json.loads((v1 / "lastmile.json").read_text())
    last["settings"]["normalize"] = "whitespace"
    (tmp_path / "lastmile.json").write_text(json.dumps(last))
    _cli_fails(["card", "build", "--about", str(v1 / "card.yaml"), "--audit", str(v1 / "audit.json"), "--lastmile", "lastmile.json",
                "-o", "card"], tmp_path, "normalise text differently", "lastmile: whitespace", "--normalize")
    assert not (tmp_path / "card").exists()
    build(v1 / "card.yaml", v1 / "audit.json", lastmile=tmp_path / "lastmile.json", out=tmp_path / "card", allow_mixed=True)
