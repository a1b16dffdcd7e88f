"""Compiling a service card: the provider's prose plus the measured results, nothing else.

:func:`build` reads ``card.yaml`` and the JSON of the audit (and optionally of the
last-mile test, the paired comparison of systems, the coverage and the slice search), assembles one card dictionary (``card.json``, valid
against the shipped schema), renders it as ``card.html`` and ``card.md``, writes the
exports asked for, and moves the finished folder into place in one step, so a failure
leaves nothing half-written. The card computes no new statistic: group values, intervals,
tests and coverage are copied from the inputs; the only derived numbers are the standard
errors a diff between two cards needs: per group, the audit's own standard error and degrees
of freedom (``se_value``, ``df_value``) with ``se_log = se / value``, or, for an audit JSON
that carries neither, standard errors read back from the reported intervals (see
:func:`groupwise.card._inputs.value_summary`).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from groupwise._errors import InputError
from groupwise.card._about import load_about, validate_about
from groupwise.card._inputs import delta_summary, interval_summary, read_result, value_summary

__all__ = ["build", "assemble", "SCHEMA_VERSION", "EXPORTS", "label_of", "PERCENT_METRICS"]

SCHEMA_VERSION = "1.2.0"
EXPORTS = ("mct", "hf", "eee")
PERCENT_METRICS = {"wer", "cer", "error_rate", "fpr", "fnr", "selection_rate"}

_DEFINITIONS = {
    "wer": "word error rate: (substitutions + deletions + insertions) / reference words, each summed over "
    "all of a group's utterances (corpus WER, a ratio of sums; never the mean of per-utterance rates)",
    "cer": "character error rate: character edits / reference characters, summed over a group's utterances "
    "(a ratio of sums)",
    "error_rate": "error rate: wrong predictions / predictions, over a group's rows",
    "fpr": "false positive rate: false positives / actual negatives, over a group's rows",
    "fnr": "false negative rate: false negatives / actual positives, over a group's rows",
    "selection_rate": "selection rate: positive predictions / rows, over a group's rows",
    "mae": "mean absolute error: sum of |error| / rows, over a group's rows",
    "mse": "mean squared error: sum of squared error / rows, over a group's rows",
    "ratio": "a ratio of sums of the given numerator and denominator columns over a group's rows",
}
_CORRECTIONS = {
    "holm": "Holm (controls the family-wise error rate)",
    "bh": "Benjamini-Hochberg (controls the false discovery rate)",
    "none": "none",
}
_CORRECTION_NAMES = {"holm": "Holm", "bh": "Benjamini-Hochberg", "none": "no"}
_COMPARE = {"overall": "the overall value", "complement": "the rest of the data", "best": "the best group of the family"}

GLOSSARY = {
    "cluster": "The independently sampled unit (a speaker, a person, a household). Utterances of one speaker are not independent, so intervals resample speakers, not utterances.",
    "corpus WER": "Word errors summed over all utterances of a group divided by the reference words summed over them: a ratio of sums.",
    "cluster bootstrap": "Resampling whole clusters with replacement; one weight vector over all clusters per replicate applies to every group, so groups that share speakers keep their correlation.",
    "gap": "A group's value minus the reference value (overall, the rest, or the best group).",
    "adjusted p-value": "A p-value corrected for the number of groups tested (Holm or Benjamini-Hochberg), so flagging stays honest when many groups are looked at.",
    "flagged": "A group whose gap is significant after correction at the stated alpha.",
    "insufficient": "A group with fewer clusters or examples than the minimum: its value is shown, without an interval or a test, because any interval would mislead.",
    "provenance": "Where the values of a grouping column come from: self-reported, annotated, measured, synthetic or imputed.",
    "last mile": "A customer's own conditions (a hum, a phone line) applied to the same utterances as the baseline.",
    "interaction": "A group's change under a condition minus the change for the rest: does the condition hurt this group more?",
    "paired comparison": "Two systems measured on the same items (utterances) by the same speakers: each speaker's rows under both systems enter one term of the variance, so the difference is measured more precisely than from two separate audits.",
    "thin cell": "A combination of conditions with data below the minimum number of clusters or examples.",
    "empty cell": "A combination of conditions with no data at all.",
}


def label_of(group: dict[str, Any]) -> str:
    """``{"accent": "hi"}`` -> ``'accent=hi'``; an expression group is its text.

    >>> label_of({"accent": "hi", "noise": "clean"}), label_of({"expression": "age >= 60"})
    ('accent=hi, noise=clean', 'age >= 60')
    """
    if list(group) == ["expression"]:
        return str(group["expression"])
    return ", ".join(f"{k}={v}" for k, v in group.items())


def _tool_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("groupwise")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def _stamp(data: dict[str, Any]) -> str | None:
    for holder in (data, data.get("settings") or {}):
        for key in ("tool_version", "groupwise_version"):
            if isinstance(holder.get(key), str):
                return holder[key]
    return None


def _provenance(*sources: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for source in sources:
        for column, entry in (source or {}).items():
            entry = dict(entry) if isinstance(entry, dict) else {"provenance": str(entry)}
            p = str(entry.get("provenance", "unspecified"))
            entry.update(
                provenance=p,
                protected=bool(entry.get("protected", False)),
                synthetic=p == "synthetic",
                self_reported=p == "self_reported",
            )
            if column not in out or out[column]["provenance"] == "unspecified":
                out[column] = entry  # a source that says where a column comes from beats one that does not
    return out


def _provenance_conflicts(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    def p(entry: Any) -> str:
        return str(entry.get("provenance", "unspecified")) if isinstance(entry, dict) else str(entry)

    return [
        f"{c!r} ({p(a[c])} and {p(b[c])})"
        for c in a
        if c in b and p(a[c]) != p(b[c]) and "unspecified" not in (p(a[c]), p(b[c]))
    ]


def _fairness(audit: dict[str, Any]) -> dict[str, Any]:
    confidence = float((audit.get("settings") or {}).get("confidence", 0.95))
    groups = []
    for g in audit["groups"]:
        cell = dict(g)
        cell["family"] = str(g.get("family") or ",".join(g["group"]))
        cell["label"] = label_of(g["group"])
        cell["summary"] = value_summary(g, confidence=confidence)
        groups.append(cell)
    return {
        "families": list(dict.fromkeys(c["family"] for c in groups)),
        "groups": groups,
        "flagged": [c["label"] for c in groups if c.get("flagged")],
        "insufficient": [c["label"] for c in groups if c.get("status") == "insufficient"],
    }


def _paired_conditions(last: dict[str, Any], confidence: float) -> list[dict[str, Any]]:
    conditions = []
    for c in last["conditions"]:
        groups = []
        for g in c["groups"]:
            cell = dict(g)
            cell["label"] = label_of(g["group"])
            cell["summary"] = delta_summary(g, confidence=confidence)
            groups.append(cell)
        entry = dict(c)
        entry.update(
            condition=str(c["condition"]), name=str(c.get("name") or c["condition"]), recipe=str(c["condition"]),
            groups=groups,
        )
        conditions.append(entry)
    return conditions


def _robustness(last: dict[str, Any]) -> dict[str, Any]:
    settings = dict(last.get("settings") or {})
    conditions = _paired_conditions(last, float(settings.get("confidence", 0.95)))
    return {
        "metric": last["metric"],
        "baseline": str(last.get("baseline", settings.get("baseline", "baseline"))),
        "by": str(last.get("by", "")),
        "conditions": conditions,
        "findings": [str(s) for s in last.get("findings") or []],
        "settings": settings,
    }


def _comparison(comp: dict[str, Any]) -> dict[str, Any]:
    """The paired comparison of systems: every system against the baseline system, per group."""
    settings = dict(comp.get("settings") or {})
    systems = _paired_conditions(comp, float(settings.get("confidence", 0.95)))
    for c in systems:
        del c["recipe"]
        c["system"] = c["condition"]
    return {
        "metric": comp["metric"],
        "baseline": str(comp.get("baseline", settings.get("baseline"))),
        "by": str(comp.get("by", "")),
        "condition_column": str(settings["condition_column"]),
        "item": str(settings["item"]),
        "unpaired_items": settings.get("items_not_in_every_condition"),
        "scale": settings.get("scale"),
        "method": settings.get("method"),
        "systems": systems,
        "findings": [str(s) for s in comp.get("findings") or []],
        "settings": settings,
    }


def _coverage(cov: dict[str, Any]) -> dict[str, Any]:
    cells = [dict(c, label=label_of(c["cell"])) for c in cov["cells"]]
    summary = {"cells": len(cells), "ok": 0, "thin": 0, "empty": 0}
    for c in cells:
        if c["status"] in summary:
            summary[c["status"]] += 1
    return {"dims": list(cov.get("dims") or []), "summary": summary, "cells": cells, "settings": dict(cov.get("settings") or {})}


def _methodology(audit: dict[str, Any], last: dict[str, Any] | None) -> dict[str, Any]:
    s = audit.get("settings") or {}
    metric = audit["metric"]
    tests_used = sorted({str(g["test"]) for g in audit["groups"] if g.get("test")})
    out = {
        "metric_definition": _DEFINITIONS.get(metric, str(audit.get("metric_description", metric))),
        "ratio_of_sums": True,
        "normalization": s.get("normalize"),
        "cluster_column": s.get("cluster"),
        "bootstrap": s.get("bootstrap"),
        "n_boot": s.get("n_boot"),
        "intervals": s.get("interval") or (f"percentiles of the {s['bootstrap']}" if s.get("bootstrap") else None),
        "inference": s.get("inference"),
        "confidence": s.get("confidence", 0.95),
        "alpha": s.get("alpha", 0.05),
        "compare": s.get("compare", "overall"),
        "reference": _COMPARE.get(str(s.get("compare", "overall")), str(s.get("compare"))),
        "test": s.get("test"),
        "tests_used": tests_used,
        "test_descriptions": dict(s.get("tests") or {}),
        "correction": s.get("correction", "holm"),
        "correction_description": _CORRECTIONS.get(str(s.get("correction", "holm")), str(s.get("correction"))),
        "correction_family": (
            f"every group tested in the audit ({s.get('n_tested', sum(1 for g in audit['groups'] if g.get('p_value') is not None))} "
            f"groups across the families {', '.join(dict.fromkeys(str(g.get('family')) for g in audit['groups']))})"
        ),
        "min_clusters": s.get("min_clusters"),
        "min_examples": s.get("min_examples"),
    }
    if last is not None:
        ls = last.get("settings") or {}
        out["lastmile"] = {
            "pairing": "the same examples under baseline and under each condition, paired by cluster",
            "inference": ls.get("inference") or ls.get("interval"),
            "correction": ls.get("correction"),
            "correction_family": "every (condition, group) interaction tested",
            "test": ls.get("test"),
            "n_boot": ls.get("n_boot"),
        }
    return out


def _fmt(value: Any, metric: str) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "—"
    return f"{100 * value:.1f}%" if metric in PERCENT_METRICS else f"{value:.4g}"


def _num(x: Any) -> str:
    return f"{x:,}" if isinstance(x, int) and not isinstance(x, bool) else "?"


def _findings(card: dict[str, Any]) -> list[str]:
    m = card["metric"]["name"]
    o = card["overall"]
    out = [
        f"Overall {card['metric']['description']}: {_fmt(o.get('value'), m)} ({_fmt(o.get('ci_low'), m)} to "
        f"{_fmt(o.get('ci_high'), m)}) over {_num(o.get('n'))} examples from {_num(o.get('clusters'))} clusters."
    ]
    groups = card["fairness"]["groups"]
    flagged = [g for g in groups if g.get("flagged")]
    meth = card["methodology"]
    for g in flagged:
        p = g.get("p_adjusted")
        p_text = f"adjusted p {p:.3g}, " if isinstance(p, (int, float)) else ""
        out.append(
            f"{g['label']}: {_fmt(g.get('value'), m)}, {g.get('direction') or 'different'} than {meth['reference']} "
            f"({p_text}{_CORRECTION_NAMES.get(meth['correction'], meth['correction'])} correction)."
        )
    if not flagged:
        out.append(
            f"No group differs significantly from {meth['reference']} after "
            f"{_CORRECTION_NAMES.get(meth['correction'], meth['correction'])} correction."
        )
    thin = card["fairness"]["insufficient"]
    if thin:
        out.append(f"Insufficient data for {len(thin)} group(s): {', '.join(thin[:8])}{' and more' if len(thin) > 8 else ''}.")
    if card.get("robustness"):
        out.extend(card["robustness"]["findings"])
    if card.get("comparison"):
        out.extend(card["comparison"]["findings"])
    if card.get("found_by_search") is not None:
        found = card["found_by_search"]["slices"]
        out.append(
            f"Search found {len(found)} slice(s) confirmed on held-out data"
            + (": " + "; ".join(x["expression"] for x in found[:5]) if found else "") + "."
        )
    if card.get("coverage"):
        s = card["coverage"]["summary"]
        out.append(f"Coverage of {' x '.join(card['coverage']['dims'])}: {s['ok']} of {s['cells']} combinations ok, {s['thin']} thin, {s['empty']} empty.")
    return out


def assemble(
    about: dict[str, Any],
    audit: dict[str, Any],
    *,
    lastmile: dict[str, Any] | None = None,
    coverage: dict[str, Any] | None = None,
    slices: dict[str, Any] | None = None,
    compare: dict[str, Any] | None = None,
    inputs: list[dict[str, Any]] | None = None,
    allow_mixed: bool = False,
    built_at: str | None = None,
) -> dict[str, Any]:
    """The card as one dictionary (what ``card.json`` holds), from parsed inputs.

    Parameters
    ----------
    about : dict
        Validated ``card.yaml`` (:func:`groupwise.card._about.validate_about`).
    audit, lastmile, coverage, slices, compare : dict
        The parsed result JSONs.
    inputs : list of dict
        Input records (file, role, sha256).
    allow_mixed : bool
        Accept results of different metrics or tool versions; each section then states
        its own.
    built_at : str, optional
        ISO time stamp (default: now, UTC).
    """
    metric = audit["metric"]
    metrics = {"audit": metric}
    if lastmile is not None:
        metrics["lastmile"] = lastmile["metric"]
    if coverage is not None and (coverage.get("settings") or {}).get("metric"):
        metrics["coverage"] = coverage["settings"]["metric"]
    if slices is not None:
        metrics["slices"] = slices["metric"]
    if compare is not None:
        metrics["compare"] = compare["metric"]
    mixed = len(set(metrics.values())) > 1
    if mixed and not allow_mixed:
        listed = ", ".join(f"{k}: {v}" for k, v in metrics.items())
        raise InputError(
            f"the inputs measure different metrics ({listed})",
            fix="rerun them with the same --metric, or pass --allow-mixed to publish them side by side, each labelled with its metric",
        )
    sources = (("audit", audit), ("lastmile", lastmile or {}), ("compare", compare or {}), ("coverage", coverage or {}), ("slices", slices or {}))
    stamps = {r: _stamp(d) for r, d in sources if _stamp(d)}
    if len(set(stamps.values())) > 1 and not allow_mixed:
        raise InputError(
            "the inputs come from different versions of groupwise (" + ", ".join(f"{k}: {v}" for k, v in stamps.items()) + ")",
            fix="rerun them with one version, or pass --allow-mixed to publish them anyway (the card records each version)",
        )
    norms = {
        r: (d.get("settings") or {}).get("normalize")
        for r, d in (("audit", audit), ("lastmile", lastmile or {}), ("compare", compare or {}))
        if (d.get("settings") or {}).get("normalize")
    }
    if len(set(norms.values())) > 1 and not allow_mixed:
        raise InputError(
            "the inputs normalise text differently (" + ", ".join(f"{k}: {v}" for k, v in norms.items()) + "), so their "
            "error rates are not the same metric",
            fix="rerun them with the same --normalize, or pass --allow-mixed to publish them side by side",
        )
    for other, name in ((lastmile, "the last-mile test"), (compare, "the comparison of systems")):
        conflicts = _provenance_conflicts(audit.get("provenance") or {}, (other or {}).get("provenance") or {})
        if conflicts and not allow_mixed:
            raise InputError(
                f"the audit and {name} record different provenance for " + "; ".join(conflicts),
                fix="rerun both with the same --provenance (or --schema), or pass --allow-mixed to publish them as they are "
                "(the card then shows the audit's provenance)",
            )
    version = _tool_version()
    settings = {"audit": dict(audit.get("settings") or {})}
    seeds = {"audit": settings["audit"].get("seed")}
    if lastmile is not None:
        settings["lastmile"] = dict(lastmile.get("settings") or {})
        seeds["lastmile"] = settings["lastmile"].get("seed")
    if compare is not None:
        settings["compare"] = dict(compare.get("settings") or {})
        seeds["compare"] = settings["compare"].get("seed")
    if coverage is not None:
        settings["coverage"] = dict(coverage.get("settings") or {})
    if slices is not None:
        settings["slices"] = dict(slices.get("settings") or {})
        seeds["slices"] = settings["slices"].get("seed")
    card: dict[str, Any] = {
        "card_format": "groupwise-service-card",
        "schema_version": SCHEMA_VERSION,
        "service": dict(about["service"]),
        "about": {
            k: about[k] for k in ("overview", "intended_uses", "out_of_scope_uses", "limitations", "evaluation_data", "deployment_advice")
        } | {"references": list(about.get("references") or [])},
        "metric": {
            "name": metric,
            "description": str(audit.get("metric_description") or metric),
            "higher_is_worse": audit.get("higher_is_worse"),
            "by_section": metrics,
            "mixed": mixed,
        },
        "overall": dict(audit["overall"]),
        "methodology": _methodology(audit, lastmile),
        "fairness": _fairness(audit),
        "provenance": _provenance(
            audit.get("provenance") or {}, (lastmile or {}).get("provenance") or {}, (compare or {}).get("provenance") or {}
        ),
        "robustness": _robustness(lastmile) if lastmile is not None else None,
        "comparison": _comparison(compare) if compare is not None else None,
        "coverage": _coverage(coverage) if coverage is not None else None,
        "found_by_search": dict(slices["found_by_search"], metric=slices["metric"]) if slices is not None else None,
        "glossary": [{"term": t, "definition": d} for t, d in {**GLOSSARY, **about.get("glossary", {})}.items()],
        "run": {
            "tool": "groupwise",
            "tool_version": version,
            "input_tool_versions": stamps,
            "built_at": built_at or _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
            "inputs": list(inputs or []),
            "seeds": seeds,
            "settings": settings,
            "per_cluster_data": False,
        },
    }
    card["overall"]["summary"] = interval_summary(
        card["overall"].get("value"), card["overall"].get("ci_low"), card["overall"].get("ci_high"),
        clusters=card["overall"].get("clusters"), confidence=float(card["methodology"]["confidence"] or 0.95),
    )
    card["findings"] = _findings(card)
    return card


def _parse_exports(export: Any) -> list[str]:
    if export is None:
        return []
    items = export.split(",") if isinstance(export, str) else list(export)
    names = [str(e).strip().lower() for e in items if str(e).strip()]
    unknown = [n for n in names if n not in EXPORTS]
    if unknown:
        raise InputError(
            f"unknown export format(s): {', '.join(unknown)}",
            fix="use --export with any of mct (Model Card Toolkit), hf (Hugging Face model-index), eee (Every Eval Ever), e.g. --export mct,hf,eee",
        )
    return list(dict.fromkeys(names))


def build(
    about: str | os.PathLike[str] | dict[str, Any],
    audit: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str],
    lastmile: str | os.PathLike[str] | None = None,
    coverage: str | os.PathLike[str] | None = None,
    slices: str | os.PathLike[str] | None = None,
    compare: str | os.PathLike[str] | None = None,
    export: str | list[str] | None = None,
    allow_mixed: bool = False,
) -> Path:
    """Build a service card into the folder ``out``.

    Parameters
    ----------
    about : path or dict
        ``card.yaml`` (the provider's prose), or its fields already parsed.
    audit : path
        JSON written by ``groupwise audit --json``.
    out : path
        The card folder; replaced as a whole when it exists and holds a card.
    lastmile, coverage, slices : path, optional
        JSON written by ``groupwise lastmile --json``, ``groupwise coverage --json`` and
        ``groupwise slices --json`` (its confirmed slices become the "found by search"
        part of the fairness section).
    compare : path, optional
        JSON written by ``groupwise compare --json``: a paired comparison of systems on the
        same items, the card's "Comparison of systems" section.
    export : str or list of str, optional
        Any of ``mct``, ``hf``, ``eee``, written to ``out/exports/``.
    allow_mixed : bool, default=False
        Accept inputs of different metrics, text normalisations, column provenance or tool
        versions.

    Returns
    -------
    pathlib.Path
        The card folder, holding ``card.json``, ``card.html``, ``card.md`` and ``exports/``.

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> import groupwise
    >>> from groupwise.card._about import EXAMPLE_YAML
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> df = groupwise.tabular_example(2000, seed=0)
    >>> _ = groupwise.audit(df, metric="error_rate", by="sex", cluster="household", n_boot=200).to_json(d / "audit.json")
    >>> _ = (d / "card.yaml").write_text(EXAMPLE_YAML)
    >>> folder = build(d / "card.yaml", d / "audit.json", out=d / "card", export="mct")
    >>> sorted(p.name for p in folder.iterdir())
    ['card.html', 'card.json', 'card.md', 'exports']
    >>> json.loads((folder / "card.json").read_text())["metric"]["name"]
    'error_rate'
    """
    exports = _parse_exports(export)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"the output path {str(out)!r} is a file", fix="pass -o with a folder name for the card")
    if out.is_dir() and any(out.iterdir()) and not (out / "card.json").exists():
        raise InputError(
            f"the output folder {str(out)!r} is not empty and holds no card",
            fix="pass -o with a new folder name (an existing card folder is replaced as a whole)",
        )
    inputs = []
    if isinstance(about, dict):
        about_fields = validate_about(about)
    else:
        about_fields, about_bytes = load_about(about)
        import hashlib

        inputs.append({"role": "about", "file": Path(about).name, "sha256": hashlib.sha256(about_bytes).hexdigest(), "bytes": len(about_bytes)})
    audit_data, rec = read_result(audit, "audit")
    inputs.append(rec)
    last_data = cov_data = slice_data = comp_data = None
    if lastmile is not None:
        last_data, rec = read_result(lastmile, "lastmile")
        inputs.append(rec)
    if compare is not None:
        comp_data, rec = read_result(compare, "compare")
        if last_data is not None and rec["sha256"] == next(i["sha256"] for i in inputs if i["role"] == "lastmile"):
            raise InputError(
                f"the same file was given to --lastmile and --compare ({rec['file']})",
                fix="pass the last-mile test (groupwise lastmile --json) with --lastmile and the comparison of systems "
                "(groupwise compare --json) with --compare",
            )
        inputs.append(rec)
    if coverage is not None:
        cov_data, rec = read_result(coverage, "coverage")
        inputs.append(rec)
    if slices is not None:
        slice_data, rec = read_result(slices, "slices")
        inputs.append(rec)
    card = assemble(
        about_fields, audit_data, lastmile=last_data, coverage=cov_data, slices=slice_data, compare=comp_data, inputs=inputs,
        allow_mixed=allow_mixed,
    )

    from groupwise.card._render import render_html, render_markdown
    from groupwise.card._schema import validate_card

    validate_card(card)
    files = {
        "card.json": json.dumps(card, indent=2, allow_nan=False, ensure_ascii=False) + "\n",
        "card.html": render_html(card),
        "card.md": render_markdown(card),
    }
    if exports:
        from groupwise.card import _export

        writers = {"mct": _export.to_mct, "hf": _export.to_hf, "eee": _export.to_eee}
        for name in exports:
            files.update({f"exports/{k}": v for k, v in writers[name](card).items()})
    write_folder(out, files)
    return out


def write_folder(out: Path, files: dict[str, str]) -> None:
    """Write ``files`` into a temporary sibling of ``out``, then swap it into place.

    A crash before the swap leaves ``out`` as it was; the old folder is removed only after
    the new one is in place.
    """
    out = Path(out)
    parent = out.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=parent))
    try:
        for name, text in files.items():
            target = tmp / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        os.chmod(tmp, 0o755)
        old = None
        if out.exists():
            old = parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
