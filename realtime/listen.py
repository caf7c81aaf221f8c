"""``moodtrack listen``: print what a running tracker publishes, one JSON object a line."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from realtime.errors import MoodtrackError
from realtime.sinks import DEFAULT_ENDPOINT, TOPIC


def _payload(frames: list[bytes]) -> bytes:
    """The JSON of a message in either framing: ``[topic, json]`` or ``[b"mood {json}"]``."""
    if len(frames) >= 2:
        return frames[1]
    return frames[0][len(TOPIC):].lstrip()


def listen(endpoint: str = DEFAULT_ENDPOINT, *, count: int | None = None,
           timeout_s: float | None = None, out: TextIO = sys.stdout) -> int:
    """Subscribe to ``endpoint`` and print each message's JSON on its own line to ``out``.

    Stops after ``count`` messages (None: until Ctrl-C). ``timeout_s``: give up when no
    message arrives for that many seconds. Gaps in ``seq`` are reported on stderr.
    Returns the exit status: 0 after ``count`` messages or Ctrl-C, 1 on a timeout.
    """
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SUBSCRIBE, TOPIC)
    sock.setsockopt(zmq.IPV6, int("[" in endpoint))
    try:
        sock.connect(endpoint)
    except zmq.ZMQError as e:
        sock.close(0)
        ctx.term()
        raise MoodtrackError(f"cannot listen to {endpoint}: {e}; give an address like "
                             "tcp://127.0.0.1:5556") from e
    received, last_seq = 0, None
    try:
        while count is None or received < count:
            wait_ms = None if timeout_s is None else max(0, int(timeout_s * 1000))
            if not sock.poll(wait_ms):
                print(f"moodtrack listen: no message from {endpoint} in {timeout_s:g} s "
                      "(is moodtrack running, publishing there?)", file=sys.stderr)
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
        sock.close(0)
        ctx.term()
