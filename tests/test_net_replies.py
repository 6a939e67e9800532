"""Answering comments (/reply) per network: each connector against its loopback fake (mastodon-mock too),
from a comment read through the connector's own fetch_comments to the request that answers it.

What is checked per network: the documented request (path, body, auth), the id and link Herald keeps,
how a refusal and an answer that never came are classified (REJECTED vs UNKNOWN_OUTCOME), and the
networks where Herald says plainly it can't answer.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from typing import Any

import httpx
import pytest
from mastodon_mock.testing import MockServer
from PIL import Image

from bot.networks.bluesky import BlueskyNetwork, tid_for
from bot.networks.discord_channel import DiscordChannelNetwork
from bot.networks.facebook import FacebookNetwork
from bot.networks.http import new_client
from bot.networks.instagram import InstagramNetwork
from bot.networks.linkedin import LinkedInNetwork
from bot.networks.mastodon import MastodonNetwork
from bot.networks.meta import GRAPH_VERSION, THREADS_VERSION
from bot.networks.pinterest import PinterestNetwork
from bot.networks.telegram_channel import TelegramChannelNetwork
from bot.networks.threads import ThreadsNetwork
from bot.networks.tiktok import TikTokNetwork
from bot.networks.x import XNetwork
from bot.networks.youtube import YouTubeNetwork
from handlers.core.ports import (
    AccountView,
    Comment,
    ErrorKind,
    MediaFile,
    Outgoing,
    PublishError,
    ReplyTarget,
)
from tests.conftest import FakeClock
from tests.fakes import kit
from tests.fakes.bluesky_api import DID, FakeBluesky, _cid
from tests.fakes.linkedin_api import FakeLinkedIn
from tests.fakes.mastodon_api import FakeMastodon
from tests.fakes.meta_graph import (
    IG_TOKEN,
    IG_USER_ID,
    PAGE_ID,
    PAGE_TOKEN,
    THREADS_TOKEN,
    THREADS_USER_ID,
    MetaGraphServer,
)
from tests.fakes.x_api import FakeX
from tests.fakes.youtube_api import FakeYouTube

TEMPLATE = "https://media.example.com/herald/{sha256}{ext}"
ORG = "urn:li:organization:2414183"


def outgoing(text: str = "Spring sale starts today!", key: str = "herald-d7", **kw: Any) -> Outgoing:
    return Outgoing(delivery_id=7, post_id=3, idempotency_key=key, text=text, **kw)


def png() -> MediaFile:
    buf = io.BytesIO()
    Image.new("RGB", (2, 2), (200, 30, 30)).save(buf, format="PNG")
    data = buf.getvalue()
    return MediaFile("a.png", "image/png", data, hashlib.sha256(data).hexdigest())


def target(comment: Comment, key: str = "herald-reply-1-abc") -> ReplyTarget:
    """What /reply hands a connector for a comment the inbox stored (handlers.engagement.replies.Found.target)."""
    return ReplyTarget(comment_id=comment.remote_id, post_id=comment.parent_remote_id, author=comment.author,
                       idempotency_key=key)


# -- X ---------------------------------------------------------------------------------------------------


@pytest.fixture
async def x_server():
    async with FakeX() as srv:
        yield srv


x_net = kit.network_fixture(XNetwork)


def x_account(server: FakeX) -> AccountView:
    return kit.account("x", server.url, settings={"user_id": "2244994945", "username": "brand"},
                       credentials={"access_token": "tok-1"})


async def test_x_answers_a_comment_with_a_post_in_reply_to_it(x_net, x_server, clock):
    acc = x_account(x_server)
    tweet = (await x_net.publish(acc, outgoing())).remote_id
    comment_id = x_server.reply(tweet, "When does it end?", username="ana", author_id="11")
    [comment] = await x_net.fetch_comments(acc, [tweet], None)
    assert (comment.remote_id, comment.author) == (comment_id, "@ana")
    x_server.seen.clear()
    published = await x_net.reply(acc, target(comment), "@ana Sunday night!")
    [sent] = x_server.seen
    assert (sent.method, sent.path, sent.header("authorization")) == ("POST", "/2/tweets", "Bearer tok-1")
    assert sent.json == {"text": "@ana Sunday night!", "reply": {"in_reply_to_tweet_id": comment_id}}
    assert x_server.tweets[published.remote_id]["in_reply_to_tweet_id"] == comment_id
    assert published.url == f"https://x.com/brand/status/{published.remote_id}"


async def test_x_refuses_a_reply_to_a_deleted_comment(x_net, x_server):
    gone = ReplyTarget(comment_id="1790000000000000999", post_id="1", author="@ana")
    with pytest.raises(PublishError) as err:
        await x_net.reply(x_account(x_server), gone, "Thanks!")
    assert err.value.kind == ErrorKind.REJECTED and "deleted or not visible" in err.value.reason
    assert x_server.tweets == {}


async def test_x_reply_whose_answer_was_lost_is_unknown(x_net, x_server):
    acc = x_account(x_server)
    tweet = (await x_net.publish(acc, outgoing())).remote_id
    comment_id = x_server.reply(tweet, "Nice")
    x_server.fail("POST", "/2/tweets", drop=True, after=True)  # X made it, the answer never came
    with pytest.raises(PublishError) as err:
        await x_net.reply(acc, ReplyTarget(comment_id, tweet, "@fan"), "Thank you!")
    assert err.value.kind == ErrorKind.UNKNOWN_OUTCOME
    assert [t["text"] for t in x_server.tweets.values()] == ["Spring sale starts today!", "Thank you!"]


async def test_x_counts_a_reply_as_one_of_its_posts(x_net, x_server):
    """X's 100 posts per 15 minutes cover replies: a spent budget holds a reply back before any request."""
    x_net.publish_limits = ((1, 900.0),)
    acc = x_account(x_server)
    tweet = (await x_net.publish(acc, outgoing())).remote_id
    comment_id = x_server.reply(tweet, "Nice")
    x_server.seen.clear()
    with pytest.raises(PublishError) as err:
        await x_net.reply(acc, ReplyTarget(comment_id, tweet, "@fan"), "Thank you!")
    assert err.value.kind == ErrorKind.RATE_LIMITED and "1 posts per 15 minutes" in err.value.reason
    assert x_server.seen == []


