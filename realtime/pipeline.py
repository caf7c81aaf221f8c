"""The analysis pipeline: blocks -> loudness, weighted mono mix -> resample -> features ->
model -> mood -> sinks.

One :class:`Pipeline` object serves every mode: ``analyze`` feeds it file blocks as fast
as they are read, the live modes feed it from a capture queue on an analysis thread
(:class:`AnalysisThread`). The result depends only on the audio, never on block sizes.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping

import numpy as np

from realtime.channels import loudness_gains, mix, mix_weights
from realtime.colour import MoodColour
from realtime.errors import MoodtrackError
from realtime.loudness import LoudnessMeter
from realtime.model import MoodModel
from realtime.mood import ModelOutput, MoodEstimator, MoodUpdate
from realtime.sources import Source
from realtime.stats import PipelineStats
from realtime.tags import TAGS_INTERVAL_S, TagWindow


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
    return mix(data)


class Pipeline:
    """Streaming analysis of one audio stream; ``push`` blocks, then ``finish`` once.

    - ``model``: the :class:`MoodModel` (fixes the analysis sample rate);
    - ``update_hz``: mood updates per second of audio;
    - ``smoothing_s``, ``silence_db``, ``speech_hold``: see :class:`realtime.mood.MoodEstimator`;
    - ``sinks``: objects with ``emit(update)``, called on this (the analysis) thread;
    - ``stats``: counters kept up to date (blocks, updates, latency, level);
    - ``colour``: a :class:`realtime.colour.MoodColour` that sets each update's ``color``
      (None: no colour);
    - ``channel_weights``: ``{channel: weight}`` of the mono mix the mood is analysed on,
      channels named by role or ``chN`` (see :mod:`realtime.channels`); None or empty:
      the plain mean of the channels;
    - ``loudness``: measure each update's momentary and short-term loudness (LUFS) of the
      input as captured (see :mod:`realtime.loudness`);
    - ``tags_interval_s``: seconds of audio between updates that carry the model's tags.

    The model's ``outputs(updates)`` (or, for a plain model, ``predict(features)``) gives
    raw (valence, arousal) and optionally per-update ``speech`` and tag scores, as a
    :class:`realtime.mood.ModelOutput`.
    """

    def __init__(self, model: MoodModel, *, update_hz: float = 2.0, smoothing_s: float = 0.0,
                 silence_db: float = -60.0, sinks: Iterable = (),
                 stats: PipelineStats | None = None, colour: MoodColour | None = None,
                 channel_weights: Mapping[str, float] | None = None, loudness: bool = True,
                 tags_interval_s: float = TAGS_INTERVAL_S, speech_hold: float = 0.0):
        self.model = model
        self.colour = colour
        self.channel_weights = dict(channel_weights or {})
        self.loudness = bool(loudness)
        self.channels: int | None = None
        self._weights: np.ndarray | None = None  # None: the plain mean
        self._meter: LoudnessMeter | None = None
        self._tags = TagWindow(interval_s=tags_interval_s)
        self.sample_rate = model.sample_rate
        self.extractor = model.make_extractor(update_hz=update_hz)
        self.estimator = MoodEstimator(output_scale=model.info.output_scale,
                                       residual_std=model.info.residual_std,
                                       smoothing_s=smoothing_s, silence_db=silence_db,
                                       speech_hold=speech_hold)
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
        self._set_channels(1 if data.ndim == 1 else data.shape[1])
        if self._meter is not None:
            self._meter.process(data)
        mono = mix(data, self._weights)
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

    @staticmethod
    def _first(what: str, old, new) -> bool:
        """Whether ``new`` sets a stream property for the first time (False: unchanged); a
        change within the stream is a MoodtrackError."""
        if old == new:
            return False
        if old is not None:
            raise MoodtrackError(f"input {what} changed from {old} to {new} within one stream")
        return True

    def _set_rate(self, rate: int) -> None:
        if not self._first("sample rate (Hz)", self.input_rate, rate):
            return
        if rate <= 0:
            raise MoodtrackError(f"unsupported input sample rate {rate} Hz")
        self.input_rate = rate
        self.stats.sample_rate = rate
        if rate != self.sample_rate:
            import soxr

            self._resampler = soxr.ResampleStream(rate, self.sample_rate, 1, dtype="float32",
                                                  quality="HQ")

    def _set_channels(self, channels: int) -> None:
        """The mix weights and the loudness meter, for the stream's channel count."""
        if not self._first("channels", self.channels, channels):
            return
        self.channels = channels
        w = mix_weights(channels, self.channel_weights)
        self._weights = None if np.all(w == w[0]) else w
        if self.loudness:
            self._meter = LoudnessMeter(sample_rate=self.input_rate,
                                        gains=loudness_gains(channels))

    def _analyse(self, mono: np.ndarray, arrival: float) -> list[MoodUpdate]:
        feats = self.extractor.process(mono)
        if not feats:
            return []
        if getattr(self.model, "uses_embedding", False):  # speech and tags come with it
            res = self.model.outputs(feats)
        else:
            res = ModelOutput.of(self.model.predict(np.stack([f.features for f in feats])))
        latency_ms = (time.monotonic() - arrival) * 1000.0
        out = []
        for i, f in enumerate(feats):
            v, a = res.va[i]
            sp = None if res.speech is None else float(res.speech[i])
            u = self.estimator.update(f.t, float(v), float(a), f.level_db,
                                      speech=sp if sp is not None and math.isfinite(sp) else None)
            u.latency_ms = latency_ms
            if self._meter is not None:
                u.loudness_m, u.loudness_s = self._meter.loudness(
                    end=int(round(f.t * self.input_rate)))
            if res.speech is not None and math.isfinite(float(res.speech[i])):
                u.speech = min(1.0, max(0.0, float(res.speech[i])))
            u.tags = self._tags.add(f.t, None if res.tags is None else
                                    {g: (names, scores[i]) for g, (names, scores) in
                                     res.tags.items()})
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
