"""A self-contained HTML report: plots embedded as data URIs, no network needed to view it.

The report renders results; it never recomputes them.
"""

from __future__ import annotations

import base64
import html
import io
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from groupwise.audit._result import format_value, group_label

if TYPE_CHECKING:
    from groupwise.audit._coverage import CoverageResult
    from groupwise.audit._result import AuditResult

__all__ = ["html_report", "figure_data_uri"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#1d2430}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.88em;margin:.6em 0}
th,td{padding:.25em .6em;border-bottom:1px solid #eee;text-align:right}
th:first-child,td:first-child{text-align:left}
tr.flagged td{color:#b03a2e;font-weight:600}tr.insufficient td{color:#999}
td.status-empty{color:#b03a2e}td.status-thin{color:#b9770e}
.findings li{margin:.3em 0}.note{color:#666;font-size:.85em}
img.plot{max-width:100%;border:1px solid #eee}
"""


# Marks the page with how many images decoded, so a headless browser test can tell that the
# plots rendered (and a person can see it in the DOM); the page works without it.
_RENDER_CHECK = (
    "<script>window.addEventListener('load',function(){var m=document.images,k=0,i;"
    "for(i=0;i<m.length;i++){if(m[i].complete&&m[i].naturalWidth>0){k++;}}"
    "document.body.setAttribute('data-images-rendered',k+'/'+m.length);});</script>"
)


def figure_data_uri(fig: Any) -> str:
    """A matplotlib figure as a ``data:image/png;base64,...`` URI."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _esc(x: Any) -> str:
    return html.escape(str(x))


def audit_table(result: AuditResult) -> str:
    """The per-group table of an audit as HTML."""
    m = result.metric
    head = (
        "<tr><th>group</th><th>n</th><th>clusters</th>"
        f"<th>{_esc(m)}</th><th>interval</th><th>gap</th><th>p adj.</th><th>status</th></tr>"
    )
    rows = []
    for g in result.groups:
        cls = "flagged" if g["flagged"] else ("insufficient" if g["status"] == "insufficient" else "")
        interval = (
            f"{format_value(g['ci_low'], m)} – {format_value(g['ci_high'], m)}" if g["ci_low"] is not None else "—"
        )
        gap = "—" if g["gap"] is None or g["status"] not in ("tested", "reference") else (
            f"{100 * g['gap']:+.1f} pt" if m in ("wer", "cer", "error_rate", "fpr", "fnr", "selection_rate") else f"{g['gap']:+.3g}"
        )
        p = "—" if g["p_adjusted"] is None else ("&lt;0.001" if g["p_adjusted"] < 0.001 else f"{g['p_adjusted']:.3f}")
        status = f"flagged ({g['direction']})" if g["flagged"] else g["status"]
        rows.append(
            f"<tr class='{cls}'><td>{_esc(group_label(g['group']))}</td><td>{g['n']:,}</td>"
            f"<td>{g['clusters']:,}</td><td>{format_value(g['value'], m)}</td><td>{interval}</td>"
            f"<td>{gap}</td><td>{p}</td><td>{_esc(status)}</td></tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def coverage_table(result: CoverageResult, *, max_rows: int = 200) -> str:
    """The coverage cells as HTML, emptiest first."""
    dims = result.dims
    has_metric = result.settings.get("metric") is not None
    head = "".join(f"<th>{_esc(d)}</th>" for d in dims) + "<th>n</th><th>clusters</th>"
    if has_metric:
        head += "<th>± now</th><th>more clusters</th>"
    head += "<th>status</th>"
    order = sorted(result.cells, key=lambda c: ({"empty": 0, "thin": 1, "ok": 2}[c["status"]], c["clusters"]))
    rows = []
    for c in order[:max_rows]:
        cells = "".join(f"<td>{_esc(c['cell'][d])}</td>" for d in dims)
        cells += f"<td>{c['n']:,}</td><td>{c['clusters']:,}</td>"
        if has_metric:
            hw = "—" if c.get("half_width") is None else f"{c['half_width']:.3f}"
            more = "—" if c.get("more_clusters") is None else f"{c['more_clusters']:,}"
            cells += f"<td>{hw}</td><td>{more}</td>"
        rows.append(f"<tr>{cells}<td class='status-{c['status']}'>{c['status']}</td></tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def lastmile_table(result: Any) -> str:
    """The last-mile deltas and interactions as HTML, one block per condition."""
    m = result.metric
    pct = m in ("wer", "cer", "error_rate", "fpr", "fnr", "selection_rate")

    def pts(x: float | None) -> str:
        if x is None:
            return "—"
        return f"{100 * x:+.1f} pt" if pct else f"{x:+.3g}"

    def inter(g: dict[str, Any]) -> str:
        if g.get("interaction") is None:
            return "—"
        if g.get("interaction_scale") == "ratio of ratios":
            return f"x{g['interaction']:.2f} ({g['interaction_ci_low']:.2f}–{g['interaction_ci_high']:.2f})"
        return pts(g["interaction"])

    scale = result.settings.get("scale", "relative")
    blocks = [
        "<p>Interactions on the "
        + ("relative scale: the group's condition/baseline ratio over the rest's (x1.00 = no difference)."
           if scale == "relative" else "absolute scale: the group's change minus the rest's, in points.")
        + "</p>"
    ]
    for c in result.conditions:
        o = c["overall"]
        rows = [
            f"<tr><td><b>overall</b></td><td>{o['clusters']:,}</td><td>{format_value(o['baseline'], m)}</td>"
            f"<td>{format_value(o['value'], m)}</td><td>{pts(o['delta'])}</td>"
            f"<td>{pts(o['delta_ci_low'])} – {pts(o['delta_ci_high'])}</td><td></td><td></td><td></td></tr>"
        ]
        for g in c["groups"]:
            cls = "flagged" if g["flagged"] else ("insufficient" if g["status"] != "tested" else "")
            ci = f"{pts(g['delta_ci_low'])} – {pts(g['delta_ci_high'])}" if g["delta_ci_low"] is not None else "—"
            p = "—" if g["p_adjusted"] is None else f"{g['p_adjusted']:.3g}"
            status = f"flagged ({g['direction']})" if g["flagged"] else g["status"]
            rows.append(
                f"<tr class='{cls}'><td>{_esc(group_label(g['group']))}</td><td>{g['clusters']:,}</td>"
                f"<td>{format_value(g['baseline'], m)}</td><td>{format_value(g['value'], m)}</td><td>{pts(g['delta'])}</td>"
                f"<td>{ci}</td><td>{inter(g)}</td><td>{p}</td><td>{_esc(status)}</td></tr>"
            )
        head = (
            f"<tr><th>{_esc(result.by)}</th><th>speakers</th><th>baseline</th><th>condition</th><th>delta</th>"
            "<th>delta interval</th><th>interaction</th><th>p adj.</th><th>status</th></tr>"
        )
        blocks.append(f"<h3>{_esc(c['name'])} <small><code>{_esc(c['condition'])}</code></small></h3><table>{head}{''.join(rows)}</table>")
    return "".join(blocks)


def html_report(
    *,
    title: str,
    intro: str,
    sections: list[tuple[str, str]],
    findings: list[str],
) -> str:
    """Assemble a report page from ready HTML sections ``(heading, body)``."""
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = "".join(f"<h2>{_esc(h)}</h2>{b}" for h, b in sections)
    items = "".join(f"<li>{_esc(f)}</li>" for f in findings)
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width,initial-scale=1'><title>{_esc(title)}</title>"
        f"<style>{_CSS}</style></head><body><h1>{_esc(title)}</h1><p>{intro}</p>"
        f"<h2>Findings</h2><ul class='findings'>{items}</ul>{body}"
        f"<p class='note'>Generated by groupwise on {when}.</p>{_RENDER_CHECK}</body></html>"
    )