def test_x_checks_a_reply_by_its_weighted_length():
    net = XNetwork(httpx.AsyncClient(), FakeClock())
    acc = kit.account("x", None)
    assert net.check_reply(acc, "a" * 280).ok
    assert net.check_reply(acc, "a" * 281).line() == "✗ X: 281/280 weighted characters — 1 weighted character over " \
                                                     "the limit"


# -- Mastodon --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def masto_mock():
    """mastodon-mock: a stateful Mastodon API (seeded alice/bob/carol) on 127.0.0.1."""
    with MockServer() as server:
        yield server


@pytest.fixture
async def http():
    async with new_client() as client:
        yield client


async def test_mastodon_answers_with_a_status_in_reply_mentioning_the_commenter(masto_mock, http, clock):
    net = MastodonNetwork(http, clock)
    acc = kit.account("mastodon", masto_mock.base_url, credentials={"access_token": "alice_token"})
    acc = kit.account("mastodon", masto_mock.base_url, settings=(await net.verify(acc)).settings,
                      credentials={"access_token": "alice_token"})
    post = (await net.publish(acc, outgoing("Our spring line", key=f"herald-{uuid.uuid4().hex}"))).remote_id
    asked = await http.post(f"{masto_mock.base_url}/api/v1/statuses", headers={"Authorization": "Bearer bob_token"},
                            json={"status": "@alice Is it vegan?", "in_reply_to_id": post})
    [comment] = await net.fetch_comments(acc, [post], None)
    assert (comment.remote_id, comment.author) == (asked.json()["id"], "@bob")
    aim = target(comment, key=f"herald-reply-{uuid.uuid4().hex}")
    text = net.reply_text(acc, aim, "Yes, all of it!")
    assert text == "@bob Yes, all of it!"
    assert net.reply_text(acc, aim, "Thanks @bob, it is.") == "Thanks @bob, it is."  # already mentioned
    assert net.check_reply(acc, text).ok and not net.check_reply(acc, "a" * 501).ok
    published = await net.reply(acc, aim, text)
    again = await net.reply(acc, aim, text)  # the same key: Mastodon hands back the status it made
    assert again.remote_id == published.remote_id
    context = (await http.get(f"{masto_mock.base_url}/api/v1/statuses/{post}/context",
                              headers={"Authorization": "Bearer bob_token"})).json()
    ours = [s for s in context["descendants"] if s["id"] == published.remote_id]
    assert len(ours) == 1 and ours[0]["in_reply_to_id"] == comment.remote_id
    assert [s["id"] for s in context["descendants"]].count(published.remote_id) == 1


