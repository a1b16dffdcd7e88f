"""Safe group expressions in the ``DataFrame.query`` syntax.

A group expression such as ``age >= 60 and sex == "Female"`` picks the rows that belong
to a group. Expressions come from untrusted people (bias-bounty submitters), so they are
never handed to ``eval``, ``exec``, ``pandas.eval`` or ``DataFrame.query``. Instead the text
is parsed with :func:`ast.parse` (which only builds a syntax tree and runs nothing), the
tree is checked against a small whitelist and rebuilt into a private tree of plain
dataclasses, and that tree is evaluated column-at-a-time with numpy and pandas.

Grammar
-------
* conditions joined with ``and``, ``or``, ``not`` or their pandas spellings ``&``, ``|``,
  ``~``. As in pandas, ``&`` and ``|`` bind like ``and`` and ``or``, so
  ``age > 60 & sex == "Female"`` means ``(age > 60) and (sex == "Female")``;
* comparisons ``== != < <= > >=``, chained (``0 < snr_db <= 10``), and ``in`` / ``not in``
  followed by a list, tuple or set of constants;
* constants: integers, floats, quoted text, ``True`` and ``False``;
* arithmetic ``+ - * / // %`` and unary ``-`` / ``+`` on numbers only, always computed in
  float64 (so ``x // 0`` is ``inf`` and ``x % 0`` is missing, as pandas gives for floats);
* column names, with backticks around names that are not identifiers: ```snr db` < 5``.

Missing values
--------------
Missing values (``NaN``, ``None``, ``pd.NA``, polars nulls) follow pandas: every comparison
with a missing value is False except ``!=``, which is True; ``in`` is False and ``not in``
is True. Comparisons are resolved to plain True/False before ``not`` / ``~`` applies, so
``not (noise == "clean")`` is True on a row whose ``noise`` is missing, exactly as
``DataFrame.query`` gives. A true/false column used as a condition by itself counts a
missing value as False. ``x != x`` is True exactly on the rows where ``x`` is missing.

Limits
------
At most 10,000 characters, 500 syntax-tree nodes, 50 levels of nesting (brackets or tree
depth) and 10,000 items in one ``in`` list. The character limit is checked before parsing,
so a huge string is refused at once.
"""

from __future__ import annotations

import ast
import difflib
import operator
import threading
import unicodedata
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np
import numpy.typing as npt

from groupwise import _lazy
from groupwise._errors import GroupExpressionError, InputError

pd = _lazy.module("pandas")
pdt = _lazy.module("pandas.api.types")

__all__ = ["GroupExpression", "parse_group"]

_MAX_LENGTH = 10_000
_MAX_NODES = 500
_MAX_DEPTH = 50
_MAX_LIST_ITEMS = 10_000
_MAX_LISTED_COLUMNS = 30

_EXAMPLE = 'age >= 60 and sex == "Female"'
_GRAMMAR = (
    "use only column names (in backticks if they contain spaces or symbols), numbers, "
    "quoted text, True/False, the comparisons == != < <= > >= in and not in, "
    "and/or/not (or & | ~), and + - * / // % on numbers"
)

Mask = npt.NDArray[np.bool_]
Scalar = Union[bool, int, float, str]


# ---------------------------------------------------------------------------
# Text preparation: backticks, pandas-style & and |, position bookkeeping
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    """The text handed to ``ast.parse`` and a map back to the user's text."""

    text: str
    # origin[i] is the offset in the user's text of character i of ``text``; one extra
    # entry maps the end of ``text`` to the end of the user's text.
    origin: tuple[int, ...]
    quoted: Mapping[str, str]  # placeholder identifier -> real column name
    line_starts: tuple[int, ...]
    lines: tuple[str, ...]

    def from_ast(self, lineno: int, col_offset: int) -> int:
        """Offset in the user's text of an AST position (``col_offset`` counts UTF-8 bytes)."""
        index = min(lineno, len(self.lines)) - 1
        start, line = self.line_starts[index], self.lines[index]
        chars = len(line.encode("utf-8", "surrogatepass")[:col_offset].decode("utf-8", "ignore"))
        return self.origin[min(start + chars, len(self.text))]

    def from_syntax_error(self, exc: SyntaxError) -> int | None:
        if not exc.lineno or exc.lineno > len(self.line_starts):
            return None
        start, line = self.line_starts[exc.lineno - 1], self.lines[exc.lineno - 1]
        # CPython reports 0 (or nothing) when the fault is the end of the input.
        column = exc.offset - 1 if exc.offset and exc.offset > 0 else len(line)
        return self.origin[start + min(column, len(line))]


def _find(haystack: str, needle: str, start: int) -> int:
    """``haystack.find(needle, start)``; every search of the scanner goes through here, so a
    test can count the characters the scanner examines."""
    return haystack.find(needle, start)


def _placeholder_prefix(text: str) -> str:
    """An identifier prefix of fixed length that occurs nowhere in ``text``.

    Python folds identifiers with NFKC, so the prefix must not occur in the folded text
    either, or a user could address a backtick column without the backticks. The prefix is
    ``_gw`` + three letters + ``_``: the letters after every ``_gw`` in the text are
    collected in one pass, and the first unused triple is taken (a 10,000-character text
    holds at most 3,334 of the 17,576), so the work is linear in the text and the
    placeholders stay short however the text is built.

    Examples
    --------
    >>> _placeholder_prefix("`snr db` < 5")
    '_gwcol_'
    >>> _placeholder_prefix("_gwcol_0 > 1")
    '_gwaaa_'
    """
    taken: set[str] = set()
    for haystack in (text, unicodedata.normalize("NFKC", text)):
        at = _find(haystack, "_gw", 0)
        while at >= 0:
            taken.add(haystack[at + 3 : at + 6])
            at = _find(haystack, "_gw", at + 3)
    for letters in _prefix_letters():
        if letters not in taken:
            return f"_gw{letters}_"
    raise AssertionError("unreachable: a text of at most 10,000 characters cannot use every prefix")


def _prefix_letters() -> Iterable[str]:
    yield "col"
    alphabet = "abcdefghijklmnopqrstuvwxyz"
    for a in alphabet:
        for b in alphabet:
            for c in alphabet:
                yield a + b + c


