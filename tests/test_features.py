"""The streaming extractor: stream-versus-batch parity, causality, fixed references."""

import numpy as np
import pytest

from realtime.features import FEATURE_NAMES, FeatureExtractor, extract
from tests.conftest import SR, tone_mix


def _stream(y, block, **opts):
    ex = FeatureExtractor(**opts)
    ups = []
    for i in range(0, y.size, block):
        ups += ex.process(y[i:i + block])
    return ups


@pytest.mark.parametrize("block", [1, 65, 512, 8193])
def test_blocks_give_the_same_features_as_the_whole_file(block, signal_30s):
    y = signal_30s[: 4 * SR] if block == 1 else signal_30s
    t, feats, level = extract(y)
    ups = _stream(y, block)
    assert len(ups) == len(t) > 0
    np.testing.assert_allclose([u.t for u in ups], t)
    np.testing.assert_allclose(np.stack([u.features for u in ups]), feats, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose([u.level_db for u in ups], level, atol=1e-6)


def test_update_times_follow_the_rate():
    y = tone_mix(6.0)
    t, feats, _ = extract(y, update_hz=4.0, min_context_s=1.0)
    np.testing.assert_allclose(t, np.arange(4, 25) / 4.0, atol=1.0 / SR)
    assert feats.shape == (21, len(FEATURE_NAMES))
    assert np.isfinite(feats).all()
    t20, _, _ = extract(y, update_hz=20.0)
    assert np.allclose(np.diff(t20), 0.05, atol=1 / SR)


def test_causal_future_audio_does_not_change_past_updates(signal_30s):
    y = signal_30s[: 12 * SR]
    t_a, f_a, _ = extract(y)
    y2 = y.copy()
    y2[8 * SR:] = np.random.default_rng(1).standard_normal(y2.size - 8 * SR).astype(np.float32)
    t_b, f_b, _ = extract(y2)
    past = t_a <= 8.0
    np.testing.assert_allclose(f_a[past], f_b[past], rtol=1e-5, atol=1e-4)
    assert not np.allclose(f_a[~past], f_b[~past])


def test_level_uses_a_fixed_reference():
    t = np.arange(3 * SR) / SR
    sine = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    _, _, loud = extract(sine)
    _, _, quiet = extract(sine * 0.01)
    assert loud[-1] == pytest.approx(-3.01, abs=0.1)  # full-scale sine
    assert quiet[-1] == pytest.approx(-43.01, abs=0.1)  # 40 dB lower, not renormalised


def test_gain_changes_loudness_features_but_not_timbre(signal_30s):
    y = signal_30s[: 8 * SR]
    _, a, _ = extract(y)
    _, b, _ = extract(y * 0.5)
    i_rms = FEATURE_NAMES.index("rms_db_mean")
    assert a[-1, i_rms] - b[-1, i_rms] == pytest.approx(0.602, abs=0.01)  # 6.02 dB / 10
    i_cent = FEATURE_NAMES.index("centroid_mean")
    assert a[-1, i_cent] == pytest.approx(b[-1, i_cent], rel=1e-3)


def test_tempo_of_a_click_track():
    clicks = np.zeros(15 * SR, np.float32)
    clicks[:: SR // 2] = 1.0  # 120 BPM
    _, feats, _ = extract(clicks)
    i = FEATURE_NAMES.index("tempo_log2")
    bpm = 120 * 2 ** feats[-1, i]
    assert bpm == pytest.approx(120, rel=0.05) or bpm == pytest.approx(60, rel=0.05)
    assert feats[-1, FEATURE_NAMES.index("pulse_clarity")] > 0.5


def test_major_and_minor_chords_differ_in_mode():
    t = np.arange(6 * SR) / SR

    def chord(freqs):
        return sum(np.sin(2 * np.pi * f * t) for f in freqs).astype(np.float32) * 0.2

    _, major, _ = extract(chord([261.6, 329.6, 392.0]))
    _, minor, _ = extract(chord([261.6, 311.1, 392.0]))
    i = FEATURE_NAMES.index("mode")
    assert major[-1, i] - minor[-1, i] > 0.15


def test_silence_gives_finite_features():
    t, feats, level = extract(np.zeros(5 * SR, np.float32))
    assert np.isfinite(feats).all()
    assert level.max() <= -99.0


def _chord_tone(freqs, seconds=5.0):
    t = np.arange(int(seconds * SR)) / SR
    return sum(0.2 * np.sin(2 * np.pi * f * t) + 0.1 * np.sin(4 * np.pi * f * t)
               for f in freqs).astype(np.float32)


def test_dissonance_orders_octave_triad_and_cluster():
    i = FEATURE_NAMES.index("dissonance_mean")
    octave = extract(_chord_tone([261.6, 523.2]))[1][-1, i]
    triad = extract(_chord_tone([261.6, 329.6, 392.0]))[1][-1, i]
    cluster = extract(_chord_tone([261.6, 277.2, 293.7]))[1][-1, i]
    assert octave < 0.2 * triad
    assert cluster > 1.5 * triad


def test_pitch_height_follows_the_register_in_octaves():
    i = FEATURE_NAMES.index("pitch_height_mean")
    low = extract(_chord_tone([220.0, 277.2, 329.6]))[1][-1, i]
    high = extract(_chord_tone([440.0, 554.4, 659.2]))[1][-1, i]
    assert high - low == pytest.approx(1.0, abs=0.25)


def test_relative_loudness_rises_at_a_crescendo_and_settles():
    """rms_db_rel: the 3-s mean against the stream's running mean (30-s time constant)."""
    quiet = _chord_tone([261.6, 329.6, 392.0], 20.0) * 0.05
    loud = _chord_tone([261.6, 329.6, 392.0], 60.0)
    t, feats, _ = extract(np.concatenate([quiet, loud]))
    rel = feats[:, FEATURE_NAMES.index("rms_db_rel")] * 10.0  # dB
    assert abs(rel[t < 19.0]).max() < 0.5  # steady: nothing relative to itself
    just_after = rel[(t > 23.5) & (t < 24.5)].mean()
    assert just_after > 15.0  # 26 dB step, running mean still near the quiet part
    assert 0.0 < rel[-1] < 0.5 * just_after  # the running mean catches up
