"""Sinks: where mood updates go (CSV timeline, ZeroMQ publisher, plain log).

Every sink has ``emit(update)``, called on the analysis thread, which never blocks on
a reader, and an idempotent ``close()``. The terminal dashboard is in
:mod:`realtime.dashboard`.

ZeroMQ message schema (version 1)
---------------------------------
The publisher binds (default ``tcp://127.0.0.1:5556``); subscribers connect and
subscribe to the topic ``mood``. Each update is one two-frame message:

- frame 0: the topic, ``b"mood"``;
- frame 1: a UTF-8 JSON object, keys in this order:

  ==============  ===============  =================================================
  key             type             meaning
  ==============  ===============  =================================================
  ``schema``      int              message schema version, ``1``
  ``seq``         int              update number, consecutive from 0 (a gap means
                                   this subscriber missed messages)
  ``t``           float            seconds of audio since the start (ms precision)
  ``wall``        float            unix time of the estimate, seconds (ms precision)
  ``valence``     float            -1 (negative) .. +1 (positive), 4 decimals
  ``arousal``     float            -1 (calm) .. +1 (energetic), 4 decimals
  ``quadrant``    str or null      ``"Q1"``..``"Q4"``; null while silent
  ``mood``        str              ``uplifting`` (Q1), ``tense`` (Q2), ``melancholic``
                                   (Q3), ``calm`` (Q4) or ``silence``
  ``confidence``  float            0..1, probability the quadrant is right, rescaled
  ``level_db``    float or null    input level, dBFS (floored at -120)
  ``silence``     bool             input below the silence threshold; valence and
                                   arousal then hold their last values
  ``latency_ms``  float            block arrival to publication, milliseconds
  ``color``       [r, g, b] / null mood colour for lights, floats 0..1, 4 decimals (see
                                   :mod:`realtime.colour`); null when not coloured
  ``color_hex``   str or null      the same colour as ``"#rrggbb"``
  ``loudness_m``  float or null    momentary loudness (0.4 s) of the input as
                                   captured, LUFS (BS.1770-4, floored at -70), 2
                                   decimals; null when not measured
  ``loudness_s``  float or null    short-term loudness (3 s), the same way
  ``speech``      float or null    0..1, how much of the update interval is dominated
                                   by speech (dialogue, narration); null when the
                                   model gives none
  ==============  ===============  =================================================

``color``, ``color_hex``, ``loudness_m``, ``loudness_s`` and ``speech`` were added within
schema 1 (new keys only; clients ignore keys they do not know).

Example frame 1::

  {"schema": 1, "seq": 250, "t": 12.5, "wall": 1767225600.123, "valence": -0.4213,
   "arousal": 0.6071, "quadrant": "Q2", "mood": "tense", "confidence": 0.7312,
   "level_db": -23.1, "silence": false, "latency_ms": 4.2,
   "color": [0.7643, 0.1049, 0.0911], "color_hex": "#c31b17",
   "loudness_m": -24.31, "loudness_s": -25.02, "speech": 0.08}

Tags topic
----------
About once a second (with the mood update that brings them, when the model gives tags)
the topic ``tags`` carries the top :data:`realtime.tags.TOP_K` instrument and genre tags
in the same framing: ``schema`` (1), ``seq`` (tags messages, from 0), ``t`` and ``wall``
(those of the mood update), ``instruments`` and ``genres``: lists of ``[name, score]``
pairs, score 0..1 (the mean over the last second), highest first::

  {"schema": 1, "seq": 12, "t": 13.0, "wall": 1767225600.623,
   "instruments": [["piano", 0.91], ["strings", 0.55]], "genres": [["classical", 0.8]]}

Subscribe to ``b"tags"``; ``b"mood"`` subscribers never see it.

With ``frames="single"`` each message is instead one frame, ``b"mood "`` followed by
the JSON (for clients without multipart support, or ``ZMQ_CONFLATE`` subscribers that
want only the latest update: CONFLATE drops multi-frame messages).

Status topic
------------
Once per second (``status_s``), whatever the music does, and at once when the input
state changes, the topic ``status`` carries
the tracker's health in the same framing: ``schema`` (1), ``seq`` (status messages, from
0), ``wall``, ``uptime_s``, ``version`` (moodtrack), ``device``, ``sample_rate`` (Hz),
``channels``, ``input_state`` (``"ok"``, ``"stalled"`` or ``"lost"``), ``overflows``,
``dropped_blocks``, ``zmq_dropped``, ``updates``, ``last_seq`` (seq of the last mood
update, null before the first), ``silence`` (the last update's flag, null before the
first), ``level_db``, ``model``, ``model_version``, ``input_error`` (why the input is
stalled or lost, null while ok), ``reconnects`` (times a lost input came back),
``nonfinite_samples`` (NaN/inf input samples replaced by 0), ``csv_error`` (why the CSV
timeline stopped, null while it is fine), ``key_errors`` (malformed authorized client key
files found while running, each named; skipped). Subscribe to ``b"status"`` to get it;
``b"mood"`` subscribers never see it.

Security
--------
With ``keys=DIR`` (from ``moodtrack keys DIR``) the socket is a CURVE server: traffic is
encrypted and only clients whose public key is in ``DIR/authorized_clients/`` may
connect (any client that knows the server's public key when that folder is empty at
start). Keys added to or removed from that folder take effect within about
:data:`KEYS_POLL_S` seconds while the publisher runs: a removed key's subscriber is cut off.

The send high-water mark is small: a subscriber that does not keep up loses messages
(it sees a ``seq`` gap) without delaying the tracker or the other subscribers.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import ipaddress
import json
import math
import os
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from realtime import __version__
from realtime.colour import to_hex
from realtime.errors import MoodtrackError
from realtime.mood import MoodUpdate

if TYPE_CHECKING:
    from realtime.stats import PipelineStats

SCHEMA_VERSION = 1
TOPIC = b"mood"
STATUS_TOPIC = b"status"
TAGS_TOPIC = b"tags"
DEFAULT_ENDPOINT = "tcp://127.0.0.1:5556"
#: CSV timeline columns, in file order.
CSV_COLUMNS = ("t", "valence", "arousal", "quadrant", "mood", "confidence", "level_db",
               "silence", "wall", "seq", "latency_ms", "loudness_m", "loudness_s", "speech")
LEVEL_FLOOR_DB = -120.0


def _num(x: float | None, ndigits: int) -> float | None:
    """``x`` rounded, or None when None or not finite (JSON has no NaN/inf)."""
    if x is None:
        return None
    x = float(x)
    return round(x, ndigits) if math.isfinite(x) else None


def update_record(update: MoodUpdate) -> dict:
    """The schema-1 message for an update: a JSON-ready dict, ``schema`` first, rounded."""
    return {
        "schema": SCHEMA_VERSION,
        "seq": int(update.seq),
        "t": _num(update.t, 3),
        "wall": _num(update.wall, 3),
        "valence": _num(update.valence, 4),
        "arousal": _num(update.arousal, 4),
        "quadrant": update.quadrant,
        "mood": update.mood,
        "confidence": _num(update.confidence, 4),
        "level_db": _num(max(update.level_db, LEVEL_FLOOR_DB), 2),
        "silence": bool(update.silence),
        "latency_ms": _num(update.latency_ms, 2),
        "color": None if update.color is None else [_num(c, 4) for c in update.color],
        "color_hex": None if update.color is None else to_hex(update.color),
        "loudness_m": _num(update.loudness_m, 2),
        "loudness_s": _num(update.loudness_s, 2),
        "speech": _num(update.speech, 4),
    }


def tags_record(update: MoodUpdate, *, seq: int) -> dict:
    """The ``tags`` message for an update that carries tags (see the module docstring)."""
    from realtime.tags import top_k

    return {"schema": SCHEMA_VERSION, "seq": int(seq), "t": _num(update.t, 3),
            "wall": _num(update.wall, 3), **top_k(update.tags)}


def status_record(stats: PipelineStats, *, seq: int, last: MoodUpdate | None,
                  model: tuple[str, str] = ("", "")) -> dict:
    """The ``status`` message: health counters, the last update's seq and silence, and
    ``model`` (name, version)."""
    return {
        "schema": SCHEMA_VERSION,
        "seq": int(seq),
        "wall": _num(time.time(), 3),
        "uptime_s": _num(time.monotonic() - stats.started, 3),
        "version": __version__,
        "device": stats.device,
        "sample_rate": int(stats.sample_rate),
        "channels": int(stats.channels),
        "input_state": stats.input_state,
        "overflows": int(stats.overflows),
        "dropped_blocks": int(stats.dropped_blocks),
        "zmq_dropped": int(stats.zmq_dropped),
        "updates": int(stats.updates),
        "last_seq": None if last is None else int(last.seq),
        "silence": None if last is None else bool(last.silence),
        "level_db": _num(max(stats.level_db, LEVEL_FLOOR_DB), 2),
        "model": model[0],
        "model_version": model[1],
        "input_error": stats.input_error or None,
        "reconnects": int(stats.reconnects),
        "nonfinite_samples": int(stats.nonfinite_samples),
        "csv_error": stats.csv_error or None,
        "input_hint": stats.input_hint or None,
    }


class CsvSink:
    """A CSV timeline: a header, then one row per update (:data:`CSV_COLUMNS`).

    Each row goes to the file in one write call and, with ``flush`` (the default),
    reaches the OS at once: a killed process (even ``kill -9``) leaves whole rows. A
    write that fails (disk full, file too large, I/O error) is cut back to the last
    whole row, so the file stays a valid CSV, and the timeline stops: with
    ``on_error="stop"`` :meth:`emit` raises a :class:`MoodtrackError` saying why (the
    run stops), with ``"continue"`` it only records the reason in ``stats.csv_error``
    and the other sinks go on. Booleans are written 1/0, a null quadrant as an empty
    field. An existing regular file is refused unless ``overwrite`` (a device or a pipe,
    such as ``/dev/stdout``, is written to as it is).
    """

    def __init__(self, path, *, flush: bool = True, on_error: str = "stop",
                 stats: PipelineStats | None = None, overwrite: bool = False):
        if on_error not in ("stop", "continue"):
            raise ValueError(f"on_error must be 'stop' or 'continue', not {on_error!r}")
        self.path = path
        self.on_error = on_error
        self.stats = stats
        self.rows = 0
        self.error: str | None = None
        self._flush = flush
        self._lock = threading.Lock()
        try:
            # Unbuffered binary: one os.write per row; buffered when not flushing.
            try:
                self._file = open(path, "xb", buffering=0 if flush else -1)
            except FileExistsError:
                if os.path.isfile(path) and not overwrite:
                    raise MoodtrackError(
                        f"the CSV timeline {path} exists already: choose a new name, or pass "
                        "--overwrite to replace it") from None
                self._file = open(path, "wb", buffering=0 if flush else -1)
            self._write(self._line(CSV_COLUMNS))
        except OSError as e:
            raise MoodtrackError(f"cannot write the CSV timeline to {path}: {e.strerror or e}; "
                                 "choose a writable path (or another disk)") from e
        self._good = len(self._line(CSV_COLUMNS))  # bytes of whole rows in the file
        self._failed = False

    @staticmethod
    def _line(fields) -> bytes:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(fields)
        return buf.getvalue().encode("utf-8")

    def _write(self, line: bytes) -> None:
        """All of ``line``, or an OSError (a short write is retried, then reported)."""
        n = self._file.write(line)
        if self._flush and n is not None and n < len(line):
            view = memoryview(line)[n:]
            while view:
                n = self._file.write(view)
                if not n:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                view = view[n:]

    @staticmethod
    def _fields(update: MoodUpdate) -> list:
        rec = update_record(update)
        return ["" if rec[c] is None else int(rec[c]) if isinstance(rec[c], bool) else rec[c]
                for c in CSV_COLUMNS]

    def emit(self, update: MoodUpdate) -> None:
        line = self._line(self._fields(update))
        with self._lock:
            if self._file is None or self._failed:
                return
            try:
                self._write(line)
            except OSError as e:  # disk full, file too large, I/O error
                self._failed = True
                if self._flush:  # cut a partly written row: the file stays a valid CSV
                    with contextlib.suppress(OSError):
                        self._file.truncate(self._good)
                self.error = (f"CSV timeline {self.path} stopped after {self.rows} rows: "
                              f"{e.strerror or e}; free space or choose another --csv path")
                if self.stats is not None:
                    self.stats.csv_error = self.error
                if self.on_error == "stop":
                    raise MoodtrackError(self.error + " (the run stops; --on-csv-error continue "
                                         "keeps the dashboard and ZeroMQ going)") from None
                return
            self.rows += 1
            self._good += len(line)

    def close(self) -> None:
        """Close the file; a buffered timeline whose last rows cannot be written is a
        MoodtrackError (an unbuffered one has written every row already)."""
        with self._lock:
            f, self._file = self._file, None
        if f is None:
            return
        try:
            f.close()
        except OSError as e:
            if not self._flush and not self._failed:
                self._failed = True
                self.error = f"CSV timeline {self.path} is incomplete: {e.strerror or e}"
                raise MoodtrackError(self.error + "; free space or choose another output "
                                     "directory") from None


def timeline_bytes(updates) -> bytes:
    """A whole CSV timeline (the header and a row per update), byte for byte as
    :class:`CsvSink` writes it."""
    return b"".join([CsvSink._line(CSV_COLUMNS),
                     *(CsvSink._line(CsvSink._fields(u)) for u in updates)])


def _is_loopback(endpoint: str) -> bool:
    """Whether a ZeroMQ endpoint is reachable only from this machine."""
    transport, _, address = endpoint.partition("://")
    if transport in ("ipc", "inproc"):
        return True
    host = address.rsplit(":", 1)[0].strip("[]")
    if host in ("localhost", "lo"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # "*", an interface name, a host name
        return False


SERVER_SECRET = "server.key_secret"
AUTHORIZED_DIR = "authorized_clients"
#: Seconds between looks at the authorized-clients folder for keys added or removed.
KEYS_POLL_S = 1.0


class _AuthorizedClients:
    """The CURVE clients a publisher admits (its ZAP callback): the public keys in
    ``folder/*.key``, reread when the folder changes.

    An empty or missing folder at start admits any client that knows the server key;
    once keys were there, emptying it admits nobody.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self._seen: object = None
        self.keys: frozenset[bytes] | None = None  # None: any client
        self.errors: list[str] = []  # malformed key files, named
        self.reload(report=False)

    def _signature(self) -> tuple:
        with contextlib.suppress(OSError):
            return tuple(sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size)
                                for p in self.folder.glob("*.key")))
        return ()

    def reload(self, *, report: bool = True) -> bool:
        """Reread the keys if the folder changed (``report``: say so on stderr); True when
        a client admitted before may no longer be (connected ones must authenticate again).
        A malformed key file is named (stderr, :attr:`errors`, the status topic) and skipped."""
        sig = self._signature()
        if sig == self._seen:
            return False
        self._seen = sig
        found, errors = set(), []
        for path in sorted(self.folder.glob("*.key")) if sig else ():
            try:  # a malformed file is named and skipped; the valid keys keep working
                found.add(check_key_file(path)[0])
            except MoodtrackError as e:
                errors.append(str(e))
        if errors != self.errors:
            for e in errors:
                print(f"moodtrack: warning: {e}; skipped (the other keys still work)",
                      file=sys.stderr)
        self.errors = errors
        keys = frozenset(found)
        old = self.keys
        if old is None and not keys:
            return False  # still no keys: any client
        self.keys = keys
        revoked = old is None or bool(old - keys)
        if report:
            before = old or frozenset()
            print(f"moodtrack: ZeroMQ: {len(keys)} authorized client key(s) in {self.folder} "
                  f"now ({len(keys - before)} added, {len(before - keys)} removed)"
                  + ("; nobody may subscribe until a key is added" if not keys else "")
                  + ("; connected subscribers authenticate again" if revoked else ""),
                  file=sys.stderr)
        return revoked

    def callback(self, domain: str, key: bytes) -> bool:
        keys = self.keys
        return keys is None or key in keys


class ZmqSink:
    """Publishes updates on a ZeroMQ socket (see the module docstring for the schema).

    Binds ``endpoint`` (``tcp://127.0.0.1:*`` picks a free port; :attr:`endpoint` is
    then the bound address). ``hwm``: per-subscriber send queue, messages; ``frames``:
    ``"multi"`` (topic frame + JSON frame) or ``"single"`` (``b"mood {json}"``).
    ``stats.zmq_dropped`` counts messages that found a subscriber's queue full: a lower
    bound on what slow subscribers lost (ZeroMQ reports no per-subscriber losses).
    ``status_s``: seconds between ``status`` messages once :meth:`start` ed (0 = none);
    ``model``: (name, version) for them. ``keys``: a folder made by ``moodtrack keys``
    to encrypt with CURVE and admit only its authorized clients.
    """

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, *, hwm: int = 16,
                 frames: str = "multi", stats: PipelineStats | None = None,
                 status_s: float = 0.0, model: tuple[str, str] = ("", ""),
                 keys: str | Path | None = None):
        import zmq

        if frames not in ("multi", "single"):
            raise ValueError(f"frames must be 'multi' or 'single', not {frames!r}")
        self._zmq = zmq
        self.frames = frames
        self.stats = stats
        self.status_s = float(status_s)
        self.model = model
        self._ctx = zmq.Context()
        self._auth = None
        # XPUB with NODROP makes a full subscriber queue visible (EAGAIN) where PUB drops
        # silently; emit() then resends lossily so the other subscribers still get it.
        self._sock = self._ctx.socket(zmq.XPUB)
        self._sock.setsockopt(zmq.SNDHWM, int(hwm))
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.XPUB_NODROP, 1)
        self._sock.setsockopt(zmq.IPV6, int("[" in endpoint))  # tcp://[::1]:5556
        try:
            check_ipc_free(endpoint)
            if keys:
                self._secure(Path(keys))
            self._sock.bind(endpoint)
        except BaseException as e:
            self._teardown()
            if not isinstance(e, zmq.ZMQError):
                raise
            if e.errno == zmq.EADDRINUSE:
                raise MoodtrackError(
                    f"cannot publish on {endpoint}: address already in use (another moodtrack?); "
                    "pick another address with --zmq ENDPOINT, or turn publishing off with --no-zmq"
                ) from e
            raise MoodtrackError(f"cannot publish on {endpoint}: {e}; give a valid address with "
                                 "--zmq (e.g. tcp://127.0.0.1:5556) or use --no-zmq") from e
        self.endpoint = self._sock.getsockopt_string(zmq.LAST_ENDPOINT) or endpoint
        self._closed = False
        self._lock = threading.Lock()  # ZeroMQ sockets are not thread-safe: emit vs close
        self._last: MoodUpdate | None = None
        self._status_seq = 0
        self._tags_seq = 0
        self._stop = threading.Event()
        self._status_thread: threading.Thread | None = None
        self._keys_thread: threading.Thread | None = None
        if self._auth is not None:
            self._keys_thread = threading.Thread(target=self._watch_keys, name="zmq-keys",
                                                 daemon=True)
            self._keys_thread.start()
        if not _is_loopback(self.endpoint) and not keys:
            print(f"moodtrack: warning: publishing on {self.endpoint}, reachable from other "
                  "machines, unencrypted and open to anyone; use tcp://127.0.0.1:PORT to keep "
                  "it local, or secure it with --zmq-keys DIR (see 'moodtrack keys')",
                  file=sys.stderr)

    def _secure(self, keys: Path) -> None:
        """Make the socket a CURVE server with the keys in ``keys`` (before bind)."""
        import zmq.auth
        from zmq.auth.thread import ThreadAuthenticator

        secret = keys / SERVER_SECRET
        public, private = check_key_file(secret, secret=True,
                                         hint=f"create keys with 'moodtrack keys {keys}'")
        if not self._zmq.has("curve"):
            raise MoodtrackError("this libzmq has no CURVE support: --zmq-keys is unavailable")
        authorized = keys / AUTHORIZED_DIR
        for client in sorted(authorized.glob("*.key")) if authorized.is_dir() else ():
            check_key_file(client, hint="remove it, or make it again with 'moodtrack keys "
                                        f"{keys} --client NAME'")
        self._authorized = _AuthorizedClients(authorized)
        self._auth = ThreadAuthenticator(self._ctx)
        self._auth.start()
        self._auth.configure_curve_callback(domain="*", credentials_provider=self._authorized)
        self._sock.curve_secretkey = private
        self._sock.curve_publickey = public
        self._sock.curve_server = True

    def _watch_keys(self) -> None:
        """Applies keys added to or removed from the authorized folder while running: the
        authenticator admits the new set at once, and when a key went away every
        connection is dropped (unbind, bind again) so that subscribers reconnect and
        authenticate again; the revoked ones are then refused."""
        zmq = self._zmq
        while not self._stop.wait(KEYS_POLL_S):
            if not self._authorized.reload():
                continue
            with self._lock:
                if self._closed:
                    return
                self._sock.unbind(self.endpoint)
                for _ in range(40):
                    try:
                        self._sock.bind(self.endpoint)
                        break
                    except zmq.ZMQError:
                        time.sleep(0.05)
                else:
                    print(f"moodtrack: error: cannot publish on {self.endpoint} again after "
                          "the authorized keys changed; restart moodtrack", file=sys.stderr)
                    return

    def _frames(self, topic: bytes, record: dict) -> list[bytes]:
        body = json.dumps(record, separators=(",", ":"), allow_nan=False).encode()
        return [topic, body] if self.frames == "multi" else [topic + b" " + body]

    def _message(self, update: MoodUpdate) -> list[bytes]:
        return self._frames(TOPIC, update_record(update))

    def emit(self, update: MoodUpdate) -> None:
        msg = self._message(update)
        with self._lock:
            self._last = update
            if self._closed:
                return
            self._send(msg)
            if update.tags is not None:
                self._send(self._frames(TAGS_TOPIC, tags_record(update, seq=self._tags_seq)))
                self._tags_seq += 1

    def publish_status(self) -> None:
        """Send one ``status`` message now (the status thread does this every ``status_s``)."""
        from realtime.stats import PipelineStats

        with self._lock:
            if self._closed:
                return
            rec = status_record(self.stats or PipelineStats(), seq=self._status_seq,
                                last=self._last, model=self.model)
            authorized = getattr(self, "_authorized", None)
            rec["key_errors"] = list(authorized.errors) if authorized is not None else []
            self._status_seq += 1
            self._send(self._frames(STATUS_TOPIC, rec))

    def start(self) -> None:
        """Start the status thread (when ``status_s`` > 0); idempotent."""
        if self.status_s > 0 and self._status_thread is None and not self._closed:
            self._status_thread = threading.Thread(target=self._status_loop,
                                                   name="zmq-status", daemon=True)
            self._status_thread.start()

    def _status_loop(self) -> None:
        """Every ``status_s``, and at once (within 0.1 s) when the input state changes."""
        state = None
        due = 0.0
        while True:
            now = time.monotonic()
            current = self.stats.input_state if self.stats is not None else "ok"
            if now >= due or current != state:
                self.publish_status()
                state, due = current, now + self.status_s
            if self._stop.wait(min(0.1, max(due - now, 0.0))):
                return

    def _send(self, msg: list[bytes]) -> None:
        zmq, sock = self._zmq, self._sock
        # Subscription notices queue up on an XPUB socket: discard them.
        while sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            sock.recv(zmq.NOBLOCK)
        try:
            sock.send_multipart(msg, zmq.NOBLOCK)
        except zmq.Again:
            if self.stats is not None:
                self.stats.zmq_dropped += 1
            sock.setsockopt(zmq.XPUB_NODROP, 0)
            try:
                sock.send_multipart(msg, zmq.NOBLOCK)
            finally:
                sock.setsockopt(zmq.XPUB_NODROP, 1)

    def _teardown(self) -> None:
        self._sock.close(0)
        if self._auth is not None:
            self._auth.stop()
        self._ctx.term()

    def close(self) -> None:
        self._stop.set()
        for thread in (self._status_thread, self._keys_thread):
            if thread is not None and thread is not threading.current_thread():
                thread.join(2.0)
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._teardown()


def check_ipc_free(endpoint: str) -> None:
    """For ``ipc://PATH``: a MoodtrackError when a live process listens on PATH (libzmq
    would silently take the path over) or PATH is something other than a socket (libzmq
    would delete it); a socket nobody listens on (left by a killed run) is fine."""
    import socket
    import stat

    transport, _, path = endpoint.partition("://")
    if transport != "ipc" or not path or path.startswith("@"):  # @: abstract, no file
        return
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as e:
        raise MoodtrackError(f"cannot publish on {endpoint}: {e.strerror or e}") from None
    if not stat.S_ISSOCK(mode):
        raise MoodtrackError(f"cannot publish on {endpoint}: {path} exists and is not a socket "
                             "(binding would delete it); choose another path with --zmq")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except OSError:
        return  # nobody listens: a stale socket file
    finally:
        probe.close()
    raise MoodtrackError(f"cannot publish on {endpoint}: address already in use (another "
                         "moodtrack?); pick another address with --zmq ENDPOINT, or turn "
                         "publishing off with --no-zmq")


def check_key_file(path: str | Path, *, secret: bool = False, hint: str = "") -> tuple:
    """``(public, secret)`` keys (Z85 bytes; ``secret`` None unless asked for) of a CURVE
    key file written by ``moodtrack keys`` (or ``zmq.auth``); a MoodtrackError naming the
    file when it cannot be read, is not a key file, or a key is not 40 Z85 characters
    (32 bytes). ``hint`` says what to do."""
    import zmq.auth
    from zmq.utils import z85

    def bad(why: str):
        return MoodtrackError(f"CURVE key file {path} {why}" + (f"; {hint}" if hint else ""))

    try:
        public, private = zmq.auth.load_certificate(path)
    except OSError as e:
        raise bad(f"cannot be read: {e.strerror or e}") from None
    except Exception as e:  # pyzmq raises ValueError, and others on garbage
        raise bad(f"is not a key file ({type(e).__name__}: {e})") from None
    if secret and private is None:
        raise bad("holds no secret key")
    for what, key in (("public", public), ("secret", private if secret else None)):
        if key is None and what == "secret":
            continue
        try:
            ok = key is not None and len(key) == 40 and len(z85.decode(key)) == 32
        except Exception:
            ok = False
        if not ok:
            raise bad(f"holds a malformed {what} key (a CURVE key is 40 Z85 characters)")
    return public, private if secret else None


def generate_keys(folder: str | Path, *, client: str = "client") -> dict[str, Path]:
    """CURVE keys for :class:`ZmqSink` ``keys=folder`` and one client, in ``folder``.

    Creates (as needed) ``server.key`` / ``server.key_secret``, then ``<client>.key`` /
    ``<client>.key_secret`` with the public key also in ``authorized_clients/``. Secret
    files are readable by their owner only. An existing client of that name is an
    error; the server keys are kept. Returns the paths by role.
    """
    import zmq.auth

    folder = Path(folder)
    if not client or not client.replace("-", "").replace("_", "").isalnum() or client == "server":
        raise MoodtrackError(f"client name {client!r} is invalid: use letters, digits, - and _ "
                             "(not 'server')")
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        (folder / AUTHORIZED_DIR).mkdir(exist_ok=True, mode=0o700)
        if (folder / f"{client}.key_secret").exists():
            raise MoodtrackError(f"{folder / (client + '.key_secret')} exists already: choose "
                                 "another client name with --client NAME")
        if not (folder / SERVER_SECRET).exists():
            zmq.auth.create_certificates(str(folder), "server")
        zmq.auth.create_certificates(str(folder), client)
        for p in folder.glob("*.key_secret"):
            p.chmod(0o600)
        public = folder / f"{client}.key"
        (folder / AUTHORIZED_DIR / public.name).write_bytes(public.read_bytes())
    except OSError as e:
        raise MoodtrackError(f"cannot write keys to {folder}: {e.strerror or e}; choose a "
                             "writable folder") from e
    return {"server_public": folder / "server.key", "server_secret": folder / SERVER_SECRET,
            "client_public": public, "client_secret": folder / f"{client}.key_secret"}


class DelayedSink:
    """Hands updates to ``sink`` ``delay_ms`` milliseconds after they are emitted.

    For outputs whose effect reaches the room before the sound does (lights behind a
    delayed PA). ``emit`` only queues (never blocks); a timer thread, started by
    :meth:`start` or the first emit, releases each update when it is due, in order. At
    most ``max_pending`` updates wait (the oldest is dropped beyond). :meth:`close`
    releases what is still waiting at once, then closes ``sink``. Other attributes
    (e.g. ``endpoint``) are the wrapped sink's.
    """

    def __init__(self, sink, delay_ms: float, *, max_pending: int = 10_000):
        if not delay_ms >= 0:
            raise ValueError("delay_ms must be >= 0")
        self.sink = sink
        self.delay_s = float(delay_ms) / 1000.0
        self._pending: deque[tuple[float, MoodUpdate]] = deque(maxlen=max_pending)
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    def __getattr__(self, name):
        if "sink" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.__dict__["sink"], name)

    def emit(self, update: MoodUpdate) -> None:
        with self._cond:
            if self._closed:
                return
            self._pending.append((time.monotonic() + self.delay_s, update))
            self._cond.notify()
        if self._thread is None:
            self.start()

    def start(self) -> None:
        with self._cond:
            if self._thread is not None or self._closed:
                return
            self._thread = threading.Thread(target=self._run, name="delayed-sink", daemon=True)
            self._thread.start()
        if hasattr(self.sink, "start"):
            self.sink.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (
                        not self._pending or self._pending[0][0] > time.monotonic()):
                    wait = self._pending[0][0] - time.monotonic() if self._pending else None
                    self._cond.wait(wait)
                if self._closed:
                    return
                _, update = self._pending.popleft()
            self.sink.emit(update)  # outside the lock: emit() never waits for the sink

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join(2.0)
        while self._pending:
            self.sink.emit(self._pending.popleft()[1])
        self.sink.close()


def format_line(update: MoodUpdate) -> str:
    """One human-readable log line, e.g.
    ``  12.50s  Q2 tense        v=-0.42 a=+0.61 conf=0.73  -23.1 dBFS``."""
    level = max(update.level_db, LEVEL_FLOOR_DB)
    return (f"{update.t:7.2f}s  {update.quadrant or '--'} {update.mood:<12} "
            f"v={update.valence:+.2f} a={update.arousal:+.2f} conf={update.confidence:.2f} "
            f"{level:6.1f} dBFS")


class LogSink:
    """The plain log: one :func:`format_line` line per update, flushed at once.

    For ``--no-dashboard`` or a stdout that is not a terminal. A closed stream (e.g. the
    reader of a pipe went away) stops the log, not the pipeline.
    """

    def __init__(self, stream: TextIO = sys.stdout):
        self.stream = stream
        self._closed = False

    def emit(self, update: MoodUpdate) -> None:
        if self._closed:
            return
        try:
            self.stream.write(format_line(update) + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # broken pipe, closed file
            self._closed = True

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self.stream.flush()
            except (OSError, ValueError):
                pass
