"""Schema, loss, pointer decision list, checker, log, replay, bundles and repairs."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from groupwise import GroupwiseError, InputError
from groupwise.bounty import GroupRef, Node, Program, Schema, load_bundle, parse_loss
from groupwise.bounty._checker import CheckerState, decide, first_repair
from groupwise.bounty._pdl import assemble

from bounty_helpers import EPS, base_program, models, program, synthetic  # noqa: F401 - fixtures


def test_schema_validation_names_the_fault():
    frame = synthetic(50)
    schema = Schema.infer(frame, target="y", features=["u", "v", "c"], task="classification")
    bad = frame.copy()
    bad.loc[3, "c"] = "purple"
    with pytest.raises(InputError, match="'purple'.*Fix: use only the values 'blue', 'green', 'red'"):
        schema.validate(bad)
    with pytest.raises(InputError, match="lacks the column"):
        schema.validate(frame.drop(columns="u"))
    text = frame.astype({"u": str})
    text.loc[0, "u"] = "abc"
    with pytest.raises(InputError, match="holds text"):
        schema.validate(text)
    assert Schema.from_dict(json.loads(json.dumps(schema.to_dict()))) == schema


def test_losses_are_bounded():
    assert parse_loss("squared:bound=2", task="regression")([0, 0], [1, 9]).tolist() == [0.25, 1.0]
    with pytest.raises(InputError):
        parse_loss("squared", task="classification")
    with pytest.raises(InputError):
        parse_loss("absolute:bound=-1", task="regression")


def test_checker_rules():
    state = CheckerState(0.1, max_queries=2)
    assert decide(state, 0.075)[0] and not decide(state, 0.0749)[0]
    _, state = decide(state, 0.0)
    _, state = decide(state, 0.0)
    assert state.exhausted and "holdout exhausted: refresh it" in state.status
    with pytest.raises(GroupwiseError, match="holdout exhausted"):
        decide(state, 1.0)
    # The budget ends in the middle of a repair scan: no repair, budget used up.
    pair, after = first_repair(CheckerState(0.1, max_queries=2), np.array([[0.0, 0.0, 0.5]]))
    assert pair is None and after.queries == 2


def test_create_warns_when_the_holdout_is_small(tmp_path, models):

    with pytest.warns(UserWarning, match="fewer than the .* that the guarantees"):
        Program.create(tmp_path / "p", synthetic(800), target="y", epsilon=0.1, base_model=models["zero"])


def test_repair_with_back_pointer_is_accepted(program, models):
    first = program.submit(team="a", group="u > 0.5", model=models["u"])
    assert first.accepted and first.version_after == 1 and first.repairs == 0
    # h2 is right on v > 0.8 but wrong on u > 0.5 and 0.7 < v <= 0.8: better on its group,
    # worse on the earlier group u > 0.5, which the repair gives back to version 1.
    second = program.submit(team="b", group="v > 0.7", model=models["v"])
    assert second.accepted and second.repairs == 1 and second.version_after == 3
    repair = program.pdl.nodes[-1]
    assert repair.kind == "repair" and repair.pointer == 1 and repair.group == GroupRef(expr="u > 0.5")
    assert program.test_loss() < 0.02 < program.test_loss(2)
    # The repaired list is at least as good as each earlier version on each group (holdout).
    losses = program.holdout_group_losses()
    for group, table in losses.groupby("group"):
        assert table["loss"].iloc[-1] <= table["loss"].min() + EPS / table["mu"].iloc[0]


def test_log_load_and_replay_reproduce_the_state(program, models):
    program.submit(team="a", group="u > 0.5", model=models["u"])
    program.submit(team="b", group="v > 0.7", model=models["v"])
    program.submit(team="c", group="c == 'red'", model=models["zero"])
    reloaded = Program.load(program.root)
    assert reloaded.pdl == program.pdl and reloaded.state == program.state
    assert reloaded.replay() == []
    lines = (program.root / "log.jsonl").read_text().splitlines()
    assert [json.loads(x)["type"] for x in lines] == ["init", "submission", "submission", "submission"]
    # No holdout number is recorded where submitters could see it.
    fields = {k for x in lines for k in json.loads(x)} | {k for x in lines for k in json.loads(x).get("public", {})}
    assert not [k for k in fields if "holdout" in k or "score" in k]
    # Tampering with a decision is caught.
    records = [json.loads(x) for x in lines]
    records[3]["decision"] = "accepted"
    (program.root / "log.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    assert any("s00003" in p for p in Program.load(program.root).replay())


def test_budget_exhaustion_is_a_clear_state(base_program, tmp_path, models):
    from bounty_helpers import make_program

    program = make_program(tmp_path / "p", models, max_queries=2)
    program.submit(team="a", group="c == 'red'", model=models["zero"])
    program.submit(team="a", group="c == 'blue'", model=models["zero"])
    result = program.submit(team="a", group="u > 0.5", model=models["u"])
    assert not result.accepted and result.reason_kind == "exhausted"
    assert result.reason.startswith("holdout exhausted: refresh it")
    assert program.status()["holdout"].startswith("holdout exhausted")
    assert program.version == 0


def test_pdl_vectorised_predict_matches_the_versions(program, models):
    program.submit(team="a", group="u > 0.5", model=models["u"])
    program.submit(team="b", group="v > 0.7", model=models["v"])
    frame = program.frame("test")
    nodes = program.pdl.nodes
    cached = {i: program._cached(str(n.model), "model", "test") for i, n in enumerate(nodes) if n.model}
    for version in range(program.version + 1):
        got = assemble(
            nodes, version,
            group_mask=lambda i: program._mask(nodes[i].group, "test"),
            model_pred=cached.__getitem__,
            base_pred=lambda: program._cached(program.pdl.base, "model", "test"),
            rows=len(frame),
        )
        np.testing.assert_array_equal(got, program.predict_public("test", version))


def test_bundle_round_trip_in_a_fresh_process(program, models, tmp_path):
    program.submit(team="a", group="u > 0.5", model=models["u"])
    program.submit(team="b", group="v > 0.7", model=models["v"])
    bundle_dir = program.export(tmp_path / "bundle")
    data = tmp_path / "data.csv"
    synthetic(500, seed=9).drop(columns="y").to_csv(data, index=False)
    here = load_bundle(bundle_dir).predict(data)
    code = (
        "import sys; from groupwise.bounty._cli import predict_cmd; "
        "predict_cmd(sys.argv[1], sys.argv[2], out=sys.argv[3])"
    )
    out = tmp_path / "pred.csv"
    subprocess.run([sys.executable, "-c", code, str(bundle_dir), str(data), str(out)], check=True, capture_output=True)
    there = pd.read_csv(out)["predicted_y"].to_numpy()
    np.testing.assert_array_equal(here, there)
    truth = synthetic(500, seed=9)["y"].to_numpy()
    assert (here == truth).mean() > 0.97
    # Older versions are still there: version 0 is the base model.
    old = program.export(tmp_path / "v0", version=0)
    assert (load_bundle(old).predict(data) == "no").mean() > 0.99
    # A tampered model file is refused.
    victim = next((bundle_dir / "models").iterdir())
    victim.write_bytes(victim.read_bytes() + b"x")
    with pytest.raises(InputError, match="does not match the digest"):
        load_bundle(bundle_dir)


def test_cli_functions_run_a_bounty(tmp_path, models):
    from rich.console import Console

    from groupwise.bounty._cli import export_cmd, hunt_cmd, init_cmd, predict_cmd, replay_cmd, status_cmd, submit_cmd

    console = Console(record=True, width=120)
    data = tmp_path / "train.csv"
    synthetic(3000).to_csv(data, index=False)
    directory = tmp_path / "prog"
    init_cmd(directory, data=data, target="y", epsilon=EPS, base_model=str(models["zero"]), console=console)
    assert "warning:" in console.export_text()
    result = submit_cmd(directory, group="u > 0.5", model=models["u"], team="me", console=console)
    assert result.accepted
    hunt_cmd(directory, strategy="tree", budget=2, model="tree", console=console)
    status = status_cmd(directory, console=console)
    assert status["version"] >= 1
    export_cmd(directory, tmp_path / "bundle", console=console)
    frame = predict_cmd(tmp_path / "bundle", data, console=console)
    assert len(frame) == 3000
    assert replay_cmd(directory, console=console) == []
    text = console.export_text()
    assert "Error trajectory" in text and "accepted" in text
