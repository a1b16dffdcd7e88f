"""The ``groupwise card`` commands: build, diff, schema, example. They parse and call the library."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

__all__ = ["card_app"]

card_app = typer.Typer(
    help="Service cards: compile measured results into the card a provider publishes; diff two versions.",
    no_args_is_help=True,
)


def _console():  # noqa: ANN202 - rich imported lazily
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 120)


@card_app.command("build")
def build_cmd(
    about: Annotated[Path, typer.Option("--about", help="card.yaml: the provider's prose (print an example with 'groupwise card example').")],
    audit: Annotated[Path, typer.Option("--audit", help="JSON written by 'groupwise audit --json'.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Card folder (replaced as a whole if it holds a card).")] = Path("card"),
    lastmile: Annotated[Optional[Path], typer.Option("--lastmile", help="JSON written by 'groupwise lastmile --json'.")] = None,
    compare: Annotated[Optional[Path], typer.Option("--compare", help="JSON written by 'groupwise compare --json' (a paired comparison of systems on the same items).")] = None,
    coverage: Annotated[Optional[Path], typer.Option("--coverage", help="JSON written by 'groupwise coverage --json'.")] = None,
    slices: Annotated[Optional[Path], typer.Option("--slices", help="JSON written by 'groupwise slices --json' (confirmed slices: 'found by search').")] = None,
    export: Annotated[Optional[str], typer.Option("--export", help="Extra formats, comma-separated: mct (Model Card Toolkit), hf (Hugging Face model-index), eee (Every Eval Ever).")] = None,
    allow_mixed: Annotated[bool, typer.Option("--allow-mixed", help="Accept inputs that differ in metric, text normalisation, column provenance or tool version (each section states its own).")] = False,
) -> None:
    """Build card.html, card.md and card.json (and exports) from card.yaml and measured results.

    Example: groupwise card build --about card.yaml --audit audit.json --coverage coverage.json --export mct,hf,eee -o card
    """
    from groupwise.card._build import build

    folder = build(
        about, audit, out=out, lastmile=lastmile, coverage=coverage, slices=slices, compare=compare, export=export,
        allow_mixed=allow_mixed,
    )
    console = _console()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        console.print(f"[dim]Wrote {path}[/]")


@card_app.command("diff")
def diff_cmd(
    old: Annotated[Path, typer.Argument(help="card.json of the earlier version.")],
    new: Annotated[Path, typer.Argument(help="card.json of the later version.")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Folder for diff.json and diff.html.")] = None,
    correction: Annotated[str, typer.Option(help="Correction across every change tested: holm, bh or none.")] = "holm",
    alpha: Annotated[float, typer.Option(help="A change is significant when its corrected p-value is at most this.")] = 0.05,
    confidence: Annotated[float, typer.Option(help="Level of the interval of each change.")] = 0.95,
) -> None:
    """Which groups and conditions got better or worse between two versions, with intervals and corrected tests.

    Example: groupwise card diff v1/card.json v2/card.json -o diff
    """
    from rich.table import Table

    from groupwise.card._build import write_folder
    from groupwise.card._diff import _short_method, diff, render_diff_html
    from groupwise.card._render import fmt, fmt_change, fmt_p

    from groupwise._errors import InputError

    if out is not None and (out.is_file() or (out.is_dir() and any(out.iterdir()) and not (out / "diff.json").exists())):
        raise InputError(f"the output path {str(out)!r} exists and holds no diff", fix="pass -o with a new folder name")
    d = diff(old, new, correction=correction, alpha=alpha, confidence=confidence)
    console = _console()
    m = d["metric"]
    table = Table(title=f"{d['service']}: {d['old']['version']} -> {d['new']['version']} ({m})", title_justify="left")
    for col in ("family / condition", "group", "old", "new", "change", "interval", "p adj.", "test", "verdict"):
        table.add_column(col, justify="left" if col in ("family / condition", "group", "verdict") else "right")
    for c in d["changes"]:
        if c.get("scale") == "log":
            ci = f"x{c['ratio_ci_low']:.3f} to x{c['ratio_ci_high']:.3f}"
        elif c.get("scale") == "absolute":
            ci = f"{fmt_change(c['change_ci_low'], m)} to {fmt_change(c['change_ci_high'], m)}"
        else:
            ci = "—"
        val = fmt if c["section"] == "fairness" else fmt_change
        verdict = c["direction"] or ("—" if c["status"] == "tested" else c["status"])
        style = "bold red" if c["direction"] == "worse" else ("green" if c["direction"] == "better" else "")
        table.add_row(c["where"], c["label"], val(c["old"], m), val(c["new"], m), fmt_change(c["change"], m), ci,
                      fmt_p(c["p_adjusted"]), _short_method(c), f"[{style}]{verdict}[/]" if style else verdict)
    console.print(table)
    s = d["summary"]
    console.print(f"{s['tested']} changes tested: {s['worse']} worse, {s['better']} better; {s['new']} new and {s['vanished']} vanished groups.")
    console.print(f"[dim]{d['method']['independence']}[/]")
    if out is not None:
        write_folder(out, {"diff.json": json.dumps(d, indent=2, allow_nan=False, ensure_ascii=False) + "\n", "diff.html": render_diff_html(d)})
        console.print(f"[dim]Wrote {out / 'diff.json'} and {out / 'diff.html'}[/]")


@card_app.command("schema")
def schema_cmd() -> None:
    """Print the JSON Schema every card.json is valid against."""
    from groupwise.card._schema import _load

    sys.stdout.write(_load("card.schema.json"))


@card_app.command("example")
def example_cmd(
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write it to this file instead of printing it.")] = None,
) -> None:
    """Print (or write) an example card.yaml to start from."""
    from groupwise._errors import InputError
    from groupwise.card._about import EXAMPLE_YAML

    if out is None:
        sys.stdout.write(EXAMPLE_YAML)
        return
    if out.exists():
        raise InputError(f"{str(out)!r} already exists", fix="pass -o with a new file name, or edit the existing card.yaml")
    out.write_text(EXAMPLE_YAML, encoding="utf-8")
