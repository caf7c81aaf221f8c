"""``analyze`` at library scale: one per-file function, run serially, in processes or on Dask.

:func:`analyze_file` turns one audio file into a :class:`FileResult` (the updates of its
timeline, its summary, optionally its plot as bytes) and writes nothing, so the same
function runs in this process, in a :class:`~concurrent.futures.ProcessPoolExecutor`
(``--jobs N``) or on the workers of a Dask distributed cluster (``--dask ADDRESS``). The
results come back to the client, which writes every output itself: the output directory
need not be reachable by the workers, but the audio files and the model must be, at the
same paths. A failing file gives a failed result; it never stops the others.

This module imports nothing heavy at the top, so a worker process can limit the threads
of numerical libraries before they load.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from realtime.errors import MoodtrackError
from realtime.mood import MoodUpdate

#: Frames read per block from a file.
BLOCK_FRAMES = 65536
#: Seconds to wait for a Dask scheduler to answer.
DASK_CONNECT_TIMEOUT_S = 10


def _default_config() -> dict:
    from realtime.config import defaults

    return defaults()


@dataclass(frozen=True)
class AnalyzeOptions:
    """What the per-file work needs, picklable: ``model`` (absolute ONNX path),
    ``config`` (the merged run config, from which :func:`realtime.factory.build_pipeline`
    builds each file's pipeline exactly as the live modes do; default: the defaults),
    ``seconds`` (seconds; None = the whole file), ``plot_format`` (``"png"``, ``"svg"``,
    ``"pdf"`` or None for no plot)."""

    model: str
    config: dict = field(default_factory=_default_config, compare=False)
    seconds: float | None = None
    plot_format: str | None = None

    @classmethod
    def from_config(cls, cfg: dict, *, seconds: float | None = None,
                    plot_format: str | None = None) -> AnalyzeOptions:
        from realtime.model import default_model_path

        a = cfg["analysis"]
        model = Path(a["model"]) if a["model"] else default_model_path()
        return cls(model=str(model.absolute()), config=cfg, seconds=seconds,
                   plot_format=plot_format)


@dataclass
class FileResult:
    """The outcome for one input: ``updates`` of its timeline, ``duration_s`` (seconds of
    audio analysed), ``summary`` (see :func:`realtime.summary.summarize`), ``plot``
    (image bytes or None); a failed file has only ``error``."""

    path: str
    updates: list[MoodUpdate] = field(default_factory=list)
    duration_s: float = 0.0
    summary: dict | None = None
    plot: bytes | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def warning(self) -> str | None:
        """Why a file that was analysed is not whole (``"truncated: ..."``), or None."""
        return (self.summary or {}).get("warning")


# ------------------------------------------------------------------------ per-file work
_models: dict = {}
_models_lock = threading.Lock()


def load_model(path: str):
    """The :class:`~realtime.model.MoodModel` at ``path``, loaded once per process."""
    from realtime.model import MoodModel

    with _models_lock:
        if path not in _models:
            _models[path] = MoodModel(path)
        return _models[path]


def analyze_file(path: str | os.PathLike, *, options: AnalyzeOptions,
                 on_block: Callable[[float], None] | None = None) -> FileResult:
    """One file through the live pipeline, unpaced; never raises for a bad file.

    ``on_block(seconds)`` is called with the seconds of audio of each block read.
    """
    try:
        return _analyze(Path(path), options, on_block)
    except MoodtrackError as exc:
        return FileResult(str(path), error=str(exc))
    except Exception as exc:  # a bug must not stop a library run: report it with the file
        return FileResult(str(path), error=f"unexpected {type(exc).__name__}: {exc} "
                                           "(please report this)")


def _analyze(path: Path, o: AnalyzeOptions, on_block) -> FileResult:
    from realtime.factory import build_pipeline
    from realtime.sources import FileSource
    from realtime.summary import summarize
    from realtime.tags import clip_tags
    from realtime.timeline import Timeline

    model = load_model(o.model)
    with FileSource(path, paced=False, blocksize=BLOCK_FRAMES) as src:
        updates: list[MoodUpdate] = []
        pipeline = build_pipeline(o.config, model=model, sinks=[_Collect(updates)])
        pipeline.run(src, seconds=o.seconds, on_block=None if on_block is None else
                     lambda n: on_block(n / src.sample_rate))
        duration = pipeline.frames_in / src.sample_rate
        said = src.decoder_messages
        whole = o.seconds is None or pipeline.frames_in < round(o.seconds * src.sample_rate)
        warning = src.truncation() if whole else None
    tl = Timeline.from_updates(updates, name=path.name)
    plot = None
    if o.plot_format:
        from realtime.plot import plot_bytes

        plot = plot_bytes(tl, o.plot_format)
    summary = {**summarize(tl, duration_s=duration), **clip_tags(u.tags for u in updates)}
    if said:  # damaged frames the decoder skipped: in summary.json, not on the terminal
        summary["decoder_messages"] = said
    if warning:
        summary["warning"] = warning
    return FileResult(str(path), updates, duration, summary, plot)


class _Collect:
    """A sink keeping the updates in a list."""

    def __init__(self, out: list):
        self.emit = out.append


# ----------------------------------------------------------------------------- runners
#: A runner yields (index of the input, its result) as files finish, and calls
#: ``advance(seconds)`` as audio is analysed (per block serially, per file otherwise).
Runner = Iterator[tuple[int, FileResult]]


def run_serial(inputs: list[Path], *, options: AnalyzeOptions,
               advance: Callable[[float], None]) -> Runner:
    """The files one after the other, in this process."""
    for i, p in enumerate(inputs):
        yield i, analyze_file(p, options=options, on_block=advance)


def worker_count(requested: int | None) -> tuple[int, str | None]:
    """Worker processes for ``--jobs requested`` (None: one per core) and a note when the
    request was lowered to the cores available."""
    cores = available_cores()
    if requested is None or requested <= cores:
        return requested or cores, None
    return cores, (f"--jobs {requested} lowered to {cores}, the cores this process may use "
                   "(more workers than cores only add memory)")


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity; all cores where that is unknown):
    the default number of ``analyze`` worker processes."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no sched_getaffinity (macOS, Windows)
        return os.cpu_count() or 1


#: Seconds between a worker's checks that its parent still lives.
PARENT_POLL_S = 0.5


def exit_with_parent(parent_pid: int) -> None:
    """End this process as soon as ``parent_pid`` is no longer its parent, whatever killed
    it: the kernel's parent-death signal where there is one (Linux), and a watcher thread
    polling the parent's pid every :data:`PARENT_POLL_S` everywhere."""
    import signal

    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG

    def watch() -> None:
        import time

        while os.getppid() == parent_pid:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    if os.getppid() != parent_pid:  # died before we could ask
        os._exit(1)
    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _init_worker(model: str, parent_pid: int | None = None) -> None:
    """Process-pool initializer: exit with the parent; one thread per worker for numerical
    code; the model. Ctrl-C is the parent's to handle (it stops the workers)."""
    import signal

    if parent_pid is not None:
        exit_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    with contextlib.suppress(MoodtrackError):  # reported per file instead
        load_model(model)


def run_processes(inputs: list[Path], *, options: AnalyzeOptions, jobs: int,
                  advance: Callable[[float], None]) -> Runner:
    """The files on ``jobs`` worker processes of this machine ('spawn' start method)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    pool = ProcessPoolExecutor(max_workers=min(jobs, len(inputs)),
                               mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker,
                               initargs=(options.model, os.getpid()))
    try:
        pending = {pool.submit(analyze_file, str(p), options=options): i
                   for i, p in enumerate(inputs)}
        for fut in as_completed(pending):
            i = pending.pop(fut)
            try:
                res = fut.result()
            except Exception as exc:  # the worker process died (killed, out of memory)
                res = FileResult(str(inputs[i]), error=f"worker process failed: "
                                                       f"{type(exc).__name__}: {exc}")
            advance(res.duration_s)
            yield i, res
    except BaseException:  # Ctrl-C, or the caller gave up: stop now, not after each file
        for proc in list((getattr(pool, "_processes", None) or {}).values()):
            proc.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


def run_dask(inputs: list[Path], *, options: AnalyzeOptions, address: str,
             advance: Callable[[float], None]) -> Runner:
    """The files as tasks on the Dask distributed cluster whose scheduler is ``address``.

    Connects at once (an unreachable scheduler is a MoodtrackError here), then returns
    the runner.
    """
    try:
        from distributed import Client
    except ImportError:
        raise MoodtrackError("--dask needs Dask distributed: pip install 'moodtrack[dask]' on "
                             "this machine and on every worker") from None
    try:
        client = Client(address, timeout=DASK_CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as exc:
        raise MoodtrackError(
            f"cannot reach the Dask scheduler at {address} ({type(exc).__name__}: {exc}); start "
            "one with 'dask scheduler' and workers with 'dask worker ADDRESS'") from None
    return _dask_results(client, inputs, options, advance)


def _dask_results(client, inputs, options, advance) -> Runner:
    from distributed import as_completed

    try:
        futures = client.map(analyze_file, [str(p) for p in inputs], options=options, pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        pending = as_completed(futures)
        del futures  # each result is dropped from the cluster once it is here
        for fut in pending:
            i = index[fut.key]
            try:
                res = fut.result()
            except Exception as exc:  # the task could not run (worker lost, import error)
                res = FileResult(str(inputs[i]), error=f"Dask task failed: "
                                                       f"{type(exc).__name__}: {exc}")
            fut.release()
            advance(res.duration_s)
            yield i, res
    finally:
        client.close()


# ----------------------------------------------------------------------------- outputs
def input_key(path: str | os.PathLike, *, model_sha256: str, model_version: str,
              options: AnalyzeOptions) -> dict:
    """What makes a file's timeline up to date: the input's absolute path, size and mtime,
    the model (SHA-256 and version) and the analysis options (the config's ``[analysis]``
    keys but the model's path, and ``seconds``)."""
    try:
        st = os.stat(path)
        size, mtime = st.st_size, st.st_mtime_ns
    except OSError:
        size = mtime = None
    return {"input": os.path.abspath(path), "size": size, "mtime_ns": mtime,
            "model": model_sha256, "model_version": model_version,
            "options": {**{k: v for k, v in options.config.get("analysis", {}).items()
                           if k != "model"}, "seconds": options.seconds}}


KEY_FIELDS = ("input", "size", "mtime_ns", "model", "options")


def up_to_date(entry: dict | None, key: dict, out_dir: Path, *, plot: str | None) -> bool:
    """Whether a manifest ``entry`` is a complete result for ``key`` whose files are all
    in ``out_dir`` as written (``plot``: the plot's name when one is wanted)."""
    if not entry or entry.get("state") != "done" or key["size"] is None:
        return False
    if any(entry.get(k) != key[k] for k in KEY_FIELDS):
        return False
    try:
        if (out_dir / entry["timeline"]).stat().st_size != entry.get("timeline_bytes"):
            return False
    except OSError:
        return False
    return plot is None or (entry.get("plot") == plot and (out_dir / plot).is_file())


def write_outputs(result: FileResult, csv_path: Path, *, plot_path: Path | None,
                  protected=None) -> None:
    """Write a successful result's CSV timeline and its plot (when ``plot_path``), each to
    a temporary name renamed into place when whole. ``protected``: a
    :class:`realtime.outputs.Protected` no output may be. A failed write is a
    MoodtrackError and leaves each file as it was."""
    from realtime.outputs import atomic_write, display
    from realtime.sinks import timeline_bytes

    jobs = [(csv_path, timeline_bytes(result.updates), "timeline")]
    if plot_path is not None and result.plot is not None:
        jobs.insert(0, (plot_path, result.plot, "plot"))
    for path, data, what in jobs:
        if protected is not None:
            protected.check(path, what=f"the {what}", hint="choose another -o DIR")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, data)
        except OSError as exc:
            raise MoodtrackError(f"cannot write the {what} {display(path)}: "
                                 f"{exc.strerror or exc}; free space or choose another -o DIR"
                                 ) from None


def write_run_summary(out_dir: Path, entries: list[dict], *,
                      skipped: list[dict] = ()) -> tuple[Path, Path]:
    """``out_dir/summary.csv`` (one row per file) and ``out_dir/summary.json`` (everything),
    each replaced only when whole.

    ``entries``: per input, ``{"file", "timeline", "plot", "error", "summary"}``; names that
    are not UTF-8 are written with ``\\xNN`` escapes. ``skipped``: ``{"path", "why"}`` of
    what the run did not read (in the JSON).
    """
    import io

    from realtime.outputs import SUMMARY_CSV, SUMMARY_JSON, atomic_write, display
    from realtime.summary import SUMMARY_COLUMNS, summary_row

    def shown(x):
        return None if x is None else display(x)

    csv_path, json_path = out_dir / SUMMARY_CSV, out_dir / SUMMARY_JSON
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=SUMMARY_COLUMNS, lineterminator="\n")
    w.writeheader()
    for e in entries:
        row = summary_row(e["summary"], file=shown(e["file"]), error=e["error"])
        if e["summary"] is not None:
            row["timeline"] = shown(e["timeline"])
        w.writerow(row)
    files = [{"file": shown(e["file"]), "timeline": shown(e["timeline"]), "plot": shown(e["plot"]),
              "error": e["error"], **{k: v for k, v in (e["summary"] or {}).items()
                                      if k != "timeline"}} for e in entries]
    try:
        atomic_write(csv_path, buf.getvalue().encode("utf-8"))
        atomic_write(json_path, (json.dumps({"files": files, "skipped": list(skipped)},
                                            indent=1, allow_nan=False)
                                 + "\n").encode("utf-8"))
    except OSError as exc:
        raise MoodtrackError(f"cannot write the run summary in {display(out_dir)}: "
                             f"{exc.strerror or exc}; the previous summary is kept; free space "
                             "and run the same command again (finished files are not redone)"
                             ) from None
    return csv_path, json_path
