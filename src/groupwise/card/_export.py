"""A card in the formats others read: Model Card Toolkit, Hugging Face ``model-index``, Every Eval Ever.

Each writer maps the card's cells (one per group, and one per last-mile condition and
group) to the publisher's structure and returns ``{file name: text}``. Cells with
insufficient data are exported with their status in the name and no interval, never
silently dropped or given an interval they do not have.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["to_mct", "to_hf", "to_eee", "cells"]

_TASKS = {
    "wer": "automatic-speech-recognition", "cer": "automatic-speech-recognition",
    "mae": "tabular-regression", "mse": "tabular-regression",
}


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def cells(card: dict[str, Any]) -> list[dict[str, Any]]:
    """Every reported number of the card as a flat record: overall, groups, condition x group.

    Each record has ``slice`` (readable), ``group`` (column -> value), ``condition``,
    ``metric``, ``value``, ``low``, ``high``, ``se``, ``n``, ``clusters``, ``status``.
    """
    metric = card["metric"]["name"]
    o = card["overall"]
    out = [{
        "slice": "overall", "group": {}, "condition": None, "metric": metric, "value": _num(o.get("value")),
        "low": _num(o.get("ci_low")), "high": _num(o.get("ci_high")), "se": (o.get("summary") or {}).get("se"),
        "n": o.get("n"), "clusters": o.get("clusters"), "status": "tested",
    }]
    for g in card["fairness"]["groups"]:
        out.append({
            "slice": g["label"], "group": dict(g["group"]), "condition": None, "metric": metric, "value": _num(g.get("value")),
            "low": _num(g.get("ci_low")), "high": _num(g.get("ci_high")), "se": (g.get("summary") or {}).get("se"),
            "n": g.get("n"), "clusters": g.get("clusters"), "status": str(g.get("status")), "family": g["family"],
        })
    r = card.get("robustness")
    if r:
        for c in r["conditions"]:
            for g in c["groups"]:
                out.append({
                    "slice": f"{g['label']}, condition={c['name']}", "group": dict(g["group"]), "condition": c["condition"],
                    "condition_name": c["name"], "metric": r["metric"], "value": _num(g.get("value")), "low": None, "high": None,
                    "se": None, "n": g.get("n"), "clusters": g.get("clusters"), "status": str(g.get("status")),
                    "delta": _num(g.get("delta")), "delta_low": _num(g.get("delta_ci_low")), "delta_high": _num(g.get("delta_ci_high")),
                })
    return [c for c in out if c["value"] is not None]


def to_mct(card: dict[str, Any]) -> dict[str, str]:
    """Model Card Toolkit JSON (schema v0.0.2): per-slice metrics with confidence intervals."""
    s, a = card["service"], card["about"]
    metrics = []
    for c in cells(card):
        name = c["metric"] + (" (insufficient data)" if c["status"].startswith("insufficient") else "")
        pm: dict[str, Any] = {"type": name, "value": f"{c['value']:.6g}"}
        if c["slice"] != "overall":
            pm["slice"] = c["slice"]
        if c["low"] is not None and c["high"] is not None:
            pm["confidence_interval"] = {"lower_bound": f"{c['low']:.6g}", "upper_bound": f"{c['high']:.6g}"}
        metrics.append(pm)
        if c.get("delta") is not None:
            dm: dict[str, Any] = {"type": f"change in {c['metric']} from baseline", "value": f"{c['delta']:.6g}", "slice": c["slice"]}
            if c.get("delta_low") is not None and c.get("delta_high") is not None:
                dm["confidence_interval"] = {"lower_bound": f"{c['delta_low']:.6g}", "upper_bound": f"{c['delta_high']:.6g}"}
            metrics.append(dm)
    owner: dict[str, str] = {"name": s["owner"]}
    if s.get("contact"):
        owner["contact"] = s["contact"]
    ed = a["evaluation_data"]
    doc = {
        "schema_version": "0.0.2",
        "model_details": {
            "name": s["name"],
            "overview": a["overview"],
            "owners": [owner],
            "version": {"name": s["version"], "date": s["as_of"]},
        },
        "model_parameters": {
            "data": [{
                "name": ed.get("name", "evaluation data"),
                "description": f"{ed['description']} Collection: {ed['collection']} Self-reported demographics: "
                f"{'yes' if ed['self_reported'] else 'no'}. Synthetic: {'yes' if ed.get('synthetic') else 'no'}.",
            }],
        },
        "quantitative_analysis": {"performance_metrics": metrics},
        "considerations": {
            "use_cases": [{"description": x} for x in a["intended_uses"]],
            "limitations": [{"description": x} for x in a["limitations"] + [f"Out of scope: {u}" for u in a["out_of_scope_uses"]]],
        },
    }
    if s.get("license"):
        doc["model_details"]["licenses"] = [{"identifier": s["license"]}]
    return {"model_card_toolkit.json": json.dumps(doc, indent=2, ensure_ascii=False) + "\n"}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "service"


def to_hf(card: dict[str, Any]) -> dict[str, str]:
    """A Hugging Face model card (``README.md``) whose front matter holds ``model-index``.

    One result per group, condition and metric; the interval, counts and status are in
    the metric's ``args``.
    """
    import yaml

    s, a = card["service"], card["about"]
    metric = card["metric"]["name"]
    task = s.get("task") or _TASKS.get(metric, "tabular-classification")
    results = []
    for c in cells(card):
        args: dict[str, Any] = {"status": c["status"], "n": c["n"], "clusters": c["clusters"]}
        if c["low"] is not None:
            args.update(ci_low=c["low"], ci_high=c["high"], confidence=float(card["methodology"]["confidence"]))
        dataset_args = {**{str(k): str(v) for k, v in c["group"].items()}}
        if c["condition"] is not None:
            dataset_args["condition"] = str(c["condition"])
        suffix = " (insufficient data)" if c["status"].startswith("insufficient") else ""
        results.append({
            "task": {"type": task},
            "dataset": {
                "type": f"{_slug(s['owner'])}/{_slug(a['evaluation_data'].get('name', 'evaluation data'))}",
                "name": f"{a['evaluation_data'].get('name', 'evaluation data')}: {c['slice']}",
                "config": c["slice"],
                "split": "test",
                "args": dataset_args,
            },
            "metrics": [{"type": c["metric"], "value": c["value"], "name": f"{c['metric'].upper()} {c['slice']}{suffix}", "args": args}],
        })
    meta = {
        "tags": ["service-card", "groupwise", "fairness"],
        "model-index": [{"name": f"{s['name']} {s['version']}", "results": results}],
    }
    if s.get("license"):
        meta["license"] = s["license"].lower()
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    body = (
        f"# {s['name']} {s['version']}\n\n{a['overview']}\n\n"
        "Results per group (and per last-mile condition) are in the `model-index` metadata above; "
        "the full service card is `card.html` / `card.json`.\n"
    )
    return {"README.md": f"---\n{front}---\n\n{body}"}


def to_eee(card: dict[str, Any]) -> dict[str, str]:
    """One Every Eval Ever record (schema 0.3.0), uncertainty filled from the intervals."""
    import calendar
    import datetime as dt

    s, a = card["service"], card["about"]
    run = card["run"]
    meth = card["methodology"]
    built = dt.datetime.fromisoformat(run["built_at"])
    epoch = str(calendar.timegm(built.utctimetuple()))
    model_id = f"{_slug(s['owner'])}/{_slug(s['name'])}-{_slug(s['version'])}"
    bounded = card["metric"]["name"] not in ("wer", "cer", "mae", "mse", "ratio")
    results = []
    for c in cells(card):
        score: dict[str, Any] = {"score": c["value"], "details": {"status": c["status"], "slice": c["slice"]}}
        unc: dict[str, Any] = {}
        if c["low"] is not None and c["high"] is not None:
            unc["confidence_interval"] = {
                "lower": c["low"], "upper": c["high"], "confidence_level": float(meth["confidence"]),
                "method": str(meth.get("intervals") or "as reported by groupwise audit"),
            }
            if c.get("se") is not None:
                unc["standard_error"] = {"value": float(c["se"]), "method": "interval width / (2 z)"}
            if isinstance(meth.get("n_boot"), int) and "bootstrap" in str(meth.get("intervals")):
                unc["num_bootstrap_samples"] = meth["n_boot"]
        if isinstance(c.get("n"), int):
            unc["num_samples"] = c["n"]
        if unc:
            score["uncertainty"] = unc
        if c.get("delta") is not None:
            score["details"]["change_from_baseline"] = f"{c['delta']:.6g}"
            if c.get("delta_low") is not None:
                score["details"]["change_ci"] = f"{c['delta_low']:.6g} to {c['delta_high']:.6g}"
        details = {str(k): str(v) for k, v in c["group"].items()}
        if c["condition"] is not None:
            details["condition"] = str(c["condition"])
        results.append({
            "evaluation_result_id": f"{c['metric']}:{c['slice']}",
            "evaluation_name": f"{c['metric']} {c['slice']}",
            "source_data": {
                "dataset_name": a["evaluation_data"].get("name", "evaluation data"),
                "source_type": "other",
                "additional_details": {**details, "synthetic": str(bool(a["evaluation_data"].get("synthetic"))).lower()},
            },
            "metric_config": {
                "evaluation_description": meth["metric_definition"],
                "metric_id": c["metric"],
                "metric_name": c["metric"].upper(),
                "metric_kind": c["metric"],
                "metric_unit": "proportion",
                "lower_is_better": bool(card["metric"].get("higher_is_worse", True) is not False),
                "score_type": "continuous",
                "min_score": 0,
                "max_score": 1 if bounded else "Infinity",
            },
            "score_details": score,
        })
    record = {
        "schema_version": "0.3.0",
        "evaluation_id": f"groupwise/{model_id}/{epoch}",
        "evaluation_timestamp": run["built_at"],
        "retrieved_timestamp": epoch,
        "source_metadata": {
            "source_name": f"{s['name']} {s['version']} service card",
            "source_type": "evaluation_run",
            "source_organization_name": s["owner"],
            "evaluator_relationship": "first_party",
        },
        "eval_library": {"name": "groupwise", "version": run["tool_version"]},
        "model_info": {
            "name": f"{s['name']} {s['version']}",
            "id": model_id,
            "developer": s["owner"],
            "additional_details": {
                "deployment_type": s.get("deployment_type", "unknown"),
                "model_availability": s.get("model_availability", "unknown"),
            },
        },
        "evaluation_results": results,
    }
    return {"every_eval_ever.json": json.dumps(record, indent=2, ensure_ascii=False) + "\n"}
