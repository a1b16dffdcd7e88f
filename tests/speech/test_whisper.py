"""Whisper offline: wheel models, no network, packing, normalisation, bad model files."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from groupwise._errors import InputError
from groupwise.speech._asr import BackendUnavailable, get_backend
from groupwise.speech._audio import write_wav
from groupwise.speech._espeak import Voice, synthesize
from groupwise.speech._normalize import parse_speech_normalizer
from groupwise.speech._whisper import BASE_SHA256, WhisperBackend, _windows, model_directory, split_words

SENTENCES = [
    "the patient has a mild headache",
    "take two tablets every morning",
    "her blood pressure is normal today",
]


def _wer(ref: str, hyp: str) -> float:
    r, h = ref.split(), hyp.split()
    d = np.arange(len(h) + 1)
    for i, rw in enumerate(r, 1):
        prev, d[0] = d.copy(), i
        for j, hw in enumerate(h, 1):
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (rw != hw))
    return d[-1] / max(len(r), 1)


@pytest.fixture(scope="module")
def clips():
    return [synthesize(text, Voice("en-us", "m3", rate=150)) for text in SENTENCES]


@pytest.fixture(scope="module")
def tiny():
    backend = get_backend("whisper", model="tiny.en", cpu_threads=2)
    yield backend
    backend.close()


def test_tiny_en_transcribes_espeak_speech_with_the_network_unavailable(tmp_path, clips):
    wav = tmp_path / "a.wav"
    write_wav(wav, *clips[0])
    # Every way out to the network raises, and is recorded; HF_HUB_OFFLINE is not set
    # beforehand, so the backend must not need it to be set by the caller.
    script = textwrap.dedent(
        f"""
        import os, socket, json
        os.environ.pop("HF_HUB_OFFLINE", None)
        tried = []
        def refuse(*args, **kwargs):
            tried.append(repr(args[:2]))
            raise OSError("network unavailable in this test")
        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        from groupwise.speech._asr import get_backend
        from groupwise.speech._audio import read_audio
        backend = get_backend("whisper", model="tiny.en", pack=False)
        text = backend.transcribe(*read_audio({str(wav)!r}))
        print(json.dumps({{"text": text, "tried": tried}}))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["tried"] == []
    norm = parse_speech_normalizer("english")
    ref, hyp = norm([SENTENCES[0], answer["text"]])
    assert _wer(ref, hyp) <= 0.34, answer["text"]


def test_packed_windows_give_each_utterance_its_own_words(tiny, clips):
    packed = tiny.transcribe_batch(clips)
    norm = parse_speech_normalizer("english")
    for ref, hyp in zip(SENTENCES, packed):
        r, h = norm([ref, hyp])
        assert _wer(r, h) <= 0.34, (ref, hyp)
    one_by_one = WhisperBackend(model="tiny.en", pack=False, cpu_threads=2)
    singles = one_by_one.transcribe_batch(clips[:1])
    assert norm(singles) == norm(packed[:1])
    assert tiny.config()["pack"] == {"window": 28.0, "gap": 0.5}
    assert one_by_one.config()["pack"] is False  # packed and single results are cached apart


def test_each_fallback_rule_reaches_the_decoder(clips):
    """The fallback option sets faster-whisper's thresholds, and every rule still transcribes."""
    norm = parse_speech_normalizer("english")
    expected = {
        "loops": {"log_prob_threshold": None, "no_speech_threshold": None},
        "whisper": {},
        "none": {"temperature": 0.0},
    }
    configs = set()
    for rule, thresholds in expected.items():
        backend = get_backend("whisper", model="tiny.en", cpu_threads=2, beam_size=1, fallback=rule, best_of=2)
        backend.load()
        calls = []
        decode = backend._model.transcribe
        backend._model.transcribe = lambda audio, **kw: calls.append(kw) or decode(audio, **kw)
        texts = backend.transcribe_batch(clips)
        assert calls and all(kw["best_of"] == 2 for kw in calls)
        for kw in calls:
            for name in ("log_prob_threshold", "no_speech_threshold", "temperature"):
                assert (name in kw) == (name in thresholds) and kw.get(name) == thresholds.get(name), (rule, kw)
        refs, hyps = norm(SENTENCES), norm(texts)
        assert sum(_wer(r, h) for r, h in zip(refs, hyps)) / len(refs) < 0.3, (rule, texts)
        configs.add(json.dumps(backend.config(), sort_keys=True))
        backend.close()
    assert len(configs) == 3  # cached transcripts of one rule are never reused for another
    with pytest.raises(InputError, match="'fallback' parameter .* Got 'sometimes'"):
        get_backend("whisper", fallback="sometimes")
    with pytest.raises(InputError, match="'best_of' parameter"):
        get_backend("whisper", best_of=0)


