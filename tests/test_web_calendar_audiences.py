# ruff: noqa: F811  (the web fixtures are imported from tests/web_kit.py and taken by name)
"""The plan on the web, per audience: `/calendar audience:<name>` (a calendar narrowed to the posts that reach an
audience, at its time in its zone) and a post scheduled at each audience's local time (`/schedule 12 tue 9:00
local`) shown once per audience moment in the workspace calendar, its post page and its ICS feed. Pages in a real
headless Chromium, feeds read back with `icalendar`.

The team works in Europe/Paris; FakeClock at Monday 23 Nov 2026, 10:00 in Paris. Audiences: south (Madrid) and
north (Oslo) share 09:00 CET, us-east's 09:00 EST is 15:00 for the team, and nz's Tuesday 09:00 NZDT is still
Monday 21:00 for the team.
"""

from __future__ import annotations

from datetime import UTC, datetime

import icalendar
from sqlmodel import select

from storage.models import Audience, CalendarLink, Delivery, Post, PostState, Workspace
from tests.conftest import refused
from tests.web_kit import PUBLIC, Browser, Site, address, browser, chromium, site  # noqa: F401

AUDIENCES = {"south": ("acme-es", "Europe/Madrid"), "north": ("acme-no", "Europe/Oslo"),
             "us-east": ("acme-us", "America/New_York"), "nz": ("acme-nz", "Pacific/Auckland")}
HOST = "plan.acme.example"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def number(out: str) -> int:
    return int(out.split("#", 1)[1].split(" ", 1)[0].rstrip("."))


async def scheduled(site: Site, text: str, when: str) -> int:
    team = site.team
    post = number(await team.say("alice", f"/draft {text}"))
    await team.say("alice", f"/submit {post}")
    await team.say("bob", f"/approve {post}")
    out = await team.say("alice", f"/schedule {post} {when}")
    assert "scheduled for" in out, out
    return post


async def plan(site: Site) -> dict[str, int]:
    """Four audiences, each reached by its own account, and a plain account; a post at 09:00 local for every
    audience (with a variant for us-east), one for us-east only at one time, one for the plain account only."""
    team = site.team
    await team.setup_workspace(accounts=tuple(f"{account} like=x" for account, _tz in AUDIENCES.values())
                               + ("acme-plain like=bluesky",))
    for name, (account, tz) in AUDIENCES.items():
        out = await team.say("alice", f"/audience add {name} accounts={account} tz={tz} lang=en")
        assert out.startswith("Added audience"), out
    local = number(await team.say("alice", "/draft Winter sale: 20% off today campaign=winter "
                                            "to=audience:south,north,us-east,nz"))
    out = await team.say("alice", f"/variant {local} audience:us-east Winter sale, y'all: 20% off today")
    assert "variant for audience:us-east set" in out, out
    await team.say("alice", f"/submit {local}")
    await team.say("bob", f"/approve {local}")
    out = await team.say("alice", f"/schedule {local} tue 9:00 local")
    assert "09:00 in each audience's own zone" in out, out
    states = await scheduled(site, "Thanksgiving hours to=audience:us-east campaign=winter", "2026-11-26 18:00")
    plain = await scheduled(site, "Plain news to=acme-plain campaign=winter", "2026-11-25 10:00")
    return {"local": local, "states": states, "plain": plain}


async def feed(site: Site, page: str) -> icalendar.Calendar:
    answer = await site.http.get(site.local(page).removeprefix(site.base) + ".ics")
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/calendar")
    return icalendar.Calendar.from_ical(answer.content)


def cell(cells: list[str], day: int) -> str:
    (found,) = [c for c in cells if c.startswith(f"{day}\n")]
    return found


