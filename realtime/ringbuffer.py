"""A fixed-capacity sample ring buffer addressed by absolute sample index."""

from __future__ import annotations

import numpy as np

from realtime.errors import MoodtrackError


class RingBuffer:
    """Holds the most recent ``capacity`` samples of a mono float32 stream.

    Owned by one thread (the analysis thread): no locking. ``total`` counts every
    sample ever written, so a sample is addressed by its absolute index
    (0 = first sample of the stream) for as long as it is still held.
    """

    def __init__(self, capacity: int):
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.capacity = int(capacity)
        self._data = np.zeros(self.capacity, dtype=np.float32)
        self.total = 0

    @property
    def oldest(self) -> int:
        """Absolute index of the oldest sample still held."""
        return max(0, self.total - self.capacity)

    def write(self, samples: np.ndarray) -> None:
        """Append samples (1-D); a block longer than the capacity keeps only its tail."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        n = samples.size
        if n == 0:
            return
        if n >= self.capacity:
            self._data[:] = samples[-self.capacity:]
            # Re-align so that index total % capacity stays the write position.
            self._data = np.roll(self._data, (self.total + n) % self.capacity)
            self.total += n
            return
        start = self.total % self.capacity
        first = min(n, self.capacity - start)
        self._data[start:start + first] = samples[:first]
        if first < n:
            self._data[: n - first] = samples[first:]
        self.total += n

    def read(self, start: int, length: int) -> np.ndarray:
        """Return a copy of samples ``[start, start + length)`` by absolute index."""
        if length < 0:
            raise ValueError("length must be >= 0")
        if start < self.oldest or start + length > self.total:
            raise MoodtrackError(
                f"ring buffer read [{start}, {start + length}) outside held range "
                f"[{self.oldest}, {self.total}); increase its capacity"
            )
        pos = start % self.capacity
        first = min(length, self.capacity - pos)
        if first == length:
            return self._data[pos:pos + length].copy()
        return np.concatenate([self._data[pos:], self._data[: length - first]])
