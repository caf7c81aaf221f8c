"""ITU-R BS.1770-4 / EBU R128 momentary and short-term loudness, streaming and causal.

The input as captured (every channel, at its own sample rate) is K-weighted per channel
by two biquads (a high shelf of about +4 dB above 1.5 kHz, the head's acoustic effect,
then a 38 Hz high pass; :class:`SosFilter`) whose state carries across blocks, so the result does not depend
on block sizes. The weighted mean square ``z = sum_c G_c * mean(y_c^2)`` over the last
0.4 s (momentary) and 3 s (short-term), with the channel weights ``G_c`` of
:func:`realtime.channels.loudness_gains`, gives the loudness
``-0.691 + 10 log10(z)`` in LUFS (EBU Tech 3341). No gating: that belongs to integrated
loudness, not to these meters. Before a window has filled, the mean is over the audio so
far. Loudness below :data:`FLOOR_LUFS` (R128's absolute gate: no programme) reads as
:data:`FLOOR_LUFS`.

The filter coefficients are derived for any sample rate from the analog prototype that
BS.1770's 48 kHz coefficients come from (the formulas of libebur128; at 48 kHz they give
the published coefficients to 1e-8), the high pass scaled to keep the 48 kHz filter's
pass-band gain. pyloudnorm normalises that gain to 1 instead: it reads 0.04 LU lower.
"""

from __future__ import annotations

import math

import numpy as np

#: Lowest loudness reported, LUFS.
FLOOR_LUFS = -70.0
MOMENTARY_S = 0.4
SHORT_TERM_S = 3.0


def k_weighting_sos(sample_rate: float) -> np.ndarray:
    """float64 (2, 6) second-order sections of the K-weighting filter at ``sample_rate`` Hz
    (scipy's sos layout: ``b0 b1 b2 a0 a1 a2``)."""
    rate = float(sample_rate)
    # Stage 1: high shelf (the head).
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / rate)
    vh = 10.0 ** (gain_db / 20.0)
    vb = vh ** 0.4996667741545416
    a0 = 1.0 + k / q + k * k
    shelf = [(vh + vb * k / q + k * k) / a0, 2.0 * (k * k - vh) / a0,
             (vh - vb * k / q + k * k) / a0, 1.0, 2.0 * (k * k - 1.0) / a0,
             (1.0 - k / q + k * k) / a0]
    # Stage 2: high pass (RLB weighting). BS.1770's numerator (1, -2, 1) gives a pass-band
    # gain of 1.005 (+0.043 dB) at 48 kHz; it is scaled to keep that gain at every rate
    # (left as is, the gain would grow as the rate falls: +0.094 dB at 22.05 kHz).
    a1, a2 = _highpass_poles(rate)
    a1_48, a2_48 = _highpass_poles(48000.0)
    g = (1.0 - a1 + a2) / (1.0 - a1_48 + a2_48)
    highpass = [g, -2.0 * g, g, 1.0, a1, a2]
    return np.array([shelf, highpass], np.float64)


def _highpass_poles(rate: float) -> tuple[float, float]:
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / rate)
    a0 = 1.0 + k / q + k * k
    return 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0


def lufs(mean_square: float) -> float:
    """Loudness in LUFS of a K-weighted, channel-weighted mean square, floored at
    :data:`FLOOR_LUFS`."""
    if not mean_square > 0:
        return FLOOR_LUFS
    return max(FLOOR_LUFS, -0.691 + 10.0 * math.log10(mean_square))


