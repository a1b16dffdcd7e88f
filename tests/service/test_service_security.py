"""Authorization, hostile uploads, rate limits and the holdout's secrecy, through the API."""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import re
import zipfile
import zlib

import numpy as np
import pytest
from service_helpers import (  # noqa: F401 - fixtures
    ADMIN_TOKEN,
    base_program,
    db_url,
    make_program,
    models,
    program_dir,
    register,
    running_service,
    service,
    service_settings,
    sqlite_service,
    sqlite_url,
)


def _fill(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda m: {"{slug}": "synthetic", "{split}": "train"}.get(m.group(0), "1"), path)


def test_team_boundaries_and_token_lifecycle(service, models):
    a, b = service.team("alpha"), service.team("beta")
    sub = service.submit(a, models["truth"], group="u > 0.5").json()
    service.wait(a, sub["id"])
    # B cannot see A's submission (reported absent, not forbidden) nor list it.
    assert service.client.get(f"/api/v1/submissions/{sub['id']}", headers=service.auth(b)).status_code == 404
    assert service.client.get("/api/v1/submissions", headers=service.auth(b)).json() == []
    assert [s["id"] for s in service.client.get("/api/v1/submissions", headers=service.auth(a)).json()] == [sub["id"]]
    # Tokens: a team sees only its own, never a token or its hash.
    mine = service.client.get("/api/v1/me/tokens", headers=service.auth(b)).json()
    assert len(mine) == 1 and set(mine[0]) == {"id", "team_id", "prefix", "label", "created_at", "last_used_at", "revoked_at"}
    a_token_id = service.client.get("/api/v1/me/tokens", headers=service.auth(a)).json()[0]["id"]
    assert service.client.delete(f"/api/v1/me/tokens/{a_token_id}", headers=service.auth(b)).status_code == 404
    assert service.client.get("/api/v1/admin/teams/1/tokens", headers=service.auth(b)).status_code == 403
    # A second token, then revoke the first: the revoked one is refused everywhere.
    second = service.client.post("/api/v1/me/tokens", json={"label": "laptop"}, headers=service.auth(a))
    assert second.status_code == 201
    new = second.json()["token"]
    revoked = service.client.delete(f"/api/v1/me/tokens/{a_token_id}", headers=service.auth(a))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert service.client.get("/api/v1/me", headers=service.auth(a)).status_code == 401
    assert service.submit(a, models["truth"], group="v > 0.8").status_code == 401
    # The token made with the revoked one dies with it; one the admin issues does not.
    assert service.client.get("/api/v1/me", headers=service.auth(new)).status_code == 401
    a_id = service.client.get("/api/v1/admin/teams", headers=service.auth(service.admin)).json()[1]["id"]
    issued = service.client.post(f"/api/v1/admin/teams/{a_id}/tokens", json={"label": "rotated"}, headers=service.auth(service.admin))
    assert service.client.get("/api/v1/me", headers=service.auth(issued.json()["token"])).json()["name"] == "alpha"
    # The admin revokes a token too.
    b_token_id = mine[0]["id"]
    assert service.client.delete(f"/api/v1/admin/tokens/{b_token_id}", headers=service.auth(service.admin)).status_code == 200
    assert service.client.get("/api/v1/me", headers=service.auth(b)).status_code == 401
    assert service.client.get("/api/v1/me").status_code == 401
    assert service.client.get("/api/v1/me", headers={"Authorization": "Bearer nonsense"}).status_code == 401
    # No stored hash ever appears in a response.
    from sqlalchemy import select

    from groupwise.service.models import ApiToken

    with service.app.state.sessions() as session:
        hashes = list(session.scalars(select(ApiToken.token_hash)))
    pages = [service.client.get(p, headers=service.auth(service.admin)).text
             for p in ("/api/v1/admin/teams/2/tokens", "/api/v1/admin/audit", "/api/v1/admin/audit/export?format=jsonl")]
    for text in pages:
        assert not any(h in text for h in hashes)


def test_every_admin_route_refuses_team_tokens_and_anonymous_calls(service):
    token = service.team("alpha")
    schema = service.client.get("/api/v1/openapi.json").json()
    admin_routes = [(method.upper(), path) for path, item in schema["paths"].items() if path.startswith("/api/v1/admin") for method in item]
    assert len(admin_routes) >= 10
    for method, path in admin_routes:
        url = _fill(path)
        assert service.client.request(method, url, headers=service.auth(token), json={}).status_code == 403, (method, path)
        assert service.client.request(method, url, json={}).status_code == 401, (method, path)
    assert service.client.get("/api/v1/admin/teams", headers=service.auth(service.admin)).status_code == 200
    audit = service.client.get("/api/v1/admin/audit?action=admin-route", headers=service.auth(service.admin)).json()
    assert len(audit) == len(admin_routes) and {e["result"] for e in audit} == {"denied"}


