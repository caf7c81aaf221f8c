"""Build the bundled demo recording ``realtime/data/demo.ogg`` and its ``DEMO_SOURCE.md``.

Four segments of Max McCracken's soundtrack for *Endgame: Singularity* (Debian package
``singularity-music``, CC BY-SA 3.0), about 38 s each, joined with short equal-power
crossfades, in the order calm -> tense -> melancholic -> uplifting. By default the
segments are the pinned :data:`CHOSEN` excerpts; ``--auto`` instead picks, per mood, the
window of a candidate track (candidates chosen by track name) that best fits the mood
by ear proxies: loudness, onset rate, brightness and major/minor mode. With a mood
model (``--model`` or the default one, when present) the model's view of each segment
is printed as a check.

    python tools/make_demo.py                      # finds or downloads the package
    python tools/make_demo.py --music DIR --seconds 38 --model models/mood.onnx
    python tools/make_demo.py --check               # the model's view of the bundled demo

The output is 22050 Hz mono Ogg Vorbis (about 1-2 MB); being an adaptation, it is CC BY-SA
3.0 too.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # realtime, for the model check
CACHE = Path.home() / ".cache" / "moodtrack-demo"
OUT_AUDIO = ROOT / "realtime" / "data" / "demo.ogg"
OUT_SOURCE = ROOT / "realtime" / "data" / "DEMO_SOURCE.md"
SR = 22050
PACKAGE = "singularity-music"
MUSIC_SUBDIR = Path("usr/share/games/singularity/music")
MUSIC_DIRS = (Path("/") / MUSIC_SUBDIR, Path("/tmp/sing") / MUSIC_SUBDIR)

#: Every track of the package (a segment needs a track at least as long as it).
TRACKS = ("A New Journey", "Aberrations", "Advanced Simulacra", "Awakening", "By-Product",
          "Coherence", "Deprecation", "Enemy Unknown", "Inevitable", "Media Threat", "Nebula",
          "Orbital Elevator", "Through Space", "lose/Chimes They Fade", "lose/March Thee to Dis",
          "win/Apex Aleph")
#: Mood -> tracks whose title or place in the game suggests it: a score bonus of NAME_BONUS.
NAME_PRIOR: dict[str, tuple[str, ...]] = {
    "calm": ("Nebula", "Through Space", "Awakening", "Orbital Elevator"),
    "tense": ("Enemy Unknown", "Media Threat", "Aberrations"),
    "melancholic": ("lose/Chimes They Fade", "lose/March Thee to Dis", "Deprecation",
                    "Inevitable"),
    "uplifting": ("win/Apex Aleph", "A New Journey"),
}
NAME_BONUS = 0.5
#: The bundled demo's excerpts: (mood, track, start s). Found by running the shipped model
#: (v3.5) over every track (``moodtrack analyze``, 38-s windows, the last 30 s of each scored)
#: and keeping, for each mood, a window whose mean valence and arousal both lie in that
#: mood's quadrant and whose track title fits; the ear-proxy picker (``--auto``) chose
#: excerpts the model read as calm.
CHOSEN: tuple[tuple[str, str, float], ...] = (
    ("calm", "Orbital Elevator", 26.0),
    ("tense", "Enemy Unknown", 126.5),
    ("melancholic", "Deprecation", 51.5),
    ("uplifting", "A New Journey", 2.0),
)
#: Score weights (demo order) on z-scored proxies: loudness, onset rate, brightness, mode.
#: Arousal follows loudness and onset rate; valence follows mode and brightness.
WEIGHTS = {
    "calm": {"loud": -0.6, "onsets": -0.6, "bright": -0.3, "mode": 0.5},
    "tense": {"loud": 0.8, "onsets": 0.3, "bright": 0.0, "mode": -0.7},
    "melancholic": {"loud": -0.4, "onsets": -0.3, "bright": -0.5, "mode": -1.0},
    "uplifting": {"loud": 0.8, "onsets": 0.3, "bright": 0.5, "mode": 0.7},
}
_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


@dataclass
class Segment:
    mood: str
    track: str
    start_s: float
    seconds: float
    proxies: dict[str, float]


def find_music(music: Path | None) -> Path:
    """The music directory: given, installed, already extracted, or downloaded now."""
    for d in ([music] if music else []) + list(MUSIC_DIRS):
        if d and (d / "Nebula.ogg").is_file():
            return d
    if music:
        sys.exit(f"make_demo: no singularity music in {music}")
    work = Path(tempfile.mkdtemp(prefix="singularity-"))
    print(f"make_demo: downloading {PACKAGE} into {work}", file=sys.stderr)
    subprocess.run(["apt-get", "download", PACKAGE], cwd=work, check=True)
    deb = next(work.glob(f"{PACKAGE}_*.deb"))
    subprocess.run(["dpkg", "-x", str(deb), str(work / "x")], check=True)
    return work / "x" / MUSIC_SUBDIR


def load(path: Path) -> np.ndarray:
    """Mono float32 at :data:`SR`."""
    import soundfile as sf
    import soxr

    y, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return soxr.resample(y.mean(axis=1), sr, SR, quality="HQ").astype(np.float32)


def second_proxies(y: np.ndarray) -> dict[str, np.ndarray]:
    """Per-second loudness (dBFS), onset rate (1/s), brightness (Hz) and mode (major-minor)."""
    import librosa

    hop = 512
    rms = librosa.feature.rms(y=y, frame_length=2048, hop_length=hop)[0]
    onset = librosa.onset.onset_strength(y=y, sr=SR, hop_length=hop)
    peaks = librosa.util.peak_pick(onset, pre_max=3, post_max=3, pre_avg=10, post_avg=10,
                                   delta=0.3 * onset.std(), wait=4)
    centroid = librosa.feature.spectral_centroid(y=y, sr=SR, hop_length=hop)[0]
    chroma = librosa.feature.chroma_stft(y=y, sr=SR, hop_length=hop, tuning=0.0)
    fps = SR / hop
    n = int(len(y) / SR)
    per = lambda a: np.array([a[int(i * fps):int((i + 1) * fps)].mean() for i in range(n)])  # noqa: E731
    onsets = np.zeros(len(onset))
    onsets[peaks] = 1.0
    return {"loud": 20 * np.log10(np.maximum(per(rms), 1e-6)), "onsets": per(onsets) * fps,
            "bright": per(centroid), "chroma": np.stack([per(c) for c in chroma], axis=1)}


def mode_of(chroma: np.ndarray) -> float:
    """Best major minus best minor key correlation of a mean chroma vector."""
    corr = lambda p: max(np.corrcoef(np.roll(p, k), chroma)[0, 1] for k in range(12))  # noqa: E731
    return float(corr(_MAJOR) - corr(_MINOR))


def windows(track: str, p: dict[str, np.ndarray], seconds: float, hop_s: int = 2) -> list[dict]:
    """Proxies of every ``seconds`` window (skipping the first and last 5 s of the track)."""
    n = len(p["loud"])
    w = int(seconds)
    out = []
    margin = 5 if n >= w + 10 else 0
    for s in range(margin, max(margin, n - w - margin) + 1, hop_s):
        sl = slice(s, min(n, s + w))
        out.append({"track": track, "start": float(s), "length": float(n),
                    "loud": float(np.mean(p["loud"][sl])),
                    "onsets": float(np.mean(p["onsets"][sl])),
                    "bright": float(np.mean(p["bright"][sl])),
                    "mode": mode_of(p["chroma"][sl].mean(axis=0))})
    return out


def cached_proxies(music: Path, track: str) -> dict[str, np.ndarray]:
    """:func:`second_proxies` of a track, cached in :data:`CACHE`."""
    path = CACHE / (track.replace("/", "_") + ".npz")
    if path.is_file():
        return dict(np.load(path))
    print(f"make_demo: analysing {track}", file=sys.stderr)
    p = second_proxies(load(music / f"{track}.ogg"))
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(path, **p)
    return p


def pick(music: Path, seconds: float) -> list[Segment]:
    """The best-scoring window per mood (in demo order), each from a different track."""
    cache = {t: windows(t, cached_proxies(music, t), seconds) for t in TRACKS}
    allw = [w for ws in cache.values() for w in ws]
    z = {k: (np.mean([w[k] for w in allw]), np.std([w[k] for w in allw]) + 1e-9)
         for k in ("loud", "onsets", "bright", "mode")}
    used: set[str] = set()
    out = []
    for mood, wt in WEIGHTS.items():
        def score(w, wt=wt, mood=mood):
            return (sum(c * (w[k] - z[k][0]) / z[k][1] for k, c in wt.items())
                    + NAME_BONUS * (w["track"] in NAME_PRIOR[mood]))

        ranked = sorted((w for t in TRACKS if t not in used for w in cache[t]
                         if len(cache[t]) and w["start"] + seconds <= _length(cache[t]) + 1),
                        key=score, reverse=True)
        best = ranked[0]
        top: dict[str, tuple[float, float]] = {}
        for w in ranked:
            if len(top) < 4:
                top.setdefault(w["track"], (round(float(score(w)), 2), w["start"]))
        print(f"make_demo: {mood}: best (score, start s) of the top tracks {top}", file=sys.stderr)
        used.add(best["track"])
        out.append(Segment(mood, best["track"], best["start"], seconds,
                           {k: round(best[k], 3) for k in ("loud", "onsets", "bright", "mode")}))
    return out


def _length(ws: list[dict]) -> float:
    return ws[-1]["length"]


def assemble(music: Path, segments: list[Segment], fade_s: float) -> np.ndarray:
    """The segments joined with equal-power crossfades, peak-normalised to -1 dBFS."""
    nf = int(fade_s * SR)
    ramp = np.sin(np.linspace(0, np.pi / 2, nf, dtype=np.float32)) ** 2
    out = np.zeros(0, np.float32)
    for seg in segments:
        y = load(music / f"{seg.track}.ogg")
        a = int(seg.start_s * SR)
        piece = y[a:a + int(seg.seconds * SR)].copy()
        piece[:nf] *= np.sqrt(ramp)
        piece[-nf:] *= np.sqrt(ramp[::-1])
        if out.size:
            out[-nf:] += piece[:nf]
            out = np.concatenate([out, piece[nf:]])
        else:
            out = piece
    return (out * (10 ** (-1 / 20) / max(np.abs(out).max(), 1e-9))).astype(np.float32)


def model_view(y: np.ndarray, segments: list[Segment], fade_s: float, model: Path | None, *,
               sample_rate: int = SR) -> None:
    """Print the model's mean valence/arousal over each segment (its last 2/3)."""
    try:
        from realtime.model import MoodModel
        from realtime.pipeline import Pipeline

        m = MoodModel(model)
    except Exception as exc:  # no model yet: the check is optional
        print(f"make_demo: no model check ({exc})", file=sys.stderr)
        return
    p = Pipeline(m, update_hz=1.0)
    ups = p.push(y, sample_rate=sample_rate) + p.finish()
    t = np.array([u.t for u in ups])
    va = np.array([(u.valence, u.arousal) for u in ups])
    start = 0.0
    for seg in segments:
        end = start + seg.seconds - fade_s
        sel = (t > start + seg.seconds / 3) & (t <= end)
        v, a = va[sel].mean(axis=0)
        print(f"  {seg.mood:<12} {seg.track:<24} model: valence {v:+.2f} arousal {a:+.2f}")
        start = end


