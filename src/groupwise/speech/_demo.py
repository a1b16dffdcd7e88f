"""The main job end to end: accented speech, a real recogniser, an audit and a last-mile test.

1. Synthesise an accented English corpus of clinical dictation with eSpeak NG (marked
   synthetic), and a separate language-model text from the same domain grammar.
2. Build a domain trigram language model and dictionary for PocketSphinx.
3. Transcribe every utterance with two recognisers, PocketSphinx (domain LM) and Whisper
   tiny.en (offline), at baseline, under a hospital hum (an imaging machine humming at
   1200 Hz) and over a telephone line, on all cores, cached.
4. For each recogniser: audit WER by accent and by voice gender (synthetic), list the
   coverage, and run the last-mile test (does each condition raise WER more for some
   accents than for the rest?); compare the recognisers per accent on the same
   utterances; state the smallest gap these sizes can detect, and say so when nothing
   is found.
5. Write ``DIR/report.html``, a self-contained page (plots embedded, no network), and the
   JSON of every number.
"""

from __future__ import annotations

import html
import os
import time
from pathlib import Path
from typing import Any

import pandas as pd

from groupwise._errors import InputError

__all__ = ["run_speech_demo", "DEMO_CONDITIONS"]

DEMO_CONDITIONS = {
    "hum:freq=1200,harmonics=3,snr=5": "hospital hum at 1200 Hz",
    "telephone": "telephone line",
}
QUICK_ACCENTS = ("en-us", "en-gb-scotland", "en-029", "es", "vi", "fr")
RECOGNISERS = {"pocketsphinx": "PocketSphinx (domain LM)", "whisper": "Whisper tiny.en"}
#: Whisper's decoding in the demo: greedy, one sample per fallback temperature. Packed this
#: way tiny.en transcribes about 12 times real time on 2 cores, with lower WER than one clip
#: at a time with Whisper's defaults (benchmarks/README.md), which keeps the full demo
#: within 10 minutes.
WHISPER_DECODING = {"beam_size": 1, "best_of": 1}
#: Speakers per accent and utterances per speaker: the full demo and --quick.
SIZES, SIZES_QUICK = (6, 4), (5, 3)
#: Power and level of the smallest-detectable-gap figures.
POWER, ALPHA = 0.8, 0.05


def power_table(audits: dict[str, Any]) -> pd.DataFrame:
    """Per recogniser and accent: WER, gap from overall and the smallest gap the data could detect.

    The smallest detectable gap (80% power, two-sided 5% level, before the correction for
    several accents) is read off the gap's own interval: half its width, divided by the
    interval's critical value, times (critical value + the 80% quantile). Gaps smaller
    than that are within the noise of this many speakers.
    """
    from scipy import stats

    rows = []
    for name, result in audits.items():
        for g in _groups(result):
            if g["family"] != "accent":
                continue
            low, high = g.get("gap_ci_low"), g.get("gap_ci_high")
            df = g.get("df") or 1e6
            crit = float(stats.t.ppf(1 - ALPHA / 2, df))
            mde = None if low is None or high is None else (high - low) / 2 / crit * (crit + float(stats.t.ppf(POWER, df)))
            rows.append(
                {
                    "recogniser": RECOGNISERS[name], "accent": g["group"]["accent"], "speakers": g["clusters"],
                    "wer": g["value"], "gap": g.get("gap"), "detectable_gap": mde, "flagged": bool(g.get("flagged")),
                    "status": g.get("status"),
                }
            )  # fmt: skip
    return pd.DataFrame(rows)


def _groups(result: Any) -> list[dict[str, Any]]:
    import json

    return json.loads(result.to_json())["groups"]


def power_findings(power: pd.DataFrame, speakers: int) -> list[str]:
    """Say what these sizes can and cannot show, and say it when nothing was found."""
    out = []
    for recogniser, rows in power.groupby("recogniser", sort=False):
        mde = rows["detectable_gap"].dropna()
        if mde.empty:
            out.append(f"{recogniser}: too few speakers for any accent gap to be tested.")
            continue
        size = f"with {speakers} speakers per accent, only gaps of about {100 * mde.median():.0f} WER points or more are detectable (80% power)"
        if not rows["flagged"].any():
            out.append(f"{recogniser}: no accent differs detectably from the overall WER; {size}, so smaller gaps may exist.")
        else:
            out.append(f"{recogniser}: {size}.")
    return out


