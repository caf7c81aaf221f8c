"""moodtrack: a streaming, real-time music mood tracker.

Data flows one way: source -> ring buffer -> features -> model -> mood -> sinks.
"""

import os as _os

# One BLAS thread: moodtrack's matrices are small and a thread pool only adds wake-up
# latency and contention with the audio and analysis threads (override by setting these).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    _os.environ.setdefault(_var, "1")

__version__ = "0.1.0"
