"""Reports and digests: /report <period>, /report campaign, /digest and the task that sends digests.

The numbers come through the networks' loopback fakes (X, Bluesky, LinkedIn on 127.0.0.1) as Herald's
metrics poll reads them over the FakeClock; every figure a report or digest shows is asserted exactly.
Digest timing is checked in Europe/Paris across the spring-forward night and in New York across the
autumn's repeated hour; "sent once" with two runs and with two Heralds (two contexts) on one database.
The chart goes through the real Telegram and Discord front ends to their fakes and is decoded as a PNG.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from PIL import Image
from sqlmodel import select

from bot.charts import MatplotlibCharts
from bot.chats.discord import DiscordFront
from bot.chats.telegram import TelegramFront
from handlers.core.chat import ChatAddress, Command, Reply
from handlers.core.ports import Series
from handlers.engagement.digests import send_digests
from handlers.engagement.metrics import poll_metrics
from handlers.engagement.reports import Tally, group_lines
from storage.models import Account, AuditEvent, ChatLink, Delivery, SentOnce, Workspace
from tests.conftest import START, FakeClock, Team, capturing, make_herald, refused
from tests.fakes.bluesky_api import FakeBluesky
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.linkedin_api import FakeLinkedIn
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.x_api import FakeX

BSKY_PASSWORD = "abcd-efgh-ijkl-mnop"
T0 = START - timedelta(days=14)  # Mon 9 Nov 2026 09:00 UTC, 10:00 in Paris


@dataclass
class Nets:
    x: FakeX
    bluesky: FakeBluesky
    linkedin: FakeLinkedIn


@asynccontextmanager
async def started_nets(clock: FakeClock) -> AsyncIterator[Nets]:
    """The X, Bluesky and LinkedIn fakes on 127.0.0.1, closed on the way out."""
    async with AsyncExitStack() as stack:
        x = await stack.enter_async_context(FakeX())
        bluesky = await stack.enter_async_context(FakeBluesky(clock.now, password=BSKY_PASSWORD))
        linkedin = await stack.enter_async_context(FakeLinkedIn())
        yield Nets(x, bluesky, linkedin)


@pytest.fixture
async def nets(clock: FakeClock) -> AsyncIterator[Nets]:
    async with started_nets(clock) as started:
        yield started


class Recorder:
    """Stands in the notifier for the console chat: keeps each Reply (to decode its chart) and prints it too."""

    def __init__(self, team: Team) -> None:
        self.console = team.herald.console
        self.replies: list[Reply] = []
        team.herald.notifier.register("console", self)

    async def send(self, chat: ChatAddress, reply: Reply) -> None:
        self.replies.append(reply)
        await self.console.send(chat, reply)


async def connect(team: Team, nets: Nets) -> None:
    """alice sets up Acme in Paris time with an X, a Bluesky and a LinkedIn account on the fakes."""
    await team.say("alice", "/setup Acme")
    await team.say("alice", "/timezone Europe/Paris")
    for line in (
        f"/connect x name=acme-x base_url={nets.x.url} access_token=tok-1",
        f"/connect bluesky name=acme-bsky base_url={nets.bluesky.url} handle=brand.bsky.social "
        f"app_password={BSKY_PASSWORD}",
        f"/connect linkedin name=acme-li base_url={nets.linkedin.url} access_token=li-token "
        "author=urn:li:organization:2414183",
    ):
        out = await team.say("alice", line)
        assert out.startswith("Connected "), out
    await team.say("alice", "/role bob approver")


async def publish(team: Team, text: str) -> int:
    """alice drafts, bob approves, alice publishes now; the post's number."""
    post_id = await team.approved_post(text)
    out = await team.say("alice", f"/publish {post_id}")
    assert f"📣 #{post_id} is published" in out, out
    return post_id


def remote(team: Team, post_id: int, account: str) -> str:
    with team.herald.db.session() as session:
        delivery, _account = session.exec(
            select(Delivery, Account).where(Delivery.post_id == post_id).where(Delivery.account_id == Account.id)
            .where(Account.name == account)).one()
        assert delivery.remote_id is not None
        return delivery.remote_id


def engage(team: Team, nets: Nets, post_id: int, account: str, *, likes: int, comments: int, shares: int,
           quotes: int = 0, views: int = 0, clicks: int = 0, saves: int = 0) -> None:
    """Set a post's numbers on its network's fake, in that network's own terms."""
    rid = remote(team, post_id, account)
    if account == "acme-x":
        nets.x.engage(rid, like_count=likes, reply_count=comments, retweet_count=shares, quote_count=quotes,
                      impression_count=views, url_link_clicks=clicks, bookmark_count=saves)
    elif account == "acme-bsky":
        assert not (views or clicks or saves), "Bluesky gives no views, clicks or saves"
        nets.bluesky.counts[rid].update(likeCount=likes, replyCount=comments, repostCount=shares, quoteCount=quotes)
    else:
        assert not (quotes or saves), "LinkedIn gives no quotes or saves"
        nets.linkedin.stats[rid] = {"likeCount": likes, "commentCount": comments, "shareCount": shares,
                                    "impressionCount": views, "clickCount": clicks}


