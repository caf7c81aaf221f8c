"""Tag vocabularies: instruments and genres from the tag head and the teacher tags.

The network gives the probabilities of musicnn's 50 MSD and 50 MTT tags (names
``msd:<tag>`` / ``mtt:<tag>``, see ``models/MODEL.md``). The tag head
(``models/tags.onnx``) gives AllMusic genres and the instruments it was trained on.

- :class:`InstrumentMap`: an instrument the head gives is the head's score; any other is
  the largest probability among the teacher tags that name it (:data:`INSTRUMENTS`),
  through the tag head's calibration to a presence probability where it has one.
- :class:`GenreMap`: the head's AllMusic genres, where a genre AllMusic does not tell
  apart (:data:`DERIVED_GENRES`: pop and rock within ``pop/rock``, ambient within
  electronic and new age) is split by the teacher: its score is the parent's times the
  share ``side / max(side, other side)`` of the teacher tags on its side, so the likelier
  side keeps the parent's score.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: instrument -> the teacher tags that name it.
INSTRUMENTS: dict[str, tuple[str, ...]] = {
    "piano": ("mtt:piano",),
    "strings": ("mtt:strings", "mtt:violin", "mtt:cello"),
    "guitar": ("mtt:guitar", "msd:guitar"),
    "drums": ("mtt:drums", "mtt:beat", "mtt:beats"),
    "synth": ("mtt:synth", "mtt:techno"),
    "vocals": ("mtt:vocal", "mtt:vocals", "mtt:singing", "mtt:voice", "mtt:female vocal",
               "mtt:male vocal", "msd:female vocalists", "msd:male vocalists"),
    "choir": ("mtt:choir", "mtt:choral"),
    "woodwinds": ("mtt:flute",),
    "harp": ("mtt:harp",),
    "harpsichord": ("mtt:harpsichord",),
    "sitar": ("mtt:sitar",),
}


_POP = ("msd:pop", "msd:indie pop", "mtt:pop")
_ROCK = ("msd:rock", "msd:alternative rock", "msd:classic rock", "msd:hard rock", "msd:indie rock",
         "msd:punk", "msd:metal", "msd:heavy metal", "mtt:rock", "mtt:metal")
#: derived genre -> (parent genres, teacher tags on its side, teacher tags on the other side).
#: A genre derived from a single parent replaces it in the list (pop and rock for pop/rock).
DERIVED_GENRES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "pop": (("pop/rock",), _POP, _ROCK),
    "rock": (("pop/rock",), _ROCK, _POP),
    "ambient": (("electronic", "new age"), ("msd:ambient", "msd:chillout", "mtt:ambient"),
                ("msd:dance", "msd:House", "msd:electro", "mtt:techno", "mtt:dance", "mtt:beat")),
}


def _columns(index: dict[str, int], names: Sequence[str]) -> list[int]:
    return [index[n] for n in names if n in index]


class InstrumentMap:
    """Instrument scores ``(n, n_instruments)`` from tag probabilities ``(n, n_tags)`` and
    the head's instrument scores ``(n, len(head_names))``: the head's where it gives one.

    ``calibration``: ``{instrument: (a, b)}`` turns a teacher-tag score *t* into a presence
    probability ``sigmoid(a * logit(t) + b)`` (fitted where instruments are labelled, so
    that it is on the head's scale); instruments without one keep the tag probability.
    """

    def __init__(self, tag_names: Sequence[str], head_names: Sequence[str] = (),
                 calibration: dict[str, Sequence[float]] | None = None):
        index = {n: i for i, n in enumerate(tag_names)}
        self.calibration = {k: (float(a), float(b)) for k, (a, b) in (calibration or {}).items()}
        self.head_names = tuple(head_names)
        teacher = [k for k, tags in INSTRUMENTS.items() if k not in self.head_names and _columns(index, tags)]
        self.names = tuple(dict.fromkeys(k for k in (*INSTRUMENTS, *self.head_names)
                                         if k in teacher or k in self.head_names))
        self._source = [("head", self.head_names.index(k)) if k in self.head_names
                        else ("tags", _columns(index, INSTRUMENTS[k])) for k in self.names]

    def __call__(self, tags: np.ndarray, head: np.ndarray | None = None) -> np.ndarray:
        tags = np.atleast_2d(tags)
        if head is None and self.head_names:
            head = np.full((tags.shape[0], len(self.head_names)), np.nan, np.float32)
        cols = [head[:, c] if kind == "head" else self._teacher(name, tags[:, c].max(axis=1))
                for name, (kind, c) in zip(self.names, self._source)]
        if not cols:
            return np.zeros((tags.shape[0], 0), np.float32)
        return np.stack(cols, axis=1).astype(np.float32)

    def _teacher(self, name: str, t: np.ndarray) -> np.ndarray:
        if name not in self.calibration:
            return t
        a, b = self.calibration[name]
        t = np.clip(t.astype(np.float64), 1e-6, 1 - 1e-6)
        return 1.0 / (1.0 + np.exp(-(a * np.log(t / (1 - t)) + b)))


class GenreMap:
    """Genre scores ``(n, n_genres)`` from the head's AllMusic genres ``(n, len(head_names))``
    and the tag probabilities ``(n, n_tags)``; a parent that is split (``pop/rock``) is
    replaced by its derived genres, a derived genre without its parents is left out."""

    def __init__(self, head_names: Sequence[str], tag_names: Sequence[str]):
        head_names = tuple(head_names)
        index = {n: i for i, n in enumerate(tag_names)}
        derived = {g: ([head_names.index(p) for p in parents if p in head_names],
                       _columns(index, side), _columns(index, other))
                   for g, (parents, side, other) in DERIVED_GENRES.items()}
        derived = {g: d for g, d in derived.items() if d[0] and d[1]}
        split = {parents[0] for g, (parents, _, _) in DERIVED_GENRES.items() if g in derived and len(parents) == 1}
        names, plan = [], []
        for j, g in enumerate(head_names):  # each derived genre right after (or in place of) its first parent
            if g not in split:
                names.append(g); plan.append(j)
            for d in derived:
                if DERIVED_GENRES[d][0][0] == g:
                    names.append(d); plan.append(d)
        self.names, self._plan, self._derived = tuple(names), plan, derived

    def __call__(self, head: np.ndarray, tags: np.ndarray) -> np.ndarray:
        head, tags = np.atleast_2d(head), np.atleast_2d(tags)
        out = []
        for step in self._plan:
            if isinstance(step, int):
                out.append(head[:, step])
                continue
            parents, side, other = self._derived[step]
            s = tags[:, side].max(axis=1)
            o = tags[:, other].max(axis=1) if other else np.zeros_like(s)
            out.append(head[:, parents].max(axis=1) * s / np.maximum(np.maximum(s, o), 1e-6))
        return np.stack(out, axis=1).astype(np.float32)
