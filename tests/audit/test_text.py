"""Text normalisation: each step, specs, and agreement with jiwer's transforms."""

from __future__ import annotations

import re

import jiwer
import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from groupwise import InputError
from groupwise.audit._text import (
    ALIASES,
    STEPS,
    Normalizer,
    Step,
    lowercase,
    parse_normalizer,
    punctuation,
    strip,
    whitespace,
)

# Text from every category, weighted towards the characters the steps act on: letters
# with special casing, punctuation, whitespace of all kinds, controls and lone surrogates.
ANY_TEXT = st.text(
    st.one_of(
        st.characters(codec=None, categories=None),
        st.characters(categories=("Lu", "Ll", "Lt", "Lo", "Mn", "P", "Z", "Cc", "Cf", "Cs")),
        st.sampled_from(list(" \t\n\x1c\x85\xa0\u3000\u2028.,'!?-\u2019\u0130\u03a3")),
    ),
    max_size=40,
)
# The same without whitespace other than the plain space, where jiwer's whitespace
# handling and ours coincide by design.
SPACED_TEXT = st.text(
    st.one_of(
        st.characters(exclude_categories=("Zs", "Zl", "Zp", "Cc", "Cs")),
        st.just(" "),
    ),
    max_size=40,
)
NO_SURROGATE_TEXT = st.text(max_size=40)

JIWER_PUNCT = jiwer.RemovePunctuation()
JIWER_SPACES = jiwer.Compose([jiwer.RemoveMultipleSpaces(), jiwer.Strip()])


def test_steps_on_examples():
    assert lowercase(["ÀB Σ", "İ"]) == ["àb σ", "İ".lower()]
    assert punctuation(["¿Qué?", "l'homme—là…", "a_b (c) «d»"]) == ["Qué", "lhommelà", "ab c d"]
    assert whitespace(["  a \t\n b  ", "\u00a0x\u3000y\u2028", "", "   "]) == ["a b", "x y", "", ""]
    assert strip([" a  b\t", "\n"]) == ["a  b", ""]


def test_steps_are_documented_and_registered():
    for name, step in STEPS.items():
        assert step.name == name
        assert step.description
    assert set(ALIASES) == {"default", "none"}


def test_default_pipeline():
    norm = parse_normalizer("default")
    assert norm.spec == "lowercase+punctuation+whitespace"
    assert norm(["Hello,  World!", " Ça va? ", "", "...", "DON'T stop"]) == [
        "hello world",
        "ça va",
        "",
        "",
        "dont stop",
    ]


def test_none_is_whitespace_only():
    norm = parse_normalizer("none")
    assert norm.steps == (whitespace,)
    assert norm(["  Hello,   World! "]) == ["Hello, World!"]


@pytest.mark.parametrize(
    ("spec", "names"),
    [
        ("default", ("lowercase", "punctuation", "whitespace")),
        ("none", ("whitespace",)),
        ("lowercase", ("lowercase",)),
        ("punctuation+lowercase", ("punctuation", "lowercase")),
        (" Lowercase + STRIP ", ("lowercase", "strip")),
        ("default+strip", ("lowercase", "punctuation", "whitespace", "strip")),
    ],
)
def test_parse_specs(spec, names):
    norm = parse_normalizer(spec)
    assert tuple(s.name for s in norm.steps) == names
    assert parse_normalizer(norm.spec) == norm
    assert parse_normalizer(norm) is norm


@pytest.mark.parametrize("spec", ["lowercase+stem", "Default+", "", "   ", "+"])
def test_parse_errors_list_known_steps(spec):
    with pytest.raises(InputError) as info:
        parse_normalizer(spec)
    for name in STEPS:
        assert name in info.value.fix


def test_unknown_step_is_named():
    with pytest.raises(InputError, match="'stem'"):
        parse_normalizer("lowercase+stem")
    with pytest.raises(InputError):
        Normalizer(["nope"])
    with pytest.raises(InputError):
        Normalizer([])


