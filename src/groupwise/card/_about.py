"""The provider's prose of a service card: ``card.yaml``, read and validated field by field.

Everything a card says in words comes from this file; every number comes from the measured
JSON. A missing or mistyped field is reported with its dotted name (``service.version``),
what was found and how to write it.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

from groupwise._errors import InputError

__all__ = ["load_about", "validate_about", "EXAMPLE_YAML"]

EXAMPLE_YAML = """\
service:
  name: Clinical dictation ASR
  version: "2.1"
  as_of: 2026-11-30
  owner: Speech team, Example Health
  contact: speech-team@example.org
overview: >-
  Transcribes dictated clinical notes in English.
intended_uses:
  - Dictation of clinical notes by clinicians, reviewed before filing.
out_of_scope_uses:
  - Unreviewed transcripts in a patient record.
limitations:
  - Word error rate is higher for some accents; see Fairness.
evaluation_data:
  description: Read clinical sentences from 240 speakers of 14 accents.
  collection: Recorded for this evaluation; accents annotated by linguists.
  self_reported: false
  synthetic: false
deployment_advice:
  - Test the service under your own acoustic conditions before relying on it.
"""

_TOP = {
    "service": dict,
    "overview": str,
    "intended_uses": list,
    "out_of_scope_uses": list,
    "limitations": list,
    "evaluation_data": dict,
    "deployment_advice": list,
}
_OPTIONAL_TOP = {"glossary": dict, "references": list}
_SERVICE = {"name": str, "version": str, "as_of": "date", "owner": str}
_SERVICE_OPTIONAL = {
    "contact": str, "task": str, "license": str, "model_availability": str, "deployment_type": str,
}
_DATA = {"description": str, "collection": str, "self_reported": bool}
_DATA_OPTIONAL = {"synthetic": bool, "name": str}
_ENUMS = {
    "service.model_availability": ("open_weights", "closed_weights", "unknown"),
    "service.deployment_type": ("self_deployed", "externally_managed", "unknown"),
}

_TYPE_WORDS = {str: "text", list: "a list", dict: "a mapping", bool: "true or false", "date": "a date (YYYY-MM-DD)"}


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return f"a boolean ({value})"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    if isinstance(value, (_dt.date, _dt.datetime)):
        return f"a date ({value})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"text ({str(value)[:40]!r})"


def _hint(name: str, expected: Any, value: Any) -> str:
    key = name.rsplit(".", 1)[-1]
    if expected is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return f'write it in quotes: {key}: "{value}"'
    if expected is list:
        return f"write it as a list, one item per line starting with '- ' under {key}:"
    if expected is bool:
        return f"write {key}: true or {key}: false"
    if expected == "date":
        return f"write {key}: 2026-11-30 (year-month-day)"
    if expected is dict:
        return f"indent the fields of {key} under it"
    return f"give {key} as {_TYPE_WORDS[expected]}"


def _check(section: dict[str, Any], required: dict[str, Any], optional: dict[str, Any], prefix: str, source: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, expected in {**required, **optional}.items():
        name = f"{prefix}{key}"
        if key not in section or section[key] is None or section[key] == "":
            if key in required:
                raise InputError(
                    f"{source}: the field '{name}' is missing",
                    fix=f"add {name} ({_TYPE_WORDS[expected]}); an example card.yaml is printed by 'groupwise card example'",
                )
            continue
        value = section[key]
        if expected == "date":
            if isinstance(value, _dt.datetime):
                value = value.date()
            if isinstance(value, str):
                try:
                    value = _dt.date.fromisoformat(value.strip())
                except ValueError:
                    raise InputError(
                        f"{source}: the field '{name}' is {value!r}, not a date", fix=_hint(name, expected, value)
                    ) from None
            if not isinstance(value, _dt.date):
                raise InputError(f"{source}: the field '{name}' must be a date, got {_kind(value)}", fix=_hint(name, expected, value))
            out[key] = value.isoformat()
            continue
        ok = isinstance(value, expected) and not (expected is not bool and isinstance(value, bool))
        if not ok:
            raise InputError(
                f"{source}: the field '{name}' must be {_TYPE_WORDS[expected]}, got {_kind(value)}",
                fix=_hint(name, expected, value),
            )
        if expected is str:
            value = value.strip()
        if expected is list:
            if not value and key in required:
                raise InputError(f"{source}: the list '{name}' is empty", fix=f"give at least one item under {name}")
            for i, item in enumerate(value):
                if not isinstance(item, str) or not item.strip():
                    raise InputError(
                        f"{source}: item {i + 1} of '{name}' must be a sentence of text, got {_kind(item)}",
                        fix="write each item as text after '- ' (quote it if it starts with a special character)",
                    )
            value = [item.strip() for item in value]
        if name in _ENUMS and value not in _ENUMS[name]:
            raise InputError(f"{source}: the field '{name}' is {value!r}", fix=f"use one of {', '.join(_ENUMS[name])}")
        out[key] = value
    unknown = sorted(set(section) - set(required) - set(optional))
    if unknown:
        raise InputError(
            f"{source}: unknown field(s) {', '.join(prefix + u for u in unknown)}",
            fix=f"check the spelling; the fields here are {', '.join(prefix + k for k in [*required, *optional])}",
        )
    return out


def validate_about(raw: Any, *, source: str = "card.yaml") -> dict[str, Any]:
    """Check a parsed ``card.yaml`` and return it normalised (dates as ISO text).

    Parameters
    ----------
    raw : object
        What ``yaml.safe_load`` returned.
    source : str
        The file name used in error messages.

    Returns
    -------
    dict

    Examples
    --------
    >>> import yaml
    >>> about = validate_about(yaml.safe_load(EXAMPLE_YAML))
    >>> about["service"]["version"], about["service"]["as_of"]
    ('2.1', '2026-11-30')
    >>> validate_about({**yaml.safe_load(EXAMPLE_YAML), "service": {"name": "x", "version": 2.1}})
    Traceback (most recent call last):
    ...
    groupwise._errors.InputError: card.yaml: the field 'service.version' must be text, got a number (2.1). Fix: write it in quotes: version: "2.1".
    """
    if not isinstance(raw, dict):
        raise InputError(
            f"{source} must be a mapping of fields (service, overview, intended_uses, ...), got {_kind(raw)}",
            fix="start from the example printed by 'groupwise card example'",
        )
    about = _check(raw, _TOP, _OPTIONAL_TOP, "", source)
    about["service"] = _check(raw["service"], _SERVICE, _SERVICE_OPTIONAL, "service.", source)
    about["evaluation_data"] = _check(raw["evaluation_data"], _DATA, _DATA_OPTIONAL, "evaluation_data.", source)
    about["evaluation_data"].setdefault("synthetic", False)
    glossary = about.get("glossary") or {}
    for term, text in glossary.items():
        if not isinstance(term, str) or not isinstance(text, str):
            raise InputError(
                f"{source}: glossary entry {term!r} must map a term to its definition as text",
                fix="write each entry as 'term: definition'",
            )
    about["glossary"] = dict(glossary)
    return about


def load_about(path: str | Path) -> tuple[dict[str, Any], bytes]:
    """Read and validate ``card.yaml``; returns the fields and the file's bytes (for its hash)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"the card description {str(path)!r} does not exist",
            fix="write a card.yaml (print an example with 'groupwise card example') and pass it with --about",
        )
    data = path.read_bytes()
    try:
        raw = yaml.safe_load(data.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
        raise InputError(
            f"{path.name} is not valid YAML{at}", fix="check the indentation and quote text that contains ':' or '#'"
        ) from None
    return validate_about(raw, source=path.name), data
