"""The OpenAI-compatible transcription server, as a real process, and the client that speaks it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pandas as pd
import pytest

from groupwise._errors import InputError
from groupwise.speech._asr import get_backend
from groupwise.speech._audio import write_wav
from groupwise.speech._espeak import Voice, synthesize
from groupwise.speech._serve import _Buckets, _check_loopback

EXE = [sys.executable, "-m", "groupwise.cli"]
SENTENCES = ["take two tablets every morning", "her blood pressure is normal today"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`groupwise asr serve --asr whisper` running in its own process."""
    work = tmp_path_factory.mktemp("serve")
    port = _free_port()
    log = open(work / "server.log", "wb")
    proc = subprocess.Popen(
        [*EXE, "asr", "serve", "--asr", "whisper", "--port", str(port), "--rate", "50", "--burst", "50", "--max-mb", "1"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "GROUPWISE_CACHE": str(work / "cache")},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            if proc.poll() is not None:
                raise AssertionError((work / "server.log").read_text())
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as r:
                    if json.load(r)["status"] == "ok":
                        break
            except OSError:
                time.sleep(0.2)
        yield url, work
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def corpus(server):
    _, work = server
    rows = []
    for i, text in enumerate(SENTENCES):
        for j, voice in enumerate((Voice("en-us", "m3"), Voice("en-gb-scotland", "f2"))):
            audio, rate = synthesize(text, voice)
            path = work / f"{i}{j}.wav"
            write_wav(path, audio, rate)
            rows.append({"audio": path.name, "text": text, "speaker": f"{voice.language}-{i}", "accent": voice.language})
    pd.DataFrame(rows).to_csv(work / "manifest.csv", index=False)
    return work / "manifest.csv"


def _post(url: str, body: bytes, content_type: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=120) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_response_formats_and_errors_like_openai(server, corpus):
    url, work = server
    wav = (work / "00.wav").read_bytes()
    for fmt in ("json", "text", "verbose_json"):
        boundary = "gwboundary"
        body = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="response_format"\r\n\r\n{fmt}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
            "Content-Type: audio/wav\r\n\r\n"
        ).encode() + wav + f"\r\n--{boundary}--\r\n".encode()
        status, answer = _post(url + "/v1/audio/transcriptions", body, f"multipart/form-data; boundary={boundary}")
        assert status == 200, answer
        text = answer.decode() if fmt == "text" else json.loads(answer)["text"]
        assert "tablets" in text.lower()
        if fmt == "verbose_json":
            assert json.loads(answer)["duration"] > 1
    status, answer = _post(url + "/v1/audio/transcriptions", b"--x\r\n", "multipart/form-data; boundary=x")
    assert status == 400 and "file" in json.loads(answer)["error"]["message"]
    status, answer = _post_early_answer(url + "/v1/audio/transcriptions", 2 * 1024 * 1024)
    assert status == 413 and json.loads(answer)["error"]["code"] == "too_large"


def _post_early_answer(url: str, size: int) -> tuple[int, bytes]:
    """POST a large body, reading the answer even if the server answers before it has all of it.

    A server that refuses a body by its Content-Length may answer and close while the client
    is still sending; the refusal is then read after the broken pipe.
    """
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    conn.putrequest("POST", parts.path)
    conn.putheader("Content-Type", "multipart/form-data; boundary=x")
    conn.putheader("Content-Length", str(size))
    conn.endheaders()
    try:
        chunk = b"0" * 65536
        for _ in range(size // len(chunk)):
            conn.send(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    response = conn.getresponse()
    try:
        return response.status, response.read()
    finally:
        conn.close()


def test_client_with_api_openai_and_unreadable_audio(server, corpus):
    url, work = server
    client = get_backend("http", api="openai", url=url)
    assert client.url == url + "/v1/audio/transcriptions" and client.form["model"] == "whisper-1"
    (work / "bad.wav").write_bytes(b"RIFF not really audio")
    # The client sends 16-bit WAV it writes itself, so a bad upload is made by hand here.
    boundary = "b"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.wav"\r\n\r\n').encode()
    status, answer = _post(url + "/v1/audio/transcriptions", body + b"garbage\r\n--b--\r\n", "multipart/form-data; boundary=b")
    message = json.loads(answer)["error"]["message"]
    assert status == 400 and "the uploaded file could not be read" in message and "/tmp" not in message
    with pytest.raises(InputError, match="api=openai"):
        get_backend("http", url=url, model="x")


def test_lastmile_end_to_end_against_the_real_server(server, corpus):
    url, work = server
    env = {**os.environ, "GROUPWISE_CACHE": str(work / "client-cache")}
    args = [*EXE, "lastmile", str(corpus), "--asr", "http", "--option", "api=openai", "--option", f"url={url}",
            "--condition", "telephone", "--normalize", "english", "--min-clusters", "2", "--n-boot", "200",
            "--json", str(work / "lastmile.json")]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=work, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads((work / "lastmile.json").read_text())
    (condition,) = result["conditions"]
    assert condition["condition"] == "telephone"
    assert {g["group"]["accent"] for g in condition["groups"]} == {"en-us", "en-gb-scotland"}
    # A server that is gone: one paragraph, exit 2, the finished transcripts stay cached.
    dead = [a.replace(url, f"http://127.0.0.1:{_free_port()}") for a in args] + ["--option", "retries=0"]
    gone = subprocess.run(dead, capture_output=True, text=True, env=env, cwd=work, check=False)
    assert gone.returncode == 2 and "Traceback" not in gone.stderr
    assert "cannot connect" in gone.stderr and "resumes" in " ".join(gone.stderr.split())


def test_rate_limit_and_loopback_only():
    buckets = _Buckets(rate=2.0, burst=2)
    assert buckets.take("a") == 0 and buckets.take("a") == 0
    assert 0 < buckets.take("a") <= 0.5
    assert buckets.take("b") == 0  # per client
    with pytest.raises(InputError, match="loopback"):
        _check_loopback("0.0.0.0")
    _check_loopback("127.0.0.1")
    _check_loopback("::1")


def test_rate_limited_server_answers_429_and_the_client_waits(tmp_path):
    from fastapi.testclient import TestClient

    from groupwise.speech._serve import create_app

    app = create_app("command", {"cmd": [sys.executable, "-c", "print('ok')", "{audio}"]}, rate=0.01, burst=1)
    audio, rate = synthesize("one", Voice("en-us"))
    write_wav(tmp_path / "a.wav", audio, rate)
    with TestClient(app) as client:
        files = {"file": ("a.wav", (tmp_path / "a.wav").read_bytes(), "audio/wav")}
        assert client.post("/v1/audio/transcriptions", files=files).json() == {"text": "ok"}
        limited = client.post("/v1/audio/transcriptions", files=files)
        assert limited.status_code == 429 and float(limited.headers["Retry-After"]) > 0
        assert limited.json()["error"]["type"] == "rate_limit_error"
    failing = create_app("command", {"cmd": [sys.executable, "-c", "raise SystemExit(3)", "{audio}"]})
    with TestClient(failing) as client:
        broken = client.post("/v1/audio/transcriptions", files=files)
        assert broken.status_code == 500 and broken.json()["error"]["type"] == "server_error"
