"""The Telegram front end, end to end: the real python-telegram-bot Application against a fake Bot API.

Every assertion is on what the bot actually sent to the fake server (messages, edits, callback
answers, ForceReply questions) and on Herald's database.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import ClientSession
from PIL import Image
from sqlmodel import select

from bot.app import Herald
from bot.chats.buttons import TELEGRAM
from bot.chats.telegram import TelegramFront, split_text
from handlers.core.chat import Actor, Button, ChatAddress, Command, Reply
from handlers.core.commands import COMMANDS
from handlers.engagement.metrics import poll_metrics
from handlers.posts.publishing.due import sweep
from storage.models import Account, Media, Member, Post
from tests.conftest import FakeClock, make_herald
from tests.fakes.telegram_api import FakeTelegram, utf16_len


def png(color: tuple[int, int, int], size: tuple[int, int] = (6, 4)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


@dataclass
class World:
    herald: Herald
    front: TelegramFront
    tg: FakeTelegram
    clock: FakeClock
    group: dict[str, Any]
    alice: dict[str, Any]  # the group's creator: a chat admin
    bob: dict[str, Any]
    carol: dict[str, Any]  # no username

    async def reply_to(self, message: dict[str, Any]) -> dict[str, Any]:
        """The bot's answer to a message (Herald answers commands as replies)."""
        return await self.tg.wait_answer(message)

    async def cmd(self, person: dict[str, Any], text: str, *, chat: dict[str, Any] | None = None,
                  reply_to: dict[str, Any] | None = None) -> dict[str, Any]:
        message = await self.tg.say(person, chat or self.group, text, reply_to=reply_to)
        return await self.reply_to(message)

    async def press(self, person: dict[str, Any], message: dict[str, Any], label: str) -> dict[str, Any]:
        """Press a button; returns the parameters of the bot's answerCallbackQuery."""
        query_id = await self.tg.press(person, message, label)
        answered = await self.tg.wait_until(
            lambda: next((c for c in self.tg.calls("answerCallbackQuery")
                          if c.params["callback_query_id"] == query_id), None),
            what=f"the bot never answered the press of {label!r}")
        return answered.params

    def current(self, message: dict[str, Any]) -> dict[str, Any]:
        return self.tg.messages[(message["chat"]["id"], message["message_id"])]

    def snapshot(self) -> dict[str, list[Any]]:
        from sqlmodel import SQLModel

        with self.herald.db.session() as session:
            return {t.name: [tuple(r) for r in session.execute(t.select()).all()]
                    for t in SQLModel.metadata.sorted_tables}

    async def setup(self) -> None:
        """alice sets up the group with a sandbox account; bob becomes approver by a reply."""
        assert "is ready" in (await self.cmd(self.alice, "/setup Acme"))["text"]
        assert "Connected brand" in (await self.cmd(self.alice, "/connect sandbox name=brand"))["text"]
        hello = await self.tg.say(self.bob, self.group, "hi, I'm Bob")
        answer = await self.cmd(self.alice, "/role approver", reply_to=hello)
        assert answer["text"] == "@Bob_M is now approver (was viewer).", answer["text"]


def post_number(text: str) -> int:
    return int(text.split("#", 1)[1].split(" ", 1)[0].rstrip(".:"))


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


def new_front(herald: Herald, tg: FakeTelegram, **kwargs: Any) -> TelegramFront:
    options = {"api_url": tg.url, "poll_timeout": 5, "album_wait": 0.15, "group_rate": (1000, 60), **kwargs}
    front = TelegramFront(herald.handle, tg.token, **options)
    tg.watch(front)  # tests wait for an update to be handled, never sleep to see that nothing more comes
    return front


@pytest.fixture
async def world(db_url: str, clock: FakeClock, tg: FakeTelegram) -> AsyncIterator[World]:
    alice = tg.user("Alice", username="alice", last_name="Admin")
    bob = tg.user("Bob", username="Bob_M")
    carol = tg.user("Carol", last_name="Smith")
    group = tg.group("Acme marketing", admins=(alice,), members=(bob, carol))
    herald = make_herald(db_url, clock)
    front = new_front(herald, tg)
    herald.add_front(front)
    await herald.start()
    world = World(herald, front, tg, clock, group, alice, bob, carol)
    try:
        yield world
    finally:
        await world.herald.stop()  # a test may have restarted Herald: stop the one running now


