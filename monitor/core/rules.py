"""The rule query language and the compiled matcher that evaluates rules on documents.

``parse_query`` turns a query such as ``kim_jong_un AND putin AND (kursk OR troops) AND
NOT "Kim Kardashian"`` into an immutable syntax tree, resolving bare names against the
terms table and reporting mistakes as :class:`~monitor.errors.QueryError` with a 1-based
column and a suggestion.  ``make_matcher`` compiles many rules at once: every alias and
phrase of every rule becomes a path in one token trie keyed by normalised words (see
:mod:`monitor.core.text`), a document is tokenised once per field and walked through the
trie, and only the rules that use a pattern found in the document (plus the few rules
that can fire on an empty document, such as ``NOT x``) are evaluated.  This module is
pure: it must not read files, the clock or the network, and it must not know where
documents or rules come from.

Grammar (precedence NOT > NEAR > AND, including juxtaposition > OR)::

    query   := or EOF
    or      := and ("OR" and)*
    and     := near (["AND"] near)*
    near    := unary ((["NOT"] "NEAR/n" | ["NOT"] "NEAR/s") unary)*   both sides: terms, phrases, OR groups, NEARs
    unary   := "NOT" unary | primary
    primary := ["title:" | "body:"] (NAME | "phrase" | "phrase*" | "(" or ")")

A NAME is a term from the terms table or a clause: a named query (the config's
``[clauses]``) that stands in a query as if written there in parentheses, so that a
long rule reads as a few named parts and parts several rules share are written once.
A clause may use other clauses, but not itself, directly or through others.

``a NEAR/n b`` holds when an occurrence of ``a`` and an occurrence of ``b`` that
shares no word with it stand in the same field with at most ``n`` words between them,
in either order (``NEAR/0`` means adjacent); one that lies between the other's words
(Russia in "sent Russia shells") is at no distance.  ``a NEAR/s b`` holds when they
start in the same sentence of the same field: a sentence ends at ``! ? … 。 ؟``, a line
break, or a full stop followed by a space (not after a single letter or a common
abbreviation such as "Oct." or "Gen.").  It is how a rule says that a topic word is
*about* a country: "Moscow." in an agency dateline is a sentence of its own.

``a NOT NEAR/n b`` (and ``a NOT NEAR/s b``) holds for each occurrence of ``a`` that has
no occurrence of ``b`` within ``n`` words (in its sentence), overlapping ones included:
it sets one mention aside where ``a AND NOT b`` sets aside the whole text ("missile"
with no "test" in its sentence still counts in a text that reports a test elsewhere).
Its occurrences are those of ``a``, so it may stand on either side of another NEAR.
"""

from __future__ import annotations

import difflib
import itertools
import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal, TypeAlias

from monitor.core.models import Document, RuleHit, Span
from monitor.core.text import Token, TokenRow, keys, row_end, row_start, token_rows, tokenize, words
from monitor.errors import QueryError

__all__ = [
    "SENTENCE",
    "And",
    "Matcher",
    "Near",
    "Node",
    "Not",
    "Or",
    "Phrase",
    "Query",
    "Term",
    "make_matcher",
    "parse_clause",
    "parse_query",
    "position",
    "query_terms",
]

Field: TypeAlias = Literal["title", "body"]
FIELDS: tuple[Field, ...] = ("title", "body")

# --- syntax tree ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Term:
    """A named concept from the terms table, with its aliases resolved at parse time."""

    name: str
    aliases: tuple[str, ...]
    scope: Field | None = None


@dataclass(frozen=True, slots=True)
class Phrase:
    """A quoted literal; ``prefix`` when it ended in ``*`` (the last word is a prefix)."""

    text: str
    prefix: bool = False
    scope: Field | None = None


@dataclass(frozen=True, slots=True)
class Not:
    child: Node


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]


# ``Near.distance`` for NEAR/s: within one sentence rather than within n words.
SENTENCE = -1


@dataclass(frozen=True, slots=True)
class Near:
    left: Node
    right: Node
    distance: int  # words between, or SENTENCE
    negated: bool = False  # NOT NEAR: the left's occurrences with no right one near them