async def poll(team: Team) -> int:
    return await poll_metrics(team.herald.ctx)


async def two_weeks(team: Team, nets: Nets) -> dict[str, int]:
    """Two weeks of posts, their numbers read through the fakes; the clock ends at START (Mon 23 Nov 09:00 UTC).

    Week 1 (Mon 9 → Mon 16 Nov, 10:00 Paris): #1 "Autumn recap" (x, bsky), #2 spring (x, li), read on Sun 15.
    Week 2 (Mon 16 → Mon 23): #3 spring (x, bsky, li), #4 (bsky), all read on Sun 22, when #1 and #2 are read
    again with new numbers — which week 1's figures, as they stood on Mon 16, must not show.
    """
    team.clock.current = T0
    await connect(team, nets)
    p1 = await publish(team, "Autumn recap: what we shipped to=acme-x,acme-bsky")
    team.clock.advance(days=1)
    p2 = await publish(team, "Spring teaser: something is coming campaign=spring to=acme-x,acme-li")
    team.clock.current = T0 + timedelta(days=6)
    engage(team, nets, p1, "acme-x", likes=10, comments=2, shares=1, views=500, clicks=4, saves=1)  # 18
    engage(team, nets, p1, "acme-bsky", likes=6, comments=1, shares=2)  # 9
    engage(team, nets, p2, "acme-x", likes=20, comments=4, shares=3, quotes=1, views=1000, clicks=10, saves=2)  # 40
    engage(team, nets, p2, "acme-li", likes=15, comments=3, shares=2, views=900, clicks=30)  # 50
    assert await poll(team) == 4
    team.clock.current = T0 + timedelta(days=7, hours=1)  # Mon 16 Nov 11:00 Paris
    p3 = await publish(team, "Spring sale starts today! campaign=spring")
    team.clock.advance(days=2)
    p4 = await publish(team, "Meet the team at the fair to=acme-bsky")
    team.clock.current = T0 + timedelta(days=13)
    engage(team, nets, p1, "acme-x", likes=99, comments=9, shares=9, views=9000, clicks=9, saves=9)  # later: unseen
    engage(team, nets, p2, "acme-li", likes=16, comments=3, shares=2, views=900, clicks=30)  # 51 now
    engage(team, nets, p3, "acme-x", likes=30, comments=5, shares=6, quotes=2, views=2000, clicks=14, saves=3)  # 60
    engage(team, nets, p3, "acme-bsky", likes=25, comments=4, shares=5, quotes=1)  # 35
    engage(team, nets, p3, "acme-li", likes=40, comments=8, shares=6, views=3000, clicks=26)  # 80
    engage(team, nets, p4, "acme-bsky", likes=12, comments=2, shares=1)  # 15
    assert await poll(team) == 8
    team.clock.current = START
    return {"p1": p1, "p2": p2, "p3": p3, "p4": p4}


WEEK_BODY = [
    "Compared with the 7 days before (Mon 9 Nov 2026 10:00 → Mon 16 Nov 2026 10:00 CET (Europe/Paris)): each "
    "period's posts with their numbers as they stood at its end.",
    "Published: 2 posts on 4 accounts (before: 2, ±0%)",
    "  #3 Mon 16 Nov 11:00 · acme-bsky, acme-li, acme-x · Spring sale starts today!",
    "  #4 Wed 18 Nov 11:00 · acme-bsky · Meet the team at the fair",
    # 60 + 35 + 80 + 15 = 190 vs 18 + 9 + 40 + 50 = 117; views 2,000 + 3,000 vs 500 + 1,000 + 900;
    # rate (60 + 80) ÷ 5,000 vs (18 + 40 + 50) ÷ 2,400
    "Engagements: 190 (before: 117, +62%) · views: 5,000 (before: 2,400, +108%) · engagement rate: 2.8% "
    "(before: 4.5%)",
    "Total: 107 likes · 19 comments · 18 shares · 3 quotes · 5,000 views · 40 clicks · 3 saves",
    "Per network:",
    "  linkedin: 1 post · 80 engagements (before: 50, +60%) · 3,000 views · rate 2.7%",
    "  x: 1 post · 60 engagements (before: 58, +3%) · 2,000 views · rate 3.0%",
    "  bluesky: 2 posts · 50 engagements (before: 9, +456%)",
    "Per campaign:",
    "  spring: 1 post · 175 engagements (before: 90, +94%) · 5,000 views · rate 2.8%",
    "  no campaign: 1 post · 15 engagements (before: 27, -44%)",
    "Top posts (engagements = likes + comments + shares + quotes + saves + clicks):",
    "  1. #3 · 175 engagements · 2.8% of 5,000 views · Spring sale starts today!",
    "  2. #4 · 15 engagements · Meet the team at the fair",
    "(engagement rate = engagements ÷ views, on the networks that give views.)",
]


