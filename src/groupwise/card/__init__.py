"""Service cards: what was measured, compiled into the card a provider publishes.

:func:`build` turns a provider's ``card.yaml`` and the JSON of ``groupwise audit``
(optionally ``lastmile``, ``compare``, ``coverage`` and ``slices``) into ``card.html``,
``card.md`` and ``card.json`` (valid against the schema returned by :func:`schema`), with
exports for Model Card Toolkit, Hugging Face ``model-index`` and Every Eval Ever.
:func:`diff` compares two versions of a card, testing each group's change from the audits'
own standard errors and degrees of freedom (Welch-Satterthwaite, Student t) where the
cards carry them. Sections follow AWS AI Service Cards. Names are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from groupwise.card._build import SCHEMA_VERSION, build
    from groupwise.card._diff import diff
    from groupwise.card._schema import card_schema as schema

_LAZY = {
    "build": ("groupwise.card._build", "build"),
    "SCHEMA_VERSION": ("groupwise.card._build", "SCHEMA_VERSION"),
    "diff": ("groupwise.card._diff", "diff"),
    "schema": ("groupwise.card._schema", "card_schema"),
}

__all__ = ["SCHEMA_VERSION", "build", "diff", "schema"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'groupwise.card' has no attribute {name!r}")
