"""The web view: the live mood, and an ``analyze`` run's timelines, in a browser.

One :class:`WebView` serves one page (``realtime/web/``: index.html, app.js, style.css;
plain JavaScript drawing on canvas, nothing fetched from elsewhere) with aiohttp on its
own thread and asyncio loop, in one of two modes:

- **live** (``moodtrack live|demo --web [HOST:]PORT``): a sink. :meth:`WebView.emit`,
  called on the analysis thread, only appends the update to a short hand-off deque (its
  oldest entry is dropped when the server thread has not taken them) and, when none is
  pending, wakes the loop with ``call_soon_threadsafe``: it never waits for the server or
  a browser. The loop encodes each update once and puts it in every connected page's
  queue of :data:`CLIENT_QUEUE` messages; a page that does not keep up (paused, slow
  network) loses its oldest queued messages, so it always gets the newest. Both kinds of
  loss count in ``stats.web_dropped`` (the ``status`` topic's ``web_dropped``). Once a
  second the loop also sends each page the tracker's health (the ``status`` record).
  A page that connects first gets the last ``history_s`` seconds of updates.
- **library** (``moodtrack view DIR``): ``DIR/summary.json`` as a table and, per file,
  its CSV timeline and mood sections; the audio file named in the summary is served
  read-only (only those files, by their index in the summary) for playback in the page.

Safety: the server binds 127.0.0.1 unless another host is given. Bound to any other
address it requires an access token (``token``; generated when none is configured) on
the page (``/?token=...``), on the data it serves and on the WebSocket. A loopback server
without a token accepts only ``localhost``/loopback ``Host`` headers (no DNS rebinding);
the WebSocket accepts only an ``Origin`` of the page's own host (no cross-site page can
read it). Every route is a GET: nothing in the page can change the tracker.

WebSocket messages (text, JSON, one object each, ``type`` first):

- ``hello``: ``mode``, ``session`` (random per server start: a new one means the tracker
  restarted), ``history_s``, ``version``;
- ``history``: ``updates``, the recent updates (oldest first), sent after ``hello``;
- ``mood``: one update, the keys of the ZeroMQ ``mood`` message (``seq``, ``t``,
  ``valence``, ``arousal``, ``mood``, ``color_hex``, ``loudness_m``, ``loudness_s``,
  ``speech``, ...) plus, on the updates that bring tags (about once a second), ``tags``:
  the ZeroMQ ``tags`` message's ``instruments`` and ``genres`` lists of ``[name, score]``;
- ``status``: the ZeroMQ ``status`` record (``device``, ``input_state``, ``overflows``,
  ``dropped_blocks``, ``web_dropped``, ...) plus ``web_clients``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import ipaddress
import json
import math
import secrets
import socket
import struct
import sys
import threading
from collections import deque
from pathlib import Path
from urllib.parse import urlsplit

from realtime import __version__
from realtime.errors import MoodtrackError
from realtime.mood import MoodUpdate

ASSETS_DIR = Path(__file__).resolve().parent / "web"
#: Files of the page, by URL path, with their content types.
ASSETS = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
DEFAULT_PORT = 8770
LISTEN_HELP = "give [HOST:]PORT with a port 0..65535, e.g. 8770 or 0.0.0.0:8770"
#: Updates waiting between the analysis thread and the server thread.
HANDOFF = 256
#: Messages queued per page; beyond, its oldest are dropped.
CLIENT_QUEUE = 64
#: Bytes a page's connection may hold unsent before its messages wait in its queue.
WRITE_LIMIT = 256 * 1024
#: Seconds between the health messages to each page.
STATUS_S = 1.0
#: Optional update fields passed to the page when an update has them.
EXTRA_FIELDS = ("loudness_m", "loudness_s", "speech", "tags")
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; connect-src 'self'; media-src 'self'; "
                               "img-src 'self' data:; frame-ancestors 'none'",
}


def parse_listen(value: str, *, what: str = "--web") -> tuple[str, int]:
    """``"PORT"``, ``"HOST:PORT"`` or ``"[IPv6]:PORT"`` -> (host, port); a bare port means
    127.0.0.1. Port 0 picks a free one."""
    text = str(value).strip()
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", text
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise MoodtrackError(f"{what} {value!r} is invalid: {LISTEN_HELP}")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable only from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def access_token(host: str, configured: str = "") -> tuple[str, bool]:
    """(token, generated): the configured token; else none on a loopback host and a new
    random one on any other."""
    if configured:
        return configured, False
    if is_loopback(host):
        return "", False
    return secrets.token_urlsafe(16), True


def web_record(update: MoodUpdate) -> dict:
    """What the page gets for an update: the ZeroMQ message's keys and, when the update
    has them, :data:`EXTRA_FIELDS`."""
    from realtime.sinks import update_record

    from realtime.tags import top_k

    rec = update_record(update)
    for key in EXTRA_FIELDS:
        value = getattr(update, key, None)
        if key not in rec and value is not None:
            if key == "tags":
                value = top_k(value)
            elif isinstance(value, float):
                value = round(value, 2) if math.isfinite(value) else None
            rec[key] = value
    return rec


def _name_thread(name: str) -> None:
    """Give the calling OS thread a name (``top -H``, and tools/bench.py find it by it)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME


