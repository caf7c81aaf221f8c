"""Summaries of a mood timeline: what a music editor searching a library wants to know.

Pure functions of a :class:`~realtime.timeline.Timeline`:

- :func:`time_in_moods`: seconds in each mood (and in silence);
- :func:`mood_segments`: the timeline as mood sections, a change counting only once the
  new mood has held for ``hold_s`` seconds (shorter blips stay in the section around them);
- :func:`mood_changes`: the strongest changes: where the mean valence-arousal position of
  the ``window_s`` seconds of sound after a time differs most from that of the
  ``window_s`` seconds of sound before it (a jump in the V-A plane, axes in [-1, 1]),
  peaks at least ``window_s`` of sound apart;
- :func:`summarize`: all of it as one JSON-ready dict; :func:`summary_row` flattens it to
  the :data:`SUMMARY_COLUMNS` of the run's ``summary.csv`` (with the top three clip-level
  ``instruments`` and ``genres`` that ``analyze`` adds, see :func:`realtime.tags.clip_tags`).
"""

from __future__ import annotations

import numpy as np

from realtime.mood import MOODS, SILENCE, quadrant_of
from realtime.tags import TAG_GROUPS, format_tags
from realtime.timeline import Timeline

#: Seconds a new mood must hold before it starts a new section.
HOLD_S = 4.0
#: Seconds compared on each side of a candidate change.
WINDOW_S = 5.0
#: Smallest V-A jump (Euclidean, axes in [-1, 1]) reported as a change.
MIN_JUMP = 0.25
#: Changes listed per file, strongest first.
MAX_CHANGES = 5
MOOD_NAMES = tuple(MOODS.values())

#: Columns of ``summary.csv``, one row per analysed file.
SUMMARY_COLUMNS = (
    "file", "timeline", "duration_s", "updates", "mean_valence", "mean_arousal",
    "dominant_mood", *(f"{m}_s" for m in MOOD_NAMES), "silence_s", "mood_changes",
    "strongest_change_t", "strongest_change", "strongest_change_jump", "changes",
    "instruments", "genres", "error", "warning")


