"""The built-in Adult example and the three-way split of a bounty program's data.

A program splits its labelled data once, at creation, into a public training split (for
submitters to fit models on), a public test split (everything shown is computed on it)
and a private holdout (it only ever answers accept or reject). This module holds that
split and the holdout size the guarantees of DESIGN.md ask for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources

import numpy as np
import pandas as pd

from groupwise._errors import InputError
from groupwise._validation import check_scalar

__all__ = ["ADULT_FEATURES", "Splits", "holdout_bound", "load_adult", "split_data"]

#: The Adult features the built-in example uses. ``fnlwgt`` (a census sampling weight,
#: not a property of the person) and ``education`` (the same as ``education_num``) are left out.
ADULT_FEATURES = (
    "age", "workclass", "education_num", "marital_status", "occupation", "relationship",
    "race", "sex", "capital_gain", "capital_loss", "hours_per_week", "native_country",
)


def load_adult() -> pd.DataFrame:
    """Return the UCI Adult census data shipped with groupwise (48,842 rows).

    Becker and Kohavi (1996), UCI Machine Learning Repository, CC BY 4.0; see
    ``groupwise/bounty/data/README.md`` for the changes made. The label is ``income``
    (``<=50K`` or ``>50K``); ``source`` says which original file a row came from.

    Examples
    --------
    >>> adult = load_adult()
    >>> adult.shape, sorted(adult["income"].unique())
    ((48842, 16), ['<=50K', '>50K'])
    """
    path = resources.files("groupwise.bounty") / "data" / "adult.csv.gz"
    with resources.as_file(path) as file:
        frame = pd.read_csv(file, keep_default_na=False)
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = frame[column].astype(str)
    return frame


def holdout_bound(epsilon: float, queries: int, delta: float = 0.05) -> int:
    """Holdout rows for the guarantees: ``(32/eps^2)(log(2U/delta) + floor(2/eps) log(U+1))``.

    Examples
    --------
    >>> holdout_bound(0.1, 1000)
    476070
    """
    value = (32.0 / epsilon**2) * (math.log(2 * queries / delta) + math.floor(2 / epsilon) * math.log(queries + 1))
    return int(math.ceil(value))


@dataclass(frozen=True)
class Splits:
    """Row positions of the three splits in the original data."""

    train: np.ndarray
    test: np.ndarray
    holdout: np.ndarray


def _size(value: float, n: int, option: str) -> int:
    check_scalar(
        value, option, (int, float), caller="split_data", min_val=0.0, include_min=False,
        fix=f"pass {option} as a fraction in (0, 1) or a row count",
    )
    count = int(round(value * n)) if value < 1 else int(value)
    return count


def split_data(n: int, *, test_size: float, holdout_size: float, seed: int) -> Splits:
    """Shuffle ``n`` rows into train, test and holdout positions.

    Sizes under 1 are fractions of ``n``, sizes of 1 or more row counts; the training
    split gets the rest.

    Examples
    --------
    >>> s = split_data(100, test_size=0.2, holdout_size=0.3, seed=0)
    >>> len(s.train), len(s.test), len(s.holdout)
    (50, 20, 30)
    """
    n_test = _size(test_size, n, "test_size")
    n_hold = _size(holdout_size, n, "holdout_size")
    if n_test + n_hold >= n - 1:
        raise InputError(
            f"the test ({n_test:,}) and holdout ({n_hold:,}) splits leave no training rows out of {n:,}",
            fix="lower --test-size or --holdout-size",
        )
    order = np.random.default_rng(seed).permutation(n)
    return Splits(
        train=np.sort(order[n_test + n_hold :]),
        test=np.sort(order[:n_test]),
        holdout=np.sort(order[n_test : n_test + n_hold]),
    )
