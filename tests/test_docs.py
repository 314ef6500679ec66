"""Docs kept honest: every config key appears in config.toml, every command in README."""

from __future__ import annotations

import re
import tomllib

from monitor.cli import cli
from monitor.config import (
    AlertsConfig,
    ConsoleConfig,
    FetchConfig,
    RuleConfig,
    ServerConfig,
    SourceConfig,
    StorageConfig,
    SubscriberConfig,
)
from tests.conftest import ROOT


def test_every_config_key_appears_in_the_bundled_config() -> None:
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    doc = tomllib.loads(text)
    sections = {
        "storage": StorageConfig,
        "server": ServerConfig,
        "console": ConsoleConfig,
        "fetch": FetchConfig,
        "alerts": AlertsConfig,
    }
    for section, cls in sections.items():
        for key in cls.__dataclass_fields__:
            assert key in doc.get(section, {}), f"[{section}] {key} is not in config.toml"
    # Array tables: every key appears at least once, set or commented out with its default.
    for cls, table in ((SourceConfig, "sources"), (RuleConfig, "rules"), (SubscriberConfig, "subscribers")):
        for key in cls.__dataclass_fields__:
            present = any(key in entry for entry in doc.get(table, []))
            mentioned = re.search(rf"^\s*#?\s*{key}\s*=", text, re.MULTILINE) is not None
            assert present or mentioned, f"[[{table}]] {key} is not in config.toml"


def test_every_command_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name, command in cli.commands.items():
        assert f"`wirewatch {name}" in readme, f"command {name!r} is not documented in README.md"
        # Subcommands too (`sources poll`, `alerts retry`, `rules test`).
        for sub in getattr(command, "commands", {}):
            assert re.search(rf"`wirewatch {name}[^`]*\b{sub}\b", readme), f"`{name} {sub}` is not in README.md"
