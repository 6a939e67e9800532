"""How far a post spreads, end to end in the console chat: X (the loopback fake) lists who reposted and quoted a
published post; after a metrics reading shows shares, Herald reads them, stores each sharer once, alerts a big
account's quote with the right numbers, answers it through approvals, and /spread shows the share tree."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from mastodon_mock.testing import MockServer
from sqlmodel import select

from bot.chats.buttons import DISCORD, TELEGRAM
from bot.networks.common import plain_text
from handlers.core.context import Context
from handlers.engagement.metrics import poll_metrics
from handlers.engagement.spread import compact, crisis_button, read_spread
from storage.models import Account, Amplifier, ShareReading
from tests.conftest import FakeClock, Team, capturing, refused
from tests.fakes.x_api import FakeX


@pytest.fixture
async def x() -> AsyncIterator[FakeX]:
    async with FakeX() as server:
        yield server


async def run(team: Team, task: Callable[[Context], Awaitable[Any]]) -> str:
    """Run a periodic task as the scheduler would; what Herald said in the chat meanwhile."""
    captured: list[str] = []
    team.herald.console.captured = captured
    try:
        await task(team.herald.ctx)
    finally:
        team.herald.console.captured = None
    return "\n".join(captured)


async def published_on_x(team: Team, x: FakeX, text: str = "Spring sale starts today!") -> tuple[int, str]:
    """Acme with an X account (the fake); alice's post approved by bob and published; (post, its tweet id)."""
    out = await team.say("alice", f"/draft {text} to=acme-x")
    post_id = int(out.split("#", 1)[1].split(" ", 1)[0].rstrip("."))
    await team.say("alice", f"/submit {post_id}")
    await team.say("bob", f"/approve {post_id}")
    out = await team.say("alice", f"/publish {post_id}")
    assert f"📣 #{post_id} is published" in out, out
    remote = team.deliveries(post_id)[0].remote_id
    assert remote is not None
    return post_id, remote


async def setup(team: Team, x: FakeX) -> None:
    await team.say("alice", "/setup Acme")
    await team.say("alice", "/timezone Europe/Paris")
    out = await team.say("alice", f"/connect x name=acme-x base_url={x.url} access_token=tok-1")
    assert out.startswith("Connected acme-x"), out
    await team.say("alice", "/role bob approver")


async def read_round(team: Team, minutes: float = 6) -> str:
    """Time passes, the metrics are read as the clock would, then the sharers they call for."""
    team.clock.advance(minutes=minutes)
    await run(team, poll_metrics)
    return await run(team, read_spread)


def quote_id(team: Team) -> str:
    return next(a.remote_id for a in amplifiers(team) if a.kind == "quote")


def amplifiers(team: Team) -> list[Amplifier]:
    with team.herald.db.session() as session:
        return list(session.exec(select(Amplifier).order_by(Amplifier.id)).all())  # type: ignore[arg-type]


async def test_a_big_account_quoting_a_post_alerts_the_team_with_the_right_numbers(team: Team, x: FakeX) -> None:
    await setup(team, x)
    await team.say("alice", "/watch add refund")
    post_id, tweet = await published_on_x(team, x)
    big = x.person("bigaccount", 120_000)
    x.quote(tweet, big, "Is this the refund they promised? Still waiting.", likes=40)
    x.repost(tweet, x.person("smallfan", 300))
    out = await read_round(team)
    assert out.splitlines()[:5] == [
        f"📣 @bigaccount (120k followers) quoted #{post_id} on X: “Is this the refund they promised? Still waiting.”",
        "  Tone: complaint — watch words: refund.",
        f"  40 engagements on the quote · https://x.com/bigaccount/status/{quote_id(team)}",
        f"  #{post_id} — “Spring sale starts today!”: 2 share(s) by others, reach through shares up to 120,300 "
        f"followers. /spread {post_id} shows the share tree.",
        "Answer with /reply 1 <text> (approved first when your policy asks), or start crisis mode with the button.",
    ]
    assert "[1] ↩ Reply  [2] 🚨 Start crisis mode" in out
    assert "smallfan" not in out  # 300 followers: under the 10,000 threshold, no alert
    # once: the next round says nothing more
    assert await read_round(team, minutes=10) == ""
    # the Reply button answers the quote through approvals, on X, in reply to the quote
    out = await team.say("alice", "1")
    assert out.startswith("Your reply to @bigaccount (approved first if your policy asks)"), out
    out = await team.say("alice", "Refunds go out on Monday, sorry for the wait.")
    assert "Approvals: 0 of 1 · waiting for approval" in out, out
    assert x.requests("POST", "/2/tweets")[-1].json["text"] == "Spring sale starts today!"
    await team.say("bob", "/approve_reply 1")
    answer = x.requests("POST", "/2/tweets")[-1].json
    assert answer["text"].endswith("Refunds go out on Monday, sorry for the wait.")
    assert answer["reply"] == {"in_reply_to_tweet_id": quote_id(team)}


