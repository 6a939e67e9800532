"""Chats and people across platforms: /link codes, /setup approvals in a server, roles by mention,
@username or Discord role, private chats, and the replies front ends act on (update, delete)."""

from __future__ import annotations

import io
import re
from typing import Any

from PIL import Image
from sqlmodel import select

from handlers import dispatch
from handlers.core.chat import Actor, ChatRef, Command, MediaIn, Reply
from storage.models import ChatLink, Media, Member
from tests.conftest import Team, recording_team, refused
from tests.fakes.videos import tiny_video


async def run(team: Team, platform: str, chat: str, user: str, line: str, *, space: str = "",
              private: bool = False, **actor: Any) -> Reply:
    name, _, text = line.lstrip("/").partition(" ")
    extra = {k: actor.pop(k) for k in ("mentions", "media", "args") if k in actor}
    if platform == "console":
        actor.setdefault("username", user.lower())  # as the console chat names its people
    who = Actor(platform, actor.pop("user_id", user), user, **actor)
    command = Command(name, who, ChatRef(platform, chat, title=chat, private=private, space=space), text=text,
                      **extra)
    return await dispatch.handle(team.herald.ctx, command)


def code_in(reply: Reply) -> str:
    match = re.search(r"/link ([A-Z0-9]{4}-[A-Z0-9]{4})", reply.text)
    assert match, reply.text
    return match.group(1)


async def test_link_joins_a_telegram_group_to_the_console_workspace(team: Team) -> None:
    await team.setup_workspace()
    made = await run(team, "console", "console", "alice", "/link")
    assert made.private and "works once" in made.text and "console" in made.text
    code = code_in(made)
    joined = await run(team, "telegram", "-100", "carol", f"/link {code.lower()}", user_id="42")
    assert "part of workspace 'Acme'" in joined.text and not joined.error
    with team.herald.db.session() as session:
        link = session.exec(select(ChatLink).where(ChatLink.platform == "telegram")).one()
        carol = session.exec(select(Member).where(Member.user_id == "42")).one()
    assert link.workspace_id == 1 and carol.role == "admin"
    drafted = await run(team, "telegram", "-100", "carol", "/draft Hello from Telegram", user_id="42")
    assert "Draft #1 saved." in drafted.text
    again = await run(team, "telegram", "-200", "dave", f"/link {code}")
    assert again.error and "already used" in again.text


async def test_bad_expired_and_misplaced_link_codes_change_nothing(team: Team) -> None:
    await team.setup_workspace()
    code = code_in(await run(team, "console", "console", "alice", "/link"))
    before = team.snapshot()
    for line, words in [("/link nope", "isn't a link code"), ("/link ABCD-EFGH", "isn't valid"),
                        (f"/link {code}", "already belongs")]:
        chat = "console" if "already" in words else "-300"
        reply = await run(team, "console" if chat == "console" else "telegram", chat, "alice", line)
        assert reply.error and words in reply.text, reply.text
    team.clock.advance(minutes=16)
    expired = await run(team, "telegram", "-300", "eve", f"/link {code}")
    assert expired.error and "expired" in expired.text
    assert team.snapshot() == before
    viewer = await run(team, "console", "console", "mallory", "/link")
    assert viewer.error and "Only admins" in viewer.text


async def test_any_channel_of_a_server_belongs_to_its_workspace_and_setup_approvals_moves_requests(team: Team) -> None:
    setup = await run(team, "discord", "general", "alice", "/setup Acme", space="G1", is_chat_admin=True)
    assert "is ready" in setup.text
    await run(team, "discord", "general", "alice", "/connect sandbox name=brand", space="G1")
    moved = await run(team, "discord", "approvals", "alice", "/setup approvals", space="G1")
    assert "now gets the approval requests" in moved.text and "general no longer gets them" in moved.text
    with team.herald.db.session() as session:
        links = {link.chat_id: link.purposes for link in session.exec(select(ChatLink)).all()}
    assert links == {"general": "team,reports", "approvals": "approvals"}
    other_server = await run(team, "discord", "x", "zed", "/draft hi", space="G2")
    assert other_server.error and "isn't set up" in other_server.text
    viewer = await run(team, "discord", "random", "vic", "/setup reports", space="G1")
    assert viewer.error and "Only admins" in viewer.text