class _Scanner:
    """Rewrites the user's text for ``ast.parse`` in one left-to-right pass.

    Backtick names become placeholder identifiers, ``&``/``|`` become ``and``/``or``
    (pandas gives them that precedence), line breaks are normalised, and bracket depth is
    bounded before the parser can recurse on it. String literals and comments are copied
    untouched, so a ``|`` or a backtick inside quotes stays text.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.out: list[str] = []
        self.origin: list[int] = []
        self.quoted: dict[str, str] = {}
        self.placeholders: dict[str, str] = {}
        self.prefix = _placeholder_prefix(text)
        self.closing: str | None = None  # the quote that ends the string we are in
        self.escaped = False
        self.in_comment = False
        self.depth = 0

    def emit(self, piece: str, at: int) -> None:
        self.out.append(piece)
        self.origin.extend([at] * len(piece))

    def fail(self, problem: str, fix: str, at: int) -> GroupExpressionError:
        return _error(problem, fix=fix, text=self.text, position=at)

    def scan(self) -> _Source:
        text, i = self.text, 0
        # Leading whitespace is an IndentationError to Python but harmless to a user.
        while i < len(text) and text[i] in " \t\f\r\n":
            i += 1
        while i < len(text):
            char, width = text[i], 1
            if char == "\x00":
                raise self.fail("the expression contains a null character", "remove the \\x00 character", i)
            if char == "\r":  # Python reads \r\n and a lone \r as one line break
                char, width = "\n", 2 if text.startswith("\r\n", i) else 1
            if self.in_comment:
                self.in_comment = char != "\n"
                self.emit(char, i)
                i += width
            elif self.closing is not None:
                i = self.string_char(char, i, width)
            elif char == "`":
                i = self.backtick(i)
            else:
                i = self.code_char(char, i, width)
        prepared = "".join(self.out)
        lines = prepared.split("\n")
        starts = [0]
        for line in lines[:-1]:
            starts.append(starts[-1] + len(line) + 1)
        return _Source(prepared, (*self.origin, len(text)), self.quoted, tuple(starts), tuple(lines))

    def string_char(self, char: str, i: int, width: int) -> int:
        closing = self.closing
        assert closing is not None
        if self.escaped:
            self.escaped = False
        elif char == "\\":
            self.escaped = True
        elif self.text.startswith(closing, i):
            self.emit(closing, i)
            self.closing = None
            return i + len(closing)
        elif char == "\n" and len(closing) == 1:
            self.closing = None  # unterminated: the parser reports it with a position
        self.emit(char, i)
        return i + width

    def backtick(self, i: int) -> int:
        end = _find(self.text, "`", i + 1)
        if end < 0:
            raise self.fail(
                "a backtick-quoted column name is not closed",
                "end the column name with a second backtick, e.g. `snr db` < 5",
                i,
            )
        name = self.text[i + 1 : end]
        if not name:
            raise self.fail(
                "empty column name in backticks",
                "put the column name between the backticks, e.g. `snr db` < 5",
                i,
            )
        placeholder = self.placeholders.setdefault(name, f"{self.prefix}{len(self.placeholders)}")
        self.quoted[placeholder] = name
        # Spaces keep the placeholder from fusing with a neighbouring identifier or number.
        self.emit(f" {placeholder} " if self.out else f"{placeholder} ", i)
        return end + 1

    def code_char(self, char: str, i: int, width: int) -> int:
        if char in "'\"":
            self.closing = char * 3 if self.text.startswith(char * 3, i) else char
            self.emit(self.closing, i)
            return i + len(self.closing)
        if char == "#":
            self.in_comment = True
        elif char in "([{":
            self.depth += 1
            if self.depth > _MAX_DEPTH:
                raise self.fail(
                    f"brackets are nested more than {_MAX_DEPTH} levels deep",
                    "remove redundant brackets or split the group into simpler ones",
                    i,
                )
        elif char in ")]}":
            self.depth = max(self.depth - 1, 0)
        self.emit({"&": " and ", "|": " or "}.get(char, char), i)
        return i + width


def _error(problem: str, *, fix: str, text: str, position: int | None = None) -> GroupExpressionError:
    return GroupExpressionError(problem, fix=fix, expression=text, position=position)


def _syntax_tree(text: str, source: _Source) -> ast.Expression:
    try:
        # ast.parse only builds a tree (compile with PyCF_ONLY_AST); warnings about
        # odd escapes or "is" with literals are not the user's business here.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(source.text, mode="eval")
    except SyntaxError as exc:
        raise _error(
            f"the expression is not valid syntax: {exc.msg}",
            fix=f"check quotes, brackets and operators there; a valid expression looks like {_EXAMPLE}",
            text=text,
            position=source.from_syntax_error(exc),
        ) from None
    except (RecursionError, MemoryError):
        raise _error(
            "the expression is too deeply nested to parse",
            fix="remove redundant operators or brackets, or split the group into simpler ones",
            text=text,
        ) from None
    except (ValueError, UnicodeError) as exc:  # e.g. lone surrogates or oversized literals
        position = None
        if isinstance(exc, UnicodeEncodeError) and exc.start < len(source.text):
            position = source.origin[exc.start]
        raise _error(
            f"the expression cannot be parsed: {exc}",
            fix=f"use plain text such as {_EXAMPLE}",
            text=text,
            position=position,
        ) from None


# ---------------------------------------------------------------------------
# Size limits on the parsed tree
# ---------------------------------------------------------------------------

_NOT_COUNTED = (ast.expr_context, ast.operator, ast.boolop, ast.cmpop, ast.unaryop)


def _is_item(node: ast.AST) -> bool:
    """A constant (optionally signed) that may sit in an ``in`` list."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        node = node.operand
    return isinstance(node, ast.Constant)


def _check_size(tree: ast.Expression, text: str, source: _Source) -> None:
    # Iterative on purpose: the tree may be thousands of levels deep at this point.
    count = 0
    stack: list[tuple[ast.AST, int]] = [(tree.body, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > _MAX_NODES:
            raise _error(
                f"the expression has more than {_MAX_NODES} parts, the limit",
                fix="split it into several simpler groups",
                text=text,
            )
        if depth > _MAX_DEPTH:
            position = None
            if isinstance(node, ast.expr):
                position = source.from_ast(node.lineno, node.col_offset)
            raise _error(
                f"the expression is nested more than {_MAX_DEPTH} levels deep",
                fix="remove redundant operators or split the group into simpler ones",
                text=text,
                position=position,
            )
        # A list of constants counts as one part, so long `in` lists stay usable.
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)) and all(map(_is_item, node.elts)):
            continue
        stack.extend(
            (child, depth + 1)
            for child in ast.iter_child_nodes(node)
            if not isinstance(child, _NOT_COUNTED)
        )


