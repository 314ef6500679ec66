"""Language-aware text normalisation and tokenisation for matching.

This module turns a string into normalised tokens that remember where they came from
(character offsets into the *original* string, so matches can be highlighted), and it is
the one pipeline used for both document text and rule aliases: NFKC, case folding,
diacritics stripped from Latin and Greek (stress marks from Cyrillic), Arabic tashkeel
and tatweel removed and its letter variants unified, typographic apostrophes unified,
hyphens treated as spaces, digits of every script made ASCII.  On top of the surface key
each token also carries the extra *forms* under which a document token may match an alias:
pymorphy3 lemmas for Russian and Ukrainian, Snowball (PyStemmer) stems for English,
stems with Arabic proclitics (the article among them), pronoun suffixes and dual/plural
endings removed, and for Korean the word is cut into its content morphemes by kiwipiepy
(particles and endings dropped, glued compounds separated), one token per morpheme.  It
must not do I/O beyond pymorphy3 and kiwipiepy loading their bundled models on first use
(each once per process), must not know about rules or documents, and must stay
deterministic: the same input always yields the same tokens.  What it yields is versioned
by :data:`ANALYSER_VERSION`, because stored match spans are offsets computed from it.
"""

from __future__ import annotations

import re
import threading
import unicodedata
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any, TypeAlias

__all__ = [
    "ANALYSER_VERSION",
    "Token",
    "TokenRow",
    "fold",
    "has_hangul",
    "keys",
    "korean_loaded",
    "load_korean",
    "normalize",
    "row_end",
    "row_start",
    "token_rows",
    "tokenize",
    "words",
]

# Bump whenever tokens, forms or offsets change for some input: stored match spans are
# offsets this analyser produced.  1: surface keys, pymorphy3 lemmas, Arabic clitic stems,
# left-anchored Hangul prefixes.  2: kiwipiepy morphemes for Korean instead of prefixes,
# Snowball stems for English, the Arabic article folded on aliases too, Arabic dual and
# plural endings stripped on documents.  3: an Arabic document word written with the
# accusative tanwin (جنوداً, صاروخاً) also offers the stems of its word without the alif.
# 4: a Latin or Cyrillic word is cut where a lower-case run meets a capital (a link's lost
# space: "inRussia's" -> in, Russia, s; "leaderKim" -> leader, Kim; see _split_glued).
# 5: a Korean alias in the plain past (보냈다) also matches the verb with another ending
# (보냈다고, 보냈으며; see _hangul_alias_forms).
ANALYSER_VERSION = 5

# --- character classes -------------------------------------------------------------------

# Apostrophes are separators ("Putin's" -> putin, s) except between two Cyrillic letters,
# where Ukrainian uses them inside words (м'ясо, В'ячеслав).  U+02BC is a *letter* to
# Unicode (category Lm), so it is excluded from word characters explicitly.
_APOSTROPHES = "'\u2019\u2018\u02bc\u02b9\u0060\u00b4\u2032\uff07"
# Invisible format characters that occur inside words and must neither split nor survive.
_INVISIBLE_JOINERS = "\u00ad\u200c\u200d\u200e\u200f\u2060\u061c\ufeff"
_TATWEEL = "\u0640"


def _is_word_char(c: str) -> bool:
    """A character that belongs to a word: letters, digits and combining marks.

    Combining marks count because Arabic harakat and Latin combining accents are not
    ``\\w`` to Python, and splitting on them would cut vocalised words in pieces.
    """
    if c == "_" or c in _APOSTROPHES:
        return False
    return c.isalnum() or unicodedata.category(c)[0] == "M" or c in _INVISIBLE_JOINERS


# Words without combining marks: the C-level \w class is ~10x faster than the full class
# below, so it serves every text that has no marks or invisible joiners (most of them).
_PLAIN_WORD_RE = re.compile(r"[^\W_\u02b9\u02bc]+")


def _class(ranges: Iterable[Sequence[int]]) -> str:
    return "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)


def _add(ranges: list[list[int]], cp: int) -> None:
    if ranges and ranges[-1][1] == cp - 1:
        ranges[-1][1] = cp
    else:
        ranges.append([cp, cp])


def unicode_ranges() -> tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]:
    """The word-character ranges, the mark ranges and the non-ASCII decimal digits (as
    ``(code point, digit)``) of this Python's Unicode database, by :func:`_is_word_char`.

    A scan of ~210,000 code points (~45 ms): :mod:`monitor.core.unicode_tables` keeps its
    result for the Unicode version CPython 3.11 ships, so that no process pays it at start.
    """
    words: list[list[int]] = []
    marks: list[list[int]] = []
    digits: list[tuple[int, int]] = []
    # Planes 0-3 hold every assigned letter and digit; plane 14 holds variation selectors.
    for cp in [*range(0x32400), *range(0xE0000, 0xE1000)]:
        c = chr(cp)
        if _is_word_char(c):
            _add(words, cp)
            if not c.isalnum():
                _add(marks, cp)
        if cp > 0x7F and unicodedata.category(c) == "Nd":
            digits.append((cp, unicodedata.digit(c)))
    return tuple((a, b) for a, b in words), tuple((a, b) for a, b in marks), tuple(digits)


