"""The extractor's fixed analysis matrices: Hann window, mel and chroma filterbanks.

They come from librosa. For the shipped model's configuration they are precomputed into
``realtime/data/filterbanks.npz`` (``python -m realtime.filterbanks`` rewrites it; a test
checks it equals librosa's output), so live start-up does not import librosa, numba and
scipy.signal. Any other configuration is computed with librosa on the spot.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

PRECOMPUTED = Path(__file__).resolve().parent / "data" / "filterbanks.npz"
#: Every precomputed set: the hand-made extractor's (22.05 kHz), the embedding
#: front end's (16 kHz) and the chroma front end's (16 kHz, 4096-point; see :mod:`realtime.embedding`).
PRECOMPUTED_SETS = (PRECOMPUTED, PRECOMPUTED.with_name("filterbanks_16k.npz"),
                    PRECOMPUTED.with_name("filterbanks_16k_chroma.npz"))
_KEYS = ("sample_rate", "n_fft", "n_mels", "fmin")


def compute(*, sample_rate: int, n_fft: int, n_mels: int, fmin: float) -> dict[str, np.ndarray]:
    """window (n_fft,), mel (n_mels, bins), chroma (12, bins), freqs (bins,) in Hz and
    mel_centres (n_mels,) in Hz, from librosa (``fmax`` is Nyquist, chroma tuning 0)."""
    import librosa

    sr = sample_rate
    return {
        "window": librosa.filters.get_window("hann", n_fft, fftbins=True).astype(np.float32),
        "mel": librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin,
                                   fmax=sr / 2).astype(np.float32),
        "chroma": librosa.filters.chroma(sr=sr, n_fft=n_fft, tuning=0.0).astype(np.float32),
        "freqs": librosa.fft_frequencies(sr=sr, n_fft=n_fft),
        "mel_centres": librosa.mel_frequencies(n_mels=n_mels + 2, fmin=fmin, fmax=sr / 2)[1:-1],
    }


def load(*, sample_rate: int, n_fft: int, n_mels: int, fmin: float) -> dict[str, np.ndarray]:
    """The precomputed matrices when they were made for these parameters, else :func:`compute`.

    Loaded once per process and parameter set (a library run builds a front end per file);
    the arrays are read-only.
    """
    return dict(_load(float(sample_rate), float(n_fft), float(n_mels), float(fmin)))


@functools.lru_cache(maxsize=8)
def _load(sample_rate: float, n_fft: float, n_mels: float, fmin: float) -> dict[str, np.ndarray]:
    mats = _read(sample_rate=int(sample_rate), n_fft=int(n_fft), n_mels=int(n_mels), fmin=fmin)
    for a in mats.values():
        a.flags.writeable = False
    return mats


def _read(*, sample_rate: int, n_fft: int, n_mels: int, fmin: float) -> dict[str, np.ndarray]:
    params = (sample_rate, n_fft, n_mels, fmin)
    for path in PRECOMPUTED_SETS:
        if path.is_file():
            with np.load(path) as data:
                if tuple(float(x) for x in data["params"]) == tuple(float(p) for p in params):
                    return {k: data[k] for k in data.files if k != "params"}
    return compute(sample_rate=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin)


def write(path: Path = PRECOMPUTED, **params) -> Path:
    """Precompute the matrices for ``params`` (the extractor's defaults if none)."""
    from realtime.features import FeatureExtractor

    ex = FeatureExtractor.__init__.__kwdefaults__
    params = {"sample_rate": ex["sample_rate"], "n_fft": ex["n_fft"], "n_mels": ex["n_mels"],
              "fmin": 30.0, **params}
    mats = compute(**params)
    np.savez_compressed(path, params=np.array([params[k] for k in _KEYS], dtype=np.float64),
                        **mats)
    return path


if __name__ == "__main__":
    print(write())
    from realtime.embedding import FRONT_END

    print(write(PRECOMPUTED_SETS[1], fmin=0.0, **{k: FRONT_END[k] for k in ("sample_rate", "n_fft", "n_mels")}))
    from realtime.embedding import CHROMA_FRONT_END, CHROMA_N_MELS

    print(write(PRECOMPUTED_SETS[2], fmin=0.0, n_mels=CHROMA_N_MELS,
                **{k: CHROMA_FRONT_END[k] for k in ("sample_rate", "n_fft")}))
