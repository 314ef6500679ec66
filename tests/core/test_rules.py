"""Tests for monitor.core.rules: the query language, its errors and the compiled matcher.

The multilingual matching cases live as data in ``rule_cases.toml``; this file runs them,
checks parse errors and precedence, and states the properties (whitespace, diacritics
and tatweel never change a verdict; NOT inverts; ``a AND b`` implies ``a``).  Run it as
a script to print compile and match timings at 10 / 1,000 / 10,000 rules.
"""

from __future__ import annotations

import dataclasses
import random
import statistics
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.core.models import Document, RuleHit
from monitor.core.rules import (
    SENTENCE,
    And,
    Matcher,
    Near,
    Not,
    Or,
    Phrase,
    Term,
    make_matcher,
    parse_clause,
    parse_query,
    query_terms,
)
from monitor.errors import QueryError

CASES_FILE = Path(__file__).with_name("rule_cases.toml")
DATA: dict[str, Any] = tomllib.loads(CASES_FILE.read_text(encoding="utf-8"))
TERMS: dict[str, list[str]] = DATA["terms"]
CASES: list[dict[str, Any]] = DATA["case"]


def _fired(rule: str, doc: Document, terms: dict[str, list[str]] = TERMS) -> list[RuleHit]:
    return make_matcher(terms, [("r", rule)]).match(doc)


# --- the data table -----------------------------------------------------------------------


