"""Who is told about a new matching item: the alert policy as a pure function.

Responsible for turning (new item, rules that fired, the source's situation, ``now``)
into alert decisions: one per rule and subscriber (the store folds them into one alert
per story and subscriber, naming every rule).  It applies ``alerts.first_poll``
(a new source's backlog is stored silently), ``alerts.max_age`` (old news does not
alert), and each rule's ``languages`` and ``sources`` filters.  It must not do I/O or
read a clock; delivery timing (digests, quiet hours, rate limits) is decided at
dispatch, not here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from monitor.core.models import RuleHit, picklable


class RuleLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def notify(self) -> tuple[str, ...]: ...
    @property
    def languages(self) -> tuple[str, ...]: ...
    @property
    def sources(self) -> tuple[str, ...]: ...
    @property
    def severity(self) -> str: ...


@picklable
@dataclass(frozen=True, slots=True)
class AlertDecision:
    rule: str
    subscriber: str
    severity: str


@picklable
@dataclass(frozen=True, slots=True)
class PollContext:
    """What the policy needs to know about the poll that produced the item."""

    source: str
    first_poll: bool  # the source had never been polled successfully before
    first_poll_mode: str  # "silent" | "alert"
    max_age: timedelta


def rule_applies(rule: RuleLike, source: str, language: str | None) -> bool:
    """A rule's ``sources`` and ``languages`` filters (empty means all)."""
    if rule.sources and source not in rule.sources:
        return False
    return not (rule.languages and (language or "") not in rule.languages)


def decide_alerts(
    hits: Sequence[RuleHit],
    rules: Mapping[str, RuleLike],
    ctx: PollContext,
    *,
    published: datetime | None,
    first_seen: datetime,
    now: datetime,
) -> list[AlertDecision]:
    """The alerts to enqueue for one new item; empty when policy holds them back.

    ``hits`` are already filtered by :func:`rule_applies`: a rule that does not apply to
    a source or language does not match there at all, so it is not stored either.
    """
    if ctx.first_poll and ctx.first_poll_mode == "silent":
        return []
    when = published or first_seen
    if now - when > ctx.max_age:
        return []
    out: list[AlertDecision] = []
    for hit in hits:
        rule = rules.get(hit.rule)
        if rule is None:
            continue
        out.extend(AlertDecision(rule.name, sub, rule.severity) for sub in dict.fromkeys(rule.notify))
    return out