Node: TypeAlias = Term | Phrase | Not | And | Or | Near


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query: the text as written, its syntax tree, and the clauses it uses.

    ``clauses`` holds each clause the query uses, directly or through another clause,
    as ``(name, text)`` in name order: with ``text`` it says everything the tree was
    built from besides the terms table (a backfill is keyed on it).
    """

    text: str
    root: Node
    clauses: tuple[tuple[str, str], ...] = ()


# --- lexer -------------------------------------------------------------------------------

_KEYWORDS = frozenset({"AND", "OR", "NOT", "NEAR"})
_NAME_RE = re.compile(r"\w[\w\-]*")  # a term name: TOML bare keys allow "-" and "_"
_DIGITS_RE = re.compile(r"\d+")
_QUOTES = {'"': '"', "\u201c": "\u201d", "\u201e": "\u201c"}  # "…", “…”, „…“
_CHAR_HINTS = {
    "&": "use AND",
    "|": "use OR",
    "!": "use NOT",
    "-": "use NOT to exclude a term",
    "+": "use AND",
    "*": 'a wildcard goes inside quotes: "putin*"',
    "'": 'phrases use double quotes: "like this"',
    "[": "group with parentheses",
    "{": "group with parentheses",
}


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # name | phrase | ( | ) | AND | OR | NOT | NEAR | scope | end
    value: str
    column: int  # 1-based column in the query
    prefix: bool = False
    distance: int = 0
    negated: bool = False  # NOT NEAR, lexed as one operator


def _lex(query: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(query)
    while i < n:
        c = query[i]
        col = i + 1
        if c.isspace():
            i += 1
        elif c in "()":
            toks.append(_Tok(c, c, col))
            i += 1
        elif c in _QUOTES:
            tok, i = _lex_phrase(query, i)
            toks.append(tok)
        elif m := _NAME_RE.match(query, i):
            word = m.group()
            i = m.end()
            if i < n and query[i] == ":":
                if word not in FIELDS:
                    raise QueryError(
                        f"unknown field '{word}:'",
                        query,
                        col,
                        "fields are title: and body:",
                    )
                toks.append(_Tok("scope", word, col))
                i += 1
            elif word == "NEAR":
                slash = i < n and query[i] == "/"
                d = _DIGITS_RE.match(query, i + 1) if slash else None
                if slash and d is None and query[i + 1 : i + 2] == "s":
                    end, distance = i + 2, SENTENCE
                elif d is not None:
                    end, distance = d.end(), int(d.group())
                else:
                    end, distance = -1, 0
                if end < 0 or (end < n and (query[end].isalnum() or query[end] == "_")):
                    raise QueryError(
                        "NEAR needs a distance", query, col, "write it like NEAR/5, or NEAR/s for one sentence"
                    )
                toks.append(_Tok("NEAR", word, col, distance=distance))
                i = end
            elif word in _KEYWORDS:
                toks.append(_Tok(word, word, col))
            else:
                toks.append(_Tok("name", word, col))
        else:
            hint = _CHAR_HINTS.get(c)
            raise QueryError(f"unexpected character '{c}'", query, col, hint)
    toks.append(_Tok("end", "", n + 1))
    return _join_not_near(toks)


def _join_not_near(toks: list[_Tok]) -> list[_Tok]:
    """``NOT NEAR/n`` is one operator (it was a syntax error before it was one)."""
    out: list[_Tok] = []
    for tok in toks:
        if tok.kind == "NEAR" and out and out[-1].kind == "NOT":
            not_tok = out.pop()
            out.append(_Tok("NEAR", "NOT NEAR", not_tok.column, distance=tok.distance, negated=True))
        else:
            out.append(tok)
    return out


def _lex_phrase(query: str, i: int) -> tuple[_Tok, int]:
    """Read a quoted phrase starting at ``query[i]``; return it and the index after it."""
    closer = _QUOTES[query[i]]
    col = i + 1
    chars: list[tuple[str, int]] = []  # (character, its 0-based index in the query)
    j = i + 1
    while j < len(query) and query[j] not in (closer, '"'):
        if query[j] == "\\" and j + 1 < len(query):
            j += 1  # \" and \\ stand for themselves
        chars.append((query[j], j))
        j += 1
    if j >= len(query):
        raise QueryError("unterminated phrase", query, col, f"close it with {closer}")
    while chars and chars[-1][0].isspace():
        chars.pop()
    prefix = bool(chars) and chars[-1][0] == "*"
    if prefix:
        star = chars.pop()[1]
        if not chars or unicodedata.category(chars[-1][0])[0] not in "LMN":
            raise QueryError("'*' must follow a word", query, star + 1, 'write it like "putin*"')
    for ch, at in chars:
        if ch == "*":
            raise QueryError(
                "'*' is only allowed at the end of a phrase",
                query,
                at + 1,
                'write it like "putin*"',
            )
    text = "".join(ch for ch, _ in chars).strip()
    if not words(text):
        raise QueryError("the phrase has no words", query, col)
    return _Tok("phrase", text, col, prefix=prefix), j + 1


# --- parser ------------------------------------------------------------------------------

_OPERAND_START = frozenset({"name", "phrase", "(", "NOT", "scope"})


class _Parser:
    """Recursive descent over the token list; every error carries a column."""

    def __init__(
        self,
        query: str,
        terms: Mapping[str, Sequence[str]],
        clauses: Mapping[str, str],
        within: tuple[str, ...] = (),
        used: dict[str, str] | None = None,
    ) -> None:
        self.query = query
        self.terms = terms
        self.clauses = clauses
        self.within = within  # the clauses being expanded, outermost first
        self.used = {} if used is None else used  # every clause expanded, shared with sub-parsers
        self.toks = _lex(query)
        self.pos = 0

    def peek(self) -> _Tok:
        return self.toks[self.pos]

    def take(self) -> _Tok:
        tok = self.toks[self.pos]
        self.pos += 1
        return tok

    def error(self, message: str, column: int, suggestion: str | None = None) -> QueryError:
        return QueryError(message, self.query, column, suggestion)

    def parse(self, scope: Field | None = None) -> Node:
        if self.peek().kind == "end":
            raise self.error("empty query", 1, "write a term name or a quoted phrase")
        node = self.parse_or(scope)
        tok = self.peek()
        if tok.kind != "end":  # only ")" can stop an AND chain early
            raise self.error("unexpected ')' with no matching '('", tok.column)
        return node

    def parse_or(self, scope: Field | None) -> Node:
        items = [self.parse_and(scope)]
        while self.peek().kind == "OR":
            self.take()
            items.append(self.parse_and(scope))
        return _flat(Or, items)

    def parse_and(self, scope: Field | None) -> Node:
        items = [self.parse_near(scope)]
        while True:
            kind = self.peek().kind
            if kind == "AND":
                self.take()
            elif kind not in _OPERAND_START:
                break
            items.append(self.parse_near(scope))
        return _flat(And, items)

    def parse_near(self, scope: Field | None) -> Node:
        column = self.peek().column
        left = self.parse_unary(scope)
        while self.peek().kind == "NEAR":
            near = self.take()
            self.require_positional(left, column)
            column = self.peek().column
            right = self.parse_unary(scope)
            self.require_positional(right, column)
            left = Near(left, right, near.distance, near.negated)
        return left

    def require_positional(self, node: Node, column: int) -> None:
        if not _positional(node):
            hint = (
                "NOT binds tighter than NEAR: write NOT (a NEAR/5 b)"
                if isinstance(node, Not)
                else "move AND/NOT outside the NEAR"
            )
            raise self.error("NEAR needs a term, a phrase or an OR group on each side", column, hint)

    def parse_unary(self, scope: Field | None) -> Node:
        if self.peek().kind == "NOT":
            self.take()
            return Not(self.parse_unary(scope))
        return self.parse_primary(scope)

    def parse_primary(self, scope: Field | None) -> Node:
        tok = self.take()
        if tok.kind == "scope":
            where: Field = "title" if tok.value == "title" else "body"
            if scope is not None and scope != where:
                raise self.error(f"'{where}:' inside '{scope}:' can never match", tok.column)
            if self.peek().kind not in ("name", "phrase", "(", "scope"):
                raise self.error(
                    f"'{where}:' must be followed by a term, a phrase or '('",
                    self.peek().column,
                    f'write it like {where}:putin or {where}:"Putin"',
                )
            return self.parse_primary(where)
        if tok.kind == "name":
            if tok.value not in self.terms and tok.value in self.clauses:
                return self.clause(tok, scope)
            return self.term(tok, scope)
        if tok.kind == "phrase":
            return Phrase(tok.value, tok.prefix, scope)
        if tok.kind == "(":
            node = self.parse_or(scope)
            if self.peek().kind != ")":
                raise self.error("'(' is never closed", tok.column, "add a ')'")
            self.take()
            return node
        found = "the end of the query" if tok.kind == "end" else f"'{tok.value}'"
        raise self.error(f"expected a term, a \"phrase\" or '(' but found {found}", tok.column)

    def term(self, tok: _Tok, scope: Field | None) -> Term:
        name = tok.value
        if name not in self.terms:
            what = "term or clause" if self.clauses else "term"
            raise self.error(f"unknown {what} '{name}'", tok.column, self.suggest(name))
        aliases = tuple(self.terms[name])
        if not aliases:
            raise self.error(f"term '{name}' has no aliases", tok.column)
        for alias in aliases:
            if not _has_words(alias):
                raise self.error(f"alias {alias!r} of term '{name}' has no words", tok.column)
        return Term(name, aliases, scope)

    def clause(self, tok: _Tok, scope: Field | None) -> Node:
        """The named clause's tree, parsed as if it stood here in parentheses."""
        name = tok.value
        if name in self.within:
            path = " → ".join((*self.within[self.within.index(name) :], name))
            raise self.error(f"clause '{name}' uses itself ({path})", tok.column)
        text = self.clauses[name]
        sub = _Parser(text, self.terms, self.clauses, (*self.within, name), self.used)
        try:
            node = sub.parse(scope)
        except QueryError as exc:
            # Pointed at the clause's name here; the clause's own column goes in the message.
            if exc.clause is not None:
                message = f"in clause '{name}', {exc.message}"
            else:
                message = f"in clause '{name}', {position(text, exc.column)}: {exc.message}"
            raise QueryError(message, self.query, tok.column, exc.suggestion, clause=name) from None
        self.used[name] = text
        return node

    def suggest(self, name: str) -> str:
        if name.upper() in _KEYWORDS:
            return f"did you mean '{name.upper()}'? operators are uppercase"
        known = [*self.terms, *self.clauses]
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        if not close:
            lowered = {t.lower(): t for t in known}
            close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
            close = [lowered[c] for c in close]
        if close:
            return f"did you mean '{close[0]}'?"
        return f'to match the word itself, quote it: "{name}"'


