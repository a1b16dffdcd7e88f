"""Loading submitted models safely: ONNX and skops files only, never pickles.

Models are data, not code (DESIGN.md). A file is recognised by its bytes, not its name:
a pickle, dill or joblib file renamed ``.onnx`` is refused with an explanation of how to
export the model properly. ONNX models run in onnxruntime on the CPU provider, with only
the standard operator domains and no external-data references; skops files load only
when skops trusts every type they need by default (no tree internals, no custom code).

The functions that parse a file (:func:`load_model`) are meant to run inside the sandbox
worker (:mod:`groupwise.bounty._worker`); :func:`sniff_format` only reads bytes and is
what the parent process uses before it stores an upload.
"""

from __future__ import annotations

import io
import sys
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from groupwise._errors import InputError
from groupwise.bounty._schema import Schema

__all__ = ["ALLOWED_ONNX_DOMAINS", "TRUSTED_SKOPS_TYPES", "LoadedModel", "load_model", "sniff_format"]

#: Operator domains an ONNX model may use: the standard operators and the ONNX-ML ones
#: that skl2onnx emits for trees and linear models. Anything else needs a custom-op library.
ALLOWED_ONNX_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml"})

#: Types trusted beyond what skops trusts by default: none. skops leaves out, on purpose,
#: the compiled internals of tree models (``sklearn.tree._tree.Tree``, histogram-GBM
#: predictors), whose arrays it cannot check: a tree with an out-of-bounds child index
#: crashes the process that predicts with it. Tree models come as ONNX instead.
TRUSTED_SKOPS_TYPES: frozenset[str] = frozenset()

_EXPORT_HELP = (
    "export the model to ONNX with skl2onnx (skl2onnx.to_onnx(model, X[:1].astype('float32'))) "
    "or save a scikit-learn model with skops (skops.io.dump(model, 'model.skops'))"
)


def _refuse(problem: str) -> InputError:
    return InputError(problem, fix=_EXPORT_HELP)


def sniff_format(data: bytes, *, name: str = "model") -> str:
    """Return ``"onnx"`` or ``"skops"`` from a file's bytes, refusing everything else.

    Executable serialisation formats are recognised by their headers and refused with an
    explanation: pickle (also what dill, cloudpickle and uncompressed joblib write),
    compressed joblib (zlib, gzip, bz2, xz, lz4), ``.npy`` files (which may hold pickled
    objects) and zip archives that hold pickles (``torch.save``).

    Examples
    --------
    >>> import pickle
    >>> sniff_format(pickle.dumps({"w": 1}, protocol=4), name="h.onnx")
    Traceback (most recent call last):
    ...
    groupwise._errors.InputError: h.onnx is a Python pickle (protocol 4; dill, cloudpickle and joblib write these too), and pickles run arbitrary code when loaded, so the bounty never opens them. Fix: export the model to ONNX with skl2onnx (skl2onnx.to_onnx(model, X[:1].astype('float32'))) or save a scikit-learn model with skops (skops.io.dump(model, 'model.skops')).
    """
    if not data:
        raise _refuse(f"{name} is empty")
    head = data[:16]
    if head[:1] == b"\x80" and len(head) > 1 and head[1] <= 5:
        raise _refuse(
            f"{name} is a Python pickle (protocol {head[1]}; dill, cloudpickle and joblib write these too), "
            "and pickles run arbitrary code when loaded, so the bounty never opens them"
        )
    compressed = {
        b"\x78\x01": "zlib", b"\x78\x5e": "zlib", b"\x78\x9c": "zlib", b"\x78\xda": "zlib",
        b"\x1f\x8b": "gzip", b"BZ": "bz2", b"\xfd7": "xz", b"\x04\x22": "lz4", b"ZF": "joblib zlib",
        b"\x5d\x00": "lzma",
    }
    if head[:2] in compressed:
        raise _refuse(
            f"{name} is {compressed[head[:2]]}-compressed, as joblib.dump(..., compress=...) writes; "
            "the bounty does not unpack it because what is inside is a pickle"
        )
    if head[:6] == b"\x93NUMPY":
        raise _refuse(f"{name} is a numpy .npy file, which may hold pickled objects and is not a model format")
    if head[:1] in (b"(", b"c", b"]", b"}") and data.rstrip()[-1:] == b".":
        raise _refuse(f"{name} looks like a text-protocol Python pickle, which runs code when loaded")
    if head[:4] == b"PK\x03\x04":
        try:
            names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        except zipfile.BadZipFile:
            raise _refuse(f"{name} is a damaged zip archive") from None
        if any(n.endswith((".pkl", ".pickle")) or n.endswith("/data.pkl") for n in names):
            raise _refuse(f"{name} is a zip archive of pickles (as torch.save writes), not a skops file")
        if "schema.json" not in names:
            raise _refuse(f"{name} is a zip archive but not a skops file (it has no schema.json)")
        return "skops"
    return "onnx"


