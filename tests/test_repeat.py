"""Recurring posts (/repeat) through the console chat, over simulated months on the FakeClock: a weekly series
across both daylight-saving changes published through the loopback Mastodon fake at 09:00 local, skipping and
editing one date, editing the series, stopping it, approval once or each date, bad rules refused with nothing
created, and each date made once however many times (or workers) the clock runs."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select

from handlers.core.errors import UserError
from handlers.posts.series import create_occurrence, fill_all_series, parse_rule
from storage.models import Occurrence, Post, Series
from tests.conftest import FakeClock, Team, make_herald, refused
from tests.fakes.mastodon_api import FakeMastodon


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


async def draft(team: Team, text: str = "Weekly tips: water your plants") -> int:
    out = await team.say("alice", f"/draft {text}")
    return int(out.split("#", 1)[1].split(" ", 1)[0].rstrip("."))


def occurrences(team: Team, template_id: int) -> list[tuple[Occurrence, Post | None]]:
    """The series' dates in order, with their posts (None when skipped before it was made)."""
    with team.herald.db.session() as session:
        series = session.exec(select(Series).where(Series.template_post_id == template_id)).one()
        rows = session.exec(select(Occurrence).where(Occurrence.series_id == series.id)
                            .order_by(col(Occurrence.occurs_at))).all()
        return [(o, session.get(Post, o.post_id) if o.post_id else None) for o in rows]


def posts_of(team: Team, template_id: int) -> list[Post]:
    return [p for _o, p in occurrences(team, template_id) if p is not None]


def post_count(team: Team) -> int:
    with team.herald.db.session() as session:
        return len(session.exec(select(Post.id)).all())


# --- the rule -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("zone", "winter", "summer"), [("Europe/Berlin", 8, 7), ("America/New_York", 14, 13)])
# 09:00 local is 08:00 / 07:00 UTC in Berlin (CET / CEST), 14:00 / 13:00 UTC in New York (EST / EDT)
def test_a_weekly_rule_keeps_nine_local_across_daylight_saving(zone: str, winter: int, summer: int) -> None:
    rule, timed = parse_rule("every week on tue at 9:00 until 2027-11-30", now=utc(2027, 1, 4, 12), tz=zone)
    assert timed
    dates = rule.dates()
    local = [d.astimezone(ZoneInfo(zone)) for d in dates]
    assert {(d.hour, d.minute, d.strftime("%a")) for d in local} == {(9, 0, "Tue")}
    assert dates[0].hour == winter and dates[20].hour == summer and dates[-1].hour == winter
    assert all(b.astimezone(ZoneInfo(zone)).date() - a.astimezone(ZoneInfo(zone)).date() == timedelta(days=7)
               for a, b in zip(local, local[1:], strict=False))


def test_a_time_the_clock_skips_goes_out_an_hour_later_and_one_it_repeats_at_the_first() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    spring, _ = parse_rule("every day at 2:30 from 2027-03-27 count=3", now=utc(2027, 3, 1), tz="Europe/Berlin")
    assert [d.astimezone(berlin).strftime("%d %H:%M %Z") for d in spring.dates()] == [
        "27 02:30 CET", "28 03:30 CEST", "29 02:30 CEST"]
    autumn, _ = parse_rule("every day at 2:30 from 2027-10-30 count=3", now=utc(2027, 3, 1), tz="Europe/Berlin")
    assert [d.astimezone(berlin).strftime("%d %H:%M %Z") for d in autumn.dates()] == [
        "30 02:30 CEST", "31 02:30 CEST", "01 02:30 CET"]


def test_a_pasted_rrule_is_read_as_is() -> None:
    rule, timed = parse_rule("RRULE:FREQ=MONTHLY;BYMONTHDAY=1;COUNT=3 at 17:30", now=utc(2026, 11, 23, 9),
                             tz="Europe/Paris")
    assert timed and rule.text == "RRULE:FREQ=MONTHLY;BYMONTHDAY=1;COUNT=3"
    assert rule.dates() == [utc(2026, 12, 1, 16, 30), utc(2027, 1, 1, 16, 30), utc(2027, 2, 1, 16, 30)]


