"""Bulk edit counts agree with jiwer 4's process_words / process_characters exactly."""

from __future__ import annotations

import jiwer
import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import groupwise.audit._align as align
from groupwise.audit._align import EditCounts, char_edits, word_edits

FIELDS = ("substitutions", "deletions", "insertions", "hits", "ref_len", "hyp_len")

VOCABS = {
    "ascii": ["a", "b", "the", "cat", "sat", "on", "mat", "x"],
    "accents": ["café", "naïve", "ça", "über", "œuvre", "ñandú", "e\u0301"],
    "cjk": ["我", "你好", "世界", "東京", "한국어", "こんにちは"],
    "emoji": ["😀", "👍🏽", "🇫🇷", "👩\u200d💻", "🙂🙂"],
    "arabic": ["مرحبا", "بك", "في", "العالم", "שלום"],
}
VOCABS["mixed"] = [w for words in VOCABS.values() for w in words]


def jiwer_words(ref: str, hyp: str) -> tuple[int, ...]:
    out = jiwer.process_words(ref, hyp)
    return (
        out.substitutions,
        out.deletions,
        out.insertions,
        out.hits,
        len(out.references[0]),
        len(out.hypotheses[0]),
    )


def jiwer_chars(ref: str, hyp: str) -> tuple[int, ...]:
    out = jiwer.process_characters(ref, hyp)
    return (
        out.substitutions,
        out.deletions,
        out.insertions,
        out.hits,
        len(out.references[0]),
        len(out.hypotheses[0]),
    )


def rows(counts: EditCounts) -> list[tuple[int, ...]]:
    return list(zip(*(getattr(counts, f).tolist() for f in FIELDS)))


def corrupt(words: list[str], vocab: list[str], rng: np.random.Generator, rate: float) -> list[str]:
    out: list[str] = []
    for w in words:
        u = rng.random()
        if u < rate / 2:
            out.append(vocab[rng.integers(len(vocab))])
        elif u < 0.75 * rate:
            continue
        elif u < rate:
            out.extend([w, vocab[rng.integers(len(vocab))]])
        else:
            out.append(w)
    if rng.random() < rate / 4:
        out.insert(0, vocab[rng.integers(len(vocab))])
    return out


def random_pairs(n: int, vocab: list[str], seed: int, max_len: int = 14, rate: float = 0.3):
    rng = np.random.default_rng(seed)
    refs, hyps = [], []
    for _ in range(n):
        words = [vocab[i] for i in rng.integers(len(vocab), size=rng.integers(0, max_len + 1))]
        refs.append(" ".join(words))
        hyps.append(" ".join(corrupt(words, vocab, rng, rate)))
    return refs, hyps


@st.composite
def sentence_pairs(draw, vocab: list[str]):
    n = draw(st.integers(1, 12))
    pairs = []
    for _ in range(n):
        ref = draw(st.lists(st.sampled_from(vocab), max_size=10))
        hyp = list(ref)
        for _ in range(draw(st.integers(0, 4))):
            op = draw(st.sampled_from(["sub", "del", "ins", "swap"]))
            if op == "ins" or not hyp:
                hyp.insert(draw(st.integers(0, len(hyp))), draw(st.sampled_from(vocab)))
            elif op == "sub":
                hyp[draw(st.integers(0, len(hyp) - 1))] = draw(st.sampled_from(vocab))
            elif op == "del":
                del hyp[draw(st.integers(0, len(hyp) - 1))]
            elif len(hyp) > 1:
                i = draw(st.integers(0, len(hyp) - 2))
                hyp[i], hyp[i + 1] = hyp[i + 1], hyp[i]
        pairs.append((" ".join(ref), " ".join(hyp)))
    return pairs


@pytest.mark.parametrize("vocab_name", sorted(VOCABS))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_words_match_jiwer_per_pair(vocab_name, data):
    pairs = data.draw(sentence_pairs(VOCABS[vocab_name]))
    refs, hyps = [p[0] for p in pairs], [p[1] for p in pairs]
    assert rows(word_edits(refs, hyps)) == [jiwer_words(r, h) for r, h in pairs]


@pytest.mark.parametrize("vocab_name", ["ascii", "mixed"])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_chars_match_jiwer_per_pair(vocab_name, data):
    pairs = data.draw(sentence_pairs(VOCABS[vocab_name]))
    refs, hyps = [p[0] for p in pairs], [p[1] for p in pairs]
    assert rows(char_edits(refs, hyps)) == [jiwer_chars(r, h) for r, h in pairs]


