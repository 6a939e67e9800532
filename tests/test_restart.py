"""Stopping and starting Herald on the same database: nothing lost, nothing twice, the grace rule applies."""

from __future__ import annotations

import asyncio

from tests.conftest import FakeClock, Team, capturing
from tests.networks import RecordingNetwork


async def test_posts_scheduled_before_a_restart_publish_once_on_time_or_per_the_grace_rule(
    team: Team, db_url: str, clock: FakeClock
) -> None:
    await team.setup_workspace()
    ids = [await team.approved_post(f"Post {n}") for n in (1, 2, 3)]
    await team.say("alice", f"/schedule {ids[0]} in 1 hour")
    await team.say("alice", f"/schedule {ids[1]} in 2 hours")
    await team.say("alice", f"/schedule {ids[2]} in 3 hours")
    await team.herald.stop()  # Herald goes down…

    clock.advance(hours=2, minutes=5)  # …for two hours: #1 is 65 minutes late, #2 five minutes late
    herald, lines = capturing(db_url, clock)
    await herald.start()
    try:
        said = "\n".join(lines)
        assert f"#{ids[1]} is published on all 2 account(s)" in said
        assert f"⚠️ #{ids[0]} was due Mon 23 Nov 2026 11:00 CET (Europe/Paris), but it couldn't go out within the 15-minute grace period" in said
        assert f"/publish {ids[0]} sends it now · /schedule {ids[0]} <when> moves it · /cancel {ids[0]} drops it" in said
        assert herald.scheduler.armed() == {ids[2]: team.post(ids[2]).due_at}
        assert team.post(ids[0]).state == "scheduled" and team.post(ids[0]).held_note
        queue = await herald.console.say("/queue")
        assert f"#{ids[0]} ⚠ held" in queue

        clock.advance(hours=1)
        from handlers.posts.publishing.due import sweep

        await sweep(herald.ctx)
        assert team.post(ids[2]).state == "published"
        await sweep(herald.ctx)  # the held post stays held: no second notice, no send
        assert team.post(ids[0]).state == "scheduled"
        assert said.count(f"#{ids[0]} was due") == 1

        herald.console.user = "alice"
        out = await herald.console.say(f"/publish {ids[0]}")
        assert f"#{ids[0]} is published on all 2 account(s)" in out
    finally:
        await herald.stop()
    assert len(team.sandbox_posts()) == 6  # three posts × two accounts, each once


async def test_a_restart_with_nothing_due_changes_nothing(team: Team, db_url: str, clock: FakeClock) -> None:
    await team.setup_workspace()
    post_id = await team.approved_post()
    await team.say("alice", f"/schedule {post_id} tomorrow 9am")
    await team.herald.stop()
    herald, lines = capturing(db_url, clock)
    await herald.start()
    try:
        assert lines == []
        assert herald.scheduler.armed() == {post_id: team.post(post_id).due_at}
    finally:
        await herald.stop()


async def test_a_crash_while_sending_leaves_the_delivery_unconfirmed_and_it_is_not_sent_again(
    db_url: str, clock: FakeClock
) -> None:
    network = RecordingNetwork()
    herald, _ = capturing(db_url, clock, network)
    await herald.start()
    team = Team(herald, clock, db_url)
    await team.setup_workspace(accounts=())
    await team.say("alice", "/connect recording name=news")
    post_id = await team.approved_post()
    network.gate = asyncio.Event()  # the network call hangs…
    publishing = asyncio.create_task(team.say("alice", f"/publish {post_id}"))
    await asyncio.wait_for(network.entered.wait(), timeout=5)
    publishing.cancel()  # …and the process dies in the middle of it
    await asyncio.gather(publishing, return_exceptions=True)
    await herald.stop()
    assert [d.state for d in team.deliveries(post_id)] == ["sending"]

    network.gate = None
    herald, lines = capturing(db_url, clock, network)
    await herald.start()
    try:
        said = "\n".join(lines)
        assert f"❌ #{post_id} didn't publish on any of its 1 account(s)." in said
        assert "? news (recording): unconfirmed — Herald stopped while sending it" in said
        assert [d.state for d in team.deliveries(post_id)] == ["unconfirmed"]
        from handlers.posts.publishing.due import sweep

        clock.advance(hours=1)
        await sweep(herald.ctx)
        assert network.count("news") == 1
    finally:
        await herald.stop()


async def test_a_post_due_while_paused_is_held_then_goes_out_on_resume_within_grace(team: Team) -> None:
    await team.setup_workspace()
    post_id = await team.approved_post()
    await team.say("alice", f"/schedule {post_id} in 1 hour")
    await team.say("bob", "/pause Waiting for the press release")
    assert await team.tick(hours=1, minutes=5) == ""
    assert team.sandbox_posts() == []
    out = await team.say("bob", "/resume")
    assert "Publishing resumed by bob" in out
    assert f"#{post_id} is published on all 2 account(s)" in out
    assert len(team.sandbox_posts()) == 2


async def test_a_stop_lets_the_sends_under_way_finish_instead_of_leaving_them_unconfirmed(
    db_url: str, clock: FakeClock
) -> None:
    """A deploy's SIGTERM while a post is going out: the send in flight ends and is stored as sent."""
    network = RecordingNetwork()
    herald, lines = capturing(db_url, clock, network)
    await herald.start()
    team = Team(herald, clock, db_url)
    await team.setup_workspace(accounts=())
    await team.say("alice", "/connect recording name=news")
    post_id = await team.approved_post()
    network.gate = asyncio.Event()  # the network takes its time…
    publishing = asyncio.create_task(team.say("alice", f"/publish {post_id}"))
    await asyncio.wait_for(network.entered.wait(), timeout=5)
    stopping = asyncio.create_task(herald.stop())  # …and Herald is told to stop meanwhile
    await asyncio.sleep(0.2)
    assert not stopping.done()  # it waits for the send
    network.gate.set()
    await asyncio.wait_for(stopping, timeout=5)
    assert (await publishing).startswith(f"📣 #{post_id} is published on 1 account(s)")
    assert [d.state for d in team.deliveries(post_id)] == ["sent"]


async def test_a_stopping_worker_claims_no_new_send_and_the_next_start_sends_it(
    db_url: str, clock: FakeClock
) -> None:
    network = RecordingNetwork()
    herald, _ = capturing(db_url, clock, network)
    await herald.start()
    team = Team(herald, clock, db_url)
    await team.setup_workspace(accounts=())
    await team.say("alice", "/connect recording name=news")
    post_id = await team.approved_post()
    await team.say("alice", f"/schedule {post_id} in 1 hour")
    herald.ctx.sends.stopping = True  # SIGTERM arrived just before the post's time
    assert await team.tick(hours=1) == ""  # nothing claimed, nothing said
    assert network.calls == []
    assert [d.state for d in team.deliveries(post_id)] == ["pending"]
    await herald.stop()

    herald, lines = capturing(db_url, clock, network)
    await herald.start()  # moments later: within the grace period, so it goes out now
    try:
        assert team.post(post_id).state == "published"
        assert len(network.calls) == 1
        assert any(f"📣 #{post_id} is published" in line for line in lines)
    finally:
        await herald.stop()
