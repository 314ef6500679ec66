"""Turn the bytes a server sent into the right text: gzip sniffed, charset decided, prolog fixed.

Responsible for the lies publishers tell about their bytes.  Gzip is recognised by its
magic number (a ``.xml`` that is really ``.gz``, a body gzipped twice), with a bound on
the inflated size.  The charset is decided from evidence in this order: a byte-order
mark; bytes that are valid UTF-8 (whatever the declaration says, since a legacy 8-bit
text is practically never valid UTF-8 by accident); the document's own declaration and
then the HTTP ``charset``, each only if the bytes decode under it; and last a guess by
chardet.  Legacy names are widened to the superset browsers use (ISO-8859-1 →
windows-1252, EUC-KR → CP949, GB2312 → GB18030).  C1 control characters that are really
windows-1252 punctuation are mapped back.  :func:`xml_as_utf8` then rewrites the XML
declaration so a parser handed the result sees UTF-8 declared and UTF-8 bytes.  Pure: no
I/O, no clock.
"""

from __future__ import annotations

import codecs
import gzip
import re
import zlib
from dataclasses import dataclass

import chardet

GZIP_MAGIC = b"\x1f\x8b"
# A gzip bomb must not take the worker down: inflate at most this much per document.
MAX_INFLATED = 50_000_000

_XML_DECL = re.compile(rb"^\s*<\?xml[^>]*?\?>", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""<\?xml[^>]*?\bencoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""", re.IGNORECASE)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9._:-]+)""", re.IGNORECASE)
_ANY_XML_DECL = re.compile(r"<\?xml\b[^>]*?\?>", re.IGNORECASE)
# Numeric character references that no encoder can write: a UTF-16 half (U+D800-U+DFFF)
# or a code point past U+10FFFF.  Candidates only (4+ hex or 5+ decimal digits); the
# callback decides.  See :func:`xml_as_utf8`.
_LONG_CHARREF = re.compile(r"&#(?:[xX]([0-9a-fA-F]{4,})|([0-9]{5,}));")
_REPLACEMENT_REF = "&#xFFFD;"
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.IGNORECASE)
_C1 = re.compile("[\u0080-\u009f]")

# What browsers actually decode under these labels (WHATWG Encoding): supersets that
# also cover the characters real publishers put in "ISO-8859-1" or "GB2312" text.
_WIDER = {
    "latin-1": "cp1252",
    "iso8859-1": "cp1252",
    "ascii": "cp1252",
    "euc_kr": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "big5": "big5hkscs",
    "iso8859-9": "cp1254",
    "iso8859-11": "cp874",
    "shift_jis": "cp932",
}


class TooLarge(ValueError):
    """The inflated body exceeds :data:`MAX_INFLATED`."""


@dataclass(frozen=True, slots=True)
class Decoded:
    text: str
    encoding: str  # the Python codec actually used
    declared: str | None  # what the document or the server claimed, if anything
    note: str | None  # set when the declaration was wrong or missing and we decided otherwise


def gunzip(body: bytes, limit: int = MAX_INFLATED) -> bytes:
    """``body`` inflated while it starts with the gzip magic (servers double-compress too)."""
    rounds = 0
    while body[:2] == GZIP_MAGIC and rounds < 3:
        rounds += 1
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            out = inflater.decompress(body, limit + 1)
        except zlib.error:
            # A truncated gzip stream: keep what inflated (the parser keeps what parses).
            try:
                out = gzip.decompress(body)
            except (OSError, EOFError, zlib.error):
                return body
        if len(out) > limit:
            raise TooLarge(f"inflated body exceeds {limit} bytes")
        body = out
    return body


def charset_from_content_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    m = _HEADER_CHARSET.search(content_type)
    return m.group(1) if m else None


def codec_name(label: str | None) -> str | None:
    """The Python codec for a charset label, widened as browsers do; ``None`` if unknown."""
    if not label:
        return None
    try:
        name = codecs.lookup(label.strip().strip("\"'")).name
    except LookupError:
        return None
    return _WIDER.get(name, name)