def _bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket, or a MoodtrackError saying why not."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise MoodtrackError(f"cannot serve the web view on {host}:{port}: unknown host "
                             f"({e.strerror}); give --web [HOST:]PORT with an address of this "
                             "machine") from None
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(64)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise MoodtrackError(f"cannot serve the web view on {host}:{port}: address already "
                                 "in use (another moodtrack?); pick another port with --web "
                                 "[HOST:]PORT") from None
        raise MoodtrackError(f"cannot serve the web view on {host}:{port}: {e.strerror or e}; "
                             "give --web [HOST:]PORT with an address of this machine") from None
    sock.setblocking(False)
    return sock


def ws_frame(text: str) -> bytes:
    """``text`` as one final, unmasked WebSocket text frame (server to client, RFC 6455)."""
    data = text.encode("utf-8")
    n = len(data)
    if n < 126:
        head = struct.pack("!BB", 0x81, n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x81, 126, n)
    else:
        head = struct.pack("!BBQ", 0x81, 127, n)
    return head + data


class _Client:
    """One connected page: its WebSocket, its connection and its queue of frames.

    Frames are written straight to the connection (built once for every page, no task
    switch per page) while it buffers less than :data:`WRITE_LIMIT` bytes; beyond that
    they wait in :attr:`queue` (at most :data:`CLIENT_QUEUE`, the oldest dropped) and go
    out when it has drained, at the next update or health message.
    """

    def __init__(self, ws, transport):
        self.ws = ws
        self.transport = transport
        self.queue: deque[bytes] = deque()

    def send(self, frame: bytes) -> int:
        """Queue ``frame`` and write what the connection takes; returns frames dropped."""
        self.queue.append(frame)
        t = self.transport
        while self.queue and not t.is_closing() and t.get_write_buffer_size() < WRITE_LIMIT:
            t.write(self.queue.popleft())
        dropped = 0
        while len(self.queue) > CLIENT_QUEUE:
            self.queue.popleft()
            dropped += 1
        return dropped


