"""The evergreen queue (/evergreen) through the console chat over four simulated months: published posts fill the
accounts' free posting slots with a cooldown, a cycle limit and rotating wordings, never an identical text to one
account within its network's duplicate window (X: said differently, or skipped and the team told), nothing
while paused, one repost per slot however many workers fill."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from datetime import UTC, datetime

from sqlmodel import col, select

from handlers.core.chat import MediaIn
from handlers.core.commands import PERIODIC
from handlers.engagement.metrics import poll_metrics
from handlers.posts.evergreen import Choice, create_run, fill_evergreen
from storage.models import Account, EvergreenRun, Post
from tests.conftest import Team, make_herald, refused
from tests.fakes.x_api import FakeX
from tests.test_chats_and_people import png, run
from tests.test_repeat import QuietScheduler

ORIGINAL = "Our guide to winter gardening"
OTHER = "Winter gardening, the short guide"


async def published(team: Team, text: str = ORIGINAL) -> int:
    post_id = await team.approved_post(text)
    out = await team.say("alice", f"/publish {post_id}")
    assert team.post(post_id).state == "published", out
    return post_id


def accounts(team: Team) -> dict[int, str]:
    with team.herald.db.session() as session:
        return {a.id or 0: a.name for a in session.exec(select(Account)).all()}


def runs(team: Team) -> list[tuple[EvergreenRun, Post]]:
    with team.herald.db.session() as session:
        return list(session.exec(select(EvergreenRun, Post).where(col(EvergreenRun.post_id) == col(Post.id))
                                 .order_by(col(EvergreenRun.slot_at), col(EvergreenRun.id))).all())


async def approve_waiting_reposts(team: Team) -> None:
    for _run, post in runs(team):
        if post.state == "in_review":
            out = await team.say("bob", f"/approve {post.id}")
            assert "Approved and scheduled" in out, out


async def test_the_queue_fills_slots_with_cooldown_rotation_and_no_duplicate_inside_the_window(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/slots brand-x 10:00")
    await team.say("alice", "/slots brand-bsky 10:00")
    source = await published(team)  # Mon 23 Nov 2026 10:00 in Paris, on brand-x (X rules) and brand-bsky
    out = await team.say("alice", f"/evergreen add {source} cycles=3")
    assert out.startswith(f"♻️ #{source} is in the evergreen library: it goes again to brand-bsky, brand-x"), out
    assert "every 30 days or more, at most 3 times per account" in out
    out = await team.say("alice", f"/evergreen vary {source} {OTHER}")
    assert "2 wordings" in out and "go to the approvers first" in out, out

    notices: list[str] = []
    for _day in range(120):  # until Sun 21 Mar 2027, before Paris changes to summer time
        team.clock.advance(hours=23)  # 09:00 in Paris: the day's 10:00 slots are free
        captured: list[str] = []
        team.herald.console.captured = captured
        try:
            await fill_evergreen(team.herald.ctx)
        finally:
            team.herald.console.captured = None
        notices += captured
        await approve_waiting_reposts(team)
        await team.tick(hours=1)  # 10:00: the reposts go out

    names = accounts(team)
    sent = [(names[p.account_id], p.text, p.created_at) for p in team.sandbox_posts()]
    start = team.sandbox_posts()[0].created_at
    assert start is not None

    def days(account: str) -> list[tuple[int, str]]:
        return [((at - start).days if at else -1, text) for name, text, at in sent if name == account]

    # Bluesky takes identical posts: every 30 days, the wordings taking turns, three runs and no more
    assert days("brand-bsky") == [(0, ORIGINAL), (30, OTHER), (60, ORIGINAL), (90, OTHER)]
    # X refuses an identical post within 90 days: day 30 says it differently, day 60 has no wording free (skipped),
    # the original comes back once 90 days have passed since it went out
    assert days("brand-x") == [(0, ORIGINAL), (30, OTHER), (91, ORIGINAL)]
    for account in ("brand-x", "brand-bsky"):
        history = days(account)
        assert all(b - a >= 30 for (a, _t), (b, _u) in zip(history, history[1:], strict=False))  # the cooldown
    x = days("brand-x")
    assert not [(a, b) for i, (a, t) in enumerate(x) for b, u in x[i + 1:] if t == u and b - a <= 90]

    skipped = [n for n in notices if n.startswith(f"⏭ Evergreen: #{source} isn't posted again on brand-x")]
    assert len(skipped) == 1, notices  # days 60 to 90: told once, not every day
    assert "X refuses an identical post within 90 days" in skipped[0] and f"/evergreen vary {source}" in skipped[0]
    made = [n for n in notices if n.startswith("♻️ Evergreen:")]
    assert len(made) == 5 and all(f"#{source} goes out again on" in n for n in made)

    assert await poll_metrics(team.herald.ctx) > 0  # the reposts' numbers, read like any post's
    out = await team.say("bob", "/evergreen")  # anyone may read the library
    assert f"#{source} {ORIGINAL}" in out and "at most 3 times per account" in out, out
    lines = [line for line in out.splitlines() if line.startswith("  ")]
    assert [line.split(" · ")[1] for line in lines] == ["brand-bsky", "brand-x", "brand-bsky", "brand-bsky", "brand-x"]
    assert all(" published · wording " in line and " likes, " in line for line in lines), out


async def test_a_wording_the_account_posted_lately_is_passed_over_and_the_team_told(team: Team) -> None:
    await team.setup_workspace(accounts=("brand-x like=x",))
    await team.say("alice", "/policy approvals=0")
    await team.say("alice", "/slots brand-x 10:00")
    source = await published(team)
    await team.say("alice", f"/evergreen add {source}")
    await team.say("alice", f"/evergreen vary {source} {OTHER}")
    await team.say("alice", f"/evergreen vary {source} Three tips for a winter garden")
    team.clock.advance(days=5)
    await published(team, OTHER)  # the team posts the second wording by hand
    team.clock.advance(days=24, hours=23)  # 30 days on, 09:00 in Paris
    captured: list[str] = []
    team.herald.console.captured = captured
    try:
        assert await fill_evergreen(team.herald.ctx) == 1
    finally:
        team.herald.console.captured = None
    [(run, post)] = runs(team)
    assert (run.wording, post.text) == (2, "Three tips for a winter garden")
    assert "(run 1, wording 3 of 3). It says it differently: wording 2 went to brand-x on Sat 28 Nov 2026 10:00 " \
           "CET (Europe/Paris), and X refuses an identical post within 90 days." in captured[0], captured


async def test_a_pause_queues_nothing_and_a_team_post_keeps_its_slot(team: Team) -> None:
    await team.setup_workspace(accounts=("brand-bsky like=bluesky",))  # Bluesky takes identical posts
    await team.say("alice", "/slots brand-bsky 10:00 15:00")
    source = await published(team)
    await team.say("alice", f"/evergreen add {source} cooldown=2d")
    team.clock.advance(days=2, hours=1)  # Wed 25 Nov 11:00 in Paris: the 15:00 slot is free, tomorrow's 10:00 too
    await team.say("alice", "/pause Press statement first")
    assert await fill_evergreen(team.herald.ctx) == 0
    assert "Publishing is paused" in await team.say("alice", "/evergreen")
    await team.say("alice", "/resume")
    other = await team.approved_post("Flash sale today")
    await team.say("alice", f"/schedule {other} today 15:00")
    assert await fill_evergreen(team.herald.ctx) == 1  # not 15:00 today, which the team's post has
    [(run, post)] = runs(team)
    assert post.due_at is not None and post.due_at.isoformat() == "2026-11-26T09:00:00+00:00"
    assert (post.state, post.text) == ("scheduled", ORIGINAL)  # as published (and approved) first


async def test_one_repost_per_slot_however_many_workers_fill(team: Team, db_url: str) -> None:
    await team.setup_workspace(accounts=("brand-bsky like=bluesky", "brand-masto like=mastodon"))
    await team.say("alice", "/policy approvals=0")
    await team.say("alice", "/slots brand-masto 10:00")
    await team.say("alice", "/slots brand-bsky 10:00")
    first = await published(team, "First evergreen")
    second = await published(team, "Second evergreen")
    await team.say("alice", f"/evergreen add {first} cooldown=1d")
    await team.say("alice", f"/evergreen add {second} cooldown=1d")
    other = make_herald(db_url, team.clock, HERALD_WORKER_ID="second")
    await other.start()
    try:
        for _day in range(4):
            team.clock.advance(hours=23)
            await asyncio.gather(fill_evergreen(team.herald.ctx), fill_evergreen(other.ctx))
            await team.tick(hours=1)
    finally:
        await other.stop()
    made = runs(team)
    slots = [(run.account_id, run.slot_at) for run, _post in made]
    assert len(made) == 8 and len(set(slots)) == 8  # two accounts, four days, one each
    texts = [post.text for run, post in made if accounts(team)[run.account_id] == "brand-bsky"]
    assert texts == ["First evergreen", "Second evergreen"] * 2  # the longest rested goes first
    assert len(team.sandbox_posts()) == 4 + 8
    run, post = made[-1]
    with team.herald.db.session() as session:
        before = len(session.exec(select(Post.id)).all())
    assert run.slot_at is not None
    again = create_run(team.herald.ctx, post.workspace_id, run.account_id, run.slot_at, Choice(run.item_id, 0, "Again"))
    assert again is None  # the slot's claim holds (a crash's rerun, or a worker that read before the other wrote)
    with team.herald.db.session() as session:
        assert len(session.exec(select(Post.id)).all()) == before  # and the refused repost left no post behind


async def test_removing_a_post_cancels_its_waiting_reposts(team: Team) -> None:
    await team.setup_workspace(accounts=("brand-bsky like=bluesky",))
    await team.say("alice", "/slots brand-bsky 10:00")
    source = await published(team)
    await team.say("alice", f"/evergreen add {source} cooldown=1d")
    team.clock.advance(days=1)
    assert await fill_evergreen(team.herald.ctx) == 1
    [(_run, post)] = runs(team)
    out = await team.say("alice", f"/evergreen remove {source}")
    assert out == f"#{source} is out of the evergreen library. Its waiting reposts #{post.id} are cancelled."
    assert team.post(post.id or 0).state == "cancelled"
    team.clock.advance(days=1)
    assert await fill_evergreen(team.herald.ctx) == 0
    assert "library is empty" in await team.say("alice", "/evergreen")
    assert "library is empty" in await team.say("alice", "/evergreen list")


async def test_bad_evergreen_input_changes_nothing(team: Team) -> None:
    await team.setup_workspace()
    draft = int((await team.say("alice", "/draft Not out yet")).split("#", 1)[1].split(" ", 1)[0].rstrip("."))
    source = await published(team)
    await refused(team, "alice", f"/evergreen add {draft}", "only a published post")
    await refused(team, "alice", "/evergreen add 99", "no post #99")
    await refused(team, "alice", "/evergreen add", "Which post?")
    await refused(team, "alice", f"/evergreen add {source} cooldown=0d", "cooldown= takes days")
    await refused(team, "alice", f"/evergreen add {source} cycles=many", "cycles= takes a number")
    await refused(team, "alice", f"/evergreen add {source} every=3", "isn't an option")
    await refused(team, "alice", "/evergreen shuffle", "isn't something /evergreen does")
    await refused(team, "alice", f"/evergreen vary {source} Hello", "isn't in the evergreen library")
    await refused(team, "bob", f"/evergreen add {source}", "change the evergreen library")
    await team.say("alice", f"/evergreen add {source}")
    await refused(team, "alice", f"/evergreen add {source}", "already")
    await refused(team, "alice", f"/evergreen vary {source}", "What should the other wording say?")
    await refused(team, "alice", f"/evergreen vary {source} {ORIGINAL.upper()}", "has that wording already")
    await refused(team, "alice", f"/evergreen vary {source} {'x' * 300}", "doesn't fit every account", "brand-x")


async def test_workers_racing_for_one_slot_make_one_repost(team: Team) -> None:
    """Four workers (threads, each its own connection) fill the same slot at once: one repost."""
    await team.setup_workspace(accounts=("brand-bsky like=bluesky",))
    await team.say("alice", "/slots brand-bsky 10:00")
    source = await published(team)
    await team.say("alice", f"/evergreen add {source}")
    with team.herald.db.session() as session:
        account = session.exec(select(Account)).one()
        post = session.get(Post, source)
        assert post is not None
    slot = datetime(2026, 12, 24, 9, tzinfo=UTC)
    ctx = replace(team.herald.ctx, scheduler=QuietScheduler())
    start = threading.Barrier(4)
    results: list[object] = []

    def worker(wording: int) -> None:
        start.wait()
        results.append(create_run(ctx, post.workspace_id, account.id or 0, slot, Choice(1, 0, f"Take {wording}")))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and len([r for r in results if r is not None]) == 1
    assert len(runs(team)) == 1
    with team.herald.db.session() as session:
        assert len(session.exec(select(Post.id).where(Post.due_at == slot)).all()) == 1


async def test_a_library_post_keeps_its_files_past_the_media_retention(team: Team) -> None:
    await team.setup_workspace(accounts=("brand-bsky like=bluesky",))
    photo = (MediaIn("p.png", "image/png", png((6, 4))),)
    made = await run(team, "console", "console", "alice", "/draft Our guide, with a picture", media=photo)
    source = int(made.text.split("#", 1)[1].split(" ", 1)[0].rstrip("."))
    await team.say("alice", f"/submit {source}")
    await team.say("bob", f"/approve {source}")
    await team.say("alice", f"/publish {source}")
    await team.say("alice", f"/evergreen add {source} cooldown=120d")
    team.clock.advance(days=100)  # past the 90-day media retention of a published post
    assert await PERIODIC["media_retention"].task(team.herald.ctx) == 0
    await team.say("alice", "/slots brand-bsky 10:00")
    team.clock.advance(days=20)
    assert await fill_evergreen(team.herald.ctx) == 1
    [(_run, repost)] = runs(team)
    assert repost.media == team.post(source).media and len(repost.media) == 1
    await team.say("alice", f"/evergreen remove {source}")
    assert await PERIODIC["media_retention"].task(team.herald.ctx) == 1  # out of the library: the old file goes


async def test_reposts_reach_the_x_fake_and_x_never_sees_a_duplicate(team: Team) -> None:
    """Through the X connector and its loopback fake, which refuses any text it already has (403)."""
    async with FakeX() as x:
        await team.say("alice", "/setup Acme")
        await team.say("alice", "/timezone Europe/Paris")
        await team.say("alice", f"/connect x name=acme-x base_url={x.url} access_token=tok-1")
        await team.say("alice", "/policy approvals=0")
        await team.say("alice", "/slots acme-x 10:00")
        draft = int((await team.say("alice", f"/draft {ORIGINAL}")).split("#", 1)[1].split(" ", 1)[0].rstrip("."))
        await team.say("alice", f"/submit {draft}")
        assert "published" in await team.say("alice", f"/publish {draft}")
        await team.say("alice", f"/evergreen add {draft} cooldown=10d")
        await team.say("alice", f"/evergreen vary {draft} {OTHER}")
        await team.say("alice", f"/evergreen vary {draft} Three tips for a winter garden")
        notices: list[str] = []
        for _day in range(45):
            team.clock.advance(hours=23)
            captured: list[str] = []
            team.herald.console.captured = captured
            try:
                await fill_evergreen(team.herald.ctx)
            finally:
                team.herald.console.captured = None
            notices += captured
            await team.tick(hours=1)
        assert [t["text"] for t in x.tweets.values()] == [ORIGINAL, OTHER, "Three tips for a winter garden"]
        assert len(x.requests("POST", "/2/tweets")) == 3  # nothing refused, nothing sent twice
        assert [post.state for _run, post in runs(team)] == ["published", "published"]
        assert sum(n.startswith(f"⏭ Evergreen: #{draft} isn't posted again on acme-x") for n in notices) == 1


async def test_a_wording_with_a_short_link_is_the_same_wording_whatever_its_code(db_url: str, clock) -> None:  # type: ignore[no-untyped-def]
    """With short links on, each post's link gets its own code: the wording posted by hand lately must still
    count as the same words (X refuses them), not as a new text because its code differs."""
    herald = make_herald(db_url, clock, HERALD_PUBLIC_URL="https://go.acme.com")
    await herald.start()
    try:
        team = Team(herald, clock, db_url)
        await team.setup_workspace(accounts=("brand-x like=x",))
        await team.say("alice", "/policy approvals=0")
        await team.say("alice", "/slots brand-x 10:00")
        link = " https://shop.acme.com/guide"
        source = await published(team, ORIGINAL + link)
        await team.say("alice", f"/evergreen add {source}")
        await team.say("alice", f"/evergreen vary {source} {OTHER}{link}")
        await team.say("alice", f"/evergreen vary {source} Three tips for a winter garden{link}")
        team.clock.advance(days=5)
        by_hand = await published(team, OTHER + link)  # the team posts the second wording by hand
        assert "https://go.acme.com/r/" in team.deliveries(by_hand)[0].text  # it went out with its short link
        team.clock.advance(days=24, hours=23)
        assert await fill_evergreen(team.herald.ctx) == 1
        [(run, post)] = runs(team)
        assert (run.wording, post.text) == (2, "Three tips for a winter garden" + link)
    finally:
        await herald.stop()


async def test_a_thread_with_a_first_comment_goes_again_whole(team: Team) -> None:
    """A library post that is a thread with a first comment is reposted with every part and the comment, not its
    first part alone; another wording replaces the first part only."""
    await team.setup_workspace()
    await team.say("alice", "/slots brand-bsky 10:00")
    out = await team.say("alice", f"/draft {ORIGINAL}\n---\nStep two: mulch the beds\ncomment=The full guide is on "
                                  "our site to=brand-bsky")
    post_id = int(out.split("#", 1)[1].split(" ", 1)[0].rstrip(".:"))
    await team.say("alice", f"/submit {post_id}")
    await team.say("bob", f"/approve {post_id}")
    await team.say("alice", f"/publish {post_id}")
    assert team.post(post_id).state == "published"
    await team.say("alice", f"/evergreen add {post_id}")
    await team.say("alice", f"/evergreen vary {post_id} {OTHER}")
    for _day in range(61):
        team.clock.advance(hours=23)
        await fill_evergreen(team.herald.ctx)
        await approve_waiting_reposts(team)
        await team.tick(hours=1)
    reposts = [post for _run, post in runs(team)]
    assert [p.text for p in reposts] == [OTHER, ORIGINAL], reposts  # the other wording first, then the original
    assert all(p.parts == ["Step two: mulch the beds"] and p.comment == "The full guide is on our site"
               for p in reposts)
    texts = [p.text for p in team.sandbox_posts()]
    assert texts.count("Step two: mulch the beds") == 3 and texts.count("The full guide is on our site") == 3, texts
