"""The bounty web service: :func:`create_app` builds the FastAPI application for one settings object.

Nothing is built at import time, so tests run one app per database (SQLite or PostgreSQL)
and ``serve`` builds the app in each process it starts. Building the app upgrades the
schema with the shipped migrations (unless ``serve`` already did) and reads the session key.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from groupwise.service import crud
from groupwise.service._predict import PredictLimits, PublicModels
from groupwise.service.core.config import Settings
from groupwise.service.core.db import make_engine, make_sessionmaker, upgrade
from groupwise.service.core.throttle import RecentSet, Throttle
from groupwise.service.engine import EngineViews, TTLCache

__all__ = ["create_app", "app_from_env"]

HERE = Path(__file__).resolve().parent
API_PREFIX = "/api/v1"
log = logging.getLogger("groupwise.service")

_CSP = (
    "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"')


def _object_count(body: bytes) -> int:
    """JSON objects in ``body`` (``{`` outside strings), counted in one linear pass."""
    return _STRINGS.sub(b"", body).count(b"{")


class _Guard:
    """Pure ASGI middleware: refuse oversized bodies before they are parsed, add security headers.

    Each route has its own cap (:meth:`cap`): uploads may be large, prediction requests
    less so, everything else is small. A body larger than its cap is refused from its
    Content-Length; a chunked body is counted as it streams and cut off at the same size.
    A prediction request is read whole (within its cap) and its rows are counted in the raw
    bytes, so a body of many tiny rows is refused before it becomes Python objects.
    """

    def __init__(self, app: Any, *, upload_body: int, predict_body: int, other_body: int, max_rows: int) -> None:
        self.app = app
        self.upload_body = upload_body
        self.predict_body = predict_body
        self.other_body = other_body
        self.max_rows = max_rows

    def cap(self, method: str, path: str) -> tuple[int, str]:
        if method == "POST" and path.startswith(f"{API_PREFIX}/programs/"):
            if path.endswith("/submissions"):
                return self.upload_body, "upload"
            if path.endswith("/predict"):
                return self.predict_body, "predict"
        if method == "POST" and path.startswith("/programs/") and path.endswith("/submit"):
            return self.upload_body, "upload"
        return self.other_body, "other"

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_body, kind = self.cap(scope.get("method", ""), scope.get("path", ""))
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > max_body):
            await self._too_large(send, kind, max_body)
            return
        started = False

        async def secured_send(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                extra = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (b"x-frame-options", b"DENY"),
                ]
                content_type = dict(message.get("headers") or []).get(b"content-type", b"")
                if content_type.startswith(b"text/html"):
                    extra.append((b"content-security-policy", _CSP.encode()))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        if kind == "predict":
            body = await self._read_all(receive, max_body)
            if body is None:
                await self._too_large(send, kind, max_body)
                return
            # One object per row plus the request object itself.
            if _object_count(body) > self.max_rows + 1:
                await self._refuse(send, 413, f"at most {self.max_rows} rows per request. Fix: send smaller batches")
                return
            replayed = False

            async def replay() -> dict:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, secured_send)
            return

        seen = 0

        async def counted_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_body:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counted_receive, secured_send)
        except _TooLarge:
            if not started:
                await self._too_large(send, kind, max_body)

    @staticmethod
    async def _read_all(receive: Any, cap: int) -> bytes | None:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b"".join(chunks)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > cap:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _too_large(self, send: Any, kind: str, cap: int) -> None:
        fix = {"upload": "submit a smaller model", "predict": "send fewer rows per request"}.get(kind, "send a smaller request")
        await self._refuse(send, 413, f"the request body is larger than the {cap / 1024:,.0f} KB this route accepts. Fix: {fix}")

    @staticmethod
    async def _refuse(send: Any, status: int, detail: str) -> None:
        body = json.dumps({"detail": detail}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"x-content-type-options", b"nosniff")]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


def create_app(settings: Settings, *, migrate: bool = True) -> FastAPI:
    """Build the service for ``settings``.

    Parameters
    ----------
    settings : Settings
    migrate : bool
        Upgrade the schema to the newest migration first (``serve`` does it once itself and
        passes False to the processes it starts).
    """
    from fastapi.templating import Jinja2Templates

    from groupwise.service.api.routes import admin, pages, programs, submissions, teams, utils

    engine = make_engine(settings.db_url)
    if migrate:
        upgrade(engine)
    sessions = make_sessionmaker(engine)
    with sessions() as session:
        secret = settings.secret_key or crud.session_secret(session)

    worker_holder: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.inprocess_worker:
            from groupwise.service.worker import Worker

            worker = Worker(settings, engine=engine, name="in-process")
            thread = threading.Thread(target=worker.run, name="bounty-worker", daemon=True)
            app.state.worker = worker
            worker_holder["thread"] = thread
            thread.start()
        stop_flushing = threading.Event()

        def flush_audit() -> None:
            while not stop_flushing.wait(settings.audit_flush_seconds):
                try:
                    app.state.audit_batch.flush()
                except Exception:  # noqa: BLE001 - keep flushing; the next round retries
                    log.exception("writing counted refusals to the audit log failed")

        flusher = threading.Thread(target=flush_audit, name="audit-flush", daemon=True)
        flusher.start()
        try:
            yield
        finally:
            stop_flushing.set()
            flusher.join(timeout=30)
            worker = getattr(app.state, "worker", None)
            if worker is not None:
                worker.stop()
                worker_holder["thread"].join(timeout=120)
                app.state.worker = None
            app.state.audit_batch.flush()
            app.state.public_models.close()
            app.state.views.close()
            engine.dispose()

    app = FastAPI(
        title="groupwise bias bounty",
        version="1",
        summary="Submit groups and models that fix the deployed model where it errs; only accept or reject is revealed.",
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        swagger_ui_parameters=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = sessions
    app.state.views = EngineViews()
    app.state.page_cache = TTLCache(settings.page_cache_seconds)
    app.state.worker = None
    app.state.public_models = PublicModels(
        PredictLimits(cpu_seconds=settings.predict_cpu_seconds, memory_mb=settings.predict_memory_mb,
                      wall_seconds=settings.predict_wall_seconds),
        keep=settings.bundles_kept,
    )
    app.state.audit_batch = crud.AuditBatch(sessions)
    app.state.auth_failures = Throttle(settings.auth_failures_per_minute, 60)
    app.state.known_good_tokens = RecentSet()
    # Per client address, in this process, before the database's shared counters.
    app.state.anonymous_predictions = Throttle(settings.predictions_per_hour, 3600)
    app.state.anonymous_bundles = Throttle(settings.bundle_downloads_per_hour, 3600)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["shell_quote"] = shlex.quote
    # A Python string literal for the copy-paste examples; autoescaping still applies to the HTML.
    templates.env.filters["py_str"] = lambda value: json.dumps(str(value))
    app.state.templates = templates

    for module in (utils, programs, submissions, teams, admin):
        app.include_router(module.router, prefix=API_PREFIX)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    app.add_middleware(
        SessionMiddleware,
        secret_key=secret,
        session_cookie="groupwise_session",
        max_age=int(crud.WEB_SESSION_LIFETIME.total_seconds()),
        same_site="lax",
        https_only=settings.secure_cookies,
    )
    app.add_middleware(
        _Guard,
        upload_body=2 * settings.max_upload_bytes + (1 << 20),
        predict_body=settings.max_predict_body_kb * 1024,
        other_body=settings.max_request_kb * 1024,
        max_rows=settings.max_prediction_rows,
    )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Logged in full for the operator; the client gets no internals.
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error; it was logged for the service's operator"}, status_code=500)

    return app


def app_from_env() -> FastAPI:
    """Factory for uvicorn's worker processes started by :func:`groupwise.service.serve`."""
    return create_app(Settings.from_env(), migrate=False)