def test_no_response_contains_a_holdout_number(service, models):
    from groupwise.bounty import Program

    token = service.team("alpha")
    for group, model in (("u > 0.5", "truth"), ("v > 0.8", "v"), ("u < 0.2", "u")):
        sub = service.submit(token, models[model], group=group).json()
        service.wait(token, sub["id"])
    with service.app.state.sessions() as session:
        from groupwise.service.models import ProgramRow

        directory = session.query(ProgramRow).one().directory
    program = Program.load(directory)
    secret = {round(float(v), 9) for v in program.holdout_group_losses()["loss"]}
    secret |= {round(float(v), 9) for v in program.holdout_group_losses()["mu"]}
    secret -= {0.0, 1.0}  # a perfect or a useless model; these say nothing about the holdout
    assert secret
    auth = service.auth(service.admin)
    schema = service.client.get("/api/v1/openapi.json").json()
    paths = [p for p, item in schema["paths"].items() if "get" in item
             and not p.endswith((".svg", ".csv.gz", "bundle", "export"))] + ["/api/v1/submissions/1", "/api/v1/submissions/2"]
    seen = 0
    for path in paths:
        for headers in ({}, service.auth(token), auth):
            response = service.client.get(_fill(path), headers=headers)
            if response.status_code != 200:
                continue
            numbers = {round(float(x), 9) for x in re.findall(r"-?\d+\.\d+(?:e-?\d+)?", response.text)}
            assert not numbers & secret, (path, numbers & secret)
            assert "holdout_loss" not in response.text and '"mu"' not in response.text
            seen += 1
    assert seen > 20


def _onnx(path, nodes, outputs, initializers=(), domains=(("", 17),)):
    from onnx import TensorProto, helper

    inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 3])]
    graph = helper.make_graph(nodes, "hostile", inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in domains])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


def test_hostile_files_uploaded_through_the_api_are_rejected_with_reasons(sqlite_service, models, tmp_path):
    import skops.io as sio
    from onnx import TensorProto, helper
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.tree import DecisionTreeClassifier

    service = sqlite_service
    token = service.team("evil")
    pwned = tmp_path / "pwned"

    class Boom:
        def __reduce__(self):
            return (os.system, ("touch " + str(pwned),))

    payloads = {
        "pickle.onnx": (pickle.dumps(Boom()), "pickle"),
        "joblib.onnx": (zlib.compress(pickle.dumps(Boom())), "compressed"),
        "gzip.skops": (gzip.compress(pickle.dumps(Boom())), "compressed"),
        "proto0.onnx": (pickle.dumps([1, 2], protocol=0), "pickle"),
        "weights.onnx": (b"\x93NUMPY" + b"\x00" * 64, "npy"),
        "garbage.onnx": (b"this is not a model at all" * 10, "ONNX"),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps(Boom()))
    payloads["torch.onnx"] = (buffer.getvalue(), "pickle")
    for name, (data, _) in payloads.items():
        (tmp_path / name).write_bytes(data)
    out = [helper.make_tensor_value_info("label", TensorProto.INT64, [None])]
    _onnx(tmp_path / "custom.onnx", [helper.make_node("Evil", ["X"], ["label"], domain="com.evil")], out, domains=(("", 17), ("com.evil", 1)))
    payloads["custom.onnx"] = (None, "com.evil")
    X = np.random.default_rng(0).random((50, 3))
    evil = make_pipeline(FunctionTransformer(os.system), DecisionTreeClassifier())
    evil.steps[1][1].fit(X, (X[:, 0] > 0.5).astype(int))
    sio.dump(evil, tmp_path / "evil.skops")
    payloads["evil.skops"] = (None, "trusted list")

    queued = {}
    for name, (_, word) in payloads.items():
        response = service.submit(token, tmp_path / name, group="u > 0.5")
        assert response.status_code == 202, response.text
        queued[response.json()["id"]] = (name, word)
    for expression, word in (("__import__('os').system('touch " + str(pwned) + "') == 0", ""),
                             ("len(c) > 3", "call"), ("w > 1", "w")):
        response = service.submit(token, models["truth"], group=expression)
        queued[response.json()["id"]] = (expression, word)
    for sub_id, (name, word) in queued.items():
        decided = service.wait(token, sub_id)
        assert decided["decision"] == "rejected", (name, decided)
        assert decided["reason_kind"] == "input", (name, decided)
        assert word.lower() in decided["reason"].lower(), (name, decided["reason"])
        assert "Fix:" in decided["reason"]
    assert not pwned.exists()
    program = service.client.get("/api/v1/programs/synthetic").json()
    assert program["version"] == 0
    budget = service.client.get("/api/v1/admin/programs/synthetic/budget", headers=service.auth(service.admin)).json()
    assert budget["queries"] == 0  # refused inputs never reach the holdout

    # Over the size cap (5 MB for this program): refused at once, nothing queued.
    big = tmp_path / "big.onnx"
    big.write_bytes(b"\0" * (6 * 1024 * 1024))
    response = service.submit(token, big, group="u > 0.5")
    assert response.status_code == 413 and "MB" in response.json()["detail"]
    # A missing or doubled group is a 422 with the rule.
    assert service.submit(token, models["truth"]).status_code == 422
    assert service.submit(token, models["truth"], group="u > 0.5", group_model=models["u"]).status_code == 422


