"""The analysis pipeline: blocks -> mono -> resample -> features -> model -> mood -> sinks.

One :class:`Pipeline` object serves every mode: ``analyze`` feeds it file blocks as fast
as they are read, the live modes feed it from a capture queue on an analysis thread
(:class:`AnalysisThread`). The result depends only on the audio, never on block sizes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

import numpy as np

from realtime.colour import MoodColour
from realtime.errors import MoodtrackError
from realtime.model import MoodModel
from realtime.mood import MoodEstimator, MoodUpdate
from realtime.sources import Source
from realtime.stats import PipelineStats


#: Largest sample magnitude analysed (+80 dBFS): beyond it, float input is garbage and
#: is clipped so that no feature overflows.
MAX_ABS_SAMPLE = 1e4


def sanitize(data: np.ndarray) -> tuple[np.ndarray, int]:
    """``(data, n_nonfinite)``: NaN and inf samples replaced by 0 (and counted), samples
    clipped to +-:data:`MAX_ABS_SAMPLE`. Clean input (the usual case) is returned as is."""
    data = np.asarray(data, dtype=np.float32)
    if data.size == 0:
        return data, 0
    peak = max(float(data.max()), -float(data.min()))  # no |data| temporary
    if peak <= MAX_ABS_SAMPLE:  # False for NaN
        return data, 0
    finite = np.isfinite(data)
    bad = int(data.size - np.count_nonzero(finite))
    return np.clip(np.where(finite, data, 0.0), -MAX_ABS_SAMPLE, MAX_ABS_SAMPLE
                   ).astype(np.float32), bad


def to_mono(data: np.ndarray) -> np.ndarray:
    """float32 (n,) mean of the channels of a (n,) or (n, channels) block."""
    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 1:
        return data
    if data.shape[1] == 1:
        return data[:, 0]
    # Column by column: the same float32 values as data.mean(axis=1), ~20x faster (a
    # reduction over a short inner axis is numpy's slow case).
    out = data[:, 0].copy()
    for c in range(1, data.shape[1]):
        out += data[:, c]
    out /= np.float32(data.shape[1])
    return out


class Pipeline:
    """Streaming analysis of one audio stream; ``push`` blocks, then ``finish`` once.

    - ``model``: the :class:`MoodModel` (fixes the analysis sample rate);
    - ``update_hz``: mood updates per second of audio;
    - ``smoothing_s``, ``silence_db``: see :class:`realtime.mood.MoodEstimator`;
    - ``sinks``: objects with ``emit(update)``, called on this (the analysis) thread;
    - ``stats``: counters kept up to date (blocks, updates, latency, level);
    - ``colour``: a :class:`realtime.colour.MoodColour` that sets each update's ``color``
      (None: no colour).
    """

    def __init__(self, model: MoodModel, *, update_hz: float = 2.0, smoothing_s: float = 0.0,
                 silence_db: float = -60.0, sinks: Iterable = (),
                 stats: PipelineStats | None = None, colour: MoodColour | None = None):
        self.model = model
        self.colour = colour
        self.sample_rate = model.sample_rate
        self.extractor = model.make_extractor(update_hz=update_hz)
        self.estimator = MoodEstimator(output_scale=model.info.output_scale,
                                       residual_std=model.info.residual_std,
                                       smoothing_s=smoothing_s, silence_db=silence_db)
        self.sinks = list(sinks)
        self.stats = stats if stats is not None else PipelineStats()
        self.stats.model = f"{model.info.name} {model.info.version}"
        self.input_rate: int | None = None
        self.frames_in = 0  # input frames consumed
        self._resampler = None
        self._finished = False

    def push(self, data: np.ndarray, *, sample_rate: int, arrival: float | None = None
             ) -> list[MoodUpdate]:
        """Analyse one block (``(n,)`` or ``(n, channels)`` at ``sample_rate`` Hz).

        ``arrival`` is the ``time.monotonic()`` at which the block was captured; the
        updates it completes get ``latency_ms`` measured from it. Returns those updates,
        already emitted to the sinks.
        """
        arrival = time.monotonic() if arrival is None else arrival
        if self._finished:
            raise RuntimeError("push after finish")
        self._set_rate(int(sample_rate))
        data, bad = sanitize(data)
        if bad:
            self.stats.nonfinite_samples += bad
        mono = to_mono(data)
        self.frames_in += mono.shape[0]
        self.stats.blocks += 1
        if self._resampler is not None:
            mono = self._resampler.resample_chunk(mono, last=False)
        return self._analyse(mono, arrival)

    def finish(self, *, arrival: float | None = None) -> list[MoodUpdate]:
        """End of stream: flush the resampler's tail. Idempotent."""
        if self._finished:
            return []
        self._finished = True
        if self._resampler is None:
            return []
        tail = self._resampler.resample_chunk(np.zeros(0, np.float32), last=True)
        return self._analyse(tail, time.monotonic() if arrival is None else arrival)

    def _set_rate(self, rate: int) -> None:
        if self.input_rate == rate:
            return
        if self.input_rate is not None:
            raise MoodtrackError(f"input sample rate changed from {self.input_rate} to {rate} Hz "
                                 "within one stream")
        if rate <= 0:
            raise MoodtrackError(f"unsupported input sample rate {rate} Hz")
        self.input_rate = rate
        self.stats.sample_rate = rate
        if rate != self.sample_rate:
            import soxr

            self._resampler = soxr.ResampleStream(rate, self.sample_rate, 1, dtype="float32",
                                                  quality="HQ")

    def _analyse(self, mono: np.ndarray, arrival: float) -> list[MoodUpdate]:
        feats = self.extractor.process(mono)
        if not feats:
            return []
        raw = self.model.predict(np.stack([f.features for f in feats]))
        latency_ms = (time.monotonic() - arrival) * 1000.0
        out = []
        for f, (v, a) in zip(feats, raw):
            u = self.estimator.update(f.t, float(v), float(a), f.level_db)
            u.latency_ms = latency_ms
            if self.colour is not None:
                u.color = self.colour.update(u.t, u.valence, u.arousal)
            for sink in self.sinks:
                sink.emit(u)
            out.append(u)
        self.stats.updates += len(out)
        self.stats.latency_ms = latency_ms
        self.stats.level_db = out[-1].level_db
        return out

    def run(self, source: Source, *, seconds: float | None = None,
            stop: threading.Event | None = None,
            on_block: Callable[[int], None] | None = None) -> int:
        """Feed ``source`` until it ends, ``seconds`` of audio are in, or ``stop`` is set.

        ``on_block(n_frames)`` is called after each block (e.g. to advance a progress bar).

        Returns the number of updates emitted. The resampler is flushed at the end, so a
        ``seconds`` limit or the end of a file still yields the updates up to it.
        """
        self.stats.channels = source.channels
        self.stats.device = source.name
        limit = None if seconds is None else int(round(seconds * source.sample_rate))
        n = 0
        for block in source.blocks(stop):
            data = block.data
            last = limit is not None and self.frames_in + data.shape[0] >= limit
            if last:
                data = data[: limit - self.frames_in]
            n += len(self.push(data, sample_rate=source.sample_rate, arrival=block.arrival))
            if on_block is not None:
                on_block(data.shape[0])
            if last:
                break
        if stop is None or not stop.is_set():
            n += len(self.finish())
        return n


class AnalysisThread(threading.Thread):
    """Runs :meth:`Pipeline.run` on its own thread; ``error`` holds what stopped it."""

    def __init__(self, pipeline: Pipeline, source: Source, *, seconds: float | None = None,
                 stop: threading.Event | None = None):
        super().__init__(name="analysis", daemon=True)
        self.pipeline = pipeline
        self.source = source
        self.seconds = seconds
        self.stop = stop if stop is not None else threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.pipeline.run(self.source, seconds=self.seconds, stop=self.stop)
        except BaseException as exc:  # handed to the main thread, which reports it
            self.error = exc
