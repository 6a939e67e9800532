"""Sends in flight are capped per network and per process; a delivery waiting for a slot is not claimed yet,
so a crash while it waits leaves it pending (sent later), never unconfirmed."""

from __future__ import annotations

import asyncio

import pytest

import handlers.posts.publishing.send as publishing
from tests.conftest import Team, recording_team


async def test_a_delivery_waiting_for_a_send_slot_stays_pending_until_one_frees(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publishing, "MAX_SENDS_PER_NETWORK", 1)
    network = await recording_team(team, "news", "blog")
    post_id = await team.approved_post()
    network.gate = asyncio.Event()  # the first send hangs on the network
    publishing_now = asyncio.create_task(team.say("alice", f"/publish {post_id}"))
    await asyncio.wait_for(network.entered.wait(), timeout=5)
    for _ in range(50):  # the other delivery gets every chance to start
        await asyncio.sleep(0)
    assert len(network.calls) == 1
    assert sorted(d.state for d in team.deliveries(post_id)) == ["pending", "sending"]
    network.gate.set()
    out = await asyncio.wait_for(publishing_now, timeout=5)
    assert f"#{post_id} is published on all 2 account(s)" in out
    assert sorted(name for name, _text in network.calls) == ["blog", "news"]
    assert [d.state for d in team.deliveries(post_id)] == ["sent", "sent"]


async def test_the_sweep_leaves_a_post_this_process_is_sending_to_the_run_under_way(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A post claimed and waiting for a send slot is publishing with nothing in flight: the sweep used to run it
    a second time beside the first run (at a burst, hundreds of runs that only waited and lost their claims)."""
    from handlers.posts.publishing.due import run_due, sweep

    monkeypatch.setattr(publishing, "MAX_SENDS_PER_NETWORK", 1)
    claims: list[int] = []
    claim = publishing.claim_delivery

    def counted(ctx, delivery_id, text):  # type: ignore[no-untyped-def]
        claims.append(delivery_id)
        return claim(ctx, delivery_id, text)

    monkeypatch.setattr(publishing, "claim_delivery", counted)
    network = await recording_team(team, "news")
    first, second = await team.approved_post("First news"), await team.approved_post("Second news")
    for post in (first, second):
        await team.say("alice", f"/schedule {post} in 1 hour")
    team.clock.advance(hours=1)
    network.gate = asyncio.Event()  # the first send hangs on the network, holding the only slot
    running = [asyncio.create_task(run_due(team.herald.ctx, post)) for post in (first, second)]
    await asyncio.wait_for(network.entered.wait(), timeout=5)
    for _ in range(50):  # the second post gets every chance to be claimed and queue for the slot
        await asyncio.sleep(0)
    assert [d.state for d in team.deliveries(second)] == ["pending"]
    assert team.post(second).state == "publishing"

    # both are this process's runs under way (before, the sweep ran the second again and waited on its slot)
    assert await asyncio.wait_for(sweep(team.herald.ctx), timeout=5) == 0

    network.gate.set()
    await asyncio.wait_for(asyncio.gather(*running), timeout=5)
    assert team.post(first).state == team.post(second).state == "published"
    assert [text for _name, text in network.calls] == ["First news", "Second news"]
    assert len(claims) == 2  # one claim per delivery: no second run lost one beside the first
    assert not team.herald.ctx.sends.running
