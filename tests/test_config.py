"""Configuration: precedence, validation messages, presets, TOML output."""

from __future__ import annotations

import tomllib

import pytest

from realtime import config
from realtime.errors import MoodtrackError


def _write(tmp_path, text, name="c.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_then_file_then_command_line(tmp_path):
    path = _write(tmp_path, "[analysis]\nupdate_hz = 5\nsmoothing_s = 1.5\n[output]\nzmq = \"\"\n")
    cfg = config.load(path, {"analysis": {"update_hz": 8.0}})
    assert cfg["analysis"]["update_hz"] == 8.0  # command line wins over the file
    assert cfg["analysis"]["smoothing_s"] == 1.5  # the file wins over the default
    assert isinstance(cfg["analysis"]["smoothing_s"], float)
    assert cfg["output"]["zmq"] == ""
    assert cfg["analysis"]["silence_db"] == config.defaults()["analysis"]["silence_db"]
    assert config.load()["analysis"]["update_hz"] == 2.0


@pytest.mark.parametrize("text, message", [
    ("[analysis]\nupdate_hz = 50\n", r"analysis.update_hz = 50.0 is invalid: .*\(0, 20\]"),
    ("[analysis]\nupdate_hz = 0\n", r"analysis.update_hz .*\(0, 20\]"),
    ("[analysis]\nupdate_hz = \"fast\"\n", "analysis.update_hz = 'fast' is invalid: it must be a number"),
    ("[analysis]\nrate = 2\n", "unknown key analysis.rate; .*update_hz"),
    ("[inputs]\ndevice = 1\n", r"unknown section \[inputs\]; .*\[input\]"),
    ("update_hz = 5\n", r"key update_hz is outside any section; put it under \[analysis\]$"),
    ("smoothing_s = 1\n", r"smoothing_s is outside any section; put it under \[analysis\] or "
     r"\[lighting\]"),
    ("rate = 1\n", r"key rate is outside any section; keys go under \[input\], \[analysis\]"),
    ("[input]\nchannels = 2.5\n", "input.channels = 2.5 is invalid: it must be an integer in "
     r"\[1, 64\] or 0 \(auto\)"),
    ("[input]\nblocksize = true\n", "input.blocksize = True is invalid"),
    ("[output]\ndashboard = 1\n", "output.dashboard = 1 is invalid: it must be true or false"),
    ("[input]\nsample_rate = 1000\n", r"input.sample_rate .*\[8000, 384000\] or 0"),
    ("analysis = 3\n", r"analysis must be a table"),
    ("[output]\non_csv_error = \"ignore\"\n",
     'output.on_csv_error = .ignore. is invalid: it must be one of "stop", "continue"'),
    ("[analysis\nupdate_hz = 2\n", "is not valid TOML"),
])
def test_bad_config_file_names_file_key_and_allowed_values(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(MoodtrackError, match=message) as err:
        config.load(path)
    assert str(path) in str(err.value)


def test_command_line_errors_name_the_option():
    with pytest.raises(MoodtrackError, match=r"--rate 25.0 is invalid: .*\(0, 20\]"):
        config.load(None, {"analysis": {"update_hz": 25.0}},
                    labels={"analysis.update_hz": "--rate"})


def test_device_accepts_index_or_name():
    assert config.validate({"input": {"device": 3}}) == {"input": {"device": 3}}
    assert config.validate({"input": {"device": "USB"}}) == {"input": {"device": "USB"}}
    with pytest.raises(MoodtrackError, match="device index or a part of its name"):
        config.validate({"input": {"device": 1.5}})


def test_presets_are_valid_and_differ_as_documented():
    names = {p.stem for p in config.CONFIG_DIR.glob("*.toml")}
    assert {"default", "film-mix", "lighting"} <= names
    d = config.load(config.find_config("default"))
    assert d == config.defaults()  # default.toml documents the defaults exactly
    lighting = config.load("lighting")
    assert lighting["analysis"]["update_hz"] > d["analysis"]["update_hz"]
    assert lighting["analysis"]["smoothing_s"] > d["analysis"]["smoothing_s"]
    film = config.load(config.CONFIG_DIR / "film-mix.toml")
    assert film["input"]["channels"] == 0 and film["analysis"]["smoothing_s"] > 2


def test_missing_config_lists_presets(tmp_path):
    with pytest.raises(MoodtrackError, match="not found.*film-mix.*lighting"):
        config.load(tmp_path / "nope.toml")


def test_to_toml_round_trips():
    cfg = config.load(None, {"input": {"device": "Scarlett \"18i20\""},
                             "output": {"csv": "C:\\x.csv", "dashboard": False}})
    text = config.to_toml(cfg)
    assert tomllib.loads(text) == cfg
