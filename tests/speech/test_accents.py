"""Synthetic accents are measured: no default accent is an English variety in disguise."""

from __future__ import annotations

import numpy as np
import pytest

from groupwise._errors import InputError
from groupwise.speech._accents import ENGLISH_VARIETIES, MIN_DISTANCE, check_accents, measure_accents
from groupwise.speech._synth import DEFAULT_ACCENTS, synthesize_corpus
from groupwise.speech._textgen import split_test_and_train


@pytest.fixture(scope="module")
def sentences():
    test, _ = split_test_and_train("clinical", n_test=12, n_train=10, seed=0)
    return test


def test_no_default_accent_is_phonetically_an_english_variety(sentences):
    rows = {r["accent"]: r for r in measure_accents(DEFAULT_ACCENTS, sentences)}
    for accent, row in rows.items():
        # Every default differs from every other English variety, and non-English voices
        # read most words with their own rules.
        assert row["nearest_english_rate"] >= MIN_DISTANCE, row
        if accent not in ENGLISH_VARIETIES:
            assert row["english_read"] < 0.8, row
            assert row["phoneme_edit_rate"] > 0.2, row
    assert rows["en-us"]["phoneme_edit_rate"] == 0.0
    assert 0 < rows["en-gb"]["phoneme_edit_rate"] < rows["es"]["phoneme_edit_rate"]


def test_voices_that_switch_to_english_are_caught(sentences):
    rows = {r["accent"]: r for r in measure_accents(["hi", "zh", "ru", "ar"], sentences)}
    for row in rows.values():
        assert row["english_read"] == 1.0 and row["nearest_english"] == "en-gb"
        assert row["nearest_english_rate"] < MIN_DISTANCE
    with pytest.raises(InputError, match="hi reads 100% of the words") as err:
        check_accents(["en-us", "fr", "hi"], sentences)
    assert "fr reads" not in err.value.problem  # only the offender is named


def test_corpus_synth_refuses_them_before_writing_anything(tmp_path):
    with pytest.raises(InputError, match="not a non-native accent"):
        synthesize_corpus(tmp_path / "c", accents=["en-us", "ar"], speakers=1, utterances=1, progress=False)
    assert not (tmp_path / "c").exists()
    manifest = synthesize_corpus(
        tmp_path / "d", accents=["ar"], speakers=1, utterances=1, progress=False, check_accents=False
    )
    assert manifest["english_read"].iloc[0] == 1.0 and manifest["nearest_english"].iloc[0] == "en-gb"


def test_piper_voice_with_an_espeak_accent(tmp_path):
    from groupwise.speech._audio import read_audio

    manifest = synthesize_corpus(
        tmp_path / "p", accents=["en-us", "es"], speakers=2, utterances=1, progress=False, engine="piper"
    )
    assert set(manifest["synthesiser"]) == {"piper"} and manifest["voice"].str.startswith("piper:").all()
    assert manifest.attrs["provenance"]["synthesiser"] == "synthetic"
    clips = {row.speaker: read_audio(tmp_path / "p" / row.audio)[0] for row in manifest.itertuples()}
    assert all(np.abs(c).max() > 0.1 for c in clips.values())
    # Speakers differ by speaking rate; the Spanish rules give the same voice other
    # phonemes for the same sentence, so other audio.
    assert manifest.groupby("accent").rate.nunique().min() == 2
    assert len(clips["en-us-00"]) != len(clips["es-00"])
    with pytest.raises(InputError, match="engine"):
        synthesize_corpus(tmp_path / "q", accents=["en-us"], progress=False, engine="festival")