# --- the whole flow ----------------------------------------------------------------------------


async def test_a_team_drafts_approves_schedules_publishes_and_reads_stats_in_a_group(world: World) -> None:
    tg, group = world.tg, world.group
    await world.setup()
    with world.herald.db.session() as session:
        members = {(m.user_id, m.name): m.role for m in session.exec(select(Member)).all()}
    assert members == {(str(world.alice["id"]), "@alice"): "admin", (str(world.bob["id"]), "@Bob_M"): "approver"}

    card = await world.cmd(world.alice, "/draft Spring sale starts today! <b>50%</b> & more")
    post_id = post_number(card["text"])
    assert f"Draft #{post_id} saved." in card["text"]
    assert "│ Spring sale starts today! <b>50%</b> & more" in card["text"]  # escaped: shown as typed
    sent = tg.calls("sendMessage")[-1].params
    assert sent["parse_mode"] == "HTML" and "&lt;b&gt;50%&lt;/b&gt; &amp; more" in sent["text"]
    labels = [b["text"] for row in card["reply_markup"]["inline_keyboard"] for b in row]
    assert labels == ["Submit for approval", "Preview", "Schedule…"]

    # Schedule… asks "When?" with a ForceReply aimed at alice; her reply schedules the post
    answer = await world.press(world.alice, card, "Schedule…")
    assert answer.get("show_alert") in (None, False, "false")
    question = await tg.wait_sent(group, "When? e.g. tomorrow 9am")
    assert question["force_reply_markup"]["force_reply"] is True
    assert question["force_reply_markup"]["selective"] is True
    assert "@alice" in question["text"]  # the mention makes the selective prompt reach her
    outcome = await world.cmd(world.alice, "tomorrow 9am", reply_to=question)
    assert f"🗓 #{post_id} is set for Tue 24 Nov 2026 09:00" in outcome["text"]
    assert world.current(card)["text"].startswith(f"🗓 #{post_id} is set for")  # the card shows its time
    assert world.current(card)["edit_date"]

    # Submit: the card stays, the approval card with its buttons is posted in the group
    await world.press(world.alice, card, "Submit for approval")
    review = await tg.wait_sent(group, f"asks for approval of #{post_id}")
    assert "🔔 @alice asks for approval" in review["text"]
    assert f"#{post_id} was submitted for approval by @alice." in world.current(card)["text"]
    assert "reply_markup" not in world.current(card)  # in review: no draft buttons any more

    # bob approves by button: the approval card is edited to show it, and the group is told
    after = tg.last_id(group)
    answer = await world.press(world.bob, review, "Approve")
    assert answer["text"].startswith(f"✅ @Bob_M approved #{post_id} (1 of 1). Approved and scheduled")
    edited = world.current(review)
    assert "✅ @Bob_M approved" in edited["text"] and "Approvals: 1 of 1" in edited["text"]
    assert "reply_markup" not in edited  # decided: no buttons left
    await tg.wait_sent(group, f"✅ @Bob_M approved #{post_id}", after=after)
    assert world.herald.db and world_post(world, post_id).state == "scheduled"

    # the clock reaches the time: the publish result arrives in the group
    after = tg.last_id(group)
    world.clock.advance(days=1)
    await sweep(world.herald.ctx)
    result = await tg.wait_sent(group, f"#{post_id}", after=after)
    assert "brand" in result["text"] and "published" in result["text"].lower()

    # numbers are read later; /stats shows them
    world.clock.advance(hours=2)
    assert await poll_metrics(world.herald.ctx) == 1
    stats = await world.cmd(world.bob, f"/stats {post_id}")
    assert stats["photo"]  # the chart, with the numbers as its caption (tests/test_stats.py decodes the PNG)
    assert stats["caption"].startswith(f"📊 #{post_id} — published")
    assert "brand (sandbox):" in stats["caption"] and "likes" in stats["caption"] and "views" in stats["caption"]


def world_post(world: World, post_id: int) -> Post:
    with world.herald.db.session() as session:
        post = session.get(Post, post_id)
        assert post is not None
        return post


# --- starting -----------------------------------------------------------------------------------


