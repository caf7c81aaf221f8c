"""Render the VGMIDI MIDI files to 22.05 kHz mono audio with fluidsynth, into the cache.

    python tools/render_vgmidi.py --data ../shared/data [--soundfonts fluidr3,timgm]

Each soundfont is a separate rendering (an honest augmentation: same notes, other
piano samples). Files already rendered are skipped. Output: ``cache/vgmidi_audio/<sf>/<key>.flac``
(16-bit mono), where ``<key>`` is :func:`piece_key` of the piece id. Nothing here is committed.

fluidsynth keeps rendering the release tail after the last note; the listeners heard
``duration_s`` seconds, and targets are mapped by time (see ``tools/datasets.py``), so
the tail simply gets no target.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = ROOT / "cache"
SAMPLE_RATE = 22050

#: Known soundfonts: short name -> candidate paths (first that exists wins).
SOUNDFONTS: dict[str, tuple[str, ...]] = {
    "fluidr3": ("/usr/share/sounds/sf2/FluidR3_GM.sf2",),
    "timgm": ("/usr/share/sounds/sf2/TimGM6mb.sf2",),
    "musescore": ("/usr/share/sounds/sf3/MuseScore_General_Lite.sf3",),  # musescore-general-soundfont-small
}


def soundfont_path(name: str) -> Path:
    for p in SOUNDFONTS.get(name, (name,)):
        if Path(p).is_file():
            return Path(p)
    raise FileNotFoundError(f"soundfont {name!r} not found (tried {SOUNDFONTS.get(name, (name,))})")


def piece_key(piece_id: str) -> str:
    """A file-system safe, unique name for a piece id."""
    safe = re.sub(r"[^A-Za-z0-9]+", "_", piece_id)[:60]
    return f"{safe}_{hashlib.sha1(piece_id.encode()).hexdigest()[:8]}"


def rendered_path(cache: Path, sf_name: str, piece_id: str) -> Path:
    return Path(cache) / "vgmidi_audio" / sf_name / f"{piece_key(piece_id)}.flac"


def render_one(midi: Path, out: Path, sf_path: Path, *, gain: float = 0.7) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "out.wav"
        subprocess.run(["fluidsynth", "-ni", "-q", "-g", str(gain), "-r", str(SAMPLE_RATE),
                        "-T", "wav", "-F", str(wav), str(sf_path), str(midi)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        y, sr = sf.read(wav, dtype="float32", always_2d=True)
    if sr != SAMPLE_RATE:
        raise RuntimeError(f"fluidsynth wrote {sr} Hz for {midi}")
    y = y.mean(axis=1)
    tmp_out = out.with_suffix(".tmp.flac")
    sf.write(tmp_out, np.clip(y, -1, 1), SAMPLE_RATE, subtype="PCM_16")
    tmp_out.replace(out)


def render_all(data: Path, cache: Path, soundfonts: list[str], *, verbose: bool = True) -> None:
    root = Path(data) / "vgmidi"
    ann = json.loads((root / "annotations.json").read_text())
    for sf_name in soundfonts:
        sf_path = soundfont_path(sf_name)
        done = 0
        for pid, info in ann.items():
            out = rendered_path(cache, sf_name, pid)
            if out.is_file():
                continue
            render_one(root / info["midi"], out, sf_path)
            done += 1
            if verbose and done % 20 == 0:
                print(f"[{sf_name}] rendered {done}", file=sys.stderr, flush=True)
        if verbose:
            print(f"[{sf_name}] done ({done} new)", file=sys.stderr, flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--soundfonts", default="fluidr3,timgm,musescore")
    args = ap.parse_args(argv)
    render_all(args.data, args.cache, [s for s in args.soundfonts.split(",") if s])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
