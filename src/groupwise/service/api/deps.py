"""Dependencies of the routes: the database session, who is calling, and ownership checks.

Routes declare what they need as annotated aliases (``SessionDep``, ``CurrentTeam``,
``AdminDep``, ``ProgramDep``, ``OwnSubmission``), so a permission check is written once here
rather than pasted into every route.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from groupwise.service import crud
from groupwise.service import models as m

__all__ = ["AdminDep", "CurrentTeam", "OptionalTeam", "OwnSubmission", "ProgramDep", "SessionDep", "client_of"]

_bearer = HTTPBearer(auto_error=False, description="A team's API token (an admin's token for /admin routes).")


def get_db(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_db)]


def client_of(request: Request) -> str:
    return request.client.host if request.client else ""


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def get_optional_team(
    request: Request, session: SessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> m.Team | None:
    if credentials is None:
        return None
    found = crud.authenticate(session, credentials.credentials)
    if found is None:
        crud.audit_now(request.app.state.sessions, actor="anonymous", action="authenticate", result="denied",
                       target=request.url.path[:200], detail="unknown or revoked token", client=client_of(request))
        raise _unauthorized("the token is unknown or has been revoked; ask your program's admin for a new one")
    team, token = found
    request.state.token_id = token.id
    return team


OptionalTeam = Annotated[m.Team | None, Depends(get_optional_team)]


def get_current_team(team: OptionalTeam) -> m.Team:
    if team is None:
        raise _unauthorized("this route needs a team's token: send the header 'Authorization: Bearer <token>'")
    return team


CurrentTeam = Annotated[m.Team, Depends(get_current_team)]


def get_admin(request: Request, team: CurrentTeam) -> m.Team:
    if not team.is_admin:
        crud.audit_now(request.app.state.sessions, actor=team.name, team_id=team.id, action="admin-route", result="denied",
                       target=request.url.path[:200], client=client_of(request))
        raise HTTPException(status_code=403, detail="this route is for the program's admin only")
    return team


AdminDep = Annotated[m.Team, Depends(get_admin)]


def get_program(session: SessionDep, slug: Annotated[str, Path(max_length=64)]) -> m.ProgramRow:
    row = crud.program_by_slug(session, slug)
    if row is None:
        raise HTTPException(status_code=404, detail=f"there is no program {slug!r}; GET /api/v1/programs lists them")
    return row


ProgramDep = Annotated[m.ProgramRow, Depends(get_program)]


def get_own_submission(session: SessionDep, team: CurrentTeam, submission_id: Annotated[int, Path(ge=1, le=2**31 - 1)]) -> m.Submission:
    sub = session.get(m.Submission, submission_id)
    # Another team's submission is reported as absent, not forbidden: its existence is theirs.
    if sub is None or (sub.team_id != team.id and not team.is_admin):
        raise HTTPException(status_code=404, detail=f"you have no submission {submission_id}")
    return sub


OwnSubmission = Annotated[m.Submission, Depends(get_own_submission)]
