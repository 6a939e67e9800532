"""Metrics polling at scale: each delivery read once by one of several workers, per-account read budgets, a 429
deferring that account's readings, and the decaying cadence — all through the X and Mastodon fakes on
127.0.0.1, on the FakeClock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import pytest
from sqlmodel import col, select

from bot.networks.x import XNetwork
from handlers.core.ports import ReadBudget
from handlers.engagement import metrics as engagement
from handlers.engagement.metrics import claim_due, poll_metrics
from storage.models import Account, Delivery, MetricSnapshot
from tests.conftest import START, Team, make_herald
from tests.fakes.mastodon_api import FakeMastodon
from tests.fakes.x_api import FakeX


class CountingMastodon(FakeMastodon):
    """FakeMastodon plus the batch read the poll makes (`GET /api/v1/statuses?id[]=…`, Mastodon 4.3+)."""

    def __init__(self) -> None:
        super().__init__()
        from aiohttp import web

        async def statuses(request: web.Request) -> web.Response:
            found = [self.statuses[i] for i in request.query.getall("id[]", []) if i in self.statuses]
            return web.json_response([{"favourites_count": s.get("favourites_count", 0),
                                       "reblogs_count": s.get("reblogs_count", 0),
                                       "replies_count": s.get("replies_count", 0), "id": s["id"], "url": s["url"]}
                                      for s in found])

        self.route("GET", "/api/v1/statuses", statuses)


@dataclass
class Fakes:
    x: FakeX
    mastodon: CountingMastodon


@pytest.fixture
async def fakes() -> AsyncIterator[Fakes]:
    async with AsyncExitStack() as stack:
        x = await stack.enter_async_context(FakeX())
        mastodon = await stack.enter_async_context(CountingMastodon())
        yield Fakes(x, mastodon)


async def connect(team: Team, fakes: Fakes) -> None:
    await team.say("alice", "/setup Acme")
    await team.say("alice", "/timezone Europe/Paris")
    await team.say("alice", "/role bob approver")
    assert "Connected acme-x" in await team.say(
        "alice", f"/connect x name=acme-x base_url={fakes.x.url} access_token=tok-1")
    assert "Connected acme-masto" in await team.say(
        "alice", f"/connect mastodon name=acme-masto base_url={fakes.mastodon.url} access_token=masto-token")


async def publish(team: Team, text: str, to: str) -> int:
    out = await team.say("alice", f"/draft {text} to={to}")
    post_id = int(out.split("#", 1)[1].split(" ", 1)[0].rstrip("."))
    await team.say("alice", f"/submit {post_id}")
    await team.say("bob", f"/approve {post_id}")
    out = await team.say("alice", f"/publish {post_id}")
    assert f"📣 #{post_id} is published" in out, out
    return post_id


def remote_ids(team: Team, account: str) -> dict[int, str]:
    """delivery id → remote id of the account's sent deliveries."""
    with team.herald.db.session() as session:
        rows = session.exec(select(Delivery, Account).where(Delivery.account_id == Account.id)
                            .where(Account.name == account)).all()
        return {d.id or 0: d.remote_id or "" for d, _a in rows}


def snapshots(team: Team) -> list[MetricSnapshot]:
    with team.herald.db.session() as session:
        return list(session.exec(select(MetricSnapshot).order_by(col(MetricSnapshot.id))).all())


def due_times(team: Team, account: str) -> set[datetime | None]:
    with team.herald.db.session() as session:
        return set(session.exec(select(Delivery.metrics_due_at).where(Delivery.account_id == Account.id)
                                .where(Account.name == account)).all())


def ids_asked(fake: FakeX) -> list[str]:
    """Every tweet id the poll asked X for, in order (one GET /2/tweets?ids=… per call)."""
    return [i for seen in fake.requests("GET", "/2/tweets") for i in seen.query["ids"].split(",")]


# --- several workers ------------------------------------------------------------------------------------------


