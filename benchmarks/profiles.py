"""Read py-spy's collapsed stacks (``--format raw``) and say where the time went.

Responsible for turning a profile into the few lines RESULTS.md needs: the share of samples
whose stack passes through each named stage (inclusive), and the hottest leaf functions
(self time).  Idle samples (threads waiting in ``select``/``epoll``/locks) are counted
apart so that "share" means share of busy time.  It must not run anything.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^:()]+)(?::\d+)?\)$")
# Leaf frames of a thread that waits rather than works.  With ``--native`` the C frames show
# waits Python cannot: SQLite's busy handler (usleep), the GIL (pthread_cond_timedwait).
IDLE = (
    "select (",
    "epoll",
    "poll (",
    "wait (",
    "_wait_for_tstate_lock",
    "acquire (",
    "sleep (",
    "get (queue",
    "recv (",
    "nanosleep",
    "usleep",
    "pthread_cond_timedwait",
    "pthread_cond_wait",
    "epoll_wait",
    "futex",
)


def is_idle(stack: tuple[str, ...]) -> bool:
    """A waiting thread: an idle frame among the last three (native leaves are often bare addresses)."""
    return any(any(i in f for i in IDLE) for f in stack[-3:]) or "PyThread_acquire_lock_timed" in ";".join(stack[-4:])


@dataclass(frozen=True, slots=True)
class Profile:
    stacks: Counter[tuple[str, ...]]

    @property
    def total(self) -> int:
        return sum(self.stacks.values())

    def busy(self) -> Counter[tuple[str, ...]]:
        return Counter({s: n for s, n in self.stacks.items() if s and not is_idle(s)})

    def waiting(self, needle: str) -> int:
        """Samples idle (per :data:`IDLE`) with ``needle`` somewhere in the stack."""
        return sum(n for s, n in self.stacks.items() if s and is_idle(s) and any(needle in f for f in s))


def load(path: Path) -> Profile:
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        stacks[tuple(stack.split(";"))] += int(count)
    return Profile(stacks)


def _short(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    file = m.group("file")
    for marker in ("site-packages/", "lib/python3.11/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{m.group('func')} ({file})"


def stage_shares(profile: Profile, stages: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """Share of busy samples whose stack contains any frame matching one of each stage's substrings.

    Stages are tested in order and a sample counts for the first stage it matches, so the
    shares add up to at most 1.
    """
    busy = profile.busy()
    total = sum(busy.values()) or 1
    out = dict.fromkeys(stages, 0.0)
    out["other"] = 0.0
    for stack, n in busy.items():
        joined = ";".join(stack)
        for name, needles in stages.items():
            if any(needle in joined for needle in needles):
                out[name] += n / total
                break
        else:
            out["other"] += n / total
    return out


def hottest(profile: Profile, n: int = 15) -> list[tuple[str, float]]:
    """The leaf functions with the most busy samples (self time), as shares."""
    busy = profile.busy()
    total = sum(busy.values()) or 1
    leaves: Counter[str] = Counter()
    for stack, count in busy.items():
        if stack:
            leaves[_short(stack[-1])] += count
    return [(name, count / total) for name, count in leaves.most_common(n)]


def inclusive(profile: Profile, n: int = 25, *, under: str = "") -> list[tuple[str, float]]:
    """Functions by inclusive share of busy samples (each counted once per stack)."""
    busy = profile.busy()
    total = sum(busy.values()) or 1
    funcs: Counter[str] = Counter()
    for stack, count in busy.items():
        if under and not any(under in f for f in stack):
            continue
        for name in {_short(f) for f in stack}:
            funcs[name] += count
    return [(name, count / total) for name, count in funcs.most_common(n)]


def by_innermost(
    profile: Profile, markers: Sequence[str] = ("(monitor/", "(crawler/"), n: int = 15
) -> list[tuple[str, float]]:
    """Busy samples charged to the innermost frame of our own code (library time included)."""
    busy = profile.busy()
    total = sum(busy.values()) or 1
    funcs: Counter[str] = Counter()
    for stack, count in busy.items():
        ours = [f for f in stack if any(m in f for m in markers)]
        funcs[_short(ours[-1]).split(" (")[0] if ours else "(library only)"] += count
    return [(name, count / total) for name, count in funcs.most_common(n)]


def thread_seconds(profile: Profile, needle: str, rate: float) -> float:
    """Thread-seconds spent waiting with ``needle`` in the stack (e.g. ``usleep``: SQLite's busy handler)."""
    return profile.waiting(needle) / rate


def gil_wait_seconds(profile: Profile, rate: float) -> float:
    """Thread-seconds waiting for the GIL: a condition wait that is not a lock, a queue or the event loop."""
    n = 0
    for stack, count in profile.stacks.items():
        tail = ";".join(stack[-4:])
        if "pthread_cond" in tail and not any(
            x in tail for x in ("PyThread_acquire_lock", "epoll", "select", "usleep")
        ):
            n += count
    return n / rate


# The stages of a wirewatch poll, by the frames that identify them (first match wins).
WIREWATCH_STAGES: dict[str, tuple[str, ...]] = {
    "start-up (imports, config, migrations)": ("_find_and_load", "alembic", "load_config", "make_app"),
    "matching (rules)": ("rules.py", "text.py"),
    "feed parsing (feedparser)": ("feedparser", "parse_feed", "parse_json_feed"),
    "normalise (make_item, urls)": ("make_item", "urls.py", "items.py"),
    "dedupe fingerprints": ("dedupe.py",),
    "database (SQLAlchemy, sqlite3)": ("sqlalchemy", "sqlite3", "psycopg", "store/sql.py"),
    "logging": ("logging/__init__.py", "monitor/logs.py"),
    "Scrapy + Twisted (download, scheduling)": ("scrapy", "twisted", "asyncio"),
}


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(description="Summarise a py-spy raw profile")
    p.add_argument("profile", type=Path)
    p.add_argument("--under", default="", help="only stacks through this frame substring")
    args = p.parse_args(argv)
    prof = load(args.profile)
    busy = sum(prof.busy().values())
    print(f"{prof.total} samples, {busy} busy")
    for name, share in stage_shares(prof, WIREWATCH_STAGES).items():
        print(f"  {share:6.1%}  {name}")
    print("hottest (self):")
    for name, share in hottest(prof):
        print(f"  {share:6.1%}  {name}")
    print("innermost wirewatch frame:")
    for name, share in by_innermost(prof):
        print(f"  {share:6.1%}  {name}")
    print("inclusive:")
    for name, share in inclusive(prof, 40, under=args.under):
        print(f"  {share:6.1%}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