@lru_cache(maxsize=1 << 16)
def _has_words(alias: str) -> bool:
    return bool(words(alias.rstrip().removesuffix("*")))


def _flat(kind: type[And | Or], items: list[Node]) -> Node:
    if len(items) == 1:
        return items[0]
    out: list[Node] = []
    for item in items:
        out.extend(item.children if isinstance(item, kind) else (item,))
    return kind(tuple(out))


def _positional(node: Node) -> bool:
    """Whether a node has positions (needed on both sides of NEAR)."""
    if isinstance(node, Term | Phrase | Near):
        return True
    if isinstance(node, Or):
        return all(_positional(c) for c in node.children)
    return False


def position(text: str, column: int) -> str:
    """Where a 1-based column of ``text`` is, said by line as well when the text has lines.

    A long clause or query reads best over several lines (a TOML multi-line string).
    """
    before = text[: column - 1]
    if "\n" not in before:
        return f"column {column}"
    line, start = before.count("\n") + 1, before.rfind("\n") + 1
    return f"line {line}, column {column - start}"


def parse_query(query: str, terms: Mapping[str, Sequence[str]], clauses: Mapping[str, str] | None = None) -> Query:
    """Parse ``query`` against the terms table and the named clauses.

    Raise :class:`QueryError` on any mistake; one inside a clause is reported at the
    clause's name in ``query``, with the clause's own column in the message.
    """
    return _parse(query, terms, clauses or {}, ())


