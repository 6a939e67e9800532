"""Herald down across due times: within the grace period posts go out at restart, older ones are held,
the team is told once per workspace, and /held lists, publishes or drops them."""

from __future__ import annotations

import pytest
from sqlmodel import select

from handlers.posts.publishing.due import sweep
from handlers.workspace.health import DEAD
from storage.models import Account, AuditEvent
from tests.conftest import FakeClock, Team, capturing, refused


async def draft(team: Team, text: str, when: str) -> int:
    """A post written and scheduled by alice (the workspace publishes without approval)."""
    out = await team.say("alice", f"/draft {text}")
    post_id = int(out.split("#", 1)[1].split(" ", 1)[0].rstrip("."))
    assert "scheduled for" in await team.say("alice", f"/schedule {post_id} {when}")
    return post_id


async def restart(team: Team, db_url: str, clock: FakeClock, **down: float) -> tuple[Team, list[str]]:
    """Stop Herald, let `down` pass, start a new Herald on the same database; its team and what it said."""
    await team.herald.stop()
    clock.advance(**down)
    herald, lines = capturing(db_url, clock)
    await herald.start()
    return Team(herald, clock, db_url), lines


def notices(lines: list[str], marker: str) -> list[str]:
    return [line for line in lines if marker in line]


async def test_after_downtime_posts_in_the_grace_go_out_the_older_are_held_and_listed_in_one_notice(
    team: Team, db_url: str, clock: FakeClock
) -> None:
    await team.setup_workspace(approvers=())
    await team.say("alice", "/policy approvals=0")
    old = [await draft(team, f"Old news number {n} from the spring launch week", f"in {m} minutes")
           for n, m in ((1, 60), (2, 70), (3, 80), (4, 90))]
    fresh = await draft(team, "Fresh post", "in 120 minutes")
    later = await draft(team, "Later post", "in 180 minutes")

    team, lines = await restart(team, db_url, clock, hours=2, minutes=5)  # down 2 h 05: #5 is 5 min late
    try:
        said = "\n".join(lines)
        assert f"📣 #{fresh} is published on all 2 account(s)" in said
        assert [p.state for p in map(team.post, old)] == ["scheduled"] * 4
        assert all(team.post(p).held_note for p in old)
        summary = notices(lines, "came due while Herald was down")
        assert len(summary) == 1, said  # one notice for four held posts, not four
        assert "was due" not in said  # no notice of its own for any of them
        text = summary[0]
        assert text.startswith("⚠️ 4 posts came due while Herald was down (or paused) and couldn't go out within "
                               "the 15-minute grace period")
        assert f"  #{old[0]} · due Mon 23 Nov 2026 11:00 CET (Europe/Paris) · brand-bsky, brand-x · Old news" \
               in text
        assert f"  #{old[3]} · due Mon 23 Nov 2026 11:30 CET (Europe/Paris)" in text
        assert f"/held publish sends them all now · /held drop cancels them all · /held publish {old[0]} {old[1]}" \
               in text
        assert team.herald.scheduler.armed() == {later: team.post(later).due_at}
        assert len(team.sandbox_posts()) == 2  # the fresh post on two accounts, nothing else

        lines.clear()
        await sweep(team.herald.ctx)  # the next sweep says nothing again and sends nothing
        assert lines == [] and len(team.sandbox_posts()) == 2

        listed = await team.say("alice", "/held")
        assert listed.startswith("⚠️ 4 held post(s), past the grace period after downtime (times in Europe/Paris):")
        assert [line for line in listed.splitlines() if line.startswith("  #")] == [
            f"  #{p} · due Mon 23 Nov 2026 {t} CET (Europe/Paris) · brand-bsky, brand-x · "
            f"Old news number {n} from the spring launc…"
            for n, (p, t) in enumerate(zip(old, ("11:00", "11:10", "11:20", "11:30"), strict=True), start=1)
        ]

        out = await team.say("alice", f"/held publish {old[0]} #{old[2]}")
        assert out.startswith("📣 2 held post(s) are going out now.")
        assert f"#{old[0]} is published on all 2 account(s)" in out
        assert f"#{old[2]} is published on all 2 account(s)" in out
        assert [team.post(p).state for p in old] == ["published", "scheduled", "published", "scheduled"]
        assert len(team.sandbox_posts()) == 6

        out = await team.say("alice", "/held drop")
        assert out == f"🗑 2 held post(s) cancelled; they won't publish: #{old[1]}, #{old[3]}."
        assert [team.post(p).state for p in old] == ["published", "cancelled", "published", "cancelled"]
        assert team.post(old[1]).held_note is None
        assert await team.say("alice", "/held") == "No posts are held. /queue shows what's coming up."
        await team.tick(hours=1)  # the later post's time
        assert len(team.sandbox_posts()) == 8  # only the later post joined: each post once per account
    finally:
        await team.herald.stop()