@pytest.fixture
async def masto_fake():
    async with FakeMastodon() as srv:
        yield srv


async def test_mastodon_reply_request_and_a_lost_answer(masto_fake, http, clock):
    net = MastodonNetwork(http, clock)
    acc = kit.account("mastodon", masto_fake.url, settings={"account_id": "1"},
                      credentials={"access_token": "masto-token"})
    post = (await net.publish(acc, outgoing())).remote_id
    masto_fake.comment(post, "When?", acct="ana@other.social")
    [comment] = await net.fetch_comments(acc, [post], None)
    aim = target(comment, key="herald-reply-9-aaaa")
    masto_fake.seen.clear()
    masto_fake.fail("POST", "/api/v1/statuses", drop=True, after=True)
    with pytest.raises(PublishError) as err:
        await net.reply(acc, aim, "@ana@other.social Monday")
    assert err.value.kind == ErrorKind.UNKNOWN_OUTCOME and "won't post it twice" in err.value.reason
    [sent] = masto_fake.seen
    assert sent.header("idempotency-key") == "herald-reply-9-aaaa"
    assert sent.json == {"status": "@ana@other.social Monday", "in_reply_to_id": comment.remote_id,
                         "visibility": "public"}
    resent = await net.reply(acc, aim, "@ana@other.social Monday")  # the team sends it again: same key
    made = [s for s in masto_fake.statuses.values() if s.get("in_reply_to_id") == comment.remote_id
            and s["content"] == "@ana@other.social Monday"]
    assert [s["id"] for s in made] == [resent.remote_id]


async def test_mastodon_refuses_a_reply_to_a_deleted_status(masto_fake, http, clock):
    net = MastodonNetwork(http, clock)
    acc = kit.account("mastodon", masto_fake.url, credentials={"access_token": "masto-token"})
    with pytest.raises(PublishError) as err:
        await net.reply(acc, ReplyTarget("404404", "1", "@ana"), "Hi")
    assert err.value.kind == ErrorKind.REJECTED and "Record not found" in err.value.reason


# -- Bluesky ---------------------------------------------------------------------------------------------


@pytest.fixture
async def bsky(clock):
    async with FakeBluesky(clock.now) as srv:
        yield srv


bsky_net = kit.network_fixture(BlueskyNetwork)


async def bsky_account(net: BlueskyNetwork, server: FakeBluesky) -> AccountView:
    base = AccountView(id=1, workspace_id=1, network="bluesky", name="brand", base_url=server.url,
                       settings={"handle": "brand.bsky.social"}, credentials={"app_password": server.password})
    verified = await net.verify(base)
    return AccountView(id=1, workspace_id=1, network="bluesky", name="brand", base_url=server.url,
                       settings={**base.settings, **verified.settings},
                       credentials={**base.credentials, **verified.credentials})