async def test_start_registers_every_command_with_its_summary(world: World) -> None:
    commands = world.tg.commands
    assert commands is not None
    assert [c["command"] for c in commands] == list(COMMANDS)
    assert {c["command"]: c["description"] for c in commands}["draft"] == COMMANDS["draft"].summary
    assert all(1 <= len(c["description"]) <= 256 for c in commands)
    assert world.tg.calls("deleteWebhook")  # polling starts by making sure no webhook is set
    await world.cmd(world.alice, "/help")  # answered: so updates are being fetched
    assert world.tg.requests("POST", f"/bot{world.tg.token}/getUpdates")


async def test_a_command_addressed_to_herald_by_name_works_and_one_for_another_bot_is_ignored(world: World) -> None:
    out = await world.cmd(world.alice, "/setup@HeraldBot Acme")
    assert "Workspace 'Acme' is ready and @alice is its admin." in out["text"]
    before = len(world.tg.sent_to(world.group))
    await world.tg.say(world.alice, world.group, "/help@OtherBot")
    await world.tg.say(world.alice, world.group, "/weather")  # some other bot's command
    await world.cmd(world.alice, "/help policy")  # answered, so the two above were handled before it
    assert len(world.tg.sent_to(world.group)) == before + 1


async def test_a_chat_admin_of_the_group_is_a_herald_admin_and_a_member_is_a_viewer(world: World) -> None:
    await world.cmd(world.alice, "/setup Acme")
    refusal = await world.cmd(world.carol, "/connect sandbox name=brand")
    assert refusal["text"].startswith("✋ Only admins can")
    assert "Carol Smith" in refusal["text"]  # no username: the full name
    world.tg.set_member(world.group, world.carol, "administrator")
    world.front.admins.clear()  # the admin list is cached for a minute
    assert "Connected brand" in (await world.cmd(world.carol, "/connect sandbox name=brand"))["text"]


# --- buttons --------------------------------------------------------------------------------------


async def test_a_viewer_pressing_approve_gets_a_refusal_alert_and_nothing_changes(world: World) -> None:
    await world.setup()
    card = await world.cmd(world.alice, "/draft Hello")
    post_id = post_number(card["text"])
    await world.cmd(world.alice, f"/submit {post_id}")
    review = await world.tg.wait_sent(world.group, "asks for approval")
    before, edits, sent = world.snapshot(), len(world.tg.calls("editMessageText")), len(world.tg.sent_to(world.group))
    answer = await world.press(world.carol, review, "Approve")
    assert answer["show_alert"] in (True, "true")
    assert answer["text"].startswith("✋ Only ")
    assert world.snapshot() == before
    assert len(world.tg.calls("editMessageText")) == edits
    assert len(world.tg.sent_to(world.group)) == sent


async def test_a_stale_approve_button_after_an_edit_is_refused_in_an_alert(world: World) -> None:
    await world.setup()
    card = await world.cmd(world.alice, "/draft Hello")
    post_id = post_number(card["text"])
    await world.cmd(world.alice, f"/submit {post_id}")
    review = await world.tg.wait_sent(world.group, "asks for approval")
    await world.cmd(world.alice, f"/edit {post_id} Hello again")
    before, edits = world.snapshot(), len(world.tg.calls("editMessageText"))
    answer = await world.press(world.bob, review, "Approve")
    assert answer["show_alert"] in (True, "true")
    assert f"That button is for revision 1 of #{post_id}" in answer["text"]
    assert len(answer["text"]) <= 200
    assert world.snapshot() == before
    assert len(world.tg.calls("editMessageText")) == edits


async def test_request_changes_asks_for_the_note_and_the_reply_sends_it(world: World) -> None:
    await world.setup()
    card = await world.cmd(world.alice, "/draft Hello")
    post_id = post_number(card["text"])
    await world.cmd(world.alice, f"/submit {post_id}")
    review = await world.tg.wait_sent(world.group, "asks for approval")
    await world.press(world.bob, review, "Request changes")
    question = await world.tg.wait_sent(world.group, f"What should change in #{post_id}?")
    assert question["force_reply_markup"]["selective"] is True
    # someone else answering the question is not bob's note
    await world.tg.say(world.carol, world.group, "looks fine to me", reply_to=question)
    answer = await world.cmd(world.bob, "Please add the price", reply_to=question)
    assert f"✏️ @Bob_M asked for changes on #{post_id}: Please add the price" in answer["text"]
    assert world_post(world, post_id).state == "changes_requested"
    assert "✏️ @Bob_M asked for changes: Please add the price" in world.current(review)["text"]
    assert "reply_markup" not in world.current(review)


