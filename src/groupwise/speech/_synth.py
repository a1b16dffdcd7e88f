"""A synthetic accented English corpus from eSpeak NG.

No accented human speech can be downloaded here, so groupwise synthesises a test corpus:
English varieties that eSpeak NG models (General American, Received Pronunciation,
Scottish, Lancastrian, West Midlands, Caribbean, New York...) and non-native English made
by other languages' voices reading English text (French, German, Hindi, Vietnamese,
Mandarin, Russian...). Each accent gets several "speakers" through voice variants, pitch
and rate. Every accent reads the same sentences, so accents are compared on equal text.

The corpus is marked synthetic everywhere: the manifest's sidecar provenance file says so
for ``accent``, ``l1`` and ``voice_gender``, and a synthetic voice's accent is eSpeak's
model of that accent, not a person's. It is a way to extend coverage and to exercise a
recogniser, as the seed article suggests, not a stand-in for people.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from groupwise._errors import InputError

__all__ = ["ENGLISH_VARIETIES", "NON_NATIVE", "DEFAULT_ACCENTS", "synthesize_corpus"]

ENGLISH_VARIETIES = (
    "en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc",
)
#: Other languages' voices reading English; the value is the speaker's first language.
NON_NATIVE = {
    "fr": "fr", "de": "de", "hi": "hi", "vi": "vi", "zh": "zh", "ru": "ru", "ar": "ar", "es": "es", "pt": "pt",
}
# German, Spanish and Portuguese voices read most English words by their own spelling rules
# (WER near 100% with PocketSphinx), so the default set leaves them out; they can be asked for.
DEFAULT_ACCENTS = ENGLISH_VARIETIES + ("fr", "hi", "vi", "zh", "ru", "ar")

_VARIANTS = ("m1", "f1", "m3", "f2", "m2", "f3", "m4", "f4", "m5", "m6", "m7", "f5")
#: Standard deviation of the white noise floor added to every synthesised utterance.
NOISE_FLOOR = 1e-3
PROVENANCE = {"accent": "synthetic", "l1": "synthetic", "voice_gender": "synthetic", "domain": "synthetic"}


def _speakers(accents: Sequence[str], per_accent: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    out = []
    for accent in accents:
        order = rng.permutation(len(_VARIANTS))
        for j in range(per_accent):
            variant = _VARIANTS[order[j % len(_VARIANTS)]]
            out.append(
                {
                    "accent": accent,
                    "index": j,
                    "speaker": f"{accent}-{j:02d}",
                    "variant": variant,
                    "pitch": int(rng.integers(30, 71)),
                    "rate": int(rng.integers(140, 186)),
                }
            )
    return out


def _synth_speaker(job: dict[str, Any]) -> list[dict[str, Any]]:
    """Worker: synthesise one speaker's utterances and write them (runs in a process)."""
    from groupwise.speech._audio import resample, write_wav
    from groupwise.speech._espeak import Voice, synthesize

    voice = Voice(job["accent"], variant=job["variant"], rate=job["rate"], pitch=job["pitch"])
    folder = Path(job["out"]) / "wavs" / job["accent"] / job["speaker"]
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, text in enumerate(job["sentences"]):
        path = folder / f"{i:03d}.wav"
        if not path.exists():
            audio, rate = synthesize(text, voice)
            audio = resample(audio, rate, job["sample_rate"])
            # Leading and trailing pauses and a microphone noise floor (about -60 dBFS), as a
            # recording would have. eSpeak's digital silence is not just unrealistic: it
            # throws PocketSphinx's feature normalisation off, and in a probe on this corpus
            # it tripled the deletions (WER 0.62 without a floor, 0.42 with it).
            pad = np.zeros(int(0.25 * job["sample_rate"]), dtype=np.float32)
            signal = np.concatenate([pad, 0.8 * audio, pad])
            floor = np.random.default_rng([job["seed"], job["index"], i, len(job["accent"])])
            signal = signal + NOISE_FLOOR * floor.standard_normal(signal.size).astype(np.float32)
            tmp = path.with_suffix(".tmp.wav")
            write_wav(tmp, signal, job["sample_rate"])
            os.replace(tmp, path)
        rows.append(
            {
                "audio": str(path.relative_to(job["out"])),
                "text": text,
                "speaker": job["speaker"],
                "accent": job["accent"],
                "l1": "en" if job["accent"].startswith("en") else NON_NATIVE.get(job["accent"], job["accent"]),
                "voice_gender": voice.gender,
                "domain": job["domain"],
                "voice": voice.spec,
                "pitch": job["pitch"],
                "rate": job["rate"],
            }
        )
    return rows


