"""Slice discovery: find the subsets where a model underperforms, and confirm them on
clusters the search never saw.

:func:`slices` searches conjunctions of feature predicates (``accent == "hi" and
snr_db <= 10``) for slices whose metric is worse than the whole data's, on a random half of
the clusters (speakers) only, and hands the best of them to :func:`groupwise.audit` on the
other half, all in one call, so that the audit's cluster statistics and its multiplicity
correction decide which slices are reported as found. Most slice finders rank and report
slices on the same rows; a search over thousands of slices then always "finds" some.

Predicates
----------
* **Categorical** columns (text, categories, true/false) give one equality predicate per
  value (``accent == "hi"``); at most ``max_values`` of the most frequent values, the rest
  fall in no predicate.
* **Numeric** columns with at most ``bins`` distinct values are treated as categories
  (``words == 12``). Other numeric columns are cut at the ``1/bins, ..., (bins-1)/bins``
  quantiles (cut points are data values, so the written expression selects exactly the
  same rows), giving the ``bins`` brackets (``snr_db <= 5.0``, ``5.0 < snr_db <= 12.5``, ...,
  ``snr_db > 20.0``) and the thresholds between (``snr_db <= 12.5``, ``snr_db > 12.5``).
* Missing values are in no predicate, as in the query syntax (``x == v`` is False on a
  missing ``x``).

A slice is a conjunction of predicates on different features, up to ``max_order`` of them.

Search
------
Every row is mapped, per feature, to an *atom* (a category value or a quantile bracket);
each predicate is a set of atoms. For one combination of features, the sums over rows of
``num``, ``den``, a count and the positive excess (below) are bincounts over the combined
atom code, and the sums of every slice on those features are one tensor contraction with
the predicate-by-atom tables: no Python loop over rows or over slices. The score is the
slice's size-weighted gap, as SliceLine scores (a slice must be both bad and big enough to
matter)::

    score(S) = mu(S) * (m(S) - m) = (sum_S num - m * sum_S den) / sum den

with ``m`` the metric over the whole discovery half and ``mu(S)`` the slice's share of the
denominator (its share of the reference words for WER). It is the slice's excess errors
as a share of all the words, the same quantity as the bias bounty's score. Pruning, as in
SliceLine's lattice: a slice with fewer than ``min_size`` rows or ``min_clusters`` clusters
has no child that is large enough, and no child of ``S`` can score more than
``sum_S max(num - m * den, 0) / sum den``; a conjunction is looked at only when every
parent (every sub-conjunction one predicate shorter) can still reach the current
``4 * top``-th best score. A conjunction is a candidate only when its metric is worse
than that of each of its parents; otherwise its gap is only its parent's (``noise == "hum"
and gender == "male"`` when hum is bad for everyone).

Confirmation
------------
The best slices (``top`` of them, after near-duplicates are merged: two slices whose rows
on the discovery half have a Jaccard similarity of at least ``merge`` are one, and the
lower-scoring one is listed under ``merged``) are audited on the confirmation half with
``compare="complement"``, the given correction across all of them, and the audit's tests.
A slice is reported as **confirmed** only when the audit flags it there and it is worse
than the rest.
"""

from __future__ import annotations

import heapq
import itertools
import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from groupwise.audit._result import _format_gap, _format_p, format_value
from groupwise._errors import InputError
from groupwise._io import check_columns, check_scalar, read_table, split_names
from groupwise.audit._base import Result
from groupwise.audit._rows import SliceRow

__all__ = ["slices", "SliceResult"]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CORRECTIONS = ("holm", "bh")
_PERCENT = {"wer", "cer", "error_rate", "fpr", "fnr"}


# ---------------------------------------------------------------------------
# predicates
# ---------------------------------------------------------------------------


@dataclass
class _Feature:
    """One feature column: per-row atom codes and its predicates as sets of atoms."""

    name: str
    kind: str  # "categorical", "levels" or "quantile"
    codes: npt.NDArray[np.int64]  # atom per row; the last atom is "in no predicate"
    table: npt.NDArray[np.bool_]  # atoms x predicates
    texts: list[str]
    note: str

    @property
    def n_atoms(self) -> int:
        return int(self.table.shape[0])


def _name(column: str) -> str:
    return column if _IDENT.match(column) else f"`{column}`"


