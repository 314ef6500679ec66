"""Scoring rules against a labelled set of texts: precision, recall and every disagreement.

Responsible for reading a labelled file's *contents* (JSON Lines or TOML, already read
into a string by the caller), running compiled rules over each text exactly as ingest
would (same :class:`~monitor.core.rules.Matcher`, same ``languages`` filter), and
counting, over (text, rule) pairs, what fired and was expected (true positive), fired
and was not (false positive) and was expected but did not fire (false negative), per
rule, per language and overall.  Every disagreement keeps the spans that made a rule
fire, or for a miss the terms that were found, so an analyst sees *why*.  Pure: it must
not read files, the clock or the network, and it must not print; the CLI does that.

A labelled text is one object (a JSONL line, or a ``[[text]]`` table in TOML)::

    {"id": "en-01", "language": "en", "title": "...", "body": "...",
     "expected": ["kim-putin"], "url": "https://...", "note": "why it is here",
     "outlet": "Reuters", "date": "2025-06-19"}

``text`` may stand for ``body`` (the title is then empty: a text without a headline is
matched like an item whose feed gave no title).  ``expected`` lists the rules an analyst
says must fire; every other rule must not.  ``source`` (a source name) is optional: a
rule's ``sources`` filter is applied only to texts that name one.  ``outlet`` and ``date``
(where the text was published, and when) are provenance only: checked to be strings and
otherwise ignored.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from monitor.core.models import Document, Span
from monitor.core.rules import Matcher
from monitor.errors import ConfigError, ConfigProblem

__all__ = [
    "Comparison",
    "Disagreement",
    "Evaluation",
    "LabelledText",
    "RuleFilter",
    "Score",
    "compare",
    "evaluate",
    "parse_labels",
    "pool",
]

_KEYS = frozenset({"id", "language", "title", "body", "text", "expected", "url", "note", "source", "outlet", "date"})


@dataclass(frozen=True, slots=True)
class LabelledText:
    """One text and the rules an analyst says must fire on it."""

    id: str
    language: str
    title: str
    body: str
    expected: frozenset[str]
    url: str = ""
    note: str = ""
    source: str = ""


@dataclass(frozen=True, slots=True)
class RuleFilter:
    """The part of a rule's config that decides whether it applies to a text."""

    name: str
    languages: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()

    def applies(self, text: LabelledText) -> bool:
        if self.languages and text.language not in self.languages:
            return False
        return not (self.sources and text.source and text.source not in self.sources)


