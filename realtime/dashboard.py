"""The live terminal dashboard: valence-arousal plane, mood, history, level and health.

``Dashboard.emit`` only appends the update to a deque under a lock (analysis thread);
a ``rich.live.Live`` refresh thread takes a :class:`Snapshot` and draws it with the
pure function :func:`render`, so a slow terminal never delays the analysis.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from realtime.colour import to_hex
from realtime.mood import MOOD_COLOURS, MoodUpdate
from realtime.stats import PipelineStats

TRAIL = 20                 # points in the fading trail behind the current one
SPARK = "▁▂▃▄▅▆▇█"
EIGHTHS = " ▏▎▍▌▋▊▉█"
LEVEL_MIN_DB = -60.0
INFO_MIN_WIDTH = 35        # columns kept for the right-hand side

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
    """What one frame shows: recent updates (oldest first), health counters, screen size."""

    history: tuple[MoodUpdate, ...] = ()
    stats: dict = field(default_factory=lambda: PipelineStats().to_dict())
    width: int = 80
    height: int = 24
    history_s: float = 180.0


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


def render_plane(history: tuple[MoodUpdate, ...], cols: int, rows: int) -> Panel:
    """The valence (x) / arousal (y) plane with axes, quadrant labels, trail and marker."""
    cx, cy = cols // 2, rows // 2
    chars = [[" "] * cols for _ in range(rows)]
    styles: list[list[str]] = [["grey35"] * cols for _ in range(rows)]
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

    points = history[-(TRAIL + 1):]
    for age in range(len(points) - 1, -1, -1):          # oldest first: newer ones on top
        u = points[len(points) - 1 - age]
        r, c = rows - 1 - _cell(u.arousal, rows), _cell(u.valence, cols)
        if age == 0:
            char, style = ("○", "grey62 bold") if u.silence else ("●", f"bold {_colour(u)}")
        elif age <= TRAIL // 4:
            char, style = "•", _colour(u)
        elif age <= TRAIL // 2:
            char, style = "•", f"dim {_colour(u)}"
        else:
            char, style = "·", "grey42"
        chars[r][c], styles[r][c] = char, style

    text = Text(no_wrap=True, overflow="crop")
    for r in range(rows):
        if r:
            text.append("\n")
        for ch, st in zip(chars[r], styles[r]):
            text.append(ch, st)
    subtitle = f"t {history[-1].t:.1f} s" if history else None
    return Panel(text, title="valence × arousal", title_align="left", subtitle=subtitle,
                 subtitle_align="right", border_style="grey42", padding=(0, 0), width=cols + 2)


def bar(fraction: float, width: int, style="white") -> Text:
    """A horizontal bar of ``width`` cells filled to ``fraction`` (eighth-cell steps) on a
    faint track; ``style``: a style, or a function of the cell index giving one."""
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    full, part = divmod(eighths, 8)
    cells = "█" * full + (EIGHTHS[part] if part else "")
    text = Text(no_wrap=True)
    for i in range(width):
        if i < len(cells):
            text.append(cells[i], style(i) if callable(style) else style)
        else:
            text.append("─", "grey27")
    return text


def sparkline(history: tuple[MoodUpdate, ...], attr: str, width: int,
              history_s: float) -> Text:
    """``attr`` over the last ``history_s`` seconds of audio as ``width`` block characters
    on the fixed range [-1, 1], each coloured by its mood; blank where there is no data."""
    text = Text(no_wrap=True)
    if not history:
        return text.append(" " * width)
    t_end = history[-1].t
    dt = history_s / width
    buckets: list[MoodUpdate | None] = [None] * width
    for u in history:
        k = width - 1 - int((t_end - u.t) / dt)
        if 0 <= k < width:
            buckets[k] = u                   # the latest update in each bucket
    for u in buckets:
        if u is None:
            text.append(" ")
        else:
            level = round((max(-1.0, min(1.0, getattr(u, attr))) + 1.0) / 2.0 * (len(SPARK) - 1))
            text.append(SPARK[level], "grey50" if u.silence else _colour(u))
    return text


def level_meter(level_db: float, width: int) -> Text:
    """Input level on [-60, 0] dBFS, green / yellow above -18 / red above -6."""
    def zone(i: int) -> str:
        db = LEVEL_MIN_DB + (i + 1) * -LEVEL_MIN_DB / width
        return "red" if db > -6 else "yellow" if db > -18 else "green"

    return bar((level_db - LEVEL_MIN_DB) / -LEVEL_MIN_DB, width, zone)


def _duration(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _counter(label: str, value, *, bad: bool) -> Text:
    return Text.assemble((label + " ", "grey62"), (str(value), "bold red" if bad else "bold"))


def _mood_section(latest: MoodUpdate | None, width: int) -> list[Text]:
    """Mood name (big when it fits), quadrant with confidence bar, valence/arousal values."""
    if latest is None:
        return [Text("waiting for audio…", "grey62 italic"), Text(), Text(), Text(), Text()]
    mood, colour = latest.mood, _colour(latest)
    big = big_text(mood)
    if big is not None and len(big[0]) <= width:
        lines = [Text(line, f"bold {colour}") for line in big]
    else:
        lines = [Text(), Text(f" {' '.join(mood.upper())} ", f"bold reverse {colour}"), Text()]
    if latest.silence:
        lines.append(Text("no quadrant while silent", "grey50"))
    else:
        label = f"{latest.quadrant} {mood}"
        conf_w = max(5, min(20, width - len(label) - 12))
        lines.append(Text.assemble(
            (label, f"bold {colour}"), ("  conf ", "grey62"),
            bar(latest.confidence, conf_w, colour), (f" {latest.confidence:4.0%}", "bold")))
    values = Text.assemble(("valence ", "grey62"), (f"{latest.valence:+.2f}", "bold"),
                           ("   arousal ", "grey62"), (f"{latest.arousal:+.2f}", "bold"))
    if latest.color is not None:  # the light colour, as OSC and ZeroMQ publish it
        hex_ = to_hex(latest.color)
        values.append("  ")
        values.append("██", hex_)
        if len(values) + 8 <= width:
            values.append(f" {hex_}", "grey62")
    lines.append(values)
    return lines


def _history_section(snapshot: Snapshot, width: int) -> list[Text]:
    """Fixed-range sparklines of valence and arousal with a time axis under them."""
    spark_w = max(10, width - 9)
    lines = [Text.assemble((f"{name:<8} ", "grey62"),
                           sparkline(snapshot.history, name, spark_w, snapshot.history_s))
             for name in ("valence", "arousal")]
    minutes = snapshot.history_s / 60
    left = f"-{minutes:g} min" if minutes >= 1 else f"-{snapshot.history_s:g} s"
    lines.append(Text(" " * 9 + left + "range -1..+1".center(spark_w - len(left) - 3) + "now",
                      "grey42", no_wrap=True))
    return lines


def _level_section(snapshot: Snapshot, width: int) -> list[Text]:
    """Input level meter, dBFS, with the silence flag."""
    latest = snapshot.history[-1] if snapshot.history else None
    level_db = latest.level_db if latest is not None else snapshot.stats.get("level_db", -100.0)
    silent = latest is not None and latest.silence
    label = ("silent", "bold reverse grey62") if silent else ("input", "grey62")
    return [Text.assemble(label, " " * (9 - len(label[0])),
                          level_meter(level_db, max(10, width - 20)),
                          (f" {max(level_db, -99.9):5.1f} dBFS", "grey62" if silent else "bold"),
                          no_wrap=True)]


def _share_section(snapshot: Snapshot) -> list[Text]:
    """How the shown history divides between the moods (silence included), by updates."""
    counts: dict[str, int] = {}
    for u in snapshot.history:
        counts[u.mood] = counts.get(u.mood, 0) + 1
    total = sum(counts.values())
    text = Text("moods    ", "grey62", no_wrap=True, overflow="ellipsis")
    for mood, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        text.append(f"{mood} ", MOOD_COLOURS.get(mood, "white"))
        text.append(f"{n / total:.0%}  ", "bold")
    return [text]


def render_info(snapshot: Snapshot, width: int) -> Group:
    """Right-hand side: mood, history sparklines, level; spaced out on tall screens."""
    latest = snapshot.history[-1] if snapshot.history else None
    rows = plane_size(snapshot.width, snapshot.height)[1]
    gap = [Text()] * max(1, min(3, (rows - 8) // 4))
    lines = (_mood_section(latest, width) + gap + _history_section(snapshot, width) + gap
             + _level_section(snapshot, width) + gap + _share_section(snapshot))
    return Group(*lines)


def render_footer(snapshot: Snapshot) -> Group:
    """Device line and health counters; the input state in red when not ok."""
    s, latest = snapshot.stats, (snapshot.history[-1] if snapshot.history else None)
    device = Text.assemble(("device ", "grey62"), (s.get("device") or "?", "bold"),
                           (f"  {s.get('sample_rate', 0)} Hz  {s.get('channels', 0)} ch", ""),
                           ("   model ", "grey62"), (s.get("model") or "?", ""),
                           overflow="ellipsis", no_wrap=True)
    latency = s.get("latency_ms") or (latest.latency_ms if latest else 0.0)
    state = s.get("input_state", "ok")
    counters = Text("  ").join([
        _counter("latency", f"{latency:.1f} ms", bad=latency > 500),
        _counter("overflows", s.get("overflows", 0), bad=s.get("overflows", 0) > 0),
        _counter("drops", s.get("dropped_blocks", 0), bad=s.get("dropped_blocks", 0) > 0),
        _counter("zmq drops", s.get("zmq_dropped", 0), bad=s.get("zmq_dropped", 0) > 0),
        *([_counter("csv", "STOPPED", bad=True)] if s.get("csv_error") else []),
        *([_counter("reconnects", s["reconnects"], bad=True)] if s.get("reconnects") else []),
        _counter("up", _duration(s.get("uptime_s", 0.0)), bad=False),
        Text.assemble(("input ", "grey62"),
                      (state if state == "ok" else f" {state.upper()} ",
                       "bold green" if state == "ok" else "bold reverse red")),
    ])
    counters.no_wrap, counters.overflow = True, "ellipsis"
    return Group(device, counters)


def render(snapshot: Snapshot) -> RenderableType:
    """One dashboard frame for ``snapshot`` (pure: no clock, no shared state)."""
    cols, rows = plane_size(snapshot.width, snapshot.height)
    info_w = max(INFO_MIN_WIDTH, snapshot.width - cols - 4)  # 2 border, 1 gap, 1 spare
    state = snapshot.stats.get("input_state", "ok")
    parts: list[RenderableType] = []
    if state != "ok":
        what = {"stalled": "no audio arriving", "lost": "input device lost, reconnecting"}.get(state, state)
        parts.append(Text(f" ⚠ INPUT {state.upper()}: {what} ".ljust(snapshot.width - 1),
                          "bold reverse red", no_wrap=True))
    elif snapshot.stats.get("input_hint"):  # e.g. digital silence: which device, what to do
        parts.append(Text(f" ⚠ {snapshot.stats['input_hint']} ", "bold reverse yellow"))
    body = Table.grid(padding=(0, 1))
    body.add_column(width=cols + 2)
    body.add_column(width=info_w)
    body.add_row(render_plane(snapshot.history, cols, rows),
                 Group(Text(), render_info(snapshot, info_w)))
    parts.append(body)
    parts.append(render_footer(snapshot))
    return Group(*parts)


#: Counters that change with every block but are not drawn: no reason to redraw.
_NOT_SHOWN = frozenset({"blocks", "updates", "nonfinite_samples"})


class Dashboard:
    """The live dashboard sink. ``refresh_hz``: most redraws per second; ``history_s``:
    seconds of audio the sparklines cover; ``console``: a rich Console (default stdout).

    A drawing thread checks ``refresh_hz`` times a second whether anything shown has
    changed (a new update, a counter, the terminal size, the uptime's second) and only
    then renders and redraws: a frame costs milliseconds of CPU, mostly in rich.
    """

    def __init__(self, stats: PipelineStats, *, refresh_hz: float = 5.0,
                 history_s: float = 180.0, console: Console | None = None):
        self.stats = stats
        self.history_s = float(history_s)
        self.console = console or Console()
        self._history: deque[MoodUpdate] = deque()
        self._lock = threading.Lock()
        self.refresh_hz = float(refresh_hz)
        self._live = Live(console=self.console, auto_refresh=False, transient=False)
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
        """The current state, for :func:`render`."""
        with self._lock:
            history = tuple(self._history)
        width, height = self.console.size
        return Snapshot(history, self.stats.to_dict(), width, height, self.history_s)

    def render(self, snapshot: Snapshot) -> RenderableType:
        return render(snapshot)

    def _frame(self) -> RenderableType:
        return render(self.snapshot())

    @staticmethod
    def _shown(snap: Snapshot) -> tuple:
        """What a frame shows, to tell whether a redraw would change anything."""
        stats = {k: v for k, v in snap.stats.items() if k not in _NOT_SHOWN}
        stats["uptime_s"] = int(stats.get("uptime_s", 0))
        last = snap.history[-1].seq if snap.history else None
        return last, len(snap.history), snap.width, snap.height, tuple(sorted(stats.items()))

    def _draw_loop(self) -> None:
        shown = None
        while not self._stop.wait(1.0 / self.refresh_hz):
            snap = self.snapshot()
            key = self._shown(snap)
            if key != shown:
                shown = key
                self._live.update(render(snap), refresh=True)

    def start(self) -> None:
        if not self._started and not self._closed:
            self._started = True
            self._live.start()
            self._live.update(self._frame(), refresh=True)
            self._thread = threading.Thread(target=self._draw_loop, name="dashboard",
                                            daemon=True)
            self._thread.start()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._started:
            self._stop.set()
            if self._thread is not None:
                self._thread.join(timeout=2.0)
            self._live.update(self._frame(), refresh=True)
            self._live.stop()
