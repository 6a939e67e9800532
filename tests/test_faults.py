"""The network fault matrix, end to end (issue 5, "Network faults").

Each fault the networks issue has a rule for — a timeout, a connection reset, 500/502/503, 429 with
`Retry-After` in seconds or as an HTTP date and 429 without it, 401, a 200 whose body isn't JSON, and a
slow answer that still comes in time — is injected into the one request that creates the post on a
loopback fake of a real network. The post goes the way a team's post goes: drafted, approved and
scheduled in the console chat, then published by the scheduler path (`Team.tick` runs the sweep on the
FakeClock). For each fault the test checks

- the delivery's end state: sent, pending with its retry time, failed with its reason, or unconfirmed;
- the team's chat line for it, with the command that fixes it (or the time it retries by itself);
- how many create requests the fake saw, and how many posts it holds: never a second create for a
  network without an idempotency key once the outcome is unknown, and never a second post anywhere.

Three connectors with three ways to make a resend safe or not: X (no idempotency at all; a lost post is
looked for among the account's own posts), Mastodon (`Idempotency-Key`) and Bluesky (a record key derived from
the delivery, then a read-back).

The timeout is kept short by setting the shared HTTP client's timeout (bot/networks/http.py `TIMEOUT`,
30 s in production) to `CLIENT_TIMEOUT`, not by waiting 30 seconds.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from aiohttp import web
from sqlmodel import select

from handlers.core.when import show_time
from handlers.workspace.health import DEAD
from storage.models import Account, Delivery
from tests.conftest import FakeClock, Team
from tests.fakes.bluesky_api import FakeBluesky
from tests.fakes.loopback import LoopbackServer, Seen
from tests.fakes.mastodon_api import FakeMastodon
from tests.fakes.x_api import FakeX

CLIENT_TIMEOUT = 1.0  # seconds: the shared client's timeout in these tests (production: 30 s)
HELD = CLIENT_TIMEOUT + 1.0  # a held answer comes this late: past the timeout
SLOW = 0.3  # a slow answer that still comes within the timeout
BSKY_PASSWORD = "abcd-efgh-ijkl-mnop"


# -- the fakes: each network's fake, plus a slow answer on its create route ---------------------------------


class SlowX(FakeX):
    slow = 0.0

    async def create(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.slow)
        return await super().create(request)


class SlowMastodon(FakeMastodon):
    slow = 0.0

    async def create(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.slow)
        return await super().create(request)


class SlowBluesky(FakeBluesky):
    slow = 0.0

    async def create_record(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.slow)
        return await super().create_record(request)


def clocked(fake: SlowX, clock: FakeClock) -> SlowX:
    fake.now = clock.now  # the posts it lists carry the test's time
    return fake


@dataclass(frozen=True)
class Net:
    """One connector under test: its fake, the account's /connect line, and how to read the fake."""

    key: str
    account: str
    idempotent: bool  # the network dedupes a resend of the same delivery by itself
    create_path: str
    fake: Callable[[FakeClock], LoopbackServer]
    connect: Callable[[Any], str]
    posts: Callable[[Any], dict[str, str]]  # remote id → text of every post the fake holds
    unauthorized: dict[str, Any]  # the network's own 401 body
    renews_session: bool = False  # a 401 of an expired session is renewed and the call made once more


