"""The command line end to end: analyze, live --file with ZeroMQ and CSV, SIGTERM, errors."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from realtime import cli
from realtime.sinks import CSV_COLUMNS
from tests.conftest import SR, tone_mix

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == CSV_COLUMNS
    return [dict(zip(CSV_COLUMNS, r)) for r in rows[1:]]


def _check_timeline(rows, *, seconds, rate=2.0):
    assert [float(r["t"]) for r in rows] == pytest.approx(
        np.arange(1.0, seconds + 1e-9, 1 / rate))
    assert [int(r["seq"]) for r in rows] == list(range(len(rows)))
    for r in rows:
        assert -1 <= float(r["valence"]) <= 1 and -1 <= float(r["arousal"]) <= 1
        assert 0 <= float(r["confidence"]) <= 1
        assert r["mood"] in ("calm", "tense", "melancholic", "uplifting", "silence")


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory):
    """wav (22.05 kHz mono), flac (44.1 kHz stereo) in a subdirectory, ogg (48 kHz), a broken wav."""
    d = tmp_path_factory.mktemp("audio")
    y = tone_mix(5.0, seed=1)
    sf.write(d / "one.wav", y, SR)
    (d / "sub").mkdir()
    st = soxr.resample(np.stack([y, 0.5 * y], axis=1), SR, 44100)
    sf.write(d / "sub" / "two.flac", st, 44100)
    sf.write(d / "three.ogg", soxr.resample(y, SR, 48000), 48000)
    (d / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage")
    (d / "notes.txt").write_text("not audio")
    return d


def test_analyze_writes_timelines_and_reports_the_broken_file(audio_dir, tmp_path, capsys,
                                                              tiny_model_path):
    out = tmp_path / "out"
    rc = cli.main(["analyze", str(audio_dir), "--out", str(out), "--model", str(tiny_model_path)])
    err = capsys.readouterr().err
    assert rc == 1
    assert "1 of 4 file(s) failed" in err and "broken.wav" in err
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == [
        "manifest.jsonl", "one.wav.csv", "sub", "sub/two.flac.csv", "summary.csv", "summary.json",
        "three.ogg.csv"]
    timelines = {n: _read_csv(out / f"{p}.csv") for n, p in (
        ("one", "one.wav"), ("two", "sub/two.flac"), ("three", "three.ogg"))}
    for rows in timelines.values():
        _check_timeline(rows, seconds=5.0)
    # Same music at three rates and layouts: the same times, close values.
    for n in ("two", "three"):
        assert [r["t"] for r in timelines[n]] == [r["t"] for r in timelines["one"]]


def test_analyze_good_files_exit_0_with_seconds_and_rate(audio_dir, tmp_path, capsys,
                                                         tiny_model_path):
    out = tmp_path / "o"
    rc = cli.main(["analyze", str(audio_dir / "one.wav"), str(audio_dir / "sub"), "-o", str(out),
                   "--model", str(tiny_model_path), "--seconds", "3", "--rate", "4"])
    assert rc == 0, capsys.readouterr().err
    _check_timeline(_read_csv(out / "one.wav.csv"), seconds=3.0, rate=4.0)
    _check_timeline(_read_csv(out / "sub" / "two.flac.csv"), seconds=3.0, rate=4.0)


def test_output_names_are_the_inputs_paths_relative_to_the_run_root(tmp_path):
    from realtime.outputs import output_name, run_root

    (tmp_path / "a").mkdir()
    files = [tmp_path / "a" / "x.wav", tmp_path / "b" / "x.wav", tmp_path / "x.flac",
             tmp_path / "x.wav"]
    root = run_root([tmp_path / "a", *files[1:]])
    assert root == tmp_path
    names = [str(output_name(f, root)) for f in files]
    assert names == ["a/x.wav.csv", "b/x.wav.csv", "x.flac.csv", "x.wav.csv"]
    # The same input gets the same name whatever else the run holds, in any order.
    assert [str(output_name(f, root)) for f in reversed(files)] == names[::-1]
    assert str(output_name(files[0], run_root([tmp_path / "a"]))) == "x.wav.csv"


def _env(model):
    return {**os.environ, "MOODTRACK_MODEL": str(model), "PYTHONPATH": str(ROOT)}


def test_live_file_publishes_over_zmq_and_writes_csv(tmp_path, tiny_model_path):
    import zmq

    wav = tmp_path / "six.wav"
    sf.write(wav, tone_mix(6.0, seed=2), SR)
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"mood")
    sub.connect(endpoint)  # before the publisher binds: ZeroMQ reconnects
    csv_path = tmp_path / "live.csv"
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "realtime", "live", "--file", str(wav), "--seconds", "4",
         "--zmq", endpoint, "--csv", str(csv_path)],
        cwd=ROOT, env=_env(tiny_model_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    msgs = []
    try:
        while proc.poll() is None or sub.poll(100):
            if sub.poll(100):
                topic, body = sub.recv_multipart()
                assert topic == b"mood"
                msgs.append(json.loads(body))
            assert time.monotonic() - t0 < 60
        out, err = proc.communicate(timeout=5)
    finally:
        proc.kill()
        sub.close(0)
        ctx.term()
    assert proc.returncode == 0, err.decode()
    rows = _read_csv(csv_path)
    _check_timeline(rows, seconds=4.0)  # --seconds 4 of the 6-s file
    assert len(out.decode().splitlines()) == len(rows)  # stdout is no terminal: the log
    assert len(msgs) >= 4
    seqs = [m["seq"] for m in msgs]
    assert seqs == list(range(seqs[0], seqs[0] + len(msgs)))  # consecutive
    for m in msgs:
        assert -1 <= m["valence"] <= 1 and -1 <= m["arousal"] <= 1 and 0 <= m["confidence"] <= 1
        assert m["t"] == pytest.approx(1.0 + 0.5 * m["seq"])
        assert 0 <= m["latency_ms"] < 1000
    assert msgs[-1]["t"] == 4.0 and float(rows[-1]["t"]) == 4.0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_live_within_a_second_with_a_complete_csv(tmp_path, tiny_model_path, sig):
    wav = tmp_path / "long.wav"
    sf.write(wav, tone_mix(30.0), SR)
    csv_path = tmp_path / "term.csv"
    proc = subprocess.Popen(
        [sys.executable, "-m", "realtime", "live", "--file", str(wav), "--no-zmq",
         "--csv", str(csv_path)],
        cwd=ROOT, env=_env(tiny_model_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not (csv_path.exists() and csv_path.read_text().count("\n") >= 3):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        t0 = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=5)
        took = time.monotonic() - t0
    finally:
        proc.kill()
    assert proc.returncode == 0 and took < 1.0, (took, err.decode())
    assert b"Traceback" not in err and b"stopped after" in err
    text = csv_path.read_text()
    assert text.endswith("\n")
    rows = _read_csv(csv_path)
    assert len(rows) >= 2 and all(None not in r.values() and len(r) == len(CSV_COLUMNS) for r in rows)
    _check_timeline(rows, seconds=float(rows[-1]["t"]))


def test_print_config_merges_preset_and_options(capsys):
    rc = cli.main(["live", "--config", "lighting", "--rate", "12", "-d", "Scarlett", "--no-zmq",
                   "--print-config"])
    cfg = tomllib.loads(capsys.readouterr().out)
    assert rc == 0
    assert cfg["analysis"]["update_hz"] == 12.0 and cfg["analysis"]["smoothing_s"] == 4.0
    assert cfg["input"]["device"] == "Scarlett" and cfg["output"]["zmq"] == ""


@pytest.mark.parametrize("argv, message", [
    (["live", "--rate", "50"], r"--rate 50.0 is invalid: .*\(0, 20\]"),
    (["demo", "--config", "nope-preset"], "config file nope-preset not found"),
    (["live", "--file", "x.wav", "-d", "2"], "-d/--device select an input device"),
    (["live", "--file", "/nonexistent/x.wav"], "cannot read audio file /nonexistent/x.wav"),
    (["analyze", "--out", "o", "/nonexistent"], "cannot read audio file /nonexistent"),
    (["live", "--file", "x.wav", "--model", "/nonexistent/m.onnx"], "model file /nonexistent/m.onnx"),
    (["demo", "--seconds", "0"], r"--seconds 0 is invalid: it must be a number of seconds in \(0, "),
])
def test_errors_exit_2_with_a_message(argv, message, capsys, tiny_model_path, monkeypatch,
                                      tmp_path):
    monkeypatch.setenv("MOODTRACK_MODEL", str(tiny_model_path))
    monkeypatch.chdir(tmp_path)
    rc = cli.main(argv)
    err = capsys.readouterr().err
    assert rc == (1 if argv[0] == "analyze" else 2), err
    assert "Traceback" not in err
    import re
    assert re.search(message, err), err


def test_bad_config_file_exits_2(tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[analysis]\nupdate_hz = 2\nsmothing_s = 3\n")
    assert cli.main(["demo", "--config", str(cfg)]) == 2
    assert "unknown key analysis.smothing_s" in capsys.readouterr().err


def test_devices_lists_the_default(monkeypatch, capsys):
    from realtime import devices
    from tests.test_sources import FAKE

    monkeypatch.setattr(devices, "query_devices", lambda: FAKE)
    assert cli.main(["devices"]) == 0
    assert "> 4 default, ALSA" in capsys.readouterr().out
    assert cli.main(["live", "-l"]) == 0
    assert "Scarlett" in capsys.readouterr().out


def test_listen_times_out(capsys):
    assert cli.main(["listen", f"tcp://127.0.0.1:{_free_port()}", "-n", "1",
                     "--timeout", "0.2"]) == 1
    assert "no message" in capsys.readouterr().err


def test_demo_recording_is_bundled_with_its_licence():
    info = sf.info(str(cli.DEMO_PATH))
    assert (info.samplerate, info.channels, info.format) == (22050, 1, "OGG")
    assert 120 <= info.duration <= 180
    assert cli.DEMO_PATH.stat().st_size < 2.5e6
    source = (cli.DEMO_PATH.parent / "DEMO_SOURCE.md").read_text()
    for needed in ("CC BY-SA 3.0", "Max McCracken", "singularity-music", "calm", "tense",
                   "melancholic", "uplifting"):
        assert needed in source


def test_demo_runs_the_live_pipeline(capsys, tiny_model_path):
    t0 = time.monotonic()
    rc = cli.main(["demo", "--seconds", "1.5", "--no-zmq", "--model", str(tiny_model_path)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert time.monotonic() - t0 >= 1.4  # real-time pace
    lines = captured.out.splitlines()
    assert len(lines) == 2 and lines[0].split()[0] == "1.00s" and lines[1].split()[0] == "1.50s"
    assert "demo.ogg (22050 Hz, 1 ch)" in captured.err


def test_subscribe_template_has_help_and_rejects_a_bad_endpoint():
    script = str(ROOT / "tools" / "subscribe.py")
    out = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0 and "endpoint" in out.stdout and not out.stderr
    bad = subprocess.run([sys.executable, script, "nonsense"], capture_output=True, text=True,
                         timeout=30)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith("subscribe.py: error: cannot connect to 'nonsense'")
