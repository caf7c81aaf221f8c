"""Instrument training data: the VGMIDI pieces re-arranged for General MIDI instruments and
rendered with fluidsynth, each excerpt labelled with the instrument families that play in it.

    python -m tools.arrangements --data ../shared/data [--per-piece 4] [--jobs 2]

VGMIDI is solo piano. For each piece and arrangement *k* (seeded by piece and *k*) a 30-s
excerpt is cut, its notes are split into roles per onset (the highest note at or above
middle C: melody; the lowest below G3: bass line; the rest: accompaniment), and each role
is given an instrument family from :data:`FAMILIES` (a random General MIDI program of it);
a bass line is played by a bass (an octave down into its range) or stays with the
accompaniment, and a drum part following the piece's beats may be added on channel 10.
A quarter of the arrangements give every note to one instrument (solo piano among
them: a piano's left hand is not a bass). Roles with fewer than :data:`MIN_NOTES` notes
in the excerpt are left out, so that every label is audible.

Every arrangement is rendered through each soundfont (``tools/render_vgmidi.py``) into
``cache/arrangements/<soundfont>/<key>.flac``; ``cache/arrangements/labels.json`` keeps
``{key: {"piece": id, "instruments": [...], "programs": [...]}}``. Nothing here is committed.
"""

from __future__ import annotations

import argparse
import warnings
import json
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from realtime.outputs import atomic_write  # noqa: E402
from tools.render_vgmidi import piece_key, soundfont_path  # noqa: E402

#: Instrument family -> General MIDI programs (0-based) that play it.
FAMILIES: dict[str, tuple[int, ...]] = {
    "piano": (0, 1, 2, 3),
    "strings": (40, 41, 42, 44, 45, 48, 49),
    "guitar": (24, 25, 26, 27, 28, 29, 30),
    "synth": (80, 81, 82, 87, 88, 89, 90, 91, 94, 95),
    "brass": (56, 57, 58, 59, 60, 61),
    "woodwinds": (64, 65, 66, 68, 69, 70, 71, 72, 73, 74, 75),
    "choir": (52, 53),
    "bass": (32, 33, 34, 35, 36, 37, 38, 39),
}
#: The families the arrangements label, drums included (played on channel 10).
INSTRUMENTS = (*FAMILIES, "drums")
MELODY = ("piano", "strings", "guitar", "synth", "brass", "woodwinds", "choir")
ACCOMPANIMENT = ("piano", "strings", "guitar", "synth", "brass", "choir")
DRUM_KITS = (0, 8, 16, 24, 25, 32, 40)  # standard, room, power, electronic, TR-808, jazz, brush
EXCERPT_S = 30.0
MIN_NOTES = 8
ONSET_S = 0.04  # notes starting within this are one onset
SLOT_S = 32.0  # seconds per excerpt in a rendering playlist (the excerpt and its release tail)
BATCH = 24  # excerpts per fluidsynth run


def _split_roles(notes):
    """Notes (sorted by start) -> (melody, accompaniment, bass) lists."""
    melody, accomp, bass = [], [], []
    i = 0
    while i < len(notes):
        j = i
        while j < len(notes) and notes[j].start - notes[i].start <= ONSET_S:
            j += 1
        group = sorted(notes[i:j], key=lambda n: n.pitch)
        if len(group) > 1 and group[-1].pitch >= 60:
            melody.append(group.pop())
        elif len(group) == 1 and group[0].pitch >= 64:
            melody.append(group.pop())
        if group and group[0].pitch < 55:
            bass.append(group.pop(0))
        accomp.extend(group)
        i = j
    return melody, accomp, bass


