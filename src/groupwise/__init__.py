"""groupwise: task-relevant fairness testing of AI services.

The public surface: :func:`audit` and its :class:`AuditResult` (typed rows
:class:`AuditGroup` and :class:`AuditOverall`), :func:`coverage` and its
:class:`CoverageResult`, :func:`lastmile` and its :class:`LastMileResult`,
:func:`parse_group` for safe group expressions, the :class:`Provenance` of grouping
columns, generated examples, and the errors raised for bad input. The speech pipeline is
in :mod:`groupwise.speech`.

Names are imported on first use, so that ``import groupwise`` (and ``groupwise --help``)
does not pay for pandas, SciPy and the recognisers until they are needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from groupwise._errors import GroupExpressionError, GroupwiseError, InputError, ProvenanceError
from groupwise.audit import ROWS as _ROWS

if TYPE_CHECKING:  # pragma: no cover
    from groupwise.audit._audit import audit
    from groupwise.audit._coverage import CoverageResult, coverage
    from groupwise._example import speech_example, tabular_example
    from groupwise._expr import GroupExpression, parse_group
    from groupwise.audit._compare import compare
    from groupwise.audit._lastmile import LastMileResult, lastmile
    from groupwise.audit._metrics import METRICS
    from groupwise._provenance import Provenance, load_schema
    from groupwise.audit._result import AuditResult
    from groupwise.audit._rows import (
        AuditGroup, AuditOverall, Condition, ConditionDelta, ConditionGroup, CoverageCell, SliceRow,
    )

_LAZY = {
    "audit": "groupwise",
    "AuditResult": "groupwise.audit._result",
    "coverage": "groupwise.audit._coverage",
    "CoverageResult": "groupwise.audit._coverage",
    "lastmile": "groupwise.audit._lastmile",
    "compare": "groupwise.audit._compare",
    "LastMileResult": "groupwise.audit._lastmile",
    "GroupExpression": "groupwise._expr",
    "parse_group": "groupwise._expr",
    "METRICS": "groupwise.audit._metrics",
    "Provenance": "groupwise._provenance",
    "load_schema": "groupwise._provenance",
    "speech_example": "groupwise._example",
    "tabular_example": "groupwise._example",
    "slices": "groupwise.audit._slices",
}
_LAZY.update(dict.fromkeys(_ROWS, "groupwise.audit._rows"))

__all__ = [
    "METRICS",
    *_ROWS,
    "AuditResult",
    "CoverageResult",
    "GroupExpression",
    "GroupExpressionError",
    "GroupwiseError",
    "InputError",
    "LastMileResult",
    "Provenance",
    "ProvenanceError",
    "audit",
    "compare",
    "coverage",
    "lastmile",
    "load_schema",
    "parse_group",
    "slices",
    "speech_example",
    "tabular_example",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'groupwise' has no attribute {name!r}")
    if name == "audit":  # the subpackage, callable as the audit function
        value: Any = importlib.import_module("groupwise.audit")
    else:
        value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
