"""Pinterest connector contract tests against a fake API v5 on 127.0.0.1."""

from __future__ import annotations

import base64
import io
from datetime import timedelta

import pytest
from PIL import Image

from bot.networks.pinterest import PinterestNetwork
from handlers.core.ports import AccountView, ErrorKind, MediaFile, Outgoing, PublishError
from tests.fakes import kit
from tests.fakes.pinterest_api import FakePinterest

BOARD = "549755885175"


def png(color=(10, 120, 200)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (2, 2), color).save(buf, "PNG")
    return buf.getvalue()


server = kit.server_fixture(FakePinterest)


net = kit.network_fixture(PinterestNetwork)


def account(server, token="pina-token", board=BOARD, settings=None, **creds) -> AccountView:
    return kit.account("pinterest", server.url, settings={"board_id": board, **(settings or {})},
                       credentials={"access_token": token, **creds})


def outgoing(text="Spring looks\nOur new collection is here", media=None, **kwargs) -> Outgoing:
    media = (MediaFile("a.png", "image/png", png()),) if media is None else media
    return Outgoing(delivery_id=1, post_id=1, idempotency_key="k1", text=text, media=media, **kwargs)


async def test_verify_checks_user_and_board(net, server):
    verified = await net.verify(account(server))
    assert verified.settings == {"board_id": BOARD, "username": "acme"}
    assert "@acme" in verified.description and "Spring looks" in verified.description
    assert server.requests("GET", "/v5/user_account")[0].header("authorization") == "Bearer pina-token"
    assert server.requests("GET", f"/v5/boards/{BOARD}")


async def test_verify_lists_boards_when_none_given_and_rejects_unknown(net, server):
    with pytest.raises(ValueError, match=f"board_id={BOARD} \\(Spring looks\\)"):
        await net.verify(account(server, board=""))
    with pytest.raises(ValueError, match="no board 999"):
        await net.verify(account(server, board="999"))


async def test_verify_wrong_token(net, server):
    with pytest.raises(PublishError) as err:
        await net.verify(account(server, token="bad"))
    assert err.value.kind == ErrorKind.AUTH_EXPIRED and "Authentication failed" in err.value.reason


async def test_publish_one_image_with_link(net, server):
    data = png()
    published = await net.publish(account(server), outgoing(
        "Spring looks\nShop now https://acme.test/spring", media=(MediaFile("a.png", "image/png", data),),
        link="https://acme.test/spring"))
    assert published.url == f"https://www.pinterest.com/pin/{published.remote_id}/"
    body = server.requests("POST", "/v5/pins")[0].json
    assert body["board_id"] == BOARD and body["title"] == "Spring looks"
    assert body["description"] == "Spring looks\nShop now https://acme.test/spring"
    assert body["link"] == "https://acme.test/spring"
    assert body["media_source"] == {"source_type": "image_base64", "content_type": "image/png",
                                    "data": base64.b64encode(data).decode()}


async def test_publish_carousel(net, server):
    media = tuple(MediaFile(f"{i}.png", "image/png", png((i, i, i))) for i in range(3))
    await net.publish(account(server), outgoing(media=media))
    source = server.requests("POST", "/v5/pins")[0].json["media_source"]
    assert source["source_type"] == "multiple_image_base64" and source["index"] == 0
    assert [base64.b64decode(i["data"]) for i in source["items"]] == [m.data for m in media]
    assert "link" not in server.requests("POST", "/v5/pins")[0].json


async def test_needs_a_jpeg_or_png_image(net, server):
    assert not net.check(account(server), "no image", 0).ok
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing(media=()))
    assert err.value.kind == ErrorKind.REJECTED and "needs an image" in err.value.reason
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing(media=(MediaFile("a.webp", "image/webp", b"RIFF"),)))
    assert "JPEG or PNG" in err.value.reason
    assert not server.requests("POST", "/v5/pins")


