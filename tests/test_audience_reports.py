"""Reports by audience: /stats grouped per audience, /report … by audience (a table and a grouped bar chart),
/report audience <name>, the audience column of /export, /besttime audience <name>, and the digest's lines per
audience.

Posts go out to sandbox accounts through the console as usual; which audience each delivery reached is written
into the database by `reach` (targeting by audience is another command's work), with its short links'. The
sandbox's numbers come through the real metrics poll; clicks through the click counter the web app's redirect
feeds. Expected numbers are worked out from the sandbox's own formula and checked against the stored readings.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from sqlmodel import select

from bot.charts import MatplotlibCharts
from bot.networks.sandbox import engagement
from handlers.core.chat import Command, Reply
from handlers.core.ports import Metrics, Series
from handlers.engagement.clicks import ClickCounter, Hit
from handlers.engagement.digests import send_digests
from handlers.engagement.exports import COLUMNS
from handlers.engagement.metrics import poll_metrics
from handlers.engagement.reports import CHART_METRICS
from storage.models import Account, Audience, Delivery, DeliveryState, MetricSnapshot, SandboxPost, ShortLink
from tests.conftest import FakeClock, Team, refused, running_team
from tests.test_digests import Recorder

PUBLIC = "https://go.acme.com"
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"
TWITTERBOT = "Twitterbot/1.0"
ENGAGED = ("likes", "comments", "shares", "quotes", "saves", "clicks")
PALETTE_RGB = ((0x25, 0x63, 0xEB), (0xF9, 0x73, 0x16), (0x16, 0xA3, 0x4A))  # bot/charts.py's first colours
ACCOUNTS = ("acme-es like=x", "acme-de like=x", "acme-fr like=bluesky")


@pytest.fixture
async def team(db_url: str, clock: FakeClock) -> AsyncIterator[Team]:
    """A Herald with a public address, so posts' links go out as Herald's short links."""
    async with running_team(db_url, clock, HERALD_PUBLIC_URL=PUBLIC) as team:
        yield team


class RecordingCharts:
    """The real charts, with what each was asked to draw kept for the test."""

    def __init__(self) -> None:
        self.real = MatplotlibCharts()
        self.calls: list[tuple[str, Any]] = []

    def line(self, title: str, series: list[Series], *, ylabel: str = "", tz: str = "UTC") -> bytes:
        self.calls.append((title, [s.name for s in series]))
        return self.real.line(title, series, ylabel=ylabel, tz=tz)

    def bars(self, title: str, labels: list[str], values: dict[str, list[float]], *, ylabel: str = "",
             split: bool = False) -> bytes:
        self.calls.append((title, (labels, values, split)))
        return self.real.bars(title, labels, values, ylabel=ylabel, split=split)


def png_of(data: bytes | None) -> Image.Image:
    assert data is not None, "no chart"
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(data))
    image.load()
    assert (image.format, image.size) == ("PNG", (880, 495))
    return image


def pixels(image: Image.Image, rgb: tuple[int, int, int]) -> int:
    return sum(count for count, colour in image.convert("RGB").getcolors(880 * 495) or [] if colour == rgb)


async def ask(team: Team, user: str, line: str) -> Reply:
    console = team.herald.console
    console.user = user
    name, _, text = line.lstrip("/").partition(" ")
    return await team.herald.handle(Command(name, console.actor(), console.chat, text=text))


async def workspace(team: Team) -> dict[str, int]:
    """Acme (Paris) with three sandbox accounts; audiences south (acme-es, Madrid) and north (acme-de, Berlin)."""
    await team.setup_workspace(accounts=ACCOUNTS)
    return {"south": team.add_audience("south", ("acme-es",), "Europe/Madrid", "es"),
            "north": team.add_audience("north", ("acme-de",), "Europe/Berlin", "de")}


async def published(team: Team, text: str) -> int:
    post_id = await team.approved_post(text)
    out = await team.say("alice", f"/publish {post_id}")
    assert f"📣 #{post_id} is published" in out, out
    return post_id


def names(team: Team) -> dict[int, str]:
    with team.herald.db.session() as session:
        return {a.id or 0: a.name for a in session.exec(select(Account)).all()}


def reach(team: Team, post_id: int, audiences: dict[str, int]) -> None:
    """The post's delivery on each named account reached that audience (and so did its short links)."""
    ids = {name: i for i, name in names(team).items()}
    with team.herald.db.session() as session:
        for account, audience_id in audiences.items():
            delivery = session.exec(select(Delivery).where(Delivery.post_id == post_id)
                                    .where(Delivery.account_id == ids[account])).one()
            delivery.audience_id = audience_id
            for link in session.exec(select(ShortLink).where(ShortLink.post_id == post_id)
                                     .where(ShortLink.account_id == ids[account])).all():
                link.audience_id = audience_id
        session.commit()


