"""Automated bounty hunters: baselines, and a way for auditors to find weak groups.

Every hunter works on the **public training split only** (never the holdout, and not the
public test split either, which stays clean for what the program shows). It splits the
training rows once, by its seed, into two halves and *cross-fits*: a model fitted on one
half predicts the other, so every training row gets an out-of-sample prediction of each
candidate model h. The estimated score of a pair (g, h) is then the checker's own
quantity,

    est(g, h) = mu(g) * (L(f, g) - L(h, g)) = (1/n) * sum over rows in g of (loss_f - loss_h),

with loss_h the out-of-sample loss, together with its standard error ``se``. A pair is
submitted only when ``est - margin * se >= 3 eps / 4`` (the checker's threshold). Among
the pairs that clear it, the one whose group gains most within itself goes first: the
largest ``L(f, g) - L(h, g)`` (``est / mu(g)``), the group the current model serves worst
relative to what h achieves, and usually a more specific group than the one with the
largest mass-weighted score, so one submission does not take every improvement at once.
After each acceptance the remaining candidates are re-estimated against the new model,
and a candidate that no longer clears the bar is dropped. A hunter never submits more
than its budget. The submitted h is refitted on all the training rows it was estimated
for (at least as good, in expectation, as the half-data fits behind ``est``).

``demographic``
    Groups from one or two features of the hunter's focus: one per category value;
    ``<=`` / ``>`` at the 20/40/60/80 % quantiles of a number (and ``> 0`` for a
    mostly-zero one) and the brackets between neighbouring cuts (``33 < age <= 41``);
    and every conjunction of two such conditions on different features. All groups
    are scored at once (a mask matrix times a loss vector) with a reference model h0
    fitted on all the training rows; the most promising are then given their own h,
    fitted on the group's rows only, and each group keeps whichever h estimates better.
``csc``
    The cost-sensitive-classification certificate finder of Globus-Harris, Kearns and
    Roth (FAccT 2022): for candidate models h (a model of the hunter's kind fitted on all
    training rows, one fitted on rows reweighted towards the current model's mistakes,
    and one of the other kind), regress the current model's loss and h's loss on the
    features on one half of the rows; g is where h's predicted loss is lower. g is
    submitted as a group model (an ONNX classifier made of the two regressors) or as a
    group expression read off a depth-3 regression tree of the loss difference (the union
    of the paths to its positive leaves, or one such path alone), whichever estimates
    better on the other half.
``tree``
    A shallow regression tree of the current model's loss on the focus features; its
    nodes with the largest excess loss become group expressions (the conjunction of the
    splits on the way down), each given an h as in ``demographic``.

Models the hunters fit are exported to ONNX, so what they submit is data, like anyone's.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from groupwise._errors import InputError
from groupwise._expr import parse_group
from groupwise._validation import check_choice, check_scalar
from groupwise.bounty._export import to_onnx_file
from groupwise.bounty._program import Program, SubmissionResult
from groupwise.bounty._schema import Feature, Schema

__all__ = ["STRATEGIES", "Candidate", "hunt"]

STRATEGIES = ("demographic", "csc", "tree")
MODELS = ("gbm", "tree")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_QUANTILES = (0.2, 0.4, 0.6, 0.8)


@dataclass
class Candidate:
    """A proposed (g, h) with its estimated score on held-out public training rows.

    Attributes
    ----------
    group : str or None
        The group expression (``None`` when the group is a model).
    group_model : Path or None
        The group model file, once written (csc certificates).
    model : Path or None
        The model file of h, once written (just before it is submitted).
    gain : float
        Estimated mass-weighted improvement ``mu(g) * (L(f, g) - L(h, g))`` over the
        current model, on public training rows that h (and g) were not fitted on.
    columns : tuple of str
        The features the group is defined by.
    se : float
        Standard error of ``gain``.
    source : str
        How h was made (``fit on g``, ``fit on all``, ...).
    """

    group: str | None
    group_model: Path | None
    model: Path | None
    gain: float
    columns: tuple[str, ...]
    se: float = 0.0
    source: str = ""
    mask: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, bool), repr=False)
    pred: npt.NDArray[Any] = field(default_factory=lambda: np.zeros(0), repr=False)
    rows: npt.NDArray[np.bool_] | None = field(default=None, repr=False)
    fit_rows: npt.NDArray[np.bool_] | None = field(default=None, repr=False)
    weights: npt.NDArray[np.float64] | None = field(default=None, repr=False)
    kind: str = field(default="gbm", repr=False)
    estimator: Any = field(default=None, repr=False)
    certificate: Any = field(default=None, repr=False)

    @property
    def gap(self) -> float:
        """Estimated improvement within the group, ``L(f, g) - L(h, g)`` (``gain / mu(g)``)."""
        rows = self.mask if self.rows is None else self.mask[self.rows]
        mu = float(rows.mean()) if rows.size else 0.0
        return self.gain / mu if mu > 0 else 0.0

    @property
    def key(self) -> str:
        if self.group is not None:
            return f"expr:{self.group}"
        return "mask:" + hashlib.sha256(np.packbits(self.mask).tobytes()).hexdigest()[:16]


# ---------------------------------------------------------------------------
# group expressions
# ---------------------------------------------------------------------------


def _name(column: str) -> str:
    return column if _IDENT.match(column) else f"`{column}`"


def _literal(value: str) -> str:
    return json.dumps(value)


def _number(value: float) -> str:
    return f"{float(value):.10g}"


def _condition(feature: Feature, op: str, value: Any) -> str:
    if feature.kind == "categorical":
        if op in ("in", "not in"):
            return f"{_name(feature.name)} {op} [{', '.join(_literal(v) for v in value)}]"
        return f"{_name(feature.name)} {op} {_literal(value)}"
    return f"{_name(feature.name)} {op} {_number(value)}"


def _render_path(path: Sequence[tuple[int, bool, float]], features: Sequence[Feature]) -> str:
    """The conjunction of a tree path's splits ``(feature, went_left, threshold)``, simplified.

    A numeric feature keeps its tightest bounds; a categorical one (split on its codes)
    the values still allowed, written as ``==``, ``in`` or ``not in``, whichever is shorter.
    """
    bounds: dict[int, list[float]] = {}
    allowed: dict[int, set[int]] = {}
    order: list[int] = []
    for j, left, threshold in path:
        if j not in order:
            order.append(j)
        feature = features[j]
        if feature.kind == "categorical":
            codes = allowed.setdefault(j, set(range(len(feature.categories))))
            allowed[j] = {c for c in codes if (c <= threshold) == left}
        else:
            low, high = bounds.setdefault(j, [-np.inf, np.inf])
            bounds[j] = [low, min(high, threshold)] if left else [max(low, threshold), high]
    parts = []
    for j in order:
        feature = features[j]
        if feature.kind == "categorical":
            values = [feature.categories[c] for c in sorted(allowed[j])]
            others = [v for v in feature.categories if v not in values]
            if not others:
                continue
            if len(values) == 1:
                parts.append(_condition(feature, "==", values[0]))
            elif len(others) == 1:
                parts.append(_condition(feature, "!=", others[0]))
            elif len(others) < len(values):
                parts.append(_condition(feature, "not in", others))
            else:
                parts.append(_condition(feature, "in", values))
        else:
            low, high = bounds[j]
            if np.isfinite(low):
                parts.append(_condition(feature, ">", low))
            if np.isfinite(high):
                parts.append(_condition(feature, "<=", high))
    return " and ".join(parts)


def _tree_paths(reg: Any) -> list[tuple[int, list[tuple[int, bool, float]]]]:
    """Every node but the root of a fitted sklearn tree, with its path of splits."""
    tree = reg.tree_
    out: list[tuple[int, list[tuple[int, bool, float]]]] = []

    def walk(node: int, path: list[tuple[int, bool, float]]) -> None:
        if path:
            out.append((node, path))
        if tree.children_left[node] < 0:
            return
        j, threshold = int(tree.feature[node]), float(tree.threshold[node])
        walk(int(tree.children_left[node]), [*path, (j, True, threshold)])
        walk(int(tree.children_right[node]), [*path, (j, False, threshold)])

    walk(0, [])
    return out


def _positive_region(reg: Any, features: Sequence[Feature], minimum_value: float = 0.0) -> list[str]:
    """Group expressions for the leaves of a regression tree predicting more than ``minimum_value``.

    Sibling leaves that are both in the region merge into their parent, so the region is
    the union of as few tree paths as the tree allows. Returns the union (``or``) first,
    then each path by itself when there are several; empty when the region is empty or
    is everything.
    """
    tree = reg.tree_

    def region(node: int, path: list[tuple[int, bool, float]]) -> tuple[str, list[list[tuple[int, bool, float]]]]:
        if tree.children_left[node] < 0:
            inside = float(tree.value[node].ravel()[0]) > minimum_value
            return ("all" if inside else "none"), ([path] if inside else [])
        j, threshold = int(tree.feature[node]), float(tree.threshold[node])
        left = region(int(tree.children_left[node]), [*path, (j, True, threshold)])
        right = region(int(tree.children_right[node]), [*path, (j, False, threshold)])
        if left[0] == "all" and right[0] == "all":
            return "all", [path]
        if left[0] == "none" and right[0] == "none":
            return "none", []
        return "some", left[1] + right[1]

    kind, paths = region(0, [])
    if kind != "some":
        return []
    rendered = [_render_path(p, features) for p in paths]
    if len(rendered) == 1:
        return rendered
    return [" or ".join(f"({r})" if " and " in r else r for r in rendered), *rendered]


# ---------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------


def _fit(
    X: npt.NDArray[np.float32], y: npt.NDArray[Any], task: str, kind: str, seed: int,
    weights: npt.NDArray[np.float64] | None = None,
) -> Any:
    """Fit h: gradient boosting (``gbm``) or one decision tree (``tree``). ``None`` if one class only."""
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    if task == "classification" and np.unique(y).size < 2:
        return None  # one class only: nothing to learn that exports as a classifier
    if kind == "tree":
        cls = DecisionTreeClassifier if task == "classification" else DecisionTreeRegressor
        model = cls(max_depth=6, min_samples_leaf=20, random_state=seed)
    else:
        cls = GradientBoostingClassifier if task == "classification" else GradientBoostingRegressor
        model = cls(n_estimators=60, max_depth=5, min_samples_leaf=5, random_state=seed)
    return model.fit(X, y, sample_weight=weights)


# Reference fits (h0 on all training rows) depend only on the training data, the model kind
# and the seed, not on the current model: kept across hunts on the same data.
_REFERENCE: dict[tuple[str, ...], dict[str, Any]] = {}


class _Hunter:
    def __init__(self, program: Program, *, team: str, features: Sequence[str] | None, seed: int, model_kind: str,
                 workdir: Path, margin: float, threshold: float, certificate: str = "auto") -> None:
        self.program = program
        self.schema: Schema = program.schema
        self.team = team
        self.focus = list(features) if features else self.schema.names
        for name in self.focus:
            if name not in self.schema.names:
                raise InputError(f"the feature {name!r} is not in the program's schema", fix=f"use some of {', '.join(self.schema.names)}")
        self.seed = seed
        self.model_kind = model_kind
        self.workdir = workdir
        self.margin = margin
        self.threshold = threshold
        self.certificate = certificate
        self.count = 0
        self.minimum = int(program.config["min_group_size"])
        self.X = program.X("train")
        self.y = program.y("train")
        self.frame = program.frame("train")
        self.n = len(self.y)
        digest = hashlib.sha256(np.ascontiguousarray(self.X).tobytes())
        digest.update(np.ascontiguousarray(self.y).tobytes())
        digest.update(self.schema.task.encode())
        self.fingerprint = digest.hexdigest()
        # Two halves of the training rows, fixed by the seed: fit on one, estimate on the other.
        self.half = (np.random.default_rng(seed).permutation(self.n) % 2).astype(bool)
        self.tried = self._rejected_here()
        self._loss_version = -1
        self._loss_f: npt.NDArray[np.float64] = np.zeros(0)

    def _rejected_here(self) -> set[str]:
        """Groups this team already had rejected at the current version: nothing has changed for them."""
        out = set()
        for record in self.program.records:
            if (record["type"] == "submission" and record["team"] == self.team and record["decision"] == "rejected"
                    and record["version_before"] == self.program.version and "expr" in record["group"]):
                out.add(f"expr:{record['group']['expr']}")
        return out

    # -- estimates ----------------------------------------------------------------------

    @property
    def loss_f(self) -> npt.NDArray[np.float64]:
        """Per-row loss of the current model on the training split (recomputed after an acceptance)."""
        if self._loss_version != self.program.version:
            self._loss_f = self.program.loss(self.y, self.program.predict_public("train"))
            self._loss_version = self.program.version
        return self._loss_f

    def estimate(self, mask: npt.NDArray[np.bool_], pred: npt.NDArray[Any], rows: npt.NDArray[np.bool_] | None) -> tuple[float, float]:
        """Mass-weighted improvement of ``pred`` over the current model on ``mask``, over ``rows``."""
        inside = mask if rows is None else mask & rows
        count = self.n if rows is None else int(rows.sum())
        d = np.zeros(count)
        sel = inside if rows is None else inside[rows]
        d[sel] = self.loss_f[inside] - self.program.loss(self.y[inside], pred[inside])
        gain = float(d.sum() / count)
        se = float(d.std(ddof=1) / np.sqrt(count)) if count > 1 else float("inf")
        return gain, se

    def reestimate(self, candidate: Candidate) -> None:
        candidate.gain, candidate.se = self.estimate(candidate.mask, candidate.pred, candidate.rows)

    def viable(self, candidate: Candidate) -> bool:
        return candidate.gain - self.margin * candidate.se >= self.threshold

    def crossfit(self, rows: npt.NDArray[np.bool_], kind: str, weights: npt.NDArray[np.float64] | None = None) -> npt.NDArray[Any] | None:
        """Out-of-sample predictions on ``rows``: each half predicted by a fit on the other half."""
        pred = np.zeros(self.n, dtype=self.y.dtype)
        for part in (False, True):
            fit_rows, out_rows = rows & (self.half != part), rows & (self.half == part)
            if fit_rows.sum() < 2 or not out_rows.any():
                return None
            model = _fit(self.X[fit_rows], self.y[fit_rows], self.schema.task, kind, self.seed,
                         None if weights is None else weights[fit_rows])
            if model is None:
                return None
            pred[out_rows] = model.predict(self.X[out_rows])
        return pred

    def _reference_entry(self, kind: str) -> dict[str, Any]:
        key = (self.fingerprint, kind, str(self.seed))
        if key not in _REFERENCE:
            if len(_REFERENCE) >= 8:
                _REFERENCE.pop(next(iter(_REFERENCE)))
            _REFERENCE[key] = {}
        return _REFERENCE[key]

    def reference(self, kind: str | None = None) -> npt.NDArray[Any]:
        """Cross-fitted predictions of h0, a model of ``kind`` fitted on all training rows."""
        entry = self._reference_entry(kind or self.model_kind)
        if "pred" not in entry:
            pred = self.crossfit(np.ones(self.n, bool), kind or self.model_kind)
            if pred is None:  # a single class in a half: h0 cannot be fitted, so it is the current model
                return self.program.predict_public("train").copy()
            entry["pred"] = pred
        return entry["pred"]

    def full_model(self, kind: str, rows: npt.NDArray[np.bool_], weights: npt.NDArray[np.float64] | None) -> Any:
        """h refitted on all its rows (h0 is fitted once and kept)."""
        everything = bool(rows.all()) and weights is None
        entry = self._reference_entry(kind) if everything else {}
        if "model" not in entry:
            entry["model"] = _fit(self.X[rows], self.y[rows], self.schema.task, kind, self.seed,
                                  None if weights is None else weights[rows])
        return entry["model"]

    def for_group(self, group: str, mask: npt.NDArray[np.bool_], columns: tuple[str, ...]) -> Candidate | None:
        """The better of h fitted on g's rows and h0 fitted on all rows, with its estimate."""
        options = []
        ref = Candidate(group, None, None, 0.0, columns, source="fit on all", mask=mask, pred=self.reference(),
                        fit_rows=np.ones(self.n, bool), kind=self.model_kind)
        options.append(ref)
        if mask.sum() >= 4 * self.minimum and not mask.all():
            pred = self.crossfit(mask, self.model_kind)
            if pred is not None:
                options.append(Candidate(group, None, None, 0.0, columns, source="fit on g", mask=mask, pred=pred,
                                         fit_rows=mask, kind=self.model_kind))
        for option in options:
            self.reestimate(option)
        best = max(options, key=lambda c: c.gain - self.margin * c.se)
        return best

    def group_masks(self, groups: Sequence[str]) -> list[tuple[str, npt.NDArray[np.bool_], tuple[str, ...]]]:
        out = []
        for group in groups:
            if f"expr:{group}" in self.tried:
                continue
            expr = parse_group(group, columns=self.schema.names)
            mask = expr.evaluate(self.frame)
            if self.minimum <= mask.sum() < self.n:
                out.append((group, mask, expr.columns))
        return out

    # -- strategies ---------------------------------------------------------------------

    def conditions(self) -> list[tuple[str, npt.NDArray[np.bool_], str]]:
        """One-feature conditions of the focus: category values and quantile thresholds."""
        out = []
        for name in self.focus:
            feature = self.schema[name]
            column = self.frame[name]
            if feature.kind == "categorical":
                codes = column.cat.codes.to_numpy()
                for code, value in enumerate(feature.categories):
                    mask = codes == code
                    if self.minimum <= mask.sum() <= self.n - self.minimum:
                        out.append((_condition(feature, "==", value), mask, name))
                continue
            values = column.to_numpy()
            cuts = set(np.quantile(values, _QUANTILES, method="lower").tolist())
            if (values > 0).mean() < 0.5:
                cuts.add(0.0)
            cuts = sorted(cuts)
            for cut in cuts:
                for op, mask in (("<=", values <= cut), (">", values > cut)):
                    if self.minimum <= mask.sum() <= self.n - self.minimum:
                        out.append((_condition(feature, op, cut), mask, name))
            # The brackets between neighbouring cuts ("33 < age <= 41").
            for low, high in zip(cuts, cuts[1:]):
                mask = (values > low) & (values <= high)
                if self.minimum <= mask.sum() <= self.n - self.minimum:
                    out.append((f"{_number(low)} < {_name(name)} <= {_number(high)}", mask, name))
        return out

    def demographic(self, shortlist: int) -> list[Candidate]:
        singles = self.conditions()
        texts = [text for text, _, _ in singles]
        masks = [mask for _, mask, _ in singles]
        columns = [(name,) for _, _, name in singles]
        for a in range(len(singles)):
            for b in range(a + 1, len(singles)):
                if singles[a][2] == singles[b][2]:
                    continue
                mask = singles[a][1] & singles[b][1]
                if mask.sum() >= self.minimum:
                    texts.append(f"{singles[a][0]} and {singles[b][0]}")
                    masks.append(mask)
                    columns.append((singles[a][2], singles[b][2]))
        keep = [i for i, t in enumerate(texts) if f"expr:{t}" not in self.tried]
        if not keep:
            return []
        matrix = np.stack([masks[i] for i in keep]).astype(np.float32)
        # Screening, all groups at once: the estimated score of h0 (one model on all rows),
        # and the current model's excess loss in the group (where a specialist may help).
        ref_loss = self.program.loss(self.y, self.reference())
        screen = matrix @ (self.loss_f - ref_loss).astype(np.float32) / self.n
        excess = matrix @ (self.loss_f - self.loss_f.mean()).astype(np.float32) / self.n
        # The groups h0 improves most within (largest gap) among those whose mass-weighted
        # score comes near the bar, then the largest scores and the largest excess losses.
        gap = np.where(screen >= self.threshold / 2, screen / matrix.mean(axis=1), -np.inf)
        chosen = [int(i) for i in np.argsort(-gap, kind="stable")[:shortlist] if np.isfinite(gap[i])]
        for order in (np.argsort(-screen, kind="stable"), np.argsort(-excess, kind="stable")):
            chosen += [int(i) for i in order if int(i) not in chosen][: max(1, shortlist // 4)]
        out = []
        for i in chosen:
            j = keep[i]
            candidate = self.for_group(texts[j], masks[j], columns[j])
            if candidate is not None:
                out.append(candidate)
        return out

    def tree(self, shortlist: int) -> list[Candidate]:
        from sklearn.tree import DecisionTreeRegressor

        index = [self.schema.names.index(n) for n in self.focus]
        features = [self.schema[n] for n in self.focus]
        leaf = max(self.minimum, self.n // 50)
        reg = DecisionTreeRegressor(max_depth=4, min_samples_leaf=leaf, random_state=self.seed)
        reg.fit(self.X[:, index], self.loss_f)
        # Nodes by excess loss (mass-weighted), leaves and inner nodes alike.
        mean = float(self.loss_f.mean())
        nodes = []
        for node, path in _tree_paths(reg):
            value = float(reg.tree_.value[node].ravel()[0])
            weight = float(reg.tree_.n_node_samples[node]) / self.n
            if value > mean:
                nodes.append((weight * (value - mean), _render_path(path, features)))
        nodes.sort(reverse=True)
        groups = list(dict.fromkeys(text for _, text in nodes if text))
        out = []
        for group, mask, columns in self.group_masks(groups)[:shortlist]:
            candidate = self.for_group(group, mask, columns)
            if candidate is not None:
                out.append(candidate)
        return out

    def csc(self, shortlist: int) -> list[Candidate]:
        from sklearn.tree import DecisionTreeRegressor

        other = "tree" if self.model_kind == "gbm" else "gbm"
        variants: list[tuple[str, str, npt.NDArray[np.float64] | None]] = [
            (f"{self.model_kind} on all rows", self.model_kind, None),
            (f"{self.model_kind} on rows reweighted to f's mistakes", self.model_kind, 1.0 + 3.0 * self.loss_f),
            (f"{other} on all rows", other, None),
        ]
        index = [self.schema.names.index(n) for n in self.focus]
        features = [self.schema[n] for n in self.focus]
        fit_half, est_half = ~self.half, self.half
        leaf = max(self.minimum, self.n // 100)
        out = []
        for source, kind, weights in variants[: max(1, shortlist)]:
            if weights is None and kind == self.model_kind:
                pred = self.reference()
            elif weights is None:
                pred = self.reference(kind)
            else:
                pred = self.crossfit(np.ones(self.n, bool), kind, weights)
            if pred is None:
                continue
            loss_h = self.program.loss(self.y, pred)
            X_fit = self.X[fit_half]
            # The certificate of the paper: regress both losses, g = where h's is predicted lower.
            r_f = DecisionTreeRegressor(max_depth=5, min_samples_leaf=leaf, random_state=self.seed).fit(X_fit, self.loss_f[fit_half])
            r_h = DecisionTreeRegressor(max_depth=5, min_samples_leaf=leaf, random_state=self.seed).fit(X_fit, loss_h[fit_half])
            mask = r_h.predict(self.X) < r_f.predict(self.X)
            if self.certificate != "expression" and self.minimum <= mask.sum() < self.n:
                candidate = Candidate(None, None, None, 0.0, tuple(self.schema.names), source=f"csc: {source}", mask=mask,
                                      pred=pred, rows=est_half, fit_rows=np.ones(self.n, bool), weights=weights, kind=kind,
                                      certificate=(r_f, r_h))
                self.reestimate(candidate)
                out.append(candidate)
            # The same certificate as an expression: a depth-3 tree of the loss difference.
            r_d = DecisionTreeRegressor(max_depth=3, min_samples_leaf=2 * leaf, random_state=self.seed)
            r_d.fit(self.X[fit_half][:, index], (self.loss_f - loss_h)[fit_half])
            # The whole region, and each of its paths alone (a smaller group with the same h).
            regions = [] if self.certificate == "model" else _positive_region(r_d, features)
            for group, mask, columns in self.group_masks(regions):
                candidate = Candidate(group, None, None, 0.0, columns, source=f"csc: {source}", mask=mask, pred=pred,
                                      rows=est_half, fit_rows=np.ones(self.n, bool), weights=weights, kind=kind)
                self.reestimate(candidate)
                out.append(candidate)
        return out

    # -- submitting ---------------------------------------------------------------------

    def path(self, stem: str) -> Path:
        self.count += 1
        return self.workdir / f"{stem}_{self.count}.onnx"

    def materialize(self, candidate: Candidate) -> bool:
        """Refit h on all its rows and write the ONNX files of h (and of g, if a model)."""
        if candidate.model is None:
            rows = candidate.fit_rows if candidate.fit_rows is not None else np.ones(self.n, bool)
            model = self.full_model(candidate.kind, rows, candidate.weights)
            if model is None:
                return False
            candidate.estimator = model
            candidate.model = to_onnx_file(model, len(self.schema.features), self.path("h"))
        if candidate.group is None and candidate.group_model is None:
            r_f, r_h = candidate.certificate
            candidate.group_model = _certificate_onnx(r_f, r_h, len(self.schema.features), self.path("g"))
        return True

    def submit(self, candidate: Candidate) -> SubmissionResult | None:
        self.tried.add(candidate.key)
        if not self.materialize(candidate):
            return None
        assert candidate.model is not None
        if candidate.group is not None:
            return self.program.submit(team=self.team, group=candidate.group, model=candidate.model)
        return self.program.submit(team=self.team, group_model=candidate.group_model, model=candidate.model)


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
    strategy: Literal["demographic", "csc", "tree", "slices"] = "demographic",
    budget: int = 10,
    team: str | None = None,
    features: Sequence[str] | None = None,
    seed: int = 0,
    model: Literal["gbm", "tree"] = "gbm",
    min_gain: float | None = None,
    margin: float = 1.0,
    shortlist: int = 8,
    certificate: Literal["auto", "model", "expression"] = "auto",
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
        Seeds the split of the training rows into halves and the model fits.
    model : {"gbm", "tree"}
        What h is: gradient boosting or a single decision tree.
    min_gain : float, optional
        The score a candidate must be estimated to clear (default ``3 * eps / 4``, the
        checker's threshold).
    margin : float
        How many standard errors above ``min_gain`` the estimate must be.
    shortlist : int
        How many groups per search get a model of their own (demographic, tree) or how
        many candidate models the certificate finder tries (csc, at most 3).
    certificate : {"auto", "model", "expression"}
        For ``csc``: submit g as a group model (an ONNX classifier), as a group
        expression, or whichever estimates better (``auto``).
    workdir : path, optional
        Where the hunter's ONNX files are written (default: a temporary directory).

    Returns
    -------
    list of SubmissionResult
        One per submission made, in order. Empty when no candidate cleared the bar.
    """
    strategy = check_choice(strategy, "strategy", STRATEGIES, caller="hunt")
    check_scalar(budget, "budget", int, caller="hunt", min_val=1)
    check_scalar(seed, "seed", int, caller="hunt", min_val=0)
    check_scalar(shortlist, "shortlist", int, caller="hunt", min_val=1)
    check_scalar(margin, "margin", float, caller="hunt", min_val=0.0)
    if min_gain is not None:
        check_scalar(min_gain, "min_gain", (int, float), caller="hunt", min_val=0.0)
    model = check_choice(model, "model", MODELS, caller="hunt")
    certificate = check_choice(certificate, "certificate", ("auto", "model", "expression"), caller="hunt")
    threshold = 0.75 * program.state.epsilon if min_gain is None else float(min_gain)
    results: list[SubmissionResult] = []
    with tempfile.TemporaryDirectory(prefix="groupwise-hunt-") as tmp:
        folder = Path(workdir) if workdir else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        hunter = _Hunter(program, team=team or f"hunter-{strategy}", features=features, seed=seed, model_kind=model,
                         workdir=folder, margin=margin, threshold=threshold, certificate=certificate)
        search = getattr(hunter, strategy)
        pool: list[Candidate] = []
        fresh = False
        while len(results) < budget and not program.state.exhausted:
            if not pool:
                if fresh:
                    break  # a new search found nothing worth submitting
                pool, fresh = [c for c in search(shortlist) if c.key not in hunter.tried], True
            for candidate in pool:
                hunter.reestimate(candidate)  # against the current model, which may have changed
            pool = sorted((c for c in pool if hunter.viable(c) and c.key not in hunter.tried), key=lambda c: -c.gap)
            if not pool:
                if fresh:
                    break
                continue
            candidate = pool.pop(0)
            result = hunter.submit(candidate)
            if result is not None:
                results.append(result)
                if result.accepted:
                    fresh = False  # the model changed: a new search may find new groups
    return results


from groupwise.bounty._slices_hunter import register as _register_slices; _register_slices()  # noqa: E402,E702 - the slices strategy
