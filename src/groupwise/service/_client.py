"""The command-line client of a bounty service: ``groupwise bounty submit --server`` and
``groupwise bounty status --server``.

Standard library only (``urllib``), so the client needs nothing beyond groupwise itself.
Every failure is raised as a :class:`~groupwise._errors.GroupwiseError` whose fix says what
to do; the CLI prints it as one paragraph.
"""

from __future__ import annotations

import json
import mimetypes
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from groupwise._errors import GroupwiseError, InputError

__all__ = ["ServiceError", "remote_status", "remote_submit", "wait_for"]


class ServiceError(GroupwiseError):
    """The service refused a request or could not be reached.

    Attributes
    ----------
    status : int
        The HTTP status (0 when the service could not be reached).
    """

    def __init__(self, problem: str, *, fix: str, status: int = 0) -> None:
        self.status = status
        super().__init__(problem, fix=fix)


_FIXES = {
    401: "check the token (--token); ask the program's admin for a new one if it was revoked",
    403: "use a token that is allowed to do this",
    404: "check --server and --program (groupwise bounty status --server URL lists the programs)",
    409: "wait until the program is open again; its admin must refresh the holdout",
    413: "submit a smaller file",
    422: "correct the request as the message says",
    429: "wait before submitting again",
}


def _request(server: str, method: str, path: str, *, token: str | None = None, body: bytes | None = None,
             content_type: str | None = None, timeout: float = 60.0) -> Any:
    url = server.rstrip("/") + path
    if not url.startswith(("http://", "https://")):
        raise InputError(f"the server address {server!r} is not an http(s) URL", fix="pass --server http://host:port")
    request = urllib.request.Request(url, data=body, method=method)  # noqa: S310 - the scheme is checked above
    request.add_header("Accept", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            data = response.read()
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            detail = json.loads(raw).get("detail", raw.decode("utf-8", "replace"))
        except (ValueError, AttributeError):
            detail = raw.decode("utf-8", "replace")[:500]
        if isinstance(detail, list):  # FastAPI's validation errors
            detail = "; ".join(f"{'.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}" for d in detail)
        detail = str(detail).split(" Fix: ")[0]
        raise ServiceError(f"the service answered {exc.code}: {detail}", fix=_FIXES.get(exc.code, "try again later"), status=exc.code) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ServiceError(f"cannot reach the bounty service at {server} ({reason})", fix="check --server and that the service is running") from None
    return json.loads(data) if data else None


def _multipart(fields: dict[str, str], files: dict[str, Path]) -> tuple[bytes, str]:
    boundary = f"groupwise-{uuid.uuid4().hex}"
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value.encode("utf-8") + b"\r\n")
    for name, path in files.items():
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        filename = path.name.replace('"', "_")
        header = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\nContent-Type: {kind}\r\n\r\n'
        parts.append(header.encode() + path.read_bytes() + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _console(console: Any) -> Any:
    if console is not None:
        return console
    from rich.console import Console

    return Console(width=120)


def wait_for(server: str, token: str, submission: int, *, timeout: float = 600.0, poll: float = 1.0) -> dict[str, Any]:
    """Poll a submission until it is decided; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        body = _request(server, "GET", f"/api/v1/submissions/{int(submission)}", token=token)
        if body["status"] == "decided":
            return body
        if time.monotonic() > deadline:
            raise ServiceError(
                f"submission {submission} was not decided within {timeout:g} s (status {body['status']})",
                fix=f"look later: groupwise bounty status --server {server} --token TOKEN",
            )
        time.sleep(poll)


def _print_decision(console: Any, sub: dict[str, Any]) -> None:
    if sub["decision"] == "accepted":
        console.print(
            f"[green]accepted[/] submission {sub['id']}: version {sub['version_before']} -> {sub['version_after']}"
            + (f" with {sub['repairs']} repair(s)" if sub["repairs"] else "")
            + (f"; public test loss {sub['test_loss_before']:.4f} -> {sub['test_loss_after']:.4f}" if sub["test_loss_before"] is not None else ""),
            highlight=False,
        )
    elif sub["decision"] == "rejected":
        console.print(f"[red]rejected[/] submission {sub['id']}: {sub['reason']}", highlight=False)
    else:
        console.print(f"submission {sub['id']}: {sub['status']}", highlight=False)


def remote_submit(
    server: str,
    *,
    token: str,
    program: str | None = None,
    model: str | Path,
    group: str | None = None,
    group_model: str | Path | None = None,
    wait: bool = False,
    timeout: float = 600.0,
    console: Any = None,
) -> dict[str, Any]:
    """``groupwise bounty submit --server URL --token T [--program SLUG] --group EXPR|g.onnx --model h.onnx [--wait]``.

    Uploads the pair; returns the queued submission, or with ``wait`` the decided one.
    ``--group`` is read as a group model when it names an existing ``.onnx`` or ``.skops``
    file. ``--program`` may be left out when the service runs a single program.
    """
    console = _console(console)
    if not token:
        raise InputError("no token was given", fix="pass --token with your team's API token")
    model_path = Path(model)
    if not model_path.is_file():
        raise InputError(f"the model file {str(model_path)!r} does not exist", fix="pass --model with an ONNX or skops file")
    if group is not None and group_model is None and Path(group).suffix in (".onnx", ".skops") and Path(group).is_file():
        group, group_model = None, Path(group)
    if (group is None) == (group_model is None):
        raise InputError("a submission needs exactly one group", fix="pass --group with an expression or a group model file")
    if program is None:
        programs = _request(server, "GET", "/api/v1/programs")
        if len(programs) != 1:
            names = ", ".join(p["slug"] for p in programs) or "none"
            raise InputError(f"the service runs {len(programs)} programs ({names})", fix="pass --program with one of them")
        program = programs[0]["slug"]
    files = {"model": model_path}
    if group_model is not None:
        files["group_model"] = Path(group_model)
    body, content_type = _multipart({"group": group} if group is not None else {}, files)
    queued = _request(server, "POST", f"/api/v1/programs/{urllib.parse.quote(program)}/submissions", token=token, body=body,
                      content_type=content_type, timeout=120)
    console.print(f"queued submission {queued['id']} to {queued['program']}", highlight=False)
    if not wait:
        return queued
    decided = wait_for(server, token, queued["id"], timeout=timeout)
    _print_decision(console, decided)
    return decided


def remote_status(server: str, *, token: str | None = None, program: str | None = None, console: Any = None) -> dict[str, Any]:
    """``groupwise bounty status --server URL [--token T] [--program SLUG]``.

    Shows each program's public figures and leaderboard; with a token, also the team's own
    submissions and their decisions.
    """
    from rich.table import Table

    console = _console(console)
    programs = _request(server, "GET", "/api/v1/programs")
    if program is not None:
        programs = [p for p in programs if p["slug"] == program]
        if not programs:
            raise InputError(f"the service has no program {program!r}", fix="leave out --program to list them")
    out: dict[str, Any] = {"programs": programs, "leaderboards": {}, "submissions": None}
    for p in programs:
        loss = f"{p['test_loss']:.4f}" if p["test_loss"] is not None else "-"
        console.print(
            f"Program {p['slug']} ({p['name']}): {p['task']} of {p['target']}, version {p['version']}, public test loss {loss}; "
            f"{p['submissions']} submissions, {p['accepted']} accepted; {'open' if p['accepting_submissions'] else 'closed'}",
            highlight=False,
        )
        board = _request(server, "GET", f"/api/v1/programs/{urllib.parse.quote(p['slug'])}/leaderboard")
        out["leaderboards"][p["slug"]] = board
        if board:
            table = Table(title=f"Leaderboard of {p['slug']} (public test split)")
            for column in ("#", "team", "submissions", "accepted", "improvement"):
                table.add_column(column)
            for row in board:
                table.add_row(str(row["rank"]), row["team"], str(row["submissions"]), str(row["accepted"]), f"{row['improvement']:.4f}")
            console.print(table)
    if token:
        query = f"?program={urllib.parse.quote(program)}" if program else ""
        mine = _request(server, "GET", f"/api/v1/submissions{query}", token=token)
        out["submissions"] = mine
        table = Table(title="Your submissions")
        for column in ("id", "program", "group", "status", "decision", "reason"):
            table.add_column(column)
        for sub in mine:
            table.add_row(str(sub["id"]), sub["program"], sub["group"] or f"model {sub['group_filename']}", sub["status"],
                          sub["decision"] or "", sub["reason"][:80])
        console.print(table)
    return out
