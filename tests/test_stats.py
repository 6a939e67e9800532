"""Per-post reports (issue 6): /stats with a chart, the automatic 1 h / 24 h / 7 d reports, /postreports.

The numbers come from the networks' loopback fakes (X and Mastodon on 127.0.0.1) through Herald's real
connectors and metrics poll, on the FakeClock. The chart is the real matplotlib PNG, decoded with Pillow,
and the end-to-end tests send it through the real Telegram and Discord front ends to their fakes.
"""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from PIL import Image
from sqlmodel import select

from bot.charts import MatplotlibCharts
from bot.chats.discord import DiscordFront
from bot.chats.telegram import TelegramFront
from handlers.core.chat import ChatAddress, Command, Reply
from handlers.core.errors import UserError
from handlers.core.ports import Series
from handlers.engagement.metrics import poll_metrics
from handlers.engagement.stats import chart_series, mark_label, parse_marks, post_reports_task
from storage.models import MetricSnapshot, SentOnce, Workspace
from tests.conftest import START, FakeClock, Team, capturing, make_herald, refused
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.mastodon_api import FakeMastodon
from tests.fakes.telegram_api import TOKEN as TELEGRAM_TOKEN
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.x_api import FakeX

BLUE, ORANGE, GREEN = (0x25, 0x63, 0xEB), (0xF9, 0x73, 0x16), (0x16, 0xA3, 0x4A)  # bot/charts.py's first colours
PARIS = "CET (Europe/Paris)"


class Mastodon(FakeMastodon):
    """FakeMastodon plus what the metrics poll reads: the batched `GET /api/v1/statuses?id[]=…` (Mastodon 4.3+)
    with each status's favourites, reblogs and replies, and the account's follower count."""

    def __init__(self, followers: int = 250) -> None:
        super().__init__()
        self.followers = followers
        self.route("GET", "/api/v1/statuses", self.statuses_by_id)

    async def me(self, request: web.Request) -> web.Response:
        if not self._ok(request):
            return web.json_response({"error": "The access token is invalid"}, status=401)
        return web.json_response({"id": "1", "username": "brand", "acct": "brand", "followers_count": self.followers,
                                  "url": f"{self.url}/@brand"})

    async def statuses_by_id(self, request: web.Request) -> web.Response:
        if not self._ok(request):
            return web.json_response({"error": "The access token is invalid"}, status=401)
        found = [self.statuses[i] for i in request.query.getall("id[]", []) if i in self.statuses]
        return web.json_response([{"favourites_count": 0, "reblogs_count": 0, "replies_count": 0,
                                   **{k: v for k, v in s.items() if k != "media_ids"}} for s in found])

    def engage(self, status_id: str, **counts: int) -> None:
        self.statuses[status_id].update(counts)


@dataclass
class Nets:
    x: FakeX
    masto: Mastodon

    @property
    def tweet(self) -> str:
        return list(self.x.tweets)[-1]

    @property
    def status(self) -> str:
        return list(self.masto.statuses)[-1]

    def lines(self) -> list[str]:
        return [f"/connect x name=acme-x base_url={self.x.url} access_token=tok-1",
                f"/connect mastodon name=acme-masto base_url={self.masto.url} access_token=masto-token"]

    def x_numbers(self, likes: int, replies: int, reposts: int, quotes: int, views: int, clicks: int,
                  saves: int) -> None:
        self.x.engage(self.tweet, like_count=likes, reply_count=replies, retweet_count=reposts, quote_count=quotes,
                      impression_count=views, url_link_clicks=clicks, bookmark_count=saves)

    def masto_numbers(self, likes: int, replies: int, reposts: int) -> None:
        self.masto.engage(self.status, favourites_count=likes, replies_count=replies, reblogs_count=reposts)


@pytest.fixture
async def nets() -> AsyncIterator[Nets]:
    async with FakeX() as x, Mastodon() as masto:
        yield Nets(x, masto)  # type: ignore[arg-type]


async def workspace(team: Team, nets: Nets) -> None:
    """alice's workspace in Paris time with an X and a Mastodon account on the fakes; bob approves."""
    await team.say("alice", "/setup Acme")
    await team.say("alice", "/timezone Europe/Paris")
    for line in nets.lines():
        out = await team.say("alice", line)
        assert out.startswith("Connected acme-"), out
    await team.say("alice", "/role bob approver")


async def published(team: Team, text: str = "Spring sale: 20% off everything") -> int:
    """A post drafted by alice, approved by bob and published now; its number."""
    post_id = await team.approved_post(text)
    out = await team.say("alice", f"/publish {post_id}")
    assert f"📣 #{post_id} is published" in out, out
    return post_id


