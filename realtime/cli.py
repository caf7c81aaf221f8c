"""The ``moodtrack`` command line.

Subcommands: ``devices``, ``live``, ``demo``, ``analyze``, ``plot``, ``view``, ``listen``, ``keys``; with
none, ``live``
on the default input device, or ``demo`` where there is none. Problems a user can fix
are :class:`MoodtrackError` s: their message is printed and the exit status is 2.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from pathlib import Path

from realtime import __version__
from realtime import config as cfgmod
from realtime.errors import MoodtrackError

DEMO_PATH = Path(__file__).resolve().parent / "data" / "demo.ogg"
#: Extensions ``analyze`` picks up when it walks a directory.
AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".au",
                    ".w64", ".caf"}
#: Seconds a stopped live run waits for the analysis thread before closing anyway.
STOP_GRACE_S = 0.8


# --------------------------------------------------------------------------- arguments
def _run_options() -> argparse.ArgumentParser:
    """Options shared by every run mode (live, demo, analyze)."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("run options")
    g.add_argument("--seconds", type=float, metavar="N", help="stop after N seconds of audio")
    g.add_argument("--rate", type=float, metavar="HZ",
                   help=f"mood updates per second (default 2, up to {cfgmod.MAX_UPDATE_HZ:g})")
    g.add_argument("--smoothing", type=float, metavar="S",
                   help="smoothing time constant in seconds (0 = off)")
    g.add_argument("--model", metavar="PATH",
                   help="ONNX mood model (default: $MOODTRACK_MODEL or models/mood.onnx)")
    g.add_argument("--config", metavar="FILE.toml",
                   help="config file, or a preset name from configs/ (default, film-mix, lighting, "
                        "calm)")
    g.add_argument("--print-config", action="store_true",
                   help="print the merged configuration as TOML and exit")
    return p