def test_case_table_is_broad() -> None:
    assert len(CASES) >= 80
    assert len({c["id"] for c in CASES}) == len(CASES)
    langs = {c["lang"] for c in CASES}
    assert {"en", "ar", "ru", "ko"} <= langs
    assert any(c["fires"] for c in CASES) and any(not c["fires"] for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case(case: dict[str, Any]) -> None:
    doc = Document(case.get("title", ""), case.get("body", ""), case["lang"] or None)
    hits = _fired(case["rule"], doc)
    assert bool(hits) == case["fires"], case.get("note", "")
    for hit in hits:
        for span in hit.spans:
            assert getattr(doc, span.field)[span.start : span.end] == span.text
    if "spans" in case:
        got = sorted(f"{s.field}:{s.text}" for h in hits for s in h.spans)
        assert got == sorted(case["spans"])


@pytest.mark.parametrize(("name", "alias"), [(n, a) for n, aliases in TERMS.items() for a in aliases])
def test_every_alias_matches_itself_in_a_sentence(name: str, alias: str) -> None:
    alias = alias.removesuffix("*")
    assert _fired(name, Document("", f"— {alias}, …"))
    assert _fired(name, Document(alias, ""))


# --- parsing ------------------------------------------------------------------------------

T = {"a": ["alpha"], "b": ["beta"], "c": ["gamma"], "kim": ["Kim"], "putin": ["Putin"]}


@pytest.mark.parametrize(
    ("query", "tree"),
    [
        ("a", Term("a", ("alpha",))),
        ("a OR b AND c", Or((Term("a", ("alpha",)), And((Term("b", ("beta",)), Term("c", ("gamma",))))))),
        ("a b OR c", Or((And((Term("a", ("alpha",)), Term("b", ("beta",)))), Term("c", ("gamma",))))),
        ("NOT a AND b", And((Not(Term("a", ("alpha",))), Term("b", ("beta",))))),
        ("a NOT b", And((Term("a", ("alpha",)), Not(Term("b", ("beta",)))))),
        (
            "a NEAR/2 b AND c",
            And((Near(Term("a", ("alpha",)), Term("b", ("beta",)), 2), Term("c", ("gamma",)))),
        ),
        (
            "a AND b NEAR/3 c",
            And((Term("a", ("alpha",)), Near(Term("b", ("beta",)), Term("c", ("gamma",)), 3))),
        ),
        ("NOT NOT a", Not(Not(Term("a", ("alpha",))))),
        ("(a OR b) c", And((Or((Term("a", ("alpha",)), Term("b", ("beta",)))), Term("c", ("gamma",))))),
        ("a AND (b AND c)", And((Term("a", ("alpha",)), Term("b", ("beta",)), Term("c", ("gamma",))))),
        ('"Putin*"', Phrase("Putin", prefix=True)),
        ('"  Kim  Jong-un "', Phrase("Kim  Jong-un")),
        ('"say \\"no\\""', Phrase('say "no"')),
        ("“Kim Jong Un”", Phrase("Kim Jong Un")),
        ("title:a", Term("a", ("alpha",), "title")),
        (
            'body:(a OR "x y")',
            Or((Term("a", ("alpha",), "body"), Phrase("x y", scope="body"))),
        ),
        ("title:title:a", Term("a", ("alpha",), "title")),
        ("body: a", Term("a", ("alpha",), "body")),
    ],
)
def test_parse_tree(query: str, tree: object) -> None:
    assert parse_query(query, T).root == tree


@pytest.mark.parametrize(
    ("query", "message", "column", "suggestion"),
    [
        ("kimm AND putin", "unknown term 'kimm'", 1, "did you mean 'kim'?"),
        ("putin AND kimm", "unknown term 'kimm'", 11, "did you mean 'kim'?"),
        ("Putin", "unknown term 'Putin'", 1, "did you mean 'putin'?"),
        ("a and b", "unknown term 'and'", 3, "did you mean 'AND'? operators are uppercase"),
        ("zzz", "unknown term 'zzz'", 1, 'to match the word itself, quote it: "zzz"'),
        ("", "empty query", 1, "write a term name or a quoted phrase"),
        ("   ", "empty query", 1, "write a term name or a quoted phrase"),
        ("a AND", "expected a term, a \"phrase\" or '(' but found the end of the query", 6, None),
        ("AND a", "expected a term, a \"phrase\" or '(' but found 'AND'", 1, None),
        ("a OR OR b", "expected a term, a \"phrase\" or '(' but found 'OR'", 6, None),
        ("(a OR b", "'(' is never closed", 1, "add a ')'"),
        ("a (b", "'(' is never closed", 3, "add a ')'"),
        ("a)", "unexpected ')' with no matching '('", 2, None),
        ("()", "expected a term, a \"phrase\" or '(' but found ')'", 2, None),
        ("a & b", "unexpected character '&'", 3, "use AND"),
        ("a || b", "unexpected character '|'", 3, "use OR"),
        ("!a", "unexpected character '!'", 1, "use NOT"),
        ("a -b", "unexpected character '-'", 3, "use NOT to exclude a term"),
        ("a*", "unexpected character '*'", 2, 'a wildcard goes inside quotes: "putin*"'),
        ("'a'", "unexpected character '''", 1, 'phrases use double quotes: "like this"'),
        ('"abc', "unterminated phrase", 1, 'close it with "'),
        ('a "', "unterminated phrase", 3, 'close it with "'),
        ('""', "the phrase has no words", 1, None),
        ('" , "', "the phrase has no words", 1, None),
        ('"Put*in"', "'*' is only allowed at the end of a phrase", 5, 'write it like "putin*"'),
        ('"*"', "'*' must follow a word", 2, 'write it like "putin*"'),
        ('"Putin *"', "'*' must follow a word", 8, 'write it like "putin*"'),
        ("a NEAR b", "NEAR needs a distance", 3, "write it like NEAR/5, or NEAR/s for one sentence"),
        ("a NEAR/x b", "NEAR needs a distance", 3, "write it like NEAR/5, or NEAR/s for one sentence"),
        ("a NEAR/5b", "NEAR needs a distance", 3, "write it like NEAR/5, or NEAR/s for one sentence"),
        ("NEAR/2 a", "expected a term, a \"phrase\" or '(' but found 'NEAR'", 1, None),
        (
            "(a AND b) NEAR/3 c",
            "NEAR needs a term, a phrase or an OR group on each side",
            1,
            "move AND/NOT outside the NEAR",
        ),
        (
            "a NEAR/3 NOT b",
            "NEAR needs a term, a phrase or an OR group on each side",
            10,
            "NOT binds tighter than NEAR: write NOT (a NEAR/5 b)",
        ),
        (
            "NOT a NEAR/3 b",
            "NEAR needs a term, a phrase or an OR group on each side",
            1,
            "NOT binds tighter than NEAR: write NOT (a NEAR/5 b)",
        ),
        ("head:a", "unknown field 'head:'", 1, "fields are title: and body:"),
        ("title:body:a", "'body:' inside 'title:' can never match", 7, None),
        ("title:(a OR body:b)", "'body:' inside 'title:' can never match", 13, None),
        (
            "title:",
            "'title:' must be followed by a term, a phrase or '('",
            7,
            'write it like title:putin or title:"Putin"',
        ),
        (
            "body:NOT a",
            "'body:' must be followed by a term, a phrase or '('",
            6,
            'write it like body:putin or body:"Putin"',
        ),
    ],
)
def test_parse_errors(query: str, message: str, column: int, suggestion: str | None) -> None:
    with pytest.raises(QueryError) as info:
        parse_query(query, T)
    err = info.value
    assert (err.message, err.column, err.suggestion) == (message, column, suggestion)
    assert err.query == query


def test_unknown_term_error_reads_well() -> None:
    with pytest.raises(QueryError) as info:
        parse_query("putin AND kimm", T)
    assert str(info.value) == "unknown term 'kimm' at column 11 (did you mean 'kim'?)"
    assert info.value.caret() == "putin AND kimm\n          ^"


def test_columns_count_characters_not_bytes() -> None:
    with pytest.raises(QueryError) as info:
        parse_query('"بوتين" AND kimm', T)
    assert info.value.column == 13


def test_term_alias_without_words_is_an_error() -> None:
    with pytest.raises(QueryError, match="alias '—' of term 'x' has no words"):
        parse_query("a OR x", {"a": ["alpha"], "x": ["—"]})
    with pytest.raises(QueryError, match="term 'x' has no aliases"):
        parse_query("x", {"x": []})


def test_query_terms() -> None:
    q = parse_query('a AND (b OR NOT title:c) AND "kim" AND a NEAR/2 putin', T)
    assert query_terms(q) == frozenset({"a", "b", "c", "putin"})
    assert query_terms(parse_query('"x"', T)) == frozenset()


def test_query_keeps_its_text() -> None:
    assert parse_query("a OR b", T).text == "a OR b"


# --- matcher ------------------------------------------------------------------------------


def test_rules_fire_in_rule_order_with_spans() -> None:
    matcher = make_matcher(
        TERMS,
        [
            ("z-kursk", "kursk"),
            ("a-never", "pyongyang"),
            ("m-both", "putin AND kursk"),
            ("b-not", "NOT pyongyang"),
        ],
    )
    doc = Document("Putin in Kursk", "Troops and Putin.")
    hits = matcher.match(doc)
    assert [h.rule for h in hits] == ["z-kursk", "m-both", "b-not"]
    both = hits[1]
    assert [(s.field, s.start, s.end, s.text) for s in both.spans] == [
        ("title", 0, 5, "Putin"),
        ("title", 9, 14, "Kursk"),
        ("body", 11, 16, "Putin"),
    ]
    assert hits[2].spans == ()


def test_negated_words_are_not_reported_as_spans() -> None:
    (hit,) = _fired("putin AND NOT pyongyang OR NOT kursk", Document("", "Putin spoke"))
    assert [s.text for s in hit.spans] == ["Putin"]


def test_not_only_rule_with_its_word_present_is_evaluated() -> None:
    assert not _fired("NOT putin", Document("", "Putin spoke"))
    assert _fired("NOT putin", Document("", ""))
    assert _fired("NOT (putin AND kursk)", Document("", "Putin spoke"))


def test_matcher_is_immutable_and_reusable() -> None:
    matcher = make_matcher(TERMS, [("r", "putin")])
    assert isinstance(matcher, Matcher)
    with pytest.raises(dataclasses.FrozenInstanceError):
        matcher.rules = ()  # type: ignore[misc]
    doc = Document("", "Putin")
    assert matcher.match(doc) == matcher.match(doc)
    assert matcher.rules == ("r",)


def test_make_matcher_reports_the_first_bad_rule() -> None:
    with pytest.raises(QueryError) as info:
        make_matcher(TERMS, [("ok", "putin"), ("bad", "putn"), ("worse", "(")])
    assert info.value.message == "unknown term 'putn'"
    assert info.value.suggestion == "did you mean 'putin'?"


def test_empty_matcher_and_empty_document() -> None:
    assert make_matcher(TERMS, []).match(Document("", "")) == []
    assert make_matcher(TERMS, [("r", "putin")]).match(Document("", "")) == []


def test_shared_patterns_across_rules() -> None:
    rules = [(f"r{i}", "putin OR kursk") for i in range(50)] + [("last", '"Putin"')]
    hits = make_matcher(TERMS, rules).match(Document("", "Vladimir Putin"))
    assert len(hits) == 51


def test_wildcard_alias_and_wildcard_phrase_on_same_word() -> None:
    terms = {"missiles": ["missile*"]}
    assert _fired("missiles", Document("", "Missiles flew"), terms)
    assert _fired('"missile*"', Document("", "missile"), terms)
    assert not _fired('"missile*"', Document("", "amissile"), terms)


def test_language_hint_is_used_for_russian() -> None:
    assert _fired("putin", Document("", "Путину", "ru"))
    assert _fired("putin", Document("", "Путину", "ru-RU"))
    assert _fired("putin", Document("", "Путину", None))


def test_near_counts_words_between() -> None:
    doc = Document("", "Putin one two three Kursk")
    assert _fired("putin NEAR/3 kursk", doc)
    assert not _fired("putin NEAR/2 kursk", doc)
    assert _fired("kursk NEAR/3 putin", doc)


def test_near_with_multiword_alias_measures_from_its_edges() -> None:
    doc = Document("", "Kim Jong Un x Putin")
    assert _fired("kim_jong_un NEAR/1 putin", doc)
    assert not _fired("kim_jong_un NEAR/0 putin", doc)


def test_near_on_many_occurrences_stays_correct() -> None:
    body = " ".join(["Putin"] * 200 + ["filler"] * 10 + ["Kursk"])
    assert not _fired("putin NEAR/9 kursk", Document("", body))
    assert _fired("putin NEAR/10 kursk", Document("", body))


# --- properties ---------------------------------------------------------------------------

# Words the generated documents are made of: aliases in every script (some with clitics,
# particles or case endings) and filler that must never match.
VOCAB = [
    "Putin", "Kursk", "troops", "Kim", "Jong", "Un", "Kardashian", "Putinism", "soldiers",
    "North", "Korea", "missile", "the", "Resume", "cafe", "Beyonce", "naive", "Zelensky",
    "لبوتين", "بوتين", "كورسك", "بيروت", "قواتها", "الجنود", "كيم", "جونغ", "أون", "وبوتين",
    "Путина", "Курске", "солдата", "войсками", "Ким", "Чен", "Ына", "путинский",
    "김정은이", "푸틴과", "쿠르스크에", "반푸틴", "병력을", "NATO는", "평양",
]  # fmt: skip
_WORDS = st.lists(st.sampled_from(VOCAB), min_size=0, max_size=14)

_LEAF_NAMES = sorted(TERMS)
_PHRASES = ['"Kim Jong"', '"Putin*"', '"the"', '"بوتين"', '"Курск*"', '"North Korea"', '"푸틴"']


def _positional() -> st.SearchStrategy[str]:
    leaf = st.one_of(
        st.sampled_from(_LEAF_NAMES),
        st.sampled_from(_PHRASES),
        st.tuples(st.sampled_from(["title:", "body:"]), st.sampled_from(_LEAF_NAMES)).map("".join),
    )
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.tuples(inner, st.integers(0, 4), inner).map(lambda t: f"{t[0]} NEAR/{t[1]} {t[2]}"),
            st.tuples(inner, inner).map(lambda t: f"({t[0]} OR {t[1]})"),
        ),
        max_leaves=3,
    )


