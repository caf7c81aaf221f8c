"""The web view (realtime/web.py and realtime/web/): server, safety, and a real browser.

The browser tests drive Debian's ``chromium`` through Playwright's Python API (the
quick-start installs both); they are skipped, saying why, where either is missing.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from realtime import cli
from realtime.config import load
from realtime.errors import MoodtrackError
from realtime.mood import MoodUpdate
from realtime.sinks import update_record
from realtime.stats import PipelineStats
from realtime.web import (CLIENT_QUEUE, WebView, access_token, is_loopback, parse_listen,
                          web_record)
from tests.conftest import tone_mix
from tools.browser import chromium_path, launch, served_url

ROOT = Path(__file__).resolve().parent.parent
#: Where the browser tests save screenshots of each view (for the README), when set.
SHOTS = os.environ.get("MOODTRACK_WEB_SHOTS")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def update(seq: int, t: float | None = None, **extra) -> MoodUpdate:
    u = MoodUpdate(seq, t if t is not None else 0.5 * seq, 1.7e9 + seq, 0.3, -0.4, "Q4", "calm",
                   0.6, -20.0, False, 3.0, (0.1, 0.8, 0.4))
    for k, v in extra.items():
        setattr(u, k, v)
    return u


# ----------------------------------------------------------------------- helpers
def http_get(port: int, path: str, *, headers: dict | None = None) -> tuple[int, bytes]:
    """A plain HTTP/1.1 GET on 127.0.0.1 (status, body)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def ws_connect(port: int, path: str = "/ws", *, origin: str | None = None,
               rcvbuf: int | None = None) -> tuple[socket.socket, bytes]:
    """A raw WebSocket handshake: (socket, response head). Reads nothing more."""
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    head = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            + (f"Origin: {origin}\r\n" if origin else "") + "\r\n")
    s.sendall(head.encode())
    resp = b""
    while b"\r\n\r\n" not in resp:
        chunk = s.recv(1)
        if not chunk:
            break
        resp += chunk
    return s, resp


