"""OSC output: real UDP receivers (python-osc's server, raw datagrams, oscdump)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time

import pytest
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_bundle import OscBundle
from pythonosc.osc_server import ThreadingOSCUDPServer

from realtime.errors import MoodtrackError
from realtime.osc import DEFAULT_ADDRESSES, OscSink, parse_target
from realtime.sinks import DelayedSink
from tests.test_sinks import make_update


def coloured(seq=0, **kw):
    """An update with a colour and a speech value (which OSC sends only when present)."""
    u = make_update(seq, **kw)
    u.color = (0.25, 0.5, 1.0)
    u.speech = 0.375
    return u


class Receiver:
    """python-osc's UDP server on a free loopback port, recording (address, args)."""

    def __init__(self):
        self.got: list[tuple[str, tuple]] = []
        d = Dispatcher()
        d.set_default_handler(lambda addr, *args: self.got.append((addr, args)))
        self.server = ThreadingOSCUDPServer(("127.0.0.1", 0), d)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def wait(self, n, timeout=5.0):
        deadline = time.monotonic() + timeout
        while len(self.got) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return dict(self.got)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def raw_udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(5)
    yield s
    s.close()


def test_default_addresses_numbers_only_unit_range(receiver):
    sink = OscSink("127.0.0.1", receiver.port)
    try:
        sink.emit(coloured(valence=-0.5, arousal=0.6))
        got = receiver.wait(6)
    finally:
        sink.close()
    assert set(got) == set(DEFAULT_ADDRESSES.values())
    assert got["/mood/valence"] == pytest.approx((0.25,))
    assert got["/mood/arousal"] == pytest.approx((0.8,))
    assert got["/mood/quadrant"] == (2,) and isinstance(got["/mood/quadrant"][0], int)
    assert got["/mood/confidence"] == pytest.approx((0.73,))
    assert got["/mood/color"] == pytest.approx((0.25, 0.5, 1.0))
    assert got["/mood/speech"] == (0.375,)
    for addr, args in got.items():
        assert all(isinstance(a, (int, float)) for a in args), addr
        if addr != "/mood/quadrant":
            assert all(0.0 <= a <= 1.0 for a in args), addr
    assert sink.sent == 1 and sink.dropped == 0


def test_bipolar_range_and_quadrant_while_silent(receiver):
    sink = OscSink("127.0.0.1", receiver.port, range="bipolar")
    try:
        sink.emit(make_update(0, valence=0.3, arousal=-0.9, silence=True))
        got = receiver.wait(4)
    finally:
        sink.close()
    assert got["/mood/valence"] == pytest.approx((0.3,))
    assert got["/mood/arousal"] == pytest.approx((-0.9,))
    assert got["/mood/quadrant"] == (4,)  # the held point's quadrant, never "none"
    assert got["/mood/confidence"] == (0.0,)
    assert "/mood/color" not in got  # an update without colour sends none
    assert "/mood/speech" not in got  # nor one without a speech value


def test_one_bundle_per_update(raw_udp):
    sink = OscSink("127.0.0.1", raw_udp.getsockname()[1])
    try:
        for i in range(3):
            sink.emit(coloured(i))
        datagrams = [raw_udp.recv(65536) for _ in range(3)]
    finally:
        sink.close()
    for d in datagrams:
        assert OscBundle.dgram_is_bundle(d)
        bundle = OscBundle(d)
        assert [m.address for m in bundle] == list(DEFAULT_ADDRESSES.values())
        types = {m.address: "".join("i" if isinstance(p, int) else "f" for p in m.params)
                 for m in bundle}
        assert types == {"/mood/valence": "f", "/mood/arousal": "f", "/mood/quadrant": "i",
                         "/mood/confidence": "f", "/mood/color": "fff", "/mood/speech": "f"}


def test_address_map_moves_adds_and_turns_off(receiver):
    amap = {"arousal": "/composition/layers/1/video/opacity", "valence": "",
            "red": ["/rig/par1/red", "/rig/par2/red"], "silence": "/rig/blackout"}
    sink = OscSink("127.0.0.1", receiver.port, address_map=amap)
    try:
        sink.emit(coloured(valence=0.9, arousal=-1.0))
        got = receiver.wait(8)
    finally:
        sink.close()
    assert got == {"/composition/layers/1/video/opacity": (0.0,), "/mood/quadrant": (4,),
                   "/mood/confidence": pytest.approx((0.73,)), "/mood/color": (0.25, 0.5, 1.0),
                   "/rig/par1/red": (0.25,), "/rig/par2/red": (0.25,), "/rig/blackout": (0,),
                   "/mood/speech": (0.375,)}


