"""Last-mile acoustic conditions: seeded, composable audio transforms named by short specs.

A last-mile test asks whether a recogniser's error rate rises under the customer's own
conditions (equipment humming at a fixed frequency, a phone line, a recording of their
ward) and whether it rises more for some accents than for others. Each condition here
is one fixed transform with a canonical spec string, which the command line accepts and
which results are cached under::

    baseline                                  unchanged audio
    noise:kind=white|pink|babble,snr=10       additive noise
    hum:freq=1200,harmonics=3,snr=5           tonal hum with harmonics
    beeps:freq=2000,period=1.5,duty=0.1,snr=5 periodic tone bursts
    file:path=ward.wav,snr=8                  the customer's own noise recording
    telephone                                 300-3400 Hz band, resampled to 8 kHz
    mulaw                                     G.711 mu-law (8-bit) companding
    reverb:rt60=0.6                           synthetic room reverberation
    clip:level=0.3                            hard clipping at a fraction of the peak

Conditions compose with ``+`` and apply left to right, so ``telephone+mulaw`` is the
usual narrow-band phone line (band limit, then 8-bit mu-law at 8 kHz).

Conventions
-----------
* Signal-to-noise ratios are relative to the **active speech level** of the input
  (:func:`active_speech_power`, a version of ITU-T P.56 method B), not to its mean power
  over the whole recording. Leading and trailing silence therefore does not change how
  much noise is added, so recordings of some accents with longer pauses than others are
  not given relatively louder noise. The noise power is its mean power over the
  utterance, except for ``beeps`` (the tone's power while a beep sounds) and ``file``
  (the whole recording's mean power, so each segment keeps its natural fluctuation).
* Silent input (no power) gets no noise: the noise level is a ratio to the speech.
* Every transform returns float32 of the input's length (``telephone`` changes the rate
  to 8 kHz and so the length) and clips values beyond [-1, 1] at its end, as writing a
  16-bit file would; nothing is rescaled to avoid that, so very low SNRs also distort.
* ``seed`` fixes every random choice (noise samples, reverberation, phases and offsets):
  the same audio, spec and seed always give identical output. The noise realisation
  does not depend on the SNR, so a sweep over SNRs at one seed changes only the level.
  In a composition the first condition of each kind uses ``seed`` as given (so ``noise``
  and ``noise+telephone`` hear the same noise) and a repeated kind gets a derived seed.

audiomentations is deliberately not used: it draws parameters at random from ranges on
every call, whereas a condition here must be one fixed, reproducible transform, and it
pulls in librosa and numba.

Examples
--------
>>> cond = parse_condition("hum:freq=1000 + telephone")
>>> cond.spec
'hum:freq=1000,harmonics=3,snr=5+telephone'
>>> cond.name
'hum at 1000 Hz, 3 harmonics, SNR 5 dB + telephone band 300-3400 Hz at 8 kHz'
>>> t = np.arange(16000) / 16000
>>> speech = (0.1 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 2 * t) ** 2).astype(np.float32)
>>> out, rate = cond(speech, 16000, seed=1)
>>> rate, out.dtype, out.shape
(8000, dtype('float32'), (8000,))
>>> np.array_equal(out, cond(speech, 16000, seed=1)[0])
True
"""

from __future__ import annotations

import functools
import math
import os
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from groupwise._errors import InputError
from groupwise._validation import check_scalar
from groupwise.speech._audio import read_audio, resample

__all__ = [
    "Condition",
    "Baseline",
    "Noise",
    "Hum",
    "Beeps",
    "NoiseFile",
    "Telephone",
    "MuLaw",
    "Reverb",
    "Clip",
    "Composed",
    "CONDITIONS",
    "parse_condition",
    "describe_conditions",
    "active_speech_power",
]

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")

# ITU-T P.56 method B constants: envelope time constant, hangover, margin.
_P56_TIME_CONSTANT = 0.03
_P56_HANGOVER = 0.2
_P56_MARGIN_DB = 15.9


# ---------------------------------------------------------------------------- levels


def active_speech_power(audio: np.ndarray, sample_rate: int) -> float:
    """Mean power of ``audio`` over its active (speech) part, after ITU-T P.56 method B.

    The envelope is the rectified signal smoothed twice with a 30 ms time constant; a
    sample is active while the envelope is above a threshold or was within the last
    200 ms. Thresholds are tried in 6 dB steps from the envelope's peak down 96 dB, and
    the active level is where it lies 15.9 dB above the threshold (interpolated between
    steps). Thresholds are relative to the envelope's peak rather than to fixed 16-bit
    values, so the result scales exactly with the gain: ``active_speech_power(g * x)`` is
    ``g**2 * active_speech_power(x)``. Falls back to the mean power over the whole
    signal if no threshold gives a crossing.

    Parameters
    ----------
    audio : numpy.ndarray
        Mono samples.
    sample_rate : int
        Samples per second.

    Returns
    -------
    float
        Mean square of the active samples (0.0 for silence or empty input). For speech
        with pauses this is above the mean over the whole signal; for a steady signal it
        nearly equals it.

    Examples
    --------
    >>> t = np.arange(16000) / 16000
    >>> tone = 0.1 * np.sin(2 * np.pi * 440 * t)
    >>> ratio_db = lambda x: float(10 * np.log10(active_speech_power(x, 16000) / np.mean(x**2)))
    >>> round(ratio_db(tone), 1)  # the envelope's first 50 ms or so count as inactive
    0.1
    >>> padded = np.concatenate([np.zeros(32000), tone, np.zeros(32000)])  # 80% silence
    >>> round(ratio_db(padded), 1)  # 1 s active plus 0.2 s hangover, of 5 s
    5.9
    """
    from scipy.signal import lfilter

    x = np.asarray(audio, dtype=np.float64).ravel()
    if x.size == 0:
        return 0.0
    energy = float(np.dot(x, x))
    if not math.isfinite(energy):
        raise InputError("audio has NaN or infinite samples, or is far beyond full scale", fix="re-export or re-read the audio")
    if energy == 0.0:
        return 0.0
    g = math.exp(-1.0 / (_P56_TIME_CONSTANT * sample_rate))
    envelope = lfilter([1.0 - g], [1.0, -g], lfilter([1.0 - g], [1.0, -g], np.abs(x)))
    top = float(envelope.max())
    if top <= 0.0:
        return energy / x.size
    # A sample is active at threshold c if the envelope reached c within the hangover
    # before it, i.e. if the envelope's maximum over that trailing window is >= c.
    recent = _trailing_max(envelope, int(round(_P56_HANGOVER * sample_rate)) + 1)
    # D = (active level - threshold) is large at the top (few active samples), dips
    # below the margin, and grows again as the threshold sinks into the noise floor.
    # Scanning down from the top, the level is where D first climbs back over the
    # margin, which is the crossing P.56 finds scanning up.
    seen_below = False
    prev_c = prev_d = 0.0
    for j in range(17):
        c = top * 2.0**-j
        active = int(np.count_nonzero(recent >= c))
        c_db = 20.0 * math.log10(c)
        d = 10.0 * math.log10(energy / active) - c_db
        if d <= _P56_MARGIN_DB:
            seen_below = True
        elif seen_below:
            c_star = prev_c + (_P56_MARGIN_DB - prev_d) / (d - prev_d) * (c_db - prev_c)
            return 10.0 ** ((c_star + _P56_MARGIN_DB) / 10.0)
        prev_c, prev_d = c_db, d
    return energy / x.size