def write_source(segments: list[Segment], fade_s: float, path: Path) -> None:
    rows, t = [], 0.0
    for seg in segments:
        end = t + seg.seconds
        rows.append(f"| {_mmss(t)}–{_mmss(end)} | {seg.mood} | {seg.track.split('/')[-1]} "
                    f"(`music/{seg.track}.ogg`) | {_mmss(seg.start_s)}–"
                    f"{_mmss(seg.start_s + seg.seconds)} |")
        t = end - fade_s
    path.write_text(f"""# Demo recording: source and licence

`demo.ogg` ({_mmss(t + fade_s)}, 22050 Hz mono Ogg Vorbis) is what `moodtrack demo` plays. It
joins four excerpts, with {fade_s:g}-s equal-power crossfades, whose mood changes from calm to
tense to melancholic to uplifting:

| demo time | intended mood | track (in `singularity-music`) | excerpt of the track |
|---|---|---|---|
{chr(10).join(rows)}

**Music:** Max McCracken, soundtrack of *Endgame: Singularity*,
Copyright (C) 2007-2008, 2012 Max McCracken, licensed under
[Creative Commons Attribution-ShareAlike 3.0](https://creativecommons.org/licenses/by-sa/3.0/)
(CC BY-SA 3.0). Obtained from the Debian package `{PACKAGE}` (version 007-2,
<https://packages.debian.org/source/sid/{PACKAGE}>; upstream <http://emhsoft.com/singularity/>).

**Changes:** excerpts cut, mixed to mono, resampled to 22050 Hz, crossfaded, peak-normalised
and re-encoded as Ogg Vorbis. The demo is an adaptation and is therefore licensed under
CC BY-SA 3.0 as well; attribute it as "Demo excerpts of music by Max McCracken (Endgame:
Singularity soundtrack), CC BY-SA 3.0".

Excerpts were chosen by track title and by where the shipped mood model's 38-s mean valence
and arousal fall in the intended quadrant (see `CHOSEN` in `tools/make_demo.py`); rebuild with
`python tools/make_demo.py`, and `python tools/make_demo.py --check` prints how the shipped model
reads each excerpt in the demo.
""")


