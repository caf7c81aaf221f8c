import numpy as np
import pytest

from realtime.errors import MoodtrackError
from realtime.ringbuffer import RingBuffer


@pytest.mark.parametrize("block", [1, 7, 65, 100, 513])
def test_odd_block_sizes_keep_the_latest_samples(block):
    rb = RingBuffer(1000)
    x = np.arange(5000, dtype=np.float32)
    for i in range(0, x.size, block):
        rb.write(x[i:i + block])
    assert rb.total == 5000
    assert rb.oldest == 4000
    np.testing.assert_array_equal(rb.read(4000, 1000), x[4000:])
    np.testing.assert_array_equal(rb.read(4321, 77), x[4321:4398])


def test_block_larger_than_capacity_keeps_tail_and_indexing():
    rb = RingBuffer(10)
    rb.write(np.arange(3, dtype=np.float32))
    rb.write(np.arange(3, 40, dtype=np.float32))
    assert rb.total == 40
    np.testing.assert_array_equal(rb.read(30, 10), np.arange(30, 40))
    rb.write(np.array([40, 41], dtype=np.float32))
    np.testing.assert_array_equal(rb.read(32, 10), np.arange(32, 42))


def test_reading_outside_held_range_is_an_error():
    rb = RingBuffer(8)
    rb.write(np.zeros(20, np.float32))
    with pytest.raises(MoodtrackError):
        rb.read(5, 4)  # already overwritten
    with pytest.raises(MoodtrackError):
        rb.read(18, 4)  # not written yet
