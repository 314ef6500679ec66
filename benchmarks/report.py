"""Write the benchmark results as Markdown: medians, ratios to reader and to the nginx ceiling.

Responsible for presentation only.  The generated tables go between two marker comments in
RESULTS.md, so the hand-written analysis around them (bottlenecks, what is thin) survives a
re-run.  Ratios: "× reader" is reader's wall time over the tool's for the same poll of the
same web (above 1 = faster than reader); "nginx busy" is the share of the run's wall time
nginx alone would have needed to serve the same requests at its measured ceiling rates
(sum over request kinds of count / ceiling rate, over wall time): 100 % would mean the
server, not the client, sets the pace.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

BEGIN = "<!-- BEGIN GENERATED: benchmarks/run.py rewrites this part -->"
END = "<!-- END GENERATED -->"


def _median(values: Iterable[float]) -> float:
    vals = [v for v in values if v == v]  # drop NaN
    return statistics.median(vals) if vals else float("nan")


def _fmt(value: float, digits: int = 0) -> str:
    if value != value:  # NaN
        return "–"
    return f"{value:,.{digits}f}"


def poll_medians(records: list[dict[str, Any]]) -> dict[tuple[str, int, int, str], dict[str, float]]:
    groups: dict[tuple[str, int, int, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[(r["tool"], r["feeds"], r["items_per_feed"], r["scenario"])].append(r)
    out = {}
    for key, rows in groups.items():
        med = {
            k: _median(float(r[k]) for r in rows)
            for k in ("wall", "cpu", "rss_mib", "new_items", "feed_200", "feed_304", "articles", "errors")
        }
        med["runs"] = len(rows)
        med["timed_out"] = float(any(r["timed_out"] for r in rows))
        med["spread"] = (
            (max(r["wall"] for r in rows) - min(r["wall"] for r in rows)) / med["wall"] if med["wall"] else 0
        )
        out[key] = med
    return out


def nginx_busy(med: dict[str, float], ceiling: dict[str, Any] | None) -> float:
    if not ceiling or not med["wall"]:
        return float("nan")
    rate = {k: float(ceiling[k]["requests_per_s"]) for k in ("feed_200", "feed_304", "article_200")}
    seconds = (
        med["feed_200"] / rate["feed_200"] + med["feed_304"] / rate["feed_304"] + med["articles"] / rate["article_200"]
    )
    return seconds / med["wall"]


def poll_section(results: dict[str, Any]) -> list[str]:
    records = results.get("poll") or []
    if not records:
        return []
    ceiling = results.get("ceiling")
    med = poll_medians(records)
    lines = ["## Poll: cold, warm (all 304), after 5 % of feeds gained 3 items", ""]
    lines.append(
        "wirewatch: `run --once`, SQLite, concurrency 64, per_host 64 (every feed is on 127.0.0.1), host_delay 0, "
        "robots off, three rules, a webhook subscriber.  reader: `update_feeds(scheduled=False, workers="
        "1)`.  feedparser loop: `feedparser.parse(url, etag=, modified=)` one feed after another, no store.  "
        'Wall, CPU and RSS include process start-up.  For the plain loop "items" are entries parsed (it has no '
        "store to tell new from old)."
    )
    lines.append("")
    start = results.get("startup")
    if start:
        lines.append(
            "Fixed cost of one poll process (a warm poll of a single feed, median of 3): "
            + "; ".join(
                f"{k} {v['wall']:.2f} s wall, {v['cpu']:.2f} s CPU, {v['rss_mib']:.0f} MiB" for k, v in start.items()
            )
            + "."
        )
        lines.append("")
    scales = sorted({(k[1], k[2]) for k in med})
    for feeds, items in scales:
        runs = max(int(v["runs"]) for k, v in med.items() if k[1] == feeds)
        lines += [
            f"### {feeds:,} feeds × {items} items (median of up to {runs} run{'s' if runs > 1 else ''}; n = runs)",
            "",
            (
                "| tool | poll | n | wall s | feeds/s | new items/s | CPU s / 1k items | peak RSS MiB "
                "| feed 200 / 304 / pages "
                "| × reader | nginx busy |"
            ),
            "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|",
        ]
        tools = sorted({k[0] for k in med if k[1] == feeds}, key=_tool_order)
        for scenario in ("cold", "warm", "wave"):
            reader = med.get(("reader", feeds, items, scenario))
            for tool in tools:
                m = med.get((tool, feeds, items, scenario))
                if m is None:
                    continue
                polled = m["feed_200"] + m["feed_304"]
                ratio = reader["wall"] / m["wall"] if reader and m["wall"] else float("nan")
                flag = " ⏱" if m["timed_out"] else ""
                lines.append(
                    f"| {tool} | {scenario}{flag} | {int(m['runs'])} | {_fmt(m['wall'], 1)} | "
                    f"{_fmt(polled / m['wall'])} | "
                    f"{_fmt(m['new_items'] / m['wall'])} | "
                    f"{_fmt(1000 * m['cpu'] / m['new_items'], 2) if m['new_items'] else '–'} | {_fmt(m['rss_mib'])} | "
                    f"{int(m['feed_200'])} / {int(m['feed_304'])} / {int(m['articles'])} | {_fmt(ratio, 2)}× | "
                    f"{_fmt(100 * nginx_busy(m, ceiling), 1)} % |"
                )
        lines.append("")
        spreads = [v["spread"] for k, v in med.items() if k[1] == feeds and v["runs"] > 1]
        if spreads:
            lines.append(f"Run-to-run spread of wall time (max − min over median): up to {max(spreads):.0%}.")
            lines.append("")
    return lines


def _tool_order(tool: str) -> tuple[int, str]:
    order = {"wirewatch": 0, "wirewatch (feeds only)": 1, "reader": 2, "feedparser loop": 3}
    return order.get(tool, 9), tool


def ceiling_section(results: dict[str, Any]) -> list[str]:
    c = results.get("ceiling")
    if not c:
        return []
    lines = [
        "## Ceiling: nginx on loopback",
        "",
        (
            f"`wrk -t1 -c{c['connections']} -d{c['seconds']}s` with a Lua script rotating over every URL of the kind "
            "(one nginx worker, keep-alive, access log on, as in every other run)."
        ),
        "",
        "| requests | req/s | MB/s |",
        "|---|---:|---:|",
    ]
    for key, label in (
        ("feed_200", "feed documents, 200"),
        ("feed_304", "feeds with If-None-Match, 304"),
        ("article_200", "article pages, 200"),
    ):
        lines.append(f"| {label} | {_fmt(c[key]['requests_per_s'])} | {_fmt(c[key]['mb_per_s'], 1)} |")
    return [*lines, ""]


def latency_section(results: dict[str, Any]) -> list[str]:
    rows = results.get("latency") or []
    if not rows:
        return []
    lines = [
        "## Latency: item appears in a feed → alert arrives",
        "",
        (
            "The daemon (`wirewatch run`) polls 20 feeds; one new matching item appears in each at a random moment; "
            "arrival is timed at a local aiosmtpd server and a webhook receiver (Apprise `mailto://` and `json://`). "
            "*Wait for poll* is appear → nginx served the changed feed; *pipeline* is that fetch → arrival. "
            "`adaptive = false` so the interval is the one configured."
        ),
        "",
        (
            "| interval | items | email p50 / p95 s | webhook p50 / p95 s | wait for poll p50 / p95 s | "
            "pipeline (webhook) p50 / p95 s | pipeline (email) p50 / p95 s |"
        ),
        "|---|---:|---|---|---|---|---|",
    ]
    for r in rows:

        def pair(key: str, row: dict[str, Any] = r) -> str:
            return f"{_fmt(row[key]['p50'], 2)} / {_fmt(row[key]['p95'], 2)}"

        lines.append(
            f"| {r['interval']} | {r['email_arrived']}/{r['items']} | {pair('email')} | {pair('webhook')} | "
            f"{pair('wait_for_poll')} | {pair('pipeline_webhook')} | {pair('pipeline_email')} |"
        )
    return [*lines, ""]


def matching_section(results: dict[str, Any]) -> list[str]:
    m = results.get("matching")
    if not m:
        return []
    lines = [
        "## Matching: `make_matcher` rules vs one `re` alternation",
        "",
        (
            "Generated articles (title + full text, en/ar/ru/ko in turn); rules: the topic's four, then generated "
            "concepts (one three-word alias per language) in AND / title: OR / NEAR/8 / AND NOT shapes. "
            "The `re` baseline only finds alias occurrences (word boundaries by look-around, IGNORECASE): no boolean "
            "evaluation, no inflected forms.  MB = UTF-8 bytes of title + body."
        ),
        "",
        (
            "| rules | aliases | compile s | matcher MB/s | re compile s | re MB/s | matcher ÷ re | rules fired / doc "
            "| docs covered |"
        ),
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for _key, r in sorted(m.items(), key=lambda kv: int(kv[0])):
        ours, base = r["matcher"], r["re"]
        ratio = ours["mb_per_s"] / base["mb_per_s"] if base["mb_per_s"] else float("nan")
        lines.append(
            f"| {r['rules']:,} | {r['aliases']:,} | {_fmt(r['compile_s'], 2)} | {_fmt(ours['mb_per_s'], 2)} | "
            f"{_fmt(r['re_compile_s'], 2)} | {_fmt(base['mb_per_s'], 2)} | {_fmt(ratio, 2)}× | "
            f"{_fmt(ours['hits_per_doc'], 2)} | {ours['coverage']:.0%} / {base['coverage']:.0%} |"
        )
    return [*lines, ""]


def cpu_section(results: dict[str, Any]) -> list[str]:
    c = results.get("cpu")
    if not c:
        return []
    per = c["per_1000"]
    feeds, items = c["feeds"], c["items_per_feed"]
    med = poll_medians(results.get("poll", []))
    reader = med.get(("reader", feeds, items, "cold"))
    ours = med.get(("wirewatch (feeds only)", feeds, items, "cold"))

    def per_1000(m: dict[str, float] | None) -> float:
        return m["cpu"] / m["new_items"] * 1000 if m and m["new_items"] else float("nan")

    addition = per["matching"] + per["fingerprints"] + per["story assignment"]
    allowance = per_1000(reader) + addition
    return [
        "## CPU per 1,000 new items: what we add to storing them",
        "",
        (
            f"`bench_cpu.py`: the {feeds:,} × {items} web's feed files parsed and ingested into a fresh SQLite "
            f"database in batches of {c['batch']} polls, inline in one thread (no CPU workers), with the poll "
            "benchmark's config; thread CPU seconds per 1,000 new items, by part.  Matching and clustering "
            "(fingerprints and story assignment) are what wirewatch does on top of storing entries; reader's "
            "and wirewatch's own figures are the cold polls above (feeds only, the whole process tree)."
        ),
        "",
        "| | CPU s per 1,000 new items |",
        "|---|---:|",
        f"| matching (`match_hits`) | {_fmt(per['matching'], 2)} |",
        f"| fingerprints (`make_fingerprint`, `near_signature`: MinHash) | {_fmt(per['fingerprints'], 2)} |",
        f"| story assignment (`prefetch`, `assign_entries`) | {_fmt(per['story assignment'], 2)} |",
        f"| **the addition** (matching + clustering) | **{_fmt(addition, 2)}** |",
        f"| the rest of ingest (normalising, reads, items, sources) | {_fmt(per['rest of ingest'], 2)} |",
        f"| parsing (the fast path) | {_fmt(per['parsing'], 2)} |",
        f"| reader, cold {feeds:,} × {items} (poll part) | {_fmt(per_1000(reader), 2)} |",
        f"| **allowance**: reader + the addition | **{_fmt(allowance, 2)}** |",
        (
            f"| wirewatch (feeds only), cold {feeds:,} × {items} (poll part) | {_fmt(per_1000(ours), 2)} "
            f"({_fmt(per_1000(ours) / allowance, 2)}× the allowance) |"
        ),
        "",
    ]


def profile_section(results: dict[str, Any]) -> list[str]:
    prof = results.get("profile")
    if not prof:
        return []
    lines = [
        "## Where wirewatch's time goes (py-spy, all threads, busy samples)",
        "",
        (
            "A sample counts for the first stage its stack passes through, in the order listed "
            "(see `profiles.WIREWATCH_STAGES`); profiled runs are slower than measured ones."
        ),
        "",
    ]
    keys = list(prof)
    stages = list(next(iter(prof.values()))["stages"]) if prof else []
    lines.append("| stage | " + " | ".join(keys) + " |")
    lines.append("|---|" + "---:|" * len(keys))
    for stage in stages:
        lines.append(f"| {stage} | " + " | ".join(f"{prof[k]['stages'].get(stage, 0):.0%}" for k in keys) + " |")
    lines.append("")
    lines.append("")
    lines.append("Busy samples by the innermost wirewatch function on the stack (library time charged to its caller):")
    lines.append("")
    for k in keys:
        ours = ", ".join(f"`{name}` {share:.0%}" for name, share in prof[k].get("ours", [])[:10] if share >= 0.01)
        lines.append(f"- {k}: {ours}")
    lines.append("")
    for k in keys:
        p = prof[k]
        if "sqlite_lock_wait_s" in p:
            lines.append(
                f"- {k}: profiled wall {p['wall']:.1f} s; threads asleep in SQLite's busy handler (write lock held by "
                f"another ingest thread) {p['sqlite_lock_wait_s']:.1f} thread-s; "
                f"waiting for the GIL {p['gil_wait_s']:.1f} thread-s"
            )
    return [*lines, ""]


def dedupe_section(results: dict[str, Any]) -> list[str]:
    d = results.get("dedupe")
    if not d:
        return []
    lines = ["## Dedupe cost per item (benchmarks/dedupe_bench.py, another engineer's)", ""]
    if d.get("markdown"):
        body = d["markdown"].strip().splitlines()
        lines += ["Included from `benchmarks/results/dedupe.md`:", ""]
        lines += [("#" + ln if ln.startswith("#") else ln) for ln in body]
    elif not d.get("script"):
        lines.append("Not measured in this run: `benchmarks/dedupe_bench.py` is not in the tree yet.")
    else:
        lines.append(f"`dedupe_bench.py` ran (exit {d.get('returncode')}) but wrote no `benchmarks/results/dedupe.md`.")
    return [*lines, ""]


def header(results: dict[str, Any]) -> list[str]:
    m = results["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in results.get("versions", {}).items())
    load = ", ".join(f"{x:.2f}" for x in m.get("load_at_start", ()))
    return [
        (
            f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Linux {m['kernel']}.  "
            f"Last invocation: {results['started']}, code {results['commit']}, load average at start {load}, "
            f"{results.get('seconds', 0) / 60:.1f} min (a run of some parts keeps the other parts' last results)."
        ),
        "",
        f"Versions: {versions}.",
        "",
        "Parts (when, code, 1-min load average at start): "
        + "; ".join(f"{k}: {v}" for k, v in results.get("parts", {}).items())
        + ".",
        "",
        (
            f"`[fetch]` extras this tree accepted: `{results.get('fetch_extra')}` "
            "(the latency runs use them; `full_text_max` is left at its default)."
        ),
        "",
    ]


def render(results: dict[str, Any]) -> str:
    lines = header(results)
    for section in (
        ceiling_section,
        poll_section,
        cpu_section,
        latency_section,
        matching_section,
        profile_section,
        dedupe_section,
    ):
        lines += section(results)
    return "\n".join(lines).rstrip() + "\n"


def write(path: Path, results: dict[str, Any], *, generated_only: bool = False) -> None:
    """Replace the generated part of ``path`` (or write it whole if it has no markers yet)."""
    generated = f"{BEGIN}\n\n{render(results)}\n{END}"
    if generated_only or not path.exists():
        title = "# wirewatch benchmarks: results\n\n"
        path.write_text(title + generated + "\n", encoding="utf-8")
        return
    text = path.read_text(encoding="utf-8")
    if BEGIN in text and END in text:
        before, _, rest = text.partition(BEGIN)
        _, _, after = rest.partition(END)
        path.write_text(before + generated + after, encoding="utf-8")
    else:
        path.write_text(text.rstrip() + "\n\n" + generated + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Re-render RESULTS.md from a results.json without measuring anything."""
    import argparse
    import json

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("results", type=Path, help="e.g. benchmarks/work/full/results.json")
    p.add_argument("out", type=Path, help="e.g. benchmarks/RESULTS.md")
    args = p.parse_args(argv)
    write(args.out, json.loads(args.results.read_text(encoding="utf-8")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
