"""What a submitted model can reach: ONNX tensors stored in other files, skops types that
skops itself does not trust, and (in the isolated child) files and the network."""

from __future__ import annotations

import pytest

from groupwise import InputError
from groupwise.bounty._models import check_onnx, load_model

from bounty_helpers import base_program, models, program  # noqa: F401 - fixtures


def _external(tensor, location: str):
    from onnx import TensorProto

    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "128"), ("length", "8")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    del tensor.float_data[:]
    del tensor.int64_data[:]
    tensor.ClearField("raw_data")
    return tensor


def sparse_constant_model(location: str, *, nested: bool):
    """A model whose output is a ``Constant`` with a ``sparse_value`` whose values are read
    from ``location``; with ``nested`` the Constant sits in the then-branch of an ``If``."""
    from onnx import TensorProto, helper

    values = _external(helper.make_tensor("values", TensorProto.FLOAT, [2], [0.0, 0.0]), location)
    indices = helper.make_tensor("indices", TensorProto.INT64, [2], [0, 1])
    sparse = helper.make_sparse_tensor(values, indices, [2])
    constant = helper.make_node("Constant", [], ["label"], sparse_value=sparse)
    out = [helper.make_tensor_value_info("label", TensorProto.FLOAT, None)]
    if nested:
        then_branch = helper.make_graph([constant], "then", [], out)
        else_branch = helper.make_graph(
            [helper.make_node("Constant", [], ["label"], value=helper.make_tensor("zero", TensorProto.FLOAT, [2], [0.0, 0.0]))],
            "else", [], out,
        )
        nodes = [
            helper.make_node("Constant", [], ["yes"], value=helper.make_tensor("yes_t", TensorProto.BOOL, [], [True])),
            helper.make_node("If", ["yes"], ["result"], then_branch=then_branch, else_branch=else_branch),
        ]
        out = [helper.make_tensor_value_info("result", TensorProto.FLOAT, None)]
    else:
        nodes = [constant]
    graph = helper.make_graph(nodes, "sparse", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 3])], out)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


@pytest.mark.parametrize("nested", [False, True])
def test_a_sparse_constant_with_external_data_is_refused(program, tmp_path, nested):
    holdout_labels = program.root / "private" / "y_holdout.npy"
    model = sparse_constant_model(str(holdout_labels), nested=nested)
    with pytest.raises(InputError, match="external data"):
        check_onnx(model, name="h.onnx")
    path = tmp_path / "sparse.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(InputError, match="external data"):
        load_model(path, program.schema)
    before = program.state
    result = program.submit(team="evil", group="u > 0.5", model=path)
    assert result.reason_kind == "input" and "external data" in result.reason
    assert program.state == before and program.version == 0


def test_external_data_in_a_dense_attribute_of_a_loop_body_is_refused():
    from onnx import TensorProto, helper

    weights = _external(helper.make_tensor("w", TensorProto.FLOAT, [1], [0.0]), "y_holdout.npy")
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Constant", [], ["acc_out"], value=weights)],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []), helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []), helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, [1])],
    )
    graph = helper.make_graph(
        [helper.make_node("Loop", ["n", "c", "a"], ["label"], body=body)], "loop",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("label", TensorProto.FLOAT, None)],
        initializer=[helper.make_tensor("n", TensorProto.INT64, [], [1]), helper.make_tensor("c", TensorProto.BOOL, [], [True]),
                     helper.make_tensor("a", TensorProto.FLOAT, [1], [0.0])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(InputError, match="external data.*'w'"):
        check_onnx(model, name="loop.onnx")


def corrupt_skops_tree(path, X, y):
    """A skops file of a fitted decision tree whose root's left child points far outside the
    node array (what a hostile file can say; predicting with it reads wild memory)."""
    import io
    import zipfile

    import numpy as np
    import skops.io as sio
    from sklearn.tree import DecisionTreeClassifier

    sio.dump(DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y), path)
    source = zipfile.ZipFile(path)
    out = io.BytesIO()
    hit = False
    with zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            if name.endswith(".npy"):
                array = np.load(io.BytesIO(data), allow_pickle=False)
                if array.dtype.names and "left_child" in array.dtype.names:
                    array["left_child"][0] = 10**9
                    buffer = io.BytesIO()
                    np.save(buffer, array, allow_pickle=False)
                    data, hit = buffer.getvalue(), True
            target.writestr(name, data)
    assert hit, "the tree's node array was not found in the skops file"
    path.write_bytes(out.getvalue())
    return path