async def test_bluesky_reply_names_its_root_and_parent_by_uri_and_cid(bsky_net, bsky):
    acc = await bsky_account(bsky_net, bsky)
    post = (await bsky_net.publish(acc, outgoing())).remote_id
    top = bsky.reply(post, "Love it", handle="ana.bsky.social", did="did:plc:ana")
    bsky.reply(top, "Same!", handle="ben.bsky.social", did="did:plc:ben")
    comments = {c.text: c for c in await bsky_net.fetch_comments(acc, [post], None)}
    bsky.seen.clear()
    published = await bsky_net.reply(acc, target(comments["Same!"], key="herald-reply-4-x"),
                                     "Thanks Ben! More at https://shop.example #spring")
    created = bsky.requests("POST", "/xrpc/com.atproto.repo.createRecord")[0].json
    assert created["repo"] == DID and created["rkey"] == tid_for("herald-reply-4-x")
    record = created["record"]
    assert record["reply"] == {"root": {"uri": post, "cid": _cid(post)},  # the thread's root: Herald's post
                               "parent": {"uri": comments["Same!"].remote_id, "cid": _cid(comments["Same!"].remote_id)}}
    assert [f["features"][0]["$type"] for f in record["facets"]] == ["app.bsky.richtext.facet#link",
                                                                     "app.bsky.richtext.facet#tag"]
    assert published.remote_id == f"at://{DID}/app.bsky.feed.post/{tid_for('herald-reply-4-x')}"
    assert published.url == f"https://bsky.app/profile/brand.bsky.social/post/{tid_for('herald-reply-4-x')}"


async def test_bluesky_reply_sent_again_finds_the_one_already_made(bsky_net, bsky):
    acc = await bsky_account(bsky_net, bsky)
    post = (await bsky_net.publish(acc, outgoing())).remote_id
    bsky.reply(post, "Love it")
    [comment] = await bsky_net.fetch_comments(acc, [post], None)
    first = await bsky_net.reply(acc, target(comment), "Thank you!")
    again = await bsky_net.reply(acc, target(comment), "Thank you!")  # same key → same rkey: PDS says it exists
    assert again == first and len(bsky.records) == 2  # the post and one reply


async def test_bluesky_reply_to_a_comment_that_is_gone_is_refused(bsky_net, bsky):
    acc = await bsky_account(bsky_net, bsky)
    post = (await bsky_net.publish(acc, outgoing())).remote_id
    with pytest.raises(PublishError) as err:
        await bsky_net.reply(acc, ReplyTarget("at://did:plc:x/app.bsky.feed.post/3lgone", post, "@x"), "Hi")
    assert err.value.kind == ErrorKind.REJECTED and "no longer shows that comment" in err.value.reason
    assert len(bsky.records) == 1


# -- Facebook, Instagram, Threads (one fake Graph server) ---------------------------------------------------


@pytest.fixture
async def graph():
    async with MetaGraphServer() as srv:
        yield srv


fb_net = kit.network_fixture(FacebookNetwork)
ig_net = kit.network_fixture(InstagramNetwork, poll_interval=0.01)
th_net = kit.network_fixture(ThreadsNetwork, poll_interval=0.01)


async def test_facebook_answers_on_the_comment(fb_net, graph, clock):
    acc = kit.account("facebook", graph.url, settings={"page_id": PAGE_ID}, credentials={"token": PAGE_TOKEN})
    post = (await fb_net.publish(acc, outgoing())).remote_id
    graph.add_comment(post, "Do you ship to Belgium?", "Ann", clock.now())
    [comment] = await fb_net.fetch_comments(acc, [post], None)
    graph.seen.clear()
    published = await fb_net.reply(acc, target(comment), "We do, Ann!")
    sent = graph.requests("POST")[0]
    assert sent.path == f"/{GRAPH_VERSION}/{comment.remote_id}/comments" and sent.form == {"message": "We do, Ann!"}
    assert sent.header("authorization") == f"Bearer {PAGE_TOKEN}"
    assert [r["id"] for r in graph.find_comment(comment.remote_id)["replies"]] == [published.remote_id]
    assert published.url == f"https://www.facebook.com/{published.remote_id}"
    assert not fb_net.check_reply(acc, "a" * 8001).ok and fb_net.check_reply(acc, "a" * 8000).ok