def test_a_pasted_until_in_utc_is_read_on_the_workspace_clock() -> None:
    rule, timed = parse_rule("RRULE:FREQ=WEEKLY;BYDAY=TU;UNTIL=20261208T080000Z", now=utc(2026, 11, 23, 9),
                             tz="Europe/Paris")
    assert not timed and rule.text == "RRULE:FREQ=WEEKLY;BYDAY=TU;UNTIL=20261208T090000"
    assert rule.dates() == [utc(2026, 11, 24, 8), utc(2026, 12, 1, 8), utc(2026, 12, 8, 8)]  # 09:00 in Paris


@pytest.mark.parametrize(("text", "says"), [
    ("every 0 days count=3", "never comes round"),
    ("every week", "never ends"),
    ("RRULE:FREQ=WEEKLY;BYDAY=TU", "never ends"),
    ("RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30;COUNT=3", "gives no date"),
    ("every week until 2025-01-01", "in the past"),
    ("every day count=1000", f"more than {500} posts"),
    ("every year until 2031-01-01", "more than 2 years"),
    ("every week at 25:00 count=3", "isn't a time of day"),
    ("every week at 9 count=3", "morning or evening"),
    ("every week on funday count=3", "isn't a day of the week"),
    ("every week until 2027-02-30", "no such date"),
    ("every week count=3 until 2027-01-01", "not both"),
    ("sometimes", "can't read"),
    ("every week at 9:00 at 10:00 count=2", "given twice"),
    ("RRULE:FREQ=WEEKLY;BYDAY=TU count=3", "write 'count' inside it"),
    ("RRULE:FREQ=SOMETIMES;COUNT=2", "can't be read"),
])
def test_bad_rules_are_refused_with_what_to_write(text: str, says: str) -> None:
    with pytest.raises(UserError) as refusal:
        parse_rule(text, now=utc(2026, 11, 23, 9), tz="Europe/Paris")
    assert says in str(refusal.value)


# --- through the chat ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("zone", "first_tuesday"), [("Europe/Berlin", "2027-03-02"), ("America/New_York", "2027-03-02")])
async def test_a_weekly_series_publishes_at_nine_local_every_week_across_both_dst_changes(
        db_url: str, zone: str, first_tuesday: str) -> None:
    """March to November 2027: both changes of Europe (28 Mar, 31 Oct) and of New York (14 Mar, 7 Nov)."""
    clock = FakeClock(utc(2027, 2, 22, 12))
    herald = make_herald(db_url, clock)
    await herald.start()
    team = Team(herald, clock, db_url)
    try:
        async with FakeMastodon() as masto:
            await team.say("alice", "/setup Acme")
            await team.say("alice", f"/timezone {zone}")
            out = await team.say("alice", f"/connect mastodon name=acme-masto base_url={masto.url} access_token=masto-token")
            assert out.startswith("Connected acme-masto"), out
            await team.say("alice", "/role bob approver")
            template = await draft(team, "Tuesday tip: water your plants")
            out = await team.say("alice", f"/repeat {template} every week on tue at 9:00 from {first_tuesday} "
                                          "until 2027-11-30")
            assert f"#{template} repeats every week on Tue at 09:00 until 2027-11-30 ({zone})" in out, out
            assert f"created once #{template} is approved" in out
            assert post_count(team) == 1  # nothing made before the series is approved
            await team.say("alice", f"/submit {template}")
            out = await team.say("bob", f"/approve {template}")
            assert "Approved for its series: its dates go out with this approval" in out, out
            assert "Its series' next dates are made: #2, #3, #4" in out, out
            assert await fill_all_series(herald.ctx) == 0  # made already
            published: list[datetime] = []
            while True:
                await fill_all_series(herald.ctx)
                waiting = [p for p in posts_of(team, template) if p.state == "scheduled"]
                if not waiting:
                    break
                post = min(waiting, key=lambda p: p.due_at or clock.now())
                assert post.due_at is not None
                assert herald.scheduler.armed().get(post.id or 0) == post.due_at  # the clock will run it then
                assert len(waiting) == min(3, len(waiting))
                clock.current = post.due_at
                await team.tick(seconds=0)
                assert team.post(post.id or 0).state == "published"
                published.append(clock.now())
            local = [at.astimezone(ZoneInfo(zone)) for at in published]
            assert len(published) == 40  # every Tuesday from 2 March to 30 November 2027
            assert {(d.strftime("%a"), d.hour, d.minute) for d in local} == {("Tue", 9, 0)}
            assert all((b.date() - a.date()).days == 7 for a, b in zip(local, local[1:], strict=False))
            assert len({d.utcoffset() for d in local}) == 2  # both sides of the changes
            assert [s["content"] for s in masto.statuses.values()] == ["Tuesday tip: water your plants"] * 40
            assert len(masto.requests("POST", "/api/v1/statuses")) == 40  # each once
            out = await team.say("alice", f"/repeat {template}")
            assert "ended (no date left)" in out
    finally:
        await herald.stop()