# ---------------------------------------------------------------------------
# The checked tree
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Column:
    name: str
    pos: int


@dataclass(frozen=True)
class _Literal:
    value: Scalar
    pos: int


@dataclass(frozen=True)
class _Arith:
    op: str
    left: _Node
    right: _Node
    pos: int


@dataclass(frozen=True)
class _Sign:
    op: str  # "-" or "+"
    operand: _Node
    pos: int


@dataclass(frozen=True)
class _Compare:
    op: str
    left: _Node
    right: _Node
    pos: int


@dataclass(frozen=True)
class _Member:
    operand: _Node
    items: tuple[Scalar, ...]
    negate: bool
    pos: int


@dataclass(frozen=True)
class _Logic:
    op: str  # "and" or "or"
    operands: tuple[_Node, ...]
    pos: int


@dataclass(frozen=True)
class _Not:
    operand: _Node
    pos: int


_Node = Union[_Column, _Literal, _Arith, _Sign, _Compare, _Member, _Logic, _Not]


def _kind_of_value(value: Scalar) -> str:
    if isinstance(value, bool):
        return "bool"
    return "text" if isinstance(value, str) else "number"


def _static_kind(node: _Node) -> str:
    """What a node yields, as far as the text alone tells: 'column' means "ask the data"."""
    if isinstance(node, _Column):
        return "column"
    if isinstance(node, _Literal):
        return _kind_of_value(node.value)
    if isinstance(node, (_Arith, _Sign)):
        return "number"
    return "condition"


def _describe_static(node: _Node) -> str:
    if isinstance(node, _Column):
        return f"column {node.name!r}"
    if isinstance(node, _Literal):
        kind = _kind_of_value(node.value)
        if kind == "text":
            return f"the text {node.value!r}"
        return f"the value {node.value!r}" if kind == "bool" else f"the number {node.value!r}"
    if isinstance(node, (_Arith, _Sign)):
        return "an arithmetic result"
    return "a condition"


_REFUSED: dict[type, str] = {
    ast.Call: "function calls are not allowed in a group expression",
    ast.Attribute: (
        "attribute access and method calls (the '.' in 'x.y' or 'x.y()') are not allowed in a group expression"
    ),
    ast.Subscript: "subscripts (x[...]) are not allowed in a group expression",
    ast.Slice: "subscripts and slices (x[a:b]) are not allowed in a group expression",
    ast.Lambda: "lambda functions are not allowed in a group expression",
    ast.ListComp: "list comprehensions are not allowed in a group expression",
    ast.SetComp: "set comprehensions are not allowed in a group expression",
    ast.DictComp: "dict comprehensions are not allowed in a group expression",
    ast.GeneratorExp: "generator expressions (comprehensions) are not allowed in a group expression",
    ast.NamedExpr: "assignment expressions (:=) are not allowed in a group expression",
    ast.JoinedStr: "f-strings are not allowed in a group expression",
    ast.FormattedValue: "f-strings are not allowed in a group expression",
    ast.Starred: "starred expressions (*x) are not allowed in a group expression",
    ast.IfExp: "conditional expressions (x if c else y) are not allowed in a group expression",
    ast.Dict: "dict literals are not allowed in a group expression",
    ast.Await: "await is not allowed in a group expression",
    ast.Yield: "yield is not allowed in a group expression",
    ast.YieldFrom: "yield is not allowed in a group expression",
}

_ARITH = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%"}
_OTHER_BINOPS = {ast.Pow: "**", ast.MatMult: "@", ast.LShift: "<<", ast.RShift: ">>", ast.BitXor: "^"}
_COMPARE = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_SYMBOLS = {"and": "&", "or": "|"}
_INT64 = (-(2**63), 2**63 - 1)


