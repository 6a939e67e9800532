"""The shared HTTP connector base: how each failure of a request is classified."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from aiohttp import web

from bot.networks.http import HttpNetwork, new_client, seconds_until
from handlers.core.ports import AccountView, ConnectSpec, ErrorKind, PublishError
from tests.conftest import FakeClock
from tests.fakes.loopback import LoopbackServer


class Demo(HttpNetwork):
    key = "mastodon"
    label = "Demo"
    connect_spec = ConnectSpec(required=())
    default_base_url = "http://127.0.0.1:9"
    publish_limits = ((2, 60.0),)


def account(base: str) -> AccountView:
    return AccountView(id=1, workspace_id=1, network="mastodon", name="brand", base_url=base, settings={})


async def ok(request: web.Request) -> web.Response:
    return web.json_response({"id": "1"})


@pytest.fixture
async def server():
    async with LoopbackServer() as srv:
        srv.route("POST", "/post", ok)
        yield srv


@pytest.fixture
async def net():
    client = new_client()
    yield Demo(client, FakeClock())
    await client.aclose()


async def call(net: Demo, srv: LoopbackServer, **kwargs: Any) -> Any:
    return await net.call("POST", f"{srv.url}/post", json={"text": "hi"}, **kwargs)


async def test_success_returns_json_and_the_server_saw_the_body(net, server):
    assert await call(net, server, sending=True) == {"id": "1"}
    assert server.seen[0].json == {"text": "hi"}
    assert server.seen[0].header("user-agent").startswith("Herald/")


async def test_connection_refused_is_transient(net):
    with pytest.raises(PublishError) as err:
        await net.call("POST", "http://127.0.0.1:9/post", sending=True)
    assert err.value.kind == ErrorKind.TRANSIENT and "nothing was sent" in err.value.reason


@pytest.mark.parametrize("sending, kind", [(True, ErrorKind.UNKNOWN_OUTCOME), (False, ErrorKind.TRANSIENT)])
async def test_dropped_connection_after_sending(net, server, sending, kind):
    server.fail("POST", "/post", drop=True)
    with pytest.raises(PublishError) as err:
        await call(net, server, sending=sending)
    assert err.value.kind == kind


async def test_idempotent_network_may_retry_a_dropped_send(net, server):
    net.idempotent = True  # type: ignore[misc]
    server.fail("POST", "/post", drop=True)
    with pytest.raises(PublishError) as err:
        await call(net, server, sending=True)
    assert err.value.kind == ErrorKind.TRANSIENT


async def test_read_timeout_is_unknown_outcome(server):
    client = httpx.AsyncClient(timeout=httpx.Timeout(0.2))
    server.fail("POST", "/post", delay=1.0)
    with pytest.raises(PublishError) as err:
        await call(Demo(client, FakeClock()), server, sending=True)
    await client.aclose()
    assert err.value.kind == ErrorKind.UNKNOWN_OUTCOME


@pytest.mark.parametrize("headers, wait", [({"Retry-After": "30"}, 30.0), ({}, None)])
async def test_429_is_rate_limited_with_the_wait(net, server, headers, wait):
    server.fail("POST", "/post", status=429, headers=headers, body={"error": "Too many requests"})
    with pytest.raises(PublishError) as err:
        await call(net, server, sending=True)
    assert err.value.kind == ErrorKind.RATE_LIMITED and err.value.retry_after == wait
    assert "Too many requests" in err.value.reason


@pytest.mark.parametrize("status, kind", [(401, ErrorKind.AUTH_EXPIRED), (422, ErrorKind.REJECTED),
                                          (500, ErrorKind.UNKNOWN_OUTCOME), (503, ErrorKind.UNKNOWN_OUTCOME)])
async def test_status_classification_for_a_send(net, server, status, kind):
    server.fail("POST", "/post", status=status, body={"error": "Text character limit of 500 exceeded"})
    with pytest.raises(PublishError) as err:
        await call(net, server, sending=True)
    assert err.value.kind == kind
    assert "Text character limit of 500 exceeded" in err.value.reason


async def test_5xx_on_a_read_is_transient(net, server):
    server.fail("POST", "/post", status=502, body={"error": "bad gateway"})
    with pytest.raises(PublishError) as err:
        await call(net, server, sending=False)
    assert err.value.kind == ErrorKind.TRANSIENT


async def test_malformed_json_on_success(net, server):
    server.fail("POST", "/post", status=200, raw=b"<html>oops")
    with pytest.raises(PublishError) as err:
        await call(net, server, sending=True)
    assert err.value.kind == ErrorKind.UNKNOWN_OUTCOME


async def test_up_front_rate_limit_holds_back_the_third_post(net):
    view = account("http://127.0.0.1:9")
    await net.hold_back(view)
    await net.hold_back(view)
    with pytest.raises(PublishError) as err:
        await net.hold_back(view)
    assert err.value.kind == ErrorKind.RATE_LIMITED and err.value.retry_after == 30.0
    assert "2 posts per 1 minutes" in err.value.reason
    other = AccountView(id=2, workspace_id=1, network="mastodon", name="b", base_url=None, settings={})
    await net.hold_back(other)  # budgets are per account


def test_seconds_until_reads_every_header_form():
    assert seconds_until("12") == 12.0
    assert seconds_until("2000000100", now=2000000000) == 100.0
    assert seconds_until("Wed, 18 May 2033 03:33:40 GMT", now=2000000000) == 20.0
    assert seconds_until("2033-05-18T03:33:40.000Z", now=2000000000) == 20.0
    assert seconds_until("soon") is None and seconds_until(None) is None


async def test_loopback_is_real_http(server):
    await asyncio.sleep(0)
    assert server.url.startswith("http://127.0.0.1:")


@pytest.mark.parametrize("key, url, expected", [
    ("x", "https://x.com/acme/status/1790000000000000001?s=20", "1790000000000000001"),
    ("mastodon", "https://mastodon.social/@acme/113456789012345678", "113456789012345678"),
    ("linkedin", "https://www.linkedin.com/feed/update/urn:li:share:7250000000000000000/", "urn:li:share:7250000000000000000"),
    ("pinterest", "https://www.pinterest.com/pin/987654321012345/", "987654321012345"),
    ("youtube", "https://www.youtube.com/watch?v=dQw4w9WgXcQ", "dQw4w9WgXcQ"),
    ("youtube", "https://youtu.be/dQw4w9WgXcQ", "dQw4w9WgXcQ"),
    ("discord", "https://discord.com/channels/1/2/1234567890", "1234567890"),
    ("telegram", "https://t.me/acme_news/42", "42"),
    ("tiktok", "https://www.tiktok.com/@acme/video/7300000000000000000", "7300000000000000000"),
    ("bluesky", "https://bsky.app/profile/acme.bsky.social/post/3kabcdefghij2", "at://did:plc:abc/app.bsky.feed.post/3kabcdefghij2"),
    ("x", "https://example.com/not-a-post", None),
    ("facebook", "https://www.facebook.com/acme/posts/pfbid0abc", None),
])
async def test_a_posts_id_is_read_from_its_public_link_for_confirm(key, url, expected):
    from bot.networks import build_networks
    from storage.db import Database

    client = new_client()
    directory = build_networks(Database("sqlite://"), FakeClock(), client)
    view = AccountView(id=1, workspace_id=1, network=key, name="brand", base_url=None, settings={"did": "did:plc:abc"})
    assert directory.get(key).remote_id_from_url(view, url) == expected  # type: ignore[union-attr]
    await client.aclose()
