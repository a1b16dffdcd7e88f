"""Workers as separate processes: a burst of concurrent submissions with two workers on
PostgreSQL, and a worker killed with SIGKILL in the middle of an evaluation."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from service_helpers import (  # noqa: F401 - fixtures
    base_program,
    database,
    models,
    program_dir,
    register,
    running_service,
    service_settings,
)
from sqlalchemy import select

from groupwise.bounty import Program
from groupwise.service.core.config import ENV_VAR
from groupwise.service.models import AuditEntry, ProgramRow, Submission


def start_worker(settings, name: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, ENV_VAR: settings.to_json(), "GROUPWISE_WORKER_NAME": name}
    with open(log, "ab") as handle:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "groupwise.service.worker"], env=env, stdout=handle, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until(condition, timeout: float, what: str, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def check_consistent(app, slug: str) -> tuple[Program, list[dict]]:
    """Database and engine log agree: each submission decided once, a linear version chain."""
    with app.state.sessions() as session:
        row = session.scalar(select(ProgramRow).where(ProgramRow.slug == slug))
        subs = session.scalars(select(Submission).where(Submission.program_id == row.id)).all()
        program = Program.load(row.directory)
        records = [r for r in program.records if r["type"] == "submission"]
        assert all(s.status == "decided" for s in subs)
        engine_ids = [s.engine_id for s in subs]
        assert None not in engine_ids and len(set(engine_ids)) == len(subs) == len(records), "decided exactly once"
        by_id = {r["id"]: r for r in records}
        for s in subs:
            record = by_id[s.engine_id]
            assert (record["team"], record["decision"], record["version_before"], record["version_after"]) == (
                s.team.name, s.decision, s.version_before, s.version_after)
            assert record["group"].get("expr") == s.group_expr
        version = 0
        for record in records:  # the log's order is the order of decisions
            assert record["version_before"] == version, "the version chain is linear"
            version = record["version_after"]
        assert version == program.version == row.version, "no lost update"
        assert len(program.pdl.nodes) == sum(r["version_after"] - r["version_before"] for r in records)
        assert (row.queries, row.acceptances) == (program.state.queries, program.state.acceptances)
        assert program.replay() == []
    return program, records


# Per program, in any order of decision: the first of the two "u > 0.5" repairs is
# accepted, and the last group cannot be improved on (every model says "no" there), so
# each program gets accepted and rejected submissions. Eight submissions in one burst.
GROUPS = [("u > 0.5", "truth"), ("v > 0.8", "truth"), ("u > 0.5", "u"), ("u < 0.3 and v < 0.5", "truth")]


def test_two_workers_and_a_burst_of_concurrent_submissions(tmp_path, base_program, models):
    with database("postgresql", tmp_path) as url:
        settings = service_settings(url, inprocess_worker=False, lease_seconds=20.0)
        second = tmp_path / "second"
        shutil.copytree(base_program, second)
        program_dir = tmp_path / "first"
        shutil.copytree(base_program, program_dir)
        with running_service(settings, program_dir) as service:
            register(service.app, second, slug="second")
            tokens = [service.team(f"team-{i}") for i in range(4)]
            workers = [start_worker(settings, f"w{i}", tmp_path / f"w{i}.log") for i in range(2)]
            try:
                # Both workers polling before the burst, so that the queue is shared from the start.
                wait_until(lambda: all("started" in (tmp_path / f"w{i}.log").read_text() for i in range(2)), 60, "both workers to start")
                jobs = [(tokens[i % 4], slug, group, model) for i, (group, model) in enumerate(GROUPS) for slug in ("synthetic", "second")]

                def send(job):
                    token, slug, group, model = job
                    started = time.perf_counter()
                    response = service.submit(token, models[model], group=group, program=slug)
                    return response, time.perf_counter() - started

                with ThreadPoolExecutor(8) as pool:
                    answers = list(pool.map(send, jobs))
                assert all(r.status_code == 202 for r, _ in answers), [r.text for r, _ in answers if r.status_code != 202]
                ids = [r.json()["id"] for r, _ in answers]
                assert len(set(ids)) == len(jobs)

                def all_decided():
                    with service.app.state.sessions() as session:
                        return session.scalar(select(Submission.id).where(Submission.status != "decided").limit(1)) is None

                wait_until(all_decided, 240, "every submission to be decided", step=0.5)
            finally:
                for worker in workers:
                    stop(worker)
            for slug in ("synthetic", "second"):
                program, records = check_consistent(service.app, slug)
                assert 1 <= sum(r["decision"] == "accepted" for r in records) < len(records)
            with service.app.state.sessions() as session:
                deciders = Counter(session.scalars(select(AuditEntry.actor).where(AuditEntry.action == "decide")))
            assert set(deciders) == {"worker w0", "worker w1"}, deciders  # both workers shared the queue
            assert sum(deciders.values()) == len(jobs)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
@pytest.mark.parametrize("point", ["before-engine", "after-engine"])
def test_a_worker_killed_mid_evaluation_is_replaced_and_the_job_decided_once(tmp_path, program_dir, models, kind, point):
    with database(kind, tmp_path) as url:
        settings = service_settings(url, inprocess_worker=False, lease_seconds=2.0)
        with running_service(settings, program_dir) as service:
            token = service.team("alpha")
            first = service.submit(token, models["truth"], group="u > 0.5").json()["id"]
            doomed = start_worker(settings.replace(debug_pause=f"{point}:60"), "doomed", tmp_path / "doomed.log")
            try:
                def in_flight():
                    with service.app.state.sessions() as session:
                        sub = session.get(Submission, first)
                        if sub.status != "running" or sub.lease_owner != "doomed":
                            return False
                    if point == "after-engine":  # the engine has logged its decision, the database not yet
                        return any(r["type"] == "submission" for r in Program.load(program_dir).records)
                    return True

                wait_until(in_flight, 60, "the doomed worker to be inside the evaluation")
                os.kill(doomed.pid, signal.SIGKILL)
                doomed.wait()
            finally:
                stop(doomed)
            with service.app.state.sessions() as session:
                assert session.get(Submission, first).status == "running"  # stranded with an expiring lease
            rescuer = start_worker(settings, "rescuer", tmp_path / "rescuer.log")
            try:
                decided = service.wait(token, first, timeout=90)
                # The queue goes on after the rescue.
                second = service.submit(token, models["v"], group="v > 0.8").json()["id"]
                assert service.wait(token, second, timeout=90)["status"] == "decided"
            finally:
                stop(rescuer)
            assert decided["decision"] == "accepted"
            check_consistent(service.app, "synthetic")
            with service.app.state.sessions() as session:
                sub = session.get(Submission, first)
                assert sub.attempts == 2
                reclaims = session.scalars(select(AuditEntry).where(AuditEntry.action == "reclaim")).all()
                assert [e.target for e in reclaims] == [f"submission {first}"] and "doomed" in reclaims[0].detail
                decide = session.scalar(select(AuditEntry).where(AuditEntry.action == "decide", AuditEntry.target == f"submission {first}"))
                assert decide.actor == "worker rescuer"
                assert ("recovered from the engine log" in decide.detail) == (point == "after-engine")
