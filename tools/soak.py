"""Soak test: long runs of the real command line, checked for completeness and flat memory.

    python tools/soak.py                                   # 2 h through analyze, 10 min live
    python tools/soak.py --analyze-seconds 600 --live-seconds 60   # shorter
    python tools/soak.py --json                            # one JSON object on stdout

1. ``moodtrack analyze`` on a generated recording of ``--analyze-seconds`` (8 kHz FLAC,
   so it is resampled too): the CSV must have every update (t = 1.0, 1.5, ... to the
   end, seq without gaps).
2. ``moodtrack live --file`` on a ``--live-seconds`` recording at real-time pace with
   every sink on: the dashboard (on a pseudo-terminal), the CSV and ZeroMQ with a
   subscriber that reads everything: the CSV must have every update and the subscriber
   must see ``seq`` without gaps.

The resident memory (VmRSS) of each moodtrack process is sampled twice a second; it must
stay flat: from the first sample once the run produces output (imports and buffers
done) to any later one it may grow by less than ``--max-growth-mb``. Exit status
0 when everything holds, 1 otherwise. A model is needed: ``--model`` or
``$MOODTRACK_MODEL`` (``models/mood.onnx`` by default); ``--tiny-model`` trains the
test suite's small one.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import pty
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
SR = 8000
RATE = 2.0  # updates per second (the default)


def _signal(seconds: float, sr: int, seed: int) -> np.ndarray:
    """Music-like test audio: chords whose loudness and timbre drift, a pulse, noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    y = 0.2 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 277.2 * t)
    y += 0.1 * np.sin(2 * np.pi * 329.6 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.1 * t))
    y *= 0.3 + 0.7 * (0.5 + 0.5 * np.sin(2 * np.pi * t / 47.0))
    clicks = np.zeros_like(t)
    clicks[:: sr // 2] = 0.5
    y += np.convolve(clicks, np.exp(-np.arange(200) / 30.0), mode="full")[: t.size] * 0.5
    y += 0.01 * rng.standard_normal(t.size)
    return y.astype(np.float32)


def make_recording(path: Path, seconds: float) -> Path:
    """A FLAC of ``seconds``, written a minute at a time (varied: each minute differs)."""
    with sf.SoundFile(str(path), "w", SR, 1, subtype="PCM_16", format="FLAC") as f:
        done, k = 0.0, 0
        while done < seconds:
            chunk = min(60.0, seconds - done)
            f.write(_signal(chunk, SR, seed=k))
            done += chunk
            k += 1
    return path


def _rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class RssSampler(threading.Thread):
    """VmRSS of ``pid`` every ``every_s``; the baseline is the first sample taken once
    ``warm()`` is true (the pipeline is producing output: imports and buffers are done)."""

    def __init__(self, pid: int, warm, every_s: float = 0.5):
        super().__init__(daemon=True)
        self.pid, self.warm, self.every_s = pid, warm, every_s
        self.samples: list[tuple[float, float]] = []
        self.warm_index: int | None = None
        self.done = threading.Event()

    def run(self) -> None:
        t0 = time.monotonic()
        while not self.done.wait(self.every_s):
            rss = _rss_mb(self.pid)
            if rss is None:
                break
            self.samples.append((time.monotonic() - t0, rss))
            if self.warm_index is None and self.warm():
                self.warm_index = len(self.samples) - 1

    def summary(self) -> dict:
        rss = [r for _, r in self.samples]
        if self.warm_index is None or len(rss) - self.warm_index < 2:
            return {"samples": len(rss), "max_mb": round(max(rss), 1) if rss else None}
        base = rss[self.warm_index]
        return {"samples": len(rss), "warm_at_s": round(self.samples[self.warm_index][0], 1),
                "warm_mb": round(base, 1), "end_mb": round(rss[-1], 1),
                "max_mb": round(max(rss), 1),
                "growth_mb": round(rss[-1] - base, 1),
                "max_growth_mb": round(max(rss[self.warm_index:]) - base, 1)}


def _timeline(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    head = rows[0]
    bad = [r for r in rows[1:] if len(r) != len(head)]
    if bad:
        raise AssertionError(f"{path}: {len(bad)} torn rows")
    return [dict(zip(head, r)) for r in rows[1:]]


def _check_timeline(rows: list[dict], seconds: float) -> list[str]:
    problems = []
    expected = int(np.floor((seconds - 1.0) * RATE + 1e-6)) + 1
    if len(rows) != expected:
        problems.append(f"{len(rows)} rows, expected {expected}")
    seqs = [int(r["seq"]) for r in rows]
    if seqs != list(range(len(rows))):
        problems.append("seq has gaps in the CSV")
    ts = np.array([float(r["t"]) for r in rows])
    if len(ts) and not np.allclose(np.diff(ts), 1 / RATE):
        problems.append("t is not evenly spaced")
    return problems


def _env(model: Path) -> dict:
    return {**os.environ, "MOODTRACK_MODEL": str(model), "PYTHONPATH": str(ROOT)}


def soak_analyze(model: Path, seconds: float, work: Path, max_growth: float) -> dict:
    rec = make_recording(work / "analyze.flac", seconds)
    out = work / "analyze-out"
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "realtime", "analyze", str(rec), "-o", str(out)],
                            cwd=ROOT, env=_env(model), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    csv_out = out / "analyze.flac.csv"
    sampler = RssSampler(proc.pid, lambda: csv_out.exists() and csv_out.stat().st_size > 0)
    sampler.start()
    _, err = proc.communicate()
    sampler.done.set()
    sampler.join()
    wall = time.monotonic() - t0
    res = {"audio_s": seconds, "wall_s": round(wall, 1), "speed_x": round(seconds / wall, 1),
           "rc": proc.returncode, "rss": sampler.summary()}
    problems = [] if proc.returncode == 0 else [f"exit {proc.returncode}: {err[-500:]}"]
    if proc.returncode == 0 and csv_out.exists():
        rows = _timeline(csv_out)
        res["updates"] = len(rows)
        problems += _check_timeline(rows, seconds)
    growth = res["rss"].get("max_growth_mb")
    if growth is not None and growth > max_growth:
        problems.append(f"RSS grew {growth} MB")
    res["problems"] = problems
    return res


def soak_live(model: Path, seconds: float, work: Path, max_growth: float) -> dict:
    import zmq

    rec = make_recording(work / "live.flac", seconds)
    csv_path = work / "live.csv"
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        endpoint = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"mood")
    sub.connect(endpoint)
    master, slave = pty.openpty()  # the dashboard needs a terminal
    os.set_blocking(master, False)
    env = {**_env(model), "COLUMNS": "120", "LINES": "40", "TERM": "xterm-256color"}
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "realtime", "live", "--file", str(rec), "--zmq", endpoint,
         "--csv", str(csv_path)],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE,
        text=True)
    os.close(slave)
    sampler = RssSampler(proc.pid, lambda: csv_path.exists() and csv_path.stat().st_size > 300)
    sampler.start()
    seqs: list[int] = []
    screen_bytes = 0
    err_lines: list[str] = []
    reader = threading.Thread(target=lambda: err_lines.extend(proc.stderr), daemon=True)
    reader.start()
    while proc.poll() is None or sub.poll(200):
        if sub.poll(100):
            seqs.append(json.loads(sub.recv_multipart()[1])["seq"])
        try:
            screen_bytes += len(os.read(master, 1 << 16))
        except (BlockingIOError, OSError):
            pass
    wall = time.monotonic() - t0
    sampler.done.set()
    sampler.join()
    reader.join(5)
    os.close(master)
    sub.close(0)
    ctx.term()
    res = {"audio_s": seconds, "wall_s": round(wall, 1), "rc": proc.returncode,
           "zmq_messages": len(seqs), "dashboard_bytes": screen_bytes, "rss": sampler.summary(),
           "summary": (err_lines[-1].strip() if err_lines else "")}
    problems = [] if proc.returncode == 0 else [f"exit {proc.returncode}: {''.join(err_lines)[-500:]}"]
    if not csv_path.exists():
        res["problems"] = problems + ["no CSV written"]
        return res
    rows = _timeline(csv_path)
    res["updates"] = len(rows)
    problems += _check_timeline(rows, seconds)
    if not seqs or seqs != list(range(seqs[0], seqs[0] + len(seqs))):
        problems.append("the subscriber saw seq gaps")
    elif seqs[-1] != len(rows) - 1:
        problems.append(f"the subscriber's last seq {seqs[-1]} is not the CSV's {len(rows) - 1}")
    if screen_bytes == 0:
        problems.append("the dashboard drew nothing")
    growth = res["rss"].get("max_growth_mb")
    if growth is not None and growth > max_growth:
        problems.append(f"RSS grew {growth} MB")
    res["problems"] = problems
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--analyze-seconds", type=float, default=7200.0)
    ap.add_argument("--live-seconds", type=float, default=600.0)
    ap.add_argument("--model", type=Path, help="ONNX model (default $MOODTRACK_MODEL or "
                    "models/mood.onnx)")
    ap.add_argument("--tiny-model", action="store_true",
                    help="train and use the test suite's tiny model")
    ap.add_argument("--max-growth-mb", type=float, default=20.0)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="moodtrack-soak-") as tmp:
        work = Path(tmp)
        if args.tiny_model:
            sys.path.insert(0, str(ROOT))
            from tests.conftest import train_tiny_model

            model = Path(train_tiny_model(work / "tiny.onnx"))
        else:
            from realtime.model import default_model_path

            model = args.model or default_model_path()
        result = {}
        if args.analyze_seconds > 0:
            result["analyze"] = soak_analyze(model, args.analyze_seconds, work,
                                             args.max_growth_mb)
        if args.live_seconds > 0:
            result["live"] = soak_live(model, args.live_seconds, work, args.max_growth_mb)
    ok = all(not r["problems"] for r in result.values())
    result["ok"] = ok
    if args.json:
        print(json.dumps(result))
    else:
        for name, r in result.items():
            if name != "ok":
                print(f"{name}: {json.dumps(r)}")
        print("soak: OK" if ok else "soak: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
