"""Herald's own short links and their clicks, through the front door.

A real Herald (console chat, FakeClock) publishes through the real X and Mastodon connectors to their loopback
fakes; the links they receive are followed with a real HTTP client against Herald's real web app on 127.0.0.1,
as a person and as preview fetchers, and /stats counts what a person clicked. Nothing sleeps: the test waits
for the click writer to have written what was queued (`Redirects.drain`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import select

from bot.app import web_app
from handlers.engagement.clicks import ClickCounter, Hit, fetcher_of
from storage.models import Click, ShortLink
from tests.conftest import FakeClock, Team, make_herald, refused
from tests.fakes.mastodon_api import FakeMastodon
from tests.fakes.x_api import FakeX
from tests.test_utm import Fakes, connect

PUBLIC = "https://go.acme.com"  # a real top-level domain: X counts it as a link
SHORT_RE = re.compile(re.escape(PUBLIC) + r"/r/[A-Za-z0-9_-]{8}")
BROWSER = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
           "Version/17.5 Safari/605.1.15")
FETCHERS = {
    "Twitterbot": "Twitterbot/1.0",
    "Mastodon": "http.rb/5.2.0 (Mastodon/4.3.2; +https://mastodon.social/)",
    "Bluesky": "Mozilla/5.0 (compatible; Bluesky Cardyb/1.1; +mailto:support@bsky.app)",
}


@dataclass
class Site:
    team: Team
    web: Any
    x: FakeX
    mastodon: FakeMastodon
    http: httpx.AsyncClient

    async def follow(self, short: str, user_agent: str, address: str = "198.51.100.7") -> httpx.Response:
        """Opens a short link on Herald's web app as a visitor behind the load balancer at `address`."""
        path = short.removeprefix(PUBLIC)
        return await self.http.get(path, headers={"User-Agent": user_agent, "X-Forwarded-For": address})


@pytest.fixture
async def site(db_url: str, clock: FakeClock) -> AsyncIterator[Site]:
    herald = make_herald(db_url, clock, HERALD_PUBLIC_URL=PUBLIC, HERALD_TRUST_FORWARDED_FOR="true")
    await herald.start()
    web = web_app(herald, host="127.0.0.1", port=0)
    await web.start()
    try:
        async with AsyncExitStack() as stack:
            x = await stack.enter_async_context(FakeX())
            mastodon = await stack.enter_async_context(FakeMastodon())
            http = await stack.enter_async_context(
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}", follow_redirects=False))
            team = Team(herald, clock, db_url)
            await connect(team, Fakes(x, mastodon))  # as the UTM tests connect them
            await team.say("alice", "/role carol editor")
            yield Site(team, web, x, mastodon, http)
    finally:
        await web.stop()
        await herald.stop()


async def publish(team: Team, draft: str) -> tuple[int, str]:
    """Drafts, approves and publishes a post; (its number, the draft card)."""
    card = await team.say("alice", f"/draft {draft}")
    post_id = int(card.split("#", 1)[1].split(" ", 1)[0].rstrip("."))
    await team.say("alice", f"/submit {post_id}")
    await team.say("bob", f"/approve {post_id}")
    out = await team.say("alice", f"/publish {post_id}")
    assert f"📣 #{post_id} is published" in out, out
    return post_id, card


def sent(site: Site) -> tuple[str, str]:
    (tweet,) = site.x.requests("POST", "/2/tweets")
    (status,) = site.mastodon.requests("POST", "/api/v1/statuses")
    return tweet.json["text"], status.json["status"]


ACCOUNTS = {"x": "acme-x", "mastodon": "acme-masto"}  # the site fixture's account on each network


def tagged(url: str, network: str, post_id: int, campaign: str = "spring", account: str | None = None) -> str:
    return (f"{url}?utm_source={network}&utm_medium=social&utm_campaign={campaign}"
            f"&utm_content=post-{post_id}-{account or ACCOUNTS[network]}")


