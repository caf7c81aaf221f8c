"""Audio sources: blocks of float32 frames ``(n_frames, channels)`` with their arrival time.

Every source yields :class:`Block` s from :meth:`blocks`. Live sources (the microphone
and a file paced at real time) share one structure: a producer (the PortAudio callback,
or a reader thread) copies blocks into a bounded queue stamped with ``time.monotonic()``
and the analysis thread takes them out. A full queue drops the block and counts it in
:class:`~realtime.stats.PipelineStats`. An unpaced file is read by the caller's thread.

``sounddevice`` is imported lazily (see :mod:`realtime.devices`), so files work without
PortAudio.
"""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import re
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from realtime.errors import MoodtrackError
from realtime.stats import PipelineStats

#: Seconds without a block after which a live input is reported as ``"stalled"``.
STALL_S = 1.0
#: Seconds a (re)opened device may take to deliver its first block before it counts as
#: stalled (PulseAudio sometimes takes 1-2 s to start a capture stream).
START_GRACE_S = 3.0
#: A device stream that delivered nothing for this long is closed and opened again.
RESTART_AFTER_S = 5.0
#: Delays between attempts to reopen a lost device: doubling from the first to the last.
BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 8.0
#: Seconds between checks of the stop event while waiting for a block.
POLL_S = 0.05


#: Frames a decode may fall short of the header's count without being called truncated
#: (MP3 encoder delay and padding: two MPEG frames), besides 0.5 %.
TRUNCATION_TOLERANCE_FRAMES = 2304

#: What a user can do about a file libsndfile cannot open.
FORMATS_HINT = ("is it audio? moodtrack reads WAV, FLAC, OGG (Vorbis, Opus), MP3, AIFF and the "
                "other formats libsndfile knows; convert it, e.g. 'ffmpeg -i IN OUT.wav'")


class Block(NamedTuple):
    """``data``: float32 (n_frames, channels); ``arrival``: ``time.monotonic()`` seconds.

    A queued source reuses its buffers: ``data`` is valid until the next block is taken
    (copy it to keep it).
    """

    data: np.ndarray
    arrival: float


