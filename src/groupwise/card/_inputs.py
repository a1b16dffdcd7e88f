"""Reading the measured results a card is compiled from, defensively.

The inputs are the JSON files of ``groupwise audit --json``, ``groupwise lastmile --json``,
``groupwise compare --json``, ``groupwise coverage --json`` and ``groupwise slices --json``.
Their shapes grow (new fields appear as the statistics
evolve), so only the fields a card needs are required; every other field is carried
through unchanged. A file that is missing, is not JSON, or is the wrong kind of result is
reported with what to pass instead.

A last-mile test and a paired comparison of systems share one shape (the same paired
statistics: ``conditions``, each with ``overall`` and per-group ``groups``). A comparison
pairs named items (``settings.item``) across the values of a column of systems
(``settings.condition_column``); a last-mile test made by ``groupwise lastmile`` pairs no
named items, and its conditions are speech recipes of the ``condition`` column. So
``--compare`` takes a paired result on named items whose conditions are not all speech
recipes of the ``condition`` column, and refuses the others; ``--lastmile``
refuses a result that is plainly a comparison of systems (named items, a column of systems
other than ``condition``, systems that are not speech recipes).

The standard errors a diff between cards needs come from :func:`value_summary`: the
audit's own standard error of each group value (``se_value``, cluster-robust CR2, with its
degrees of freedom ``df_value``) when the audit JSON carries it, else read back from the
reported interval (:func:`interval_summary`).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from groupwise._errors import InputError

__all__ = ["read_result", "interval_summary", "value_summary", "delta_summary", "ROLES", "METHOD_INTERVAL", "METHOD_AUDIT_SE"]

METHOD_INTERVAL = "interval width / (2 z)"
METHOD_DELTA_SE = (
    "the result's paired cluster-robust (CR2) standard error of the delta (delta_se) and its Satterthwaite degrees "
    "of freedom (delta_df)"
)
METHOD_AUDIT_SE = (
    "the audit's standard error of the value (se_value: cluster-robust CR2, never below the count model's) and its "
    "Satterthwaite degrees of freedom (df_value); se_log = se / value (delta method)"
)

ROLES = {
    "audit": ("groupwise audit --json", "--audit"),
    "lastmile": ("groupwise lastmile --json", "--lastmile"),
    "compare": ("groupwise compare --json", "--compare"),
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


def _is_speech_condition(spec: Any) -> bool:
    try:
        from groupwise.speech._conditions import parse_condition

        parse_condition(str(spec), check_files=False)
    except Exception:  # noqa: BLE001 - anything that does not parse is not a speech recipe
        return False
    return True


def _paired_kind(data: dict[str, Any]) -> str:
    """``"compare"`` or ``"lastmile"`` for a paired result (the two share one shape).

    A comparison of systems pairs named items across a column of systems that is not the
    speech ``condition`` column, and its systems are not speech recipes.
    """
    s = data.get("settings") if isinstance(data.get("settings"), dict) else {}
    if s.get("kind") in ("compare", "lastmile"):  # an explicit marker, where a result carries one
        return str(s["kind"])
    item, column = s.get("item"), s.get("condition_column")
    if not item or not column:
        return "lastmile"
    specs = [c.get("condition") for c in data.get("conditions") or [] if isinstance(c, dict)]
    if column == "condition" or (specs and all(_is_speech_condition(x) for x in specs)):
        return "lastmile"
    return "compare"


def read_result(path: str | Path, role: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read one result JSON; return it and its input record (name, sha256, bytes).

    Parameters
    ----------
    path : path
    role : {"audit", "lastmile", "compare", "coverage", "slices"}

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
    if kind == "lastmile":
        settings = data.get("settings") if isinstance(data.get("settings"), dict) else {}
        specs = [c.get("condition") for c in data["conditions"] if isinstance(c, dict)]
        recipes = settings.get("condition_column") == "condition" and bool(specs) and all(_is_speech_condition(x) for x in specs)
        if role == "compare" and settings.get("kind") != "lastmile" and settings.get("item") and not recipes:
            kind = "compare"  # a paired result on named items reads as a comparison when given to --compare
        elif role == "compare":
            why = (
                "it pairs no named items (its settings have no 'item')" if not settings.get("item")
                else "its conditions are speech recipes of the 'condition' column" if recipes else "it says it is one"
            )
            raise InputError(
                f"{path.name} was given to --compare but is a last-mile test, not a paired comparison of systems: {why}",
                fix="pass it with --lastmile instead; for --compare, write the comparison with "
                "'groupwise compare TABLE --condition SYSTEM_COLUMN --baseline SYSTEM --item ITEM_COLUMN --json compare.json'",
            )
        else:
            kind = _paired_kind(data)
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
    elif role in ("lastmile", "compare"):
        if not isinstance(data.get("metric"), str):
            raise bad("has no 'metric'")
        for i, c in enumerate(data["conditions"]):
            if not isinstance(c, dict) or "condition" not in c or not isinstance(c.get("groups"), list) or not isinstance(c.get("overall"), dict):
                raise bad(f"has a malformed condition (entry {i + 1}: it needs 'condition', 'overall' and 'groups')")
            for g in c["groups"]:
                if not isinstance(g, dict) or not isinstance(g.get("group"), dict) or "status" not in g:
                    raise bad(f"has a malformed group under condition {c['condition']!r}")
        if role == "compare":
            s = data.get("settings")
            if not isinstance(s, dict) or not all(isinstance(s.get(k), str) and s[k] for k in ("condition_column", "baseline", "item")):
                raise bad("has no 'condition_column', 'baseline' and 'item' in its settings")
            if not data["conditions"]:
                raise bad("compares no system with the baseline (its 'conditions' list is empty)")
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
    return {"se": (hi - lo) / (2 * q), "se_log": se_log, "df": max(k - 1, 1), "method": METHOD_INTERVAL}


def delta_summary(cell: dict[str, Any], *, confidence: float) -> dict[str, Any] | None:
    """The standard error of a last-mile or comparison delta that a diff between cards needs.

    The delta's own paired cluster-robust standard error and degrees of freedom
    (``delta_se``, ``delta_df``) where the result reports them, else read back from its
    interval. Deltas are compared on the absolute scale (``se_log`` is None).

    Examples
    --------
    >>> delta_summary({"delta": 0.03, "delta_se": 0.01, "delta_df": 9.0}, confidence=0.95)["df"]
    9.0
    """
    se, df = _finite(cell.get("delta_se")), _finite(cell.get("delta_df"))
    if _finite(cell.get("delta")) is not None and se is not None and df is not None and se >= 0 and df > 0:
        return {"se": se, "se_log": None, "df": df, "method": METHOD_DELTA_SE}
    return interval_summary(cell.get("delta"), cell.get("delta_ci_low"), cell.get("delta_ci_high"),
                            clusters=cell.get("clusters"), confidence=confidence)


def value_summary(cell: dict[str, Any], *, confidence: float) -> dict[str, Any] | None:
    """The standard errors of a group value that a diff between cards needs.

    Where the audit reports the value's own standard error (``se_value``, cluster-robust
    CR2, never below the count model's) and its degrees of freedom (``df_value``), they
    are stored as they are: ``se`` is ``se_value``, ``se_log`` is ``se_value / value``
    (the delta method; None at a value of 0), ``df`` is ``df_value``. An audit JSON from an
    older groupwise has neither; then the standard errors are read back from the interval
    (:func:`interval_summary`). ``method`` says which. Nothing per speaker is stored.

    Examples
    --------
    >>> s = value_summary({"value": 0.2, "se_value": 0.02, "df_value": 7.5, "ci_low": 0.17, "ci_high": 0.24}, confidence=0.95)
    >>> round(s["se_log"], 3), s["df"], s["method"].startswith("the audit's")
    (0.1, 7.5, True)
    >>> value_summary({"value": 0.2, "ci_low": None, "ci_high": None}, confidence=0.95) is None
    True
    """
    v, se, df = _finite(cell.get("value")), _finite(cell.get("se_value")), _finite(cell.get("df_value"))
    if v is not None and se is not None and df is not None and se >= 0 and df > 0:
        return {"se": se, "se_log": se / v if v > 0 else None, "df": df, "method": METHOD_AUDIT_SE}
    return interval_summary(cell.get("value"), cell.get("ci_low"), cell.get("ci_high"), clusters=cell.get("clusters"), confidence=confidence)