def test_packing_and_splitting_by_time():
    assert _windows([10, 10, 10], 28, 0.5) == [[0, 1], [2]]
    assert _windows([40], 28, 0.5) == [[0]]

    class W:
        def __init__(self, start, end, word):
            self.start, self.end, self.word = start, end, word

    words = [W(0.1, 0.4, " a"), W(1.52, 1.6, " b"), W(5.0, 5.2, " c")]
    # b's middle is in the gap after the first clip; c is past every span: nearest.
    assert split_words(words, [(0.0, 1.5), (2.0, 3.0)], 0.5) == ["a b", "c"]
    assert split_words([], [(0.0, 1.0)], 0.5) == [""]


def test_transcribe_packs_caches_and_resumes(tmp_path, clips):
    from groupwise.speech._transcribe import transcribe

    rows = []
    for i, (text, (audio, rate)) in enumerate(zip(SENTENCES, clips)):
        write_wav(tmp_path / f"{i}.wav", audio, rate)
        rows.append({"audio": str(tmp_path / f"{i}.wav"), "reference": text, "speaker": f"s{i}"})
    manifest = pd.DataFrame(rows)
    options = {"model": "tiny.en", "cpu_threads": 2}
    first = transcribe(manifest, backend="whisper", backend_options=options, cache=tmp_path, progress=False)
    assert first["error"].isna().all() and not first["cached"].any()
    assert all(h for h in first["hypothesis"])
    again = transcribe(manifest, backend="whisper", backend_options=options, cache=tmp_path, progress=False)
    assert again["cached"].all()
    assert list(again["hypothesis"]) == list(first["hypothesis"])


def test_english_normaliser_in_the_audit():
    from groupwise import audit

    frame = pd.DataFrame(
        {
            "reference": ["weight is one hundred and sixteen kilograms", "the x ray is at nine"] * 10,
            "hypothesis": ["Weight is 116 kilograms.", "The X-ray is at 9."] * 10,
            "speaker": [f"s{i}" for i in range(20)],
            "accent": ["a", "b"] * 10,
        }
    )
    plain = audit(frame, by="accent", cluster="speaker", n_boot=0)
    english = audit(frame, by="accent", cluster="speaker", n_boot=0, normalize=parse_speech_normalizer("english"))
    assert plain.to_json() != english.to_json()
    assert json.loads(english.to_json())["settings"]["normalize"] == "english"
    assert '"overall"' in english.to_json()
    assert parse_speech_normalizer("english")(["The X-ray is at 9."]) == parse_speech_normalizer("english")(
        ["the x ray is at nine"]
    )


def test_missing_tokenizer_is_refused_before_any_hub_is_asked(tmp_path):
    source = model_directory("tiny.en")
    bare = tmp_path / "tiny"
    bare.mkdir()
    for name in ("model.bin", "config.json", "vocabulary.txt"):
        (bare / name).symlink_to(source / name)
    with pytest.raises(BackendUnavailable, match="tokenizer.json"):
        get_backend("whisper", model=str(bare))
    with pytest.raises(BackendUnavailable, match="neither 'tiny.en' nor 'base'"):
        get_backend("whisper", model="large-v3")


def test_base_is_joined_once_verified_and_a_corrupt_copy_refused(tmp_path):
    target = model_directory("base", cache_dir=tmp_path)
    model = target / "model.bin"
    assert hashlib.sha256(model.read_bytes()).hexdigest() == BASE_SHA256
    assert {"config.json", "tokenizer.json"} <= {p.name for p in target.iterdir()}
    mtime = model.stat().st_mtime_ns
    assert model_directory("base", cache_dir=tmp_path) == target and model.stat().st_mtime_ns == mtime
    with open(model, "r+b") as f:  # one flipped byte in the middle
        f.seek(50_000_000)
        byte = f.read(1)
        f.seek(50_000_000)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(BackendUnavailable, match="corrupt") as err:
        model_directory("base", cache_dir=tmp_path)
    assert "delete the directory" in err.value.fix


def test_cli_whisper_transcribes_and_bad_model_exits_2(tmp_path, clips):
    audio, rate = clips[1]
    write_wav(tmp_path / "a.wav", audio, rate)
    pd.DataFrame({"audio": ["a.wav"], "text": [SENTENCES[1]], "speaker": ["s"]}).to_csv(tmp_path / "m.csv", index=False)
    base = [sys.executable, "-m", "groupwise.cli", "transcribe", str(tmp_path / "m.csv"), "--cache", str(tmp_path)]
    done = subprocess.run(
        [*base, "--asr", "whisper", "-o", str(tmp_path / "h.csv")], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    hyp = pd.read_csv(tmp_path / "h.csv")["hypothesis"][0]
    assert "tablets" in hyp.lower()
    bad = subprocess.run(
        [*base, "--asr", "whisper", "--option", f"model={tmp_path}", "-o", str(tmp_path / "x.csv")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr and "model.bin" in bad.stderr
