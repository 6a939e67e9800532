"""Publishing at 9:00 in each audience's own zone: /schedule <post> <when> local [skip=holidays].

Three audiences: south (Europe/Madrid, ES), north (Europe/Oslo, NO), us-east (America/New_York, US), each reached
by its own sandbox account; the team works in Europe/Paris. Audience targeting is built elsewhere: these tests
target the accounts as usual and set each delivery's audience in the database.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import holidays
from sqlmodel import select

from handlers.posts.publishing.due import sweep
from storage.models import Account, Delivery, SandboxPost
from tests.conftest import FakeClock, Team, capturing, refused
from tests.test_threads import approve, mastodon_chain, nets, number_of, workspace  # noqa: F401  (nets: the fake networks' fixture)

ZONES = {"south": ("es", "Europe/Madrid", "ES"), "north": ("no", "Europe/Oslo", "NO"),
         "us-east": ("us", "America/New_York", "US")}


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


async def audience_team(team: Team, zones: dict[str, tuple[str, str, str]] = ZONES, *, account_zones: bool = False) -> int:
    """alice's workspace with one sandbox account per audience (in its audience's zone with `account_zones`),
    and an approved post aimed at all of them."""
    await team.setup_workspace(accounts=tuple(f"{account} like=x" + (f" timezone={tz}" if account_zones else "")
                                              for account, tz, _c in zones.values()))
    for name, (account, tz, country) in zones.items():
        team.add_audience(name, (account,), tz, "en", country=country)
    post_id = await team.approved_post("Winter sale: 20% off today")
    set_audiences(team, post_id)
    return post_id


def set_audiences(team: Team, post_id: int) -> None:
    """Each delivery of the post reaches the audience its account belongs to (what audience targeting will do)."""
    from storage.models import AudienceAccount

    with team.herald.db.session() as session:
        for delivery in session.exec(select(Delivery).where(Delivery.post_id == post_id)).all():
            link = session.exec(select(AudienceAccount).where(AudienceAccount.account_id == delivery.account_id)).first()
            delivery.audience_id = link.audience_id if link is not None else None
        session.commit()


def sent_to(team: Team) -> list[str]:
    """The accounts the sandbox published on, in order."""
    with team.herald.db.session() as session:
        rows = session.exec(select(Account.name).where(SandboxPost.account_id == Account.id)
                            .order_by(SandboxPost.id)).all()
        return list(rows)


def own_times(team: Team, post_id: int) -> dict[str, datetime | None]:
    with team.herald.db.session() as session:
        rows = session.exec(select(Account.name, Delivery.due_at).where(Delivery.account_id == Account.id)
                            .where(Delivery.post_id == post_id)).all()
        return dict(rows)


async def tick_to(team: Team, at: datetime) -> str:
    return await team.tick(seconds=(at - team.clock.now()).total_seconds())


async def test_each_audience_gets_the_post_at_its_own_nine_exactly_once(team: Team) -> None:
    post_id = await audience_team(team)
    out = await team.say("alice", f"/schedule {post_id} tue 9:00 local")
    assert f"🗓 #{post_id} is scheduled for 09:00 in each audience's own zone" in out
    assert "  south: Tue 24 Nov 2026 09:00 CET (Europe/Madrid) — Tue 24 Nov 2026 09:00 CET (Europe/Paris) for the team" in out
    assert "  north: Tue 24 Nov 2026 09:00 CET (Europe/Oslo) — Tue 24 Nov 2026 09:00 CET (Europe/Paris) for the team" in out
    assert "  us-east: Tue 24 Nov 2026 09:00 EST (America/New_York) — Tue 24 Nov 2026 15:00 CET (Europe/Paris) for the team" in out
    assert own_times(team, post_id) == {"es": utc(2026, 11, 24, 8), "no": utc(2026, 11, 24, 8), "us": utc(2026, 11, 24, 14)}
    post = team.post(post_id)
    assert post.due_local == "2026-11-24 09:00" and post.due_at == utc(2026, 11, 24, 8) and post.state == "scheduled"
    assert team.herald.scheduler.armed() == {post_id: utc(2026, 11, 24, 8)}

    await tick_to(team, utc(2026, 11, 24, 7, 59))
    assert sent_to(team) == []
    said = await tick_to(team, utc(2026, 11, 24, 8))
    assert sorted(sent_to(team)) == ["es", "no"]
    assert f"⏳ #{post_id}: 2 of 3 sent so far; the rest go out at their audience's own time." in said
    assert ("⏰ us · us-east (sandbox): goes out at its own time, Tue 24 Nov 2026 09:00 EST (America/New_York), "
            "Tue 24 Nov 2026 15:00 CET (Europe/Paris) for the team") in said
    assert team.post(post_id).state == "publishing"
    assert team.herald.scheduler.armed() == {post_id: utc(2026, 11, 24, 14)}  # re-armed for the next audience

    await tick_to(team, utc(2026, 11, 24, 13, 59))
    assert sorted(sent_to(team)) == ["es", "no"]
    said = await tick_to(team, utc(2026, 11, 24, 14))
    assert f"📣 #{post_id} is published on all 3 account(s)" in said
    await team.tick(hours=2)
    assert sorted(sent_to(team)) == ["es", "no", "us"]  # each exactly once
    assert team.post(post_id).state == "published"


async def test_daylight_saving_moves_each_zone_on_its_own_day(team: Team) -> None:
    zones = {**ZONES, "tokyo": ("jp", "Asia/Tokyo", "JP")}
    post_id = await audience_team(team, zones)
    # Mon 22 Mar 2027: New York is on summer time (since the 2nd Sunday of March), Europe not yet
    await team.say("alice", f"/schedule {post_id} 2027-03-22 09:00 local")
    assert own_times(team, post_id) == {"es": utc(2027, 3, 22, 8), "no": utc(2027, 3, 22, 8),
                                        "us": utc(2027, 3, 22, 13), "jp": utc(2027, 3, 22, 0)}
    # Mon 29 Mar 2027: Europe too (since the last Sunday of March); Tokyo keeps UTC+9 all year
    await team.say("alice", f"/schedule {post_id} 2027-03-29 09:00 local")
    assert own_times(team, post_id) == {"es": utc(2027, 3, 29, 7), "no": utc(2027, 3, 29, 7),
                                        "us": utc(2027, 3, 29, 13), "jp": utc(2027, 3, 29, 0)}
    # Mon 1 Nov 2027: Europe back on winter time (last Sunday of October), New York not yet (first Sunday of November)
    out = await team.say("alice", f"/schedule {post_id} 2027-11-01 09:00 local")
    assert "  us-east: Mon 1 Nov 2027 09:00 EDT (America/New_York) — Mon 1 Nov 2027 14:00 CET (Europe/Paris) for the team" in out
    assert own_times(team, post_id) == {"es": utc(2027, 11, 1, 8), "no": utc(2027, 11, 1, 8),
                                        "us": utc(2027, 11, 1, 13), "jp": utc(2027, 11, 1, 0)}
    # Mon 8 Nov 2027: New York on winter time as well
    await team.say("alice", f"/schedule {post_id} 2027-11-08 09:00 local")
    assert own_times(team, post_id) == {"es": utc(2027, 11, 8, 8), "no": utc(2027, 11, 8, 8),
                                        "us": utc(2027, 11, 8, 14), "jp": utc(2027, 11, 8, 0)}

    # it goes out at those times: Tokyo first, then Europe, then New York
    await team.say("alice", f"/schedule {post_id} 2027-03-29 09:00 local")
    await tick_to(team, utc(2027, 3, 29, 0))
    assert sent_to(team) == ["jp"]
    await tick_to(team, utc(2027, 3, 29, 6, 59))
    assert sent_to(team) == ["jp"]
    await tick_to(team, utc(2027, 3, 29, 7))
    assert sorted(sent_to(team)) == ["es", "jp", "no"]
    await tick_to(team, utc(2027, 3, 29, 13))
    assert sorted(sent_to(team)) == ["es", "jp", "no", "us"]
    assert team.post(post_id).state == "published"


async def test_a_time_the_clocks_skip_in_one_zone_is_refused_and_a_repeated_one_takes_the_first(team: Team) -> None:
    post_id = await audience_team(team)
    await refused(team, "alice", f"/schedule {post_id} 2027-03-28 02:30 local",
                  "For audience south (Europe/Madrid): 02:30 on Sun 28 Mar 2027 doesn't exist in Europe/Madrid",
                  "e.g. 03:30 local", "Nothing was changed")
    await refused(team, "alice", f"/schedule {post_id} 2027-03-14 02:30 local",
                  "For audience us-east (America/New_York)", "doesn't exist")
    out = await team.say("alice", f"/schedule {post_id} 2027-10-31 02:30 local")
    assert ("  south: Sun 31 Oct 2027 02:30 CEST (Europe/Madrid) — Sun 31 Oct 2027 02:30 CEST (Europe/Paris) for the "
            "team (that night the clocks go back and 02:30 happens twice in Europe/Madrid: the first one is taken)") in out
    assert own_times(team, post_id)["es"] == utc(2027, 10, 31, 0, 30)
    assert own_times(team, post_id)["us"] == utc(2027, 10, 31, 6, 30)


async def test_bad_local_times_are_refused_and_change_nothing(team: Team) -> None:
    post_id = await audience_team(team)
    plain = await team.approved_post("No audience here")
    await refused(team, "alice", f"/schedule {plain} tue 9:00 local", f"#{plain} reaches no audience",
                  f"/schedule {plain} 2026-11-24 09:00 Europe/Paris")
    await refused(team, "alice", f"/schedule {post_id} tue 9:00 skip=holidays", "goes with a time in each audience's zone")
    await refused(team, "alice", f"/schedule {post_id} in 2 hours local", "counts from now")
    await refused(team, "alice", f"/schedule {post_id} tue 9:00 Europe/Oslo local", "'local' already means")
    # 09:00 today is past in Madrid and Oslo (10:00 there now), still ahead in New York
    await refused(team, "alice", f"/schedule {post_id} today 9:00 local",
                  "Mon 23 Nov 2026 09:00 has already passed for audience south (Europe/Madrid)")


async def test_a_plain_schedule_clears_the_own_times(team: Team) -> None:
    post_id = await audience_team(team)
    await team.say("alice", f"/schedule {post_id} tue 9:00 local")
    await team.say("alice", f"/schedule {post_id} tue 11:00")
    assert set(own_times(team, post_id).values()) == {None}
    assert team.post(post_id).due_local is None and team.post(post_id).due_at == utc(2026, 11, 24, 10)
    await team.say("alice", f"/schedule {post_id} tue 9:00 local")
    out = await team.say("alice", f"/unschedule {post_id}")
    assert "has no time now" in out
    assert set(own_times(team, post_id).values()) == {None} and team.post(post_id).due_local is None


async def test_queue_shows_one_line_per_audience(team: Team) -> None:
    post_id = await audience_team(team)
    await team.say("alice", f"/schedule {post_id} tue 9:00 local")
    out = await team.say("alice", "/queue")
    lines = [line for line in out.splitlines() if f"#{post_id}" in line]
    assert lines == [
        f"  Tue 24 Nov 2026 09:00 CET (Europe/Oslo) · north · Tue 24 Nov 2026 09:00 CET (Europe/Paris) for the team · "
        f"#{post_id} · no · Winter sale: 20% off today",
        f"  Tue 24 Nov 2026 09:00 CET (Europe/Madrid) · south · Tue 24 Nov 2026 09:00 CET (Europe/Paris) for the team · "
        f"#{post_id} · es · Winter sale: 20% off today",
        f"  Tue 24 Nov 2026 09:00 EST (America/New_York) · us-east · Tue 24 Nov 2026 15:00 CET (Europe/Paris) for the "
        f"team · #{post_id} · us · Winter sale: 20% off today",
    ]
    await tick_to(team, utc(2026, 11, 24, 8))
    out = await team.say("alice", "/queue")
    assert "09:00 CET (Europe/Madrid) ✓ sent · south" in out
    assert "09:00 EST (America/New_York) · us-east" in out and "✓ sent · us-east" not in out


async def test_pause_holds_a_waiting_delivery_and_resume_lets_it_go_within_the_grace_period(team: Team) -> None:
    post_id = await audience_team(team)
    await team.say("alice", f"/schedule {post_id} tue 9:00 local")
    await tick_to(team, utc(2026, 11, 24, 8))
    await team.say("alice", "/pause press statement first")
    await tick_to(team, utc(2026, 11, 24, 14, 10))
    assert sorted(sent_to(team)) == ["es", "no"]  # held by the pause
    await team.say("alice", "/resume")
    assert sorted(sent_to(team)) == ["es", "no", "us"]  # ten minutes late, within the 15-minute grace period
    assert team.post(post_id).state == "published"


async def held_past_grace(team: Team) -> tuple[int, str]:
    """A post out at each audience's 9:00 with Herald paused across us-east's: Madrid and Oslo went, us-east's
    delivery is 30 minutes past its time at /resume (the grace period is 15). The post and /resume's answer."""
    post_id = await audience_team(team)
    await team.say("alice", f"/schedule {post_id} tue 9:00 local")
    await tick_to(team, utc(2026, 11, 24, 8))
    await team.say("alice", "/pause")
    await tick_to(team, utc(2026, 11, 24, 14, 30))
    return post_id, await team.say("alice", "/resume")