def png_of(data: bytes | None) -> Image.Image:
    assert data is not None and data.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.format == "PNG"
    return image


async def ask(team: Team, user: str, line: str) -> Reply:
    """Run a command as `user` in the console chat and return Herald's Reply itself (with its image)."""
    console = team.herald.console
    console.user = user
    name, _, text = line.lstrip("/").partition(" ")
    return await team.herald.handle(Command(name, console.actor(), console.chat, text=text))


# -- /report ---------------------------------------------------------------------------------------


async def test_report_week_totals_per_network_and_campaign_against_the_week_before(team: Team, nets: Nets) -> None:
    await two_weeks(team, nets)
    out = await team.say("bob", "/report week")
    lines = out.splitlines()
    assert lines[0] == "📈 Report for the last 7 days (Mon 16 Nov 2026 10:00 → Mon 23 Nov 2026 10:00 CET (Europe/Paris))"
    assert lines[1:-1] == WEEK_BODY
    assert lines[-1].startswith("[image: ")
    reply = await ask(team, "bob", "/report")  # a week by default
    assert reply.text.splitlines()[1:] == WEEK_BODY
    chart = png_of(reply.image)
    assert chart.size == (880, 495) and chart.mode in ("RGB", "RGBA")


async def test_report_month_and_dates_compare_with_the_month_and_days_before(team: Team, nets: Nets) -> None:
    await two_weeks(team, nets)
    out = await team.say("bob", "/report month")  # the last 30 days: all four posts, nothing before
    lines = out.splitlines()
    assert lines[:2] == [
        "📈 Report for the last 30 days (Sat 24 Oct 2026 11:00 CEST (Europe/Paris) → Mon 23 Nov 2026 10:00 CET "
        "(Europe/Paris))",
        "Compared with the 30 days before (Thu 24 Sep 2026 11:00 → Sat 24 Oct 2026 11:00 CEST (Europe/Paris)): each "
        "period's posts with their numbers as they stood at its end.",
    ]
    assert "Published: 4 posts on 8 accounts (before: 0, new)" in lines
    # as of now #1 on X was read again: 99 + 9 + 9 + 9 + 9 = 135 (+ 9 on Bluesky), #2 on LinkedIn too: 40 + 51
    assert "Engagements: 425 (before: 0, new) · views: 15,900 (before: 0, new) · engagement rate: 2.3% (before: –)" \
        in lines
    assert "  2. #1 · 144 engagements · 1.5% of 9,000 views · Autumn recap: what we shipped" in lines

    out = await team.say("bob", "/report 2026-11")  # a month still running: its posts so far
    assert out.splitlines()[:2] == [
        "📈 Report for November 2026 (Sun 1 Nov 2026 00:00 → Tue 1 Dec 2026 00:00 CET (Europe/Paris))",
        "Compared with October 2026 (Thu 1 Oct 2026 00:00 CEST (Europe/Paris) → Sun 1 Nov 2026 00:00 CET "
        "(Europe/Paris)): this period's posts with their numbers so far, the one before's as they stood at its end.",
    ]
    assert "Engagements: 425 (before: 0, new)" in out

    out = await team.say("bob", "/report 2026-11-16..2026-11-22")  # week 2 as whole Paris days, vs week 1's
    lines = out.splitlines()
    assert lines[:2] == [
        "📈 Report for Mon 16 Nov – Sun 22 Nov 2026 (Mon 16 Nov 2026 00:00 → Mon 23 Nov 2026 00:00 CET "
        "(Europe/Paris))",
        # it ended 10 hours ago: week 1 is read as it stood 10 hours after its end (Mon 16 Nov 10:00), as /report
        # week read it
        "Compared with the 7 days before (Mon 9 Nov 2026 00:00 → Mon 16 Nov 2026 00:00 CET (Europe/Paris)): each "
        "period's posts with their numbers as read up to 10 hours after its end.",
    ]
    assert lines[2:-1] == WEEK_BODY[1:]

    out = await team.say("bob", "/report 2026-11-18")
    lines = out.splitlines()
    assert lines[:5] == [
        "📈 Report for Wed 18 Nov 2026 (Wed 18 Nov 2026 00:00 → Thu 19 Nov 2026 00:00 CET (Europe/Paris))",
        "Compared with the day before (Tue 17 Nov 2026 00:00 → Wed 18 Nov 2026 00:00 CET (Europe/Paris)): each "
        "period's posts with their numbers as read up to 4 days 10 hours after its end.",
        "Published: 1 post on 1 account (before: 0, new)",
        "  #4 Wed 18 Nov 11:00 · acme-bsky · Meet the team at the fair",
        "Engagements: 15 (before: 0, new) · views: 0 (before: 0, ±0%) · engagement rate: – (before: –)",
    ]
    assert "  bluesky: 1 post · 15 engagements (before: 0, new)" in lines