class _Builder:
    """Turns a whitelisted Python syntax tree into the private node classes above."""

    def __init__(self, text: str, source: _Source) -> None:
        self.text = text
        self.source = source
        self.uses: dict[str, int] = {}  # column -> first position, in first-use order

    def fail(self, problem: str, fix: str, node: ast.AST | None = None) -> GroupExpressionError:
        return _error(problem, fix=fix, text=self.text, position=None if node is None else self.pos(node))

    def pos(self, node: ast.AST) -> int:
        lineno = getattr(node, "lineno", None)
        if lineno is None:
            return 0
        return self.source.from_ast(lineno, node.col_offset)  # type: ignore[attr-defined]

    # -- entry points -------------------------------------------------------------------

    def condition(self, node: ast.expr, role: str) -> _Node:
        built = self.value(node)
        kind = _static_kind(built)
        if kind not in ("condition", "column", "bool"):
            raise self.fail(
                f"{role} must be a condition, not {_describe_static(built)}",
                f"write a comparison such as {_EXAMPLE}",
                node,
            )
        return built

    def value(self, node: ast.expr) -> _Node:
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.Constant):
            return _Literal(self.constant(node), self.pos(node))
        if isinstance(node, ast.BoolOp):
            word = "and" if isinstance(node.op, ast.And) else "or"
            role = f"each side of '{word}' ('{_SYMBOLS[word]}')"
            operands = tuple(self.condition(v, role) for v in node.values)
            return _Logic(word, operands, self.pos(node))
        if isinstance(node, ast.UnaryOp):
            return self.unary(node)
        if isinstance(node, ast.BinOp):
            return self.binary(node)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            raise self.fail(
                "a list, tuple or set may only follow 'in' or 'not in'",
                'write e.g. accent in ["en", "hi"]',
                node,
            )
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            # x.str.len() is a method call; name the '.' as the thing that is not allowed.
            node = node.func
        default = f"{type(node).__name__} expressions are not allowed in a group expression"
        message = _REFUSED.get(type(node), default)
        raise self.fail(message, _GRAMMAR, node)

    # -- leaves -------------------------------------------------------------------------

    def name(self, node: ast.Name) -> _Column:
        real = self.source.quoted.get(node.id, node.id)
        position = self.pos(node)
        if real.startswith("__"):
            raise self.fail(
                f"names starting with '__' are not allowed in a group expression (got {real!r})",
                "refer only to data columns; rename a column whose name starts with '__'",
                node,
            )
        self.uses.setdefault(real, position)
        return _Column(real, position)

    def constant(self, node: ast.Constant) -> Scalar:
        value = node.value
        if isinstance(value, (bool, str, float)):
            return value
        if isinstance(value, int):
            if _INT64[0] <= value <= _INT64[1]:
                return value
            try:
                # Out of int64 range: numpy would refuse it, a float compares fine.
                return float(value)
            except OverflowError:
                raise self.fail("the number is too large", "use a number below 1e308", node) from None
        if value is None:
            raise self.fail(
                "None is not allowed in a group expression",
                "missing values never equal anything; to select rows where x is missing write x != x",
                node,
            )
        kinds = {bytes: "bytes literals", complex: "complex numbers"}
        kind = kinds.get(type(value), "Ellipsis literals (...)")
        raise self.fail(f"{kind} are not allowed in a group expression", _GRAMMAR, node)

    # -- operators ----------------------------------------------------------------------

    def unary(self, node: ast.UnaryOp) -> _Node:
        if isinstance(node.op, (ast.Not, ast.Invert)):
            word = "not" if isinstance(node.op, ast.Not) else "~"
            return _Not(self.condition(node.operand, f"the operand of '{word}'"), self.pos(node))
        sign = "-" if isinstance(node.op, ast.USub) else "+"
        operand = self.value(node.operand)
        kind = _static_kind(operand)
        if isinstance(operand, _Literal) and kind == "number":
            value = operand.value
            return _Literal(-value if sign == "-" else value, self.pos(node))
        if kind not in ("number", "column"):
            raise self.fail(
                f"unary '{sign}' applies to numbers, not {_describe_static(operand)}",
                "use the sign only on numbers or numeric columns",
                node,
            )
        return _Sign(sign, operand, self.pos(node))

    def binary(self, node: ast.BinOp) -> _Node:
        op_type = type(node.op)
        if op_type in (ast.BitAnd, ast.BitOr):  # only reachable via placeholders; kept for safety
            word = "and" if op_type is ast.BitAnd else "or"
            role = f"each side of '{word}' ('{_SYMBOLS[word]}')"
            operands = (self.condition(node.left, role), self.condition(node.right, role))
            return _Logic(word, operands, self.pos(node))
        if op_type in _OTHER_BINOPS:
            symbol = _OTHER_BINOPS[op_type]
            why = " (it can make numbers too large to compute)" if symbol == "**" else ""
            raise self.fail(
                f"the operator '{symbol}' is not allowed in a group expression{why}",
                "use only + - * / // % in arithmetic, e.g. snr_db * 2 > 10",
                node,
            )
        symbol = _ARITH[op_type]  # every ast.operator is covered above or here
        left, right = self.value(node.left), self.value(node.right)
        for side in (left, right):
            if _static_kind(side) not in ("number", "column"):
                raise self.fail(
                    f"arithmetic ('{symbol}') works on numbers only, not on {_describe_static(side)}",
                    "use + - * / // % only between numbers and numeric columns",
                    node,
                )
        return _Arith(symbol, left, right, self.pos(node))

    def compare(self, node: ast.Compare) -> _Node:
        parts: list[_Node] = []
        left = self.value(node.left)
        operands = list(zip(node.ops, node.comparators))
        for index, (op, right_node) in enumerate(operands):
            if isinstance(op, (ast.In, ast.NotIn)):
                items = self.items(right_node, "not in" if isinstance(op, ast.NotIn) else "in")
                self.check_member(left, items, right_node)
                parts.append(_Member(left, items, isinstance(op, ast.NotIn), self.pos(node)))
                if index + 1 < len(operands):
                    raise self.fail(
                        "a list after 'in' cannot be compared further",
                        "join the conditions with 'and' instead of chaining them",
                        right_node,
                    )
                break
            if isinstance(op, (ast.Is, ast.IsNot)):
                raise self.fail(
                    "'is' and 'is not' are not allowed in a group expression",
                    "use == or != instead",
                    node,
                )
            symbol = _COMPARE[type(op)]
            right = self.value(right_node)
            self.check_pair(symbol, left, right, node)
            parts.append(_Compare(symbol, left, right, self.pos(node)))
            left = right
        if len(parts) == 1:
            return parts[0]
        return _Logic("and", tuple(parts), self.pos(node))

    def items(self, node: ast.expr, word: str) -> tuple[Scalar, ...]:
        if not isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            raise self.fail(
                f"the right side of '{word}' must be a list, tuple or set literal of constants",
                f'write e.g. accent {word} ["en", "hi"]',
                node,
            )
        if len(node.elts) > _MAX_LIST_ITEMS:
            raise self.fail(
                f"the list after '{word}' has {len(node.elts):,} items; the limit is {_MAX_LIST_ITEMS:,}",
                "split the group or shorten the list",
                node,
            )
        values: list[Scalar] = []
        for element in node.elts:
            if not _is_item(element):
                message = _REFUSED.get(type(element), f"the list after '{word}' may only hold constants")
                raise self.fail(message, f'write e.g. accent {word} ["en", "hi"]', element)
            built = self.value(element)
            assert isinstance(built, _Literal)  # _is_item guarantees a (signed) constant
            values.append(built.value)
        kinds = {_kind_of_value(v) for v in values}
        if len(kinds) > 1:
            raise self.fail(
                f"the list after '{word}' mixes {' and '.join(sorted(kinds))} values",
                "use a list of only numbers or only quoted text",
                node,
            )
        return tuple(values)

    def check_member(self, left: _Node, items: tuple[Scalar, ...], node: ast.expr) -> None:
        kind = _static_kind(left)
        if kind == "column" or not items:
            return
        kind = "bool" if kind == "condition" else kind
        item_kind = _kind_of_value(items[0])
        if kind != item_kind:
            raise self.fail(
                f"{_describe_static(left)} cannot be looked up in a list of {item_kind} values",
                "compare numbers with numbers and text with quoted text",
                node,
            )

    def check_pair(self, op: str, left: _Node, right: _Node, node: ast.expr) -> None:
        kinds = [_static_kind(left), _static_kind(right)]
        if "column" in kinds:
            return  # the data decides; checked again at evaluation
        kinds = ["bool" if k == "condition" else k for k in kinds]
        if kinds[0] != kinds[1]:
            raise self.fail(
                f"{_describe_static(left)} cannot be compared with {_describe_static(right)}",
                "compare numbers with numbers and text with quoted text",
                node,
            )
        if kinds[0] == "bool" and op not in ("==", "!="):
            raise self.fail(
                f"true/false values cannot be ordered with '{op}'",
                "compare conditions only with == or !=",
                node,
            )


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Parsed:
    root: _Node
    uses: tuple[tuple[str, int], ...]


