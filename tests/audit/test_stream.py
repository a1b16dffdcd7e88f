"""Sharded audits: Parquet shards reduced batch by batch give the in-memory numbers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from groupwise._errors import GroupwiseError, InputError
from groupwise.audit import audit
from groupwise.audit import _stream


def _table(n: int = 6000, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    speaker = rng.integers(0, 160, n)
    accent = np.array(["us", "uk", "in", "ng"])[speaker % 4]
    noise = rng.choice(["clean", "noisy", "babble"], n)
    words = np.array("the cat sat on a mat and dog ran far".split())
    refs = [" ".join(rng.choice(words, rng.integers(3, 9))) for _ in range(n)]
    bad = rng.random(n) < np.where(accent == "ng", 0.5, 0.3)
    hyps = [r.replace("cat", "bat").replace(" on", "").upper() + "!" if b else r for r, b in zip(refs, bad)]
    y_true = rng.integers(0, 2, n)
    return pd.DataFrame({
        "reference": refs, "hypothesis": hyps, "speaker": [f"spk{s:03d}" for s in speaker], "accent": accent,
        "noise": noise, "snr_db": rng.normal(12, 6, n).round(1), "system": rng.choice(["a", "b"], n),
        "y_true": y_true, "y_pred": np.where(rng.random(n) < 0.8, y_true, 1 - y_true),
        "errors": rng.poisson(1.0, n), "words": rng.integers(3, 12, n),
    })


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return _table()


@pytest.fixture(scope="module")
def shards(table, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("shards")
    for i, part in enumerate(np.array_split(np.arange(len(table)), 4)):
        table.iloc[part].to_parquet(folder / f"part-{i:02d}.parquet")
    return folder


FAMILIES = {"by": ["accent", "noise", "accent,noise"], "groups": ["snr_db < 6 and noise != 'clean'"], "cluster": "speaker"}


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"compare": "best"},
        {"compare": "complement", "test": "t"},
        {"compare": "accent=us", "by": ["accent", "accent,noise"]},
        {"within": "system", "by": ["accent"]},
        {"test": "permutation", "by": ["accent"], "groups": None},
        {"correction": "bh", "n_boot": 0},
    ],
    ids=["overall-auto", "best", "complement-t", "named", "within", "permutation", "bh-point"],
)
def test_sharded_equals_in_memory(table, shards, tmp_path, options):
    kwargs = {**FAMILIES, **options}
    expected = audit(table, **kwargs)
    got = audit(shards, cache_dir=tmp_path / "cache", **kwargs)
    pd.testing.assert_frame_equal(expected.to_frame(), got.to_frame())
    assert got.overall == expected.overall
    assert got.settings["stream"]["shards"] == 4
    assert got.settings["stream"]["examples"] == len(table)
    assert got.settings["stream"]["reduced_rows"] < len(table) / 2
    assert got.settings["notes"] == expected.settings["notes"]


@pytest.mark.parametrize("metric", ["cer", "fnr", "error_rate", "ratio"])
def test_other_metrics_and_their_count_model(table, shards, tmp_path, metric):
    kwargs = {"metric": metric, "by": ["accent"], "cluster": "speaker", "num": "errors", "den": "words"}
    expected = audit(table, **kwargs)
    got = audit(str(shards / "*.parquet"), cache_dir=False, **kwargs)
    pd.testing.assert_frame_equal(expected.to_frame(), got.to_frame())
    assert got.settings["count_model"] == expected.settings["count_model"]


def test_a_list_of_files_and_a_recursive_glob(table, shards, tmp_path):
    nested = tmp_path / "nested" / "deeper"
    nested.mkdir(parents=True)
    files = sorted(shards.glob("*.parquet"))
    for f in files[2:]:
        shutil.copy(f, nested / f.name)
    expected = audit(table, by="accent", cluster="speaker")
    as_list = audit([str(f) for f in files], by="accent", cluster="speaker", cache_dir=False)
    pd.testing.assert_frame_equal(expected.to_frame(), as_list.to_frame())
    for f in files[:2]:
        shutil.copy(f, tmp_path / "nested" / f.name)
    mixed = audit(str(tmp_path / "nested" / "**" / "*.parquet"), by="accent", cluster="speaker", cache_dir=False)
    assert mixed.overall["n"] == len(table)


def test_a_rerun_resumes_from_the_shards_already_reduced(table, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    parts = np.array_split(np.arange(len(table)), 3)
    for i, part in enumerate(parts):
        chunk = table.iloc[part].copy()
        if i == 2:
            chunk.loc[chunk.index[5], "hypothesis"] = None  # a lost transcript in the last shard
        chunk.to_parquet(folder / f"part-{i}.parquet")
    cache = tmp_path / "cache"
    with pytest.raises(InputError) as info:
        audit(folder, by="accent", cluster="speaker", cache_dir=cache)
    message = str(info.value)
    assert "part-2.parquet" in message and "Rows: 5" in message
    assert len(list(cache.glob("*.sums"))) == 2  # the first two shards were kept
    table.iloc[parts[2]].to_parquet(folder / "part-2.parquet")
    again = audit(folder, by="accent", cluster="speaker", cache_dir=cache)
    assert again.settings["stream"]["from_cache"] == 2
    pd.testing.assert_frame_equal(audit(table, by="accent", cluster="speaker").to_frame(), again.to_frame())
    # A changed setting is not answered from the cache.
    other = audit(folder, by="accent", cluster="speaker", cache_dir=cache, normalize="none")
    assert other.settings["stream"]["from_cache"] == 0


def test_a_damaged_cache_entry_is_recomputed(table, shards, tmp_path):
    cache = tmp_path / "cache"
    first = audit(shards, by="noise", cluster="speaker", cache_dir=cache)
    for entry in cache.glob("*.sums"):
        entry.write_bytes(b"not parquet")
    second = audit(shards, by="noise", cluster="speaker", cache_dir=cache)
    assert second.settings["stream"]["from_cache"] == 0
    pd.testing.assert_frame_equal(first.to_frame(), second.to_frame())


def test_progress_lines(table, shards, capsys):
    audit(shards, by="accent", cluster="speaker", cache_dir=False, progress=True)
    err = capsys.readouterr().err
    assert "4/4 shards" in err and "examples/s" in err and " MB" in err
    audit(shards, by="accent", cluster="speaker", cache_dir=False, progress=False)
    assert capsys.readouterr().err == ""


def test_progress_is_off_in_ci_and_with_quiet(monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert not _stream.progress_enabled(False)
    monkeypatch.setenv("CI", "")
    assert _stream.progress_enabled(False) and not _stream.progress_enabled(True)


def test_reduction_folds_shards_in_order():
    keys = ["k"]
    acc = _stream._Accumulator(keys)
    frames = {i: pd.DataFrame({"k": [f"c{i}", "c0"], "__count": [1.0, 2.0]}) for i in range(5)}
    for i in (3, 1, 0, 4, 2):
        acc.add(i, frames[i])
    out = acc.result()
    assert out["k"].tolist() == ["c0", "c1", "c2", "c3", "c4"]
    assert out["__count"].tolist() == [1.0 + 2.0 * 5, 1.0, 1.0, 1.0, 1.0]


# ---------------------------------------------------------------------------------------
# Bad input: one paragraph naming the file, no traceback, exit 2 from the command line.


def _run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``groupwise audit ARGS`` as a real process."""
    return subprocess.run(
        [sys.executable, "-m", "groupwise", "audit", *args], capture_output=True, text=True, timeout=600,
        env={**os.environ, "CI": "true", **(env or {})},
    )