class RecordingCharts:
    """The real charts, with what each was asked to draw kept for the test."""

    def __init__(self) -> None:
        self.real = MatplotlibCharts()
        self.calls: list[tuple[str, Any]] = []

    def line(self, title: str, series: list[Series], *, ylabel: str = "", tz: str = "UTC") -> bytes:
        self.calls.append((title, {s.name: list(s.points) for s in series}))
        return self.real.line(title, series, ylabel=ylabel, tz=tz)

    def bars(self, title: str, labels: list[str], values: dict[str, list[float]], *, ylabel: str = "") -> bytes:
        self.calls.append((title, (labels, values)))
        return self.real.bars(title, labels, values, ylabel=ylabel)


async def test_the_charts_draw_the_reports_numbers(team: Team, nets: Nets) -> None:
    await two_weeks(team, nets)
    charts = RecordingCharts()
    team.herald.ctx.charts = charts
    png_of((await ask(team, "bob", "/report week")).image)
    png_of((await ask(team, "bob", "/report campaign spring")).image)
    first, second = T0 + timedelta(days=6), T0 + timedelta(days=13)  # the two readings
    assert charts.calls == [
        ("Engagements per network: the last 7 days vs the 7 days before",
         (["bluesky", "linkedin", "x"], {"the last 7 days": [50.0, 80.0, 60.0],
                                         "the 7 days before": [9.0, 50.0, 58.0]})),
        # the campaign's engagements per network after each reading (#2 then also #3)
        ("Campaign spring: engagements over time",
         {"bluesky": [(second, 35.0)], "linkedin": [(first, 50.0), (second, 131.0)],
          "x": [(first, 40.0), (second, 100.0)]}),
    ]


def test_a_report_lists_at_most_ten_campaigns() -> None:
    tallies: dict[str, Tally] = {}
    for n in range(12):
        tallies[f"c{n:02d}"] = Tally(posts={n}, deliveries=1, engagements=100 - n)
    lines = group_lines(tallies, {}, more=" (/report campaign <name> shows one)")
    assert lines[0] == "  c00: 1 post · 100 engagements (before: 0, new)"
    assert len(lines) == 11 and lines[9].startswith("  c09: ")
    assert lines[10] == "  +2 more (/report campaign <name> shows one)"


async def test_report_of_a_quiet_period_says_so_and_counts_the_one_before(team: Team, nets: Nets) -> None:
    await two_weeks(team, nets)
    team.clock.advance(days=7)
    reply = await ask(team, "bob", "/report week")
    assert reply.text.splitlines()[2] == "Nothing was published in this period (before: 2 posts, 190 engagements)."
    assert reply.image is None


async def test_report_campaign_all_its_posts_against_the_others_since_it_began(team: Team, nets: Nets) -> None:
    await two_weeks(team, nets)
    reply = await ask(team, "bob", "/report campaign Spring")  # any case
    assert reply.text.splitlines() == [
        "📈 Campaign spring: 2 posts on 5 accounts, published Tue 10 Nov 2026 10:00 → Mon 16 Nov 2026 11:00 CET "
        "(Europe/Paris); latest numbers read by Mon 23 Nov 2026 10:00 CET (Europe/Paris)",
        "  #2 Tue 10 Nov 10:00 · acme-li, acme-x · Spring teaser: something is coming",
        "  #3 Mon 16 Nov 11:00 · acme-bsky, acme-li, acme-x · Spring sale starts today!",
        # 40 + 51 + 60 + 35 + 80; rate (40 + 51 + 60 + 80) ÷ (1,000 + 900 + 2,000 + 3,000)
        "Engagements: 266 · views: 6,900 · engagement rate: 3.3%",
        "Total: 131 likes · 24 comments · 22 shares · 4 quotes · 6,900 views · 80 clicks · 5 saves",
        "Per network:",
        "  linkedin: 2 posts · 131 engagements · 3,900 views · rate 3.4%",
        "  x: 2 posts · 100 engagements · 3,000 views · rate 3.3%",
        "  bluesky: 1 post · 35 engagements",
        # the only other post since Tue 10 Nov is #4 (15 engagements on Bluesky, which gives no views)
        "Per post: 133.0 engagements on average, vs 15.0 for the 1 other post published since the campaign's first "
        "post (+787%); engagement rate 3.3% vs –.",
        "Top posts (engagements = likes + comments + shares + quotes + saves + clicks):",
        "  1. #3 · 175 engagements · 2.8% of 5,000 views · Spring sale starts today!",
        "  2. #2 · 91 engagements · 4.8% of 1,900 views · Spring teaser: something is coming",
        "(engagement rate = engagements ÷ views, on the networks that give views.)",
    ]
    chart = png_of(reply.image)
    assert chart.size == (880, 495)


