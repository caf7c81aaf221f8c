"""Sources (files paced and unpaced, the capture queue, the mic callback) and device matching."""

from __future__ import annotations

import os
import time
import types

import numpy as np
import pytest
import soundfile as sf

from realtime import devices
from realtime.devices import Device, format_devices, match_device, resolve_input
from realtime.errors import MoodtrackError
from realtime.sources import FileSource, MicSource, QueuedSource
from realtime.stats import PipelineStats
from tests.conftest import tone_mix


@pytest.fixture(scope="module")
def stereo_wav(tmp_path_factory):
    y = tone_mix(2.0, sr=16000)
    path = tmp_path_factory.mktemp("src") / "stereo.wav"
    sf.write(path, np.stack([y, -0.5 * y], axis=1), 16000, subtype="FLOAT")
    return path, np.stack([y, -0.5 * y], axis=1)


def _collect(source, **kw):
    """Copies of all blocks (queued sources reuse their buffers) and their arrival times."""
    data, arrivals = [], []
    for b in source.blocks(**kw):
        data.append(b.data.copy())
        arrivals.append(b.arrival)
    return data, arrivals


def test_file_source_paced_and_unpaced_deliver_identical_audio(stereo_wav):
    path, expected = stereo_wav
    with FileSource(path, paced=False, blocksize=1000) as src:
        assert (src.sample_rate, src.channels, src.frames) == (16000, 2, expected.shape[0])
        fast, _ = _collect(src)
    t0 = time.monotonic()
    with FileSource(path, paced=True, blocksize=1000) as src:
        paced, arrivals = _collect(src)
    elapsed = time.monotonic() - t0
    assert [b.shape for b in fast] == [b.shape for b in paced]
    np.testing.assert_array_equal(np.concatenate(fast), np.concatenate(paced))
    np.testing.assert_allclose(np.concatenate(fast), expected, atol=1e-7)
    # Real-time pace: 2 s of audio take about 2 s, blocks arrive about 1000/16000 s apart.
    assert 1.9 < elapsed < 3.0
    assert np.median(np.diff(arrivals)) == pytest.approx(1000 / 16000, abs=0.02)


def test_paced_source_stops_promptly(stereo_wav):
    import threading

    stop = threading.Event()
    src = FileSource(stereo_wav[0], paced=True, blocksize=512)
    got = 0
    t0 = time.monotonic()
    for _ in src.blocks(stop):
        got += 1
        if got == 3:
            stop.set()
    src.close()
    assert got == 3 and time.monotonic() - t0 < 0.5


@pytest.mark.parametrize("content", [b"", b"RIFF1234WAVEnot really audio"])
def test_unreadable_file_names_the_file(tmp_path, content):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(content)
    with pytest.raises(MoodtrackError, match="bad.wav"):
        FileSource(bad)
    with pytest.raises(MoodtrackError, match="does not exist"):
        FileSource(tmp_path / "missing.flac")


class _Queue(QueuedSource):
    def __init__(self, **kw):
        super().__init__(**kw)

    def _start(self):
        pass


def test_full_queue_drops_and_counts_and_never_overwrites_queued_blocks():
    stats = PipelineStats()
    q = _Queue(blocksize=4, channels=1, queue_blocks=3, stats=stats)
    for k in range(5):
        q._offer(np.full((4, 1), k, np.float32), arrival=float(k))
    q._end()
    assert stats.dropped_blocks == 2
    blocks = list(q.blocks())
    assert [b.arrival for b in blocks] == [0.0, 1.0, 2.0]
    assert [float(b.data[0, 0]) for b in blocks] == [0.0, 1.0, 2.0]


def test_mic_callback_only_queues_and_counts_overflows():
    stats = PipelineStats()
    dev = Device(3, "USB Mic", "ALSA", 2, 48000.0, True)
    mic = MicSource(dev, sample_rate=48000, channels=2, blocksize=256, queue_blocks=2,
                    stats=stats)
    ok = types.SimpleNamespace(input_overflow=False)
    over = types.SimpleNamespace(input_overflow=True)
    indata = np.ones((256, 2), np.float32)
    before = time.monotonic()
    mic._callback(indata, 256, None, ok)
    indata[:] = 2.0  # PortAudio reuses its buffer: the queued block must be a copy
    mic._callback(indata, 256, None, over)
    mic._callback(indata, 256, None, ok)  # queue full: dropped
    assert (stats.overflows, stats.dropped_blocks) == (1, 1)
    first = mic._queue.get_nowait()
    assert first.data.shape == (256, 2) and float(first.data.max()) == 1.0
    assert before <= first.arrival <= time.monotonic()


