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
    ("" while it is fine); ``input_hint``: what to do about the input (set by
    :class:`DigitalSilenceWatch`; "" when there is nothing to say).
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
    input_hint: str = ""
    started: float = field(default_factory=time.monotonic)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("started")
        d["uptime_s"] = round(time.monotonic() - self.started, 3)
        return d


#: A device input below this level (dBFS) is digital silence: nothing reaches it.
DIGITAL_SILENCE_DB = -90.0
#: Seconds of digital silence after which :class:`DigitalSilenceWatch` explains it.
DIGITAL_SILENCE_S = 10.0


class DigitalSilenceWatch:
    """Sets ``stats.input_hint`` while a device has delivered digital silence (every
    update below :data:`DIGITAL_SILENCE_DB`) for :data:`DIGITAL_SILENCE_S` seconds: it
    names the device and says how to pick another; clears it when sound arrives.
    :meth:`check` is called a few times a second (``now``: monotonic seconds)."""

    def __init__(self, stats: PipelineStats):
        self.stats = stats
        self._since: float | None = None
        self._updates = -1

    def check(self, now: float | None = None) -> None:
        s = self.stats
        now = time.monotonic() if now is None else now
        if s.updates == self._updates:
            return  # no new level
        self._updates = s.updates
        if s.level_db >= DIGITAL_SILENCE_DB:
            self._since = None
            s.input_hint = ""
        elif self._since is None:
            self._since = now
        elif now - self._since >= DIGITAL_SILENCE_S and not s.input_hint:
            s.input_hint = (
                f"no signal: {s.device or 'the input'} has delivered digital silence (below "
                f"{DIGITAL_SILENCE_DB:g} dBFS) for {DIGITAL_SILENCE_S:g} s: nothing plays into "
                "it, or it is the wrong input; list inputs with 'moodtrack devices', pick one "
                "with 'moodtrack live -d DEVICE', or try 'moodtrack demo'")
