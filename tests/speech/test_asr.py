"""Recogniser backends: PocketSphinx on synthetic speech, a local web service, a command."""

from __future__ import annotations

import json
import re
import socket
import struct
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from groupwise._errors import InputError
from groupwise.speech._asr import (
    BACKENDS,
    Backend,
    BackendUnavailable,
    TranscriptionError,
    get_backend,
    parse_backend_options,
)
from groupwise.speech._audio import resample
from groupwise.speech._espeak import Voice, synthesize

SENTENCE = "please call stella and ask her to bring these things with her from the store"
DOMAIN = [
    SENTENCE,
    "six spoons of fresh snow peas and five thick slabs of blue cheese",
    "please ask her to call the store",
    "bring the snow peas from the store",
    "we also need a small plastic snake and a big toy frog for the kids",
]


@pytest.fixture(scope="module")
def speech():
    """A sentence spoken by eSpeak, at its native 22050 Hz."""
    return synthesize(SENTENCE, Voice("en-us", rate=150))


def _wer(ref: str, hyp: str) -> float:
    r, h = ref.split(), hyp.split()
    d = np.arange(len(h) + 1)
    for i, rw in enumerate(r, 1):
        prev, d[0] = d.copy(), i
        for j, hw in enumerate(h, 1):
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (rw != hw))
    return d[-1] / len(r)


# --------------------------------------------------------------------------- registry


def test_unknown_backend_lists_the_known_ones():
    with pytest.raises(InputError) as err:
        get_backend("nope")
    for name in BACKENDS:
        assert name in str(err.value)


def test_unknown_option_is_named():
    with pytest.raises(InputError, match="'colour'"):
        get_backend("pocketsphinx", colour="blue")


def test_parse_backend_options():
    got = parse_backend_options(
        ["lm=domain.lm", "timeout=10", "rate=0.5", "raw=false", "key=results.0.transcript", "headers={\"A\": \"b\"}"]
    )
    assert got == {
        "lm": "domain.lm", "timeout": 10, "rate": 0.5, "raw": False,
        "key": "results.0.transcript", "headers": {"A": "b"},
    }  # fmt: skip
    with pytest.raises(InputError, match="NAME=VALUE"):
        parse_backend_options(["timeout"])
    with pytest.raises(InputError, match="twice"):
        parse_backend_options(["a=1", "a=2"])


# --------------------------------------------------------------------------- pocketsphinx


@pytest.fixture(scope="module")
def sphinx():
    with get_backend("pocketsphinx") as backend:
        yield backend


def test_pocketsphinx_transcribes_speech_and_resamples(sphinx, speech):
    audio, rate = speech
    assert rate == 22050 and sphinx.sample_rate == 16000
    hyp = sphinx.transcribe(audio, rate)
    words = hyp.split()
    assert words and hyp == hyp.lower() and all(re.fullmatch(r"[a-z'.\-_()0-9]+", w) for w in words)
    assert _wer(SENTENCE, hyp) < 1.0
    # Resampling inside transcribe() is the same as resampling before.
    assert sphinx.transcribe(resample(audio, rate, 16000), 16000) == hyp
    assert sphinx.transcribe_batch([(audio, rate)]) == [hyp]


def test_pocketsphinx_config_is_json_and_tracks_the_lm(tmp_path, sphinx):
    default = sphinx.config()
    assert json.loads(json.dumps(default)) == default
    assert default == get_backend("pocketsphinx").config()
    lm = tmp_path / "a.lm"
    lm.write_text("\\data\\\nngram 1=3\n\n\\1-grams:\n-1 </s>\n-1 <s> 0\n-1 hello 0\n\n\\end\\\n")
    with_lm = get_backend("pocketsphinx", lm=str(lm)).config()
    assert with_lm != default
    lm.write_text(lm.read_text().replace("hello", "howdy"))
    assert get_backend("pocketsphinx", lm=str(lm)).config() != with_lm
    with pytest.raises(InputError, match="does not exist"):
        get_backend("pocketsphinx", lm=str(tmp_path / "missing.lm"))


def test_pocketsphinx_with_a_domain_lm_gets_closer(tmp_path, sphinx, speech):
    from groupwise.speech import _lm

    if not hasattr(_lm, "build_lm"):
        pytest.skip("groupwise.speech._lm has no build_lm")
    lm = tmp_path / "domain.lm"
    _lm.build_lm(DOMAIN, out=lm)
    audio, rate = speech
    general = _wer(SENTENCE, sphinx.transcribe(audio, rate))
    with get_backend("pocketsphinx", lm=str(lm)) as domain:
        narrowed = _wer(SENTENCE, domain.transcribe(audio, rate))
    assert narrowed < general and narrowed < 0.5


