"""Speech recognisers behind one small interface.

A :class:`Backend` turns mono float audio into a transcript. :func:`get_backend` builds
one by name:

``pocketsphinx``
    The default: CMU PocketSphinx with the en-US model its wheel ships, optionally with
    a domain language model (``lm=``) and pronunciation dictionary (``dictionary=``).
``whisper`` (also ``faster-whisper``)
    Whisper through faster-whisper (CTranslate2): ``tiny.en`` (the default) and ``base``
    ship in wheels, or a local model directory (``model=``); utterances are packed into
    shared 30-second windows (see :mod:`groupwise.speech._whisper`).
``whisper-cpp``
    whisper.cpp, through its command-line program (``binary=``) or the ``pywhispercpp``
    package, with a local ggml model file (``model=``).
``http``
    Any web service that takes a WAV file and answers JSON: how an outside auditor tests
    a provider's API. Retries, backoff and a request-rate limit are built in.
``command``
    Any program that reads a WAV file and prints the transcript.

Nothing is ever downloaded: a backend whose package or model is not there raises
:class:`BackendUnavailable` saying how to install it or where to put the model.

Each backend's :meth:`Backend.config` is a JSON-able description of everything that can
change its transcripts (model files by content hash, options); the transcription cache
keys on it, so changing a model or an option never returns stale results.

Examples
--------
>>> parse_backend_options(["lm=domain.lm", "timeout=10", "raw=true"])
{'lm': 'domain.lm', 'timeout': 10, 'raw': True}
>>> get_backend("pocketsfinx")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
groupwise._errors.InputError: there is no speech recogniser backend 'pocketsfinx' (did you mean 'pocketsphinx'?). ...
"""

from __future__ import annotations

import abc
import difflib
import functools
import hashlib
import http.client
import inspect
import io
import json
import os
import random
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import wave
from collections.abc import Iterable, Mapping, Sequence
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from groupwise._errors import GroupwiseError, InputError
from groupwise._validation import check_choice, check_scalar
from groupwise.speech._audio import resample

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendUnavailable",
    "TranscriptionError",
    "get_backend",
    "parse_backend_options",
]

BACKENDS: tuple[str, ...] = ("pocketsphinx", "whisper", "whisper-cpp", "http", "command")


class BackendUnavailable(GroupwiseError):
    """A recogniser's package, program or model is not installed where it was looked for."""


class TranscriptionError(GroupwiseError):
    """A recogniser failed on an utterance (service down, bad answer, program failed)."""


# --------------------------------------------------------------------------- interface


