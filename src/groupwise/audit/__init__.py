"""The measuring core: metrics, alignment, text normalisation, statistics, results,
coverage, paired comparisons (last mile), reports and plots.

Everything here works on the one table shape of :mod:`groupwise` (per-row ``num`` and
``den``, a cluster, grouping columns). Speech, bounty and service sit on top of this
package; nothing here imports them. The public names are re-exported from
:mod:`groupwise`.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

_LAZY = {
    "audit": "groupwise.audit._audit",
    "AuditResult": "groupwise.audit._result",
    "coverage": "groupwise.audit._coverage",
    "CoverageResult": "groupwise.audit._coverage",
    "lastmile": "groupwise.audit._lastmile",
    "LastMileResult": "groupwise.audit._lastmile",
    "METRICS": "groupwise.audit._metrics",
}
#: The typed rows of the results (groupwise.audit._rows), exported here and from groupwise.
ROWS = ("AuditGroup", "AuditOverall", "Condition", "ConditionDelta", "ConditionGroup", "CoverageCell", "SliceRow")
_LAZY.update(dict.fromkeys(ROWS, "groupwise.audit._rows"))

__all__ = [
    "METRICS", "AuditResult", "CoverageResult", "LastMileResult", "audit", "coverage", "lastmile",
    *ROWS,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'groupwise.audit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _AuditPackage(types.ModuleType):
    """``groupwise.audit`` is both this package and the :func:`audit` entry point.

    Importing a subpackage binds its name on the parent package, so a package named
    ``audit`` would otherwise replace the function ``groupwise.audit`` as soon as any of
    its modules is imported. Calling the package calls the function, and its signature and
    help are the function's.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from groupwise.audit._audit import audit as run

        return run(*args, **kwargs)

    @property
    def __signature__(self) -> Any:
        import inspect

        from groupwise.audit._audit import audit as run

        return inspect.signature(run)

    @property
    def __wrapped__(self) -> Any:
        from groupwise.audit._audit import audit as run

        return run


sys.modules[__name__].__class__ = _AuditPackage
