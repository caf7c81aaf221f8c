"""Export a fitted scikit-learn regressor (features -> valence, arousal) to ONNX with metadata.

The metadata is what :class:`realtime.model.MoodModel` checks before it runs a model:
the extractor spec it was trained with, the output scale, the cross-validated residual
error, and provenance.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import numpy as np
import onnx
from skl2onnx import to_onnx

from realtime.outputs import atomic_write


def _patch_skl2onnx_tree_bools() -> None:
    """skl2onnx 1.20 passes a Python ``bool`` (leaf nodes' missing-value direction) into an
    integer attribute list when converting HistGradientBoosting, which onnx refuses; cast it."""
    from skl2onnx.common import tree_ensemble

    if getattr(tree_ensemble.add_node, "_moodtrack_patched", False):
        return
    orig = tree_ensemble.add_node

    def add_node(*args, nodes_missing_value_tracks_true=0, **kwargs):
        return orig(*args, nodes_missing_value_tracks_true=int(nodes_missing_value_tracks_true), **kwargs)

    add_node._moodtrack_patched = True
    tree_ensemble.add_node = add_node


def export_model(estimator, *, path: str | Path, extractor_spec: dict[str, str],
                 output_scale: tuple[float, float], residual_std: tuple[float, float],
                 name: str, version: str, extra: dict[str, str] | None = None,
                 n_features: int | None = None) -> Path:
    """Convert ``estimator`` (predict: (n, n_features) -> (n, 2)) and write it to ``path``."""
    n = n_features or len(extractor_spec["feature_names"].split(","))
    if hasattr(estimator, "to_onnx"):  # builds its own graph (tools.moodcore.QuadrantHead)
        onx = estimator.to_onnx(n)
    else:
        _patch_skl2onnx_tree_bools()
        onx = to_onnx(estimator, np.zeros((1, n), np.float32), target_opset=17,
                      options={"zipmap": False} if hasattr(estimator, "predict_proba") else None)
    meta = {
        **extractor_spec,
        "output_scale": ",".join(f"{s:.6g}" for s in output_scale),
        "residual_std": ",".join(f"{s:.6g}" for s in residual_std),
        "model_name": name,
        "model_version": version,
        "exported_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **(extra or {}),
    }
    onnx.helper.set_model_props(onx, meta)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, onx.SerializeToString())  # whole or not at all: the runtime may be reading it
    return path
