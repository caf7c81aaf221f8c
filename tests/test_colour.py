"""Mood colour: palettes, brightness, smoothing."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from realtime.colour import MIN_BRIGHTNESS, PALETTES, MoodColour, mood_rgb, to_hex

unit = st.floats(-1.0, 1.0)


@pytest.mark.parametrize("palette", list(PALETTES))
def test_quadrant_diagonals_give_the_palette_colours(palette):
    pal = PALETTES[palette]
    d = 1 / math.sqrt(2)  # on the unit circle: the pure rim colour
    for (v, a), want in {(d, d): pal.q1, (-d, d): pal.q2, (-d, -d): pal.q3,
                         (d, -d): pal.q4}.items():
        assert mood_rgb(v, a, palette=palette, brightness="fixed") == pytest.approx(want, abs=1e-9)
    assert mood_rgb(0, 0, palette=palette, brightness="fixed") == pytest.approx(pal.centre)


def test_default_palette_matches_the_mood_names():
    r, g, b = mood_rgb(-0.7, 0.7, brightness="fixed")   # tense: red
    assert r > 0.9 and g < 0.2 and b < 0.2
    r, g, b = mood_rgb(-0.7, -0.7, brightness="fixed")  # melancholic: blue
    assert b > 0.9 and r < 0.3
    r, g, b = mood_rgb(0.7, -0.7, brightness="fixed")   # calm: green
    assert g > r and g > b


@given(unit, unit, st.sampled_from(list(PALETTES)), st.sampled_from(["arousal", "fixed"]))
def test_channels_in_unit_range(v, a, palette, brightness):
    rgb = mood_rgb(v, a, palette=palette, brightness=brightness)
    assert len(rgb) == 3 and all(0.0 <= c <= 1.0 for c in rgb)


@given(unit, unit)
def test_colour_is_continuous(v, a):
    """A small move on the plane is a small change of colour (no jump at any angle)."""
    eps = 1e-3
    c0 = mood_rgb(v, a, brightness="fixed")
    c1 = mood_rgb(max(-1, min(1, v + eps)), max(-1, min(1, a - eps)), brightness="fixed")
    assert max(abs(x - y) for x, y in zip(c0, c1)) < 0.02


def test_brightness_follows_arousal():
    lo = mood_rgb(0.0, -1.0, palette="mono")
    mid = mood_rgb(0.0, 0.0, palette="mono")
    hi = mood_rgb(0.0, 1.0, palette="mono")
    assert lo == pytest.approx((MIN_BRIGHTNESS,) * 3)
    assert hi == pytest.approx((1.0,) * 3)
    assert lo[0] < mid[0] < hi[0]
    assert mood_rgb(0.0, -1.0, palette="mono", brightness="fixed") == pytest.approx((1.0,) * 3)


def test_colorblind_palette_quadrants_differ_in_lightness():
    """Okabe-Ito colours: neighbouring quadrants differ in luminance, not only in hue."""
    def luma(rgb):
        return 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]

    p = PALETTES["colorblind"]
    assert abs(luma(p.q1) - luma(p.q2)) > 0.3 and abs(luma(p.q3) - luma(p.q4)) > 0.05
    assert to_hex(p.q3) == "#0072b2"


def test_to_hex():
    assert to_hex((1.0, 0.0, 0.5)) == "#ff0080"
    assert to_hex((2.0, -1.0, 0.0)) == "#ff0000"


def test_unknown_palette_or_brightness():
    with pytest.raises(ValueError, match="palette"):
        MoodColour(palette="neon")
    with pytest.raises(ValueError, match="brightness"):
        MoodColour(brightness="loud")


def test_smoothing_time_constant_in_seconds():
    """A step from Q3 to Q1 gets 1 - 1/e of the way after one time constant."""
    col = MoodColour(palette="mono", smoothing_s=2.0)
    col.update(0.0, 0.0, -1.0)
    for k in range(1, 21):  # 10 updates a second for 2 s
        out = col.update(k * 0.1, 0.0, 1.0)
    # arousal went -1 -> 1 - 2/e; brightness maps arousal linearly
    a = -1 + 2 * (1 - math.exp(-1))
    assert out[0] == pytest.approx(MIN_BRIGHTNESS + (1 - MIN_BRIGHTNESS) * (a + 1) / 2, rel=1e-6)


def test_no_smoothing_and_restart_when_time_goes_back():
    raw = MoodColour(smoothing_s=0.0)
    raw.update(0.0, -1, -1)
    assert raw.update(0.5, 1, 1) == mood_rgb(1, 1)
    slow = MoodColour(smoothing_s=10.0)
    slow.update(5.0, -1, -1)
    assert slow.update(5.5, 1, 1) != pytest.approx(mood_rgb(1, 1))
    assert slow.update(0.0, 1, 1) == mood_rgb(1, 1)  # a new input: no smoothing across it
