"""Reading the measured results a card is compiled from, defensively.

The inputs are the JSON files of ``groupwise audit --json``, ``groupwise lastmile --json``
and ``groupwise coverage --json``. Their shapes grow (new fields appear as the statistics
evolve), so only the fields a card needs are required; every other field is carried
through unchanged. A file that is missing, is not JSON, or is the wrong kind of result is
reported with what to pass instead.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from groupwise._errors import InputError

__all__ = ["read_result", "interval_summary", "ROLES"]

ROLES = {
    "audit": ("groupwise audit --json", "--audit"),
    "lastmile": ("groupwise lastmile --json", "--lastmile"),
    "coverage": ("groupwise coverage --json", "--coverage"),
    "slices": ("groupwise slices --json", "--slices"),
}


def _kind_of(data: dict[str, Any]) -> str | None:
    if isinstance(data.get("slices"), list) and isinstance(data.get("found_by_search"), dict):
        return "slices"
    if isinstance(data.get("groups"), list) and "overall" in data:
        return "audit"
    if isinstance(data.get("conditions"), list):
        return "lastmile"
    if isinstance(data.get("cells"), list) and "dims" in data:
        return "coverage"
    return None


def read_result(path: str | Path, role: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read one result JSON; return it and its input record (name, sha256, bytes).

    Parameters
    ----------
    path : path
    role : {"audit", "lastmile", "coverage", "slices"}

    Returns
    -------
    (dict, dict)
    """
    command, option = ROLES[role]
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"the {role} result {str(path)!r} does not exist",
            fix=f"write it with '{command} FILE' and pass that file with {option}",
        )
    raw = path.read_bytes()
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"{path.name} (given to {option}) is not UTF-8 text", fix=f"pass the JSON written by '{command}'") from None
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path.name} (given to {option}) is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
            fix=f"write it again with '{command}'; a file cut short by an interrupted run cannot be read",
        ) from None
    if not isinstance(data, dict):
        raise InputError(f"{path.name} (given to {option}) holds a JSON {type(data).__name__}, not a result", fix=f"pass the JSON written by '{command}'")
    kind = _kind_of(data)
    if kind != role:
        found = f"the output of '{ROLES[kind][0]}'" if kind else "not a groupwise result"
        fix = f"pass it with {ROLES[kind][1]} instead" if kind else f"pass the JSON written by '{command}'"
        raise InputError(f"{path.name} was given to {option} but is {found}", fix=fix)
    _check_shape(data, role, path.name, option)
    record = {"role": role, "file": path.name, "sha256": hashlib.sha256(raw).hexdigest(), "bytes": len(raw)}
    return data, record


def _check_shape(data: dict[str, Any], role: str, name: str, option: str) -> None:
    command = ROLES[role][0]

    def bad(what: str) -> InputError:
        return InputError(f"{name} (given to {option}) {what}", fix=f"write it again with '{command}' from this version of groupwise")

    if role == "audit":
        if not isinstance(data.get("metric"), str):
            raise bad("has no 'metric'")
        if not isinstance(data.get("overall"), dict) or "value" not in data["overall"]:
            raise bad("has no overall value")
        for i, g in enumerate(data["groups"]):
            if not isinstance(g, dict) or not isinstance(g.get("group"), dict) or "value" not in g or "status" not in g:
                raise bad(f"has a malformed group (entry {i + 1}: it needs 'group', 'value' and 'status')")
    elif role == "lastmile":
        if not isinstance(data.get("metric"), str):
            raise bad("has no 'metric'")
        for i, c in enumerate(data["conditions"]):
            if not isinstance(c, dict) or "condition" not in c or not isinstance(c.get("groups"), list) or not isinstance(c.get("overall"), dict):
                raise bad(f"has a malformed condition (entry {i + 1}: it needs 'condition', 'overall' and 'groups')")
            for g in c["groups"]:
                if not isinstance(g, dict) or not isinstance(g.get("group"), dict) or "status" not in g:
                    raise bad(f"has a malformed group under condition {c['condition']!r}")
    elif role == "slices":
        if not isinstance(data.get("metric"), str):
            raise bad("has no 'metric'")
        section = data["found_by_search"]
        if not isinstance(section.get("slices"), list) or any(
            not isinstance(x, dict) or not isinstance(x.get("expression"), str) for x in section["slices"]
        ):
            raise bad("has a malformed 'found_by_search' section (it needs a list of slices with an 'expression')")
    else:
        for c in data["cells"]:
            if not isinstance(c, dict) or not isinstance(c.get("cell"), dict) or "status" not in c:
                raise bad("has a malformed cell (it needs 'cell' and 'status')")


def _finite(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        return None
    return float(x)


def interval_summary(
    value: Any, low: Any, high: Any, *, clusters: Any, confidence: float
) -> dict[str, Any] | None:
    """Standard errors read back from a reported interval: what a diff between cards needs.

    The audit's interval method may change (log-scale t intervals, exact Poisson intervals
    on an effective sample size, ...), so the card does not assume one: it reads the
    interval's width on the log scale (``se_log``, None when the interval touches zero)
    and on the absolute scale (``se``), each divided by ``2 z`` with ``z`` the normal
    quantile of the confidence level. Where the interval was built with a Student t (or a
    small-sample widening), ``t > z`` and the standard error read back is larger than the
    one used, so tests built on it are conservative. Nothing per speaker is stored.

    Parameters
    ----------
    value, low, high : float or None
    clusters : int
        Recorded as ``df = clusters - 1`` for information.
    confidence : float

    Returns
    -------
    dict or None
        ``se``, ``se_log``, ``df`` and ``method``; None when there is no interval.

    Examples
    --------
    >>> import math
    >>> s = interval_summary(0.2, 0.2 * math.exp(-0.196), 0.2 * math.exp(0.196), clusters=11, confidence=0.95)
    >>> round(s["se_log"], 4), s["df"]
    (0.1, 10)
    """
    from scipy import stats

    v, lo, hi = _finite(value), _finite(low), _finite(high)
    if v is None or lo is None or hi is None or hi < lo:
        return None
    k = int(clusters) if isinstance(clusters, (int, float)) and not isinstance(clusters, bool) else 2
    q = float(stats.norm.ppf(0.5 + confidence / 2))
    se_log = (math.log(hi) - math.log(lo)) / (2 * q) if lo > 0 and v > 0 else None
    return {"se": (hi - lo) / (2 * q), "se_log": se_log, "df": max(k - 1, 1), "method": "interval width / (2 z)"}