async def ask(team: Team, user: str, line: str) -> Reply:
    """Run a command as `user` in the console chat and return Herald's Reply itself (with its image)."""
    console = team.herald.console
    console.user = user
    name, _, text = line.lstrip("/").partition(" ")
    return await team.herald.handle(Command(name, console.actor(), console.chat, text=text))


def png_of(data: bytes | None) -> Image.Image:
    """Decode a chart: a real PNG of the size bot/charts.py draws."""
    assert data is not None, "no chart"
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(data))
    image.load()
    assert (image.format, image.size, image.mode) == ("PNG", (880, 495), "RGBA")
    return image


def pixels(image: Image.Image, rgb: tuple[int, int, int]) -> int:
    """How many pixels are exactly this colour (a line drawn in it leaves plenty)."""
    return sum(count for count, colour in image.convert("RGB").getcolors(880 * 495) or [] if colour == rgb)


class Notices:
    """Records the notices Herald sends into the console chat on its own (reports), with their images."""

    def __init__(self, team: Team) -> None:
        self.replies: list[Reply] = []
        self.console = team.herald.console
        team.herald.notifier.register("console", self)

    async def send(self, chat: ChatAddress, reply: Reply) -> None:
        self.replies.append(reply)
        await self.console.send(chat, reply)

    def take(self) -> list[Reply]:
        taken, self.replies = self.replies, []
        return taken


async def reports(team: Team) -> int:
    return await post_reports_task(team.herald.ctx)


def shown_times(team: Team) -> list[Any]:
    with team.herald.db.session() as session:
        return [s.shown_at for s in session.exec(select(MetricSnapshot).order_by(MetricSnapshot.id)).all()]


def sent_keys(team: Team) -> list[str]:
    with team.herald.db.session() as session:
        return sorted(k for k in session.exec(select(SentOnce.key)).all() if k.startswith("postreport:"))


# --- /stats ----------------------------------------------------------------------------------------


async def test_stats_show_each_account_the_total_the_rate_with_its_denominator_and_a_chart(
        team: Team, nets: Nets) -> None:
    await workspace(team, nets)
    post_id = await published(team)
    nets.x_numbers(likes=30, replies=4, reposts=6, quotes=2, views=1000, clicks=5, saves=3)  # 50 engagements
    nets.masto_numbers(likes=12, replies=3, reposts=5)  # 20 engagements; 250 followers, no views
    team.clock.advance(minutes=6)
    assert await poll_metrics(team.herald.ctx) == 2
    reply = await ask(team, "bob", f"/stats {post_id}")
    assert reply.text.splitlines() == [
        f"📊 #{post_id} — published Mon 23 Nov 2026 10:00 {PARIS} (6 minutes ago)",
        "  acme-masto (mastodon): 12 likes · 3 comments · 5 shares",
        "    engagement rate 8.0% = 20 engagements ÷ 250 followers (no views from mastodon)",
        "  acme-x (x): 30 likes · 4 comments · 6 shares · 2 quotes · 1,000 views · 5 clicks · 3 saves",
        "    engagement rate 5.0% = 50 engagements ÷ 1,000 views",
        "  Total: 42 likes · 7 comments · 11 shares · 2 quotes · 1,000 views · 5 clicks · 3 saves",
        "  Engagement rate: 5.0% (engagements 50 ÷ views 1,000, on acme-x only: the accounts that give views)",
        "Engagements = likes + comments + shares + quotes + clicks + saves.",
        f"First report of #{post_id}'s numbers: the next one shows the changes since this one.",
        f"Numbers read Mon 23 Nov 2026 10:06 {PARIS} (now).",
        f"Next reading Mon 23 Nov 2026 10:16 {PARIS} (in 10 minutes).",
    ]
    image = png_of(reply.image)
    # one line per account (blue, orange) and the post's total (green): real lines, not "no numbers yet"
    assert pixels(image, BLUE) > 100 and pixels(image, ORANGE) > 100 and pixels(image, GREEN) > 100
    # the follower count came from Mastodon's verify_credentials and is kept with the reading
    with team.herald.db.session() as session:
        followers = sorted((s.followers or 0) for s in session.exec(select(MetricSnapshot)).all())
    assert followers == [250, 1234]  # FakeX's account has 1,234 followers



