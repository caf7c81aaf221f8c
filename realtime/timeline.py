"""A mood timeline as arrays: from a run's updates or read back from its CSV.

:class:`Timeline` is what the summaries (:mod:`realtime.summary`) and the plots
(:mod:`realtime.plot`) work on. Built from updates, its values are rounded exactly as the
CSV timeline writes them, so a summary of a run and one of its CSV agree to the digit.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from realtime.errors import MoodtrackError
from realtime.mood import MOODS, SILENCE, MoodUpdate
from realtime.sinks import update_record

#: CSV columns a timeline needs (the others, such as ``wall``, are ignored).
NEEDED_COLUMNS = ("t", "valence", "arousal", "mood", "confidence", "level_db", "silence")
KNOWN_MOODS = (*MOODS.values(), SILENCE)


@dataclass
class Timeline:
    """Per-update arrays, in time order.

    ``t``: seconds of audio at the end of each update; ``valence``/``arousal`` in
    [-1, 1]; ``mood``: a mood name or ``"silence"``; ``confidence`` 0..1;
    ``level_db``: dBFS (NaN when unknown); ``silence``: bool; ``name``: where it came from.
    """

    t: np.ndarray
    valence: np.ndarray
    arousal: np.ndarray
    mood: np.ndarray
    confidence: np.ndarray
    level_db: np.ndarray
    silence: np.ndarray
    name: str = ""

    def __len__(self) -> int:
        return int(self.t.shape[0])

    @property
    def spans(self) -> np.ndarray:
        """Seconds of audio each update stands for: from the previous update's ``t``
        (0 for the first) to its own, so the spans add up to the last ``t``."""
        return np.diff(self.t, prepend=0.0)

    @classmethod
    def from_records(cls, records: Iterable[dict], *, name: str = "") -> Timeline:
        """From dicts with the :data:`NEEDED_COLUMNS` keys (already typed)."""
        recs = list(records)

        def col(key, dtype, none=math.nan):
            return np.array([none if r[key] is None else r[key] for r in recs], dtype=dtype)

        return cls(t=col("t", float), valence=col("valence", float),
                   arousal=col("arousal", float), mood=np.array([r["mood"] for r in recs],
                                                                 dtype=object),
                   confidence=col("confidence", float), level_db=col("level_db", float),
                   silence=col("silence", bool, False), name=name)

    @classmethod
    def from_updates(cls, updates: Iterable[MoodUpdate], *, name: str = "") -> Timeline:
        """From a run's updates, rounded as the CSV timeline rounds them."""
        return cls.from_records((update_record(u) for u in updates), name=name)


def read_timeline(path: str | Path) -> Timeline:
    """A CSV timeline written by moodtrack; anything else is a :class:`MoodtrackError`."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except OSError as exc:
        raise MoodtrackError(f"cannot read timeline {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, csv.Error):
        raise MoodtrackError(
            f"timeline {path} is not a CSV text file (binary data: audio, an image?); give a "
            "timeline written by 'moodtrack analyze' or --csv (for an audio file: 'moodtrack "
            f"analyze {path} -o DIR --plot')") from None
    if not rows:
        raise MoodtrackError(f"timeline {path} is empty: expected a header line "
                             f"({','.join(NEEDED_COLUMNS)}, ...)")
    header = rows[0]
    missing = [c for c in NEEDED_COLUMNS if c not in header]
    if missing:
        raise MoodtrackError(f"timeline {path} lacks the column(s) {', '.join(missing)}: is it a "
                             "CSV written by 'moodtrack analyze' or --csv?")
    idx = {c: header.index(c) for c in NEEDED_COLUMNS}
    records = []
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        try:
            rec = {c: row[i] for c, i in idx.items()}
            mood = rec["mood"]
            if mood not in KNOWN_MOODS:
                raise ValueError(f"unknown mood {mood!r}")
            records.append({
                "t": float(rec["t"]), "valence": float(rec["valence"]),
                "arousal": float(rec["arousal"]), "mood": mood,
                "confidence": float(rec["confidence"]),
                "level_db": float(rec["level_db"]) if rec["level_db"] else None,
                "silence": rec["silence"].strip().lower() in ("1", "true")})
        except (IndexError, ValueError) as exc:
            why = str(exc) if isinstance(exc, ValueError) else "too few fields"
            raise MoodtrackError(f"timeline {path}, line {line}: {why}") from None
    tl = Timeline.from_records(records, name=path.name)
    if len(tl) > 1 and np.any(np.diff(tl.t) <= 0):
        raise MoodtrackError(f"timeline {path}: times (column t) do not increase")
    return tl
