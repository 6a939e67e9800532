"""The X connector against a fake X API v2: what it sends, and how it reads every answer."""

from __future__ import annotations

import base64
import hashlib
import io
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from PIL import Image

from bot.networks.x import XNetwork
from handlers.core.ports import (
    CANT_TELL,
    AccountView,
    ErrorKind,
    MediaFile,
    Outgoing,
    Published,
    PublishError,
)
from tests.fakes import kit
from tests.fakes.x_api import FakeX


def png() -> MediaFile:
    buf = io.BytesIO()
    Image.new("RGB", (2, 2), (200, 30, 30)).save(buf, format="PNG")
    data = buf.getvalue()
    return MediaFile("a.png", "image/png", data, hashlib.sha256(data).hexdigest())


def account(server: FakeX, **creds: Any) -> AccountView:
    return kit.account("x", server.url,
                       settings={"user_id": "2244994945", "username": "brand", "client_id": "cid"},
                       credentials={"access_token": "tok-1", **creds})


def outgoing(text: str = "Spring sale starts today!", **kw: Any) -> Outgoing:
    return Outgoing(delivery_id=7, post_id=3, idempotency_key="herald-7", text=text, **kw)


server = kit.server_fixture(FakeX)


net = kit.network_fixture(XNetwork)


async def test_verify_refreshes_then_names_the_account(net, server, clock):
    verified = await net.verify(account(server, refresh_token="rt-1"))
    assert verified.description == "@brand on X (id 2244994945)"
    assert verified.settings == {"user_id": "2244994945", "username": "brand"}
    assert verified.credentials["access_token"] == "tok-2" and verified.credentials["refresh_token"] == "rt-2"
    assert verified.credentials["expires_at"] == "2026-11-23T11:00:00Z"
    token_call, me = server.seen
    assert token_call.path == "/2/oauth2/token" and token_call.form["grant_type"] == "refresh_token"
    assert me.path == "/2/users/me" and me.header("authorization") == "Bearer tok-2"


async def test_verify_with_a_bare_token(net, server):
    verified = await net.verify(account(server))
    assert verified.credentials == {} and verified.settings["username"] == "brand"
    assert server.seen[0].header("authorization") == "Bearer tok-1"


async def test_verify_of_a_stored_account_does_not_rotate_tokens(net, server):
    verified = await net.verify(account(server, refresh_token="rt-1", expires_at="2026-11-23T10:30:00Z"))
    assert verified.credentials == {} and [s.path for s in server.seen] == ["/2/users/me"]


async def test_verify_wrong_token_is_auth_expired(net, server):
    with pytest.raises(PublishError) as err:
        await net.verify(account(server, access_token="nope"))
    assert err.value.kind == ErrorKind.AUTH_EXPIRED


async def test_verify_refresh_token_without_client_id_is_a_bad_setting(net, server):
    acc = AccountView(id=1, workspace_id=1, network="x", name="brand", base_url=server.url, settings={},
                      credentials={"access_token": "tok-1", "refresh_token": "rt-1"})
    with pytest.raises(ValueError, match="client_id"):
        await net.verify(acc)


async def test_publish_text(net, server):
    published = await net.publish(account(server), outgoing())
    sent = server.requests("POST", "/2/tweets")[0]
    assert sent.header("authorization") == "Bearer tok-1"
    assert sent.json == {"text": "Spring sale starts today!"}
    assert published.remote_id in server.tweets
    assert published.url == f"https://x.com/brand/status/{published.remote_id}"


async def test_publish_link_stays_in_the_text(net, server):
    text = "Read it: https://example.com/spring"
    await net.publish(account(server), outgoing(text, link="https://example.com/spring"))
    assert server.requests("POST", "/2/tweets")[0].json == {"text": text}


