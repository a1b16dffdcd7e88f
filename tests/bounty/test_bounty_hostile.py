"""Bad and hostile submissions: each is refused or rejected with a specific reason, and
the program (its list, its budget, its files other than the log) is unchanged."""

from __future__ import annotations

import gzip
import os
import pickle
import zlib

import numpy as np
import pytest

from groupwise.bounty import Limits

from bounty_helpers import base_program, make_program, models, program  # noqa: F401 - fixtures


def _onnx(path, nodes, outputs, inputs=None, initializers=(), domains=(("", 17),)):
    from onnx import TensorProto, helper

    inputs = inputs or [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 3])]
    graph = helper.make_graph(nodes, "hostile", inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in domains])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


def _snapshot(program):
    return (program.pdl, program.state, sorted(p.name for p in (program.root / "store").iterdir()))


def _refused(program, before, result, kind, *words):
    assert not result.accepted
    assert result.reason_kind == kind, result.reason
    for word in words:
        assert word in result.reason, result.reason
    assert "Fix:" in result.reason or kind == "check"
    after = _snapshot(program)
    assert after[0] == before[0]
    # A check spends one query of the holdout's budget; nothing else does.
    assert after[1].queries == before[1].queries + (kind == "check")
    assert after[1].acceptances == before[1].acceptances


@pytest.fixture
def limited(tmp_path, models):
    return make_program(tmp_path / "p", models, limits=Limits(cpu_seconds=3, memory_mb=2048, wall_seconds=60, max_upload_mb=1))


def test_pickle_dill_and_joblib_files_are_refused_unopened(program, models, tmp_path):
    import cloudpickle

    class Boom:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    payloads = {
        "pickle": pickle.dumps(Boom()),
        "cloudpickle": cloudpickle.dumps(lambda x: x),
        "joblib-zlib": zlib.compress(pickle.dumps(Boom())),
        "joblib-gzip": gzip.compress(pickle.dumps(Boom())),
        "protocol-0": pickle.dumps([1, 2], protocol=0),
    }
    before = _snapshot(program)
    for name, payload in payloads.items():
        path = tmp_path / f"{name}.onnx"
        path.write_bytes(payload)
        result = program.submit(team="evil", group="u > 0.5", model=path)
        _refused(program, before, result, "input", "skl2onnx", "skops")
        assert _snapshot(program)[2] == before[2]  # not even stored
    assert not (tmp_path / "pwned").exists()
    import joblib

    joblib.dump({"a": 1}, tmp_path / "j.skops")
    _refused(program, before, program.submit(team="evil", group="u > 0.5", model=tmp_path / "j.skops"), "input", "pickle")


def test_onnx_custom_domain_and_external_data_are_refused(program, tmp_path):
    from onnx import TensorProto, helper

    out = [helper.make_tensor_value_info("label", TensorProto.INT64, [None])]
    custom = _onnx(tmp_path / "custom.onnx", [helper.make_node("Evil", ["X"], ["label"], domain="com.evil")], out,
                   domains=(("", 17), ("com.evil", 1)))
    before = _snapshot(program)
    _refused(program, before, program.submit(team="evil", group="u > 0.5", model=custom), "input", "com.evil")
    weights = helper.make_tensor("W", TensorProto.FLOAT, [3], [0.0, 0.0, 0.0])
    weights.data_location = TensorProto.EXTERNAL
    entry = weights.external_data.add()
    entry.key, entry.value = "location", "/etc/passwd"
    del weights.float_data[:]
    external = _onnx(tmp_path / "external.onnx", [helper.make_node("Mul", ["X", "W"], ["label"])],
                     [helper.make_tensor_value_info("label", TensorProto.FLOAT, [None, 3])], initializers=[weights])
    _refused(program, before, program.submit(team="evil", group="u > 0.5", model=external), "input", "external data")


def test_skops_untrusted_type_is_refused(program, tmp_path):
    import skops.io as sio
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.tree import DecisionTreeClassifier

    X = np.random.default_rng(0).random((50, 3))
    model = make_pipeline(FunctionTransformer(os.system), DecisionTreeClassifier())
    model.steps[1][1].fit(X, (X[:, 0] > 0.5).astype(int))
    sio.dump(model, tmp_path / "evil.skops")
    before = _snapshot(program)
    _refused(program, before, program.submit(team="evil", group="u > 0.5", model=tmp_path / "evil.skops"), "input", "trusted list", "system")