@dataclass(frozen=True, slots=True)
class Score:
    """Counts over (text, rule) pairs; precision/recall are ``None`` when undefined (0/0)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    def add(self, tp: int, fp: int, fn: int) -> Score:
        return Score(self.tp + tp, self.fp + fp, self.fn + fn)


@dataclass(frozen=True, slots=True)
class Disagreement:
    """A rule that fired where it should not (``extra``) or did not where it should (``missed``).

    ``spans`` are the rule's own spans for an extra, and the spans of the terms found in
    the text for a miss (``terms`` names them), so the output can mark the words.
    """

    text: LabelledText
    rule: str
    kind: Literal["extra", "missed"]
    spans: tuple[Span, ...] = ()
    terms: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Evaluation:
    texts: int
    rules: Mapping[str, Score]
    languages: Mapping[str, Score]
    overall: Score
    exact: int  # texts on which every rule's verdict was right
    disagreements: tuple[Disagreement, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Comparison:
    """What changing the rules did to one labelled set: the disagreements it added and removed.

    A disagreement is the same in both when its text, rule and kind are: ``gained`` are the
    new rules' disagreements the old ones did not have (with the new rules' spans), ``lost``
    the old rules' that the new ones no longer have.
    """

    before: Evaluation
    after: Evaluation
    gained: tuple[Disagreement, ...]
    lost: tuple[Disagreement, ...]


def compare(before: Evaluation, after: Evaluation) -> Comparison:
    """The change from ``before`` to ``after``, two evaluations of the same texts."""

    def key(d: Disagreement) -> tuple[str, str, str]:
        return (d.text.id, d.rule, d.kind)

    old = {key(d) for d in before.disagreements}
    new = {key(d) for d in after.disagreements}
    return Comparison(
        before,
        after,
        tuple(d for d in after.disagreements if key(d) not in old),
        tuple(d for d in before.disagreements if key(d) not in new),
    )


def pool(evaluations: Sequence[Evaluation]) -> Evaluation:
    """Several sets scored as one: counts summed per rule, per language and overall."""
    rules: dict[str, Score] = {}
    languages: dict[str, Score] = {}
    overall = Score()
    for e in evaluations:
        for name, score in e.rules.items():
            rules[name] = rules.get(name, Score()).add(score.tp, score.fp, score.fn)
        for lang, score in e.languages.items():
            languages[lang] = languages.get(lang, Score()).add(score.tp, score.fp, score.fn)
        overall = overall.add(e.overall.tp, e.overall.fp, e.overall.fn)
    return Evaluation(
        texts=sum(e.texts for e in evaluations),
        rules=rules,
        languages=dict(sorted(languages.items())),
        overall=overall,
        exact=sum(e.exact for e in evaluations),
        disagreements=tuple(d for e in evaluations for d in e.disagreements),
    )


def parse_labels(content: str, file: str, known_rules: Iterable[str] = ()) -> list[LabelledText]:
    """Parse a labelled file's contents (TOML when ``file`` ends in ``.toml``, else JSONL).

    Raises :class:`ConfigError` listing every problem (line or table number, field), so a
    typo in an expected rule name is a usage error, not a silent false negative.
    """
    problems: list[ConfigProblem] = []
    raw: list[tuple[str, Any]] = []
    if file.endswith(".toml"):
        try:
            data = tomllib.loads(content)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([ConfigProblem(file, "file", f"invalid TOML: {exc}")]) from None
        tables = data.get("text", [])
        if not isinstance(tables, list):
            raise ConfigError([ConfigProblem(file, "text", "write each text as a [[text]] table")])
        raw = [(f"text[{i}]", t) for i, t in enumerate(tables)]
    else:
        for lineno, line in enumerate(content.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                raw.append((f"line {lineno}", json.loads(line)))
            except json.JSONDecodeError as exc:
                problems.append(ConfigProblem(file, f"line {lineno}", f"not JSON: {exc.msg} (column {exc.colno})"))
    known = frozenset(known_rules)
    out: list[LabelledText] = []
    seen: set[str] = set()
    for where, obj in raw:
        text = _one(obj, where, file, known, problems)
        if text is None:
            continue
        if text.id in seen:
            problems.append(ConfigProblem(file, where, f"duplicate id {text.id!r}"))
        seen.add(text.id)
        out.append(text)
    if not out and not problems:
        problems.append(ConfigProblem(file, "file", "no labelled texts"))
    if problems:
        raise ConfigError(problems)
    return out


def _one(obj: Any, where: str, file: str, known: frozenset[str], problems: list[ConfigProblem]) -> LabelledText | None:
    def bad(message: str) -> None:
        problems.append(ConfigProblem(file, where, message))

    if not isinstance(obj, dict):
        bad("a labelled text is an object")
        return None
    for key in obj:
        if key not in _KEYS:
            bad(f"unknown key {key!r} (keys: {', '.join(sorted(_KEYS))})")
    strings = {}
    for key in ("id", "language", "title", "body", "text", "url", "note", "source", "outlet", "date"):
        value = obj.get(key, "")
        if not isinstance(value, str):
            bad(f"{key} must be a string")
            value = ""
        strings[key] = value
    if strings["text"] and strings["body"]:
        bad("give either text or body, not both")
    body = strings["body"] or strings["text"]
    if not body.strip() and not strings["title"].strip():
        bad("no text: give text, or title and body")
    if not strings["language"]:
        bad("language is required (an ISO 639-1 code such as en, ar, ru, ko)")
    expected = obj.get("expected")
    if not isinstance(expected, list) or not all(isinstance(r, str) for r in expected):
        bad("expected must be a list of rule names ([] when no rule may fire)")
        expected = []
    if known:
        for name in expected:
            if name not in known:
                bad(f"expected names unknown rule {name!r}")
    return LabelledText(
        id=strings["id"] or where,
        language=strings["language"],
        title=strings["title"],
        body=body,
        expected=frozenset(expected),
        url=strings["url"],
        note=strings["note"],
        source=strings["source"],
    )


def evaluate(
    matcher: Matcher,
    rules: Sequence[RuleFilter],
    texts: Sequence[LabelledText],
    terms: Matcher | None = None,
) -> Evaluation:
    """Score ``matcher``'s rules on ``texts``.

    ``rules`` are the rules' filters, in config order; ``terms`` is an optional matcher
    with one rule per term (its name), used only to explain misses.
    """
    by_rule = {r.name: Score() for r in rules}
    by_lang: dict[str, Score] = {}
    overall = Score()
    exact = 0
    out: list[Disagreement] = []
    for text in texts:
        doc = Document(text.title, text.body, text.language)
        hits = {h.rule: h for h in matcher.match(doc)}
        found: tuple[tuple[str, tuple[Span, ...]], ...] | None = None
        right = True
        lang = by_lang.get(text.language, Score())
        for rule in rules:
            fired = rule.name in hits and rule.applies(text)
            wanted = rule.name in text.expected
            tp, fp, fn = int(fired and wanted), int(fired and not wanted), int(wanted and not fired)
            by_rule[rule.name] = by_rule[rule.name].add(tp, fp, fn)
            lang = lang.add(tp, fp, fn)
            overall = overall.add(tp, fp, fn)
            if fp:
                out.append(Disagreement(text, rule.name, "extra", hits[rule.name].spans))
            elif fn:
                if found is None:
                    found = tuple((h.rule, h.spans) for h in terms.match(doc)) if terms is not None else ()
                spans = tuple(sorted({s for _, ss in found for s in ss}, key=lambda s: (s.field, s.start, s.end)))
                out.append(Disagreement(text, rule.name, "missed", spans, tuple(name for name, _ in found)))
            right = right and not (fp or fn)
        by_lang[text.language] = lang
        exact += right
    return Evaluation(
        texts=len(texts),
        rules=by_rule,
        languages=dict(sorted(by_lang.items())),
        overall=overall,
        exact=exact,
        disagreements=tuple(out),
    )
