"""Every value a user gives is checked before any work (issue 16): one line naming the
key, file or option and what is allowed, exit 2, never a traceback -- the real command."""

from __future__ import annotations

import pytest

from tests.conftest import run_moodtrack

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
    p = run_moodtrack(tiny_model_path, "demo", "--config", cfg, "--print-config")
    if message is None:
        assert p.returncode == 0 and "update_hz = 4.0" in p.stdout, p.stderr
    else:
        assert f"config file {cfg} {message}" in _one_error(p)


def test_malformed_curve_keys_are_refused_at_start_naming_the_file(tiny_model_path, tmp_path):
    keys = tmp_path / "k"
    assert run_moodtrack(tiny_model_path, "keys", keys).returncode == 0
    (keys / "authorized_clients" / "evil.key").write_text("garbage\n")
    line = _one_error(run_moodtrack(tiny_model_path, "demo", "--zmq-keys", keys, "--no-dashboard",
                                 "--seconds", "1", "--zmq", "tcp://127.0.0.1:0"))
    assert f"CURVE key file {keys / 'authorized_clients' / 'evil.key'} is not a key file" in line
    assert "remove it" in line
    (keys / "authorized_clients" / "evil.key").unlink()
    secret = keys / "server.key_secret"
    text = secret.read_text()
    start = text.index('secret-key = "') + len('secret-key = "')
    secret.write_text(text[:start + 10] + text[text.index('"', start):])  # a short secret key
    line = _one_error(run_moodtrack(tiny_model_path, "demo", "--zmq-keys", keys, "--no-dashboard",
                                 "--seconds", "1", "--zmq", "tcp://127.0.0.1:0"))
    assert f"CURVE key file {secret} holds a malformed secret key" in line
    assert "--zmq" not in line  # not blamed on the address


def test_an_ipc_endpoint_in_use_is_refused_like_a_busy_port(tiny_model_path, tmp_path):
    import os
    import subprocess
    import sys
    import time

    from tests.conftest import ROOT

    path = tmp_path / "mood.sock"
    first = subprocess.Popen([sys.executable, "-m", "realtime", "demo", "--no-dashboard",
                              "--zmq", f"ipc://{path}", "--seconds", "60"], cwd=ROOT,
                             env={**os.environ, "MOODTRACK_MODEL": str(tiny_model_path),
                                  "PYTHONPATH": str(ROOT)},
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not path.exists():
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        line = _one_error(run_moodtrack(tiny_model_path, "demo", "--no-dashboard", "--zmq",
                                        f"ipc://{path}", "--seconds", "1"))
        assert f"cannot publish on ipc://{path}: address already in use" in line
        assert first.poll() is None  # the first tracker still owns it
    finally:
        first.kill()
        first.wait(10)
    # A socket nobody listens on (left by the killed run) is taken; a plain file never is.
    p = run_moodtrack(tiny_model_path, "demo", "--no-dashboard", "--zmq", f"ipc://{path}",
                      "--seconds", "1")
    assert p.returncode == 0, p.stderr
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    line = _one_error(run_moodtrack(tiny_model_path, "demo", "--no-dashboard", "--zmq",
                                    f"ipc://{notes}", "--seconds", "1"))
    assert "exists and is not a socket" in line and notes.read_text() == "mine"
