"""Contract tests of the Telegram channel network against the fake Bot API (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from PIL import Image

from bot.networks.http import new_client
from bot.networks.telegram_channel import TelegramChannelNetwork, parse_channel
from handlers.core.ports import AccountView, ErrorKind, MediaFile, Outgoing, PublishError, Verified
from tests.conftest import FakeClock, make_herald
from tests.fakes.telegram_api import BOT_ID, FakeTelegram


def png(color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (2, 2), color).save(out, "PNG")
    return out.getvalue()


def image(i: int) -> MediaFile:
    return MediaFile(f"img{i}.png", "image/png", png((i * 40 % 256, 0, 0)), f"sha{i}")


def outgoing(text: str = "Spring sale starts today! https://shop.example/sale", media: tuple[MediaFile, ...] = (),
             delivery_id: int = 1) -> Outgoing:
    return Outgoing(delivery_id=delivery_id, post_id=1, idempotency_key=f"k{delivery_id}", text=text, media=media)


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    http = new_client()
    yield http
    await http.aclose()


@pytest.fixture
def net(client: httpx.AsyncClient, tg: FakeTelegram) -> TelegramChannelNetwork:
    return TelegramChannelNetwork(client, FakeClock(), bot_token=tg.token, api_url=tg.url)


def account(tg: FakeTelegram, channel: str = "@acme_news", *, credentials: dict[str, Any] | None = None,
            **settings: Any) -> AccountView:
    return AccountView(id=1, workspace_id=1, network="telegram", name="news", base_url=None,
                       settings={"channel": channel, **settings}, credentials=credentials or {})


async def connected(net: TelegramChannelNetwork, tg: FakeTelegram, channel: str = "@acme_news") -> AccountView:
    view = account(tg, channel)
    verified = await net.verify(view)
    assert isinstance(verified, Verified)
    return AccountView(id=1, workspace_id=1, network="telegram", name="news", base_url=None,
                       settings={**view.settings, **verified.settings}, credentials={})


def form(tg: FakeTelegram, method: str) -> Any:
    return tg.requests("POST", f"/bot{tg.token}/{method}")


# --- connecting ---------------------------------------------------------------------------------


async def test_verify_checks_the_bot_the_channel_and_the_bots_right_to_post(
        net: TelegramChannelNetwork, tg: FakeTelegram) -> None:
    channel = tg.channel("Acme News", username="acme_news")
    verified = await net.verify(account(tg))
    assert isinstance(verified, Verified)
    assert verified.description == "@acme_news (Acme News) on Telegram, posting as @HeraldBot"
    assert verified.settings == {"chat_id": channel["id"], "username": "acme_news", "title": "Acme News",
                                 "bot": "HeraldBot"}
    assert verified.credentials == {}
    assert [s.path.rsplit("/", 1)[1] for s in tg.seen] == ["getMe", "getChat", "getChatMember"]
    assert all(s.path.startswith(f"/bot{tg.token}/") for s in tg.seen)
    assert tg.seen[1].json == {"chat_id": "@acme_news"}
    assert tg.seen[2].json == {"chat_id": channel["id"], "user_id": BOT_ID}


async def test_verify_with_another_bots_token_uses_that_bot(net: TelegramChannelNetwork, tg: FakeTelegram) -> None:
    other = tg.add_bot("999:OTHER", "AcmePosterBot")
    tg.channel("Acme News", username="acme_news", bot=other)
    verified = await net.verify(account(tg, "https://t.me/acme_news", credentials={"token": "999:OTHER"}))
    assert isinstance(verified, Verified) and verified.description.endswith("posting as @AcmePosterBot")
    assert {s.path for s in tg.seen} == {"/bot999:OTHER/getMe", "/bot999:OTHER/getChat", "/bot999:OTHER/getChatMember"}


async def test_a_wrong_token_is_auth_expired(net: TelegramChannelNetwork, tg: FakeTelegram) -> None:
    tg.channel("Acme News", username="acme_news")
    with pytest.raises(PublishError) as caught:
        await net.verify(account(tg, credentials={"token": "1:WRONG"}))
    assert caught.value.kind == ErrorKind.AUTH_EXPIRED
    assert "refused the bot token (Unauthorized)" in caught.value.reason


@pytest.mark.parametrize(("status", "rights", "expected"), [
    ("member", {}, "@HeraldBot is only a subscriber of @acme_news"),
    ("administrator", {"can_post_messages": False}, "an administrator without the right to post messages"),
])
async def test_verify_refuses_a_bot_that_cant_post(net: TelegramChannelNetwork, tg: FakeTelegram, status: str,
                                                   rights: dict[str, bool], expected: str) -> None:
    channel = tg.channel("Acme News", username="acme_news", bot_status="left")
    tg.set_member(channel, tg.bot, status, **rights)
    with pytest.raises(ValueError, match="make the bot an admin of the channel") as caught:
        await net.verify(account(tg))
    assert expected in str(caught.value)


async def test_verify_refuses_a_channel_the_bot_isnt_in_or_that_isnt_a_channel(
        net: TelegramChannelNetwork, tg: FakeTelegram) -> None:
    tg.channel("Acme News", username="acme_news", bot_status="left")
    with pytest.raises(ValueError, match="can't find the channel @acme_news for @HeraldBot"):
        await net.verify(account(tg))
    with pytest.raises(ValueError, match="can't find the channel @nobody_here"):
        await net.verify(account(tg, "@nobody_here"))
    group = tg.group("Team")
    with pytest.raises(ValueError, match="is a supergroup, not a channel"):
        await net.verify(account(tg, str(group["id"])))
    with pytest.raises(ValueError, match="isn't a channel"):
        await net.verify(account(tg, "not a channel!"))


def test_channel_names_are_read_in_the_usual_spellings() -> None:
    assert parse_channel("@acme_news") == parse_channel("acme_news") == parse_channel("https://t.me/acme_news")
    assert parse_channel("-1001234567890") == -1001234567890


# --- posting ------------------------------------------------------------------------------------


async def test_publish_text_sends_a_message_and_returns_its_link(net: TelegramChannelNetwork, tg: FakeTelegram) -> None:
    channel = tg.channel("Acme News", username="acme_news")
    view = await connected(net, tg)
    published = await net.publish(view, outgoing())
    [sent] = form(tg, "sendMessage")
    assert sent.json == {"chat_id": channel["id"], "text": "Spring sale starts today! https://shop.example/sale"}
    message = tg.sent_to(channel)[-1]
    assert message["text"] == "Spring sale starts today! https://shop.example/sale"
    assert published.remote_id == str(message["message_id"])
    assert published.url == f"https://t.me/acme_news/{message['message_id']}"


async def test_a_private_channel_gets_a_t_me_c_link(net: TelegramChannelNetwork, tg: FakeTelegram) -> None:
    channel = tg.channel("Acme Insiders")
    view = await connected(net, tg, str(channel["id"]))
    published = await net.publish(view, outgoing("Hello insiders"))
    internal = str(channel["id"]).removeprefix("-100")
    assert published.url == f"https://t.me/c/{internal}/{published.remote_id}"


async def test_publish_one_image_uploads_it_with_the_caption(net: TelegramChannelNetwork, tg: FakeTelegram) -> None:
    channel = tg.channel("Acme News", username="acme_news")
    view = await connected(net, tg)
    picture = image(1)
    published = await net.publish(view, outgoing("Look!", media=(picture,)))
    [sent] = form(tg, "sendPhoto")
    assert sent.content_type == "multipart/form-data"
    assert sent.form["chat_id"] == str(channel["id"]) and sent.form["caption"] == "Look!"
    assert sent.form["photo"] == {"filename": "img1.png", "content_type": "image/png", "data": picture.data}
    assert published.remote_id == str(tg.sent_to(channel)[-1]["message_id"])


async def test_publish_an_album_puts_the_caption_on_the_first_photo(net: TelegramChannelNetwork,
                                                                    tg: FakeTelegram) -> None:
    channel = tg.channel("Acme News", username="acme_news")
    view = await connected(net, tg)
    pictures = (image(1), image(2), image(3))
    published = await net.publish(view, outgoing("Three looks", media=pictures))
    [sent] = form(tg, "sendMediaGroup")
    assert sent.form["chat_id"] == str(channel["id"])
    assert json.loads(sent.form["media"]) == [
        {"type": "photo", "media": "attach://file0", "caption": "Three looks"},
        {"type": "photo", "media": "attach://file1"},
        {"type": "photo", "media": "attach://file2"},
    ]
    assert [sent.form[f"file{i}"]["data"] for i in range(3)] == [p.data for p in pictures]
    ids = [m["message_id"] for m in tg.sent_to(channel)]
    assert published.remote_id == ",".join(map(str, ids))
    assert published.url == f"https://t.me/acme_news/{ids[0]}"
    assert tg.sent_to(channel)[0]["caption"] == "Three looks" and "caption" not in tg.sent_to(channel)[1]


async def test_more_than_ten_images_or_a_too_long_caption_are_refused_before_sending(
        net: TelegramChannelNetwork, tg: FakeTelegram) -> None:
    tg.channel("Acme News", username="acme_news")
    view = await connected(net, tg)
    before = len(tg.seen)
    with pytest.raises(PublishError) as caught:
        await net.publish(view, outgoing("x", media=tuple(image(i) for i in range(11))))
    assert caught.value.kind == ErrorKind.REJECTED and "at most 10" in caught.value.reason
    with pytest.raises(PublishError) as caught:
        await net.publish(view, outgoing("y" * 1025, media=(image(1),)))
    assert caught.value.kind == ErrorKind.REJECTED and "1024 characters in a caption" in caught.value.reason
    assert len(tg.seen) == before
    assert not net.check(view, "y" * 1025, 1).ok  # and Herald's own check says so when it's written


# --- failures -----------------------------------------------------------------------------------


async def test_429_is_rate_limited_with_telegrams_retry_after(net: TelegramChannelNetwork, tg: FakeTelegram) -> None:
    tg.channel("Acme News", username="acme_news")
    view = await connected(net, tg)
    tg.rate_limit_next("sendMessage", retry_after=7)
    with pytest.raises(PublishError) as caught:
        await net.publish(view, outgoing())
    assert caught.value.kind == ErrorKind.RATE_LIMITED
    assert caught.value.retry_after == 7
    assert "Too Many Requests: retry after 7" in caught.value.reason


@pytest.mark.parametrize("fault", [{"status": 500, "body": {"ok": False, "error_code": 500,
                                                            "description": "Internal Server Error"}},
                                   {"status": 502, "raw": b"<html>Bad Gateway</html>"},
                                   {"drop": True}])
async def test_a_send_that_may_have_arrived_is_unknown_outcome(net: TelegramChannelNetwork, tg: FakeTelegram,
                                                               fault: dict[str, Any]) -> None:
    tg.channel("Acme News", username="acme_news")
    view = await connected(net, tg)
    tg.fail("POST", f"/bot{tg.token}/sendMessage", **fault)
    with pytest.raises(PublishError) as caught:
        await net.publish(view, outgoing())
    assert caught.value.kind == ErrorKind.UNKNOWN_OUTCOME


async def test_an_unreachable_api_is_transient(client: httpx.AsyncClient, tg: FakeTelegram) -> None:
    net = TelegramChannelNetwork(client, FakeClock(), bot_token=tg.token, api_url="http://127.0.0.1:9")
    view = AccountView(id=1, workspace_id=1, network="telegram", name="news", base_url=None,
                       settings={"channel": "@acme_news", "chat_id": -1001}, credentials={})
    with pytest.raises(PublishError) as caught:
        await net.publish(view, outgoing())
    assert caught.value.kind == ErrorKind.TRANSIENT


async def test_a_bot_removed_from_the_channel_needs_the_team(net: TelegramChannelNetwork, tg: FakeTelegram) -> None:
    channel = tg.channel("Acme News", username="acme_news")
    view = await connected(net, tg)
    tg.set_member(channel, tg.bot, "left")
    with pytest.raises(PublishError) as caught:
        await net.publish(view, outgoing())
    assert caught.value.kind == ErrorKind.AUTH_EXPIRED
    assert "bot is not a member of the channel chat" in caught.value.reason
    assert "make the bot an admin of the channel" in caught.value.reason
    tg.set_member(channel, tg.bot, "administrator", can_post_messages=False)
    with pytest.raises(PublishError) as caught:
        await net.publish(view, outgoing())
    assert caught.value.kind == ErrorKind.AUTH_EXPIRED and "need administrator rights" in caught.value.reason


async def test_other_bad_requests_are_rejected_with_telegrams_reason(net: TelegramChannelNetwork,
                                                                     tg: FakeTelegram) -> None:
    tg.channel("Acme News", username="acme_news")
    view = await connected(net, tg)
    tg.fail("POST", f"/bot{tg.token}/sendPhoto", status=400,
            body={"ok": False, "error_code": 400, "description": "Bad Request: PHOTO_INVALID_DIMENSIONS"})
    with pytest.raises(PublishError) as caught:
        await net.publish(view, outgoing("x", media=(image(1),)))
    assert caught.value.kind == ErrorKind.REJECTED
    assert caught.value.reason == "Telegram refused it: PHOTO_INVALID_DIMENSIONS"


async def test_a_revoked_token_at_publish_time_is_auth_expired(net: TelegramChannelNetwork, tg: FakeTelegram) -> None:
    tg.channel("Acme News", username="acme_news")
    view = await connected(net, tg)
    del tg.bots[tg.token]
    with pytest.raises(PublishError) as caught:
        await net.publish(view, outgoing())
    assert caught.value.kind == ErrorKind.AUTH_EXPIRED and "/connect telegram name=news" in caught.value.reason


async def test_no_bot_token_at_all_is_auth_expired_without_a_request(client: httpx.AsyncClient,
                                                                     tg: FakeTelegram) -> None:
    net = TelegramChannelNetwork(client, FakeClock(), api_url=tg.url)
    with pytest.raises(PublishError) as caught:
        await net.publish(account(tg, chat_id=-1001), outgoing())
    assert caught.value.kind == ErrorKind.AUTH_EXPIRED and "no bot token" in caught.value.reason
    assert tg.seen == []


async def test_the_channel_budget_is_twenty_posts_a_minute(net: TelegramChannelNetwork, tg: FakeTelegram) -> None:
    tg.channel("Acme News", username="acme_news")
    view = await connected(net, tg)
    for i in range(20):
        await net.publish(view, outgoing(f"post {i}", delivery_id=i))
    with pytest.raises(PublishError) as caught:
        await net.publish(view, outgoing("one too many"))
    assert caught.value.kind == ErrorKind.RATE_LIMITED and caught.value.retry_after == 3
    assert len(form(tg, "sendMessage")) == 20


async def test_metrics_are_empty_because_the_bot_api_has_no_view_counts(net: TelegramChannelNetwork,
                                                                        tg: FakeTelegram) -> None:
    assert await net.fetch_metrics(account(tg), ["5"]) == {}
    assert await net.fetch_comments(account(tg), ["5"], None) == []
    assert tg.seen == []


# --- through Herald -------------------------------------------------------------------------------


async def test_connect_and_publish_through_herald(db_url: str, client: httpx.AsyncClient, tg: FakeTelegram) -> None:
    clock = FakeClock()
    channel = tg.channel("Acme News", username="acme_news")
    herald = make_herald(db_url, clock)
    herald.networks.add(TelegramChannelNetwork(client, clock, bot_token=tg.token, api_url=tg.url))
    await herald.start()
    try:
        say = herald.console.say
        await say("/setup Acme")
        help_text = await say("/connect telegram")
        assert "channel=@acme_news" in help_text and "no view counts" in help_text
        out = await say("/connect telegram name=news channel=@acme_news")
        assert "Connected news (Telegram channel) — @acme_news (Acme News) on Telegram, posting as @HeraldBot" in out
        out = await say("/draft Hello channel!")
        post_id = int(out.split("#", 1)[1].split(" ", 1)[0].rstrip("."))
        await say("/policy approvals=0")
        out = await say(f"/publish {post_id}")
        message = tg.sent_to(channel)[-1]
        assert message["text"] == "Hello channel!"
        assert f"https://t.me/acme_news/{message['message_id']}" in out
    finally:
        await herald.stop()
