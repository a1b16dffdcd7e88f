"""The bounty web service: :func:`create_app` builds the FastAPI application for one settings object.

Nothing is built at import time, so tests run one app per database (SQLite or PostgreSQL)
and ``serve`` builds the app in each process it starts. Building the app upgrades the
schema with the shipped migrations (unless ``serve`` already did) and reads the session key.
"""

from __future__ import annotations

import json
import logging
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
from groupwise.service.core.config import Settings
from groupwise.service.core.db import make_engine, make_sessionmaker, upgrade
from groupwise.service.engine import EngineViews, TTLCache

__all__ = ["create_app", "app_from_env"]

HERE = Path(__file__).resolve().parent
API_PREFIX = "/api/v1"
log = logging.getLogger("groupwise.service")

_CSP = (
    "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


class _Guard:
    """Pure ASGI middleware: refuse oversized bodies before they are parsed, add security headers.

    A body larger than ``max_body`` is refused from its Content-Length; a chunked body is
    counted as it streams and cut off at the same size.
    """

    def __init__(self, app: Any, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await self._too_large(send)
            return
        seen = 0
        started = False

        async def counted_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise _TooLarge
            return message

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

        try:
            await self.app(scope, counted_receive, secured_send)
        except _TooLarge:
            if not started:
                await self._too_large(send)

    async def _too_large(self, send: Any) -> None:
        body = b'{"detail":"the request body is larger than the service accepts. Fix: submit a smaller model"}'
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
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
        try:
            yield
        finally:
            worker = getattr(app.state, "worker", None)
            if worker is not None:
                worker.stop()
                worker_holder["thread"].join(timeout=120)
                app.state.worker = None
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
        max_age=14 * 24 * 3600,
        same_site="lax",
        https_only=settings.secure_cookies,
    )
    app.add_middleware(_Guard, max_body=2 * settings.max_upload_bytes + (1 << 20))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Logged in full for the operator; the client gets no internals.
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error; it was logged for the service's operator"}, status_code=500)

    return app


def app_from_env() -> FastAPI:
    """Factory for uvicorn's worker processes started by :func:`groupwise.service.serve`."""
    return create_app(Settings.from_env(), migrate=False)