async def test_a_delivery_past_the_grace_period_is_held_and_announced(team: Team) -> None:
    post_id, out = await held_past_grace(team)
    assert sorted(sent_to(team)) == ["es", "no"]
    said = "\n".join(team.transcript[-1:]) + out
    assert ("✗ us · us-east (sandbox): it was meant to go out Tue 24 Nov 2026 15:00 CET (Europe/Paris) for us-east "
            "(Tue 24 Nov 2026 09:00 EST (America/New_York)) and couldn't within the 15-minute grace period") in said
    assert f"/held publish {post_id} sends it now · /held drop {post_id} drops it" in said
    assert team.post(post_id).state == "partially_published"
    # /held lists the held delivery with its audience's own time; /held publish sends it, like /retry
    out = await team.say("alice", "/held")
    assert ("⚠️ 1 held delivery(ies), past the grace period after downtime; the rest of each post went or goes on "
            "(times in each audience's zone, else Europe/Paris):") in out, out
    assert f"  #{post_id} · us · us-east · due Tue 24 Nov 2026 09:00 EST (America/New_York) · " in out, out
    out = await team.say("alice", f"/held publish {post_id}")
    assert out.startswith("📣 1 held post(s) are going out now."), out
    assert sorted(sent_to(team)) == ["es", "no", "us"]
    assert team.post(post_id).state == "published"
    assert (await team.say("alice", "/held")).startswith("No posts are held.")