async def test_buttons_carry_their_command_in_the_callback_data_and_survive_a_restart(
        world: World, db_url: str, clock: FakeClock) -> None:
    await world.setup()
    card = await world.cmd(world.alice, "/draft Hello")
    post_id = post_number(card["text"])
    await world.cmd(world.alice, f"/submit {post_id}")
    review = await world.tg.wait_sent(world.group, "asks for approval")
    data = [b["callback_data"] for row in review["reply_markup"]["inline_keyboard"] for b in row]
    assert data == [f"h:approve post={post_id} revision=1", f"p:changes post={post_id} revision=1",
                    f"p:reject post={post_id} revision=1"]
    await world.herald.stop()  # a new process: nothing of the old one's memory is left
    herald = make_herald(db_url, clock)
    herald.add_front(new_front(herald, world.tg))
    await herald.start()
    world.herald = herald
    answer = await world.press(world.bob, review, "Approve")
    assert answer["text"].startswith(f"✅ @Bob_M approved #{post_id}")
    assert world_post(world, post_id).state == "approved"


def test_callback_data_round_trips_and_stays_within_64_bytes() -> None:
    button = Button("Go", "schedule", {"post": 12, "text": "next slot", "flag": True}, prompt="When?")
    data = TELEGRAM.encode(button)
    assert data == "p:schedule post=12 text:next%20slot flag!true"
    decoded = TELEGRAM.decode(data)
    assert decoded is not None
    assert (decoded.command, decoded.args, decoded.prompt) == ("schedule", button.args, "")
    assert TELEGRAM.encode(Button("x", "approve", {"note": "y" * 70})) is None  # too long: kept in memory instead
    assert TELEGRAM.decode("something else") is None


def test_long_text_is_split_under_4096_utf16_units_at_line_breaks() -> None:
    text = "\n".join(f"line {i} 🌸 " + "x" * 50 for i in range(200))
    pieces = split_text(text)
    assert len(pieces) > 2
    assert all(utf16_len(p) <= 4096 for p in pieces)
    assert "\n".join(pieces) == text


async def test_a_long_reply_arrives_in_several_messages(world: World) -> None:
    await world.setup()
    long_text = "\n".join(f"Line {i}: " + "spring sale " * 6 for i in range(80))  # ~6,000 characters
    draft = await world.tg.say(world.alice, world.group, f"/draft {long_text}")
    await world.reply_to(draft)
    await world.tg.wait_handled(draft)  # every piece is sent
    texts = [c.params["text"] for c in world.tg.calls("sendMessage")[-2:]]
    assert all(utf16_len(t) <= 4096 for t in texts)
    cards = [m for m in world.tg.sent_to(world.group) if "Line 79" in m["text"] or "Draft #" in m["text"]]
    assert len(cards) == 2 and "reply_markup" in cards[-1]  # the buttons go with the last piece


# --- asking -------------------------------------------------------------------------------------


async def test_draft_without_text_asks_with_force_reply_and_the_answer_becomes_the_draft(world: World) -> None:
    await world.setup()
    question = await world.cmd(world.alice, "/draft")
    assert "What should the post say?" in question["text"]
    assert question["force_reply_markup"] == {"force_reply": True, "selective": True,
                                              "input_field_placeholder": "What should the post say?"}
    card = await world.cmd(world.alice, "New arrivals are in!", reply_to=question)
    post_id = post_number(card["text"])
    assert world_post(world, post_id).text == "New arrivals are in!"
    assert world_post(world, post_id).author_name == "@alice"


async def test_in_a_private_chat_the_next_message_answers_the_question(world: World) -> None:
    dm = world.tg.private(world.alice)
    await world.cmd(world.alice, "/setup Solo", chat=dm)
    await world.cmd(world.alice, "/connect sandbox name=brand", chat=dm)
    question = await world.cmd(world.alice, "/draft", chat=dm)
    assert "What should the post say?" in question["text"]
    message = await world.tg.say(world.alice, dm, "Typed without replying")
    card = await world.reply_to(message)
    assert "Draft #1 saved." in card["text"]
    start = await world.cmd(world.bob, "/start", chat=world.tg.private(world.bob))  # Telegram's Start button
    assert "Herald drafts, approves" in start["text"]


