"""Herald's own per-account budgets pace a burst: a send held back waits for its place in the queue,
is not counted as an attempt (so it never fails for being one of many), and the team hears of it once."""

from __future__ import annotations

import httpx
import pytest
from aiolimiter import AsyncLimiter

from bot.networks.http import HttpNetwork
from handlers.core.ports import AccountView, ErrorKind, PublishError
from tests.conftest import Team
from tests.fakes.mastodon_api import FakeMastodon


async def test_each_send_over_the_budget_gets_the_next_free_slot_not_the_same_guess() -> None:
    class Net(HttpNetwork):
        key = "mastodon"
        label = "Mastodon"
        publish_limits = ((2, 60.0),)

    async with httpx.AsyncClient() as client:
        net = Net(client, clock=None)  # type: ignore[arg-type]
        view = AccountView(id=1, workspace_id=1, network="mastodon", name="a", base_url=None, settings={})
        await net.hold_back(view)
        await net.hold_back(view)
        waits = []
        for _ in range(3):
            with pytest.raises(PublishError) as err:
                await net.hold_back(view)
            assert err.value.kind == ErrorKind.RATE_LIMITED and err.value.paced
            assert err.value.retry_after is not None
            waits.append(err.value.retry_after)
        # 2 per minute: one slot every 30 s, each refused send a slot further back
        assert [round(w) for w in waits] == [30, 60, 90]


async def test_a_burst_over_the_budget_waits_its_turn_without_attempts_failures_or_repeated_notices(
    team: Team,
) -> None:
    async with FakeMastodon() as mastodon:
        await team.setup_workspace(accounts=())
        out = await team.say("alice", f"/connect mastodon name=acme-masto base_url={mastodon.url} access_token=masto-token")
        assert out.startswith("Connected acme-masto ("), out
        network = team.herald.networks.get("mastodon")
        assert isinstance(network, HttpNetwork)
        network.publish_limits = ((1, 3600.0),)  # one post an hour for this account: the second must wait
        first, second = await team.approved_post(), await team.approved_post()
        assert "📣" in await team.say("alice", f"/publish {first}")
        out = await team.say("alice", f"/publish {second}")
        assert out.startswith(f"⏳ #{second}: 0 of 1 sent so far; the rest retry by themselves."), out
        assert "Herald paces them rather than be blocked; retrying by itself at Mon 23 Nov 2026 11:00 CET" in out
        for _ in range(8):  # more rounds than MAX_AUTOMATIC_ATTEMPTS: the budget still hasn't room
            # an hour later on Herald's clock, and this hour's budget is spent again by someone else's post
            network._limiters[(1, 0)] = await _spent()  # acme-masto is account 1
            network._next_slot.clear()  # (the queue's promised slots are in real time, which the test doesn't pass)
            said = await team.tick(hours=1, seconds=1)
            assert said == "", said  # waiting again is not news: no notice per round
            (delivery,) = team.deliveries(second)
            assert (delivery.state, delivery.attempts, delivery.auto_attempts) == ("pending", 0, 0)
        network._limiters.clear()  # the budget has room again
        network._next_slot.clear()
        said = await team.tick(hours=1, seconds=1)
        assert f"📣 #{second} is published on 1 account(s)" in said
        assert len(mastodon.requests("POST", "/api/v1/statuses")) == 2


async def _spent() -> AsyncLimiter:
    """The account's hourly budget with this hour's one post already counted."""
    limiter = AsyncLimiter(1, 3600.0)
    await limiter.acquire()
    return limiter