@pytest.mark.parametrize("vocab_name", ["ascii", "mixed"])
def test_thousands_of_pairs_in_one_call(vocab_name):
    refs, hyps = random_pairs(3000, VOCABS[vocab_name], seed=1)
    got = word_edits(refs, hyps)
    assert rows(got) == [jiwer_words(r, h) for r, h in zip(refs, hyps)]
    whole = jiwer.process_words(refs, hyps)
    totals = got.totals()
    assert (totals["substitutions"], totals["deletions"], totals["insertions"], totals["hits"]) == (
        whole.substitutions,
        whole.deletions,
        whole.insertions,
        whole.hits,
    )
    assert totals["errors"] / totals["ref_len"] == pytest.approx(whole.wer)

    chars = char_edits(refs[:1000], hyps[:1000])
    assert rows(chars) == [jiwer_chars(r, h) for r, h in zip(refs[:1000], hyps[:1000])]
    whole_chars = jiwer.process_characters(refs[:1000], hyps[:1000])
    assert chars.errors.sum() / chars.ref_len.sum() == pytest.approx(whole_chars.cer)


def test_ambiguous_alignments_follow_rapidfuzz():
    # pairs where several minimal alignments exist, so the S/D/I split is rapidfuzz's
    refs = ["a b", "a b c d", "x a b a b", "the cat the cat", "a a b b", "b a"]
    hyps = ["b a", "b c d a", "a b a b y", "cat the cat the", "b b a a", "a b"]
    assert rows(word_edits(refs, hyps)) == [jiwer_words(r, h) for r, h in zip(refs, hyps)]
    assert rows(char_edits(refs, hyps)) == [jiwer_chars(r, h) for r, h in zip(refs, hyps)]


def test_workers_do_not_change_results():
    refs, hyps = random_pairs(500, VOCABS["mixed"], seed=2)
    a, b = word_edits(refs, hyps, workers=1), word_edits(refs, hyps, workers=-1)
    assert rows(a) == rows(b)
    assert rows(char_edits(refs, hyps, workers=2)) == rows(char_edits(refs, hyps, workers=1))


def test_input_kinds_give_the_same_counts():
    refs, hyps = random_pairs(200, VOCABS["mixed"], seed=3)
    want = rows(word_edits(refs, hyps))
    for make in (
        tuple,
        lambda x: np.array(x, dtype=object),
        np.array,
        pd.Series,
        lambda x: pd.Series(x, dtype=object),
        lambda x: pd.Series(x, dtype="string"),
        pl.Series,
    ):
        assert rows(word_edits(make(refs), make(hyps))) == want
        assert rows(char_edits(make(refs), make(hyps))) == rows(char_edits(refs, hyps))


def big_vocab_pairs(n_words: int, seed: int):
    rng = np.random.default_rng(seed)
    vocab = [f"w{i}" for i in rng.permutation(n_words)]
    refs = [" ".join(vocab[i : i + 10]) for i in range(0, n_words, 10)]
    hyps = [" ".join(corrupt(r.split(), vocab, rng, 0.4)) for r in refs]
    return refs, hyps


@pytest.mark.parametrize("n_words", [60_000, 70_000])
def test_large_vocabularies(n_words):
    # 60,000 words push ids past U+D800, 70,000 past the 16-bit range
    refs, hyps = big_vocab_pairs(n_words, seed=n_words)
    got = word_edits(refs, hyps)
    got_rows = rows(got)
    sample = range(0, len(refs), 7)
    assert [got_rows[i] for i in sample] == [jiwer_words(refs[i], hyps[i]) for i in sample]
    whole = jiwer.process_words(refs, hyps)
    assert got.totals()["errors"] == whole.substitutions + whole.deletions + whole.insertions
    assert got.totals()["hits"] == whole.hits


def test_code_points_skip_surrogates_and_stay_distinct():
    ids = np.arange(70_000, dtype=np.int64)
    offs = np.array([0, 55_000, 70_000], dtype=np.int64)
    strings = align._sequences(ids, offs, vocab_size=70_000)
    points = [ord(c) for s in strings for c in s]
    assert len(points) == 70_000
    assert len(set(points)) == 70_000
    assert 0 not in points
    assert not any(0xD800 <= p <= 0xDFFF for p in points)
    assert max(points) == 70_000 + 0x800


def test_vocabulary_beyond_code_points_falls_back_to_int_lists(monkeypatch):
    refs, hyps = random_pairs(300, VOCABS["mixed"], seed=4)
    want = rows(word_edits(refs, hyps))
    monkeypatch.setattr(align, "_MAX_CODEPOINT_VOCAB", 5)
    assert isinstance(align._sequences(np.arange(6), np.array([0, 6]), 6)[0], list)
    assert rows(word_edits(refs, hyps)) == want


