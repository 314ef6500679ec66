"""Poll benchmark: cold ingest, warm re-poll (all 304) and a poll after 5 % of feeds gained items.

Responsible for the throughput figures.  For each scale it polls the generated web with
wirewatch (``run --once`` as a child process, SQLite), lemon24/reader (``update_feeds``)
and feedparser in a plain loop, in the same run and interleaved, each from an empty
database and the web in its first state: cold, then warm, then after a wave of new items.
Each run is measured from outside (wall, CPU, peak RSS via ``wait4``) and the requests it
made are counted from nginx's access log (feed 200s, 304s, article pages).

wirewatch runs in up to two modes: ``full text`` (its default: article pages of new
entries without text are fetched and extracted, at most ``full_text_max`` per feed per poll)
and ``feeds only`` (``full_text = false``: the same work reader and feedparser do).
"""

from __future__ import annotations

import json
import sqlite3
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmarks import gen_web
from benchmarks.harness import (
    ProcessRun,
    Subscriber,
    run_measured,
    wirewatch_argv,
    wirewatch_env,
    write_config,
)
from benchmarks.tools import PROJECT_PYTHON, READER_PYTHON, ROOT, Nginx, read_access_log

HERE = Path(__file__).resolve().parent
SCENARIOS = ("cold", "warm", "wave")


@dataclass
class PollRecord:
    """One measured poll of the whole web by one tool."""

    tool: str
    feeds: int
    items_per_feed: int
    scenario: str
    rep: int
    wall: float
    cpu: float
    rss_mib: float
    new_items: int
    feed_200: int
    feed_304: int
    articles: int
    errors: int
    timed_out: bool
    returncode: int
    note: str = ""

    @property
    def feeds_per_s(self) -> float:
        return (self.feed_200 + self.feed_304) / self.wall if self.wall else 0.0

    @property
    def items_per_s(self) -> float:
        return self.new_items / self.wall if self.wall else 0.0

    @property
    def cpu_per_1k(self) -> float:
        return 1000 * self.cpu / self.new_items if self.new_items else float("nan")


@dataclass
class PollContext:
    nginx: Nginx
    web_root: Path  # directory nginx serves; each web is a sub-directory
    work: Path
    tree: Path
    hook: Subscriber
    fetch_extra: dict[str, object] = field(default_factory=dict)
    time_limit: float = 600.0
    reader_workers: int = 1
    log: Callable[[str], None] = print


def web_params(ctx: PollContext, feeds: int, items: int) -> gen_web.WebParams:
    return gen_web.WebParams(feeds, items, 1, f"{ctx.nginx.base_url}/web-{feeds}x{items}", gen_web.DEFAULT_EPOCH)


def prepare_web(ctx: PollContext, feeds: int, items: int) -> tuple[Path, gen_web.WebParams]:
    params = web_params(ctx, feeds, items)
    root = ctx.web_root / f"web-{feeds}x{items}"
    if gen_web.generate(root, params):
        ctx.log(f"generated {root} ({feeds} feeds x {items} items)")
    return root, params


def _requests(ctx: PollContext, prefix: str) -> Counter[str]:
    ctx.nginx.flush_log()
    counts: Counter[str] = Counter()
    for line in read_access_log(ctx.nginx.access_log):
        if not line.path.startswith(prefix):
            continue
        kind = line.path[len(prefix) :].split("/", 2)[1] if "/" in line.path[len(prefix) :] else "?"
        if kind == "f":
            counts["feed_304" if line.status == 304 else "feed_200" if line.status == 200 else "feed_err"] += 1
        elif kind == "a":
            counts["articles"] += 1
        else:
            counts["other"] += 1
    return counts


def _count(db: Path, table: str) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        try:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def _record(
    tool: str,
    params: gen_web.WebParams,
    scenario: str,
    rep: int,
    run: ProcessRun,
    new: int,
    req: Counter[str],
    note: str = "",
) -> PollRecord:
    return PollRecord(
        tool=tool,
        feeds=params.feeds,
        items_per_feed=params.items,
        scenario=scenario,
        rep=rep,
        wall=run.wall,
        cpu=run.cpu,
        rss_mib=run.max_rss_mib,
        new_items=new,
        feed_200=req["feed_200"],
        feed_304=req["feed_304"],
        articles=req["articles"],
        errors=req["feed_err"],
        timed_out=run.timed_out,
        returncode=run.returncode,
        note=note,
    )