def test_mic_source_reports_a_lost_device_and_reopens_it_with_backoff(monkeypatch):
    from realtime import sources

    monkeypatch.setattr(sources, "BACKOFF_MIN_S", 0.05)
    stats = PipelineStats()
    mic = MicSource(Device(0, "Mic", "ALSA", 1, 44100.0), sample_rate=44100, channels=1,
                    stats=stats)
    opens, tries = [], []

    def fake_open():  # the stream "opens", then PortAudio ends it without being asked
        opens.append(time.monotonic())
        mic._stream = object()
        mic._ended.clear()

    def fake_reopen():
        tries.append(time.monotonic())
        if len(tries) < 3:
            raise MoodtrackError("input device 'Mic' (ALSA) is not connected")
        fake_open()
        mic._offer(np.ones((8, 1), np.float32), time.monotonic())

    mic._open, mic._reopen, mic._close_stream = fake_open, fake_reopen, lambda: None
    mic._start()
    mic._finished()
    import threading

    stop = threading.Event()
    states = []
    for block in mic.blocks(stop):
        states.append(stats.input_state)
        stop.set()
    assert states == ["ok"] and stats.reconnects == 1 and stats.input_error == ""
    assert len(tries) == 3
    gaps = np.diff(tries)
    assert gaps[1] > 1.5 * gaps[0]  # the delay doubles


def test_mic_watchdog_marks_a_silent_stream_stalled(monkeypatch):
    import threading

    from realtime import sources

    monkeypatch.setattr(sources, "START_GRACE_S", 0.0)
    monkeypatch.setattr(sources, "STALL_S", 0.2)
    stats = PipelineStats()
    mic = MicSource(Device(0, "Mic", "ALSA", 1, 44100.0), sample_rate=44100, channels=1,
                    stats=stats)
    mic._start = lambda: setattr(mic, "_stream", object())
    stop = threading.Event()
    threading.Timer(0.6, stop.set).start()
    seen = []
    threading.Timer(0.45, lambda: seen.append(stats.input_state)).start()
    assert list(mic.blocks(stop)) == []
    assert seen == ["stalled"]


# ------------------------------------------------------------------------- devices
FAKE = [
    Device(0, "HDA Intel PCH: ALC3246 Analog (hw:0,0)", "ALSA", 2, 44100.0),
    Device(1, "HDMI 0 (hw:0,3)", "ALSA", 0, 48000.0),
    Device(2, "Scarlett 18i20 USB: Audio (hw:1,0)", "ALSA", 18, 48000.0),
    Device(3, "pulse", "ALSA", 32, 44100.0),
    Device(4, "default", "ALSA", 32, 44100.0, is_default=True),
    Device(5, "USB Mic", "ALSA", 1, 48000.0),
    Device(6, "USB Mic 2", "ALSA", 1, 48000.0),
]


@pytest.mark.parametrize("spec, index", [
    (None, 4), ("", 4), (2, 2), ("2", 2), ("scarlett", 2), ("SCARLETT usb", 2),
    ("alc3246 alsa", 0), ("usb mic", 5), ("Mic 2", 6), ("pulse", 3),
])
def test_match_device(spec, index):
    assert match_device(spec, FAKE).index == index


@pytest.mark.parametrize("spec, message", [
    (9, "no audio device with index 9"),
    (1, "has no input channels"),
    ("hdmi", "no input device matches 'hdmi'"),
    ("usb", r"several input devices match 'usb': \[2\].*\[5\].*\[6\]"),
    ("analog scarlett", "no input device matches"),  # words must come in order
])
def test_match_device_errors(spec, message):
    with pytest.raises(MoodtrackError, match=message):
        match_device(spec, FAKE)


def test_no_default_device():
    with pytest.raises(MoodtrackError, match="no default audio input device.*moodtrack demo"):
        match_device(None, [d for d in FAKE if not d.is_default])


