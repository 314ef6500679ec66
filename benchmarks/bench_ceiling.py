"""The ceiling: how fast the loopback nginx itself serves the generated web, measured with wrk.

Responsible for the figures every other one is read against.  wrk (from Debian) drives
the same nginx, configuration and files the poll benchmark uses, with one connection per
concurrent request slot and keep-alive, rotating over every URL of a kind through a Lua
script: feed documents (200), the same feeds with their ``If-None-Match`` validator (304)
and article pages (200).  One wrk thread and one nginx worker: on this 2-core machine each
gets a core, which is the best a single client process on the other core could see.
"""

from __future__ import annotations

import re
import subprocess
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.tools import Nginx, wrk_binary

LUA = """
local paths = {}
local etags = {}
local i = 0
function init(args)
  for line in io.lines(args[1]) do
    local p, e = line:match("^(%S+)%s*(.*)$")
    paths[#paths + 1] = p
    etags[#etags + 1] = e
  end
end
function request()
  i = i + 1
  local k = (i % #paths) + 1
  if etags[k] ~= "" then
    return wrk.format("GET", paths[k], { ["If-None-Match"] = etags[k] })
  end
  return wrk.format("GET", paths[k])
end
"""

_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_TPS = re.compile(r"Transfer/sec:\s+([\d.]+)(\w+)")
_NON2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_UNITS = {"B": 1e-6, "KB": 1e-3, "MB": 1.0, "GB": 1e3}


def _etag(url: str) -> str:
    req = urllib.request.Request(url, method="HEAD")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return str(resp.headers.get("ETag", ""))


def measure(
    nginx: Nginx, work: Path, paths: Sequence[str], *, conditional: bool, seconds: int, connections: int
) -> dict[str, Any]:
    lines = []
    for p in paths:
        etag = _etag(nginx.base_url + p) if conditional else ""
        lines.append(f"{p} {etag}".rstrip())
    work.mkdir(parents=True, exist_ok=True)
    (work / "paths.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (work / "rotate.lua").write_text(LUA, encoding="utf-8")
    argv = [
        wrk_binary(),
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "-s",
        str(work / "rotate.lua"),
        nginx.base_url,
        "--",
        str(work / "paths.txt"),
    ]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 30).stdout
    found = _RPS.search(out)
    rps = float(found.group(1)) if found else float("nan")
    tps = _TPS.search(out)
    mb_s = float(tps.group(1)) * _UNITS.get(tps.group(2), 1.0) if tps else float("nan")
    non = _NON2XX.search(out)
    return {"requests_per_s": rps, "mb_per_s": mb_s, "non_2xx_3xx": int(non.group(1)) if non else 0, "raw": out}


def run(
    nginx: Nginx,
    work: Path,
    feed_paths: Sequence[str],
    article_paths: Sequence[str],
    *,
    seconds: int,
    connections: int = 64,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Requests/s of nginx for feeds (200), feeds with validators (304) and article pages."""
    out: dict[str, Any] = {"tool": "wrk -t1", "connections": connections, "seconds": seconds}
    for name, paths, conditional in (
        ("feed_200", feed_paths, False),
        ("feed_304", feed_paths, True),
        ("article_200", article_paths, False),
    ):
        nginx.rotate_log()
        result = measure(nginx, work / name, paths, conditional=conditional, seconds=seconds, connections=connections)
        out[name] = result
        log(f"ceiling {name:12}: {result['requests_per_s']:9.0f} req/s, {result['mb_per_s']:7.1f} MB/s")
    nginx.rotate_log()
    return out
