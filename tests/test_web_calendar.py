# ruff: noqa: F811  (the web fixtures are imported from tests/web_kit.py and taken by name)
"""The plan on the web: /calendar's secret address, its month, week and list pages and a post's page, driven in a
real headless Chromium, and the ICS feed read back with `icalendar` through a real HTTP client.

A real Herald (console chat, FakeClock at Monday 23 Nov 2026, 10:00 in Paris) serves its one web app on
127.0.0.1; nothing sleeps.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import icalendar
from PIL import Image
from sqlmodel import select

from handlers.posts.render import render
from storage.models import Account, CalendarLink, Post, PostState, Workspace
from tests.test_chats_and_people import png, run
from tests.web_kit import PUBLIC, Browser, Site, address, browser, chromium, site  # noqa: F401


def number(out: str) -> int:
    return int(out.split("#", 1)[1].split(" ", 1)[0].rstrip("."))


async def plan(site: Site, tmp_path: Path) -> dict[str, int]:
    """alice's workspace with a scheduled post (with a picture), one in review, one draft and one published."""
    team = site.team
    await team.setup_workspace()
    await team.say("alice", "/role carol editor")
    photo = tmp_path / "photo.png"
    photo.write_bytes(png((40, 30)))
    spring = number(await team.say("alice", f"/draft {photo} Our spring collection is here campaign=spring"))
    await team.say("alice", f"/submit {spring}")
    await team.say("bob", f"/approve {spring}")
    out = await team.say("alice", f"/schedule {spring} 2026-11-25 10:00")
    assert "scheduled for" in out, out
    review = number(await team.say("alice", "/draft Winter <teaser> & more campaign=winter"))
    await team.say("alice", f"/schedule {review} 2026-11-27 18:30")
    await team.say("alice", f"/submit {review}")
    draft = number(await team.say("alice", "/draft Not ready yet"))
    await team.say("alice", f"/schedule {draft} 2026-11-26 09:00")
    published = number(await team.say("alice", "/draft Out already campaign=spring"))
    await team.say("alice", f"/submit {published}")
    await team.say("bob", f"/approve {published}")
    out = await team.say("alice", f"/publish {published}")
    assert "published" in out, out
    return {"spring": spring, "review": review, "draft": draft, "published": published}


