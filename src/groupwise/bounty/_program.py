"""A bias-bounty program: its directory, its append-only log and its submissions.

A program lives in one directory::

    program.json          what was configured at creation (schema, loss, eps, budget, limits)
    log.jsonl             append-only: one JSON line per event (init, every submission)
    public/               train and test splits (CSV for people, .npy for models)
    private/              the holdout and the holdout predictions of stored models
    store/                every model file accepted for checking, named by its SHA-256
    cache/                public-split predictions of stored models

The log is the source of truth: the current pointer decision list and the checker's budget
are a fold over it, so a program can be loaded, replayed and audited from the directory
alone, and a service can later keep the same records in a database. A log line is written
(and fsynced) only after the files it refers to are in place, so a crash leaves either the
old state or the new one.

Only :class:`Program` touches the holdout, and only through the checker; everything it
shows (errors, trajectories, improvements) is computed on the public test split.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import shutil
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from groupwise._errors import GroupwiseError, InputError
from groupwise._expr import parse_group
from groupwise._io import read_table
from groupwise._validation import check_choice, check_scalar
from groupwise.bounty._checker import CheckerState, Holdout, RepairScanCut, decide, exhausted_error, run_update
from groupwise.bounty._data import holdout_bound, split_data
from groupwise.bounty._loss import parse_loss
from groupwise.bounty._models import sniff_format
from groupwise.bounty._pdl import GroupRef, Node, PointerDecisionList, write_bundle
from groupwise.bounty._sandbox import Evaluation, HoldoutFailed, Limits, SandboxError, check_output
from groupwise.bounty._schema import Schema

__all__ = ["GroupSizeError", "Program", "SubmissionResult", "create_program", "error_kind"]

SPLITS = ("train", "test", "holdout")
PUBLIC = ("train", "test")
CHECK_REJECTED = (
    "the private holdout did not confirm an improvement of at least 3*eps/4 in mass-weighted loss "
    "over the current model on this group"
)

SCAN_CUT = (
    "the holdout's query budget ended during the repair scan that an accepted update needs, so the update "
    "was not applied (an unrepaired list is never published): "
)


@dataclass(frozen=True)
class SubmissionResult:
    """What a submitter learns about a submission, and what a service records. No holdout
    number is ever in it.

    Attributes
    ----------
    id : str
        The engine's id of the submission (``s00001``, ...), its place in the log.
    team : str
    decision : {"accepted", "rejected"}
    reason : str
        Why it was rejected: the input or limit problem in full (found on public data), or
        that the holdout did not confirm an improvement (without numbers).
    reason_kind : str
        ``input``, ``limit``, ``crash``, ``output``, ``group-size``, ``check``, ``exhausted``
        or ``""`` when accepted.
    version_before, version_after : int
        The model version the submission was checked against and the one it produced.
    repairs : int
        Repair nodes added after the update.
    test_loss_before, test_loss_after : float or None
        Overall loss on the public test split before and after (accepted only).
    group_test_loss_before, group_test_loss_after : float or None
        The group's loss on the public test split before and after (accepted only).
    reveal_at : float
        Unix time before which the decision must not be shown (0: at once).
    request_id : str or None
        The caller's id of the request (a service's job), as given to :meth:`Program.submit`.
    time : str
        When the engine decided (UTC, ISO 8601).
    group : dict
        ``{"expr": ...}`` or ``{"name": ..., "model": <stored file>}``.
    model_name, model_file : str
        The uploaded model's name and its stored file (SHA-256 of its bytes and format).
    nodes : tuple of dict
        The nodes the submission added (update, then repairs), as in the log.
    queries, acceptances : int
        The holdout's budget used after this submission.
    """

    id: str
    team: str
    decision: str
    reason: str
    reason_kind: str
    version_before: int
    version_after: int
    repairs: int = 0
    test_loss_before: float | None = None
    test_loss_after: float | None = None
    group_test_loss_before: float | None = None
    group_test_loss_after: float | None = None
    reveal_at: float = 0.0
    request_id: str | None = None
    time: str = ""
    group: dict[str, str] = field(default_factory=dict)
    model_name: str = ""
    model_file: str | None = None
    nodes: tuple[dict[str, Any], ...] = ()
    queries: int = 0
    acceptances: int = 0

    @property
    def accepted(self) -> bool:
        return self.decision == "accepted"

    @property
    def model_sha256(self) -> str | None:
        """SHA-256 of the model's bytes (None when it was refused before it was stored)."""
        return self.model_file.split(".", 1)[0] if self.model_file else None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["nodes"] = [dict(n) for n in self.nodes]
        return out

    @classmethod
    def from_record(cls, record: dict[str, Any], *, reveal_at: float = 0.0) -> SubmissionResult:
        """The result of a submission record of the log (as :meth:`Program.submit` returned it)."""
        public = record.get("public") or {}
        nodes = tuple(record.get("nodes", []))
        return cls(
            id=str(record["id"]), team=str(record["team"]), decision=str(record["decision"]), reason=str(record["reason"]),
            reason_kind=str(record["reason_kind"]), version_before=int(record["version_before"]),
            version_after=int(record["version_after"]), repairs=max(0, len(nodes) - 1),
            reveal_at=reveal_at, request_id=record.get("request_id"), time=str(record.get("time", "")),
            group=dict(record.get("group", {})), model_name=str(record.get("model", {}).get("name", "")),
            model_file=record.get("model", {}).get("file"), nodes=nodes,
            queries=int(record.get("checker", {}).get("queries", 0)), acceptances=int(record.get("checker", {}).get("acceptances", 0)),
            **{k: public.get(k) for k in ("test_loss_before", "test_loss_after", "group_test_loss_before", "group_test_loss_after")},
        )


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _display_name(source: Any, given: str | None, default: str) -> str:
    # A plain file name for logs and reasons: no directories, no control characters.
    name = given if given is not None else (default if isinstance(source, (bytes, bytearray, memoryview)) or source is None else Path(str(source)).name)
    name = "".join(ch for ch in Path(str(name)).name if ch.isprintable()).strip()[:120]
    return name or default