async def test_report_refusals_change_nothing(team: Team, nets: Nets) -> None:
    ids = await two_weeks(team, nets)
    await refused(team, "bob", "/report year", "'year' isn't a period", "2026-11-01..2026-11-20")
    await refused(team, "bob", "/report 0d", "between 1d and 366d")
    await refused(team, "bob", "/report 2026-13", "'2026-13' isn't a month")
    await refused(team, "bob", "/report 2026-11-31", "'2026-11-31' isn't a date")
    await refused(team, "bob", "/report 2026-11-20..2026-11-01", "ends before it starts")
    await refused(team, "bob", "/report campaign", "Which campaign?")
    await refused(team, "bob", "/report campaign winter", "There's no campaign 'winter'", "Campaigns: spring.")
    await team.say("alice", "/draft Summer is near campaign=summer")
    await refused(team, "bob", "/report campaign summer", "Campaign 'summer' has 1 post but none is published yet")
    assert ids["p4"] == 4


# -- /digest: the setting ----------------------------------------------------------------------------


async def test_digest_setting_shows_the_next_send_time_and_where_it_goes(team: Team) -> None:
    await team.setup_workspace()
    assert await team.say("bob", "/digest") == (
        "Digests are off. Turn them on with /digest daily 09:00 or /digest weekly mon 09:00 (times in Europe/Paris).")
    out = await team.say("alice", "/digest daily 9:00")
    assert out.splitlines() == [
        "Digest set: daily at 09:00 (Europe/Paris).",
        "Next: Tue 24 Nov 2026 09:00 CET (Europe/Paris) (in 23 hours), covering Mon 23 Nov 2026 09:00 → "
        "Tue 24 Nov 2026 09:00 CET (Europe/Paris), compared with the period before.",
        "It goes to the chats linked for reports: console (console).",
    ]
    assert (await team.say("bob", "/digest")).splitlines()[0] == "Digest: daily at 09:00 (Europe/Paris)."
    out = await team.say("alice", "/digest weekly Friday 17:30")
    assert out.splitlines()[:2] == [
        "Digest set: weekly on Friday at 17:30 (Europe/Paris).",
        "Next: Fri 27 Nov 2026 17:30 CET (Europe/Paris) (in 4 days 7 hours), covering Fri 20 Nov 2026 17:30 → "
        "Fri 27 Nov 2026 17:30 CET (Europe/Paris), compared with the period before.",
    ]
    with team.herald.db.session() as session:
        ws = session.exec(select(Workspace)).one()
        assert (ws.digest_cadence, ws.digest_at, ws.digest_weekday) == ("weekly", "17:30", 4)
    assert await team.say("alice", "/digest off") == "Digests are off now. /digest daily 09:00 turns them back on."
    with team.herald.db.session() as session:
        assert session.exec(select(Workspace)).one().digest_cadence == "off"
    with team.herald.db.session() as session:
        details = [e.detail for e in session.exec(select(AuditEvent).where(AuditEvent.action == "digest")).all()]
    assert details == ["off → daily at 09:00", "daily at 09:00 → weekly on Friday at 17:30",
                       "weekly on Friday at 17:30 → off"]


