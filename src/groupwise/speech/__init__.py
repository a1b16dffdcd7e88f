"""Speech: corpora, synthetic accented speech, recognisers and last-mile conditions.

The public surface of the speech pipeline:

- corpora: :func:`load_corpus` (generic manifest, Common Voice TSV, audiofolder);
- synthetic accented English: :func:`synthesize_corpus` (eSpeak NG or Piper) and the
  :class:`Voice` it uses; :func:`measure_accents` checks that an accent is one;
- domain text and language models: :func:`split_test_and_train`, :func:`build_lm`;
- recognisers: :func:`get_backend` (``pocketsphinx``, ``whisper``, ``whisper-cpp``,
  ``http``, ``command``) and :func:`transcribe` (cached, resumable, parallel);
  :func:`parse_speech_normalizer` adds Whisper's English normaliser to the audit's;
- last-mile conditions: :func:`parse_condition` (``hum:freq=1200``, ``telephone``, ...).

The statistics live in the engine: :func:`groupwise.audit` and :func:`groupwise.lastmile`.
"""

from groupwise.speech._accents import measure_accents
from groupwise.speech._asr import BACKENDS, Backend, BackendUnavailable, TranscriptionError, get_backend
from groupwise.speech._audio import AudioError, read_audio
from groupwise.speech._conditions import CONDITIONS, Condition, describe_conditions, parse_condition
from groupwise.speech._corpus import CorpusError, load_audiofolder, load_common_voice, load_corpus, load_manifest
from groupwise.speech._espeak import Voice, available_languages, synthesize
from groupwise.speech._lm import build_lm
from groupwise.speech._normalize import parse_speech_normalizer
from groupwise.speech._synth import DEFAULT_ACCENTS, ENGLISH_VARIETIES, synthesize_corpus
from groupwise.speech._textgen import DOMAINS, split_test_and_train
from groupwise.speech._transcribe import transcribe

__all__ = [
    "BACKENDS",
    "CONDITIONS",
    "DEFAULT_ACCENTS",
    "DOMAINS",
    "ENGLISH_VARIETIES",
    "AudioError",
    "Backend",
    "BackendUnavailable",
    "Condition",
    "CorpusError",
    "TranscriptionError",
    "Voice",
    "available_languages",
    "build_lm",
    "describe_conditions",
    "get_backend",
    "load_audiofolder",
    "load_common_voice",
    "load_corpus",
    "load_manifest",
    "measure_accents",
    "parse_condition",
    "parse_speech_normalizer",
    "read_audio",
    "split_test_and_train",
    "synthesize",
    "synthesize_corpus",
    "transcribe",
]
