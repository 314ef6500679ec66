"""Generate a deterministic local news web: feeds (RSS 2.0, Atom, JSON Feed) and article pages.

Responsible for the bytes a benchmark serves, and for nothing else (no server, no timing).
Every feed and page is a pure function of ``(seed, feed number, item number, base URL,
epoch)``, so two runs with the same parameters write identical files.  Feed ``i`` is in
English, Arabic, Russian or Korean (``i % 4``) and in RSS, Atom or JSON Feed
(``(i // 4) % 3``); every format is used in every language.  Feeds whose number is a multiple
of 7 are "agencies"; about 15 % of the other feeds' items are syndicated copies of an agency
item (same title, the whole text or its first paragraphs, another URL).  About 6 % of items
tell the benchmark's story (Kim Jong Un, Putin, troops, Kursk, in the language's inflected
forms), another 14 % mention one of those names, and article pages carry a "most read" box that
mentions them too (a trap for extraction).  RSS and Atom feeds give a summary only (so
``full_text`` has a page to fetch); JSON feeds carry the full text in ``content_html``.

New items appear over time in *waves*: :func:`apply_wave` adds items to a deterministic
sample of feeds and rewrites them (each feed keeps its newest ``window`` items), and
:func:`reset` returns the web to its first state.

Command line: ``python -m benchmarks.gen_web OUT --feeds 1000 --items 30 --base-url http://127.0.0.1:8931``.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

LANGS = ("en", "ar", "ru", "ko")
FORMATS = ("rss", "atom", "json")
EXTENSIONS = {"rss": "xml", "atom": "atom", "json": "json"}
DEFAULT_EPOCH = "2025-01-06T00:00:00+00:00"
SYNDICATED = 0.15
STORY = 0.06
MENTION = 0.14
GENERATOR_VERSION = 1


def _vocab(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Ordinary news vocabulary, enough to make texts of realistic length and token variety.
WORDS = {
    "en": _vocab(
        "government minister officials said on Monday that the talks would continue after a week of "
        "negotiations in the capital while analysts warned markets about rising prices and energy costs "
        "the parliament approved a budget for schools hospitals roads and defence spending across the region "
        "a spokesperson told reporters the agreement covers trade shipping ports grain fuel and technology "
        "residents described long queues at stations as winter storms closed airports and delayed trains "
        "investors expect the central bank to hold interest rates steady despite inflation and weak growth "
        "the company reported higher profits from exports of chips cars ships and steel to Asian buyers "
        "police opened an investigation into the fire which destroyed a warehouse near the harbour overnight"
    ),
    "ar": _vocab(
        "قال وزير الخارجية في مؤتمر صحفي إن المحادثات ستستمر بعد أسبوع من المفاوضات في العاصمة بينما "
        "حذر المحللون من ارتفاع الأسعار وتكاليف الطاقة وأقر البرلمان ميزانية للمدارس والمستشفيات والطرق "
        "والدفاع في أنحاء المنطقة وأضاف المتحدث أن الاتفاق يشمل التجارة والشحن والموانئ والحبوب والوقود "
        "والتكنولوجيا ووصف السكان طوابير طويلة في المحطات مع إغلاق المطارات بسبب العواصف وتأخر القطارات "
        "ويتوقع المستثمرون أن يبقي البنك المركزي أسعار الفائدة دون تغيير رغم التضخم وضعف النمو وأعلنت "
        "الشركة أرباحا أعلى من صادرات الرقائق والسيارات والسفن والصلب إلى المشترين في آسيا وفتحت الشرطة "
        "تحقيقا في الحريق الذي دمر مستودعا قرب الميناء خلال الليل"
    ),
    "ru": _vocab(
        "министр иностранных дел заявил в понедельник что переговоры продолжатся после недели консультаций "
        "в столице тогда как аналитики предупредили о росте цен и расходов на энергию парламент утвердил "
        "бюджет для школ больниц дорог и обороны по всему региону представитель ведомства сообщил журналистам "
        "что соглашение охватывает торговлю перевозки порты зерно топливо и технологии жители рассказали о "
        "длинных очередях на вокзалах когда метели закрыли аэропорты и задержали поезда инвесторы ожидают "
        "что центральный банк сохранит ключевую ставку несмотря на инфляцию и слабый рост компания сообщила "
        "о росте прибыли от экспорта микросхем автомобилей судов и стали покупателям в Азии полиция начала "
        "расследование пожара который ночью уничтожил склад возле гавани"
    ),
    "ko": _vocab(
        "외교부 장관은 월요일 기자회견에서 수도에서 일주일간의 협상 이후에도 회담이 계속될 것이라고 "
        "말했다 분석가들은 물가와 에너지 비용 상승을 경고했고 국회는 학교 병원 도로 국방 예산을 "
        "승인했다 대변인은 합의가 무역 해운 항만 곡물 연료 기술을 포함한다고 기자들에게 밝혔다 "
        "주민들은 눈보라로 공항이 폐쇄되고 열차가 지연되면서 역에 긴 줄이 생겼다고 전했다 투자자들은 "
        "중앙은행이 물가 상승과 성장 둔화에도 기준금리를 동결할 것으로 예상한다 회사는 아시아 "
        "구매자들에게 반도체 자동차 선박 철강 수출이 늘어 이익이 증가했다고 발표했다 경찰은 밤사이 "
        "항구 근처 창고를 태운 화재에 대해 수사에 착수했다"
    ),
}

# The benchmark's topic, in each language, in the forms that really appear in text
# (Russian cases, Arabic proclitics, Korean particles), plus look-alikes that must not match.
TOPIC = {
    "en": {
        "kim": ("Kim Jong Un", "Kim Jong-un", "Kim Jong Un's"),
        "putin": ("Putin", "Putin's", "Vladimir Putin"),
        "kursk": ("Kursk", "the Kursk region"),
        "troops": ("troops", "soldiers", "North Korean troops"),
        "trap": ("Kim Kardashian", "Putinism", "Kurskaya"),
    },
    "ar": {
        "kim": ("كيم جونغ أون", "الزعيم كيم جونغ أون"),
        "putin": ("بوتين", "وبوتين", "لبوتين", "الرئيس بوتين"),
        "kursk": ("كورسك", "منطقة كورسك"),
        "troops": ("جنود", "قوات", "الجنود"),
        "trap": ("بيروت", "بوتينية"),
    },
    "ru": {
        "kim": ("Ким Чен Ын", "Ким Чен Ына", "Ким Чен Ыном"),
        "putin": ("Путин", "Путина", "Путину", "Путиным"),
        "kursk": ("Курск", "Курской области", "под Курском"),
        "troops": ("войска", "военные", "солдаты", "северокорейские военные"),
        "trap": ("путинский", "Курская дуга"),
    },
    "ko": {
        "kim": ("김정은", "김정은이", "김정은은", "김정은 국무위원장"),
        "putin": ("푸틴", "푸틴과", "푸틴 대통령"),
        "kursk": ("쿠르스크", "쿠르스크 지역"),
        "troops": ("병력", "파병", "군인", "북한군"),
        "trap": ("김정은행", "푸틴스키"),
    },
}

SECTIONS = {
    "en": ("World", "Politics", "Business", "Tech", "Sport", "Culture", "Opinion", "Video"),
    "ar": ("العالم", "سياسة", "اقتصاد", "تكنولوجيا", "رياضة", "ثقافة", "رأي", "فيديو"),
    "ru": ("Мир", "Политика", "Экономика", "Технологии", "Спорт", "Культура", "Мнения", "Видео"),
    "ko": ("세계", "정치", "경제", "기술", "스포츠", "문화", "오피니언", "영상"),
}


@dataclass(frozen=True, slots=True)
class WebParams:
    """Everything the generated bytes depend on."""

    feeds: int
    items: int  # items per feed in the first state, and the window a feed keeps
    seed: int
    base_url: str
    epoch: str  # ISO 8601; the newest item of the first state is published at this time
    version: int = GENERATOR_VERSION


@dataclass(frozen=True, slots=True)
class Story:
    title: str
    paragraphs: tuple[str, ...]
    kind: str  # "story" | "mention" | "plain"


@dataclass(frozen=True, slots=True)
class FeedItem:
    feed: int
    number: int
    guid: str
    url: str
    title: str
    summary: str
    paragraphs: tuple[str, ...]
    published: datetime
    kind: str
    syndicated_from: tuple[int, int] | None


def feed_language(feed: int) -> str:
    return LANGS[feed % len(LANGS)]


def feed_format(feed: int) -> str:
    return FORMATS[(feed // len(LANGS)) % len(FORMATS)]


def feed_path(feed: int) -> str:
    return f"/f/{feed:05d}.{EXTENSIONS[feed_format(feed)]}"


def article_path(feed: int, number: int) -> str:
    return f"/a/{feed:05d}/{number:05d}.html"


def _sentence(rng: random.Random, lang: str, extra: Sequence[str] = ()) -> str:
    words = WORDS[lang]
    n = rng.randint(8, 16)
    out = [rng.choice(words) for _ in range(n)]
    for phrase in extra:
        out.insert(rng.randint(0, len(out)), phrase)
    text = " ".join(out)
    if lang in ("en", "ru"):
        text = text[:1].upper() + text[1:]
    return text + "."


def make_story(seed: int, feed: int, number: int) -> Story:
    """The original text of item ``number`` of ``feed`` (before any syndication)."""
    lang = feed_language(feed)
    rng = random.Random(f"{seed}/story/{feed}/{number}")
    topic = TOPIC[lang]
    roll = rng.random()
    kind = "story" if roll < STORY else "mention" if roll < STORY + MENTION else "plain"
    title_extra: list[str] = []
    body_extra: list[list[str]] = []
    paragraphs_n = rng.randint(5, 9)
    if kind == "story":
        title_extra = [rng.choice(topic["kim"]), rng.choice(topic["putin"])]
        body_extra = [[rng.choice(topic["troops"]), rng.choice(topic["kursk"])], [rng.choice(topic["putin"])]]
    elif kind == "mention":
        concept = rng.choice(("kim", "putin", "kursk", "troops", "trap"))
        body_extra = [[rng.choice(topic[concept])]]
    title = _sentence(rng, lang, title_extra)[:-1]
    title = " ".join(title.split()[: 8 + len(title_extra) * 3])
    paragraphs: list[str] = []
    for p in range(paragraphs_n):
        extras = body_extra[p] if p < len(body_extra) else []
        sentences = [_sentence(rng, lang, extras if s == 0 else ()) for s in range(rng.randint(3, 5))]
        paragraphs.append(" ".join(sentences))
    return Story(title=title, paragraphs=tuple(paragraphs), kind=kind)


def agency_for(params: WebParams, feed: int, rng: random.Random) -> int | None:
    """An agency feed in the same language as ``feed``, chosen by ``rng``; None if there is none."""
    residue = next(c for c in range(28) if c % 7 == 0 and c % 4 == feed % 4)
    count = len(range(residue, params.feeds, 28))
    if count == 0:
        return None
    return residue + 28 * rng.randrange(count)


def make_item(params: WebParams, feed: int, number: int) -> FeedItem:
    """Item ``number`` (0 = oldest) of ``feed``: its own story, or a syndicated copy."""
    rng = random.Random(f"{params.seed}/item/{feed}/{number}")
    source: tuple[int, int] | None = None
    if feed % 7 != 0 and rng.random() < SYNDICATED:
        agency = agency_for(params, feed, rng)
        if agency is not None and agency != feed:
            source = (agency, number)
    story = make_story(params.seed, *(source or (feed, number)))
    paragraphs = story.paragraphs
    if source is not None and rng.random() < 0.5:
        paragraphs = paragraphs[: max(2, len(paragraphs) * 3 // 5)]  # the usual syndication edit
    epoch = datetime.fromisoformat(params.epoch)
    # The first state's newest item is published at the epoch, one every 40 minutes before it;
    # later items (waves) follow at the same pace after it.
    published = epoch + timedelta(minutes=40 * (number - (params.items - 1))) - timedelta(seconds=feed % 600)
    url = params.base_url + article_path(feed, number)
    if number % 5 == 0:
        url += "?utm_source=rss&utm_medium=feed"
    first = paragraphs[0]
    summary = first if len(first) <= 280 else first[:277].rsplit(" ", 1)[0] + "…"
    return FeedItem(
        feed=feed,
        number=number,
        guid=f"wirewatch-bench:{feed}:{number}",
        url=url,
        title=story.title,
        summary=summary,
        paragraphs=paragraphs,
        published=published,
        kind=story.kind,
        syndicated_from=source,
    )


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def render_rss(params: WebParams, feed: int, items: Sequence[FeedItem]) -> bytes:
    lang = feed_language(feed)
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>',
        f"<title>Bench wire {feed} ({lang})</title><link>{params.base_url}/</link>",
        f"<description>Generated feed {feed}</description><language>{lang}</language>",
        f"<lastBuildDate>{format_datetime(items[0].published)}</lastBuildDate>" if items else "",
    ]
    for it in items:
        parts.append(
            f"<item><title>{_e(it.title)}</title><link>{_e(it.url)}</link>"
            f'<guid isPermaLink="false">{it.guid}</guid><pubDate>{format_datetime(it.published)}</pubDate>'
            f"<description>{_e(it.summary)}</description></item>"
        )
    parts.append("</channel></rss>\n")
    return "".join(parts).encode("utf-8")


def render_atom(params: WebParams, feed: int, items: Sequence[FeedItem]) -> bytes:
    lang = feed_language(feed)
    updated = items[0].published.isoformat() if items else params.epoch
    parts = [
        f'<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="{lang}">',
        f"<title>Bench wire {feed} ({lang})</title><id>urn:wirewatch-bench:feed:{feed}</id>",
        f'<link rel="self" href="{params.base_url}{feed_path(feed)}"/><updated>{updated}</updated>',
    ]
    for it in items:
        parts.append(
            f"<entry><title>{_e(it.title)}</title><id>{it.guid}</id>"
            f'<link rel="alternate" type="text/html" href="{_e(it.url)}"/>'
            f"<published>{it.published.isoformat()}</published><updated>{it.published.isoformat()}</updated>"
            f'<summary type="text">{_e(it.summary)}</summary></entry>'
        )
    parts.append("</feed>\n")
    return "".join(parts).encode("utf-8")


def render_json(params: WebParams, feed: int, items: Sequence[FeedItem]) -> bytes:
    lang = feed_language(feed)
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": f"Bench wire {feed} ({lang})",
        "home_page_url": params.base_url + "/",
        "feed_url": params.base_url + feed_path(feed),
        "language": lang,
        "items": [
            {
                "id": it.guid,
                "url": it.url,
                "title": it.title,
                "summary": it.summary,
                "content_html": "".join(f"<p>{_e(p)}</p>" for p in it.paragraphs),
                "date_published": it.published.isoformat(),
            }
            for it in items
        ],
    }
    return (json.dumps(doc, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def render_feed(params: WebParams, feed: int, items: Sequence[FeedItem]) -> bytes:
    """The feed document, newest item first."""
    fmt = feed_format(feed)
    if fmt == "rss":
        return render_rss(params, feed, items)
    if fmt == "atom":
        return render_atom(params, feed, items)
    return render_json(params, feed, items)


def render_article(params: WebParams, item: FeedItem) -> bytes:
    """A full article page: navigation, the article, a "most read" box, a footer."""
    lang = item.feed % len(LANGS)
    code = LANGS[lang]
    rng = random.Random(f"{params.seed}/page/{item.feed}/{item.number}")
    direction = ' dir="rtl"' if code == "ar" else ""
    nav = "".join(f'<li><a href="/s/{i}">{_e(s)}</a></li>' for i, s in enumerate(SECTIONS[code]))
    most_read = []
    for k in range(5):
        headline = " ".join(_sentence(rng, code)[:-1].split()[:8])
        if rng.random() < 0.1:
            headline += " " + rng.choice(TOPIC[code]["putin"])
        most_read.append(
            f'<li><a href="{article_path(item.feed, max(0, item.number - 1 - k))}">{_e(headline)}</a></li>'
        )
    body = "".join(f"<p>{_e(p)}</p>\n" for p in item.paragraphs)
    page = (
        f'<!doctype html>\n<html lang="{code}"{direction}><head><meta charset="utf-8">'
        f"<title>{_e(item.title)}</title>"
        f'<link rel="canonical" href="{params.base_url}{article_path(item.feed, item.number)}">'
        f'<meta property="og:title" content="{_e(item.title)}">'
        f'<meta name="article:published_time" content="{item.published.isoformat()}">'
        "<style>body{font-family:sans-serif;max-width:50em;margin:auto}nav li{display:inline;margin:0 .5em}</style>"
        f'</head><body><header><a href="/">Bench News {item.feed}</a><nav><ul>{nav}</ul></nav></header>\n'
        f'<main><article><h1>{_e(item.title)}</h1><time datetime="{item.published.isoformat()}">'
        f"{item.published:%Y-%m-%d %H:%M}</time>\n{body}</article>\n"
        f'<aside class="most-read"><h2>Most read</h2><ol>{"".join(most_read)}</ol></aside></main>\n'
        "<footer><p>© Bench News. All rights reserved.</p><script>var analytics = {id: 'bench'};</script>"
        "</footer></body></html>\n"
    )
    return page.encode("utf-8")


# --------------------------------------------------------------------------- files


def _write(path: Path, data: bytes) -> None:
    """Write atomically (rename), so the server never serves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def feed_items(params: WebParams, feed: int, count: int) -> list[FeedItem]:
    """The newest ``params.items`` of the first ``count`` items of ``feed``, newest first."""
    lo = max(0, count - params.items)
    return [make_item(params, feed, n) for n in range(count - 1, lo - 1, -1)]