async def test_facebook_reply_lost_in_a_server_error_is_unknown(fb_net, graph, clock):
    acc = kit.account("facebook", graph.url, settings={"page_id": PAGE_ID}, credentials={"token": PAGE_TOKEN})
    post = (await fb_net.publish(acc, outgoing())).remote_id
    comment_id = graph.add_comment(post, "Hello?", "Ann", clock.now())
    graph.fail("POST", f"/{GRAPH_VERSION}/{comment_id}/comments", status=500, after=True,
               body={"error": {"message": "An unknown error occurred", "code": 2, "is_transient": True}})
    with pytest.raises(PublishError) as err:
        await fb_net.reply(acc, ReplyTarget(comment_id, post, "Ann"), "Hi Ann")
    assert err.value.kind == ErrorKind.UNKNOWN_OUTCOME
    assert len(graph.find_comment(comment_id)["replies"]) == 1  # it was made: only the team can tell


async def test_instagram_answers_under_the_comment_outside_its_publishing_limit(ig_net, graph, clock):
    ig_net.publish_limits = ((1, 86400.0),)  # the one post of the day is spent below: replies don't count
    acc = kit.account("instagram", graph.url, settings={"ig_user_id": IG_USER_ID, "media_url_template": TEMPLATE},
                      credentials={"token": IG_TOKEN})
    media = (await ig_net.publish(acc, outgoing(media=(png(),)))).remote_id
    graph.add_comment(media, "Which size is she wearing?", "ana", clock.now())
    [comment] = await ig_net.fetch_comments(acc, [media], None)
    graph.seen.clear()
    for text in ("Size S!", "And it runs true to size."):
        await ig_net.reply(acc, target(comment), text)
    sent = graph.requests("POST")
    assert [(s.path, s.form) for s in sent] == [(f"/{GRAPH_VERSION}/{comment.remote_id}/replies", {"message": "Size S!"}),
                                                (f"/{GRAPH_VERSION}/{comment.remote_id}/replies",
                                                 {"message": "And it runs true to size."})]
    assert [r["text"] for r in graph.find_comment(comment.remote_id)["replies"]] == ["Size S!",
                                                                                     "And it runs true to size."]
    assert ig_net.check_reply(acc, "Thanks!").ok  # no image needed for a comment
    assert not ig_net.check_reply(acc, "a" * 2201).ok


async def test_instagram_with_a_facebook_page_token_on_an_instagram_comment_is_refused(ig_net, graph, clock):
    acc = kit.account("instagram", graph.url, settings={"ig_user_id": IG_USER_ID, "media_url_template": TEMPLATE},
                      credentials={"token": IG_TOKEN})
    media = (await ig_net.publish(acc, outgoing(media=(png(),)))).remote_id
    comment_id = graph.add_comment(media, "Hi", "ana", clock.now())
    wrong = kit.account("instagram", graph.url, settings={"ig_user_id": IG_USER_ID}, credentials={"token": PAGE_TOKEN})
    with pytest.raises(PublishError) as err:
        await ig_net.reply(wrong, ReplyTarget(comment_id, media, "@ana"), "Hello")
    assert err.value.kind == ErrorKind.REJECTED and "does not support this operation" in err.value.reason
    assert "replies" not in graph.find_comment(comment_id)


async def test_threads_reply_is_a_container_with_reply_to_id_then_a_publish(th_net, graph, clock):
    th_net.publish_limits = ((1, 86400.0),)  # replies have their own 1,000 a day
    acc = kit.account("threads", graph.url, settings={"user_id": THREADS_USER_ID}, credentials={"token": THREADS_TOKEN})
    post = (await th_net.publish(acc, outgoing())).remote_id
    graph.add_comment(post, "Link?", "ana", clock.now())
    [comment] = await th_net.fetch_comments(acc, [post], None)
    graph.seen.clear()
    published = await th_net.reply(acc, target(comment), "In our bio!")
    create, publish = graph.requests("POST")
    assert create.path == f"/{THREADS_VERSION}/{THREADS_USER_ID}/threads"
    assert create.form == {"media_type": "TEXT", "text": "In our bio!", "reply_to_id": comment.remote_id}
    assert publish.path == f"/{THREADS_VERSION}/{THREADS_USER_ID}/threads_publish"
    container = publish.form["creation_id"]
    assert graph.containers[container]["params"]["reply_to_id"] == comment.remote_id
    assert graph.media[published.remote_id]["text"] == "In our bio!"
    assert published.url == graph.media[published.remote_id]["permalink"]
    assert ThreadsNetwork.reply_limits == ((1000, 86400.0),)


