"""Real capture through PortAudio/ALSA from a private PulseAudio daemon, and its faults.

A module fixture starts ``pulseaudio`` in a temporary directory with a null sink
``mt_test``; ``paplay --device=mt_test`` plays into it and ``moodtrack live -d pulse``
captures its monitor (the ALSA ``pulse`` device with ``PULSE_SOURCE=mt_test.monitor``).
Device loss is unloading the null sink's module, a stall is suspending its monitor.
The tests skip, saying why, where PulseAudio, its tools or the ALSA plugin are missing
(CI installs them: tools/quickstart.sh).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from realtime.sinks import CSV_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
SINK = "mt_test"
RATE = 44100
PA_SCRIPT = """\
load-module module-native-protocol-unix auth-anonymous=1 socket={dir}/native
load-module module-null-sink sink_name={sink} rate={rate} channels=2
set-default-sink {sink}
set-default-source {sink}.monitor
"""


class Pulse:
    """A private PulseAudio daemon: ``env`` reaches it, ``pactl``/``play`` drive it."""

    def __init__(self, base: Path):
        self.base = base
        self.env = {
            **os.environ,
            "PULSE_SERVER": f"unix:{base}/native",
            "PULSE_RUNTIME_PATH": str(base / "run"),
            "PULSE_STATE_PATH": str(base / "state"),
            "PULSE_SOURCE": f"{SINK}.monitor",
            "PULSE_SINK": SINK,
            "HOME": str(base),
            "PYTHONPATH": str(ROOT),
        }
        self.proc: subprocess.Popen | None = None

    def start(self) -> str | None:
        """Start the daemon; None, or why it could not be started."""
        for d in ("run", "state"):
            (self.base / d).mkdir(exist_ok=True)
        script = self.base / "mt.pa"
        script.write_text(PA_SCRIPT.format(dir=self.base, sink=SINK, rate=RATE))
        self.log = open(self.base / "pulse.log", "wb")
        self.proc = subprocess.Popen(
            ["pulseaudio", "-n", "-F", str(script), "--daemonize=no", "--exit-idle-time=-1",
             "--disallow-exit", "--use-pid-file=no", "--log-target=stderr"],
            env=self.env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if self.pactl("info", check=False).returncode == 0:
                return None
            time.sleep(0.2)
        self.stop()
        tail = (self.base / "pulse.log").read_text(errors="replace").strip().splitlines()[-3:]
        return "pulseaudio would not start: " + " | ".join(tail)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def pactl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["pactl", *args], env=self.env, capture_output=True, text=True,
                              timeout=10, check=check)

    def sink_module(self) -> str | None:
        for line in self.pactl("list", "short", "modules").stdout.splitlines():
            if "module-null-sink" in line and f"sink_name={SINK}" in line:
                return line.split()[0]
        return None

    def unload_sink(self) -> None:
        self.pactl("unload-module", self.sink_module())

    def load_sink(self) -> None:
        self.pactl("load-module", "module-null-sink", f"sink_name={SINK}", f"rate={RATE}",
                   "channels=2")

    def play(self, path: Path) -> subprocess.Popen:
        return subprocess.Popen(["paplay", f"--device={SINK}", str(path)], env=self.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.fixture(scope="module")
def pulse():
    missing = [t for t in ("pulseaudio", "pactl", "paplay") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install pulseaudio "
                    "pulseaudio-utils libasound2-plugins libportaudio2)")
    # A short path: a unix socket path may not exceed 107 bytes.
    base = Path(tempfile.mkdtemp(prefix="mtpa-"))
    pa = Pulse(base)
    why = pa.start()
    if why:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(why)
    try:
        probe = subprocess.run(
            [sys.executable, "-c", "import sounddevice as sd; "
             "print([d['name'] for d in sd.query_devices() if d['max_input_channels']])"],
            env=pa.env, capture_output=True, text=True, timeout=30)
        if "'pulse'" not in probe.stdout:
            pytest.skip("PortAudio lists no ALSA 'pulse' device (install libasound2-plugins "
                        f"and libportaudio2): {probe.stdout.strip()} {probe.stderr.strip()[-200:]}")
        yield pa
    finally:
        pa.stop()
        shutil.rmtree(base, ignore_errors=True)


def chord(seconds: float, *, amp: float = 0.25, sr: int = RATE) -> np.ndarray:
    """A steady A-major chord, stereo float32, peak about ``3 * amp``."""
    t = np.arange(int(seconds * sr)) / sr
    y = amp * (np.sin(2 * np.pi * 220 * t) + np.sin(2 * np.pi * 277.2 * t)
               + np.sin(2 * np.pi * 329.6 * t))
    return np.stack([y, y], axis=1).astype(np.float32)


class Live:
    """``moodtrack live -d pulse`` (default channels: 2 of its 32) in a subprocess, with a
    ZeroMQ subscriber collecting mood messages and stderr collected line by line."""

    def __init__(self, pulse: Pulse, model: Path, tmp_path: Path, *extra: str):
        import zmq

        from tests.test_cli import _free_port

        self.endpoint = f"tcp://127.0.0.1:{_free_port()}"
        self.csv = tmp_path / "live.csv"
        self.ctx = zmq.Context()
        self.sub = self.ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"mood")
        self.sub.setsockopt(zmq.SUBSCRIBE, b"status")
        self.sub.connect(self.endpoint)
        self.msgs: list[dict] = []
        self.status: list[dict] = []
        self.err: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "realtime", "live", "-d", "pulse", "-r", str(RATE),
             "--zmq", self.endpoint, "--csv", str(self.csv), "--no-dashboard", "--rate", "4",
             "--smoothing", "0", "--model", str(model), *extra],
            cwd=ROOT, env=pulse.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read_err, daemon=True)
        self._reader.start()

    def _read_err(self) -> None:
        for line in self.proc.stderr:
            self.err.append(line.rstrip("\n"))

    def pump(self, seconds: float) -> None:
        """Collect messages for ``seconds``."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.sub.poll(50):
                topic, body = self.sub.recv_multipart()
                (self.msgs if topic == b"mood" else self.status).append(json.loads(body))

    def wait_for(self, what, timeout: float, label: str) -> None:
        end = time.monotonic() + timeout
        while not what():
            assert self.proc.poll() is None, f"moodtrack exited: {self.err}"
            assert time.monotonic() < end, f"timed out waiting for {label}: {self.err[-8:]}"
            self.pump(0.1)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            rc = self.proc.wait(10)
        finally:
            self.proc.kill()
            self._reader.join(2)
            self.sub.close(0)
            self.ctx.term()
        return rc

    def rows(self) -> list[dict]:
        with open(self.csv, newline="") as f:
            rows = list(csv.reader(f))
        assert tuple(rows[0]) == CSV_COLUMNS
        assert all(len(r) == len(CSV_COLUMNS) for r in rows)
        return [dict(zip(CSV_COLUMNS, r)) for r in rows[1:]]


