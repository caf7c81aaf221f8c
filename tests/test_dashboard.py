"""Dashboard: frames rendered from snapshots, and the live sink's threading."""

from __future__ import annotations

import io
import time

import pytest
from rich.console import Console

from realtime.dashboard import SPARK, TRAIL, Dashboard, Snapshot, big_text, plane_size, render
from realtime.stats import PipelineStats
from tests.test_sinks import make_update


def text_of(snapshot: Snapshot) -> list[str]:
    console = Console(record=True, width=snapshot.width, height=snapshot.height,
                      file=io.StringIO(), color_system="truecolor")
    console.print(render(snapshot))
    return console.export_text().splitlines()


def stats_dict(**kw) -> dict:
    s = PipelineStats(device="Scarlett 2i2", sample_rate=48000, channels=2, model="va-1", **kw)
    return s.to_dict()


def snap(history, *, width=100, height=30, history_s=180.0, **stats) -> Snapshot:
    return Snapshot(tuple(history), stats_dict(**stats), width, height, history_s)


def marker(lines: list[str]) -> tuple[int, int]:
    hits = [(r, c) for r, line in enumerate(lines) for c, ch in enumerate(line) if ch in "●○"]
    assert len(hits) == 1
    return hits[0]


def test_mood_numbers_and_counters_shown():
    lines = text_of(snap([make_update(i) for i in range(5)], overflows=7, dropped_blocks=3,
                         zmq_dropped=5, latency_ms=12.3))
    text = "\n".join(lines)
    for needle in ("Q2 tense", "valence -0.42", "arousal +0.61", "73%", "Scarlett 2i2", "48000 Hz",
                   "va-1", "latency 12.3 ms", "overflows 7", "drops 3", "zmq drops 5",
                   "-23.1 dBFS", "input ok", "t 2.0 s"):
        assert needle in text, needle
    assert "INPUT" not in text


@pytest.mark.parametrize("mood_update,plain", [
    (make_update(valence=-0.5, arousal=-0.5), "M E L A N C H O L I C"),  # too wide for big font
    (make_update(valence=0.5, arousal=-0.5), None),
])
def test_mood_name_big_or_spelled(mood_update, plain):
    text = "\n".join(text_of(snap([mood_update])))
    if plain:
        assert plain in text
    else:
        assert big_text(mood_update.mood)[0] in text


def test_marker_moves_with_valence_and_arousal():
    cols, rows = plane_size(100, 30)
    positions = {}
    for v, a in ((-1, 1), (1, 1), (-1, -1), (1, -1), (0.5, 0.0), (-0.5, 0.0)):
        positions[v, a] = marker(text_of(snap([make_update(valence=v, arousal=a)])))
    (r0, c0) = positions[-1, 1]                  # top-left corner cell of the grid
    assert positions[1, 1] == (r0, c0 + cols - 1)
    assert positions[-1, -1] == (r0 + rows - 1, c0)
    assert positions[1, -1] == (r0 + rows - 1, c0 + cols - 1)
    assert positions[0.5, 0.0][0] == positions[-0.5, 0.0][0] == r0 + rows // 2
    assert positions[0.5, 0.0][1] - c0 == round(0.75 * (cols - 1))
    assert positions[-0.5, 0.0][1] - c0 == round(0.25 * (cols - 1))


def test_trail_is_bounded_and_silence_has_hollow_marker():
    history = [make_update(i, valence=-1 + i / 50, arousal=-1 + i / 50) for i in range(100)]
    lines = text_of(snap(history))
    plane = [line[: plane_size(100, 30)[0] + 2] for line in lines]
    assert 1 <= sum(line.count("•") + line.count("·") for line in plane) <= TRAIL
    assert marker(lines)
    silent = text_of(snap(history[:-1] + [make_update(100, silence=True, level_db=-80)]))
    assert any("○" in line for line in silent) and not any("●" in line for line in silent)
    assert any("silent" in line for line in silent)


def spark_line(lines: list[str], label: str, width: int = 100, height: int = 30) -> str:
    """The sparkline characters after ``label`` in the right-hand column."""
    info = [line[plane_size(width, height)[0] + 3:] for line in lines]
    (spark,) = [rest[len(label):] for rest in info if rest.startswith(label + " ")
                and any(ch in SPARK for ch in rest)]
    return "".join(ch for ch in spark if ch in SPARK)


