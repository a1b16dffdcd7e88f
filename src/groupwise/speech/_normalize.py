"""English text normalisation for recognisers that write numbers, punctuation and hyphens.

Whisper writes "116 kg", "X-ray" and "9:30"; a reference transcript says "one hundred
and sixteen kilograms". Counting those as errors measures orthography, not recognition.
The ``english`` step applies Whisper's own English normaliser (the ``whisper-normalizer``
package, a copy of OpenAI's ``EnglishTextNormalizer``): lower case, punctuation and
hyphens to spaces, spelled-out numbers to digits ("eighty nine percent" to "89%"),
British spellings to American ones, contractions and titles expanded ("Dr." to "doctor").
It runs on references and hypotheses alike, so both sides end in the same form.

:func:`parse_speech_normalizer` reads the same specs as the audit's ``normalize``
option with ``english`` (alias ``whisper``) as one more step, and returns a normaliser
the audit and the last-mile test accept: ``"english"`` alone, or combined such as
``"english+whitespace"``.

Examples
--------
>>> norm = parse_speech_normalizer("english")
>>> norm(["Weight is 116 kg, down 13 kg.", "weight is one hundred and sixteen kg down thirteen kg"])
['weight is 116 kg down 13 kg', 'weight is 116 kg down 13 kg']
>>> norm.spec
'english'
"""

from __future__ import annotations

import functools
from typing import Any

from groupwise._errors import InputError

__all__ = ["ENGLISH_STEPS", "english_step", "parse_speech_normalizer"]

#: Spec words for the English step.
ENGLISH_STEPS = ("english", "whisper")


@functools.cache
def _english() -> Any:
    try:
        from whisper_normalizer.english import EnglishTextNormalizer
    except ImportError:
        raise InputError(
            "the english normalisation step needs the whisper-normalizer package, which is not installed",
            fix="install it with 'pip install whisper-normalizer' (or pip install groupwise, which includes it)",
        ) from None
    return EnglishTextNormalizer()


def _english_list(texts: list[str]) -> list[str]:
    normalise = _english()
    # Its output can end with a space or hold two in a row; words are what count.
    return [" ".join(normalise(t).split()) for t in texts]


@functools.cache
def english_step() -> Any:
    """The ``english`` normalisation step (a :class:`groupwise.audit._text.Step`)."""
    from groupwise.audit._text import Step

    return Step(
        "english",
        "Whisper's English normaliser: lower case, no punctuation, numbers as digits, American spelling",
        _english_list,
    )


def parse_speech_normalizer(spec: Any) -> Any:
    """A normaliser from a spec that may use the ``english`` step.

    Parameters
    ----------
    spec : str or Normalizer
        Step names joined with ``+``: ``english`` (or ``whisper``) and the audit's own
        steps and aliases (``default``, ``none``, ``lowercase``, ...).

    Returns
    -------
    Normalizer
        Accepted by ``groupwise.audit(normalize=...)`` and ``groupwise.lastmile``.
    """
    from groupwise.audit._text import Normalizer, parse_normalizer

    if not isinstance(spec, str):
        return parse_normalizer(spec)
    names = [part.strip().lower() for part in spec.split("+")]
    if not any(name in ENGLISH_STEPS for name in names):
        return parse_normalizer(spec)
    steps: list[Any] = []
    for name in names:
        if name in ENGLISH_STEPS:
            steps.append(english_step())
        elif not name:
            raise InputError(f"the normalisation spec {spec!r} has an empty step", fix="e.g. english or english+whitespace")
        else:
            steps.extend(parse_normalizer(name).steps)
    return Normalizer(steps)
