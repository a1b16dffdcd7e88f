"""The bias-bounty web service: many teams submit to engine programs over HTTP.

It sits on top of :mod:`groupwise.bounty` and never re-implements it: the engine does the
contained evaluation, the check on the holdout and the append-only log; the service adds
accounts and tokens, a durable job queue with workers, rate limits, the public pages and
the audit log. Layout (as in the FastAPI full-stack template)::

    app.py              create_app(settings): the FastAPI application
    core/               config (Settings), db (engine, migrations), security (tokens, CSRF)
    models.py           SQLAlchemy tables      schemas.py   pydantic in/out types
    crud.py             reads and writes       engine.py    cached engine views for pages
    api/deps.py         SessionDep, CurrentTeam, AdminDep, ProgramDep, OwnSubmission
    api/routes/         programs, submissions, teams, admin, pages (the web UI), utils
    worker.py           evaluation workers     alembic/     migrations (shipped)
    _client.py          the command-line client (``groupwise bounty submit --server``)

Start it with :func:`serve`.
"""

from __future__ import annotations

from groupwise.service._serve import create_admin_token, serve

__all__ = ["create_admin_token", "serve"]
