"""Named, composable text normalisation for transcripts.

A :class:`Normalizer` is an ordered tuple of :class:`Step` objects applied to many
strings at once. The steps mirror jiwer's transforms so that error rates computed on
normalised text agree with jiwer's:

============  ==========================================================================
step          what it does (and its jiwer counterpart)
============  ==========================================================================
lowercase     :meth:`str.lower` (``jiwer.ToLowerCase``)
punctuation   removes every character whose Unicode general category starts with ``P``
              (``jiwer.RemovePunctuation``, same set of characters)
whitespace    collapses each run of whitespace to one space and strips both ends
              (``jiwer.RemoveMultipleSpaces`` followed by ``jiwer.Strip``)
strip         :meth:`str.strip` (``jiwer.Strip``)
============  ==========================================================================

"Whitespace" is what :meth:`str.isspace` says it is, so after the ``whitespace`` step the
words are exactly ``text.split()``. One deliberate difference from jiwer: a *single*
tab, newline or no-break space between two words becomes a space here, while
``jiwer.RemoveMultipleSpaces`` only rewrites runs of two or more such characters (and
jiwer's word splitting then keeps ``"a\\tb"`` as one word). On text whose only
whitespace is the plain space, the two agree exactly.

:func:`parse_normalizer` turns a spec such as ``"default"``, ``"none"`` or
``"lowercase+punctuation+whitespace"`` into a :class:`Normalizer`; ``Normalizer.spec``
gives the spec back.

Every step runs in bulk on a polars Series, with results equal to the pure Python
reference implementation on every input:

- the punctuation, whitespace and strip steps are polars string expressions whose
  character classes come from Python's own Unicode tables (so they remove exactly the
  characters Python and jiwer would): ASCII punctuation, plus the punctuation among the
  other characters that occur, which are found by decoding the UTF-8 of the non-ASCII
  texts in bulk with numpy;
- lowercasing uses polars on texts that are pure ASCII (where it maps A-Z to a-z, as
  :meth:`str.lower` does) and :meth:`str.lower` itself on the rest, whose special cases
  (final sigma, dotted capital I) and Unicode version are what jiwer uses.

Strings polars cannot hold (lone surrogates) are processed with plain Python instead.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import polars as pl

from groupwise._errors import InputError

__all__ = [
    "Step",
    "Normalizer",
    "parse_normalizer",
    "STEPS",
    "ALIASES",
    "lowercase",
    "punctuation",
    "whitespace",
    "strip",
]


# ---------------------------------------------------------------------------------------
# Character tables. Nothing scans every code point's category: punctuation is looked up
# for the characters that occur (ASCII once, the rest as they are met), and whitespace is
# found by the regex engine's own isspace test over all code points (~20 ms).


def _is_punctuation(codepoint: int) -> bool:
    return unicodedata.category(chr(codepoint)).startswith("P")


_ASCII_PUNCTUATION: tuple[int, ...] = tuple(c for c in range(128) if _is_punctuation(c))


class _PunctuationTable(dict[int, "int | None"]):
    """``str.translate`` table deleting punctuation, filled in as characters are met.

    A missing code point is classified on its first lookup (``dict.__missing__``) and
    remembered, so the table never holds more than the characters seen.
    """

    def __missing__(self, codepoint: int) -> int | None:
        value = None if _is_punctuation(codepoint) else codepoint
        self[codepoint] = value
        return value


_PUNCTUATION_TABLE = _PunctuationTable()
# Identity entries for the rest of ASCII up front: str.translate looks each distinct
# character up once per call.
for _c in range(128):
    _PUNCTUATION_TABLE[_c]
del _c


def _punctuation_table() -> dict[int, int | None]:
    return _PUNCTUATION_TABLE


def _all_characters() -> str:
    """Every code point but the surrogates, in order, as one string."""
    cps = np.arange(sys.maxunicode + 1, dtype="<u4")
    cps = cps[(cps < 0xD800) | (cps > 0xDFFF)]
    return cps.tobytes().decode("utf-32-le")


@cache
def _whitespace_codepoints() -> tuple[int, ...]:
    # In a str pattern, re's \s is Py_UNICODE_ISSPACE, the same test as str.isspace, and
    # no surrogate is whitespace.
    return tuple(ord(c) for c in re.findall(r"\s", _all_characters()))


@cache
def _whitespace_chars() -> str:
    return "".join(map(chr, _whitespace_codepoints()))


def _regex_class(codepoints: Iterable[int]) -> str:
    """A Rust-regex character class matching exactly ``codepoints``."""
    parts: list[str] = []
    run: list[int] = []
    for c in sorted(codepoints):
        if run and c == run[-1] + 1:
            run.append(c)
            continue
        if run:
            parts.append(_class_range(run[0], run[-1]))
        run = [c]
    if run:
        parts.append(_class_range(run[0], run[-1]))
    return "[" + "".join(parts) + "]"


def _class_range(a: int, b: int) -> str:
    return f"\\x{{{a:x}}}" if a == b else f"\\x{{{a:x}}}-\\x{{{b:x}}}"


@cache
def _other_whitespace_class() -> str:
    return _regex_class(c for c in _whitespace_codepoints() if c != 0x20)


def _non_ascii(s: pl.Series) -> pl.Series:
    """True for the strings holding a character beyond ASCII (more bytes than characters)."""
    return s.str.len_bytes() != s.str.len_chars()


def _non_ascii_codepoints(s: pl.Series) -> list[int]:
    """The distinct code points above U+007F in ``s``, decoded from its UTF-8 in bulk."""
    wide = _non_ascii(s)
    if not wide.any():
        return []
    arr = s.filter(wide).rechunk().to_arrow(compat_level=pl.CompatLevel.oldest())
    if hasattr(arr, "combine_chunks"):
        arr = arr.combine_chunks()
    _, offsets, values = arr.buffers()
    offs = np.frombuffer(offsets, dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    return _utf8_distinct(np.frombuffer(values, dtype=np.uint8)[offs[0] : offs[-1]]).tolist()


def _utf8_distinct(data: np.ndarray) -> np.ndarray:
    """Sorted distinct code points of the multi-byte characters in valid UTF-8 ``data``."""
    lead = np.flatnonzero(data >= 0xC0)  # the first byte of each multi-byte character
    b0 = data[lead].astype(np.uint32)
    b1 = data[lead + 1].astype(np.uint32) & 0x3F
    cps = ((b0 & 0x1F) << 6) | b1
    three = np.flatnonzero(b0 >= 0xE0)
    if three.size:
        b2 = data[lead[three] + 2].astype(np.uint32) & 0x3F
        cps[three] = ((b0[three] & 0x0F) << 12) | (b1[three] << 6) | b2
        four = three[b0[three] >= 0xF0]
        if four.size:
            at = lead[four]
            b2 = data[at + 2].astype(np.uint32) & 0x3F
            b3 = data[at + 3].astype(np.uint32) & 0x3F
            cps[four] = ((b0[four] & 0x07) << 18) | (b1[four] << 12) | (b2 << 6) | b3
    seen = np.zeros(sys.maxunicode + 1, dtype=bool)
    seen[cps] = True
    return np.flatnonzero(seen)


# ---------------------------------------------------------------------------------------
# Input coercion shared with groupwise.audit._align.


def _is_missing(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float | np.floating):
        return bool(value != value)
    pd = sys.modules.get("pandas")
    return pd is not None and (value is pd.NA or value is pd.NaT)


def _missing_error(what: str, rows: list[int]) -> InputError:
    return InputError(
        f"{len(rows)} {what} are missing (None or NaN)",
        fix='fill them with "" where the recogniser (or the transcriber) produced no words, '
        "or drop those rows",
        rows=rows,
    )


def _coerce_texts(values: Any, what: str) -> list[str] | pl.Series:
    """Validate a column of transcripts; return a list of str or a polars String Series.

    A polars Series is returned only when the input already holds Arrow-backed strings
    (polars, or pandas' ``str``/``string[pyarrow]`` dtypes), to skip building a million
    Python strings that a polars-only pipeline would not need. Row numbers in errors are
    0-based positions.
    """
    if isinstance(values, str | bytes):
        raise InputError(
            f"{what} must be a sequence of strings, not a single {type(values).__name__}",
            fix=f"pass a list (or array or Series) with one entry per utterance, e.g. [{what[:3]}]",
        )
    if isinstance(values, pl.Series):
        return _check_polars(values, what)
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(values, pd.Series | pd.Index):
        dtype = values.dtype
        if dtype != object and pd.api.types.is_string_dtype(dtype):
            missing = np.flatnonzero(values.isna().to_numpy()).tolist()
            if missing:
                raise _missing_error(what, missing)
            try:
                return _check_polars(pl.Series(values), what)
            except (TypeError, ValueError, pl.exceptions.PolarsError):
                pass
        values = values.tolist()
    elif isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise InputError(
                f"{what} must be one-dimensional, got an array of shape {values.shape}",
                fix="pass one string per utterance",
            )
        values = values.tolist()
    elif not isinstance(values, list):
        values = list(values)
    if set(map(type, values)) <= {str}:
        return values
    missing = [i for i, v in enumerate(values) if not isinstance(v, str) and _is_missing(v)]
    if missing:
        raise _missing_error(what, missing)
    wrong = [i for i, v in enumerate(values) if not isinstance(v, str)]
    if wrong:
        raise InputError(
            f"{len(wrong)} {what} are not strings "
            f"(the first is a {type(values[wrong[0]]).__name__})",
            fix="pass transcripts as text, one string per utterance",
            rows=wrong,
        )
    # str subclasses such as numpy.str_ become plain str for polars and rapidfuzz.
    return [v if type(v) is str else str(v) for v in values]


def _check_polars(series: pl.Series, what: str) -> pl.Series:
    if series.dtype in (pl.Categorical, pl.Enum):
        series = series.cast(pl.String)
    if series.dtype != pl.String:
        if series.dtype == pl.Null and series.len() == 0:
            return series.cast(pl.String)
        if series.null_count() == series.len():
            raise _missing_error(what, list(range(series.len())))
        raise InputError(
            f"{what} must be strings, got a polars Series of {series.dtype}",
            fix="pass transcripts as text, one string per utterance",
        )
    if series.null_count():
        raise _missing_error(what, series.is_null().arg_true().to_list())
    return series


def _as_list(data: list[str] | pl.Series) -> list[str]:
    return data if isinstance(data, list) else data.to_list()


def _as_series(data: list[str] | pl.Series) -> pl.Series | None:
    """The data as a polars String Series, or None when polars cannot hold it."""
    if isinstance(data, pl.Series):
        return data
    try:
        return pl.Series(values=data, dtype=pl.String)
    except UnicodeEncodeError:  # lone surrogates have no UTF-8 encoding
        return None


# ---------------------------------------------------------------------------------------
# Steps.


@dataclass(frozen=True)
class Step:
    """One named normalisation step.

    Parameters
    ----------
    name : str
        The name used in normaliser specs.
    description : str
        One line saying what the step does.
    on_list : callable
        ``list[str] -> list[str]``, the reference (pure Python) implementation.
    on_series : callable, optional
        ``polars.Series -> polars.Series`` doing exactly the same, used when present.
    tokenwise : bool, default False
        True when applying the step to each piece of a text between plain spaces and
        joining the results gives the same words (``str.split()``) as applying it to the
        whole text: the step never merges, splits or reorders words across a space and
        reads no context beyond one. Word error rates then normalise each distinct piece
        once instead of every text (:func:`groupwise.audit._align.word_edits`). True for
        the built-in steps: lowercasing only looks past a character for the final sigma,
        and that look stops at a space.

    Examples
    --------
    >>> lowercase(["Hello World"])
    ['hello world']
    >>> print(punctuation.description)
    remove every character whose Unicode general category starts with 'P'
    """

    name: str
    description: str
    on_list: Callable[[list[str]], list[str]] = field(repr=False, compare=False)
    on_series: Callable[[pl.Series], pl.Series] | None = field(
        default=None, repr=False, compare=False
    )
    tokenwise: bool = field(default=False, repr=False, compare=False)

    def __call__(self, texts: Sequence[str] | np.ndarray | Any) -> list[str]:
        """Apply this step alone; see :meth:`Normalizer.__call__`."""
        return Normalizer((self,))(texts)


def _lower_list(texts: list[str]) -> list[str]:
    return list(map(str.lower, texts))


def _lower_series(s: pl.Series) -> pl.Series:
    # On ASCII text polars' lowercase and str.lower both map A-Z to a-z and nothing else.
    # Text beyond ASCII goes through str.lower itself: its special cases (final sigma,
    # dotted capital I) and Unicode version are what jiwer uses.
    out = s.str.to_lowercase()
    wide = _non_ascii(s)
    if wide.any():
        rows = wide.arg_true()
        lowered = list(map(str.lower, s.gather(rows).to_list()))
        out = out.scatter(rows, pl.Series(values=lowered, dtype=pl.String))
    return out


def _punct_list(texts: list[str]) -> list[str]:
    table = _punctuation_table()
    return [s.translate(table) for s in texts]


def _punct_series(s: pl.Series) -> pl.Series:
    # The class holds ASCII punctuation and the punctuation among the characters that
    # occur, so no table of all of Unicode is built.
    extra = [c for c in _non_ascii_codepoints(s) if _PUNCTUATION_TABLE[c] is None]
    return s.str.replace_all(_regex_class([*_ASCII_PUNCTUATION, *extra]), "")


def _space_list(texts: list[str]) -> list[str]:
    join = " ".join
    return [join(s.split()) for s in texts]


def _space_series(s: pl.Series) -> pl.Series:
    # One pass with a "[ws]+" pattern is ~3x slower: every single space becomes a match.
    # Rewriting the rare non-space whitespace first leaves a literal "  +" pattern, which
    # the regex engine finds with a substring search.
    s = s.str.replace_all(_other_whitespace_class(), " ")
    return s.str.replace_all("  +", " ").str.strip_chars(" ")


def _strip_list(texts: list[str]) -> list[str]:
    return list(map(str.strip, texts))


def _strip_series(s: pl.Series) -> pl.Series:
    return s.str.strip_chars(_whitespace_chars())


lowercase = Step("lowercase", "lowercase with str.lower", _lower_list, _lower_series, tokenwise=True)
punctuation = Step(
    "punctuation",
    "remove every character whose Unicode general category starts with 'P'",
    _punct_list,
    _punct_series,
    tokenwise=True,
)
whitespace = Step(
    "whitespace",
    "collapse each run of whitespace to one space and strip both ends",
    _space_list,
    _space_series,
    tokenwise=True,
)
strip = Step(
    "strip", "strip whitespace from both ends with str.strip", _strip_list, _strip_series, tokenwise=True
)

STEPS: dict[str, Step] = {s.name: s for s in (lowercase, punctuation, whitespace, strip)}
"""The known steps by name."""

ALIASES: dict[str, tuple[str, ...]] = {
    "default": ("lowercase", "punctuation", "whitespace"),
    "none": ("whitespace",),
}
"""Spec words standing for several steps. ``none`` is the minimal normalisation jiwer's
``wer_default`` applies (collapse runs of spaces, strip)."""


# ---------------------------------------------------------------------------------------
# The pipeline.

# Lists shorter than this are normalised in Python: both ways give the same strings, and
# for a few thousand strings converting to polars and back costs more than it saves.
_POLARS_FROM = 4096


@dataclass(frozen=True, init=False)
class Normalizer:
    """An ordered pipeline of normalisation steps applied to many strings at once.

    Parameters
    ----------
    steps : sequence of Step or str
        The steps in the order they run; names are looked up in :data:`STEPS`.

    Examples
    --------
    >>> norm = Normalizer(["lowercase", "punctuation", "whitespace"])
    >>> norm.spec
    'lowercase+punctuation+whitespace'
    >>> norm(["Hello,  World!", " Ça va? "])
    ['hello world', 'ça va']
    """

    steps: tuple[Step, ...]

    def __init__(self, steps: Iterable[Step | str]) -> None:
        resolved = tuple(s if isinstance(s, Step) else _lookup(s, str(s)) for s in steps)
        if not resolved:
            raise InputError(
                "a normaliser needs at least one step",
                fix="use 'none' for the minimal normalisation (collapse and strip whitespace)",
            )
        object.__setattr__(self, "steps", resolved)

    @property
    def spec(self) -> str:
        """The steps' names joined with ``+``; :func:`parse_normalizer` reads it back."""
        return "+".join(s.name for s in self.steps)

    def __call__(self, texts: Sequence[str] | np.ndarray | Any) -> list[str]:
        """Normalise every string.

        Parameters
        ----------
        texts : sequence of str, numpy array, pandas Series or polars Series
            The transcripts. None or NaN entries raise :class:`InputError`.

        Returns
        -------
        list of str
            The normalised strings, in input order.
        """
        return _as_list(self._apply(_coerce_texts(texts, "texts")))

    @property
    def tokenwise(self) -> bool:
        """True when every step is :attr:`Step.tokenwise`."""
        return all(step.tokenwise for step in self.steps)

    def _apply(self, data: list[str] | pl.Series) -> list[str] | pl.Series:
        """Normalise already checked texts; a polars Series stays one where it can.

        Short lists (a vocabulary of distinct words, say) stay in Python, where the steps
        need no character classes and no conversion.
        """
        polars_ok = not (isinstance(data, list) and len(data) < _POLARS_FROM)
        for step in self.steps:
            if step.on_series is not None and polars_ok:
                series = _as_series(data)
                if series is not None:
                    data = step.on_series(series)
                    continue
                polars_ok = False
            data = step.on_list(_as_list(data))
        return data

    def __repr__(self) -> str:
        return f"Normalizer({self.spec!r})"


def _lookup(name: str, spec: str) -> Step:
    key = name.strip().lower()
    if key in STEPS:
        return STEPS[key]
    raise InputError(
        f"unknown normalisation step {name.strip()!r} in {spec!r}",
        fix="use 'default', 'none' or step names joined with '+' from: " + ", ".join(STEPS),
    )


def parse_normalizer(spec: str | Normalizer) -> Normalizer:
    """Build a :class:`Normalizer` from a spec string.

    Parameters
    ----------
    spec : str
        ``"default"`` (lowercase+punctuation+whitespace), ``"none"`` (whitespace only:
        collapse runs of whitespace and strip, the minimum jiwer also applies), or step
        names from :data:`STEPS` joined with ``+`` (aliases may appear among them).
        Case and spaces around names are ignored. A Normalizer is returned unchanged.

    Returns
    -------
    Normalizer

    Raises
    ------
    InputError
        For an empty spec or an unknown step; the message lists the known steps.

    Examples
    --------
    >>> parse_normalizer("default").spec
    'lowercase+punctuation+whitespace'
    >>> parse_normalizer("none")(["  a   b "])
    ['a b']
    >>> parse_normalizer("lowercase+strip")([" A-B "])
    ['a-b']
    """
    if isinstance(spec, Normalizer):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise InputError(
            f"the normalisation spec {spec!r} is empty or not a string",
            fix="use 'default', 'none' or step names joined with '+' from: " + ", ".join(STEPS),
        )
    names: list[str] = []
    for part in spec.split("+"):
        key = part.strip().lower()
        names.extend(ALIASES.get(key, (part,)))
    return Normalizer([_lookup(n, spec) for n in names])