async def test_without_views_anywhere_the_rate_is_engagements_over_followers_and_says_so(
        team: Team, nets: Nets) -> None:
    await workspace(team, nets)
    post_id = await published(team, "Only on Mastodon to=acme-masto")
    nets.masto_numbers(likes=9, replies=2, reposts=4)  # 15 engagements
    team.clock.advance(minutes=5)
    assert await poll_metrics(team.herald.ctx) == 1
    out = await team.say("bob", f"/stats {post_id}")
    lines = out.splitlines()
    assert lines[1:5] == [
        "  acme-masto (mastodon): 9 likes · 2 comments · 4 shares",
        "    engagement rate 6.0% = 15 engagements ÷ 250 followers (no views from mastodon)",
        "  Total: 9 likes · 2 comments · 4 shares",
        "  Engagement rate: 6.0% (engagements 15 ÷ followers 250: no account gives views)",
    ]
    assert lines[-1].startswith("[image: ") and lines[-1].endswith(" bytes]")  # the console notes the chart


async def test_two_accounts_on_one_network_also_get_that_networks_subtotal(team: Team, nets: Nets) -> None:
    async with FakeX() as second:
        await workspace(team, nets)
        out = await team.say("alice", f"/connect x name=acme-x2 base_url={second.url} access_token=tok-1")
        assert out.startswith("Connected acme-x2"), out
        post_id = await published(team)
        nets.x_numbers(likes=30, replies=4, reposts=6, quotes=2, views=1000, clicks=5, saves=3)  # 50 engagements
        second.engage(list(second.tweets)[-1], like_count=10, reply_count=1, retweet_count=0, quote_count=0,
                      impression_count=500, url_link_clicks=0, bookmark_count=1)  # 12 engagements
        nets.masto_numbers(likes=12, replies=3, reposts=5)
        team.clock.advance(minutes=5)
        assert await poll_metrics(team.herald.ctx) == 3
        lines = (await team.say("bob", f"/stats {post_id}")).splitlines()
        assert lines[5:10] == [
            "  acme-x2 (x): 10 likes · 1 comment · 0 shares · 0 quotes · 500 views · 0 clicks · 1 save",
            "    engagement rate 2.4% = 12 engagements ÷ 500 views",
            "  x (2 accounts): 40 likes · 5 comments · 6 shares · 2 quotes · 1,500 views · 5 clicks · 4 saves",
            "  Total: 52 likes · 8 comments · 11 shares · 2 quotes · 1,500 views · 5 clicks · 4 saves",
            "  Engagement rate: 4.1% (engagements 62 ÷ views 1,500, on acme-x, acme-x2 only: the accounts that give "
            "views)",
        ]


async def test_the_change_is_since_the_numbers_last_shown_not_since_the_reading_before(
        team: Team, nets: Nets) -> None:
    await workspace(team, nets)
    post_id = await published(team)
    nets.x_numbers(likes=30, replies=4, reposts=6, quotes=2, views=1000, clicks=5, saves=3)
    nets.masto_numbers(likes=12, replies=3, reposts=5)
    team.clock.advance(minutes=5)
    await poll_metrics(team.herald.ctx)
    await team.say("bob", f"/stats {post_id}")  # the team is shown 30 likes / 1,000 views (10:05)
    # two more readings before anyone looks again: the change must count from 10:05, not from 10:15
    for minutes, (likes, views) in ((10, (40, 1500)), (10, (52, 1900))):
        nets.x_numbers(likes=likes, replies=4, reposts=7, quotes=2, views=views, clicks=9, saves=3)
        team.clock.advance(minutes=minutes)
        assert await poll_metrics(team.herald.ctx) == 2
    nets.masto_numbers(likes=15, replies=3, reposts=5)  # read at 10:25 only... not yet: no poll after it
    out = await team.say("alice", f"/stats {post_id}")
    lines = out.splitlines()
    assert lines[1] == "  acme-masto (mastodon): 12 likes · 3 comments · 5 shares"  # unchanged: no (+0) noise
    assert lines[3] == ("  acme-x (x): 52 likes (+22) · 4 comments · 7 shares (+1) · 2 quotes · 1,900 views (+900) · "
                        "9 clicks (+4) · 3 saves")
    assert lines[4] == "    engagement rate 4.1% = 77 engagements ÷ 1,900 views"
    assert lines[5] == ("  Total: 64 likes (+22) · 7 comments · 12 shares (+1) · 2 quotes · 1,900 views (+900) · "
                        "9 clicks (+4) · 3 saves")
    assert f"Changes (+n) are since the last report, Mon 23 Nov 2026 10:05 {PARIS} (20 minutes ago)." in lines
    assert f"Numbers read Mon 23 Nov 2026 10:25 {PARIS} (now)." in lines

    # asked again with no new reading: nothing changed, and it says so
    team.clock.advance(minutes=2)
    out = await team.say("bob", f"/stats {post_id}")
    assert "(+" not in out
    assert f"No new reading since the last report (Mon 23 Nov 2026 10:25 {PARIS} (2 minutes ago))." in out


