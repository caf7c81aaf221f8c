"""The live terminal dashboard: valence-arousal plane, mood, history, level and health.

A frame is a list of lines, each a list of ``(text, style)`` segments (rich style
strings), built by the pure function :func:`frame_lines` from a :class:`Snapshot`.
:func:`render` turns it into a rich renderable (tests, previews); the live
:class:`Dashboard` turns each line into a plain string with ANSI codes itself and
rewrites, with relative cursor moves, only the terminal lines that changed.

``Dashboard.emit`` only appends the update to a deque under a lock (analysis thread);
a drawing thread takes snapshots and draws them, so a slow terminal never delays the
analysis. The costly parts are built once and cached: the plane's axes and labels per
size, the ANSI codes per style; the sparklines look up one update per column by
bisection instead of scanning the whole history.
"""

from __future__ import annotations

import io
import os
import sys
import textwrap
import threading
from bisect import bisect_right
from collections import Counter, deque
from dataclasses import dataclass, field
from functools import lru_cache
from operator import attrgetter

from rich.cells import cell_len, set_cell_size
from rich.console import COLOR_SYSTEMS, Console
from rich.style import Style
from rich.text import Text

from realtime.colour import to_hex
from realtime.mood import MOOD_COLOURS, MoodUpdate
from realtime.stats import PipelineStats

TRAIL = 20                 # points in the fading trail behind the current one
SPARK = "▁▂▃▄▅▆▇█"
EIGHTHS = " ▏▎▍▌▋▊▉█"
LEVEL_MIN_DB = -60.0
INFO_MIN_WIDTH = 35        # columns kept for the right-hand side
LABEL_W = 9                # "valence  ", "input    ": the label column on the right

Segment = tuple[str, str]  # (text, rich style; "" = none)
Line = list[Segment]

# A 3x5 pixel font (M, N wider) for the mood name, drawn with half blocks in 3 rows.
_FONT = {
    "A": (".#.", "#.#", "###", "#.#", "#.#"), "C": (".##", "#..", "#..", "#..", ".##"),
    "E": ("###", "#..", "##.", "#..", "###"), "F": ("###", "#..", "##.", "#..", "#.."),
    "G": (".##", "#..", "#.#", "#.#", ".##"), "H": ("#.#", "#.#", "###", "#.#", "#.#"),
    "I": ("###", ".#.", ".#.", ".#.", "###"), "L": ("#..", "#..", "#..", "#..", "###"),
    "M": ("#...#", "##.##", "#.#.#", "#...#", "#...#"), "N": ("#..#", "##.#", "#.##", "#..#", "#..#"),
    "O": (".#.", "#.#", "#.#", "#.#", ".#."), "P": ("##.", "#.#", "##.", "#..", "#.."),
    "S": (".##", "#..", ".#.", "..#", "##."), "T": ("###", ".#.", ".#.", ".#.", ".#."),
    "U": ("#.#", "#.#", "#.#", "#.#", "###"),
}
_HALF = {(False, False): " ", (True, False): "▀", (False, True): "▄", (True, True): "█"}


@lru_cache(maxsize=64)
def big_text(word: str) -> list[str] | None:
    """``word`` in the pixel font as 3 lines, or None if it has a letter the font lacks."""
    glyphs = [_FONT.get(ch) for ch in word.upper()]
    if any(g is None for g in glyphs):
        return None
    rows = [" ".join(g[r] for g in glyphs) for r in range(5)] + [None]
    lines = []
    for top, bottom in zip(rows[0::2], rows[1::2]):
        lines.append("".join(_HALF[(a == "#", bottom is not None and bottom[i] == "#")]
                             for i, a in enumerate(top)))
    return lines


@dataclass(frozen=True)
class Snapshot:
    """What one frame shows: recent updates (oldest first), health counters, screen size;
    ``level``: ``"dbfs"``, or ``"lufs"`` to show loudness where the updates carry it."""

    history: tuple[MoodUpdate, ...] = ()
    stats: dict = field(default_factory=lambda: PipelineStats().to_dict())
    width: int = 80
    height: int = 24
    history_s: float = 180.0
    level: str = "dbfs"