def test_input_kinds():
    texts = ["A, b", " C "]
    want = ["a b", "c"]
    norm = parse_normalizer("default")
    assert norm(texts) == want
    assert norm(tuple(texts)) == want
    assert norm(np.array(texts, dtype=object)) == want
    assert norm(np.array(texts)) == want
    assert norm(pd.Series(texts)) == want
    assert norm(pd.Series(texts, dtype=object)) == want
    assert norm(pl.Series(texts)) == want
    assert norm([]) == []
    assert norm([np.str_("X!")]) == ["x"]


@pytest.mark.parametrize(
    "bad",
    [
        ["a", None, "b", float("nan")],
        np.array(["a", None, "b", np.nan], dtype=object),
        pd.Series(["a", None, "b", None], dtype="string"),
        pd.Series(["a", None, "b", np.nan], dtype=object),
        pl.Series(["a", None, "b", None]),
    ],
)
def test_missing_values_list_rows(bad):
    with pytest.raises(InputError) as info:
        parse_normalizer("default")(bad)
    assert info.value.rows == [1, 3]
    assert '""' in info.value.fix


def test_non_strings_rejected():
    with pytest.raises(InputError) as info:
        parse_normalizer("none")(["a", 3, b"x"])
    assert info.value.rows == [1, 2]
    with pytest.raises(InputError):
        parse_normalizer("none")("a single string")
    with pytest.raises(InputError):
        parse_normalizer("none")(pl.Series([1, 2]))
    with pytest.raises(InputError):
        parse_normalizer("none")(np.array([["a"]], dtype=object))


@settings(max_examples=150, deadline=None)
@given(st.lists(ANY_TEXT, max_size=8))
def test_lowercase_matches_jiwer(texts):
    assert lowercase(texts) == jiwer.ToLowerCase()(texts)


@settings(max_examples=150, deadline=None)
@given(st.lists(ANY_TEXT, max_size=8))
def test_punctuation_matches_jiwer(texts):
    assert punctuation(texts) == JIWER_PUNCT(texts)


@settings(max_examples=150, deadline=None)
@given(st.lists(ANY_TEXT, max_size=8))
def test_strip_matches_jiwer(texts):
    assert strip(texts) == jiwer.Strip()(texts)


@settings(max_examples=150, deadline=None)
@given(st.lists(SPACED_TEXT, max_size=8))
def test_whitespace_matches_jiwer_on_spaced_text(texts):
    assert whitespace(texts) == JIWER_SPACES(texts)


@settings(max_examples=150, deadline=None)
@given(st.lists(ANY_TEXT, max_size=8))
def test_whitespace_collapses_every_isspace_run(texts):
    got = whitespace(texts)
    assert got == [re.sub(r"\s+", " ", t).strip() for t in texts]
    assert got == [" ".join(t.split()) for t in texts]
    # jiwer's whitespace handling leaves our output alone, and splits it into the same words
    assert JIWER_SPACES(got) == got
    assert [[w for w in g.split(" ") if w] for g in got] == [g.split() for g in got]


@settings(max_examples=100, deadline=None)
@given(st.lists(ANY_TEXT, max_size=8))
def test_default_matches_jiwer_composition(texts):
    ours = parse_normalizer("default")(texts)
    theirs = [
        " ".join(t.split())
        for t in jiwer.Compose([jiwer.ToLowerCase(), JIWER_PUNCT])(texts)
    ]
    assert ours == theirs
    # the same through polars (short lists are normalised in Python)
    if not any(0xD800 <= ord(c) <= 0xDFFF for t in texts for c in t):
        assert parse_normalizer("default")(pl.Series(texts, dtype=pl.String)) == theirs


@settings(max_examples=100, deadline=None)
@given(st.lists(NO_SURROGATE_TEXT, min_size=1, max_size=8))
def test_polars_and_python_paths_agree(texts):
    for step in (lowercase, punctuation, whitespace, strip):
        via_polars = step.on_series(pl.Series(texts, dtype=pl.String)).to_list()
        assert via_polars == step.on_list(texts), step.name


def test_surrogates_fall_back_to_python():
    texts = ["A\ud800, B  c", "x"]
    assert parse_normalizer("default")(texts) == ["a\ud800 b c", "x"]