async def test_digest_setting_refusals_change_nothing(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/digest daily 09:00")
    await refused(team, "bob", "/digest off", "Only admins can change the digest")
    await refused(team, "alice", "/digest daily", "e.g. /digest daily 09:00")
    await refused(team, "alice", "/digest daily 9", "'9' isn't a time of day", "HH:MM")
    await refused(team, "alice", "/digest daily 24:00", "'24:00' isn't a time of day")
    await refused(team, "alice", "/digest daily 9am", "'9am' isn't a time of day")
    await refused(team, "alice", "/digest weekly 09:00", "e.g. /digest weekly mon 09:00")
    await refused(team, "alice", "/digest weekly funday 09:00", "'funday' isn't a weekday")
    await refused(team, "alice", "/digest weekly t 09:00", "'t' isn't a weekday")
    await refused(team, "alice", "/digest hourly", "'hourly' isn't daily, weekly or off")
    await refused(team, "alice", "/digest off now", "e.g. /digest off")


async def test_no_chat_for_reports_is_said_when_setting_a_digest(team: Team) -> None:
    await team.setup_workspace()
    with team.herald.db.session() as session:
        session.exec(select(ChatLink)).one().purposes = "team,approvals"
    out = await team.say("alice", "/digest daily 09:00")
    assert out.splitlines()[-1] == "No chat takes reports yet: run /setup reports in the chat that should get digests."


# -- the digest task ---------------------------------------------------------------------------------


async def test_weekly_digest_has_the_weeks_numbers_against_the_week_before_and_a_chart(team: Team, nets: Nets) -> None:
    await two_weeks(team, nets)
    team.clock.current = T0 + timedelta(days=13)
    await team.say("alice", "/digest weekly mon 10:00")
    recorder = Recorder(team)
    team.clock.current = START - timedelta(minutes=1)
    assert await send_digests(team.herald.ctx) == 0  # 09:59 in Paris
    team.clock.current = START
    assert await send_digests(team.herald.ctx) == 1
    [digest] = recorder.replies
    assert digest.text.splitlines() == [
        "🗞 Weekly digest for Acme: Mon 16 Nov 2026 10:00 → Mon 23 Nov 2026 10:00 CET (Europe/Paris)",
        "Compared with the week before (Mon 9 Nov 2026 10:00 → Mon 16 Nov 2026 10:00 CET (Europe/Paris)): each "
        "period's posts with their numbers as they stood at its end.",
        *WEEK_BODY[1:],
    ]
    assert png_of(digest.image).size == (880, 495)
    assert await send_digests(team.herald.ctx) == 0  # once
    team.clock.advance(days=6, hours=23)
    assert await send_digests(team.herald.ctx) == 0
    assert len(recorder.replies) == 1


async def test_daily_digest_keeps_the_paris_time_across_the_spring_forward_night(team: Team) -> None:
    team.clock.current = datetime(2027, 3, 26, 12, 0, tzinfo=UTC)  # Fri 26 Mar 2027, 13:00 CET
    await team.setup_workspace()
    recorder = Recorder(team)
    await team.say("alice", "/digest daily 09:00")
    team.clock.current = datetime(2027, 3, 27, 9, 0, tzinfo=UTC)  # Sat 10:00 CET: inside Sat → Sun's period
    post = await team.approved_post("Saturday special")
    await team.say("alice", f"/publish {post}")
    expected = [
        (datetime(2027, 3, 27, 7, 59, tzinfo=UTC), 0),  # Sat 08:59 CET
        (datetime(2027, 3, 27, 8, 0, tzinfo=UTC), 1),  # Sat 09:00 CET
        (datetime(2027, 3, 27, 8, 1, tzinfo=UTC), 0),
        (datetime(2027, 3, 28, 6, 59, tzinfo=UTC), 0),  # Sun 08:59 CEST (07:59 by the winter clock)
        (datetime(2027, 3, 28, 7, 0, tzinfo=UTC), 1),  # Sun 09:00 CEST: 23 hours after the one before
        (datetime(2027, 3, 28, 8, 0, tzinfo=UTC), 0),  # 09:00 by the winter clock: nothing more
        (datetime(2027, 3, 29, 7, 0, tzinfo=UTC), 1),  # Mon 09:00 CEST
    ]
    for at, count in expected:
        team.clock.current = at
        assert await send_digests(team.herald.ctx) == count, at
    titles = [r.text.splitlines()[0] for r in recorder.replies]
    assert titles == [
        "🗞 Daily digest for Acme: Fri 26 Mar 2027 09:00 → Sat 27 Mar 2027 09:00 CET (Europe/Paris)",
        "🗞 Daily digest for Acme: Sat 27 Mar 2027 09:00 CET (Europe/Paris) → Sun 28 Mar 2027 09:00 CEST (Europe/Paris)",
        "🗞 Daily digest for Acme: Sun 28 Mar 2027 09:00 → Mon 29 Mar 2027 09:00 CEST (Europe/Paris)",
    ]
    assert "Nothing was published in this period (before: 0 posts, 0 engagements)." in recorder.replies[0].text
    assert "Published: 1 post on 2 accounts (before: 0, new)" in recorder.replies[1].text
    assert "  #1 Sat 27 Mar 10:00 · brand-bsky, brand-x · Saturday special" in recorder.replies[1].text
    assert "Nothing was published in this period (before: 1 post," in recorder.replies[2].text


async def test_weekly_digest_at_a_repeated_hour_goes_at_the_first_one(team: Team) -> None:
    team.clock.current = datetime(2026, 10, 20, 12, 0, tzinfo=UTC)
    await team.setup_workspace()
    await team.say("alice", "/timezone America/New_York")
    out = await team.say("alice", "/digest weekly sun 01:30")
    assert "Next: Sun 25 Oct 2026 01:30 EDT (America/New_York)" in out
    recorder = Recorder(team)
    sends = []
    minute = datetime(2026, 10, 24, 0, 0, tzinfo=UTC)
    while minute < datetime(2026, 11, 9, 0, 0, tzinfo=UTC):  # every 15 minutes for two weeks and a bit
        team.clock.current = minute
        if await send_digests(team.herald.ctx):
            sends.append(minute)
        minute += timedelta(minutes=15)
    # 01:30 EDT is 05:30 UTC; on 1 Nov 01:30 comes twice (EDT, then EST): the first; on 8 Nov 01:30 EST is 06:30 UTC
    assert sends == [datetime(2026, 10, 25, 5, 30, tzinfo=UTC), datetime(2026, 11, 1, 5, 30, tzinfo=UTC),
                     datetime(2026, 11, 8, 6, 30, tzinfo=UTC)]
    assert recorder.replies[2].text.splitlines()[0] == (
        "🗞 Weekly digest for Acme: Sun 1 Nov 2026 01:30 EDT (America/New_York) → Sun 8 Nov 2026 01:30 EST "
        "(America/New_York)")


async def test_a_digest_missed_while_herald_was_down_comes_late_within_its_period_only(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/digest daily 09:00")
    recorder = Recorder(team)
    assert await send_digests(team.herald.ctx) == 0  # set at 10:00 after today's 09:00: no stale digest now
    team.clock.current = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)  # down at Tue 09:00 CET, back at 14:00
    assert await send_digests(team.herald.ctx) == 1
    lines = recorder.replies[0].text.splitlines()
    assert lines[:2] == [
        "🗞 Daily digest for Acme: Mon 23 Nov 2026 09:00 → Tue 24 Nov 2026 09:00 CET (Europe/Paris)",
        "(Sent late: it was due Tue 24 Nov 2026 09:00 CET (Europe/Paris), when Herald wasn't running.)",
    ]
    team.clock.current = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)  # down all Wednesday; back Thu 11:00
    assert await send_digests(team.herald.ctx) == 1
    assert recorder.replies[1].text.splitlines()[0] == (
        "🗞 Daily digest for Acme: Wed 25 Nov 2026 09:00 → Thu 26 Nov 2026 09:00 CET (Europe/Paris)")
    team.clock.advance(hours=3)
    assert await send_digests(team.herald.ctx) == 0
    team.clock.current = datetime(2026, 11, 27, 8, 3, tzinfo=UTC)  # on time (3 minutes): not called late
    assert await send_digests(team.herald.ctx) == 1
    assert "Sent late" not in recorder.replies[2].text
    with team.herald.db.session() as session:
        keys = sorted(k for k in session.exec(select(SentOnce.key)).all() if k.startswith("digest:"))
    assert keys == ["digest:1:daily:2026-11-23T09:00", "digest:1:daily:2026-11-24T09:00",
                    "digest:1:daily:2026-11-26T09:00", "digest:1:daily:2026-11-27T09:00"]  # never Wednesday's