NETS = {
    "x": Net(
        "x", "acme-x", False, "/2/tweets", lambda clock: clocked(SlowX(), clock),
        lambda f: f"/connect x name=acme-x base_url={f.url} access_token=tok-1",
        lambda f: {tid: t["text"] for tid, t in f.tweets.items()},
        {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"},
    ),
    "mastodon": Net(
        "mastodon", "acme-masto", True, "/api/v1/statuses", lambda clock: SlowMastodon(),
        lambda f: f"/connect mastodon name=acme-masto base_url={f.url} access_token=masto-token",
        lambda f: {sid: s["content"] for sid, s in f.statuses.items()},
        {"error": "The access token is invalid"},
    ),
    "bluesky": Net(
        "bluesky", "acme-bsky", True, "/xrpc/com.atproto.repo.createRecord",
        lambda clock: SlowBluesky(clock.now, password=BSKY_PASSWORD),
        lambda f: f"/connect bluesky name=acme-bsky base_url={f.url} handle=brand.bsky.social "
                  f"app_password={BSKY_PASSWORD}",
        lambda f: {uri: r["text"] for uri, r in f.records.items()},
        {"error": "ExpiredToken", "message": "Token has expired"},
        renews_session=True,
    ),
}


# -- the faults -----------------------------------------------------------------------------------------------


def http_date(seconds_ahead: float) -> str:
    return email.utils.formatdate(time.time() + seconds_ahead, usegmt=True)


@dataclass(frozen=True)
class Fault:
    name: str
    spec: Callable[[Net], dict[str, Any]]  # LoopbackServer.fail() arguments for the create request
    made: bool  # the network made the post before the answer went wrong
    slow: float = 0.0
    # a 429: the wait the network asked for (None: it gave none, Herald's default applies)
    rate_limited: bool = False
    wait: float | None = None
    auth: bool = False
    unknown: bool = False  # the answer never came or was unusable after the request may have made the post
    says: str = ""  # what the team's line says about it when the post didn't go out at once


FAULTS = [
    Fault("timeout", lambda n: {"after": True, "delay": HELD, "status": 200}, made=True, unknown=True,
          says="(ReadTimeout)"),
    Fault("reset", lambda n: {"drop": True}, made=False, unknown=True, says="Server disconnected"),
    Fault("reset after the post was made", lambda n: {"drop": True, "after": True}, made=True, unknown=True,
          says="Server disconnected"),
    Fault("500 after the post was made", lambda n: {"status": 500, "after": True,
                                                   "body": {"error": "Internal Server Error"}},
          made=True, unknown=True, says="500"),
    Fault("502", lambda n: {"status": 502, "body": {"error": "Bad Gateway"}}, made=False, unknown=True,
          says="502"),
    Fault("503", lambda n: {"status": 503, "body": {"error": "Service Unavailable"}}, made=False, unknown=True,
          says="503"),
    Fault("429 Retry-After seconds", lambda n: {"status": 429, "headers": {"Retry-After": "120"},
                                                 "body": {"error": "Too many requests"}},
          made=False, rate_limited=True, wait=120.0, says="says too many requests"),
    Fault("429 Retry-After date", lambda n: {"status": 429, "headers": {"Retry-After": http_date(180)},
                                              "body": {"error": "Too many requests"}},
          made=False, rate_limited=True, wait=180.0, says="says too many requests"),
    Fault("429 without Retry-After", lambda n: {"status": 429, "body": {"error": "Too many requests"}},
          made=False, rate_limited=True, wait=None, says="says too many requests"),
    Fault("401", lambda n: {"status": 401, "body": n.unauthorized}, made=False, auth=True,
          says="refused the credentials"),
    Fault("200 malformed JSON", lambda n: {"status": 200, "after": True, "raw": b"<html>upstream hiccup"},
          made=True, unknown=True, says="answered 200 with something that isn't JSON"),
    Fault("slow answer within the timeout", lambda n: {}, made=False, slow=SLOW),
]

DEFAULT_RATE_LIMIT_WAIT = 60.0  # handlers/posts/publishing/ DEFAULT_RETRY_AFTER
FIRST_TRANSIENT_WAIT = 30.0  # handlers/posts/publishing/: 15 s × 2^attempts after the first attempt


@pytest.fixture(params=list(NETS), ids=list(NETS))
def net(request: pytest.FixtureRequest) -> Net:
    return NETS[request.param]


@pytest.fixture
async def fake(net: Net, clock: FakeClock) -> AsyncIterator[Any]:
    async with net.fake(clock) as server:
        yield server


async def scheduled_post(team: Team, net: Net, fake: Any) -> int:
    """alice connects the account and schedules a post to it in 1 hour; bob approves it. Its number."""
    team.herald.networks.client.timeout = httpx.Timeout(CLIENT_TIMEOUT)  # type: ignore[union-attr]
    await team.say("alice", "/setup Acme")
    await team.say("alice", "/timezone Europe/Paris")
    out = await team.say("alice", net.connect(fake))
    assert out.startswith(f"Connected {net.account} ("), out
    await team.say("alice", "/role bob approver")
    out = await team.say("alice", f"/draft Autumn sale: 20% off all week to={net.account}")
    post_id = int(out.split("#", 1)[1].split(" ", 1)[0].rstrip("."))
    await team.say("alice", f"/submit {post_id}")
    assert "Approved" in await team.say("bob", f"/approve {post_id}")
    assert "is scheduled for" in await team.say("alice", f"/schedule {post_id} in 1 hour")
    return post_id


def delivery_of(team: Team, post_id: int) -> tuple[Delivery, Account]:
    with team.herald.db.session() as session:
        row = session.exec(select(Delivery, Account).where(Delivery.post_id == post_id)
                           .where(Delivery.account_id == Account.id)).one()
        return row


def line_of(out: str, net: Net) -> str:
    found = [line.strip() for line in out.splitlines() if line.strip()[2:].startswith(f"{net.account} (")]
    assert len(found) == 1, f"{net.account}: {found!r} in\n{out}"
    return found[0]


def creates(net: Net, fake: LoopbackServer) -> list[Seen]:
    return fake.requests("POST", net.create_path)


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
async def test_a_fault_on_the_create_request_ends_per_the_rules(team: Team, net: Net, fake: Any, fault: Fault) -> None:
    post_id = await scheduled_post(team, net, fake)
    fake.slow = fault.slow
    spec = fault.spec(net)
    if spec:
        fake.fail("POST", net.create_path, **spec)
    started = time.monotonic()
    out = await team.tick(hours=1)  # the post's time: the scheduler path publishes it
    now = team.clock.now()
    delivery, account = delivery_of(team, post_id)
    line = line_of(out, net)
    who = f"{net.account} ({net.key})"
    first_creates = len(creates(net, fake))
    if not line.startswith("✓"):
        assert fault.says in line, line

    # -- what each connector must do with it -----------------------------------------------------------------
    if fault.slow:
        expect = "sent"
    elif fault.rate_limited:
        expect = "retry"
    elif fault.auth:
        expect = "renewed" if net.renews_session else "failed"
    elif fault.unknown and not net.idempotent and fault.made:
        expect = "sent"  # X: Herald finds the post among the account's own posts, matched by its text
    elif fault.unknown and not net.idempotent:
        expect = "unconfirmed"  # X: not among its posts yet, but a create on its way could still land
    elif fault.unknown and net.key == "bluesky" and fault.made:
        expect = "sent"  # Bluesky reads its record key back and finds the post the lost answer made
    else:
        expect = "retry"  # an idempotent network: a resend is safe, so it retries by itself

    if expect in ("sent", "renewed"):
        assert delivery.state == "sent", (delivery.state, delivery.last_error)
        posts = net.posts(fake)
        assert list(posts) == [delivery.remote_id]
        looked_up = " (its answer was lost; Herald confirmed it with the network)" if net.key == "x" else ""
        assert line == f"✓ {who}: {delivery.remote_url}{looked_up if fault.unknown else ''}"
        assert out.startswith(f"📣 #{post_id} is published on 1 account(s):"), out
        assert first_creates == (2 if expect == "renewed" else 1)
        if expect == "renewed":  # the expired session was renewed once, then the post made once
            assert len(fake.requests("POST", "/xrpc/com.atproto.server.refreshSession")) == 1
        if fault.slow:
            assert time.monotonic() - started >= SLOW  # it really waited for the slow answer
    elif expect == "retry":
        assert delivery.state == "pending"
        assert delivery.error_kind == ("rate_limited" if fault.rate_limited else "transient")
        wait = fault.wait if fault.rate_limited else FIRST_TRANSIENT_WAIT
        if fault.rate_limited and wait is None:
            wait = DEFAULT_RATE_LIMIT_WAIT
        assert wait is not None and delivery.not_before is not None
        # an HTTP date has whole seconds and is read against the wall clock: allow a few seconds of slack
        assert now + timedelta(seconds=wait - 5) <= delivery.not_before <= now + timedelta(seconds=wait)
        assert line == f"⏳ {who}: {delivery.last_error}; retrying by itself at " \
                       f"{show_time(delivery.not_before, 'Europe/Paris')}"
        assert out.startswith(f"⏳ #{post_id}: 0 of 1 sent so far; the rest retry by themselves."), out
        assert first_creates == 1
        assert len(net.posts(fake)) == (1 if fault.made else 0)
        # not before its time…
        assert await team.tick(seconds=wait - 10) == ""
        assert len(creates(net, fake)) == 1
        # …then by itself, once: the network holds one post, the one Herald stored
        out = await team.tick(seconds=20)
        delivery, _ = delivery_of(team, post_id)
        assert delivery.state == "sent", (delivery.state, delivery.last_error)
        assert list(net.posts(fake)) == [delivery.remote_id]
        assert out.startswith(f"📣 #{post_id} is published on 1 account(s):\n  ✓ {who}: "), out
        assert len(creates(net, fake)) == 2
        if net.key == "mastodon":  # the resend carried the same key, so Mastodon answered with the same status
            keys = {seen.header("idempotency-key") for seen in creates(net, fake)}
            assert len(keys) == 1 and None not in keys
    elif expect == "failed":
        assert delivery.state == "failed" and delivery.error_kind == "auth_expired"
        assert line.startswith(f"✗ {who}: {net.key.capitalize() if net.key != 'x' else 'X'} refused the credentials")
        assert line.endswith(f"→ reconnect with /connect {net.key} name={net.account} …, then /retry {post_id}")
        assert f"⚠️ {who} can't post any more:" in out and f"/connect {net.key}" in out
        assert account.health == DEAD  # marked: nothing more is sent with that token
        assert out.count("❌") == 1 and f"❌ #{post_id} didn't publish" in out
        assert first_creates == 1 and net.posts(fake) == {}
    else:  # unconfirmed
        assert delivery.state == "unconfirmed" and delivery.error_kind == "unknown_outcome"
        assert line.startswith(f"? {who}: unconfirmed — ")
        assert line.endswith(f"Check the account: if it's there, /confirm {post_id} {net.account} <link>; "
                             f"if not, /retry {post_id} {net.account}")
        assert delivery.last_error and "may" in delivery.last_error  # it says the post may be there (or may not)
        assert f"❌ #{post_id} didn't publish on any of its 1 account(s)." in out
        assert first_creates == 1
        assert len(net.posts(fake)) == (1 if fault.made else 0)

    # whatever happened, nothing more is sent by itself: hours later the network holds at most one post
    sent_so_far = len(creates(net, fake))
    assert await team.tick(hours=2) == ""
    assert len(creates(net, fake)) == sent_so_far
    assert len(net.posts(fake)) <= 1
    if not net.idempotent and expect == "unconfirmed":
        assert len(creates(net, fake)) == 1  # the outcome was unknown: never a second create
