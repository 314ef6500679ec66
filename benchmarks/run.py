"""Run the whole benchmark suite with one command and write benchmarks/RESULTS.md.

Responsible for the order of a run and nothing measured by itself: install what is
missing (nginx, wrk, reader), snapshot the code to measure, start one nginx on loopback,
then run the parts — ceiling (wrk), poll (wirewatch, reader, feedparser at each scale), cpu
(what matching and clustering add per 1,000 new items, inline),
latency (daemon → SMTP and webhook), matching (rules vs ``re``), profiles (py-spy of
wirewatch's cold and warm polls), and the dedupe benchmark another engineer owns when it
is present — and hand the results to :mod:`benchmarks.report`.  Raw results are kept as
JSON under ``benchmarks/work/``.

    .venv/bin/python -m benchmarks.run            # full run (~15 min on 2 cores)
    .venv/bin/python -m benchmarks.run --quick    # smoke run (~2 min), writes work/RESULTS-quick.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import bench_ceiling, bench_cpu, bench_latency, bench_matching, bench_poll, gen_web, profiles, report
from benchmarks.harness import (
    Subscriber,
    run_measured,
    supported_fetch_keys,
    wirewatch_argv,
    wirewatch_env,
    write_config,
)
from benchmarks.tools import (
    PROJECT_PYTHON,
    PY_SPY,
    ROOT,
    WORK,
    Nginx,
    compile_tree,
    ensure_reader,
    free_port,
    nginx_binary,
    snapshot_tree,
    tool_versions,
    wrk_binary,
)
from tests.servers import WebhookReceiver

HERE = Path(__file__).resolve().parent
# Full text at 10,000 feeds would be up to 67,000 article pages (well over 10 minutes):
# larger scales compare the feed work only, as reader and feedparser do it.
FULL_TEXT_MAX_FEEDS = 2000
PROFILE_RATE = 25
PROFILE_SCALE = (300, 10)  # small: a native profile slows wirewatch down about 1.5x
PARTS = ("ceiling", "poll", "cpu", "latency", "matching", "profile", "dedupe")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def parse_scale(text: str) -> tuple[int, int]:
    feeds, _, items = text.partition("x")
    return int(feeds), int(items or 30)


def machine() -> dict[str, Any]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem, 1),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "load_at_start": os.getloadavg(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="wirewatch benchmarks: one command, results in benchmarks/RESULTS.md")
    p.add_argument(
        "--quick", action="store_true", help="small smoke run; results go to benchmarks/work/RESULTS-quick.md"
    )
    p.add_argument("--only", nargs="+", choices=PARTS, help="run only these parts")
    p.add_argument("--skip", nargs="+", choices=PARTS, default=[], help="skip these parts")
    p.add_argument(
        "--tree",
        default="working",
        help="code to measure: 'working' (this working tree as it is) or a git ref such as HEAD (a read-only snapshot)",
    )
    p.add_argument("--scales", nargs="+", help="FEEDSxITEMS (default 1000x30 10000x5)")
    p.add_argument("--repeat", type=int, help="rounds at the first scale (later scales get one round)")
    p.add_argument("--port", type=int, default=18931, help="nginx port on 127.0.0.1 (a free one if taken)")
    p.add_argument("--time-limit", type=float, default=420.0, help="seconds before a poll run is stopped")
    p.add_argument(
        "--run-dedupe",
        action="store_true",
        help="run benchmarks/dedupe_bench.py (it appends to results/dedupe.md); by default only include that file",
    )
    p.add_argument("--out", type=Path, help="where the Markdown goes (default RESULTS.md, or work/RESULTS-quick.md)")
    args = p.parse_args(argv)

    quick = args.quick
    parts = [x for x in (args.only or PARTS) if x not in args.skip]
    scales = [parse_scale(s) for s in (args.scales or (["100x10", "300x10"] if quick else ["1000x30", "10000x5"]))]
    repeat = args.repeat or (1 if quick else 3)
    out_md = args.out or (WORK / "RESULTS-quick.md" if quick else HERE / "RESULTS.md")
    work = WORK / ("quick" if quick else "full")
    work.mkdir(parents=True, exist_ok=True)

    log("checking tools (nginx, wrk, reader venv)")
    nginx_binary()
    wrk_binary()
    ensure_reader()
    if args.tree == "working":
        tree, commit = (
            ROOT,
            "working tree at " + _git("rev-parse", "--short", "HEAD") + (" + changes" if _dirty() else ""),
        )
        compile_tree(tree)
    else:
        tree, sha = snapshot_tree(args.tree)
        commit = sha[:12]
    log(f"measuring {commit} ({tree})")
    fetch_extra = supported_fetch_keys(tree, {"adaptive": False, "min_interval": "1s"}, work)
    log(f"[fetch] extras accepted by this tree: {fetch_extra}")

    # A run of some parts updates those parts of the last full run's results and keeps the rest.
    previous = _load(work) if not quick else {}
    results: dict[str, Any] = {
        **previous,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "commit": commit,
        "machine": machine(),
        "versions": tool_versions(),
        "fetch_extra": fetch_extra,
        "parts": {
            **previous.get("parts", {}),
            **dict.fromkeys(
                parts,
                f"{datetime.now(UTC).isoformat(timespec='seconds')}, {commit}, load {os.getloadavg()[0]:.1f}",
            ),
        },
    }
    port = args.port if _port_free(args.port) else free_port()
    web_root = WORK / "webs"
    web_root.mkdir(parents=True, exist_ok=True)
    nginx = Nginx(web_root, port, work / "nginx")
    nginx.start()
    hook = WebhookReceiver()
    started = time.monotonic()
    try:
        ctx = bench_poll.PollContext(
            nginx=nginx,
            web_root=web_root,
            work=work,
            tree=tree,
            hook=Subscriber("hook", hook.url()),
            fetch_extra=fetch_extra,
            time_limit=args.time_limit,
            log=log,
        )
        # Generate every web first, so generation never overlaps a measurement.
        for feeds, items in scales:
            bench_poll.prepare_web(ctx, feeds, items)

        if "ceiling" in parts:
            feeds, items = scales[0]
            prefix = f"/web-{feeds}x{items}"
            results["ceiling"] = bench_ceiling.run(
                nginx,
                work / "ceiling",
                [prefix + gen_web.feed_path(f) for f in range(feeds)],
                [prefix + gen_web.article_path(f, n) for f in range(feeds) for n in range(items)],
                seconds=3 if quick else 10,
                log=log,
            )
        if "poll" in parts:
            results["startup"] = bench_poll.startup(ctx, *scales[0])
            measured = set(scales)
            kept = [r for r in previous.get("poll", []) if (r["feeds"], r["items_per_feed"]) not in measured]
            records: list[bench_poll.PollRecord] = []
            for index, (feeds, items) in enumerate(scales):
                tools: tuple[str, ...] = ("wirewatch-feeds", "reader", "feedparser")
                if feeds <= FULL_TEXT_MAX_FEEDS:
                    tools = ("wirewatch", *tools)
                records += bench_poll.run_scale(ctx, feeds, items, repeat if index == 0 else 1, tools)
                _save(work, results | {"poll": kept + bench_poll.to_json(records)})
            results["poll"] = kept + bench_poll.to_json(records)
        if "cpu" in parts:
            feeds, items = scales[0]
            results["cpu"] = bench_cpu.run(tree, web_root / f"web-{feeds}x{items}", work / "cpu", PROJECT_PYTHON, log)
        if "latency" in parts:
            results["latency"] = []
            for interval, n, window in (("5s", 6, 10.0),) if quick else (("5s", 20, 40.0), ("1m", 20, 60.0)):
                res = bench_latency.run(
                    nginx,
                    web_root,
                    work,
                    tree,
                    interval=interval,
                    items=n,
                    window=window,
                    fetch_extra=fetch_extra,
                    log=log,
                )
                log(
                    f"latency {interval}: email p50 {res['email']['p50']:.2f}s p95 {res['email']['p95']:.2f}s; "
                    f"webhook p50 {res['webhook']['p50']:.2f}s p95 {res['webhook']['p95']:.2f}s "
                    f"({res['email_arrived']}/{res['items']} emails, {res['webhook_arrived']}/{res['items']} posts)"
                )
                results["latency"].append(res)
        if "matching" in parts:
            counts = (10, 100, 1000) if quick else (10, 1000, 10000)
            results["matching"] = bench_matching.run(
                tree, work / "matching", counts, 300 if quick else 2000, 3 if quick else 20, PROJECT_PYTHON, log
            )
        if "profile" in parts:
            results["profile"] = profile_wirewatch(ctx, (100, 10) if quick else PROFILE_SCALE, quick=quick)
        if "dedupe" in parts:
            results["dedupe"] = run_dedupe(args.run_dedupe)
    finally:
        nginx.stop()
        hook.close()
    results["seconds"] = time.monotonic() - started
    _save(work, results)
    report.write(out_md, results, generated_only=quick)
    log(f"done in {results['seconds'] / 60:.1f} min; results in {out_md}")
    return 0


def profile_wirewatch(ctx: bench_poll.PollContext, scale: tuple[int, int], *, quick: bool) -> dict[str, Any]:
    """py-spy (all threads, native frames, 25 Hz) of wirewatch's cold and warm poll of the first scale's web.

    Native frames show what Python frames cannot: a thread asleep in SQLite's busy handler
    (``usleep``) or waiting for the GIL is waiting, not working.  Profiled runs are slower
    than measured ones (py-spy pauses the process to sample), so they only say where the
    time goes, never how much there is.
    """
    feeds, items = scale
    root, params = bench_poll.prepare_web(ctx, feeds, items)
    out: dict[str, Any] = {}
    for full_text in (True, False):
        run_dir = ctx.work / "profile" / ("full-text" if full_text else "feeds-only")
        run_dir.mkdir(parents=True, exist_ok=True)
        db = run_dir / "wirewatch.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        urls = [params.base_url + gen_web.feed_path(f) for f in range(feeds)]
        extra = {k: v for k, v in ctx.fetch_extra.items() if full_text or k != "full_text_max"}
        config = write_config(
            run_dir / "config.toml", urls, full_text=full_text, subscribers=[ctx.hook], fetch_extra=extra
        )
        gen_web.reset(root, params)
        for scenario in ("cold", "warm"):
            raw = run_dir / f"{scenario}.txt"
            argv = [str(PY_SPY), "record", "--native", "--format", "raw", "-r", str(PROFILE_RATE), "-o", str(raw), "--"]
            argv += wirewatch_argv(config, f"sqlite:///{db}", "run", "--once")
            run = run_measured(argv, time_limit=ctx.time_limit * 2, env=wirewatch_env(ctx.tree), cwd=ctx.tree)
            if not raw.exists():
                ctx.log(f"py-spy failed: {run.stderr[-500:]}")
                continue
            prof = profiles.load(raw)
            key = f"{'full text' if full_text else 'feeds only'} {scenario}"
            out[key] = {
                "samples": prof.total,
                "busy": sum(prof.busy().values()),
                "stages": profiles.stage_shares(prof, profiles.WIREWATCH_STAGES),
                "hottest": profiles.hottest(prof, 12),
                "ours": profiles.by_innermost(prof, n=15),
                "wall": run.wall,
                "sqlite_lock_wait_s": profiles.thread_seconds(prof, "usleep", PROFILE_RATE),
                "gil_wait_s": profiles.gil_wait_seconds(prof, PROFILE_RATE),
                "file": str(raw.relative_to(ROOT)),
            }
            ctx.log(
                f"profile {key}: {prof.total} samples; "
                + ", ".join(f"{k} {v:.0%}" for k, v in out[key]["stages"].items() if v >= 0.05)
            )
        if quick:
            break
    return out


def run_dedupe(execute: bool) -> dict[str, Any]:
    """Include benchmarks/results/dedupe.md (another engineer's); run their script first only if asked.

    Their script appends to that file, which is theirs: it runs only with ``--run-dedupe``.
    """
    script = HERE / "dedupe_bench.py"
    results_md = HERE / "results" / "dedupe.md"
    out: dict[str, Any] = {"script": script.exists(), "ran": False}
    if script.exists() and execute:
        log("dedupe: running benchmarks/dedupe_bench.py --sizes 10000,100000,1000000 --db both (bound 15 min)")
        argv = [
            str(PROJECT_PYTHON),
            str(script),
            "--sizes",
            "10000,100000,1000000",
            "--db",
            "both",
            "--time-limit",
            "120",
        ]
        run = run_measured(argv, time_limit=900, cwd=ROOT)
        out.update(ran=True, returncode=run.returncode, timed_out=run.timed_out, wall=run.wall, tail=run.stdout[-2000:])
    if results_md.exists():
        out["markdown"] = results_md.read_text(encoding="utf-8")
    return out


def _load(work: Path) -> dict[str, Any]:
    try:
        data = json.loads((work / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save(work: Path, results: dict[str, Any]) -> None:
    (work / "results.json").write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()


def _dirty() -> bool:
    return bool(_git("status", "--porcelain", "--untracked-files=no", "--", "monitor", "crawler"))


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        # As nginx binds: connections of the last run in TIME_WAIT must not count as "taken".
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


if __name__ == "__main__":
    raise SystemExit(main())
