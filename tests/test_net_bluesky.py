"""The Bluesky connector against a fake PDS: sessions, the fixed-rkey idempotency, facets, images,
metrics, replies and every kind of failure."""

from __future__ import annotations

import hashlib
import io
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from PIL import Image

from bot.networks.bluesky import BlueskyNetwork, fit_image, make_facets, tid_for
from handlers.core.ports import AccountView, ErrorKind, MediaFile, Outgoing, PublishError
from tests.fakes import kit
from tests.fakes.bluesky_api import DID, TID_RE, FakeBluesky


def png(size: tuple[int, int] = (4, 2)) -> MediaFile:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 120, 240)).save(buf, format="PNG")
    data = buf.getvalue()
    return MediaFile("a.png", "image/png", data, hashlib.sha256(data).hexdigest())


def outgoing(text: str = "Spring sale starts today!", key: str = "herald-d7", **kw: Any) -> Outgoing:
    return Outgoing(delivery_id=7, post_id=3, idempotency_key=key, text=text, **kw)


@pytest.fixture
async def server(clock):
    async with FakeBluesky(clock.now) as srv:
        yield srv


net = kit.network_fixture(BlueskyNetwork)


async def connected(net: BlueskyNetwork, server: FakeBluesky) -> AccountView:
    """The account as Herald stores it after /connect: settings and credentials merged with verify's."""
    base = AccountView(id=1, workspace_id=1, network="bluesky", name="brand", base_url=server.url,
                       settings={"handle": "brand.bsky.social"}, credentials={"app_password": server.password})
    verified = await net.verify(base)
    server.seen.clear()
    return AccountView(id=1, workspace_id=1, network="bluesky", name="brand", base_url=server.url,
                       settings={**base.settings, **verified.settings},
                       credentials={**base.credentials, **verified.credentials})


def with_creds(acc: AccountView, **creds: Any) -> AccountView:
    return AccountView(id=acc.id, workspace_id=1, network="bluesky", name=acc.name, base_url=acc.base_url,
                       settings=acc.settings, credentials={**acc.credentials, **creds})


async def test_verify_creates_a_session_and_keeps_it(net, server):
    acc = AccountView(id=1, workspace_id=1, network="bluesky", name="brand", base_url=server.url,
                      settings={"handle": "@brand.bsky.social"}, credentials={"app_password": server.password})
    verified = await net.verify(acc)
    assert verified.description == f"@brand.bsky.social on Bluesky ({DID})"
    assert verified.settings == {"did": DID, "handle": "brand.bsky.social"}
    assert verified.credentials["access_jwt"] in server.access and verified.credentials["refresh_jwt"] in server.refresh
    assert verified.credentials["expires_at"] == "2026-11-23T11:00:00.000Z"
    sent = server.seen[0]
    assert sent.path == "/xrpc/com.atproto.server.createSession"
    assert sent.json == {"identifier": "brand.bsky.social", "password": "abcd-efgh-ijkl-mnop"}


async def test_verify_of_a_stored_account_checks_its_session(net, server):
    acc = await connected(net, server)
    verified = await net.verify(acc)  # the daily health check
    assert verified.settings == {"did": DID, "handle": "brand.bsky.social"} and verified.credentials == {}
    assert [s.path for s in server.seen] == ["/xrpc/com.atproto.server.getSession"]


async def test_verify_wrong_password(net, server):
    acc = AccountView(id=1, workspace_id=1, network="bluesky", name="brand", base_url=server.url,
                      settings={"handle": "brand.bsky.social"}, credentials={"app_password": "nope"})
    with pytest.raises(PublishError) as err:
        await net.verify(acc)
    assert err.value.kind == ErrorKind.AUTH_EXPIRED and "Invalid identifier or password" in err.value.reason


async def test_verify_needs_a_handle(net, server):
    acc = AccountView(id=1, workspace_id=1, network="bluesky", name="brand", base_url=server.url,
                      settings={}, credentials={"app_password": "x"})
    with pytest.raises(ValueError, match="handle="):
        await net.verify(acc)