def click(team: Team, post_id: int, account: str, people: int, fetches: int = 0, first: int = 1) -> None:
    """People (and preview fetchers) open the post's short link on `account`, as the web app hands them over."""
    ids = {name: i for i, name in names(team).items()}
    with team.herald.db.session() as session:
        link = session.exec(select(ShortLink).where(ShortLink.post_id == post_id)
                            .where(ShortLink.account_id == ids[account])).one()
    now = team.clock.now()
    hits = [Hit(link.id or 0, now, f"192.0.2.{first + n}", BROWSER) for n in range(people)]
    hits += [Hit(link.id or 0, now, f"203.0.113.{first + n}", TWITTERBOT) for n in range(fetches)]
    ClickCounter(team.herald.db).store(hits)


def readings(team: Team, post_id: int) -> dict[str, Metrics]:
    """Each account's numbers for the post: the sandbox's formula at the last reading, checked against the DB."""
    accounts = names(team)
    out = {}
    with team.herald.db.session() as session:
        for delivery in session.exec(select(Delivery).where(Delivery.post_id == post_id)).all():
            snap = session.exec(select(MetricSnapshot).where(MetricSnapshot.delivery_id == delivery.id)
                                .order_by(MetricSnapshot.taken_at.desc())).first()  # type: ignore[union-attr]
            assert snap is not None and snap.taken_at is not None and delivery.sent_at is not None
            name = accounts[delivery.account_id]
            expected = engagement(f"{name}:{delivery.remote_id}", (snap.taken_at - delivery.sent_at).total_seconds() / 60)
            assert (snap.likes, snap.comments, snap.shares, snap.quotes, snap.impressions, snap.clicks, snap.saves) == (
                expected.likes, expected.comments, expected.shares, expected.quotes, expected.impressions,
                expected.clicks, expected.saves)
            out[name] = expected
    return out


def engaged(m: Metrics) -> int:
    return sum(getattr(m, f) or 0 for f in ENGAGED)


def rate_line(numbers: list[Metrics]) -> str:
    score, views = sum(engaged(m) for m in numbers), sum(m.impressions or 0 for m in numbers)
    return f"Engagement rate: {100 * score / views:.1f}% (engagements {score:,} ÷ views {views:,})"


# --- /stats ---------------------------------------------------------------------------------------------


