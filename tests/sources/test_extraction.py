"""Article extraction holds its measured quality on the corpus (figures in EXTRACTION.md)."""

from __future__ import annotations

import statistics

from tests.sources.extraction_eval import evaluate, prefixes


def test_extraction_quality_against_gold() -> None:
    scores, segments = evaluate()
    assert len(scores) >= 45
    assert statistics.fmean(s.f1 for s in scores) >= 0.93
    assert statistics.fmean(s.precision for s in scores) >= 0.93
    # Extraction is what keeps menus and "most read" boxes away from the rules.
    assert statistics.fmean(s.precision for s in scores) > statistics.fmean(s.page_precision for s in scores) + 0.3
    assert statistics.fmean(g.kept for g in segments) >= 0.9
    assert statistics.fmean(g.dropped for g in segments) >= 0.8
    assert all(recall >= 0.9 for _, recall in prefixes)
