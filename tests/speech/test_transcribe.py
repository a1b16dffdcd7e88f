"""Transcribing a manifest: conditions, the cache, resuming, workers, bad audio, Ray."""

from __future__ import annotations

import json
import sqlite3
import struct
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest

from groupwise._errors import InputError
from groupwise.speech._asr import TranscriptionError
from groupwise.speech._audio import AudioError, resample, write_wav
from groupwise.speech._espeak import Voice, synthesize
from groupwise.speech._transcribe import CACHE_FILE, default_cache_dir, transcribe

SENTENCES = [
    ("the quick brown fox jumps over the lazy dog", Voice("en-us")),
    ("please call stella", Voice("en-gb-scotland", "f2")),
    ("bring the blue cheese from the store", Voice("hi", "m3", rate=140)),
    ("we need a small plastic snake", Voice("fr", "f1")),
    ("six spoons of fresh snow peas", Voice("en-029", "m2")),
    ("ask her to call the doctor today", Voice("de", "f3", rate=170)),
]
NOISE = "noise:kind=white,snr=10"
SHORT = [1, 3, 4]  # the shortest utterances, for the tests that really recognise speech


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Six eSpeak utterances as 16 kHz WAV files, and their manifest."""
    folder = tmp_path_factory.mktemp("wavs")
    rows = []
    for i, (text, voice) in enumerate(SENTENCES):
        audio, rate = synthesize(text, voice)
        path = folder / f"utt{i}.wav"
        write_wav(path, 0.8 * resample(audio, rate, 16000), 16000)
        rows.append({"audio": str(path), "reference": text, "accent": voice.language})
    return pd.DataFrame(rows, index=[f"u{i}" for i in range(len(rows))])


@pytest.fixture
def recogniser(tmp_path):
    """A command backend that describes the audio it gets and counts its calls.

    It fails (exit 1) on the call whose number is written in the ``fail_at`` file.
    """
    script = tmp_path / "asr.py"
    script.write_text(
        textwrap.dedent(
            """
            import hashlib, os, sys, wave
            audio, counter, fail_at = sys.argv[1:4]
            with open(counter, "a") as f:
                f.write("x\\n")
            with open(counter) as f:
                calls = len(f.read().split())
            if os.path.exists(fail_at) and int(open(fail_at).read()) == calls:
                print("recogniser crashed", file=sys.stderr)
                sys.exit(1)
            with wave.open(audio) as w:
                frames = w.readframes(w.getnframes())
                print("frames", w.getnframes(), "rate", w.getframerate(), "channels", w.getnchannels(),
                      "sum", hashlib.sha1(frames).hexdigest()[:8])
            """
        )
    )
    counter, fail_file = tmp_path / "calls.txt", tmp_path / "fail_at.txt"

    class Recogniser:
        options = {"cmd": [sys.executable, str(script), "{audio}", str(counter), str(fail_file)]}

        @staticmethod
        def calls() -> int:
            return len(counter.read_text().split()) if counter.exists() else 0

        @staticmethod
        def fail_at(n: int | None) -> None:
            if n is None:
                fail_file.unlink(missing_ok=True)
            else:
                fail_file.write_text(str(n))

    return Recogniser


def run(manifest, cache, recogniser=None, **kwargs):
    kwargs.setdefault("progress", False)
    if recogniser is not None:
        kwargs.setdefault("backend", "command")
        kwargs.setdefault("backend_options", recogniser.options)
    return transcribe(manifest, cache=cache, **kwargs)


# --------------------------------------------------------------------------- results and cache


def test_conditions_rows_and_cache_hits(corpus, recogniser, tmp_path):
    out = run(corpus, tmp_path / "cache", recogniser, conditions=["baseline", "noise:snr=10,kind=white"])
    assert len(out) == 12 and recogniser.calls() == 12
    assert list(out.columns) == [*corpus.columns, "condition", "hypothesis", "audio_seconds", "cached", "error"]
    assert list(out.index) == list(corpus.index) * 2
    assert out["condition"].tolist() == ["baseline"] * 6 + [NOISE] * 6  # canonical spec
    assert out["error"].isna().all() and not out["cached"].any()
    assert out["hypothesis"].str.contains("rate 16000 channels 1").all()
    base, noisy = out[out.condition == "baseline"], out[out.condition == NOISE]
    assert (base["hypothesis"].to_numpy() != noisy["hypothesis"].to_numpy()).all()
    assert np.allclose(base["audio_seconds"], noisy["audio_seconds"]) and (base["audio_seconds"] > 1).all()
    assert (tmp_path / "cache" / CACHE_FILE).is_file()

    again = run(corpus, tmp_path / "cache", recogniser, conditions=["baseline", NOISE])
    assert again["cached"].all() and recogniser.calls() == 12  # nothing ran
    pd.testing.assert_frame_equal(again.drop(columns="cached"), out.drop(columns="cached"))

    # Another seed gives other noise, but the same baseline.
    reseeded = run(corpus, tmp_path / "cache", recogniser, conditions=["baseline", NOISE], seed=1)
    assert reseeded["cached"].tolist() == [True] * 6 + [False] * 6 and recogniser.calls() == 18
    assert (reseeded["hypothesis"].iloc[6:].to_numpy() != out["hypothesis"].iloc[6:].to_numpy()).all()


def test_noise_is_reproducible_without_cache(corpus, recogniser, tmp_path):
    first = run(corpus.iloc[:2], False, recogniser, conditions=[NOISE])
    second = run(corpus.iloc[:2], False, recogniser, conditions=[NOISE])
    assert first["hypothesis"].tolist() == second["hypothesis"].tolist()
    assert recogniser.calls() == 4 and not list(tmp_path.glob("**/*.sqlite"))


def test_duplicate_files_are_recognised_once(corpus, recogniser, tmp_path):
    twice = pd.concat([corpus.iloc[:2], corpus.iloc[:2]])
    out = run(twice, tmp_path / "c.sqlite", recogniser)
    assert len(out) == 4 and recogniser.calls() == 2
    assert out["hypothesis"].iloc[0] == out["hypothesis"].iloc[2]
    assert (tmp_path / "c.sqlite").is_file()


def test_cache_is_keyed_on_the_backend(corpus, recogniser, tmp_path):
    run(corpus.iloc[:2], tmp_path, recogniser)
    other = {**recogniser.options, "sample_rate": 8000}
    out = run(corpus.iloc[:2], tmp_path, recogniser, backend_options=other)
    assert not out["cached"].any() and out["hypothesis"].str.contains("rate 8000").all()
    with sqlite3.connect(tmp_path / CACHE_FILE) as db:
        assert db.execute("SELECT count(*) FROM transcripts").fetchone()[0] == 4
        assert db.execute("SELECT count(*) FROM backends").fetchone()[0] == 2
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_resume_after_a_crash_redoes_only_what_is_missing(corpus, recogniser, tmp_path):
    recogniser.fail_at(4)
    with pytest.raises(TranscriptionError, match=r"row u3 .*recogniser crashed.*3 results.*resumes"):
        run(corpus, tmp_path, recogniser)
    assert recogniser.calls() == 4
    recogniser.fail_at(None)
    out = run(corpus, tmp_path, recogniser)
    assert out["cached"].tolist() == [True] * 3 + [False] * 3
    assert recogniser.calls() == 7 and out["error"].isna().all()


def test_failures_can_be_skipped(corpus, recogniser, tmp_path):
    recogniser.fail_at(2)
    out = run(corpus.iloc[:3], tmp_path, recogniser, on_error="skip")
    assert out["error"].notna().tolist() == [False, True, False]
    assert out["hypothesis"].isna().tolist() == [False, True, False]
    assert "recogniser crashed" in out["error"].iloc[1]
    assert [p["row"] for p in out.attrs["problems"]] == ["u1"]
    recogniser.fail_at(None)
    assert run(corpus.iloc[:3], tmp_path, recogniser)["cached"].tolist() == [True, False, True]


# --------------------------------------------------------------------------- a web service


class _FlakyService:
    """Transcribes ``successes`` requests, then answers 500 until ``recover()``."""

    def __init__(self, successes: int) -> None:
        self.lock = threading.Lock()
        self.ok = 0
        self.budget = successes
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with service.lock:
                    allowed = service.budget is None or service.ok < service.budget
                    service.ok += allowed
                riff = body.find(b"RIFF")
                samples = struct.unpack("<I", body[riff + 40 : riff + 44])[0] // 2
                status, payload = (200, json.dumps({"text": f"heard {samples}"})) if allowed else (500, "down")
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload.encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/asr"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def recover(self) -> None:
        with self.lock:
            self.budget = None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_http_outage_resumes_from_the_cache(corpus, tmp_path):
    service = _FlakyService(successes=3)
    try:
        options = {"url": service.url, "retries": 1, "backoff": 0.01}
        with pytest.raises(TranscriptionError, match=service.url):
            run(corpus, tmp_path, backend="http", backend_options=options, workers=2)
        assert service.ok == 3
        service.recover()
        out = run(corpus, tmp_path, backend="http", backend_options=options, workers=2)
        assert service.ok == 6  # the first three were not asked for again
        assert out["cached"].sum() == 3 and out["hypothesis"].str.startswith("heard ").all()
    finally:
        service.close()


# --------------------------------------------------------------------------- bad audio


@pytest.fixture
def messy(corpus, tmp_path):
    """Two good files, a missing one, a corrupt one, an empty one, a stereo 44.1 kHz one."""
    audio, rate = synthesize("the stereo file works", Voice("en-us"))
    stereo = np.stack([resample(audio, rate, 44100), 0.5 * resample(audio, rate, 44100)], axis=1)
    write_wav(tmp_path / "stereo.wav", stereo, 44100)
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(100))
    write_wav(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), 16000)
    paths = [
        corpus["audio"].iloc[0], str(tmp_path / "missing.wav"), str(tmp_path / "corrupt.wav"),
        str(tmp_path / "empty.wav"), str(tmp_path / "stereo.wav"), corpus["audio"].iloc[1], None,
    ]  # fmt: skip
    return pd.DataFrame({"audio": paths, "speaker": list("abcdefg")}, index=range(10, 17))


def test_bad_audio_is_listed_all_at_once(messy, recogniser, tmp_path):
    with pytest.raises(AudioError) as err:
        run(messy, tmp_path, recogniser)
    assert err.value.rows == [11, 12, 13, 16]
    for name in ("missing.wav", "corrupt.wav", "empty.wav"):
        assert name in str(err.value)
    assert "does not exist" in str(err.value) and "0 seconds" in str(err.value)
    assert recogniser.calls() == 0  # nothing ran before the check


def test_bad_audio_skipped_and_stereo_works(messy, recogniser, tmp_path, capsys):
    out = run(messy, tmp_path, recogniser, on_error="skip", progress=True)
    bad = out["error"].notna()
    assert out.index[bad].tolist() == [11, 12, 13, 16]
    assert out.loc[bad, "hypothesis"].isna().all() and out.loc[~bad, "hypothesis"].notna().all()
    assert recogniser.calls() == 3
    stereo = out.loc[14]
    assert "rate 16000 channels 1" in stereo["hypothesis"]
    frames = int(stereo["hypothesis"].split()[1])
    assert abs(frames / 16000 - stereo["audio_seconds"]) < 0.01
    assert len(out.attrs["problems"]) == 4
    err = capsys.readouterr().err
    assert "4 utterance(s) skipped" in err and "missing.wav" in err and "transcribed 3 utterances" in err


# --------------------------------------------------------------------------- options


def test_options_are_checked(corpus, tmp_path):
    with pytest.raises(InputError, match="no audio column 'wav'"):
        run(corpus, tmp_path, audio_column="wav")
    with pytest.raises(InputError, match="'condition'"):
        run(corpus.assign(condition="x"), tmp_path)
    with pytest.raises(InputError, match=r"^The 'workers' parameter of transcribe must be an int in \[1, inf\)"):
        run(corpus, tmp_path, workers=0)
    with pytest.raises(InputError, match="^The 'engine' parameter of transcribe must be one of 'local', 'ray'"):
        run(corpus, tmp_path, engine="dask")
    with pytest.raises(InputError, match="^The 'on_error' parameter of transcribe must be one of 'fail', 'skip'"):
        run(corpus, tmp_path, on_error="ignore")
    with pytest.raises(InputError):
        run(corpus, tmp_path, conditions=["thunder:snr=3"])
    with pytest.raises(InputError, match="backend"):
        run(corpus, tmp_path, backend="nope")


def test_ray_missing_says_how_to_install(corpus, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes "import ray" fail
    with pytest.raises(InputError, match=r"groupwise\[ray\]"):
        run(corpus, tmp_path, engine="ray")


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("GROUPWISE_CACHE", str(tmp_path / "gw"))
    assert default_cache_dir() == tmp_path / "gw"
    monkeypatch.delenv("GROUPWISE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "groupwise"


def test_empty_manifest(tmp_path):
    out = run(pd.DataFrame({"audio": []}), tmp_path)
    assert out.empty and "hypothesis" in out.columns


# --------------------------------------------------------------------------- real recognition


@pytest.fixture(scope="module")
def sphinx_results(corpus, tmp_path_factory):
    """PocketSphinx on three short utterances, baseline and noise, in this process."""
    cache = tmp_path_factory.mktemp("cache1")
    out = transcribe(corpus.iloc[SHORT], conditions=["baseline", NOISE], cache=cache, progress=False)
    return out, cache


def test_pocketsphinx_transcripts(sphinx_results):
    out, _ = sphinx_results
    assert out["hypothesis"].str.len().gt(0).all()
    assert (out["hypothesis"] == out["hypothesis"].str.lower()).all()
    assert out.attrs["transcription"]["transcribed"] == 6


def test_two_worker_processes_give_the_same_transcripts(corpus, sphinx_results, tmp_path, monkeypatch):
    from groupwise.speech import _transcribe

    # The calling process is normally one of the workers; here it must leave
    # everything to worker processes, so that they are what is tested.
    monkeypatch.setattr(_transcribe, "_CALLER_WORKS", False)
    in_process = []
    run_jobs = _transcribe._run_jobs
    monkeypatch.setattr(_transcribe, "_run_jobs", lambda *a, **k: in_process.append(1) or run_jobs(*a, **k))
    out, _ = sphinx_results
    baseline = out[out.condition == "baseline"]
    parallel = transcribe(corpus.iloc[SHORT], cache=tmp_path, workers=2, progress=False)
    assert parallel["hypothesis"].tolist() == baseline["hypothesis"].tolist()
    assert not in_process and parallel.attrs["transcription"]["processes"] >= 1
    # The worker processes wrote the cache themselves.
    again = transcribe(corpus.iloc[SHORT], cache=tmp_path, workers=2, progress=False)
    assert again["cached"].all() and again["hypothesis"].tolist() == baseline["hypothesis"].tolist()
    monkeypatch.undo()
    # As it runs by default: this process is one of the two workers.
    helped = transcribe(
        corpus.iloc[SHORT], conditions=["baseline", NOISE], cache=tmp_path / "2", workers=2, progress=False
    )
    assert helped["hypothesis"].tolist() == out["hypothesis"].tolist()


def test_ray_engine_gives_the_same_transcripts(corpus, sphinx_results, tmp_path):
    try:
        import ray  # noqa: F401
    except ImportError:
        pytest.skip('Ray is not installed (pip install "groupwise[ray]")')
    out, _ = sphinx_results
    done = transcribe(corpus.iloc[SHORT], cache=tmp_path, workers=2, engine="ray", progress=False)
    assert done["hypothesis"].tolist() == out[out.condition == "baseline"]["hypothesis"].tolist()
    assert not done["cached"].any()
