"""The pointer decision list: the bounty's deployed model.

A pointer decision list is a base model and a list of nodes, newest first when it
predicts. An *update* node ``(g, h)`` says "on the rows in group g, predict with h"; a
*repair* node ``(g_j, -> l)`` says "on the rows in g_j, predict as version l did". The
head (newest node) whose group holds a row decides it, else the base model does.
Version ``v`` is the base plus the first ``v`` nodes, so versions never change once made
and a repair's pointer is simply a shorter prefix of the same list.

Prediction is vectorised: each node's group mask is computed once for the whole input and
each model runs once on the whole input; rows are assigned with boolean masks, head first.

A version exports as a *bundle*: a directory with ``bundle.json`` (schema, loss, nodes,
group expressions, file digests) and the ONNX or skops model files, which anyone can run
with :func:`load_bundle` and :meth:`Bundle.predict`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from groupwise._errors import InputError
from groupwise._expr import parse_group
from groupwise.bounty._loss import Loss, parse_loss
from groupwise.bounty._schema import Schema

__all__ = ["Bundle", "GroupRef", "Node", "PointerDecisionList", "assemble", "load_bundle"]

BUNDLE_FORMAT = "groupwise-pdl/1"


@dataclass(frozen=True)
class GroupRef:
    """A group: a group expression (``expr``) or a classifier model file (``model``)."""

    expr: str | None = None
    model: str | None = None

    def __post_init__(self) -> None:
        if (self.expr is None) == (self.model is None):
            raise ValueError("a group is either an expression or a model file")

    def to_dict(self) -> dict[str, str]:
        return {"expr": self.expr} if self.expr is not None else {"model": str(self.model)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GroupRef:
        return cls(expr=data.get("expr"), model=data.get("model"))

    def describe(self) -> str:
        return self.expr if self.expr is not None else f"model {self.model}"

    def columns(self, schema: Schema) -> tuple[str, ...]:
        """Features the group reads (all of them for a group model)."""
        return parse_group(self.expr).columns if self.expr is not None else tuple(schema.names)


@dataclass(frozen=True)
class Node:
    """One node of a pointer decision list.

    Parameters
    ----------
    kind : {"update", "repair"}
    group : GroupRef
    model : str, optional
        File name of the update's model (update nodes only).
    pointer : int, optional
        The version a repair node points back to (repair nodes only).
    team, submission : str
        Who earned the node, and through which submission.
    """

    kind: str
    group: GroupRef
    model: str | None = None
    pointer: int | None = None
    team: str = ""
    submission: str = ""

    def __post_init__(self) -> None:
        if self.kind == "update" and (self.model is None or self.pointer is not None):
            raise ValueError("an update node has a model and no pointer")
        if self.kind == "repair" and (self.pointer is None or self.model is not None):
            raise ValueError("a repair node has a pointer and no model")
        if self.kind not in ("update", "repair"):
            raise ValueError(f"unknown node kind {self.kind!r}")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "group": self.group.to_dict()}
        if self.model is not None:
            out["model"] = self.model
        if self.pointer is not None:
            out["pointer"] = self.pointer
        out["team"] = self.team
        out["submission"] = self.submission
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Node:
        return cls(
            kind=str(data["kind"]),
            group=GroupRef.from_dict(data["group"]),
            model=data.get("model"),
            pointer=None if data.get("pointer") is None else int(data["pointer"]),
            team=str(data.get("team", "")),
            submission=str(data.get("submission", "")),
        )


def assemble(
    nodes: Sequence[Node],
    version: int,
    *,
    group_mask: Callable[[int], npt.NDArray[np.bool_]],
    model_pred: Callable[[int], npt.NDArray[Any]],
    base_pred: Callable[[], npt.NDArray[Any]],
    rows: int,
) -> npt.NDArray[Any]:
    """Predictions of ``version`` from per-node masks and predictions (head first wins).

    ``group_mask(i)`` and ``model_pred(i)`` give node ``i``'s mask and its model's
    predictions on all rows; each is asked for at most once per call, and only for nodes
    some row reaches. Repair nodes are resolved by assembling the version they point to
    on the rows they catch.

    Examples
    --------
    >>> import numpy as np
    >>> g = GroupRef(expr="x > 0")
    >>> nodes = [Node("update", g, model="h"), Node("repair", g, pointer=0)]
    >>> masks = {0: np.array([True, False]), 1: np.array([True, True])}
    >>> assemble(nodes, 2, group_mask=masks.__getitem__, model_pred=lambda i: np.array([5, 5]),
    ...          base_pred=lambda: np.array([1, 2]), rows=2).tolist()
    [1, 2]
    >>> assemble(nodes, 1, group_mask=masks.__getitem__, model_pred=lambda i: np.array([5, 5]),
    ...          base_pred=lambda: np.array([1, 2]), rows=2).tolist()
    [5, 2]
    """
    masks: dict[int, npt.NDArray[np.bool_]] = {}
    preds: dict[int, npt.NDArray[Any]] = {}
    base: list[npt.NDArray[Any]] = []

    def mask(i: int) -> npt.NDArray[np.bool_]:
        if i not in masks:
            masks[i] = np.asarray(group_mask(i), dtype=bool)
        return masks[i]

    def model(i: int) -> npt.NDArray[Any]:
        if i not in preds:
            preds[i] = np.asarray(model_pred(i))
        return preds[i]

    def base_values() -> npt.NDArray[Any]:
        if not base:
            base.append(np.asarray(base_pred()))
        return base[0]

    def run(v: int, idx: npt.NDArray[np.intp]) -> npt.NDArray[Any]:
        out: npt.NDArray[Any] | None = None
        todo = np.ones(idx.size, dtype=bool)
        for i in range(v - 1, -1, -1):
            hit = todo & mask(i)[idx]
            if not hit.any():
                continue
            node = nodes[i]
            values = model(i)[idx[hit]] if node.kind == "update" else run(int(node.pointer), idx[hit])  # type: ignore[arg-type]
            if out is None:
                out = np.empty(idx.size, dtype=values.dtype)
            out[hit] = values
            todo &= ~hit
            if not todo.any():
                return out
        rest = base_values()[idx[todo]]
        if out is None:
            return rest
        if out.dtype != rest.dtype:
            out = out.astype(np.result_type(out.dtype, rest.dtype))
        out[todo] = rest
        return out

    if not 0 <= version <= len(nodes):
        raise InputError(f"version {version} does not exist (the list has versions 0 to {len(nodes)})", fix="pick an existing version")
    return run(version, np.arange(rows))


@dataclass(frozen=True)
class PointerDecisionList:
    """An immutable pointer decision list: a base model file and nodes, oldest first.

    Examples
    --------
    >>> pdl = PointerDecisionList("base.onnx")
    >>> pdl = pdl.append(Node("update", GroupRef(expr="age > 60"), model="h1.onnx"))
    >>> pdl = pdl.append(Node("repair", GroupRef(expr="age > 60"), pointer=0))
    >>> pdl.version, pdl.at(1).version
    (2, 1)
    """

    base: str
    nodes: tuple[Node, ...] = ()

    @property
    def version(self) -> int:
        return len(self.nodes)

    def at(self, version: int) -> PointerDecisionList:
        """The list as it was at ``version`` (a prefix)."""
        if not 0 <= version <= len(self.nodes):
            raise InputError(f"version {version} does not exist (0 to {len(self.nodes)})", fix="pick an existing version")
        return replace(self, nodes=self.nodes[:version])

    def append(self, node: Node) -> PointerDecisionList:
        if node.kind == "repair" and not 0 <= int(node.pointer) <= len(self.nodes):  # type: ignore[arg-type]
            raise ValueError(f"a repair node can only point to versions 0..{len(self.nodes)}")
        return replace(self, nodes=(*self.nodes, node))

    def model_files(self) -> list[str]:
        files = [self.base]
        for node in self.nodes:
            if node.model is not None:
                files.append(node.model)
            if node.group.model is not None:
                files.append(node.group.model)
        return list(dict.fromkeys(files))

    def to_dict(self) -> dict[str, Any]:
        return {"base": self.base, "nodes": [n.to_dict() for n in self.nodes]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PointerDecisionList:
        return cls(str(data["base"]), tuple(Node.from_dict(n) for n in data["nodes"]))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Bundle:
    """A runnable, self-contained version of a pointer decision list.

    Load one with :func:`load_bundle`; :meth:`predict` runs it on any table that fits the
    schema. Models run in this process with the same safety checks as submissions
    (ONNX standard operators only, skops trusted types only).
    """

    path: Path
    schema: Schema
    loss: Loss
    pdl: PointerDecisionList
    meta: dict[str, Any] = field(default_factory=dict)

    def predict(self, data: Any, *, labels: bool = True) -> npt.NDArray[Any]:
        """Predict every row of ``data`` (a DataFrame or a table path).

        Returns class labels (``labels=True``) or class indices for classification, and
        numbers for regression.
        """
        from groupwise._io import read_table
        from groupwise.bounty._models import load_model
        from groupwise.bounty._sandbox import check_output

        frame = self.schema.validate(read_table(data), name="the data")
        matrix = self.schema.encode(frame)
        loaded: dict[str, Any] = {}

        def run(file: str, role: str) -> npt.NDArray[Any]:
            if file not in loaded:
                loaded[file] = load_model(self.path / "models" / file, self.schema, name=file)
            raw = loaded[file].predict(matrix)
            return check_output(raw, role=role, schema=self.schema, rows=len(frame))

        nodes = self.pdl.nodes

        def group_mask(i: int) -> npt.NDArray[np.bool_]:
            group = nodes[i].group
            if group.expr is not None:
                return parse_group(group.expr, columns=self.schema.names).evaluate(frame)
            return run(str(group.model), "group")

        pred = assemble(
            nodes,
            self.pdl.version,
            group_mask=group_mask,
            model_pred=lambda i: run(str(nodes[i].model), "model"),
            base_pred=lambda: run(self.pdl.base, "model"),
            rows=len(frame),
        )
        return self.schema.decode_target(pred) if labels else pred


def write_bundle(
    out: Path, pdl: PointerDecisionList, *, schema: Schema, loss: Loss, store: Path, meta: Mapping[str, Any]
) -> Path:
    """Write ``pdl`` as a bundle directory; model files are copied from ``store``."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise InputError(f"the bundle directory {str(out)!r} exists and is not empty", fix="pass a new directory")
    (out / "models").mkdir(parents=True, exist_ok=True)
    digests = {}
    for file in pdl.model_files():
        shutil.copyfile(store / file, out / "models" / file)
        digests[file] = _sha256(out / "models" / file)
    document = {
        "format": BUNDLE_FORMAT,
        "schema": schema.to_dict(),
        "loss": loss.spec,
        "version": pdl.version,
        "pdl": pdl.to_dict(),
        "sha256": digests,
        **dict(meta),
    }
    (out / "bundle.json").write_text(json.dumps(document, indent=2), encoding="utf-8")
    return out


