"""The client choice behind crawler/poller.py: aiohttp against pycurl's multi interface, bare.

Each mode sends one conditional GET (``If-None-Match``) per URL of the generated web,
``--concurrency`` at a time over keep-alive connections, reads the (empty) 304 and moves
on: no parsing, no policy, so the figure is the client's own cost.  Prints one JSON line
with requests, statuses, wall and CPU seconds.  Run by :mod:`benchmarks.bench_poller`.
Usage: ``python -m benchmarks.probe_clients STATE_FILE aiohttp|pycurl [--concurrency 64]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from io import BytesIO
from pathlib import Path
from typing import Any

import aiohttp
import pycurl


async def run_aiohttp(validators: dict[str, str], concurrency: int) -> Counter[int]:
    statuses: Counter[int] = Counter()
    queue = list(validators.items())
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:

        async def worker() -> None:
            while queue:
                url, etag = queue.pop()
                async with session.get(url, headers={"If-None-Match": etag}, allow_redirects=False) as resp:
                    await resp.read()
                    statuses[resp.status] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


def run_pycurl(validators: dict[str, str], concurrency: int) -> Counter[int]:
    statuses: Counter[int] = Counter()
    queue = list(validators.items())
    multi = pycurl.CurlMulti()
    multi.setopt(pycurl.M_MAX_HOST_CONNECTIONS, concurrency)
    free = []
    for _ in range(concurrency):
        handle = pycurl.Curl()
        handle.setopt(pycurl.NOSIGNAL, 1)
        handle.setopt(pycurl.TIMEOUT, 30)
        free.append(handle)
    active = 0
    buffers: dict[Any, BytesIO] = {}
    while queue or active:
        while queue and free:
            url, etag = queue.pop()
            handle = free.pop()
            buf = BytesIO()
            buffers[handle] = buf
            handle.setopt(pycurl.URL, url)
            handle.setopt(pycurl.HTTPHEADER, [f"If-None-Match: {etag}"])
            handle.setopt(pycurl.WRITEDATA, buf)
            multi.add_handle(handle)
            active += 1
        while True:
            ret, _ = multi.perform()
            if ret != pycurl.E_CALL_MULTI_PERFORM:
                break
        while True:
            _queued, done, failed = multi.info_read()
            for handle in done:
                statuses[handle.getinfo(pycurl.RESPONSE_CODE)] += 1
                multi.remove_handle(handle)
                free.append(handle)
                active -= 1
            for handle, _errno, _message in failed:
                statuses[0] += 1
                multi.remove_handle(handle)
                free.append(handle)
                active -= 1
            if not _queued:
                break
        if active:
            multi.select(1.0)
    return statuses


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("state", type=Path)
    p.add_argument("client", choices=("aiohttp", "pycurl"))
    p.add_argument("--concurrency", type=int, default=64)
    args = p.parse_args()
    state = json.loads(args.state.read_text(encoding="utf-8"))
    validators = {url: v["etag"] for url, v in state.items() if v.get("etag")}
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if args.client == "aiohttp":
        statuses = asyncio.run(run_aiohttp(validators, args.concurrency))
    else:
        statuses = run_pycurl(validators, args.concurrency)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    print(json.dumps({"requests": sum(statuses.values()), "statuses": dict(statuses), "wall": wall, "cpu": cpu}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
