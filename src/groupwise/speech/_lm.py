"""Domain n-gram language models and pronunciation dictionaries for PocketSphinx.

A speech recogniser's language model decides which word sequences it expects. Testing a
recogniser the way it would be deployed (a clinical dictation system, say) needs a
language model for that domain, trained on text from the domain but never on the test
sentences themselves. :func:`build_lm` estimates such a model from sentences and writes
it as an ARPA file; :func:`write_dictionary` writes the matching subset of the CMU
pronouncing dictionary; :func:`pocketsphinx_decoder` and :func:`decode` run PocketSphinx
with them (or with its default general-English model).

Smoothing
---------
Interpolated Kneser-Ney (Chen and Goodman, 1998, section 3.5) with one absolute
discount ``D`` per order:

``P(w | h) = max(c(h w) - D, 0) / c(h .) + D N(h .) / c(h .) * P(w | h')``

where ``h'`` is ``h`` without its first word, ``c`` is the raw count at the highest
order and the continuation count (the number of distinct words seen before the n-gram)
at lower orders, except for n-grams starting with ``<s>``, which have no left context
and keep raw counts. ``N(h .)`` is the number of distinct words seen after ``h``.
Unigrams are not discounted (every word of the vocabulary was seen, and there is no
``<unk>``). The interpolated model is written in backoff form: an n-gram seen in
training gets its interpolated probability, and a context ``h`` gets the backoff weight
``D N(h .) / c(h .)``; the ARPA rule ``P(w | h) = bow(h) P(w | h')`` for unseen ``h w``
then gives exactly the interpolated probability, so every conditional distribution sums
to one.

Text normalisation
------------------
:func:`tokenize`: Unicode NFKC, lower case, and words are runs of letters and digits,
with apostrophes kept inside a word (``"patient's"``, ``"o'clock"``); everything else
(punctuation, hyphens, symbols) separates words. Digits are kept as written, so ``"50"``
is a word that is missing from the pronouncing dictionary: write numbers as words.
"""

from __future__ import annotations

import functools
import math
import os
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from groupwise._errors import InputError
from groupwise._validation import check_scalar

if TYPE_CHECKING:
    import pocketsphinx

__all__ = [
    "LMInfo",
    "build_lm",
    "write_dictionary",
    "pocketsphinx_decoder",
    "decode",
    "tokenize",
    "default_dictionary_path",
]

BOS, EOS = "<s>", "</s>"
_SPECIAL = frozenset({BOS, EOS, "<unk>", "<sil>"})
_LOG10_ZERO = -99.0  # ARPA convention for "never predicted" (the probability of <s>)
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_MAX_ORDER = 10


def tokenize(text: str) -> list[str]:
    """Split text into the lower-case words a language model is built from.

    Examples
    --------
    >>> tokenize("The patient's BP: 120/80, at 3 o'clock.")
    ['the', "patient's", 'bp', '120', '80', 'at', '3', "o'clock"]
    """
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower())


def default_dictionary_path() -> Path:
    """The CMU pronouncing dictionary that ships with the pocketsphinx wheel."""
    return Path(_pocketsphinx().get_model_path("en-us/cmudict-en-us.dict"))


@dataclass(frozen=True)
class LMInfo:
    """What :func:`build_lm` wrote.

    Attributes
    ----------
    path : Path
        The ARPA file.
    order : int
        Order of the model written (lower than asked for when no sentence is long
        enough to have n-grams of the order asked for).
    counts : tuple of int
        Number of n-grams of each order in the file, unigrams first (``<s>`` and
        ``</s>`` included among the unigrams).
    vocabulary_size : int
        Distinct words, not counting ``<s>`` and ``</s>``.
    sentences : int
        Non-empty sentences the model was estimated from.
    discounts : tuple of float
        Kneser-Ney discount used at each order from 2 up.
    oov : tuple of str
        Words of the model missing from the pronouncing dictionary, sorted: a
        recogniser cannot output them. :func:`write_dictionary` skips them.
    """

    path: Path
    order: int
    counts: tuple[int, ...]
    vocabulary_size: int
    sentences: int
    discounts: tuple[float, ...]
    oov: tuple[str, ...]


