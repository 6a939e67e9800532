"""One post to every connected network at once, with a partial failure per network, shown in the chat.

The networks issue asks for it: "A test publishes one post to every connected network at once and shows a
partial failure per network in the chat." Everything goes through the console chat as a team types it, against
every network's fake on 127.0.0.1 (real HTTP, no internet), on Herald's FakeClock.

YouTube gets its own post (#2, a video) published in the same round: a YouTube post is a video upload and
nothing else, while the shared post carries an image, which Instagram, Pinterest and TikTok need and which
YouTube refuses ("YouTube needs exactly one video (and no images)"). Sending the image post to YouTube would
only test that refusal, not the YouTube connector.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from PIL import Image
from sqlmodel import select

from handlers.core.chat import Command, MediaIn
from handlers.engagement.metrics import poll_metrics
from storage.models import Account, Delivery
from tests.conftest import START, FakeClock, Team
from tests.fakes.bluesky_api import FakeBluesky
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.linkedin_api import FakeLinkedIn
from tests.fakes.loopback import Seen
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
from tests.fakes.pinterest_api import FakePinterest
from tests.fakes.telegram_api import TOKEN as TELEGRAM_TOKEN
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.tiktok_api import FakeTikTok
from tests.fakes.videos import tiny_video
from tests.fakes.x_api import FakeX
from tests.fakes.youtube_api import FakeYouTube

DISCORD_TOKEN = "bot-token"
BSKY_PASSWORD = "abcd-efgh-ijkl-mnop"
BSKY_NEW_PASSWORD = "wxyz-wxyz-wxyz-wxyz"
LI_ORG = "urn:li:organization:2414183"
PIN_BOARD = "549755885175"
MEDIA_TEMPLATE = "https://media.example.test/{sha256}.jpg"
TIKTOK_TEMPLATE = "https://cdn.acme.test/herald/{sha256}.jpg"  # the domain FakeTikTok treats as verified
TEXT = "Spring sale starts today! 20% off everything"
LINK = "https://shop.example/sale"
VIDEO = tiny_video()  # a real one: /draft refuses a file that only looks like an MP4


class CountingMastodon(FakeMastodon):
    """FakeMastodon plus the read the metrics poll makes, which it lacks: `GET /api/v1/statuses?id[]=…`
    (Mastodon 4.3+) answering each status with its favourites, reblogs and replies; `engage` sets them."""

    def __init__(self) -> None:
        super().__init__()
        self.route("GET", "/api/v1/statuses", self.statuses_by_id)

    async def statuses_by_id(self, request: web.Request) -> web.Response:
        if not self._ok(request):
            return web.json_response({"error": "The access token is invalid"}, status=401)
        found = [self.statuses[i] for i in request.query.getall("id[]", []) if i in self.statuses]
        return web.json_response([{"favourites_count": 0, "reblogs_count": 0, "replies_count": 0,
                                   **{k: v for k, v in s.items() if k != "media_ids"}} for s in found])

    def engage(self, status_id: str, **counts: int) -> None:
        self.statuses[status_id].update(counts)


@dataclass
class Fakes:
    x: FakeX
    mastodon: CountingMastodon
    bluesky: FakeBluesky
    meta: MetaGraphServer  # Facebook, Instagram and Threads
    linkedin: FakeLinkedIn
    pinterest: FakePinterest
    tiktok: FakeTikTok
    youtube: FakeYouTube
    telegram: FakeTelegram
    discord: FakeDiscord
    discord_guild: str
    discord_channel: str

    def connect_lines(self) -> dict[str, str]:
        """Each account's /connect line, with the credentials its fake accepts."""
        return {
            "acme-x": f"/connect x name=acme-x base_url={self.x.url} access_token=tok-1",
            "acme-masto": f"/connect mastodon name=acme-masto base_url={self.mastodon.url} access_token=masto-token",
            "acme-bsky": f"/connect bluesky name=acme-bsky base_url={self.bluesky.url} handle=brand.bsky.social "
                         f"app_password={BSKY_PASSWORD}",
            "acme-fb": f"/connect facebook name=acme-fb base_url={self.meta.url} token={PAGE_TOKEN} page_id={PAGE_ID}",
            "acme-ig": f"/connect instagram name=acme-ig base_url={self.meta.url} token={IG_TOKEN} "
                       f"media_url_template={MEDIA_TEMPLATE}",
            "acme-threads": f"/connect threads name=acme-threads base_url={self.meta.url} token={THREADS_TOKEN} "
                            f"media_url_template={MEDIA_TEMPLATE}",
            "acme-li": f"/connect linkedin name=acme-li base_url={self.linkedin.url} access_token=li-token "
                       f"author={LI_ORG}",
            "acme-pin": f"/connect pinterest name=acme-pin base_url={self.pinterest.url} access_token=pina-token "
                        f"board_id={PIN_BOARD}",
            "acme-tiktok": f"/connect tiktok name=acme-tiktok base_url={self.tiktok.url} access_token=act.token "
                           f"media_url_template={TIKTOK_TEMPLATE}",
            "acme-yt": f"/connect youtube name=acme-yt base_url={self.youtube.url} access_token=ya29.token "
                      "made_for_kids=no",
            "acme-tg": f"/connect telegram name=acme-tg base_url={self.telegram.url} channel=@acme_news "
                       f"token={TELEGRAM_TOKEN}",
            "acme-discord": f"/connect discord name=acme-discord base_url={self.discord.url}/api/v10 "
                            f"channel={self.discord_channel} token={DISCORD_TOKEN}",
        }

    def creates(self) -> dict[str, list[Seen]]:
        """Per account, the requests that create a post on its network (the one call that must not repeat)."""
        return {
            "acme-x": self.x.requests("POST", "/2/tweets"),
            "acme-masto": self.mastodon.requests("POST", "/api/v1/statuses"),
            "acme-bsky": self.bluesky.requests("POST", "/xrpc/com.atproto.repo.createRecord"),
            "acme-fb": self.meta.requests("POST", f"/v25.0/{PAGE_ID}/photos"),
            "acme-ig": self.meta.requests("POST", f"/v25.0/{IG_USER_ID}/media_publish"),
            "acme-threads": self.meta.requests("POST", f"/v1.0/{THREADS_USER_ID}/threads_publish"),
            "acme-li": self.linkedin.requests("POST", "/rest/posts"),
            "acme-pin": self.pinterest.requests("POST", "/v5/pins"),
            "acme-tiktok": self.tiktok.requests("POST", "/v2/post/publish/content/init/"),
            "acme-tg": self.telegram.requests("POST", f"/bot{TELEGRAM_TOKEN}/sendPhoto"),
            "acme-discord": self.discord.requests("POST", f"/api/v10/channels/{self.discord_channel}/messages"),
            "acme-yt": self.youtube.requests("PUT", "/upload/youtube/v3/videos"),
        }

    def made(self) -> dict[str, int]:
        """Per account, how many posts its network now holds."""
        return {
            "acme-x": len(self.x.tweets),
            "acme-masto": len(self.mastodon.statuses),
            "acme-bsky": len(self.bluesky.records),
            "acme-fb": len(self.meta.posts),
            "acme-ig": sum(m["network"] == "ig" for m in self.meta.media.values()),
            "acme-threads": sum(m["network"] == "threads" for m in self.meta.media.values()),
            "acme-li": len(self.linkedin.posts),
            "acme-pin": len(self.pinterest.pins),
            "acme-tiktok": len(self.tiktok.publishes),
            "acme-tg": sum(c.method == "sendPhoto" for c in self.telegram.calls()),
            "acme-discord": len(self.discord.channel_messages(self.discord_channel)),
            "acme-yt": len(self.youtube.videos),
        }


