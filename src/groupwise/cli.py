"""The ``groupwise`` command-line program.

Commands only parse their options and call the library; heavy imports happen inside the
commands so that ``groupwise --help`` is instant. A :class:`GroupwiseError` is printed as
one paragraph with its fix and the program exits with status 2, never with a traceback.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from groupwise._errors import GroupwiseError

app = typer.Typer(
    name="groupwise",
    help="Task-relevant fairness testing: disaggregated audits with speaker-cluster statistics.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)

_METRIC_HELP = "wer, cer, error_rate, fpr, fnr, selection_rate, mae, mse or ratio."

# Options shared by the commands that read data in Parquet shards.
_Data = Annotated[
    list[Path],
    typer.Argument(help="CSV, TSV, JSONL or Parquet file, one row per example; or Parquet shards: a folder, a quoted glob ('eval/*.parquet') or several files, reduced batch by batch in bounded memory."),
]
_Engine = Annotated[str, typer.Option(help="For Parquet shards: local (this process, bounded memory) or ray (a Ray Data batch map per shard).")]
_RayAddress = Annotated[Optional[str], typer.Option("--ray-address", help="An existing Ray cluster for --engine ray (auto, HEAD:6379, ray://HEAD:10001); default: a local Ray.")]
_CacheDir = Annotated[Optional[Path], typer.Option("--cache-dir", help="Where each shard's reduced sums are kept so a rerun resumes (default: ~/.cache/groupwise/shards).")]
_NoCache = Annotated[bool, typer.Option("--no-cache", help="Keep no reduced sums of shards.")]


def _shards(data: list[Path]) -> str | list[str]:
    return [str(p) for p in data] if len(data) > 1 else str(data[0])


def _stream_options(engine: str, ray_address: Optional[str], cache_dir: Optional[Path], no_cache: bool, quiet: bool) -> dict:
    from groupwise.audit._stream import progress_enabled

    return {"engine": engine, "ray_address": ray_address, "cache_dir": False if no_cache else cache_dir,
            "progress": progress_enabled(quiet)}


def _console(quiet: bool = False):  # noqa: ANN202 - rich imported lazily
    from rich.console import Console

    return Console(quiet=quiet, width=None if sys.stdout.isatty() else 120)


def _show(result, console, *, json_out=None, csv_out=None, plot=None) -> None:  # noqa: ANN001 - any result type
    """Render a result and write the files asked for; one place for every command."""
    result.render(console)
    for path, write in (
        (json_out, lambda p: result.to_json(p)),
        (csv_out, lambda p: result.to_frame().to_csv(p, index=False)),
        (plot, lambda p: result.plot(p)),
    ):
        if path is not None:
            write(path)
            console.print(f"[dim]Wrote {path}[/]")


@app.command()
def audit(
    data: _Data,
    metric: Annotated[str, typer.Option(help=f"What to measure: {_METRIC_HELP}")] = "wer",
    by: Annotated[
        Optional[list[str]],
        typer.Option("--by", help="A grouping column; repeat for several families; COL1,COL2 for their intersection."),
    ] = None,
    group: Annotated[
        Optional[list[str]],
        typer.Option("--group", help="A group expression in DataFrame.query syntax, e.g. 'snr_db < 10 and accent != \"en-us\"'. Repeatable."),
    ] = None,
    cluster: Annotated[Optional[str], typer.Option(help="Column of the independently sampled unit (speaker, person).")] = None,
    compare: Annotated[str, typer.Option(help="Reference of each gap: overall, complement, best, or a named group COLUMN=VALUE (e.g. race=white).")] = "overall",
    adjust: Annotated[Optional[str], typer.Option(help="Covariates for adjusted rate ratios (Poisson GEE with speaker clusters), e.g. length,noise.")] = None,
    within: Annotated[Optional[str], typer.Option(help="Compute every family inside each stratum of this column (e.g. system), one correction for all.")] = None,
    correction: Annotated[str, typer.Option(help="Multiplicity correction across all groups: holm, bh or none.")] = "holm",
    test: Annotated[str, typer.Option(help="How gaps are tested: auto or t (cluster-robust t with small-sample corrections), or permutation (studentised; clusters nested in groups).")] = "auto",
    n_perm: Annotated[Optional[int], typer.Option("--n-perm", help="Permutations for --test permutation (default: enough for the correction).")] = None,
    alpha: Annotated[float, typer.Option(help="Flag groups whose corrected p-value is at most this.")] = 0.05,
    confidence: Annotated[float, typer.Option(help="Level of every interval.")] = 0.95,
    n_boot: Annotated[int, typer.Option("--n-boot", help="0: point estimates only (intervals and tests are analytic; other values are recorded).")] = 1000,
    min_clusters: Annotated[int, typer.Option(help="Fewer clusters than this: 'insufficient', no interval or test.")] = 10,
    min_examples: Annotated[int, typer.Option(help="Fewer examples than this: 'insufficient'.")] = 30,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap; same seed, same numbers.")] = 0,
    reference: Annotated[str, typer.Option(help="Reference transcript column (wer, cer).")] = "reference",
    hypothesis: Annotated[str, typer.Option(help="Hypothesis transcript column (wer, cer).")] = "hypothesis",
    y_true: Annotated[str, typer.Option("--y-true", help="True label/value column.")] = "y_true",
    y_pred: Annotated[str, typer.Option("--y-pred", help="Predicted label/value column.")] = "y_pred",
    num: Annotated[str, typer.Option(help="Numerator column for --metric ratio.")] = "num",
    den: Annotated[str, typer.Option(help="Denominator column for --metric ratio.")] = "den",
    pos_label: Annotated[str, typer.Option("--pos-label", help="Positive label for fpr, fnr, selection_rate.")] = "1",
    normalize: Annotated[str, typer.Option(help="Text normalisation: default (lowercase+punctuation+whitespace), none, english (Whisper's English normaliser: numbers as digits, American spelling), or steps joined by +.")] = "default",
    provenance: Annotated[
        Optional[list[str]],
        typer.Option("--provenance", help="COLUMN=PROVENANCE (self_reported, annotated, measured, synthetic, imputed). Repeatable."),
    ] = None,
    schema: Annotated[Optional[Path], typer.Option(help="YAML/JSON file with the provenance of columns.")] = None,
    allow_imputed: Annotated[bool, typer.Option("--allow-imputed", help="Allow grouping by imputed protected attributes.")] = False,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write every number and the settings to this JSON file.")] = None,
    csv_out: Annotated[Optional[Path], typer.Option("--csv", help="Write the tidy per-group table to this CSV file.")] = None,
    plot: Annotated[Optional[Path], typer.Option(help="Save a plot of group values and intervals (PNG, SVG or PDF).")] = None,
    engine: _Engine = "local",
    ray_address: _RayAddress = None,
    cache_dir: _CacheDir = None,
    no_cache: _NoCache = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors (and no progress).")] = False,
) -> None:
    """Audit a metric across groups, with cluster-robust intervals and corrected tests.

    Example: [bold]groupwise audit hyps.csv --by accent --by accent,noise --cluster speaker --json out.json[/]

    Sharded: [bold]groupwise audit 'eval/*.parquet' --by accent --cluster speaker --engine ray[/]
    """

    from groupwise.audit._audit import audit as run_audit
    from groupwise._provenance import Provenance, load_schema, parse_assignments

    prov = load_schema(schema) if schema is not None else Provenance()
    prov = prov.merged(parse_assignments(provenance or []))
    result = run_audit(
        _shards(data),
        metric=metric,
        by=by,
        groups=group,
        cluster=cluster,
        compare=compare,
        correction=correction,
        test=test,
        within=within,
        adjust=adjust,
        n_perm=n_perm,
        alpha=alpha,
        confidence=confidence,
        n_boot=n_boot,
        min_clusters=min_clusters,
        min_examples=min_examples,
        seed=seed,
        reference=reference,
        hypothesis=hypothesis,
        y_true=y_true,
        y_pred=y_pred,
        num=num,
        den=den,
        pos_label=pos_label,
        normalize=_normalizer(normalize),
        provenance=prov,
        allow_imputed=allow_imputed,
        **_stream_options(engine, ray_address, cache_dir, no_cache, quiet),
    )
    _show(result, _console(quiet), json_out=json_out, csv_out=csv_out, plot=plot)


@app.command("coverage")
def coverage_cmd(
    data: _Data,
    dims: Annotated[str, typer.Option(help="Dimensions whose combinations to list, e.g. accent,noise,device.")],
    cluster: Annotated[Optional[str], typer.Option(help="Column of the independently sampled unit (speaker).")] = None,
    metric: Annotated[str, typer.Option(help=f"Metric to plan interval widths for: auto, none, or {_METRIC_HELP}")] = "auto",
    target_half_width: Annotated[
        Optional[float], typer.Option("--target-half-width", help="Wanted interval half-width per cell (0.02 = 2 WER points).")
    ] = None,
    confidence: Annotated[float, typer.Option(help="Interval level.")] = 0.95,
    alpha: Annotated[float, typer.Option(help="Test level behind each cell's detectable gap (divided by the number of cells).")] = 0.05,
    strength: Annotated[Optional[int], typer.Option(help="Also propose a t-way covering set of combinations to collect (2: every pair of values).")] = None,
    min_clusters: Annotated[int, typer.Option(help="Cells with fewer clusters are 'thin'.")] = 10,
    min_examples: Annotated[int, typer.Option(help="Cells with fewer examples are 'thin'.")] = 30,
    reference: Annotated[str, typer.Option(help="Reference transcript column.")] = "reference",
    hypothesis: Annotated[str, typer.Option(help="Hypothesis transcript column.")] = "hypothesis",
    y_true: Annotated[str, typer.Option("--y-true", help="True label/value column.")] = "y_true",
    y_pred: Annotated[str, typer.Option("--y-pred", help="Predicted label/value column.")] = "y_pred",
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write every cell to this JSON file.")] = None,
    csv_out: Annotated[Optional[Path], typer.Option("--csv", help="Write every cell to this CSV file.")] = None,
    engine: _Engine = "local",
    ray_address: _RayAddress = None,
    cache_dir: _CacheDir = None,
    no_cache: _NoCache = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
) -> None:
    """List every combination of the dimensions: examples, clusters, thin and empty cells, and how many more clusters each needs.

    Example: [bold]groupwise coverage hyps.csv --dims accent,noise --cluster speaker --target-half-width 0.03[/]
    """
    from groupwise.audit._coverage import coverage

    result = coverage(
        _shards(data),
        dims=dims,
        cluster=cluster,
        metric=None if metric == "none" else metric,
        target_half_width=target_half_width,
        confidence=confidence,
        alpha=alpha,
        strength=strength,
        min_clusters=min_clusters,
        min_examples=min_examples,
        reference=reference,
        hypothesis=hypothesis,
        y_true=y_true,
        y_pred=y_pred,
        **_stream_options(engine, ray_address, cache_dir, no_cache, quiet),
    )
    _show(result, _console(quiet), json_out=json_out, csv_out=csv_out)


@app.command("slices")
def slices_cmd(
    data: Annotated[Path, typer.Argument(help="CSV, TSV, JSONL or Parquet file, one row per example.")],
    features: Annotated[str, typer.Option(help="Comma-separated columns to build predicates from, e.g. accent,noise,snr_db.")],
    metric: Annotated[str, typer.Option(help="What to measure (higher is worse): wer, cer, error_rate, fpr, fnr, mae, mse or ratio.")] = "wer",
    cluster: Annotated[Optional[str], typer.Option(help="Column of the independently sampled unit (speaker); the search and the confirmation get different halves of them.")] = None,
    max_order: Annotated[int, typer.Option("--max-order", help="Most predicates in one slice.")] = 3,
    top: Annotated[int, typer.Option(help="Slices (after merging near-duplicates) audited on the confirmation half.")] = 20,
    min_size: Annotated[Optional[int], typer.Option("--min-size", help="Fewest discovery rows in a slice (default: max(min-examples, 1% of them)).")] = None,
    min_clusters: Annotated[int, typer.Option("--min-clusters", help="Fewest clusters in a slice on each half.")] = 10,
    min_examples: Annotated[int, typer.Option("--min-examples", help="Fewest rows in a slice on the confirmation half.")] = 30,
    bins: Annotated[int, typer.Option(help="Quantile brackets per numeric feature.")] = 4,
    merge: Annotated[float, typer.Option(help="Merge slices whose discovery rows overlap with at least this Jaccard similarity.")] = 0.9,
    correction: Annotated[str, typer.Option(help="holm (family-wise) or bh (false discovery rate) across the audited slices.")] = "holm",
    alpha: Annotated[float, typer.Option(help="Confirm slices whose corrected p-value is at most this.")] = 0.05,
    n_boot: Annotated[int, typer.Option("--n-boot", help="Bootstrap replicates of the confirmation audit.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the split and the audit.")] = 0,
    reference: Annotated[str, typer.Option(help="Reference transcript column (wer, cer).")] = "reference",
    hypothesis: Annotated[str, typer.Option(help="Hypothesis transcript column (wer, cer).")] = "hypothesis",
    y_true: Annotated[str, typer.Option("--y-true", help="True label/value column.")] = "y_true",
    y_pred: Annotated[str, typer.Option("--y-pred", help="Predicted label/value column.")] = "y_pred",
    num: Annotated[str, typer.Option(help="Numerator column for --metric ratio.")] = "num",
    den: Annotated[str, typer.Option(help="Denominator column for --metric ratio.")] = "den",
    pos_label: Annotated[str, typer.Option("--pos-label", help="Positive label for fpr, fnr.")] = "1",
    normalize: Annotated[str, typer.Option(help="Text normalisation for wer, cer (as in groupwise audit).")] = "default",
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write every slice, the settings and the service card's 'found by search' section to this JSON file.")] = None,
    csv_out: Annotated[Optional[Path], typer.Option("--csv", help="Write one row per candidate slice to this CSV file.")] = None,
    plot: Annotated[Optional[Path], typer.Option(help="Save a plot of discovery and confirmation values (PNG, SVG or PDF).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
) -> None:
    """Search slices (conjunctions of feature predicates) on half of the speakers; confirm the worst on the other half.

    Example: [bold]groupwise slices hyps.csv --features accent,noise,snr_db --cluster speaker --max-order 2 --json slices.json[/]
    """
    from groupwise.audit._slices import slices

    result = slices(
        data, features=features, metric=metric, cluster=cluster, max_order=max_order, top=top, min_size=min_size,
        min_clusters=min_clusters, min_examples=min_examples, bins=bins, merge=merge, correction=correction,
        alpha=alpha, n_boot=n_boot, seed=seed, reference=reference, hypothesis=hypothesis, y_true=y_true,
        y_pred=y_pred, num=num, den=den, pos_label=pos_label, normalize=normalize,
    )
    _show(result, _console(quiet), json_out=json_out, csv_out=csv_out, plot=plot)


@app.command()
def example(
    out: Annotated[Path, typer.Argument(help="Where to write the table (.csv, .tsv, .jsonl or .parquet).")],
    kind: Annotated[str, typer.Option(help="speech (ASR transcripts by accent and noise) or tabular (classifier by demographics).")] = "speech",
    rows: Annotated[int, typer.Option(help="Number of rows.")] = 6000,
    speakers: Annotated[int, typer.Option(help="Number of speakers (speech only).")] = 240,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Write a generated example table with known disparities, to try the other commands on."""
    from groupwise._demo import write_table
    from groupwise._example import speech_example, tabular_example

    if kind == "speech":
        frame = speech_example(rows, n_speakers=speakers, seed=seed)
    elif kind == "tabular":
        frame = tabular_example(rows, seed=seed)
    else:
        raise GroupwiseError(f"example kind {kind!r} is not known", fix="use --kind speech or --kind tabular")
    write_table(frame, out)
    _console().print(f"Wrote {len(frame):,} rows to {out}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the report and its files.")] = Path("groupwise-demo"),
    quick: Annotated[bool, typer.Option("--quick", help="Six accents, 5 speakers x 3 utterances each (the full demo: twelve, 6 x 4): under 3 minutes on 2 cores.")] = False,
    simulated: Annotated[bool, typer.Option("--simulated", help="Use simulated transcripts instead of speech (seconds, no recogniser).")] = False,
    workers: Annotated[Optional[int], typer.Option(help="Processes (default: all cores).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Run the main job end to end and write DIR/report.html.

    Synthesises accented clinical dictation with eSpeak NG, builds a domain language model,
    transcribes it with two recognisers (PocketSphinx with that model, and Whisper tiny.en)
    at baseline, under a 1200 Hz hospital hum and over a telephone line, audits WER by
    accent for each, compares the two recognisers per accent, runs the last-mile test, and
    writes the report.
    """
    if simulated:
        from groupwise._demo import run_demo

        run_demo(out, quick=quick, seed=seed, console=_console())
        return
    from groupwise.speech._demo import run_speech_demo

    run_speech_demo(out, quick=quick, seed=seed, workers=workers, console=_console())


corpus_app = typer.Typer(help="Speech corpora: synthesise an accented corpus, or check one.", no_args_is_help=True)
lm_app = typer.Typer(help="Domain language models for the recogniser.", no_args_is_help=True)
app.add_typer(corpus_app, name="corpus")
app.add_typer(lm_app, name="lm")


@corpus_app.command("synth")
def corpus_synth(
    out: Annotated[Path, typer.Argument(help="Directory for the WAV files, manifest.csv and lm_train.txt.")],
    accents: Annotated[str, typer.Option(help="Comma-separated eSpeak NG voices: English varieties (en-us, en-gb-scotland, en-029, ...) and other languages reading English with their own rules (fr, vi, es, it, pl, nl, tr, ...). Voices that read English with eSpeak's English translator (hi, zh, ru, ar) are refused.")] = ",".join(
        ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc", "fr", "vi", "es", "it")
    ),
    speakers: Annotated[int, typer.Option(help="Speakers per accent (voice variant, pitch and rate).")] = 4,
    utterances: Annotated[int, typer.Option(help="Utterances per speaker.")] = 10,
    domain: Annotated[str, typer.Option(help="Sentence domain: clinical or general.")] = "clinical",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    workers: Annotated[int, typer.Option(help="Processes.")] = 1,
    engine: Annotated[str, typer.Option(help="espeak, or piper (the neural voice en_US-joe-medium, CC0; accents through its eSpeak phoneme language).")] = "espeak",
    check_accents: Annotated[bool, typer.Option("--check-accents/--no-check-accents", help="Refuse voices that read the sentences with eSpeak's English translator or sound like an English variety.")] = True,
) -> None:
    """Synthesise an accented English test corpus with eSpeak NG (marked synthetic).

    Example: [bold]groupwise corpus synth corpus --accents en-us,en-029,hi --speakers 5 --utterances 8[/]
    """
    from groupwise._io import split_names
    from groupwise.speech._synth import synthesize_corpus

    manifest = synthesize_corpus(
        out, accents=split_names(accents), speakers=speakers, utterances=utterances, domain=domain, seed=seed,
        workers=workers, check_accents=check_accents, engine=engine,
    )
    measured = manifest.drop_duplicates("accent")[["accent", "english_read", "phoneme_edit_rate", "nearest_english"]]
    _console().print(measured.to_string(index=False), highlight=False)
    _console().print(
        f"Wrote {len(manifest):,} utterances from {manifest.speaker.nunique()} speakers in "
        f"{manifest.accent.nunique()} accents to {out / 'manifest.csv'}; language-model text in {out / 'lm_train.txt'}."
    )


@corpus_app.command("check")
def corpus_check(
    path: Annotated[Path, typer.Argument(help="A manifest (CSV/TSV/JSONL/Parquet), a Common Voice TSV, or an audiofolder.")],
    format: Annotated[str, typer.Option(help="auto, manifest, common_voice or audiofolder.")] = "auto",
) -> None:
    """Load a corpus and report every row whose audio or transcript cannot be used."""
    from groupwise.speech._corpus import load_corpus

    frame = load_corpus(path, format=format, on_problem="skip")  # type: ignore[arg-type]
    console = _console()
    problems = frame.attrs.get("problems", [])
    for p in problems:
        console.print(f"row {p['row']}: {p['audio']}: {p['problem']}", highlight=False)
    console.print(f"{len(frame):,} usable rows, {len(problems):,} with problems; columns: {', '.join(map(str, frame.columns))}")
    if problems:
        raise typer.Exit(1)


@lm_app.command("build")
def lm_build(
    text: Annotated[Path, typer.Argument(help="Training text, one sentence per line (never the test sentences).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="ARPA language model to write; a matching .dict is written beside it.")],
    order: Annotated[int, typer.Option(help="N-gram order.")] = 3,
) -> None:
    """Build a domain n-gram language model (ARPA) and pronunciation dictionary for PocketSphinx.

    Example: [bold]groupwise lm build corpus/lm_train.txt -o domain.lm[/]
    """
    from groupwise.speech._lm import build_lm

    info = build_lm(text, order=order, out=out)
    _console().print(f"Wrote {out}: {info}")


def _normalizer(spec: str):  # noqa: ANN202 - a Normalizer, or the spec itself
    if "english" in spec.lower() or "whisper" in spec.lower():
        from groupwise.speech._normalize import parse_speech_normalizer

        return parse_speech_normalizer(spec)
    return spec


def _transcribe_options(asr: str, lm: Optional[Path], options: Optional[list[str]]) -> dict:
    from groupwise.speech._asr import parse_backend_options

    opts = parse_backend_options(options or [])
    if lm is not None:
        if asr != "pocketsphinx":
            raise GroupwiseError(f"--lm is for the pocketsphinx recogniser, not {asr}", fix="leave --lm out or use --asr pocketsphinx")
        opts["lm"] = str(lm)
    return opts


@app.command()
def transcribe(
    manifest: Annotated[Path, typer.Argument(help="A manifest, a Common Voice TSV or an audiofolder.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Transcripts to write (.parquet, .csv, .tsv or .jsonl).")],
    asr: Annotated[str, typer.Option(help="Recogniser: pocketsphinx, whisper (tiny.en offline; --option model=base), whisper-cpp, http or command.")] = "pocketsphinx",
    lm: Annotated[Optional[Path], typer.Option(help="Domain language model for pocketsphinx (groupwise lm build).")] = None,
    option: Annotated[Optional[list[str]], typer.Option("--option", help="Recogniser option KEY=VALUE (url=..., key=..., model=..., cmd=..., rate=...). Repeatable.")] = None,
    condition: Annotated[Optional[list[str]], typer.Option("--condition", help="Last-mile condition, e.g. 'hum:freq=1200,harmonics=3,snr=5'. Repeatable; baseline is always included.")] = None,
    workers: Annotated[int, typer.Option(help="Processes (or Ray tasks).")] = 1,
    engine: Annotated[str, typer.Option(help="local or ray.")] = "local",
    ray_address: _RayAddress = None,
    cache: Annotated[Optional[Path], typer.Option(help="Cache directory (default ~/.cache/groupwise or $GROUPWISE_CACHE).")] = None,
    skip_bad_audio: Annotated[bool, typer.Option("--skip-bad-audio", help="Leave out rows whose audio cannot be read (reported) instead of stopping.")] = False,
    audio_column: Annotated[Optional[str], typer.Option("--audio-column", help="Manifest column with audio paths (found automatically: audio, path, file_name, ...).")] = None,
    text_column: Annotated[Optional[str], typer.Option("--text-column", help="Manifest column with reference transcripts (found automatically: reference, text, sentence, ...).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the condition transforms.")] = 0,
) -> None:
    """Transcribe every utterance (at baseline and under each condition), cached and resumable.

    Example: [bold]groupwise transcribe corpus/manifest.csv --lm domain.lm --condition telephone --workers 2 -o hyps.parquet[/]
    """
    from groupwise._demo import write_table
    from groupwise.speech._corpus import load_corpus
    from groupwise.speech._transcribe import transcribe as run

    on_problem = "skip" if skip_bad_audio else "fail"
    columns = {k: v for k, v in (("audio_column", audio_column), ("text_column", text_column)) if v is not None}
    frame = load_corpus(manifest, on_problem=on_problem, **columns)  # type: ignore[arg-type]
    console = _console()
    for p in frame.attrs.get("problems", []):
        console.print(f"[yellow]skipped[/] row {p['row']}: {p['audio']}: {p['problem']}", highlight=False)
    result = run(
        frame, backend=asr, backend_options=_transcribe_options(asr, lm, option),
        conditions=["baseline", *[c for c in (condition or []) if c != "baseline"]], seed=seed, workers=workers,
        cache=cache, engine=engine, on_error=on_problem, ray_address=ray_address,  # type: ignore[arg-type]
    )
    write_table(result, out)
    console.print(f"Wrote {len(result):,} transcripts to {out}")


@app.command("compare")
def compare_cmd(
    data: _Data,
    condition: Annotated[str, typer.Option(help="Column naming each row's system (or condition).")],
    baseline: Annotated[str, typer.Option(help="The system the others are compared with.")],
    by: Annotated[str, typer.Option(help="Grouping column(s), e.g. accent or race.")],
    item: Annotated[str, typer.Option(help="Column naming the item (utterance) each row transcribes.")],
    cluster: Annotated[Optional[str], typer.Option(help="Speaker (person) column.")] = None,
    metric: Annotated[str, typer.Option(help=f"Metric: {_METRIC_HELP}")] = "wer",
    reference: Annotated[str, typer.Option(help="Reference transcript column.")] = "reference",
    hypothesis: Annotated[str, typer.Option(help="Hypothesis transcript column.")] = "hypothesis",
    num: Annotated[str, typer.Option(help="Precomputed errors column (--metric ratio).")] = "num",
    den: Annotated[str, typer.Option(help="Precomputed words column (--metric ratio).")] = "den",
    scale: Annotated[str, typer.Option(help="Interaction scale: relative (ratio of ratios) or absolute (points).")] = "relative",
    correction: Annotated[str, typer.Option(help="holm, bh or none.")] = "holm",
    alpha: Annotated[float, typer.Option(help="Flag interactions whose corrected p-value is at most this.")] = 0.05,
    min_clusters: Annotated[int, typer.Option(help="Fewer speakers than this (in the group or the rest): insufficient.")] = 10,
    min_examples: Annotated[int, typer.Option(help="Fewer items than this: insufficient.")] = 30,
    drop_unpaired: Annotated[bool, typer.Option("--drop-unpaired", help="Leave out items missing under some system (counted) instead of refusing.")] = False,
    normalize: Annotated[str, typer.Option(help="Text normalisation for transcripts.")] = "default",
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write every number to this JSON file.")] = None,
    plot: Annotated[Optional[Path], typer.Option(help="Save the plot of deltas per group.")] = None,
    engine: _Engine = "local",
    ray_address: _RayAddress = None,
    cache_dir: _CacheDir = None,
    no_cache: _NoCache = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
) -> None:
    """Paired comparison of systems (or conditions) on the same items, per group: deltas and interactions.

    Example: [bold]groupwise compare snippets.csv --condition system --baseline sphinx --by race --cluster speaker --item snippet --metric ratio --num errors --den words[/]
    """
    from groupwise.audit._compare import compare

    result = compare(
        _shards(data), condition=condition, baseline=baseline, by=by, cluster=cluster, item=item, metric=metric,
        reference=reference, hypothesis=hypothesis, num=num, den=den, normalize=normalize, scale=scale,
        correction=correction, alpha=alpha, min_clusters=min_clusters, min_examples=min_examples,
        drop_unpaired=drop_unpaired, **_stream_options(engine, ray_address, cache_dir, no_cache, quiet),
    )
    _show(result, _console(quiet), json_out=json_out, plot=plot)


@app.command("lastmile")
def lastmile_cmd(
    manifest: Annotated[Path, typer.Argument(help="A manifest (or Common Voice TSV, audiofolder), or transcripts with a condition column from groupwise transcribe.")],
    condition: Annotated[Optional[list[str]], typer.Option("--condition", help="A condition to test against baseline, e.g. 'hum:freq=1200,harmonics=3,snr=5', telephone. Repeatable.")] = None,
    by: Annotated[str, typer.Option(help="Grouping column, e.g. accent.")] = "accent",
    cluster: Annotated[str, typer.Option(help="Speaker column.")] = "speaker",
    asr: Annotated[str, typer.Option(help="Recogniser (see groupwise transcribe).")] = "pocketsphinx",
    lm: Annotated[Optional[Path], typer.Option(help="Domain language model for pocketsphinx.")] = None,
    option: Annotated[Optional[list[str]], typer.Option("--option", help="Recogniser option KEY=VALUE. Repeatable.")] = None,
    workers: Annotated[int, typer.Option(help="Processes.")] = 1,
    cache: Annotated[Optional[Path], typer.Option(help="Cache directory.")] = None,
    n_boot: Annotated[int, typer.Option("--n-boot", help="Recorded only (intervals are analytic).")] = 1000,
    test: Annotated[str, typer.Option(help="Interaction test: auto or t (paired cluster-robust t).")] = "auto",
    scale: Annotated[str, typer.Option(help="Interaction scale: relative (ratio of ratios; a condition that multiplies everyone alike flags nobody) or absolute (WER points).")] = "relative",
    correction: Annotated[str, typer.Option(help="holm, bh or none.")] = "holm",
    alpha: Annotated[float, typer.Option(help="Flag interactions whose corrected p-value is at most this.")] = 0.05,
    min_clusters: Annotated[int, typer.Option(help="Fewer speakers than this (in the accent or in the rest): insufficient.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed of transforms and bootstrap.")] = 0,
    normalize: Annotated[str, typer.Option(help="Text normalisation: default, none, english (for Whisper), or steps joined by +.")] = "default",
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write every number to this JSON file.")] = None,
    plot: Annotated[Optional[Path], typer.Option(help="Save the plot of deltas per group.")] = None,
) -> None:
    """Does a condition raise WER, and does it raise it more for some groups than for the rest?

    Example: [bold]groupwise lastmile corpus/manifest.csv --lm domain.lm --condition 'hum:freq=1200,harmonics=3,snr=5' --by accent --json lastmile.json[/]
    """
    from groupwise._io import read_table
    from groupwise.audit._lastmile import lastmile
    from groupwise.speech._corpus import load_corpus
    from groupwise.speech._transcribe import transcribe as run

    console = _console()
    is_transcripts = manifest.is_file() and manifest.suffix.lower() in (".parquet", ".csv", ".tsv", ".jsonl") and "condition" in read_table(manifest).columns
    if is_transcripts:
        frame = read_table(manifest)
        if condition:
            keep = {"baseline", *condition}
            frame = frame[frame["condition"].isin(keep)]
    else:
        if not condition:
            raise GroupwiseError("no condition was given", fix="pass --condition, e.g. --condition telephone")
        corpus = load_corpus(manifest)
        frame = run(
            corpus, backend=asr, backend_options=_transcribe_options(asr, lm, option),
            conditions=["baseline", *condition], seed=seed, workers=workers, cache=cache,
        )
        frame.attrs["provenance"] = corpus.attrs.get("provenance", {})
    result = lastmile(
        frame, by=by, cluster=cluster, n_boot=n_boot, test=test, correction=correction, alpha=alpha,
        min_clusters=min_clusters, seed=seed, normalize=_normalizer(normalize), scale=scale,
        names=_condition_names(frame),
    )
    _show(result, console, json_out=json_out, plot=plot)


def _condition_names(frame: object) -> dict[str, str]:
    """Readable names of the speech conditions in a transcripts table (spec -> name)."""
    from groupwise.speech._conditions import parse_condition

    names = {}
    columns = getattr(frame, "columns", [])
    for spec in dict.fromkeys(frame["condition"] if "condition" in columns else []):  # type: ignore[index]
        try:
            names[str(spec)] = parse_condition(str(spec)).name
        except Exception:  # not a speech condition: keep the label
            names[str(spec)] = str(spec)
    return names


bounty_app = typer.Typer(help="Algorithmic bias bounty: programs, submissions, hunters, bundles.", no_args_is_help=True)
app.add_typer(bounty_app, name="bounty")

from groupwise.card._cli import card_app  # noqa: E402 - typer only; the card's work is imported inside its commands

app.add_typer(card_app, name="card")


@bounty_app.command("init")
def bounty_init(
    directory: Annotated[Path, typer.Argument(help="Directory for the new program.")],
    data: Annotated[Optional[Path], typer.Option(help="Table with features and target (CSV, TSV, JSONL, Parquet).")] = None,
    example: Annotated[Optional[str], typer.Option(help="Built-in example instead of --data: adult (UCI Adult census data).")] = None,
    target: Annotated[Optional[str], typer.Option(help="Target column.")] = None,
    features: Annotated[Optional[str], typer.Option(help="Comma-separated feature columns (default: all but the target).")] = None,
    task: Annotated[str, typer.Option(help="classification or regression.")] = "classification",
    loss: Annotated[Optional[str], typer.Option(help="zero_one, squared[:bound=B] or absolute[:bound=B].")] = None,
    epsilon: Annotated[float, typer.Option(help="Minimum mass-weighted improvement an update must show (accepted at 3*eps/4 on the holdout).")] = 0.01,
    base_model: Annotated[str, typer.Option("--base-model", help="base.onnx, base.skops, train:gbm or train:tree.")] = "train:gbm",
    seed: Annotated[int, typer.Option(help="Seed of the splits and the base model.")] = 0,
    test_size: Annotated[float, typer.Option("--test-size", help="Fraction of rows in the public test split.")] = 0.2,
    holdout_size: Annotated[float, typer.Option("--holdout-size", help="Fraction of rows in the private holdout.")] = 0.4,
    max_queries: Annotated[int, typer.Option("--max-queries", help="Holdout query budget.")] = 10_000,
    min_group_size: Annotated[int, typer.Option("--min-group-size", help="Smallest group a submission may target, counted in rows of the public train and test splits.")] = 30,
) -> None:
    """Create a bounty program: public train and test splits, a private holdout, a base model.

    Example: [bold]groupwise bounty init adult-bounty --example adult --base-model train:tree[/]
    """
    from groupwise.bounty._cli import init_cmd

    init_cmd(
        directory, data=data, example=example, target=target, features=features, task=task, loss=loss,
        epsilon=epsilon, base_model=base_model, seed=seed, test_size=test_size, holdout_size=holdout_size,
        max_queries=max_queries, min_group_size=min_group_size, console=_console(),
    )


@bounty_app.command("submit")
def bounty_submit(
    model: Annotated[Path, typer.Option(help="The model h: an ONNX or skops file (never a pickle).")],
    directory: Annotated[Optional[Path], typer.Argument(help="The program directory (or use --server).")] = None,
    team: Annotated[Optional[str], typer.Option(help="Your team name (local programs).")] = None,
    group: Annotated[Optional[str], typer.Option(help="The group g: an expression such as 'age >= 60 and sex == \"Female\"', or a classifier model file.")] = None,
    server: Annotated[Optional[str], typer.Option(help="URL of a bounty service, e.g. http://127.0.0.1:8000.")] = None,
    token: Annotated[Optional[str], typer.Option(envvar="GROUPWISE_TOKEN", help="Your team's API token (with --server).")] = None,
    program: Annotated[Optional[str], typer.Option(help="The program on the server (default: its only one).")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="With --server: wait for the decision.")] = False,
) -> None:
    """Submit a (group, model) pair; learn only accepted or rejected (and why, for input problems).

    Exit status: 0 accepted, 1 rejected by the holdout, 2 refused (input or limits).
    Example: [bold]groupwise bounty submit adult-bounty --group 'age >= 60' --model h.onnx --team us[/]
    """
    if group is None:
        raise GroupwiseError("no group was given", fix="pass --group with an expression or a group model file")
    if server is not None:
        from groupwise.service._client import remote_submit

        sub = remote_submit(server, token=token or "", program=program, model=model, group=group, wait=wait, console=_console())
        if wait and sub["decision"] != "accepted":
            raise typer.Exit(1 if sub["reason_kind"] == "check" else 2)
        return
    if directory is None or not team:
        raise GroupwiseError("no program directory or team was given", fix="pass DIR --team NAME, or --server URL --token TOKEN")
    from groupwise.bounty._cli import submit_cmd

    result = submit_cmd(directory, model=model, team=team, group=group, console=_console())
    if not result.accepted:
        # A holdout rejection is an answer (exit 1); a refused input or a broken limit is
        # the submitter's problem to fix (exit 2).
        raise typer.Exit(1 if result.reason_kind == "check" else 2)


@bounty_app.command("hunt")
def bounty_hunt(
    directory: Annotated[Path, typer.Argument(help="The program directory.")],
    strategy: Annotated[str, typer.Option(help="demographic, csc (certificate finder), tree or slices (slice discovery, confirmed on held-out rows).")] = "demographic",
    budget: Annotated[int, typer.Option(help="Submissions the hunter may make.")] = 10,
    team: Annotated[Optional[str], typer.Option(help="Team name the hunter submits as.")] = None,
    features: Annotated[Optional[str], typer.Option(help="Features the hunter may use to define groups (comma-separated).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Run an automated hunter that searches for groups the current model serves badly and submits fixes."""
    from groupwise.bounty._cli import hunt_cmd

    hunt_cmd(directory, strategy=strategy, budget=budget, team=team, features=features, seed=seed, console=_console())


@bounty_app.command("status")
def bounty_status(
    directory: Annotated[Optional[Path], typer.Argument(help="The program directory (or use --server).")] = None,
    server: Annotated[Optional[str], typer.Option(help="URL of a bounty service.")] = None,
    token: Annotated[Optional[str], typer.Option(envvar="GROUPWISE_TOKEN", help="Your team's API token (shows your own submissions too).")] = None,
    program: Annotated[Optional[str], typer.Option(help="The program on the server (default: its only one).")] = None,
    plot: Annotated[Optional[Path], typer.Option(help="Also draw each group's error across versions to this PNG file.")] = None,
) -> None:
    """The model's versions, error trajectory and per-group errors on the public test split."""
    if server is not None:
        from groupwise.service._client import remote_status

        remote_status(server, token=token, program=program, console=_console())
        return
    if directory is None:
        raise GroupwiseError("no program directory was given", fix="pass DIR, or --server URL")
    from groupwise.bounty._cli import status_cmd

    status_cmd(directory, plot=plot, console=_console())


@bounty_app.command("worker")
def bounty_worker(
    db: Annotated[str, typer.Option("--db", help="The service's database URL (PostgreSQL for several workers).")],
) -> None:
    """Run one evaluation worker for a bounty service (more workers: run more of these)."""
    from groupwise.service.worker import run_worker

    run_worker(db)


@app.command()
def serve(
    db: Annotated[str, typer.Option("--db", help="sqlite:///bounty.db, or postgresql+psycopg://user@host/db in production.")] = "sqlite:///bounty.db",
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Evaluation worker processes (PostgreSQL; SQLite runs one in-process worker).")] = 1,
    web_workers: Annotated[int, typer.Option("--web-workers", help="uvicorn processes (PostgreSQL only).")] = 1,
    program: Annotated[Optional[list[Path]], typer.Option("--program", help="A program directory from groupwise bounty init. Repeatable.")] = None,
    admin_token: Annotated[Optional[str], typer.Option("--admin-token", envvar="GROUPWISE_ADMIN_TOKEN", help="Register this admin token (default: one is made and printed on first start).")] = None,
    secure_cookies: Annotated[bool, typer.Option("--secure-cookies", help="Mark the session cookie Secure (behind https).")] = False,
    per_hour: Annotated[int, typer.Option("--per-hour", help="Submissions per team and program per hour.")] = 20,
    per_day: Annotated[int, typer.Option("--per-day", help="Submissions per team and program per day.")] = 100,
    new_admin_token: Annotated[bool, typer.Option("--new-admin-token", help="Print a new admin token and exit.")] = False,
) -> None:
    """Run the bias-bounty web service: API, web UI and evaluation workers.

    Example: [bold]groupwise serve --db sqlite:///bounty.db --program adult-bounty[/]
    """
    from groupwise.service import create_admin_token
    from groupwise.service import serve as run

    if new_admin_token:
        print(create_admin_token(db))
        return
    run(
        db, host=host, port=port, workers=workers, web_workers=web_workers, programs=program or [],
        admin_token=admin_token, secure_cookies=secure_cookies, submissions_per_hour=per_hour,
        submissions_per_day=per_day,
    )


@bounty_app.command("export")
def bounty_export(
    directory: Annotated[Path, typer.Argument(help="The program directory.")],
    out: Annotated[Path, typer.Argument(help="Directory to write the bundle to.")],
    version: Annotated[Optional[int], typer.Option(help="Version to export (default: current).")] = None,
) -> None:
    """Export a version of the model as a bundle (JSON of nodes and groups plus ONNX/skops files)."""
    from groupwise.bounty._cli import export_cmd

    export_cmd(directory, out, version=version, console=_console())


@bounty_app.command("predict")
def bounty_predict(
    bundle: Annotated[Path, typer.Argument(help="A bundle from groupwise bounty export.")],
    data: Annotated[Path, typer.Argument(help="Rows to predict (CSV, TSV, JSONL, Parquet).")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Where to write the predictions.")] = None,
) -> None:
    """Predict with an exported bundle; anyone can run it without the program."""
    from groupwise.bounty._cli import predict_cmd

    predict_cmd(bundle, data, out=out, console=_console())


@bounty_app.command("replay")
def bounty_replay(
    directory: Annotated[Path, typer.Argument(help="The program directory.")],
) -> None:
    """Re-run every logged decision from the start and check that the state is reproduced."""
    from groupwise.bounty._cli import replay_cmd

    replay_cmd(directory, console=_console())


asr_app = typer.Typer(help="Speech recognisers: serve one behind an OpenAI-compatible API.", no_args_is_help=True)
app.add_typer(asr_app, name="asr")


@asr_app.command("serve")
def asr_serve(
    asr: Annotated[str, typer.Option(help="Recogniser to serve: whisper (tiny.en; --option model=base), pocketsphinx, ...")] = "whisper",
    lm: Annotated[Optional[Path], typer.Option(help="Domain language model for pocketsphinx.")] = None,
    option: Annotated[Optional[list[str]], typer.Option("--option", help="Recogniser option KEY=VALUE. Repeatable.")] = None,
    host: Annotated[str, typer.Option(help="Loopback address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8010,
    max_mb: Annotated[float, typer.Option("--max-mb", help="Largest request accepted, in megabytes.")] = 25.0,
    rate: Annotated[float, typer.Option(help="Requests per second per client (token bucket).")] = 5.0,
    burst: Annotated[int, typer.Option(help="Requests a client may send at once before the rate applies.")] = 10,
) -> None:
    """Serve a recogniser at POST /v1/audio/transcriptions (OpenAI-compatible), on loopback.

    Example: [bold]groupwise asr serve --asr whisper --port 8010[/], then [bold]groupwise transcribe m.csv --asr http --option api=openai --option url=http://127.0.0.1:8010 -o h.csv[/]
    """
    from groupwise.speech._serve import serve as run

    run(asr, _transcribe_options(asr, lm, option), host=host, port=port, max_bytes=int(max_mb * 1024 * 1024), rate=rate, burst=burst)


def _program(argv: list[str]):  # noqa: ANN202 - a click command
    """The click program for ``argv``: only the command or command group it names.

    typer builds every command's options on each run; a run builds only those of the
    command it runs. Anything else (no command, ``--help``, a misspelt name) gets the
    whole program, so that help and "No such command" list every command.
    """
    from typer.main import get_command, get_command_name, get_group

    name = argv[0] if argv else None
    commands = [c for c in app.registered_commands
                if (c.name or get_command_name(c.callback.__name__)) == name]
    groups = [g for g in app.registered_groups if g.name == name]
    if not commands and not groups:
        return get_command(app)
    import copy

    narrowed = copy.copy(app)  # the program's own settings; new lists leave app's alone
    narrowed.registered_commands = commands
    narrowed.registered_groups = groups
    return get_group(narrowed)  # a group even of one command, as the whole program is


@functools.cache
def _spare_exit_collection() -> None:
    """Register, once, a :func:`gc.freeze` to run when the interpreter exits.

    The interpreter's last garbage collections walk every object still alive, which after
    importing pandas, polars and SciPy takes about a tenth of a second, only for the
    process to end. Frozen objects are skipped by those walks; modules are still torn
    down and the other exit handlers still run. Calling :func:`main` in a process that
    goes on (a test, say) changes nothing until that process exits.
    """
    import atexit
    import gc

    atexit.register(gc.freeze)


def main() -> None:
    """Entry point of the ``groupwise`` program."""
    _spare_exit_collection()
    try:
        _program(sys.argv[1:])()
    except GroupwiseError as exc:
        from rich.console import Console
        from rich.markup import escape

        Console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)


if __name__ == "__main__":
    main()
