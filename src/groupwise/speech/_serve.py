"""Any groupwise recogniser behind an OpenAI-compatible transcription API.

Customers and auditors reach a provider's recogniser over HTTP. ``groupwise asr serve``
puts any backend (Whisper offline by default) behind the endpoint most speech services
copy, so the last mile can be tested end to end against a real service:

``POST /v1/audio/transcriptions``
    A multipart form with ``file`` (any audio libsndfile reads), and optionally
    ``model`` (accepted and echoed; the server runs the one recogniser it was started
    with), ``language``, ``response_format`` (``json``: ``{"text": ...}``, ``text``: the
    bare transcript, ``verbose_json``: text, language, duration and one segment) and
    ``temperature`` (accepted, ignored). Errors answer as OpenAI does:
    ``{"error": {"message", "type", "code"}}`` with status 400 (unreadable audio, bad
    field), 413 (request over the size limit) or 429 (rate limit, with Retry-After).
``GET /v1/models``
    The one model served.
``GET /health``
    ``{"status": "ok"}`` once the model is loaded.

The server listens on a loopback address only (it has no authentication), takes at most
``max_bytes`` per request and ``rate`` requests per second per client address (a token
bucket with a burst of ``burst``), and runs one recognition at a time (recognisers are
not thread-safe and use every core already).

FastAPI and uvicorn come with the ``service`` extra (``pip install "groupwise[service]"``).
"""


import ipaddress
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from groupwise._errors import InputError
from groupwise._validation import check_scalar

__all__ = ["create_app", "serve"]

FORMATS = ("json", "text", "verbose_json")


class _Buckets:
    """Token buckets per client address: ``rate`` per second, at most ``burst`` saved."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._state: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """0 when a request may go ahead, else the seconds until it may."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._state.get(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._state[client] = (tokens - 1.0, now)
                return 0.0
            self._state[client] = (tokens, now)
            return (1.0 - tokens) / self.rate


def _error(status: int, message: str, kind: str = "invalid_request_error", code: str | None = None,
           headers: dict[str, str] | None = None) -> Any:  # fmt: skip
    from fastapi.responses import JSONResponse

    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": None, "code": code}}, status_code=status, headers=headers
    )


def create_app(
    backend: str = "whisper",
    options: dict[str, Any] | None = None,
    *,
    max_bytes: int = 25 * 1024 * 1024,
    rate: float = 5.0,
    burst: int = 10,
) -> Any:
    """Build the FastAPI application serving ``backend`` (see :func:`get_backend`)."""
    try:
        from fastapi import FastAPI, Request
        from fastapi.responses import JSONResponse, PlainTextResponse
        from starlette.concurrency import run_in_threadpool
    except ImportError:
        raise InputError(
            "the transcription server needs FastAPI and uvicorn, which are not installed",
            fix='install them with pip install "groupwise[service]"',
        ) from None
    from groupwise._errors import GroupwiseError
    from groupwise.speech._asr import get_backend
    from groupwise.speech._audio import read_audio

    recogniser = get_backend(backend, **(options or {}))
    recogniser.load()
    model_id = f"groupwise-{recogniser.name}" + (
        f"-{os.path.basename(str(getattr(recogniser, 'model_name', '')))}" if getattr(recogniser, "model_name", None) else ""
    )
    buckets = _Buckets(rate, burst)
    busy = threading.Lock()
    app = FastAPI(title="groupwise transcription API", version="1", docs_url=None, redoc_url=None)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "model": model_id}

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": model_id, "object": "model", "owned_by": "groupwise"}]}

    @app.post("/v1/audio/transcriptions")
    async def transcriptions(request: Request) -> Any:
        client = request.client.host if request.client else "unknown"
        wait = buckets.take(client)
        if wait > 0:
            return _error(
                429, f"rate limit of {rate:g} requests per second reached; retry in {wait:.2f} s",
                kind="rate_limit_error", code="rate_limit_exceeded", headers={"Retry-After": f"{max(wait, 0.01):.2f}"},
            )  # fmt: skip
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            return _error(413, f"the request is {int(declared):,} bytes, over the limit of {max_bytes:,}", code="too_large")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_bytes:
                return _error(413, f"the request is over the limit of {max_bytes:,} bytes", code="too_large")
        try:
            from starlette.datastructures import UploadFile
            from starlette.formparsers import MultiPartParser

            parser = MultiPartParser(request.headers, _replay(bytes(body)), max_files=1, max_fields=20)
            form = await parser.parse()
        except Exception as exc:  # noqa: BLE001 - any parse failure is the client's
            return _error(400, f"the request is not a multipart form: {exc or type(exc).__name__}")
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            return _error(400, "the form has no 'file' field with the audio", code="missing_file")
        response_format = str(form.get("response_format") or "json")
        if response_format not in FORMATS:
            return _error(400, f"response_format must be one of {', '.join(FORMATS)}, got {response_format!r}")
        language = form.get("language")
        data = await upload.read()
        await form.close()
        try:
            audio, sample_rate = await run_in_threadpool(_read, data, read_audio)
        except GroupwiseError as exc:
            return _error(400, exc.problem, code="invalid_audio")
        try:
            text = await run_in_threadpool(_recognise, recogniser, busy, audio, sample_rate)
        except GroupwiseError as exc:
            return _error(500, f"the recogniser failed: {exc.problem}", kind="server_error")
        duration = round(len(audio) / sample_rate, 3)
        if response_format == "text":
            return PlainTextResponse(text + "\n")
        if response_format == "verbose_json":
            return JSONResponse(
                {
                    "task": "transcribe", "language": str(language or "english"), "duration": duration, "text": text,
                    "segments": [{"id": 0, "start": 0.0, "end": duration, "text": text}],
                }
            )  # fmt: skip
        return JSONResponse({"text": text})

    return app


async def _replay(body: bytes) -> Any:
    yield body


def _read(data: bytes, read_audio: Any) -> tuple[Any, int]:
    with tempfile.TemporaryDirectory(prefix="groupwise-asr-serve-") as tmp:
        path = Path(tmp) / "upload"
        path.write_bytes(data)
        try:
            return read_audio(path)
        except InputError as exc:
            problem = exc.problem.replace(f"audio file {str(path)!r}", "the uploaded file")
            raise InputError(problem.replace(f"'{path}'", "it").replace(str(path), "it"), fix=exc.fix) from None


def _recognise(recogniser: Any, busy: threading.Lock, audio: Any, sample_rate: int) -> str:
    with busy:
        return recogniser.transcribe(audio, sample_rate)


def _check_loopback(host: str) -> None:
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise InputError(
            f"the transcription server listens on loopback addresses only, not {host!r}: it has no authentication",
            fix="use --host 127.0.0.1 (the default), and put an authenticating proxy in front to expose it",
        )


def serve(
    backend: str = "whisper",
    options: dict[str, Any] | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8010,
    max_bytes: int = 25 * 1024 * 1024,
    rate: float = 5.0,
    burst: int = 10,
) -> None:
    """Run the server until interrupted."""
    _check_loopback(host)
    check_scalar(port, "port", int, caller="serve", min_val=1, max_val=65535, fix="pass a free port, e.g. --port 8010")
    app = create_app(backend, options, max_bytes=max_bytes, rate=rate, burst=burst)
    import uvicorn

    uvicorn.run(app, host=host, port=int(port), log_level="warning", access_log=False)
