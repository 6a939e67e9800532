"""The inbox: comments read from the networks' loopback fakes on the FakeClock, stored once, forwarded in batches.

Comments come through the real connectors (Bluesky getPostThread, X recent search) from tests/fakes, as the
team's Herald reads them on its decaying cadence; the team sees them in the console chat and with /inbox.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from handlers.core.context import Context
from handlers.engagement.inbox import (
    COMMENT_CADENCE,
    FORWARD_MAX,
    insert_items,
    next_comments_at,
    read_comments,
    run_inbox,
)
from storage.models import Delivery, InboxItem
from tests.conftest import START, FakeClock, Team, capturing, refused
from tests.fakes.bluesky_api import FakeBluesky
from tests.fakes.x_api import FakeX

BSKY_PASSWORD = "abcd-efgh-ijkl-mnop"


def iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.fixture
async def bsky(clock: FakeClock) -> AsyncIterator[FakeBluesky]:
    async with FakeBluesky(clock.now, password=BSKY_PASSWORD) as server:
        yield server


@pytest.fixture
async def x() -> AsyncIterator[FakeX]:
    async with FakeX() as server:
        yield server


async def connect(team: Team, *, bsky: FakeBluesky | None = None, x: FakeX | None = None) -> None:
    """alice sets up Acme (Paris time) with the given fake accounts; bob approves."""
    await team.say("alice", "/setup Acme")
    await team.say("alice", "/timezone Europe/Paris")
    if bsky is not None:
        out = await team.say("alice", f"/connect bluesky name=acme-bsky base_url={bsky.url} "
                                      f"handle=brand.bsky.social app_password={BSKY_PASSWORD}")
        assert out.startswith("Connected acme-bsky"), out
    if x is not None:
        out = await team.say("alice", f"/connect x name=acme-x base_url={x.url} access_token=tok-1")
        assert out.startswith("Connected acme-x"), out
    await team.say("alice", "/role bob approver")


async def publish(team: Team, text: str, to: str) -> int:
    """A post drafted by alice, approved by bob and published now to `to`; its number."""
    out = await team.say("alice", f"/draft {text} to={to}")
    post_id = int(out.split("#", 1)[1].split(" ", 1)[0].rstrip("."))
    await team.say("alice", f"/submit {post_id}")
    await team.say("bob", f"/approve {post_id}")
    out = await team.say("alice", f"/publish {post_id}")
    assert f"📣 #{post_id} is published" in out, out
    return post_id


async def run(team: Team, task: Callable[[Context], Awaitable[Any]]) -> str:
    """Run a periodic task as the scheduler would; returns what Herald said in the chat meanwhile."""
    captured: list[str] = []
    team.herald.console.captured = captured
    try:
        await task(team.herald.ctx)
    finally:
        team.herald.console.captured = None
    return "\n".join(captured)


def remote_id(team: Team, post_id: int) -> str:
    delivery = team.deliveries(post_id)[0]
    assert delivery.remote_id is not None
    return delivery.remote_id


def items(team: Team) -> list[InboxItem]:
    with team.herald.db.session() as session:
        return list(session.exec(select(InboxItem).order_by(InboxItem.id)).all())  # type: ignore[arg-type]


def threads(bsky: FakeBluesky) -> int:
    return len(bsky.requests("GET", "/xrpc/app.bsky.feed.getPostThread"))


FANS = ("ana", "ben", "chloe", "dev", "emma")


def comment_on(bsky: FakeBluesky, uri: str, n: int, at: datetime, text: str | None = None) -> str:
    fan = FANS[n % len(FANS)]
    return bsky.reply(uri, text or f"Comment {n} from {fan}: love the spring colours", handle=f"{fan}{n}.bsky.social",
                      did=f"did:plc:{fan}{n}", created_at=iso(at))


# --- reading and forwarding -----------------------------------------------------------------------


async def test_twenty_five_comments_come_as_one_message_listing_ten_and_the_rest_waits_in_inbox(
    team: Team, bsky: FakeBluesky
) -> None:
    await connect(team, bsky=bsky)
    post = await publish(team, "Spring sale starts today!", "acme-bsky")
    uri = remote_id(team, post)
    for n in range(25):
        comment_on(bsky, uri, n, START + timedelta(minutes=1, seconds=10 * n))
    team.clock.advance(minutes=10)
    out = await run(team, run_inbox)
    assert threads(bsky) == 1  # one read of the post's thread
    lines = out.splitlines()
    assert lines[0] == "💬 25 new comments on your posts:"
    assert len([line for line in lines if line.startswith("  #")]) == FORWARD_MAX
    first = items(team)[0]
    assert lines[1] == (f"  #{first.id} · @ana0.bsky.social on Bluesky · post #{post} · “Comment 0 from ana: love the "
                        f"spring colours” · https://bsky.app/profile/ana0.bsky.social/post/{first.remote_id.rsplit('/')[-1]}")
    assert lines[10].startswith(f"  #{first.id + 9} · @emma9.bsky.social on Bluesky · post #{post} · “Comment 9")
    assert lines[11] == "  +15 more — /inbox"
    assert lines[12] == f"Answer one with /reply <number> <text>, e.g. /reply {first.id} Thanks!"
    assert len(lines) == 13  # one message, nothing else
    stored = items(team)
    assert len(stored) == 25
    assert all(i.forwarded_at == team.clock.now() for i in stored)
    assert [i.author for i in stored[:3]] == ["@ana0.bsky.social", "@ben1.bsky.social", "@chloe2.bsky.social"]
    assert stored[0].posted_at == START + timedelta(minutes=1) and stored[0].parent_remote_id == uri

    # the next read finds nothing new: no message, no duplicate rows
    team.clock.advance(minutes=10)
    assert await run(team, run_inbox) == ""
    assert threads(bsky) == 2 and len(items(team)) == 25


async def test_only_new_comments_are_forwarded_and_a_comment_read_again_is_stored_once(
    team: Team, x: FakeX
) -> None:
    await connect(team, x=x)
    post = await publish(team, "Spring sale starts today!", "acme-x")
    tweet = remote_id(team, post)
    x.reply(tweet, "Love it", username="ana", author_id="11", created_at=iso(START + timedelta(minutes=8)))
    x.reply(tweet, "our own answer", username="brand", author_id=x.user["id"],
            created_at=iso(START + timedelta(minutes=9)))
    team.clock.advance(minutes=10)
    out = await run(team, run_inbox)
    assert out.splitlines()[0] == "💬 1 new comment on your posts:"
    assert "@ana on X · post #1 · “Love it” · https://x.com/ana/status/" in out
    assert "our own answer" not in out  # the account's own replies aren't inbox items
    search = x.requests("GET", "/2/tweets/search/recent")
    assert search[0].query["query"] == f"conversation_id:{tweet}"
    assert search[0].query["start_time"] == iso(START - timedelta(minutes=15)).replace(".000", "")

    x.reply(tweet, "When does it end?", username="ben", author_id="12",
            created_at=iso(START + timedelta(minutes=15)))
    team.clock.advance(minutes=10)  # the second read asks again from 15 minutes before the first: ana comes back
    out = await run(team, run_inbox)
    search = x.requests("GET", "/2/tweets/search/recent")
    assert search[-1].query["start_time"] == iso(START - timedelta(minutes=5)).replace(".000", "")
    assert out.splitlines()[0] == "💬 1 new comment on your posts:"
    assert "“When does it end?”" in out and "Love it" not in out
    assert [i.text for i in items(team)] == ["Love it", "When does it end?"]


async def test_the_first_read_is_ten_minutes_after_publishing_then_the_cadence_slows(
    team: Team, bsky: FakeBluesky
) -> None:
    await connect(team, bsky=bsky)
    post = await publish(team, "Spring sale starts today!", "acme-bsky")
    team.clock.advance(minutes=9)
    await run(team, run_inbox)
    assert threads(bsky) == 0
    steps = [  # (age at the read, next read due)
        (timedelta(minutes=10), timedelta(minutes=20)),
        (timedelta(hours=3), timedelta(hours=3, minutes=30)),
        (timedelta(days=2), timedelta(days=2, hours=2)),
        (timedelta(days=6, hours=20), timedelta(days=7)),
    ]
    for n, (age, due) in enumerate(steps, start=1):
        team.clock.current = START + age
        await run(team, run_inbox)
        assert threads(bsky) == n, age
        delivery = team.deliveries(post)[0]
        assert delivery.comments_due_at == START + due and delivery.comments_read_at == START + age
        await run(team, run_inbox)  # not due again yet
        assert threads(bsky) == n
    team.clock.current = START + timedelta(days=7)
    await run(team, run_inbox)
    assert threads(bsky) == 5  # the last read, at 7 days
    team.clock.current = START + timedelta(days=9)
    await run(team, run_inbox)
    assert threads(bsky) == 5  # never again


@pytest.mark.parametrize(("age", "every"), [
    (timedelta(minutes=10), timedelta(minutes=10)),
    (timedelta(hours=1, minutes=59), timedelta(minutes=10)),
    (timedelta(hours=2), timedelta(minutes=30)),
    (timedelta(hours=23), timedelta(minutes=30)),
    (timedelta(days=1), timedelta(hours=2)),
    (timedelta(days=3), timedelta(hours=6)),
])
def test_comment_reading_slows_down_as_a_post_ages(age: timedelta, every: timedelta) -> None:
    assert next_comments_at(START, START + age) == START + age + every


def test_comments_are_read_for_seven_days_and_never_after() -> None:
    assert COMMENT_CADENCE[-1][0] == timedelta(days=7)
    assert next_comments_at(START, START + timedelta(days=6, hours=22)) == START + timedelta(days=7)
    assert next_comments_at(START, START + timedelta(days=7)) is None


async def test_a_network_error_is_logged_and_the_next_read_catches_up(
    team: Team, bsky: FakeBluesky, caplog: pytest.LogCaptureFixture
) -> None:
    await connect(team, bsky=bsky)
    post = await publish(team, "Spring sale starts today!", "acme-bsky")
    comment_on(bsky, remote_id(team, post), 0, START + timedelta(minutes=3))
    bsky.fail("GET", "/xrpc/app.bsky.feed.getPostThread", status=502, body={"error": "UpstreamFailure"})
    team.clock.advance(minutes=10)
    assert await run(team, run_inbox) == ""
    assert "comments of acme-bsky not read" in caplog.text
    assert items(team) == [] and team.deliveries(post)[0].comments_read_at is None
    team.clock.advance(minutes=10)
    out = await run(team, run_inbox)
    assert out.startswith("💬 1 new comment on your posts:\n") and "“Comment 0 from ana" in out


async def test_two_workers_on_one_database_read_and_forward_each_comment_once(
    team: Team, bsky: FakeBluesky, clock: FakeClock
) -> None:
    await connect(team, bsky=bsky)
    post = await publish(team, "Spring sale starts today!", "acme-bsky")
    uri = remote_id(team, post)
    for n in range(4):
        comment_on(bsky, uri, n, START + timedelta(minutes=2 + n))
    other, other_lines = capturing(team.db_url, clock, HERALD_WORKER_ID="second-worker")
    await other.start()
    try:
        team.clock.advance(minutes=10)
        captured: list[str] = []
        team.herald.console.captured = captured
        try:
            await asyncio.gather(run_inbox(team.herald.ctx), run_inbox(other.ctx))
        finally:
            team.herald.console.captured = None
        said = [*captured, *(line for line in other_lines if line.startswith("💬"))]
        assert [m.splitlines()[0] for m in said if m.startswith("💬")] == ["💬 4 new comments on your posts:"]
        assert threads(bsky) == 1  # the read itself was claimed by one worker
        assert len(items(team)) == 4

        # a second worker storing the same comments (as after a lost claim) adds nothing
        with other.db.session() as session:
            delivery = session.exec(select(Delivery).where(Delivery.post_id == post)).one()
            rows = [{"workspace_id": i.workspace_id, "delivery_id": delivery.id, "remote_id": i.remote_id,
                     "parent_remote_id": uri, "author": i.author, "text": i.text, "url": i.url,
                     "posted_at": i.posted_at, "fetched_at": clock.now(), "reply_approvals": []}
                    for i in items(team)]
            assert insert_items(session, rows) == []
        assert len(items(team)) == 4
        # and forwarding again, from either worker, sends nothing
        assert await run(team, run_inbox) == ""
        other_lines.clear()
        await run_inbox(other.ctx)
        assert not [line for line in other_lines if line.startswith("💬")]
    finally:
        await other.stop()


async def test_a_comment_read_twice_by_overlapping_reads_is_stored_once(team: Team, bsky: FakeBluesky) -> None:
    await connect(team, bsky=bsky)
    post = await publish(team, "Spring sale starts today!", "acme-bsky")
    comment_on(bsky, remote_id(team, post), 0, START + timedelta(minutes=9))
    team.clock.advance(minutes=10)
    await read_comments(team.herald.ctx)
    team.clock.advance(minutes=10)
    assert await read_comments(team.herald.ctx) == 0  # read again (15 minutes of overlap), not stored again
    assert threads(bsky) == 2 and len(items(team)) == 1


# --- /inbox -----------------------------------------------------------------------------------------


async def test_inbox_lists_the_latest_comments_with_their_numbers_and_reply_state(
    team: Team, bsky: FakeBluesky, x: FakeX
) -> None:
    await connect(team, bsky=bsky, x=x)
    sale = await publish(team, "Spring sale starts today!", "acme-bsky")
    news = await publish(team, "New shop in Lyon", "acme-x")
    uri = remote_id(team, sale)
    for n in range(17):
        comment_on(bsky, uri, n, START + timedelta(minutes=1 + n))
    x.reply(remote_id(team, news), "Finally in Lyon!", username="zoe", author_id="31",
            created_at=iso(START + timedelta(minutes=30)))
    team.clock.advance(minutes=40)
    await run(team, run_inbox)
    stored = items(team)
    assert len(stored) == 18
    zoe = next(i for i in stored if i.author == "@zoe")
    with team.herald.db.session() as session:  # what /reply (handlers/engagement/replies.py) records once an answer went out
        row = session.get(InboxItem, stored[16].id)
        assert row is not None
        row.reply_state, row.reply_by = "sent", "alice"

    out = await team.say("bob", "/inbox")
    lines = out.splitlines()
    assert lines[0] == "📥 Inbox: the latest 15 of 18 comments, newest first"
    assert lines[1] == (f"  #{zoe.id} · @zoe on X · post #{news} · 10 minutes ago · “Finally in Lyon!” · no reply yet · "
                        f"https://x.com/zoe/status/{zoe.remote_id}")
    assert lines[2].startswith(f"  #{stored[16].id} · @ben16.bsky.social on Bluesky · post #{sale} · 23 minutes ago · "
                               "“Comment 16 from ben: love the spring colours” · answered by alice · https://bsky.app/")
    assert lines[3].startswith(f"  #{stored[15].id} · @ana15.bsky.social") and "no reply yet" in lines[3]
    assert len(lines) == 17 and lines[-1] == "Answer one with /reply <number> <text>. /inbox <post> shows one post's."

    out = await team.say("bob", f"/inbox #{news}")
    assert out.splitlines() == [
        f"📥 Comments on #{news} — “New shop in Lyon”: 1 comment, newest first",
        f"  #{zoe.id} · @zoe on X · post #{news} · 10 minutes ago · “Finally in Lyon!” · no reply yet · "
        f"https://x.com/zoe/status/{zoe.remote_id}",
        "Answer one with /reply <number> <text>.",
    ]


async def test_inbox_before_any_comment_and_on_a_post_not_published(team: Team) -> None:
    await team.setup_workspace()
    out = await team.say("bob", "/inbox")
    assert out.startswith("📥 No comments yet. Herald reads comments on published posts 10 minutes after publishing, "
                          "then every 10 minutes to 2 hours, every 30 minutes to a day, every 2 hours to 3 days, "
                          "every 6 hours to 7 days")
    post = await team.approved_post()
    assert await team.say("bob", f"/inbox {post}") == f"#{post} isn't published yet, so it has no comments."
    await team.say("alice", f"/publish {post}")
    assert await team.say("bob", f"/inbox {post}") == f"#{post} has no comments yet."


async def test_inbox_refuses_what_isnt_a_post_of_this_workspace(team: Team) -> None:
    await team.setup_workspace()
    await refused(team, "bob", "/inbox soon", "'soon' isn't a post number. Usage: /inbox [post]")
    await refused(team, "bob", "/inbox 42", "There's no post #42 in this workspace.")
    await refused(team, "bob", "/inbox 1 2", "/inbox takes at most one post number")


async def test_the_sandbox_network_fills_the_inbox_for_the_console_demo(team: Team) -> None:
    await team.setup_workspace()
    post = await team.approved_post()
    await team.say("alice", f"/publish {post}")
    team.clock.advance(hours=6)
    out = await run(team, run_inbox)
    assert out.startswith("💬 ") and f"post #{post}" in out
    listed = await team.say("bob", "/inbox")
    assert listed.startswith("📥 Inbox: ") and "no reply yet" in listed


async def test_a_first_session_gets_a_sandbox_comment_within_minutes_to_answer(team: Team) -> None:
    await team.setup_workspace(accounts=("brand",))
    await team.say("alice", "/policy approvals=0")
    post = await team.approved_post()
    assert f"📣 #{post} is published" in await team.say("alice", f"/publish {post}")
    team.clock.advance(minutes=10)  # the sandbox's first comment comes 3 to 7 minutes after a post
    out = await run(team, run_inbox)
    assert out.startswith("💬 ") and f"post #{post}" in out, out
    with team.herald.db.session() as session:
        [comment] = session.exec(select(InboxItem)).all()
    assert START < comment.posted_at <= START + timedelta(minutes=7)
    listed = await team.say("bob", "/inbox")
    assert listed.startswith("📥 Inbox: ") and f"#{comment.id}" in listed and comment.text in listed, listed
    answered = await team.say("alice", f"/reply {comment.id} Thank you, {comment.author}!")
    assert answered.startswith(f"↪ Answered {comment.author} on brand (Sandbox) (item #{comment.id}): "), answered
    with team.herald.db.session() as session:
        stored = session.get(InboxItem, comment.id)
    assert stored is not None and stored.reply_state == "sent"
