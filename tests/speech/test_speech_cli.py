"""The speech commands end to end through the real CLI, and their bad-input messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

EXE = [sys.executable, "-m", "groupwise.cli"]


def run(*args, cwd, cli=None):
    """``groupwise ARGS`` in ``cwd``: a fresh ``python -m groupwise.cli``, or a process forked by ``cli``.

    The pipeline and the commands run on its output start the program afresh; the tests
    of bad input run many command lines and fork them from a warm interpreter (conftest's
    forked_cli), each still its own process with its own exit status and output.
    """
    env = {**os.environ, "COLUMNS": "150", "GROUPWISE_CACHE": str(cwd / "cache")}
    if cli is not None:
        return cli.run(list(map(str, args)), cwd=cwd, env=env)
    return subprocess.run([*EXE, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """A small corpus taken through synth, lm build and transcribe."""
    work = tmp_path_factory.mktemp("speech")
    steps = [
        ("corpus", "synth", "corpus", "--accents", "en-us,es", "--speakers", "5", "--utterances", "2", "--workers", "2"),
        ("lm", "build", "corpus/lm_train.txt", "-o", "domain.lm"),
        ("transcribe", "corpus/manifest.csv", "--lm", "domain.lm", "--condition", "noise:kind=white,snr=5",
         "--workers", "2", "-o", "hyps.parquet"),
    ]
    for step in steps:
        out = run(*step, cwd=work)
        assert out.returncode == 0, f"{step}\n{out.stdout}\n{out.stderr}"
    return work


def test_synth_writes_a_marked_synthetic_corpus(pipeline):
    manifest = pd.read_csv(pipeline / "corpus" / "manifest.csv")
    assert len(manifest) == 20 and manifest.speaker.nunique() == 10
    assert set(manifest.columns) >= {"audio", "text", "speaker", "accent", "l1", "voice_gender", "domain"}
    assert set(manifest.l1) == {"en", "es"}
    prov = json.loads((pipeline / "corpus" / "manifest.csv.provenance.json").read_text())
    # Every accent's measured distance from General American is in the manifest.
    rates = manifest.groupby("accent").phoneme_edit_rate.first()
    assert rates["en-us"] == 0 and rates["es"] > 0.3
    assert prov["phoneme_edit_rate"] == "measured"
    assert prov["accent"] == prov["voice_gender"] == "synthetic"
    train = set((pipeline / "corpus" / "lm_train.txt").read_text().splitlines())
    assert not train & set(manifest.text)  # the language model never sees a test sentence
    # Every accent reads the same sentences.
    by_accent = manifest.groupby("accent").text.apply(frozenset)
    assert by_accent.nunique() == 1


def test_transcripts_and_cache(pipeline):
    hyps = pd.read_parquet(pipeline / "hyps.parquet")
    assert len(hyps) == 40
    assert set(hyps.condition) == {"baseline", "noise:kind=white,snr=5"}
    assert hyps.hypothesis.str.len().gt(0).mean() > 0.8
    again = run("transcribe", "corpus/manifest.csv", "--lm", "domain.lm", "--condition", "noise:kind=white,snr=5",
                "-o", "again.parquet", cwd=pipeline)
    assert again.returncode == 0, again.stderr
    second = pd.read_parquet(pipeline / "again.parquet")
    assert second.cached.all()
    assert second.hypothesis.tolist() == hyps.hypothesis.tolist()


def test_audit_and_lastmile_on_transcripts(pipeline):
    out = run("audit", "hyps.parquet", "--by", "accent,condition", "--cluster", "speaker", "--min-clusters", "5",
              "--min-examples", "5", "--json", "audit.json", cwd=pipeline)
    assert out.returncode == 0, out.stderr
    out = run("lastmile", "hyps.parquet", "--by", "accent", "--cluster", "speaker", "--json", "lastmile.json",
              "--plot", "lastmile.png", cwd=pipeline)
    assert out.returncode == 0, out.stderr
    data = json.loads((pipeline / "lastmile.json").read_text())
    (condition,) = data["conditions"]
    assert condition["condition"] == "noise:kind=white,snr=5"
    assert {g["group"]["accent"] for g in condition["groups"]} == {"en-us", "es"}
    assert data["findings"][0].startswith("white noise") or "noise" in data["findings"][0]
    assert "overall" in out.stdout


def test_bad_audio_is_listed_and_skippable(pipeline, tmp_path, forked_cli):
    manifest = pd.read_csv(pipeline / "corpus" / "manifest.csv").head(4)
    manifest["audio"] = [str(pipeline / "corpus" / a) for a in manifest.audio]
    manifest.loc[1, "audio"] = str(tmp_path / "missing.wav")
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF1234WAVEjunk")
    manifest.loc[2, "audio"] = str(tmp_path / "corrupt.wav")
    manifest.to_csv(tmp_path / "m.csv", index=False)
    out = run("transcribe", tmp_path / "m.csv", "-o", tmp_path / "h.csv", cwd=pipeline, cli=forked_cli)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    text = " ".join(out.stderr.split())
    assert "missing.wav" in text and "corrupt.wav" in text and "row 1" in text and "row 2" in text
    out = run("transcribe", tmp_path / "m.csv", "--skip-bad-audio", "-o", tmp_path / "h.csv", cwd=pipeline, cli=forked_cli)
    assert out.returncode == 0, out.stderr
    assert len(pd.read_csv(tmp_path / "h.csv")) == 2
    assert "skipped" in out.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--condition", "hum:freq=abc"], "freq"),
        (["--condition", "thunder:snr=3"], "thunder"),
        (["--asr", "nope"], "nope"),
        (["--asr", "http", "--option", "url=http://127.0.0.1:9/asr"], "127.0.0.1:9"),
        (["--text-column-does-not-exist"], "No such option"),
    ],
)
def test_bad_options(pipeline, args, message, forked_cli):
    out = run("transcribe", "corpus/manifest.csv", *args, "-o", "x.parquet", cwd=pipeline, cli=forked_cli)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert message in " ".join(out.stderr.split())


def test_column_options_and_a_transcript_in_the_wrong_column(pipeline, tmp_path, forked_cli):
    manifest = pd.read_csv(pipeline / "corpus" / "manifest.csv").head(2)
    manifest["audio"] = [str(pipeline / "corpus" / a) for a in manifest.audio]
    manifest = manifest.rename(columns={"text": "words", "audio": "wav_file"})
    manifest.to_csv(tmp_path / "m.csv", index=False)
    out = run("transcribe", tmp_path / "m.csv", "-o", tmp_path / "h.csv", cwd=pipeline, cli=forked_cli)
    assert out.returncode == 2
    text = " ".join(out.stderr.split())
    assert "no audio path column" in text and "--audio-column" in text and "wav_file" in text
    out = run("transcribe", tmp_path / "m.csv", "--audio-column", "wav_file", "--text-column", "wordz", "-o", tmp_path / "h.csv", cwd=pipeline, cli=forked_cli)
    assert out.returncode == 2 and "transcript column 'wordz'" in " ".join(out.stderr.split())
    out = run("transcribe", tmp_path / "m.csv", "--audio-column", "wav_file", "--text-column", "words", "-o", tmp_path / "h.csv", cwd=pipeline, cli=forked_cli)
    assert out.returncode == 0, out.stderr
    assert pd.read_csv(tmp_path / "h.csv").reference.tolist() == manifest.words.tolist()


def test_an_accent_that_speaks_english_is_refused(tmp_path, forked_cli):
    out = run("corpus", "synth", "c", "--accents", "en-us,hi,zh", "--speakers", "1", "--utterances", "2", cwd=tmp_path, cli=forked_cli)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    message = " ".join(out.stderr.split())
    assert "not a non-native accent" in message and "hi reads 100% of the words" in message
    assert "--no-check-accents" in message
    assert not (tmp_path / "c" / "manifest.csv").exists()
