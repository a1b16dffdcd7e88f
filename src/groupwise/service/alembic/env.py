"""Alembic environment of the bounty service.

Run by :func:`groupwise.service.core.db.upgrade` with the service's engine in
``config.attributes["engine"]``; ``alembic -x url=... upgrade head`` works too. Importing
this module outside Alembic (as test collection does) does nothing.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Engine, create_engine, pool

from groupwise.service.models import Base


def _engine(config: Any) -> Engine:
    engine = config.attributes.get("engine")
    if engine is not None:
        return engine
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    return create_engine(url, poolclass=pool.NullPool)


def run_migrations(config: Any) -> None:
    engine = _engine(config)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            # SQLite cannot ALTER most things in place; batch mode rebuilds the table.
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


_config = getattr(context, "config", None)  # None when imported outside an Alembic run
if _config is not None:
    run_migrations(_config)