def test_a_skops_tree_is_refused_and_never_crashes_the_process(program, tmp_path):
    import subprocess
    import sys

    X = program.X("train")
    evil = corrupt_skops_tree(tmp_path / "tree.skops", X, (X[:, 0] > 0.5).astype(int))
    before = program.state
    result = program.submit(team="evil", group="u > 0.5", model=evil)
    assert result.reason_kind == "input" and "trusted list" in result.reason and "sklearn.tree._tree.Tree" in result.reason
    assert program.state == before
    # Loading it where bundles and the web process load models: refused, the process lives.
    code = (
        "import sys, numpy as np\n"
        "from groupwise import InputError\n"
        "from groupwise.bounty import Program\n"
        "from groupwise.bounty._models import load_model\n"
        "program = Program.load(sys.argv[1])\n"
        "try:\n"
        "    model = load_model(sys.argv[2], program.schema)\n"
        "except InputError as exc:\n"
        "    print('refused:', exc.problem)\n"
        "else:\n"
        "    print('loaded', model.predict(program.X('test')).sum())\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(program.root), str(evil)], capture_output=True, text=True)
    assert done.returncode == 0, (done.returncode, done.stderr[-500:])
    assert done.stdout.startswith("refused:") and "trusted list" in done.stdout


PROBE = """
import json, socket, sys
found = {}
try:
    found["read"] = open(sys.argv[1], "rb").read(8).hex()
except OSError as exc:
    found["read"] = type(exc).__name__
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=5).close()
    found["connect"] = "connected"
except OSError as exc:
    found["connect"] = type(exc).__name__
import os
found["root"] = sorted(os.listdir("/"))
print(json.dumps(found))
"""


def test_the_isolated_child_reads_nothing_outside_its_directory_and_has_no_network(program, tmp_path):
    import json
    import socket
    import subprocess
    import sys

    from groupwise.bounty._sandbox import isolation_available, jail_argv

    why = isolation_available()
    if why is not None:
        pytest.fail(f"the sandbox must be able to isolate here: {why}")
    secret = program.root / "private" / "y_holdout.npy"
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    job = tmp_path / "job"
    job.mkdir()
    (job / "probe.py").write_text(PROBE)
    command = [sys.executable, "probe.py", str(secret), str(port)]
    try:
        # The same probe outside the jail reads the labels and connects: the test can fail.
        outside = json.loads(subprocess.run(command, cwd=job, capture_output=True, text=True, check=True).stdout)
        assert outside["read"] != "FileNotFoundError" and outside["connect"] == "connected"
        inside = subprocess.run(jail_argv(job, command, {}), capture_output=True, text=True)
    finally:
        server.close()
    assert inside.returncode == 0, inside.stderr[-500:]
    found = json.loads(inside.stdout)
    assert found["read"] in ("FileNotFoundError", "PermissionError")
    assert found["connect"] != "connected"
    # Only what Python needs is mounted: no /var, /home or /srv of the host.
    assert not {"var", "home", "srv"} & set(found["root"]) and "job" in found["root"]


def test_submissions_run_isolated_when_isolation_is_required(program, models):
    from groupwise.bounty._sandbox import Evaluation

    program.isolation = "required"
    assert program.submit(team="a", group="u > 0.5", model=models["u"]).accepted
    files = {"m": (models["u"], "u.onnx")}
    with Evaluation(files, {"test": program.root / "public" / "X_test.npy"}, program.schema, limits=program.limits, isolation="required") as ev:
        assert ev._jailed
        assert ev.run_public()[("m", "test")].shape[0] == program.config["sizes"]["test"]


def test_the_service_worker_refuses_to_run_without_isolation(monkeypatch):
    pytest.importorskip("sqlalchemy")
    from groupwise.bounty import _sandbox
    from groupwise.service.core.config import Settings
    from groupwise.service.worker import worker_isolation

    assert worker_isolation(Settings()) == "required"
    monkeypatch.setattr(_sandbox, "isolation_available", lambda: "bubblewrap (bwrap) is not installed")
    with pytest.raises(RuntimeError, match="without isolation.*allow_unisolated"):
        worker_isolation(Settings())
    assert worker_isolation(Settings(extra={"allow_unisolated": True})) == "auto"


_ISOLATED_PARSE = r"""
import sys
from pathlib import Path
from groupwise import InputError
from groupwise.bounty._models import check_onnx, load_model, parse_onnx
from groupwise.bounty._schema import Schema

good, bad, schema = sys.argv[1], sys.argv[2], Schema.from_dict(__import__("json").loads(sys.argv[3]))
model = load_model(good, schema)
print(model.kind, "onnx" in sys.modules, "sklearn" in sys.modules)
try:
    check_onnx(parse_onnx(Path(bad).read_bytes()), name="loop.onnx")
except InputError as exc:
    print("refused:", exc.message)
Path("parsed.bin").write_bytes(parse_onnx(Path(good).read_bytes()).SerializeToString())
"""


def test_an_onnx_file_is_checked_without_importing_onnx(program, models, tmp_path):
    """load_model parses ONNX files with onnx's own message definitions, in a process that
    never imports the onnx package (or scikit-learn), and the checks still refuse."""
    import json
    import subprocess
    import sys

    import onnx

    bad = tmp_path / "loop.onnx"
    model = onnx.load_model(str(models["truth"]))
    weights = _external(onnx.helper.make_tensor("w", onnx.TensorProto.FLOAT, [1], [0.0]), "y_holdout.npy")
    model.graph.node.append(onnx.helper.make_node("Constant", [], ["extra"], value=weights))
    bad.write_bytes(model.SerializeToString())
    out = subprocess.run(
        [sys.executable, "-c", _ISOLATED_PARSE, str(models["truth"]), str(bad), json.dumps(program.schema.to_dict())],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "onnx False False"
    assert lines[1].startswith("refused: loop.onnx refers to external data files for the tensor 'w'")
    parsed = onnx.load_model_from_string((tmp_path / "parsed.bin").read_bytes())
    assert parsed == onnx.load_model(str(models["truth"]))
