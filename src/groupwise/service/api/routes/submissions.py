"""Submitting and reading one's own submissions.

``POST /programs/{slug}/submissions`` only checks the request (sizes, rate limits, the
holdout budget) and queues it with its files: it answers at once with an id, and a worker
evaluates it through the engine. A team reads only its own submissions.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile
from sqlalchemy import select

from groupwise.service import crud
from groupwise.service import models as m
from groupwise.service.api.deps import CurrentTeam, OwnSubmission, ProgramDep, SessionDep, client_of
from groupwise.service.schemas import SubmissionCreated, SubmissionPublic

router = APIRouter(tags=["submissions"])

MAX_EXPRESSION = 2000


async def read_capped(upload: UploadFile, cap: int, what: str) -> bytes:
    """The upload's bytes, refused with 413 as soon as they pass ``cap``."""
    chunks, size = [], 0
    while True:
        chunk = await upload.read(1 << 20)
        if not chunk:
            break
        size += len(chunk)
        if size > cap:
            raise HTTPException(
                status_code=413,
                detail=f"the {what} file is larger than the limit of {cap / 1048576:g} MB. Fix: submit a smaller model",
            )
        chunks.append(chunk)
    return b"".join(chunks)


def queue_submission(
    request: Request,
    session: crud.Session,
    team: m.Team,
    program: m.ProgramRow,
    *,
    group: str | None,
    model: tuple[str, bytes],
    group_model: tuple[str, bytes] | None,
) -> m.Submission:
    """Check limits and queue; raises HTTPException with the reason (and audits it)."""
    settings = request.app.state.settings

    def refuse(status: int, detail: str, headers: dict[str, str] | None = None) -> HTTPException:
        session.rollback()
        crud.audit_now(request.app.state.sessions, actor=team.name, team_id=team.id, action="submit", target=program.slug,
                       result="refused", detail=detail, client=client_of(request))
        return HTTPException(status_code=status, detail=detail, headers=headers)

    if team.is_admin:
        raise refuse(403, "the admin account does not submit; create a team (POST /api/v1/admin/teams) and use its token")
    if (group is None or not group.strip()) == (group_model is None):
        raise refuse(422, "a submission needs exactly one group: the form field 'group' (an expression) or the file 'group_model'")
    if group is not None and len(group) > MAX_EXPRESSION:
        raise refuse(422, f"the group expression is longer than {MAX_EXPRESSION} characters")
    if group is not None and "\x00" in group:
        raise refuse(422, "the group expression contains a NUL character")

    # Serialise intake per program so that the checks below and the insert are atomic:
    # PostgreSQL locks the program row, SQLite (one web process) takes a process lock.
    lock = crud.sqlite_intake_lock() if settings.is_sqlite else None
    if lock is not None:
        lock.acquire()
    try:
        row = session.scalar(select(m.ProgramRow).where(m.ProgramRow.id == program.id).with_for_update())
        assert row is not None
        if not row.is_open:
            raise refuse(409, f"the program {row.slug!r} is closed to submissions")
        counts = crud.submission_counts(session, row.id)
        pending = counts["queued"] + counts["running"]
        if row.acceptances >= row.max_acceptances or row.queries + pending >= row.max_queries:
            raise refuse(
                409,
                "the program's holdout has answered all the queries it may (or they are reserved by queued submissions); "
                "the program's admin must refresh the holdout before more submissions can be checked",
            )
        stamp = crud.now()
        for window, limit, label in ((timedelta(hours=1), settings.submissions_per_hour, "hour"),
                                     (timedelta(days=1), settings.submissions_per_day, "day")):
            used = crud.recent_submissions(session, team.id, row.id, stamp - window)
            if used >= limit:
                raise refuse(
                    429,
                    f"your team has made {used} submissions to {row.slug!r} in the last {label}, the limit is {limit}. Fix: wait and submit again",
                    headers={"Retry-After": str(int(window.total_seconds()))},
                )
        sub = crud.enqueue_submission(session, program=row, team=team, model=model, group_expr=group if group_model is None else None,
                                      group_model=group_model)
        crud.audit(session, actor=team.name, team_id=team.id, action="submit", target=f"submission {sub.id}", result="queued",
                   detail=f"program {row.slug}; group {group if group_model is None else 'model ' + group_model[0]}; model {model[0]}"[:1000],
                   client=client_of(request))
        session.commit()
    finally:
        if lock is not None:
            lock.release()
    worker = getattr(request.app.state, "worker", None)
    if worker is not None:
        worker.wake()
    return sub


@router.post(
    "/programs/{slug}/submissions",
    status_code=202,
    response_model=SubmissionCreated,
    responses={401: {}, 404: {}, 409: {}, 413: {}, 422: {}, 429: {}},
    summary="Submit a group and a model (multipart); answers at once with the submission's id",
)
async def submit(
    request: Request,
    session: SessionDep,
    team: CurrentTeam,
    program: ProgramDep,
    model: Annotated[UploadFile, File(description="The model h: an ONNX or skops file (never a pickle).")],
    group: Annotated[str | None, Form(description="The group g as an expression, e.g. 'age >= 60 and sex == \"Female\"'.")] = None,
    group_model: Annotated[UploadFile | None, File(description="The group g as a classifier file (label 1 = in the group), instead of 'group'.")] = None,
) -> SubmissionCreated:
    cap = min(request.app.state.settings.max_upload_bytes, int(program.max_upload_mb * 1048576))
    model_bytes = await read_capped(model, cap, "model")
    group_file = None
    if group_model is not None and group_model.filename:
        group_file = (group_model.filename, await read_capped(group_model, cap, "group model"))
    from starlette.concurrency import run_in_threadpool

    sub = await run_in_threadpool(
        queue_submission, request, session, team, program,
        group=group, model=(model.filename or "model.onnx", model_bytes), group_model=group_file,
    )
    return SubmissionCreated(id=sub.id, program=program.slug, status=sub.status, url=f"/api/v1/submissions/{sub.id}")


@router.get("/submissions", response_model=list[SubmissionPublic], summary="Your team's submissions, newest first")
def list_submissions(
    session: SessionDep,
    team: CurrentTeam,
    program: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> list[dict]:
    query = select(m.Submission).where(m.Submission.team_id == team.id)
    if program is not None:
        query = query.join(m.ProgramRow).where(m.ProgramRow.slug == program)
    rows = session.scalars(query.order_by(m.Submission.id.desc()).limit(limit).offset(offset)).all()
    return [crud.submission_public(s) for s in rows]


@router.get("/submissions/{submission_id}", response_model=SubmissionPublic, responses={404: {}}, summary="One of your submissions")
def get_submission(sub: OwnSubmission) -> dict:
    return crud.submission_public(sub)
