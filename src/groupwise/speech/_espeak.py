"""Synthetic accented English speech from eSpeak NG, driven through ctypes.

eSpeak NG comes from the ``espeakng-loader`` wheel (its shared library and its
``espeak-ng-data`` directory); no system installation is needed. A :class:`Voice` is one
synthetic speaker: an eSpeak voice (an English variety such as ``"en-gb-scotland"``, or
another language's voice such as ``"hi"`` reading English text, which gives a
non-native accent), an optional voice variant (``"m3"``, ``"f2"``, ...), a speaking rate
and a pitch.

The eSpeak library keeps its state in process globals and is not thread-safe. This module
loads a private copy of it lazily, once per process, and serialises calls with a lock, so
calling :func:`synthesize` from several threads is safe but never faster. To synthesise
in parallel use processes, for example :class:`concurrent.futures.ProcessPoolExecutor`.

:func:`synthesize` is deterministic: the same text and voice give the same samples,
whatever was synthesised before in the process and in whichever process it runs.
eSpeak itself carries state from one utterance to the next (the phase of its pitch
flutter, glottal cycle counters, filter memories), so the library is reloaded before
each utterance; that costs well under a millisecond.

Examples
--------
>>> audio, rate = synthesize("Hello world.", Voice("en-gb-scotland", "f2"))
>>> rate, audio.dtype, audio.ndim
(22050, dtype('float32'), 1)
"""

from __future__ import annotations

import ctypes
import difflib
import functools
import os
import re
import shutil
import tempfile
import threading
import weakref
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from groupwise._errors import InputError

__all__ = ["Voice", "available_languages", "available_variants", "phonemize", "synthesize"]

MIN_RATE, MAX_RATE = 80, 450  # eSpeak's espeakRATE_MINIMUM and espeakRATE_MAXIMUM

# Values from espeak-ng's speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # otherwise eSpeak calls exit() when its data is missing
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE, _PITCH, _RANGE = 1, 3, 4
_EE_OK = 0
_PHONEMES_IPA = 0x02

# eSpeak keeps synthesis state in static variables from one utterance to the next (the
# phase of its pitch flutter, glottal cycle counters, Klatt and speechPlayer filters), so
# the same text comes out slightly differently every time. Every utterance therefore
# starts from a freshly loaded library, and both random generators it uses are seeded.
_RAND_SEED = 0
# espeak_Terminate does not free the second translator eSpeak creates when it switches to
# English for words a voice cannot read (Latin script in a Hindi voice, say): about 170 kB
# per reload, in the process that synthesises. Nothing here pokes into the library's
# internals to free it (that needs addresses of private symbols, which differ between
# builds); synthesize_corpus synthesises in worker processes that are replaced after a
# few speakers instead, so the memory goes back when they exit.

