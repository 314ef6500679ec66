"""Real articles from the shared corpus, and the syndicated copies outlets make of them.

The originals are gold article texts (ScrapingHub ``articleBody``, fundus structured
bodies, newspaper4k texts) in English, Arabic, Russian, Korean, German, French, Italian
and Japanese.  :func:`syndicate` derives the edits the issue names: a trimmed copy, a
retitled copy, a tracking-parameter/``www.``/AMP link to the original, a copy with a
dateline added, and one with all of these at once, each under another outlet.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from xml.sax.saxutils import escape

from tests.conftest import CORPUS

GOLD = CORPUS / "articles" / "gold"
MIN_WORDS = 120


@dataclass(frozen=True)
class Article:
    slug: str
    title: str
    paragraphs: tuple[str, ...]
    language: str


@dataclass(frozen=True)
class Copy:
    story: str  # slug of the original: the ground truth cluster
    outlet: str
    guid: str
    url: str
    title: str
    body: str  # paragraphs separated by blank lines
    language: str


def _languages() -> dict[str, str]:
    with (CORPUS / "MANIFEST.tsv").open(encoding="utf-8") as f:
        return {row["file"]: row["language"] for row in csv.DictReader(f, delimiter="\t")}


def _title_from(paragraphs: list[str]) -> str:
    return " ".join(paragraphs[0].split()[:10])


def load_articles() -> list[Article]:
    """Every gold article long enough to be trimmed meaningfully (at least 4 paragraphs)."""
    langs = _languages()
    found: list[Article] = []
    for path in sorted(GOLD.glob("shb__*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        paras = [p.strip() for p in data["articleBody"].split("\n") if p.strip()]
        found.append(
            Article(path.stem, _title_from(paras), tuple(paras), langs.get(f"articles/{path.stem}.html", "en"))
        )
    for path in sorted(GOLD.glob("fundus__*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        body = data["body"]
        paras = [p.strip() for s in body.get("sections", []) for p in s.get("paragraphs", []) if p.strip()]
        found.append(Article(path.stem, data["title"], tuple(paras), langs.get(f"articles/{path.stem}.html", "en")))
    for path in sorted(GOLD.glob("np4k__*.txt")):
        paras = [p.strip() for p in path.read_text(encoding="utf-8").split("\n") if p.strip()]
        meta = json.loads(path.with_name(path.stem + ".metadata.json").read_text(encoding="utf-8"))
        found.append(
            Article(
                path.stem,
                meta.get("title") or _title_from(paras),
                tuple(paras),
                langs.get(f"articles/{path.stem}.html", "en"),
            )
        )
    return [a for a in found if len(a.paragraphs) >= 4 and sum(len(p.split()) for p in a.paragraphs) >= MIN_WORDS]


OUTLETS = ("wire", "trimmed", "retitled", "tracked", "dateline", "mixed")


def syndicate(article: Article) -> list[Copy]:
    """The original and five syndicated copies, one per outlet in :data:`OUTLETS`."""
    paras = list(article.paragraphs)
    slug = article.slug.replace("_", "-").replace(".", "-")
    original_url = f"https://www.wire.example/world/{slug}"
    keep = max(2, len(paras) // 3)
    second = paras[1].split()
    new_title = "Report: " + " ".join(second[:8])
    dateline = "PYONGYANG, Nov. 27 (Wire) — "
    body = "\n\n".join(paras)
    return [
        Copy(article.slug, "wire", f"wire-{slug}", original_url, article.title, body, article.language),
        Copy(
            article.slug,
            "trimmed",
            f"trim-{slug}",
            f"https://trimmed.example/{slug}.html",
            article.title,
            "\n\n".join(paras[:keep]),
            article.language,
        ),
        Copy(
            article.slug,
            "retitled",
            f"re-{slug}",
            f"https://retitled.example/n/{slug}",
            new_title,
            body,
            article.language,
        ),
        Copy(
            article.slug,
            "tracked",
            f"tr-{slug}",
            f"http://m.wire.example/world/{slug}/amp?utm_source=twitter&fbclid=XYZ&ref=home",
            article.title,
            paras[0],
            article.language,
        ),
        Copy(
            article.slug,
            "dateline",
            f"dl-{slug}",
            f"https://dateline.example/{slug}",
            article.title,
            dateline + body,
            article.language,
        ),
        Copy(
            article.slug,
            "mixed",
            f"mx-{slug}",
            f"https://mixed.example/a/{slug}?mc_cid=1",
            new_title,
            dateline + "\n\n".join(paras[: keep + 1]),
            article.language,
        ),
    ]


def rss_of(copies: list[Copy], *, title: str = "Outlet", published: datetime | None = None) -> str:
    """An RSS 2.0 document carrying ``copies``, bodies as HTML paragraphs."""
    when = format_datetime(published or datetime.now(UTC))
    entries = "".join(
        f'<item><guid isPermaLink="false">{escape(c.guid)}</guid><title>{escape(c.title)}</title>'
        f"<link>{escape(c.url)}</link><dc:language>{c.language}</dc:language>"
        f"<description>{escape(''.join(f'<p>{escape(p)}</p>' for p in c.body.split(chr(10) * 2)))}</description>"
        f"<pubDate>{when}</pubDate></item>"
        for c in copies
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
        f"<title>{escape(title)}</title><link>https://outlet.example/</link><description>t</description>"
        f"{entries}</channel></rss>"
    )


def pair_scores(clusters: list[list[str]], truth: dict[str, str]) -> tuple[float, float, int, int]:
    """Pairwise precision and recall of ``clusters`` (lists of item ids) against ``truth`` (item → story).

    Returns (precision, recall, predicted pairs, true pairs).
    """
    predicted = {
        (a, b) for members in clusters for i, a in enumerate(sorted(members)) for b in sorted(members)[i + 1 :]
    }
    by_story: dict[str, list[str]] = {}
    for item, story in truth.items():
        by_story.setdefault(story, []).append(item)
    actual = {
        (a, b) for members in by_story.values() for i, a in enumerate(sorted(members)) for b in sorted(members)[i + 1 :]
    }
    tp = len(predicted & actual)
    precision = tp / len(predicted) if predicted else 1.0
    recall = tp / len(actual) if actual else 1.0
    return precision, recall, len(predicted), len(actual)
