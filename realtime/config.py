"""Run configuration: defaults < TOML config file < command line.

The configuration is a two-level TOML table (``[input]``, ``[analysis]``, ``[output]``,
``[lighting]``, ``[web]``; ``lighting.osc_map`` is itself a table).
Every key is declared in :data:`OPTIONS` with its type, default and allowed range; an
unknown key or a wrong type or value is a :class:`MoodtrackError` naming the key and
what it allows. Presets live in ``configs/`` (``--config film-mix`` finds
``configs/film-mix.toml``).
"""

from __future__ import annotations

import copy
import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from realtime.errors import MoodtrackError
from realtime.resources import shipped_dir

#: The shipped presets (``configs/`` of the source tree, ``realtime.configs`` installed).
CONFIG_DIR = shipped_dir("configs")
MAX_UPDATE_HZ = 20.0
#: Largest config file read (a config is a few hundred bytes; this bounds the OSC map too).
MAX_CONFIG_BYTES = 1 << 20


@dataclass(frozen=True)
class Option:
    """One config key: ``kind`` is ``"int"``, ``"float"``, ``"bool"``, ``"str"``,
    ``"device"`` (int index or str name), ``"list"`` (of strings) or ``"table"`` (a TOML
    table); ``lo``/``hi`` bound numbers (inclusive unless ``lo_open``); ``zero_ok`` also
    allows 0 for a number with a range (meaning "auto" or "off"); ``choices``: the strings
    a ``"str"`` allows (any when empty); ``checker``: for lists and tables, a function
    that raises a MoodtrackError saying what is wrong, or returns the value to keep."""

    kind: str
    default: Any
    help: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    zero_ok: bool = False
    choices: tuple[str, ...] = ()
    checker: Callable[[Any], Any] | None = None

    def allowed(self) -> str:
        if self.kind == "bool":
            return "true or false"
        if self.kind == "str":
            return "one of " + ", ".join(f'"{c}"' for c in self.choices) if self.choices \
                else "a string"
        if self.kind == "list":
            return "a list of strings"
        if self.kind == "table":
            return "a table"
        if self.kind == "device":
            return "a device index or a part of its name (\"\" = the default input)"
        rng = f"{'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}]"
        return f"{'an integer' if self.kind == 'int' else 'a number'} in {rng}" + (
            " or 0 (auto)" if self.zero_ok else "")

    def check(self, name: str, value: Any) -> Any:
        """The value converted to the option's type, or a MoodtrackError."""
        ok = {
            "bool": isinstance(value, bool),
            "str": isinstance(value, str),
            "device": isinstance(value, (int, str)) and not isinstance(value, bool),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "float": isinstance(value, (int, float)) and not isinstance(value, bool),
            "list": isinstance(value, list) and all(isinstance(v, str) for v in value),
            "table": isinstance(value, dict),
        }[self.kind]
        if ok and self.choices:
            ok = value in self.choices
        if ok and self.kind in ("int", "float"):
            value = int(value) if self.kind == "int" else float(value)
            if not (self.zero_ok and value == 0):
                ok = math.isfinite(value) and (self.lo is None or (
                    value > self.lo if self.lo_open else value >= self.lo)) and (
                    self.hi is None or value <= self.hi)
        if not ok:
            raise MoodtrackError(f"{name} {value!r} is invalid: it must be "
                                 f"{self.allowed()}")
        if self.checker is not None:
            try:
                checked = self.checker(value)
            except MoodtrackError as exc:
                raise MoodtrackError(f"{name} {value!r} is invalid: {exc}") from None
            return value if checked is None else checked
        return value


def _osc_targets(values: list[str]) -> list[str]:
    from realtime.osc import check_targets

    return check_targets(values)


def _web_listen(value: str) -> str:
    from realtime.web import LISTEN_HELP, parse_listen

    if value:
        try:
            parse_listen(value)
        except MoodtrackError:
            raise MoodtrackError(LISTEN_HELP) from None
    return value


def _channel_weights(table: dict) -> dict:
    from realtime.channels import check_weights

    return check_weights(table)


def _osc_map(table: dict) -> dict:
    from realtime.osc import check_address_map

    check_address_map(table)
    return dict(table)