async def test_stats_of_a_post_that_reached_audiences_groups_its_numbers_and_clicks_by_audience(team: Team) -> None:
    await team.setup_workspace(accounts=(*ACCOUNTS, "acme-pt like=x"))
    south = team.add_audience("south", ("acme-es", "acme-pt"), "Europe/Madrid", "es")
    north = team.add_audience("north", ("acme-de",), "Europe/Berlin", "de")
    post_id = await published(team, "Spring sale https://shop.acme.com/sale")
    reach(team, post_id, {"acme-es": south, "acme-pt": south, "acme-de": north})  # acme-fr: none
    click(team, post_id, "acme-es", people=3, fetches=1)
    click(team, post_id, "acme-pt", people=2, first=20)
    click(team, post_id, "acme-de", people=1, first=10)
    team.clock.advance(hours=3)
    assert await poll_metrics(team.herald.ctx) == 4
    numbers = readings(team, post_id)
    charts = RecordingCharts()
    team.herald.ctx.charts = charts
    reply = await ask(team, "bob", f"/stats {post_id}")
    lines = reply.text.splitlines()
    es, pt, de, fr = numbers["acme-es"], numbers["acme-pt"], numbers["acme-de"], numbers["acme-fr"]
    assert lines[0] == f"📊 #{post_id} — published Mon 23 Nov 2026 10:00 CET (Europe/Paris) (3 hours ago)"
    assert lines[1] == "  Audience north (Europe/Berlin):"
    assert lines[2].startswith(f"    acme-de (sandbox): {de.likes} likes · ")
    assert lines[3] == (f"      engagement rate {100 * engaged(de) / (de.impressions or 1):.1f}% = {engaged(de):,} "
                        f"engagements ÷ {de.impressions:,} views")
    assert lines[4] == "  Audience south (Europe/Madrid):"
    assert lines[5].startswith(f"    acme-es (sandbox): {es.likes} likes · ")
    assert lines[7].startswith(f"    acme-pt (sandbox): {pt.likes} likes · ")
    assert lines[9].startswith(f"    south total: {es.likes + pt.likes} likes · ")
    assert f" · {(es.impressions or 0) + (pt.impressions or 0):,} views · " in lines[9]
    assert lines[10] == "    " + rate_line([es, pt])
    assert lines[11] == "  No audience:"
    assert lines[12].startswith(f"    acme-fr (sandbox): {fr.likes} likes · ")
    assert lines[14].startswith(f"  Total: {es.likes + pt.likes + de.likes + fr.likes} likes · ")
    assert lines[15] == "  " + rate_line([es, pt, de, fr])
    clicks = lines.index("Clicks on its short links (people; preview fetches by networks and chat apps counted apart):")
    assert lines[clicks + 1:] == [
        "  Audience north:",
        "    acme-de: 1 click",
        "  Audience south:",
        "    acme-es: 3 clicks · 1 preview fetch counted apart (25% of 4)",
        "    acme-pt: 2 clicks",
        "    south total: 5 clicks · 1 preview fetch counted apart (17% of 6)",
        "  No audience:",
        "    acme-fr: 0 clicks",
        "  Total: 6 clicks · 1 preview fetch counted apart (14% of 7)",
    ]
    png_of(reply.image)
    assert charts.calls == [(f"#{post_id}: engagements over time", ["north", "south", "no audience", "total"])]


async def test_stats_of_a_post_without_audiences_is_as_it_was(team: Team) -> None:
    await workspace(team)  # the workspace has audiences; this post reached none
    post_id = await published(team, "Plain news")
    team.clock.advance(hours=3)
    await poll_metrics(team.herald.ctx)
    out = await team.say("bob", f"/stats {post_id}")
    assert "Audience" not in out and "audience" not in out
    assert out.splitlines()[1].startswith("  acme-de (sandbox): ")


# --- /report … by audience and /report audience <name> -----------------------------------------------------


async def two_posts(team: Team) -> tuple[dict[str, int], int, int]:
    """#1 to all three accounts (south, north, no audience), #2 to acme-es only (south); read 3 hours later."""
    audiences = await workspace(team)
    first = await published(team, "Spring sale https://shop.acme.com/sale")
    second = await published(team, "Rebajas https://shop.acme.com/rebajas to=acme-es")
    reach(team, first, {"acme-es": audiences["south"], "acme-de": audiences["north"]})
    reach(team, second, {"acme-es": audiences["south"]})
    click(team, first, "acme-es", people=2, fetches=1)
    click(team, second, "acme-es", people=1, first=20)
    click(team, first, "acme-de", people=4, first=40)
    click(team, first, "acme-fr", people=1, first=60)
    team.clock.advance(hours=3)
    assert await poll_metrics(team.herald.ctx) == 4
    return audiences, first, second