async def test_stats_before_any_reading_waits_and_marks_nothing_as_shown(team: Team, nets: Nets) -> None:
    await workspace(team, nets)
    post_id = await published(team)
    reply = await ask(team, "bob", f"/stats {post_id}")
    assert reply.text.splitlines() == [
        f"📊 #{post_id} — published Mon 23 Nov 2026 10:00 {PARIS} (now)",
        "  acme-masto: no numbers yet",
        "  acme-x: no numbers yet",
        f"Next reading Mon 23 Nov 2026 10:05 {PARIS} (in 5 minutes).",
    ]
    assert reply.image is None  # nothing to draw yet
    nets.x_numbers(likes=3, replies=0, reposts=0, quotes=0, views=100, clicks=0, saves=0)
    team.clock.advance(minutes=5)
    await poll_metrics(team.herald.ctx)
    assert shown_times(team) == [None, None]
    out = await team.say("bob", f"/stats {post_id}")
    assert f"First report of #{post_id}'s numbers" in out  # the empty answer before was no report
    assert shown_times(team) == [START + timedelta(minutes=5)] * 2


async def test_stats_refuses_a_post_of_another_workspace_or_no_number(team: Team, nets: Nets) -> None:
    await workspace(team, nets)
    await published(team)
    await refused(team, "bob", "/stats 9", "There's no post #9 in this workspace")
    await refused(team, "bob", "/stats soon", "'soon' isn't a post number. Usage: /stats <post>")
    await refused(team, "bob", "/stats", "Which post? Give its number: /stats <post>")


async def test_a_telegram_channel_says_it_gives_no_numbers_and_the_rest_still_count(
        team: Team, nets: Nets) -> None:
    async with FakeTelegram() as tg:
        tg.channel("Acme News", username="acme_news")
        await workspace(team, nets)
        out = await team.say("alice", f"/connect telegram name=acme-tg base_url={tg.url} channel=@acme_news "
                                      f"token={TELEGRAM_TOKEN}")
        assert out.startswith("Connected acme-tg"), out
        post_id = await published(team, "Everywhere at once to=acme-x,acme-tg")
        nets.x_numbers(likes=8, replies=1, reposts=1, quotes=0, views=400, clicks=0, saves=0)
        team.clock.advance(minutes=5)
        assert await poll_metrics(team.herald.ctx) == 1
        out = await team.say("bob", f"/stats {post_id}")
        lines = out.splitlines()
        assert lines[1] == ("  acme-tg (telegram): no numbers: Telegram gives bots no view or reaction counts for "
                            "channel posts")
        assert lines[2] == "  acme-x (x): 8 likes · 1 comment · 1 share · 0 quotes · 400 views · 0 clicks · 0 saves"
        assert lines[4] == "  Total: 8 likes · 1 comment · 1 share · 0 quotes · 400 views · 0 clicks · 0 saves"
        assert lines[5] == "  Engagement rate: 2.5% (engagements 10 ÷ views 400)"

        # a post only on the channel: its automatic reports would say nothing, so none is sent
        only = await published(team, "Channel only to=acme-tg")
        notices = Notices(team)
        team.clock.advance(hours=1)
        await reports(team)
        assert [r.text.splitlines()[0] for r in notices.take()] == [
            f"⏱ #{post_id}, 1 hour after publishing: Everywhere at once"]
        assert sent_keys(team) == [f"postreport:{post_id}:1h", f"postreport:{only}:1h"]  # claimed: never retried


def test_the_chart_has_a_line_per_account_starting_at_zero_and_a_stepped_total() -> None:
    from handlers.engagement.stats import AccountNumbers

    at = START

    def snap(minutes: int, likes: int, views: int) -> MetricSnapshot:
        return MetricSnapshot(delivery_id=1, taken_at=at + timedelta(minutes=minutes), likes=likes, comments=1,
                              impressions=views)

    x = AccountNumbers("acme-x", "x", None, None, [snap(5, 4, 90), snap(15, 9, 300)], None, at)
    masto = AccountNumbers("acme-masto", "mastodon", None, None, [snap(10, 2, 0)], None, at + timedelta(minutes=1))
    series = chart_series([x, masto])
    assert series == [
        Series("acme-x", ((at, 0.0), (at + timedelta(minutes=5), 5.0), (at + timedelta(minutes=15), 10.0))),
        Series("acme-masto", ((at + timedelta(minutes=1), 0.0), (at + timedelta(minutes=10), 3.0))),
        Series("total", ((at, 0.0), (at + timedelta(minutes=1), 0.0), (at + timedelta(minutes=5), 5.0),
                         (at + timedelta(minutes=10), 8.0), (at + timedelta(minutes=15), 13.0))),
    ]  # views are the rate's denominator, not engagements: they stay out of the lines
    image = png_of(MatplotlibCharts().line("#1: engagements over time", series, ylabel="engagements",
                                           tz="Europe/Paris"))
    assert pixels(image, BLUE) > 100 and pixels(image, ORANGE) > 100 and pixels(image, GREEN) > 100