def _query() -> st.SearchStrategy[str]:
    return st.recursive(
        _positional(),
        lambda inner: st.one_of(
            st.tuples(inner, inner).map(lambda t: f"({t[0]} AND {t[1]})"),
            st.tuples(inner, inner).map(lambda t: f"({t[0]} OR {t[1]})"),
            st.tuples(inner, inner).map(lambda t: f"({t[0]} {t[1]})"),
            inner.map(lambda q: f"NOT ({q})"),
        ),
        max_leaves=5,
    )


def _fires(query: str, title: str, body: str) -> bool:
    return bool(make_matcher(TERMS, [("r", query)]).match(Document(title, body)))


_WHITESPACE = st.sampled_from([" ", "  ", "\t", "\n", " \n ", "\u00a0", "\u3000", "\u2003"])
_LATIN_MARKS = st.sampled_from([chr(c) for c in range(0x0300, 0x0370)])
_ARABIC_MARKS = st.sampled_from(["\u0640", "\u064e", "\u064f", "\u0650", "\u0651", "\u0652", "\u064b"])

_PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@given(_query(), _WORDS, _WORDS, st.data())
@_PROPERTY
def test_extra_whitespace_never_changes_the_verdict(
    query: str, title: list[str], body: list[str], data: st.DataObject
) -> None:
    def spaced(ws: list[str]) -> str:
        return data.draw(_WHITESPACE) + "".join(w + data.draw(_WHITESPACE) for w in ws)

    assert _fires(query, " ".join(title), " ".join(body)) == _fires(query, spaced(title), spaced(body))


