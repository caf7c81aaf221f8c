"""Channel roles on a 5.1 film bus: does the score's mood survive dialogue on the centre?

For each of ``--clips`` 4Q clips (mono 22.05 kHz music, used as the score) a 5.1 bus is
built: L = R = the score; Ls, Rs = the score delayed 15 / 23 ms, low-passed and 6 dB down
(a typical spread into the surrounds); C = dialogue (espeak-ng sentences, several voices,
0.3-1.5 s pauses) ``--dialogue-db`` above the score's RMS while it speaks; LFE = the
score low-passed at 120 Hz. The clip-mean quadrant (the mean valence and arousal of the
non-silent updates, ``film-mix`` preset, the shipped model) of

- the 5.1 bus with the ``film-mix`` channel weights (C and LFE left out), and
- the 5.1 bus with all channels alike (``channel_weights = {}``, the old behaviour)

is compared with that of the stereo score alone (L = R = the score). Prints the agreement
rates and, with ``--json``, writes them with the per-clip values.

    python tools/eval_channels.py --data ../shared/data --clips 80 --json channels.json
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SENTENCES = [
    "I told you we should never have come back here.", "Where were you last night?",
    "The car is outside, keep your voice down.", "Nobody leaves this room until I say so.",
    "She said she would call, but she never did.", "Do you remember the house by the lake?",
    "We have about ten minutes before they notice.", "Put the gun down, it's over.",
    "I'm not angry, I'm just tired of all this.", "Look at me. Look at me!",
    "The letter was in the drawer the whole time.", "It was a beautiful day, wasn't it?",
]
VOICES = ["en-us", "en-gb", "en-us+f3", "en-gb-scotland", "en-us+m3", "en-gb+f2"]


def speech_bank(sr: int, tmp: Path) -> list[np.ndarray]:
    """Each sentence in a few voices, at ``sr`` Hz, peak-normalised."""
    import soundfile as sf
    import soxr

    bank = []
    for i, text in enumerate(SENTENCES):
        for j, voice in enumerate(VOICES[i % 3::3]):
            wav = tmp / f"s{i}_{j}.wav"
            subprocess.run(["espeak-ng", "-v", voice, "-s", "160", "-w", str(wav), text],
                           check=True, capture_output=True)
            y, rate = sf.read(wav, dtype="float32")
            y = soxr.resample(y, rate, sr).astype(np.float32)
            bank.append(y / (np.abs(y).max() + 1e-9))
    return bank


def dialogue_track(n: int, rng, bank, sr: int) -> np.ndarray:
    out = np.zeros(n, np.float32)
    i = int(rng.uniform(0.2, 1.0) * sr)
    while i < n:
        u = bank[rng.integers(len(bank))]
        k = min(len(u), n - i)
        out[i:i + k] = u[:k]
        i += k + int(rng.uniform(0.3, 1.5) * sr)
    return out


def lowpass(y: np.ndarray, sr: int, hz: float) -> np.ndarray:
    spec = np.fft.rfft(y)
    spec[np.fft.rfftfreq(len(y), 1 / sr) > hz] = 0
    return np.fft.irfft(spec, len(y)).astype(np.float32)


def bus_5_1(score: np.ndarray, dialogue: np.ndarray, sr: int, level_db: float) -> np.ndarray:
    """L R C LFE Ls Rs."""
    active = np.abs(dialogue) > 1e-3
    speech_rms = np.sqrt(np.mean(dialogue[active] ** 2)) if active.any() else 1.0
    music_rms = np.sqrt(np.mean(score ** 2)) + 1e-9
    c = dialogue * (music_rms * 10 ** (level_db / 20) / speech_rms)
    soft = lowpass(score, sr, 6000.0) * 10 ** (-6 / 20)
    ls = np.roll(soft, int(0.015 * sr))
    rs = np.roll(soft, int(0.023 * sr))
    lfe = lowpass(score, sr, 120.0)
    return np.stack([score, score, c, lfe, ls, rs], axis=1).astype(np.float32)


def clip_mean(cfg, model, x: np.ndarray, sr: int) -> tuple[float, float]:
    from realtime.factory import build_pipeline

    p = build_pipeline(cfg, model=model)
    ups = []
    for i in range(0, len(x), 65536):
        ups += p.push(x[i:i + 65536], sample_rate=sr)
    ups += p.finish()
    sound = [u for u in ups if not u.silence] or ups
    return float(np.mean([u.valence for u in sound])), float(np.mean([u.arousal for u in sound]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--clips", type=int, default=80)
    ap.add_argument("--dialogue-db", type=float, default=6.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    import csv

    import soundfile as sf

    from realtime import config as cfgmod
    from realtime.model import MoodModel
    from realtime.mood import quadrant_of

    film = cfgmod.load("film-mix")
    plain = copy.deepcopy(film)
    plain["input"]["channel_weights"] = {}
    model = MoodModel(args.model)
    rng = np.random.default_rng(args.seed)
    with open(Path(args.data) / "4q" / "labels.csv", newline="") as f:
        labels = list(csv.DictReader(f))
    rows = [labels[i] for i in rng.permutation(len(labels))[:args.clips]]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        bank = None
        for k, row in enumerate(rows):
            y, sr = sf.read(Path(args.data) / "4q" / "audio" / f"{row['song']}.ogg",
                            dtype="float32")
            y = y if y.ndim == 1 else y.mean(axis=1)
            if bank is None:
                bank = speech_bank(sr, Path(tmp))
            bus = bus_5_1(y, dialogue_track(len(y), rng, bank, sr), sr, args.dialogue_db)
            ref = clip_mean(film, model, np.stack([y, y], axis=1), sr)
            with_roles = clip_mean(film, model, bus, sr)
            all_six = clip_mean(plain, model, bus, sr)
            results.append({"song": row["song"], "stereo": ref, "film_mix": with_roles,
                            "all_channels": all_six})
            print(f"{k + 1}/{len(rows)} {row['song']}", file=sys.stderr, flush=True)
    q = lambda va: quadrant_of(*va)  # noqa: E731
    agree = {name: float(np.mean([q(r[name]) == q(r["stereo"]) for r in results]))
             for name in ("film_mix", "all_channels")}
    shift = {name: float(np.mean([np.hypot(*np.subtract(r[name], r["stereo"])) for r in results]))
             for name in ("film_mix", "all_channels")}
    summary = {"clips": len(results), "dialogue_db": args.dialogue_db,
               "quadrant_agreement": agree, "mean_va_shift": shift}
    print(json.dumps(summary, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps({**summary, "per_clip": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
