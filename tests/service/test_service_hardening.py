"""The web process survives anything anonymous: contained predictions and bundles, body and
row caps before parsing, rate limits, throttled and batched refusals, and revocation that
reaches tokens made with a token, disabled teams and signed-out sessions."""

from __future__ import annotations

import re
import sys
import tracemalloc
from datetime import datetime
from pathlib import Path

import pytest
from service_helpers import (  # noqa: F401 - fixtures
    ADMIN_TOKEN,
    base_program,
    db_url,
    make_program,
    models,
    program_dir,
    running_service,
    service,
    service_settings,
    sqlite_service,
    sqlite_url,
)
from sqlalchemy import func, select

from groupwise.service import models as m
from groupwise.service._predict import BundleCache, ContainedRunner, PredictionError, PredictLimits

ROW = {"u": 0.9, "v": 0.1, "c": "red"}


def dying_child(signal_name: str) -> list[str]:
    """The argv of a child that starts like a prediction process, takes its job and dies of a signal."""
    code = ("import os, signal, sys; sys.stdout.write('ready\\n'); sys.stdout.flush(); sys.stdin.readline(); "
            f"os.kill(os.getpid(), signal.{signal_name})")
    return [sys.executable, "-c", code]


def dormant_loop_model(path: Path) -> Path:
    """An ONNX model that predicts class 0, after looping int(max(u)) times and filling a
    tensor of int(max(v)) numbers.

    On the public data u, v < 1, so it passes every check at once; a row with u = 1e12
    makes it loop for hours, one with v = 1e11 asks for 400 GB.
    """
    import onnx
    from onnx import TensorProto, helper

    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Add", ["acc_in", "one"], ["acc_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, []),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, []),
        ],
        [helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])],
    )
    nodes = [
        helper.make_node("Gather", ["X", "zero_index"], ["u"], axis=1),
        helper.make_node("ReduceMax", ["u"], ["u_max"], keepdims=0),
        helper.make_node("Cast", ["u_max"], ["trips"], to=TensorProto.INT64),
        helper.make_node("Loop", ["trips", "true", "acc0"], ["acc"], body=body),
        helper.make_node("Gather", ["X", "one_index"], ["v"], axis=1),
        helper.make_node("ReduceMax", ["v"], ["v_max"], keepdims=1),
        helper.make_node("Cast", ["v_max"], ["size"], to=TensorProto.INT64),
        helper.make_node("ConstantOfShape", ["size"], ["filled"]),
        helper.make_node("ReduceSum", ["filled"], ["total"], keepdims=0),
        helper.make_node("Add", ["acc", "total"], ["acc_total"]),
        helper.make_node("Mul", ["u", "acc_total"], ["scaled"]),
        helper.make_node("Mul", ["scaled", "zero_float"], ["zeros"]),
        helper.make_node("Cast", ["zeros"], ["label"], to=TensorProto.INT64),
    ]
    graph = helper.make_graph(
        nodes,
        "dormant-loop",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, [None])],
        [
            helper.make_tensor("zero_index", TensorProto.INT64, [], [0]),
            helper.make_tensor("one_index", TensorProto.INT64, [], [1]),
            helper.make_tensor("true", TensorProto.BOOL, [], [True]),
            helper.make_tensor("acc0", TensorProto.FLOAT, [], [0.0]),
            helper.make_tensor("zero_float", TensorProto.FLOAT, [], [0.0]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


# --- 1. accepted models never run in the web process ---------------------------------------


def test_a_dormant_loop_or_allocation_fails_only_its_own_request(sqlite_url, models, tmp_path):
    loop = dormant_loop_model(tmp_path / "loop.onnx")
    program = make_program(tmp_path / "loop-program", {**models, "zero": loop})
    settings = service_settings(sqlite_url, predict_cpu_seconds=2, predict_wall_seconds=60)
    with running_service(settings, program.root) as service:
        url = "/api/v1/programs/synthetic/predict"
        ok = service.client.post(url, json={"rows": [ROW]})
        assert ok.status_code == 200, ok.text
        assert ok.json()["predictions"] == ["no"]
        hostile = service.client.post(url, json={"rows": [{**ROW, "u": 1e12}]})
        assert hostile.status_code == 422
        assert hostile.headers["content-type"] == "application/json"
        assert "CPU-time limit of 2 s" in hostile.json()["detail"]
        greedy = service.client.post(url, json={"rows": [{**ROW, "v": 1e11}]})
        assert greedy.status_code == 422 and "memory limit" in greedy.json()["detail"], greedy.text
        # The web process is unharmed and answers the next request at once.
        assert service.client.get("/api/v1/health").json()["status"] == "ok"
        assert service.client.post(url, json={"rows": [ROW]}).json()["predictions"] == ["no"]


def test_a_crashing_model_fails_only_its_own_request(sqlite_service):
    service = sqlite_service
    url = "/api/v1/programs/synthetic/predict"
    assert service.client.post(url, json={"rows": [ROW]}).status_code == 200
    public = service.app.state.public_models
    # The child dies of SIGSEGV, as a model with an out-of-bounds tree index makes it.
    segv = ContainedRunner(PredictLimits(), spares=0, command=dying_child("SIGSEGV"))
    real, public._runner = public._runner, segv
    try:
        crashed = service.client.post(url, json={"rows": [ROW]})
        assert crashed.status_code == 500
        assert crashed.headers["content-type"] == "application/json"
        assert "crashed" in crashed.json()["detail"] and "signal 11" in crashed.json()["detail"]
        assert service.client.get("/api/v1/health").status_code == 200
    finally:
        public._runner = real
        segv.close()
    assert service.client.post(url, json={"rows": [ROW]}).status_code == 200


def test_predictions_and_exports_run_in_a_child_process(sqlite_service, monkeypatch):
    import groupwise.bounty
    import groupwise.bounty._pdl

    def refuse(*args, **kwargs):
        raise AssertionError("the web process loaded a model")

    monkeypatch.setattr(groupwise.bounty, "load_bundle", refuse)
    monkeypatch.setattr(groupwise.bounty._pdl.Bundle, "predict", refuse)
    monkeypatch.setattr(groupwise.bounty._pdl, "load_bundle", refuse)
    service = sqlite_service
    answer = service.client.post("/api/v1/programs/synthetic/predict", json={"rows": [ROW, {**ROW, "u": 0.1}]})
    assert answer.status_code == 200, answer.text
    assert service.client.get("/api/v1/programs/synthetic/bundle").status_code == 200


def test_a_bundle_with_a_skops_model_predicts_in_the_child(models, tmp_path):
    """The child preloads what ONNX models need; a skops model's libraries load in its own job."""
    import numpy as np
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    from groupwise.service._predict import PublicModels

    rng = np.random.default_rng(0)
    X = np.column_stack([rng.random(2000), rng.random(2000), rng.integers(0, 3, 2000)]).astype(np.float32)
    sio.dump(LogisticRegression().fit(X, (X[:, 0] > 0.5).astype(np.int64)), tmp_path / "base.skops")
    program = make_program(tmp_path / "program", models, base_model=tmp_path / "base.skops")
    public = PublicModels(spares=0)
    try:
        rows = [{"u": 0.9, "v": 0.1, "c": "red"}, {"u": 0.1, "v": 0.2, "c": "blue"}]
        assert public.predict(str(program.root), 0, rows) == ["yes", "no"]
    finally:
        public.close()


def test_the_runner_reports_a_killed_child_plainly():
    runner = ContainedRunner(PredictLimits(wall_seconds=60), spares=0, command=dying_child("SIGKILL"))
    try:
        with pytest.raises(PredictionError) as caught:
            runner.run({"op": "predict"})
        assert caught.value.kind == "limit"
    finally:
        runner.close()
    # A child that dies before it is ready is reported too, never waited for.
    runner = ContainedRunner(PredictLimits(), spares=0, command=[sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"])
    try:
        with pytest.raises(PredictionError) as caught:
            runner.run({"op": "predict"})
        assert caught.value.kind == "crash" and "signal 11" in caught.value.message
    finally:
        runner.close()


# --- 2. body caps, row caps, rate limits, cached and pruned bundles ------------------------


def test_a_huge_prediction_body_is_refused_before_parsing(sqlite_url, program_dir):
    settings = service_settings(sqlite_url, inprocess_worker=False)
    with running_service(settings, program_dir) as service:
        url = "/api/v1/programs/synthetic/predict"
        tiny = b'{"rows": [' + b",".join([b"{}"] * 7_000_000) + b"]}"  # 20 MB of tiny rows
        assert len(tiny) > 20_000_000
        tracemalloc.start()
        try:
            baseline = tracemalloc.get_traced_memory()[0]
            refused = service.client.post(url, content=tiny, headers={"content-type": "application/json"})

            def chunks():
                for start in range(0, len(tiny), 1 << 20):
                    yield tiny[start:start + (1 << 20)]

            streamed = service.client.post(url, content=chunks(), headers={"content-type": "application/json"})
            peak = tracemalloc.get_traced_memory()[1] - baseline
        finally:
            tracemalloc.stop()
        assert refused.status_code == 413 and "KB" in refused.json()["detail"]
        assert streamed.status_code == 413
        # Parsing it would have taken about a gigabyte; refusing it takes a few megabytes.
        assert peak < 128 * 1024 * 1024, peak
        # Under the byte cap but over the row cap: refused from the raw bytes too.
        many = b'{"rows": [' + b",".join([b"{}"] * 5000) + b"]}"
        over = service.client.post(url, content=many, headers={"content-type": "application/json"})
        assert over.status_code == 413 and "at most 1000 rows" in over.json()["detail"]
        # Braces inside strings are not rows.
        quoted = {"rows": [{**ROW, "c": "{" * 3000}]}
        assert service.client.post(url, json=quoted).status_code == 422
        # Other routes take small bodies only.
        big_json = {"name": "x" * (300 * 1024)}
        assert service.client.post("/api/v1/admin/teams", json=big_json, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).status_code == 413


def test_anonymous_bundle_downloads_are_rate_limited_and_cached(sqlite_url, program_dir):
    settings = service_settings(sqlite_url, bundle_downloads_per_hour=2, inprocess_worker=False)
    with running_service(settings, program_dir) as service:
        runner = service.app.state.public_models.runner
        jobs = []
        real = runner.run

        def counting(job):
            jobs.append(job["op"])
            return real(job)

        runner.run = counting
        url = "/api/v1/programs/synthetic/bundle"
        assert service.client.get(url).status_code == 200
        assert service.client.get(url).status_code == 200
        limited = service.client.get(url)
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
        # A team has its own allowance; the bundle was exported once.
        token = service.team("alpha")
        assert service.client.get(url, headers=service.auth(token)).status_code == 200
        assert jobs == ["export"]
        # Anonymous predictions are limited per address in memory before the database.
    settings = service_settings(sqlite_url.replace("bounty.db", "other.db"), predictions_per_hour=1, inprocess_worker=False)
    with running_service(settings, program_dir) as service:
        url = "/api/v1/programs/synthetic/predict"
        assert service.client.post(url, json={"rows": [ROW]}).status_code == 200
        assert service.client.post(url, json={"rows": [ROW]}).status_code == 429
        with service.app.state.sessions() as session:
            counters = session.scalar(select(func.sum(m.RateCounter.count)).where(m.RateCounter.key.like("predict:ip:%")))
        for _ in range(20):
            assert service.client.post(url, json={"rows": [ROW]}).status_code == 429
        with service.app.state.sessions() as session:
            assert session.scalar(select(func.sum(m.RateCounter.count)).where(m.RateCounter.key.like("predict:ip:%"))) == counters


class _FakeExports:
    """Stands in for the contained runner: writes a bundle zip as an export would."""

    def __init__(self) -> None:
        self.jobs: list[dict] = []

    def run(self, job: dict) -> dict:
        self.jobs.append(job)
        out = Path(job["out"])
        (out / "bundle").mkdir(parents=True)
        (out / "bundle.zip").write_bytes(f"version {job['version']}".encode())
        return {"ok": True}


def test_the_bundle_cache_keeps_the_most_recent_exports_only(tmp_path):
    exports = _FakeExports()
    cache = BundleCache(tmp_path / "cache", exports, keep=2)  # type: ignore[arg-type]
    for version in (0, 1, 0, 2, 3, 3):
        assert cache.zip_path("/programs/p", version).read_bytes() == f"version {version}".encode()
    # Two entries are kept: the second 0 and the second 3 come from the cache, and the
    # least recently used entries (1, then 0) were deleted.
    assert [j["version"] for j in exports.jobs] == [0, 1, 2, 3]
    assert len(cache.entries()) == 2
    assert {p.name.rsplit("-v", 1)[1] for p in cache.entries()} == {"2", "3"}


# --- 3. throttled, batched refusals ----------------------------------------------------------


def _audit_rows(app, action: str) -> list[m.AuditEntry]:
    with app.state.sessions() as session:
        return list(session.scalars(select(m.AuditEntry).where(m.AuditEntry.action == action).order_by(m.AuditEntry.id)))


def test_bad_tokens_are_throttled_and_audited_in_batches(sqlite_url, program_dir):
    settings = service_settings(sqlite_url, auth_failures_per_minute=5, audit_flush_seconds=3600, inprocess_worker=False)
    with running_service(settings, program_dir) as service:
        team = service.team("alpha")
        assert service.client.get("/api/v1/me", headers=service.auth(team)).status_code == 200
        codes = [service.client.get("/api/v1/me", headers=service.auth(f"gwb_guess{i}")).status_code for i in range(60)]
        assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}
        # Nothing was written per request ...
        assert _audit_rows(service.app, "authenticate") == []
        assert service.app.state.audit_batch.pending() == 60
        # ... while a working token from the same address still works.
        assert service.client.get("/api/v1/me", headers=service.auth(team)).status_code == 200
        # Reading the log writes what was counted: one row per kind of refusal.
        entries = service.client.get("/api/v1/admin/audit?action=authenticate", headers=service.auth(service.admin)).json()
        assert sorted((e["result"], e["detail"].split(" (")[1].split(" times")[0]) for e in entries) == [("denied", "5"), ("throttled", "55")]
        assert len(_audit_rows(service.app, "authenticate")) == 2


def test_failed_sign_ins_are_throttled_and_batched(sqlite_url, program_dir):
    settings = service_settings(sqlite_url, auth_failures_per_minute=3, audit_flush_seconds=3600, inprocess_worker=False)
    with running_service(settings, program_dir) as service:
        client = service.client
        team = service.team("alpha")  # the admin's token works from this address
        csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)
        codes = [client.post("/login", data={"token": f"gwb_guess{i}", "csrf": csrf}).status_code for i in range(20)]
        assert codes[:3] == [401] * 3 and set(codes[3:]) == {429}
        assert _audit_rows(service.app, "sign-in") == []
        service.app.state.audit_batch.flush()
        rows = _audit_rows(service.app, "sign-in")
        assert len(rows) == 1 and "3 times" in rows[0].detail
        # A team whose token worked from here before still signs in.
        assert client.get("/api/v1/me", headers=service.auth(team)).status_code == 429
        assert client.post("/login", data={"token": service.admin, "csrf": csrf}, follow_redirects=False).status_code == 303


# --- 5. revocation reaches everything made from it -----------------------------------------


def test_tokens_made_with_a_token_die_with_it(service):
    team = service.team("alpha")
    child = service.client.post("/api/v1/me/tokens", json={"label": "child"}, headers=service.auth(team)).json()
    grandchild = service.client.post("/api/v1/me/tokens", json={"label": "grandchild"}, headers=service.auth(child["token"])).json()
    sibling = service.client.post("/api/v1/admin/teams/2/tokens", json={"label": "admin-made"}, headers=service.auth(service.admin)).json()
    for token in (team, child["token"], grandchild["token"], sibling["token"]):
        assert service.client.get("/api/v1/me", headers=service.auth(token)).status_code == 200
    first = service.client.get("/api/v1/me/tokens", headers=service.auth(team)).json()[0]["id"]
    assert service.client.delete(f"/api/v1/me/tokens/{first}", headers=service.auth(sibling["token"])).status_code == 200
    for token in (team, child["token"], grandchild["token"]):
        assert service.client.get("/api/v1/me", headers=service.auth(token)).status_code == 401
    assert service.client.get("/api/v1/me", headers=service.auth(sibling["token"])).status_code == 200
    listed = {t["label"]: t["revoked_at"] for t in service.client.get("/api/v1/me/tokens", headers=service.auth(sibling["token"])).json()}
    assert listed["child"] and listed["grandchild"] and listed["admin-made"] is None
    # A token made in the same instant as its parent's revocation still dies: the chain is checked.
    late = service.client.post("/api/v1/me/tokens", json={"label": "late"}, headers=service.auth(sibling["token"])).json()
    with service.app.state.sessions() as session:
        session.get(m.ApiToken, sibling["id"]).revoked_at = datetime(2030, 1, 1)
        session.commit()
    assert service.client.get("/api/v1/me", headers=service.auth(late["token"])).status_code == 401


def test_the_admin_disables_a_whole_team(db_url, program_dir, models):
    settings = service_settings(db_url, inprocess_worker=False)
    with running_service(settings, program_dir) as service:
        token = service.team("alpha")
        other = service.team("beta")
        second = service.client.post("/api/v1/me/tokens", json={"label": "two"}, headers=service.auth(token)).json()["token"]
        queued = service.submit(token, models["truth"], group="u > 0.5").json()["id"]
        admin = service.auth(service.admin)
        assert service.client.patch("/api/v1/admin/teams/1", json={"disabled": True}, headers=admin).status_code == 409
        done = service.client.patch("/api/v1/admin/teams/2", json={"disabled": True}, headers=admin)
        assert done.status_code == 200 and done.json()["disabled_at"]
        for t in (token, second):
            assert service.client.get("/api/v1/me", headers=service.auth(t)).status_code == 401
            assert service.submit(t, models["truth"], group="u > 0.5").status_code == 401
        sub = service.client.get(f"/api/v1/submissions/{queued}", headers=admin).json()
        assert sub["status"] == "decided" and sub["decision"] == "refused" and "disabled" in sub["reason"]
        assert service.client.get("/api/v1/me", headers=service.auth(other)).status_code == 200
        assert service.client.patch("/api/v1/admin/teams/2", json={"disabled": False}, headers=admin).status_code == 200
        assert service.client.get("/api/v1/me", headers=service.auth(token)).status_code == 200
        actions = {e["action"] for e in service.client.get("/api/v1/admin/audit", headers=admin).json()}
        assert {"disable-team", "enable-team"} <= actions


def _sign_in(client, token: str) -> None:
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)
    assert client.post("/login", data={"token": token, "csrf": csrf}, follow_redirects=False).status_code == 303


def test_signing_out_ends_the_session_on_the_server(sqlite_service):
    service = sqlite_service
    client = service.client
    token = service.team("alpha")
    _sign_in(client, token)
    assert client.get("/my/submissions", follow_redirects=False).status_code == 200
    cookie = client.cookies.get("groupwise_session")
    page = client.get("/my/submissions").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    assert client.post("/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    # The old cookie, replayed, no longer signs anyone in.
    client.cookies.clear()
    client.cookies.set("groupwise_session", cookie)
    replay = client.get("/my/submissions", follow_redirects=False)
    assert replay.status_code == 303 and replay.headers["location"].startswith("/login")
    # Disabling the team ends its open sessions too.
    _sign_in(client, token)
    assert client.get("/my/submissions", follow_redirects=False).status_code == 200
    assert client.patch("/api/v1/admin/teams/2", json={"disabled": True}, headers=service.auth(service.admin)).status_code == 200
    assert client.get("/my/submissions", follow_redirects=False).status_code == 303