def test_word_edits_do_not_import_pandas():
    # pyarrow's own conversion to numpy imports pandas; the encoder reads Arrow buffers itself
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from groupwise.audit._align import word_edits\n"
        "e = word_edits(['a b c', 'x y', 'same'], ['a c', 'x y z', 'same'])\n"
        "print(e.errors.tolist(), e.ref_len.tolist(), 'pandas' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["[1,", "1,", "0]", "[3,", "2,", "1]", "False"]


def test_python_encoder_matches_polars_encoder():
    refs, hyps = random_pairs(300, VOCABS["mixed"], seed=5)
    (ri, ro), (hi, ho), _ = align._encode_python(refs, hyps)
    (piece,) = align._encode_polars(refs, hyps, np.arange(len(refs)))
    (pri, pro), (phi, pho) = piece.refs, piece.hyps
    np.testing.assert_array_equal(ro, pro)
    np.testing.assert_array_equal(ho, pho)
    # ids differ, but equal words must get equal ids on both sides and vice versa
    flat_words = " ".join(refs + hyps).split()
    py_ids = np.concatenate([ri, hi]).tolist()
    pl_ids = np.concatenate([pri, phi]).tolist()
    n_words = len(set(flat_words))
    assert len(set(zip(py_ids, pl_ids))) == len(set(py_ids)) == len(set(pl_ids)) == n_words


def test_lone_surrogates_use_the_python_encoder():
    refs = ["a \ud800 b", "x y"]
    hyps = ["a b", "x \udfff y"]
    assert rows(word_edits(refs, hyps)) == [jiwer_words(r, h) for r, h in zip(refs, hyps)]
    assert rows(char_edits(refs, hyps)) == [jiwer_chars(r, h) for r, h in zip(refs, hyps)]


def test_unnormalised_whitespace_is_split_like_str_split():
    refs = ["a  b", " a b ", "a\tb\nc", "", "a\u00a0b", "\u3000", "a b"]
    hyps = ["a b", "a\u2028b", "a b c", "  ", "a b", "x", "a  b\t"]
    clean_refs = [" ".join(r.split()) for r in refs]
    clean_hyps = [" ".join(h.split()) for h in hyps]
    got = rows(word_edits(refs, hyps))
    assert got == rows(word_edits(clean_refs, clean_hyps))
    assert got == [jiwer_words(r, h) for r, h in zip(clean_refs, clean_hyps)]
    # the repair of such rows also works when the input is Arrow-backed
    assert rows(word_edits(pl.Series(refs), pd.Series(hyps, dtype="string"))) == got
    assert rows(word_edits(refs, pl.Series(hyps))) == got


def test_edit_counts_object():
    # rapidfuzz (and so jiwer) aligns "a b c" / "a c d" as two substitutions
    e = word_edits(["a b c", "x"], ["a c d", ""])
    assert len(e) == 2
    assert e.errors.tolist() == [2, 1]
    assert e.totals() == {
        "substitutions": 2,
        "deletions": 1,
        "insertions": 0,
        "hits": 1,
        "ref_len": 4,
        "hyp_len": 3,
        "errors": 3,
    }
    for f in FIELDS:
        arr = getattr(e, f)
        assert arr.dtype == np.int64
        with pytest.raises(ValueError):
            arr[0] = 5
    assert (e.hits + e.substitutions + e.deletions == e.ref_len).all()
    assert (e.hits + e.substitutions + e.insertions == e.hyp_len).all()


# Raw text for the normalised word counts: casing with context (final sigma, dotted I),
# punctuation-only pieces, every kind of whitespace, empty texts.
RAW_TEXT = st.lists(
    st.sampled_from(
        ["ΟΔΟΣ", "Σ", "ΑΣ'", "İ", "Hello,", "hello", "HELLO", "-", ",", "...", "don't", "DON'T",
         "a\tb", "x\u00a0y", "\u3000", "", "Ça", "ça!", "«é»", "\U0001d400"]
    ),
    max_size=8,
).map(lambda words: " ".join(words))
SPECS = ["default", "none", "lowercase", "punctuation", "punctuation+lowercase", "lowercase+strip",
         "whitespace+punctuation+lowercase", "strip"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(RAW_TEXT | st.text(max_size=20), RAW_TEXT | st.text(max_size=20)), min_size=1, max_size=12))
def test_normalised_words_equal_normalising_whole_texts(pairs):
    from groupwise.audit._align import normalized_word_edits
    from groupwise.audit._text import parse_normalizer

    refs = [r for r, _ in pairs]
    hyps = [h for _, h in pairs]
    for spec in SPECS:
        norm = parse_normalizer(spec)
        want = rows(word_edits(norm(refs), norm(hyps)))
        assert rows(normalized_word_edits(refs, hyps, norm)) == want, spec
        assert rows(normalized_word_edits(pl.Series(refs), pd.Series(hyps, dtype="string"), norm)) == want, spec


