"""Public routes of a program: its description, aggregate figures, the current model.

Everything here is computed on the public splits (by the engine) or counted from the
submissions table; nothing is derived from the holdout.
"""

from __future__ import annotations

import logging
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from fastapi.responses import FileResponse
from sqlalchemy import func, select

from groupwise._errors import GroupwiseError
from groupwise.service import crud
from groupwise.service import models as m
from groupwise.service._predict import PredictionError
from groupwise.service.api.deps import OptionalTeam, ProgramDep, SessionDep, client_of
from groupwise.service.core.throttle import Throttle
from groupwise.service.schemas import (
    FeatureUsage,
    GroupErrorRow,
    GroupTrajectories,
    LeaderboardRow,
    PredictRequest,
    PredictResponse,
    ProgramPublic,
    VersionRow,
)

router = APIRouter(tags=["programs"])
log = logging.getLogger("groupwise.service")


def program_public(session: crud.Session, row: m.ProgramRow) -> dict[str, Any]:
    counts = session.execute(
        select(func.count(m.Submission.id), func.count(m.Submission.decision).filter(m.Submission.decision == "accepted")).where(
            m.Submission.program_id == row.id
        )
    ).one()
    return {
        "slug": row.slug,
        "name": row.name,
        "description": row.description,
        "task": row.task,
        "target": row.target,
        "features": row.features,
        "classes": row.classes,
        "loss": row.loss,
        "epsilon": row.epsilon,
        "min_group_size": row.min_group_size,
        "max_upload_mb": row.max_upload_mb,
        "version": row.version,
        "test_loss": row.test_loss,
        "base_test_loss": row.base_test_loss,
        "accepting_submissions": bool(row.is_open and row.acceptances < row.max_acceptances and row.queries < row.max_queries),
        "submissions": int(counts[0]),
        "accepted": int(counts[1]),
    }


def cached(request: Request, key: tuple, build: Any) -> Any:
    return request.app.state.page_cache.get(key, build)


@router.get("/programs", response_model=list[ProgramPublic], summary="Programs served here")
def list_programs(request: Request, session: SessionDep) -> list[dict[str, Any]]:
    rows = session.scalars(select(m.ProgramRow).order_by(m.ProgramRow.id)).all()
    return [program_public(session, r) for r in rows]


@router.get("/programs/{slug}", response_model=ProgramPublic, responses={404: {}}, summary="A program: task, features, public figures")
def get_program(request: Request, session: SessionDep, program: ProgramDep) -> dict[str, Any]:
    return cached(request, ("program", program.slug, program.version), lambda: program_public(session, program))


@router.get("/programs/{slug}/schema", responses={404: {}}, summary="The program's schema (features, coding, target) as the engine stores it")
def get_schema(request: Request, program: ProgramDep) -> dict[str, Any]:
    return request.app.state.views.schema(program.directory)


@router.get("/programs/{slug}/leaderboard", response_model=list[LeaderboardRow], responses={404: {}}, summary="Teams ranked by public-test improvement")
def leaderboard(request: Request, session: SessionDep, program: ProgramDep) -> list[dict[str, Any]]:
    return cached(request, ("leaderboard", program.slug, program.version), lambda: crud.leaderboard(session, program.id))


@router.get("/programs/{slug}/versions", response_model=list[VersionRow], responses={404: {}}, summary="Version history with public-test loss")
def versions(request: Request, program: ProgramDep) -> list[dict[str, Any]]:
    return request.app.state.views.trajectory(program.directory)


@router.get("/programs/{slug}/groups", response_model=list[GroupErrorRow], responses={404: {}}, summary="Per-group loss on the public test split")
def groups(request: Request, program: ProgramDep) -> list[dict[str, Any]]:
    return request.app.state.views.group_errors(program.directory)


@router.get("/programs/{slug}/group-trajectories", response_model=GroupTrajectories, responses={404: {}},
            summary="Each group's public-test loss at every version")
def group_trajectories(request: Request, program: ProgramDep) -> dict[str, Any]:
    return request.app.state.views.group_trajectories(program.directory)


@router.get(
    "/programs/{slug}/group-trajectories.png",
    responses={200: {"content": {"image/png": {}}}, 404: {}},
    response_class=Response,
    summary="Each group's error across versions, drawn (PNG)",
)
def group_trajectories_png(request: Request, program: ProgramDep) -> Response:
    png = request.app.state.views.group_trajectories_png(program.directory)
    return Response(png, media_type="image/png", headers={"Cache-Control": "public, max-age=5"})


@router.get("/programs/{slug}/feature-usage", response_model=FeatureUsage, responses={404: {}}, summary="Teams by features (the heat map's data)")
def feature_usage(request: Request, program: ProgramDep) -> dict[str, Any]:
    return request.app.state.views.feature_usage(program.directory)


@router.get(
    "/programs/{slug}/trajectory.svg",
    responses={200: {"content": {"image/svg+xml": {}}}, 404: {}},
    response_class=Response,
    summary="The error trajectory plot",
)
def trajectory_svg(request: Request, program: ProgramDep) -> Response:
    svg = request.app.state.views.trajectory_svg(program.directory)
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=5"})


@router.get(
    "/programs/{slug}/data/{split}.csv.gz",
    responses={200: {"content": {"application/gzip": {}}}, 404: {}},
    response_class=FileResponse,
    summary="A public split (train or test) as gzipped CSV",
)
def public_data(program: ProgramDep, split: Annotated[str, Path(pattern="^(train|test)$")]) -> FileResponse:
    path = FilePath(program.directory) / "public" / f"{split}.csv.gz"
    if not path.is_file():
        raise HTTPException(status_code=404, detail=f"the program has no public {split} split")
    return FileResponse(path, media_type="application/gzip", filename=f"{program.slug}-{split}.csv.gz")