def _pocketsphinx() -> Any:
    try:
        import pocketsphinx
    except ImportError as exc:  # pragma: no cover - it is a dependency of the package
        raise InputError(
            "the pocketsphinx package is not installed", fix="pip install 'pocketsphinx>=5'"
        ) from exc
    return pocketsphinx


def _read_sentences(text: Iterable[str] | str | os.PathLike[str]) -> list[list[str]]:
    if isinstance(text, (str, os.PathLike)):
        path = Path(text)
        if not path.is_file():
            hint = " (a str is read as a file name)" if isinstance(text, str) else ""
            raise InputError(
                f"language model text file {str(path)[:80]!r} does not exist{hint}",
                fix="pass the path of a UTF-8 file with one sentence per line, or a list of sentences",
            )
        lines: Iterable[str] = path.read_text(encoding="utf-8").splitlines()
    else:
        lines = (line for item in text for line in _as_str(item).splitlines())
    return [toks for toks in map(tokenize, lines) if toks]


def _as_str(item: object) -> str:
    if not isinstance(item, str):
        raise InputError(
            f"language model text must be sentences (str), got a {type(item).__name__}",
            fix="pass a list of sentences or the path of a text file",
        )
    return item


def _check_discount(discount: float | None) -> None:
    if discount is None:
        return
    check_scalar(
        discount, "discount", float, caller="build_lm", min_val=0.0, max_val=1.0, include_min=False,
        include_max=False, fix="use discount=0.7, or None to estimate it from the counts",
    )


def _estimated_discount(counts: Iterable[int]) -> float:
    # Ney, Essen and Kneser's estimate D = n1 / (n1 + 2 n2) from the numbers of n-grams
    # seen once and twice; synthetic text can lack either, hence the fallback and clip.
    of_counts = Counter(counts)
    n1, n2 = of_counts.get(1, 0), of_counts.get(2, 0)
    if n1 == 0 or n2 == 0:
        return 0.5
    return min(max(n1 / (n1 + 2 * n2), 0.1), 0.9)


def build_lm(
    text: Iterable[str] | str | os.PathLike[str],
    *,
    out: str | os.PathLike[str],
    order: int = 3,
    discount: float | None = 0.7,
    dictionary: str | os.PathLike[str] | None = None,
) -> LMInfo:
    """Estimate an interpolated Kneser-Ney n-gram model and write it as an ARPA file.

    Parameters
    ----------
    text : iterable of str, str or path
        Training sentences: an iterable of sentences, or the path of a UTF-8 text file
        with one sentence per line (a ``str`` is always read as a path). Text is
        normalised with :func:`tokenize`; sentences with no words are skipped.
    out : str or path
        ARPA file to write (parent directories are created). PocketSphinx recognises
        the format by the ``.arpa`` or ``.lm`` suffix.
    order : int
        Highest n-gram order, 1 to 10.
    discount : float or None
        Absolute discount of Kneser-Ney smoothing, in (0, 1), the same at every order;
        None estimates one per order as ``n1 / (n1 + 2 n2)`` from the counts of
        n-grams seen once and twice.
    dictionary : str or path, optional
        Pronouncing dictionary the vocabulary is checked against (default: the CMU
        dictionary of the pocketsphinx wheel). Only used to fill :attr:`LMInfo.oov`.

    Returns
    -------
    LMInfo

    Raises
    ------
    InputError
        When the text has no words, a file is missing, or an option is out of range.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> tmp = tempfile.TemporaryDirectory()
    >>> arpa = pathlib.Path(tmp.name) / "tiny.arpa"
    >>> info = build_lm(["The patient reports chest pain.", "The patient denies pain."],
    ...                 out=arpa, order=2)
    >>> info.counts, info.vocabulary_size, info.oov
    ((8, 8), 6, ())
    >>> print("\\n".join(arpa.read_text().splitlines()[:3]))
    \\data\\
    ngram 1=8
    ngram 2=8
    >>> tmp.cleanup()
    """
    check_scalar(order, "order", int, caller="build_lm", min_val=1, max_val=_MAX_ORDER, fix="use order=3 (a trigram model)")
    order = int(order)
    _check_discount(discount)
    sentences = _read_sentences(text)
    if not sentences:
        raise InputError(
            "the language model text has no words", fix="pass at least one sentence with words"
        )

    raw: list[Counter[tuple[str, ...]]] = [Counter() for _ in range(order + 1)]  # raw[k]: k-grams
    for words in sentences:
        padded = (BOS, *words, EOS)
        for k in range(1, order + 1):
            for i in range(len(padded) - k + 1):
                raw[k][padded[i : i + k]] += 1
    order = max(k for k in range(1, order + 1) if raw[k])
    raw = raw[: order + 1]

    counts = _kneser_ney_counts(raw, order)
    logprob, backoff, discounts = _interpolate(counts, order, discount)

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_arpa(out, logprob, backoff, order)

    vocab = sorted(w for (w,) in raw[1] if w not in (BOS, EOS))
    known = _dictionary_entries(_resolve_dictionary(dictionary))
    return LMInfo(
        path=out,
        order=order,
        counts=tuple(len(logprob[k]) for k in range(1, order + 1)),
        vocabulary_size=len(vocab),
        sentences=len(sentences),
        discounts=discounts,
        oov=tuple(w for w in vocab if w not in known),
    )


