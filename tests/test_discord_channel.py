"""Contract tests of the Discord channel network against the fake Discord's REST API."""

from __future__ import annotations

import io
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from PIL import Image

from bot.networks.discord_channel import DiscordChannelNetwork, nonce_for
from bot.networks.http import new_client
from handlers.core.ports import AccountView, ErrorKind, MediaFile, Outgoing, PublishError, Verified
from tests.conftest import FakeClock
from tests.fakes.discord_api import FakeDiscord

TOKEN = "bot-token"


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord(TOKEN)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with new_client() as shared:
        yield shared


@pytest.fixture
def network(client: httpx.AsyncClient) -> DiscordChannelNetwork:
    return DiscordChannelNetwork(client, FakeClock(), bot_token=TOKEN)


def account(fake: FakeDiscord, **settings: str) -> AccountView:
    secrets: dict[str, Any] = {k: settings.pop(k) for k in ("webhook", "token") if k in settings}
    return AccountView(id=1, workspace_id=1, network="discord", name="news", base_url=f"{fake.url}/api/v10",
                       settings=settings, credentials=secrets)


def outgoing(text: str = "Spring sale starts today!", key: str = "h1a1-0123abcd", images: int = 0) -> Outgoing:
    media = []
    for i in range(images):
        png = io.BytesIO()
        Image.new("RGB", (2, 2), (i * 20 % 255, 0, 0)).save(png, format="PNG")
        media.append(MediaFile(f"sale-{i}.png", "image/png", png.getvalue()))
    return Outgoing(delivery_id=1, post_id=1, idempotency_key=key, text=text, media=tuple(media))


def setup_channel(fake: FakeDiscord) -> tuple[str, str]:
    guild = fake.add_guild("Acme")
    return guild, fake.add_channel(guild, "news")


async def test_verify_a_channel_as_the_bot(fake: FakeDiscord, network: DiscordChannelNetwork) -> None:
    guild, channel = setup_channel(fake)
    verified = await network.verify(account(fake, channel=channel))
    assert isinstance(verified, Verified)
    assert verified.description == f"#news (id {channel}), posted by herald"
    assert verified.settings == {"channel_id": channel, "guild_id": guild, "channel_name": "news"}
    assert fake.requests("GET", f"/api/v10/channels/{channel}")[0].header("authorization") == f"Bot {TOKEN}"
    with pytest.raises(ValueError, match="can't see channel"):
        await network.verify(account(fake, channel="123"))
    with pytest.raises(PublishError) as wrong:
        await network.verify(account(fake, channel=channel, token="wrong"))
    assert wrong.value.kind == ErrorKind.AUTH_EXPIRED
    with pytest.raises(ValueError, match="give channel="):
        await network.verify(account(fake))
    with pytest.raises(ValueError, match="not both"):
        await network.verify(account(fake, channel=channel, webhook="https://discord.com/api/webhooks/1/x"))


async def test_publish_sends_a_nonce_and_a_retry_returns_the_same_message(
        fake: FakeDiscord, network: DiscordChannelNetwork) -> None:
    guild, channel = setup_channel(fake)
    news = account(fake, channel_id=channel, guild_id=guild)
    first = await network.publish(news, outgoing())
    [sent] = fake.requests("POST", f"/api/v10/channels/{channel}/messages")
    assert sent.header("authorization") == f"Bot {TOKEN}"
    assert sent.json == {"content": "Spring sale starts today!", "allowed_mentions": {"parse": []},
                         "nonce": "h1a1-0123abcd", "enforce_nonce": True}
    assert first.url == f"https://discord.com/channels/{guild}/{channel}/{first.remote_id}"
    again = await network.publish(news, outgoing())  # Herald retrying the same delivery
    assert again == first
    assert len(fake.channel_messages(channel)) == 1
    other = await network.publish(news, outgoing(key="h2a1-99999999"))
    assert other.remote_id != first.remote_id


def test_long_idempotency_keys_become_a_25_character_nonce() -> None:
    key = "h123456a7890-" + "f" * 40
    assert len(nonce_for(key)) == 25 and nonce_for(key) == nonce_for(key) != nonce_for(key + "0")
    assert nonce_for("h1a1-0123abcd") == "h1a1-0123abcd"


async def test_a_5xx_is_repeated_once_with_the_same_nonce(fake: FakeDiscord, network: DiscordChannelNetwork) -> None:
    guild, channel = setup_channel(fake)
    news = account(fake, channel_id=channel, guild_id=guild)
    path = f"/api/v10/channels/{channel}/messages"
    fake.fail("POST", path, status=502, after=True)  # the message was made, the answer lost
    published = await network.publish(news, outgoing())
    first, second = fake.requests("POST", path)
    assert first.json["nonce"] == second.json["nonce"] == "h1a1-0123abcd"
    assert [m["id"] for m in fake.channel_messages(channel)] == [published.remote_id]  # one message, not two


