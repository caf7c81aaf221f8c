"""BS.1770-4 / EBU R128 momentary and short-term loudness: EBU Tech 3341 signals, pyloudnorm
on real music, block-size invariance, channel weights, and the values on the updates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyloudnorm as pyln
import pytest
import soundfile as sf

from realtime.channels import loudness_gains
from realtime.loudness import FLOOR_LUFS, LoudnessMeter, SosFilter, k_weighting_sos
from realtime.model import MoodModel
from realtime.pipeline import Pipeline

DEMO = Path(__file__).resolve().parent.parent / "realtime" / "data" / "demo.ogg"


def sine(dbfs, seconds, rate, channels=2, freq=1000.0):
    """A sine of peak level ``dbfs`` (a full-scale sine is 0 dBFS) on every channel."""
    t = np.arange(int(seconds * rate)) / rate
    y = 10 ** (dbfs / 20) * np.sin(2 * np.pi * freq * t)
    return np.repeat(y[:, None], channels, axis=1).astype(np.float32)


def feed(meter, x, sizes, *, every=None):
    """Push ``x`` in blocks cycling through ``sizes``; (frame, momentary, short) after each
    block (or each ``every`` frames of audio, from inside the block as the pipeline asks)."""
    out, i, k = [], 0, 0
    while i < len(x):
        n = sizes[k % len(sizes)]
        meter.process(x[i:i + n])
        i, k = min(i + n, len(x)), k + 1
        out.append((i, *meter.loudness()))
    return out


def test_k_weighting_at_48k_is_bs1770s_published_filter():
    sos = k_weighting_sos(48000)
    np.testing.assert_allclose(sos[0], [1.53512485958697, -2.69169618940638, 1.19839281085285,
                                        1.0, -1.69065929318241, 0.73248077421585], atol=1e-8)
    np.testing.assert_allclose(sos[1], [1.0, -2.0, 1.0, 1.0, -1.99004745483398,
                                        0.99007225036621], atol=1e-8)


@pytest.mark.parametrize("rate", [22050, 48000, 192000])
def test_sos_filter_is_scipys_sosfilt_with_state_for_any_block_sizes(rate):
    from scipy.signal import sosfilt  # the reference (too slow to import for the runtime)

    sos = k_weighting_sos(rate)
    x = np.random.default_rng(rate).standard_normal((40000, 3)).astype(np.float32)
    ref = sosfilt(sos, x.astype(np.float64), axis=0)
    f = SosFilter(sos, channels=3)
    out, i, k, sizes = [], 0, 0, [1, 77, 4099, 513, 256, 20000, 1000]
    while i < len(x):
        out.append(f(x[i:i + sizes[k % len(sizes)]]))
        i, k = i + sizes[k % len(sizes)], k + 1
    np.testing.assert_allclose(np.concatenate(out), ref, atol=1e-6 * np.abs(ref).max())


def test_loudness_does_not_import_scipy_signal():
    import subprocess
    import sys

    code = ("import sys, numpy as np, realtime.pipeline, realtime.loudness as L; "
            "m = L.LoudnessMeter(sample_rate=48000, gains=[1, 1]); "
            "m.process(np.ones((4800, 2), np.float32)); print('scipy.signal' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr


@pytest.mark.parametrize("rate", [48000, 44100, 96000, 22050])
@pytest.mark.parametrize("dbfs", [-23.0, -33.0])
def test_tech_3341_stereo_1k_sine_reads_its_level(rate, dbfs):
    """EBU Tech 3341 cases 1 and 2: a stereo 1 kHz sine at -23 (-33) dBFS per channel reads
    -23.0 (-33.0) +- 0.1 LUFS, momentary and short-term, once the 3-s window is full."""
    meter = LoudnessMeter(sample_rate=rate, gains=loudness_gains(2))
    readings = feed(meter, sine(dbfs, 8.0, rate), [1024, 333, 4099])
    settled = np.array([(m, s) for i, m, s in readings if i >= 3.1 * rate])
    assert len(settled) > 10
    np.testing.assert_allclose(settled, dbfs, atol=0.1)


def test_block_sizes_do_not_change_the_readings():
    rate = 44100
    x = np.random.default_rng(1).standard_normal((5 * rate, 2)).astype(np.float32) * 0.1
    whole = LoudnessMeter(sample_rate=rate, gains=[1, 1])
    whole.process(x)
    odd = LoudnessMeter(sample_rate=rate, gains=[1, 1])
    feed(odd, x, [1, 77, 4099, 65536, 513])
    for end in (rate, 2 * rate + 17, 4 * rate, len(x) - 1000, len(x)):
        np.testing.assert_allclose(odd.loudness(end=end), whole.loudness(end=end), atol=1e-9)


def test_channel_weights_surrounds_1_41_lfe_left_out_and_the_floor():
    rate = 48000
    tone = sine(-23.0, 4.0, rate, channels=1)[:, 0]
    for channel, expected in ((0, -26.01), (2, -26.01), (3, FLOOR_LUFS),
                              (4, -26.01 + 10 * np.log10(1.41))):
        x = np.zeros((len(tone), 6), np.float32)
        x[:, channel] = tone
        meter = LoudnessMeter(sample_rate=rate, gains=loudness_gains(6))
        meter.process(x)
        m, s = meter.loudness()
        assert m == pytest.approx(expected, abs=0.1) and s == pytest.approx(expected, abs=0.1)
    quiet = LoudnessMeter(sample_rate=rate, gains=[1, 1])
    quiet.process(np.zeros((rate, 2), np.float32))
    assert quiet.loudness() == (FLOOR_LUFS, FLOOR_LUFS)
    assert LoudnessMeter(sample_rate=rate, gains=[1]).loudness() == (FLOOR_LUFS, FLOOR_LUFS)


@pytest.mark.parametrize("stereo", [False, True])
def test_short_term_matches_pyloudnorm_on_the_demo_music(stereo):
    """The streaming meter against pyloudnorm on real music (the bundled demo).

    pyloudnorm has no short-term meter; its integrated loudness gates 400-ms blocks
    (-70 LUFS absolute, -10 LU relative). Given exactly 3 s with ``block_size=3.0`` there
    is one gating block, which passes both gates (music is far above -70 LUFS, and no
    block is 10 LU below the mean of itself): its integrated loudness is then the ungated
    mean power of the 3 s, i.e. the short-term loudness. Filter designs differ slightly
    (pyloudnorm's RBJ shelf vs the BS.1770 prototype here) and pyloudnorm's filters start
    from rest at the window, the meter's carry the music before: both are far below 0.1 LU.
    """
    y, rate = sf.read(DEMO, dtype="float32", always_2d=True)
    y = y[: 60 * rate]
    if stereo:
        y = np.concatenate([y, 0.5 * y[::-1]], axis=1)  # two different channels
    meter = LoudnessMeter(sample_rate=rate, gains=loudness_gains(y.shape[1]))
    feed(meter, y, [2048, 4095])
    ref = pyln.Meter(rate, block_size=3.0)
    ends = [int(e * rate) for e in (3.0, 11.5, 20.0, 33.3, 47.0, 59.0)]
    fresh = LoudnessMeter(sample_rate=rate, gains=loudness_gains(y.shape[1]))
    ours, theirs = [], []
    for end in ends:
        expected = ref.integrated_loudness(y[end - 3 * rate:end].astype(np.float64))
        theirs.append(expected)
        # the stream cannot look back a minute: measure each window on a fresh meter too
        fresh = LoudnessMeter(sample_rate=rate, gains=loudness_gains(y.shape[1]))
        fresh.process(y[end - 3 * rate:end])
        ours.append(fresh.loudness()[1])
    np.testing.assert_allclose(ours, theirs, atol=0.1)
    assert max(theirs) - min(theirs) > 3.0  # the windows differ: a real comparison
    stream = LoudnessMeter(sample_rate=rate, gains=loudness_gains(y.shape[1]))
    for i in range(0, len(y), 4096):  # streaming, read at each window's end as it passes
        stream.process(y[i:i + 4096])
        for end, expected in zip(ends, theirs):
            if i < end <= i + 4096:
                assert stream.loudness(end=end)[1] == pytest.approx(expected, abs=0.1)


def test_updates_carry_the_loudness_of_the_audio_they_describe(tiny_model_path):
    """In the pipeline each update gets the loudness of the windows ending at its ``t``
    (input rate 48 kHz, resampled for the model): -23 dBFS then -33 dBFS."""
    rate = 48000
    x = np.concatenate([sine(-23.0, 6.0, rate), sine(-33.0, 6.0, rate)])
    p = Pipeline(MoodModel(tiny_model_path), update_hz=2.0)
    ups = []
    for i in range(0, len(x), 3000):
        ups += p.push(x[i:i + 3000], sample_rate=rate)
    ups += p.finish()
    by_t = {round(u.t, 2): (u.loudness_m, u.loudness_s) for u in ups}
    assert by_t[5.5] == pytest.approx((-23.0, -23.0), abs=0.1)
    assert by_t[6.5][0] == pytest.approx(-33.0, abs=0.1)  # 0.4 s: already the new level
    assert -33.0 < by_t[6.5][1] < -23.5  # 3 s: still mostly the old one
    assert by_t[11.5] == pytest.approx((-33.0, -33.0), abs=0.1)
    off = Pipeline(MoodModel(tiny_model_path), loudness=False)
    assert all(u.loudness_m is None and u.loudness_s is None
               for u in off.push(x[: 3 * rate], sample_rate=rate))