# Tricky casing: final and non-final sigma (alone, before and after spaces, apostrophes
# and punctuation), dotted capital I, sharp s, titlecase digraphs, and ASCII neighbours.
TRICKY = [
    "ΟΔΟΣ", "ΟΔΟΣ ΟΔΟΣ", "Σ", "ΑΣ'", "ΑΣ'Α", "ΑΣ.Β", "ΑΣ,", "Α Σ Α", "ΑΣ\tΒ", "ΑΣ\u00a0Β",
    "İSTANBUL", "Iİı", "STRASSE ẞ", "ǅemal ǈ ǋ", "ＡＢＣ", "Ω Ω", "MIXED ascii ÀÉ", "PLAIN ASCII",
    "", "  ", "ΣΑ ΑΣ ΣΣ",
]


def test_lowercase_tricky_unicode_equals_python_and_jiwer():
    want = [t.lower() for t in TRICKY]
    assert lowercase(TRICKY) == want
    assert lowercase(pl.Series(TRICKY)) == want
    assert jiwer.ToLowerCase()(TRICKY) == want
    assert lowercase.on_series(pl.Series(TRICKY)).to_list() == want


@settings(max_examples=100, deadline=None)
@given(st.lists(NO_SURROGATE_TEXT | st.sampled_from(TRICKY) | st.text("ABCÀΣİ .,'", max_size=12), min_size=1, max_size=8))
def test_lowercase_polars_path_equals_str_lower(texts):
    assert lowercase.on_series(pl.Series(texts, dtype=pl.String)).to_list() == [t.lower() for t in texts]


def test_non_ascii_codepoints_are_decoded_exactly():
    from groupwise.audit._text import _non_ascii_codepoints

    texts = ["abc", "é", "ça va — 😀!", "東京\u00a0x", "\U0010ffff\u0080\u07ff\u0800\uffff\U00010000", ""]
    want = sorted({ord(c) for t in texts for c in t if ord(c) > 127})
    assert _non_ascii_codepoints(pl.Series(texts)) == want
    assert _non_ascii_codepoints(pl.Series(["plain", "ascii"])) == []
    # a sliced, multi-chunk Series
    s = pl.concat([pl.Series(["x", "é"]), pl.Series(["ü", "😀"])], rechunk=False).slice(1, 2)
    assert _non_ascii_codepoints(s) == [0xE9, 0xFC]


@settings(max_examples=100, deadline=None)
@given(st.lists(NO_SURROGATE_TEXT, min_size=1, max_size=8))
def test_non_ascii_codepoints_match_python(texts):
    from groupwise.audit._text import _non_ascii_codepoints

    assert _non_ascii_codepoints(pl.Series(texts, dtype=pl.String)) == sorted(
        {ord(c) for t in texts for c in t if ord(c) > 127}
    )


def test_character_tables_equal_python_on_every_code_point():
    import sys
    import unicodedata

    from groupwise.audit._text import _punctuation_table, _whitespace_codepoints

    every = "".join(map(chr, range(sys.maxunicode + 1)))
    assert _whitespace_codepoints() == tuple(i for i, c in enumerate(every) if c.isspace())
    kept = every.translate(_punctuation_table())
    assert kept == "".join(c for c in every if not unicodedata.category(c).startswith("P"))


def test_punctuation_class_covers_characters_beyond_ascii():
    texts = ["«hé»", "¿qué?", "a—b", "x\u2019s", "﹏wavy", "plain"]
    assert punctuation(pl.Series(texts)) == [t.translate({ord(c): None for c in t if c in "«»¿?—\u2019﹏"}) for t in texts]


def test_tokenwise_steps():
    assert parse_normalizer("default").tokenwise
    assert all(step.tokenwise for step in STEPS.values())
    # a step from elsewhere is applied to whole texts unless it says otherwise
    shout = Step("shout", "upper case", lambda xs: [x.upper() for x in xs])
    assert not shout.tokenwise
    assert not Normalizer([lowercase, shout]).tokenwise


def test_short_and_long_lists_take_python_and_polars_paths_with_one_result():
    texts = ["ΟΔΟΣ, İstanbul!", "Hello\u00a0World ", "«é»  x", ""] * 1500  # 6,000 strings
    norm = parse_normalizer("default")
    want = [" ".join(JIWER_PUNCT(t.lower()).split()) for t in texts]
    assert norm(texts) == want
    assert norm(texts[:8]) == want[:8]
