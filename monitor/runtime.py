"""Runtime: a loaded config together with what is compiled from it, swapped as one.

Responsible for holding the current good config and its compiled matcher, and for
reloading: a new file is loaded and compiled *before* it replaces the old one, so an
invalid edit leaves the running daemon on its last good config.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping

from monitor.config import Config, RuleConfig, console_secrets, load_config, subscriber_secrets
from monitor.core.rules import Matcher, make_matcher
from monitor.errors import ConfigError
from monitor.logs import register_secrets

log = logging.getLogger(__name__)


class Runtime:
    """A loaded config, its rules by name, and the matcher compiled from them.

    The matcher is compiled on first use (once, under a lock): compiling loads the
    analysers the rules' words need (pymorphy3's dictionaries for Russian, ~60 ms), which a
    command or a poll that matches nothing (``sources``, ``items``, a re-poll where every
    feed answers 304) never pays.  The queries were parsed, and any error in them reported,
    when the config was loaded; :meth:`RuntimeHolder.reload` compiles before it swaps.
    """

    __slots__ = ("_lock", "_matcher", "config", "rules")

    def __init__(self, config: Config) -> None:
        self.config = config
        self.rules: Mapping[str, RuleConfig] = {r.name: r for r in config.rules}
        self._matcher: Matcher | None = None
        self._lock = threading.Lock()

    @property
    def matcher(self) -> Matcher:
        matcher = self._matcher
        if matcher is None:
            with self._lock:
                if self._matcher is None:
                    self._matcher = make_matcher(
                        self.config.terms, [(r.name, r.query) for r in self.config.rules], self.config.clauses
                    )
                matcher = self._matcher
        return matcher

    def compile(self) -> Runtime:
        """Compile the matcher now rather than on first use; returns this runtime."""
        _ = self.matcher
        return self


def make_runtime(config: Config) -> Runtime:
    # Before anything can log a URL of this config (Apprise included), mask its secrets.
    register_secrets(subscriber_secrets(config, os.environ) | console_secrets(config, os.environ))
    return Runtime(config)


class RuntimeHolder:
    """The current :class:`Runtime`; readers call :meth:`get`, the daemon calls :meth:`reload`."""

    def __init__(self, runtime: Runtime, path: str | None = None, database_url: str | None = None) -> None:
        self._runtime = runtime
        self._lock = threading.Lock()
        self.path = path
        self.database_url = database_url
        self._mtime = self._stat()

    def get(self) -> Runtime:
        return self._runtime

    def _stat(self) -> float | None:
        try:
            return os.stat(self.path).st_mtime if self.path else None
        except OSError:
            return None

    def changed_on_disk(self) -> bool:
        return self._stat() != self._mtime

    def reload(self) -> ConfigError | None:
        """Load the file again; on success swap, on failure keep the old one and return the error."""
        if self.path is None:
            return None
        with self._lock:
            self._mtime = self._stat()
            try:
                config = load_config(self.path)
            except ConfigError as exc:
                return exc
            # Compiled now, in the reloading thread, not by the first batch.
            self._runtime = make_runtime(config).compile()
            return None