def parse_clause(name: str, terms: Mapping[str, Sequence[str]], clauses: Mapping[str, str]) -> Query:
    """Parse the clause ``name`` on its own, as the config check does for each clause."""
    return _parse(clauses[name], terms, clauses, (name,))


def _parse(text: str, terms: Mapping[str, Sequence[str]], clauses: Mapping[str, str], within: tuple[str, ...]) -> Query:
    parser = _Parser(text, terms, clauses, within)
    root = parser.parse()
    return Query(text, root, tuple(sorted(parser.used.items())))


def query_terms(q: Query) -> frozenset[str]:
    """The names of the terms a query uses (for config checks such as unused terms)."""
    return frozenset(n.name for n in _walk(q.root) if isinstance(n, Term))


def _walk(node: Node) -> Iterator[Node]:
    yield node
    if isinstance(node, Not):
        yield from _walk(node.child)
    elif isinstance(node, And | Or):
        for child in node.children:
            yield from _walk(child)
    elif isinstance(node, Near):
        yield from _walk(node.left)
        yield from _walk(node.right)


# --- compiled form -----------------------------------------------------------------------

# Fields are numbered in FIELDS order (title 0, body 1) so that span keys sort natively.
# A found stretch: (field, first token index, end token index, start char, end char).
_Occ: TypeAlias = tuple[int, int, int, int, int]
# A positional hit: (field, first token, end token, spans as (field, start, end)).
_SpanKey: TypeAlias = tuple[int, int, int]
_Hit: TypeAlias = tuple[int, int, int, tuple[_SpanKey, ...]]

# Multi-word aliases are also indexed with adjacent words glued together
# (Kim Jong Un -> Kim Jongun, KimJongUn), up to this many words.
_MAX_JOIN_WORDS = 5
# Lemma alternatives multiply across the words of an alias; beyond this, keep surfaces.
_MAX_PATHS = 256


class _TrieNode:
    """One step in the token trie; ``prefixes`` holds wildcard last words ("putin*")."""

    __slots__ = ("children", "ends", "min_prefix", "prefixes")

    def __init__(self) -> None:
        self.children: dict[str, _TrieNode] = {}
        self.ends: list[int] = []
        self.prefixes: dict[str, list[int]] = {}
        self.min_prefix = 1 << 30


@dataclass(frozen=True, slots=True)
class _Leaf:
    atom: int


@dataclass(frozen=True, slots=True)
class _CNot:
    child: _CNode


@dataclass(frozen=True, slots=True)
class _CAnd:
    children: tuple[_CNode, ...]


@dataclass(frozen=True, slots=True)
class _COr:
    children: tuple[_CNode, ...]