@pytest.fixture
async def fakes(clock: FakeClock) -> AsyncIterator[Fakes]:
    """Every network's fake on 127.0.0.1, started together and closed after the test."""
    async with AsyncExitStack() as stack:
        x = await stack.enter_async_context(FakeX())
        mastodon = await stack.enter_async_context(CountingMastodon())
        bluesky = await stack.enter_async_context(FakeBluesky(clock.now, password=BSKY_PASSWORD))
        meta = await stack.enter_async_context(MetaGraphServer())
        linkedin = await stack.enter_async_context(FakeLinkedIn())
        pinterest = await stack.enter_async_context(FakePinterest())
        tiktok = await stack.enter_async_context(FakeTikTok())
        youtube = await stack.enter_async_context(FakeYouTube())
        telegram = await stack.enter_async_context(FakeTelegram())
        discord = await stack.enter_async_context(FakeDiscord(DISCORD_TOKEN))
        telegram.channel("Acme News", username="acme_news")
        guild = discord.add_guild("Acme")
        channel = discord.add_channel(guild, "news")
        yield Fakes(x, mastodon, bluesky, meta, linkedin, pinterest, tiktok, youtube, telegram, discord,
                    guild, channel)


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (230, 90, 40)).save(out, "PNG")
    return out.getvalue()


