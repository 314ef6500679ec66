"""The exception tree of wirewatch.

Every error wirewatch raises on purpose derives from :class:`WirewatchError`; anything
else that escapes is a bug and is allowed to fail loudly.  Not-modified, duplicate and
no-match are *results*, never exceptions.

::

    WirewatchError
    ├── ConfigError                 the config file is unusable (carries every problem)
    ├── QueryError                  a rule query does not parse (column + suggestion)
    ├── SourceError                 one source could not be polled (carries url, kind)
    │   ├── FetchError              network, HTTP status, size, timeout, scheme
    │   └── ParseError              the body is not a feed we can read
    ├── StorageError                the database is unreachable or not migrated
    └── NotifyError                 a message could not be handed to a channel
"""

from __future__ import annotations

from dataclasses import dataclass


class WirewatchError(Exception):
    """Root of every error wirewatch raises deliberately."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem in a config file: where it is and what is wrong."""

    file: str
    where: str  # e.g. "rules.nk-russia-troops.query" or "sources[3] 'yonhap'.interval"
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.where}: {self.message}"


class ConfigError(WirewatchError):
    """The config is invalid; ``problems`` lists every problem found, not just the first."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class QueryError(WirewatchError):
    """A rule query failed to parse or names an unknown term.

    ``column`` is 1-based; ``suggestion`` is a ready-to-print hint or ``None``;
    ``clause`` names the clause the mistake is in, when it is in one the query uses
    (``column`` then points at that clause's name in the query).
    """

    def __init__(
        self, message: str, query: str, column: int, suggestion: str | None = None, clause: str | None = None
    ) -> None:
        self.message = message
        self.query = query
        self.column = column
        self.suggestion = suggestion
        self.clause = clause
        text = f"{message} at column {column}"
        if suggestion:
            text += f" ({suggestion})"
        super().__init__(text)

    def caret(self) -> str:
        """The query with a caret under the offending column, for terminals."""
        return f"{self.query}\n{' ' * (self.column - 1)}^"


class SourceError(WirewatchError):
    """One source could not be polled.  ``temporary`` says whether retrying may help."""

    kind = "source"

    def __init__(self, url: str, message: str, *, temporary: bool = True) -> None:
        self.url = url
        self.message = message
        self.temporary = temporary
        super().__init__(f"{url}: {message}")


class FetchError(SourceError):
    kind = "fetch"


class ParseError(SourceError):
    kind = "parse"


class StorageError(WirewatchError):
    """The database cannot be used (unreachable, not migrated)."""


class NotifyError(WirewatchError):
    """A message could not be handed to a notification channel."""
