"""Run ``groupwise`` command lines as separate processes forked from one warm interpreter.

``python -m groupwise.cli ARGS`` spends one to three seconds importing pandas, SciPy and
matplotlib before it does anything. The README test runs about fifty command lines, so it
starts one server process that imports those libraries once (nothing of groupwise runs in
it); each command is then a child forked from it that changes to the command's folder
and environment, runs ``groupwise.cli`` as ``__main__`` (as ``python -m`` does), runs the
exit handlers and exits with the command's status. Output goes to files, which the
caller reads. Each command is still its own process: nothing it does reaches the next.

    with ForkedCli(env) as cli:
        done = cli.run(["audit", "hyps.csv", ...], cwd=folder)   # .returncode, .stdout, .stderr
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

#: Imported once by the server: what most commands import first.
PRELOAD = ("pandas", "scipy.stats", "matplotlib", "matplotlib.pyplot", "rich.console", "typer", "groupwise.cli",
           "groupwise.audit._audit")
#: A command that runs longer than this is killed (SIGALRM) and fails.
TIMEOUT_SECONDS = 600


def _child(request: dict) -> None:  # pragma: no cover - runs in the forked child
    import atexit
    import runpy
    import signal

    signal.alarm(TIMEOUT_SECONDS)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(handle, fd)
        os.close(handle)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - the process's own descriptors
    sys.stdout = open(1, "w", closefd=False, encoding="utf-8", errors="backslashreplace")  # noqa: SIM115
    sys.stderr = open(2, "w", closefd=False, encoding="utf-8", errors="backslashreplace")  # noqa: SIM115
    sys.argv = ["groupwise", *request["argv"]]
    sys.path[0] = request["cwd"]  # python -m puts the current folder first
    code = 0
    try:
        runpy.run_module("groupwise.cli", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code
        else:
            sys.stderr.write(f"{exc.code}\n")
            code = 1
    except BaseException:  # noqa: BLE001 - report it as the interpreter would, then exit 1
        import traceback

        traceback.print_exc()
        code = 1
    try:
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001, S110 - nothing left to report to
                pass
        os._exit(code)


def serve() -> None:  # pragma: no cover - runs in the server process
    """Read one JSON request a line from stdin; fork a child per request; answer its status."""
    import importlib
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in PRELOAD:
            try:
                importlib.import_module(name)
            except ImportError:
                pass
    replies = os.fdopen(os.dup(1), "w")
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)
        _, status = os.waitpid(pid, 0)
        replies.write(json.dumps({"code": os.waitstatus_to_exitcode(status)}) + "\n")
        replies.flush()


class ForkedCli:
    """The client: start the server, run command lines, stop it."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = dict(env)
        self.scratch = Path(tempfile.mkdtemp(prefix="forked-cli-"))
        self.server: subprocess.Popen[str] | None = None

    def __enter__(self) -> ForkedCli:
        self.server = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve())], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, env=self.env, cwd=self.scratch,
        )
        return self

    def run(self, argv: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``groupwise ARGV`` in ``cwd`` with ``env`` (default: the server's); like subprocess.run's answer."""
        assert self.server is not None and self.server.stdin is not None and self.server.stdout is not None
        out, err = self.scratch / "stdout", self.scratch / "stderr"
        request = {"argv": [str(a) for a in argv], "cwd": str(cwd), "env": self.env if env is None else dict(env),
                   "stdout": str(out), "stderr": str(err)}
        self.server.stdin.write(json.dumps(request) + "\n")
        self.server.stdin.flush()
        reply = self.server.stdout.readline()
        if not reply:
            raise RuntimeError(f"the command server stopped (exit {self.server.wait()})")
        code = json.loads(reply)["code"]
        return subprocess.CompletedProcess(["groupwise", *argv], code, out.read_text(errors="replace"),
                                           err.read_text(errors="replace"))

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            assert self.server.stdin is not None and self.server.stdout is not None
            self.server.stdin.close()
            try:
                self.server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
            self.server.stdout.close()
        for name in ("stdout", "stderr"):
            (self.scratch / name).unlink(missing_ok=True)
        self.scratch.rmdir()


if __name__ == "__main__":
    serve()
