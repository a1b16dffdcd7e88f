"""A team's own account: who it is, its tokens (it may make more and revoke them)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request

from groupwise.service import crud
from groupwise.service import models as m
from groupwise.service.api.deps import CurrentTeam, SessionDep, client_of
from groupwise.service.schemas import TeamPublic, TokenCreate, TokenCreated, TokenPublic

router = APIRouter(tags=["account"])


def token_created(row: m.ApiToken, token: str) -> dict[str, Any]:
    return {**TokenPublic.model_validate(row).model_dump(), "token": token}


@router.get("/me", response_model=TeamPublic, responses={401: {}}, summary="The team the token belongs to")
def me(team: CurrentTeam) -> m.Team:
    return team


@router.get("/me/tokens", response_model=list[TokenPublic], responses={401: {}}, summary="Your team's tokens (never the tokens themselves)")
def my_tokens(session: SessionDep, team: CurrentTeam) -> list[m.ApiToken]:
    return list(crud.tokens_of(session, team.id))


@router.post("/me/tokens", response_model=TokenCreated, status_code=201, responses={401: {}},
             summary="Make another token (shown once; revoking the token used here revokes it too)")
def new_token(request: Request, session: SessionDep, team: CurrentTeam, body: TokenCreate) -> dict[str, Any]:
    # The new token hangs on the one that made it: revoking that one revokes this one too.
    parent = session.get(m.ApiToken, request.state.token_id)
    row, token = crud.create_token(session, team, label=body.label, parent=parent)
    crud.audit(session, actor=team.name, team_id=team.id, action="create-token", target=f"token {row.id}", result="ok", client=client_of(request))
    session.commit()
    return token_created(row, token)


@router.delete("/me/tokens/{token_id}", response_model=TokenPublic, responses={401: {}, 404: {}}, summary="Revoke one of your tokens and the tokens made with it")
def revoke(request: Request, session: SessionDep, team: CurrentTeam, token_id: Annotated[int, Path(ge=1, le=2**31 - 1)]) -> m.ApiToken:
    row = session.get(m.ApiToken, token_id)
    if row is None or row.team_id != team.id:
        raise HTTPException(status_code=404, detail=f"your team has no token {token_id}")
    revoked = crud.revoke_token(session, row)
    crud.audit(session, actor=team.name, team_id=team.id, action="revoke-token", target=f"token {row.id}", result="ok",
               detail=f"with the tokens made with it: {revoked[1:]}" if len(revoked) > 1 else "", client=client_of(request))
    session.commit()
    return row
