"""Pydantic schemas of the API: what comes in (``XCreate``), what goes out (``XPublic``).

Response types are separate from the tables so that a token hash, an upload's bytes or a
lease owner can never be serialised by accident: a field reaches a client only if it is
declared here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AuditEntryPublic",
    "FeatureInfo",
    "FeatureUsage",
    "GroupErrorRow",
    "GroupTrajectories",
    "LeaderboardRow",
    "Message",
    "PredictRequest",
    "PredictResponse",
    "ProgramBudget",
    "ProgramCreate",
    "ProgramInit",
    "ProgramPublic",
    "SubmissionCreated",
    "SubmissionPublic",
    "TeamCreate",
    "TeamCreated",
    "TeamPublic",
    "TokenCreate",
    "TokenCreated",
    "TokenPublic",
    "VersionRow",
]

Slug = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")
Name = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.-]*$")


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Message(BaseModel):
    detail: str


# --- teams and tokens -------------------------------------------------------------------


class TeamCreate(BaseModel):
    name: str = Name


class TeamPublic(_Out):
    id: int
    name: str
    is_admin: bool
    created_at: datetime
    disabled_at: datetime | None = None


class TokenCreate(BaseModel):
    label: str = Field(default="", max_length=100)


class TokenPublic(_Out):
    """A token as lists show it: never the token, never its hash."""

    id: int
    team_id: int
    prefix: str
    label: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenPublic):
    """Returned once, when the token is made: the only time the token itself is shown."""

    token: str


class TeamCreated(BaseModel):
    team: TeamPublic
    token: TokenCreated


# --- programs ---------------------------------------------------------------------------


class ProgramInit(BaseModel):
    """Create the engine program too (as ``groupwise bounty init`` does) from server-side data."""

    example: Literal["adult"] | None = None
    data_path: str | None = Field(default=None, max_length=1000)
    target: str | None = Field(default=None, max_length=200)
    features: list[str] | None = None
    task: Literal["classification", "regression"] = "classification"
    epsilon: float = Field(default=0.01, gt=0, le=1)
    base_model: str = Field(default="train:tree", max_length=1000)
    max_queries: int = Field(default=10_000, ge=1, le=10_000_000)
    min_group_size: int = Field(default=30, ge=1, le=10_000_000)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)


class ProgramCreate(BaseModel):
    """Register a program: an existing engine directory, or one to create with ``init``."""

    slug: str = Slug
    directory: str = Field(min_length=1, max_length=1000)
    name: str | None = Field(default=None, max_length=200)
    description: str = Field(default="", max_length=5000)
    init: ProgramInit | None = None


class FeatureInfo(BaseModel):
    name: str
    kind: str
    categories: list[str] = []


class ProgramPublic(_Out):
    """A program's public face: task, features and aggregate figures on the public test split."""

    slug: str
    name: str
    description: str
    task: str
    target: str
    features: list[FeatureInfo]
    classes: list[str]
    loss: str
    epsilon: float
    min_group_size: int
    max_upload_mb: float
    version: int
    test_loss: float | None
    base_test_loss: float | None
    accepting_submissions: bool
    submissions: int
    accepted: int


class ProgramBudget(BaseModel):
    """The holdout budget, for the admin: when it runs out, the holdout must be refreshed."""

    slug: str
    version: int
    queries: int
    max_queries: int
    acceptances: int
    max_acceptances: int
    holdout_status: str
    refresh_needed: bool
    message: str
    queued: int
    running: int
    decided: int


# --- submissions ------------------------------------------------------------------------


class SubmissionCreated(BaseModel):
    id: int
    program: str
    status: str
    url: str


class SubmissionPublic(BaseModel):
    """What a team sees of its own submission: accept or reject, never a holdout number."""

    id: int
    program: str
    team: str
    status: Literal["queued", "running", "decided"]
    group: str | None
    group_filename: str | None
    model_filename: str
    created_at: datetime
    decided_at: datetime | None
    decision: str | None
    reason: str
    reason_kind: str
    version_before: int | None
    version_after: int | None
    repairs: int
    test_loss_before: float | None
    test_loss_after: float | None
    group_test_loss_before: float | None
    group_test_loss_after: float | None


# --- public figures ---------------------------------------------------------------------


class LeaderboardRow(BaseModel):
    rank: int
    team: str
    submissions: int
    accepted: int
    versions_added: int
    improvement: float = Field(description="Sum over accepted submissions of the drop in public-test loss.")


class VersionRow(BaseModel):
    version: int
    kind: str
    submission: str
    team: str
    test_loss: float


class GroupErrorRow(BaseModel):
    group: str
    test_rows: int
    loss_base: float | None
    loss_current: float | None


class GroupTrajectories(BaseModel):
    """Each group's loss on the public test split at every version (the bounty's main figure)."""

    versions: list[int]
    kinds: list[str]
    overall: list[float | None]
    groups: dict[str, list[float | None]] = Field(description="Group description -> its loss at each version (None: no test rows).")


class FeatureUsage(BaseModel):
    """Teams by features: how many of each team's groups used each feature."""

    features: list[str]
    teams: list[str]
    counts: list[list[int]]


class PredictRequest(BaseModel):
    rows: list[dict[str, float | int | str | None]] = Field(min_length=1)


class PredictResponse(BaseModel):
    version: int
    target: str
    predictions: list[float | int | str]


# --- audit ------------------------------------------------------------------------------


class AuditEntryPublic(_Out):
    id: int
    time: datetime
    actor: str
    action: str
    target: str
    result: str
    detail: str
    client: str