# --- secrets and private replies ----------------------------------------------------------------


async def test_connect_with_a_token_in_the_group_deletes_the_message_and_stores_nothing(world: World) -> None:
    await world.cmd(world.alice, "/setup Acme")
    before = world.snapshot()
    message = await world.tg.say(world.alice, world.group, "/connect sandbox name=brand token=s3cret-value")
    answer = await world.tg.wait_sent(world.group, "holds credentials")
    assert answer["text"].startswith("✋ ")
    deletes = await world.tg.wait_call("deleteMessage")
    assert int(deletes[0].params["message_id"]) == message["message_id"]
    assert (world.group["id"], message["message_id"]) not in world.tg.messages
    assert world.snapshot() == before
    with world.herald.db.session() as session:
        assert session.exec(select(Account)).all() == []
    assert all("s3cret" not in (c.params.get("text") or "") for c in world.tg.calls())


@pytest.mark.parametrize("line", [
    "/connect mastodn name=brand access_token=s3cret-value",  # a typo in the network
    "/connect sandbox token=s3cret-value",  # name= missing
    "/connect sandbox name=brand tokn=x token=s3cret-value",  # a key the network doesn't take
    '/connect sandbox name=brand "token=s3cret-value',  # broken quoting
    "/connect sandbox name=brand token = s3cret-value",  # not key=value
    "/connect snapchat name=brand api_key=s3cret-value",  # a network nobody knows, a common secret name
])
async def test_a_token_in_the_group_is_deleted_whatever_else_is_wrong_with_the_line(world: World, line: str) -> None:
    await world.cmd(world.alice, "/setup Acme")
    before = world.snapshot()
    message = await world.tg.say(world.alice, world.group, line)
    deletes = await world.tg.wait_call("deleteMessage")
    assert int(deletes[0].params["message_id"]) == message["message_id"]
    assert (world.group["id"], message["message_id"]) not in world.tg.messages
    answer = await world.tg.wait_sent(world.group, "holds credentials", after=message["message_id"])
    assert "revoke it" in answer["text"] and "s3cret" not in answer["text"]
    assert world.snapshot() == before


async def test_a_token_from_a_viewer_is_deleted_too(world: World) -> None:
    await world.cmd(world.alice, "/setup Acme")
    message = await world.tg.say(world.bob, world.group, "/connect sandbox name=brand token=s3cret-value")
    deletes = await world.tg.wait_call("deleteMessage")
    assert int(deletes[0].params["message_id"]) == message["message_id"]
    await world.tg.wait_sent(world.group, "holds credentials", after=message["message_id"])


async def test_a_token_the_bot_may_not_delete_is_declared_exposed(world: World) -> None:
    await world.cmd(world.alice, "/setup Acme")
    world.tg.set_member(world.group, world.tg.bot, "member")  # no right to delete others' messages
    message = await world.tg.say(world.alice, world.group, "/connect sandbox name=brand token=s3cret-value")
    answer = await world.tg.wait_sent(world.group, "holds credentials", after=message["message_id"])
    assert answer["text"].startswith("✋ I couldn't delete your message")
    assert "exposed to everyone in this chat and must be revoked" in answer["text"]
    assert (world.group["id"], message["message_id"]) in world.tg.messages
    with world.herald.db.session() as session:
        assert session.exec(select(Account)).all() == []


async def test_connect_with_a_token_in_a_private_chat_stores_it(world: World) -> None:
    dm = world.tg.private(world.alice)
    await world.cmd(world.alice, "/setup Solo", chat=dm)
    answer = await world.cmd(world.alice, "/connect sandbox name=brand token=s3cret-value", chat=dm)
    assert "Connected brand" in answer["text"]
    assert not world.tg.calls("deleteMessage")


# --- photos -------------------------------------------------------------------------------------


