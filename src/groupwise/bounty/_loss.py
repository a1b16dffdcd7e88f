"""Losses of the bias bounty, all scaled into [0, 1].

The guarantees of the bounty (DESIGN.md, "Algorithmic bias bounty") need a loss in
[0, 1]. Zero-one loss is; squared and absolute error are divided by a declared bound on
the error and clipped, so one wild prediction cannot weigh more than one wrong label.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from groupwise._errors import InputError

__all__ = ["Loss", "parse_loss"]

_KINDS = ("zero_one", "squared", "absolute")


@dataclass(frozen=True)
class Loss:
    """A per-example loss in [0, 1].

    Parameters
    ----------
    name : {"zero_one", "squared", "absolute"}
    bound : float or None
        For squared and absolute error, the size of error that costs the full loss of 1:
        ``min(|y - yhat|, bound) ** 2 / bound ** 2`` and ``min(|y - yhat|, bound) / bound``.

    Examples
    --------
    >>> Loss("absolute", 10.0)([0.0, 0.0], [5.0, 50.0]).tolist()
    [0.5, 1.0]
    >>> Loss("zero_one")([1, 0], [1, 1]).tolist()
    [0.0, 1.0]
    """

    name: str
    bound: float | None = None

    def __call__(self, y: npt.ArrayLike, yhat: npt.ArrayLike) -> npt.NDArray[np.float64]:
        y_arr = np.asarray(y)
        p_arr = np.asarray(yhat)
        if self.name == "zero_one":
            return (y_arr != p_arr).astype(np.float64)
        assert self.bound is not None
        error = np.abs(y_arr.astype(np.float64) - p_arr.astype(np.float64))
        # A NaN prediction is never reached (the sandbox refuses NaNs), but if it were it
        # must cost the full loss rather than poison every sum.
        error = np.minimum(np.nan_to_num(error, nan=self.bound, posinf=self.bound), self.bound) / self.bound
        return error**2 if self.name == "squared" else error

    @property
    def spec(self) -> str:
        """The loss as written on the command line, e.g. ``squared:bound=4``."""
        return self.name if self.bound is None else f"{self.name}:bound={self.bound:g}"


def parse_loss(spec: str, *, task: str, default_bound: float | None = None) -> Loss:
    """Parse ``zero_one``, ``squared[:bound=B]`` or ``absolute[:bound=B]``.

    Parameters
    ----------
    spec : str
        The loss as written on the command line.
    task : {"classification", "regression"}
        Zero-one loss goes with classification, the other two with regression.
    default_bound : float, optional
        The bound used when ``spec`` names none (the program passes the range of the
        training target).

    Examples
    --------
    >>> parse_loss("squared:bound=4", task="regression").spec
    'squared:bound=4'
    >>> parse_loss("hinge", task="classification")
    Traceback (most recent call last):
    ...
    groupwise._errors.InputError: the loss 'hinge' is not known. Fix: use zero_one, squared[:bound=B] or absolute[:bound=B].
    """
    name, _, rest = spec.strip().partition(":")
    if name not in _KINDS:
        raise InputError(f"the loss {spec!r} is not known", fix="use zero_one, squared[:bound=B] or absolute[:bound=B]")
    if task == "classification" and name != "zero_one":
        raise InputError(
            f"the loss {name!r} is for regression, but the task is classification",
            fix="use --loss zero_one, or --task regression",
        )
    if task == "regression" and name == "zero_one":
        raise InputError(
            "zero_one loss is for classification, but the task is regression",
            fix="use --loss squared:bound=B or --loss absolute:bound=B",
        )
    if name == "zero_one":
        if rest:
            raise InputError(f"zero_one loss takes no options, got {rest!r}", fix="write --loss zero_one")
        return Loss("zero_one")
    bound = default_bound
    if rest:
        key, _, value = rest.partition("=")
        if key.strip() != "bound":
            raise InputError(f"the loss option {key!r} is not known", fix=f"write {name}:bound=B")
        try:
            bound = float(value)
        except ValueError:
            raise InputError(f"the loss bound {value!r} is not a number", fix=f"write {name}:bound=B with B > 0") from None
    if bound is None or not np.isfinite(bound) or bound <= 0:
        raise InputError(
            f"the {name} loss needs a positive, finite bound on the error, got {bound!r}",
            fix=f"write {name}:bound=B with B the largest error that should cost the full loss",
        )
    return Loss(name, float(bound))
