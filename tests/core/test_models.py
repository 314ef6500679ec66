"""What crosses to the CPU workers survives pickling, field for field (``models.picklable``)."""

from __future__ import annotations

import copy
import pickle
from dataclasses import FrozenInstanceError, fields
from datetime import UTC, datetime, timedelta

import pytest

from monitor.core.dedupe import Ambiguity, Fingerprint, pack_shingles
from monitor.core.models import Document, Item, PollOutcome, RawItem, RuleHit, Span, picklable
from monitor.core.policy import AlertDecision, PollContext
from monitor.services import analysis

WHEN = datetime(2024, 11, 5, 7, 30, tzinfo=UTC)
RAW = RawItem("g-1", "https://example.org/a", "Ким Чен Ын и Путин", "북한군 파병", "", "ru", WHEN)
ITEM = Item(
    key="u:example.org/a",
    guid="g-1",
    url="https://example.org/a?utm_source=x",
    canonical_url="https://example.org/a",
    title="قوات كورية شمالية في كورسك",
    summary="summary",
    text="",
    language="ar",
    published=None,
    title_derived=True,
)
HIT = RuleHit("kursk-nk", (Span("title", 0, 4, "Ким"), Span("body", 3, 9, "파병")))
FINGERPRINT = Fingerprint("example.org/a", None, "1:abc", ("north", "korea"))
AMBIGUITY = Ambiguity(frozenset({"https://example.org/"}), frozenset({"Morning briefing"}))
CONTEXT = PollContext("wire", True, "silent", timedelta(days=2))
DECISION = AlertDecision("kursk-nk", "desk", "critical")

VALUES = [
    RAW,
    ITEM,
    HIT,
    Span("body", 1, 2, "x"),
    Document("title", "body", "en", True),
    PollOutcome(7, "wire", "ok", (RAW,), etag='"e"', http_status=200, retry_after=1.5),
    FINGERPRINT,
    AMBIGUITY,
    CONTEXT,
    DECISION,
    analysis.Document((ITEM,), AMBIGUITY),
    analysis.Job(ITEM, AMBIGUITY, CONTEXT),
    analysis.Analysed(FINGERPRINT, (1, 2, 3), pack_shingles({4, 5}), (HIT,), (DECISION,)),
    analysis.MatchJob(CONTEXT, "title", "summary", "text", "ko", True),
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__qualname__)
def test_round_trip_keeps_every_field(value: object) -> None:
    assert "reduce" in type(value).__reduce__.__name__  # ours, not the dataclass's getstate
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        back = pickle.loads(pickle.dumps(value, protocol=protocol))
        assert type(back) is type(value)
        assert back == value
        for f in fields(value):  # type: ignore[arg-type]
            assert getattr(back, f.name) == getattr(value, f.name), f.name
    assert copy.deepcopy(value) == value
    with pytest.raises(FrozenInstanceError):
        back.__setattr__(fields(back)[0].name, None)  # type: ignore[arg-type]


def test_a_one_field_dataclass_round_trips() -> None:
    from dataclasses import dataclass

    @picklable
    @dataclass(frozen=True, slots=True)
    class One:
        value: tuple[int, ...]

    globals()["One"] = One  # pickle finds classes by module and name
    One.__qualname__ = "One"
    assert pickle.loads(pickle.dumps(One((1, 2)))) == One((1, 2))