async def test_a_post_to_two_networks_counts_exactly_the_people_who_clicked_each_accounts_link(site: Site) -> None:
    post_id, card = await publish(site.team, "Book a test drive near you link=https://cars.acme.com/dealers "
                                             "campaign=spring")
    assert f"Links: shortened to {PUBLIC}/r/<code>, one per account, clicks counted" in card
    tweet, status = sent(site)
    (x_link,) = SHORT_RE.findall(tweet)
    (masto_link,) = SHORT_RE.findall(status)
    assert x_link != masto_link  # one code per delivery
    assert tweet == f"Book a test drive near you\n{x_link}"
    assert "cars.acme.com" not in tweet + status

    targets = {x_link: tagged("https://cars.acme.com/dealers", "x", post_id),
               masto_link: tagged("https://cars.acme.com/dealers", "mastodon", post_id)}
    for short, target in targets.items():
        answer = await site.follow(short, BROWSER)
        assert answer.status_code == 302
        assert answer.headers["Location"] == target
        assert answer.headers["Cache-Control"] == "no-store"
        assert answer.headers["Referrer-Policy"] == "no-referrer"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        again = await site.follow(short, BROWSER)  # the same person a minute later: still one click
        assert again.headers["Location"] == target
        for agent in FETCHERS.values():
            fetched = await site.follow(short, agent, address="203.0.113.50")
            assert fetched.status_code == 302 and fetched.headers["Location"] == target
    # a second person clicks the X link only; a HEAD (a link checker) answers without counting
    await site.follow(x_link, BROWSER, address="192.0.2.99")
    head = await site.http.head(x_link.removeprefix(PUBLIC), headers={"User-Agent": BROWSER})
    assert head.status_code == 302 and head.headers["Location"] == targets[x_link]
    await site.web.redirects.drain()

    out = await site.team.say("bob", f"/stats {post_id}")
    assert "Clicks on its short links (people; preview fetches by networks and chat apps counted apart):" in out
    assert "  acme-x: 2 clicks · 3 preview fetches counted apart (60% of 5)" in out, out
    assert "  acme-masto: 1 click · 3 preview fetches counted apart (75% of 4)" in out, out
    assert "  Total: 3 clicks · 6 preview fetches counted apart (67% of 9)" in out, out

    with site.team.herald.db.session() as session:
        rows = session.exec(select(Click)).all()
    assert len(rows) == 9  # one row a counted click; the repeats weren't written
    assert all(r.visitor is not None and "198.51" not in r.visitor and len(r.visitor) == 32 for r in rows)
    assert sorted({r.fetcher for r in rows if r.fetcher}) == [
        "Bluesky cardyb", "Mastodon server", "Twitterbot (X)"]


async def test_the_same_person_counts_again_after_thirty_minutes(site: Site, clock: FakeClock) -> None:
    post_id, _card = await publish(site.team, "Spring drop https://shop.acme.com/spring campaign=spring")
    (x_link,) = SHORT_RE.findall(sent(site)[0])
    await site.follow(x_link, BROWSER)
    clock.advance(minutes=29)
    await site.follow(x_link, BROWSER)
    clock.advance(minutes=2)
    await site.follow(x_link, BROWSER)
    await site.web.redirects.drain()
    assert "  acme-x: 2 clicks" in await site.team.say("bob", f"/stats {post_id}")


async def test_an_unknown_or_malformed_code_is_a_plain_404_and_nothing_is_counted(site: Site) -> None:
    for path in ("/r/AAAAAAAA", "/r/short", "/r/../../etc", "/r/%2F%2Fevil.example", "/r/"):
        answer = await site.http.get(path, headers={"User-Agent": BROWSER})
        assert answer.status_code == 404, path
        assert "Location" not in answer.headers
    answer = await site.http.get("/r/AAAAAAAA?to=https://evil.example")
    assert answer.status_code == 404 and "evil" not in answer.text
    assert "Link not found" in answer.text
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    await site.web.redirects.drain()
    with site.team.herald.db.session() as session:
        assert session.exec(select(Click)).all() == []


