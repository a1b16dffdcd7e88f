"""Property-based tests from the OpenAPI schema (schemathesis): no input makes the API fail
with a server error (5xx). Each operation gets generated valid and invalid requests, as
a team for team routes and as the admin for admin routes."""

from __future__ import annotations

import pytest
from service_helpers import ADMIN_TOKEN, base_program, models, program_dir, register, service_settings, sqlite_url  # noqa: F401

# Program creation trains models and writes directories; it has its own tests.
SKIPPED = {("POST", "/api/v1/admin/programs")}
EXAMPLES = 30


def test_no_generated_request_causes_a_server_error(sqlite_url, program_dir, models):
    import schemathesis
    from fastapi.testclient import TestClient

    from groupwise.service.app import create_app

    # Generous throttles so that generated requests reach the code behind them.
    app = create_app(service_settings(sqlite_url, inprocess_worker=False, submissions_per_hour=10**6, predictions_per_hour=10**6,
                                      bundle_downloads_per_hour=10**6, auth_failures_per_minute=10**6))
    register(app, program_dir)
    with TestClient(app) as client:
        team = client.post("/api/v1/admin/teams", json={"name": "fuzz"}, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json()["token"]["token"]
        # A second team for the admin routes that change a team (disabling the fuzzer's own would end the run).
        client.post("/api/v1/admin/teams", json={"name": "target"}, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        client.post(
            "/api/v1/programs/synthetic/submissions", files={"model": ("h.onnx", models["truth"].read_bytes())}, data={"group": "u > 0.5"},
            headers={"Authorization": f"Bearer {team}"},
        )
        # The bundle of version 0 is exported once here, not inside a generated request.
        assert client.get("/api/v1/programs/synthetic/bundle").status_code == 200
        schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
        failures: list[str] = []
        tested = 0
        for result in schema.get_all_operations():
            operation = result.ok()
            if (operation.method.upper(), operation.path) in SKIPPED:
                continue
            fuzz(operation, ADMIN_TOKEN if operation.path.startswith("/api/v1/admin") else team, failures)
            tested += 1
    assert tested >= 20
    assert not failures, "\n".join(sorted(set(failures))[:20])


def fuzz(operation, token: str, failures: list[str]) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(), real=st.booleans(), authorized=st.integers(0, 9))
    def check(case, real, authorized):
        # Mostly the right token and, half the time, identifiers that exist, so that the
        # generated bodies and queries reach the code behind authentication and lookup.
        headers = dict(case.headers or {})
        if authorized:
            headers["Authorization"] = f"Bearer {token}"
        case.headers = headers
        if real and case.path_parameters:
            known = {"slug": "synthetic", "submission_id": 1, "team_id": 3, "token_id": 3, "split": "train"}
            case.path_parameters = {k: known.get(k, v) for k, v in case.path_parameters.items()}
        if case.path_parameters and case.path_parameters.get("token_id") in (1, 2):
            case.path_parameters = {**case.path_parameters, "token_id": 3}  # keep the fuzzer's own tokens alive
        if case.path_parameters and case.path_parameters.get("team_id") == 2:
            case.path_parameters = {**case.path_parameters, "team_id": 3}  # and its team enabled
        # Predictions and bundle exports start a process each; on a busy machine that takes
        # longer than the default 10 s read timeout, which would say nothing about the API.
        response = case.call(timeout=600)
        if response.status_code >= 500:
            failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}")

    check()

