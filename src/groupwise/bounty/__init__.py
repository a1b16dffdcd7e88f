"""The algorithmic bias bounty engine (DESIGN.md, "Algorithmic bias bounty").

Plain Python, no web framework: a :class:`Program` stored in a directory with an
append-only log, the :class:`PointerDecisionList` it deploys, the checker that alone
reads the private holdout, safe model loading (ONNX and skops, never pickle), a sandbox
that evaluates submissions on the public splits first and isolates them with bubblewrap,
and automated hunters. The command-line program wraps the
functions of :mod:`groupwise.bounty._cli`.
"""

from importlib import import_module
from typing import Any

# Names load on first use (PEP 562), so that a process that needs one module, such as the
# sandbox worker, does not import pandas, scikit-learn and ONNX for all of them.
_LAZY = {
    "CheckerState": ("_checker", "CheckerState"),
    "HoldoutExhausted": ("_checker", "HoldoutExhausted"),
    "export_onnx": ("_export", "to_onnx_file"),
    "ADULT_FEATURES": ("_data", "ADULT_FEATURES"),
    "holdout_bound": ("_data", "holdout_bound"),
    "load_adult": ("_data", "load_adult"),
    "STRATEGIES": ("_hunters", "STRATEGIES"),
    "hunt": ("_hunters", "hunt"),
    "Loss": ("_loss", "Loss"),
    "parse_loss": ("_loss", "parse_loss"),
    "Bundle": ("_pdl", "Bundle"),
    "GroupRef": ("_pdl", "GroupRef"),
    "Node": ("_pdl", "Node"),
    "PointerDecisionList": ("_pdl", "PointerDecisionList"),
    "load_bundle": ("_pdl", "load_bundle"),
    "GroupSizeError": ("_program", "GroupSizeError"),
    "Program": ("_program", "Program"),
    "SubmissionResult": ("_program", "SubmissionResult"),
    "create_program": ("_program", "create_program"),
    "IsolationUnavailable": ("_sandbox", "IsolationUnavailable"),
    "Limits": ("_sandbox", "Limits"),
    "SandboxError": ("_sandbox", "SandboxError"),
    "Feature": ("_schema", "Feature"),
    "Schema": ("_schema", "Schema"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(import_module(f"groupwise.bounty.{module}"), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'groupwise.bounty' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))


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