def _kneser_ney_counts(
    raw: Sequence[Counter[tuple[str, ...]]], order: int
) -> list[dict[tuple[str, ...], int]]:
    """Counts the estimate uses at each order: raw at the top, continuation below."""
    counts: list[dict[tuple[str, ...], int]] = [{} for _ in range(order + 1)]
    counts[order] = dict(raw[order])
    for k in range(1, order):
        left: Counter[tuple[str, ...]] = Counter(g[1:] for g in raw[k + 1])
        counts[k] = {g: (c if g[0] == BOS else left[g]) for g, c in raw[k].items()}
    return counts


def _interpolate(
    counts: Sequence[dict[tuple[str, ...], int]], order: int, discount: float | None
) -> tuple[list[dict[tuple[str, ...], float]], dict[tuple[str, ...], float], tuple[float, ...]]:
    """log10 probabilities of every listed n-gram and log10 backoff weights of contexts."""
    prob: list[dict[tuple[str, ...], float]] = [{} for _ in range(order + 1)]
    # <s> is only ever a context; its unigram is listed (it needs a backoff weight) but
    # gets no probability mass, so unigrams normalise over the other words.
    unigram_total = sum(c for (w,), c in counts[1].items() if w != BOS)
    for g, c in counts[1].items():
        prob[1][g] = 0.0 if g[0] == BOS else c / unigram_total
    gamma: dict[tuple[str, ...], float] = {}
    discounts: list[float] = []
    for k in range(2, order + 1):
        d = discount if discount is not None else _estimated_discount(counts[k].values())
        discounts.append(float(d))
        total: dict[tuple[str, ...], int] = defaultdict(int)
        types: dict[tuple[str, ...], int] = defaultdict(int)
        for g, c in counts[k].items():
            total[g[:-1]] += c
            types[g[:-1]] += 1
        for h, t in total.items():
            gamma[h] = d * types[h] / t
        lower = prob[k - 1]
        for g, c in counts[k].items():
            h = g[:-1]
            # g[1:] is always listed one order down: it is a suffix of a seen n-gram.
            prob[k][g] = (c - d) / total[h] + gamma[h] * lower[g[1:]]
    logprob = [
        {g: (_LOG10_ZERO if g == (BOS,) else math.log10(p)) for g, p in level.items()}
        for level in prob
    ]
    backoff = {h: math.log10(w) for h, w in gamma.items()}
    return logprob, backoff, tuple(discounts)


