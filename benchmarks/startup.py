"""Start-up time of the everyday commands (issue 13, "Fast start"): wall and CPU seconds.

Runs each command N times against a small SQLite database (one source, migrated) and
prints the median wall time and the median CPU time (user + system of the child).  On a
machine shared with other work, CPU time is the steadier figure; wall time is what the
goal (under 0.4 s before any work) is stated in.  `run --once` is measured with its one
source disabled, so it starts, migrates-checks, builds the runtime and the reactor, and
exits without polling: that is its start-up.

    .venv/bin/python benchmarks/startup.py [N]
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = [["--help"], ["sources"], ["items"], ["alerts"], ["check"], ["run", "--once"]]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    work = Path(tempfile.mkdtemp(prefix="ww-startup-"))
    config = work / "config.toml"
    config.write_text(
        f"""
[storage]
url = "sqlite:///{work / "w.db"}"
[[sources]]
name = "a"
url = "http://127.0.0.1:9/a.xml"
enabled = false
[terms]
putin = ["Putin"]
[[rules]]
name = "r"
query = "putin"
notify = ["s"]
[[subscribers]]
name = "s"
urls = ["json://127.0.0.1:9/"]
""",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("WIREWATCH_")}
    env["WIREWATCH_CONFIG"] = str(config)
    base = [sys.executable, "-m", "monitor"]
    subprocess.run([*base, "db", "upgrade"], env=env, check=True, capture_output=True)
    print(f"{'command':<16} {'wall s (median)':>16} {'cpu s (median)':>15}   runs={n}")
    for cmd in COMMANDS:
        walls, cpus = [], []
        for _ in range(n):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            subprocess.run([*base, *cmd], env=env, check=False, capture_output=True)
            walls.append(time.perf_counter() - t)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
        print(f"{' '.join(cmd):<16} {statistics.median(walls):>16.3f} {statistics.median(cpus):>15.3f}")
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