async def test_an_audience_calendar_lists_only_its_posts_at_its_own_time_in_its_zone(
        site: Site, browser: Browser) -> None:
    posts = await plan(site)
    team = site.team
    out = await team.say("alice", "/calendar audience:us-east")
    assert "🗓 The plan of audience us-east (America/New_York) on the web:" in out, out
    assert "It lists the posts that reach us-east, at their time in America/New_York." in out
    page = address(out, PUBLIC + "/calendar/")
    with team.herald.db.session() as session:
        link = session.exec(select(CalendarLink).where(CalendarLink.token == page.rsplit("/", 1)[1])).one()
        us_east = session.exec(select(Audience).where(Audience.name == "us-east")).one()
        assert link.audience_id == us_east.id and link.campaign is None
    assert address(await team.say("alice", "/calendar audience:US-EAST"), PUBLIC + "/calendar/") == page  # the same

    await browser.open(site.local(page))
    assert browser.title == "Acme: the plan · us-east · Herald"
    assert await browser.text("p.audience") == ("Audience us-east · America/New_York — the posts that reach audience us-east, "
                                                "at its time")
    cells = await browser.all_text("table.month td")
    tuesday = cell(cells, 24)
    # 09:00 in New York, not the team's 15:00 and not the earliest audience's (nz) time; the audience's own words
    assert tuesday.startswith(f"24\n#{posts['local']} 09:00 scheduled"), tuesday
    assert "15:00" not in tuesday and "team time" not in tuesday and "Winter sale, y'all: 20% off today" in tuesday
    thursday = cell(cells, 26)
    assert f"#{posts['states']}" in thursday and "12:00" in thursday, thursday  # 18:00 in Paris is 12:00 EST
    month = await browser.text("table.month")
    assert f"#{posts['plain']}" not in month and "Plain news" not in month  # it doesn't reach us-east
    assert month.count(f"#{posts['local']}") == 1  # once: only us-east's moment
    await browser.click_link("List")
    assert await browser.all_text("h3") == ["Tuesday 24 November", "Thursday 26 November"]
    await browser.shot("calendar-audience")

    # its post page: us-east's text and time only
    await browser.click_link(f"#{posts['local']}")
    assert await browser.all_text("section.account h3") == ["acme-us · us-east (sandbox)"]
    assert await browser.text("section.account pre") == "Winter sale, y'all: 20% off today"
    assert await browser.text("section.account p.time") == (
        "Goes out: Tue 24 Nov 2026 09:00 EST (America/New_York) — Tue 24 Nov 2026 15:00 CET (Europe/Paris) for the team")
    assert "Tue 24 Nov 2026 09:00 EST (America/New_York)" in await browser.text("main > p:nth-of-type(2)")
    await browser.open(site.local(page) + f"/post/{posts['plain']}")  # a post that doesn't reach us-east
    assert browser.title == "Not found · Herald"

    # its feed: us-east's moment, in its zone
    cal = await feed(site, page)
    assert [z["TZID"] for z in cal.walk("VTIMEZONE")] == ["America/New_York"]
    assert str(cal["X-WR-CALNAME"]) == "Acme: the plan · us-east"
    events = {str(e["UID"]): e for e in cal.walk("VEVENT")}
    assert set(events) == {f"post-{posts['local']}-us-east@{HOST}", f"post-{posts['states']}@{HOST}"}
    sale = events[f"post-{posts['local']}-us-east@{HOST}"]
    assert sale["DTSTART"].params["TZID"] == "America/New_York"
    assert sale.decoded("DTSTART").astimezone(UTC) == utc(2026, 11, 24, 14)
    assert sale.decoded("DTSTART").strftime("%H:%M") == "09:00"
    with team.herald.db.session() as session:
        own = session.exec(select(Delivery.due_at).where(Delivery.post_id == posts["local"])
                           .where(Delivery.audience_id == us_east.id)).one()
    assert own == utc(2026, 11, 24, 14)
    hours = events[f"post-{posts['states']}@{HOST}"]
    assert hours["DTSTART"].params["TZID"] == "America/New_York"
    assert hours.decoded("DTSTART").astimezone(UTC) == utc(2026, 11, 26, 17)

    # campaign and audience together: both narrow
    both = address(await team.say("alice", "/calendar winter audience:south"), PUBLIC + "/calendar/")
    events = (await feed(site, both)).walk("VEVENT")
    assert [str(e["UID"]) for e in events] == [f"post-{posts['local']}-south@{HOST}"]
    assert events[0]["DTSTART"].params["TZID"] == "Europe/Madrid"
    assert events[0].decoded("DTSTART").astimezone(UTC) == utc(2026, 11, 24, 8)
    assert [str(e["UID"]) for e in (await feed(site, address(await team.say("alice", "/calendar spring audience:south"),
                                                             PUBLIC + "/calendar/"))).walk("VEVENT")] == []


