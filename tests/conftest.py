"""Shared fixtures: generated audio (no dataset files) and a tiny trained model."""

from __future__ import annotations

import numpy as np
import pytest

SR = 22050


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