# --- automatic reports -----------------------------------------------------------------------------


async def test_reports_come_one_hour_one_day_and_one_week_after_publishing_each_once(
        team: Team, nets: Nets) -> None:
    await workspace(team, nets)
    post_id = await published(team)
    notices = Notices(team)
    team.clock.advance(minutes=59)
    assert await reports(team) == 0

    nets.x_numbers(likes=30, replies=4, reposts=6, quotes=2, views=1000, clicks=5, saves=3)
    nets.masto_numbers(likes=12, replies=3, reposts=5)
    team.clock.advance(minutes=1)
    lookups = len(nets.x.requests("GET", "/2/tweets"))
    assert await reports(team) == 1
    assert len(nets.x.requests("GET", "/2/tweets")) == lookups + 1  # read at the hour, not at 0:55's reading
    [hour] = notices.take()
    assert hour.text.splitlines() == [
        f"⏱ #{post_id}, 1 hour after publishing: Spring sale: 20% off everything",
        f"Published Mon 23 Nov 2026 10:00 {PARIS} (1 hour ago).",
        "  acme-masto (mastodon): 12 likes · 3 comments · 5 shares",
        "    engagement rate 8.0% = 20 engagements ÷ 250 followers (no views from mastodon)",
        "  acme-x (x): 30 likes · 4 comments · 6 shares · 2 quotes · 1,000 views · 5 clicks · 3 saves",
        "    engagement rate 5.0% = 50 engagements ÷ 1,000 views",
        "  Total: 42 likes · 7 comments · 11 shares · 2 quotes · 1,000 views · 5 clicks · 3 saves",
        "  Engagement rate: 5.0% (engagements 50 ÷ views 1,000, on acme-x only: the accounts that give views)",
        "Engagements = likes + comments + shares + quotes + clicks + saves.",
        f"First report of #{post_id}'s numbers: the next one shows the changes since this one.",
        f"Numbers read Mon 23 Nov 2026 11:00 {PARIS} (now).",
        f"Next reading Mon 23 Nov 2026 11:10 {PARIS} (in 10 minutes).",
        f"Next report: 24 hours after publishing, Tue 24 Nov 2026 10:00 {PARIS} (in 23 hours). "
        "/postreports changes when reports come.",
    ]
    png_of(hour.image)
    team.clock.advance(minutes=5)
    assert await reports(team) == 0  # sent once: the next runs find it claimed
    assert await reports(team) == 0
    assert notices.take() == []

    # a day later: the change since the hour's report
    nets.x_numbers(likes=130, replies=10, reposts=26, quotes=2, views=9000, clicks=25, saves=13)
    nets.masto_numbers(likes=40, replies=3, reposts=9)
    team.clock.current = START + timedelta(hours=24, minutes=3)
    assert await reports(team) == 1
    [day] = notices.take()
    lines = day.text.splitlines()
    assert lines[0] == f"⏱ #{post_id}, 24 hours after publishing: Spring sale: 20% off everything"
    assert lines[2] == "  acme-masto (mastodon): 40 likes (+28) · 3 comments · 9 shares (+4)"
    assert lines[3] == "    engagement rate 20.8% = 52 engagements ÷ 250 followers (no views from mastodon)"
    assert lines[4] == ("  acme-x (x): 130 likes (+100) · 10 comments (+6) · 26 shares (+20) · 2 quotes · "
                        "9,000 views (+8,000) · 25 clicks (+20) · 13 saves (+10)")
    assert lines[5] == "    engagement rate 2.3% = 206 engagements ÷ 9,000 views"
    assert lines[9] == f"Changes (+n) are since the last report, Mon 23 Nov 2026 11:00 {PARIS} (23 hours 3 minutes ago)."
    assert lines[-1] == (f"Next report: 7 days after publishing, Mon 30 Nov 2026 10:00 {PARIS} (in 5 days 23 hours). "
                         "/postreports changes when reports come.")
    png_of(day.image)

    team.clock.current = START + timedelta(days=7, minutes=1)
    nets.x_numbers(likes=150, replies=10, reposts=26, quotes=2, views=9900, clicks=25, saves=13)
    assert await reports(team) == 1
    [week] = notices.take()
    assert week.text.splitlines()[0] == f"⏱ #{post_id}, 7 days after publishing: Spring sale: 20% off everything"
    assert "150 likes (+20)" in week.text and "9,900 views (+900)" in week.text
    assert "Next report" not in week.text
    team.clock.current = START + timedelta(days=7, hours=20)
    assert await reports(team) == 0
    assert sent_keys(team) == [f"postreport:{post_id}:{m}" for m in ("1h", "24h", "7d")]


