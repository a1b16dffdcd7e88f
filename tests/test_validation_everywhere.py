"""Bad options of the speech and bounty entry points get the one validator's message.

Every public option check names the parameter and the public function it belongs to
("The 'workers' parameter of transcribe must be ..."), raises InputError, and on the
command line ends in exit code 2 without a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from groupwise._errors import InputError
from groupwise.bounty import Limits, Program, hunt
from groupwise.bounty._data import split_data
from groupwise.bounty._sandbox import Evaluation
from groupwise.speech import build_lm, get_backend, load_corpus, parse_condition, synthesize_corpus, transcribe
from groupwise.speech._serve import serve
from groupwise.speech._textgen import sentences, split_test_and_train, spoken_number


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    """A small bias-bounty program with a depth-3 tree as its base model."""
    rng = np.random.default_rng(0)
    u, v = rng.random(1200), rng.random(1200)
    frame = pd.DataFrame({"u": u, "v": v, "y": np.where((u > 0.5) | (v > 0.8), "yes", "no")})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the holdout is below the guarantee's bound
        return Program.create(
            tmp_path_factory.mktemp("bounty") / "program", frame, target="y", base_model="train:tree",
            epsilon=0.1, max_queries=10, limits=Limits(),
        )


MANIFEST = pd.DataFrame({"audio": ["never-read.wav"], "text": ["hello"]})


def _cases(tmp_path, program):
    """(parameter, caller, call) for a bad option of each entry point."""
    return [
        ("workers", "transcribe", lambda: transcribe(MANIFEST, workers=0, cache=False, progress=False)),
        ("engine", "transcribe", lambda: transcribe(MANIFEST, engine="spark", cache=False, progress=False)),
        ("on_error", "transcribe", lambda: transcribe(MANIFEST, on_error="ignore", cache=False, progress=False)),
        ("engine", "synthesize_corpus", lambda: synthesize_corpus(tmp_path / "c", engine="festival", progress=False)),
        ("workers", "synthesize_corpus", lambda: synthesize_corpus(tmp_path / "c", workers=0, progress=False)),
        ("format", "load_corpus", lambda: load_corpus(tmp_path / "m.csv", format="kaldi")),
        ("on_problem", "load_corpus", lambda: load_corpus(tmp_path / "m.csv", on_problem="ignore")),
        ("seed", "sentences", lambda: sentences("clinical", 3, seed="a")),
        ("n", "sentences", lambda: sentences("clinical", -1)),
        ("n_test", "split_test_and_train", lambda: split_test_and_train("clinical", n_test=-1, n_train=10)),
        ("n", "spoken_number", lambda: spoken_number(1_000_000)),
        ("order", "build_lm", lambda: build_lm(["the patient"], out=tmp_path / "x.arpa", order=0)),
        ("discount", "build_lm", lambda: build_lm(["the patient"], out=tmp_path / "x.arpa", discount=1.0)),
        ("retries", "get_backend('http')", lambda: get_backend("http", url="http://127.0.0.1:9/", retries=-1)),
        ("api", "get_backend('http')", lambda: get_backend("http", url="http://127.0.0.1:9/", api="grpc")),
        ("timeout", "get_backend('http')", lambda: get_backend("http", url="http://127.0.0.1:9/", timeout=0)),
        ("sample_rate", "get_backend('http')", lambda: get_backend("http", url="http://127.0.0.1:9/", sample_rate=100)),
        ("seed", "Condition.__call__", lambda: parse_condition("baseline")(np.zeros(160, np.float32), 16000, seed=-1)),
        ("port", "serve", lambda: serve("whisper", port=0)),
        ("certificate", "hunt", lambda: hunt(program, strategy="csc", certificate="pickle")),
        ("strategy", "hunt", lambda: hunt(program, strategy="genetic")),
        ("budget", "hunt", lambda: hunt(program, budget=0)),
        ("split", "Program.predict_public", lambda: program.predict_public("holdout")),
        ("split", "Program.X", lambda: program.X("holdout")),
        ("base_model", "Program.create", lambda: Program.create(tmp_path / "p", None, target="y", base_model="train:xgb")),
        ("task", "Program.create", lambda: Program.create(tmp_path / "p", None, target="y", task="ranking")),
        ("test_size", "split_data", lambda: split_data(100, test_size=0, holdout_size=0.3, seed=0)),
        ("isolation", "Evaluation", lambda: Evaluation({}, {}, program.schema, limits=Limits(), isolation="maybe")),
    ]


def test_bad_options_name_the_parameter_and_the_function(tmp_path, program):
    cases = _cases(tmp_path, program)
    assert len({caller for _, caller, _ in cases}) >= 6
    for param, caller, call in cases:
        with pytest.raises(InputError) as err:
            call()
        message = str(err.value)
        assert message.startswith(f"The {param!r} parameter of {caller} must be "), message
        assert " Got " in message and ". Fix: " in message, message
    assert not (tmp_path / "c").exists() and not (tmp_path / "p").exists()  # refused before any work


def test_the_holdout_split_says_it_is_private(program):
    with pytest.raises(InputError, match="the holdout is private"):
        program.frame("holdout")


def test_a_bad_option_on_the_command_line_exits_2_without_a_traceback(tmp_path):
    env = {**os.environ, "COLUMNS": "200"}
    out = subprocess.run(
        [sys.executable, "-m", "groupwise", "corpus", "synth", str(tmp_path / "corpus"), "--engine", "festival"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    assert "The 'engine' parameter of synthesize_corpus must be one of 'espeak', 'piper'" in " ".join(out.stderr.split())
    assert not (tmp_path / "corpus").exists()