async def test_held_drop_drops_a_held_delivery_and_the_rest_stays_out(team: Team) -> None:
    post_id, _ = await held_past_grace(team)
    out = await team.say("alice", "/held drop 999")
    assert out.startswith("✋ #999 isn't held (there's no such post in this workspace)."), out
    out = await team.say("alice", f"/held drop {post_id}")
    assert out == (f"🗑 Held deliveries dropped; they won't publish: #{post_id} for us · us-east. (/retry would send "
                   "them after all.)"), out
    (us,) = [d for d in team.deliveries(post_id) if d.account_id == account_id(team, "us")]
    assert (us.state, us.error_kind, us.last_error) == ("failed", "cancelled", "held, then dropped by alice")
    assert (await team.say("alice", "/held")).startswith("No posts are held.")
    await team.tick(minutes=30)
    assert sorted(sent_to(team)) == ["es", "no"]  # nothing more went out
    # /retry still sends it after all, as for a cancelled audience
    await team.say("alice", f"/retry {post_id}")
    assert sorted(sent_to(team)) == ["es", "no", "us"]


async def test_crisis_mode_holds_a_waiting_delivery(team: Team) -> None:
    post_id = await audience_team(team)
    await team.say("alice", f"/schedule {post_id} tue 9:00 local")
    await tick_to(team, utc(2026, 11, 24, 8))
    out = await team.say("alice", "/crisis start Reports of a data breach")
    assert ("1 post(s) went out to some audiences and wait for the others' own time: each audience is held when its "
            "time comes.") in out, out
    said = await tick_to(team, utc(2026, 11, 24, 14))
    await team.tick(minutes=5)
    assert sorted(sent_to(team)) == ["es", "no"]  # approved before the crisis: held, and the team told
    assert ("✗ us · us-east (sandbox): due Tue 24 Nov 2026 09:00 EST (America/New_York) for us-east, while crisis "
            "mode is on (since Tue 24 Nov 2026 09:00 CET (Europe/Paris), started by alice: Reports of a data breach), "
            f"so it's held → /held publish {post_id} sends it now · /held drop {post_id} drops it") in said
    assert [d.state for d in team.deliveries(post_id) if d.account_id == account_id(team, "us")] == ["failed"]
    out = await team.say("alice", f"/retry {post_id}")
    assert out.startswith("✋") and "crisis mode is on" in out  # nothing goes out without a new approval
    out = await team.say("alice", f"/held publish {post_id}")
    assert out.startswith("✋ None of them can go out now; they stay held:") and "crisis mode is on" in out, out
    assert f"  #{post_id} · us · us-east · due Tue 24 Nov 2026 09:00 EST" in await team.say("alice", "/held")
    await team.say("alice", "/crisis end")
    await team.say("alice", f"/held publish {post_id}")
    assert sorted(sent_to(team)) == ["es", "no", "us"]