def arrange(midi_path: Path, seed: int):
    """(PrettyMIDI of one 30-s excerpt, instrument families, programs), seeded."""
    import pretty_midi

    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():  # some VGMIDI files keep tempo events on other tracks
        warnings.simplefilter("ignore", RuntimeWarning)
        src = pretty_midi.PrettyMIDI(str(midi_path))
    notes = sorted((n for inst in src.instruments if not inst.is_drum for n in inst.notes),
                   key=lambda n: (n.start, n.pitch))
    end = max((n.end for n in notes), default=0.0)
    t0 = float(rng.uniform(0.0, max(0.0, end - EXCERPT_S)))
    notes = [pretty_midi.Note(velocity=n.velocity, pitch=n.pitch, start=n.start - t0,
                              end=min(n.end, t0 + EXCERPT_S) - t0)
             for n in notes if t0 <= n.start < t0 + EXCERPT_S - 0.1]
    velocity_scale = float(rng.uniform(0.75, 1.1))

    parts: list[tuple[str, int, list]] = []
    if rng.random() < 0.25:  # one instrument plays everything
        family = "piano" if rng.random() < 0.4 else str(rng.choice(MELODY))
        parts.append((family, int(rng.choice(FAMILIES[family])), notes))
    else:
        melody, accomp, bass = _split_roles(notes)
        if rng.random() >= 0.6:  # no bass player: the low notes stay in the accompaniment
            accomp, bass = sorted(accomp + bass, key=lambda n: n.start), []
        mel_family = str(rng.choice(MELODY))
        parts.append((mel_family, int(rng.choice(FAMILIES[mel_family])), melody))
        if rng.random() >= 0.2:
            acc_family = str(rng.choice(ACCOMPANIMENT))
            parts.append((acc_family, int(rng.choice(FAMILIES[acc_family])), accomp))
        if bass:
            for n in bass:
                while n.pitch > 52:
                    n.pitch -= 12
                while n.pitch < 28:
                    n.pitch += 12
            parts.append(("bass", int(rng.choice(FAMILIES["bass"])), bass))

    out = pretty_midi.PrettyMIDI(initial_tempo=float(src.get_tempo_changes()[1][0]) if
                                 len(src.get_tempo_changes()[1]) else 120.0)
    families, programs = set(), []
    for family, program, part in parts:
        if len(part) < MIN_NOTES:
            continue
        inst = pretty_midi.Instrument(program=program, name=family)
        for n in part:
            inst.notes.append(pretty_midi.Note(velocity=int(np.clip(n.velocity * velocity_scale, 20, 127)),
                                               pitch=int(n.pitch), start=n.start, end=max(n.end, n.start + 0.05)))
        out.instruments.append(inst)
        families.add(family)
        programs.append(program)
    if not families:  # too few notes for any part: all of them to one piano
        inst = pretty_midi.Instrument(program=0, name="piano")
        inst.notes.extend(notes)
        out.instruments.append(inst)
        families, programs = {"piano"}, [0]
    if rng.random() < 0.5:
        beats = [b - t0 for b in src.get_beats() if t0 <= b < t0 + EXCERPT_S]
        drums = _drum_part(beats, rng)
        if len(drums.notes) >= MIN_NOTES:
            drums.program = int(rng.choice(DRUM_KITS))
            out.instruments.append(drums)
            families.add("drums")
            programs.append(128 + drums.program)
    return out, sorted(families), programs


def _drum_part(beats, rng):
    """A kick/snare/hi-hat groove on the given beat times (s), with some variation."""
    import pretty_midi

    inst = pretty_midi.Instrument(program=0, is_drum=True, name="drums")
    light = rng.random() < 0.3
    hat = 51 if rng.random() < 0.3 else 42  # ride or closed hi-hat
    for k, b in enumerate(beats):
        step = (beats[k + 1] - b) if k + 1 < len(beats) else (b - beats[k - 1] if k else 0.5)
        hits = [(36, 100)] if k % 2 == 0 else ([] if light else [(38, 95)])
        hits += [(hat, 70)]
        for pitch, vel in hits:
            inst.notes.append(pretty_midi.Note(velocity=int(vel * rng.uniform(0.8, 1.1)), pitch=pitch,
                                               start=b, end=b + 0.1))
        if not light and b + step / 2 < EXCERPT_S:  # (nothing past the excerpt's end)
            inst.notes.append(pretty_midi.Note(velocity=55, pitch=hat, start=b + step / 2, end=b + step / 2 + 0.1))
    return inst