def power_html(power: pd.DataFrame, speakers: int) -> str:
    """The power table as HTML."""
    def pts(x: Any) -> str:
        return "" if x is None or pd.isna(x) else f"{100 * x:.1f}"

    rows = "".join(
        f"<tr><td>{html.escape(r.recogniser)}</td><td>{html.escape(r.accent)}</td><td>{r.speakers}</td>"
        f"<td>{pts(r.wer)}</td><td>{pts(r.gap)}</td><td>{pts(r.detectable_gap)}</td><td>{'yes' if r.flagged else 'no'}</td></tr>"
        for r in power.itertuples()
    )
    return (
        f"<p>Smallest gap from the overall WER (in WER points) that {speakers} speakers per accent detect with 80% "
        "power at the two-sided 5% level (before the correction for several accents), from each gap's own "
        "interval. A gap smaller than that can be real and still go unflagged.</p>"
        "<table><tr><th>recogniser</th><th>accent</th><th>speakers</th><th>WER %</th><th>gap</th>"
        f"<th>detectable gap</th><th>flagged</th></tr>{rows}</table>"
    )


def accents_table(manifest: pd.DataFrame) -> str:
    """Each accent's measured phoneme edit rate from en-us and share of words read by eSpeak's English."""
    cols = ["accent", "phoneme_edit_rate", "nearest_english", "english_read"]
    if not set(cols) <= set(manifest.columns):
        return "<p>Not measured.</p>"
    rows = "".join(
        f"<tr><td>{html.escape(str(r.accent))}</td><td>{100 * r.phoneme_edit_rate:.1f}</td>"
        f"<td>{html.escape(str(r.nearest_english))}</td><td>{100 * r.english_read:.0f}</td></tr>"
        for r in manifest.drop_duplicates("accent")[cols].itertuples()
    )
    return (
        "<p>Phoneme edit rate: Levenshtein distance between the IPA eSpeak speaks for the corpus sentences in "
        "this accent and in en-us, per 100 phoneme characters. Read by English: the share of phonemes a "
        "non-English voice produced with eSpeak's English translator instead of its own rules.</p>"
        "<table><tr><th>accent</th><th>phoneme edit rate from en-us, %</th><th>nearest English variety</th>"
        f"<th>read by English, %</th></tr>{rows}</table>"
    )


