"""Generic counting helpers for Herald's limit checks: no network lives here.

Networks count a post's length in different ways (X weights URLs, emoji and CJK; Bluesky counts graphemes;
TikTok UTF-16 units; YouTube bytes...). This module offers those ways of counting (`Counting`), the text rules a
connector declares with them (`TextRules`), and one generic check (`check_rules`) that measures a draft by such
rules and reports plain-English problems, so a draft can show one line per target::

    ✓ X: 142/280 weighted characters
    ✗ Bluesky: 312/300 graphemes — 12 graphemes over the limit

Each connector (bot/networks/) declares its own rules in its profile and adds the problems only it knows
(Instagram's hashtags, Bluesky's bytes...). Pure functions only: no chat, network or scheduler libraries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import regex
from twitter_text import parse_tweet  # type: ignore[import-untyped]
from twitter_text.config import config as _twitter_config  # type: ignore[import-untyped]
from twitter_text.extract_urls import extract_urls_with_indices  # type: ignore[import-untyped]
from twitter_text.parse_tweet import convert_line_ending  # type: ignore[import-untyped]


class Counting(StrEnum):
    """The ways a network counts a text's length."""

    CHARACTERS = "characters"  # code points
    X_WEIGHTED = "x_weighted"  # twitter-text's weighted length: URLs 23, emoji and CJK 2
    URLS_FIXED = "urls_fixed"  # code points, every URL counted as a fixed weight (Mastodon: 23)
    GRAPHEMES = "graphemes"  # user-perceived characters
    EMOJI_BYTES = "emoji_bytes"  # one per grapheme, an emoji by its UTF-8 bytes (Threads)
    UTF16 = "utf16"  # UTF-16 code units
    UTF8 = "utf8"  # UTF-8 bytes


_SINGULAR_UNITS: dict[str, str] = {
    "weighted characters": "weighted character",
    "graphemes": "grapheme",
    "characters": "character",
    "UTF-16 units": "UTF-16 unit",
    "bytes": "byte",
}
DEFAULT_URL_WEIGHT = 23

# http(s) URLs; trailing sentence punctuation is not part of the link.
_URL_RE = regex.compile(r"https?://[^\s<>\"]+", regex.IGNORECASE)
_URL_TRAILING = ".,;:!?'\")]}"
HASHTAG_RE = regex.compile(r"(?<![\w&])#\w+")
MENTION_RE = regex.compile(r"(?<![\w.@])@[\w.]+")
# A grapheme is an emoji if it holds a pictographic code point, a flag
# (regional indicators) or a keycap.
_EMOJI_RE = regex.compile(r"[\p{Extended_Pictographic}\p{Regional_Indicator}\u20e3]")


def urls(text: str) -> list[str]:
    """The http(s) links of a text, without the sentence punctuation after them."""
    return [m.rstrip(_URL_TRAILING) for m in _URL_RE.findall(text)]


def graphemes(text: str) -> list[str]:
    return list(regex.findall(r"\X", text))


def _count_x(text: str, url_weight: int | None) -> int:
    defaults = _twitter_config["defaults"]
    weight = int(defaults["transformed_url_length"] if url_weight is None else url_weight)
    if text.isascii():
        # every ASCII character weighs 1 in twitter-text's ranges and no emoji is ASCII, so its count is the
        # characters with each link (found by twitter-text's own extractor) counted as transformed_url_length;
        # parse_tweet would also run its emoji scan, ~1.6 ms a text even with emoji parsing off
        # (tests/test_limits.py compares the two on every printable character and 2,000 random texts)
        normalized = convert_line_ending(text)
        found = extract_urls_with_indices(normalized)
        return len(normalized) - sum(len(u["url"]) for u in found) + len(found) * weight
    return int(parse_tweet(text, {**defaults, "transformed_url_length": weight}).weightedLength)


def _count_urls_fixed(text: str, url_weight: int | None) -> int:
    weight = DEFAULT_URL_WEIGHT if url_weight is None else url_weight
    found = urls(text)
    return len(text) - sum(len(u) for u in found) + weight * len(found)


def _count_emoji_bytes(text: str) -> int:
    return sum(len(g.encode("utf-8")) if _EMOJI_RE.search(g) else len(g) for g in graphemes(text))


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def utf8_bytes(text: str) -> int:
    return len(text.encode("utf-8"))


