"""Each network measured by its own counting rule: its connector's profile (handlers.core.counting's generic
counting) and its own checks, through the connectors `build_networks` registers (tests/networks.py)."""

import pytest
from twitter_text import parse_tweet  # type: ignore[import-untyped]
from twitter_text.config import config as twitter_config  # type: ignore[import-untyped]

from handlers.core.counting import LimitCheck
from tests.networks import check_text, count_text, network_labels

NETWORK_LABELS = network_labels()

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # 👨‍👩‍👧‍👦, 7 code points, 25 bytes
GRIN = "\U0001f600"  # 😀, 4 UTF-8 bytes, 2 UTF-16 units


# --- X ---------------------------------------------------------------------


def test_x_counts_every_url_as_23_whatever_its_length():
    short = "read https://t.co/a"
    long = "read https://example.com/" + "a" * 200
    assert count_text("x", short) == 5 + 23
    assert count_text("x", long) == 5 + 23
    assert parse_tweet(long).weightedLength == 28


def test_x_url_weight_can_be_overridden():
    assert count_text("x", "https://example.com/page", url_weight=30) == 30


def test_x_counts_emoji_as_two():
    assert count_text("x", GRIN) == 2
    assert count_text("x", "a" + FAMILY) == 3  # a whole ZWJ sequence is one emoji


def test_x_counts_an_ascii_text_as_twitter_text_does_with_its_emoji_scan_on():
    """Herald turns twitter-text's emoji scan off for ASCII texts (it costs ~1.6 ms a text and no emoji is ASCII):
    every printable character, keycap and smiley look-alikes, links and 2,000 random ASCII texts count the same."""
    import random

    rng = random.Random(7)
    printable = [chr(c) for c in range(32, 127)] + ["\n", "\t", "\r", "\r\n"]
    texts = ["".join(printable), "#1 *2 :) <3 ;-) (c) (R) TM 0# 9*", "go https://example.com/a?b=c #sale @acme $X"]
    texts += ["".join(rng.choices(printable + [" https://t.co/x ", " www.example.org "], k=rng.randint(1, 400)))
              for _ in range(2000)]
    for text in texts:
        assert count_text("x", text) == parse_tweet(text).weightedLength, text
    options = {**twitter_config["defaults"], "transformed_url_length": 30}
    for text in texts[:200]:
        assert count_text("x", text, url_weight=30) == parse_tweet(text, options).weightedLength, text


def test_x_counts_cjk_as_two():
    assert count_text("x", "中文") == 4


def test_x_at_exactly_280_is_ok_and_281_is_over():
    at = check_text("x", "a" * 280)
    assert (at.used, at.limit, at.ok) == (280, 280, True)
    over = check_text("x", "a" * 281)
    assert over.used == 281
    assert over.problems == ("1 weighted character over the limit",)


def test_x_280_weighted_with_emoji_is_the_edge():
    assert check_text("x", "a" * 278 + GRIN).ok
    assert check_text("x", "a" * 279 + GRIN).problems == ("1 weighted character over the limit",)


def test_x_takes_at_most_four_images():
    assert check_text("x", "hi", media_count=4).ok
    assert check_text("x", "hi", media_count=6).problems == ("X takes at most 4 images; this post has 6",)


# --- Bluesky -----------------------------------------------------------------


def test_bluesky_counts_graphemes_not_code_points():
    assert len(FAMILY) == 7
    assert count_text("bluesky", FAMILY) == 1
    assert count_text("bluesky", "e\u0301") == 1  # e + combining acute
    assert count_text("bluesky", "hello " + FAMILY) == 7


def test_bluesky_over_by_graphemes():
    check = check_text("bluesky", "a" * 312)
    assert check.unit == "graphemes"
    assert check.problems == ("12 graphemes over the limit",)
    assert check_text("bluesky", "a" * 300).ok


