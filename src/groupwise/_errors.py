"""Exceptions raised for user mistakes.

Every error groupwise raises for bad input is a :class:`GroupwiseError`: it carries the
problem, the fix and (where rows are at fault) the offending row labels as structured
fields, and its message is one paragraph ending with the fix. The command-line program
prints that paragraph and exits non-zero instead of showing a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["GroupwiseError", "InputError", "GroupExpressionError", "ProvenanceError"]


class GroupwiseError(Exception):
    """Base class of the errors groupwise raises for input it cannot use.

    Parameters
    ----------
    problem : str
        What is wrong, naming the column, file or option at fault.
    fix : str
        What the user can do about it.
    rows : sequence, optional
        Labels of the offending rows, when rows are at fault.

    Examples
    --------
    >>> err = InputError("column 'speaker' is missing", fix="pass --cluster with a column that exists")
    >>> print(err)
    column 'speaker' is missing. Fix: pass --cluster with a column that exists.
    """

    def __init__(self, problem: str, *, fix: str, rows: Sequence[Any] | None = None) -> None:
        if not problem or not fix:
            raise ValueError("a GroupwiseError needs both a problem and a fix")
        self.problem = problem.rstrip(".")
        self.fix = fix.rstrip(".")
        self.rows = list(rows) if rows is not None else []
        super().__init__(self.message)

    @property
    def message(self) -> str:
        text = f"{self.problem}."
        if self.rows:
            shown = ", ".join(str(r) for r in self.rows[:10])
            more = f" and {len(self.rows) - 10} more" if len(self.rows) > 10 else ""
            text += f" Rows: {shown}{more}."
        return f"{text} Fix: {self.fix}."


class InputError(GroupwiseError):
    """The data or an option does not fit what was asked for."""


class GroupExpressionError(GroupwiseError):
    """A group expression does not parse, is not allowed, or names an unknown column.

    Attributes
    ----------
    expression : str
        The expression as given (truncated to 200 characters).
    position : int or None
        Zero-based character offset of the fault in the expression, when known.
    """

    def __init__(
        self, problem: str, *, fix: str, expression: str = "", position: int | None = None
    ) -> None:
        self.expression = expression[:200]
        self.position = position
        if position is not None:
            problem = f"{problem} (at character {position + 1})"
        super().__init__(problem, fix=fix)


class ProvenanceError(GroupwiseError):
    """Disaggregation by a protected attribute that was imputed, or a bad provenance."""