async def test_threads_reply_to_an_unknown_post_is_refused_before_anything_is_published(th_net, graph):
    acc = kit.account("threads", graph.url, settings={"user_id": THREADS_USER_ID}, credentials={"token": THREADS_TOKEN})
    with pytest.raises(PublishError) as err:
        await th_net.reply(acc, ReplyTarget("999", "1", "@ana"), "Hi")
    assert err.value.kind == ErrorKind.REJECTED and "reply_to_id" in err.value.reason
    assert graph.requests("POST", f"/{THREADS_VERSION}/{THREADS_USER_ID}/threads_publish") == []


async def test_threads_reply_still_preparing_is_not_published(th_net, graph, clock):
    th_net.poll_tries = 2
    acc = kit.account("threads", graph.url, settings={"user_id": THREADS_USER_ID}, credentials={"token": THREADS_TOKEN})
    post = (await th_net.publish(acc, outgoing())).remote_id
    comment_id = graph.add_comment(post, "?", "ana", clock.now())
    graph.container_statuses = ["IN_PROGRESS"]
    graph.seen.clear()
    with pytest.raises(PublishError) as err:
        await th_net.reply(acc, ReplyTarget(comment_id, post, "@ana"), "Soon")
    assert err.value.kind == ErrorKind.TRANSIENT and "nothing was posted" in err.value.reason
    assert graph.requests("POST", f"/{THREADS_VERSION}/{THREADS_USER_ID}/threads_publish") == []


# -- YouTube ---------------------------------------------------------------------------------------------


@pytest.fixture
async def yt():
    async with FakeYouTube() as srv:
        yield srv


yt_net = kit.network_fixture(YouTubeNetwork)


def yt_account(server: FakeYouTube) -> AccountView:
    return kit.account("youtube", server.url, settings={"made_for_kids": "no"},
                       credentials={"access_token": "ya29.token"})


async def test_youtube_answers_a_top_level_comment(yt_net, yt):
    yt.threads["vid1"] = [{"id": "t1", "snippet": {"videoId": "vid1", "topLevelComment": {"id": "c1", "snippet": {
        "authorDisplayName": "Ben", "textOriginal": "Song name?", "publishedAt": "2026-11-23T10:00:00Z"}}}}]
    [comment] = await yt_net.fetch_comments(yt_account(yt), ["vid1"], None)
    yt.seen.clear()
    published = await yt_net.reply(yt_account(yt), target(comment), "It's <Spring> by Acme Band")
    [sent] = yt.seen
    assert (sent.method, sent.path, sent.query) == ("POST", "/youtube/v3/comments", {"part": "snippet"})
    assert sent.json == {"snippet": {"parentId": "c1", "textOriginal": "It's <Spring> by Acme Band"}}
    assert sent.header("authorization") == "Bearer ya29.token"
    assert published.remote_id == "c1.r1" and published.url == "https://www.youtube.com/watch?v=vid1&lc=c1.r1"
    assert [r["snippet"]["textOriginal"] for r in yt.replies["c1"]] == ["It's <Spring> by Acme Band"]


async def test_youtube_checks_a_comment_in_characters_without_a_video(yt_net, yt):
    acc = yt_account(yt)
    assert yt_net.check_reply(acc, "é" * 10000).line() == "✓ YouTube: 10000/10000 characters"
    assert yt_net.check_reply(acc, "a" * 10001).problems == ("1 characters over the limit",)
    assert yt_net.check_reply(acc, "  ").problems == ("the text is empty",)