def _decorate(words: list[str], data: st.DataObject, marks: st.SearchStrategy[str], script: str) -> str:
    out = []
    for w in words:
        chars = []
        for i, c in enumerate(w):
            chars.append(c)
            inside = i + 1 < len(w)
            if script == "latin" and c.isascii() and c.isalpha() and data.draw(st.booleans()):
                chars.append(data.draw(marks))
            if script == "arabic" and "\u0621" <= c <= "\u064a" and inside and data.draw(st.booleans()):
                chars.append(data.draw(marks))
        out.append("".join(chars))
    return " ".join(out)


@given(_query(), _WORDS, _WORDS, st.data())
@_PROPERTY
def test_latin_diacritics_never_change_the_verdict(
    query: str, title: list[str], body: list[str], data: st.DataObject
) -> None:
    plain = _fires(query, " ".join(title), " ".join(body))
    marked = _fires(
        query,
        _decorate(title, data, _LATIN_MARKS, "latin"),
        _decorate(body, data, _LATIN_MARKS, "latin"),
    )
    assert plain == marked


@given(_query(), _WORDS, _WORDS, st.data())
@_PROPERTY
def test_tatweel_and_tashkeel_never_change_the_verdict(
    query: str, title: list[str], body: list[str], data: st.DataObject
) -> None:
    plain = _fires(query, " ".join(title), " ".join(body))
    marked = _fires(
        query,
        _decorate(title, data, _ARABIC_MARKS, "arabic"),
        _decorate(body, data, _ARABIC_MARKS, "arabic"),
    )
    assert plain == marked


