"""Is a synthetic accent an accent? Measured from the phonemes eSpeak NG would speak.

A non-English eSpeak voice reading English text gives a non-native accent only when it
reads the words with its own language's rules. Many voices do not: for words they cannot
read (Latin script in a Hindi, Mandarin, Russian, Arabic, Korean or Tamil voice) eSpeak
switches to its English translator, and the "accent" is British English with another
voice's pitch. eSpeak says so in its phoneme output (``(en)...(hi)``), so each accent is
checked on the very sentences it will read:

``english_read``
    The share of words read by the English translator (phoneme characters produced while
    switched to ``en``), for a voice that is not an English variety.
``phoneme_edit_rate``
    Levenshtein distance between the accent's IPA and ``en-us``'s IPA, summed over the
    sentences and divided by the length of ``en-us``'s IPA (stress marks, switch marks
    and spaces left out): how far the accent is from General American, phonetically.
``nearest_english``, ``nearest_english_rate``
    The English variety (of :data:`ENGLISH_VARIETIES`) with the smallest edit rate, and
    that rate. An accent at rate 0 from an English variety is that variety.

:func:`check_accents` refuses a non-English voice that reads most words (at least
:data:`MAX_ENGLISH_READ`) with the English translator, or that is phonetically identical
(rate below :data:`MIN_DISTANCE`) to an English variety.

Examples
--------
>>> rows = measure_accents(["hi", "es"], ["the patient has a mild headache and takes two tablets"])
>>> [(r["accent"], r["english_read"], r["nearest_english"], r["nearest_english_rate"]) for r in rows]
[('hi', 1.0, 'en-gb', 0.0), ('es', 0.0, 'en-029', 0.7619)]
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from groupwise._errors import InputError

__all__ = ["ENGLISH_VARIETIES", "MAX_ENGLISH_READ", "MIN_DISTANCE", "check_accents", "measure_accents"]

ENGLISH_VARIETIES = (
    "en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc",
)  # fmt: skip
#: A non-English voice reading at least this share of the words with eSpeak's English is refused.
MAX_ENGLISH_READ = 0.9
#: A non-English voice closer than this (phoneme edit rate) to an English variety is refused.
MIN_DISTANCE = 0.02

_SWITCH = re.compile(r"\(([a-z][a-z0-9-]*)\)")
_DROP = str.maketrans("", "", "ˈˌ ")


def _split(ipa: str, own: str) -> tuple[str, int, int]:
    """IPA without switch marks, and the characters read in English and in all."""
    language = own
    english = total = 0
    plain = []
    for i, part in enumerate(_SWITCH.split(ipa)):
        if i % 2:
            language = part
            continue
        letters = part.translate(_DROP)
        total += len(letters)
        english += len(letters) if language.startswith("en") else 0
        plain.append(part)
    return "".join(plain), english, total


def is_english_variety(accent: str) -> bool:
    """Whether ``accent`` is an English voice (``en`` or ``en-...``)."""
    return accent == "en" or accent.startswith("en-")


def measure_accents(accents: Sequence[str], sentences: Sequence[str]) -> list[dict[str, Any]]:
    """Measure each accent on ``sentences`` (see the module notes for the columns)."""
    from rapidfuzz.distance import Levenshtein

    from groupwise.speech._espeak import _engine, phonemize

    if not sentences:
        raise InputError("no sentences to measure the accents on", fix="pass at least one sentence")
    wanted = list(dict.fromkeys([*accents, *ENGLISH_VARIETIES]))
    plain: dict[str, list[str]] = {}
    english_read: dict[str, float] = {}
    for accent in wanted:
        own = _engine().resolve(accent)
        english = total = 0
        plain[accent] = []
        for text in sentences:
            ipa, e, t = _split(phonemize(text, accent), own)
            plain[accent].append(ipa.translate(_DROP))
            english, total = english + e, total + t
        english_read[accent] = 0.0 if is_english_variety(accent) else round(english / max(total, 1), 4)

    def rate(a: str, b: str) -> float:
        distance = sum(Levenshtein.distance(x, y) for x, y in zip(plain[a], plain[b]))
        return round(distance / max(1, sum(map(len, plain[b]))), 4)

    rows = []
    for accent in accents:
        others = [v for v in ENGLISH_VARIETIES if v != accent]
        distances = {v: rate(accent, v) for v in others}
        nearest = min(distances, key=lambda v: (distances[v], others.index(v)))
        rows.append(
            {
                "accent": accent,
                "english_read": english_read[accent],
                "phoneme_edit_rate": 0.0 if accent == "en-us" else rate(accent, "en-us"),
                "nearest_english": nearest,
                "nearest_english_rate": distances[nearest],
            }
        )
    return rows


def check_accents(accents: Sequence[str], sentences: Sequence[str]) -> list[dict[str, Any]]:
    """:func:`measure_accents`, refusing non-English voices that speak English.

    Raises
    ------
    InputError
        Naming every refused accent, what it does, and what to use instead.
    """
    rows = measure_accents(accents, sentences)
    bad = [
        r for r in rows
        if not is_english_variety(r["accent"])
        and (r["english_read"] >= MAX_ENGLISH_READ or r["nearest_english_rate"] < MIN_DISTANCE)
    ]  # fmt: skip
    if bad:
        described = "; ".join(
            f"{r['accent']} reads {r['english_read']:.0%} of the words with eSpeak's English translator and is "
            f"{r['nearest_english_rate']:.1%} (phoneme edit rate) from {r['nearest_english']}"
            for r in bad
        )
        raise InputError(
            f"{'these voices are' if len(bad) > 1 else 'this voice is'} not a non-native accent of English: "
            f"{described}. eSpeak voices of languages not written in Latin script switch to English for Latin-script "
            "words, so they speak British English with another voice's pitch",
            fix="leave them out (the default accents are all checked), or use voices that read English with their "
            "own rules, such as fr, vi, es, it, pl, nl or tr; to synthesise them anyway pass --no-check-accents "
            "and label them honestly",
        )
    return rows
