"""The command line's lighting and ZeroMQ options end to end: OSC receivers, a CONFLATE
subscriber, the status topic, CURVE keys with 'moodtrack keys' and 'listen --keys'."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib

import pytest
import zmq

from realtime import cli
from tests.test_cli import ROOT, _env, _free_port
from tests.test_osc import Receiver


def test_demo_sends_osc_to_each_target_and_single_frames_with_colour(capsys, tiny_model_path):
    a, b = Receiver(), Receiver()
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    ctx = zmq.Context()
    latest = ctx.socket(zmq.SUB)
    latest.setsockopt(zmq.LINGER, 0)
    latest.setsockopt(zmq.CONFLATE, 1)
    latest.setsockopt(zmq.SUBSCRIBE, b"mood")
    latest.connect(endpoint)  # before the publisher binds: ZeroMQ reconnects
    status = ctx.socket(zmq.SUB)
    status.setsockopt(zmq.LINGER, 0)
    status.setsockopt(zmq.SUBSCRIBE, b"status")
    status.connect(endpoint)
    try:
        rc = cli.main(["demo", "--seconds", "2", "--model", str(tiny_model_path),
                       "--zmq", endpoint, "--zmq-frames", "single",
                       "--osc", f"127.0.0.1:{a.port}", "--osc", str(b.port),
                       "--osc-range", "bipolar", "--palette", "colorblind",
                       "--color-smoothing", "0"])
        captured = capsys.readouterr()
        got_a, got_b = a.wait(15), b.wait(15)
        frames = latest.recv_multipart() if latest.poll(2000) else None
        st = status.recv_multipart() if status.poll(2000) else None
    finally:
        a.close()
        b.close()
        latest.close(0)
        status.close(0)
        ctx.term()
    assert rc == 0, captured.err
    assert f"OSC 127.0.0.1:{a.port}, OSC {b.port}" in captured.err
    updates = captured.out.splitlines()  # the log: 1.0, 1.5, 2.0 s
    assert len(updates) == 3
    for got, rec in ((got_a, a), (got_b, b)):
        assert len(rec.got) == 3 * 5  # 3 bundles of 5 messages
        assert -1 <= got["/mood/valence"][0] <= 1 and got["/mood/quadrant"][0] in (1, 2, 3, 4)
        assert len(got["/mood/color"]) == 3
    last = updates[-1].split()
    assert got_a["/mood/valence"][0] == pytest.approx(float(last[3][2:]), abs=0.006)
    assert frames is not None and len(frames) == 1 and frames[0].startswith(b"mood {")
    msg = json.loads(frames[0][5:])
    assert msg["t"] == 2.0  # CONFLATE: the latest update only
    assert re.fullmatch(r"#[0-9a-f]{6}", msg["color_hex"]) and len(msg["color"]) == 3
    assert got_a["/mood/color"] == pytest.approx(tuple(msg["color"]), abs=1e-4)
    assert st is not None and st[0].startswith(b"status {")
    s = json.loads(st[0][7:])
    assert s["model"] == "tiny-test" and s["device"].endswith("demo.ogg")
    assert s["input_state"] == "ok" and s["sample_rate"] == 22050


def test_keys_then_curve_publisher_and_listen_keys(tmp_path, capsys, tiny_model_path):
    keys = tmp_path / "keys"
    assert cli.main(["keys", str(keys)]) == 0
    out = capsys.readouterr().out
    assert "server.key" in out and "client.key_secret" in out and "--zmq-keys" in out
    assert cli.main(["keys", str(keys), "--client", "vj"]) == 0
    assert cli.main(["keys", str(keys), "--client", "vj"]) == 2
    assert "exists already" in capsys.readouterr().err
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "realtime", "demo", "--seconds", "20", "--no-dashboard",
         "--zmq", f"tcp://0.0.0.0:{port}", "--zmq-keys", str(keys)],
        cwd=ROOT, env=_env(tiny_model_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        rc = cli.main(["listen", f"tcp://127.0.0.1:{port}", "--keys", str(keys),
                       "--client", "vj", "-n", "2", "--timeout", "20"])
        got = capsys.readouterr().out.splitlines()
        rc_status = cli.main(["listen", f"tcp://127.0.0.1:{port}", "--keys", str(keys),
                              "--topic", "status", "-n", "1", "--timeout", "10"])
        status = capsys.readouterr().out.splitlines()
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert rc == 0 and len(got) == 2 and json.loads(got[0])["mood"]
    assert rc_status == 0 and json.loads(status[0])["model"] == "tiny-test"
    assert b"warning" not in err  # a wide bind with keys


def test_print_config_with_lighting_options(capsys):
    rc = cli.main(["live", "--config", "calm", "--osc", "10.0.0.5:7000", "--osc-delay", "120",
                   "--zmq-frames", "single", "--zmq-delay", "80", "--brightness", "fixed",
                   "--print-config"])
    cfg = tomllib.loads(capsys.readouterr().out)
    assert rc == 0
    assert cfg["lighting"] == {"palette": "default", "brightness": "fixed", "smoothing_s": 6.0,
                               "osc": ["10.0.0.5:7000"], "osc_range": "unit",
                               "osc_delay_ms": 120.0, "osc_map": {}}
    assert cfg["output"]["zmq_frames"] == "single" and cfg["output"]["zmq_delay_ms"] == 80.0
    assert cfg["analysis"]["smoothing_s"] == 8.0


def test_config_file_address_map(tmp_path, capsys):
    path = tmp_path / "rig.toml"
    path.write_text('[lighting]\nosc = ["127.0.0.1:7000"]\n[lighting.osc_map]\n'
                    'arousal = "/composition/layers/1/video/opacity"\n'
                    'red = ["/par/1/red", "/par/2/red"]\nvalence = ""\n')
    assert cli.main(["demo", "--config", str(path), "--print-config"]) == 0
    cfg = tomllib.loads(capsys.readouterr().out)
    assert cfg["lighting"]["osc_map"] == {"arousal": "/composition/layers/1/video/opacity",
                                          "red": ["/par/1/red", "/par/2/red"], "valence": ""}
    path.write_text('[lighting.osc_map]\nloudness = "/x"\n')
    assert cli.main(["demo", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "lighting.osc_map" in err and "unknown field 'loudness'" in err


@pytest.mark.parametrize("argv, message", [
    (["demo", "--osc", "localhost"], r"--osc \['localhost'\] is invalid: OSC target"),
    (["demo", "--osc", "127.0.0.1:99999"], r"port in 1\.\.65535"),
    (["demo", "--osc-delay", "-5"], r"--osc-delay -5.0 is invalid: .*\[0, 10000\]"),
    (["demo", "--zmq-delay", "20000"], r"--zmq-delay 20000.0 is invalid"),
    (["demo", "--color-smoothing", "-1"], r"--color-smoothing -1.0 is invalid"),
    (["demo", "--zmq-keys", "/nonexistent/keys", "--seconds", "1"],
     r"CURVE key file /nonexistent/keys/server.key_secret cannot be read.*moodtrack keys"),
    (["demo", "--osc", "no-such-host.invalid:9000", "--no-zmq", "--seconds", "1"],
     r"cannot resolve 'no-such-host.invalid'"),
])
def test_lighting_errors_exit_2_naming_the_option(argv, message, capsys, tiny_model_path,
                                                  monkeypatch):
    monkeypatch.setenv("MOODTRACK_MODEL", str(tiny_model_path))
    rc = cli.main(argv)
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert re.search(message, err), err
