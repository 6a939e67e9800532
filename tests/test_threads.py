"""Threads and first comments through the console chat against the loopback fakes: a 5-part thread drafted with
`---` goes out natively on X, Bluesky and Mastodon (each part a reply to the one before, each remote id stored) and
joined on LinkedIn; /thread adds, edits and removes parts; first comments land under the post on Instagram and
LinkedIn with their own line in the report; an unconfirmed part stops the rest and the team is told; crisis mode
holds a part that waits for a retry; an edit of a part voids approvals; bad input is refused with nothing changed.
"""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from mastodon_mock.testing import MockServer
from sqlmodel import col, select

from handlers.core.chat import Command, MediaIn
from storage.models import Account, Delivery, FollowUp
from tests.conftest import Team, refused
from tests.crash_kit import BSKY_PASSWORD, PNG
from tests.fakes.bluesky_api import FakeBluesky
from tests.fakes.linkedin_api import FakeLinkedIn
from tests.fakes.mastodon_api import FakeMastodon
from tests.fakes.meta_graph import IG_TOKEN, PAGE_ID, PAGE_TOKEN, THREADS_TOKEN, MetaGraphServer
from tests.fakes.pinterest_api import FakePinterest
from tests.fakes.videos import tiny_video
from tests.fakes.x_api import FakeX
from tests.fakes.youtube_api import FakeYouTube
from tests.test_every_network import PIN_BOARD

PARTS = ["1/ Spring sale starts today", "2/ Everything is 20% off", "3/ Free shipping over 50 €",
         "4/ Ends Sunday midnight", "5/ Questions? Ask away"]
THREAD = "\n---\n".join(PARTS)
LI_ORG = "urn:li:organization:2414183"