@dataclass(frozen=True, slots=True)
class _CNear:
    left: _CNode
    right: _CNode
    distance: int
    negated: bool = False


_CNode: TypeAlias = _Leaf | _CNot | _CAnd | _COr | _CNear


@dataclass(frozen=True, slots=True)
class _Atom:
    """What a leaf matches: any of its patterns, in one field or both."""

    patterns: tuple[int, ...]
    scope: int | None  # index into FIELDS


@dataclass(frozen=True, slots=True)
class _Rule:
    name: str
    root: _CNode
    atoms: frozenset[int]
    fires_on_nothing: bool  # true when no pattern occurs (NOT-only rules)


class _Compiler:
    """Accumulates patterns, atoms and the trie while rules are added (build time only)."""

    def __init__(self) -> None:
        self.root = _TrieNode()
        self.pattern_ids: dict[tuple[tuple[str, ...], bool], int] = {}
        self.text_ids: dict[tuple[str, bool], int] = {}  # spares re-tokenising shared aliases
        self.atom_ids: dict[_Atom, int] = {}
        self.leaf_ids: dict[Term | Phrase, int] = {}
        self.atoms: list[_Atom] = []

    def pattern(self, text: str, prefix: bool) -> int:
        pid = self.text_ids.get((text, prefix))
        if pid is not None:
            return pid
        # Aliases are indexed by their keys and alias forms only (see _paths).
        tokens = tokenize(text, documents=False)
        key = (tuple(t.key for t in tokens), prefix)  # = alias_key(text), tokenised once
        pid = self.pattern_ids.get(key)
        if pid is None:
            pid = self.pattern_ids[key] = len(self.pattern_ids)
            for path in _paths(tokens, prefix):
                self.insert(path, prefix, pid)
        self.text_ids[(text, prefix)] = pid
        return pid

    def insert(self, path: tuple[str, ...], prefix: bool, pid: int) -> None:
        node = self.root
        for key in path[:-1]:
            node = node.children.setdefault(key, _TrieNode())
        last = path[-1]
        if prefix:
            node.prefixes.setdefault(last, []).append(pid)
            node.min_prefix = min(node.min_prefix, len(last))
        else:
            node.children.setdefault(last, _TrieNode()).ends.append(pid)

    def atom(self, leaf: Term | Phrase) -> int:
        aid = self.leaf_ids.get(leaf)
        if aid is None:
            aid = self.leaf_ids[leaf] = self.new_atom(leaf)
        return aid

    def new_atom(self, leaf: Term | Phrase) -> int:
        if isinstance(leaf, Term):
            pids = []
            for alias in leaf.aliases:
                stripped = alias.strip()
                prefix = stripped.endswith("*")
                pids.append(self.pattern(stripped.removesuffix("*") if prefix else stripped, prefix))
            atom = _Atom(tuple(sorted(set(pids))), _field_index(leaf.scope))
        else:
            pid = self.pattern(leaf.text, leaf.prefix)
            atom = _Atom((pid,), _field_index(leaf.scope))
        aid = self.atom_ids.get(atom)
        if aid is None:
            aid = self.atom_ids[atom] = len(self.atoms)
            self.atoms.append(atom)
        return aid

    def node(self, node: Node) -> _CNode:
        if isinstance(node, Term | Phrase):
            return _Leaf(self.atom(node))
        if isinstance(node, Not):
            return _CNot(self.node(node.child))
        if isinstance(node, And):
            return _CAnd(tuple(self.node(c) for c in node.children))
        if isinstance(node, Or):
            return _COr(tuple(self.node(c) for c in node.children))
        return _CNear(self.node(node.left), self.node(node.right), node.distance, node.negated)


def alias_key(alias: str) -> tuple[tuple[str, ...], bool]:
    """What an alias matches: its words' normalised keys, and whether it ends in ``*``.

    Two aliases with one key match the same words ("North Korea" and "north  korea"), so
    the compiler indexes them once and ``check`` reports the second as redundant.
    """
    stripped = alias.strip()
    prefix = stripped.endswith("*")
    text = stripped.removesuffix("*") if prefix else stripped
    return keys(text), prefix


def _paths(tokens: tuple[Token, ...], prefix: bool) -> Iterator[tuple[str, ...]]:
    """Every key sequence under which an alias is indexed.

    Each word offers its surface key and lemmas; words may also be glued to their
    neighbours (so "Kim Jong Un" also finds "Kim Jongun").  A wildcard's last word is a
    plain prefix: no lemmas.
    """
    n = len(tokens)
    joins = range(1 << (n - 1)) if 1 < n <= _MAX_JOIN_WORDS else range(1)
    seen: set[tuple[str, ...]] = set()
    for mask in joins:
        groups: list[tuple[str, ...]] = []
        start = 0
        for i in range(n):
            if i == n - 1 or not mask & (1 << i):
                group = tokens[start : i + 1]
                if len(group) == 1 and not (prefix and i == n - 1):
                    groups.append(group[0].alias_forms)
                else:
                    groups.append(("".join(t.key for t in group),))
                start = i + 1
        combos = 1
        for g in groups:
            combos *= len(g)
        if combos > _MAX_PATHS:
            groups = [g[:1] for g in groups]
        for path in itertools.product(*groups):
            if path not in seen:
                seen.add(path)
                yield path


