"""ZeroMQ beyond the basics: CONFLATE subscribers, the status topic, CURVE keys, delays,
and a subscriber in another language (Node.js)."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest
import zmq

from realtime.errors import MoodtrackError
from realtime.listen import secure_client
from realtime.sinks import DelayedSink, ZmqSink, generate_keys
from realtime.stats import PipelineStats
from tests.test_sinks import SCHEMA_KEYS, ctx, handshake, make_update, sub_socket  # noqa: F401

NODE_DIR = Path(__file__).resolve().parent.parent / "tools" / "node-subscriber"
STATUS_KEYS = ["schema", "seq", "wall", "uptime_s", "version", "device", "sample_rate",
               "channels", "input_state", "overflows", "dropped_blocks", "zmq_dropped",
               "updates", "last_seq", "silence", "level_db", "model", "model_version",
               "input_error", "reconnects", "nonfinite_samples", "csv_error", "input_hint",
               "key_errors"]


def recv_json(sock, timeout_ms=3000):
    assert sock.poll(timeout_ms), "no message"
    frames = sock.recv_multipart()
    return frames, json.loads(frames[-1].partition(b" ")[2] if len(frames) == 1 else frames[1])


# --- single frame + CONFLATE --------------------------------------------------------


def test_conflate_subscriber_gets_the_latest_single_frame_update(ctx):
    sink = ZmqSink("tcp://127.0.0.1:*", frames="single", hwm=1000)  # the burst fits
    latest = ctx.socket(zmq.SUB)
    latest.setsockopt(zmq.LINGER, 0)
    latest.setsockopt(zmq.CONFLATE, 1)  # before connect: keep only the newest message
    latest.setsockopt(zmq.SUBSCRIBE, b"mood")
    latest.connect(sink.endpoint)
    try:
        seq = handshake(sink, [latest])
        for i in range(seq, seq + 100):  # a burst the subscriber does not read
            u = make_update(i)
            u.color = (1.0, 0.5, 0.0)
            sink.emit(u)
        time.sleep(0.3)
        frames, msg = recv_json(latest)
        assert not latest.poll(200)  # nothing older queued behind it
    finally:
        latest.close(0)
        sink.close()
    assert len(frames) == 1 and frames[0].startswith(b"mood {")
    assert msg["seq"] == seq + 99 and list(msg) == SCHEMA_KEYS
    assert msg["color"] == [1.0, 0.5, 0.0] and msg["color_hex"] == "#ff8000"


# --- status topic -------------------------------------------------------------------


@pytest.mark.parametrize("frames", ["multi", "single"])
def test_status_once_per_interval_even_without_updates(ctx, frames):
    stats = PipelineStats(device="Scarlett 2i2", sample_rate=48000, channels=2, overflows=3,
                          input_state="stalled")
    sink = ZmqSink("tcp://127.0.0.1:*", stats=stats, status_s=0.1, frames=frames,
                   model=("mood-ridge", "3"))
    status = sub_socket(ctx, sink.endpoint)
    status.setsockopt(zmq.SUBSCRIBE, b"status")
    status.setsockopt(zmq.UNSUBSCRIBE, b"mood")
    mood = sub_socket(ctx, sink.endpoint)
    try:
        sink.start()
        sink.start()  # idempotent
        first = recv_json(status)[1]
        sink.emit(make_update(41, silence=True))
        msgs = []
        t0 = time.monotonic()
        while len(msgs) < 3:
            got = recv_json(status)
            msgs.append(got)
        took = time.monotonic() - t0
        _, mood_msg = recv_json(mood)
        while mood.poll(100):  # the mood subscriber sees no status messages
            assert mood.recv_multipart()[0].startswith(b"mood")
    finally:
        status.close(0)
        mood.close(0)
        sink.close()
    assert 0.15 < took < 2.0  # about 0.1 s apart
    frames_, last = msgs[-1]
    assert (frames_[0] == b"status") if frames == "multi" else frames_[0].startswith(b"status {")
    assert list(last) == STATUS_KEYS
    assert last["seq"] > first["seq"] and last["schema"] == 1
    assert (last["device"], last["sample_rate"], last["channels"]) == ("Scarlett 2i2", 48000, 2)
    assert (last["overflows"], last["input_state"]) == (3, "stalled")
    assert (last["model"], last["model_version"]) == ("mood-ridge", "3")
    assert (last["last_seq"], last["silence"]) == (41, True)
    assert (first["last_seq"], first["silence"]) == (None, None)
    assert mood_msg["seq"] == 41


def test_status_thread_stops_on_close(ctx):
    sink = ZmqSink("tcp://127.0.0.1:*", status_s=0.05)
    sink.start()
    time.sleep(0.1)
    sink.close()
    assert not sink._status_thread.is_alive()
    assert not any(t.name == "zmq-status" and t.is_alive() for t in threading.enumerate())


# --- CURVE --------------------------------------------------------------------------


@pytest.fixture
def keys(tmp_path):
    d = tmp_path / "keys"
    generate_keys(d)
    return d


def test_keys_files_and_permissions(keys):
    names = sorted(p.name for p in keys.iterdir())
    assert names == ["authorized_clients", "client.key", "client.key_secret", "server.key",
                     "server.key_secret"]
    assert [p.name for p in (keys / "authorized_clients").iterdir()] == ["client.key"]
    for p in keys.glob("*.key_secret"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
    server_before = (keys / "server.key_secret").read_bytes()
    generate_keys(keys, client="stage-pc")  # a second client keeps the server keys
    assert (keys / "server.key_secret").read_bytes() == server_before
    assert (keys / "authorized_clients" / "stage-pc.key").is_file()
    with pytest.raises(MoodtrackError, match="exists already"):
        generate_keys(keys, client="stage-pc")
    with pytest.raises(MoodtrackError, match="client name"):
        generate_keys(keys, client="../evil")


def test_curve_subscriber_receives_others_do_not(ctx, keys, tmp_path, capsys):
    sink = ZmqSink("tcp://0.0.0.0:*", keys=keys)
    assert "warning" not in capsys.readouterr().err  # a wide bind with keys: no warning
    port = sink.endpoint.rsplit(":", 1)[1]
    endpoint = f"tcp://127.0.0.1:{port}"

    def sub(keys_dir=None, client="client"):
        s = ctx.socket(zmq.SUB)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SUBSCRIBE, b"mood")
        if keys_dir is not None:
            secure_client(s, keys_dir, client)
        s.connect(endpoint)
        return s

    stranger_keys = tmp_path / "stranger"
    generate_keys(stranger_keys)  # its own server key, and a client the tracker does not know
    # right server key, unknown client key:
    (stranger_keys / "server.key").write_bytes((keys / "server.key").read_bytes())
    good, plain, stranger = sub(keys), sub(), sub(stranger_keys)
    try:
        seq = handshake(sink, [good])
        sink.emit(make_update(seq))
        assert json.loads(good.recv_multipart()[1])["seq"] == seq
        for i in range(seq + 1, seq + 20):
            sink.emit(make_update(i))
            time.sleep(0.02)
        assert not plain.poll(300) and not stranger.poll(300)
    finally:
        for s in (good, plain, stranger):
            s.close(0)
        sink.close()


def test_curve_bad_keys_folder(tmp_path):
    with pytest.raises(MoodtrackError, match="moodtrack keys"):
        ZmqSink("tcp://127.0.0.1:*", keys=tmp_path / "none")
    with pytest.raises(MoodtrackError, match="moodtrack keys .* --client bob"):
        secure_client(zmq.Context.instance().socket(zmq.SUB), tmp_path, "bob")


def _receives(sink, subs, *, seconds, start_seq):
    """Emit every 20 ms for ``seconds``; returns (next seq, how many messages each sub got)."""
    got, seq, t_end = [0] * len(subs), start_seq, time.monotonic() + seconds
    while time.monotonic() < t_end:
        sink.emit(make_update(seq))
        seq += 1
        time.sleep(0.02)
        for i, s in enumerate(subs):
            while s.poll(0):
                s.recv_multipart()
                got[i] += 1
    return seq, got


def test_curve_keys_removed_or_added_while_running_take_effect(ctx, keys, monkeypatch, capsys):
    from realtime import sinks

    monkeypatch.setattr(sinks, "KEYS_POLL_S", 0.2)
    generate_keys(keys, client="stage")
    sink = ZmqSink("tcp://127.0.0.1:*", keys=keys)

    def sub(client):
        s = ctx.socket(zmq.SUB)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SUBSCRIBE, b"mood")
        secure_client(s, keys, client)
        s.connect(sink.endpoint)
        return s

    client, stage = sub("client"), sub("stage")
    late = again = None
    try:
        seq = handshake(sink, [client, stage])
        (keys / "authorized_clients" / "stage.key").unlink()  # revoke 'stage'
        seq, _ = _receives(sink, [client, stage], seconds=2.0, start_seq=seq)  # takes effect
        seq, (kept, revoked) = _receives(sink, [client, stage], seconds=1.5, start_seq=seq)
        assert kept > 30 and revoked == 0
        assert "1 authorized client key(s)" in capsys.readouterr().err

        # A refused subscriber stays disconnected (libzmq does not retry a failed CURVE
        # handshake): one that connects after its key was authorized gets through.
        generate_keys(keys, client="late")
        seq, _ = _receives(sink, [client], seconds=1.0, start_seq=seq)
        assert "(1 added, 0 removed)" in capsys.readouterr().err
        late, again = sub("late"), sub("stage")
        seq, (kept, joined, refused) = _receives(sink, [client, late, again], seconds=2.0,
                                                 start_seq=seq)
        assert kept > 60 and joined > 20 and refused == 0
    finally:
        for s in (client, stage, late, again):
            if s is not None:
                s.close(0)
        sink.close()


def test_listen_says_why_an_encrypted_publisher_refuses_it(keys, capsys):
    from realtime.listen import listen

    generate_keys(keys, client="gone")
    (keys / "authorized_clients" / "gone.key").unlink()
    sink, plain = ZmqSink("tcp://127.0.0.1:*", keys=keys), ZmqSink("tcp://127.0.0.1:*")
    try:
        t0 = time.monotonic()
        assert listen(sink.endpoint, count=1, timeout_s=10, out=io.StringIO()) == 1
        err = capsys.readouterr().err
        assert f"{sink.endpoint} is encrypted" in err and "pass --keys DIR" in err
        assert listen(sink.endpoint, count=1, timeout_s=10, out=io.StringIO(), keys=keys,
                      client="gone") == 1
        err = capsys.readouterr().err
        assert "refused client 'gone'" in err and "authorized_clients" in err
        assert listen(plain.endpoint, count=1, timeout_s=10, out=io.StringIO(), keys=keys) == 1
        assert "it is not encrypted (drop --keys)" in capsys.readouterr().err
        assert time.monotonic() - t0 < 8  # said at once, not after the timeout
    finally:
        sink.close()
        plain.close()


def test_wide_bind_without_keys_warns_about_keys(capsys):
    sink = ZmqSink("tcp://0.0.0.0:*")
    sink.close()
    err = capsys.readouterr().err
    assert "warning" in err and "--zmq-keys" in err


# --- DelayedSink (generic) ----------------------------------------------------------


class Recorder:
    def __init__(self):
        self.got, self.closed, self.started = [], False, False

    def emit(self, u):
        self.got.append((time.monotonic(), u.seq))

    def start(self):
        self.started = True

    def close(self):
        self.closed = True


def test_delayed_sink_releases_each_update_after_the_delay_in_order():
    rec = Recorder()
    sink = DelayedSink(rec, 120)
    sink.start()
    sent = {}
    for i in range(5):
        sent[i] = time.monotonic()
        sink.emit(make_update(i))
        time.sleep(0.03)
    deadline = time.monotonic() + 5
    while len(rec.got) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    sink.close()
    assert rec.started and rec.closed
    assert [s for _, s in rec.got] == list(range(5))
    for t, s in rec.got:
        assert 0.12 <= t - sent[s] < 1.0


def test_delayed_sink_close_releases_pending_and_forwards_attributes(ctx):
    rec = Recorder()
    sink = DelayedSink(rec, 10_000)
    for i in range(3):
        sink.emit(make_update(i))
    t0 = time.monotonic()
    sink.close()
    sink.close()
    sink.emit(make_update(9))
    assert time.monotonic() - t0 < 1.0 and [s for _, s in rec.got] == [0, 1, 2]
    z = DelayedSink(ZmqSink("tcp://127.0.0.1:*"), 50)
    try:
        assert z.endpoint.startswith("tcp://127.0.0.1:")
    finally:
        z.close()


# --- Node.js ------------------------------------------------------------------------


def _node_skip_reason() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    if not (NODE_DIR / "node_modules" / "zeromq").is_dir():
        return f"zeromq for Node is not installed: run 'npm install' in {NODE_DIR}"
    return None


@pytest.mark.skipif(_node_skip_reason() is not None, reason=str(_node_skip_reason()))
@pytest.mark.parametrize("frames", ["multi", "single"])
def test_node_subscriber_prints_the_messages(frames):
    sink = ZmqSink("tcp://127.0.0.1:*", frames=frames)
    proc = subprocess.Popen(["node", str(NODE_DIR / "index.js"), sink.endpoint, "--count", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "NODE_NO_WARNINGS": "1"})
    try:
        seq, deadline = 0, time.monotonic() + 30
        while proc.poll() is None:
            assert time.monotonic() < deadline, "node subscriber got nothing"
            u = make_update(seq, valence=0.5, arousal=-0.25)
            u.color = (0.1, 0.2, 0.3)
            sink.emit(u)
            seq += 1
            time.sleep(0.05)
        out, err = proc.communicate(timeout=5)
    finally:
        proc.kill()
        sink.close()
    assert proc.returncode == 0, err
    msgs = [json.loads(line) for line in out.splitlines()]
    assert len(msgs) == 3
    assert [m["seq"] for m in msgs] == list(range(msgs[0]["seq"], msgs[0]["seq"] + 3))
    for m in msgs:
        assert list(m) == SCHEMA_KEYS
        assert (m["valence"], m["arousal"], m["quadrant"], m["mood"]) == (0.5, -0.25, "Q4", "calm")
        assert m["color"] == [0.1, 0.2, 0.3] and m["color_hex"] == "#1a334c"


def test_digital_silence_for_ten_seconds_sets_the_input_hint_of_status():
    from realtime.sinks import status_record
    from realtime.stats import DIGITAL_SILENCE_S, DigitalSilenceWatch

    stats = PipelineStats(device="Monitor of Built-in Audio")
    watch = DigitalSilenceWatch(stats)

    def feed(level_db, t):
        stats.updates += 1
        stats.level_db = level_db
        watch.check(t)

    for k in range(int(DIGITAL_SILENCE_S * 2)):  # 2 updates/s, all digital zeros
        feed(-100.0, k / 2)
        assert not stats.input_hint
    feed(-100.0, DIGITAL_SILENCE_S)
    hint = status_record(stats, seq=0, last=None)["input_hint"]
    assert hint.startswith("no signal: Monitor of Built-in Audio has delivered digital silence")
    assert "'moodtrack devices'" in hint and "-d DEVICE" in hint and "'moodtrack demo'" in hint
    watch.check(DIGITAL_SILENCE_S + 5)  # no new update: unchanged
    assert stats.input_hint == hint
    feed(-60.0, DIGITAL_SILENCE_S + 6)  # quiet room noise is not digital silence
    assert status_record(stats, seq=1, last=None)["input_hint"] is None
    for k in range(10):  # silence again: the count starts over
        feed(-95.0, 20 + k)
    assert not stats.input_hint
    feed(-95.0, 30)
    assert stats.input_hint


def test_a_malformed_key_appearing_while_running_is_named_and_skipped(ctx, keys, monkeypatch,
                                                                      capsys):
    from realtime import sinks

    monkeypatch.setattr(sinks, "KEYS_POLL_S", 0.2)
    sink = ZmqSink("tcp://127.0.0.1:*", keys=keys)
    s = ctx.socket(zmq.SUB)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.SUBSCRIBE, b"mood")
    secure_client(s, keys, "client")
    s.connect(sink.endpoint)
    status = ctx.socket(zmq.SUB)
    status.setsockopt(zmq.LINGER, 0)
    status.setsockopt(zmq.SUBSCRIBE, b"status")
    secure_client(status, keys, "client")
    status.connect(sink.endpoint)
    try:
        seq = handshake(sink, [s])
        bad = keys / "authorized_clients" / "broken.key"
        bad.write_text("not a key\n")
        seq, _ = _receives(sink, [s], seconds=1.0, start_seq=seq)
        seq, (got,) = _receives(sink, [s], seconds=1.0, start_seq=seq)
        assert got > 20  # the valid key still works
        assert f"CURVE key file {bad} is not a key file" in capsys.readouterr().err
        sink.publish_status()
        assert status.poll(3000)
        rec = json.loads(status.recv_multipart()[-1])
        assert [e.split(" is not")[0] for e in rec["key_errors"]] == [f"CURVE key file {bad}"]
    finally:
        s.close(0)
        status.close(0)
        sink.close()
