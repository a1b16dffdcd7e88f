"""Modules imported on first use.

pandas takes about a tenth of a second to import. The audit of transcripts in a Parquet
file by columns never needs it (the file is read and grouped with polars, see
:func:`groupwise._io.read_parquet_polars`),
so the modules on that path refer to pandas through :func:`module`, which imports it the
first time one of its attributes is read. The stand-in is not put in ``sys.modules``:
code that asks whether pandas is loaded (polars does, before its conversions) gets a
true answer.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["module"]


class _Deferred:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)

    def __repr__(self) -> str:
        return f"<module {self._name!r}, imported on first use>"


def module(name: str) -> Any:
    """``name``, imported when an attribute of it is first read.

    >>> np = module("numpy")
    >>> np.zeros(2).tolist()
    [0.0, 0.0]
    """
    return _Deferred(name)
