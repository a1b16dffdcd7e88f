"""The engine's API as a service uses it: models as bytes with a request id, a complete
typed result, exceptions with a kind, decisions found again by request id or upload hash;
and the paper's main figure, each group's error across versions, in ``bounty status``."""

from __future__ import annotations

import hashlib
from dataclasses import fields

import numpy as np
import pytest

from groupwise.bounty import HoldoutExhausted, Program, SubmissionResult
from groupwise.bounty._checker import CheckerState, exhausted_error
from groupwise.bounty._program import GroupSizeError, create_program, error_kind

from bounty_helpers import base_program, models, program, synthetic  # noqa: F401 - fixtures


def test_submit_takes_bytes_and_a_request_id_and_returns_the_whole_result(program, models):
    data = models["u"].read_bytes()
    result = program.submit(team="a", group="u > 0.5", model=data, model_name="../../u.onnx", request_id="job-1")
    assert isinstance(result, SubmissionResult) and result.accepted
    assert result.request_id == "job-1" and result.model_name == "u.onnx"
    assert result.model_sha256 == hashlib.sha256(data).hexdigest()
    assert result.group == {"expr": "u > 0.5"} and result.nodes[0]["kind"] == "update"
    assert (result.queries, result.acceptances) == (program.state.queries, program.state.acceptances)
    assert result.test_loss_after < result.test_loss_before
    # Found again from the log alone, by request id or by the upload's hash: the same result.
    again = Program.load(program.root)
    found = again.find_submission(request_id="job-1")
    assert len(found) == 1 and found[0].to_dict() == {**result.to_dict(), "reveal_at": 0.0}
    assert [r.id for r in again.find_submission(model_sha256=result.model_sha256)] == [result.id]
    assert again.find_submission(request_id="job-2") == []
    assert {f.name for f in fields(SubmissionResult)} >= {"request_id", "nodes", "queries", "model_file", "reveal_at"}


def test_exceptions_carry_their_kind():
    assert error_kind(GroupSizeError("too small", fix="a larger group")) == "group-size"
    assert error_kind(exhausted_error(CheckerState(0.5, 1, queries=1))) == "exhausted"
    assert isinstance(exhausted_error(CheckerState(0.5, 1, queries=1)), HoldoutExhausted)
    from groupwise import InputError

    assert error_kind(InputError("bad", fix="good")) == "input"


def test_a_crash_recovery_never_adopts_another_jobs_decision(program, models):
    pytest.importorskip("sqlalchemy")
    from datetime import datetime

    from groupwise.service.worker import Worker, job_request_id

    created = datetime(2026, 1, 1, 12, 0, 0)
    first, second = models["u"].read_bytes(), models["v"].read_bytes()
    # Job 1 was decided by the engine, then its worker died before the database recorded it.
    logged = program.submit(team="a", group="u > 0.5", model=first, model_name="h.onnx", request_id=job_request_id(1, created, first))
    # Job 2: same team, same group, same file name, another model. It must not adopt job 1's decision.
    assert Worker._orphan_result(program, job_request_id(2, created, second), second, set()) is None
    adopted = Worker._orphan_result(program, job_request_id(1, created, first), first, set())
    assert adopted is not None and adopted.id == logged.id
    assert Worker._orphan_result(program, job_request_id(1, created, first), first, {logged.id}) is None


def test_status_shows_each_groups_error_across_versions(program, models, tmp_path):
    from rich.console import Console

    from groupwise.bounty._cli import feature_usage, status_cmd

    program.submit(team="a", group="u > 0.5", model=models["u"])
    program.submit(team="b", group="v > 0.7", model=models["v"])
    paths = program.group_trajectories()
    assert list(paths["version"]) == list(range(program.version + 1))
    for group in ("u > 0.5", "v > 0.7"):
        mask = program._mask(program.groups()[["u > 0.5", "v > 0.7"].index(group)], "test")
        expected = [program.test_loss(v, mask) for v in range(program.version + 1)]
        np.testing.assert_allclose(paths[group], expected)
    console = Console(record=True, width=160)
    png = tmp_path / "groups.png"
    status_cmd(program.root, plot=png, console=console)
    text = console.export_text()
    assert "Each group's error across versions" in text and "v > 0.7" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    usage = feature_usage(program)
    assert usage.loc["a", "u"] == 1 and usage.loc["b", "v"] == 1 and usage.equals(program.feature_usage())


def test_create_program_lives_in_the_engine(tmp_path, models):
    data = tmp_path / "d.csv"
    synthetic(2000).to_csv(data, index=False)
    program, notes = create_program(tmp_path / "p", data=data, target="y", epsilon=0.04, base_model=str(models["zero"]))
    assert program.config["sizes"]["train"] > 0 and any("fewer than" in n for n in notes)
    with pytest.raises(Exception, match="either --data or --example"):
        create_program(tmp_path / "q")


def test_the_web_views_get_the_groups_across_versions_from_the_engine(program, models):
    pytest.importorskip("sqlalchemy")
    from groupwise.service.engine import EngineViews

    program.submit(team="a", group="u > 0.5", model=models["u"])
    views = EngineViews()
    try:
        data = views.group_trajectories(str(program.root))
        assert data["versions"] == [0, 1] and list(data["groups"]) == ["u > 0.5"]
        assert data["groups"]["u > 0.5"][1] < data["groups"]["u > 0.5"][0]
        assert views.group_trajectories_png(str(program.root))[:4] == b"\x89PNG"
        assert views.feature_usage(str(program.root))["teams"] == ["a"]
    finally:
        views.close()
