"""The scheduler's timers: only posts due within the horizon (a day) hold one; the rest get theirs when the
window job reaches them, from the database, also after a restart. Posts due at the same moment share one
APScheduler job."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from storage.models import Post
from tests.conftest import FakeClock, Team, capturing


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def has_job(team_or_herald: object, post_id: int) -> bool:
    """The post holds a timer: an APScheduler job runs it at its time."""
    herald = getattr(team_or_herald, "herald", team_or_herald)
    scheduler = herald.scheduler  # type: ignore[attr-defined]
    at = scheduler.timed().get(post_id)
    return at is not None and any(job.args == (at,) for job in scheduler.aps.get_jobs())


async def test_a_post_beyond_the_horizon_is_remembered_and_gets_its_job_when_the_window_reaches_it(team: Team) -> None:
    await team.setup_workspace()
    near, far = await team.approved_post("Near"), await team.approved_post("Far")
    await team.say("alice", f"/schedule {near} in 2 hours")
    await team.say("alice", f"/schedule {far} 2026-11-27 10:00")  # 4 days ahead
    assert team.herald.scheduler.armed() == {near: utc(2026, 11, 23, 11, 0), far: utc(2026, 11, 27, 9, 0)}
    assert has_job(team, near) and not has_job(team, far)

    team.clock.advance(days=3, hours=12)  # the far post is now 12 hours ahead: the window job arms it
    assert team.herald.scheduler.rebuild() == 1
    assert has_job(team, far)
    assert team.herald.scheduler.armed()[far] == utc(2026, 11, 27, 9, 0)

    await team.tick(hours=12)
    assert team.post(far).state == "published"


async def test_after_a_restart_only_the_window_is_armed_and_later_posts_follow(
    team: Team, db_url: str, clock: FakeClock
) -> None:
    await team.setup_workspace()
    ids = [await team.approved_post(f"Post {n}") for n in range(2)]
    await team.say("alice", f"/schedule {ids[0]} in 3 hours")
    await team.say("alice", f"/schedule {ids[1]} 2026-11-25 10:00")  # 2 days ahead
    await team.herald.stop()

    herald, _lines = capturing(db_url, clock)
    await herald.start()
    try:
        assert herald.scheduler.armed() == {ids[0]: utc(2026, 11, 23, 12, 0)}
        assert has_job(herald, ids[0]) and not has_job(herald, ids[1])
        clock.advance(days=1, hours=2)
        herald.scheduler.rebuild()
        assert herald.scheduler.armed()[ids[1]] == utc(2026, 11, 25, 9, 0)
        assert has_job(herald, ids[1])
    finally:
        await herald.stop()


async def test_an_unapproved_post_is_armed_at_its_approval_deadline_inside_the_window(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/policy deadline=2h")
    out = await team.say("alice", "/draft Needs approval")
    post_id = int(out.split("#", 1)[1].split(" ", 1)[0].rstrip("."))
    await team.say("alice", f"/submit {post_id}")
    await team.say("alice", f"/schedule {post_id} 2026-11-25 10:00")  # due 09:00 UTC, deadline 07:00 UTC
    team.clock.advance(days=1, hours=8)  # 23 hours before the deadline, 25 before the time
    team.herald.scheduler._armed.clear()  # as after a restart: only the database knows
    team.herald.scheduler.rebuild()
    assert team.herald.scheduler.armed() == {post_id: utc(2026, 11, 25, 7, 0)}


async def test_a_remembered_post_changed_elsewhere_is_forgotten_when_the_window_reaches_it(team: Team) -> None:
    await team.setup_workspace()
    post_id = await team.approved_post()
    await team.say("alice", f"/schedule {post_id} 2026-11-27 10:00")
    with team.herald.db.session() as session:  # another worker cancels it
        session.exec(update(Post).where(Post.id == post_id).values(state="cancelled"))  # type: ignore[call-overload,arg-type]
    team.clock.advance(days=3, hours=12)  # now inside the window
    assert team.herald.scheduler.rebuild() == 0
    assert team.herald.scheduler.armed() == {}
    assert not has_job(team, post_id)


async def test_posts_due_at_the_same_moment_share_one_job_and_all_publish(team: Team) -> None:
    await team.setup_workspace()
    ids = [await team.approved_post(f"Post {n}") for n in range(3)]
    for post_id in ids:
        await team.say("alice", f"/schedule {post_id} in 2 hours")
    other = await team.approved_post("Later")
    await team.say("alice", f"/schedule {other} in 3 hours")
    scheduler = team.herald.scheduler
    post_jobs = [job for job in scheduler.aps.get_jobs() if job.id.startswith("due:")]
    assert len(post_jobs) == 2
    await team.say("alice", f"/cancel {other}")  # its moment had only it: the job goes
    assert len([job for job in scheduler.aps.get_jobs() if job.id.startswith("due:")]) == 1
    await team.say("alice", f"/unschedule {ids[0]}")
    assert set(scheduler.timed()) == {ids[1], ids[2]}

    moment = scheduler.timed()[ids[1]]
    team.clock.advance(hours=2)
    await scheduler._fire(moment)  # what the job does at that moment
    assert scheduler.armed() == {} and scheduler.timed() == {}
    assert [team.post(i).state for i in ids] == ["approved", "published", "published"]
    assert len(team.sandbox_posts()) == 4  # two posts × two accounts, once each


async def test_a_periodic_task_cut_off_by_shutdown_is_not_logged_as_a_failure(
        team: Team, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Herald stopping cancels a periodic task mid-run (e.g. an alert check in a thread): that is not a failure and
    prints no traceback; a task that breaks still does."""
    from handlers.core.commands import PERIODIC, Periodic

    started = asyncio.Event()

    async def long_task(_ctx: object) -> None:
        started.set()
        await asyncio.Event().wait()  # until cancelled

    async def broken_task(_ctx: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setitem(PERIODIC, "long", Periodic("long", timedelta(minutes=5), long_task))
    monkeypatch.setitem(PERIODIC, "broken", Periodic("broken", timedelta(minutes=5), broken_task))
    scheduler = team.herald.scheduler  # type: ignore[attr-defined]
    with caplog.at_level(logging.DEBUG, logger="herald"):
        running = asyncio.create_task(scheduler._periodic("long"))
        await started.wait()
        running.cancel()
        await running  # ends quietly: the cancellation is taken as Herald stopping
        await scheduler._periodic("broken")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == ["periodic task broken failed"]
    assert any(r.getMessage() == "periodic task long stopped with Herald" for r in caplog.records)