async def test_roles_by_reply_by_username_and_by_discord_role(team: Team) -> None:
    await run(team, "telegram", "-1", "alice", "/setup Acme", user_id="1")
    bob = Actor("telegram", "2", "Bob B", username="bobb")
    given = await run(team, "telegram", "-1", "alice", "/role approver", user_id="1", mentions=(bob,))
    assert "Bob B is now approver" in given.text
    await run(team, "telegram", "-1", "alice", "/role @Sam_K editor", user_id="1")
    sam = await run(team, "telegram", "-1", "Sam", "/draft By Sam", user_id="3", username="sam_k")
    assert "Draft #1 saved." in sam.text  # recognised by @username: an editor
    stranger = await run(team, "telegram", "-1", "Sam", "/draft By someone else", user_id="4", username="other")
    assert stranger.error and "You're a viewer" in stranger.text
    await run(team, "discord", "c1", "alice", "/setup Other", space="G", user_id="10")
    role = Actor("discord", "role:777", "@Approvers")
    given = await run(team, "discord", "c1", "alice", "/role approver", space="G", user_id="10", mentions=(role,))
    assert "@Approvers is now approver" in given.text
    with team.herald.db.session() as session:
        assert session.exec(select(Member).where(Member.user_id == "role:777")).one().role == "approver"
    members = await run(team, "discord", "c1", "alice", "/role", space="G", user_id="10")
    assert "@Approvers (discord): approver" in members.text


async def test_a_discord_role_holder_may_approve(team: Team) -> None:
    await run(team, "discord", "c1", "alice", "/setup Acme", space="G", user_id="10")
    await run(team, "discord", "c1", "alice", "/connect sandbox name=brand", space="G", user_id="10")
    await run(team, "discord", "c1", "alice", "/role approver", space="G", user_id="10",
              mentions=(Actor("discord", "role:777", "@Approvers"),))
    await run(team, "discord", "c1", "alice", "/draft Hello", space="G", user_id="10")
    await run(team, "discord", "c1", "alice", "/submit 1", space="G", user_id="10")
    outsider = await run(team, "discord", "c1", "olga", "/approve 1", space="G", user_id="11", groups=("555",))
    assert outsider.error and "You're a viewer" in outsider.text
    ok = await run(team, "discord", "c1", "bob", "/approve 1", space="G", user_id="12", groups=("555", "777"))
    assert "bob approved #1" in ok.text


async def test_private_chat_works_in_the_members_workspace_and_group_secrets_are_deleted(team: Team) -> None:
    await run(team, "telegram", "-1", "alice", "/setup Acme", user_id="1")
    before = team.snapshot()
    group = await run(team, "telegram", "-1", "alice", "/connect sandbox name=brand token=s3cret", user_id="1")
    assert group.error and group.delete_command and "didn't store anything" in group.text
    assert team.snapshot() == before
    private = await run(team, "telegram", "1", "alice", "/connect sandbox name=brand token=s3cret", user_id="1",
                        private=True)
    assert "Connected brand (Sandbox) in workspace 'Acme'" in private.text and private.private
    stranger = await run(team, "telegram", "9", "zoe", "/accounts", user_id="9", private=True)
    assert stranger.error and "isn't set up" in stranger.text


