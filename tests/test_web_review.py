# ruff: noqa: F811  (the web fixtures are imported from tests/web_kit.py and taken by name)
"""Outside reviewers (/review): the link opened in a real headless Chromium, decisions landing in the console chat
at once and in /history, counted under the workspace's policy; and every way a link or a form must be refused —
tampered, expired, revoked, used, outlived by an edit, replayed, without its CSRF token — changing nothing.
"""

from __future__ import annotations

import re
from typing import Any

from sqlmodel import select

from handlers.posts.render import render
from storage.models import Account, Post, Workspace
from tests.conftest import Team, refused
from tests.test_chats_and_people import run
from tests.web_kit import PUBLIC, Browser, Site, address, browser, chromium, site  # noqa: F401

FORM_RE = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


def number(out: str) -> int:
    return int(out.split("#", 1)[1].split(" ", 1)[0].rstrip("."))


async def in_review(team: Team, text: str = "Our spring collection is here") -> int:
    await team.setup_workspace()
    post = number(await team.say("alice", f"/draft {text}"))
    await team.say("alice", f"/schedule {post} 2026-11-25 10:00")
    await team.say("alice", f"/submit {post}")
    return post


def printed(site: Site) -> list[str]:
    """From now on, everything the console chat prints (notices Herald sends on its own included)."""
    lines: list[str] = []
    site.team.herald.console._write = lines.append
    return lines


async def test_an_outside_reviewer_asks_for_changes_then_a_new_link_approves_and_the_post_is_scheduled(
        site: Site, browser: Browser) -> None:
    team = site.team
    post = await in_review(team)
    out = await team.say("bob", f"/review {post} Dana from Legal")
    assert f"Review link of #{post} for Dana from Legal (revision 1, until" in out, out
    link = address(out, PUBLIC + "/review/")
    chat = printed(site)

    await browser.open(site.local(link))
    assert browser.title == f"Review post #{post} · Herald"
    assert "For Dana from Legal · from Acme" in await browser.text("header")
    shown = dict(zip(await browser.all_text("section.account h3"), await browser.all_text("section.account pre"),
                     strict=True))
    with team.herald.db.session() as session:
        one = session.get(Post, post)
        ws = session.get(Workspace, one.workspace_id)
        exact = {f"{a.name} ({a.network})": render(team.herald.ctx, one, a, ws, checked=False, session=session).text
                 for a in session.exec(select(Account).order_by(Account.id)).all()}
    assert shown == exact and len(shown) == 2
    assert "Wed 25 Nov 2026 10:00" in await browser.text("main")
    await browser.run(lambda: browser.driver.find_element("css selector", "section.account summary").click())
    assert await browser.image_width("img.preview") == 600

    assert await browser.script("return document.querySelector('label[for=note]').textContent") \
        == "Note (required to request changes or to reject)"
    assert await browser.script("return document.querySelectorAll('img:not([alt])').length") == 0
    # asking for changes without saying what: refused on the page, nothing changed
    before = team.snapshot()
    await browser.click("button[value=changes]")
    assert await browser.text("p.error") == "Say what should change."
    await browser.shot("review")
    assert team.snapshot() == before
    await browser.type("#note", "Please add the price")
    await browser.click("button[value=changes]")
    assert browser.title == "Decision recorded · Herald"
    notice = "\n".join(chat)
    assert f"✏️ Dana from Legal (outside reviewer) asked for changes on #{post}: Please add the price" in notice
    assert team.post(post).state == "changes_requested"

    await browser.open(site.local(link))  # used: it opens nothing any more
    assert browser.title == "This review link is closed · Herald"
    assert "was used" in await browser.text("main")
    preview = site.local(link).removeprefix(site.base) + "/preview/0.png"
    assert (await site.http.get(preview)).status_code == 404  # nor do its previews

    await team.say("alice", f"/edit {post} Our spring collection is here, from 49 €")
    await team.say("alice", f"/submit {post}")
    fresh = address(await team.say("bob", f"/review {post} Dana from Legal"), PUBLIC + "/review/")
    assert fresh != link
    chat.clear()
    await browser.open(site.local(fresh))
    assert "from 49 €" in await browser.text("section.account pre")
    await browser.click("button[value=approve]")
    assert browser.title == "Decision recorded · Herald"
    notice = "\n".join(chat)
    assert f"✅ Dana from Legal (outside reviewer) approved #{post} on the web (1 of 1). Approved and scheduled for" \
           in notice, notice
    assert "Approvals: 1 of 1 (revision 2)" in notice  # the approval card, as it now stands
    assert team.post(post).state == "scheduled"
    history = await team.say("alice", f"/history {post}")
    assert "Dana from Legal (outside reviewer) · changes: Please add the price" in history, history
    assert "Dana from Legal (outside reviewer) · approve: revision 2 (1/1)" in history, history