async def test_the_calendar_shows_the_plan_by_month_week_and_list_and_each_post_as_each_account_receives_it(
        site: Site, browser: Browser, tmp_path: Path) -> None:
    posts = await plan(site, tmp_path)
    out = await site.team.say("carol", "/calendar")
    page = address(out, PUBLIC + "/calendar/")
    assert "webcal://plan.acme.example/calendar/" in out and out.count(".ics") == 1, out

    await browser.open(site.local(page))
    assert browser.title == "Acme: the plan · Herald"
    assert await browser.text("#period") == "November 2026"
    month = await browser.text("table.month")
    assert f"#{posts['spring']}" in month and f"#{posts['review']}" in month and f"#{posts['published']}" in month
    assert f"#{posts['draft']}" not in month  # a draft is not in the plan
    cells = await browser.all_text("td.today")
    assert len(cells) == 1 and f"#{posts['published']}" in cells[0]  # published today, 10:00
    (wed,) = [c for c in await browser.all_text("table.month td") if c.startswith("25\n")]
    assert "10:00" in wed and "scheduled" in wed and "sandbox" in wed and "spring" in wed, wed
    assert "Our spring collection is here" in wed
    (fri,) = [c for c in await browser.all_text("table.month td") if c.startswith("27\n")]
    assert "18:30" in fri and "in review" in fri and "Winter <teaser> & more" in fri, fri  # escaped, shown as written
    assert await browser.script("return document.documentElement.lang") == "en"
    await browser.shot("calendar-month")

    await browser.click_link("List")
    assert [h for h in await browser.all_text("h3")] == ["Monday 23 November", "Wednesday 25 November",
                                                         "Friday 27 November"]
    await browser.shot("calendar-list")
    await browser.click_link("Week")
    assert (await browser.text("#period")) == "Week of 23 November 2026"
    assert len(await browser.all_text("table.month td")) == 7
    await browser.click_link("Next week →")
    assert (await browser.text("#period")) == "Week of 30 November 2026"
    assert f"#{posts['spring']}" not in await browser.text("table.month")
    await browser.click_link("Month")
    await browser.click_link("Next month →")
    assert await browser.text("#period") == "December 2026"

    # a post opens to its exact text per account and its picture
    await browser.click_link("← Previous month")
    await browser.click_link(f"#{posts['spring']}")
    assert browser.title == f"Acme: post #{posts['spring']} · Herald"
    shown = dict(zip(await browser.all_text("section.account h3"), await browser.all_text("section.account pre"),
                     strict=True))
    with site.team.herald.db.session() as session:
        post = session.get(Post, posts["spring"])
        ws = session.get(Workspace, post.workspace_id)
        accounts = session.exec(select(Account).order_by(Account.id)).all()
        exact = {f"{a.name} ({a.network})": render(site.team.herald.ctx, post, a, ws, checked=False,
                                                   session=session).text for a in accounts}
    assert shown == exact and len(shown) == 2
    assert await browser.image_width(".media img") == 40  # the picture loads from Herald's own /media, as the CSP allows
    await browser.run(lambda: browser.driver.find_element("css selector", "section.account summary").click())
    assert await browser.image_width("img.preview") == 600  # an approximate preview, drawn by Herald
    assert "Approximate preview" in await browser.script("return document.querySelector('img.preview').alt")
    assert await browser.script("return document.querySelectorAll('img:not([alt])').length") == 0
    await browser.shot("calendar-post")

    # on a phone: one column, nothing wider than the screen
    browser.driver.set_window_size(390, 844)
    await browser.open(site.local(page))
    assert await browser.script("return document.documentElement.scrollWidth <= window.innerWidth")
    assert await browser.script("return getComputedStyle(document.querySelector('table.month td.today')).display") == "block"


async def test_pages_send_strict_security_headers(site: Site, tmp_path: Path) -> None:
    await plan(site, tmp_path)
    page = address(await site.team.say("alice", "/calendar"), PUBLIC + "/calendar/")
    for path in (page, page + "/post/1", page + ".ics", PUBLIC + "/calendar/" + "x" * 32):
        answer = await site.http.get(site.local(path).removeprefix(site.base))
        csp = answer.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp, path
        assert answer.headers["Referrer-Policy"] == "no-referrer"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["X-Frame-Options"] == "DENY"


async def test_a_revoked_an_unknown_or_another_workspaces_address_shows_nothing(
        site: Site, browser: Browser, tmp_path: Path) -> None:
    posts = await plan(site, tmp_path)
    old = address(await site.team.say("alice", "/calendar"), PUBLIC + "/calendar/")
    # another workspace on the same Herald, with its own post and its own address
    with site.team.herald.db.session() as session:
        other = Workspace(name="Rival", timezone="UTC")
        session.add(other)
        session.flush()
        secret = Post(workspace_id=other.id, author_platform="console", author_user_id="eve", author_name="eve",
                      text="Rival secret launch", state=PostState.SCHEDULED.value,
                      due_at=datetime(2026, 11, 24, 12, tzinfo=UTC))
        session.add(secret)
        session.add(CalendarLink(workspace_id=other.id, token="R" * 32))
        session.flush()
        secret_id = secret.id
    await browser.open(site.local(old) + f"/post/{secret_id}")  # another workspace's post through our address
    assert browser.title == "Not found · Herald"
    await browser.open(site.local(old) + f"/post/{posts['draft']}")  # a draft is not in the plan
    assert browser.title == "Not found · Herald"
    await browser.open(site.base + "/calendar/" + "R" * 32)
    assert "Rival secret launch" in await browser.text("table.month")
    assert "spring" not in await browser.text("main")

    out = await site.team.say("alice", "/calendar revoke")
    new = address(out, PUBLIC + "/calendar/")
    assert new != old and "now answers 'not found'" in out
    for gone in (old, old + ".ics", old + f"/post/{posts['spring']}"):
        answer = await site.http.get(site.local(gone).removeprefix(site.base))
        assert answer.status_code == 404, gone
        assert "spring" not in answer.text and "Traceback" not in answer.text
    await browser.open(site.local(old))
    assert browser.title == "Not found · Herald"
    await browser.open(site.local(new))
    assert f"#{posts['spring']}" in await browser.text("table.month")
    out = await site.team.say("bob", "/calendar")  # an approver may not hand the plan out
    assert out.startswith("✋"), out


