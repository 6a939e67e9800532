"""Visits and conversions from the site's analytics, through the front door: /analytics connect against a loopback
Plausible that checks the documented request (bearer key, site_id, metrics, date_range, dimensions, filters) and
answers in the documented shape; the periodic read on the metrics cadence; /stats and /report campaign showing
clicks → visits → conversions. The clock is a FakeClock; nothing sleeps.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlmodel import select

from bot.analytics import HttpAnalytics
from handlers import dispatch
from handlers.core.chat import Actor, ChatRef, Command
from handlers.engagement.digests import send_digests
from handlers.engagement.traffic import read_traffic
from storage.models import AnalyticsSource, PostTraffic
from tests.conftest import FakeClock, Team, refused
from tests.fakes.ga4_api import FakeGA4
from tests.fakes.plausible_api import FakePlausible, Visit
from tests.test_export import export, parse
from tests.test_links import BROWSER, SHORT_RE, Site, publish, sent, site  # noqa: F401  (the site fixture)

KEY = "plausible-key"


@pytest.fixture
async def plausible() -> AsyncIterator[FakePlausible]:
    async with FakePlausible(key=KEY, site="acme.com", goals=("Signup",)) as server:
        yield server


def connect_line(server: FakePlausible, key: str = KEY, goal: str | None = "Signup", site_id: str = "acme.com") -> str:
    line = f"/analytics connect plausible url={server.url} key={key} site={site_id}"
    return line + (f" goal={goal}" if goal else "")


def source(team: Team) -> AnalyticsSource | None:
    with team.herald.db.session() as session:
        return session.exec(select(AnalyticsSource)).first()


async def test_connecting_plausible_checks_the_key_with_a_real_query_and_seals_it(
        team: Team, plausible: FakePlausible) -> None:
    await team.setup_workspace()
    out = await team.say("alice", connect_line(plausible))
    assert "Connected Plausible, goal 'Signup'" in out, out
    visits, goals = plausible.requests("POST", "/api/v2/query")
    assert visits.header("authorization") == f"Bearer {KEY}"
    assert visits.header("content-type") == "application/json"
    assert visits.json == {
        "site_id": "acme.com", "metrics": ["visits", "visitors"], "date_range": ["2026-11-22", "2026-11-23"],
        "dimensions": ["visit:utm_content"], "filters": [["is", "visit:utm_medium", ["social"]]],
        "pagination": {"limit": 10000, "offset": 0},
    }
    assert goals.json["metrics"] == ["visitors", "events"]
    assert goals.json["filters"] == [["is", "visit:utm_medium", ["social"]], ["is", "event:goal", ["Signup"]]]
    stored = source(team)
    assert stored is not None and stored.provider == "plausible" and stored.credentials is not None
    assert KEY.encode() not in stored.credentials and KEY not in str(stored.settings)
    assert team.herald.ctx.secrets.open(stored.credentials) == {"key": KEY}
    shown = await team.say("bob", "/analytics")
    assert f"Site analytics: Plausible ({plausible.url} site acme.com), goal 'Signup'; key stored encrypted" in shown
    assert KEY not in shown


@pytest.mark.parametrize(("line", "words"), [
    ("/analytics connect matomo url=https://m.example key=k site=x", ("isn't an analytics service", "plausible")),
    ("/analytics connect plausible url=URL site=acme.com", ("Missing key=",)),
    ("/analytics connect plausible url=URL key=KEY site=acme.com colour=red", ("doesn't take colour=",)),
    ("/analytics connect plausible url=ftp://x key=KEY site=acme.com", ("url= must be",)),
    ("/analytics connect plausible url=URL key=wrong site=acme.com", ("didn't accept", "refused the credentials",
                                                                      "401", "Nothing was saved")),
    ("/analytics connect plausible url=URL key=KEY site=other.com", ("refused the credentials",)),
    ("/analytics connect plausible url=URL key=KEY site=acme.com goal=Purchase", (
        "refused the query (400: The goal `Purchase` is not configured", "Nothing was saved")),
    ("/analytics connect ga4 property=abc credentials=/nowhere.json", ("property= is the GA4 property's number",)),
    ("/analytics connect ga4 property=123 credentials=/nowhere.json", ("can't read the service account file",)),
    ('/analytics connect ga4 property=123 credentials={"type": "x"}', ("isn't a service account key",)),
])
async def test_bad_analytics_input_gets_a_clear_answer_and_changes_nothing(
        team: Team, plausible: FakePlausible, line: str, words: tuple[str, ...]) -> None:
    await team.setup_workspace()
    await refused(team, "alice", line.replace("URL", plausible.url).replace("KEY", KEY), *words)


@pytest.mark.parametrize(("fault", "words"), [
    ({"status": 200, "raw": b"<html>maintenance</html>"}, ("answered something that isn't JSON",)),
    ({"status": 200, "body": {"results": [{"dimensions": ["post-1"]}]}}, ("isn't in the documented shape",)),
    ({"status": 200, "body": {"data": []}}, ("isn't in the documented shape", "no results list")),
    ({"status": 429, "headers": {"Retry-After": "60"}}, ("too many requests (429)",)),
    ({"status": 503}, ("server error (503)",)),
])
async def test_a_broken_or_busy_plausible_at_connect_stores_nothing(
        team: Team, plausible: FakePlausible, fault: dict[str, object], words: tuple[str, ...]) -> None:
    await team.setup_workspace()
    plausible.fail("POST", "/api/v2/query", **fault)  # type: ignore[arg-type]
    await refused(team, "alice", connect_line(plausible), "Nothing was saved", *words)


async def test_a_key_typed_in_a_group_is_refused_removed_and_not_stored(team: Team, plausible: FakePlausible) -> None:
    await team.setup_workspace()
    group = ChatRef("console", "console", title="team room", private=False)
    before = team.snapshot()
    reply = await dispatch.handle(team.herald.ctx, Command(
        "analytics", Actor("console", "alice", "alice"), group, text=connect_line(plausible).split(" ", 1)[1]))
    assert reply.error and reply.delete_command and "private chat" in reply.text
    assert team.snapshot() == before
    assert not plausible.seen


async def test_a_key_in_a_group_with_a_typo_in_the_command_name_is_caught(team: Team) -> None:
    await team.setup_workspace()
    group = ChatRef("console", "console", title="team room", private=False)
    before = team.snapshot()
    reply = await dispatch.handle(team.herald.ctx, Command(
        "analytic", Actor("console", "alice", "alice"), group,
        text="connect plausible url=https://plausible.io key=hunter2 site=acme.com"))
    assert reply.error and reply.delete_command and team.snapshot() == before


async def test_only_admins_connect_or_turn_analytics_off(team: Team, plausible: FakePlausible) -> None:
    await team.setup_workspace()
    await refused(team, "bob", connect_line(plausible), "admin")
    assert not plausible.seen
    await team.say("alice", connect_line(plausible))
    await refused(team, "bob", "/analytics off", "admin")
    out = await team.say("alice", "/analytics off")
    assert "Plausible is disconnected" in out and source(team) is None
    assert "No site analytics connected" in await team.say("bob", "/analytics")


async def test_campaign_report_and_stats_show_clicks_visits_and_conversions(
        site: Site, plausible: FakePlausible, clock: FakeClock) -> None:  # noqa: F811
    team = site.team
    first, _card = await publish(team, "Dealers https://cars.acme.com/dealers campaign=spring")
    x_text, masto_text = sent(site)
    assert f"utm_content=post-{first}" not in x_text  # the short link hides the tags; they are on its target
    for n, address in enumerate(("198.51.100.7", "192.0.2.8", "192.0.2.9")):
        await site.follow(SHORT_RE.findall(x_text if n < 2 else masto_text)[0], BROWSER, address=address)
    await site.web.redirects.drain()
    await team.say("alice", connect_line(plausible))
    plausible.seen.clear()
    plausible.visits = [  # each account's links have their own utm_content; Herald sums a post's accounts
        Visit(f"post-{first}-acme-x", visitor="a"), Visit(f"post-{first}-acme-masto", visitor="b", goals=("Signup",)),
        Visit(f"post-{first}", visitor="a"),  # tagged before the account was in utm_content: still the post's
        Visit("post-999-acme-x", visitor="z"),  # not a post of this workspace
        Visit(f"post-{first}-acme-x", medium="email", visitor="m"),  # another medium: not Herald's links
    ]
    assert "not read yet" in await team.say("bob", f"/stats {first}")

    assert await read_traffic(team.herald.ctx) == 1
    visits, goals = plausible.requests("POST", "/api/v2/query")
    assert visits.json["date_range"] == ["2026-11-23", "2026-11-23"]  # from the day the post went out to today
    assert goals.json["filters"][-1] == ["is", "event:goal", ["Signup"]]
    stats = await team.say("bob", f"/stats {first}")
    assert "Clicks → visits → conversions: 3 → 3 → 1 (33.3% of visits converted) (Plausible, goal 'Signup'" in stats
    assert "  Visits per account: acme-masto 1 (1 converted) · acme-x 1 (0 converted)" in stats, stats
    exported = parse((await export(team, "bob", "day")).attachment.data)  # type: ignore[union-attr]
    assert {r["account"]: (r["site_visits"], r["site_conversions"]) for r in exported} == {
        "acme-x": ("1", "0"), "acme-masto": ("1", "1")}
    second, _card = await publish(team, "Test drives https://cars.acme.com/drive campaign=spring")
    plausible.visits.append(Visit(f"post-{second}-acme-masto", visitor="c", goals=("Signup",)))

    # the read budget: nothing is asked again before the next reading time (10 minutes: the posts are new)
    assert await read_traffic(team.herald.ctx) == 0 and len(plausible.seen) == 2
    clock.advance(minutes=10)
    assert await read_traffic(team.herald.ctx) == 1 and len(plausible.seen) == 4
    report = await team.say("bob", "/report campaign spring")
    assert "Clicks → visits → conversions: 3 → 4 → 2 (50.0% of visits converted) (Plausible, goal 'Signup'" in report
    assert f"  #{first}: 3 → 3 → 1" in report and f"  #{second}: 0 → 1 → 1" in report
    # the period report and the digest say it for the period's posts too
    week = await team.say("bob", "/report week")
    assert "Clicks → visits → conversions: 3 → 4 → 2 (50.0% of visits converted) (Plausible, goal 'Signup'" in week, week
    await team.say("alice", "/digest daily 22:00")
    clock.advance(hours=14)
    (digest,) = [c for c in await team.printed(send_digests(team.herald.ctx)) if c.startswith("🗞 Daily digest")]
    assert "Clicks → visits → conversions: 3 → 4 → 2 (50.0% of visits converted) (Plausible, goal 'Signup'" in digest
    with team.herald.db.session() as session:
        assert sorted((t.post_id, t.account, t.visits, t.conversions) for t in session.exec(select(PostTraffic))) == [
            (first, "", 1, 0), (first, "acme-masto", 1, 1), (first, "acme-x", 1, 0), (second, "acme-masto", 1, 1)]


async def test_a_429_or_a_refused_key_while_reading_waits_and_says_why(
        team: Team, plausible: FakePlausible, clock: FakeClock) -> None:
    await team.setup_workspace()
    post_id = await team.approved_post("Dealers https://cars.acme.com/dealers campaign=spring")
    await team.say("alice", f"/publish {post_id}")
    await team.say("alice", connect_line(plausible, goal=None))
    plausible.seen.clear()
    plausible.fail("POST", "/api/v2/query", status=429, headers={"Retry-After": "1800"})
    assert await read_traffic(team.herald.ctx) == 0
    shown = await team.say("alice", "/analytics")
    assert "⚠ The last read failed: Plausible says too many requests (429)" in shown
    clock.advance(minutes=20)  # the post's cadence says 10 minutes, Plausible said 30
    assert await read_traffic(team.herald.ctx) == 0 and len(plausible.seen) == 1
    clock.advance(minutes=11)
    assert await read_traffic(team.herald.ctx) == 1
    assert "failed" not in await team.say("alice", "/analytics")
    stats = await team.say("bob", f"/stats {post_id}")
    assert "Clicks → visits → conversions: 0 → 0 → — (Plausible, no goal set" in stats

    plausible.key = "rotated"  # the team revoked the key
    clock.advance(hours=1)
    captured: list[str] = []
    team.herald.console.captured = captured
    try:
        assert await read_traffic(team.herald.ctx) == 0
        clock.advance(days=1)
        assert await read_traffic(team.herald.ctx) == 0  # looked again a day later: still refused, told once
    finally:
        team.herald.console.captured = None
    assert len(captured) == 1 and "⚠ Plausible refused the credentials (401" in captured[0], captured
    assert "/analytics connect again" in captured[0]
    shown = await team.say("alice", "/analytics")
    assert "⚠ The last read failed: Plausible refused the credentials (401" in shown
    assert source(team) is not None and (source(team).due_at - clock.now()) == timedelta(days=1)  # type: ignore[union-attr,operator]


# --- Google Analytics 4 ---------------------------------------------------------------------------------------


@pytest.fixture
async def ga4(team: Team) -> AsyncIterator[FakeGA4]:
    async with FakeGA4(property_id="123456789", key_events=("sign_up",)) as server:
        analytics = team.herald.ctx.analytics
        assert isinstance(analytics, HttpAnalytics)
        analytics.ga4_api_url = server.url  # as HERALD_GA4_API_URL sets it
        yield server


async def test_ga4_connects_with_a_service_account_file_and_reads_sessions_and_key_events(
        team: Team, ga4: FakeGA4, clock: FakeClock, tmp_path: Path) -> None:
    await team.setup_workspace()
    post_id = await team.approved_post("Dealers https://cars.acme.com/dealers campaign=spring")
    await team.say("alice", f"/publish {post_id}")
    key_file = tmp_path / "herald-reader.json"
    key_file.write_text(json.dumps(ga4.service_account()))
    out = await team.say("alice", f"/analytics connect ga4 property=123456789 credentials={key_file} goal=sign_up")
    assert "Connected Google Analytics 4, goal 'sign_up'" in out, out
    token, report = ga4.seen
    assert token.path == "/token" and token.form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert report.path == "/v1beta/properties/123456789:runReport"
    assert report.header("authorization") == "Bearer ya29.fake-1"
    assert report.json == {
        "dateRanges": [{"startDate": "2026-11-22", "endDate": "2026-11-23"}],
        "dimensions": [{"name": "sessionManualAdContent"}],
        "metrics": [{"name": "sessions"}, {"name": "totalUsers"}, {"name": "keyEvents:sign_up"}],
        "dimensionFilter": {"filter": {"fieldName": "sessionMedium",
                                       "stringFilter": {"matchType": "EXACT", "value": "social"}}},
        "limit": "10000",
    }
    assert "Google Analytics 4 (property 123456789), goal 'sign_up'; service account key stored encrypted" \
        in await team.say("bob", "/analytics")
    stored = source(team)
    assert stored is not None and stored.credentials is not None and b"PRIVATE KEY" not in stored.credentials
    assert "private_key" not in json.dumps(stored.settings)

    ga4.sessions = [Visit(f"post-{post_id}", visitor="a", goals=("sign_up",)), Visit(f"post-{post_id}", visitor="a"),
                    Visit(f"post-{post_id}", medium="cpc", visitor="p"), Visit("(not set)", visitor="x")]
    ga4.seen.clear()
    assert await read_traffic(team.herald.ctx) == 1
    assert [s.path for s in ga4.seen] == ["/v1beta/properties/123456789:runReport"]  # the hour's token is kept
    stats = await team.say("bob", f"/stats {post_id}")
    assert "Clicks → visits → conversions: 0 → 2 → 1 (50.0% of visits converted) (Google Analytics 4, goal 'sign_up'" \
        in stats, stats
    report_text = await team.say("bob", "/report campaign spring")
    assert "Clicks → visits → conversions: 0 → 2 → 1" in report_text
    clock.advance(hours=2)  # the token has run out: a new one is asked for
    assert await read_traffic(team.herald.ctx) == 1
    assert [s.path for s in ga4.seen][-2:] == ["/token", "/v1beta/properties/123456789:runReport"]


async def test_ga4_takes_the_service_account_json_inline_in_a_private_chat(team: Team, ga4: FakeGA4) -> None:
    await team.setup_workspace()
    inline = json.dumps(ga4.service_account())
    out = await team.say("alice", f"/analytics connect ga4 property=123456789 credentials={inline}")
    assert "Connected Google Analytics 4 (no goal=: visits only)" in out, out
    assert [m["name"] for m in ga4.requests("POST", "/v1beta/*")[0].json["metrics"]] == ["sessions", "totalUsers"]
    group = ChatRef("console", "console", title="team room", private=False)
    await team.say("alice", "/analytics off")
    before = team.snapshot()
    reply = await dispatch.handle(team.herald.ctx, Command(
        "analytics", Actor("console", "alice", "alice"), group,
        text=f"connect ga4 property=123456789 credentials={inline}"))
    assert reply.error and reply.delete_command and team.snapshot() == before


async def test_ga4_refusals_are_said_plainly_and_store_nothing(team: Team, ga4: FakeGA4, tmp_path: Path) -> None:
    await team.setup_workspace()
    account = ga4.service_account()
    good = tmp_path / "good.json"
    good.write_text(json.dumps(account))
    other = tmp_path / "other.json"  # a key Google doesn't know (deleted, or another account's)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other.write_text(json.dumps({**account, "private_key": stranger.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()}))
    await refused(team, "alice", f"/analytics connect ga4 property=123456789 credentials={other}",
                  "refused the credentials (400: invalid_grant: Invalid JWT Signature.)", "Nothing was saved")
    await refused(team, "alice", f"/analytics connect ga4 property=999 credentials={good}",
                  "refused the credentials (403: User does not have sufficient permissions", "Nothing was saved")
    await refused(team, "alice", f"/analytics connect ga4 property=123456789 credentials={good} goal=purchase",
                  "refused the query (400: Field keyEvents:purchase is not a valid metric", "Nothing was saved")
    ga4.fail("POST", "/v1beta/properties/*", status=200, body={"rows": [{"dimensionValues": [{"value": "post-1"}]}]})
    await refused(team, "alice", f"/analytics connect ga4 property=123456789 credentials={good}",
                  "isn't in the documented shape")
    ga4.fail("POST", "/v1beta/properties/*", status=429, body={"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
                                                                         "message": "Exhausted property tokens"}})
    await refused(team, "alice", f"/analytics connect ga4 property=123456789 credentials={good}",
                  "too many requests (429)")
