"""Whisper throughput: one clip at a time against utterances packed into shared windows.

Whisper pads every clip to a 30-second window, so a 3-second utterance costs as much as
30 seconds. The whisper backend packs utterances into one window and splits the words
back by their timestamps. This script runs, on the same synthesised audio (clean and under
each last-mile condition):

- one clip at a time with Whisper's own temperature fallback (the reference);
- packed windows with Whisper's fallback (``fallback=whisper``);
- packed windows that fall back only on repetition loops (``fallback=loops``, the default),
  with 5 samples per temperature (the default) and with 1 (``best_of=1``).

For each it prints wall seconds, CPU seconds, the real-time factor as audio seconds per
wall second ("x real time"), and corpus WER with the default normalisation (lower case, no
punctuation) and with Whisper's English normaliser (numbers as digits, American spelling),
which is the fair one for Whisper's orthography.

    python benchmarks/whisper_packing.py [--accents en-us,en-gb-scotland,fr,vi] [--speakers 2 --utterances 6]
        [--conditions baseline,hum,telephone] [--model tiny.en] [--threads 2] [--beam-size 1]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: (label, backend options) compared on the same audio.
MODES = [
    ("one clip at a time, Whisper's fallback", {"pack": False, "fallback": "whisper"}),
    ("packed, Whisper's fallback", {"fallback": "whisper"}),
    ("packed, fallback on loops (default)", {"fallback": "loops"}),
    ("packed, fallback on loops, best_of=1", {"fallback": "loops", "best_of": 1}),
]


def _wer(refs: list[str], hyps: list[str]) -> float:
    from rapidfuzz.distance import Levenshtein

    errors = sum(Levenshtein.distance(r.split(), h.split()) for r, h in zip(refs, hyps))
    return errors / max(1, sum(len(r.split()) for r in refs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accents", default="en-us,en-gb-scotland,fr,vi")
    parser.add_argument("--speakers", type=int, default=2)
    parser.add_argument("--utterances", type=int, default=6)
    parser.add_argument("--conditions", default="baseline,hum,telephone")
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--beam-size", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import pandas as pd

    from groupwise.audit._text import parse_normalizer
    from groupwise.speech._asr import get_backend
    from groupwise.speech._audio import read_audio
    from groupwise.speech._conditions import parse_condition
    from groupwise.speech._normalize import parse_speech_normalizer

    work = Path(tempfile.mkdtemp(prefix="gw-whisper-bench-"))
    try:
        # The command line synthesises (eSpeak runs in worker processes).
        subprocess.run(
            [sys.executable, "-m", "groupwise", "corpus", "synth", str(work / "corpus"), "--accents", args.accents,
             "--speakers", str(args.speakers), "--utterances", str(args.utterances), "--seed", str(args.seed)],
            check=True, capture_output=True, env={**os.environ, "CI": "true"},
        )  # fmt: skip
        manifest = pd.read_csv(work / "corpus" / "manifest.csv")
        clean = [read_audio(work / "corpus" / a) for a in manifest["audio"]]
        refs = list(manifest["text"])
        default, english = parse_normalizer("default"), parse_speech_normalizer("english")
        default_refs, english_refs = default(refs), english(refs)
        words = sum(len(r.split()) for r in english_refs)
        print(f"{len(clean)} utterances, {sum(len(a) / r for a, r in clean):.1f} s of audio per condition, model "
              f"{args.model}, beam {args.beam_size}, {args.threads} threads, load average {os.getloadavg()[0]:.1f}")
        totals: dict[str, list[float]] = {label: [0.0, 0.0, 0.0, 0.0] for label, _ in MODES}
        print("| condition | mode | wall s | CPU s | x real time | WER (default) | WER (english) |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for name in args.conditions.split(","):
            transform = None if name == "baseline" else parse_condition(name)
            clips = clean if transform is None else [transform(a, r, seed=i) for i, (a, r) in enumerate(clean)]
            seconds = sum(len(a) / r for a, r in clips)
            for label, options in MODES:
                backend = get_backend(
                    "whisper", model=args.model, cpu_threads=args.threads, beam_size=args.beam_size, **options
                )
                backend.load()
                wall, cpu = time.perf_counter(), time.process_time()
                hyps = backend.transcribe_batch(clips)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                backend.close()
                wer = _wer(english_refs, english(hyps))
                totals[label] = [a + b for a, b in zip(totals[label], (wall, cpu, seconds, wer * words))]
                print(f"| {name} | {label} | {wall:.1f} | {cpu:.1f} | {seconds / wall:.1f} | "
                      f"{_wer(default_refs, default(hyps)):.3f} | {wer:.3f} |", flush=True)
        all_words = words * len(args.conditions.split(","))
        for label, (wall, cpu, seconds, errors) in totals.items():
            print(f"| all | {label} | {wall:.1f} | {cpu:.1f} | {seconds / wall:.1f} | | {errors / all_words:.3f} |")
        reference = totals[MODES[0][0]]
        for label, (wall, cpu, _, _) in list(totals.items())[1:]:
            print(f"{label}: {reference[0] / wall:.2f}x faster (wall), {reference[1] / cpu:.2f}x (CPU) than one clip at a time")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