def account_id(team: Team, name: str) -> int:
    with team.herald.db.session() as session:
        return session.exec(select(Account.id).where(Account.name == name)).one() or 0


async def test_cancel_and_unschedule_act_on_the_waiting_deliveries(team: Team) -> None:
    post_id = await audience_team(team)
    await team.say("alice", f"/schedule {post_id} tue 9:00 local")
    await tick_to(team, utc(2026, 11, 24, 8))
    out = await team.say("alice", f"/cancel {post_id}")
    assert f"#{post_id} is already out for some audiences; the rest won't go: us-east: us." in out
    said = await team.tick(seconds=1)
    assert f"⚠️ #{post_id} is partly published: 2 of 3 accounts." in said
    assert "✗ us · us-east (sandbox): cancelled by alice" in said and f"/retry {post_id} sends it after all" in said
    await tick_to(team, utc(2026, 11, 24, 15))
    assert sorted(sent_to(team)) == ["es", "no"]

    other = await team.approved_post("Second")
    set_audiences(team, other)
    await team.say("alice", f"/schedule {other} wed 9:00 local")
    await tick_to(team, utc(2026, 11, 25, 8))
    out = await team.say("alice", f"/unschedule {other}")
    assert "won't go by themselves now (us-east: us)" in out
    await team.tick(seconds=1)
    assert team.post(other).state == "partially_published"