def render_unicode_tables() -> str:
    """The source of :mod:`monitor.core.unicode_tables` for this Python (``make unicode-tables``)."""
    words, marks, digits = unicode_ranges()
    runs: list[list[int]] = []  # digits as runs of consecutive code points and values
    for cp, d in digits:
        if runs and runs[-1][1] == cp - 1 and runs[-1][2] + (cp - runs[-1][0]) == d:
            runs[-1][1] = cp
        else:
            runs.append([cp, cp, d])

    def text(cells: Sequence[str]) -> str:
        lines = [" ".join(cells[i : i + 8]) for i in range(0, len(cells), 8)]
        return "".join(f'    "{line} "\n' for line in lines)

    return (
        '"""Unicode tables of :mod:`monitor.core.text`, generated by ``make unicode-tables``: do not edit.\n\n'
        "What :func:`monitor.core.text.unicode_ranges` computes for Unicode ``UNIDATA_VERSION``\n"
        "(~45 ms a process otherwise), and used only by a Python with that version: word-character\n"
        "and mark ranges as hexadecimal ``first-last``, non-ASCII decimal digits as ``first-last:value``\n"
        '(the value of the first; the others follow it).\n"""\n\n'
        f'UNIDATA_VERSION = "{unicodedata.unidata_version}"\n\n'
        f"WORDS = (\n{text([f'{a:X}-{b:X}' for a, b in words])})\n\n"
        f"MARKS = (\n{text([f'{a:X}-{b:X}' for a, b in marks])})\n\n"
        f"DIGITS = (\n{text([f'{a:X}-{b:X}:{d}' for a, b, d in runs])})\n"
    )


def _stored_ranges() -> tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]:
    """:func:`unicode_ranges` as :mod:`monitor.core.unicode_tables` keeps them."""
    from monitor.core import unicode_tables as t

    def ranges(s: str) -> tuple[tuple[int, int], ...]:
        return tuple((int(a, 16), int(b, 16)) for a, _, b in (cell.partition("-") for cell in s.split()))

    digits = []
    for cell in t.DIGITS.split():
        span, _, value = cell.partition(":")
        first, last = (int(x, 16) for x in span.split("-"))
        digits += [(cp, int(value) + cp - first) for cp in range(first, last + 1)]
    return ranges(t.WORDS), ranges(t.MARKS), tuple(digits)


@cache
def _tables() -> tuple[re.Pattern[str], re.Pattern[str], dict[int, str], re.Pattern[str], re.Pattern[str]]:
    """Build (word regex, mark detector, digit table, and the first two for text without
    astral characters) once, on first use.

    The ranges come from :mod:`monitor.core.unicode_tables` when it was generated from this
    Python's Unicode version, else from :func:`unicode_ranges` (a test holds the two equal).
    A character class that reaches beyond the Basic Multilingual Plane is checked range by
    range, so the full mark detector cost ~0.25 µs a character; the BMP-only one, which
    serves any text :data:`_ASTRAL_RE` finds nothing in, ~50x less.
    """
    from monitor.core.unicode_tables import UNIDATA_VERSION

    words, marks, digits = _stored_ranges() if unicodedata.unidata_version == UNIDATA_VERSION else unicode_ranges()
    bmp_words = [(a, min(b, 0xFFFF)) for a, b in words if a <= 0xFFFF]
    bmp_marks = [(a, min(b, 0xFFFF)) for a, b in marks if a <= 0xFFFF]
    return (
        re.compile(f"[{_class(words)}]+"),
        re.compile(f"[{_class(marks)}]"),
        {cp: str(d) for cp, d in digits},
        re.compile(f"[{_class(bmp_words)}]+"),
        re.compile(f"[{_class(bmp_marks)}]"),
    )


# Any character beyond the Basic Multilingual Plane (one range: a fast scan).
_ASTRAL_RE = re.compile("[\U00010000-\U0010ffff]")


# The ranges of _is_hangul, for a scan of a whole text in C, and halfwidth Hangul (which
# folding turns into them).
_HANGUL_RE = re.compile("[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\ud7b0-\ud7ff\uffa0-\uffdc]")


def has_hangul(s: str) -> bool:
    """Whether ``s`` holds a Hangul character (a word of it would load kiwipiepy's model)."""
    return _HANGUL_RE.search(s) is not None


def _is_hangul(c: str) -> bool:
    o = ord(c)
    return (
        0xAC00 <= o <= 0xD7A3
        or 0x1100 <= o <= 0x11FF
        or 0x3130 <= o <= 0x318F
        or 0xA960 <= o <= 0xA97F
        or 0xD7B0 <= o <= 0xD7FF
        or 0xFFA0 <= o <= 0xFFDC
    )


def _is_cyrillic(c: str) -> bool:
    o = ord(c)
    return 0x0400 <= o <= 0x052F or 0x1C80 <= o <= 0x1C8F or 0xA640 <= o <= 0xA69F


