"""The speech demo at the sizes ``groupwise demo`` uses, with the checks of its test.

    python benchmarks/speech_demo.py                  # the --quick size (6 accents x 5 speakers x 3 utterances)
    python benchmarks/speech_demo.py --full           # the full demo as well (every accent, 6 x 4)
    python benchmarks/speech_demo.py --out DIR        # keep the outputs in DIR

``tests/speech/test_speech_demo.py`` runs the same path at a smaller size (three accents,
two utterances per speaker); this script checks the figures at the sizes a user sees and
prints how long each run took. It needs eSpeak NG, PocketSphinx and faster-whisper, as the
demo does; the browser check runs when Debian's chromium is installed.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from groupwise.speech._demo import DEMO_CONDITIONS, QUICK_ACCENTS, RECOGNISERS, run_speech_demo
from groupwise.speech._synth import DEFAULT_ACCENTS


def check(out: Path, report: Path, accents: tuple[str, ...]) -> None:
    """The assertions of tests/speech/test_speech_demo.py, for ``accents``."""
    for name in ("report.html", "recognisers.json", "power.csv", "transcripts.parquet", "domain.lm", "corpus/manifest.csv"):
        assert (out / name).exists(), name
    wer = {}
    for name in RECOGNISERS:
        for kind in ("audit", "lastmile", "coverage"):
            assert (out / f"{kind}_{name}.json").exists()
        audit = json.loads((out / f"audit_{name}.json").read_text())
        found = {g["group"]["accent"]: g for g in audit["groups"] if g["family"] == "accent"}
        assert set(found) == set(accents), sorted(found)
        assert audit["provenance"]["accent"]["provenance"] == "synthetic"
        assert audit["settings"]["normalize"] == "english"
        wer[name] = {a: g["value"] for a, g in found.items()}
        last = json.loads((out / f"lastmile_{name}.json").read_text())
        assert [c["condition"] for c in last["conditions"]] == list(DEMO_CONDITIONS)
    for name in RECOGNISERS:
        if "en-us" in wer[name] and "es" in wer[name]:
            assert wer[name]["en-us"] + 0.3 < wer[name]["es"], wer[name]
    paired = json.loads((out / "recognisers.json").read_text())
    assert {g["group"]["accent"] for g in paired["conditions"][0]["groups"]} == set(accents)
    power = pd.read_csv(out / "power.csv")
    assert set(power.recogniser) == set(RECOGNISERS.values())
    assert (power.detectable_gap.dropna() > 0).all()
    html = report.read_text()
    assert "Power at these sizes" in html and "only gaps of about" in html
    assert "phoneme edit rate from en-us" in html
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        print("  chromium is not installed: the browser check is skipped")
        return
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--virtual-time-budget=5000"]
    dom = subprocess.run(
        [exe, *flags, f"--user-data-dir={out / 'chromium-profile'}", "--dump-dom", report.resolve().as_uri()],
        capture_output=True, text=True, timeout=300, check=True,
    ).stdout
    match = re.search(r'data-images-rendered="(\d+)/(\d+)"', dom)
    assert match and match.group(1) == match.group(2) == "4", match and match.group(0)
    for text in ("Findings", "last mile", "Coverage of accent x voice gender", "hospital hum at 1200 Hz",
                 "Whisper tiny.en against PocketSphinx"):
        assert text in dom, text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="also run the full demo (every accent)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="keep the outputs here (default: a temporary folder)")
    args = parser.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="groupwise-demo-"))
    runs = [("quick", True, QUICK_ACCENTS)] + ([("full", False, DEFAULT_ACCENTS)] if args.full else [])
    for label, quick, accents in runs:
        out = root / label
        start = time.perf_counter()
        report = run_speech_demo(out, quick=quick, workers=args.workers)
        seconds = time.perf_counter() - start
        check(out, report, tuple(accents))
        print(f"{label}: {len(accents)} accents, checks passed, {seconds:.0f} s ({out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
