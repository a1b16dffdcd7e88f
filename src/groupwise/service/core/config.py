"""Settings of the bounty web service: one frozen object passed to ``create_app`` and workers.

Nothing reads the environment at import time. :meth:`Settings.from_env` exists for the
processes that ``serve`` starts (uvicorn workers, evaluation workers), which receive their
settings as one JSON environment variable rather than through arguments.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

__all__ = ["ENV_VAR", "Settings"]

ENV_VAR = "GROUPWISE_SERVICE_SETTINGS"


@dataclass(frozen=True)
class Settings:
    """Everything the service can be configured with.

    Parameters
    ----------
    db_url : str
        SQLAlchemy URL: ``sqlite:///bounty.db`` or ``postgresql+psycopg://user@host/db``.
    secret_key : str, optional
        Signs session cookies. Default: a random key generated once and kept in the database,
        so sessions survive restarts and every process of one deployment agrees.
    secure_cookies : bool
        Mark the session cookie ``Secure`` (set it when the service is behind https).
    submissions_per_hour, submissions_per_day : int
        Rate limits per team and program.
    predictions_per_hour : int
        Requests to the prediction endpoint per team (or per client address when anonymous).
    max_prediction_rows : int
        Rows per prediction request.
    max_upload_mb : float
        Cap on each uploaded file; the program's own sandbox cap applies too, whichever is lower.
    lease_seconds : float
        How long a claimed job stays with its worker without a heartbeat; after that another
        worker reclaims it.
    max_attempts : int
        Claims of one job before it is given up as failing the service itself (not the model).
    poll_seconds : float
        How often an idle worker looks for jobs.
    inprocess_worker : bool
        Run one evaluation worker thread inside the web process (the SQLite mode).
    page_cache_seconds : float
        How long a rendered public page or figure may be served before it is rebuilt (its
        key includes the program's version, so an update shows at once in this process).
    bundle_downloads_per_hour : int
        Bundle downloads per team (or per client address when anonymous).
    bundles_kept : int
        Exported bundles (program and version pairs) kept on disk; older ones are deleted.
    predict_cpu_seconds, predict_memory_mb, predict_wall_seconds : float, int, float
        Limits of the child process that runs one public prediction or bundle export.
    max_request_kb : int
        Body size of requests other than uploads and predictions, refused before parsing.
    max_predict_body_kb : int
        Body size of a prediction request, refused before parsing.
    auth_failures_per_minute : int
        Unknown tokens and failed sign-ins per client address and minute; past it, every
        request with a token from that address is refused for the rest of the minute.
    audit_flush_seconds : float
        How often counted refusals (bad tokens, failed sign-ins) are written to the audit log.
    debug_pause : str
        Fault injection for the crash tests only: ``"before-engine:SECONDS"`` or
        ``"after-engine:SECONDS"`` makes a worker sleep at that point of an evaluation.
    """

    db_url: str = "sqlite:///bounty.db"
    secret_key: str | None = None
    secure_cookies: bool = False
    submissions_per_hour: int = 20
    submissions_per_day: int = 100
    predictions_per_hour: int = 600
    max_prediction_rows: int = 1000
    max_upload_mb: float = 20.0
    lease_seconds: float = 60.0
    max_attempts: int = 5
    poll_seconds: float = 0.5
    inprocess_worker: bool = True
    page_cache_seconds: float = 2.0
    bundle_downloads_per_hour: int = 120
    bundles_kept: int = 8
    predict_cpu_seconds: float = 20.0
    predict_memory_mb: int = 3072
    predict_wall_seconds: float = 60.0
    max_request_kb: int = 256
    max_predict_body_kb: int = 2048
    auth_failures_per_minute: int = 30
    audit_flush_seconds: float = 5.0
    debug_pause: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_sqlite(self) -> bool:
        return self.db_url.startswith("sqlite")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def replace(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Settings:
        return cls(**json.loads(text))

    @classmethod
    def from_env(cls) -> Settings:
        """Settings handed to a child process by :func:`groupwise.service.serve`."""
        text = os.environ.get(ENV_VAR)
        if not text:
            raise RuntimeError(f"{ENV_VAR} is not set; start the service with groupwise.service.serve")
        return cls.from_json(text)


def sqlite_path(db_url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL (None for in-memory databases)."""
    prefix = "sqlite:///"
    if not db_url.startswith(prefix) or db_url[len(prefix):] in ("", ":memory:"):
        return None
    return Path(db_url[len(prefix):].split("?", 1)[0])
