"""Liveness and readiness of the service."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import text

router = APIRouter(tags=["utils"])


@router.get("/health", summary="The service is up and its database answers")
def health(request: Request) -> dict[str, Any]:
    with request.app.state.sessions() as session:
        session.execute(text("SELECT 1"))
    worker = request.app.state.worker
    return {"status": "ok", "in_process_worker": worker is not None}
