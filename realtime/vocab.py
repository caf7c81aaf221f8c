"""Tag vocabularies: the embedding network's teacher tags grouped into instruments.

The network gives the probabilities of musicnn's 50 MSD and 50 MTT tags (names
``msd:<tag>`` / ``mtt:<tag>``, see ``models/MODEL.md``). An instrument's score is the
largest probability among the tags that name it. Genres come from a head trained on
AllMusic genres (``models/tags.onnx``), not from here.
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


class InstrumentMap:
    """Instrument scores from tag probabilities: ``(n, n_tags) -> (n, n_instruments)``."""

    def __init__(self, tag_names: Sequence[str]):
        index = {n: i for i, n in enumerate(tag_names)}
        self.names = tuple(k for k, tags in INSTRUMENTS.items() if any(t in index for t in tags))
        self._cols = [[index[t] for t in INSTRUMENTS[k] if t in index] for k in self.names]

    def __call__(self, tags: np.ndarray) -> np.ndarray:
        tags = np.atleast_2d(tags)
        if not self._cols:
            return np.zeros((tags.shape[0], 0), np.float32)
        return np.stack([tags[:, c].max(axis=1) for c in self._cols], axis=1).astype(np.float32)
