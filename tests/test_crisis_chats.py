"""Crisis mode's card in the team chats, through the real python-telegram-bot and discord.py against the fake
APIs: pinned when crisis mode starts (Telegram pinChatMessage, Discord's message pin), edited in place when a post
is held, unpinned and edited to say it ended by /crisis end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.app import Herald
from bot.chats.discord import DiscordFront
from bot.chats.telegram import TelegramFront
from handlers.posts.publishing.due import sweep
from tests.conftest import FakeClock, make_herald
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.telegram_api import FakeTelegram

World = tuple[Herald, FakeTelegram, dict[str, Any], dict[str, Any]]


async def telegram_world(db_url: str, clock: FakeClock, *, can_pin: bool) -> AsyncIterator[World]:
    async with FakeTelegram() as tg:
        alice = tg.user("Alice", username="alice")
        group = tg.group("Acme marketing", admins=(alice,))
        if not can_pin:
            tg.set_member(group, tg.bot, "administrator", can_pin_messages=False)
        herald = make_herald(db_url, clock)
        front = TelegramFront(herald.handle, tg.token, api_url=tg.url, poll_timeout=5, group_rate=(1000, 60))
        tg.watch(front)
        herald.add_front(front)
        await herald.start()
        try:
            yield herald, tg, alice, group
        finally:
            await herald.stop()


@pytest.fixture
async def telegram(db_url: str, clock: FakeClock) -> AsyncIterator[World]:
    async for world in telegram_world(db_url, clock, can_pin=True):
        yield world


@pytest.fixture
async def telegram_no_pin(db_url: str, clock: FakeClock) -> AsyncIterator[World]:
    async for world in telegram_world(db_url, clock, can_pin=False):
        yield world


async def scheduled_in_an_hour(tg: FakeTelegram, alice: dict[str, Any], group: dict[str, Any]) -> None:
    async def command(text: str) -> str:
        return str((await tg.wait_answer(await tg.say(alice, group, text)))["text"])

    await command("/setup Acme")
    assert "Connected brand" in await command("/connect sandbox name=brand")
    await command("/policy approvals=0")
    await command("/draft Spring sale starts today!")
    assert "scheduled for" in await command("/schedule 1 in 1 hour")


def cards(tg: FakeTelegram, method: str) -> list[Any]:
    return [c for c in tg.calls(method) if "CRISIS MODE" in str(c.params.get("text", ""))
            or "Crisis mode ended" in str(c.params.get("text", ""))]


async def test_the_crisis_card_is_pinned_in_telegram_edited_when_a_post_is_held_and_unpinned_at_the_end(
    telegram: World, clock: FakeClock
) -> None:
    herald, tg, alice, group = telegram
    await scheduled_in_an_hour(tg, alice, group)
    await tg.wait_answer(await tg.say(alice, group, "/crisis start Server outage"))
    [card] = cards(tg, "sendMessage")
    card_id = card.result["message_id"]
    [pin] = tg.calls("pinChatMessage")
    assert int(pin.params["message_id"]) == card_id
    assert tg.pinned[group["id"]] == [card_id]

    clock.advance(hours=1, seconds=1)
    await sweep(herald.ctx)  # #1 comes due: held, and the pinned card shows it (no new message)
    assert len(cards(tg, "sendMessage")) == 1
    [edit] = cards(tg, "editMessageText")
    assert int(edit.params["message_id"]) == card_id
    assert "#1 · due" in tg.messages[(group["id"], card_id)]["text"]
    assert not [c for c in tg.calls("sendMessage") if "It's held" in str(c.params.get("text"))]

    answer = await tg.wait_answer(await tg.say(alice, group, "/crisis end"))
    assert answer["text"].startswith("▶️ Crisis mode ended (@alice).")
    [unpin] = tg.calls("unpinChatMessage")
    assert int(unpin.params["message_id"]) == card_id
    assert tg.pinned[group["id"]] == []
    assert tg.messages[(group["id"], card_id)]["text"].startswith("✅ Crisis mode ended")


async def test_without_the_right_to_pin_the_card_still_reaches_the_telegram_group(telegram_no_pin: World) -> None:
    _herald, tg, alice, group = telegram_no_pin
    await scheduled_in_an_hour(tg, alice, group)
    answer = await tg.wait_answer(await tg.say(alice, group, "/crisis start Server outage"))
    assert "🚨 Crisis mode is on." in answer["text"]
    assert len(cards(tg, "sendMessage")) == 1
    assert tg.pinned.get(group["id"], []) == []


async def test_the_crisis_card_is_pinned_in_the_discord_channel_and_unpinned_at_the_end(
    db_url: str, clock: FakeClock
) -> None:
    fake = FakeDiscord()
    await fake.start()
    guild = fake.add_guild("Acme")
    channel = fake.add_channel(guild, "marketing")
    alice = fake.add_member(guild, "alice", manage_guild=True)
    herald = make_herald(db_url, clock)
    herald.add_front(DiscordFront(herald.handle, fake.token, api_url=fake.url, guild_ids=[int(guild)],
                                  guild_ready_timeout=0.05))
    await herald.start()
    try:
        for name, options in (("setup", {"args": "Acme"}), ("connect", {"args": "sandbox name=brand"}),
                              ("crisis", {"args": "start Server outage"})):
            await fake.slash(alice, channel, name, **options)

        def card() -> list[dict[str, Any]]:
            return [m for m in fake.channel_messages(channel) if m["embeds"]
                    and m["embeds"][0]["title"].startswith(("🚨 CRISIS MODE", "✅ Crisis mode ended"))]

        [message] = card()
        assert message["pinned"] is True
        assert len(fake.requests("PUT", f"/api/v10/channels/{channel}/messages/pins/{message['id']}")) == 1
        await fake.slash(alice, channel, "crisis", args="end")
        [message] = card()
        assert message["pinned"] is False
        assert message["embeds"][0]["title"].startswith("✅ Crisis mode ended")
    finally:
        await herald.stop()
        await fake.close()
