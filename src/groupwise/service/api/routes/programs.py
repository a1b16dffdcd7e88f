"""Public routes of a program: its description, aggregate figures, the current model.

Everything here is computed on the public splits (by the engine) or counted from the
submissions table; nothing is derived from the holdout.
"""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from fastapi.responses import FileResponse
from sqlalchemy import func, select

from groupwise._errors import GroupwiseError
from groupwise.service import crud
from groupwise.service import models as m
from groupwise.service.api.deps import OptionalTeam, ProgramDep, SessionDep, client_of
from groupwise.service.schemas import (
    FeatureUsage,
    GroupErrorRow,
    LeaderboardRow,
    PredictRequest,
    PredictResponse,
    ProgramPublic,
    VersionRow,
)

router = APIRouter(tags=["programs"])


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


@router.get(
    "/programs/{slug}/bundle",
    responses={200: {"content": {"application/zip": {}}}, 404: {}},
    response_class=Response,
    summary="The current model (or a version) as a runnable bundle (zip)",
)
def bundle(
    request: Request, session: SessionDep, program: ProgramDep, team: OptionalTeam,
    version: Annotated[int | None, Query(ge=0, le=1_000_000)] = None,
) -> Response:
    views = request.app.state.views
    current = views.version(program.directory)
    wanted = current if version is None else version
    if wanted > current:
        raise HTTPException(status_code=404, detail=f"the program has versions 0 to {current}")
    data = views.bundle_zip(program.directory, wanted)
    crud.audit(session, actor=team.name if team else "anonymous", team_id=team.id if team else None, action="download-bundle",
               target=program.slug, result="ok", detail=f"version {wanted}", client=client_of(request))
    session.commit()
    return Response(data, media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{program.slug}-v{wanted}.zip"'})


@router.post(
    "/programs/{slug}/predict",
    response_model=PredictResponse,
    responses={404: {}, 413: {}, 422: {}, 429: {}},
    summary="Predictions of the current model for a batch of rows (rate-limited)",
)
def predict(request: Request, session: SessionDep, program: ProgramDep, team: OptionalTeam, body: PredictRequest) -> dict[str, Any]:
    settings = request.app.state.settings
    actor = team.name if team else "anonymous"
    if len(body.rows) > settings.max_prediction_rows:
        raise HTTPException(status_code=413, detail=f"at most {settings.max_prediction_rows} rows per request. Fix: send smaller batches")
    key = f"predict:team:{team.id}" if team else f"predict:ip:{client_of(request)}"
    allowed, retry = crud.rate_hit(session, key, window_seconds=3600, limit=settings.predictions_per_hour)
    if not allowed:
        crud.audit_now(request.app.state.sessions, actor=actor, team_id=team.id if team else None, action="predict", target=program.slug,
                       result="refused", detail="rate limit", client=client_of(request))
        raise HTTPException(status_code=429, detail=f"at most {settings.predictions_per_hour} prediction requests per hour. Fix: wait",
                            headers={"Retry-After": str(retry)})
    try:
        version, values = request.app.state.views.predict(program.directory, body.rows)
    except GroupwiseError as exc:
        raise HTTPException(status_code=422, detail=exc.message) from None
    crud.audit(session, actor=actor, team_id=team.id if team else None, action="predict", target=program.slug, result="ok",
               detail=f"{len(body.rows)} rows, version {version}", client=client_of(request))
    session.commit()
    return {"version": version, "target": program.target, "predictions": values}
