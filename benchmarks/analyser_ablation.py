"""What each analyser change buys: rules eval with one change switched off at a time.

Responsible for the before/after figures of issue 14's analyser changes.  Each variant
runs in its own process (the analyser caches per word), switches one change off by
replacing the function that implements it with the analyser-v1 behaviour, and reports
precision and recall per language on ``tests/rules_eval/labels.jsonl`` with the bundled
config, and how many of ``tests/core/rule_cases.toml``'s cases hold.  Run it from the
checkout: ``.venv/bin/python benchmarks/analyser_ablation.py [CONFIG [LABELS]]``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("v2", "v1", "no-kiwi", "no-snowball", "no-arabic-article", "no-arabic-number")


def _switch_off(variant: str) -> None:
    from monitor.core import text

    def prefixes(key: str) -> tuple[str, ...]:
        return (key, *(key[:k] for k in range(len(key) - 1, 0, -1)))

    def identity(key: str) -> tuple[str, ...]:
        return (key,)

    if variant in ("v1", "no-kiwi"):
        text._hangul_forms = prefixes  # type: ignore[assignment]
    if variant in ("v1", "no-snowball"):
        text._en_forms = identity  # type: ignore[assignment]
    if variant in ("v1", "no-arabic-article"):
        text._arabic_alias_forms = identity  # type: ignore[assignment]
    if variant in ("v1", "no-arabic-number"):
        text._ARABIC_NUMBER_SUFFIXES = ()  # type: ignore[assignment]


def child(variant: str, config_file: str, labels_file: str) -> dict[str, object]:
    _switch_off(variant)
    from monitor.config import load_config
    from monitor.core.evaluation import RuleFilter, evaluate, parse_labels
    from monitor.core.models import Document
    from monitor.core.rules import make_matcher

    config = load_config(config_file)
    rules = [RuleFilter(r.name, r.languages, r.sources) for r in config.rules]
    labels = Path(labels_file)
    texts = parse_labels(labels.read_text(encoding="utf-8"), str(labels))
    matcher = make_matcher(config.terms, [(r.name, r.query) for r in config.rules], config.clauses)
    result = evaluate(matcher, rules, texts)
    cases = tomllib.loads((ROOT / "tests" / "core" / "rule_cases.toml").read_text(encoding="utf-8"))
    held = 0
    for case in cases["case"]:
        doc = Document(case.get("title", ""), case.get("body", ""), case["lang"] or None)
        held += bool(make_matcher(cases["terms"], [("r", case["rule"])]).match(doc)) == case["fires"]
    langs = {k: (v.precision, v.recall) for k, v in result.languages.items()}
    return {
        "variant": variant,
        "languages": langs,
        "overall": (result.overall.precision, result.overall.recall),
        "exact": result.exact,
        "cases": f"{held}/{len(cases['case'])}",
    }


def main() -> None:
    config_file = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "config.toml")
    labels_file = sys.argv[2] if len(sys.argv) > 2 else str(ROOT / "tests" / "rules_eval" / "labels.jsonl")
    print("| variant | en P/R | ar P/R | ru P/R | ko P/R | overall P/R | texts exact | rule_cases held |")
    print("|---|---|---|---|---|---|---|---|")
    for variant in VARIANTS:
        out = subprocess.run(
            [sys.executable, __file__, "--child", variant, config_file, labels_file],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        r = json.loads(out.stdout)

        def pr(p: list[float | None]) -> str:
            return "/".join("-" if x is None else f"{x:.3f}" for x in p)

        langs = r["languages"]
        print(
            f"| {variant} | {pr(langs['en'])} | {pr(langs['ar'])} | {pr(langs['ru'])} | {pr(langs['ko'])} "
            f"| {pr(r['overall'])} | {r['exact']} | {r['cases']} |"
        )


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        sys.path.insert(0, str(ROOT))
        print(json.dumps(child(sys.argv[2], sys.argv[3], sys.argv[4])))
    else:
        main()