@pytest.fixture
def cli(monkeypatch, capsys):
    """The command line's entry point in this process (what the program runs, without its start-up)."""
    from groupwise.cli import main

    monkeypatch.setenv("CI", "true")

    def run(*args: str) -> subprocess.CompletedProcess:
        monkeypatch.setattr(sys, "argv", ["groupwise", *args])
        with pytest.raises(SystemExit) as info:
            main()
        out = capsys.readouterr()
        return subprocess.CompletedProcess(args, info.value.code or 0, out.out, out.err)

    return run


def test_cli_bad_shards(table, tmp_path, cli):
    folder = tmp_path / "data"
    folder.mkdir()
    table.iloc[:3000].to_parquet(folder / "a.parquet")
    other = table.iloc[3000:].copy()
    other["accent"] = other["accent"].map({"us": 1, "uk": 2, "in": 3, "ng": 4})
    other.to_parquet(folder / "b.parquet")
    out = cli("audit", str(folder), "--by", "accent", "--cluster", "speaker", "--no-cache")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "b.parquet" in out.stderr and "'accent'" in out.stderr and "int64" in out.stderr

    table.iloc[3000:].drop(columns=["noise"]).to_parquet(folder / "b.parquet")
    out = cli("audit", str(folder), "--by", "noise", "--cluster", "speaker", "--no-cache")
    assert out.returncode == 2 and "b.parquet" in out.stderr and "no column 'noise'" in out.stderr

    out = cli("audit", str(tmp_path / "nothing" / "*.parquet"), "--by", "accent", "--cluster", "speaker")
    assert out.returncode == 2 and "matches no file" in out.stderr

    (tmp_path / "empty").mkdir()
    out = cli("audit", str(tmp_path / "empty"), "--by", "accent", "--cluster", "speaker")
    assert out.returncode == 2 and "holds no Parquet files" in out.stderr

    # As a real process: one paragraph on standard error, exit status 2, no traceback.
    (folder / "b.parquet").write_bytes((folder / "a.parquet").read_bytes()[:500])
    out = _run_cli(str(folder), "--by", "accent", "--cluster", "speaker", "--no-cache")
    assert out.returncode == 2 and "b.parquet" in out.stderr and "truncated or corrupt" in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_cli_several_files_json_and_quiet(table, shards, tmp_path):
    files = sorted(str(f) for f in shards.glob("*.parquet"))
    out = _run_cli(*files, "--by", "accent", "--cluster", "speaker", "--json", str(tmp_path / "a.json"),
                   "--cache-dir", str(tmp_path / "c"), "--quiet", env={"CI": ""})
    assert out.returncode == 0, out.stderr
    assert out.stdout == "" and out.stderr == ""
    got = json.loads((tmp_path / "a.json").read_text())
    assert got["settings"]["stream"]["shards"] == 4
    expected = audit(table, by="accent", cluster="speaker")
    assert [g["value"] for g in got["groups"]] == [g["value"] for g in expected.groups]