def _parse(text: str) -> _Parsed:
    if not isinstance(text, str):
        raise _error(
            f"a group expression must be text, not {type(text).__name__}",
            fix=f"pass a string such as {_EXAMPLE}",
            text=repr(text),
        )
    # Checked before anything walks the text, so a huge input is refused at once.
    if len(text) > _MAX_LENGTH:
        raise _error(
            f"the expression is {len(text):,} characters long; the limit is {_MAX_LENGTH:,} characters",
            fix="shorten it or split it into several groups",
            text=text,
        )
    if not text.strip():
        raise _error("the group expression is empty", fix=f"write a condition such as {_EXAMPLE}", text=text)
    source = _Scanner(text).scan()
    tree = _syntax_tree(text, source)
    _check_size(tree, text, source)
    builder = _Builder(text, source)
    root = builder.condition(tree.body, "the expression")
    return _Parsed(root, tuple(builder.uses.items()))


@dataclass(frozen=True)
class GroupExpression:
    """A checked group expression, ready to select rows of any table.

    Build one with :func:`parse_group` (or directly from the text). Construction parses
    and checks the text; nothing in it is ever executed as Python.

    Attributes
    ----------
    text : str
        The expression as given.
    columns : tuple of str
        Names of the columns the expression uses, in order of first use.

    Examples
    --------
    >>> expr = GroupExpression("0 < snr_db <= 10 and not (noise == 'clean')")
    >>> expr.columns
    ('snr_db', 'noise')
    >>> str(expr)
    "0 < snr_db <= 10 and not (noise == 'clean')"
    """

    text: str
    columns: tuple[str, ...] = field(init=False)
    _parsed: _Parsed = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parsed = _parse(self.text)
        object.__setattr__(self, "_parsed", parsed)
        object.__setattr__(self, "columns", tuple(name for name, _ in parsed.uses))

    def __str__(self) -> str:
        return self.text

    def evaluate(self, data: object) -> Mask:
        """Return the boolean mask of the rows that belong to the group.

        Parameters
        ----------
        data : pandas.DataFrame, polars.DataFrame or mapping of str to array-like
            The table. Only the columns the expression uses are read.

        Returns
        -------
        numpy.ndarray
            A bool array with one entry per row. Rows with a missing value count as
            outside the group for every comparison except ``!=`` and ``not in`` (pandas
            semantics); ``not`` / ``~`` then turn such a False into True.

        Raises
        ------
        GroupExpressionError
            A column is missing, or a column's values do not fit how the expression uses
            them (text in arithmetic, text compared with a number, and so on).
        InputError
            ``data`` is not a table, or the columns of a mapping differ in length.

        Examples
        --------
        >>> import numpy as np
        >>> data = {"age": [30, 65, np.nan], "sex": ["Female", "Female", None]}
        >>> parse_group('age >= 60 & sex == "Female"').evaluate(data).tolist()
        [False, True, False]
        >>> parse_group('not (age >= 60)').evaluate(data).tolist()
        [True, False, True]
        """
        table = _Table.wrap(data, self.text)
        operands = {name: table.column(name, position) for name, position in self._parsed.uses}
        evaluator = _Evaluator(self.text, operands, table.length())
        with np.errstate(all="ignore"):  # overflow to inf and 0/0 to NaN, as in pandas
            result = evaluator.condition(self._parsed.root)
        # Always a fresh array: a bare bool column would otherwise be a view of the data.
        return np.array(result, dtype=np.bool_, copy=True)


def parse_group(text: str, *, columns: Iterable[str] | None = None) -> GroupExpression:
    """Parse and check a group expression written in the ``DataFrame.query`` syntax.

    Parameters
    ----------
    text : str
        The expression, e.g. ``'age >= 60 and sex == "Female"'``. Quote column names that
        are not identifiers with backticks: ``'`snr db` < 5'``.
    columns : iterable of str, optional
        The known column names. When given, a name outside them is an error.

    Returns
    -------
    GroupExpression
        The checked expression.

    Raises
    ------
    GroupExpressionError
        The text is empty, too long, not valid syntax, uses a construct outside the
        allowed grammar (calls, attributes, subscripts, lambdas, ``**`` ...), mixes
        numbers and text, or names an unknown column. ``position`` holds the 0-based
        character offset of the fault when it is known.

    Examples
    --------
    >>> expr = parse_group('accent in ["en-029", "hi"] and `snr db` < 10')
    >>> expr.columns
    ('accent', 'snr db')
    >>> try:
    ...     parse_group("agee > 60", columns=["age", "sex"])
    ... except GroupExpressionError as err:
    ...     print(err.position, err.fix)
    0 did you mean 'age'? The known columns are: 'age', 'sex'
    """
    expression = _cached_expression(text)
    if columns is not None:
        if isinstance(columns, str):
            raise TypeError("columns must be an iterable of column names, not a single string")
        known = {str(c) for c in columns}
        for name, position in expression._parsed.uses:
            if name not in known:
                raise _error(
                    f"column {name!r} is not one of the known columns",
                    fix=_column_fix(name, known),
                    text=text,
                    position=position,
                )
    return expression


# Logged expressions are parsed again by every view of a program's history (the heat map
# reads every submission's group), so parse results are kept by their text. A
# GroupExpression is immutable, and a refusal is kept as its fields and raised afresh.
_CACHE_ENTRIES = 4096
_cache: OrderedDict[str, GroupExpression | tuple[str, str, str, int | None]] = OrderedDict()
_cache_lock = threading.Lock()


