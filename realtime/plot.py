"""Pictures of a mood timeline (PNG, SVG or PDF), for a mixer or editor to read at a glance.

Left: valence and arousal over time (silence shaded, the strongest mood changes marked)
above a ribbon of the mood at each moment, in the mood colours; right: the path on the
valence-arousal plane, its quadrants tinted in the same colours. matplotlib is imported
only here, and without pyplot (no GUI backend, no global state), so the live modes never
pay for it.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from realtime.errors import MoodtrackError
from realtime.mood import SILENCE
from realtime.summary import format_time, mood_changes, time_in_moods
from realtime.timeline import Timeline

#: matplotlib colours of the moods: the terminal's MOOD_COLOURS, as print-friendly hues.
PLOT_COLOURS = {"uplifting": "#e3a800", "tense": "#d62728", "melancholic": "#1f5fbf",
                "calm": "#2ca02c", SILENCE: "#9e9e9e"}
VALENCE_COLOUR, AROUSAL_COLOUR = "#111111", "#8e44ad"
#: Text colour on a mood's colour, where white would be hard to read.
_TEXT_ON = {"uplifting": "black", SILENCE: "black"}
#: File formats :func:`save_plot` writes, by extension.
PLOT_FORMATS = ("png", "svg", "pdf")
#: Quadrant corners of the V-A plane: mood -> (valence sign, arousal sign).
_CORNERS = {"uplifting": (1, 1), "tense": (-1, 1), "melancholic": (-1, -1), "calm": (1, -1)}


def plot_format(path: str | Path) -> str:
    """The format of an output path from its extension, or a MoodtrackError."""
    ext = Path(path).suffix.lower().lstrip(".")
    if ext not in PLOT_FORMATS:
        raise MoodtrackError(f"cannot write a plot to {path}: the extension must be one of "
                             + ", ".join(f".{f}" for f in PLOT_FORMATS))
    return ext


def figure(tl: Timeline, *, title: str | None = None):
    """The matplotlib Figure of a timeline (see the module docstring)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13.5, 5.6), dpi=110, layout="constrained")
    grid = fig.add_gridspec(2, 2, width_ratios=(2.6, 1), height_ratios=(5, 1))
    ax_va, ax_mood = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[1, 0])
    ax_plane = fig.add_subplot(grid[:, 1])
    fig.suptitle(title if title is not None else _title(tl), fontsize=13, x=0.01,
                 ha="left", fontweight="bold")
    if len(tl) == 0:
        for ax in (ax_va, ax_mood, ax_plane):
            ax.set_axis_off()
        ax_va.text(0.5, 0.5, "no mood updates: the audio is shorter than the model's context",
                   ha="center", va="center", transform=ax_va.transAxes, fontsize=12)
        return fig
    _time_axes(ax_va, ax_mood, tl)
    _plane(ax_plane, tl)
    return fig


def _title(tl: Timeline) -> str:
    times = time_in_moods(tl)
    total = sum(times.values()) or 1.0
    top = sorted(((s, m) for m, s in times.items() if s > 0), reverse=True)[:2]
    mostly = ", ".join(f"{m} {100 * s / total:.0f}%" for s, m in top)
    return f"{tl.name}  |  {format_time(tl.t[-1]) if len(tl) else '0:00'}  |  {mostly}"


def _time_axes(ax, ribbon, tl: Timeline) -> None:
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    end = float(tl.t[-1])
    starts = tl.t - tl.spans
    silent = tl.silence
    # Silence: shaded, and no line (valence/arousal only hold their last values there).
    for s, e in _runs(starts, tl.t, silent):
        ax.axvspan(s, e, color=PLOT_COLOURS[SILENCE], alpha=0.25, lw=0)
    v = np.where(silent, np.nan, tl.valence)
    a = np.where(silent, np.nan, tl.arousal)
    ax.axhline(0, color="#555555", lw=0.8)
    dots = "o" if len(tl) < 30 else None  # a few updates: show each one
    ax.plot(tl.t, v, color=VALENCE_COLOUR, lw=2.0, marker=dots, label="valence (+ positive)")
    ax.plot(tl.t, a, color=AROUSAL_COLOUR, lw=2.0, marker=dots, label="arousal (+ energetic)")
    for c in mood_changes(tl):
        ax.axvline(c["t"], color="#333333", lw=1.0, ls=(0, (4, 3)))
        ax.annotate(c["label"].replace("->", " \u2192 "), (c["t"], 1.0), xytext=(2, -3),
                    textcoords="offset points", rotation=90, va="top", ha="left",
                    fontsize=8.5, color="#222222",
                    bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none",
                          "alpha": 0.8})
    ax.set_xlim(0, end)
    ax.set_ylim(-1.05, 1.05)
    ax.set_yticks([-1, -0.5, 0, 0.5, 1])
    ax.grid(axis="y", color="#dddddd", lw=0.6)
    ax.set_ylabel("valence / arousal")
    ax.tick_params(labelbottom=False)
    handles = ax.get_legend_handles_labels()[0]
    if silent.any():
        handles.append(Patch(color=PLOT_COLOURS[SILENCE], alpha=0.35, label="silence"))
    ax.legend(handles=handles, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=3,
              fontsize=9.5, frameon=False, borderaxespad=0.2)
    # The ribbon: the mood of every update.
    for mood, colour in PLOT_COLOURS.items():
        sel = tl.mood == mood
        if sel.any():
            ribbon.broken_barh(list(zip(starts[sel], tl.spans[sel])), (0, 1), color=colour,
                               lw=0)
        for s, e in _runs(starts, tl.t, sel):  # named where it lasts long enough
            if e - s >= 0.07 * end:
                ribbon.text((s + e) / 2, 0.5, mood, ha="center", va="center", fontsize=10,
                            fontweight="bold", color=_TEXT_ON.get(mood, "white"))
    ribbon.set_xlim(0, end)
    ribbon.set_ylim(0, 1)
    ribbon.set_yticks([])
    ribbon.set_ylabel("mood", rotation=0, ha="right", va="center")
    if end >= 30:
        ribbon.xaxis.set_major_locator(MaxNLocator(nbins=12, steps=[1, 1.5, 2, 3, 5, 6, 10]))
        ribbon.xaxis.set_major_formatter(FuncFormatter(lambda x, _: format_time(x)))
        ribbon.set_xlabel("time (m:ss)")
    else:
        ribbon.set_xlabel("time (s)")
    for side in ("top", "right", "left"):
        ribbon.spines[side].set_visible(False)


