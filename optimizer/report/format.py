"""Numbers as people read them: sizes in B/KB/MB, latencies in µs/ms/s, percentages, points, ratios and p-values,
each unit chosen by magnitude; a missing value (None or NaN) is an empty string, never "None" or "nan".

A kilobyte is 1024 bytes here, as in the Compare page's size budget ("Max file size (KB)").
"""

from __future__ import annotations

import math

KB = 1024
# (unit, bytes in one unit), smallest first: a size is shown in the largest unit it reaches.
BYTE_UNITS: tuple[tuple[str, float], ...] = (("B", 1), ("KB", KB), ("MB", KB**2), ("GB", KB**3))
# (unit, milliseconds in one unit), smallest first.
LATENCY_UNITS: tuple[tuple[str, float], ...] = (("µs", 1e-3), ("ms", 1.0), ("s", 1e3))


def number_or_none(value: object) -> float | None:
    """``value`` as a float, or None for None, NaN, booleans and non-numbers (what the formatters treat as
    missing)."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _unit(value: float, units: tuple[tuple[str, float], ...]) -> tuple[str, float]:
    """The largest unit that ``value`` reaches (at least one of it), or the smallest unit."""
    chosen = units[0]
    for unit in units:
        if abs(value) >= unit[1]:
            chosen = unit
    return chosen


def byte_unit(largest_bytes: float | None) -> tuple[str, float]:
    """The unit to show sizes up to ``largest_bytes`` in, and its size in bytes: ``("KB", 1024)``."""
    return _unit(largest_bytes or 0.0, BYTE_UNITS)


def latency_unit(largest_ms: float | None) -> tuple[str, float]:
    """The unit to show latencies up to ``largest_ms`` in, and its length in ms: ``("µs", 0.001)``."""
    return _unit(largest_ms or 0.0, LATENCY_UNITS) if largest_ms else ("ms", 1.0)


def _short(value: float) -> str:
    """One decimal below 10, none from 10 up: "1.7", "48", "812"."""
    return f"{value:.1f}" if abs(value) < 10 else f"{value:.0f}"


def format_bytes(size: object) -> str:
    """"512 B", "812 KB", "1.7 MB"; "" when missing."""
    number = number_or_none(size)
    if number is None:
        return ""
    if not math.isfinite(number):
        return "∞"
    unit, scale = byte_unit(number)
    return f"{number:.0f} B" if unit == "B" else f"{_short(number / scale)} {unit}"


def format_latency(ms: object) -> str:
    """A latency given in milliseconds: "48 µs", "3.2 ms", "1.5 s"; "" when missing."""
    number = number_or_none(ms)
    if number is None:
        return ""
    if not math.isfinite(number):
        return "∞"
    unit, scale = _unit(number, LATENCY_UNITS)
    return f"{_short(number / scale)} {unit}"


def format_percent(fraction: object, digits: int = 1) -> str:
    """A fraction as a percentage: 0.9694 -> "96.9%"; "" when missing."""
    number = number_or_none(fraction)
    return "" if number is None else f"{100 * number:.{digits}f}%"


def format_points(delta: object, digits: int = 1) -> str:
    """A change of a fraction in percentage points, always signed: 0.003 -> "+0.3 pts", -0.0044 -> "-0.4 pts";
    "" when missing."""
    number = number_or_none(delta)
    if number is None:
        return ""
    points = round(100 * number, digits) + 0.0  # + 0.0 turns -0.0 into 0.0
    sign = "+" if points > 0 else ""
    return f"{sign}{points:.{digits}f} pts"


def format_ratio(ratio: object) -> str:
    """A factor: 3.64 -> "3.6×", 12.4 -> "12×"; "" when missing."""
    number = number_or_none(ratio)
    if number is None:
        return ""
    return "∞×" if not math.isfinite(number) else f"{_short(number)}×"


def format_p(p_value: object) -> str:
    """A p-value: "p=1.00", "p=0.031", "p=0.004", "p<0.001"; "" when missing."""
    number = number_or_none(p_value)
    if number is None:
        return ""
    if number < 0.001:
        return "p<0.001"
    return f"p={number:.3f}" if number < 0.1 else f"p={number:.2f}"


def format_number(value: object, digits: int = 3) -> str:
    """Any other figure with ``digits`` significant digits: 0.12345 -> "0.123", 12345.6 -> "12,346" (whole
    numbers from 10**digits up); "" when missing."""
    number = number_or_none(value)
    if number is None:
        return ""
    return f"{number:,.0f}" if math.isfinite(number) and abs(number) >= 10**digits else f"{number:.{digits}g}"


def round_significant(value: object, digits: int = 3) -> float | None:
    """``value`` rounded to ``digits`` significant digits (what a table cell shows); None when missing."""
    number = number_or_none(value)
    if number is None or number == 0 or not math.isfinite(number):
        return number
    return round(number, digits - 1 - math.floor(math.log10(abs(number))))