def plane_size(width: int, height: int) -> tuple[int, int]:
    """Grid columns and rows (both odd) of the valence-arousal plane for a screen size."""
    rows = max(9, min(29, height - 7))
    rows -= 1 - rows % 2
    cols = max(21, min(2 * rows + 7, width - INFO_MIN_WIDTH - 4))
    cols -= 1 - cols % 2
    return cols, rows


def _cell(value: float, n: int) -> int:
    """Index 0..n-1 of a value in [-1, 1] on an axis of n cells."""
    return round((max(-1.0, min(1.0, value)) + 1.0) / 2.0 * (n - 1))


def _colour(update: MoodUpdate) -> str:
    return MOOD_COLOURS.get(update.mood, "white")


def _runs(chars, styles) -> Line:
    """Cells as segments, one per run of cells in the same style."""
    line: Line = []
    start = 0
    for i in range(1, len(chars) + 1):
        if i == len(chars) or styles[i] != styles[start]:
            line.append(("".join(chars[start:i]), styles[start]))
            start = i
    return line


@lru_cache(maxsize=8)
def _plane_grid(cols: int, rows: int) -> tuple[tuple[tuple[str, ...], ...],
                                               tuple[tuple[str, ...], ...],
                                               tuple[tuple[Segment, ...], ...]]:
    """The plane without points, built once per size: characters and styles per cell,
    and each row as segments."""
    cx, cy = cols // 2, rows // 2
    chars = [[" "] * cols for _ in range(rows)]
    styles = [["grey35"] * cols for _ in range(rows)]
    for r in range(rows):
        chars[r][cx] = "│"
    for c in range(cols):
        chars[cy][c] = "─"
    chars[cy][cx] = "┼"
    for r in (cy - rows // 4, cy + rows // 4):          # ticks at +-0.5
        chars[r][cx] = "┼"
    for c in (cx - cols // 4, cx + cols // 4):
        chars[cy][c] = "┼"

    def put(r: int, c: int, text: str, style: str) -> None:
        for i, ch in enumerate(text):
            if 0 <= c + i < cols:
                chars[r][c + i], styles[r][c + i] = ch, style

    put(0, 0, "tense", MOOD_COLOURS["tense"])
    put(0, cols - len("uplifting"), "uplifting", MOOD_COLOURS["uplifting"])
    put(rows - 1, 0, "melancholic", MOOD_COLOURS["melancholic"])
    put(rows - 1, cols - len("calm"), "calm", MOOD_COLOURS["calm"])
    put(0, cx + 2, "arousal", "grey50")
    put(cy - 1, cols - len("valence"), "valence", "grey50")
    put(cy + 1, 0, "-1", "grey42")
    put(cy + 1, cols - 2, "+1", "grey42")
    return (tuple(map(tuple, chars)), tuple(map(tuple, styles)),
            tuple(tuple(_runs(c, s)) for c, s in zip(chars, styles)))


def plane_lines(history: tuple[MoodUpdate, ...], cols: int, rows: int) -> list[Line]:
    """The valence (x) / arousal (y) plane in its box: axes, quadrant labels, trail and
    marker; ``cols`` + 2 cells wide, ``rows`` + 2 lines."""
    chars, styles, plain = _plane_grid(cols, rows)
    marks: dict[int, dict[int, tuple[str, str]]] = {}
    points = history[-(TRAIL + 1):]
    for age in range(len(points) - 1, -1, -1):          # oldest first: newer ones on top
        u = points[len(points) - 1 - age]
        r, c = rows - 1 - _cell(u.arousal, rows), _cell(u.valence, cols)
        if age == 0:
            mark = ("○", "grey62 bold") if u.silence else ("●", f"bold {_colour(u)}")
        elif age <= TRAIL // 4:
            mark = ("•", _colour(u))
        elif age <= TRAIL // 2:
            mark = ("•", f"dim {_colour(u)}")
        else:
            mark = ("·", "grey42")
        marks.setdefault(r, {})[c] = mark
    border = "grey42"
    title = " valence × arousal "
    lines: list[Line] = [[("╭─" + title + "─" * (cols - 1 - len(title)) + "╮", border)]]
    for r in range(rows):
        if r in marks:
            ch, st = list(chars[r]), list(styles[r])
            for c, (m, s) in marks[r].items():
                ch[c], st[c] = m, s
            body = _runs(ch, st)
        else:
            body = list(plain[r])
        lines.append([("│", border), *body, ("│", border)])
    sub = f" t {history[-1].t:.1f} s " if history else ""
    lines.append([("╰" + "─" * (cols - 1 - len(sub)) + sub + "─╯", border)])
    return lines


def bar(fraction: float, width: int, style="white") -> Line:
    """A horizontal bar of ``width`` cells filled to ``fraction`` (eighth-cell steps) on a
    faint track; ``style``: a style, or a function of the cell index giving one."""
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    full, part = divmod(eighths, 8)
    cells = "█" * full + (EIGHTHS[part] if part else "")
    n = len(cells)
    if callable(style):
        out = _runs(list(cells), [style(i) for i in range(n)]) if n else []
    else:
        out = [(cells, style)] if n else []
    if width > n:
        out.append(("─" * (width - n), "grey27"))
    return out


def spark_buckets(history: tuple[MoodUpdate, ...], width: int,
                  history_s: float) -> list[MoodUpdate | None]:
    """The latest update in each of ``width`` equal slices of the last ``history_s``
    seconds of audio (None where there is none), found by bisection: one search per
    filled slice, not a pass over the history."""
    buckets: list[MoodUpdate | None] = [None] * width
    if not history:
        return buckets
    t_end = history[-1].t
    dt = history_s / width

    def slot(u: MoodUpdate) -> int:          # non-decreasing along the history
        return width - 1 - int((t_end - u.t) / dt)

    hi = len(history)
    while hi > 0:
        u = history[hi - 1]
        k = slot(u)
        if k < 0:
            break
        buckets[k] = u
        hi = bisect_right(history, k - 1, 0, hi - 1, key=slot)
    return buckets


def sparkline(buckets: list[MoodUpdate | None], attr: str) -> Line:
    """``attr`` of each bucket's update as block characters on the fixed range [-1, 1],
    each coloured by its mood; blank where there is no data."""
    chars, styles = [], []
    top = len(SPARK) - 1
    for u in buckets:
        if u is None:
            chars.append(" ")
            styles.append("")
        else:
            chars.append(SPARK[round((max(-1.0, min(1.0, getattr(u, attr))) + 1.0) / 2.0 * top)])
            styles.append("grey50" if u.silence else _colour(u))
    return _runs(chars, styles) if chars else []


@lru_cache(maxsize=16)
def _zones(width: int) -> tuple[str, ...]:
    """Meter cell colours: green / yellow above -18 / red above -6 (of [-60, 0])."""
    def zone(i: int) -> str:
        db = LEVEL_MIN_DB + (i + 1) * -LEVEL_MIN_DB / width
        return "red" if db > -6 else "yellow" if db > -18 else "green"

    return tuple(zone(i) for i in range(width))


def level_meter(level: float, width: int) -> Line:
    """A level on [-60, 0] (dBFS or LUFS), green / yellow above -18 / red above -6."""
    return bar((level - LEVEL_MIN_DB) / -LEVEL_MIN_DB, width, _zones(width).__getitem__)


def _duration(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _counter(label: str, value, *, bad: bool) -> Line:
    return [(label + " ", "grey62"), (str(value), "bold red" if bad else "bold")]


def fit(line: Line, width: int, *, ellipsis: bool = False) -> Line:
    """``line`` cut to ``width`` cells (its last cell "…" when ``ellipsis``, as rich does)."""
    if width_of(line) <= width:
        return line
    room = width - 1 if ellipsis else width
    used, out = 0, []
    for text, style in line:
        n = cell_len(text)
        if used + n > room:
            if room > used:
                out.append((set_cell_size(text, room - used), style))
            if ellipsis and width > 0:
                out.append(("…", style))
            break
        out.append((text, style))
        used += n
    return out


def width_of(line: Line) -> int:
    return sum(cell_len(text) for text, _ in line)


def _mood_section(latest: MoodUpdate | None, width: int) -> list[Line]:
    """Mood name (big when it fits), quadrant with confidence bar, valence/arousal values."""
    if latest is None:
        return [[("waiting for audio…", "grey62 italic")], [], [], [], []]
    mood, colour = latest.mood, _colour(latest)
    big = big_text(mood)
    if big is not None and len(big[0]) <= width:
        lines = [[(line, f"bold {colour}")] for line in big]
    else:
        lines = [[], [(f" {' '.join(mood.upper())} ", f"bold reverse {colour}")], []]
    if latest.silence:
        lines.append([("no quadrant while silent", "grey50")])
    else:
        label = f"{latest.quadrant} {mood}"
        conf_w = max(5, min(20, width - len(label) - 12))
        lines.append([(label, f"bold {colour}"), ("  conf ", "grey62"),
                      *bar(latest.confidence, conf_w, colour),
                      (f" {latest.confidence:4.0%}", "bold")])
    values = [("valence ", "grey62"), (f"{latest.valence:+.2f}", "bold"),
              ("   arousal ", "grey62"), (f"{latest.arousal:+.2f}", "bold")]
    if latest.color is not None:  # the light colour, as OSC and ZeroMQ publish it
        hex_ = to_hex(latest.color)
        values += [("  ", ""), ("██", hex_)]
        if width_of(values) + 8 <= width:
            values.append((f" {hex_}", "grey62"))
    lines.append(values)
    return lines


def _labelled(label: str, *rest: Segment, style: str = "grey62") -> Line:
    """A line of the right-hand side: ``label`` in the label column, then ``rest``."""
    return [(f"{label:<{LABEL_W - 1}} ", style), *rest]


#: Updates searched back for the last one with tags (they come about once a second).
TAGS_LOOKBACK = 100
#: Tags shown per group.
TAGS_SHOWN = 3


def _latest_tags(history: tuple[MoodUpdate, ...]) -> dict | None:
    """The ``tags`` of the last update that has them, among the last TAGS_LOOKBACK."""
    for u in reversed(history[-TAGS_LOOKBACK:]):
        tags = getattr(u, "tags", None)
        if tags:
            return tags
    return None


def _tag_pairs(tags) -> list[list[tuple[str, float]]]:
    """Groups of (name, score) pairs, highest first, from ``{group: [[name, score], ...]}``
    (or a plain ``{name: score}``)."""
    groups = tags.values() if all(isinstance(v, (list, tuple)) for v in tags.values()) \
        else [list(tags.items())]
    out = []
    for pairs in groups:
        pairs = [(str(n), float(v)) for n, v in pairs]
        out.append(sorted(pairs, key=lambda p: -p[1])[:TAGS_SHOWN])
    return [g for g in out if g]


def _extra_section(history: tuple[MoodUpdate, ...], width: int) -> list[Line]:
    """Lines for what only some pipelines give, each shown when present (None = not):
    the share of speech, and the latest tags. One line per field: add a field here."""
    if not history:
        return []
    latest, lines = history[-1], []
    speech = getattr(latest, "speech", None)
    if speech is not None:
        lines.append(_labelled("speech", *bar(speech, max(10, width - LABEL_W - 5), "grey70"),
                               (f" {speech:4.0%}", "bold")))
    tags = _latest_tags(history)
    if tags:
        line = _labelled("tags")
        for i, group in enumerate(_tag_pairs(tags)):
            line += [(" · ", "grey42")] if i else []
            for j, (name, score) in enumerate(group):
                line += [("  " if j else "", ""), (f"{name} ", "bold"), (f"{score:.0%}", "grey62")]
        lines.append(fit(line, width, ellipsis=True))
    return lines


def _history_section(snapshot: Snapshot, width: int) -> list[Line]:
    """Fixed-range sparklines of valence and arousal with a time axis under them."""
    spark_w = max(10, width - LABEL_W)
    buckets = spark_buckets(snapshot.history, spark_w, snapshot.history_s)
    lines = [_labelled(name, *sparkline(buckets, name)) for name in ("valence", "arousal")]
    minutes = snapshot.history_s / 60
    left = f"-{minutes:g} min" if minutes >= 1 else f"-{snapshot.history_s:g} s"
    lines.append([(" " * LABEL_W + left + "range -1..+1".center(spark_w - len(left) - 3)
                   + "now", "grey42")])
    return lines


def _level_section(snapshot: Snapshot, width: int) -> list[Line]:
    """Input level meter with the silence flag: dBFS, or momentary and short-term
    loudness in LUFS when ``snapshot.level`` is ``"lufs"`` and the update has them."""
    latest = snapshot.history[-1] if snapshot.history else None
    level_db = latest.level_db if latest is not None else snapshot.stats.get("level_db", -100.0)
    silent = latest is not None and latest.silence
    label = ("silent", "bold reverse grey62") if silent else ("input", "grey62")
    value_style = "grey62" if silent else "bold"
    lufs_m = getattr(latest, "loudness_m", None) if snapshot.level == "lufs" else None
    if lufs_m is not None:
        lufs_s = getattr(latest, "loudness_s", None)
        readout = f" M {max(lufs_m, -99.9):5.1f}" + (
            f" S {max(lufs_s, -99.9):5.1f}" if lufs_s is not None else "") + " LUFS"
        if width - LABEL_W - len(readout) < 10:          # narrow: momentary only
            readout = f" {max(lufs_m, -99.9):5.1f} LUFS"
        meter = level_meter(lufs_m, max(10, width - LABEL_W - len(readout)))
    else:
        readout = f" {max(level_db, -99.9):5.1f} dBFS"
        meter = level_meter(level_db, max(10, width - 20))
    return [[label, (" " * (LABEL_W - len(label[0])), ""), *meter, (readout, value_style)]]


def _share_section(snapshot: Snapshot, width: int) -> list[Line]:
    """How the shown history divides between the moods (silence included), by updates."""
    counts = Counter(map(attrgetter("mood"), snapshot.history))
    total = sum(counts.values())
    line = _labelled("moods")
    for mood, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        line += [(f"{mood} ", MOOD_COLOURS.get(mood, "white")),
                 (f"{n / total:.0%}  ", "bold grey62")]
    return [fit(line, width, ellipsis=True)]


def info_lines(snapshot: Snapshot, width: int) -> list[Line]:
    """Right-hand side: a blank line, then mood, history sparklines, level and mood
    shares, spaced out on tall screens (closer when there are extra lines)."""
    latest = snapshot.history[-1] if snapshot.history else None
    rows = plane_size(snapshot.width, snapshot.height)[1]
    sections = [_mood_section(latest, width) + _extra_section(snapshot.history, width),
                _history_section(snapshot, width), _level_section(snapshot, width),
                _share_section(snapshot, width)]
    content = sum(map(len, sections))
    gap = max(1, min(3, (rows - 8) // 4))
    room = rows - content                    # within the plane's box, less the first blank
    if gap * (len(sections) - 1) > room:
        gap = max(0, room // (len(sections) - 1))
    lines: list[Line] = [[]]
    for i, sec in enumerate(sections):
        lines += ([[]] * gap if i else []) + sec
    return [fit(line, width) for line in lines[:rows + 2]]


def footer_lines(snapshot: Snapshot) -> list[Line]:
    """Device line and health counters; the input state in red when not ok."""
    s, latest = snapshot.stats, (snapshot.history[-1] if snapshot.history else None)
    device = [("device ", "grey62"), (s.get("device") or "?", "bold"),
              (f"  {s.get('sample_rate', 0)} Hz  {s.get('channels', 0)} ch", ""),
              ("   model ", "grey62"), (s.get("model") or "?", "")]
    latency = s.get("latency_ms") or (latest.latency_ms if latest else 0.0)
    state = s.get("input_state", "ok")
    parts = [
        _counter("latency", f"{latency:.1f} ms", bad=latency > 500),
        _counter("overflows", s.get("overflows", 0), bad=s.get("overflows", 0) > 0),
        _counter("drops", s.get("dropped_blocks", 0), bad=s.get("dropped_blocks", 0) > 0),
        _counter("zmq drops", s.get("zmq_dropped", 0), bad=s.get("zmq_dropped", 0) > 0),
        *([_counter("csv", "STOPPED", bad=True)] if s.get("csv_error") else []),
        *([_counter("reconnects", s["reconnects"], bad=True)] if s.get("reconnects") else []),
        _counter("up", _duration(s.get("uptime_s", 0.0)), bad=False),
        [("input ", "grey62"), (state if state == "ok" else f" {state.upper()} ",
                                "bold green" if state == "ok" else "bold reverse red")],
    ]
    counters: Line = []
    for i, p in enumerate(parts):
        counters += ([("  ", "")] if i else []) + p
    return [fit(device, snapshot.width, ellipsis=True),
            fit(counters, snapshot.width, ellipsis=True)]


def frame_lines(snapshot: Snapshot) -> list[Line]:
    """One dashboard frame for ``snapshot`` as lines of segments (pure: no clock, no
    shared state); at most ``snapshot.height`` - 1 lines of ``snapshot.width`` cells."""
    cols, rows = plane_size(snapshot.width, snapshot.height)
    info_w = max(INFO_MIN_WIDTH, snapshot.width - cols - 4)  # 2 border, 1 gap, 1 spare
    state = snapshot.stats.get("input_state", "ok")
    lines: list[Line] = []
    if state != "ok":
        what = {"stalled": "no audio arriving",
                "lost": "input device lost, reconnecting"}.get(state, state)
        lines.append(fit([(f" ⚠ INPUT {state.upper()}: {what} ".ljust(snapshot.width - 1),
                           "bold reverse red")], snapshot.width))
    elif snapshot.stats.get("input_hint"):  # e.g. digital silence: which device, what to do
        for row in textwrap.wrap(f"⚠ {snapshot.stats['input_hint']}", snapshot.width - 3)[:3]:
            lines.append(fit([(f" {row} ".ljust(snapshot.width - 1), "bold reverse yellow")],
                             snapshot.width))
    plane = plane_lines(snapshot.history, cols, rows)
    info = info_lines(snapshot, info_w)
    blank = [(" " * (cols + 2), "")]
    for i in range(max(len(plane), len(info))):
        left = plane[i] if i < len(plane) else blank
        lines.append(left + [(" ", "")] + info[i] if i < len(info) else left)
    lines += footer_lines(snapshot)
    return [fit(line, snapshot.width) for line in lines[:max(1, snapshot.height - 1)]]


def render(snapshot: Snapshot) -> Text:
    """One dashboard frame for ``snapshot`` as rich Text (pure: no clock, no shared state)."""
    text = Text(no_wrap=True, overflow="crop")
    for i, line in enumerate(frame_lines(snapshot)):
        if i:
            text.append("\n")
        for seg, style in line:
            text.append(seg, style or None)
    return text


# ------------------------------------------------------------------ terminal output
class AnsiPainter:
    """Turns frames into terminal output: each line a string with ANSI codes (the codes
    of each style computed once), and only the lines that differ from the last frame
    rewritten, with cursor moves relative to the frame's last line (where the cursor
    rests). ``color_system``: rich's name (``"truecolor"``, ``"256"``, ``"standard"``)
    or None for no colour."""

    def __init__(self, color_system: str | None):
        self._system = COLOR_SYSTEMS.get(color_system) if color_system else None
        self._codes: dict[str, str] = {}
        self.rows: list[str] = []          # what the terminal shows now, as written

    def _prefix(self, style: str) -> str:
        code = self._codes.get(style)
        if code is None:
            code = ""
            if style and self._system is not None:
                attrs = Style.parse(style)._make_ansi_codes(self._system)
                code = f"\x1b[{attrs}m" if attrs else ""
            self._codes[style] = code
        return code

    def line(self, line: Line) -> str:
        out = []
        for text, style in line:
            code = self._prefix(style) if style else ""
            out.append(f"{code}{text}\x1b[0m" if code else text)
        return "".join(out)

    def paint(self, frame: list[Line], *, full: bool = False) -> str:
        """The output that turns the terminal's frame into ``frame``: a full redraw when
        asked, the first time, or when the number of lines changed."""
        rows = [self.line(line) for line in frame]
        old = self.rows
        out = []
        if full or len(rows) != len(old):
            if len(old) > 1:
                out.append(f"\r\x1b[{len(old) - 1}A")
            out.append("\r\x1b[J" + "\n".join(rows))
        else:
            cur = len(old) - 1
            for i, (new, was) in enumerate(zip(rows, old)):
                if new != was:
                    if cur != i:
                        out.append(f"\x1b[{cur - i}A" if cur > i else f"\x1b[{i - cur}B")
                    out.append(f"\r{new}\x1b[K")
                    cur = i
            if out and cur != len(rows) - 1:
                out.append(f"\x1b[{len(rows) - 1 - cur}B")
        self.rows = rows
        return "".join(out)

    def above(self, text: str) -> str:
        """Output that prints ``text`` (whole lines) where the frame is, then the frame
        again below it."""
        old = self.rows
        up = f"\r\x1b[{len(old) - 1}A" if len(old) > 1 else "\r"
        body = text.replace("\n", "\x1b[K\n")
        return up + "\x1b[J" + body + "\n".join(old)


class _Redirect(io.TextIOBase):
    """Stands in for sys.stdout / sys.stderr while the dashboard is drawn: whole lines
    written by anyone else are printed above the frame instead of through it."""

    def __init__(self, dashboard: "Dashboard", real):
        self._dash, self._real, self._buf = dashboard, real, ""

    def write(self, s: str) -> int:
        self._buf += s
        if "\n" in self._buf:
            text, self._buf = self._buf.rsplit("\n", 1)
            self._dash.print_above(text + "\n")
        return len(s)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return self._real.isatty()

    def fileno(self) -> int:
        return self._real.fileno()

    @property
    def encoding(self):
        return getattr(self._real, "encoding", "utf-8")


#: Counters that change with every block but are not drawn: no reason to redraw.
_NOT_SHOWN = frozenset({"blocks", "updates", "nonfinite_samples"})


class Dashboard:
    """The live dashboard sink. ``refresh_hz``: most redraws per second; ``history_s``:
    seconds of audio the sparklines cover; ``level``: ``"dbfs"`` or ``"lufs"`` (the input
    meter in LUFS where updates carry loudness); ``console``: a rich Console giving the
    output file, size and colour system (default: stdout).

    A drawing thread checks ``refresh_hz`` times a second whether anything shown has
    changed (a new update, a counter, the terminal size, the uptime's second) and only
    then builds the frame and writes the lines that changed, in one ``os.write`` (which
    releases the GIL) where the output is a file descriptor.
    """

    def __init__(self, stats: PipelineStats, *, refresh_hz: float = 5.0,
                 history_s: float = 180.0, level: str = "dbfs", console: Console | None = None):
        self.stats = stats
        self.history_s = float(history_s)
        self.level = level
        self.console = console or Console()
        self._history: deque[MoodUpdate] = deque()
        self._lock = threading.Lock()          # the history
        self._out_lock = threading.RLock()     # the terminal
        self.refresh_hz = float(refresh_hz)
        self._painter = AnsiPainter(self.console.color_system)
        self._file = self.console.file
        self._fd: int | None = None
        self._size: tuple[int, int] | None = None
        self._saved: tuple | None = None
        self._started = self._closed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def emit(self, update: MoodUpdate) -> None:
        with self._lock:
            h = self._history
            if h and update.t < h[-1].t:      # audio time went back (a new input): restart
                h.clear()
            h.append(update)
            while h[0].t < update.t - self.history_s:
                h.popleft()

    def snapshot(self) -> Snapshot:
        """The current state, for :func:`frame_lines`."""
        with self._lock:
            history = tuple(self._history)
        width, height = self.console.size
        return Snapshot(history, self.stats.to_dict(), width, height, self.history_s, self.level)

    @staticmethod
    def _shown(snap: Snapshot) -> tuple:
        """What a frame shows, to tell whether a redraw would change anything."""
        stats = {k: v for k, v in snap.stats.items() if k not in _NOT_SHOWN}
        stats["uptime_s"] = int(stats.get("uptime_s", 0))
        last = snap.history[-1].seq if snap.history else None
        return last, len(snap.history), snap.width, snap.height, tuple(sorted(stats.items()))

    def _write(self, s: str) -> None:
        if not s:
            return
        if self._fd is None:
            self._file.write(s)
            self._file.flush()
            return
        data = s.encode("utf-8", "replace")
        while data:
            try:
                n = os.write(self._fd, data)
            except InterruptedError:
                continue
            except OSError:                    # the terminal went away: stop drawing
                self._stop.set()
                return
            data = data[n:]

    def draw(self, snap: Snapshot | None = None) -> None:
        """Draw ``snap`` (default: the current state): the changed lines only, or the
        whole frame after the terminal was resized (the screen cleared first)."""
        snap = snap or self.snapshot()
        frame = frame_lines(snap)
        with self._out_lock:
            resized = self._size is not None and self._size != (snap.width, snap.height)
            self._size = (snap.width, snap.height)
            if resized:
                self._painter.rows = []
            self._write(("\x1b[2J\x1b[H" if resized else "")
                        + self._painter.paint(frame, full=resized))

    def print_above(self, text: str) -> None:
        """Print ``text`` (ending in a newline) above the frame."""
        with self._out_lock:
            self._write(self._painter.above(text))

    def _draw_loop(self) -> None:
        shown, failed = None, False
        while not self._stop.wait(1.0 / self.refresh_hz):
            snap = self.snapshot()
            key = self._shown(snap)
            if key != shown:
                shown = key
                try:
                    self.draw(snap)
                except Exception as exc:  # a bug in a line must not freeze the display silently
                    if not failed:
                        failed = True
                        self.print_above(f"moodtrack: dashboard: cannot draw a frame "
                                         f"({type(exc).__name__}: {exc}); please report this\n")

    def start(self) -> None:
        if self._started or self._closed:
            return
        self._started = True
        for f in (sys.stdout, sys.stderr):
            try:
                f.flush()
            except (OSError, ValueError, AttributeError):
                pass
        try:
            self._fd = self._file.fileno()
        except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
            self._fd = None
        self._write("\x1b[?25l")               # hide the cursor
        self.draw()
        self._saved = (sys.stdout, sys.stderr)
        sys.stdout, sys.stderr = _Redirect(self, sys.stdout), _Redirect(self, sys.stderr)
        self._thread = threading.Thread(target=self._draw_loop, name="dashboard", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self._started:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        if self._saved is not None:
            sys.stdout, sys.stderr = self._saved
        self.draw()
        self._write("\n\x1b[?25h")             # below the last frame, cursor shown