#: Seconds of context the features cover: only updates this far into the playback see
#: nothing but what was played (the monitor delivered silence before it).
CONTEXT_S = 10.0


def _expected(model: Path, audio: np.ndarray) -> dict:
    """Level, valence, arousal and mood the pipeline gives for ``audio`` once its
    context holds only ``audio``."""
    from realtime.model import MoodModel
    from realtime.pipeline import Pipeline

    updates = Pipeline(MoodModel(model), update_hz=4.0).push(audio, sample_rate=RATE)
    steady = [u for u in updates if u.t >= CONTEXT_S + 0.5]
    out = {k: float(np.median([getattr(u, k) for u in steady]))
           for k in ("level_db", "valence", "arousal")}
    out["mood"] = {u.mood for u in steady}
    return out


def test_live_capture_from_pulseaudio_matches_what_was_played(pulse, tiny_model_path, tmp_path):
    audio = chord(CONTEXT_S + 1.5)
    wav = tmp_path / "chord.wav"
    sf.write(wav, audio, RATE, subtype="PCM_16")
    want = _expected(tiny_model_path, sf.read(wav, dtype="float32")[0])
    live = Live(pulse, tiny_model_path, tmp_path)
    try:
        # The null sink's monitor delivers silence until something plays.
        live.wait_for(lambda: len(live.msgs) >= 2, 60, "the first updates")
        assert all(m["silence"] for m in live.msgs)
        n0 = len(live.msgs)
        player = pulse.play(wav)
        live.wait_for(lambda: player.poll() is not None, 30, "paplay")
        assert player.returncode == 0, player.stderr.read()
        live.pump(1.0)
        rc = live.stop()
    finally:
        live.proc.kill()
    assert rc == 0, live.err
    played = [m for m in live.msgs[n0:] if not m["silence"]
              and m["level_db"] > want["level_db"] - 3]
    assert len(played) >= 4 * CONTEXT_S, live.msgs[n0:]  # 11.5 s at 4 updates/s
    # Updates whose context window holds only the chord, not the silence before it.
    steady = [m for m in played if m["t"] - played[0]["t"] >= CONTEXT_S][:-1]
    assert len(steady) >= 2, played
    level = float(np.median([m["level_db"] for m in played]))
    assert level == pytest.approx(want["level_db"], abs=1.0)
    for k in ("valence", "arousal"):
        assert float(np.median([m[k] for m in steady])) == pytest.approx(want[k], abs=0.15)
    assert {m["mood"] for m in steady} <= want["mood"]
    seqs = [m["seq"] for m in live.msgs]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    rows = live.rows()
    assert len(rows) >= seqs[-1] + 1 and [int(r["seq"]) for r in rows] == list(range(len(rows)))
    assert "stopped after" in live.err[-1] and "0 dropped blocks" in live.err[-1]


