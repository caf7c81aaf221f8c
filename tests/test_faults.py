"""Faults a run survives: kill -9 mid-run, a full disk under the CSV, slow and dead
ZeroMQ subscribers while an hour-long stream (shortened here) runs at full speed."""

from __future__ import annotations

import csv
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from realtime import cli
from realtime.sinks import CSV_COLUMNS
from tests.conftest import SR, tone_mix

ROOT = Path(__file__).resolve().parent.parent


def _env(model):
    return {**os.environ, "MOODTRACK_MODEL": str(model), "PYTHONPATH": str(ROOT)}


def _whole_rows(path) -> list[dict]:
    """The CSV read by a CSV reader: every row complete and parseable."""
    text = Path(path).read_bytes().decode("utf-8")
    assert text == "" or text.endswith("\n"), text[-200:]
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == CSV_COLUMNS
    out = []
    for r in rows[1:]:
        assert len(r) == len(CSV_COLUMNS), r
        d = dict(zip(CSV_COLUMNS, r))
        float(d["t"]), float(d["valence"]), float(d["arousal"]), int(d["seq"])
        out.append(d)
    assert [int(d["seq"]) for d in out] == list(range(len(out)))
    return out


@pytest.fixture(scope="module")
def long_wav(tmp_path_factory):
    path = tmp_path_factory.mktemp("faults") / "long.wav"
    sf.write(path, tone_mix(30.0, seed=4), SR)
    return path


def _live(model, wav, csv_path, *extra, preexec=None):
    return subprocess.Popen(
        [sys.executable, "-m", "realtime", "live", "--file", str(wav), "--csv", str(csv_path),
         "--rate", "20", *extra],
        cwd=ROOT, env=_env(model), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, preexec_fn=preexec)


def test_kill_9_leaves_a_csv_readable_up_to_its_last_row(tiny_model_path, long_wav, tmp_path):
    rng = np.random.default_rng(5)
    for k in range(2):
        csv_path = tmp_path / f"k{k}.csv"
        proc = _live(tiny_model_path, long_wav, csv_path, "--no-zmq")
        try:
            deadline = time.monotonic() + 60
            while not (csv_path.exists() and csv_path.stat().st_size > 400):
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.02)
            time.sleep(float(rng.uniform(0, 0.5)))  # somewhere between two rows, or in one
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            proc.kill()
        rows = _whole_rows(csv_path)
        assert len(rows) >= 3


def _limit_file_size(nbytes: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))
    return apply


def test_csv_full_disk_stops_the_run_with_the_reason(tiny_model_path, long_wav, tmp_path):
    csv_path = tmp_path / "full.csv"
    proc = _live(tiny_model_path, long_wav, csv_path, "--no-zmq", "--seconds", "10",
                 preexec=_limit_file_size(1000))
    _, err = proc.communicate(timeout=60)
    err = err.decode()
    assert proc.returncode == 2, err
    assert "Traceback" not in err
    assert f"CSV timeline {csv_path} stopped after" in err and "File too large" in err
    assert "--on-csv-error continue" in err
    rows = _whole_rows(csv_path)  # cut back to the last whole row
    assert len(rows) >= 5 and csv_path.stat().st_size <= 1000


def test_csv_full_disk_can_let_zmq_and_the_log_go_on(tiny_model_path, long_wav, tmp_path):
    import zmq

    from tests.test_cli import _free_port

    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"mood")
    sub.connect(endpoint)
    csv_path = tmp_path / "full.csv"
    proc = _live(tiny_model_path, long_wav, csv_path, "--zmq", endpoint, "--seconds", "3",
                 "--on-csv-error", "continue", preexec=_limit_file_size(1000))
    msgs = []
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None or sub.poll(100):
            if sub.poll(100):
                msgs.append(json.loads(sub.recv_multipart()[1]))
            assert time.monotonic() < deadline
        _, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
        sub.close(0)
        ctx.term()
    err = err.decode()
    assert proc.returncode == 0, err
    assert err.count(f"CSV timeline {csv_path} stopped after") == 1, err
    rows = _whole_rows(csv_path)
    assert msgs and msgs[-1]["t"] == 3.0  # publishing went on to the end
    assert msgs[-1]["seq"] > len(rows)


