"""Tests of column provenance and the rule against imputed protected attributes."""

from __future__ import annotations

import pytest

from groupwise import InputError, Provenance, ProvenanceError, load_schema
from groupwise._provenance import parse_assignments


def test_schema_file_yaml_and_json(tmp_path):
    (tmp_path / "s.yaml").write_text(
        "columns:\n  gender: {provenance: self_reported}\n  accent: annotated\n  dialect: {provenance: imputed, protected: true}\n  age: {protected: false}\n"
    )
    p = load_schema(tmp_path / "s.yaml")
    assert p.of("gender") == "self_reported" and p.of("accent") == "annotated"
    assert p.is_protected("dialect") and not p.is_protected("age") and p.is_protected("Gender")
    with pytest.raises(ProvenanceError):
        p.check(["dialect"], allow_imputed=False)
    (tmp_path / "s.json").write_text('{"columns": {"race": "imputed"}}')
    assert load_schema(tmp_path / "s.json").of("race") == "imputed"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("columns: [a, b]", "no 'columns' mapping"),
        ("columns:\n  a: {provenance: guessed}", "provenance 'guessed'"),
        ("columns:\n  a: 3", "neither a provenance nor a mapping"),
        ("columns: {a: [", "does not parse"),
    ],
)
def test_bad_schema(tmp_path, text, message):
    (tmp_path / "s.yaml").write_text(text)
    with pytest.raises(InputError, match=message):
        load_schema(tmp_path / "s.yaml")


def test_missing_schema(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_schema(tmp_path / "nope.yaml")


def test_assignments():
    assert parse_assignments(["a=measured"]) == {"a": "measured"}
    with pytest.raises(InputError, match="column=provenance"):
        parse_assignments(["a"])
    merged = Provenance({"a": "measured"}).merged({"b": "synthetic"})
    assert merged.describe(["a", "b", "c"]) == {
        "a": {"provenance": "measured", "protected": False},
        "b": {"provenance": "synthetic", "protected": False},
        "c": {"provenance": "unspecified", "protected": False},
    }
