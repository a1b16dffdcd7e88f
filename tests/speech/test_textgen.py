"""Domain sentence generators (groupwise.speech._textgen)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from groupwise._errors import InputError
from groupwise.speech._textgen import (
    DOMAINS,
    sentences,
    split_test_and_train,
    spoken_number,
    vocabulary,
)


@pytest.fixture(scope="module")
def cmudict_words() -> set[str]:
    pocketsphinx = pytest.importorskip("pocketsphinx")
    path = pocketsphinx.get_model_path("en-us/cmudict-en-us.dict")
    with open(path, encoding="utf-8") as fh:
        return {line.split(maxsplit=1)[0] for line in fh if line.strip()}


def words(texts: list[str]) -> set[str]:
    return {w for s in texts for w in s.split()}


def test_domains_include_clinical_and_general():
    assert {"clinical", "general"} <= set(DOMAINS)


@pytest.mark.parametrize("domain", DOMAINS)
def test_same_seed_same_sentences_other_seed_others(domain):
    a = sentences(domain, 200, seed=7)
    assert a == sentences(domain, 200, seed=7)
    assert sentences(domain, 50, seed=7) == a[:50]
    b = sentences(domain, 200, seed=8)
    assert len(set(a) & set(b)) < 20


@pytest.mark.parametrize("domain", DOMAINS)
def test_sentences_are_distinct_and_clean(domain):
    s = sentences(domain, 3000, seed=1)
    assert len(s) == len(set(s)) == 3000
    for text in s:
        assert re.fullmatch(r"[a-z']+( [a-z']+)*", text), text


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_word_is_in_cmudict(domain, cmudict_words):
    vocab = vocabulary(domain)
    assert sorted(vocab - cmudict_words) == []
    # vocabulary() is computed from the grammar; check it against what is emitted too.
    assert words(sentences(domain, 5000, seed=2)) <= vocab


@pytest.mark.parametrize("domain", DOMAINS)
def test_a_few_hundred_words_per_domain(domain):
    assert len(vocabulary(domain)) >= 300


def test_clinical_sentences_look_clinical():
    s = sentences("clinical", 2000, seed=0)
    text = "\n".join(s)
    for phrase in ("milligrams", "blood pressure", " over ", "follow up", "the patient reports"):
        assert phrase in text
    assert any(re.search(r"hundred and \w+ over", t) for t in s)


@pytest.mark.parametrize(
    ("n", "spoken"),
    [
        (0, "zero"),
        (7, "seven"),
        (19, "nineteen"),
        (20, "twenty"),
        (85, "eighty five"),
        (100, "one hundred"),
        (120, "one hundred and twenty"),
        (1000, "one thousand"),
        (1005, "one thousand and five"),
        (2500, "two thousand five hundred"),
    ],
)
def test_spoken_number(n, spoken):
    assert spoken_number(n) == spoken


@pytest.mark.parametrize("bad", [-1, 1_000_000, 2.5, True])
def test_spoken_number_rejects_bad_input(bad):
    with pytest.raises(InputError):
        spoken_number(bad)


@pytest.mark.parametrize("domain", DOMAINS)
def test_train_is_disjoint_from_test_and_covers_vocabulary(domain):
    test, train = split_test_and_train(domain, n_test=300, n_train=1000, seed=4)
    assert len(test) == len(set(test)) == 300
    assert len(train) == len(set(train)) >= 1000
    assert set(test).isdisjoint(train)
    assert vocabulary(domain) <= words(train)
    assert test == sentences(domain, 300, seed=4)


def test_vocabulary_pass_alone_covers_vocabulary():
    test, train = split_test_and_train("clinical", n_test=50, n_train=0, seed=0)
    assert set(test).isdisjoint(train)
    assert vocabulary("clinical") <= words(train)
    assert 0 < len(train) < 2000


def test_split_is_deterministic():
    a = split_test_and_train("general", n_test=30, n_train=100, seed=5)
    assert a == split_test_and_train("general", n_test=30, n_train=100, seed=5)


def test_unknown_domain_lists_domains():
    with pytest.raises(InputError) as err:
        sentences("legal", 3)
    for domain in DOMAINS:
        assert domain in str(err.value)
    with pytest.raises(InputError):
        split_test_and_train("Clinical", n_test=1, n_train=1)
    with pytest.raises(InputError):
        vocabulary("nope")


def test_more_sentences_than_the_grammar_has():
    with pytest.raises(InputError, match="at most"):
        sentences("general", 10**12)


@pytest.mark.parametrize("kwargs", [{"n": -1}, {"n": 2.0}, {"n": 3, "seed": "a"}])
def test_bad_counts_and_seeds(kwargs):
    with pytest.raises(InputError):
        sentences("clinical", **kwargs)


def test_zero_sentences():
    assert sentences("clinical", 0) == []


def test_grammars_are_package_data_not_code():
    from importlib.resources import files

    from groupwise.speech import _textgen

    source = Path(_textgen.__file__).read_text()
    assert "_CLINICAL_TEMPLATES" not in source and "cholesterol" not in source
    names = sorted(p.name for p in files("groupwise.speech").joinpath("grammars").iterdir())
    assert names == [f"{d}.json" for d in DOMAINS]
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    assert "speech/grammars/*.json" in pyproject.read_text()