def _group_key(ref: GroupRef) -> str:
    return f"expr:{ref.expr}" if ref.expr is not None else f"model:{ref.model}"


class Program:
    """A bias-bounty program stored in a directory.

    Create one with :meth:`create`, open an existing one with :meth:`load`. Submissions
    go through :meth:`submit`; :meth:`trajectory`, :meth:`group_errors` and
    :meth:`predict_public` show the public view; :meth:`export` writes a runnable bundle.
    """

    def __init__(self, root: Path, config: dict[str, Any]) -> None:
        self.root = Path(root).resolve()
        self.config = config
        self.schema = Schema.from_dict(config["schema"])
        self.loss = parse_loss(config["loss"], task=self.schema.task)
        self.limits = Limits(**config["limits"])
        self.records: list[dict[str, Any]] = []
        self.pdl = PointerDecisionList(config["base"])
        self.state = CheckerState(float(config["epsilon"]), int(config["max_queries"]))
        self._frames: dict[str, pd.DataFrame] = {}
        self._arrays: dict[str, npt.NDArray[Any]] = {}
        self._public: dict[str, list[npt.NDArray[Any]]] = {}
        self._holdout: Holdout | None = None
        self._group_refs: list[GroupRef] = []
        self._log_size = 0
        #: How submissions are isolated: "auto", "required" or "off" (see :class:`Evaluation`).
        self.isolation = "auto"

    # ------------------------------------------------------------------------------
    # creation and loading
    # ------------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        root: str | Path,
        data: Any,
        *,
        target: str,
        features: Sequence[str] | None = None,
        task: Literal["classification", "regression"] = "classification",
        loss: str | None = None,
        epsilon: float = 0.01,
        base_model: str | Path = "train:gbm",
        seed: int = 0,
        test_size: float = 0.2,
        holdout_size: float = 0.4,
        max_queries: int = 10_000,
        min_group_size: int = 30,
        delta: float = 0.05,
        limits: Limits | None = None,
        gbm_estimators: int = 100,
        name: str = "bounty",
    ) -> Program:
        """Create a program: split the data, store the schema, train or load the base model.

        Parameters
        ----------
        root : path
            A new (or empty) directory for the program.
        data : DataFrame or path
            Labelled data with the target and features.
        target, features, task
            The label column, the feature columns (default: every other column) and
            ``classification`` or ``regression``.
        loss : str, optional
            ``zero_one`` (default for classification), ``squared[:bound=B]`` or
            ``absolute[:bound=B]`` (default bound: the range of the training target).
        epsilon : float
            The improvement unit: updates are accepted at ``3*eps/4`` and at most
            ``floor(2/eps)`` are accepted per holdout.
        base_model : path, ``"train:gbm"`` or ``"train:tree"``
            An ONNX or skops file, or ``train:gbm`` to fit a gradient-boosting model
            (``train:tree``: a depth-3 decision tree) on the public training split, stored
            as ONNX.
        test_size, holdout_size : float
            Fractions (under 1) or row counts of the public test split and the holdout.
        max_queries : int
            Query budget U of the holdout (every check, repairs included, is one query).
        min_group_size : int
            Smallest group, counted on the public train and test splits, that is checked.
        delta : float
            Failure probability in the holdout-size bound of DESIGN.md (for the warning).
        limits : Limits, optional
            Sandbox limits for evaluating submissions.

        Warns
        -----
        UserWarning
            When the holdout is smaller than the DESIGN.md bound for ``epsilon`` and
            ``max_queries``.
        """
        caller = "Program.create"
        task = check_choice(task, "task", ("classification", "regression"), caller=caller)
        check_scalar(epsilon, "epsilon", float, caller=caller, min_val=0.0, max_val=1.0, include_min=False)
        check_scalar(max_queries, "max_queries", int, caller=caller, min_val=1)
        check_scalar(min_group_size, "min_group_size", int, caller=caller, min_val=1)
        check_scalar(seed, "seed", int, caller=caller, min_val=0)
        check_scalar(delta, "delta", float, caller=caller, min_val=0.0, max_val=1.0, include_min=False, include_max=False)
        check_scalar(gbm_estimators, "gbm_estimators", int, caller=caller, min_val=1)
        for option, size in (("test_size", test_size), ("holdout_size", holdout_size)):
            check_scalar(
                size, option, (int, float), caller=caller, min_val=0.0, include_min=False,
                fix=f"pass {option} as a fraction in (0, 1) or a row count",
            )
        if str(base_model).startswith("train:"):
            check_choice(
                str(base_model), "base_model", ("train:gbm", "train:tree"), caller=caller,
                fix="pass train:gbm, train:tree or the path of an ONNX or skops model file",
            )
        root = Path(root).resolve()
        if root.exists() and any(root.iterdir()):
            raise InputError(f"the program directory {str(root)!r} exists and is not empty", fix="pass a new directory")
        frame = read_table(data, name="the data")
        schema = Schema.infer(frame, target=target, features=features, task=task)
        checked = schema.validate(frame, name="the data", target=True)
        splits = split_data(len(checked), test_size=test_size, holdout_size=holdout_size, seed=seed)
        y_all = schema.encode_target(checked[target])
        default_bound = float(np.ptp(y_all[splits.train])) if task == "regression" else None
        loss_obj = parse_loss(loss or ("zero_one" if task == "classification" else "squared"), task=task, default_bound=default_bound)
        bound = holdout_bound(epsilon, max_queries, delta)
        if len(splits.holdout) < bound:
            warnings.warn(
                f"the holdout has {len(splits.holdout):,} rows, fewer than the {bound:,} that the guarantees of "
                f"the bias bounty need for eps={epsilon:g} and {max_queries:,} queries (delta={delta:g}); "
                "accept/reject decisions can then be wrong more often than delta",
                UserWarning,
                stacklevel=2,
            )
        limits = limits or Limits()
        for sub in ("public", "private/cache", "store", "cache"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        X_all = schema.encode(checked)
        raw = frame.reset_index(drop=True)
        columns = [*schema.names, target]
        for split, rows in (("train", splits.train), ("test", splits.test), ("holdout", splits.holdout)):
            folder = root / ("private" if split == "holdout" else "public")
            raw.iloc[rows][columns].to_csv(folder / f"{split}.csv.gz", index=False)
            np.save(folder / f"X_{split}.npy", X_all[rows], allow_pickle=False)
            np.save(folder / f"y_{split}.npy", y_all[rows], allow_pickle=False)
        if str(base_model).startswith("train:"):
            kind = str(base_model).split(":", 1)[1]
            base_bytes = _train_base(kind, X_all[splits.train], y_all[splits.train], task, seed, gbm_estimators, root / "store")
            base_name = "base.onnx"
        else:
            path = Path(base_model)
            if not path.is_file():
                raise InputError(f"the base model file {str(path)!r} does not exist", fix="pass an ONNX or skops file, or train:gbm")
            base_bytes = path.read_bytes()
            base_name = path.name
        kind = sniff_format(base_bytes, name=base_name)
        base_file = f"{_sha256_bytes(base_bytes)}.{kind}"
        (root / "store" / base_file).write_bytes(base_bytes)
        config = {
            "format": "groupwise-bounty/1",
            "name": name,
            "created": _now(),
            "schema": schema.to_dict(),
            "loss": loss_obj.spec,
            "epsilon": float(epsilon),
            "max_queries": int(max_queries),
            "max_acceptances": int(np.floor(2 / epsilon)),
            "min_group_size": int(min_group_size),
            "delta": float(delta),
            "holdout_bound": bound,
            "seed": int(seed),
            "sizes": {"train": len(splits.train), "test": len(splits.test), "holdout": len(splits.holdout)},
            "base": base_file,
            "base_source": str(base_model),
            "limits": limits.to_dict(),
        }
        program = cls(root, config)
        try:
            program._evaluate({"base": (root / "store" / base_file, base_name)}, {"base": "model"})
        except SandboxError as exc:
            shutil.rmtree(root)
            raise InputError(f"the base model cannot be used: {exc.problem}", fix=exc.fix) from None
        except HoldoutFailed:
            shutil.rmtree(root)
            raise InputError(
                "the base model runs on the public splits but failed on the private holdout",
                fix="use a base model that predicts every row of the data (check it on the whole data set)",
            ) from None
        (root / "program.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        program._append({"type": "init", "time": _now(), "base": base_file, "version": 0})
        return Program.load(root)

    @classmethod
    def load(cls, root: str | Path) -> Program:
        """Open the program in ``root`` and rebuild its state from the log."""
        root = Path(root).resolve()
        config_path = root / "program.json"
        if not config_path.is_file():
            raise InputError(f"{str(root)!r} is not a bounty program (no program.json)", fix="pass the directory made by `groupwise bounty init`")
        program = cls(root, json.loads(config_path.read_text(encoding="utf-8")))
        program._read_log()
        return program

    def _read_log(self) -> None:
        path = self.root / "log.jsonl"
        data = path.read_bytes() if path.exists() else b""
        self._log_size = len(data)
        self.records = [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]
        self.pdl = PointerDecisionList(self.config["base"])
        self.state = CheckerState(float(self.config["epsilon"]), int(self.config["max_queries"]))
        for record in self.records:
            if record["type"] != "submission":
                continue
            for node in record.get("nodes", []):
                self.pdl = self.pdl.append(Node.from_dict(node))
            self.state = CheckerState(self.state.epsilon, self.state.max_queries, **record["checker"])
        self._public = {}
        self._holdout = None
        self._group_refs = []

    def _append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, sort_keys=True) + "\n"
        with open(self.root / "log.jsonl", "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        self.records.append(record)
        self._log_size = (self.root / "log.jsonl").stat().st_size

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # One writer at a time, across processes; a reader that loaded earlier catches up.
        with open(self.root / ".lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                if (self.root / "log.jsonl").stat().st_size != self._log_size:
                    self._read_log()
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # ------------------------------------------------------------------------------
    # data and cached predictions
    # ------------------------------------------------------------------------------

    def _folder(self, split: str) -> Path:
        return self.root / ("private" if split == "holdout" else "public")

    def _array(self, name: str, split: str) -> npt.NDArray[Any]:
        key = f"{name}_{split}"
        if key not in self._arrays:
            self._arrays[key] = np.load(self._folder(split) / f"{key}.npy", allow_pickle=False)
        return self._arrays[key]

    def frame(self, split: Literal["train", "test"]) -> pd.DataFrame:
        """The typed features of a public split (``train`` or ``test``), with exact values.

        Group expressions are evaluated on these frames, read from the split's CSV file,
        never on the float32 matrix that models get: ``x >= 0.7`` must select the same
        rows here as in an exported bundle and in the public CSV.
        """
        split = check_choice(split, "split", PUBLIC, caller="Program.frame", fix="use train or test; the holdout is private")
        return self._exact_frame(split)

    def _exact_frame(self, split: str) -> pd.DataFrame:
        if split not in self._frames:
            text = {f.name: str for f in self.schema.features if f.kind == "categorical"}
            # Numbers must parse back to the very float64 that was written: pandas 3 does so
            # by default (and deprecates the option), older pandas needs round_trip.
            exact = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
            raw = pd.read_csv(self._folder(split) / f"{split}.csv.gz", dtype=text, keep_default_na=False, **exact)
            self._frames[split] = self.schema.validate(raw, name=f"the {split} split")
        return self._frames[split]

    def X(self, split: Literal["train", "test"]) -> npt.NDArray[np.float32]:
        """The encoded feature matrix of a public split (see :mod:`._schema`)."""
        split = check_choice(split, "split", PUBLIC, caller="Program.X", fix="use train or test; the holdout is private")
        return self._array("X", split)

    def y(self, split: Literal["train", "test"]) -> npt.NDArray[Any]:
        """Labels of a public split (class indices for classification)."""
        split = check_choice(split, "split", PUBLIC, caller="Program.y", fix="use train or test; the holdout is private")
        return self._array("y", split)

    def _cache_path(self, file: str, role: str, split: str) -> Path:
        folder = self.root / ("private/cache" if split == "holdout" else "cache")
        return folder / f"{file}.{role}.{split}.npy"

    def _inputs(self, splits: Sequence[str]) -> dict[str, Path]:
        return {split: self._folder(split) / f"X_{split}.npy" for split in splits}

    def _check_outputs(self, raw: dict, files: dict[str, tuple[Path, str]], roles: dict[str, str]) -> dict[tuple[str, str], npt.NDArray[Any]]:
        checked = {}
        for (key, split), pred in raw.items():
            rows = int(self.config["sizes"][split])
            checked[(key, split)] = check_output(pred, role=roles[key], schema=self.schema, rows=rows)
        for (key, split), pred in checked.items():
            np.save(self._cache_path(files[key][0].name, roles[key], split), pred, allow_pickle=False)
        return checked

    def _evaluate(self, files: dict[str, tuple[Path, str]], roles: dict[str, str]) -> dict[tuple[str, str], npt.NDArray[Any]]:
        """Run models in the sandbox on every split, public first; check and cache their outputs.

        Raises :class:`SandboxError` for a problem on the public splits and
        :class:`HoldoutFailed` (no detail) for one on the holdout.
        """
        with Evaluation(files, self._inputs(PUBLIC), self.schema, limits=self.limits, private=self._inputs(["holdout"]), isolation=self.isolation) as ev:
            checked = self._check_outputs(ev.run_public(), files, roles)
            try:
                checked.update(self._check_outputs(ev.run_private(), files, roles))
            except SandboxError:
                raise HoldoutFailed from None
        return checked

    def _cached(self, file: str, role: str, split: str) -> npt.NDArray[Any]:
        path = self._cache_path(file, role, split)
        if not path.exists():
            self._evaluate({"m": (self.root / "store" / file, file)}, {"m": role})
        return np.load(path, allow_pickle=False)

    def _mask(self, ref: GroupRef, split: str) -> npt.NDArray[np.bool_]:
        if ref.expr is not None:
            frame = self.frame(split) if split != "holdout" else self._holdout_frame()
            return parse_group(ref.expr, columns=self.schema.names).evaluate(frame)
        return self._cached(str(ref.model), "group", split)

    def _holdout_frame(self) -> pd.DataFrame:
        return self._exact_frame("holdout")

    def _versions(self, split: str) -> list[npt.NDArray[Any]]:
        """Predictions of every version on a public split, built like the holdout's."""
        if split not in self._public:
            preds = [self._cached(self.pdl.base, "model", split)]
            for node in self.pdl.nodes:
                mask = self._mask(node.group, split)
                values = self._cached(str(node.model), "model", split) if node.kind == "update" else preds[int(node.pointer)]  # type: ignore[arg-type]
                preds.append(np.where(mask, values, preds[-1]))
            self._public[split] = preds
        return self._public[split]

    def _holdout_state(self) -> Holdout:
        if self._holdout is None:
            holdout = Holdout(self._array("y", "holdout"), self.loss, self._cached(self.pdl.base, "model", "holdout"))
            refs: list[GroupRef] = []
            for node in self.pdl.nodes:
                if node.kind == "update":
                    mask = self._mask(node.group, "holdout")
                    holdout.add_version(holdout.update_pred(holdout.version, mask, self._cached(str(node.model), "model", "holdout")))
                    if _group_key(node.group) not in holdout.group_keys:
                        refs.append(node.group)
                    holdout.add_group(_group_key(node.group), mask)
                else:
                    j = holdout.group_keys.index(_group_key(node.group))
                    holdout.add_version(np.where(holdout.groups[j], holdout.preds[int(node.pointer)], holdout.preds[-1]))  # type: ignore[arg-type]
            self._holdout, self._group_refs = holdout, refs
        return self._holdout

    # ------------------------------------------------------------------------------
    # the public view
    # ------------------------------------------------------------------------------

    @property
    def version(self) -> int:
        return self.pdl.version

    def predict_public(self, split: Literal["train", "test"], version: int | None = None) -> npt.NDArray[Any]:
        """Predictions of a version (default: current) on the public ``train`` or ``test`` split."""
        split = check_choice(split, "split", PUBLIC, caller="Program.predict_public", fix="use train or test; the holdout is private")
        versions = self._versions(split)
        return versions[self.version if version is None else version]

    def test_loss(self, version: int | None = None, mask: npt.NDArray[np.bool_] | None = None) -> float:
        """Mean loss of a version on the public test split (or on a group of it)."""
        pred = self.predict_public("test", version)
        losses = self.loss(self.y("test"), pred)
        if mask is not None:
            losses = losses[mask]
        return float(losses.mean()) if losses.size else float("nan")

    def trajectory(self) -> pd.DataFrame:
        """Public-test loss of every version, with the submission and team that made it."""
        owner = {0: ("", "base", "")}
        for record in self.records:
            if record["type"] == "submission":
                first = record["version_before"] + 1
                for k, node in enumerate(record.get("nodes", [])):
                    owner[first + k] = (record["id"], record["team"], node["kind"])
        rows = []
        for v in range(self.version + 1):
            sid, team, kind = owner.get(v, ("", "", ""))
            rows.append({"version": v, "kind": kind or "base", "submission": sid, "team": team, "test_loss": self.test_loss(v)})
        return pd.DataFrame(rows)

    def groups(self) -> list[GroupRef]:
        """Every distinct group of an update node, oldest first."""
        seen: dict[str, GroupRef] = {}
        for node in self.pdl.nodes:
            seen.setdefault(_group_key(node.group), node.group)
        return list(seen.values())

    def group_errors(self, groups: Sequence[str | GroupRef] | None = None, *, before: int = 0, after: int | None = None) -> pd.DataFrame:
        """Per-group public-test loss of two versions (default: the base and the current)."""
        refs = [g if isinstance(g, GroupRef) else GroupRef(expr=g) for g in (groups if groups is not None else self.groups())]
        rows = []
        for ref in refs:
            mask = self._mask(ref, "test")
            rows.append({
                "group": ref.describe(),
                "test_rows": int(mask.sum()),
                f"loss_v{before}": self.test_loss(before, mask),
                f"loss_v{self.version if after is None else after}": self.test_loss(after, mask),
            })
        return pd.DataFrame(rows)

    def group_trajectories(self, groups: Sequence[str | GroupRef] | None = None) -> pd.DataFrame:
        """Each group's public-test loss at every version: the bias bounty's main figure.

        One row per version (``version``, ``kind``, ``test_loss`` overall) and one column
        per group (default: every group of an update node, oldest first), named by the
        group's description. A value is NaN when the group has no public test rows.
        """
        refs = [g if isinstance(g, GroupRef) else GroupRef(expr=g) for g in (groups if groups is not None else self.groups())]
        frame = self.trajectory()[["version", "kind", "test_loss"]].copy()
        for ref in refs:
            mask = self._mask(ref, "test")
            frame[ref.describe()] = [self.test_loss(v, mask) for v in range(self.version + 1)]
        return frame

    def plot_group_trajectories(self, path: str | Path) -> Path:
        """Draw :meth:`group_trajectories` as a PNG: loss on the public test split by version."""
        from matplotlib.figure import Figure

        frame = self.group_trajectories()
        groups = [c for c in frame.columns if c not in ("version", "kind", "test_loss")]
        fig = Figure(figsize=(8, 4.5), dpi=110)
        ax = fig.add_subplot()
        ax.step(frame["version"], frame["test_loss"], where="post", color="black", linewidth=2.2, label="overall")
        for group in groups:
            ax.step(frame["version"], frame[group], where="post", linewidth=1.3, label=group if len(group) <= 40 else group[:37] + "...")
        repairs = frame[frame["kind"] == "repair"]["version"]
        for v in repairs:
            ax.axvline(v, color="#c0392b", alpha=0.25, linewidth=1)
        ax.set_xlabel("model version (red lines: repairs)")
        ax.set_ylabel(f"{self.loss.spec} loss, public test split")
        ax.set_title("Error of each group across versions")
        ax.grid(alpha=0.3)
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=7)
        if len(frame) <= 20:
            ax.set_xticks(list(frame["version"]))
        fig.tight_layout()
        path = Path(path)
        fig.savefig(path, format="png")
        return path

    def submissions(self) -> pd.DataFrame:
        """Every submission in the log: team, decision, reason and versions."""
        cols = ["id", "time", "team", "group", "decision", "reason_kind", "reason", "version_before", "version_after"]
        rows = []
        for r in self.records:
            if r["type"] == "submission":
                rows.append({**{c: r.get(c) for c in cols}, "group": r["group"].get("expr") or f"model {r['group'].get('model') or r['group'].get('name')}"})
        return pd.DataFrame(rows, columns=cols)

    def feature_usage(self, *, accepted_only: bool = False) -> pd.DataFrame:
        """Teams by features: how many of each team's submitted groups read each feature.

        A group model counts as reading every feature. Rows are teams (sorted), columns the
        schema's features.
        """
        counts: dict[str, dict[str, int]] = {}
        for record in self.records:
            if record["type"] != "submission" or (accepted_only and record["decision"] != "accepted"):
                continue
            expr = record["group"].get("expr")
            if expr is not None:
                try:
                    columns = parse_group(expr).columns
                except GroupwiseError:
                    continue
            else:
                columns = tuple(self.schema.names)
            row = counts.setdefault(record["team"], {})
            for column in columns:
                row[column] = row.get(column, 0) + 1
        frame = pd.DataFrame.from_dict(counts, orient="index").reindex(columns=self.schema.names).fillna(0).astype(int)
        return frame.sort_index()

    def status(self) -> dict[str, Any]:
        """The program's state as plain data (no holdout numbers)."""
        accepted = sum(1 for r in self.records if r["type"] == "submission" and r["decision"] == "accepted")
        return {
            "name": self.config["name"],
            "version": self.version,
            "nodes": len(self.pdl.nodes),
            "submissions": sum(1 for r in self.records if r["type"] == "submission"),
            "accepted_submissions": accepted,
            "acceptances": self.state.acceptances,
            "max_acceptances": self.state.max_acceptances,
            "queries": self.state.queries,
            "max_queries": self.state.max_queries,
            "holdout": self.state.status,
            "epsilon": self.state.epsilon,
            "loss": self.loss.spec,
            "test_loss": self.test_loss(),
            "base_test_loss": self.test_loss(0),
        }

    def export(self, out: str | Path, *, version: int | None = None) -> Path:
        """Write ``version`` (default: current) as a bundle runnable with ``groupwise bounty predict``."""
        pdl = self.pdl.at(self.version if version is None else version)
        meta = {"program": self.config["name"], "public_test_loss": self.test_loss(pdl.version), "exported": _now()}
        return write_bundle(Path(out), pdl, schema=self.schema, loss=self.loss, store=self.root / "store", meta=meta)

    # ------------------------------------------------------------------------------
    # submissions
    # ------------------------------------------------------------------------------

    def submit(
        self,
        *,
        team: str,
        model: bytes | str | Path,
        group: str | None = None,
        group_model: bytes | str | Path | None = None,
        request_id: str | None = None,
        model_name: str | None = None,
        group_model_name: str | None = None,
        decision_seconds: float | str | None = None,
        wait: bool = True,
    ) -> SubmissionResult:
        """Submit a group and a model; return what the submitter may learn.

        Parameters
        ----------
        team : str
            Who submits.
        model : bytes or path
            The model h: an ONNX or skops file, or its bytes.
        group : str, optional
            The group g as an expression, e.g. ``'age >= 60 and sex == "Female"'``.
        group_model : bytes or path, optional
            The group g as a classifier (label 1 = in the group), instead of ``group``.
        request_id : str, optional
            The caller's id for this request, kept in the log: a service finds the decision
            of a request again with :meth:`find_submission` after a crash.
        model_name, group_model_name : str, optional
            Names for models given as bytes (default: the file name, or ``model``).
        decision_seconds : float or "auto", optional
            Return a decision that consulted the holdout this many seconds after the holdout
            run started, whatever happened there (default: the program's
            ``limits.decision_seconds``; ``"auto"``: a delay fixed before the holdout run
            from the public run's prediction time).
        wait : bool
            Sleep until that time before returning (default). With ``False`` the result's
            ``reveal_at`` says when the decision may be shown.

        Returns
        -------
        SubmissionResult
            Everything the log recorded about the submission that a submitter may see.

        Every outcome is recorded in the log. A submission refused on public data leaves
        the model and the checker's budget exactly as they were; one that ran on the
        holdout costs one query, whatever happened there.
        """
        if not team or not str(team).strip() or len(team) > 100:
            raise InputError("the team name is empty or longer than 100 characters", fix="pass --team NAME")
        if request_id is not None and (not str(request_id).strip() or len(str(request_id)) > 200):
            raise InputError("the request id is empty or longer than 200 characters", fix="pass a short unique id")
        model_label = _display_name(model, model_name, "model")
        with self._locked():
            record: dict[str, Any] = {
                "type": "submission",
                "id": f"s{sum(1 for r in self.records if r['type'] == 'submission') + 1:05d}",
                "time": _now(),
                "team": str(team),
                "version_before": self.version,
                "group": {"expr": group} if group is not None else {"name": _display_name(group_model, group_model_name, "group")},
                "model": {"name": model_label},
            }
            if request_id is not None:
                record["request_id"] = str(request_id)
            try:
                outcome = self._check(
                    record, model=model, group=group, group_model=group_model, decision_seconds=decision_seconds,
                    names=(model_label, record["group"].get("name", "group")),
                )
            except SandboxError as exc:
                outcome = ("rejected", exc.message, exc.kind, [], self.state, {})
            except GroupwiseError as exc:
                outcome = ("rejected", exc.message, error_kind(exc), [], self.state, {})
            decision, reason, kind, nodes, state, public = outcome
            reveal_at = float(record.pop("_reveal_at", 0.0))
            record.update({
                "decision": decision,
                "reason": reason,
                "reason_kind": kind,
                "nodes": [n.to_dict() for n in nodes],
                "version_after": self.version + len(nodes),
                "checker": state.to_dict(),
                "public": public,
            })
            self._append(record)
            # Fold the new record in exactly as a fresh load would.
            for node in nodes:
                self.pdl = self.pdl.append(node)
            self.state = state
            if nodes:
                self._public = {}
            result = SubmissionResult.from_record(record, reveal_at=reveal_at)
        if wait and reveal_at > time.time():
            # Outside the lock: other submissions go on while this one's answer waits.
            time.sleep(reveal_at - time.time())
        return result

    def find_submission(self, *, request_id: str | None = None, model_sha256: str | None = None) -> list[SubmissionResult]:
        """Logged submissions with this request id, or whose model has this SHA-256, oldest first.

        A service that died between the engine's decision and its own record finds the
        decision again by the request's id (or, for logs without one, the upload's hash),
        never by names a second request could share.
        """
        if request_id is None and model_sha256 is None:
            raise InputError("find_submission needs a request id or a model hash", fix="pass request_id= or model_sha256=")
        found = []
        for record in self.records:
            if record.get("type") != "submission":
                continue
            if request_id is not None and record.get("request_id") != request_id:
                continue
            if model_sha256 is not None and str(record.get("model", {}).get("file", "")).split(".", 1)[0] != model_sha256:
                continue
            found.append(SubmissionResult.from_record(record))
        return found

    def _store(self, source: bytes | str | Path, what: str, name: str) -> tuple[str, bytes]:
        cap = int(self.limits.max_upload_mb * 1024 * 1024)
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
        else:
            path = Path(source)
            if not path.is_file():
                raise InputError(f"the {what} file {str(path)!r} does not exist", fix="check the path")
            if path.stat().st_size > cap:
                raise InputError(
                    f"the {what} file {name!r} is {path.stat().st_size / 1e6:.1f} MB, over the limit of {self.limits.max_upload_mb:g} MB",
                    fix="submit a smaller model",
                )
            data = path.read_bytes()
        if len(data) > cap:
            raise InputError(
                f"the {what} file {name!r} is {len(data) / 1e6:.1f} MB, over the limit of {self.limits.max_upload_mb:g} MB",
                fix="submit a smaller model",
            )
        kind = sniff_format(data, name=name)
        return f"{_sha256_bytes(data)}.{kind}", data

    def _check(
        self, record: dict[str, Any], *, model: bytes | str | Path, group: str | None, group_model: bytes | str | Path | None,
        decision_seconds: float | str | None = None, names: tuple[str, str] = ("model", "group"),
    ) -> tuple:
        if self.state.exhausted:
            raise exhausted_error(self.state)
        if (group is None) == (group_model is None):
            raise InputError("a submission needs exactly one group", fix="pass --group with an expression or with a group model file")
        if group is not None:
            if not isinstance(group, str):
                raise InputError("the group expression is not text", fix="pass the expression as a string")
            # Parsed and tried on public data before anything runs, so a bad expression
            # is refused at once and its error can never depend on the holdout.
            parse_group(group, columns=self.schema.names).evaluate(self.frame("train"))
            ref = GroupRef(expr=group)
        model_file, model_bytes = self._store(model, "model", names[0])
        record["model"]["file"] = model_file
        files = {"h": (self.root / "store" / model_file, names[0])}
        roles = {"h": "model"}
        if group_model is not None:
            group_file, group_bytes = self._store(group_model, "group model", names[1])
            record["group"]["model"] = group_file
            ref = GroupRef(model=group_file)
            files["g"] = (self.root / "store" / group_file, names[1])
            roles["g"] = "group"
        # Files go to the store before they run, so every checked submission can be replayed.
        for key, (dest, _) in files.items():
            if not dest.exists():
                dest.write_bytes(model_bytes if key == "h" else group_bytes)
        with Evaluation(files, self._inputs(PUBLIC), self.schema, limits=self.limits, private=self._inputs(["holdout"]), isolation=self.isolation) as ev:
            # Everything a submitter may learn about the submission itself comes from here:
            # the file, the limits and the outputs, checked on the public splits only.
            outputs = self._check_outputs(ev.run_public(), files, roles)
            masks = {split: (outputs[("g", split)] if group_model is not None else self._mask(ref, split)) for split in PUBLIC}
            public_rows = int(masks["train"].sum() + masks["test"].sum())
            minimum = int(self.config["min_group_size"])
            if public_rows < minimum:
                raise _GroupSize(
                    f"the group holds {public_rows} rows of the public train and test splits, fewer than the minimum of {minimum}"
                    + (" (it is empty)" if public_rows == 0 else ""),
                    fix="choose a larger group",
                )
            delay = self._decision_delay(decision_seconds, ev.predict_seconds)
            record["_reveal_at"] = time.time() + delay if delay > 0 else 0.0
            holdout: dict[str, npt.NDArray[Any]] | None
            try:
                private = self._check_outputs(
                    ev.run_private(timeout=min(delay, self.limits.wall_seconds) if delay > 0 else None), files, roles
                )
                holdout = {
                    "mask": private[("g", "holdout")] if group_model is not None else self._mask(ref, "holdout"),
                    "pred": private[("h", "holdout")],
                }
            except (HoldoutFailed, GroupwiseError):
                # A crash, a limit or an invalid output on holdout rows is an ordinary,
                # charged rejection: what went wrong there is never told.
                holdout = None
        if holdout is None:
            return self._charged_rejection()
        masks["holdout"] = holdout["mask"]
        return self._decide(ref, model_file, masks, {"holdout": holdout["pred"], "test": outputs[("h", "test")]}, team=record["team"], sid=record["id"])

    def _decision_delay(self, decision_seconds: float | str | None, predict_seconds: float) -> float:
        value = self.limits.decision_seconds if decision_seconds is None else decision_seconds
        if value == "auto":
            # Fixed before the holdout run, from what the public run took (which the submitter
            # can time anyway): three seconds, plus four times the public prediction time
            # scaled to the holdout's rows. A model slower than that on the holdout is stopped.
            sizes = self.config["sizes"]
            ratio = max(1.0, sizes["holdout"] / max(1, sizes["train"] + sizes["test"]))
            return float(min(self.limits.wall_seconds, 3.0 + 4.0 * max(0.0, predict_seconds) * ratio))
        return max(0.0, float(value))  # type: ignore[arg-type]

    def _charged_rejection(self) -> tuple:
        _, state = decide(self.state, -math.inf)
        return ("rejected", CHECK_REJECTED, "check", [], state, {})

    def _decide(self, ref: GroupRef, model_file: str, masks: dict, preds: dict, *, team: str, sid: str) -> tuple:
        holdout = self._holdout_state()
        before = self.version
        try:
            accepted, state, steps = run_update(holdout, self.state, _group_key(ref), masks["holdout"], preds["holdout"])
        except RepairScanCut as cut:
            # Rebuilt from the log on next use: the scan changed the holdout's tables.
            self._holdout = None
            return ("rejected", SCAN_CUT + exhausted_error(cut.state).message, "exhausted", [], cut.state, {})
        if not accepted:
            return ("rejected", CHECK_REJECTED, "check", [], state, {})
        if _group_key(ref) not in [_group_key(g) for g in self._group_refs]:
            self._group_refs.append(ref)
        nodes = []
        for kind, j, pointer in steps:
            if kind == "update":
                nodes.append(Node("update", ref, model=model_file, team=team, submission=sid))
            else:
                nodes.append(Node("repair", self._group_refs[j], pointer=pointer, team=team, submission=sid))
        # Public numbers for the submitter: the whole test split and the group's rows of it.
        pdl = self.pdl
        for node in nodes:
            pdl = pdl.append(node)
        old_pdl, self.pdl = self.pdl, pdl
        self._public = {}
        try:
            after = pdl.version
            public = {
                "test_loss_before": self.test_loss(before),
                "test_loss_after": self.test_loss(after),
                "group_test_loss_before": self.test_loss(before, masks["test"]),
                "group_test_loss_after": self.test_loss(after, masks["test"]),
            }
        finally:
            self.pdl = old_pdl
            self._public = {}
        return ("accepted", "", "", nodes, state, public)

    # ------------------------------------------------------------------------------
    # audit
    # ------------------------------------------------------------------------------

    def replay(self) -> list[str]:
        """Re-run every checked submission of the log on a fresh state; list disagreements.

        Submissions refused before the holdout was consulted (bad input, limits) are taken
        as logged. An empty list means the log reproduces the program's state.
        """
        fresh = Program(self.root, self.config)
        fresh.isolation = self.isolation
        fresh._arrays = self._arrays
        fresh._frames = self._frames
        problems: list[str] = []
        for record in self.records:
            if record["type"] != "submission":
                continue
            if record["reason_kind"] not in ("", "check") and not str(record.get("reason", "")).startswith(SCAN_CUT):
                fresh.state = CheckerState(fresh.state.epsilon, fresh.state.max_queries, **record["checker"])
                continue
            group = record["group"]
            ref = GroupRef(expr=group["expr"]) if "expr" in group else GroupRef(model=group["model"])
            model_file = record["model"]["file"]
            try:
                masks = {s: fresh._mask(ref, s) for s in SPLITS}
                preds = {s: fresh._cached(model_file, "model", s) for s in SPLITS}
                decision, _, kind, nodes, state, _ = fresh._decide(ref, model_file, masks, preds, team=record["team"], sid=record["id"])
            except (HoldoutFailed, SandboxError):
                decision, _, kind, nodes, state, _ = fresh._charged_rejection()
            if decision != record["decision"]:
                problems.append(f"{record['id']}: logged {record['decision']}, replay gives {decision}")
            if [n.to_dict() for n in nodes] != record["nodes"]:
                problems.append(f"{record['id']}: the nodes differ from the log")
            if state.to_dict() != record["checker"]:
                problems.append(f"{record['id']}: the checker budget differs from the log")
            for node in nodes:
                fresh.pdl = fresh.pdl.append(node)
            fresh.state = state
        if fresh.pdl != self.pdl:
            problems.append("the final pointer decision list differs from the log's")
        return problems

    def holdout_group_losses(self) -> pd.DataFrame:
        """Holdout loss of every version on every group: for the owner's audit, never shown to submitters."""
        holdout = self._holdout_state()
        rows = []
        for j, ref in enumerate(self._group_refs):
            mu = float(holdout.groups[j].mean())
            for v in range(holdout.version + 1):
                rows.append({"group": ref.describe(), "mu": mu, "version": v, "loss": holdout.group_loss(j, v)})
        return pd.DataFrame(rows)


class GroupSizeError(InputError):
    """The group holds fewer public rows than the program's minimum."""

    kind = "group-size"


_GroupSize = GroupSizeError  # the name it had


def error_kind(exc: BaseException) -> str:
    """The ``reason_kind`` of an engine exception: its ``kind`` field, ``input`` by default."""
    return str(getattr(exc, "kind", None) or "input")


def create_program(
    directory: str | Path,
    *,
    data: Any = None,
    example: str | None = None,
    target: str | None = None,
    features: Sequence[str] | str | None = None,
    **options: Any,
) -> tuple[Program, list[str]]:
    """Create a program from data or from a built-in example (``"adult"``).

    What ``groupwise bounty init`` and a service's admin do. ``options`` go to
    :meth:`Program.create`. Returns the program and the warnings its creation gave
    (a holdout below the bound of DESIGN.md), as text, for the caller to show.
    """
    from groupwise._io import split_names
    from groupwise.bounty._data import ADULT_FEATURES, load_adult

    if (data is None) == (example is None):
        raise InputError("init needs either --data or --example", fix="pass --data FILE --target COLUMN, or --example adult")
    if example is not None:
        check_choice(example, "example", ("adult",), caller="create_program", fix="use the adult example (--example adult)")
        frame: Any = load_adult()
        target = target or "income"
        names: list[str] | None = split_names(features) or list(ADULT_FEATURES)
    else:
        if not target:
            raise InputError("--target is missing", fix="pass --target with the label column")
        frame = data
        names = split_names(features) or None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        program = Program.create(directory, frame, target=str(target), features=names, **options)
    return program, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def _train_base(kind: str, X: npt.NDArray[np.float32], y: npt.NDArray[Any], task: str, seed: int, n_estimators: int, store: Path) -> bytes:
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    from groupwise.bounty._export import to_onnx_file

    model: Any
    if kind == "tree":
        model = (DecisionTreeClassifier if task == "classification" else DecisionTreeRegressor)(max_depth=3, random_state=seed)
    else:
        model = (GradientBoostingClassifier if task == "classification" else GradientBoostingRegressor)(
            n_estimators=n_estimators, max_depth=3, random_state=seed
        )
    model.fit(X, y)
    path = to_onnx_file(model, X.shape[1], store / f"_base_{time.time_ns()}.onnx")
    data = path.read_bytes()
    path.unlink()
    return data
