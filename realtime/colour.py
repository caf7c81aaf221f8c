"""Mood colour: an RGB colour for a point on the valence-arousal plane, for lights.

A palette gives one colour per quadrant, placed at the quadrant's diagonal (45°, 135°,
225°, 315° from the +valence axis), and a centre colour. A point's hue is interpolated
by angle between the two nearest quadrant colours, then mixed towards the centre colour
as the point nears the origin (distance 0 = centre colour, 1 or more = rim colour). With
``brightness="arousal"`` the colour is scaled from :data:`MIN_BRIGHTNESS` (arousal -1)
to 1 (arousal +1). Channels are floats in [0, 1].

:class:`MoodColour` adds exponential smoothing over audio time so lights drift rather
than flicker.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

RGB = tuple[float, float, float]

#: Brightness factor at arousal -1 with ``brightness="arousal"`` (1 at arousal +1).
MIN_BRIGHTNESS = 0.2
BRIGHTNESS_MODES = ("arousal", "fixed")


@dataclass(frozen=True)
class Palette:
    """Quadrant colours Q1..Q4 (uplifting, tense, melancholic, calm) and a centre colour."""

    q1: RGB
    q2: RGB
    q3: RGB
    q4: RGB
    centre: RGB
    description: str = ""


def _hex(code: str) -> RGB:
    return tuple(int(code[i:i + 2], 16) / 255.0 for i in (1, 3, 5))  # type: ignore[return-value]


#: Named palettes; ``colorblind`` uses Okabe & Ito's colour-blind-safe set.
PALETTES: dict[str, Palette] = {
    "default": Palette(_hex("#ffc21a"), _hex("#ff1a0d"), _hex("#2640ff"), _hex("#1ad973"),
                       _hex("#fff2d9"), "amber uplifting, red tense, blue melancholic, "
                                        "green calm, warm white centre"),
    "colorblind": Palette(_hex("#f0e442"), _hex("#d55e00"), _hex("#0072b2"), _hex("#009e73"),
                          _hex("#cccccc"), "Okabe-Ito: yellow, vermillion, blue, bluish green; "
                                           "safe for red-green colour blindness"),
    "mono": Palette((1.0, 1.0, 1.0), (1.0, 1.0, 1.0), (1.0, 1.0, 1.0), (1.0, 1.0, 1.0),
                    (1.0, 1.0, 1.0), "white everywhere: a dimmer driven by arousal"),
}


def _mix(a: RGB, b: RGB, f: float) -> RGB:
    return tuple(x + (y - x) * f for x, y in zip(a, b))  # type: ignore[return-value]


def mood_rgb(valence: float, arousal: float, *, palette: str = "default",
             brightness: str = "arousal") -> RGB:
    """The palette colour of the point (``valence``, ``arousal``), both in [-1, 1];
    channels in [0, 1]."""
    pal = PALETTES[palette]
    v = max(-1.0, min(1.0, float(valence)))
    a = max(-1.0, min(1.0, float(arousal)))
    anchors = (pal.q1, pal.q2, pal.q3, pal.q4)
    # Angle measured from Q1's diagonal, in quarter turns: 0 = Q1, 1 = Q2, ...
    turns = ((math.atan2(a, v) - math.pi / 4) / (math.pi / 2)) % 4.0
    k = int(turns) % 4
    rim = _mix(anchors[k], anchors[(k + 1) % 4], turns - int(turns))
    rgb = _mix(pal.centre, rim, min(1.0, math.hypot(v, a)))
    if brightness == "arousal":
        scale = MIN_BRIGHTNESS + (1.0 - MIN_BRIGHTNESS) * (a + 1.0) / 2.0
        rgb = tuple(c * scale for c in rgb)  # type: ignore[assignment]
    elif brightness != "fixed":
        raise ValueError(f"brightness must be one of {BRIGHTNESS_MODES}, not {brightness!r}")
    return tuple(max(0.0, min(1.0, c)) for c in rgb)  # type: ignore[return-value]


def to_hex(rgb: RGB) -> str:
    """``#rrggbb`` of channels in [0, 1]."""
    return "#" + "".join(f"{round(max(0.0, min(1.0, c)) * 255):02x}" for c in rgb)


class MoodColour:
    """Colours for successive updates, smoothed over audio time.

    ``smoothing_s``: exponential time constant in seconds applied to the valence-arousal
    point before it is coloured (0 = off); the state restarts when audio time goes back.
    """

    def __init__(self, *, palette: str = "default", brightness: str = "arousal",
                 smoothing_s: float = 0.0):
        if palette not in PALETTES:
            raise ValueError(f"palette must be one of {', '.join(PALETTES)}, not {palette!r}")
        if brightness not in BRIGHTNESS_MODES:
            raise ValueError(f"brightness must be one of {BRIGHTNESS_MODES}, not {brightness!r}")
        if not smoothing_s >= 0:
            raise ValueError("smoothing_s must be >= 0")
        self.palette, self.brightness, self.smoothing_s = palette, brightness, float(smoothing_s)
        self._point: tuple[float, float] | None = None
        self._t: float | None = None

    def update(self, t: float, valence: float, arousal: float) -> RGB:
        """The colour at audio time ``t`` seconds for the point (``valence``, ``arousal``)."""
        if self._point is None or self._t is None or t < self._t or self.smoothing_s == 0:
            self._point = (float(valence), float(arousal))
        else:
            alpha = 1.0 - math.exp(-(t - self._t) / self.smoothing_s)
            pv, pa = self._point
            self._point = (pv + alpha * (valence - pv), pa + alpha * (arousal - pa))
        self._t = t
        return mood_rgb(*self._point, palette=self.palette, brightness=self.brightness)
