"""Time per poll tick for N listing sources: a Scrapy crawl per tick (before) against one long-lived crawler (after).

Responsible for one figure of issue 13's "one long-lived crawler per process": how long
a tick of ``Poller.crawl`` takes for N listing sources on one loopback host, when each
tick builds a new Scrapy crawler (the commit before, ``--before``, default ``main``) and
when the process's one crawler is fed the tick's targets (``--after``, default
``HEAD``).  Each side runs in a fresh child process (benchmarks/scrapy_ticks_driver.py,
with the side's tree from ``git archive`` first on ``sys.path``) on a fresh SQLite
database: one cold tick (every page parsed and stored) and then warm ticks (every page
answers 304 to its ETag, so the tick is the crawler's own cost).  The server is a
threaded Python HTTP server in this process, the same for both sides.  Writes
``benchmarks/results/scrapy_ticks.md``.

    .venv/bin/python -m benchmarks.bench_scrapy_ticks                      # N = 10, 100; 8 ticks
    .venv/bin/python -m benchmarks.bench_scrapy_ticks --sources 50 --ticks 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

from benchmarks.tools import PROJECT_PYTHON, snapshot_tree

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "scrapy_ticks.md"
DRIVER = HERE / "scrapy_ticks_driver.py"

PAGE = """<html><body><ul>{links}</ul></body></html>"""


def page(n: int) -> bytes:
    links = "".join(
        f'<li><a class="l" href="/news/{n}/{i}">Russian and North Korean officers meet, story {n}-{i}</a></li>'
        for i in range(20)
    )
    return PAGE.format(links=links).encode()


def serve() -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if not self.path.startswith("/l"):
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            etag = f'"{self.path}"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = page(int(self.path[2:]))
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    class Server(ThreadingHTTPServer):
        # The default listen backlog (5) drops connections beyond it; the client's SYN retry
        # then costs a whole second (measured: ticks in steps of 1 s).
        request_queue_size = 1024

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    Thread(target=server.serve_forever, daemon=True).start()
    return server


def write_config(path: Path, base: str, sources: int) -> None:
    blocks = "".join(
        f'\n[[sources]]\nname = "l{n}"\ntype = "listing"\nurl = "{base}/l{n}"\ninterval = "5m"\nlinks = "a.l"\n'
        for n in range(sources)
    )
    path.write_text(
        f"""[storage]
url = "sqlite:///ignored.db"

[fetch]
host_delay = "0s"
per_host = 8
concurrency = 64
timeout = "10s"
full_text = false

[alerts]
first_poll = "silent"
{blocks}
[terms]
putin = ["Putin"]

[[rules]]
name = "putin"
query = "putin"
""",
        encoding="utf-8",
    )


def run_side(tree: Path, base: str, sources: int, ticks: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="scrapy-ticks-") as tmp:
        config = Path(tmp) / "config.toml"
        write_config(config, base, sources)
        env = {k: v for k, v in os.environ.items() if not k.startswith("WIREWATCH_")}
        env["PYTHONPATH"] = str(tree)
        proc = subprocess.run(
            [str(PROJECT_PYTHON), str(DRIVER), str(config), f"sqlite:///{tmp}/ww.db", str(ticks)],
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    result: dict[str, Any] = json.loads(proc.stdout)
    for tick in result["ticks"]:
        assert tick["outcomes"] == sources, tick
    return result


def summary(result: dict[str, Any]) -> dict[str, float]:
    ticks = result["ticks"]
    warm = ticks[1:]
    return {
        "cold_wall": ticks[0]["wall"],
        "warm_wall": statistics.median(t["wall"] for t in warm),
        "warm_cpu": statistics.median(t["cpu"] for t in warm),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, action="append", help="listing sources per tick (repeatable)")
    parser.add_argument("--ticks", type=int, default=8)
    parser.add_argument("--before", default="main")
    parser.add_argument("--after", default="HEAD")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    counts = args.sources or [10, 100]
    sides = {"before": snapshot_tree(args.before), "after": snapshot_tree(args.after)}
    server = serve()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    rows = []
    try:
        for n in counts:
            figures = {}
            for side, (tree, sha) in sides.items():
                print(
                    f"[{time.strftime('%H:%M:%S')}] {side} ({sha[:10]}): {n} sources x {args.ticks} ticks", flush=True
                )
                result = run_side(tree, base, n, args.ticks)
                figures[side] = summary(result) | {"starts": result.get("scrapy_starts")}
            rows.append((n, figures))
    finally:
        server.shutdown()
    header = f"`python -m benchmarks.bench_scrapy_ticks` on {time.strftime('%Y-%m-%d')},"
    lines = [
        "# Time per poll tick: a Scrapy crawl per tick against one long-lived crawler",
        "",
        header,
        f"before = `{args.before}` ({sides['before'][1][:10]}), after = `{args.after}` ({sides['after'][1][:10]}).",
        f"N listing sources on one loopback host (threaded Python server), {args.ticks} ticks of `Poller.crawl`",
        "in one process on SQLite: the first cold (20 links a page parsed and stored), then warm (all 304).",
        "Wall and CPU seconds of the whole process per tick (ingest included); warm figures are medians.",
        "",
        "| N | side | cold tick, s | warm tick, s | warm tick CPU, s | crawlers started |",
        "|---|---|---|---|---|---|",
    ]
    for n, figures in rows:
        for side, f in figures.items():
            starts = "one per tick" if f["starts"] is None else str(f["starts"])
            lines.append(
                f"| {n} | {side} | {f['cold_wall']:.3f} | {f['warm_wall']:.3f} | {f['warm_cpu']:.3f} | {starts} |"
            )
        b, a = figures["before"], figures["after"]
        lines.append(
            f"| {n} | after / before (warm) | | {a['warm_wall'] / b['warm_wall']:.2f}× | "
            f"{a['warm_cpu'] / max(b['warm_cpu'], 1e-9):.2f}× | |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        OUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
