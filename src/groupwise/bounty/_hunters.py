"""Automated bounty hunters: baselines, and a way for auditors to find weak groups.

Three strategies, all working on the public splits only and submitting through the same
checker as people do:

``demographic``
    Groups defined by one or two features (a category, or the lower or upper quarter of
    a number, and pairwise conjunctions of those). For the groups where the current
    model does worst on the public training split, fit h on the training rows of the
    group and submit the pairs with the largest improvement on the public test split.
``csc``
    The cost-sensitive-classification certificate finder of Globus-Harris, Kearns and
    Roth: for a candidate model h, fit two regression trees that predict the loss of the
    current model and of h from the features; g is where h's predicted loss is lower. g
    is submitted as an ONNX classifier built from the two regressors.
``tree``
    A regression tree that predicts the current model's loss; its worst leaves become
    group expressions (the conjunction of the splits on the way to the leaf).

Models the hunters fit are exported to ONNX, so what they submit is data, like anyone's.
"""

from __future__ import annotations

import itertools
import json
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from groupwise._errors import InputError
from groupwise._expr import parse_group
from groupwise._io import check_scalar
from groupwise.bounty._export import to_onnx_file
from groupwise.bounty._program import Program, SubmissionResult
from groupwise.bounty._schema import Feature, Schema

__all__ = ["STRATEGIES", "Candidate", "hunt"]

STRATEGIES = ("demographic", "csc", "tree")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class Candidate:
    """A proposed (g, h) with its estimated gain on the public test split."""

    group: str | None
    group_model: Path | None
    model: Path
    gain: float
    columns: tuple[str, ...]


def _name(column: str) -> str:
    return column if _IDENT.match(column) else f"`{column}`"


def _literal(value: str) -> str:
    return json.dumps(value)


def _condition(feature: Feature, op: str, value: Any) -> str:
    if feature.kind == "categorical":
        if op == "in":
            return f"{_name(feature.name)} in [{', '.join(_literal(v) for v in value)}]"
        return f"{_name(feature.name)} == {_literal(value)}"
    return f"{_name(feature.name)} {op} {float(value):g}"


def _single_conditions(schema: Schema, program: Program, focus: Sequence[str], minimum: int) -> list[str]:
    frame = program.frame("train")
    out = []
    for name in focus:
        feature = schema[name]
        if feature.kind == "categorical":
            counts = frame[name].value_counts()
            out += [_condition(feature, "==", v) for v, c in counts.items() if c >= minimum]
        else:
            values = frame[name].to_numpy()
            low, high = np.quantile(values, [0.25, 0.75])
            if low > values.min():
                out.append(_condition(feature, "<=", low))
            if high < values.max():
                out.append(_condition(feature, ">", high))
            if (values > 0).mean() < 0.5 and (values > 0).sum() >= minimum:
                out.append(_condition(feature, ">", 0))
    return out


def _fit(X: npt.NDArray[np.float32], y: npt.NDArray[Any], task: str, kind: str, seed: int) -> Any:
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    if task == "classification" and np.unique(y).size < 2:
        return None  # one class only: nothing to learn that exports as a classifier
    if kind == "tree":
        cls = DecisionTreeClassifier if task == "classification" else DecisionTreeRegressor
        return cls(max_depth=6, min_samples_leaf=10, random_state=seed).fit(X, y)
    cls = GradientBoostingClassifier if task == "classification" else GradientBoostingRegressor
    return cls(n_estimators=60, max_depth=3, random_state=seed).fit(X, y)


