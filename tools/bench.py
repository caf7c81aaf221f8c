"""moodtrack benchmark: throughput, the naive baseline, live latency and CPU, start-up, memory.

    python tools/bench.py                       # everything, on the bundled demo (about 20 min)
    python tools/bench.py --data ../shared/data # offline figures on 30 min of 4Q clips instead
    python tools/bench.py --quick               # a short smoke run of every section

Each figure comes from real runs of the ``moodtrack`` command in subprocesses (start-up,
decoding and CSV/ZeroMQ output included) and is reported as min / median / max over
``--repeat`` runs, with the machine named (CPU model, cores available, load average).
Results go to stdout as Markdown and to ``--json`` as data. On a shared machine, prefer
the CPU-time figures (audio seconds per CPU second, CPU % of a core): wall time there
measures the other load too.

Sections:

- offline: ``moodtrack analyze --jobs 1`` on >= 30 min of audio, seconds of audio per
  second of wall time and per second of the process's CPU time (``os.wait4``), with and
  without the process start-up (measured apart); also ``--jobs`` on all available cores;
- naive: the same window statistics computed as the seed projects do
  (:mod:`tools.naive_features`: a librosa call per feature per window, ``center=True``)
  versus the streaming extractor, on the same decoded audio, in this process;
- frame: CPU time per dashboard frame at 120x40 with a full history, the dashboard's own
  renderer versus printing the same frame through rich, in this process;
- live: ``moodtrack live --file`` at real-time pace for ``--live-seconds`` at 2 and 20
  updates/s, dashboard off and on (on a 120x40 pseudo-terminal set with TIOCSWINSZ,
  TERM=xterm-256color, read as a terminal would): update latency p50/p99/max (from
  the CSV's ``latency_ms``: block arrival to sinks), process CPU time per second after
  the first 5 s, start-up (process start to first ZeroMQ message, minus the audio time
  that message describes), RSS peak and drift, bytes written to the terminal;
- memory of ``analyze``: peak RSS;
- web: what the web view adds: ``live --file`` at 20 updates/s with ``--web`` and three
  headless Chromium pages connected, against the same run without ``--web`` (process CPU,
  and the web server thread's own CPU time), and each page's JavaScript heap and DOM size
  over the run (after a forced garbage collection, every 10 s).
"""

from __future__ import annotations

import argparse
import csv
import fcntl
import json
import os
import platform
import pty
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "realtime" / "data" / "demo.ogg"
TICK = os.sysconf("SC_CLK_TCK")
TERM_SIZE = (120, 40)      # columns, rows of the pseudo-terminal of the dashboard-on runs


def moodtrack_cmd() -> list[str]:
    return [sys.executable, "-m", "realtime"]


# ------------------------------------------------------------------ process sampling
def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def _proc_mem_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB."""
    vals = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            k, v = line.split(":")
            vals[k] = int(v.split()[0]) / 1024.0
    return vals.get("VmRSS", 0.0), vals.get("VmHWM", 0.0)


class Sampler(threading.Thread):
    """Samples a process's CPU time and RSS every ``period`` seconds until it exits."""

    def __init__(self, pid: int, period: float = 0.5):
        super().__init__(daemon=True)
        self.pid, self.period = pid, period
        self.samples: list[tuple[float, float, float, float]] = []  # (wall, cpu_s, rss, hwm)

    def run(self) -> None:
        while True:
            try:
                cpu = _proc_cpu_s(self.pid)
                rss, hwm = _proc_mem_mb(self.pid)
            except (FileNotFoundError, ProcessLookupError, IndexError):
                return
            if rss == 0.0:  # exited (a zombie has no memory left to report)
                return
            self.samples.append((time.monotonic(), cpu, rss, hwm))
            time.sleep(self.period)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mmm(values) -> dict:
    v = [float(x) for x in values]
    return {"min": min(v), "median": statistics.median(v), "max": max(v), "runs": len(v)}