@pytest.mark.parametrize("amap, message", [
    ({"loudness": "/x"}, "unknown field 'loudness'"),
    ({"arousal": "opacity"}, "must start with /"),
    ({"arousal": "/a b"}, "no spaces"),
    ({"arousal": 3}, "must be an address"),
])
def test_bad_address_map(amap, message):
    with pytest.raises(MoodtrackError, match=message):
        OscSink("127.0.0.1", 9000, address_map=amap)


def test_targets_and_bad_targets():
    assert parse_target("127.0.0.1:9000") == ("127.0.0.1", 9000)
    assert parse_target("[::1]:7000") == ("::1", 7000)
    assert parse_target("9001") == ("127.0.0.1", 9001)
    for bad in ("127.0.0.1", "host:", "host:70000", ":9000", "x:y"):
        with pytest.raises(MoodtrackError, match="OSC target"):
            parse_target(bad)
    with pytest.raises(MoodtrackError, match="cannot resolve 'no-such-host.invalid'"):
        OscSink("no-such-host.invalid", 9000)
    with pytest.raises(MoodtrackError, match="range"):
        OscSink("127.0.0.1", 9000, range="percent")


def test_send_failure_is_counted_never_raised(capsys):
    sink = OscSink("127.0.0.1", 9)

    class Full:
        def sendto(self, data, addr):
            raise BlockingIOError(11, "Resource temporarily unavailable")

        def close(self):
            pass

    sink._sock.close()
    sink._sock = Full()
    for i in range(5):
        sink.emit(coloured(i))
    sink.close()
    sink.close()
    sink.emit(coloured(6))  # after close: ignored
    assert (sink.sent, sink.dropped) == (0, 5)
    assert capsys.readouterr().err.count("OSC to 127.0.0.1:9") == 1


def test_no_receiver_does_not_block_or_raise():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nobody listens there
    sink = OscSink("127.0.0.1", port)
    t0 = time.perf_counter()
    for i in range(500):
        sink.emit(coloured(i))
    sink.close()
    assert time.perf_counter() - t0 < 2.0


def test_delayed_osc_arrives_late_in_order(receiver):
    sink = DelayedSink(OscSink("127.0.0.1", receiver.port, address_map={"valence": "/v"}),
                       250)
    try:
        t0 = time.monotonic()
        for i in range(3):
            sink.emit(coloured(i, valence=-1.0 + i))
        assert time.monotonic() - t0 < 0.05  # emit only queues
        time.sleep(0.15)
        assert receiver.got == []
        receiver.wait(15)
        took = time.monotonic() - t0
    finally:
        sink.close()
    assert 0.25 <= took < 2.0
    assert [args for addr, args in receiver.got if addr == "/v"] == [(0.0,), (0.5,), (1.0,)]


@pytest.mark.skipif(shutil.which("oscdump") is None,
                    reason="oscdump not installed (Debian: apt-get install liblo-tools)")
def test_oscdump_receives_bundles():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(["oscdump", "-L", str(port)], stdout=subprocess.PIPE, text=True)
    sink = OscSink("127.0.0.1", port)
    try:
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")),
                                  daemon=True)
        reader.start()
        deadline = time.monotonic() + 10
        seq = 0
        while sum("/mood/color" in line for line in lines) < 2:
            assert time.monotonic() < deadline, lines
            sink.emit(coloured(seq))  # oscdump may still be starting: keep sending
            seq += 1
            time.sleep(0.1)
    finally:
        sink.close()
        proc.terminate()
        proc.wait(5)
    body = [line.strip().split(None, 1)[1] for line in lines if line.strip()]
    assert "/mood/quadrant i 2" in body
    assert "/mood/color fff 0.250000 0.500000 1.000000" in body
    assert any(b.startswith("/mood/valence f 0.29") for b in body)
    # The messages of one bundle share its timetag, the first column.
    stamps = [line.split()[0] for line in lines if "/mood/" in line]
    assert len(set(stamps)) < len(stamps)
