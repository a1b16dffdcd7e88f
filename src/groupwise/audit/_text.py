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

The punctuation, whitespace and strip steps run as polars string expressions built from
Python's own Unicode tables (so they remove exactly the characters Python and jiwer
would); lowercasing stays with :meth:`str.lower`, whose special cases (final sigma,
dotted capital I) and Unicode version are what jiwer uses. Strings polars cannot hold
(lone surrogates) are processed with plain Python instead, with the same result.
"""

from __future__ import annotations

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
# Character tables, built once on first use (scanning all code points takes ~0.2 s).


@cache
def _punctuation_codepoints() -> tuple[int, ...]:
    return tuple(
        c for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)).startswith("P")
    )


@cache
def _whitespace_codepoints() -> tuple[int, ...]:
    return tuple(c for c in range(sys.maxunicode + 1) if chr(c).isspace())


@cache
def _whitespace_chars() -> str:
    return "".join(map(chr, _whitespace_codepoints()))


@cache
def _punctuation_table() -> dict[int, int | None]:
    table: dict[int, int | None] = dict.fromkeys(_punctuation_codepoints())
    # Identity entries for the rest of ASCII: str.translate looks each distinct character
    # up once per call, and a miss costs a KeyError, which made translate ~5x slower.
    for c in range(128):
        table.setdefault(c, c)
    return table


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
def _punctuation_class() -> str:
    return _regex_class(_punctuation_codepoints())


@cache
def _other_whitespace_class() -> str:
    return _regex_class(c for c in _whitespace_codepoints() if c != 0x20)


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

    def __call__(self, texts: Sequence[str] | np.ndarray | Any) -> list[str]:
        """Apply this step alone; see :meth:`Normalizer.__call__`."""
        return Normalizer((self,))(texts)


def _lower_list(texts: list[str]) -> list[str]:
    return list(map(str.lower, texts))


def _punct_list(texts: list[str]) -> list[str]:
    table = _punctuation_table()
    return [s.translate(table) for s in texts]


def _punct_series(s: pl.Series) -> pl.Series:
    return s.str.replace_all(_punctuation_class(), "")


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


lowercase = Step("lowercase", "lowercase with str.lower", _lower_list)
punctuation = Step(
    "punctuation",
    "remove every character whose Unicode general category starts with 'P'",
    _punct_list,
    _punct_series,
)
whitespace = Step(
    "whitespace",
    "collapse each run of whitespace to one space and strip both ends",
    _space_list,
    _space_series,
)
strip = Step("strip", "strip whitespace from both ends with str.strip", _strip_list, _strip_series)

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
        data: list[str] | pl.Series = _coerce_texts(texts, "texts")
        polars_ok = True
        for step in self.steps:
            if step.on_series is not None and polars_ok:
                series = _as_series(data)
                if series is not None:
                    data = step.on_series(series)
                    continue
                polars_ok = False
            data = step.on_list(_as_list(data))
        return _as_list(data)

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