def fmt(d: dict, unit: str = "", digits: int = 1) -> str:
    return (f"{d['min']:.{digits}f} / {d['median']:.{digits}f} / {d['max']:.{digits}f}{unit}")


def audio_seconds(paths) -> float:
    import soundfile as sf

    return sum(sf.info(str(p)).duration for p in paths)


# ------------------------------------------------------------------------ offline
def offline_inputs(data: Path | None, minutes: float, tmp: Path) -> list[Path]:
    """>= ``minutes`` of mixed audio: 4Q clips when ``data`` is given, else demo copies
    re-encoded as ogg, flac and wav (so decoding of several codecs is included)."""
    if data is not None:
        clips = sorted((data / "4q" / "audio").glob("*.ogg"))
        out, total = [], 0.0
        for c in clips:
            out.append(c)
            total += 30.0
            if total >= minutes * 60:
                break
        return out
    import soundfile as sf

    y, sr = sf.read(str(DEMO), dtype="float32")
    out = []
    for i, ext in enumerate(["ogg", "flac", "wav"]):
        p = tmp / f"demo_{i}.{ext}"
        if ext == "ogg":
            shutil.copy(DEMO, p)
        else:
            sf.write(str(p), y, sr)
        out.append(p)
    n = int(np.ceil(minutes * 60 / (len(y) / sr)))
    return [out[i % 3] if i < 3 else _link(out[i % 3], tmp, i) for i in range(n)]


def _link(src: Path, tmp: Path, i: int) -> Path:
    p = tmp / f"copy_{i}{src.suffix}"
    if not p.exists():
        os.symlink(src, p)
    return p