async def test_report_by_audience_compares_the_audiences_in_a_table_and_a_grouped_bar_chart(team: Team) -> None:
    _audiences, first, second = await two_posts(team)
    one, two = readings(team, first), readings(team, second)
    south = [one["acme-es"], two["acme-es"]]
    groups = {"south": (2, south, 3), "north": (1, [one["acme-de"]], 4), "no audience": (1, [one["acme-fr"]], 1)}
    charts = RecordingCharts()
    team.herald.ctx.charts = charts
    reply = await ask(team, "bob", "/report week by audience")
    lines = reply.text.splitlines()
    assert lines[0] == ("📈 Audiences compared: the last 7 days (Mon 16 Nov 2026 13:00 → Mon 23 Nov 2026 13:00 CET "
                        "(Europe/Paris))")
    assert lines[1] == ("Counted: the period's posts with their numbers as they stood at its end; a post that reached "
                        "two audiences counts in each.")
    assert lines[2] == "Audience | Zone | Posts | Views | Engagements | Rate | Clicks"
    zones = {"south": "Europe/Madrid", "north": "Europe/Berlin", "no audience": "–"}
    audiences_first = sorted(("south", "north"), key=lambda n: -sum(engaged(m) for m in groups[n][1]))
    expected_rows = []
    for name in [*audiences_first, "no audience"]:
        posts, numbers, people = groups[name]
        score, views = sum(engaged(m) for m in numbers), sum(m.impressions or 0 for m in numbers)
        expected_rows.append(f"{name} | {zones[name]} | {posts} | {views:,} | {score:,} | {100 * score / views:.1f}% | "
                             f"{people}")
    assert lines[3:6] == expected_rows
    assert lines[6] == ("Clicks: the people who clicked each audience's short links on these posts · 1 preview fetch "
                        "counted apart (11% of 9).")
    # the chart: one group per metric, one bar per audience, each metric on its own scale
    [(title, (labels, values, split))] = charts.calls
    assert (title, labels, split) == ("Audiences compared: the last 7 days", list(CHART_METRICS), True)
    assert list(values) == [*audiences_first, "no audience"]
    for name, bars in values.items():
        posts, numbers, people = groups[name]
        score, views = sum(engaged(m) for m in numbers), sum(m.impressions or 0 for m in numbers)
        assert bars == [float(posts), float(views), float(score), round(100 * score / views, 1), float(people)]
    assert sum(len(bars) for bars in values.values()) == 15  # 5 metrics × 3 audiences
    image = png_of(reply.image)
    assert all(pixels(image, colour) > 500 for colour in PALETTE_RGB)  # each audience's bars are drawn
    # the same forms: the period alone, after, or written another way
    for line in ("/report by audience", "/report by audience week", "/report 7d by audiences"):
        assert (await team.say("bob", line)).splitlines()[3:6] == expected_rows, line


async def test_report_of_one_audience_is_the_period_report_of_its_deliveries(team: Team) -> None:
    _audiences, first, second = await two_posts(team)
    one, two = readings(team, first), readings(team, second)
    south = [one["acme-es"], two["acme-es"]]
    score, views = sum(engaged(m) for m in south), sum(m.impressions or 0 for m in south)
    reply = await ask(team, "bob", "/report audience South week")
    lines = reply.text.splitlines()
    assert lines[0] == ("📈 Report for audience south (Europe/Madrid, es), the last 7 days (Mon 16 Nov 2026 13:00 → "
                        "Mon 23 Nov 2026 13:00 CET (Europe/Paris))")
    assert lines[1] == "Reached through acme-es."
    assert lines[3] == "Published: 2 posts on 2 accounts (before: 0, new)"
    assert f"Engagements: {score:,} (before: 0, new) · views: {views:,} (before: 0, new) · engagement rate: " \
           f"{100 * score / views:.1f}% (before: –)" in lines
    assert "Per audience:" not in lines
    assert lines[-2:] == ["Short-link clicks on these posts: 3 by people · 1 preview fetch counted apart (25% of 4)",
                          "  Per account: acme-es 3"]
    png_of(reply.image)
    # the plain report (and so the digest) has a line per audience
    lines = (await team.say("bob", "/report week")).splitlines()
    at = lines.index("Per audience:")
    assert group_line("north", 1, [one["acme-de"]]) in lines[at + 1:at + 4]
    assert group_line("south", 2, south) in lines[at + 1:at + 4]