async def test_a_5xx_twice_is_an_unknown_outcome(fake: FakeDiscord, network: DiscordChannelNetwork) -> None:
    guild, channel = setup_channel(fake)
    fake.fail("POST", f"/api/v10/channels/{channel}/messages", status=500, times=2)
    with pytest.raises(PublishError) as failed:
        await network.publish(account(fake, channel_id=channel, guild_id=guild), outgoing())
    assert failed.value.kind == ErrorKind.UNKNOWN_OUTCOME
    assert "same nonce" in failed.value.reason


async def test_webhook_posts_with_wait_true(fake: FakeDiscord, network: DiscordChannelNetwork) -> None:
    guild, channel = setup_channel(fake)
    hook = fake.add_webhook(channel, "hook-secret")
    url = f"https://discord.com/api/webhooks/{hook}/hook-secret"
    verified = await network.verify(account(fake, webhook=url))
    assert verified.settings == {"webhook_id": hook, "channel_id": channel, "guild_id": guild}
    news = account(fake, webhook=url, **verified.settings)
    published = await network.publish(news, outgoing())
    [sent] = fake.requests("POST", f"/api/v10/webhooks/{hook}/hook-secret")
    assert sent.query == {"wait": "true"}
    assert "nonce" not in sent.json and sent.header("authorization") is None
    assert published.url == f"https://discord.com/channels/{guild}/{channel}/{published.remote_id}"
    fake.fail("POST", f"/api/v10/webhooks/{hook}/hook-secret", status=503)
    with pytest.raises(PublishError) as failed:  # no nonce: no repeat
        await network.publish(news, outgoing())
    assert failed.value.kind == ErrorKind.UNKNOWN_OUTCOME
    assert len(fake.requests("POST", f"/api/v10/webhooks/{hook}/hook-secret")) == 2
    with pytest.raises(ValueError, match="doesn't know that webhook"):
        await network.verify(account(fake, webhook=f"https://discord.com/api/webhooks/{hook}/wrong"))
    fake.webhooks.clear()
    with pytest.raises(PublishError) as gone:
        await network.publish(news, outgoing(key="h9"))
    assert gone.value.kind == ErrorKind.REJECTED and "webhook was deleted" in gone.value.reason


async def test_images_go_as_multipart_files_with_payload_json(fake: FakeDiscord, network: DiscordChannelNetwork) -> None:
    guild, channel = setup_channel(fake)
    post = outgoing(images=3)
    await network.publish(account(fake, channel_id=channel, guild_id=guild), post)
    [sent] = fake.requests("POST", f"/api/v10/channels/{channel}/messages")
    assert sent.content_type == "multipart/form-data"
    payload = json.loads(sent.form["payload_json"])
    assert payload["nonce"] == "h1a1-0123abcd" and payload["enforce_nonce"] is True
    assert payload["attachments"] == [{"id": i, "filename": f"sale-{i}.png"} for i in range(3)]
    for i in range(3):
        part = sent.form[f"files[{i}]"]
        assert (part["filename"], part["content_type"], part["data"]) == (
            f"sale-{i}.png", "image/png", post.media[i].data)
    [message] = fake.channel_messages(channel)
    assert [a["filename"] for a in message["attachments"]] == ["sale-0.png", "sale-1.png", "sale-2.png"]