OPTIONS: dict[str, dict[str, Option]] = {
    "input": {
        "device": Option("device", "", "input device: index or name substring; \"\" = default"),
        "sample_rate": Option("int", 0, "capture sample rate in Hz; 0 = the device's default",
                              lo=8000, hi=384000, zero_ok=True),
        "channels": Option("int", 0, "input channels (mixed to mono); 0 = the first 2 (1 on a mono device)",
                           lo=1, hi=64, zero_ok=True),
        "blocksize": Option("int", 1024, "frames per captured block", lo=64, hi=65536),
        "queue_blocks": Option("int", 64, "capture queue length in blocks", lo=2, hi=4096),
        "channel_weights": Option("table", {}, "weights of the analysis mix by channel, "
                                  "role = weight (roles L R C LFE Ls Rs Lrs Rrs, or ch1, ch2 "
                                  "...; others weigh 1); {} = all channels alike",
                                  checker=_channel_weights),
    },
    "analysis": {
        "model": Option("str", "", "ONNX model path; \"\" = $MOODTRACK_MODEL or models/mood.onnx"),
        "update_hz": Option("float", 2.0, "mood updates per second", lo=0.0, hi=MAX_UPDATE_HZ,
                            lo_open=True),
        "smoothing_s": Option("float", 2.0, "exponential smoothing time constant in seconds",
                              lo=0.0, hi=600.0),
        "silence_db": Option("float", -60.0, "level (dBFS) below which the input is silence",
                             lo=-150.0, hi=0.0),
        "loudness": Option("bool", True, "measure momentary and short-term loudness (LUFS, "
                           "BS.1770) of the input as captured"),
        "speech_hold": Option("float", 0.0, "hold the mood while the speech value is at least "
                              "this (dialogue over the score); 0 = never hold", lo=0.0, hi=1.0),
    },
    "output": {
        "dashboard": Option("bool", True, "terminal dashboard (off: one log line per update)"),
        "csv": Option("str", "", "CSV timeline path; \"\" = none"),
        "on_csv_error": Option("str", "stop", "CSV cannot be written (disk full...): "
                               "\"stop\" the run, or \"continue\" without it",
                               choices=("stop", "continue")),
        "zmq": Option("str", "tcp://127.0.0.1:5556", "ZeroMQ PUB endpoint; \"\" = none"),
        "zmq_hwm": Option("int", 16, "ZeroMQ send high-water mark in messages", lo=1, hi=100000),
        "zmq_frames": Option("str", "multi", "ZeroMQ framing: multi (topic + JSON frames) or "
                             "single (\"mood {json}\", for ZMQ_CONFLATE subscribers)",
                             choices=("multi", "single")),
        "zmq_keys": Option("str", "", "folder from 'moodtrack keys': CURVE-encrypt ZeroMQ and "
                           "admit only its authorized clients; \"\" = plain"),
        "zmq_status_s": Option("float", 1.0, "seconds between ZeroMQ status messages; 0 = none",
                               lo=0.05, hi=3600.0, zero_ok=True),
        "zmq_delay_ms": Option("float", 0.0, "delay of ZeroMQ mood messages in milliseconds "
                               "(to line up with late audio)", lo=0.0, hi=10000.0),
        "refresh_hz": Option("float", 5.0, "most dashboard redraws per second (only on change)",
                             lo=0.5, hi=60.0),
        "history_s": Option("float", 180.0, "seconds of history the dashboard shows",
                            lo=10.0, hi=3600.0),
        "dashboard_level": Option("str", "dbfs", "dashboard input meter: dbfs (level), or lufs "
                                  "(momentary/short-term loudness, where the pipeline measures "
                                  "it; dBFS otherwise)", choices=("dbfs", "lufs")),
    },
    "lighting": {
        "palette": Option("str", "default", "mood colour palette: default, colorblind "
                          "(Okabe-Ito) or mono (white)", choices=("default", "colorblind", "mono")),
        "brightness": Option("str", "arousal", "colour brightness: arousal (dim when calm) or "
                             "fixed", choices=("arousal", "fixed")),
        "smoothing_s": Option("float", 1.0, "colour smoothing time constant in seconds (0 = off)",
                              lo=0.0, hi=600.0),
        "osc": Option("list", [], "OSC targets, \"HOST:PORT\" each; [] = none",
                      checker=_osc_targets),
        "osc_range": Option("str", "unit", "OSC valence/arousal range: unit [0, 1] or bipolar "
                            "[-1, 1]", choices=("unit", "bipolar")),
        "osc_delay_ms": Option("float", 0.0, "delay of OSC bundles in milliseconds (to line up "
                               "with late audio)", lo=0.0, hi=10000.0),
        "osc_map": Option("table", {}, "OSC address map, field = \"/address\" (or a list, or "
                          "\"\" = off); fields: valence arousal quadrant confidence color speech "
                          "red green blue silence", checker=_osc_map),
    },
    "web": {
        "listen": Option("str", "", "web view address [HOST:]PORT for live/demo (a bare port "
                         "is 127.0.0.1); \"\" = no web view", checker=_web_listen),
        "token": Option("str", "", "web view access token; \"\" = none on loopback, a new "
                        "one each run on any other address"),
        "history_s": Option("float", 600.0, "seconds of updates the web page keeps (its "
                            "history shows up to 10 min of them)", lo=60.0, hi=3600.0),
    },
}

