"""Every example in the README runs (the quickstart commands are run by CI itself)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def blocks(language):
    text = README.read_text(encoding="utf-8")
    after_quickstart = text.split("## What it does", 1)[1]
    return re.findall(rf"```{language}\n(.*?)```", after_quickstart, flags=re.S)


def test_readme_has_the_two_quickstart_commands():
    text = README.read_text(encoding="utf-8")
    quick = re.findall(r"```bash\n(.*?)```", text.split("## What it does", 1)[0], flags=re.S)
    assert len(quick) == 2
    assert "groupwise demo" in quick[0]
    assert "pytest" in quick[1]
    ci = (README.parent / ".ci" / "run").read_text()
    assert quick[1].strip() in ci


def test_shell_examples_run(tmp_path):
    env = {**os.environ, "COLUMNS": "120"}
    commands = [line for block in blocks("bash") for line in block.strip().splitlines()]
    assert commands
    for line in commands:
        argv = shlex.split(line)
        if argv[0] == "groupwise":
            argv = [sys.executable, "-m", "groupwise.cli", *argv[1:]]
            out = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
        else:
            out = subprocess.run(line, shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, f"{line}\n{out.stdout}\n{out.stderr}"
    assert (tmp_path / "audit.json").exists() and (tmp_path / "coverage.json").exists()


def test_python_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = blocks("python")
    assert code
    for block in code:
        exec(compile(block, "README.md", "exec"), {"__name__": "readme"})  # our own README, not user input
    assert (tmp_path / "wer_by_group.png").exists()


@pytest.mark.parametrize("command", ["audit", "coverage", "example", "demo"])
def test_every_cli_option_is_in_the_readme(command):
    from typer.main import get_command

    from groupwise.cli import app

    text = README.read_text(encoding="utf-8")
    click_command = get_command(app).commands[command]
    for param in click_command.params:
        for opt in param.opts:
            if opt.startswith("--") and command == "audit":
                assert f"`{opt}" in text, opt
