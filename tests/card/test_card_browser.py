"""The card and the diff in headless Chromium: sections, plots, and no network load."""

from __future__ import annotations

import re

from cardfixtures import *  # noqa: F403 - shared session fixtures

SECTIONS = ["overview", "intended-uses", "design", "performance", "methodology", "fairness", "robustness", "coverage",
            "deployment", "glossary", "provenance-of-card"]


def _no_remote_references(page: str) -> None:
    refs = re.findall(r"""(?:src|href|action|poster|data)\s*=\s*['"]([^'"]+)['"]""", page)
    assert all(r.startswith(("#", "data:")) for r in refs), [r for r in refs if not r.startswith(("#", "data:"))]
    assert "url(" not in page and "@import" not in page
    assert "default-src 'none'" in page


def test_card_renders_offline(v1_card, chromium):
    page = (v1_card / "card.html").read_text(encoding="utf-8")
    _no_remote_references(page)
    dom, shot = chromium(v1_card / "card.html")
    for section in SECTIONS:
        assert f'id="{section}"' in dom, section
    assert 'data-resources-loaded="0"' in dom
    # One plot per family (accent, noise, gender) and one per last-mile condition.
    assert 'data-plots="4"' in dom
    plot = dom[dom.index('id="fairness-plot-0"'):]
    plot = plot[: plot.index("</svg>")]
    assert plot.count('class="interval"') >= 6 and "<circle" in plot
    gender = dom[dom.index('id="fairness-plot-2"'):]
    gender = gender[: gender.index("</svg>")]
    assert "nonbinary" in gender and "insufficient" in gender
    assert shot.exists() and shot.stat().st_size > 10_000


def test_diff_page_renders_offline(v1_card, v2_card, chromium, tmp_path):
    from cardutil import run_cli

    res = run_cli("card", "diff", str(v1_card / "card.json"), str(v2_card / "card.json"), "-o", str(tmp_path / "diff"))
    assert res.returncode == 0, res.stderr
    page = (tmp_path / "diff" / "diff.html").read_text(encoding="utf-8")
    _no_remote_references(page)
    dom, _ = chromium(tmp_path / "diff" / "diff.html", screenshot=False)
    for section in ("summary", "diff-fairness", "diff-robustness", "diff-groups", "diff-coverage"):
        assert f'id="{section}"' in dom, section
    assert 'data-resources-loaded="0"' in dom and 'data-plots="2"' in dom


def test_card_prints(v1_card, chromium_exe, tmp_path):
    """Chromium prints the card to PDF with the print styles (navigation hidden, rows kept whole)."""
    import subprocess

    exe = chromium_exe  # skips when chromium is missing
    pdf = tmp_path / "card.pdf"
    subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         "--no-pdf-header-footer", f"--print-to-pdf={pdf}", (v1_card / "card.html").resolve().as_uri()],
        capture_output=True, timeout=120, check=True,
    )
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and data.count(b"/Type /Page") >= 3
    page = (v1_card / "card.html").read_text()
    assert "@media print{" in page and "nav{display:none}" in page


def test_card_fits_a_phone(v1_card, chromium_exe, tmp_path):
    """At a phone's width the page does not scroll sideways: wide tables scroll in their own box."""
    import subprocess

    exe = chromium_exe  # skips when chromium is missing
    dom = subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         "--window-size=390,844", "--virtual-time-budget=5000", "--dump-dom", (v1_card / "card.html").resolve().as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    assert 'data-overflow="0"' in dom
    page = (v1_card / "card.html").read_text()
    assert "width=device-width" in page and "class='scroll'" in page