def test_sparklines_fixed_scale_and_bounded_length():
    def sparks(valence):
        # 1000 s of updates at 10 Hz; only the last history_s seconds are shown.
        history = [make_update(i, t=i / 10, valence=valence, arousal=-valence) for i in range(10_000)]
        return text_of(snap(history, history_s=60.0))

    top, bottom, middle = sparks(1.0), sparks(-1.0), sparks(0.0)
    width = len(spark_line(top, "valence"))
    assert 10 <= width <= 100
    assert spark_line(top, "valence") == "█" * width and spark_line(top, "arousal") == "▁" * width
    assert spark_line(bottom, "valence") == "▁" * width
    assert set(spark_line(middle, "valence")) == {SPARK[round(0.5 * (len(SPARK) - 1))]}
    # A short history fills only the right-hand end: fixed time scale, not stretched.
    short = text_of(snap([make_update(i, t=i / 10) for i in range(100)], history_s=60.0))
    assert 0 < len(spark_line(short, "valence")) < width // 2


def test_input_state_shown_prominently():
    text = "\n".join(text_of(snap([make_update()], input_state="stalled")))
    assert "INPUT STALLED" in text
    text = "\n".join(text_of(snap([], input_state="lost")))
    assert "INPUT LOST" in text and "waiting for audio" in text


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (100, 30)])
@pytest.mark.parametrize("state", ["ok", "stalled"])
def test_frame_fits_the_terminal(size, state):
    width, height = size
    history = [make_update(i, t=i / 10, valence=(i % 7) / 7 - 0.5, arousal=(i % 5) / 5 - 0.5,
                           silence=i % 50 == 0) for i in range(3000)]
    lines = text_of(snap(history, width=width, height=height, input_state=state, overflows=123456))
    assert len(lines) <= height - 1
    assert max(len(line.rstrip()) for line in lines) <= width
    assert sum("valence" in line for line in lines) >= 2  # plane axis label and sparkline


def test_level_meter():
    def meter(level_db):
        line = [line for line in text_of(snap([make_update(level_db=level_db)])) if "dBFS" in line]
        return line[0].split("input", 1)[1]

    assert "█" not in meter(-70.0) and "█" in meter(-30.0)
    assert meter(-30.0).count("█") < meter(-10.0).count("█")
    assert "─" not in meter(0.0)


def test_emit_keeps_history_s_and_restarts_when_time_goes_back():
    dash = Dashboard(PipelineStats(), history_s=10.0, console=Console(file=io.StringIO()))
    for i in range(200):
        dash.emit(make_update(i, t=i * 0.5))
    h = dash.snapshot().history
    assert h[-1].t == 99.5 and h[0].t >= 89.5 and len(h) == 21
    dash.emit(make_update(200, t=0.5))
    assert [u.seq for u in dash.snapshot().history] == [200]
    dash.close()


def test_live_dashboard_draws_and_emit_does_not_wait_for_rendering(monkeypatch):
    import realtime.dashboard as mod

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, height=30, color_system=None)
    stats = PipelineStats(device="Scarlett 2i2")
    dash = Dashboard(stats, refresh_hz=20, console=console)
    real_frame = mod.frame_lines

    def slow_frame(snapshot):
        time.sleep(0.2)
        return real_frame(snapshot)

    monkeypatch.setattr(mod, "frame_lines", slow_frame)
    dash.start()
    try:
        emit_s = 0.0
        t_end = time.monotonic() + 0.6          # spans a few slow renders
        i = 0
        while time.monotonic() < t_end:
            t0 = time.perf_counter()
            dash.emit(make_update(i, t=i / 10))
            emit_s = max(emit_s, time.perf_counter() - t0)
            i += 1
            time.sleep(0.001)
    finally:
        dash.close()
        dash.close()
    assert emit_s < 0.1  # a render takes over 0.2 s; no emit may wait for one
    assert "Scarlett 2i2" in out.getvalue() and "Q2 tense" in out.getvalue()


def test_mood_shares_over_the_history():
    history = ([make_update(i, valence=-0.5, arousal=0.5) for i in range(6)]
               + [make_update(6 + i, valence=0.5, arousal=-0.5) for i in range(3)]
               + [make_update(9, silence=True)])
    (line,) = [line for line in text_of(snap(history)) if "moods " in line]
    assert "tense 60%" in line and "calm 30%" in line and "silence 10%" in line
    assert line.index("tense") < line.index("calm") < line.index("silence")