def _output_options() -> argparse.ArgumentParser:
    """Options of the live modes' sinks."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("outputs")
    g.add_argument("--no-dashboard", action="store_true",
                   help="plain one-line-per-update log (automatic when stdout is not a terminal)")
    g.add_argument("--csv", metavar="PATH", help="write the mood timeline to this CSV file")
    g.add_argument("--zmq", metavar="ENDPOINT",
                   help="ZeroMQ PUB endpoint (default tcp://127.0.0.1:5556)")
    g.add_argument("--no-zmq", action="store_true", help="do not publish over ZeroMQ")
    g.add_argument("--overwrite", action="store_true",
                   help="replace an existing --csv file (never the input or the model)")
    g.add_argument("--on-csv-error", choices=("stop", "continue"),
                   help="when the CSV cannot be written (disk full...): stop the run (default), "
                        "or continue with the dashboard and ZeroMQ")
    g.add_argument("--zmq-frames", choices=("multi", "single"),
                   help="multi: topic and JSON frames (default); single: one \"mood {json}\" "
                        "frame, for ZMQ_CONFLATE subscribers")
    g.add_argument("--zmq-keys", metavar="DIR",
                   help="encrypt with CURVE using the keys 'moodtrack keys DIR' made; only its "
                        "authorized clients may subscribe")
    g.add_argument("--zmq-delay", type=float, metavar="MS",
                   help="publish mood messages MS milliseconds late (to match delayed audio)")
    g.add_argument("--web", metavar="[HOST:]PORT",
                   help="serve the live view to browsers on this address (a bare port is "
                        "127.0.0.1; any other host needs the access token printed at start)")
    lg = p.add_argument_group("lighting (OSC and mood colour)")
    lg.add_argument("--osc", action="append", metavar="HOST:PORT",
                    help="send OSC bundles to HOST:PORT over UDP (repeatable)")
    lg.add_argument("--osc-range", choices=("unit", "bipolar"),
                    help="OSC valence/arousal range: unit [0, 1] (default; Resolume, QLC+) or "
                         "bipolar [-1, 1]")
    lg.add_argument("--osc-delay", type=float, metavar="MS",
                    help="send OSC bundles MS milliseconds late (to match delayed audio)")
    lg.add_argument("--palette", choices=("default", "colorblind", "mono"),
                    help="mood colour palette (default; colorblind: Okabe-Ito; mono: white)")
    lg.add_argument("--brightness", choices=("arousal", "fixed"),
                    help="colour brightness follows arousal (default) or is fixed")
    lg.add_argument("--color-smoothing", type=float, metavar="S",
                    help="colour smoothing time constant in seconds (default 1; 0 = off)")
    return p


def version_text(model_path: str | os.PathLike | None = None) -> str:
    """``moodtrack VERSION``, then the model's name and version and every other ``*_version``
    its metadata carries (the feature version...), or why the model cannot be read."""
    from realtime.model import MoodModel

    lines = [f"moodtrack {__version__}"]
    try:
        model = MoodModel(model_path)
    except MoodtrackError as exc:
        return "\n".join([*lines, f"model: {exc}"])
    lines.append(f"model: {model.info.name} version {model.info.version} ({model.path})")
    lines += [f"{key}: {value}" for key, value in sorted(model.metadata.items())
              if key.endswith("_version") and key != "model_version"]
    return "\n".join(lines)


class _VersionAction(argparse.Action):
    """``--version``: like argparse's, but the model is only read when it is asked for."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                 help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_text())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    run, out = _run_options(), _output_options()
    parser = argparse.ArgumentParser(
        prog="moodtrack",
        description="Streaming, real-time music mood tracker: valence/arousal and mood from "
                    "live audio or files, to a terminal dashboard, ZeroMQ and CSV. With no "
                    "command: 'live' on the default input, or 'demo' where there is none.")
    parser.add_argument("--version", action=_VersionAction,
                        help="show the package, model and feature versions and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    sub.add_parser("devices", help="list audio input devices (> marks the default)",
                   description="List audio input devices; > marks the default.")

    live = sub.add_parser("live", parents=[run, out], help="track mood from an input device",
                          description="Track mood from an input device (or --file, played "
                                      "at real-time pace).")
    live.add_argument("-l", "--list-devices", action="store_true",
                      help="list input devices and exit")
    live.add_argument("-d", "--device", metavar="DEVICE",
                      help="input device: index or name substring (see 'moodtrack devices')")
    live.add_argument("-r", "--samplerate", type=int, metavar="RATE",
                      help="capture sample rate in Hz (default: the device's)")
    live.add_argument("-c", "--channels", type=int, metavar="CHANNELS",
                      help="input channels, mixed to mono (default: the first 2, or 1 on a mono device)")
    live.add_argument("-b", "--blocksize", type=int, metavar="FRAMES",
                      help="frames per captured block (default 1024)")
    live.add_argument("--file", metavar="PATH",
                      help="play this audio file through the live pipeline at real-time pace")

    sub.add_parser("demo", parents=[run, out],
                   help="the live pipeline on the bundled demo recording, at real-time pace",
                   description="Run the live pipeline on the bundled demo recording (calm, tense, "
                               "melancholic, uplifting; see realtime/data/DEMO_SOURCE.md).")

    ana = sub.add_parser("analyze", parents=[run], help="write mood timelines of audio files",
                         description="Analyse files and directories (recursively) as fast as "
                                     "possible; write DIR/<path>.csv per input (its path "
                                     "relative to the PATHs given), DIR/summary.csv and "
                                     "DIR/summary.json; a run into a DIR with earlier results "
                                     "keeps those that are up to date.")
    ana.add_argument("paths", nargs="+", metavar="PATH", help="audio files or directories")
    ana.add_argument("-o", "--out", required=True, metavar="DIR", help="output directory")
    ana.add_argument("--overwrite", action="store_true",
                     help="analyse every file again and replace what DIR holds for it "
                          "(default: keep the up-to-date results of an earlier run)")
    ana.add_argument("--plot", action="store_true",
                     help="also draw each timeline (DIR/<file stem>.png, see 'moodtrack plot')")
    ana.add_argument("--plot-format", default="png", metavar="FORMAT",
                     help="image format of --plot: png (default), svg or pdf")
    where = ana.add_mutually_exclusive_group()
    where.add_argument("-j", "--jobs", type=int, metavar="N",
                       help="analyse N files at a time in worker processes of this machine "
                            "(default: one per core available to this process; 1 = in this "
                            "process)")
    where.add_argument("--dask", metavar="ADDRESS",
                       help="run the files on a Dask distributed cluster (scheduler address, "
                            "e.g. tcp://scheduler:8786); workers must reach the audio files "
                            "and the model at the same paths")

    plo = sub.add_parser("plot", help="draw a mood timeline (PNG, SVG or PDF)",
                         description="Draw a CSV timeline: valence and arousal over time above "
                                     "a ribbon of the mood, silence shaded, and the path on "
                                     "the valence-arousal plane.")
    plo.add_argument("timeline", metavar="TIMELINE.csv", help="a timeline written by moodtrack")
    plo.add_argument("-o", "--out", metavar="IMAGE",
                     help="output .png, .svg or .pdf (default: the timeline's name, .png)")
    plo.add_argument("--overwrite", action="store_true", help="replace an existing IMAGE")
    plo.add_argument("--title", help="title above the plot (default: name, length, main moods)")

    view = sub.add_parser("view", help="browse an analyze run's timelines in a web browser",
                          description="Serve the web view of an 'analyze -o DIR' folder: the "
                                      "run's files as a sortable table, each file's timeline "
                                      "and its audio.")
    view.add_argument("dir", metavar="DIR", help="a folder 'moodtrack analyze -o DIR' wrote")
    view.add_argument("--web", metavar="[HOST:]PORT",
                      help="address to serve on (default 127.0.0.1:8770; a bare port is "
                           "127.0.0.1; any other host needs the printed access token)")
    view.add_argument("--config", metavar="FILE.toml",
                      help="config file or preset (its [web] token and history_s)")

    lis = sub.add_parser("listen", help="print the updates a running moodtrack publishes",
                         description="Subscribe to a moodtrack ZeroMQ publisher and print one "
                                     "JSON object a line.")
    lis.add_argument("endpoint", nargs="?", default="tcp://127.0.0.1:5556",
                     help="endpoint to connect to (default tcp://127.0.0.1:5556)")
    lis.add_argument("-n", "--count", type=int, metavar="N", help="stop after N messages")
    lis.add_argument("--timeout", type=float, metavar="S",
                     help="give up after S seconds without a message")
    lis.add_argument("--topic", choices=("mood", "status", "tags"), default="mood",
                     help="mood updates (default), the once-a-second status, or the "
                          "instrument and genre tags")
    lis.add_argument("--keys", metavar="DIR",
                     help="CURVE keys folder from 'moodtrack keys' (for a --zmq-keys publisher)")
    lis.add_argument("--client", default="client", metavar="NAME",
                     help="which client's keys in DIR to use (default: client)")

    keys = sub.add_parser("keys", help="create CURVE keys for an encrypted ZeroMQ publisher",
                          description="Create a CURVE key pair for the publisher (once) and one "
                                      "for a client in DIR; run with --zmq-keys DIR, and give "
                                      "subscribers DIR/server.key and their NAME.key_secret.")
    keys.add_argument("dir", metavar="DIR", help="folder for the keys (created)")
    keys.add_argument("--client", default="client", metavar="NAME",
                      help="name of the client key pair to add (default: client)")
    return parser