async def test_thirty_held_posts_make_one_notice_and_one_command_publishes_them_all(
    team: Team, db_url: str, clock: FakeClock
) -> None:
    await team.setup_workspace(approvers=())
    await team.say("alice", "/policy approvals=0")
    ids = [await draft(team, f"Post {n}", f"in {60 + n} minutes") for n in range(30)]

    team, lines = await restart(team, db_url, clock, hours=3)
    try:
        said = "\n".join(lines)
        assert len(lines) == 1, said
        assert lines[0].startswith("⚠️ 30 posts came due while Herald was down")
        assert sum(1 for line in lines[0].splitlines() if line.startswith("  #")) == 20
        assert "  … and 10 more (/held lists them all)" in lines[0]
        listed = await team.say("alice", "/held")
        assert sum(1 for line in listed.splitlines() if line.startswith("  #")) == 30

        out = await team.say("alice", "/held publish")
        assert out.startswith("📣 30 held post(s) are going out now.")
        assert out.count("is published on all 2 account(s)") == 30
        assert {team.post(p).state for p in ids} == {"published"}
        assert len(team.sandbox_posts()) == 60
    finally:
        await team.herald.stop()


async def test_held_publish_goes_through_the_publish_rules_pause_approvals_and_dead_accounts(
    team: Team, db_url: str, clock: FakeClock
) -> None:
    await team.setup_workspace()
    await team.say("alice", "/policy unapproved=publish")
    ready = await team.approved_post("Approved and ready")
    await team.say("alice", f"/schedule {ready} in 1 hour")
    waiting = await team.approved_post("Waiting one")
    await team.say("alice", f"/schedule {waiting} in 1 hour")
    out = await team.say("alice", "/draft Submitted, never approved")
    unapproved = int(out.split("#", 1)[1].split(" ", 1)[0].rstrip("."))
    await team.say("alice", f"/schedule {unapproved} in 1 hour")
    await team.say("alice", f"/submit {unapproved}")

    team, lines = await restart(team, db_url, clock, hours=2)
    try:
        assert len(notices(lines, "3 posts came due")) == 1
        await team.say("alice", "/pause Crisis")
        await refused(team, "alice", "/held publish", "Publishing is paused (Crisis). /resume first.")
        await team.say("alice", "/resume")  # the held posts stay held: they are past the grace
        assert [team.post(p).state for p in (ready, waiting, unapproved)] == ["scheduled", "scheduled", "in_review"]

        await team.say("alice", "/policy unapproved=hold")  # now an unapproved post may not go out
        with team.herald.db.session() as session:  # the health check found brand-x's token dead
            account = session.exec(select(Account).where(Account.name == "brand-x")).one()
            account.health, account.health_note = DEAD, "the token was revoked"
        out = await team.say("alice", f"/held publish {ready} {unapproved}")
        assert out.startswith("📣 1 held post(s) are going out now; 1 stay held:")
        assert f"✋ #{unapproved} isn't approved yet: it's waiting for the approvers (/approve {unapproved})." in out
        assert f"#{ready} is partly published: 1 of 2 accounts." in out
        assert "✗ brand-x (sandbox): brand-x needs reconnecting (the token was revoked); nothing was sent there" in out
        assert [team.post(p).state for p in (ready, waiting, unapproved)] == [
            "partially_published", "scheduled", "in_review"]
        assert team.post(unapproved).held_note  # still held, still listed
        assert len(team.sandbox_posts()) == 1

        await refused(team, "alice", f"/held publish {unapproved}", "None of them can go out now; they stay held",
                      f"#{unapproved} isn't approved yet")
        with team.herald.db.session() as session:
            actions = session.exec(select(AuditEvent.action).where(AuditEvent.post_id == ready)).all()
        assert "publish now" in actions
    finally:
        await team.herald.stop()


