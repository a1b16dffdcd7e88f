"""Groups are evaluated on the exact feature values everywhere: in the checks, in the
public view and in exported bundles, never on the float32 matrix that models are fed."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from groupwise.bounty import GroupRef, Limits, Program, load_bundle
from groupwise.bounty._export import to_onnx_file


def tenths(n: int = 1500, seed: int = 0) -> pd.DataFrame:
    """x in {0.0, 0.1, ..., 0.9} (so many rows sit exactly on 0.7); y = x >= 0.7."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 10, n) / 10
    z = rng.random(n)
    return pd.DataFrame({"x": x, "z": z, "y": np.where(x >= 0.7, "yes", "no")})


def constant_model(path, label: int):
    from sklearn.tree import DecisionTreeClassifier

    X = np.random.default_rng(1).random((200, 2)).astype(np.float32)
    y = np.full(200, label)
    y[0] = 1 - label  # two classes for the exporter; the tree still predicts `label` almost everywhere
    X[0] = [5.0, 5.0]
    return to_onnx_file(DecisionTreeClassifier(max_depth=1).fit(X, y), 2, path)


def test_groups_on_non_integer_features_select_the_same_rows_everywhere(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the holdout is below the DESIGN.md bound
        program = Program.create(
            tmp_path / "p", tenths(), target="y", epsilon=0.04, base_model=constant_model(tmp_path / "no.onnx", 0),
            test_size=0.3, holdout_size=0.4, min_group_size=20,
            limits=Limits(cpu_seconds=30, memory_mb=3072, wall_seconds=60, max_upload_mb=5),
        )
    test_csv = program.root / "public" / "test.csv.gz"
    exact = pd.read_csv(test_csv)["x"].to_numpy() >= 0.7
    assert float(np.float32(0.7)) < 0.7 and (pd.read_csv(test_csv)["x"] == 0.7).sum() > 20  # rows where float32 disagrees
    mask = program._mask(GroupRef(expr="x >= 0.7"), "test")
    np.testing.assert_array_equal(mask, exact)
    holdout = pd.read_csv(program.root / "private" / "holdout.csv.gz")
    np.testing.assert_array_equal(program._mask(GroupRef(expr="x >= 0.7"), "holdout"), holdout["x"].to_numpy() >= 0.7)
    result = program.submit(team="t", group="x >= 0.7", model=constant_model(tmp_path / "yes.onnx", 1))
    assert result.accepted
    # With exact groups the update is right on every row of the group: public test loss 0.
    assert result.test_loss_after == 0.0 and result.group_test_loss_after == 0.0
    bundle = load_bundle(program.export(tmp_path / "bundle"))
    np.testing.assert_array_equal(bundle.predict(test_csv, labels=False), program.predict_public("test"))
