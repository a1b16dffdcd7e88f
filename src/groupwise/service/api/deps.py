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
from groupwise.service.core.security import hash_token

__all__ = ["AdminDep", "CurrentTeam", "OptionalTeam", "OwnSubmission", "ProgramDep", "SessionDep", "auth_failed", "check_auth_throttle",
           "client_of"]

_bearer = HTTPBearer(auto_error=False, description="A team's API token (an admin's token for /admin routes).")


def get_db(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_db)]


def client_of(request: Request) -> str:
    return request.client.host if request.client else ""


def check_auth_throttle(request: Request, client: str) -> None:
    """Refuse at once (429) a client address that has sent too many bad tokens or failed
    sign-ins this minute: no database lookup, and one counted audit entry."""
    throttle = request.app.state.auth_failures
    if throttle.blocked(client):
        request.app.state.audit_batch.add(actor="anonymous", action="authenticate", result="throttled",
                                          detail="too many unknown tokens or failed sign-ins", client=client)
        retry = throttle.retry_after(client)
        raise HTTPException(
            status_code=429,
            detail=f"too many unknown tokens or failed sign-ins from your address. Fix: wait {retry} s and check the token",
            headers={"Retry-After": str(retry)},
        )


def auth_failed(request: Request, client: str, *, action: str, detail: str, target: str = "") -> None:
    """Count a failed authentication for the throttle and the batched audit log."""
    request.app.state.auth_failures.hit(client)
    request.app.state.audit_batch.add(actor="anonymous", action=action, result="denied", target=target, detail=detail, client=client)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def get_optional_team(
    request: Request, session: SessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> m.Team | None:
    if credentials is None:
        return None
    client = client_of(request)
    presented = hash_token(credentials.credentials[:200])
    known_good = request.app.state.known_good_tokens
    # A throttled address may still use a token that worked recently (a team behind the
    # same address as a flood); it is checked against the database as always.
    if presented not in known_good:
        check_auth_throttle(request, client)
    found = crud.authenticate(session, credentials.credentials)
    if found is None:
        known_good.discard(presented)
        auth_failed(request, client, action="authenticate", detail="unknown or revoked token", target=request.url.path[:200])
        raise _unauthorized("the token is unknown or has been revoked, or its team is disabled; ask your program's admin for a new one")
    known_good.add(presented)
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