def _limit_public(request: Request, session: crud.Session, team: m.Team | None, program: m.ProgramRow, *, what: str, limit: int,
                  throttle: Throttle) -> None:
    """Rate-limit ``what`` per team, or per client address when anonymous (429 when over).

    An anonymous address is first counted in memory, so that a flood past the limit costs
    no database write; the database's counter then holds across the deployment's processes.
    """
    client = client_of(request)
    if team is None:
        allowed, retry = throttle.hit(client)
        if not allowed:
            request.app.state.audit_batch.add(actor="anonymous", action=what, target=program.slug, result="refused", detail="rate limit",
                                              client=client)
            raise HTTPException(status_code=429, detail=f"at most {limit} {what} requests per hour from one address. Fix: wait",
                                headers={"Retry-After": str(retry)})
    key = f"{what}:team:{team.id}" if team else f"{what}:ip:{client}"
    allowed, retry = crud.rate_hit(session, key, window_seconds=3600, limit=limit)
    if not allowed:
        crud.audit_now(request.app.state.sessions, actor=team.name if team else "anonymous", team_id=team.id if team else None, action=what,
                       target=program.slug, result="refused", detail="rate limit", client=client)
        raise HTTPException(status_code=429, detail=f"at most {limit} {what} requests per hour. Fix: wait", headers={"Retry-After": str(retry)})


def _contained_failure(exc: PredictionError, what: str) -> HTTPException:
    if exc.kind == "input":
        return HTTPException(status_code=422, detail=exc.message)
    if exc.kind == "limit":
        return HTTPException(status_code=422, detail=exc.message)
    if exc.kind == "busy":
        return HTTPException(status_code=503, detail=exc.message, headers={"Retry-After": "60"})
    log.warning("%s failed in its contained process: %s (%s)", what, exc.message, exc.kind)
    return HTTPException(status_code=500, detail=f"{exc.message}. The request failed; the service is unaffected")


@router.get(
    "/programs/{slug}/bundle",
    responses={200: {"content": {"application/zip": {}}}, 404: {}, 429: {}},
    response_class=FileResponse,
    summary="The current model (or a version) as a runnable bundle (zip; rate-limited)",
)
def bundle(
    request: Request, session: SessionDep, program: ProgramDep, team: OptionalTeam,
    version: Annotated[int | None, Query(ge=0, le=1_000_000)] = None,
) -> FileResponse:
    settings = request.app.state.settings
    current = int(program.version)
    wanted = current if version is None else version
    if wanted > current:
        raise HTTPException(status_code=404, detail=f"the program has versions 0 to {current}")
    _limit_public(request, session, team, program, what="bundle", limit=settings.bundle_downloads_per_hour,
                  throttle=request.app.state.anonymous_bundles)
    try:
        path = request.app.state.public_models.bundle_zip(program.directory, wanted)
    except PredictionError as exc:
        if exc.kind == "input":
            raise HTTPException(status_code=404, detail=exc.message) from None
        raise _contained_failure(exc, "a bundle export") from None
    crud.audit(session, actor=team.name if team else "anonymous", team_id=team.id if team else None, action="download-bundle",
               target=program.slug, result="ok", detail=f"version {wanted}", client=client_of(request))
    session.commit()
    return FileResponse(path, media_type="application/zip", filename=f"{program.slug}-v{wanted}.zip")


@router.post(
    "/programs/{slug}/predict",
    response_model=PredictResponse,
    responses={404: {}, 413: {}, 422: {}, 429: {}, 500: {}, 503: {}},
    summary="Predictions of the current model for a batch of rows (rate-limited; run in a contained process)",
)
def predict(request: Request, session: SessionDep, program: ProgramDep, team: OptionalTeam, body: PredictRequest) -> dict[str, Any]:
    settings = request.app.state.settings
    actor = team.name if team else "anonymous"
    if len(body.rows) > settings.max_prediction_rows:
        raise HTTPException(status_code=413, detail=f"at most {settings.max_prediction_rows} rows per request. Fix: send smaller batches")
    _limit_public(request, session, team, program, what="predict", limit=settings.predictions_per_hour,
                  throttle=request.app.state.anonymous_predictions)
    _check_rows(request, program, body.rows)
    version = int(program.version)
    try:
        values = request.app.state.public_models.predict(program.directory, version, body.rows)
    except PredictionError as exc:
        crud.audit(session, actor=actor, team_id=team.id if team else None, action="predict", target=program.slug, result="failed",
                   detail=f"{len(body.rows)} rows, version {version}: {exc.kind}", client=client_of(request))
        session.commit()
        raise _contained_failure(exc, "a prediction") from None
    crud.audit(session, actor=actor, team_id=team.id if team else None, action="predict", target=program.slug, result="ok",
               detail=f"{len(body.rows)} rows, version {version}", client=client_of(request))
    session.commit()
    return {"version": version, "target": program.target, "predictions": values}


def _check_rows(request: Request, program: m.ProgramRow, rows: list[dict[str, Any]]) -> None:
    """Check the rows against the program's schema here, so a malformed request costs no child process."""
    import pandas as pd

    from groupwise.bounty._schema import Schema

    schema = Schema.from_dict(request.app.state.views.schema(program.directory))
    try:
        schema.validate(pd.DataFrame.from_records(rows), name="the rows")
    except GroupwiseError as exc:
        raise HTTPException(status_code=422, detail=exc.message) from None