def test_audio_is_checked(sphinx):
    with pytest.raises(InputError, match="NaN"):
        sphinx.transcribe(np.array([0.0, np.nan], dtype=np.float32), 16000)
    with pytest.raises(InputError, match="1-D"):
        sphinx.transcribe(np.zeros((2, 2, 2), dtype=np.float32), 16000)
    with pytest.raises(InputError, match="sample_rate"):
        sphinx.transcribe(np.zeros(10, dtype=np.float32), 0)
    assert sphinx.transcribe(np.zeros(0, dtype=np.float32), 16000) == ""


# --------------------------------------------------------------------------- optional engines


def test_faster_whisper_is_the_whisper_backend_and_wants_a_real_model(tmp_path):
    with pytest.raises(BackendUnavailable, match="no local Whisper model"):
        get_backend("faster-whisper", model=str(tmp_path / "no-model"))


def test_whisper_cpp_when_installed(tmp_path):
    try:
        backend = get_backend("whisper-cpp", model=str(tmp_path / "ggml-none.bin"))
    except BackendUnavailable as err:
        assert "pywhispercpp" in str(err) or "ggml" in str(err)
        pytest.skip(f"whisper.cpp is not available here: {err}")
    backend.close()  # pragma: no cover


# --------------------------------------------------------------------------- http


