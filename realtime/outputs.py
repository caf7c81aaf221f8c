"""Files moodtrack writes: never over what it reads, and whole or not at all.

- :class:`Protected`: the inputs and the model of a run; :meth:`Protected.check` refuses
  any output path that is one of them (same resolved path, or same device and inode:
  a hard link or a symlink to it).
- :func:`atomic_write`: a file is written to a temporary name in its own directory,
  flushed to disk and renamed into place, so a file with the final name is always whole
  (a kill or a full disk leaves the previous version, or nothing).
- :func:`output_name`: where ``analyze`` writes an input's timeline: its path relative
  to the run's root, plus ``.csv`` -- a pure function of the input path and the run's
  arguments, never of the order of the run.
- :class:`Manifest`: ``DIR/manifest.jsonl``, the record of every file an ``analyze`` run
  wrote in ``DIR`` (one JSON object a line, appended as each file finishes), from which a
  later run resumes; it also locks ``DIR`` against a second run at the same time.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
from collections.abc import Iterable
from pathlib import Path, PurePath

from realtime.errors import MoodtrackError

#: The run's own files in an ``analyze`` output directory.
MANIFEST = "manifest.jsonl"
SUMMARY_CSV, SUMMARY_JSON = "summary.csv", "summary.json"
RESERVED_NAMES = frozenset({MANIFEST, SUMMARY_CSV, SUMMARY_JSON})
#: Temporary files end with this (a run removes its own leftovers from a killed run).
TMP_SUFFIX = ".moodtrack-tmp"
MANIFEST_SCHEMA = 1


def display(text: str | os.PathLike) -> str:
    """A file name as valid text: bytes that are not UTF-8 (kept by Python as surrogate
    escapes) are written ``\\xff``."""
    return os.fspath(text).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class Protected:
    """Paths a run reads (its inputs, its model): no output may be one of them."""

    def __init__(self, paths: Iterable[tuple[str | os.PathLike, str]] = ()):
        self._real: dict[str, str] = {}
        self._ids: dict[tuple[int, int], str] = {}
        for path, what in paths:
            self.add(path, what)

    def add(self, path: str | os.PathLike, what: str) -> None:
        """Protect ``path``; ``what`` says what it is (e.g. ``"the input audio file"``)."""
        label = f"{what} {display(path)}"
        self._real.setdefault(os.path.realpath(path), label)
        with contextlib.suppress(OSError):
            st = os.stat(path)
            self._ids.setdefault((st.st_dev, st.st_ino), label)

    def find(self, path: str | os.PathLike) -> str | None:
        """What ``path`` would write over, or None."""
        hit = self._real.get(os.path.realpath(path))
        if hit is None:
            with contextlib.suppress(OSError):
                st = os.stat(path)
                hit = self._ids.get((st.st_dev, st.st_ino))
        return hit

    def check(self, path: str | os.PathLike, *, what: str, hint: str) -> None:
        """A MoodtrackError when ``path`` is a protected file; ``what`` names the output
        (``"--csv"``), ``hint`` says what to do instead."""
        hit = self.find(path)
        if hit is not None:
            raise MoodtrackError(f"{what} {display(path)} is {hit}: moodtrack never writes over "
                                 f"what it reads; {hint}")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[n:]


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """``path`` holds ``data`` afterwards, or (on any error, which is raised) is as it was.

    The data goes to a temporary file beside ``path`` (``.NAME.<random>`` +
    :data:`TMP_SUFFIX`, mode 0666 less the umask), is fsync'ed and renamed over ``path``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{TMP_SUFFIX}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def remove_leftovers(folders: Iterable[Path]) -> int:
    """Delete the temporary files a killed run left in ``folders``; returns how many."""
    n = 0
    for p in (p for folder in folders for p in folder.glob(f".*{TMP_SUFFIX}")):
        with contextlib.suppress(OSError):
            p.unlink()
            n += 1
    return n


# ------------------------------------------------------------------------ output names
def run_root(paths: Iterable[str | os.PathLike]) -> Path:
    """The directory output names are relative to: the deepest directory holding every
    PATH given (a directory counts itself, a file its folder)."""
    bases = []
    for p in paths:
        a = os.path.abspath(p)
        bases.append(a if os.path.isdir(a) else os.path.dirname(a))
    return Path(os.path.commonpath(bases))


def output_name(path: str | os.PathLike, root: Path, *, suffix: str = ".csv") -> PurePath:
    """``DIR``-relative name of an input's output: its path relative to ``root`` with
    ``suffix`` added (``sub/song.flac`` -> ``sub/song.flac.csv``)."""
    rel = PurePath(os.path.relpath(os.path.abspath(path), root))
    return rel.with_name(rel.name + suffix)


def sha256_of(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------- manifest
class Manifest:
    """``DIR/manifest.jsonl``: what earlier ``analyze`` runs wrote in ``DIR``.

    One JSON object a line, keyed by ``timeline`` (its name in ``DIR``); the last line for a
    timeline wins. Before an input's outputs are written a ``"state": "writing"`` line
    claims them, after it a ``"done"`` (or ``"failed"``) line records the input's path,
    size and mtime, the model's SHA-256 and version, the analysis options and the file's
    summary. A line cut short by a kill is ignored. The file stays locked (``flock``)
    while a run uses it: a second run into the same ``DIR`` is refused.
    """

    def __init__(self, folder: Path):
        import fcntl

        self.path = folder / MANIFEST
        self.entries: dict[str, dict] = {}
        self.existed = self.path.exists()
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND
                               | getattr(os, "O_CLOEXEC", 0), 0o666)
        except OSError as exc:
            raise MoodtrackError(f"cannot write to the output directory {display(folder)}: "
                                 f"{exc.strerror or exc}; choose a writable -o DIR") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._fd)
            raise MoodtrackError(f"another 'moodtrack analyze' is writing to {display(folder)} "
                                 "(its manifest.jsonl is locked): wait for it, or choose "
                                 "another -o DIR") from None
        with open(self._fd, "rb", closefd=False) as f:
            text = f.read()
        for line in text.split(b"\n"):
            with contextlib.suppress(ValueError, TypeError, KeyError):
                rec = json.loads(line)
                self.entries[rec["timeline"]] = rec
        self._newline = bool(text) and not text.endswith(b"\n")  # a line cut by a kill

    def record(self, entry: dict) -> None:
        """Append ``entry`` (with its ``timeline`` key); an OSError if it cannot."""
        line = json.dumps({"schema": MANIFEST_SCHEMA, **entry}, allow_nan=False) + "\n"
        if self._newline:
            line = "\n" + line
        _write_all(self._fd, line.encode("ascii"))
        self._newline = False
        self.entries[entry["timeline"]] = entry

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
