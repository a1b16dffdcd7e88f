"""Tables of the bounty service (SQLAlchemy 2, typed).

The model state of record is each program's engine directory (its append-only log);
the ``programs`` row mirrors the figures the pages show and carries the version column
that workers compare-and-set, so the database and the log can be checked against each
other. Submissions are jobs: queued, running under a worker's lease, then decided.
Uploaded files are kept in ``uploads`` in the same transaction as their submission, so
an accepted request is never lost by a crash.

Every change to this module needs a migration in ``alembic/versions``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = ["ApiToken", "AuditEntry", "Base", "Meta", "ProgramRow", "RateCounter", "Submission", "Team", "Upload", "WebSession"]


class Base(DeclarativeBase):
    pass


class Meta(Base):
    """Key-value facts of the deployment (the generated session key)."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Team(Base):
    """An account: a team of hunters, or the admin (``is_admin``)."""

    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    # Set by the admin: every token of the team stops working and its queued work is refused.
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="team")


class ApiToken(Base):
    """An API token; only its SHA-256 is stored, the token itself is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # The token that made this one (POST /me/tokens); revoking it revokes this one too.
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"), nullable=True, index=True)

    team: Mapped[Team] = relationship(back_populates="tokens")


class ProgramRow(Base):
    """A bounty program served by the service: where its engine directory is, and a mirror
    of its public state (refreshed by the worker after every decision)."""

    __tablename__ = "programs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    directory: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    task: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(200))
    features: Mapped[list] = mapped_column(JSON)
    classes: Mapped[list] = mapped_column(JSON)
    loss: Mapped[str] = mapped_column(String(100))
    epsilon: Mapped[float] = mapped_column(Float)
    min_group_size: Mapped[int] = mapped_column(Integer)
    max_upload_mb: Mapped[float] = mapped_column(Float)
    # Compare-and-set by the worker: UPDATE ... WHERE version = <the version decided against>.
    version: Mapped[int] = mapped_column(Integer, default=0)
    queries: Mapped[int] = mapped_column(Integer, default=0)
    max_queries: Mapped[int] = mapped_column(Integer)
    acceptances: Mapped[int] = mapped_column(Integer, default=0)
    max_acceptances: Mapped[int] = mapped_column(Integer)
    holdout_status: Mapped[str] = mapped_column(String(200), default="open")
    test_loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    base_test_loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    is_open: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class Submission(Base):
    """A submission and the job that evaluates it."""

    __tablename__ = "submissions"
    __table_args__ = (
        Index("ix_submissions_queue", "status", "lease_expires_at"),
        Index("ix_submissions_team_time", "team_id", "program_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"), index=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued, running, decided
    group_expr: Mapped[str | None] = mapped_column(Text, nullable=True)
    group_filename: Mapped[str | None] = mapped_column(String(200), nullable=True)
    model_filename: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    decision: Mapped[str | None] = mapped_column(String(16), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    reason_kind: Mapped[str] = mapped_column(String(32), default="")
    engine_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    version_before: Mapped[int | None] = mapped_column(Integer, nullable=True)
    version_after: Mapped[int | None] = mapped_column(Integer, nullable=True)
    repairs: Mapped[int] = mapped_column(Integer, default=0)
    test_loss_before: Mapped[float | None] = mapped_column(Float, nullable=True)
    test_loss_after: Mapped[float | None] = mapped_column(Float, nullable=True)
    group_test_loss_before: Mapped[float | None] = mapped_column(Float, nullable=True)
    group_test_loss_after: Mapped[float | None] = mapped_column(Float, nullable=True)

    team: Mapped[Team] = relationship()
    program: Mapped[ProgramRow] = relationship()


class Upload(Base):
    """The bytes of a submitted file, committed with its submission."""

    __tablename__ = "uploads"
    __table_args__ = (UniqueConstraint("submission_id", "role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))  # model, group
    filename: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class AuditEntry(Base):
    """One action: who, what, when, on what, and how it ended."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime] = mapped_column(DateTime, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    team_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(200), default="")
    result: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")
    client: Mapped[str] = mapped_column(String(64), default="")


class RateCounter(Base):
    """Requests of one key (team or client address) in one fixed window."""

    __tablename__ = "rate_counters"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    window_start: Mapped[int] = mapped_column(Integer, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class WebSession(Base):
    """A signed-in browser session of the web UI.

    The cookie carries a random session id; only its SHA-256 is stored here. Signing out
    ends the row, so a copy of the old cookie is refused from then on.
    """

    __tablename__ = "web_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
