"""Per-network text and media limits for Herald drafts.

Each network counts post length its own way (X weights URLs, emoji and CJK;
Bluesky counts graphemes and bytes; TikTok counts UTF-16 units; YouTube counts
bytes...).  This module measures a draft the way each target network does and
reports plain-English problems, so a draft can show one line per target::

    ✓ X: 142/280 weighted characters
    ✗ Bluesky: 312/300 graphemes — 12 graphemes over the limit

Pure functions only: no chat, network or scheduler libraries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import regex
from twitter_text import parse_tweet  # type: ignore[import-untyped]
from twitter_text.config import config as _twitter_config  # type: ignore[import-untyped]
from twitter_text.has_invalid_characters import has_invalid_characters  # type: ignore[import-untyped]

NETWORK_LABELS: dict[str, str] = {
    "x": "X",
    "bluesky": "Bluesky",
    "mastodon": "Mastodon",
    "threads": "Threads",
    "linkedin": "LinkedIn",
    "instagram": "Instagram",
    "facebook": "Facebook",
    "tiktok": "TikTok",
    "youtube": "YouTube",
    "pinterest": "Pinterest",
    "telegram": "Telegram",
    "discord": "Discord",
    "sandbox": "Sandbox",
}

# Main text limit per network, in that network's own unit.
_TEXT_LIMITS: dict[str, int] = {
    "x": 280,
    "bluesky": 300,
    "mastodon": 500,
    "threads": 500,
    "linkedin": 3000,
    "instagram": 2200,
    "facebook": 63206,
    "tiktok": 2200,
    "youtube": 5000,
    "pinterest": 800,
    "telegram": 4096,
    "discord": 2000,
    "sandbox": 5000,
}

_UNITS: dict[str, str] = {
    "x": "weighted characters",
    "bluesky": "graphemes",
    "tiktok": "UTF-16 units",
    "youtube": "bytes",
}
_DEFAULT_UNIT = "characters"

_SINGULAR_UNITS: dict[str, str] = {
    "weighted characters": "weighted character",
    "graphemes": "grapheme",
    "characters": "character",
    "UTF-16 units": "UTF-16 unit",
    "bytes": "byte",
}

# Most images a single post may carry.  YouTube has no entry: it needs a video,
# which is reported as its own problem.
_MAX_IMAGES: dict[str, int] = {
    "x": 4,
    "bluesky": 4,
    "mastodon": 4,
    "threads": 20,  # carousel
    "linkedin": 20,
    "instagram": 10,
    # Facebook accepts more photos per post; 10 is a conservative cap.
    "facebook": 10,
    "tiktok": 35,  # photo post
    "pinterest": 5,
    "telegram": 10,  # album
    "discord": 10,
    "sandbox": 10,
}

# Networks that accept a post with media and no text.
_MEDIA_ONLY_OK: frozenset[str] = frozenset(
    {"instagram", "tiktok", "pinterest", "telegram", "discord", "x", "mastodon", "bluesky", "facebook", "threads"}
)

_TELEGRAM_CAPTION_LIMIT = 1024
_BLUESKY_MAX_BYTES = 3000
_THREADS_MAX_LINKS = 5
_INSTAGRAM_MAX_HASHTAGS = 30
_INSTAGRAM_MAX_MENTIONS = 20
_DEFAULT_URL_WEIGHT = 23

# http(s) URLs; trailing sentence punctuation is not part of the link.
_URL_RE = regex.compile(r"https?://[^\s<>\"]+", regex.IGNORECASE)
_URL_TRAILING = ".,;:!?'\")]}"
_HASHTAG_RE = regex.compile(r"(?<![\w&])#\w+")
_MENTION_RE = regex.compile(r"(?<![\w.@])@[\w.]+")
# A grapheme is an emoji if it holds a pictographic code point, a flag
# (regional indicators) or a keycap.
_EMOJI_RE = regex.compile(r"[\p{Extended_Pictographic}\p{Regional_Indicator}\u20e3]")


def _key(network: str) -> str:
    key = network.strip().lower()
    if key not in NETWORK_LABELS:
        known = ", ".join(NETWORK_LABELS)
        raise ValueError(f"unknown network {network!r}; known networks: {known}")
    return key


def _urls(text: str) -> list[str]:
    return [m.rstrip(_URL_TRAILING) for m in _URL_RE.findall(text)]


def _graphemes(text: str) -> list[str]:
    return list(regex.findall(r"\X", text))


def _count_x(text: str, url_weight: int | None) -> int:
    if url_weight is None:
        return int(parse_tweet(text).weightedLength)
    options = {**_twitter_config["defaults"], "transformed_url_length": url_weight}
    return int(parse_tweet(text, options).weightedLength)


def _count_mastodon(text: str, url_weight: int | None) -> int:
    weight = _DEFAULT_URL_WEIGHT if url_weight is None else url_weight
    urls = _urls(text)
    return len(text) - sum(len(u) for u in urls) + weight * len(urls)


def _count_threads(text: str) -> int:
    return sum(len(g.encode("utf-8")) if _EMOJI_RE.search(g) else len(g) for g in _graphemes(text))


def _count_utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _count_utf8(text: str) -> int:
    return len(text.encode("utf-8"))


_COUNTERS: dict[str, Callable[[str], int]] = {
    "bluesky": lambda t: len(_graphemes(t)),
    "threads": _count_threads,
    "tiktok": _count_utf16,
    "youtube": _count_utf8,
}


def count_text(network: str, text: str, *, url_weight: int | None = None) -> int:
    """Return the length of ``text`` as ``network`` counts it.

    ``url_weight`` overrides the per-URL weight on networks that count URLs
    specially (X, Mastodon); other networks ignore it.
    """
    key = _key(network)
    if url_weight is not None and url_weight < 0:
        raise ValueError("url_weight must not be negative")
    if key == "x":
        return _count_x(text, url_weight)
    if key == "mastodon":
        return _count_mastodon(text, url_weight)
    counter = _COUNTERS.get(key)
    return counter(text) if counter else len(text)


def _amount(n: int, unit: str) -> str:
    return f"{n} {_SINGULAR_UNITS.get(unit, unit) if n == 1 else unit}"


@dataclass(frozen=True)
class LimitCheck:
    """The result of checking one draft against one network."""

    network: str
    used: int
    limit: int
    unit: str
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def label(self) -> str:
        return NETWORK_LABELS.get(self.network, self.network)

    def line(self) -> str:
        mark = "✓" if self.ok else "✗"
        out = f"{mark} {self.label}: {self.used}/{self.limit} {self.unit}"
        if self.problems:
            out += " — " + "; ".join(self.problems)
        return out


def check_text(
    network: str,
    text: str,
    *,
    media_count: int = 0,
    max_characters: int | None = None,
    url_weight: int | None = None,
) -> LimitCheck:
    """Check ``text`` (with ``media_count`` images) against ``network``'s rules.

    ``max_characters`` replaces the network's main text limit (e.g. a Mastodon
    instance's own limit); ``url_weight`` is passed on to :func:`count_text`.
    """
    key = _key(network)
    label = NETWORK_LABELS[key]
    if media_count < 0:
        raise ValueError("media_count must not be negative")
    if max_characters is not None and max_characters <= 0:
        raise ValueError("max_characters must be positive")

    used = count_text(key, text, url_weight=url_weight)
    unit = _UNITS.get(key, _DEFAULT_UNIT)
    if max_characters is not None:
        limit = max_characters
    elif key == "telegram" and media_count > 0:
        limit = _TELEGRAM_CAPTION_LIMIT  # the text becomes a media caption
    else:
        limit = _TEXT_LIMITS[key]

    problems: list[str] = []
    if not text.strip() and not (key in _MEDIA_ONLY_OK and media_count > 0):
        problems.append("the text is empty")
    if used > limit:
        problems.append(f"{_amount(used - limit, unit)} over the limit")

    if key == "x" and has_invalid_characters(text):
        problems.append("the text contains characters X refuses")
    elif key == "bluesky":
        size = _count_utf8(text)
        if size > _BLUESKY_MAX_BYTES:
            problems.append(
                f"{_amount(size - _BLUESKY_MAX_BYTES, 'bytes')} over Bluesky's "
                f"{_BLUESKY_MAX_BYTES}-byte limit"
            )
    elif key == "threads":
        links = len(_urls(text))
        if links > _THREADS_MAX_LINKS:
            problems.append(f"Threads takes at most {_THREADS_MAX_LINKS} links; this post has {links}")
    elif key == "instagram":
        tags = len(_HASHTAG_RE.findall(text))
        if tags > _INSTAGRAM_MAX_HASHTAGS:
            problems.append(
                f"Instagram takes at most {_INSTAGRAM_MAX_HASHTAGS} hashtags; this post has {tags}"
            )
        mentions = len(_MENTION_RE.findall(text))
        if mentions > _INSTAGRAM_MAX_MENTIONS:
            problems.append(
                f"Instagram takes at most {_INSTAGRAM_MAX_MENTIONS} @mentions; this post has {mentions}"
            )
        if media_count == 0:
            problems.append("Instagram needs at least one image")
    elif key == "tiktok" and media_count == 0:
        problems.append("TikTok needs a video or photos")
    elif key == "pinterest" and media_count == 0:
        problems.append("Pinterest needs an image")
    elif key == "youtube":
        if "<" in text or ">" in text:
            problems.append("YouTube descriptions can't contain < or >")
        problems.append("YouTube needs a video; Herald can't post text or images there")

    max_images = _MAX_IMAGES.get(key)
    if max_images is not None and media_count > max_images:
        problems.append(f"{label} takes at most {max_images} images; this post has {media_count}")

    return LimitCheck(network=key, used=used, limit=limit, unit=unit, problems=tuple(problems))
