"""The JSON API on SQLite and on PostgreSQL: accounts, submissions, public figures."""

from __future__ import annotations

from service_helpers import (  # noqa: F401 - fixtures
    ADMIN_TOKEN,
    base_program,
    db_url,
    models,
    program_dir,
    running_service,
    service,
    service_settings,
    sqlite_url,
)


def test_a_team_submits_and_learns_accept_or_reject(service, models):
    token = service.team("alpha")
    good = service.submit(token, models["truth"], group="u > 0.5")
    assert good.status_code == 202, good.text
    bad = service.submit(token, models["truth"], group="u < 0.3 and v < 0.5")
    assert bad.status_code == 202
    first = service.wait(token, good.json()["id"])
    second = service.wait(token, bad.json()["id"])
    assert first["decision"] == "accepted", first
    assert first["version_before"] == 0 and first["version_after"] >= 1
    assert first["test_loss_after"] < first["test_loss_before"]
    assert second["decision"] == "rejected" and second["reason_kind"] == "check"
    program = service.client.get("/api/v1/programs/synthetic").json()
    assert program["version"] == first["version_after"]
    assert program["accepted"] == 1 and program["submissions"] == 2
    board = service.client.get("/api/v1/programs/synthetic/leaderboard").json()
    assert board[0]["team"] == "alpha" and board[0]["accepted"] == 1 and board[0]["improvement"] > 0
    versions = service.client.get("/api/v1/programs/synthetic/versions").json()
    assert [v["version"] for v in versions] == list(range(program["version"] + 1))
    assert versions[1]["team"] == "alpha"
    groups = service.client.get("/api/v1/programs/synthetic/groups").json()
    assert groups[0]["group"] == "u > 0.5" and groups[0]["loss_current"] < groups[0]["loss_base"]
    usage = service.client.get("/api/v1/programs/synthetic/feature-usage").json()
    assert usage["teams"] == ["alpha"] and usage["features"] == ["u", "v", "c"]
    assert usage["counts"] == [[2, 1, 0]]
    svg = service.client.get("/api/v1/programs/synthetic/trajectory.svg")
    assert svg.status_code == 200 and svg.text.startswith("<svg")
    # The bounty's main figure: each group's error at every version.
    paths = service.client.get("/api/v1/programs/synthetic/group-trajectories").json()
    assert paths["versions"] == list(range(program["version"] + 1))
    assert paths["groups"]["u > 0.5"][-1] < paths["groups"]["u > 0.5"][0]
    png = service.client.get("/api/v1/programs/synthetic/group-trajectories.png")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    assert 'id="group-trajectories"' in service.client.get("/programs/synthetic/history").text


def test_the_default_decision_delay_holds_every_answer_back(sqlite_url, program_dir, models):
    """With the service's default ("auto") delay no decision shows before three seconds.

    The delay is fixed from the public run before the holdout runs, so the time to an
    answer tells a submitter nothing about the holdout. The other tests turn it off.
    """
    import time

    with running_service(service_settings(sqlite_url, extra={}), program_dir) as svc:
        token = svc.team("alpha")
        for group in ("u > 0.5", "u < 0.3 and v < 0.5"):  # one accepted, one rejected
            sent = time.monotonic()
            sub = svc.submit(token, models["truth"], group=group)
            assert sub.status_code == 202, sub.text
            decided = svc.wait(token, sub.json()["id"])
            assert time.monotonic() - sent >= 3.0, decided
            assert decided["decision"] in ("accepted", "rejected")


def test_bundle_and_predictions_of_the_current_model(service, models):
    import io
    import zipfile

    token = service.team("alpha")
    sub = service.submit(token, models["truth"], group="u > 0.5").json()
    decided = service.wait(token, sub["id"])
    bundle = service.client.get("/api/v1/programs/synthetic/bundle")
    assert bundle.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(bundle.content)).namelist()
    assert "bundle/bundle.json" in names
    rows = [{"u": 0.9, "v": 0.1, "c": "red"}, {"u": 0.1, "v": 0.1, "c": "blue"}]
    answer = service.client.post("/api/v1/programs/synthetic/predict", json={"rows": rows})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"version": decided["version_after"], "target": "y", "predictions": ["yes", "no"]}
    bad = service.client.post("/api/v1/programs/synthetic/predict", json={"rows": [{"u": "x", "v": 1, "c": "red"}]})
    assert bad.status_code == 422 and "u" in bad.json()["detail"]
    old = service.client.get("/api/v1/programs/synthetic/bundle?version=0")
    assert old.status_code == 200
    assert service.client.get("/api/v1/programs/synthetic/bundle?version=99").status_code == 404


def test_the_admin_creates_programs_through_the_api(service, models, tmp_path):
    from service_helpers import synthetic

    admin = service.auth(service.admin)
    data = tmp_path / "data.csv"
    synthetic(3000, seed=1).to_csv(data, index=False)
    body = {"slug": "fresh", "directory": str(tmp_path / "fresh"), "description": "Made through the API.",
            "init": {"data_path": str(data), "target": "y", "epsilon": 0.05, "base_model": "train:tree", "max_queries": 50}}
    created = service.client.post("/api/v1/admin/programs", json=body, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["features"][0] == {"name": "u", "kind": "numeric", "categories": []}
    assert (tmp_path / "fresh" / "program.json").is_file()
    assert service.client.get("/api/v1/admin/programs/fresh/budget", headers=admin).json()["max_queries"] == 50
    again = service.client.post("/api/v1/admin/programs", json=body, headers=admin)
    assert again.status_code == 409
    missing = service.client.post("/api/v1/admin/programs", json={"slug": "ghost", "directory": str(tmp_path / "nowhere")}, headers=admin)
    assert missing.status_code == 422 and "not a bounty program" in missing.json()["detail"]
    closed = service.client.patch("/api/v1/admin/programs/fresh", json={"is_open": False}, headers=admin)
    assert closed.json()["accepting_submissions"] is False
    token = service.team("alpha")
    refused = service.submit(token, models["truth"], group="u > 0.5", program="fresh")
    assert refused.status_code == 409 and "closed" in refused.json()["detail"]
    slugs = [p["slug"] for p in service.client.get("/api/v1/programs").json()]
    assert slugs == ["synthetic", "fresh"]
