"""Turning scikit-learn models the platform trains into ONNX files (data, not code)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any


def to_onnx_file(estimator: Any, n_features: int, path: str | Path) -> Path:
    """Export a fitted scikit-learn estimator taking the ``X`` matrix to an ONNX file.

    Classifiers export their label output first (no ZipMap), so the bounty reads class
    indices; regressors export their prediction.
    """
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    options = {id(estimator): {"zipmap": False}} if hasattr(estimator, "predict_proba") else None
    with warnings.catch_warnings():
        # skl2onnx may warn that a newer scikit-learn than it was tested with is in use;
        # the exported graph is checked by running it, so that notice is only noise here.
        warnings.simplefilter("ignore", UserWarning)
        onx = to_onnx(
            estimator,
            initial_types=[("X", FloatTensorType([None, n_features]))],
            target_opset={"": 17, "ai.onnx.ml": 3},
            options=options,
        )
    path = Path(path)
    path.write_bytes(onx.SerializeToString())
    return path
