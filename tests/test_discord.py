"""The Discord front end: the real discord.py client against a fake Discord (REST + gateway) on 127.0.0.1.

Everything is asserted on what the bot sent the fake: interaction callbacks (embeds, ephemeral
flags, modals), followups, message edits, channel messages and the registered commands.
"""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from PIL import Image
from sqlmodel import select

from bot.app import Herald
from bot.chats.discord import DiscordFront, button_id
from handlers.core.chat import Button, ChatAddress, Reply
from handlers.core.commands import COMMANDS
from storage.models import Account, Approval, Delivery, InboxItem, Media, Post
from tests.conftest import FakeClock, Team, make_herald
from tests.fakes.discord_api import EPHEMERAL, FakeDiscord, Interaction


@dataclass
class World:
    herald: Herald
    fake: FakeDiscord
    front: DiscordFront
    guild: str
    team: str  # the #marketing channel
    approvals: str  # the #approvals channel
    alice: dict[str, Any]  # Manage Server: a Herald admin by default
    bob: dict[str, Any]  # Administrator: may approve
    carol: dict[str, Any]  # a plain member: a viewer

    def post(self, post_id: int) -> Post:
        with self.herald.db.session() as session:
            post = session.get(Post, post_id)
            assert post is not None
            return post

    def snapshot(self) -> dict[str, list[Any]]:
        return Team(self.herald, FakeClock(), "").snapshot()


@pytest.fixture
async def world(db_url: str, clock: FakeClock) -> AsyncIterator[World]:
    fake = FakeDiscord()
    await fake.start()
    guild = fake.add_guild("Acme")
    team, approvals = fake.add_channel(guild, "marketing"), fake.add_channel(guild, "approvals")
    alice = fake.add_member(guild, "alice", manage_guild=True)
    bob = fake.add_member(guild, "bob", admin=True)
    carol = fake.add_member(guild, "carol")
    herald = make_herald(db_url, clock)
    front = DiscordFront(herald.handle, fake.token, api_url=fake.url, guild_ids=[int(guild)], guild_ready_timeout=0.05)
    herald.add_front(front)
    await herald.start()
    try:
        yield World(herald, fake, front, guild, team, approvals, alice, bob, carol)
    finally:
        await herald.stop()
        await fake.close()


def title(record: Interaction) -> str:
    return str(record.callback["data"]["embeds"][0]["title"])


def custom_ids(message: dict[str, Any]) -> list[str]:
    return [c["custom_id"] for row in message.get("components", []) for c in row.get("components", [])]


def button(message: dict[str, Any], label: str) -> str:
    for row in message.get("components", []):
        for component in row.get("components", []):
            if component.get("label") == label:
                return str(component["custom_id"])
    raise AssertionError(f"no {label!r} button on {message.get('embeds')}")


async def ready_workspace(w: World) -> None:
    await w.fake.slash(w.alice, w.team, "setup", args="Acme")
    out = await w.fake.slash(w.alice, w.team, "connect", args="sandbox name=brand")
    assert "Connected brand" in title(out)


