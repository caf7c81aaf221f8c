"""The naive way to compute the same window statistics, as the seed projects do.

For every mood update it takes the last ``context_s`` seconds of audio and calls the
librosa feature functions on it with their defaults (``center=True``, a new spectrogram
per call, tuning estimated for chroma, onset strength and tempo recomputed). It exists
only as the baseline that ``tools/bench.py`` compares the streaming extractor with.
"""

from __future__ import annotations

import librosa
import numpy as np


def naive_window_features(y: np.ndarray, *, sr: int = 22050, context_s: float = 10.0,
                          update_hz: float = 2.0, min_context_s: float = 1.0) -> np.ndarray:
    """(n_updates, n_features) from per-window librosa calls; same update instants."""
    hop = sr / update_hz
    ctx = int(context_s * sr)
    rows = []
    k = 1
    while (end := int(round(k * hop))) <= y.size:
        k += 1
        if end < min_context_s * sr:
            continue
        w = y[max(0, end - ctx):end]
        feats = [
            librosa.feature.mfcc(y=w, sr=sr, n_mfcc=20),
            librosa.feature.spectral_contrast(y=w, sr=sr),
            librosa.feature.spectral_centroid(y=w, sr=sr),
            librosa.feature.spectral_bandwidth(y=w, sr=sr),
            librosa.feature.spectral_rolloff(y=w, sr=sr),
            librosa.feature.spectral_flatness(y=w),
            librosa.feature.rms(y=w),
            librosa.feature.zero_crossing_rate(y=w),
            librosa.onset.onset_strength(y=w, sr=sr)[None, :],
        ]
        f = np.vstack(feats)
        chroma = librosa.feature.chroma_stft(y=w, sr=sr)
        tempo = librosa.feature.tempo(y=w, sr=sr)
        rows.append(np.concatenate([f.mean(axis=1), f.std(axis=1), f[:, -130:].mean(axis=1),
                                    chroma.mean(axis=1), np.atleast_1d(tempo)]))
    return np.array(rows)