async def test_youtube_reply_to_a_missing_comment_is_refused(yt_net, yt):
    with pytest.raises(PublishError) as err:
        await yt_net.reply(yt_account(yt), ReplyTarget("nope", "vid1", "Ben"), "Hi")
    assert err.value.kind == ErrorKind.REJECTED and "could not be found" in err.value.reason


# -- LinkedIn --------------------------------------------------------------------------------------------


@pytest.fixture
async def li():
    async with FakeLinkedIn() as srv:
        yield srv


li_net = kit.network_fixture(LinkedInNetwork)


async def test_linkedin_answers_with_a_nested_comment_as_the_page(li_net, li, clock):
    acc = kit.account("linkedin", li.url, settings={"author": ORG}, credentials={"access_token": "li-token"})
    post = (await li_net.publish(acc, outgoing())).remote_id
    li.comments[post] = [{"$URN": f"urn:li:comment:({post},1)", "actor": "urn:li:person:x1",
                          "message": {"text": "Hiring?"}, "created": {"time": int(clock.now().timestamp() * 1000)}}]
    [comment] = await li_net.fetch_comments(acc, [post], None)
    li.seen.clear()
    published = await li_net.reply(acc, target(comment), "Yes: careers.acme.test (we're #hiring)")
    [sent] = li.seen
    assert sent.method == "POST" and sent.path == f"/rest/socialActions/{comment.remote_id}/comments"
    assert sent.json == {"actor": ORG, "object": post, "parentComment": comment.remote_id,
                         "message": {"text": "Yes: careers.acme.test (we're #hiring)"}}
    assert sent.header("linkedin-version") and sent.header("x-restli-protocol-version") == "2.0.0"
    assert published.remote_id == li.comment_replies[comment.remote_id][0]["$URN"]
    assert published.url == f"https://www.linkedin.com/feed/update/{post}/"
    assert not li_net.check_reply(acc, "a" * 1251).ok


async def test_linkedin_reply_to_a_comment_that_is_gone_is_refused(li_net, li):
    acc = kit.account("linkedin", li.url, settings={"author": ORG}, credentials={"access_token": "li-token"})
    post = (await li_net.publish(acc, outgoing())).remote_id
    ghost = f"urn:li:comment:({post},42)"
    with pytest.raises(PublishError) as err:
        await li_net.reply(acc, ReplyTarget(ghost, post, "x"), "Hi")
    assert err.value.kind == ErrorKind.REJECTED and "not found" in err.value.reason
    assert li.requests("POST", f"/rest/socialActions/{ghost}/comments")  # asked, and LinkedIn said no


# -- where Herald can't answer -----------------------------------------------------------------------------


@pytest.mark.parametrize(("cls", "words"), [
    (TikTokNetwork, "TikTok's API doesn't let apps like Herald read or answer comments"),
    (PinterestNetwork, "Pinterest's API has no way to answer comments on a Pin"),
    (TelegramChannelNetwork, "comments on a Telegram channel live in its discussion group"),
    (DiscordChannelNetwork, "Herald doesn't answer replies in a Discord channel"),
])
async def test_networks_without_replies_say_so_and_send_nothing(cls, words, clock):
    requests: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        requests.append(request)

    async with httpx.AsyncClient(event_hooks={"request": [record]}) as client:
        net = cls(client, clock)
        acc = kit.account(net.key, "http://127.0.0.1:9")
        assert words in (net.reply_refusal(acc) or "")
        with pytest.raises(PublishError) as err:
            await net.reply(acc, ReplyTarget("c1", "p1", "@ana"), "Thanks!")
    assert err.value.kind == ErrorKind.REJECTED and words in err.value.reason
    assert requests == []


@pytest.mark.parametrize("cls", [XNetwork, MastodonNetwork, BlueskyNetwork, FacebookNetwork, InstagramNetwork,
                                 ThreadsNetwork, YouTubeNetwork, LinkedInNetwork])
def test_networks_with_replies_say_none(cls):
    net = cls(httpx.AsyncClient(), FakeClock())
    assert net.reply_refusal(kit.account(net.key, None)) is None
