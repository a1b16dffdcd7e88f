"""The disaggregated audit: one function from a table to an :class:`AuditResult`.

:func:`audit` validates the input, turns the metric into per-row contributions
(:mod:`groupwise.audit._metrics`), the groupings into families of cells, and hands both to the
statistical core (:mod:`groupwise.audit._stats`). It never formats anything: the result object
renders itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from groupwise import _lazy
from groupwise._errors import InputError
from groupwise._io import check_columns, split_names
from groupwise._validation import DEFAULTS, check_choice, check_scalar
from groupwise.audit._metrics import MetricColumns, get_metric
from groupwise._provenance import Provenance
from groupwise.audit._result import AuditResult
from groupwise.audit._prepare import cluster_codes as _cluster_codes
from groupwise.audit._prepare import family_from_columns as _family_from_columns
from groupwise.audit._prepare import open_data, plain as _plain, prepare
from groupwise.audit._stats import Family, analyse

pd = _lazy.module("pandas")

INFERENCE_NOTE = (
    "cluster-robust t test of each gap: CR2 (Bell-McCaffrey) variance from per-cluster sums, "
    "Satterthwaite degrees of freedom from effective numbers of clusters, never less variance than "
    "the count model at the pooled rate; gap, ratio (Fieller) and p-value from one statistic"
)
VALUE_INTERVAL_NOTE = {
    "count": "exact Poisson (Garwood) interval on the effective number of words, design effect from the "
    "cluster-robust variance or a negative-binomial speaker model, whichever is larger, Korn-Graubard df factor",
    "binary": "Clopper-Pearson interval on the effective sample size, design effect from the cluster-robust "
    "variance or an intra-cluster correlation model, whichever is larger, Korn-Graubard df factor",
    "continuous": "Student t interval with the CR2 cluster-robust standard error and Kish effective clusters - 1 df",
}


def _analyse_within(
    frame: pd.DataFrame, within: str, contrib: Any, cluster_codes: np.ndarray, families: list[Family],
    options: dict[str, Any],
) -> dict[str, Any]:
    """Every family inside each stratum of ``within``, corrected together."""
    from groupwise.audit._stats import correct_jointly

    codes, strata = pd.factorize(frame[within], sort=True)
    runs, overall = [], []
    count, count_den = options.get("count"), options.get("count_den")
    for s, value in enumerate(strata):
        rows = codes == s
        sub_cluster, n_sub = pd.factorize(cluster_codes[rows])
        sub = {"count": None, "count_den": None} if count is None else {"count": count[rows], "count_den": count_den[rows]}
        run = analyse(
            num=contrib.num[rows], den=contrib.den[rows], cluster=sub_cluster.astype(np.int64), n_clusters=len(n_sub),
            families=[Family(f"{f.name} | {within}={_plain(value)}", f.codes[rows], [{within: _plain(value), **lab} for lab in f.labels])
                      for f in families],
            extra={k: v[rows] for k, v in contrib.extra.items()}, **{**options, "correction": "none", **sub},
        )
        runs.append(run)
        overall.append({within: _plain(value), **run["overall"]})
    correction, alpha = options["correction"], options["alpha"]
    groups = correct_jointly(runs, correction=correction, alpha=alpha, higher_is_worse=options["higher_is_worse"])
    total = analyse(
        num=contrib.num, den=contrib.den, cluster=cluster_codes, n_clusters=int(cluster_codes.max()) + 1, families=[],
        extra=contrib.extra, **options,
    )
    return {
        "overall": total["overall"], "groups": groups, "strata": overall,
        "n_tested": sum(r["n_tested"] for r in runs), "n_tests": sum(r["n_tests"] for r in runs),
        "n_perm": max(r["n_perm"] for r in runs), "notes": [n for r in runs for n in r["notes"]],
    }


def _named_reference(compare: Any) -> tuple[str, str] | None:
    """``"race=white"`` as ``("race", "white")``; None for the keyword references."""
    if isinstance(compare, str) and "=" in compare:
        column, _, value = compare.partition("=")
        column, value = column.strip(), value.strip().strip("'\"")
        if not column or not value:
            raise InputError(
                f"--compare {compare!r} does not name a group",
                fix="write COLUMN=VALUE, for example --compare race=white",
            )
        return column, value
    return None


def check_test(test: str) -> str:
    """The test option; the bootstrap test of earlier versions is refused with the reason."""
    if test in ("auto", "t", "permutation"):
        return test
    if test == "bootstrap":
        raise InputError(
            "test='bootstrap' (--test bootstrap) is no longer offered: its t test with a bootstrap standard "
            "error flagged too often with heterogeneous speakers and with few errors",
            fix="use test='auto' (the default), 't' or 'permutation'",
        )
    raise InputError(f"the 'test' parameter is {test!r}", fix="use one of auto, t, permutation")

__all__ = ["audit"]

_COMPARES = ("overall", "complement", "best")
_CORRECTIONS = ("holm", "bh", "none")


def audit(
    data: Any,
    *,
    metric: str = "wer",
    by: Sequence[str | Sequence[str]] | str | None = None,
    groups: Sequence[str] | str | None = None,
    cluster: str | None = None,
    compare: str = DEFAULTS["compare"],
    correction: str = DEFAULTS["correction"],
    test: str = "auto",
    n_perm: int | None = None,
    alpha: float = DEFAULTS["alpha"],
    confidence: float = DEFAULTS["confidence"],
    n_boot: int = 1000,
    min_clusters: int = DEFAULTS["min_clusters"],
    min_examples: int = DEFAULTS["min_examples"],
    seed: int | None = 0,
    reference: str = "reference",
    hypothesis: str = "hypothesis",
    y_true: str = "y_true",
    y_pred: str = "y_pred",
    num: str = "num",
    den: str = "den",
    pos_label: object = 1,
    normalize: str = "default",
    provenance: Provenance | Mapping[str, str] | None = None,
    allow_imputed: bool = False,
    within: str | None = None,
    adjust: Sequence[str] | str | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    cache_dir: str | os.PathLike[str] | None | bool = None,
    progress: bool = False,
) -> AuditResult:
    """Audit a metric across groups with cluster-robust statistics.

    Parameters
    ----------
    data : pandas.DataFrame, polars.DataFrame or path
        One row per example (an utterance, a person). Files may be CSV, TSV, JSONL or
        Parquet.
    metric : {"wer", "cer", "error_rate", "fpr", "fnr", "selection_rate", "mae", "mse", "ratio"}
        What to measure; every metric is a ratio of sums over a group's rows (corpus WER,
        not the mean of per-utterance WERs).
    by : str or sequence, optional
        Groupings. Each item is one *family*: a column name, or several joined by commas
        (or given as a list) for their intersection. ``by=["accent", "accent,noise"]`` gives
        the accent marginal and the accent-by-noise cells in one run.
    groups : str or sequence of str, optional
        Group expressions in the ``DataFrame.query`` syntax, such as
        ``'snr_db < 10 and accent != "en-us"'``; each is a family of one group. Parsed into
        a whitelisted tree and evaluated vectorised, never with ``eval``.
    cluster : str, optional
        The column of the independently sampled unit (speaker, person, household). Without
        it every row is its own cluster, which overstates precision when rows are not
        independent (several utterances per speaker).
    compare : {"overall", "complement", "best"} or "COLUMN=VALUE", default="overall"
        The reference each group's gap is measured against: the whole data, the rows
        outside the group, the best sufficient group of the same family (lowest error;
        highest rate for ``selection_rate``; a group is flagged only if some other group is
        significantly better, each pair corrected over the family), or a named group such
        as ``"race=white"`` (in a ``race,sex`` family, white of the same sex; that group is
        the ``reference`` and families without the column say ``no_reference``).
    correction : {"holm", "bh", "none"}, default="holm"
        Multiplicity correction across every group tested in the run: Holm controls the
        family-wise error rate, Benjamini-Hochberg (``"bh"``) the false discovery rate.
    test : {"auto", "t", "permutation"}, default="auto"
        How each gap is tested. Both tests use the same studentised statistic: the log of
        the group's ratio to its reference (the difference where one side has no errors)
        over its cluster-robust standard error. ``"t"`` refers it to Student t (CR2
        variance, Satterthwaite degrees of freedom from effective numbers of clusters, a
        count-model variance floor at the pooled rate). ``"permutation"`` refers it to its
        distribution under shuffling groups among clusters (Chung and Romano 2013): exact
        when clusters are exchangeable, valid for large groups when they are not; it needs
        clusters nested in groups and ``compare`` other than ``"best"``. ``"auto"`` takes
        the permutation test where it applies and the t test elsewhere; each group's
        ``test`` field says which, and intervals use the same test's critical value, so an
        interval excludes no difference exactly when the p-value is below
        ``1 - confidence``.
    n_perm : int, optional
        Permutations; by default enough for the smallest corrected p-value to reach
        ``alpha`` (``max(1000, 2 * tests / alpha)``, at most 20,000; past that the t test
        is used and ``settings["notes"]`` says so).
    alpha : float, default=0.05
        A group is flagged when its corrected p-value is at most ``alpha``.
    confidence : float, default=0.95
        Level of every interval.
    n_boot : int, default=1000
        ``0`` gives point estimates only (no intervals, no tests). Any other value runs the
        analytic cluster-robust inference, which needs no replicates; the number is
        recorded and otherwise unused.
    min_clusters, min_examples : int, default=10 and 30
        Below either, a group is reported as ``insufficient``: no interval, no test. Only
        clusters and examples with a non-zero denominator count (for ``fnr``, people with
        an actual positive; for ``wer``, utterances with a non-empty reference).
    seed : int or None, default=0
        Seed of the permutation test (``test="permutation"``); the same seed gives the same
        numbers.
    reference, hypothesis : str
        Transcript columns for ``wer`` and ``cer``.
    y_true, y_pred : str
        Label or value columns for the classification and regression metrics.
    num, den : str
        Columns of precomputed contributions for ``metric="ratio"``.
    pos_label : object, default=1
        The positive label for ``fpr``, ``fnr`` and ``selection_rate``.
    normalize : str, default="default"
        Text normalisation for ``wer``/``cer``: ``"default"`` (lowercase, remove Unicode
        punctuation, collapse whitespace), ``"none"`` (collapse whitespace only, as jiwer
        does), or steps joined by ``+`` such as ``"lowercase+whitespace"``.
    provenance : Provenance or mapping, optional
        Provenance of grouping columns (``self_reported``, ``annotated``, ``measured``,
        ``synthetic``, ``imputed``). Written into every output.
    allow_imputed : bool, default=False
        Allow disaggregation by a protected attribute whose provenance is ``imputed``.
    adjust : str or sequence of str, optional
        Covariates for the model-based view (``"length,noise"``): a Poisson GEE of errors
        with a ``log(den)`` offset, speaker clusters and the bias-reduced sandwich, giving each
        group of each ``by`` family a rate ratio against the mean of the groups adjusted for
        the covariates (``adjusted_ratio``, ``adjusted_ci_low``/``high``,
        ``adjusted_p_value``, ``adjusted_p_adjusted``), beside the raw gap. For counts
        (``wer``, ``cer``, or ``ratio`` of counts).
    within : str, optional
        A stratum column (``"system"`` for the race gap inside each recogniser): every
        family is computed inside each stratum, its reference (overall, complement, best or
        the named group) taken in the same stratum, and one correction covers every test of
        every stratum. Each group's label gains the stratum, each family's name says
        ``| COLUMN=VALUE``, and ``settings["strata"]`` has each stratum's overall value.
    engine : {"local", "ray"}, default="local"
        For data in shards (a folder, a glob such as ``"eval/*.parquet"`` or a list of
        Parquet files): ``"local"`` reads and reduces the shards one batch at a time in this
        process, in bounded memory; ``"ray"`` reduces each shard as a Ray Data batch map,
        on a local Ray instance or the cluster at ``ray_address``. Shards are reduced to
        sums per (cluster, cell), so the numbers are those of the whole table in memory.
        Sharded data needs ``cluster``; ``adjust`` needs the rows and is not available.
    ray_address : str, optional
        An existing Ray cluster (``"auto"``, ``"ray://head:10001"``); by default a local
        Ray instance is started.
    cache_dir : path, None or False
        Where the reduced sums of each shard are kept, so that a run that stops resumes
        from the shards it finished; None: ``$GROUPWISE_CACHE/shards`` or
        ``~/.cache/groupwise/shards``; False: no cache.
    progress : bool, default=False
        Print shards and batches done, examples per second and memory to standard error
        while sharded data is reduced.

    Returns
    -------
    AuditResult

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({
    ...     "reference": ["the cat sat", "a dog ran", "the cat sat", "a dog ran"] * 20,
    ...     "hypothesis": ["the cat sat", "a dog ran", "the bat sat", "a frog ran far"] * 20,
    ...     "accent": ["us", "us", "scottish", "scottish"] * 20,
    ...     "speaker": [f"s{i % 40}" for i in range(80)],
    ... })
    >>> result = audit(df, by="accent", cluster="speaker", n_boot=200, min_clusters=5)
    >>> round(result.overall["value"], 3)
    0.25
    >>> [(g["group"]["accent"], round(g["value"], 3)) for g in result.groups]
    [('scottish', 0.5), ('us', 0.0)]
    """
    # One-shot iterators are read twice below (for the columns to read, then for the groups).
    by, groups, adjust = (list(x) if isinstance(x, Iterator) else x for x in (by, groups, adjust))
    used = _columns_used(metric, by, groups, cluster, within, adjust,
                         MetricColumns(reference, hypothesis, y_true, y_pred, num, den))
    # The plain grouped audit of transcripts works on a polars frame: a Parquet file is
    # then read without pandas (about a quarter of a second less for a command).
    polars_ok = (
        metric in ("wer", "cer") and not groups and within is None and not adjust
        and not (isinstance(compare, str) and "=" in compare)
    )
    texts = [reference, hypothesis] if polars_ok else None
    source = open_data(data, engine=engine, columns=used, texts=texts)
    frame, shards = source.frame, source.shards
    spec = get_metric(metric)
    named = _named_reference(compare)
    if named is None:
        compare = check_choice(compare, "compare", _COMPARES, caller="audit")
    correction = check_choice(correction, "correction", _CORRECTIONS, caller="audit")
    test = check_test(test)
    if test == "permutation" and (compare == "best" or named is not None):
        raise InputError(
            "test='permutation' (--test permutation) was combined with compare='best' (--compare best): the best "
            "group is chosen from the data, and shuffling groups does not re-choose it",
            fix="use the default test with --compare best (each group against every better group, corrected for "
            "the choice), or --compare overall/complement with --test permutation",
        )
    if n_perm is not None:
        check_scalar(n_perm, "n_perm", int, min_val=99)
    check_scalar(alpha, "alpha", float, min_val=0.0, max_val=1.0, include_min=False, include_max=False)
    check_scalar(confidence, "confidence", float, min_val=0.0, max_val=1.0, include_min=False, include_max=False)
    check_scalar(n_boot, "n_boot", int, min_val=0)
    check_scalar(min_clusters, "min_clusters", int, min_val=1)
    check_scalar(min_examples, "min_examples", int, min_val=1)
    if n_boot == 1:
        raise InputError("n_boot=1 gives no spread to estimate", fix="pass n_boot=0 for point estimates only, or at least 2")
    if isinstance(provenance, Provenance):
        prov = provenance
    else:
        prov = Provenance(dict(provenance or {}))

    by_families = _families_from_by(by)
    if named is not None:
        column, wanted = named
        if not any(column in fam for fam in by_families):
            raise InputError(
                f"--compare {compare} names the column {column!r}, which is in no --by family "
                f"(the families are {', '.join(','.join(f) for f in by_families) or 'none'})",
                fix=f"add --by {column} (or a family that contains it), or compare with overall, complement or best",
            )
    expressions = [groups] if isinstance(groups, str) else list(groups or [])
    if not by_families and not expressions:
        raise InputError(
            "no groups were given",
            fix="pass by= (--by COLUMN, repeatable; COL1,COL2 for an intersection) or "
            "groups= (--group EXPRESSION)",
        )
    from groupwise._expr import parse_group

    parsed = [parse_group(text, columns=frame.columns) for text in expressions]
    group_columns = list(dict.fromkeys(
        [c for fam in by_families for c in fam] + [c for g in parsed for c in g.columns] + ([within] if within else [])
    ))
    if within is not None:
        check_columns(frame, [within], role="stratum", option="--within")
        values = frame[within].dropna().unique()
        if len(values) < 2 and shards is None:
            raise InputError(
                f"the --within column {within!r} has {'one value' if len(values) == 1 else 'no values'}"
                + (f" ({values[0]!r})" if len(values) == 1 else "") + ", so there is nothing to stratify",
                fix="name a column with several strata (such as the recogniser), or leave --within out",
            )
        if any(within in fam for fam in by_families):
            raise InputError(
                f"--within {within} is also a --by column",
                fix=f"group by the other columns within {within}, or drop --within",
            )
    for fam in by_families:
        check_columns(frame, fam, role="group", option="--by")
    prov.check(group_columns, allow_imputed=allow_imputed)

    adjust_cols = split_names(adjust) if isinstance(adjust, str) else list(adjust or [])
    if shards is not None and adjust_cols:
        raise InputError(
            "--adjust fits a model to every row, which data in shards does not keep in memory",
            fix="leave --adjust out for sharded data, or adjust on a sample that fits in memory",
        )
    prepared = prepare(
        source, spec, MetricColumns(reference, hypothesis, y_true, y_pred, num, den, pos_label), normalize=normalize,
        cluster=cluster, keys=list(dict.fromkeys([c for fam in by_families for c in fam] + ([within] if within else []))),
        expressions=[g.text for g in parsed], engine=engine, ray_address=ray_address, cache_dir=cache_dir,
        progress=progress,
    )
    frame, contrib, kind, normalizer = prepared.frame, prepared.contrib, prepared.kind, prepared.normalizer
    count, count_den, stream_info = prepared.count, prepared.count_den, prepared.stream
    if shards is None:
        masks = [expr.evaluate(frame) for expr in parsed]
    else:
        masks = [frame[f"__group{i}"].to_numpy(dtype=bool) for i in range(len(parsed))]
    if named is not None:
        column, wanted = named
        if column in frame.columns and not (frame[column].astype(str) == str(wanted)).any():
            present = ", ".join(map(str, list(dict.fromkeys(frame[column].astype(str)))[:12]))
            raise InputError(
                f"--compare {compare}: no row has {column} equal to {wanted!r} (it has {present})",
                fix="name a group that exists, spelled as in the data",
            )
    cluster_codes, n_clusters = _cluster_codes(frame, cluster)
    assert contrib is not None and kind is not None
    if not contrib.den.sum() > 0:
        raise InputError(
            f"the {spec.description} is undefined on this data: the denominator sums to zero "
            + {
                "wer": "(every reference is empty)",
                "cer": "(every reference is empty)",
                "fpr": "(there are no actual negatives)",
                "fnr": "(there are no actual positives)",
            }.get(spec.name, ""),
            fix=(
                "check the --reference column (it must hold the reference transcripts)"
                if spec.name in ("wer", "cer")
                else "check the --y-true and --y-pred columns and --pos-label, or choose another metric"
                if spec.name in ("fpr", "fnr", "selection_rate")
                else "check the columns, or choose another metric"
            ),
        )

    families = [_family_from_columns(frame, fam) for fam in by_families]
    weight = prepared.weight
    missing = {fam.name: int(weight[fam.codes < 0].sum()) for fam in families}
    for expr, mask in zip(parsed, masks):
        families.append(Family(expr.text, np.where(mask, 0, -1), [{"expression": expr.text}]))

    options = dict(
        kind=kind,
        inference=n_boot != 0,
        confidence=confidence,
        compare=named if named is not None else compare,  # type: ignore[arg-type]
        correction=correction,  # type: ignore[arg-type]
        alpha=alpha,
        min_clusters=min_clusters,
        min_examples=min_examples,
        higher_is_worse=spec.higher_is_worse,
        test=test,  # type: ignore[arg-type]
        n_perm=n_perm,
        seed=seed,
        count=count,
        count_den=count_den,
    )
    if adjust_cols:
        check_columns(frame, adjust_cols, role="covariate", option="--adjust")
        if within is not None:
            raise InputError("--adjust and --within were combined", fix="adjust within one stratum at a time")
    if within is None:
        stats = analyse(
            num=contrib.num, den=contrib.den, cluster=cluster_codes, n_clusters=n_clusters, families=families,
            extra=contrib.extra, **options,  # type: ignore[arg-type]
        )
    else:
        stats = _analyse_within(frame, within, contrib, cluster_codes, families, options)
    if adjust_cols:
        from groupwise.audit._adjust import adjusted_ratios

        by_only = families[: len(by_families)]
        adjusted, adjust_notes = adjusted_ratios(
            frame, num=contrib.num, den=contrib.den, cluster=cluster_codes, families=by_only, covariates=adjust_cols,
            confidence=confidence, correction=correction, min_clusters=min_clusters,
        )
        for g, extra_fields in zip(stats["groups"], adjusted):
            g.update(extra_fields)
        stats["notes"] = [*stats["notes"], *adjust_notes]
    settings = {
        "metric": spec.name,
        "by": [",".join(f) for f in by_families],
        "groups": [g.text for g in parsed],
        "cluster": cluster,
        "compare": compare,
        "correction": correction,
        "alpha": alpha,
        "confidence": confidence,
        "n_boot": n_boot,
        "min_clusters": min_clusters,
        "min_examples": min_examples,
        "seed": seed,
        "normalize": normalizer.spec if normalizer is not None else None,
        "columns": {role: getattr(MetricColumns(reference, hypothesis, y_true, y_pred, num, den), role) for role in spec.inputs},
        "pos_label": _plain(pos_label) if spec.name in ("fpr", "fnr", "selection_rate") else None,
        "allow_imputed": allow_imputed,
        "test": test,
        "inference": INFERENCE_NOTE if n_boot != 0 else "point estimates only (n_boot=0)",
        "interval": VALUE_INTERVAL_NOTE[kind],
        "count_model": kind,
        "clusters_from": cluster if cluster else "rows (each row its own cluster)",
        "missing_group_values": missing,
        "within": within,
        "adjust": adjust_cols or None,
        "n_tested": stats["n_tested"],
        "n_tests_corrected": stats["n_tests"],
        "n_perm": stats["n_perm"],
        "notes": stats["notes"],
    }
    if stream_info is not None:
        settings["stream"] = stream_info
    if within is not None:
        settings["strata"] = stats["strata"]
    return AuditResult(
        metric=spec.name,
        metric_description=spec.description,
        higher_is_worse=spec.higher_is_worse,
        overall=stats["overall"],
        groups=stats["groups"],
        settings=settings,
        provenance=prov.describe(group_columns),
    )


def _columns_used(
    metric: str, by: Any, groups: Any, cluster: str | None, within: str | None, adjust: Any, names: MetricColumns
) -> list[str] | None:
    """Every column an audit with these options reads, or None when the options are not
    valid (the audit then reads everything and reports the fault in the usual order).

    >>> _columns_used("wer", ["accent", "accent,noise"], "snr < 5", "speaker", None, None, MetricColumns())
    ['accent', 'noise', 'snr', 'speaker', 'reference', 'hypothesis']
    """
    from groupwise._errors import GroupwiseError
    from groupwise._expr import parse_group

    try:
        texts = [groups] if isinstance(groups, str) else list(groups or [])
        used = [c for fam in _families_from_by(by) for c in fam]
        used += [c for text in texts for c in parse_group(text).columns]
        used += [c for c in (cluster, within) if c is not None]
        used += split_names(adjust) if isinstance(adjust, str) else list(adjust or [])
        used += [getattr(names, role) for role in get_metric(metric).inputs]
    except (GroupwiseError, TypeError, ValueError):
        return None
    if not all(isinstance(c, str) for c in used):
        return None
    return list(dict.fromkeys(used))


def _families_from_by(by: Sequence[str | Sequence[str]] | str | None) -> list[list[str]]:
    if by is None:
        return []
    items = [by] if isinstance(by, str) else list(by)
    families: list[list[str]] = []
    for item in items:
        cols = split_names(item) if isinstance(item, str) else [str(c) for c in item]
        if not cols:
            raise InputError("an empty grouping was given", fix="name at least one column per --by")
        if len(set(cols)) != len(cols):
            raise InputError(f"the grouping {','.join(cols)!r} repeats a column", fix="name each column once")
        if cols not in families:
            families.append(cols)
    return families