async def test_publish_with_images_uploads_each_then_attaches_them(net, server):
    a, b = png(), png()
    published = await net.publish(account(server), outgoing(media=(a, b)))
    uploads = server.requests("POST", "/2/media/upload")
    assert len(uploads) == 2
    part = uploads[0].form
    assert part["media_category"] == "tweet_image" and part["media_type"] == "image/png"
    assert part["media"]["data"] == a.data and part["media"]["content_type"] == "image/png"
    assert uploads[0].header("authorization") == "Bearer tok-1"
    ids = server.tweets[published.remote_id]["media_ids"]
    assert len(ids) == 2 and set(ids) <= set(server.media)


async def test_video_is_refused_before_anything_is_sent(net, server):
    video = MediaFile("v.mp4", "video/mp4", b"\x00" * 10, "x")
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing(media=(video,)))
    assert err.value.kind == ErrorKind.REJECTED and server.seen == []


async def test_failure_after_upload_carries_resume_and_the_retry_reuses_the_media(net, server, clock):
    server.fail("POST", "/2/tweets", status=503, body={"title": "Service Unavailable", "detail": "Over capacity"})
    post = outgoing(media=(png(),))
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), post)
    assert err.value.kind == ErrorKind.UNKNOWN_OUTCOME and "Over capacity" in err.value.reason
    resume = err.value.resume
    assert list(resume["media_ids"].values()) == list(server.media)
    clock.advance(minutes=10)
    retry = Outgoing(**{**post.__dict__, "resume": resume})
    published = await net.publish(account(server), retry)
    assert len(server.requests("POST", "/2/media/upload")) == 1  # not uploaded again
    assert server.tweets[published.remote_id]["media_ids"] == list(server.media)


async def test_stale_resume_uploads_again(net, server, clock):
    post = outgoing(media=(png(),), resume={"media_ids": {"0:x": "123"}, "media_uploaded_at": "2026-11-21T09:00:00Z"})
    await net.publish(account(server), post)
    assert len(server.requests("POST", "/2/media/upload")) == 1


async def test_duplicate_is_rejected_in_plain_words(net, server):
    await net.publish(account(server), outgoing())
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.REJECTED and err.value.reason.startswith("duplicate")


async def test_429_reads_x_rate_limit_reset(net, server):
    reset = int(time.time()) + 120
    server.fail("POST", "/2/tweets", status=429, body={"errors": [{"code": 88, "message": "Rate limit exceeded"}]},
                headers={"x-rate-limit-limit": "100", "x-rate-limit-remaining": "0", "x-rate-limit-reset": str(reset)})
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.RATE_LIMITED and "Rate limit exceeded" in err.value.reason
    assert 115 <= (err.value.retry_after or 0) <= 121


async def test_429_on_the_daily_app_cap_waits_for_the_day(net, server):
    now = int(time.time())
    server.fail("POST", "/2/tweets", status=429, body={"title": "Too Many Requests"},
                headers={"x-rate-limit-remaining": "50", "x-rate-limit-reset": str(now + 60),
                         "x-app-limit-24hour-remaining": "0", "x-app-limit-24hour-reset": str(now + 5000)})
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.RATE_LIMITED and 4990 <= (err.value.retry_after or 0) <= 5001


async def test_own_budget_holds_back_the_101st_post(net, server):
    net.publish_limits = ((2, 900.0),)  # type: ignore[misc]
    await net.publish(account(server), outgoing("one"))
    await net.publish(account(server), outgoing("two"))
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing("three"))
    assert err.value.kind == ErrorKind.RATE_LIMITED and len(server.requests("POST", "/2/tweets")) == 2


async def test_401_is_auth_expired(net, server):
    with pytest.raises(PublishError) as err:
        await net.publish(account(server, access_token="expired"), outgoing())
    assert err.value.kind == ErrorKind.AUTH_EXPIRED


async def test_dropped_answer_is_unknown_outcome(net, server):
    server.fail("POST", "/2/tweets", drop=True, after=True)
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.UNKNOWN_OUTCOME and len(server.tweets) == 1


# -- a lost answer looked up among the account's own posts (look_for_post) ----------------------------------------


