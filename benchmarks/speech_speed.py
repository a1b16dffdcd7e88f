"""Speech throughput: synthesis, PocketSphinx transcription at 1 and 2 workers, transforms.

Prints, in one run on the same corpus:

- synthesis speed (seconds of audio per wall second, eSpeak NG, one process);
- PocketSphinx with a domain LM: audio hours per wall-clock hour at 1 and at 2 workers
  (cold cache each time), their ratio (target >= 1.8 on 2 cores), and the real-time factor
  (wall seconds per audio second, 1 worker);
- the overhead of the last-mile transforms relative to recognition: the time to apply each
  condition to every utterance, as a fraction of the time to recognise them (target < 5%).

    python benchmarks/speech_speed.py [--speakers 3 --utterances 6]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

CONDITIONS = ["hum:freq=1200,harmonics=3,snr=5", "telephone", "noise:kind=babble,snr=10", "reverb:rt60=0.6"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--speakers", type=int, default=3)
    parser.add_argument("--utterances", type=int, default=6)
    args = parser.parse_args()

    from groupwise.speech._audio import read_audio
    from groupwise.speech._conditions import parse_condition
    from groupwise.speech._corpus import load_manifest
    from groupwise.speech._lm import build_lm
    from groupwise.speech._synth import DEFAULT_ACCENTS, synthesize_corpus
    from groupwise.speech._transcribe import transcribe

    work = Path(tempfile.mkdtemp(prefix="gw-speech-bench-"))
    try:
        start = time.perf_counter()
        synthesize_corpus(work / "corpus", accents=DEFAULT_ACCENTS, speakers=args.speakers,
                          utterances=args.utterances, workers=1, progress=False)
        synth_wall = time.perf_counter() - start
        manifest = load_manifest(work / "corpus" / "manifest.csv")
        audio = [read_audio(p) for p in manifest["audio"]]
        seconds = sum(len(a) / r for a, r in audio)
        print(f"corpus: {len(manifest)} utterances, {seconds / 60:.1f} minutes of audio")
        print(f"synthesis (1 process): {seconds / synth_wall:.0f} s of audio per wall second")
        build_lm(work / "corpus" / "lm_train.txt", out=work / "domain.lm")

        walls = {}
        for workers in (1, 2):
            cache = work / f"cache{workers}"
            start = time.perf_counter()
            transcribe(manifest, backend="pocketsphinx", backend_options={"lm": str(work / "domain.lm")},
                       workers=workers, cache=cache, progress=False)
            walls[workers] = time.perf_counter() - start
            print(f"PocketSphinx, {workers} worker(s): {seconds / walls[workers] * 1:.1f} audio hours per wall hour "
                  f"({walls[workers]:.1f} s)")
        print(f"speedup 2 workers / 1 worker: {walls[1] / walls[2]:.2f}x")
        print(f"real-time factor (1 worker): {walls[1] / seconds:.3f}")

        for spec in CONDITIONS:
            condition = parse_condition(spec)
            runs = []
            for _ in range(3):
                start = time.perf_counter()
                for i, (a, r) in enumerate(audio):
                    condition(a, r, seed=i)
                runs.append(time.perf_counter() - start)
            cost = statistics.median(runs)
            print(f"transform {spec}: {cost:.3f} s for the corpus, {100 * cost / walls[1]:.2f}% of recognition")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