def _trailing_max(values: np.ndarray, width: int) -> np.ndarray:
    """``out[i] = max(values[max(0, i - width + 1) : i + 1])``."""
    from scipy.ndimage import maximum_filter1d

    # origin shifts the window so that it ends at i instead of being centred on it
    return maximum_filter1d(values, size=width, mode="constant", cval=-np.inf, origin=(width - 1) // 2)


def _scale_to_snr(noise: np.ndarray, noise_power: float, signal_power: float, snr: float) -> np.ndarray:
    if signal_power <= 0.0 or noise_power <= 0.0:
        return np.zeros_like(noise)
    return noise * math.sqrt(signal_power / (10.0 ** (snr / 10.0)) / noise_power)


# ------------------------------------------------------------------------ parameters


def _fmt(value: float | int | str) -> str:
    """Canonical text of a parameter value: shortest round-trip form, no trailing '.0'."""
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    text = repr(float(value) + 0.0)  # + 0.0 turns -0.0 into 0.0
    return text[:-2] if text.endswith(".0") else text


def _parse_float(text: str) -> float:
    if not _NUMBER.fullmatch(text):
        raise ValueError("a number such as 5 or 0.25")
    return float(text)


def _parse_int(text: str) -> int:
    if not _INTEGER.fullmatch(text):
        raise ValueError("a whole number such as 3")
    return int(text)


def _parse_str(text: str) -> str:
    if not text:
        raise ValueError("a non-empty value")
    return text


@dataclass(frozen=True)
class _Param:
    name: str
    parse: Callable[[str], Any]
    default: Any  # None means required


def _require(ok: bool, problem: str, fix: str) -> None:
    if not ok:
        raise InputError(problem, fix=fix)


def _check_finite(kind: str, name: str, value: float) -> None:
    _require(math.isfinite(value), f"{kind} {name}={value} is not a finite number", f"give {name} as a number such as 5")


# ------------------------------------------------------------------------ base class


class Condition:
    """One acoustic condition: a fixed, seeded transform of mono audio.

    Subclasses are frozen dataclasses whose fields are the parameters, in the order the
    canonical spec lists them. Two conditions with equal parameters have equal
    :attr:`spec` strings, which is what results are cached under.

    Examples
    --------
    >>> cond = Clip(level=0.5)
    >>> cond.spec, cond.name
    ('clip:level=0.5', 'clipped at 50% of the peak')
    >>> out, rate = cond(np.array([0.0, 0.2, -0.8], dtype=np.float32), 16000)
    >>> out.tolist(), rate
    ([0.0, 0.20000000298023224, -0.4000000059604645], 16000)
    """

    kind_name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    params: ClassVar[tuple[_Param, ...]] = ()

    @property
    def spec(self) -> str:
        """The canonical spec string, listing every parameter in a fixed order."""
        if not self.params:
            return self.kind_name
        values = ",".join(f"{p.name}={_fmt(getattr(self, p.name))}" for p in self.params)
        return f"{self.kind_name}:{values}"

    @property
    def name(self) -> str:
        """A human-readable label for tables and plots."""
        return self.kind_name

    def __call__(self, audio: np.ndarray, sample_rate: int, *, seed: int = 0) -> tuple[np.ndarray, int]:
        """Apply the condition.

        Parameters
        ----------
        audio : numpy.ndarray
            Mono floating-point samples in [-1, 1].
        sample_rate : int
            Samples per second of ``audio``.
        seed : int, default 0
            Non-negative seed for every random choice the condition makes.

        Returns
        -------
        (numpy.ndarray, int)
            float32 audio and its sample rate (8000 after ``telephone``, otherwise
            unchanged; the length is unchanged except for a rate change).

        Raises
        ------
        InputError
            If the audio is not 1-D floating point with finite values, the rate or the
            seed is invalid, or a parameter does not suit the sample rate.
        """
        x, rate = _check_audio(audio, sample_rate)
        return self._run(x, rate, (_check_seed(seed),))

    def __add__(self, other: Condition) -> Composed:
        """``a + b`` is the condition that applies ``a`` and then ``b``."""
        if not isinstance(other, Condition):
            return NotImplemented
        return Composed((self, other))

    # The pieces below are what subclasses fill in.

    def _check_rate(self, sample_rate: int) -> None:
        """Raise InputError if the parameters do not suit ``sample_rate``."""

    def _out_rate(self, sample_rate: int) -> int:
        return sample_rate

    def _transform(self, x: np.ndarray, sample_rate: int, key: tuple[int, ...]) -> tuple[np.ndarray, int]:
        raise NotImplementedError

    def _run(self, x: np.ndarray, sample_rate: int, key: tuple[int, ...]) -> tuple[np.ndarray, int]:
        self._check_rate(sample_rate)
        if x.size == 0:
            return np.zeros(0, dtype=np.float32), self._out_rate(sample_rate)
        y, rate = self._transform(x.astype(np.float64), sample_rate, key)
        if y.size and float(np.max(np.abs(y))) > 1.0:
            y = np.clip(y, -1.0, 1.0)
        return np.ascontiguousarray(y, dtype=np.float32), rate

    def _rng(self, key: tuple[int, ...]) -> np.random.Generator:
        # Salting by kind keeps, say, the noise and the reverberation of one seed independent.
        return np.random.default_rng([*key, zlib.crc32(self.kind_name.encode())])

    def _rate_error(self, what: str, sample_rate: int, fix: str) -> InputError:
        return InputError(f"condition {self.spec!r}: {what} for {sample_rate} Hz audio", fix=fix)


def _check_seed(seed: int, caller: str = "Condition.__call__") -> int:
    return int(check_scalar(seed, "seed", int, caller=caller, min_val=0, fix="pass seed=0, 1, 2, ..."))


def _check_audio(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
    check_scalar(sample_rate, "sample_rate", int, caller="Condition.__call__", min_val=1, fix="pass the rate in Hz, e.g. 16000")
    x = np.asarray(audio)
    if x.ndim != 1:
        raise InputError(
            f"audio has shape {x.shape}; conditions take mono audio (one dimension)",
            fix="average the channels (read_audio does) before applying a condition",
        )
    if not np.issubdtype(x.dtype, np.floating):
        raise InputError(
            f"audio has dtype {x.dtype}; conditions take floating-point samples in [-1, 1]",
            fix="convert 16-bit integers with audio / 32768, or read the file with read_audio",
        )
    if not np.isfinite(x).all():
        raise InputError("audio has NaN or infinite samples", fix="re-export or re-read the audio")
    return x, int(sample_rate)


# ---------------------------------------------------------------------- the kinds


@dataclass(frozen=True)
class Baseline(Condition):
    """The unchanged audio, the reference every condition is compared with.

    >>> Baseline()(np.array([0.5, -0.5]), 16000)[0].tolist()
    [0.5, -0.5]
    """

    kind_name: ClassVar[str] = "baseline"
    summary: ClassVar[str] = "unchanged audio (the reference)"

    @property
    def name(self) -> str:
        return "baseline"

    def _transform(self, x: np.ndarray, sample_rate: int, key: tuple[int, ...]) -> tuple[np.ndarray, int]:
        return x, sample_rate


_NOISE_KINDS = ("white", "pink", "babble")
_BABBLE_TALKERS = 6


@dataclass(frozen=True)
class Noise(Condition):
    """Additive Gaussian noise at a signal-to-noise ratio.

    ``white`` has a flat spectrum. ``pink`` has power falling as 1/f (-3 dB per octave,
    -10 dB per decade), made by shaping white noise in the frequency domain. ``babble``
    is *synthetic* babble, not recorded talkers: six independent noise "talkers", each
    Gaussian noise amplitude-modulated by its own random syllabic envelope (modulation
    spectrum centred on 4 Hz, with gaps), summed and shaped to a rough long-term speech
    spectrum (rising to a plateau between about 100 and 500 Hz and falling about 5 dB
    per octave above), in the spirit of the ICRA artificial noises. It has babble's
    spectrum and fluctuation but no voices, pitch or words, so it cannot make a
    recogniser transcribe background talk as real babble can, and is likely a milder
    test than a recording of a busy ward (use ``file`` for that).

    The noise is scaled so that its mean power over the utterance is the active speech
    level of the input divided by ``10 ** (snr / 10)``.

    Parameters
    ----------
    kind : {'white', 'pink', 'babble'}, default 'white'
    snr : float, default 10
        Signal-to-noise ratio in dB; may be negative.

    Examples
    --------
    >>> Noise("pink", 0).spec
    'noise:kind=pink,snr=0'
    """

    kind: str = "white"
    snr: float = 10.0

    kind_name: ClassVar[str] = "noise"
    summary: ClassVar[str] = "additive noise, kind white|pink|babble (synthetic babble), SNR in dB"
    params: ClassVar[tuple[_Param, ...]] = (
        _Param("kind", _parse_str, "white"),
        _Param("snr", _parse_float, 10.0),
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", str(self.kind).lower())
        _require(
            self.kind in _NOISE_KINDS,
            f"noise kind={self.kind!r} is not a known kind of noise",
            f"use kind={', kind='.join(_NOISE_KINDS)}",
        )
        object.__setattr__(self, "snr", float(self.snr))
        _check_finite("noise", "snr", self.snr)

    @property
    def name(self) -> str:
        what = "synthetic babble" if self.kind == "babble" else f"{self.kind} noise"
        return f"{what} at SNR {_fmt(self.snr)} dB"

    def _transform(self, x: np.ndarray, sample_rate: int, key: tuple[int, ...]) -> tuple[np.ndarray, int]:
        rng = self._rng(key)
        n = x.size
        if self.kind == "white":
            noise = rng.standard_normal(n)
        elif self.kind == "pink":
            noise = _shape(rng.standard_normal(n), sample_rate, lambda f: 1.0 / f)
        else:
            noise = _babble(rng, n, sample_rate)
        noise_power = float(np.mean(noise**2))
        return x + _scale_to_snr(noise, noise_power, active_speech_power(x, sample_rate), self.snr), sample_rate


def _shape(white: np.ndarray, sample_rate: int, power: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Filter noise in the frequency domain so its power spectrum follows ``power(f)``; DC removed."""
    spectrum = np.fft.rfft(white)
    freqs = np.fft.rfftfreq(white.size, 1.0 / sample_rate)
    gain = np.zeros_like(freqs)
    gain[1:] = np.sqrt(power(freqs[1:]))
    return np.fft.irfft(spectrum * gain, n=white.size)


def _speech_spectrum(f: np.ndarray) -> np.ndarray:
    # Rough long-term average speech spectrum: 12 dB/octave high-pass at 100 Hz, plateau
    # to 500 Hz, then about -4.8 dB/octave (power exponent 1.6).
    high_pass = (f / 100.0) ** 4 / (1.0 + (f / 100.0) ** 4)
    return high_pass * (1.0 + (f / 500.0) ** 2) ** -0.8


def _babble(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    # Envelopes are drawn at a 100 Hz control rate and interpolated: they only carry
    # syllabic (a few Hz) fluctuation, and this keeps the cost to one audio-rate FFT.
    control_rate = 100.0
    m = max(int(math.ceil(n / sample_rate * control_rate)) + 2, 4)
    fm = np.fft.rfftfreq(m, 1.0 / control_rate)
    mask = np.zeros_like(fm)
    mask[1:] = np.exp(-0.5 * np.log2(fm[1:] / 4.0) ** 2)  # one-octave spread around 4 Hz
    power = np.zeros(m)
    for _ in range(_BABBLE_TALKERS):
        s = np.fft.irfft(np.fft.rfft(rng.standard_normal(m)) * mask, n=m)
        sd = float(s.std())
        s = s / sd if sd > 0 else s
        # Offset and rectify: a talker is silent for roughly a third of the time, as
        # between syllables and words.
        envelope = np.maximum(s + 0.5, 0.0)
        power += envelope**2 / max(float(np.mean(envelope**2)), 1e-24)
    # The talkers' white carriers are independent, so their sum at each instant is Gaussian
    # with variance sum(envelope_i ** 2): one carrier scaled by the root of that sum has the
    # same distribution and costs one audio-rate draw instead of six.
    t_control = np.arange(m) / control_rate
    t_audio = np.arange(n) / sample_rate
    total = np.interp(t_audio, t_control, np.sqrt(power)) * rng.standard_normal(n)
    return _shape(total, sample_rate, _speech_spectrum)


@dataclass(frozen=True)
class Hum(Condition):
    """A steady tonal hum at a fixed frequency with harmonics, as from an imaging machine.

    The hum is the sum of sines at ``freq``, ``2*freq``, ..., ``harmonics*freq`` with
    amplitudes ``1, 1/2, ..., 1/harmonics`` (so the second harmonic is 6 dB and the
    third 9.5 dB below the fundamental) and seeded random phases. Harmonics at or above
    the Nyquist frequency are left out rather than aliased. The hum's mean power is the
    active speech level divided by ``10 ** (snr / 10)``.

    Parameters
    ----------
    freq : float, default 1200
        Fundamental in Hz, above 0 and below half the sample rate.
    harmonics : int, default 3
        Number of components including the fundamental, 1 to 20 (1 is a pure tone).
    snr : float, default 5
        Signal-to-noise ratio in dB.

    Examples
    --------
    >>> Hum(freq=50, harmonics=1).name
    'hum at 50 Hz, pure tone, SNR 5 dB'
    """

    freq: float = 1200.0
    harmonics: int = 3
    snr: float = 5.0

    kind_name: ClassVar[str] = "hum"
    summary: ClassVar[str] = "steady hum at freq Hz with harmonics 2f..hf (amplitudes 1/k), SNR in dB"
    params: ClassVar[tuple[_Param, ...]] = (
        _Param("freq", _parse_float, 1200.0),
        _Param("harmonics", _parse_int, 3),
        _Param("snr", _parse_float, 5.0),
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "freq", float(self.freq))
        object.__setattr__(self, "snr", float(self.snr))
        _check_finite("hum", "freq", self.freq)
        _check_finite("hum", "snr", self.snr)
        _require(self.freq > 0, f"hum freq={_fmt(self.freq)} is not above 0 Hz", "give the hum's frequency in Hz, e.g. freq=1200")
        _require(
            isinstance(self.harmonics, (int, np.integer)) and 1 <= self.harmonics <= 20,
            f"hum harmonics={self.harmonics} is not a whole number from 1 to 20",
            "use harmonics=1 for a pure tone, up to harmonics=20",
        )
        object.__setattr__(self, "harmonics", int(self.harmonics))

    @property
    def name(self) -> str:
        parts = "pure tone" if self.harmonics == 1 else f"{self.harmonics} harmonics"
        return f"hum at {_fmt(self.freq)} Hz, {parts}, SNR {_fmt(self.snr)} dB"

    def _check_rate(self, sample_rate: int) -> None:
        if self.freq >= sample_rate / 2:
            raise self._rate_error(
                f"freq {_fmt(self.freq)} Hz is not below the Nyquist frequency {_fmt(sample_rate / 2)} Hz",
                sample_rate,
                f"choose freq below {_fmt(sample_rate / 2)} Hz, or apply the hum before 'telephone'",
            )

    def _transform(self, x: np.ndarray, sample_rate: int, key: tuple[int, ...]) -> tuple[np.ndarray, int]:
        phases = self._rng(key).uniform(0.0, 2 * np.pi, self.harmonics)
        t = np.arange(x.size) / sample_rate
        hum = np.zeros(x.size)
        for k in range(1, self.harmonics + 1):
            if k * self.freq < sample_rate / 2:
                hum += np.sin(2 * np.pi * k * self.freq * t + phases[k - 1]) / k
        noise_power = float(np.mean(hum**2))
        return x + _scale_to_snr(hum, noise_power, active_speech_power(x, sample_rate), self.snr), sample_rate


@dataclass(frozen=True)
class Beeps(Condition):
    """Periodic tone bursts, as from a monitor's alarm.

    A sine at ``freq`` is switched on for ``duty * period`` seconds every ``period``
    seconds, with raised-cosine on and off ramps (5 ms, or a quarter of the burst if
    shorter) so the switching makes no clicks. The burst train starts at a seeded random
    point of its cycle, so utterances are not all hit at the same place.

    The SNR is defined over the **burst-on** time: while a burst sounds, the tone's
    power is the active speech level divided by ``10 ** (snr / 10)``. This keeps the
    loudness of a beep independent of how often it sounds; the mean power over the whole
    utterance is about ``duty`` times lower.

    Parameters
    ----------
    freq : float, default 2000
        Tone frequency in Hz, below half the sample rate.
    period : float, default 1.5
        Seconds from one burst's start to the next, above 0 and at most 60.
    duty : float, default 0.1
        Fraction of each period the tone is on, strictly between 0 and 1.
    snr : float, default 5
        Speech-to-beep ratio in dB while a beep sounds.

    Examples
    --------
    >>> Beeps().name
    '2000 Hz beeps of 0.15 s every 1.5 s, SNR 5 dB while on'
    """

    freq: float = 2000.0
    period: float = 1.5
    duty: float = 0.1
    snr: float = 5.0

    kind_name: ClassVar[str] = "beeps"
    summary: ClassVar[str] = "tone bursts on for duty*period s every period s, SNR in dB while a beep sounds"
    params: ClassVar[tuple[_Param, ...]] = (
        _Param("freq", _parse_float, 2000.0),
        _Param("period", _parse_float, 1.5),
        _Param("duty", _parse_float, 0.1),
        _Param("snr", _parse_float, 5.0),
    )

    def __post_init__(self) -> None:
        for p in self.params:
            object.__setattr__(self, p.name, float(getattr(self, p.name)))
            _check_finite("beeps", p.name, getattr(self, p.name))
        _require(self.freq > 0, f"beeps freq={_fmt(self.freq)} is not above 0 Hz", "give the tone frequency in Hz, e.g. freq=2000")
        _require(
            0 < self.period <= 60,
            f"beeps period={_fmt(self.period)} is not between 0 and 60 seconds",
            "give the time between beep starts in seconds, e.g. period=1.5",
        )
        _require(
            0 < self.duty < 1,
            f"beeps duty={_fmt(self.duty)} is not strictly between 0 and 1",
            "give the fraction of each period the beep is on, e.g. duty=0.1",
        )

    @property
    def name(self) -> str:
        return (
            f"{_fmt(self.freq)} Hz beeps of {_fmt(round(self.duty * self.period, 6))} s every "
            f"{_fmt(self.period)} s, SNR {_fmt(self.snr)} dB while on"
        )

    def _check_rate(self, sample_rate: int) -> None:
        if self.freq >= sample_rate / 2:
            raise self._rate_error(
                f"freq {_fmt(self.freq)} Hz is not below the Nyquist frequency {_fmt(sample_rate / 2)} Hz",
                sample_rate,
                f"choose freq below {_fmt(sample_rate / 2)} Hz, or apply the beeps before 'telephone'",
            )
        if self.duty * self.period * sample_rate < 2:
            raise self._rate_error(
                "each beep is shorter than two samples", sample_rate, "make duty*period longer"
            )

    def _transform(self, x: np.ndarray, sample_rate: int, key: tuple[int, ...]) -> tuple[np.ndarray, int]:
        rng = self._rng(key)
        start, phase = rng.uniform(0.0, self.period), rng.uniform(0.0, 2 * np.pi)
        on = self.duty * self.period
        ramp = min(0.005, on / 4)
        t = np.arange(x.size) / sample_rate
        u = np.mod(t - start, self.period)  # time since the latest burst began
        gate = np.where(u < on, 1.0, 0.0)
        rising, falling = u < ramp, (u < on) & (u > on - ramp)
        gate[rising] = 0.5 - 0.5 * np.cos(np.pi * u[rising] / ramp)
        gate[falling] = 0.5 - 0.5 * np.cos(np.pi * (on - u[falling]) / ramp)
        tone = np.sin(2 * np.pi * self.freq * t + phase) * gate
        # A full-amplitude sine has power 1/2; that is the power while a burst is on.
        return x + _scale_to_snr(tone, 0.5, active_speech_power(x, sample_rate), self.snr), sample_rate


@functools.lru_cache(maxsize=4)
def _load_noise(path: str, mtime_ns: int, size: int, sample_rate: int) -> tuple[np.ndarray, float]:
    # Keyed on modification time and size so an edited recording is read again.
    noise, _ = read_audio(path, sample_rate=sample_rate)
    noise = noise.astype(np.float64)
    noise -= noise.mean()  # a DC offset is inaudible but would count as noise power
    power = float(np.mean(noise**2))
    if power == 0.0:
        raise InputError(f"noise file {path!r} is silent", fix="record or choose a file with the noise in it")
    noise.setflags(write=False)
    return noise, power


@dataclass(frozen=True)
class NoiseFile(Condition):
    """The customer's own noise recording, mixed in at a signal-to-noise ratio.

    The file is read with :func:`~groupwise.speech._audio.read_audio` (any rate and
    channel count; resampled to the speech's rate, channels averaged, DC removed) and
    a segment of the utterance's length is taken from a seeded random offset, looping
    round the end of the recording if needed (the loop point is not cross-faded, so use
    a recording longer than the longest utterance). The **whole recording's** mean power
    sets the level: the recording's power is the active speech level divided by
    ``10 ** (snr / 10)``, and each segment keeps its natural fluctuation (a quiet
    stretch of the ward stays quiet rather than being amplified). For steady noise the
    SNR of each utterance is therefore close to ``snr``, not exactly it.

    ``path`` is taken as written (relative paths from the current directory when the
    condition is applied) and cannot contain ``,`` or ``+``, which separate spec parts.
    The spec names the path, not the content: results cached under it are not
    invalidated if the file is replaced.

    Parameters
    ----------
    path : str
        Noise recording (WAV, FLAC, OGG).
    snr : float, default 8
        Signal-to-noise ratio in dB.
    """

    path: str = ""
    snr: float = 8.0

    kind_name: ClassVar[str] = "file"
    summary: ClassVar[str] = "your own noise recording, looped/cropped from a seeded offset, SNR in dB"
    params: ClassVar[tuple[_Param, ...]] = (
        _Param("path", _parse_str, None),
        _Param("snr", _parse_float, 8.0),
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", os.fspath(self.path))
        _require(bool(self.path), "condition 'file' needs path=", "write file:path=ward.wav,snr=8")
        _require(
            "," not in self.path and "+" not in self.path,
            f"noise file path {self.path!r} contains ',' or '+', which separate parts of a condition spec",
            "rename or copy the file to a path without ',' and '+'",
        )
        object.__setattr__(self, "snr", float(self.snr))
        _check_finite("file", "snr", self.snr)

    @property
    def name(self) -> str:
        return f"noise from {Path(self.path).name} at SNR {_fmt(self.snr)} dB"

    def check_file(self) -> None:
        """Raise InputError if the noise file does not exist (reading is left to apply time)."""
        if not Path(self.path).is_file():
            raise InputError(
                f"noise file {self.path!r} does not exist",
                fix="give file:path= the location of a WAV, FLAC or OGG recording of the noise "
                "(relative paths start from the current directory)",
            )

    def _transform(self, x: np.ndarray, sample_rate: int, key: tuple[int, ...]) -> tuple[np.ndarray, int]:
        self.check_file()
        stat = os.stat(self.path)
        noise, noise_power = _load_noise(str(Path(self.path).resolve()), stat.st_mtime_ns, stat.st_size, sample_rate)
        offset = int(self._rng(key).integers(0, noise.size))
        segment = noise[(offset + np.arange(x.size)) % noise.size]
        return x + _scale_to_snr(segment, noise_power, active_speech_power(x, sample_rate), self.snr), sample_rate


_PHONE_LOW, _PHONE_HIGH, _PHONE_RATE, _PHONE_ORDER = 300.0, 3400.0, 8000, 6


@functools.lru_cache(maxsize=1)
def _phone_filter() -> np.ndarray:
    from scipy.signal import butter

    return butter(_PHONE_ORDER, [_PHONE_LOW, _PHONE_HIGH], btype="bandpass", fs=_PHONE_RATE, output="sos")


@dataclass(frozen=True)
class Telephone(Condition):
    """A narrow-band telephone channel: resample to 8 kHz and keep 300-3400 Hz.

    The audio is resampled to 8 kHz (polyphase, anti-aliased) and band-passed with an
    order-6 Butterworth filter applied forwards and backwards (``sosfiltfilt``): zero
    phase, so word timings do not shift, and 72 dB per octave of roll-off outside the
    band. Returns ``(audio, 8000)``; a recogniser that needs 16 kHz resamples it back up,
    as happens with real phone audio. Follow with ``mulaw`` for the 8-bit G.711 coding
    of a real line.
    """

    kind_name: ClassVar[str] = "telephone"
    summary: ClassVar[str] = "phone band 300-3400 Hz, resampled to 8 kHz (add +mulaw for G.711 coding)"

    @property
    def name(self) -> str:
        return "telephone band 300-3400 Hz at 8 kHz"

    def _check_rate(self, sample_rate: int) -> None:
        if sample_rate <= 2 * _PHONE_HIGH:
            raise self._rate_error(
                "the 3400 Hz band edge is not below the Nyquist frequency", sample_rate,
                "apply telephone to audio sampled above 6800 Hz",
            )

    def _out_rate(self, sample_rate: int) -> int:
        return _PHONE_RATE

    def _transform(self, x: np.ndarray, sample_rate: int, key: tuple[int, ...]) -> tuple[np.ndarray, int]:
        from scipy.signal import sosfiltfilt

        y = resample(x, sample_rate, _PHONE_RATE).astype(np.float64)
        sos = _phone_filter()
        y = sosfiltfilt(sos, y, padlen=min(3 * (2 * len(sos) + 1), y.size - 1))
        return y, _PHONE_RATE


def _mulaw_encode(x: np.ndarray) -> np.ndarray:
    # G.711 as in the reference C code: 14-bit magnitude plus bias, 8 segments of 16 steps.
    pcm = np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int32) >> 2
    negative = pcm < 0
    magnitude = np.minimum(np.abs(pcm) + 33, 0x1FFF)  # the reference code's CLIP + BIAS, top code on overflow
    segment = np.frexp(magnitude)[1].astype(np.int32) - 6  # exact floor(log2) - 5
    mantissa = (magnitude >> (segment + 1)) & 0x0F
    code = (segment << 4) | mantissa
    return np.where(negative, code ^ 0x7F, code ^ 0xFF).astype(np.uint8)


def _mulaw_decode(code: np.ndarray) -> np.ndarray:
    u = ~code.astype(np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, 0x84 - t, t - 0x84) / 32768.0


@dataclass(frozen=True)
class MuLaw(Condition):
    """G.711 mu-law companding: encode to 8-bit codes and decode (mu = 255).

    Uses G.711's eight-segment piecewise-linear form of the mu-law curve, as phone
    networks do, so the output takes at most 255 distinct values (+0 and -0 coincide)
    and the quantisation error grows with the amplitude (about 38 dB SNR for speech).
    The rate is kept: apply it after ``telephone`` (``telephone+mulaw``) for the usual
    8 kHz phone line.

    >>> out, _ = MuLaw()(np.array([0.0, 0.001, 0.5, -0.5], dtype=np.float32), 16000)
    >>> out.tolist()
    [0.0, 0.0009765625, 0.5115966796875, -0.5115966796875]
    """

    kind_name: ClassVar[str] = "mulaw"
    summary: ClassVar[str] = "G.711 mu-law 8-bit companding at the current rate"

    @property
    def name(self) -> str:
        return "G.711 mu-law"

    def _transform(self, x: np.ndarray, sample_rate: int, key: tuple[int, ...]) -> tuple[np.ndarray, int]:
        return _mulaw_decode(_mulaw_encode(x)), sample_rate


@dataclass(frozen=True)
class Reverb(Condition):
    """Room reverberation from a synthetic impulse response.

    The impulse response is seeded Gaussian noise under an exponential envelope that
    falls 60 dB in ``rt60`` seconds, 1.5 * ``rt60`` long (90 dB of decay), with unit
    energy. It has no separate direct path, so it models a talker well beyond the
    room's critical distance: a pessimistic case for a given RT60. The audio is
    convolved with it, cut to its original length (the tail past the end is dropped)
    and scaled back to the input's active speech level.

    Parameters
    ----------
    rt60 : float, default 0.6
        Reverberation time in seconds, above 0 and at most 5.

    Examples
    --------
    >>> ir = Reverb(0.3).impulse_response(16000, seed=2)
    >>> ir.shape, round(float(np.sum(ir**2)), 6)
    ((7200,), 1.0)
    """

    rt60: float = 0.6

    kind_name: ClassVar[str] = "reverb"
    summary: ClassVar[str] = "synthetic room reverberation with the given RT60 in seconds"
    params: ClassVar[tuple[_Param, ...]] = (_Param("rt60", _parse_float, 0.6),)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rt60", float(self.rt60))
        _check_finite("reverb", "rt60", self.rt60)
        _require(
            0 < self.rt60 <= 5,
            f"reverb rt60={_fmt(self.rt60)} is not above 0 and at most 5 seconds",
            "give the reverberation time in seconds, e.g. rt60=0.6 for a ward, 1.5 for a hall",
        )

    @property
    def name(self) -> str:
        return f"reverberation, RT60 {_fmt(self.rt60)} s"

    def impulse_response(self, sample_rate: int, *, seed: int = 0) -> np.ndarray:
        """The impulse response that ``self(audio, sample_rate, seed=seed)`` uses (float64)."""
        return self._impulse_response(sample_rate, (_check_seed(seed, "Reverb.impulse_response"),))

    def _impulse_response(self, sample_rate: int, key: tuple[int, ...]) -> np.ndarray:
        n = max(int(math.ceil(1.5 * self.rt60 * sample_rate)), 1)
        t = np.arange(n) / sample_rate
        ir = self._rng(key).standard_normal(n) * 10.0 ** (-3.0 * t / self.rt60)
        return ir / math.sqrt(float(np.sum(ir**2)))

    def _transform(self, x: np.ndarray, sample_rate: int, key: tuple[int, ...]) -> tuple[np.ndarray, int]:
        from scipy.signal import fftconvolve

        y = fftconvolve(x, self._impulse_response(sample_rate, key))[: x.size]
        before, after = active_speech_power(x, sample_rate), active_speech_power(y, sample_rate)
        if after > 0.0:
            y *= math.sqrt(before / after)
        return y, sample_rate


@dataclass(frozen=True)
class Clip(Condition):
    """Hard clipping at a fraction of the signal's own peak, as from an overdriven input.

    Samples beyond ``level`` times the input's absolute peak are set to that value, so
    the condition means the same for quiet and loud recordings; the output is not
    re-amplified, so its peak is ``level`` times the input's. ``level=1`` changes
    nothing.

    Parameters
    ----------
    level : float, default 0.3
        Fraction of the peak to clip at, above 0 and at most 1.
    """

    level: float = 0.3

    kind_name: ClassVar[str] = "clip"
    summary: ClassVar[str] = "hard clipping at level times the signal's peak"
    params: ClassVar[tuple[_Param, ...]] = (_Param("level", _parse_float, 0.3),)

    def __post_init__(self) -> None:
        object.__setattr__(self, "level", float(self.level))
        _check_finite("clip", "level", self.level)
        _require(
            0 < self.level <= 1,
            f"clip level={_fmt(self.level)} is not above 0 and at most 1",
            "give the clipping point as a fraction of the peak, e.g. level=0.3",
        )

    @property
    def name(self) -> str:
        return f"clipped at {_fmt(round(100 * self.level, 6))}% of the peak"

    def _transform(self, x: np.ndarray, sample_rate: int, key: tuple[int, ...]) -> tuple[np.ndarray, int]:
        limit = self.level * float(np.max(np.abs(x)))
        return np.clip(x, -limit, limit), sample_rate


@dataclass(frozen=True)
class Composed(Condition):
    """Several conditions applied one after another, left to right (``a+b+c``).

    Nested compositions are flattened and ``baseline`` parts dropped, so equal chains
    have equal specs. The first part of each kind gets the caller's seed; a later part
    of the same kind gets a seed derived from it and its position among that kind.

    >>> chain = Composed((Telephone(), MuLaw()))
    >>> chain.spec, chain.name
    ('telephone+mulaw', 'telephone band 300-3400 Hz at 8 kHz + G.711 mu-law')
    """

    parts: tuple[Condition, ...] = ()

    def __post_init__(self) -> None:
        flat: list[Condition] = []
        for part in self.parts:
            if isinstance(part, Composed):
                flat.extend(part.parts)
            elif not isinstance(part, Condition):
                raise InputError(f"{part!r} is not a condition", fix="compose Condition objects, e.g. from parse_condition")
            elif not isinstance(part, Baseline):
                flat.append(part)
        object.__setattr__(self, "parts", tuple(flat))

    @property
    def spec(self) -> str:
        return "+".join(p.spec for p in self.parts) or "baseline"

    @property
    def name(self) -> str:
        return " + ".join(p.name for p in self.parts) or "baseline"

    def _run(self, x: np.ndarray, sample_rate: int, key: tuple[int, ...]) -> tuple[np.ndarray, int]:
        seen: dict[str, int] = {}
        y, rate = np.asarray(x, dtype=np.float32), sample_rate
        for part in self.parts:
            k = seen.get(part.kind_name, 0)
            seen[part.kind_name] = k + 1
            y, rate = part._run(y, rate, key if k == 0 else (*key, k))
        return y, rate


# ------------------------------------------------------------------------- parsing

#: Every kind of condition a spec can name, in the order help text lists them.
CONDITIONS: dict[str, type[Condition]] = {
    cls.kind_name: cls for cls in (Baseline, Noise, Hum, Beeps, NoiseFile, Telephone, MuLaw, Reverb, Clip)
}


def _kind_usage(cls: type[Condition]) -> str:
    if not cls.params:
        return cls.kind_name
    values = ",".join(f"{p.name}={'PATH' if p.default is None else _fmt(p.default)}" for p in cls.params)
    return f"{cls.kind_name}:{values}"


def _parse_part(part: str, check_files: bool) -> Condition:
    kind, _, rest = part.partition(":")
    kind = kind.strip().lower()
    if kind not in CONDITIONS:
        raise InputError(
            f"unknown condition kind {kind!r} in {part!r}",
            fix=f"use one of {', '.join(CONDITIONS)} (see describe_conditions()); a ',' or '+' in a file path also splits the spec",
        )
    cls = CONDITIONS[kind]
    usage = _kind_usage(cls)
    known = {p.name: p for p in cls.params}
    values: dict[str, Any] = {}
    if ":" in part:
        if not cls.params:
            raise InputError(f"condition {kind!r} takes no parameters, but {part!r} gives some", fix=f"write just {kind!r}")
        if not rest.strip():
            raise InputError(f"nothing follows ':' in {part!r}", fix=f"write {kind!r} for the defaults, or e.g. {usage!r}")
        for item in rest.split(","):
            if not item.strip():
                raise InputError(f"empty parameter in {part!r}", fix="separate parameters with single commas")
            key, eq, text = item.partition("=")
            key, text = key.strip().lower(), text.strip()
            if not eq:
                raise InputError(f"parameter {item.strip()!r} in {part!r} has no '=value'", fix=f"write key=value, as in {usage!r}")
            if key not in known:
                raise InputError(
                    f"unknown parameter {key!r} for {kind!r} in {part!r}",
                    fix=f"{kind!r} takes {', '.join(known)} (defaults: {usage})",
                )
            if key in values:
                raise InputError(f"parameter {key!r} is given twice in {part!r}", fix="give each parameter once")
            try:
                values[key] = known[key].parse(text)
            except ValueError as exc:
                raise InputError(f"{kind} {key}={text!r} in {part!r} is not valid", fix=f"give {key} as {exc}") from exc
    missing = [p.name for p in cls.params if p.default is None and p.name not in values]
    if missing:
        raise InputError(f"condition {part!r} needs {', '.join(missing)}=", fix=f"write e.g. {usage!r}")
    try:
        cond = cls(**values)
        if check_files and isinstance(cond, NoiseFile):
            cond.check_file()
    except InputError as exc:
        raise InputError(f"in condition {part!r}: {exc.problem}", fix=exc.fix) from exc
    return cond


def parse_condition(spec: str, *, check_files: bool = True) -> Condition:
    """Parse a condition spec such as ``"hum:freq=1200,snr=5"`` or ``"telephone+mulaw"``.

    A spec is ``kind`` or ``kind:key=value,key=value`` (omitted parameters take their
    defaults), or several such parts joined with ``+``, applied left to right. It is
    split on ``+``, ``:``, ``,`` and ``=`` only; nothing is evaluated. Kinds and keys
    are case-insensitive and spaces around them are ignored.

    Parameters
    ----------
    spec : str
        The condition spec.
    check_files : bool, default True
        Check now that the recording named by a ``file`` condition exists, so a typo
        fails before any audio is processed.

    Returns
    -------
    Condition
        The condition; its :attr:`~Condition.spec` is the canonical form (all
        parameters, fixed order), so ``parse_condition(c.spec).spec == c.spec``.

    Raises
    ------
    InputError
        For an empty spec or part, an unknown kind or parameter, a value that is not a
        number or out of range, or a missing noise file, naming the part at fault.

    Examples
    --------
    >>> parse_condition("noise:snr=0,kind=PINK").spec
    'noise:kind=pink,snr=0'
    >>> parse_condition("baseline+telephone+mulaw").spec
    'telephone+mulaw'
    >>> parse_condition("hum:harmonics=0")
    Traceback (most recent call last):
    ...
    groupwise._errors.InputError: in condition 'hum:harmonics=0': hum harmonics=0 is not a whole number from 1 to 20. Fix: use harmonics=1 for a pure tone, up to harmonics=20.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise InputError(f"condition spec {spec!r} is empty", fix=f"give a condition such as 'baseline' or 'noise:snr=10'; kinds: {', '.join(CONDITIONS)}")
    pieces = spec.split("+")
    for i, piece in enumerate(pieces):
        if not piece.strip():
            where = "at the start" if i == 0 else "at the end" if i == len(pieces) - 1 else "between '+' signs ('++')"
            raise InputError(
                f"condition spec {spec!r} has an empty part {where}",
                fix="join conditions with single '+' signs, e.g. 'telephone+mulaw'",
            )
    parts = [_parse_part(piece.strip(), check_files) for piece in pieces]
    composed = Composed(tuple(parts))
    if not composed.parts:
        return Baseline()
    if len(composed.parts) == 1:
        return composed.parts[0]
    return composed


def describe_conditions() -> str:
    """One line per kind of condition with its parameters and defaults, for ``--help``.

    >>> print(describe_conditions().splitlines()[2])
    hum:freq=1200,harmonics=3,snr=5            steady hum at freq Hz with harmonics 2f..hf (amplitudes 1/k), SNR in dB
    """
    usages = {kind: _kind_usage(cls) for kind, cls in CONDITIONS.items()}
    width = max(len(u) for u in usages.values()) + 2
    return "\n".join(f"{usages[kind]:<{width}}{cls.summary}" for kind, cls in CONDITIONS.items())
