"""One set of validators with one message template, shared by every entry point.

Messages follow scikit-learn's: they name the function and the parameter, say what is
allowed, and show what was given, then end with the fix, for example "The 'n_boot'
parameter of audit must be an int in [0, inf). Got -1 instead. Fix: pass a value in that
range." Choices come back as the exact allowed string, so callers can type them as
``Literal``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np

from groupwise._errors import InputError

__all__ = ["DEFAULTS", "check_choice", "check_scalar"]

#: Defaults shared by the API and the command line, so sibling commands agree.
DEFAULTS: dict[str, Any] = {
    "alpha": 0.05,
    "confidence": 0.95,
    "correction": "holm",
    "min_clusters": 10,
    "min_examples": 30,
    "compare": "overall",
    "test": "auto",
    "scale": "relative",
}

S = TypeVar("S", bound=str)


def _where(name: str, caller: str | None) -> str:
    return f"The {name!r} parameter" + (f" of {caller}" if caller else "")


def check_scalar(
    value: Any,
    name: str,
    kind: type | tuple[type, ...],
    *,
    caller: str | None = None,
    min_val: float | None = None,
    max_val: float | None = None,
    include_min: bool = True,
    include_max: bool = True,
    fix: str | None = None,
) -> Any:
    """Check a scalar option's type and range.

    Parameters
    ----------
    value : object
        The value given.
    name : str
        The parameter's name.
    kind : type or tuple of types
        Allowed types. ``bool`` is refused unless listed; NumPy integers count as
        ``int`` and ``float``, NumPy floats as ``float``.
    caller : str, optional
        The public function or method the parameter belongs to.
    min_val, max_val : float, optional
        Bounds of the allowed interval (None: unbounded).
    include_min, include_max : bool, default=True
        Whether the bounds themselves are allowed.
    fix : str, optional
        The fix to show instead of "pass a value in that range".

    Returns
    -------
    object
        ``value``, unchanged.

    Examples
    --------
    >>> check_scalar(0, "n_boot", int, caller="audit", min_val=1)
    Traceback (most recent call last):
    ...
    groupwise._errors.InputError: The 'n_boot' parameter of audit must be an int in [1, inf). Got 0 instead. Fix: pass a value in that range.
    """
    kinds = kind if isinstance(kind, tuple) else (kind,)
    ok_type = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
    if isinstance(value, np.integer) and any(k in (int, float) for k in kinds):
        ok_type = True
    elif isinstance(value, np.floating) and float in kinds:
        ok_type = True
    low = "-inf" if min_val is None else min_val
    high = "inf" if max_val is None else max_val
    interval = f"{'[' if include_min and min_val is not None else '('}{low}, {high}{']' if include_max and max_val is not None else ')'}"
    kind_name = " or ".join(k.__name__ for k in kinds)
    in_range = ok_type and not (
        (min_val is not None and (value < min_val or (not include_min and value == min_val)))
        or (max_val is not None and (value > max_val or (not include_max and value == max_val)))
        or (isinstance(value, float) and np.isnan(value))
    )
    if not in_range:
        raise InputError(
            f"{_where(name, caller)} must be an {kind_name} in {interval}. Got {value!r} instead",
            fix=fix or "pass a value in that range",
        )
    return value


def check_choice(
    value: Any, name: str, choices: Sequence[S], *, caller: str | None = None, fix: str | None = None
) -> S:
    """Check that an option is one of ``choices`` and return the matching choice.

    Parameters
    ----------
    value : object
        The value given.
    name : str
        The parameter's name.
    choices : sequence of str
        The allowed values.
    caller : str, optional
        The public function or method the parameter belongs to.
    fix : str, optional
        The fix to show instead of "use one of ...".

    Returns
    -------
    str
        The choice equal to ``value``.

    Examples
    --------
    >>> check_choice("bh", "correction", ("holm", "bh", "none"), caller="audit")
    'bh'
    >>> check_choice("hochberg", "correction", ("holm", "bh", "none"), caller="audit")
    Traceback (most recent call last):
    ...
    groupwise._errors.InputError: The 'correction' parameter of audit must be one of 'holm', 'bh', 'none'. Got 'hochberg' instead. Fix: use one of holm, bh, none.
    """
    for choice in choices:
        if value == choice:
            return choice
    raise InputError(
        f"{_where(name, caller)} must be one of {', '.join(repr(c) for c in choices)}. Got {value!r} instead",
        fix=fix or f"use one of {', '.join(choices)}",
    )
