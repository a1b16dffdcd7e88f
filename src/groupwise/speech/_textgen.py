"""Sentences for synthetic speech test corpora, from small domain grammars.

Each domain is a template grammar: templates such as ``"start {medication} {dose}
{frequency}"`` whose ``{slots}`` are filled from word lists, and fillers may contain
slots of their own (``"{dose_mg} milligrams"``). Numbers are written out as a
speaker would say them (``"one hundred and twenty over eighty"``), so the text can be
read by a speech synthesiser and scored against a recogniser's words unchanged.

Every sentence is lower case, without punctuation, with single spaces between words,
and every word is in the CMU pronouncing dictionary that ships with PocketSphinx
(``cmudict-en-us.dict``): a recogniser cannot produce a word it has no pronunciation
for, so an out-of-dictionary reference word would be an error no system could avoid.

Domains (``grammars/<domain>.json`` in this package)
----------------------------------------------------
``clinical``
    Clinical dictation: presenting complaints, vital signs, examination findings,
    medications with doses and frequencies, test results, follow-up instructions.
``general``
    Everyday requests to an assistant and news-like sentences.

Generation is seeded and deterministic: the same domain, count and seed give the same
sentences in any process on any machine.

Examples
--------
>>> sentences("clinical", 2, seed=1) == sentences("clinical", 2, seed=1)
True
>>> spoken_number(120)
'one hundred and twenty'
"""

from __future__ import annotations

import functools
import json
import random
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from groupwise._errors import InputError
from groupwise._validation import check_scalar