async def test_an_album_with_the_caption_draft_makes_a_draft_with_both_images(world: World) -> None:
    await world.setup()
    red, green = png((255, 0, 0)), png((0, 255, 0), (8, 8))
    photos = await world.tg.send_album(world.alice, world.group, [red, green], caption="/draft New colours!")
    card = await world.reply_to(photos[0])
    post_id = post_number(card["text"])
    assert "Images: 2" in card["text"]
    post = world_post(world, post_id)
    assert post.text == "New colours!"
    with world.herald.db.session() as session:
        rows = [session.get(Media, i) for i in post.media]
    assert [r.data for r in rows if r] == [red, green]  # the full-size photos, in order
    assert [r.content_type for r in rows if r] == ["image/png", "image/png"]
    assert len(world.tg.calls("getFile")) == 2


async def test_photos_right_after_a_draft_or_in_reply_to_its_card_are_attached(world: World) -> None:
    await world.setup()
    card = await world.cmd(world.alice, "/draft Autumn")
    post_id = post_number(card["text"])
    photo = await world.tg.send_photo(world.alice, world.group, png((1, 2, 3)))
    answer = await world.reply_to(photo)
    assert f"#{post_id}: 1 file(s) attached (1 in all)." in answer["text"]
    reply_photo = await world.tg.send_photo(world.bob, world.group, png((4, 5, 6)), reply_to=card)
    refusal = await world.reply_to(reply_photo)  # bob is an approver, not an editor
    assert refusal["text"].startswith("✋ ")
    assert len(world_post(world, post_id).media) == 1


async def test_a_random_photo_in_the_group_is_ignored(world: World) -> None:
    await world.setup()
    before = len(world.tg.log)
    cat = await world.tg.send_photo(world.carol, world.group, png((9, 9, 9)), caption="our office cat")
    await world.tg.wait_handled(cat)
    assert [c.method for c in world.tg.log[before:] if c.method != "getUpdates"] == []


# --- rate limits --------------------------------------------------------------------------------


async def test_a_429_on_send_message_is_waited_out_and_the_message_still_arrives(world: World) -> None:
    world.tg.rate_limit_next("sendMessage", retry_after=1)
    started = asyncio.get_running_loop().time()
    answer = await world.cmd(world.alice, "/setup Acme")
    assert "is ready" in answer["text"]
    assert asyncio.get_running_loop().time() - started >= 1.0
    assert len(world.tg.requests("POST", f"/bot{world.tg.token}/sendMessage")) == 2


async def test_the_rate_limiter_keeps_telegrams_limits_by_default(tg: FakeTelegram, db_url: str,
                                                                  clock: FakeClock) -> None:
    front = TelegramFront(make_herald(db_url, clock).handle, tg.token, api_url=tg.url)
    limiter = front.build().bot.rate_limiter
    assert limiter is not None
    assert (limiter._base_limiter.max_rate, limiter._base_limiter.time_period) == (30, 1)
    assert (limiter._group_max_rate, limiter._group_time_period) == (20, 60)
    assert limiter._max_retries >= 5


# --- webhook ------------------------------------------------------------------------------------


async def test_webhook_mode_sets_the_webhook_and_handles_posted_updates(tg: FakeTelegram, db_url: str,
                                                                        clock: FakeClock) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    alice = tg.user("Alice", username="alice")
    group = tg.group("Acme", admins=(alice,))
    herald = make_herald(db_url, clock)
    url = f"http://127.0.0.1:{port}/telegram/hook"
    herald.add_front(new_front(herald, tg, webhook_url=url, webhook_listen="127.0.0.1", webhook_port=port,
                               webhook_secret="s3cret_hook"))
    await herald.start()
    try:
        hook = tg.calls("setWebhook")[-1].params
        assert hook["url"] == url and hook["secret_token"] == "s3cret_hook"
        assert not tg.requests("POST", f"/bot{tg.token}/getUpdates")
        await tg.say(alice, group, "/setup Acme")  # the fake POSTs it to the webhook with the secret header
        assert tg.webhook_deliveries[-1][0] == 200
        await tg.wait_sent(group, "Workspace 'Acme' is ready")
        # a POST without the secret is refused
        async with ClientSession() as session, session.post(url, json={"update_id": 999}) as response:
            assert response.status == 403
    finally:
        await herald.stop()


# --- private replies, images, notices -----------------------------------------------------------


