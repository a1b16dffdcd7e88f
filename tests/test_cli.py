"""Tests of the groupwise command-line program, run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from groupwise import speech_example

EXE = [sys.executable, "-m", "groupwise.cli"]


def run(*args, cwd=None):
    env = {**os.environ, "COLUMNS": "140"}
    return subprocess.run([*EXE, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


@pytest.fixture(scope="module")
def speech_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "hyps.csv"
    speech_example(3000, n_speakers=210, seed=5).to_csv(path, index=False)
    return path


def test_help_lists_every_command_and_option():
    out = run("--help")
    assert out.returncode == 0
    for command in ("audit", "coverage", "demo", "example"):
        assert command in out.stdout
    audit_help = run("audit", "--help").stdout
    for option in ("--metric", "--by", "--group", "--cluster", "--compare", "--correction", "--alpha",
                   "--n-boot", "--min-clusters", "--seed", "--provenance", "--schema", "--allow-imputed",
                   "--json", "--plot", "--normalize", "--pos-label"):
        assert option in audit_help


def _options(command):
    """Every parameter of a click command (and of its subcommands), as comparable tuples."""
    own = [(p.name, tuple(p.opts), p.required, repr(p.default), p.multiple) for p in command.params]
    subs = {name: _options(sub) for name, sub in getattr(command, "commands", {}).items()}
    return own, subs


def test_a_run_builds_only_the_command_it_names_with_the_same_options():
    from typer.main import get_command

    from groupwise.cli import _program, app

    whole = get_command(app)
    assert len(whole.commands) > 10
    for name, command in whole.commands.items():
        narrowed = _program([name, "--some-option"])
        assert list(narrowed.commands) == [name]
        assert _options(narrowed.commands[name]) == _options(command), name
        assert narrowed.commands[name].help == command.help
    # No command, help or a misspelt name: the whole program, which lists every command.
    for argv in ([], ["--help"], ["audti"], ["-x", "audit"]):
        assert list(_program(argv).commands) == list(whole.commands)
    out = run("audti", "x.csv")
    assert out.returncode == 2 and "No such command" in out.stderr and "audit" in out.stderr


def test_the_program_freezes_the_garbage_collector_when_it_exits():
    # Exit handlers run last-registered first: this one, registered before main(), sees
    # whether main() left gc.freeze to run at exit (the final collections then skip it all).
    code = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0))\n"
        "sys.argv = ['groupwise', '--help']\n"
        "from groupwise.cli import main\n"
        "main()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "frozen True"


def test_audit_writes_json_csv_and_plot(speech_csv, tmp_path):
    out = run("audit", speech_csv, "--by", "accent", "--by", "accent,noise", "--cluster", "speaker",
              "--group", 'noise == "hum" and accent in ["en-029", "hi"]', "--n-boot", "300",
              "--provenance", "accent=synthetic", "--json", tmp_path / "a.json", "--csv", tmp_path / "a.csv",
              "--plot", tmp_path / "a.png")
    assert out.returncode == 0, out.stderr
    assert "word error rate by accent" in out.stdout
    assert "FLAGGED" in out.stdout
    data = json.loads((tmp_path / "a.json").read_text())
    assert data["metric"] == "wer" and data["provenance"]["accent"]["provenance"] == "synthetic"
    families = {g["family"] for g in data["groups"]}
    assert families == {"accent", "accent,noise", 'noise == "hum" and accent in ["en-029", "hi"]'}
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "a.csv").read_text().startswith("family,label")


def test_same_seed_same_json(speech_csv, tmp_path):
    for name in ("x", "y"):
        assert run("audit", speech_csv, "--by", "accent", "--cluster", "speaker", "--n-boot", "200",
                   "--seed", "3", "--json", tmp_path / f"{name}.json", "-q").returncode == 0
    a = json.loads((tmp_path / "x.json").read_text())
    b = json.loads((tmp_path / "y.json").read_text())
    assert a["groups"] == b["groups"]


def test_coverage_command(speech_csv, tmp_path):
    out = run("coverage", speech_csv, "--dims", "accent,noise", "--cluster", "speaker",
              "--target-half-width", "0.05", "--json", tmp_path / "c.json")
    assert out.returncode == 0, out.stderr
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["summary"]["cells"] == 42
    assert "more clusters" in out.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--by", "accentt"], "group column 'accentt' is not in the data"),
        (["--by", "accent", "--cluster", "spk"], "cluster column 'spk'"),
        (["--group", "accent.upper() == 'X'"], "attribute"),
        (["--group", "snr_db < 10"], "snr_db"),
        (["--by", "accent", "--hypothesis", "reference"], "are both 'reference'"),
        (["--by", "accent", "--reference", "ref"], "reference column 'ref' is not in the data"),
        (["--by", "accent", "--provenance", "accent"], "column=provenance"),
        (["--by", "accent", "--provenance", "accent=guessed"], "provenance 'guessed'"),
    ],
)
def test_bad_input_gives_a_message_not_a_traceback(speech_csv, args, message):
    out = run("audit", speech_csv, *args)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert message in out.stderr.replace("\n", " ") or message in " ".join(out.stderr.split())
    assert "Fix:" in out.stderr


def test_missing_file_and_bad_suffix(tmp_path):
    out = run("audit", tmp_path / "nope.csv", "--by", "a")
    assert out.returncode == 2 and "does not exist" in out.stderr
    (tmp_path / "x.xlsx").write_text("a")
    out = run("audit", tmp_path / "x.xlsx", "--by", "a")
    assert out.returncode == 2 and "unknown suffix" in out.stderr


def test_nan_transcripts_are_listed(tmp_path):
    df = speech_example(200, n_speakers=20, seed=1)
    df.loc[[4, 17], "hypothesis"] = None
    df.to_csv(tmp_path / "h.csv", index=False)
    out = run("audit", tmp_path / "h.csv", "--by", "accent")
    assert out.returncode == 2
    text = " ".join(out.stderr.split())
    assert "missing transcripts" in text and "Rows: 4, 17" in text


def test_example_command(tmp_path):
    out = run("example", tmp_path / "t.parquet", "--kind", "tabular", "--rows", "500")
    assert out.returncode == 0, out.stderr
    out = run("audit", tmp_path / "t.parquet", "--metric", "fnr", "--by", "sex", "--group", "age >= 60",
              "--cluster", "household", "--provenance", "sex=self_reported", "-q")
    assert out.returncode == 0, out.stderr
