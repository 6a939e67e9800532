"""YouTube connector contract tests against a fake Data API v3 on 127.0.0.1."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image

from bot.networks.youtube import YouTubeNetwork, seconds_to_pacific_midnight
from handlers.core.ports import AccountView, ErrorKind, MediaFile, Outgoing, PublishError
from tests.conftest import FakeClock
from tests.fakes import kit
from tests.fakes.youtube_api import FakeYouTube

VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8


def video(data: bytes = VIDEO) -> MediaFile:
    return MediaFile("spring-teaser.mp4", "video/mp4", data)


def png() -> MediaFile:
    buf = io.BytesIO()
    Image.new("RGB", (2, 2)).save(buf, "PNG")
    return MediaFile("a.png", "image/png", buf.getvalue())


server = kit.server_fixture(FakeYouTube)


net = kit.network_fixture(YouTubeNetwork)


def account(server, token="ya29.token", settings=None, **creds) -> AccountView:
    return kit.account("youtube", server.url,
                       settings={"oauth_base_url": server.url, "client_id": "123.apps.googleusercontent.com",
                                 "made_for_kids": "no", **(settings or {})},
                       credentials={"access_token": token, **creds})


def outgoing(text="Spring teaser\nOur new line, in 30 seconds. https://acme.test/spring", media=None,
             **kwargs) -> Outgoing:
    return Outgoing(delivery_id=1, post_id=1, idempotency_key="k1", text=text,
                    media=(video(),) if media is None else media, **kwargs)


async def test_verify_finds_the_channel(net, server):
    verified = await net.verify(account(server))
    assert verified.settings == {"channel_id": "UCacme123", "privacy_status": "public", "made_for_kids": "no"}
    assert "Acme (@acme)" in verified.description
    seen = server.requests("GET", "/youtube/v3/channels")[0]
    assert seen.query == {"part": "snippet", "mine": "true"} and seen.header("authorization") == "Bearer ya29.token"
    with pytest.raises(ValueError, match="privacy_status"):
        await net.verify(account(server, settings={"privacy_status": "friends"}))


async def test_verify_wrong_token(net, server):
    with pytest.raises(PublishError) as err:
        await net.verify(account(server, token="bad"))
    assert err.value.kind == ErrorKind.AUTH_EXPIRED and "invalid authentication" in err.value.reason


def test_check_needs_one_video():
    net = YouTubeNetwork(None, FakeClock())  # type: ignore[arg-type]
    view = AccountView(id=1, workspace_id=1, network="youtube", name="b", base_url=None,
                       settings={"made_for_kids": "no"})
    assert "YouTube needs a video" in net.check(view, "hello", 0).line()
    assert net.check(view, "hello", 1).ok
    assert not net.check(view, "hello", 2).ok and not net.check(view, "a <b>", 1).ok


async def test_resumable_upload(net, server):
    published = await net.publish(account(server, settings={"privacy_status": "unlisted"}), outgoing())
    assert published.remote_id == "dQw4w9WgXc1" and published.url == "https://www.youtube.com/watch?v=dQw4w9WgXc1"
    start = server.requests("POST", "/upload/youtube/v3/videos")[0]
    assert start.query == {"uploadType": "resumable", "part": "snippet,status"}
    assert start.header("x-upload-content-length") == str(len(VIDEO))
    assert start.header("x-upload-content-type") == "video/mp4"
    assert start.json["snippet"]["title"] == "Spring teaser"
    assert start.json["snippet"]["description"] == outgoing().text
    assert start.json["status"]["privacyStatus"] == "unlisted"
    put = server.requests("PUT", "/upload/youtube/v3/videos")[0]
    assert put.query["upload_id"] == "S1" and put.body == VIDEO and put.header("authorization") == "Bearer ya29.token"


async def test_title_is_the_first_line_cut_to_100(net, server):
    await net.publish(account(server), outgoing("x" * 150 + "\nmore"))
    assert server.requests("POST", "/upload/youtube/v3/videos")[0].json["snippet"]["title"] == "x" * 100


async def test_images_are_refused_before_anything_is_sent(net, server):
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing(media=(png(),)))
    assert err.value.kind == ErrorKind.REJECTED and "one video" in err.value.reason
    assert not server.seen


async def test_lost_answer_after_upload_reads_the_finished_video(net, server):
    server.fail("PUT", "/upload/youtube/v3/videos", drop=True, after=True)
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.TRANSIENT
    assert err.value.resume == {"upload_url": f"{server.url}/upload/youtube/v3/videos?uploadType=resumable"
                                              "&upload_id=S1", "in_flight": True}
    published = await net.publish(account(server), outgoing(resume=err.value.resume))
    assert published.remote_id == "dQw4w9WgXc1" and len(server.videos) == 1
    assert len(server.requests("POST", "/upload/youtube/v3/videos")) == 1
    assert server.requests("PUT", "/upload/youtube/v3/videos")[-1].header("content-range") == f"bytes */{len(VIDEO)}"


async def test_broken_upload_continues_from_the_range(net, server):
    server.accept_only = 1000
    server.fail("PUT", "/upload/youtube/v3/videos", drop=True, after=True)
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    published = await net.publish(account(server), outgoing(resume=err.value.resume))
    puts = server.requests("PUT", "/upload/youtube/v3/videos")
    assert [p.header("content-range") for p in puts[1:]] == [f"bytes */{len(VIDEO)}",
                                                             f"bytes 1000-{len(VIDEO) - 1}/{len(VIDEO)}"]
    assert puts[-1].body == VIDEO[1000:]
    assert server.sessions["S1"]["data"] == VIDEO and published.remote_id == "dQw4w9WgXc1"


async def test_expired_session_starts_a_new_upload(net, server):
    stale = {"upload_url": f"{server.url}/upload/youtube/v3/videos?uploadType=resumable&upload_id=gone"}
    published = await net.publish(account(server), outgoing(resume=stale))
    assert published.remote_id == "dQw4w9WgXc1" and len(server.requests("POST", "/upload/youtube/v3/videos")) == 1


async def test_5xx_on_the_bytes_keeps_the_session(net, server):
    server.fail("PUT", "/upload/youtube/v3/videos", status=503, body={"error": {"code": 503, "message": "Backend "
                                                                                "Error", "errors": []}})
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.TRANSIENT and "upload_url" in err.value.resume


def test_pacific_midnight_is_computed_with_dst():
    assert seconds_to_pacific_midnight(datetime(2026, 11, 23, 9, 0, tzinfo=UTC)) == 23 * 3600  # PST, UTC-8
    assert seconds_to_pacific_midnight(datetime(2026, 7, 1, 6, 0, tzinfo=UTC)) == 1 * 3600  # PDT, UTC-7


async def test_quota_exceeded_waits_until_pacific_midnight(net, server, clock):
    server.fail("POST", "/upload/youtube/v3/videos", status=403, body={"error": {
        "code": 403, "message": "The request cannot be completed because you have exceeded your quota.",
        "errors": [{"reason": "quotaExceeded", "domain": "youtube.quota"}]}})
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.RATE_LIMITED and err.value.retry_after == 23 * 3600
    assert "midnight Pacific" in err.value.reason


@pytest.mark.parametrize("status, reason, kind", [
    (403, "rateLimitExceeded", ErrorKind.RATE_LIMITED),
    (400, "uploadLimitExceeded", ErrorKind.REJECTED),
    (401, "authError", ErrorKind.AUTH_EXPIRED),
    (403, "insufficientPermissions", ErrorKind.AUTH_EXPIRED),
])
async def test_google_error_reasons(net, server, status, reason, kind):
    body = {"error": {"code": status, "message": f"msg {reason}", "errors": [{"reason": reason, "domain": "x"}]}}
    server.fail("POST", "/upload/youtube/v3/videos", status=status, body=body)
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == kind and reason in err.value.reason
    if kind == ErrorKind.RATE_LIMITED:
        assert err.value.retry_after == 60.0


async def test_six_uploads_a_day(net, server):
    for _ in range(6):
        await net.publish(account(server), outgoing())
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.RATE_LIMITED and len(server.videos) == 6


async def test_metrics_batched_by_50(net, server):
    ids = [f"vid{i:03d}" for i in range(60)]
    for i, vid in enumerate(ids[:-1]):
        server.stats[vid] = {"viewCount": str(1000 + i), "likeCount": "40", "favoriteCount": "0", "commentCount": "6"}
    readings = await net.fetch_metrics(account(server), ids)
    calls = server.requests("GET", "/youtube/v3/videos")
    assert [len(c.query["id"].split(",")) for c in calls] == [50, 10]
    assert calls[0].query["part"] == "statistics"
    assert len(readings) == 59 and ids[-1] not in readings
    m = readings["vid000"]
    assert (m.impressions, m.likes, m.comments, m.shares, m.saves) == (1000, 40, 6, None, None)


async def test_comments_since(net, server):
    server.threads["vid1"] = [
        {"id": "t1", "snippet": {"videoId": "vid1", "topLevelComment": {"id": "c1", "snippet": {
            "authorDisplayName": "Ben", "textOriginal": "Great!", "publishedAt": "2026-11-23T10:00:00Z"}}}},
        {"id": "t0", "snippet": {"videoId": "vid1", "topLevelComment": {"id": "c0", "snippet": {
            "authorDisplayName": "Old", "textOriginal": "first", "publishedAt": "2026-11-22T10:00:00Z"}}}},
    ]
    comments = await net.fetch_comments(account(server), ["vid1", "nocomments"],
                                        datetime(2026, 11, 23, tzinfo=UTC))
    assert [(c.remote_id, c.author, c.text, c.parent_remote_id) for c in comments] == [("c1", "Ben", "Great!", "vid1")]
    assert comments[0].url == "https://www.youtube.com/watch?v=vid1&lc=c1"
    assert server.requests("GET", "/youtube/v3/commentThreads")[0].query["videoId"] == "vid1"


async def test_refresh_due(net, server, clock):
    acct = account(server, refresh_token="1//refresh", client_secret="GOCSPX-x",
                   expires_at=(clock.now() + timedelta(minutes=20)).isoformat())
    new = await net.refresh(acct)
    assert new is not None and new["access_token"] == "ya29.token-2" and new["refresh_token"] == "1//refresh"
    assert new["expires_at"] == (clock.now() + timedelta(seconds=3599)).isoformat()
    assert server.requests("POST", "/token")[0].form == {
        "client_id": "123.apps.googleusercontent.com", "client_secret": "GOCSPX-x", "refresh_token": "1//refresh",
        "grant_type": "refresh_token"}


async def test_refresh_not_due(net, server, clock):
    acct = account(server, refresh_token="1//refresh", client_secret="GOCSPX-x",
                   expires_at=(clock.now() + timedelta(days=3)).isoformat())
    assert await net.refresh(acct) is None and await net.refresh(account(server)) is None
    assert not server.seen


async def test_refresh_dead(net, server):
    with pytest.raises(PublishError) as err:
        await net.refresh(account(server, refresh_token="1//revoked", client_secret="GOCSPX-x"))
    assert err.value.kind == ErrorKind.AUTH_EXPIRED and "expired or revoked" in err.value.reason
    assert "/connect youtube name=brand" in err.value.reason


async def test_made_for_kids_is_the_channel_owners_setting(net, server):
    assert YouTubeNetwork.connect_spec.required == ("access_token", "made_for_kids")
    assert "made_for_kids=yes|no" in YouTubeNetwork.connect_spec.help
    for value, declared in (("no", False), ("YES", True)):
        await net.publish(account(server, settings={"made_for_kids": value}), outgoing())
        assert server.requests("POST", "/upload/youtube/v3/videos")[-1].json["status"][
            "selfDeclaredMadeForKids"] is declared
    verified = await net.verify(account(server, settings={"made_for_kids": "Yes"}))
    assert verified.settings["made_for_kids"] == "yes" and "made for kids" in verified.description
    for bad in ("", "maybe"):
        with pytest.raises(ValueError, match="made_for_kids= must be yes or no"):
            await net.verify(account(server, settings={"made_for_kids": bad}))


async def test_an_account_without_made_for_kids_is_refused_before_sending(net, server):
    server.seen.clear()
    with pytest.raises(PublishError) as err:
        await net.publish(account(server, settings={"made_for_kids": None}), outgoing())
    assert err.value.kind == ErrorKind.REJECTED and "made_for_kids=yes|no" in err.value.reason and not server.seen
    view = AccountView(id=1, workspace_id=1, network="youtube", name="b", base_url=None, settings={})
    assert any("made_for_kids" in p for p in net.check(view, "hello", 1).problems)


async def test_every_failure_once_the_bytes_went_carries_in_flight(net, server):
    """Retries that run out with an upload under way end unconfirmed (the video may exist), never failed."""
    server.fail("PUT", "/upload/youtube/v3/videos", status=503, body={"error": {"code": 503, "message": "Backend "
                                                                                "Error", "errors": []}})
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.TRANSIENT and err.value.resume["in_flight"] is True
    server.fail("PUT", "/upload/youtube/v3/videos", drop=True)  # asking the session fails too
    with pytest.raises(PublishError) as again:
        await net.publish(account(server), outgoing(resume=err.value.resume))
    assert again.value.kind == ErrorKind.TRANSIENT and again.value.resume["in_flight"] is True
    server.fail("POST", "/upload/youtube/v3/videos", status=503, body={"error": {"code": 503, "message": "x",
                                                                                 "errors": []}})
    with pytest.raises(PublishError) as before:
        await net.publish(account(server), outgoing())  # no session yet: nothing can exist
    assert before.value.kind == ErrorKind.TRANSIENT and "in_flight" not in before.value.resume


async def test_refresh_answer_without_a_token_is_transient(net, server, clock):
    server.fail("POST", "/token", status=200, body={"token_type": "Bearer", "expires_in": 3599})
    with pytest.raises(PublishError) as err:
        await net.refresh(account(server, refresh_token="1//refresh", client_secret="GOCSPX-x"))
    assert err.value.kind == ErrorKind.TRANSIENT and err.value.reason == \
        "Google answered the token refresh without a token"