__all__ = ["DOMAINS", "sentences", "split_test_and_train", "vocabulary", "spoken_number"]

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def spoken_number(n: int) -> str:
    """Write a whole number from 0 to 999 999 as it is said in British and clinical English.

    Parameters
    ----------
    n : int
        The number.

    Returns
    -------
    str
        Lower-case words, with "and" after the hundreds ("one hundred and five").

    Examples
    --------
    >>> spoken_number(0), spoken_number(42), spoken_number(325)
    ('zero', 'forty two', 'three hundred and twenty five')
    >>> spoken_number(1500)
    'one thousand five hundred'
    """
    check_scalar(n, "n", int, caller="spoken_number", min_val=0, max_val=999_999)
    n = int(n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f" {_ONES[ones]}" if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{_ONES[hundreds]} hundred" + (f" and {spoken_number(rest)}" if rest else "")
    thousands, rest = divmod(n, 1000)
    head = f"{spoken_number(thousands)} thousand"
    if not rest:
        return head
    # "one thousand and five" but "one thousand five hundred": the "and" only goes
    # before a last group with no hundreds.
    return f"{head} and {spoken_number(rest)}" if rest < 100 else f"{head} {spoken_number(rest)}"


@dataclass(frozen=True)
class _Grammar:
    """A parsed template grammar: each text is a tuple of literal strings and slot names."""

    templates: tuple[tuple[tuple[bool, str], ...], ...]
    slots: Mapping[str, tuple[tuple[tuple[bool, str], ...], ...]]


_SLOT = re.compile(r"\{(\w+)\}")

# The grammars are data: one JSON file per domain in the package's grammars/ folder, with
# "templates" (a list of texts) and "slots" (each slot's list of fillers).
_GRAMMARS = "grammars"


@functools.cache
def _sources() -> dict[str, tuple[tuple[str, ...], dict[str, tuple[str, ...]]]]:
    from importlib.resources import files

    out = {}
    for entry in files("groupwise.speech").joinpath(_GRAMMARS).iterdir():
        if entry.name.endswith(".json"):
            data = json.loads(entry.read_text(encoding="utf-8"))
            out[entry.name[: -len(".json")]] = (
                tuple(data["templates"]),
                {name: tuple(fillers) for name, fillers in data["slots"].items()},
            )
    return out


#: Names of the domains :func:`sentences` can generate.
DOMAINS: tuple[str, ...] = tuple(sorted(_sources()))


def _parse(text: str) -> tuple[tuple[bool, str], ...]:
    """Split a template into (is_slot, value) parts; literal parts keep their spaces."""
    parts: list[tuple[bool, str]] = []
    pos = 0
    for m in _SLOT.finditer(text):
        if m.start() > pos:
            parts.append((False, text[pos : m.start()]))
        parts.append((True, m.group(1)))
        pos = m.end()
    if pos < len(text):
        parts.append((False, text[pos:]))
    return tuple(parts)


@functools.cache
def _grammar(domain: str) -> _Grammar:
    if not isinstance(domain, str) or domain not in _sources():
        raise InputError(
            f"unknown text domain {domain!r}",
            fix=f"use one of: {', '.join(DOMAINS)}",
        )
    templates, slots = _sources()[domain]
    grammar = _Grammar(
        templates=tuple(_parse(t) for t in templates),
        slots={name: tuple(_parse(f) for f in fillers) for name, fillers in slots.items()},
    )
    # The grammars are package data; a typo in a slot name should fail loudly the
    # first time a domain is used rather than emit "{slot}" into a corpus.
    for parts in (*grammar.templates, *(f for fs in grammar.slots.values() for f in fs)):
        for is_slot, value in parts:
            if is_slot and value not in grammar.slots:
                raise RuntimeError(f"domain {domain!r} uses undefined slot {{{value}}}")
    return grammar


def _literal_words(parts: tuple[tuple[bool, str], ...]) -> list[str]:
    return [w for is_slot, value in parts if not is_slot for w in value.split()]


@functools.cache
def _reach(domain: str) -> dict[str, frozenset[str]]:
    """For each slot, the slots reachable from it (itself included)."""
    g = _grammar(domain)
    done: dict[str, frozenset[str]] = {}

    def visit(slot: str, path: tuple[str, ...]) -> frozenset[str]:
        if slot in done:
            return done[slot]
        if slot in path:
            raise RuntimeError(f"domain {domain!r} has a recursive slot {{{slot}}}")
        found = {slot}
        for filler in g.slots[slot]:
            for is_slot, value in filler:
                if is_slot:
                    found |= visit(value, (*path, slot))
        done[slot] = frozenset(found)
        return done[slot]

    for name in g.slots:
        visit(name, ())
    return done


def _reaches(parts: tuple[tuple[bool, str], ...], target: str, reach: dict[str, frozenset[str]]) -> bool:
    return any(is_slot and target in reach[value] for is_slot, value in parts)


@functools.cache
def _capacity(domain: str) -> int:
    """How many derivations the grammar has: an upper bound on its distinct sentences."""
    g = _grammar(domain)
    memo: dict[str, int] = {}

    def slot_count(slot: str) -> int:
        if slot not in memo:
            memo[slot] = sum(text_count(f) for f in g.slots[slot])
        return memo[slot]

    def text_count(parts: tuple[tuple[bool, str], ...]) -> int:
        total = 1
        for is_slot, value in parts:
            if is_slot:
                total *= slot_count(value)
        return total

    return sum(text_count(t) for t in g.templates)


def _expand(
    domain: str,
    parts: tuple[tuple[bool, str], ...],
    rng: random.Random,
    target: tuple[str, int] | None = None,
) -> str:
    """Fill the slots of ``parts`` at random.

    With ``target = (slot, i)`` the expansion is steered so that filler ``i`` of ``slot``
    is used at least once: the first slot that can lead to it is expanded towards it,
    everything else stays random. The vocabulary pass uses this to reach rare words.
    """
    g = _grammar(domain)
    reach = _reach(domain)
    steer_at = None
    if target is not None:
        for k, (is_slot, value) in enumerate(parts):
            if is_slot and target[0] in reach[value]:
                steer_at = k
                break
    out: list[str] = []
    for k, (is_slot, value) in enumerate(parts):
        if not is_slot:
            out.append(value)
            continue
        fillers = g.slots[value]
        if target is None or k != steer_at:
            out.append(_expand(domain, rng.choice(fillers), rng))
        elif value == target[0]:
            out.append(_expand(domain, fillers[target[1]], rng))
        else:
            towards = [f for f in fillers if _reaches(f, target[0], reach)]
            out.append(_expand(domain, rng.choice(towards), rng, target))
    return " ".join("".join(out).split())


def _rng(domain: str, seed: int, purpose: str) -> random.Random:
    # A string seed is hashed with SHA-512 by random.Random, so the stream is the same
    # in every process and on every platform, unlike hash()-based seeding.
    return random.Random(f"groupwise.textgen:{domain}:{purpose}:{int(seed)}")


def _distinct(domain: str, n: int, rng: random.Random, exclude: Collection[str] = ()) -> list[str]:
    capacity = _capacity(domain)
    if n + len(exclude) > capacity:
        raise InputError(
            f"the {domain!r} grammar can make at most {capacity} distinct sentences, "
            f"{n + len(exclude)} were asked for",
            fix="ask for fewer sentences",
        )
    g = _grammar(domain)
    seen = set(exclude)
    out: list[str] = []
    # Rejection sampling: the grammars have far more derivations than anyone asks for,
    # so duplicates are rare; the attempt limit only guards against a near-full grammar.
    attempts = 0
    limit = 50 * n + 10_000
    while len(out) < n:
        attempts += 1
        if attempts > limit:
            raise InputError(
                f"could only make {len(out)} distinct {domain!r} sentences of the {n} asked for",
                fix="ask for fewer sentences",
            )
        s = _expand(domain, rng.choice(g.templates), rng)
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def sentences(domain: str, n: int, *, seed: int = 0) -> list[str]:
    """Generate ``n`` distinct sentences from a domain grammar.

    Parameters
    ----------
    domain : str
        One of :data:`DOMAINS` (``"clinical"``, ``"general"``).
    n : int
        How many sentences.
    seed : int
        Seed; the same domain, ``n`` and seed give the same list, and a longer list
        starts with the shorter one.

    Returns
    -------
    list of str
        Lower-case sentences without punctuation, words separated by single spaces,
        numbers written as words.

    Raises
    ------
    InputError
        For an unknown domain, or when the grammar cannot make ``n`` distinct sentences.

    Examples
    --------
    >>> s = sentences("clinical", 50, seed=3)
    >>> len(s), len(set(s))
    (50, 50)
    >>> sentences("clinical", 3, seed=3) == s[:3]
    True
    >>> sentences("legal", 1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    groupwise._errors.InputError: unknown text domain 'legal'. Fix: use one of: clinical, general.
    """
    _grammar(domain)
    n = int(check_scalar(n, "n", int, caller="sentences", min_val=0))
    check_scalar(seed, "seed", int, caller="sentences")
    return _distinct(domain, n, _rng(domain, seed, "sentences"))


def split_test_and_train(
    domain: str, *, n_test: int, n_train: int, seed: int = 0
) -> tuple[list[str], list[str]]:
    """Test sentences for a corpus and a separate language-model training text.

    Both come from the same grammar, so a language model trained on the training text
    knows the domain's words and phrasing without having seen the test sentences: no
    training sentence equals a test sentence. The test sentences are exactly
    ``sentences(domain, n_test, seed=seed)``. After the ``n_train`` sampled training
    sentences, a vocabulary pass appends sentences (steered towards each grammar filler
    whose words are not yet in the text, still never a test sentence) until every word
    of :func:`vocabulary` occurs in the training text at least once, so no test word is
    out of the language model's vocabulary.

    Parameters
    ----------
    domain : str
        One of :data:`DOMAINS`.
    n_test, n_train : int
        Number of test sentences, and of sampled training sentences (the vocabulary
        pass adds some more; at most one per grammar filler).
    seed : int
        Seed.

    Returns
    -------
    test : list of str
        ``n_test`` distinct sentences.
    train : list of str
        Distinct training sentences, none of them in ``test``.

    Raises
    ------
    InputError
        For an unknown domain, or when the test sentences use up every sentence that
        contains some word (the grammars allow several thousand test sentences).

    Examples
    --------
    >>> test, train = split_test_and_train("clinical", n_test=20, n_train=200, seed=0)
    >>> len(test), len(train) >= 200, set(test).isdisjoint(train)
    (20, True, True)
    >>> vocabulary("clinical") <= {w for s in train for w in s.split()}
    True
    """
    g = _grammar(domain)
    n_test = int(check_scalar(n_test, "n_test", int, caller="split_test_and_train", min_val=0))
    n_train = int(check_scalar(n_train, "n_train", int, caller="split_test_and_train", min_val=0))
    check_scalar(seed, "seed", int, caller="split_test_and_train")
    test = _distinct(domain, n_test, _rng(domain, seed, "sentences"))
    rng = _rng(domain, seed, "train")
    train = _distinct(domain, n_train, rng, exclude=set(test))
    taken = set(test) | set(train)
    covered = {w for s in train for w in s.split()}
    reach = _reach(domain)

    def add_steered(templates: list[tuple[tuple[bool, str], ...]], target: tuple[str, int] | None) -> None:
        # Every derivation through a small template can already be a test sentence;
        # then the word may still be reached through another template or filler, so a
        # failure here is only an error if the final check finds the word uncovered.
        for _ in range(200):
            s = _expand(domain, rng.choice(templates), rng, target)
            if s not in taken:
                taken.add(s)
                train.append(s)
                covered.update(s.split())
                return

    for slot, fillers in g.slots.items():
        for i, filler in enumerate(fillers):
            if set(_literal_words(filler)) <= covered:
                continue
            via = [t for t in g.templates if _reaches(t, slot, reach)]
            if via:
                add_steered(via, (slot, i))
    for template in g.templates:
        if not set(_literal_words(template)) <= covered:
            add_steered([template], None)
    missing = _vocabulary(domain) - covered
    if missing:
        raise InputError(
            f"the {domain!r} grammar cannot cover the words {', '.join(sorted(missing)[:10])} "
            f"in the training text without repeating one of the {n_test} test sentences",
            fix="ask for fewer test sentences",
        )
    return test, train


@functools.cache
def _vocabulary(domain: str) -> frozenset[str]:
    g = _grammar(domain)
    reach = _reach(domain)
    used = set().union(*(reach[v] for t in g.templates for is_slot, v in t if is_slot))
    words = {w for t in g.templates for w in _literal_words(t)}
    for slot in used:
        for filler in g.slots[slot]:
            words.update(_literal_words(filler))
    return frozenset(words)


def vocabulary(domain: str) -> set[str]:
    """Every word the domain's grammar can produce.

    Examples
    --------
    >>> v = vocabulary("clinical")
    >>> {"patient", "milligrams", "hundred"} <= v
    True
    >>> len(v) > 300
    True
    """
    return set(_vocabulary(domain))
