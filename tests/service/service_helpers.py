"""Fixtures of the service tests: databases (SQLite and PostgreSQL), a running app, teams.

Not a conftest.py (the tests tree has one already): test modules import these by name.
The synthetic program and its rule models come from the bounty engine's test helpers.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# The tests directories are not packages; the engine's helpers live beside this folder.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bounty"))

from bounty_helpers import base_program, make_program, models, rule_model, synthetic  # noqa: E402,F401 - re-exported fixtures

from groupwise.service.core.config import Settings  # noqa: E402

PG_HOST = os.environ.get("GROUPWISE_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("GROUPWISE_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("GROUPWISE_TEST_PG_USER", "postgres")
ADMIN_TOKEN = "gwb_test-admin-token-0123456789abcdefghijklmnopqrstu"


def postgres_available() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'psycopg[binary]')"
    try:
        with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means: skip
        return f"no PostgreSQL server at {PG_HOST}:{PG_PORT} (user {PG_USER}): {str(exc).strip()[:200]}"
    return None


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    import psycopg

    why = postgres_available()
    if why is not None:
        if os.environ.get("GROUPWISE_REQUIRE_POSTGRES"):  # set by .ci/run, where a skip would hide a gap
            pytest.fail(f"the PostgreSQL tests must run here: {why}")
        pytest.skip(f"PostgreSQL tests skipped: {why}. Start one (the CI script does) to run them.")
    name = f"groupwise_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def database(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'bounty.db'}"
    else:
        with postgres_database() as url:
            yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> Iterator[str]:
    with database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'bounty.db'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.fixture
def program_dir(base_program, tmp_path) -> Path:
    """A fresh copy of the synthetic engine program at version 0."""
    root = tmp_path / "program"
    shutil.copytree(base_program, root)
    return root


def service_settings(db_url: str, **changes: Any) -> Settings:
    """Test settings: no page cache, fast polling and decisions shown as soon as made.

    The engine's "auto" decision delay (three seconds or more per submission, so that the
    time to an answer says nothing about the holdout run) is turned off here, since most
    tests submit many models; ``test_service_api.py`` checks the default delay through the
    service, and ``tests/bounty/test_bounty_holdout.py`` checks the engine's.
    """
    base = dict(db_url=db_url, page_cache_seconds=0.0, poll_seconds=0.05, lease_seconds=10.0, submissions_per_hour=1000,
                submissions_per_day=10000, extra={"decision_seconds": 0.0})
    base.update(changes)
    return Settings(**base)


@dataclass
class Service:
    """A running app (TestClient) with an admin token and one program, ``synthetic``."""

    client: Any
    app: Any
    program: str
    admin: str = ADMIN_TOKEN
    tokens: dict[str, str] = field(default_factory=dict)

    def auth(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def team(self, name: str) -> str:
        response = self.client.post("/api/v1/admin/teams", json={"name": name}, headers=self.auth(self.admin))
        assert response.status_code == 201, response.text
        token = response.json()["token"]["token"]
        self.tokens[name] = token
        return token

    def submit(self, token: str, model: Path, *, group: str | None = None, group_model: Path | None = None,
               program: str | None = None, model_name: str | None = None) -> Any:
        files: dict[str, Any] = {"model": (model_name or model.name, model.read_bytes(), "application/octet-stream")}
        if group_model is not None:
            files["group_model"] = (group_model.name, group_model.read_bytes(), "application/octet-stream")
        data = {"group": group} if group is not None else {}
        return self.client.post(f"/api/v1/programs/{program or self.program}/submissions", files=files, data=data, headers=self.auth(token))

    def wait(self, token: str, sub_id: int, timeout: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = self.client.get(f"/api/v1/submissions/{sub_id}", headers=self.auth(token)).json()
            if body["status"] == "decided":
                return body
            time.sleep(0.1)
        raise AssertionError(f"submission {sub_id} was not decided within {timeout} s: {body}")


def register(app: Any, program_dir: Path, slug: str = "synthetic") -> None:
    from groupwise.service import crud

    with app.state.sessions() as session:
        crud.ensure_admin(session, token=ADMIN_TOKEN)
        crud.register_program(session, slug, program_dir, description="A synthetic test program.")
        session.commit()


@contextmanager
def running_service(settings: Settings, program_dir: Path) -> Iterator[Service]:
    from fastapi.testclient import TestClient

    from groupwise.service.app import create_app

    app = create_app(settings)
    register(app, program_dir)
    with TestClient(app) as client:
        yield Service(client=client, app=app, program="synthetic")


@pytest.fixture
def service(db_url, program_dir) -> Iterator[Service]:
    """The app on SQLite and on PostgreSQL, with its in-process worker."""
    with running_service(service_settings(db_url), program_dir) as svc:
        yield svc


@pytest.fixture
def sqlite_service(sqlite_url, program_dir) -> Iterator[Service]:
    with running_service(service_settings(sqlite_url), program_dir) as svc:
        yield svc


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in a thread; yields its URL."""
    import threading

    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=60)


@contextmanager
def live_service(settings: Settings, program_dir: Path) -> Iterator[tuple[str, Any]]:
    """A real HTTP server for ``settings`` with the synthetic program; yields (url, app)."""
    from groupwise.service.app import create_app

    app = create_app(settings)
    register(app, program_dir)
    with live_server(app) as url:
        yield url, app


def make_team(url: str, name: str) -> str:
    import httpx

    response = httpx.post(f"{url}/api/v1/admin/teams", json={"name": name}, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 201, response.text
    return response.json()["token"]["token"]
