"""Edge cases of word_edits / char_edits: empty and blank strings, long utterances, bad input."""

from __future__ import annotations

import jiwer
import numpy as np
import pandas as pd
import polars as pl
import pytest

import groupwise.audit._align as align
from groupwise import InputError
from groupwise.audit._align import char_edits, word_edits

FIELDS = ("substitutions", "deletions", "insertions", "hits", "ref_len", "hyp_len")


def rows(counts) -> list[tuple[int, ...]]:
    return list(zip(*(getattr(counts, f).tolist() for f in FIELDS)))


def jiwer_rows(process, refs, hyps) -> list[tuple[int, ...]]:
    out = []
    for r, h in zip(refs, hyps):
        o = process(r, h)
        out.append(
            (
                o.substitutions,
                o.deletions,
                o.insertions,
                o.hits,
                len(o.references[0]),
                len(o.hypotheses[0]),
            )
        )
    return out


def test_jiwer_empty_reference_behaviour_is_what_we_mirror():
    # jiwer 4 accepts empty references: every hypothesis word is an insertion
    o = jiwer.process_words("", "a b")
    assert (o.substitutions, o.deletions, o.insertions, o.hits) == (0, 0, 2, 0)
    assert o.references == [[]]
    both = jiwer.process_words("", "")
    assert (both.substitutions, both.deletions, both.insertions, both.hits) == (0, 0, 0, 0)


@pytest.mark.parametrize("edits", [word_edits, char_edits])
def test_empty_reference_and_hypothesis(edits):
    refs = ["", "", "a b", "", "a"]
    hyps = ["a b", "", "", "x", "a"]
    process = jiwer.process_words if edits is word_edits else jiwer.process_characters
    got = edits(refs, hyps)
    assert rows(got) == jiwer_rows(process, refs, hyps)
    assert got.ref_len[0] == 0
    assert got.insertions[0] == got.hyp_len[0] == (2 if edits is word_edits else 3)
    assert rows(got)[1] == (0, 0, 0, 0, 0, 0)
    assert got.deletions[2] == got.ref_len[2]
    # corpus rate stays a ratio of sums: the empty reference adds only to the numerator
    whole = process(refs, hyps)
    rate = whole.wer if edits is word_edits else whole.cer
    assert got.errors.sum() / got.ref_len.sum() == pytest.approx(rate)


def test_whitespace_only_strings_are_empty():
    refs = ["   ", "\t\n", " a ", "\u3000", "a b"]
    hyps = ["", "  ", "a", "x", "\n"]
    got = word_edits(refs, hyps)
    assert rows(got) == jiwer_rows(jiwer.process_words, refs, hyps)
    assert got.ref_len.tolist() == [0, 0, 1, 0, 2]
    chars = char_edits(refs, hyps)
    assert rows(chars) == jiwer_rows(jiwer.process_characters, refs, hyps)
    assert chars.ref_len.tolist() == [0, 0, 1, 0, 3]


def test_all_pairs_empty():
    got = word_edits(["", ""], ["", ""])
    assert rows(got) == [(0,) * 6] * 2


def test_no_pairs():
    for edits in (word_edits, char_edits):
        got = edits([], [])
        assert len(got) == 0
        assert got.totals()["errors"] == 0
        assert got.substitutions.dtype == np.int64


def test_very_long_utterances():
    rng = np.random.default_rng(0)
    vocab = [f"w{i}" for i in range(300)]
    refs, hyps = [], []
    for length in (2000, 1500, 5, 2000):
        ref = [vocab[i] for i in rng.integers(300, size=length)]
        hyp = [w if rng.random() > 0.2 else vocab[rng.integers(300)] for w in ref]
        del hyp[100:130]
        hyp[500:500] = ["extra"] * 17
        refs.append(" ".join(ref))
        hyps.append(" ".join(hyp))
    refs.append("a")
    hyps.append(" ".join(["a"] * 2000))
    assert rows(word_edits(refs, hyps)) == jiwer_rows(jiwer.process_words, refs, hyps)
    short_refs, short_hyps = refs[2:3] + refs[-1:], hyps[2:3] + hyps[-1:]
    assert rows(char_edits(short_refs, short_hyps)) == jiwer_rows(
        jiwer.process_characters, short_refs, short_hyps
    )