async def stub_front(tg: FakeTelegram, reply: Reply) -> tuple[TelegramFront, list[Command]]:
    seen: list[Command] = []

    async def handle(command: Command) -> Reply:
        seen.append(command)
        return reply

    front = TelegramFront(handle, tg.token, api_url=tg.url, poll_timeout=5, group_rate=(1000, 60))
    await front.start()
    return front, seen


async def test_a_private_reply_in_a_group_goes_to_the_persons_private_chat(tg: FakeTelegram) -> None:
    alice, carol = tg.user("Alice", username="alice"), tg.user("Carol")
    group = tg.group("Acme", admins=(alice,), members=(carol,))
    dm = tg.private(alice)  # alice has started a chat with the bot; carol hasn't
    front, seen = await stub_front(tg, Reply("Your account details: <secret>", private=True))
    try:
        await tg.say(alice, group, "/help")
        await tg.wait_sent(dm, "Your account details: <secret>")
        note = await tg.wait_sent(group, "I sent you that in our private chat")
        assert "secret" not in note["text"]
        await tg.say(carol, group, "/help")
        note = await tg.wait_sent(group, "I can't write to you first")
        assert "Open a private chat with @HeraldBot" in note["text"] and "secret" not in note["text"]
        assert all("secret" not in m["text"] for m in tg.sent_to(group))
        assert seen[0].chat.private is False and seen[0].actor.is_chat_admin is True
        assert seen[1].actor == Actor("telegram", str(carol["id"]), "Carol", is_chat_admin=False, username=None)
    finally:
        await front.stop()


async def test_notices_with_an_image_go_as_a_photo_with_the_caption(tg: FakeTelegram) -> None:
    alice = tg.user("Alice", username="alice")
    group = tg.group("Acme", admins=(alice,))
    front, _seen = await stub_front(tg, Reply("unused"))
    chart = png((10, 200, 10), (20, 10))
    try:
        await front.send(ChatAddress("telegram", str(group["id"])), Reply("📈 Weekly report <3", image=chart))
        [call] = tg.calls("sendPhoto")
        assert call.files["photo"]["data"] == chart
        assert call.params["caption"] == "📈 Weekly report &lt;3" and call.params["parse_mode"] == "HTML"
        assert tg.sent_to(group)[-1]["caption"] == "📈 Weekly report <3"
        await front.send(ChatAddress("telegram", str(group["id"])), Reply("x" * 2000, image=chart))
        assert tg.sent_to(group)[-1]["text"] == "x" * 2000  # too long for a caption: the text follows the photo
    finally:
        await front.stop()


async def test_a_photo_with_the_caption_attach_n_joins_that_post(world: World) -> None:
    await world.setup()
    card = await world.cmd(world.alice, "/draft Winter")
    post_id = post_number(card["text"])
    world.front.drafted.clear()  # not "right after the draft": the caption names the post
    photo = await world.tg.send_photo(world.alice, world.group, png((7, 7, 7)), caption=f"/attach {post_id}")
    answer = await world.reply_to(photo)
    assert f"#{post_id}: 1 file(s) attached (1 in all)." in answer["text"]


def test_webhook_mode_without_a_secret_makes_one() -> None:
    async def handle(command: Command) -> Reply:
        return Reply("")

    front = TelegramFront(handle, "1:A", webhook_url="https://herald.example/telegram")
    other = TelegramFront(handle, "1:A", webhook_url="https://herald.example/telegram")
    assert front.webhook_secret and len(front.webhook_secret) >= 32 and front.webhook_secret != other.webhook_secret
    assert TelegramFront(handle, "1:A").webhook_secret is None  # polling needs none


async def test_a_group_upgraded_to_a_supergroup_keeps_its_workspace(world: World) -> None:
    from handlers.workspace.setup import chat_moved

    world.front.on_chat_moved = lambda old, new: chat_moved(world.herald.ctx, "telegram", old, new)
    await world.setup()
    tg, old = world.tg, world.group
    new = tg.group("Acme marketing", admins=(world.alice,), members=(world.bob, world.carol))
    await tg.push({"message": tg._message(world.alice, old, migrate_to_chat_id=new["id"])})
    await tg.wait_sent(new, "became a supergroup")
    world.group = new
    card = await world.cmd(world.alice, "/draft Still here after the upgrade")
    assert "Draft #1 saved." in card["text"]