async def test_a_redirect_goes_only_to_the_stored_target_whatever_the_request_says(site: Site) -> None:
    post_id, _card = await publish(site.team, "Dealers https://cars.acme.com/dealers campaign=spring")
    (x_link,) = SHORT_RE.findall(sent(site)[0])
    answer = await site.http.get(x_link.removeprefix(PUBLIC) + "?url=https://evil.example",
                                 headers={"Host": "evil.example", "Referer": "https://evil.example/"})
    assert answer.headers["Location"] == tagged("https://cars.acme.com/dealers", "x", post_id)


async def test_keep_leaves_a_link_exactly_as_written(site: Site) -> None:
    await publish(site.team, "Terms https://partner.example/terms and https://cars.acme.com/dealers "
                             "keep=https://partner.example/terms campaign=spring")
    tweet, _status = sent(site)
    assert "https://partner.example/terms and " in tweet
    assert len(SHORT_RE.findall(tweet)) == 1


async def test_a_posts_links_answer_until_they_are_revoked(site: Site) -> None:
    """(Herald has no command that deletes a post yet; short links hold no foreign key to their post, so they
    outlive it. /links revoke is what stops them.)"""
    post_id, _card = await publish(site.team, "Dealers https://cars.acme.com/dealers campaign=spring")
    (x_link,) = SHORT_RE.findall(sent(site)[0])
    assert (await site.follow(x_link, BROWSER)).status_code == 302
    await site.web.redirects.drain()
    await refused(site.team, "carol", f"/links revoke {post_id}", "Only admins")
    out = await site.team.say("alice", f"/links revoke {post_id}")
    assert out.startswith(f"Revoked the 2 short link(s) of #{post_id}"), out
    site.web.redirects.cache.clear()  # another worker, or a minute later
    assert (await site.follow(x_link, BROWSER)).status_code == 404
    await refused(site.team, "alice", f"/links revoke {post_id}", "no short links in use")


async def test_links_off_sends_links_as_written_and_only_admins_switch(site: Site) -> None:
    await refused(site.team, "carol", "/links off", "Only admins")
    await refused(site.team, "alice", "/links sideways", "isn't on, off or revoke")
    out = await site.team.say("alice", "/links off")
    assert out.startswith("Short links are off")
    post_id, card = await publish(site.team, "Dealers https://cars.acme.com/dealers campaign=spring")
    assert "Links: sent as written (short links are off: /links on)" in card
    tweet, _status = sent(site)
    assert tweet == f"Dealers {tagged('https://cars.acme.com/dealers', 'x', post_id)}"
    assert (await site.team.say("alice", "/links on")).startswith("Short links are on")


async def test_without_a_public_address_links_stay_as_written_and_links_on_is_refused(team: Team) -> None:
    await team.setup_workspace()
    card = await team.say("alice", "/draft Dealers https://cars.acme.com/dealers")
    assert "Links: sent as written — Herald's short links need its public address: set HERALD_PUBLIC_URL" in card
    out = await team.say("alice", "/links")
    assert out.startswith("Short links are on but not in use: Herald's short links need its public address")
    await team.say("alice", "/links off")
    await refused(team, "alice", "/links on", "can't be turned on here", "HERALD_PUBLIC_URL", "Nothing changed")


async def test_the_approved_card_shows_the_short_link_that_goes_out(site: Site) -> None:
    card = await site.team.say("alice", "/draft Dealers https://cars.acme.com/dealers to=acme-masto")
    post_id = int(card.split("#", 1)[1].split(" ", 1)[0].rstrip("."))
    preview = await site.team.say("alice", f"/preview {post_id}")
    (shown,) = set(SHORT_RE.findall(preview))
    assert f"  ↪ {shown} → https://cars.acme.com/dealers?utm_source=mastodon&utm_medium=social" in preview, preview
    await site.team.say("alice", f"/submit {post_id}")
    await site.team.say("bob", f"/approve {post_id}")
    await site.team.say("alice", f"/publish {post_id}")
    _, status = (None, site.mastodon.requests("POST", "/api/v1/statuses")[0].json["status"])
    assert SHORT_RE.findall(status) == [shown]
    with site.team.herald.db.session() as session:
        assert len(session.exec(select(ShortLink).where(ShortLink.post_id == post_id)).all()) == 1


