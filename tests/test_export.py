"""/export <period>: a CSV of the posts published in a period and their latest numbers, one row per account.

The numbers come through the X, Bluesky and LinkedIn loopback fakes (tests/test_digests.two_weeks); the CSV is
parsed back with the csv module and checked cell by cell. The file goes through the console (written into its
exports folder), the real Telegram front end (sendDocument) and the real Discord front end (a message file).
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bot.chats.discord import DiscordFront
from bot.chats.telegram import TelegramFront
from handlers.core.chat import Command, Reply
from handlers.engagement.exports import COLUMNS
from handlers.engagement.metrics import poll_metrics
from handlers.engagement.reports import parse_period
from storage.models import Account, Delivery, MetricSnapshot
from tests.conftest import START, FakeClock, Team, make_herald, refused
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.telegram_api import FakeTelegram
from tests.test_digests import Nets, started_nets, two_weeks

BOM = b"\xef\xbb\xbf"


@pytest.fixture
async def nets(clock: FakeClock) -> AsyncIterator[Nets]:
    async with started_nets(clock) as started:
        yield started


def parse(data: bytes) -> list[dict[str, str]]:
    """The CSV as a spreadsheet reads it: UTF-8 with a BOM, a header row, one dict per row."""
    assert data.startswith(BOM)
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""))
    header = next(reader)
    assert tuple(header) == COLUMNS
    return [dict(zip(header, row, strict=True)) for row in reader]


def urls(team: Team) -> dict[tuple[int, str], str]:
    """(post, account) → the link each delivery got from its network."""
    with team.herald.db.session() as session:
        rows = session.exec(select(Delivery, Account).where(Delivery.account_id == Account.id)).all()
        return {(d.post_id, a.name): d.remote_url or "" for d, a in rows}


async def export(team: Team, user: str, line: str) -> Reply:
    console = team.herald.console
    console.user = user
    return await team.herald.handle(Command("export", console.actor(), console.chat, text=line))


async def test_export_week_is_one_row_per_account_with_each_number_from_the_fakes(team: Team, nets: Nets) -> None:
    await two_weeks(team, nets)
    reply = await export(team, "bob", "week")
    assert reply.text == (
        "📄 Export of the last 7 days (Mon 16 Nov 2026 10:00 → Mon 23 Nov 2026 10:00 CET (Europe/Paris)): 2 posts "
        "published, one row per account it went out on (4 rows), with their latest numbers. Times are in Europe/Paris.")
    assert reply.attachment is not None
    assert (reply.attachment.filename, reply.attachment.content_type) == ("herald-acme-2026-11-16_2026-11-23.csv",
                                                                          "text/csv")
    link = urls(team)
    read = "2026-11-22T10:00:00+01:00"  # the last reading: Sun 22 Nov 09:00 UTC
    assert parse(reply.attachment.data) == [
        # Bluesky gives no views, clicks or saves (empty cells); its rate is ÷ its 321 followers: 35 ÷ 321
        {"post_id": "3", "published_at": "2026-11-16T11:00:00+01:00", "campaign": "spring", "network": "bluesky",
         "account": "acme-bsky", "url": link[(3, "acme-bsky")], "likes": "25", "comments": "4", "shares": "5",
         "quotes": "1", "views": "", "clicks": "", "saves": "", "engagements": "35", "engagement_rate_pct": "10.90",
         "rate_basis": "followers", "short_link_clicks": "", "short_link_fetches": "", "site_visits": "", "site_conversions": "", "metrics_read_at": read, "text": "Spring sale starts today!", "audience": ""},
        # LinkedIn gives no quotes or saves; 80 ÷ 3,000 views
        {"post_id": "3", "published_at": "2026-11-16T11:00:00+01:00", "campaign": "spring", "network": "linkedin",
         "account": "acme-li", "url": link[(3, "acme-li")], "likes": "40", "comments": "8", "shares": "6",
         "quotes": "", "views": "3000", "clicks": "26", "saves": "", "engagements": "80",
         "engagement_rate_pct": "2.67", "rate_basis": "views", "short_link_clicks": "", "short_link_fetches": "", "site_visits": "", "site_conversions": "", "metrics_read_at": read,
         "text": "Spring sale starts today!", "audience": ""},
        {"post_id": "3", "published_at": "2026-11-16T11:00:00+01:00", "campaign": "spring", "network": "x",
         "account": "acme-x", "url": link[(3, "acme-x")], "likes": "30", "comments": "5", "shares": "6",
         "quotes": "2", "views": "2000", "clicks": "14", "saves": "3", "engagements": "60",
         "engagement_rate_pct": "3.00", "rate_basis": "views", "short_link_clicks": "", "short_link_fetches": "", "site_visits": "", "site_conversions": "", "metrics_read_at": read,
         "text": "Spring sale starts today!", "audience": ""},
        {"post_id": "4", "published_at": "2026-11-18T11:00:00+01:00", "campaign": "", "network": "bluesky",
         "account": "acme-bsky", "url": link[(4, "acme-bsky")], "likes": "12", "comments": "2", "shares": "1",
         "quotes": "0", "views": "", "clicks": "", "saves": "", "engagements": "15", "engagement_rate_pct": "4.67",
         "rate_basis": "followers", "short_link_clicks": "", "short_link_fetches": "", "site_visits": "", "site_conversions": "", "metrics_read_at": read, "text": "Meet the team at the fair", "audience": ""},
    ]
    assert link[(3, "acme-x")].startswith("https://x.com/brand/status/")
    assert link[(3, "acme-bsky")].startswith("https://bsky.app/profile/brand.bsky.social/post/")
    assert link[(3, "acme-li")].startswith("https://www.linkedin.com/feed/update/urn:li:share:")


async def test_export_periods_months_days_and_ranges(team: Team, nets: Nets) -> None:
    await two_weeks(team, nets)

    async def rows(line: str) -> list[tuple[str, str]]:
        reply = await export(team, "bob", line)
        assert reply.attachment is not None, reply.text
        return [(r["post_id"], r["account"]) for r in parse(reply.attachment.data)]

    everything = [("1", "acme-bsky"), ("1", "acme-x"), ("2", "acme-li"), ("2", "acme-x"), ("3", "acme-bsky"),
                  ("3", "acme-li"), ("3", "acme-x"), ("4", "acme-bsky")]
    assert await rows("2026-11") == everything
    assert await rows("month") == everything
    assert await rows("14d") == everything  # Mon 9 Nov 10:00 Paris, #1's minute, is the first one inside
    assert await rows("13d") == everything[2:]
    assert await rows("2026-11-09") == everything[:2]
    assert await rows("2026-11-01..2026-11-10") == everything[:4]
    assert await rows("") == everything[4:]  # the last 7 days
    reply = await export(team, "bob", "2026-11-01..2026-11-10")
    assert reply.attachment is not None and reply.attachment.filename == "herald-acme-2026-11-01_2026-11-10.csv"
    assert reply.text.startswith("📄 Export of Sun 1 Nov – Tue 10 Nov 2026 (Sun 1 Nov 2026 00:00 → Wed 11 Nov 2026 "
                                 "00:00 CET (Europe/Paris)): 2 posts published")
    # #1 on X was read again on Sun 22 Nov: the export has its latest numbers (99 + 9 + 9 + 9 + 9 = 135)
    first = parse(reply.attachment.data)[1]
    assert (first["likes"], first["views"], first["engagements"], first["engagement_rate_pct"]) == (
        "99", "9000", "135", "1.50")
    quiet = await export(team, "bob", "day")
    assert quiet.attachment is None
    assert quiet.text == ("Nothing was published in the last 24 hours (Sun 22 Nov 2026 10:00 → Mon 23 Nov 2026 "
                          "10:00 CET (Europe/Paris)), so there's nothing to export.")
    assert (await export(team, "bob", "2026-10")).text.startswith("Nothing was published in October 2026 (")
    assert (await export(team, "bob", "2026-10-05")).text.startswith("Nothing was published on Mon 5 Oct 2026 (")


@pytest.mark.parametrize(("text", "start", "end", "before_start", "name", "before", "key"), [
    # calendar months in Paris time, across the year's turn and the October DST change
    ("2026-01", "2025-12-31T23:00", "2026-01-31T23:00", "2025-11-30T23:00", "January 2026", "December 2025",
     "2026-01"),
    ("2026-12", "2026-11-30T23:00", "2026-12-31T23:00", "2026-10-31T23:00", "December 2026", "November 2026",
     "2026-12"),
    ("2026-10", "2026-09-30T22:00", "2026-10-31T23:00", "2026-08-31T22:00", "October 2026", "September 2026",
     "2026-10"),
    # a day that is 25 hours long (the clocks go back), and a range compared with as many days before it
    ("2026-10-25", "2026-10-24T22:00", "2026-10-25T23:00", "2026-10-23T22:00", "Sun 25 Oct 2026", "the day before",
     "2026-10-25"),
    ("2026-11-01..2026-11-03", "2026-10-31T23:00", "2026-11-03T23:00", "2026-10-28T23:00",
     "Sun 1 Nov – Tue 3 Nov 2026", "the 3 days before", "2026-11-01_2026-11-03"),
    ("14D", "2026-11-09T09:00", "2026-11-23T09:00", "2026-10-26T09:00", "the last 14 days", "the 14 days before",
     "2026-11-09_2026-11-23"),
])
def test_periods_are_whole_days_in_the_workspace_timezone(
        text: str, start: str, end: str, before_start: str, name: str, before: str, key: str) -> None:
    def utc(value: str) -> datetime:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)

    period = parse_period(text, START, "Europe/Paris", "/export [period]")
    assert (period.window.start, period.window.end) == (utc(start), utc(end))
    assert (period.previous.start, period.previous.end) == (utc(before_start), utc(start))
    assert (period.name, period.before, period.key) == (name, before, key)


async def test_export_before_any_reading_leaves_the_numbers_empty(team: Team) -> None:
    await team.setup_workspace()
    post = await team.approved_post("=SUM(A1:A9) fresh off the press campaign=-launch")
    await team.say("alice", f"/publish {post}")
    reply = await export(team, "viewer-vic", "day")  # anyone in the workspace may export
    assert reply.attachment is not None, reply.text
    rows = parse(reply.attachment.data)
    assert [r["account"] for r in rows] == ["brand-bsky", "brand-x"]
    for row in rows:
        assert [row[c] for c in ("likes", "comments", "shares", "quotes", "views", "clicks", "saves", "engagements",
                                 "engagement_rate_pct", "rate_basis", "metrics_read_at")] == [""] * 11
        # cells a spreadsheet would run as a formula are kept as text
        assert row["text"] == "'=SUM(A1:A9) fresh off the press"
        assert row["campaign"] == "'-launch"
        assert row["published_at"] == "2026-11-23T10:00:00+01:00"
    team.clock.advance(hours=1)
    await poll_metrics(team.herald.ctx)
    rows = parse((await export(team, "bob", "day")).attachment.data)  # type: ignore[union-attr]
    with team.herald.db.session() as session:
        snaps = {s.delivery_id: s for s in session.exec(select(MetricSnapshot)).all()}
        ids = {a.name: d.id for d, a in session.exec(select(Delivery, Account)
                                                       .where(Delivery.account_id == Account.id)).all()}
    for row in rows:
        snap = snaps[ids[row["account"]]]
        assert snap.impressions
        assert [row[c] for c in ("likes", "comments", "shares", "quotes", "views", "clicks", "saves")] == [
            str(getattr(snap, f)) for f in ("likes", "comments", "shares", "quotes", "impressions", "clicks", "saves")]
        engaged = sum(getattr(snap, f) for f in ("likes", "comments", "shares", "quotes", "saves", "clicks"))
        assert row["engagements"] == str(engaged)
        assert row["engagement_rate_pct"] == f"{100 * engaged / snap.impressions:.2f}"
        assert (row["rate_basis"], row["metrics_read_at"]) == ("views", "2026-11-23T11:00:00+01:00")


async def test_the_console_writes_the_file_into_its_exports_folder(team: Team, tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    team.herald.console.exports_dir = folder
    await team.setup_workspace()
    post = await team.approved_post("Hello CSV")
    await team.say("alice", f"/publish {post}")
    first, second = await team.say("bob", "/export 2026-11-23"), await team.say("bob", "/export 2026-11-23")
    size = len((folder / "herald-acme-2026-11-23.csv").read_bytes())
    assert first.splitlines()[-1] == f"[file: {folder / 'herald-acme-2026-11-23.csv'} ({size:,} bytes)]"
    assert second.splitlines()[-1] == f"[file: {folder / 'herald-acme-2026-11-23-1.csv'} ({size:,} bytes)]"  # never over
    assert [r["text"] for r in parse((folder / "herald-acme-2026-11-23-1.csv").read_bytes())] == ["Hello CSV"] * 2


async def test_export_refusals_change_nothing(team: Team, tmp_path: Path) -> None:
    team.herald.console.exports_dir = tmp_path / "exports"
    await team.setup_workspace()
    post = await team.approved_post()
    await team.say("alice", f"/publish {post}")
    await refused(team, "bob", "/export fortnight", "'fortnight' isn't a period", "2026-11-01..2026-11-20")
    await refused(team, "bob", "/export 400d", "between 1d and 366d")
    await refused(team, "bob", "/export 2026-00", "'2026-00' isn't a month")
    await refused(team, "bob", "/export 2026-02-30", "'2026-02-30' isn't a date")
    await refused(team, "bob", "/export 0000-01", "'0000-01': give a year between 2000 and 2100")
    await refused(team, "bob", "/export 9999-12-31", "'9999-12-31': give a year between 2000 and 2100")
    await refused(team, "bob", "/export 2026-11-01..0001-01-01", "'0001-01-01': give a year")
    await refused(team, "bob", "/export 2026-11-20..2026-11-01", "ends before it starts")
    await refused(team, "bob", "/export 2026-11-01...2026-11-20", "isn't a period")
    assert not (tmp_path / "exports").exists()


# -- through the real Telegram and Discord front ends ---------------------------------------------------


def expected_rows(herald: Any) -> list[tuple[str, str, str, str]]:
    """(post, account, likes, views) per sent delivery, from the database, to check the file against."""
    with herald.db.session() as session:
        rows = session.exec(select(Delivery, Account).where(Delivery.account_id == Account.id)
                            .where(Delivery.state == "sent").order_by(Delivery.post_id, Account.name)).all()
        out = []
        for delivery, account in rows:
            snap = session.exec(select(MetricSnapshot).where(MetricSnapshot.delivery_id == delivery.id)
                                .order_by(MetricSnapshot.id.desc())).first()  # type: ignore[union-attr]
            assert snap is not None
            out.append((str(delivery.post_id), account.name, str(snap.likes), str(snap.impressions)))
        return out


async def test_export_reaches_telegram_as_a_document(db_url: str, clock: FakeClock) -> None:
    async with FakeTelegram() as tg:
        alice = tg.user("Alice", username="alice")
        group = tg.group("Acme marketing", admins=(alice,))
        herald = make_herald(db_url, clock)
        herald.add_front(TelegramFront(herald.handle, tg.token, api_url=tg.url, poll_timeout=5,
                                       group_rate=(1000, 60)))
        await herald.start()
        try:
            async def command(text: str) -> dict[str, Any]:
                return await tg.wait_answer(await tg.say(alice, group, text))

            for line in ("/setup Acme", "/timezone Europe/Paris", "/connect sandbox name=brand like=x",
                         "/connect sandbox name=brand-2", "/policy approvals=0", "/draft First post campaign=fall"):
                await command(line)
            await command("/publish 1")
            clock.advance(hours=1)
            await command("/draft Second post")
            await command("/publish 2")
            clock.advance(hours=2)
            await poll_metrics(herald.ctx)
            answer = await command("/export")
            assert answer["caption"].startswith("📄 Export of the last 7 days ("), answer
            assert answer["document"]["file_name"] == "herald-acme-2026-11-16_2026-11-23.csv"
            assert answer["document"]["mime_type"] == "text/csv"
            [call] = tg.calls("sendDocument")
            upload = call.files["document"]
            assert upload["filename"] == "herald-acme-2026-11-16_2026-11-23.csv"
            rows = parse(upload["data"])
            assert [(r["post_id"], r["account"], r["likes"], r["views"]) for r in rows] == expected_rows(herald)
            assert [r["campaign"] for r in rows] == ["fall", "fall", "", ""]
            assert answer["document"]["file_size"] == len(upload["data"])
        finally:
            await herald.stop()


async def test_export_reaches_discord_as_a_file_on_the_message(
        db_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeDiscord()
    await fake.start()
    guild = fake.add_guild("Acme")
    channel = fake.add_channel(guild, "marketing")
    alice = fake.add_member(guild, "alice", manage_guild=True)
    herald = make_herald(db_url, clock)
    front = DiscordFront(herald.handle, fake.token, api_url=fake.url, guild_ids=[int(guild)],
                         guild_ready_timeout=0.05)
    herald.add_front(front)
    await herald.start()
    try:
        for name, options in (("setup", {"args": "Acme"}), ("timezone", {"args": "Europe/Paris"}),
                              ("connect", {"args": "sandbox name=brand"}), ("policy", {"args": "approvals=0"}),
                              ("draft", {"text": "Hello from Discord"}), ("publish", {"post": "1"})):
            await fake.slash(alice, channel, name, **options)
        clock.advance(hours=3)
        await poll_metrics(herald.ctx)
        record = await fake.slash(alice, channel, "export", args="2026-11")
        message = record.original if record.original is not None else record.followups[-1]
        assert not record.ephemeral
        assert message["embeds"][0]["title"].startswith("📄 Export of November 2026 (")
        [attachment] = message["attachments"]
        assert attachment["filename"] == "herald-acme-2026-11.csv"
        rows = parse(fake.attachments[attachment["id"]])
        assert [(r["post_id"], r["account"], r["likes"], r["views"]) for r in rows] == expected_rows(herald)
        assert rows[0]["published_at"] == "2026-11-23T10:00:00+01:00"

        # a slow export is deferred ("thinking…") and the answer edits that message, the file with it
        monkeypatch.setattr("bot.chats.discord.DEFER_AFTER", 0.01)
        handle = front.handle

        async def slow(command: Command) -> Reply:
            asked = list(fake.interactions.values())[-1]  # the interaction this command answers
            await asyncio.wait_for(asked.answered.wait(), 10)  # answered only once Herald has deferred it
            return await handle(command)

        front.handle = slow
        record = await fake.slash(alice, channel, "export", args="2026-11")
        assert record.kind == 5 and record.original is not None
        await fake.wait_for(lambda: record.original and record.original["attachments"])
        assert record.original["embeds"][0]["title"].startswith("📄 Export of November 2026 (")
        [attachment] = record.original["attachments"]
        assert parse(fake.attachments[attachment["id"]]) == rows
    finally:
        await herald.stop()
        await fake.close()