async def test_the_workspace_calendar_shows_each_audience_moment_of_a_post_at_local_times(
        site: Site, browser: Browser) -> None:
    posts = await plan(site)
    local = posts["local"]
    page = address(await site.team.say("alice", "/calendar"), PUBLIC + "/calendar/")
    await browser.open(site.local(page))
    cells = await browser.all_text("table.month td")
    # nz's Tuesday 09:00 is Monday 21:00 for the team: it sits on Monday
    monday = cell(cells, 23)
    assert f"#{local}" in monday and "21:00" in monday and "nz 09:00 NZDT (21:00 team time)" in monday, monday
    tuesday = cell(cells, 24)
    assert tuesday.count(f"#{local}") == 2, tuesday  # south and north share one moment, us-east has its own
    assert "north 09:00 CET · south 09:00 CET (09:00 team time)" in tuesday, tuesday
    assert "us-east 09:00 EST (15:00 team time)" in tuesday
    assert tuesday.index("north 09:00 CET") < tuesday.index("us-east 09:00 EST")  # in time order
    assert f"#{posts['plain']}" in cell(cells, 25) and "team time" not in cell(cells, 25)  # one time for all
    await browser.click_link("List")
    assert await browser.all_text("h3") == ["Monday 23 November", "Tuesday 24 November", "Wednesday 25 November",
                                            "Thursday 26 November"]
    entries = await browser.all_text("ul.entries li")
    assert [e.split("\n")[0] for e in entries if e.startswith(f"#{local}")] == [
        f"#{local} nz 09:00 NZDT (21:00 team time) scheduled sandbox · winter",
        f"#{local} north 09:00 CET · south 09:00 CET (09:00 team time) scheduled sandbox · winter",
        f"#{local} us-east 09:00 EST (15:00 team time) scheduled sandbox · winter",
    ], entries
    await browser.shot("calendar-local-times")
    await browser.click_link("Week")
    assert (await browser.text("table.month")).count(f"#{local}") == 3

    # the post page: each audience's text and its own time
    await browser.click_link(f"#{local}")
    shown = dict(zip(await browser.all_text("section.account h3"), await browser.all_text("section.account p.time"),
                     strict=True))
    assert shown == {
        "acme-es · south (sandbox)": "Goes out: Tue 24 Nov 2026 09:00 CET (Europe/Madrid) — Tue 24 Nov 2026 09:00 CET "
                               "(Europe/Paris) for the team",
        "acme-no · north (sandbox)": "Goes out: Tue 24 Nov 2026 09:00 CET (Europe/Oslo) — Tue 24 Nov 2026 09:00 CET "
                               "(Europe/Paris) for the team",
        "acme-nz · nz (sandbox)": "Goes out: Tue 24 Nov 2026 09:00 NZDT (Pacific/Auckland) — Mon 23 Nov 2026 21:00 CET "
                            "(Europe/Paris) for the team",
        "acme-us · us-east (sandbox)": "Goes out: Tue 24 Nov 2026 09:00 EST (America/New_York) — Tue 24 Nov 2026 15:00 CET "
                                 "(Europe/Paris) for the team",
    }
    texts = dict(zip(await browser.all_text("section.account h3"), await browser.all_text("section.account pre"),
                     strict=True))
    assert texts["acme-us · us-east (sandbox)"] == "Winter sale, y'all: 20% off today"
    assert texts["acme-es · south (sandbox)"] == "Winter sale: 20% off today"
    assert "09:00 in each audience's own zone" in await browser.text("main > p:nth-of-type(2)")

    # the feed: one event per moment, each in its audience's zone, the same UIDs on every refresh
    cal = await feed(site, page)
    events = {str(e["UID"]): e for e in cal.walk("VEVENT")}
    moments = {f"post-{local}-nz@{HOST}": ("Pacific/Auckland", utc(2026, 11, 23, 20)),
               f"post-{local}-north-south@{HOST}": ("Europe/Oslo", utc(2026, 11, 24, 8)),
               f"post-{local}-us-east@{HOST}": ("America/New_York", utc(2026, 11, 24, 14))}
    assert set(events) == set(moments) | {f"post-{posts['states']}@{HOST}", f"post-{posts['plain']}@{HOST}"}
    for uid, (tz, at) in moments.items():
        assert events[uid]["DTSTART"].params["TZID"] == tz, uid
        assert events[uid].decoded("DTSTART").astimezone(UTC) == at, uid
        assert events[uid].decoded("DTSTART").strftime("%H:%M") == "09:00", uid
        assert str(events[uid]["URL"]) == f"{page}/post/{local}"
    assert str(events[f"post-{local}-us-east@{HOST}"]["SUMMARY"]).startswith(f"#{local} us-east 09:00 EST: ")
    assert events[f"post-{posts['plain']}@{HOST}"]["DTSTART"].params["TZID"] == "Europe/Paris"
    assert {z["TZID"] for z in cal.walk("VTIMEZONE")} == {"Pacific/Auckland", "Europe/Oslo", "America/New_York",
                                                          "Europe/Paris"}
    again = await feed(site, page)
    assert sorted(str(e["UID"]) for e in again.walk("VEVENT")) == sorted(events)

    # sent: each moment stays where it was
    for _uid, (_tz, at) in sorted(moments.items(), key=lambda item: item[1][1]):  # each moment comes, and goes out
        await site.team.tick(seconds=(at - site.team.clock.now()).total_seconds() + 60)
    assert site.team.post(local).state == PostState.PUBLISHED.value
    after = {str(e["UID"]): e.decoded("DTSTART").astimezone(UTC) for e in (await feed(site, page)).walk("VEVENT")}
    assert {uid: after[uid] for uid in moments} == {uid: at for uid, (_tz, at) in moments.items()}