# --- the counting rules, on their own -------------------------------------------------------------------


@pytest.mark.parametrize("agent,name", [
    ("Twitterbot/1.0", "Twitterbot (X)"),
    ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
     "facebookexternalhit (Facebook, Instagram, Threads)"),
    ("TelegramBot (like TwitterBot)", "TelegramBot"),
    ("Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)", "Discordbot"),
    ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "Slackbot"),
    ("LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)", "LinkedInBot"),
    ("Mozilla/5.0 (compatible; Bluesky Cardyb/1.1; +mailto:support@bsky.app)", "Bluesky cardyb"),
    ("http.rb/5.2.0 (Mastodon/4.3.2; +https://mastodon.social/)", "Mastodon server"),
    ("Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", "YandexBot"),  # from ua-parser
    ("", "no user agent"),
    (BROWSER, None),
])
def test_preview_fetchers_are_told_apart_from_people(agent: str, name: str | None) -> None:
    assert fetcher_of(agent) == name


def test_a_flood_from_one_address_is_aggregated_per_link_and_minute(team: Team, clock: FakeClock) -> None:
    counter = ClickCounter(team.herald.db)
    now = clock.now()
    hits = [Hit(1, now + timedelta(milliseconds=i), "192.0.2.1", f"agent {i}") for i in range(1000)]
    singles, floods = counter.rows(hits)
    assert len(singles) == 60
    assert [(f.link_id, f.count, f.visitor) for f in floods] == [(1, 940, None)]
    assert counter.store([Hit(1, now + timedelta(minutes=1, milliseconds=i), "192.0.2.1", f"b {i}")
                          for i in range(500)]) == 61  # 60 single rows and 1 aggregated row: bounded


def test_the_visitor_key_changes_every_day_and_old_keys_are_deleted(team: Team, clock: FakeClock) -> None:
    counter = ClickCounter(team.herald.db)
    today = clock.now().strftime("%Y-%m-%d")
    first = counter.hash(today, "192.0.2.1", BROWSER)
    assert first == ClickCounter(team.herald.db).hash(today, "192.0.2.1", BROWSER)  # shared by workers
    later = [(clock.now() + timedelta(days=d)).strftime("%Y-%m-%d") for d in (1, 2)]
    assert counter.hash(later[0], "192.0.2.1", BROWSER) != first
    counter.hash(later[1], "192.0.2.1", BROWSER)
    from storage.models import ClickKey

    with team.herald.db.session() as session:
        assert sorted(k.day for k in session.exec(select(ClickKey)).all()) == later


async def test_report_digest_and_campaign_report_count_the_clicks_of_their_period(
        site: Site, clock: FakeClock) -> None:
    from handlers.engagement.digests import send_digests

    first, _card = await publish(site.team, "Dealers https://cars.acme.com/dealers campaign=spring")
    (x_link,) = SHORT_RE.findall(sent(site)[0])
    await site.follow(x_link, BROWSER)
    await site.follow(x_link, BROWSER, address="192.0.2.8")
    await site.follow(x_link, FETCHERS["Twitterbot"], address="203.0.113.50")
    clock.advance(days=8)  # a week later: these clicks belong to the week before
    second, _card = await publish(site.team, "Test drives https://cars.acme.com/drive campaign=summer")
    masto_link = SHORT_RE.findall(site.mastodon.requests("POST", "/api/v1/statuses")[-1].json["status"])[0]
    await site.follow(masto_link, BROWSER)
    await site.web.redirects.drain()

    week = await site.team.say("bob", "/report week")
    assert "Short-link clicks: 1 by people (before: 2, -50%) · 0 preview fetches counted apart (0% of 1)" in week
    assert "  Per account: acme-masto 1" in week
    assert f"  Most clicked: #{second} 1" in week
    campaign = await site.team.say("bob", "/report campaign spring")
    assert "Short-link clicks: 2 by people · 1 preview fetch counted apart (33% of 3)" in campaign, campaign
    assert f"  Most clicked: #{first} 2" in campaign

    await site.team.say("alice", "/setup reports")
    await site.team.say("alice", "/digest daily 09:00")
    clock.current = clock.current.replace(hour=9, minute=0, second=0) + timedelta(days=1)  # 09:00 UTC
    captured: list[str] = []
    site.team.herald.console.captured = captured
    try:
        assert await send_digests(site.team.herald.ctx) == 1
    finally:
        site.team.herald.console.captured = None
    assert any("Short-link clicks: 1 by people (before: 0, new)" in text for text in captured), captured


