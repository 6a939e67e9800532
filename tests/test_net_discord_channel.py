"""Discord channel connector: a failure before anything is sent comes out classified, never as a bare
exception (which Herald would have to treat as "may have reached the network")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from bot.networks.discord_channel import DiscordChannelNetwork
from handlers.core.ports import CANT_TELL, AccountView, ErrorKind, Outgoing, Published, PublishError
from tests.conftest import FakeClock
from tests.fakes import kit
from tests.fakes.discord_api import FakeDiscord


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord("bot-token")
    await server.start()
    try:
        yield server
    finally:
        await server.close()


client = kit.client_fixture()


async def test_no_bot_token_is_auth_expired_before_sending(fake: FakeDiscord, client: httpx.AsyncClient) -> None:
    network = DiscordChannelNetwork(client, FakeClock(), bot_token=None)  # no DISCORD_BOT_TOKEN, no token=
    view = AccountView(id=1, workspace_id=1, network="discord", name="news", base_url=f"{fake.url}/api/v10",
                       settings={"channel_id": "123"}, credentials={})
    with pytest.raises(PublishError) as err:
        await network.publish(view, Outgoing(delivery_id=1, post_id=1, idempotency_key="k", text="hi"))
    assert err.value.kind == ErrorKind.AUTH_EXPIRED and "DISCORD_BOT_TOKEN" in err.value.reason
    assert "/connect discord name=news" in err.value.reason and not fake.seen


# -- a lost answer looked up in the channel (look_for_post) ------------------------------------------------------


def channel_view(fake: FakeDiscord, channel: str) -> AccountView:
    return AccountView(id=1, workspace_id=1, network="discord", name="news", base_url=f"{fake.url}/api/v10",
                       settings={"channel_id": channel, "guild_id": "1"}, credentials={})


def looking(fake: FakeDiscord, client: httpx.AsyncClient) -> tuple[FakeClock, str, DiscordChannelNetwork]:
    """A test's clock (which stamps the fake's messages too), a channel, and the bot's connector."""
    clock = FakeClock()
    fake.now = clock.now
    channel = fake.add_channel(fake.add_guild(), "news")
    return clock, channel, DiscordChannelNetwork(client, clock, bot_token="bot-token")


def delivery(text: str, key: str = "herald-d-7") -> Outgoing:
    return Outgoing(delivery_id=7, post_id=3, idempotency_key=key, text=text)


async def test_a_lost_message_is_found_in_the_channel_by_the_bot_and_its_text(
        fake: FakeDiscord, client: httpx.AsyncClient) -> None:
    clock = FakeClock()
    fake.now = clock.now
    guild = fake.add_guild()
    channel = fake.add_channel(guild, "news")
    network = DiscordChannelNetwork(client, clock, bot_token="bot-token")
    view = channel_view(fake, channel)
    since = clock.now()
    fake.fail("POST", f"/api/v10/channels/{channel}/messages", drop=True, after=True, times=2)
    with pytest.raises(PublishError) as err:
        await network.publish(view, delivery("Spring sale starts today"))
    assert err.value.kind == ErrorKind.UNKNOWN_OUTCOME
    (made,) = fake.channel_messages(channel)
    # someone else wrote the same words; the bot wrote other words: neither is the post
    fake._store(fake._message(channel, {"content": "Spring sale starts today"}, [], {"id": "42", "username": "ann"}))
    await network.publish(view, delivery("Another post", key="herald-d-8"))
    found = await network.look_for_post(view, delivery("Spring sale starts today"), since)
    assert isinstance(found, Published) and found.remote_id == made["id"]
    assert found.url == f"https://discord.com/channels/{guild}/{channel}/{made['id']}"
    assert len(fake.channel_messages(channel)) == 3  # looking posts nothing


async def test_a_message_not_in_the_channel_is_surely_absent_only_once_a_late_send_can_no_longer_land(
        fake: FakeDiscord, client: httpx.AsyncClient) -> None:
    clock, channel, network = looking(fake, client)
    since = clock.now()
    assert await network.look_for_post(channel_view(fake, channel), delivery("Never sent"), since) is CANT_TELL
    clock.advance(minutes=5)
    assert await network.look_for_post(channel_view(fake, channel), delivery("Never sent"), since) is None


async def test_the_look_up_pages_back_to_the_attempt_and_no_further_than_three_pages(
        fake: FakeDiscord, client: httpx.AsyncClient) -> None:
    clock, channel, network = looking(fake, client)
    view = channel_view(fake, channel)
    since = clock.now()
    for i in range(250):
        fake._store(fake._message(channel, {"content": f"Post {i}"}, [], fake.bot_user))
    clock.advance(minutes=10)
    found = await network.look_for_post(view, delivery("Post 0"), since)
    assert isinstance(found, Published) and fake.messages[found.remote_id]["content"] == "Post 0"
    assert len(fake.requests("GET", f"/api/v10/channels/{channel}/messages")) == 3
    assert await network.look_for_post(view, delivery("Not posted"), since) is None
    for i in range(250, 310):
        fake._store(fake._message(channel, {"content": f"Post {i}"}, [], fake.bot_user))
    assert await network.look_for_post(view, delivery("Not posted"), since) is CANT_TELL  # past 300 messages


async def test_the_look_up_cant_tell_through_a_webhook_twice_in_the_channel_or_when_discord_refuses(
        fake: FakeDiscord, client: httpx.AsyncClient) -> None:
    clock, channel, network = looking(fake, client)
    since = clock.now() - timedelta(hours=1)
    hook = AccountView(id=1, workspace_id=1, network="discord", name="news", base_url=f"{fake.url}/api/v10",
                       settings={}, credentials={"webhook": f"{fake.url}/api/v10/webhooks/1/tok"})
    assert await network.look_for_post(hook, delivery("Hello"), since) is CANT_TELL and not fake.seen
    for _ in range(2):
        fake._store(fake._message(channel, {"content": "Hello"}, [], fake.bot_user))
    assert await network.look_for_post(channel_view(fake, channel), delivery("Hello"), since) is CANT_TELL
    fake.fail("GET", f"/api/v10/channels/{channel}/messages", status=403,
              body={"message": "Missing Access", "code": 50001})
    assert await network.look_for_post(channel_view(fake, channel), delivery("Other"), since) is CANT_TELL
