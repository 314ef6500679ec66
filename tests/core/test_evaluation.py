"""Tests for monitor.core.evaluation's pure parts: comparing two evaluations and pooling sets.

``evaluate`` itself and the command around it are tested through the real CLI in
``tests/rules_eval``; these pin what ``--against`` and several files rest on.
"""

from __future__ import annotations

from monitor.core.evaluation import RuleFilter, compare, evaluate, parse_labels, pool
from monitor.core.rules import make_matcher

TERMS = {"kim": ["Kim Jong Un", "김정은"], "putin": ["Putin", "푸틴"], "kursk": ["Kursk", "쿠르스크"]}
LABELS = "\n".join(
    [
        '{"id": "a", "language": "en", "text": "Kim Jong Un met Putin.", "expected": ["pair"]}',
        '{"id": "b", "language": "en", "text": "Putin visited Kursk.", "expected": []}',
        (
            '{"id": "c", "language": "ko", "text": "김정은 위원장이 푸틴 대통령과 쿠르스크를 논의했다.", '
            '"expected": ["pair", "kursk"]}'
        ),
    ]
)


def _run(rules: list[tuple[str, str]], labels: str = LABELS):
    texts = parse_labels(labels, "x.jsonl", [name for name, _ in rules])
    return evaluate(make_matcher(TERMS, rules), [RuleFilter(name) for name, _ in rules], texts)


def test_compare_names_the_disagreements_an_edit_added_and_removed() -> None:
    before = _run([("pair", "kim AND putin"), ("kursk", "kursk")])
    after = _run([("pair", "kim NEAR/0 putin"), ("kursk", "kursk AND kim")])
    assert {(d.text.id, d.rule, d.kind) for d in before.disagreements} == {("b", "kursk", "extra")}
    change = compare(before, after)
    assert [(d.text.id, d.rule, d.kind) for d in change.gained] == [
        ("a", "pair", "missed"),
        ("c", "pair", "missed"),
    ]
    assert [(d.text.id, d.rule, d.kind) for d in change.lost] == [("b", "kursk", "extra")]
    assert change.before is before and change.after is after
    # Nothing changes against itself.
    same = compare(after, after)
    assert same.gained == () and same.lost == ()


def test_pool_sums_every_count_and_keeps_every_disagreement() -> None:
    rules = [("pair", "kim AND putin"), ("kursk", "kursk")]
    first = _run(rules, LABELS)
    second = _run(rules, '{"id": "d", "language": "ar", "text": "بوتين", "expected": ["pair"]}\n')
    pooled = pool([first, second])
    assert pooled.texts == 4 and pooled.exact == first.exact + second.exact
    assert pooled.overall.tp == first.overall.tp + second.overall.tp
    assert pooled.overall.fn == first.overall.fn + second.overall.fn == 1
    assert list(pooled.languages) == ["ar", "en", "ko"]
    assert pooled.rules["pair"].fn == 1 and pooled.rules["kursk"].fp == 1
    assert pooled.disagreements == first.disagreements + second.disagreements
    assert pool([]).texts == 0 and pool([]).overall.precision is None
