"""Generated example data with known structure, for the demo, the docs and the tests.

:func:`speech_example` simulates a recogniser's transcripts: speakers nested in accents,
each speaker with a random effect on their error rate (so utterances of one speaker are
correlated, as in real data), noise conditions that raise errors, and accents with chosen
extra difficulty. Errors are substitutions, deletions and insertions of words from a small
vocabulary. The whole table is built with array operations, so a million utterances take
seconds.

:func:`tabular_example` simulates a binary classifier's predictions for people with
self-reported demographics and a group where the classifier does worse.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["speech_example", "tabular_example", "ACCENTS", "NOISES"]

ACCENTS = (
    "en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
    "en-029", "en-us-nyc", "fr", "de", "es", "hi", "vi", "zh",
)
NOISES = ("clean", "babble", "hum")

_VOCAB = (
    "the patient was admitted with chest pain and shortness of breath she reports no fever "
    "blood pressure is stable heart rate normal we will start the medication twice daily "
    "follow up in two weeks please call the ward if symptoms return the scan shows no "
    "fracture left knee swelling improved pain score four out of ten continue physiotherapy "
    "discharge home tomorrow morning family informed dose increased to fifty milligrams "
    "oxygen saturation ninety eight percent on room air review results with the consultant"
).split()


def speech_example(
    n_utterances: int = 6000,
    *,
    n_speakers: int = 240,
    accents: Sequence[str] = ACCENTS,
    noises: Sequence[str] = NOISES,
    base_rate: float = 0.08,
    accent_effect: Mapping[str, float] | None = None,
    noise_effect: Mapping[str, float] | None = None,
    speaker_sd: float = 0.35,
    words: tuple[int, int] = (6, 14),
    seed: int = 0,
) -> pd.DataFrame:
    """Simulated ASR transcripts with speaker clustering and accent and noise effects.

    Parameters
    ----------
    n_utterances : int, default=6000
    n_speakers : int, default=240
        Speakers are spread evenly over the accents; each has ``n_utterances / n_speakers``
        utterances on average.
    accents, noises : sequence of str
    base_rate : float, default=0.08
        Per-word error probability of a typical speaker in clean conditions.
    accent_effect, noise_effect : mapping, optional
        Multipliers of the error probability. By default ``en-029`` is 1.8x, ``hi`` and
        ``vi`` 1.5x, ``zh`` 1.3x, ``babble`` 1.6x and ``hum`` 2x.
    speaker_sd : float, default=0.35
        Standard deviation of the speakers' log-normal random effect.
    words : (int, int)
        Range of reference lengths in words.
    seed : int

    Returns
    -------
    pandas.DataFrame
        Columns ``utterance``, ``speaker``, ``accent``, ``noise``, ``gender``,
        ``reference``, ``hypothesis`` and ``true_rate`` (the simulated per-word error
        probability, for validation).

    Examples
    --------
    >>> df = speech_example(200, n_speakers=20, seed=1)
    >>> df.shape
    (200, 8)
    >>> sorted(df.columns)[:4]
    ['accent', 'gender', 'hypothesis', 'noise']
    """
    import polars as pl

    rng = np.random.default_rng(seed)
    accents = list(accents)
    noises = list(noises)
    a_eff = {"en-029": 1.8, "hi": 1.5, "vi": 1.5, "zh": 1.3}
    a_eff.update(accent_effect or {})
    n_eff = {"babble": 1.6, "hum": 2.0}
    n_eff.update(noise_effect or {})

    speaker_accent = np.arange(n_speakers) % len(accents)
    speaker_gender = rng.choice(np.array(["female", "male"]), size=n_speakers)
    speaker_effect = np.exp(rng.normal(0.0, speaker_sd, n_speakers) - speaker_sd**2 / 2)
    speaker = rng.integers(0, n_speakers, n_utterances)
    noise = rng.integers(0, len(noises), n_utterances)
    accent_mult = np.array([a_eff.get(a, 1.0) for a in accents])
    noise_mult = np.array([n_eff.get(n, 1.0) for n in noises])
    rate = np.clip(
        base_rate * accent_mult[speaker_accent[speaker]] * noise_mult[noise] * speaker_effect[speaker],
        0.0,
        0.9,
    )

    lengths = rng.integers(words[0], words[1] + 1, n_utterances)
    total = int(lengths.sum())
    row = np.repeat(np.arange(n_utterances), lengths)
    vocab = np.array(_VOCAB)
    ref_tok = rng.integers(0, len(vocab), total)
    u = rng.random(total)
    err = u < rate[row]
    kind = rng.random(total)
    sub = err & (kind < 0.6)
    dele = err & (kind >= 0.6) & (kind < 0.85)
    ins = err & (kind >= 0.85)
    hyp_tok = np.where(sub, (ref_tok + rng.integers(1, len(vocab), total)) % len(vocab), ref_tok)
    inserted = rng.integers(0, len(vocab), total)
    # Each reference position emits its (possibly substituted) word unless deleted, then an
    # inserted word when the error is an insertion.
    emit = np.stack([~dele, ins], axis=1).ravel()
    tokens = np.stack([hyp_tok, inserted], axis=1).ravel()[emit]
    hyp_row = np.repeat(row, 2)[emit]

    refs = (
        pl.DataFrame({"row": row, "w": vocab[ref_tok]})
        .group_by("row", maintain_order=True)
        .agg(pl.col("w").str.join(" "))
    )
    hyps = (
        pl.DataFrame({"row": hyp_row, "w": vocab[tokens]})
        .group_by("row", maintain_order=True)
        .agg(pl.col("w").str.join(" "))
    )
    hyp_text = np.full(n_utterances, "", dtype=object)
    hyp_text[hyps["row"].to_numpy()] = hyps["w"].to_numpy()
    ref_text = np.empty(n_utterances, dtype=object)
    ref_text[refs["row"].to_numpy()] = refs["w"].to_numpy()

    width = len(str(n_speakers - 1))
    return pd.DataFrame(
        {
            "utterance": np.char.add("utt", np.arange(n_utterances).astype(str)),
            "speaker": np.char.add("spk", np.char.zfill(speaker.astype(str), width)),
            "accent": pd.Categorical(np.array(accents)[speaker_accent[speaker]], categories=accents),
            "noise": pd.Categorical(np.array(noises)[noise], categories=noises),
            "gender": speaker_gender[speaker],
            "reference": ref_text,
            "hypothesis": hyp_text,
            "true_rate": rate,
        }
    )


def tabular_example(n: int = 5000, *, seed: int = 0) -> pd.DataFrame:
    """Simulated predictions of a binary classifier for people in households.

    The classifier's false negative rate is higher for people aged 60 and over.

    Examples
    --------
    >>> df = tabular_example(100)
    >>> sorted(df.columns)
    ['age', 'household', 'race', 'sex', 'y_pred', 'y_true']
    """
    rng = np.random.default_rng(seed)
    household = rng.integers(0, max(2, n // 2), n)
    age = rng.integers(18, 90, n)
    sex = rng.choice(np.array(["female", "male"]), n)
    race = rng.choice(np.array(["asian", "black", "white", "other"]), n, p=[0.1, 0.15, 0.65, 0.1])
    y_true = (rng.random(n) < 0.3).astype(int)
    miss = np.where(age >= 60, 0.35, 0.15)
    false_alarm = 0.1
    flip = np.where(y_true == 1, rng.random(n) < miss, rng.random(n) < false_alarm)
    y_pred = np.where(flip, 1 - y_true, y_true)
    return pd.DataFrame(
        {
            "household": np.char.add("h", household.astype(str)),
            "age": age,
            "sex": sex,
            "race": race,
            "y_true": y_true,
            "y_pred": y_pred,
        }
    )