async def test_after_downtime_only_the_latest_due_report_is_sent_and_it_says_it_is_late(
        team: Team, nets: Nets) -> None:
    await workspace(team, nets)
    post_id = await published(team)
    notices = Notices(team)
    nets.x_numbers(likes=30, replies=4, reposts=6, quotes=2, views=1000, clicks=5, saves=3)
    team.clock.advance(hours=30)  # Herald was down through the 1 h and 24 h marks
    assert await reports(team) == 1
    [late] = notices.take()
    assert late.text.splitlines()[:2] == [
        f"⏱ #{post_id}, 24 hours after publishing: Spring sale: 20% off everything",
        f"Published Mon 23 Nov 2026 10:00 {PARIS} (1 day 6 hours ago). This report was due Tue 24 Nov 2026 10:00 "
        f"{PARIS}; it comes late.",
    ]
    assert await reports(team) == 0
    assert sent_keys(team) == [f"postreport:{post_id}:24h"]  # the 1 h report never comes now

    # down again across the week mark, for longer than a day: that report is dropped, not sent days late
    team.clock.current = START + timedelta(days=8, hours=1)
    assert await reports(team) == 0
    assert notices.take() == []


async def test_the_report_uses_a_reading_from_after_its_mark_or_says_how_old_its_numbers_are(
        team: Team, nets: Nets) -> None:
    await workspace(team, nets)
    post_id = await published(team, "Only on X to=acme-x")
    notices = Notices(team)
    await post_reports_task_at(team, hours=1)
    notices.take()
    nets.x_numbers(likes=10, replies=0, reposts=0, quotes=0, views=500, clicks=0, saves=0)
    team.clock.current = START + timedelta(hours=23, minutes=30)
    assert await poll_metrics(team.herald.ctx) == 1  # the regular reading before the day mark
    nets.x_numbers(likes=20, replies=0, reposts=0, quotes=0, views=800, clicks=0, saves=0)
    nets.x.fail("GET", "/2/tweets", status=503, body={"title": "Service Unavailable"}, times=3)
    team.clock.current = START + timedelta(hours=24)
    assert await reports(team) == 1  # X is down: the report still comes, with the numbers Herald has
    [day] = notices.take()
    lines = day.text.splitlines()
    assert lines[0] == f"⏱ #{post_id}, 24 hours after publishing: Only on X"
    assert lines[2] == ("  acme-x (x): 10 likes (+10) · 0 comments · 0 shares · 0 quotes · 500 views (+500) · 0 clicks · "
                        "0 saves")  # the 1 h report showed zeros
    assert f"Numbers read Tue 24 Nov 2026 09:30 {PARIS} (30 minutes ago)." in lines


async def post_reports_task_at(team: Team, **after_publishing: float) -> int:
    team.clock.current = START + timedelta(**after_publishing)
    return await reports(team)


async def test_two_workers_on_one_database_send_each_report_once(team: Team, nets: Nets) -> None:
    await workspace(team, nets)
    post_id = await published(team)
    notices = Notices(team)
    other, other_lines = capturing(team.db_url, team.clock, HERALD_WORKER_ID="worker-2")
    try:
        nets.x_numbers(likes=30, replies=4, reposts=6, quotes=2, views=1000, clicks=5, saves=3)
        team.clock.advance(hours=1)
        sent = await asyncio.gather(post_reports_task(team.herald.ctx), post_reports_task(other.ctx),
                                    post_reports_task(team.herald.ctx))
        assert sorted(sent) == [0, 0, 1]
        said = [r.text for r in notices.take()] + [line for line in other_lines if line.startswith("⏱")]
        assert len(said) == 1 and said[0].startswith(f"⏱ #{post_id}, 1 hour after publishing")
        with team.herald.db.session() as session:
            [claim] = session.exec(select(SentOnce).where(SentOnce.key == f"postreport:{post_id}:1h")).all()
        assert claim.worker in ("worker-2", team.herald.ctx.worker_id)
    finally:
        other.db.dispose()


# --- /postreports ----------------------------------------------------------------------------------


def stored_marks(team: Team) -> str:
    with team.herald.db.session() as session:
        return session.exec(select(Workspace.post_reports)).one()


