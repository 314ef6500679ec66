"""What a message shows of an outbox row: the bridge from store rows to the renderer's views.

Responsible for turning an :class:`AlertRow` and its story's :class:`Reach` (read when the
message is rendered) into an :class:`AlertView`.  Shared by the dispatcher and the
corroboration bulletins; it reads nothing itself.
"""

from __future__ import annotations

from monitor.core.corroboration import Reach
from monitor.core.items import make_document
from monitor.core.render import AlertView
from monitor.store.sql import AlertRow


def alert_view(row: AlertRow, reach: Reach | None = None, story_url: str = "") -> AlertView:
    """What a message shows of ``row``; ``reach`` is its story's as read when the message is
    rendered (so "reported by N outlets" is true when it is sent, not when it was queued)."""
    outlets = reach.outlets if reach is not None else ()
    languages = reach.languages if reach is not None else ()
    doc = make_document(row.title, row.summary, row.text, row.language)
    spans = tuple((s["field"], int(s["start"]), int(s["end"])) for s in row.spans)
    words = tuple(
        (rule, tuple(dict.fromkeys(str(s.get("text", "")) for s in row.rule_spans.get(rule, []))))
        for rule in (row.rules or (row.rule,))
    )
    return AlertView(
        rules=row.rules or (row.rule,),
        title=doc.title,
        url=row.url,
        source=row.source,
        published=row.published,
        first_seen=row.first_seen,
        body=doc.body,
        spans=spans,
        rule_words=words,
        severity=row.severity,
        also_reported_by=tuple(o for o in outlets if o != row.source),
        language=row.language,
        outlets=outlets or (row.source,),
        languages=languages,
        story_url=story_url or None,
        timeline=reach.firsts() if reach is not None else (),
        released=row.released,
        need_outlets=row.need_outlets or 0,
        need_languages=row.need_languages or 0,
    )