def run_analyze(paths, out: Path, *, jobs: int = 1) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds of the process and its workers, peak RSS MB) of one
    ``moodtrack analyze --jobs N`` run."""
    cmd = [*moodtrack_cmd(), "analyze", *map(str, paths), "-o", str(out), "--jobs", str(jobs)]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    sampler = Sampler(proc.pid, 0.2)
    sampler.start()
    err = proc.stderr.read()
    # The child's CPU time (Linux: with its reaped children, i.e. --jobs workers).
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"analyze failed ({proc.returncode}): {err.decode()[-2000:]}")
    sampler.join()
    hwm = max((s[3] for s in sampler.samples), default=0.0)
    return wall, usage.ru_utime + usage.ru_stime, hwm


def bench_offline(paths, tmp: Path, repeat: int) -> dict:
    audio_s = audio_seconds(paths)
    short = tmp / "one_second.wav"
    import soundfile as sf

    sf.write(str(short), np.zeros(22050, np.float32), 22050)
    startup = [run_analyze([short], tmp / "o0") for _ in range(repeat)]
    runs = [run_analyze(paths, tmp / f"o{i}") for i in range(repeat)]
    start_wall = statistics.median(r[0] for r in startup)
    start_cpu = statistics.median(r[1] for r in startup)
    res = {
        "audio_s": audio_s, "files": len(paths),
        "startup_s": mmm(r[0] for r in startup),
        "x_realtime": mmm(audio_s / r[0] for r in runs),
        "x_realtime_excl_startup": mmm(audio_s / (r[0] - start_wall) for r in runs),
        # audio seconds per CPU second: what one core does, whatever else runs on the machine
        "x_realtime_cpu": mmm(audio_s / r[1] for r in runs),
        "x_realtime_cpu_excl_startup": mmm(audio_s / (r[1] - start_cpu) for r in runs),
        "peak_rss_mb": mmm(r[2] for r in runs),
    }
    from realtime.batch import available_cores

    n = available_cores()
    if n > 1:
        jw = [run_analyze(paths, tmp / f"j{i}", jobs=n)[0] for i in range(repeat)]
        res["jobs"] = n
        res["x_realtime_jobs"] = mmm(audio_s / w for w in jw)
    return res


# -------------------------------------------------------------------------- naive
def bench_naive(seconds: float, repeat: int) -> dict:
    import soundfile as sf

    from realtime.features import extract
    from tools.naive_features import naive_window_features

    y, sr = sf.read(str(DEMO), dtype="float32")
    y = y[: int(seconds * sr)]
    extract(y[:sr * 2])
    naive_window_features(y[:sr * 2], sr=sr)  # warm both up (imports, caches)
    ours, naive = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        extract(y)
        ours.append(seconds / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        naive_window_features(y, sr=sr)
        naive.append(seconds / (time.perf_counter() - t0))
    return {"audio_s": seconds, "ours_x_realtime": mmm(ours), "naive_x_realtime": mmm(naive),
            "ratio": mmm(o / n for o, n in zip(ours, naive))}


# --------------------------------------------------------------------------- live
def run_live(seconds: float, rate: float, *, dashboard: bool, tmp: Path) -> dict:
    """One paced ``live --file`` run of the demo, measured from outside."""
    import zmq

    port = free_port()
    # A new CSV per run: moodtrack refuses to replace an existing one.
    csv_path = Path(tempfile.mkdtemp(dir=tmp)) / f"live_{rate:g}_{int(dashboard)}.csv"
    cmd = [*moodtrack_cmd(), "live", "--file", str(DEMO), "--seconds", str(seconds),
           "--rate", str(rate), "--smoothing", "0", "--csv", str(csv_path),
           "--zmq", f"tcp://127.0.0.1:{port}"]
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"mood")
    sub.connect(f"tcp://127.0.0.1:{port}")
    # As a person runs it: no COLUMNS/LINES, a terminal type, the size from the terminal.
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["TERM"] = "xterm-256color"
    t0 = time.monotonic()
    drain = None
    if dashboard:  # a pseudo-terminal of TERM_SIZE, so the dashboard is really drawn
        master, slave = pty.openpty()
        cols, rows = TERM_SIZE
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env,
                                start_new_session=True)
        os.close(slave)
        drain = Drain(master)
        drain.start()
    else:
        proc = subprocess.Popen([*cmd, "--no-dashboard"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=env)
    sampler = Sampler(proc.pid, 0.5)
    sampler.start()
    startup = None
    if sub.poll(60000):
        msg = json.loads(sub.recv_multipart()[-1])
        startup = time.monotonic() - t0 - msg["t"]
    proc.wait()
    sampler.join()
    sub.close(0)
    ctx.term()
    if drain is not None:
        drain.join(5.0)
    if proc.returncode != 0:
        said = drain.text()[-400:] if drain is not None else "(run it by hand to see why)"
        raise SystemExit(f"live run failed (exit {proc.returncode}): {said}")
    if drain is not None:
        if "valence × arousal" not in drain.text():
            raise SystemExit("live run with the dashboard: no dashboard on the terminal")
    lat = []
    with open(csv_path, newline="") as fh:
        for row in csv.DictReader(fh):
            lat.append(float(row["latency_ms"]))
    s = sampler.samples
    # Steady state: from 5 s after the first message to the last sample.
    t_first = t0 + (startup or 0.0) + 1.0
    steady = [x for x in s if x[0] >= t_first + 5.0]
    cpu_pct = None
    drift = None
    if len(steady) >= 2:
        cpu_pct = 100.0 * (steady[-1][1] - steady[0][1]) / (steady[-1][0] - steady[0][0])
        drift = steady[-1][2] - steady[0][2]
    return {
        "updates": len(lat),
        "latency_p50_ms": float(np.percentile(lat, 50)) if lat else None,
        "latency_p99_ms": float(np.percentile(lat, 99)) if lat else None,
        "latency_max_ms": max(lat) if lat else None,
        "cpu_pct_of_core": cpu_pct,
        "startup_s": startup,
        "peak_rss_mb": max((x[3] for x in s), default=None),
        "rss_drift_mb": drift,
        "terminal_kb_per_s": (drain.bytes / 1024 / seconds) if drain is not None else None,
    }


class Drain(threading.Thread):
    """Reads what the program writes to its terminal, as a terminal would: counts the
    bytes, keeps the first and the last 64 kB."""

    def __init__(self, fd: int):
        super().__init__(daemon=True)
        self.fd, self.bytes, self.head, self.tail = fd, 0, b"", b""

    def run(self) -> None:
        try:
            while data := os.read(self.fd, 65536):
                self.bytes += len(data)
                if len(self.head) < 65536:
                    self.head += data[:65536 - len(self.head)]
                self.tail = (self.tail + data)[-65536:]
        except OSError:  # the child closed the terminal
            pass
        finally:
            os.close(self.fd)

    def text(self) -> str:
        return (self.head + self.tail).decode("utf-8", "replace")


def bench_live(seconds: float, repeat: int, tmp: Path) -> dict:
    out = {}
    for rate in (2.0, 20.0):
        for dash in (False, True):
            runs = [run_live(seconds, rate, dashboard=dash, tmp=tmp) for _ in range(repeat)]
            key = f"{rate:g}Hz_dashboard_{'on' if dash else 'off'}"
            out[key] = {k: mmm(r[k] for r in runs) for k in runs[0]
                        if all(r[k] is not None for r in runs)}
    return out


# --------------------------------------------------------------------------- web
def _thread_cpu_s(pid: int, name: str) -> float | None:
    """CPU seconds of the process's thread called ``name`` (None when there is none)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            if (task / "comm").read_text().strip() == name:
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                return (int(fields[11]) + int(fields[12])) / TICK
        except (FileNotFoundError, ProcessLookupError):
            continue
    return None