def _cached_expression(text: str) -> GroupExpression:
    if not isinstance(text, str):
        return GroupExpression(text)
    with _cache_lock:
        hit = _cache.get(text)
        if hit is not None:
            _cache.move_to_end(text)
    if hit is None:
        try:
            hit = GroupExpression(text)
        except GroupExpressionError as exc:
            hit = (exc.problem, exc.fix, exc.expression, exc.position)
        with _cache_lock:
            _cache[text] = hit
            while len(_cache) > _CACHE_ENTRIES:
                _cache.popitem(last=False)
    if isinstance(hit, GroupExpression):
        return hit
    problem, fix, expression, _ = hit
    error = GroupExpressionError(problem, fix=fix, expression=expression)
    error.position = hit[3]
    raise error


def _column_fix(name: str, known: Iterable[str]) -> str:
    ordered = sorted(known)
    shown = ", ".join(repr(c) for c in ordered[:_MAX_LISTED_COLUMNS])
    if len(ordered) > _MAX_LISTED_COLUMNS:
        shown += f" and {len(ordered) - _MAX_LISTED_COLUMNS} more"
    if not ordered:
        return "the data has no columns"
    close = difflib.get_close_matches(name, ordered, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{hint}The known columns are: {shown}"


# ---------------------------------------------------------------------------
# Evaluation: reading columns
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scalar:
    value: Scalar
    kind: str
    label: str


@dataclass(frozen=True)
class _Dense:
    kind: str  # "number", "bool", "text" or "empty" (all missing)
    # ndarray for numbers and bools, pandas Series for text (its comparisons are
    # vectorised by pandas / pyarrow), None for "empty".
    values: Any
    missing: Mask | None
    label: str
    name: str | None = None  # the column's name, when the values come from one


@dataclass(frozen=True)
class _Coded:
    """A categorical column: work on the few categories, then index with the codes."""

    kind: str
    codes: npt.NDArray[np.integer[Any]]  # -1 marks a missing value
    categories: _Dense
    ordered: bool
    label: str
    name: str | None = None


_Operand = Union[_Scalar, _Dense, _Coded]


class _Table:
    """Uniform column access for pandas, polars and mappings of arrays."""

    def __init__(
        self, text: str, names: list[str], fetch: Callable[[str], pd.Series], rows: int | None
    ) -> None:
        self.text = text
        self.names = names
        self.fetch = fetch
        self.rows = rows

    @classmethod
    def wrap(cls, data: object, text: str) -> _Table:
        if isinstance(data, pd.DataFrame):
            names = [str(c) for c in data.columns]
            return cls(text, names, lambda name: _frame_column(data, name), len(data))
        module = type(data).__module__.split(".")[0]
        if module == "polars":
            if not hasattr(data, "get_column"):
                raise InputError(
                    f"cannot evaluate a group expression on a {type(data).__name__}",
                    fix="pass a polars DataFrame (call .collect() on a LazyFrame)",
                )
            return cls(
                text,
                list(data.columns),  # type: ignore[attr-defined]
                lambda name: data.get_column(name).to_pandas(),  # type: ignore[attr-defined]
                data.height,  # type: ignore[attr-defined]
            )
        if isinstance(data, Mapping):
            return cls(text, [str(c) for c in data], lambda name: _mapping_column(data, name), None)
        raise InputError(
            f"cannot evaluate a group expression on a {type(data).__name__}",
            fix="pass a pandas DataFrame, a polars DataFrame or a dict of column arrays",
        )

    def column(self, name: str, position: int) -> _Dense | _Coded:
        if name not in self.names:
            raise _error(
                f"column {name!r} is not in the data",
                fix=_column_fix(name, self.names),
                text=self.text,
                position=position,
            )
        series = self.fetch(name)
        if self.rows is None:
            self.rows = len(series)
        elif len(series) != self.rows:
            raise InputError(
                f"column {name!r} has {len(series)} values but other columns have {self.rows}",
                fix="give every column the same number of values",
            )
        return _normalize(series, name, self.text)

    def length(self) -> int:
        if self.rows is None:  # a mapping and an expression without columns
            self.rows = len(self.fetch(self.names[0])) if self.names else 0
        return self.rows


def _frame_column(frame: pd.DataFrame, name: str) -> pd.Series:
    matches = [c for c in frame.columns if str(c) == name]
    if len(matches) > 1:
        raise InputError(
            f"the data has {len(matches)} columns named {name!r}", fix="give every column a distinct name"
        )
    return frame[matches[0]]


def _mapping_column(data: Mapping[Any, Any], name: str) -> pd.Series:
    key = name if name in data else next(k for k in data if str(k) == name)
    value = data[key]
    if isinstance(value, pd.Series):
        return value
    if type(value).__module__.split(".")[0] == "polars" and hasattr(value, "to_pandas"):
        return value.to_pandas()
    if np.ndim(value) != 1:
        raise InputError(
            f"column {name!r} is not one-dimensional", fix="pass a list or 1-D array for each column"
        )
    if isinstance(value, np.ndarray):
        return pd.Series(value, copy=False)
    return pd.Series(value)


def _missing_mask(series: pd.Series) -> Mask | None:
    mask = series.isna().to_numpy(dtype=bool)
    return mask if mask.any() else None


def _normalize(series: pd.Series, name: str, text: str) -> _Dense | _Coded:
    label = f"column {name!r}"
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        categories = _normalize(pd.Series(dtype.categories), name, text)
        assert isinstance(categories, _Dense)
        codes = np.asarray(series.cat.codes)
        return _Coded(categories.kind, codes, categories, bool(dtype.ordered), label, name)
    if pdt.is_bool_dtype(dtype):
        values = series.to_numpy(dtype=bool, na_value=False)
        return _Dense("bool", values, _missing_mask(series), label, name)
    if pdt.is_numeric_dtype(dtype) and not pdt.is_complex_dtype(dtype):
        if isinstance(dtype, np.dtype):
            return _Dense("number", series.to_numpy(), None, label, name)  # NaN is missing by IEEE rules
        target = np.dtype(getattr(dtype, "numpy_dtype", np.float64))
        fill = np.nan if target.kind == "f" else 0
        values = series.to_numpy(dtype=target, na_value=fill)
        return _Dense("number", values, _missing_mask(series), label, name)
    if dtype == object:
        return _normalize_objects(series, name, text, label)
    if pdt.is_string_dtype(dtype):
        return _Dense("text", series, _missing_mask(series), label, name)
    raise _error(
        f"column {name!r} has type {dtype}, which group expressions cannot compare",
        fix=f"convert {name!r} to numbers or text before auditing",
        text=text,
    )


def _normalize_objects(series: pd.Series, name: str, text: str, label: str) -> _Dense:
    inferred = pdt.infer_dtype(series, skipna=True)
    missing = _missing_mask(series)
    if inferred == "string":
        return _Dense("text", series, missing, label, name)
    if inferred == "empty":
        return _Dense("empty", None, np.ones(len(series), dtype=bool), label, name)
    if inferred == "boolean":
        return _Dense("bool", series.to_numpy(dtype=bool, na_value=False), missing, label, name)
    if inferred in ("integer", "floating", "mixed-integer-float", "decimal"):
        try:
            values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        except (OverflowError, TypeError, ValueError):
            pass
        else:
            return _Dense("number", values, missing, label, name)
    raise _error(
        f"column {name!r} holds a mix of kinds of values ({inferred})",
        fix=f"convert {name!r} to all numbers or all text before auditing",
        text=text,
    )


# ---------------------------------------------------------------------------
# Evaluation: operators
# ---------------------------------------------------------------------------

_CMP_FUNCS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_FLIPPED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_ARITH_FUNCS: dict[str, np.ufunc] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.true_divide,
    "//": np.floor_divide,
    "%": np.remainder,
}
_KIND_WORDS = {
    "number": "numbers",
    "text": "text",
    "bool": "true/false values",
    "empty": "only missing values",
}