def group_line(name: str, posts: int, numbers: list[Metrics]) -> str:
    """A report's line of one group (handlers/engagement/reports.group_lines), nothing published the week before."""
    score, views = sum(engaged(m) for m in numbers), sum(m.impressions or 0 for m in numbers)
    return (f"  {name}: {posts} post{'s' if posts != 1 else ''} · {score:,} engagements (before: 0, new) · {views:,} "
            f"views · rate {100 * score / views:.1f}%")


async def test_the_weekly_digest_has_a_line_per_audience(team: Team) -> None:
    _audiences, first, second = await two_posts(team)
    one, two = readings(team, first), readings(team, second)  # the last readings, before the digest's end
    await team.say("alice", "/setup reports")
    await team.say("alice", "/digest weekly mon 09:00")
    recorder = Recorder(team)
    team.clock.current = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # Monday 09:00 in Paris
    assert await send_digests(team.herald.ctx) == 1
    [digest] = recorder.replies
    lines = digest.text.splitlines()
    at = lines.index("Per audience:")
    groups = {"south": (2, [one["acme-es"], two["acme-es"]]), "north": (1, [one["acme-de"]]),
              "no audience": (1, [one["acme-fr"]])}
    ranked = sorted(groups, key=lambda n: (-sum(engaged(m) for m in groups[n][1]), n))
    assert lines[at + 1:at + 4] == [group_line(name, *groups[name]) for name in ranked]
    assert lines[at + 4].startswith("Top posts")


async def test_report_by_audience_refusals_change_nothing(team: Team) -> None:
    await team.setup_workspace(accounts=ACCOUNTS)
    await published(team, "Plain news")
    await refused(team, "bob", "/report week by audience", "This workspace has no audiences yet",
                  "/audience add south")
    await refused(team, "bob", "/report audience south", "There's no audience 'south'",
                  "This workspace has no audiences yet")
    team.add_audience("south", ("acme-es",), "Europe/Madrid", "es")
    team.add_audience("north", ("acme-de",), "Europe/Berlin", "de")
    await refused(team, "bob", "/report audience east week", "There's no audience 'east'. Audiences here: north, south.")
    await refused(team, "bob", "/report audience", "Which audience?", "/report audience south week")
    await refused(team, "bob", "/report audience south year", "'year' isn't a period")
    await refused(team, "bob", "/report year by audience", "'year' isn't a period")
    out = await team.say("bob", "/report day by audience")  # audiences, but this post reached none
    assert out.splitlines()[3:6] == ["north | Europe/Berlin | 0 | 0 | 0 | – | –",
                                     "south | Europe/Madrid | 0 | 0 | 0 | – | –",
                                     "no audience | – | 1 | 0 | 0 | – | –"]
    assert out.splitlines()[6] == "Clicks: these posts had no short links (/links)."


# --- /export -------------------------------------------------------------------------------------------


async def test_export_appends_the_audience_of_each_delivery(team: Team) -> None:
    _audiences, first, second = await two_posts(team)
    reply = await ask(team, "bob", "/export week")
    assert reply.attachment is not None
    reader = csv.reader(io.StringIO(reply.attachment.data.decode("utf-8-sig"), newline=""))
    header = next(reader)
    assert tuple(header) == COLUMNS and header[-2:] == ["text", "audience"]
    rows = [dict(zip(header, row, strict=True)) for row in reader]
    assert {(r["post_id"], r["account"]): r["audience"] for r in rows} == {
        (str(first), "acme-de"): "north", (str(first), "acme-es"): "south", (str(first), "acme-fr"): "",
        (str(second), "acme-es"): "south"}
    assert {(r["post_id"], r["account"]): r["short_link_clicks"] for r in rows} == {
        (str(first), "acme-de"): "4", (str(first), "acme-es"): "2", (str(first), "acme-fr"): "1",
        (str(second), "acme-es"): "1"}
    one = readings(team, first)
    assert {r["account"]: r["likes"] for r in rows if r["post_id"] == str(first)} == {
        name: str(m.likes) for name, m in one.items()}