async def test_each_sharer_is_stored_once_per_post_and_a_quote_is_kept_over_a_repost(team: Team, x: FakeX) -> None:
    await setup(team, x)
    post_id, tweet = await published_on_x(team, x)
    fan = x.person("fan", 50)
    x.repost(tweet, fan)
    await read_round(team)
    assert [(a.handle, a.kind, a.followers) for a in amplifiers(team)] == [("@fan", "repost", 50)]
    x.users[fan]["public_metrics"]["followers_count"] = 60
    x.quote(tweet, fan, "Also: great prices")
    await read_round(team, minutes=10)
    rows = amplifiers(team)
    assert [(a.handle, a.kind, a.followers, a.text) for a in rows] == [("@fan", "quote", 60, "Also: great prices")]
    assert rows[0].post_id == post_id


async def test_no_new_shares_no_read_and_a_429_waits_as_the_network_says(team: Team, x: FakeX) -> None:
    await setup(team, x)
    _post_id, tweet = await published_on_x(team, x)
    x.repost(tweet, x.person("fan", 50))
    await read_round(team)
    reads = len(x.requests("GET", f"/2/tweets/{tweet}/retweeted_by"))
    assert reads == 1
    await read_round(team, minutes=10)  # the metrics show the same shares: their sharers aren't read again
    assert len(x.requests("GET", f"/2/tweets/{tweet}/retweeted_by")) == 1
    x.repost(tweet, x.person("other", 70))
    x.fail("GET", f"/2/tweets/{tweet}/retweeted_by", status=429, headers={"retry-after": "1800"},
           body={"title": "Too Many Requests", "status": 429})
    await read_round(team, minutes=10)
    assert len(x.requests("GET", f"/2/tweets/{tweet}/retweeted_by")) == 2  # the 429
    with team.herald.db.session() as session:
        waits = [r.wait_until for r in session.exec(select(ShareReading)) if r.wait_until is not None]
    assert waits == [team.clock.now() + timedelta(minutes=30)]
    await read_round(team, minutes=10)  # within the wait: not asked
    assert len(x.requests("GET", f"/2/tweets/{tweet}/retweeted_by")) == 2
    await read_round(team, minutes=25)  # after it: read, and the new sharer is there
    assert len(x.requests("GET", f"/2/tweets/{tweet}/retweeted_by")) == 3
    assert sorted(a.handle for a in amplifiers(team)) == ["@fan", "@other"]


async def test_spread_shows_top_amplifiers_and_the_share_tree(team: Team, x: FakeX) -> None:
    await setup(team, x)
    post_id, tweet = await published_on_x(team, x)
    mid = x.quote(tweet, x.person("mid", 5_000), "worth a read")
    x.quote(mid, x.person("far", 900), "via mid")
    x.repost(tweet, x.person("fan", 40))
    await team.say("alice", "/spread alert=800")
    out = await read_round(team)
    assert f"📣 @far (900 followers) quoted @mid's quote of #{post_id} on X: “via mid”" in out.splitlines()
    assert f"📣 @mid (5k followers) quoted #{post_id} on X: “worth a read”" in out.splitlines()
    assert "@fan" not in out
    out = await team.say("carol", f"/spread {post_id}")
    lines = out.splitlines()
    assert lines[0] == f"📣 How far #{post_id} spread — “Spring sale starts today!”"
    assert lines[1].startswith("Shares by others: 2 (1 repost(s), 1 quote(s)) · reach through shares: up to 5,040 "
                               "followers (the sum of the sharers' followers: an upper bound")
    assert lines[2] == "Quotes of quotes: 1, up to 900 more followers"
    assert lines[3] == "Top amplifiers (3 of 3):"
    assert lines[4] == ("  @mid (5k followers) quoted on X, Mon 23 Nov 2026 11:00 CET (Europe/Paris): “worth a read” — "
                        "1 engagement")
    assert lines[5] == "  @far (900 followers) quoted on X, Mon 23 Nov 2026 11:00 CET (Europe/Paris): “via mid”"
    assert lines[6] == "  @fan (40 followers) reposted on X"
    assert lines[-5:] == ["Share tree:", f"  #{post_id} on acme-x (X)", "  ├ @mid (5k followers) quoted",
                          "  │  └ @far (900 followers) quoted that", "  └ @fan (40 followers) reposted"]