async def test_bad_held_commands_are_refused_and_change_nothing(team: Team, db_url: str, clock: FakeClock) -> None:
    await team.setup_workspace(approvers=())
    await team.say("alice", "/policy approvals=0")
    await team.say("alice", "/role carol viewer")
    held = [await draft(team, f"Held {n}", "in 1 hour") for n in (1, 2)]
    gone = await draft(team, "Gone", "in 3 hours")
    team, _lines = await restart(team, db_url, clock, hours=1, minutes=30)
    try:
        await team.say("alice", f"/publish {gone}")
        await refused(team, "alice", "/held publish 99", "#99 isn't held (there's no such post in this workspace)",
                      "/held lists the held posts. Nothing was changed.")
        await refused(team, "alice", f"/held drop {held[0]} {gone}", f"#{gone} isn't held (it's published)")
        await refused(team, "alice", "/held publish soon", "'soon' isn't a post number")
        await refused(team, "alice", "/held burn", "/held burn? Usage: /held [publish|drop] [post…]")
        await refused(team, "alice", f"/held {held[0]}", f"Publish or drop them? /held publish {held[0]} or "
                      f"/held drop {held[0]}.")
        await refused(team, "alice", f"/held list {held[1]}", f"to act on some: /held publish {held[1]} or")
        await refused(team, "carol", "/held", "Only admins or editors can use /held", "You're a viewer")
        await refused(team, "carol", "/held drop", "Only admins or editors can use /held")
        assert [team.post(p).state for p in held] == ["scheduled", "scheduled"]
        await team.say("alice", "/held drop")
        await refused(team, "alice", "/held publish", "No posts are held.")
        await refused(team, "alice", "/held drop", "No posts are held.")
    finally:
        await team.herald.stop()


async def test_posts_held_by_a_pause_are_summed_up_once_on_resume(team: Team) -> None:
    await team.setup_workspace(approvers=())
    await team.say("alice", "/policy approvals=0")
    ids = [await draft(team, f"Paused {n}", "in 1 hour") for n in (1, 2)]
    await team.say("alice", "/pause")
    await team.tick(minutes=80)
    out = await team.say("alice", "/resume")
    assert out.count("came due while Herald was down (or paused)") == 1
    assert f"  #{ids[0]} · due" in out and f"  #{ids[1]} · due" in out
    assert team.sandbox_posts() == []


async def test_a_held_notice_cut_off_by_a_crash_is_sent_by_a_later_sweep_and_only_once(
    team: Team, db_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import handlers.posts.publishing.held as downtime

    await team.setup_workspace(approvers=())
    await team.say("alice", "/policy approvals=0")
    held = [await draft(team, f"Old news {n}", f"in {m} minutes") for n, m in ((1, 60), (2, 70))]
    await team.herald.stop()
    clock.advance(hours=3)

    class Killed(BaseException):
        """The process dying after the posts were held, before the team heard of them."""

    async def dies(*_args: object) -> bool:
        raise Killed

    herald, lines = capturing(db_url, clock)
    monkeypatch.setattr(downtime, "tell_held", dies)
    with pytest.raises(Killed):
        await herald.start()  # the start-up sweep holds both posts, then dies on its way to the team
    monkeypatch.undo()
    await herald.stop()
    assert not notices(lines, "came due while Herald was down")

    team, lines = await restart(team, db_url, clock, minutes=1)
    assert all(team.post(p).held_note for p in held)
    # the dead worker's claim on the notice is taken over once its lease (2 minutes) has passed
    assert notices(lines, "came due while Herald was down") == []
    said = await team.tick(minutes=2)
    assert said.startswith("⚠️ 2 posts came due while Herald was down"), said
    assert await team.tick(minutes=5) == ""  # told: not again
    await team.herald.stop()