async def test_postreports_shows_and_sets_when_reports_come(team: Team, nets: Nets) -> None:
    await workspace(team, nets)
    out = await team.say("bob", "/postreports")
    assert out == "Automatic post reports: 1 hour, 24 hours and 7 days after publishing. They go to: console."
    out = await team.say("alice", "/postreports 2h 3d")
    assert out == ("Automatic post reports: 2 hours and 3 days after publishing "
                   "(was: 1 hour, 24 hours and 7 days after publishing).")
    assert stored_marks(team) == "2h,3d"
    out = await team.say("alice", "/postreports 1d,90m")
    assert out == "Automatic post reports: 90 minutes and 24 hours after publishing (was: 2 hours and 3 days after publishing)."
    assert stored_marks(team) == "90m,24h"

    post_id = await published(team)
    notices = Notices(team)
    assert await post_reports_task_at(team, hours=1) == 0  # no 1 h report any more
    nets.x_numbers(likes=3, replies=0, reposts=0, quotes=0, views=90, clicks=0, saves=0)
    assert await post_reports_task_at(team, minutes=90) == 1
    assert notices.take()[0].text.startswith(f"⏱ #{post_id}, 90 minutes after publishing")

    out = await team.say("alice", "/postreports off")
    assert out == "Automatic post reports: off (was: 90 minutes and 24 hours after publishing)."
    assert stored_marks(team) == ""
    assert await post_reports_task_at(team, hours=24) == 0
    assert notices.take() == []
    assert await team.say("bob", "/postreports") == "Automatic post reports: off."


@pytest.mark.parametrize(("line", "words"), [
    ("/postreports soon", "'soon' isn't a time after publishing. Use minutes, hours or days (30m, 1h, 24h, 7d), or off."),
    ("/postreports 1h 5m", "'5m' is out of range: reports can come from 15 minutes to 30 days after publishing"),
    ("/postreports 31d", "'31d' is out of range"),
    ("/postreports 1h 60m", "'1h' and '60m' are the same time; give each time once."),
    ("/postreports 1h 2h 3h 4h 5h 6h 7h", "At most 6 reports per post; you gave 7."),
    ("/postreports off 1h", "'off' isn't a time after publishing"),
])
async def test_postreports_refuses_bad_times_and_changes_nothing(team: Team, nets: Nets, line: str,
                                                                 words: str) -> None:
    await workspace(team, nets)
    await refused(team, "alice", line, words)
    assert stored_marks(team) == "1h,24h,7d"


async def test_only_admins_change_when_reports_come(team: Team, nets: Nets) -> None:
    await workspace(team, nets)
    await refused(team, "bob", "/postreports off", "Only admins can change when post reports come.")
    assert stored_marks(team) == "1h,24h,7d"


def test_marks_are_stored_in_one_form_so_each_report_has_one_key() -> None:
    assert parse_marks(["1h,24h", "7d"], "") == ["1h", "24h", "7d"]
    assert parse_marks(["7d", "60m", "1day"], "") == ["1h", "24h", "7d"]
    assert parse_marks(["15min", "48hours", "30d"], "") == ["15m", "2d", "30d"]
    assert [mark_label(m) for m in (15, 90, 60, 1440, 2880, 2 * 1440 + 60)] == ["15m", "90m", "1h", "24h", "2d", "49h"]
    with pytest.raises(UserError):
        parse_marks([], "/postreports")


# --- end to end: the chart through the real Telegram and Discord front ends ------------------------


def link_code(text: str) -> str:
    found = re.search(r"/link ([A-Z0-9]{4}-[A-Z0-9]{4})", text)
    assert found, text
    return found.group(1)


async def telegram_answer(tg: FakeTelegram, message: dict[str, Any]) -> dict[str, Any]:
    """The bot's answer to a message (Herald answers commands as replies)."""
    return await tg.wait_answer(message)