def run_speech_demo(
    out: str | Path, *, quick: bool = False, seed: int = 0, workers: int | None = None, console: Any = None,
    accents: tuple[str, ...] | None = None, speakers: int | None = None, utterances: int | None = None,
    conditions: tuple[str, ...] | None = None,
) -> Path:
    """Run the demo into ``out`` and return the path of ``report.html``.

    ``accents``, ``speakers`` (per accent) and ``utterances`` (per speaker) override the
    sizes that ``quick`` chooses, and ``conditions`` (keys of :data:`DEMO_CONDITIONS`, all
    by default) the last-mile conditions, for a smaller run of the same path. The
    statistics need at least 5 speakers per accent and 10 utterances per accent.
    """
    from rich.console import Console

    from groupwise.audit._audit import audit
    from groupwise.audit._compare import compare
    from groupwise.audit._coverage import coverage
    from groupwise.audit._lastmile import lastmile
    from groupwise.audit._report import audit_table, coverage_table, figure_data_uri, html_report, lastmile_table
    from groupwise.speech._corpus import load_manifest
    from groupwise.speech._lm import build_lm
    from groupwise.speech._synth import DEFAULT_ACCENTS, synthesize_corpus
    from groupwise.speech._normalize import parse_speech_normalizer
    from groupwise.speech._transcribe import transcribe

    console = console or Console()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"the output path {str(out)!r} is a file", fix="pass --out with a directory name")
    out.mkdir(parents=True, exist_ok=True)
    workers = workers or os.cpu_count() or 1
    default_speakers, default_utterances = SIZES_QUICK if quick else SIZES
    accents = tuple(accents) if accents else (QUICK_ACCENTS if quick else DEFAULT_ACCENTS)
    speakers = default_speakers if speakers is None else speakers
    utterances = default_utterances if utterances is None else utterances
    if isinstance(conditions, str):  # one condition, not its characters
        conditions = (conditions,)
    chosen = list(DEMO_CONDITIONS) if conditions is None else list(conditions)
    unknown = [c for c in chosen if c not in DEMO_CONDITIONS]
    if unknown or not chosen:
        raise InputError(
            f"the demo has no last-mile condition {unknown[0]!r}" if unknown else "the demo needs a last-mile condition",
            fix=f"choose among {', '.join(map(repr, DEMO_CONDITIONS))}",
        )
    names = {c: DEMO_CONDITIONS[c] for c in dict.fromkeys(chosen)}
    if speakers < 5 or speakers * utterances < 10:
        raise InputError(
            f"{speakers} speakers per accent with {utterances} utterances each are too few for the demo's statistics",
            fix="use at least 5 speakers per accent and at least 10 utterances per accent (speakers x utterances)",
        )
    start = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str, t0: float) -> None:
        timings[name] = time.perf_counter() - t0
        console.print(f"[dim]{name}: {timings[name]:.1f} s[/]")

    t0 = time.perf_counter()
    corpus_dir = out / "corpus"
    synthesize_corpus(
        corpus_dir, accents=accents, speakers=speakers, utterances=utterances, domain="clinical", seed=seed,
        workers=workers,
    )
    lap("synthesis", t0)
    t0 = time.perf_counter()
    lm_path = out / "domain.lm"
    build_lm(corpus_dir / "lm_train.txt", out=lm_path)
    lap("language model", t0)

    t0 = time.perf_counter()
    manifest = load_manifest(corpus_dir / "manifest.csv")
    conditions = ["baseline", *names]
    sphinx = transcribe(
        manifest, backend="pocketsphinx", backend_options={"lm": str(lm_path)},
        conditions=conditions, seed=seed, workers=workers, cache=out / "cache",
    )  # fmt: skip
    lap("transcription (PocketSphinx)", t0)
    t0 = time.perf_counter()
    # One process using every core: packing needs many utterances per call, and one
    # model with all threads beats several models fighting for two cores.
    whisper = transcribe(
        manifest, backend="whisper", backend_options={"model": "tiny.en", "cpu_threads": workers, **WHISPER_DECODING},
        conditions=conditions, seed=seed, workers=1, cache=out / "cache",
    )  # fmt: skip
    lap("transcription (Whisper tiny.en)", t0)
    transcripts = pd.concat(
        [sphinx.assign(recogniser=RECOGNISERS["pocketsphinx"]), whisper.assign(recogniser=RECOGNISERS["whisper"])],
        ignore_index=True,
    )
    transcripts.to_parquet(out / "transcripts.parquet")

    t0 = time.perf_counter()
    provenance = dict(manifest.attrs.get("provenance", {}))
    normalize = parse_speech_normalizer("english")
    min_clusters = 5
    audits, lastmiles, coverages = {}, {}, {}
    for name, label in RECOGNISERS.items():
        frame = transcripts[transcripts["recogniser"] == label]
        base = frame[frame["condition"] == "baseline"]
        audits[name] = audit(
            base, metric="wer", by=["accent", "voice_gender"], cluster="speaker", provenance=provenance,
            min_clusters=min_clusters, min_examples=10, seed=seed, normalize=normalize,
        )  # fmt: skip
        lastmiles[name] = lastmile(
            frame, by="accent", cluster="speaker", names=names, provenance=provenance,
            min_clusters=min_clusters, min_examples=10, seed=seed, normalize=normalize,
        )  # fmt: skip
        coverages[name] = coverage(
            base, dims="accent,voice_gender", cluster="speaker", metric="wer", target_half_width=0.05,
            min_clusters=min_clusters, min_examples=10,
        )  # fmt: skip
    # The paired comparison of the recognisers: the same utterances, PocketSphinx as the
    # reference "condition" and Whisper as the other, per accent.
    base = transcripts[transcripts["condition"] == "baseline"].drop(columns="condition")
    paired = compare(
        base, by="accent", cluster="speaker", condition="recogniser", baseline=RECOGNISERS["pocketsphinx"],
        item="audio", provenance=provenance, min_clusters=min_clusters, min_examples=10, normalize=normalize,
        drop_unpaired=True,  # an utterance one recogniser failed on is left out, and counted
    )  # fmt: skip
    lap("statistics", t0)
    for name in RECOGNISERS:
        console.print(f"[bold]{RECOGNISERS[name]}[/]")
        audits[name].render(console)
        lastmiles[name].render(console)
        audits[name].to_json(out / f"audit_{name}.json")
        lastmiles[name].to_json(out / f"lastmile_{name}.json")
        coverages[name].to_json(out / f"coverage_{name}.json")
    paired.render(console)
    paired.to_json(out / "recognisers.json")
    power = power_table(audits)
    power.to_csv(out / "power.csv", index=False)

    audio_hours = float(sphinx.loc[sphinx["condition"] == "baseline", "audio_seconds"].sum()) / 3600
    intro = (
        f"Clinical dictation synthesised with eSpeak NG in {len(accents)} accents "
        f"({speakers} synthetic speakers each, {utterances} utterances per speaker; accents and voice "
        "gender are <b>synthetic</b>: eSpeak's models of accents, not people; each accent's phonetic distance "
        "from General American is measured and shown below, and voices that read English with eSpeak's own "
        "English are refused), transcribed by two recognisers on the same utterances: PocketSphinx with a domain "
        "trigram language model built from separate text of the same domain (never the test sentences), and "
        f"Whisper tiny.en (offline, from a wheel; beam {WHISPER_DECODING['beam_size']}, best of {WHISPER_DECODING['best_of']} "
        "at the higher temperatures tried only when a window's text repeats itself; utterances packed into "
        "shared windows). Both are scored after Whisper's English normaliser (numbers as "
        f"digits), on {audio_hours * 60:.1f} minutes of audio per condition. Intervals and tests are "
        "cluster-robust over speakers, Holm-corrected."
    )
    findings = []
    for name, label in RECOGNISERS.items():
        findings += [f"{label}: {f}" for f in audits[name].findings() + lastmiles[name].findings()]
    findings += [f"Whisper tiny.en against PocketSphinx: {f}" for f in paired.findings()]
    findings += power_findings(power, speakers)
    sections = [("Accents: measured distance from General American", accents_table(manifest))]
    for name, label in RECOGNISERS.items():
        audit_uri = figure_data_uri(audits[name].plot(out / f"wer_by_accent_{name}.png"))
        last_uri = figure_data_uri(lastmiles[name].plot(out / f"lastmile_{name}.png"))
        sections += [
            (f"{label}: WER by accent and voice gender", f"<img class='plot' id='audit-plot-{name}' alt='WER by accent with intervals, {label}' src='{audit_uri}'>" + audit_table(audits[name])),
            (f"{label}: last mile, change in WER under each condition", f"<img class='plot' id='lastmile-plot-{name}' alt='Change in WER per accent, {label}' src='{last_uri}'>" + lastmile_table(lastmiles[name])),
        ]  # fmt: skip
    sections += [
        ("Whisper tiny.en against PocketSphinx, per accent (same utterances)", lastmile_table(paired)),
        ("Power at these sizes", power_html(power, speakers)),
        ("Coverage of accent x voice gender", coverage_table(coverages["pocketsphinx"])),
        ("Run", "<ul>" + "".join(f"<li>{k}: {v:.1f} s</li>" for k, v in timings.items()) + f"<li>workers: {workers}</li></ul>"),
    ]  # fmt: skip
    html = html_report(
        title="groupwise demo: word error rate of two recognisers across accents and last-mile conditions",
        intro=intro,
        findings=findings,
        sections=sections,
    )
    report = out / "report.html"
    report.write_text(html, encoding="utf-8")
    from groupwise.card._demo import write_demo_card

    for folder in write_demo_card(out, kind="speech"):
        console.print(f"Wrote the service card {folder / 'card.html'}")
    console.print(f"Wrote {report} in {time.perf_counter() - start:.0f} s.")
    return report
