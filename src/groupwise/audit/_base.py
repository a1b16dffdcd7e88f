"""The base every result class shares: one JSON writer, one shape of output.

Each result (:class:`groupwise.AuditResult`, the last mile's and the paired comparison's
:class:`LastMileResult`, :class:`CoverageResult`, :class:`SliceResult`) says what it holds in
``to_dict`` and gets ``to_json`` from here, so every JSON file groupwise writes follows the
same rules: no NaN or infinity (``allow_nan=False``; missing numbers are ``null``), two-space
indentation, a final newline, UTF-8.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["Result"]


class Result:
    """What every result has: ``to_dict`` (its own) and ``to_json`` (shared)."""

    def to_dict(self) -> dict[str, Any]:  # pragma: no cover - every result defines it
        raise NotImplementedError

    def to_json(self, path: str | os.PathLike[str] | None = None, *, indent: int = 2) -> str:
        """The result as JSON text; also written to ``path`` when given.

        Examples
        --------
        >>> class Tiny(Result):
        ...     def to_dict(self):
        ...         return {"value": 0.25, "missing": None}
        >>> print(Tiny().to_json(indent=None))
        {"value": 0.25, "missing": null}
        """
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=False, default=str)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text
