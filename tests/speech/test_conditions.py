"""Last-mile acoustic conditions (groupwise.speech._conditions)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import fftconvolve, welch

from groupwise._errors import InputError
from groupwise.speech import _conditions as conditions_module
from groupwise.speech._conditions import (
    CONDITIONS,
    Baseline,
    Beeps,
    Clip,
    Composed,
    Condition,
    Hum,
    MuLaw,
    Noise,
    NoiseFile,
    Reverb,
    Telephone,
    active_speech_power,
    describe_conditions,
    parse_condition,
)

RATE = 16000


def speech_like(seconds: float = 2.0, rate: int = RATE) -> np.ndarray:
    """Voiced harmonics (f0 near 120 Hz, formant-weighted) under a 4 Hz syllabic envelope,
    with 0.2 s of silence at each end."""
    t = np.arange(int(seconds * rate)) / rate
    f0 = 120 + 10 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voiced = np.zeros_like(t)
    for k in range(1, 34):
        centre = 120.0 * k
        weight = sum(np.exp(-0.5 * ((centre - formant) / 150.0) ** 2) for formant in (500, 1500, 2500)) + 0.05
        voiced += weight / k * np.sin(k * phase)
    envelope = np.sin(2 * np.pi * 2 * t) ** 2  # four syllables a second
    envelope[(t < 0.2) | (t > seconds - 0.2)] = 0.0
    x = voiced * envelope
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return speech_like()


def added(cond: Condition, x: np.ndarray, seed: int = 0) -> np.ndarray:
    out, rate = cond(x, RATE, seed=seed)
    assert rate == RATE and out.dtype == np.float32 and out.shape == x.shape
    assert np.abs(out).max() < 1.0, "the test levels should not need clipping"
    return out.astype(np.float64) - x.astype(np.float64)


def snr_db(signal: np.ndarray, noise_power: float) -> float:
    return float(10 * np.log10(active_speech_power(signal, RATE) / noise_power))


# ----------------------------------------------------------------- speech level


def test_active_speech_power_ignores_silence_and_scales_with_gain(speech):
    x = speech.astype(np.float64)
    t = np.arange(x.size) / RATE
    talking = x[(t >= 0.2) & (t <= 1.8)]
    # about the power while talking, well above the power over the whole recording
    assert abs(10 * np.log10(active_speech_power(x, RATE) / np.mean(talking**2))) < 1.0
    assert 10 * np.log10(active_speech_power(x, RATE) / np.mean(x**2)) > 0.5
    padded = np.concatenate([np.zeros(3 * RATE), x, np.zeros(3 * RATE)])
    assert active_speech_power(padded, RATE) == pytest.approx(active_speech_power(x, RATE), rel=0.1)
    assert active_speech_power(0.1 * x, RATE) == pytest.approx(0.01 * active_speech_power(x, RATE), rel=1e-9)
    assert active_speech_power(np.zeros(100), RATE) == 0.0
    assert active_speech_power(np.zeros(0), RATE) == 0.0


@pytest.mark.parametrize("width", [1, 2, 5, 6, 3201])
def test_trailing_max_window_ends_at_each_sample(width):
    values = np.random.default_rng(width).random(4000)
    expected = np.array([values[max(0, i - width + 1) : i + 1].max() for i in range(values.size)])
    assert np.array_equal(conditions_module._trailing_max(values, width), expected)


def test_active_speech_power_rejects_nan():
    with pytest.raises(InputError, match="NaN"):
        active_speech_power(np.array([0.1, np.nan]), RATE)


# -------------------------------------------------------------------------- SNR


@pytest.mark.parametrize(
    "spec",
    ["noise:kind=white,snr=10", "noise:kind=pink,snr=0", "noise:kind=babble,snr=5", "noise:kind=white,snr=-3",
     "hum:freq=1200,harmonics=3,snr=5", "hum:freq=60,harmonics=8,snr=15"],
)  # fmt: skip
def test_additive_conditions_reach_their_snr(speech, spec):
    cond = parse_condition(spec)
    noise = added(cond, speech)
    assert snr_db(speech, float(np.mean(noise**2))) == pytest.approx(cond.snr, abs=0.5)


def test_noise_level_does_not_depend_on_silence_around_the_speech(speech):
    padded = np.concatenate([np.zeros(2 * RATE, dtype=np.float32), speech, np.zeros(2 * RATE, dtype=np.float32)])
    p_short = np.mean(added(Noise("white", 10), speech) ** 2)
    p_long = np.mean(added(Noise("white", 10), padded) ** 2)
    assert 10 * np.log10(p_long / p_short) == pytest.approx(0.0, abs=0.5)


def test_silent_input_gets_no_noise():
    silence = np.zeros(RATE, dtype=np.float32)
    for spec in ["noise:kind=babble", "hum", "beeps"]:
        out, _ = parse_condition(spec)(silence, RATE)
        assert not out.any()


def test_output_is_clipped_to_full_scale(speech):
    loud = (speech / np.abs(speech).max()).astype(np.float32)
    out, _ = Noise("white", -10)(loud, RATE)
    assert np.abs(out).max() == 1.0


# ------------------------------------------------------------------ noise colours


def _slope_db_per_decade(noise: np.ndarray, low: float, high: float) -> float:
    f, p = welch(noise, RATE, nperseg=2048)
    band = (f >= low) & (f <= high)
    return float(np.polyfit(np.log10(f[band]), 10 * np.log10(p[band]), 1)[0])


def test_pink_noise_falls_10_db_per_decade_and_white_is_flat(speech):
    assert _slope_db_per_decade(added(Noise("pink", 0), speech), 50, 7000) == pytest.approx(-10.0, abs=1.0)
    assert _slope_db_per_decade(added(Noise("white", 0), speech), 50, 7000) == pytest.approx(0.0, abs=1.0)


def test_babble_is_speech_shaped_and_fluctuates(speech):
    babble = added(Noise("babble", 0), speech)
    f, p = welch(babble, RATE, nperseg=2048)
    level = lambda lo, hi: 10 * np.log10(p[(f >= lo) & (f <= hi)].mean())  # noqa: E731
    assert level(200, 500) - level(4000, 7000) > 15
    assert level(200, 500) - level(20, 50) > 10
    frames = lambda x: 10 * np.log10(np.mean(x[: x.size // 800 * 800].reshape(-1, 800) ** 2, axis=1))  # noqa: E731
    white = added(Noise("white", 0), speech)
    assert frames(babble).std() > 2 * frames(white).std()


# ---------------------------------------------------------------------------- hum


def test_hum_peaks_at_its_frequency_with_decaying_harmonics(speech):
    hum = added(Hum(freq=1200, harmonics=3, snr=5), speech)
    spectrum = np.abs(np.fft.rfft(hum * np.hanning(hum.size))) ** 2
    f = np.fft.rfftfreq(hum.size, 1 / RATE)
    assert abs(f[np.argmax(spectrum)] - 1200) < 2
    peak = lambda hz: spectrum[np.abs(f - hz) < 3].max()  # noqa: E731
    assert 10 * np.log10(peak(2400) / peak(1200)) == pytest.approx(-6.0, abs=1.0)
    assert 10 * np.log10(peak(3600) / peak(1200)) == pytest.approx(-9.5, abs=1.0)
    assert 10 * np.log10(peak(4800) / peak(1200)) < -60  # only three components
    assert 10 * np.log10(peak(1800) / peak(1200)) < -60


def test_hum_leaves_out_harmonics_above_nyquist(speech):
    hum = added(Hum(freq=3000, harmonics=3, snr=5), speech)
    spectrum = np.abs(np.fft.rfft(hum * np.hanning(hum.size))) ** 2
    f = np.fft.rfftfreq(hum.size, 1 / RATE)
    peak = lambda hz: spectrum[np.abs(f - hz) < 3].max()  # noqa: E731
    assert peak(6000) > 0.1 * peak(3000)
    assert peak(7000) < 1e-6 * peak(3000)  # 9000 Hz would alias to 7000 Hz


def test_tones_at_or_above_nyquist_fail_when_applied(speech):
    with pytest.raises(InputError, match="8000 Hz"):
        Hum(freq=8000)(speech, RATE)
    with pytest.raises(InputError, match="hum:freq=5000") as err:
        parse_condition("telephone+hum:freq=5000")(speech, RATE)
    assert "before 'telephone'" in err.value.fix
    with pytest.raises(InputError, match="Nyquist"):
        Beeps(freq=5000)(speech[::2].copy(), 8000)


# -------------------------------------------------------------------------- beeps


def _runs(on: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    edges = np.diff(on.astype(int))
    starts, ends = np.flatnonzero(edges == 1) + 1, np.flatnonzero(edges == -1) + 1
    if on[0]:
        starts = np.r_[0, starts]
    if on[-1]:
        ends = np.r_[ends, on.size]
    return starts, ends


def test_beeps_are_periodic_with_burst_on_snr(speech):
    x = speech_like(3.0)
    cond = parse_condition("beeps:freq=2000,period=0.5,duty=0.2,snr=5")
    beeps = added(cond, x, seed=4)
    power = np.convolve(beeps**2, np.ones(32) / 32, mode="same")  # 2 ms smoothing
    starts, ends = _runs(power > 0.25 * power.max())
    whole = (starts > 0) & (ends < x.size)
    starts, ends = starts[whole], ends[whole]
    assert len(starts) >= 4
    assert np.allclose(np.diff(starts) / RATE, 0.5, atol=0.002)
    assert np.allclose((ends - starts) / RATE, 0.1, atol=0.01)
    # between bursts there is nothing
    assert np.all(beeps[ends[0] + 80 : starts[1] - 80] == 0)
    # the SNR is over the time a burst sounds (the central part, clear of the ramps)
    on_power = np.mean(np.concatenate([beeps[s + 160 : e - 160] for s, e in zip(starts, ends)]) ** 2)
    assert snr_db(x, on_power) == pytest.approx(5.0, abs=0.5)
    # the burst train starts at a seeded point of its cycle
    other_power = np.convolve(added(cond, x, seed=5) ** 2, np.ones(32) / 32, mode="same")
    other_starts = _runs(other_power > 0.25 * power.max())[0]
    shift = (other_starts[1] - starts[1]) / RATE % 0.5
    assert 0.005 < shift < 0.495


def test_beeps_have_no_clicks(speech):
    beeps = added(Beeps(freq=1000, period=0.5, duty=0.2, snr=0), speech)
    # the raised-cosine ramps keep each sample step within what the 1 kHz tone itself makes
    amplitude = np.abs(beeps).max()
    assert np.abs(np.diff(beeps)).max() <= amplitude * 2 * np.sin(np.pi * 1000 / RATE) * 1.01


# --------------------------------------------------------------------------- file


@pytest.fixture()
def noise_wav(tmp_path):
    path = tmp_path / "ward.wav"
    rng = np.random.default_rng(11)
    stereo = 0.1 * rng.standard_normal((5 * 22050, 2)) + 0.02  # other rate, two channels, DC
    sf.write(path, stereo, 22050, subtype="FLOAT")
    return path


def test_file_noise_reaches_its_snr_and_is_seeded(speech, noise_wav):
    cond = parse_condition(f"file:path={noise_wav},snr=8")
    assert cond.spec == f"file:path={noise_wav},snr=8"
    assert cond.name == "noise from ward.wav at SNR 8 dB"
    noise = added(cond, speech, seed=1)
    assert abs(noise.mean()) < 0.01 * noise.std()  # the DC offset is removed
    assert snr_db(speech, float(np.mean(noise**2))) == pytest.approx(8.0, abs=0.5)
    assert np.array_equal(noise, added(cond, speech, seed=1))
    assert not np.allclose(noise, added(cond, speech, seed=2))


def test_short_noise_file_is_looped(speech, tmp_path):
    path = tmp_path / "short.wav"
    sf.write(path, 0.1 * np.random.default_rng(3).standard_normal(RATE // 4), RATE, subtype="FLOAT")
    noise = added(NoiseFile(str(path), snr=10), speech)
    period = RATE // 4
    assert np.allclose(noise[:-period], noise[period:], atol=1e-6)


def test_missing_unreadable_or_silent_noise_file(speech, tmp_path):
    missing = tmp_path / "nowhere" / "ward.wav"
    with pytest.raises(InputError, match="ward.wav"):
        parse_condition(f"file:path={missing}")
    cond = parse_condition(f"file:path={missing},snr=3", check_files=False)
    with pytest.raises(InputError, match="ward.wav"):
        cond(speech, RATE)
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"this is not audio" * 10)
    with pytest.raises(InputError, match="garbage.wav"):
        parse_condition(f"file:path={garbage}")(speech, RATE)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(RATE), RATE)
    with pytest.raises(InputError, match="silent"):
        parse_condition(f"file:path={silent}")(speech, RATE)


# ---------------------------------------------------------------- phone channel


def test_telephone_band_limits_and_resamples_to_8k():
    white = (0.1 * np.random.default_rng(0).standard_normal(2 * RATE)).astype(np.float32)
    out, rate = Telephone()(white, RATE)
    assert rate == 8000 and out.shape == (RATE,) and out.dtype == np.float32
    f, p = welch(out, 8000, nperseg=1024)
    band = (f >= 300) & (f <= 3400)
    assert 10 * np.log10(p[~band].sum() / p[band].sum()) < -20
    assert 10 * np.log10(p[f < 200].mean() / p[band].mean()) < -30
    fx, px = welch(white, RATE, nperseg=2048)
    middle, middle_x = (f >= 500) & (f <= 3000), (fx >= 500) & (fx <= 3000)
    assert 10 * np.log10(p[middle].mean() / px[middle_x].mean()) == pytest.approx(0.0, abs=0.5)


def test_telephone_rates():
    out, rate = Telephone()(np.zeros(800, dtype=np.float32), 8000)
    assert (out.size, rate) == (800, 8000)
    out, rate = Telephone()(np.zeros(0, dtype=np.float32), RATE)
    assert (out.size, rate) == (0, 8000)
    with pytest.raises(InputError, match="6800"):
        Telephone()(np.zeros(600, dtype=np.float32), 6000)


def test_mulaw_quantises_to_at_most_256_levels(speech):
    out, rate = MuLaw()(speech, RATE)
    assert rate == RATE and out.shape == speech.shape
    error = out.astype(np.float64) - speech
    assert np.abs(error).max() > 0
    assert 30 < 10 * np.log10(np.mean(speech.astype(np.float64) ** 2) / np.mean(error**2)) < 45
    assert len(np.unique(out)) <= 256
    full, _ = MuLaw()(np.linspace(-1, 1, 100_001, dtype=np.float32), RATE)
    assert np.abs(full).max() <= 1.0 and len(np.unique(full)) == 255


def test_mulaw_matches_the_g711_reference_codec():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")  # removed in Python 3.13
    pcm = np.arange(-32768, 32768, dtype=np.int16)
    reference = np.frombuffer(audioop.ulaw2lin(audioop.lin2ulaw(pcm.tobytes(), 2), 2), dtype=np.int16)
    out, _ = MuLaw()((pcm / 32768).astype(np.float32), RATE)
    assert np.array_equal(np.round(out.astype(np.float64) * 32768).astype(np.int16), reference)


# ------------------------------------------------------------------------- reverb


@pytest.mark.parametrize("rt60", [0.3, 0.6, 1.2])
def test_reverb_impulse_response_decays_60_db_in_rt60(rt60):
    ir = Reverb(rt60).impulse_response(RATE, seed=3)
    edc = np.cumsum(ir[::-1] ** 2)[::-1]  # Schroeder backward integration
    edc_db = 10 * np.log10(edc / edc[0])
    fit = (edc_db <= -5) & (edc_db >= -35)
    slope = np.polyfit(np.flatnonzero(fit) / RATE, edc_db[fit], 1)[0]
    assert -60 / slope == pytest.approx(rt60, rel=0.1)


def test_reverb_convolves_with_its_impulse_response_and_keeps_level(speech):
    cond = Reverb(0.5)
    out, rate = cond(speech, RATE, seed=7)
    assert rate == RATE and out.shape == speech.shape
    wet = fftconvolve(speech.astype(np.float64), cond.impulse_response(RATE, seed=7))[: speech.size]
    assert np.allclose(out, wet * np.sqrt(active_speech_power(speech, RATE) / active_speech_power(wet, RATE)), atol=1e-6)
    assert 10 * np.log10(active_speech_power(out, RATE) / active_speech_power(speech, RATE)) == pytest.approx(0, abs=0.05)
    assert not np.allclose(out, cond(speech, RATE, seed=8)[0])


# --------------------------------------------------------------------------- clip


@pytest.mark.parametrize("level", [0.1, 0.3, 0.75])
def test_clip_peak_is_level_times_input_peak(speech, level):
    out, _ = Clip(level)(speech, RATE)
    assert np.abs(out).max() == pytest.approx(level * np.abs(speech).max(), rel=1e-6)
    assert np.array_equal(Clip(1.0)(speech, RATE)[0], speech)


# --------------------------------------------------------- specs and composition


@pytest.mark.parametrize(
    ("spec", "canonical"),
    [
        ("baseline", "baseline"),
        ("noise", "noise:kind=white,snr=10"),
        (" Noise : SNR = 5.0 , kind = PINK ", "noise:kind=pink,snr=5"),
        ("noise:kind=babble,snr=-0", "noise:kind=babble,snr=0"),
        ("hum:freq=1.2e3", "hum:freq=1200,harmonics=3,snr=5"),
        ("hum:harmonics=1,snr=.5", "hum:freq=1200,harmonics=1,snr=0.5"),
        ("beeps:duty=0.25", "beeps:freq=2000,period=1.5,duty=0.25,snr=5"),
        ("telephone + mulaw", "telephone+mulaw"),
        ("reverb", "reverb:rt60=0.6"),
        ("clip:level=1e-2", "clip:level=0.01"),
        ("baseline+clip", "clip:level=0.3"),
        ("baseline+baseline", "baseline"),
        ("reverb:rt60=1+noise:snr=20+telephone+mulaw", "reverb:rt60=1+noise:kind=white,snr=20+telephone+mulaw"),
    ],
)
def test_canonical_specs_round_trip(spec, canonical):
    cond = parse_condition(spec)
    assert cond.spec == canonical
    again = parse_condition(cond.spec)
    assert again.spec == canonical and again == cond and hash(again) == hash(cond)
    assert cond.name and "=" not in cond.name


def test_equal_transforms_have_equal_specs():
    assert Noise() == parse_condition("noise:snr=10.000") and Noise().spec == Noise("white", 10).spec
    assert Hum(1200.0, 3, 5).spec == Hum(1200, 3, 5.0).spec
    assert (Telephone() + MuLaw()).spec == parse_condition("telephone+mulaw").spec
    assert Composed((Composed((Telephone(), Baseline())), MuLaw())).parts == (Telephone(), MuLaw())
    assert parse_condition("noise:snr=0.1").spec != parse_condition("noise:snr=0.10000001").spec


def test_composition_applies_left_to_right(speech):
    chain = parse_condition("noise:snr=10+telephone")
    out, rate = chain(speech, RATE, seed=3)
    step, _ = Noise(snr=10)(speech, RATE, seed=3)
    by_hand, by_hand_rate = Telephone()(step, RATE)
    assert rate == by_hand_rate == 8000 and np.array_equal(out, by_hand)
    reversed_out, reversed_rate = parse_condition("telephone+noise:snr=10")(speech, RATE, seed=3)
    assert reversed_rate == 8000 and not np.allclose(out, reversed_out)
    # out-of-band noise survives when it is added after the phone band
    f, p = welch(reversed_out, 8000, nperseg=512)
    f2, p2 = welch(out, 8000, nperseg=512)
    assert p[f < 150].mean() > 100 * p2[f2 < 150].mean()


def test_repeated_kinds_in_a_chain_get_different_noise(speech):
    once, _ = Noise(snr=20)(speech, RATE, seed=0)
    twice, _ = parse_condition("noise:snr=20+noise:snr=20")(speech, RATE, seed=0)
    first, second = once.astype(np.float64) - speech, twice.astype(np.float64) - once
    assert abs(np.corrcoef(first, second)[0, 1]) < 0.1


@pytest.mark.parametrize(
    "spec",
    ["noise:kind=white", "noise:kind=pink", "noise:kind=babble", "hum", "beeps", "reverb:rt60=0.4",
     "clip", "telephone+mulaw", "reverb:rt60=0.3+noise:kind=babble,snr=5"],
)  # fmt: skip
def test_same_seed_same_output_other_seed_other_noise(speech, spec):
    cond = parse_condition(spec)
    a, rate = cond(speech, RATE, seed=5)
    b, _ = parse_condition(spec)(speech.copy(), RATE, seed=5)
    assert a.dtype == np.float32 and np.array_equal(a, b)
    assert a.size == (speech.size if rate == RATE else speech.size // 2)
    c, _ = cond(speech, RATE, seed=6)
    deterministic = spec in {"clip", "telephone+mulaw"}
    assert np.array_equal(a, c) == deterministic


# ------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("noise++hum", "'++'"),
        ("+noise", "start"),
        ("noise+", "end"),
        ("foo:snr=3", "'foo'"),
        ("noise:level=3", "'level'"),
        ("noise:snr=abc", "snr='abc'"),
        ("noise:snr=nan", "snr='nan'"),
        ("noise:snr=inf", "snr='inf'"),
        ("noise:snr=1_0", "snr='1_0'"),
        ("noise:snr", "'snr'"),
        ("noise:snr=1,snr=2", "twice"),
        ("noise:", "noise:"),
        ("noise:kind=pink,,snr=5", "empty parameter"),
        ("noise:kind=brown", "brown"),
        ("hum:freq=0", "freq=0"),
        ("hum:freq=-50", "freq=-50"),
        ("hum:harmonics=0", "harmonics=0"),
        ("hum:harmonics=21", "harmonics=21"),
        ("hum:harmonics=2.5", "harmonics='2.5'"),
        ("beeps:duty=0", "duty=0"),
        ("beeps:duty=1", "duty=1"),
        ("beeps:period=0", "period=0"),
        ("reverb:rt60=0", "rt60=0"),
        ("reverb:rt60=5.5", "rt60=5.5"),
        ("clip:level=0", "level=0"),
        ("clip:level=1.5", "level=1.5"),
        ("telephone:rate=8000", "telephone"),
        ("file", "path"),
        ("file:snr=3", "path"),
        ("hum+reverb:rt60=9", "reverb:rt60=9"),
    ],
)
def test_bad_specs_raise_input_errors_naming_the_part(spec, named):
    with pytest.raises(InputError) as err:
        parse_condition(spec)
    assert named in str(err.value)
    assert err.value.fix


def test_error_messages_list_kinds_and_parameters():
    with pytest.raises(InputError) as err:
        parse_condition("humm")
    assert all(kind in err.value.fix for kind in CONDITIONS)
    with pytest.raises(InputError) as err:
        parse_condition("beeps:freqency=100")
    assert "freq, period, duty, snr" in err.value.fix
    assert "beeps:freq=2000,period=1.5,duty=0.1,snr=5" in err.value.fix


def test_limits_that_are_allowed():
    for spec in ["reverb:rt60=5", "clip:level=1", "hum:harmonics=20", "hum:harmonics=1", "noise:snr=-20"]:
        parse_condition(spec)


@pytest.mark.parametrize(
    ("audio", "rate", "seed", "named"),
    [
        (np.zeros((2, 100), dtype=np.float32), RATE, 0, "mono"),
        (np.zeros(100, dtype=np.int16), RATE, 0, "int16"),
        (np.array([0.0, np.nan]), RATE, 0, "NaN"),
        (np.zeros(100), 0, 0, "The 'sample_rate' parameter of Condition.__call__"),
        (np.zeros(100), 16000.0, 0, "The 'sample_rate' parameter of Condition.__call__"),
        (np.zeros(100), RATE, -1, "The 'seed' parameter of Condition.__call__"),
        (np.zeros(100), RATE, 1.5, "The 'seed' parameter of Condition.__call__"),
    ],
)
def test_bad_audio_rate_or_seed(audio, rate, seed, named):
    with pytest.raises(InputError, match=named):
        Noise()(audio, rate, seed=seed)


def test_empty_audio_passes_through():
    for spec in ["noise:kind=babble", "hum", "beeps", "reverb", "clip", "mulaw", "baseline"]:
        out, rate = parse_condition(spec)(np.zeros(0, dtype=np.float32), RATE)
        assert out.size == 0 and out.dtype == np.float32 and rate == RATE


# ------------------------------------------------------------------------ help


def test_describe_conditions_has_one_parseable_line_per_kind():
    lines = describe_conditions().splitlines()
    assert [line.split(":")[0].split()[0] for line in lines] == list(CONDITIONS)
    for line in lines:
        usage = line.split()[0].replace("PATH", "ward.wav")
        assert parse_condition(usage, check_files=False).spec == usage
    assert "noise:kind=white,snr=10" in lines[1] and "babble" in lines[1]


def test_help_defaults_are_the_constructor_defaults():
    for kind, cls in CONDITIONS.items():
        if kind != "file":
            assert describe_conditions().splitlines()[list(CONDITIONS).index(kind)].split()[0] == cls().spec


def test_registry_and_exports():
    assert set(CONDITIONS) == {"baseline", "noise", "hum", "beeps", "file", "telephone", "mulaw", "reverb", "clip"}
    for name in conditions_module.__all__:
        assert hasattr(conditions_module, name)
    assert all(issubclass(cls, Condition) for cls in CONDITIONS.values())