async def test_two_workers_on_one_database_read_each_delivery_once(team: Team, fakes: Fakes, db_url: str) -> None:
    await connect(team, fakes)
    for n in range(5):
        await publish(team, f"Post number {n}", "acme-x")
    tweets = list(fakes.x.tweets)
    for n, tweet in enumerate(tweets):
        fakes.x.engage(tweet, like_count=10 * (n + 1), impression_count=1000 * (n + 1))
    other = make_herald(db_url, team.clock, HERALD_WORKER_ID="second-worker")
    await other.start()
    try:
        team.clock.advance(minutes=5)
        # each worker's round takes at most 3: together they take all five, and no delivery twice
        first, second = await asyncio.gather(poll_metrics(team.herald.ctx, limit=3),
                                             poll_metrics(other.ctx, limit=3))
        assert (first, second) == (3, 2)
        assert await poll_metrics(other.ctx) == 0 and await poll_metrics(team.herald.ctx) == 0
    finally:
        await other.stop()
    assert sorted(ids_asked(fakes.x)) == sorted(tweets)  # every tweet asked for exactly once
    by_remote = {remote: delivery for delivery, remote in remote_ids(team, "acme-x").items()}
    readings = {s.delivery_id: (s.likes, s.impressions) for s in snapshots(team)}
    assert readings == {by_remote[t]: (10 * (n + 1), 1000 * (n + 1)) for n, t in enumerate(tweets)}
    assert due_times(team, "acme-x") == {START + timedelta(minutes=15)}  # 10 minutes after the reading


async def test_a_worker_that_died_mid_round_leaves_its_deliveries_to_another_after_the_lease(
    team: Team, fakes: Fakes, db_url: str
) -> None:
    await connect(team, fakes)
    await publish(team, "One", "acme-x")
    await publish(team, "Two", "acme-x")
    team.clock.advance(minutes=5)
    claimed = claim_due(team.herald.ctx, team.clock.now(), 100)  # claimed, then the worker dies: never read
    assert [len(c.deliveries) for c in claimed] == [2]
    other = make_herald(db_url, team.clock, HERALD_WORKER_ID="second-worker")
    await other.start()
    try:
        assert await poll_metrics(other.ctx) == 0  # leased: not due for anyone
        team.clock.advance(minutes=4, seconds=59)
        assert await poll_metrics(other.ctx) == 0
        team.clock.advance(seconds=1)  # the 5-minute lease is over
        assert await poll_metrics(other.ctx) == 2
    finally:
        await other.stop()
    assert len(fakes.x.requests("GET", "/2/tweets")) == 1
    assert due_times(team, "acme-x") == {START + timedelta(minutes=20)}


# --- rate limits --------------------------------------------------------------------------------------------


async def test_a_429_defers_that_accounts_readings_and_the_other_account_is_read(
    team: Team, fakes: Fakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engagement, "BATCH", 1)  # one tweet per call: a hammering poll would call three times
    await connect(team, fakes)
    for n in range(3):
        await publish(team, f"Tweet {n}", "acme-x")
    await publish(team, "Toot", "acme-masto")
    (status,) = fakes.mastodon.statuses
    fakes.mastodon.statuses[status].update(favourites_count=7, reblogs_count=2, replies_count=1)
    team.clock.advance(minutes=5)
    fakes.x.fail("GET", "/2/tweets", status=429, body={"title": "Too Many Requests", "detail": "Too Many Requests"},
                 headers={"retry-after": "120"})
    assert await poll_metrics(team.herald.ctx) == 1  # the toot
    assert len(fakes.x.requests("GET", "/2/tweets")) == 1  # asked once, told to wait, asked no more
    waited = START + timedelta(minutes=5, seconds=120)
    assert due_times(team, "acme-x") == {waited}
    assert due_times(team, "acme-masto") == {START + timedelta(minutes=15)}
    (toot,) = snapshots(team)
    assert (toot.likes, toot.shares, toot.comments) == (7, 2, 1)

    team.clock.advance(seconds=119)
    assert await poll_metrics(team.herald.ctx) == 0
    assert len(fakes.x.requests("GET", "/2/tweets")) == 1
    team.clock.advance(seconds=1)
    assert await poll_metrics(team.herald.ctx) == 3
    assert len(fakes.x.requests("GET", "/2/tweets")) == 4
    assert due_times(team, "acme-x") == {waited + timedelta(minutes=10)}  # the cadence goes on from there