def test_tid_is_valid_stable_and_distinct():
    a, b = tid_for("herald-d7"), tid_for("herald-d8")
    assert TID_RE.match(a) and TID_RE.match(b) and a != b and tid_for("herald-d7") == a


async def test_publish_text_uses_the_derived_rkey(net, server, clock):
    acc = await connected(net, server)
    published = await net.publish(acc, outgoing())
    rkey = tid_for("herald-d7")
    assert published.remote_id == f"at://{DID}/app.bsky.feed.post/{rkey}"
    assert published.url == f"https://bsky.app/profile/brand.bsky.social/post/{rkey}"
    sent = server.requests("POST", "/xrpc/com.atproto.repo.createRecord")[0]
    assert sent.header("authorization") == f"Bearer {acc.credentials['access_jwt']}"
    assert sent.json == {"repo": DID, "collection": "app.bsky.feed.post", "rkey": rkey, "record": {
        "$type": "app.bsky.feed.post", "text": "Spring sale starts today!", "createdAt": "2026-11-23T09:00:00.000Z"}}


async def test_a_resend_returns_the_existing_post(net, server):
    acc = await connected(net, server)
    first = await net.publish(acc, outgoing())
    again = await net.publish(acc, outgoing())  # the PDS answers 500 to the duplicate rkey
    assert again == first and len(server.records) == 1
    assert [s.path for s in server.seen][-2:] == ["/xrpc/com.atproto.repo.createRecord",
                                                   "/xrpc/com.atproto.repo.getRecord"]


async def test_a_resend_with_the_explicit_duplicate_error(net, server):
    server.duplicate_error = "RecordAlreadyExists"
    acc = await connected(net, server)
    first = await net.publish(acc, outgoing())
    assert await net.publish(acc, outgoing()) == first and len(server.records) == 1


async def test_a_dropped_answer_is_transient_and_safe_to_retry(net, server):
    acc = await connected(net, server)
    server.fail("POST", "/xrpc/com.atproto.repo.createRecord", drop=True, after=True)
    server.fail("GET", "/xrpc/com.atproto.repo.getRecord", drop=True)  # the check can't tell either
    with pytest.raises(PublishError) as err:
        await net.publish(acc, outgoing())
    assert err.value.kind == ErrorKind.TRANSIENT
    assert (await net.publish(acc, outgoing())).remote_id in server.records and len(server.records) == 1


async def test_dropped_answer_but_the_post_is_there(net, server):
    acc = await connected(net, server)
    server.fail("POST", "/xrpc/com.atproto.repo.createRecord", drop=True, after=True)
    published = await net.publish(acc, outgoing())
    assert published.remote_id in server.records


async def test_5xx_without_a_post_is_transient(net, server):
    acc = await connected(net, server)
    server.fail("POST", "/xrpc/com.atproto.repo.createRecord", status=502, body={"error": "UpstreamFailure"})
    with pytest.raises(PublishError) as err:
        await net.publish(acc, outgoing())
    assert err.value.kind == ErrorKind.TRANSIENT and server.records == {}


async def test_facets_use_utf8_byte_offsets():
    text = "Café ☕ #Sale! https://example.com/a?b=1. #2026 #été"
    facets = make_facets(text)
    raw = text.encode()
    spans = [(raw[f["index"]["byteStart"]:f["index"]["byteEnd"]].decode(), f["features"][0]) for f in facets]
    assert spans == [
        ("#Sale", {"$type": "app.bsky.richtext.facet#tag", "tag": "Sale"}),
        ("https://example.com/a?b=1", {"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com/a?b=1"}),
        ("#été", {"$type": "app.bsky.richtext.facet#tag", "tag": "été"}),
    ]  # "#2026" (digits only) is not a tag