def test_bluesky_checks_bytes_too():
    check = check_text("bluesky", "中" * 300)  # 300 graphemes, 900 bytes: fine
    assert check.ok
    heavy = check_text("bluesky", FAMILY * 121)  # 121 graphemes, 3025 bytes
    assert heavy.used == 121
    assert heavy.problems == ("25 bytes over Bluesky's 3000-byte limit",)


# --- Mastodon ----------------------------------------------------------------


def test_mastodon_counts_every_url_as_23():
    text = "see https://example.com/" + "a" * 100 + ". ok"
    assert count_text("mastodon", text) == 4 + 23 + 4


def test_mastodon_uses_the_instance_limit():
    assert check_text("mastodon", "a" * 500).ok
    assert check_text("mastodon", "a" * 501).problems == ("1 character over the limit",)
    wide = check_text("mastodon", "a" * 501, max_characters=5000)
    assert (wide.limit, wide.ok) == (5000, True)
    narrow = check_text("mastodon", "a" * 450, max_characters=400)
    assert narrow.problems == ("50 characters over the limit",)


def test_mastodon_uses_the_instance_url_weight():
    text = "https://example.com/long/path"
    assert count_text("mastodon", text, url_weight=10) == 10
    assert check_text("mastodon", "x " + text, url_weight=30).used == 32


# --- Threads -----------------------------------------------------------------


def test_threads_counts_emoji_by_utf8_bytes():
    assert count_text("threads", "a" + GRIN) == 1 + 4
    assert count_text("threads", FAMILY) == 25
    assert count_text("threads", "é中") == 2  # non-emoji: one per character
    assert check_text("threads", GRIN * 125).ok  # 500
    assert check_text("threads", "a" + GRIN * 125).problems == ("1 character over the limit",)


def test_threads_refuses_more_than_five_links():
    five = " ".join(f"https://example.com/{i}" for i in range(5))
    six = " ".join(f"https://example.com/{i}" for i in range(6))
    assert check_text("threads", five).ok
    assert check_text("threads", six).problems == ("Threads takes at most 5 links; this post has 6",)


# --- TikTok ------------------------------------------------------------------


def test_tiktok_counts_utf16_units():
    assert count_text("tiktok", "a" + GRIN) == 3
    assert count_text("tiktok", FAMILY) == 11
    check = check_text("tiktok", GRIN * 1101, media_count=1)
    assert (check.used, check.unit) == (2202, "UTF-16 units")
    assert check.problems == ("2 UTF-16 units over the limit",)


def test_tiktok_needs_media():
    assert check_text("tiktok", "caption").problems == ("TikTok needs a video or photos",)
    assert check_text("tiktok", "caption", media_count=3).ok
    assert check_text("tiktok", "", media_count=3).ok


# --- Instagram ---------------------------------------------------------------


def test_instagram_needs_an_image_and_caps_hashtags():
    assert check_text("instagram", "x" * 40).line() == (
        "✗ Instagram: 40/2200 characters — Instagram needs at least one image"
    )
    thirty = " ".join(f"#tag{i}" for i in range(30))
    assert check_text("instagram", thirty, media_count=1).ok
    check = check_text("instagram", thirty + " #more", media_count=1)
    assert check.problems == ("Instagram takes at most 30 hashtags; this post has 31",)


def test_instagram_caps_mentions_but_not_emails():
    mentions = " ".join(f"@user{i}" for i in range(21))
    check = check_text("instagram", mentions + " mail me at me@example.com", media_count=1)
    assert check.problems == ("Instagram takes at most 20 @mentions; this post has 21",)


def test_instagram_takes_at_most_ten_images():
    check = check_text("instagram", "hi", media_count=11)
    assert check.problems == ("Instagram takes at most 10 images; this post has 11",)


# --- Telegram ----------------------------------------------------------------