def _has(live: Live, text: str):
    return lambda: any(text in line for line in live.err)


def test_device_loss_is_reported_and_the_same_device_comes_back(pulse, tiny_model_path,
                                                                 tmp_path):
    wav = tmp_path / "chord.wav"
    sf.write(wav, chord(4.0), RATE, subtype="PCM_16")
    live = Live(pulse, tiny_model_path, tmp_path)
    try:
        live.wait_for(lambda: len(live.msgs) >= 2, 60, "the first updates")
        t0 = time.monotonic()
        pulse.unload_sink()  # the input disappears mid-run
        live.wait_for(_has(live, "input lost"), 10, "'input lost'")
        lost_after = time.monotonic() - t0
        live.pump(2.0)  # reopening fails a few times meanwhile: no crash
        assert live.proc.poll() is None
        n_lost = len(live.msgs)
        pulse.load_sink()  # the device returns
        live.wait_for(_has(live, "input back: reconnected"), 30, "'input back'")
        player = pulse.play(wav)
        live.wait_for(lambda: any(not m["silence"] for m in live.msgs[n_lost:]), 30,
                      "updates of the audio played after the device came back")
        live.wait_for(lambda: player.poll() is not None, 30, "paplay")
        live.pump(1.5)  # the next status message
        rc = live.stop()
    finally:
        pulse.load_sink() if pulse.sink_module() is None else None
        live.proc.kill()
    assert rc == 0, live.err
    assert lost_after < 3.0, live.err
    assert not any("Traceback" in line for line in live.err), live.err
    assert any("reconnects 1" in line for line in live.err), live.err
    # The status topic said so too, once a second, while no mood update came.
    lost = [m for m in live.status if m["input_state"] == "lost"]
    assert lost and "pulse" in lost[0]["input_error"], live.status
    last = live.status[-1]
    assert last["input_state"] == "ok" and last["reconnects"] == 1, live.status[-3:]
    seqs = [m["seq"] for m in live.msgs]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # one run, no restart
    rows = live.rows()
    assert [int(r["seq"]) for r in rows] == list(range(len(rows))) and len(rows) >= len(seqs)


