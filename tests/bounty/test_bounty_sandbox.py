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
