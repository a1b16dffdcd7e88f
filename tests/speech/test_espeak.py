"""Speech synthesis with eSpeak NG (groupwise.speech._espeak)."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip(
    "espeakng_loader", reason="eSpeak NG synthesis needs the espeakng-loader wheel"
)

from groupwise._errors import InputError  # noqa: E402
from groupwise.speech import _espeak  # noqa: E402
from groupwise.speech._espeak import (  # noqa: E402
    Voice,
    available_languages,
    available_variants,
    synthesize,
)

ENGLISH = [
    "en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan",
    "en-gb-x-gbcwmd", "en-029", "en-us-nyc",
]  # fmt: skip
ALIASES = {"en-gb": "en", "zh": "cmn"}  # language codes eSpeak lists for those voices
NON_NATIVE = ["fr", "de", "es", "hi", "vi", "zh", "cmn", "it", "pt", "ru", "pl"]
SENTENCE = "The quick brown fox jumps."


def seconds(audio: np.ndarray, rate: int) -> float:
    return audio.size / rate


def f0(audio: np.ndarray, rate: int) -> float:
    """Median fundamental frequency of the loudest voiced frames, by autocorrelation."""
    frame = int(0.04 * rate)
    starts = range(0, audio.size - frame, frame // 2)
    frames = np.stack([audio[s : s + frame] for s in starts]).astype(np.float64)
    frames -= frames.mean(axis=1, keepdims=True)
    loud = frames[np.argsort((frames**2).sum(axis=1))[-len(frames) // 3 :]]
    shortest, longest = rate // 400, rate // 60
    estimates = []
    for x in loud:
        ac = np.correlate(x, x, "full")[frame - 1 :]
        lag = shortest + int(np.argmax(ac[shortest:longest]))
        if ac[lag] > 0.4 * ac[0]:  # periodic enough to be voiced
            estimates.append(rate / lag)
    assert len(estimates) >= 5
    return float(np.median(estimates))


def test_output_format_and_plausible_duration():
    audio, rate = synthesize(SENTENCE, Voice("en-us"))
    assert rate == 22050
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert np.abs(audio).max() <= 1.0
    assert np.sqrt(np.mean(audio**2)) > 0.02  # not silent
    # 5 words at 160 words per minute is ~1.9 s, plus eSpeak's pauses
    assert 1.5 < seconds(audio, rate) < 3.5


def test_rate_changes_duration():
    fast, rate = synthesize(SENTENCE, Voice("en-us", rate=300))
    slow, _ = synthesize(SENTENCE, Voice("en-us", rate=120))
    assert seconds(fast, rate) < 0.7 * seconds(slow, rate)


def test_pitch_changes_fundamental_frequency():
    text = "Hello, how are you doing today?"
    high, rate = synthesize(text, Voice("en-us", pitch=80))
    low, _ = synthesize(text, Voice("en-us", pitch=20))
    assert f0(high, rate) > 1.2 * f0(low, rate)


def test_variants_and_languages_sound_different():
    outputs = [
        synthesize(SENTENCE, voice)[0]
        for voice in (Voice("en-us"), Voice("en-us", "f2"), Voice("en-us", "m3"), Voice("fr"))
    ]
    for i in range(len(outputs)):
        for j in range(i + 1, len(outputs)):
            assert not np.array_equal(outputs[i], outputs[j])


def test_female_variant_is_higher_pitched():
    text = "Hello, how are you doing today?"
    female, rate = synthesize(text, Voice("en-us", "f2"))
    male, _ = synthesize(text, Voice("en-us", "m3"))
    assert f0(female, rate) > 1.3 * f0(male, rate)


@pytest.mark.parametrize("language", ENGLISH + NON_NATIVE)
def test_accent_voices_exist_and_speak(language):
    assert ALIASES.get(language, language) in available_languages()
    audio, rate = synthesize("Hello world, this is a test.", Voice(language, "f1"))
    assert np.sqrt(np.mean(audio**2)) > 0.02
    assert 0.8 < seconds(audio, rate) < 5.0


def test_language_codes_resolve_to_voices():
    for alias, name in (("zh", "cmn"), ("EN-GB", "en"), ("no", "nb")):
        via_alias, _ = synthesize("hello", Voice(alias))
        assert np.array_equal(via_alias, synthesize("hello", Voice(name))[0])


def test_available_variants():
    variants = available_variants()
    assert {f"m{i}" for i in range(1, 8)} | {f"f{i}" for i in range(1, 5)} <= set(variants)
    assert "klatt" in variants and len(variants) == len(set(variants))


def test_spec_and_gender():
    assert Voice("hi", "f2").spec == "hi+f2"
    assert Voice("en-gb-scotland").spec == "en-gb-scotland"
    assert Voice("en-us").gender == "male"  # eSpeak's base voices are male
    assert [Voice("en-us", f"f{i}").gender for i in range(1, 5)] == ["female"] * 4
    assert [Voice("en-us", f"m{i}").gender for i in range(1, 8)] == ["male"] * 7
    assert Voice("en-us", "klatt").gender == "unknown"
    assert Voice("en-us", "whisperf").gender == "female"  # declared in its variant file


def test_unknown_voice_lists_the_available_ones():
    with pytest.raises(InputError, match="no voice 'en-uss'") as err:
        synthesize("hello", Voice("en-uss"))
    assert "'en-us'" in err.value.problem  # suggestion
    assert "en-gb-scotland" in err.value.fix and "hi" in err.value.fix


def test_unknown_variant_lists_the_available_ones():
    with pytest.raises(InputError, match="no voice variant 'F2'") as err:
        synthesize("hello", Voice("en-us", "F2"))
    assert "'f2'" in err.value.problem
    assert "m3" in err.value.fix and "klatt" in err.value.fix


@pytest.mark.parametrize("text", ["", "   \n", "hello\x00world"])
def test_empty_or_bad_text(text):
    with pytest.raises(InputError):
        synthesize(text, Voice("en-us"))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rate": 79}, {"rate": 451}, {"rate": 160.0}, {"rate": True},
        {"pitch": -1}, {"pitch": 100}, {"pitch_range": 100}, {"variant": "en+f2"},
        {"variant": ""},
    ],
)  # fmt: skip
def test_bad_voice_settings(kwargs):
    with pytest.raises(InputError):
        Voice("en-us", **kwargs)


def test_variant_must_not_be_part_of_the_language():
    with pytest.raises(InputError, match="contains a variant"):
        Voice("en-us+f2")


def test_repeated_calls_are_identical_whatever_came_before():
    text = "Please call Stella and ask her to bring these things."
    voices = [Voice("en-us"), Voice("hi", "f2"), Voice("en-us", "klatt4"), Voice("ru", "whisper")]
    first = [synthesize(text, v)[0] for v in voices]
    # a different voice with extreme settings in between must not leak into the next call
    synthesize("Something else entirely.", Voice("fr", "m7", rate=400, pitch=95, pitch_range=5))
    again = [synthesize(text, v)[0] for v in reversed(voices)][::-1]
    for a, b in zip(first, again):
        assert np.array_equal(a, b)


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux /proc")
def test_corpus_synthesis_keeps_the_switching_leak_out_of_the_caller(tmp_path):
    # eSpeak leaks ~170 kB of English translator per utterance of a voice that switches
    # to English; nothing frees it by poking into the library. Synthesis runs in worker
    # processes, so the calling process does not grow however many utterances there are.
    from groupwise.speech._synth import synthesize_corpus

    def resident_kb() -> int:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") // 1024

    synthesize_corpus(tmp_path / "a", accents=["hi"], speakers=1, utterances=2, progress=False, check_accents=False)
    before = resident_kb()
    synthesize_corpus(tmp_path / "b", accents=["hi"], speakers=2, utterances=50, progress=False, check_accents=False)
    assert resident_kb() - before < 5_000
    assert "DeleteTranslator" not in Path(_espeak.__file__).read_text()  # no calls into private symbols


def test_synthesis_workers_are_replaced_and_the_run_finishes(tmp_path):
    # Workers retire after SPEAKERS_PER_WORKER speakers (eSpeak's leak goes with them);
    # more speakers than the workers' share must still all be synthesised. A pool that
    # retires workers through max_tasks_per_child (2 or more) waits forever on Python
    # 3.11 once they have all retired, so the run is a child process with a generous
    # guard against hanging, not a limit on its speed.
    script = textwrap.dedent(
        f"""
        from groupwise.speech import _synth
        if __name__ == "__main__":
            _synth.SPEAKERS_PER_WORKER = 2
            manifest = _synth.synthesize_corpus(
                {str(tmp_path)!r}, accents=["en-us", "en-gb"], speakers=6, utterances=1, workers=2,
                progress=False, check_accents=False,
            )
            print(len(manifest), manifest["speaker"].nunique())
        """
    )
    (tmp_path / "run.py").write_text(script)
    try:
        done = subprocess.run([sys.executable, str(tmp_path / "run.py")], capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        pytest.fail("synthesis with retiring workers did not finish: the worker pool hung")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["12", "12"]
    assert len(list(tmp_path.rglob("*.wav"))) == 12


def test_silent_on_stdout_and_stderr(capfd):
    synthesize("Nothing to report.", Voice("de", "m2"))
    synthesize("Nothing to report.", Voice("cmn", "f3"))
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_process_pool_gives_the_same_audio():
    texts = ["One two three.", "Four five six.", "Seven eight nine.", "Ten."]
    voices = [Voice("en-us"), Voice("hi", "f2"), Voice("en-gb-scotland", "m3"), Voice("es")]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        pooled = list(pool.map(synthesize, texts, voices))
    for (audio, rate), text, voice in zip(pooled, texts, voices):
        local, local_rate = synthesize(text, voice)
        assert rate == local_rate == 22050
        assert np.array_equal(audio, local)
