"""groupwise: task-relevant fairness testing of AI services.

The public surface: :func:`audit` and its :class:`AuditResult`, :func:`coverage` and its
:class:`CoverageResult`, :func:`parse_group` for safe group expressions, the
:class:`Provenance` of grouping columns, and the errors raised for bad input.
"""

from groupwise._audit import audit
from groupwise._coverage import CoverageResult, coverage
from groupwise._errors import GroupExpressionError, GroupwiseError, InputError, ProvenanceError
from groupwise._example import speech_example, tabular_example
from groupwise._expr import GroupExpression, parse_group
from groupwise._metrics import METRICS
from groupwise._provenance import Provenance, load_schema
from groupwise._result import AuditResult

__all__ = [
    "METRICS",
    "AuditResult",
    "CoverageResult",
    "GroupExpression",
    "GroupExpressionError",
    "GroupwiseError",
    "InputError",
    "Provenance",
    "ProvenanceError",
    "audit",
    "coverage",
    "load_schema",
    "parse_group",
    "speech_example",
    "tabular_example",
]
__version__ = "0.1.0"
