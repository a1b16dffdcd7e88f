"""Reading, checking, resampling and hashing audio.

Audio is handled as float32 mono arrays in [-1, 1] with an explicit sample rate. Files are
read with soundfile (WAV, FLAC, OGG and what libsndfile reads); stereo is averaged to
mono and the rate converted with a polyphase filter, so a 44.1 kHz stereo file reaches a
16 kHz recogniser as it should. Problems with a file raise :class:`AudioError`, which the
corpus loaders collect per row instead of stopping at the first.
"""

from __future__ import annotations

import hashlib
import os
from math import gcd
from pathlib import Path

import numpy as np

from groupwise._errors import InputError

__all__ = ["AudioError", "read_audio", "resample", "write_wav", "audio_hash", "MAX_AUDIO_SECONDS"]

#: Longest audio accepted from a file, in seconds; longer recordings should be segmented.
MAX_AUDIO_SECONDS = 3600.0


class AudioError(InputError):
    """An audio file is missing, unreadable, empty or too long."""


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Convert ``audio`` from ``from_rate`` to ``to_rate`` Hz (polyphase, anti-aliased).

    Examples
    --------
    >>> x = np.zeros(22050, dtype=np.float32)
    >>> resample(x, 22050, 16000).shape
    (16000,)
    """
    if from_rate == to_rate:
        return np.asarray(audio, dtype=np.float32)
    from scipy.signal import resample_poly

    g = gcd(int(from_rate), int(to_rate))
    out = resample_poly(np.asarray(audio, dtype=np.float64), int(to_rate) // g, int(from_rate) // g)
    return out.astype(np.float32)


def read_audio(path: str | os.PathLike[str], *, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 mono, resampled to ``sample_rate`` when given.

    Raises
    ------
    AudioError
        When the file is missing, not audio, has no samples, or is longer than
        :data:`MAX_AUDIO_SECONDS`.
    """
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise AudioError(f"audio file {str(path)!r} does not exist", fix="check the audio path column and the base directory")
    try:
        info = sf.info(str(path))
        if info.frames / max(info.samplerate, 1) > MAX_AUDIO_SECONDS:
            raise AudioError(
                f"audio file {str(path)!r} is {info.frames / info.samplerate:.0f} s long, over the {MAX_AUDIO_SECONDS:.0f} s limit",
                fix="split long recordings into utterances",
            )
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except AudioError:
        raise
    except Exception as exc:  # libsndfile reports corrupt and unknown files with several types
        raise AudioError(
            f"audio file {str(path)!r} could not be read: {str(exc).strip() or type(exc).__name__}",
            fix="check that it is a complete WAV, FLAC or OGG file",
        ) from exc
    if data.shape[0] == 0:
        raise AudioError(f"audio file {str(path)!r} has no samples (0 seconds)", fix="remove the row or re-export the audio")
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.isfinite(mono).all():
        raise AudioError(f"audio file {str(path)!r} has NaN or infinite samples", fix="re-export the audio")
    if sample_rate is not None and sample_rate != rate:
        mono = resample(mono, rate, sample_rate)
        rate = sample_rate
    return np.ascontiguousarray(mono, dtype=np.float32), int(rate)


def write_wav(path: str | os.PathLike[str], audio: np.ndarray, sample_rate: int) -> None:
    """Write float audio as 16-bit PCM WAV (clipped to [-1, 1])."""
    import soundfile as sf

    sf.write(str(path), np.clip(audio, -1.0, 1.0), int(sample_rate), subtype="PCM_16")


def audio_hash(audio: np.ndarray, sample_rate: int) -> str:
    """A content hash of audio samples and rate, for caching results.

    Two files with the same samples hash the same whatever their names or containers.

    >>> a = np.zeros(10, dtype=np.float32)
    >>> audio_hash(a, 16000) == audio_hash(a.copy(), 16000) != audio_hash(a, 8000)
    True
    """
    h = hashlib.blake2b(digest_size=20)
    h.update(str(int(sample_rate)).encode())
    h.update(np.ascontiguousarray(audio, dtype=np.float32).tobytes())
    return h.hexdigest()