async def test_link_gets_a_facet_and_an_external_card(net, server):
    acc = await connected(net, server)
    text = "Read it: https://example.com/spring"
    await net.publish(acc, outgoing(text, link="https://example.com/spring"))
    record = server.requests("POST", "/xrpc/com.atproto.repo.createRecord")[0].json["record"]
    assert record["facets"] == [{"index": {"byteStart": 9, "byteEnd": 35}, "features": [
        {"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com/spring"}]}]
    assert record["embed"] == {"$type": "app.bsky.embed.external", "external": {
        "uri": "https://example.com/spring", "title": "https://example.com/spring", "description": ""}}


async def test_images_are_uploaded_as_blobs_with_aspect_ratio(net, server):
    acc = await connected(net, server)
    a, b = png((4, 2)), png((3, 3))
    await net.publish(acc, outgoing("Look https://example.com", link="https://example.com", media=(a, b)))
    uploads = server.requests("POST", "/xrpc/com.atproto.repo.uploadBlob")
    assert [u.body for u in uploads] == [a.data, b.data]
    assert uploads[0].content_type == "image/png" and uploads[0].header("authorization").startswith("Bearer ")
    embed = server.requests("POST", "/xrpc/com.atproto.repo.createRecord")[0].json["record"]["embed"]
    assert embed["$type"] == "app.bsky.embed.images"  # images win the embed; the link keeps its facet
    assert [i["aspectRatio"] for i in embed["images"]] == [{"width": 4, "height": 2}, {"width": 3, "height": 3}]
    assert all(i["alt"] == "" and i["image"]["$type"] == "blob" for i in embed["images"])


def test_big_images_are_shrunk_under_1mb():
    noisy = Image.effect_noise((1400, 1400), 90).convert("RGB")
    buf = io.BytesIO()
    noisy.save(buf, format="PNG")
    assert len(buf.getvalue()) > 1_000_000
    data, content_type, size = fit_image(buf.getvalue(), "image/png", "big.png")
    assert len(data) <= 1_000_000 and content_type == "image/jpeg" and size is not None


async def test_failure_after_upload_keeps_the_blobs(net, server, clock):
    acc = await connected(net, server)
    now = int(time.time())
    server.fail("POST", "/xrpc/com.atproto.repo.createRecord", status=429, body={"error": "RateLimitExceeded",
                "message": "Rate Limit Exceeded"}, headers={"ratelimit-limit": "5000", "ratelimit-remaining": "0",
                                                              "ratelimit-reset": str(now + 300)})
    post = outgoing(media=(png(),))
    with pytest.raises(PublishError) as err:
        await net.publish(acc, post)
    assert err.value.kind == ErrorKind.RATE_LIMITED and 290 <= (err.value.retry_after or 0) <= 301
    assert "Rate Limit Exceeded" in err.value.reason
    clock.advance(minutes=5)
    await net.publish(acc, Outgoing(**{**post.__dict__, "resume": err.value.resume}))
    assert len(server.requests("POST", "/xrpc/com.atproto.repo.uploadBlob")) == 1


async def test_expired_access_token_is_renewed_mid_call_and_handed_over_by_refresh(net, server):
    acc = await connected(net, server)
    server.expire_sessions()
    published = await net.publish(acc, outgoing())
    assert published.remote_id in server.records
    assert [s.path for s in server.seen] == ["/xrpc/com.atproto.repo.createRecord",
                                              "/xrpc/com.atproto.server.refreshSession",
                                              "/xrpc/com.atproto.repo.createRecord"]
    server.seen.clear()
    new = await net.refresh(acc)  # not due by the clock, but the renewed session must be stored
    assert new is not None and new["access_jwt"] in server.access and new["refresh_jwt"] in server.refresh
    assert server.seen == [] and await net.refresh(with_creds(acc, **new)) is None


async def test_expired_session_and_dead_password_is_auth_expired(net, server):
    acc = with_creds(await connected(net, server), app_password="revoked")
    server.expire_sessions()
    server.refresh.clear()
    with pytest.raises(PublishError) as err:
        await net.publish(acc, outgoing())
    assert err.value.kind == ErrorKind.AUTH_EXPIRED and "/connect bluesky name=brand" in err.value.reason
    assert server.records == {}


