"""Minimal moodtrack subscriber: a template for wiring other programs (needs only pyzmq).

    python tools/subscribe.py [tcp://127.0.0.1:5556]

Each message is two frames: the topic b"mood", then a JSON object (schema 1) with
seq, t, wall, valence, arousal, quadrant, mood, confidence, level_db, silence, latency_ms,
color ([r, g, b] in 0..1) and color_hex.
"""

import argparse
import json
import sys

import zmq

ap = argparse.ArgumentParser(description="Print the mood updates a running moodtrack publishes.")
ap.add_argument("endpoint", nargs="?", default="tcp://127.0.0.1:5556",
                help="the publisher's endpoint (default tcp://127.0.0.1:5556)")
endpoint = ap.parse_args().endpoint
sock = zmq.Context().socket(zmq.SUB)
try:
    sock.connect(endpoint)             # the tracker binds; subscribers connect
except zmq.ZMQError as exc:
    print(f"subscribe.py: error: cannot connect to {endpoint!r} ({exc}); give an endpoint "
          "like tcp://127.0.0.1:5556", file=sys.stderr)
    sys.exit(2)
sock.setsockopt(zmq.SUBSCRIBE, b"mood")
print(f"listening on {endpoint} (Ctrl-C to stop)", file=sys.stderr)
try:
    while True:
        topic, body = sock.recv_multipart()
        msg = json.loads(body)
        # React to the mood here: msg["valence"], msg["arousal"] in [-1, 1], msg["mood"], ...
        print(f'{msg["t"]:8.2f}s  {msg["mood"]:<12} v={msg["valence"]:+.2f} '
              f'a={msg["arousal"]:+.2f} conf={msg["confidence"]:.2f}')
except (KeyboardInterrupt, BrokenPipeError):  # Ctrl-C, or piped into head
    pass
finally:
    sock.close(0)