# ---------------------------------------------------------------------------
# ONNX
# ---------------------------------------------------------------------------


def _graphs(graph: Any):  # noqa: ANN202 - onnx types imported lazily
    """Yield a graph and every subgraph inside its nodes' attributes (Loop, If, Scan), at any depth."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("g"):
                yield from _graphs(attr.g)
            for sub in attr.graphs:
                yield from _graphs(sub)


def _tensors(graph: Any):  # noqa: ANN202
    """Yield every tensor a graph carries: dense and sparse initialisers and every dense or
    sparse tensor attribute of its nodes (``Constant``'s ``value`` and ``sparse_value``,
    ``ConstantOfShape``'s ``value``, ...). Subgraphs are reached through :func:`_graphs`."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attr in node.attribute:
            # Read every field, not only the one the declared type names: onnxruntime
            # has read fields whose attribute type said otherwise.
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("sparse_tensor"):
                yield attr.sparse_tensor.values
                yield attr.sparse_tensor.indices
            for sparse in attr.sparse_tensors:
                yield sparse.values
                yield sparse.indices


def parse_onnx(data: bytes) -> Any:
    """Parse the bytes of an ONNX file into a ``ModelProto`` message, as ``onnx.load_model_from_string`` does.

    Raises whatever protobuf raises for bytes that are not a whole ``ModelProto``.
    """
    proto = _model_proto_class()()
    used = proto.ParseFromString(data)
    if used is not None and used != len(data):
        raise ValueError(f"the protobuf message ends after {used} of {len(data)} bytes")
    return proto


@cache
def _model_proto_class() -> type:
    """onnx's ``ModelProto`` message class, without importing the onnx package when possible.

    ``import onnx`` takes one to two seconds, most of it in ml_dtypes (which onnx's helpers
    import), and every sandbox worker and prediction child needs only the message
    definitions to check a model. Those are the serialized file descriptor in the installed
    ``onnx/onnx_ml_pb2.py``: read there as a bytes literal (parsed by ``ast``, not run) into
    a descriptor pool of its own, which cannot clash with the onnx package if something
    imports it later. Where onnx is imported already, or its file has another layout, the
    package's own class is used.
    """
    if "onnx" not in sys.modules:
        try:
            return _isolated_model_proto_class()
        except Exception:  # noqa: BLE001, S110 - any other layout: the package itself below
            pass
    import onnx

    return onnx.ModelProto


def _isolated_model_proto_class() -> type:
    import ast
    import importlib.util

    from google.protobuf import descriptor_pool, message_factory

    spec = importlib.util.find_spec("onnx")
    if spec is None or spec.origin is None:
        raise ImportError("onnx is not installed")
    source = (Path(spec.origin).parent / "onnx_ml_pb2.py").read_text(encoding="utf-8")
    found = [
        node.args[0].value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "AddSerializedFile"
        and len(node.args) == 1
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, bytes)
    ]
    if len(found) != 1:
        raise ImportError("onnx_ml_pb2.py does not hold one serialized file descriptor")
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(found[0])
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("onnx.ModelProto"))


