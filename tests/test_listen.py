"""``moodtrack listen``: prints what the publisher sends."""

from __future__ import annotations

import io
import json
import threading
import time

import pytest

from realtime.errors import MoodtrackError
from realtime.listen import listen
from realtime.sinks import ZmqSink
from tests.test_sinks import SCHEMA_KEYS, make_update


def run_listener(sink, *, count, start_seq=0, skip=()):
    """listen() in a thread while emitting every 10 ms; returns (status, output lines)."""
    out, result = io.StringIO(), {}
    th = threading.Thread(target=lambda: result.update(
        rc=listen(sink.endpoint, count=count, timeout_s=10, out=out)))
    th.start()
    seq, t_end = start_seq, time.monotonic() + 10
    while th.is_alive() and time.monotonic() < t_end:
        if seq not in skip:
            sink.emit(make_update(seq))
        seq += 1
        time.sleep(0.01)
    th.join(5)
    return result.get("rc"), out.getvalue().splitlines()


@pytest.mark.parametrize("endpoint,frames", [("tcp://127.0.0.1:*", "multi"),
                                             ("tcp://127.0.0.1:*", "single"),
                                             ("tcp://[::1]:*", "multi")])
def test_listen_prints_messages_and_stops_after_count(endpoint, frames):
    try:
        sink = ZmqSink(endpoint, frames=frames)
    except MoodtrackError:
        if "::1" not in endpoint:
            raise
        pytest.skip("no IPv6 loopback here")
    try:
        rc, lines = run_listener(sink, count=5)
    finally:
        sink.close()
    assert rc == 0 and len(lines) == 5
    msgs = [json.loads(line) for line in lines]
    assert all(list(m) == SCHEMA_KEYS for m in msgs)
    seqs = [m["seq"] for m in msgs]
    assert seqs == list(range(seqs[0], seqs[0] + 5))


def test_listen_reports_gaps(capsys):
    sink = ZmqSink("tcp://127.0.0.1:*")
    try:
        rc, lines = run_listener(sink, count=30, skip=set(range(10, 2000, 7)))
    finally:
        sink.close()
    assert rc == 0 and len(lines) == 30
    assert "missed 1 message(s)" in capsys.readouterr().err


def test_listen_times_out_when_nothing_is_published(capsys):
    sink = ZmqSink("tcp://127.0.0.1:*")
    try:
        t0 = time.monotonic()
        rc = listen(sink.endpoint, count=1, timeout_s=0.3, out=io.StringIO())
    finally:
        sink.close()
    assert rc == 1 and time.monotonic() - t0 < 3
    err = capsys.readouterr().err
    assert sink.endpoint in err and "encrypted" in err and "--keys DIR" in err


def test_listen_bad_endpoint():
    with pytest.raises(MoodtrackError, match="nonsense"):
        listen("nonsense", count=1, timeout_s=0.1)
