"""Operator notices: tell the subscribers in ``[alerts] operators`` that a source needs a human.

Responsible for sending one short message (a source failed N times in a row, or went
silent for far longer than its rhythm, or a config edit was rejected) straight through
the notifier, to every URL of every operator.  The message is rendered by the one
renderer, :func:`monitor.core.render.render_notice`: what it quotes (an error, a
server's redirect target) is escaped per channel and stripped of bidi controls.
It is deliberately not an outbox row: an operator notice concerns a
source, not an item, and losing one to a crash is acceptable because the condition is
also shown by ``wirewatch sources`` and noticed again on the next streak.  The caller
decides *when* (once per failure streak, once per silence); this module must not read
or write the database.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from monitor.config import Config
from monitor.core.render import render_notice
from monitor.notify.apprise import AppriseNotifier, UrlResult

log = logging.getLogger(__name__)


def notify_operators(
    config: Config,
    subject: str,
    text: str,
    notifier: AppriseNotifier | None = None,
    env: Mapping[str, str] | None = None,
) -> list[UrlResult]:
    """Send ``subject``/``text`` to every operator; never raises for a delivery failure."""
    sender = notifier or AppriseNotifier(timeout=config.alerts.send_timeout.total_seconds())
    message = render_notice(subject, text)
    results: list[UrlResult] = []
    for name in config.alerts.operators:
        sub = config.subscriber(name)
        if sub is None:
            continue
        urls, missing = sub.resolve_urls(os.environ if env is None else env)
        if missing:
            log.warning("operator %s: environment variables %s not set; those URLs skipped", name, ", ".join(missing))
        for result in sender.send(urls, message):
            results.append(result)
            if not result.ok:
                log.warning("operator notice to %s failed: %s", name, result.error)
    return results
