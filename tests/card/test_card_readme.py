"""The README's service-card section: its examples run, and every option is documented."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from cardfixtures import *  # noqa: F403 - shared session fixtures

README = Path(__file__).resolve().parents[2] / "README.md"


def _section() -> str:
    """The README's '## Service card' section, up to the next level-2 heading outside a code block."""
    lines = README.read_text(encoding="utf-8").split("\n## Service card\n", 1)[1].splitlines()
    fenced, out = False, []
    for line in lines:
        if line.startswith("```"):
            fenced = not fenced
        elif line.startswith("## ") and not fenced:
            break
        out.append(line)
    return "\n".join(out)


def test_card_examples_run(v1, tmp_path, monkeypatch, forked_cli):
    """The section's blocks, in order, from the files the README's earlier examples write.

    ``groupwise`` lines run as processes forked from a warm interpreter (tests/forked_cli.py);
    the card tests of test_build.py and test_diff.py start the program afresh.
    """
    import groupwise

    df = groupwise.speech_example(6000, n_speakers=240, seed=0).drop(columns=["true_rate"])
    df.to_csv(tmp_path / "hyps.csv", index=False)
    # As in the README: the audit records no provenance, the speech last-mile test says 'synthetic'.
    groupwise.audit(df, by=["accent", "accent,noise"], cluster="speaker").to_json(tmp_path / "audit.json")
    for name in ("lastmile.json", "coverage.json"):
        shutil.copy(v1 / name, tmp_path / name)
    env = {**os.environ, "COLUMNS": "120"}
    monkeypatch.chdir(tmp_path)
    blocks = [b for b in re.findall(r"```(\w+)\n(.*?)```", _section(), flags=re.S) if b[0] != "markdown"]
    assert [lang for lang, _ in blocks] == ["bash", "bash", "python"]
    for lang, body in blocks:
        if lang == "python":
            exec(compile(body, "README.md", "exec"), {"__name__": "readme"})  # our own README, not user input
            continue
        for line in body.strip().splitlines():
            argv = shlex.split(line)
            if argv[0] == "groupwise":
                res = forked_cli.run(argv[1:], cwd=tmp_path, env=env)
            else:
                res = subprocess.run(line, shell=True, capture_output=True, text=True, timeout=60)
            assert res.returncode == 0, f"{line}\n{res.stdout}\n{res.stderr}"
    card = __import__("json").loads((tmp_path / "card" / "card.json").read_text())
    assert card["provenance"]["accent"]["provenance"] == "synthetic"
    for path in ("card/card.html", "card/exports/every_eval_ever.json", "card-v2/card.json", "card-diff/diff.html", "card-py/card.md"):
        assert (tmp_path / path).exists(), path


@pytest.mark.parametrize("command", ["build", "diff", "example"])
def test_every_card_option_is_in_the_readme(command):
    from typer.main import get_command

    from groupwise.cli import app

    section = _section()
    params = get_command(app).commands["card"].commands[command].params
    for param in params:
        for opt in param.opts:
            if opt.startswith("--") and opt != "--help":
                assert f"`{opt}" in section or f" {opt} " in section, opt


def test_readme_excerpt_matches_a_card():
    """The excerpt of the demo's card.md in the README is what the renderer writes."""
    excerpt = re.search(r"```markdown\n(.*?)```", _section(), flags=re.S).group(1)
    assert excerpt.startswith("# groupwise demo recogniser 1.0: service card")
    assert "**The evaluation data are synthetic.**" in excerpt
    assert "| group | n | clusters | wer | 95% interval | gap | p adj. | status |" in excerpt
