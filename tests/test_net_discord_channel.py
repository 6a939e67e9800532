"""Discord channel connector: a failure before anything is sent comes out classified, never as a bare
exception (which Herald would have to treat as "may have reached the network")."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from bot.networks.discord_channel import DiscordChannelNetwork
from handlers.core.ports import AccountView, ErrorKind, Outgoing, PublishError
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