async def test_spread_settings_and_bad_input(team: Team, x: FakeX) -> None:
    await setup(team, x)
    out = await team.say("alice", "/spread alert=50k")
    assert out.startswith("Alerts: a sharer with at least 50,000 followers alerts the team."), out
    assert "Herald reads who shared on X, Bluesky, Mastodon" in out
    await refused(team, "bob", "/spread alert=5000", "admin")
    await refused(team, "alice", "/spread alert=lots", "isn't a follower count", "/spread alert=50000")
    await refused(team, "alice", "/spread 999", "#999")
    await refused(team, "alice", "/spread 12 13", "one post number")
    await refused(team, "alice", "/spread praise shout", "add, remove or off")
    out = await team.say("alice", "/spread praise add love, thank*")
    assert out.startswith("Praise words: love, thank*."), out
    out = await team.say("alice", "/spread")
    assert out.splitlines()[:2] == ["📣 Shares by others in the last 7 days",
                                    "Shares by others: none seen (Herald reads who shared on X, Bluesky, Mastodon)."]
    assert "Praise words: love, thank*" in out


async def test_praise_and_unknown_tone_and_the_alert_off(team: Team, x: FakeX) -> None:
    await setup(team, x)
    await team.say("alice", "/spread praise add love")
    post_id, tweet = await published_on_x(team, x)
    x.quote(tweet, x.person("happy", 20_000), "I love this sale")
    x.quote(tweet, x.person("plain", 30_000), "Sale on")
    out = await read_round(team)
    assert "  Tone: praise — praise words: love." in out
    assert ("  Tone: unknown — it holds none of the watch words (/watch) or praise words (/spread praise).") in out
    await team.say("alice", "/spread alert=off")
    x.quote(tweet, x.person("huge", 1_000_000), "wow")
    assert await read_round(team, minutes=10) == ""
    assert "@huge" in [a.handle for a in amplifiers(team)]


async def test_the_alerts_crisis_button_starts_crisis_mode_naming_who_and_which_post(team: Team, x: FakeX) -> None:
    await setup(team, x)
    post_id, tweet = await published_on_x(team, x)
    x.quote(tweet, x.person("bigaccount", 120_000), "This is a scandal", likes=3)
    out = await read_round(team)
    assert "[1] ↩ Reply  [2] 🚨 Start crisis mode" in out, out
    out = await team.say("alice", "2")
    assert "🚨 CRISIS MODE since Mon 23 Nov 2026 10:" in out, out
    assert f"started by alice: @bigaccount on #{post_id}" in out, out
    assert (await team.say("alice", "/crisis")).startswith("🚨 CRISIS MODE since")


def test_the_crisis_button_is_the_command_crisis_start_with_a_reason_on_every_platform() -> None:
    button = crisis_button("@bigaccount", 12)
    assert (button.command, button.args) == ("crisis", {"do": "start", "text": "@bigaccount on #12"})
    for codec in (TELEGRAM, DISCORD):
        data = codec.encode(button)
        assert data is not None
        decoded = codec.decode(data)
        assert decoded is not None and decoded.command == "crisis"
        assert decoded.args == {"do": "start", "text": "@bigaccount on #12"}
    long = crisis_button("@" + "x" * 80 + "@mastodon.example", 12345)
    assert long.args["text"] == "@xxxxxxxxxxxxxxxxxxxxxxx on #12345"
    assert TELEGRAM.encode(long) is not None


def test_follower_counts_read_as_people_say_them() -> None:
    assert [compact(n) for n in (950, 1_000, 1_260, 12_345, 120_000, 2_400_000)] == [
        "950", "1k", "1.3k", "12k", "120k", "2.4M"]


async def test_stats_report_and_spread_show_shares_by_others_reach_and_top_amplifiers(team: Team, x: FakeX) -> None:
    await setup(team, x)
    post_id, tweet = await published_on_x(team, x)
    x.quote(tweet, x.person("bigaccount", 120_000), "Worth it")
    x.repost(tweet, x.person("fan", 40))
    await read_round(team)
    shares = ("Shares by others: 2 · reach through shares: up to 120,040 followers (an upper bound)")
    top = f"Top amplifiers: @bigaccount (120k followers, #{post_id} on X); @fan (40 followers, #{post_id} on X)"
    out = await team.say("carol", f"/stats {post_id}")
    assert f"{shares} — /spread {post_id} shows the share tree\n{top}\n[image: " in out, out
    out = await team.say("carol", "/report week")
    assert f"{shares} — /spread shows the last 7 days with a chart\n{top}" in out, out
    out = await team.say("carol", "/spread")
    assert out.startswith(f"📣 Shares by others in the last 7 days\n{shares}\n{top}\n"), out
    assert "\n[image: " in out


