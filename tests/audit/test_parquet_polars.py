"""A Parquet file audited through polars gives what the same file read by pandas gives.

The grouped audit of transcripts reads a Parquet file with polars (no pandas import) when
every column it uses reads the same way; each design below checks that the polars read was
taken (or, for the designs pandas must read, that it was not) and that the whole result
equals the audit of ``pandas.read_parquet`` of the same file.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from groupwise import InputError, audit
from groupwise._io import read_parquet_polars
from groupwise.audit._prepare import factorize

WORDS = ["the", "Cat", "sat,", "on", "mat.", "é", "naïve", "dog", "ran", "far", "", "  "]


def _speech(n: int = 480, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    refs, hyps = [], []
    for _ in range(n):
        ref = [WORDS[i] for i in rng.integers(0, len(WORDS), rng.integers(1, 9))]
        hyp = [w if rng.random() > 0.25 else WORDS[rng.integers(0, len(WORDS))] for w in ref]
        if rng.random() < 0.2:
            hyp = hyp[: max(0, len(hyp) - 1)]
        refs.append(" ".join(ref))
        hyps.append(" ".join(ref) if rng.random() < 0.2 else " ".join(hyp))
    speaker = rng.integers(0, 48, n)
    return pd.DataFrame({
        "speaker": [f"spk{s:02d}" for s in speaker],
        "speaker_id": speaker * 7 + 3,
        # Not in sorted order, non-ASCII, and upper case sorting before lower case.
        "accent": pd.Series(np.array(["scots", "Welsh", "é-fr", "us", "Zulu"])[speaker % 5], dtype=str),
        # Categories in an order of their own, one never observed.
        "noise": pd.Categorical(rng.choice(["hum", "clean", "babble"], n), categories=["quiet", "hum", "clean", "babble"]),
        "age_band": rng.choice([60, 18, 35, -1], n),
        "native": rng.random(n) < 0.6,
        "mic": rng.choice([3, 1, 2], n).astype(np.uint8),
        "site": pd.Series([None if rng.random() < 0.1 else f"site{rng.integers(0, 4)}" for _ in range(n)], dtype=str),
        "reference": pd.Series(refs, dtype=str),
        "hypothesis": pd.Series(hyps, dtype=str),
    })


BY = ["accent", "noise", "age_band", "native", "mic", "site", "accent,noise", "noise,native,mic"]


def _same_as_pandas(path, *, polars_read: bool, **options):
    options = {"by": BY, "cluster": "speaker", **options}
    columns = list(dict.fromkeys([c for b in options["by"] for c in b.split(",")]
                                 + [options["cluster"], "reference", "hypothesis"]))
    taken = read_parquet_polars(path, columns=columns, texts=["reference", "hypothesis"])
    assert (taken is not None) == polars_read
    from_file = audit(path, **options).to_dict()
    from_pandas = audit(pd.read_parquet(path), **options).to_dict()
    assert from_file == from_pandas
    return from_file


@pytest.mark.parametrize("metric", ["wer", "cer"])
@pytest.mark.parametrize("compare", ["overall", "complement", "best"])
def test_a_file_written_by_pandas_audits_as_pandas_reads_it(tmp_path, metric, compare):
    path = tmp_path / "speech.parquet"
    _speech().to_parquet(path, row_group_size=100)  # several row groups
    result = _same_as_pandas(path, polars_read=True, metric=metric, compare=compare)
    noise = [g["group"]["noise"] for g in result["groups"] if g["family"] == "noise"]
    assert noise == ["hum", "clean", "babble"]  # the categories' order, as pandas sorts them
    assert result["settings"]["missing_group_values"]["site"] > 0


def test_clusters_of_every_kind_and_the_permutation_test(tmp_path):
    frame = _speech(seed=3)
    frame["speaker_cat"] = pd.Categorical(frame["speaker"], categories=sorted(set(frame["speaker"]), reverse=True))
    path = tmp_path / "speech.parquet"
    frame.to_parquet(path)
    for cluster in ("speaker", "speaker_id", "speaker_cat"):
        # The permutation test shuffles clusters by their codes: the codes must agree too.
        result = _same_as_pandas(path, polars_read=True, cluster=cluster, by=["accent"], test="permutation", n_perm=199)
        assert "studentised permutation" in {g["test"] for g in result["groups"]}


def test_dictionaries_that_differ_between_row_groups(tmp_path):
    # Each row group has its own dictionary, in its own order; pandas unifies them in order.
    data = _speech(n=300, seed=5)
    chunks = []
    for lo, cats in ((0, ["hum", "clean"]), (100, ["babble", "clean", "hum"]), (200, ["clean", "static", "hum", "babble"])):
        values = data["noise"].astype(str).iloc[lo : lo + 100].to_numpy()
        values = np.where(np.isin(values, cats), values, cats[0])
        chunks.append(pa.DictionaryArray.from_arrays(pa.array([cats.index(v) for v in values], pa.int32()), pa.array(cats)))
    table = pa.Table.from_pandas(data.drop(columns=["noise"]), preserve_index=False)
    table = table.append_column("noise", pa.chunked_array(chunks))
    path = tmp_path / "dicts.parquet"
    pq.write_table(table, path, row_group_size=100)
    result = _same_as_pandas(path, polars_read=True, by=["noise", "accent,noise"])
    # "static" is in a dictionary but in no row: like pandas, only observed values are groups.
    assert [g["group"]["noise"] for g in result["groups"] if g["family"] == "noise"] == ["hum", "clean", "babble"]


def test_files_written_by_polars_and_by_pyarrow(tmp_path):
    data = _speech(seed=7)
    frame = pl.from_pandas(data.drop(columns=["noise"])).with_columns(pl.Series("noise", data["noise"].astype(str)))
    frame.write_parquet(tmp_path / "polars.parquet")
    _same_as_pandas(tmp_path / "polars.parquet", polars_read=True)
    frame.with_columns(pl.col("noise").cast(pl.Categorical)).write_parquet(tmp_path / "polars_cat.parquet")
    _same_as_pandas(tmp_path / "polars_cat.parquet", polars_read=True, by=["noise", "accent"])
    pq.write_table(pa.Table.from_pandas(data, preserve_index=False).replace_schema_metadata(None), tmp_path / "bare.parquet")
    _same_as_pandas(tmp_path / "bare.parquet", polars_read=True)


@pytest.mark.parametrize("design", ["float", "int_missing", "bool_missing", "category_missing", "index", "range_offset",
                                    "date", "category_text"])
def test_files_only_pandas_reads_faithfully_are_read_by_pandas(tmp_path, design):
    data = _speech(seed=11)
    by = ["accent", "extra"]
    if design == "float":
        data["extra"] = np.round(np.random.default_rng(0).random(len(data)) * 3) / 2
    elif design == "int_missing":
        data["extra"] = pd.array([None if i % 9 == 0 else i % 3 for i in range(len(data))], dtype="Int64")
    elif design == "bool_missing":
        data["extra"] = pd.Series([None if i % 9 == 0 else bool(i % 2) for i in range(len(data))], dtype=object)
    elif design == "category_missing":
        data["extra"] = pd.Categorical([None if i % 9 == 0 else "ab"[i % 2] for i in range(len(data))])
    elif design == "index":
        data = data.set_index(pd.Index([f"u{i}" for i in range(len(data))], name="utt"))
        data["extra"] = data["age_band"]
    elif design == "range_offset":
        data.index = pd.RangeIndex(10, 10 + len(data))
        data["extra"] = data["age_band"]
    elif design == "date":
        data["extra"] = pd.to_datetime("2024-01-01") + pd.to_timedelta(np.arange(len(data)) % 3, unit="D")
    elif design == "category_text":
        data["reference"] = data["reference"].astype("category")
        data["extra"] = data["mic"]
    path = tmp_path / "other.parquet"
    data.to_parquet(path)
    _same_as_pandas(path, polars_read=False, by=by)


@pytest.mark.parametrize("column", ["reference", "speaker"])
def test_missing_transcripts_and_speakers_are_reported_with_the_same_rows(tmp_path, column):
    data = _speech(n=120, seed=2)
    data[column] = data[column].astype(object)
    data.loc[[4, 77], column] = None
    data[column] = data[column].astype(str)
    path = tmp_path / "gaps.parquet"
    data.to_parquet(path)
    assert read_parquet_polars(path, columns=["accent", "speaker", "reference", "hypothesis"],
                               texts=["reference", "hypothesis"]) is not None
    with pytest.raises(InputError) as from_file:
        audit(path, by="accent", cluster="speaker")
    with pytest.raises(InputError) as from_pandas:
        audit(pd.read_parquet(path), by="accent", cluster="speaker")
    assert str(from_file.value) == str(from_pandas.value)
    assert from_file.value.rows == [4, 77]


def test_factorize_agrees_with_pandas_on_every_kind_of_column():
    data = _speech(n=200, seed=4)
    frame = pl.from_pandas(data.drop(columns=["noise"])).with_columns(
        pl.Series("noise", data["noise"].astype(str)).cast(pl.Enum(list(data["noise"].cat.categories)))
    )
    for column in ["speaker", "speaker_id", "accent", "noise", "age_band", "native", "mic", "site"]:
        for sort in (True, False):
            codes, values = factorize(frame, column, sort=sort)
            expected_codes, expected_values = pd.factorize(data[column], sort=sort)
            assert codes.tolist() == expected_codes.tolist(), (column, sort)
            assert values == [v.item() if isinstance(v, np.generic) else v for v in expected_values], (column, sort)


def test_the_command_on_a_parquet_file_never_imports_pandas(tmp_path):
    path = tmp_path / "speech.parquet"
    _speech().to_parquet(path)
    script = textwrap.dedent(f"""
        import sys
        from groupwise.cli import main
        sys.argv = ["groupwise", "audit", {str(path)!r}, "--by", "accent", "--by", "accent,noise",
                    "--cluster", "speaker", "--json", {str(tmp_path / "out.json")!r}]
        try:
            main()
        except SystemExit as exit:
            assert not exit.code, exit.code
        print("pandas" in sys.modules)
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert run.stdout.strip().splitlines()[-1] == "False", run.stderr
    assert (tmp_path / "out.json").stat().st_size > 0