def arrangement_key(piece_id: str, k: int) -> str:
    return f"{piece_key(piece_id)}_a{k}"


def arrangement_path(cache: Path, sf_name: str, key: str) -> Path:
    return Path(cache) / "arrangements" / sf_name / f"{key}.flac"


def _render_batch(batch, cache, soundfonts):
    """Arrange and render a batch of (midi, key, seed) through each soundfont: one fluidsynth
    run per soundfont plays the batch's excerpts as a playlist (each padded to SLOT_S
    seconds, so that excerpt *i* starts at *i* · SLOT_S), which is then cut apart."""
    import pretty_midi
    import soundfile as sf

    from tools.render_vgmidi import SAMPLE_RATE

    labels, mids = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (midi, key, seed) in enumerate(batch):
            pm, families, programs = arrange(Path(midi), seed)
            pm.instruments[0].control_changes.append(pretty_midi.ControlChange(91, 0, SLOT_S))
            mids.append(str(Path(tmp) / f"{i:03d}.mid"))
            pm.write(mids[-1])
            labels[key] = (families, programs)
        for sf_name in soundfonts:
            outs = [arrangement_path(cache, sf_name, key) for _, key, _ in batch]
            if all(o.is_file() for o in outs):
                continue
            wav = Path(tmp) / f"{sf_name}.wav"
            subprocess.run(["fluidsynth", "-ni", "-q", "-g", "0.7", "-r", str(SAMPLE_RATE), "-T", "wav",
                            "-F", str(wav), str(soundfont_path(sf_name)), *mids],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            y, sr = sf.read(wav, dtype="float32", always_2d=True)
            y = np.clip(y.mean(axis=1), -1, 1)
            for i, out in enumerate(outs):
                start = int(round(i * SLOT_S * sr))
                out.parent.mkdir(parents=True, exist_ok=True)
                part = out.with_suffix(".tmp.flac")
                sf.write(part, y[start:start + int(EXCERPT_S * sr)], sr, subtype="PCM_16")
                part.replace(out)
    return labels


def _render_task(task):
    return _render_batch(*task)


def render_arrangements(data: Path, cache: Path, *, per_piece: int = 4,
                        soundfonts=("fluidr3", "musescore", "timgm"), jobs: int = 2, log=print) -> dict:
    """Render every arrangement through every soundfont (files already there are kept)."""
    from multiprocessing import get_context

    from tools.datasets import load_vgmidi_annotations

    ann = load_vgmidi_annotations(data)
    items = [(str(Path(data) / "vgmidi" / info["midi"]), arrangement_key(pid, k),
              zlib.crc32(f"arrangement|{pid}|{k}".encode()))
             for pid, info in ann.items() for k in range(per_piece)]
    pieces = {arrangement_key(pid, k): pid for pid in ann for k in range(per_piece)}
    tasks = [(items[i:i + BATCH], Path(cache), tuple(soundfonts)) for i in range(0, len(items), BATCH)]
    labels = {}
    with get_context("spawn").Pool(jobs) as pool:
        for i, batch in enumerate(pool.imap_unordered(_render_task, tasks)):
            for key, (families, programs) in batch.items():
                labels[key] = {"piece": pieces[key], "instruments": families, "programs": programs}
            log(f"  arranged and rendered {len(labels)}/{len(items)}")
    path = Path(cache) / "arrangements" / "labels.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(dict(sorted(labels.items())), indent=0).encode())
    return labels


def main(argv=None) -> int:
    from tools.datasets import DEFAULT_CACHE, DEFAULT_DATA

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--per-piece", type=int, default=4)
    ap.add_argument("--soundfonts", default="fluidr3,musescore,timgm")
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args(argv)
    labels = render_arrangements(a.data, a.cache, per_piece=a.per_piece,
                                 soundfonts=[s for s in a.soundfonts.split(",") if s], jobs=a.jobs,
                                 log=lambda s: print(s, file=sys.stderr, flush=True))
    counts = {f: sum(f in v["instruments"] for v in labels.values()) for f in INSTRUMENTS}
    print(json.dumps({"arrangements": len(labels), "with": counts}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