class WebView:
    """The web view's server (see the module docstring).

    - ``listen``: ``"[HOST:]PORT"`` (see :func:`parse_listen`);
    - ``token``: access token ("" = none; generated when binding beyond loopback);
    - ``history_s``: seconds of updates a page keeps (and gets when it connects);
    - ``stats``: the run's :class:`~realtime.stats.PipelineStats` (live mode);
    - ``model``: (name, version) for the health messages;
    - ``library``: an ``analyze -o`` folder: serve it instead of live updates.

    The socket is bound in the constructor (a busy port is a :class:`MoodtrackError`) and
    the server thread starts at once; :attr:`url` is the address to open (with the
    token), :attr:`token_generated` whether the token was made here.
    """

    def __init__(self, listen: str = f"127.0.0.1:{DEFAULT_PORT}", *, token: str = "",
                 history_s: float = 600.0, stats=None, model: tuple[str, str] = ("", ""),
                 library: str | Path | None = None):
        from aiohttp import web

        self._web = web
        host, port = parse_listen(listen)
        self.host = host
        self.loopback = is_loopback(host)
        self.token, self.token_generated = access_token(host, token)
        self.history_s = float(history_s)
        self.stats = stats
        self.model = model
        self.session = secrets.token_hex(6)
        self.library = _Library(Path(library)) if library is not None else None
        self.mode = "library" if library is not None else "live"
        self._page = (ASSETS_DIR / "index.html").read_text(encoding="utf-8").replace(
            'data-mode=""', f'data-mode="{self.mode}"')
        self._assets = {name: (ASSETS_DIR / name).read_bytes() for name in ASSETS}
        self._pending: deque[MoodUpdate] = deque(maxlen=HANDOFF)
        self._wake = False
        self._history: deque[list] = deque()  # [t, update, its JSON or None]
        self._clients: set[_Client] = set()
        self._last: MoodUpdate | None = None
        self._status_seq = 0
        self._closed = False
        self._sock = _bind(host, port)
        self.port = self._sock.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._runner = None
        self._status_task: asyncio.Task | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="web", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._start_error is not None:
            self._thread.join(2.0)
            self._sock.close()
            raise self._start_error

    # ------------------------------------------------------------------ addresses
    @property
    def url(self) -> str:
        """The page's address, with the token when there is one."""
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = socket.gethostname()
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/" + (f"?token={self.token}" if self.token else "")

    def announce(self, *, configured_token: bool = False, stream=None) -> None:
        """Print where the page is: one line (the URL with a generated token, once)."""
        stream = stream or sys.stderr
        base = self.url.split("?")[0]
        if self.token_generated:
            msg = (f"web view on {self.url}  (open this URL on the other device; the token "
                   "is new each run: set [web] token in a config to keep one)")
        elif self.token and configured_token:
            msg = f"web view on {base}?token=<the [web] token of your config>"
        else:
            msg = f"web view on {self.url}"
        print(f"moodtrack: {msg}", file=stream, flush=True)

    # -------------------------------------------------------------- analysis side
    def emit(self, update: MoodUpdate) -> None:
        """Hand ``update`` to the server thread (analysis thread; never blocks)."""
        if self._closed:
            return
        if len(self._pending) == HANDOFF:
            self._count_drop()
        self._pending.append(update)
        if not self._wake:
            self._wake = True
            with contextlib.suppress(RuntimeError):  # the loop is closing
                self._loop.call_soon_threadsafe(self._take)

    def start(self) -> None:
        """Nothing to do: the server runs from construction (kept for the sink protocol)."""

    def _count_drop(self, n: int = 1) -> None:
        if self.stats is not None:
            self.stats.web_dropped += n

    # ---------------------------------------------------------------- server side
    async def _start(self) -> None:
        web = self._web
        app = web.Application(middlewares=[self._guard()])
        app.router.add_get("/", self._index)
        for name in ASSETS:
            app.router.add_get(f"/{name}", self._asset)
        app.router.add_get("/ws", self._websocket)
        if self.library is not None:
            app.router.add_get("/api/library", self._api_library)
            app.router.add_get("/api/timeline/{index:\\d+}", self._api_timeline)
            app.router.add_get("/audio/{index:\\d+}", self._audio)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock).start()

    def _serve(self) -> None:
        """The server thread: set the app up on the bound socket, then run the loop."""
        _name_thread("moodtrack-web")
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._start())
        except BaseException as e:  # handed to the constructor
            self._start_error = e
            self._loop.close()
            return
        finally:
            self._started.set()
        if self.mode == "live":
            self._status_task = self._loop.create_task(self._status_loop())
        self._loop.run_forever()

    def _allowed_host(self, request) -> bool:
        """A loopback server without a token answers only loopback Host names."""
        if self.token or not self.loopback:
            return True
        host = request.host or ""
        name = host[1:].split("]")[0] if host.startswith("[") else host.rsplit(":", 1)[0]
        return name.lower() == "localhost" or is_loopback(name)

    def _token_ok(self, request) -> bool:
        if not self.token:
            return True
        given = request.query.get("token", "")
        return hmac.compare_digest(given.encode(), self.token.encode())

    def _guard(self):
        """The checks every request goes through (GET only, Host, token)."""
        web = self._web

        @web.middleware
        async def guard(request, handler):
            if request.method not in ("GET", "HEAD"):
                raise web.HTTPMethodNotAllowed(request.method, ["GET"])
            if not self._allowed_host(request):
                return web.Response(status=421, text="moodtrack web view: open it as "
                                    f"http://127.0.0.1:{self.port}/\n")
            name = request.path.lstrip("/")
            if name not in ASSETS and not self._token_ok(request):
                return web.Response(status=403, text="moodtrack web view: this page needs "
                                    "its access token: open the URL moodtrack printed "
                                    "(.../?token=...)\n", headers=SECURITY_HEADERS)
            response = await handler(request)
            response.headers.update(SECURITY_HEADERS)
            return response

        return guard

    async def _index(self, request):
        return self._web.Response(text=self._page, content_type="text/html", charset="utf-8")

    async def _asset(self, request):
        name = request.path.lstrip("/")
        return self._web.Response(body=self._assets[name], headers={
            "Content-Type": ASSETS[name]})

    async def _websocket(self, request):
        web = self._web
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc.lower() != (request.host or "").lower():
            return web.Response(status=403, text="moodtrack web view: WebSocket from another "
                                "origin refused\n")
        ws = web.WebSocketResponse(heartbeat=None, compress=False, max_msg_size=4096)
        await ws.prepare(request)
        if request.transport is None:  # gone already
            return ws
        client = _Client(ws, request.transport)
        hello = {"type": "hello", "mode": self.mode, "session": self.session,
                 "history_s": self.history_s, "version": __version__}
        client.send(ws_frame(json.dumps(hello)))
        self._clients.add(client)
        if self.mode == "live":
            client.send(ws_frame('{"type":"history","updates":['
                                 + ",".join(self._encoded(h) for h in self._history) + "]}"))
            client.send(ws_frame(self._status_message()))
        try:
            async for _ in ws:  # read-only: what a page sends is ignored
                pass
        finally:
            self._clients.discard(client)
        return ws

    @staticmethod
    def _encoded(entry: list) -> str:
        """A history entry's JSON, made when first needed (no page: no encoding)."""
        if entry[2] is None:
            entry[2] = json.dumps(web_record(entry[1]), separators=(",", ":"), allow_nan=False)
        return entry[2]

    def _broadcast(self, message: str) -> None:
        frame = ws_frame(message)
        for client in self._clients:
            dropped = client.send(frame)
            if dropped:
                self._count_drop(dropped)

    def _take(self) -> None:
        """On the loop: broadcast what the analysis thread handed over."""
        self._wake = False
        while self._pending:
            update = self._pending.popleft()
            if self._last is not None and update.t < self._last.t:
                self._history.clear()  # a new input: its time starts again
            self._last = update
            entry = [update.t, update, None]
            self._history.append(entry)
            while self._history[0][0] < update.t - self.history_s:
                self._history.popleft()
            if self._clients:
                self._broadcast('{"type":"mood",' + self._encoded(entry)[1:])

    def _status_message(self) -> str:
        from realtime.sinks import status_record
        from realtime.stats import PipelineStats

        rec = status_record(self.stats or PipelineStats(), seq=self._status_seq,
                            last=self._last, model=self.model)
        self._status_seq += 1
        rec["web_clients"] = len(self._clients)
        return json.dumps({"type": "status", **rec}, separators=(",", ":"), allow_nan=False)

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(STATUS_S)
            if self._clients:
                self._broadcast(self._status_message())

    # ------------------------------------------------------------------- library
    async def _api_library(self, request):
        return self._web.json_response(self.library.listing())

    async def _api_timeline(self, request):
        web = self._web
        try:
            data = self.library.timeline(int(request.match_info["index"]))
        except (IndexError, MoodtrackError) as e:
            raise web.HTTPNotFound(text=str(e) if isinstance(e, MoodtrackError) else
                                   "no such file in this run") from None
        return web.json_response(data)

    async def _audio(self, request):
        web = self._web
        path = self.library.audio(int(request.match_info["index"]))
        if path is None:
            raise web.HTTPNotFound(text="that file's audio is not where the summary says")
        return web.FileResponse(path)

    # --------------------------------------------------------------------- close
    async def _shutdown(self) -> None:
        if self._status_task is not None:
            self._status_task.cancel()
        for client in list(self._clients):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.ws.close(code=1001, message=b"moodtrack stopped"),
                                       0.5)
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._runner.cleanup(), 2.0)

    def close(self) -> None:
        """Close every page's connection and stop the server (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive():
            fut = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
            with contextlib.suppress(Exception):
                fut.result(3.0)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(2.0)
        if not self._loop.is_running():
            self._loop.close()
        self._sock.close()

    def wait(self, stop: threading.Event) -> None:
        """Serve until ``stop`` is set (the ``view`` command)."""
        while not stop.wait(0.2):
            pass


class _Library:
    """An ``analyze -o DIR`` folder, as the library view reads it."""

    def __init__(self, folder: Path):
        self.folder = folder
        path = folder / "summary.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            files = data["files"]
            if not isinstance(files, list):
                raise TypeError
        except FileNotFoundError:
            raise MoodtrackError(f"{folder} has no summary.json: give the folder an 'analyze "
                                 "-o DIR' run wrote") from None
        except OSError as e:
            raise MoodtrackError(f"cannot read {path}: {e.strerror or e}") from None
        except (ValueError, KeyError, TypeError):
            raise MoodtrackError(f"{path} is not a moodtrack run summary (no \"files\" list): "
                                 "give the folder an 'analyze -o DIR' run wrote") from None
        self.files = [f for f in files if isinstance(f, dict)]
        self._audio = [self._find_audio(f.get("file")) for f in self.files]
        self._timelines: dict[int, dict] = {}

    def _find_audio(self, name) -> Path | None:
        """The analysed file, as named in the summary (relative: to here, then to DIR)."""
        if not isinstance(name, str) or not name:
            return None
        p = Path(name)
        for cand in ((p,) if p.is_absolute() else (p, self.folder / p)):
            if cand.is_file():
                return cand.resolve()
        return None

    def listing(self) -> dict:
        from realtime.tags import TAG_GROUPS

        keep = ("file", "timeline", "duration_s", "updates", "mean_valence", "mean_arousal",
                "dominant_mood", "time_s", "error")
        return {"folder": str(self.folder),
                "files": [{"index": i, **{k: f[k] for k in keep if k in f},
                           "tags": {g: f[g][:3] for g in TAG_GROUPS if f.get(g)},
                           "audio": self._audio[i] is not None}
                          for i, f in enumerate(self.files)]}

    def timeline(self, index: int) -> dict:
        from realtime.timeline import read_timeline

        if index in self._timelines:
            return self._timelines[index]
        entry = self.files[index]
        if not entry.get("timeline"):
            raise MoodtrackError(f"{entry.get('file')} has no timeline: {entry.get('error')}")
        tl = read_timeline(self.folder / entry["timeline"])
        rnd = lambda xs, n: [None if x != x else round(float(x), n) for x in xs]  # noqa: E731
        data = {"index": index, "file": entry.get("file"), "t": rnd(tl.t, 3),
                "valence": rnd(tl.valence, 4), "arousal": rnd(tl.arousal, 4),
                "confidence": rnd(tl.confidence, 4), "level_db": rnd(tl.level_db, 2),
                "mood": [str(m) for m in tl.mood], "silence": [bool(s) for s in tl.silence],
                "segments": entry.get("segments") or [], "changes": entry.get("changes") or [],
                "audio": self._audio[index] is not None}
        self._timelines[index] = data
        return data

    def audio(self, index: int) -> Path | None:
        return self._audio[index] if 0 <= index < len(self._audio) else None
