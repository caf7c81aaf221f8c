"""``moodtrack listen``: print what a running tracker publishes, one JSON object a line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TextIO

from realtime.errors import MoodtrackError
from realtime.sinks import DEFAULT_ENDPOINT


def _payload(frames: list[bytes]) -> bytes:
    """The JSON of a message in either framing: ``[topic, json]`` or ``[b"topic {json}"]``."""
    if len(frames) >= 2:
        return frames[1]
    return frames[0].partition(b" ")[2]


def secure_client(sock, keys: str | Path, client: str = "client") -> None:
    """Make a SUB ``sock`` a CURVE client with ``keys/<client>.key_secret`` and the
    publisher's ``keys/server.key`` (from ``moodtrack keys``), before it connects."""
    import zmq.auth

    keys = Path(keys)
    try:
        public, secret = zmq.auth.load_certificate(keys / f"{client}.key_secret")
        server, _ = zmq.auth.load_certificate(keys / "server.key")
    except (OSError, ValueError) as e:
        raise MoodtrackError(f"cannot read the CURVE keys of client '{client}' in {keys}: {e}; "
                             f"create them with 'moodtrack keys {keys} --client {client}'") from None
    sock.curve_secretkey, sock.curve_publickey, sock.curve_serverkey = secret, public, server


def listen(endpoint: str = DEFAULT_ENDPOINT, *, count: int | None = None,
           timeout_s: float | None = None, out: TextIO | None = None, topic: str = "mood",
           keys: str | Path | None = None, client: str = "client") -> int:
    """Subscribe to ``endpoint`` and print each message's JSON on its own line to ``out``.

    ``out`` defaults to the current ``sys.stdout``. Stops after ``count`` messages (None: until Ctrl-C). ``timeout_s``: give up when no
    message arrives for that many seconds. Gaps in ``seq`` are reported on stderr.
    ``topic``: ``"mood"``, ``"status"`` or ``"tags"``; ``keys``/``client``: see :func:`secure_client`.
    Returns the exit status: 0 after ``count`` messages or Ctrl-C, 1 on a timeout.
    """
    import zmq

    out = sys.stdout if out is None else out
    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SUBSCRIBE, topic.encode())
    sock.setsockopt(zmq.IPV6, int("[" in endpoint))
    try:
        if keys:
            secure_client(sock, keys, client)
        sock.connect(endpoint)
    except (zmq.ZMQError, MoodtrackError) as e:
        sock.close(0)
        ctx.term()
        if isinstance(e, MoodtrackError):
            raise
        raise MoodtrackError(f"cannot listen to {endpoint}: {e}; give an address like "
                             "tcp://127.0.0.1:5556") from e
    monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_FAILED_AUTH
                                      | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                                      | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    poller.register(monitor, zmq.POLLIN)
    received, last_seq = 0, None
    try:
        while count is None or received < count:
            wait_ms = None if timeout_s is None else max(0, int(timeout_s * 1000))
            ready = dict(poller.poll(wait_ms))
            if monitor in ready and sock not in ready:
                # A refused key is final (ZeroMQ does not retry it); another failed
                # handshake before any message means the two ends do not match.
                why = _refused(monitor, endpoint, keys, client, first=received == 0)
                if why:
                    print(f"moodtrack listen: {why}", file=sys.stderr)
                    return 1
                continue
            if sock not in ready:
                hint = ("" if keys else "; a publisher started with --zmq-keys is encrypted "
                        "and sends nothing without keys: pass --keys DIR (from 'moodtrack keys')")
                print(f"moodtrack listen: no message from {endpoint} in {timeout_s:g} s "
                      f"(is moodtrack running, publishing there?{hint})", file=sys.stderr)
                return 1
            payload = _payload(sock.recv_multipart())
            text = payload.decode("utf-8", errors="replace")
            try:
                seq = json.loads(text).get("seq")
            except (ValueError, AttributeError):
                seq = None
            if isinstance(seq, int) and last_seq is not None and seq > last_seq + 1:
                print(f"moodtrack listen: missed {seq - last_seq - 1} message(s)", file=sys.stderr)
            if isinstance(seq, int):
                last_seq = seq
            out.write(text + "\n")
            out.flush()
            received += 1
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        sock.disable_monitor()
        monitor.close(0)
        sock.close(0)
        ctx.term()


def _refused(monitor, endpoint: str, keys, client: str, *, first: bool) -> str:
    """Why the publisher at ``endpoint`` refused the handshake (a monitor event waits), or
    "" when it does not settle it: a handshake that failed otherwise than on the key
    after messages came (``first`` False)."""
    import zmq
    from zmq.utils.monitor import recv_monitor_message

    event = recv_monitor_message(monitor)["event"]
    if event != zmq.EVENT_HANDSHAKE_FAILED_AUTH and not first:
        return ""
    if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        return (f"{endpoint} refused client '{client}' (keys in {keys}): its public key is not "
                "in the publisher's authorized_clients/ folder (any more), or server.key is "
                "not that publisher's")
    if not keys:
        return (f"{endpoint} is encrypted (started with --zmq-keys): pass --keys DIR with the "
                "folder from 'moodtrack keys'")
    return (f"{endpoint} refused the encrypted handshake: it is not encrypted (drop --keys), "
            f"or its server key is not {keys}/server.key")
