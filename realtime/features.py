"""Streaming, causal feature extraction: mono samples in, one feature vector per mood update out.

One STFT per frame (``center=False``, Hann window) feeds every spectral feature; frame
features go into a fixed-size frame ring; at each update instant the window statistics
over the model's context are computed from that ring. Levels use a fixed reference
(0 dBFS = a full-scale square wave), there is no tuning estimation and no statistic of
the whole signal, so the result at time *t* depends only on audio before *t* and a file
fed in blocks of any size gives the same vectors as the whole file at once.

This module is the single feature implementation: ``tools/`` trains on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft

from realtime import filterbanks

from realtime.ringbuffer import RingBuffer

FEATURE_VERSION = "mt-feat-4"

#: Names of the per-frame features that get window statistics (chroma is handled apart).
FRAME_NAMES: tuple[str, ...] = (
    *(f"mfcc{i:02d}" for i in range(20)),
    *(f"contrast{i}" for i in range(7)),
    "centroid", "bandwidth", "rolloff", "flatness", "rms_db", "zcr", "flux",
    "flux_low", "flux_high", "dissonance", "pitch_height",
)
_N_FRAME = len(FRAME_NAMES)
_N_CHROMA = 12
_I_RMS = FRAME_NAMES.index("rms_db")
_I_FLUX = FRAME_NAMES.index("flux")
_I_FLUX_LOW = FRAME_NAMES.index("flux_low")
_I_FLUX_HIGH = FRAME_NAMES.index("flux_high")
_I_DISSONANCE = FRAME_NAMES.index("dissonance")
_I_PITCH = FRAME_NAMES.index("pitch_height")
_N_MFCC_DELTA = 13
#: Frame features whose 3-s mean is also given relative to their slow running mean.
RELATIVE_NAMES: tuple[str, ...] = ("rms_db", "centroid", "flux", "flatness", "dissonance", "pitch_height")
_I_RELATIVE = np.array([FRAME_NAMES.index(n) for n in RELATIVE_NAMES])
#: Time constant of that running mean (seconds).
RELATIVE_TAU_S = 30.0
#: Magnitude floor for spectral contrast and dissonance peaks: 114 dB below the peak bin of
#: a full-scale sine (magnitude 512 with the 2048 Hann window), far above FFT rounding, so
#: near-empty bands do not depend on it.
_MAG_FLOOR = 1e-3
#: Spectral peaks per frame used by the sensory dissonance, and their range (Hz).
_N_PEAKS = 12
_PEAK_RANGE_HZ = (50.0, 5000.0)

#: Window-level feature names, in the order of the vector a model receives.
FEATURE_NAMES: tuple[str, ...] = (
    *(f"{n}_mean" for n in FRAME_NAMES),
    *(f"{n}_std" for n in FRAME_NAMES),
    *(f"{n}_short" for n in FRAME_NAMES),
    "key_major", "key_minor", "mode", "mode_short", "key_clarity", "chroma_flux",
    "tempo_log2", "pulse_clarity", "onset_density",
    "dyn_range_db", "rms_delta_std",
    # mt-feat-2: timbre change, key-relative pitch-class profile, chord-level mode, tonalness.
    *(f"mfcc_delta{i:02d}" for i in range(_N_MFCC_DELTA)),
    *(f"chroma_rel{i:02d}" for i in range(_N_CHROMA)),
    "triad_major", "triad_minor", "triad_mode", "chroma_entropy", "low_energy",
    # mt-feat-4: 3-s means relative to the running mean of the stream (within-piece change).
    *(f"{n}_rel" for n in RELATIVE_NAMES),
)

# Krumhansl-Kessler key profiles, C major and C minor.
_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def _key_matrix() -> np.ndarray:
    """24 x 12 z-scored key profiles (12 major rotations then 12 minor)."""
    rows = [np.roll(p, k) for p in (_MAJOR, _MINOR) for k in range(12)]
    m = np.array(rows)
    m = (m - m.mean(axis=1, keepdims=True)) / m.std(axis=1, keepdims=True)
    return m.astype(np.float64)


_KEYS = _key_matrix()


def _triad_matrix() -> np.ndarray:
    """24 x 12 z-scored triad templates (12 major then 12 minor), divided by 12."""
    rows = []
    for third in (4, 3):
        for k in range(12):
            t = np.zeros(12)
            t[[k, (k + third) % 12, (k + 7) % 12]] = 1.0
            rows.append(t)
    m = np.array(rows)
    return ((m - m.mean(axis=1, keepdims=True)) / m.std(axis=1, keepdims=True) / 12.0).astype(np.float64)


_TRIADS = _triad_matrix()


@dataclass(frozen=True)
class FeatureUpdate:
    """The features of one mood update.

    ``end_sample`` is the absolute index one past the last sample the update describes;
    ``t`` is the same instant in seconds of audio since the start of the stream.
    ``level_db`` is the mean power of the last ``level_s`` seconds in dBFS.
    """

    end_sample: int
    t: float
    features: np.ndarray
    level_db: float


class FeatureExtractor:
    """Causal streaming extractor. Feed mono float32 blocks at ``sample_rate`` Hz.

    Keyword-only options (all in the units named):

    - ``sample_rate`` (Hz), ``n_fft`` and ``hop_length`` (samples), ``n_mels`` (bands);
    - ``context_s``: seconds of frames the window statistics cover;
    - ``short_context_s``: seconds covered by the ``*_short`` means;
    - ``update_hz``: mood updates per second of audio; update *k* (k >= 1) describes the
      audio up to sample ``round(k * sample_rate / update_hz)``;
    - ``min_context_s``: no update is emitted before this much audio has arrived;
    - ``level_s``: seconds averaged for ``level_db``.
    """

    def __init__(
        self,
        *,
        sample_rate: int = 22050,
        n_fft: int = 2048,
        hop_length: int = 512,
        n_mels: int = 64,
        context_s: float = 10.0,
        short_context_s: float = 3.0,
        update_hz: float = 2.0,
        min_context_s: float = 1.0,
        level_s: float = 0.5,
        chunk: int = 65536,
    ):
        if not 0 < update_hz <= 50:
            raise ValueError("update_hz must be in (0, 50]")
        self.sample_rate = int(sample_rate)
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.n_mels = int(n_mels)
        self.context_s = float(context_s)
        self.short_context_s = float(short_context_s)
        self.update_hz = float(update_hz)
        self.min_context_s = float(min_context_s)
        self.level_s = float(level_s)
        self._chunk = max(int(chunk), self.hop_length)

        sr, n_fft = self.sample_rate, self.n_fft
        fb = filterbanks.load(sample_rate=sr, n_fft=n_fft, n_mels=self.n_mels, fmin=30.0)
        self._window = fb["window"]
        self._mel_fb_t = np.ascontiguousarray(fb["mel"].T)  # (bins, n_mels)
        self._chroma_fb_t = np.ascontiguousarray(fb["chroma"].T)  # (bins, 12)
        self._freqs = fb["freqs"]
        self._contrast_bands = _contrast_bands(self._freqs)
        mel_centres = fb["mel_centres"]
        self._mel_low = mel_centres < 250.0
        self._mel_high = mel_centres > 4000.0
        # Register: power-weighted mean log2 frequency of the mel bands in 100..2000 Hz.
        self._pitch_bands = (mel_centres >= 100.0) & (mel_centres <= 2000.0)
        self._pitch_log2 = np.log2(mel_centres[self._pitch_bands] / 440.0)
        lo, hi = np.searchsorted(self._freqs, _PEAK_RANGE_HZ)
        self._peak_bins = (int(max(lo, 1)), int(min(hi, self._freqs.size - 1)))
        self._peak_tiebreak = -np.arange(1, self._peak_bins[1] - self._peak_bins[0] + 1, dtype=np.float32)

        fps = sr / self.hop_length
        self.frames_per_second = fps
        self._n_ctx = max(1, int(round(self.context_s * fps)))
        self._n_short = max(1, min(self._n_ctx, int(round(self.short_context_s * fps))))
        self._n_level = max(1, int(round(self.level_s * fps)))
        # Tempo search range 50..220 BPM in frame lags.
        self._lag_min = int(np.floor(60.0 * fps / 220.0))
        self._lag_max = int(np.ceil(60.0 * fps / 50.0))
        self._ema_decay = float(np.exp(-1.0 / (RELATIVE_TAU_S * fps)))

        self._ring = RingBuffer(self.n_fft + self._chunk)
        # Frame-feature ring: context frames plus the frames one chunk can add.
        self._frame_cap = self._n_ctx + self._chunk // self.hop_length + 2
        self._frame_feat = np.zeros((self._frame_cap, _N_FRAME), dtype=np.float32)
        self._frame_chroma = np.zeros((self._frame_cap, _N_CHROMA), dtype=np.float32)
        self._frame_power = np.zeros(self._frame_cap, dtype=np.float64)
        # Per-frame chord statistics (see _chord_stats): tonal, major, minor, maj-min, entropy.
        self._frame_chord = np.zeros((self._frame_cap, 5), dtype=np.float64)
        # Bias-corrected running mean of the RELATIVE_NAMES features at every frame.
        self._frame_ema = np.zeros((self._frame_cap, len(RELATIVE_NAMES)), dtype=np.float64)
        self.reset()

    # ----------------------------------------------------------------- public API
    @property
    def n_features(self) -> int:
        return len(FEATURE_NAMES)

    def spec(self) -> dict[str, str]:
        """What a model must have been trained with: compared against ONNX metadata."""
        return {
            "feature_version": FEATURE_VERSION,
            "sample_rate": str(self.sample_rate),
            "n_fft": str(self.n_fft),
            "hop_length": str(self.hop_length),
            "n_mels": str(self.n_mels),
            "context_s": f"{self.context_s:g}",
            "short_context_s": f"{self.short_context_s:g}",
            "feature_names": ",".join(FEATURE_NAMES),
        }

    def reset(self) -> None:
        """Forget all audio: the next sample is sample 0 of a new stream."""
        self._ring = RingBuffer(self._ring.capacity)
        self._n_frames = 0  # frames computed so far
        self._prev_logmel: np.ndarray | None = None
        self._prev_chroma: np.ndarray | None = None
        self._chroma_delta = np.zeros(self._frame_cap, dtype=np.float32)
        self._k_update = 1
        self._ema_state = np.zeros(len(RELATIVE_NAMES))  # un-normalised running mean

    def update_end(self, k: int) -> int:
        """Absolute end sample of update ``k`` (k >= 1)."""
        return int(round(k * self.sample_rate / self.update_hz))

    def process(self, block: np.ndarray) -> list[FeatureUpdate]:
        """Consume a mono block (any length) and return the updates it completes, in order."""
        block = np.asarray(block, dtype=np.float32).reshape(-1)
        out: list[FeatureUpdate] = []
        for start in range(0, block.size, self._chunk):
            self._consume(block[start:start + self._chunk], out)
        return out

    # ---------------------------------------------------------------- internals
    def _consume(self, chunk: np.ndarray, out: list[FeatureUpdate]) -> None:
        self._ring.write(chunk)
        total = self._ring.total
        n_ready = self._frames_complete_by(total)
        if n_ready > self._n_frames:
            self._compute_frames(self._n_frames, n_ready)
        min_samples = max(self.n_fft, int(round(self.min_context_s * self.sample_rate)))
        while (end := self.update_end(self._k_update)) <= total:
            self._k_update += 1
            if end < min_samples:
                continue
            out.append(self._window_update(end))

    def _frames_complete_by(self, end_sample: int) -> int:
        if end_sample < self.n_fft:
            return 0
        return (end_sample - self.n_fft) // self.hop_length + 1

    def _compute_frames(self, first: int, stop: int) -> None:
        hop, n_fft = self.hop_length, self.n_fft
        span = self._ring.read(first * hop, (stop - first - 1) * hop + n_fft)
        frames = np.lib.stride_tricks.sliding_window_view(span, n_fft)[::hop]
        feat, chroma, power, logmel = self._frame_features(frames)

        # Spectral flux needs the previous frame: carried across chunks.
        prev = self._prev_logmel if self._prev_logmel is not None else logmel[:1]
        diff = np.diff(np.vstack([prev, logmel]), axis=0)
        rise = np.maximum(diff, 0.0)
        feat[:, _I_FLUX] = rise.mean(axis=1)
        feat[:, _I_FLUX_LOW] = rise[:, self._mel_low].mean(axis=1) if self._mel_low.any() else 0.0
        feat[:, _I_FLUX_HIGH] = rise[:, self._mel_high].mean(axis=1) if self._mel_high.any() else 0.0
        self._prev_logmel = logmel[-1:].copy()
        prev_c = self._prev_chroma if self._prev_chroma is not None else chroma[:1]
        cdelta = np.abs(np.diff(np.vstack([prev_c, chroma]), axis=0)).sum(axis=1)
        self._prev_chroma = chroma[-1:].copy()

        idx = np.arange(first, stop) % self._frame_cap
        self._frame_feat[idx] = feat
        self._frame_chroma[idx] = chroma
        self._frame_chord[idx] = _chord_stats(chroma)
        self._frame_power[idx] = power
        self._chroma_delta[idx] = cdelta
        self._frame_ema[idx] = self._running_mean(feat[:, _I_RELATIVE], first)
        self._n_frames = stop

    def _running_mean(self, x: np.ndarray, first: int) -> np.ndarray:
        """Exponential running mean (time constant RELATIVE_TAU_S) of frames ``first``..,
        bias-corrected so that early frames get the plain mean of the stream so far."""
        if x.shape[0] > 256:  # keep d^-k near 1 (see below)
            return np.vstack([self._running_mean(x[i:i + 256], first + i) for i in range(0, x.shape[0], 256)])
        d = self._ema_decay
        k = np.arange(1, x.shape[0] + 1, dtype=np.float64)[:, None]
        # m_k = d^k * (m_0 + (1 - d) * sum_{j<=k} d^-j x_j), exact to rounding for k <= 256.
        m = d ** k * (self._ema_state[None, :] + (1.0 - d) * np.cumsum(d ** -k * x, axis=0))
        self._ema_state = m[-1].copy()
        n = np.arange(first + 1, first + 1 + x.shape[0], dtype=np.float64)
        return m / -np.expm1(n * np.log(d))[:, None]

    def _frame_features(self, frames: np.ndarray):
        """Per-frame features of an (n, n_fft) frame matrix."""
        sr = self.sample_rate
        spec = scipy.fft.rfft(frames * self._window, axis=1)
        mag = np.abs(spec).astype(np.float32)  # (n, bins)
        pw = mag * mag
        mel = pw @ self._mel_fb_t
        logmel = 10.0 * np.log10(np.maximum(mel, 1e-10))  # fixed reference: 1.0
        # librosa.feature.mfcc(S=logmel): an orthonormal DCT-II of the log-mel spectrum.
        mfcc = scipy.fft.dct(logmel, type=2, norm="ortho", axis=1)[:, :20]
        contrast = self._contrast(mag)
        centroid, bandwidth, rolloff, flatness = spectral_shape(mag, self._freqs)
        power = np.mean(frames.astype(np.float64) ** 2, axis=1)
        rms_db = 10.0 * np.log10(np.maximum(power, 1e-10))
        signs = np.signbit(frames)
        zcr = np.mean(signs[:, 1:] != signs[:, :-1], axis=1)
        raw = pw @ self._chroma_fb_t  # (n, 12); normalised to a peak of 1 as librosa does
        peak = raw.max(axis=1, keepdims=True)
        chroma = raw / np.where(peak < np.finfo(np.float32).tiny, 1.0, peak)

        nyq = sr / 2.0
        feat = np.empty((frames.shape[0], _N_FRAME), dtype=np.float32)
        feat[:, 0:20] = mfcc / 10.0
        feat[:, 20:27] = contrast / 10.0
        feat[:, 27] = centroid / nyq
        feat[:, 28] = bandwidth / nyq
        feat[:, 29] = rolloff / nyq
        feat[:, 30] = np.log10(np.maximum(flatness, 1e-10))
        feat[:, 31] = rms_db / 10.0
        feat[:, 32] = zcr
        feat[:, 33:36] = 0.0  # flux, flux_low, flux_high: filled by the caller
        feat[:, _I_DISSONANCE] = self._dissonance(mag)
        pm = mel[:, self._pitch_bands]
        psum = pm.sum(axis=1)
        quiet = psum < 1e-8
        feat[:, _I_PITCH] = np.where(quiet, 0.0, (pm @ self._pitch_log2) / np.where(quiet, 1.0, psum))
        return feat, chroma.astype(np.float32), power, logmel

    def _contrast(self, mag: np.ndarray) -> np.ndarray:
        """Octave-band spectral contrast (dB), as librosa's but with a fixed reference.

        librosa's ``spectral_contrast`` clips with ``top_db`` relative to the loudest
        value of the batch it is given, which would make a frame depend on its neighbours.
        """
        out = np.empty((mag.shape[0], len(self._contrast_bands)), dtype=np.float32)
        for k, (lo, hi, q) in enumerate(self._contrast_bands):
            band = np.sort(mag[:, lo:hi], axis=1)
            valley = band[:, :q].mean(axis=1)
            peak = band[:, -q:].mean(axis=1)
            out[:, k] = 10.0 * (np.log10(np.maximum(peak, _MAG_FLOOR)) - np.log10(np.maximum(valley, _MAG_FLOOR)))
        return out

    def _dissonance(self, mag: np.ndarray) -> np.ndarray:
        """Sensory dissonance of each frame (Sethares' Plomp-Levelt model) over its
        strongest spectral peaks in 50..5000 Hz, amplitudes normalised to sum 1."""
        lo, hi = self._peak_bins
        m = mag[:, lo:hi]
        peak = (m > mag[:, lo - 1:hi - 1]) & (m >= mag[:, lo + 1:hi + 1]) & (m > _MAG_FLOOR)
        # Non-peaks get distinct negative values: argpartition is slow on many ties.
        m = np.where(peak, m, self._peak_tiebreak)
        k = min(_N_PEAKS, m.shape[1])
        top = np.argpartition(m, m.shape[1] - k, axis=1)[:, -k:]
        amp = np.maximum(np.take_along_axis(m, top, axis=1), 0.0).astype(np.float64)
        f = self._freqs[lo:hi][top]
        total = amp.sum(axis=1, keepdims=True)
        amp = amp / np.where(total > 0, total, 1.0)
        f1 = np.minimum(f[:, :, None], f[:, None, :])
        df = np.abs(f[:, :, None] - f[:, None, :])
        s = 0.24 / (0.0207 * f1 + 18.96)
        d = np.exp(-3.51 * s * df) - np.exp(-5.75 * s * df)
        w = np.minimum(amp[:, :, None], amp[:, None, :])
        return 0.5 * (w * d).sum(axis=(1, 2))

    def _window_update(self, end: int) -> FeatureUpdate:
        n_avail = self._frames_complete_by(end)
        n = min(self._n_ctx, n_avail)
        idx = np.arange(n_avail - n, n_avail) % self._frame_cap
        f = self._frame_feat[idx].astype(np.float64)
        short = f[-self._n_short:]
        chroma = self._frame_chroma[idx].astype(np.float64)

        key_r = key_correlations(chroma.mean(axis=0))
        key_short = key_correlations(chroma[-self._n_short:].mean(axis=0))
        best_major, best_minor = key_r[:12].max(), key_r[12:].max()
        mode_short = key_short[:12].max() - key_short[12:].max()
        chroma_flux = float(self._chroma_delta[idx].mean())

        tempo, clarity = self._rhythm(f[:, _I_FLUX])
        flux = f[:, _I_FLUX]
        onset_density = float(np.mean(flux > flux.mean() + flux.std())) if n > 1 else 0.0
        rms = f[:, _I_RMS] * 10.0
        p10, p90 = np.percentile(rms, [10, 90])
        rms_delta_std = float(np.std(np.diff(rms))) / 10.0 if n > 2 else 0.0

        # Timbre change: mean |frame-to-frame MFCC change| over the context.
        mfcc = f[:, :_N_MFCC_DELTA]
        mfcc_delta = np.abs(np.diff(mfcc, axis=0)).mean(axis=0) if n > 1 else np.zeros(_N_MFCC_DELTA)
        # Pitch-class profile relative to the estimated tonic (sums to 1).
        cmean = chroma.mean(axis=0)
        tonic = int(np.argmax(key_r)) % 12
        csum = cmean.sum()
        chroma_rel = np.roll(cmean, -tonic) / csum if csum > 1e-9 else np.zeros(_N_CHROMA)
        # Chord-level mode and chroma entropy over the tonal frames (per-frame values
        # computed once per frame by _chord_stats).
        chord = self._frame_chord[idx]
        tonal = chord[:, 0] > 0
        n_tonal = int(tonal.sum())
        n_t = max(n_tonal, 1)
        triad_major = float(chord[:, 1].sum()) / n_t
        triad_minor = float(chord[:, 2].sum()) / n_t
        triad_mode = float(chord[tonal, 3].mean()) if n_tonal else 0.0
        chroma_entropy = float(chord[tonal, 4].mean()) if n_tonal else 1.0
        low_energy = float(np.mean(rms < rms.mean())) if n > 1 else 0.0

        vec = np.concatenate([
            f.mean(axis=0), f.std(axis=0), short.mean(axis=0),
            [best_major, best_minor, best_major - best_minor, mode_short, key_r.max(), chroma_flux,
             tempo, clarity, onset_density, (p90 - p10) / 10.0, rms_delta_std],
            mfcc_delta, chroma_rel,
            [triad_major, triad_minor, triad_mode, chroma_entropy, low_energy],
            short[:, _I_RELATIVE].mean(axis=0) - self._frame_ema[idx[-1]],
        ]).astype(np.float32)

        n_level = min(self._n_level, n_avail)
        lidx = np.arange(n_avail - n_level, n_avail) % self._frame_cap
        level_db = float(10.0 * np.log10(max(self._frame_power[lidx].mean(), 1e-10)))
        return FeatureUpdate(end_sample=end, t=end / self.sample_rate, features=vec, level_db=level_db)

    def _rhythm(self, flux: np.ndarray) -> tuple[float, float]:
        """Tempo (log2 of BPM/120) and pulse clarity from the onset-strength autocorrelation."""
        n = flux.size
        if n <= self._lag_max + 1:
            return 0.0, 0.0
        x = flux - flux.mean()
        spec = scipy.fft.rfft(x, 2 * n)
        ac = scipy.fft.irfft(spec * np.conj(spec))[: self._lag_max + 1]
        if ac[0] <= 1e-12:
            return 0.0, 0.0
        ac = ac / ac[0]
        lag = self._lag_min + int(np.argmax(ac[self._lag_min:self._lag_max + 1]))
        bpm = 60.0 * self.frames_per_second / lag
        return float(np.log2(bpm / 120.0)), float(ac[lag])


def spectral_shape(mag: np.ndarray, freqs: np.ndarray):
    """Spectral centroid, bandwidth (Hz), 85 % roll-off (Hz) and flatness of each frame.

    ``mag``: (frames, bins) magnitudes; ``freqs``: (bins,) Hz. The formulas of librosa's
    ``spectral_centroid``, ``spectral_bandwidth``, ``spectral_rolloff`` and
    ``spectral_flatness`` (tests compare them), vectorised over a batch of frames.
    """
    total = mag.sum(axis=1, keepdims=True)
    small = total < np.finfo(mag.dtype).tiny
    norm = mag / np.where(small, 1.0, total)
    centroid = norm @ freqs
    bandwidth = np.sqrt(np.einsum("fb,fb->f", norm, (freqs[None, :] - centroid[:, None]) ** 2))
    cum = np.cumsum(mag, axis=1)
    rolloff = freqs[np.argmax(cum >= 0.85 * cum[:, -1:], axis=1)]
    p = np.maximum(np.float32(1e-10), mag * mag)  # float32, as librosa computes it
    flatness = np.exp(np.mean(np.log(p), axis=1)) / np.mean(p, axis=1)
    return centroid, bandwidth, rolloff, flatness


def _chord_stats(chroma: np.ndarray) -> np.ndarray:
    """(frames, 5): tonal flag, strong-major flag, strong-minor flag, best major minus best
    minor triad correlation, and normalised chroma entropy of each chroma frame."""
    c = chroma.astype(np.float64)
    cz = c - c.mean(axis=1, keepdims=True)
    csd = cz.std(axis=1, keepdims=True)
    tonal = csd[:, 0] > 1e-6
    tri = (cz / np.maximum(csd, 1e-6)) @ _TRIADS.T  # (n, 24), Pearson r per frame
    maj, mnr = tri[:, :12].max(axis=1), tri[:, 12:].max(axis=1)
    strong = tonal & (np.maximum(maj, mnr) > 0.5)
    p = c / np.maximum(c.sum(axis=1, keepdims=True), 1e-9)
    ent = -(p * np.log(np.maximum(p, 1e-12))).sum(axis=1) / np.log(_N_CHROMA)
    return np.stack([tonal, strong & (maj >= mnr), strong & (mnr > maj), maj - mnr, ent], axis=1)


def _contrast_bands(freqs: np.ndarray, *, fmin: float = 200.0, n_bands: int = 6,
                    quantile: float = 0.02) -> list[tuple[int, int, int]]:
    """(first bin, stop bin, quantile count) of each octave band, following librosa."""
    octa = np.zeros(n_bands + 2)
    octa[1:] = fmin * (2.0 ** np.arange(0, n_bands + 1))
    bands = []
    for k, (f_low, f_high) in enumerate(zip(octa[:-1], octa[1:])):
        current = np.logical_and(freqs >= f_low, freqs <= f_high)
        idx = np.flatnonzero(current)
        if k > 0:
            current[idx[0] - 1] = True
        if k == n_bands:
            current[idx[0] + 1:] = True
        sel = np.flatnonzero(current)
        lo, hi = int(sel[0]), int(sel[-1]) + 1
        q = max(int(np.rint(quantile * current.sum())), 1)
        if k < n_bands:
            hi -= 1
        bands.append((lo, hi, q))
    return bands


def key_correlations(chroma_mean: np.ndarray) -> np.ndarray:
    """Pearson correlation of a mean chroma vector with the 24 key profiles (12 major keys
    from C, then 12 minor); zeros for a flat chroma."""
    c = chroma_mean - chroma_mean.mean()
    sd = c.std()
    if sd < 1e-9:
        return np.zeros(24)
    return _KEYS @ (c / sd) / 12.0


def extract(samples: np.ndarray, **options) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run a whole mono signal through a fresh extractor.

    Returns ``(t, features, level_db)``: update times in seconds (n,), the feature
    matrix (n, n_features) and levels in dBFS (n,).
    """
    ex = FeatureExtractor(**options)
    ups = ex.process(samples)
    if not ups:
        return np.zeros(0), np.zeros((0, ex.n_features), np.float32), np.zeros(0)
    return (
        np.array([u.t for u in ups]),
        np.stack([u.features for u in ups]),
        np.array([u.level_db for u in ups]),
    )