@given(_query(), _WORDS, _WORDS)
@_PROPERTY
def test_letter_case_never_changes_the_verdict(query: str, title: list[str], body: list[str]) -> None:
    t, b = " ".join(title), " ".join(body)
    assert _fires(query, t, b) == _fires(query, t.upper(), b.upper()) == _fires(query, t.lower(), b.lower())


@given(_query(), _WORDS, _WORDS)
@_PROPERTY
def test_not_inverts(query: str, title: list[str], body: list[str]) -> None:
    t, b = " ".join(title), " ".join(body)
    assert _fires(f"NOT ({query})", t, b) == (not _fires(query, t, b))


@given(_query(), _query(), _WORDS, _WORDS)
@_PROPERTY
def test_and_implies_each_side(a: str, b: str, title: list[str], body: list[str]) -> None:
    t, bd = " ".join(title), " ".join(body)
    if _fires(f"({a}) AND ({b})", t, bd):
        assert _fires(a, t, bd) and _fires(b, t, bd)


@given(st.lists(_query(), min_size=1, max_size=6), _WORDS, _WORDS)
@_PROPERTY
def test_one_matcher_agrees_with_one_matcher_per_rule(queries: list[str], title: list[str], body: list[str]) -> None:
    doc = Document(" ".join(title), " ".join(body))
    together = make_matcher(TERMS, [(f"r{i}", q) for i, q in enumerate(queries)]).match(doc)
    alone = [h for i, q in enumerate(queries) for h in make_matcher(TERMS, [(f"r{i}", q)]).match(doc)]
    assert together == alone


@given(_query(), _WORDS, _WORDS)
@_PROPERTY
def test_spans_are_slices_of_the_document(query: str, title: list[str], body: list[str]) -> None:
    doc = Document(" ".join(title), " ".join(body))
    for hit in make_matcher(TERMS, [("r", query)]).match(doc):
        for span in hit.spans:
            assert span.text and getattr(doc, span.field)[span.start : span.end] == span.text


# --- speed --------------------------------------------------------------------------------

FILLER = (
    "Russian President Vladimir Putin on Friday denounced a drone strike on a college "
    "dormitory in Russian-occupied eastern Ukraine, while officials in Seoul said North "
    "Korean troops had been rotated out of the Kursk region after months of fighting. "
)


def synthetic_rules(count: int, seed: int = 7) -> tuple[dict[str, list[str]], list[tuple[str, str]]]:
    """``count`` varied rules over 2,000 generated terms plus the real topic terms."""
    rng = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ren", "tus", "vo", "zar", "pel", "dun", "ski", "ov", "ra"]

    def word() -> str:
        return "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))

    terms: dict[str, list[str]] = dict(TERMS)
    for i in range(2000):
        terms[f"t{i}"] = [word(), f"{word()} {word()}", word().capitalize()]
    names = list(terms)
    shapes = [
        "{a} AND {b}",
        "{a} OR ({b} AND NOT {c})",
        '{a} AND "{w}"',
        "{a} NEAR/5 {b}",
        'title:{a} OR body:"{w}*"',
        "({a} OR {b} OR {c}) AND putin",
        "NOT {a} AND NOT {b}",
    ]
    rules = []
    for i in range(count):
        shape = shapes[i % len(shapes)]
        a, b, c = (rng.choice(names) for _ in range(3))
        rules.append((f"rule-{i}", shape.format(a=a, b=b, c=c, w=word())))
    return terms, rules


def synthetic_article(terms: dict[str, list[str]], size: int = 5000, seed: int = 11) -> Document:
    rng = random.Random(seed)
    parts: list[str] = []
    while sum(len(p) + 1 for p in parts) < size:
        parts.append(FILLER if rng.random() < 0.5 else rng.choice(terms[rng.choice(list(terms))]))
    body = " ".join(parts)[:size]
    return Document("Kim Jong Un sends more troops to Putin", body, "en")


NEWS = (
    "Russian President Vladimir Putin on Friday denounced a drone strike on a college dormitory in "
    "Russian-occupied eastern Ukraine. North Korea's leader Kim Jong Un sent a New Year message to "
    "Putin praising the troops who fought in the Kursk region, state media said. "
    "Seoul has said that it is part of its preparations to regain wartime operational control of its "
    "troops from Washington, but Pyongyang has called it a rehearsal for invasion. Analysts expect "
    "further shipments of artillery shells and missiles in exchange for oil, food and technology. "
)


