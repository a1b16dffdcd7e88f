"""The HTML report opened in a real headless Chromium: the plots must render.

Skips with a message where Debian's ``chromium`` is not installed (``.ci/run`` installs it).
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from groupwise._demo import run_demo

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--virtual-time-budget=5000",
]


def open_in_chromium(page, tmp_path):
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed: apt-get install chromium (the CI script does)")
    profile = tmp_path / "profile"
    dom = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    shot = tmp_path / "shot.png"
    subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--window-size=1100,1400", f"--screenshot={shot}", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    return dom.stdout, shot


def rendered_images(dom):
    match = re.search(r'data-images-rendered="(\d+)/(\d+)"', dom)
    assert match, "the page's load handler did not run"
    return int(match.group(1)), int(match.group(2))


def test_simulated_demo_report_renders(tmp_path):
    report = run_demo(tmp_path / "demo", quick=True)
    dom, shot = open_in_chromium(report, tmp_path)
    done, total = rendered_images(dom)
    assert total >= 1 and done == total
    assert "Findings" in dom and "<table>" in dom
    from PIL import Image

    image = Image.open(shot).convert("L")
    lo, hi = image.getextrema()
    assert hi - lo > 100  # not a blank page