def _prefix(params: gen_web.WebParams) -> str:
    return "/" + params.base_url.split("/", 3)[3]


def poll_wirewatch(
    ctx: PollContext, root: Path, params: gen_web.WebParams, rep: int, *, full_text: bool
) -> list[PollRecord]:
    tool = "wirewatch" if full_text else "wirewatch (feeds only)"
    run_dir = ctx.work / "runs" / f"ww-{params.feeds}-{int(full_text)}-{rep}"
    run_dir.mkdir(parents=True, exist_ok=True)
    db = run_dir / "wirewatch.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    urls = [params.base_url + gen_web.feed_path(f) for f in range(params.feeds)]
    extra = {k: v for k, v in ctx.fetch_extra.items() if full_text or k != "full_text_max"}
    config = write_config(run_dir / "config.toml", urls, full_text=full_text, subscribers=[ctx.hook], fetch_extra=extra)
    argv = wirewatch_argv(config, f"sqlite:///{db}", "run", "--once")
    records = []
    gen_web.reset(root, params)
    for scenario in SCENARIOS:
        if scenario == "wave":
            gen_web.apply_wave(root, params, 1)
        ctx.nginx.rotate_log()
        before = _count(db, "items")
        run = run_measured(argv, time_limit=ctx.time_limit, env=wirewatch_env(ctx.tree), cwd=ctx.tree)
        (run_dir / f"{scenario}.stdout").write_text(run.stdout, encoding="utf-8")
        (run_dir / f"{scenario}.stderr").write_text(run.stderr, encoding="utf-8")
        new = _count(db, "items") - before
        summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
        if run.returncode != 0 and not run.timed_out:
            ctx.log(f"  {tool} {scenario}: exit {run.returncode}: {run.stderr.strip().splitlines()[-1:]}")
        rec = _record(tool, params, scenario, rep, run, new, _requests(ctx, _prefix(params)), summary)
        ctx.log(f"  {_brief(rec)} {summary}")
        records.append(rec)
    gen_web.reset(root, params)
    return records


def poll_reader(ctx: PollContext, root: Path, params: gen_web.WebParams, rep: int) -> list[PollRecord]:
    run_dir = ctx.work / "runs" / f"reader-{params.feeds}-{rep}"
    run_dir.mkdir(parents=True, exist_ok=True)
    db = run_dir / "reader.sqlite"
    for p in run_dir.glob("reader.sqlite*"):
        p.unlink()
    urls_file = run_dir / "urls.txt"
    urls_file.write_text(
        "\n".join(params.base_url + gen_web.feed_path(f) for f in range(params.feeds)), encoding="utf-8"
    )
    driver = str(HERE / "reader_driver.py")
    add = run_measured([str(READER_PYTHON), driver, str(db), str(urls_file), "add"])
    if add.returncode != 0:
        raise RuntimeError(f"reader add_feed failed: {add.stderr[-2000:]}")
    records = []
    gen_web.reset(root, params)
    for scenario in SCENARIOS:
        if scenario == "wave":
            gen_web.apply_wave(root, params, 1)
        ctx.nginx.rotate_log()
        argv = [str(READER_PYTHON), driver, str(db), str(urls_file), "update", "--workers", str(ctx.reader_workers)]
        run = run_measured(argv, time_limit=ctx.time_limit)
        result = _last_json(run.stdout)
        new = int(str(result.get("new", 0))) if result else _count(db, "entries")
        if run.returncode != 0 and not run.timed_out:
            ctx.log(f"  reader {scenario}: exit {run.returncode}: {run.stderr[-500:]}")
        rec = _record("reader", params, scenario, rep, run, new, _requests(ctx, _prefix(params)), json.dumps(result))
        ctx.log(f"  {_brief(rec)}")
        records.append(rec)
    gen_web.reset(root, params)
    return records