def _is_voice(name: str) -> bool:
    from groupwise.speech._espeak import _engine

    try:
        _engine().resolve(name)
    except InputError:
        return False
    return True


def synthesize_corpus(
    out: str | os.PathLike[str],
    *,
    accents: Sequence[str] = DEFAULT_ACCENTS,
    speakers: int = 4,
    utterances: int = 10,
    domain: str = "clinical",
    seed: int = 0,
    workers: int = 1,
    sample_rate: int = 16000,
    lm_sentences: int = 2000,
    progress: bool = True,
) -> pd.DataFrame:
    """Synthesise an accented corpus into ``out`` and return its manifest.

    Writes ``out/wavs/<accent>/<speaker>/NNN.wav`` (16-bit mono), ``out/manifest.csv``
    (``audio``, ``text``, ``speaker``, ``accent``, ``l1``, ``voice_gender``, ``domain``,
    ``voice``, ``pitch``, ``rate``), ``out/manifest.csv.provenance.json`` (the synthetic
    columns) and ``out/lm_train.txt``: sentences from the same domain grammar for a
    language model, none of them a test sentence. Files already there are kept, so an
    interrupted run resumes.

    Parameters
    ----------
    out : path
    accents : sequence of str
        eSpeak voice names; English varieties (``en-*``) and other languages' voices.
    speakers : int, default=4
        Speakers per accent.
    utterances : int, default=10
        Utterances per speaker. Speaker ``j`` of every accent reads the same sentences.
    domain : str, default="clinical"
    seed : int
    workers : int, default=1
        Processes (eSpeak NG is not thread-safe).
    sample_rate : int, default=16000
    lm_sentences : int, default=2000
        Sentences in ``lm_train.txt``.
    progress : bool, default=True
    """
    from groupwise._io import check_scalar
    from groupwise.speech._espeak import available_languages
    from groupwise.speech._textgen import split_test_and_train

    check_scalar(speakers, "speakers", int, min_val=1)
    check_scalar(utterances, "utterances", int, min_val=1)
    check_scalar(workers, "workers", int, min_val=1)
    accents = list(dict.fromkeys(accents))
    if not accents:
        raise InputError("no accents were given", fix="pass --accents, e.g. en-us,en-gb-scotland,hi")
    known = set(available_languages())
    unknown = [a for a in accents if not _is_voice(a)]
    if unknown:
        raise InputError(
            f"eSpeak NG has no voice called {', '.join(map(repr, unknown))}",
            fix=f"use voices such as {', '.join(DEFAULT_ACCENTS)} (all: {', '.join(sorted(known)[:60])} ...)",
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    test, train = split_test_and_train(domain, n_test=speakers * utterances, n_train=lm_sentences, seed=seed)
    (out / "lm_train.txt").write_text("\n".join(train) + "\n", encoding="utf-8")
    jobs = [
        {
            **spk,
            "sentences": test[spk["index"] * utterances : (spk["index"] + 1) * utterances],
            "out": str(out),
            "domain": domain,
            "sample_rate": sample_rate,
            "seed": seed,
        }
        for spk in _speakers(accents, speakers, seed)
    ]
    rows: list[dict[str, Any]] = []
    from rich.progress import Progress

    with Progress(transient=True, disable=not progress) as bar:
        task = bar.add_task("Synthesising speech", total=len(jobs) * utterances)
        if workers == 1:
            for job in jobs:
                rows += _synth_speaker(job)
                bar.advance(task, utterances)
        else:
            with ProcessPoolExecutor(workers) as pool:
                for result in pool.map(_synth_speaker, jobs):
                    rows += result
                    bar.advance(task, utterances)
    manifest = pd.DataFrame(rows)
    manifest.to_csv(out / "manifest.csv", index=False)
    (out / "manifest.csv.provenance.json").write_text(json.dumps(PROVENANCE, indent=2) + "\n", encoding="utf-8")
    manifest.attrs["provenance"] = dict(PROVENANCE)
    return manifest

