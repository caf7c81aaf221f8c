"""The precomputed analysis matrices and numpy spectral formulas equal librosa's."""

import librosa
import numpy as np
import pytest

from realtime import filterbanks
from realtime.features import FeatureExtractor, spectral_shape
from tests.conftest import SR, tone_mix


def _shipped_params():
    from realtime.embedding import CHROMA_FRONT_END, CHROMA_N_MELS, FRONT_END

    ex = FeatureExtractor.__init__.__kwdefaults__
    return [dict(sample_rate=ex["sample_rate"], n_fft=ex["n_fft"], n_mels=ex["n_mels"], fmin=30.0),
            dict(sample_rate=FRONT_END["sample_rate"], n_fft=FRONT_END["n_fft"], n_mels=FRONT_END["n_mels"], fmin=0.0),
            dict(sample_rate=CHROMA_FRONT_END["sample_rate"], n_fft=CHROMA_FRONT_END["n_fft"], n_mels=CHROMA_N_MELS,
                 fmin=0.0)]


@pytest.mark.parametrize("which", [0, 1, 2])
def test_precomputed_filterbanks_equal_librosa(which):
    params = _shipped_params()[which]
    path = filterbanks.PRECOMPUTED_SETS[which]
    assert path.is_file(), "run: python -m realtime.filterbanks"
    with np.load(path) as data:  # the set made for exactly these parameters
        assert data["params"].tolist() == [float(params[k]) for k in ("sample_rate", "n_fft", "n_mels", "fmin")]
    shipped = filterbanks.load(**params)
    fresh = filterbanks.compute(**params)
    assert shipped.keys() == fresh.keys()
    for k in fresh:
        # Recomputed by librosa/numpy/scipy, whose rounding moves between releases
        # (about 1e-12 relative): equal within float32 resolution, not bit for bit.
        np.testing.assert_allclose(shipped[k], fresh[k], rtol=1e-6, atol=1e-9, err_msg=k)


def test_other_configurations_are_computed_not_taken_from_the_file():
    mats = filterbanks.load(sample_rate=16000, n_fft=1024, n_mels=40, fmin=30.0)
    assert mats["mel"].shape == (40, 513)
    np.testing.assert_allclose(mats["freqs"][-1], 8000.0)


def test_spectral_shape_matches_librosa():
    y = tone_mix(3.0)
    S = np.abs(librosa.stft(y, n_fft=2048, hop_length=512, center=False)).astype(np.float32)
    S[:, 3:6] = 0.0  # silent frames too
    freqs = librosa.fft_frequencies(sr=SR, n_fft=2048)
    centroid, bandwidth, rolloff, flatness = spectral_shape(S.T, freqs)
    np.testing.assert_allclose(centroid, librosa.feature.spectral_centroid(S=S, sr=SR)[0],
                               rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(bandwidth, librosa.feature.spectral_bandwidth(S=S, sr=SR)[0],
                               rtol=1e-5, atol=1e-3)
    # The roll-off is a bin frequency: the same bin, or (a cumulative sum at the threshold
    # rounding the other way in another numpy/librosa release) the next one.
    lib_rolloff = librosa.feature.spectral_rolloff(S=S, sr=SR)[0]
    np.testing.assert_allclose(rolloff, lib_rolloff, rtol=0, atol=freqs[1] * 1.001)
    assert np.mean(rolloff == lib_rolloff) >= 0.95
    np.testing.assert_allclose(flatness, librosa.feature.spectral_flatness(S=S)[0], rtol=1e-4)


def test_runtime_extraction_does_not_import_librosa():
    import subprocess
    import sys

    code = ("import sys, numpy as np; from realtime.features import extract; "
            "extract(np.random.default_rng(0).standard_normal(30000).astype('float32')); "
            "print('librosa' in sys.modules, 'numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