def test_light_colour_swatch_in_its_colour():
    u = make_update(0)
    u.color = (1.0, 0.5, 0.0)
    console = Console(record=True, width=100, height=30, file=io.StringIO(),
                      color_system="truecolor")
    console.print(render(snap([u])))
    text = console.export_text(clear=False)
    assert "arousal +0.61  ██ #ff8000" in text
    assert "38;2;255;128;0m██" in console.export_text(styles=True)
    narrow = "\n".join(text_of(snap([u], width=60)))
    assert "██" in narrow  # the swatch stays when the hex code does not fit
    assert "#ff8000" not in "\n".join(text_of(snap([make_update(0)])))  # no colour: none


def test_redraws_only_when_what_is_shown_changes(monkeypatch):
    import realtime.dashboard as dash

    calls = []
    real = dash.frame_lines
    monkeypatch.setattr(dash, "frame_lines", lambda s: calls.append(s) or real(s))
    stats = PipelineStats(device="test")
    console = Console(file=io.StringIO(), force_terminal=True, width=100, height=30)
    d = Dashboard(stats, refresh_hz=50.0, console=console)
    d.start()
    try:
        time.sleep(0.3)
        idle = len(calls)
        stats.blocks += 100  # not shown: no redraw
        time.sleep(0.3)
        assert len(calls) - idle <= 1  # at most the uptime's second ticking over
        before = len(calls)
        d.emit(make_update(seq=0, t=1.0))
        time.sleep(0.2)
        assert len(calls) > before
    finally:
        d.close()
    assert idle <= 3  # 15 chances to redraw in 0.3 s at 50 Hz, nothing changed


# --- terminal output: the painter's escape codes, replayed on a minimal terminal ------

class Screen:
    """The few VT100 controls the painter uses (CR, LF, CSI n A/B, CSI K, CSI J, CSI m
    ignored), replayed on a grid, so a test sees what a terminal would show."""

    def __init__(self, width: int, height: int):
        self.width, self.height = width, height
        self.rows = [[" "] * width for _ in range(height)]
        self.r = self.c = 0

    def feed(self, data: str) -> None:
        import re

        for m in re.finditer(r"\x1b\[([\d;]*)([A-Za-z])|\x1b\[\?\d+[hl]|(.)", data, re.S):
            n, cmd, ch = m.group(1), m.group(2), m.group(3)
            if cmd == "A":
                self.r = max(0, self.r - int(n or 1))
            elif cmd == "B":
                self.r = min(self.height - 1, self.r + int(n or 1))
            elif cmd == "K":
                self.rows[self.r][self.c:] = [" "] * (self.width - self.c)
            elif cmd == "J":
                self.rows[self.r][self.c:] = [" "] * (self.width - self.c)
                for row in self.rows[self.r + 1:]:
                    row[:] = [" "] * self.width
            elif ch == "\r":
                self.c = 0
            elif ch == "\n":
                self.c = 0
                if self.r == self.height - 1:
                    self.rows = self.rows[1:] + [[" "] * self.width]
                else:
                    self.r += 1
            elif ch is not None and self.c < self.width:
                self.rows[self.r][self.c] = ch
                self.c += 1

    def text(self) -> list[str]:
        return ["".join(row).rstrip() for row in self.rows]


def frame_text(frame) -> list[str]:
    return ["".join(t for t, _ in line).rstrip() for line in frame]


def test_painter_rewrites_only_changed_lines_and_the_screen_shows_the_frame():
    from realtime.dashboard import AnsiPainter, frame_lines

    painter, screen = AnsiPainter("256"), Screen(100, 30)
    screen.feed("moodtrack: a line before the dashboard\n")
    history = [make_update(i, t=i / 2, valence=-0.9 + i / 30, arousal=0.3) for i in range(40)]
    first = frame_lines(snap(history[:39]))
    screen.feed(painter.paint(first))
    assert screen.text()[0] == "moodtrack: a line before the dashboard"
    assert screen.text()[1:1 + len(first)] == frame_text(first)
    second = frame_lines(snap(history))
    out = painter.paint(second)
    screen.feed(out)
    assert screen.text()[1:1 + len(second)] == frame_text(second)
    changed = sum(a != b for a, b in zip(frame_text(first), frame_text(second)))
    assert 0 < changed < len(second) // 2
    assert out.count("\x1b[K") == changed     # one rewrite per changed line, no more
    assert painter.paint(second) == ""       # nothing changed: nothing written
    # The input state banner adds a line: the whole frame is redrawn in place.
    third = frame_lines(snap(history, input_state="stalled"))
    screen.feed(painter.paint(third))
    assert screen.text()[1:1 + len(third)] == frame_text(third)
    assert screen.text()[0] == "moodtrack: a line before the dashboard"


