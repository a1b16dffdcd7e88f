"""Every result holds typed rows (dataclasses) that also read as the JSON they become."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

import groupwise
from groupwise import tabular_example
from groupwise.audit._rows import (
    AuditGroup,
    AuditOverall,
    Condition,
    ConditionDelta,
    ConditionGroup,
    CoverageCell,
    Row,
    SliceRow,
)


@pytest.fixture(scope="module")
def tab():
    return tabular_example(2000, seed=3)


@pytest.fixture(scope="module")
def paired():
    rng = np.random.default_rng(5)
    rows = []
    for g in range(3):
        for s in range(12):
            for u in range(5):
                words = int(rng.integers(4, 12))
                base = int(rng.poisson(words * 0.1 * (g + 1)))
                for cond, k in (("baseline", base), ("hum", base + int(rng.poisson(words * 0.05)))):
                    rows.append({"item": f"{g}{s}{u}", "accent": f"a{g}", "speaker": f"{g}-{s}", "condition": cond,
                                 "num": k, "den": words})
    return pd.DataFrame(rows)


def _check_rows(rows, kind):
    assert rows, "the result has no rows to check"
    for row in rows:
        assert isinstance(row, kind) and dataclasses.is_dataclass(row)
        for f in dataclasses.fields(row):
            if f.name != "extra":
                assert row[f.name] is getattr(row, f.name)
        plain = row.to_dict()
        # The JSON form is flat: no "extra" key, every extra number at the top level.
        assert "extra" not in plain and set(row.extra) <= set(plain)
        assert json.loads(json.dumps(plain)) == plain
        assert type(row).coerce(plain) == row


def test_audit_rows_are_typed_and_match_their_json(tab):
    result = groupwise.audit(tab, by=["race", "sex"], y_true="y_true", y_pred="y_pred", metric="error_rate",
                             cluster="household", n_boot=200, seed=0)
    assert isinstance(result.overall, AuditOverall)
    _check_rows(result.groups, AuditGroup)
    g = result.groups[0]
    assert isinstance(g.n, int) and isinstance(g.flagged, bool) and g.status == g["status"]
    # The file a user writes reads back into the same rows.
    back = json.loads(result.to_json())
    assert [AuditGroup.coerce(x) for x in back["groups"]] == result.groups
    assert AuditOverall.coerce(back["overall"]) == result.overall
    assert result.flagged == [x for x in result.groups if x.flagged]


def test_wer_counts_are_extra_fields_and_stay_flat():
    frame = groupwise.speech_example(600, n_speakers=24)
    result = groupwise.audit(frame, by="accent", cluster="speaker", n_boot=0)
    g = result.groups[0]
    assert {"substitutions", "deletions", "insertions"} <= set(g.extra)
    assert g["substitutions"] == g.extra["substitutions"]
    assert "substitutions" in result.to_dict()["groups"][0]


def test_lastmile_rows_are_typed(paired):
    result = groupwise.lastmile(paired, by="accent", metric="ratio", num="num", den="den", cluster="speaker",
                                item="item")
    _check_rows(result.conditions, Condition)
    c = result.conditions[0]
    assert isinstance(c.overall, ConditionDelta)
    _check_rows(c.groups, ConditionGroup)
    assert result.to_dict()["conditions"][0]["groups"][0]["delta"] == c.groups[0].delta


def test_coverage_and_slices_rows_are_typed(tab):
    cov = groupwise.coverage(tab, dims=["race", "sex"], cluster="household")
    _check_rows(cov.cells, CoverageCell)
    assert cov.summary["cells"] == len(cov.cells)
    found = groupwise.slices(tab, features=["race", "sex"], metric="error_rate", y_true="y_true", y_pred="y_pred",
                             cluster="household", max_order=2, top=3, n_boot=100, seed=0)
    _check_rows(found.slices, SliceRow)


def test_rows_behave_like_mappings():
    row = AuditGroup(family="accent", group={"accent": "hi"}, n=10, clusters=2, extra={"insertions": 3.0})
    row["gap"] = 0.1  # declared field
    row["words"] = 40.0  # a further count
    row.update({"status": "insufficient"}, flagged=False)
    assert row.gap == 0.1 and row.extra["words"] == 40.0 and row.status == "insufficient"
    assert "words" in row and "extra" not in row and len(row) == len(list(row))
    assert dict(row)["insertions"] == 3.0 and {**row}["n"] == 10
    with pytest.raises(KeyError):
        row["no_such_number"]
    assert row != {"n": 10}
    assert isinstance(row, Row)
