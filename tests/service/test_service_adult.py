"""Smoke test of the README's walk-through: `groupwise serve` with the Adult example, a new
team joins, follows the program page's example (export a scikit-learn model to ONNX) and
submits with the command-line client. Also checks the migrations against the models."""

from __future__ import annotations

import ast
import gzip
import html
import io
import os
import re
import subprocess
import sys
import time
import urllib.request

import httpx
import pytest
from rich.console import Console
from service_helpers import ADMIN_TOKEN, database, free_port

from groupwise.service._client import remote_status, remote_submit


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_migrations_build_exactly_the_models_schema(tmp_path, kind):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from groupwise.service.core.db import current_revision, head_revision, make_engine, upgrade
    from groupwise.service.models import Base

    with database(kind, tmp_path) as url:
        engine = make_engine(url)
        try:
            assert current_revision(engine) is None
            upgrade(engine)
            upgrade(engine)  # a second upgrade is a no-op
            assert current_revision(engine) == head_revision()
            with engine.connect() as connection:
                diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)
            assert diff == []
        finally:
            engine.dispose()


def test_serve_with_the_adult_example_and_a_new_team_from_the_cli(tmp_path):
    from groupwise.bounty._cli import init_cmd

    program = tmp_path / "adult-bounty"
    init_cmd(program, example="adult", base_model="train:tree", console=Console(file=io.StringIO()))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    code = (
        "from groupwise.service import serve; "
        f"serve({f'sqlite:///{tmp_path}/bounty.db'!r}, port={port}, programs=[{str(program)!r}], log_level='warning')"
    )
    env = {**os.environ, "GROUPWISE_ADMIN_TOKEN": ADMIN_TOKEN}
    with open(tmp_path / "serve.log", "wb") as log:
        server = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/api/v1/health").json()["in_process_worker"]:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, (tmp_path / "serve.log").read_text()
            time.sleep(0.2)
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        token = httpx.post(f"{url}/api/v1/admin/teams", json={"name": "newcomers"}, headers=admin).json()["token"]["token"]

        # The program page's steps, as a new team would copy them.
        page = httpx.get(f"{url}/programs/adult-bounty").text
        assert "income" in page and "age" in page
        download = html.unescape(re.search(r'<pre id="example-download">(.*?)</pre>', page, re.S).group(1))
        for line in download.splitlines():
            target, source = re.match(r"curl -o (\S+) (\S+)", line).groups()
            urllib.request.urlretrieve(source, tmp_path / target)  # noqa: S310 - our own loopback server
        assert gzip.open(tmp_path / "train.csv.gz").readline().startswith(b"age,")
        example = html.unescape(re.search(r'<pre id="example-python">(.*?)</pre>', page, re.S).group(1))
        subprocess.run([sys.executable, "-c", example], cwd=tmp_path, check=True, timeout=300)
        group = ast.literal_eval(re.search(r"^group = (.*?)   #", example, re.M).group(1))

        console_out = io.StringIO()
        decided = remote_submit(url, token=token, model=tmp_path / "h.onnx", group=group, wait=True, timeout=240,
                                console=Console(file=console_out, width=200))
        assert decided["status"] == "decided" and decided["decision"] in ("accepted", "rejected")
        assert decided["reason_kind"] in ("", "check"), decided["reason"]  # the example's model is a valid submission
        status = remote_status(url, token=token, console=Console(file=io.StringIO()))
        assert status["programs"][0]["slug"] == "adult-bounty" and status["programs"][0]["submissions"] == 1
        assert [s["id"] for s in status["submissions"]] == [decided["id"]]
        for path in ("/programs/adult-bounty/leaderboard", "/programs/adult-bounty/history", "/programs/adult-bounty/heatmap"):
            assert httpx.get(f"{url}{path}").status_code == 200
        usage = httpx.get(f"{url}/api/v1/programs/adult-bounty/feature-usage").json()
        assert usage["teams"] == ["newcomers"] and sum(usage["counts"][0]) == 1
    finally:
        server.terminate()
        server.wait(timeout=60)
    assert server.returncode in (0, -15), (tmp_path / "serve.log").read_text()