async def test_a_link_dies_when_the_post_is_edited_and_when_revoked_or_expired(site: Site, browser: Browser) -> None:
    team = site.team
    post = await in_review(team)
    edited = address(await team.say("bob", f"/review {post} Dana"), PUBLIC + "/review/")
    await team.say("alice", f"/edit {post} A better text")
    await team.say("alice", f"/submit {post}")
    await browser.open(site.local(edited))
    assert browser.title == "This review link is closed · Herald"
    assert "edited since" in await browser.text("main")

    revoked = address(await team.say("bob", f"/review {post} Sam"), PUBLIC + "/review/")
    assert "1 open review link(s)" in await team.say("alice", f"/review {post} revoke")
    await browser.open(site.local(revoked))
    assert "withdrawn" in await browser.text("main")

    expiring = address(await team.say("bob", f"/review {post} Lee"), PUBLIC + "/review/")
    await browser.open(site.local(expiring))
    assert browser.title == f"Review post #{post} · Herald"
    team.clock.advance(days=7)
    before = team.snapshot()
    await browser.click("button[value=approve]")  # the form was open before it expired
    assert "expired" in await browser.text("main")
    assert team.snapshot() == before and team.post(post).state == "in_review"


async def test_forged_replayed_and_cross_site_forms_change_nothing(site: Site) -> None:
    team = site.team
    post = await in_review(team)
    link = site.local(address(await team.say("bob", f"/review {post} Dana"), PUBLIC + "/review/"))
    path = link.removeprefix(site.base)
    cut = len(path) - 10  # a character inside the signature that carries all its six bits
    tampered = path[:cut] + ("A" if path[cut] != "A" else "B") + path[cut + 1:]
    answer = await site.http.get(tampered)
    assert answer.status_code == 404 and "Dana" not in answer.text

    page = await site.http.get(path)
    assert page.status_code == 200
    assert "SameSite=Strict" in page.headers["Set-Cookie"] and "HttpOnly" in page.headers["Set-Cookie"]
    csrf = FORM_RE.search(page.text).group(1)
    before = team.snapshot()
    # no CSRF field; a field without the cookie (another site's form); a field for another cookie
    assert (await site.http.post(path, data={"choice": "approve"})).status_code == 403
    site.http.cookies.clear()
    assert (await site.http.post(path, data={"choice": "approve", "csrf": csrf})).status_code == 403
    site.http.cookies.set("herald_csrf", "x" * 43, domain="127.0.0.1", path="/review")
    assert (await site.http.post(path, data={"choice": "approve", "csrf": csrf})).status_code == 403
    assert (await site.http.post(tampered, data={"choice": "approve", "csrf": csrf})).status_code == 403
    assert team.snapshot() == before

    site.http.cookies.clear()
    page = await site.http.get(path)
    form = {"choice": "approve", "csrf": FORM_RE.search(page.text).group(1)}
    assert (await site.http.post(path, data=form)).status_code == 200
    assert team.post(post).state == "scheduled"
    after = team.snapshot()
    replay = await site.http.post(path, data=form)  # the same form again
    assert replay.status_code == 410 and "was used" in replay.text
    assert team.snapshot() == after


async def test_the_policy_can_take_outside_approvals_as_advice(site: Site) -> None:
    team = site.team
    post = await in_review(team)
    out = await team.say("alice", "/policy outside=advice review_days=3")
    assert "outside=advice" in out and "review_days=3" in out, out
    out = await team.say("alice", f"/review {post} Dana")  # advice: any editor may ask
    assert "is advice: it doesn't count" in out and "until Thu 26 Nov" in out, out
    path = site.local(address(out, PUBLIC + "/review/")).removeprefix(site.base)
    page = await site.http.get(path)
    chat = printed(site)
    answer = await site.http.post(path, data={"choice": "approve", "csrf": FORM_RE.search(page.text).group(1)})
    assert answer.status_code == 200
    assert f"✅ Dana (outside reviewer) approved #{post} on the web (advice: outside approvals don't count here) " \
           f"(0 of 1). 1 more approval(s) needed." in "\n".join(chat)
    assert team.post(post).state == "in_review"
    out = await team.say("bob", f"/approve {post}")
    assert "(1 of 1)" in out and team.post(post).state == "scheduled"
    assert (await team.say("vic", f"/review {post} X")).startswith("✋")  # a viewer doesn't hand out links


