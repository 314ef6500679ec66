"""``wirewatch rules eval LABELS...``: the rules of the config scored against labelled files.

Responsible for the command's I/O only: reading the config (and, with ``--against``, a
second config to compare with) and the labelled files, handing them to the pure
:mod:`monitor.core.evaluation`, and writing the result as a table with every disagreement
(matched words marked ``[[like this]]``) or as one JSON document.  It must not touch the
database or the network; it exits non-zero only for a usage error (an unreadable or
malformed file, an unknown rule in ``expected``, an invalid config), never because the
rules scored badly: the scores are the output.  Kept apart from ``cli.py`` so that the
command is one registration there.

One file gives its tables and disagreements (JSON: the file's document).  Several files
give one line of figures and the disagreements per file, then the tables pooled over all
of them (JSON: ``{"files": [...], "pooled": {...}}``, the pooled part with counts where a
file's document has lists).  ``--against OTHER`` scores the same texts with OTHER's rules
too and says, per file and pooled, which disagreements the config has that OTHER has not
(new) and which of OTHER's it no longer has (gone): what an edit to the rules changed,
text by text.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from monitor.config import Config, load_config
from monitor.core.evaluation import (
    Comparison,
    Disagreement,
    Evaluation,
    LabelledText,
    RuleFilter,
    Score,
    compare,
    evaluate,
    parse_labels,
    pool,
)
from monitor.core.models import Span
from monitor.core.rules import Matcher, make_matcher
from monitor.errors import ConfigError, ConfigProblem


@dataclass(frozen=True, slots=True)
class _Rules:
    """One config's rules, compiled once for every file."""

    filters: list[RuleFilter]
    matcher: Matcher
    terms: Matcher  # one rule per term, only to say which concepts a missed text did contain

    @classmethod
    def of(cls, config: Config) -> _Rules:
        return cls(
            [RuleFilter(r.name, r.languages, r.sources) for r in config.rules],
            make_matcher(config.terms, [(r.name, r.query) for r in config.rules], config.clauses),
            make_matcher(config.terms, [(name, name) for name in config.terms]),
        )

    def evaluate(self, texts: Sequence[LabelledText]) -> Evaluation:
        return evaluate(self.matcher, self.filters, texts, self.terms)


def run_rules_eval(
    config_file: str,
    labels_files: Sequence[str],
    as_json: bool,
    out: TextIO = sys.stdout,
    against: str | None = None,
) -> int:
    """Load, evaluate, write; raise :class:`ConfigError` for every usage problem."""
    files = list(labels_files)
    config = load_config(config_file)
    other = load_config(against) if against else None
    # A text may expect a rule either config has: the one without it does not score it.
    known = [r.name for r in config.rules] + ([r.name for r in other.rules] if other else [])
    sets = [(file, parse_labels(_read(file), file, known)) for file in files]
    mine = _Rules.of(config)
    theirs = _Rules.of(other) if other else None
    results = [mine.evaluate(texts) for _, texts in sets]
    comparisons = (
        [compare(theirs.evaluate(texts), r) for (_, texts), r in zip(sets, results, strict=True)] if theirs else []
    )
    if as_json:
        docs = [
            _as_json(file, r, comparisons[i] if comparisons else None, against)
            for i, (file, r) in enumerate(zip(files, results, strict=True))
        ]
        doc = docs[0] if len(docs) == 1 else {"files": docs, "pooled": _pooled_json(results, comparisons, against)}
        json.dump(doc, out, ensure_ascii=False, indent=2)
        out.write("\n")
    elif len(sets) == 1:
        _write_text(files[0], results[0], out)
        if comparisons:
            _write_comparison(against or "", comparisons[0], out)
    else:
        _write_many(files, results, comparisons, against or "", out)
    return 0


def _read(file: str) -> str:
    try:
        return Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigProblem(file, "file", f"cannot read: {exc.strerror}")]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([ConfigProblem(file, "file", f"not UTF-8 (byte {exc.start})")]) from None


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


