"""Crisis mode through the console chat against the loopback fakes (FakeX, FakeBluesky) on the FakeClock: the
watch-word alert's button starts it, nothing is published without an approval given after it started, the
holding statement goes to every account with one approval, and /crisis end walks the held posts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlmodel import select

from handlers.core.errors import UserError
from handlers.engagement.inbox import run_inbox
from handlers.engagement.replies import settle_replies
from handlers.posts.publishing.crisis import crisis_clock, end_crisis, fill, parse_resume, template_fields
from storage.models import AuditEvent, Crisis, InboxItem, Workspace
from tests.conftest import START, FakeClock, Team, refused
from tests.fakes.bluesky_api import FakeBluesky
from tests.fakes.x_api import FakeX
from tests.test_inbox import BSKY_PASSWORD, comment_on, publish, remote_id, run

TWEETS = ("POST", "/2/tweets")
SKEETS = ("POST", "/xrpc/com.atproto.repo.createRecord")


@pytest.fixture
async def bsky(clock: FakeClock) -> AsyncIterator[FakeBluesky]:
    async with FakeBluesky(clock.now, password=BSKY_PASSWORD) as server:
        yield server


@pytest.fixture
async def x() -> AsyncIterator[FakeX]:
    async with FakeX() as server:
        yield server


@pytest.fixture
async def x2() -> AsyncIterator[FakeX]:
    async with FakeX(token="tok-2") as server:
        yield server


async def three_accounts(team: Team, bsky: FakeBluesky, x: FakeX, x2: FakeX) -> None:
    """alice (admin) sets up Acme (Paris time) with acme-bsky, acme-x and acme-news (X); bob approves."""
    await team.say("alice", "/setup Acme")
    await team.say("alice", "/timezone Europe/Paris")
    for line in (f"/connect bluesky name=acme-bsky base_url={bsky.url} handle=brand.bsky.social "
                 f"app_password={BSKY_PASSWORD}",
                 f"/connect x name=acme-x base_url={x.url} access_token=tok-1",
                 f"/connect x name=acme-news base_url={x2.url} access_token=tok-2"):
        out = await team.say("alice", line)
        assert out.startswith("Connected"), out
    await team.say("alice", "/role bob approver")
    await team.say("alice", "/role erin editor")


def sends(*servers: FakeX | FakeBluesky) -> int:
    """Posts and replies that reached the loopback networks."""
    return sum(len(s.requests(*TWEETS)) + len(s.requests(*SKEETS)) for s in servers)


async def scheduled(team: Team, text: str, to: str, when: str) -> int:
    """A post drafted by alice, approved by bob and scheduled; its number."""
    out = await team.say("alice", f"/draft {text} to={to}")
    post_id = int(out.split("#", 1)[1].split(" ", 1)[0].rstrip("."))
    await team.say("alice", f"/submit {post_id}")
    await team.say("bob", f"/approve {post_id}")
    out = await team.say("alice", f"/schedule {post_id} {when}")
    assert "scheduled for" in out, out
    return post_id


def workspace(team: Team) -> Workspace:
    with team.herald.db.session() as session:
        return session.exec(select(Workspace)).one()


def crisis_row(team: Team) -> Crisis:
    with team.herald.db.session() as session:
        return session.exec(select(Crisis).order_by(Crisis.id.desc())).first()  # type: ignore[union-attr]


def statement_of(team: Team) -> int:
    post_id = crisis_row(team).statement_post_id
    assert post_id is not None
    return post_id


# --- the scenario ---------------------------------------------------------------------------------------------


async def test_a_watch_word_alert_starts_crisis_mode_the_statement_goes_out_and_the_held_posts_follow_spaced(
    team: Team, bsky: FakeBluesky, x: FakeX, x2: FakeX
) -> None:
    await three_accounts(team, bsky, x, x2)
    await team.say("alice", "/watch add refund")
    out = await team.say("alice", "/crisis template About {reason}: we hear you on {network} and we're on it. "
                                  "— {company}")
    assert out.startswith("Holding statement template saved."), out
    launch = await publish(team, "Spring sale starts today!", "acme-bsky")
    first = await scheduled(team, "Our spring colours are here", "acme-x", "today 10:30")
    second = await scheduled(team, "Meet the team at the fair", "acme-x,acme-bsky", "today 10:40")
    before = sends(bsky, x, x2)

    # a watch-word comment arrives through inbox polling; its alert has the crisis button
    comment_on(bsky, remote_id(team, launch), 0, START + timedelta(minutes=1), text="I want a REFUND now")
    team.clock.advance(minutes=10)
    alert = await run(team, run_inbox)
    assert "🚨 Watch words in 1 comment(s)" in alert
    assert alert.endswith("[1] ⏸ Pause publishing  [2] 🚨 Start crisis mode   (type a number to press)"), alert
    assert (await team.say("alice", "2")).startswith("What's happening?")
    out = await team.say("alice", "refund complaints resume=24h")

    # the card is pinned, the statement drafted per network and sent for approval
    card = next(line for line in out.split("\n\n") if line.startswith("📌 "))
    assert card.startswith("📌 🚨 CRISIS MODE since Mon 23 Nov 2026 10:10 CET (Europe/Paris), started by alice: "
                           "refund complaints\n"), out
    assert "2 scheduled post(s) wait in /queue; none held yet." in card
    assert "take-off and surge alerts at 1.5× the usual (was 3×)" in card
    assert "Ends by itself Tue 24 Nov 2026 10:10 CET (Europe/Paris), or with /crisis end." in card
    statement = statement_of(team)
    assert f"Holding statement #{statement} for crisis mode" in out
    assert "About refund complaints: we hear you on X and we're on it. — Acme" in out
    assert "About refund complaints: we hear you on Bluesky and we're on it. — Acme" in out
    assert team.post(statement).state == "in_review"
    assert workspace(team).crisis_id is not None

    # one approval, then the statement goes to all three accounts
    out = await team.say("bob", f"/approve {statement}")
    assert f"The holding statement is approved: the button (or /publish {statement}) sends it" in out, out
    assert out.endswith(f"[1] 📣 Publish #{statement} to every account now   (type a number to press)"), out
    out = await team.say("alice", "1")  # the button, pressed by an editor
    assert f"📣 #{statement} is published on all 3 account(s)" in out, out
    assert [t["text"] for t in x.tweets.values()] == ["About refund complaints: we hear you on X and we're on it. "
                                                      "— Acme"]
    assert len(x2.tweets) == 1
    assert sends(bsky, x, x2) == before + 3

    # an alert during the crisis says so, and offers no second start
    comment_on(bsky, remote_id(team, launch), 1, team.clock.now(), text="Still no refund")
    team.clock.advance(minutes=10)
    alert = await run(team, run_inbox)
    assert alert.endswith("🚨 Crisis mode is on: /crisis shows what is held.\n"
                          "[1] ⏸ Pause publishing   (type a number to press)"), alert

    # the scheduled posts come due during the crisis: held, the pinned card says so (and nothing else does)
    out = await team.tick(minutes=25)
    assert [team.post(p).state for p in (first, second)] == ["scheduled", "scheduled"]
    assert all(team.post(p).held_note for p in (first, second))
    assert out.startswith("📌 🚨 CRISIS MODE"), out
    assert f"  #{first} · due Mon 23 Nov 2026 10:30 CET (Europe/Paris) · acme-x · Our spring colours" in out
    assert f"  #{second} · due Mon 23 Nov 2026 10:40 CET (Europe/Paris)" in out
    assert f"#{statement}, published — live on acme-bsky, acme-news, acme-x." in out
    assert "came due while Herald was down" not in out
    assert sends(bsky, x, x2) == before + 3

    # /crisis end walks the held posts and restores the policy and the alert factor
    out = await team.say("alice", "/crisis end")
    assert "✅ Crisis mode ended Mon 23 Nov 2026 10:45 CET (Europe/Paris) by alice" in out
    assert "▶️ Crisis mode ended (alice). Approvals are back to 1 per post and reply; take-off and surge alerts " \
           "back to 3×." in out
    assert f"[1] 📣 #{first} now  [2] 🗓 #{first} later  [3] 🗑 #{first}  [4] 📣 #{second} now" in out
    assert "[7] 📣 All, spaced out" in out
    ws = workspace(team)
    assert (ws.crisis_id, ws.alert_factor, ws.approvals_needed) == (None, 3.0, 1)

    # publish all in their order, 15 minutes apart
    assert (await team.say("alice", "7")).startswith("How many minutes between them?")
    out = await team.say("alice", "15")
    assert f"📣 2 held post(s) go out in their order, 15 minute(s) apart: #{first} now, #{second} " in out, out
    assert f"📣 #{first} is published" in out
    assert team.post(second).state == "scheduled" and team.post(second).held_note is None
    out = await team.tick(minutes=15)
    assert f"📣 #{second} is published on all 2 account(s)" in out, out
    sent = {p: [d.sent_at for d in team.deliveries(p)] for p in (first, second)}
    assert sent[first] == [START + timedelta(minutes=45)]
    assert sent[second] == [START + timedelta(minutes=60)] * 2
    assert sends(bsky, x, x2) == before + 3 + 3

    # the audit trail has it all
    with team.herald.db.session() as session:
        actions = [(e.post_id, e.action) for e in session.exec(select(AuditEvent).order_by(AuditEvent.id))]
    assert (None, "crisis start") in actions and (None, "crisis end") in actions
    assert (first, "hold") in actions and (statement, "publish now") in actions
    history = await team.say("bob", f"/history {first}")
    assert "while crisis mode is on" in history and "released after crisis mode" in history


# --- every path that publishes ------------------------------------------------------------------------------------


async def draft_id(team: Team, text: str, to: str) -> int:
    out = await team.say("alice", f"/draft {text} to={to}")
    return int(out.split("#", 1)[1].split(" ", 1)[0].rstrip("."))


async def test_during_a_crisis_no_path_publishes_without_an_approval_given_after_it_started(
    team: Team, bsky: FakeBluesky, x: FakeX, x2: FakeX
) -> None:
    await three_accounts(team, bsky, x, x2)
    await team.say("alice", "/policy unapproved=publish")
    # in review at its time: the policy would publish it unapproved
    unapproved = await draft_id(team, "Unapproved but the policy says publish", "acme-x")
    await team.say("alice", f"/submit {unapproved}")
    await team.say("alice", f"/schedule {unapproved} today 10:30")
    on_time = await scheduled(team, "Scheduled for half past ten", "acme-x", "today 10:30")
    ready = await draft_id(team, "Approved, waiting for /publish", "acme-x")
    await team.say("alice", f"/submit {ready}")
    await team.say("bob", f"/approve {ready}")
    x.fail("POST", "/2/tweets", status=400, body={"detail": "Invalid Request"})
    failed = await publish_now_expecting(team, "Rejected once by X", "✗")
    x.fail("POST", "/2/tweets", status=429, headers={"retry-after": "600"})
    waiting = await publish_now_expecting(team, "Rate limited, retries by itself", "")
    assert [d.state for d in team.deliveries(waiting)] == ["pending"]
    launch = await publish(team, "Spring sale starts today!", "acme-bsky")
    comment_on(bsky, remote_id(team, launch), 0, START + timedelta(minutes=1), text="When do refunds come?")
    team.clock.advance(minutes=10)
    await run(team, run_inbox)
    item = items_of(team)[0]
    await team.say("alice", "/policy approvals=0")  # replies would go out at once
    before = sends(bsky, x, x2)

    out = await team.say("alice", "/crisis start Refund delays resume=2h")
    assert "🚨 Crisis mode is on." in out, out
    statement = statement_of(team)

    # /publish, /retry: refused, nothing changed
    await refused(team, "alice", f"/publish {ready}", f"#{ready} can't go out: crisis mode is on", "/crisis end")
    await refused(team, "alice", f"/retry {failed}", f"#{failed} can't go out: crisis mode is on")
    # a reply waits for approval whatever the policy
    out = await team.say("erin", f"/reply {item.id} We're on it")
    assert "(1 approval(s) needed, from admin or approver) — crisis mode: every reply is approved first." in out, out
    # the clock: the scheduled post, the unapproved one and the pending retry come due and stay put
    out = await team.tick(minutes=40)
    assert all(team.post(p).state in ("scheduled", "in_review") and team.post(p).held_note
               for p in (unapproved, on_time)), [team.post(p) for p in (unapproved, on_time)]
    assert [d.state for d in team.deliveries(waiting)] == ["pending"]
    assert "📌 🚨 CRISIS MODE" in out
    # /held publish, all or some: refused
    out = await refused(team, "alice", "/held publish", "None of them can go out now; they stay held")
    assert f"#{on_time} can't go out: crisis mode is on" in out
    await refused(team, "alice", f"/held publish {on_time}", "crisis mode is on")
    assert sends(bsky, x, x2) == before

    # an approval given now lets one thing through: the reply, then the statement
    out = await team.say("bob", f"/approve_reply {item.id}")
    assert "✅ bob approved the reply" in out and "↪ Answered @ana0.bsky.social on acme-bsky" in out, out
    assert sends(bsky, x, x2) == before + 1
    await team.say("bob", f"/approve {statement}")
    out = await team.say("alice", f"/publish {statement}")
    assert f"📣 #{statement} is published on all 3 account(s)" in out, out
    assert sends(bsky, x, x2) == before + 4

    # the resume timer ends it on Herald's clock; the policy (no approvals) comes back
    team.clock.advance(hours=2)
    out = await run(team, crisis_clock)
    assert "▶️ Crisis mode ended (Herald (its resume time came))" in out, out
    assert "Approvals are back to 0 per post and reply" in out
    assert workspace(team).approvals_needed == 0 and workspace(team).crisis_id is None
    assert await run(team, crisis_clock) == ""  # once
    # the retry that waited through the crisis is two hours late: not sent by surprise, the team decides
    out = await team.tick(seconds=1)
    assert f"/held publish {waiting} sends it now" in out, out
    out = await team.say("alice", f"/retry {waiting}")
    assert f"📣 #{waiting} is published" in out, out


async def publish_now_expecting(team: Team, text: str, mark: str) -> int:
    post_id = await draft_id(team, text, "acme-x")
    await team.say("alice", f"/submit {post_id}")
    await team.say("bob", f"/approve {post_id}")
    out = await team.say("alice", f"/publish {post_id}")
    assert mark in out, out
    return post_id


def items_of(team: Team) -> list[InboxItem]:
    with team.herald.db.session() as session:
        return list(session.exec(select(InboxItem).order_by(InboxItem.id)).all())  # type: ignore[arg-type]


# --- what people type wrong, and who may do what ---------------------------------------------------------------


async def test_crisis_commands_refuse_bad_input_and_the_wrong_role_and_change_nothing(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/role erin editor")
    await refused(team, "alice", "/crisis start", "What's happening?", "/crisis start <reason>")
    await refused(team, "alice", "/crisis start Outage resume=soon", "resume=soon isn't a duration", "resume=24h")
    await refused(team, "alice", "/crisis start Outage resume=30d", "from 1 minute to 14 days")
    await refused(team, "alice", "/crisis start " + "x" * 301, "under 300 characters")
    await refused(team, "erin", "/crisis start Outage", "admin")
    await refused(team, "bob", "/crisis start Outage", "admin")
    await refused(team, "alice", "/crisis end", "Crisis mode isn't on.")
    await refused(team, "alice", "/crisis panic", "/crisis panic?", "Usage: /crisis")
    await refused(team, "alice", "/crisis template Sorry about {reasn}", "{reasn} isn't a placeholder I know",
                  "{reason}, {company}, {network}, {date}")
    await refused(team, "alice", "/crisis template Sorry {reason", "stray {")
    await refused(team, "alice", "/crisis template {reason!r}", "isn't a placeholder")
    await refused(team, "erin", "/crisis template We hear you", "admin")
    await refused(team, "alice", "/crisis alerts loud", "'loud' isn't a factor")
    await refused(team, "alice", "/crisis alerts 0.5", "from 1.5 to 50")
    await refused(team, "alice", "/crisis release 10", "No posts are held.")
    await refused(team, "alice", "/crisis release soon", "How many minutes between them?")
    await refused(team, "alice", "/crisis release 5000", "At most 1440 minutes")
    await refused(team, "bob", "/crisis release 10", "editor")
    assert (await team.say("bob", "/crisis")).startswith("No crisis mode now.")

    out = await team.say("alice", "/crisis start Outage")
    assert "🚨 Crisis mode is on." in out
    await refused(team, "alice", "/crisis start Another one", "Crisis mode is already on, since",
                  "started by alice: Outage")
    await refused(team, "alice", "/crisis end now", "takes nothing after it")
    await refused(team, "alice", "/crisis status please", "Usage: /crisis")
    status = await team.say("bob", "/crisis")  # everyone may read it
    assert status.startswith("🚨 CRISIS MODE since") and "📌" not in status
    assert "alice · crisis start: Outage" in status


async def test_a_template_that_does_not_fit_a_network_leaves_the_statement_a_draft_to_fix(team: Team) -> None:
    await team.setup_workspace()
    assert (await team.say("alice", "/crisis template " + "We're sorry about {reason}. " * 12)).startswith(
        "Holding statement template saved.")
    out = await team.say("alice", "/crisis start Late deliveries")
    statement = statement_of(team)
    assert f"it doesn't fit every network yet — #{statement} doesn't fit every network yet" in out, out
    assert team.post(statement).state == "draft"
    assert f"Holding statement: #{statement}, a draft to fix" in out


async def test_crisis_alerts_sets_the_factor_used_while_it_lasts_and_end_puts_the_old_one_back(team: Team) -> None:
    await team.setup_workspace()
    assert (await team.say("alice", "/crisis alerts 2")).startswith("During a crisis, take-off and surge alerts "
                                                                    "fire at 2× the usual.")
    await team.say("alice", "/alerts factor=4")
    assert (await team.say("bob", "/crisis alerts")).startswith("During a crisis, take-off and surge alerts fire at "
                                                                "2× the usual (now, outside one: 4×).")
    out = await team.say("alice", "/crisis template\nDear all,\n{reason}: we're on it. — {company}")
    assert out.endswith("X would get:\nDear all,\na delayed delivery: we're on it. — Acme"), out
    await team.say("alice", "/crisis start Outage")
    assert workspace(team).alert_factor == 2.0
    assert "take-off and surge alerts at 2× the usual (was 4×)" in await team.say("bob", "/crisis")
    await team.say("alice", "/crisis end")
    assert workspace(team).alert_factor == 4.0


# --- the clock, crashes -----------------------------------------------------------------------------------------


async def test_an_end_whose_notice_a_crash_cut_off_is_told_by_the_clock_once(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/crisis start Outage resume=1h")
    spell = crisis_row(team)
    assert spell.id is not None
    # the timer's end committed, then the worker stopped before it told the team
    team.clock.advance(hours=1)
    assert end_crisis(team.herald.ctx, spell.workspace_id, spell.id, "Herald (its resume time came)")
    assert await run(team, crisis_clock) == ""  # ended already; told again only after a while
    team.clock.advance(minutes=3)
    out = await run(team, crisis_clock)
    assert "▶️ Crisis mode ended (Herald (its resume time came))." in out
    assert crisis_row(team).told_end_at is not None
    team.clock.advance(minutes=3)
    assert await run(team, crisis_clock) == ""


# --- the parts -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "reason", "minutes"), [
    ("Data breach", "Data breach", None),
    ("Data breach resume=24h", "Data breach", 24 * 60),
    ("Data breach RESUME=90m", "Data breach", 90),
    ("Data breach resume=2d", "Data breach", 2 * 1440),
    ("resume=1h", "", 60),
])
def test_resume_is_peeled_off_the_reason(text: str, reason: str, minutes: int | None) -> None:
    got, after = parse_resume(text)
    assert got == reason
    assert after == (timedelta(minutes=minutes) if minutes is not None else None)


@pytest.mark.parametrize("text", ["x resume=", "x resume=tomorrow", "x resume=0m", "x resume=15d"])
def test_a_wrong_resume_is_refused(text: str) -> None:
    with pytest.raises(UserError):
        parse_resume(text)


def test_a_template_is_filled_per_network_and_braces_can_be_written() -> None:
    ws = Workspace(name="Acme", timezone="Europe/Paris")
    template = "{{Update}} {date}: about {reason}, on {network}. — {company}"
    assert template_fields(template) == ["date", "reason", "network", "company"]
    assert fill(template, ws, "late parcels", "Bluesky", START) == \
        "{Update} 23 Nov 2026: about late parcels, on Bluesky. — Acme"
    with pytest.raises(UserError, match="isn't a placeholder"):
        template_fields("{0}")
    with pytest.raises(UserError, match="isn't a placeholder"):
        template_fields("{reason:>10}")


async def test_a_reply_approved_before_the_crisis_but_not_sent_is_approved_again_before_it_goes_out(
    team: Team, bsky: FakeBluesky, x: FakeX, x2: FakeX
) -> None:
    await three_accounts(team, bsky, x, x2)
    launch = await publish(team, "Spring sale starts today!", "acme-bsky")
    comment_on(bsky, remote_id(team, launch), 0, START + timedelta(minutes=1), text="Where is my parcel?")
    team.clock.advance(minutes=10)
    await run(team, run_inbox)
    item = items_of(team)[0]
    await team.say("erin", f"/reply {item.id} It's on its way")
    # bob's approval was stored, then the worker stopped before sending it (the clock sends such replies)
    with team.herald.db.session() as session:
        stored = session.get(InboxItem, item.id)
        assert stored is not None
        stored.reply_state, stored.reply_approvals = "approved", ["console:bob"]
    before = sends(bsky, x, x2)
    await team.say("alice", "/crisis start Parcels lost")
    assert await run(team, settle_replies) == ""
    assert items_of(team)[0].reply_state == "awaiting_approval" and items_of(team)[0].reply_approvals == []
    assert sends(bsky, x, x2) == before
    out = await team.say("bob", f"/approve_reply {item.id}")
    assert "↪ Answered @ana0.bsky.social" in out, out
    assert sends(bsky, x, x2) == before + 1


async def test_after_the_end_each_held_post_can_be_published_rescheduled_or_dropped_with_its_buttons(
    team: Team
) -> None:
    await team.setup_workspace()
    posts = [await scheduled(team, f"Post number {n} of the week", "brand-x", f"today {10 + n}:00")
             for n in (1, 2, 3)]
    await team.say("alice", "/crisis start Outage")
    out = await team.tick(hours=4)
    assert all(team.post(p).held_note for p in posts)
    out = await team.say("alice", f"/held drop {posts[2]}")  # during the crisis: the pinned card says it
    card, _, answer = out.rpartition("\n")
    assert card.startswith("📌 🚨 CRISIS MODE") and "2 came due and are held" in card, out
    assert f"#{posts[2]} · due" not in card
    assert answer == f"🗑 1 held post(s) cancelled; they won't publish: #{posts[2]}."
    out = await team.say("alice", "/crisis end")
    assert f"[1] 📣 #{posts[0]} now  [2] 🗓 #{posts[0]} later  [3] 🗑 #{posts[0]}  [4] 📣 #{posts[1]} now" in out
    walk = list(team.herald.console.buttons)  # in Telegram and Discord the walk's buttons stay under it
    out = await team.say("alice", "1")
    assert f"📣 #{posts[0]} is published on 1 account(s)" in out, out
    team.herald.console.buttons = walk
    assert (await team.say("alice", "5")).startswith(f"When should #{posts[1]} go out?")
    out = await team.say("alice", "tomorrow 9am")
    assert out.startswith(f"🗓 #{posts[1]} is scheduled for Tue 24 Nov 2026 09:00 CET"), out
    assert team.post(posts[1]).held_note is None
    assert (await team.say("alice", "/held")).startswith("No posts are held.")
    team.herald.console.buttons = walk
    await refused(team, "alice", "6", f"#{posts[1]} isn't held (it's scheduled")


async def test_a_post_edited_and_approved_again_during_the_crisis_may_go_out(team: Team) -> None:
    await team.setup_workspace()
    post = await team.approved_post("Spring sale starts today!")
    await team.say("alice", "/crisis start Outage")
    await refused(team, "alice", f"/publish {post}", "crisis mode is on")
    await team.say("alice", f"/edit {post} Our thoughts are with those affected; the sale waits.")
    assert team.post(post).state == "in_review"
    await team.say("bob", f"/approve {post}")
    out = await team.say("alice", f"/publish {post}")
    assert f"📣 #{post} is published on all 2 account(s)" in out, out
    assert [p.text for p in team.sandbox_posts()] == ["Our thoughts are with those affected; the sale waits."] * 2