def _looped_demo(seconds: float, tmp: Path) -> Path:
    """The demo, or (for runs longer than it) the demo repeated as a WAV file in ``tmp``."""
    import soundfile as sf

    info = sf.info(str(DEMO))
    if seconds <= info.duration:
        return DEMO
    path = tmp / f"demo_x{int(seconds)}.wav"
    if not path.exists():
        y, sr = sf.read(str(DEMO), dtype="float32")
        sf.write(str(path), np.tile(y, int(np.ceil(seconds / info.duration)) + 1), sr)
    return path


def run_web(seconds: float, *, web: bool, pages: int, history_s: float, tmp: Path) -> dict:
    """One paced 20-updates/s ``live --file`` run, with ``--web`` and ``pages`` Chromium
    pages on it or without; CPU from outside, page memory through the DevTools protocol."""
    port = free_port()
    cfg = tmp / "web.toml"
    cfg.write_text(f"[web]\nhistory_s = {history_s}\n")
    cmd = [*moodtrack_cmd(), "live", "--file", str(_looped_demo(seconds, tmp)), "--seconds",
           str(seconds), "--rate",
           "20", "--no-dashboard", "--no-zmq", "--config", str(cfg)]
    if web:
        cmd += ["--web", f"127.0.0.1:{port}"]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    sampler = Sampler(proc.pid, 0.5)
    sampler.start()
    memory: list[list[tuple[float, float, float]]] = []  # per page: (s, JS heap MB, nodes)
    web_cpu = []
    browser = pw = None
    try:
        if web:
            from playwright.sync_api import sync_playwright

            from tools.browser import launch, served_url

            url = served_url(proc)

            pw = sync_playwright().start()
            browser = launch(pw)
            sessions = []
            for _ in range(pages):
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(url)
                cdp = page.context.new_cdp_session(page)
                cdp.send("Performance.enable")
                sessions.append((page, cdp))
                memory.append([])
            start = time.monotonic()
            while proc.poll() is None:
                t = time.monotonic() - start
                for (page, cdp), series in zip(sessions, memory):
                    cdp.send("HeapProfiler.collectGarbage")
                    m = {x["name"]: x["value"] for x in cdp.send("Performance.getMetrics")["metrics"]}
                    series.append((t, m["JSHeapUsedSize"] / 1e6, m["Nodes"]))
                c = _thread_cpu_s(proc.pid, "moodtrack-web")
                if c is not None:
                    web_cpu.append((time.monotonic(), c))
                page.wait_for_timeout(10000)
        proc.wait()
    finally:
        if browser is not None:
            browser.close()
        if pw is not None:
            pw.stop()
        if proc.poll() is None:
            proc.kill()
    sampler.join()
    steady = [x for x in sampler.samples if x[0] >= t0 + 6.0]
    out = {"cpu_pct_of_core": 100.0 * (steady[-1][1] - steady[0][1]) / (steady[-1][0] - steady[0][0])
           if len(steady) >= 2 else None}
    if len(web_cpu) >= 2:
        (wa, ca), (wb, cb) = web_cpu[0], web_cpu[-1]
        out["web_thread_pct_of_core"] = 100.0 * (cb - ca) / (wb - wa)
    if memory:
        late = [s for series in memory for s in series if s[0] >= history_s + 10]
        early = [s for series in memory for s in series if history_s + 10 > s[0] >= 10]
        out["page_heap_mb_first"] = statistics.median(s[1] for s in early or late)
        out["page_heap_mb_last"] = statistics.median(s[1] for s in
                                                     (series[-1] for series in memory))
        out["page_heap_mb_max"] = max(s[1] for series in memory for s in series)
        out["page_nodes_last"] = statistics.median(series[-1][2] for series in memory)
        if late:
            lo = min(s[0] for s in late)
            a = [s[1] for s in late if s[0] <= lo + 15]
            b = [s[1] for s in late if s[0] >= max(x[0] for x in late) - 15]
            out["page_heap_drift_mb"] = statistics.median(b) - statistics.median(a)
        out["page_series"] = memory
    return out


