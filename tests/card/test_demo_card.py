"""The demo's card says plainly that the voices are synthetic."""

from __future__ import annotations

import json
import shutil

import yaml
from cardfixtures import *  # noqa: F403 - shared session fixtures

from groupwise.card._demo import write_demo_card
from groupwise.card._schema import card_schema, schema_errors


def test_speech_demo_card(v1, tmp_path):
    for name in ("audit.json", "lastmile.json", "coverage.json"):
        shutil.copy(v1 / name, tmp_path / name)
    [folder] = write_demo_card(tmp_path, kind="speech")
    assert folder == tmp_path / "card"
    about = yaml.safe_load((tmp_path / "card.yaml").read_text())
    assert about["evaluation_data"]["synthetic"] is True
    assert "The voices are synthetic" in about["overview"]
    card = json.loads((folder / "card.json").read_text())
    assert schema_errors(card, card_schema()) == []
    assert card["robustness"] is not None and card["coverage"] is not None
    html = (folder / "card.html").read_text()
    assert "The evaluation data are synthetic." in html and "The voices are synthetic" in html
    assert sorted(p.name for p in (folder / "exports").iterdir()) == ["README.md", "every_eval_ever.json", "model_card_toolkit.json"]


def test_simulated_demo_card(v1, tmp_path):
    shutil.copy(v1 / "audit.json", tmp_path / "audit.json")
    [folder] = write_demo_card(tmp_path, kind="simulated")
    card = json.loads((folder / "card.json").read_text())
    assert card["about"]["evaluation_data"]["synthetic"] is True
    assert card["robustness"] is None and card["coverage"] is None


def test_one_card_per_recogniser(v1, v2, tmp_path):
    for name, source in (("pocketsphinx", v1), ("whisper", v2)):
        for kind in ("audit", "lastmile", "coverage"):
            shutil.copy(source / f"{kind}.json", tmp_path / f"{kind}_{name}.json")
    folders = write_demo_card(tmp_path, kind="speech")
    assert folders == [tmp_path / "card" / "pocketsphinx", tmp_path / "card" / "whisper"]
    names = [json.loads((f / "card.json").read_text())["service"]["name"] for f in folders]
    assert names == ["groupwise demo: PocketSphinx with a domain language model", "groupwise demo: Whisper tiny.en"]
    assert (tmp_path / "card_whisper.yaml").exists()
    assert write_demo_card(tmp_path / "card", kind="speech") == []


def test_demo_writes_its_card(tmp_path):
    from groupwise._demo import run_demo

    report = run_demo(tmp_path, quick=True)
    card = json.loads((report.parent / "card" / "card.json").read_text())
    assert card["about"]["evaluation_data"]["synthetic"] is True
    assert card["coverage"] is not None and len(card["fairness"]["groups"]) > 20
    assert "synthetic" in (report.parent / "card.yaml").read_text()
    assert (report.parent / "card" / "exports" / "every_eval_ever.json").exists()
