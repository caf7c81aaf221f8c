"""The signal chains music reaches the input through, as seeded audio transformations.

Used twice: to train the embedding network and the heads on music as it really arrives
(codecs, level, noise, EQ, band limits, rooms, dialogue over the score), and by
``tools/evaluate.py`` to measure how little the mood moves under each of them. Every
function takes and returns float32 mono audio at ``sr`` Hz and draws from ``rng``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
from scipy.signal import butter, fftconvolve, lfilter, sosfilt

ROOT = Path(__file__).resolve().parent.parent
SPEECH_LINES = ROOT / "tools" / "data" / "dialogue_lines.txt"
#: Lines and voices kept out of training, for the dialogue figures in the model card.
EVAL_LINES = slice(50, 60)
EVAL_VOICES = ("en-gb-scotland", "en-029")
TRAIN_VOICES = ("en-us", "en-gb", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m7", "f1", "f2", "f3", "f4", "f5")


def rms(y: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(y, dtype=np.float64)) + 1e-20))


def gain(y, rng, sr, *, db=None):
    db = rng.uniform(-30.0, 6.0) if db is None else db
    return np.clip(y * 10 ** (db / 20.0), -1.0, 1.0).astype(np.float32)


def codec(y, rng, sr, *, name=None, kbps=None):
    """A round trip through ffmpeg's MP3, AAC or Opus encoder at 32..128 kbit/s."""
    name = name or rng.choice(["libmp3lame", "aac", "libopus"])
    kbps = int(kbps or rng.choice([32, 48, 64, 96, 128]))
    fmt = {"libmp3lame": "mp3", "aac": "adts", "libopus": "ogg"}[name]
    rate = 48000 if name == "libopus" else sr
    enc = subprocess.run(["ffmpeg", "-v", "error", "-f", "f32le", "-ar", str(sr), "-ac", "1", "-i", "-",
                          "-ar", str(rate), "-c:a", name, "-b:a", f"{kbps}k", "-f", fmt, "-"],
                         input=np.asarray(y, np.float32).tobytes(), capture_output=True, check=True).stdout
    dec = subprocess.run(["ffmpeg", "-v", "error", "-i", "-", "-f", "f32le", "-ar", str(sr), "-ac", "1", "-"],
                         input=enc, capture_output=True, check=True).stdout
    out = np.frombuffer(dec, np.float32)
    # Encoders add a few ms of delay: realign on the cross-correlation peak within 50 ms.
    n = min(len(out), len(y))
    lag_max = int(0.05 * sr)
    seg = slice(0, min(n, 5 * sr))
    xc = fftconvolve(out[seg], y[seg][::-1], mode="full")
    mid = len(y[seg]) - 1
    lag = int(np.argmax(xc[mid: mid + lag_max + 1]))
    out = out[lag:]
    res = np.zeros_like(y)
    res[: min(len(out), len(y))] = out[: len(y)]
    return res.astype(np.float32)


def coloured_noise(n, rng, colour="pink"):
    """Unit-RMS white, pink (1/f) or brown (1/f^2) noise."""
    white = rng.standard_normal(n)
    if colour == "white":
        x = white
    else:
        spec = np.fft.rfft(white)
        f = np.fft.rfftfreq(n)
        f[0] = f[1]
        spec /= f ** (0.5 if colour == "pink" else 1.0)
        x = np.fft.irfft(spec, n)
    return (x / rms(x)).astype(np.float32)