async def test_button_answers_carry_the_updated_card(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/draft Hello")
    submitted = await run(team, "console", "console", "alice", "/submit", args={"post": 1})
    assert submitted.update is not None and "submitted for approval by alice" in submitted.update.text
    assert [b.label for b in submitted.buttons] == ["Approve", "Request changes", "Reject"]
    approved = await run(team, "console", "console", "bob", "/approve", args={"post": 1, "revision": 1})
    assert approved.update is not None and approved.update.card == 1
    assert "✅ bob approved" in approved.update.text and approved.update.buttons == ()
    stale = await run(team, "console", "console", "bob", "/reject", args={"post": 1, "revision": 1, "text": "no"})
    assert stale.error and stale.update is None


def png(size: tuple[int, int] = (4, 3)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


async def test_photos_make_and_join_drafts_and_reach_the_network(team: Team) -> None:
    network = await recording_team(team, "brand")
    photo = MediaIn("photo.png", "image/png", png())
    made = await run(team, "console", "console", "alice", "/draft With a photo", media=(photo,))
    assert "Draft #1 saved." in made.text and "Images: 1" in made.text
    joined = await run(team, "console", "console", "alice", "/attach", media=(photo, photo))
    assert "#1: 2 file(s) attached (3 in all)" in joined.text
    with team.herald.db.session() as session:
        rows = session.exec(select(Media)).all()
    assert [(m.content_type, m.size) for m in rows] == [("image/png", len(photo.data))] * 3
    await team.say("alice", "/submit 1")
    await team.say("bob", "/approve 1")
    await team.say("alice", "/publish 1")
    sent = network.outgoing[-1]
    assert [m.content_type for m in sent.media] == ["image/png"] * 3 and sent.media[0].data == photo.data


async def test_bad_files_are_refused_and_nothing_is_stored(team: Team) -> None:
    await recording_team(team, "brand")
    await team.say("alice", "/draft Hello")
    before = team.snapshot()
    for item, words in [
        (MediaIn("x.png", "image/png", b"not an image"), "isn't an image I can read"),
        (MediaIn("x.png", "image/png", b""), "is empty"),
        (MediaIn("v.mp4", "video/mp4", b"\x00" * 16), "isn't an MP4/MOV"),
    ]:
        reply = await run(team, "console", "console", "alice", "/attach 1", media=(MediaIn("ok.png", "image/png", png()), item))
        assert reply.error and words in reply.text, reply.text
    too_many = await run(team, "console", "console", "alice", "/attach 1",
                         media=tuple(MediaIn("p.png", "image/png", png()) for _ in range(11)))
    assert too_many.error and "at most 10 files" in too_many.text
    assert team.snapshot() == before
    nothing = await run(team, "console", "console", "bob", "/attach", media=(MediaIn("ok.png", "image/png", png()),))
    assert nothing.error


async def test_attach_clear_and_no_recent_draft(team: Team) -> None:
    await recording_team(team, "brand")
    await refused(team, "alice", "/attach", "Send the photo or video itself")
    team.herald.console.user = "alice"
    reply = await run(team, "console", "console", "alice", "/attach", media=(MediaIn("p.png", "image/png", png()),))
    assert reply.error and "no draft from the last 30 minutes" in reply.text
    await run(team, "console", "console", "alice", "/draft Hi", media=(MediaIn("p.png", "image/png", png()),))
    cleared = await team.say("alice", "/attach 1 clear")
    assert "#1: media removed." in cleared
    await refused(team, "alice", "/attach 1 clear", "has no media to clear")


async def test_a_private_chat_of_someone_in_two_workspaces_asks_which_one(team: Team) -> None:
    await run(team, "telegram", "-1", "alice", "/setup Acme", user_id="1")
    await run(team, "telegram", "-2", "mallory", "/setup Mallory Inc", user_id="66")
    await run(team, "telegram", "-2", "mallory", "/role admin", user_id="66",
              mentions=(Actor("telegram", "1", "alice"),))
    before = team.snapshot()
    asked = await run(team, "telegram", "1", "alice", "/connect sandbox name=brand token=s3cret", user_id="1",
                      private=True)
    assert asked.error and "several workspaces (Acme, Mallory Inc)" in asked.text and "/link" in asked.text
    assert team.snapshot() == before
    code = code_in(await run(team, "telegram", "-1", "alice", "/link", user_id="1"))
    await run(team, "telegram", "1", "alice", f"/link {code}", user_id="1", private=True)
    connected = await run(team, "telegram", "1", "alice", "/connect sandbox name=brand token=s3cret", user_id="1",
                          private=True)
    assert "Connected brand" in connected.text
    with team.herald.db.session() as session:
        from storage.models import Account

        assert session.exec(select(Account)).one().workspace_id == 1


async def test_role_by_reply_must_match_a_typed_name(team: Team) -> None:
    await run(team, "telegram", "-1", "alice", "/setup Acme", user_id="1")
    carol = Actor("telegram", "3", "@carol", username="carol")
    before = team.snapshot()
    wrong = await run(team, "telegram", "-1", "alice", "/role bob admin", user_id="1", mentions=(carol,))
    assert wrong.error and "You replied to @carol but typed bob" in wrong.text
    assert team.snapshot() == before
    right = await run(team, "telegram", "-1", "alice", "/role carol editor", user_id="1", mentions=(carol,))
    assert "@carol is now editor" in right.text


async def test_a_role_given_by_username_is_tied_to_the_first_person_who_uses_it(team: Team) -> None:
    await run(team, "telegram", "-1", "alice", "/setup Acme", user_id="1")
    await run(team, "telegram", "-1", "alice", "/role @sam editor", user_id="1")
    refused_first = await run(team, "telegram", "-1", "Sam", "/approve 9", user_id="5", username="sam")
    assert refused_first.error  # a refusal claims nothing
    with team.herald.db.session() as session:
        assert session.exec(select(Member).where(Member.name == "sam")).one().user_id == "@sam"
    assert not (await run(team, "telegram", "-1", "Sam", "/draft By Sam", user_id="5", username="sam")).error
    with team.herald.db.session() as session:
        assert session.exec(select(Member).where(Member.user_id == "5")).one().role == "editor"
    # Sam changes username; someone else takes "sam": no role comes with it
    impostor = await run(team, "telegram", "-1", "Sam2", "/draft Not me", user_id="77", username="sam")
    assert impostor.error and "You're a viewer" in impostor.text
    # a role by reply to someone named earlier by @username updates that row, no second one
    await run(team, "telegram", "-1", "alice", "/role @dan approver", user_id="1")
    await run(team, "telegram", "-1", "alice", "/role viewer", user_id="1",
              mentions=(Actor("telegram", "8", "@dan", username="dan"),))
    with team.herald.db.session() as session:
        dans = session.exec(select(Member).where(Member.name.in_(["dan", "@dan"]))).all()  # type: ignore[attr-defined]
    assert [(m.user_id, m.role) for m in dans] == [("8", "viewer")]


async def test_one_approvals_channel_per_server(team: Team) -> None:
    await run(team, "discord", "general", "alice", "/setup Acme", space="G1")
    await run(team, "discord", "a1", "alice", "/setup approvals", space="G1")
    moved = await run(team, "discord", "a2", "alice", "/setup approvals", space="G1")
    assert "a1 no longer gets them" in moved.text
    with team.herald.db.session() as session:
        links = {link.chat_id: link.purposes for link in session.exec(select(ChatLink)).all()}
    assert links == {"general": "team,reports", "a2": "approvals"}


async def test_decompression_bombs_and_fake_videos_are_refused(team: Team) -> None:
    await recording_team(team, "brand")
    await team.say("alice", "/draft Hello")
    buffer = io.BytesIO()
    Image.new("1", (8000, 8000)).save(buffer, format="PNG")  # a tiny file, 64 megapixels
    before = team.snapshot()
    bomb = await run(team, "console", "console", "alice", "/attach 1",
                     media=(MediaIn("bomb.png", "image/png", buffer.getvalue()),))
    assert bomb.error and "megapixels" in bomb.text
    heic_like = b"\x00\x00\x00\x18ftypheic" + b"\x00" * 32
    fake = await run(team, "console", "console", "alice", "/attach 1", media=(MediaIn("x.mov", "video/quicktime", heic_like),))
    assert fake.error and "isn't an MP4/MOV" in fake.text
    assert team.snapshot() == before
    ok = await run(team, "console", "console", "alice", "/attach 1", media=(MediaIn("v.mp4", "video/mp4", tiny_video()),))
    assert not ok.error and "1 file(s) attached" in ok.text


async def test_in_a_discord_server_only_people_with_a_herald_role_read_unless_readers_is_open(team: Team) -> None:
    await run(team, "discord", "general", "alice", "/setup Acme", space="G", user_id="10", is_chat_admin=True)
    await run(team, "discord", "general", "alice", "/connect sandbox name=brand", space="G", user_id="10")
    await run(team, "discord", "general", "alice", "/draft Secret launch plan", space="G", user_id="10")
    await run(team, "discord", "general", "alice", "/role viewer", space="G", user_id="10",
              mentions=(Actor("discord", "role:777", "@Staff"),))
    stranger = await run(team, "discord", "general", "olga", "/posts", space="G", user_id="11", groups=("555",))
    assert stranger.error and "/readers open" in stranger.text and "Secret" not in stranger.text
    helped = await run(team, "discord", "general", "olga", "/help posts", space="G", user_id="11")
    assert not helped.error
    staff = await run(team, "discord", "general", "sam", "/posts", space="G", user_id="12", groups=("777",))
    assert not staff.error and not staff.private and "Secret launch plan" in staff.text  # the team channel
    aside = await run(team, "discord", "random", "sam", "/posts", space="G", user_id="12", groups=("777",))
    assert not aside.error and aside.private and "Secret launch plan" in aside.text  # a channel not linked
    server_admin = await run(team, "discord", "random", "ann", "/posts", space="G", user_id="13", is_chat_admin=True)
    assert not server_admin.error and server_admin.private
    await run(team, "discord", "general", "alice", "/readers open", space="G", user_id="10")
    opened = await run(team, "discord", "random", "olga", "/posts", space="G", user_id="11")
    assert not opened.error and opened.private and "Secret launch plan" in opened.text


async def test_readers_members_leaves_telegram_groups_as_they_were(team: Team) -> None:
    await run(team, "telegram", "-1", "alice", "/setup Acme", user_id="1")
    await run(team, "telegram", "-1", "alice", "/connect sandbox name=brand", user_id="1")
    await run(team, "telegram", "-1", "alice", "/draft Hello group", user_id="1")
    member = await run(team, "telegram", "-1", "ben", "/posts", user_id="2")
    assert not member.error and not member.private and "Hello group" in member.text


async def test_a_file_is_a_video_only_if_its_first_frame_decodes(team: Team) -> None:
    """A right MP4 header is not enough: the file must open, hold a video stream and decode its first frame."""
    await recording_team(team, "brand")
    await team.say("alice", "/draft Hello")
    real = tiny_video()
    before = team.snapshot()
    for data, words in [
        (b"\x00\x00\x00\x18ftypisom" + b"\x00" * 64, "its data can't be read"),  # the header and nothing else
        (b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8, "isn't an MP4/MOV file I can play"),
        (tiny_video(audio_only=True), "it has no video in it"),  # an .m4a renamed .mp4
        (real[: len(real) // 2], "isn't an MP4/MOV file I can play"),  # an upload cut short
    ]:
        reply = await run(team, "console", "console", "alice", "/attach 1",
                          media=(MediaIn("ok.png", "image/png", png()), MediaIn("v.mp4", "video/mp4", data)))
        assert reply.error and words in reply.text and "Export it again" in reply.text, reply.text
    assert team.snapshot() == before
    ok = await run(team, "console", "console", "alice", "/attach 1",
                   media=(MediaIn("v.mp4", "video/mp4", real), MediaIn("clip.mov", "video/quicktime", tiny_video("mov"))))
    assert not ok.error and "2 file(s) attached" in ok.text, ok.text
    with team.herald.db.session() as session:
        assert [m.content_type for m in session.exec(select(Media).order_by(Media.id)).all()] == \
            ["video/mp4", "video/quicktime"]