async def test_the_feed_holds_every_post_at_its_utc_time_across_a_dst_change(site: Site, tmp_path: Path) -> None:
    team = site.team
    await team.setup_workspace()
    times = {"2027-03-27 09:00": datetime(2027, 3, 27, 8, tzinfo=UTC),  # CET, the day before the change
             "2027-03-29 09:00": datetime(2027, 3, 29, 7, tzinfo=UTC)}  # CEST, the day after
    numbers = {}
    for phrase in times:
        post = number(await team.say("alice", f"/draft Easter news {phrase} campaign=easter"))
        await team.say("alice", f"/submit {post}")
        await team.say("bob", f"/approve {post}")
        assert "scheduled for" in await team.say("alice", f"/schedule {post} {phrase}")
        numbers[post] = phrase
    page = address(await team.say("alice", "/calendar easter"), PUBLIC + "/calendar/")
    answer = await site.http.get(site.local(page).removeprefix(site.base) + ".ics")
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/calendar")
    cal = icalendar.Calendar.from_ical(answer.content)
    (zone,) = cal.walk("VTIMEZONE")
    assert zone["TZID"] == "Europe/Paris"
    events = cal.walk("VEVENT")
    assert len(events) == 2
    with team.herald.db.session() as session:
        due = {p.id: p.due_at for p in session.exec(select(Post).where(Post.campaign == "easter")).all()}
    for event in events:
        post = int(str(event["SUMMARY"]).split()[0].lstrip("#"))
        start = event.decoded("DTSTART")
        assert event["DTSTART"].params["TZID"] == "Europe/Paris"
        assert start.astimezone(UTC) == due[post] == times[numbers[post]]
        assert str(event["URL"]) == f"{page}/post/{post}"


async def test_an_error_inside_a_page_shows_a_plain_page_and_no_traceback(site: Site, tmp_path: Path,
                                                                          monkeypatch) -> None:  # type: ignore[no-untyped-def]
    await plan(site, tmp_path)
    page = address(await site.team.say("alice", "/calendar"), PUBLIC + "/calendar/")

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the database is away: secret detail")

    monkeypatch.setattr("bot.web.calendar.entries", broken)
    answer = await site.http.get(site.local(page).removeprefix(site.base))
    assert answer.status_code == 500
    assert "Something went wrong" in answer.text
    assert "secret detail" not in answer.text and "Traceback" not in answer.text and "RuntimeError" not in answer.text
    assert answer.headers["Content-Security-Policy"].startswith("default-src 'none'")


async def test_preview_image_shows_each_accounts_card_in_the_chat(site: Site, tmp_path: Path) -> None:
    posts = await plan(site, tmp_path)
    team = site.team
    out = await team.say("alice", f"/preview {posts['spring']} image")
    assert "[image: " in out and "an approximate preview per account, drawn by Herald" in out, out
    reply = await run(team, "console", team.herald.console.chat_id, "alice", f"/preview {posts['spring']} image")
    with Image.open(io.BytesIO(reply.image)) as sheet:
        assert sheet.width == 600 and sheet.height > 2 * 200  # two accounts' cards, each with the picture
    assert "[image:" not in await team.say("alice", f"/preview {posts['spring']}")  # only when asked
    assert (await team.say("alice", f"/preview {posts['spring']} imagine")).startswith("✋")