def _describe(operand: _Operand) -> str:
    if isinstance(operand, _Scalar):
        return operand.label
    return f"{operand.label} (which holds {_KIND_WORDS[operand.kind]})"


def _settle(raw: Any, missing: Mask | None, missing_result: bool) -> Any:
    """Force the answer on missing rows: True for != / not in, False otherwise."""
    if missing is None:
        return raw
    return (raw | missing) if missing_result else (raw & ~missing)


def _union(a: Mask | None, b: Mask | None) -> Mask | None:
    if a is None:
        return b
    return a if b is None else a | b


def _decode(operand: _Coded) -> _Dense:
    missing = operand.codes < 0
    categories = operand.categories
    if categories.kind == "empty" or len(categories.values) == 0:
        return _Dense("empty", None, np.ones(len(operand.codes), dtype=bool), operand.label, operand.name)
    if categories.kind == "text":
        values = np.asarray(categories.values, dtype=object)[operand.codes]
        return _Dense("text", pd.Series(values, dtype=object), missing, operand.label, operand.name)
    values = np.asarray(categories.values)[operand.codes]
    return _Dense(categories.kind, values, missing, operand.label, operand.name)


def _text_objects(operand: _Dense) -> npt.NDArray[np.object_]:
    values = np.asarray(operand.values, dtype=object)
    if operand.missing is not None:
        values = values.copy()
        values[operand.missing] = ""  # settled afterwards; "" just avoids None < str
    return values


def _bool_result(result: Any) -> Any:
    if isinstance(result, pd.Series):
        return result.to_numpy(dtype=bool, na_value=False)
    return result