@pytest.mark.parametrize("workers", [1, -1])
@pytest.mark.parametrize(("slice_rows", "pair_chunk"), [(1, 1), (2, 2), (3, 3), (1 << 17, 1 << 15)])
def test_chunk_boundaries_and_both_string_builders(monkeypatch, slice_rows, pair_chunk, workers):
    monkeypatch.setattr(align, "_CHUNK_ROWS", 3)
    monkeypatch.setattr(align, "_PAD_WIDTH", 4)
    monkeypatch.setattr(align, "_SLICE_ROWS", slice_rows)
    monkeypatch.setattr(align, "_PAIR_CHUNK", pair_chunk)  # pairs aligned per chunk, on two threads
    refs = ["a b c d e f", "a", "", "b c", "a b c d", "x y z w v u t", "", "c"]
    hyps = ["a c d e f g", "", "b", "c b", "a b d", "x y z", "q", "c"]
    assert rows(word_edits(refs, hyps, workers=workers)) == jiwer_rows(jiwer.process_words, refs, hyps)
    # identical pairs leave fewer hypotheses than references to encode; chunks of
    # differing pairs then skip rows, at the start, in the middle and at the end
    for mixed in (refs[:4] + hyps[4:], hyps[:4] + refs[4:], [h if i % 3 else r for i, (r, h) in enumerate(zip(refs, hyps))]):
        assert rows(word_edits(refs, mixed, workers=workers)) == jiwer_rows(jiwer.process_words, refs, mixed)
    assert rows(word_edits(refs, refs, workers=workers)) == jiwer_rows(jiwer.process_words, refs, refs)


def test_mismatched_lengths():
    with pytest.raises(InputError, match="3 references but 2 hypotheses"):
        word_edits(["a", "b", "c"], ["a", "b"])
    with pytest.raises(InputError):
        char_edits(["a"], [])


@pytest.mark.parametrize(
    "make",
    [
        list,
        lambda x: np.array(x, dtype=object),
        lambda x: pd.Series(x, dtype=object),
        lambda x: pd.Series(x, dtype="string"),
        lambda x: pl.Series([v if isinstance(v, str) else None for v in x], dtype=pl.String),
    ],
)
@pytest.mark.parametrize("edits", [word_edits, char_edits])
def test_missing_transcripts_list_rows(make, edits):
    hyps = make(["a", None, "b", float("nan"), "c"])
    with pytest.raises(InputError) as info:
        edits(["a", "b", "c", "d", "e"], hyps)
    assert info.value.rows == [1, 3]
    assert "hypotheses" in info.value.problem
    assert 'fill them with ""' in info.value.fix
    with pytest.raises(InputError) as info:
        edits(make([None, "b"]), ["a", "b"])
    assert info.value.rows == [0]
    assert "references" in info.value.problem


def test_non_string_entries():
    with pytest.raises(InputError) as info:
        word_edits(["a", 1, "c"], ["a", "b", "c"])
    assert info.value.rows == [1]
    with pytest.raises(InputError):
        word_edits("a b", "a b")
    with pytest.raises(InputError):
        word_edits(pl.Series([1, 2]), pl.Series(["a", "b"]))


@pytest.mark.parametrize("workers", [0, -2, 1.5, True, "2"])
def test_bad_workers(workers):
    with pytest.raises(InputError, match="workers"):
        word_edits(["a"], ["a"], workers=workers)


def test_numpy_str_subclass_and_unicode_array():
    refs = np.array(["a b", "c"])
    hyps = np.array(["a", "c d"])
    want = jiwer_rows(jiwer.process_words, refs.tolist(), hyps.tolist())
    assert rows(word_edits(refs, hyps)) == want
    assert rows(word_edits([np.str_("a b")], [np.str_("a")])) == [(0, 1, 0, 1, 2, 1)]
