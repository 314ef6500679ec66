"""Operating sources: their health as one row each, and the operator's enable/disable.

Responsible for what ``wirewatch sources`` and the console's Sources page both show and
do, so the two never disagree: a source's status (ok, failing, new, disabled, removed),
its item count, due time and the database override, and the rule that an override is
kept only where it differs from the config.  It must not poll, render or print.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from monitor.config import Config, SourceConfig
from monitor.core.units import format_duration
from monitor.store.sql import SourceState, SqlStore


def source_rows(store: SqlStore, config: Config | None) -> list[dict[str, Any]]:
    """One row per stored source (``wirewatch sources --json`` keys, plus ``_state``).

    ``config`` None (the file has errors) shows the database only: no source counts as removed.
    """
    counts = store.source_item_counts()
    configured = {s.name: s for s in config.sources} if config is not None else None
    rows: list[dict[str, Any]] = []
    for st in store.source_states():
        cfg = configured.get(st.name) if configured is not None else None
        config_enabled = cfg.enabled if cfg is not None else None
        enabled = st.enabled_override if st.enabled_override is not None else config_enabled
        if configured is not None and cfg is None:
            status = "removed"
        elif enabled is False:
            status = "disabled"
        elif st.last_polled is None:
            status = "new"
        elif st.consecutive_failures:
            status = "failing"
        else:
            status = "ok"
        override = None
        if st.enabled_override is not None:
            override = "enabled" if st.enabled_override else "disabled"
        rows.append(
            {
                "name": st.name,
                "type": st.type,
                "url": st.url,
                "status": status,
                "items": counts.get(st.name, 0),
                "last_success": _iso(st.last_success),
                "last_error": st.last_error,
                "error_class": st.error_class,
                "consecutive_failures": st.consecutive_failures,
                # Nothing is due for a source that is not polled.
                "next_due": _iso(st.next_due) if status not in ("disabled", "removed") else None,
                "poll_interval": format_duration(timedelta(seconds=st.poll_interval)) if st.poll_interval else None,
                "last_new_item": _iso(st.last_new_item),
                "last_warning": st.last_warning,
                "enabled": enabled,
                "override": override,  # set by `wirewatch sources enable|disable` or the console; beats the config
                "failing_since": _iso(st.failing_since),
                "_state": st,
            }
        )
    return rows


@dataclass(frozen=True, slots=True)
class EnableResult:
    enabled: bool
    override: bool | None  # what is stored; None: the config decides again
    note: str


def set_source_enabled(store: SqlStore, cfg: SourceConfig, enabled: bool) -> EnableResult:
    """Enable or disable a configured source by a database override.

    The override is kept only where it differs from the config: enabling a source the
    config enables clears it, so the config decides again.
    """
    override = None if enabled == cfg.enabled else enabled
    store.set_enabled_override(cfg.name, override)
    if override is None:
        note = "as the config says; database override cleared"
    else:
        note = f"database override; the config says enabled = {str(cfg.enabled).lower()}"
    return EnableResult(enabled=enabled, override=override, note=note)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


__all__ = ["EnableResult", "SourceState", "set_source_enabled", "source_rows"]