def test_stalled_input_is_reported_within_two_seconds_and_recovers(pulse, tiny_model_path,
                                                                   tmp_path):
    live = Live(pulse, tiny_model_path, tmp_path)
    try:
        live.wait_for(lambda: len(live.msgs) >= 2, 60, "the first updates")
        t0 = time.monotonic()
        pulse.pactl("suspend-sink", SINK, "1")  # callbacks stop arriving
        live.wait_for(_has(live, "input stalled"), 10, "'input stalled'")
        stalled_after = time.monotonic() - t0
        n = len(live.msgs)
        pulse.pactl("suspend-sink", SINK, "0")
        live.wait_for(_has(live, "input back"), 30, "'input back'")
        live.wait_for(lambda: len(live.msgs) >= n + 2, 30, "updates after the stall")
        rc = live.stop()
    finally:
        pulse.pactl("suspend-sink", SINK, "0", check=False)
        live.proc.kill()
    assert rc == 0, live.err
    assert stalled_after < 2.5, (stalled_after, live.err)
    assert any(m["input_state"] == "stalled" for m in live.status), live.status


def test_real_device_errors_are_messages_not_tracebacks(pulse, tiny_model_path):
    """Device selection against the real PortAudio device list (pulse, default). (The
    pulse device resamples any rate: an unsupported rate is tested in test_sources.)"""
    script = f"""
import contextlib, io, json
from realtime import cli
out = {{}}
for argv in (["-d", "no such card"], ["-d", "ALSA"], ["-d", "pulse", "-c", "64"],
             ["-d", "99"]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = cli._main(["live", *argv, "--no-zmq", "--seconds", "0.5",
                        "--model", {str(tiny_model_path)!r}])
    out[" ".join(argv)] = [rc, err.getvalue()]
print(json.dumps(out))
"""
    proc = subprocess.run([sys.executable, "-c", script], env=pulse.env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    expect = {
        "-d no such card": "no input device matches 'no such card'; list them with",
        "-d ALSA": r"several input devices match 'ALSA': [0] pulse, ALSA; [1] default, ALSA",
        "-d pulse -c 64": "has 32 input channel(s), not 64: pass -c/--channels 1..32",
        "-d 99": "there is no audio device with index 99",
    }
    for case, (rc, err) in res.items():
        assert rc == 2 and "Traceback" not in err, (case, err)
        assert expect[case] in err, (case, err)


def test_digital_silence_is_explained_and_clears_when_sound_arrives(pulse, tiny_model_path,
                                                                     tmp_path):
    from realtime.stats import DIGITAL_SILENCE_S

    wav = tmp_path / "chord.wav"
    sf.write(wav, chord(3.0), RATE, subtype="PCM_16")
    live = Live(pulse, tiny_model_path, tmp_path)
    try:
        # Nothing plays into the null sink: its monitor delivers digital zeros.
        live.wait_for(lambda: len(live.msgs) >= 1, 60, "the first update")
        t0 = time.monotonic()
        live.wait_for(_has(live, "no signal"), DIGITAL_SILENCE_S + 10, "'no signal'")
        said_after = time.monotonic() - t0
        live.wait_for(lambda: any(m["input_hint"] for m in live.status), 5, "status input_hint")
        hint = next(m["input_hint"] for m in live.status if m["input_hint"])
        player = pulse.play(wav)
        live.wait_for(lambda: any(not m["silence"] for m in live.msgs), 30, "sound")
        live.wait_for(lambda: live.status[-1]["input_hint"] is None, 5, "the hint to clear")
        live.wait_for(lambda: player.poll() is not None, 30, "paplay")
        rc = live.stop()
    finally:
        live.proc.kill()
    assert rc == 0, live.err
    # (The 10-s rule itself is tested with a fake clock in test_zmq_extras; this subscriber
    # may have missed the first updates, so only the upper bound is meaningful here.)
    assert said_after <= DIGITAL_SILENCE_S + 4, said_after
    line = next(x for x in live.err if "no signal" in x)
    assert line.startswith("moodtrack: no signal: pulse ") and line.endswith(hint)
    for what in ("digital silence", "moodtrack devices", "moodtrack live -d DEVICE",
                 "moodtrack demo"):
        assert what in hint, hint
