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
from dataclasses import dataclass

from monitor.config import Config, RuleConfig, console_secrets, load_config, subscriber_secrets
from monitor.core.rules import Matcher, make_matcher
from monitor.errors import ConfigError
from monitor.logs import register_secrets

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Runtime:
    config: Config
    matcher: Matcher
    rules: Mapping[str, RuleConfig]


def make_runtime(config: Config) -> Runtime:
    # Before anything can log a URL of this config (Apprise included), mask its secrets.
    register_secrets(subscriber_secrets(config, os.environ) | console_secrets(config, os.environ))
    matcher = make_matcher(config.terms, [(r.name, r.query) for r in config.rules])
    return Runtime(config=config, matcher=matcher, rules={r.name: r for r in config.rules})


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
            self._runtime = make_runtime(config)
            return None