async def test_invalid_record_is_rejected_with_the_reason(net, server):
    acc = await connected(net, server)
    with pytest.raises(PublishError) as err:
        await net.publish(acc, outgoing("x" * 301))
    assert err.value.kind == ErrorKind.REJECTED and "300 graphemes" in err.value.reason


async def test_metrics_in_batches_of_25(net, server):
    acc = await connected(net, server)
    uris = [(await net.publish(acc, outgoing(f"p{n}", key=f"k{n}"))).remote_id for n in range(3)]
    server.counts[uris[0]].update(likeCount=9, repostCount=2, replyCount=4, quoteCount=1)
    ids = uris + [f"at://{DID}/app.bsky.feed.post/3zzzzzzzzzz{n:02d}" for n in range(27)]
    readings = await net.fetch_metrics(acc, ids)
    assert set(readings) == set(uris)
    m = readings[uris[0]]
    assert (m.likes, m.shares, m.comments, m.quotes, m.impressions, m.followers) == (9, 2, 4, 1, None, 321)
    calls = server.requests("GET", "/xrpc/app.bsky.feed.getPosts")
    assert server.batch_sizes == [25, 5]
    assert calls[0].header("authorization") == f"Bearer {acc.credentials['access_jwt']}"


async def test_comments_walk_the_thread(net, server):
    acc = await connected(net, server)
    uri = (await net.publish(acc, outgoing())).remote_id
    first = server.reply(uri, "Love it", handle="ana.bsky.social", created_at="2026-11-23T09:10:00.000Z")
    server.reply(first, "Same!", handle="ben.bsky.social", created_at="2026-11-23T09:20:00.000Z")
    server.reply(uri, "thanks", handle="brand.bsky.social", did=DID, created_at="2026-11-23T09:30:00.000Z")
    server.reply(uri, "hidden", blocked=True)
    server.reply(uri, "old", created_at="2026-11-23T08:00:00.000Z")
    comments = await net.fetch_comments(acc, [uri, f"at://{DID}/app.bsky.feed.post/3zzzzzzzzzzzz"],
                                        datetime(2026, 11, 23, 9, 0, tzinfo=UTC))
    assert [(c.author, c.text, c.parent_remote_id) for c in comments] == [
        ("@ana.bsky.social", "Love it", uri), ("@ben.bsky.social", "Same!", uri)]
    assert comments[0].remote_id == first and comments[0].url.startswith("https://bsky.app/profile/ana.bsky.social/")
    assert server.requests("GET", "/xrpc/app.bsky.feed.getPostThread")[0].query["uri"] == uri


async def test_refresh_not_due(net, server):
    acc = await connected(net, server)
    assert await net.refresh(acc) is None and server.seen == []


async def test_refresh_due_uses_the_refresh_jwt(net, server, clock):
    acc = await connected(net, server)
    clock.advance(minutes=100)
    new = await net.refresh(acc)
    assert new is not None and new["access_jwt"] != acc.credentials["access_jwt"]
    assert new["app_password"] == server.password and new["expires_at"] == "2026-11-23T12:40:00.000Z"
    sent = server.seen[0]
    assert sent.path == "/xrpc/com.atproto.server.refreshSession"
    assert sent.header("authorization") == f"Bearer {acc.credentials['refresh_jwt']}"


async def test_refresh_with_a_dead_refresh_jwt_logs_in_again(net, server, clock):
    acc = await connected(net, server)
    server.refresh.clear()
    clock.advance(hours=3)
    new = await net.refresh(acc)
    assert new is not None and new["access_jwt"] in server.access
    assert [s.path for s in server.seen] == ["/xrpc/com.atproto.server.refreshSession",
                                              "/xrpc/com.atproto.server.createSession"]


async def test_refresh_dead_everything_says_reconnect(net, server, clock):
    acc = with_creds(await connected(net, server), app_password="revoked")
    server.refresh.clear()
    clock.advance(hours=3)
    with pytest.raises(PublishError) as err:
        await net.refresh(acc)
    assert err.value.kind == ErrorKind.AUTH_EXPIRED and "/connect bluesky name=brand" in err.value.reason
