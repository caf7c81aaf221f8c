"""Every value a user gives is checked before any work (issue 16): one line naming the
key, file or option and what is allowed, exit 2, never a traceback -- the real command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _moodtrack(model, *args, timeout=60):
    return subprocess.run([sys.executable, "-m", "realtime", *map(str, args)], cwd=ROOT,
                          env={**os.environ, "MOODTRACK_MODEL": str(model),
                               "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def _one_error(p) -> str:
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "Traceback" not in p.stderr, p.stderr
    lines = p.stderr.strip().splitlines()
    assert lines[-1].startswith("moodtrack: error: "), p.stderr
    return lines[-1]


@pytest.mark.parametrize("raw, message", [
    (b"\xef\xbb\xbf[analysis]\nupdate_hz = 4.0\n", None),  # a BOM is fine
    (b"[analysis]\nupdate_hz = 4.0 # caf\xe9\n", "is not UTF-8 text (byte 32, line 2)"),
])
def test_config_file_encoding(tiny_model_path, tmp_path, raw, message):
    cfg = tmp_path / "c.toml"
    cfg.write_bytes(raw)
    p = _moodtrack(tiny_model_path, "demo", "--config", cfg, "--print-config")
    if message is None:
        assert p.returncode == 0 and "update_hz = 4.0" in p.stdout, p.stderr
    else:
        assert f"config file {cfg} {message}" in _one_error(p)


def test_malformed_curve_keys_are_refused_at_start_naming_the_file(tiny_model_path, tmp_path):
    keys = tmp_path / "k"
    assert _moodtrack(tiny_model_path, "keys", keys).returncode == 0
    (keys / "authorized_clients" / "evil.key").write_text("garbage\n")
    line = _one_error(_moodtrack(tiny_model_path, "demo", "--zmq-keys", keys, "--no-dashboard",
                                 "--seconds", "1", "--zmq", "tcp://127.0.0.1:0"))
    assert f"CURVE key file {keys / 'authorized_clients' / 'evil.key'} is not a key file" in line
    assert "remove it" in line
    (keys / "authorized_clients" / "evil.key").unlink()
    secret = keys / "server.key_secret"
    text = secret.read_text()
    start = text.index('secret-key = "') + len('secret-key = "')
    secret.write_text(text[:start + 10] + text[text.index('"', start):])  # a short secret key
    line = _one_error(_moodtrack(tiny_model_path, "demo", "--zmq-keys", keys, "--no-dashboard",
                                 "--seconds", "1", "--zmq", "tcp://127.0.0.1:0"))
    assert f"CURVE key file {secret} holds a malformed secret key" in line
    assert "--zmq" not in line  # not blamed on the address
