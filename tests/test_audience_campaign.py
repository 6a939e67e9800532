"""The audiences issue's own scenario, end to end through the console: a soft-drink campaign tailored to three
audiences (south: Madrid, Spanish, hot; north: Oslo, Norwegian, cold; us-east: New York, English), one post with a
variant per audience, one approval, `tue 9:00 local`. Each audience's delivery goes out at 09:00 of its own zone
(injected clock) exactly once, with its own text, its own landing page tagged utm_term=<audience> behind its own
short link; people click; `/report … by audience` and `/report audience <name>` compare the audiences with the
sandbox's numbers, read through the real metrics poll.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlmodel import select

from handlers.engagement.metrics import poll_metrics
from storage.models import Account, Audience, Delivery, SandboxPost, ShortLink
from tests.conftest import FakeClock, Team, running_team
from tests.test_audience_reports import click, engaged, readings

PUBLIC = "https://go.fizz.example"
TEXTS = {
    "south": "Fizz está fría y refrescante: el mejor remedio para el calor de este verano",
    "north": "Fizz smaker av varme sommerdager, selv når det er kaldt og mørkt ute",
    "us-east": "Fizz is ice cold and ready for your lunch break, grab one today",
}
LANDING = {"south": "https://fizz.example/es/tiendas", "north": "https://fizz.example/no/butikker",
           "us-east": "https://fizz.example/us/stores"}


@pytest.fixture
async def team(db_url: str, clock: FakeClock) -> AsyncIterator[Team]:
    async with running_team(db_url, clock, HERALD_PUBLIC_URL=PUBLIC) as team:
        yield team


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def sent(team: Team) -> list[tuple[str, str]]:
    """(account, text) of every post the sandbox published, in order."""
    with team.herald.db.session() as session:
        rows = session.exec(select(Account.name, SandboxPost.text).where(SandboxPost.account_id == Account.id)
                            .order_by(SandboxPost.id)).all()
    return [(name, text) for name, text in rows]


async def tick_to(team: Team, at: datetime) -> str:
    return await team.tick(seconds=(at - team.clock.now()).total_seconds())


async def test_a_soft_drink_campaign_reaches_each_audience_at_nine_its_time_with_its_own_words_and_page(
        team: Team) -> None:
    for line in ("/setup Fizz", "/timezone Europe/Paris", "/connect sandbox name=fizz-es like=x",
                 "/connect sandbox name=fizz-no like=bluesky", "/connect sandbox name=fizz-us like=x",
                 "/role bob approver", "/utm on", "/links on"):
        out = await team.say("alice", line)
        assert not out.startswith("✋"), (line, out)
    for line in (f"/audience add south accounts=fizz-es tz=Europe/Madrid lang=es link={LANDING['south']} country=ES "
                 'notes="hot climate"',
                 f"/audience add north accounts=fizz-no tz=Europe/Oslo lang=nb link={LANDING['north']} country=NO "
                 'notes="cold climate"',
                 f"/audience add us-east accounts=fizz-us tz=America/New_York lang=en link={LANDING['us-east']} "
                 "country=US"):
        assert (await team.say("alice", line)).startswith("Added audience"), line

    out = await team.say("alice", "/draft Fizz: summer in a bottle to=audience:south,north,us-east campaign=summer")
    post_id = int(out.split("#", 1)[1].split(" ", 1)[0].rstrip("."))
    for name, text in TEXTS.items():
        out = await team.say("alice", f"/variant {post_id} audience:{name} {text}")
        assert f"variant for audience:{name} set" in out, out
    assert "⚠" not in out  # each variant reads in its audience's language (nb is checked as Norwegian)
    await team.say("alice", f"/submit {post_id}")
    card = await team.say("bob", f"/approve {post_id}")
    assert "approved" in card.lower(), card
    out = await team.say("alice", f"/schedule {post_id} tue 9:00 local")
    assert "  south: Tue 24 Nov 2026 09:00 CET (Europe/Madrid)" in out, out
    assert "  north: Tue 24 Nov 2026 09:00 CET (Europe/Oslo)" in out
    assert "  us-east: Tue 24 Nov 2026 09:00 EST (America/New_York) — Tue 24 Nov 2026 15:00 CET (Europe/Paris)" in out

    queue = (await team.say("alice", "/queue")).splitlines()
    assert ("  Tue 24 Nov 2026 09:00 EST (America/New_York) · us-east · Tue 24 Nov 2026 15:00 CET (Europe/Paris) for "
            f"the team · #{post_id} · fizz-us · Fizz is ice cold and ready for your lun…") in queue, queue
    assert any(" · south · " in line and line.endswith("· fizz-es · Fizz está fría y refrescante: el mejor …")
               for line in queue), queue

    # 09:00 in Madrid and Oslo is 08:00 UTC; 09:00 in New York is 14:00 UTC
    await tick_to(team, utc(2026, 11, 24, 7, 59))
    assert sent(team) == []
    await tick_to(team, utc(2026, 11, 24, 8))
    assert sorted(name for name, _text in sent(team)) == ["fizz-es", "fizz-no"]
    await tick_to(team, utc(2026, 11, 24, 13, 59))
    assert len(sent(team)) == 2
    said = await tick_to(team, utc(2026, 11, 24, 14))
    assert f"📣 #{post_id} is published on all 3 account(s)" in said, said
    await team.tick(hours=3)
    assert sorted(name for name, _text in sent(team)) == ["fizz-es", "fizz-no", "fizz-us"]  # each exactly once

    # each audience read its own words and went to its own landing page, tagged with its name, via its short link
    by_account = dict(sent(team))
    with team.herald.db.session() as session:
        audiences = {a.id: a.name for a in session.exec(select(Audience)).all()}
        rows = session.exec(select(Delivery, Account).where(Delivery.post_id == post_id)
                            .where(Delivery.account_id == Account.id)).all()
        links = {(link.account_id, link.audience_id): link for link in session.exec(select(ShortLink)).all()}
    assert {audiences[d.audience_id] for d, _a in rows} == set(TEXTS)
    for delivery, account in rows:
        name = audiences[delivery.audience_id]
        text = by_account[account.name]
        link = links[(account.id, delivery.audience_id)]
        assert text.startswith(TEXTS[name]) and text.endswith(f"{PUBLIC}/r/{link.code}"), text
        target = urlsplit(link.target)
        assert f"{target.scheme}://{target.netloc}{target.path}" == LANDING[name]
        tags = parse_qs(target.query)
        assert tags["utm_term"] == [name] and tags["utm_campaign"] == ["summer"], link.target
        assert delivery.sent_at == (utc(2026, 11, 24, 14) if name == "us-east" else utc(2026, 11, 24, 8))

    # people click; the numbers are read; the audiences are compared
    click(team, post_id, "fizz-es", people=5)
    click(team, post_id, "fizz-no", people=2, first=30)
    click(team, post_id, "fizz-us", people=7, first=60)
    assert await poll_metrics(team.herald.ctx) == 3
    numbers = readings(team, post_id)
    of = {"south": numbers["fizz-es"], "north": numbers["fizz-no"], "us-east": numbers["fizz-us"]}
    people = {"south": 5, "north": 2, "us-east": 7}
    lines = (await team.say("bob", "/report week by audience")).splitlines()
    assert lines[2] == "Audience | Zone | Posts | Views | Engagements | Rate | Clicks"
    zones = {"south": "Europe/Madrid", "north": "Europe/Oslo", "us-east": "America/New_York"}
    rows_shown = set(lines[3:6])
    for name, m in of.items():
        views, score = m.impressions or 0, engaged(m)
        assert f"{name} | {zones[name]} | 1 | {views:,} | {score:,} | {100 * score / views:.1f}% | {people[name]}" \
            in rows_shown, (name, lines)
    south = (await team.say("bob", "/report audience south week")).splitlines()
    assert south[0].startswith("📈 Report for audience south (Europe/Madrid, es)")
    assert "Short-link clicks on these posts: 5 by people" in "\n".join(south) and "  Per account: fizz-es 5" in south, south
    views, score = of["south"].impressions or 0, engaged(of["south"])
    assert f"Engagements: {score:,} (before: 0, new) · views: {views:,} (before: 0, new) · engagement rate: " \
           f"{100 * score / views:.1f}% (before: –)" in south