class _Evaluator:
    def __init__(self, text: str, columns: Mapping[str, _Dense | _Coded], rows: int) -> None:
        self.text = text
        self.columns = columns
        self.rows = rows

    def fail(self, problem: str, fix: str, pos: int) -> GroupExpressionError:
        return _error(problem, fix=fix, text=self.text, position=pos)

    # -- dispatch ---------------------------------------------------------------------

    def condition(self, node: _Node) -> Mask:
        operand = self.operand(node)
        if isinstance(operand, _Scalar):
            if operand.kind != "bool":
                raise self.fail(
                    f"{operand.label} is not a condition", f"write a comparison such as {_EXAMPLE}", node.pos
                )
            return np.full(self.rows, bool(operand.value))
        if isinstance(operand, _Coded):
            if operand.kind in ("bool", "empty"):
                lookup = self._lookup(np.asarray(self._truth(operand.categories, node)), False)
                return lookup[operand.codes]
            operand = _decode(operand)
        return self._truth(operand, node)

    def _truth(self, operand: _Dense, node: _Node) -> Mask:
        if operand.kind == "empty":
            return np.zeros(len(operand.missing) if operand.missing is not None else self.rows, dtype=bool)
        if operand.kind != "bool":
            example = f"{operand.name} > 0" if operand.kind == "number" else f'{operand.name} == "value"'
            raise self.fail(
                f"{operand.label} holds {_KIND_WORDS[operand.kind]}, not true/false values, "
                "so it cannot be a condition by itself",
                f"compare it with a value, e.g. {example}",
                node.pos,
            )
        return _settle(operand.values, operand.missing, False)

    def operand(self, node: _Node) -> _Operand:
        if isinstance(node, _Column):
            return self.columns[node.name]
        if isinstance(node, _Literal):
            kind = _kind_of_value(node.value)
            return _Scalar(node.value, kind, _describe_static(node))
        if isinstance(node, _Arith):
            return self.arith(node)
        if isinstance(node, _Sign):
            values = self.numbers(self.operand(node.operand), node.op, node.pos)
            result = np.negative(values) if node.op == "-" else values
            return self._number_result(result)
        if isinstance(node, _Compare):
            return self._mask_operand(self.compare(node))
        if isinstance(node, _Member):
            return self._mask_operand(self.member(node))
        if isinstance(node, _Not):
            return self._mask_operand(~self.condition(node.operand))
        if isinstance(node, _Logic):
            combine = np.logical_and if node.op == "and" else np.logical_or
            masks = [self.condition(part) for part in node.operands]
            result = masks[0]
            for mask in masks[1:]:
                result = combine(result, mask)
            return self._mask_operand(result)
        raise AssertionError(f"unknown node {node!r}")  # pragma: no cover

    def _mask_operand(self, mask: Any) -> _Operand:
        if np.ndim(mask) == 0:
            return _Scalar(bool(mask), "bool", "a condition")
        return _Dense("bool", np.asarray(mask, dtype=bool), None, "a condition")

    def _number_result(self, result: Any) -> _Operand:
        if np.ndim(result) == 0:
            return _Scalar(float(result), "number", "an arithmetic result")
        return _Dense("number", result, None, "an arithmetic result")

    # -- arithmetic -------------------------------------------------------------------

    def numbers(self, operand: _Operand, symbol: str, pos: int) -> Any:
        """Float64 values of a numeric operand with missing values as NaN."""
        if isinstance(operand, _Coded):
            operand = _decode(operand)
        if isinstance(operand, _Scalar):
            if operand.kind == "number":
                return np.float64(operand.value)
        elif operand.kind == "empty":
            return np.full(self.rows, np.nan)
        elif operand.kind == "number":
            values = np.asarray(operand.values, dtype=np.float64)
            if operand.missing is not None:
                values = np.where(operand.missing, np.nan, values)
            return values
        raise self.fail(
            f"arithmetic ('{symbol}') works on numbers only, but {_describe(operand)} is not numeric",
            "use arithmetic only on numeric columns; compare text columns with quoted values instead",
            pos,
        )

    def arith(self, node: _Arith) -> _Operand:
        left = self.numbers(self.operand(node.left), node.op, node.pos)
        right = self.numbers(self.operand(node.right), node.op, node.pos)
        # Float64 throughout: no integer overflow errors, and division by zero gives
        # inf/NaN as in pandas rather than an exception.
        return self._number_result(_ARITH_FUNCS[node.op](left, right))

    # -- comparisons ------------------------------------------------------------------

    def check_kinds(self, op: str, left: _Operand, right: _Operand, pos: int) -> None:
        if "empty" in (left.kind, right.kind):
            return
        if left.kind != right.kind:
            column = left if not isinstance(left, _Scalar) else right
            other = right if column is left else left
            raise self.fail(
                f"{_describe(column)} cannot be compared with {_describe(other)}",
                _mismatch_fix(column, other),
                pos,
            )
        if left.kind == "bool" and op not in ("==", "!="):
            raise self.fail(
                f"true/false values cannot be ordered with '{op}'", "compare them only with == or !=", pos
            )

    def compare(self, node: _Compare) -> Any:
        left, right = self.operand(node.left), self.operand(node.right)
        op = node.op
        self.check_kinds(op, left, right, node.pos)
        if isinstance(left, _Scalar) and not isinstance(right, _Scalar):
            left, right, op = right, left, _FLIPPED[op]
        if isinstance(left, _Scalar) and isinstance(right, _Scalar):
            return _CMP_FUNCS[op](left.value, right.value)
        if isinstance(left, _Coded) and isinstance(right, _Scalar):
            return self._compare_coded(op, left, right.value, node.pos)
        left = _decode(left) if isinstance(left, _Coded) else left
        right = _decode(right) if isinstance(right, _Coded) else right
        assert isinstance(left, _Dense)
        if left.kind == "empty" or (isinstance(right, _Dense) and right.kind == "empty"):
            return np.full(self.rows, op == "!=")
        if isinstance(right, _Scalar):
            raw = _bool_result(_CMP_FUNCS[op](left.values, right.value))
            return _settle(raw, left.missing, op == "!=")
        if left.kind == "text":
            raw = _CMP_FUNCS[op](_text_objects(left), _text_objects(right))
        else:
            raw = _CMP_FUNCS[op](left.values, right.values)
        return _settle(np.asarray(raw, dtype=bool), _union(left.missing, right.missing), op == "!=")

    def _compare_coded(self, op: str, column: _Coded, value: Scalar, pos: int) -> Mask:
        categories = column.categories
        if column.kind == "empty":
            return np.full(self.rows, op == "!=")
        if column.ordered and op not in ("==", "!="):
            # Ordered categoricals order by category position, as pandas does.
            listed = list(categories.values)
            if value not in listed:
                shown = ", ".join(repr(c) for c in listed[:_MAX_LISTED_COLUMNS])
                raise self.fail(
                    f"{value!r} is not a category of the ordered {column.label}",
                    f"compare with one of its categories: {shown}",
                    pos,
                )
            raw = _CMP_FUNCS[op](np.arange(len(listed)), listed.index(value))
        else:
            raw = _bool_result(_CMP_FUNCS[op](categories.values, value))
        return self._lookup(np.asarray(raw, dtype=bool), op == "!=")[column.codes]

    @staticmethod
    def _lookup(per_category: Mask, missing_result: bool) -> Mask:
        # One extra slot at the end, so that code -1 (missing) picks missing_result.
        return np.append(per_category, missing_result)

    def member(self, node: _Member) -> Any:
        operand = self.operand(node.operand)
        items = list(node.items)
        if items:
            item_kind = _kind_of_value(items[0])
            if operand.kind not in (item_kind, "empty"):
                raise self.fail(
                    f"{_describe(operand)} cannot be looked up in a list of {_KIND_WORDS[item_kind]}",
                    _mismatch_fix(operand, _Scalar(items[0], item_kind, "")),
                    node.pos,
                )
        if isinstance(operand, _Scalar):
            return (operand.value in items) != node.negate
        if isinstance(operand, _Coded):
            if operand.kind == "empty":
                return np.full(self.rows, node.negate)
            found = self._isin(operand.categories, items)
            return self._lookup(found != node.negate, node.negate)[operand.codes]
        if operand.kind == "empty":
            return np.full(self.rows, node.negate)
        found = self._isin(operand, items)
        if node.negate:
            found = ~found
        return _settle(found, operand.missing, node.negate)

    @staticmethod
    def _isin(operand: _Dense, items: list[Scalar]) -> Mask:
        if not items:
            return np.zeros(len(operand.values), dtype=bool)
        if operand.kind == "text":
            return operand.values.isin(items).to_numpy(dtype=bool, na_value=False)
        return np.isin(operand.values, items)


def _mismatch_fix(column: _Operand, other: _Operand) -> str:
    name = getattr(column, "name", None) or "the column"
    if not isinstance(other, _Scalar):
        return "compare columns of the same kind: numbers with numbers, text with text"
    if column.kind == "text" and other.kind == "number":
        return f'quote the value to compare text, e.g. {name} == "{other.value}"'
    if column.kind == "number" and other.kind == "text":
        return f"compare {name} with a number without quotes, e.g. {name} < 10"
    if "bool" in (column.kind, other.kind):
        return f"compare true/false columns with True or False, e.g. {name} == True"
    return "compare numbers with numbers and text with quoted text"
