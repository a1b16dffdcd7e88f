"""Domain language models and dictionaries for PocketSphinx (groupwise.speech._lm)."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pocketsphinx", reason="the language model tests load models into PocketSphinx")

from groupwise._errors import InputError  # noqa: E402
from groupwise.speech._lm import (  # noqa: E402
    build_lm,
    decode,
    default_dictionary_path,
    pocketsphinx_decoder,
    tokenize,
    write_dictionary,
)
from groupwise.speech._textgen import sentences, split_test_and_train  # noqa: E402

SMALL = [
    "the patient reports chest pain",
    "the patient reports back pain radiating to the left leg",
    "the patient denies chest pain",
    "start aspirin once daily",
    "start insulin twice daily",
    "continue aspirin",
    "pain",
    "follow up in two weeks",
    "the pain is worse at night",
]


# ---------------------------------------------------------------- a tiny ARPA reader


class Arpa:
    """Parses an ARPA file strictly and computes backoff probabilities from it."""

    def __init__(self, path: Path) -> None:
        lines = path.read_text(encoding="utf-8").splitlines()
        assert lines[0] == "\\data\\"
        self.declared: dict[int, int] = {}
        i = 1
        while lines[i].startswith("ngram "):
            k, n = lines[i][len("ngram ") :].split("=")
            self.declared[int(k)] = int(n)
            i += 1
        self.order = max(self.declared)
        assert sorted(self.declared) == list(range(1, self.order + 1))
        self.logp: dict[tuple[str, ...], float] = {}
        self.bow: dict[tuple[str, ...], float] = {}
        self.found = {k: 0 for k in self.declared}
        section = None
        for line in lines[i:]:
            if not line.strip():
                continue
            if line == "\\end\\":
                section = "end"
                continue
            if line.startswith("\\") and line.endswith("-grams:"):
                section = int(line[1 : -len("-grams:")])
                continue
            assert isinstance(section, int), f"line outside a section: {line!r}"
            fields = line.split()
            assert len(fields) in (section + 1, section + 2), line
            gram = tuple(fields[1 : section + 1])
            assert gram not in self.logp, f"duplicate n-gram {gram}"
            self.logp[gram] = float(fields[0])
            if len(fields) == section + 2:
                assert section < self.order, "the highest order has no backoff weights"
                self.bow[gram] = float(fields[-1])
            self.found[section] += 1
        assert section == "end"
        self.vocab = sorted(g[0] for g in self.logp if len(g) == 1)

    def prob(self, word: str, context: tuple[str, ...]) -> float:
        context = context[-(self.order - 1) :] if self.order > 1 else ()
        log10 = 0.0
        while True:
            gram = (*context, word)
            if gram in self.logp:
                return 10 ** (log10 + self.logp[gram])
            log10 += self.bow.get(context, 0.0)
            if not context:
                raise KeyError(word)
            context = context[1:]


def contexts(arpa: Arpa) -> set[tuple[str, ...]]:
    """Every history the model can be asked about, plus some it never saw."""
    out: set[tuple[str, ...]] = {()}
    for gram in arpa.logp:
        if len(gram) < arpa.order and "</s>" not in gram and gram[1:].count("<s>") == 0:
            out.add(gram)
    unseen = [w for w in arpa.vocab if w not in ("<s>", "</s>")][:4]
    out.update(itertools.permutations(unseen, min(2, arpa.order - 1)))
    out.update(("<s>", w) for w in unseen)
    return out


# ---------------------------------------------------------------- ARPA file and smoothing


def test_tokenize_lowercases_and_strips_punctuation():
    assert tokenize("BP 120/80; patient's pain -- worse!") == ["bp", "120", "80", "patient's", "pain", "worse"]
    assert tokenize("  ...  ") == []


def test_arpa_header_counts_match_sections(tmp_path):
    info = build_lm(SMALL, out=tmp_path / "small.arpa", order=3)
    arpa = Arpa(info.path)
    assert arpa.declared == arpa.found
    assert info.counts == tuple(arpa.declared[k] for k in (1, 2, 3))
    assert info.order == 3
    assert info.sentences == len(SMALL)
    assert info.vocabulary_size == len(arpa.vocab) - 2
    assert {"<s>", "</s>"} <= set(arpa.vocab)
    assert arpa.logp[("<s>",)] == -99.0
    assert all(lp <= 0 for lp in arpa.logp.values())
    # ARPA needs every n-gram's context and its lower-order suffix to be listed too.
    for gram in arpa.logp:
        if len(gram) > 1:
            assert gram[:-1] in arpa.logp and gram[1:] in arpa.logp, gram


@pytest.mark.parametrize(("order", "discount"), [(1, 0.7), (2, 0.7), (3, 0.7), (3, None), (4, 0.3)])
def test_every_conditional_distribution_sums_to_one(tmp_path, order, discount):
    info = build_lm(SMALL, out=tmp_path / "small.arpa", order=order, discount=discount)
    arpa = Arpa(info.path)
    predicted = [w for w in arpa.vocab if w != "<s>"]
    checked = 0
    for context in contexts(arpa):
        total = sum(arpa.prob(w, context) for w in predicted)
        assert total == pytest.approx(1.0, abs=1e-5), context
        checked += 1
    assert checked > (20 if order > 1 else 0)


def test_kneser_ney_value_by_hand(tmp_path):
    # Bigrams <s> a (2), a b, a c, b </s>, c </s>. Continuation counts of the unigrams:
    # a 1 (after <s>), b 1, c 1, </s> 2 -> P(b) = 1/5. With D = 0.7:
    # P(b | a) = (1 - 0.7) / 2 + (0.7 * 2 / 2) * 1/5 = 0.29.
    info = build_lm(["a b", "a c"], out=tmp_path / "ab.arpa", order=2, discount=0.7)
    arpa = Arpa(info.path)
    assert arpa.prob("b", ("a",)) == pytest.approx(0.29, abs=1e-6)
    assert arpa.prob("</s>", ()) == pytest.approx(0.4, abs=1e-6)
    # Unseen bigram "b a": backoff weight of b is 0.7 * 1 / 1, times P(a) = 1/5.
    assert arpa.prob("a", ("b",)) == pytest.approx(0.14, abs=1e-6)


def test_estimated_discounts_are_reported(tmp_path):
    info = build_lm(sentences("clinical", 300), out=tmp_path / "c.arpa", order=3, discount=None)
    assert len(info.discounts) == 2
    assert all(0.1 <= d <= 0.9 for d in info.discounts)
    assert build_lm(SMALL, out=tmp_path / "s.arpa").discounts == (0.7, 0.7)


def test_order_is_lowered_when_sentences_are_short(tmp_path):
    info = build_lm(["pain", "chest pain"], out=tmp_path / "short.arpa", order=5)
    assert info.order == 4  # "<s> chest pain </s>" is the longest n-gram
    assert Arpa(info.path).order == 4


def test_text_from_a_file_and_normalisation(tmp_path):
    text = tmp_path / "train.txt"
    text.write_text("The Patient reports PAIN.\n\n  \nPain, worse at night!\n", encoding="utf-8")
    from_file = build_lm(text, out=tmp_path / "a.arpa")
    from_str = build_lm(str(text), out=tmp_path / "b.arpa")
    from_list = build_lm(["the patient reports pain", "pain worse at night"], out=tmp_path / "c.arpa")
    assert from_file.sentences == 2
    assert (tmp_path / "a.arpa").read_text() == (tmp_path / "b.arpa").read_text() == (tmp_path / "c.arpa").read_text()
    assert from_file.counts == from_list.counts


def test_oov_words_are_reported(tmp_path):
    info = build_lm(["the patient takes xqzvmab", "dose 50 milligrams"], out=tmp_path / "o.arpa")
    assert info.oov == ("50", "xqzvmab")


@pytest.mark.parametrize(
    ("text", "kwargs", "match"),
    [
        ([], {}, "no words"),
        (["...", ""], {}, "no words"),
        ("no/such/file.txt", {}, "does not exist"),
        (SMALL, {"order": 0}, "^The 'order' parameter of build_lm"),
        (SMALL, {"order": 2.0}, "^The 'order' parameter of build_lm"),
        (SMALL, {"discount": 1.0}, "^The 'discount' parameter of build_lm"),
        (SMALL, {"discount": 0}, "^The 'discount' parameter of build_lm"),
        ([1, 2], {}, "sentences"),
    ],
)
def test_build_lm_errors(tmp_path, text, kwargs, match):
    with pytest.raises(InputError, match=match):
        build_lm(text, out=tmp_path / "x.arpa", **kwargs)


# ---------------------------------------------------------------- dictionary


def test_write_dictionary_keeps_alternates_and_reports_missing(tmp_path):
    out = tmp_path / "d.dict"
    missing = write_dictionary(["Read", "the", "qqqzzz", "<s>", "</s>", "the"], out)
    assert missing == ["qqqzzz"]
    lines = out.read_text().splitlines()
    heads = [line.split()[0] for line in lines]
    assert "read" in heads and "read(2)" in heads and "the" in heads
    assert "qqqzzz" not in heads and "<s>" not in heads
    source = {line.strip() for line in default_dictionary_path().read_text().splitlines()}
    assert set(lines) <= source


def test_write_dictionary_from_another_source(tmp_path):
    src = tmp_path / "src.dict"
    src.write_text("pain P EY N\npain(2) P EH N\nchest CH EH S T\n", encoding="utf-8")
    assert write_dictionary(["pain", "arm"], tmp_path / "o.dict", source=src) == ["arm"]
    assert (tmp_path / "o.dict").read_text() == "pain P EY N\npain(2) P EH N\n"
    with pytest.raises(InputError, match="does not exist"):
        write_dictionary(["pain"], tmp_path / "o.dict", source=tmp_path / "none.dict")


# ---------------------------------------------------------------- PocketSphinx


def test_pocketsphinx_loads_the_model_and_a_dictionary_next_to_it(tmp_path):
    info = build_lm(sentences("clinical", 300), out=tmp_path / "lm" / "clinical.arpa")
    decoder = pocketsphinx_decoder(lm=info.path)
    dictionary = tmp_path / "lm" / "clinical.dict"
    assert dictionary.is_file()
    assert Path(decoder.config["lm"]) == info.path
    assert Path(decoder.config["dict"]) == dictionary
    heads = {line.split()[0].split("(")[0] for line in dictionary.read_text().splitlines()}
    assert heads == set(Arpa(info.path).vocab) - {"<s>", "</s>"}
    assert decode(decoder, np.zeros(4000, dtype=np.float32)) in ("", *heads)


def test_pocketsphinx_decoder_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        pocketsphinx_decoder(lm=tmp_path / "missing.arpa")
    bad = tmp_path / "bad.arpa"
    bad.write_text("\\data\\\nngram 1=5\n\n\\1-grams:\n-1.0 a\n\n\\end\\\n", encoding="utf-8")
    with pytest.raises(InputError, match="could not load"):
        pocketsphinx_decoder(lm=bad)


def test_decode_input_checks():
    decoder = pocketsphinx_decoder()
    with pytest.raises(InputError, match="one-dimensional"):
        decode(decoder, np.zeros((100, 2), dtype=np.float32))
    with pytest.raises(InputError, match="float"):
        decode(decoder, np.zeros(100, dtype=np.int32))
    assert isinstance(decode(decoder, np.zeros(1600, dtype=np.int16)), str)


# ---------------------------------------------------------------- end to end


def wer(refs: list[str], hyps: list[str]) -> float:
    """Corpus word error rate: word-level Levenshtein distance over reference words."""
    errors = words = 0
    for ref, hyp in zip(refs, hyps, strict=True):
        r, h = ref.split(), hyp.split()
        row = list(range(len(h) + 1))
        for i, rw in enumerate(r, 1):
            prev, row[0] = row[0], i
            for j, hw in enumerate(h, 1):
                prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (rw != hw))
        errors += row[-1]
        words += len(r)
    return errors / words


def test_wer_helper():
    assert wer(["a b c"], ["a x c d"]) == pytest.approx(2 / 3)
    assert wer(["a b", "c"], ["a b", ""]) == pytest.approx(1 / 3)


def test_domain_lm_beats_the_general_lm_on_synthetic_clinical_speech(tmp_path):
    pytest.importorskip("espeakng_loader", reason="the end-to-end test synthesises speech")
    from groupwise.speech._audio import resample
    from groupwise.speech._espeak import Voice, synthesize

    test, train = split_test_and_train("clinical", n_test=10, n_train=2000, seed=0)
    # Five of the ten held-out sentences are decoded (the general model's large search is
    # most of this test's time); the language model is built without any of the ten.
    test = test[:5]
    info = build_lm(train, out=tmp_path / "clinical.arpa", order=3)
    assert info.oov == ()
    audio = []
    for sentence in test:
        samples, rate = synthesize(sentence, Voice("en-us"))
        audio.append(resample(samples, rate, 16000))
    seconds = sum(a.size for a in audio) / 16000

    general = pocketsphinx_decoder()
    domain = pocketsphinx_decoder(lm=info.path)
    general_hyps = [decode(general, a) for a in audio]
    start = time.process_time()
    domain_hyps = [decode(domain, a) for a in audio]
    rtf = (time.process_time() - start) / seconds

    general_wer, domain_wer = wer(test, general_hyps), wer(test, domain_hyps)
    print(f"\nWER general LM {general_wer:.3f}, domain LM {domain_wer:.3f}, domain RTF {rtf:.3f}")
    # Measured on this setup: about 0.89 with the general model, 0.33 with the domain one
    # (0.90 and 0.34 on all ten sentences).
    assert general_wer > 0.6
    assert domain_wer < 0.6
    assert domain_wer < general_wer - 0.25
    assert rtf > 0