async def test_a_restart_between_two_audiences_sends_the_second_at_its_time(
    team: Team, db_url: str, clock: FakeClock
) -> None:
    post_id = await audience_team(team)
    await team.say("alice", f"/schedule {post_id} tue 9:00 local")
    await tick_to(team, utc(2026, 11, 24, 8))
    await team.herald.stop()
    clock.current = utc(2026, 11, 24, 12)
    herald, lines = capturing(db_url, clock)
    await herald.start()
    try:
        assert herald.scheduler.armed() == {post_id: utc(2026, 11, 24, 14)}
        assert lines == []
        clock.current = utc(2026, 11, 24, 14)
        await sweep(herald.ctx)
        await sweep(herald.ctx)
        assert f"📣 #{post_id} is published on all 3 account(s)" in "\n".join(lines)
    finally:
        await herald.stop()
    assert sorted(sent_to(team)) == ["es", "no", "us"]


async def test_a_restart_past_the_grace_period_holds_the_late_audience(team: Team, db_url: str, clock: FakeClock) -> None:
    post_id = await audience_team(team)
    await team.say("alice", f"/schedule {post_id} tue 9:00 local")
    await tick_to(team, utc(2026, 11, 24, 8))
    await team.herald.stop()
    clock.current = utc(2026, 11, 24, 15)  # down across New York's 09:00
    herald, lines = capturing(db_url, clock)
    await herald.start()
    try:
        said = "\n".join(lines)
        assert f"⚠️ #{post_id} is partly published: 2 of 3 accounts." in said
        assert "for us-east (Tue 24 Nov 2026 09:00 EST (America/New_York)) and couldn't within the 15-minute grace" in said
    finally:
        await herald.stop()
    assert sorted(sent_to(team)) == ["es", "no"]


