"""The algorithmic bias bounty engine (DESIGN.md, "Algorithmic bias bounty").

Plain Python, no web framework: a :class:`Program` stored in a directory with an
append-only log, the :class:`PointerDecisionList` it deploys, the checker that alone
reads the private holdout, safe model loading (ONNX and skops, never pickle), a sandbox
that evaluates submissions on the public splits first and isolates them with bubblewrap,
and automated hunters. The command-line program wraps the
functions of :mod:`groupwise.bounty._cli`.
"""

from groupwise.bounty._checker import CheckerState, HoldoutExhausted
from groupwise.bounty._export import to_onnx_file as export_onnx
from groupwise.bounty._data import ADULT_FEATURES, holdout_bound, load_adult
from groupwise.bounty._hunters import STRATEGIES, hunt
from groupwise.bounty._loss import Loss, parse_loss
from groupwise.bounty._pdl import Bundle, GroupRef, Node, PointerDecisionList, load_bundle
from groupwise.bounty._program import GroupSizeError, Program, SubmissionResult, create_program
from groupwise.bounty._sandbox import IsolationUnavailable, Limits, SandboxError
from groupwise.bounty._schema import Feature, Schema

__all__ = [
    "ADULT_FEATURES",
    "STRATEGIES",
    "Bundle",
    "CheckerState",
    "Feature",
    "GroupRef",
    "GroupSizeError",
    "HoldoutExhausted",
    "IsolationUnavailable",
    "Limits",
    "Loss",
    "Node",
    "PointerDecisionList",
    "Program",
    "SandboxError",
    "Schema",
    "SubmissionResult",
    "create_program",
    "export_onnx",
    "holdout_bound",
    "hunt",
    "load_adult",
    "load_bundle",
    "parse_loss",
]