def measure(count: int, doc: Document | None = None, repeats: int = 20) -> tuple[float, float, int]:
    """(compile seconds, median match seconds, rules fired) for ``count`` synthetic rules.

    ``doc`` defaults to a stress article stuffed with rule words; one-time costs (word
    tables, pymorphy3 dictionaries) are paid before the clock starts.
    """
    terms, rules = synthetic_rules(count)
    make_matcher(terms, rules[:50]).match(Document("Путина", "بوتين 김정은이"))
    start = time.perf_counter()
    matcher = make_matcher(terms, rules)
    compile_s = time.perf_counter() - start
    doc = doc or synthetic_article(terms)
    matcher.match(doc)  # warm the per-word caches, as a long-running daemon would be
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        hits = matcher.match(doc)
        times.append(time.perf_counter() - start)
    return compile_s, statistics.median(times), len(hits)


def test_ten_thousand_rules_compile_and_match_quickly() -> None:
    compile_s, match_s, fired = measure(10_000, repeats=5)
    assert fired > 0
    # Generous bounds for a loaded CI machine; measured figures are in the module report.
    assert compile_s < 20, compile_s
    assert match_s < 0.25, match_s


if __name__ == "__main__":
    news = Document("Kim Jong Un thanks Putin", (NEWS * 12)[:5000], "en")
    for n in (10, 1_000, 10_000):
        c, m, f = measure(n)
        _, m2, f2 = measure(n, news)
        print(
            f"{n:>6} rules: compile {c * 1000:7.1f} ms; match 5 kB: stress {m * 1000:6.2f} ms "
            f"({f} fired), news {m2 * 1000:5.2f} ms ({f2} fired)"
        )


# --- NEAR/s: the same sentence ----------------------------------------------------------------


def test_near_sentence_parses() -> None:
    from monitor.core.rules import SENTENCE

    assert parse_query("a NEAR/s b", T).root == Near(Term("a", ("alpha",)), Term("b", ("beta",)), SENTENCE)
    with pytest.raises(QueryError, match="NEAR needs a distance"):
        parse_query("a NEAR/sx b", T)


@pytest.mark.parametrize(
    ("body", "fires"),
    [
        ("Putin thanked Kim. The summit ended.", False),
        ("Putin thanked Kim at the summit.", True),
        ("The summit opened! Putin spoke.", False),
        ("On Oct. 4 the summit with Putin began.", True),  # an abbreviation is not an end
        ("The U.S. said the summit with Putin failed.", True),  # nor is a single letter
        ("The summit\nPutin", False),
        ("Москва. 13 апреля. Putin has no summit today", False),  # the dateline is its own sentence
    ],
)
def test_near_sentence(body: str, fires: bool) -> None:
    terms = {"putin": ["Putin"], "summit": ["summit"], "moscow": ["Москва"]}
    rule = "summit NEAR/s putin" if "Москва" not in body else "moscow NEAR/s summit"
    assert bool(make_matcher(terms, [("r", rule)]).match(Document("", body))) == fires


def test_near_sentence_per_field_and_spans() -> None:
    terms = {"putin": ["Putin"], "summit": ["summit"]}
    m = make_matcher(terms, [("r", "summit NEAR/s putin")])
    assert not m.match(Document("Putin", "The summit."))
    (hit,) = m.match(Document("", "A summit: Putin came."))
    assert sorted(s.text for s in hit.spans) == ["Putin", "summit"]


def test_korean_form_inside_a_word_is_highlighted_exactly() -> None:
    terms = {"putin": ["푸틴"], "summit": ["회담"]}
    body = "반푸틴 시위와 정상회담을"
    (hit,) = make_matcher(terms, [("r", "putin AND summit")]).match(Document("", body, "ko"))
    assert sorted(s.text for s in hit.spans) == ["푸틴", "회담"]


# --- clauses: named parts of queries ----------------------------------------------------------


@given(_query(), _query(), _WORDS, _WORDS, st.sampled_from(["", "title:", "body:"]))
@_PROPERTY
def test_a_clause_matches_as_if_written_in_parentheses(
    part: str, outer: str, title: list[str], body: list[str], scope: str
) -> None:
    # A scope before a clause reaches every word in it, as before a parenthesis; a part
    # that scopes its own words to the other field cannot be scoped so, either way.
    doc = Document(" ".join(title), " ".join(body))
    inline = f"{scope}({part}) AND ({outer})"
    try:
        expected = make_matcher(TERMS, [("r", inline)]).match(doc)
    except QueryError:
        with pytest.raises(QueryError):
            make_matcher(TERMS, [("r", f"{scope}part AND ({outer})")], {"part": part})
        return
    named = make_matcher(TERMS, [("r", f"{scope}part AND ({outer})")], {"part": part}).match(doc)
    assert named == expected