async def setup_series(team: Team, line: str = "every week on tue at 9:00 count=6") -> int:
    """alice's weekly series on brand-x and brand-bsky (Paris), approved once by bob; its post's number."""
    await team.setup_workspace()
    template = await draft(team)
    await team.say("alice", f"/repeat {template} {line}")
    await team.say("alice", f"/submit {template}")
    await team.say("bob", f"/approve {template}")
    await fill_all_series(team.herald.ctx)
    return template


async def test_skip_and_edit_of_one_date_then_stop(team: Team) -> None:
    template = await setup_series(team)
    made = posts_of(team, template)
    assert [p.due_at for p in made] == [utc(2026, 11, 24, 8), utc(2026, 12, 1, 8), utc(2026, 12, 8, 8)]
    assert {p.state for p in made} == {"scheduled"}
    out = await team.say("alice", f"/repeat {template}")
    assert "Tue 1 Dec 2026 09:00 CET (Europe/Paris)" in out and f"#{made[1].id}, scheduled" in out, out

    out = await team.say("alice", f"/repeat {template} skip 2026-12-01")
    assert out.startswith("⏭ Skipped Tue 1 Dec 2026 09:00 CET (Europe/Paris)") and f"#{made[1].id} cancelled" in out
    assert team.post(made[1].id or 0).state == "cancelled"
    assert [p.due_at for p in posts_of(team, template) if p.state == "scheduled"] == [
        utc(2026, 11, 24, 8), utc(2026, 12, 8, 8), utc(2026, 12, 15, 8)]  # the window moved on by one
    out = await team.say("alice", f"/repeat {template} skip 2026-12-22")  # not made yet: remembered
    assert "Skipped Tue 22 Dec 2026" in out
    await refused(team, "alice", f"/repeat {template} skip 2026-12-22", "skipped already")

    out = await team.say("alice", f"/repeat {template} edit 2026-12-08 Holiday tip: water them twice")
    assert "Edited" in out and "back in review" in out, out
    edited = next(p for p in posts_of(team, template) if p.due_at == utc(2026, 12, 8, 8))
    assert (edited.text, edited.state) == ("Holiday tip: water them twice", "in_review")
    await team.say("bob", f"/approve {edited.id}")
    assert team.post(edited.id or 0).state == "scheduled"

    await team.tick(hours=23)  # Tue 24 Nov 09:00 in Paris
    for _week in range(3):  # (1 Dec skipped), 8 Dec, 15 Dec
        await fill_all_series(team.herald.ctx)
        await team.tick(days=7)
    texts = [p.text for p in team.sandbox_posts()]
    assert texts == ["Weekly tips: water your plants"] * 2 + ["Holiday tip: water them twice"] * 2 \
        + ["Weekly tips: water your plants"] * 2  # two accounts each

    out = await team.say("alice", f"/repeat {template} stop")
    waiting = [p for p in posts_of(team, template) if p.due_at and p.due_at > team.clock.now()]
    assert out.startswith(f"⏹ The series of #{template} is stopped") and all(p.state == "cancelled" for p in waiting)
    before = post_count(team)
    await team.tick(days=30)
    assert await fill_all_series(team.herald.ctx) == 0 and post_count(team) == before
    assert len(team.sandbox_posts()) == 6
    await refused(team, "alice", f"/repeat {template} skip 2027-01-05", "no running series")