def bench_web(seconds: float, repeat: int, tmp: Path, *, pages: int = 3,
              history_s: float = 60.0) -> dict:
    """With and without the web view, interleaved (so that other load hits both alike)."""
    base, web = [], []
    for _ in range(repeat):
        base.append(run_web(seconds, web=False, pages=0, history_s=history_s, tmp=tmp))
        web.append(run_web(seconds, web=True, pages=pages, history_s=history_s, tmp=tmp))
    out = {"seconds": seconds, "pages": pages, "history_s": history_s,
           "cpu_without": mmm(r["cpu_pct_of_core"] for r in base),
           "cpu_with": mmm(r["cpu_pct_of_core"] for r in web),
           "cpu_added": mmm(w["cpu_pct_of_core"] - b["cpu_pct_of_core"]
                            for b, w in zip(base, web))}
    for key in ("web_thread_pct_of_core", "page_heap_mb_first", "page_heap_mb_last",
                "page_heap_mb_max", "page_heap_drift_mb", "page_nodes_last"):
        if all(key in r for r in web):
            out[key] = mmm(r[key] for r in web)
    out["page_series"] = web[-1].get("page_series")
    return out


# -------------------------------------------------------------------------- frame
def bench_frame(repeat: int, frames: int = 100) -> dict:
    """CPU milliseconds per dashboard frame at TERM_SIZE with a full history (3 min at 20
    updates/s): the dashboard's own renderer (lines of segments -> ANSI, changed lines only)
    versus the same frame laid out and printed by rich (the naive approach)."""
    import io
    import random

    from rich.console import Console

    from realtime.dashboard import AnsiPainter, Snapshot, frame_lines, render
    from realtime.mood import MoodEstimator
    from realtime.stats import PipelineStats

    rng = random.Random(0)
    est = MoodEstimator(smoothing_s=2.0)
    history = [est.update(i / 20, rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(-70, -5))
               for i in range(3600 + frames)]
    stats = PipelineStats(device="bench", sample_rate=48000, channels=2, model="m").to_dict()
    cols, rows = TERM_SIZE
    snaps = [Snapshot(tuple(history[k:k + 3600]), stats, cols, rows, 180.0)
             for k in range(frames)]
    ours, naive = [], []
    for _ in range(repeat):
        painter = AnsiPainter("256")
        t0 = time.process_time()
        for snap in snaps:
            painter.paint(frame_lines(snap))
        ours.append(1e3 * (time.process_time() - t0) / frames)
        console = Console(file=io.StringIO(), width=cols, height=rows, color_system="256",
                          force_terminal=True)
        t0 = time.process_time()
        for snap in snaps[:frames // 4]:
            console.print(render(snap))
        naive.append(1e3 * (time.process_time() - t0) / (frames // 4))
    return {"ours_ms": mmm(ours), "rich_ms": mmm(naive),
            "ratio": mmm(n / o for o, n in zip(ours, naive))}


# -------------------------------------------------------------------------- machine
def machine() -> str:
    """Host, CPU model, cores available / in the machine, Python, load when measured."""
    from realtime.batch import available_cores

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{platform.node()}: {model}, {available_cores()} of {os.cpu_count()} cores "
            f"available, Python {platform.python_version()}, load average {load} at the start")


# -------------------------------------------------------------------------- report
def report(res: dict) -> str:
    lines = [f"### moodtrack benchmark — {res['machine']}", ""]
    lines.append("Every figure is min / median / max over runs.")
    lines.append("")
    if "offline" in res:
        o = res["offline"]
        lines += ["| offline `analyze` | min / median / max |", "|---|---|",
                  f"| audio | {o['audio_s'] / 60:.1f} min in {o['files']} files |",
                  f"| throughput, 1 process (x real time) | {fmt(o['x_realtime'], 'x', 0)} |",
                  f"| … excluding start-up | {fmt(o['x_realtime_excl_startup'], 'x', 0)} |",
                  f"| audio s per CPU s, 1 process | {fmt(o['x_realtime_cpu'], 'x', 0)} |",
                  f"| … excluding start-up | {fmt(o['x_realtime_cpu_excl_startup'], 'x', 0)} |",
                  f"| process start-up | {fmt(o['startup_s'], ' s', 2)} |",
                  f"| peak RSS | {fmt(o['peak_rss_mb'], ' MB', 0)} |"]
        if "x_realtime_jobs" in o:
            lines.append(f"| throughput, --jobs {o['jobs']} (x real time) | "
                         f"{fmt(o['x_realtime_jobs'], 'x', 0)} |")
        lines.append("")
    if "naive" in res:
        n = res["naive"]
        lines += ["| features only, same audio | x real time |", "|---|---|",
                  f"| streaming extractor | {fmt(n['ours_x_realtime'], 'x', 0)} |",
                  f"| naive per-window librosa | {fmt(n['naive_x_realtime'], 'x', 1)} |",
                  f"| **ratio** | **{fmt(n['ratio'], 'x', 0)}** |", ""]
    if "frame" in res:
        f = res["frame"]
        lines += [f"| dashboard frame, {TERM_SIZE[0]}x{TERM_SIZE[1]}, 3 min of history at 20/s "
                  "| CPU ms per frame |", "|---|---|",
                  f"| lines of segments -> ANSI, changed lines only | {fmt(f['ours_ms'], '', 2)} |",
                  f"| the same frame through rich's Console | {fmt(f['rich_ms'], '', 1)} |",
                  f"| **ratio** | **{fmt(f['ratio'], 'x', 0)}** |", ""]
    if "live" in res:
        cols = [("latency_p50_ms", "p50 latency (ms)", 1), ("latency_p99_ms", "p99 (ms)", 1),
                ("latency_max_ms", "max (ms)", 1), ("cpu_pct_of_core", "CPU % of a core", 1),
                ("startup_s", "start-up (s)", 2), ("peak_rss_mb", "peak RSS (MB)", 0),
                ("rss_drift_mb", "RSS drift (MB)", 1), ("terminal_kb_per_s", "terminal kB/s", 1)]
        lines += ["| live, paced | " + " | ".join(c[1] for c in cols) + " |",
                  "|---" * (len(cols) + 1) + "|"]
        for key, r in res["live"].items():
            cells = [fmt(r[k], "", d) if k in r else "–" for k, _, d in cols]
            lines.append(f"| {key.replace('_', ' ')} | " + " | ".join(cells) + " |")
        lines += ["", f"(dashboard on: a {TERM_SIZE[0]}x{TERM_SIZE[1]} pseudo-terminal, "
                  "TERM=xterm-256color; CPU: the process's user+system time per second)"]
    if "web" in res:
        w = res["web"]
        lines += ["", f"| web view, 20 updates/s, {w['pages']} pages, {w['seconds']:g} s runs "
                  f"(page history {w['history_s']:g} s) | value |", "|---|---|",
                  f"| process CPU without / with --web (% of a core) | "
                  f"{fmt(w['cpu_without'])} / {fmt(w['cpu_with'])} |",
                  f"| added by --web (% of a core) | {fmt(w['cpu_added'], '', 2)} |"]
        if "web_thread_pct_of_core" in w:
            lines.append(f"| web server thread alone (% of a core) | "
                         f"{fmt(w['web_thread_pct_of_core'], '', 2)} |")
        if "page_heap_mb_last" in w:
            lines += [f"| page JS heap after GC: first / last / max (MB) | "
                      f"{w['page_heap_mb_first']['median']:.2f} / "
                      f"{w['page_heap_mb_last']['median']:.2f} / "
                      f"{w['page_heap_mb_max']['median']:.2f} |",
                      f"| page JS heap drift once the history is full (MB) | "
                      f"{fmt(w['page_heap_drift_mb'], '', 2) if 'page_heap_drift_mb' in w else '–'} |",
                      f"| page DOM nodes at the end | {w['page_nodes_last']['median']:.0f} |"]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, help="shared data dir: use 4Q clips for the offline run")
    ap.add_argument("--minutes", type=float, default=30.0, help="audio for the offline run")
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure")
    ap.add_argument("--live-seconds", type=float, default=60.0, help="paced audio per live run")
    ap.add_argument("--naive-seconds", type=float, default=60.0, help="audio for the naive run")
    ap.add_argument("--web-seconds", type=float, default=180.0,
                    help="paced audio per web-view run (with and without --web)")
    ap.add_argument("--web-history", type=float, default=60.0,
                    help="seconds of history the pages keep in the web runs ([web] history_s)")
    ap.add_argument("--sections", default="offline,naive,frame,live,web")
    ap.add_argument("--quick", action="store_true", help="short smoke run of every section")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    if args.quick:
        args.minutes, args.repeat, args.live_seconds, args.naive_seconds = 2.0, 1, 8.0, 10.0
        args.web_seconds = 30.0
    res = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    sections = set(args.sections.split(","))
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if "offline" in sections:
            paths = offline_inputs(args.data, args.minutes, tmp)
            res["offline"] = bench_offline(paths, tmp, args.repeat)
            print(report({k: res[k] for k in ("machine", "offline")}), file=sys.stderr)
        if "naive" in sections:
            res["naive"] = bench_naive(args.naive_seconds, args.repeat)
        if "frame" in sections:
            res["frame"] = bench_frame(args.repeat)
        if "live" in sections:
            res["live"] = bench_live(args.live_seconds, args.repeat, tmp)
        if "web" in sections:
            res["web"] = bench_web(args.web_seconds, args.repeat, tmp,
                                   history_s=args.web_history)
    print(report(res))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