async def draft(w: World, text: str = "Spring sale starts today!", who: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    out = await w.fake.slash(who or w.alice, w.team, "draft", text=text)
    assert out.kind == 4 and not out.ephemeral
    post_id = int(title(out).split("#", 1)[1].split(" ", 1)[0].rstrip(".:"))
    assert out.original is not None
    return post_id, out.original


async def submitted(w: World) -> tuple[int, dict[str, Any]]:
    """A draft by alice submitted with the button on its card; returns the approval card message."""
    post_id, card = await draft(w)
    pressed = await w.fake.click(w.alice, card["id"], button(card, "Submit for approval"))
    assert pressed.kind == 7, pressed.callbacks  # the draft card is edited in place...
    approval = (await w.fake.wait_for(lambda: pressed.followups))[0]  # ...and the approval card follows
    assert "asks for approval" in approval["embeds"][0]["title"]
    return post_id, approval


# --- slash commands ----------------------------------------------------------------------------


async def test_every_command_is_a_guild_slash_command_with_described_options(world: World) -> None:
    w = world
    registered = {c["name"]: c for c in w.fake.commands[w.guild]}
    assert set(registered) == set(COMMANDS)
    assert w.fake.global_commands() == []  # guild_ids given: synced to the guild only
    schedule = {o["name"]: o for o in registered["schedule"]["options"]}
    assert list(schedule) == ["post", "when"]
    assert all(o["type"] == 3 and o.get("required") for o in schedule.values())
    assert schedule["post"].get("autocomplete") and not schedule["when"].get("autocomplete")
    assert schedule["when"]["description"] == "when, e.g. tomorrow 9am"
    approve = registered["approve"]["options"]
    assert [(o["name"], o["type"], o.get("required"), o.get("autocomplete")) for o in approve] == [
        ("post", 3, True, True)]
    draft_options = {o["name"]: o for o in registered["draft"]["options"]}
    assert {name: o["type"] for name, o in draft_options.items()} == {
        "text": 3, "link": 3, "campaign": 3, "to": 3, "image": 11}
    assert not any(o.get("required") for o in draft_options.values())
    assert draft_options["to"].get("autocomplete") and not draft_options["text"].get("autocomplete")
    targets = {o["name"]: o for o in registered["targets"]["options"]}
    assert list(targets) == ["post", "accounts"]
    assert all(o["type"] == 3 and o.get("required") and o.get("autocomplete") for o in targets.values())
    args = {o["name"]: o for o in registered["connect"]["options"]}["args"]  # free words keep one text option
    assert args["type"] == 3 and not args.get("required") and not args.get("autocomplete")
    assert args["description"].startswith("<network> name=<name> key=value… — e.g. /connect sandbox")
    role_options = {o["name"]: o for o in registered["role"]["options"]}
    assert role_options["member"]["type"] == 6 and role_options["group"]["type"] == 8
    assert [c["value"] for c in role_options["role"]["choices"]] == ["admin", "editor", "approver", "viewer"]
    assert not any(o.get("required") for o in role_options.values())  # /role alone lists the members
    assert "options" not in registered["queue"] or registered["queue"]["options"] == []


async def test_setup_and_draft_answer_with_embeds_and_persistent_buttons(world: World) -> None:
    w = world
    out = await w.fake.slash(w.alice, w.team, "setup", args="Acme")
    embed = out.callback["data"]["embeds"][0]
    assert embed["title"] == "Workspace 'Acme' is ready and Alice is its admin."
    assert "/timezone Europe/Paris" in embed["description"] and embed["color"] != 0xE74C3C
    assert not out.ephemeral
    post_id, card = await draft(w)
    assert f"Post #{post_id}" in card["embeds"][0]["description"]
    assert custom_ids(card) == [f"herald:submit:post={post_id}:", f"herald:preview:post={post_id}:",
                                f"herald:schedule:post={post_id}:?When%3F%20e.g.%20tomorrow%209am"]


async def test_refusals_and_secrets_are_ephemeral_and_red(world: World) -> None:
    w = world
    out = await w.fake.slash(w.alice, w.team, "draft", text="Too early")
    assert out.ephemeral and title(out).startswith("✋ This chat isn't set up yet")
    assert out.callback["data"]["embeds"][0]["color"] == 0xE74C3C
    await w.fake.slash(w.alice, w.team, "setup")
    out = await w.fake.slash(w.alice, w.team, "connect", args="sandbox name=brand token=s3cret")
    assert out.ephemeral  # the options of an ephemeral answer are seen by no one else
    assert title(out).startswith("✋") and all("s3cret" not in str(m) for m in w.fake.messages.values())
    await w.fake.slash(w.alice, w.team, "connect", args="sandbox name=brand")
    accounts = await w.fake.slash(w.alice, w.team, "accounts")
    assert accounts.ephemeral and "brand: Sandbox" in accounts.callback["data"]["embeds"][0]["description"]


async def test_draft_without_text_opens_a_modal_whose_submission_writes_the_post(world: World) -> None:
    w = world
    await ready_workspace(w)
    out = await w.fake.slash(w.alice, w.team, "draft")
    assert out.kind == 9, out.callbacks  # a modal
    modal = out.callback["data"]
    assert modal["custom_id"] == "heraldm:draft:"
    submitted_ = await w.fake.submit_modal(w.alice, w.team, modal["custom_id"], "Written in a modal")
    assert submitted_.kind == 4 and "Post #1" in submitted_.callback["data"]["embeds"][0]["description"]
    assert w.post(1).text == "Written in a modal"


async def test_an_image_on_draft_is_downloaded_and_stored_as_media(world: World) -> None:
    w = world
    await ready_workspace(w)
    png = io.BytesIO()
    Image.new("RGB", (2, 2), "red").save(png, format="PNG")
    attachment = w.fake.add_attachment("sale.png", png.getvalue())
    out = await w.fake.slash(w.alice, w.team, "draft", text="With a picture", image=("attachment", attachment))
    assert not out.ephemeral, out.callbacks
    post = w.post(1)
    assert len(post.media) == 1
    with w.herald.db.session() as session:
        media = session.exec(select(Media)).one()
        assert (media.content_type, media.data) == ("image/png", png.getvalue())
    assert w.fake.requests("GET", f"/attachments/{attachment['id']}/sale.png")


async def test_post_numbers_and_account_names_autocomplete(world: World) -> None:
    w = world
    await ready_workspace(w)
    await draft(w, "First post")
    await draft(w, "Second post")
    choices = await w.fake.autocomplete(w.alice, w.team, "approve", "post", "")
    assert [c["value"] for c in choices] == ["2", "1"]
    assert choices[0]["name"].startswith("#2 draft")
    assert [c["value"] for c in await w.fake.autocomplete(w.alice, w.team, "approve", "post", "#1")] == ["1"]
    choices = await w.fake.autocomplete(w.alice, w.team, "targets", "accounts", "br")
    assert [c["value"] for c in choices] == ["brand"]
    choices = await w.fake.autocomplete(w.alice, w.team, "targets", "accounts", "all br")  # the last of several
    assert [c["value"] for c in choices] == ["all brand"]
    # the workspace's audiences come with the accounts, found by their name or by audience:
    await w.fake.slash(w.alice, w.team, "audience", args="add south accounts=brand tz=Europe/Madrid lang=es")
    w.front._options.clear()  # the choices are kept 30 s; the test doesn't wait for that
    choices = await w.fake.autocomplete(w.alice, w.team, "targets", "accounts", "brand sou")
    assert [c["value"] for c in choices] == ["brand audience:south"]
    assert choices[0]["name"].startswith("audience:south — brand (Sandbox) · Europe/Madrid"), choices
    assert [c["value"] for c in await w.fake.autocomplete(w.alice, w.team, "targets", "accounts", "audience:")] == [
        "audience:south"]
    assert not {o["name"]: o for o in next(c for c in w.fake.commands[w.guild] if c["name"] == "draft")["options"]}[
        "text"].get("autocomplete")  # /draft's words are the post itself


async def test_named_options_target_schedule_and_approve_a_post(world: World) -> None:
    w = world
    await ready_workspace(w)
    await w.fake.slash(w.alice, w.team, "timezone", args="Europe/Paris")
    post_id, _card = await draft(w)
    out = await w.fake.slash(w.alice, w.team, "targets", post=str(post_id), accounts="brand")
    assert not out.ephemeral and "targets set to brand" in str(out.callback["data"]["embeds"][0]), out.callbacks
    out = await w.fake.slash(w.alice, w.team, "schedule", post=f"#{post_id}", when="tomorrow 9am")
    assert not out.ephemeral, out.callbacks
    assert "Tue 24 Nov 2026 09:00 CET (Europe/Paris)" in str(out.callback["data"]["embeds"][0])
    assert w.post(post_id).due_at == datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    await w.fake.slash(w.alice, w.team, "submit", post=str(post_id))
    out = await w.fake.slash(w.bob, w.team, "approve", post=str(post_id))
    assert title(out).startswith(f"✅ Bob approved #{post_id} (1 of 1). Approved and scheduled for Tue 24 Nov"), title(out)
    assert w.post(post_id).state == "scheduled"


async def test_draft_options_are_written_as_its_keywords(world: World) -> None:
    w = world
    await ready_workspace(w)
    await w.fake.slash(w.alice, w.team, "connect", args="sandbox name=other")
    assert [c["value"] for c in await w.fake.autocomplete(w.alice, w.team, "draft", "to", "other b")] == [
        "other brand"]
    out = await w.fake.slash(w.alice, w.team, "draft", text="Spring sale", link="https://shop.example/sale",
                             campaign="spring", to="other")
    assert not out.ephemeral, out.callbacks
    post = w.post(1)
    assert (post.text, post.link, post.campaign) == ("Spring sale", "https://shop.example/sale", "spring")
    with w.herald.db.session() as session:  # to= picked one of the two accounts
        targets = session.exec(select(Account.name).join(Delivery, Delivery.account_id == Account.id)
                               .where(Delivery.post_id == 1)).all()
        assert list(targets) == ["other"]


async def test_a_bad_named_option_is_refused_and_changes_nothing(world: World) -> None:
    w = world
    await ready_workspace(w)
    post_id, _card = await draft(w)
    before = w.snapshot()
    out = await w.fake.slash(w.alice, w.team, "schedule", post=str(post_id), when="blah blah")
    assert out.ephemeral and title(out).startswith("✋ I couldn't read 'blah blah' as a time")
    out = await w.fake.slash(w.alice, w.team, "approve", post="twelve")
    assert out.ephemeral and title(out).startswith("✋ 'twelve' isn't a post number")
    assert w.snapshot() == before


# --- buttons -------------------------------------------------------------------------------------


async def test_approve_button_edits_the_card_with_the_decision(world: World) -> None:
    w = world
    await ready_workspace(w)
    post_id, approval = await submitted(w)
    assert custom_ids(approval)[0] == f"herald:approve:post={post_id},revision=1:"
    pressed = await w.fake.click(w.bob, approval["id"], button(approval, "Approve"))
    assert pressed.kind == 7
    card = w.fake.messages[approval["id"]]
    assert card["embeds"][0]["title"].startswith(f"#{post_id}:") and "approved" in card["embeds"][0]["title"].lower()
    assert "Approvals: 1 of 1" in card["embeds"][0]["description"]
    confirmation = (await w.fake.wait_for(lambda: pressed.followups))[0]
    assert confirmation["embeds"][0]["title"].startswith(f"✅ Bob approved #{post_id}")
    assert not confirmation["flags"] & EPHEMERAL
    assert w.post(post_id).state == "approved"


async def test_request_changes_opens_a_modal_and_its_submission_edits_the_card(world: World) -> None:
    w = world
    await ready_workspace(w)
    post_id, approval = await submitted(w)
    pressed = await w.fake.click(w.bob, approval["id"], button(approval, "Request changes"))
    assert pressed.kind == 9
    modal = pressed.callback["data"]
    assert modal["title"] == "Request changes"
    field = modal["components"][0]
    field = field.get("component") or field["components"][0]
    assert field["label"] == f"What should change in #{post_id}?"
    answered = await w.fake.submit_modal(w.bob, approval["channel_id"], modal["custom_id"], "Add the price",
                                         message_id=approval["id"])
    assert answered.kind == 7
    card = w.fake.messages[approval["id"]]
    assert card["embeds"][0]["title"] == f"#{post_id} is changes requested."
    note = (await w.fake.wait_for(lambda: answered.followups))[0]
    assert note["embeds"][0]["title"] == f"✏️ Bob asked for changes on #{post_id}: Add the price"
    assert w.post(post_id).state == "changes_requested"


async def test_buttons_still_work_after_a_restart(world: World) -> None:
    w = world
    await ready_workspace(w)
    post_id, approval = await submitted(w)
    await w.front.stop()
    again = DiscordFront(w.herald.handle, w.fake.token, api_url=w.fake.url, guild_ids=[int(w.guild)], guild_ready_timeout=0.05)
    await again.start()
    try:
        assert w.fake.identified == 2
        pressed = await w.fake.click(w.bob, approval["id"], button(approval, "Approve"))
        assert pressed.kind == 7
        assert "Approvals: 1 of 1" in w.fake.messages[approval["id"]]["embeds"][0]["description"]
        assert w.post(post_id).state == "approved"
        await w.fake.wait_for(lambda: pressed.followups)
    finally:
        await again.stop()


async def test_refused_presses_are_ephemeral_and_change_nothing(world: World) -> None:
    w = world
    await ready_workspace(w)
    post_id, approval = await submitted(w)
    approve = button(approval, "Approve")
    before, card_before = w.snapshot(), dict(w.fake.messages[approval["id"]])

    async def refused(member: dict[str, Any], *words: str) -> None:
        pressed = await w.fake.click(member, approval["id"], approve)
        assert pressed.kind == 4 and pressed.ephemeral, pressed.callbacks
        assert title(pressed).startswith("✋")
        text = title(pressed) + (pressed.callback["data"]["embeds"][0].get("description") or "")
        for word in words:
            assert word in text, text
        assert w.snapshot() == before
        assert w.fake.messages[approval["id"]] == card_before

    await refused(w.carol, "viewer")  # no approver role
    await refused(w.alice, "own post")  # the author may not approve her own post
    edited = await w.fake.slash(w.alice, w.team, "edit", post=str(post_id), text="Spring sale starts tomorrow!")
    assert not edited.ephemeral
    before, card_before = w.snapshot(), dict(w.fake.messages[approval["id"]])
    await refused(w.bob, "revision")  # the button is for revision 1: the post changed since
    with w.herald.db.session() as session:
        assert session.exec(select(Approval)).all() == []


# --- notices -------------------------------------------------------------------------------------


async def test_send_posts_an_embed_with_buttons_into_a_channel(world: World) -> None:
    w = world
    await w.front.send(ChatAddress("discord", w.approvals),
                       Reply("Published #3\nOn brand: https://example.com/1", buttons=(Button("Stats", "stats", {"post": 3}),)))
    [message] = w.fake.channel_messages(w.approvals)
    assert message["embeds"][0]["title"] == "Published #3"
    assert message["embeds"][0]["description"] == "On brand: https://example.com/1"
    assert custom_ids(message) == [button_id(Button("Stats", "stats", {"post": 3}))] == ["herald:stats:post=3:"]


# --- what handlers/ are getting (ChatRef.space, Command.mentions, Actor.groups, /link) -----------------


async def test_setup_approvals_in_another_channel_routes_approval_cards_there(world: World) -> None:
    w = world
    await ready_workspace(w)
    out = await w.fake.slash(w.alice, w.approvals, "setup", args="approvals")
    assert not out.ephemeral, out.callbacks
    post_id, card = await draft(w)
    await w.fake.slash(w.alice, w.team, "submit", post=str(post_id))
    [approval] = await w.fake.wait_for(lambda: w.fake.channel_messages(w.approvals)[1:])
    assert "asks for approval" in approval["embeds"][0]["title"]
    pressed = await w.fake.click(w.bob, approval["id"], button(approval, "Approve"))
    assert pressed.kind == 7 and w.post(post_id).state == "approved"


async def test_role_given_to_a_member_option(world: World) -> None:
    w = world
    await ready_workspace(w)
    out = await w.fake.slash(w.alice, w.team, "role", member=w.carol, role="approver")
    assert not out.ephemeral, out.callbacks
    post_id, approval = await submitted(w)
    pressed = await w.fake.click(w.carol, approval["id"], button(approval, "Approve"))
    assert pressed.kind == 7 and w.post(post_id).state == "approved"


async def test_role_given_to_a_discord_role_lets_its_holders_approve(world: World) -> None:
    w = world
    await ready_workspace(w)
    reviewers = w.fake.add_role(w.guild, "Reviewers")
    out = await w.fake.slash(w.alice, w.team, "role", group=("role", reviewers), role="approver")
    assert not out.ephemeral, out.callbacks
    post_id, approval = await submitted(w)
    w.fake.give_role(w.carol, reviewers)
    pressed = await w.fake.click(w.carol, approval["id"], button(approval, "Approve"))
    assert pressed.kind == 7, pressed.callbacks
    assert w.post(post_id).state == "approved"


async def test_a_console_draft_is_approved_in_the_linked_discord_channel(world: World) -> None:
    w = world
    team = Team(w.herald, FakeClock(), "")
    await team.setup_workspace()
    out = await team.say("alice", "/link")
    code = re.search(r"/link ([A-Z0-9]{4}-[A-Z0-9]{4})", out)[1]  # type: ignore[index]
    linked = await w.fake.slash(w.bob, w.approvals, "link", args=code)
    assert not linked.ephemeral, linked.callbacks
    out = await team.say("alice", "/draft From the console")
    post_id = int(out.split("#", 1)[1].split(" ", 1)[0].rstrip("."))
    await team.say("alice", f"/submit {post_id}")
    [approval] = await w.fake.wait_for(lambda: w.fake.channel_messages(w.approvals)[-1:])
    pressed = await w.fake.click(w.bob, approval["id"], button(approval, "Approve"))
    assert pressed.kind == 7 and w.post(post_id).state == "approved"


async def test_a_slow_command_is_deferred_then_answered(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    w = world
    monkeypatch.setattr("bot.chats.discord.DEFER_AFTER", 0.01)
    handle = w.front.handle

    async def slow(command: Any) -> Reply:
        await asyncio.sleep(0.1)
        return await handle(command)

    w.front.handle = slow
    out = await w.fake.slash(w.alice, w.team, "setup", args="Acme")
    assert out.kind == 5  # "Herald is thinking…", then the original response becomes the answer
    answer = await w.fake.wait_for(lambda: out.original and out.original["embeds"] and out.original)
    assert answer["embeds"][0]["title"] == "Workspace 'Acme' is ready and Alice is its admin."
    refused = await w.fake.slash(w.carol, w.team, "connect", args="sandbox name=brand")
    assert refused.kind == 5
    [hidden] = await w.fake.wait_for(lambda: refused.followups)
    assert hidden["flags"] & EPHEMERAL and hidden["embeds"][0]["title"].startswith("✋")
    # the public "thinking…" only says a private answer was given; the refusal is for the asker only
    assert refused.original is not None and refused.original["content"] == "Answered privately (only you can see it)."
    assert not refused.original.get("embeds")


async def test_a_posts_own_text_is_shown_as_written_not_as_markdown(world: World) -> None:
    w = world
    await ready_workspace(w)
    _post_id, card = await draft(w, "Big *news* at [acme.com](https://evil.example)")
    description = card["embeds"][0]["description"]
    assert "│ Big \\*news\\* at \\[acme.com](https://evil.example)" in description, description


# --- who reads (/readers) ----------------------------------------------------------------------


def shown(record: Interaction) -> str:
    embed = record.callback["data"]["embeds"][0]
    return str(embed["title"]) + "\n" + str(embed.get("description") or "")


async def test_a_server_member_without_a_herald_role_reads_nothing_until_readers_is_open(world: World) -> None:
    w = world
    await ready_workspace(w)
    await draft(w, "Secret launch plan")
    before = w.snapshot()
    refused = await w.fake.slash(w.carol, w.team, "posts")
    assert refused.ephemeral and title(refused).startswith("✋"), refused.callbacks
    assert "/role Carol" in shown(refused) and "/readers open" in shown(refused)
    assert "Secret launch plan" not in shown(refused)
    pressed = await w.fake.slash(w.carol, w.team, "history", post="1")
    assert pressed.ephemeral and "Secret launch plan" not in shown(pressed)
    changed = await w.fake.slash(w.carol, w.team, "readers", readers="open")
    assert changed.ephemeral and title(changed).startswith("✋")
    assert w.snapshot() == before
    opened = await w.fake.slash(w.alice, w.team, "readers", readers="open")
    assert not opened.ephemeral and "Readers: open (was members)" in title(opened), opened.callbacks
    read = await w.fake.slash(w.carol, w.team, "posts")
    assert not read.ephemeral and "Secret launch plan" in shown(read), read.callbacks  # the team channel
    closed = await w.fake.slash(w.alice, w.team, "readers", readers="members")
    assert "Readers: members (was open)" in title(closed)
    again = await w.fake.slash(w.carol, w.team, "posts")
    assert again.ephemeral and "Secret launch plan" not in shown(again)


async def test_a_read_in_a_channel_that_is_not_linked_is_answered_to_the_asker_only(world: World) -> None:
    w = world
    await ready_workspace(w)
    random = w.fake.add_channel(w.guild, "random")
    await w.fake.slash(w.alice, w.team, "role", member=w.carol, role="viewer")
    await draft(w, "Secret launch plan")
    private = await w.fake.slash(w.carol, random, "posts")
    assert private.ephemeral and not title(private).startswith("✋"), private.callbacks
    assert "Secret launch plan" in shown(private)
    public = await w.fake.slash(w.carol, w.team, "posts")
    assert not public.ephemeral and "Secret launch plan" in shown(public)
    written = await w.fake.slash(w.alice, random, "draft", text="Written in random")
    assert not written.ephemeral, written.callbacks  # not a read: the draft card is for the team


async def test_a_commenters_markdown_is_shown_escaped_in_the_inbox(world: World) -> None:
    w = world
    await ready_workspace(w)
    post_id, _card = await draft(w)
    with w.herald.db.session() as session:
        delivery = session.exec(select(Delivery).where(Delivery.post_id == post_id)).first()
        assert delivery is not None and delivery.id is not None
        session.add(InboxItem(workspace_id=1, delivery_id=delivery.id, remote_id="c1", author="**mallory**",
                              text="Win **big** at [acme.com](https://evil.example)",
                              posted_at=datetime(2026, 1, 1, tzinfo=UTC)))
    out = await w.fake.slash(w.alice, w.team, "inbox")
    assert not out.ephemeral, out.callbacks
    description = out.callback["data"]["embeds"][0]["description"]
    assert "\\*\\*mallory\\*\\* on Sandbox" in description, description
    assert "“Win \\*\\*big\\*\\* at \\[acme.com](https://evil.example)”" in description, description
    assert "\u2068" not in description and "\u2069" not in description
