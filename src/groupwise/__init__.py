"""groupwise: task-relevant fairness testing of AI services."""

from groupwise._errors import GroupExpressionError, GroupwiseError, InputError, ProvenanceError

__all__ = ["GroupExpressionError", "GroupwiseError", "InputError", "ProvenanceError"]
__version__ = "0.1.0"