#: Config key -> (argparse dest, option) of the command-line options that set it.
CLI_KEYS = {
    "input.device": ("device", "-d/--device"),
    "input.sample_rate": ("samplerate", "-r/--samplerate"),
    "input.channels": ("channels", "-c/--channels"),
    "input.blocksize": ("blocksize", "-b/--blocksize"),
    "analysis.model": ("model", "--model"),
    "analysis.update_hz": ("rate", "--rate"),
    "analysis.smoothing_s": ("smoothing", "--smoothing"),
    "output.csv": ("csv", "--csv"),
    "output.zmq": ("zmq", "--zmq"),
    "output.on_csv_error": ("on_csv_error", "--on-csv-error"),
    "output.zmq_frames": ("zmq_frames", "--zmq-frames"),
    "output.zmq_keys": ("zmq_keys", "--zmq-keys"),
    "output.zmq_delay_ms": ("zmq_delay", "--zmq-delay"),
    "web.listen": ("web", "--web"),
    "lighting.osc": ("osc", "--osc"),
    "lighting.osc_range": ("osc_range", "--osc-range"),
    "lighting.osc_delay_ms": ("osc_delay", "--osc-delay"),
    "lighting.palette": ("palette", "--palette"),
    "lighting.brightness": ("brightness", "--brightness"),
    "lighting.smoothing_s": ("color_smoothing", "--color-smoothing"),
}


def _overrides(args: argparse.Namespace) -> cfgmod.Config:
    """The config keys given on the command line."""
    pick = {tuple(key.split(".")): getattr(args, dest, None)
            for key, (dest, _) in CLI_KEYS.items()}
    if getattr(args, "no_dashboard", False):
        pick["output", "dashboard"] = False
    if getattr(args, "no_zmq", False):
        if args.zmq is not None:
            raise MoodtrackError("--zmq and --no-zmq contradict each other: give one of them")
        pick["output", "zmq"] = ""
    out: cfgmod.Config = {}
    for (sec, key), value in pick.items():
        if value is not None:
            out.setdefault(sec, {})[key] = value
    return out


# --------------------------------------------------------------------------- commands
def cmd_devices(args) -> int:
    from realtime.devices import format_devices, query_devices

    print(format_devices(query_devices()))
    return 0


def cmd_keys(args) -> int:
    from realtime.sinks import generate_keys

    paths = generate_keys(args.dir, client=args.client)
    print(f"moodtrack keys: publisher keys {paths['server_public']} (public, give it to "
          f"subscribers) and {paths['server_secret']} (secret, stays here);\n"
          f"  client '{args.client}': {paths['client_secret']} (give it, with server.key, to "
          f"that subscriber), authorized in {paths['client_public'].parent / 'authorized_clients'}"
          f"\n  publish with: moodtrack live --zmq tcp://0.0.0.0:5556 --zmq-keys {args.dir}")
    return 0


def _load_model(cfg: cfgmod.Config):
    from realtime.model import MoodModel

    return MoodModel(cfg["analysis"]["model"] or None)


#: Longest --seconds (a year): beyond it a sample count overflows, and nobody waits that long.
MAX_SECONDS = 366 * 86400.0


