"""Nothing lost, nothing twice, under crashes, races, late answers and long pauses (review regressions)."""

from __future__ import annotations

import asyncio

import pytest

import handlers.core.commands as opening  # Request.post_command() reads the post, then its workspace
import handlers.posts.publishing.claims as claims
import handlers.posts.publishing.due as due
import handlers.posts.publishing.send as send
import handlers.posts.publishing.settle as settle
from bot.settings import SettingsError
from handlers.core.chat import Command
from handlers.core.ports import ErrorKind, PublishError
from storage.crypto import SecretBox
from storage.models import Post, PostState
from tests.conftest import FakeClock, Team, capturing, make_herald, recording_team
from tests.networks import RecordingNetwork


async def test_a_crash_between_the_last_answer_and_settling_is_settled_and_reported_after_restart(
    db_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    herald, _ = capturing(db_url, clock)
    await herald.start()
    team = Team(herald, clock, db_url)
    await team.setup_workspace()
    post_id = await team.approved_post()
    await team.say("alice", f"/schedule {post_id} in 1 hour")

    class Killed(BaseException):
        """The process dying here (not an error Herald handles). SystemExit itself would escape the
        sweep's tasks to the event loop (asyncio re-raises it there), past pytest.raises."""

    def dies(*_args: object) -> None:
        raise Killed("killed between the two transactions")

    monkeypatch.setattr(settle, "settle", dies)
    clock.advance(hours=1)
    with pytest.raises(Killed):
        await due.sweep(herald.ctx)
    await herald.stop()
    monkeypatch.undo()
    assert team.post(post_id).state == "publishing"
    assert [d.state for d in team.deliveries(post_id)] == ["sent", "sent"]

    herald, lines = capturing(db_url, clock)
    await herald.start()
    try:
        assert team.post(post_id).state == "published"
        assert f"📣 #{post_id} is published on all 2 account(s)" in "\n".join(lines)
        assert len(team.sandbox_posts()) == 2
    finally:
        await herald.stop()


async def test_unreadable_credentials_fail_that_account_with_the_fix_and_the_rest_still_publish(
    db_url: str, clock: FakeClock
) -> None:
    herald, _ = capturing(db_url, clock)
    await herald.start()
    team = Team(herald, clock, db_url)
    await team.setup_workspace(accounts=("brand-x like=x", "brand-bsky like=bluesky token=abc"))
    post_id = await team.approved_post()
    await team.say("alice", f"/schedule {post_id} in 1 hour")
    await herald.stop()

    herald, lines = capturing(db_url, clock, HERALD_SECRET_KEY=SecretBox.new_key())  # the key was lost
    await herald.start()
    try:
        clock.advance(hours=1)
        await due.sweep(herald.ctx)
        said = "\n".join(lines)
        assert f"#{post_id} is partly published: 1 of 2 accounts." in said
        assert "✗ brand-bsky (sandbox): stored credentials can't be decrypted with this HERALD_SECRET_KEY" in said
        assert "reconnect with /connect sandbox name=brand-bsky" in said
        assert team.post(post_id).state == "partially_published"
    finally:
        await herald.stop()


async def test_an_expired_post_rescheduled_when_no_approval_is_needed_is_scheduled(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/draft Hello world")
    await team.say("alice", "/submit 1")
    await team.say("alice", "/schedule 1 in 1 hour")
    assert "wasn't approved" in await team.tick(hours=1)
    await team.say("alice", "/policy approvals=0")
    out = await team.say("alice", "/schedule 1 in 2 hours")
    assert "Approved and scheduled for" in out
    assert "is published on all 2 account(s)" in await team.tick(hours=2)


async def test_whoever_wrote_the_current_revision_cannot_approve_it(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/role erin editor")
    await team.say("erin", "/draft Our announcement")
    await team.say("erin", "/submit 1")
    await team.say("alice", "/edit 1 Words only alice wrote")
    before = team.snapshot()
    out = await team.say("alice", "/approve 1")
    assert "You wrote the current version of #1" in out
    assert team.snapshot() == before


async def test_a_second_process_with_the_same_worker_id_is_refused(db_url: str, clock: FakeClock) -> None:
    first = make_herald(db_url, clock, HERALD_WORKER_ID="worker-1")
    await first.start()
    try:
        second = make_herald(db_url, clock, HERALD_WORKER_ID="worker-1")
        with pytest.raises(SettingsError, match="HERALD_WORKER_ID: 'worker-1' is already used"):
            await second.start()
        second.scheduler.shutdown()
        third = make_herald(db_url, clock, HERALD_WORKER_ID="worker-2")
        await third.start()
        await third.stop()
    finally:
        await first.stop()


async def test_a_worker_starting_never_takes_over_another_workers_send_in_flight(db_url: str, clock: FakeClock) -> None:
    network = RecordingNetwork()
    a, _ = capturing(db_url, clock, network, HERALD_WORKER_ID="worker-a")
    await a.start()
    team = Team(a, clock, db_url)
    await team.setup_workspace(accounts=())
    await team.say("alice", "/connect recording name=news")
    post_id = await team.approved_post()
    network.gate = asyncio.Event()
    publishing = asyncio.create_task(team.say("alice", f"/publish {post_id}"))
    await asyncio.wait_for(network.entered.wait(), timeout=5)
    b, lines_b = capturing(db_url, clock, network, HERALD_WORKER_ID="worker-b")
    await b.start()
    try:
        assert lines_b == []
        b.console.user = "alice"
        # /retry acts per delivery now (a post still publishing can have a failed account to resend); the one
        # in flight on worker A is refused all the same
        assert f"#{post_id} on news is sending; nothing to retry there." in await b.console.say(f"/retry {post_id} news")
        network.gate.set()
        assert f"#{post_id} is published on 1 account(s)" in await publishing
        assert network.count("news") == 1
    finally:
        await b.stop()
        await a.stop()


async def test_a_late_answer_after_a_send_was_given_up_as_unconfirmed_corrects_the_report(team: Team) -> None:
    network = await recording_team(team, "news")
    post_id = await team.approved_post()
    network.gate = asyncio.Event()
    herald = team.herald
    herald.console.user = "alice"
    task = asyncio.create_task(herald.handle(
        Command("publish", herald.console.actor(), herald.console.chat, text=str(post_id))))
    await asyncio.wait_for(network.entered.wait(), timeout=5)
    out = await team.tick(minutes=11)  # the send is stuck past the 10-minute limit
    assert "? news (recording): unconfirmed" in out
    network.gate.set()
    captured: list[str] = []
    herald.console.captured = captured
    await task
    herald.console.captured = None
    assert f"Update — a late answer arrived.\n📣 #{post_id} is published on 1 account(s)" in "\n".join(captured)
    assert team.post(post_id).state == "published"
    assert network.count("news") == 1


async def test_a_cancel_racing_another_workers_claim_changes_nothing(
    db_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = make_herald(db_url, clock, HERALD_WORKER_ID="worker-a")
    b = make_herald(db_url, clock, HERALD_WORKER_ID="worker-b")
    await a.start()
    await b.start()
    team_a, team_b = Team(a, clock, db_url), Team(b, clock, db_url)
    try:
        await team_a.setup_workspace()
        post_id = await team_a.approved_post()
        await team_a.say("alice", f"/schedule {post_id} in 1 hour")
        clock.advance(hours=1)
        real = opening.get_workspace

        def a_claims_meanwhile(session, ws_id):  # type: ignore[no-untyped-def]
            # worker A's due job runs between worker B's read of the post and B's write
            monkeypatch.setattr(opening, "get_workspace", real)
            with a.ctx.db.session() as other:
                post = other.get(Post, post_id)
                assert post is not None
                due.begin_publishing(a.ctx, other, post, real(other, ws_id), PostState.SCHEDULED, clock.now())
            return real(session, ws_id)

        monkeypatch.setattr(opening, "get_workspace", a_claims_meanwhile)
        out = await team_b.say("alice", f"/cancel {post_id}")
        assert "That post changed at the same moment" in out and "nothing was changed" in out
        assert team_a.post(post_id).state == "publishing"
        await send.send_pending(a.ctx, post_id)
        assert team_a.post(post_id).state == "published"
        assert len(team_a.sandbox_posts()) == 2
    finally:
        await a.stop()
        await b.stop()


async def test_a_held_unapproved_post_can_be_published_as_the_notice_says(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/policy unapproved=publish")
    await team.say("alice", "/draft Hello there")
    await team.say("alice", "/submit 1")
    await team.say("alice", "/schedule 1 in 1 hour")
    out = await team.tick(hours=2)
    assert "/publish 1 sends it now" in out
    out = await team.say("alice", "/publish 1")
    assert "#1 is published on all 2 account(s)" in out
    assert "without approval, as the policy allows" in await team.say("alice", "/history 1")


async def test_a_delivery_waiting_out_a_rate_limit_is_held_after_a_long_pause(team: Team) -> None:
    network = await recording_team(team, "news", "blog")
    post_id = await team.approved_post()
    calls = {"blog": 0}

    def limited_once() -> None:
        calls["blog"] += 1
        if calls["blog"] == 1:
            raise PublishError(ErrorKind.RATE_LIMITED, "429 too many requests", retry_after=60)

    network.behaviour["blog"] = limited_once
    await team.say("alice", f"/publish {post_id}")
    await team.say("bob", "/pause bad news")
    await team.tick(hours=6)
    out = await team.say("bob", "/resume")
    assert "✗ blog (recording): it was meant to go out" in out and "grace period" in out
    assert f"/held publish {post_id} sends it now" in out
    assert network.count("blog") == 1
    assert f"  #{post_id} · blog · due " in await team.say("alice", "/held")
    out = await team.say("alice", f"/retry {post_id}")
    assert f"#{post_id} is published on all 2 account(s)" in out
    assert network.count("blog") == 2


async def test_retry_after_automatic_retries_ran_out_retries_automatically_again(team: Team) -> None:
    network = await recording_team(team, "news")
    post_id = await team.approved_post()

    def always_limited() -> None:
        raise PublishError(ErrorKind.RATE_LIMITED, "429 too many requests", retry_after=60)

    network.behaviour["news"] = always_limited
    await team.say("alice", f"/publish {post_id}")
    for _ in range(6):
        await team.tick(minutes=2)
    assert team.post(post_id).state == "failed"
    assert network.count("news") == claims.MAX_AUTOMATIC_ATTEMPTS
    out = await team.say("alice", f"/retry {post_id}")
    assert "retrying by itself" in out
    network.behaviour.clear()
    assert f"#{post_id} is published on 1 account(s)" in await team.tick(minutes=2)


async def test_a_rejected_account_is_fixed_with_a_variant_approved_again_then_retried(team: Team) -> None:
    network = await recording_team(team, "news", "blog")
    post_id = await team.approved_post()

    def reject() -> None:
        raise PublishError(ErrorKind.REJECTED, "duplicate status")

    network.behaviour["news"] = reject
    out = await team.say("alice", f"/publish {post_id}")
    assert f"/variant {post_id} news <text>, then /retry {post_id}" in out
    network.behaviour.clear()
    out = await team.say("alice", f"/variant {post_id} news A different wording")
    assert f"The new version needs approval before /retry {post_id}." in out
    out = await team.say("alice", f"/retry {post_id}")
    assert "needs approval first" in out
    out = await team.say("bob", f"/approve {post_id}")
    assert f"The new version is approved: /retry {post_id} sends it where it failed." in out
    out = await team.say("alice", f"/retry {post_id}")
    assert f"#{post_id} is published on all 2 account(s)" in out
    assert network.calls[-1] == ("news", "A different wording")
    assert network.count("blog") == 1