# --- /besttime audience <name> ------------------------------------------------------------------------------

# twelve posts to acme-es over four weeks at 09:00, 13:00 and 18:00 New York time (the audience's zone), each
# read 24 hours and 5 minutes later; three more at other hours reach no audience and must not count
NEW_YORK_HOURS = (14, 18, 23)  # UTC in winter: 09:00, 13:00, 18:00 in New York


async def test_besttime_of_an_audience_ranks_its_own_deliveries_in_its_zone(team: Team) -> None:
    await team.setup_workspace(accounts=ACCOUNTS)
    east = team.add_audience("east", ("acme-es",), "America/New_York", "en")
    await refused(team, "bob", "/besttime audience east", "Not enough history yet for audience east: 0 posts",
                  "Herald needs 10")
    await refused(team, "bob", "/besttime audience west", "There's no audience 'west'. Audiences here: east.")
    await refused(team, "bob", "/besttime audience", "Which audience?", "/besttime audience south")
    sent: list[tuple[datetime, int]] = []
    for week in range(4):
        for n, hour in enumerate(NEW_YORK_HOURS):
            at = datetime(2026, 11, 24, hour, tzinfo=UTC) + timedelta(weeks=week, days=n)
            team.clock.current = at
            post_id = await published(team, f"News {week}-{n} to=acme-es")
            reach(team, post_id, {"acme-es": east})
            sent.append((at, post_id))
            team.clock.current = at + timedelta(hours=24, minutes=5)
            assert await poll_metrics(team.herald.ctx) >= 1
            if week < 3 and n == 0:  # the same account, no audience: not the audience's history
                team.clock.current = at + timedelta(hours=25)
                await published(team, f"Other {week} to=acme-es")
                team.clock.current = at + timedelta(hours=49, minutes=5)
                await poll_metrics(team.herald.ctx)
    team.clock.current = datetime(2026, 12, 24, 12, tzinfo=UTC)
    # the expected slots, from the sandbox's numbers 24 hours 5 minutes after each post, in New York time
    scores: dict[str, list[float]] = {}
    for at, post_id in sent:
        (delivery,) = team.deliveries(post_id)
        m = engagement(f"acme-es:{delivery.remote_id}", 24 * 60 + 5)
        local = at.astimezone(ZoneInfo("America/New_York"))
        label = f"{local:%a} {local.hour:02d}:00–{local.hour + 1:02d}:00"
        scores.setdefault(label, []).append(engaged(m) / (m.impressions or 1))
    ranked = sorted(scores.items(), key=lambda item: -sum(item[1]) / len(item[1]))
    out = await team.say("bob", "/besttime audience East")
    lines = out.splitlines()
    assert lines[0] == ("⏰ Best times to post to audience east, from its own deliveries' numbers, in its zone "
                        "(America/New_York):")
    assert lines[1:4] == [f"  {n}. {label} · {100 * sum(v) / len(v):.1f}% engagement rate (4 posts)"
                          for n, (label, v) in enumerate(ranked, 1)]
    assert lines[4].startswith("Based on 12 posts over 4 weeks: each delivery to east's accounts")
    assert "America/New_York" in lines[4]


# --- an account that reaches two audiences -------------------------------------------------------------------


def second_delivery(team: Team, post_id: int, account: str, audience_id: int) -> None:
    """The post's delivery on `account` for a second audience, as targeting by audience makes one: its own post on
    the sandbox, its own short link."""
    ids = {name: i for i, name in names(team).items()}
    with team.herald.db.session() as session:
        first = session.exec(select(Delivery).where(Delivery.post_id == post_id)
                             .where(Delivery.account_id == ids[account])).one()
        remote = SandboxPost(account_id=first.account_id, idempotency_key=f"{first.idempotency_key}:{audience_id}",
                             text=first.text or "", created_at=first.sent_at)
        session.add(remote)
        session.flush()
        session.add(Delivery(post_id=post_id, account_id=first.account_id, audience_id=audience_id,
                             state=DeliveryState.SENT.value, idempotency_key=f"{first.idempotency_key}:{audience_id}",
                             text=first.text, remote_id=str(remote.id), sent_at=first.sent_at,
                             metrics_due_at=first.metrics_due_at))
        link = session.exec(select(ShortLink).where(ShortLink.post_id == post_id)
                            .where(ShortLink.account_id == ids[account])).one()
        session.add(ShortLink(code=f"{link.code[:6]}z{audience_id}", workspace_id=link.workspace_id, post_id=post_id,
                              account_id=link.account_id, audience_id=audience_id, target=link.target,
                              created_at=link.created_at))
        session.commit()


