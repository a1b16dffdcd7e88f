"""Paired comparisons of systems or conditions on the same items.

Recogniser A against recogniser B on the same utterances, or baseline against a hum: per
group, each side's value, the paired delta, and the interaction (does the change differ
for this group from the rest?). The statistics are the last mile's
(:func:`groupwise.audit._lastmile.lastmile`): a speaker's rows under both sides form one
term of a cluster-robust variance. What this entry point adds is strict pairing: a
comparison of systems is only fair on the items every system transcribed, so items that do
not pair up are an error unless the caller asks to drop them.
"""

from __future__ import annotations

from typing import Any

from groupwise._errors import InputError
from groupwise._io import check_columns, split_names
from groupwise._validation import DEFAULTS
from groupwise.audit._lastmile import LastMileResult, lastmile

__all__ = ["compare"]


def compare(
    data: Any,
    *,
    condition: str,
    baseline: str,
    by: str | list[str],
    cluster: str | None = None,
    item: str,
    metric: str = "wer",
    reference: str = "reference",
    hypothesis: str = "hypothesis",
    y_true: str = "y_true",
    y_pred: str = "y_pred",
    num: str = "num",
    den: str = "den",
    normalize: str = "default",
    scale: str = DEFAULTS["scale"],
    correction: str = DEFAULTS["correction"],
    alpha: float = DEFAULTS["alpha"],
    confidence: float = DEFAULTS["confidence"],
    min_clusters: int = DEFAULTS["min_clusters"],
    min_examples: int = DEFAULTS["min_examples"],
    drop_unpaired: bool = False,
    provenance: dict[str, str] | None = None,
    allow_imputed: bool = False,
    engine: str = "local",
    ray_address: str | None = None,
    cache_dir: Any = None,
    progress: bool = False,
) -> LastMileResult:
    """Compare every value of ``condition`` with ``baseline`` on the same items, per group.

    Parameters
    ----------
    data : DataFrame or path
        One row per (item, system): ``item`` names the utterance, ``condition`` the system
        (or acoustic condition).
    condition, baseline : str
        The column naming each row's system, and the system the others are compared with.
    by, cluster, item
        Grouping column(s), the speaker column, and the item column (required).
    metric, reference, hypothesis, y_true, y_pred, num, den, normalize
        As in :func:`groupwise.audit`: transcripts, labels, or precomputed error counts with
        ``metric="ratio"``.
    scale, correction, alpha, confidence, min_clusters, min_examples, provenance, allow_imputed
        As in :func:`groupwise.lastmile`.
    drop_unpaired : bool, default=False
        Items missing under some system are an error by default; with True they are left
        out and counted in ``settings["items_not_in_every_condition"]``.
    engine, ray_address, cache_dir, progress
        For data in Parquet shards (a folder, a glob or a list of files), as in
        :func:`groupwise.audit`. Pairs are made within a shard: keep each item's rows (every
        system) in one shard; an item spread over shards counts as unpaired. Needs
        ``cluster``.

    Returns
    -------
    LastMileResult
        One entry per non-baseline system in ``conditions``.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = [{"utt": f"u{i}", "spk": f"s{i % 12}", "accent": "ab"[i % 2], "system": s,
    ...          "errors": (i % 3) + (s == "b") * (i % 2), "words": 10}
    ...         for i in range(240) for s in ("a", "b")]
    >>> r = compare(pd.DataFrame(rows), condition="system", baseline="a", by="accent", cluster="spk",
    ...             item="utt", metric="ratio", num="errors", den="words", min_clusters=5)
    >>> [g["group"]["accent"] for g in r.conditions[0]["groups"]]
    ['a', 'b']
    """
    from groupwise.audit._prepare import distinct_text, open_data, pair_items
    from groupwise.audit._stream import distinct_values

    source = open_data(data, engine=engine)
    shards = source.shards
    common = dict(
        by=split_names(by) if isinstance(by, str) else by, cluster=cluster, condition=condition,
        baseline=baseline, item=item, metric=metric, reference=reference, hypothesis=hypothesis, y_true=y_true,
        y_pred=y_pred, num=num, den=den, normalize=normalize, scale=scale, correction=correction, alpha=alpha,
        confidence=confidence, min_clusters=min_clusters, min_examples=min_examples, provenance=provenance,
        allow_imputed=allow_imputed,
    )
    frame = source.frame
    check_columns(frame, [condition], role="condition", option="--condition")
    check_columns(frame, [item], role="item", option="--item")
    systems = distinct_values(shards, condition) if shards is not None else distinct_text(frame[condition])
    if baseline not in systems:
        raise InputError(
            f"the baseline {baseline!r} is not a value of the {condition!r} column (it has {', '.join(systems[:10])})",
            fix="pass --baseline with one of those values",
        )
    if len(systems) < 2:
        raise InputError(f"the {condition!r} column has only {baseline!r}", fix="give rows of at least two systems")
    if shards is not None:
        return lastmile(
            shards, **common, engine=engine, ray_address=ray_address, cache_dir=cache_dir, progress=progress,
            _strict_pairing=not drop_unpaired, _kind="compare",
        )
    pairing = pair_items(frame, item, condition, systems)
    if pairing.incomplete and not drop_unpaired:
        raise InputError(
            f"{pairing.incomplete} of {pairing.items} items are not present under every {condition} "
            f"({int(pairing.lacking[systems.index(baseline)])} of them lack the baseline {baseline!r}; for example "
            f"{pairing.examples})",
            fix="compare on items every system has (pass --drop-unpaired to leave the others out and count them), "
            "or check the --item column",
        )
    if pairing.repeated:
        raise InputError(
            f"{pairing.repeated} rows repeat an ({item}, {condition}) pair, so items do not pair up one to one",
            fix="keep one row per item and system, or name the column that identifies an item with --item",
        )
    if pairing.incomplete:
        frame = frame.loc[pairing.keep]
    return lastmile(frame, **common, _unpaired=pairing.incomplete, _kind="compare")  # every item left pairs up