def babble(n, rng, sr, speech_bank, talkers=6):
    """Several talkers at once (unit RMS), from the speech bank."""
    out = np.zeros(n, np.float64)
    for _ in range(talkers):
        s = np.tile(speech_bank[rng.integers(len(speech_bank))], 1 + n // 8000)
        start = rng.integers(0, max(1, len(s) - n))
        out += s[start:start + n] if len(s) >= n else np.pad(s, (0, n - len(s)))
    return (out / rms(out)).astype(np.float32)


def noise(y, rng, sr, *, snr_db=None, colour=None, speech_bank=None):
    snr_db = rng.uniform(10.0, 30.0) if snr_db is None else snr_db
    colour = colour or rng.choice(["white", "pink", "brown", "babble"] if speech_bank else ["white", "pink", "brown"])
    nz = babble(len(y), rng, sr, speech_bank) if colour == "babble" else coloured_noise(len(y), rng, colour)
    return (y + nz * rms(y) * 10 ** (-snr_db / 20.0)).astype(np.float32)


def tilt(y, rng, sr, *, db=None):
    """A tilt EQ of +-``db`` dB around ~1 kHz (one-pole low/high split)."""
    db = rng.uniform(-6.0, 6.0) if db is None else db
    a = np.exp(-2 * np.pi * 1000.0 / sr)
    low = lfilter([1 - a], [1, -a], y)
    g = 10 ** (db / 40.0)
    return (low / g + (y - low) * g).astype(np.float32)


def band_limit(y, rng, sr, *, kind=None):
    """A telephone band (300-3400 Hz) or a low-pass at 3-7 kHz."""
    kind = kind or rng.choice(["telephone", "lowpass"])
    if kind == "telephone":
        sos = butter(4, [300.0, 3400.0], btype="bandpass", fs=sr, output="sos")
    else:
        sos = butter(6, rng.uniform(3000.0, 7000.0), btype="lowpass", fs=sr, output="sos")
    return sosfilt(sos, y).astype(np.float32)


def reverb(y, rng, sr, *, rt60=None, wet=None):
    """A generated room: exponentially decaying noise with RT60 ``rt60`` s, early part sparse."""
    rt60 = rng.uniform(0.2, 1.5) if rt60 is None else rt60
    wet = rng.uniform(0.2, 0.6) if wet is None else wet
    n = int(rt60 * sr)
    t = np.arange(n) / sr
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    ir[: int(0.005 * sr)] = 0.0
    ir /= np.sqrt(np.sum(ir ** 2)) + 1e-12
    wet_sig = fftconvolve(y, ir)[: len(y)]
    return ((1 - wet) * y + wet * wet_sig * rms(y) / (rms(wet_sig) + 1e-12)).astype(np.float32)


def dialogue_track(n, rng, sr, speech_bank, *, pause=(0.3, 2.5)):
    """(track, active): lines from the speech bank one after another with pauses, unit
    RMS over the spoken parts, and a per-sample mask of where someone speaks."""
    track = np.zeros(n, np.float32)
    active = np.zeros(n, bool)
    pos = int(rng.uniform(0.0, pause[1]) * sr)
    while pos < n:
        s = speech_bank[rng.integers(len(speech_bank))]
        m = min(len(s), n - pos)
        track[pos:pos + m] = s[:m]
        env = np.abs(s[:m]) > 0.02 * np.max(np.abs(s))
        # A line is "speaking" from its first to its last loud sample (short gaps within it count).
        idx = np.flatnonzero(env)
        if idx.size:
            active[pos + idx[0]: pos + idx[-1] + 1] = True
        pos += m + int(rng.uniform(*pause) * sr)
    if active.any():
        track /= rms(track[active])
    return track, active


def overlay_dialogue(y, rng, sr, speech_bank, *, level_db=None):
    """Music with dialogue ``level_db`` dB above it (speech RMS over its spoken parts vs the
    music's RMS); returns (mix, active)."""
    level_db = rng.uniform(0.0, 10.0) if level_db is None else level_db
    track, active = dialogue_track(len(y), rng, sr, speech_bank)
    mix = y + track * rms(y) * 10 ** (level_db / 20.0)
    return mix.astype(np.float32), active


def random_chain(y, rng, sr, speech_bank, *, p_dialogue=0.3):
    """A random signal chain; returns (audio, speech_active_mask or None, description)."""
    steps = []
    active = None
    if speech_bank and rng.random() < p_dialogue:
        y, active = overlay_dialogue(y, rng, sr, speech_bank)
        steps.append("dialogue")
    if rng.random() < 0.5:
        y = tilt(y, rng, sr); steps.append("tilt")
    if rng.random() < 0.25:
        y = band_limit(y, rng, sr); steps.append("band")
    if rng.random() < 0.3:
        y = reverb(y, rng, sr); steps.append("reverb")
    if rng.random() < 0.5:
        y = noise(y, rng, sr, speech_bank=speech_bank); steps.append("noise")
    y = gain(y, rng, sr); steps.append("gain")
    if rng.random() < 0.4:
        y = codec(y, rng, sr); steps.append("codec")
    return y, active, "+".join(steps)


# ----------------------------------------------------------------------------- speech bank
def make_speech_bank(out: Path, *, sr: int = 16000, split: str = "train", seed: int = 0) -> list[Path]:
    """Render dialogue lines with espeak-ng (several voices and variants, speeds and pitches)
    and festival into ``out/<split>/*.wav`` at ``sr`` Hz; ``split`` "eval" uses lines and
    voices kept out of training. Existing files are kept."""
    lines = [l.strip() for l in SPEECH_LINES.read_text().splitlines() if l.strip()]
    eval_lines = lines[EVAL_LINES]
    lines = eval_lines if split == "eval" else [l for l in lines if l not in eval_lines]
    voices = EVAL_VOICES if split == "eval" else TRAIN_VOICES
    rng = np.random.default_rng(seed + (1 if split == "eval" else 0))
    folder = Path(out) / split
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, text in enumerate(lines):
        for k in range(3):
            p = folder / f"espeak_{i:03d}_{k}.wav"
            # drawn whether or not the file exists: a resumed bank is the bank of one run
            v = f"{voices[rng.integers(len(voices))]}+{VARIANTS[rng.integers(len(VARIANTS))]}"
            speed, pitch = int(rng.uniform(130, 190)), int(rng.uniform(25, 75))
            if not p.is_file():
                _render_to(p, sr, ["espeak-ng", "-v", v, "-s", str(speed), "-p", str(pitch), "-w"], text)
            paths.append(p)
        if split == "train":
            p = folder / f"festival_{i:03d}.wav"
            if not p.is_file():
                _render_to(p, sr, ["text2wave", "-o"], text, stdin=True)
            paths.append(p)
    return paths


def _render_to(path: Path, sr: int, cmd: list[str], text: str, *, stdin: bool = False) -> None:
    """Run a speech synthesiser into a temporary file, resample it to ``sr`` Hz mono 16-bit,
    then move it into place: a bank file is whole or absent."""
    import soundfile as sf
    import soxr

    tmp = path.with_name(f".{path.stem}.tmp.wav")
    try:
        subprocess.run([*cmd, str(tmp)] + ([] if stdin else [text]), input=text.encode() if stdin else None,
                       check=True, capture_output=True)
        y, r = sf.read(tmp, dtype="float32", always_2d=True)
        y = y.mean(axis=1)
        sf.write(tmp, soxr.resample(y, r, sr) if r != sr else y, sr, subtype="PCM_16")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)  # a failed synthesiser leaves nothing behind


def load_speech_bank(out: Path, split: str = "train", sr: int = 16000) -> list[np.ndarray]:
    import soundfile as sf

    paths = sorted((Path(out) / split).glob("*.wav"))
    if not paths:
        paths = make_speech_bank(out, sr=sr, split=split)
    bank = []
    for p in paths:
        y, r = sf.read(p, dtype="float32")
        assert r == sr, p
        bank.append(y / (np.max(np.abs(y)) + 1e-9) * 0.5)
    return bank