def click_audience(team: Team, post_id: int, account: str, audience_id: int, people: int, first: int) -> None:
    ids = {name: i for i, name in names(team).items()}
    with team.herald.db.session() as session:
        link = session.exec(select(ShortLink).where(ShortLink.post_id == post_id)
                            .where(ShortLink.account_id == ids[account])
                            .where(ShortLink.audience_id == audience_id)).one()
    ClickCounter(team.herald.db).store(
        [Hit(link.id or 0, team.clock.now(), f"192.0.2.{first + n}", BROWSER) for n in range(people)])


async def test_an_account_that_reaches_two_audiences_counts_in_each_with_its_own_numbers_and_clicks(team: Team) -> None:
    await team.setup_workspace(accounts=ACCOUNTS)
    south = team.add_audience("south", ("acme-es",), "Europe/Madrid", "es")
    latam = team.add_audience("latam", ("acme-es",), "America/Mexico_City", "es")
    post_id = await published(team, "Rebajas https://shop.acme.com/rebajas to=acme-es")
    reach(team, post_id, {"acme-es": south})
    second_delivery(team, post_id, "acme-es", latam)
    click_audience(team, post_id, "acme-es", south, people=2, first=1)
    click_audience(team, post_id, "acme-es", latam, people=5, first=50)
    team.clock.advance(hours=3)
    assert await poll_metrics(team.herald.ctx) == 2
    with team.herald.db.session() as session:
        rows = session.exec(select(Delivery, MetricSnapshot).where(Delivery.post_id == post_id)
                            .where(MetricSnapshot.delivery_id == Delivery.id)).all()
        numbers = {d.audience_id: engagement(f"acme-es:{d.remote_id}", 180) for d, _s in rows}
        assert {d.audience_id: s.likes for d, s in rows} == {a: m.likes for a, m in numbers.items()}
    assert numbers[south] != numbers[latam]  # two posts on the network, each with its numbers
    lines = (await team.say("bob", f"/stats {post_id}")).splitlines()
    assert lines[1] == "  Audience latam (America/Mexico_City):"
    assert lines[2].startswith(f"    acme-es (sandbox): {numbers[latam].likes} likes · ")
    assert lines[4] == "  Audience south (Europe/Madrid):"
    assert lines[5].startswith(f"    acme-es (sandbox): {numbers[south].likes} likes · ")
    clicks = lines.index("Clicks on its short links (people; preview fetches by networks and chat apps counted apart):")
    assert lines[-1].startswith("[image: ")  # the chart
    assert lines[clicks + 1:-1] == ["  Audience latam:", "    acme-es: 5 clicks", "  Audience south:",
                                  "    acme-es: 2 clicks", "  Total: 7 clicks · 0 preview fetches counted apart (0% of 7)"]
    reply = await ask(team, "bob", "/export day")
    assert reply.attachment is not None
    exported = list(csv.DictReader(io.StringIO(reply.attachment.data.decode("utf-8-sig"))))
    assert sorted((r["account"], r["audience"], r["short_link_clicks"], r["likes"]) for r in exported) == sorted([
        ("acme-es", "latam", "5", str(numbers[latam].likes)), ("acme-es", "south", "2", str(numbers[south].likes))])
    table = (await team.say("bob", "/report day by audience")).splitlines()
    for audience, name, people in ((latam, "latam", 5), (south, "south", 2)):
        m = numbers[audience]
        assert (f"{name} | {'America/Mexico_City' if name == 'latam' else 'Europe/Madrid'} | 1 | {m.impressions:,} | "
                f"{engaged(m):,} | {100 * engaged(m) / (m.impressions or 1):.1f}% | {people}") in table
    listed = [line for line in (await team.say("bob", "/report day")).splitlines() if line.startswith(f"  #{post_id} ")]
    assert listed == [f"  #{post_id} Mon 23 Nov 10:00 · acme-es · Rebajas https://shop.acme.com/rebajas"]