def _write_arpa(
    path: Path,
    logprob: Sequence[dict[tuple[str, ...], float]],
    backoff: dict[tuple[str, ...], float],
    order: int,
) -> None:
    lines = ["\\data\\"]
    lines += [f"ngram {k}={len(logprob[k])}" for k in range(1, order + 1)]
    for k in range(1, order + 1):
        lines += ["", f"\\{k}-grams:"]
        for g in sorted(logprob[k]):
            line = f"{logprob[k][g]:.7f}\t{' '.join(g)}"
            if k < order and g in backoff:
                line += f"\t{backoff[g]:.7f}"
            lines.append(line)
    lines += ["", "\\end\\", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def _resolve_dictionary(source: str | os.PathLike[str] | None) -> Path:
    path = default_dictionary_path() if source is None else Path(source)
    if not path.is_file():
        raise InputError(
            f"pronouncing dictionary {str(path)!r} does not exist",
            fix="pass the path of a CMU-format dictionary, or None for the one in the pocketsphinx wheel",
        )
    return path


def _dictionary_entries(path: Path) -> dict[str, list[str]]:
    """Dictionary lines grouped by word, alternates ("word(2)") with their base word."""
    stat = path.stat()
    return _dictionary_cache(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _dictionary_cache(path: str, mtime_ns: int, size: int) -> dict[str, list[str]]:
    entries: dict[str, list[str]] = defaultdict(list)
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            line = line.strip()
            if not line or line.startswith(";;;"):
                continue
            head = line.split(maxsplit=1)[0]
            base = re.sub(r"\(\d+\)$", "", head)
            entries[base].append(line)
    return dict(entries)


def write_dictionary(
    words: Iterable[str],
    out: str | os.PathLike[str],
    *,
    source: str | os.PathLike[str] | None = None,
) -> list[str]:
    """Write the pronunciations of ``words`` from a CMU-format dictionary.

    Alternate pronunciations (``"read(2)"``) are kept. ``<s>``, ``</s>``, ``<unk>``
    and ``<sil>`` are skipped (the acoustic model's filler dictionary covers them);
    words are looked up in lower case, as :func:`tokenize` writes them.

    Parameters
    ----------
    words : iterable of str
        Words wanted.
    out : str or path
        Dictionary file to write (parent directories are created).
    source : str or path, optional
        Dictionary to copy from; default the CMU dictionary of the pocketsphinx wheel.

    Returns
    -------
    list of str
        Words that have no pronunciation in ``source`` (sorted, lower case); they are
        left out of the file, and a recogniser using it cannot output them.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> tmp = tempfile.TemporaryDirectory()
    >>> out = pathlib.Path(tmp.name) / "tiny.dict"
    >>> write_dictionary(["read", "patient", "xqzv", "</s>"], out)
    ['xqzv']
    >>> print(out.read_text(), end="")
    patient P EY SH AH N T
    read R EH D
    read(2) R IY D
    >>> tmp.cleanup()
    """
    entries = _dictionary_entries(_resolve_dictionary(source))
    wanted = sorted({w.lower() for w in words if isinstance(w, str)} - _SPECIAL)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = [line for w in wanted for line in entries.get(w, ())]
    out.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return [w for w in wanted if w not in entries]


def _arpa_unigrams(path: Path) -> list[str] | None:
    """Words of an ARPA file's unigram section, or None when it is not an ARPA file."""
    try:
        with open(path, encoding="utf-8") as fh:
            head = ""
            for line in fh:
                if line.strip():
                    head = line.strip()
                    break
            if head != "\\data\\":
                return None
            words: list[str] = []
            section = False
            for line in fh:
                line = line.strip()
                if line == "\\1-grams:":
                    section = True
                elif section:
                    if not line or line.startswith("\\"):
                        break
                    words.append(line.split()[1])
            return words
    except (UnicodeDecodeError, IndexError):  # a binary model, or not a language model at all
        return None


def pocketsphinx_decoder(
    *,
    lm: str | os.PathLike[str] | None = None,
    dictionary: str | os.PathLike[str] | None = None,
    **options: Any,
) -> pocketsphinx.Decoder:
    """A quiet PocketSphinx decoder with the wheel's US English acoustic model.

    Parameters
    ----------
    lm : str or path, optional
        Language model (ARPA text, or PocketSphinx's binary format). Default: the
        wheel's general English model ``en-us.lm.bin``.
    dictionary : str or path, optional
        Pronouncing dictionary. Default: with an ARPA ``lm``, the CMU pronunciations of
        its words, written next to it as ``<lm stem>.dict`` (overwritten each time);
        otherwise the wheel's full CMU dictionary.
    **options
        Other PocketSphinx configuration parameters (``samprate``, ``lw``, ``beam``...).

    Returns
    -------
    pocketsphinx.Decoder
        Logging goes to ``os.devnull``.

    Raises
    ------
    InputError
        When a file is missing or PocketSphinx rejects the configuration.

    Examples
    --------
    >>> dec = pocketsphinx_decoder()
    >>> Path(dec.config["lm"]).name, dec.config["samprate"]
    ('en-us.lm.bin', 16000)
    """
    ps = _pocketsphinx()
    config: dict[str, Any] = {
        "hmm": ps.get_model_path("en-us/en-us"),
        "lm": ps.get_model_path("en-us/en-us.lm.bin"),
        "dict": str(default_dictionary_path()),
        "logfn": os.devnull,
    }
    if lm is not None:
        lm_path = Path(lm)
        if not lm_path.is_file():
            raise InputError(
                f"language model {str(lm_path)!r} does not exist",
                fix="build one with build_lm(), or pass lm=None for the general English model",
            )
        config["lm"] = str(lm_path)
        if dictionary is None:
            words = _arpa_unigrams(lm_path)
            if words is not None:
                dict_path = lm_path.with_suffix(".dict")
                write_dictionary(words, dict_path)
                config["dict"] = str(dict_path)
    if dictionary is not None:
        dict_path = Path(dictionary)
        if not dict_path.is_file():
            raise InputError(
                f"pronouncing dictionary {str(dict_path)!r} does not exist",
                fix="write one with write_dictionary(), or pass dictionary=None",
            )
        config["dict"] = str(dict_path)
    config.update(options)
    try:
        return ps.Decoder(**config)
    except (RuntimeError, ValueError) as exc:
        raise InputError(
            f"PocketSphinx could not load its models ({exc}) with lm={config['lm']!r}, "
            f"dict={config['dict']!r}",
            fix="check that the language model is a valid ARPA or binary file and the dictionary is in CMU format",
        ) from exc


def decode(decoder: pocketsphinx.Decoder, audio: np.ndarray) -> str:
    """Recognise one utterance.

    Parameters
    ----------
    decoder : pocketsphinx.Decoder
        From :func:`pocketsphinx_decoder`.
    audio : numpy.ndarray
        Mono audio at the decoder's sample rate (16 kHz unless configured otherwise):
        float samples in [-1, 1] (clipped) or int16 samples.

    Returns
    -------
    str
        The best hypothesis, lower case, words separated by spaces; ``""`` when
        nothing was recognised.
    """
    samples = np.asarray(audio)
    if samples.ndim != 1:
        raise InputError(
            f"audio must be one-dimensional (mono), got shape {samples.shape}",
            fix="average the channels, e.g. audio.mean(axis=1)",
        )
    if samples.dtype != np.int16:
        if not np.issubdtype(samples.dtype, np.floating):
            raise InputError(
                f"audio must be float in [-1, 1] or int16, got {samples.dtype}",
                fix="convert with audio.astype(np.float32) / 32768 for integer PCM",
            )
        samples = np.round(np.clip(np.nan_to_num(samples), -1.0, 1.0) * 32767).astype(np.int16)
    decoder.start_utt()
    # full_utt=True: the whole utterance is here, so cepstral mean normalisation can use
    # all of it instead of a running estimate that starts from a generic prior.
    decoder.process_raw(samples.astype("<i2", copy=False).tobytes(), full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return hyp.hypstr if hyp is not None else ""
