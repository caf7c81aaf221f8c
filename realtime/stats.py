"""Pipeline health counters shared between the capture, analysis and display threads.

Plain integer/float attributes written by one thread and read by others: each is a
single assignment, so readers see a consistent value without locks.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field


@dataclass
class PipelineStats:
    """What a user sees about the health of a run.

    ``overflows``: input overflows reported by the audio driver; ``dropped_blocks``:
    blocks the capture queue had no room for; ``latency_ms``: last update latency from
    block arrival to sinks; ``input_state``: ``"ok"``, ``"stalled"`` (no audio for a
    second) or ``"lost"`` (the device went away; being reopened), with ``input_error``
    saying why; ``reconnects``: times a lost input came back; ``nonfinite_samples``: NaN
    or infinite input samples replaced by 0; ``csv_error``: why the CSV timeline stopped
    ("" while it is fine); ``zmq_dropped`` / ``web_dropped``: messages that a slow ZeroMQ
    subscriber / web page did not get.
    """

    device: str = ""
    sample_rate: int = 0
    channels: int = 0
    model: str = ""
    overflows: int = 0
    dropped_blocks: int = 0
    blocks: int = 0
    updates: int = 0
    latency_ms: float = 0.0
    level_db: float = -100.0
    input_state: str = "ok"
    input_error: str = ""
    reconnects: int = 0
    nonfinite_samples: int = 0
    csv_error: str = ""
    zmq_dropped: int = 0
    web_dropped: int = 0
    started: float = field(default_factory=time.monotonic)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("started")
        d["uptime_s"] = round(time.monotonic() - self.started, 3)
        return d
