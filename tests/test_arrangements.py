"""tools/arrangements.py: VGMIDI-style piano pieces re-arranged for General MIDI instruments,
with labels that name exactly what plays (rendering itself needs fluidsynth: see tools/)."""

from __future__ import annotations

import numpy as np
import pretty_midi
import pytest

from tools.arrangements import EXCERPT_S, FAMILIES, INSTRUMENTS, MIN_NOTES, _split_roles, arrange


@pytest.fixture(scope="module")
def piano_piece(tmp_path_factory):
    """60 s of piano: a bass note, an inner chord and a melody note every half second."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    piano = pretty_midi.Instrument(program=0)
    rng = np.random.default_rng(3)
    for k in range(120):
        t = 0.5 * k
        for pitch in (40 + k % 5, 55, 59, 67 + rng.integers(0, 8)):
            piano.notes.append(pretty_midi.Note(velocity=80, pitch=int(pitch), start=t, end=t + 0.45))
    pm.instruments.append(piano)
    path = tmp_path_factory.mktemp("midi") / "piece.mid"
    pm.write(str(path))
    return path


def test_roles_split_by_register():
    notes = [pretty_midi.Note(velocity=80, pitch=p, start=0.0, end=0.4) for p in (40, 55, 59, 70)]
    notes += [pretty_midi.Note(velocity=80, pitch=72, start=0.5, end=0.9)]  # a lone high note: melody
    melody, accomp, bass = _split_roles(notes)
    assert [n.pitch for n in melody] == [70, 72]
    assert [n.pitch for n in bass] == [40]
    assert sorted(n.pitch for n in accomp) == [55, 59]


def test_arrangements_label_what_plays(piano_piece):
    seen = set()
    for seed in range(40):
        pm, families, programs = arrange(piano_piece, seed)
        assert set(families) <= set(INSTRUMENTS) and families == sorted(set(families))
        assert len(programs) == len(pm.instruments)
        played = set()
        for inst in pm.instruments:
            assert len(inst.notes) >= MIN_NOTES  # every label is audible
            assert max(n.start for n in inst.notes) < EXCERPT_S and min(n.start for n in inst.notes) >= 0
            if inst.is_drum:
                played.add("drums")
                continue
            family = inst.name
            assert inst.program in FAMILIES[family]
            if family == "bass":
                assert all(28 <= n.pitch <= 52 for n in inst.notes)  # played in a bass's range
            played.add(family)
        assert played == set(families)
        seen |= played
    assert {"piano", "bass", "drums", "brass"} <= seen  # the arrangements cover the vocabulary


def test_arrangements_are_seeded(piano_piece):
    a, b = arrange(piano_piece, 7), arrange(piano_piece, 7)
    assert a[1:] == b[1:]
    assert [[(n.pitch, n.start) for n in i.notes] for i in a[0].instruments] == \
           [[(n.pitch, n.start) for n in i.notes] for i in b[0].instruments]