async def test_text_and_file_limits(fake: FakeDiscord, network: DiscordChannelNetwork) -> None:
    guild, channel = setup_channel(fake)
    news = account(fake, channel_id=channel, guild_id=guild)
    assert network.check(news, "x" * 2000, 10).ok
    assert not network.check(news, "x" * 2001, 0).ok
    assert not network.check(news, "x", 11).ok
    with pytest.raises(PublishError) as long:
        await network.publish(news, outgoing("x" * 2001))
    assert long.value.kind == ErrorKind.REJECTED and "2000" in long.value.reason
    assert fake.requests("POST") == []
    fake.fail("POST", f"/api/v10/channels/{channel}/messages", status=400, body={
        "message": "Invalid Form Body", "code": 50035,
        "errors": {"content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]}}})
    with pytest.raises(PublishError) as refused:
        await network.publish(news, outgoing())
    assert refused.value.kind == ErrorKind.REJECTED
    assert refused.value.reason.endswith("Invalid Form Body (content: Must be 2000 or fewer in length.)")


async def test_429_waits_for_retry_after_and_global_blocks_every_route(
        fake: FakeDiscord, network: DiscordChannelNetwork) -> None:
    guild, channel = setup_channel(fake)
    other = fake.add_channel(guild, "other")
    news = account(fake, channel_id=channel, guild_id=guild)
    path = f"/api/v10/channels/{channel}/messages"
    fake.fail("POST", path, status=429, body={"message": "You are being rate limited.", "retry_after": 12.5,
                                              "global": False}, headers={"Retry-After": "13", "X-RateLimit-Scope": "user"})
    with pytest.raises(PublishError) as limited:
        await network.publish(news, outgoing())
    assert limited.value.kind == ErrorKind.RATE_LIMITED and limited.value.retry_after == 12.5
    with pytest.raises(PublishError) as held:  # the route is spent: not even sent
        await network.publish(news, outgoing())
    assert held.value.kind == ErrorKind.RATE_LIMITED and 11 < (held.value.retry_after or 0) <= 12.5
    assert len(fake.requests("POST", path)) == 1
    await network.publish(account(fake, channel_id=other, guild_id=guild), outgoing())  # another route is free
    fake.fail("POST", f"/api/v10/channels/{other}/messages", status=429,
              body={"message": "global", "retry_after": 30, "global": True}, headers={"X-RateLimit-Global": "true"})
    with pytest.raises(PublishError):
        await network.publish(account(fake, channel_id=other, guild_id=guild), outgoing(key="h3"))
    network._blocked.clear()
    with pytest.raises(PublishError) as globally:
        await network.publish(news, outgoing(key="h4"))
    assert globally.value.kind == ErrorKind.RATE_LIMITED and "global" in globally.value.reason


async def test_remaining_zero_waits_for_reset_after_before_the_next_call(
        fake: FakeDiscord, network: DiscordChannelNetwork) -> None:
    guild, channel = setup_channel(fake)
    news = account(fake, channel_id=channel, guild_id=guild)
    path = f"/api/v10/channels/{channel}/messages"
    headers = {"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "0.2",
               "X-RateLimit-Bucket": "abc"}
    fake.fail("POST", path, status=200, after=True, raw=b'{"id": "1", "channel_id": "%s"}' % channel.encode(),
              headers=headers)
    await network.publish(news, outgoing())
    started = time.monotonic()
    await network.publish(news, outgoing(key="h5"))  # a short wait, then sent
    assert time.monotonic() - started >= 0.15
    fake.fail("POST", path, status=200, after=True, raw=b'{"id": "2", "channel_id": "%s"}' % channel.encode(),
              headers={**headers, "X-RateLimit-Reset-After": "40"})
    await network.publish(news, outgoing(key="h6"))
    with pytest.raises(PublishError) as deferred:  # a long wait: deferred with the time, nothing sent
        await network.publish(news, outgoing(key="h7"))
    assert deferred.value.kind == ErrorKind.RATE_LIMITED and 39 < (deferred.value.retry_after or 0) <= 40
    assert len(fake.requests("POST", path)) == 3


async def test_401_is_auth_expired_and_403_says_which_permissions(
        fake: FakeDiscord, network: DiscordChannelNetwork) -> None:
    guild, channel = setup_channel(fake)
    with pytest.raises(PublishError) as expired:
        await network.publish(account(fake, channel_id=channel, guild_id=guild, token="revoked"), outgoing())
    assert expired.value.kind == ErrorKind.AUTH_EXPIRED
    fake.fail("POST", f"/api/v10/channels/{channel}/messages", status=403,
              body={"message": "Missing Permissions", "code": 50013})
    with pytest.raises(PublishError) as forbidden:
        await network.publish(account(fake, channel_id=channel, guild_id=guild), outgoing())
    assert forbidden.value.kind == ErrorKind.REJECTED and "Send Messages" in forbidden.value.reason


async def test_metrics_count_reactions_and_leave_out_deleted_messages(
        fake: FakeDiscord, network: DiscordChannelNetwork) -> None:
    guild, channel = setup_channel(fake)
    news = account(fake, channel_id=channel, guild_id=guild)
    first = await network.publish(news, outgoing())
    second = await network.publish(news, outgoing(key="h8"))
    fake.messages[first.remote_id]["reactions"] = [
        {"count": 4, "count_details": {"normal": 3, "burst": 1}, "me": False, "emoji": {"id": None, "name": "🔥"}},
        {"count": 2, "count_details": {"normal": 2, "burst": 0}, "me": False, "emoji": {"id": None, "name": "👍"}},
    ]
    del fake.messages[second.remote_id]
    metrics = await network.fetch_metrics(news, [first.remote_id, second.remote_id])
    assert list(metrics) == [first.remote_id]
    assert metrics[first.remote_id].likes == 6 and metrics[first.remote_id].comments is None
    assert await network.fetch_comments(news, [first.remote_id], None) == []