def declared_charset(body: bytes) -> str | None:
    """The charset the document declares: XML ``encoding=`` or an HTML ``<meta charset>``."""
    head = body[:2048]
    m = _XML_ENCODING.search(head) or _META_CHARSET.search(head)
    return m.group(1).decode("ascii", "replace") if m else None


def decode(body: bytes, http_charset: str | None = None) -> Decoded:
    """Decide the charset of ``body`` and decode it (see the module docstring for the order)."""
    in_doc = declared_charset(body)
    declared = in_doc or http_charset
    for bom, name in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if body.startswith(bom):
            return _done(body.decode(name, "replace"), name, declared, None)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        claimed = codec_name(declared)
        note = None
        if declared and claimed not in (None, "utf-8") and not body.isascii():
            note = f"declared {declared} but the bytes are UTF-8"
        return _done(text, "utf-8", declared, note)
    for label in (in_doc, http_charset):
        legacy = codec_name(label)
        if legacy is None or legacy == "utf-8":
            continue
        try:
            return _done(body.decode(legacy), legacy, declared, None)
        except UnicodeDecodeError:
            continue
    guess = chardet.detect(body[:200_000])
    name = codec_name(guess.get("encoding")) or "cp1252"
    why = f"declared {declared}, which does not fit the bytes" if declared else "no charset declared"
    return _done(body.decode(name, "replace"), name, declared, f"{why}; detected {name}")


def xml_as_utf8(text: str) -> bytes:
    """UTF-8 bytes of an XML document whose declaration (if any) now says UTF-8.

    Leading blank lines and a declaration placed after a comment (both common publisher
    bugs) make strict XML parsers give up: the declaration is dropped, since UTF-8 is
    the XML default anyway.  A character reference to a code point no encoder can write
    becomes U+FFFD's (:func:`_unwritable_ref`).
    """
    text = text.lstrip("\ufeff \t\r\n")
    text = _ANY_XML_DECL.sub("", text, count=1) if _ANY_XML_DECL.search(text[:4096]) else text
    if "&#" in text:
        text = _LONG_CHARREF.sub(_unwritable_ref, text)
    return text.lstrip().encode("utf-8")


def _unwritable_ref(m: re.Match[str]) -> str:
    """U+FFFD's reference for one that names a UTF-16 half or a code point past U+10FFFF.

    feedparser raised on them (``chr(n).encode()``; ``chr`` itself past U+10FFFF) and lxml
    refuses the document, so one such reference in one entry cost the whole feed on every
    poll.  An HTML5 parser reads them as U+FFFD too (``html.unescape`` does).
    """
    hexa, dec = m.groups()
    code = int(hexa, 16) if hexa else int(dec)
    return _REPLACEMENT_REF if 0xD800 <= code <= 0xDFFF or code > 0x10FFFF else m.group(0)


def fix_c1(text: str) -> str:
    """Map C1 controls (U+0080–U+009F) to the windows-1252 punctuation they stand for."""
    if not _C1.search(text):
        return text
    return _C1.sub(_c1_char, text)


def _c1_char(m: re.Match[str]) -> str:
    try:
        return bytes([ord(m.group(0))]).decode("cp1252")
    except UnicodeDecodeError:
        return ""


_MOJIBAKE = re.compile("[\u00c2-\u00f4][\u0080-\u00bf\u2018-\u203a\u0152-\u02dc\u20ac\u2122]")


def fix_mojibake(text: str) -> str:
    """Undo UTF-8 that was read as windows-1252 and encoded again ("â€™" → "’").

    Applied only when the whole string round-trips: a genuine "Ã©" in Latin text almost
    never encodes back to valid UTF-8 as a whole.
    """
    if not _MOJIBAKE.search(text):
        return text
    for legacy in ("cp1252", "latin-1"):
        try:
            return text.encode(legacy).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
    return text


def _done(text: str, name: str, declared: str | None, note: str | None) -> Decoded:
    return Decoded(fix_c1(text), name, declared, note)
