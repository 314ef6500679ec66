"""Charts drawn on the server as SVG: stacked bars per day, and a sparkline per rule.

Responsible for turning ``(day, key, count)`` rows into small inline SVG documents that
need no script and no network (the console works offline, under a CSP without inline
script).  Every label is escaped here: source and rule names come from the config, but
nothing is trusted.  Pure: no I/O; the days to draw are passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from html import escape

from markupsafe import Markup

# A colour-blind-safe palette (Okabe-Ito), then grey for "other".
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
OTHER = "#999999"
MAX_SERIES = len(PALETTE)


def last_days(today: date, n: int) -> list[str]:
    return [(today - timedelta(days=n - 1 - i)).isoformat() for i in range(n)]


def series(rows: Sequence[tuple[str, str, int]], days: Sequence[str]) -> dict[str, list[int]]:
    """``key → counts per day`` (in ``days`` order); the biggest keys first, the rest as "other"."""
    index = {d: i for i, d in enumerate(days)}
    out: dict[str, list[int]] = {}
    for day, key, n in rows:
        if day in index:
            out.setdefault(key, [0] * len(days))[index[day]] += n
    ranked = sorted(out, key=lambda k: (-sum(out[k]), k))
    if len(ranked) <= MAX_SERIES:
        return {k: out[k] for k in ranked}
    kept = {k: out[k] for k in ranked[: MAX_SERIES - 1]}
    other = [0] * len(days)
    for k in ranked[MAX_SERIES - 1 :]:
        other = [a + b for a, b in zip(other, out[k], strict=True)]
    kept["other"] = other
    return kept


def stacked_bars(title: str, data: dict[str, list[int]], days: Sequence[str], width: int = 640) -> Markup:
    """A stacked bar per day with a legend; an accessible title and per-bar tooltips."""
    height, top, bottom, left = 180, 10, 30, 36
    plot_h = height - top - bottom
    n = max(len(days), 1)
    totals = [sum(v[i] for v in data.values()) for i in range(len(days))]
    peak = max([*totals, 1])
    slot = (width - left - 10) / n
    bar = max(slot * 0.7, 1.0)
    parts = [
        (
            f'<svg class="chart" role="img" viewBox="0 0 {width} {height + 22 * ((len(data) + 3) // 4)}" '
            f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
        ),
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" stroke="#888"/>',
        f'<text x="{left - 4}" y="{top + 8}" text-anchor="end" class="axis">{peak}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end" class="axis">0</text>',
    ]
    colours = {k: (OTHER if k == "other" else PALETTE[i % len(PALETTE)]) for i, k in enumerate(data)}
    for i, day in enumerate(days):
        x = left + i * slot + (slot - bar) / 2
        y: float = top + plot_h
        for key, values in data.items():
            v = values[i]
            if not v:
                continue
            h = plot_h * v / peak
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{colours[key]}">'
                f"<title>{escape(day)} {escape(key)}: {v}</title></rect>"
            )
        if n <= 16 or i % max(n // 8, 1) == 0:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{top + plot_h + 14}" text-anchor="middle" class="axis">'
                f"{escape(day[5:])}</text>"
            )
    for j, key in enumerate(data):
        lx = left + (j % 4) * ((width - left) / 4)
        ly = height + 22 * (j // 4) + 4
        parts.append(f'<rect x="{lx:.1f}" y="{ly}" width="12" height="12" fill="{colours[key]}"/>')
        parts.append(f'<text x="{lx + 16:.1f}" y="{ly + 11}" class="legend">{escape(key)} ({sum(data[key])})</text>')
    if not data:
        parts.append(f'<text x="{width / 2}" y="{top + plot_h / 2}" text-anchor="middle" class="axis">no data</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above


def sparkline(values: Sequence[int], label: str, width: int = 160, height: int = 28) -> Markup:
    """A small line of counts per day, for a table cell."""
    peak = max([*values, 1])
    n = max(len(values) - 1, 1)
    points = " ".join(f"{i * width / n:.1f},{height - 2 - (height - 4) * v / peak:.1f}" for i, v in enumerate(values))
    return Markup(  # noqa: S704 - the label is escaped, the rest are numbers
        f'<svg class="spark" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}</title>'
        f'<polyline fill="none" stroke="#0072B2" stroke-width="1.5" points="{points}"/></svg>'
    )