async def test_changing_the_time_never_sends_a_stale_digest(team: Team) -> None:
    await team.setup_workspace()
    recorder = Recorder(team)
    await team.say("alice", "/digest daily 09:00")
    team.clock.current = datetime(2026, 11, 24, 8, 30, tzinfo=UTC)  # Tue 09:30: today's went out
    assert await send_digests(team.herald.ctx) == 1
    await team.say("alice", "/digest daily 08:00")  # 08:00 today has passed: settled, next is Wednesday's
    assert await send_digests(team.herald.ctx) == 0
    await team.say("alice", "/digest daily 11:00")  # 11:00 comes later today
    team.clock.current = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    assert await send_digests(team.herald.ctx) == 1
    assert recorder.replies[1].text.splitlines()[0] == (
        "🗞 Daily digest for Acme: Mon 23 Nov 2026 11:00 → Tue 24 Nov 2026 11:00 CET (Europe/Paris)")
    await team.say("alice", "/digest off")
    team.clock.advance(days=3)
    assert await send_digests(team.herald.ctx) == 0


async def test_two_workers_on_one_database_send_each_digest_once(team: Team, clock: FakeClock) -> None:
    await team.setup_workspace()
    await team.say("alice", "/digest daily 09:00")
    other, lines = capturing(team.db_url, clock, HERALD_WORKER_ID="worker-2")
    mine: list[str] = []
    team.herald.console._write = mine.append
    try:
        for day in (24, 25):
            clock.current = datetime(2026, 11, day, 8, 0, tzinfo=UTC)
            sent = await asyncio.gather(send_digests(team.herald.ctx), send_digests(other.ctx),
                                        send_digests(other.ctx), send_digests(team.herald.ctx))
            assert sum(sent) == 1, sent
        digests = [text for text in [*mine, *lines] if text.startswith("🗞 Daily digest")]
        assert len(digests) == 2
        assert {text.splitlines()[0] for text in digests} == {
            "🗞 Daily digest for Acme: Mon 23 Nov 2026 09:00 → Tue 24 Nov 2026 09:00 CET (Europe/Paris)",
            "🗞 Daily digest for Acme: Tue 24 Nov 2026 09:00 → Wed 25 Nov 2026 09:00 CET (Europe/Paris)",
        }
        with team.herald.db.session() as session:
            rows = session.exec(select(SentOnce).where(SentOnce.key.startswith("digest:"))).all()  # type: ignore[attr-defined]
            assert sorted(r.key for r in rows) == ["digest:1:daily:2026-11-23T09:00", "digest:1:daily:2026-11-24T09:00",
                                                   "digest:1:daily:2026-11-25T09:00"]
    finally:
        other.db.dispose()