def _check_seconds(seconds: float | None) -> None:
    if seconds is not None and not 0 < seconds <= MAX_SECONDS:  # False for NaN
        raise MoodtrackError(f"--seconds {seconds:g} is invalid: it must be a number of seconds "
                             f"in (0, {MAX_SECONDS:.0f}] (a year)")


def cmd_live(args, cfg) -> int:
    from realtime.sources import MicSource
    from realtime.stats import PipelineStats

    if args.list_devices:
        return cmd_devices(args)
    if args.file:
        given = [f for f, v in (("-d/--device", args.device), ("-r/--samplerate", args.samplerate),
                                ("-c/--channels", args.channels)) if v is not None]
        if given:
            raise MoodtrackError(f"{', '.join(given)} select an input device; with --file the "
                                 "file's own rate and channels are used: drop them")
    _check_seconds(args.seconds)
    model = _load_model(cfg)
    stats = PipelineStats()
    inp = cfg["input"]
    if args.file:
        source = _paced_file(args.file, cfg, stats)
    else:
        from realtime.devices import resolve_input

        device, rate, channels = resolve_input(inp["device"], sample_rate=inp["sample_rate"],
                                               channels=inp["channels"])
        source = MicSource(device, sample_rate=rate, channels=channels,
                           blocksize=inp["blocksize"], queue_blocks=inp["queue_blocks"],
                           stats=stats)
    return _run_live(source, model, cfg, stats=stats, seconds=args.seconds,
                     overwrite=args.overwrite)


def cmd_demo(args, cfg) -> int:
    from realtime.stats import PipelineStats

    _check_seconds(args.seconds)
    if not DEMO_PATH.is_file():
        raise MoodtrackError(f"the bundled demo recording {DEMO_PATH} is missing: rebuild it with "
                             "'python tools/make_demo.py', or play any file with "
                             "'moodtrack live --file PATH'")
    model = _load_model(cfg)
    stats = PipelineStats()
    source = _paced_file(DEMO_PATH, cfg, stats)
    return _run_live(source, model, cfg, stats=stats, seconds=args.seconds,
                     overwrite=args.overwrite)


def _paced_file(path, cfg, stats):
    """A file played at real-time pace through the capture queue, as configured."""
    from realtime.sources import FileSource

    inp = cfg["input"]
    return FileSource(path, paced=True, blocksize=inp["blocksize"],
                      queue_blocks=inp["queue_blocks"], stats=stats)


def _delayed(sink, delay_ms: float):
    """``sink``, or a :class:`DelayedSink` around it when ``delay_ms`` > 0."""
    from realtime.sinks import DelayedSink

    return DelayedSink(sink, delay_ms) if delay_ms > 0 else sink


def _live_sinks(cfg, stats, model=None, *, source=None, overwrite: bool = False) -> list:
    """CSV, ZeroMQ, OSC and display sinks as configured (the display last). The CSV is
    never the ``source`` file or the model; an existing one needs ``overwrite``."""
    from realtime.osc import OscSink, parse_target
    from realtime.outputs import Protected
    from realtime.sinks import CsvSink, LogSink, ZmqSink

    o, lit = cfg["output"], cfg["lighting"]
    sinks: list = []
    try:
        if o["csv"]:
            protected = Protected([(p, what) for p, what in (
                (getattr(source, "path", None), "the input audio file"),
                (getattr(model, "path", None), "the model")) if p is not None])
            protected.check(o["csv"], what="--csv", hint="name a new CSV file")
            sinks.append(CsvSink(o["csv"], on_error=o["on_csv_error"], stats=stats,
                                 overwrite=overwrite))
        info = (model.info.name, model.info.version) if model is not None else ("", "")
        if o["zmq"]:
            sinks.append(_delayed(ZmqSink(o["zmq"], hwm=o["zmq_hwm"], frames=o["zmq_frames"],
                                          stats=stats, status_s=o["zmq_status_s"], model=info,
                                          keys=o["zmq_keys"] or None), o["zmq_delay_ms"]))
        for target in lit["osc"]:
            host, port = parse_target(target)
            sinks.append(_delayed(OscSink(host, port, range=lit["osc_range"],
                                          address_map=lit["osc_map"]), lit["osc_delay_ms"]))
        if cfg["web"]["listen"]:
            sinks.append(_web_view(cfg, cfg["web"]["listen"], stats=stats, model=info))
        if o["dashboard"] and sys.stdout.isatty():
            from realtime.dashboard import Dashboard

            sinks.append(Dashboard(stats, refresh_hz=o["refresh_hz"], history_s=o["history_s"],
                                   level=o["dashboard_level"]))
        else:
            sinks.append(LogSink(sys.stdout))
    except BaseException:
        _close_all(sinks)
        raise
    return sinks


def _web_view(cfg, listen: str, **kw):
    """The web view on ``listen``, announced on stderr."""
    from realtime.web import WebView

    w = cfg["web"]
    view = WebView(listen, token=w["token"], history_s=w["history_s"], **kw)
    view.announce(configured_token=bool(w["token"]))
    return view