async def test_a_429_without_a_wait_defers_by_fifteen_minutes(team: Team, fakes: Fakes) -> None:
    await connect(team, fakes)
    await publish(team, "Tweet", "acme-x")
    team.clock.advance(minutes=5)
    fakes.x.fail("GET", "/2/tweets", status=429, body={"title": "Too Many Requests"})
    assert await poll_metrics(team.herald.ctx) == 0
    assert due_times(team, "acme-x") == {START + timedelta(minutes=20)}


async def test_an_accounts_read_budget_is_kept_across_rounds_and_workers(
    team: Team, fakes: Fakes, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(XNetwork, "profile", replace(XNetwork.profile, read_budget=ReadBudget(3, timedelta(minutes=15))))
    await connect(team, fakes)
    for n in range(5):
        await publish(team, f"Post {n}", "acme-x")
    await publish(team, "Toot", "acme-masto")
    team.clock.advance(minutes=5)
    assert await poll_metrics(team.herald.ctx) == 4  # 3 tweets (the budget) + the toot
    assert len(ids_asked(fakes.x)) == 3
    other = make_herald(db_url, team.clock, HERALD_WORKER_ID="second-worker")
    await other.start()
    try:
        team.clock.advance(minutes=1)
        assert await poll_metrics(other.ctx) == 0  # the other worker sees the budget spent
        team.clock.advance(minutes=9)  # the first three are due again (10 minutes), still no budget
        assert await poll_metrics(other.ctx) == 1  # the toot only
        assert len(ids_asked(fakes.x)) == 3
        team.clock.advance(minutes=5, seconds=1)  # 15 minutes after the first readings: budget back
        assert await poll_metrics(other.ctx) == 3
    finally:
        await other.stop()
    asked = ids_asked(fakes.x)
    assert len(asked) == 6
    waited = set(fakes.x.tweets) - set(asked[:3])
    assert len(waited) == 2 and waited < set(asked[3:])  # the two that waited, then one of those due again
    assert len(set(asked[3:]) & set(asked[:3])) == 1


# --- the decaying cadence ---------------------------------------------------------------------------------------


async def test_one_delivery_is_read_on_the_decaying_cadence_for_thirty_days(team: Team, fakes: Fakes) -> None:
    await connect(team, fakes)
    await publish(team, "Long-lived", "acme-x")
    (tweet,) = fakes.x.tweets
    (delivery_id,) = remote_ids(team, "acme-x")
    likes = 0
    while True:
        with team.herald.db.session() as session:
            delivery = session.get(Delivery, delivery_id)
            assert delivery is not None
            due = delivery.metrics_due_at
        if due is None:
            break
        team.clock.current = due
        likes += 1
        fakes.x.engage(tweet, like_count=likes)
        assert await poll_metrics(team.herald.ctx) == 1
    taken = [s.taken_at for s in snapshots(team)]
    assert [s.likes for s in snapshots(team)] == list(range(1, likes + 1))  # every reading stored its numbers
    ages = [t - START for t in taken if t is not None]
    gaps = [later - earlier for earlier, later in zip(ages, ages[1:], strict=False)]
    assert ages[0] == timedelta(minutes=5)
    # while the post is younger than 2 h: every 10 minutes; then hourly to a day, 6-hourly to a week, daily to 30 days
    assert {g for a, g in zip(ages, gaps, strict=False) if a < timedelta(hours=2)} == {timedelta(minutes=10)}
    assert {g for a, g in zip(ages, gaps, strict=False) if timedelta(hours=2) <= a < timedelta(hours=23)} == {
        timedelta(hours=1)}
    assert {g for a, g in zip(ages, gaps, strict=False) if timedelta(days=1) <= a < timedelta(days=6, hours=18)} \
        == {timedelta(hours=6)}
    assert {g for a, g in zip(ages, gaps, strict=False) if timedelta(days=7) <= a < timedelta(days=29)} == {
        timedelta(days=1)}
    assert ages[-1] == timedelta(days=30)  # the last reading, then none
    assert len(ages) == 12 + 22 + 24 + 24
    team.clock.advance(days=3)
    assert await poll_metrics(team.herald.ctx) == 0
    assert len(fakes.x.requests("GET", "/2/tweets")) == len(ages)