class _Service:
    """A loopback transcription service with failure modes, for the http backend."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.fail_first = 0  # answer 500 to this many requests first
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                mode = self.path.strip("/").split("?")[0]
                with service.lock:
                    service.requests.append(
                        {"path": self.path, "type": self.headers.get("Content-Type", ""), "time": time.monotonic(),
                         "auth": self.headers.get("Authorization")}
                    )  # fmt: skip
                    count = len(service.requests)
                    failing = service.fail_first > 0
                    if failing:
                        service.fail_first -= 1
                riff = body.find(b"RIFF")  # the data chunk's size, from the WAV header
                samples = struct.unpack("<I", body[riff + 40 : riff + 44])[0] // 2 if riff >= 0 else -1
                text = f"got {samples} samples"
                if mode == "error500" and failing:
                    return self._send(500, b"overloaded")
                if mode == "limited" and count == 1:
                    return self._send(429, b"slow down", {"Retry-After": "1"})
                if mode == "slow":
                    time.sleep(1.0)
                if mode == "badjson":
                    return self._send(200, b"<html>not json</html>", {"Content-Type": "text/html"})
                if mode == "notfound":
                    return self._send(404, b"no such model")
                if mode == "nested":
                    return self._json({"results": [{"transcript": text}]})
                if mode == "raw":
                    return self._json({"text": f"raw {self.headers.get('Content-Type')} {samples}"})
                return self._json({"text": text})

            def _json(self, obj):
                self._send(200, json.dumps(obj).encode(), {"Content-Type": "application/json"})

            def _send(self, status, body, headers=None):
                try:
                    self.send_response(status)
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client gave up (timeout test)
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda *a: None
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def service():
    s = _Service()
    yield s
    s.close()


TONE = (0.1 * np.sin(np.arange(8000) / 5)).astype(np.float32)  # half a second at 16 kHz


def test_http_success_multipart(service):
    backend = get_backend("http", url=f"{service.url}/ok", headers={"Authorization": "Bearer $GW_TEST_TOKEN"})
    assert backend.transcribe(TONE, 16000) == "got 8000 samples"
    assert backend.transcribe(TONE, 8000) == "got 16000 samples"  # resampled to 16 kHz
    assert service.requests[0]["type"].startswith("multipart/form-data")
    assert "authorization" not in json.dumps(backend.config()).lower()


def test_http_raw_body_and_key_path(service):
    raw = get_backend("http", url=f"{service.url}/raw", raw=True, sample_rate=8000)
    assert raw.transcribe(TONE, 16000) == "raw audio/wav 4000"
    nested = get_backend("http", url=f"{service.url}/nested", key="results.0.transcript")
    assert nested.transcribe(TONE, 16000) == "got 8000 samples"


def test_http_retries_server_errors(service):
    service.fail_first = 2
    backend = get_backend("http", url=f"{service.url}/error500", retries=3, backoff=0.01)
    assert backend.transcribe(TONE, 16000) == "got 8000 samples"
    assert len(service.requests) == 3


def test_http_gives_up_after_retries(service):
    service.fail_first = 10
    backend = get_backend("http", url=f"{service.url}/error500", retries=2, backoff=0.01)
    with pytest.raises(TranscriptionError, match=r"3 attempts.*status 500") as err:
        backend.transcribe(TONE, 16000)
    assert service.url in str(err.value)


def test_http_honours_retry_after(service):
    backend = get_backend("http", url=f"{service.url}/limited", backoff=0.01)
    start = time.monotonic()
    assert backend.transcribe(TONE, 16000) == "got 8000 samples"
    assert time.monotonic() - start >= 0.95
    assert len(service.requests) == 2


def test_http_timeout(service):
    backend = get_backend("http", url=f"{service.url}/slow", timeout=0.2, retries=0)
    with pytest.raises(TranscriptionError, match="timeout") as err:
        backend.transcribe(TONE, 16000)
    assert f"{service.url}/slow" in str(err.value)


def test_http_bad_json_and_missing_key(service):
    with pytest.raises(TranscriptionError, match=r"not JSON.*'text'") as err:
        get_backend("http", url=f"{service.url}/badjson").transcribe(TONE, 16000)
    assert "status 200" in str(err.value)
    with pytest.raises(TranscriptionError, match=r"no key 'results.0.words'") as err:
        get_backend("http", url=f"{service.url}/nested", key="results.0.words").transcribe(TONE, 16000)
    assert service.url in str(err.value) and "'transcript'" in str(err.value)


def test_http_client_errors_are_not_retried(service):
    with pytest.raises(TranscriptionError, match="404.*no such model"):
        get_backend("http", url=f"{service.url}/notfound", backoff=0.01).transcribe(TONE, 16000)
    assert len(service.requests) == 1


def test_http_rate_limit_is_shared_by_threads(service):
    rate, per_thread, threads = 20.0, 2, 3
    backend = get_backend("http", url=f"{service.url}/ok", rate=rate)
    start = time.monotonic()
    workers = [
        threading.Thread(target=lambda: [backend.transcribe(TONE, 16000) for _ in range(per_thread)])
        for _ in range(threads)
    ]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    n = per_thread * threads
    assert len(service.requests) == n
    assert time.monotonic() - start >= (n - 1) / rate
    gaps = np.diff(sorted(r["time"] for r in service.requests))
    assert gaps.min() >= 0.5 / rate  # evenly spaced, not bursts


def test_http_unreachable():
    with socket.socket() as s:  # a port on loopback that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backend = get_backend("http", url=f"http://127.0.0.1:{port}/asr", retries=1, backoff=0.01)
    with pytest.raises(TranscriptionError, match=f"127.0.0.1:{port}.*cannot connect"):
        backend.transcribe(TONE, 16000)


def test_http_options_are_checked():
    with pytest.raises(InputError, match="url"):
        get_backend("http")
    with pytest.raises(InputError, match="^The 'retries' parameter of get_backend\\('http'\\)"):
        get_backend("http", url="http://127.0.0.1:9/", retries=-1)
    with pytest.raises(InputError, match="rate"):
        get_backend("http", url="http://127.0.0.1:9/", rate=0)
    secret = get_backend("http", url="http://127.0.0.1:9/asr?api_key=s3cret&model=big")
    assert "s3cret" not in json.dumps(secret.config()) and "model=big" in secret.config()["url"]


# --------------------------------------------------------------------------- command


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "asr.py"
    path.write_text(
        textwrap.dedent(
            """
            import sys, wave
            if sys.argv[2] == "fail":
                print("the model file is missing", file=sys.stderr)
                sys.exit(3)
            if sys.argv[2] == "sleep":
                import time; time.sleep(5)
            with wave.open(sys.argv[1]) as w:
                print("  heard", w.getnframes(), "frames\\n at", w.getframerate(), " ")
            """
        )
    )
    return path


def test_command_backend(script):
    backend = get_backend("command", cmd=[sys.executable, str(script), "{audio}", "ok"])
    assert backend.transcribe(TONE, 16000) == "heard 8000 frames at 16000"
    as_string = get_backend("command", cmd=f"'{sys.executable}' '{script}' {{audio}} ok", sample_rate=8000)
    assert as_string.transcribe(TONE, 16000) == "heard 4000 frames at 8000"
    assert as_string.config() != backend.config()


def test_command_failure_shows_stderr(script):
    backend = get_backend("command", cmd=[sys.executable, str(script), "{audio}", "fail"])
    with pytest.raises(TranscriptionError, match="status 3: the model file is missing"):
        backend.transcribe(TONE, 16000)


def test_command_timeout(script):
    backend = get_backend("command", cmd=[sys.executable, str(script), "{audio}", "sleep"], timeout=0.5)
    with pytest.raises(TranscriptionError, match="within 0.5 s"):
        backend.transcribe(TONE, 16000)


def test_command_needs_placeholder_and_program(script):
    with pytest.raises(InputError, match="placeholder"):
        get_backend("command", cmd=[sys.executable, str(script)])
    with pytest.raises(InputError, match="not found"):
        get_backend("command", cmd="no-such-asr-program {audio}")


def test_backend_is_the_interface():
    class Echo(Backend):
        name = "echo"

        def config(self):
            return {"backend": "echo"}

        def _recognise(self, audio):
            return f"{audio.size}"

    assert Echo().transcribe_batch([(TONE, 16000), (TONE, 8000)]) == ["8000", "16000"]