async def test_429_uses_the_reset_header(net, server):
    server.fail("POST", "/v5/pins", status=429, headers={"X-RateLimit-Reset": "42"},
                body={"code": 8, "message": "You have exceeded your rate limit. Try again later."})
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.RATE_LIMITED and err.value.retry_after == 42.0
    assert "exceeded your rate limit" in err.value.reason


async def test_401_on_publish(net, server):
    with pytest.raises(PublishError) as err:
        await net.publish(account(server, token="old"), outgoing())
    assert err.value.kind == ErrorKind.AUTH_EXPIRED


async def test_5xx_on_publish_is_unknown_outcome(net, server):
    server.fail("POST", "/v5/pins", status=503, body={"code": 3, "message": "Service unavailable"}, after=True)
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.UNKNOWN_OUTCOME and len(server.pins) == 1


async def test_deleted_board_is_rejected_in_plain_words(net, server):
    server.boards.clear()
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.REJECTED and "Board not found" in err.value.reason


async def test_metrics_per_pin_over_90_days(net, server):
    a = (await net.publish(account(server), outgoing())).remote_id
    b = (await net.publish(account(server), outgoing("other"))).remote_id
    server.analytics[a] = {"IMPRESSION": 900, "SAVE": 12, "PIN_CLICK": 30, "OUTBOUND_CLICK": 8,
                           "TOTAL_COMMENTS": 2, "TOTAL_REACTIONS": 15}
    readings = await net.fetch_metrics(account(server), [a, b, "404404"])
    assert set(readings) == {a, b}
    m = readings[a]
    assert (m.impressions, m.saves, m.clicks, m.comments, m.likes, m.shares) == (900, 12, 8, 2, 15, None)
    q = server.requests("GET", f"/v5/pins/{a}/analytics")[0].query
    assert q["start_date"] == "2026-08-26" and q["end_date"] == "2026-11-23"
    assert set(q["metric_types"].split(",")) >= {"IMPRESSION", "SAVE", "PIN_CLICK", "OUTBOUND_CLICK"}


async def test_no_comments_api(net, server):
    assert await net.fetch_comments(account(server), ["1"], None) == []
    assert not server.seen


async def test_refresh_due_uses_basic_auth(net, server, clock):
    acct = account(server, settings={"client_id": "app1"}, refresh_token="pinr-refresh", client_secret="pin-secret",
                   expires_at=(clock.now() + timedelta(hours=5)).isoformat())
    new = await net.refresh(acct)
    assert new is not None and new["access_token"] == "pina-token-2" and new["refresh_token"] == "pinr-refresh-2"
    assert new["expires_at"] == (clock.now() + timedelta(days=30)).isoformat()
    seen = server.requests("POST", "/v5/oauth/token")[0]
    assert seen.form == {"grant_type": "refresh_token", "refresh_token": "pinr-refresh"}
    assert seen.header("authorization") == "Basic " + base64.b64encode(b"app1:pin-secret").decode()


async def test_refresh_not_due(net, server, clock):
    acct = account(server, settings={"client_id": "app1"}, refresh_token="pinr-refresh", client_secret="pin-secret",
                   expires_at=(clock.now() + timedelta(days=20)).isoformat())
    assert await net.refresh(acct) is None
    assert await net.refresh(account(server)) is None
    assert not server.seen


async def test_refresh_dead(net, server, clock):
    acct = account(server, settings={"client_id": "app1"}, refresh_token="revoked", client_secret="pin-secret")
    with pytest.raises(PublishError) as err:
        await net.refresh(acct)
    assert err.value.kind == ErrorKind.AUTH_EXPIRED and "/connect pinterest name=brand" in err.value.reason


async def test_refresh_answer_without_a_token_is_transient(net, server, clock):
    server.fail("POST", "/v5/oauth/token", status=200, body={"response_type": "refresh_token"})
    acct = account(server, settings={"client_id": "app1"}, refresh_token="pinr-refresh", client_secret="pin-secret")
    with pytest.raises(PublishError) as err:
        await net.refresh(acct)
    assert err.value.kind == ErrorKind.TRANSIENT and "answered the token refresh without a token" in err.value.reason
