"""Whisper throughput: one clip at a time against utterances packed into shared windows.

Whisper pads every clip to a 30-second window, so a 3-second utterance costs as much as
30 seconds. The whisper backend packs utterances into one window and splits the words
back by their timestamps. This script runs both on the same synthesised audio and prints,
for each: wall seconds, CPU seconds, the real-time factor as audio seconds per wall second
("x real time"), and corpus WER with the default normalisation (lower case, no
punctuation) and with Whisper's English normaliser (numbers as digits, American
spelling), which is the fair one for Whisper's orthography.

    python benchmarks/whisper_packing.py [--accents en-us,en-gb-scotland,fr,vi] [--speakers 2 --utterances 6]
        [--model tiny.en] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path


def _wer(refs: list[str], hyps: list[str]) -> float:
    from rapidfuzz.distance import Levenshtein

    errors = sum(Levenshtein.distance(r.split(), h.split()) for r, h in zip(refs, hyps))
    return errors / max(1, sum(len(r.split()) for r in refs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accents", default="en-us,en-gb-scotland,fr,vi")
    parser.add_argument("--speakers", type=int, default=2)
    parser.add_argument("--utterances", type=int, default=6)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--beam-size", type=int, default=5)
    args = parser.parse_args()

    from groupwise.audit._text import parse_normalizer
    from groupwise.speech._asr import get_backend
    from groupwise.speech._audio import read_audio
    from groupwise.speech._normalize import parse_speech_normalizer
    from groupwise.speech._synth import synthesize_corpus

    work = Path(tempfile.mkdtemp(prefix="gw-whisper-bench-"))
    try:
        manifest = synthesize_corpus(
            work, accents=args.accents.split(","), speakers=args.speakers, utterances=args.utterances,
            progress=False, check_accents=False,
        )  # fmt: skip
        clips = [read_audio(work / a) for a in manifest["audio"]]
        refs = list(manifest["text"])
        audio_seconds = sum(len(a) / r for a, r in clips)
        print(f"{len(clips)} utterances, {audio_seconds:.1f} s of audio, model {args.model}, {args.threads} threads, "
              f"load average {os.getloadavg()[0]:.1f}")
        default, english = parse_normalizer("default"), parse_speech_normalizer("english")
        rows = []
        for label, pack in (("one clip at a time", False), ("packed windows", True)):
            backend = get_backend(
                "whisper", model=args.model, pack=pack, cpu_threads=args.threads, beam_size=args.beam_size
            )
            backend.load()
            wall, cpu = time.perf_counter(), time.process_time()
            hyps = backend.transcribe_batch(clips)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            rows.append(
                (label, wall, cpu, audio_seconds / wall, _wer(default(refs), default(hyps)),
                 _wer(english(refs), english(hyps)))
            )  # fmt: skip
            backend.close()
        print("| mode | wall s | CPU s | x real time | WER (default) | WER (english) |")
        print("| --- | --- | --- | --- | --- | --- |")
        for label, wall, cpu, speed, wer_default, wer_english in rows:
            print(f"| {label} | {wall:.1f} | {cpu:.1f} | {speed:.1f} | {wer_default:.3f} | {wer_english:.3f} |")
        print(f"speedup of packing: {rows[0][1] / rows[1][1]:.2f}x wall, {rows[0][2] / rows[1][2]:.2f}x CPU")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
