"""Database engine, sessions and migrations of the bounty service.

The schema is created and upgraded only by the Alembic migrations shipped in
``groupwise/service/alembic`` (:func:`upgrade`), never by ``create_all``, so a database
made by one release is upgraded in place by the next.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from groupwise.service.core.config import sqlite_path

__all__ = ["ALEMBIC_DIR", "current_revision", "head_revision", "make_engine", "make_sessionmaker", "upgrade"]

ALEMBIC_DIR = Path(__file__).resolve().parent.parent / "alembic"


def make_engine(db_url: str, **options: Any) -> Engine:
    """An engine tuned for the service: WAL and a busy timeout on SQLite, a pool on PostgreSQL."""
    if db_url.startswith("sqlite"):
        path = sqlite_path(db_url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(db_url, connect_args={"check_same_thread": False, "timeout": 30}, **options)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            # WAL lets the pages be read while the worker writes; FULL sync so that a
            # committed submission survives a crash of the machine, not only of the process.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    options.setdefault("pool_size", 10)
    options.setdefault("max_overflow", 20)
    options.setdefault("pool_pre_ping", True)
    return create_engine(db_url, **options)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (default: the newest) with the shipped migrations."""
    from alembic import command

    command.upgrade(_alembic_config(engine), revision)


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(ALEMBIC_DIR)).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
