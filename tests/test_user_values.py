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


# ------------------------------------------------------------ run options and config
@pytest.mark.parametrize("value", ["inf", "1e308", "nan", "-1", "0"])
def test_seconds_must_be_finite_and_positive(tiny_model_path, value):
    line = _one_error(run_moodtrack(tiny_model_path, "demo", "--no-dashboard", "--no-zmq",
                                    "--seconds", value))
    assert f"--seconds {float(value):g} is invalid: it must be a number of seconds in (0, " in line


def _config(tmp_path, text: str):
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def test_a_capture_queue_too_large_for_memory_is_refused(tiny_model_path, tmp_path):
    import numpy as np
    import soundfile as sf

    wav = tmp_path / "wide.wav"
    sf.write(wav, np.zeros((2205, 64), np.float32), 22050)
    cfg = _config(tmp_path, "[input]\nblocksize = 65536\nqueue_blocks = 4096\n")
    line = _one_error(run_moodtrack(tiny_model_path, "live", "--file", wav, "--config", cfg,
                                    "--no-zmq", "--no-dashboard"))
    assert "input.blocksize = 65536 with input.queue_blocks = 4096 and 64 channel(s) needs a " \
           "64.0 GiB capture queue" in line


def test_osc_targets_and_address_maps_are_bounded(tiny_model_path, tmp_path):
    targets = ", ".join(f'"127.0.0.1:{9000 + k}"' for k in range(5000))
    line = _one_error(run_moodtrack(tiny_model_path, "demo", "--print-config", "--config",
                                    _config(tmp_path, f"[lighting]\nosc = [{targets}]\n")))
    assert "5000 OSC targets is too many: at most " in line and "lighting.osc" in line
    many = ", ".join(f'"/fixture/{k}/intensity"' for k in range(5000))
    line = _one_error(run_moodtrack(tiny_model_path, "demo", "--print-config", "--config",
                                    _config(tmp_path, f"[lighting.osc_map]\narousal = [{many}]\n")))
    assert "OSC address map: its bundle would be" in line and "more than the 8192 allowed" in line
    few = ", ".join(f'"/fixture/{k}/intensity"' for k in range(40))
    p = run_moodtrack(tiny_model_path, "demo", "--print-config", "--config",
                      _config(tmp_path, f"[lighting.osc_map]\narousal = [{few}]\n"))
    assert p.returncode == 0, p.stderr


# ------------------------------------------------------------------- model metadata
def _altered_model(src, dst, *, meta=None, graph=None):
    """A copy of the ONNX model ``src`` with metadata changed, or its graph replaced by
    ``graph(n_features)`` -> (nodes, initializers, output width)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(src))
    props = {p.key: p.value for p in model.metadata_props}
    props.update(meta or {})
    if graph is not None:
        n_in = len(props["feature_names"].split(","))
        nodes, inits, width = graph(n_in, np, helper, numpy_helper)
        g = helper.make_graph(nodes, "altered",
                              [helper.make_tensor_value_info("features", TensorProto.FLOAT,
                                                             [None, n_in])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT,
                                                             [None, width])], inits)
        model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = 8
    del model.metadata_props[:]
    for k, v in props.items():
        model.metadata_props.add(key=k, value=v)
    onnx.save(model, str(dst))
    return dst


def _matmul(width, add):
    def graph(n_in, np, helper, numpy_helper):
        w = numpy_helper.from_array(np.zeros((n_in, width), np.float32), "w")
        b = numpy_helper.from_array(np.full((width,), add, np.float32), "b")
        return [helper.make_node("MatMul", ["features", "w"], ["y"]),
                helper.make_node("Add", ["y", "b"], ["out"])], [w, b], width
    return graph


@pytest.mark.parametrize("meta, graph, message", [
    ({"sample_rate": "0"}, None, "metadata sample_rate = '0' is invalid: it must be an integer"),
    ({"hop_length": "0"}, None, "metadata hop_length = '0' is invalid"),
    ({"context_s": "1e9"}, None, "metadata context_s = '1e9' is invalid: it must be a number in"),
    ({"residual_std": "nan,nan"}, None, "metadata residual_std = 'nan,nan' is invalid: it must "
                                        "be 2 comma-separated finite positive numbers"),
    ({"output_scale": "inf,inf"}, None, "metadata output_scale = 'inf,inf' is invalid"),
    (None, _matmul(3, 0.0), "gives 3 values per update, not 2"),
    (None, _matmul(2, float("nan")), "gives a non-finite output"),
])
def test_a_broken_model_is_refused_once_when_it_loads(tiny_model_path, tmp_path, meta, graph,
                                                      message):
    import soundfile as sf

    from tests.conftest import SR, tone_mix

    bad = _altered_model(tiny_model_path, tmp_path / "bad.onnx", meta=meta, graph=graph)
    for k in range(3):
        sf.write(tmp_path / f"{k}.wav", tone_mix(2.0, seed=k), SR)
    p = run_moodtrack(tiny_model_path, "analyze", tmp_path, "-o", tmp_path / "out", "-j", "1",
                      "--model", bad)
    line = _one_error(p)
    assert line.startswith(f"moodtrack: error: model {bad}") and message in line, line
    assert p.stderr.count("moodtrack: error") == 1 and "please report" not in p.stderr
    assert not (tmp_path / "out" / "0.wav.csv").exists()


def test_a_non_finite_output_while_running_is_an_error_never_a_mood():
    from realtime.mood import MoodEstimator, ModelOutputError

    est = MoodEstimator()
    assert est.update(1.0, 0.3, -0.2, -20.0).mood == "calm"
    for v, a in ((float("nan"), 0.1), (0.1, float("inf"))):
        with pytest.raises(ModelOutputError, match="non-finite output .* no mood is made of it"):
            est.update(1.5, v, a, -20.0)
