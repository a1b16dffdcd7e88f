"""The private holdout answers accepted or rejected and nothing else.

A submission is checked in full on the public splits first (its reasons are told there);
once it runs on the holdout, a crash, a limit or an invalid output is an ordinary rejection
that costs a query, no text computed from the holdout reaches the submitter, and with a
fixed decision delay the answer's timing does not depend on the holdout run.
"""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest

from groupwise.bounty import Limits, Program
from groupwise.bounty._program import CHECK_REJECTED

from bounty_helpers import make_program, models  # noqa: F401 - fixtures


@pytest.fixture(scope="module")
def uneven_program(tmp_path_factory, models):
    """Splits of three different sizes (train 2,700, test 1,200, holdout 2,100 rows), so a
    model can tell the holdout by its row count, and a generous wall clock."""
    root = tmp_path_factory.mktemp("uneven") / "program"
    make_program(root, models, holdout_size=0.35, limits=Limits(cpu_seconds=60, memory_mb=3072, wall_seconds=60, max_upload_mb=5))
    return root


@pytest.fixture
def program(uneven_program, tmp_path):
    shutil.copytree(uneven_program, tmp_path / "program")
    return Program.load(tmp_path / "program")


def split_aware_model(path, holdout_rows: int, *, on_holdout: str):
    """Predicts ``u > 0.5`` on any input except one with exactly ``holdout_rows`` rows.

    ``on_holdout``: ``"leak"`` adds 1000 x the row's features to the label (an invalid
    output whose text would describe holdout rows), ``"crash"`` reads a row out of bounds, ``"spin"`` runs a Loop of 2**62 empty iterations first.
    """
    from onnx import TensorProto, helper

    def const(name, dtype, dims, values):
        return helper.make_node("Constant", [], [name], value=helper.make_tensor(name + "_t", dtype, dims, values))

    nodes = [
        helper.make_node("Shape", ["X"], ["shape"]),
        const("zero_i", TensorProto.INT64, [], [0]),
        helper.make_node("Gather", ["shape", "zero_i"], ["rows"]),
        const("hold", TensorProto.INT64, [], [holdout_rows]),
        helper.make_node("Equal", ["rows", "hold"], ["is_hold"]),
        helper.make_node("Cast", ["is_hold"], ["hold_f"], to=TensorProto.FLOAT),
        const("starts", TensorProto.INT64, [1], [0]),
        const("ends", TensorProto.INT64, [1], [1]),
        const("axes", TensorProto.INT64, [1], [1]),
        helper.make_node("Slice", ["X", "starts", "ends", "axes"], ["u"]),
        const("half", TensorProto.FLOAT, [], [0.5]),
        helper.make_node("Greater", ["u", "half"], ["u_big"]),
        helper.make_node("Cast", ["u_big"], ["label0"], to=TensorProto.FLOAT),
    ]
    if on_holdout == "leak":
        nodes += [
            const("big", TensorProto.FLOAT, [], [1000.0]),
            helper.make_node("Mul", ["u", "big"], ["u_big_scaled"]),
            helper.make_node("Mul", ["u_big_scaled", "hold_f"], ["leak"]),
            helper.make_node("Add", ["label0", "leak"], ["label"]),
        ]
    elif on_holdout == "crash":
        # Gather the row 10**9 on the holdout (out of bounds), row 0 elsewhere.
        nodes += [
            const("far", TensorProto.INT64, [], [10**9]),
            helper.make_node("Cast", ["is_hold"], ["hold_i"], to=TensorProto.INT64),
            helper.make_node("Mul", ["hold_i", "far"], ["index"]),
            helper.make_node("Gather", ["label0", "index"], ["picked"], axis=0),
            const("nought", TensorProto.FLOAT, [], [0.0]),
            helper.make_node("Mul", ["picked", "nought"], ["nothing"]),
            helper.make_node("Add", ["label0", "nothing"], ["label"]),
        ]
    else:
        body = helper.make_graph(
            [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Identity", ["acc_in"], ["acc_out"])],
            "body",
            [helper.make_tensor_value_info("i", TensorProto.INT64, []), helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
             helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, [])],
            [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []), helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, [])],
        )
        nodes += [
            const("many", TensorProto.INT64, [], [2**62]),
            helper.make_node("Cast", ["is_hold"], ["hold_i"], to=TensorProto.INT64),
            helper.make_node("Mul", ["hold_i", "many"], ["trips"]),
            const("true", TensorProto.BOOL, [], [True]),
            const("nought", TensorProto.FLOAT, [], [0.0]),
            helper.make_node("Loop", ["trips", "true", "nought"], ["spun"], body=body),
            helper.make_node("Add", ["label0", "spun"], ["label"]),
        ]
    graph = helper.make_graph(
        nodes, "split-aware",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("label", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


def _charged_rejection(program, before, result):
    assert not result.accepted
    assert result.reason_kind == "check" and result.reason == CHECK_REJECTED
    assert program.state.queries == before.queries + 1 and program.state.acceptances == before.acceptances
    assert program.version == 0


def test_invalid_output_or_crash_on_the_holdout_is_a_charged_rejection_without_detail(program, tmp_path):
    holdout_rows = program.config["sizes"]["holdout"]
    for kind in ("leak", "crash"):
        model = split_aware_model(tmp_path / f"{kind}.onnx", holdout_rows, on_holdout=kind)
        before = program.state
        result = program.submit(team="spy", group="u > 0.5", model=model)
        _charged_rejection(program, before, result)
    # The same model on the public splits only (a holdout of another size) is a valid model:
    # its public outputs were checked and cached like any other.
    fine = split_aware_model(tmp_path / "fine.onnx", holdout_rows + 1, on_holdout="leak")
    assert program.submit(team="spy", group="u > 0.5", model=fine).accepted
    # Nothing of the holdout in the log: the two rejections read exactly like a bad model.
    records = [json.loads(x) for x in (program.root / "log.jsonl").read_text().splitlines()]
    for record in records[1:3]:
        assert record["reason"] == CHECK_REJECTED and record["reason_kind"] == "check"
        assert record["checker"]["queries"] in (1, 2)
    assert program.replay() == []


def test_public_problems_are_told_in_full_and_cost_nothing(program, tmp_path):
    # Invalid on the public test split (which has this many rows): told, not charged.
    test_rows = program.config["sizes"]["test"]
    model = split_aware_model(tmp_path / "bad.onnx", test_rows, on_holdout="leak")
    before = program.state
    result = program.submit(team="clumsy", group="u > 0.5", model=model)
    assert result.reason_kind == "output" and "class indices" in result.reason
    assert program.state == before


def test_the_decision_time_does_not_depend_on_the_holdout_run(program, tmp_path, models):
    holdout_rows = program.config["sizes"]["holdout"]
    spinner = split_aware_model(tmp_path / "spin.onnx", holdout_rows, on_holdout="spin")
    delay = 4.0
    elapsed = {}
    for name, model in (("spin", spinner), ("honest", models["u"])):
        before = program.state
        started = time.monotonic()
        result = program.submit(team="t", group="u > 0.5", model=model, decision_seconds=delay, wait=False)
        assert result.reveal_at > 0
        time.sleep(max(0.0, result.reveal_at - time.time()))
        elapsed[name] = time.monotonic() - started
        if name == "spin":
            # Stopped at the delay (far below its limits), rejected and charged.
            _charged_rejection(program, before, result)
        else:
            assert result.accepted
    assert min(elapsed.values()) >= delay
    # Without a delay (the local default) the answer comes at once.
    quick = program.submit(team="t", group="v > 0.8", model=models["v"])
    assert quick.reveal_at == 0.0
    assert np.isfinite(program.test_loss())