def _field_index(scope: Field | None) -> int | None:
    return None if scope is None else FIELDS.index(scope)


def _fires_on_nothing(node: _CNode) -> bool:
    if isinstance(node, _CNot):
        return not _fires_on_nothing(node.child)
    if isinstance(node, _CAnd):
        return all(_fires_on_nothing(c) for c in node.children)
    if isinstance(node, _COr):
        return any(_fires_on_nothing(c) for c in node.children)
    return False  # a leaf or NEAR needs something to be there


def _leaves(node: _CNode) -> Iterator[int]:
    if isinstance(node, _Leaf):
        yield node.atom
    elif isinstance(node, _CNot):
        yield from _leaves(node.child)
    elif isinstance(node, _CAnd | _COr):
        for child in node.children:
            yield from _leaves(child)
    else:
        yield from _leaves(node.left)
        yield from _leaves(node.right)


# --- matching ---------------------------------------------------------------------------


def _scan(root: _TrieNode, rows: list[TokenRow], field_index: int, found: dict[int, list[_Occ]]) -> None:
    """Walk the trie from every token; record each pattern occurrence once."""
    n = len(rows)
    seen: set[tuple[int, int, int]] = set()
    for i in range(n):
        stack = [(root, i, -1)]
        while stack:
            node, j, start = stack.pop()
            row = rows[j]
            for form in row[4]:
                child = node.children.get(form)
                if child is not None:
                    # A match starts where its first word's form starts (a Korean form may
                    # begin inside the word: 푸틴 in 반푸틴).
                    begin = row_start(row, form) if start < 0 else start
                    for pid in child.ends:
                        if (pid, i, j) not in seen:
                            seen.add((pid, i, j))
                            found.setdefault(pid, []).append((field_index, i, j + 1, begin, row_end(row, form)))
                    if (child.children or child.prefixes) and j + 1 < n:
                        stack.append((child, j + 1, begin))
                if node.prefixes:
                    for k in range(node.min_prefix, len(form) + 1):
                        for pid in node.prefixes.get(form[:k], ()):
                            if (pid, i, j) not in seen:
                                seen.add((pid, i, j))
                                begin = row_start(row, form) if start < 0 else start
                                found.setdefault(pid, []).append((field_index, i, j + 1, begin, row[1]))


class _Evaluation:
    """Per-document state: pattern occurrences and lazily built atom hits."""

    __slots__ = ("atoms", "found", "hit_cache", "sentences", "span_cache")

    def __init__(
        self, atoms: Sequence[_Atom], found: dict[int, list[_Occ]], sentences: Sequence[Sequence[int]] = ()
    ) -> None:
        self.atoms = atoms
        self.found = found
        self.sentences = sentences  # per field, the sentence number of each token
        # Built once per document however many rules share the atom.
        self.span_cache: dict[int, list[_SpanKey]] = {}
        self.hit_cache: dict[int, list[_Hit]] = {}

    def atom_spans(self, aid: int) -> list[_SpanKey]:
        spans = self.span_cache.get(aid)
        if spans is None:
            atom = self.atoms[aid]
            spans = self.span_cache[aid] = [
                (f, cs, ce)
                for pid in atom.patterns
                for f, _, _, cs, ce in self.found.get(pid, ())
                if atom.scope is None or atom.scope == f
            ]
        return spans

    def atom_hits(self, aid: int) -> list[_Hit]:
        hits = self.hit_cache.get(aid)
        if hits is None:
            atom = self.atoms[aid]
            hits = self.hit_cache[aid] = [
                (f, ts, te, ((f, cs, ce),))
                for pid in atom.patterns
                for f, ts, te, cs, ce in self.found.get(pid, ())
                if atom.scope is None or atom.scope == f
            ]
        return hits

    def hits(self, node: _CNode) -> list[_Hit]:
        """Occurrences of a positional node (leaf, OR of positionals, NEAR)."""
        if isinstance(node, _Leaf):
            return self.atom_hits(node.atom)
        if isinstance(node, _COr):
            return [h for c in node.children for h in self.hits(c)]
        if isinstance(node, _CNear):
            left = self.hits(node.left)
            if not left:
                return []
            if node.negated:
                return _not_near(left, self.hits(node.right), node.distance, self.sentences)
            if node.distance == SENTENCE:
                return _near_sentence(left, self.hits(node.right), self.sentences)
            return _near(left, self.hits(node.right), node.distance)
        raise AssertionError(f"not positional: {node!r}")  # the parser rejects these

    def truth(self, node: _CNode, spans: list[_SpanKey]) -> bool:
        """Whether ``node`` holds; appends the spans of positive evidence when it does."""
        if isinstance(node, _Leaf):
            keys = self.atom_spans(node.atom)
            spans.extend(keys)
            return bool(keys)
        if isinstance(node, _CAnd):
            mine: list[_SpanKey] = []
            for child in node.children:
                if not self.truth(child, mine):
                    return False
            spans.extend(mine)
            return True
        if isinstance(node, _CNot):
            return not self.truth(node.child, [])
        if isinstance(node, _COr):
            result = False
            for child in node.children:
                result = self.truth(child, spans) or result
            return result
        hits = self.hits(node)
        for hit in hits:
            spans.extend(hit[3])
        return bool(hits)


