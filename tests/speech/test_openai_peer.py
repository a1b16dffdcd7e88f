"""The ``api=openai`` client against an independent server of the same API: faster-whisper-server.

faster-whisper-server (a FastAPI server by another author, from PyPI) answers
``POST /v1/audio/transcriptions`` with faster-whisper. It runs here offline on the local
tiny.en model directory, next to ``groupwise asr serve --asr whisper`` on the same model,
so the client is checked against a server whose code groupwise does not share.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import ExitStack

import jiwer
import pandas as pd
import pytest

from groupwise.speech._asr import get_backend
from groupwise.speech._audio import write_wav
from groupwise.speech._corpus import load_manifest
from groupwise.speech._espeak import Voice, synthesize
from groupwise.speech._normalize import parse_speech_normalizer
from groupwise.speech._transcribe import transcribe
from groupwise.speech._whisper import model_directory

SENTENCES = ["take two tablets every morning", "her blood pressure is normal today"]
VOICES = (Voice("en-us", "m3"), Voice("en-gb-scotland", "f2"))
# Greedy decoding on both servers keeps the file fast; both use int8 weights on the CPU.
BEAM = 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], log_path, env: dict[str, str]) -> tuple[subprocess.Popen, str, object]:
    port = _free_port()
    log = open(log_path, "wb")
    proc = subprocess.Popen([*args, "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env)
    return proc, f"http://127.0.0.1:{port}", log


def _wait_ready(proc: subprocess.Popen, url: str, log_path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(log_path.read_text())
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if json.load(r)["status"] == "ok":
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer /health in {timeout} s:\n{log_path.read_text()}")


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """faster-whisper-server and ``groupwise asr serve``, both on tiny.en, started side by side."""
    work = tmp_path_factory.mktemp("peer")
    config = work / "peer.yaml"
    # The request's ``model`` field is not read by this server (it reads ``model_name``,
    # default "whisper-1"), so the one model is registered under that name.
    config.write_text(
        json.dumps({
            "models": [{
                "name": "whisper-1",
                "path": str(model_directory("tiny.en")),
                "model_options": {"device": "cpu", "compute_type": "int8", "cpu_threads": 1},
                "transcribe_options": {"beam_size": BEAM, "condition_on_previous_text": False},
            }],
        })
    )  # fmt: skip
    offline = {**os.environ, "HF_HUB_OFFLINE": "1", "GROUPWISE_CACHE": str(work / "server-cache")}
    with ExitStack() as stack:
        started = {
            "peer": _start([sys.executable, "-m", "faster_whisper_server", "--config", str(config), "--host", "127.0.0.1"],
                           work / "peer.log", offline),
            "ours": _start([sys.executable, "-m", "groupwise.cli", "asr", "serve", "--asr", "whisper",
                            "--option", f"beam_size={BEAM}"], work / "ours.log", offline),
        }  # fmt: skip
        for proc, _, log in started.values():
            stack.callback(log.close)
            stack.callback(proc.wait, timeout=30)
            stack.callback(proc.terminate)
        urls = {}
        for name, (proc, url, _) in started.items():
            _wait_ready(proc, url, work / f"{name}.log")
            urls[name] = url
        yield urls, work


@pytest.fixture(scope="module")
def corpus(servers):
    _, work = servers
    rows = []
    for i, text in enumerate(SENTENCES):
        for j, voice in enumerate(VOICES):
            audio, rate = synthesize(text, voice)
            path = work / f"{i}{j}.wav"
            write_wav(path, audio, rate)
            rows.append({"audio": path.name, "text": text, "speaker": f"{voice.language}-{i}", "accent": voice.language})
    pd.DataFrame(rows).to_csv(work / "manifest.csv", index=False)
    return work / "manifest.csv"


def test_client_transcribes_through_the_peer_like_through_our_server(servers, corpus):
    urls, work = servers
    manifest = load_manifest(corpus)
    assert get_backend("http", api="openai", url=urls["peer"]).url == urls["peer"] + "/v1/audio/transcriptions"
    # The last-mile run below shares this cache: its clean pass is these transcripts.
    heard, own = (
        transcribe(manifest, backend="http", backend_options={"api": "openai", "url": urls[name], "timeout": 120},
                   cache=work / "client-cache")
        for name in ("peer", "ours")
    )  # fmt: skip
    assert heard["error"].isna().all(), heard["error"].tolist()
    norm = parse_speech_normalizer("english")
    refs, heard_words, own_words = (norm(list(texts)) for texts in (manifest["reference"], heard["hypothesis"], own["hypothesis"]))
    pairs = list(zip(refs, heard_words, own_words))
    assert all(heard_words), pairs
    us = (manifest["accent"] == "en-us").to_numpy()
    assert jiwer.wer([r for r, u in zip(refs, us) if u], [h for h, u in zip(heard_words, us) if u]) < 0.2, pairs
    assert jiwer.wer(refs, heard_words) < 0.7, pairs
    # Same model, weights and decoding behind two servers: the same words, or nearly.
    assert jiwer.wer(own_words, heard_words) < 0.15, pairs


def test_lastmile_end_to_end_against_the_peer(servers, corpus):
    urls, work = servers
    env = {**os.environ, "GROUPWISE_CACHE": str(work / "client-cache")}
    args = [sys.executable, "-m", "groupwise.cli", "lastmile", str(corpus), "--asr", "http",
            "--option", "api=openai", "--option", f"url={urls['peer']}", "--option", "timeout=120",
            "--condition", "telephone", "--normalize", "english", "--min-clusters", "2", "--n-boot", "200",
            "--json", str(work / "lastmile.json")]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=work, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads((work / "lastmile.json").read_text())
    (condition,) = result["conditions"]
    assert condition["condition"] == "telephone"
    assert {g["group"]["accent"] for g in condition["groups"]} == {"en-us", "en-gb-scotland"}
    clean = {g["group"]["accent"]: g["baseline"] for g in condition["groups"]}
    assert clean["en-us"] < 0.2, clean