def test_rate_limits_and_the_global_budget(sqlite_url, program_dir, models, tmp_path):
    settings = service_settings(sqlite_url, submissions_per_hour=2, predictions_per_hour=2)
    with running_service(settings, program_dir) as service:
        token = service.team("alpha")
        assert service.submit(token, models["truth"], group="u > 0.5").status_code == 202
        assert service.submit(token, models["truth"], group="v > 0.8").status_code == 202
        third = service.submit(token, models["truth"], group="u > 0.7")
        assert third.status_code == 429 and "limit is 2" in third.json()["detail"] and third.headers["Retry-After"]
        # Another team has its own allowance.
        other = service.team("beta")
        assert service.submit(other, models["truth"], group="u > 0.7").status_code == 202
        rows = {"rows": [{"u": 0.5, "v": 0.5, "c": "red"}]}
        assert service.client.post("/api/v1/programs/synthetic/predict", json=rows, headers=service.auth(token)).status_code == 200
        assert service.client.post("/api/v1/programs/synthetic/predict", json=rows, headers=service.auth(token)).status_code == 200
        limited = service.client.post("/api/v1/programs/synthetic/predict", json=rows, headers=service.auth(token))
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
        too_many = {"rows": rows["rows"] * 2000}
        assert service.client.post("/api/v1/programs/synthetic/predict", json=too_many).status_code == 413

        # A program whose holdout answers one query: after it, the admin is told to refresh.
        small = make_program(tmp_path / "small", models, max_queries=1)
        register(service.app, small.root, slug="small")
        first = service.submit(token, models["truth"], group="u > 0.5", program="small")
        assert first.status_code == 202
        refused = service.submit(other, models["truth"], group="u > 0.5", program="small")
        assert refused.status_code == 409 and "refresh" in refused.json()["detail"]
        service.wait(token, first.json()["id"])
        budget = service.client.get("/api/v1/admin/programs/small/budget", headers=service.auth(service.admin)).json()
        assert budget["refresh_needed"] and budget["queries"] == 1 and "refreshed" in budget["message"]
        assert service.client.get("/api/v1/programs/small").json()["accepting_submissions"] is False
        audit = service.client.get("/api/v1/admin/audit/export?format=jsonl", headers=service.auth(service.admin))
        entries = [json.loads(line) for line in audit.text.splitlines()]
        refusals = [e for e in entries if e["action"] == "submit" and e["result"] == "refused"]
        assert len(refusals) == 2 and all(e["time"] and e["actor"] for e in refusals)


def test_audit_log_records_every_action_and_exports_safely(sqlite_service, models):
    import csv

    service = sqlite_service
    token = service.team("alpha")
    sub = service.submit(token, models["truth"], group="=1+1 == 2 or u > 0.5").json()
    service.wait(token, sub["id"])
    service.client.get("/api/v1/me", headers=service.auth("gwb_bad"))
    admin = service.auth(service.admin)
    entries = service.client.get("/api/v1/admin/audit", headers=admin).json()
    actions = {(e["action"], e["result"]) for e in entries}
    assert {("create-team", "ok"), ("submit", "queued"), ("decide", "rejected"), ("authenticate", "denied")} <= actions
    assert all(e["time"] and e["actor"] for e in entries)
    exported = service.client.get("/api/v1/admin/audit/export?format=csv", headers=admin)
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == len(entries)
    assert not any(value.startswith(("=", "+", "@")) for row in rows for value in row.values())
    assert service.client.get("/api/v1/admin/audit/export?format=jsonl", headers=service.auth(token)).status_code == 403
