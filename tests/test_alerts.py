"""Alerts: take-off, comment surge and watch words, with numbers fed through the loopback fakes on the FakeClock.

Metrics come from FakeX (`engage`) read by the real metrics poll; comments from FakeBluesky (`reply`) read by the
inbox. Alerts land in the console chat with a ⏸ Pause publishing button that works.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlmodel import select

from handlers.core.errors import UserError
from handlers.engagement.alerts import (
    check_alerts,
    check_surges,
    check_takeoff,
    fold,
    parse_words,
    watch_hits,
)
from handlers.engagement.inbox import run_inbox
from handlers.engagement.metrics import poll_metrics
from storage.models import InboxItem, SentOnce, Workspace
from tests.conftest import START, FakeClock, Team, capturing, refused
from tests.fakes.bluesky_api import FakeBluesky
from tests.fakes.x_api import FakeX
from tests.test_inbox import BSKY_PASSWORD, comment_on, connect, items, publish, remote_id, run

PAUSE = ("To hold every scheduled post: /pause <reason>, or the button.\n"
         "[1] ⏸ Pause publishing  [2] 🚨 Start crisis mode   (type a number to press)")


@pytest.fixture
async def bsky(clock: FakeClock) -> AsyncIterator[FakeBluesky]:
    async with FakeBluesky(clock.now, password=BSKY_PASSWORD) as server:
        yield server


@pytest.fixture
async def x() -> AsyncIterator[FakeX]:
    async with FakeX() as server:
        yield server


def workspace(team: Team) -> Workspace:
    with team.herald.db.session() as session:
        ws = session.exec(select(Workspace)).one()
        return ws


# --- taking off -------------------------------------------------------------------------------------


async def x_post_read_at_one_hour(team: Team, x: FakeX, day: int, text: str, likes: int) -> int:
    """A post on acme-x published `day` days after START, with `likes` when Herald reads it an hour later."""
    team.clock.current = START + timedelta(days=day)
    post = await publish(team, text, "acme-x")
    x.engage(remote_id(team, post), like_count=likes)
    team.clock.advance(hours=1)
    await poll_metrics(team.herald.ctx)
    return post


async def baseline(team: Team, x: FakeX, *likes: int) -> None:
    for day, count in enumerate(likes):
        await x_post_read_at_one_hour(team, x, day, f"Earlier post number {day}", count)


async def test_a_post_taking_off_alerts_with_its_numbers_against_the_accounts_usual(team: Team, x: FakeX) -> None:
    await connect(team, x=x)
    await baseline(team, x, 10, 30, 20)  # the median at one hour: 20
    post = await x_post_read_at_one_hour(team, x, 3, "Big news: our spring line is here", 70)
    out = await run(team, check_alerts)
    assert out == "\n".join([
        f"🚀 #{post} is taking off — “Big news: our spring line is here”",
        "  acme-x (X): 70 engagements 1 hour after publishing — 3.5× the usual 20 at that age (median of 3 earlier "
        "posts on this account; alert at 3×)",
        "    70 likes",
        f"/stats {post} has the details.",
        PAUSE,
    ])
    # once: again, and from a second worker on the same database
    assert await run(team, check_alerts) == ""
    other, lines = capturing(team.db_url, team.clock, HERALD_WORKER_ID="second-worker")
    await other.start()
    try:
        await check_alerts(other.ctx)
        assert not [line for line in lines if line.startswith("🚀")]
    finally:
        await other.stop()
    with team.herald.db.session() as session:
        assert session.get(SentOnce, f"alert:takeoff:{team.deliveries(post)[0].id}") is not None


async def test_below_the_factor_there_is_no_alert(team: Team, x: FakeX) -> None:
    await connect(team, x=x)
    await baseline(team, x, 10, 30, 20)
    await x_post_read_at_one_hour(team, x, 3, "An ordinary good day", 59)  # 3 × 20 = 60 would alert
    assert await check_takeoff(team.herald.ctx) == 0


async def test_no_take_off_alert_without_three_earlier_posts(team: Team, x: FakeX) -> None:
    await connect(team, x=x)
    await baseline(team, x, 10, 20)
    await x_post_read_at_one_hour(team, x, 2, "A huge post with only two behind it", 5000)
    assert await run(team, check_alerts) == ""
    out = await team.say("bob", "/alerts")
    assert "Needs 3 earlier posts with a reading at that age: no baseline, no alert." in out


async def test_an_earlier_post_read_only_at_a_different_age_is_no_baseline(team: Team, x: FakeX) -> None:
    await connect(team, x=x)
    await baseline(team, x, 10, 20)
    team.clock.current = START + timedelta(days=2)
    early = await publish(team, "Read early only", "acme-x")
    x.engage(remote_id(team, early), like_count=1)
    team.clock.advance(minutes=5)
    await poll_metrics(team.herald.ctx)  # read at 5 minutes, next at 25 hours: never near one hour
    await x_post_read_at_one_hour(team, x, 3, "Another huge one", 6000)
    assert await check_takeoff(team.herald.ctx) == 0


async def test_alerts_off_sends_no_take_off_alert(team: Team, x: FakeX) -> None:
    await connect(team, x=x)
    await baseline(team, x, 10, 30, 20)
    assert (await team.say("alice", "/alerts off")).startswith("🔔 Take-off and surge alerts: off (/alerts on).")
    await x_post_read_at_one_hour(team, x, 3, "Big news: our spring line is here", 500)
    assert await run(team, check_alerts) == ""


# --- comment surges ---------------------------------------------------------------------------------


async def bsky_post_with_comments(team: Team, bsky: FakeBluesky, day: int, text: str, minutes: list[int]) -> int:
    """A post on acme-bsky published `day` days after START, commented at these minutes after it, read at +40."""
    team.clock.current = START + timedelta(days=day)
    post = await publish(team, text, "acme-bsky")
    uri = remote_id(team, post)
    for n, minute in enumerate(minutes):
        comment_on(bsky, uri, n, team.clock.now() + timedelta(minutes=minute))
    team.clock.advance(minutes=40)
    await run(team, run_inbox)
    return post


async def test_a_comment_surge_alerts_against_the_usual_for_that_hour_of_a_posts_life(
    team: Team, bsky: FakeBluesky
) -> None:
    await connect(team, bsky=bsky)
    for day in range(3):  # earlier posts: one comment each in their first hour
        await bsky_post_with_comments(team, bsky, day, f"Earlier post {day}", [20])
    assert await check_surges(team.herald.ctx) == 0
    post = await bsky_post_with_comments(team, bsky, 3, "Price change announced", [5, 10, 12, 15, 20, 30])
    out = await run(team, check_alerts)
    assert out == "\n".join([
        f"💬 Comment surge on #{post} — “Price change announced”",
        "  6 comments between Thu 26 Nov 2026 10:00 and 10:30 CET (Europe/Paris): 6.0× the usual 1 in that hour "
        "of a post's life (median of 3 earlier posts; alert at 3×)",
        f"/inbox {post} lists them.",
        PAUSE,
    ])
    assert await run(team, check_alerts) == ""  # once


async def test_a_burst_that_ended_hours_before_it_was_read_is_no_surge(team: Team, bsky: FakeBluesky) -> None:
    """The first read after a deploy (or a slow cadence) finds an old burst: history, not an alert."""
    await connect(team, bsky=bsky)
    team.clock.current = START
    post = await publish(team, "Launch day", "acme-bsky")
    for n in range(20):  # 20 comments in its first hour…
        comment_on(bsky, remote_id(team, post), n, START + timedelta(minutes=2 + n))
    team.clock.advance(hours=5)  # …first read 5 hours later
    await run(team, run_inbox)
    assert len(items(team)) == 20
    assert await check_surges(team.herald.ctx) == 0


async def test_fewer_comments_than_the_rule_asks_is_no_surge(team: Team, bsky: FakeBluesky) -> None:
    await connect(team, bsky=bsky)
    for day in range(3):  # usual: 2 in the first hour; 5 < 3 × 2
        await bsky_post_with_comments(team, bsky, day, f"Earlier post {day}", [10, 20])
    await bsky_post_with_comments(team, bsky, 3, "Busy but not a surge", [5, 10, 12, 15, 20])
    assert await check_surges(team.herald.ctx) == 0


async def test_without_history_a_surge_is_fifteen_comments_in_an_hour(team: Team, bsky: FakeBluesky) -> None:
    await connect(team, bsky=bsky)
    post = await bsky_post_with_comments(team, bsky, 0, "First post ever", list(range(1, 15)))
    assert len(items(team)) == 14
    assert await check_surges(team.herald.ctx) == 0
    comment_on(bsky, remote_id(team, post), 99, START + timedelta(minutes=45))
    team.clock.advance(minutes=10)  # +50 min: the next read
    await run(team, run_inbox)
    out = await run(team, check_alerts)
    assert out.splitlines()[1] == (
        "  15 comments between Mon 23 Nov 2026 10:00 and 10:45 CET (Europe/Paris): there is too little history to "
        "compare (15 in an hour alerts without it)")
    assert await check_surges(team.herald.ctx) == 0


# --- watch words ------------------------------------------------------------------------------------


async def test_a_comment_with_a_watch_word_alerts_at_once_and_the_button_pauses_publishing(
    team: Team, bsky: FakeBluesky
) -> None:
    await connect(team, bsky=bsky)
    assert (await team.say("alice", "/watch add refund, rembourse, data breach")).startswith(
        "👀 Watching refund, rembourse, data breach.")
    post = await publish(team, "Spring sale starts today!", "acme-bsky")
    uri = remote_id(team, post)
    texts = ["Great sale!", "I want a REFUND now", "Already refunded, thanks", "Remboursé ? Jamais.",
             "Was there a data   breach?"]
    for n, text in enumerate(texts):
        comment_on(bsky, uri, n, START + timedelta(minutes=1 + n), text=text)
    team.clock.advance(minutes=10)
    out = await run(team, run_inbox)
    stored = items(team)
    assert [i.watch_hit for i in stored] == [None, "refund", None, "rembourse", "data breach"]
    forward, _, alert = out.partition("\n🚨")
    assert forward.startswith("💬 5 new comments on your posts:\n")
    assert f"  #{stored[1].id} · @ben1.bsky.social on Bluesky · post #{post} · “I want a REFUND now” · ⚠️ refund" in forward
    link = "https://bsky.app/profile/{}/post/{}"
    assert ("🚨" + alert).splitlines() == [
        f"🚨 Watch words in 3 comment(s) on #{post} — “Spring sale starts today!”",
        f"  #{stored[1].id} @ben1.bsky.social on Bluesky (acme-bsky): “I want a REFUND now” — matched: refund · "
        + link.format("ben1.bsky.social", stored[1].remote_id.rsplit("/")[-1]),
        f"  #{stored[3].id} @dev3.bsky.social on Bluesky (acme-bsky): “Remboursé ? Jamais.” — matched: rembourse · "
        + link.format("dev3.bsky.social", stored[3].remote_id.rsplit("/")[-1]),
        f"  #{stored[4].id} @emma4.bsky.social on Bluesky (acme-bsky): “Was there a data breach?” — matched: data "
        "breach · " + link.format("emma4.bsky.social", stored[4].remote_id.rsplit("/")[-1]),
        f"Answer with /reply {stored[1].id} <text>; /inbox {post} shows the post's comments.",
        "To hold every scheduled post: /pause <reason>, or the button.",
        "[1] ⏸ Pause publishing  [2] 🚨 Start crisis mode   (type a number to press)",
    ]
    # the button asks why, then pauses
    prompt = await team.say("alice", "1")
    assert prompt == "Why pause publishing? (the team sees the reason) (type it, or a /command to skip)"
    out = await team.say("alice", "Refund complaints piling up")
    assert out.startswith("⏸ Publishing paused by alice")
    assert workspace(team).paused is True
    # nothing twice: the next read finds the same comments and says nothing
    team.clock.advance(minutes=10)
    assert await run(team, run_inbox) == ""
    # a new watch-word comment now says publishing is already paused
    comment_on(bsky, uri, 5, team.clock.now() - timedelta(minutes=1), text="refund please")
    team.clock.advance(minutes=10)
    out = await run(team, run_inbox)
    assert out.endswith("\nPublishing is already paused (Refund complaints piling up); /resume lifts it.\n"
                        "[1] 🚨 Start crisis mode   (type a number to press)")


async def test_the_reason_typed_after_the_pause_button_is_kept(team: Team, bsky: FakeBluesky) -> None:
    await connect(team, bsky=bsky)
    await team.say("alice", "/watch add refund")
    post = await publish(team, "Spring sale starts today!", "acme-bsky")
    comment_on(bsky, remote_id(team, post), 0, START + timedelta(minutes=2), text="refund!")
    team.clock.advance(minutes=10)
    await run(team, run_inbox)
    await team.say("alice", "1")
    await team.say("alice", "Refund complaints piling up")
    assert workspace(team).pause_reason == "Refund complaints piling up"


async def test_watch_words_added_later_apply_to_new_comments_only(team: Team, bsky: FakeBluesky) -> None:
    await connect(team, bsky=bsky)
    post = await publish(team, "Spring sale starts today!", "acme-bsky")
    uri = remote_id(team, post)
    comment_on(bsky, uri, 0, START + timedelta(minutes=2), text="refund?")
    team.clock.advance(minutes=10)
    assert "🚨" not in await run(team, run_inbox)
    await team.say("alice", "/watch add refund")
    comment_on(bsky, uri, 1, START + timedelta(minutes=15), text="Refund!!")
    team.clock.advance(minutes=10)
    out = await run(team, run_inbox)
    assert "🚨 Watch words in 1 comment(s)" in out and "“Refund!!” — matched: refund" in out
    with team.herald.db.session() as session:
        assert [i.watch_hit for i in session.exec(select(InboxItem).order_by(InboxItem.id))] == [None, "refund"]  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "words", "hits"), [
    ("I want a REFUND", ["refund"], ["refund"]),
    ("refunded already", ["refund"], []),
    ("refunded already", ["refund*"], ["refund*"]),
    ("Remboursé !", ["rembourse"], ["rembourse"]),
    ("rembourse", ["Remboursé"], ["Remboursé"]),
    ("a Data\nBreach here", ["data breach"], ["data breach"]),
    ("#refund", ["refund"], ["refund"]),
    ("nonrefund", ["refund"], []),
    ("Straße", ["strasse"], ["strasse"]),
    ("scam, lawsuit", ["lawsuit", "scam", "fraud"], ["lawsuit", "scam"]),
])
def test_watch_words_match_whole_words_in_any_case_without_accents(text: str, words: list[str],
                                                                   hits: list[str]) -> None:
    assert watch_hits(text, words) == hits


def test_fold_and_parse_words() -> None:
    assert fold("Ça GÈRE") == "ca gere"
    assert parse_words("refund lawsuit") == ["refund", "lawsuit"]
    assert parse_words("data  breach, refund*") == ["data breach", "refund*"]
    with pytest.raises(UserError, match="isn't a word I can watch"):
        parse_words("re*fund")
    with pytest.raises(UserError, match="isn't a word I can watch"):
        parse_words("!!!")


# --- /watch and /alerts ---------------------------------------------------------------------------


async def test_watch_lists_adds_removes_and_clears(team: Team) -> None:
    await team.setup_workspace()
    assert (await team.say("bob", "/watch")).startswith("No watch words yet.")
    out = await team.say("alice", "/watch add refund lawsuit")
    assert out == "👀 Watching refund, lawsuit. Now 2 watch word(s): refund, lawsuit."
    out = await team.say("alice", "/watch add Lawsuit, data breach")
    assert out == "👀 Watching data breach (already watched: Lawsuit). Now 3 watch word(s): refund, lawsuit, data breach."
    assert (await team.say("bob", "/watch")).startswith("👀 Watch words (3): refund, lawsuit, data breach.\n")
    assert await team.say("alice", "/watch remove data breach") == (
        "Stopped watching data breach. Still watching: refund, lawsuit.")
    assert workspace(team).watch_words == "refund,lawsuit"
    assert await team.say("alice", "/watch off") == (
        "Watch words cleared (refund, lawsuit). No comment alerts until /watch add.")
    assert workspace(team).watch_words == ""


async def test_watch_refuses_bad_input_and_changes_nothing(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/watch add refund")
    await refused(team, "alice", "/watch add REFUND", "Already watching REFUND.")
    await refused(team, "alice", "/watch remove lawsuit", "I'm not watching lawsuit.")
    await refused(team, "alice", "/watch add", "Which words? Example: /watch add refund, data breach")
    await refused(team, "alice", "/watch add re*fund", "'re*fund' isn't a word I can watch")
    await refused(team, "alice", "/watch add " + "x" * 41, "too long")
    await refused(team, "alice", "/watch frobnicate", "'frobnicate' isn't something /watch does.")
    await refused(team, "alice", "/watch off now", "/watch off clears every watch word and takes nothing after it.")
    await refused(team, "bob", "/watch add lawsuit", "Only admins or editors can change the watch words.")
    await refused(team, "alice", "/watch add " + ", ".join(f"w{n}" for n in range(50)), "the most is 50")
    await team.say("alice", "/watch off")
    await refused(team, "alice", "/watch off", "There are no watch words to clear.")


async def test_alerts_shows_the_rules_and_sets_the_factor(team: Team) -> None:
    await team.setup_workspace()
    out = await team.say("bob", "/alerts")
    lines = out.splitlines()
    assert lines[0] == "🔔 Take-off and surge alerts: at 3× the usual."
    assert lines[1].startswith("• Taking off: a post's engagements (likes, comments, shares, quotes, saves, clicks) at "
                               "its latest reading ≥ 3× the median of the same account's last 20 earlier posts")
    assert lines[2].startswith("• Comment surge: at least 5 comments on a post within an hour and ≥ 3× the median")
    assert lines[3].startswith("• Clicks taking off: at least 10 people clicking a post's short link within an hour")
    assert lines[4] == "• Watch words: none (/watch)."
    out = await team.say("alice", "/alerts factor=4.5")
    assert out.startswith("🔔 Take-off and surge alerts: at 4.5× the usual.")
    assert workspace(team).alert_factor == 4.5
    await team.say("alice", "/alerts off")
    assert workspace(team).alert_factor == 0
    out = await team.say("alice", "/alerts on")
    assert out.startswith("🔔 Take-off and surge alerts: at 3× the usual.") and workspace(team).alert_factor == 3


async def test_alerts_refuses_bad_input_and_changes_nothing(team: Team) -> None:
    await team.setup_workspace()
    await refused(team, "alice", "/alerts factor=1", "The factor must be from 1.5 to 50", "1 isn't")
    await refused(team, "alice", "/alerts factor=100", "The factor must be from 1.5 to 50")
    await refused(team, "alice", "/alerts factor=lots", "'factor=lots' isn't a setting. Usage: /alerts [factor=N|off|on]")
    await refused(team, "alice", "/alerts on", "already on")
    await refused(team, "bob", "/alerts factor=5", "Only admins can change the alert factor.")
    await refused(team, "bob", "/alerts off", "Only admins can switch alerts.")