class Backend(abc.ABC):
    """A speech recogniser.

    Subclasses implement :meth:`config` and :meth:`_recognise`; :meth:`transcribe`
    checks the audio and converts it to :attr:`sample_rate` first.

    Attributes
    ----------
    name : str
        The backend's name in :data:`BACKENDS`.
    sample_rate : int
        The rate, in Hz, the recogniser wants its audio at.
    parallel : str
        ``"process"`` when running utterances in parallel needs one recogniser per
        process (CPU-bound, or state that is neither picklable nor thread-safe), or
        ``"thread"`` when the work is waiting on another program or service, so that
        threads sharing this one instance (and its rate limit) are enough.
    batch : int
        How many utterances :meth:`transcribe_batch` should be given at once: more
        than one when the recogniser gains from seeing several together (Whisper
        packs them into shared windows).
    """

    name: ClassVar[str] = ""
    sample_rate: int = 16000
    parallel: str = "process"
    batch: int = 1

    @property
    def _caller(self) -> str:
        """How option errors name this backend's constructor."""
        return f"get_backend({self.name!r})"

    @abc.abstractmethod
    def config(self) -> dict[str, Any]:
        """JSON-able identity of the recogniser: everything that can change a transcript."""

    @abc.abstractmethod
    def _recognise(self, audio: np.ndarray) -> str:
        """Transcript of float32 mono ``audio`` at :attr:`sample_rate`."""

    def transcribe(self, audio: np.ndarray, sample_rate: int) -> str:
        """Transcribe mono (or channels-last multichannel) float audio at ``sample_rate`` Hz."""
        audio = self.prepare(audio, sample_rate)
        if audio.size == 0:
            return ""  # nothing was said; some recognisers reject empty input outright
        return self._recognise(audio)

    def prepare(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """Check ``audio`` and return it as contiguous float32 mono at :attr:`sample_rate`."""
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim == 2:  # (samples, channels), as soundfile reads it
            audio = audio.mean(axis=1)
        if audio.ndim != 1:
            raise InputError(
                f"audio must be a 1-D array of samples, got shape {audio.shape}",
                fix="pass mono audio, e.g. from read_audio()",
            )
        check_scalar(sample_rate, "sample_rate", int, caller="Backend.transcribe", min_val=1, fix="pass the rate in Hz")
        if not np.isfinite(audio).all():
            raise InputError("audio has NaN or infinite samples", fix="clean or re-export the audio")
        if audio.size == 0:
            return audio
        audio = resample(audio, int(sample_rate), self.sample_rate)
        return np.ascontiguousarray(audio, dtype=np.float32)

    def transcribe_batch(self, items: Sequence[tuple[np.ndarray, int]]) -> list[str]:
        """Transcribe several ``(audio, sample_rate)`` pairs, in order."""
        return [self.transcribe(audio, rate) for audio, rate in items]

    def load(self) -> None:
        """Load models now instead of on first use (worker processes warm up with it)."""

    def close(self) -> None:
        """Release the recogniser's resources (models, temporary files)."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def get_backend(name: str, **options: Any) -> Backend:
    """Build the recogniser ``name`` (one of :data:`BACKENDS`) with ``options``.

    Raises
    ------
    InputError
        For an unknown name or option, or a bad option value.
    BackendUnavailable
        When the recogniser's package, program or model is not installed.
    """
    if not isinstance(name, str):
        raise InputError(f"the backend name must be a string, got {name!r}", fix=f"use one of: {', '.join(BACKENDS)}")
    key = name.strip().lower().replace("_", "-")
    key = {
        "whispercpp": "whisper-cpp", "whisper.cpp": "whisper-cpp", "fasterwhisper": "whisper", "faster-whisper": "whisper",
    }.get(key, key)  # fmt: skip
    cls = _CLASSES.get(key)
    if cls is None:
        close = difflib.get_close_matches(key, BACKENDS, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InputError(
            f"there is no speech recogniser backend {name!r}{hint}", fix=f"use one of: {', '.join(BACKENDS)}"
        )
    accepted = [p.name for p in inspect.signature(cls.__init__).parameters.values() if p.kind is p.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise InputError(
            f"the {key} backend has no option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}",
            fix=f"use {', '.join(accepted) or 'no options'}",
        )
    return cls(**options)


def parse_backend_options(items: Iterable[str]) -> dict[str, Any]:
    """Parse command-line ``NAME=VALUE`` backend options into a dict.

    Values that read as JSON (numbers, ``true``/``false``/``null``, lists, objects) are
    converted, ``none`` is None, and anything else stays a string.

    >>> parse_backend_options(['cmd=python asr.py {audio}', 'headers={"X-Model": "large"}', 'rate=2.5'])
    {'cmd': 'python asr.py {audio}', 'headers': {'X-Model': 'large'}, 'rate': 2.5}
    """
    out: dict[str, Any] = {}
    for item in items:
        name, sep, value = str(item).partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name.isidentifier():
            raise InputError(
                f"backend option {item!r} is not NAME=VALUE", fix="write options as name=value, e.g. timeout=10"
            )
        if name in out:
            raise InputError(f"backend option {name!r} is given twice", fix="give each option once")
        out[name] = _option_value(value.strip())
    return out


def _option_value(text: str) -> Any:
    low = text.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("none", "null"):
        return None
    if re.fullmatch(r"[-+]?\d+", text):
        return int(text)
    if text[:1] in "[{" or re.fullmatch(r"[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?", text):
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


# --------------------------------------------------------------------------- helpers


def _to_pcm16(audio: np.ndarray) -> np.ndarray:
    return (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2")


def _wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(int(sample_rate))
        out.writeframes(_to_pcm16(audio).tobytes())
    return buffer.getvalue()


_WHOLE_HASH_LIMIT = 64 * 1024 * 1024
_SAMPLE = 1024 * 1024


@functools.lru_cache(maxsize=256)
def _content_hash(path: str, size: int, mtime_ns: int) -> str:
    # Multi-gigabyte models are identified by their size and first and last megabyte:
    # hashing them whole on every run would cost seconds, and a changed model file
    # differs there in practice (headers, tensor tables).
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        if size <= _WHOLE_HASH_LIMIT:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        else:
            h.update(f"sampled:{size}:".encode())
            h.update(f.read(_SAMPLE))
            f.seek(size - _SAMPLE)
            h.update(f.read(_SAMPLE))
    return h.hexdigest()


def _file_identity(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Name, size and content hash of a file; the path itself is left out so a moved
    model keeps its cached results."""
    p = Path(path)
    st = p.stat()
    return {"file": p.name, "size": st.st_size, "hash": _content_hash(str(p.resolve()), st.st_size, st.st_mtime_ns)}


def _dir_identity(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    return {
        "dir": p.name,
        "files": [_file_identity(f) for f in sorted(p.rglob("*")) if f.is_file()],
    }


def _positive(name: str, value: Any, *, caller: str, allow_none: bool = False, integer: bool = False) -> Any:
    """A positive, finite backend option, as int (``integer``) or float; None when allowed."""
    if value is None and allow_none:
        return None
    if integer:
        return int(check_scalar(value, name, int, caller=caller, min_val=1))
    check_scalar(
        value, name, (int, float), caller=caller, min_val=0, max_val=float("inf"), include_min=False, include_max=False
    )
    return float(value)


def _sample_rate_option(value: Any, *, caller: str) -> int:
    check_scalar(
        value, "sample_rate", int, caller=caller, min_val=4000, max_val=192000,
        fix="use a rate from 4000 to 192000 Hz, e.g. 16000",
    )
    return int(value)


# --------------------------------------------------------------------------- pocketsphinx


class PocketSphinxBackend(Backend):
    """CMU PocketSphinx with the wheel's en-US acoustic model, 16 kHz.

    Parameters
    ----------
    lm : path, optional
        An ARPA or binary n-gram language model to use instead of the general en-US one
        (a domain LM, e.g. built with ``groupwise.speech._lm``).
    dictionary : path, optional
        A pronunciation dictionary to use instead of CMUdict.
    """

    name = "pocketsphinx"
    parallel = "process"

    def __init__(self, *, lm: str | os.PathLike[str] | None = None, dictionary: str | os.PathLike[str] | None = None):
        for option, value in (("lm", lm), ("dictionary", dictionary)):
            if value is not None and not Path(value).is_file():
                raise InputError(
                    f"the pocketsphinx {option} file {str(value)!r} does not exist",
                    fix=f"pass {option}= the path of an existing file",
                )
        self.lm = None if lm is None else str(Path(lm).resolve())
        self.dictionary = None if dictionary is None else str(Path(dictionary).resolve())
        self.sample_rate = 16000
        # Built on first use: a decoder takes most of a second to load and cannot be
        # pickled, and the main process of a parallel run only needs config().
        self._decoder: Any = None

    def config(self) -> dict[str, Any]:
        import pocketsphinx

        from groupwise.speech import _lm

        model = Path(pocketsphinx.get_model_path()) / "en-us"
        default_lm = model / "en-us.lm.bin"
        default_dict = model / "cmudict-en-us.dict"
        return {
            "backend": self.name,
            "pocketsphinx": _package_version("pocketsphinx"),
            "acoustic_model": {
                "dir": "en-us",
                "files": [{"file": f.name, "size": f.stat().st_size} for f in sorted((model / "en-us").iterdir())],
            },
            "lm": _file_identity(self.lm or default_lm),
            # Without a dictionary of its own, an ARPA LM gets the CMUdict entries of its
            # words, so CMUdict's identity matters in both cases.
            "dictionary": _file_identity(self.dictionary or default_dict),
            # How the decoder is configured lives in _lm; its source identifies it.
            "decoder_setup": _source_hash(_lm),
        }

    def load(self) -> None:
        from groupwise.speech import _lm

        if self._decoder is None:
            self._decoder = _lm.pocketsphinx_decoder(lm=self.lm, dictionary=self.dictionary)

    def _recognise(self, audio: np.ndarray) -> str:
        from groupwise.speech import _lm

        self.load()
        # The decoder carries its cepstral-mean estimate from one utterance into the
        # next even with full_utt, so a transcript would depend on what was decoded
        # before it (and so on the worker and the order). Resetting the feature
        # pipeline (a fraction of a millisecond) makes every utterance start alike.
        self._decoder.reinit_feat()
        return _lm.decode(self._decoder, audio).strip()

    def close(self) -> None:
        self._decoder = None


@functools.cache
def _source_hash(module: Any) -> str:
    return hashlib.blake2b(inspect.getsource(module).encode(), digest_size=8).hexdigest()


def _package_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


# --------------------------------------------------------------------------- whisper.cpp


class WhisperCppBackend(Backend):
    """whisper.cpp with a local ggml model, through its CLI or the pywhispercpp package.

    Parameters
    ----------
    model : path
        A ggml model file such as ``ggml-base.en.bin``. It is never downloaded.
    binary : path, optional
        whisper.cpp's command-line program (``whisper-cli``; ``main`` in old builds).
        Without it, ``whisper-cli`` on the PATH is used, else the pywhispercpp package.
    language : str
        Language code.
    threads : int, optional
        Threads per utterance.
    timeout : float
        Seconds allowed per utterance with the CLI.
    """

    name = "whisper-cpp"

    def __init__(
        self,
        *,
        model: str | os.PathLike[str] | None = None,
        binary: str | os.PathLike[str] | None = None,
        language: str = "en",
        threads: int | None = None,
        timeout: float = 600,
    ):
        found = None
        if binary is not None:
            found = shutil.which(str(binary))
            if found is None:
                raise BackendUnavailable(
                    f"the whisper.cpp program {str(binary)!r} was not found or is not executable",
                    fix="build whisper.cpp and pass binary= the path of its whisper-cli program",
                )
        else:
            found = shutil.which("whisper-cli")
        self.binary = found
        if found is None:
            try:
                import pywhispercpp  # noqa: F401
            except ImportError:
                raise BackendUnavailable(
                    "the whisper-cpp backend needs whisper.cpp's whisper-cli program or the pywhispercpp package, "
                    "and neither was found",
                    fix="'pip install pywhispercpp', or build whisper.cpp and pass binary=PATH/whisper-cli; "
                    "then pass model= a local ggml model file",
                ) from None
        if model is None or not Path(model).is_file():
            where = "no model was given" if model is None else f"{str(model)!r} does not exist"
            raise BackendUnavailable(
                f"the whisper-cpp backend needs a local ggml model file, and {where}",
                fix="get a ggml model (e.g. ggml-base.en.bin from the whisper.cpp project) and pass model=PATH; "
                "groupwise never downloads models",
            )
        self.model = str(Path(model).resolve())
        self.language = language
        self.threads = _positive("threads", threads, caller=self._caller, allow_none=True, integer=True)
        self.timeout = _positive("timeout", timeout, caller=self._caller)
        self.sample_rate = 16000
        # The CLI is another program: threads only wait for it. The library runs inside
        # the process and holds the model, so it wants one process per worker.
        self.parallel = "thread" if found else "process"
        self._model: Any = None

    def load(self) -> None:
        if self._model is None and not self.binary:
            from pywhispercpp.model import Model

            kwargs: dict[str, Any] = {"print_progress": False, "print_realtime": False}
            if self.threads:
                kwargs["n_threads"] = self.threads
            self._model = Model(self.model, **kwargs)

    def config(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "runner": "cli" if self.binary else f"pywhispercpp {_package_version('pywhispercpp')}",
            "model": _file_identity(self.model),
            "language": self.language,
        }

    def _recognise(self, audio: np.ndarray) -> str:
        if self.binary:
            with tempfile.TemporaryDirectory(prefix="groupwise-whispercpp-") as tmp:
                wav = Path(tmp) / "audio.wav"
                wav.write_bytes(_wav_bytes(audio, self.sample_rate))
                args = [self.binary, "-m", self.model, "-f", str(wav), "-l", self.language, "-nt", "-np"]
                if self.threads:
                    args += ["-t", str(self.threads)]
                return _run_command(args, timeout=self.timeout, what="whisper.cpp")
        self.load()
        segments = self._model.transcribe(audio, language=self.language)
        return " ".join(s.text.strip() for s in segments).strip()

    def close(self) -> None:
        self._model = None


# --------------------------------------------------------------------------- command


def _run_command(args: list[str], *, timeout: float, what: str) -> str:
    try:
        done = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise TranscriptionError(
            f"{what} {shlex.join(args[:1])} did not finish within {timeout:g} s",
            fix="raise the timeout option or check that the program does not wait for input",
        ) from None
    except OSError as exc:
        raise TranscriptionError(
            f"{what} {args[0]!r} could not be started: {exc.strerror or exc}",
            fix="check the program's path and that it is executable",
        ) from None
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace").strip()
        excerpt = (err[-500:] if len(err) > 500 else err) or "(nothing on stderr)"
        raise TranscriptionError(
            f"{what} {shlex.join(args)} exited with status {done.returncode}: {excerpt}",
            fix="run the command by hand on a WAV file to see what goes wrong",
        )
    return " ".join(done.stdout.decode("utf-8", "replace").split())


class CommandBackend(Backend):
    """Any program that reads a WAV file and prints its transcript.

    Parameters
    ----------
    cmd : list of str or str
        The command, with ``{audio}`` where the WAV file's path goes (in an argument of
        its own or inside one, like ``--in={audio}``). A string is split like a shell
        would (:func:`shlex.split`) but no shell runs it. Its standard output, with
        whitespace collapsed, is the transcript.
    sample_rate : int
        Rate of the 16-bit PCM WAV file written for the program.
    timeout : float
        Seconds allowed per utterance.
    version : str, optional
        Any label, part of the cache key: change it when the program changes behind
        the same command line.
    """

    name = "command"
    parallel = "thread"

    def __init__(
        self,
        *,
        cmd: str | Sequence[str] | None = None,
        sample_rate: int = 16000,
        timeout: float = 600,
        version: str | None = None,
    ):
        if cmd is None or (isinstance(cmd, str) and not cmd.strip()):
            raise InputError("the command backend needs cmd=", fix="pass cmd='program --option {audio}'")
        args = shlex.split(cmd) if isinstance(cmd, str) else [str(a) for a in cmd]
        if not args or not any("{audio}" in a for a in args):
            raise InputError(
                f"the command {cmd!r} has no {{audio}} placeholder",
                fix="put {audio} where the WAV file's path goes, e.g. 'my-asr --input {audio}'",
            )
        if shutil.which(args[0]) is None:
            raise InputError(
                f"the command's program {args[0]!r} was not found or is not executable",
                fix="give the program's full path, or put it on the PATH",
            )
        self.cmd = args
        self.sample_rate = _sample_rate_option(sample_rate, caller=self._caller)
        self.timeout = _positive("timeout", timeout, caller=self._caller)
        self.version = version

    def config(self) -> dict[str, Any]:
        return {"backend": self.name, "cmd": self.cmd, "sample_rate": self.sample_rate, "version": self.version}

    def _recognise(self, audio: np.ndarray) -> str:
        with tempfile.TemporaryDirectory(prefix="groupwise-command-") as tmp:
            wav = Path(tmp) / "audio.wav"
            wav.write_bytes(_wav_bytes(audio, self.sample_rate))
            args = [a.replace("{audio}", str(wav)) for a in self.cmd]
            return _run_command(args, timeout=self.timeout, what="the command")


# --------------------------------------------------------------------------- http


class _TokenBucket:
    """At most ``rate`` acquisitions per second, with a burst of one.

    A burst of one spaces requests evenly, which is what providers' per-second limits
    expect; a larger burst would send a volley and collect 429s.
    """

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


_BUCKETS: dict[tuple[str, float], _TokenBucket] = {}
_BUCKETS_LOCK = threading.Lock()


def _bucket(url: str, rate: float) -> _TokenBucket:
    # One bucket per endpoint and rate in the process, so every backend instance and
    # thread talking to the same service shares the limit.
    with _BUCKETS_LOCK:
        return _BUCKETS.setdefault((url, rate), _TokenBucket(rate))


_SECRET = re.compile(r"key|token|secret|auth|sig|password|credential|cookie", re.IGNORECASE)


def _redact_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    if not query and not parts.password:
        return url
    clean = [(k, "***" if _SECRET.search(k) else v) for k, v in query]
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@") if parts.password else parts.netloc
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=urllib.parse.urlencode(clean, safe="*")))