def _is_arabic(c: str) -> bool:
    o = ord(c)
    return 0x0600 <= o <= 0x06FF or 0x0750 <= o <= 0x077F or 0x08A0 <= o <= 0x08FF


def _is_latin_or_greek(c: str) -> bool:
    o = ord(c)
    return (
        (o < 0x0250 and c.isalpha())
        or 0x1E00 <= o <= 0x1EFF
        or 0x2C60 <= o <= 0x2C7F
        or 0xA720 <= o <= 0xA7FF
        or 0x0370 <= o <= 0x03FF
        or 0x1F00 <= o <= 0x1FFF
    )


# --- folding one word -----------------------------------------------------------------

# Arabic harakat, Quranic annotation marks, superscript alef: vowelling that writers add
# or leave out freely.  Hamza above/below (U+0654/5) is here too, so that after NFD
# أ إ آ fold to ا and the common spelling variants مسؤول/مسئول meet.
_ARABIC_MARKS = frozenset(
    chr(c)
    for c in [
        *range(0x0610, 0x061B),
        *range(0x064B, 0x0660),
        0x0670,
        *range(0x06D6, 0x06EE),
    ]
    if c not in (0x06DD, 0x06DE, 0x06E5, 0x06E6, 0x06E9)
)
# Cyrillic keeps the breve of й/ў and the diaeresis of ї (letters in their own right);
# stress accents (Пу́тин) go.  ё is folded to е below, as Russian writers do.
_CYRILLIC_KEPT_MARKS = frozenset("\u0306\u0308")

_FOLD_TABLE: dict[int, str | None] = {
    **{ord(c): None for c in _INVISIBLE_JOINERS + _TATWEEL},
    **{ord(c): "'" for c in _APOSTROPHES},
    ord("إ"): "ا",
    ord("أ"): "ا",
    ord("آ"): "ا",
    ord("ٱ"): "ا",
    ord("ى"): "ي",
    ord("ة"): "ه",
    ord("ی"): "ي",  # Persian yeh, common in Arabic text typed on Persian layouts
    ord("ک"): "ك",  # Persian keheh, likewise
    ord("ё"): "е",
    # Latin letters whose "diacritic" is not a combining mark, so NFD cannot strip it.
    ord("ł"): "l",
    ord("ø"): "o",
    ord("đ"): "d",
    ord("ħ"): "h",
    ord("ı"): "i",
}


def _drops(mark: str, base: str) -> bool:
    """Whether a combining mark after ``base`` is noise rather than part of the letter."""
    if mark in _ARABIC_MARKS or (base and _is_latin_or_greek(base)):
        return True
    return bool(base) and _is_cyrillic(base) and mark not in _CYRILLIC_KEPT_MARKS


def _strip_marks(s: str) -> str:
    """Drop the combining marks that do not distinguish words in their script."""
    out: list[str] = []
    base = ""
    for c in unicodedata.normalize("NFD", s):
        if unicodedata.category(c)[0] != "M":
            base = c
        elif _drops(c, base):
            continue
        out.append(c)
    return unicodedata.normalize("NFC", "".join(out))


def _fold_once(s: str) -> str:
    s = unicodedata.normalize("NFKC", s)
    s = _strip_marks(s)  # before casefold: U+0345 casefolds into a Greek letter
    s = s.casefold()
    s = _strip_marks(s)  # after casefold: İ casefolds to i + U+0307
    s = s.translate(_FOLD_TABLE).translate(_tables()[2])
    # NFKC may have produced spaces or punctuation (ﷺ, ¼): a key is one word, so keep
    # word characters only, and an apostrophe only inside a Cyrillic word.
    kept: list[str] = []
    for i, c in enumerate(s):
        if c == "'":
            if 0 < i < len(s) - 1 and _is_cyrillic(s[i - 1]) and _is_cyrillic(s[i + 1]):
                kept.append(c)
        elif _is_word_char(c):
            kept.append(c)
    return "".join(kept)


@lru_cache(maxsize=1 << 16)
def fold(word: str) -> str:
    """Normalise one word to its matching key (may be ``""`` for pure marks or tatweel).

    Applied until it stops changing, so ``fold(fold(w)) == fold(w)`` holds by
    construction even for the odd characters whose NFKC and case folding interact.
    """
    for _ in range(4):
        folded = _fold_once(word)
        if folded == word:
            break
        word = folded
    return word


# --- extra forms: Russian/Ukrainian, Arabic, Korean -----------------------------------

_morph_lock = threading.Lock()
_UK_ONLY = frozenset("іїєґ")
_RU_ONLY = frozenset("ыэъ")
# Case endings tried when pymorphy3 does not know a word at all (foreign names: Ын, Ына,
# Ыном): without them "Ким Чен Ына" would never meet the alias "Ким Чен Ын".
_SLAVIC_ENDINGS = (
    "ами", "ями", "ого", "его", "ому", "ему", "ові", "еві",
    "ой", "ей", "ом", "ем", "ам", "ям", "ах", "ях", "ов", "ев", "ів",
    "а", "я", "у", "ю", "е", "ы", "и", "і",
)  # fmt: skip


_analyzers: dict[str, Any] = {}