async def test_two_workers_read_the_sharers_once_and_alert_once(team: Team, x: FakeX, clock: FakeClock) -> None:
    await setup(team, x)
    post_id, tweet = await published_on_x(team, x)
    x.quote(tweet, x.person("bigaccount", 120_000), "Hm")
    other, other_lines = capturing(team.db_url, clock, HERALD_WORKER_ID="second-worker")
    await other.start()
    try:
        team.clock.advance(minutes=6)
        await run(team, poll_metrics)
        captured: list[str] = []
        team.herald.console.captured = captured
        try:
            await asyncio.gather(read_spread(team.herald.ctx), read_spread(other.ctx))
        finally:
            team.herald.console.captured = None
        said = [line for line in [*captured, *other_lines] if line.startswith("📣")]
        assert len(said) == 1 and said[0].startswith(f"📣 @bigaccount (120k followers) quoted #{post_id} on X")
        assert len(x.requests("GET", f"/2/tweets/{tweet}/quote_tweets")) == 1
        assert [a.handle for a in amplifiers(team)] == ["@bigaccount"]
    finally:
        await other.stop()


async def test_the_share_budget_holds_reads_back_until_its_window_has_room(team: Team, x: FakeX) -> None:
    await setup(team, x)
    _post_id, tweet = await published_on_x(team, x)
    x.repost(tweet, x.person("fan", 50))
    with team.herald.db.session() as session:  # X allows 5 posts' sharers per 15 minutes: spent just now
        account = session.exec(select(Account)).one()
        for _ in range(5):
            session.add(ShareReading(account_id=account.id or 0, delivery_id=team.deliveries(1)[0].id,
                                     taken_at=team.clock.now() + timedelta(minutes=6), total=0))
    await read_round(team)
    assert x.requests("GET", f"/2/tweets/{tweet}/retweeted_by") == []
    await read_round(team, minutes=16)  # the window has room again, and a new reading calls for the read
    assert len(x.requests("GET", f"/2/tweets/{tweet}/retweeted_by")) == 1
    assert [a.handle for a in amplifiers(team)] == ["@fan"]


async def test_on_mastodon_mock_a_boost_and_a_quote_reach_spread_and_the_alert(team: Team) -> None:
    """The same path on Mastodon, against mastodon-mock: the metrics show the boost, Herald reads who boosted and
    quoted, and a sharer over the (lowered) threshold alerts with a Reply that answers the quote on Mastodon."""
    with MockServer() as mock:
        await team.say("alice", "/setup Acme")
        out = await team.say("alice", f"/connect mastodon name=acme-masto base_url={mock.base_url} "
                                      "access_token=alice_token")
        assert out.startswith("Connected acme-masto"), out
        await team.say("alice", "/policy approvals=0")
        await team.say("alice", "/spread alert=1")
        out = await team.say("alice", "/draft Spring sale on Mastodon to=acme-masto")
        post_id = int(out.split("#", 1)[1].split(" ", 1)[0].rstrip("."))
        await team.say("alice", f"/submit {post_id}")
        out = await team.say("alice", f"/publish {post_id}")
        assert f"📣 #{post_id} is published" in out, out
        status = team.deliveries(post_id)[0].remote_id
        async with httpx.AsyncClient(base_url=mock.base_url, headers={"Authorization": "Bearer bob_token"}) as bob:
            (await bob.post(f"/api/v1/statuses/{status}/reblog")).raise_for_status()
            quote = (await bob.post("/api/v1/statuses", json={"status": "Good prices there",
                                                              "quoted_status_id": status})).json()
        out = await read_round(team)
        followers = next(a.followers for a in amplifiers(team))
        assert out.startswith(f"📣 @bob ({followers} follower{'' if followers == 1 else 's'}) quoted #{post_id} on "
                              "Mastodon: “Good prices there”"), out
        assert [(a.handle, a.kind, a.remote_id) for a in amplifiers(team)] == [("@bob", "quote", quote["id"])]
        await team.say("alice", "1")
        out = await team.say("alice", "Thanks Bob!")
        async with httpx.AsyncClient(base_url=mock.base_url) as anyone:
            context = (await anyone.get(f"/api/v1/statuses/{quote['id']}/context")).json()
        assert [plain_text(s["content"]) for s in context["descendants"]] == ["@bob Thanks Bob!"], out