def check_onnx(model: Any, *, name: str = "model") -> None:
    """Refuse custom-op domains, model-local functions, training graphs and external data.

    External data is looked for in every tensor-carrying field of every graph and subgraph
    (see :func:`_tensors`): a tensor whose bytes live in another file would make the
    runtime read that file, which is how a model could read what lies beside it.
    """
    for opset in model.opset_import:
        if opset.domain not in ALLOWED_ONNX_DOMAINS:
            raise InputError(
                f"{name} imports the operator domain {opset.domain!r}, which needs a custom-op library",
                fix="export the model with standard ONNX and ONNX-ML operators only (skl2onnx does by default)",
            )
    if len(model.training_info):
        raise InputError(
            f"{name} carries training graphs (training_info)",
            fix="export an inference-only model (skl2onnx does by default)",
        )
    if len(model.functions):
        raise InputError(
            f"{name} defines its own ONNX functions ({model.functions[0].name!r})",
            fix="export the model with standard ONNX and ONNX-ML operators only",
        )
    for graph in _graphs(model.graph):
        for node in graph.node:
            if node.domain not in ALLOWED_ONNX_DOMAINS:
                raise InputError(
                    f"{name} uses the operator {node.op_type!r} of the custom domain {node.domain!r}",
                    fix="export the model with standard ONNX and ONNX-ML operators only",
                )
        for tensor in _tensors(graph):
            if tensor.data_location != tensor.DEFAULT or len(tensor.external_data):
                raise InputError(
                    f"{name} refers to external data files for the tensor {tensor.name!r}",
                    fix="save the model as one file (onnx.save_model(model, path, save_as_external_data=False))",
                )


# ---------------------------------------------------------------------------
# Loaded models
# ---------------------------------------------------------------------------

_ONNX_NUMERIC = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64, "tensor(int32)": np.int32}


@dataclass
class LoadedModel:
    """A model ready to predict on data encoded by a :class:`Schema`."""

    kind: str
    impl: Any
    schema: Schema
    inputs: tuple[tuple[str, str], ...] = ()

    def predict(self, matrix: npt.NDArray[np.float32]) -> npt.NDArray[Any]:
        """Predictions for the rows of the ``X`` matrix (see :mod:`._schema`), 1-D."""
        if self.kind == "onnx":
            out = self.impl.run([self.impl.get_outputs()[0].name], self._feed(matrix))[0]
        else:
            out = self.impl.predict(self._skops_input(matrix))
        return np.asarray(out)

    def _feed(self, matrix: npt.NDArray[np.float32]) -> dict[str, Any]:
        if len(self.inputs) == 1 and self.inputs[0][0] == "X":
            dtype = _ONNX_NUMERIC[self.inputs[0][1]]
            return {"X": np.ascontiguousarray(matrix, dtype=dtype)}
        frame = self.schema.decode(matrix)
        feed = {}
        for input_name, type_name in self.inputs:
            column = frame[input_name]
            if type_name == "tensor(string)":
                feed[input_name] = column.astype(str).to_numpy(dtype=object).reshape(-1, 1)
            else:
                feed[input_name] = column.to_numpy(dtype=_ONNX_NUMERIC[type_name]).reshape(-1, 1)
        return feed

    def _skops_input(self, matrix: npt.NDArray[np.float32]) -> Any:
        names = getattr(self.impl, "feature_names_in_", None)
        if names is None:
            return matrix
        frame = self.schema.decode(matrix)
        for feature in self.schema.features:
            if feature.kind == "categorical":
                frame[feature.name] = frame[feature.name].astype(str)
        return frame[list(names)]