async def test_bluesky_counts_the_short_link_so_the_card_shows_the_saving(
        db_url: str, clock: FakeClock) -> None:
    herald = make_herald(db_url, clock, HERALD_PUBLIC_URL=PUBLIC)
    await herald.start()
    try:
        team = Team(herald, clock, db_url)
        await team.setup_workspace()  # brand-x like=x, brand-bsky like=bluesky
        long = "https://cars.acme.com/dealers/near-you/test-drive?model=spring-2027"
        card = await team.say("alice", f"/draft Book a test drive {long}")
        tagged_len = len(tagged(long.split("?")[0], "sandbox", 1, account="brand-bsky")) + len("&model=spring-2027")
        short_len = len(PUBLIC) + len("/r/") + 8
        assert f"  brand-bsky: the short link saves {tagged_len - short_len} graphemes" in card, card
        assert "brand-x: the short link saves" not in card  # X counts any link as 23 either way
        assert f"✓ X: {len('Book a test drive ') + 23}/280" in card, card
    finally:
        await herald.stop()


async def test_export_has_each_accounts_short_link_clicks(site: Site) -> None:
    import csv
    import io

    from handlers.core.chat import Command

    post_id, _card = await publish(site.team, "Dealers https://cars.acme.com/dealers campaign=spring")
    tweet, status = sent(site)
    (x_link,) = SHORT_RE.findall(tweet)
    await site.follow(x_link, BROWSER)
    await site.follow(x_link, FETCHERS["Twitterbot"], address="203.0.113.50")
    await site.web.redirects.drain()
    console = site.team.herald.console
    console.user = "bob"
    reply = await site.team.herald.handle(Command("export", console.actor(), console.chat, text="week"))
    assert reply.attachment is not None
    rows = list(csv.DictReader(io.StringIO(reply.attachment.data.decode("utf-8-sig"))))
    clicks = {row["account"]: (row["short_link_clicks"], row["short_link_fetches"]) for row in rows}
    assert clicks == {"acme-x": ("1", "1"), "acme-masto": ("0", "0")}
    assert {row["post_id"] for row in rows} == {str(post_id)}


async def test_an_alert_comes_once_when_people_suddenly_click_a_posts_link(site: Site, clock: FakeClock) -> None:
    from handlers.engagement.alerts import check_alerts

    async def clicks(short: str, people: int, first: int = 1) -> None:
        for n in range(first, first + people):
            await site.follow(short, BROWSER, address=f"192.0.2.{n}")
        await site.follow(short, FETCHERS["Twitterbot"], address="203.0.113.50")  # never counted as a person

    await site.team.say("alice", "/setup reports")
    for n in range(3):  # the usual: 2 people in the first 20 minutes
        await publish(site.team, f"Dealers {n} https://cars.acme.com/dealers/{n} campaign=spring")
        short = SHORT_RE.findall(site.x.requests("POST", "/2/tweets")[-1].json["text"])[0]
        clock.advance(minutes=10)
        await clicks(short, 2)
        clock.advance(hours=20)
    post_id, _card = await publish(site.team, "Test drives https://cars.acme.com/drive campaign=spring")
    short = SHORT_RE.findall(site.x.requests("POST", "/2/tweets")[-1].json["text"])[0]
    clock.advance(minutes=10)
    await clicks(short, 12, first=100)
    await site.web.redirects.drain()
    clock.advance(minutes=10)
    captured: list[str] = []
    site.team.herald.console.captured = captured
    try:
        await check_alerts(site.team.herald.ctx)
        await check_alerts(site.team.herald.ctx)  # once
    finally:
        site.team.herald.console.captured = None
    alerts = [text for text in captured if "clicking" in text]
    assert len(alerts) == 1, captured
    assert f"🚀 People are clicking #{post_id}'s link — “Test drives" in alerts[0]
    assert ("  acme-x (X): 12 clicks in the last hour, 20 minutes after publishing — 6.0× the usual 2 in that "
            "hour (median of 3 earlier posts on this account") in alerts[0], alerts[0]


