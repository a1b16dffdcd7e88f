"""The HTML report opened in a real headless Chromium: the plots must render."""

from __future__ import annotations

from conftest import rendered_images
from PIL import Image

from groupwise._demo import run_demo


def test_simulated_demo_report_renders(tmp_path, chromium):
    report = run_demo(tmp_path / "demo", quick=True)
    dom, shot = chromium(report)
    done, total = rendered_images(dom)
    assert total >= 1 and done == total
    assert "Findings" in dom and "<table>" in dom
    lo, hi = Image.open(shot).convert("L").getextrema()
    assert hi - lo > 100  # not a blank page
