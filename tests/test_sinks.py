"""Sinks: CSV timeline, ZeroMQ publisher, plain log."""

from __future__ import annotations

import csv
import io
import json
import time

import pytest
import zmq

from realtime.errors import MoodtrackError
from realtime.mood import MoodUpdate
from realtime.sinks import CSV_COLUMNS, CsvSink, LogSink, ZmqSink, _is_loopback, format_line
from realtime.stats import PipelineStats

SCHEMA_KEYS = ["schema", "seq", "t", "wall", "valence", "arousal", "quadrant", "mood",
               "confidence", "level_db", "silence", "latency_ms", "color", "color_hex",
               "loudness_m", "loudness_s", "speech"]


def make_update(seq: int = 0, *, t: float | None = None, valence: float = -0.42,
                arousal: float = 0.61, level_db: float = -23.1, silence: bool = False) -> MoodUpdate:
    if silence:
        quadrant, mood, conf = None, "silence", 0.0
    else:
        quadrant = "Q" + str({(True, True): 1, (False, True): 2, (False, False): 3,
                              (True, False): 4}[(valence >= 0, arousal >= 0)])
        mood = {"Q1": "uplifting", "Q2": "tense", "Q3": "melancholic", "Q4": "calm"}[quadrant]
        conf = 0.73
    return MoodUpdate(seq=seq, t=0.5 * seq if t is None else t, wall=1767225600.0 + seq,
                      valence=valence, arousal=arousal, quadrant=quadrant, mood=mood,
                      confidence=conf, level_db=level_db, silence=silence, latency_ms=4.25)


# --- CSV ---------------------------------------------------------------------------


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_csv_header_and_rows_flushed_row_by_row(tmp_path):
    path = tmp_path / "timeline.csv"
    sink = CsvSink(path)
    try:
        assert read_rows(path) == [list(CSV_COLUMNS)]
        for i in range(3):
            sink.emit(make_update(i))
            rows = read_rows(path)  # read while the sink is still open
            assert len(rows) == 2 + i
        sink.emit(make_update(3, t=1.23456789, valence=0.123456, arousal=-0.98765, silence=True))
        row = dict(zip(CSV_COLUMNS, read_rows(path)[-1]))
    finally:
        sink.close()
    assert row == {"t": "1.235", "valence": "0.1235", "arousal": "-0.9877", "quadrant": "",
                   "mood": "silence", "confidence": "0.0", "level_db": "-23.1", "silence": "1",
                   "wall": "1767225603.0", "seq": "3", "latency_ms": "4.25", "loudness_m": "",
                   "loudness_s": "", "speech": ""}
    first = dict(zip(CSV_COLUMNS, read_rows(path)[1]))
    assert (first["quadrant"], first["mood"], first["silence"]) == ("Q2", "tense", "0")
    assert {"t", "valence", "arousal", "quadrant", "mood", "confidence", "level_db"} <= set(CSV_COLUMNS)


def test_csv_row_is_one_write_call(tmp_path):
    sink = CsvSink(tmp_path / "t.csv")
    writes = []
    real = sink._file

    class Recorder:
        def write(self, b):
            writes.append(b)
            return real.write(b)

        def close(self):
            real.close()

    sink._file = Recorder()
    sink.emit(make_update(0))
    sink.emit(make_update(1))
    sink.close()
    assert len(writes) == 2 and all(w.endswith(b"\n") and w.count(b"\n") == 1 for w in writes)


def test_csv_unflushed_complete_after_close_and_close_idempotent(tmp_path):
    path = tmp_path / "t.csv"
    sink = CsvSink(path, flush=False)
    for i in range(100):
        sink.emit(make_update(i))
    sink.close()
    sink.close()
    sink.emit(make_update(100))  # after close: ignored, no error
    rows = read_rows(path)
    assert len(rows) == 101 and rows[-1][CSV_COLUMNS.index("seq")] == "99"


@pytest.mark.parametrize("name", ["missing-dir/t.csv", "."])
def test_csv_unwritable_path_names_it(tmp_path, name):
    path = tmp_path / name
    with pytest.raises(MoodtrackError, match=str(path).replace(".", r"\.")):
        CsvSink(path)


# --- LogSink -----------------------------------------------------------------------


def test_log_line_format():
    up = make_update(25, t=12.5, valence=-0.42, arousal=0.61, level_db=-23.1)
    assert format_line(up) == "  12.50s  Q2 tense        v=-0.42 a=+0.61 conf=0.73  -23.1 dBFS"
    out = io.StringIO()
    sink = LogSink(out)
    sink.emit(up)
    sink.emit(make_update(26, t=13.0, level_db=float("-inf"), silence=True))
    sink.close()
    sink.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == format_line(up)
    assert lines[1] == "  13.00s  -- silence      v=-0.42 a=+0.61 conf=0.00 -120.0 dBFS"


def test_log_broken_stream_does_not_raise():
    class Broken(io.StringIO):
        def write(self, s):
            raise BrokenPipeError(32, "Broken pipe")

    sink = LogSink(Broken())
    sink.emit(make_update(0))
    sink.emit(make_update(1))
    sink.close()


# --- ZeroMQ ------------------------------------------------------------------------


@pytest.fixture
def ctx():
    c = zmq.Context()
    yield c
    c.term()


def sub_socket(ctx, endpoint, **opts):
    s = ctx.socket(zmq.SUB)
    s.setsockopt(zmq.LINGER, 0)
    for k, v in opts.items():
        s.setsockopt(getattr(zmq, k), v)
    s.setsockopt(zmq.SUBSCRIBE, b"mood")
    s.connect(endpoint)
    return s