class _Retry(Exception):
    def __init__(self, reason: str, status: int | None, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.status, self.wait = reason, status, wait


class HttpBackend(Backend):
    """A web service that takes a WAV file and answers JSON with the transcript.

    Parameters
    ----------
    url : str
        The endpoint (http or https).
    key : str
        Where the transcript is in the JSON answer: a dotted path, list positions as
        numbers (``"results.0.transcript"``).
    field : str
        The multipart form field the WAV file is sent in.
    raw : bool
        Send the WAV file as the whole request body (``Content-Type: audio/wav``)
        instead of a multipart form.
    form : dict, optional
        Other multipart form fields to send (``{"model": "large"}``).
    headers : dict, optional
        Request headers. Values may name environment variables (``"Bearer $API_KEY"``),
        which keeps keys off the command line. Headers whose names look secret
        (authorization, keys, tokens) are left out of the cache key.
    sample_rate : int
        Rate of the 16-bit PCM WAV sent.
    timeout : float
        Seconds allowed per request.
    retries : int
        Retries after a connection error, a timeout, a 429 or a 5xx answer, waiting
        exponentially longer (from ``backoff`` seconds, with jitter), or as long as the
        service's Retry-After says.
    backoff : float
        The first wait between retries, in seconds.
    rate : float, optional
        At most this many requests per second from this process (all threads).
    version : str, optional
        Any label, part of the cache key: change it when the service's model changes
        behind the same URL.
    api : {"plain", "openai"}
        ``"openai"`` speaks the OpenAI-compatible ``POST /v1/audio/transcriptions``
        (``groupwise asr serve``, and most speech services): ``url`` may be the service's
        base address, the file goes in the ``file`` field with ``model``
        (``model=``, default ``whisper-1``), ``response_format=json`` and ``language``
        (``language=``, if given), and the transcript is read from ``text``.
    model, language : str, optional
        Form fields for ``api="openai"``.
    """

    name = "http"
    parallel = "thread"
    MAX_WAIT = 300.0

    def __init__(
        self,
        *,
        url: str | None = None,
        key: str = "text",
        field: str = "audio",
        raw: bool = False,
        form: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        sample_rate: int = 16000,
        timeout: float = 30,
        retries: int = 3,
        backoff: float = 0.5,
        rate: float | None = None,
        version: str | None = None,
        api: Literal["plain", "openai"] = "plain",
        model: str | None = None,
        language: str | None = None,
    ):
        api = check_choice(api, "api", ("plain", "openai"), caller=self._caller)
        if api == "openai":
            if isinstance(url, str) and not urllib.parse.urlsplit(url).path.rstrip("/").endswith("/audio/transcriptions"):
                url = url.rstrip("/") + ("/audio/transcriptions" if url.rstrip("/").endswith("/v1") else "/v1/audio/transcriptions")
            field, raw = "file", False
            form = {"model": model or "whisper-1", "response_format": "json", **({"language": language} if language else {}), **dict(form or {})}
        elif model is not None or language is not None:
            raise InputError("model= and language= are options of api=openai", fix="add api=openai, or put them in form=")
        self.api = api
        if not isinstance(url, str) or urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise InputError(
                f"the http backend needs url= an http(s) address, got {url!r}",
                fix="pass url=https://host/path of the transcription endpoint",
            )
        if not isinstance(key, str) or not key.strip():
            raise InputError(f"key must be a dotted path into the JSON answer, got {key!r}", fix="e.g. key=text")
        check_scalar(retries, "retries", int, caller=self._caller, min_val=0)
        for option, value in (("headers", headers), ("form", form)):
            if value is not None and not isinstance(value, Mapping):
                raise InputError(
                    f"{option} must be a mapping of names to values, got {value!r}",
                    fix=f'e.g. {option}={{"X-Name": "value"}}',
                )
        self.url = url
        self.key = key.strip()
        self.field = str(field)
        self.raw = bool(raw)
        self.form = {str(k): str(v) for k, v in (form or {}).items()}
        self.headers = {str(k): os.path.expandvars(str(v)) for k, v in (headers or {}).items()}
        self.sample_rate = _sample_rate_option(sample_rate, caller=self._caller)
        self.timeout = _positive("timeout", timeout, caller=self._caller)
        self.retries = int(retries)
        self.backoff = _positive("backoff", backoff, caller=self._caller)
        self.rate = _positive("rate", rate, caller=self._caller, allow_none=True)
        self.version = version
        self._shown_url = _redact_url(url)
        self._bucket = _bucket(url, self.rate) if self.rate else None

    def config(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "url": self._shown_url,
            "key": self.key,
            "body": "raw" if self.raw else {"field": self.field, "form": self.form},
            "headers": {k.lower(): v for k, v in sorted(self.headers.items()) if not _SECRET.search(k)},
            "sample_rate": self.sample_rate,
            "version": self.version,
            **({"api": self.api} if self.api != "plain" else {}),
        }

    def _request(self, audio: np.ndarray) -> urllib.request.Request:
        wav = _wav_bytes(audio, self.sample_rate)
        headers = {"Accept": "application/json", "User-Agent": "groupwise", **self.headers}
        if self.raw:
            headers = {"Content-Type": "audio/wav", **headers}
            return urllib.request.Request(self.url, data=wav, method="POST", headers=headers)
        boundary = uuid.uuid4().hex
        parts = []
        for name, value in self.form.items():
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
            )
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{self.field}"; filename="audio.wav"\r\n'
            "Content-Type: audio/wav\r\n\r\n".encode()
            + wav
            + b"\r\n"
        )
        parts.append(f"--{boundary}--\r\n".encode())
        return urllib.request.Request(
            self.url,
            data=b"".join(parts),
            method="POST",
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}", **headers},
        )

    def _recognise(self, audio: np.ndarray) -> str:
        request = self._request(audio)
        attempt = 0
        while True:
            if self._bucket is not None:
                self._bucket.acquire()
            try:
                return self._attempt(request)
            except _Retry as retry:
                if attempt >= self.retries:
                    status = f"HTTP status {retry.status}" if retry.status else "no HTTP status"
                    raise TranscriptionError(
                        f"the transcription service at {self._shown_url} failed after {attempt + 1} "
                        f"attempt{'s' if attempt else ''} ({status}): {retry.reason}",
                        fix="check that the service is up and the URL is right; results finished so far are "
                        "cached, so running again resumes",
                    ) from None
                # Full jitter: concurrent clients that failed together retry apart.
                wait = retry.wait if retry.wait is not None else random.uniform(0.5, 1.0) * self.backoff * 2**attempt
                time.sleep(min(wait, self.MAX_WAIT))
                attempt += 1

    def _attempt(self, request: urllib.request.Request) -> str:
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status = response.status
                body = response.read()
        except urllib.error.HTTPError as exc:
            try:
                body = exc.read()[:300].decode("utf-8", "replace")
            except OSError:
                body = ""
            finally:
                exc.close()
            if exc.code == 429 or exc.code >= 500:
                raise _Retry(f"{exc.code} {exc.reason} {body}".strip(), exc.code, _retry_after(exc.headers)) from None
            raise TranscriptionError(
                f"the transcription service at {self._shown_url} answered HTTP status {exc.code} {exc.reason}: "
                f"{body.strip() or '(empty body)'}",
                fix="check the URL, the headers (authorisation) and the form field "
                f"({'raw body' if self.raw else repr(self.field)}) the service expects",
            ) from None
        except (TimeoutError, socket.timeout):
            raise _Retry(f"no answer within {self.timeout:g} s (timeout)", None) from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, (TimeoutError, socket.timeout)):
                raise _Retry(f"no answer within {self.timeout:g} s (timeout)", None) from None
            text = getattr(reason, "strerror", None) or str(reason)
            raise _Retry(f"cannot connect: {text}", None) from None
        except (ConnectionError, http.client.HTTPException) as exc:
            raise _Retry(f"connection failed: {exc or type(exc).__name__}", None) from None
        return self._extract(status, body)

    def _extract(self, status: int, body: bytes) -> str:
        excerpt = body[:200].decode("utf-8", "replace")
        try:
            value: Any = json.loads(body)
        except ValueError:
            raise TranscriptionError(
                f"the transcription service at {self._shown_url} answered HTTP status {status} with a body that "
                f"is not JSON, so key {self.key!r} cannot be read: {excerpt!r}",
                fix="check the URL; the http backend needs a JSON answer",
            ) from None
        for i, part in enumerate(self.key.split(".")):
            if isinstance(value, Mapping) and part in value:
                value = value[part]
            elif isinstance(value, list) and re.fullmatch(r"-?\d+", part) and -len(value) <= int(part) < len(value):
                value = value[int(part)]
            else:
                found = ", ".join(map(repr, list(value)[:10])) if isinstance(value, Mapping) else type(value).__name__
                raise TranscriptionError(
                    f"the JSON answer of {self._shown_url} (HTTP status {status}) has no key {self.key!r}: "
                    f"{'.'.join(self.key.split('.')[: i + 1])!r} is missing (found {found}); answer: {excerpt!r}",
                    fix="pass key= the dotted path of the transcript in the answer, e.g. key=results.0.transcript",
                )
        if value is None:
            return ""
        if not isinstance(value, str):
            raise TranscriptionError(
                f"key {self.key!r} in the JSON answer of {self._shown_url} is a {type(value).__name__}, not text",
                fix="pass key= the dotted path of the transcript string",
            )
        return " ".join(value.split())


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


from groupwise.speech._whisper import WhisperBackend  # noqa: E402 - it builds on Backend above

_CLASSES: dict[str, type[Backend]] = {
    "pocketsphinx": PocketSphinxBackend,
    "whisper": WhisperBackend,
    "whisper-cpp": WhisperCppBackend,
    "http": HttpBackend,
    "command": CommandBackend,
}
