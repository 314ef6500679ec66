"""Run one measured process, and write the wirewatch config the benchmarks drive it with.

Responsible for the measurement every poll figure shares: a child process is started,
waited for with ``os.wait4`` (so its CPU time and peak RSS are its own, threads included,
not mixed with other children), and stopped at a time bound if it has one.  It also
writes config.toml files for wirewatch the way an operator would.  It must not decide
what a figure means: that is the benchmark modules' job.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.tools import PROJECT_PYTHON, ROOT


@dataclass(frozen=True, slots=True)
class ProcessRun:
    """One finished child: wall seconds, CPU seconds (user + system), peak RSS in MiB."""

    argv: tuple[str, ...]
    returncode: int
    wall: float
    cpu_user: float
    cpu_sys: float
    max_rss_mib: float
    stdout: str
    stderr: str
    timed_out: bool

    @property
    def cpu(self) -> float:
        return self.cpu_user + self.cpu_sys


def run_measured(
    argv: Sequence[str],
    *,
    time_limit: float | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> ProcessRun:
    """Run ``argv`` to completion (or SIGTERM at ``time_limit``) and measure it with wait4."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(argv), stdout=out, stderr=err, env=dict(env) if env else None, cwd=cwd)
        timed_out = False
        deadline = start + time_limit if time_limit else None
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            if deadline is not None and time.perf_counter() > deadline and not timed_out:
                timed_out = True
                proc.send_signal(signal.SIGTERM)
                deadline = time.perf_counter() + 10  # then SIGKILL
            elif deadline is not None and timed_out and time.perf_counter() > deadline:
                proc.kill()
                deadline = None
            time.sleep(0.02)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return ProcessRun(
            argv=tuple(argv),
            returncode=proc.returncode,
            wall=wall,
            cpu_user=usage.ru_utime,
            cpu_sys=usage.ru_stime,
            max_rss_mib=usage.ru_maxrss / 1024,  # Linux reports KiB
            stdout=out.read().decode("utf-8", "replace"),
            stderr=err.read().decode("utf-8", "replace"),
            timed_out=timed_out,
        )


def wirewatch_env(tree: Path = ROOT) -> dict[str, str]:
    """The environment for a wirewatch child that runs the code in ``tree`` (the working tree by default).

    ``PYTHONPATH`` puts ``tree`` ahead of the venv's editable install of the working tree.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("WIREWATCH_")}
    env["PYTHONPATH"] = str(tree)
    return env


def run_child(
    script: Path, args: Sequence[str], tree: Path, python: Path, log: Callable[[str], None], what: str
) -> dict[str, Any]:
    """Run ``script --child ARGS`` with the code in ``tree``; its stderr goes to ``log``, its stdout is JSON."""
    proc = subprocess.run(
        [str(python), str(script), "--child", *args],
        capture_output=True,
        text=True,
        env=wirewatch_env(tree),
        cwd=tree,
        check=False,
    )
    for line in proc.stderr.strip().splitlines():
        log(line)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} child failed: {proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout))


def wirewatch_argv(config: Path, database_url: str, *command: str) -> list[str]:
    return [str(PROJECT_PYTHON), "-m", "monitor", "--config", str(config), "--database-url", database_url, *command]


TERMS = """
[terms]
kim_jong_un = ["Kim Jong Un", "Kim Jong-un", "كيم جونغ أون", "Ким Чен Ын", "김정은"]
putin = ["Putin", "بوتين", "Путин", "푸틴"]
kursk = ["Kursk", "كورسك", "Курск", "쿠르스크"]
troops = ["troops", "soldiers", "جنود", "قوات", "войска", "военные", "солдаты", "병력", "파병", "군인"]
"""

RULES = (
    ("nk-russia-troops", 'kim_jong_un AND putin AND (kursk OR troops) AND NOT "Kim Kardashian"'),
    ("kim-putin", "kim_jong_un NEAR/30 putin"),
    ("kursk", "title:kursk OR (kursk AND troops)"),
)


@dataclass(frozen=True, slots=True)
class Subscriber:
    name: str
    url: str


def write_config(
    path: Path,
    feed_urls: Sequence[str],
    *,
    concurrency: int = 64,
    per_host: int = 64,
    interval: str = "10m",
    full_text: bool = True,
    timeout: str = "30s",
    subscribers: Sequence[Subscriber] = (),
    max_age: str = "36500d",
    fetch_extra: Mapping[str, object] | None = None,
    rules: Sequence[str] | None = None,
) -> Path:
    """A wirewatch config for ``feed_urls`` (sources named ``f00000`` …).

    Every feed is on one host (127.0.0.1), so ``per_host`` has to be as large as
    ``concurrency`` or the per-host limit, not wirewatch, sets the pace; ``host_delay`` is 0
    and robots.txt is not fetched for the same reason.  ``max_age`` is long because the
    generated web is dated from a fixed epoch (that keeps it deterministic).
    """
    names = ", ".join(f'"{s.name}"' for s in subscribers)
    lines = [
        "# Generated by benchmarks/harness.py",
        "[storage]",
        'url = "sqlite:///unused.db"  # the benchmark passes --database-url',
        "",
        "[fetch]",
        f'timeout = "{timeout}"',
        f"concurrency = {concurrency}",
        f"per_host = {per_host}",
        'host_delay = "0s"',
        "obey_robots = false",
        f"full_text = {'true' if full_text else 'false'}",
        *(f"{k} = {_toml(v)}" for k, v in (fetch_extra or {}).items()),
        "",
        "[alerts]",
        'first_poll = "silent"',
        f'max_age = "{max_age}"',
        "",
    ]
    for url in feed_urls:
        name = "f" + url.rsplit("/", 1)[-1].split(".")[0]
        lines += ["[[sources]]", f'name = "{name}"', f'url = "{url}"', f'interval = "{interval}"', ""]
    lines.append(TERMS)
    if subscribers:
        for rule, query in RULES:
            if rules is None or rule in rules:
                lines += ["[[rules]]", f'name = "{rule}"', f"query = '{query}'", f"notify = [{names}]", ""]
        for s in subscribers:
            lines += [
                "[[subscribers]]",
                f'name = "{s.name}"',
                f'urls = ["{s.url}"]',
                'timezone = "UTC"',
                "max_per_hour = 100000",
                "",
            ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def supported_fetch_keys(tree: Path, wanted: Mapping[str, object], workdir: Path) -> dict[str, object]:
    """The subset of ``wanted`` ``[fetch]`` keys that the wirewatch in ``tree`` accepts.

    The tree may be older or newer than this suite: ``wirewatch check`` names each key it
    does not know, and those are dropped (and reported by the caller).
    """
    path = write_config(workdir / "probe.toml", ["http://127.0.0.1:9/f/00000.xml"], fetch_extra=wanted)
    run = subprocess.run(
        [str(PROJECT_PYTHON), "-m", "monitor", "--config", str(path), "check"],
        capture_output=True,
        text=True,
        env=wirewatch_env(tree),
        cwd=tree,
        check=False,
    )
    return {k: v for k, v in wanted.items() if f"fetch.{k}" not in run.stderr}


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")
