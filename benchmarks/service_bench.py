"""Benchmark of the bounty web service on loopback (``python benchmarks/service_bench.py``).

Starts ``groupwise serve`` (SQLite, one process, in-process worker) with the Adult example,
adds teams and accepted submissions, then measures

* requests per second of the program page and the leaderboard (HTML and JSON), with
  ``wrk`` when it is installed (``apt-get install wrk``), else a small asyncio load generator;
* latency of ``POST /programs/{slug}/submissions`` (enqueue) while the worker is busy
  evaluating earlier submissions: p50, p95, p99 and max.

Targets (DESIGN.md / the service issue): at least 500 requests/s for the pages on a
2-core machine, enqueue p99 under 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ADMIN = "gwb_bench-admin-token-0123456789abcdefghijklmnopq"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wrk(url: str, seconds: int, connections: int) -> float:
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", url], capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} failed responses\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


async def _python_load(host: str, port: int, path: str, seconds: float, connections: int) -> float:
    """Keep-alive GET loop over raw sockets: cheap enough not to starve the server of CPU."""
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    done = 0
    stop = time.monotonic() + seconds

    async def client() -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection(host, port)
        while time.monotonic() < stop:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))
            await reader.readexactly(length)
            if status != 200:
                raise RuntimeError(f"{path}: status {status}")
            done += 1
        writer.close()

    started = time.monotonic()
    await asyncio.gather(*(client() for _ in range(connections)))
    return done / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="duration of each throughput run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--enqueues", type=int, default=200, help="submissions timed while the worker evaluates")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()

    import httpx
    from rich.console import Console

    from groupwise.bounty._cli import init_cmd

    work = Path(tempfile.mkdtemp(prefix="groupwise-service-bench-"))
    program = work / "adult-bounty"
    init_cmd(program, example="adult", base_model="train:tree", console=Console(file=io.StringIO()))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    code = (
        "from groupwise.service import serve; "
        f"serve({f'sqlite:///{work}/bounty.db'!r}, port={port}, programs=[{str(program)!r}], log_level='warning', "
        "submissions_per_hour=100000, submissions_per_day=100000)"
    )
    server = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "GROUPWISE_ADMIN_TOKEN": ADMIN},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    figures: dict[str, object] = {"cpus": os.cpu_count(), "load_generator": "wrk" if shutil.which("wrk") else "python-asyncio"}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/api/v1/health").raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        client = httpx.Client(base_url=url, timeout=60)
        admin = {"Authorization": f"Bearer {ADMIN}"}
        tokens = [client.post("/api/v1/admin/teams", json={"name": f"team-{i}"}, headers=admin).json()["token"]["token"] for i in range(5)]

        # A model file for the submissions: the program page's own example.
        page = client.get("/programs/adult-bounty").text
        import html as html_module

        for line in html_module.unescape(re.search(r'<pre id="example-download">(.*?)</pre>', page, re.S).group(1)).splitlines():
            target, source = re.match(r"curl -o (\S+) (\S+)", line).groups()
            (work / target).write_bytes(client.get(source.replace(url, "")).content)
        example = html_module.unescape(re.search(r'<pre id="example-python">(.*?)</pre>', page, re.S).group(1))
        subprocess.run([sys.executable, "-c", example], cwd=work, check=True)
        model = (work / "h.onnx").read_bytes()
        groups = ["age >= 60", "age < 25", "hours_per_week > 50", "education_num >= 13", 'sex == "Female"',
                  'marital_status == "Never-married"', "capital_gain > 0", "age >= 45 and hours_per_week >= 45"]

        def submit(token: str, group: str) -> tuple[int, float]:
            started = time.perf_counter()
            response = client.post("/api/v1/programs/adult-bounty/submissions", files={"model": ("h.onnx", model)}, data={"group": group},
                                   headers={"Authorization": f"Bearer {token}"})
            response.raise_for_status()
            return response.json()["id"], time.perf_counter() - started

        seeded = [submit(tokens[i % 5], g)[0] for i, g in enumerate(groups)]
        while client.get(f"/api/v1/submissions/{seeded[-1]}", headers={"Authorization": f"Bearer {tokens[(len(groups) - 1) % 5]}"}).json()["status"] != "decided":
            time.sleep(0.5)
        program_state = client.get("/api/v1/programs/adult-bounty").json()
        figures["program"] = {"version": program_state["version"], "submissions": program_state["submissions"], "accepted": program_state["accepted"]}

        pages = {"program page": "/programs/adult-bounty", "leaderboard page": "/programs/adult-bounty/leaderboard",
                 "leaderboard JSON": "/api/v1/programs/adult-bounty/leaderboard"}
        throughput = {}
        for name, path in pages.items():
            if shutil.which("wrk"):
                rate = _wrk(url + path, args.seconds, args.connections)
            else:
                rate = asyncio.run(_python_load("127.0.0.1", port, path, args.seconds, args.connections))
            throughput[name] = round(rate, 1)
            print(f"{name:18s} {rate:8.1f} requests/s", flush=True)
        figures["requests_per_second"] = throughput

        # Enqueue latency while the worker evaluates: keep the queue non-empty throughout.
        latencies = []
        busy_checks = 0
        for i in range(args.enqueues):
            _, seconds = submit(tokens[i % 5], groups[i % len(groups)])
            latencies.append(seconds * 1000)
            if i % 20 == 0:
                budget = client.get("/api/v1/admin/programs/adult-bounty/budget", headers=admin).json()
                busy_checks += budget["running"] + budget["queued"] > 0
            time.sleep(0.02)
        latencies.sort()
        q = statistics.quantiles(latencies, n=100)
        figures["enqueue_ms"] = {"n": len(latencies), "p50": round(q[49], 2), "p95": round(q[94], 2), "p99": round(q[98], 2),
                                 "max": round(latencies[-1], 2), "worker_busy_in_checks": f"{busy_checks}/{(args.enqueues + 19) // 20}"}
        print(f"enqueue latency    p50 {q[49]:.1f} ms, p95 {q[94]:.1f} ms, p99 {q[98]:.1f} ms, max {latencies[-1]:.1f} ms "
              f"(worker busy in {busy_checks} of {(args.enqueues + 19) // 20} checks)", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(figures, indent=2))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
