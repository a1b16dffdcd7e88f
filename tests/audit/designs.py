"""Data-generating processes for the validity simulations (suite and benchmarks).

Each design returns a pandas DataFrame with one row per utterance (``num`` errors, ``den``
words, ``speaker``, grouping columns) and the true population value of every group, so
that coverage and false-flag rates can be measured against the truth. Speakers carry
log-normal (or heavier) random effects, so utterances of a speaker are correlated; true
values are expectations of ``sum(num) / sum(den)`` under the design, fixed in advance.

The designs are the hard ones named in the design notes: few or no errors (a good
recogniser), speakers crossed with conditions, groups whose speakers differ in spread,
few and very unequal clusters, and many groups compared with the best.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _speakers(rng, n, sd, tail="lognormal"):
    if tail == "lognormal":
        return np.exp(rng.normal(0.0, sd, n) - sd**2 / 2)
    # Gamma effects with the same mean 1 and variance exp(sd^2) - 1: heavier right tail at small shape.
    var = np.exp(sd**2) - 1
    shape = 1.0 / var
    return rng.gamma(shape, 1.0 / shape, n)


def _utterances(rng, speaker_rate, per_speaker, words_low=4, words_high=16):
    speaker = np.repeat(np.arange(per_speaker.size), per_speaker)
    words = rng.integers(words_low, words_high, speaker.size).astype(float)
    errors = rng.poisson(words * speaker_rate[speaker]).astype(float)
    return speaker, words, errors


def nested(
    rng, *, rates, speakers, utterances=8, sd=0.5, tail="lognormal", sizes="poisson", sds=None
) -> tuple[pd.DataFrame, dict]:
    """Speakers nested in groups; per-group speaker counts, rates and spreads.

    ``sizes``: ``"poisson"`` (utterances per speaker ~ 1 + Poisson), ``"pareto"`` (heavy
    tailed: a few speakers with very many utterances).
    """
    rates = np.asarray(rates, dtype=float)
    n_groups = rates.size
    speakers = np.broadcast_to(np.asarray(speakers), (n_groups,))
    sds = np.broadcast_to(np.asarray(sd if sds is None else sds, dtype=float), (n_groups,))
    group = np.repeat(np.arange(n_groups), speakers)
    effect = np.concatenate([_speakers(rng, int(n), s, tail) for n, s in zip(speakers, sds)])
    if sizes == "pareto":
        per = np.minimum(1 + np.floor(rng.pareto(1.2, group.size) * utterances / 2).astype(int), 60 * utterances)
    else:
        per = rng.poisson(utterances, group.size) + 1
    spk, words, errors = _utterances(rng, rates[group] * effect, per)
    frame = pd.DataFrame({"num": errors, "den": words, "speaker": spk, "accent": group[spk]})
    return frame, {i: float(r) for i, r in enumerate(rates)}


def crossed(rng, *, accent_rates, noise_mult, speakers=12, utterances=6, sd=0.5) -> tuple[pd.DataFrame, dict]:
    """Every speaker recorded under every noise condition (speakers crossed with noise).

    The true value of cell (accent a, noise c) is ``accent_rates[a] * noise_mult[c]``.
    """
    accent_rates = np.asarray(accent_rates, dtype=float)
    noise_mult = np.asarray(noise_mult, dtype=float)
    n_acc, n_noise = accent_rates.size, noise_mult.size
    n_spk = n_acc * speakers
    accent = np.repeat(np.arange(n_acc), speakers)
    effect = _speakers(rng, n_spk, sd)
    parts = []
    for c in range(n_noise):
        per = rng.poisson(utterances, n_spk) + 1
        spk, words, errors = _utterances(rng, accent_rates[accent] * noise_mult[c] * effect, per)
        parts.append(pd.DataFrame({"num": errors, "den": words, "speaker": spk, "accent": accent[spk], "noise": c}))
    frame = pd.concat(parts, ignore_index=True)
    truth = {(a, c): float(accent_rates[a] * noise_mult[c]) for a in range(n_acc) for c in range(n_noise)}
    return frame, truth


def paired(
    rng, *, rates, mult, speakers=8, utterances=8, sd=0.5, sds=None, additive=None
) -> tuple[pd.DataFrame, dict]:
    """The same utterances under a baseline and a condition (last mile).

    Under the condition, a speaker's rate is multiplied by ``mult`` (per group or scalar),
    or raised by ``additive`` (per group) when given. Returns rows with ``condition``
    (``baseline``/``cond``) and ``utt``, and the true per-group (baseline, condition) values.
    """
    rates = np.asarray(rates, dtype=float)
    n_groups = rates.size
    mult = np.broadcast_to(np.asarray(mult, dtype=float), (n_groups,))
    sds = np.broadcast_to(np.asarray(sd if sds is None else sds, dtype=float), (n_groups,))
    group = np.repeat(np.arange(n_groups), speakers)
    effect = np.concatenate([_speakers(rng, speakers, s) for s in sds])
    per = rng.poisson(utterances, group.size) + 1
    spk = np.repeat(np.arange(group.size), per)
    words = rng.integers(4, 16, spk.size).astype(float)
    base_rate = rates[group[spk]] * effect[spk]
    if additive is not None:
        cond_rate = base_rate + np.asarray(additive, dtype=float)[group[spk]] * effect[spk]
    else:
        cond_rate = base_rate * mult[group[spk]]
    # Errors under the condition share the utterance: add to the baseline errors.
    base = rng.poisson(words * base_rate).astype(float)
    extra = rng.poisson(words * np.maximum(cond_rate - base_rate, 0)).astype(float)
    utt = np.arange(spk.size)
    frame = pd.concat(
        [
            pd.DataFrame({"num": base, "den": words, "speaker": spk, "accent": group[spk], "condition": "baseline", "utt": utt}),
            pd.DataFrame({"num": base + extra, "den": words, "speaker": spk, "accent": group[spk], "condition": "cond", "utt": utt}),
        ],
        ignore_index=True,
    )
    if additive is not None:
        truth = {g: (float(rates[g]), float(rates[g] + np.asarray(additive)[g])) for g in range(n_groups)}
    else:
        truth = {g: (float(rates[g]), float(rates[g] * mult[g])) for g in range(n_groups)}
    return frame, truth