def _analyzer(lang: str) -> Any:
    """The pymorphy3 analyzer for ``lang``, loaded once on first Cyrillic word (~0.1-1 s).

    Double-checked under a lock so that two threads meeting the first Russian article at
    the same time do not both load the dictionaries.
    """
    analyzer = _analyzers.get(lang)
    if analyzer is None:
        with _morph_lock:
            analyzer = _analyzers.get(lang)
            if analyzer is None:
                import pymorphy3  # untyped; pyproject tells mypy to accept that

                analyzer = _analyzers[lang] = pymorphy3.MorphAnalyzer(lang=lang)
    return analyzer


def _slavic_langs(key: str, language: str | None) -> tuple[str, ...]:
    if language in ("ru", "uk"):
        return (language,)
    letters = set(key)
    if letters & _UK_ONLY:
        return ("uk",)
    if letters & _RU_ONLY:
        return ("ru",)
    return ("ru", "uk")


@lru_cache(maxsize=1 << 17)
def _lemmas(key: str, language: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(lemmas, guessed stems) of a Cyrillic key; stems only for words no dictionary knows."""
    lemmas: dict[str, None] = {}
    known = False
    for lang in _slavic_langs(key, language):
        morph = _analyzer(lang)
        known = known or bool(morph.word_is_known(key))
        for parse in morph.parse(key):
            lemma = fold(str(parse.normal_form))
            if lemma and lemma != key:
                lemmas[lemma] = None
    stems: dict[str, None] = {}
    if not known:
        for ending in _SLAVIC_ENDINGS:
            if key.endswith(ending) and len(key) - len(ending) >= 2:
                stems[key[: -len(ending)]] = None
    return tuple(lemmas), tuple(s for s in stems if s not in lemmas)


# Proclitics (conjunction, preposition, article and their stacks), longest first.  Every
# candidate is tried, not just the longest, because ب/ل/ك may equally be the first letter
# of the word itself (بوتين): the document token offers all readings and the alias picks.
_ARABIC_PROCLITICS = tuple(
    sorted(
        {
            "و", "ف", "ب", "ك", "ل",
            "ال", "وال", "فال", "بال", "كال", "لل",
            "ولل", "فلل", "وبال", "فبال", "وكال", "فكال",
            "وب", "ول", "وك", "فب", "فل", "فك",
        },
        key=len,
        reverse=True,
    )
)  # fmt: skip
# Attached pronouns only: plural/dual endings (ين ون ات) are not safe to strip because
# names end in them (بوتين), and a lone ه is too often the folded ة.
_ARABIC_SUFFIXES = ("هما", "كما", "ها", "هم", "هن", "كم", "كن", "نا")
# Dual, sound plural and "they" verb endings (جنديين, جنديان, قتلوا), and the feminine plural
# ات, which stands for a singular ة (folded to ه).  Stripped on document words only: a
# stripped form can only ever meet an alias that is itself that stem, so بوتين -> بوت
# is harmless, while an alias is never cut (that is what made بوتين unsafe to strip).
_ARABIC_NUMBER_SUFFIXES = (("ين", ""), ("ان", ""), ("ون", ""), ("وا", ""), ("ات", "ه"))
ARABIC_MIN_STEM = 3


def _arabic_stems(key: str) -> tuple[str, ...]:
    heads = [key] + [key[len(p) :] for p in _ARABIC_PROCLITICS if key.startswith(p)]
    stems: dict[str, None] = {}
    for head in heads:
        if len(head) >= ARABIC_MIN_STEM:
            stems[head] = None
        for suffix in _ARABIC_SUFFIXES:
            if head.endswith(suffix) and len(head) - len(suffix) >= ARABIC_MIN_STEM:
                stems[head[: -len(suffix)]] = None
        for suffix, replacement in _ARABIC_NUMBER_SUFFIXES:
            if head.endswith(suffix) and len(head) - len(suffix) >= ARABIC_MIN_STEM:
                stems[head[: -len(suffix)] + replacement] = None
    stems.pop(key, None)
    return tuple(stems)


# The accusative indefinite ending: tanwin fath (ً) with its seat alif, as in جنوداً, جنودًا.
_FATHATAN = "\u064b"


def _arabic_document_forms(raw: str, key: str) -> tuple[str, ...]:
    """A document word's key and stems; with the accusative tanwin, those of the word without its alif too.

    "أرسلت ... جنوداً" is the جنود of every alias: folding drops the tanwin mark and
    leaves the seat alif (جنودا), which no alias has.  Only a word the writer marked with
    the tanwin loses the alif, since many words end in one of their own (روسيا, كوريا).
    """
    forms = (key, *_arabic_stems(key))
    if _FATHATAN in raw and key.endswith("ا") and len(key) - 1 >= ARABIC_MIN_STEM:
        bare = key[:-1]
        extra = (bare, *_arabic_stems(bare))
        forms = tuple(dict.fromkeys((*forms, *extra)))
    return forms


def _arabic_alias_forms(key: str) -> tuple[str, ...]:
    """An alias word written with the article also stands for its bare form.

    "الدفاع المشترك" must meet "معاهدة دفاع مشترك": documents already offer the form
    without ال, so the alias is indexed under both.  Only the article is dropped: other
    proclitics are letters of too many names (ب of بوتين).
    """
    if key.startswith("ال") and len(key) - 2 >= ARABIC_MIN_STEM:
        return (key, key[2:])
    return (key,)


# --- English: Snowball stems ----------------------------------------------------------

_stemmers: dict[str, Any] = {}
# Shorter stems collide with unrelated words (arms -> arm, POWs -> pow): keep them exact.
EN_MIN_STEM = 4
# Snowball also strips derivational suffixes (Putinism -> putin, prisoners -> prison,
# deployment -> deploy); only inflection may make two words meet, so the stem is used
# only when what it cut off is one of these.
_EN_INFLECTIONS = frozenset({"s", "es", "e", "ed", "d", "ing", "y"})


@lru_cache(maxsize=1 << 16)
def _en_forms(key: str) -> tuple[str, ...]:
    """(key, Snowball stem) for an English word, or (key,) when stemming changes nothing."""
    stemmer = _stemmers.get("en")
    if stemmer is None:
        import Stemmer  # PyStemmer; untyped, pyproject tells mypy to accept that

        stemmer = _stemmers.setdefault("en", Stemmer.Stemmer("english"))
    if not key.isalpha():
        return (key,)
    stem = str(stemmer.stemWord(key))
    if stem == key or len(stem) < EN_MIN_STEM:
        return (key,)
    common = 0
    while common < len(stem) and key[common] == stem[common]:
        common += 1
    return (key, stem) if key[common:] in _EN_INFLECTIONS else (key,)


# --- Korean: kiwipiepy morphemes ------------------------------------------------------

_kiwi_lock = threading.Lock()
_kiwis: dict[str, Any] = {}
# Morphemes a word may not *start* a match with: particles (J), endings (E), derivational
# prefixes and suffixes (XP, XS: 무 in 무기한, 반 in 반푸틴), the copula (VC),
# punctuation and symbols.  A match may start at any other morpheme.
_KO_NO_START = ("J", "E", "XP", "XS", "VC", "SF", "SP", "SS", "SE", "SO", "SW", "SB", "Z")
# Nouns kiwipiepy keeps whole although they are compounds (북한군 = 북한 + 군,
# 쿠르스크지역 = 쿠르스크 + 지역) also offer their prefixes of at least this many
# syllables: 북한 matches 북한군, while 북 never matches 북해 or 북극.
KO_MIN_COMPOUND_PREFIX = 2


def _kiwi() -> Any:
    """The kiwipiepy analyser, loaded once per process on the first Hangul word (~1.1 CPU s).

    The typo and multi-word dictionaries are left out: we match what was written, and
    they triple the load time.  ``num_workers=0`` runs it in the calling thread, with no
    thread pool of its own: it loads in 1.1 CPU s instead of 1.4-1.5 (the pool's threads
    start with it), its results are the same (we tokenize one word at a time), and a
    process that has loaded it can fork (see :func:`load_korean`).
    """
    kiwi = _kiwis.get("ko")
    if kiwi is None:
        with _kiwi_lock:
            kiwi = _kiwis.get("ko")
            if kiwi is None:
                from kiwipiepy import Kiwi

                with warnings.catch_warnings():
                    # 0 meant "every core" before kiwipiepy 0.21 and warns of the change;
                    # one thread is what we want.
                    warnings.filterwarnings("ignore", "behavior of `num_workers=0`", DeprecationWarning)
                    kiwi = Kiwi(num_workers=0, load_typo_dict=False, load_multi_dict=False)
                kiwi.tokenize("한")  # its loading is lazy: finish it here, under the lock
                _kiwis["ko"] = kiwi
    return kiwi


def korean_loaded() -> bool:
    """Whether this process has loaded kiwipiepy's model."""
    return "ko" in _kiwis


def load_korean() -> None:
    """Load kiwipiepy's model now rather than at the first Hangul word.

    The CPU pool's forkserver calls this (:mod:`monitor.stages.korean`) when the config
    watches Korean text, so its worker processes fork with the model loaded once instead
    of each loading its own (~1.1 CPU s and ~330 MiB a worker; forked, the pages are shared).
    """
    _kiwi()


@lru_cache(maxsize=1 << 17)
def _hangul_forms(key: str) -> tuple[str, ...]:
    """The forms a Hangul word matches under: its stretches that kiwipiepy's morphemes bound.

    A stretch starts at the word's start or where a content morpheme starts, and ends
    where any morpheme ends, so 김정은이 offers 김정은 (the particle cut off), 포괄적인
    offers 포괄 and 포괄적, 반푸틴 offers 푸틴, but 무기한 (무 + 기한) never offers 무기,
    and 북해함대 never offers 북.
    Inside a noun the word's own prefixes of :data:`KO_MIN_COMPOUND_PREFIX` syllables or
    more count too (see there).  The word is analysed alone, not in its sentence, so the
    result depends on the word only and is cached; the whole word is always a form, which
    covers the rare word the analyser cuts wrongly on its own (포로 as 포 + 로).
    """
    kiwi = _kiwi()
    with _kiwi_lock:  # one analyser per process; its thread-safety is not documented
        morphemes = kiwi.tokenize(key)
    starts: set[int] = {0}  # the word as written, up to any morpheme end
    ends: set[int] = {len(key)}
    inner: dict[str, None] = {}
    for m in morphemes:
        tag, a = str(m.tag), int(m.start)
        b = a + int(m.len)
        ends.add(b)
        if tag.startswith(_KO_NO_START):
            continue
        starts.add(a)
        if tag.startswith("NN"):
            for k in range(a + KO_MIN_COMPOUND_PREFIX, b):
                inner[key[a:k]] = None
    forms: dict[str, None] = {key: None}
    for a in sorted(starts):
        for b in sorted(ends):
            if b > a:
                forms[key[a:b]] = None
    forms.update(inner)
    return tuple(forms)


# The final consonant ㅆ (jongseong index 20 of 28) on a precomposed Hangul syllable.
_JONG_SSANG_SIOT = 20


def _hangul_alias_forms(key: str) -> tuple[str, ...]:
    """An alias word in the past tense's dictionary form also stands for its other endings.

    Analysts write a Korean verb as the plain past 보냈다 ("sent"), while the news quotes
    it (보냈다고), joins it (보냈으며, 보냈고) or uses it before a noun (보냈던).  The verb
    stem and the past marker end where the ending starts (보냈 in 보냈 + 다), so the alias
    also offers that stretch; a document word offers it only where kiwipiepy puts a
    morpheme boundary there (see _hangul_forms), so 보냈 never matches inside a noun.
    Found without the analyser: the past marker fuses into the syllable before 다 as the
    final consonant ㅆ, which no noun ending in 다 has in the texts we read.
    """
    if len(key) >= 2 and key[-1] == "다":
        before = ord(key[-2]) - 0xAC00
        if 0 <= before < 11172 and before % 28 == _JONG_SSANG_SIOT:
            return (key, key[:-1])
    return (key,)


# --- tokens ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Token:
    """One normalised word and where it sits in the original string.

    ``key`` is the surface key; ``alias_forms`` are the keys an alias word is indexed
    under (key + lemmas); ``forms`` are every key a document word can match under (key,
    lemmas, Arabic stems, guessed Slavic stems, and for Hangul every left-anchored prefix).
    """

    start: int
    end: int
    key: str
    alias_forms: tuple[str, ...]
    forms: tuple[str, ...]

    def end_of(self, form: str) -> int:
        """Original end offset of the part matched by ``form``.

        A Hangul prefix (김정은 in 김정은이) ends before the particle when the original
        word has one character per key character; anything else covers the whole word.
        """
        return row_end((self.start, self.end, self.key, self.alias_forms, self.forms), form)


@lru_cache(maxsize=1 << 16)
def _keys(raw: str) -> tuple[str, ...]:
    """Surface key(s) of one raw word: usually one, more if folding exposed a script change."""
    return tuple(_split_hangul(fold(raw)))


_Analysed: TypeAlias = tuple[int, int, str, tuple[str, ...], tuple[str, ...]]


@lru_cache(maxsize=1 << 16)
def _analyse(raw: str, language: str | None, documents: bool = True) -> tuple[_Analysed, ...]:
    """Tokens of one raw word: (start, end) within ``raw``, key, alias forms, document forms.

    One token per key, covering the whole word (folding rarely yields two keys).
    ``documents=False`` (an alias being compiled) leaves a Hangul word's document forms
    out: an alias word is taken as written, and analysing it would load kiwipiepy's model
    (~2-3 s and ~300 MB) at every start, before any Korean text has arrived.
    """
    out: list[_Analysed] = []
    keys = _keys(raw)
    whole = (0, len(raw))
    for key in keys:
        first = key[0]
        alias_forms: tuple[str, ...] = (key,)
        forms: tuple[str, ...] = (key,)
        if _is_hangul(first):
            # An alias word is taken as written, save a past-tense ending (see
            # _hangul_alias_forms); the document word offers every stretch its morphemes
            # bound (see _hangul_forms).
            alias_forms = _hangul_alias_forms(key)
            forms = _hangul_forms(key) if documents else (key,)
        elif _is_cyrillic(first):
            lemmas, stems = _lemmas(key, language)
            alias_forms = (key, *lemmas)
            forms = (key, *lemmas, *stems)
        elif _is_arabic(first):
            alias_forms = _arabic_alias_forms(key)
            forms = _arabic_document_forms(raw, key)
        elif key.isascii():
            alias_forms = _en_forms(key)
            forms = alias_forms if language in (None, "en") else (key,)
        out.append((*whole, key, alias_forms, forms))
    return tuple(out)


def _split_hangul(word: str) -> Iterator[str]:
    """Split where Hangul meets another script (G7에서 -> g7, 에서; 2025년 -> 2025, 년).

    Korean glues particles to Latin names and numbers too; splitting keeps "no Hangul
    before the alias" meaningful and lets NATO in NATO는 match.
    """
    if not word:
        return
    start = 0
    for i in range(1, len(word)):
        if _is_hangul(word[i]) != _is_hangul(word[i - 1]):
            yield word[start:i]
            start = i
    yield word[start:]


def _language_key(language: str | None) -> str | None:
    """Reduce a language hint to the analysers it picks ("ru", "uk", "en", "other" or None)."""
    if not language:
        return None
    primary = language.replace("_", "-").split("-", 1)[0].lower()
    return primary if primary in ("ru", "uk", "en") else "other"


def _is_base(c: str) -> bool:
    return unicodedata.category(c)[0] != "M" and c not in _INVISIBLE_JOINERS


def _hangul_cuts(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """Split a raw word where Hangul meets another script, keeping exact offsets.

    Korean glues particles to Latin names and numbers too (NATO는, 2025년): splitting
    lets NATO match and keeps "no Hangul before the alias" meaningful.  A combining mark
    stays with the letter before it.
    """
    cut = start
    prev_hangul: bool | None = None
    for j in range(start, end):
        c = text[j]
        if not _is_base(c):
            continue
        hangul = _is_hangul(c)
        if prev_hangul is not None and hangul != prev_hangul:
            yield cut, j
            cut = j
        prev_hangul = hangul
    yield cut, end


def _raw_spans(text: str) -> tuple[tuple[int, int], ...]:
    """Offsets of the matcher's raw words: runs of word characters, with three fix-ups
    (Cyrillic apostrophes joined, glued words cut, mixed Hangul words cut)."""
    return _spans(text)[1]


@lru_cache(maxsize=8)
def _spans(text: str) -> tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]:
    """The raw words of ``text`` twice: for :func:`words` (fingerprints), and for the matcher.

    They differ only where a page glued words together (:func:`_split_glued`, analyser
    version 4): fingerprints keep such a word whole, so that the stored shingles and
    band keys (FINGERPRINT_VERSION 1, pinned by golden tests) do not move with the
    matcher's analyser.  Each fix-up first checks with one regex search whether the text
    needs it at all, so plain text pays for one C-level scan.  Cached for the last few
    texts: ingest reads each title and body twice, for the matcher's tokens and for the
    fingerprint's words.
    """
    if text.isascii():
        plain = tuple(m.span() for m in _PLAIN_WORD_RE.finditer(text))
        return plain, (tuple(_split_glued(text, list(plain))) if _glued(text) else plain)
    full_words, full_marks, _, bmp_words, bmp_marks = _tables()
    word_re, marks_re = (full_words, full_marks) if _ASTRAL_RE.search(text) else (bmp_words, bmp_marks)
    spans = [m.span() for m in (word_re if marks_re.search(text) else _PLAIN_WORD_RE).finditer(text)]
    if _CYRILLIC_APOSTROPHE_RE.search(text):
        spans = _join_apostrophes(text, spans)
    whole = _cut_mixed_hangul(text, spans)
    if _glued(text):
        return whole, _cut_mixed_hangul(text, _split_glued(text, spans))
    return whole, whole


def _cut_mixed_hangul(text: str, spans: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Words mixing Hangul with another script, cut where the script changes (_hangul_cuts)."""
    if not (_HANGUL_RE.search(text) and _MIXED_HANGUL_RE.search(text)):
        return tuple(spans)
    mixed = _MIXED_HANGUL_RE.search
    return tuple(
        cut
        for start, end in spans
        for cut in (_hangul_cuts(text, start, end) if mixed(text, start, end) else ((start, end),))
    )


def _join_apostrophes(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Cyrillic words joined by an apostrophe are one word (Ukrainian м'ясо)."""
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged:
            p_start, p_end = merged[-1]
            if (
                start == p_end + 1
                and text[p_end] in _APOSTROPHES
                and _is_cyrillic(text[p_end - 1])
                and _is_cyrillic(text[start])
            ):
                merged[-1] = (p_start, end)
                continue
        merged.append((start, end))
    return merged


def _split_glued(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Cut words where a page lost the space before a capital ("inRussia's", "leaderKim").

    A cut falls before an upper-case letter followed by another letter, in one script
    (Latin or Cyrillic: "theDPRK" and "лидерКНДР" too), after a lower-case run that
    starts the word or is at least two letters long.  So names with one lower-case letter
    after a capital ("McDonald", "DeSantis", "MiG", "МиГ") stay whole, and a glue with no
    capital ("Ukraineas") is left as written.  Aliases go through the same cut, so a name
    written in camel case in an alias still meets itself.  Called only for texts that
    :data:`_GLUED_RE` finds something in (one C-level scan otherwise).
    """
    out: list[tuple[int, int]] = []
    for start, end in spans:
        cuts = [m.start() + 1 for m in _GLUED_RE.finditer(text, start, end) if _glued_run_ok(text, start, m.start())]
        a = start
        for cut in cuts:
            out.append((a, cut))
            a = cut
        out.append((a, end))
    return out


def _glued_run_ok(text: str, word_start: int, last_lower: int) -> bool:
    """Whether the lower-case run ending at ``last_lower`` starts the word or has two letters."""
    first = last_lower
    while first > word_start and text[first - 1].islower():
        first -= 1
    return first == word_start or last_lower - first >= 1


_HANGUL = "\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\ud7b0-\ud7ff\uffa0-\uffdc"
# A Hangul letter next to another word character: the word needs cutting.
_HANGUL_RE = re.compile(f"[{_HANGUL}]")  # a cheap scan first: most texts have no Hangul
_MIXED_HANGUL_RE = re.compile(f"[{_HANGUL}][^\\W_{_HANGUL}]|[^\\W_{_HANGUL}][{_HANGUL}]")
# A lower-case letter, then a capital and another letter, in one script: a glued word.
# Zero-width after the first letter so that runs like "aBcDe" yield every boundary.
_GLUED_RE = re.compile(
    "[a-z](?=[A-Z][A-Za-z])|[\u0430-\u044f\u0451](?=[\u0410-\u042f\u0401][\u0410-\u044f\u0401\u0451])"
)
# A cheap gate in front of _GLUED_RE: any capital right after a lower-case letter (of
# either script).  It starts at the rare capital, not at every lower-case letter, so
# plain text pays ~a sixth of _GLUED_RE's scan (a tenth of the 10-rule matcher's time).
_GLUED_GATE_RE = re.compile("[A-Z\u0410-\u042f\u0401](?<=[a-z\u0430-\u044f\u0451].)")
_CYRILLIC_APOSTROPHE_RE = re.compile(f"[\u0400-\u052f][{_APOSTROPHES}][\u0400-\u052f]")


def _glued(text: str) -> bool:
    """Whether ``text`` has a word :func:`_split_glued` may cut."""
    return _GLUED_GATE_RE.search(text) is not None and _GLUED_RE.search(text) is not None


def tokenize(text: str, language: str | None = None, *, documents: bool = True) -> tuple[Token, ...]:
    """Split ``text`` into normalised tokens with offsets into ``text`` itself.

    ``language`` is a hint ("ru", "uk-UA", ...) that only picks the Slavic analyser;
    without it the letters decide, and words shared by both languages get both.
    Words that fold to nothing (a lone tatweel or mark) are dropped.  ``documents=False``
    is for aliases: only ``key`` and ``alias_forms`` are meant to be read (see _analyse).
    """
    return tuple(Token(*row) for row in token_rows(text, language, documents=documents))


TokenRow: TypeAlias = tuple[int, int, str, tuple[str, ...], tuple[str, ...]]


def token_rows(text: str, language: str | None = None, *, documents: bool = True) -> list[TokenRow]:
    """:func:`tokenize` as plain ``(start, end, key, alias_forms, forms)`` tuples.

    The matcher's hot loop uses these: building a frozen dataclass per word costs more
    than finding the word.
    """
    lang = _language_key(language)
    if text.isascii():
        # Plain ASCII words: the key, and an English stem unless the text is in another
        # language (an alias is tokenised without a language, so it always has both).
        rows: list[TokenRow] = []
        stem = lang in (None, "en")
        for start, end in _raw_spans(text):
            key = text[start:end].lower()
            alias_forms = _en_forms(key)
            rows.append((start, end, key, alias_forms, alias_forms if stem else (key,)))
        return rows
    return [
        (start + a, start + b, key, alias_forms, forms)
        for start, end in _raw_spans(text)
        for a, b, key, alias_forms, forms in _analyse(text[start:end], lang, documents)
    ]


def row_start(row: TokenRow, form: str) -> int:
    """Original start offset of the part of a word matched by ``form``.

    A Korean form may begin inside the word (푸틴 in 반푸틴) when the word has one
    character per key character; anything else starts where the word starts.
    """
    start, end, key = row[0], row[1], row[2]
    if form != key and _is_hangul(key[0]) and end - start == len(key) and not key.startswith(form):
        at = key.find(form)
        if at > 0:
            return start + at
    return start


def row_end(row: TokenRow, form: str) -> int:
    """Original end offset of the part of a word matched by ``form`` (see Token.end_of)."""
    start, end, key = row[0], row[1], row[2]
    if form != key and _is_hangul(key[0]) and end - start == len(key):
        at = key.find(form)
        if at >= 0:
            return start + at + len(form)
    return end


def words(text: str) -> tuple[str, ...]:
    """The normalised surface keys of ``text``, without lemmas or stems (cheap), for the
    fingerprints: a word a page glued together stays one word here (see _spans)."""
    spans = _spans(text)[0]
    if text.isascii():
        return tuple(text[a:b].lower() for a, b in spans)
    return tuple(key for a, b in spans for key in _keys(text[a:b]))


def keys(text: str) -> tuple[str, ...]:
    """The matcher's surface keys of ``text``: the keys of :func:`tokenize`, without
    analysing any word (so a tenth of its cost), for comparing aliases."""
    spans = _raw_spans(text)
    if text.isascii():
        return tuple(text[a:b].lower() for a, b in spans)
    return tuple(key for a, b in spans for key in _keys(text[a:b]))


def normalize(text: str) -> str:
    """The text as its normalised surface keys joined by single spaces (idempotent)."""
    return " ".join(words(text))
