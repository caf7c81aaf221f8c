"""The ONNX model runner: loads, checks metadata, refuses what does not match."""

import numpy as np
import onnx
import pytest

from realtime.errors import MoodtrackError
from realtime.features import extract
from realtime.model import MoodModel
from tests.conftest import tone_mix


def test_tiny_model_loads_and_predicts(tiny_model_path):
    m = MoodModel(tiny_model_path)
    assert m.info.name == "tiny-test"
    assert m.sample_rate == 22050
    _, f, _ = extract(tone_mix(4.0))
    out = m.predict(f)
    assert out.shape == (f.shape[0], 2)
    assert np.isfinite(out).all()
    ex = m.make_extractor(update_hz=5.0)
    assert ex.update_hz == 5.0 and ex.context_s == 10.0


def test_missing_model_names_the_file(tmp_path):
    with pytest.raises(MoodtrackError, match="nope.onnx"):
        MoodModel(tmp_path / "nope.onnx")


def test_corrupt_model_is_refused(tmp_path):
    p = tmp_path / "bad.onnx"
    p.write_bytes(b"\x00not an onnx model")
    with pytest.raises(MoodtrackError, match="not a readable ONNX model"):
        MoodModel(p)


def test_mismatched_feature_spec_is_refused(tiny_model_path, tmp_path):
    m = onnx.load(str(tiny_model_path))
    for prop in m.metadata_props:
        if prop.key == "feature_version":
            prop.value = "mt-feat-0"
    p = tmp_path / "old.onnx"
    onnx.save(m, str(p))
    with pytest.raises(MoodtrackError, match="retrain"):
        MoodModel(p)


def test_model_whose_graph_does_not_match_its_metadata_is_refused(tmp_path):
    from sklearn.linear_model import Ridge

    from realtime.features import FeatureExtractor
    from tools.onnx_export import export_model

    rng = np.random.default_rng(0)
    est = Ridge().fit(rng.standard_normal((20, 3)), rng.standard_normal((20, 2)))
    p = export_model(est, path=tmp_path / "three.onnx", extractor_spec=FeatureExtractor().spec(),
                     output_scale=(1, 1), residual_std=(0.3, 0.3), name="x", version="0",
                     n_features=3)
    with pytest.raises(MoodtrackError, match=r"three.onnx takes .*3\].*retrain"):
        MoodModel(p)