def test_telegram_caption_limit_applies_with_media():
    assert check_text("telegram", "a" * 4096).ok
    assert check_text("telegram", "a" * 4097).problems == ("1 character over the limit",)
    caption = check_text("telegram", "a" * 1100, media_count=1)
    assert caption.limit == 1024
    assert caption.problems == ("76 characters over the limit",)
    assert check_text("telegram", "a" * 1024, media_count=10).ok


# --- YouTube -----------------------------------------------------------------


def test_youtube_always_needs_a_video():
    video = "YouTube needs a video; Herald can't post text or images there"
    assert check_text("youtube", "A fine description").problems == (video,)
    assert check_text("youtube", "A fine description", media_count=1).problems == (video,)


def test_youtube_counts_bytes_and_refuses_angle_brackets():
    assert count_text("youtube", "é" + GRIN) == 6
    check = check_text("youtube", "é" * 2501)  # 5002 bytes
    assert (check.used, check.unit) == (5002, "bytes")
    assert check.problems[0] == "2 bytes over the limit"
    assert "YouTube descriptions can't contain < or >" in check_text("youtube", "a <b> c").problems


# --- Other networks ----------------------------------------------------------


@pytest.mark.parametrize(
    ("network", "limit", "max_images"),
    [
        ("linkedin", 3000, 20),
        ("facebook", 63206, 10),
        ("discord", 2000, 10),
        ("sandbox", 5000, 10),
        ("pinterest", 800, 5),
    ],
)
def test_character_limits_and_image_caps(network, limit, max_images):
    media = 1
    assert check_text(network, "a" * limit, media_count=media).ok
    over = check_text(network, "a" * (limit + 3), media_count=max_images + 1)
    label = NETWORK_LABELS[network]
    assert over.problems == (
        "3 characters over the limit",
        f"{label} takes at most {max_images} images; this post has {max_images + 1}",
    )


def test_pinterest_needs_an_image():
    assert check_text("pinterest", "pin").problems == ("Pinterest needs an image",)


# --- Empty text ----------------------------------------------------------------


def test_empty_text_is_a_problem_unless_media_only_is_allowed():
    assert check_text("linkedin", "   ", media_count=1).problems == ("the text is empty",)
    assert "the text is empty" in check_text("youtube", "", media_count=1).problems
    assert check_text("x", "").problems == ("the text is empty",)
    for network in ("x", "mastodon", "bluesky", "telegram", "discord", "instagram", "tiktok", "pinterest",
                    "facebook", "threads"):
        assert check_text(network, "", media_count=1).ok, network


# --- API -------------------------------------------------------------------


def test_unknown_network_is_refused_with_the_known_list():
    with pytest.raises(ValueError, match="myspace") as err:
        check_text("myspace", "hi")
    assert "bluesky" in str(err.value) and "sandbox" in str(err.value)
    with pytest.raises(ValueError, match="known networks: x, bluesky"):
        count_text("myspace", "hi")


def test_network_keys_are_case_insensitive():
    assert check_text(" Bluesky ", "hi").network == "bluesky"


def test_every_labelled_network_can_be_checked():
    assert len(NETWORK_LABELS) == 13
    for network in NETWORK_LABELS:
        assert check_text(network, "hello", media_count=1).network == network


def test_line_shows_tick_and_cross():
    assert check_text("x", "a" * 142).line() == "✓ X: 142/280 weighted characters"
    assert check_text("bluesky", "a" * 312).line() == (
        "✗ Bluesky: 312/300 graphemes — 12 graphemes over the limit"
    )
    several = LimitCheck("x", 300, 280, "weighted characters", ("20 weighted characters over the limit", "b"),
                         label="X")
    assert not several.ok
    assert several.line() == "✗ X: 300/280 weighted characters — 20 weighted characters over the limit; b"


def test_negative_media_count_is_refused():
    with pytest.raises(ValueError):
        check_text("x", "hi", media_count=-1)


def test_x_refuses_invalid_characters():
    assert check_text("x", "a\ufffe").problems == ("the text contains characters X refuses",)
