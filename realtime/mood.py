"""Post-processing: raw model outputs to a mood update (scaled, smoothed, labelled).

Valence and arousal are in [-1, 1]. Quadrants follow Russell's circumplex:
Q1 valence+ arousal+ "uplifting", Q2 valence- arousal+ "tense",
Q3 valence- arousal- "melancholic", Q4 valence+ arousal- "calm".
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from realtime.errors import MoodtrackError

MOODS = {1: "uplifting", 2: "tense", 3: "melancholic", 4: "calm"}
SILENCE = "silence"
#: Display colours (rich names) per mood.
MOOD_COLOURS = {"uplifting": "yellow", "tense": "red", "melancholic": "blue", "calm": "green",
                SILENCE: "grey50"}


class ModelOutputError(MoodtrackError):
    """The model gave something that is not a (valence, arousal) pair of finite numbers."""


def quadrant_of(valence: float, arousal: float) -> int:
    """Russell quadrant 1..4 of a point (zero counts as positive)."""
    if arousal >= 0:
        return 1 if valence >= 0 else 2
    return 4 if valence >= 0 else 3


@dataclass
class MoodUpdate:
    """One mood estimate, as every sink receives it.

    ``t``: seconds of audio since the start, at the end of the audio described;
    ``wall``: unix time of the estimate; ``level_db``: input level in dBFS;
    ``latency_ms``: from the arrival of the block that completed the update to now.
    ``quadrant`` is ``"Q1"``..``"Q4"``, or ``None`` while silent. ``color``: the
    mood colour (r, g, b in [0, 1], see :mod:`realtime.colour`), or None when not coloured.
    ``loudness_m``, ``loudness_s``: momentary (0.4 s) and short-term (3 s) loudness of the
    input as captured, LUFS, floored at -70 (see :mod:`realtime.loudness`); None when not
    measured. ``speech``: 0..1, how much of the update interval is dominated by speech
    (dialogue, narration); None when the model gives none. ``tags``: about once a second,
    ``{"instruments": [[name, score], ...], "genres": [...]}`` sorted by score (see
    :mod:`realtime.tags`); None on the other updates and when the model gives no tags.
    """

    seq: int
    t: float
    wall: float
    valence: float
    arousal: float
    quadrant: str | None
    mood: str
    confidence: float
    level_db: float
    silence: bool
    latency_ms: float = 0.0
    color: tuple[float, float, float] | None = None
    loudness_m: float | None = None
    loudness_s: float | None = None
    speech: float | None = None
    tags: dict[str, list] | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ModelOutput:
    """What a model stage gives for ``n`` feature rows: ``va`` raw (valence, arousal),
    float (n, 2); optionally ``speech`` (n,) in [0, 1] (NaN where unknown) and ``tags``,
    ``{group: (names, scores (n, n_tags))}`` with groups ``"instruments"`` and
    ``"genres"`` (rows of NaN where the tagger did not run)."""

    va: np.ndarray
    speech: np.ndarray | None = None
    tags: Mapping[str, tuple[Sequence[str], np.ndarray]] | None = None

    @classmethod
    def of(cls, result) -> ModelOutput:
        """A model's ``predict`` result as a ModelOutput (a bare (n, 2) array: ``va`` only)."""
        if isinstance(result, cls):
            return result
        return cls(np.asarray(result).reshape(-1, 2))


def _normal_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


class MoodEstimator:
    """Turns raw model outputs into :class:`MoodUpdate` s.

    - ``output_scale``: per-dimension factors applied before clipping to [-1, 1];
    - ``residual_std``: the model's cross-validated error (raw units) per dimension; the
      confidence is the probability that the quadrant is right under that error, rescaled
      from [0.25, 1] to [0, 1];
    - ``smoothing_s``: exponential smoothing time constant in seconds (0 = off);
    - ``silence_db``: below this level (dBFS) the update is silent: no quadrant, mood
      ``"silence"``, confidence 0, valence/arousal held at their last values;
    - ``speech_hold``: while an update's speech value is at least this (0 = off), the
      estimate holds its last values (dialogue over the score does not move the mood).
    """

    def __init__(self, *, output_scale=(1.0, 1.0), residual_std=(0.25, 0.25),
                 smoothing_s: float = 0.0, silence_db: float = -60.0, speech_hold: float = 0.0):
        if smoothing_s < 0:
            raise ValueError("smoothing_s must be >= 0")
        self.output_scale = tuple(float(s) for s in output_scale)
        self.residual_std = tuple(float(s) for s in residual_std)
        self.smoothing_s = float(smoothing_s)
        self.silence_db = float(silence_db)
        self.speech_hold = float(speech_hold)
        self._seq = 0
        self._state: tuple[float, float] | None = None  # smoothed raw (valence, arousal)
        self._t_last: float | None = None

    def update(self, t: float, raw_valence: float, raw_arousal: float, level_db: float,
               *, wall: float | None = None, speech: float | None = None) -> MoodUpdate:
        """The estimate for audio ending at ``t`` seconds (``speech``: the update's speech
        value, for ``speech_hold``)."""
        wall = time.time() if wall is None else wall
        if not (math.isfinite(raw_valence) and math.isfinite(raw_arousal)):
            raise ModelOutputError(
                f"the mood model gave a non-finite output (valence {raw_valence}, arousal "
                f"{raw_arousal}) at {t:.1f} s: it is broken, and no mood is made of it; restore "
                "models/mood.onnx or pass another --model")
        silent = level_db < self.silence_db
        held = (self.speech_hold > 0 and speech is not None and speech >= self.speech_hold
                and self._state is not None)
        if not silent and not held:
            raw = (float(raw_valence), float(raw_arousal))
            if self._state is None or self.smoothing_s == 0 or self._t_last is None:
                self._state = raw
            else:
                alpha = 1.0 - math.exp(-max(t - self._t_last, 0.0) / self.smoothing_s)
                self._state = tuple(s + alpha * (r - s) for s, r in zip(self._state, raw))  # type: ignore[assignment]
            self._t_last = t
        rv, ra = self._state if self._state is not None else (0.0, 0.0)
        valence = max(-1.0, min(1.0, rv * self.output_scale[0]))
        arousal = max(-1.0, min(1.0, ra * self.output_scale[1]))
        seq = self._seq
        self._seq += 1
        if silent:
            return MoodUpdate(seq, t, wall, valence, arousal, None, SILENCE, 0.0, level_db, True)
        q = quadrant_of(valence, arousal)
        p = _normal_cdf(abs(rv) / self.residual_std[0]) * _normal_cdf(abs(ra) / self.residual_std[1])
        confidence = max(0.0, min(1.0, (p - 0.25) / 0.75))
        return MoodUpdate(seq, t, wall, valence, arousal, f"Q{q}", MOODS[q], confidence, level_db, False)