Config = dict[str, dict[str, Any]]


def defaults() -> Config:
    return {sec: {k: copy.deepcopy(o.default) for k, o in opts.items()}
            for sec, opts in OPTIONS.items()}


def find_config(name: str | Path) -> Path:
    """A config file path, or the preset ``configs/<name>.toml``."""
    path = Path(name)
    if path.is_file():
        return path
    preset = CONFIG_DIR / f"{name}.toml"
    if path.suffix == "" and preset.is_file():
        return preset
    presets = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.toml"))) or "none"
    raise MoodtrackError(f"config file {name} not found; give a path to a TOML file or a preset "
                         f"name ({presets})")


def read_config(path: str | Path) -> Config:
    """The validated (partial) config in a TOML file."""
    path = find_config(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise MoodtrackError(f"cannot read config file {path}: {exc.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise MoodtrackError(f"config file {path} is larger than {MAX_CONFIG_BYTES // 1024} KiB: "
                             "is it a config file?")
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark (Windows editors) is allowed
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise MoodtrackError(f"config file {path} is not UTF-8 text (byte {exc.start}, line "
                             f"{line}): save it as UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MoodtrackError(f"config file {path} is not valid TOML: {exc}") from None
    return validate(data, where=f"config file {path}")


def validate(data: dict, *, where: str = "config", labels: dict[str, str] | None = None
             ) -> Config:
    """Check a (partial) nested config; returns it with values converted.

    ``labels`` name keys in messages (e.g. ``{"analysis.update_hz": "--rate"}``).
    """
    out: Config = {}
    for sec, table in data.items():
        if sec not in OPTIONS and not isinstance(table, dict):
            home = [s for s, opts in OPTIONS.items() if sec in opts]
            raise MoodtrackError(
                f"{where}: key {sec} is outside any section; "
                + ("put it under " + " or ".join(f"[{h}]" for h in home) if home else "keys go under "
                   + ", ".join(f"[{s}]" for s in OPTIONS)))
        if sec not in OPTIONS:
            raise MoodtrackError(f"{where}: unknown section [{sec}]; sections are "
                                 + ", ".join(f"[{s}]" for s in OPTIONS))
        if not isinstance(table, dict):
            raise MoodtrackError(f"{where}: {sec} must be a table [{sec}]")
        for key, value in table.items():
            opt = OPTIONS[sec].get(key)
            if opt is None:
                raise MoodtrackError(f"{where}: unknown key {sec}.{key}; [{sec}] allows "
                                     + ", ".join(OPTIONS[sec]))
            try:
                name = (labels or {}).get(f"{sec}.{key}") or f"config key {sec}.{key} ="
                out.setdefault(sec, {})[key] = opt.check(name, value)
            except MoodtrackError as exc:
                raise MoodtrackError(f"{where}: {exc}") from None
    return out


def merge(*layers: Config) -> Config:
    """Later layers override earlier ones, key by key."""
    out = defaults()
    for layer in layers:
        for sec, table in layer.items():
            out[sec].update(table)
    return out


def load(config_file: str | Path | None = None, overrides: Config | None = None, *,
         labels: dict[str, str] | None = None) -> Config:
    """defaults < ``config_file`` < ``overrides`` (from the command line), validated.

    ``labels``: the command-line option of each overridden key, for messages.
    """
    file_layer = read_config(config_file) if config_file else {}
    cli_layer = validate(overrides or {}, where="command line", labels=labels)
    return merge(file_layer, cli_layer)


def to_toml(config: Config) -> str:
    """The config as TOML, with each key's help as a comment."""
    lines = []
    for sec, table in config.items():
        lines.append(f"[{sec}]")
        for key, value in table.items():
            lines.append(f"{key} = {_toml_value(value)}  # {OPTIONS[sec][key].help}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    s = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'