def test_a_trusted_skops_model_is_checked_normally(program, tmp_path):
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    X = program.X("train")
    model = LogisticRegression().fit(X, (X[:, 0] > 0.5).astype(np.int64))
    sio.dump(model, tmp_path / "ok.skops")
    assert program.submit(team="fair", group="u > 0.5", model=tmp_path / "ok.skops").accepted


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("len(c) > 3", "call"),
        ("c.upper() == 'RED'", ""),
        ("c[0] == 'r'", ""),
        ("(lambda: 1)() == 1", ""),
        ("[x for x in u] == 1", ""),
        ("__import__ == 1", ""),
        ("u.__class__ == 1", ""),
        ("c == '" + "a" * 10_000_000 + "'", "characters"),
        ("w > 1", "not one of the known columns"),
        ("c > 3", ""),
    ],
)
def test_hostile_group_expressions_are_refused(program, models, expression, words):
    before = _snapshot(program)
    result = program.submit(team="evil", group=expression, model=models["u"])
    _refused(program, before, result, "input", words)
    assert _snapshot(program)[2] == before[2]  # refused before the model was stored


def test_unbounded_memory_and_endless_loops_hit_the_limits(limited, tmp_path):
    from onnx import TensorProto, helper

    out = [helper.make_tensor_value_info("label", TensorProto.FLOAT, None)]
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [200_000, 200_000])
    hog = _onnx(tmp_path / "hog.onnx", [helper.make_node("ConstantOfShape", ["shape"], ["label"])], out, initializers=[shape])
    before = _snapshot(limited)
    _refused(limited, before, limited.submit(team="evil", group="u > 0.5", model=hog), "limit", "memory")

    # A Loop whose body never sets its condition to false, with the largest trip count.
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Add", ["acc_in", "one"], ["acc_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []), helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []), helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, [])],
        initializer=[helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])],
    )
    forever = _onnx(
        tmp_path / "forever.onnx",
        [helper.make_node("Loop", ["trips", "cond", "zero"], ["label"], body=body)],
        [helper.make_tensor_value_info("label", TensorProto.FLOAT, [])],
        initializers=[helper.make_tensor("trips", TensorProto.INT64, [], [2**62]),
                      helper.make_tensor("cond", TensorProto.BOOL, [], [True]),
                      helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])],
    )
    _refused(limited, before, limited.submit(team="evil", group="u > 0.5", model=forever), "limit", "limit of")


def test_wrong_inputs_outputs_nans_and_crashes_are_rejected(program, tmp_path):
    from onnx import TensorProto, helper

    before = _snapshot(program)
    renamed = _onnx(tmp_path / "names.onnx", [helper.make_node("Identity", ["features"], ["label"])],
                    [helper.make_tensor_value_info("label", TensorProto.FLOAT, [None, 3])],
                    inputs=[helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, 3])])
    _refused(program, before, program.submit(team="evil", group="u > 0.5", model=renamed), "input", "'features'")
    wide = _onnx(tmp_path / "wide.onnx", [helper.make_node("Identity", ["X"], ["label"])],
                 [helper.make_tensor_value_info("label", TensorProto.FLOAT, [None, 3])])
    _refused(program, before, program.submit(team="evil", group="u > 0.5", model=wide), "output", "shape")
    nan = helper.make_tensor("nan", TensorProto.FLOAT, [3, 1], [float("nan")] * 3)
    nans = _onnx(tmp_path / "nan.onnx", [helper.make_node("MatMul", ["X", "nan"], ["label"])],
                 [helper.make_tensor_value_info("label", TensorProto.FLOAT, [None, 1])], initializers=[nan])
    _refused(program, before, program.submit(team="evil", group="u > 0.5", model=nans), "output", "NaN")
    bad_shape = helper.make_tensor("s", TensorProto.INT64, [2], [7, -1])
    crash = _onnx(tmp_path / "crash.onnx", [helper.make_node("Reshape", ["X", "s"], ["label"])],
                  [helper.make_tensor_value_info("label", TensorProto.FLOAT, None)], initializers=[bad_shape])
    _refused(program, before, program.submit(team="evil", group="u > 0.5", model=crash), "crash", "crashed")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(os.urandom(2000))
    _refused(program, before, program.submit(team="evil", group="u > 0.5", model=garbage), "input", "ONNX")


def test_empty_everything_and_oversized(limited, program, models, tmp_path):
    before = _snapshot(program)
    _refused(program, before, program.submit(team="evil", group="u > 5", model=models["u"]), "group-size", "empty")
    # A group of every row is a global update: allowed, and checked like any other. The
    # base model itself is no improvement, so it is rejected by the holdout.
    _refused(program, before, program.submit(team="lazy", group="u >= 0", model=models["zero"]), "check", "did not confirm")
    big = tmp_path / "big.onnx"
    big.write_bytes(b"\x08" + os.urandom(2 * 1024 * 1024))
    small = _snapshot(limited)
    _refused(limited, small, limited.submit(team="evil", group="u > 0.5", model=big), "input", "over the limit")
    # Every one of them is in the log, with its reason.
    records = [r for r in program.records if r["type"] == "submission"]
    assert [r["reason_kind"] for r in records] == ["group-size", "check"]
