"""The embedding stage: causal level-normalised log-mel, the shipped network, streaming parity."""

from __future__ import annotations

import numpy as np
import pytest

from realtime.embedding import (EMBEDDING_VERSION, TONAL_WIDTH, ChromaFrontEnd, EmbeddingExtractor,
                                EmbeddingNetwork, LogMelFrontEnd, extract, one_pole, patch_stack,
                                round_to_float16, tonal_features)
from realtime.errors import MoodtrackError
from realtime.model import MoodModel, default_model_path

SR = 16000


def _music(seconds: float, seed: int = 0) -> np.ndarray:
    """Chords of harmonic tones with a pulse: music-like, deterministic."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    y = np.zeros_like(t)
    for k, f0 in enumerate(rng.choice([110.0, 146.8, 196.0, 220.0, 261.6], 3, replace=False)):
        for h in range(1, 6):
            y += np.sin(2 * np.pi * f0 * h * t + k) / h
    y *= 0.5 + 0.5 * (np.sin(2 * np.pi * 2.0 * t) > 0)
    return (0.05 * y + 0.003 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture(scope="module")
def network() -> EmbeddingNetwork:
    model = MoodModel(default_model_path())
    assert model.uses_embedding, "the shipped model is a head on the embedding network"
    return model.network


def test_front_end_matches_librosa_mel_with_the_running_normalisation():
    import librosa
    from scipy.signal import lfilter

    y = _music(6.0)
    fe = LogMelFrontEnd()
    logmel, power = fe.process(y)
    S = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=512, hop_length=256, n_mels=96, center=False).T
    assert logmel.shape == S.shape
    d = np.exp(-1.0 / (fe.norm_tau_s * fe.frames_per_second))
    ref = lfilter([1 - d], [1, -d], power) / (1 - d ** np.arange(1, len(power) + 1))
    gain = 10 ** (fe.norm_db / 10) / np.maximum(ref, 10 ** ((fe.norm_db - fe.max_gain_db) / 10))
    want = np.log10(10000 * (S * gain[:, None]).astype(np.float16).astype(np.float32) + 1)
    np.testing.assert_allclose(logmel, want, atol=2e-3)  # float16 steps, librosa's own FFT
    # The frame power is the mean square of the frame (a sine of amplitude 1 -> 0.5).
    sine = np.sin(2 * np.pi * 1000 * np.arange(SR) / SR).astype(np.float32)
    _, p = LogMelFrontEnd().process(sine)
    np.testing.assert_allclose(p, 0.5, rtol=0.02)


@pytest.mark.parametrize("decay", [0.5, 0.99, 0.9984, 0.99999])
def test_one_pole_is_lfilter_with_state_for_any_block_sizes(decay):
    from scipy.signal import lfilter

    x = np.random.default_rng(1).random(6000) * 10
    out, zi, i = [], np.zeros(1), 0
    for n in (1, 7, 3000, 129, 0, 563, 2300):
        y, zi = one_pole(x[i:i + n], decay, zi)
        out.append(y)
        i += n
    ref, zf = lfilter([1 - decay], [1, -decay], x, zi=np.zeros(1))
    np.testing.assert_allclose(np.concatenate(out), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(zi, zf, rtol=1e-12)


def test_round_to_float16_is_numpys_cast_bit_for_bit():
    rng = np.random.default_rng(2)
    x = (rng.standard_normal(200_000) * np.exp(rng.uniform(-45, 13, 200_000))).astype(np.float32)
    edges = [0.0, -0.0, 65504, 65519.99, 65520, 1e30, np.inf, -np.inf, 2.0 ** -24, 2.0 ** -25,
             3 * 2.0 ** -25, 2.0 ** -14, 2.0 ** -14 * (1 - 2.0 ** -12), 1 + 2.0 ** -11]
    x = np.concatenate([x, np.array(edges, np.float32)])
    with np.errstate(over="ignore"):
        want = x.astype(np.float16).astype(np.float32)
    assert np.array_equal(round_to_float16(x).view(np.uint32), want.view(np.uint32))
    assert np.isnan(round_to_float16(np.array([np.nan], np.float32)))[0]


def test_the_model_path_does_not_import_scipy_signal():
    import subprocess
    import sys

    code = ("import sys, numpy as np; from realtime.model import MoodModel, default_model_path; "
            "m = MoodModel(default_model_path()); "
            "from realtime.embedding import LogMelFrontEnd; LogMelFrontEnd().process(np.ones(16000)); "
            "print('scipy.signal' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr


def test_a_gain_change_does_not_move_the_log_mel():
    y = _music(12.0)
    a, _ = LogMelFrontEnd().process(y)
    for db in (-30.0, -24.0, 6.0):
        b, _ = LogMelFrontEnd().process((y * 10 ** (db / 20)).astype(np.float32))
        assert np.abs(a - b).max() < 0.01, db  # float16 rounding only


def test_quiet_input_is_not_amplified_beyond_max_gain():
    noise = (1e-5 * np.random.default_rng(0).standard_normal(4 * SR)).astype(np.float32)  # -100 dBFS
    fe = LogMelFrontEnd()
    logmel, _ = fe.process(noise)
    loud, _ = LogMelFrontEnd().process(noise * 1000)  # -40 dBFS: normalised in full
    assert logmel.mean() < loud.mean() - 0.5


def test_patch_stack_pads_the_start_with_silence():
    lm = np.arange(20, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    p = patch_stack(lm, np.array([4, 20]), 6)
    assert p.shape == (2, 6, 3)
    assert p[0, :2].sum() == 0 and p[0, 2:, 0].tolist() == [0, 1, 2, 3]
    assert p[1, :, 0].tolist() == list(range(14, 20))


def test_stream_equals_whole_file_with_odd_blocks(network):
    y = _music(9.0, seed=1)
    pools = ("ctx_mean", "short_rel", "ctx_mean_sw", "short_rel_sw", "tonal")
    t, X, level, speech, tags = extract(y, network, pools=pools)
    ex = EmbeddingExtractor(network, pools=pools)
    ups, i, sizes = [], 0, [1, 65, 512, 8193, 3, 40000]
    k = 0
    while i < y.size:
        b = sizes[k % len(sizes)]
        ups += ex.process(y[i:i + b])
        i += b
        k += 1
    assert [u.t for u in ups] == t.tolist()
    np.testing.assert_array_equal(np.stack([u.features for u in ups]), X)
    np.testing.assert_array_equal([u.level_db for u in ups], level)
    np.testing.assert_array_equal([u.speech for u in ups], speech)


def test_updates_are_causal_and_on_the_update_grid(network):
    y = _music(8.0, seed=2)
    t, X, *_ = extract(y, network, update_hz=2.0)
    assert t[0] == 1.0 and np.allclose(np.diff(t), 0.5)
    other = np.concatenate([y[: 5 * SR], _music(3.0, seed=7)])  # same first 5 s, other future
    t2, X2, *_ = extract(other, network, update_hz=2.0)
    n = int(np.sum(t <= 5.0))
    np.testing.assert_array_equal(X[:n], X2[:n])
    assert not np.array_equal(X[n:], X2[n:len(X)])


def test_network_outputs(network):
    assert network.metadata["embedding_version"] == EMBEDDING_VERSION
    assert len(network.tag_names) == 100 and network.tag_names[0].startswith("msd:")
    lm, _ = network.make_front_end().process(_music(4.0))
    emb, tags, speech = network.run(patch_stack(lm, np.array([lm.shape[0]]), network.patch_frames))
    assert emb.shape == (1, network.n_embedding) and np.isfinite(emb).all()
    assert tags.shape == (1, 100) and ((tags >= 0) & (tags <= 1)).all()
    assert 0 <= speech[0] <= 1


def test_network_metadata_is_checked(tmp_path, network):
    import onnx

    m = onnx.load(str(network.path))
    props = {p.key: p.value for p in m.metadata_props}
    for broken in ({"embedding_version": "mt-emb-0"}, {"patch_frames": "x"}, {"sample_rate": "0"}):
        del m.metadata_props[:]
        for k, v in {**props, **broken}.items():
            p = m.metadata_props.add()
            p.key, p.value = k, v
        path = tmp_path / "e.onnx"
        onnx.save(m, str(path))
        with pytest.raises(MoodtrackError, match=str(path)):
            EmbeddingNetwork(path)
    with pytest.raises(MoodtrackError, match="not found"):
        EmbeddingNetwork(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(MoodtrackError, match="not a readable ONNX model"):
        EmbeddingNetwork(tmp_path / "junk.onnx")


def test_head_refuses_another_embedding_network(tmp_path):
    import shutil

    import onnx

    head = default_model_path()
    shutil.copy(head, tmp_path / head.name)
    m = onnx.load(str(MoodModel(head).network.path))
    p = m.metadata_props.add()
    p.key, p.value = "retrained", "yes"  # other bytes -> other hash
    onnx.save(m, str(tmp_path / "embedding.onnx"))
    with pytest.raises(MoodtrackError, match="another embedding network"):
        MoodModel(tmp_path / head.name)


class _SpeechScript:
    """The shipped network, with the speech of patch j set to ``speech[j]``."""

    def __init__(self, network, speech):
        self._net, self.speech, self.calls = network, list(speech), []

    def __getattr__(self, name):
        return getattr(self._net, name)

    def run(self, patches):
        emb, tags, _ = self._net.run(patches)
        s = self.speech[len(self.calls) % len(self.speech)]
        self.calls.append(emb[0].astype(np.float64))
        return emb, tags, np.array([s], np.float32)


def test_speech_weighted_pools_discount_dialogue_patches(network):
    from realtime.embedding import SPEECH_WEIGHT_FLOOR

    y = _music(14.0, seed=2)
    pools = ("ctx_mean", "short_rel", "ctx_mean_sw", "short_rel_sw")
    e = network.n_embedding
    # No speech: the weighted pools are the plain ones.
    quiet = EmbeddingExtractor(_SpeechScript(network, [0.0]), pools=pools).process(y)
    X = np.stack([u.features for u in quiet])
    np.testing.assert_allclose(X[:, 2 * e:3 * e], X[:, :e], rtol=0, atol=1e-6)
    np.testing.assert_allclose(X[:, 3 * e:], X[:, e:2 * e], rtol=0, atol=1e-6)
    # Every other patch all speech: the context mean is (nearly) that of the music patches.
    script = _SpeechScript(network, [0.0, 1.0])
    ex = EmbeddingExtractor(script, pools=pools, context_s=10.0)
    last = ex.process(y)[-1]
    emb = np.stack(script.calls)[-10:]
    w = np.array([1.0 if j % 2 == 0 else SPEECH_WEIGHT_FLOOR for j in range(len(script.calls))])[-10:]
    np.testing.assert_allclose(last.features[2 * e:3 * e], w @ emb / w.sum(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(last.features[2 * e:3 * e], last.features[:e], atol=1e-4)


def test_speech_hold_keeps_the_estimate_while_dialogue_dominates():
    from realtime.mood import MoodEstimator

    est = MoodEstimator(speech_hold=0.5)
    a = est.update(1.0, 0.5, 0.5, -20.0, speech=0.1)
    held = est.update(1.5, -0.5, -0.5, -20.0, speech=0.9)  # a line over the score
    assert (held.valence, held.arousal, held.mood) == (a.valence, a.arousal, a.mood)
    moved = est.update(2.0, -0.5, -0.5, -20.0, speech=0.2)
    assert moved.mood == "melancholic"
    plain = MoodEstimator()  # off by default
    plain.update(1.0, 0.5, 0.5, -20.0, speech=0.1)
    assert plain.update(1.5, -0.5, -0.5, -20.0, speech=0.9).mood == "melancholic"


def test_shipped_model_gives_speech_instruments_and_genres(network):
    model = MoodModel(default_model_path())
    ex = model.make_extractor(update_hz=2.0)
    ups = ex.process(_music(6.0))
    out = model.outputs(ups)
    assert out.va.shape == (len(ups), 2) and np.isfinite(out.va).all()
    assert out.speech.shape == (len(ups),) and ((out.speech >= 0) & (out.speech <= 1)).all()
    names, scores = out.tags["instruments"]
    assert {"piano", "strings", "guitar", "drums", "synth", "vocals", "brass", "woodwinds", "choir",
            "bass"} <= set(names)  # the vocabulary users asked for
    assert scores.shape == (len(ups), len(names))
    gnames, gscores = out.tags["genres"]
    assert {"pop", "rock", "electronic", "jazz", "classical", "hip-hop", "country", "folk", "blues", "reggae",
            "latin", "r&b/soul", "ambient"} <= set(gnames)
    assert ((scores >= 0) & (scores <= 1)).all()
    assert gscores.shape == (len(ups), len(gnames)) and ((gscores >= 0) & (gscores <= 1)).all()


# ------------------------------------------------------------------------- the tonal pool
def _chords(names: list[list[int]], seconds_each: float = 2.0, seed: int = 0) -> np.ndarray:
    """Piano-like chords (MIDI note numbers), harmonics decaying, each held ``seconds_each``."""
    rng = np.random.default_rng(seed)
    n = int(seconds_each * SR)
    t = np.arange(n) / SR
    out = []
    for notes in names:
        y = np.zeros(n)
        for m in notes:
            f0 = 440.0 * 2 ** ((m - 69) / 12)
            for h in range(1, 5):
                y += np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6)) * np.exp(-1.5 * t) / h ** 1.5
        out.append(y)
    return (0.05 * np.concatenate(out)).astype(np.float32)


MAJOR = [[60, 64, 67], [65, 69, 72], [67, 71, 74], [60, 64, 67, 72]]  # C, F, G, C: C major
MINOR = [[57, 60, 64], [62, 65, 69], [64, 68, 71], [57, 60, 64, 69]]  # Am, Dm, E, Am: A minor


def _tonal(y: np.ndarray) -> np.ndarray:
    return tonal_features(ChromaFrontEnd().process(y).sum(axis=0))


def test_chroma_front_end_matches_librosa_chroma_stft():
    import librosa

    y = _chords(MAJOR)
    ours = ChromaFrontEnd().process(y)
    ref = librosa.feature.chroma_stft(y=y, sr=SR, n_fft=4096, hop_length=1024, center=False, tuning=0.0).T
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5)


def test_tonal_features_tell_major_from_minor_and_find_the_tonic():
    major, minor = _tonal(_chords(MAJOR)), _tonal(_chords(MINOR))
    assert major.shape == (TONAL_WIDTH,)
    assert major[2] > 0.1 and minor[2] < -0.1  # best major minus best minor key correlation
    # Rotated to the tonic: C major's third (E, 4 semitones up) outweighs the minor third;
    # A minor's minor third (C) outweighs the major third (C#).
    assert major[4 + 4] > major[4 + 3] and minor[4 + 3] > minor[4 + 4]
    # The same music transposed gives the same values (rotated to its tonic).
    up = _tonal(_chords([[m + 5 for m in c] for c in MAJOR]))
    np.testing.assert_allclose(up[:4], major[:4], atol=0.05)


def test_tonal_features_ignore_level_and_give_zeros_for_silence():
    y = _chords(MINOR)
    np.testing.assert_allclose(_tonal(0.01 * y), _tonal(y), atol=1e-6)
    np.testing.assert_array_equal(_tonal(np.zeros(SR * 3, np.float32)), np.zeros(TONAL_WIDTH))


def test_the_tonal_pool_follows_the_music_causally(network):
    y = np.concatenate([_chords(MAJOR * 3), _chords(MINOR * 3)])  # 24 s major, then 24 s minor
    t, X, *_ = extract(y, network, pools=("tonal",), context_s=10.0)
    assert X.shape[1] == TONAL_WIDTH
    mode = X[:, 2]
    assert (mode[(t > 12) & (t <= 24)] > 0).all()  # only major heard so far
    assert (mode[t > 36] < 0).all()  # the context holds only the minor part