def cmd_view(args, cfg) -> int:
    """Serve an analyze folder's web view until Ctrl-C or SIGTERM."""
    from realtime.web import DEFAULT_PORT

    if not Path(args.dir).is_dir():
        raise MoodtrackError(f"{args.dir} is not a folder: give the folder an 'analyze -o DIR' "
                             "run wrote")
    stop = threading.Event()
    with _stop_on_signals(stop):
        view = _web_view(cfg, cfg["web"]["listen"] or f"127.0.0.1:{DEFAULT_PORT}",
                         library=args.dir)
        try:
            view.wait(stop)
        finally:
            view.close()
    return 0


def _close_all(sinks) -> None:
    for s in reversed(sinks):
        with contextlib.suppress(Exception):
            s.close()


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event):
    """SIGINT and SIGTERM set ``stop`` (main thread only) instead of raising."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = lambda signum, frame: stop.set()  # noqa: E731
    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


class _StateLog:
    """Reports changes of the input state and a stopped CSV on stderr, for runs without
    the dashboard (which shows them itself). Called from the main thread."""

    def __init__(self, stats, *, enabled: bool):
        self.stats = stats
        self.enabled = enabled
        self.state = "ok"
        self.csv_error = ""
        self.hint = ""

    def check(self) -> None:
        s = self.stats
        state, why = s.input_state, s.input_error
        if self.enabled and state != self.state:
            if state == "stalled":
                msg = "input stalled: no audio arriving (nothing playing, or the device hangs)"
            elif state == "lost":
                msg = f"input lost: {why or 'the device went away'}; reconnecting"
            else:
                msg = ("input back: " + ("reconnected" if self.state == "lost" else "audio again")
                       + f" (reconnects {s.reconnects})")
            print(f"moodtrack: {msg}", file=sys.stderr, flush=True)
        self.state = state
        if self.enabled and s.csv_error and s.csv_error != self.csv_error:
            print(f"moodtrack: {s.csv_error}", file=sys.stderr, flush=True)
        self.csv_error = s.csv_error
        if self.enabled and s.input_hint and s.input_hint != self.hint:
            print(f"moodtrack: {s.input_hint}", file=sys.stderr, flush=True)
        self.hint = s.input_hint


def _run_live(source, model, cfg, *, stats, seconds, overwrite: bool = False) -> int:
    """Run the pipeline on an analysis thread until the source ends, ``seconds``, or a signal."""
    from realtime.factory import build_pipeline
    from realtime.pipeline import AnalysisThread

    stop = threading.Event()
    sinks: list = []
    # The dashboard and status threads run pure Python for milliseconds at a time: hand the
    # GIL back to the analysis thread after 1 ms rather than the default 5 ms.
    sys.setswitchinterval(0.001)
    with _stop_on_signals(stop):
        try:
            sinks += _live_sinks(cfg, stats, model, source=source, overwrite=overwrite)
            pipeline = build_pipeline(cfg, model=model, sinks=sinks, stats=stats)
            thread = AnalysisThread(pipeline, source, seconds=seconds, stop=stop)
            print(f"moodtrack: {source.name} ({source.sample_rate} Hz, {source.channels} ch) -> "
                  f"model {stats.model}, {cfg['analysis']['update_hz']:g} updates/s"
                  + (f", ZeroMQ {cfg['output']['zmq']}" if cfg["output"]["zmq"] else "")
                  + "".join(f", OSC {t}" for t in cfg["lighting"]["osc"])
                  + (f", CSV {cfg['output']['csv']}" if cfg["output"]["csv"] else "")
                  + (f", web {cfg['web']['listen']}" if cfg["web"]["listen"] else ""),
                  file=sys.stderr, flush=True)
            # Known before the first block: the status topic reports them from the start.
            stats.device, stats.sample_rate = source.name, source.sample_rate
            stats.channels = source.channels
            for s in sinks:
                if hasattr(s, "start"):
                    s.start()
            thread.start()
            watch = _StateLog(stats, enabled=not any(type(s).__name__ == "Dashboard"
                                                     for s in sinks))
            from realtime.sources import MicSource
            from realtime.stats import DigitalSilenceWatch

            silence = DigitalSilenceWatch(stats) if isinstance(source, MicSource) else None
            while thread.is_alive() and not stop.is_set():
                thread.join(0.1)
                if silence is not None:
                    silence.check()
                watch.check()
            thread.join(STOP_GRACE_S)
        finally:
            source.close()
            _close_all(sinks)
    if thread.error is not None:
        raise thread.error
    truncation = getattr(source, "truncation", None)
    why = truncation() if truncation is not None and not stop.is_set() and (
        seconds is None or pipeline.frames_in < round(seconds * source.sample_rate)) else None
    if why:
        print(f"moodtrack: warning: {source.name}: {why}", file=sys.stderr)
    print(f"moodtrack: stopped after {pipeline.frames_in / source.sample_rate:.1f} s of audio, "
          f"{stats.updates} updates; {stats.dropped_blocks} dropped blocks, "
          f"{stats.overflows} overflows", file=sys.stderr)
    return 0


# ------------------------------------------------------------------------------ analyze
def collect_inputs(paths: list[str]) -> tuple[list[Path], list[tuple[Path, str, bool]]]:
    """Files as given, and the audio files under directories (recursively, sorted); each
    file once. Also what was skipped, each as ``(path, why, failed)``: ``failed`` when it
    may hold audio that was not read (a folder that cannot be listed)."""
    from realtime.sources import file_kind

    out: list[Path] = []
    skipped: list[tuple[Path, str, bool]] = []

    def walk(folder: Path) -> None:
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            skipped.append((folder, f"cannot list this folder: {exc.strerror or exc}", True))
            return
        for e in entries:
            p = folder / e.name
            try:
                if e.is_dir(follow_symlinks=False):
                    walk(p)
                elif e.is_symlink() and e.is_dir():
                    skipped.append((p, "a link to a folder, not followed (give it as a PATH of "
                                       "its own to analyse it)", False))
                elif Path(e.name).suffix.lower() not in AUDIO_EXTENSIONS:
                    continue
                elif e.is_file():
                    out.append(p)
                elif not os.path.exists(p):
                    skipped.append((p, "a broken link", False))
                else:
                    skipped.append((p, f"{file_kind(os.stat(p).st_mode)}, not a regular file",
                                    False))
            except OSError as exc:
                skipped.append((p, exc.strerror or str(exc), True))

    for p in map(Path, paths):
        if p.is_dir():
            walk(p)
        else:
            out.append(p)  # a missing or odd file is reported when it is opened
    seen: set[str] = set()
    files = [f for f in out if not (os.path.abspath(f) in seen or seen.add(os.path.abspath(f)))]
    return files, skipped


def _total_seconds(inputs: list[Path], seconds: float | None) -> float:
    """Seconds of audio to analyse (unreadable files count 0), for the progress bar."""
    import stat

    import soundfile as sf

    from realtime.sources import decoder_messages

    total = 0.0
    for f in inputs:
        with contextlib.suppress(Exception), decoder_messages([]):  # no decoder chatter
            if stat.S_ISREG(os.stat(f).st_mode):  # a FIFO would block here
                total += min(sf.info(os.fsencode(f)).duration, seconds or float("inf"))
    return total


def cmd_analyze(args, cfg) -> int:
    from realtime import batch
    from realtime import outputs as outmod

    _check_seconds(args.seconds)
    if args.jobs is not None and args.jobs < 1:
        raise MoodtrackError(f"--jobs {args.jobs} must be at least 1")
    inputs, skipped = collect_inputs(args.paths)
    for p, why, _ in skipped:
        print(f"moodtrack analyze: skipped {outmod.display(p)}: {why}", file=sys.stderr)
    if not inputs:
        raise MoodtrackError(f"no audio files found in {' '.join(args.paths)} (looked for "
                             f"{', '.join(sorted(AUDIO_EXTENSIONS))})")
    out_dir = Path(args.out)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MoodtrackError(f"cannot create output directory {out_dir}: {exc.strerror}") from None
    plot_format = args.plot_format.lower().lstrip(".") if args.plot else None
    if plot_format:
        from realtime.plot import PLOT_FORMATS

        if plot_format not in PLOT_FORMATS:
            raise MoodtrackError(f"--plot-format {args.plot_format} is not one of "
                                 f"{', '.join(PLOT_FORMATS)}")
    options = batch.AnalyzeOptions.from_config(cfg, seconds=args.seconds, plot_format=plot_format)
    model = batch.load_model(options.model)  # a bad model stops the run here, with status 2
    protected = outmod.Protected([(f, "the input audio file") for f in inputs])
    protected.add(options.model, "the model")
    for name in sorted(outmod.RESERVED_NAMES):
        protected.check(out_dir / name, what=f"-o {out_dir}: its {name}",
                        hint="choose another -o DIR")
    root = outmod.run_root(args.paths)
    names = [outmod.output_name(f, root) for f in inputs]
    for f, n in zip(inputs, names):
        if str(n) in outmod.RESERVED_NAMES:
            raise MoodtrackError(f"{f}: its timeline would be {out_dir / n}, the run's own "
                                 "file: rename it (or give the folder holding it)")
    plots = [outmod.output_name(f, root, suffix=f".{plot_format}") if plot_format else None
             for f in inputs]
    manifest = outmod.Manifest(out_dir)  # locks out_dir for this run
    try:
        outmod.remove_leftovers({out_dir / n.parent for n in names})
        sha, version = outmod.sha256_of(options.model), f"{model.info.name} {model.info.version}"
        keys = [batch.input_key(f, model_sha256=sha, model_version=version, options=options)
                for f in inputs]
        todo = _plan_resume(inputs, names, plots, keys, manifest, out_dir,
                            overwrite=args.overwrite)
        failed = _analyze_files(args, options, inputs, todo, names, plots, keys, manifest,
                                out_dir, protected)
        entries = []
        for e in sorted(manifest.entries.values(), key=lambda e: e["timeline"]):
            if e.get("state") == "done" and (out_dir / e["timeline"]).is_file():
                entries.append({"file": e["input"], "timeline": e["timeline"],
                                "plot": e.get("plot"), "error": None, "summary": e["summary"]})
            elif e.get("state") == "failed":
                entries.append({"file": e["input"], "timeline": None, "plot": None,
                                "error": e["error"], "summary": None})
        summary_csv, _ = batch.write_run_summary(
            out_dir, entries, skipped=[{"path": outmod.display(p), "why": why}
                                       for p, why, _ in skipped])
    finally:
        manifest.close()
    print(f"moodtrack analyze: summary of {len(entries)} file(s) in {summary_csv} and "
          f"{summary_csv.with_suffix('.json')}", file=sys.stderr)
    truncated = [(f, why) for f, why in failed if why.startswith("truncated")]
    failed = [(f, why) for f, why in failed if not why.startswith("truncated")]
    unread = [(p, why) for p, why, bad in skipped if bad]
    for what, items in ((f"{len(failed)} of {len(todo)} file(s) failed", failed),
                        (f"{len(truncated)} file(s) truncated (analysed up to the damage)",
                         truncated),
                        (f"{len(unread)} folder(s) or file(s) could not be read", unread)):
        if items:
            print(f"moodtrack analyze: {what}:", file=sys.stderr)
            for f, why in items:
                print(f"  {outmod.display(f)}: {why}", file=sys.stderr)
    return 1 if failed or truncated or unread else 0


def _plan_resume(inputs, names, plots, keys, manifest, out_dir, *, overwrite) -> list[int]:
    """The inputs to analyse: all with ``overwrite``; otherwise those without an up-to-date
    result in ``out_dir``'s manifest. Files this run would replace that the manifest does
    not record as this input's are refused (MoodtrackError) unless ``overwrite``."""
    from realtime import batch
    from realtime import outputs as outmod

    todo, fresh, stale, foreign = [], 0, 0, []
    for i, (name, plot, key) in enumerate(zip(names, plots, keys)):
        entry = manifest.entries.get(str(name))
        ours = entry is not None and entry.get("input") == key["input"]
        if ours and not overwrite and batch.up_to_date(entry, key, out_dir,
                                                       plot=None if plot is None else str(plot)):
            fresh += 1
            continue
        todo.append(i)
        if ours:
            stale += entry.get("state") == "done"
        elif any(os.path.lexists(out_dir / p) for p in (name, plot) if p is not None):
            foreign.append(out_dir / name)
    if not manifest.existed:
        foreign += [out_dir / n for n in (outmod.SUMMARY_CSV, outmod.SUMMARY_JSON)
                    if os.path.lexists(out_dir / n)]
    if foreign and not overwrite:
        shown = ", ".join(outmod.display(p) for p in foreign[:3])
        raise MoodtrackError(
            f"-o {out_dir} holds {len(foreign)} file(s) this run would replace that no earlier "
            f"run recorded for these inputs ({shown}{', ...' if len(foreign) > 3 else ''}): "
            "move them, choose another -o DIR, or pass --overwrite to replace them")
    if fresh or stale:
        print(f"moodtrack analyze: {out_dir} holds earlier results: {fresh} up to date, kept "
              f"(--overwrite analyses them again); {stale} out of date (input, model or "
              "options changed), analysed again", file=sys.stderr)
    return todo