def _near(left: list[_Hit], right: list[_Hit], distance: int) -> list[_Hit]:
    by_field: dict[int, list[_Hit]] = {}
    for hit in right:
        by_field.setdefault(hit[0], []).append(hit)
    index: dict[int, tuple[list[_Hit], list[int], int]] = {}
    for f, hits in by_field.items():
        hits.sort(key=lambda h: h[1])
        index[f] = (hits, [h[1] for h in hits], max(h[2] - h[1] for h in hits))
    out: list[_Hit] = []
    for f, ls, le, lspans in left:
        entry = index.get(f)
        if entry is None:
            continue
        hits, starts, longest = entry
        lo = bisect_left(starts, ls - distance - longest)
        hi = bisect_right(starts, le + distance)
        for _, rs, re_, rspans in hits[lo:hi]:
            if rs >= le:
                gap = rs - le
            elif re_ <= ls:
                gap = ls - re_
            elif _same_words(lspans, rspans):
                continue  # occurrences sharing a word are one mention, not two
            else:
                gap = 0  # one lies between the other's words: "поставила России снаряды"
            if gap <= distance:
                out.append((f, min(ls, rs), max(le, re_), lspans + rspans))
    return out


def _not_near(left: list[_Hit], right: list[_Hit], distance: int, sentences: Sequence[Sequence[int]]) -> list[_Hit]:
    """The left occurrences with no right occurrence within ``distance`` words, or in their sentence.

    An overlapping right occurrence counts as near: "missile" inside "missile test" is the
    test's.  Few occurrences per document, so a scan per left occurrence is cheap.
    """
    if not right:
        return left
    out: list[_Hit] = []
    for hit in left:
        f, ls, le, _ = hit
        if distance == SENTENCE:
            sentence = sentences[f][ls]
            near = any(r[0] == f and sentences[f][r[1]] == sentence for r in right)
        else:
            near = any(r[0] == f and r[1] <= le + distance and r[2] >= ls - distance for r in right)
        if not near:
            out.append(hit)
    return out


def _near_sentence(left: list[_Hit], right: list[_Hit], sentences: Sequence[Sequence[int]]) -> list[_Hit]:
    by_key: dict[tuple[int, int], list[_Hit]] = {}
    for hit in right:
        by_key.setdefault((hit[0], sentences[hit[0]][hit[1]]), []).append(hit)
    out: list[_Hit] = []
    for f, ls, le, lspans in left:
        for _, rs, re_, rspans in by_key.get((f, sentences[f][ls]), ()):
            if rs >= le or re_ <= ls or not _same_words(lspans, rspans):
                out.append((f, min(ls, rs), max(le, re_), lspans + rspans))
    return out


def _same_words(left: tuple[_SpanKey, ...], right: tuple[_SpanKey, ...]) -> bool:
    """Whether two occurrences whose stretches overlap share a matched word.

    Those are one mention ("Korea" inside "North Korea").  One that only lies between
    the other's words ("России" between "поставила" and "снарядов") is a mention of its own.
    """
    return any(a[0] == b[0] and a[1] < b[2] and b[1] < a[2] for a in left for b in right)


# Words after which a full stop does not end a sentence ("Oct. 4", "Gen. Kim", "U.S.").
_ABBREVIATIONS = frozenset(
    {
        "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "mr", "mrs", "ms",
        "dr", "gen", "col", "lt", "sgt", "st", "no", "vs", "jr", "sr", "prof", "rep", "sen", "gov", "adm", "maj",
        "capt", "cpl", "pres",
    }
)  # fmt: skip
_SENTENCE_MARKS = frozenset("!?…。؟\n")


