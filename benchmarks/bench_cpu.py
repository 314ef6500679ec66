"""Benchmark: what wirewatch's CPU per 1,000 new items buys on top of storing them.

Issue 13's CPU goal is "no more than reader's plus the matching and clustering we do on
top, with that addition measured".  This measures the addition on the poll benchmark's own
web: one child process (the code in ``--tree``) reads the first scale's feed files from
disk (no HTTP), parses them, and ingests them into a fresh SQLite database in batches of
:data:`BATCH` polls, as a cold ``run --once`` of feeds only does, but inline in one
thread: no CPU workers, so nothing is counted twice and nothing is lost to hand-offs.
The configuration is the poll benchmark's (``harness.write_config``: its rules, one
webhook subscriber, first poll silent).

CPU seconds (``time.thread_time``, one thread) per 1,000 new items, by part:

- *matching*: ``match_hits`` (tokenising, the analysers, the rules);
- *fingerprints*: ``make_fingerprint`` and ``near_signature`` (exact keys, shingles,
  MinHash, band keys);
- *story assignment*: ``StoryAssigner.prefetch`` and ``assign_entries`` (the candidates
  read before and inside the write, the plan, the stories and band rows written);
- *the rest of ingest*: normalising, the reads before writing, items, sources;
- *parsing*, apart.

Matching and clustering (fingerprints + story assignment) are the addition; reader's own
CPU per 1,000 items comes from the poll part of the same run.  ``report.py`` sets the
two against wirewatch's cold poll.  Runnable alone:
``python -m benchmarks.bench_cpu WEB_DIR`` (a web made by ``gen_web``).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BATCH = 64  # polls per ingest batch, as the daemon's ingest stage takes them
PARTS = ("matching", "fingerprints", "story assignment")


def run(tree: Path, web: Path, work: Path, python: Path, log: Callable[[str], None]) -> dict[str, Any]:
    """Measure in one child process running the code in ``tree``; its JSON result."""
    from benchmarks.harness import run_child

    work.mkdir(parents=True, exist_ok=True)
    result = run_child(Path(__file__).resolve(), [str(web), str(work)], tree, python, log, "cpu")
    per = result["per_1000"]
    log(
        f"cpu: {result['items']} items; per 1,000: ingest {per['ingest']:.2f} s (matching {per['matching']:.2f}, "
        f"fingerprints {per['fingerprints']:.2f}, story assignment {per['story assignment']:.2f}), "
        f"parsing {per['parsing']:.2f}"
    )
    return result


def child(web: Path, work: Path) -> dict[str, Any]:  # pragma: no cover - runs in the child
    sys.path.insert(0, str(HERE.parent))
    from benchmarks import gen_web
    from benchmarks.harness import Subscriber, write_config
    from monitor.app import make_app, utcnow
    from monitor.core.feeds import parse_feed
    from monitor.core.models import PollOutcome
    from monitor.services import analysis, stories

    manifest = gen_web.load_manifest(web)
    assert manifest is not None, f"no web in {web}"
    params = gen_web.WebParams(**manifest["params"])  # type: ignore[arg-type]
    gen_web.reset(web, params)  # the first state of every feed, as a cold poll sees it
    urls = [params.base_url + gen_web.feed_path(f) for f in range(params.feeds)]
    with tempfile.TemporaryDirectory(prefix="ww-cpu-bench-", dir=work) as tmp:
        config = write_config(
            Path(tmp) / "config.toml",
            urls,
            full_text=False,
            subscribers=[Subscriber("hook", "json://127.0.0.1:9/")],
        )
        app = make_app(str(config), f"sqlite:///{tmp}/cpu.db")
        app.store.sync_sources([(s.name, s.type, s.url) for s in app.config.sources], utcnow())
        states = {s.url: s for s in app.store.source_states()}
        try:  # as the daemon's and run --once's main process, once start-up is done
            from monitor.daemon import settle_gc
        except ImportError:  # an older tree
            pass
        else:
            settle_gc()

        start = time.thread_time()
        outcomes = []
        for f, url in enumerate(urls):
            body = (web / gen_web.feed_path(f).lstrip("/")).read_bytes()
            parsed = parse_feed(body, url, {})
            st = states[url]
            outcomes.append(PollOutcome(st.id, st.name, "ok", parsed.items, language=parsed.language))
        parsing = time.thread_time() - start

        spent: Counter[str] = Counter()

        def timed(part: str, fn: Callable[..., Any]) -> Callable[..., Any]:
            def inner(*args: Any, **kwargs: Any) -> Any:
                t = time.thread_time()
                try:
                    return fn(*args, **kwargs)
                finally:
                    spent[part] += time.thread_time() - t

            return inner

        # Module globals that analyse() and Ingestor look up at each call: wrapping them
        # times the real code path, and nothing else changes.
        analysis.match_hits = timed("matching", analysis.match_hits)  # type: ignore[assignment]
        analysis.make_fingerprint = timed("fingerprints", analysis.make_fingerprint)  # type: ignore[assignment]
        analysis.near_signature = timed("fingerprints", analysis.near_signature)  # type: ignore[assignment]
        for method in ("prefetch", "assign_entries"):
            wrapped = timed("story assignment", getattr(stories.StoryAssigner, method))
            setattr(stories.StoryAssigner, method, wrapped)
        start, wall = time.thread_time(), time.perf_counter()
        new = 0
        for i in range(0, len(outcomes), BATCH):
            new += sum(s.new for s in app.ingestor.ingest_batch(outcomes[i : i + BATCH]))
        ingest, wall = time.thread_time() - start, time.perf_counter() - wall
        app.store.engine.dispose()
    scale = 1000 / max(new, 1)
    per = {part: spent[part] * scale for part in PARTS}
    per["ingest"] = ingest * scale
    per["rest of ingest"] = (ingest - sum(spent.values())) * scale
    per["parsing"] = parsing * scale
    per["ingest wall"] = wall * scale  # with the waits for the disk (synchronous=FULL)
    return {"feeds": params.feeds, "items_per_feed": params.items, "items": new, "batch": BATCH, "per_1000": per}


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "--child":
        print(json.dumps(child(Path(argv[1]), Path(argv[2]))))
        return 0
    if len(argv) != 1:
        print("usage: python -m benchmarks.bench_cpu WEB_DIR", file=sys.stderr)
        return 2
    from benchmarks.tools import PROJECT_PYTHON, ROOT

    result = run(ROOT, Path(argv[0]), HERE / "work" / "cpu", PROJECT_PYTHON, print)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