PNG = png()
PNG_SHA = hashlib.sha256(PNG).hexdigest()


async def attach(team: Team, user: str, post_id: int, item: MediaIn) -> str:
    """/attach <post> with a file, as a chat front end hands in a photo sent with the command."""
    console = team.herald.console
    console.user = user
    reply = await team.herald.handle(Command("attach", console.actor(), console.chat, text=str(post_id),
                                             media=(item,)))
    return reply.text


def line_of(out: str, account: str) -> str:
    """The one line of a publish report about `account`."""
    found = [line.strip() for line in out.splitlines() if f" {account} (" in line]
    assert len(found) == 1, f"{account}: {found!r} in\n{out}"
    return found[0]


def by_account(team: Team, post_id: int) -> dict[str, Delivery]:
    with team.herald.db.session() as session:
        rows = session.exec(select(Delivery, Account).where(Delivery.post_id == post_id)
                            .where(Delivery.account_id == Account.id)).all()
        return {account.name: delivery for delivery, account in rows}


def fast_polling(team: Team) -> None:
    """The connectors that wait between status polls wait no time (as their contract tests set them)."""
    networks: Any = team.herald.networks
    networks.get("mastodon").media_poll_seconds = 0.0
    networks.get("instagram").poll_interval = 0.0
    networks.get("threads").poll_interval = 0.0
    networks.get("tiktok").poll_interval = 0.0


async def connect_team(team: Team, fakes: Fakes, *names: str) -> None:
    """alice sets up Acme (Paris time), connects the accounts (all by default), makes bob an approver."""
    fast_polling(team)
    await team.say("alice", "/setup Acme")
    await team.say("alice", "/timezone Europe/Paris")
    for name, line in fakes.connect_lines().items():
        if names and name not in names:
            continue
        out = await team.say("alice", line)
        assert out.startswith(f"Connected {name} ("), out
    await team.say("alice", "/role bob approver")


async def approved(team: Team, draft: str, media: MediaIn) -> int:
    """alice drafts a post, attaches the file and submits it; bob approves. Its number."""
    out = await team.say("alice", f"/draft {draft}")
    post_id = int(out.split("#", 1)[1].split(" ", 1)[0].rstrip("."))
    out = await attach(team, "alice", post_id, media)
    assert f"#{post_id}: 1 file(s) attached (1 in all)." in out and "✗" not in out, out
    assert "asks for approval" in await team.say("alice", f"/submit {post_id}")
    assert f"bob approved #{post_id} (1 of 1). Approved." in await team.say("bob", f"/approve {post_id}")
    return post_id


X_DUPLICATE = {"detail": "You are not allowed to create a Tweet with duplicate content.", "type": "about:blank",
               "title": "Forbidden", "status": 403}