_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _EspeakVoice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker.

    Parameters
    ----------
    language : str
        eSpeak voice name, e.g. ``"en-us"``, ``"en-gb-scotland"``, ``"hi"`` (see
        :func:`available_languages`). Language codes eSpeak lists for a voice are accepted
        too (``"en-gb"`` is eSpeak's ``"en"``, ``"zh"`` its ``"cmn"``). Case-insensitive;
        stored in lower case.
    variant : str, optional
        A voice variant, the name of a file in ``espeak-ng-data/voices/!v`` such as
        ``"m3"``, ``"f2"`` or ``"klatt"`` (see :func:`available_variants`).
    rate : int
        Speaking rate in words per minute, 80 to 450.
    pitch : int
        Base pitch, 0 to 99 (50 is the voice's own).
    pitch_range : int
        Pitch range (intonation), 0 to 99 (0 is monotone, 50 the voice's own).

    Examples
    --------
    >>> v = Voice("hi", "f2", rate=140)
    >>> v.spec, v.gender
    ('hi+f2', 'female')
    >>> Voice("EN-US").spec, Voice("en-us").gender
    ('en-us', 'male')
    >>> Voice("en-us", rate=20)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    groupwise._errors.InputError: rate must be between 80 and 450 words per minute, got 20. ...
    """

    language: str
    variant: str | None = None
    rate: int = 160
    pitch: int = 50
    pitch_range: int = 50

    def __post_init__(self) -> None:
        if not isinstance(self.language, str) or not self.language.strip():
            raise InputError(
                f"the voice language must be a non-empty string, got {self.language!r}",
                fix="pass an eSpeak voice name such as 'en-us' (see available_languages())",
            )
        language = self.language.strip().lower()
        if "+" in language:
            raise InputError(
                f"the voice language {self.language!r} contains a variant",
                fix="pass the variant separately, e.g. Voice('en-us', variant='f2')",
            )
        object.__setattr__(self, "language", language)
        if self.variant is not None and (
            not isinstance(self.variant, str)
            or not self.variant.strip()
            or any(c in self.variant for c in "+/\\")
        ):
            raise InputError(
                f"the voice variant must be a variant file name, got {self.variant!r}",
                fix="pass a name such as 'm3' or 'f2' (see available_variants()) or None",
            )
        for name, low, high, unit in (
            ("rate", MIN_RATE, MAX_RATE, " words per minute"),
            ("pitch", 0, 99, ""),
            ("pitch_range", 0, 99, ""),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise InputError(
                    f"{name} must be an integer, got {value!r}",
                    fix=f"pass a whole number from {low} to {high}",
                )
            if not low <= value <= high:
                raise InputError(
                    f"{name} must be between {low} and {high}{unit}, got {value}",
                    fix=f"pass a {name} from {low} to {high}",
                )
            object.__setattr__(self, name, int(value))

    @property
    def spec(self) -> str:
        """The voice name with its variant, as eSpeak writes it (``"hi+f2"``)."""
        return self.language if self.variant is None else f"{self.language}+{self.variant}"

    @property
    def gender(self) -> str:
        """``"female"``, ``"male"`` or ``"unknown"``: the gender the voice sounds as.

        eSpeak's voices without a variant are male. ``f1``... variants are female and
        ``m1``... male; other variants use the gender their variant file declares, and
        ``"unknown"`` when it declares none (``klatt``, ``whisper``'s effects and the
        like are modifications of the base voice rather than speakers).
        """
        if self.variant is None:
            return "male"
        match = re.fullmatch(r"([fm])\d+", self.variant)
        if match:
            return "female" if match.group(1) == "f" else "male"
        return _declared_gender(self.variant) or "unknown"


def available_languages() -> list[str]:
    """Names of the voices eSpeak NG can speak with, sorted.

    These are eSpeak's voice file names in lower case (``"en"`` is British English,
    ``"cmn"`` Mandarin, ``"vi"`` Northern Vietnamese); mbrola voices are not included.

    Examples
    --------
    >>> names = available_languages()
    >>> {"en-us", "en-gb-scotland", "hi", "cmn"} <= set(names)
    True
    """
    with _LOCK:
        return sorted(_engine().voice_names)


def available_variants() -> list[str]:
    """Names of eSpeak NG's voice variants (the files in ``espeak-ng-data/voices/!v``).

    Examples
    --------
    >>> {"m1", "m7", "f1", "f4", "klatt"} <= set(available_variants())
    True
    """
    return list(_variant_files())


def synthesize(text: str, voice: Voice) -> tuple[np.ndarray, int]:
    """Speak ``text`` with ``voice``.

    The text is plain text, not SSML, and punctuation is not spoken. It is read with the
    voice's own language whatever it is: a Spanish voice reads English words with Spanish
    letter-to-sound rules. Safe to call from several threads (calls run one at a time);
    use processes to synthesise in parallel.

    Parameters
    ----------
    text : str
        What to say.
    voice : Voice
        Who says it.

    Returns
    -------
    audio : numpy.ndarray
        Mono float32 samples in [-1, 1].
    sample_rate : int
        Samples per second (22050 for eSpeak NG).

    Raises
    ------
    InputError
        If the text is empty, or eSpeak has no such language or variant.

    Notes
    -----
    How much accent a non-English voice gives depends on eSpeak's rules for it: many
    voices hand words they cannot read to eSpeak's own English, keeping only their
    prosody (pitch, rhythm, intonation) for them. Words of an 83-word English passage
    ("Please call Stella..." and two more sentences) read as English:

    * all but 2 by voices of languages not written in Latin script (``hi``, ``ru``,
      ``cmn``, ``yue``, ``ar``, ``ko``, ``ta``, ...);
    * 60 by ``vi``, 53 by ``fr``, 16 by ``pt``, 14 by ``de``, 5 by ``sv``;
    * at most 1 by ``es``, ``it``, ``pl``, ``nl`` and ``tr``, which read English words
      with their own letter-to-sound rules.

    ``ja`` spells Latin-script words letter by letter.

    Examples
    --------
    >>> audio, rate = synthesize("Good morning.", Voice("en-us", "m3"))
    >>> audio.dtype, rate, bool(np.abs(audio).max() > 0.1)
    (dtype('float32'), 22050, True)
    >>> again, _ = synthesize("Good morning.", Voice("en-us", "m3"))
    >>> bool(np.array_equal(audio, again))
    True
    """
    if not isinstance(voice, Voice):
        raise TypeError(f"voice must be a Voice, not {type(voice).__name__}")
    if not isinstance(text, str) or not text.strip():
        raise InputError(
            f"the text to synthesise is empty ({text!r})", fix="pass at least one word"
        )
    if "\x00" in text:
        # eSpeak stops reading at a NUL, which would silently drop the rest of the text.
        raise InputError(
            "the text to synthesise contains a NUL character", fix="remove NUL characters"
        )
    if voice.variant is not None and voice.variant not in _variant_files():
        hint = _suggest(voice.variant, _variant_files())
        raise InputError(
            f"eSpeak NG has no voice variant {voice.variant!r}{hint}",
            fix=f"use one of: {', '.join(_variant_files())}",
        )
    with _LOCK:
        engine = _engine()
        language = engine.resolve(voice.language)
        spec = language if voice.variant is None else f"{language}+{voice.variant}"
        samples = engine.speak(text, spec, voice.rate, voice.pitch, voice.pitch_range)
        sample_rate = engine.sample_rate
    return samples.astype(np.float32) / np.float32(32768.0), sample_rate


def phonemize(text: str, language: str) -> str:
    """The IPA eSpeak NG would speak for ``text`` with the voice ``language``.

    A switch to another language's rules shows as ``(xx)`` where it happens: a Hindi
    voice reads Latin-script words with its English translator, ``(en)...(hi)``.

    Examples
    --------
    >>> phonemize("the patient", "en-us")
    'ðə pˈeɪʃənt'
    >>> phonemize("the patient", "hi")
    '(en)ðə pˈeɪʃənt(hi)'
    """
    if not isinstance(text, str) or "\x00" in text:
        raise InputError("the text to phonemise must be a string without NUL characters", fix="pass plain text")
    with _LOCK:
        engine = _engine()
        return engine.phonemes(text, engine.resolve(Voice(language).language))


# --------------------------------------------------------------------------- internals

_LOCK = threading.Lock()
_ENGINE: _Engine | None = None


def _new_lock_after_fork() -> None:
    # A child forked while another thread held the lock would otherwise wait forever.
    global _LOCK
    _LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock_after_fork)


def _loader() -> ModuleType:
    try:
        import espeakng_loader
    except ImportError:
        raise InputError(
            "speech synthesis needs eSpeak NG, but the espeakng-loader package is not installed",
            fix="install it with 'pip install espeakng-loader'",
        ) from None
    return espeakng_loader


def _engine() -> _Engine:
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = _Engine()
    return _ENGINE


@functools.cache
def _variant_files() -> tuple[str, ...]:
    folder = Path(_loader().get_data_path()) / "voices" / "!v"
    return tuple(sorted((p.name for p in folder.iterdir() if p.is_file()), key=str.casefold))


@functools.cache
def _declared_gender(variant: str) -> str | None:
    try:
        path = Path(_loader().get_data_path()) / "voices" / "!v" / variant
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except (InputError, OSError):
        return None
    for line in lines:
        words = line.split()
        if len(words) >= 2 and words[0].lower() == "gender":
            return {"female": "female", "male": "male"}.get(words[1].lower())
    return None


def _suggest(name: str, choices: Collection[str]) -> str:
    folded = {choice.casefold(): choice for choice in choices}
    close = difflib.get_close_matches(name.casefold(), list(folded), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(repr(folded[c]) for c in close)}?)" if close else ""


def _unload_library(lib: ctypes.CDLL) -> None:
    import _ctypes

    close = getattr(_ctypes, "dlclose", None) or getattr(_ctypes, "FreeLibrary", None)
    if close is not None:
        close(lib._handle)


def _libc_srand() -> Any:
    try:
        srand = ctypes.CDLL(None).srand
    except (OSError, AttributeError, TypeError):  # no C library to look into (Windows)
        return None
    srand.argtypes = [ctypes.c_uint]
    srand.restype = None
    return srand


def _remove_dir(path: str, owner_pid: int) -> None:
    # A forked child that exits normally must not delete its parent's library copy.
    if os.getpid() == owner_pid:
        shutil.rmtree(path, ignore_errors=True)


class _Engine:
    """A private instance of the eSpeak NG library, initialised for synchronous output.

    The library is loaded from a private copy of the wheel's file, so that unloading it
    really unloads it and this module never shares eSpeak's global state with other code
    in the process that loads the same library (a phonemiser, say). Before every
    utterance but the first the library is unloaded and loaded again, which resets all
    of eSpeak's static state.
    """

    def __init__(self) -> None:
        loader = _loader()
        source = loader.get_library_path()
        data = Path(loader.get_data_path())
        # espeak_Initialize wants the directory containing espeak-ng-data (newer
        # versions also accept the data directory itself; the parent works in all).
        self._data_root = os.fsencode(data.parent)
        self._chunks: list[bytes] = []
        self._callback = _SynthCallback(self._receive)  # referenced so it outlives the C side
        try:
            tmpdir = tempfile.mkdtemp(prefix="groupwise-espeak-")
            self._library_path = shutil.copy(source, tmpdir)
            weakref.finalize(self, _remove_dir, tmpdir, os.getpid())
        except OSError:  # no usable temporary directory: share the wheel's library
            self._library_path = source
        self._libc_srand = _libc_srand()
        self._lib: ctypes.CDLL | None = self._load()
        self.sample_rate: int = self._sample_rate
        self.voice_names, self._aliases = self._list_voices()
        self._fresh = True

    # -- library life cycle

    def _load(self) -> ctypes.CDLL:
        lib = ctypes.CDLL(self._library_path)
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.restype = ctypes.c_int
        lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_EspeakVoice))
        lib.espeak_Terminate.restype = ctypes.c_int
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, self._data_root, _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            _unload_library(lib)
            raise InputError(
                f"eSpeak NG could not load its data from {os.fsdecode(self._data_root)}",
                fix="reinstall espeakng-loader (pip install --force-reinstall espeakng-loader)",
            )
        self._sample_rate = rate
        lib.espeak_SetSynthCallback(self._callback)
        self._seed = getattr(lib, "espeak_ng_SetRandSeed", None)  # absent before 1.52
        if self._seed is not None:
            self._seed.argtypes = [ctypes.c_long]
            self._seed.restype = None
        return lib

    def _reload(self) -> None:
        lib, self._lib = self._lib, None  # never call into an unloaded library
        if lib is not None:
            lib.espeak_Terminate()
            _unload_library(lib)
        self._lib = self._load()

    def _list_voices(self) -> tuple[list[str], dict[str, str]]:
        names: list[str] = []
        ranked: dict[str, tuple[int, int, str]] = {}
        assert self._lib is not None
        voices = self._lib.espeak_ListVoices(None)
        for index in range(10_000):
            if not voices[index]:
                break
            voice = voices[index].contents
            if not voice.identifier:
                continue
            name = voice.identifier.decode("utf-8", "replace").rsplit("/", 1)[-1].lower()
            names.append(name)
            # languages: (priority byte, NUL-terminated code) pairs, ended by priority 0
            at = voice.languages or 0
            while at and (priority := ctypes.c_ubyte.from_address(at).value) != 0:
                code = ctypes.string_at(at + 1)
                at += len(code) + 2
                key = code.decode("utf-8", "replace").lower()
                ranked[key] = min(ranked.get(key, (priority, index, name)), (priority, index, name))
        return names, {code: name for code, (_, _, name) in ranked.items()}

    # -- synthesis

    def resolve(self, language: str) -> str:
        """eSpeak's voice name for ``language`` (a voice name or a language code)."""
        if language in self.voice_names:
            return language
        if language in self._aliases:
            return self._aliases[language]
        raise InputError(
            f"eSpeak NG has no voice {language!r}{_suggest(language, self.voice_names)}",
            fix=f"use one of: {', '.join(sorted(self.voice_names))}",
        )

    def _receive(self, wav: Any, numsamples: int, events: Any) -> int:
        # eSpeak marks the end of an utterance with a NULL buffer or no samples.
        if wav and numsamples > 0:
            self._chunks.append(ctypes.string_at(wav, numsamples * 2))
        return 0  # keep going

    def phonemes(self, text: str, language: str) -> str:
        """IPA of ``text`` read by the voice ``language``, with eSpeak's ``(xx)`` switch marks."""
        if self._lib is None:
            self._reload()
        self._fresh = False  # the next utterance starts from a reloaded library again
        lib = self._lib
        assert lib is not None
        if lib.espeak_SetVoiceByName(language.encode()) != _EE_OK:
            raise RuntimeError(f"eSpeak NG refused the voice {language!r}")
        buffer = ctypes.create_string_buffer(text.encode("utf-8"))
        at = ctypes.c_void_p(ctypes.addressof(buffer))
        clauses = []
        while at.value:  # one clause per call; eSpeak moves the pointer on, NULL at the end
            out = lib.espeak_TextToPhonemes(ctypes.byref(at), _CHARS_UTF8, _PHONEMES_IPA)
            if out:
                clauses.append(out.decode("utf-8", "replace"))
        return " ".join(" ".join(clauses).split())

    def speak(self, text: str, spec: str, rate: int, pitch: int, pitch_range: int) -> np.ndarray:
        """Int16 samples of ``text``, from the state of a freshly initialised library."""
        if self._lib is None or not self._fresh:
            self._reload()
        self._fresh = False
        lib = self._lib
        assert lib is not None
        if self._seed is not None:  # drives eSpeak's own noise (breath, whisper, Klatt)
            self._seed(_RAND_SEED)
        if self._libc_srand is not None:  # the speechPlayer synthesiser uses libc's rand()
            self._libc_srand(_RAND_SEED)
        if lib.espeak_SetVoiceByName(spec.encode()) != _EE_OK:
            raise RuntimeError(f"eSpeak NG refused the voice {spec!r}")
        for parameter, value in ((_RATE, rate), (_PITCH, pitch), (_RANGE, pitch_range)):
            if lib.espeak_SetParameter(parameter, value, 0) != _EE_OK:
                raise RuntimeError(f"eSpeak NG refused parameter {parameter} = {value}")
        encoded = text.encode("utf-8")
        self._chunks.clear()
        try:
            status = lib.espeak_Synth(
                encoded, len(encoded) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
            )
            lib.espeak_Synchronize()
            if status != _EE_OK:
                raise RuntimeError(f"eSpeak NG failed to synthesise (status {status})")
            return np.frombuffer(b"".join(self._chunks), dtype=np.int16)
        finally:
            self._chunks.clear()
