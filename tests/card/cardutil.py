"""Helpers shared by the card tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "groupwise.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def leftovers(parent: Path) -> list[str]:
    """Temporary folders a build left behind (there must be none)."""
    return [p.name for p in parent.iterdir() if p.name.startswith(".")]

