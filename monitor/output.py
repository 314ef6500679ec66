"""The one output layer of the command line: tables, times, colour, JSON and closed pipes.

Responsible for how every command's results reach the terminal: aligned tables with
headers (rich), "(none)" for an empty result, times in the local zone (or UTC with
``--utc``) to the second, colour only on a terminal and never with ``NO_COLOR``, and the
one JSON document of ``--json``.  It must not query the database, know any command, or
decide exit codes (a closed pipe is turned into :class:`BrokenPipeError` by Python, and
``monitor.cli`` exits quietly on it).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

NONE = "(none)"
MISSING = "-"


@dataclass(frozen=True, slots=True)
class Column:
    header: str
    justify: str = "left"  # "left" | "right"
    # On a terminal, long cells are cut with an ellipsis so rows stay one line; in a
    # pipe nothing is cut (a script gets whole URLs and titles).
    max_width: int | None = None


def colour_wanted(stream: IO[str]) -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set (https://no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Output:
    """Where one command writes.  ``utc``: times in UTC instead of the local zone."""

    def __init__(self, *, utc: bool = False, stream: IO[str] | None = None) -> None:
        self.utc = utc
        self.stream = stream if stream is not None else sys.stdout
        self.colour = colour_wanted(self.stream)
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(isatty and isatty())

    # ------------------------------------------------------------------ values

    def time(self, value: datetime | None) -> str:
        """``2026-12-01 21:35:02`` in the local zone, or ``2026-12-01 12:35:02Z`` with --utc."""
        if value is None:
            return MISSING
        if value.tzinfo is None:  # stored times are UTC; never guess another zone
            value = value.replace(tzinfo=UTC)
        if self.utc:
            return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")

    # ------------------------------------------------------------------ writing

    def line(self, text: str = "", style: str | None = None) -> None:
        if style and self.colour:
            self._render(text, style=style)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def table(
        self,
        columns: Sequence[Column],
        rows: Sequence[Sequence[str]],
        *,
        styles: Sequence[str | None] | None = None,
    ) -> None:
        """An aligned table with a header row; ``(none)`` when there are no rows.

        ``styles``: one rich style per row (colour on a terminal only).
        """
        if not rows:
            self.line(NONE)
            return
        from rich import box
        from rich.table import Table

        table = Table(
            box=box.SIMPLE_HEAD if self.tty else None,
            show_edge=False,
            pad_edge=False,
            header_style="bold" if self.colour else "",
            show_lines=False,
        )
        for c in columns:
            table.add_column(
                c.header,
                justify="right" if c.justify == "right" else "left",
                no_wrap=True,
                overflow="ellipsis" if self.tty else "ignore",
                max_width=c.max_width if self.tty else None,
            )
        for i, row in enumerate(rows):
            style = styles[i] if styles is not None and self.colour else None
            table.add_row(*row, style=style)
        self._render(table)

    def json(self, doc: dict[str, Any]) -> None:
        json.dump(doc, self.stream, ensure_ascii=False, indent=2, default=str)
        self.stream.write("\n")
        self.stream.flush()

    def _render(self, renderable: Any, style: str | None = None) -> None:
        from rich.console import Console

        buffer = io.StringIO()
        width = shutil.get_terminal_size((120, 24)).columns if self.tty else 100_000
        console = Console(
            file=buffer,
            width=width,
            force_terminal=self.colour,
            no_color=not self.colour,
            color_system="standard" if self.colour else None,
            highlight=False,
            markup=False,
            emoji=False,
            soft_wrap=not self.tty,
        )
        console.print(renderable, style=style)
        # rich pads every cell to its column's width: strip the padding at line ends so a
        # pipe gets clean lines (and `grep ' $'` finds nothing).
        self.lines(line.rstrip() for line in buffer.getvalue().splitlines())

    def lines(self, lines: Iterable[str]) -> None:
        """Line by line, so a reader that goes away (``| head``) is noticed at once."""
        for line in lines:
            self.stream.write(line + "\n")
        self.stream.flush()