# -- through the real Telegram and Discord front ends ---------------------------------------------------


async def test_report_and_digest_charts_reach_telegram_as_photos(db_url: str, clock: FakeClock) -> None:
    async with FakeTelegram() as tg:
        alice = tg.user("Alice", username="alice")
        group = tg.group("Acme marketing", admins=(alice,))
        herald = make_herald(db_url, clock)
        front = TelegramFront(herald.handle, tg.token, api_url=tg.url, poll_timeout=5, group_rate=(1000, 60))
        herald.add_front(front)
        await herald.start()
        try:
            async def command(text: str) -> dict[str, Any]:
                return await tg.wait_answer(await tg.say(alice, group, text))

            await command("/setup Acme")
            await command("/timezone Europe/Paris")
            await command("/connect sandbox name=brand")
            await command("/policy approvals=0")
            await command("/draft Hello from Telegram")
            assert "is published" in (await command("/publish 1"))["text"]
            clock.advance(hours=3)
            await poll_metrics(herald.ctx)
            answer = await command("/report week")  # short enough to be the chart's caption
            assert answer["caption"].startswith("📈 Report for the last 7 days"), answer
            assert "Published: 1 post on 1 account (before: 0, new)" in answer["caption"]
            png_of(tg.calls("sendPhoto")[-1].files["photo"]["data"])

            await command("/digest daily 09:00")
            before = len(tg.calls("sendPhoto"))
            clock.current = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
            assert await send_digests(herald.ctx) == 1
            assert len(tg.calls("sendPhoto")) == before + 1
            png_of(tg.calls("sendPhoto")[-1].files["photo"]["data"])
            digest = await tg.wait_sent(group, "🗞 Daily digest for Acme")
            assert "photo" in digest and "Published: 1 post on 1 account (before: 0, new)" in digest["caption"]
        finally:
            await herald.stop()


async def test_report_and_digest_charts_reach_discord_as_image_attachments(db_url: str, clock: FakeClock) -> None:
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
        for name, options in (("setup", {"args": "Acme"}), ("timezone", {"args": "Europe/Paris"}),
                              ("connect", {"args": "sandbox name=brand"}), ("policy", {"args": "approvals=0"}),
                              ("draft", {"text": "Hello from Discord"}), ("publish", {"post": "1"})):
            await fake.slash(alice, channel, name, **options)
        clock.advance(hours=3)
        await poll_metrics(herald.ctx)
        record = await fake.slash(alice, channel, "report", args="week")
        message = record.original if record.original is not None else record.followups[-1]
        assert message["embeds"][0]["title"].startswith("📈 Report for the last 7 days")
        assert message["embeds"][0]["image"]["url"] == "attachment://chart.png"
        [chart] = [a for a in message["attachments"] if a["filename"] == "chart.png"]
        png_of(fake.attachments[chart["id"]])

        await fake.slash(alice, channel, "digest", args="daily 09:00")
        clock.current = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
        assert await send_digests(herald.ctx) == 1
        digest = next(m for m in fake.channel_messages(channel)
                      if m["embeds"] and m["embeds"][0]["title"].startswith("🗞 Daily digest for Acme"))
        assert "Published: 1 post on 1 account (before: 0, new)" in digest["embeds"][0]["description"]
        [chart] = digest["attachments"]
        png_of(fake.attachments[chart["id"]])
    finally:
        await herald.stop()
        await fake.close()
