"""Parse the human units of the config file: durations ("90s", "5m", "3d") and sizes ("10MB").

Pure functions; they raise ``ValueError`` with a message fit to show an operator.
"""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|kib|mib|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}


def parse_duration(text: str) -> timedelta:
    """``"5m"`` → 5 minutes.  Units: ms, s, m, h, d, w."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"not a duration: {text!r} (use e.g. '30s', '5m', '2h', '3d')")
    return timedelta(seconds=float(m.group(1)) * _DURATION_UNITS[m.group(2)])


def parse_size(text: str) -> int:
    """``"10MB"`` → 10,000,000 bytes.  Units: B, KB, MB, GB (decimal), KiB, MiB, GiB."""
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f"not a size: {text!r} (use e.g. '512KB', '10MB')")
    unit = (m.group(2) or "b").lower()
    return int(float(m.group(1)) * _SIZE_UNITS[unit])


def format_duration(delta: timedelta) -> str:
    """The inverse of :func:`parse_duration`, for display ("1h30m")."""
    seconds = int(delta.total_seconds())
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts)
