"""What changed between two versions of a service card, with an interval and a test per change.

Each card stores, per cell, a value and its standard error (``summary``). A change is
tested from those, and each change row says which way (``method``):

* group values, on the log scale: ``d = log(new) - log(old)``. Where both cards carry the
  audit's own standard errors (cards built from audit JSONs with ``se_value`` and
  ``df_value``: the CR2 cluster-robust standard error of the group value, never below the
  count model's, and its Satterthwaite degrees of freedom), ``se_log = se_value / value``
  (the delta method), the variance of ``d`` is ``se_log_old^2 + se_log_new^2``, its degrees
  of freedom are Welch-Satterthwaite's from the two ``df``, and the reference is Student's t
  with those degrees of freedom (Welch 1947; Satterthwaite 1946). Where either card was built
  from an older audit JSON, both standard errors are read back from the reported intervals
  (their width on the log scale over ``2 z``) and the reference is normal; an interval
  built with a Student t or a small-sample widening gives back a larger standard error than
  the one behind it, so that errs on the conservative side. The interval is for the ratio
  new/old (``exp(d +- q se)``) and the p-value comes from the same ``d / se``, so they
  agree. Where a value is zero the absolute scale is used, the same way.
* last-mile deltas (the change a condition causes) and the changes between systems of a
  paired comparison, on the absolute scale: with the deltas' own paired cluster-robust
  standard errors and degrees of freedom (``delta_se``, ``delta_df``) where both cards have
  them (Welch-Satterthwaite, Student t), else read back from their intervals with a normal
  reference.

Every test is corrected across all changes tested in the diff (Holm by default, or
Benjamini-Hochberg). **Independence.** The variance of a change adds the two variances,
which is right when the versions were measured on independent test sets (different
speakers). When both were measured on the same test set, the two estimates are positively
correlated, the true variance of the change is smaller, and the test is conservative:
intervals are wider and fewer changes are flagged than a paired comparison would find. A
paired test needs per-speaker data, which a public card does not hold; ``groupwise
compare`` on the two versions' transcripts of the same utterances is that paired test, and
its result can be published in the card (``--compare``).

Groups present in only one card are listed as new or vanished; coverage cells are compared
by status and cluster counts.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

from groupwise._errors import InputError
from groupwise.card._inputs import METHOD_INTERVAL, interval_summary

__all__ = ["diff", "render_diff_html", "INDEPENDENCE_NOTE", "welch_df"]

READ_BACK = "standard errors read back from the intervals (width / 2z), normal reference"

INDEPENDENCE_NOTE = (
    "Changes are tested as if the two versions were measured on independent test sets (the variance of a "
    "change is the sum of the two variances). If both versions were measured on the same test set, the "
    "estimates are positively correlated and the test is conservative: intervals are wider, and fewer "
    "changes are flagged, than a paired comparison on the same speakers would give."
)


def _load(card: Any, which: str) -> tuple[dict[str, Any], str | None]:
    from groupwise.card._schema import validate_card

    if isinstance(card, dict):
        validate_card(card, source=f"the {which} card")
        return card, None
    path = Path(card)
    if not path.is_file():
        raise InputError(f"the {which} card {str(path)!r} does not exist", fix="pass the card.json written by 'groupwise card build'")
    raw = path.read_bytes()
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f" at line {exc.lineno}, column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise InputError(f"the {which} card {path.name} is not valid JSON{where}", fix="pass the card.json written by 'groupwise card build'") from None
    if isinstance(data, dict) and data.get("card_format") == "groupwise-service-card" and not str(data.get("schema_version", "")).startswith("1."):
        raise InputError(
            f"the {which} card {path.name} has schema version {data.get('schema_version')!r}; this groupwise reads version 1.x",
            fix="build both cards again with this version of groupwise",
        )
    validate_card(data, source=f"the {which} card {path.name}")
    return data, hashlib.sha256(raw).hexdigest()


def _adjust(p: list[float], method: str) -> list[float]:
    """Holm or Benjamini-Hochberg adjusted p-values.

    >>> [round(x, 3) for x in _adjust([0.01, 0.04, 0.03], "holm")]
    [0.03, 0.06, 0.06]
    >>> [round(x, 3) for x in _adjust([0.01, 0.04, 0.03], "bh")]
    [0.03, 0.04, 0.04]
    """
    n = len(p)
    if method == "none" or n == 0:
        return list(p)
    order = sorted(range(n), key=lambda i: p[i])
    out = [0.0] * n
    if method == "holm":
        running = 0.0
        for rank, i in enumerate(order):
            running = max(running, min(1.0, (n - rank) * p[i]))
            out[i] = running
    else:
        running = 1.0
        for rank in range(n - 1, -1, -1):
            i = order[rank]
            running = min(running, min(1.0, p[i] * n / (rank + 1)))
            out[i] = running
    return out


def welch_df(v1: float, df1: float, v2: float, df2: float) -> float:
    """Welch-Satterthwaite degrees of freedom of a sum of two independent variances.

    >>> round(welch_df(1.0, 10, 1.0, 10), 6)
    20.0
    >>> round(welch_df(1.0, 4, 0.0, 30), 6)
    4.0
    """
    num = (v1 + v2) ** 2
    den = (v1 * v1 / df1 if v1 > 0 else 0.0) + (v2 * v2 / df2 if v2 > 0 else 0.0)
    return num / den if den > 0 else math.inf


def _audit_se(summary: dict[str, Any] | None) -> bool:
    return bool(summary) and summary.get("method") != METHOD_INTERVAL and isinstance(summary.get("df"), (int, float))


def _test(
    old: float, new: float, s_old: dict[str, Any], s_new: dict[str, Any], confidence: float, log: bool, model: bool
) -> dict[str, Any] | None:
    """The change old -> new with its interval and p-value, from one statistic.

    ``model``: the two summaries are the audits' own standard errors with degrees of
    freedom (Student t with Welch-Satterthwaite df); otherwise read back from intervals
    (normal reference).
    """
    from scipy import stats

    key = "se_log" if log else "se"
    se1, se2 = s_old.get(key), s_new.get(key)
    if se1 is None or se2 is None or (log and (old <= 0 or new <= 0)):
        return None
    d = math.log(new) - math.log(old) if log else new - old
    se = math.hypot(se1, se2)
    if model:
        df = welch_df(se1 * se1, float(s_old["df"]), se2 * se2, float(s_new["df"]))
        if math.isfinite(df):
            ref, method = stats.t(df), f"audit standard errors (CR2), Welch-Satterthwaite df {df:.1f}, Student t"
        else:  # both standard errors are zero: no degrees of freedom to speak of
            df, ref, method = None, stats.norm, "audit standard errors (CR2), both zero"
    else:
        # Read back with the normal quantile from intervals that may carry a small-sample
        # widening; the normal reference keeps that widening once.
        df, ref, method = None, stats.norm, READ_BACK
    q = float(ref.ppf(0.5 + confidence / 2))
    p = 1.0 if (se == 0 and d == 0) else (0.0 if se == 0 else float(2 * ref.sf(abs(d) / se)))
    out: dict[str, Any] = {"scale": "log" if log else "absolute", "statistic": d, "se": se, "df": df, "p_value": p, "method": method}
    if log:
        out.update(ratio=math.exp(d), ratio_ci_low=math.exp(d - q * se), ratio_ci_high=math.exp(d + q * se))
    else:
        out.update(change_ci_low=d - q * se, change_ci_high=d + q * se)
    return out


def _tested(cell: dict[str, Any]) -> bool:
    return cell.get("summary") is not None and not str(cell.get("status", "")).startswith("insufficient")


def _read_back(cell: dict[str, Any], level: float, value_key: str = "value") -> dict[str, Any] | None:
    """A value's (or a delta's) standard errors read back from its interval (what older cards stored)."""
    if cell.get("summary") and cell["summary"].get("method") == METHOD_INTERVAL:
        return cell["summary"]
    prefix = "" if value_key == "value" else f"{value_key}_"
    return interval_summary(cell.get(value_key), cell.get(f"{prefix}ci_low"), cell.get(f"{prefix}ci_high"),
                            clusters=cell.get("clusters"), confidence=level)


def _compare_cells(
    section: str, olds: dict[tuple[str, str], dict[str, Any]], news: dict[tuple[str, str], dict[str, Any]],
    value_key: str, log: bool, confidence: float, levels: tuple[float, float] = (0.95, 0.95),
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    changes, new_only, gone = [], [], []
    for key, n in news.items():
        if key not in olds:
            new_only.append({"section": section, "where": key[0], "label": key[1], "group": n["group"], "status": n.get("status"), "value": n.get(value_key)})
            continue
        o = olds[key]
        ov, nv = o.get(value_key), n.get(value_key)
        entry: dict[str, Any] = {
            "section": section, "where": key[0], "label": key[1], "group": n["group"], "old": ov, "new": nv,
            "change": (nv - ov) if isinstance(ov, (int, float)) and isinstance(nv, (int, float)) else None,
            "old_clusters": o.get("clusters"), "new_clusters": n.get("clusters"),
            "old_status": o.get("status"), "new_status": n.get("status"),
        }
        t = None
        if _tested(o) and _tested(n) and entry["change"] is not None:
            so, sn = o["summary"], n["summary"]
            model = _audit_se(so) and _audit_se(sn)
            if not model:  # one card from an older JSON: read both back from their intervals
                so, sn = _read_back(o, levels[0], value_key) or so, _read_back(n, levels[1], value_key) or sn
            t = _test(ov, nv, so, sn, confidence, log, model) or _test(ov, nv, so, sn, confidence, False, model)
        if t is None:
            entry["status"] = "not tested: too little data in " + (
                "both" if not _tested(o) and not _tested(n) else ("old" if not _tested(o) else "new")
            )
        else:
            entry.update(t)
            entry["status"] = "tested"
        changes.append(entry)
    for key, o in olds.items():
        if key not in news:
            gone.append({"section": section, "where": key[0], "label": key[1], "group": o["group"], "status": o.get("status"), "value": o.get(value_key)})
    return changes, new_only, gone


def diff(
    old: str | os.PathLike[str] | dict[str, Any],
    new: str | os.PathLike[str] | dict[str, Any],
    *,
    correction: str = "holm",
    alpha: float = 0.05,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Compare two versions of a service card.

    Parameters
    ----------
    old, new : path or dict
        ``card.json`` of the earlier and of the later version of the same service.
    correction : {"holm", "bh", "none"}, default="holm"
        Correction across every change tested.
    alpha : float, default=0.05
        A change is significant when its corrected p-value is at most ``alpha``.
    confidence : float, default=0.95
        Level of the interval of each change.

    Returns
    -------
    dict
        ``changes`` (one per group, per last-mile condition x group and per compared
        system x group present in both, with the interval, the corrected test and the
        ``method`` of the test), ``new_groups``, ``vanished_groups``,
        ``coverage`` and ``method`` (including the independence assumption).
    """
    if correction not in ("holm", "bh", "none"):
        raise InputError(f"the 'correction' parameter is {correction!r}", fix="use holm, bh or none")
    for name, x in (("alpha", alpha), ("confidence", confidence)):
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not 0 < x < 1:
            raise InputError(f"the {name!r} parameter is {x!r}", fix=f"pass --{name} as a number between 0 and 1")
    a, a_hash = _load(old, "old")
    b, b_hash = _load(new, "new")
    if a["service"]["name"] != b["service"]["name"]:
        raise InputError(
            f"the cards describe different services ({a['service']['name']!r} and {b['service']['name']!r})",
            fix="diff two versions of the same service; to compare services, audit them on one test set and compare the results",
        )
    if a["metric"]["name"] != b["metric"]["name"]:
        raise InputError(
            f"the cards measure different metrics ({a['metric']['name']} and {b['metric']['name']})",
            fix="build both cards from audits of the same --metric",
        )
    fa = {(g["family"], g["label"]): g for g in a["fairness"]["groups"]}
    fb = {(g["family"], g["label"]): g for g in b["fairness"]["groups"]}
    levels = (float(a["methodology"].get("confidence") or 0.95), float(b["methodology"].get("confidence") or 0.95))
    changes, new_only, gone = _compare_cells("fairness", fa, fb, "value", True, confidence, levels)

    def robust(card: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
        r = card.get("robustness") or {}
        return {(c["name"], g["label"]): g for c in r.get("conditions", []) for g in c["groups"]}

    rc, rn, rg = _compare_cells("robustness", robust(a), robust(b), "delta", False, confidence)
    changes += rc
    new_only += rn
    gone += rg

    def systems(card: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
        c = card.get("comparison") or {}
        return {(f"{x['name']} vs {c['baseline']}", g["label"]): g for x in c.get("systems", []) for g in x["groups"]}

    cc, cn, cg = _compare_cells("comparison", systems(a), systems(b), "delta", False, confidence)
    changes += cc
    new_only += cn
    gone += cg
    tested = [c for c in changes if c["status"] == "tested"]
    for c, padj in zip(tested, _adjust([c["p_value"] for c in tested], correction)):
        c["p_adjusted"] = padj
        c["significant"] = bool(padj <= alpha)
        worse_if_up = a["metric"].get("higher_is_worse") is not False
        up = c["statistic"] > 0
        c["direction"] = ("worse" if up == worse_if_up else "better") if c["significant"] else None
    for c in changes:
        c.setdefault("method", None)
        c.setdefault("df", None)
        c.setdefault("p_value", None)
        c.setdefault("p_adjusted", None)
        c.setdefault("significant", False)
        c.setdefault("direction", None)
    coverage = _coverage_diff(a.get("coverage"), b.get("coverage"))
    return {
        "diff_format": "groupwise-card-diff",
        "schema_version": "1.0.0",
        "service": b["service"]["name"],
        "metric": b["metric"]["name"],
        "old": {"version": a["service"]["version"], "as_of": a["service"]["as_of"], "built_at": a["run"]["built_at"], "sha256": a_hash},
        "new": {"version": b["service"]["version"], "as_of": b["service"]["as_of"], "built_at": b["run"]["built_at"], "sha256": b_hash},
        "method": {
            "correction": correction, "alpha": alpha, "confidence": confidence,
            "family": f"every change tested in this diff ({len(tested)})",
            "fairness_scale": "log ratio new/old (absolute difference where a value is zero): where both cards carry the "
            "audits' own standard errors (CR2, se_value) and degrees of freedom (df_value), the variance is the sum of the "
            "two, with Welch-Satterthwaite degrees of freedom and a Student t reference; where either card was built from "
            "an older audit JSON, " + READ_BACK + " (each change says which in 'method')",
            "robustness_scale": "difference of last-mile deltas: their own standard errors (delta_se, delta_df), "
            "Welch-Satterthwaite df, Student t where both cards have them, else " + READ_BACK,
            "comparison_scale": "difference of the changes between systems: their own standard errors (delta_se, "
            "delta_df), Welch-Satterthwaite df, Student t where both cards have them, else " + READ_BACK,
            "independence": INDEPENDENCE_NOTE,
        },
        "changes": changes,
        "new_groups": new_only,
        "vanished_groups": gone,
        "coverage": coverage,
        "summary": {
            "tested": len(tested),
            "better": sum(1 for c in changes if c["direction"] == "better"),
            "worse": sum(1 for c in changes if c["direction"] == "worse"),
            "new": len(new_only), "vanished": len(gone),
        },
    }


def _coverage_diff(a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict[str, Any] | None:
    if not a and not b:
        return None
    if not a or not b:
        return {"note": "only the " + ("new" if b else "old") + " card lists coverage", "changed": [], "new_cells": [], "vanished_cells": []}
    ca = {c["label"]: c for c in a["cells"]}
    cb = {c["label"]: c for c in b["cells"]}
    changed = [
        {"label": k, "old_status": ca[k]["status"], "new_status": v["status"], "old_clusters": ca[k]["clusters"], "new_clusters": v["clusters"],
         "old_n": ca[k]["n"], "new_n": v["n"]}
        for k, v in cb.items() if k in ca and (ca[k]["status"] != v["status"] or ca[k]["clusters"] != v["clusters"])
    ]
    return {
        "dims": {"old": a["dims"], "new": b["dims"]},
        "old_summary": a["summary"], "new_summary": b["summary"],
        "changed": changed,
        "new_cells": [k for k in cb if k not in ca],
        "vanished_cells": [k for k in ca if k not in cb],
    }


def _short_method(c: dict[str, Any]) -> str:
    """How a change was tested, in a few words: ``t (df 23.4)`` or ``normal (read back)``."""
    if c.get("method") is None:
        return "—"
    if c.get("df") is not None:
        return f"t (df {c['df']:.1f})"
    return "normal (read back)" if c["method"] == READ_BACK else "—"


def render_diff_html(d: dict[str, Any]) -> str:
    """The diff as a self-contained HTML page (same rules as the card)."""
    from groupwise.card._render import _table, esc, fmt, fmt_change, fmt_p, interval_svg, page

    m = d["metric"]
    conf = int(round(100 * d["method"]["confidence"]))
    title = f"{d['service']}: {d['old']['version']} → {d['new']['version']}"
    s = d["summary"]
    b = [f"<h1>{esc(title)}</h1>",
         f"<p class='meta'>Service card diff · {esc(m)} · old as of {esc(d['old']['as_of'])}, new as of {esc(d['new']['as_of'])}</p>",
         f"<section id='summary'><h2>Summary</h2><p>{s['tested']} changes tested, {s['worse']} significantly worse, {s['better']} significantly better "
         f"({esc(d['method']['correction'])} correction across {esc(d['method']['family'])}, alpha {d['method']['alpha']}); "
         f"{s['new']} new and {s['vanished']} vanished groups.</p><p class='note'>{esc(d['method']['independence'])}</p></section>"]
    for section, heading in (("fairness", "Groups"), ("robustness", "Last-mile conditions"), ("comparison", "Comparison of systems")):
        rows = [c for c in d["changes"] if c["section"] == section]
        if not rows:
            continue
        b.append(f"<section id='diff-{section}'><h2>{heading}</h2>")
        plot_rows = []
        for c in rows:
            kind = "flagged" if c["significant"] else ("tested" if c["status"] == "tested" else "insufficient")
            if c.get("scale") == "log":
                plot_rows.append({"label": f"{c['where']}: {c['label']}" if section != "fairness" else c["label"], "value": c["ratio"] - 1,
                                  "low": c["ratio_ci_low"] - 1, "high": c["ratio_ci_high"] - 1, "kind": kind, "note": c["direction"] or ""})
            elif c.get("scale") == "absolute":
                plot_rows.append({"label": f"{c['where']}: {c['label']}" if section != "fairness" else c["label"], "value": c["statistic"],
                                  "low": c["change_ci_low"], "high": c["change_ci_high"], "kind": kind, "note": c["direction"] or ""})
            else:
                plot_rows.append({"label": c["label"], "value": None, "low": None, "high": None, "kind": "insufficient", "note": "not tested"})
        if section == "fairness":
            axis, percent = "relative change, new / old - 1 (%)", True
        else:
            what = "the condition's effect" if section == "robustness" else "the difference between systems"
            axis, percent = f"change in {what} on {m}" + (" (points)" if m in ("wer", "cer", "error_rate", "fpr", "fnr", "selection_rate") else ""), m in ("wer", "cer", "error_rate", "fpr", "fnr", "selection_rate")
        b.append(interval_svg(plot_rows, title=f"{heading}: change with {conf}% interval", axis_label=axis, percent=percent, zero_line=True, plot_id=f"diff-plot-{section}"))
        table = []
        for c in rows:
            if c.get("scale") == "log":
                ci = f"×{c['ratio']:.3f} ({c['ratio_ci_low']:.3f} to {c['ratio_ci_high']:.3f})"
            elif c.get("scale") == "absolute":
                ci = f"{fmt_change(c['change_ci_low'], m)} to {fmt_change(c['change_ci_high'], m)}"
            else:
                ci = "—"
            val = fmt if section == "fairness" else fmt_change
            verdict = c["direction"] or ("no significant change" if c["status"] == "tested" else c["status"])
            table.append(("flagged" if c["significant"] else ("" if c["status"] == "tested" else "insufficient"),
                          [esc(c["where"]), esc(c["label"]), val(c["old"], m), val(c["new"], m), fmt_change(c["change"], m), ci, fmt_p(c["p_adjusted"]),
                           esc(_short_method(c)), esc(verdict)]))
        b.append(_table(["family / condition", "group", "old", "new", "change", f"{conf}% interval", "p adj.", "test", "verdict"], table))
        b.append("</section>")
    b.append("<section id='diff-groups'><h2>New and vanished groups</h2>")
    b.append(_table(["", "section", "family / condition", "group", "status"],
                    [("", ["new", esc(g["section"]), esc(g["where"]), esc(g["label"]), esc(g["status"])]) for g in d["new_groups"]]
                    + [("", ["vanished", esc(g["section"]), esc(g["where"]), esc(g["label"]), esc(g["status"])]) for g in d["vanished_groups"]])
             if d["new_groups"] or d["vanished_groups"] else "<p>None.</p>")
    b.append("</section><section id='diff-coverage'><h2>Coverage</h2>")
    cov = d.get("coverage")
    if not cov:
        b.append("<p>Neither card lists coverage.</p>")
    elif "note" in cov:
        b.append(f"<p>{esc(cov['note'])}.</p>")
    else:
        o, n = cov["old_summary"], cov["new_summary"]
        b.append(f"<p>Old: {o['ok']} ok, {o['thin']} thin, {o['empty']} empty of {o['cells']}. New: {n['ok']} ok, {n['thin']} thin, {n['empty']} empty of {n['cells']}.</p>")
        if cov["changed"]:
            b.append(_table(["combination", "old status", "new status", "old clusters", "new clusters"],
                            [("", [esc(c["label"]), esc(c["old_status"]), esc(c["new_status"]), str(c["old_clusters"]), str(c["new_clusters"])]) for c in cov["changed"]]))
        if cov["new_cells"] or cov["vanished_cells"]:
            b.append(f"<p>New combinations: {esc(', '.join(cov['new_cells']) or 'none')}. Vanished: {esc(', '.join(cov['vanished_cells']) or 'none')}.</p>")
    b.append("</section>")
    return page(title, "".join(b))
