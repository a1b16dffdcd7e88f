"""The command-line client against a real server: submit, wait, status; errors end with a fix."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from service_helpers import base_program, live_service, make_team, models, program_dir, service_settings, sqlite_url  # noqa: F401

from groupwise._errors import GroupwiseError
from groupwise.service._client import ServiceError, remote_status, remote_submit


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200), out


def test_submit_and_status_from_the_command_line_client(sqlite_url, program_dir, models, tmp_path):
    with live_service(service_settings(sqlite_url), program_dir) as (url, _):
        token = make_team(url, "cli-team")
        console, out = _console()
        decided = remote_submit(url, token=token, model=models["truth"], group="u > 0.5", wait=True, timeout=120, console=console)
        assert decided["decision"] == "accepted"
        assert "accepted submission" in out.getvalue() and "version 0 ->" in out.getvalue()
        queued = remote_submit(url, token=token, program="synthetic", model=models["zero"], group_model=models["v"], console=console)
        assert queued["status"] in ("queued", "running", "decided")
        console, out = _console()
        status = remote_status(url, token=token, console=console)
        assert status["programs"][0]["slug"] == "synthetic" and status["programs"][0]["accepted"] >= 1
        assert status["leaderboards"]["synthetic"][0]["team"] == "cli-team"
        assert {s["id"] for s in status["submissions"]} == {decided["id"], queued["id"]}
        assert "Leaderboard of synthetic" in out.getvalue() and "Your submissions" in out.getvalue()
        anonymous = remote_status(url, console=_console()[0])
        assert anonymous["submissions"] is None

        with pytest.raises(ServiceError, match="401") as err:
            remote_submit(url, token="gwb_wrong", model=models["truth"], group="u > 0.5", console=console)
        assert "Fix: check the token" in str(err.value)
        with pytest.raises(ServiceError, match="404"):
            remote_submit(url, token=token, program="nope", model=models["truth"], group="u > 0.5", console=console)
        with pytest.raises(GroupwiseError, match="exactly one group"):
            remote_submit(url, token=token, model=models["truth"], console=console)
        with pytest.raises(GroupwiseError, match="does not exist"):
            remote_submit(url, token=token, model=tmp_path / "missing.onnx", group="u > 0.5", console=console)
    with pytest.raises(ServiceError, match="cannot reach") as err:
        remote_status(url, console=console)
    assert "Fix:" in str(err.value)
