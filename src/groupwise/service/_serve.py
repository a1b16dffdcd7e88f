"""``groupwise serve``: migrate the database, bootstrap the admin, start the web server and workers.

SQLite (the default) runs one web process with one evaluation worker thread inside it:
SQLite has one writer at a time, and a single process keeps its locking simple. PostgreSQL
runs ``web_workers`` uvicorn processes and ``workers`` evaluation processes that share the
queue through ``SELECT ... FOR UPDATE SKIP LOCKED``; a worker that exits is restarted.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from groupwise.service.core.config import ENV_VAR, Settings

__all__ = ["create_admin_token", "register_programs", "serve"]


def _slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    return (slug or "program")[:64]


def register_programs(settings: Settings, directories: Sequence[str | Path]) -> list[str]:
    """Serve each program directory under a slug made from its name (already served: kept)."""
    from sqlalchemy import select

    from groupwise.service import crud
    from groupwise.service.core.db import make_engine, make_sessionmaker
    from groupwise.service.models import ProgramRow

    engine = make_engine(settings.db_url)
    slugs = []
    try:
        with make_sessionmaker(engine)() as session:
            for directory in directories:
                resolved = str(Path(directory).resolve())
                existing = session.scalar(select(ProgramRow).where(ProgramRow.directory == resolved))
                if existing is not None:
                    slugs.append(existing.slug)
                    continue
                slug = _slug(Path(resolved).name)
                row = crud.register_program(session, slug, resolved)
                crud.audit(session, actor="serve", action="create-program", target=slug, result="ok", detail=resolved)
                session.commit()
                slugs.append(row.slug)
    finally:
        engine.dispose()
    return slugs


def create_admin_token(db_url: str, *, label: str = "cli") -> str:
    """Make a new admin token (``groupwise serve --new-admin-token``); shown once, stored hashed."""
    from groupwise.service import crud
    from groupwise.service.core.db import make_engine, make_sessionmaker, upgrade

    engine = make_engine(db_url)
    try:
        upgrade(engine)
        with make_sessionmaker(engine)() as session:
            admin, _ = crud.ensure_admin(session, token=None)
            _, token = crud.create_token(session, admin, label=label)
            crud.audit(session, actor="serve", action="create-token", target="admin", result="ok", detail=label)
            session.commit()
    finally:
        engine.dispose()
    return token


class _Supervisor:
    """Keeps ``count`` worker processes alive until stopped."""

    def __init__(self, settings: Settings, count: int) -> None:
        self.env = {**os.environ, ENV_VAR: settings.to_json()}
        self.count = count
        self.processes: list[subprocess.Popen[bytes]] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="worker-supervisor", daemon=True)

    def _spawn(self, index: int) -> subprocess.Popen[bytes]:
        env = {**self.env, "GROUPWISE_WORKER_NAME": f"worker-{index}-{os.getpid()}-{time.time_ns() % 10**6}"}
        return subprocess.Popen([sys.executable, "-m", "groupwise.service.worker"], env=env)  # noqa: S603 - our own module

    def start(self) -> None:
        self.processes = [self._spawn(i) for i in range(self.count)]
        self.thread.start()

    def _watch(self) -> None:
        while not self.stopping.wait(2.0):
            for i, process in enumerate(self.processes):
                if process.poll() is not None and not self.stopping.is_set():
                    print(f"groupwise: evaluation worker {i} exited with {process.returncode}; restarting it", file=sys.stderr)
                    self.processes[i] = self._spawn(i)

    def stop(self) -> None:
        self.stopping.set()
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def serve(
    db_url: str = "sqlite:///bounty.db",
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    web_workers: int = 1,
    programs: Sequence[str | Path] = (),
    admin_token: str | None = None,
    secure_cookies: bool = False,
    log_level: str = "info",
    **options: Any,
) -> None:
    """Run the bounty service until interrupted.

    Parameters
    ----------
    db_url : str
        ``sqlite:///bounty.db`` (default) or ``postgresql+psycopg://user@host/db``.
    host, port : str, int
        Where to listen.
    workers : int
        Evaluation workers (PostgreSQL: processes; SQLite: always one thread in the web process).
    web_workers : int
        uvicorn processes (PostgreSQL only; SQLite uses one).
    programs : sequence of paths
        Program directories (made by ``groupwise bounty init``) to serve, each under a slug
        made from its directory name.
    admin_token : str, optional
        Register this admin token (default: ``$GROUPWISE_ADMIN_TOKEN``; when neither is set
        and the admin has no token yet, one is made and printed once).
    secure_cookies : bool
        Mark the session cookie Secure (behind https).
    **options
        Any other :class:`~groupwise.service.core.config.Settings` field, e.g.
        ``submissions_per_hour=10``.
    """
    import uvicorn

    from groupwise.service import crud
    from groupwise.service.app import create_app
    from groupwise.service.core.db import make_engine, make_sessionmaker, upgrade

    sqlite = db_url.startswith("sqlite")
    settings = Settings(db_url=db_url, secure_cookies=secure_cookies, inprocess_worker=sqlite, **options)
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        with make_sessionmaker(engine)() as session:
            _, made = crud.ensure_admin(session, token=admin_token or os.environ.get("GROUPWISE_ADMIN_TOKEN") or None)
            crud.session_secret(session)
    finally:
        engine.dispose()
    if made:
        print(f"groupwise: created the admin account; its token (shown once, store it safely):\n\n    {made}\n", flush=True)
    slugs = register_programs(settings, programs)
    for slug in slugs:
        print(f"groupwise: serving program {slug!r} at http://{host}:{port}/programs/{slug}", flush=True)
    supervisor = None
    if not sqlite and workers > 0:
        supervisor = _Supervisor(settings, workers)
        supervisor.start()
    try:
        if sqlite or web_workers <= 1:
            uvicorn.run(create_app(settings, migrate=False), host=host, port=port, log_level=log_level)
        else:
            os.environ[ENV_VAR] = settings.to_json()
            uvicorn.run("groupwise.service.app:app_from_env", factory=True, host=host, port=port, workers=web_workers, log_level=log_level)
    finally:
        if supervisor is not None:
            supervisor.stop()