class _Hunter:
    def __init__(self, program: Program, *, team: str, features: Sequence[str] | None, seed: int, model_kind: str, workdir: Path) -> None:
        self.program = program
        self.schema = program.schema
        self.team = team
        self.focus = list(features) if features else self.schema.names
        for name in self.focus:
            if name not in self.schema.names:
                raise InputError(f"the feature {name!r} is not in the program's schema", fix=f"use some of {', '.join(self.schema.names)}")
        self.seed = seed
        self.model_kind = model_kind
        self.workdir = workdir
        self.count = 0
        self.minimum = int(program.config["min_group_size"])
        self.tried: set[str] = set()

    def path(self, stem: str) -> Path:
        self.count += 1
        return self.workdir / f"{stem}_{self.count}.onnx"

    def public_gain(self, mask_test: npt.NDArray[np.bool_], pred_test: npt.NDArray[Any]) -> float:
        p = self.program
        y = p.y("test")
        current = p.loss(y, p.predict_public("test"))
        candidate = p.loss(y, pred_test)
        return float((current[mask_test] - candidate[mask_test]).sum() / y.size)

    def fit_on_group(self, group: str) -> Candidate | None:
        p = self.program
        expr = parse_group(group, columns=self.schema.names)
        train = expr.evaluate(p.frame("train"))
        test = expr.evaluate(p.frame("test"))
        if train.sum() < self.minimum or train.all() and test.all():
            return None
        model = _fit(p.X("train")[train], p.y("train")[train], self.schema.task, self.model_kind, self.seed)
        if model is None:
            return None
        gain = self.public_gain(test, model.predict(p.X("test")))
        path = to_onnx_file(model, len(self.schema.features), self.path("h"))
        return Candidate(group, None, path, gain, expr.columns)

    def submit(self, candidate: Candidate) -> SubmissionResult:
        key = candidate.group or str(candidate.group_model)
        self.tried.add(key)
        if candidate.group is not None:
            return self.program.submit(team=self.team, group=candidate.group, model=candidate.model)
        return self.program.submit(team=self.team, group_model=candidate.group_model, model=candidate.model)

    # -- strategies -------------------------------------------------------------------

    def demographic(self, shortlist: int) -> list[Candidate]:
        p = self.program
        singles = _single_conditions(self.schema, p, self.focus, self.minimum)
        groups = list(singles)
        for a, b in itertools.combinations(singles, 2):
            if parse_group(a).columns != parse_group(b).columns:
                groups.append(f"{a} and {b}")
        # Rank by the current model's excess training loss in the group (mass-weighted):
        # fitting h is the expensive part, so only the most promising groups get one.
        frame = p.frame("train")
        losses = p.loss(p.y("train"), p.predict_public("train"))
        overall = losses.mean()
        scored = []
        for group in groups:
            if group in self.tried:
                continue
            mask = parse_group(group).evaluate(frame)
            if mask.sum() < self.minimum:
                continue
            scored.append((float((losses[mask] - overall).sum()), group))
        scored.sort(reverse=True)
        out = []
        for _, group in scored[:shortlist]:
            candidate = self.fit_on_group(group)
            if candidate is not None:
                out.append(candidate)
        return out

    def tree(self, shortlist: int) -> list[Candidate]:
        from sklearn.tree import DecisionTreeRegressor

        p = self.program
        columns = [self.schema.names.index(n) for n in self.focus]
        X = p.X("train")[:, columns]
        losses = p.loss(p.y("train"), p.predict_public("train"))
        leaf = max(self.minimum, len(X) // 50)
        reg = DecisionTreeRegressor(max_depth=3, min_samples_leaf=leaf, random_state=self.seed).fit(X, losses)
        groups = [g for g in _leaf_expressions(reg, [self.schema[n] for n in self.focus]) if g not in self.tried]
        out = []
        for group in groups[:shortlist]:
            candidate = self.fit_on_group(group)
            if candidate is not None:
                out.append(candidate)
        return out

    def csc(self, shortlist: int) -> list[Candidate]:
        from sklearn.tree import DecisionTreeRegressor

        p = self.program
        X, y = p.X("train"), p.y("train")
        current = p.loss(y, p.predict_public("train"))
        out = []
        for k in range(shortlist):
            seed = self.seed + 1000 * k + len(self.tried)
            rng = np.random.default_rng(seed)
            # Candidates: models fit on bootstrap samples that weigh the current model's
            # mistakes more, so they differ from it where it is weak.
            weights = 1.0 + current * (1 + k)
            rows = rng.choice(len(X), size=len(X), p=weights / weights.sum())
            h = _fit(X[rows], y[rows], self.schema.task, self.model_kind, seed)
            if h is None:
                continue
            cand_loss = p.loss(y, h.predict(X))
            leaf = max(self.minimum, len(X) // 100)
            r_f = DecisionTreeRegressor(max_depth=4, min_samples_leaf=leaf, random_state=seed).fit(X, current)
            r_h = DecisionTreeRegressor(max_depth=4, min_samples_leaf=leaf, random_state=seed).fit(X, cand_loss)
            group_path = _certificate_onnx(r_f, r_h, len(self.schema.features), self.path("g"))
            mask_test = r_h.predict(p.X("test")) < r_f.predict(p.X("test"))
            mask_train = r_h.predict(X) < r_f.predict(X)
            if mask_train.sum() + mask_test.sum() < self.minimum:
                continue
            gain = self.public_gain(mask_test, h.predict(p.X("test")))
            model_path = to_onnx_file(h, len(self.schema.features), self.path("h"))
            out.append(Candidate(None, group_path, model_path, gain, tuple(self.schema.names)))
        return out


def _leaf_expressions(reg: Any, features: Sequence[Feature]) -> list[str]:
    """Group expressions of a regression tree's leaves, highest predicted loss first."""
    tree = reg.tree_
    leaves: list[tuple[float, str]] = []

    def walk(node: int, conditions: list[str]) -> None:
        if tree.children_left[node] < 0:
            if conditions:
                leaves.append((float(tree.value[node].ravel()[0]), " and ".join(conditions)))
            return
        feature = features[tree.feature[node]]
        threshold = float(tree.threshold[node])
        if feature.kind == "categorical":
            codes = np.arange(len(feature.categories))
            left = [feature.categories[c] for c in codes[codes <= threshold]]
            right = [feature.categories[c] for c in codes[codes > threshold]]
            walk(tree.children_left[node], [*conditions, _condition(feature, "in", left)])
            walk(tree.children_right[node], [*conditions, _condition(feature, "in", right)])
        else:
            walk(tree.children_left[node], [*conditions, f"{_name(feature.name)} <= {threshold:.6g}"])
            walk(tree.children_right[node], [*conditions, f"{_name(feature.name)} > {threshold:.6g}"])

    walk(0, [])
    leaves.sort(reverse=True)
    return [text for _, text in leaves]


def _certificate_onnx(r_f: Any, r_h: Any, n_features: int, path: Path) -> Path:
    """One ONNX classifier: label 1 where ``r_h(x) < r_f(x)`` (h predicted better)."""
    import onnx
    from onnx import TensorProto, helper

    with tempfile.TemporaryDirectory() as tmp:
        f_model = onnx.load(to_onnx_file(r_f, n_features, Path(tmp) / "f.onnx"))
        h_model = onnx.load(to_onnx_file(r_h, n_features, Path(tmp) / "h.onnx"))
    nodes, inits = [], []
    outs = []
    for prefix, model in (("f_", f_model), ("h_", h_model)):
        model = onnx.compose.add_prefix(model, prefix)
        nodes.append(helper.make_node("Identity", ["X"], [model.graph.input[0].name]))
        nodes.extend(model.graph.node)
        inits.extend(model.graph.initializer)
        outs.append(model.graph.output[0].name)
    nodes.append(helper.make_node("Less", [outs[1], outs[0]], ["better"]))
    nodes.append(helper.make_node("Cast", ["better"], ["label"], to=TensorProto.INT64))
    graph = helper.make_graph(
        nodes,
        "csc_certificate",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, n_features])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, [None, 1])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)])
    model.ir_version = f_model.ir_version
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def hunt(
    program: Program,
    *,
    strategy: str = "demographic",
    budget: int = 10,
    team: str | None = None,
    features: Sequence[str] | None = None,
    seed: int = 0,
    model: str = "gbm",
    min_gain: float | None = None,
    workdir: str | Path | None = None,
) -> list[SubmissionResult]:
    """Run an automated hunter that makes up to ``budget`` submissions.

    Parameters
    ----------
    program : Program
    strategy : {"demographic", "csc", "tree"}
    budget : int
        Most submissions to make.
    team : str, optional
        Name to submit under (default ``hunter-<strategy>``).
    features : sequence of str, optional
        The features the hunter may build groups from (its "focus"; default all).
    seed : int
    model : {"gbm", "tree"}
        What h is: gradient boosting or a single decision tree.
    min_gain : float, optional
        Submit only candidates whose improvement on the public test split is at least
        this (default ``eps / 2``).
    workdir : path, optional
        Where the hunter's ONNX files are written (default: a temporary directory).

    Returns
    -------
    list of SubmissionResult
    """
    if strategy not in STRATEGIES:
        raise InputError(f"the hunting strategy {strategy!r} is not known", fix=f"use one of {', '.join(STRATEGIES)}")
    check_scalar(budget, "budget", int, min_val=1)
    if model not in ("gbm", "tree"):
        raise InputError(f"the hunter model {model!r} is not known", fix="use gbm or tree")
    threshold = program.state.epsilon / 2 if min_gain is None else min_gain
    results: list[SubmissionResult] = []
    with tempfile.TemporaryDirectory(prefix="groupwise-hunt-") as tmp:
        hunter = _Hunter(program, team=team or f"hunter-{strategy}", features=features, seed=seed, model_kind=model,
                         workdir=Path(workdir) if workdir else Path(tmp))
        hunter.workdir.mkdir(parents=True, exist_ok=True)
        shortlist = max(3, min(2 * budget, 12))
        stale = 0
        while len(results) < budget and not program.state.exhausted and stale < 2:
            candidates = getattr(hunter, strategy)(shortlist)
            candidates = sorted((c for c in candidates if c.gain >= threshold), key=lambda c: -c.gain)
            if not candidates:
                break
            accepted_any = False
            for candidate in candidates:
                if len(results) >= budget or program.state.exhausted:
                    break
                # The model has changed after an acceptance: re-estimate before spending a query.
                if accepted_any and candidate.group is not None:
                    mask = parse_group(candidate.group).evaluate(program.frame("test"))
                    from groupwise.bounty._models import load_model

                    pred = load_model(candidate.model, program.schema).predict(program.X("test"))
                    if hunter.public_gain(mask, np.asarray(pred).ravel()) < threshold:
                        continue
                result = hunter.submit(candidate)
                results.append(result)
                accepted_any = accepted_any or result.accepted
                if result.accepted and strategy != "demographic":
                    break  # the other strategies fit to the current model: start afresh
            stale = 0 if accepted_any else stale + 1
    return results
