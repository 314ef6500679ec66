"""Run a command; print its wall time, the CPU of its whole process tree and peak RSS per process.

``--each`` (before the command) also prints one line per process: its CPU seconds, peak
RSS and command line.

CPU is sampled from /proc every 0.2 s for the command and every descendant (worker
processes included, whoever reaps them), beside ``wait4``'s figure for the command: the
two agree when every worker is waited for (wirewatch's CpuPool stops its forkserver on
close for this reason).  Used for the 2026-12-07 summary in RESULTS.md:

    python3 benchmarks/treetime.py .venv/bin/python -m monitor --config C --database-url sqlite:///X run --once
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            out += [int(x) for x in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    except OSError:
        pass
    return out


def sample(pid: int) -> tuple[float, int] | None:
    """CPU seconds so far and peak RSS (MiB) of one process, or None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    cpu = (int(fields[11]) + int(fields[12])) / TICKS
    hwm = next((int(line.split()[1]) // 1024 for line in status if line.startswith("VmHWM")), 0)
    return cpu, hwm


def main() -> None:
    argv = sys.argv[1:]
    each = argv[:1] == ["--each"]
    argv = argv[1:] if each else argv
    started = time.perf_counter()
    proc = subprocess.Popen(argv)
    seen: dict[int, tuple[float, int]] = {}
    names: dict[int, str] = {}
    while proc.poll() is None:
        todo = [proc.pid]
        while todo:
            pid = todo.pop()
            got = sample(pid)
            if got is not None:
                cpu, hwm = seen.get(pid, (0.0, 0))
                seen[pid] = (max(cpu, got[0]), max(hwm, got[1]))
                if pid not in names:
                    names[pid] = _cmdline(pid)
            todo += children(pid)
        time.sleep(0.2)
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    tree = sum(cpu for cpu, _ in seen.values())
    peaks = [hwm for _, hwm in seen.values()] or [0]
    print(
        f"wall {wall:.2f} s, cpu(tree, sampled) {tree:.2f} s, cpu(wait4) {usage.ru_utime + usage.ru_stime:.2f} s, "
        f"processes {len(seen)}, peak rss max {max(peaks)} MiB, sum {sum(peaks)} MiB",
        file=sys.stderr,
    )
    if each:
        for pid, (cpu, hwm) in seen.items():
            print(f"  {cpu:7.2f} s {hwm:5d} MiB  {names.get(pid, '?')}", file=sys.stderr)


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:120]


if __name__ == "__main__":
    main()