async def test_skip_holidays_moves_an_audience_off_its_public_holiday(team: Team) -> None:
    name = holidays.country_holidays("ES", years=2026).get(date(2026, 12, 8))
    assert name  # the Immaculate Conception, a public holiday in Spain
    assert holidays.country_holidays("NO", years=2026).get(date(2026, 12, 8)) is None
    post_id = await audience_team(team)
    out = await team.say("alice", f"/schedule {post_id} 2026-12-08 09:00 local skip=holidays")
    assert (f"  south: Wed 9 Dec 2026 09:00 CET (Europe/Madrid) — Wed 9 Dec 2026 09:00 CET (Europe/Paris) for the team "
            f"(moved from Tue 8 Dec: {name}, a public holiday there)") in out
    assert "  north: Tue 8 Dec 2026 09:00 CET (Europe/Oslo)" in out
    assert own_times(team, post_id) == {"es": utc(2026, 12, 9, 8), "no": utc(2026, 12, 8, 8), "us": utc(2026, 12, 8, 14)}
    assert team.post(post_id).due_local == "2026-12-08 09:00"
    # Friday 25 Dec 2026 is Christmas everywhere: each moves to Monday 28 Dec (not the weekend)
    await team.say("alice", f"/schedule {post_id} 2026-12-25 09:00 local skip=holidays")
    assert own_times(team, post_id)["es"] == utc(2026, 12, 28, 8)
    assert own_times(team, post_id)["us"] == utc(2026, 12, 28, 14)
    # without skip=holidays the date stays
    await team.say("alice", f"/schedule {post_id} 2026-12-08 09:00 local")
    assert own_times(team, post_id)["es"] == utc(2026, 12, 8, 8)


async def test_a_crash_while_sending_the_first_audience_loses_nothing_and_sends_nothing_twice(
    db_url: str, clock: FakeClock
) -> None:
    """A post with two due times: the process dies while the first audience's send is in flight. The restart
    finds that send on its network (stored as sent, not sent again), and the second audience still gets the post
    at its own time, once."""
    import asyncio

    from handlers.core.ports import Published
    from tests.networks import RecordingNetwork

    network = RecordingNetwork()
    herald, _ = capturing(db_url, clock, network)
    await herald.start()
    team = Team(herald, clock, db_url)
    await team.setup_workspace(accounts=())
    for name in ("es", "us"):
        await team.say("alice", f"/connect recording name={name}")
    team.add_audience("south", ("es",), "Europe/Madrid", "es", country="ES")
    team.add_audience("us-east", ("us",), "America/New_York", "en", country="US")
    post_id = await team.approved_post()
    set_audiences(team, post_id)
    await team.say("alice", f"/schedule {post_id} tue 9:00 local")

    network.gate = asyncio.Event()  # the first audience's send hangs…
    clock.current = utc(2026, 11, 24, 8)
    running = asyncio.create_task(sweep(herald.ctx))
    await asyncio.wait_for(network.entered.wait(), timeout=5)
    running.cancel()  # …and the process dies in the middle of it
    await asyncio.gather(running, return_exceptions=True)
    await herald.stop()
    assert {d.audience_id is not None and d.state for d in team.deliveries(post_id)} == {"sending", "pending"}
    network.gate = None
    network.lookup = lambda post: Published(remote_id="r1", url="https://recording.invalid/1")  # it did go out

    clock.current = utc(2026, 11, 24, 8, 5)
    herald, lines = capturing(db_url, clock, network)
    await herald.start()
    try:
        said = "\n".join(lines)
        assert f"⏳ #{post_id}: 1 of 2 sent so far; the rest go out at their audience's own time." in said
        assert "es · south (recording): https://recording.invalid/1 (its answer was lost; Herald confirmed it" in said
        assert herald.scheduler.armed() == {post_id: utc(2026, 11, 24, 14)}
        clock.current = utc(2026, 11, 24, 14)
        await sweep(herald.ctx)
        await sweep(herald.ctx)
        assert f"📣 #{post_id} is published on all 2 account(s)" in "\n".join(lines)
    finally:
        await herald.stop()
    assert [name for name, _text in network.calls] == ["es", "us"]  # each audience once
    assert {d.state for d in team.deliveries(post_id)} == {"sent"}