class WsReader(threading.Thread):
    """Reads every message of a WebSocket (aiohttp's client) into ``messages``."""

    def __init__(self, port: int, path: str = "/ws"):
        super().__init__(daemon=True)
        self.url = f"http://127.0.0.1:{port}{path}"
        self.messages: list[dict] = []
        self.connected = threading.Event()
        self.closed = threading.Event()

    def run(self) -> None:
        import aiohttp

        async def main():
            async with aiohttp.ClientSession() as s:
                async with s.ws_connect(self.url, max_msg_size=0) as ws:
                    self.connected.set()
                    async for msg in ws:
                        if msg.type == aiohttp.WSMsgType.TEXT:
                            self.messages.append(json.loads(msg.data))
        try:
            asyncio.run(main())
        finally:
            self.closed.set()

    def of_type(self, kind: str) -> list[dict]:
        return [m for m in list(self.messages) if m["type"] == kind]

    def wait_for(self, pred, timeout: float = 5.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pred():
                return
            time.sleep(0.02)
        raise AssertionError("timed out waiting for the WebSocket messages")


# ------------------------------------------------------------------ pure parts
def test_parse_listen_and_tokens():
    assert parse_listen("8770") == ("127.0.0.1", 8770)
    assert parse_listen("0.0.0.0:80") == ("0.0.0.0", 80)
    assert parse_listen("[::1]:9000") == ("::1", 9000)
    assert parse_listen(":0") == ("127.0.0.1", 0)
    for bad in ("", "host:", "x:70000", "abc"):
        with pytest.raises(MoodtrackError, match="--web"):
            parse_listen(bad)
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.20")
    assert access_token("127.0.0.1") == ("", False)
    token, generated = access_token("0.0.0.0")
    assert generated and len(token) >= 20 and token != access_token("0.0.0.0")[0]
    assert access_token("0.0.0.0", "mine") == ("mine", False)


def test_web_config_section(tmp_path):
    cfg = load(None, {"web": {"listen": "9001"}})
    assert cfg["web"] == {"listen": "9001", "token": "", "history_s": 600.0}
    bad = tmp_path / "bad.toml"
    bad.write_text('[web]\nlisten = "somewhere"\n')
    with pytest.raises(MoodtrackError, match="web.listen"):
        load(bad)
    bad.write_text("[web]\nhistory_s = 5\n")
    with pytest.raises(MoodtrackError, match="web.history_s"):
        load(bad)


def test_web_record_passes_optional_fields_when_present():
    plain = update(3)
    assert web_record(plain) == update_record(plain)  # no tags: the ZeroMQ message's keys
    tags = {"instruments": [["piano", 0.9], ["strings", 0.5]], "genres": [["classical", 0.8]]}
    rich = update(4, loudness_m=-23.456, loudness_s=-21.0, speech=0.25, tags=tags)
    rec = web_record(rich)
    assert rec["loudness_m"] == -23.46 and rec["loudness_s"] == -21.0 and rec["speech"] == 0.25
    assert rec["tags"] == tags
    json.dumps(rec, allow_nan=False)


# --------------------------------------------------------------------- live server
@pytest.fixture
def view():
    stats = PipelineStats(device="test input", sample_rate=48000, channels=2)
    v = WebView("127.0.0.1:0", stats=stats, history_s=60.0, model=("tiny", "0"))
    yield v
    v.close()


def test_pages_get_updates_history_and_health(view):
    for i in range(5):
        view.emit(update(i))
    first = WsReader(view.port)
    first.start()
    first.wait_for(lambda: first.of_type("status"))
    hello, history = first.messages[0], first.messages[1]
    assert hello["type"] == "hello" and hello["mode"] == "live" and hello["history_s"] == 60.0
    assert [u["seq"] for u in history["updates"]] == [0, 1, 2, 3, 4]
    for i in range(5, 25):
        view.emit(update(i))
    first.wait_for(lambda: len(first.of_type("mood")) == 20)
    moods = first.of_type("mood")
    assert [m["seq"] for m in moods] == list(range(5, 25))
    assert {k: v for k, v in moods[-1].items() if k != "type"} == update_record(update(24))
    st = first.of_type("status")[0]
    assert st["device"] == "test input" and st["model"] == "tiny" and st["web_dropped"] == 0
    assert st["web_clients"] == 1
    # history covers history_s seconds of audio: 200 updates at 0.5 s keep the last 60 s
    for i in range(25, 200):
        view.emit(update(i))
    first.wait_for(lambda: first.of_type("mood")[-1]["seq"] == 199)
    second = WsReader(view.port)
    second.start()
    second.wait_for(lambda: second.of_type("history"))
    kept = [u["t"] for u in second.of_type("history")[0]["updates"]]
    assert kept[-1] == 99.5 and kept[0] == 39.5
    view.close()
    assert first.closed.wait(5) and second.closed.wait(5)  # pages see the tracker stop


def test_a_stalled_page_never_blocks_emit_and_its_losses_are_counted(view):
    stalled, head = ws_connect(view.port, rcvbuf=4096)  # connects, then never reads
    assert b" 101 " in head
    reader = WsReader(view.port)
    reader.start()
    reader.connected.wait(5)
    big = {"instruments": [["x" * 4000, 0.5]]}  # large messages fill its buffers quickly
    done = threading.Event()
    last = 3000

    def produce():
        for i in range(last + 1):
            view.emit(update(i, tags=big))
            if i % 50 == 0:
                time.sleep(0.005)
        done.set()

    threading.Thread(target=produce, daemon=True).start()
    assert done.wait(30), "emit() blocked behind a page that does not read"
    reader.wait_for(lambda: reader.of_type("mood") and reader.of_type("mood")[-1]["seq"] == last,
                    timeout=15)
    assert view.stats.web_dropped > 0  # what the stalled page lost, counted
    assert len(view._clients) == 2
    for c in view._clients:
        assert len(c.queue) <= CLIENT_QUEUE
    stalled.close()


def test_token_host_and_origin_checks():
    v = WebView("127.0.0.1:0", token="s3cret-token")
    try:
        p = v.port
        assert http_get(p, "/")[0] == 403
        status, body = http_get(p, "/?token=wrong")
        assert status == 403 and b"access token" in body
        status, body = http_get(p, "/?token=s3cret-token")
        assert status == 200 and b'data-mode="live"' in body
        assert http_get(p, "/app.js")[0] == 200  # the page's code is not secret
        assert b" 403 " in ws_connect(p, "/ws")[1]
        assert b" 403 " in ws_connect(p, "/ws?token=nope")[1]
        assert b" 101 " in ws_connect(p, "/ws?token=s3cret-token")[1]
        assert b" 403 " in ws_connect(p, "/ws?token=s3cret-token",
                                      origin="http://evil.example")[1]
        assert b" 101 " in ws_connect(p, "/ws?token=s3cret-token",
                                      origin=f"http://127.0.0.1:{p}")[1]
    finally:
        v.close()
    open_view = WebView("127.0.0.1:0")  # loopback, no token: loopback Host names only
    try:
        p = open_view.port
        assert http_get(p, "/")[0] == 200
        assert http_get(p, "/", headers={"Host": f"localhost:{p}"})[0] == 200
        assert http_get(p, "/", headers={"Host": f"rebind.example:{p}"})[0] == 421
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", p, timeout=5)
        conn.request("POST", "/", body=b"x")
        assert conn.getresponse().status == 405  # read-only
        conn.close()
    finally:
        open_view.close()


def test_busy_port_is_one_line_and_exit_2(capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        code = cli.main(["demo", "--seconds", "1", "--no-zmq", "--no-dashboard",
                         "--web", f"127.0.0.1:{port}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [f"moodtrack: error: cannot serve the web view on 127.0.0.1:{port}: address "
                   "already in use (another moodtrack?); pick another port with --web "
                   "[HOST:]PORT"]


def test_view_refuses_what_is_not_an_analyze_folder(tmp_path, capsys):
    assert cli.main(["view", str(tmp_path / "missing"), "--web", "0"]) == 2
    assert cli.main(["view", str(tmp_path), "--web", "0"]) == 2
    (tmp_path / "summary.json").write_text("[1, 2]")
    assert cli.main(["view", str(tmp_path), "--web", "0"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and all(e.startswith("moodtrack: error: ") for e in err)
    assert "is not a folder" in err[0] and "has no summary.json" in err[1]
    assert "not a moodtrack run summary" in err[2]


# ------------------------------------------------------------------------- library
@pytest.fixture(scope="module")
def analyzed(tmp_path_factory, tiny_model_path):
    """A small analyze run: three generated files (and their audio)."""
    base = tmp_path_factory.mktemp("library")
    src = base / "in"
    src.mkdir()
    for k, (name, seconds, gain) in enumerate([("quiet strings", 6, 0.03), ("drum loop", 8, 0.5),
                                               ("piano take", 5, 0.15)]):
        sf.write(src / f"{name}.wav", tone_mix(seconds, seed=k) * gain, 22050)
    out = base / "out"
    code = cli.main(["analyze", str(src), "-o", str(out), "--model", str(tiny_model_path)])
    assert code == 0
    return out


def test_library_api_serves_the_run(analyzed):
    v = WebView("127.0.0.1:0", library=analyzed)
    try:
        p = v.port
        status, body = http_get(p, "/api/library")
        listing = json.loads(body)
        summary = json.loads((analyzed / "summary.json").read_text())
        assert status == 200
        assert [f["file"] for f in listing["files"]] == [f["file"] for f in summary["files"]]
        assert all(f["audio"] for f in listing["files"])
        for i, f in enumerate(summary["files"]):
            tl = json.loads(http_get(p, f"/api/timeline/{i}")[1])
            rows = (analyzed / f["timeline"]).read_text().strip().splitlines()[1:]
            assert len(tl["t"]) == len(rows) == f["updates"]
            assert tl["segments"] == f["segments"]
            status, audio = http_get(p, f"/audio/{i}")
            assert status == 200 and audio == Path(f["file"]).read_bytes()
        status, part = http_get(p, "/audio/0", headers={"Range": "bytes=0-99"})
        assert status == 206 and len(part) == 100  # seeking in the page's player
        assert http_get(p, "/audio/9")[0] == 404
        assert http_get(p, "/api/timeline/9")[0] == 404
        assert http_get(p, "/audio/..%2fsummary.json")[0] == 404
    finally:
        v.close()


# ------------------------------------------------------------------- in a browser
@pytest.fixture(scope="module")
def browser():
    if not chromium_path().exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; "
                    "bash tools/quickstart.sh test does it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install playwright)")
    with sync_playwright() as pw:
        b = launch(pw)
        yield b
        b.close()


def wait_js(page, expr: str, timeout: float = 10.0) -> None:
    """Poll a JavaScript expression until true (Playwright's wait_for_function evaluates
    strings in the page, which the page's Content-Security-Policy forbids)."""
    end = time.monotonic() + timeout
    while not page.evaluate(f"() => Boolean({expr})"):
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {expr}")
        page.wait_for_timeout(50)


def open_page(browser, url, *, width=1280, height=900):
    page = browser.new_page(viewport={"width": width, "height": height})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    response = page.goto(url)
    return page, response, errors


class ZmqLog(threading.Thread):
    """Subscribes to a tracker's mood topic and keeps every message by seq."""

    def __init__(self, endpoint: str):
        super().__init__(daemon=True)
        import zmq

        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.SUBSCRIBE, b"mood")
        self.sock.connect(endpoint)
        self.by_seq: dict[int, dict] = {}
        self.latest: dict | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            if self.sock.poll(50):
                msg = json.loads(self.sock.recv_multipart()[-1])
                self.by_seq[msg["seq"]] = msg
                self.latest = msg

    def message(self, seq: int, timeout: float = 2.0) -> dict:
        """The message of ``seq`` (waiting a little: the page may have it first)."""
        end = time.monotonic() + timeout
        while seq not in self.by_seq:
            assert time.monotonic() < end, f"ZeroMQ never published seq {seq}"
            time.sleep(0.01)
        return self.by_seq[seq]

    def close(self) -> None:
        self.stop.set()
        self.join(2)
        self.sock.close(0)
        self.ctx.term()


def start_demo(web_port: int, zmq_port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "realtime", "demo", "--rate", "4", "--no-dashboard",
         "--web", f"127.0.0.1:{web_port}", "--zmq", f"tcp://127.0.0.1:{zmq_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    served_url(proc)
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def page_now(page) -> tuple[int, str, str]:
    """(seq, mood word, colour) the page shows, read at one instant."""
    seq, word, colour = page.evaluate(
        "() => { const m = document.getElementById('mood');"
        " return [m.dataset.seq, m.textContent, m.dataset.color]; }")
    return int(seq), word, colour


def test_live_page_matches_zeromq_and_survives_a_restart(browser):
    web_port, zmq_port = free_port(), free_port()
    zlog = ZmqLog(f"tcp://127.0.0.1:{zmq_port}")
    zlog.start()
    proc = start_demo(web_port, zmq_port)
    page = None
    try:
        page, response, errors = open_page(browser, f"http://127.0.0.1:{web_port}/")
        assert response is not None and response.status == 200
        wait_js(page, "document.getElementById('conn').textContent === 'live'",
                timeout=15)
        wait_js(page, "document.getElementById('mood').dataset.seq >= 8",
                timeout=15)
        assert errors == []
        for _ in range(4):
            seq, word, colour = page_now(page)
            newest = zlog.latest["seq"]
            msg = zlog.message(seq)
            assert word == msg["mood"] and colour == msg["color_hex"]
            assert newest - seq <= 1, f"page at seq {seq}, ZeroMQ at {newest}"
            time.sleep(0.6)
        assert page.evaluate("document.querySelectorAll('#health dd').length") >= 8
        assert page.inner_text("#health [data-key='input state'] dd") == "ok"
        if SHOTS:
            page.wait_for_timeout(3000)
            page.screenshot(path=str(Path(SHOTS) / "web-live.png"))

        stop(proc)  # the tracker stops: the page says so
        wait_js(page, "document.getElementById('conn').textContent === 'disconnected'",
                timeout=5)
        assert "disconnected" in page.inner_text("header")
        zlog.latest, zlog.by_seq = None, {}
        proc = start_demo(web_port, zmq_port)  # and comes back by itself
        wait_js(page, "document.getElementById('conn').textContent === 'live'",
                timeout=20)
        wait_js(page, "document.getElementById('mood').dataset.seq >= 4",
                timeout=15)  # the page forgot the old run on the new one's hello
        seq, word, _ = page_now(page)
        assert seq < 40 and zlog.message(seq)["mood"] == word  # the new run's updates
    finally:
        stop(proc)
        zlog.close()
        if page is not None:
            page.close()


def test_token_is_required_in_the_browser(browser):
    v = WebView("127.0.0.1:0", token="tok-123")
    try:
        base = f"http://127.0.0.1:{v.port}/"
        for url in (base, base + "?token=wrong"):
            page, response, _ = open_page(browser, url)
            assert response.status == 403 and "access token" in page.inner_text("body")
            page.close()
        page, response, errors = open_page(browser, base + "?token=tok-123")
        assert response.status == 200
        wait_js(page, "document.getElementById('conn').textContent === 'live'",
                timeout=5)
        assert errors == []
        page.close()
    finally:
        v.close()


def test_library_view_lists_every_file_and_draws_its_timeline(browser, analyzed):
    proc = subprocess.Popen([sys.executable, "-m", "realtime", "view", str(analyzed),
                             "--web", "127.0.0.1:0"], stderr=subprocess.PIPE, text=True,
                            cwd=ROOT)
    page = None
    try:
        url = served_url(proc)
        page, response, errors = open_page(browser, url)
        assert response.status == 200
        summary = json.loads((analyzed / "summary.json").read_text())["files"]
        page.wait_for_selector("#files tbody tr")
        rows = page.eval_on_selector_all("#files tbody tr", "rs => rs.map(r => r.dataset.file)")
        assert sorted(rows) == sorted(f["file"] for f in summary)
        for f in summary:
            assert Path(f["file"]).name in page.inner_text("#files")
        # the first row's timeline is drawn: every update, on a canvas with something on it
        first = page.eval_on_selector("#files tbody tr", "r => +r.dataset.index")
        wait_js(page, f"document.getElementById('timeline').dataset.points == "
                               f"{summary[first]['updates']}")
        painted = page.evaluate(
            "() => { const c = document.getElementById('timeline');"
            " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            " let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n / (d.length / 4); }")
        assert painted > 0.3  # mood bands, lines and axes
        other = next(i for i, f in enumerate(summary) if i != first)
        page.click(f"#files tbody tr[data-index='{other}']")
        wait_js(page, f"document.getElementById('timeline').dataset.points == "
                               f"{summary[other]['updates']}")
        box = page.locator("#timeline").bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 3)
        assert re.search(r"valence [+−]\d\.\d\d · arousal", page.inner_text("#readout"))
        page.fill("#filter", "drum")
        assert page.locator("#files tbody tr").count() == 1
        page.fill("#filter", "")
        page.click("#cols th[data-key='duration']")  # longest first
        durations = page.eval_on_selector_all(
            "#files tbody tr", "rs => rs.map(r => r.children[1].textContent)")
        assert durations == ["0:08", "0:06", "0:05"]
        assert not page.locator("#audio").is_hidden()
        assert errors == []
        if SHOTS:
            page.screenshot(path=str(Path(SHOTS) / "web-library.png"))
    finally:
        if page is not None:
            page.close()
        stop(proc)