async def test_calendar_audience_refusals_change_nothing(site: Site) -> None:
    team = site.team
    await plan(site)
    await refused(team, "alice", "/calendar audience:west", "There's no audience 'west'", "us-east")
    await refused(team, "alice", "/calendar audience:south audience:north", "One audience per calendar address",
                  "/calendar audience:south")
    await refused(team, "alice", "/calendar audience:", "Which audience?", "/calendar audience:south")
    await refused(team, "bob", "/calendar audience:south")  # an approver may not hand the plan out
    assert (await team.say("alice", "/audience add spare accounts=acme-plain tz=UTC lang=en")).startswith("Added")
    out = await team.say("alice", "/audience remove spare")
    assert "spare" in out and not out.startswith("✋"), out
    await refused(team, "alice", "/calendar audience:spare", "There's no audience 'spare'")


async def test_revoke_ends_audience_calendars_and_no_other_workspace_is_reachable(
        site: Site, browser: Browser) -> None:
    posts = await plan(site)
    team = site.team
    south = address(await team.say("alice", "/calendar audience:south"), PUBLIC + "/calendar/")
    # another workspace with an audience of the same name and a post reaching it at a local time
    with team.herald.db.session() as session:
        other = Workspace(name="Rival", timezone="UTC")
        session.add(other)
        session.flush()
        theirs = Audience(workspace_id=other.id, name="south", timezone="Europe/Madrid", language="es",
                          created_at=team.clock.now())
        session.add(theirs)
        session.flush()
        secret = Post(workspace_id=other.id, author_platform="console", author_user_id="eve", author_name="eve",
                      text="Rival secret launch", state=PostState.SCHEDULED.value,
                      due_at=utc(2026, 11, 24, 8), due_local="2026-11-24 09:00")
        session.add(secret)
        session.flush()
        secret_id = secret.id
        # a link of ours pointing at their audience (never made by /calendar) opens nothing
        session.add(CalendarLink(workspace_id=session.exec(select(Workspace).where(Workspace.name == "Acme")).one().id,
                                 audience_id=theirs.id, token="F" * 32))
        session.commit()
    await browser.open(site.local(south))
    assert "Rival" not in await browser.text("main") and f"#{posts['local']}" in await browser.text("table.month")
    await browser.open(site.local(south) + f"/post/{secret_id}")
    assert browser.title == "Not found · Herald"
    answer = await site.http.get("/calendar/" + "F" * 32)
    assert answer.status_code == 404 and "Rival" not in answer.text

    out = await team.say("alice", "/calendar revoke")
    assert "now answers 'not found'" in out
    for gone in (south, south + ".ics", south + f"/post/{posts['local']}"):
        answer = await site.http.get(site.local(gone).removeprefix(site.base))
        assert answer.status_code == 404, gone
        assert "Winter" not in answer.text
    with team.herald.db.session() as session:
        assert session.exec(select(CalendarLink).where(CalendarLink.revoked_at == None)  # noqa: E711
                            .where(CalendarLink.audience_id != None)).all() == []  # noqa: E711
