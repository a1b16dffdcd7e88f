"""The card's "Comparison of systems" section, from the JSON of ``groupwise compare``."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from cardfixtures import *  # noqa: F403 - shared session fixtures
from cardutil import leftovers, run_cli

import groupwise
from groupwise._errors import InputError
from groupwise.card import build, diff, schema
from groupwise.card._about import EXAMPLE_YAML
from groupwise.card._schema import schema_errors, vendored_schema

_SYS: dict[str, Path] = {}


def _systems(seed: int, caribbean: float) -> pd.DataFrame:
    """Two systems on the same utterances (as in the README): whisper is worse than sphinx for one accent only."""
    rng = np.random.default_rng(seed)
    rows = []
    for accent, extra in [("us", 0.0), ("scottish", 0.0), ("caribbean", caribbean)]:
        for s in range(12):
            for u in range(8):
                words, utt = int(rng.integers(5, 15)), f"{accent}{s}-{u}"
                rows += [
                    {"utterance": utt, "accent": accent, "speaker": f"{accent}{s}", "system": "sphinx", "errors": rng.poisson(words * 0.1), "words": words},
                    {"utterance": utt, "accent": accent, "speaker": f"{accent}{s}", "system": "whisper",
                     "errors": rng.poisson(words * (0.05 + extra)), "words": words},
                ]
    return pd.DataFrame(rows)


def _measure(folder: Path, seed: int, caribbean: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    df = _systems(seed, caribbean)
    groupwise.compare(
        df, condition="system", baseline="sphinx", by="accent", cluster="speaker", item="utterance", metric="ratio", num="errors", den="words",
    ).to_json(folder / "compare.json")
    groupwise.audit(
        df[df["system"] == "whisper"], metric="ratio", num="errors", den="words", by="accent", cluster="speaker",
    ).to_json(folder / "audit.json")
    (folder / "card.yaml").write_text(EXAMPLE_YAML, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def systems(tmp_path_factory) -> Path:
    if "a" not in _SYS:
        _SYS["a"] = _measure(tmp_path_factory.mktemp("sys"), 1, 0.15)
    return _SYS["a"]


@pytest.fixture(scope="module")
def systems_card(systems, tmp_path_factory) -> Path:
    return build(systems / "card.yaml", systems / "audit.json", compare=systems / "compare.json",
                 out=tmp_path_factory.mktemp("sc") / "card", export="mct,hf,eee")


def _card(folder: Path) -> dict:
    return json.loads((folder / "card.json").read_text(encoding="utf-8"))


def test_section_copies_the_comparison(systems, systems_card):
    card = _card(systems_card)
    assert schema_errors(card, schema()) == []
    assert card["schema_version"] == "1.2.0"
    src = json.loads((systems / "compare.json").read_text())
    c = card["comparison"]
    assert (c["baseline"], c["condition_column"], c["item"], c["metric"]) == ("sphinx", "system", "utterance", "ratio")
    assert [x["system"] for x in c["systems"]] == ["whisper"]
    for s_group, cell in zip(src["conditions"][0]["groups"], c["systems"][0]["groups"]):
        assert all(cell[k] == v for k, v in s_group.items())
        assert cell["label"] == f"accent={s_group['group']['accent']}"
    flagged = {g["label"]: g["direction"] for g in c["systems"][0]["groups"] if g["flagged"]}
    assert flagged.get("accent=caribbean") == "larger"
    # Findings like the robustness ones, also among the card's findings.
    assert c["findings"] == src["findings"] and src["findings"][0] in card["findings"]
    inputs = {i["role"]: i for i in card["run"]["inputs"]}
    assert inputs["compare"]["file"] == "compare.json"
    assert card["run"]["settings"]["compare"]["item"] == "utterance" and card["run"]["seeds"]["compare"] == 0
    # Nothing per speaker.
    assert "caribbean0" not in json.dumps(card)


def test_section_is_rendered_and_listed(systems_card):
    html = (systems_card / "card.html").read_text()
    assert "<a href='#comparison'>Comparison of systems</a>" in html
    section = html[html.index("<section id='comparison'>"):]
    section = section[: section.index("</section>")]
    assert "id='comparison-plot-0'" in section and "class='interval'" in section
    assert "whisper against sphinx" in section and "accent=caribbean" in section and "flagged (larger)" in section
    md = (systems_card / "card.md").read_text()
    assert "### Comparison of systems" in md and "**whisper against sphinx**" in md
    assert "| accent=caribbean | " in md.split("### Comparison of systems")[1]


def test_cards_without_a_comparison_say_so(v1_card):
    card = _card(v1_card)
    assert card.get("comparison") is None
    assert "No comparison of systems is part of this card." in (v1_card / "card.html").read_text()


def test_exports_stay_valid_and_leave_the_comparison_out(systems_card):
    from huggingface_hub import metadata_load
    from huggingface_hub.repocard_data import model_index_to_eval_results

    card = _card(systems_card)
    mct = json.loads((systems_card / "exports" / "model_card_toolkit.json").read_text())
    assert schema_errors(mct, vendored_schema("mct")) == []
    eee = json.loads((systems_card / "exports" / "every_eval_ever.json").read_text())
    assert schema_errors(eee, vendored_schema("eee")) == []
    _, results = model_index_to_eval_results(metadata_load(systems_card / "exports" / "README.md")["model-index"])
    # One result per group plus the overall value: the exports describe the audited system only.
    assert len(results) == len(eee["evaluation_results"]) == 1 + len(card["fairness"]["groups"])
    assert not any("whisper" in r["evaluation_name"] for r in eee["evaluation_results"])


def test_cli_builds_with_compare(systems, tmp_path):
    res = run_cli("card", "build", "--about", str(systems / "card.yaml"), "--audit", str(systems / "audit.json"),
                  "--compare", str(systems / "compare.json"), "-o", str(tmp_path / "card"))
    assert res.returncode == 0, res.stderr
    assert _card(tmp_path / "card")["comparison"]["systems"][0]["name"] == "whisper"


def _refused(tmp_path, **kw) -> str:
    out = tmp_path / "out"
    with pytest.raises(InputError) as info:
        build(kw.pop("about"), kw.pop("audit"), out=out, **kw)
    assert not out.exists() and leftovers(tmp_path) == []
    text = str(info.value)
    assert "\n" not in text.strip() or "Fix" in text
    return text


def test_wrong_kind_and_malformed_compare_files(systems, v1, tmp_path):
    base = {"about": systems / "card.yaml", "audit": systems / "audit.json"}
    # An audit given to --compare.
    msg = _refused(tmp_path, **base, compare=systems / "audit.json")
    assert "--compare" in msg and "groupwise audit" in msg and "--audit" in msg
    # A last-mile test given to --compare (its conditions are speech recipes), and a comparison given to --lastmile.
    msg = _refused(tmp_path, about=v1 / "card.yaml", audit=v1 / "audit.json", compare=v1 / "lastmile.json")
    assert "last-mile test" in msg and "--lastmile" in msg
    msg = _refused(tmp_path, **base, lastmile=systems / "compare.json", allow_mixed=True)
    assert "groupwise compare" in msg and "--compare" in msg
    # A paired result without named items, then one without its settings.
    data = json.loads((systems / "compare.json").read_text())
    no_item = copy.deepcopy(data)
    no_item["settings"]["item"] = None
    (tmp_path / "no_item.json").write_text(json.dumps(no_item))
    assert "pairs no named items" in _refused(tmp_path, **base, compare=tmp_path / "no_item.json")
    broken = copy.deepcopy(data)
    del broken["conditions"][0]["groups"]
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    assert "malformed condition" in _refused(tmp_path, **base, compare=tmp_path / "broken.json")
    (tmp_path / "cut.json").write_text((systems / "compare.json").read_text()[:200])
    assert "not valid JSON" in _refused(tmp_path, **base, compare=tmp_path / "cut.json")
    assert "does not exist" in _refused(tmp_path, **base, compare=tmp_path / "missing.json")


def test_mixed_metric_normalisation_and_version_refused_unless_allowed(systems, v1, tmp_path):
    # A WER audit with a comparison of error ratios.
    msg = _refused(tmp_path, about=v1 / "card.yaml", audit=v1 / "audit.json", compare=systems / "compare.json")
    assert "different metrics" in msg and "compare: ratio" in msg and "--allow-mixed" in msg
    folder = build(v1 / "card.yaml", v1 / "audit.json", compare=systems / "compare.json", out=tmp_path / "mixed", allow_mixed=True)
    card = _card(folder)
    assert card["metric"]["mixed"] and card["metric"]["by_section"]["compare"] == "ratio"
    data = json.loads((systems / "compare.json").read_text())
    data["settings"]["normalize"] = "lowercase"
    audit = json.loads((systems / "audit.json").read_text())
    audit["settings"]["normalize"] = "lowercase+punctuation+whitespace"
    (tmp_path / "c.json").write_text(json.dumps(data))
    (tmp_path / "a.json").write_text(json.dumps(audit))
    msg = _refused(tmp_path, about=systems / "card.yaml", audit=tmp_path / "a.json", compare=tmp_path / "c.json")
    assert "normalise text differently" in msg
    data["settings"].update(normalize=None, tool_version="0.0.1")
    audit["settings"].update(normalize=None, tool_version="0.0.2")
    (tmp_path / "c.json").write_text(json.dumps(data))
    (tmp_path / "a.json").write_text(json.dumps(audit))
    msg = _refused(tmp_path, about=systems / "card.yaml", audit=tmp_path / "a.json", compare=tmp_path / "c.json")
    assert "different versions of groupwise" in msg and "compare: 0.0.1" in msg


def test_same_file_for_lastmile_and_compare_is_refused(v1, tmp_path):
    data = json.loads((v1 / "lastmile.json").read_text())
    assert data["settings"]["item"] == "utterance"
    msg = _refused(tmp_path, about=v1 / "card.yaml", audit=v1 / "audit.json", lastmile=v1 / "lastmile.json", compare=v1 / "lastmile.json")
    assert "--lastmile" in msg and "--compare" in msg


def test_diff_compares_the_comparison(systems, systems_card, tmp_path):
    same = diff(systems_card / "card.json", systems_card / "card.json")
    rows = [c for c in same["changes"] if c["section"] == "comparison"]
    assert {c["label"] for c in rows} == {"accent=us", "accent=scottish", "accent=caribbean"}
    assert all(c["where"] == "whisper vs sphinx" for c in rows)
    assert all(c["p_value"] == pytest.approx(1.0) and c["scale"] == "absolute" for c in rows if c["status"] == "tested")
    # A second version where whisper no longer hurts the caribbean accent.
    other = _measure(tmp_path / "v2", 2, 0.0)
    about = yaml.safe_load(EXAMPLE_YAML)
    about["service"]["version"] = "2.2"
    (other / "card.yaml").write_text(yaml.safe_dump(about), encoding="utf-8")
    new = build(other / "card.yaml", other / "audit.json", compare=other / "compare.json", out=tmp_path / "new")
    d = diff(systems_card / "card.json", new / "card.json")
    car = next(c for c in d["changes"] if c["section"] == "comparison" and c["label"] == "accent=caribbean")
    assert car["status"] == "tested" and car["direction"] == "better" and car["change_ci_high"] < 0
    assert car["method"].startswith("audit standard errors (CR2), Welch-Satterthwaite df")  # the deltas' own
    res = run_cli("card", "diff", str(systems_card / "card.json"), str(new / "card.json"), "-o", str(tmp_path / "d"))
    assert res.returncode == 0, res.stderr
    page = (tmp_path / "d" / "diff.html").read_text()
    assert "id='diff-comparison'" in page and "Comparison of systems" in page


def test_demo_cards_carry_the_comparison_of_recognisers(v1, v2, tmp_path):
    """The speech demo's paired comparison of its two recognisers goes into each recogniser's card."""
    import shutil

    from groupwise.card._demo import write_demo_card

    for name, source in (("pocketsphinx", v1), ("whisper", v2)):
        for kind in ("audit", "lastmile", "coverage"):
            shutil.copy(source / f"{kind}.json", tmp_path / f"{kind}_{name}.json")
    a = groupwise.speech_example(1200, n_speakers=60, accents=("en-us", "hi", "vi"), seed=3).drop(columns="true_rate")
    b = groupwise.speech_example(1200, n_speakers=60, accents=("en-us", "hi", "vi"), seed=3, base_rate=0.06).drop(columns="true_rate")
    both = pd.concat([a.assign(recogniser="PocketSphinx"), b.assign(recogniser="Whisper tiny.en")], ignore_index=True)
    groupwise.compare(
        both, condition="recogniser", baseline="PocketSphinx", by="accent", cluster="speaker", item="utterance",
        provenance={"accent": "synthetic"}, min_clusters=5,
    ).to_json(tmp_path / "recognisers.json")
    folders = write_demo_card(tmp_path, kind="speech")
    for folder in folders:
        c = _card(folder)["comparison"]
        assert c["baseline"] == "PocketSphinx" and [x["name"] for x in c["systems"]] == ["Whisper tiny.en"]
        assert "Whisper tiny.en against PocketSphinx" in (folder / "card.html").read_text()


def test_comparison_renders_offline_in_chromium(systems_card, chromium):
    dom, _ = chromium(systems_card / "card.html")
    assert 'id="comparison"' in dom and 'href="#comparison"' in dom
    assert 'data-resources-loaded="0"' in dom
    # One plot per family of the audit (accent) and one per compared system.
    assert 'data-plots="2"' in dom and 'id="comparison-plot-0"' in dom
    plot = dom[dom.index('id="comparison-plot-0"'):]
    plot = plot[: plot.index("</svg>")]
    assert plot.count('class="interval"') == 3 and "caribbean" in plot