class FlakyX(FakeX):
    """FakeX whose replies (thread parts) can be refused, or whose answer to one text can be lost."""

    def __init__(self, clock: Any) -> None:
        super().__init__()
        self.now = clock
        self.refuse_replies = 0  # how many coming replies are refused with a 429 (not sent)
        self.lose: str | None = None  # a text whose answer is lost (a 503) ...
        self.made = True  # ... after it was posted (True) or before (False)
        self.refuse: str | None = None  # a text X refuses (400)

    async def create(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("reply") and self.refuse_replies:
            self.refuse_replies -= 1
            return web.json_response({"title": "Too Many Requests"}, status=429, headers={"retry-after": "60"})
        if body.get("text") == self.refuse:
            return web.json_response({"title": "Invalid Request", "detail": "The text is not allowed"}, status=400)
        if body.get("text") == self.lose:
            if self.made:
                await super().create(request)
            return web.json_response({"title": "Service Unavailable"}, status=503)
        return await super().create(request)


@pytest.fixture
async def nets(team: Team) -> AsyncIterator[dict[str, Any]]:
    async with AsyncExitStack() as stack:
        found = {
            "x": await stack.enter_async_context(FlakyX(team.clock.now)),
            "bluesky": await stack.enter_async_context(FakeBluesky(team.clock.now, password=BSKY_PASSWORD)),
            "mastodon": await stack.enter_async_context(FakeMastodon()),
            "linkedin": await stack.enter_async_context(FakeLinkedIn()),
            "meta": await stack.enter_async_context(MetaGraphServer()),
            "youtube": await stack.enter_async_context(FakeYouTube()),
        }
        yield found


def connect_lines(nets: dict[str, Any]) -> dict[str, str]:
    return {
        "acme-x": f"/connect x name=acme-x base_url={nets['x'].url} access_token=tok-1",
        "acme-bsky": f"/connect bluesky name=acme-bsky base_url={nets['bluesky'].url} handle=brand.bsky.social "
                     f"app_password={BSKY_PASSWORD}",
        "acme-masto": f"/connect mastodon name=acme-masto base_url={nets['mastodon'].url} access_token=masto-token",
        "acme-li": f"/connect linkedin name=acme-li base_url={nets['linkedin'].url} access_token=li-token "
                   f"author={LI_ORG}",
        "acme-ig": f"/connect instagram name=acme-ig base_url={nets['meta'].url} token={IG_TOKEN} "
                   "media_url_template=https://media.example.test/{sha256}.jpg",
        "acme-threads": f"/connect threads name=acme-threads base_url={nets['meta'].url} token={THREADS_TOKEN} "
                        "media_url_template=https://media.example.test/{sha256}.jpg",
        "acme-yt": f"/connect youtube name=acme-yt base_url={nets['youtube'].url} access_token=ya29.token "
                   "made_for_kids=no",
        "acme-fb": f"/connect facebook name=acme-fb base_url={nets['meta'].url} token={PAGE_TOKEN} page_id={PAGE_ID}",
    }


async def workspace(team: Team, nets: dict[str, Any], *names: str) -> None:
    await team.setup_workspace(accounts=())
    lines = connect_lines(nets)
    for name in names:
        out = await team.say("alice", lines[name])
        assert "✋" not in out, out


def number_of(out: str) -> int:
    assert out.startswith("Draft #"), out
    return int(out.split("#", 1)[1].split(" ", 1)[0].rstrip("."))


async def approve(team: Team, post_id: int) -> None:
    out = await team.say("alice", f"/submit {post_id}")
    assert "✋" not in out, out
    out = await team.say("bob", f"/approve {post_id}")
    assert "✋" not in out, out


def steps(team: Team, post_id: int) -> dict[str, list[FollowUp]]:
    """Per account name, its steps in order."""
    with team.herald.db.session() as session:
        out: dict[str, list[FollowUp]] = {}
        for delivery in session.exec(select(Delivery).where(Delivery.post_id == post_id)).all():
            account = session.get(Account, delivery.account_id)
            assert account is not None
            rows = session.exec(select(FollowUp).where(FollowUp.delivery_id == delivery.id)
                                .order_by(col(FollowUp.kind).desc(), col(FollowUp.number))).all()
            out[account.name] = list(rows)
        return out


def x_chain(x: FakeX) -> list[str]:
    """The texts of X's thread, following each part's in_reply_to_tweet_id from the first."""
    tweets = list(x.tweets.values())
    first = next(t for t in tweets if not t.get("in_reply_to_tweet_id"))
    chain = [first]
    while nxt := [t for t in tweets if t.get("in_reply_to_tweet_id") == chain[-1]["id"]]:
        assert len(nxt) == 1, nxt
        chain.append(nxt[0])
    return [t["text"] for t in chain]


def mastodon_chain(masto: FakeMastodon) -> list[str]:
    statuses = list(masto.statuses.values())
    chain = [next(s for s in statuses if not s.get("in_reply_to_id"))]
    while nxt := [s for s in statuses if s.get("in_reply_to_id") == chain[-1]["id"]]:
        assert len(nxt) == 1, nxt
        chain.append(nxt[0])
    return [s["content"] for s in chain]


def bluesky_chain(bsky: FakeBluesky) -> list[str]:
    records = dict(bsky.records)
    first = next(uri for uri, r in records.items() if not r.get("reply"))
    chain = [first]
    while nxt := [uri for uri, r in records.items() if (r.get("reply") or {}).get("parent", {}).get("uri") == chain[-1]]:
        assert len(nxt) == 1, nxt
        assert records[nxt[0]]["reply"]["root"]["uri"] == first
        chain.append(nxt[0])
    return [records[uri]["text"] for uri in chain]


async def test_a_five_part_thread_goes_out_natively_on_x_bluesky_and_mastodon_and_joined_on_linkedin(
        team: Team, nets: dict[str, Any]) -> None:
    await workspace(team, nets, "acme-x", "acme-bsky", "acme-masto", "acme-li")
    out = await team.say("alice", f"/draft {THREAD}")
    post = number_of(out)
    # the card: every part, and each part's own check on each network
    assert "── part 5 of 5 ──\n│ 5/ Questions? Ask away" in out, out
    assert "  acme-x: ✓ X: " in out and "    part 4: ✓ X: 23/280 weighted characters" in out, out
    assert "    thread: a thread of 5 parts, each a reply to the one before" in out
    assert "    thread: the 5 parts joined into one post (LinkedIn has no threads)" in out, out
    out = await team.say("alice", f"/thread {post}")
    assert out.startswith(f"Thread of #{post}: 5 part(s).") and "acme-li: the 5 parts joined" in out, out
    out = await team.say("alice", f"/preview {post}")
    assert "  ↳ part 3:\n  │ 3/ Free shipping over 50 €" in out, out
    await approve(team, post)

    out = await team.say("alice", f"/publish {post}")
    assert f"📣 #{post} is published on all 4 account(s)" in out, out
    assert "    ↳ Part 5: " in out, out
    assert x_chain(nets["x"]) == PARTS
    assert bluesky_chain(nets["bluesky"]) == PARTS
    assert mastodon_chain(nets["mastodon"]) == PARTS
    assert [p["commentary"] for p in nets["linkedin"].posts.values()] == ["\n\n".join(PARTS)]
    done = steps(team, post)
    assert set(done) == {"acme-x", "acme-bsky", "acme-masto", "acme-li"} and done["acme-li"] == []
    for name in ("acme-x", "acme-bsky", "acme-masto"):
        assert [(s.number, s.state, bool(s.remote_id)) for s in done[name]] == [(n, "sent", True) for n in range(2, 6)]
    # the clock finds nothing left to send: each part went once
    await team.tick(minutes=5)
    assert len(nets["x"].tweets) == 5 and len(nets["mastodon"].statuses) == 5 and len(nets["bluesky"].records) == 5


async def test_thread_parts_are_added_edited_and_removed_and_each_change_voids_approvals(
        team: Team, nets: dict[str, Any]) -> None:
    await workspace(team, nets, "acme-x")
    post = number_of(await team.say("alice", "/draft One"))
    out = await team.say("alice", f"/thread {post} add Two")
    assert f"#{post}: part 2 added (2 part(s))." in out, out
    out = await team.say("alice", f"/thread {post} add Three\n---\nFour")
    assert f"#{post}: parts 3–4 added (4 part(s))." in out, out
    await approve(team, post)
    assert team.post(post).state == "approved"
    out = await team.say("alice", f"/thread {post} edit 2 Two, better")
    assert "It was approved; it's back in review." in out and "The 1 earlier approval(s) no longer count." in out, out
    out = await team.say("alice", f"/thread {post} remove 3")
    assert f"#{post}: part 3 removed (3 part(s))." in out, out
    assert (team.post(post).text, team.post(post).parts) == ("One", ["Two, better", "Four"])
    # /edit without --- changes the first part only; with --- it replaces the whole thread
    await team.say("alice", f"/edit {post} Uno")
    assert (team.post(post).text, team.post(post).parts) == ("Uno", ["Two, better", "Four"])
    await team.say("alice", f"/edit {post} A\n---\nB")
    assert (team.post(post).text, team.post(post).parts) == ("A", ["B"])


async def test_first_comments_land_under_the_post_on_instagram_and_linkedin(team: Team, nets: dict[str, Any]) -> None:
    await workspace(team, nets, "acme-ig", "acme-li")
    out = await team.say("alice", "/draft New collection is here 🌸\ncomment=Shop it: link in bio 👆")
    post = number_of(out)
    assert "💬 First comment:\n│ Shop it: link in bio 👆" in out, out
    assert "    comment: posted as the first comment right after the post" in out, out
    console = team.herald.console
    console.user = "alice"
    reply = await team.herald.handle(Command("attach", console.actor(), console.chat, text=str(post),
                                             media=(MediaIn("look.png", "image/png", PNG),)))
    assert "✗" not in reply.text, reply.text
    await approve(team, post)
    out = await team.say("alice", f"/publish {post}")
    assert f"📣 #{post} is published on all 2 account(s)" in out, out
    assert out.count("    ↳ The first comment: ") == 2, out
    media = [m for m in nets["meta"].media.values() if m["network"] == "ig"]
    assert len(media) == 1 and [(c["text"], c["author"]) for c in media[0]["comments"]] == [
        ("Shop it: link in bio 👆", "brand")]
    (li_post,) = nets["linkedin"].posts
    comments = nets["linkedin"].comment_replies[li_post]
    assert [(c["message"]["text"], c["actor"], "parentComment" in c) for c in comments] == [
        ("Shop it: link in bio 👆", LI_ORG, False)]
    done = steps(team, post)
    assert [(s.kind, s.state) for s in done["acme-ig"]] == [("comment", "sent")] == [
        (s.kind, s.state) for s in done["acme-li"]]


async def test_a_comment_goes_as_a_reply_on_x_only_when_asked(team: Team, nets: dict[str, Any]) -> None:
    await workspace(team, nets, "acme-x", "acme-li")
    post = number_of(await team.say("alice", "/draft Launch day\ncomment=Details on our blog"))
    out = await team.say("alice", f"/preview {post}")
    assert "  Comment: not posted on X: /comment " in out, out
    out = await team.say("alice", f"/comment {post} replies on")
    assert "first comment also as a reply" in out, out
    await approve(team, post)
    out = await team.say("alice", f"/publish {post}")
    assert out.count("↳ The first comment:") == 2, out
    assert x_chain(nets["x"]) == ["Launch day", "Details on our blog"]


async def test_a_part_whose_answer_was_lost_is_found_on_the_network_and_the_thread_goes_on(
        team: Team, nets: dict[str, Any]) -> None:
    await workspace(team, nets, "acme-x")
    post = number_of(await team.say("alice", f"/draft {THREAD}"))
    await approve(team, post)
    x: FlakyX = nets["x"]
    x.lose = PARTS[2]  # part 3 is made, but its answer is lost: X's own posts show it
    out = await team.say("alice", f"/publish {post}")
    assert f"📣 #{post} is published on 1 account(s)" in out and "    ↳ Part 5: " in out, out
    assert x_chain(x) == PARTS and len(x.tweets) == 5
    assert [s.state for s in steps(team, post)["acme-x"]] == ["sent"] * 4


async def test_an_unconfirmed_part_stops_the_rest_and_the_team_is_told(team: Team, nets: dict[str, Any]) -> None:
    await workspace(team, nets, "acme-x")
    post = number_of(await team.say("alice", f"/draft {THREAD}"))
    await approve(team, post)
    x: FlakyX = nets["x"]
    x.lose, x.made = PARTS[2], False  # part 3's answer is lost and X doesn't show it (yet): can't tell
    out = await team.say("alice", f"/publish {post}")
    # X can't tell yet (a lost create may still land for a few minutes): part 3 unconfirmed, 4 and 5 not sent
    assert "    ? Part 3: unconfirmed" in out and "Herald sends neither it nor what follows" in out, out
    assert "    ✗ Part 4: not sent: part 3 is unconfirmed" in out, out
    assert [t["text"] for t in x.tweets.values()] == PARTS[:2]
    assert [s.state for s in steps(team, post)["acme-x"]] == ["sent", "unconfirmed", "failed", "failed"]
    assert f"⚠️ #{post} is published on 1 account(s), but 3 thread part(s) or comment(s) didn't go out:" in out, out
    assert f"check acme-x: if it isn't there, /retry {post} acme-x sends it and the rest" in out, out
    assert team.post(post).state == "partially_published"
    await team.tick(minutes=30)
    assert len(x.tweets) == 2  # never sent blindly
    # the team checked: part 3 isn't there. /retry with the account sends it and the rest, in order
    await refused(team, "alice", f"/retry {post}", "no failed deliveries")
    x.lose = None
    out = await team.say("alice", f"/retry {post} acme-x")
    assert f"📣 #{post} is published on 1 account(s)" in out and "    ↳ Part 5: " in out, out
    assert x_chain(x) == PARTS and len(x.tweets) == 5


async def test_crisis_mode_holds_a_part_waiting_for_its_retry(team: Team, nets: dict[str, Any]) -> None:
    await workspace(team, nets, "acme-x")
    post = number_of(await team.say("alice", "/draft First\n---\nSecond\ncomment=Third"))
    await team.say("alice", f"/comment {post} replies on")
    await approve(team, post)
    nets["x"].refuse_replies = 1
    out = await team.say("alice", f"/publish {post}")
    assert "📣" not in out  # not settled: part 2 waits for X's minute
    assert [t["text"] for t in nets["x"].tweets.values()] == ["First"]
    out = await team.say("alice", "/crisis start Outage")
    assert "🚨 Crisis mode is on." in out, out
    await team.tick(minutes=5)
    assert [t["text"] for t in nets["x"].tweets.values()] == ["First"]  # held: approved before the crisis
    out = await team.say("alice", "/crisis")
    assert f"Thread parts and first comments held after their post: #{post} (2 on acme-x)" in out, out
    await team.say("alice", "/crisis end")
    out = await team.tick(minutes=1)
    by_text = {t["text"]: t for t in nets["x"].tweets.values()}
    assert sorted(by_text) == ["First", "Second", "Third"], out  # each once
    # part 2 replies to the post; the comment too (a reply to the post, not another part)
    assert by_text["Second"]["in_reply_to_tweet_id"] == by_text["First"]["id"] == by_text["Third"]["in_reply_to_tweet_id"]
    assert [s.state for s in steps(team, post)["acme-x"]] == ["sent", "sent"]


async def test_bad_thread_and_comment_input_is_refused_and_changes_nothing(team: Team, nets: dict[str, Any]) -> None:
    await workspace(team, nets, "acme-x", "acme-li")
    async with FakePinterest() as pinterest:  # a network with no comments of its own and no threads
        out = await team.say("alice", f"/connect pinterest name=acme-pin base_url={pinterest.url} "
                                      f"access_token=pina-token board_id={PIN_BOARD}")
        assert "Connected acme-pin" in out, out
        await refused(team, "alice", "/draft One\n---\n---\nThree to=acme-x", "Part 2 of the thread is empty",
                      "Nothing was saved")
        await refused(team, "alice", "/draft One\n---\n" + "x" * 300 + " to=acme-x", "acme-x part 2: ✗ X: 300/280",
                      "Nothing changed")
        await refused(team, "alice", "/draft Hi\ncomment=", "comment= needs the comment's text")
        await refused(team, "alice", "/draft Hi\ncomment=Look to=acme-pin", "acme-pin (Pinterest) can't take a "
                      "first comment", "Nothing changed")
        post = number_of(await team.say("alice", "/draft One to=acme-x,acme-li"))
        await refused(team, "alice", f"/thread {post} add " + "y" * 281, "acme-x part 2: ✗ X: 281/280")
        await refused(team, "alice", f"/thread {post} add", "What should the new part say?")
        await refused(team, "alice", f"/thread {post} remove 4", f"#{post} has 1 part(s); name one of 1–1")
        await refused(team, "alice", f"/thread {post} remove 1", "only one part")
        await refused(team, "alice", f"/thread {post} edit 1", "Part 1 can't be empty")
        await refused(team, "alice", f"/comment {post} off", "has no first comment")
        await refused(team, "alice", f"/comment {post} " + "z" * 1300, "acme-li first comment: ✗")
        sandboxed = number_of(await team.say("alice", "/draft Pins only to=acme-pin"))
        await refused(team, "alice", f"/comment {sandboxed} Hello", "can't take a first comment")


async def test_a_network_without_threads_gets_only_the_first_part_when_the_parts_joined_dont_fit(
        team: Team, nets: dict[str, Any]) -> None:
    await workspace(team, nets, "acme-li")
    parts = ["A" * 1200, "B" * 1200, "C" * 1200]
    out = await team.say("alice", "/draft " + "\n---\n".join(parts))
    post = number_of(out)
    assert "    thread: only the first part: LinkedIn has no threads and the 3 parts joined don't fit its limit" in out
    await approve(team, post)
    out = await team.say("alice", f"/publish {post}")
    assert f"📣 #{post} is published" in out and "Part 2" not in out, out
    assert [p["commentary"] for p in nets["linkedin"].posts.values()] == [parts[0]]


async def test_a_five_part_thread_on_mastodon_mock(team: Team) -> None:
    """The same thread against mastodon-mock's stateful Mastodon API: its context lists the parts in order."""
    with MockServer() as mock:
        await team.setup_workspace(accounts=())
        out = await team.say("alice", f"/connect mastodon name=acme-masto base_url={mock.base_url} "
                                      "access_token=alice_token")
        assert out.startswith("Connected acme-masto"), out
        post = number_of(await team.say("alice", f"/draft {THREAD}"))
        await approve(team, post)
        out = await team.say("alice", f"/publish {post}")
        assert f"📣 #{post} is published" in out and "    ↳ Part 5: " in out, out
        (first,) = team.deliveries(post)
        chain = steps(team, post)["acme-masto"]
        async with httpx.AsyncClient() as http:
            context = (await http.get(f"{mock.base_url}/api/v1/statuses/{first.remote_id}/context",
                                      headers={"Authorization": "Bearer alice_token"})).json()
        replies = {s["id"]: s for s in context["descendants"]}
        parent = first.remote_id
        for step, text in zip(chain, PARTS[1:], strict=True):
            status = replies[step.remote_id or ""]
            assert status["in_reply_to_id"] == parent and text in status["content"], status
            parent = step.remote_id
        assert len(replies) == 4


async def test_a_refused_part_stops_the_rest_and_retry_sends_them_in_order(team: Team, nets: dict[str, Any]) -> None:
    await workspace(team, nets, "acme-x")
    post = number_of(await team.say("alice", f"/draft {THREAD}"))
    await approve(team, post)
    x: FlakyX = nets["x"]
    x.refuse = PARTS[1]
    out = await team.say("alice", f"/publish {post}")
    assert f"    ✗ Part 2: X refused it: The text is not allowed → /retry {post} acme-x sends it and the rest" in out, out
    assert "    ✗ Part 5: not sent: part 2 failed" in out, out
    assert [t["text"] for t in x.tweets.values()] == PARTS[:1]
    x.refuse = None
    out = await team.say("alice", f"/retry {post}")
    assert f"📣 #{post} is published on 1 account(s)" in out, out
    assert x_chain(x) == PARTS
    assert [s.attempts for s in steps(team, post)["acme-x"]] == [1, 1, 1, 1]


async def test_a_post_confirmed_live_by_hand_gets_its_parts_after_it(team: Team, nets: dict[str, Any]) -> None:
    await workspace(team, nets, "acme-x")
    post = number_of(await team.say("alice", "/draft First\n---\nSecond\n---\nThird"))
    await approve(team, post)
    x: FlakyX = nets["x"]
    x.lose, x.made = "First", False  # the post's answer is lost and X can't tell: unconfirmed
    out = await team.say("alice", f"/publish {post}")
    assert "? acme-x (x): unconfirmed" in out and not steps(team, post)["acme-x"], out
    # it landed after all (a create still on its way); the team finds it, first without its link
    x.lose = None
    x.tweets["1777"] = {"id": "1777", "text": "First", "created_at": "2026-11-23T09:00:00.000Z"}
    out = await team.say("alice", f"/confirm {post} acme-x")
    assert f"    ✗ Part 2: Herald doesn't know the post's id on acme-x: /confirm {post} acme-x <link> adds it" in out, out
    assert len(x.tweets) == 1
    out = await team.say("alice", f"/confirm {post} acme-x https://x.com/brand/status/1777")
    assert f"📣 #{post} is published on 1 account(s)" in out and "    ↳ Part 3: " in out, out
    assert x_chain(x) == ["First", "Second", "Third"]


async def test_a_thread_on_threads_and_a_first_comment_on_facebook(team: Team, nets: dict[str, Any]) -> None:
    await workspace(team, nets, "acme-threads", "acme-fb")
    post = number_of(await team.say("alice", "/draft First\n---\nSecond\n---\nThird\ncomment=See the full range"))
    await team.say("alice", f"/comment {post} replies on")
    await approve(team, post)
    out = await team.say("alice", f"/publish {post}")
    assert f"📣 #{post} is published on all 2 account(s)" in out, out
    meta: MetaGraphServer = nets["meta"]
    threads = {m["id"]: m for m in meta.media.values() if m["network"] == "threads"}
    root = next(m for m in threads.values() if not m["params"].get("reply_to_id"))
    replies = {m["text"]: m["params"]["reply_to_id"] for m in threads.values() if m["params"].get("reply_to_id")}
    second = next(i for i, m in threads.items() if m["text"] == "Second")
    assert root["text"] == "First" and replies == {"Second": root["id"], "Third": second,
                                                   "See the full range": root["id"]}
    (page_post,) = meta.posts.values()
    assert page_post["message"] == "First\n\nSecond\n\nThird"
    assert [(c["text"], c["author"]) for c in page_post["comments"]] == [("See the full range", "Brand Page")]


async def test_a_first_comment_on_youtube(team: Team, nets: dict[str, Any]) -> None:
    await workspace(team, nets, "acme-yt")
    post = number_of(await team.say("alice", "/draft Spring teaser\ncomment=Which colour is your favourite?"))
    console = team.herald.console
    console.user = "alice"
    reply = await team.herald.handle(Command("attach", console.actor(), console.chat, text=str(post),
                                             media=(MediaIn("teaser.mp4", "video/mp4", tiny_video()),)))
    assert "✗" not in reply.text, reply.text
    await approve(team, post)
    out = await team.say("alice", f"/publish {post}")
    assert f"📣 #{post} is published on 1 account(s)" in out and "    ↳ The first comment: https://www.youtube.com/" in out, out
    (video_id,) = nets["youtube"].videos
    (thread,) = nets["youtube"].threads[video_id]
    assert thread["snippet"]["topLevelComment"]["snippet"]["textOriginal"] == "Which colour is your favourite?"


async def test_an_imported_plan_row_can_be_a_thread(team: Team, nets: dict[str, Any], tmp_path: Path) -> None:
    await workspace(team, nets, "acme-x")
    rows = [["One\n---\nTwo", "acme-x"], ["Empty\n---\n---\npart", "acme-x"], ["Fine\n---\n" + "z" * 300, "acme-x"]]
    path = tmp_path / "plan.csv"
    with path.open("w", newline="", encoding="utf-8") as out_file:
        csv.writer(out_file).writerows([["text", "accounts"], *rows])
    out = await team.say("alice", f"/import {path}")
    assert "Part 2 of the thread is empty" in out, out
    assert "for acme-x, part 2: ✗ X: 300/280 weighted characters" in out, out
    out = await team.say("alice", "/import confirm")
    assert "1 post" in out, out
    (post,) = [team.post(1)]
    assert (post.text, post.parts) == ("One", ["Two"])


async def test_the_sandbox_takes_a_thread_and_a_first_comment_so_a_team_can_try_them(team: Team) -> None:
    """A new team tries threads before connecting a network: each part and the comment stored once."""
    from storage.models import SandboxPost

    await team.setup_workspace(accounts=("brand-x like=x",))
    post = int((await team.say("alice", "/draft Big news today")).split("#", 1)[1].split(" ", 1)[0])
    await team.say("alice", f"/thread {post} add Part two: the details")
    await team.say("alice", f"/comment {post} Questions? Ask below")
    out = await team.say("alice", f"/submit {post}")
    assert "thread: a thread of 2 parts, each a reply to the one before" in out, out
    assert "comment: posted as the first comment right after the post" in out, out
    await team.say("bob", f"/approve {post}")
    out = await team.say("alice", f"/publish {post}")
    assert "  ✓ brand-x (sandbox): https://sandbox.herald.invalid/brand-x/1" in out, out
    assert "    ↳ Part 2: https://sandbox.herald.invalid/brand-x/1#2" in out, out
    assert "    ↳ The first comment: https://sandbox.herald.invalid/brand-x/1#3" in out, out
    await team.tick(minutes=1)  # a sweep after it changes nothing: each step went out once
    with team.herald.db.session() as session:
        texts = [row.text for row in session.exec(select(SandboxPost).order_by(col(SandboxPost.id))).all()]
    assert texts == ["Big news today", "Part two: the details", "Questions? Ask below"]
