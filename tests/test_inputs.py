"""Inputs a user controls (issue 16): only regular files are opened, and every file or
folder skipped is named with why -- through the real command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import soundfile as sf

from tests.conftest import SR, tone_mix

ROOT = Path(__file__).resolve().parent.parent


def _moodtrack(model, *args, timeout=60):
    return subprocess.run([sys.executable, "-m", "realtime", *map(str, args)], cwd=ROOT,
                          env={**os.environ, "MOODTRACK_MODEL": str(model),
                               "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def test_a_fifo_is_named_and_skipped_never_opened_for_reading(tiny_model_path, tmp_path):
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    sf.write(tmp_path / "good.wav", tone_mix(2.0), SR)
    out = tmp_path / "out"
    p = _moodtrack(tiny_model_path, "analyze", fifo, tmp_path / "good.wav", "-o", out)
    assert p.returncode == 1, p.stderr  # it would hang forever if the FIFO were opened
    assert f"{fifo}: cannot read audio file {fifo}: it is a FIFO (named pipe), not a regular " \
           "file" in p.stderr
    assert (out / "good.wav.csv").is_file()
    p = _moodtrack(tiny_model_path, "live", "--file", fifo, "--no-zmq", "--no-dashboard")
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip().splitlines()[-1] == (
        f"moodtrack: error: cannot read audio file {fifo}: it is a FIFO (named pipe), not a "
        "regular file")
    p = _moodtrack(tiny_model_path, "live", "--file", "/dev/null", "--no-zmq")
    assert p.returncode == 2 and "/dev/null: it is a character device" in p.stderr, p.stderr