def test_sharded_needs_a_cluster_and_no_adjust(shards):
    with pytest.raises(InputError, match="--cluster"):
        audit(shards, by="accent")
    with pytest.raises(InputError, match="--adjust"):
        audit(shards, by="accent", cluster="speaker", adjust="snr_db")
    with pytest.raises(InputError, match="engine"):
        audit(shards, by="accent", cluster="speaker", engine="spark")


def test_a_non_parquet_file_in_a_list(tmp_path, shards):
    (tmp_path / "x.csv").write_text("a\n1\n")
    with pytest.raises(GroupwiseError, match="not a Parquet file"):
        audit([str(next(shards.glob("*.parquet"))), str(tmp_path / "x.csv")], by="accent", cluster="speaker")


# ---------------------------------------------------------------------------------------
# Ray: a local cluster of two workers started as users start one, with `ray start`.


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if text.encode() in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


@pytest.fixture(scope="module")
def ray_cluster():
    """A loopback Ray cluster of its own, as users start one, stopped without touching any other.

    Its own temporary folder keeps ``ray.init()`` elsewhere (tests running beside this one)
    from finding it, and at the end only its own processes are stopped: ``ray stop`` would
    end every Ray on the machine.
    """
    pytest.importorskip("ray")
    ray_bin = Path(sys.executable).with_name("ray")
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="gwray")  # short: Ray's socket paths live under it
    # A loopback-only test cluster: no token authentication on either side.
    saved = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    start = subprocess.run(
        [str(ray_bin), "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
         "--node-ip-address=127.0.0.1", "--disable-usage-stats", f"--temp-dir={temp}"],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert start.returncode == 0, start.stdout + start.stderr
    try:
        yield f"127.0.0.1:{port}"
    finally:
        import ray

        ray.shutdown()
        for pid in _processes_mentioning(temp) + _processes_mentioning(f"--gcs-address=127.0.0.1:{port}"):
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        time.sleep(1.0)
        for pid in _processes_mentioning(temp):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(temp, ignore_errors=True)
        if saved is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = saved


def test_ray_engine_gives_the_local_numbers(table, shards, tmp_path, ray_cluster):
    import ray

    kwargs = {**FAMILIES, "compare": "complement"}
    local = audit(shards, cache_dir=False, **kwargs)
    on_ray = audit(shards, engine="ray", ray_address=ray_cluster, cache_dir=tmp_path / "cache", **kwargs)
    pd.testing.assert_frame_equal(local.to_frame(), on_ray.to_frame())
    assert on_ray.settings["stream"]["engine"] == "ray"
    assert len(list((tmp_path / "cache").glob("*.sums"))) == 4
    assert not ray.is_initialized()  # the connection made for the run ended with it
    # A connection the caller made is used and kept; the cluster has its two CPUs.
    ray.init(address=ray_cluster, log_to_driver=False)
    again = audit(shards, engine="ray", cache_dir=False, **kwargs)
    pd.testing.assert_frame_equal(local.to_frame(), again.to_frame())
    assert ray.is_initialized() and ray.cluster_resources().get("CPU") == 2
    # A data error inside a worker is one paragraph naming the shard, as on the local engine.
    bad = tmp_path / "bad"
    bad.mkdir()
    chunk = table.iloc[:500].copy()
    chunk.loc[chunk.index[7], "reference"] = None
    chunk.to_parquet(bad / "p.parquet")
    table.iloc[500:1000].to_parquet(bad / "q.parquet")
    with pytest.raises(InputError) as info:
        audit(bad, by="accent", cluster="speaker", engine="ray", ray_address=ray_cluster, cache_dir=tmp_path / "c2")
    assert "p.parquet" in str(info.value) and "Rows: 7" in str(info.value)
    assert len(list((tmp_path / "c2").glob("*.sums"))) == 1  # the good shard was kept for the rerun


def _kill_first_reducer(stop: threading.Event, killed: list[int], port: str) -> None:
    """SIGKILL the first worker of the cluster at ``port`` seen reducing a shard (``ray::MapBatches(...)``)."""
    while not stop.is_set() and not killed:
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                title = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if b"MapBatches" in title and b"_Reducer" in title:
                try:  # a worker of this cluster: its parent is the cluster's raylet
                    parent = (proc / "stat").read_text().rsplit(")", 1)[1].split()[1]
                    if port.encode() not in Path(f"/proc/{parent}/cmdline").read_bytes():
                        continue
                except (OSError, IndexError):
                    continue
                try:
                    os.kill(int(proc.name), signal.SIGKILL)
                except OSError:
                    continue
                killed.append(int(proc.name))
                return
        time.sleep(0.01)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds Ray's worker processes through /proc")
def test_a_worker_killed_mid_run_is_replaced_and_the_numbers_do_not_change(tmp_path, ray_cluster):
    """A Ray worker that dies while reducing a shard is replaced; the shard is reduced again."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
    rng = np.random.default_rng(11)
    n = 40_000
    words = np.array("the a cat dog sat ran on in mat hat red blue big small one two".split())
    ref = [" ".join(rng.choice(words, 12)) for _ in range(n)]
    hyp = [r if rng.random() < 0.5 else r.replace("cat", "hat").replace(" on", "") for r in ref]
    big = pd.DataFrame({"reference": ref, "hypothesis": hyp, "speaker": rng.integers(0, 200, n).astype(str),
                        "accent": np.array(list("abcd"))[rng.integers(0, 4, n)]})
    folder = tmp_path / "shards"
    folder.mkdir()
    for i in range(6):
        big.iloc[i * n // 6:(i + 1) * n // 6].to_parquet(folder / f"part-{i}.parquet")
    local = audit(big, by="accent", cluster="speaker")
    stop, killed = threading.Event(), []
    watcher = threading.Thread(target=_kill_first_reducer, args=(stop, killed, ray_cluster.rsplit(":", 1)[1]), daemon=True)
    watcher.start()
    try:
        on_ray = audit(folder, by="accent", cluster="speaker", engine="ray", ray_address=ray_cluster,
                       cache_dir=tmp_path / "cache")
    finally:
        stop.set()
        watcher.join()
    assert killed, "no reducing worker was seen to kill"
    pd.testing.assert_frame_equal(local.to_frame(), on_ray.to_frame())
    assert len(list((tmp_path / "cache").glob("*.sums"))) == 6


def test_ray_address_that_does_not_answer(shards):
    pytest.importorskip("ray")
    out = _run_cli(str(shards), "--by", "accent", "--cluster", "speaker", "--engine", "ray",
                   "--ray-address", f"127.0.0.1:{_free_port()}", "--no-cache")
    assert out.returncode == 2 and "nothing answers" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("metric", ["auto", None])
def test_coverage_of_shards_equals_in_memory(table, shards, metric):
    from groupwise.audit._coverage import coverage

    kwargs = {"dims": "accent,noise", "cluster": "speaker", "metric": metric, "target_half_width": 0.02, "strength": 2}
    expected = coverage(table, **kwargs)
    got = coverage(shards, cache_dir=False, **kwargs)
    pd.testing.assert_frame_equal(expected.to_frame(), got.to_frame())
    assert got.covering == expected.covering
    assert got.settings["stream"]["examples"] == len(table)
    with pytest.raises(InputError, match="--cluster"):
        coverage(shards, dims="accent", metric=metric)


def test_cli_coverage_of_a_glob(shards, tmp_path, cli):
    out = cli("coverage", str(shards / "*.parquet"), "--dims", "accent,noise", "--cluster", "speaker", "--no-cache",
              "--json", str(tmp_path / "c.json"))
    assert out.returncode == 0, out.stderr
    cells = json.loads((tmp_path / "c.json").read_text())["cells"]
    assert len(cells) == 12 and sum(c["n"] for c in cells) == 6000


@pytest.fixture(scope="module")
def paired(tmp_path_factory):
    """Two systems on the same utterances, sharded by utterance (each item's rows in one shard)."""
    rng = np.random.default_rng(5)
    n = 4000
    spk = rng.integers(0, 120, n)
    base = pd.DataFrame({"utt": [f"u{i:05d}" for i in range(n)], "spk": [f"s{s}" for s in spk],
                         "accent": np.array(list("abcd"))[spk % 4], "words": rng.integers(4, 12, n)})
    a = base.assign(system="a", errors=rng.poisson(1.0, n))
    b = base.assign(system="b", errors=rng.poisson(np.where(base["accent"] == "d", 1.8, 1.2), n))
    df = pd.concat([a, b]).sort_values("utt", kind="stable").reset_index(drop=True)
    folder = tmp_path_factory.mktemp("paired")
    for i, chunk in enumerate(np.array_split(df["utt"].unique(), 3)):
        df[df["utt"].isin(chunk)].to_parquet(folder / f"p{i}.parquet")
    return df, folder


PAIRED = dict(condition="system", baseline="a", by="accent", cluster="spk", item="utt", metric="ratio", num="errors",
              den="words")


def test_paired_comparison_of_shards_equals_in_memory(paired, tmp_path):
    from groupwise.audit._compare import compare

    df, folder = paired
    expected = compare(df, **PAIRED)
    got = compare(folder, cache_dir=False, **PAIRED)
    pd.testing.assert_frame_equal(expected.to_frame(), got.to_frame())
    assert any(g["flagged"] for g in got.conditions[0]["groups"])
    assert got.settings["stream"]["examples"] == len(df)


def test_paired_shards_pair_items_within_a_shard(paired, tmp_path):
    from groupwise.audit._compare import compare

    df, _ = paired
    folder = tmp_path / "split"
    folder.mkdir()
    # One utterance's rows spread over two shards, another's system b missing.
    moved = df["utt"] == "u00010"
    df[~moved & (df["utt"] != "u00020")].to_parquet(folder / "p0.parquet")
    pd.concat([df[moved & (df["system"] == "a")], df[(df["utt"] == "u00020") & (df["system"] == "a")]]).to_parquet(folder / "p1.parquet")
    df[moved & (df["system"] == "b")].to_parquet(folder / "p2.parquet")
    with pytest.raises(InputError, match="pairs are made within a shard") as info:
        compare(folder, cache_dir=False, **PAIRED)
    assert "p1.parquet" in str(info.value)
    dropped = compare(folder, cache_dir=False, drop_unpaired=True, **PAIRED)
    assert dropped.settings["items_not_in_every_condition"] == 3  # u00010 in p1 and in p2, u00020 in p1
    kept = df[~df["utt"].isin(["u00010", "u00020"])]
    pd.testing.assert_frame_equal(compare(kept, **PAIRED).to_frame(), dropped.to_frame())


def test_cli_compare_of_shards(paired, tmp_path, cli):
    _, folder = paired
    out = cli("compare", str(folder), "--condition", "system", "--baseline", "a", "--by", "accent", "--cluster", "spk",
              "--item", "utt", "--metric", "ratio", "--num", "errors", "--den", "words", "--no-cache",
              "--json", str(tmp_path / "c.json"))
    assert out.returncode == 0, out.stderr
    got = json.loads((tmp_path / "c.json").read_text())
    assert got["settings"]["stream"]["shards"] == 3


def test_hive_partitioned_folders_as_spark_and_pyarrow_write_them(table, tmp_path):
    folder = tmp_path / "hive"
    table.to_parquet(folder, partition_cols=["noise", "system"])  # noise=clean/system=a/....parquet
    (folder / "_SUCCESS").write_text("")
    (folder / "_temporary").mkdir()
    table.iloc[:50].to_parquet(folder / "_temporary" / "half-written.parquet")  # not data
    (folder / ".hidden.parquet").write_bytes(b"not parquet")
    back = pd.read_parquet(folder).astype({"noise": str, "system": str})  # pyarrow's own reading, as text
    kwargs = {"by": ["accent", "noise", "accent,noise"], "within": "system", "cluster": "speaker"}
    got = audit(folder, cache_dir=False, **kwargs)
    pd.testing.assert_frame_equal(audit(back, **kwargs).to_frame(), got.to_frame())
    assert got.settings["stream"]["shards"] == 6 and got.settings["stream"]["examples"] == len(table)


def test_hive_keys_of_whole_numbers_are_integers(tmp_path):
    parts = _stream.hive_partitions([Path("e/year=2024/site=a%2Fb/x.parquet"), Path("e/year=__HIVE_DEFAULT_PARTITION__/site=c/y.parquet")])
    assert parts == [{"year": 2024, "site": "a/b"}, {"year": None, "site": "c"}]


def test_a_shard_listed_twice_is_refused(shards):
    first = str(next(shards.glob("*.parquet")))
    with pytest.raises(InputError, match="listed twice"):
        audit([first, first.replace("/", "//")], by="accent", cluster="speaker")


def test_cluster_failures_are_told_from_bugs():
    ray = pytest.importorskip("ray")
    from groupwise.audit._ray import _is_ray_failure

    crashed = ray.exceptions.WorkerCrashedError()
    wrapped = RuntimeError("task failed")
    wrapped.__cause__ = crashed
    assert _is_ray_failure(ray, crashed) and _is_ray_failure(ray, wrapped)
    assert _is_ray_failure(ray, ConnectionError("GCS unreachable"))
    assert not _is_ray_failure(ray, ValueError("a bug in the batch function"))