def test_normalised_words_equal_jiwer():
    from groupwise.audit._align import normalized_word_edits
    from groupwise.audit._text import parse_normalizer

    refs = ["ΟΔΟΣ ΟΔΟΣ, İstanbul", "Hello , world !", "- a -", "", "DON'T  stop", "ΑΣ'Α ΣΑ"]
    hyps = ["οδος οδοσ istanbul", "hello world", "a", "uh ,", "dont stop now", "ασ'α σα"]
    got = rows(normalized_word_edits(refs, hyps, parse_normalizer("default")))
    transform = jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.RemoveMultipleSpaces(),
                               jiwer.Strip(), jiwer.ReduceToListOfListOfWords()])
    want = []
    for r, h in zip(refs, hyps):
        out = jiwer.process_words(r, h, reference_transform=transform, hypothesis_transform=transform)
        want.append((out.substitutions, out.deletions, out.insertions, out.hits,
                     len(out.references[0]), len(out.hypotheses[0])))
    assert got == want


def test_normalisers_that_need_whole_texts():
    from groupwise.audit._align import normalized_word_edits
    from groupwise.audit._text import Normalizer, Step, lowercase

    refs = ["one two", "Three four five", "x"]
    hyps = ["one to", "three for five", ""]
    # joins words across spaces, so it must see whole texts
    join = Step("join", "remove spaces", lambda xs: [x.replace(" ", "") for x in xs])
    norm = Normalizer([lowercase, join])
    assert rows(normalized_word_edits(refs, hyps, norm)) == rows(word_edits(norm(refs), norm(hyps)))
    assert rows(normalized_word_edits(refs, hyps, lambda xs: [x.upper() for x in xs])) == rows(
        word_edits([r.upper() for r in refs], [h.upper() for h in hyps])
    )
    assert rows(normalized_word_edits(refs, hyps, None)) == rows(word_edits(refs, hyps))


def test_pieces_of_none_one_and_several_words():
    # "," normalises to nothing, "a\tb" is two words, "x" one: all three ways of expanding
    from groupwise.audit._align import normalized_word_edits
    from groupwise.audit._text import parse_normalizer

    norm = parse_normalizer("default")
    for refs, hyps in [
        (["a b", "c"], ["a c", "c"]),  # every piece one word
        (["a , b", ", c ,"], ["a c", ","]),  # some none
        (["a , x\tb", "y\u00a0z ,"], ["a b", "y z"]),  # some several
    ]:
        assert rows(normalized_word_edits(refs, hyps, norm)) == rows(word_edits(norm(refs), norm(hyps)))


def test_identical_pairs_are_counted_without_alignment():
    from groupwise.audit._align import normalized_word_edits
    from groupwise.audit._text import parse_normalizer

    refs = ["A b", "", ",", "a  b\tc", "x", "Σ Σ", "same words here"]
    hyps = ["A b", "", ",", "a  b\tc", "y", "Σ Σ", "same words here"]
    want = [jiwer_words(" ".join(r.split()), " ".join(h.split())) if r.split() else (0, 0, 0, 0, 0, len(h.split()))
            for r, h in zip(refs, hyps)]
    assert rows(word_edits(refs, hyps)) == want
    assert rows(word_edits(pl.Series(refs), pl.Series(hyps))) == want
    norm = parse_normalizer("default")
    got = rows(normalized_word_edits(refs, hyps, norm))
    assert got == rows(word_edits(norm(refs), norm(hyps)))
    assert got[2] == (0, 0, 0, 0, 0, 0)  # "," is no word once punctuation is removed
    all_same = rows(normalized_word_edits(refs[:4], refs[:4], norm))
    assert all_same == [(0, 0, 0, 2, 2, 2), (0, 0, 0, 0, 0, 0), (0, 0, 0, 0, 0, 0), (0, 0, 0, 3, 3, 3)]


@pytest.mark.parametrize("vocab_size", [0xD7FF, 0xD800, 0xD801])
def test_code_points_at_the_surrogate_boundary(vocab_size):
    ids = np.arange(vocab_size, dtype=np.uint32)
    (string,) = align._sequences(ids, np.array([0, vocab_size]), vocab_size)
    points = [ord(c) for c in string]
    assert points[0] == 1
    assert points[-1] == (vocab_size if vocab_size < 0xD800 else vocab_size + 0x800)
    assert not any(0xD800 <= p <= 0xDFFF for p in points)
    assert len(set(points)) == vocab_size
