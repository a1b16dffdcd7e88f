"""Where each grouping column came from, and the rule against imputed protected attributes.

A group column's provenance is one of ``self_reported``, ``annotated``, ``measured``,
``synthetic`` or ``imputed`` (``unspecified`` when nobody said). Inferring race or gender
from a voice or a name and then reporting error rates by that inference launders a guess
into a finding, so disaggregating by a *protected* attribute whose provenance is
``imputed`` is refused unless the caller explicitly allows it. Provenance is copied into
every output.

Provenance comes from keyword arguments or from a small schema file (YAML or JSON)::

    columns:
      gender: {provenance: self_reported, protected: true}
      accent: annotated          # shorthand for {provenance: annotated}
      race: {provenance: imputed}
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from groupwise._errors import InputError, ProvenanceError

__all__ = ["PROVENANCES", "PROTECTED_DEFAULT", "Provenance", "load_schema"]

PROVENANCES = ("self_reported", "annotated", "measured", "synthetic", "imputed", "unspecified")

#: Column names treated as protected attributes unless a schema says otherwise. Matching is
#: on the lower-cased name with spaces and dashes as underscores.
PROTECTED_DEFAULT = frozenset(
    {
        "age", "age_group", "sex", "gender", "race", "ethnicity", "race_ethnicity",
        "religion", "disability", "sexual_orientation", "national_origin", "nationality",
        "marital_status", "pregnancy", "skin_tone", "native_country", "voice_gender",
    }
)


def _key(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


@dataclass(frozen=True)
class Provenance:
    """Provenance and protection of the columns of one data set.

    Parameters
    ----------
    columns : mapping of str to str
        Column name to provenance (one of :data:`PROVENANCES`).
    protected : iterable of str, optional
        Extra column names to treat as protected attributes.
    unprotected : iterable of str, optional
        Column names to take off the default protected list.

    Examples
    --------
    >>> p = Provenance({"race": "imputed"})
    >>> p.of("race"), p.of("accent")
    ('imputed', 'unspecified')
    >>> p.check(["accent"], allow_imputed=False)
    >>> p.check(["race"], allow_imputed=False)
    Traceback (most recent call last):
    ...
    groupwise._errors.ProvenanceError: column 'race' is a protected attribute whose values were imputed (inferred, not reported), and groupwise does not disaggregate by imputed protected attributes. Fix: use a self-reported column instead, or pass allow_imputed=True (--allow-imputed) if you accept that the results describe the imputation as much as the people.
    """

    columns: Mapping[str, str] = field(default_factory=dict)
    protected: frozenset[str] = frozenset()
    unprotected: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for column, value in self.columns.items():
            if value not in PROVENANCES:
                raise InputError(
                    f"provenance {value!r} of column {column!r} is not known",
                    fix=f"use one of {', '.join(PROVENANCES[:-1])}",
                )
        object.__setattr__(self, "protected", frozenset(_key(c) for c in self.protected))
        object.__setattr__(self, "unprotected", frozenset(_key(c) for c in self.unprotected))

    def of(self, column: str) -> str:
        """The provenance of ``column`` (``'unspecified'`` when nobody said)."""
        return self.columns.get(column, "unspecified")

    def is_protected(self, column: str) -> bool:
        """Whether ``column`` is a protected attribute."""
        key = _key(column)
        if key in self.unprotected:
            return False
        return key in self.protected or key in PROTECTED_DEFAULT

    def check(self, columns: Iterable[str], *, allow_imputed: bool) -> None:
        """Refuse disaggregation by imputed protected attributes."""
        for column in columns:
            if self.of(column) == "imputed" and self.is_protected(column) and not allow_imputed:
                raise ProvenanceError(
                    f"column {column!r} is a protected attribute whose values were imputed "
                    "(inferred, not reported), and groupwise does not disaggregate by imputed "
                    "protected attributes",
                    fix="use a self-reported column instead, or pass allow_imputed=True "
                    "(--allow-imputed) if you accept that the results describe the imputation "
                    "as much as the people",
                )

    def describe(self, columns: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The provenance record written into outputs, one entry per column."""
        return {
            c: {"provenance": self.of(c), "protected": self.is_protected(c)} for c in columns
        }

    def merged(self, other: Mapping[str, str]) -> Provenance:
        """A copy with ``other`` overriding the provenance of some columns."""
        return Provenance(
            {**self.columns, **other}, protected=self.protected, unprotected=self.unprotected
        )


def load_schema(path: str | os.PathLike[str]) -> Provenance:
    """Read a provenance schema from a YAML or JSON file (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"schema file {str(path)!r} does not exist", fix="check the path")
    text = path.read_text(encoding="utf-8")
    import yaml

    try:
        raw = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise InputError(f"schema file {str(path)!r} does not parse: {exc}", fix="fix its syntax") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("columns"), dict):
        raise InputError(
            f"schema file {str(path)!r} has no 'columns' mapping",
            fix="write it as 'columns:' followed by one 'name: provenance' line per column",
        )
    provenance: dict[str, str] = {}
    protected: set[str] = set()
    unprotected: set[str] = set()
    for column, spec in raw["columns"].items():
        if isinstance(spec, str):
            spec = {"provenance": spec}
        if not isinstance(spec, dict):
            raise InputError(
                f"schema entry for column {column!r} is neither a provenance nor a mapping",
                fix="write 'name: self_reported' or 'name: {provenance: ..., protected: true}'",
            )
        if "provenance" in spec:
            provenance[str(column)] = str(spec["provenance"])
        if spec.get("protected") is True:
            protected.add(str(column))
        elif spec.get("protected") is False:
            unprotected.add(str(column))
    return Provenance(provenance, protected=frozenset(protected), unprotected=frozenset(unprotected))


def parse_assignments(items: Iterable[str]) -> dict[str, str]:
    """Parse ``column=provenance`` strings from the command line.

    >>> parse_assignments(["gender=self_reported", "accent=annotated"])
    {'gender': 'self_reported', 'accent': 'annotated'}
    """
    out: dict[str, str] = {}
    for item in items:
        column, sep, value = item.partition("=")
        if not sep or not column.strip() or not value.strip():
            raise InputError(
                f"provenance {item!r} is not of the form column=provenance",
                fix="write for example --provenance gender=self_reported",
            )
        out[column.strip()] = value.strip()
    return out
