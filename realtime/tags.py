"""Tags (instruments, genres) with scores: their per-update form, about once a second, and per file.

A model stage may give, per update, tag scores in groups (``{"instruments": (names,
scores), "genres": (names, scores)}``, scores in [0, 1], rows of NaN where it did not run).
:class:`TagWindow` turns them into the ``tags`` of a :class:`~realtime.mood.MoodUpdate`
about once per :data:`TAGS_INTERVAL_S` seconds of audio: per group, every tag with the mean
of its scores since the previous tags, as ``[name, score]`` pairs sorted by score (highest
first). :func:`top_k` cuts them for the ZeroMQ ``tags`` topic; :func:`clip_tags` gives a
file's clip-level tags (the mean score of each tag over the file's tag updates) for
``summary.json``, :func:`format_tags` the ``summary.csv`` text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

#: Seconds of audio between two updates that carry tags.
TAGS_INTERVAL_S = 1.0
#: The tag groups the outputs name (a model may give either or both).
TAG_GROUPS = ("instruments", "genres")
#: Tags per group on the ZeroMQ ``tags`` topic.
TOP_K = 5
#: Tags per group in ``summary.csv``.
SUMMARY_TOP = 3

#: Per group: the tag names and their scores, (n_updates, n_tags).
TagScores = Mapping[str, tuple[Sequence[str], np.ndarray]]


def _ranked(names: Sequence[str], scores: np.ndarray) -> list[list]:
    order = np.argsort(-scores, kind="stable")
    return [[str(names[i]), round(v, 4)] for i, v in zip(order.tolist(), scores[order].tolist())]


class TagWindow:
    """Collects per-update tag scores; :meth:`add` returns the update's ``tags`` (or None).

    ``interval_s``: seconds of audio between two tag results (the first comes with the
    first update that has scores).
    """

    def __init__(self, *, interval_s: float = TAGS_INTERVAL_S):
        self.interval_s = float(interval_s)
        self._sums: dict[str, np.ndarray] = {}
        self._counts: dict[str, np.ndarray] = {}
        self._names: dict[str, tuple[str, ...]] = {}
        self._given: dict[str, Sequence[str]] = {}
        self._last_t: float | None = None

    def add(self, t: float, scores: Mapping[str, tuple[Sequence[str], np.ndarray]] | None
            ) -> dict | None:
        """Add one update's scores (``{group: (names, scores (n_tags,))}`` or None) at
        ``t`` seconds; the tags to publish with this update, or None."""
        for group, (names, row) in (scores or {}).items():
            row = np.asarray(row, np.float64).reshape(-1)
            if names is not self._given.get(group):  # (the model passes the same tuple)
                self._given[group] = names
                names = tuple(str(n) for n in names)
                if self._names.get(group) != names:  # new vocabulary: start afresh
                    self._names[group] = names
                    self._sums[group] = np.zeros(len(names))
                    self._counts[group] = np.zeros(len(names))
            ok = np.isfinite(row)
            self._sums[group][ok] += row[ok]
            self._counts[group][ok] += 1
        if not any(c.any() for c in self._counts.values()):
            return None
        if self._last_t is not None and t - self._last_t < self.interval_s - 1e-9:
            return None
        self._last_t = t
        out = {}
        for group, names in self._names.items():
            counts = self._counts[group]
            if counts.any():
                keep = counts > 0
                means = self._sums[group][keep] / counts[keep]
                out[group] = _ranked([n for n, k in zip(names, keep) if k], means)
            self._sums[group][:] = 0.0
            counts[:] = 0.0
        return out


def top_k(tags: Mapping[str, list] | None, k: int = TOP_K) -> dict[str, list]:
    """Each group's first ``k`` ``[name, score]`` pairs (every group of :data:`TAG_GROUPS`
    present, empty when the tags lack it)."""
    tags = tags or {}
    return {g: [list(p) for p in tags.get(g, [])[:k]] for g in TAG_GROUPS}


def clip_tags(tag_updates: Iterable[Mapping[str, list] | None]) -> dict[str, list[dict]]:
    """Clip-level tags of a file: per group, ``[{"tag": name, "score": s}, ...]`` with the
    mean score of each tag over the updates that carry tags, sorted by score (empty lists
    when none does)."""
    sums: dict[str, dict[str, float]] = {g: {} for g in TAG_GROUPS}
    counts: dict[str, dict[str, int]] = {g: {} for g in TAG_GROUPS}
    for tags in tag_updates:
        for g in TAG_GROUPS:
            for name, score in (tags or {}).get(g, []):
                sums[g][name] = sums[g].get(name, 0.0) + float(score)
                counts[g][name] = counts[g].get(name, 0) + 1
    out = {}
    for g in TAG_GROUPS:
        names = list(sums[g])
        means = np.array([sums[g][n] / counts[g][n] for n in names])
        out[g] = [{"tag": n, "score": s} for n, s in _ranked(names, means)] if names else []
    return out


def format_tags(tags: list[dict], n: int = SUMMARY_TOP) -> str:
    """e.g. ``"piano 0.91; strings 0.55; choir 0.20"``: the first ``n`` clip-level tags."""
    return "; ".join(f"{d['tag']} {d['score']:.2f}" for d in tags[:n])
