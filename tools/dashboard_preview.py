"""Preview the dashboard with synthetic updates (no audio, no model).

    python -m tools.dashboard_preview [--seconds 60] [--rate 10] [--speed 4]

The point circles the valence-arousal plane with noise, goes silent now and then, and
the health counters tick, so every part of the screen has something to show.
"""

from __future__ import annotations

import argparse
import math
import random
import time

from realtime.dashboard import Dashboard
from realtime.mood import MoodEstimator
from realtime.stats import PipelineStats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="wall seconds to run")
    ap.add_argument("--rate", type=float, default=10.0, help="updates per wall second")
    ap.add_argument("--speed", type=float, default=4.0, help="audio seconds per wall second")
    ap.add_argument("--extras", action="store_true",
                    help="also speech, loudness (LUFS), tags and an input hint")
    args = ap.parse_args()
    stats = PipelineStats(device="Focusrite Scarlett 2i2 (hw:2,0)", sample_rate=48000,
                          channels=2, model="moodtrack-va 1.0")
    est = MoodEstimator(smoothing_s=2.0)
    dash = Dashboard(stats, level="lufs" if args.extras else "dbfs")
    dash.start()
    rng = random.Random(0)
    t_end = time.monotonic() + args.seconds
    k = 0
    try:
        while time.monotonic() < t_end:
            t = k * args.speed / args.rate
            phase = t / 40.0
            level = -20 + 8 * math.sin(t / 7) + rng.gauss(0, 1.5)
            if 50 < t % 120 < 58:
                level = -75.0
            up = est.update(t, 0.8 * math.cos(phase) + rng.gauss(0, 0.1),
                            0.8 * math.sin(1.3 * phase) + rng.gauss(0, 0.1), level)
            up.latency_ms = 3 + rng.random() * 4
            if args.extras:  # fields some pipelines add (set here whether or not they exist)
                up.speech = 0.5 + 0.5 * math.sin(t / 11)
                up.loudness_m, up.loudness_s = level + 3 + rng.gauss(0, 1), level + 3
                up.tags = {"instruments": [["strings", 0.8], ["piano", 0.35]],
                           "genres": [["soundtrack", 0.7]]} if k % args.rate == 0 else None
                stats.input_hint = ("digital silence from the input: check its gain"
                                    if level < -70 else "")
            stats.latency_ms, stats.level_db, stats.updates = up.latency_ms, level, k + 1
            stats.overflows += rng.random() < 0.01
            stats.zmq_dropped += 3 * (rng.random() < 0.005)
            stats.input_state = "stalled" if 100 < t % 160 < 106 else "ok"
            dash.emit(up)
            k += 1
            time.sleep(1 / args.rate)
    except KeyboardInterrupt:
        pass
    finally:
        dash.close()


if __name__ == "__main__":
    main()