def _runs(starts, ends, mask):
    """(start, end) of the runs where ``mask`` holds."""
    out: list[list[float]] = []
    for s, e, m in zip(starts, ends, mask):
        if m:
            if out and abs(out[-1][1] - s) < 1e-9:
                out[-1][1] = e
            else:
                out.append([s, e])
    return out


def _plane(ax, tl: Timeline) -> None:
    from matplotlib.collections import LineCollection

    for mood, (sv, sa) in _CORNERS.items():
        ax.fill_between([0, sv * 1.1], 0, sa * 1.1, color=PLOT_COLOURS[mood], alpha=0.16, lw=0)
        ax.text(sv * 1.07, sa * 1.07, mood, ha="right" if sv > 0 else "left",
                va="top" if sa > 0 else "bottom", color=PLOT_COLOURS[mood], fontsize=11,
                fontweight="bold", zorder=1.5,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.6})
    ax.axhline(0, color="#777777", lw=0.8)
    ax.axvline(0, color="#777777", lw=0.8)
    sound = ~tl.silence
    v, a, t = tl.valence[sound], tl.arousal[sound], tl.t[sound]
    if len(t):
        pts = np.c_[v, a]
        segs = np.stack([pts[:-1], pts[1:]], axis=1)
        frac = (t[1:] - t[0]) / max(t[-1] - t[0], 1e-9)
        lc = LineCollection(segs, colors=[(0.0, 0.0, 0.0, 0.25 + 0.75 * f) for f in frac],
                            linewidths=1.6, capstyle="round", zorder=2.5)
        ax.add_collection(lc)
        ax.plot(v[0], a[0], "o", ms=9, mfc="white", mec="black", mew=1.5, zorder=3)
        ax.plot(v[-1], a[-1], "o", ms=9, color="black", zorder=3)
    ax.set_xlim(-1.1, 1.1)
    ax.set_ylim(-1.1, 1.1)
    ax.set_aspect("equal")
    ax.set_xticks([-1, 0, 1])
    ax.set_yticks([-1, 0, 1])
    ax.set_xlabel("valence  (negative \u2190 \u2192 positive)")
    ax.set_ylabel("arousal  (calm \u2190 \u2192 energetic)")
    ax.set_title("path: \u25cb start \u2192 \u25cf end (faint = early)", fontsize=10,
                 color="#333333")


def plot_bytes(tl: Timeline, fmt: str = "png", *, title: str | None = None) -> bytes:
    """The picture of a timeline as ``fmt`` (one of :data:`PLOT_FORMATS`) bytes."""
    if fmt not in PLOT_FORMATS:
        raise MoodtrackError(f"unknown plot format {fmt!r}: use one of {', '.join(PLOT_FORMATS)}")
    buf = io.BytesIO()
    figure(tl, title=title).savefig(buf, format=fmt, metadata=_metadata(fmt))
    return buf.getvalue()


def _metadata(fmt: str) -> dict:
    """No creation date, so the same timeline gives the same file."""
    return {"png": {}, "svg": {"Date": None}, "pdf": {"CreationDate": None}}[fmt]


def save_plot(tl: Timeline, path: str | Path, *, title: str | None = None,
              overwrite: bool = True) -> Path:
    """Write the picture of a timeline to ``path`` (format from its extension), whole or
    not at all; an existing file is replaced only with ``overwrite``."""
    from realtime.outputs import atomic_write

    path = Path(path)
    fmt = plot_format(path)
    if not overwrite and os.path.lexists(path):
        raise MoodtrackError(f"the plot {path} exists already: choose another -o IMAGE, or pass "
                             "--overwrite to replace it")
    data = plot_bytes(tl, fmt, title=title)
    try:
        atomic_write(path, data)
    except OSError as exc:
        raise MoodtrackError(f"cannot write the plot {path}: {exc.strerror or exc}") from None
    return path

