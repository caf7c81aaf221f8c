"""Datasets for the mood model: 4Q (static clip labels) and VGMIDI (per-measure curves).

Every clip goes through the runtime extractor (:func:`realtime.features.extract`) at the
runtime's update rate, so the training windows are exactly the ones the live pipeline
sees. Feature sequences are cached under ``cache/features/<FEATURE_VERSION>/`` (never
committed), keyed by dataset, variant (augmentation or soundfont) and clip.

Targets are valence/arousal in [-1, 1]:

- 4Q: the clip's tag-derived values mapped by (x - 5) / 4, and/or its quadrant (see
  :func:`q4_targets`), the same value for every window of the clip;
- VGMIDI: the listeners' mean curve (one value per measure; measure i covers
  [i, i+1) * duration_s / measures seconds) averaged over the last ``span_s`` seconds
  before each window's end; windows that end after ``duration_s`` get no target.
"""

from __future__ import annotations

import hashlib
import json
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from realtime.features import FEATURE_VERSION, extract

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = ROOT / "cache"
DEFAULT_DATA = ROOT.parent / "shared" / "data"
SAMPLE_RATE = 22050
UPDATE_HZ = 2.0  # the runtime's default update rate

QUADRANT_SIGNS = {"Q1": (1, 1), "Q2": (-1, 1), "Q3": (-1, -1), "Q4": (1, -1)}


# ----------------------------------------------------------------------------- containers
@dataclass
class Clip:
    """One feature sequence with its targets."""

    source: str  # "4q" or "vgmidi"
    group: str  # artist (4Q) or piece id (VGMIDI): the CV group
    key: str  # clip id (song or piece id)
    variant: str  # "orig", "aug1", or a soundfont name
    t: np.ndarray  # (n,) window end times, seconds
    X: np.ndarray  # (n, n_features) float32
    y: np.ndarray  # (n, 2) valence, arousal targets (NaN where none)
    meta: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------- labels
def load_4q_labels(data: Path):
    import pandas as pd

    df = pd.read_csv(Path(data) / "4q" / "labels.csv")
    df["v"] = (df["valence"] - 5.0) / 4.0
    df["a"] = (df["arousal"] - 5.0) / 4.0
    return df


def q4_targets(v_tag: float, a_tag: float, quadrant: str, mode: str = "tags") -> tuple[float, float]:
    """Training target of a 4Q clip.

    ``tags``: tag-derived values; ``quadrant``: +-0.5 by the annotated quadrant;
    ``blend``: the mean of the two (keeps the tag ordering, but on the quadrant's side).
    """
    sv, sa = QUADRANT_SIGNS[quadrant]
    if mode == "tags":
        return v_tag, a_tag
    if mode == "quadrant":
        return 0.5 * sv, 0.5 * sa
    if mode == "blend":
        return 0.5 * (v_tag + 0.5 * sv), 0.5 * (a_tag + 0.5 * sa)
    raise ValueError(f"unknown 4Q target mode {mode!r}")


def load_vgmidi_annotations(data: Path) -> dict[str, dict]:
    """piece id -> {midi, duration_s, measures, valence, arousal (listener-mean per measure), n}."""
    ann = json.loads((Path(data) / "vgmidi" / "annotations.json").read_text())
    out = {}
    for pid, info in ann.items():
        out[pid] = {"midi": info["midi"], "duration_s": float(info["duration_s"]),
                    "measures": int(info["measures"]), "name": info.get("name", pid),
                    **listener_mean(info["annotations"], int(info["measures"]))}
    return out


def listener_mean(annotations: list[dict], measures: int) -> dict:
    """Average listeners' per-measure curves (truncated/padded with NaN to ``measures``)."""
    res = {}
    for dim in ("valence", "arousal"):
        rows = np.full((len(annotations), measures), np.nan)
        for i, a in enumerate(annotations):
            vals = np.asarray(a[dim], dtype=float)[:measures]
            rows[i, :vals.size] = vals
        with np.errstate(all="ignore"):
            res[dim] = np.nanmean(rows, axis=0) if len(annotations) else np.full(measures, np.nan)
    res["n_listeners"] = len(annotations)
    return res


def measure_of(t: np.ndarray, duration_s: float, measures: int) -> np.ndarray:
    """Index of the measure playing at time ``t`` (-1 outside [0, duration_s))."""
    t = np.asarray(t, dtype=float)
    idx = np.floor(t * measures / duration_s).astype(int)
    return np.where((t >= 0) & (t < duration_s), np.clip(idx, 0, measures - 1), -1)


def curve_targets(t: np.ndarray, curve: np.ndarray, duration_s: float, *,
                  span_s: float = 2.0, n_points: int = 9) -> np.ndarray:
    """Mean of a per-measure ``curve`` over [t - span_s, t) for each window end ``t``.

    NaN for windows that end after ``duration_s`` (the rendering's release tail).
    """
    t = np.asarray(t, dtype=float)
    measures = len(curve)
    offs = np.linspace(-span_s, 0.0, n_points) if span_s > 0 else np.zeros(1)
    times = np.clip(t[:, None] + offs[None, :], 0.0, None)
    times = np.minimum(times, np.nextafter(duration_s, 0))
    idx = measure_of(times, duration_s, measures)
    vals = np.asarray(curve, dtype=float)[np.clip(idx, 0, measures - 1)]
    with np.errstate(all="ignore"):
        out = np.nanmean(np.where(idx >= 0, vals, np.nan), axis=1)
    out[t > duration_s + 1e-9] = np.nan
    return out


# ------------------------------------------------------------------------ augmentation
def seed_of(*parts: str) -> int:
    return zlib.crc32("|".join(parts).encode())


