"""Alembic migrations of the bounty service (run by :func:`groupwise.service.core.db.upgrade`)."""
