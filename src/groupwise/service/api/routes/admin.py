"""Admin routes: teams and their tokens, programs, the holdout budget, every submission,
and the audit log. Every route here needs an admin token; a team token gets 403."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from groupwise._errors import GroupwiseError
from groupwise.service import crud
from groupwise.service import models as m
from groupwise.service.api.deps import AdminDep, ProgramDep, SessionDep, client_of
from groupwise.service.api.routes.programs import program_public
from groupwise.service.api.routes.teams import token_created
from groupwise.service.schemas import (
    AuditEntryPublic,
    ProgramBudget,
    ProgramCreate,
    ProgramPublic,
    SubmissionPublic,
    TeamCreate,
    TeamCreated,
    TeamPublic,
    TokenCreate,
    TokenCreated,
    TokenPublic,
)

router = APIRouter(prefix="/admin", tags=["admin"])

_FORBIDDEN = {401: {}, 403: {}}


class ProgramUpdate(BaseModel):
    is_open: bool


class TeamUpdate(BaseModel):
    disabled: bool


@router.post("/teams", response_model=TeamCreated, status_code=201, responses={**_FORBIDDEN, 409: {}}, summary="Create a team and its first token")
def create_team(request: Request, session: SessionDep, admin: AdminDep, body: TeamCreate) -> dict[str, Any]:
    if crud.team_by_name(session, body.name) is not None:
        raise HTTPException(status_code=409, detail=f"a team named {body.name!r} exists")
    try:
        team = crud.create_team(session, body.name)
        row, token = crud.create_token(session, team, label="first")
        crud.audit(session, actor=admin.name, team_id=admin.id, action="create-team", target=f"team {team.name}", result="ok", client=client_of(request))
        session.commit()
    except IntegrityError:
        session.rollback()
        raise HTTPException(status_code=409, detail=f"a team named {body.name!r} exists") from None
    return {"team": TeamPublic.model_validate(team), "token": token_created(row, token)}


@router.get("/teams", response_model=list[TeamPublic], responses=_FORBIDDEN, summary="Every account")
def list_teams(session: SessionDep, admin: AdminDep) -> list[m.Team]:
    return list(session.scalars(select(m.Team).order_by(m.Team.id)))


def _team(session: crud.Session, team_id: int) -> m.Team:
    team = session.get(m.Team, team_id)
    if team is None:
        raise HTTPException(status_code=404, detail=f"there is no team {team_id}")
    return team


@router.patch("/teams/{team_id}", response_model=TeamPublic, responses={**_FORBIDDEN, 404: {}, 409: {}},
              summary="Disable a team (its tokens stop working, its queued submissions are refused) or enable it again")
def update_team(
    request: Request, session: SessionDep, admin: AdminDep, team_id: Annotated[int, Path(ge=1, le=2**31 - 1)], body: TeamUpdate
) -> m.Team:
    team = _team(session, team_id)
    if team.is_admin:
        raise HTTPException(status_code=409, detail="the admin account cannot be disabled; revoke its tokens instead")
    refused = crud.set_team_disabled(session, team, body.disabled)
    crud.audit(session, actor=admin.name, team_id=admin.id, action="disable-team" if body.disabled else "enable-team",
               target=f"team {team.name}", result="ok", detail=f"{refused} queued submissions refused" if body.disabled else "",
               client=client_of(request))
    session.commit()
    return team


@router.get("/teams/{team_id}/tokens", response_model=list[TokenPublic], responses={**_FORBIDDEN, 404: {}}, summary="A team's tokens")
def team_tokens(session: SessionDep, admin: AdminDep, team_id: Annotated[int, Path(ge=1, le=2**31 - 1)]) -> list[m.ApiToken]:
    return list(crud.tokens_of(session, _team(session, team_id).id))


@router.post("/teams/{team_id}/tokens", response_model=TokenCreated, status_code=201, responses={**_FORBIDDEN, 404: {}}, summary="A new token for a team")
def team_new_token(
    request: Request, session: SessionDep, admin: AdminDep, team_id: Annotated[int, Path(ge=1, le=2**31 - 1)], body: TokenCreate
) -> dict[str, Any]:
    team = _team(session, team_id)
    row, token = crud.create_token(session, team, label=body.label)
    crud.audit(session, actor=admin.name, team_id=admin.id, action="create-token", target=f"token {row.id} of {team.name}", result="ok",
               client=client_of(request))
    session.commit()
    return token_created(row, token)


@router.delete("/tokens/{token_id}", response_model=TokenPublic, responses={**_FORBIDDEN, 404: {}}, summary="Revoke any token and the tokens made with it")
def revoke_token(request: Request, session: SessionDep, admin: AdminDep, token_id: Annotated[int, Path(ge=1, le=2**31 - 1)]) -> m.ApiToken:
    row = session.get(m.ApiToken, token_id)
    if row is None:
        raise HTTPException(status_code=404, detail=f"there is no token {token_id}")
    revoked = crud.revoke_token(session, row)
    crud.audit(session, actor=admin.name, team_id=admin.id, action="revoke-token", target=f"token {row.id}", result="ok",
               detail=f"with the tokens made with it: {revoked[1:]}" if len(revoked) > 1 else "", client=client_of(request))
    session.commit()
    return row


@router.post("/programs", response_model=ProgramPublic, status_code=201, responses={**_FORBIDDEN, 409: {}, 422: {}},
             summary="Serve a program directory (made by `groupwise bounty init`, or created here with `init`)")
def create_program(request: Request, session: SessionDep, admin: AdminDep, body: ProgramCreate) -> dict[str, Any]:
    from rich.console import Console

    from groupwise.bounty._cli import init_cmd

    if crud.program_by_slug(session, body.slug) is not None:
        raise HTTPException(status_code=409, detail=f"a program {body.slug!r} exists")
    directory = FilePath(body.directory).expanduser()
    try:
        if body.init is not None:
            options = body.init.model_dump()
            data = options.pop("data_path")
            init_cmd(directory, data=FilePath(data) if data else None, console=Console(file=io.StringIO()), **options)
        row = crud.register_program(session, body.slug, directory, name=body.name, description=body.description)
        crud.audit(session, actor=admin.name, team_id=admin.id, action="create-program", target=body.slug, result="ok",
                   detail=str(directory), client=client_of(request))
        session.commit()
    except GroupwiseError as exc:
        session.rollback()
        crud.audit_now(request.app.state.sessions, actor=admin.name, team_id=admin.id, action="create-program", target=body.slug,
                       result="refused", detail=exc.message, client=client_of(request))
        raise HTTPException(status_code=422, detail=exc.message) from None
    except IntegrityError:
        session.rollback()
        raise HTTPException(status_code=409, detail=f"a program {body.slug!r} exists") from None
    return program_public(session, row)


@router.patch("/programs/{slug}", response_model=ProgramPublic, responses={**_FORBIDDEN, 404: {}}, summary="Open or close a program to submissions")
def update_program(request: Request, session: SessionDep, admin: AdminDep, program: ProgramDep, body: ProgramUpdate) -> dict[str, Any]:
    program.is_open = body.is_open
    crud.audit(session, actor=admin.name, team_id=admin.id, action="open-program" if body.is_open else "close-program", target=program.slug,
               result="ok", client=client_of(request))
    session.commit()
    return program_public(session, program)


def budget(session: crud.Session, row: m.ProgramRow) -> dict[str, Any]:
    counts = crud.submission_counts(session, row.id)
    refresh = row.acceptances >= row.max_acceptances or row.queries >= row.max_queries
    left = row.max_queries - row.queries
    if refresh:
        message = (f"{row.holdout_status}. The holdout must be refreshed: start a new round with fresh labelled holdout rows "
                   "(groupwise bounty init) and the exported bundle as its base model")
    elif left <= max(10, row.max_queries // 10) or row.max_acceptances - row.acceptances <= 1:
        message = f"the holdout is nearly used up: {left:,} queries and {row.max_acceptances - row.acceptances} acceptances left; plan a refresh"
    else:
        message = "open"
    return {
        "slug": row.slug, "version": row.version, "queries": row.queries, "max_queries": row.max_queries,
        "acceptances": row.acceptances, "max_acceptances": row.max_acceptances, "holdout_status": row.holdout_status,
        "refresh_needed": refresh, "message": message, **counts,
    }


@router.get("/programs/{slug}/budget", response_model=ProgramBudget, responses={**_FORBIDDEN, 404: {}}, summary="The holdout's query budget")
def program_budget(session: SessionDep, admin: AdminDep, program: ProgramDep) -> dict[str, Any]:
    return budget(session, program)


@router.get("/submissions", response_model=list[SubmissionPublic], responses=_FORBIDDEN, summary="Every team's submissions")
def all_submissions(
    session: SessionDep, admin: AdminDep,
    program: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> list[dict[str, Any]]:
    query = select(m.Submission)
    if program is not None:
        query = query.join(m.ProgramRow).where(m.ProgramRow.slug == program)
    return [crud.submission_public(s) for s in session.scalars(query.order_by(m.Submission.id.desc()).limit(limit).offset(offset))]


def _audit_query(action: str | None, actor: str | None) -> Any:
    query = select(m.AuditEntry)
    if action:
        query = query.where(m.AuditEntry.action == action)
    if actor:
        query = query.where(m.AuditEntry.actor == actor)
    return query


@router.get("/audit", response_model=list[AuditEntryPublic], responses=_FORBIDDEN, summary="The audit log, newest first")
def audit_log(
    request: Request, session: SessionDep, admin: AdminDep,
    action: Annotated[str | None, Query(max_length=64)] = None,
    actor: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> list[m.AuditEntry]:
    request.app.state.audit_batch.flush()
    return list(session.scalars(_audit_query(action, actor).order_by(m.AuditEntry.id.desc()).limit(limit).offset(offset)))


def _cell(value: Any) -> Any:
    # Team names and group expressions are user input: a leading =, +, - or @ would run as a
    # formula when the export is opened in a spreadsheet.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


AUDIT_FIELDS = ["id", "time", "actor", "action", "target", "result", "detail", "client"]


@router.get(
    "/audit/export",
    responses={**_FORBIDDEN, 200: {"content": {"text/csv": {}, "application/x-ndjson": {}}}},
    response_class=Response,
    summary="The whole audit log as CSV or JSON lines, oldest first",
)
def audit_export(
    request: Request, session: SessionDep, admin: AdminDep,
    format: Annotated[str, Query(pattern="^(csv|jsonl)$")] = "csv",  # noqa: A002 - the query parameter's public name
    action: Annotated[str | None, Query(max_length=64)] = None,
    actor: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    request.app.state.audit_batch.flush()
    rows = session.scalars(_audit_query(action, actor).order_by(m.AuditEntry.id)).all()
    records = [{f: (getattr(r, f).isoformat() if f == "time" else getattr(r, f)) for f in AUDIT_FIELDS} for r in rows]
    crud.audit(session, actor=admin.name, team_id=admin.id, action="export-audit", result="ok", detail=f"{len(records)} entries as {format}",
               client=client_of(request))
    session.commit()
    if format == "jsonl":
        body = "".join(json.dumps(r) + "\n" for r in records)
        return Response(body, media_type="application/x-ndjson", headers={"Content-Disposition": 'attachment; filename="audit.jsonl"'})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=AUDIT_FIELDS)
    writer.writeheader()
    writer.writerows({k: _cell(v) for k, v in r.items()} for r in records)
    return Response(buffer.getvalue(), media_type="text/csv", headers={"Content-Disposition": 'attachment; filename="audit.csv"'})
