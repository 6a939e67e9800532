"""TikTok connector contract tests against a fake Content Posting API on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta

import pytest
from PIL import Image

from bot.networks.tiktok import TikTokNetwork
from handlers.core.ports import AccountView, ErrorKind, MediaFile, Outgoing, PublishError
from tests.fakes import kit
from tests.fakes.tiktok_api import FakeTikTok

VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4


def video(data: bytes = VIDEO) -> MediaFile:
    return MediaFile("clip.mp4", "video/mp4", data, hashlib.sha256(data).hexdigest())


def jpeg(color=(1, 2, 3)) -> MediaFile:
    buf = io.BytesIO()
    Image.new("RGB", (2, 2), color).save(buf, "JPEG")
    data = buf.getvalue()
    return MediaFile("p.jpg", "image/jpeg", data, hashlib.sha256(data).hexdigest())


server = kit.server_fixture(FakeTikTok)


net = kit.network_fixture(TikTokNetwork, poll_interval=0.0, poll_attempts=4)


def account(server, token="act.token", settings=None, **creds) -> AccountView:
    base = {"privacy_level": "PUBLIC_TO_EVERYONE", "username": "acme",
            "media_url_template": "https://cdn.acme.test/herald/{sha256}"}
    return kit.account("tiktok", server.url, settings={**base, **(settings or {})},
                       credentials={"access_token": token, **creds})


def outgoing(text="New drop 🔥 #spring", media=None, **kwargs) -> Outgoing:
    return Outgoing(delivery_id=1, post_id=1, idempotency_key="k1", text=text,
                    media=(video(),) if media is None else media, **kwargs)


async def test_verify_reads_creator_info_and_defaults_privacy(net, server):
    acct = AccountView(id=1, workspace_id=1, network="tiktok", name="brand", base_url=server.url, settings={},
                       credentials={"access_token": "act.token"})
    verified = await net.verify(acct)
    assert verified.settings["privacy_level"] == "PUBLIC_TO_EVERYONE" and verified.settings["username"] == "acme"
    assert "@acme" in verified.description and "no photo posts" in verified.description
    seen = server.requests("POST", "/v2/post/publish/creator_info/query/")[0]
    assert seen.header("authorization") == "Bearer act.token"


async def test_verify_rejects_a_privacy_level_or_template_the_creator_cant_use(net, server):
    server.privacy_options = ["SELF_ONLY"]
    with pytest.raises(ValueError, match="choose one of SELF_ONLY"):
        await net.verify(account(server))
    with pytest.raises(ValueError, match="media_url_template"):
        await net.verify(account(server, settings={"privacy_level": "SELF_ONLY",
                                                   "media_url_template": "https://cdn.acme.test/x.jpg"}))
    verified = await net.verify(account(server, settings={"privacy_level": "self_only"}))
    assert verified.settings["privacy_level"] == "SELF_ONLY"


async def test_verify_wrong_token(net, server):
    with pytest.raises(PublishError) as err:
        await net.verify(account(server, token="nope"))
    assert err.value.kind == ErrorKind.AUTH_EXPIRED and "access_token_invalid" in err.value.reason


async def test_publish_video_in_one_chunk_then_polls(net, server):
    published = await net.publish(account(server), outgoing())
    init = server.requests("POST", "/v2/post/publish/video/init/")[0].json
    assert init["post_info"]["title"] == "New drop 🔥 #spring"
    assert init["post_info"]["privacy_level"] == "PUBLIC_TO_EVERYONE"
    assert init["source_info"] == {"source": "FILE_UPLOAD", "video_size": len(VIDEO), "chunk_size": len(VIDEO),
                                   "total_chunk_count": 1}
    put = server.requests("PUT", "/upload/1")[0]
    assert put.header("content-range") == f"bytes 0-{len(VIDEO) - 1}/{len(VIDEO)}"
    assert put.header("content-type") == "video/mp4" and put.body == VIDEO
    assert len(server.requests("POST", "/v2/post/publish/status/fetch/")) == 2
    assert published.remote_id == "7400000000000000001"
    assert published.url == "https://www.tiktok.com/@acme/video/7400000000000000001"


async def test_big_video_goes_in_chunks_the_last_taking_the_rest(net, server):
    net.single_chunk_max, net.chunk_bytes = 100, 300
    await net.publish(account(server), outgoing())
    init = server.requests("POST", "/v2/post/publish/video/init/")[0].json["source_info"]
    assert (init["chunk_size"], init["total_chunk_count"]) == (300, len(VIDEO) // 300)
    ranges = [s.header("content-range") for s in server.requests("PUT", "/upload/1")]
    assert ranges == [f"bytes 0-299/{len(VIDEO)}", f"bytes 300-599/{len(VIDEO)}",
                      f"bytes 600-{len(VIDEO) - 1}/{len(VIDEO)}"]
    assert server.publishes[next(iter(server.publishes))]["received"] == VIDEO


async def test_photos_are_pulled_from_the_media_url_template(net, server):
    photos = (jpeg(), jpeg((9, 9, 9)))
    published = await net.publish(account(server), outgoing("Spring looks\nThree new colours", media=photos))
    body = server.requests("POST", "/v2/post/publish/content/init/")[0].json
    assert body["media_type"] == "PHOTO" and body["post_mode"] == "DIRECT_POST"
    assert body["post_info"]["title"] == "Spring looks"
    assert body["post_info"]["description"] == "Spring looks\nThree new colours"
    assert body["source_info"] == {"source": "PULL_FROM_URL", "photo_cover_index": 0, "photo_images": [
        f"https://cdn.acme.test/herald/{p.sha256}" for p in photos]}
    assert published.url == f"https://www.tiktok.com/@acme/photo/{published.remote_id}"


async def test_photos_without_template_or_text_only_are_refused_before_sending(net, server):
    with pytest.raises(PublishError) as err:
        await net.publish(account(server, settings={"media_url_template": ""}), outgoing(media=(jpeg(),)))
    assert err.value.kind == ErrorKind.REJECTED and "media_url_template=" in err.value.reason
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing(media=()))
    assert "needs a video or photos" in err.value.reason
    assert not server.seen


async def test_private_post_keeps_the_publish_id(net, server):
    published = await net.publish(account(server, settings={"privacy_level": "SELF_ONLY"}), outgoing())
    assert published.remote_id.startswith("v_pub_file~") and published.url == "https://www.tiktok.com/@acme"


async def test_broken_upload_resumes_the_same_publish(net, server):
    server.fail("PUT", "/upload/1", drop=True)
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.TRANSIENT
    publish_id = next(iter(server.publishes))
    assert err.value.resume == {"publish_id": publish_id, "upload_url": f"{server.url}/upload/1", "in_flight": True}
    published = await net.publish(account(server), outgoing(resume=err.value.resume))
    assert len(server.requests("POST", "/v2/post/publish/video/init/")) == 1  # never a second post
    assert published.remote_id == "7400000000000000001"


async def test_still_processing_is_retried_later_from_the_publish_id(net, server):
    server.polls_before_done = 10
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.TRANSIENT and err.value.retry_after == 60.0
    assert err.value.resume["publish_id"] == next(iter(server.publishes))
    server.polls_before_done = 0
    published = await net.publish(account(server), outgoing(resume=err.value.resume))
    assert published.remote_id == "7400000000000000001"
    assert len(server.requests("POST", "/v2/post/publish/video/init/")) == 1
    assert len(server.requests("PUT", "/upload/1")) == 1


async def test_failed_publish_is_rejected_and_a_retry_starts_over(net, server):
    server.fail_reason = "duration_check_failed"
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.REJECTED and "too long or too short" in err.value.reason
    server.fail_reason = None
    published = await net.publish(account(server), outgoing(resume=err.value.resume))
    assert len(server.requests("POST", "/v2/post/publish/video/init/")) == 2
    assert published.remote_id == "7400000000000000002"


async def test_rate_limit_is_one_minute(net, server):
    server.fail("POST", "/v2/post/publish/video/init/", status=429, body={"data": {}, "error": {
        "code": "rate_limit_exceeded", "message": "API rate limit was exceeded", "log_id": "x"}})
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.RATE_LIMITED and err.value.retry_after == 60.0


async def test_six_inits_a_minute_are_kept_up_front(net, server):
    for _ in range(6):
        await net.publish(account(server), outgoing())
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.RATE_LIMITED and len(server.requests("POST", "/v2/post/publish/video/init/")) == 6


async def test_spam_risk_is_rejected_in_plain_words(net, server):
    server.fail("POST", "/v2/post/publish/video/init/", status=403, body={"data": {}, "error": {
        "code": "spam_risk_too_many_posts", "message": "The user has reached the daily post cap", "log_id": "x"}})
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.REJECTED and "daily cap" in err.value.reason


async def test_unverified_photo_domain_is_explained(net, server):
    acct = account(server, settings={"media_url_template": "https://elsewhere.test/{filename}"})
    with pytest.raises(PublishError) as err:
        await net.publish(acct, outgoing(media=(jpeg(),)))
    assert err.value.kind == ErrorKind.REJECTED and "verified" in err.value.reason


async def test_401_and_5xx_on_init(net, server):
    with pytest.raises(PublishError) as err:
        await net.publish(account(server, token="old"), outgoing())
    assert err.value.kind == ErrorKind.AUTH_EXPIRED
    server.fail("POST", "/v2/post/publish/video/init/", status=500, body={"data": {}, "error": {
        "code": "internal_error", "message": "Something went wrong", "log_id": "x"}})
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.UNKNOWN_OUTCOME and not err.value.resume


async def test_metrics_batched_and_publish_ids_resolved(net, server):
    ids = [str(7400000000000000100 + i) for i in range(25)]
    for i, vid in enumerate(ids):
        server.videos[vid] = {"like_count": 10 + i, "comment_count": 3, "share_count": 2, "view_count": 1000}
    private = await net.publish(account(server, settings={"privacy_level": "SELF_ONLY"}), outgoing())
    readings = await net.fetch_metrics(account(server), [*ids, "7400000000000009999", private.remote_id])
    calls = server.requests("POST", "/v2/video/query/")
    assert len(calls) == 2 and len(calls[0].json["filters"]["video_ids"]) == 20
    assert set(calls[0].query["fields"].split(",")) >= {"like_count", "comment_count", "share_count", "view_count"}
    assert len(readings) == 25 and private.remote_id not in readings  # private: no public id to read
    m = readings[ids[0]]
    assert (m.likes, m.comments, m.shares, m.impressions, m.clicks) == (10, 3, 2, 1000, None)


async def test_no_comments(net, server):
    assert await net.fetch_comments(account(server), ["1"], None) == []


async def test_refresh_rotates_the_refresh_token(net, server, clock):
    acct = account(server, settings={"client_key": "awkey"}, refresh_token="rft.one", client_secret="tt-secret",
                   expires_at=(clock.now() + timedelta(hours=2)).isoformat())
    new = await net.refresh(acct)
    assert new is not None and new["access_token"] == "act.token-2" and new["refresh_token"] == "rft.two"
    assert new["client_secret"] == "tt-secret"
    assert new["expires_at"] == (clock.now() + timedelta(hours=24)).isoformat()
    assert server.requests("POST", "/v2/oauth/token/")[0].form == {
        "client_key": "awkey", "client_secret": "tt-secret", "grant_type": "refresh_token",
        "refresh_token": "rft.one"}


async def test_refresh_not_due(net, server, clock):
    acct = account(server, settings={"client_key": "awkey"}, refresh_token="rft.one", client_secret="tt-secret",
                   expires_at=(clock.now() + timedelta(days=2)).isoformat())
    assert await net.refresh(acct) is None and await net.refresh(account(server)) is None
    assert not server.seen


async def test_refresh_dead_even_with_http_200(net, server):
    acct = account(server, settings={"client_key": "awkey"}, refresh_token="rft.gone", client_secret="tt-secret")
    with pytest.raises(PublishError) as err:
        await net.refresh(acct)
    assert err.value.kind == ErrorKind.AUTH_EXPIRED and "/connect tiktok name=brand" in err.value.reason
    with pytest.raises(PublishError) as err:
        await net.refresh(account(server, settings={"client_key": "awkey"}, refresh_token="rft.one",
                                  client_secret="wrong"))
    assert err.value.kind == ErrorKind.AUTH_EXPIRED


async def test_every_failure_once_the_publish_exists_carries_in_flight(net, server):
    """Retries that run out with a publish under way end unconfirmed (a post may exist), never failed."""
    server.polls_before_done = 10
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())  # the video: still processing
    assert err.value.kind == ErrorKind.TRANSIENT and err.value.resume["in_flight"] is True
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing(media=(jpeg(),)))  # photos: still processing
    assert err.value.kind == ErrorKind.TRANSIENT and err.value.resume["in_flight"] is True
    resumed = err.value.resume
    server.fail("POST", "/v2/post/publish/status/fetch/", status=503, body={"data": {}, "error": {
        "code": "internal_error", "message": "busy", "log_id": "x"}})
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing(media=(jpeg(),), resume=resumed))  # checking on it fails
    assert err.value.kind == ErrorKind.TRANSIENT and err.value.resume["in_flight"] is True


async def test_nothing_sent_or_failed_publish_is_not_in_flight(net, server):
    server.fail("POST", "/v2/post/publish/video/init/", status=429, body={"data": {}, "error": {
        "code": "rate_limit_exceeded", "message": "slow down", "log_id": "x"}})
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert "in_flight" not in err.value.resume
    server.fail_reason = "spam_risk_text"
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.REJECTED and err.value.resume["in_flight"] is False  # TikTok said: no post


async def test_auto_add_music_is_an_account_setting_off_by_default(net, server):
    await net.publish(account(server), outgoing(media=(jpeg(),)))
    await net.publish(account(server, settings={"auto_add_music": "on"}), outgoing(media=(jpeg(),)))
    bodies = [r.json["post_info"] for r in server.requests("POST", "/v2/post/publish/content/init/")]
    assert [b["auto_add_music"] for b in bodies] == [False, True]
    verified = await net.verify(account(server, settings={"auto_add_music": "ON"}))
    assert verified.settings["auto_add_music"] == "on" and "music" in verified.description
    assert (await net.verify(account(server))).settings["auto_add_music"] == "off"
    with pytest.raises(ValueError, match="auto_add_music= must be on or off"):
        await net.verify(account(server, settings={"auto_add_music": "yes please"}))
    assert "auto_add_music" in TikTokNetwork.connect_spec.optional
    assert "auto_add_music=on" in TikTokNetwork.connect_spec.help


async def test_refresh_answer_that_isnt_an_object_is_transient(net, server):
    server.fail("POST", "/v2/oauth/token/", status=200, body=["nope"])
    acct = account(server, settings={"client_key": "awkey"}, refresh_token="rft.one", client_secret="tt-secret")
    with pytest.raises(PublishError) as err:
        await net.refresh(acct)
    assert err.value.kind == ErrorKind.TRANSIENT and "without a token" in err.value.reason
