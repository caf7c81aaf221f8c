"""Checks for values moodtrack did not choose itself (model metadata, sizes, counts), each
raising one :class:`MoodtrackError` that names where the value came from, the key, the
value and what is allowed -- before any work starts.

Small functions so that every loader (the ONNX mood model, the embedding models and heads
that replace it) checks its metadata the same way::

    rate = positive_int(meta, "sample_rate", where, lo=8000, hi=192000)
    scale = finite_floats(meta, "output_scale", where, n=2)
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from realtime.errors import MoodtrackError


def _bad(where: str, key: str, value, allowed: str) -> MoodtrackError:
    return MoodtrackError(f"{where}: metadata {key} = {value!r} is invalid: it must be {allowed}")


def _get(meta: Mapping, key: str, where: str):
    if key not in meta:
        raise MoodtrackError(f"{where} lacks metadata {key}")
    return meta[key]


def positive_int(meta: Mapping, key: str, where: str, *, lo: int = 1, hi: int) -> int:
    """``meta[key]`` as an integer in [lo, hi]."""
    value = _get(meta, key, where)
    try:
        n = int(str(value).strip())
    except ValueError:
        n = None
    if n is None or not lo <= n <= hi:
        raise _bad(where, key, value, f"an integer in [{lo}, {hi}]")
    return n


def positive_float(meta: Mapping, key: str, where: str, *, lo: float = 0.0,
                   hi: float) -> float:
    """``meta[key]`` as a finite number in (lo, hi]."""
    value = _get(meta, key, where)
    try:
        x = float(str(value).strip())
    except ValueError:
        x = math.nan
    if not (math.isfinite(x) and lo < x <= hi):
        raise _bad(where, key, value, f"a number in ({lo:g}, {hi:g}]")
    return x


def finite_floats(meta: Mapping, key: str, where: str, *, n: int,
                  positive: bool = False) -> tuple[float, ...]:
    """``meta[key]``, ``n`` comma-separated finite numbers (> 0 with ``positive``)."""
    value = _get(meta, key, where)
    try:
        xs = tuple(float(x) for x in str(value).split(","))
    except ValueError:
        xs = ()
    if len(xs) != n or not all(math.isfinite(x) and (x > 0 or not positive) for x in xs):
        raise _bad(where, key, value, f"{n} comma-separated finite"
                                      f"{' positive' if positive else ''} numbers")
    return xs


def all_finite(*values: float) -> bool:
    """Whether every value is a finite number."""
    return all(math.isfinite(v) for v in values)
