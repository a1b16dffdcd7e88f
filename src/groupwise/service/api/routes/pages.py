"""The server-rendered web UI: program pages, leaderboard, history, heat map, submitting.

No JavaScript and nothing from another origin: pages are Jinja2 templates, the trajectory
is an SVG drawn by matplotlib, the heat map an HTML table coloured by CSS classes. A team
signs in with its API token; the session cookie (signed, HttpOnly, SameSite=Lax, Secure
behind https) then carries the id of a server-side session, which is checked on every
request together with the token's revocation and the team's status; signing out ends it. Every form carries the session's CSRF token.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from starlette.datastructures import UploadFile

from groupwise.service import crud
from groupwise.service import models as m
from groupwise.service.api.deps import SessionDep, auth_failed, check_auth_throttle, client_of
from groupwise.service.api.routes.admin import budget
from groupwise.service.api.routes.programs import program_public
from groupwise.service.api.routes.submissions import queue_submission
from groupwise.service.core.security import csrf_matches, hash_token, new_csrf_token

router = APIRouter(include_in_schema=False)


def ui_team(request: Request, session: crud.Session) -> m.Team | None:
    """The signed-in team, or None.

    The cookie names a server-side session: signing out ends it, so a copy of the cookie
    is refused afterwards; a revoked token or a disabled team ends it at once too.
    """
    sid = request.session.get("sid")
    if not isinstance(sid, str):
        if request.session.get("team_id") is not None:
            request.session.clear()
        return None
    row = crud.web_session(session, sid)
    token = crud.token_is_live(session, row.token_id) if row is not None else None
    if row is None or token is None or token.team_id != row.team_id or row.team_id != request.session.get("team_id"):
        request.session.clear()
        return None
    return token.team


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = new_csrf_token()
        request.session["csrf"] = token
    return token


def render(request: Request, session: crud.Session, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    team = context.pop("team", None) if "team" in context else ui_team(request, session)
    return request.app.state.templates.TemplateResponse(
        request, template, {"team": team, "csrf": csrf_token(request), **context}, status_code=status_code
    )


def _program(session: crud.Session, slug: str) -> m.ProgramRow:
    row = crud.program_by_slug(session, slug[:64])
    if row is None:
        raise HTTPException(status_code=404, detail=f"there is no program {slug!r}")
    return row


def _check_csrf(request: Request, sent: Any) -> None:
    if not csrf_matches(sent if isinstance(sent, str) else None, request.session.get("csrf")):
        raise HTTPException(status_code=403, detail="the form has expired or did not come from this site; reload the page and try again")


@router.get("/", response_class=HTMLResponse)
def index(request: Request, session: SessionDep) -> Response:
    rows = session.scalars(select(m.ProgramRow).order_by(m.ProgramRow.id)).all()
    return render(request, session, "index.html", programs=[program_public(session, r) for r in rows])


@router.get("/programs/{slug}", response_class=HTMLResponse)
def program_page(request: Request, session: SessionDep, slug: str) -> Response:
    row = _program(session, slug)
    info = request.app.state.page_cache.get(("program", row.slug, row.version), lambda: program_public(session, row))
    base_url = str(request.base_url).rstrip("/")
    example = request.app.state.views.example_group(row.directory)
    return render(request, session, "program.html", program=info, base_url=base_url, nav="program", example_group=example)


@router.get("/programs/{slug}/leaderboard", response_class=HTMLResponse)
def leaderboard_page(request: Request, session: SessionDep, slug: str) -> Response:
    row = _program(session, slug)
    rows = request.app.state.page_cache.get(("leaderboard", row.slug, row.version), lambda: crud.leaderboard(session, row.id))
    return render(request, session, "leaderboard.html", program=row, rows=rows, nav="leaderboard")


@router.get("/programs/{slug}/history", response_class=HTMLResponse)
def history_page(request: Request, session: SessionDep, slug: str) -> Response:
    row = _program(session, slug)
    views = request.app.state.views
    return render(request, session, "history.html", program=row, versions=views.trajectory(row.directory),
                  groups=views.group_errors(row.directory), nav="history")


def heat_cells(usage: dict[str, Any]) -> list[dict[str, Any]]:
    peak = max((v for row in usage["counts"] for v in row), default=0)
    table = []
    for team, counts in zip(usage["teams"], usage["counts"]):
        cells = [{"count": v, "level": 0 if v == 0 or peak == 0 else max(1, math.ceil(9 * v / peak))} for v in counts]
        table.append({"team": team, "cells": cells, "total": sum(counts)})
    return table


@router.get("/programs/{slug}/heatmap", response_class=HTMLResponse)
def heatmap_page(request: Request, session: SessionDep, slug: str) -> Response:
    row = _program(session, slug)
    usage = request.app.state.views.feature_usage(row.directory)
    return render(request, session, "heatmap.html", program=row, features=usage["features"], rows=heat_cells(usage), nav="heatmap")


@router.get("/programs/{slug}/submit", response_class=HTMLResponse)
def submit_form(request: Request, session: SessionDep, slug: str) -> Response:
    row = _program(session, slug)
    team = ui_team(request, session)
    if team is None:
        return RedirectResponse(f"/login?next={quote(f'/programs/{row.slug}/submit')}", status_code=303)
    return render(request, session, "submit.html", team=team, program=row, nav="submit", error=None)


@router.post("/programs/{slug}/submit", response_class=HTMLResponse)
async def submit_post(request: Request, session: SessionDep, slug: str) -> Response:
    from starlette.concurrency import run_in_threadpool

    row = await run_in_threadpool(_program, session, slug)
    team = await run_in_threadpool(ui_team, request, session)
    if team is None:
        return RedirectResponse("/login", status_code=303)
    # The context manager closes the uploads' temporary files whatever happens below.
    async with request.form(max_files=2, max_fields=10) as form:
        _check_csrf(request, form.get("csrf"))
        try:
            sub = await _submit_form(request, session, team, row, form)
        except HTTPException as exc:
            error = str(exc.detail)
            return await run_in_threadpool(
                lambda: render(request, session, "submit.html", status_code=400, team=team, program=row, nav="submit", error=error)
            )
    return RedirectResponse(f"/my/submissions?queued={sub.id}", status_code=303)


async def _submit_form(request: Request, session: crud.Session, team: m.Team, row: m.ProgramRow, form: Any) -> m.Submission:
    from starlette.concurrency import run_in_threadpool

    from groupwise.service.api.routes.submissions import read_capped

    model, group_model, group = form.get("model"), form.get("group_model"), form.get("group")
    if not isinstance(model, UploadFile) or not model.filename:
        raise HTTPException(status_code=422, detail="choose a model file (ONNX or skops)")
    cap = min(request.app.state.settings.max_upload_bytes, int(row.max_upload_mb * 1048576))
    model_item = (model.filename, await read_capped(model, cap, "model"))
    group_item = None
    if isinstance(group_model, UploadFile) and group_model.filename:
        group_item = (group_model.filename, await read_capped(group_model, cap, "group model"))
    text = group.strip() if isinstance(group, str) and group.strip() else None
    return await run_in_threadpool(queue_submission, request, session, team, row, group=text, model=model_item, group_model=group_item)


@router.get("/my/submissions", response_class=HTMLResponse)
def my_submissions(request: Request, session: SessionDep, queued: int | None = None) -> Response:
    team = ui_team(request, session)
    if team is None:
        return RedirectResponse("/login?next=/my/submissions", status_code=303)
    rows = session.scalars(select(m.Submission).where(m.Submission.team_id == team.id).order_by(m.Submission.id.desc()).limit(200)).all()
    return render(request, session, "mine.html", team=team, submissions=[crud.submission_public(s) for s in rows], queued=queued)


def _safe_next(target: str | None) -> str:
    # Only paths on this site: never an absolute or protocol-relative URL (open redirect).
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, session: SessionDep, next: str | None = None) -> Response:  # noqa: A002 - the query parameter's name
    return render(request, session, "login.html", next=_safe_next(next), error=None)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, session: SessionDep) -> Response:
    from starlette.concurrency import run_in_threadpool

    async with request.form(max_files=0, max_fields=5) as form:
        _check_csrf(request, form.get("csrf"))
        token, target = form.get("token"), _safe_next(str(form.get("next") or ""))
    client = client_of(request)
    presented = hash_token(token.strip()[:200]) if isinstance(token, str) else ""
    try:
        if presented not in request.app.state.known_good_tokens:
            check_auth_throttle(request, client)
    except HTTPException as exc:
        detail = str(exc.detail)
        return await run_in_threadpool(
            lambda: render(request, session, "login.html", status_code=429, team=None, next=target, error=detail)
        )
    found = await run_in_threadpool(crud.authenticate, session, token.strip()) if isinstance(token, str) else None
    if found is None:
        auth_failed(request, client, action="sign-in", detail="unknown or revoked token")
        return await run_in_threadpool(
            lambda: render(request, session, "login.html", status_code=401, team=None, next=target,
                           error="That token is unknown or has been revoked, or its team is disabled.")
        )
    team, row = found
    request.app.state.known_good_tokens.add(presented)

    def start() -> str:
        sid = crud.start_web_session(session, team, row)
        crud.audit(session, actor=team.name, team_id=team.id, action="sign-in", result="ok", client=client)
        session.commit()
        return sid

    sid = await run_in_threadpool(start)
    request.session.clear()
    # A fresh CSRF token on sign-in, so one planted before it is worthless after.
    request.session.update({"sid": sid, "team_id": team.id, "csrf": new_csrf_token()})
    return RedirectResponse(target, status_code=303)


@router.post("/logout")
async def logout(request: Request, session: SessionDep) -> Response:
    from starlette.concurrency import run_in_threadpool

    async with request.form(max_files=0, max_fields=5) as form:
        _check_csrf(request, form.get("csrf"))
    sid = request.session.get("sid")
    if isinstance(sid, str):
        def end() -> None:
            crud.end_web_session(session, sid)
            session.commit()

        # Ended on the server: a copy of this cookie is refused from now on.
        await run_in_threadpool(end)
    request.session.clear()
    return RedirectResponse("/", status_code=303)


@router.get("/admin", response_class=HTMLResponse)
def admin_page(request: Request, session: SessionDep) -> Response:
    team = ui_team(request, session)
    if team is None:
        return RedirectResponse("/login?next=/admin", status_code=303)
    if not team.is_admin:
        raise HTTPException(status_code=403, detail="the admin page is for the program's admin only")
    programs = session.scalars(select(m.ProgramRow).order_by(m.ProgramRow.id)).all()
    request.app.state.audit_batch.flush()
    entries = session.scalars(select(m.AuditEntry).order_by(m.AuditEntry.id.desc()).limit(100)).all()
    teams = session.scalars(select(m.Team).order_by(m.Team.id)).all()
    return render(request, session, "admin.html", team=team, budgets=[budget(session, p) for p in programs], entries=entries, teams=teams)