def test_clauses_nest_and_a_query_lists_every_clause_it_uses() -> None:
    clauses = {"leaders": "kim_jong_un AND putin", "met": 'leaders AND NOT "Kim Kardashian"', "unused": "kursk"}
    q = parse_query("met OR troops", TERMS, clauses)
    assert q.text == "met OR troops"
    assert q.clauses == (("leaders", "kim_jong_un AND putin"), ("met", 'leaders AND NOT "Kim Kardashian"'))
    assert q.root == parse_query('((kim_jong_un AND putin) AND NOT "Kim Kardashian") OR troops', TERMS).root
    assert parse_query("troops", TERMS, clauses).clauses == ()
    doc = Document("", "Kim Jong Un and Putin met.")
    assert make_matcher(TERMS, [("r", "met")], clauses).match(doc)
    assert not make_matcher(TERMS, [("r", "met")], clauses).match(Document("", "Kim Kardashian met Putin."))


@pytest.mark.parametrize(
    ("query", "message", "column"),
    [
        ("putin AND broken", "in clause 'broken', column 17: unknown term or clause 'kursks'", 11),
        ("putin AND outer", "in clause 'outer', in clause 'broken', column 17: unknown term or clause 'kursks'", 11),
        ("loop", "in clause 'loop', in clause 'pool', column 1: clause 'loop' uses itself (loop → pool → loop)", 1),
        ("both NEAR/3 troops", "NEAR needs a term, a phrase or an OR group on each side", 1),
        ("kursk AND title:bodily", "in clause 'bodily', column 1: 'body:' inside 'title:' can never match", 17),
        ("leaderz", "unknown term or clause 'leaderz'", 1),
    ],
)
def test_a_mistake_in_a_clause_is_pointed_at_from_the_query(query: str, message: str, column: int) -> None:
    clauses = {
        "broken": "kim_jong_un AND kursks",
        "outer": "putin OR broken",
        "loop": "pool OR kim_jong_un",
        "pool": "loop",
        "both": "kim_jong_un AND putin",
        "bodily": "body:kursk",
        "leaders": "kim_jong_un OR putin",
    }
    with pytest.raises(QueryError) as info:
        parse_query(query, TERMS, clauses)
    assert info.value.message == message
    assert info.value.column == column
    assert info.value.query == query
    # The clause that holds the mistake, outermost first, so a config check reports it once.
    outer = message.split("'")[1] if message.startswith("in clause '") else None
    assert info.value.clause == outer


def test_an_unknown_name_is_matched_against_terms_and_clauses() -> None:
    with pytest.raises(QueryError) as info:
        parse_query("leaderz", TERMS, {"leaders": "kim_jong_un OR putin"})
    assert info.value.suggestion == "did you mean 'leaders'?"


def test_a_clause_checked_on_its_own_finds_its_own_loop() -> None:
    clauses = {"loop": "pool OR kim_jong_un", "pool": "loop"}
    with pytest.raises(QueryError) as info:
        parse_clause("loop", TERMS, clauses)
    assert info.value.message == "in clause 'pool', column 1: clause 'loop' uses itself (loop → pool → loop)"
    assert parse_clause("pool", TERMS, {"pool": "kim_jong_un OR putin"}).clauses == ()


# --- NOT NEAR: one occurrence set aside, not the text ------------------------------------------

_TEST_TERMS = {
    "missile": ["missile", "صاروخ", "ракета", "미사일"],
    "test": ["test", "تجربة", "испытание", "시험"],
    "russia": ["Russia", "روسيا", "Россия", "러시아"],
}


def test_not_near_parses_as_one_operator() -> None:
    q = parse_query("missile NOT NEAR/s test", _TEST_TERMS)
    assert isinstance(q.root, Near) and q.root.negated and q.root.distance == SENTENCE
    assert parse_query("missile NOT NEAR/3 test", _TEST_TERMS).root == Near(
        parse_query("missile", _TEST_TERMS).root, parse_query("test", _TEST_TERMS).root, 3, negated=True
    )
    # Without the operator the old readings stand: NOT before a term, NOT (a NEAR b).
    assert parse_query("missile NOT test", _TEST_TERMS).root == parse_query("missile AND NOT test", _TEST_TERMS).root
    assert isinstance(parse_query("NOT (missile NEAR/3 test)", _TEST_TERMS).root, Not)
    for bad, column in (("NOT NEAR/3 test", 1), ("missile AND NOT NEAR/3 test", 13), ("missile NOT NEAR test", 13)):
        with pytest.raises(QueryError) as info:
            parse_query(bad, _TEST_TERMS)
        assert info.value.column == column, bad