def poll_feedparser(ctx: PollContext, root: Path, params: gen_web.WebParams, rep: int) -> list[PollRecord]:
    run_dir = ctx.work / "runs" / f"feedparser-{params.feeds}-{rep}"
    run_dir.mkdir(parents=True, exist_ok=True)
    state = run_dir / "state.json"
    state.unlink(missing_ok=True)
    urls_file = run_dir / "urls.txt"
    urls_file.write_text(
        "\n".join(params.base_url + gen_web.feed_path(f) for f in range(params.feeds)), encoding="utf-8"
    )
    records = []
    gen_web.reset(root, params)
    for scenario in SCENARIOS:
        if scenario == "wave":
            gen_web.apply_wave(root, params, 1)
        ctx.nginx.rotate_log()
        argv = [str(PROJECT_PYTHON), "-m", "benchmarks.feedparser_driver", str(urls_file), str(state)]
        run = run_measured(argv, time_limit=ctx.time_limit, cwd=ROOT)
        result = _last_json(run.stdout)
        # A plain loop has no store: every entry of a changed feed is "new" to it.
        new = int(str(result.get("entries", 0))) if result else 0
        rec = _record(
            "feedparser loop", params, scenario, rep, run, new, _requests(ctx, _prefix(params)), json.dumps(result)
        )
        ctx.log(f"  {_brief(rec)}")
        records.append(rec)
    gen_web.reset(root, params)
    return records


def _brief(rec: PollRecord) -> str:
    return (
        f"{rec.tool:24} {rec.scenario:5} {rec.wall:7.2f}s cpu {rec.cpu:7.2f}s rss {rec.rss_mib:5.0f}MiB "
        f"new {rec.new_items:6}"
    )


def _last_json(text: str) -> dict[str, object]:
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    return {}


def run_scale(
    ctx: PollContext, feeds: int, items: int, repeat: int, tools: tuple[str, ...], full_text_rounds: int = 1
) -> list[PollRecord]:
    """``repeat`` rounds of every tool on one web; tools are interleaved within a round.

    wirewatch with full text is the slowest run by far: it gets ``full_text_rounds`` rounds.
    """
    root, params = prepare_web(ctx, feeds, items)
    records: list[PollRecord] = []
    for rep in range(repeat):
        ctx.log(f"poll {feeds} feeds x {items} items, round {rep + 1}/{repeat}")
        for tool in tools:
            if tool == "wirewatch" and rep < full_text_rounds:
                records += poll_wirewatch(ctx, root, params, rep, full_text=True)
            elif tool == "wirewatch-feeds":
                records += poll_wirewatch(ctx, root, params, rep, full_text=False)
            elif tool == "reader":
                records += poll_reader(ctx, root, params, rep)
            elif tool == "feedparser":
                records += poll_feedparser(ctx, root, params, rep)
    return records


def startup(ctx: PollContext, feeds: int, items: int, rounds: int = 3) -> dict[str, dict[str, float]]:
    """The fixed cost of one poll process: a warm poll of a single feed (median of ``rounds``), per tool."""
    _root, params = prepare_web(ctx, feeds, items)
    url = params.base_url + gen_web.feed_path(0)
    run_dir = ctx.work / "runs" / "startup"
    run_dir.mkdir(parents=True, exist_ok=True)
    out: dict[str, dict[str, float]] = {}
    db = run_dir / "wirewatch.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    config = write_config(run_dir / "config.toml", [url], full_text=False, subscribers=[ctx.hook])
    argv = wirewatch_argv(config, f"sqlite:///{db}", "run", "--once")
    runs = [run_measured(argv, env=wirewatch_env(ctx.tree), cwd=ctx.tree) for _ in range(rounds + 1)][1:]
    out["wirewatch"] = _startup_summary(runs)
    rdb = run_dir / "reader.sqlite"
    for p in run_dir.glob("reader.sqlite*"):
        p.unlink()
    urls_file = run_dir / "urls.txt"
    urls_file.write_text(url, encoding="utf-8")
    driver = str(HERE / "reader_driver.py")
    run_measured([str(READER_PYTHON), driver, str(rdb), str(urls_file), "add"])
    argv = [str(READER_PYTHON), driver, str(rdb), str(urls_file), "update"]
    runs = [run_measured(argv) for _ in range(rounds + 1)][1:]
    out["reader"] = _startup_summary(runs)
    ctx.log(
        "start-up (warm poll of one feed): "
        + ", ".join(f"{k} {v['wall']:.2f}s wall / {v['cpu']:.2f}s CPU / {v['rss_mib']:.0f} MiB" for k, v in out.items())
    )
    return out


def _startup_summary(runs: list[ProcessRun]) -> dict[str, float]:
    return {
        "wall": statistics.median(r.wall for r in runs),
        "cpu": statistics.median(r.cpu for r in runs),
        "rss_mib": statistics.median(r.max_rss_mib for r in runs),
    }


def to_json(records: list[PollRecord]) -> list[dict[str, object]]:
    return [asdict(r) for r in records]
