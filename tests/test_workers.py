"""analyze's worker processes (issue 16): never more than the cores, never orphans --
a real kill -9 of a real parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import soundfile as sf

from realtime import batch
from tests.conftest import ROOT, SR, run_moodtrack, tone_mix


def _children(pid: int) -> set[int]:
    """Pids whose parent is ``pid``."""
    out = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.add(int(d.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has exited (nobody reaped it yet)


def test_workers_exit_when_their_parent_is_killed_9(tiny_model_path, tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    for k in range(4):
        sf.write(lib / f"{k}.wav", tone_mix(60.0, seed=k), SR)
    proc = subprocess.Popen([sys.executable, "-m", "realtime", "analyze", str(lib), "-o",
                             str(tmp_path / "out"), "--jobs", "2"], cwd=ROOT,
                            env={**os.environ, "MOODTRACK_MODEL": str(tiny_model_path),
                                 "PYTHONPATH": str(ROOT)},
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    kids: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while len(kids) < 3:  # two workers and the resource tracker
            assert proc.poll() is None and time.monotonic() < deadline, kids
            kids |= _children(proc.pid)
            time.sleep(0.05)
        time.sleep(1.0)  # the workers are importing or analysing
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 10
        while any(map(_alive, kids)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [k for k in kids if _alive(k)], "orphaned worker processes"
    finally:
        proc.kill()
        for k in kids:
            if _alive(k):
                os.kill(k, signal.SIGKILL)


def test_jobs_beyond_the_cores_are_lowered_with_a_note(tiny_model_path, tmp_path, monkeypatch):
    cores = batch.available_cores()
    assert batch.worker_count(None) == (cores, None)
    assert batch.worker_count(cores) == (cores, None)
    jobs, note = batch.worker_count(cores + 62)
    assert jobs == cores and note.startswith(f"--jobs {cores + 62} lowered to {cores}")
    sf.write(tmp_path / "a.wav", tone_mix(2.0), SR)
    sf.write(tmp_path / "b.wav", tone_mix(2.0, seed=1), SR)
    p = run_moodtrack(tiny_model_path, "analyze", tmp_path / "a.wav", tmp_path / "b.wav", "-o",
                      tmp_path / "out", "--jobs", "64")
    assert p.returncode == 0, p.stderr
    assert f"moodtrack analyze: --jobs 64 lowered to {cores}" in p.stderr
