"""Recorded human voices from Debian packages, for the speech output and the dialogue figures.

The synthetic voices of :func:`tools.augment.make_speech_bank` (espeak-ng, festival) teach a
detector their own timbre; these are people:

- ``asterisk-core-sounds-{en,es,fr,it,ru}-g722`` (CC BY-SA 3.0): telephone-system prompts read
  by four professional speakers, whole phrases at 16 kHz (G.722);
- ``klettres-data`` (GPL-2+): letters and syllables read by native speakers of about twenty
  languages, joined here into runs of syllables with short gaps.

Split by speaker (a voice is either trained on or evaluated on, never both):
``train``: Allison (en, es), Carlo (it) and KLettres' languages but ``EVAL_KLETTRES``;
``eval``: June (fr), the Russian IVR voice, and KLettres' ``EVAL_KLETTRES``. alsa-utils'
speaker-test words (:func:`alsa_words`, the ``realvoice6`` chain of ``tools.embdata``) stay
out of both.

A bank is a list of float32 "lines" at 16 kHz, peak 0.5 (as :func:`tools.augment.load_speech_bank`),
cached under ``cache/speech/real_<split>.npz``.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from tools.corpus import SR, ffmpeg_16k, load_16k

ASTERISK = Path("/usr/share/asterisk/sounds")
KLETTRES = Path("/usr/share/klettres")
ASTERISK_VOICES = {"train": ("en_US_f_Allison", "es_MX_f_Allison", "it_IT_m_Carlo"),
                   "eval": ("fr_CA_f_June", "ru_RU_f_IvrvoiceRU")}
EVAL_KLETTRES = ("fr", "ru", "uk", "he", "nl")
DEBIAN_PACKAGES = ("klettres-data",) + tuple(f"asterisk-core-sounds-{l}-g722" for l in ("en", "es", "fr", "it", "ru"))
ALSA_WORDS = Path("/usr/share/sounds/alsa")  # alsa-utils: "Front left", "Rear center", ... (one man)


def _peak_half(y: np.ndarray) -> np.ndarray:
    """``y`` at peak 0.5, as :func:`tools.augment.load_speech_bank` scales its lines."""
    return (y / (np.max(np.abs(y)) + 1e-9) * 0.5).astype(np.float32)


_ALSA: list[np.ndarray] = []


def alsa_words() -> list[np.ndarray]:
    """alsa-utils' speaker-test recordings (a real voice kept out of every training set)."""
    if not _ALSA:
        files = sorted(p for p in ALSA_WORDS.glob("*.wav") if p.stem != "Noise")
        if not files:
            raise FileNotFoundError(f"no recordings in {ALSA_WORDS}: apt-get install alsa-utils")
        _ALSA.extend(_peak_half(load_16k(str(p))) for p in files)
    return _ALSA


def _trim(y: np.ndarray, rel: float = 0.02) -> np.ndarray:
    """``y`` without its leading and trailing near-silence (below ``rel`` of its peak)."""
    if not y.size:
        return y
    idx = np.flatnonzero(np.abs(y) > rel * (np.max(np.abs(y)) + 1e-12))
    return y[idx[0]: idx[-1] + 1] if idx.size else y[:0]


def _files(split: str) -> tuple[list[Path], list[Path]]:
    phrases = [p for v in ASTERISK_VOICES[split] for p in sorted((ASTERISK / v).rglob("*.g722"))]
    langs = sorted(d.name for d in KLETTRES.iterdir() if d.is_dir()) if KLETTRES.is_dir() else []
    langs = [l for l in langs if (l in EVAL_KLETTRES) == (split == "eval")]
    syllables = [p for l in langs for p in sorted((KLETTRES / l).rglob("*.ogg"))]
    return phrases, syllables


def make_real_bank(split: str, *, seed: int = 0, max_phrases: int = 600,
                   n_syllable_lines: int = 300) -> list[np.ndarray]:
    """Lines of recorded speech for ``split`` ("train" or "eval"); see the module docstring."""
    phrases, syllables = _files(split)
    if not phrases or not syllables:
        raise FileNotFoundError(f"recorded voices missing: apt-get install {' '.join(DEBIAN_PACKAGES)}")
    rng = np.random.default_rng([seed, 1 if split == "eval" else 0])
    phrases = [phrases[i] for i in sorted(rng.permutation(len(phrases))[:max_phrases])]
    clips = [_trim(ffmpeg_16k(str(p))) for p in phrases]
    lines = []
    i = 0
    while i < len(clips):  # 1-3 prompts of one speaker's folder run together, 0.1-0.3 s apart
        k = int(rng.integers(1, 4))
        parts = [c for c in clips[i:i + k] if c.size]
        i += k
        if parts:
            lines.append(_join(parts, rng, (0.1, 0.3)))
    by_lang: dict[str, list[np.ndarray]] = {}
    for p in syllables:
        y = _trim(ffmpeg_16k(str(p)))  # (ffmpeg's resampler: the shipped layer's bank)
        if y.size > 0.1 * SR:
            by_lang.setdefault(p.relative_to(KLETTRES).parts[0], []).append(y)
    langs = sorted(by_lang)
    for _ in range(n_syllable_lines):  # 3-8 syllables of one language, 0.02-0.15 s apart
        pool = by_lang[langs[rng.integers(len(langs))]]
        parts = [pool[j] for j in rng.integers(len(pool), size=int(rng.integers(3, 9)))]
        lines.append(_join(parts, rng, (0.02, 0.15)))
    return [_peak_half(y) for y in lines]


def _join(parts: list[np.ndarray], rng, gap_s: tuple[float, float]) -> np.ndarray:
    out = []
    for j, y in enumerate(parts):
        if j:
            out.append(np.zeros(int(rng.uniform(*gap_s) * SR), np.float32))
        out.append(y / (np.max(np.abs(y)) + 1e-9))
    return np.concatenate(out)


def load_real_bank(cache: Path, split: str) -> list[np.ndarray]:
    """:func:`make_real_bank`, cached in ``cache/speech/real_<split>.npz``."""
    from realtime.outputs import atomic_write

    f = Path(cache) / "speech" / f"real_{split}.npz"
    if not f.is_file():
        bank = make_real_bank(split)
        f.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.savez(buf, lengths=np.array([y.size for y in bank]), audio=np.concatenate(bank))
        atomic_write(f, buf.getvalue())
    z = np.load(f)
    return np.split(z["audio"].astype(np.float32), np.cumsum(z["lengths"])[:-1])
