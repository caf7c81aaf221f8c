"""Shared fixtures: generated audio (no dataset files) and a tiny trained model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SR = 22050
ROOT = Path(__file__).resolve().parent.parent


def run_moodtrack(model, *args, timeout: float = 120, cwd=None) -> subprocess.CompletedProcess:
    """``python -m realtime ARGS`` as a real process using ``model`` ($MOODTRACK_MODEL),
    stdin closed, output captured as text; run in ``cwd`` (default: the repository)."""
    return subprocess.run([sys.executable, "-m", "realtime", *map(str, args)],
                          cwd=cwd or ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "MOODTRACK_MODEL": str(model),
                               "PYTHONPATH": str(ROOT)}, stdin=subprocess.DEVNULL)


def tone_mix(seconds: float, *, sr: int = SR, seed: int = 0) -> np.ndarray:
    """A deterministic test signal: a chord whose loudness and timbre change, plus clicks."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    y = 0.2 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 277.2 * t)
    y += 0.1 * np.sin(2 * np.pi * 329.6 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.1 * t))
    clicks = np.zeros_like(t)
    clicks[:: sr // 2] = 0.8  # 120 BPM pulse
    y += np.convolve(clicks, np.exp(-np.arange(400) / 60.0), mode="full")[: t.size] * 0.5
    y += 0.01 * rng.standard_normal(t.size)
    return y.astype(np.float32)


@pytest.fixture(scope="session")
def signal_30s() -> np.ndarray:
    return tone_mix(30.0)


def train_tiny_model(path, *, seed: int = 0):
    """Fit a ridge model on features of generated audio and export it like the real one.

    Targets are synthetic (arousal follows loudness, valence follows mode) so the
    exported model's outputs move with the input; what is tested is the plumbing.
    """
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from realtime.features import FEATURE_NAMES, FeatureExtractor, extract
    from tools.onnx_export import export_model

    xs, ys = [], []
    for k, gain in enumerate((0.02, 0.1, 0.5)):
        _, f, _ = extract(tone_mix(8.0, seed=seed + k) * gain)
        xs.append(f)
        i_rms, i_mode = FEATURE_NAMES.index("rms_db_mean"), FEATURE_NAMES.index("mode")
        ys.append(np.c_[np.tanh(f[:, i_mode] * 3), np.tanh(f[:, i_rms] + 2.0)])
    model = make_pipeline(StandardScaler(), Ridge(alpha=10.0)).fit(np.vstack(xs), np.vstack(ys))
    return export_model(model, path=path, extractor_spec=FeatureExtractor().spec(),
                        output_scale=(1.0, 1.0), residual_std=(0.3, 0.3),
                        name="tiny-test", version="0")


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory):
    return train_tiny_model(tmp_path_factory.mktemp("model") / "tiny.onnx")
