"""Tests of the corpus loaders and audio reading."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from groupwise.speech._audio import AudioError, audio_hash, read_audio
from groupwise.speech._corpus import CorpusError, load_audiofolder, load_common_voice, load_corpus, load_manifest


def tone(seconds=0.5, rate=16000, channels=1):
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * 220 * t)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "wavs").mkdir()
    sf.write(tmp_path / "wavs" / "a.wav", tone(), 16000)
    sf.write(tmp_path / "wavs" / "b.wav", tone(rate=44100, channels=2), 44100)
    sf.write(tmp_path / "wavs" / "empty.wav", np.zeros(0), 16000)
    (tmp_path / "wavs" / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage")
    return tmp_path


def test_read_audio_mixes_stereo_and_resamples(folder):
    audio, rate = read_audio(folder / "wavs" / "b.wav", sample_rate=16000)
    assert rate == 16000 and audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - 8000) <= 1
    assert np.abs(audio).max() == pytest.approx(0.3, abs=0.02)
    with pytest.raises(AudioError, match="does not exist"):
        read_audio(folder / "nope.wav")
    with pytest.raises(AudioError, match="could not be read"):
        read_audio(folder / "wavs" / "corrupt.wav")
    with pytest.raises(AudioError, match="0 seconds"):
        read_audio(folder / "wavs" / "empty.wav")
    a, r = read_audio(folder / "wavs" / "a.wav")
    assert audio_hash(a, r) == audio_hash(*read_audio(folder / "wavs" / "a.wav"))


def test_manifest_problems_are_reported_together(folder):
    pd.DataFrame({
        "audio": ["wavs/a.wav", "wavs/b.wav", "wavs/missing.wav", "wavs/empty.wav", "wavs/corrupt.wav"],
        "text": ["one", "two", "three", "four", "five"],
        "speaker": ["s1", "s2", "s3", "s4", "s5"],
        "accent": ["x", "y", "x", "y", "x"],
    }).to_csv(folder / "m.csv", index=False)
    with pytest.raises(CorpusError) as info:
        load_manifest(folder / "m.csv")
    message = str(info.value)
    assert "3 of 5 rows" in message and "missing.wav" in message and "0 seconds" in message and "corrupt.wav" in message
    assert info.value.rows == [2, 3, 4]
    ok = load_manifest(folder / "m.csv", on_problem="skip")
    assert list(ok.index) == [0, 1]
    assert [p["row"] for p in ok.attrs["problems"]] == [2, 3, 4]
    assert ok.audio.iloc[0] == str((folder / "wavs" / "a.wav").resolve())
    assert list(ok.columns[:3]) == ["audio", "reference", "speaker"]


def test_manifest_column_errors(folder):
    pd.DataFrame({"file": ["wavs/a.wav"], "words": ["x"]}).to_csv(folder / "m.csv", index=False)
    with pytest.raises(Exception, match="no audio path column"):
        load_manifest(folder / "m.csv")
    with pytest.raises(Exception, match="transcript column 'txt'"):
        load_manifest(folder / "m.csv", audio_column="file", text_column="txt")
    df = load_manifest(folder / "m.csv", audio_column="file", text_column="words", speaker_column=None)
    assert df.reference.tolist() == ["x"]


def test_common_voice(folder):
    (folder / "clips").mkdir()
    sf.write(folder / "clips" / "c1.mp3.wav", tone(), 16000)
    sf.write(folder / "clips" / "c2.wav", tone(), 16000)
    sf.write(folder / "clips" / "c3.wav", tone(), 16000)
    rows = [
        "client_id\tpath\tsentence\tup_votes\tdown_votes\tage\tgender\taccents\tlocale",
        "abc\tc1.mp3.wav\tHello there\t2\t0\ttwenties\tfemale_feminine\tScottish English\ten",
        "abc\tc2.wav\tGood morning\t2\t0\ttwenties\tfemale_feminine\tScottish English|Irish English\ten",
        "def\tc3.wav\tThank you\t2\t0\t\t\t\ten",
    ]
    (folder / "validated.tsv").write_text("\n".join(rows) + "\n")
    df = load_corpus(folder / "validated.tsv")
    assert df.speaker.tolist() == ["abc", "abc", "def"]
    assert df.reference.tolist() == ["Hello there", "Good morning", "Thank you"]
    assert df.accent.tolist()[:2] == ["Scottish English", "multiple"] and pd.isna(df.accent.iloc[2])
    assert df.accents.iloc[1] == ["Scottish English", "Irish English"]
    assert df.attrs["provenance"] == {"age": "self_reported", "gender": "self_reported", "accent": "self_reported", "accents": "self_reported"}
    with pytest.raises(Exception, match="not a Common Voice TSV"):
        (folder / "x.tsv").write_text("a\tb\n1\t2\n")
        load_common_voice(folder / "x.tsv")


def test_audiofolder(folder):
    pd.DataFrame({"file_name": ["wavs/a.wav", "wavs/b.wav"], "transcription": ["a", "b"]}).to_csv(folder / "metadata.csv", index=False)
    df = load_audiofolder(folder)
    assert df.reference.tolist() == ["a", "b"]
    assert load_corpus(folder).audio.tolist() == df.audio.tolist()