def _sentence_numbers(text: str, rows: list[TokenRow]) -> list[int]:
    """The sentence number of each token of ``text`` (see NEAR/s in the module docstring)."""
    out: list[int] = []
    number = 0
    prev_end = 0
    prev_key = ""
    for row in rows:
        start = row[0]
        if out and start > prev_end:
            gap = text[prev_end:start]
            if any(c in _SENTENCE_MARKS for c in gap):
                number += 1
            else:
                dot = gap.find(".")
                if (
                    dot >= 0
                    and gap[dot + 1 : dot + 2].isspace()
                    and not (len(prev_key) == 1 or prev_key in _ABBREVIATIONS)
                ):
                    number += 1
        out.append(number)
        prev_end, prev_key = row[1], row[2]
    return out


@dataclass(frozen=True, slots=True, eq=False)
class Matcher:
    """Compiled rules; ``match`` is pure, and safe to call from many threads at once.

    Matching a document: each field is tokenised once (every word with all the forms it
    can match under: lemmas, clitic-free stems, Hangul prefixes); from every word the
    trie of all aliases and phrases is walked, so each pattern occurrence is found once
    however many rules share it; the pattern -> rules index names the rules worth
    evaluating; those are evaluated over cached per-atom occurrences, in rule order.
    Nothing here is mutated after ``make_matcher`` returns.
    """

    rules: tuple[str, ...]
    _compiled: tuple[_Rule, ...] = field(repr=False)
    _atoms: tuple[_Atom, ...] = field(repr=False)
    _trie: _TrieNode = field(repr=False)
    _pattern_rules: Mapping[int, tuple[int, ...]] = field(repr=False)
    _always: tuple[int, ...] = field(repr=False)
    _sentences: bool = field(default=False, repr=False)  # some rule uses NEAR/s

    def match(self, doc: Document) -> list[RuleHit]:
        """The rules that fire on ``doc``, in rule order, each with its spans."""
        found: dict[int, list[_Occ]] = {}
        texts = (doc.title, doc.body)  # in FIELDS order
        sentences: list[list[int]] = [[], []]
        for index, text in enumerate(texts):
            if text and not (index == 0 and doc.title_derived):  # a derived title is not a headline
                rows = token_rows(text, doc.language)
                _scan(self._trie, rows, index, found)
                if self._sentences:
                    sentences[index] = _sentence_numbers(text, rows)
        touched: set[int] = set()
        for pid in found:
            touched.update(self._pattern_rules.get(pid, ()))
        # A rule none of whose patterns occurred has its empty-document value: only the
        # NOT-only kind fires then, and without evaluation.
        untouched_always = {i for i in self._always if i not in touched}
        evaluation = _Evaluation(self._atoms, found, sentences)
        made: dict[_SpanKey, Span] = {}  # one Span object per stretch, shared by rules
        out: list[RuleHit] = []
        for index in sorted(touched | untouched_always):
            rule = self._compiled[index]
            if index in untouched_always:
                out.append(RuleHit(rule.name, ()))
                continue
            keys: list[_SpanKey] = []
            if evaluation.truth(rule.root, keys):
                spans = []
                for key in sorted(set(keys)):
                    span = made.get(key)
                    if span is None:
                        f, a, b = key
                        span = made[key] = Span(FIELDS[f], a, b, texts[f][a:b])
                    spans.append(span)
                out.append(RuleHit(rule.name, tuple(spans)))
        return out


def make_matcher(
    terms: Mapping[str, Sequence[str]],
    rules: Sequence[tuple[str, str]],
    clauses: Mapping[str, str] | None = None,
) -> Matcher:
    """Parse and compile ``(name, query)`` rules; raise QueryError for the first bad one."""
    compiler = _Compiler()
    compiled: list[_Rule] = []
    for name, text in rules:
        root = compiler.node(parse_query(text, terms, clauses).root)
        compiled.append(_Rule(name, root, frozenset(_leaves(root)), _fires_on_nothing(root)))
    pattern_rules: dict[int, list[int]] = {}
    for index, rule in enumerate(compiled):
        pids = {pid for aid in rule.atoms for pid in compiler.atoms[aid].patterns}
        for pid in pids:
            pattern_rules.setdefault(pid, []).append(index)
    return Matcher(
        rules=tuple(r.name for r in compiled),
        _compiled=tuple(compiled),
        _atoms=tuple(compiler.atoms),
        _trie=compiler.root,
        _pattern_rules={pid: tuple(ix) for pid, ix in pattern_rules.items()},
        _always=tuple(i for i, r in enumerate(compiled) if r.fires_on_nothing),
        _sentences=any(_uses_sentences(r.root) for r in compiled),
    )


def _uses_sentences(node: _CNode) -> bool:
    if isinstance(node, _CNear):
        return node.distance == SENTENCE or _uses_sentences(node.left) or _uses_sentences(node.right)
    if isinstance(node, _CNot):
        return _uses_sentences(node.child)
    if isinstance(node, _CAnd | _COr):
        return any(_uses_sentences(c) for c in node.children)
    return False