def test_format_devices_marks_default_and_lists_inputs_only():
    lines = format_devices(FAKE).splitlines()
    assert len(lines) == 6 and not any("HDMI" in ln for ln in lines)
    assert [ln for ln in lines if ln.startswith(">")] == [
        "> 4 default, ALSA (32 in, 44100 Hz)"]
    assert "moodtrack demo" in format_devices([FAKE[1]])


def _fake_sounddevice(monkeypatch, *, supported_rates=(44100, 48000)):
    def check_input_settings(device, channels, samplerate, dtype):
        if samplerate not in supported_rates:
            raise ValueError("Invalid sample rate")

    sd = types.SimpleNamespace(check_input_settings=check_input_settings)
    monkeypatch.setattr(devices, "import_sounddevice", lambda: sd)
    monkeypatch.setattr(devices, "query_devices", lambda: FAKE)


def test_resolve_input_defaults_and_checks(monkeypatch):
    _fake_sounddevice(monkeypatch)
    dev, rate, ch = resolve_input("scarlett")
    assert (dev.index, rate, ch) == (2, 48000, 2)  # the first two of 18 by default
    assert resolve_input(5)[2] == 1  # a mono device
    assert resolve_input("scarlett", sample_rate=44100, channels=6)[1:] == (44100, 6)
    with pytest.raises(MoodtrackError, match=r"does not support 22050 Hz.*-r/--samplerate"):
        resolve_input("scarlett", sample_rate=22050)
    with pytest.raises(MoodtrackError, match=r"has 1 input channel\(s\), not 2"):
        resolve_input(5, channels=2)


def test_missing_portaudio_says_how_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_portaudio(name, *a, **kw):
        if name == "sounddevice":
            raise OSError("PortAudio library not found")
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_portaudio)
    with pytest.raises(MoodtrackError, match="apt-get install libportaudio2"):
        devices.import_sounddevice()


# --- decoder chatter ----------------------------------------------------------------


def test_decoder_messages_are_captured_and_other_stderr_passes_through(capfd):
    from realtime.sources import MAX_DECODER_MESSAGES, decoder_messages

    said: list[str] = []
    with decoder_messages(said):
        os.write(2, b"[src/libmpg123/layer3.c:INT123_do_layer3():1801] error: part2_3_length "
                    b"(3360) too large for available bit count (3240)\n")
        os.write(2, b"moodtrack: another thread's line\nNote: Trying to resync...\n")
        os.write(2, b"\r progress 40%")
    assert said == ["[src/libmpg123/layer3.c:INT123_do_layer3():1801] error: part2_3_length "
                    "(3360) too large for available bit count (3240)", "Note: Trying to resync..."]
    assert capfd.readouterr().err == "moodtrack: another thread's line\n\r progress 40%"
    os.write(2, b"after\n")  # file descriptor 2 is restored
    assert capfd.readouterr().err == "after\n"
    with decoder_messages(said):
        os.write(2, b"Warning: x\n" * (2 * MAX_DECODER_MESSAGES))
    assert len(said) == MAX_DECODER_MESSAGES and capfd.readouterr().err == ""


@pytest.mark.skipif("MP3" not in sf.available_formats(), reason="libsndfile without MP3")
def test_damaged_mp3_decodes_without_decoder_noise_on_stderr(tmp_path, capfd, tiny_model_path):
    from realtime.batch import AnalyzeOptions, analyze_file

    y = tone_mix(6.0, sr=44100)
    sf.write(tmp_path / "clean.mp3", y, 44100, format="MP3")
    data = bytearray((tmp_path / "clean.mp3").read_bytes())
    for i in np.random.default_rng(1).integers(2000, len(data) - 2000, 60):
        data[i] ^= 0xFF  # damaged frames libmpg123 reports and skips
    (tmp_path / "damaged.mp3").write_bytes(bytes(data))
    options = AnalyzeOptions(model=str(tiny_model_path))
    res = analyze_file(tmp_path / "damaged.mp3", options=options)
    assert res.ok, res.error
    assert res.duration_s > 5 and res.updates
    said = res.summary["decoder_messages"]
    assert said and all("libmpg123" in m or m.startswith(("Note:", "Warning:")) for m in said)
    assert capfd.readouterr().err == ""
    clean = analyze_file(tmp_path / "clean.mp3", options=options)
    assert clean.ok and "decoder_messages" not in clean.summary