def _outcome(source, **options):
    try:
        return audit(source, **options).to_dict()
    except InputError as exc:
        return ("error", str(exc), exc.rows)


def test_odd_files_give_what_pandas_gives(tmp_path):
    data = _speech(n=200, seed=9)
    options = {"by": ["accent"], "cluster": "speaker"}
    # A name with glob characters is that file, not a pattern matching its neighbours.
    _speech(n=120, seed=10).to_parquet(tmp_path / "take1.parquet")
    data.to_parquet(tmp_path / "take[1].parquet")
    taken = read_parquet_polars(tmp_path / "take[1].parquet", columns=["accent", "speaker", "reference", "hypothesis"])
    assert taken is not None and taken.height == len(data)
    assert _outcome(tmp_path / "take[1].parquet", **options) == _outcome(pd.read_parquet(tmp_path / "take[1].parquet"), **options)
    # A dictionary column named "a.b" beside a struct column "a" with a field "b".
    table = pa.Table.from_pandas(data, preserve_index=False)
    table = table.append_column("a", pa.StructArray.from_arrays([pa.array(["p", "q"] * 100)], ["b"]))
    table = table.append_column("a.b", pa.array(data["accent"].to_numpy().astype(str)).dictionary_encode())
    pq.write_table(table, tmp_path / "dotted.parquet")
    dotted = {"by": ["a.b"], "cluster": "speaker"}
    assert _outcome(tmp_path / "dotted.parquet", **dotted) == _outcome(pd.read_parquet(tmp_path / "dotted.parquet"), **dotted)
    # Column names of other types than text, which pandas may turn back into other names.
    flags = data.rename(columns={"native": True, "age_band": False})
    with pytest.warns(UserWarning, match="mixed type"):
        flags.to_parquet(tmp_path / "flags.parquet")
    assert _outcome(tmp_path / "flags.parquet", **options) == _outcome(pd.read_parquet(tmp_path / "flags.parquet"), **options)
    # One speaker: the value in the message is the same plain number either way.
    data.assign(one=5).to_parquet(tmp_path / "one.parquet")
    single = _outcome(tmp_path / "one.parquet", by="accent", cluster="one")
    assert single == _outcome(pd.read_parquet(tmp_path / "one.parquet"), by="accent", cluster="one")
    assert "a single value (5)" in single[1]


@pytest.mark.parametrize("metadata", [b"{not json", b'"x"', b'{"index_columns": null, "columns": []}',
                                      b'{"index_columns": [], "columns": null}'])
def test_malformed_pandas_metadata_is_a_bad_file_not_a_crash(tmp_path, metadata):
    table = pa.Table.from_pandas(_speech(n=100), preserve_index=False).replace_schema_metadata({b"pandas": metadata})
    path = tmp_path / "odd.parquet"
    pq.write_table(table, path)
    assert read_parquet_polars(path, columns=["accent", "speaker", "reference", "hypothesis"],
                               texts=["reference", "hypothesis"]) is None
    with pytest.raises(InputError, match="could not be read as PARQUET"):
        audit(path, by="accent", cluster="speaker")