async def test_a_lost_post_is_found_among_the_accounts_posts_though_x_rewrote_its_links(net, server, clock):
    server.now = clock.now
    text = "Spring sale & more: https://shop.acme.com/spring?utm_source=x <3"
    server.fail("POST", "/2/tweets", drop=True, after=True)
    with pytest.raises(PublishError):
        await net.publish(account(server), outgoing(text, media=(png(),)))
    (tweet_id,) = server.tweets
    server.tweets["1"] = {**server.tweets[tweet_id], "id": "1", "text": "Spring sale & more:"}  # a near miss
    found = await net.look_for_post(account(server), outgoing(text), clock.now())
    assert isinstance(found, Published) and found.remote_id == tweet_id
    assert found.url == f"https://x.com/brand/status/{tweet_id}"
    timeline = [r for r in server.seen if r.path == "/2/users/2244994945/tweets"]
    assert len(timeline) == 1 and timeline[0].query["start_time"] == \
        (clock.now() - timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert len(server.tweets) == 2  # looking posts nothing


async def test_a_post_not_there_is_surely_absent_only_once_a_late_create_can_no_longer_land(net, server, clock):
    server.now = clock.now
    await net.publish(account(server), outgoing("Another post"))
    sent_at = clock.now()
    assert await net.look_for_post(account(server), outgoing(), sent_at) is CANT_TELL  # may still be on its way
    clock.advance(minutes=5)
    assert await net.look_for_post(account(server), outgoing(), sent_at) is None


async def test_the_look_up_reads_every_page_then_gives_up_past_three(net, server, clock):
    def posted(i: int) -> None:  # a post made another way (X's own budget would stop Herald at 100)
        server.tweets[str(i)] = {"id": str(i), "text": f"Post number {i}", "media_ids": [],
                                 "created_at": clock.now().strftime("%Y-%m-%dT%H:%M:%S.000Z")}

    for i in range(250):
        posted(i)
    clock.advance(minutes=10)
    since = clock.now() - timedelta(minutes=10)
    found = await net.look_for_post(account(server), outgoing("Post number 0"), since)
    assert isinstance(found, Published) and server.tweets[found.remote_id]["text"] == "Post number 0"
    assert await net.look_for_post(account(server), outgoing("Not posted"), since) is None
    for i in range(250, 310):
        posted(i)
    assert await net.look_for_post(account(server), outgoing("Not posted"), since) is CANT_TELL  # past 300 posts


async def test_the_look_up_cant_tell_without_the_user_id_for_images_alone_or_when_x_fails(net, server, clock):
    plain = kit.account("x", server.url, credentials={"access_token": "tok-1"})
    assert await net.look_for_post(plain, outgoing(), clock.now()) is CANT_TELL
    assert await net.look_for_post(account(server), outgoing("", media=(png(),)), clock.now()) is CANT_TELL
    server.fail("GET", "/2/users/2244994945/tweets", status=503)
    assert await net.look_for_post(account(server), outgoing(), clock.now() - timedelta(hours=1)) is CANT_TELL


async def test_validation_error_reason_comes_from_errors(net, server):
    server.fail("POST", "/2/tweets", status=400, body={
        "errors": [{"parameters": {"text": ["x"]}, "message": "Text is too long"}],
        "title": "Invalid Request", "detail": "One or more parameters to your request was invalid."})
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.REJECTED and "Text is too long" in err.value.reason


async def test_metrics_mapping_and_missing_posts(net, server):
    a = (await net.publish(account(server), outgoing("a"))).remote_id
    b = (await net.publish(account(server), outgoing("b"))).remote_id
    server.engage(a, like_count=12, reply_count=3, retweet_count=4, quote_count=1, impression_count=900,
                  bookmark_count=2, url_link_clicks=17)
    readings = await net.fetch_metrics(account(server), [a, b, "404404"])
    assert set(readings) == {a, b}
    m = readings[a]
    assert (m.likes, m.comments, m.shares, m.quotes, m.impressions, m.saves, m.clicks, m.followers) == (
        12, 3, 4, 1, 900, 2, 17, 1234)
    lookup = server.requests("GET", "/2/tweets")[0]
    assert lookup.query["tweet.fields"] == "public_metrics,non_public_metrics"
    assert lookup.query["ids"].split(",") == [a, b, "404404"]


async def test_metrics_batch_100_ids_per_call(net, server):
    ids = [str(n) for n in range(1, 251)]
    readings = await net.fetch_metrics(account(server), ids)
    assert readings == {}
    sizes = [len(s.query["ids"].split(",")) for s in server.requests("GET", "/2/tweets")]
    assert sizes == [100, 100, 50]


async def test_metrics_fall_back_to_public_when_private_refused(net, server):
    a = (await net.publish(account(server), outgoing("a"))).remote_id
    server.engage(a, like_count=5)
    server.private_refused = True
    readings = await net.fetch_metrics(account(server), [a])
    assert readings[a].likes == 5 and readings[a].clicks is None
    fields = [s.query["tweet.fields"] for s in server.requests("GET", "/2/tweets")]
    assert fields == ["public_metrics,non_public_metrics", "public_metrics"]


async def test_comments_from_recent_search_paged_and_since(net, server, clock):
    a = (await net.publish(account(server), outgoing("a"))).remote_id
    server.reply(a, "old", created_at="2026-11-23T08:00:00.000Z")
    server.reply(a, "Love it", username="ana", author_id="11", created_at="2026-11-23T09:30:00.000Z")
    server.reply(a, "When?", username="ben", author_id="12", created_at="2026-11-23T09:40:00.000Z")
    server.reply(a, "me", username="brand", author_id="2244994945", created_at="2026-11-23T09:45:00.000Z")
    clock.advance(hours=1)
    since = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    comments = await net.fetch_comments(account(server), [a], since)
    assert [(c.author, c.text, c.parent_remote_id) for c in comments] == [("@ana", "Love it", a), ("@ben", "When?", a)]
    assert comments[0].created_at == datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
    assert comments[0].url == f"https://x.com/ana/status/{comments[0].remote_id}"
    searches = server.requests("GET", "/2/tweets/search/recent")
    assert searches[0].query["query"] == f"conversation_id:{a}"
    assert searches[0].query["start_time"] == "2026-11-23T09:00:00Z"
    assert len(searches) == 2 and searches[1].query["next_token"] == "2"


async def test_comments_clamp_since_to_the_7_day_window(net, server, clock):
    await net.fetch_comments(account(server), ["1"], clock.now() - timedelta(days=30))
    start = server.requests("GET", "/2/tweets/search/recent")[0].query["start_time"]
    assert start == "2026-11-16T09:01:00Z"


async def test_refresh_not_due(net, server, clock):
    creds = {"refresh_token": "rt-1", "expires_at": "2026-11-23T10:30:00Z"}
    assert await net.refresh(account(server, **creds)) is None
    assert server.seen == []


async def test_refresh_due_rotates_tokens_and_keeps_other_keys(net, server, clock):
    server.client_secret = "shh"
    creds = {"refresh_token": "rt-1", "expires_at": "2026-11-23T09:40:00Z", "client_secret": "shh"}
    new = await net.refresh(account(server, **creds))
    assert new == {"access_token": "tok-2", "refresh_token": "rt-2", "expires_at": "2026-11-23T11:00:00Z",
                   "client_secret": "shh"}
    sent = server.seen[0]
    assert sent.header("authorization") == "Basic " + base64.b64encode(b"cid:shh").decode()
    assert sent.form == {"grant_type": "refresh_token", "refresh_token": "rt-1", "client_id": "cid"}


async def test_refresh_without_expiry_but_with_refresh_token_refreshes(net, server):
    new = await net.refresh(account(server, refresh_token="rt-1"))
    assert new is not None and new["access_token"] == "tok-2"


async def test_refresh_dead_token_says_reconnect(net, server):
    with pytest.raises(PublishError) as err:
        await net.refresh(account(server, refresh_token="revoked"))
    assert err.value.kind == ErrorKind.AUTH_EXPIRED
    assert "Value passed for the token was invalid" in err.value.reason and "/connect x name=brand" in err.value.reason


async def test_bare_token_never_refreshes(net, server):
    assert await net.refresh(account(server)) is None