def rate_limit_mastodon(fakes: Fakes, seconds: int) -> None:
    """Mastodon's next status answers 429 with its ISO reset time, `seconds` from now."""
    reset = datetime.fromtimestamp(time.time() + seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    fakes.mastodon.fail("POST", "/api/v1/statuses", status=429, body={"error": "Too many requests"},
                        headers={"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset})


ALL = ("acme-bsky", "acme-discord", "acme-fb", "acme-ig", "acme-li", "acme-masto", "acme-pin", "acme-tg",
       "acme-threads", "acme-tiktok", "acme-x")  # post #1's targets, as reports list them (by name)
WORKED = ("acme-discord", "acme-fb", "acme-ig", "acme-pin", "acme-tg", "acme-threads", "acme-tiktok")


async def test_one_post_to_every_network_reports_a_partial_failure_per_network(team: Team, fakes: Fakes) -> None:
    """X refuses a duplicate, LinkedIn's answer is lost (500 after it made the post), Mastodon is rate
    limited, Bluesky's app password was revoked; the other seven networks take the post. Each one gets its
    own line in the chat, every network is asked to create the post once, the rate-limited one goes out by
    itself once its wait is over, the fixes the report names work, and /stats shows each network's numbers."""
    await connect_team(team, fakes)
    post = await approved(team, f"{TEXT} link={LINK} to={','.join(ALL)}", MediaIn("sale.png", "image/png", PNG))
    video = await approved(team, "Spring teaser: the new line in 30 seconds to=acme-yt",
                           MediaIn("teaser.mp4", "video/mp4", VIDEO))
    assert (post, video) == (1, 2)

    fakes.x.fail("POST", "/2/tweets", status=403, body=X_DUPLICATE)
    fakes.linkedin.fail("POST", "/rest/posts", status=500, after=True,
                        body={"status": 500, "message": "Internal Server Error"})
    rate_limit_mastodon(fakes, 630)
    # the app password was revoked between the image upload and the post: the session, its refresh and a
    # new login with the old password all fail
    fakes.bluesky.fail("POST", "/xrpc/com.atproto.repo.createRecord", status=401,
                       body={"error": "InvalidToken", "message": "Token has been revoked"})
    fakes.bluesky.refresh.clear()
    fakes.bluesky.password = BSKY_NEW_PASSWORD

    # -- /publish: one line per account ---------------------------------------------------------------
    out = await team.say("alice", "/publish 1")
    # the dead Bluesky session is told once on its own (what it affects, how to fix it), then the report
    notice, _, out = out.partition("⏳ #1:")
    assert notice.startswith("⚠️ acme-bsky (bluesky) can't post any more:") and "Fix: /connect bluesky" in notice
    out = "⏳ #1:" + out
    assert out.startswith("⏳ #1: 7 of 11 sent so far; 1 retries by itself, 2 failed and 1 is unconfirmed (see below for "
                          "the fix).\n"), out
    assert [line.strip()[0] for line in out.splitlines()[1:]] == ["✗", "✓", "✓", "✓", "?", "⏳", "✓", "✓", "✓",
                                                                  "✓", "✗"], out
    tg = fakes.telegram.calls("sendPhoto")[0].result["message_id"]
    discord = fakes.discord.channel_messages(fakes.discord_channel)[0]["id"]
    fb_photo = next(iter(fakes.meta.photos))
    ig, threads = (m for m in fakes.meta.media)
    pin = next(iter(fakes.pinterest.pins))
    assert line_of(out, "acme-discord") == (
        f"✓ acme-discord (discord): https://discord.com/channels/{fakes.discord_guild}/{fakes.discord_channel}/"
        f"{discord}")
    assert line_of(out, "acme-fb") == f"✓ acme-fb (facebook): https://www.facebook.com/photo/?fbid={fb_photo}"
    assert line_of(out, "acme-ig") == f"✓ acme-ig (instagram): https://www.instagram.com/p/C{ig}/"
    assert line_of(out, "acme-pin") == f"✓ acme-pin (pinterest): https://www.pinterest.com/pin/{pin}/"
    assert line_of(out, "acme-tg") == f"✓ acme-tg (telegram): https://t.me/acme_news/{tg}"
    assert line_of(out, "acme-threads") == (
        f"✓ acme-threads (threads): https://www.threads.net/@brand.threads/post/T{threads}")
    assert line_of(out, "acme-tiktok") == "✓ acme-tiktok (tiktok): https://www.tiktok.com/@acme/photo/7400000000000000001"
    assert line_of(out, "acme-x") == (
        "✗ acme-x (x): duplicate: X refuses a post identical to one already on the account (it may be there from "
        "an earlier attempt) → fix the text with /variant 1 acme-x <text>, then /retry 1")
    assert line_of(out, "acme-bsky") == (
        "✗ acme-bsky (bluesky): Bluesky session: Invalid identifier or password (AuthenticationRequired); "
        "reconnect with /connect bluesky name=acme-bsky handle=… app_password=… (a new app password if the old "
        "one was revoked) → reconnect with /connect bluesky name=acme-bsky …, then /retry 1")
    assert line_of(out, "acme-li") == (
        "? acme-li (linkedin): unconfirmed — LinkedIn failed with 500 while handling the post (Internal Server "
        "Error); the post may or may not be there. It may be live, so Herald won't resend it on its own. Check "
        "the account: if it's there, /confirm 1 acme-li <link>; if not, /retry 1 acme-li")
    assert line_of(out, "acme-masto") == (
        "⏳ acme-masto (mastodon): Mastodon says too many requests: Too many requests; retrying by itself at "
        "Mon 23 Nov 2026 10:10 CET (Europe/Paris)")
    report = out
    out = await team.say("alice", "/publish 2")
    youtube = next(iter(fakes.youtube.videos))
    assert out == f"📣 #2 is published on 1 account(s):\n  ✓ acme-yt (youtube): https://www.youtube.com/watch?v={youtube}"

    # every network was asked to create the post exactly once; only the seven that said yes (and LinkedIn,
    # whose answer was lost) hold it
    assert {name: len(seen) for name, seen in fakes.creates().items()} == dict.fromkeys(fakes.connect_lines(), 1)
    assert fakes.made() == {**dict.fromkeys(fakes.connect_lines(), 1), "acme-x": 0, "acme-masto": 0, "acme-bsky": 0}
    # the image reached the networks that need it: as bytes, or as the public URL they download it from
    assert fakes.meta.containers[next(iter(fakes.meta.containers))]["params"]["image_url"] == \
        f"https://media.example.test/{PNG_SHA}.jpg"
    assert fakes.tiktok.publishes[next(iter(fakes.tiktok.publishes))]["body"]["source_info"]["photo_images"] == [
        f"https://cdn.acme.test/herald/{PNG_SHA}.jpg"]
    assert fakes.pinterest.pins[pin]["media"] == {"media_type": "image"}
    assert fakes.telegram.calls("sendPhoto")[0].files["photo"]["data"] == PNG
    assert fakes.youtube.sessions["S1"]["data"] == VIDEO

    deliveries = by_account(team, 1)
    assert {name: (d.state, d.error_kind, d.attempts) for name, d in deliveries.items()} == {
        **{name: ("sent", None, 1) for name in WORKED},
        "acme-x": ("failed", "rejected", 1), "acme-bsky": ("failed", "auth_expired", 1),
        "acme-li": ("unconfirmed", "unknown_outcome", 1), "acme-masto": ("pending", "rate_limited", 1)}
    assert all(deliveries[name].remote_url and deliveries[name].remote_url in report for name in WORKED)
    not_before = deliveries["acme-masto"].not_before
    assert not_before is not None and START + timedelta(seconds=620) < not_before <= START + timedelta(seconds=630)
    assert deliveries["acme-li"].remote_id is None and team.post(1).state == "publishing"
    assert by_account(team, 2)["acme-yt"].state == "sent" and team.post(2).state == "published"
    assert "⚠ Bluesky session: Invalid identifier or password" in await team.say("alice", "/accounts")

    # -- the clock passes Mastodon's wait: it goes out by itself, once --------------------------------
    assert await team.tick(minutes=5) == ""  # not yet
    assert len(fakes.mastodon.requests("POST", "/api/v1/statuses")) == 1
    out = await team.tick(minutes=6)
    status = next(iter(fakes.mastodon.statuses))
    assert out.startswith("⚠️ #1 is partly published: 8 of 11 accounts.\n"), out
    assert line_of(out, "acme-masto") == f"✓ acme-masto (mastodon): {fakes.mastodon.url}/@brand/{status}"
    assert line_of(out, "acme-x").startswith("✗ ") and line_of(out, "acme-bsky").startswith("✗ ")
    assert line_of(out, "acme-li").startswith("? ")
    statuses = fakes.mastodon.requests("POST", "/api/v1/statuses")
    assert len(statuses) == 2 and len(fakes.mastodon.statuses) == 1
    assert statuses[0].header("idempotency-key") == statuses[1].header("idempotency-key")
    assert len(fakes.mastodon.requests("POST", "/api/v2/media")) == 1  # the retry reused the upload
    assert await team.tick(minutes=30) == ""
    assert len(fakes.mastodon.requests("POST", "/api/v1/statuses")) == 2
    assert team.post(1).state == "partially_published"

    # -- the fixes the report named -----------------------------------------------------------------
    out = await team.say("alice", "/variant 1 acme-x Spring sale starts today: 20% off everything, this week only")
    assert "needs approval before /retry 1" in out
    assert "The new version is approved: /retry 1" in await team.say("bob", "/approve 1")
    out = await team.say("alice", fakes.connect_lines()["acme-bsky"].replace(BSKY_PASSWORD, BSKY_NEW_PASSWORD))
    assert out.startswith("Reconnected acme-bsky (Bluesky)"), out
    out = await team.say("alice", "/retry 1")
    tweet = next(iter(fakes.x.tweets))
    record = next(iter(fakes.bluesky.records))
    assert out.startswith("⚠️ #1 is partly published: 10 of 11 accounts.\n"), out
    assert line_of(out, "acme-x") == f"✓ acme-x (x): https://x.com/brand/status/{tweet}"
    assert line_of(out, "acme-bsky") == (
        f"✓ acme-bsky (bluesky): https://bsky.app/profile/brand.bsky.social/post/{record.rsplit('/', 1)[1]}")
    assert line_of(out, "acme-li").startswith("? ")  # /retry never resends an unconfirmed delivery
    assert fakes.x.tweets[tweet]["text"] == (  # the link tagged for X's analytics (UTM on by default)
        f"Spring sale starts today: 20% off everything, this week only\n{LINK}?utm_source=x&utm_medium=social"
        "&utm_campaign=herald&utm_content=post-1-acme-x")
    li_post = next(iter(fakes.linkedin.posts))
    out = await team.say("alice", f"/confirm 1 acme-li https://www.linkedin.com/feed/update/{li_post}/")
    assert out.startswith("📣 #1 is published on all 11 account(s):"), out
    assert line_of(out, "acme-li") == f"✓ acme-li (linkedin): https://www.linkedin.com/feed/update/{li_post}/"
    assert {name: len(seen) for name, seen in fakes.creates().items()} == {
        **dict.fromkeys(fakes.connect_lines(), 1), "acme-x": 2, "acme-masto": 2, "acme-bsky": 2}
    assert fakes.made() == dict.fromkeys(fakes.connect_lines(), 1)  # one post per network, none twice
    assert {d.state for d in by_account(team, 1).values()} == {"sent"} and team.post(1).state == "published"

    # -- the numbers each network reports -------------------------------------------------------------
    team.clock.advance(minutes=6)  # the last deliveries' first reading is due 5 minutes after they went out
    fakes.x.engage(tweet, like_count=12, reply_count=3, retweet_count=2, quote_count=1, impression_count=640,
                   bookmark_count=4, url_link_clicks=5)
    fakes.mastodon.engage(status, favourites_count=7, reblogs_count=2, replies_count=1)
    fakes.bluesky.counts[record].update(likeCount=9, repostCount=3, replyCount=2, quoteCount=1)
    fakes.youtube.stats[youtube] = {"viewCount": "120", "likeCount": "8", "commentCount": "2"}
    assert await poll_metrics(team.herald.ctx) >= 4
    out = await team.say("bob", "/stats 1")
    assert line_of(out, "acme-x") == "acme-x (x): 12 likes · 3 comments · 2 shares · 1 quote · 640 views · 5 clicks · 4 saves"
    assert line_of(out, "acme-masto") == "acme-masto (mastodon): 7 likes · 1 comment · 2 shares"
    assert line_of(out, "acme-bsky") == "acme-bsky (bluesky): 9 likes · 2 comments · 3 shares · 1 quote"
    # every other network reported zeros or nothing, so the total is these three's
    assert "Total: 28 likes · 6 comments · 7 shares · 2 quotes · 640 views · 5 clicks · 4 saves" in out
    out = await team.say("bob", "/stats 2")
    assert "acme-yt (youtube): 8 likes · 2 comments · 120 views" in out


async def test_a_delivery_the_team_confirmed_gets_its_numbers_read(team: Team, fakes: Fakes) -> None:
    await connect_team(team, fakes, "acme-li")
    await approved(team, TEXT, MediaIn("sale.png", "image/png", PNG))
    fakes.linkedin.fail("POST", "/rest/posts", status=500, after=True,
                        body={"status": 500, "message": "Internal Server Error"})
    assert "? acme-li (linkedin): unconfirmed" in await team.say("alice", "/publish 1")
    urn = next(iter(fakes.linkedin.posts))
    out = await team.say("alice", f"/confirm 1 acme-li https://www.linkedin.com/feed/update/{urn}/")
    assert out.startswith("📣 #1 is published on 1 account(s):"), out
    fakes.linkedin.stats[urn] = {"likeCount": 15, "commentCount": 4, "shareCount": 2, "impressionCount": 900,
                                 "clickCount": 30}
    team.clock.advance(minutes=6)
    await poll_metrics(team.herald.ctx)
    out = await team.say("alice", "/stats 1")
    assert "acme-li (linkedin): 15 likes · 4 comments · 2 shares · 900 views · 30 clicks" in out, out


async def test_a_post_live_on_some_accounts_while_another_retries_was_published_when_it_first_went_live(
        team: Team, fakes: Fakes) -> None:
    await connect_team(team, fakes, "acme-x", "acme-masto")
    await approved(team, TEXT, MediaIn("sale.png", "image/png", PNG))
    rate_limit_mastodon(fakes, 630)
    out = await team.say("alice", "/publish 1")
    assert out.startswith("⏳ #1: 1 of 2 sent so far"), out
    out = await team.tick(minutes=11)
    assert out.startswith("📣 #1 is published on all 2 account(s):"), out
    out = await team.say("alice", "/stats 1")
    assert "published Mon 23 Nov 2026 10:00 CET" in out, out  # acme-x went live at 10:00, not at 10:11
