"""Who shared or quoted a post (`fetch_shares`), per network, against the loopback fakes and mastodon-mock: the
documented requests, every page, followers, the quotes' own words and numbers, quotes of quotes one level down,
and a 429 read like the other readers (RATE_LIMITED with the wait the network names)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
from mastodon_mock.testing import MockServer

from bot.networks.bluesky import BlueskyNetwork
from bot.networks.http import new_client
from bot.networks.mastodon import MastodonNetwork
from bot.networks.x import XNetwork
from handlers.core.ports import (
    CANT_TELL,
    AccountView,
    ErrorKind,
    Outgoing,
    PublishError,
    ReplyTarget,
    Share,
    ShareKind,
)
from tests.fakes import kit
from tests.fakes.bluesky_api import FakeBluesky
from tests.fakes.mastodon_api import FakeMastodon
from tests.fakes.x_api import FakeX


def by_handle(shares: list[Share]) -> dict[str, Share]:
    return {s.handle: s for s in shares}


# -- X -----------------------------------------------------------------------------------------------------------

x_server = kit.server_fixture(FakeX)
x_net = kit.network_fixture(XNetwork)


def x_account(server: FakeX) -> AccountView:
    return kit.account("x", server.url, settings={"user_id": server.user["id"], "username": "brand"},
                       credentials={"access_token": "tok-1"})


async def x_post(net: XNetwork, server: FakeX) -> str:
    published = await net.publish(x_account(server), Outgoing(7, 3, "herald-7", "Spring sale starts today!"))
    server.seen.clear()
    return published.remote_id


async def test_x_reads_reposters_and_quotes_every_page_with_followers(x_net, x_server):
    post = await x_post(x_net, x_server)
    x_server.share_page = 2  # pages of two, so three reposters and three quotes take two pages each
    for name, followers in (("ann", 10), ("ben", 20), ("cat", 30)):
        x_server.repost(post, x_server.person(name, followers))
    big = x_server.person("bigaccount", 120_000)
    x_server.quote(post, big, "Is this the refund they promised?", likes=40, created_at="2026-11-23T09:30:00.000Z")
    x_server.quote(post, x_server.person("dan", 5), "nice")
    x_server.quote(post, x_server.person("eve", 7), "ok")
    shares = await x_net.fetch_shares(x_account(x_server), post)
    assert isinstance(shares, list)
    found = by_handle(shares)
    assert {h: (s.kind, s.followers) for h, s in found.items()} == {
        "@ann": (ShareKind.REPOST, 10), "@ben": (ShareKind.REPOST, 20), "@cat": (ShareKind.REPOST, 30),
        "@bigaccount": (ShareKind.QUOTE, 120_000), "@dan": (ShareKind.QUOTE, 5), "@eve": (ShareKind.QUOTE, 7)}
    quote = found["@bigaccount"]
    assert quote.text == "Is this the refund they promised?" and quote.engagement == 40 and quote.who == big
    assert quote.at is not None and quote.at.isoformat() == "2026-11-23T09:30:00+00:00"
    assert quote.url == f"https://x.com/bigaccount/status/{quote.remote_id}" and quote.via == ""
    reposts = x_server.requests("GET", f"/2/tweets/{post}/retweeted_by")
    assert [r.query.get("pagination_token") for r in reposts] == [None, "2"]
    assert reposts[0].query["user.fields"] == "public_metrics,username" and reposts[0].query["max_results"] == "100"
    assert reposts[0].header("authorization") == "Bearer tok-1"
    quotes = x_server.requests("GET", f"/2/tweets/{post}/quote_tweets")
    assert [q.query.get("pagination_token") for q in quotes] == [None, "2"]
    assert quotes[0].query["expansions"] == "author_id" and "public_metrics" in quotes[0].query["tweet.fields"]


async def test_x_reads_quotes_of_quotes_one_level_down(x_net, x_server):
    post = await x_post(x_net, x_server)
    first = x_server.quote(post, x_server.person("mid", 500), "worth a read")
    second = x_server.quote(first, x_server.person("far", 900), "via mid: look")
    x_server.quote(second, x_server.person("farther", 1), "not read: two levels down")
    shares = by_handle(await x_net.fetch_shares(x_account(x_server), post))  # type: ignore[arg-type]
    assert set(shares) == {"@mid", "@far"}
    assert shares["@far"].via == first and shares["@mid"].via == ""
    assert len(x_server.requests("GET", f"/2/tweets/{second}/quote_tweets")) == 0


async def test_x_leaves_out_the_brand_itself(x_net, x_server):
    post = await x_post(x_net, x_server)
    x_server.users[x_server.user["id"]] = {**x_server.user}
    x_server.repost(post, x_server.user["id"])
    assert await x_net.fetch_shares(x_account(x_server), post) == []


async def test_x_429_is_rate_limited_with_the_reset(x_net, x_server):
    post = await x_post(x_net, x_server)
    reset = str(int(time.time()) + 120)
    x_server.fail("GET", f"/2/tweets/{post}/retweeted_by", status=429,
                  headers={"x-rate-limit-remaining": "0", "x-rate-limit-reset": reset},
                  body={"title": "Too Many Requests", "detail": "Too Many Requests", "status": 429})
    with pytest.raises(PublishError) as err:
        await x_net.fetch_shares(x_account(x_server), post)
    assert err.value.kind == ErrorKind.RATE_LIMITED and 100 <= (err.value.retry_after or 0) <= 121


async def test_x_refusing_the_lists_means_it_cant_tell(x_net, x_server):
    post = await x_post(x_net, x_server)
    x_server.fail("GET", f"/2/tweets/{post}/retweeted_by", status=403,
                  body={"title": "Client Forbidden", "detail": "This endpoint requires a higher access tier"})
    assert await x_net.fetch_shares(x_account(x_server), post) is CANT_TELL


# -- Bluesky -----------------------------------------------------------------------------------------------------


@pytest.fixture
async def bsky(clock):
    async with FakeBluesky(clock.now) as srv:
        yield srv


bsky_net = kit.network_fixture(BlueskyNetwork)


async def bsky_post(net: BlueskyNetwork, server: FakeBluesky) -> tuple[AccountView, str]:
    base = AccountView(id=1, workspace_id=1, network="bluesky", name="brand", base_url=server.url,
                       settings={"handle": "brand.bsky.social"}, credentials={"app_password": server.password})
    verified = await net.verify(base)
    acc = AccountView(id=1, workspace_id=1, network="bluesky", name="brand", base_url=server.url,
                      settings={**base.settings, **verified.settings},
                      credentials={**base.credentials, **verified.credentials})
    published = await net.publish(acc, Outgoing(7, 3, "herald-7", "Spring sale starts today!"))
    server.seen.clear()
    return acc, published.remote_id


async def test_bluesky_reads_reposters_and_quotes_with_followers_from_getprofiles(bsky_net, bsky):
    acc, uri = await bsky_post(bsky_net, bsky)
    bsky.share_page = 2
    for name, followers in (("ann.bsky.social", 10), ("ben.bsky.social", 20), ("cat.bsky.social", 30)):
        bsky.repost(uri, bsky.person(name, followers))
    big = bsky.person("big.bsky.social", 120_000)
    quote = bsky.quote(uri, big, "Love this launch", likes=12)
    shares = await bsky_net.fetch_shares(acc, uri)
    assert isinstance(shares, list)
    found = by_handle(shares)
    assert {h: (s.kind, s.followers) for h, s in found.items()} == {
        "@ann.bsky.social": (ShareKind.REPOST, 10), "@ben.bsky.social": (ShareKind.REPOST, 20),
        "@cat.bsky.social": (ShareKind.REPOST, 30), "@big.bsky.social": (ShareKind.QUOTE, 120_000)}
    big_share = found["@big.bsky.social"]
    assert (big_share.remote_id, big_share.text, big_share.engagement, big_share.who) == (quote, "Love this launch",
                                                                                         12, big)
    assert big_share.url == f"https://bsky.app/profile/big.bsky.social/post/{quote.rsplit('/', 1)[-1]}"
    pages = bsky.requests("GET", "/xrpc/app.bsky.feed.getRepostedBy")
    assert [p.query.get("cursor") for p in pages] == [None, "2"] and pages[0].query["uri"] == uri
    assert pages[0].query["limit"] == "100"
    profiles = bsky.requests("GET", "/xrpc/app.bsky.actor.getProfiles")
    assert len(profiles) == 1 and profiles[0].header("authorization", ).startswith("Bearer ")


async def test_bluesky_quotes_of_quotes_and_many_profiles(bsky_net, bsky):
    acc, uri = await bsky_post(bsky_net, bsky)
    first = bsky.quote(uri, bsky.person("mid.bsky.social", 500), "worth a read")
    bsky.quote(first, bsky.person("far.bsky.social", 900), "look")
    for n in range(30):  # 31 people: two getProfiles calls (25 actors each at most)
        bsky.repost(uri, bsky.person(f"p{n}.bsky.social", n))
    shares = by_handle(await bsky_net.fetch_shares(acc, uri))  # type: ignore[arg-type]
    assert shares["@far.bsky.social"].via == first and shares["@far.bsky.social"].followers == 900
    assert shares["@p29.bsky.social"].followers == 29
    assert len(bsky.requests("GET", "/xrpc/app.bsky.actor.getProfiles")) == 2


async def test_bluesky_429_is_rate_limited_with_the_reset(bsky_net, bsky):
    acc, uri = await bsky_post(bsky_net, bsky)
    bsky.fail("GET", "/xrpc/app.bsky.feed.getQuotes", status=429, headers={"ratelimit-remaining": "0",
                                                                          "retry-after": "42"},
              body={"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"})
    with pytest.raises(PublishError) as err:
        await bsky_net.fetch_shares(acc, uri)
    assert err.value.kind == ErrorKind.RATE_LIMITED and err.value.retry_after == 42


# -- Mastodon: mastodon-mock -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mock():
    with MockServer() as server:
        yield server


@pytest.fixture
async def client(mock):
    http = new_client()
    await http.delete(f"{mock.base_url}/api/v1/_mock/faults")
    yield http
    await http.aclose()


@pytest.fixture
def masto(client, clock) -> MastodonNetwork:
    return MastodonNetwork(client, clock)


def masto_account(base: str, token: str = "alice_token", **settings: Any) -> AccountView:
    return kit.account("mastodon", base, settings=settings, credentials={"access_token": token})


async def as_user(client: httpx.AsyncClient, mock: MockServer, user: str, method: str, path: str, **kw: Any) -> Any:
    response = await client.request(method, f"{mock.base_url}{path}", headers={"Authorization": f"Bearer {user}_token"},
                                    **kw)
    response.raise_for_status()
    return response.json()


async def test_mastodon_mock_boosts_and_quotes_pages_and_quotes_of_quotes(masto, mock, client):
    acc = masto_account(mock.base_url)
    status = await masto.publish(acc, Outgoing(7, 3, f"herald-{uuid.uuid4().hex}", f"Sale {uuid.uuid4().hex[:6]}"))
    await as_user(client, mock, "bob", "POST", f"/api/v1/statuses/{status.remote_id}/reblog")
    first = await as_user(client, mock, "bob", "POST", "/api/v1/statuses",
                          json={"status": "Great news, thanks!", "quoted_status_id": status.remote_id})
    await as_user(client, mock, "carol", "POST", "/api/v1/statuses",
                  json={"status": "Refund when?", "quoted_status_id": status.remote_id})
    await as_user(client, mock, "alice", "POST", "/api/v1/statuses",  # the brand quoting itself: left out
                  json={"status": "Our own words", "quoted_status_id": status.remote_id})
    second = await as_user(client, mock, "carol", "POST", "/api/v1/statuses",
                           json={"status": "Agreed with bob", "quoted_status_id": first["id"]})
    await as_user(client, mock, "carol", "POST", f"/api/v1/accounts/{first['account']['id']}/follow")
    me = await as_user(client, mock, "alice", "GET", "/api/v1/accounts/verify_credentials")
    masto.quotes_page = 2  # two quotes a page: the Link header's next page is followed
    shares = await masto.fetch_shares(masto_account(mock.base_url, account_id=me["id"]), status.remote_id)
    assert isinstance(shares, list)
    kinds = sorted((s.kind.value, s.handle, s.text, s.via) for s in shares)
    assert kinds == [("quote", "@bob", "Great news, thanks!", ""), ("quote", "@carol", "Agreed with bob", first["id"]),
                     ("quote", "@carol", "Refund when?", ""), ("repost", "@bob", "", "")]
    bob = next(s for s in shares if s.kind == ShareKind.QUOTE and s.handle == "@bob")
    bob_now = await as_user(client, mock, "alice", "GET", f"/api/v1/accounts/{first['account']['id']}")
    assert bob.followers == bob_now["followers_count"] >= 1  # carol follows bob
    assert bob.remote_id == first["id"] and bob.url == first["url"] and bob.at is not None
    assert bob.engagement == 0 and second["quote"]


async def test_mastodon_mock_429_is_rate_limited_with_the_reset(masto, mock, client):
    acc = masto_account(mock.base_url)
    status = await masto.publish(acc, Outgoing(7, 3, f"herald-{uuid.uuid4().hex}", f"Sale {uuid.uuid4().hex[:6]}"))
    response = await client.post(f"{mock.base_url}/api/v1/_mock/faults", json={
        "match": {"methods": ["GET"], "path": f"/api/v1/statuses/{status.remote_id}/reblogged_by"},
        "effect": {"type": "ratelimit", "headers": {"Retry-After": "90"}}, "count": 1})
    response.raise_for_status()
    with pytest.raises(PublishError) as err:
        await masto.fetch_shares(acc, status.remote_id)
    assert err.value.kind == ErrorKind.RATE_LIMITED and err.value.retry_after == 90


# -- Mastodon: an instance before quote posts, whose boosts take several pages ------------------------------------


@pytest.fixture
async def old_instance():
    async with FakeMastodon() as srv:
        yield srv


async def test_mastodon_without_quotes_pages_boosts_by_the_link_header(masto, old_instance):
    acc = AccountView(id=1, workspace_id=1, network="mastodon", name="brand", base_url=old_instance.url,
                      settings={}, credentials={"access_token": "masto-token"})
    status = await masto.publish(acc, Outgoing(7, 3, "herald-7", "Spring sale"))
    for n in range(3):
        old_instance.boost(status.remote_id, f"fan{n}@other.social", 100 * n)
    masto.share_page = 2
    shares = await masto.fetch_shares(acc, status.remote_id)
    assert isinstance(shares, list)
    assert sorted((s.handle, s.followers) for s in shares) == [("@fan0@other.social", 0), ("@fan1@other.social", 100),
                                                               ("@fan2@other.social", 200)]
    pages = old_instance.requests("GET", f"/api/v1/statuses/{status.remote_id}/reblogged_by")
    assert len(pages) == 2 and pages[0].query["limit"] == "2" and pages[1].query.get("max_id")
    assert len(old_instance.requests("GET", f"/api/v1/statuses/{status.remote_id}/quotes")) == 1
    await masto.fetch_shares(acc, status.remote_id)  # the instance has no quotes: not asked again
    assert len(old_instance.requests("GET", f"/api/v1/statuses/{status.remote_id}/quotes")) == 1


async def test_bluesky_a_reply_to_a_quote_is_rooted_at_the_quote(bsky_net, bsky):
    """The spread alert's Reply answers a quote: a post of its own, so the reply's root and parent are the quote."""
    acc, uri = await bsky_post(bsky_net, bsky)
    quote = bsky.quote(uri, bsky.person("big.bsky.social", 120_000), "Hm")
    await bsky_net.reply(acc, ReplyTarget(comment_id=quote, post_id=uri, author="@big.bsky.social",
                                          idempotency_key="herald-reply-1"), "Thanks!")
    record = bsky.requests("POST", "/xrpc/com.atproto.repo.createRecord")[-1].json["record"]
    assert record["reply"]["root"]["uri"] == quote and record["reply"]["parent"]["uri"] == quote
