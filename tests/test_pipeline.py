"""The Pipeline: mono mix, streaming resampling, block-size invariance, limits, the thread."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import soundfile as sf
import soxr

from realtime.errors import MoodtrackError
from realtime.model import MoodModel
from realtime.pipeline import AnalysisThread, Pipeline, to_mono
from realtime.sources import FileSource
from realtime.stats import PipelineStats
from tests.conftest import SR, tone_mix


@pytest.fixture(scope="module")
def model(tiny_model_path):
    return MoodModel(tiny_model_path)


@pytest.fixture(scope="module")
def signal_8s():
    return tone_mix(8.0, seed=3)


def _va(updates):
    return np.array([(u.t, u.valence, u.arousal, u.level_db, u.confidence) for u in updates])


def _feed(model, y, sr, sizes, **kw):
    """Updates of ``y`` pushed in blocks cycling through ``sizes``, then finished."""
    p = Pipeline(model, **kw)
    out, i, k = [], 0, 0
    while i < len(y):
        n = sizes[k % len(sizes)]
        out += p.push(y[i:i + n], sample_rate=sr)
        i, k = i + n, k + 1
    return out + p.finish()


class Collect:
    def __init__(self):
        self.updates = []

    def emit(self, u):
        self.updates.append(u)


def test_to_mono():
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    np.testing.assert_array_equal(to_mono(x), [0.5, 2.5, 4.5, 6.5, 8.5, 10.5])
    np.testing.assert_array_equal(to_mono(x[:, :1]), x[:, 0])
    six = np.tile(np.arange(6, dtype=np.float32), (4, 1))  # a 5.1 frame
    np.testing.assert_array_equal(to_mono(six), np.full(4, 2.5, np.float32))
    noise = np.random.default_rng(0).standard_normal((4096, 8)).astype(np.float32)
    for ch in (2, 3, 6, 8):  # the float32 mean (numpy sums 8 and more pairwise: 1 ulp apart)
        np.testing.assert_allclose(to_mono(noise[:, :ch]), noise[:, :ch].mean(axis=1),
                                   rtol=0, atol=1e-6)
    np.testing.assert_array_equal(to_mono(noise[:, :2]), noise[:, :2].mean(axis=1))


def test_multichannel_input_is_analysed_as_its_mono_mix(model, signal_8s):
    y = signal_8s
    mono = _va(_feed(model, y, SR, [4096]))
    stereo = _va(_feed(model, np.stack([2 * y, np.zeros_like(y)], axis=1), SR, [4096]))
    six = _va(_feed(model, np.stack([y] * 6, axis=1), SR, [4096]))
    assert len(mono) == 15  # t = 1.0 .. 8.0 at 2 Hz
    np.testing.assert_allclose(stereo, mono, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(six, mono, atol=5e-4)  # float32 rounding of the mean


@pytest.mark.parametrize("rate", [SR, 44100, 48000])
def test_odd_block_sizes_give_the_same_updates_as_one_block(model, signal_8s, rate):
    y = signal_8s if rate == SR else soxr.resample(signal_8s, SR, rate).astype(np.float32)
    whole = _va(_feed(model, y, rate, [len(y)]))
    odd = _va(_feed(model, y, rate, [1, 77, 4099, 513, 10007]))
    assert len(whole) == 15
    np.testing.assert_allclose(odd, whole, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("rate", [44100, 48000])
def test_resampled_input_updates_at_the_same_times(model, signal_8s, rate):
    y_in = soxr.resample(signal_8s, SR, rate).astype(np.float32)
    native = _va(_feed(model, signal_8s, SR, [1024]))
    resampled = _va(_feed(model, y_in, rate, [1024]))
    np.testing.assert_array_equal(resampled[:, 0], native[:, 0])
    np.testing.assert_array_equal(native[:, 0], np.arange(2, 17) / 2.0)
    # Streaming resampling equals resampling the whole signal at once.
    offline = _va(_feed(model, soxr.resample(y_in, rate, SR).astype(np.float32), SR, [len(y_in)]))
    np.testing.assert_allclose(resampled, offline, atol=1e-4)


def test_sinks_stats_and_latency(model, signal_8s):
    stats, sink = PipelineStats(), Collect()
    p = Pipeline(model, sinks=[sink], stats=stats, update_hz=4.0)
    arrival = time.monotonic()
    out = p.push(signal_8s[:SR * 3], sample_rate=SR, arrival=arrival - 0.25)
    assert sink.updates == out and [u.seq for u in out] == list(range(len(out)))
    # t = end sample / rate, the end sample rounded: 1.25 s is sample 27562.5 -> 27562.
    np.testing.assert_allclose([u.t for u in out], np.arange(4, 13) / 4.0, atol=1 / SR)
    assert all(u.latency_ms >= 250.0 for u in out)
    assert (stats.blocks, stats.updates, stats.sample_rate) == (1, 9, SR)
    assert stats.latency_ms == out[-1].latency_ms and stats.level_db == out[-1].level_db
    assert stats.model == "tiny-test 0"


def test_sample_rate_change_is_refused(model):
    p = Pipeline(model)
    p.push(np.zeros(100, np.float32), sample_rate=44100)
    with pytest.raises(MoodtrackError, match="changed from 44100 to 48000"):
        p.push(np.zeros(100, np.float32), sample_rate=48000)


@pytest.fixture(scope="module")
def wav_44k(tmp_path_factory, signal_8s):
    path = tmp_path_factory.mktemp("pipe") / "x.wav"
    sf.write(path, soxr.resample(signal_8s, SR, 44100), 44100)
    return path


def test_run_stops_after_seconds_and_flushes_the_resampler(model, wav_44k):
    sink = Collect()
    blocks = []
    with FileSource(wav_44k, blocksize=1000) as src:
        n = Pipeline(model, sinks=[sink]).run(src, seconds=3.0, on_block=blocks.append)
    assert sum(blocks) == 3 * 44100
    assert n == 5 and [u.t for u in sink.updates] == [1.0, 1.5, 2.0, 2.5, 3.0]


def test_run_from_file_equals_push(model, wav_44k):
    y, sr = sf.read(wav_44k, dtype="float32")
    direct = _va(_feed(model, y, sr, [len(y)]))
    sink = Collect()
    with FileSource(wav_44k, blocksize=333) as src:
        Pipeline(model, sinks=[sink]).run(src)
    np.testing.assert_allclose(_va(sink.updates), direct, atol=1e-6)


def test_analysis_thread_live_file_and_stop(model, wav_44k):
    stats, sink = PipelineStats(), Collect()
    stop = threading.Event()
    src = FileSource(wav_44k, paced=True, blocksize=1024, stats=stats)
    th = AnalysisThread(Pipeline(model, sinks=[sink], stats=stats), src, stop=stop)
    th.start()
    deadline = time.monotonic() + 5
    while not sink.updates and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sink.updates, "no update within 5 s"
    t_stop = time.monotonic()
    stop.set()
    th.join(1.0)
    src.close()
    assert not th.is_alive() and time.monotonic() - t_stop < 0.5 and th.error is None
    assert stats.dropped_blocks == 0 and stats.device == str(wav_44k) and stats.channels == 1
    # Live latency: arrival of the completing block to the sinks, a few milliseconds here.
    assert 0 <= sink.updates[0].latency_ms < 500
