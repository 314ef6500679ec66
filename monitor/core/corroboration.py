"""Corroboration and surges as pure functions: how far a story has travelled, when a held
alert may go, when an update is owed, and when a rule's matches surge.

Responsible for the arithmetic only.  An *outlet* is a configured source (its name): two
feeds of one newspaper are two outlets if the operator configured them as two sources,
and one aggregator carrying ten papers is one outlet; the host of an item's link is not
used, because aggregators and syndication (one host per wire service) make hosts say
less about independent reporting than the operator's own list of sources does.  A
*language* is an item's language code.  A story's :class:`Reach` lists when each copy
joined, so "reported by 7 outlets in 3 languages (en, ru, ko)" and its timeline are
both read from it, as of any moment.  Every function takes ``now`` and plain data; this
module must not read a clock, the database or the network.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

# The trailing window a rule's hourly mean is taken over (7 days), and the chart's span.
SURGE_BASELINE = timedelta(days=7)
SURGE_CHART_HOURS = 48
HOUR = timedelta(hours=1)

# How a held alert was released (stored on the alert row).
CONFIRMED = "confirmed"
UNCONFIRMED = "unconfirmed"


@dataclass(frozen=True, slots=True)
class Join:
    """One copy of a story: the outlet that carried it, its language, when it was first seen."""

    outlet: str
    language: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class Reach:
    """A story's copies in the order they were seen."""

    joins: tuple[Join, ...] = ()

    @property
    def outlets(self) -> tuple[str, ...]:
        """Distinct outlets, in the order they first carried the story."""
        return tuple(dict.fromkeys(j.outlet for j in self.joins))

    @property
    def languages(self) -> tuple[str, ...]:
        """Distinct languages, in the order they first appeared."""
        return tuple(dict.fromkeys(j.language for j in self.joins if j.language))

    def as_of(self, moment: datetime) -> Reach:
        """The reach as it stood at ``moment`` (copies seen later left out)."""
        return Reach(tuple(j for j in self.joins if j.at <= moment))

    def firsts(self) -> tuple[TimelineEntry, ...]:
        """The copies that brought a new outlet or a new language, with the running counts."""
        out: list[TimelineEntry] = []
        outlets: set[str] = set()
        languages: set[str] = set()
        for j in self.joins:
            new_outlet = j.outlet not in outlets
            new_language = bool(j.language) and j.language not in languages
            outlets.add(j.outlet)
            if j.language:
                languages.add(j.language)
            if new_outlet or new_language:
                out.append(
                    TimelineEntry(j.at, j.outlet, j.language, new_outlet, new_language, len(outlets), len(languages))
                )
        return tuple(out)


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """A moment the story gained an outlet or a language (the story page and the alerts show these)."""

    at: datetime
    outlet: str
    language: str | None
    new_outlet: bool
    new_language: bool
    outlets: int  # outlets so far, this one included
    languages: int


def make_reach(members: Iterable[tuple[str, str | None, datetime]]) -> Reach:
    """``(outlet, language, first_seen)`` of a story's items, in any order."""
    return Reach(tuple(sorted((Join(o, lang, at) for o, lang, at in members), key=lambda j: j.at)))


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def reach_phrase(outlets: int, languages: Sequence[str]) -> str:
    """``"7 outlets in 3 languages (en, ru, ko)"``; languages in the order they appeared."""
    phrase = _count(max(outlets, 1), "outlet")
    if languages:
        phrase += f" in {_count(len(languages), 'language')} ({', '.join(languages)})"
    return phrase


# --------------------------------------------------------------------------- held alerts


@dataclass(frozen=True, slots=True)
class Requirement:
    """What a held alert waits for: at least this many outlets and languages, until ``deadline``."""

    min_outlets: int = 0
    min_languages: int = 0
    deadline: datetime | None = None

    @property
    def holds(self) -> bool:
        return self.min_outlets > 1 or self.min_languages > 1


def release(
    reqs: Sequence[Requirement], outlets: int, languages: int, deadline: datetime | None, now: datetime
) -> str | None:
    """Whether a held alert goes now: ``CONFIRMED`` when the story meets *any* of ``reqs``
    (the row carries every rule that fired; the first one satisfied lets the message go,
    naming them all), else ``UNCONFIRMED`` once ``deadline`` has passed, else ``None``.
    A rule that asks for nothing (or is gone from the config) is met at once."""
    if not reqs or any(outlets >= r.min_outlets and languages >= r.min_languages for r in reqs):
        return CONFIRMED
    if deadline is not None and now >= deadline:
        return UNCONFIRMED
    return None


def merge_requirements(reqs: Sequence[Requirement]) -> Requirement | None:
    """What one alert row waits for, stored with it, or ``None`` when it goes at once: it
    waits only if every rule that fired asks it to, no longer than the first deadline.  The
    counts are the least asked of each kind (for display: :func:`release` judges the rules
    one by one, so the row goes as soon as any rule is satisfied)."""
    if not reqs or not all(r.holds for r in reqs):
        return None
    deadlines = [r.deadline for r in reqs if r.deadline is not None]
    outlets = [r.min_outlets for r in reqs if r.min_outlets > 1]
    languages = [r.min_languages for r in reqs if r.min_languages > 1]
    return Requirement(min(outlets, default=0), min(languages, default=0), min(deadlines) if deadlines else None)


# --------------------------------------------------------------------------- updates


def update_due(thresholds: Sequence[int], told: int, outlets: int, done: Iterable[int]) -> int | None:
    """The threshold an update should announce now, or ``None``.

    ``told`` is how many outlets the subscriber's alert reported; ``outlets`` how many carry
    the story now; ``done`` the thresholds already announced.  Only the highest threshold
    crossed since the alert is announced (a story jumping from 2 to 8 outlets sends one
    update, "now 8 outlets", not two), and never one at or below an announced one.
    """
    done = set(done)
    crossed = [t for t in thresholds if told < t <= outlets]
    if not crossed:
        return None
    best = max(crossed)
    if any(d >= best for d in done):
        return None
    return best


# --------------------------------------------------------------------------- surges


@dataclass(frozen=True, slots=True)
class SurgeCheck:
    """A rule's matches: in the last hour, and over the trailing baseline before it."""

    rule: str
    last_hour: int
    baseline: int  # matches in the SURGE_BASELINE before the last hour
    last_surge: datetime | None = None


def hourly_mean(baseline: int, window: timedelta = SURGE_BASELINE) -> float:
    return baseline / (window / HOUR)


def is_surge(check: SurgeCheck, factor: float, floor: int, cooldown: timedelta, now: datetime) -> bool:
    """Whether ``check.rule`` surges now.

    A surge is at least ``floor`` matches in the last hour and more than ``factor`` times
    the trailing 7-day hourly mean (a rule with no history surges on the floor alone), and
    no surge of the rule within ``cooldown`` before ``now``.
    """
    if factor <= 0 or check.last_hour < floor:
        return False
    if check.last_surge is not None and now - check.last_surge < cooldown:
        return False
    return check.last_hour > factor * hourly_mean(check.baseline)


def hour_buckets(times: Iterable[datetime], now: datetime, hours: int = SURGE_CHART_HOURS) -> tuple[int, ...]:
    """Counts per hour for the ``hours`` hours up to ``now``, oldest first; the last bucket is
    ``(now - 1h, now]``, the hour a surge is judged on."""
    counts = [0] * hours
    for t in times:
        age = now - t
        if timedelta(0) <= age < hours * HOUR:
            counts[hours - 1 - int(age / HOUR)] += 1
    return tuple(counts)