async def test_next_slot_and_next_best_local_are_chosen_per_audience(team: Team) -> None:
    from zoneinfo import ZoneInfo

    post_id = await audience_team(team, account_zones=True)
    await refused(team, "alice", f"/schedule {post_id} next slot local",
                  "None of the accounts of audience south (Europe/Madrid) (es) has posting slots", "/slots es 09:00")
    for account in ("es", "no", "us"):
        await team.say("alice", f"/slots {account} 09:00")
    out = await team.say("alice", f"/schedule {post_id} next slot local")
    assert f"🗓 #{post_id} is scheduled for the next posting slot in each audience's own zone" in out, out
    # 10:00 in Madrid and Oslo now: their 09:00 slot is tomorrow's; New York's is still ahead today
    assert own_times(team, post_id) == {"es": utc(2026, 11, 24, 8), "no": utc(2026, 11, 24, 8),
                                        "us": utc(2026, 11, 23, 14)}
    assert team.post(post_id).due_at == utc(2026, 11, 23, 14)

    out = await team.say("alice", f"/schedule {post_id} next best local")
    assert "in each audience's own zone" in out and "general default best time" in out
    zones = {"es": "Europe/Madrid", "no": "Europe/Oslo", "us": "America/New_York"}
    local_hours = {name: at.astimezone(ZoneInfo(zones[name])).hour
                   for name, at in own_times(team, post_id).items() if at is not None}
    assert len(local_hours) == 3 and len(set(local_hours.values())) == 1  # the same best hour, each in its zone
    await refused(team, "alice", f"/schedule {post_id} next best local skip=holidays", "skip=holidays goes with a day")


async def test_a_thread_part_of_the_first_audience_does_not_wait_for_the_next_audience(
    team: Team, nets: dict[str, Any]  # noqa: F811
) -> None:
    """X refuses the first audience's part 2 for a minute: it goes a minute later, not at New York's 09:00."""
    await workspace(team, nets, "acme-x", "acme-masto")
    team.add_audience("south", ("acme-x",), "Europe/Madrid", "es", country="ES")
    team.add_audience("us-east", ("acme-masto",), "America/New_York", "en", country="US")
    post_id = number_of(await team.say("alice", "/draft First\n---\nSecond"))
    await approve(team, post_id)
    set_audiences(team, post_id)
    await team.say("alice", f"/schedule {post_id} tue 9:00 local")
    nets["x"].refuse_replies = 1
    await tick_to(team, utc(2026, 11, 24, 8))
    assert [t["text"] for t in nets["x"].tweets.values()] == ["First"]
    assert team.herald.scheduler.armed()[post_id] == utc(2026, 11, 24, 8, 1)  # X's minute, before New York's time
    await team.tick(minutes=2)
    assert [t["text"] for t in nets["x"].tweets.values()] == ["First", "Second"]
    assert team.herald.scheduler.armed()[post_id] == utc(2026, 11, 24, 14)
    assert nets["mastodon"].statuses == {}  # New York's time hasn't come
    said = await tick_to(team, utc(2026, 11, 24, 14))
    assert f"📣 #{post_id} is published on all 2 account(s)" in said
    assert [t["text"] for t in nets["x"].tweets.values()] == ["First", "Second"]  # each once
    assert mastodon_chain(nets["mastodon"]) == ["First", "Second"]


async def test_targets_changed_after_a_local_schedule_place_the_new_audience_at_its_own_time(team: Team) -> None:
    post_id = await audience_team(team, {"south": ZONES["south"], "north": ZONES["north"]})
    team.add_audience("us-east", ("es",), "America/New_York", "en", country="US")  # the same account, another audience
    await team.say("alice", f"/schedule {post_id} tue 9:00 local")
    out = await team.say("alice", f"/targets {post_id} audience:south audience:north audience:us-east")
    assert "New targets go out at 09:00 in their own zones, like the others." in out, out
    with team.herald.db.session() as session:
        rows = session.exec(select(Account.name, Delivery.audience_id, Delivery.due_at)
                            .where(Delivery.account_id == Account.id).where(Delivery.post_id == post_id)).all()
    assert sorted((name, due) for name, _audience, due in rows) == [
        ("es", utc(2026, 11, 24, 8)), ("es", utc(2026, 11, 24, 14)), ("no", utc(2026, 11, 24, 8))]
    assert team.post(post_id).due_at == utc(2026, 11, 24, 8)

    out = await team.say("alice", f"/targets {post_id} es no")  # no audience any more: one time for all
    assert "It reaches no audience now, so every account goes out at one time again" in out, out
    assert set(own_times(team, post_id).values()) == {None} and team.post(post_id).due_local is None