def _mmss(s: float) -> str:
    return f"{int(s // 60)}:{int(round(s % 60)):02d}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--music", type=Path, help="singularity music directory (default: find or "
                    "download it)")
    ap.add_argument("--seconds", type=float, default=38.0, help="seconds per segment")
    ap.add_argument("--fade", type=float, default=2.0, help="crossfade seconds")
    ap.add_argument("--model", type=Path, help="mood model for the check (default: moodtrack's)")
    ap.add_argument("--out", type=Path, default=OUT_AUDIO)
    ap.add_argument("--auto", action="store_true",
                    help="pick excerpts by ear proxies instead of the pinned CHOSEN ones")
    ap.add_argument("--check", action="store_true",
                    help="only print the model's view of each segment of the existing demo")
    args = ap.parse_args(argv)
    import soundfile as sf

    music = find_music(args.music)
    segments = (pick(music, args.seconds) if args.auto else
                [Segment(m, t, s, args.seconds, {}) for m, t, s in CHOSEN])
    if args.check:
        y, sr = sf.read(str(args.out), dtype="float32")
        model_view(y, segments, args.fade, args.model, sample_rate=sr)
        return 0
    y = assemble(music, segments, args.fade)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # libsndfile's Vorbis encoder crashes on one large write: write in blocks.
    with sf.SoundFile(str(args.out), "w", SR, 1, format="OGG", subtype="VORBIS") as f:
        for i in range(0, len(y), 8192):
            f.write(y[i:i + 8192])
    write_source(segments, args.fade, args.out.parent / OUT_SOURCE.name)
    print(f"make_demo: wrote {args.out} ({len(y) / SR:.1f} s, "
          f"{args.out.stat().st_size / 1e6:.2f} MB)", file=sys.stderr)
    for s in segments:
        print(f"  {s.mood:<12} {s.track:<24} from {s.start_s:5.0f} s  {s.proxies}")
    model_view(y, segments, args.fade, args.model)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
