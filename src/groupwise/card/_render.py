"""Views of a card: a self-contained HTML page and Markdown. They render, never recompute.

The HTML page loads nothing: styles are inline, plots are inline SVG, and a Content
Security Policy forbids every fetch, so it reads the same offline, on a phone (the layout
is one fluid column; wide tables scroll inside their box) and on paper (print styles drop
colours and keep rows whole).
"""

from __future__ import annotations

import html
import math
from typing import Any

from groupwise.card._build import PERCENT_METRICS

__all__ = ["render_html", "render_markdown", "interval_svg", "page", "fmt", "fmt_change"]

CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;line-height:1.45;max-width:980px;margin:0 auto;padding:1em;color:#1d2430}
h1{font-size:1.55em;margin:.3em 0}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd}
h3{font-size:1.05em;margin-top:1.3em}
.meta{color:#555}.note{color:#666;font-size:.88em}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;max-width:100%}
table{border-collapse:collapse;font-size:.88em;margin:.5em 0}
th,td{padding:.25em .55em;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left;white-space:normal}
td:last-child{white-space:normal}
tr.flagged td{color:#b03a2e;font-weight:600}tr.insufficient td{color:#888}
.tag{display:inline-block;padding:0 .45em;border-radius:.6em;font-size:.8em;background:#eef2f7}
.tag.synthetic{background:#fdebd0}.tag.self_reported{background:#d5f5e3}.tag.imputed{background:#fadbd8}
svg.plot{width:100%;height:auto;max-width:760px;display:block;margin:.4em 0}
nav ol{padding-left:1.2em}code{font-size:.92em;word-break:break-all}
dl dt{font-weight:600;margin-top:.5em}dl dd{margin-left:1em}
@media (max-width:600px){body{padding:.6em;font-size:15px}table{font-size:.8em}}
@media print{body{max-width:none;color:#000;font-size:10.5pt}nav{display:none}.scroll{overflow:visible}
tr,svg.plot,figure{break-inside:avoid}h2,h3{break-after:avoid}a{color:#000;text-decoration:none}}
"""

# Counts what the page fetched after loading (resource timing), so a headless browser test
# can check that nothing was; the page works the same without it.
_LOAD_CHECK = (
    "<script>window.addEventListener('load',function(){var r=(performance.getEntriesByType?"
    "performance.getEntriesByType('resource').length:0);document.body.setAttribute('data-resources-loaded',String(r));"
    "document.body.setAttribute('data-plots',String(document.querySelectorAll('svg.plot').length));"
    "document.body.setAttribute('data-overflow',String(document.documentElement.scrollWidth-document.documentElement.clientWidth));});</script>"
)
_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"


def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def fmt(value: Any, metric: str) -> str:
    """A value for people: rates as percentages.

    >>> fmt(0.1234, "wer"), fmt(None, "wer"), fmt(2.5, "mae")
    ('12.3%', '—', '2.5')
    """
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return "—"
    return f"{100 * value:.1f}%" if metric in PERCENT_METRICS else f"{value:.4g}"


def fmt_change(value: Any, metric: str) -> str:
    """A difference for people: rates in points.

    >>> fmt_change(0.031, "wer"), fmt_change(-0.5, "mae")
    ('+3.1 pt', '-0.5')
    """
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return "—"
    return f"{100 * value:+.1f} pt" if metric in PERCENT_METRICS else f"{value:+.4g}"


def _count(x: Any) -> str:
    return f"{x:,}" if isinstance(x, int) and not isinstance(x, bool) else "—"


def fmt_p(p: Any) -> str:
    if not isinstance(p, (int, float)) or isinstance(p, bool):
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _ticks(lo: float, hi: float) -> list[float]:
    span = hi - lo
    raw = span / 5 if span > 0 else 1.0
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step) * step
    out, x = [], start
    while x <= hi + 1e-12 and len(out) < 12:
        out.append(round(x, 12))
        x += step
    return out


def interval_svg(
    rows: list[dict[str, Any]], *, title: str, axis_label: str, percent: bool, reference: float | None = None,
    zero_line: bool = False, plot_id: str = "",
) -> str:
    """Points with interval bars, one row per group, as an inline SVG element.

    Each row is a dict with ``label``, ``value``, ``low``, ``high`` and ``kind``
    (``flagged``, ``tested``, ``insufficient``); rows without an interval are drawn as
    hollow points and labelled as such.

    Examples
    --------
    >>> svg = interval_svg([{"label": "a", "value": 0.1, "low": 0.08, "high": 0.12, "kind": "tested"}],
    ...                    title="t", axis_label="WER", percent=True)
    >>> svg.startswith("<svg") and "<line" in svg
    True
    """
    scale = 100.0 if percent else 1.0
    longest = max((min(len(str(r["label"])), 44) for r in rows), default=8)
    left, right, top, row_h = int(min(max(longest * 6.6 + 16, 90), 310)), 100, 34, 22
    width = 760
    height = top + row_h * max(len(rows), 1) + 40
    xs = [v * scale for r in rows for v in (r.get("value"), r.get("low"), r.get("high")) if isinstance(v, (int, float))]
    if reference is not None:
        xs.append(reference * scale)
    if zero_line or not xs or min(xs) >= 0:
        xs.append(0.0)
    lo, hi = min(xs), max(xs)
    pad = (hi - lo) * 0.05 or 1.0
    lo, hi = (lo - pad if lo < 0 else lo), hi + pad
    plot_w = width - left - right

    def x(v: float) -> float:
        return left + (v * scale - lo) / (hi - lo) * plot_w if hi > lo else left

    def xs_raw(v: float) -> float:
        return left + (v - lo) / (hi - lo) * plot_w if hi > lo else left

    parts = [
        f"<svg class='plot' id='{esc(plot_id)}' role='img' aria-label='{esc(title)}' xmlns='http://www.w3.org/2000/svg' "
        f"viewBox='0 0 {width} {height}' font-family='system-ui,sans-serif' font-size='12'>",
        f"<title>{esc(title)}</title>",
        f"<text x='4' y='18' font-size='13' font-weight='600'>{esc(title)}</text>",
    ]
    bottom = top + row_h * max(len(rows), 1)
    for t in _ticks(lo, hi):
        tx = xs_raw(t)
        parts.append(f"<line x1='{tx:.1f}' y1='{top - 6}' x2='{tx:.1f}' y2='{bottom}' stroke='#eee'/>")
        label = f"{t:g}"
        parts.append(f"<text x='{tx:.1f}' y='{bottom + 14}' text-anchor='middle' fill='#555'>{esc(label)}</text>")
    parts.append(f"<text x='{left + plot_w / 2:.1f}' y='{bottom + 32}' text-anchor='middle' fill='#333'>{esc(axis_label)}</text>")
    if reference is not None:
        rx = x(reference)
        parts.append(f"<line x1='{rx:.1f}' y1='{top - 6}' x2='{rx:.1f}' y2='{bottom}' stroke='#555' stroke-dasharray='4 3'/>")
    if zero_line and lo < 0 < hi:
        zx = xs_raw(0.0)
        parts.append(f"<line x1='{zx:.1f}' y1='{top - 6}' x2='{zx:.1f}' y2='{bottom}' stroke='#999'/>")
    colours = {"flagged": "#b03a2e", "tested": "#2c5d8f", "reference": "#2c5d8f", "insufficient": "#999"}
    for i, r in enumerate(rows):
        y = top + row_h * i + row_h / 2
        kind = r.get("kind", "tested")
        colour = colours.get(kind, "#2c5d8f")
        label = str(r["label"])
        short = label if len(label) <= 44 else label[:43] + "…"
        parts.append(f"<g class='row {esc(kind)}'><title>{esc(r.get('tip', label))}</title>")
        parts.append(f"<text x='{left - 8}' y='{y + 4:.1f}' text-anchor='end'>{esc(short)}</text>")
        v, l, h = r.get("value"), r.get("low"), r.get("high")
        if isinstance(l, (int, float)) and isinstance(h, (int, float)):
            parts.append(
                f"<line class='interval' x1='{x(l):.1f}' y1='{y:.1f}' x2='{x(h):.1f}' y2='{y:.1f}' stroke='{colour}' stroke-width='2.5'/>"
            )
        if isinstance(v, (int, float)):
            fill = "white" if kind == "insufficient" else colour
            parts.append(f"<circle cx='{x(v):.1f}' cy='{y:.1f}' r='4.5' fill='{fill}' stroke='{colour}' stroke-width='1.5'/>")
        note = r.get("note") or ("insufficient" if kind == "insufficient" else ("flagged" if kind == "flagged" else ""))
        if note:
            parts.append(f"<text x='{left + plot_w + 8}' y='{y + 4:.1f}' fill='{colour}'>{esc(note)}</text>")
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def page(title: str, body: str, *, lang: str = "en") -> str:
    """A complete self-contained HTML page."""
    return (
        f"<!doctype html><html lang='{lang}'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{_CSP}\">"
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>{body}{_LOAD_CHECK}</body></html>\n"
    )


def _table(head: list[str], rows: list[tuple[str, list[str]]]) -> str:
    out = ["<div class='scroll'><table><thead><tr>", *(f"<th>{esc(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for cls, cells in rows:
        out.append(f"<tr class='{esc(cls)}'>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _ul(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>"


def _kind(g: dict[str, Any]) -> str:
    if g.get("flagged"):
        return "flagged"
    return "insufficient" if str(g.get("status", "")).startswith("insufficient") else "tested"


def _status(g: dict[str, Any]) -> str:
    if g.get("flagged"):
        return f"flagged ({g.get('direction') or 'different'})"
    return str(g.get("status", "—"))


def _ci(g: dict[str, Any], lo: str, hi: str, metric: str, change: bool = False) -> str:
    f = fmt_change if change else fmt
    if g.get(lo) is None or g.get(hi) is None:
        return "—"
    return f"{f(g[lo], metric)} to {f(g[hi], metric)}"


def _prov_tag(entry: dict[str, Any]) -> str:
    p = str(entry.get("provenance", "unspecified"))
    extra = " <span class='tag'>protected</span>" if entry.get("protected") else ""
    return f"<span class='tag {esc(p)}'>{esc(p.replace('_', '-'))}</span>{extra}"


def render_html(card: dict[str, Any]) -> str:
    """The card as one self-contained HTML page."""
    s, a, m = card["service"], card["about"], card["metric"]
    metric = m["name"]
    meth = card["methodology"]
    conf = int(round(100 * float(meth.get("confidence") or 0.95)))
    o = card["overall"]
    title = f"{s['name']} {s['version']}: service card"
    b: list[str] = [
        "<header>",
        f"<h1>{esc(s['name'])} <span class='meta'>version {esc(s['version'])}</span></h1>",
        f"<p class='meta'>Service card as of {esc(s['as_of'])} · owner: {esc(s['owner'])}"
        + (f" · contact: {esc(s['contact'])}" if s.get("contact") else "")
        + "</p></header>",
        "<nav><ol><li><a href='#overview'>Overview</a></li><li><a href='#intended-uses'>Intended use cases and limitations</a></li>"
        "<li><a href='#design'>Design</a><ol><li><a href='#performance'>Performance expectations</a></li>"
        "<li><a href='#methodology'>Test-driven methodology</a></li><li><a href='#fairness'>Fairness</a></li>"
        "<li><a href='#robustness'>Robustness</a></li><li><a href='#comparison'>Comparison of systems</a></li>"
        "<li><a href='#coverage'>Coverage</a></li></ol></li>"
        "<li><a href='#deployment'>Deployment and performance best practices</a></li><li><a href='#glossary'>Glossary</a></li>"
        "<li><a href='#provenance-of-card'>How this card was made</a></li></ol></nav>",
    ]
    # Overview
    b.append("<section id='overview'><h2>Overview</h2>")
    b.append(f"<p>{esc(a['overview'])}</p>")
    if a["evaluation_data"].get("synthetic"):
        b.append("<p><b>The evaluation data are synthetic.</b> The groups below are models of people, not people.</p>")
    b.append("<h3>Findings</h3>" + _ul(card["findings"]) + "</section>")
    # Intended uses
    b.append("<section id='intended-uses'><h2>Intended use cases and limitations</h2>")
    b.append("<h3>Intended use cases</h3>" + _ul(a["intended_uses"]))
    b.append("<h3>Out of scope</h3>" + _ul(a["out_of_scope_uses"]))
    b.append("<h3>Known limitations</h3>" + _ul(a["limitations"]) + "</section>")
    # Design
    b.append("<section id='design'><h2>Design</h2>")
    ed = a["evaluation_data"]
    b.append("<section id='performance'><h3>Performance expectations</h3>")
    b.append(
        f"<p>Overall {esc(m['description'])}: <b>{fmt(o.get('value'), metric)}</b> ({conf}% interval "
        f"{_ci(o, 'ci_low', 'ci_high', metric)}) over {_count(o.get('n'))} examples from {_count(o.get('clusters'))} clusters.</p>"
    )
    values = [g["value"] for g in card["fairness"]["groups"] if isinstance(g.get("value"), (int, float)) and _kind(g) != "insufficient"]
    if values:
        b.append(f"<p>Across groups with enough data the {esc(metric)} ranges from {fmt(min(values), metric)} to {fmt(max(values), metric)}.</p>")
    b.append(
        "<dl><dt>Evaluation data</dt><dd>" + esc(ed["description"]) + "</dd><dt>How they were collected</dt><dd>"
        + esc(ed["collection"]) + "</dd><dt>Demographic columns self-reported</dt><dd>" + ("yes" if ed["self_reported"] else "no")
        + "</dd><dt>Synthetic</dt><dd>" + ("yes" if ed.get("synthetic") else "no") + "</dd></dl></section>"
    )
    b.append("<section id='methodology'><h3>Test-driven methodology</h3><dl>")
    items = [
        ("Metric", meth["metric_definition"]),
        ("Text normalisation", meth.get("normalization") or "none (not a text metric)"),
        ("Intervals", f"{conf}% intervals: {meth.get('intervals') or 'as reported by the audit'} (clusters: {meth.get('cluster_column') or 'rows'})"),
        ("Gaps", f"each group against {meth.get('reference')}"),
        ("Tests", meth.get("inference") or "; ".join(f"{k}: {v}" for k, v in (meth.get("test_descriptions") or {}).items() if not meth.get("tests_used") or k in meth["tests_used"]) or str(meth.get("test"))),
        ("Correction", f"{meth['correction_description']} across {meth['correction_family']}; flagged at alpha {meth['alpha']}"),
        ("Too little data", f"below {meth['min_clusters']} clusters or {meth['min_examples']} examples a group is 'insufficient': shown, with no interval and no test"),
    ]
    if meth.get("lastmile"):
        lm = meth["lastmile"]
        items.append(("Last mile", f"{lm['pairing']}; interactions corrected with {lm.get('correction')} across {lm['correction_family']}"))
    b.extend(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items)
    b.append("</dl></section>")
    b.append(_fairness_html(card, conf))
    b.append(_robustness_html(card, conf))
    b.append(_comparison_html(card, conf))
    b.append(_coverage_html(card))
    b.append("</section>")
    b.append("<section id='deployment'><h2>Deployment and performance best practices</h2>" + _ul(a["deployment_advice"]) + "</section>")
    b.append(
        "<section id='glossary'><h2>Glossary</h2><dl>"
        + "".join(f"<dt>{esc(e['term'])}</dt><dd>{esc(e['definition'])}</dd>" for e in card["glossary"])
        + "</dl></section>"
    )
    run = card["run"]
    b.append("<section id='provenance-of-card'><h2>How this card was made</h2>")
    b.append(f"<p>Compiled by {esc(run['tool'])} {esc(run['tool_version'])} at {esc(run['built_at'])} from these inputs (SHA-256):</p>")
    b.append(_table(["input", "file", "sha256", "bytes"], [("", [esc(i["role"]), esc(i["file"]), f"<code>{esc(i['sha256'])}</code>", f"{_count(i.get('bytes'))}"]) for i in run["inputs"]]))
    seeds = ", ".join(f"{k}: {v}" for k, v in run["seeds"].items())
    b.append(f"<p>Seeds: {esc(seeds)}. Every setting of every run is in <code>card.json</code> (run.settings). "
             "The card holds no per-speaker data.</p>")
    if a.get("references"):
        b.append("<h3>References</h3>" + _ul(a["references"]))
    b.append("</section>")
    return page(title, "".join(b))


def _fairness_html(card: dict[str, Any], conf: int) -> str:
    metric = card["metric"]["name"]
    f = card["fairness"]
    o = card["overall"]
    out = ["<section id='fairness'><h3>Fairness: results per group</h3>"]
    out.append(
        f"<p>{len(f['groups'])} groups in {len(f['families'])} families; {len(f['flagged'])} flagged, "
        f"{len(f['insufficient'])} with insufficient data. Points are values, bars {conf}% intervals; the dashed line is the overall value; "
        "hollow grey points have too little data for an interval.</p>"
    )
    for i, family in enumerate(f["families"]):
        rows = [g for g in f["groups"] if g["family"] == family]
        plot_rows = [
            {"label": g["label"], "value": g.get("value"), "low": g.get("ci_low"), "high": g.get("ci_high"), "kind": _kind(g),
             "tip": f"{g['label']}: {fmt(g.get('value'), metric)} ({_ci(g, 'ci_low', 'ci_high', metric)}), {_status(g)}"}
            for g in rows
        ]
        out.append(interval_svg(plot_rows, title=f"{card['metric']['description']} by {family}", axis_label=metric + (" (%)" if metric in PERCENT_METRICS else ""),
                                percent=metric in PERCENT_METRICS, reference=o.get("value"), plot_id=f"fairness-plot-{i}"))
        table_rows = [
            (_kind(g), [esc(g["label"]), f"{_count(g.get('n'))}", f"{_count(g.get('clusters'))}", fmt(g.get("value"), metric),
                        _ci(g, "ci_low", "ci_high", metric), fmt_change(g.get("gap"), metric) if _kind(g) != "insufficient" else "—",
                        fmt_p(g.get("p_adjusted")), esc(g.get("test") or "—"), esc(_status(g))])
            for g in rows
        ]
        out.append(_table(["group", "n", "clusters", metric, f"{conf}% interval", "gap", "p adj.", "test", "status"], table_rows))
    found = card.get("found_by_search")
    if found is not None:
        fm = found.get("metric", metric)
        out.append(f"<h3 id='found-by-search'>Found by search</h3><p>{esc(found['method'])}.</p>")
        if found["slices"]:
            out.append(interval_svg(
                [{"label": x["expression"], "value": x.get("value"), "low": x.get("ci_low"), "high": x.get("ci_high"), "kind": "flagged"} for x in found["slices"]],
                title="slices confirmed on held-out clusters", axis_label=fm + (" (%)" if fm in PERCENT_METRICS else ""),
                percent=fm in PERCENT_METRICS, reference=o.get("value") if fm == metric else None, plot_id="found-plot",
            ))
            out.append(_table(["slice", "n", "clusters", fm, f"{conf}% interval", "gap", "p adj."], [
                ("flagged", [f"<code>{esc(x['expression'])}</code>", f"{_count(x.get('n'))}", f"{_count(x.get('clusters'))}", fmt(x.get("value"), fm),
                             _ci(x, "ci_low", "ci_high", fm), fmt_change(x.get("gap"), fm), fmt_p(x.get("p_adjusted"))])
                for x in found["slices"]
            ]))
        else:
            out.append("<p>No slice was confirmed on the held-out half.</p>")
    out.append("<h3>Provenance of grouping columns</h3>")
    prov = card["provenance"]
    if prov:
        out.append(_table(["column", "provenance", "synthetic", "self-reported"], [
            ("", [esc(c), _prov_tag(e), "yes" if e["synthetic"] else "no", "yes" if e["self_reported"] else "no"]) for c, e in prov.items()
        ]))
    else:
        out.append("<p>The inputs record no provenance.</p>")
    out.append("</section>")
    return "".join(out)


def _robustness_html(card: dict[str, Any], conf: int) -> str:
    r = card.get("robustness")
    out = ["<section id='robustness'><h3>Robustness: last-mile conditions</h3>"]
    if not r:
        out.append("<p>No last-mile test is part of this card.</p></section>")
        return "".join(out)
    metric = r["metric"]
    out.append(
        f"<p>The same examples were measured at baseline ({esc(r['baseline'])}) and under each condition below. "
        f"Per group ({esc(r['by'])}): the change with its {conf}% interval, and the interaction (the group's change minus "
        "the rest's), tested and corrected. Red rows change significantly more or less than the rest.</p>"
    )
    out.append(_ul(r["findings"]) if r["findings"] else "")
    for i, c in enumerate(r["conditions"]):
        out.append(_paired_block(
            c, metric, conf, heading=f"<h3>{esc(c['name'])}</h3><p>Recipe: <code>{esc(c['recipe'])}</code>. ",
            title=f"change in {metric} under {c['name']}", plot_id=f"robustness-plot-{i}",
            columns=("baseline", "condition"), flagged_as="flagged (hurt more)",
        ))
    out.append("</section>")
    return "".join(out)


def _comparison_html(card: dict[str, Any], conf: int) -> str:
    c = card.get("comparison")
    out = ["<section id='comparison'><h3>Comparison of systems</h3>"]
    if not c:
        out.append("<p>No comparison of systems is part of this card.</p></section>")
        return "".join(out)
    metric = c["metric"]
    unpaired = c.get("unpaired_items")
    out.append(
        f"<p>Each system below against <b>{esc(c['baseline'])}</b> (column <code>{esc(c['condition_column'])}</code>) on the "
        f"same items (<code>{esc(c['item'])}</code>), paired by speaker"
        + (f"; {_count(unpaired)} items not transcribed by every system were left out" if isinstance(unpaired, int) and unpaired else "")
        + f". Per group ({esc(c['by'])}): each system's value, the change with its {conf}% interval, and the interaction "
        "(the group's change against the rest's), tested and corrected. Red rows change significantly more or less than the rest.</p>"
    )
    if c.get("method"):
        out.append(f"<p class='note'>{esc(c['method'])}.</p>")
    out.append(_ul(c["findings"]) if c["findings"] else "")
    for i, x in enumerate(c["systems"]):
        out.append(_paired_block(
            x, metric, conf, heading=f"<h3>{esc(x['name'])} against {esc(c['baseline'])}</h3><p>",
            title=f"change in {metric}: {x['name']} against {c['baseline']}", plot_id=f"comparison-plot-{i}",
            columns=(esc(c["baseline"]), esc(x["name"])),
        ))
    out.append("</section>")
    return "".join(out)


def _paired_block(
    entry: dict[str, Any], metric: str, conf: int, *, heading: str, title: str, plot_id: str,
    columns: tuple[str, str], flagged_as: str | None = None,
) -> str:
    """One condition (or system) against its baseline: overall change, a plot of each group's change, the table."""
    ov = entry["overall"]
    out = [f"{heading}Overall change {fmt_change(ov.get('delta'), metric)} "
           f"({_ci(ov, 'delta_ci_low', 'delta_ci_high', metric, True)}), "
           f"from {fmt(ov.get('baseline'), metric)} to {fmt(ov.get('value'), metric)}.</p>"]
    rows = [
        {"label": g["label"], "value": g.get("delta"), "low": g.get("delta_ci_low"), "high": g.get("delta_ci_high"), "kind": _kind(g)}
        for g in entry["groups"]
    ]
    out.append(interval_svg(rows, title=title, axis_label=f"change in {metric}" + (" (points)" if metric in PERCENT_METRICS else ""),
                            percent=metric in PERCENT_METRICS, reference=ov.get("delta"), zero_line=True, plot_id=plot_id))

    def status(g: dict[str, Any]) -> str:
        text = esc(_status(g))
        return text.replace("flagged (larger)", flagged_as) if flagged_as else text

    out.append(_table(
        ["group", "clusters", *columns, "change", f"{conf}% interval", "interaction", "p adj.", "status"],
        [(_kind(g), [esc(g["label"]), f"{_count(g.get('clusters'))}", fmt(g.get("baseline"), metric), fmt(g.get("value"), metric),
                     fmt_change(g.get("delta"), metric), _ci(g, "delta_ci_low", "delta_ci_high", metric, True),
                     _interaction(g, metric), fmt_p(g.get("p_adjusted")), status(g)])
         for g in entry["groups"]],
    ))
    return "".join(out)


def _interaction(g: dict[str, Any], metric: str) -> str:
    """An interaction on its own scale: a ratio of ratios (x1.8) or a difference of changes (points)."""
    v = g.get("interaction")
    if isinstance(v, (int, float)) and not isinstance(v, bool) and g.get("interaction_scale") == "ratio of ratios":
        return f"x{v:.2f}"
    return fmt_change(v, metric)


def _coverage_html(card: dict[str, Any]) -> str:
    c = card.get("coverage")
    out = ["<section id='coverage'><h3>Coverage</h3>"]
    if not c:
        out.append("<p>No coverage listing is part of this card.</p></section>")
        return "".join(out)
    s = c["summary"]
    st = c.get("settings") or {}
    out.append(
        f"<p>{s['cells']} combinations of {esc(' x '.join(c['dims']))}: {s['ok']} ok, {s['thin']} thin (below "
        f"{esc(st.get('min_clusters', '?'))} clusters or {esc(st.get('min_examples', '?'))} examples), {s['empty']} empty."
        + (f" 'More clusters' is what each cell needs for an interval half-width of {esc(st['target_half_width'])}." if st.get("target_half_width") else "")
        + "</p>"
    )
    short = [x for x in c["cells"] if x["status"] != "ok"]
    if short:
        out.append("<p>Thin and empty combinations, and what it would take to fill them:</p>")
        out.append(_table(["combination", "n", "clusters", "status", "more clusters"], [
            (x["status"], [esc(x["label"]), f"{_count(x.get('n'))}", f"{_count(x.get('clusters'))}", esc(x["status"]),
                           "—" if x.get("more_clusters") is None else f"{_count(x.get('more_clusters'))}"]) for x in short
        ]))
    else:
        out.append("<p>Every combination has enough data.</p>")
    out.append("</section>")
    return "".join(out)


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    def cell(x: str) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(" --- " for _ in head) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def render_markdown(card: dict[str, Any]) -> str:
    """The card as Markdown (tables instead of plots)."""
    s, a, m = card["service"], card["about"], card["metric"]
    metric = m["name"]
    meth = card["methodology"]
    conf = int(round(100 * float(meth.get("confidence") or 0.95)))
    o = card["overall"]
    L = [f"# {s['name']} {s['version']}: service card", "",
         f"As of {s['as_of']}; owner: {s['owner']}" + (f"; contact: {s['contact']}" if s.get("contact") else "") + ".", "",
         "## Overview", "", a["overview"], ""]
    if a["evaluation_data"].get("synthetic"):
        L += ["**The evaluation data are synthetic.** The groups below are models of people, not people.", ""]
    L += ["### Findings", ""] + [f"- {x}" for x in card["findings"]] + [""]
    L += ["## Intended use cases and limitations", "", "### Intended use cases", ""] + [f"- {x}" for x in a["intended_uses"]]
    L += ["", "### Out of scope", ""] + [f"- {x}" for x in a["out_of_scope_uses"]]
    L += ["", "### Known limitations", ""] + [f"- {x}" for x in a["limitations"]] + [""]
    ed = a["evaluation_data"]
    L += ["## Design", "", "### Performance expectations", "",
          f"Overall {m['description']}: **{fmt(o.get('value'), metric)}** ({conf}% interval {_ci(o, 'ci_low', 'ci_high', metric)}) "
          f"over {_count(o.get('n'))} examples from {_count(o.get('clusters'))} clusters.", "",
          f"- Evaluation data: {ed['description']}", f"- Collection: {ed['collection']}",
          f"- Demographic columns self-reported: {'yes' if ed['self_reported'] else 'no'}",
          f"- Synthetic: {'yes' if ed.get('synthetic') else 'no'}", "",
          "### Test-driven methodology", "",
          f"- Metric: {meth['metric_definition']}", f"- Text normalisation: {meth.get('normalization') or 'none'}",
          f"- Intervals: {conf}%: {meth.get('intervals') or 'as reported by the audit'}",
          f"- Tests: {meth.get('inference') or '; '.join(f'{k}: {v}' for k, v in (meth.get('test_descriptions') or {}).items())}",
          f"- Gaps: against {meth.get('reference')}",
          f"- Correction: {meth['correction_description']} across {meth['correction_family']}; alpha {meth['alpha']}",
          f"- Too little data: below {meth['min_clusters']} clusters or {meth['min_examples']} examples a group is 'insufficient'", "",
          "### Fairness: results per group", ""]
    for family in card["fairness"]["families"]:
        L += [f"**By {family}**", ""]
        L.append(_md_table(["group", "n", "clusters", metric, f"{conf}% interval", "gap", "p adj.", "status"], [
            [g["label"], f"{_count(g.get('n'))}", f"{_count(g.get('clusters'))}", fmt(g.get("value"), metric), _ci(g, "ci_low", "ci_high", metric),
             fmt_change(g.get("gap"), metric) if _kind(g) != "insufficient" else "—", fmt_p(g.get("p_adjusted")), _status(g)]
            for g in card["fairness"]["groups"] if g["family"] == family
        ]))
    found = card.get("found_by_search")
    if found is not None:
        fm = found.get("metric", metric)
        L += ["**Found by search**", "", found["method"] + ".", ""]
        if found["slices"]:
            L.append(_md_table(["slice", fm, f"{conf}% interval", "gap", "p adj."], [
                [f"`{x['expression']}`", fmt(x.get("value"), fm), _ci(x, "ci_low", "ci_high", fm), fmt_change(x.get("gap"), fm), fmt_p(x.get("p_adjusted"))]
                for x in found["slices"]
            ]))
        else:
            L += ["No slice was confirmed on the held-out half.", ""]
    L += ["**Provenance of grouping columns**", ""]
    L.append(_md_table(["column", "provenance", "protected"], [[c, e["provenance"], "yes" if e["protected"] else "no"] for c, e in card["provenance"].items()]))
    L += ["### Robustness: last-mile conditions", ""]
    r = card.get("robustness")
    if not r:
        L += ["No last-mile test is part of this card.", ""]
    else:
        L += [f"- {x}" for x in r["findings"]] + [""]
        for c in r["conditions"]:
            L += [f"**{c['name']}** (recipe `{c['recipe']}`)", ""]
            L.append(_md_table(["group", "baseline", "condition", "change", f"{conf}% interval", "interaction", "p adj.", "status"], [
                [g["label"], fmt(g.get("baseline"), r["metric"]), fmt(g.get("value"), r["metric"]), fmt_change(g.get("delta"), r["metric"]),
                 _ci(g, "delta_ci_low", "delta_ci_high", r["metric"], True), _interaction(g, r["metric"]),
                 fmt_p(g.get("p_adjusted")), _status(g)] for g in c["groups"]
            ]))
    L += ["### Comparison of systems", ""]
    comp = card.get("comparison")
    if not comp:
        L += ["No comparison of systems is part of this card.", ""]
    else:
        cm = comp["metric"]
        L += [f"Each system against **{comp['baseline']}** (column `{comp['condition_column']}`) on the same items "
              f"(`{comp['item']}`), paired by speaker; per group ({comp['by']}) the change and the interaction, tested and corrected.", ""]
        L += [f"- {x}" for x in comp["findings"]] + ([""] if comp["findings"] else [])
        for x in comp["systems"]:
            ov = x["overall"]
            L += [f"**{x['name']} against {comp['baseline']}**: overall change {fmt_change(ov.get('delta'), cm)} "
                  f"({_ci(ov, 'delta_ci_low', 'delta_ci_high', cm, True)}).", ""]
            L.append(_md_table(["group", comp["baseline"], x["name"], "change", f"{conf}% interval", "interaction", "p adj.", "status"], [
                [g["label"], fmt(g.get("baseline"), cm), fmt(g.get("value"), cm), fmt_change(g.get("delta"), cm),
                 _ci(g, "delta_ci_low", "delta_ci_high", cm, True), _interaction(g, cm), fmt_p(g.get("p_adjusted")), _status(g)]
                for g in x["groups"]
            ]))
    L += ["### Coverage", ""]
    c = card.get("coverage")
    if not c:
        L += ["No coverage listing is part of this card.", ""]
    else:
        sm = c["summary"]
        L += [f"{sm['cells']} combinations of {' x '.join(c['dims'])}: {sm['ok']} ok, {sm['thin']} thin, {sm['empty']} empty.", ""]
        short = [x for x in c["cells"] if x["status"] != "ok"]
        if short:
            L.append(_md_table(["combination", "n", "clusters", "status", "more clusters"], [
                [x["label"], f"{_count(x.get('n'))}", f"{_count(x.get('clusters'))}", x["status"], "—" if x.get("more_clusters") is None else f"{_count(x.get('more_clusters'))}"]
                for x in short
            ]))
    L += ["## Deployment and performance best practices", ""] + [f"- {x}" for x in a["deployment_advice"]] + [""]
    L += ["## Glossary", ""] + [f"- **{e['term']}**: {e['definition']}" for e in card["glossary"]] + [""]
    run = card["run"]
    L += ["## How this card was made", "", f"Compiled by {run['tool']} {run['tool_version']} at {run['built_at']}.", ""]
    L.append(_md_table(["input", "file", "sha256"], [[i["role"], i["file"], f"`{i['sha256']}`"] for i in run["inputs"]]))
    L += ["Seeds: " + ", ".join(f"{k}: {v}" for k, v in run["seeds"].items()) + ". Every setting is in card.json.", ""]
    return "\n".join(L)
