"""Tests for groupwise._expr: safe group expressions in the DataFrame.query syntax.

pandas' own query/eval appear here only as the oracle for known-good expressions.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

import groupwise._expr as expr_module
from groupwise._errors import GroupExpressionError, InputError
from groupwise._expr import GroupExpression, parse_group

SETTINGS = settings(
    max_examples=250, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def make_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [30, 65, 70, 18, 61, 45, 90, 60],
            "snr_db": [5.0, np.nan, 12.0, 0.5, 10.0, -3.0, np.nan, 7.5],
            "sex": pd.Series(["Female", "Male", None, "Female", "Male", "Female", "Male", "Other"]),
            "accent": pd.Categorical(["en", "hi", None, "en-029", "hi", "en", None, "fr"]),
            "noise": pd.Series(
                ["clean", "babble", "clean", None, "street", "a|b", "clean", "babble"], dtype=object
            ),
            "flag": [True, False, True, False, True, True, False, False],
            "snr db": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
            "size": pd.Categorical(
                ["small", "large", "medium", None, "small", "large", "medium", "small"],
                categories=["small", "medium", "large"],
                ordered=True,
            ),
        }
    )


@pytest.fixture
def frame() -> pd.DataFrame:
    return make_frame()


def pandas_mask(df: pd.DataFrame, text: str) -> np.ndarray:
    """The rows DataFrame.query selects, as a mask (tests only: the oracle)."""
    selected = df.query(text, engine="python")
    return np.asarray(df.index.isin(selected.index))


def refused(text: str, **kwargs: Any) -> GroupExpressionError:
    with pytest.raises(GroupExpressionError) as info:
        parse_group(text, **kwargs)
    return info.value


# Expressions pandas and groupwise must agree on. The flag says whether the expression
# relies on the ordered categorical "size" (which a dict of lists or polars cannot keep).
PARITY = [
    ('age >= 60 and sex == "Female"', False),
    ('accent in ["en-029", "hi"] and snr_db < 10', False),
    ('not (noise == "clean")', False),
    ("0 < snr_db <= 10", False),
    ("`snr db` < 3", False),
    ('age > 60 & sex == "Male" | flag', False),
    ('age > 60 & (sex == "Male" | flag)', False),
    ("~(snr_db < 6)", False),
    ("snr_db != 5", False),
    ("snr_db != snr_db", False),
    ('accent != "hi"', False),
    ('accent not in ["hi", "fr"]', False),
    ('accent in ("en",)', False),
    ('accent == "nope"', False),
    ("age * 2 + 1 > 100", False),
    ("age % 7 == 2", False),
    ("age // 7 >= 5", False),
    ("age / 3 < snr_db", False),
    ("-age < -60", False),
    ("+snr_db > 1", False),
    ("snr_db * 2 - `snr db` > 0.5", False),
    ("flag", False),
    ("not flag", False),
    ("flag == True", False),
    ("flag != False and age < 50", False),
    ('sex < "G"', False),
    ('sex >= "Male"', False),
    ('noise > "b"', False),
    ('noise == "a|b"', False),
    ("age in [30, 61, 1000]", False),
    ("age not in [30, 61]", False),
    ("snr_db in [5, 0.5, 1e3]", False),
    ("snr_db not in [5.0]", False),
    ("age > 1e30 or age < -1e30", False),
    ("age > snr_db * 10", False),
    ('(age > 60) == (sex == "Male")', False),
    ("age >= 60 or snr_db < 1 or flag", False),
    ('not (not (accent == "en"))', False),
    ("1 < 2 and age > 40", False),
    ('size < "large"', True),
    ('size >= "medium" and flag', True),
    ('size == "small"', False),
]


@pytest.mark.parametrize(("text", "_ordered"), PARITY)
def test_matches_pandas_query(frame: pd.DataFrame, text: str, _ordered: bool) -> None:
    mask = parse_group(text, columns=frame.columns).evaluate(frame)
    assert mask.dtype == np.bool_
    assert mask.shape == (len(frame),)
    np.testing.assert_array_equal(mask, pandas_mask(frame, text))


@pytest.mark.parametrize(
    "text", ['age >= 60 and sex == "Female"', "0 < snr_db <= 10", "`snr db` * 2 > age / 10", "~flag"]
)
def test_matches_pandas_eval(frame: pd.DataFrame, text: str) -> None:
    expected = frame.eval(text, engine="python").to_numpy(dtype=bool)
    np.testing.assert_array_equal(parse_group(text).evaluate(frame), expected)


@pytest.mark.parametrize(("text", "ordered"), PARITY)
def test_polars_and_dicts_give_the_same_mask(frame: pd.DataFrame, text: str, ordered: bool) -> None:
    expr = parse_group(text)
    expected = expr.evaluate(frame)
    np.testing.assert_array_equal(expr.evaluate({c: frame[c].array for c in frame.columns}), expected)
    if ordered:
        return  # polars and plain lists do not keep the category order of "size"
    np.testing.assert_array_equal(expr.evaluate(pl.from_pandas(frame)), expected)
    np.testing.assert_array_equal(expr.evaluate({c: frame[c].tolist() for c in frame.columns}), expected)


def test_non_default_index_is_ignored(frame: pd.DataFrame) -> None:
    shuffled = frame.set_axis([f"r{i}" for i in range(len(frame))][::-1])
    expr = parse_group('accent == "en" or age > 60')
    np.testing.assert_array_equal(expr.evaluate(shuffled), expr.evaluate(frame))


# ---------------------------------------------------------------------------
# The API
# ---------------------------------------------------------------------------


def test_columns_in_first_use_order() -> None:
    expr = parse_group('snr_db > 1 and `snr db` < 3 and age < 3 or snr_db < 9 and sex == "F"')
    assert expr.columns == ("snr_db", "snr db", "age", "sex")
    assert parse_group("True").columns == ()


def test_group_expression_is_a_value(frame: pd.DataFrame) -> None:
    text = "age > 60 and flag"
    expr = parse_group(text)
    assert str(expr) == text
    assert expr.text == text
    assert expr == GroupExpression(text)
    assert hash(expr) == hash(GroupExpression(text))
    assert "columns=('age', 'flag')" in repr(expr)
    with pytest.raises(AttributeError):
        expr.text = "age > 1"  # type: ignore[misc]


def test_columns_must_not_be_a_single_string() -> None:
    with pytest.raises(TypeError):
        parse_group("age > 1", columns="age")


def test_result_is_a_fresh_array(frame: pd.DataFrame) -> None:
    mask = parse_group("flag").evaluate(frame)
    mask[:] = False
    assert frame["flag"].tolist()[0] is True


def test_expression_without_columns_uses_the_row_count(frame: pd.DataFrame) -> None:
    assert parse_group("1 < 2").evaluate(frame).tolist() == [True] * len(frame)
    assert parse_group("True and False").evaluate({"a": [1, 2, 3]}).tolist() == [False] * 3
    assert parse_group("True").evaluate({}).shape == (0,)


def test_whitespace_comments_and_newlines_are_fine(frame: pd.DataFrame) -> None:
    expected = pandas_mask(frame, "age > 60 and flag")
    for text in ["   age > 60 and flag", "\tage > 60 and flag  # old speakers", "(age > 60\r\n and flag)"]:
        np.testing.assert_array_equal(parse_group(text).evaluate(frame), expected)


def test_symbols_inside_quotes_and_backticks_are_not_operators() -> None:
    data = {"a&b": [1, 5], "c|d": ["x|y", "x"], "it's": [1, 2]}
    assert parse_group('`a&b` > 2 or `c|d` == "x|y"').evaluate(data).tolist() == [True, True]
    assert parse_group("`it's` == 2").evaluate(data).tolist() == [False, True]
    assert parse_group("`a&b` > 2").columns == ("a&b",)


def test_placeholder_names_cannot_be_spoofed() -> None:
    data = {"_gw_col_0": [1, 2], "a b": [5, 0]}
    expr = parse_group("_gw_col_0 > 1 or `a b` > 1")
    assert expr.columns == ("_gw_col_0", "a b")
    assert expr.evaluate(data).tolist() == [True, True]


def test_unicode_column_names() -> None:
    data = {"âge": [10, 70], "名前": ["x", "y"]}
    assert parse_group('âge > 60 or `名前` == "x"').evaluate(data).tolist() == [True, True]


# ---------------------------------------------------------------------------
# Missing values
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x == 1", [True, False, False]),
        ("x != 1", [False, True, True]),
        ("x < 5", [True, True, False]),
        ("not (x < 5)", [False, False, True]),
        ("~(x == 1)", [False, True, True]),
        ("x in [1, 2]", [True, True, False]),
        ("x not in [1]", [False, True, True]),
        ("x != x", [False, False, True]),
        ("x + 1 > 0", [True, True, False]),
    ],
)
@pytest.mark.parametrize(
    "column",
    [
        pd.Series([1.0, 2.0, np.nan]),
        pd.Series([1, 2, None], dtype="Int64"),
        pd.Series([1, 2, None], dtype="int64[pyarrow]"),
        pd.Series([1, 2, None], dtype=object),
        pd.Series(pd.Categorical([1, 2, None])),
    ],
    ids=["float", "Int64", "arrow", "object", "categorical"],
)
def test_missing_numbers(text: str, expected: list[bool], column: pd.Series) -> None:
    assert parse_group(text).evaluate({"x": column}).tolist() == expected


@pytest.mark.parametrize(
    "column",
    [
        pd.Series(["a", "b", None]),
        pd.Series(["a", "b", None], dtype="string[pyarrow]"),
        pd.Series(["a", "b", None], dtype="string[python]"),
        pd.Series(["a", "b", None], dtype=object),
        pd.Series(pd.Categorical(["a", "b", None])),
        pd.Series(["a", "b", None], dtype="large_string[pyarrow]"),
    ],
    ids=["str", "string-pyarrow", "string-python", "object", "categorical", "arrow"],
)
def test_missing_text(column: pd.Series) -> None:
    evaluate = lambda text: parse_group(text).evaluate({"s": column}).tolist()  # noqa: E731
    assert evaluate('s == "a"') == [True, False, False]
    assert evaluate('s != "a"') == [False, True, True]
    assert evaluate('s < "b"') == [True, False, False]
    assert evaluate('not (s < "b")') == [False, True, True]
    assert evaluate('s in ["a", "b"]') == [True, True, False]
    assert evaluate('s not in ["a"]') == [False, True, True]
    assert evaluate('"b" > s') == [True, False, False]
    assert evaluate("s == s") == [True, True, False]


@pytest.mark.parametrize(
    "column",
    [pd.Series([True, False, None], dtype="boolean"), pd.Series([True, False, None], dtype=object)],
    ids=["boolean", "object"],
)
def test_missing_bools_count_as_false(column: pd.Series) -> None:
    assert parse_group("b").evaluate({"b": column}).tolist() == [True, False, False]
    assert parse_group("not b").evaluate({"b": column}).tolist() == [False, True, True]
    assert parse_group("b != True").evaluate({"b": column}).tolist() == [False, True, True]


def test_all_missing_column() -> None:
    data = {"x": [None, None]}
    assert parse_group("x == 1").evaluate(data).tolist() == [False, False]
    assert parse_group('x != "a"').evaluate(data).tolist() == [True, True]
    assert parse_group("x not in [1]").evaluate(data).tolist() == [True, True]


def test_polars_nulls() -> None:
    data = pl.DataFrame(
        {
            "x": [1, None, 3],
            "s": ["a", None, "c"],
            "c": pl.Series(["u", None, "v"], dtype=pl.Categorical),
        }
    )
    assert parse_group("x != 3").evaluate(data).tolist() == [True, True, False]
    assert parse_group('s == "a" or c == "v"').evaluate(data).tolist() == [True, False, True]
    assert parse_group('not (c in ["u"])').evaluate(data).tolist() == [False, True, True]


def test_ordered_categorical_uses_category_order(frame: pd.DataFrame) -> None:
    # Lexically "large" < "medium", by category order it is the largest.
    assert parse_group('size > "medium"').evaluate(frame).tolist() == (frame["size"] == "large").tolist()
    err = pytest.raises(GroupExpressionError, parse_group('size < "huge"').evaluate, frame).value
    assert "'small', 'medium', 'large'" in err.fix


def test_column_against_column() -> None:
    data = {
        "a": pd.Categorical(["x", "y", None]),
        "b": pd.Series(["x", "z", "x"]),
        "n": [1.0, np.nan, 3.0],
        "m": pd.Series([1, 2, 4], dtype="Int64"),
    }
    assert parse_group("a == b").evaluate(data).tolist() == [True, False, False]
    assert parse_group("a != b").evaluate(data).tolist() == [False, True, True]
    assert parse_group("n < m").evaluate(data).tolist() == [False, False, True]


# ---------------------------------------------------------------------------
# Refused constructs
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("len(accent) > 3", "function calls"),
        ('__import__("os").system("x")', "not allowed"),
        ('__import__("os")', "function calls"),
        ("accent.str.len() > 3", "attribute access"),
        ("accent.cat == 1", "attribute access"),
        ('accent[0] == "a"', "subscripts"),
        ("accent[1:2] == 1", "subscripts"),
        ("lambda x: x", "lambda"),
        ("[x for x in accent]", "comprehension"),
        ("{x for x in accent}", "comprehension"),
        ("{x: 1 for x in accent}", "comprehension"),
        ("(x for x in accent)", "generator"),
        ("__class__ == 1", "'__'"),
        ("`__class__` == 1", "'__'"),
        ("__builtins__", "'__'"),
        ("(y := 1) > 0", "assignment"),
        ('f"{age}" == "1"', "f-strings"),
        ("age in [*age]", "starred"),
        ("2 ** 3 > age", "'**'"),
        ("9**9**9 > 1", "'**'"),
        ("age @ age > 1", "'@'"),
        ("age << 2 > 1", "'<<'"),
        ('"a" * 10 == sex', "numbers only"),
        ('"a" + "b" == sex', "numbers only"),
        ("age if flag else age", "conditional"),
        ('{"a": 1} == age', "dict"),
        ("age is None", "'is'"),
        ("age == None", "None"),
        ("age == b'x'", "bytes"),
        ("age == 1j", "complex"),
        ("age == ...", "not allowed"),
        ("await age", "await"),
        ("(yield age)", "yield"),
        ('age in "abc"', "list, tuple or set"),
        ("age in ages", "list, tuple or set"),
        ("age in [other]", "only hold constants"),
        ('age in [1, "a"]', "mixes"),
        ("age in [1] < 3", "cannot be compared further"),
        ("[1, 2] == age", "may only follow 'in'"),
        ("age, sex", "may only follow 'in'"),
        ("5", "must be a condition"),
        ('"text"', "must be a condition"),
        ("age + 1", "must be a condition"),
        ("not 5", "operand of 'not'"),
        ("~5", "operand of '~'"),
        ("~age + 1 > 0", "not on a condition"),
        ("age > 1 and 3", "each side of 'and'"),
        ("age > 1 & 3", "each side of 'and'"),
        ("age > 1 | 3", "each side of 'or'"),
        ('"a" < 1', "cannot be compared"),
        ("True < False", "ordered"),
        ("(age > 1) == 1", "cannot be compared"),
        ('-"a" == sex', "numbers"),
        ("age == 1" + "0" * 400, "too large"),
    ],
)
def test_refused_constructs(text: str, fragment: str) -> None:
    err = refused(text)
    assert fragment in err.problem
    assert err.fix
    assert err.expression == text[:200]


def test_refusal_positions_point_at_the_construct() -> None:
    text = 'age > 60 and accent.str.len() > 3'
    assert refused(text).position == text.index("accent")
    text = "age > 60 and `__x` == 1"
    assert refused(text).position == text.index("`")
    text = "age > 60 and (\n   sex == len(x))"
    assert refused(text).position == text.index("len")


def test_unknown_column_lists_known_columns_with_position() -> None:
    err = refused('age > 1 and aksent == "en"', columns=["sex", "age", "accent"])
    assert err.position == 12
    assert "'aksent'" in err.problem
    assert "'accent', 'age', 'sex'" in err.fix
    assert "did you mean 'accent'" in err.fix


def test_unknown_column_listing_is_capped() -> None:
    known = [f"col{i:02d}" for i in range(40)]
    err = refused("zzz > 1", columns=known)
    assert "'col29'" in err.fix and "'col30'" not in err.fix
    assert "and 10 more" in err.fix


def test_unknown_backtick_column_position() -> None:
    text = "age > 1 or `snr  db` < 3"
    err = refused(text, columns=["age", "snr db"])
    assert err.position == text.index("`")
    assert "'snr  db'" in err.problem


def test_known_columns_accept_all_used_names() -> None:
    expr = parse_group("`snr db` < 3 and age > 1", columns={"snr db", "age", "other"})
    assert expr.columns == ("snr db", "age")


# ---------------------------------------------------------------------------
# Limits and syntax errors
# ---------------------------------------------------------------------------


def test_huge_string_is_refused_with_the_limit() -> None:
    err = refused("a" * 10_000_000)
    assert "10,000 characters" in err.problem
    assert len(err.expression) == 200


def test_limit_is_inclusive() -> None:
    text = "age > 1" + " " * (10_000 - 7)
    assert parse_group(text).columns == ("age",)
    assert "limit" in refused(text + " ").problem


@pytest.mark.parametrize("levels", [10_000, 4_000, 60])
def test_deep_brackets(levels: int) -> None:
    err = refused("(" * levels + "flag" + ")" * levels)
    assert "limit" in err.problem or "nested" in err.problem


def test_redundant_brackets_below_the_limit_are_fine() -> None:
    assert parse_group("(" * 50 + "flag" + ")" * 50).columns == ("flag",)


@pytest.mark.parametrize(
    "text",
    [
        "not " * 2_000 + "flag",
        "-" * 9_999 + "1",
        "~" * 9_999 + "a",
        "a+" * 4_999 + "a",
        "a" + ".b" * 4_000,
        "a" + "()" * 4_000,
        "a < " * 2_000 + "a",
        "not (" * 60 + "flag" + ")" * 60,
        " + ".join(["age"] * 60) + " > 1",
    ],
)
def test_deep_trees_are_refused(text: str) -> None:
    err = refused(text)
    assert any(word in err.problem for word in ("nested", "parse", "parts"))


def test_too_many_parts() -> None:
    err = refused(" or ".join(["age < 1"] * 200))
    assert "500 parts" in err.problem


def test_long_in_list_counts_as_one_part(frame: pd.DataFrame) -> None:
    text = f"age in [{', '.join(str(i) for i in range(1_500))}]"
    assert len(text) < 10_000
    np.testing.assert_array_equal(parse_group(text).evaluate(frame), frame["age"].lt(1_500).to_numpy())


def test_in_list_item_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(expr_module, "_MAX_LIST_ITEMS", 3)
    assert parse_group("age in [1, 2, 3]").columns == ("age",)
    err = refused("age in [1, 2, 3, 4]")
    assert "4 items" in err.problem and "limit is 3" in err.problem


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_empty(text: str) -> None:
    assert "empty" in refused(text).problem


@pytest.mark.parametrize(
    ("text", "at"),
    [
        ("age >= 60 and sex ==", 20),
        ("age > 60 and (sex == 'x'", 13),
        ("age > 1 & sex == == 2", 17),
        ("`snr db` < 1 and age >", 22),
        ("age > 1 and (\n  sex == )", 23),
        ("age >\r\n 1", 5),
        ("(age >\r\n 1 +)", 12),
        ("'é' == (", 7),
        ("sex == 'unterminated", 7),
    ],
)
def test_syntax_error_has_a_position(text: str, at: int) -> None:
    err = refused(text)
    assert "not valid syntax" in err.problem
    assert err.position == at
    assert "age >= 60" in err.fix


def test_unterminated_backtick() -> None:
    err = refused("age > 1 and `snr db < 3")
    assert "backtick" in err.problem
    assert err.position == 12


@pytest.mark.parametrize(
    ("text", "fragment", "at"),
    [
        ("age\x00 > 1", "null", 3),
        ("sex == '\ud800'", "parsed", 8),
        ("`` > 1", "empty column name", 0),
        (123, "must be text", None),
    ],
)
def test_odd_input(text: Any, fragment: str, at: int | None) -> None:
    err = refused(text)
    assert fragment in err.problem
    assert err.position == at


# ---------------------------------------------------------------------------
# Evaluation errors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment", "fix_fragment"),
    [
        ('sex + 1 > 2', "column 'sex'", "numeric columns"),
        ('-sex > 2', "column 'sex'", "numeric columns"),
        ("sex == 5", "column 'sex' (which holds text)", 'sex == "5"'),
        ("5 < sex", "column 'sex' (which holds text)", "quote"),
        ('accent == 5', "column 'accent' (which holds text)", "quote"),
        ('age == "5"', "column 'age' (which holds numbers)", "without quotes"),
        ('age in ["5"]', "column 'age' (which holds numbers)", "without quotes"),
        ("sex in [1, 2]", "column 'sex' (which holds text)", "quote"),
        ("age == sex", "cannot be compared", "numbers"),
        ("flag == 1", "cannot be compared", "True or False"),
        ("flag < True", "ordered", "=="),
        ("age", "column 'age' holds numbers", "age > 0"),
        ("not sex", "column 'sex' holds text", 'sex == "value"'),
        ("accent and flag", "column 'accent' holds text", "accent =="),
    ],
)
def test_type_errors_at_evaluation(frame: pd.DataFrame, text: str, fragment: str, fix_fragment: str) -> None:
    expr = parse_group(text, columns=frame.columns)
    with pytest.raises(GroupExpressionError) as info:
        expr.evaluate(frame)
    assert fragment in info.value.problem
    assert fix_fragment in info.value.fix
    assert info.value.position is not None


def test_missing_column_at_evaluation(frame: pd.DataFrame) -> None:
    text = "age > 1 and speaker == 'x'"
    with pytest.raises(GroupExpressionError) as info:
        parse_group(text).evaluate(frame)
    assert "'speaker'" in info.value.problem
    assert info.value.position == text.index("speaker")
    assert "'accent'" in info.value.fix
    with pytest.raises(GroupExpressionError, match="speaker"):
        parse_group(text).evaluate(pl.from_pandas(frame))
    with pytest.raises(GroupExpressionError, match="speaker"):
        parse_group(text).evaluate({"age": [1]})


def test_unsupported_column_types() -> None:
    with pytest.raises(GroupExpressionError, match="datetime"):
        parse_group("t > 1").evaluate({"t": pd.to_datetime(["2020-01-01"])})
    with pytest.raises(GroupExpressionError, match="mix"):
        parse_group("m == 1").evaluate({"m": pd.Series([1, "a"], dtype=object)})


def test_bad_data() -> None:
    with pytest.raises(InputError, match="same number"):
        parse_group("a > 1 and b > 1").evaluate({"a": [1, 2], "b": [1]})
    with pytest.raises(InputError, match="one-dimensional"):
        parse_group("a > 1").evaluate({"a": np.zeros((2, 2))})
    with pytest.raises(InputError, match="pandas DataFrame"):
        parse_group("a > 1").evaluate([1, 2])
    with pytest.raises(InputError, match="collect"):
        parse_group("a > 1").evaluate(pl.DataFrame({"a": [1]}).lazy())
    with pytest.raises(InputError, match="2 columns"):
        parse_group("a > 1").evaluate(pd.DataFrame([[1, 2]], columns=["a", "a"]))


def test_arithmetic_edge_cases_do_not_raise_or_warn() -> None:
    data = {"x": pd.Series([0, 1, -1], dtype="int8"), "y": [1e308, 0.0, np.nan]}
    assert parse_group("x * 1000 > 100").evaluate(data).tolist() == [False, True, False]
    assert parse_group("y * 10 > 1e308").evaluate(data).tolist() == [True, False, False]
    assert parse_group("x / 0 > 0").evaluate(data).tolist() == [False, True, False]
    assert parse_group("x % 0 == x % 0").evaluate(data).tolist() == [False, False, False]
    assert parse_group("x < 99999999999999999999").evaluate(data).tolist() == [True, True, True]
    assert parse_group("1 / 0 > x").evaluate(data).tolist() == [True, True, True]


# ---------------------------------------------------------------------------
# Property-based tests
# ---------------------------------------------------------------------------

SMALL = make_frame()


def check_anything(text: str) -> None:
    """Parse and, when it parses, evaluate: only GroupExpressionError may escape."""
    try:
        expr = parse_group(text)
    except GroupExpressionError as err:
        assert err.problem and err.fix
        assert err.position is None or 0 <= err.position <= len(text)
        return
    assert isinstance(expr, GroupExpression)
    try:
        mask = expr.evaluate(SMALL)
    except GroupExpressionError:
        return
    assert isinstance(mask, np.ndarray)
    assert mask.dtype == np.bool_
    assert mask.shape == (len(SMALL),)


@SETTINGS
@given(st.text(max_size=200))
def test_random_text_parses_or_is_refused(text: str) -> None:
    check_anything(text)


@SETTINGS
@given(st.text(st.characters(exclude_categories=()), max_size=60))
def test_random_text_with_surrogates_parses_or_is_refused(text: str) -> None:
    check_anything(text)


TOKENS = [
    "age", "snr_db", "sex", "accent", "noise", "flag", "size", "`snr db`", "`snr", "unknown",
    "==", "!=", "<", "<=", ">", ">=", "in", "not in", "not", "and", "or", "&", "|", "~",
    "+", "-", "*", "/", "//", "%", "**", "@", "=", ":=", ":", ",", ";",
    "1", "0", "60", "-3.5", "1e308", "1e999", "'Female'", '"hi"', "'", '"', "True", "False", "None",
    "(", ")", "[", "]", "{", "}", "(", ")", "[", "]",
    "lambda", "import", "__class__", "__import__", "__builtins__", "os", "system", ".", "if", "else",
    "for", "is", "yield", "await", "f'", "b'", "#", "\\", "\n", "`",
]


@SETTINGS
@given(st.lists(st.sampled_from(TOKENS), max_size=25), st.sampled_from([" ", ""]))
def test_token_soup_parses_or_is_refused(tokens: list[str], separator: str) -> None:
    check_anything(separator.join(tokens))


# A generator of well-typed expressions, checked against pandas' query as the oracle.
NUMBER_COLUMNS = st.sampled_from(["age", "snr_db", "`snr db`"])
NUMBERS = st.one_of(
    NUMBER_COLUMNS,
    st.integers(-5, 100).map(str),
    st.floats(-10, 100, allow_nan=False).map(repr),
)
ARITHMETIC = st.recursive(
    NUMBERS,
    lambda inner: st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "//", "%"]), inner).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})"
    ),
    max_leaves=3,
)
# pandas mishandles comparisons between constants alone (`not (0 == 0)` is truthy there),
# so every comparison the oracle sees involves a column.
WITH_COLUMN = st.one_of(
    NUMBER_COLUMNS,
    st.tuples(NUMBER_COLUMNS, st.sampled_from(["+", "-", "*", "/", "//", "%"]), ARITHMETIC).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})"
    ),
)
WORDS = st.sampled_from(["Female", "Male", "clean", "babble", "en", "hi", "a|b", "", "G", "zz"])
ATOMS = st.one_of(
    st.tuples(WITH_COLUMN, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), ARITHMETIC).map(" ".join),
    st.tuples(st.sampled_from(["sex", "noise"]), st.sampled_from(["==", "!=", "<", ">="]), WORDS).map(
        lambda t: f"{t[0]} {t[1]} {t[2]!r}"
    ),
    st.tuples(st.sampled_from(["accent", "size"]), st.sampled_from(["==", "!="]), WORDS).map(
        lambda t: f"{t[0]} {t[1]} {t[2]!r}"
    ),
    st.tuples(
        st.sampled_from(["sex", "accent", "noise"]),
        st.sampled_from(["in", "not in"]),
        st.lists(WORDS, max_size=3),
    ).map(lambda t: f"{t[0]} {t[1]} {t[2]!r}"),
    st.tuples(
        NUMBER_COLUMNS, st.sampled_from(["in", "not in"]), st.lists(st.integers(0, 100), max_size=3)
    ).map(lambda t: f"{t[0]} {t[1]} {t[2]!r}"),
    st.tuples(st.integers(-5, 20), NUMBER_COLUMNS, st.integers(-5, 20)).map(
        lambda t: f"{t[0]} < {t[1]} <= {t[2]}"
    ),
    st.sampled_from(["flag", "flag == False"]),
)
CONDITIONS = st.recursive(
    ATOMS,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["and", "or", "&", "|"]), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        inner.map(lambda c: f"not ({c})"),
        inner.map(lambda c: f"~({c})"),
    ),
    max_leaves=5,
)


@SETTINGS
@given(CONDITIONS, st.sampled_from(["and", "or", "&", "|"]), ATOMS)
def test_well_typed_expressions_match_pandas(condition: str, joiner: str, atom: str) -> None:
    # The unbracketed join also checks that & and | bind like and / or, as in pandas.
    text = f"{atom} {joiner} {condition}"
    mask = parse_group(text, columns=SMALL.columns).evaluate(SMALL)
    try:
        expected = pandas_mask(SMALL, text)
    except ZeroDivisionError:  # pandas folds constants with Python's rules; we give inf/NaN
        reject()
    np.testing.assert_array_equal(mask, expected, err_msg=text)


@pytest.fixture(scope="module")
def canary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("canary") / "pwned"


def payloads(path: Path) -> list[str]:
    p = str(path)
    return [
        f"__import__('os').system('touch {p}')",
        f"__import__('subprocess').Popen(['touch', '{p}'])",
        f"open('{p}', 'w').write('x')",
        f"(lambda: __import__('os').system('touch {p}'))()",
        "().__class__.__bases__[0].__subclasses__()",
        "[c for c in ().__class__.__base__.__subclasses__()]",
        f"eval(\"__import__('os').system('touch {p}')\")",
        f"exec(\"open('{p}', 'w')\")",
        "f'{" + f"__import__('os').system('touch {p}')" + "}' == 'x'",
        f"age > 1 or __import__('os').system('touch {p}') == 0",
        f"age in [__import__('os').system('touch {p}')]",
        f"`__import__('os').system('touch {p}')` > 1",
        f"(x := __import__('os')) and x.system('touch {p}')",
        "@age > 1",
        "getattr(age, '__class__')",
        "globals()['__builtins__']",
        "breakpoint()",
    ]


def compile_ast_only(source: Any, filename: Any, mode: Any, flags: int = 0, *args: Any, **kwargs: Any) -> Any:
    """Stand-in for compile(): building a syntax tree is fine, building code is not."""
    if not flags & ast.PyCF_ONLY_AST:
        raise AssertionError("compile() was asked for code")
    return REAL_COMPILE(source, filename, mode, flags, *args, **kwargs)


REAL_COMPILE = builtins.compile


def forbidden(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("something tried to execute code")


@contextlib.contextmanager
def nothing_may_execute() -> Iterator[None]:
    targets = {
        "os.system": forbidden,
        "os.popen": forbidden,
        "subprocess.Popen": forbidden,
        "builtins.eval": forbidden,
        "builtins.exec": forbidden,
        "builtins.open": forbidden,
        "builtins.compile": compile_ast_only,
        "pandas.eval": forbidden,
        "pandas.DataFrame.query": forbidden,
        "pandas.DataFrame.eval": forbidden,
    }
    with contextlib.ExitStack() as stack:
        for target, replacement in targets.items():
            stack.enter_context(mock.patch(target, replacement))
        yield


@SETTINGS
@given(
    st.data(),
    st.lists(st.sampled_from(TOKENS), max_size=6).map(" ".join),
    st.sampled_from(["", " and ", " or ", " & ", " | ", " in [", " == "]),
)
def test_nothing_executes(canary: Path, data: st.DataObject, prefix: str, glue: str) -> None:
    payload = data.draw(st.sampled_from(payloads(canary)))
    text = f"{prefix}{glue}{payload}" if prefix else payload
    with nothing_may_execute():
        check_anything(text)
    assert not canary.exists()
    assert not os.path.exists(canary)


def test_payloads_are_refused_before_evaluation(canary: Path) -> None:
    for text in payloads(canary):
        with nothing_may_execute():
            with pytest.raises(GroupExpressionError):
                parse_group(text, columns=SMALL.columns)
    assert not canary.exists()


def test_subprocess_patch_is_effective() -> None:
    # Guards the guard: inside the context, a real attempt to run a command fails.
    with nothing_may_execute(), pytest.raises(AssertionError):
        subprocess.Popen(["true"])


# --- linear work on hostile text, and cached parses ------------------------------------------


def _hostile(n: int) -> list[str]:
    """Texts of about ``n`` characters built to defeat the placeholder search."""
    return [
        "_" * (n - 10) + "_gw_col_ > 1",
        "_gw" * (n // 3),
        "`a` > 1 and " + "_" * (n // 2) + "_gw_col_ > 1 and " + " and ".join(f"`c{i}` > 1" for i in range(n // 40)),
        "ＡＢ" + "＿ｇｗｃｏｌ＿" * (n // 7),
    ]


def _scanned(monkeypatch: pytest.MonkeyPatch, text: str) -> tuple[int, int]:
    """Characters the scanner examined in its searches, and the size of its output."""
    seen = [0]
    real = expr_module._find

    def counting(haystack: str, needle: str, start: int) -> int:
        at = real(haystack, needle, start)
        seen[0] += (len(haystack) if at < 0 else at + len(needle)) - start
        return at

    monkeypatch.setattr(expr_module, "_find", counting)
    prepared = expr_module._Scanner(text).scan().text
    return seen[0], len(prepared)


@pytest.mark.parametrize("kind", range(4))
def test_scanner_work_grows_linearly_with_the_text(monkeypatch: pytest.MonkeyPatch, kind: int) -> None:
    small, large = _hostile(2_500)[kind], _hostile(10_000)[kind]
    work_small, out_small = _scanned(monkeypatch, small)
    work_large, out_large = _scanned(monkeypatch, large)
    # Each search examines a character at most a few times, so the work is proportional
    # to the text: four times the text is at most about four times the work.
    assert work_small <= 4 * len(small)
    assert work_large <= 4 * len(large)
    assert work_large <= 4.5 * max(work_small, 1) + 100
    # Placeholders have a fixed length, so the text handed to the parser stays linear too.
    assert out_large <= 3 * len(large) + 100
    assert len(expr_module._placeholder_prefix(large)) == 7


def test_placeholder_prefix_avoids_every_spelling_in_the_text() -> None:
    for text in _hostile(3_000) + ["_gwcol_0 > 1", "_gwcol_ _gwaaa_ _gwaab_"]:
        prefix = expr_module._placeholder_prefix(text)
        assert prefix not in text
        assert prefix not in __import__("unicodedata").normalize("NFKC", text)


def test_long_hostile_expressions_are_refused_with_their_reason() -> None:
    with pytest.raises(GroupExpressionError, match="names starting with '__'"):
        parse_group(_hostile(9_990)[0])
    # One long identifier made of the prefix is an ordinary column name.
    assert parse_group(_hostile(9_990)[1]).columns == ("_gw" * 3330,)
    spoof = "_gwcol_0 > 1 or `a b` > 1"
    expr = parse_group(spoof)
    assert expr.columns == ("_gwcol_0", "a b")
    assert expr.evaluate({"_gwcol_0": [1, 2], "a b": [5, 0]}).tolist() == [True, True]


def test_parse_group_parses_each_text_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = expr_module._parse

    def counting(text: str) -> Any:
        calls.append(text)
        return real(text)

    monkeypatch.setattr(expr_module, "_parse", counting)
    # Like the heat map reading every logged group: the same texts over and over.
    logged = ["x_cached_1 > 3 and y_cached_1 == 'a'", "x_cached_1 >", "z_cached_1 in [1, 2]"] * 50
    columns = []
    for text in logged:
        try:
            columns.append(parse_group(text).columns)
        except GroupExpressionError as err:
            columns.append(("error", err.position, err.message))
    assert sorted(set(calls)) == sorted(set(logged))
    assert len(calls) == 3
    assert columns[0] == ("x_cached_1", "y_cached_1") and columns[3] == columns[0]
    assert columns[1] == columns[4] and columns[1][0] == "error" and columns[1][1] is not None
    # A known column list is still checked on a cached parse.
    with pytest.raises(GroupExpressionError, match="not one of the known columns"):
        parse_group(logged[0], columns=["x_cached_1"])