async def test_stats_and_the_automatic_report_arrive_in_telegram_as_a_png_photo(
        db_url: str, clock: FakeClock, nets: Nets) -> None:
    async with FakeTelegram() as tg:
        alice = tg.user("Alice", username="alice")
        group = tg.group("Acme marketing", admins=(alice,))
        herald = make_herald(db_url, clock)
        herald.add_front(TelegramFront(herald.handle, tg.token, api_url=tg.url, poll_timeout=5,
                                       group_rate=(1000, 60)))
        await herald.start()
        try:
            team = Team(herald, clock, db_url)
            await workspace(team, nets)  # in the console: the accounts' tokens stay out of the group
            post_id = await published(team)
            joined = await telegram_answer(tg, await tg.say(alice, group, f"/link {link_code(await team.say('alice', '/link'))}"))
            assert joined["text"].startswith("This chat is now part of workspace 'Acme'"), joined["text"]

            nets.x_numbers(likes=30, replies=4, reposts=6, quotes=2, views=1000, clicks=5, saves=3)
            nets.masto_numbers(likes=12, replies=3, reposts=5)
            clock.advance(minutes=6)
            assert await poll_metrics(herald.ctx) == 2
            asked = await tg.say(alice, group, f"/stats {post_id}")
            answer = await telegram_answer(tg, asked)
            [call] = tg.calls("sendPhoto")
            assert str(call.params["chat_id"]) == str(group["id"])
            png_of(call.files["photo"]["data"])  # the bytes the bot uploaded are the chart, a real PNG
            assert answer["photo"]  # the answer is the photo, with the report as its caption or right after it
            said = tg.text_of(group)
            assert f"📊 #{post_id} — published Mon 23 Nov 2026 10:00 {PARIS}" in said
            assert "  acme-x (x): 30 likes · 4 comments · 6 shares · 2 quotes · 1,000 views · 5 clicks · 3 saves" in said
            assert "Engagement rate: 5.0% (engagements 50 ÷ views 1,000, on acme-x only" in said

            # the automatic hour report lands in the group as a photo too
            nets.x_numbers(likes=44, replies=4, reposts=6, quotes=2, views=1600, clicks=5, saves=3)
            clock.current = START + timedelta(hours=1)
            assert await post_reports_task(herald.ctx) == 1
            await tg.wait_sent(group, f"⏱ #{post_id}, 1 hour after publishing: Spring sale: 20% off everything")
            report = tg.calls("sendPhoto")[-1]
            assert report is not call and str(report.params["chat_id"]) == str(group["id"])
            png_of(report.files["photo"]["data"])
            assert "44 likes (+14)" in tg.text_of(group) and "1,600 views (+600)" in tg.text_of(group)
        finally:
            await herald.stop()


@pytest.mark.parametrize("deferred", [False, True], ids=["answered", "deferred"])
async def test_stats_and_the_automatic_report_arrive_in_discord_with_the_png_attached(
        db_url: str, clock: FakeClock, nets: Nets, monkeypatch: pytest.MonkeyPatch, deferred: bool) -> None:
    # answered directly, or (a busy machine drawing the chart) deferred and then edited in with the file
    monkeypatch.setattr("bot.chats.discord.DEFER_AFTER", 0.0 if deferred else 30.0)
    fake = FakeDiscord()
    await fake.start()
    guild = fake.add_guild("Acme")
    channel = fake.add_channel(guild, "marketing")
    alice = fake.add_member(guild, "alice", manage_guild=True)
    herald = make_herald(db_url, clock)
    herald.add_front(DiscordFront(herald.handle, fake.token, api_url=fake.url, guild_ids=[int(guild)],
                                  guild_ready_timeout=0.05))
    await herald.start()
    try:
        team = Team(herald, clock, db_url)
        await workspace(team, nets)
        post_id = await published(team)
        joined = await fake.slash(alice, channel, "link", args=link_code(await team.say("alice", "/link")))
        await fake.wait_for(lambda: joined.original and joined.original["embeds"])
        assert joined.original["embeds"][0]["title"].startswith("This chat is now part of workspace 'Acme'")

        nets.x_numbers(likes=30, replies=4, reposts=6, quotes=2, views=1000, clicks=5, saves=3)
        nets.masto_numbers(likes=12, replies=3, reposts=5)
        clock.advance(minutes=6)
        assert await poll_metrics(herald.ctx) == 2
        out = await fake.slash(alice, channel, "stats", post=str(post_id))
        assert out.kind == (5 if deferred else 4) and not out.ephemeral
        message = await fake.wait_for(lambda: out.original and out.original["attachments"] and out.original)
        embed = message["embeds"][0]
        assert embed["title"] == f"📊 #{post_id} — published Mon 23 Nov 2026 10:00 {PARIS} (6 minutes ago)"
        assert "  acme-x (x): 30 likes · 4 comments · 6 shares · 2 quotes · 1,000 views · 5 clicks · 3 saves" in (
            embed["description"])
        assert embed["image"]["url"] == "attachment://chart.png"
        [attachment] = message["attachments"]
        assert attachment["filename"] == "chart.png"
        png_of(fake.attachments[attachment["id"]])

        clock.current = START + timedelta(hours=1)
        assert await post_reports_task(herald.ctx) == 1
        [report] = [m for m in fake.channel_messages(channel) if m["embeds"] and m["embeds"][0]["title"].startswith("⏱")]
        assert report["embeds"][0]["title"] == f"⏱ #{post_id}, 1 hour after publishing: Spring sale: 20% off everything"
        assert report["embeds"][0]["image"]["url"] == "attachment://chart.png"
        [attachment] = report["attachments"]
        png_of(fake.attachments[attachment["id"]])
    finally:
        await herald.stop()
        await fake.close()