@pytest.mark.parametrize(
    ("body", "lang", "fires"),
    [
        # A test in one sentence, missiles sent in another: AND NOT test would lose this text.
        ("North Korea held a missile test. It also sent a missile to Russia.", "en", True),
        ("North Korea held a missile test near Russia.", "en", False),
        ("أجرت كوريا الشمالية تجربة صاروخ. وأرسلت صاروخ إلى روسيا.", "ar", True),
        ("أجرت كوريا الشمالية تجربة صاروخ قرب روسيا.", "ar", False),
        ("КНДР провела испытание: ракета упала. Ракета отправлена в Россию.", "ru", True),
        ("КНДР провела испытание, ракета упала у границы Россия.", "ru", False),
        ("북한이 미사일 시험을 했다. 러시아에 미사일을 보냈다.", "ko", True),
        ("북한이 러시아 근처에서 미사일 시험을 했다.", "ko", False),
    ],
)
def test_not_near_sets_aside_one_mention_in_every_language(body: str, lang: str, fires: bool) -> None:
    rule = "(missile NOT NEAR/s test) AND russia"
    assert bool(make_matcher(_TEST_TERMS, [("r", rule)]).match(Document("", body, lang))) == fires
    # What AND NOT would have said: the whole text set aside.
    assert not make_matcher(_TEST_TERMS, [("r", "missile AND russia AND NOT test")]).match(Document("", body, lang))


def test_not_near_counts_words_between_and_an_overlap_as_near() -> None:
    terms = {**_TEST_TERMS, "missile_test": ["missile test"]}
    m = make_matcher(terms, [("r", "missile NOT NEAR/2 test")])
    assert not m.match(Document("", "a missile test"))
    assert not m.match(Document("", "the test of a missile"))  # two words between
    assert m.match(Document("", "the test of a new missile"))  # three
    (hit,) = m.match(Document("", "a test. Later, far away, came the missile"))
    assert [s.text for s in hit.spans] == ["missile"]  # only the mention that counts is marked
    # "missile" inside "missile test" is the test's own word.
    assert not make_matcher(terms, [("r", "missile NOT NEAR/0 missile_test")]).match(Document("", "missile test"))
    # Its occurrences are the left side's: it may stand inside another NEAR.
    near = make_matcher(_TEST_TERMS, [("r", "(missile NOT NEAR/s test) NEAR/3 russia")])
    assert near.match(Document("", "A test failed. The missile went to Russia."))
    assert not near.match(Document("", "The missile test went to Russia."))


_SENT_TERMS = {
    "sent": ["sent", "أرسلت", "поставила", "보냈다"],
    "shells": ["shells", "قذائف", "снарядов", "포탄"],
    "russia": ["Russia", "روسيا", "России", "러시아"],
    "korea": ["Korea", "North Korea"],
}


@pytest.mark.parametrize(
    ("body", "lang", "russia"),
    [
        ("North Korea sent Russia millions of shells.", "en", "Russia"),
        ("أرسلت كوريا الشمالية إلى روسيا قذائف.", "ar", "روسيا"),
        ("КНДР поставила России миллионы снарядов.", "ru", "России"),
        ("북한은 포탄을 러시아에 보냈다.", "ko", "러시아"),
    ],
)
def test_a_mention_between_the_other_sides_words_is_near(body: str, lang: str, russia: str) -> None:
    # Russia stands inside the "sent ... shells" stretch: a mention of its own, at no distance.
    for rule in (
        "(sent NEAR/5 shells) NEAR/0 russia",
        "(sent NEAR/5 shells) NEAR/s russia",
        "russia NEAR/0 (sent NEAR/5 shells)",
    ):
        (hit,) = make_matcher(_SENT_TERMS, [("r", rule)]).match(Document("", body, lang))
        assert russia in {s.text for s in hit.spans}, rule


def test_occurrences_sharing_a_word_are_still_one_mention() -> None:
    # "Korea" inside "North Korea" is the same mention, whatever the order of the sides.
    for rule in ("korea NEAR/5 korea", "(korea NEAR/3 sent) NEAR/0 korea", "korea NEAR/s (korea NEAR/3 sent)"):
        assert not make_matcher(_SENT_TERMS, [("r", rule)]).match(Document("", "North Korea sent")), rule
    assert make_matcher(_SENT_TERMS, [("r", "korea NEAR/5 korea")]).match(Document("", "North Korea and South Korea"))


@given(_query(), _query(), st.integers(0, 4), _WORDS, _WORDS)
@_PROPERTY
def test_not_near_implies_its_left_side_and_is_it_when_the_right_is_absent(
    left: str, right: str, n: int, title: list[str], body: list[str]
) -> None:
    doc = Document(" ".join(title), " ".join(body))
    try:
        query = f"({left}) NOT NEAR/{n} ({right})"
        fired = _fires(query, doc.title, doc.body)
    except QueryError:
        return  # a side that is not positional (AND, NOT) cannot stand beside NEAR
    assert not fired or _fires(left, doc.title, doc.body)
    if not _fires(right, doc.title, doc.body):
        assert fired == _fires(left, doc.title, doc.body)