def format_time(seconds: float) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour), rounded to the second."""
    s = int(round(seconds))
    h, m = divmod(s // 60, 60)
    return f"{h}:{m:02d}:{s % 60:02d}" if h else f"{m}:{s % 60:02d}"


def time_in_moods(tl: Timeline) -> dict[str, float]:
    """Seconds per mood name and ``"silence"`` (each update counts its span)."""
    spans = tl.spans
    return {m: float(spans[tl.mood == m].sum()) for m in (*MOOD_NAMES, SILENCE)}


def mean_position(tl: Timeline) -> tuple[float, float] | None:
    """Time-weighted mean (valence, arousal) of the non-silent updates; None if none."""
    w = np.where(tl.silence, 0.0, tl.spans)
    if len(tl) == 0 or w.sum() <= 0:
        return None
    return float(np.average(tl.valence, weights=w)), float(np.average(tl.arousal, weights=w))


def mood_segments(tl: Timeline, *, hold_s: float = HOLD_S) -> list[dict]:
    """Mood sections ``{"start", "end", "mood"}`` (seconds) covering 0 .. the last ``t``.

    A run of another mood (or silence) becomes a new section only once it has lasted
    ``hold_s`` seconds; the section then starts where the run started.
    """
    if len(tl) == 0:
        return []
    starts = tl.t - tl.spans
    runs: list[list] = []  # [start, end, mood] of maximal runs of one label
    for s, e, m in zip(starts, tl.t, tl.mood):
        if runs and runs[-1][2] == m:
            runs[-1][1] = e
        else:
            runs.append([float(s), float(e), m])
    sections: list[list] = []
    for s, e, m in runs:
        if not sections:
            if e - s >= hold_s:
                sections.append([0.0, e, m])
            continue
        if m == sections[-1][2] or e - s < hold_s:
            sections[-1][1] = e
        else:
            sections.append([s, e, m])
    if not sections:  # no mood held hold_s: one section of the longest-lasting one
        total = time_in_moods(tl)
        sections = [[0.0, float(tl.t[-1]), max(total, key=total.get)]]
    return [{"start": round(float(s), 3), "end": round(float(e), 3), "mood": str(m)}
            for s, e, m in sections]


def mood_changes(tl: Timeline, *, window_s: float = WINDOW_S, min_jump: float = MIN_JUMP,
                 max_changes: int = MAX_CHANGES) -> list[dict]:
    """The strongest V-A jumps, strongest first (see the module docstring).

    Each is ``{"t", "jump", "from", "to", "label", "valence_before", "arousal_before",
    "valence_after", "arousal_after"}``: ``t`` in seconds, where the audio after the
    change starts; ``from``/``to`` the moods of the mean positions before and after;
    ``label`` names the change (see :func:`change_label`).
    Silence is left out (a change across a pause is found too); a side with less than
    half a window of sound does not count.
    """
    sound = ~tl.silence
    t, v, a = tl.t[sound], tl.valence[sound], tl.arousal[sound]
    starts = (tl.t - tl.spans)[sound]
    n = t.shape[0]
    if n < 2:
        return []
    k = max(1, int(round(window_s / float(np.median(np.diff(tl.t))))))  # updates per window
    cv, ca = np.concatenate([[0.0], np.cumsum(v)]), np.concatenate([[0.0], np.cumsum(a)])
    mid = np.arange(1, n)  # boundary before sound update `mid`
    lo, hi = np.maximum(mid - k, 0), np.minimum(mid + k, n)
    vb, ab = (cv[mid] - cv[lo]) / (mid - lo), (ca[mid] - ca[lo]) / (mid - lo)
    va, aa = (cv[hi] - cv[mid]) / (hi - mid), (ca[hi] - ca[mid]) / (hi - mid)
    jump = np.hypot(va - vb, aa - ab)
    jump[(mid - lo < (k + 1) // 2) | (hi - mid < (k + 1) // 2)] = 0.0
    at = starts[mid]
    picked: list[int] = []
    for i in np.argsort(-jump, kind="stable"):
        if jump[i] < min_jump or len(picked) == max_changes:
            break
        if all(abs(i - j) >= k for j in picked):  # a window of sound apart
            picked.append(int(i))
    return [{"t": round(float(at[i]), 3), "jump": round(float(jump[i]), 4),
             "from": MOODS[quadrant_of(vb[i], ab[i])], "to": MOODS[quadrant_of(va[i], aa[i])],
             "label": change_label(vb[i], ab[i], va[i], aa[i]),
             "valence_before": round(float(vb[i]), 4), "arousal_before": round(float(ab[i]), 4),
             "valence_after": round(float(va[i]), 4), "arousal_after": round(float(aa[i]), 4)}
            for i in picked]


def summarize(tl: Timeline, *, duration_s: float | None = None, hold_s: float = HOLD_S,
              window_s: float = WINDOW_S, min_jump: float = MIN_JUMP,
              max_changes: int = MAX_CHANGES) -> dict:
    """A JSON-ready summary of a timeline.

    ``duration_s``: seconds of audio analysed (default: the last update's ``t``).
    """
    times = time_in_moods(tl)
    pos = mean_position(tl)
    sounding = {m: s for m, s in times.items() if m != SILENCE and s > 0}
    dominant = max(sounding, key=sounding.get) if sounding else (SILENCE if len(tl) else None)
    if duration_s is None:
        duration_s = float(tl.t[-1]) if len(tl) else 0.0
    return {
        "timeline": tl.name,
        "duration_s": round(float(duration_s), 3),
        "updates": len(tl),
        "mean_valence": None if pos is None else round(pos[0], 4),
        "mean_arousal": None if pos is None else round(pos[1], 4),
        "dominant_mood": dominant,
        "time_s": {m: round(s, 3) for m, s in times.items()},
        "segments": mood_segments(tl, hold_s=hold_s),
        "changes": mood_changes(tl, window_s=window_s, min_jump=min_jump,
                                max_changes=max_changes),
    }


def change_label(v_before: float, a_before: float, v_after: float, a_after: float) -> str:
    """``"calm->tense"`` across quadrants; within one, the mood and the larger move:
    e.g. ``"melancholic, calmer"`` or ``"uplifting, more positive"``."""
    before = MOODS[quadrant_of(v_before, a_before)]
    after = MOODS[quadrant_of(v_after, a_after)]
    if before != after:
        return f"{before}->{after}"
    dv, da = v_after - v_before, a_after - a_before
    if abs(da) >= abs(dv):
        return f"{before}, {'more energetic' if da > 0 else 'calmer'}"
    return f"{before}, {'more positive' if dv > 0 else 'more negative'}"


def describe_change(change: dict) -> str:
    """e.g. ``"1:32 calm->tense (0.84)"``."""
    return f"{format_time(change['t'])} {change['label']} ({change['jump']:.2f})"


def summary_row(summary: dict | None, *, file: str, error: str | None = None) -> dict:
    """One ``summary.csv`` row (:data:`SUMMARY_COLUMNS`); a failed file has only ``error``."""
    row = dict.fromkeys(SUMMARY_COLUMNS, "")
    row["file"] = file
    row["error"] = error or ""
    if summary is None:
        return row
    row.update({k: summary[k] for k in ("timeline", "duration_s", "updates", "mean_valence",
                                        "mean_arousal", "dominant_mood")})
    row["warning"] = summary.get("warning") or ""
    row.update({f"{m}_s": s for m, s in summary["time_s"].items()})
    row["mood_changes"] = max(len(summary["segments"]) - 1, 0)
    changes = summary["changes"]
    if changes:
        row.update(strongest_change_t=changes[0]["t"],
                   strongest_change=changes[0]["label"],
                   strongest_change_jump=changes[0]["jump"])
        row["changes"] = "; ".join(describe_change(c) for c in changes)
    for group in TAG_GROUPS:
        row[group] = format_tags(summary.get(group) or [])
    return {k: "" if v is None else v for k, v in row.items()}