class SosFilter:
    """A cascade of second-order sections run on blocks with its state carried across them:
    what ``scipy.signal.sosfilt`` with ``zi`` does, on numpy alone
    (``scipy.signal`` takes seconds to import; the live start-up has no room for it).

    The cascade is one state-space system (A, B, C, D). Each chunk of ``chunk`` samples
    is its zero-state response (the chunk times the lower-triangular Toeplitz matrix of the
    first ``chunk`` samples of the impulse response: one matrix product for all the chunks
    of a span) plus the response to the state at the chunk's start; the states at the
    starts of a span's chunks are one matrix product too. The same output for any block sizes, within 1e-6
    of the signal's scale of what ``sosfilt`` gives.

    - ``sos``: (n_sections, 6) as scipy lays them out (``b0 b1 b2 a0 a1 a2``);
    - ``channels``: columns of the blocks.
    """

    def __init__(self, sos: np.ndarray, *, channels: int, chunk: int = 128):
        sos = np.asarray(sos, np.float64)
        a_m = np.zeros((0, 0))
        b_v, c_v, d = np.zeros(0), np.zeros(0), 1.0
        for b0, b1, b2, a0, a1, a2 in sos:
            b0, b1, b2, a1, a2 = b0 / a0, b1 / a0, b2 / a0, a1 / a0, a2 / a0
            # transposed direct form II: y = b0 x + s1; s' = [[-a1, 1], [-a2, 0]] s + (b - a b0) x
            a2m = np.array([[-a1, 1.0], [-a2, 0.0]])
            b2v = np.array([b1 - a1 * b0, b2 - a2 * b0])
            n = a_m.shape[0]
            a_new = np.zeros((n + 2, n + 2))
            a_new[:n, :n] = a_m
            a_new[n:, :n] = np.outer(b2v, c_v)
            a_new[n:, n:] = a2m
            a_m, b_v = a_new, np.concatenate([b_v, b2v * d])
            c_v, d = np.concatenate([b0 * c_v, [1.0, 0.0]]), b0 * d
        self.chunk = int(chunk)
        self.channels = int(channels)
        order = a_m.shape[0]
        powers = np.empty((self.chunk + 1, order, order))  # A^0 .. A^chunk
        powers[0] = np.eye(order)
        for k in range(1, self.chunk + 1):
            powers[k] = a_m @ powers[k - 1]
        self._powers = powers
        self._obs = np.einsum("i,nij->nj", c_v, powers[:-1])  # (chunk, order): C A^n
        # (order, chunk): column k is A^(chunk-1-k) B
        self._reach = np.einsum("kij,j->ik", powers[-2::-1], b_v)
        h = np.concatenate([[d], self._obs[:-1] @ b_v])  # impulse response, first chunk
        lag = np.arange(self.chunk)[:, None] - np.arange(self.chunk)[None, :]
        # Transposed Toeplitz matrix: row k holds what input sample k adds to each output.
        self._toeplitz_t = np.where(lag >= 0, h[np.clip(lag, 0, None)], 0.0).T.astype(np.float32)
        self._state = np.zeros((order, self.channels))
        # The states at the starts of up to J = SPAN / chunk chunks in one product:
        # start_j = A_L^j s_0 + sum_{i<j} A_L^(j-1-i) d_i  (A_L = A^chunk, d_i chunk i's drive).
        j_max = max(1, self.SPAN // self.chunk)
        step_powers = [np.eye(order)]
        for _ in range(j_max):
            step_powers.append(powers[-1] @ step_powers[-1])
        self._from_state = np.concatenate(step_powers[:j_max])  # (J * order, order)
        self._from_drive = np.zeros((j_max * order, j_max * order))
        for j in range(1, j_max):
            for i in range(j):
                self._from_drive[j * order:(j + 1) * order, i * order:(i + 1) * order] = \
                    step_powers[j - 1 - i]
        self._order = order

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The filtered ``(n, channels)`` block, float64."""
        x = np.asarray(x)
        n, L = x.shape[0], self.chunk
        y = np.empty((n, self.channels), np.float64)
        for i in range(0, n - n % L, self.SPAN):  # whole chunks, a cache-sized span at a time
            k = min(n - n % L - i, self.SPAN)
            y[i:i + k] = self._chunks(x[i:i + k].reshape(-1, L, self.channels), L).reshape(k, -1)
        full = n - n % L
        if n > full:
            y[full:] = self._chunks(x[full:][None], n - full)[0]
        return y

    #: Samples filtered at a time (whole chunks): the state product stays small.
    SPAN = 8192

    def _chunks(self, xc: np.ndarray, m: int) -> np.ndarray:
        """(J, m, channels) chunks of m <= chunk samples, in order: their outputs.

        The zero-state part runs in float32 (its relative error, ~1e-7 of the signal, is far
        below anything a loudness reading shows); the state in float64.
        """
        L = self.chunk
        J, C = xc.shape[0], xc.shape[2]
        x32 = xc.astype(np.float32, copy=False).transpose(0, 2, 1).reshape(J * C, m)
        zs = (x32 @ self._toeplitz_t[:m, :m]).reshape(J, C, m).transpose(0, 2, 1).astype(np.float64)
        drive = self._reach[:, L - m:] @ xc.astype(np.float64, copy=False)  # (J, order, channels)
        order = self._order
        if m == L and J * order <= self._from_state.shape[0]:  # whole chunks: one product
            k = J * order
            starts = (self._from_state[:k] @ self._state
                      + self._from_drive[:k, :k] @ drive.reshape(k, -1)).reshape(drive.shape)
            self._state = self._powers[m] @ starts[-1] + drive[-1]
        else:  # the partial chunk at the end of a block
            starts = np.empty_like(drive)
            s = self._state
            for j in range(J):
                starts[j] = s
                s = self._powers[m] @ s + drive[j]
            self._state = s
        zs += self._obs[:m] @ starts
        return zs


class LoudnessMeter:
    """Momentary and short-term loudness of a stream of ``(n, channels)`` blocks.

    - ``sample_rate``: Hz of the input;
    - ``gains``: per-channel weights ``G`` (:func:`realtime.channels.loudness_gains`);
    - ``momentary_s``, ``short_term_s``: window lengths in seconds (R128: 0.4 and 3).

    :meth:`process` filters a block; :meth:`loudness` gives (momentary, short-term) LUFS of
    the windows ending at any frame of the last second or so (the analysis reports each
    update at the frame it describes, a little behind the newest input).
    """

    def __init__(self, *, sample_rate: int, gains, momentary_s: float = MOMENTARY_S,
                 short_term_s: float = SHORT_TERM_S):
        self.sample_rate = int(sample_rate)
        self.gains = np.asarray(gains, np.float64)
        self.channels = int(self.gains.shape[0])
        self.sos = k_weighting_sos(self.sample_rate)
        self._filter = SosFilter(self.sos, channels=self.channels)
        self.n_momentary = max(1, int(round(momentary_s * self.sample_rate)))
        self.n_short = max(1, int(round(short_term_s * self.sample_rate)))
        self._ring = np.zeros(self.n_short + 2 * self.sample_rate, np.float64)
        self.frames = 0  # frames processed

    def process(self, block: np.ndarray) -> None:
        """K-weight one ``(n, channels)`` (or ``(n,)`` mono) block and keep its power."""
        x = np.asarray(block)
        if x.ndim == 1:
            x = x[:, None]
        n = x.shape[0]
        if n == 0:
            return
        y = self._filter(x)
        z = (y * y) @ self.gains
        need = self.n_short + n + self.sample_rate
        if need > self._ring.shape[0]:  # a block longer than the margin: grow, keep the past
            old, cap = self._ring, self._ring.shape[0]
            self._ring = np.zeros(need, np.float64)
            keep = min(self.frames, cap)
            if keep:
                idx = np.arange(self.frames - keep, self.frames)
                self._ring[idx % need] = old[idx % cap]
        cap = self._ring.shape[0]
        start = self.frames % cap
        first = min(n, cap - start)
        self._ring[start:start + first] = z[:first]
        self._ring[:n - first] = z[first:]
        self.frames += n

    def _mean(self, end: int, length: int) -> float:
        start = max(0, end - length, self.frames - self._ring.shape[0])
        if end <= start:
            return 0.0
        cap = self._ring.shape[0]
        a, b = start % cap, end % cap
        if a < b or b == 0:
            total = self._ring[a:b or cap].sum()
        else:
            total = self._ring[a:].sum() + self._ring[:b].sum()
        return float(total) / (end - start)

    def loudness(self, *, end: int | None = None) -> tuple[float, float]:
        """(momentary, short-term) loudness in LUFS of the windows ending at frame ``end``
        (default: the newest), floored at :data:`FLOOR_LUFS`."""
        end = self.frames if end is None else max(0, min(int(end), self.frames))
        return lufs(self._mean(end, self.n_momentary)), lufs(self._mean(end, self.n_short))