_COUNTERS: dict[Counting, Callable[[str], int]] = {
    Counting.CHARACTERS: len,
    Counting.GRAPHEMES: lambda t: len(graphemes(t)),
    Counting.EMOJI_BYTES: _count_emoji_bytes,
    Counting.UTF16: utf16_units,
    Counting.UTF8: utf8_bytes,
}


def count(counting: Counting, text: str, *, url_weight: int | None = None) -> int:
    """The length of ``text`` counted by ``counting``.

    ``url_weight`` overrides the per-URL weight where URLs count specially (X, Mastodon); others ignore it.
    A card counts the same texts again and again (each target, the draft card, the approval card, the submit
    check): texts of a post's size are counted once per process (X's parser takes about a millisecond a text).
    """
    if url_weight is not None and url_weight < 0:
        raise ValueError("url_weight must not be negative")
    if len(text) <= CACHED_LENGTH:
        return _count_cached(counting, text, url_weight)
    return _count(counting, text, url_weight)


CACHED_LENGTH = 4_000  # longer texts (a thread joined, a long LinkedIn post) are rare: counted each time


@lru_cache(maxsize=1024)
def _count_cached(counting: Counting, text: str, url_weight: int | None) -> int:
    return _count(counting, text, url_weight)


def _count(counting: Counting, text: str, url_weight: int | None) -> int:
    if counting == Counting.X_WEIGHTED:
        return _count_x(text, url_weight)
    if counting == Counting.URLS_FIXED:
        return _count_urls_fixed(text, url_weight)
    return _COUNTERS[counting](text)


def amount(n: int, unit: str) -> str:
    """'1 grapheme', '12 graphemes'."""
    return f"{n} {_SINGULAR_UNITS.get(unit, unit) if n == 1 else unit}"


@dataclass(frozen=True)
class TextRules:
    """A network's text and media rules, declared in its connector's profile."""

    limit: int  # the main text limit, in `unit`
    counting: Counting = Counting.CHARACTERS
    unit: str = "characters"  # how the count is named to the team
    max_images: int | None = None  # most images one post may carry; None: no image count to check
    media_only: bool = False  # a post with media may have no text
    caption_limit: int | None = None  # the text limit when the post has media (the text becomes a caption)


@dataclass(frozen=True)
class LimitCheck:
    """The result of checking one draft against one network."""

    network: str
    used: int
    limit: int
    unit: str
    problems: tuple[str, ...]
    label: str = ""  # the network's name as the team reads it (its profile's label); the key when empty

    @property
    def ok(self) -> bool:
        return not self.problems

    def line(self) -> str:
        mark = "✓" if self.ok else "✗"
        out = f"{mark} {self.label or self.network}: {self.used}/{self.limit} {self.unit}"
        if self.problems:
            out += " — " + "; ".join(self.problems)
        return out


def check_rules(
    key: str,
    label: str,
    rules: TextRules,
    text: str,
    *,
    media_count: int = 0,
    max_characters: int | None = None,
    url_weight: int | None = None,
    specific: Sequence[str] = (),
) -> LimitCheck:
    """Check ``text`` (with ``media_count`` images) against a network's ``rules``.

    ``max_characters`` replaces the main text limit (e.g. a Mastodon instance's own limit); ``url_weight`` is
    passed on to :func:`count`; ``specific`` are the problems only the network itself knows (its connector's),
    reported after the length and before the image count.
    """
    if media_count < 0:
        raise ValueError("media_count must not be negative")
    if max_characters is not None and max_characters <= 0:
        raise ValueError("max_characters must be positive")

    used = count(rules.counting, text, url_weight=url_weight)
    if max_characters is not None:
        limit = max_characters
    elif rules.caption_limit is not None and media_count > 0:
        limit = rules.caption_limit  # the text becomes a media caption
    else:
        limit = rules.limit

    problems: list[str] = []
    if not text.strip() and not (rules.media_only and media_count > 0):
        problems.append("the text is empty")
    if used > limit:
        problems.append(f"{amount(used - limit, rules.unit)} over the limit")
    problems.extend(specific)
    if rules.max_images is not None and media_count > rules.max_images:
        problems.append(f"{label} takes at most {rules.max_images} images; this post has {media_count}")

    return LimitCheck(network=key, used=used, limit=limit, unit=rules.unit, problems=tuple(problems), label=label)
