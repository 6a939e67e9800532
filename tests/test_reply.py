"""/reply: answering comments on the networks, through the approval policy, exactly once.

Everything goes through the console chat as a team types it (buttons pressed by number), on Herald's
FakeClock. Comments reach the inbox the way they do in production: the inbox reader (handlers.engagement.inbox) reads
them from the networks — the sandbox here, and the X and Bluesky loopback fakes in the end-to-end test —
and /reply answers them through the same connectors.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from bot.networks.sandbox import SandboxNetwork
from handlers.core.chat import Actor, ChatAddress, Command, Reply
from handlers.core.ports import AccountView, Published, ReplyTarget
from handlers.dispatch import handle
from handlers.engagement.inbox import read_comments
from handlers.engagement.replies import reply_key, send_reply, settle_replies
from storage.models import Account, ChatLink, Delivery, InboxItem, Post, SandboxPost
from tests.conftest import START, FakeClock, Team, capturing, refused
from tests.fakes.bluesky_api import DID, FakeBluesky, _cid
from tests.fakes.x_api import FakeX

BSKY_PASSWORD = "abcd-efgh-ijkl-mnop"
TEXT = "It's available from Monday!"


# -- helpers -----------------------------------------------------------------------------------------------


async def inbox_ready(team: Team, *, approvers: tuple[str, ...] = ("bob",)) -> dict[str, int]:
    """alice's workspace (two sandbox accounts, X and Bluesky rules) with a post published 6 hours ago whose
    comments Herald has read into the inbox: the first item number of each account."""
    await team.setup_workspace(approvers=approvers)
    post_id = await team.approved_post()
    out = await team.say("alice", f"/publish {post_id}")
    assert f"📣 #{post_id} is published" in out, out
    team.clock.advance(hours=6)
    assert await read_comments(team.herald.ctx) > 0
    with team.herald.db.session() as session:
        rows = session.exec(select(InboxItem, Account).where(InboxItem.delivery_id == Delivery.id)
                            .where(Delivery.account_id == Account.id).order_by(InboxItem.id)).all()  # type: ignore[arg-type]
    first: dict[str, int] = {}
    for item, account in rows:
        first.setdefault(account.name, item.id or 0)
    return first


def item(team: Team, item_id: int) -> InboxItem:
    with team.herald.db.session() as session:
        found = session.get(InboxItem, item_id)
        assert found is not None
        return found


def replies_made(team: Team) -> list[SandboxPost]:
    """What the sandbox network holds as replies (its posts are kept in the same table)."""
    return [row for row in team.sandbox_posts() if row.idempotency_key.startswith("herald-reply-")]


def keep_buttons(team: Team) -> list[Any]:
    return list(team.herald.console.buttons)


async def press_again(team: Team, user: str, buttons: list[Any], number: int) -> str:
    """`user` presses a button of a message shown earlier (the console shows buttons of its last message)."""
    team.herald.console.buttons = list(buttons)
    return await team.say(user, str(number))


def press(team: Team, user: str, command: str, **args: Any) -> Command:
    """The command a front end hands Herald when `user` presses a button carrying `args`."""
    return Command(command, Actor("console", user, user, username=user), team.herald.console.chat, args=args)


class Recorder:
    """The notifier, recording every notice Herald sends on its own (to chats the console doesn't print)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.sent: list[tuple[ChatAddress, Reply]] = []

    async def send(self, chat: ChatAddress, reply: Reply) -> None:
        self.sent.append((chat, reply))
        await self.inner.send(chat, reply)


class GatedSandbox(SandboxNetwork):
    """The sandbox, holding each reply at the network until the test lets it through (a slow network)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()
        self.calls = 0

    async def reply(self, account: AccountView, target: ReplyTarget, text: str) -> Published:
        self.calls += 1
        self.entered.set()
        await self.gate.wait()
        return await super().reply(account, target, text)


# -- the approval flow --------------------------------------------------------------------------------------


async def test_a_reply_waits_for_approval_goes_to_the_approvers_and_out_once_approved(team: Team) -> None:
    first = await inbox_ready(team)
    n = first["brand-x"]
    comment = item(team, n)
    recorder = Recorder(team.herald.ctx.notifier)
    team.herald.ctx.notifier = recorder
    with team.herald.db.session() as session:  # an approvers' chat linked to the workspace
        session.add(ChatLink(workspace_id=1, platform="console", chat_id="approvers", purposes="approvals"))
    out = await team.say("alice", f"/reply {n} {TEXT}")
    assert out.splitlines() == [
        f"🔔 alice wants to answer item #{n} on brand-x (Sandbox) (1 approval(s) needed, from admin or approver).",
        f"Inbox item #{n} · brand-x (Sandbox) · under post #1: Spring sale starts today!",
        f"💬 {comment.author}: {comment.text}  {comment.url}",
        "↪ Reply by alice:",
        f"│ {TEXT}",
        "Approvals: 0 of 1 · waiting for approval",
        "[1] Approve reply  [2] Reject reply   (type a number to press)",
    ]
    [(chat, card)] = [(c, r) for c, r in recorder.sent if c.chat_id == "approvers"]
    assert [(b.label, b.command, b.args) for b in card.buttons] == [
        ("Approve reply", "approve_reply", {"item": n, "version": 1}),
        ("Reject reply", "reject_reply", {"item": n, "version": 1})]
    assert item(team, n).reply_state == "awaiting_approval" and replies_made(team) == []
    buttons = keep_buttons(team)

    out = await team.say("bob", "1")
    [made] = replies_made(team)
    assert out == (f"✅ bob approved the reply to item #{n} (1 of 1).\n"
                   f"↪ Answered {comment.author} on brand-x (Sandbox) (item #{n}): "
                   f"https://sandbox.herald.invalid/brand-x/{comment.parent_remote_id}#r{made.id}")
    assert made.text == TEXT and made.idempotency_key == reply_key(n, TEXT)
    answered = item(team, n)
    assert (answered.reply_state, answered.reply_remote_id, answered.reply_by) == ("sent", str(made.id), "alice")
    assert answered.reply_approvals == ["console:bob"] and answered.replied_at == team.clock.now()
    assert "answered by alice" in await team.say("bob", "/inbox")

    before = team.snapshot()  # bob presses Approve again on the card he saw
    out = await press_again(team, "bob", buttons, 1)
    assert out == f"✋ The reply to item #{n} isn't waiting for approval (it's already sent), so it can't be approved."
    assert team.snapshot() == before and len(replies_made(team)) == 1
    await refused(team, "alice", f"/reply {n} One more thing", f"Item #{n} was already answered on brand-x")


async def test_authors_can_t_approve_their_own_reply_unless_the_policy_says_so(team: Team) -> None:
    n = (await inbox_ready(team))["brand-bsky"]
    await team.say("alice", f"/reply {n} Thank you!")
    await refused(team, "alice", "1", "You wrote the reply to item", "/policy self_approval=on")
    await refused(team, "alice", f"/approve_reply {n}", "You wrote the reply to item")
    await refused(team, "carol", f"/approve_reply {n}", "Only admins or approvers can approve replies here. "
                                                       "You're a viewer")
    await refused(team, "carol", f"/reply {n} hi", "Only admins or editors can use /reply")
    await refused(team, "bob", f"/reply {n} hi", "Only admins or editors can use /reply. You're an approver")
    await team.say("alice", "/policy self_approval=on")
    out = await team.say("alice", f"/approve_reply {n}")
    assert out.startswith(f"✅ alice approved the reply to item #{n} (1 of 1).\n↪ Answered ")
    assert [r.text for r in replies_made(team)] == ["Thank you!"]


async def test_two_approvals_an_approver_pressing_twice_counts_once(team: Team) -> None:
    n = (await inbox_ready(team, approvers=("bob", "carol")))["brand-x"]
    await team.say("alice", "/policy approvals=2")
    out = await team.say("alice", f"/reply {n} {TEXT}")
    assert "(2 approval(s) needed, from admin or approver)" in out and "Approvals: 0 of 2" in out
    buttons = keep_buttons(team)
    out = await team.say("bob", "1")
    assert out == f"✅ bob approved the reply to item #{n} (1 of 2). 1 more approval(s) needed."
    out = await press_again(team, "bob", buttons, 1)
    assert out == f"✋ You already approved the reply to item #{n}; it needs 1 more from someone else."
    assert item(team, n).reply_approvals == ["console:bob"] and replies_made(team) == []
    out = await press_again(team, "carol", buttons, 1)
    assert out.startswith(f"✅ carol approved the reply to item #{n} (2 of 2).\n↪ Answered ")
    assert [r.text for r in replies_made(team)] == [TEXT]
    assert item(team, n).reply_approvals == ["console:bob", "console:carol"]


async def test_a_rejected_reply_is_never_sent_and_a_rewritten_one_needs_approval_again(team: Team) -> None:
    n = (await inbox_ready(team))["brand-x"]
    await team.say("alice", f"/reply {n} lol soon")
    old = keep_buttons(team)
    out = await team.say("bob", "2")
    assert out == f"Why reject the reply to item #{n}? (type it, or a /command to skip)"
    out = await team.say("bob", "Too casual for a customer")
    assert out == (f"⛔ bob rejected the reply to item #{n}: Too casual for a customer\nIt won't be sent. "
                   f"/reply {n} <text> writes a new one.")
    assert (item(team, n).reply_state, replies_made(team)) == ("rejected", [])
    await refused(team, "alice", f"/reply {n}", "That reply was rejected (rejected by bob: Too casual for a customer)")
    await refused(team, "bob", f"/approve_reply {n}", "isn't waiting for approval (it's rejected)")

    out = await team.say("alice", f"/reply {n} {TEXT}")
    assert "Approvals: 0 of 1 · waiting for approval" in out and item(team, n).reply_version == 2
    await refused(team, "bob", f"/reject_reply {n}", "Say why: /reject_reply <item> <reason>")
    team.herald.console.buttons = list(old)  # the first card's Approve: for the rejected version
    await refused(team, "bob", "1", "That button is for an earlier reply to item", "it was rewritten since")
    out = await team.say("bob", f"/approve_reply {n}")
    assert "↪ Answered" in out and [r.text for r in replies_made(team)] == [TEXT]


async def test_a_new_text_replaces_a_waiting_reply_and_its_approvals_start_over(team: Team) -> None:
    n = (await inbox_ready(team, approvers=("bob", "carol")))["brand-x"]
    await team.say("alice", "/policy approvals=2")
    await team.say("alice", f"/reply {n} First try")
    first_card = keep_buttons(team)
    await team.say("bob", "1")
    out = await team.say("alice", f"/reply {n} {TEXT}")
    assert "│ " + TEXT in out and "Approvals: 0 of 2" in out
    written = item(team, n)
    assert (written.reply_text, written.reply_version, written.reply_approvals) == (TEXT, 2, [])
    await refused(team, "alice", f"/reply {n}", "is waiting for approval: /approve_reply")
    team.herald.console.buttons = list(first_card)
    await refused(team, "carol", "1", "That button is for an earlier reply")
    await team.say("bob", f"/approve_reply {n}")
    out = await team.say("carol", f"/approve_reply {n}")
    assert "(2 of 2)" in out and [r.text for r in replies_made(team)] == [TEXT]


async def test_without_approvals_a_reply_goes_out_at_once(team: Team) -> None:
    n = (await inbox_ready(team))["brand-bsky"]
    await team.say("alice", "/policy approvals=0")
    comment = item(team, n)
    out = await team.say("alice", f"/reply {n} Thank you, {comment.author}!")
    [made] = replies_made(team)
    assert out == (f"↪ Answered {comment.author} on brand-bsky (Sandbox) (item #{n}): "
                   f"https://sandbox.herald.invalid/brand-bsky/{comment.parent_remote_id}#r{made.id}")
    assert made.text == f"Thank you, {comment.author}!" and item(team, n).reply_state == "sent"


# -- refusals ------------------------------------------------------------------------------------------------


async def test_a_reply_over_the_network_limit_or_without_text_is_refused_and_changes_nothing(team: Team) -> None:
    first = await inbox_ready(team)
    await refused(team, "alice", f"/reply {first['brand-x']} " + "a" * 281,
                  "That reply doesn't fit brand-x (Sandbox): ✗ X: 281/280 weighted characters — 1 weighted "
                  "character over the limit. Nothing was sent; shorten it and try again")
    await refused(team, "alice", f"/reply {first['brand-bsky']} " + "é" * 301,
                  "✗ Bluesky: 301/300 graphemes — 1 grapheme over the limit")
    await refused(team, "alice", f"/reply {first['brand-x']}", "Say what to answer")
    await refused(team, "alice", "/reply 999 Thanks", "There's no inbox item #999 in this workspace. /inbox lists")
    await refused(team, "alice", "/reply abc Thanks", "'abc' isn't an inbox item number")
    await refused(team, "alice", "/reply", "Which comment? Give its inbox number: /reply <item> <text>")


async def test_networks_herald_can_t_answer_on_are_refused_plainly(team: Team) -> None:
    await team.setup_workspace()
    now = team.clock.now()
    with team.herald.db.session() as session:  # a TikTok post with a comment in the inbox
        account = Account(workspace_id=1, network="tiktok", name="acme-tt", settings={}, created_at=now)
        post = Post(workspace_id=1, author_platform="console", author_user_id="alice", author_name="alice",
                    text="Behind the scenes", state="published", created_at=now)
        session.add(account)
        session.add(post)
        session.flush()
        delivery = Delivery(post_id=post.id or 0, account_id=account.id or 0, idempotency_key="tt-1", state="sent",
                            remote_id="7300000000000000001", sent_at=now)
        session.add(delivery)
        session.flush()
        comment = InboxItem(workspace_id=1, delivery_id=delivery.id or 0, remote_id="c-1",
                            parent_remote_id="7300000000000000001", author="@fan", text="Song?",
                            url="https://www.tiktok.com/@acme/video/7300000000000000001", posted_at=now, fetched_at=now)
        session.add(comment)
        session.flush()
        n = comment.id
    await refused(team, "alice", f"/reply {n} It's our own jingle!",
                  f"Herald can't answer item #{n} on acme-tt (TikTok): TikTok's API doesn't let apps like Herald read "
                  "or answer comments, so answer them in the TikTok app. The comment: "
                  "https://www.tiktok.com/@acme/video/7300000000000000001")


# -- exactly once, never silently -------------------------------------------------------------------------------


async def test_an_answer_that_never_came_is_unconfirmed_and_only_a_person_sends_it_again(team: Team) -> None:
    n = (await inbox_ready(team))["brand-x"]
    await team.say("alice", "/policy approvals=0")
    await team.say("alice", "/connect sandbox name=brand-x like=x fail=timeout")  # the answer gets lost
    comment = item(team, n)
    out = await team.say("alice", f"/reply {n} {TEXT}")
    assert out == (f"? The reply to item #{n} on brand-x (Sandbox) is unconfirmed — no answer came back within 30 "
                   "seconds (fail=timeout), after the reply was sent. It may be there, so Herald won't send it again "
                   f"on its own. Look under the comment ({comment.url}): if your reply is there, there's nothing more "
                   f"to do; if not, /reply {n} sends it again.")
    assert item(team, n).reply_state == "unconfirmed" and len(replies_made(team)) == 1  # it did land
    team.clock.advance(hours=1)
    assert await settle_replies(team.herald.ctx) == 0  # the clock never resends it
    assert item(team, n).reply_state == "unconfirmed" and len(replies_made(team)) == 1

    await team.say("alice", "/connect sandbox name=brand-x like=x")
    out = await team.say("alice", f"/reply {n}")  # the team decides to send it again: the same text, the same key
    [made] = replies_made(team)
    assert out.startswith(f"↪ Answered {comment.author} on brand-x (Sandbox) (item #{n}): ")
    assert (item(team, n).reply_state, item(team, n).reply_remote_id) == ("sent", str(made.id))


async def test_a_failed_reply_says_why_and_what_fixes_it(team: Team) -> None:
    n = (await inbox_ready(team))["brand-x"]
    await team.say("alice", "/policy approvals=0")
    await team.say("alice", "/connect sandbox name=brand-x like=x fail=rate_limit")
    out = await team.say("alice", f"/reply {n} {TEXT}")
    assert out == (f"✗ The reply to item #{n} on brand-x (Sandbox) didn't go out: the sandbox said: too many replies "
                   f"(fail=rate_limit) → Sandbox is holding this account back for now; /reply {n} sends it again "
                   "later (in about 1 min)")
    assert (item(team, n).reply_state, replies_made(team)) == ("failed", [])

    await team.say("alice", "/connect sandbox name=brand-x like=x fail=auth")
    out = await team.say("alice", f"/reply {n}")  # sent again as it was: no approval needed for the same text
    assert f"✗ The reply to item #{n} on brand-x (Sandbox) didn't go out: the sandbox token has expired (fail=auth) " \
           f"→ reconnect with /connect sandbox name=brand-x … (in a private chat with me), then /reply {n} sends it " \
           "again" in out
    await refused(team, "alice", f"/reply {n}", "brand-x needs reconnecting", "/connect sandbox name=brand-x")
    await team.say("alice", "/connect sandbox name=brand-x like=x")
    out = await team.say("alice", f"/reply {n}")
    assert out.startswith("↪ Answered") and [r.text for r in replies_made(team)] == [TEXT]


async def test_two_workers_racing_the_same_approval_send_once(team: Team, clock: FakeClock) -> None:
    n = (await inbox_ready(team, approvers=("bob", "carol")))["brand-x"]
    gated = GatedSandbox(team.herald.db, clock, team.herald.networks)
    team.herald.networks.add(gated)  # worker A's network answers slowly
    other, lines = capturing(team.db_url, clock, HERALD_WORKER_ID="worker-2")  # worker B, same database
    await team.say("alice", f"/reply {n} {TEXT}")
    version = item(team, n).reply_version
    bob = asyncio.create_task(handle(team.herald.ctx, press(team, "bob", "approve_reply", item=n, version=version)))
    await gated.entered.wait()  # A claimed the send and is waiting on the network
    carol = await handle(other.ctx, press(team, "carol", "approve_reply", item=n, version=version))
    assert carol.error and "isn't waiting for approval (it's being sent)" in carol.text
    assert await settle_replies(other.ctx) == 0  # B's clock leaves a send in flight alone
    assert await send_reply(other.ctx, n) is None  # and B can't claim it either
    gated.gate.set()
    answered = await bob
    assert "↪ Answered" in answered.text and gated.calls == 1
    assert [r.text for r in replies_made(team)] == [TEXT] and item(team, n).reply_state == "sent"


async def test_two_workers_sending_one_approved_reply_call_the_network_once(team: Team, clock: FakeClock) -> None:
    n = (await inbox_ready(team))["brand-x"]
    other, _lines = capturing(team.db_url, clock, HERALD_WORKER_ID="worker-2")
    gated_a = GatedSandbox(team.herald.db, clock, team.herald.networks)
    gated_b = GatedSandbox(other.db, clock, other.networks)
    team.herald.networks.add(gated_a)
    other.networks.add(gated_b)
    gated_a.gate.set()
    gated_b.gate.set()
    await team.say("alice", f"/reply {n} {TEXT}")
    with team.herald.db.session() as session:  # approved, as a worker leaves it just before claiming the send
        row = session.get(InboxItem, n)
        assert row is not None
        row.reply_state, row.reply_approvals = "approved", ["console:bob"]
    outcomes = await asyncio.gather(send_reply(team.herald.ctx, n), send_reply(other.ctx, n))
    assert sum(o is not None for o in outcomes) == 1 and gated_a.calls + gated_b.calls == 1
    assert len(replies_made(team)) == 1


async def test_a_send_cut_off_by_a_stopped_worker_turns_unconfirmed_and_a_late_answer_corrects_it(
    team: Team, clock: FakeClock
) -> None:
    n = (await inbox_ready(team))["brand-x"]
    await team.say("alice", "/policy approvals=0")
    gated = GatedSandbox(team.herald.db, clock, team.herald.networks)
    team.herald.networks.add(gated)
    other, lines = capturing(team.db_url, clock, HERALD_WORKER_ID="worker-2")
    sending = asyncio.create_task(handle(team.herald.ctx, Command(
        "reply", Actor("console", "alice", "alice", username="alice"), team.herald.console.chat, text=f"{n} {TEXT}")))
    await gated.entered.wait()
    clock.advance(minutes=9)
    assert await settle_replies(other.ctx) == 0  # 9 minutes: still being sent
    clock.advance(minutes=2)
    assert await settle_replies(other.ctx) == 1
    assert item(team, n).reply_state == "unconfirmed"
    assert any(f"? The reply to item #{n} on brand-x (Sandbox) is unconfirmed — Herald stopped while sending it (no "
               "answer for 10 minutes)" in line for line in lines)
    assert await settle_replies(other.ctx) == 0  # told once
    gated.gate.set()
    late = await sending  # the network's answer arrives after all
    assert "↪ Answered" in late.text
    [made] = replies_made(team)
    assert (item(team, n).reply_state, item(team, n).reply_remote_id) == ("sent", str(made.id))


async def test_an_approved_reply_left_behind_is_sent_by_the_clock(team: Team) -> None:
    n = (await inbox_ready(team))["brand-bsky"]
    await team.say("alice", f"/reply {n} {TEXT}")
    with team.herald.db.session() as session:  # a worker stopped between the approval and the send
        row = session.get(InboxItem, n)
        assert row is not None
        row.reply_state, row.reply_approvals = "approved", ["console:bob"]
    captured: list[str] = []
    team.herald.console.captured = captured
    try:
        assert await settle_replies(team.herald.ctx) == 1
    finally:
        team.herald.console.captured = None
    assert captured and captured[0].startswith("↪ Answered ") and f"(item #{n})" in captured[0]
    assert [r.text for r in replies_made(team)] == [TEXT]
    assert await settle_replies(team.herald.ctx) == 0


# -- end to end through the networks' fakes ---------------------------------------------------------------------


@pytest.fixture
async def x() -> AsyncIterator[FakeX]:
    async with FakeX() as server:
        yield server


@pytest.fixture
async def bsky(clock: FakeClock) -> AsyncIterator[FakeBluesky]:
    async with FakeBluesky(clock.now, password=BSKY_PASSWORD) as server:
        yield server


def iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


async def test_replies_reach_x_and_bluesky_with_their_documented_requests(
    team: Team, x: FakeX, bsky: FakeBluesky
) -> None:
    await team.say("alice", "/setup Acme")
    await team.say("alice", f"/connect x name=acme-x base_url={x.url} access_token=tok-1")
    await team.say("alice", f"/connect bluesky name=acme-bsky base_url={bsky.url} handle=brand.bsky.social "
                            f"app_password={BSKY_PASSWORD}")
    await team.say("alice", "/role bob approver")
    out = await team.say("alice", "/draft Spring sale starts today! to=acme-x,acme-bsky")
    post_id = int(out.split("#", 1)[1].split(" ", 1)[0].rstrip("."))
    await team.say("alice", f"/submit {post_id}")
    await team.say("bob", f"/approve {post_id}")
    assert "📣" in await team.say("alice", f"/publish {post_id}")
    tweet = next(d.remote_id for d in team.deliveries(post_id) if d.remote_id and not d.remote_id.startswith("at:"))
    uri = next(d.remote_id for d in team.deliveries(post_id) if d.remote_id and d.remote_id.startswith("at:"))
    asked = x.reply(tweet, "Does it include shoes?", username="ana", author_id="11",
                    created_at=iso(START + timedelta(minutes=3)))
    top = bsky.reply(uri, "Love it", handle="ben.bsky.social", did="did:plc:ben", created_at=iso(START + timedelta(minutes=4)))
    nested = bsky.reply(top, "Me too!", handle="cleo.bsky.social", did="did:plc:cleo",
                        created_at=iso(START + timedelta(minutes=5)))
    team.clock.advance(minutes=15)
    assert await read_comments(team.herald.ctx) == 3
    with team.herald.db.session() as session:
        by_remote = {i.remote_id: i.id for i in session.exec(select(InboxItem)).all()}

    out = await team.say("alice", f"/reply {by_remote[asked]} @ana Yes, shoes too!")
    assert "✓ X:" not in out and "│ @ana Yes, shoes too!" in out
    x.seen.clear()
    out = await team.say("bob", "1")
    [sent] = x.requests("POST", "/2/tweets")
    assert sent.json == {"text": "@ana Yes, shoes too!", "reply": {"in_reply_to_tweet_id": asked}}
    [made] = [t for t in x.tweets.values() if t.get("in_reply_to_tweet_id") == asked]
    assert f"https://x.com/brand/status/{made['id']}" in out and item(team, by_remote[asked]).reply_remote_id == made["id"]

    await team.say("alice", f"/reply {by_remote[nested]} Thanks Cleo!")
    bsky.seen.clear()
    out = await team.say("bob", "1")
    record = bsky.requests("POST", "/xrpc/com.atproto.repo.createRecord")[0].json
    assert record["record"]["text"] == "Thanks Cleo!"
    assert record["record"]["reply"] == {"root": {"uri": uri, "cid": _cid(uri)}, "parent": {"uri": nested,
                                                                                             "cid": _cid(nested)}}
    created = f"at://{DID}/app.bsky.feed.post/{record['rkey']}"
    assert created in bsky.records and item(team, by_remote[nested]).reply_remote_id == created
    assert "↪ Answered @cleo.bsky.social on acme-bsky (Bluesky)" in out
