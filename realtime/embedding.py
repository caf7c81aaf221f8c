"""Streaming, causal music embedding: mono samples in, one head-input vector per mood update out.

Three steps, each causal and independent of block sizes:

1. :class:`LogMelFrontEnd`: a power mel spectrogram (``center=False``, Hann window) with a
   slow causal level normalisation (a bias-corrected running mean of the frame power,
   time constant ``norm_tau_s``), then musicnn's compression ``log10(10000 x + 1)``. A
   constant gain change cancels out exactly (down to ``max_gain_db`` of boost), so the
   embedding does not move with the monitor level; the true level is still reported.
2. Patches of ``patch_frames`` log-mel frames, one every ``patch_hop`` frames, go through
   the embedding network (ONNX, distilled from MSD-musicnn, see ``models/MODEL.md``), which
   gives a 200-value embedding, tag probabilities and a speech probability per patch.
3. At each update instant the head input is computed from the embeddings of the patches
   completed by then: the mean over the last ``context_s`` seconds of patches, and the
   mean of the last ``short_context_s`` seconds minus a slow running mean (within-piece
   change).

The network runs once per patch (about once a second), not once per update, so the cost
does not grow with the update rate. This module is the single implementation: ``tools/``
trains on it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.fft

from realtime import filterbanks
from realtime.errors import MoodtrackError
from realtime.features import key_correlations
from realtime.onnxrun import open_session
from realtime.ringbuffer import RingBuffer

EMBEDDING_VERSION = "mt-emb-1"

#: Front-end settings the embedding network was trained with (musicnn's, but causal).
FRONT_END = dict(sample_rate=16000, n_fft=512, hop_length=256, n_mels=96)


class LogMelFrontEnd:
    """Causal log-mel frames with a slow level normalisation.

    - ``sample_rate`` (Hz), ``n_fft``, ``hop_length`` (samples), ``n_mels`` (bands, Slaney
      mel from 0 Hz to Nyquist, as librosa's defaults);
    - ``norm_tau_s``: time constant (seconds) of the running mean frame power that the
      frames are normalised by; ``norm_db``: the mean power (dB re full scale, i.e. 10
      log10 of the mean square) the running mean is brought to; ``max_gain_db``: the most
      the normalisation amplifies (quieter input stays quieter, so noise is not blown up).

    :meth:`process` returns ``(logmel, power)``: the new complete frames as float32
    ``(n, n_mels)`` and their mean-square power (float64 ``(n,)``, unnormalised).
    Frame *i* covers samples ``[i * hop_length, i * hop_length + n_fft)``.
    """

    def __init__(self, *, sample_rate: int = 16000, n_fft: int = 512, hop_length: int = 256,
                 n_mels: int = 96, norm_tau_s: float = 10.0, norm_db: float = -20.0,
                 max_gain_db: float = 40.0, chunk: int = 32768):
        self.sample_rate = int(sample_rate)
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.n_mels = int(n_mels)
        self.norm_tau_s = float(norm_tau_s)
        self.norm_db = float(norm_db)
        self.max_gain_db = float(max_gain_db)
        self.frames_per_second = self.sample_rate / self.hop_length
        fb = filterbanks.load(sample_rate=self.sample_rate, n_fft=self.n_fft,
                              n_mels=self.n_mels, fmin=0.0)
        self._window = fb["window"]
        self._mel_fb_t = np.ascontiguousarray(fb["mel"].T, dtype=np.float64)  # (bins, n_mels)
        self._win_power = float(np.mean(self._window.astype(np.float64) ** 2))
        self._decay = float(np.exp(-1.0 / (self.norm_tau_s * self.frames_per_second)))
        self._target = 10.0 ** (self.norm_db / 10.0)
        self._floor = 10.0 ** ((self.norm_db - self.max_gain_db) / 10.0)
        self._stft = PowerFrames(n_fft=self.n_fft, hop_length=self.hop_length, window=self._window,
                                 chunk=chunk)
        self._chunk = self._stft.chunk
        self.reset()

    def reset(self) -> None:
        self._stft.reset()
        self._ema_zi = np.zeros(1)

    @property
    def n_frames(self) -> int:
        """Frames returned so far."""
        return self._stft.n_frames

    def frames_by(self, end_sample: int) -> int:
        """How many frames are complete once ``end_sample`` samples have been seen."""
        return self._stft.frames_by(end_sample)

    def process(self, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mels, powers = [], []
        for first, stop, frames, pspec in self._stft.process(block):
            m, p = self._frames(first, stop, frames, pspec)
            mels.append(m)
            powers.append(p)
        if not mels:
            return np.zeros((0, self.n_mels), np.float32), np.zeros(0)
        return np.concatenate(mels), np.concatenate(powers)

    def _frames(self, first: int, stop: int, frames: np.ndarray, pspec: np.ndarray):
        n_fft = self.n_fft
        # In float64, rounded to float32: a float32 product's rounding depends on how many
        # frames go to BLAS at once, and it must not (blocks of any size give the same bits).
        mel = (pspec @ self._mel_fb_t).astype(np.float32)
        power = np.einsum("ij,ij->i", frames, frames, dtype=np.float64) / (n_fft * self._win_power)
        # Bias-corrected running mean of the frame power (exact across chunks: one recursion).
        d = self._decay
        ema, self._ema_zi = one_pole(power, d, self._ema_zi)
        n = np.arange(first + 1, stop + 1, dtype=np.float64)
        ref = ema / -np.expm1(n * np.log(d))
        gain = (self._target / np.maximum(ref, self._floor)).astype(np.float32)
        logmel = np.log10(10000.0 * round_to_float16(mel * gain[:, None]) + 1.0)
        return logmel, power


class PowerFrames:
    """Windowed power spectra of a stream fed in blocks of any size: frame *i* covers
    samples ``[i * hop_length, i * hop_length + n_fft)`` (``center=False``).

    :meth:`process` yields ``(first, stop, frames, pspec)`` for each run of newly complete
    frames: their indices ``[first, stop)``, the windowed frames (float32 ``(n, n_fft)``)
    and their power spectra (float32 ``(n, n_fft // 2 + 1)``). At most ``chunk`` samples
    are framed at once, so memory stays bounded for any block size.
    """

    def __init__(self, *, n_fft: int, hop_length: int, window: np.ndarray, chunk: int = 32768):
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.window = np.asarray(window, np.float32)
        self.chunk = max(int(chunk), self.n_fft)
        self.reset()

    def reset(self) -> None:
        self._ring = RingBuffer(self.n_fft + self.chunk)
        self.n_frames = 0

    def frames_by(self, end_sample: int) -> int:
        """How many frames are complete once ``end_sample`` samples have been seen."""
        return 0 if end_sample < self.n_fft else (end_sample - self.n_fft) // self.hop_length + 1

    def process(self, block: np.ndarray):
        block = np.asarray(block, dtype=np.float32).reshape(-1)
        hop, n_fft = self.hop_length, self.n_fft
        for start in range(0, block.size, self.chunk):
            self._ring.write(block[start:start + self.chunk])
            ready = self.frames_by(self._ring.total)
            if ready > self.n_frames:
                first, self.n_frames = self.n_frames, ready
                span = self._ring.read(first * hop, (ready - first - 1) * hop + n_fft)
                frames = np.lib.stride_tricks.sliding_window_view(span, n_fft)[::hop] * self.window
                spec = scipy.fft.rfft(frames, axis=1)
                yield first, ready, frames, (spec.real ** 2 + spec.imag ** 2).astype(np.float32, copy=False)


#: Chroma front end of the ``tonal`` pool: 16 kHz, 4096-sample frames (0.26 s) every 1024.
CHROMA_FRONT_END = dict(sample_rate=16000, n_fft=4096, hop_length=1024)
#: The precomputed filterbank set that carries the chroma front end's matrices is keyed by
#: this mel band count (its mel part is unused).
CHROMA_N_MELS = 96


class ChromaFrontEnd:
    """Causal chroma frames (12 pitch classes, C first; librosa's chroma filterbank with
    tuning 0, each frame scaled to a maximum of 1 as ``librosa.feature.chroma_stft`` does;
    an all-zero frame stays zero). Level-independent by construction.

    :meth:`process` returns the new complete frames as float64 ``(n, 12)``; frame *i* ends
    at sample ``i * hop_length + n_fft``.
    """

    def __init__(self, *, sample_rate: int = 16000, n_fft: int = 4096, hop_length: int = 1024,
                 chunk: int = 32768):
        self.sample_rate, self.n_fft, self.hop_length = int(sample_rate), int(n_fft), int(hop_length)
        fb = filterbanks.load(sample_rate=self.sample_rate, n_fft=self.n_fft, n_mels=CHROMA_N_MELS, fmin=0.0)
        self._chroma_fb_t = np.ascontiguousarray(fb["chroma"].T, dtype=np.float64)  # (bins, 12)
        self._stft = PowerFrames(n_fft=self.n_fft, hop_length=self.hop_length, window=fb["window"], chunk=chunk)

    def reset(self) -> None:
        self._stft.reset()

    @property
    def n_frames(self) -> int:
        return self._stft.n_frames

    def frames_by(self, end_sample: int) -> int:
        return self._stft.frames_by(end_sample)

    def process(self, block: np.ndarray) -> np.ndarray:
        # In float64, rounded to float32 (as the mel product): BLAS's rounding may depend on
        # how many frames go at once, and the chroma must not (blocks of any size, same bits).
        out = [(pspec.astype(np.float64) @ self._chroma_fb_t).astype(np.float32).astype(np.float64)
               for _, _, _, pspec in self._stft.process(block)]
        if not out:
            return np.zeros((0, 12))
        c = np.concatenate(out)
        peak = c.max(axis=1, keepdims=True)
        return np.divide(c, peak, out=np.zeros_like(c), where=peak > 0)


#: Width of the ``tonal`` pool.
TONAL_WIDTH = 16


def pool_width(pool: str, n_embedding: int) -> int:
    """Values a pool adds to the head input: ``tonal`` :data:`TONAL_WIDTH`, the others one embedding."""
    return TONAL_WIDTH if pool == "tonal" else int(n_embedding)


def tonal_features(chroma: np.ndarray) -> np.ndarray:
    """Key and mode of a mean chroma vector (12,), as 16 values: the best correlation with
    a major and with a minor key profile, their difference (> 0: major), the pitch-class
    entropy (0 one pitch class ... 1 all alike), and the chroma's 12 shares rotated so that
    the best key's tonic comes first. All zeros for an all-zero chroma (silence)."""
    c = np.asarray(chroma, np.float64)
    total = c.sum()
    if not total > 0:
        return np.zeros(TONAL_WIDTH)
    c = c / total
    r = key_correlations(c)  # Krumhansl-Kessler profiles, shared with the hand-made extractor
    best = int(np.argmax(r))
    entropy = -(c * np.log(np.maximum(c, 1e-12))).sum() / np.log(12.0)
    r_major, r_minor = r[:12].max(), r[12:].max()
    return np.concatenate([[r_major, r_minor, r_major - r_minor, entropy], np.roll(c, -(best % 12))])


_F16_MIN_NORMAL = np.float32(2.0 ** -14)
_F16_OVERFLOW = np.float32(65520.0)  # the smallest magnitude that rounds to inf in float16


def round_to_float16(x: np.ndarray) -> np.ndarray:
    """float32 ``x`` rounded to the nearest float16 value (ties to even), as float32: what
    ``x.astype(np.float16).astype(np.float32)`` gives, bit for bit, without numpy's slow
    path for values below float16's normal range (10x slower; quiet bands are full of them).
    """
    x = np.asarray(x, np.float32)
    a = np.abs(x)
    bits = a.view(np.uint32)
    # Normal range: keep 10 of float32's 23 mantissa bits, rounding to nearest even.
    normal = ((bits + np.uint32(0x0FFF) + ((bits >> np.uint32(13)) & np.uint32(1)))
              & np.uint32(0xFFFFE000)).view(np.float32)
    # Subnormal range: multiples of 2^-24 (rint rounds ties to even).
    tiny = np.rint(a * np.float32(2.0 ** 24)) * np.float32(2.0 ** -24)
    out = np.where(a < _F16_MIN_NORMAL, tiny, normal)
    out[a >= _F16_OVERFLOW] = np.inf
    out[np.isnan(a)] = np.nan
    return np.copysign(out, x)


def one_pole(x: np.ndarray, decay: float, zi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``y[k] = decay * y[k-1] + (1 - decay) * x[k]`` from the state ``zi`` (``(1,)``, as
    ``scipy.signal.lfilter([1 - decay], [1, -decay], x, zi=zi)`` returns it, without
    importing scipy.signal, which costs the live start-up half a second): ``(y, zf)``.

    Vectorised over runs short enough that ``decay ** -run`` stays below 1e3."""
    x = np.asarray(x, np.float64)
    y = np.empty_like(x)
    run = int(max(1, min(1024, np.log(1e3) / -np.log(decay)))) if 0 < decay < 1 else 1
    z = float(zi[0]) / decay if decay > 0 else 0.0  # the last output y[-1]
    pw = decay ** np.arange(run + 1, dtype=np.float64)
    for a in range(0, x.size, run):
        seg = x[a:a + run]
        n = seg.size
        cs = np.cumsum(seg / pw[:n])
        y[a:a + n] = pw[1:n + 1] * z + (1.0 - decay) * pw[:n] * cs
        z = y[a + n - 1]
    return y, np.array([decay * z if x.size else zi[0]])


def patch_stack(logmel: np.ndarray, ends: np.ndarray, patch_frames: int) -> np.ndarray:
    """``(len(ends), patch_frames, n_mels)`` patches ending (exclusive) at frame ``ends``,
    left-padded with zeros (the log-mel of silence) where they start before frame 0."""
    logmel = np.asarray(logmel, dtype=np.float32)
    out = np.zeros((len(ends), patch_frames, logmel.shape[1]), np.float32)
    for i, e in enumerate(ends):
        s = e - patch_frames
        seg = logmel[max(s, 0):e]
        out[i, patch_frames - seg.shape[0]:] = seg
    return out


@dataclass(frozen=True)
class PatchOutput:
    """What the embedding network says about one patch."""

    end_frame: int
    embedding: np.ndarray  # (n_embedding,) float32
    tags: np.ndarray  # (n_tags,) probabilities
    speech: float  # probability that speech dominates the patch


class EmbeddingNetwork:
    """The ONNX embedding network on one intra-op thread, its metadata checked.

    Input ``melspec`` float32 ``(n, patch_frames, n_mels)``; outputs ``embedding``
    ``(n, n_embedding)``, ``tags`` ``(n, n_tags)`` (probabilities) and ``speech`` ``(n, 1)``.
    """

    REQUIRED = ("embedding_version", "sample_rate", "n_fft", "hop_length", "n_mels",
                "patch_frames", "norm_tau_s", "norm_db", "max_gain_db", "tag_names")

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._session = open_session(self.path, what="embedding model",
                                     missing="restore models/embedding.onnx or reinstall moodtrack",
                                     unreadable="restore models/embedding.onnx or reinstall moodtrack")
        meta = dict(self._session.get_modelmeta().custom_metadata_map)
        missing = [k for k in self.REQUIRED if k not in meta]
        if missing:
            raise MoodtrackError(f"embedding model {self.path} lacks metadata {', '.join(missing)}: "
                                 "it was not exported by tools/train_embedding.py")
        if meta["embedding_version"] != EMBEDDING_VERSION:
            raise MoodtrackError(
                f"embedding model {self.path} is {meta['embedding_version']!r} but this moodtrack "
                f"computes {EMBEDDING_VERSION!r} front ends; use a matching moodtrack version")
        self.metadata = meta
        import hashlib

        self.sha = hashlib.sha256(self.path.read_bytes()).hexdigest()[:16]
        try:
            self.front_end = {k: int(meta[k]) for k in ("sample_rate", "n_fft", "hop_length", "n_mels")}
            self.front_end.update({k: float(meta[k]) for k in ("norm_tau_s", "norm_db", "max_gain_db")})
            self.patch_frames = int(meta["patch_frames"])
        except ValueError as exc:
            raise MoodtrackError(f"embedding model {self.path} has malformed metadata ({exc})") from None
        if not (8000 <= self.front_end["sample_rate"] <= 48000 and self.patch_frames > 0
                and 0 < self.front_end["hop_length"] <= self.front_end["n_fft"]):
            raise MoodtrackError(f"embedding model {self.path} has out-of-range front-end metadata")
        self.tag_names = tuple(meta["tag_names"].split(",")) if meta["tag_names"] else ()
        self._outputs = [o.name for o in self._session.get_outputs()]
        for name in ("embedding", "tags", "speech"):
            if name not in self._outputs:
                raise MoodtrackError(f"embedding model {self.path} has no output {name!r}")
        self.n_embedding = int(self._session.get_outputs()[self._outputs.index("embedding")].shape[-1])

    def make_front_end(self) -> LogMelFrontEnd:
        return LogMelFrontEnd(**self.front_end)

    def run(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(embedding, tags, speech)`` for ``(n, patch_frames, n_mels)`` patches."""
        x = np.ascontiguousarray(patches, dtype=np.float32)
        emb, tags, speech = self._session.run(["embedding", "tags", "speech"], {"melspec": x})
        return emb, tags, speech.reshape(-1)


#: The pooled vectors a head can take, in the order they are concatenated.
POOLS = ("ctx_mean", "ctx_std", "short_mean", "short_rel", "ctx_mean_sw", "short_rel_sw", "tonal")
#: Least weight of a patch in the speech-weighted pools (``*_sw``): a patch that is all
#: speech still counts this much, so that dialogue alone gives the plain mean.
SPEECH_WEIGHT_FLOOR = 0.05


@dataclass(frozen=True)
class EmbeddingUpdate:
    """The head input of one mood update (duck-compatible with
    :class:`realtime.features.FeatureUpdate`), plus what the network said besides.

    ``features``: the pooled embeddings the head takes; ``level_db``: mean power of the
    last ``level_s`` seconds in dBFS (unnormalised input); ``speech``: speech probability
    of the newest patch; ``tags``: tag probabilities averaged over the context;
    ``context``: the embedding averaged over the context.
    """

    end_sample: int
    t: float
    features: np.ndarray
    level_db: float
    speech: float
    tags: np.ndarray
    context: np.ndarray  # mean embedding over the context (the genre head's input, with tags)


class EmbeddingExtractor:
    """Causal streaming embedding of mono float32 blocks at the network's sample rate.

    Keyword-only options (units as named):

    - ``update_hz``: mood updates per second of audio; update *k* describes the audio up
      to sample ``round(k * sample_rate / update_hz)``;
    - ``patch_hop_s``: seconds between network patches (patch *j* ends with the last frame
      complete at ``j * patch_hop_s``);
    - ``context_s`` / ``short_context_s``: seconds of patches pooled into ``ctx_*`` and
      ``short_*``; ``rel_tau_s``: time constant of the running mean that ``short_rel`` is
      relative to;
    - ``pools``: which of :data:`POOLS` the head takes (``*_sw``: the same pools with each
      patch weighted by ``max(1 - speech, SPEECH_WEIGHT_FLOOR)``, so that patches where
      dialogue speaks count less; ``tonal``: :func:`tonal_features` of the chroma of the
      context's patches, weighted the same way: key and mode, which the embedding
      hardly describes and which move valence in tonal music); ``min_context_s``: no update before
      this much audio; ``level_s``: seconds averaged for ``level_db``.
    """

    def __init__(self, network: EmbeddingNetwork, *, update_hz: float = 2.0,
                 patch_hop_s: float = 1.0, context_s: float = 10.0, short_context_s: float = 3.0,
                 rel_tau_s: float = 30.0, pools=("ctx_mean",), min_context_s: float = 1.0,
                 level_s: float = 0.5):
        if not 0 < update_hz <= 50:
            raise ValueError("update_hz must be in (0, 50]")
        if not 0 < patch_hop_s <= 10 or not 0 < short_context_s <= context_s <= 120:
            raise ValueError("patch_hop_s, short_context_s and context_s are out of range")
        bad = [p for p in pools if p not in POOLS]
        if bad or not pools:
            raise ValueError(f"unknown pools {bad}; choose from {POOLS}")
        self.network = network
        self.front = network.make_front_end()
        self.sample_rate = self.front.sample_rate
        self.update_hz = float(update_hz)
        self.patch_hop_s = float(patch_hop_s)
        self.context_s = float(context_s)
        self.short_context_s = float(short_context_s)
        self.rel_tau_s = float(rel_tau_s)
        self.pools = tuple(pools)
        self.min_context_s = float(min_context_s)
        self.level_s = float(level_s)
        self.patch_frames = network.patch_frames
        fps = self.front.frames_per_second
        self._n_level = max(1, int(round(self.level_s * fps)))
        self._n_ctx = max(1, int(round(self.context_s / self.patch_hop_s)))
        self._n_short = max(1, min(self._n_ctx, int(round(self.short_context_s / self.patch_hop_s))))
        self._rel_decay = float(np.exp(-self.patch_hop_s / self.rel_tau_s))
        self._frame_cap = self.patch_frames + self.front._chunk // self.front.hop_length + 2
        self.chroma = (ChromaFrontEnd(**{**CHROMA_FRONT_END, "sample_rate": self.sample_rate},
                                      chunk=self.front._chunk) if "tonal" in self.pools else None)
        self.reset()

    # ----------------------------------------------------------------- public API
    @property
    def n_features(self) -> int:
        return sum(pool_width(p, self.network.n_embedding) for p in self.pools)

    def spec(self) -> dict[str, str]:
        """What a head must have been trained with: compared against its ONNX metadata."""
        return {
            "embedding_version": EMBEDDING_VERSION,
            "embedding_sha": self.network.sha,
            "patch_hop_s": f"{self.patch_hop_s:g}",
            "context_s": f"{self.context_s:g}",
            "short_context_s": f"{self.short_context_s:g}",
            "rel_tau_s": f"{self.rel_tau_s:g}",
            "pools": ",".join(self.pools),
        }

    def reset(self) -> None:
        """Forget all audio: the next sample is sample 0 of a new stream."""
        self.front.reset()
        n_mels = self.front.n_mels
        self._logmel = np.zeros((self._frame_cap, n_mels), np.float32)
        self._power = np.zeros(self._frame_cap, np.float64)
        self._total = 0  # samples consumed
        self._k_update = 1
        self._j_patch = 1
        e = self.network.n_embedding
        self._emb = np.zeros((self._n_ctx, e), np.float32)  # ring of the newest patch embeddings
        self._tags = np.zeros((self._n_ctx, len(self.network.tag_names) or 1), np.float32)
        self._weight = np.zeros(self._n_ctx, np.float64)  # ring of the patches' speech weights
        self._speech = 0.0
        self._n_patches = 0
        self._rel_state = np.zeros(e, np.float64)
        self._relw_state = np.zeros(e, np.float64)  # speech-weighted running sum ...
        self._relw_norm = 0.0  # ... and its running weight
        if self.chroma is not None:
            self.chroma.reset()
            hop = self.chroma.hop_length
            cap = self.front._chunk // hop + int(self.patch_hop_s * self.sample_rate) // hop + 4
            self._chroma_frames = np.zeros((cap, 12))  # ring of chroma frames not yet in a patch
            self._chroma_done = 0  # chroma frames already summed into a patch
            self._chroma = np.zeros((self._n_ctx, 12))  # ring of the patches' summed chroma
            self._tonal = np.zeros(TONAL_WIDTH)  # the tonal pool as of the newest patch

    def process(self, block: np.ndarray) -> list[EmbeddingUpdate]:
        """Consume a mono block (any length) and return the updates it completes, in order."""
        block = np.asarray(block, dtype=np.float32).reshape(-1)
        out: list[EmbeddingUpdate] = []
        step = self.front._chunk
        for start in range(0, block.size, step):
            self._consume(block[start:start + step], out)
        return out

    # ---------------------------------------------------------------- internals

    def _consume(self, chunk: np.ndarray, out: list[EmbeddingUpdate]) -> None:
        first = self.front.n_frames
        logmel, power = self.front.process(chunk)
        idx = np.arange(first, first + logmel.shape[0]) % self._frame_cap
        self._logmel[idx] = logmel
        self._power[idx] = power
        if self.chroma is not None:
            c_first = self.chroma.n_frames
            c = self.chroma.process(chunk)
            self._chroma_frames[np.arange(c_first, c_first + len(c)) % len(self._chroma_frames)] = c
        # Patches and updates interleave in time order.
        total = self._total + chunk.size
        while True:
            p_end = int(round(self._j_patch * self.patch_hop_s * self.sample_rate))
            u_end = int(round(self._k_update * self.sample_rate / self.update_hz))
            if min(p_end, u_end) > total:
                break
            if p_end <= u_end:
                self._patch(p_end)
                self._j_patch += 1
            else:
                self._k_update += 1
                if u_end >= self.min_context_s * self.sample_rate and self._n_patches:
                    out.append(self._update(u_end))
        self._total = total

    def _patch(self, end_sample: int) -> None:
        end_frame = self.front.frames_by(end_sample)
        n = self.patch_frames
        patch = np.zeros((1, n, self.front.n_mels), np.float32)
        have = min(end_frame, n)
        if have:
            idx = np.arange(end_frame - have, end_frame) % self._frame_cap
            patch[0, n - have:] = self._logmel[idx]
        emb, tags, speech = self.network.run(patch)
        slot = self._n_patches % self._n_ctx
        self._emb[slot] = emb[0]
        if tags.shape[1]:
            self._tags[slot] = tags[0]
        self._speech = float(speech[0])
        w = max(1.0 - self._speech, SPEECH_WEIGHT_FLOOR)
        self._weight[slot] = w
        if self.chroma is not None:  # the chroma frames complete by the patch's end
            stop = self.chroma.frames_by(end_sample)
            idx = np.arange(self._chroma_done, stop) % len(self._chroma_frames)
            self._chroma[slot] = self._chroma_frames[idx].sum(axis=0)
            self._chroma_done = stop
        self._n_patches += 1
        if self.chroma is not None:  # changes only with a patch: computed here, not per update
            ws = self._recent(self._weight, self._n_ctx)
            self._tonal = tonal_features((ws[:, None] * self._recent(self._chroma, self._n_ctx)).sum(axis=0))
        d = self._rel_decay
        self._rel_state = d * self._rel_state + (1.0 - d) * emb[0]
        self._relw_state = d * self._relw_state + (1.0 - d) * w * emb[0]
        self._relw_norm = d * self._relw_norm + (1.0 - d) * w

    def _recent(self, ring: np.ndarray, k: int) -> np.ndarray:
        k = min(k, self._n_patches)
        idx = (self._n_patches - 1 - np.arange(k)) % self._n_ctx
        return ring[idx]

    def _update(self, end: int) -> EmbeddingUpdate:
        ctx = self._recent(self._emb, self._n_ctx).astype(np.float64)
        short = self._recent(self._emb, self._n_short).astype(np.float64)
        ctx_mean = ctx.mean(axis=0)
        parts = []
        for p in self.pools:
            if p == "ctx_mean":
                parts.append(ctx_mean)
            elif p == "ctx_std":
                parts.append(ctx.std(axis=0))
            elif p == "short_mean":
                parts.append(short.mean(axis=0))
            elif p == "short_rel":  # relative to the bias-corrected running mean
                ref = self._rel_state / (1.0 - self._rel_decay ** self._n_patches)
                parts.append(short.mean(axis=0) - ref)
            elif p == "tonal":
                parts.append(self._tonal)
            elif p == "ctx_mean_sw":
                w = self._recent(self._weight, self._n_ctx)
                parts.append((w[:, None] * ctx).sum(axis=0) / w.sum())  # (not BLAS: bit-reproducible)
            else:  # short_rel_sw: weighted short mean relative to the weighted running mean
                w = self._recent(self._weight, self._n_short)
                parts.append((w[:, None] * short).sum(axis=0) / w.sum() - self._relw_state / self._relw_norm)
        n_avail = self.front.frames_by(end)
        n_level = min(self._n_level, n_avail)
        lidx = np.arange(n_avail - n_level, n_avail) % self._frame_cap
        level = float(self._power[lidx].mean()) if n_level else 0.0
        tags = self._recent(self._tags, self._n_ctx).mean(axis=0)
        return EmbeddingUpdate(end_sample=end, t=end / self.sample_rate,
                               features=np.concatenate(parts).astype(np.float32),
                               level_db=float(10.0 * np.log10(max(level, 1e-10))),
                               speech=self._speech, tags=tags.astype(np.float32),
                               context=ctx_mean.astype(np.float32))


def extract(samples: np.ndarray, network: EmbeddingNetwork, **options):
    """``(t, X, level_db, speech, tags)`` of a whole signal, through the streaming extractor."""
    ex = EmbeddingExtractor(network, **options)
    ups = ex.process(samples)
    if not ups:
        n = ex.n_features
        return (np.zeros(0), np.zeros((0, n), np.float32), np.zeros(0), np.zeros(0),
                np.zeros((0, len(network.tag_names)), np.float32))
    return (np.array([u.t for u in ups]), np.stack([u.features for u in ups]),
            np.array([u.level_db for u in ups]), np.array([u.speech for u in ups]),
            np.stack([u.tags for u in ups]))