async def test_a_removed_audience_keeps_its_row_for_the_posts_that_reached_it(team: Team) -> None:
    audiences, first, second = await two_posts(team)
    before = (await team.say("bob", "/report week by audience")).splitlines()
    single = (await team.say("bob", "/report audience south week")).splitlines()
    out = await team.say("alice", "/audience remove south")
    assert "south" in out and not out.startswith("✋"), out
    with team.herald.db.session() as session:
        south = session.get(Audience, audiences["south"])
        assert south is not None and south.removed_at is not None and south.name == f"south~{south.id}"
    after = (await team.say("bob", "/report week by audience")).splitlines()
    [row] = [line for line in before if line.startswith("south | ")]
    assert row.replace("south | ", "south (removed) | ", 1) in after
    # its own report and best times still answer for the past, by the name the team knew
    again = (await team.say("bob", "/report audience south week")).splitlines()
    assert again[0] == single[0].replace("audience south (", "audience south (removed) (", 1), again[0]
    assert again[1:] == single[1:]
    assert "Not enough history yet for audience south:" in await team.say("bob", "/besttime audience south")
    await refused(team, "bob", "/report audience east week", "There's no audience 'east'. Audiences here: north.")


async def test_besttime_clicks_of_an_audience_ranks_the_hours_its_people_clicked_in_its_zone(team: Team) -> None:
    await team.setup_workspace(accounts=ACCOUNTS)
    east = team.add_audience("east", ("acme-es",), "America/New_York", "en")
    await refused(team, "bob", "/besttime clicks audience east", "Not enough clicks history yet for audience east: "
                  "0 posts", "Herald needs 10")
    for week in range(5):  # Tuesdays 09:00 New York: 3 people click; Thursdays 13:00: 1 person
        for at, people in ((datetime(2026, 11, 24, 14, tzinfo=UTC), 3), (datetime(2026, 11, 26, 18, tzinfo=UTC), 1)):
            team.clock.current = at + timedelta(weeks=week)
            post_id = await published(team, f"Deals {week} https://shop.acme.com/deals/{week} to=acme-es")
            reach(team, post_id, {"acme-es": east})
            click(team, post_id, "acme-es", people=people, fetches=2, first=10 * week + people)
            if week == 0:  # the same account, no audience, many clicks: not the audience's
                other = await published(team, f"Elsewhere https://shop.acme.com/else/{people} to=acme-es")
                click(team, other, "acme-es", people=9, first=100 + people)
    team.clock.current = datetime(2026, 12, 28, 12, tzinfo=UTC)
    out = await team.say("bob", "/besttime clicks audience east")
    assert out.splitlines() == [
        "⏰ Best times to post to audience east for clicks, from its own deliveries' short links, in its zone "
        "(America/New_York):",
        "  1. Tue 09:00–10:00 · 3.0 clicks per post (5 posts)",
        "  2. Thu 13:00–14:00 · 1.0 clicks per post (5 posts)",
        "Based on 10 posts over 5 weeks: the people who clicked each delivery's short links within 24 hours of "
        "publishing (preview fetches not counted), at its time in America/New_York.",
    ]
    # the workspace's own /besttime clicks counts every delivery of the account, in the workspace's zone:
    # Tuesdays 15:00 in Paris, five posts of 3 people and one of 9: 24 ÷ 6
    assert (await team.say("bob", "/besttime clicks")).splitlines()[1] == \
        "  1. Tue 15:00–16:00 · 4.0 clicks per post (6 posts)"