def handshake(sink, subs, *, start_seq=0, deadline_s=5.0):
    """Emit until every subscriber has received one message (ZeroMQ's slow joiner);
    returns the next seq."""
    pending, seq, t_end = list(subs), start_seq, time.monotonic() + deadline_s
    while pending:
        assert time.monotonic() < t_end, "subscriber never connected"
        sink.emit(make_update(seq))
        seq += 1
        for s in list(pending):
            if s.poll(10):
                s.recv_multipart()
                pending.remove(s)
    for s in subs:  # drain what arrived during the handshake
        while s.poll(50):
            s.recv_multipart()
    return seq


def test_zmq_messages_two_frames_consecutive_seq_schema(ctx):
    sink = ZmqSink("tcp://127.0.0.1:*")
    sub = sub_socket(ctx, sink.endpoint)
    try:
        assert sink.endpoint.startswith("tcp://127.0.0.1:") and not sink.endpoint.endswith("*")
        seq = handshake(sink, [sub])
        got = []
        for i in range(seq, seq + 20):
            sink.emit(make_update(i, level_db=-23.14159 if i % 2 else float("-inf"),
                                  silence=i % 5 == 0))
            assert sub.poll(2000)
            frames = sub.recv_multipart()
            assert len(frames) == 2 and frames[0] == b"mood"
            got.append(json.loads(frames[1]))
    finally:
        sub.close(0)
        sink.close()
    assert [m["seq"] for m in got] == list(range(seq, seq + 20))
    for m in got:
        assert list(m) == SCHEMA_KEYS and m["schema"] == 1
        assert isinstance(m["silence"], bool) and m["level_db"] in (-23.14, -120.0)
        assert (m["quadrant"] is None) == m["silence"]
    assert got[1]["t"] == round(0.5 * (seq + 1), 3)


def test_zmq_single_frame(ctx):
    sink = ZmqSink("tcp://127.0.0.1:*", frames="single")
    sub = sub_socket(ctx, sink.endpoint)
    try:
        seq = handshake(sink, [sub])
        sink.emit(make_update(seq))
        assert sub.poll(2000)
        (frame,) = sub.recv_multipart()
    finally:
        sub.close(0)
        sink.close()
    assert frame.startswith(b"mood {") and json.loads(frame[5:])["seq"] == seq


def test_zmq_stuck_subscriber_never_blocks_and_drops_are_counted(ctx):
    stats = PipelineStats()
    sink = ZmqSink("tcp://127.0.0.1:*", hwm=16, stats=stats)
    stuck = sub_socket(ctx, sink.endpoint, RCVHWM=16)
    reader = sub_socket(ctx, sink.endpoint)
    try:
        seq = handshake(sink, [stuck, reader])
        t0 = time.perf_counter()
        for i in range(seq, seq + 10_000):  # the stuck subscriber reads none of these
            sink.emit(make_update(i))
        elapsed = time.perf_counter() - t0
        assert stats.zmq_dropped > 0
        # The stuck subscriber does not silence the others.
        last = None
        for i in range(seq + 10_000, seq + 10_050):
            sink.emit(make_update(i))
            while reader.poll(5):
                last = json.loads(reader.recv_multipart()[1])["seq"]
        deadline = time.monotonic() + 5
        while last != seq + 10_049 and time.monotonic() < deadline:
            if reader.poll(100):
                last = json.loads(reader.recv_multipart()[1])["seq"]
        assert last == seq + 10_049
    finally:
        stuck.close(0)
        reader.close(0)
        sink.close()
    assert elapsed < 5.0  # ~0.2 s normally; blocking would hang


def test_zmq_subscriber_leaving_and_new_one_joining(ctx):
    sink = ZmqSink("tcp://127.0.0.1:*")
    try:
        first = sub_socket(ctx, sink.endpoint)
        seq = handshake(sink, [first])
        first.close(0)
        for i in range(seq, seq + 200):
            sink.emit(make_update(i))
        second = sub_socket(ctx, sink.endpoint)
        try:
            handshake(sink, [second], start_seq=seq + 200)
        finally:
            second.close(0)
    finally:
        sink.close()
        sink.close()
    sink.emit(make_update(0))  # after close: ignored


def test_zmq_address_in_use(ctx):
    first = ZmqSink("tcp://127.0.0.1:*")
    try:
        with pytest.raises(MoodtrackError) as err:
            ZmqSink(first.endpoint)
    finally:
        first.close()
    msg = str(err.value)
    assert first.endpoint in msg and "--zmq" in msg and "--no-zmq" in msg


def test_zmq_bad_endpoint():
    with pytest.raises(MoodtrackError, match="nonsense"):
        ZmqSink("nonsense")


@pytest.mark.parametrize("endpoint,local", [
    ("tcp://127.0.0.1:5556", True), ("tcp://localhost:5556", True), ("tcp://[::1]:5556", True),
    ("ipc:///tmp/mood", True), ("inproc://mood", True), ("tcp://*:5556", False),
    ("tcp://0.0.0.0:5556", False), ("tcp://192.168.1.20:5556", False), ("tcp://eth0:5556", False),
])
def test_loopback_detection(endpoint, local):
    assert _is_loopback(endpoint) is local


def test_non_loopback_bind_warns_once_at_construction(capsys):
    sink = ZmqSink("tcp://127.0.0.1:*")
    sink.emit(make_update(0))
    sink.close()
    assert capsys.readouterr().err == ""
    sink = ZmqSink("tcp://0.0.0.0:*")
    try:
        err = capsys.readouterr().err
        assert err.count("warning") == 1 and "0.0.0.0" in err
        sink.emit(make_update(0))
        sink.emit(make_update(1))
        assert capsys.readouterr().err == ""
    finally:
        sink.close()
