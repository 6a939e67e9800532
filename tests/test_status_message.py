"""One status message per post in each chat: a post still publishing, and its final outcome, edit the message
Herald sent for it (Telegram editMessageText, Discord's PATCH of the channel message) instead of adding a new
one each retry round; a message Herald can't edit any more (deleted) is replaced by a new one.

Through the real python-telegram-bot and discord.py against the fake APIs, and the console, which prints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import select

from bot.app import Herald
from bot.chats.discord import DiscordFront
from bot.chats.telegram import TelegramFront
from handlers.posts.publishing.due import sweep
from storage.models import Account, Delivery
from tests.conftest import FakeClock, Team, make_herald
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.telegram_api import FakeTelegram


def rate_limit_lifted(herald: Herald) -> None:
    """The sandbox account stops answering 429 (its `fail=rate_limit` removed): the next round sends."""
    with herald.db.session() as session:
        account = session.exec(select(Account)).one()
        account.settings = {k: v for k, v in account.settings.items() if k != "fail"}


async def next_round(herald: Herald, clock: FakeClock) -> None:
    """Herald's clock at the delivery's retry time, and the sweep run as the scheduler would."""
    with herald.db.session() as session:
        delivery = session.exec(select(Delivery)).one()
        assert delivery.not_before is not None, (delivery.state, delivery.last_error)
        clock.current = delivery.not_before + timedelta(seconds=1)
    await sweep(herald.ctx)


def status_of(text: str, post_id: int) -> bool:
    return text.startswith((f"⏳ #{post_id}:", f"📣 #{post_id} ", f"⚠️ #{post_id} ", f"❌ #{post_id} "))


# -- Telegram ------------------------------------------------------------------------------------------


@pytest.fixture
async def telegram(db_url: str, clock: FakeClock) -> AsyncIterator[tuple[Herald, FakeTelegram, dict[str, Any],
                                                                            dict[str, Any]]]:
    async with FakeTelegram() as tg:
        alice = tg.user("Alice", username="alice")
        group = tg.group("Acme marketing", admins=(alice,))
        herald = make_herald(db_url, clock)
        front = TelegramFront(herald.handle, tg.token, api_url=tg.url, poll_timeout=5, group_rate=(1000, 60))
        tg.watch(front)
        herald.add_front(front)
        await herald.start()
        try:
            yield herald, tg, alice, group
        finally:
            await herald.stop()


async def rate_limited_post_in_telegram(tg: FakeTelegram, alice: dict[str, Any], group: dict[str, Any],
                                        herald: Herald, clock: FakeClock) -> None:
    """Post #1 on a sandbox account that answers 429, scheduled in an hour; the hour passes and its first send
    is refused: Herald tells the group its status."""
    async def command(text: str) -> dict[str, Any]:
        return await tg.wait_answer(await tg.say(alice, group, text))

    await command("/setup Acme")
    assert "Connected brand" in (await command("/connect sandbox name=brand fail=rate_limit"))["text"]
    await command("/policy approvals=0")
    await command("/draft Spring sale starts today!")
    assert "scheduled for" in (await command("/schedule 1 in 1 hour"))["text"]
    clock.advance(hours=1, seconds=1)
    await sweep(herald.ctx)


def telegram_statuses(tg: FakeTelegram, method: str) -> list[dict[str, Any]]:
    return [c.params for c in tg.calls(method) if status_of(str(c.params.get("text", "")), 1)]


async def test_a_paced_post_then_sent_is_one_telegram_message_edited_in_place(
    telegram: tuple[Herald, FakeTelegram, dict[str, Any], dict[str, Any]], clock: FakeClock,
) -> None:
    herald, tg, alice, group = telegram
    await rate_limited_post_in_telegram(tg, alice, group, herald, clock)
    [notice] = telegram_statuses(tg, "sendMessage")
    assert notice["text"].startswith("⏳ #1: 0 of 1 sent so far"), notice["text"]
    message_id = tg.calls("sendMessage")[-1].result["message_id"]

    await next_round(herald, clock)  # refused again: a new attempt, so news
    await next_round(herald, clock)  # and again
    rate_limit_lifted(herald)
    await next_round(herald, clock)  # sent

    assert len(telegram_statuses(tg, "sendMessage")) == 1  # no second status message: the first one, edited
    edits = telegram_statuses(tg, "editMessageText")
    assert [int(e["message_id"]) for e in edits] == [message_id] * 3, edits
    assert edits[0]["text"].startswith("⏳ #1: 0 of 1 sent so far")
    assert "retrying by itself at" in edits[1]["text"]
    assert edits[-1]["text"].startswith("📣 #1 is published on 1 account(s):"), edits[-1]["text"]
    shown = tg.messages[(group["id"], message_id)]["text"]
    assert shown.startswith("📣 #1 is published on 1 account(s):"), shown


async def test_a_status_message_deleted_from_telegram_is_sent_again_as_a_new_one(
    telegram: tuple[Herald, FakeTelegram, dict[str, Any], dict[str, Any]], clock: FakeClock,
) -> None:
    herald, tg, alice, group = telegram
    await rate_limited_post_in_telegram(tg, alice, group, herald, clock)
    first = tg.calls("sendMessage")[-1].result["message_id"]
    del tg.messages[(group["id"], first)]  # someone deleted it: "message to edit not found"

    rate_limit_lifted(herald)
    await next_round(herald, clock)
    last = tg.calls("sendMessage")[-1]
    assert last.params["text"].startswith("📣 #1 is published on 1 account(s):"), last.params["text"]
    assert last.result["message_id"] != first
    assert telegram_statuses(tg, "editMessageText") == []  # the edit was refused, not made
    shown = tg.messages[(group["id"], last.result["message_id"])]["text"]
    assert shown.startswith("📣 #1 is published on 1 account(s):"), shown


# -- Discord -------------------------------------------------------------------------------------------


async def test_a_paced_post_then_sent_is_one_discord_message_edited_in_place(db_url: str, clock: FakeClock) -> None:
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
        for name, options in (("setup", {"args": "Acme"}), ("connect", {"args": "sandbox name=brand fail=rate_limit"}),
                              ("policy", {"args": "approvals=0"}), ("draft", {"text": "Spring sale starts today!"}),
                              ("schedule", {"post": "1", "when": "in 1 hour"})):
            await fake.slash(alice, channel, name, **options)

        def statuses() -> list[dict[str, Any]]:
            return [m for m in fake.channel_messages(channel) if m["embeds"] and status_of(m["embeds"][0]["title"], 1)]

        clock.advance(hours=1, seconds=1)
        await sweep(herald.ctx)  # its first send is refused: the status goes to the channel
        [notice] = statuses()
        assert notice["embeds"][0]["title"].startswith("⏳ #1: 0 of 1 sent so far"), notice["embeds"]
        await next_round(herald, clock)
        await next_round(herald, clock)
        rate_limit_lifted(herald)
        await next_round(herald, clock)

        [message] = statuses()  # still one message in the channel ...
        assert message["id"] == notice["id"]
        assert message["embeds"][0]["title"].startswith("📣 #1 is published on 1 account(s):"), message["embeds"]
        patches = fake.requests("PATCH", f"/api/v10/channels/{channel}/messages/{notice['id']}")
        assert len(patches) == 3  # ... edited at each change of status
        posts = [r for r in fake.requests("POST", f"/api/v10/channels/{channel}/messages")
                 if "#1" in r.body.decode(errors="replace")]
        assert len(posts) == 1, [p.body for p in posts]
    finally:
        await herald.stop()
        await fake.close()


# -- the console ---------------------------------------------------------------------------------------


async def test_the_console_prints_each_status_as_it_changes(team: Team) -> None:
    await team.setup_workspace(accounts=())
    await team.say("alice", "/connect sandbox name=brand fail=rate_limit")
    post_id = await team.approved_post()
    assert (await team.say("alice", f"/publish {post_id}")).startswith(f"⏳ #{post_id}: 0 of 1 sent so far")
    rate_limit_lifted(team.herald)
    with team.herald.db.session() as session:
        delivery = session.exec(select(Delivery)).one()
        assert delivery.not_before is not None
        wait = delivery.not_before - team.clock.now()
    said = await team.tick(seconds=wait.total_seconds() + 1)
    assert said.startswith(f"📣 #{post_id} is published on 1 account(s):"), said
