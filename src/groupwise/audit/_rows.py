"""Typed rows of every result: one dataclass per kind of row, readable as a mapping too.

A result holds rows (an audit's groups, a last-mile condition's groups, a coverage cell, a
slice). Each row is a dataclass with one typed attribute per number, so ``row.p_adjusted``
and ``row.flagged`` are checked by a type checker and completed by an editor. Rows also
read like the JSON they become (``row["gap"]``, ``row.get("se")``, ``dict(row)``), so code
written against the JSON and code written against the API look the same.

Counts that depend on the metric (``substitutions`` for WER, the adjusted ratios of
``adjust=``) live in ``extra`` and read like the declared fields; ``to_dict`` flattens them
in, so the JSON has one flat object per row.

Examples
--------
>>> row = AuditGroup(family="accent", group={"accent": "hi"}, n=120, clusters=12, value=0.21,
...                  status="tested", extra={"substitutions": 30.0})
>>> row.value, row["value"], row["substitutions"], row.get("gap")
(0.21, 0.21, 30.0, None)
>>> row.to_dict()["substitutions"]
30.0
>>> AuditGroup.coerce(row.to_dict()) == row
True
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, TypeVar

__all__ = [
    "Row",
    "AuditGroup",
    "AuditOverall",
    "ConditionDelta",
    "ConditionGroup",
    "Condition",
    "CoverageCell",
    "SliceRow",
]

R = TypeVar("R", bound="Row")


@functools.cache
def _declared(cls: type) -> tuple[tuple[str, ...], frozenset[str]]:
    """A row class's declared fields without ``extra``: in order, and as a set for lookups."""
    names = tuple(f.name for f in fields(cls) if f.name != "extra")
    return names, frozenset(names)


def _plain(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Row):
        return value.to_dict()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class Row(Mapping[str, Any]):
    """The base of every typed row: attribute access, mapping access, ``to_dict``.

    Subclasses are dataclasses whose last field is ``extra`` (a dict of further named
    numbers). Mapping equality holds: a row equals a dict with the same keys and values.
    """

    _nested: ClassVar[dict[str, type[Row]]] = {}
    extra: dict[str, Any]

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The declared fields, in order, without ``extra``."""
        return _declared(cls)[0]

    # -- mapping protocol --------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        if key in _declared(type(self))[1]:
            return getattr(self, key)
        return self.extra[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if key in _declared(type(self))[1]:
            setattr(self, key, value)
        else:
            self.extra[key] = value

    def __iter__(self) -> Iterator[str]:
        yield from self.field_names()
        yield from self.extra

    def __len__(self) -> int:
        return len(self.field_names()) + len(self.extra)

    def __contains__(self, key: object) -> bool:
        return key in _declared(type(self))[1] or key in self.extra

    def update(self, other: Mapping[str, Any] = (), /, **more: Any) -> None:  # type: ignore[assignment]
        """Set several fields (declared or extra) at once, like ``dict.update``."""
        for key, value in {**dict(other), **more}.items():
            self[key] = value

    # -- conversion --------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The row as a flat, JSON-ready dict (nested rows become dicts)."""
        out = {name: _plain(getattr(self, name)) for name in self.field_names()}
        out.update((key, _plain(value)) for key, value in self.extra.items())
        return out

    @classmethod
    def coerce(cls: type[R], value: R | Mapping[str, Any]) -> R:
        """A row of this class from a row or a mapping; unknown keys go to ``extra``."""
        if isinstance(value, cls):
            return value
        names = _declared(cls)[1]
        known = {k: v for k, v in value.items() if k in names}
        for key, kind in cls._nested.items():
            item = known.get(key)
            if isinstance(item, list):
                known[key] = [kind.coerce(v) for v in item]
            elif isinstance(item, Mapping):
                known[key] = kind.coerce(item)
        extra = {k: v for k, v in value.items() if k not in names}
        return cls(**known, extra=extra)  # type: ignore[call-arg]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        return dict(self.items()) == dict(other.items())

    __hash__ = None  # type: ignore[assignment]


@dataclass(eq=False)
class AuditGroup(Row):
    """One group of an audit: its value, interval, gap to the reference and its test.

    ``status`` is ``tested``, ``reference``, ``no_reference``, ``insufficient``,
    ``insufficient_reference``, ``untestable``, ``not_tested`` or ``undefined``; the
    interval and test fields are ``None`` where the status gives no such number.
    """

    family: str
    group: dict[str, Any]
    n: int
    clusters: int
    n_with_den: int | None = None
    num: float | None = None
    den: float | None = None
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    se_value: float | None = None
    df_value: float | None = None
    reference_value: float | None = None
    gap: float | None = None
    gap_ci_low: float | None = None
    gap_ci_high: float | None = None
    ratio: float | None = None
    ratio_ci_low: float | None = None
    ratio_ci_high: float | None = None
    se: float | None = None
    df: float | None = None
    test: str | None = None
    test_scale: str | None = None
    variance: str | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    flagged: bool = False
    direction: str | None = None
    status: str = "tested"
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(eq=False)
class AuditOverall(Row):
    """The metric over every row of an audit, with its interval and summed counts."""

    value: float | None
    n: int
    clusters: int
    n_with_den: int | None = None
    clusters_with_den: int | None = None
    num: float | None = None
    den: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(eq=False)
class ConditionDelta(Row):
    """A condition's paired change over every row (last mile or comparison of systems)."""

    baseline: float | None
    value: float | None
    delta: float | None
    delta_ci_low: float | None = None
    delta_ci_high: float | None = None
    delta_se: float | None = None
    delta_df: float | None = None
    n: int = 0
    clusters: int = 0
    p_value: float | None = None
    p_adjusted: float | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(eq=False)
class ConditionGroup(Row):
    """One group under a condition: its paired delta and the interaction with the rest."""

    group: dict[str, Any]
    n: int
    clusters: int
    baseline: float | None = None
    value: float | None = None
    delta: float | None = None
    delta_ci_low: float | None = None
    delta_ci_high: float | None = None
    delta_p_value: float | None = None
    delta_se: float | None = None
    delta_df: float | None = None
    delta_ratio: float | None = None
    rest_delta: float | None = None
    rest_delta_ratio: float | None = None
    interaction: float | None = None
    interaction_ci_low: float | None = None
    interaction_ci_high: float | None = None
    interaction_scale: str | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    flagged: bool = False
    direction: str | None = None
    test: str | None = None
    df: float | None = None
    status: str = "tested"
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(eq=False)
class Condition(Row):
    """One non-baseline condition (or system): the overall delta and one row per group."""

    condition: str
    name: str
    overall: ConditionDelta
    groups: list[ConditionGroup]
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    _nested: ClassVar[dict[str, type[Row]]] = {"overall": ConditionDelta, "groups": ConditionGroup}


@dataclass(eq=False)
class CoverageCell(Row):
    """One combination of the coverage dimensions: counts, status and, with a metric, the plan."""

    cell: dict[str, Any]
    n: int
    clusters: int
    status: str
    value: float | None = None
    half_width: float | None = None
    clusters_needed: int | None = None
    more_clusters: int | None = None
    variance_source: str | None = None
    detectable_gap: float | None = None
    detectable_gap_planned: float | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(eq=False)
class SliceRow(Row):
    """One candidate slice: found on the discovery half, tested on the confirmation half."""

    expression: str
    order: int
    n: int
    clusters: int
    discovery: dict[str, Any]
    confirmation: dict[str, Any]
    confirmed: bool
    merged: list[dict[str, Any]] = field(default_factory=list)
    within: str | None = None
    worse_than_within: bool | None = None
    carried_by: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)
