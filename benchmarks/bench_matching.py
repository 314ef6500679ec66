"""Matching benchmark: MB/s of ``monitor.core.rules`` at 10, 1,000 and 10,000 rules, beside ``re``.

Responsible for the matching figures.  The parent (``run``) builds the documents (title and
full text of generated articles in four languages) and the rule sets, and hands them as a
JSON file to a child process that runs this same file with ``--child`` and imports only
``monitor.core`` from the tree being measured (so a snapshot of a commit can be measured
while the working tree changes).  Per rule count the child reports the compile time of
``make_matcher``, MB/s of ``Matcher.match`` over the documents (UTF-8 bytes of title and
body), hits per document, and the same for a baseline: one stdlib ``re`` alternation of
every alias with word-boundary look-arounds, which finds keyword occurrences only (no
boolean evaluation, no inflection) — so the baseline does strictly less work.
Each measurement stops at a time bound; the fraction of the documents it covered is kept.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

TOPIC_TERMS = {
    "kim_jong_un": ["Kim Jong Un", "Kim Jong-un", "كيم جونغ أون", "Ким Чен Ын", "김정은"],
    "putin": ["Putin", "بوتين", "Путин", "푸틴"],
    "kursk": ["Kursk", "كورسك", "Курск", "쿠르스크"],
    "troops": ["troops", "soldiers", "جنود", "قوات", "войска", "военные", "солдаты", "병력", "파병", "군인"],
}
TOPIC_RULES = [
    ("nk-russia-troops", 'kim_jong_un AND putin AND (kursk OR troops) AND NOT "Kim Kardashian"'),
    ("kim-putin", "kim_jong_un NEAR/30 putin"),
    ("kursk", "title:kursk OR (kursk AND troops)"),
    ("putin", "putin"),
]


def make_rules(
    count: int, words: Mapping[str, Sequence[str]], seed: int = 7
) -> tuple[dict[str, list[str]], list[tuple[str, str]]]:
    """``count`` rules (the topic's four first) and the terms they use.

    Each generated concept has one alias per language, each a three-word phrase of that
    language's news vocabulary, so a rule fires on a realistic few per cent of documents.
    Queries rotate through AND, OR with a title scope, NEAR and AND NOT.
    """
    rng = random.Random(seed)
    terms: dict[str, list[str]] = {k: list(v) for k, v in TOPIC_TERMS.items()}
    rules: list[tuple[str, str]] = list(TOPIC_RULES[: min(count, len(TOPIC_RULES))])
    concepts = max(2, count)
    for i in range(concepts):
        terms[f"c{i}"] = [" ".join(rng.sample(list(words[lang]), 3)) for lang in sorted(words)]
    for i in range(len(rules), count):
        a, b, c = f"c{i}", f"c{rng.randrange(concepts)}", f"c{rng.randrange(concepts)}"
        shape = i % 4
        if shape == 0:
            query = f"{a} AND ({b} OR putin)"
        elif shape == 1:
            query = f"title:{a} OR ({b} AND {c})"
        elif shape == 2:
            query = f"{a} NEAR/8 {b}"
        else:
            query = f"({a} OR {b}) AND NOT {c}"
        rules.append((f"r{i}", query))
    return terms, rules


def make_documents(count: int, seed: int = 1) -> list[tuple[str, str, str]]:
    """(title, body, language) of ``count`` generated articles, all four languages in turn."""
    from benchmarks import gen_web

    params = gen_web.WebParams(max(1, count // 10), 10, seed, "http://127.0.0.1:1", gen_web.DEFAULT_EPOCH)
    docs = []
    for n in range(count):
        item = gen_web.make_item(params, n % params.feeds, n // params.feeds)
        docs.append((item.title, "\n\n".join(item.paragraphs), gen_web.feed_language(item.feed)))
    return docs


# --------------------------------------------------------------------------- child


def _timed_loop(
    docs: Sequence[tuple[str, str, str]], fn: Callable[[tuple[str, str, str]], int], limit: float
) -> dict[str, float]:
    done = hits = size = 0
    start = time.perf_counter()
    for doc in docs:
        hits += fn(doc)
        size += len(doc[0].encode()) + len(doc[1].encode())
        done += 1
        if time.perf_counter() - start > limit:
            break
    elapsed = time.perf_counter() - start
    return {
        "docs": done,
        "coverage": done / len(docs),
        "mb": size / 1e6,
        "seconds": elapsed,
        "mb_per_s": size / 1e6 / elapsed if elapsed else 0.0,
        "docs_per_s": done / elapsed if elapsed else 0.0,
        "hits_per_doc": hits / done if done else 0.0,
    }


def child(spec: dict[str, Any]) -> dict[str, Any]:
    import re

    from monitor.core.models import Document
    from monitor.core.rules import make_matcher

    docs: list[tuple[str, str, str]] = [(d[0], d[1], d[2]) for d in spec["docs"]]
    limit = float(spec["time_limit"])
    out: dict[str, Any] = {}
    for count, payload in spec["rule_sets"].items():
        terms = payload["terms"]
        rules = [tuple(r) for r in payload["rules"]]
        t0 = time.perf_counter()
        matcher = make_matcher(terms, rules)
        compile_s = time.perf_counter() - t0
        # Warm the per-token caches the way a long-running daemon has them warm.
        for d in docs[:50]:
            matcher.match(Document(d[0], d[1], d[2]))

        def run_matcher(d: tuple[str, str, str], m: Any = matcher) -> int:
            return len(m.match(Document(d[0], d[1], d[2])))

        ours = _timed_loop(docs, run_matcher, limit)

        aliases = sorted({a for t in terms.values() for a in t}, key=len, reverse=True)
        t0 = time.perf_counter()
        pattern = re.compile(r"(?<!\w)(?:" + "|".join(re.escape(a) for a in aliases) + r")(?!\w)", re.IGNORECASE)
        re_compile_s = time.perf_counter() - t0

        def run_re(d: tuple[str, str, str], p: re.Pattern[str] = pattern) -> int:
            return len(p.findall(d[0])) + len(p.findall(d[1]))

        baseline = _timed_loop(docs, run_re, limit)
        out[count] = {
            "rules": len(rules),
            "aliases": len(aliases),
            "compile_s": compile_s,
            "matcher": ours,
            "re_compile_s": re_compile_s,
            "re": baseline,
        }
        print(
            f"  {len(rules):6} rules: matcher {ours['mb_per_s']:6.2f} MB/s (compile {compile_s:.2f}s), "
            f"re {baseline['mb_per_s']:6.2f} MB/s (compile {re_compile_s:.2f}s)",
            file=sys.stderr,
        )
    return out


# --------------------------------------------------------------------------- parent


def run(
    tree: Path,
    work: Path,
    counts: Sequence[int],
    docs: int,
    time_limit: float,
    python: Path,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Measure every rule count in one child process running the code in ``tree``."""
    from benchmarks import gen_web
    from benchmarks.harness import run_child

    documents = make_documents(docs)
    spec: dict[str, Any] = {"docs": documents, "time_limit": time_limit, "rule_sets": {}}
    for n in counts:
        terms, rules = make_rules(n, gen_web.WORDS)
        spec["rule_sets"][str(n)] = {"terms": terms, "rules": rules}
    work.mkdir(parents=True, exist_ok=True)
    spec_file = work / "matching-spec.json"
    spec_file.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    log(f"matching: {len(documents)} documents, {sum(len(t) + len(b) for t, b, _ in documents) / 1e6:.1f}M characters")
    return run_child(Path(__file__).resolve(), [str(spec_file)], tree, python, log, "matching")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        # Run by path: this folder is sys.path[0]; the measured tree comes from PYTHONPATH.
        if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
            sys.path.pop(0)
        result = child(json.loads(Path(sys.argv[2]).read_text(encoding="utf-8")))
        print(json.dumps(result))
        raise SystemExit(0)
    raise SystemExit("run through benchmarks/run.py (or pass --child SPEC)")
