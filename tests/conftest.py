"""Shared fixtures."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest

from groupwise._example import speech_example

#: The longest files, longest first. The suite runs on several worker processes, one file
#: per worker at a time, in collection order: starting these first keeps any of them from
#: running alone at the end while the other workers are idle. (pytest-xdist would otherwise
#: start the files with the most tests first: pyproject.toml passes --no-loadscope-reorder.)
LONGEST_FIRST = (
    "tests/test_readme.py",
    "tests/speech/test_speech_cli.py",
    "tests/speech/test_speech_demo.py",
    "tests/service/test_service_api.py",
    "tests/audit/test_stream.py",
    "tests/speech/test_transcribe.py",
    "tests/service/test_service_security.py",
    "tests/service/test_service_hardening.py",
    "tests/test_cli.py",
    "tests/service/test_service_workers.py",
    "tests/bounty/test_bounty_hunters.py",
    "tests/audit/test_align.py",
    "tests/speech/test_whisper.py",
    "tests/bounty/test_bounty_hostile.py",
    "tests/bounty/test_bounty_core.py",
    "tests/speech/test_serve.py",
    "tests/service/test_service_adult.py",
)


def pytest_collection_modifyitems(config, items):
    """Collect the longest files first (the sort is stable: every file's own order stays)."""
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


@pytest.fixture(scope="session")
def forked_cli():
    """Runs ``groupwise`` command lines as processes forked from one warm interpreter.

    For tests that run many command lines (the README's examples): see forked_cli.py.
    The CLI's own tests (test_cli.py and the speech and card command tests) start
    ``python -m groupwise.cli`` afresh.
    """
    import os

    from forked_cli import ForkedCli

    with ForkedCli({**os.environ}) as cli:
        yield cli


@pytest.fixture(scope="session")
def speech_df():
    """A small simulated ASR table with 14 accents, 3 noises and 280 speakers."""
    return speech_example(4000, n_speakers=280, seed=3)


CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--virtual-time-budget=5000",
]


@pytest.fixture
def chromium_exe():
    """The path of Debian's chromium; skips with a message where it is not installed (.ci/run installs it)."""
    import shutil

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("Debian's chromium is not installed: apt-get install chromium (the CI script does)")
    return exe


@pytest.fixture
def chromium(tmp_path, chromium_exe):
    """Open a local page in Debian's headless Chromium; returns (DOM after load, screenshot path).

    ``open_page(page, screenshot=False)`` skips the second browser run that takes the
    screenshot (the path is then None). Skips where chromium is not installed.
    """
    import subprocess

    exe = chromium_exe

    def open_page(page, screenshot=True):
        profile = tmp_path / "chromium-profile"
        dom = subprocess.run(
            [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.resolve().as_uri()],
            capture_output=True, text=True, timeout=120,
        )
        assert dom.returncode == 0, dom.stderr[-2000:]
        if not screenshot:
            return dom.stdout, None
        shot = tmp_path / "screenshot.png"
        subprocess.run(
            [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1100,1400", f"--screenshot={shot}",
             page.resolve().as_uri()],
            capture_output=True, text=True, timeout=120,
        )
        return dom.stdout, shot

    return open_page


def rendered_images(dom):
    """(decoded, total) images as marked by the report's load handler."""
    import re

    match = re.search(r'data-images-rendered="(\d+)/(\d+)"', dom)
    assert match, "the page's load handler did not run"
    return int(match.group(1)), int(match.group(2))