def write_feed(root: Path, params: WebParams, feed: int, count: int, *, articles: Iterable[int] = ()) -> list[FeedItem]:
    """Write feed ``feed`` holding items up to ``count``, and the article pages numbered in ``articles``."""
    items = feed_items(params, feed, count)
    wanted = set(articles)
    for it in items:
        if it.number in wanted:
            _write(root / article_path(feed, it.number).lstrip("/"), render_article(params, it))
    _write(root / feed_path(feed).lstrip("/"), render_feed(params, feed, items))
    return items


def manifest_path(root: Path) -> Path:
    return root / "manifest.json"


def load_manifest(root: Path) -> dict[str, object] | None:
    try:
        data = json.loads(manifest_path(root).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def generate(root: Path, params: WebParams, *, force: bool = False) -> bool:
    """Write the whole web in its first state; skip (return False) when ``root`` already holds it."""
    old = load_manifest(root)
    if not force and old is not None and old.get("params") == asdict(params) and old.get("complete"):
        reset(root, params)
        return False
    root.mkdir(parents=True, exist_ok=True)
    (root / "robots.txt").write_text("User-agent: *\nAllow: /\n", encoding="utf-8")
    (root / "f").mkdir(exist_ok=True)
    for feed in range(params.feeds):
        (root / "a" / f"{feed:05d}").mkdir(parents=True, exist_ok=True)
        write_feed(root, params, feed, params.items, articles=range(params.items))
    manifest = {
        "params": asdict(params),
        "complete": True,
        "feeds": [
            {"id": f, "url": params.base_url + feed_path(f), "format": feed_format(f), "language": feed_language(f)}
            for f in range(params.feeds)
        ],
    }
    manifest_path(root).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    _save_counts(root, {})
    return True


def _counts_path(root: Path) -> Path:
    return root / "state.json"


def _load_counts(root: Path) -> dict[int, int]:
    try:
        raw = json.loads(_counts_path(root).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {int(k): int(v) for k, v in raw.items()}


def _save_counts(root: Path, counts: dict[int, int]) -> None:
    _counts_path(root).write_text(json.dumps({str(k): v for k, v in sorted(counts.items())}), encoding="utf-8")


def wave_feeds(params: WebParams, wave: int, fraction: float) -> list[int]:
    """The feeds that gain items in ``wave`` (deterministic)."""
    k = max(1, round(params.feeds * fraction))
    return sorted(random.Random(f"{params.seed}/wave/{wave}").sample(range(params.feeds), k))


def apply_wave(root: Path, params: WebParams, wave: int, fraction: float = 0.05, per_feed: int = 3) -> list[FeedItem]:
    """Add ``per_feed`` new items to a ``fraction`` of the feeds; return the new items."""
    counts = _load_counts(root)
    new: list[FeedItem] = []
    for feed in wave_feeds(params, wave, fraction):
        before = counts.get(feed, params.items)
        after = before + per_feed
        items = write_feed(root, params, feed, after, articles=range(before, after))
        new.extend(it for it in items if it.number >= before)
        counts[feed] = after
    _save_counts(root, counts)
    return new


def reset(root: Path, params: WebParams) -> int:
    """Rewrite every feed that a wave changed back to its first state; return how many."""
    counts = _load_counts(root)
    changed = [f for f, n in counts.items() if n != params.items]
    for feed in changed:
        write_feed(root, params, feed, params.items)
    _save_counts(root, {})
    return len(changed)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("out", type=Path)
    p.add_argument("--feeds", type=int, default=1000)
    p.add_argument("--items", type=int, default=30)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--base-url", default="http://127.0.0.1:8931")
    p.add_argument("--epoch", default=DEFAULT_EPOCH)
    p.add_argument("--force", action="store_true")
    args = p.parse_args(argv)
    params = WebParams(args.feeds, args.items, args.seed, args.base_url.rstrip("/"), args.epoch)
    wrote = generate(args.out, params, force=args.force)
    print(f"{args.out}: {'generated' if wrote else 'already up to date'} ({params.feeds} feeds x {params.items} items)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
