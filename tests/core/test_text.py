"""Tests for monitor.core.text: folding, tokens with original offsets, per-language forms."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.text import ARABIC_MIN_STEM, fold, keys, normalize, tokenize, words

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("Putin", "putin"),
        ("PÚTIN", "putin"),
        ("Ｐｕｔｉｎ", "putin"),  # fullwidth
        ("ﬁne", "fine"),  # ligature
        ("Straße", "strasse"),
        ("İstanbul", "istanbul"),  # casefold yields i + combining dot
        ("Łódź", "lodz"),
        ("Pu\u0301tin", "putin"),  # combining acute, not precomposed
        ("بوتـــين", "بوتين"),  # tatweel
        ("بُوتِين", "بوتين"),  # tashkeel
        ("أون", "اون"),
        ("إيران", "ايران"),
        ("آلاف", "الاف"),
        ("ٱلله", "الله"),
        ("مستشفى", "مستشفي"),  # alef maqsura
        ("كورية", "كوريه"),  # teh marbuta
        ("ﺑﻮﺗﻴﻦ", "بوتين"),  # presentation forms
        ("Пу\u0301тин", "путин"),  # stress mark goes
        ("Йемен", "йемен"),  # but the breve of й stays
        ("Її", "її"),  # and the diaeresis of ї
        ("ёлка", "елка"),
        ("м\u2019ясо", "м'ясо"),  # typographic apostrophe inside a Ukrainian word
        ("김정은이", "김정은이"),
        ("١٢٣", "123"),  # Arabic-Indic digits
        ("ـ", ""),  # a lone tatweel folds to nothing
    ],
)
def test_fold(raw: str, key: str) -> None:
    assert fold(raw) == key


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Kim Jong Un", "Kim Jong-un"),
        ("Kim Jong Un", "KIM JONG\u2011UN"),  # non-breaking hyphen
        ("Kim Jong Un", "kim  jong\u2014un"),  # em dash, double space
        ("Putin's", "Putin\u2019s"),
        ("بوتين", "بُوتـين"),
    ],
)
def test_spacing_and_hyphens_are_interchangeable(a: str, b: str) -> None:
    assert normalize(a) == normalize(b)


def test_tokens_keep_original_offsets() -> None:
    text = "  Kim Jong-un’s «troops», ﬁne: بُوتـين; Путина 김정은이 "
    tokens = tokenize(text)
    assert [text[t.start : t.end] for t in tokens] == [
        "Kim",
        "Jong",
        "un",
        "s",
        "troops",
        "ﬁne",
        "بُوتـين",
        "Путина",
        "김정은이",
    ]
    assert [t.key for t in tokens][-4:] == ["fine", "بوتين", "путина", "김정은이"]


def test_possessive_apostrophe_splits_latin_words() -> None:
    assert words("Putin’s") == ("putin", "s")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # A page's lost link spaces: the capital starts the next word.
        ("fallen soldiers inRussia's war", ("fallen", "soldiers", "in", "russia", "s", "war")),
        ("North Korean leaderKim Jong Un", ("north", "korean", "leader", "kim", "jong", "un")),
        ("theDPRK", ("the", "dprk")),
        ("участие вРоссии лидерКНДР", ("участие", "в", "россии", "лидер", "кндр")),
        ("nKim", ("n", "kim")),
        # One lower-case letter after a capital is a name, not a glue; no capital, no cut.
        ("McDonald DeSantis MiG-29 МиГ-29", ("mcdonald", "desantis", "mig", "29", "миг", "29")),
        ("against Ukraineas", ("against", "ukraineas")),
    ],
)
def test_glued_words_are_cut_before_a_capital(text: str, expected: tuple[str, ...]) -> None:
    tokens = tokenize(text)
    assert tuple(t.key for t in tokens) == expected
    assert all(text[t.start : t.end].strip() == text[t.start : t.end] for t in tokens)


def test_fingerprint_words_keep_a_glued_word_whole() -> None:
    """The cut is the matcher's (analyser version 4); fingerprints (FINGERPRINT_VERSION 1)
    must not move with it, or a copy stored before the upgrade would not meet its story."""
    text = "fallen soldiers inRussia's war, лидерКНДР"
    assert words(text) == ("fallen", "soldiers", "inrussia", "s", "war", "лидеркндр")
    assert normalize(text) == " ".join(words(text))
    assert [t.key for t in tokenize(text)] == ["fallen", "soldiers", "in", "russia", "s", "war", "лидер", "кндр"]


def test_apostrophe_joins_ukrainian_words() -> None:
    text = "м'ясо та В’ячеслав"
    tokens = tokenize(text, "uk")
    assert [text[t.start : t.end] for t in tokens] == ["м'ясо", "та", "В’ячеслав"]
    assert tokens[2].key == "в'ячеслав"


def test_modifier_letter_apostrophe_is_not_a_letter() -> None:
    # U+02BC is category Lm; treated as a letter, "Putinʼs" would be one unknown word.
    assert words("Putinʼs") == ("putin", "s")


def test_hangul_is_split_from_other_scripts() -> None:
    text = "NATO는 2025년 G7에서"
    tokens = tokenize(text)
    assert [(text[t.start : t.end], t.key) for t in tokens] == [
        ("NATO", "nato"),
        ("는", "는"),
        ("2025", "2025"),
        ("년", "년"),
        ("G7", "g7"),
        ("에서", "에서"),
    ]


def test_hangul_forms_are_bounded_by_morphemes() -> None:
    (token,) = tokenize("김정은이")
    assert "김정은" in token.forms and "김" not in token.forms
    assert token.end_of("김정은") == 3  # the highlight stops before the particle
    assert token.end_of("김정은이") == 4
    (alias,) = tokenize("김정은")
    assert alias.alias_forms == ("김정은",)  # an alias word is taken as written


@pytest.mark.parametrize(
    ("word", "present", "absent"),
    [
        ("북해함대", ["북해", "북해함대"], ["북"]),  # the North Sea fleet is not North Korea
        ("북극", ["북극"], ["북"]),
        ("무기한으로", ["기한", "무기한"], ["무기"]),  # indefinitely is not weapons
        ("북한군이", ["북한군", "북한"], ["북"]),  # a compound the analyser keeps whole
        ("쿠르스크지역에", ["쿠르스크", "쿠르스크지역"], []),
        ("파병됐다", ["파병"], ["파"]),
        ("포괄적인", ["포괄", "포괄적"], []),
        ("반푸틴", ["푸틴", "반푸틴"], ["푸"]),
    ],
)
def test_hangul_morphemes(word: str, present: list[str], absent: list[str]) -> None:
    (token,) = tokenize(word, "ko")
    for form in present:
        assert form in token.forms, (word, form, token.forms)
    for form in absent:
        assert form not in token.forms, (word, form, token.forms)


@pytest.mark.parametrize(
    ("alias", "document", "matches"),
    [
        ("보냈다", "보냈다고", True),  # quoted: "said it sent"
        ("보냈다", "보냈으며", True),  # joined: "sent, and"
        ("보냈다", "보냈던", True),  # before a noun: "the ... it sent"
        ("지원했다", "지원했다고", True),
        ("보냈다", "보낸다", False),  # the present tense is another word to an analyst
        ("보냈다", "보내고", False),
        ("북한", "북한이", True),  # a noun alias keeps to what it always matched
    ],
)
def test_a_korean_alias_in_the_plain_past_meets_its_other_endings(alias: str, document: str, matches: bool) -> None:
    (a,) = tokenize(alias, documents=False)
    (d,) = tokenize(document, "ko")
    assert bool(set(a.alias_forms) & set(d.forms)) == matches, (a.alias_forms, d.forms)


def test_only_the_plain_past_gives_an_alias_a_second_form() -> None:
    assert tokenize("보냈다", documents=False)[0].alias_forms == ("보냈다", "보냈")
    # 다 after a syllable with no past marker (ㅆ) is no ending to drop: 바다 is the sea.
    for word in ("바다", "보낸다", "보냈고", "북한"):
        assert tokenize(word, documents=False)[0].alias_forms == (word,)


@pytest.mark.parametrize(
    ("word", "stem"),
    [
        ("troops", "troop"),
        ("soldiers", "soldier"),
        ("missiles", "missil"),
        ("deployed", "deploy"),
        ("summits", "summit"),
    ],
)
def test_english_inflections_share_a_stem(word: str, stem: str) -> None:
    (token,) = tokenize(word, "en")
    assert stem in token.forms and stem in token.alias_forms


@pytest.mark.parametrize("word", ["putinism", "prisoners", "deployment", "arms", "news"])
def test_english_derivations_keep_their_own_key(word: str) -> None:
    (token,) = tokenize(word, "en")
    assert token.forms == (word,)


def test_english_stems_only_for_english_or_undecided_text() -> None:
    (token,) = tokenize("troops", "fr")
    assert token.forms == ("troops",)
    assert tokenize("troops")[0].forms == ("troops", "troop")


@pytest.mark.parametrize(
    ("word", "stem"),
    [
        ("لبوتين", "بوتين"),
        ("وبوتين", "بوتين"),
        ("ببوتين", "بوتين"),
        ("فبوتين", "بوتين"),
        ("الجنود", "جنود"),
        ("للجنود", "جنود"),
        ("بالجنود", "جنود"),
        ("وبالجنود", "جنود"),
        ("قواتها", "قوات"),
        ("لقواتهم", "قوات"),
        ("كبوتين", "بوتين"),
    ],
)
def test_arabic_clitics_offer_the_stem(word: str, stem: str) -> None:
    (token,) = tokenize(word, "ar")
    assert stem in token.forms
    assert token.key == word  # the surface stays the key; stems are extra forms


def test_arabic_stems_respect_the_minimum_length() -> None:
    (token,) = tokenize("بيروت")
    assert "بوتين" not in token.forms
    assert all(len(f) >= ARABIC_MIN_STEM for f in token.forms)
    (short,) = tokenize("ولد")  # و + لد would leave two letters
    assert short.forms == ("ولد",)


def test_arabic_plural_endings_are_stripped_on_documents_only() -> None:
    # بوتين ends in ين like a plural: as an alias it must stay whole (else بوت would be
    # Putin); as a document word the extra form بوت can only meet an alias بوت.
    (token,) = tokenize("بوتين")
    assert token.alias_forms == ("بوتين",)
    (dual,) = tokenize("جنديين", "ar")
    assert "جندي" in dual.forms
    (plural,) = tokenize("الكوريين", "ar")
    assert "كوري" in plural.forms
    (verb,) = tokenize("قتلوا", "ar")
    assert "قتل" in verb.forms


@pytest.mark.parametrize(
    ("word", "stem"),
    [
        ("جنوداً", "جنود"),  # alif, then the tanwin
        ("جنودًا", "جنود"),  # the tanwin on the letter before the alif
        ("صاروخاً", "صاروخ"),
        ("جندياً", "جندي"),
        ("وجنوداً", "جنود"),  # with a proclitic
        ("شماليّاً", "شمالي"),  # with a shadda
    ],
)
def test_arabic_accusative_tanwin_offers_the_word_without_its_alif(word: str, stem: str) -> None:
    (token,) = tokenize(word, "ar")
    assert stem in token.forms
    assert token.key.endswith("ا")  # the surface keeps its alif


def test_arabic_alif_without_tanwin_stays() -> None:
    for word in ("روسيا", "كوريا", "جنودا"):  # a name's own alif, and no tanwin written
        (token,) = tokenize(word, "ar")
        assert word[:-1] not in token.forms
    (short,) = tokenize("عصاً", "ar")  # the alif of a two-letter stem stays
    assert "عص" not in short.forms
    (alias,) = tokenize("جنوداً", "ar")
    assert alias.alias_forms == ("جنودا",)  # aliases are taken as written


def test_arabic_article_is_folded_on_aliases() -> None:
    (token,) = tokenize("الدفاع")
    assert token.alias_forms == ("الدفاع", "دفاع")
    (name,) = tokenize("بوتين")
    assert name.alias_forms == ("بوتين",)  # no other proclitic is cut from an alias


@pytest.mark.parametrize(
    ("word", "language", "lemma"),
    [
        ("Путина", "ru", "путин"),
        ("Путину", "ru", "путин"),
        ("Путиным", "ru", "путин"),
        ("Курске", "ru", "курск"),
        ("войсками", "ru", "войско"),
        ("солдата", None, "солдат"),
        ("Зеленського", "uk", "зеленський"),
        ("Ына", "ru", "ын"),  # unknown to the dictionary: case ending stripped
    ],
)
def test_slavic_forms(word: str, language: str | None, lemma: str) -> None:
    (token,) = tokenize(word, language)
    assert lemma in token.forms


def test_slavic_adjective_keeps_its_own_lemma() -> None:
    (token,) = tokenize("путинский", "ru")
    assert "путин" not in token.forms


def test_language_hint_variants() -> None:
    assert tokenize("Путина", "ru-RU") == tokenize("Путина", "ru")
    assert tokenize("Putin", "en")[0].forms == ("putin",)


def test_analyzer_is_not_loaded_for_other_scripts() -> None:
    code = (
        "import sys; from monitor.core.text import tokenize; "
        "tokenize('Kim Jong Un met Putin 김정은이 لبوتين ΠΟΥΤΙΝ'); "
        "print('pymorphy3' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_empty_and_punctuation_only() -> None:
    assert tokenize("") == ()
    assert tokenize(" — , ; ـ ") == ()
    assert normalize("«»") == ""


# --- properties ---------------------------------------------------------------------------

_SAMPLES = st.sampled_from(
    ["Kim Jong-un", "بُوتـين", "Путина", "김정은이", "Straße", "ﬁ", "¼", "ﷺ", "NATO는", "м’ясо", "İ"]
)
_TEXT = st.lists(st.one_of(st.text(max_size=12), _SAMPLES), max_size=8).map(" ".join)


@given(_TEXT)
@settings(max_examples=400)
def test_normalize_is_idempotent(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once


@given(_TEXT)
@settings(max_examples=400)
def test_keys_are_the_alias_tokens_keys(text: str) -> None:
    """``keys`` is what the compiler indexes an alias under (``alias_key``), without analysis."""
    assert keys(text) == tuple(t.key for t in tokenize(text, documents=False))


@pytest.mark.parametrize(
    "text",
    ["fallen soldiers inRussia's war, лидерКНДР", "NATO는 2025년 G7에서", "м'ясо та В’ячеслав", "مُعَاهَدَةً ـ"],
)
def test_keys_follow_the_matchers_cuts(text: str) -> None:
    assert keys(text) == tuple(t.key for t in tokenize(text, documents=False))
    assert keys(text) == tuple(t.key for t in tokenize(text))


@given(st.text(max_size=12))
@settings(max_examples=400)
def test_fold_is_idempotent(word: str) -> None:
    assert fold(fold(word)) == fold(word)


@given(_TEXT)
# No deadline: the first Korean text of a test process loads kiwipiepy's model (~2 s).
@settings(max_examples=300, deadline=None)
def test_tokens_are_ordered_slices_of_the_text(text: str) -> None:
    tokens = tokenize(text)
    for prev, t in zip((None, *tokens), tokens, strict=False):
        assert 0 <= t.start < t.end <= len(text)
        assert t.key and t.forms[0] == t.key and t.alias_forms[0] == t.key
        if prev is not None:
            # Next word, or another key folded out of the same raw word.
            assert t.start >= prev.end or (t.start, t.end) == (prev.start, prev.end)


def test_the_stored_unicode_tables_are_what_this_python_computes() -> None:
    # monitor/core/unicode_tables.py spares every process a scan of 210,000 code points at
    # start; it is used only for the Unicode version it was generated from, and must be
    # exactly that scan's result (else: make unicode-tables).
    import unicodedata

    from monitor.core import text, unicode_tables

    if unicodedata.unidata_version != unicode_tables.UNIDATA_VERSION:
        pytest.skip(f"tables for Unicode {unicode_tables.UNIDATA_VERSION}, not {unicodedata.unidata_version}")
    assert text._stored_ranges() == text.unicode_ranges()
    assert (ROOT / "monitor/core/unicode_tables.py").read_text(encoding="utf-8") == text.render_unicode_tables()
