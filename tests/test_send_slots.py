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