async def test_the_same_link_works_in_a_chat_as_a_telegram_deep_link_code(site: Site) -> None:
    team = site.team
    post = await in_review(team)
    assert "t.me" not in await team.say("bob", f"/review {post} Eve")  # no Telegram bot connected: no deep link
    team.herald.ctx.telegram_bot = "AcmeHeraldBot"  # as the Telegram front end sets it once connected
    out = await team.say("bob", f"/review {post} Dana")
    code = re.search(r"https://t\.me/AcmeHeraldBot\?start=(r-[A-Za-z0-9_-]+)", out).group(1)
    assert len(code) <= 64  # Telegram's limit for a start parameter
    cut = len(code) - 5
    await refused(team, "dana", f"/outside {code[:cut]}{'A' if code[cut] != 'A' else 'B'}{code[cut + 1:]}",
                  "doesn't exist")
    shown = await team.say("dana", f"/outside {code}")
    assert f"Review of post #{post} for Dana (from Acme;" in shown
    assert "── brand-x (sandbox) ──\n│ Our spring collection is here" in shown
    assert "[1] Approve  [2] Request changes  [3] Reject" in shown
    asked = await team.say("dana", "2")
    assert "What should change?" in asked
    done = await team.say("dana", "Please add the price")
    assert "Thank you: the team is told what should change." in done
    assert f"✏️ Dana (outside reviewer) asked for changes on #{post}: Please add the price" in done
    assert team.post(post).state == "changes_requested"
    await refused(team, "dana", f"/outside {code} approve", "was used")
    path = site.local(address(out, PUBLIC + "/review/")).removeprefix(site.base)
    assert (await site.http.get(path)).status_code == 410  # one link, whichever way it is opened


async def test_an_outside_decision_edits_the_approval_card_sent_to_the_approvals_channel(site: Site) -> None:
    team = site.team
    sent: list[tuple[str, Any]] = []

    class Recorder:  # the Discord front end, as far as notices go: what reached which channel
        async def send(self, chat: Any, reply: Any) -> None:
            sent.append((chat.chat_id, reply))

    team.herald.notifier.register("discord", Recorder())
    await run(team, "discord", "general", "alice", "/setup Acme", space="G1", is_chat_admin=True)
    await run(team, "discord", "general", "alice", "/connect sandbox name=brand", space="G1")
    await run(team, "discord", "approvals", "alice", "/setup approvals", space="G1")
    await run(team, "discord", "general", "alice", "/policy self_approval=on", space="G1")
    post = number((await run(team, "discord", "general", "alice", "/draft Spring is here", space="G1")).text)
    await run(team, "discord", "general", "alice", f"/submit {post}", space="G1")
    out = (await run(team, "discord", "general", "alice", f"/review {post} Dana", space="G1")).text
    path = site.local(address(out, PUBLIC + "/review/")).removeprefix(site.base)
    page = await site.http.get(path)
    answer = await site.http.post(path, data={"choice": "approve", "csrf": FORM_RE.search(page.text).group(1)})
    assert answer.status_code == 200
    cards = [reply for chat, reply in sent if chat == "approvals" and reply.replaces == f"approval:{post}"]
    assert len(cards) == 2  # the request, then the same card (its key: edited in place) as it now stands
    assert "Approvals: 0 of 1" in cards[0].text and cards[0].buttons
    assert "Approvals: 1 of 1" in cards[1].text and not cards[1].buttons
    assert "✅ Dana (outside reviewer) approved" in cards[1].text
    assert any(chat == "approvals" and "✅ Dana (outside reviewer) approved" in reply.text and reply.replaces is None
               for chat, reply in sent)


async def test_where_outside_approvals_count_only_someone_who_may_approve_makes_a_link(site: Site) -> None:
    team = site.team
    post = await in_review(team)  # written by alice, an admin; self-approval is off
    await team.say("alice", "/role carol editor")
    await refused(team, "alice", f"/review {post} My friend", "doesn't let authors have outside reviewers approve")
    await refused(team, "carol", f"/review {post} Dana", "Only admins or approvers can have outside reviewers approve")
    assert "Review link of" in await team.say("bob", f"/review {post} Dana")
    await team.say("alice", "/policy outside=advice")
    assert "Review link of" in await team.say("carol", f"/review {post} Dana")  # advice: an editor may ask