class Source:
    """Base of all sources: ``name``, ``sample_rate`` (Hz), ``channels``, :meth:`blocks`."""

    name: str = ""
    sample_rate: int = 0
    channels: int = 0

    def blocks(self, stop: threading.Event | None = None) -> Iterator[Block]:
        raise NotImplementedError

    def close(self) -> None:
        """Stop producing; idempotent."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


#: Most memory the capture queue may take (its blocks are allocated up front).
MAX_QUEUE_BYTES = 512 * 2**20


def check_queue_size(*, blocksize: int, channels: int, queue_blocks: int) -> None:
    """A MoodtrackError, naming the keys, when ``queue_blocks`` blocks of ``blocksize``
    frames of ``channels`` float32 samples exceed :data:`MAX_QUEUE_BYTES`."""
    need = (queue_blocks + 2) * blocksize * channels * 4
    if need > MAX_QUEUE_BYTES:
        raise MoodtrackError(
            f"input.blocksize = {blocksize} with input.queue_blocks = {queue_blocks} and "
            f"{channels} channel(s) needs a {need / 2**30:.1f} GiB capture queue (at most "
            f"{MAX_QUEUE_BYTES // 2**20} MiB): lower -b/--blocksize or input.queue_blocks")


class QueuedSource(Source):
    """A source whose producer runs on another thread and hands blocks over a bounded queue.

    The producer calls :meth:`_offer` (never blocks, never allocates beyond a preallocated
    pool) and :meth:`_end` once; the consumer iterates :meth:`blocks`.
    """

    def __init__(self, *, blocksize: int, channels: int, queue_blocks: int,
                 stats: PipelineStats | None):
        self.stats = stats if stats is not None else PipelineStats()
        check_queue_size(blocksize=blocksize, channels=channels, queue_blocks=queue_blocks)
        self._queue: queue.Queue = queue.Queue(maxsize=queue_blocks)
        # One more buffer than the queue holds, plus the one the consumer is working on:
        # a pool slot is never rewritten while still queued or in use.
        self._pool = np.zeros((queue_blocks + 2, blocksize, channels), dtype=np.float32)
        self._slot = 0
        self._ended = threading.Event()
        self._error: str | None = None

    # -- producer side (may be a real-time callback: no blocking, no logging) --
    def _offer(self, data: np.ndarray, arrival: float) -> None:
        n = data.shape[0]
        if n <= self._pool.shape[1]:
            buf = self._pool[self._slot, :n]
            buf[...] = data
        else:  # an unexpected long block: rare, allocate
            buf = np.array(data, dtype=np.float32)
        try:
            self._queue.put_nowait(Block(buf, arrival))
        except queue.Full:
            self.stats.dropped_blocks += 1
            return
        self._slot = (self._slot + 1) % self._pool.shape[0]

    def _end(self, error: str | None = None) -> None:
        self._error = error
        self._ended.set()

    # -- consumer side --
    def _start(self) -> None:
        raise NotImplementedError

    def blocks(self, stop: threading.Event | None = None) -> Iterator[Block]:
        stop = stop if stop is not None else threading.Event()
        self._start()
        last = time.monotonic()
        while not stop.is_set():
            try:
                block = self._queue.get(timeout=POLL_S)
            except queue.Empty:
                if self._ended.is_set() and self._queue.empty():
                    break
                if time.monotonic() - last > STALL_S:
                    self.stats.input_state = "stalled"
                continue
            last = block.arrival
            if self.stats.input_state == "stalled":
                self.stats.input_state = "ok"
            yield block
        if self._error is not None and not stop.is_set():
            self.stats.input_state = "lost"
            raise MoodtrackError(self._error)


#: A line a C decoder writes to stderr: libmpg123's "[src/libmpg123/layer3.c:...] error:
#: part2_3_length (3360) too large ...", "Note: Trying to resync...", "Warning: ...".
_DECODER_LINE = re.compile(rb"^(\[[^\]\n]*\.c:|Note: |Warning: |Error: )")
#: Most decoder messages kept per file.
MAX_DECODER_MESSAGES = 20
_FD2_LOCK = threading.Lock()


@contextlib.contextmanager
def decoder_messages(into: list[str]):
    """Capture what C code writes to file descriptor 2 while the block runs.

    Lines that look like a decoder's (libmpg123 reports damaged frames it skips on files
    that still decode) are appended to ``into`` (at most :data:`MAX_DECODER_MESSAGES`);
    anything else written meanwhile (another thread's message, a progress bar) goes on to
    stderr unchanged. Without a file descriptor 2 the block runs uncaptured.
    """
    with _FD2_LOCK:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        try:
            saved = os.dup(2)
        except OSError:
            yield
            return
        with tempfile.TemporaryFile() as tmp:
            os.dup2(tmp.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                tmp.seek(0)
                other = b""
                for line in tmp.read().splitlines(keepends=True):
                    if _DECODER_LINE.match(line):
                        if len(into) < MAX_DECODER_MESSAGES:
                            into.append(line.decode("utf-8", "replace").strip())
                    else:
                        other += line
                if other:
                    with contextlib.suppress(OSError):
                        os.write(2, other)


class FileSource(Source):
    """An audio file (anything libsndfile reads: wav, flac, ogg, mp3...) in blocks.

    ``paced=False`` reads in the caller's thread as fast as it consumes;
    ``paced=True`` delivers each block when its last frame would have been captured,
    through the same queue structure as the microphone. Both give identical audio.
    ``decoder_messages``: what the decoder reported on stderr while the file was opened and
    read (see :func:`decoder_messages`; not shown, kept for the run's summary).
    """

    def __init__(self, path: str | os.PathLike, *, paced: bool = False, blocksize: int = 1024,
                 queue_blocks: int = 64, stats: PipelineStats | None = None):
        import soundfile as sf

        from realtime.outputs import display

        self.path = Path(path)
        self.name = display(self.path)
        self.blocksize = int(blocksize)
        self.paced = paced
        fd = open_regular(self.path)
        try:
            size = os.fstat(fd).st_size
            if size == 0:
                raise MoodtrackError(f"cannot read audio file {self.name}: it is empty (0 bytes)")
            self.decoder_messages: list[str] = []
            with decoder_messages(self.decoder_messages):
                self._file = sf.SoundFile(fd, closefd=False)
        except (sf.LibsndfileError, RuntimeError, OSError, TypeError, ValueError) as exc:
            os.close(fd)
            raise MoodtrackError(f"cannot read audio file {self.name}: {_reason(exc)}; "
                                 f"{FORMATS_HINT}") from None
        except BaseException:
            os.close(fd)
            raise
        self._fd: int | None = fd
        self._queued = None
        self._info = self._file.extra_info  # libsndfile's log of the header
        self.frames_read = 0
        # Only the MPEG decoder (libmpg123) talks on stderr: capture its reads alone.
        self._chatty = self._file.format.upper() in ("MPEG", "MP3")
        self.sample_rate = int(self._file.samplerate)
        self.channels = int(self._file.channels)
        self.frames = int(self._file.frames)
        if self.frames <= 0 or self.sample_rate <= 0 or self.channels <= 0:
            self.close()
            raise MoodtrackError(f"audio file {self.name} contains no audio ({self.frames} "
                                 f"samples at {self.sample_rate} Hz, {self.channels} channels)")
        self.stats = stats if stats is not None else PipelineStats()
        try:
            self._queued = _PacedReader(self, queue_blocks=queue_blocks) if paced else None
        except BaseException:
            self.close()
            raise

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0

    def truncation(self) -> str | None:
        """Once read to the end: ``"truncated: decoded 15.0 of 30.0 s"`` when the file
        held less audio than its header promises (a WAV data chunk, an MP3 frame count), or
        ``"truncated: decoded 15.0 s; ..."`` for an Ogg stream that ends without its end
        mark; None for a whole file."""
        info = self._file.extra_info if not self._file.closed else self._info
        promised = self.frames
        m = re.search(r"^data\s*:\s*(\d+) \(should be \d+\)", info, flags=re.M)
        align = re.search(r"Block Align\s*:\s*(\d+)", info)
        if m and align and int(align.group(1)) > 0:
            promised = max(promised, int(m.group(1)) // int(align.group(1)))
        got, rate = self.frames_read, self.sample_rate
        if promised - got > max(TRUNCATION_TOLERANCE_FRAMES, 0.005 * promised):
            return f"truncated: decoded {got / rate:.1f} of {promised / rate:.1f} s"
        if "Last page lacks an end-of-stream bit" in info:
            return (f"truncated: decoded {got / rate:.1f} s; the Ogg stream ends without its end "
                    "mark (the file was cut short)")
        return None

    def _read(self) -> Iterator[np.ndarray]:
        """The file's blocks, float32 (n, channels); a decoding error is a MoodtrackError."""
        while True:
            try:
                with (decoder_messages(self.decoder_messages) if self._chatty
                      else contextlib.nullcontext()):
                    data = self._file.read(self.blocksize, dtype="float32", always_2d=True)
            except Exception as exc:  # libsndfile decoding errors surface as several types
                said = f" (the decoder said: {self.decoder_messages[-1]})" \
                    if self.decoder_messages else ""
                raise MoodtrackError(f"cannot decode audio file {self.name}: "
                                     f"{_reason(exc)}{said}") from None
            if data.shape[0] == 0:
                return
            self.frames_read += data.shape[0]
            yield data

    def blocks(self, stop: threading.Event | None = None) -> Iterator[Block]:
        if self._queued is not None:
            yield from self._queued.blocks(stop)
            return
        for data in self._read():
            if stop is not None and stop.is_set():
                return
            yield Block(data, time.monotonic())

    def close(self) -> None:
        if self._queued is not None:
            self._queued.close()
        if not self._file.closed:
            self._file.close()
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


class _PacedReader(QueuedSource):
    """Reader thread that plays a :class:`FileSource` into the queue at real-time pace."""

    def __init__(self, file: FileSource, *, queue_blocks: int):
        super().__init__(blocksize=file.blocksize, channels=file.channels,
                         queue_blocks=queue_blocks, stats=file.stats)
        self._file = file
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="file-reader", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        t0 = time.monotonic()
        sent = 0
        try:
            for data in self._file._read():
                sent += data.shape[0]
                due = t0 + sent / self._file.sample_rate
                if self._closing.wait(max(0.0, due - time.monotonic())):
                    break
                self._offer(data, time.monotonic())
        except MoodtrackError as exc:
            self._end(str(exc))
            return
        self._end()

    def close(self) -> None:
        self._closing.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)


class MicSource(QueuedSource):
    """A PortAudio input device. The callback only copies the block into the queue.

    ``device`` is a resolved :class:`realtime.devices.Device`; ``sample_rate`` and
    ``channels`` must already be checked (see :func:`realtime.devices.resolve_input`).

    Blocks are stamped with ``time.monotonic()`` in the callback (PortAudio's own
    timestamps are not trusted). The consumer (:meth:`blocks`) is also the watchdog:

    - no block for :data:`STALL_S` -> ``stats.input_state = "stalled"``;
    - the stream ends without being asked (device unplugged, PulseAudio source gone,
      an error in the callback) or stays stalled for :data:`RESTART_AFTER_S` ->
      ``"lost"``: the stream is closed and the same device (found again by name) is
      reopened with a doubling back-off (:data:`BACKOFF_MIN_S` .. :data:`BACKOFF_MAX_S`)
      until it delivers again, then ``"ok"`` and ``stats.reconnects`` += 1.

    Only the first open may raise (a device that cannot be opened at all); later
    failures are retried until ``stop`` is set.
    """

    def __init__(self, device, *, sample_rate: int, channels: int, blocksize: int = 1024,
                 queue_blocks: int = 64, stats: PipelineStats | None = None):
        super().__init__(blocksize=blocksize, channels=channels, queue_blocks=queue_blocks,
                         stats=stats)
        self.device = device
        self.name = device.name
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self.blocksize = int(blocksize)
        self._stream = None
        self._closing = False
        self._generation = 0  # streams opened so far; a stale stream's callbacks are ignored
        self._lock = threading.Lock()  # open/close vs close() from another thread

    def _callback(self, indata, frames, time_info, status) -> None:
        arrival = time.monotonic()  # PortAudio's timestamps are not trusted
        try:
            if status.input_overflow:
                self.stats.overflows += 1
            self._offer(indata, arrival)
        except Exception:  # never let PortAudio abort the stream (and print) over one block
            self.stats.dropped_blocks += 1

    def _finished(self, generation: int | None = None) -> None:
        if generation is not None and generation != self._generation:
            return  # a stream we already replaced
        if not self._closing:
            self._end(f"input device {self.name!r} stopped delivering audio (unplugged?)")
        else:
            self._end()

    def _start(self) -> None:
        """Open the stream (first open: errors are the user's to fix)."""
        if self._stream is None:
            self._open()

    def _open(self) -> None:
        from realtime.devices import import_sounddevice

        sd = import_sounddevice()
        with self._lock:
            if self._closing:
                return
            self._generation += 1
            gen = self._generation
            self._ended.clear()
            self._error = None
            try:
                stream = sd.InputStream(
                    device=self.device.index, samplerate=self.sample_rate,
                    channels=self.channels, blocksize=self.blocksize, dtype="float32",
                    callback=self._callback, finished_callback=lambda: self._finished(gen),
                )
                stream.start()
            except (sd.PortAudioError, ValueError) as exc:
                raise MoodtrackError(
                    f"cannot open input device {self.name!r} at {self.sample_rate} Hz with "
                    f"{self.channels} channel(s): {exc}; try another -r/--samplerate or "
                    "-c/--channels"
                ) from None
            self._stream = stream

    def _close_stream(self) -> None:
        with self._lock:
            stream, self._stream = self._stream, None
            self._generation += 1  # its late callbacks are now stale
        if stream is not None:
            try:
                stream.abort(ignore_errors=True)
                stream.close(ignore_errors=True)
            except Exception:  # a vanished device can fail to close: it is gone anyway
                pass

    def _reopen(self) -> None:
        from realtime.devices import find_again

        self.device = find_again(self.device)
        self._open()

    def blocks(self, stop: threading.Event | None = None) -> Iterator[Block]:
        stop = stop if stop is not None else threading.Event()
        self._start()
        delay = BACKOFF_MIN_S
        opened = last = time.monotonic()
        got_one = False
        while not stop.is_set():
            try:
                block = self._queue.get(timeout=POLL_S)
            except queue.Empty:
                if self._closing:
                    break
                now = time.monotonic()
                quiet = now - last
                if self._ended.is_set() or self._stream is None or (
                        quiet > RESTART_AFTER_S and now - opened > START_GRACE_S):
                    # Lost: reopen the same device with back-off until it delivers again.
                    why = self._error or (
                        f"input device {self.name!r} delivered no audio for {quiet:.0f} s"
                        if self._stream is not None else f"input device {self.name!r} is gone")
                    if self.stats.input_state != "lost":
                        self.stats.input_state = "lost"
                        self.stats.input_error = why
                    self._close_stream()
                    if stop.wait(delay):
                        break
                    delay = min(2 * delay, BACKOFF_MAX_S)
                    try:
                        self._reopen()
                    except MoodtrackError as exc:
                        self.stats.input_error = str(exc)
                        continue
                    opened = last = time.monotonic()
                    got_one = False
                    continue
                if quiet > STALL_S and (got_one or now - opened > START_GRACE_S) \
                        and self.stats.input_state == "ok":
                    self.stats.input_state = "stalled"
                continue
            last = block.arrival
            if not got_one:
                got_one = True
                if self.stats.input_state == "lost":
                    self.stats.reconnects += 1
                delay = BACKOFF_MIN_S
            if self.stats.input_state != "ok":
                self.stats.input_state = "ok"
                self.stats.input_error = ""
            yield block

    def close(self) -> None:
        self._closing = True
        self._close_stream()


def file_kind(mode: int) -> str:
    """What a non-regular file is, for messages (``"a FIFO (named pipe)"``...)."""
    import stat

    for test, what in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return what
    return "not a regular file"


def open_regular(path: str | os.PathLike) -> int:
    """A read-only file descriptor on ``path`` if it is a regular file, else a
    MoodtrackError saying what it is (a FIFO is opened without waiting for a writer,
    then refused; nothing else is opened that could block)."""
    import stat

    from realtime.outputs import display

    name = display(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
                     | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise MoodtrackError(f"cannot read audio file {name}: it does not exist") from None
    except OSError as exc:
        why = exc.strerror or str(exc)
        if exc.errno == errno.ENXIO:  # a socket, or a device with no driver
            with contextlib.suppress(OSError):
                why = f"it is {file_kind(os.stat(path).st_mode)}, not a regular file"
        raise MoodtrackError(f"cannot read audio file {name}: {why}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise MoodtrackError(f"cannot read audio file {name}: it is {file_kind(mode)}, "
                                 "not a regular file")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _reason(exc: BaseException) -> str:
    """A one-line reason from a libsndfile or OS error."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
    if text.startswith("Error opening ") and ": " in text:  # libsndfile repeats the file
        text = text.split("': ", 1)[1] if "': " in text else text.split(": ", 1)[1]
    return text[:200]