def test_unwritable_csv_is_a_clear_error_before_the_run(tiny_model_path, long_wav, capsys):
    for path, why in (("/dev/full", "No space left on device"),
                      ("/nonexistent-dir/t.csv", "No such file or directory")):
        rc = cli.main(["live", "--file", str(long_wav), "--no-zmq", "--csv", path,
                       "--model", str(tiny_model_path)])
        err = capsys.readouterr().err
        assert rc == 2 and f"cannot write the CSV timeline to {path}: {why}" in err, err


def test_analyze_on_a_full_disk_reports_the_file_and_leaves_no_partial_csv(
        tiny_model_path, long_wav, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "realtime", "analyze", str(long_wav), "-o", str(out),
         "--rate", "20"],
        cwd=ROOT, env=_env(tiny_model_path), capture_output=True, text=True, timeout=120,
        preexec_fn=_limit_file_size(20000))
    assert proc.returncode == 1, proc.stderr
    assert "long.wav" in proc.stderr and "File too large" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (out / "long.wav.csv").exists()  # no partial timeline
    assert not list(out.glob(".*"))  # nor a temporary file
    summary = json.loads((out / "summary.json").read_text())
    (entry,) = summary["files"]
    assert "File too large" in entry["error"] and entry["timeline"] in (None, "")


# ------------------------------------------------------------------ slow consumers
def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_stuck_and_vanished_subscribers_never_block_and_memory_stays_flat(tiny_model_path,
                                                                          tmp_path):
    """Minutes of audio at full speed (tools/soak.py runs an hour) to ZeroMQ with a
    subscriber that never reads and one that connects, reads a little and vanishes."""
    import zmq

    from realtime.model import MoodModel
    from realtime.pipeline import Pipeline
    from realtime.sinks import CsvSink, ZmqSink
    from realtime.stats import PipelineStats

    stats = PipelineStats()
    # ipc: socket buffers of a fixed, small size (TCP's grow to megabytes), so the
    # stuck subscriber's backlog really fills up within a few minutes of updates.
    pub = ZmqSink(f"ipc://{tmp_path}/pub.sock", hwm=16, stats=stats)
    sink_csv = CsvSink(tmp_path / "t.csv", stats=stats)
    ctx = zmq.Context()
    stuck = ctx.socket(zmq.SUB)
    stuck.setsockopt(zmq.RCVHWM, 4)
    stuck.setsockopt(zmq.RCVBUF, 4096)
    stuck.setsockopt(zmq.SUBSCRIBE, b"")
    stuck.setsockopt(zmq.LINGER, 0)
    stuck.connect(pub.endpoint)
    gone = ctx.socket(zmq.SUB)
    gone.setsockopt(zmq.SUBSCRIBE, b"")
    gone.setsockopt(zmq.LINGER, 0)
    gone.connect(pub.endpoint)
    time.sleep(0.3)  # subscriptions reach the publisher
    pipe = Pipeline(MoodModel(tiny_model_path), update_hz=20.0, sinks=[sink_csv, pub],
                    stats=stats)
    minute = np.tile(tone_mix(10.0, seed=6), 6)
    rss, worst, minutes = [], 0.0, 3
    try:
        for m in range(minutes):
            for i in range(0, minute.size, 8192):
                t = time.monotonic()
                pipe.push(minute[i:i + 8192], sample_rate=SR)
                worst = max(worst, time.monotonic() - t)
                if m == 0 and i == 8192 * 40:
                    gone.recv_multipart()  # it read something, then disappears
                    gone.close(0)
            rss.append(_rss_mb())
    finally:
        pub.close()
        sink_csv.close()
        stuck.close(0)
        ctx.term()
    assert stats.updates == minutes * 60 * 20 - 19
    assert stats.zmq_dropped > 0  # the stuck subscriber lost messages, nobody waited
    assert worst < 2.0  # no push ever waited on a subscriber (generous: loaded machine)
    assert rss[-1] - rss[0] < 15, rss  # flat after the first minute
    assert len(_whole_rows(tmp_path / "t.csv")) == stats.updates
