"""The card's JSON Schema (shipped as package data) and validation against it and the vendored schemas."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

from groupwise._errors import InputError

__all__ = ["card_schema", "validate_card", "vendored_schema", "schema_errors"]


@lru_cache(maxsize=None)
def _load(*parts: str) -> str:
    return resources.files("groupwise.card").joinpath("schemas", *parts).read_text(encoding="utf-8")


def card_schema() -> dict[str, Any]:
    """The JSON Schema every ``card.json`` is valid against.

    >>> card_schema()["title"]
    'groupwise service card'
    """
    return json.loads(_load("card.schema.json"))


def vendored_schema(name: str) -> dict[str, Any]:
    """A publisher's schema, vendored unchanged: ``"mct"`` or ``"eee"``."""
    path = {"mct": ("vendor", "model_card_toolkit", "model_card.schema.json"), "eee": ("vendor", "every_eval_ever", "eval.schema.json")}[name]
    return json.loads(_load(*path))


def schema_errors(instance: Any, schema: dict[str, Any]) -> list[str]:
    """Every violation of ``schema`` as ``'path: message'`` (empty when valid)."""
    import jsonschema

    cls = jsonschema.validators.validator_for(schema)
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    out = []
    for err in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))):
        where = "/".join(str(p) for p in err.absolute_path) or "(top)"
        out.append(f"{where}: {err.message[:200]}")
    return out


def validate_card(card: Any, *, source: str = "the card") -> None:
    """Raise :class:`InputError` naming the first violations when ``card`` breaks the schema."""
    errors = schema_errors(card, card_schema())
    if errors:
        shown = "; ".join(errors[:3]) + (f"; and {len(errors) - 3} more" if len(errors) > 3 else "")
        raise InputError(
            f"{source} is not a valid groupwise service card ({shown})",
            fix="pass a card.json written by 'groupwise card build' (print the schema with 'groupwise card schema')",
        )