def _check_onnx_inputs(session: Any, schema: Schema, name: str) -> tuple[tuple[str, str], ...]:
    inputs = tuple((i.name, i.type) for i in session.get_inputs())
    expected = f"one float input 'X' of shape [N, {len(schema.features)}] or one input per feature named {', '.join(schema.names)}"
    if len(inputs) == 1 and inputs[0][0] == "X":
        shape = session.get_inputs()[0].shape
        if inputs[0][1] not in _ONNX_NUMERIC or len(shape) != 2 or (
            isinstance(shape[1], int) and shape[1] != len(schema.features)
        ):
            raise InputError(
                f"{name}'s input 'X' is {inputs[0][1]} of shape {shape}, not float of shape [N, {len(schema.features)}]",
                fix=f"give the model {expected}",
            )
        return inputs
    unknown = [n for n, _ in inputs if n not in schema.names]
    if unknown:
        raise InputError(
            f"{name} has inputs the program's schema does not know: {', '.join(map(repr, unknown))}",
            fix=f"give the model {expected}",
        )
    for input_name, type_name in inputs:
        want_text = schema[input_name].kind == "categorical"
        if want_text != (type_name == "tensor(string)") or (not want_text and type_name not in _ONNX_NUMERIC):
            raise InputError(
                f"{name}'s input {input_name!r} is {type_name}, but the feature is {schema[input_name].kind}",
                fix="use string inputs for categorical features and float inputs for numeric ones",
            )
    return inputs


def load_model(path: str | Path, schema: Schema, *, name: str | None = None, threads: int = 1) -> LoadedModel:
    """Load an ONNX or skops model file after every safety check.

    Raises
    ------
    InputError
        The file is a pickle or another refused format, uses a custom ONNX domain or
        external data, holds an untrusted skops type, or its inputs do not match the schema.
    """
    path = Path(path)
    label = name or path.name
    data = path.read_bytes()
    kind = sniff_format(data, name=label)
    if kind == "onnx":
        import onnxruntime as ort

        try:
            proto = parse_onnx(data)
        except Exception as exc:  # noqa: BLE001 - protobuf raises several types for bad bytes
            raise InputError(f"{label} is not a valid ONNX model ({type(exc).__name__})", fix=_EXPORT_HELP) from None
        if not len(proto.graph.node) and not len(proto.graph.output):
            raise InputError(f"{label} is not an ONNX model (it has no graph)", fix=_EXPORT_HELP)
        check_onnx(proto, name=label)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise InputError(f"onnxruntime cannot load {label}: {str(exc)[:300]}", fix=_EXPORT_HELP) from None
        return LoadedModel("onnx", session, schema, _check_onnx_inputs(session, schema, label))
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as exc:  # noqa: BLE001 - a damaged schema.json
        raise InputError(f"{label} is not a valid skops file ({type(exc).__name__})", fix=_EXPORT_HELP) from None
    refused = sorted(t for t in untrusted if t not in TRUSTED_SKOPS_TYPES)
    if refused:
        raise InputError(
            f"{label} contains types that are not on the bounty's trusted list (the types skops trusts by default): "
            f"{', '.join(refused[:5])}",
            fix="export tree ensembles and anything else to ONNX (skl2onnx.to_onnx(model, X[:1].astype('float32'))); "
            "skops files may hold plain scikit-learn estimators without compiled tree internals or custom code",
        )
    try:
        model = sio.loads(data, trusted=list(untrusted))
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"{label} could not be loaded by skops: {str(exc)[:300]}", fix=_EXPORT_HELP) from None
    if not hasattr(model, "predict"):
        raise InputError(f"{label} holds a {type(model).__name__}, which has no predict method", fix="save a fitted estimator")
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        unknown = [str(n) for n in names if str(n) not in schema.names]
        if unknown:
            raise InputError(
                f"{label} was fitted on columns the program's schema does not know: {', '.join(unknown[:5])}",
                fix=f"fit it on the features {', '.join(schema.names)}",
            )
    return LoadedModel("skops", model, schema)