def load_bundle(path: str | Path) -> Bundle:
    """Load a bundle written by ``groupwise bounty export`` and check its files' digests.

    Raises
    ------
    InputError
        The directory is not a bundle, or a model file is missing or altered.
    """
    root = Path(path)
    doc_path = root / "bundle.json"
    if not doc_path.is_file():
        raise InputError(f"{str(root)!r} is not a bundle (no bundle.json)", fix="pass a directory written by `groupwise bounty export`")
    try:
        document = json.loads(doc_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"bundle.json in {str(root)!r} is not valid JSON ({exc})", fix="export the bundle again") from None
    if document.get("format") != BUNDLE_FORMAT:
        raise InputError(f"{str(root)!r} has bundle format {document.get('format')!r}", fix=f"use a {BUNDLE_FORMAT} bundle")
    schema = Schema.from_dict(document["schema"])
    pdl = PointerDecisionList.from_dict(document["pdl"])
    for file in pdl.model_files():
        model_path = root / "models" / file
        if Path(file).name != file or not model_path.is_file():
            raise InputError(f"the bundle lacks the model file {file!r}", fix="export the bundle again")
        if _sha256(model_path) != document["sha256"].get(file):
            raise InputError(f"the model file {file!r} does not match the digest in bundle.json", fix="export the bundle again; it was altered")
    loss = parse_loss(document["loss"], task=schema.task)
    meta = {k: v for k, v in document.items() if k not in ("schema", "pdl", "sha256", "loss")}
    return Bundle(root, schema, loss, pdl, meta)


def predictions_frame(bundle: Bundle, data: Any) -> pd.DataFrame:
    """The input rows' predictions as a one-column frame named after the target."""
    return pd.DataFrame({f"predicted_{bundle.schema.target}": bundle.predict(data)})
