"""Evaluation workers: claim queued submissions, run them through the engine, record decisions.

A job moves ``queued -> running -> decided``. A worker claims one with a lease
(``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several workers never take the
same row; on SQLite one worker runs inside the web process) and renews the lease while it
works. A job whose lease ran out (its worker died) is claimed again.

The decision itself is the engine's: the worker calls :meth:`groupwise.bounty.Program.submit`
with the uploaded bytes and a request id, and records the typed result it returns. The
engine does the contained evaluation, the checker and the append-only log, under its lock on
the program directory, always against the version that is current in the log. Around it the
worker holds a second lock on the directory (``.service.lock``) for the evaluate step, which
makes a crash recoverable: if the worker dies after the engine logged a decision but before
the database recorded it, the next worker finds that decision by the job's request id (which
names the job and the SHA-256 of its upload) and records it instead of submitting again. So
every submission is decided exactly once and nothing is lost. A decision that consulted the
holdout is recorded (and so shown) no earlier than the engine's ``reveal_at``: a fixed delay
after the holdout run started, so its timing tells nothing about the holdout.

The ``programs.version`` column is compare-and-set from the version the engine decided
against (``UPDATE programs SET version = after WHERE id = ? AND version = before``). When
the worker's view was stale, the engine has already re-read the log and re-checked the
submission against the newest version; the database row then catches up with the log,
which is the state of record, and the mismatch is written to the audit log.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from groupwise.service import crud
from groupwise.service import models as m
from groupwise.service.core.config import Settings
from groupwise.service.core.db import make_engine, make_sessionmaker

__all__ = ["Worker", "program_lock", "run_worker", "worker_isolation"]

log = logging.getLogger("groupwise.service.worker")


@contextmanager
def program_lock(directory: str | Path) -> Iterator[None]:
    """Exclusive lock on a program directory across processes and threads; the kernel
    drops it when its holder dies, so a killed worker never leaves it held."""
    with open(Path(directory) / ".service.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def job_request_id(job: int, created: datetime, model: bytes) -> str:
    """The id a job's request carries into the engine's log: the job, when it was queued and
    the SHA-256 of its model upload, so no other job (not even one of a recreated database
    with the same row id) can adopt its decision after a crash."""
    digest = hashlib.sha256(model).hexdigest()[:16]
    return f"job-{job}-{created.replace(microsecond=0).isoformat()}-{digest}"


def _safe_name(name: str, default: str) -> str:
    # The engine logs the file's name and quotes it in reasons; keep it but make it a plain name.
    base = Path(name or default).name.strip().replace("\x00", "")
    return base[:120] or default


def worker_isolation(settings: Settings) -> str:
    """The sandbox isolation a worker runs submissions with; refuses to run without it.

    Submissions run in Linux namespaces (bubblewrap) so that a model can read nothing but
    its inputs and reach no network. Without bubblewrap a worker does not start unless the
    setting ``extra={"allow_unisolated": true}`` says so explicitly.
    """
    from groupwise.bounty._sandbox import isolation_available

    allow = bool(settings.extra.get("allow_unisolated", False))
    why = isolation_available()
    if why is not None and not allow:
        raise RuntimeError(
            f"the evaluation worker will not run submissions without isolation: {why}. Fix: install bubblewrap "
            '(apt-get install bubblewrap), or set extra={"allow_unisolated": true} in the service settings '
            "where nothing else is reachable from the worker"
        )
    return "auto" if allow else "required"


class Worker:
    """One evaluation worker (a thread or a process).

    Parameters
    ----------
    settings : Settings
    engine : sqlalchemy Engine, optional
        Shared with the web app when the worker runs in-process.
    name : str, optional
        The lease owner written on claimed jobs (default: host, pid and a random suffix).
    """

    def __init__(self, settings: Settings, *, engine: Engine | None = None, name: str | None = None) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings.db_url)
        self.sessions: sessionmaker[Session] = make_sessionmaker(self.engine)
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.stop_event = threading.Event()
        self._wake = threading.Event()
        self.processed = 0
        self.isolation = worker_isolation(settings)

    # --- the loop ---------------------------------------------------------------------------

    def wake(self) -> None:
        """Tell an idle worker that a job was queued (in-process mode)."""
        self._wake.set()

    def stop(self) -> None:
        self.stop_event.set()
        self._wake.set()

    def run(self) -> None:
        """Claim and process jobs until :meth:`stop` is called."""
        log.info("worker %s started", self.name)
        last_prune = 0.0
        while not self.stop_event.is_set():
            try:
                job = self.claim()
            except Exception:  # noqa: BLE001 - a database hiccup must not end the worker
                log.exception("claiming a job failed")
                job = None
            if job is None:
                if time.monotonic() - last_prune > 3600:
                    last_prune = time.monotonic()
                    self._prune_counters()
                self._wake.wait(self.settings.poll_seconds)
                self._wake.clear()
                continue
            self.process(job)
        log.info("worker %s stopped", self.name)

    def run_until_idle(self, timeout: float = 300.0) -> int:
        """Process jobs until none is claimable (for tests and one-shot runs); returns how many."""
        done = 0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.claim()
            if job is None:
                return done
            self.process(job)
            done += 1
        return done

    # --- claiming ---------------------------------------------------------------------------

    def _claimable(self, stamp: datetime) -> Any:
        return or_(
            m.Submission.status == "queued",
            and_(m.Submission.status == "running", m.Submission.lease_expires_at < stamp),
        )

    def claim(self) -> int | None:
        """Take the oldest queued job, or one whose lease has expired; None if there is none."""
        with self.sessions() as session:
            stamp = crud.now()
            row = session.execute(
                select(m.Submission.id, m.Submission.status, m.Submission.lease_owner)
                .where(self._claimable(stamp))
                .order_by(m.Submission.id)
                .limit(1)
                # PostgreSQL: rows another worker is claiming are skipped, not waited for.
                # SQLite ignores it; its single worker and the guarded UPDATE suffice.
                .with_for_update(skip_locked=True, of=m.Submission)
            ).first()
            if row is None:
                session.rollback()
                return None
            job, status, previous = row
            claimed = session.execute(
                update(m.Submission)
                .where(m.Submission.id == job, self._claimable(stamp))
                .values(
                    status="running",
                    lease_owner=self.name,
                    lease_expires_at=stamp + timedelta(seconds=self.settings.lease_seconds),
                    claimed_at=stamp,
                    attempts=m.Submission.attempts + 1,
                )
            ).rowcount
            if claimed != 1:
                session.rollback()
                return None
            if status == "running":
                crud.audit(session, actor=f"worker {self.name}", action="reclaim", target=f"submission {job}", result="ok",
                           detail=f"the lease of {previous} had expired")
            session.commit()
            return int(job)

    @contextmanager
    def _heartbeat(self, job: int) -> Iterator[None]:
        """Renew the lease while the job is being evaluated."""
        done = threading.Event()
        period = max(0.2, self.settings.lease_seconds / 3)

        def beat() -> None:
            while not done.wait(period):
                try:
                    with self.sessions() as session:
                        session.execute(
                            update(m.Submission)
                            .where(m.Submission.id == job, m.Submission.lease_owner == self.name, m.Submission.status == "running")
                            .values(lease_expires_at=crud.now() + timedelta(seconds=self.settings.lease_seconds))
                        )
                        session.commit()
                except Exception:  # noqa: BLE001 - a missed beat only risks a reclaim, which is safe
                    log.exception("lease renewal failed")

        thread = threading.Thread(target=beat, name=f"lease-{job}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    # --- processing -------------------------------------------------------------------------

    def _pause(self, point: str) -> None:
        spec = self.settings.debug_pause
        if spec and spec.split(":", 1)[0] == point:
            time.sleep(float(spec.split(":", 1)[1]))

    def process(self, job: int) -> None:
        """Evaluate one claimed job and record its decision (or hand it back on a service error)."""
        try:
            with self._heartbeat(job):
                self._process(job)
            self.processed += 1
        except Exception as exc:  # noqa: BLE001 - the job is retried, up to max_attempts
            log.exception("job %s failed in the service", job)
            with self.sessions() as session:
                session.execute(
                    update(m.Submission)
                    .where(m.Submission.id == job, m.Submission.lease_owner == self.name, m.Submission.status == "running")
                    .values(status="queued", lease_owner=None, lease_expires_at=None)
                )
                crud.audit(session, actor=f"worker {self.name}", action="evaluate", target=f"submission {job}", result="error",
                           detail=f"{type(exc).__name__}: {exc}"[:500])
                session.commit()

    def _process(self, job: int) -> None:
        from groupwise.bounty import Program

        with self.sessions() as session:
            sub = session.get(m.Submission, job)
            assert sub is not None
            program_row = sub.program
            directory, team = program_row.directory, sub.team.name
            facts = {
                "model": sub.model_filename, "group": sub.group_expr, "group_file": sub.group_filename,
                "created": sub.created_at, "attempts": sub.attempts, "program_id": program_row.id,
            }
            files = {u.role: (u.filename, u.data) for u in session.scalars(select(m.Upload).where(m.Upload.submission_id == job))}
            claimed_ids = set(session.scalars(select(m.Submission.engine_id).where(
                m.Submission.program_id == program_row.id, m.Submission.engine_id.is_not(None))))
        request_id = job_request_id(job, facts["created"], files["model"][1])

        with program_lock(directory):
            program = Program.load(directory)
            program.isolation = self.isolation
            result = self._orphan_result(program, request_id, files["model"][1], claimed_ids)
            adopted = result is not None
            if result is None and facts["attempts"] > self.settings.max_attempts:
                self._give_up(job, facts)
                return
            if result is None:
                self._pause("before-engine")
                group_file = files.get("group")
                result = program.submit(
                    team=team,
                    model=files["model"][1],
                    model_name=_safe_name(files["model"][0], "model.onnx"),
                    group=facts["group"],
                    group_model=group_file[1] if group_file else None,
                    group_model_name=_safe_name(group_file[0], "group.onnx") if group_file else None,
                    request_id=request_id,
                    decision_seconds=self.settings.extra.get("decision_seconds", "auto"),
                    wait=False,
                )
                self._pause("after-engine")
            status = program.status()
            version = program.version
        # The decision is shown no earlier than the engine says, whatever happened on the
        # holdout; the program's lock is free meanwhile, and the lease is still renewed.
        delay = result.reveal_at - time.time()
        if delay > 0 and not adopted:
            time.sleep(delay)
        self._record(job, result, status, version, adopted=adopted)

    @staticmethod
    def _orphan_result(program: Any, request_id: str, model: bytes, claimed: set[str]) -> Any:
        """The engine's result for this job if a previous attempt logged it and then died.

        Matched by the job's request id (which names the job and the upload's hash), or for
        a log written before request ids, by the upload's content hash among unclaimed records.
        """
        found = [r for r in program.find_submission(request_id=request_id) if r.id not in claimed]
        if found:
            return found[-1]
        digest = hashlib.sha256(model).hexdigest()
        legacy = [r for r in program.find_submission(model_sha256=digest) if r.id not in claimed and r.request_id is None]
        return legacy[-1] if legacy else None

    def _record(self, job: int, result: Any, status: dict[str, Any], version: int, *, adopted: bool) -> None:
        with self.sessions() as session:
            sub = session.get(m.Submission, job, with_for_update=True)
            assert sub is not None
            if sub.status == "decided" or sub.lease_owner != self.name:
                # Lost the lease while working: the new holder will find this decision in
                # the log and record it; writing here would race with it.
                session.rollback()
                log.warning("job %s: lease lost before recording; left to its new owner", job)
                return
            before, after = int(result.version_before), int(result.version_after)
            sub.status = "decided"
            sub.decided_at = crud.now()
            sub.decision = str(result.decision)
            sub.reason = str(result.reason)
            sub.reason_kind = str(result.reason_kind)
            sub.engine_id = str(result.id)
            sub.version_before, sub.version_after = before, after
            sub.repairs = int(result.repairs)
            for key in ("test_loss_before", "test_loss_after", "group_test_loss_before", "group_test_loss_after"):
                setattr(sub, key, getattr(result, key))
            sub.lease_owner, sub.lease_expires_at = None, None
            swapped = session.execute(
                update(m.ProgramRow)
                .where(m.ProgramRow.id == sub.program_id, m.ProgramRow.version == before)
                .values(version=after)
            ).rowcount
            if swapped != 1:
                current = session.scalar(select(m.ProgramRow.version).where(m.ProgramRow.id == sub.program_id))
                session.execute(update(m.ProgramRow).where(m.ProgramRow.id == sub.program_id).values(version=version))
                crud.audit(session, actor=f"worker {self.name}", action="version-resync", target=sub.program.slug, result="ok",
                           detail=f"database had version {current}, the decision was made against {before}; the log is at {version}")
            row = session.get(m.ProgramRow, sub.program_id)
            assert row is not None
            crud.mirror(row, status)
            crud.audit(
                session, actor=f"worker {self.name}", team_id=sub.team_id, action="decide", target=f"submission {job}",
                result=sub.decision,
                detail=f"{sub.engine_id} team {sub.team.name}: version {before} -> {after}"
                + (f"; {sub.reason_kind}: {sub.reason[:300]}" if sub.reason_kind else "")
                + ("; recovered from the engine log after a crash" if adopted else ""),
            )
            session.commit()

    def _give_up(self, job: int, facts: dict[str, Any]) -> None:
        with self.sessions() as session:
            sub = session.get(m.Submission, job)
            assert sub is not None
            sub.status, sub.decision, sub.decided_at = "decided", "rejected", crud.now()
            sub.reason_kind = "service"
            sub.reason = (
                f"the evaluation was interrupted {facts['attempts'] - 1} times (the worker evaluating it stopped); "
                "nothing was checked on the holdout. Fix: submit again, and tell the program's admin"
            )
            sub.lease_owner, sub.lease_expires_at = None, None
            crud.audit(session, actor=f"worker {self.name}", team_id=sub.team_id, action="decide", target=f"submission {job}",
                       result="rejected", detail="given up after repeated interrupted evaluations")
            session.commit()

    def _prune_counters(self) -> None:
        cutoff = int(time.time()) - 3 * 86400
        with self.sessions() as session:
            session.query(m.RateCounter).filter(m.RateCounter.window_start < cutoff).delete()
            session.commit()


def run_worker(db_url: str, *, name: str | None = None, settings: Settings | None = None) -> None:
    """Run one evaluation worker in this process until interrupted (``groupwise bounty worker``).

    On PostgreSQL, run as many as the machine has cores to spare; they share the queue.
    """
    import signal

    settings = (settings or Settings()).replace(db_url=db_url)
    worker = Worker(settings, name=name)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    try:
        worker.run()
    except KeyboardInterrupt:
        worker.stop()


def main() -> None:
    """``python -m groupwise.service.worker`` as started by ``serve`` (settings in the environment)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = Settings.from_env()
    run_worker(settings.db_url, settings=settings, name=os.environ.get("GROUPWISE_WORKER_NAME"))


if __name__ == "__main__":
    main()
