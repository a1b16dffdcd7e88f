"""The main job's --quick path, end to end, and its report in a real browser."""

from __future__ import annotations

import json

import pytest
from conftest import rendered_images

from groupwise.speech._demo import DEMO_CONDITIONS, QUICK_ACCENTS, run_speech_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    report = run_speech_demo(out, quick=True, workers=2)
    return out, report


def test_quick_demo_produces_every_output(demo):
    out, report = demo
    for name in ("report.html", "audit.json", "coverage.json", "lastmile.json", "transcripts.parquet",
                 "wer_by_accent.png", "lastmile.png", "domain.lm", "corpus/manifest.csv"):
        assert (out / name).exists(), name
    audit = json.loads((out / "audit.json").read_text())
    accents = {g["group"]["accent"]: g for g in audit["groups"] if g["family"] == "accent"}
    assert set(accents) == set(QUICK_ACCENTS)
    assert audit["provenance"]["accent"]["provenance"] == "synthetic"
    assert audit["provenance"]["voice_gender"]["provenance"] == "synthetic"
    # Real PocketSphinx numbers: General American is recognised far better than the
    # non-native accents, which is the disparity the demo is about.
    assert accents["en-us"]["value"] < 0.3
    assert max(g["value"] for g in accents.values()) > accents["en-us"]["value"] + 0.2
    last = json.loads((out / "lastmile.json").read_text())
    assert [c["condition"] for c in last["conditions"]] == list(DEMO_CONDITIONS)
    telephone = last["conditions"][1]
    assert telephone["overall"]["delta"] > 0.1  # a 16 kHz model on an 8 kHz phone line
    assert len(last["findings"]) == 2


def test_quick_demo_report_renders_in_chromium(demo, chromium):
    _, report = demo
    dom, _ = chromium(report)
    done, total = rendered_images(dom)
    assert total == 2 and done == total
    for text in ("Findings", "Last mile", "Coverage of accent x voice gender", "hospital hum at 1200 Hz"):
        assert text in dom