def augment(y: np.ndarray, seed: int, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Honest audio augmentation: gain, a gentle tilt EQ, and mild noise (seeded)."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    y = y.astype(np.float64)
    # Tilt EQ: blend of a one-pole low-pass and its complement (+-4 dB tilt around ~1 kHz).
    a = np.exp(-2 * np.pi * 1000.0 / sr)
    low = lfilter([1 - a], [1, -a], y)
    high = y - low
    tilt_db = rng.uniform(-4.0, 4.0)
    g = 10 ** (tilt_db / 40.0)
    y = low / g + high * g
    # Gain: -15 .. +3 dB (live input is rarely mastered to full scale).
    y = y * 10 ** (rng.uniform(-15.0, 3.0) / 20.0)
    # Noise 30..50 dB below the signal RMS.
    rms = np.sqrt(np.mean(y ** 2) + 1e-12)
    y = y + rng.standard_normal(y.size) * rms * 10 ** (-rng.uniform(30.0, 50.0) / 20.0)
    return np.clip(y, -1.0, 1.0).astype(np.float32)


# ------------------------------------------------------------------------ feature cache
def _cache_file(cache: Path, dataset: str, variant: str, key: str) -> Path:
    h = hashlib.sha1(key.encode()).hexdigest()[:12]
    return Path(cache) / "features" / FEATURE_VERSION / f"{dataset}_{variant}" / f"{h}.npz"


def cached_features(cache: Path, dataset: str, variant: str, key: str, load_audio) -> tuple:
    """(t, X, level_db) of one clip, computed once with the runtime extractor."""
    f = _cache_file(cache, dataset, variant, key)
    if f.is_file():
        z = np.load(f)
        return z["t"], z["X"], z["level"]
    y = load_audio()
    t, X, level = extract(y, sample_rate=SAMPLE_RATE, update_hz=UPDATE_HZ)
    f.parent.mkdir(parents=True, exist_ok=True)
    tmp = f.with_suffix(".tmp.npz")
    np.savez(tmp, t=t, X=X.astype(np.float32), level=level)
    tmp.replace(f)
    return t, X, level


def _read_mono(path: Path) -> np.ndarray:
    import soundfile as sf

    y, sr = sf.read(path, dtype="float32", always_2d=True)
    if sr != SAMPLE_RATE:
        import soxr

        y = soxr.resample(y, sr, SAMPLE_RATE)
    return y.mean(axis=1).astype(np.float32)


def load_4q(data: Path = DEFAULT_DATA, cache: Path = DEFAULT_CACHE, *, variants=("orig",),
            target_mode: str = "tags", verbose: bool = True) -> list[Clip]:
    df = load_4q_labels(data)
    clips = []
    for variant in variants:
        for i, row in enumerate(df.itertuples(index=False)):
            path = Path(data) / "4q" / "audio" / f"{row.song}.ogg"

            def audio(path=path, song=row.song, variant=variant):
                y = _read_mono(path)
                return y if variant == "orig" else augment(y, seed_of("4q", variant, song))

            t, X, _ = cached_features(cache, "4q", variant, row.song, audio)
            v, a = q4_targets(row.v, row.a, row.quadrant, target_mode)
            y = np.tile([v, a], (len(t), 1)).astype(np.float64)
            clips.append(Clip("4q", str(row.artist), row.song, variant, t, X, y,
                              {"quadrant": row.quadrant, "v_tag": row.v, "a_tag": row.a}))
            if verbose and (i + 1) % 100 == 0:
                print(f"4q/{variant}: {i + 1}/{len(df)}", file=sys.stderr, flush=True)
    return clips


def load_vgmidi(data: Path = DEFAULT_DATA, cache: Path = DEFAULT_CACHE, *,
                soundfonts=("fluidr3",), span_s: float = 2.0, verbose: bool = True) -> list[Clip]:
    from tools.render_vgmidi import rendered_path

    ann = load_vgmidi_annotations(data)
    clips = []
    for sf_name in soundfonts:
        for i, (pid, info) in enumerate(ann.items()):
            wav = rendered_path(cache, sf_name, pid)
            if not wav.is_file() and not _cache_file(cache, "vgmidi", sf_name, pid).is_file():
                raise FileNotFoundError(f"{wav} missing: run tools/render_vgmidi.py first")
            t, X, _ = cached_features(cache, "vgmidi", sf_name, pid, lambda wav=wav: _read_mono(wav))
            d = info["duration_s"]
            y = np.c_[curve_targets(t, info["valence"], d, span_s=span_s),
                      curve_targets(t, info["arousal"], d, span_s=span_s)]
            clips.append(Clip("vgmidi", pid, pid, sf_name, t, X, y,
                              {"duration_s": d, "measures": info["measures"],
                               "valence": info["valence"], "arousal": info["arousal"]}))
            if verbose and (i + 1) % 50 == 0:
                print(f"vgmidi/{sf_name}: {i + 1}/{len(ann)}", file=sys.stderr, flush=True)
    return clips


# ------------------------------------------------------------------------- group splits
def holdout_group(group: str, source: str, fraction: float = 0.15) -> bool:
    """True for the groups set aside as the final check (fixed by a hash, before any tuning)."""
    return (zlib.crc32(f"holdout|{source}|{group}".encode()) % 1000) < fraction * 1000


def group_folds(groups: list[str], n_folds: int, seed: int = 0) -> dict[str, int]:
    """Assign each distinct group to a fold (seeded shuffle, round robin)."""
    uniq = sorted(set(groups))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(uniq))
    return {uniq[j]: k % n_folds for k, j in enumerate(order)}
