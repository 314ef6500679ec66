"""``wirewatch rules eval LABELS``: the rules of the config scored against a labelled file.

Responsible for the command's I/O only: reading the config and the labelled file, handing
them to the pure :mod:`monitor.core.evaluation`, and writing the result as a table with
every disagreement (matched words marked ``[[like this]]``) or as one JSON document.  It
must not touch the database or the network; it exits non-zero only for a usage error (an
unreadable or malformed file, an unknown rule in ``expected``, an invalid config), never
because the rules scored badly: the scores are the output.  Kept apart from ``cli.py`` so
that the command is one registration there.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

from monitor.config import load_config
from monitor.core.evaluation import Disagreement, Evaluation, RuleFilter, Score, evaluate, parse_labels
from monitor.core.models import Span
from monitor.core.rules import make_matcher
from monitor.errors import ConfigError, ConfigProblem


def run_rules_eval(config_file: str, labels_file: str, as_json: bool, out: TextIO = sys.stdout) -> int:
    """Load, evaluate, write; raise :class:`ConfigError` for every usage problem."""
    config = load_config(config_file)
    path = Path(labels_file)
    try:
        content = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigProblem(labels_file, "file", f"cannot read: {exc.strerror}")]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([ConfigProblem(labels_file, "file", f"not UTF-8 (byte {exc.start})")]) from None
    rules = [RuleFilter(r.name, r.languages, r.sources) for r in config.rules]
    texts = parse_labels(content, labels_file, [r.name for r in rules])
    matcher = make_matcher(config.terms, [(r.name, r.query) for r in config.rules], config.clauses)
    # One rule per term, only to say which concepts a missed text did contain.
    terms = make_matcher(config.terms, [(name, name) for name in config.terms])
    result = evaluate(matcher, rules, texts, terms)
    if as_json:
        json.dump(_as_json(labels_file, result), out, ensure_ascii=False, indent=2)
        out.write("\n")
    else:
        _write_text(labels_file, result, out)
    return 0


def _ratio(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _score(score: Score) -> dict[str, Any]:
    return {
        "tp": score.tp,
        "fp": score.fp,
        "fn": score.fn,
        "precision": _ratio(score.precision),
        "recall": _ratio(score.recall),
    }


def _span(s: Span) -> dict[str, Any]:
    return {"field": s.field, "start": s.start, "end": s.end, "text": s.text}


def _as_json(file: str, result: Evaluation) -> dict[str, Any]:
    return {
        "file": file,
        "texts": result.texts,
        "exact": result.exact,
        "overall": _score(result.overall),
        "rules": [{"rule": name, **_score(s)} for name, s in result.rules.items()],
        "languages": [{"language": lang, **_score(s)} for lang, s in result.languages.items()],
        "disagreements": [
            {
                "id": d.text.id,
                "language": d.text.language,
                "rule": d.rule,
                "kind": d.kind,
                "url": d.text.url,
                "title": d.text.title,
                "body": d.text.body,
                "spans": [_span(s) for s in d.spans],
                "terms": list(d.terms),
            }
            for d in result.disagreements
        ],
    }


def _fmt(value: float | None) -> str:
    return "    -" if value is None else f"{value:.3f}"


def _write_text(file: str, result: Evaluation, out: TextIO) -> None:
    width = max([len("overall"), *(len(n) for n in result.rules)])
    head = f"{'':{width}}   tp   fp   fn  precision  recall\n"
    out.write(f"{file}: {result.texts} texts, {len(result.rules)} rules, {result.exact} texts exactly right\n\n")
    out.write(head)
    for name, s in result.rules.items():
        out.write(f"{name:{width}} {s.tp:4} {s.fp:4} {s.fn:4}      {_fmt(s.precision)}   {_fmt(s.recall)}\n")
    out.write("\n" + head)
    for lang, s in result.languages.items():
        out.write(f"{lang:{width}} {s.tp:4} {s.fp:4} {s.fn:4}      {_fmt(s.precision)}   {_fmt(s.recall)}\n")
    o = result.overall
    out.write(f"{'overall':{width}} {o.tp:4} {o.fp:4} {o.fn:4}      {_fmt(o.precision)}   {_fmt(o.recall)}\n")
    if not result.disagreements:
        out.write("\nno disagreements\n")
        return
    out.write(f"\n{len(result.disagreements)} disagreements:\n")
    for d in result.disagreements:
        _write_disagreement(d, out)


def _write_disagreement(d: Disagreement, out: TextIO) -> None:
    what = "fired, not expected" if d.kind == "extra" else "expected, did not fire"
    out.write(f"\n{d.text.id} [{d.text.language}] {d.rule}: {what}\n")
    if d.text.url:
        out.write(f"    {d.text.url}\n")
    if d.kind == "missed":
        out.write(f"    terms found: {', '.join(d.terms) if d.terms else 'none'}\n")
    if d.text.title:
        out.write(f"    title: {_mark(d.text.title, [s for s in d.spans if s.field == 'title'])}\n")
    body = _mark(d.text.body, [s for s in d.spans if s.field == "body"]).replace("\n", " ")
    out.write(f"    body:  {body}\n")


def _mark(text: str, spans: list[Span]) -> str:
    parts, pos = [], 0
    for s in sorted(spans, key=lambda s: (s.start, -s.end)):
        if s.start < pos:
            continue  # overlapping spans: the first one marked covers it
        parts.append(text[pos : s.start])
        parts.append(f"[[{text[s.start : s.end]}]]")
        pos = s.end
    parts.append(text[pos:])
    return "".join(parts)
