"""The main job's --quick path, end to end, and its report in a real browser.

The suite runs the --quick path at a smaller size (two of the quick accents, two
utterances per speaker: the least the statistics accept; one of the two last-mile
conditions); ``benchmarks/speech_demo.py`` runs it at the size ``groupwise demo --quick``
uses, every condition included, with the same checks.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import rendered_images

from groupwise._errors import InputError
from groupwise.speech._demo import DEMO_CONDITIONS, QUICK_ACCENTS, RECOGNISERS, run_speech_demo

#: General American and Spanish, compared below, under the hospital hum (the quick demo's
#: other accents and the telephone line run in benchmarks/speech_demo.py).
ACCENTS = ("en-us", "es")
CONDITIONS = ("hum:freq=1200,harmonics=3,snr=5",)
assert set(ACCENTS) <= set(QUICK_ACCENTS) and set(CONDITIONS) < set(DEMO_CONDITIONS)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    report = run_speech_demo(out, quick=True, workers=2, accents=ACCENTS, speakers=5, utterances=2,
                             conditions=CONDITIONS)
    return out, report


@pytest.mark.parametrize(("speakers", "utterances"), [(4, 3), (5, 1)])
def test_too_small_a_demo_is_refused_with_a_fix(tmp_path, speakers, utterances):
    with pytest.raises(InputError, match="at least 5 speakers"):
        run_speech_demo(tmp_path, quick=True, accents=ACCENTS, speakers=speakers, utterances=utterances)
    assert not (tmp_path / "corpus").exists()


@pytest.mark.parametrize(("conditions", "message"), [(("thunder",), "no last-mile condition 'thunder'"),
                                                     ("thunder", "no last-mile condition 'thunder'"),
                                                     ((), "needs a last-mile condition")])
def test_an_unknown_demo_condition_is_refused_with_the_choices(tmp_path, conditions, message):
    with pytest.raises(InputError, match=message) as info:
        run_speech_demo(tmp_path, quick=True, accents=ACCENTS, conditions=conditions)
    assert "telephone" in str(info.value)
    assert not (tmp_path / "corpus").exists()


def test_quick_demo_audits_both_recognisers(demo):
    out, report = demo
    for name in ("report.html", "recognisers.json", "power.csv", "transcripts.parquet", "domain.lm",
                 "corpus/manifest.csv"):
        assert (out / name).exists(), name
    wer = {}
    for name in RECOGNISERS:
        for kind in ("audit", "lastmile", "coverage"):
            assert (out / f"{kind}_{name}.json").exists()
        audit = json.loads((out / f"audit_{name}.json").read_text())
        accents = {g["group"]["accent"]: g for g in audit["groups"] if g["family"] == "accent"}
        assert set(accents) == set(ACCENTS)
        assert audit["provenance"]["accent"]["provenance"] == "synthetic"
        assert audit["settings"]["normalize"] == "english"
        wer[name] = {a: g["value"] for a, g in accents.items()}
        last = json.loads((out / f"lastmile_{name}.json").read_text())
        assert [c["condition"] for c in last["conditions"]] == list(CONDITIONS)
    # Real recognisers: General American is recognised far better than English read by
    # Spanish rules, by both.
    for name in RECOGNISERS:
        assert wer[name]["en-us"] + 0.3 < wer[name]["es"]
    paired = json.loads((out / "recognisers.json").read_text())
    assert {g["group"]["accent"] for g in paired["conditions"][0]["groups"]} == set(ACCENTS)
    power = pd.read_csv(out / "power.csv")
    assert set(power.recogniser) == set(RECOGNISERS.values())
    assert (power.detectable_gap.dropna() > 0).all()
    html = report.read_text()
    assert "Power at these sizes" in html and "only gaps of about" in html
    assert "phoneme edit rate from en-us" in html


def test_quick_demo_report_renders_in_chromium(demo, chromium):
    _, report = demo
    dom, _ = chromium(report, screenshot=False)
    done, total = rendered_images(dom)
    assert total == 4 and done == total
    for text in ("Findings", "last mile", "Coverage of accent x voice gender", "hospital hum at 1200 Hz",
                 "Whisper tiny.en against PocketSphinx"):
        assert text in dom