async def test_editing_the_series_changes_only_dates_not_yet_approved(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/policy series=each")
    template = await draft(team)
    out = await team.say("alice", f"/repeat {template} every 2 weeks on mon,thu at 18:30 count=5")
    assert "each occurrence is approved on its own" in out, out
    made = posts_of(team, template)
    assert [p.state for p in made] == ["in_review"] * 3  # no approval of the template needed: each date has its own
    assert out.count("post of the series of") == 3 and out.count("🔁 One date of the series of #") == 3  # approvers' cards
    await team.say("bob", f"/approve {made[0].id}")
    out = await team.say("alice", f"/edit {template} Evening tips: water at dusk")
    assert "now say the same" in out and f"#{made[0].id} keep their text" in out, out
    after = {p.id: p for p in posts_of(team, template)}
    assert after[made[0].id].text == "Weekly tips: water your plants"  # approved: unchanged
    assert [after[p.id].text for p in made[1:]] == ["Evening tips: water at dusk"] * 2
    assert all(after[p.id].revision == 2 for p in made[1:])


async def test_with_approval_each_a_date_goes_out_once_approved_and_expires_if_not(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/policy series=each")
    template = await draft(team)
    await team.say("alice", f"/repeat {template} every day at 9:00 count=4")
    first, second, _third = posts_of(team, template)
    out = await team.say("bob", f"/approve {first.id}")
    assert "Approved and scheduled for Tue 24 Nov 2026 09:00 CET" in out, out
    out = await team.tick(hours=23)  # Tue 09:00 in Paris
    assert team.post(first.id or 0).state == "published"
    await fill_all_series(team.herald.ctx)
    out = await team.tick(days=1)
    assert team.post(second.id or 0).state == "expired" and f"#{second.id} wasn't approved by its deadline" in out, out
    assert len(team.sandbox_posts()) == 2  # the approved date only, on both accounts


async def test_with_approval_once_an_edit_of_the_series_waits_for_its_new_approval(team: Team) -> None:
    template = await setup_series(team)
    out = await team.say("alice", f"/edit {template} New weekly tip")
    assert "back in review" in out and "keep their text" in out, out
    await team.tick(days=7)
    await fill_all_series(team.herald.ctx)
    assert len(posts_of(team, template)) == 3  # the fourth date waits for the new version's approval
    await team.say("bob", f"/approve {template}")
    await fill_all_series(team.herald.ctx)
    made = posts_of(team, template)
    assert [p.text for p in made] == ["Weekly tips: water your plants"] * 3 + ["New weekly tip"]


async def test_bad_input_in_the_chat_creates_nothing(team: Team) -> None:
    await team.setup_workspace()
    template = await draft(team)
    await refused(team, "alice", f"/repeat {template} every 0 days count=3", "never comes round")
    await refused(team, "alice", f"/repeat {template} every week", "never ends", "until 2027-03-01")
    await refused(team, "alice", f"/repeat {template} RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30;COUNT=2", "no date")
    await refused(team, "alice", f"/repeat {template} every week until 2026-01-01", "in the past")
    await refused(team, "alice", f"/repeat {template} every day count=900", "more than 500")
    await refused(team, "alice", f"/repeat {template} skip 2026-12-01", "no running series")
    await refused(team, "alice", "/repeat 99 every week count=3", "no post #99")
    await refused(team, "bob", f"/repeat {template} every week count=3", "change a series")
    await team.say("alice", f"/schedule {template} tomorrow 9am")
    await refused(team, "alice", f"/repeat {template} every week count=3", "time of its own")
    await team.say("alice", f"/unschedule {template}")
    await team.say("alice", f"/repeat {template} every week on tue at 9:00 count=4")
    await refused(team, "alice", f"/repeat {template} every day count=3", "already has a series")
    await refused(team, "alice", f"/repeat {template} skip 2026-11-25", "no post on 2026-11-25")
    await refused(team, "alice", f"/repeat {template} skip next tuesday", "2026-12-08")
    await refused(team, "alice", f"/repeat {template} edit 2026-12-01", "What should that date's post say")
    await team.say("alice", f"/submit {template}")
    await team.say("bob", f"/approve {template}")
    await refused(team, "alice", f"/publish {template}", "post of a recurring series", f"/repeat {template} stop")
    await refused(team, "alice", f"/schedule {template} tomorrow 9am", "post of a recurring series")
    out = await team.say("bob", f"/repeat {template}")  # anyone may look
    assert "repeats every week on Tue at 09:00, 4 times" in out, out
    assert await team.say("bob", f"/repeat {template} show") == out


async def test_a_date_is_made_once_however_often_and_by_however_many_workers_the_clock_runs(
        team: Team, db_url: str) -> None:
    await team.setup_workspace()
    await team.say("alice", "/policy approvals=0")
    template = await draft(team)
    await team.say("alice", f"/repeat {template} every day at 8:00 count=10")
    assert len(posts_of(team, template)) == 3
    out = await team.say("alice", f"/edit {template} Daily tip: rest")  # no approval step: the dates made follow
    assert [p.text for p in posts_of(team, template)] == ["Daily tip: rest"] * 3 and "now say the same" in out, out
    other = make_herald(db_url, team.clock, HERALD_WORKER_ID="second")  # another worker on the same database
    await other.start()
    try:
        for _day in range(12):
            team.clock.advance(days=1)
            await asyncio.gather(fill_all_series(team.herald.ctx), fill_all_series(other.ctx),
                                 fill_all_series(team.herald.ctx))
        rows = occurrences(team, template)
        assert len(rows) == 10 and len({o.occurs_at for o, _p in rows}) == 10
        first = rows[0][0]
        before = post_count(team)
        assert first.occurs_at is not None
        assert create_occurrence(team.herald.ctx, first.series_id, first.occurs_at) is None  # a crash's rerun
        assert post_count(team) == before  # and no stray post left behind by the refused insert
    finally:
        await other.stop()


async def test_a_series_whose_post_is_cancelled_makes_no_new_date(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/policy series=each")
    template = await draft(team)
    await team.say("alice", f"/repeat {template} every day at 9:00 count=8")
    assert len(posts_of(team, template)) == 3
    await team.say("alice", f"/cancel {template}")
    team.clock.advance(days=2)
    assert await fill_all_series(team.herald.ctx) == 0 and len(posts_of(team, template)) == 3
    assert "stopped" in await team.say("alice", f"/repeat {template}")


class QuietScheduler:
    """A worker's clock that arms nothing (the threads below share no event loop)."""

    def arm(self, post_id: int, at: datetime) -> None:
        pass

    def disarm(self, post_id: int) -> None:
        pass


async def test_workers_racing_for_one_date_make_one_post(team: Team) -> None:
    """Four workers (threads, each its own connection) create the same date at once: one post, one row."""
    await team.setup_workspace()
    await team.say("alice", "/policy approvals=0")
    template = await draft(team)
    await team.say("alice", f"/repeat {template} every week on fri at 9:00 count=5")
    with team.herald.db.session() as session:
        series = session.exec(select(Series).where(Series.template_post_id == template)).one()
    dates = [o.occurs_at for o, _p in occurrences(team, template)]
    late = utc(2026, 12, 25, 8)  # the fifth Friday, beyond the window
    assert late not in dates
    ctx = replace(team.herald.ctx, scheduler=QuietScheduler())
    start = threading.Barrier(4)
    results: list[object] = []

    def worker() -> None:
        start.wait()
        results.append(create_occurrence(ctx, series.id or 0, late))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len([r for r in results if r is not None]) == 1 and len(results) == 4
    made = [p for o, p in occurrences(team, template) if o.occurs_at == late]
    assert len(made) == 1 and made[0] is not None and made[0].state == "scheduled"
    with team.herald.db.session() as session:
        assert len(session.exec(select(Post.id).where(Post.due_at == late)).all()) == 1
