"""The language codes wirewatch knows, and what to suggest for the ones people write instead.

Responsible for one decision: whether a language code written in the config (a source's
``language``, a rule's ``languages``) is one that items can actually carry, and if not,
which code was probably meant ("kr" is the country, Korean is "ko"; "russian" is "ru";
"en-US" is "en", because items keep the primary subtag only).  Pure data and pure
functions: it must not read files or know about the config format.
"""

from __future__ import annotations

import difflib

__all__ = ["KNOWN_LANGUAGES", "language_problem"]

# Codes an item can carry and the analyser handles: the four of the first topic, Ukrainian
# (pymorphy3 has its dictionary), and Persian and Urdu, which the script-based language
# guess tells apart from Arabic (core/items.guess_language).
KNOWN_LANGUAGES: dict[str, str] = {
    "ar": "Arabic",
    "en": "English",
    "fa": "Persian",
    "ko": "Korean",
    "ru": "Russian",
    "uk": "Ukrainian",
    "ur": "Urdu",
}

# What people write instead: English and native names, country codes, ISO 639-2/3 codes.
_MEANT: dict[str, str] = {
    **{name.casefold(): code for code, name in KNOWN_LANGUAGES.items()},
    "farsi": "fa",
    "kr": "ko", "kor": "ko", "kp": "ko", "한국어": "ko", "조선어": "ko",
    "ara": "ar", "sa": "ar", "eg": "ar", "العربية": "ar",
    "rus": "ru", "русский": "ru",
    "ua": "uk", "ukr": "uk", "українська": "uk",
    "eng": "en", "us": "en", "gb": "en",
    "ir": "fa", "fas": "fa", "per": "fa",
    "pk": "ur", "urd": "ur",
}  # fmt: skip


def language_problem(code: str) -> str | None:
    """``None`` when ``code`` is a known language code, else a message with a suggestion."""
    if code in KNOWN_LANGUAGES:
        return None
    known = ", ".join(sorted(KNOWN_LANGUAGES))
    folded = code.strip().casefold().replace("_", "-")
    primary = folded.split("-", 1)[0]
    meant = _MEANT.get(folded) or _MEANT.get(primary) or (primary if primary in KNOWN_LANGUAGES else None)
    if meant is None and len(primary) > 3:  # a misspelt name ("rusian"); two letters are too close to guess
        close = difflib.get_close_matches(primary, list(_MEANT), n=1, cutoff=0.75)
        meant = _MEANT[close[0]] if close else None
    hint = f"; did you mean {meant!r} ({KNOWN_LANGUAGES[meant]})?" if meant else ""
    return f"unknown language {code!r}: use an ISO 639-1 code wirewatch analyses ({known}){hint}"