async def test_besttime_clicks_ranks_the_hours_by_the_people_who_clicked(site: Site, clock: FakeClock) -> None:
    out = await site.team.say("bob", "/besttime clicks")
    assert out.startswith("⏰ Not enough clicks history yet: 0 posts with short links"), out
    for n in range(3):  # Monday 09:00 UTC: three people click each X link
        await publish(site.team, f"Dealers {n} https://cars.acme.com/dealers/{n}")
        short = SHORT_RE.findall(site.x.requests("POST", "/2/tweets")[-1].json["text"])[0]
        for person in range(3):
            await site.follow(short, BROWSER, address=f"192.0.2.{10 * n + person}")
    clock.advance(hours=2)
    for n in range(2):  # Monday 11:00 UTC: nobody clicks
        await publish(site.team, f"Drive {n} https://cars.acme.com/drive/{n}")
    await site.web.redirects.drain()
    clock.advance(days=2)
    out = await site.team.say("bob", "/besttime clicks")
    assert out.splitlines() == [
        "⏰ Best times to post for clicks, from this workspace's short links (UTC):",
        "  1. Mon 09:00–10:00 · 1.5 clicks per post (6 posts)",
        "  2. Mon 11:00–12:00 · 0.0 clicks per post (4 posts)",
        "Based on 10 posts over 1 week: the people who clicked each post's short links within 24 hours of "
        "publishing (preview fetches not counted).",
    ], out
    out = await site.team.say("bob", "/besttime clicks x")
    assert out.startswith("⏰ Not enough clicks history yet on X: 5 posts with short links"), out


async def test_herald_serves_its_one_web_app_when_it_has_a_public_address(db_url: str, clock: FakeClock) -> None:
    """What `python -m bot` runs (bot/app.py chat_fronts): /healthz, /media and /r/<code> on HERALD_HTTP_PORT."""
    import socket

    from bot.app import chat_fronts
    from bot.web.app import WebApp

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    herald = make_herald(db_url, clock, HERALD_PUBLIC_URL=PUBLIC, HERALD_HTTP_PORT=str(port))
    names = chat_fronts(herald)
    assert names == [f"media and short links at {PUBLIC}"]
    assert [type(s) for s in herald.services] == [WebApp]
    await herald.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/healthz")).text == "ok"
            assert (await http.get("/r/AAAAAAAA")).status_code == 404
            assert (await http.get("/media/" + "0" * 64 + ".jpg")).status_code == 404
    finally:
        await herald.stop()
    assert chat_fronts(make_herald(db_url, clock)) == []  # no public address: no web app


async def test_a_threads_later_part_gets_its_own_short_link_and_the_preview_says_where_it_leads(site: Site) -> None:
    post_id, _card = await publish(
        site.team, "Spring is here\n---\nBook a test drive https://cars.acme.com/dealers campaign=spring")
    first, second = (r.json["text"] for r in site.x.requests("POST", "/2/tweets"))
    assert first == "Spring is here"
    (part_link,) = SHORT_RE.findall(second)  # the part went out with a short link, not the address as written
    assert "cars.acme.com" not in second
    answer = await site.follow(part_link, BROWSER)
    assert answer.status_code == 302
    assert answer.headers["Location"] == tagged("https://cars.acme.com/dealers", "x", post_id)
    out = await site.team.say("alice", f"/preview {post_id}")
    assert f"↪ {part_link} → {tagged('https://cars.acme.com/dealers', 'x', post_id)}" in out, out