def _analyze_files(args, options, inputs, todo, names, plots, keys, manifest, out_dir,
                   protected) -> list[tuple[Path, str]]:
    """Analyse ``inputs[todo]``, writing and recording each result as it comes; returns
    the failed files with why."""
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import (BarColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    from realtime import batch
    from realtime.outputs import display

    work = [inputs[i] for i in todo]
    console = Console(stderr=True)
    failed: list[tuple[Path, str]] = []
    progress = Progress(TextColumn("{task.description}"), BarColumn(),
                        TextColumn("{task.completed:.0f}/{task.total:.0f} s"),
                        TextColumn("{task.fields[files]}"), TimeElapsedColumn(),
                        TimeRemainingColumn(), console=console, transient=False,
                        refresh_per_second=2)  # rich's 10 redraws/s cost ~10 % of the run
    task = progress.add_task("analyze", total=_total_seconds(work, args.seconds),
                             files=f"0/{len(work)} files")
    advance = lambda s: progress.advance(task, s)  # noqa: E731
    if not work:
        runner = iter(())
    elif args.dask:  # connects now: an unreachable scheduler stops the run before the bar
        runner = batch.run_dask(work, options=options, address=args.dask, advance=advance)
    elif (jobs := _jobs(args.jobs)) > 1 and len(work) > 1:
        runner = batch.run_processes(work, options=options, jobs=jobs, advance=advance)
    else:
        runner = batch.run_serial(work, options=options, advance=advance)
    with progress:
        for done, (j, res) in enumerate(runner, start=1):
            i = todo[j]
            f, name, plot = inputs[i], names[i], plots[i]
            csv_path = out_dir / name
            base = {**keys[i], "timeline": str(name)}
            error = res.error
            if error is None:
                _record(manifest, {**base, "state": "writing"})
                try:
                    batch.write_outputs(res, csv_path, protected=protected,
                                        plot_path=None if plot is None else out_dir / plot)
                except MoodtrackError as exc:
                    error = str(exc)
            if error is None:
                _record(manifest, {**base, "state": "done", "error": None,
                                   "plot": None if plot is None else str(plot),
                                   "timeline_bytes": csv_path.stat().st_size,
                                   "summary": res.summary})
                if res.warning:
                    failed.append((f, res.warning))
                progress.console.print(
                    ("[yellow]warning[/]" if res.warning else "[green]ok[/]")
                    + f" {escape(display(f))} -> {escape(display(csv_path))} "
                      f"({len(res.updates)} updates"
                    + (f"; {escape(res.warning)})" if res.warning else ")"), highlight=False)
            else:
                _record(manifest, {**base, "state": "failed", "error": error})
                failed.append((f, error))
                progress.console.print(f"[red]failed[/] {escape(display(f))}: {escape(error)}",
                                       highlight=False)
            progress.update(task, description=escape(display(f.name)[-40:]),
                            files=f"{done}/{len(work)} files")
    return failed


def _jobs(requested: int | None) -> int:
    """Worker processes to use; a request beyond the cores is lowered, with a note."""
    from realtime.batch import worker_count

    jobs, note = worker_count(requested)
    if note:
        print(f"moodtrack analyze: {note}", file=sys.stderr)
    return jobs


def _record(manifest, entry: dict) -> None:
    from realtime.outputs import display

    try:
        manifest.record(entry)
    except OSError as exc:
        raise MoodtrackError(f"cannot record results in {display(manifest.path)}: "
                             f"{exc.strerror or exc}; free space and run the same command "
                             "again (finished files are not redone)") from None


def cmd_plot(args) -> int:
    from realtime.plot import plot_format, save_plot
    from realtime.timeline import read_timeline

    src = Path(args.timeline)
    out = Path(args.out) if args.out else src.with_suffix(".png")
    plot_format(out)  # a bad extension is refused before any work
    from realtime.outputs import Protected

    Protected([(src, "the timeline")]).check(out, what="-o", hint="choose another -o IMAGE")
    if not args.overwrite and os.path.lexists(out):
        raise MoodtrackError(f"the plot {out} exists already: choose another -o IMAGE, or pass "
                             "--overwrite to replace it")
    path = save_plot(read_timeline(src), out, title=args.title, overwrite=args.overwrite)
    print(f"moodtrack plot: {src} -> {path}", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------------- main
def _default_command(argv: list[str]) -> list[str]:
    """No command: ``live`` where there is a default input device, else ``demo``."""
    from realtime.devices import match_device, query_devices

    try:
        match_device(None, query_devices())
        return ["live", *argv]
    except MoodtrackError as exc:
        print(f"moodtrack: {exc.args[0].split(':')[0]}; playing the bundled demo instead",
              file=sys.stderr)
        return ["demo", *argv]


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    Run as a program (``argv`` None), the process ends with ``os._exit`` once everything
    is closed and flushed: unloading numpy/scipy/onnxruntime takes most of a second on a
    slow machine, and a stopped tracker should be gone at once.
    """
    if argv is not None:
        return _main(list(argv))
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop like Ctrl-C
    code = _main(sys.argv[1:])
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def _main(argv: list[str]) -> int:
    parser = build_parser()
    try:
        if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
            argv = _default_command(argv)
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        if args.command == "devices":
            return cmd_devices(args)
        if args.command == "plot":
            return cmd_plot(args)
        if args.command == "listen":
            from realtime.listen import listen

            return listen(args.endpoint, count=args.count, timeout_s=args.timeout,
                          topic=args.topic, keys=args.keys, client=args.client)
        if args.command == "keys":
            return cmd_keys(args)
        cfg = cfgmod.load(args.config, _overrides(args),
                          labels={k: flag for k, (_, flag) in CLI_KEYS.items()})
        if getattr(args, "print_config", False):
            sys.stdout.write(cfgmod.to_toml(cfg))
            return 0
        run = {"live": cmd_live, "demo": cmd_demo, "analyze": cmd_analyze,
               "view": cmd_view}[args.command]
        return run(args, cfg)
    except MoodtrackError as exc:
        print(f"moodtrack: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("moodtrack: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")
        return 0