def _disagreement(d: Disagreement) -> dict[str, Any]:
    return {
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


def _figures(result: Evaluation) -> dict[str, Any]:
    return {
        "texts": result.texts,
        "exact": result.exact,
        "overall": _score(result.overall),
        "rules": [{"rule": name, **_score(s)} for name, s in result.rules.items()],
        "languages": [{"language": lang, **_score(s)} for lang, s in result.languages.items()],
    }


def _change(comparison: Comparison, against: str) -> dict[str, Any]:
    """The other config's figures, and the disagreements gained ("new") and lost ("gone")."""
    return {
        "config": against,
        **_figures(comparison.before),
        "new": [_disagreement(d) for d in comparison.gained],
        "gone": [_disagreement(d) for d in comparison.lost],
    }


def _as_json(
    file: str, result: Evaluation, comparison: Comparison | None = None, against: str | None = None
) -> dict[str, Any]:
    doc = {"file": file, **_figures(result), "disagreements": [_disagreement(d) for d in result.disagreements]}
    if comparison is not None:
        doc["against"] = _change(comparison, against or "")
    return doc


def _pooled_json(results: list[Evaluation], comparisons: list[Comparison], against: str | None) -> dict[str, Any]:
    doc = {
        "files": len(results),
        **_figures(pool(results)),
        "disagreement_count": sum(len(r.disagreements) for r in results),
    }
    if comparisons:
        doc["against"] = {
            "config": against,
            **_figures(pool([c.before for c in comparisons])),
            "new_count": sum(len(c.gained) for c in comparisons),
            "gone_count": sum(len(c.lost) for c in comparisons),
        }
    return doc


def _fmt(value: float | None) -> str:
    return "    -" if value is None else f"{value:.3f}"


def _write_text(file: str, result: Evaluation, out: TextIO) -> None:
    out.write(f"{file}: {result.texts} texts, {len(result.rules)} rules, {result.exact} texts exactly right\n\n")
    _write_tables(result, out)
    if not result.disagreements:
        out.write("\nno disagreements\n")
        return
    n = len(result.disagreements)
    out.write(f"\n{n} disagreement{'s' if n != 1 else ''}:\n")
    for d in result.disagreements:
        _write_disagreement(d, out)


def _write_tables(result: Evaluation, out: TextIO) -> None:
    width = max([len("overall"), *(len(n) for n in result.rules)])
    head = f"{'':{width}}   tp   fp   fn  precision  recall\n"
    out.write(head)
    for name, s in result.rules.items():
        out.write(f"{name:{width}} {s.tp:4} {s.fp:4} {s.fn:4}      {_fmt(s.precision)}   {_fmt(s.recall)}\n")
    out.write("\n" + head)
    for lang, s in result.languages.items():
        out.write(f"{lang:{width}} {s.tp:4} {s.fp:4} {s.fn:4}      {_fmt(s.precision)}   {_fmt(s.recall)}\n")
    o = result.overall
    out.write(f"{'overall':{width}} {o.tp:4} {o.fp:4} {o.fn:4}      {_fmt(o.precision)}   {_fmt(o.recall)}\n")


def _pr(score: Score) -> str:
    return f"{_fmt(score.precision).strip()}/{_fmt(score.recall).strip()}"


def _write_comparison(against: str, c: Comparison, out: TextIO) -> None:
    """What the config changed against ``against``; each new disagreement is listed above in full."""
    before, after = c.before, c.after
    out.write(
        f"\nagainst {against}: overall {_pr(before.overall)} -> {_pr(after.overall)}, "
        f"{before.exact} -> {after.exact} texts exactly right; "
        f"{len(c.gained)} new disagreement{'s' if len(c.gained) != 1 else ''}, {len(c.lost)} gone\n"
    )
    for d in c.gained:
        out.write(f"  new:  {_label(d)}\n")
    for d in c.lost:
        out.write(f"  gone: {_label(d)}\n")


def _label(d: Disagreement) -> str:
    what = "fired, not expected" if d.kind == "extra" else "expected, did not fire"
    return f"{d.text.id} [{d.text.language}] {d.rule}: {what}"


def _write_many(
    files: list[str], results: list[Evaluation], comparisons: list[Comparison], against: str, out: TextIO
) -> None:
    for i, (file, r) in enumerate(zip(files, results, strict=True)):
        langs = ", ".join(f"{lang} {_pr(s)}" for lang, s in r.languages.items())
        out.write(f"{file}: {r.texts} texts, {r.exact} exactly right; {langs}\n")
        for d in r.disagreements:
            _write_disagreement(d, out)
        if comparisons and (comparisons[i].gained or comparisons[i].lost):
            _write_comparison(against, comparisons[i], out)
        out.write("\n")
    total = pool(results)
    out.write(f"pooled over {len(files)} files: {total.texts} texts, {total.exact} texts exactly right\n\n")
    _write_tables(total, out)
    if comparisons:
        gained = [d for c in comparisons for d in c.gained]
        lost = [d for c in comparisons for d in c.lost]
        _write_comparison(
            against,
            Comparison(pool([c.before for c in comparisons]), total, tuple(gained), tuple(lost)),
            out,
        )


def _write_disagreement(d: Disagreement, out: TextIO) -> None:
    out.write(f"\n{_label(d)}\n")
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