def test_painter_styles_and_lines_printed_above_the_frame():
    from realtime.dashboard import AnsiPainter, frame_lines

    painter, screen = AnsiPainter("truecolor"), Screen(100, 30)
    u = make_update(0)
    u.color = (1.0, 0.5, 0.0)
    frame = frame_lines(snap([u]))
    out = painter.paint(frame)
    assert "\x1b[38;2;255;128;0m██\x1b[0m" in out and "\x1b[1;31mQ2 tense\x1b[0m" in out
    assert "\x1b" not in AnsiPainter(None).paint(frame)[3:]   # no colour: only cursor moves
    screen.feed(out)
    screen.feed(painter.above("a warning\nand another\n"))
    assert screen.text()[:2] == ["a warning", "and another"]
    assert screen.text()[2:2 + len(frame)] == frame_text(frame)


def test_extra_lines_appear_when_updates_carry_them():
    plain = text_of(snap([make_update(0)], width=80, height=24))
    u = make_update(0)
    u.speech, u.loudness_m, u.loudness_s = 0.34, -23.14, -22.0
    u.tags = {"instruments": [["strings", 0.8], ["piano", 0.35]], "genres": [["film", 0.7]]}
    later = make_update(1)      # tags come about once a second: the last ones stay shown
    later.speech, later.loudness_m, later.loudness_s = 0.34, -23.14, -22.0
    for size in ((80, 24), (120, 40)):
        lines = text_of(Snapshot((u, later), stats_dict(), *size, 180.0, "lufs"))
        text = "\n".join(lines)
        assert "speech" in text and "34%" in text
        (tags,) = [line for line in lines if "tags " in line]
        assert tags.index("strings 80%") < tags.index("piano 35%")
        assert size[0] < 100 or tags.index("piano 35%") < tags.index("· film 70%")
        assert "LUFS" in text and "-23.1" in text and "dBFS" not in text
        assert len(lines) <= size[1] - 1 and max(map(len, lines)) <= size[0]
        (share,) = [r for r, line in enumerate(lines) if "moods " in line]
        assert share < plane_size(*size)[1] + 1   # inside the plane's box
    assert "-22.0 LUFS" in "\n".join(text_of(Snapshot((u,), stats_dict(), 120, 40, 180.0, "lufs")))
    # dBFS by default, and with "lufs" when the update has no loudness
    assert "dBFS" in "\n".join(text_of(snap([u])))
    no_loudness = Snapshot((make_update(0),), stats_dict(), 80, 24, 180.0, "lufs")
    assert "dBFS" in "\n".join(text_of(no_loudness))
    assert not any(w in "\n".join(plain) for w in ("speech", "tags ", "LUFS"))


def test_sparkline_buckets_equal_a_scan_of_the_whole_history():
    from realtime.dashboard import spark_buckets

    import random

    rng = random.Random(3)
    for n, step, width, span in ((3600, 0.05, 42, 180.0), (100, 0.1, 91, 60.0), (7, 1.0, 10, 10.0),
                                 (500, 0.37, 13, 30.0)):
        t, history = 0.0, []
        for i in range(n):
            t += step * rng.choice((0, 1, 1, 3))   # repeats and gaps
            history.append(make_update(i, t=t))
        history = tuple(h for h in history if h.t >= t - span)
        scan = [None] * width
        for u in history:
            k = width - 1 - int((history[-1].t - u.t) / (span / width))
            if 0 <= k < width:
                scan[k] = u
        assert spark_buckets(history, width, span) == scan


def test_an_input_hint_is_shown_above_the_plane():
    hint = ("no signal: Scarlett 2i2 has delivered digital silence (below -90 dBFS) for 10 s: "
            "nothing plays into it; list inputs with 'moodtrack devices'")
    lines = text_of(snap([make_update(0)], width=200, input_hint=hint))
    assert lines[0].strip() == f"⚠ {hint}"
    narrow = text_of(snap([make_update(0)], width=80, input_hint=hint))  # wrapped, not cut
    assert " ".join(line.strip() for line in narrow[:2]) == f"⚠ {hint}"
    assert not any("no signal" in line for line in text_of(snap([make_update(0)], width=200)))
