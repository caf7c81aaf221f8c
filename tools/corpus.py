"""The audio the embedding network is distilled on, and its teachers' targets.

Sources (none of it is committed; all of it lands under ``cache/distill/``):

- ``4q``: the 707 4Q clips (group: artist);
- ``vgmidi``: the VGMIDI pieces rendered by ``tools/render_vgmidi.py`` through one
  soundfont per piece (round robin over the rendered soundfonts; group: piece);
- ``games``: the game soundtracks in Debian main (``wesnoth-1.16-music``,
  ``warzone2100-music``; orchestral and electronic music with no labels; at most
  ``--max-seconds`` of each track).

Each source is decoded once to 16 kHz mono (int16 ``.npy``). The teachers (musicnn's
MSD and MTT networks converted by ``tools/convert_musicnn.py``) see the same causal,
level-normalised log-mel patches the runtime computes (:mod:`realtime.embedding`), on
the clean audio, at ``TEACHER_HOP`` frames: their penultimate layer and tag
probabilities are the student's targets (MTT's penultimate layer is stored beside them).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: small matrices, busy cores

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
SR = 16000
PATCH = 187  # frames (2.99 s), as musicnn
TEACHER_HOP = 187  # frames between teacher patches (2.99 s: back to back)
VGMIDI_FONTS = ("fluidr3", "musescore", "timgm")  # one per piece, round robin
GAME_DIRS = ("/usr/share/games/wesnoth", "/usr/share/games/warzone2100")


@dataclass(frozen=True)
class Item:
    source: str
    group: str
    key: str
    path: str

    @property
    def name(self) -> str:
        return f"{self.source}_{hashlib.sha1(self.key.encode()).hexdigest()[:12]}"


def items(data: Path, cache: Path) -> list[Item]:
    import pandas as pd

    out = []
    df = pd.read_csv(Path(data) / "4q" / "labels.csv")
    for r in df.itertuples(index=False):
        out.append(Item("4q", str(r.artist), r.song, str(Path(data) / "4q" / "audio" / f"{r.song}.ogg")))
    from tools.render_vgmidi import rendered_path

    ann = json.loads((Path(data) / "vgmidi" / "annotations.json").read_text())
    for i, pid in enumerate(sorted(ann)):
        sf_name = VGMIDI_FONTS[i % len(VGMIDI_FONTS)]
        p = rendered_path(cache, sf_name, pid)
        if p.is_file():  # else not rendered yet: a later run adds it
            out.append(Item("vgmidi", pid, f"{pid}|{sf_name}", str(p)))
    for d in GAME_DIRS:
        for p in sorted(Path(d).rglob("*")):
            if p.suffix in (".ogg", ".opus") and "music" in str(p):
                out.append(Item("games", p.stem, str(p), str(p)))
    return out


def ffmpeg_16k(path: str) -> np.ndarray:
    """Any file ffmpeg reads (raw G.722 by its ``.g722`` name), as 16 kHz mono float32."""
    import subprocess

    fmt = ["-f", "g722"] if path.endswith(".g722") else []  # raw G.722 has no header
    raw = subprocess.run(["ffmpeg", "-v", "quiet", *fmt, "-i", path, "-ac", "1", "-ar", str(SR),
                          "-f", "f32le", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.float32).copy()


def load_16k(path: str, max_seconds: float | None = None) -> np.ndarray:
    import soundfile as sf
    import soxr

    if path.endswith((".opus", ".g722")):  # what libsndfile does not read
        y = ffmpeg_16k(path)
    else:
        y, sr = sf.read(path, dtype="float32", always_2d=True)
        y = y.mean(axis=1)
        if sr != SR:
            y = soxr.resample(y, sr, SR).astype(np.float32)
    if max_seconds:
        y = y[: int(max_seconds * SR)]
    return y


def teacher_patches(y: np.ndarray, hop: int = TEACHER_HOP) -> tuple[np.ndarray, np.ndarray]:
    """(ends, patches) of the runtime front end's log-mel over ``y``: a patch every ``hop``
    frames, the first full one ending at frame PATCH."""
    from realtime.embedding import LogMelFrontEnd, patch_stack

    logmel, _ = LogMelFrontEnd().process(y)
    ends = np.arange(PATCH, logmel.shape[0] + 1, hop)
    return ends, patch_stack(logmel, ends, PATCH)


class Teachers:
    def __init__(self, folder: Path):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.msd = ort.InferenceSession(str(folder / "msd_musicnn.onnx"), opts, providers=["CPUExecutionProvider"])
        self.mtt = ort.InferenceSession(str(folder / "mtt_musicnn.onnx"), opts, providers=["CPUExecutionProvider"])
        def labels(session, prefix):
            return [f"{prefix}:{t}" for t in session.get_modelmeta().custom_metadata_map["labels"].split(",")]

        self.labels = labels(self.msd, "msd") + labels(self.mtt, "mtt")

    def __call__(self, patches: np.ndarray) -> dict[str, np.ndarray]:
        out = {"msd_pen": [], "mtt_pen": [], "tags": []}
        for i in range(0, len(patches), 32):
            x = patches[i:i + 32]
            mt, mp = self.msd.run(["tags:0", "penultimate:0"], {"melspec:0": x})
            tt, tp = self.mtt.run(["tags:0", "penultimate:0"], {"melspec:0": x})
            out["msd_pen"].append(mp)
            out["mtt_pen"].append(tp)
            out["tags"].append(np.hstack([mt, tt]))
        return {k: np.concatenate(v).astype(np.float32) if v else np.zeros((0, 100 if k == "tags" else 200), np.float32)
                for k, v in out.items()}


def prepare_one(args) -> str:
    item, cache, teacher_dir, max_seconds = args
    audio_f = Path(cache) / "distill" / "audio" / f"{item.name}.npy"
    tgt_f = Path(cache) / "distill" / "teacher" / f"{item.name}.npz"
    if tgt_f.is_file() and audio_f.is_file():
        return item.name
    y = load_16k(item.path, None if item.source == "4q" else max_seconds[item.source])
    audio_f.parent.mkdir(parents=True, exist_ok=True)
    tgt_f.parent.mkdir(parents=True, exist_ok=True)
    np.save(audio_f, np.round(np.clip(y, -1, 1) * 32767).astype(np.int16))
    y = np.load(audio_f).astype(np.float32) / 32767.0  # the stored audio, exactly
    ends, patches = teacher_patches(y)
    t = _TEACHERS(patches) if len(ends) else {"msd_pen": np.zeros((0, 200), np.float32),
                                              "mtt_pen": np.zeros((0, 200), np.float32),
                                              "tags": np.zeros((0, 100), np.float32)}
    tmp = tgt_f.with_suffix(".tmp.npz")
    np.savez(tmp, ends=ends, **t)
    tmp.replace(tgt_f)
    return item.name


_TEACHERS = None


def _init(teacher_dir):
    global _TEACHERS
    _TEACHERS = Teachers(Path(teacher_dir))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--cache", type=Path, default=ROOT / "cache")
    ap.add_argument("--teachers", type=Path, default=None, help="default: CACHE/teacher")
    ap.add_argument("--max-seconds", default="vgmidi=60,games=45",
                    help="seconds of each item used, per source (4Q clips whole)")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)
    teacher_dir = args.teachers or args.cache / "teacher"
    max_seconds = {k: float(v) for k, v in (kv.split("=") for kv in args.max_seconds.split(","))}
    its = items(args.data, args.cache)
    (args.cache / "distill").mkdir(parents=True, exist_ok=True)
    (args.cache / "distill" / "items.json").write_text(json.dumps([it.__dict__ | {"name": it.name} for it in its]))
    print(f"{len(its)} items", file=sys.stderr)
    from multiprocessing import get_context

    with get_context("spawn").Pool(args.jobs, initializer=_init, initargs=(str(teacher_dir),)) as pool:
        for i, _ in enumerate(pool.imap_unordered(prepare_one, [(it, args.cache, teacher_dir, max_seconds) for it in its], chunksize=4)):
            if (i + 1) % 50 == 0:
                print(f"prepared {i + 1}/{len(its)}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