def _number(value: Any, integer: bool) -> str:
    if integer and float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _literal(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "True" if value else "False"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    raise InputError(
        f"a feature value {value!r} is a {type(value).__name__}, which a group expression cannot name",
        fix="convert the column to text or numbers before the search",
    )


def _bad_feature(name: str, problem: str, fix: str) -> InputError:
    return InputError(f"the feature column {name!r} {problem}", fix=fix)


def _feature(series: pd.Series, name: str, *, bins: int, max_values: int) -> _Feature:
    """Atoms and predicates of one column (see the module docstring)."""
    col = _name(name)
    numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    if numeric:
        values = series.to_numpy(dtype=float, na_value=np.nan)
        finite = np.isfinite(values)
        if not finite.any():
            raise _bad_feature(name, "has no numeric value (every value is missing)",
                               "fill the column, or leave it out of --features")
        distinct = np.unique(values[finite])
        if distinct.size < 2:
            raise _bad_feature(name, f"has a single value ({_number(distinct[0], True)}), so it splits nothing",
                               "leave it out of --features")
        integer = series.dtype.kind in "iu" or bool(np.all(distinct == np.round(distinct)))
        if distinct.size <= bins:
            atom = np.searchsorted(distinct, values)
            codes = np.where(finite, atom, distinct.size).astype(np.int64)
            table = np.vstack([np.eye(distinct.size, dtype=bool), np.zeros((1, distinct.size), bool)])
            texts = [f"{col} == {_number(v, integer)}" for v in distinct]
            return _Feature(name, "levels", codes, table, texts, f"{distinct.size} values, one predicate each")
        cuts = np.unique(np.quantile(values[finite], np.arange(1, bins) / bins, method="inverted_cdf"))
        cuts = cuts[cuts < distinct[-1]]
        k = cuts.size
        atom = np.searchsorted(cuts, values, side="left")  # x <= c1 -> 0, ..., x > ck -> k
        codes = np.where(finite, atom, k + 1).astype(np.int64)
        c = [_number(v, integer) for v in cuts]
        columns: list[npt.NDArray[np.bool_]] = []
        texts = []
        atoms = np.arange(k + 2)
        for j in range(k + 1):  # the brackets
            columns.append(atoms == j)
            if j == 0:
                texts.append(f"{col} <= {c[0]}")
            elif j == k:
                texts.append(f"{col} > {c[k - 1]}")
            else:
                texts.append(f"{c[j - 1]} < {col} <= {c[j]}")
        for j in range(1, k):  # the thresholds between the brackets
            columns.append(atoms <= j)
            texts.append(f"{col} <= {c[j]}")
            columns.append((atoms > j - 1) & (atoms <= k))
            texts.append(f"{col} > {c[j - 1]}")
        table = np.stack(columns, axis=1)
        table[k + 1] = False
        return _Feature(name, "quantile", codes, table, texts, "cut at " + ", ".join(c))
    codes, uniques = pd.factorize(series, sort=True)
    if len(uniques) == 0:
        raise _bad_feature(name, "has no value (every value is missing)", "fill the column, or leave it out of --features")
    if len(uniques) < 2:
        raise _bad_feature(name, f"has a single value ({uniques[0]!r}), so it splits nothing", "leave it out of --features")
    counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
    keep = np.sort(np.argsort(-counts, kind="stable")[:max_values])
    atom_of = np.full(len(uniques) + 1, keep.size, dtype=np.int64)  # code -1 lands on the last entry
    atom_of[keep] = np.arange(keep.size)
    atom = atom_of[codes]
    table = np.vstack([np.eye(keep.size, dtype=bool), np.zeros((1, keep.size), bool)])
    texts = [f"{col} == {_literal(_plain(uniques[i]))}" for i in keep]
    note = f"{keep.size} values, one predicate each"
    if keep.size < len(uniques):
        note += f" (the {max_values} most frequent of {len(uniques)})"
    return _Feature(name, "categorical", atom.astype(np.int64), table, texts, note)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


# ---------------------------------------------------------------------------
# search
# ---------------------------------------------------------------------------

Slice = tuple[tuple[int, int], ...]  # ((feature index, predicate index), ...)


@dataclass
class _Search:
    features: list[_Feature]
    rows: npt.NDArray[np.bool_]  # the discovery half
    num: npt.NDArray[np.float64]
    den: npt.NDArray[np.float64]
    cluster: npt.NDArray[np.int64]  # codes 0..C-1 within the discovery half
    n_clusters: int
    max_order: int
    min_size: int
    min_clusters: int
    keep: int
    stats: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Narrow codes: the gathers and key arithmetic below read them many times.
        self.codes = [f.codes[self.rows].astype(np.int16 if f.n_atoms < 2**15 else np.int64) for f in self.features]
        self.total_den = float(self.den.sum())
        self.value = float(self.num.sum()) / self.total_den
        excess = self.num - self.value * self.den
        self.weights = [self.num, self.den, np.ones_like(self.num), np.maximum(excess, 0.0)]
        self.tables = [f.table.astype(np.float64) for f in self.features]
        self.heap: list[tuple[float, int, Slice]] = []
        self.counter = itertools.count()
        self.found: dict[Slice, dict[str, float]] = {}
        self.rates: dict[tuple[int, ...], npt.NDArray[np.float64]] = {}
        self.masks: dict[tuple[int, int], npt.NDArray[np.bool_]] = {}

    @property
    def threshold(self) -> float:
        return self.heap[0][0] if len(self.heap) >= self.keep else 0.0

    def predicate(self, f: int, p: int) -> npt.NDArray[np.bool_]:
        """Rows of one predicate (cached: a hundred predicates of a million rows is 100 MB)."""
        if (f, p) not in self.masks:
            self.masks[(f, p)] = self.features[f].table[:, p][self.codes[f]]
        return self.masks[(f, p)]

    def mask(self, sl: Slice) -> npt.NDArray[np.bool_]:
        out = self.predicate(*sl[0]).copy()
        for f, p in sl[1:]:
            out &= self.predicate(f, p)
        return out

    def clusters(self, mask: npt.NDArray[np.bool_]) -> int:
        return int(np.count_nonzero(np.bincount(self.cluster[mask], minlength=self.n_clusters)))

    def sums(self, combo: tuple[int, ...]) -> npt.NDArray[np.float64]:
        """Sums of num, den, rows and positive excess of every slice on ``combo``'s features."""
        shape = tuple(self.features[f].n_atoms for f in combo)
        key = self.codes[combo[0]].astype(np.int64)
        for f, size in zip(combo[1:], shape[1:]):
            key *= size
            key += self.codes[f]
        size = int(np.prod(shape))
        cells = np.stack([np.bincount(key, weights=w, minlength=size) for w in self.weights], axis=-1)
        cells = cells.reshape(*shape, len(self.weights))
        letters = "abcdefgh"[: len(combo)]
        outs = "ijklmnop"[: len(combo)]
        spec = f"{letters}z," + ",".join(f"{a}{b}" for a, b in zip(letters, outs)) + f"->{outs}z"
        return np.einsum(spec, cells, *[self.tables[f] for f in combo], optimize=True)

    def run(self) -> None:
        expandable: dict[tuple[int, ...], npt.NDArray[np.bool_]] = {}
        n_features = len(self.features)
        for order in range(1, self.max_order + 1):
            looked = 0
            for combo in itertools.combinations(range(n_features), order):
                allowed = np.ones(tuple(self.features[f].table.shape[1] for f in combo), bool)
                if order > 1:
                    dead = False
                    for j in range(order):
                        parent = expandable.get(combo[:j] + combo[j + 1:])
                        if parent is None or not parent.any():
                            dead = True
                            break
                        allowed &= np.expand_dims(parent, axis=j)
                    if dead or not allowed.any():
                        self.stats["combinations_pruned"] = self.stats.get("combinations_pruned", 0) + 1
                        continue
                looked += 1
                expandable[combo] = self.level(combo, allowed, order)
                if order == self.max_order:
                    self.rates.pop(combo, None)
            self.stats[f"combinations_order_{order}"] = looked

    def level(self, combo: tuple[int, ...], allowed: npt.NDArray[np.bool_], order: int) -> npt.NDArray[np.bool_]:
        s = self.sums(combo)
        num, den, count, pos = s[..., 0], s[..., 1], s[..., 2], s[..., 3]
        score = (num - self.value * den) / self.total_den
        big = allowed & (count >= self.min_size) & (den > 0)
        self.stats["slices_scored"] = self.stats.get("slices_scored", 0) + int(allowed.sum())
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(den > 0, num / np.where(den > 0, den, 1.0), -np.inf)
        self.rates[combo] = rate
        # A conjunction no worse than one of its parents only inherits that parent's gap.
        worse = np.ones(allowed.shape, bool)
        for j in range(order if order > 1 else 0):
            parent = self.rates[combo[:j] + combo[j + 1:]]
            worse &= rate > np.expand_dims(parent, axis=j)
        candidates = np.flatnonzero(big & worse & (score > self.threshold))
        too_few = np.zeros(allowed.shape, bool)
        for flat in candidates[np.argsort(-score.ravel()[candidates], kind="stable")]:
            value = float(score.ravel()[flat])
            if value <= self.threshold:
                break
            index = np.unravel_index(flat, allowed.shape)
            sl: Slice = tuple((f, int(p)) for f, p in zip(combo, index))
            clusters = self.clusters(self.mask(sl))
            self.stats["cluster_checks"] = self.stats.get("cluster_checks", 0) + 1
            if clusters < self.min_clusters:
                too_few[index] = True
                continue
            self.found[sl] = {"score": value, "n": float(count[index]), "num": float(num[index]),
                              "den": float(den[index]), "clusters": clusters}
            item = (value, -next(self.counter), sl)
            if len(self.heap) < self.keep:
                heapq.heappush(self.heap, item)
            else:
                heapq.heappushpop(self.heap, item)
        if order >= self.max_order:
            return np.zeros(allowed.shape, bool)
        return big & ~too_few & (pos / self.total_den > self.threshold)

    def best(self) -> list[Slice]:
        return [sl for _, _, sl in sorted(self.heap, key=lambda item: (-item[0], -item[1]))]


# ---------------------------------------------------------------------------
# the result
# ---------------------------------------------------------------------------


# One formatting for every result: the audit's.
_fmt, _fmt_gap, _fmt_p = format_value, _format_gap, _format_p


@dataclass
class SliceResult(Result):
    """What :func:`slices` found: candidate slices and which of them were confirmed.

    Attributes
    ----------
    metric, metric_description : str
    overall : dict
        The metric on the ``discovery`` and ``confirmation`` halves (``value``, ``n``,
        ``clusters``).
    slices : list of SliceRow
        One typed row (also readable as a mapping) per candidate sent to confirmation, best discovery score first:
        ``expression`` (query syntax, accepted as is by ``audit --group`` and
        ``bounty submit --group``), ``order``, ``n`` and ``clusters`` (whole data),
        ``discovery`` (``n``, ``clusters``, ``value``, ``gap``, ``score``),
        ``confirmation`` (``n``, ``clusters``, ``value``, ``ci_low``, ``ci_high``, ``gap``,
        ``gap_ci_low``, ``gap_ci_high``, ``p_value``, ``p_adjusted``, ``test``,
        ``status``), ``confirmed`` and ``merged`` (near-duplicates folded into it, with
        their Jaccard similarity on the discovery rows), ``within`` (the confirmed slice
        it refines, if any) and ``worse_than_within`` (whether it is worse than that slice
        on the confirmation half; if not, its gap is only the larger slice's), and
        ``carried_by`` (confirmed refinements without whose rows a confirmed slice keeps
        less than half of its gap over the data outside it, on the confirmation half).
    predicates : list of dict
        Per feature: its kind, how it was cut, and its predicates.
    settings : dict
        Every option, the split and what the search looked at.
    """

    metric: str
    metric_description: str
    overall: dict[str, Any]
    slices: list[SliceRow]
    predicates: list[dict[str, Any]]
    settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.slices = [SliceRow.coerce(x) for x in self.slices]

    @property
    def confirmed(self) -> list[SliceRow]:
        """The slices the confirmation half flagged as worse than the rest."""
        return [s for s in self.slices if s["confirmed"]]

    @property
    def expressions(self) -> list[str]:
        """Expressions of the confirmed slices, ready for ``audit(groups=...)``."""
        return [s["expression"] for s in self.confirmed]

    def card_section(self) -> dict[str, Any]:
        """The service card's "found by search" section: confirmed slices and how they were found."""
        s = self.settings
        return {
            "title": "Found by search",
            "method": (
                f"conjunctions of up to {s['max_order']} feature predicates searched on a random half of "
                f"the {s['cluster'] or 'rows'} ({s['split']['discovery_clusters']} clusters), the best "
                f"{len(self.slices)} audited on the other half ({s['split']['confirmation_clusters']} "
                f"clusters) against the rest, {s['correction']} correction at alpha {s['alpha']}"
            ),
            "features": [p["feature"] for p in self.predicates],
            "candidates": len(self.slices),
            "slices": [
                {
                    "expression": x["expression"],
                    "n": x["n"],
                    "clusters": x["clusters"],
                    "value": x["confirmation"]["value"],
                    "ci_low": x["confirmation"]["ci_low"],
                    "ci_high": x["confirmation"]["ci_high"],
                    "gap": x["confirmation"]["gap"],
                    "p_adjusted": x["confirmation"]["p_adjusted"],
                    "within": x.get("within"),
                    "carried_by": x.get("carried_by"),
                }
                for x in self.confirmed
            ],
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON-ready Python objects (with the card section)."""
        return {
            "metric": self.metric,
            "metric_description": self.metric_description,
            "overall": self.overall,
            "slices": [x.to_dict() for x in self.slices],
            "predicates": self.predicates,
            "settings": self.settings,
            "found_by_search": self.card_section(),
        }


    def to_frame(self) -> pd.DataFrame:
        """One row per candidate slice, discovery and confirmation numbers side by side."""
        rows = []
        for s in self.slices:
            row = {"expression": s["expression"], "order": s["order"], "n": s["n"], "clusters": s["clusters"],
                   "confirmed": s["confirmed"], "merged": "; ".join(m["expression"] for m in s["merged"])}
            row.update({f"discovery_{k}": v for k, v in s["discovery"].items()})
            row.update({f"confirmation_{k}": v for k, v in s["confirmation"].items()})
            rows.append(row)
        return pd.DataFrame(rows)

    def findings(self) -> list[str]:
        """Plain-language sentences on what was found."""
        s = self.settings
        out = [
            f"Searched {s['search']['slices_scored']:,} slices (up to {s['max_order']} predicates on "
            f"{len(self.predicates)} features) on {s['split']['discovery_clusters']:,} of the "
            f"{s['split']['discovery_clusters'] + s['split']['confirmation_clusters']:,} clusters; audited the best "
            f"{len(self.slices)} on the other {s['split']['confirmation_clusters']:,} with "
            f"{ {'holm': 'Holm', 'bh': 'Benjamini-Hochberg'}[s['correction']]} correction."
        ]
        unit = f"values of {s['cluster']!r}" if s["cluster"] else "rows"
        for x in self.confirmed:
            c = x["confirmation"]
            out.append(
                f"{x['expression']}: {_fmt(c['value'], self.metric)} ({_fmt(c['ci_low'], self.metric)} to "
                f"{_fmt(c['ci_high'], self.metric)}), {_fmt_gap(c['gap'], self.metric)} against the rest, on "
                f"{unit} the search never saw (adjusted p {_fmt_p(c['p_adjusted'])})."
            )
        if not self.confirmed:
            out.append(
                "No slice was confirmed: the slices that looked worst on the discovery half were not "
                "significantly worse than the rest on the confirmation half."
            )
        inherited = [x for x in self.confirmed if x.get("within") and not x.get("worse_than_within")]
        if inherited:
            out.append(
                f"{len(inherited)} confirmed slice(s) are refinements of a confirmed slice and are no worse than it "
                "on the confirmation half, so their gap is the larger slice's: "
                + "; ".join(f"{x['expression']} (within {x['within']})" for x in inherited[:5])
                + (" ..." if len(inherited) > 5 else "") + "."
            )
        carried = [x for x in self.confirmed if x.get("carried_by")]
        if carried:
            out.append(
                f"{len(carried)} confirmed slice(s) are worse than the rest mostly through a confirmed refinement "
                "(without its rows, the slice keeps less than half of its gap): "
                + "; ".join(f"{x['expression']} (through {' or '.join(x['carried_by'])})" for x in carried[:5])
                + (" ..." if len(carried) > 5 else "") + "."
            )
        merged = [(x["expression"], m["expression"]) for x in self.slices for m in x["merged"]]
        if merged:
            out.append(
                f"{len(merged)} near-duplicate slice(s) were merged into the one listed (Jaccard >= {s['merge']} "
                "on the discovery rows): " + "; ".join(f"{b} into {a}" for a, b in merged[:5])
                + (" ..." if len(merged) > 5 else "") + "."
            )
        return out

    def render(self, console: Any = None) -> None:
        """Print the slices as a table in the terminal (rich)."""
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        console = console or Console()
        table = Table(title=f"Slices by {self.metric_description}, discovery then confirmation", title_justify="left")
        for column, justify in (("slice", "left"), ("n", "right"), ("clusters", "right"), ("discovery", "right"),
                                ("confirmation", "right"), ("95% CI" if self.settings["confidence"] == 0.95 else "CI", "right"),
                                ("gap", "right"), ("p adj.", "right"), ("status", "left")):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        for x in self.slices:
            d, c = x["discovery"], x["confirmation"]
            status = "[bold red]CONFIRMED[/]" if x["confirmed"] else f"[dim]{c['status']}[/]"
            if x["confirmed"] and x.get("within") and not x.get("worse_than_within"):
                status = "[red]confirmed[/] [dim](inherits a larger slice's gap)[/]"
            if x["confirmed"] and x.get("carried_by"):
                status = "[red]confirmed[/] [dim](mostly through a refinement)[/]"
            if x["merged"]:
                status += f" [dim](+{len(x['merged'])} merged)[/]"
            table.add_row(
                escape(x["expression"]), f"{x['n']:,}", f"{x['clusters']:,}", _fmt(d["value"], self.metric),
                _fmt(c["value"], self.metric),
                f"{_fmt(c['ci_low'], self.metric)} – {_fmt(c['ci_high'], self.metric)}" if c["ci_low"] is not None else "—",
                _fmt_gap(c["gap"], self.metric), _fmt_p(c["p_adjusted"]), status,
            )
        console.print(table)
        for sentence in self.findings():
            console.print(escape(sentence), highlight=False)

    def plot(self, path: str | os.PathLike[str] | None = None) -> Any:
        """Each candidate's value on the discovery half and, with its interval, on the
        confirmation half; confirmed slices in red.

        Returns
        -------
        matplotlib.figure.Figure
        """
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        scale = 100.0 if self.metric in _PERCENT else 1.0
        items = self.slices
        fig, ax = plt.subplots(figsize=(9, 1.2 + 0.42 * max(1, len(items))))
        for i, x in enumerate(items):
            y = len(items) - 1 - i
            d, c = x["discovery"], x["confirmation"]
            color = "#c0392b" if x["confirmed"] else "#7f8c8d"
            ax.plot(scale * d["value"], y + 0.15, marker="o", mfc="white", mec=color, ls="none")
            if c["value"] is not None:
                if c["ci_low"] is not None:
                    ax.plot([scale * c["ci_low"], scale * c["ci_high"]], [y - 0.15] * 2, color=color, lw=2)
                ax.plot(scale * c["value"], y - 0.15, marker="o", color=color, ls="none")
        ax.axvline(scale * self.overall["confirmation"]["value"], color="black", lw=1, ls="--")
        ax.set_yticks(range(len(items)))
        ax.set_yticklabels([(x["expression"][:70] + ("…" if len(x["expression"]) > 70 else "")) for x in reversed(items)],
                           fontsize=8)
        ax.set_xlabel(f"{self.metric_description}{' (%)' if scale == 100.0 else ''}")
        ax.set_title("Slices found by search: hollow = discovery half; filled, with interval = confirmation half;\n"
                     "red = confirmed on held-out clusters; dashed = confirmation half overall", loc="left", fontsize=9)
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=120)
            plt.close(fig)
        return fig

    def __repr__(self) -> str:
        return f"SliceResult(metric={self.metric!r}, candidates={len(self.slices)}, confirmed={len(self.confirmed)})"


# ---------------------------------------------------------------------------
# the entry point
# ---------------------------------------------------------------------------


def slices(
    data: Any,
    *,
    features: Sequence[str] | str,
    metric: str = "wer",
    cluster: str | None = None,
    max_order: int = 3,
    top: int = 20,
    min_size: int | None = None,
    min_clusters: int = 10,
    min_examples: int = 30,
    bins: int = 4,
    max_values: int = 50,
    merge: float = 0.9,
    correction: str = "holm",
    alpha: float = 0.05,
    confidence: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
    reference: str = "reference",
    hypothesis: str = "hypothesis",
    y_true: str = "y_true",
    y_pred: str = "y_pred",
    num: str = "num",
    den: str = "den",
    pos_label: object = 1,
    normalize: str = "default",
    provenance: Mapping[str, str] | Any = None,
    allow_imputed: bool = False,
) -> SliceResult:
    """Find slices where the metric is worse, and confirm them on held-out clusters.

    The clusters (speakers) are split at random into two halves. Conjunctions of feature
    predicates are searched on the discovery half; the best ``top`` are audited on the
    confirmation half with :func:`groupwise.audit` (``compare="complement"``, corrected
    across all of them), and a slice is *confirmed* only if the audit flags it there as
    worse than the rest. See the module docstring for the predicates, the score and the
    pruning.

    Parameters
    ----------
    data : pandas.DataFrame, polars.DataFrame or path
        One row per example.
    features : str or sequence of str
        Columns to build predicates from (comma-separated in one string, or a list).
    metric : str, default="wer"
        Any metric of :func:`groupwise.audit` for which higher is worse (not
        ``selection_rate``).
    cluster : str, optional
        The column of the independently sampled unit (speaker, person). The split is by
        cluster, so no speaker is on both sides. Without it every row is its own cluster,
        which is right only when rows are independent.
    max_order : int, default=3
        Most predicates in one slice.
    top : int, default=20
        How many slices (after merging near-duplicates) are audited on the confirmation
        half. More candidates make the correction stricter.
    min_size : int, optional
        Fewest rows a slice must have on the discovery half; default
        ``max(min_examples, 1% of the discovery rows)``.
    min_clusters : int, default=10
        Fewest clusters a slice must have on the discovery half; also the audit's minimum
        on the confirmation half. Each half must have at least this many clusters.
    min_examples : int, default=30
        The audit's minimum rows per slice on the confirmation half.
    bins : int, default=4
        Quantile brackets per numeric feature (numeric features with at most ``bins``
        values get one predicate per value).
    max_values : int, default=50
        Most category values per feature that get a predicate (the most frequent).
    merge : float, default=0.9
        Slices whose discovery rows overlap with at least this Jaccard similarity are
        merged into the better-scoring one (1.0: only identical rows).
    correction : {"holm", "bh"}, default="holm"
        Correction across the audited slices (family-wise error or false discovery rate).
    alpha, confidence, n_boot : float, float, int
        The audit's flagging level, interval level and bootstrap replicates.
    seed : int, default=0
        Seeds the split and the audit; the same seed gives the same slices.
    reference, hypothesis, y_true, y_pred, num, den, pos_label, normalize
        The metric's columns and options, as in :func:`groupwise.audit`.
    provenance : mapping, optional
        Provenance of the feature columns, passed to the audit.
    allow_imputed : bool, default=False
        Allow searching by a protected attribute whose provenance is ``imputed``.

    Returns
    -------
    SliceResult

    Examples
    --------
    >>> from groupwise import speech_example
    >>> df = speech_example(3000, n_speakers=120, seed=1)
    >>> found = slices(df, features="accent,noise,gender", cluster="speaker", max_order=2,
    ...                top=8, n_boot=200)
    >>> found.slices[0]["expression"]
    'noise == "hum"'
    >>> found.confirmed[0]["confirmation"]["gap"] > 0
    True
    """
    started = time.perf_counter()
    frame = read_table(data)
    from groupwise.audit._metrics import MetricColumns, contributions, get_metric

    spec = get_metric(metric)
    if spec.higher_is_worse is not True:
        raise InputError(
            f"slice discovery looks for slices where the metric is worse, and {spec.name} has no worse direction",
            fix="use a metric where higher is worse (error_rate, fpr, fnr, wer, ...)",
        )
    names = split_names(features)
    if not names:
        raise InputError("no features were given", fix="pass --features with the columns to slice by, e.g. accent,noise")
    if len(set(names)) != len(names):
        raise InputError("a feature is named twice in --features", fix="name each column once")
    check_columns(frame, names, role="feature", option="--features")
    for option, value, low in (("max_order", max_order, 1), ("top", top, 1), ("min_clusters", min_clusters, 1),
                               ("min_examples", min_examples, 1), ("bins", bins, 2), ("max_values", max_values, 1),
                               ("n_boot", n_boot, 0)):
        check_scalar(value, option, int, min_val=low)
    if min_size is not None:
        check_scalar(min_size, "min_size", int, min_val=1)
    check_scalar(merge, "merge", float, min_val=0.0, max_val=1.0, include_min=False)
    if correction not in _CORRECTIONS:
        raise InputError(f"the correction {correction!r} is not available for slice discovery",
                         fix="use holm (family-wise) or bh (false discovery rate): the search tests many slices")
    if max_order > len(names):
        raise InputError(
            f"--max-order is {max_order} but only {len(names)} feature(s) were given, and a slice uses each feature once",
            fix=f"pass --max-order {len(names)} or less, or more --features",
        )
    metric_columns = MetricColumns(reference, hypothesis, y_true, y_pred, num, den, pos_label)
    used = {getattr(metric_columns, role) for role in spec.inputs}
    for name in names:
        if name == cluster:
            raise InputError(
                f"the feature {name!r} is the cluster column: a slice of named speakers cannot be confirmed "
                "on other speakers",
                fix="leave the cluster column out of --features",
            )
        if name in used:
            raise InputError(f"the feature {name!r} is one of the metric's own columns",
                             fix="slice by descriptive columns, not by the transcripts or labels")
    from groupwise._provenance import Provenance

    prov = provenance if isinstance(provenance, Provenance) else Provenance(dict(provenance or {}))
    prov.check(names, allow_imputed=allow_imputed)

    # The split: whole clusters to one half or the other.
    if cluster is None:
        cluster_codes, n_clusters = np.arange(len(frame)), len(frame)
    else:
        check_columns(frame, [cluster], role="cluster", option="--cluster")
        if frame[cluster].isna().any():
            raise InputError(
                f"the cluster column {cluster!r} has {int(frame[cluster].isna().sum())} missing values",
                fix="give every row its speaker (or person)",
            )
        cluster_codes, uniques = pd.factorize(frame[cluster], sort=True)
        n_clusters = len(uniques)
    half = n_clusters // 2
    if half < min_clusters or n_clusters - half < min_clusters:
        unit = "clusters" if cluster else "rows (no --cluster)"
        raise InputError(
            f"there are {n_clusters} {unit}, too few to split into two halves of at least "
            f"--min-clusters {min_clusters}",
            fix=f"collect data from at least {2 * min_clusters} speakers, or lower --min-clusters",
        )
    rng = np.random.default_rng(seed)
    in_discovery = np.zeros(n_clusters, bool)
    in_discovery[rng.permutation(n_clusters)[:half]] = True
    disc_rows = in_discovery[cluster_codes]
    feats = [_feature(frame[name], name, bins=bins, max_values=max_values) for name in names]

    normalizer = None
    if spec.name in ("wer", "cer"):
        from groupwise.audit._text import parse_normalizer

        normalizer = parse_normalizer(normalize)
    disc_frame = frame.loc[disc_rows]
    contrib = contributions(disc_frame, spec, metric_columns, normalizer=normalizer)
    if not contrib.den.sum() > 0:
        raise InputError(f"the {spec.description} is undefined on the discovery half (its denominator sums to zero)",
                         fix="check the metric's columns and --pos-label")
    disc_cluster, disc_uniques = pd.factorize(cluster_codes[disc_rows], sort=True)
    n_disc = int(disc_rows.sum())
    minimum = max(min_examples, n_disc // 100) if min_size is None else min_size
    search = _Search(feats, disc_rows, contrib.num.astype(float), contrib.den.astype(float), disc_cluster.astype(np.int64),
                     len(disc_uniques), max_order, minimum, min_clusters, keep=4 * top)
    search.run()
    searched = time.perf_counter() - started

    # Merge near-duplicates on the discovery rows, best score first.
    kept: list[tuple[Slice, npt.NDArray[np.bool_], list[dict[str, Any]]]] = []
    for sl in search.best():
        mask = search.mask(sl)
        size = mask.sum()
        for other_sl, other, merged in kept:
            union = np.count_nonzero(mask | other)
            jaccard = np.count_nonzero(mask & other) / union if union else 1.0
            if jaccard >= merge:
                merged.append({"expression": _text(feats, sl), "jaccard": round(float(jaccard), 4),
                               "discovery_score": search.found[sl]["score"]})
                break
        else:
            if len(kept) < top and size:
                kept.append((sl, mask, []))

    # Confirmation: one audit of every candidate on the other half.
    exprs = [_text(feats, sl) for sl, _, _ in kept]
    conf_frame = frame.loc[~disc_rows]
    confirmation: dict[str, dict[str, Any]] = {}
    conf_overall: dict[str, Any] = {}
    if exprs:
        import groupwise

        audited = groupwise.audit(
            conf_frame, metric=spec.name, groups=exprs, cluster=cluster, compare="complement",
            correction=correction, alpha=alpha, confidence=confidence, n_boot=n_boot, min_clusters=min_clusters,
            min_examples=min_examples, seed=seed, reference=reference, hypothesis=hypothesis, y_true=y_true,
            y_pred=y_pred, num=num, den=den, pos_label=pos_label, normalize=normalize, provenance=prov,
            allow_imputed=allow_imputed,
        )
        for g in audited.groups:
            confirmation[g["family"]] = g
        conf_overall = audited.overall
    else:
        conf = contributions(conf_frame, spec, metric_columns, normalizer=normalizer)
        conf_overall = {"value": float(conf.num.sum() / conf.den.sum()) if conf.den.sum() > 0 else None,
                        "n": len(conf_frame), "clusters": n_clusters - half}

    out = []
    for (sl, _, merged), expr in zip(kept, exprs):
        found = search.found[sl]
        g = confirmation.get(expr, {})
        full = np.ones(len(frame), bool)
        for f, p in sl:
            full &= feats[f].table[:, p][feats[f].codes]
        gap = g.get("gap")
        c_value = g.get("value")
        out.append({
            "expression": expr,
            "order": len(sl),
            "n": int(full.sum()),
            "clusters": int(np.count_nonzero(np.bincount(cluster_codes[full], minlength=n_clusters))),
            "discovery": {
                "n": int(found["n"]),
                "clusters": int(found["clusters"]),
                "value": found["num"] / found["den"],
                "gap": found["num"] / found["den"] - search.value,
                "score": found["score"],
            },
            "confirmation": {
                "n": g.get("n", 0),
                "clusters": g.get("clusters", 0),
                "value": c_value,
                "ci_low": g.get("ci_low"),
                "ci_high": g.get("ci_high"),
                "gap": gap,
                "gap_ci_low": g.get("gap_ci_low"),
                "gap_ci_high": g.get("gap_ci_high"),
                "p_value": g.get("p_value"),
                "p_adjusted": g.get("p_adjusted"),
                "test": g.get("test"),
                "status": g.get("status", "missing"),
            },
            "confirmed": bool(g.get("flagged")) and gap is not None and gap > 0,
            "merged": merged,
        })
    _mark_refinements(out, [sl for sl, _, _ in kept])
    if any(x["confirmed"] for x in out):
        conf = contributions(conf_frame, spec, metric_columns, normalizer=normalizer)
        masks = []
        for sl, _, _ in kept:
            m = np.ones(len(conf_frame), bool)
            for f, p in sl:
                m &= feats[f].table[:, p][feats[f].codes[~disc_rows]]
            masks.append(m)
        _mark_carriers(out, [sl for sl, _, _ in kept], masks, conf.num.astype(float), conf.den.astype(float))
    else:
        for x in out:
            x["carried_by"] = None
    settings = {
        "metric": spec.name,
        "features": names,
        "cluster": cluster,
        "max_order": max_order,
        "top": top,
        "min_size": minimum,
        "min_clusters": min_clusters,
        "min_examples": min_examples,
        "bins": bins,
        "max_values": max_values,
        "merge": merge,
        "correction": correction,
        "alpha": alpha,
        "confidence": confidence,
        "n_boot": n_boot,
        "seed": seed,
        "normalize": normalizer.spec if normalizer is not None else None,
        "score": "size-weighted gap: (sum num - m * sum den) / total den on the discovery half",
        "confirmation": "groupwise.audit on the confirmation half, compare=complement, every candidate at once; "
                        "confirmed = flagged after correction and worse than the rest",
        "split": {
            "unit": cluster or "row",
            "discovery_clusters": half,
            "confirmation_clusters": n_clusters - half,
            "discovery_rows": n_disc,
            "confirmation_rows": int(len(frame) - n_disc),
        },
        "search": {
            **search.stats,
            "slices_scored": search.stats.get("slices_scored", 0),
            "kept_for_merging": len(search.heap),
            "seconds": round(searched, 3),
        },
        "provenance": prov.describe(names),
    }
    overall = {
        "discovery": {"value": search.value, "n": n_disc, "clusters": half},
        "confirmation": {"value": conf_overall.get("value"), "n": conf_overall.get("n"),
                         "clusters": conf_overall.get("clusters")},
    }
    predicates = [{"feature": f.name, "kind": f.kind, "note": f.note, "predicates": list(f.texts)} for f in feats]
    return SliceResult(spec.name, spec.description, overall, out, predicates, settings)


def _mark_refinements(out: list[dict[str, Any]], kept: list[Slice]) -> None:
    """Say which confirmed slice each candidate refines (its predicates include all of
    another confirmed slice's), and whether it is worse than that slice on the
    confirmation half too: a refinement that is not only inherits its parent's gap."""
    for x, sl in zip(out, kept):
        x["within"] = None
        x["worse_than_within"] = None
        parents = [(y, other) for y, other in zip(out, kept)
                   if y["confirmed"] and len(other) < len(sl) and set(other) <= set(sl)]
        if not parents:
            continue
        y, _ = max(parents, key=lambda item: item[0]["confirmation"]["value"] or 0.0)
        x["within"] = y["expression"]
        mine, theirs = x["confirmation"]["value"], y["confirmation"]["value"]
        x["worse_than_within"] = None if mine is None or theirs is None else bool(mine > theirs)


def _mark_carriers(out: list[dict[str, Any]], kept: list[Slice], masks: list[npt.NDArray[np.bool_]],
                   num: npt.NDArray[np.float64], den: npt.NDArray[np.float64]) -> None:
    """Say which confirmed refinements carry a confirmed slice's gap: without the rows of one
    of them, the rest of the slice keeps less than half of its gap over the data outside it
    (on the confirmation half, point estimates). ``noise == "hum"`` is then bad mostly
    because ``noise == "hum" and snr_db <= 5`` is."""
    for x, sl, mask in zip(out, kept, masks):
        x["carried_by"] = None
        if not x["confirmed"]:
            continue
        value = x["confirmation"]["value"]
        outside = ~mask
        if value is None or den[outside].sum() <= 0:
            continue
        reference = num[outside].sum() / den[outside].sum()
        carriers = []
        for y, other, m in zip(out, kept, masks):
            worse = y["confirmation"]["value"] is not None and y["confirmation"]["value"] > value
            if y["confirmed"] and worse and len(other) > len(sl) and set(sl) <= set(other):
                rest = mask & ~m
                # "Carried": without T's rows, S keeps less than half of its gap over the rest.
                if den[rest].sum() > 0 and num[rest].sum() / den[rest].sum() - reference < 0.5 * (value - reference):
                    carriers.append(y["expression"])
        x["carried_by"] = carriers or None


def _text(feats: list[_Feature], sl: Slice) -> str:
    return " and ".join(feats[f].texts[p] for f, p in sl)
