"""Scheduling through the console chat: /schedule in plain words, slots, refusals, the queue and the clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.conftest import Team


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


async def draft(team: Team, text: str = "Spring sale starts today!") -> int:
    out = await team.say("alice", f"/draft {text}")
    return int(out.split("#", 1)[1].split(" ", 1)[0].rstrip("."))


async def in_review(team: Team, text: str = "Spring sale starts today!") -> int:
    post_id = await draft(team, text)
    await team.say("alice", f"/submit {post_id}")
    return post_id


# --- reading times ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "shown", "due"),
    [
        ("tomorrow 9am", "Tue 24 Nov 2026 09:00 CET (Europe/Paris) (in 23 hours)", utc(2026, 11, 24, 8, 0)),
        ("in 2 hours", "Mon 23 Nov 2026 12:00 CET (Europe/Paris) (in 2 hours)", utc(2026, 11, 23, 11, 0)),
        ("2026-12-01 18:30 Europe/Paris", "Tue 1 Dec 2026 18:30 CET (Europe/Paris) (in 8 days 8 hours)",
         utc(2026, 12, 1, 17, 30)),
        ("2026-12-01 18:30 America/New_York", "Tue 1 Dec 2026 18:30 EST (America/New_York) (in 8 days 14 hours)",
         utc(2026, 12, 1, 23, 30)),
    ],
)
async def test_schedule_echoes_a_full_date_with_its_zone_and_arms_the_clock(
    team: Team, when: str, shown: str, due: datetime
) -> None:
    await team.setup_workspace()
    post_id = await team.approved_post()
    out = await team.say("alice", f"/schedule {post_id} {when}")
    assert out == f"🗓 #{post_id} is scheduled for {shown} on brand-bsky, brand-x."
    post = team.post(post_id)
    assert post.state == "scheduled"
    assert post.due_at == due
    assert team.herald.scheduler.armed() == {post_id: due}


async def test_a_time_in_another_zone_is_kept_in_that_zone(team: Team) -> None:
    await team.setup_workspace()
    post_id = await team.approved_post()
    await team.say("alice", f"/schedule {post_id} 2026-12-01 18:30 America/New_York")
    assert team.post(post_id).due_tz == "America/New_York"
    out = await team.say("alice", "/queue")
    assert f"Tue 1 Dec 2026 18:30 EST (America/New_York) (in 8 days 14 hours) · #{post_id} ·" in out


async def test_next_slot_takes_the_earliest_free_slot_and_the_next_post_the_following_one(team: Team) -> None:
    await team.setup_workspace()
    assert await team.say("alice", "/slots brand-x 09:00 17:00") == "brand-x posting slots: 09:00 17:00."
    assert await team.say("alice", "/slots brand-bsky 12:00") == "brand-bsky posting slots: 12:00."
    first = await team.approved_post("First")
    second = await team.approved_post("Second")
    third = await team.approved_post("Third")
    # it's 10:00 in Paris: today's 09:00 has passed, 12:00 is the first free slot
    out = await team.say("alice", f"/schedule {first} next slot")
    assert out == f"🗓 #{first} is scheduled for Mon 23 Nov 2026 12:00 CET (Europe/Paris) (in 2 hours) on brand-bsky, brand-x."
    out = await team.say("alice", f"/schedule {second} next slot")
    assert "Mon 23 Nov 2026 17:00 CET (Europe/Paris) (in 7 hours)" in out
    out = await team.say("alice", f"/schedule {third} next slot")
    assert "Tue 24 Nov 2026 09:00 CET (Europe/Paris) (in 23 hours)" in out
    assert team.herald.scheduler.armed() == {
        first: utc(2026, 11, 23, 11, 0), second: utc(2026, 11, 23, 16, 0), third: utc(2026, 11, 24, 8, 0),
    }


async def test_next_slot_for_an_unapproved_post_skips_slots_too_close_for_approval(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/policy deadline=2h")
    await team.say("alice", "/slots brand-x 11:00 17:00")
    await team.say("alice", "/slots brand-bsky 11:00 17:00")
    post_id = await in_review(team)
    out = await team.say("alice", f"/schedule {post_id} next slot")  # 11:00 is in 1 hour: too close
    assert out.startswith(f"🗓 #{post_id} is set for Mon 23 Nov 2026 17:00 CET (Europe/Paris) (in 7 hours).")
    assert team.post(post_id).due_at == utc(2026, 11, 23, 16, 0)


async def test_next_slot_without_slots_is_refused(team: Team) -> None:
    await team.setup_workspace()
    post_id = await team.approved_post()
    before = team.snapshot()
    out = await team.say("alice", f"/schedule {post_id} next slot")
    assert out.startswith(f"✋ None of #{post_id}'s accounts (brand-bsky, brand-x) has posting slots.")
    assert team.snapshot() == before


# --- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ("yesterday 9am", "✋ That time is in the past: I read 'yesterday 9am' as Sun 22 Nov 2026 09:00 CET "
                          "(Europe/Paris), 1 day 1 hour ago."),
        ("2026-11-20 10:00", "✋ That time is in the past: I read '2026-11-20 10:00' as Fri 20 Nov 2026 10:00 CET"),
        ("03/04/2027 10:00", "✋ '03/04/2027' could mean 3 April or 4 March. Write it as 2027-04-03 for 3 April"),
        ("blah blah", "✋ I couldn't read 'blah blah' as a time. Try 'tomorrow 9am', 'in 2 hours'"),
    ],
)
async def test_an_unusable_time_is_refused_and_changes_nothing(team: Team, when: str, message: str) -> None:
    await team.setup_workspace()
    post_id = await team.approved_post()
    await team.say("alice", f"/schedule {post_id} tomorrow 9am")
    before, armed = team.snapshot(), team.herald.scheduler.armed()
    out = await team.say("alice", f"/schedule {post_id} {when}")
    assert out.startswith(message)
    assert team.snapshot() == before
    assert team.herald.scheduler.armed() == armed
    assert team.post(post_id).due_at == utc(2026, 11, 24, 8, 0)


async def test_scheduling_a_post_with_no_targets_is_refused(team: Team) -> None:
    await team.say("alice", "/setup Acme")
    await team.say("alice", "/timezone Europe/Paris")
    post_id = await draft(team, "Nowhere to go")  # no account connected yet
    before = team.snapshot()
    out = await team.say("alice", f"/schedule {post_id} tomorrow 9am")
    assert out == f"✋ #{post_id} has no target accounts yet: /targets {post_id} <account…>"
    assert team.snapshot() == before
    assert team.herald.scheduler.armed() == {}


async def test_scheduling_a_cancelled_post_is_refused(team: Team) -> None:
    await team.setup_workspace()
    post_id = await team.approved_post()
    await team.say("alice", f"/cancel {post_id}")
    before = team.snapshot()
    out = await team.say("alice", f"/schedule {post_id} tomorrow 9am")
    assert out == f"✋ #{post_id} is cancelled, so it can't be scheduled."
    assert team.snapshot() == before
    assert team.herald.scheduler.armed() == {}


async def test_a_time_that_leaves_no_room_for_the_approval_deadline_is_refused(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/policy deadline=2h")
    post_id = await in_review(team)
    before = team.snapshot()
    out = await team.say("alice", f"/schedule {post_id} in 1 hour")
    assert out.startswith("✋ Mon 23 Nov 2026 11:00 CET (Europe/Paris) (in 1 hour) leaves no time for approval")
    assert team.snapshot() == before


# --- unschedule, cancel, queue ----------------------------------------------------------------


async def test_unschedule_removes_the_time_and_disarms_the_clock(team: Team) -> None:
    await team.setup_workspace()
    post_id = await team.approved_post()
    await team.say("alice", f"/schedule {post_id} in 2 hours")
    assert team.herald.scheduler.armed() == {post_id: utc(2026, 11, 23, 11, 0)}
    out = await team.say("alice", f"/unschedule {post_id}")
    assert out == f"#{post_id} has no time now (approved). /schedule {post_id} <when> sets one again."
    post = team.post(post_id)
    assert (post.state, post.due_at) == ("approved", None)
    assert team.herald.scheduler.armed() == {}
    await team.tick(hours=3)
    assert team.sandbox_posts() == []
    assert team.post(post_id).state == "approved"


async def test_cancel_drops_a_scheduled_post_and_disarms_the_clock(team: Team) -> None:
    await team.setup_workspace()
    post_id = await team.approved_post()
    await team.say("alice", f"/schedule {post_id} in 2 hours")
    out = await team.say("alice", f"/cancel {post_id}")
    assert out == f"#{post_id} is cancelled and won't publish."
    assert team.post(post_id).state == "cancelled"
    assert team.herald.scheduler.armed() == {}
    assert await team.tick(hours=3) == ""
    assert team.sandbox_posts() == []
    out = await team.say("alice", "/queue")
    assert out == "Nothing is scheduled. /schedule <post> <when> sets a time."


async def test_queue_lists_posts_in_time_order_and_flags_unapproved_ones(team: Team) -> None:
    await team.setup_workspace()
    late = await team.approved_post("Late one")
    early = await in_review(team, "Early one")
    middle = await draft(team, "Middle one")
    unscheduled = await team.approved_post("No time yet")
    await team.say("alice", f"/schedule {late} 2026-12-01 18:30")
    await team.say("alice", f"/schedule {early} in 2 hours")
    await team.say("alice", f"/schedule {middle} tomorrow 9am")
    out = await team.say("bob", "/queue")
    assert out.splitlines() == [
        "Queue:",
        f"  Mon 23 Nov 2026 12:00 CET (Europe/Paris) (in 2 hours) · #{early} (needs approval: in review) · "
        "brand-bsky, brand-x · Early one",
        f"  Tue 24 Nov 2026 09:00 CET (Europe/Paris) (in 23 hours) · #{middle} (needs approval: draft) · "
        "brand-bsky, brand-x · Middle one",
        f"  Tue 1 Dec 2026 18:30 CET (Europe/Paris) (in 8 days 8 hours) · #{late} · brand-bsky, brand-x · Late one",
    ]
    assert f"#{unscheduled}" not in out


async def test_scheduling_an_unapproved_post_says_it_needs_approval(team: Team) -> None:
    await team.setup_workspace()
    post_id = await in_review(team)
    out = await team.say("alice", f"/schedule {post_id} tomorrow 9am")
    assert out == (
        f"🗓 #{post_id} is set for Tue 24 Nov 2026 09:00 CET (Europe/Paris) (in 23 hours). It publishes then once "
        "approved (1 approval(s) still needed by Tue 24 Nov 2026 09:00 CET (Europe/Paris))."
    )
    assert team.post(post_id).state == "in_review"
    assert team.herald.scheduler.armed() == {post_id: utc(2026, 11, 24, 8, 0)}


# --- unapproved posts at their time -----------------------------------------------------------


async def test_an_unapproved_post_expires_at_its_time_by_default(team: Team) -> None:
    await team.setup_workspace()
    post_id = await in_review(team)
    await team.say("alice", f"/schedule {post_id} tomorrow 9am")
    assert await team.tick(hours=22, minutes=59) == ""
    assert team.post(post_id).state == "in_review"
    out = await team.tick(minutes=1)
    assert out.startswith(
        f"⌛ #{post_id} wasn't approved by its deadline (Tue 24 Nov 2026 09:00 CET (Europe/Paris)), so it was "
        "held and won't publish."
    )
    assert f"/schedule {post_id} <new time> puts it back in review." in out
    assert team.post(post_id).state == "expired"
    assert team.sandbox_posts() == []
    assert [d.state for d in team.deliveries(post_id)] == ["pending", "pending"]
    assert team.herald.scheduler.armed() == {}
    assert await team.tick(hours=1) == ""  # told once
    assert team.sandbox_posts() == []


async def test_an_unapproved_post_publishes_at_its_time_when_the_policy_says_so(team: Team) -> None:
    await team.setup_workspace()
    out = await team.say("alice", "/policy unapproved=publish")
    assert "unapproved=publish — a post not approved by then is published anyway, and the team is told" in out
    post_id = await in_review(team)
    await team.say("alice", f"/schedule {post_id} in 3 hours")
    assert await team.tick(hours=2, minutes=59) == ""
    assert team.sandbox_posts() == []
    out = await team.tick(minutes=1)
    assert (
        f"ℹ️ #{post_id} wasn't approved by its time; the policy says publish anyway, so it's going out." in out
    )
    assert f"📣 #{post_id} is published on all 2 account(s):" in out
    assert team.post(post_id).state == "published"
    assert len(team.sandbox_posts()) == 2


async def test_with_a_two_hour_deadline_the_post_expires_two_hours_before_its_time(team: Team) -> None:
    await team.setup_workspace()
    out = await team.say("alice", "/policy deadline=2h")
    assert "deadline=120m — approval is due 120 minutes before the post's time" in out
    post_id = await in_review(team)
    out = await team.say("alice", f"/schedule {post_id} in 5 hours")
    assert "(1 approval(s) still needed by Mon 23 Nov 2026 13:00 CET (Europe/Paris))" in out
    assert team.herald.scheduler.armed() == {post_id: utc(2026, 11, 23, 12, 0)}
    assert await team.tick(hours=2, minutes=59) == ""
    assert team.post(post_id).state == "in_review"
    out = await team.tick(minutes=1)
    assert f"⌛ #{post_id} wasn't approved by its deadline (Mon 23 Nov 2026 13:00 CET (Europe/Paris))" in out
    assert team.post(post_id).state == "expired"
    await team.tick(hours=3)
    assert team.sandbox_posts() == []


async def test_approval_before_the_deadline_publishes_on_time(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/policy deadline=2h")
    post_id = await in_review(team)
    await team.say("alice", f"/schedule {post_id} in 5 hours")
    await team.tick(hours=2, minutes=30)
    out = await team.say("bob", f"/approve {post_id}")
    assert "Approved and scheduled for Mon 23 Nov 2026 15:00 CET (Europe/Paris) (in 2 hours 30 minutes)." in out
    assert team.herald.scheduler.armed() == {post_id: utc(2026, 11, 23, 14, 0)}
    assert await team.tick(hours=2, minutes=29) == ""
    out = await team.tick(minutes=1)
    assert f"📣 #{post_id} is published on all 2 account(s):" in out
    assert len(team.sandbox_posts()) == 2


async def test_an_expired_post_can_be_rescheduled_and_goes_back_to_review(team: Team) -> None:
    await team.setup_workspace()
    post_id = await in_review(team)
    await team.say("alice", f"/schedule {post_id} in 2 hours")
    await team.tick(hours=2)
    assert team.post(post_id).state == "expired"
    out = await team.say("alice", f"/schedule {post_id} tomorrow 9am")
    assert out.startswith(f"🗓 #{post_id} is set for Tue 24 Nov 2026 09:00 CET (Europe/Paris) (in 21 hours).")
    assert team.post(post_id).state == "in_review"
    assert team.herald.scheduler.armed() == {post_id: utc(2026, 11, 24, 8, 0)}
    out = await team.say("bob", f"/approve {post_id}")
    assert "Approved and scheduled for Tue 24 Nov 2026 09:00 CET (Europe/Paris)" in out
    out = await team.tick(hours=21)
    assert f"📣 #{post_id} is published on all 2 account(s):" in out
    assert len(team.sandbox_posts()) == 2


async def test_rescheduling_an_expired_post_into_the_past_is_refused(team: Team) -> None:
    await team.setup_workspace()
    post_id = await in_review(team)
    await team.say("alice", f"/schedule {post_id} in 2 hours")
    await team.tick(hours=2)
    before = team.snapshot()
    out = await team.say("alice", f"/schedule {post_id} 2026-11-23 09:00")
    assert out.startswith("✋ That time is in the past")
    assert team.post(post_id).state == "expired"
    assert team.snapshot() == before


async def test_a_deadline_set_after_scheduling_still_applies(team: Team) -> None:
    await team.setup_workspace()
    post_id = await in_review(team)
    await team.say("alice", f"/schedule {post_id} tomorrow 9am")
    await team.say("alice", "/policy deadline=2h")
    assert await team.tick(hours=20, minutes=59) == ""
    out = await team.tick(minutes=1)  # 07:00 in Paris, two hours before the post's time
    assert f"⌛ #{post_id} wasn't approved by its deadline (Tue 24 Nov 2026 07:00 CET (Europe/Paris))" in out
    assert team.post(post_id).state == "expired"


async def test_with_a_deadline_and_unapproved_publish_the_post_waits_for_its_own_time(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/policy deadline=2h unapproved=publish")
    post_id = await in_review(team)
    await team.say("alice", f"/schedule {post_id} in 5 hours")
    assert await team.tick(hours=3) == ""  # the deadline passes: not expired, not published early
    assert team.post(post_id).state == "in_review"
    assert team.sandbox_posts() == []
    assert await team.tick(hours=1, minutes=59) == ""
    out = await team.tick(minutes=1)
    assert f"ℹ️ #{post_id} wasn't approved by its time; the policy says publish anyway" in out
    assert team.post(post_id).state == "published"
    assert len(team.sandbox_posts()) == 2


async def test_the_schedule_button_on_a_draft_asks_when(team: Team) -> None:
    await team.setup_workspace()
    out = await team.say("alice", "/draft Spring sale starts today!")
    assert "[3] Schedule…" in out
    out = await team.say("alice", "3")
    assert out == "When? e.g. tomorrow 9am (type it, or a /command to skip)"
    out = await team.say("alice", "tomorrow 9am")
    assert out.startswith("🗓 #1 is set for Tue 24 Nov 2026 09:00 CET (Europe/Paris) (in 23 hours).")
    assert out.endswith("Send it for approval with /submit 1.")
    assert team.post(1).state == "draft"
    assert team.herald.scheduler.armed() == {1: utc(2026, 11, 24, 8, 0)}


async def test_a_clock_time_already_past_today_is_refused_not_moved_to_tomorrow(team: Team) -> None:
    await team.setup_workspace()
    post_id = await team.approved_post()
    before = team.snapshot()
    out = await team.say("alice", f"/schedule {post_id} 9am")  # it's 10:00 in Paris
    assert out == (
        "✋ Mon 23 Nov 2026 09:00 CET (Europe/Paris): that's already past today; did you mean tomorrow 9am? "
        "Type 'tomorrow 9am'."
    )
    assert team.snapshot() == before


async def test_unapproved_publish_never_sends_a_post_that_was_never_submitted_or_sent_back(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/policy unapproved=publish")
    await team.say("alice", "/draft Never submitted")
    await team.say("alice", "/schedule 1 in 1 hour")
    await team.say("alice", "/draft Sent back")
    await team.say("alice", "/submit 2")
    await team.say("bob", "/changes 2 Wrong price")
    await team.say("alice", "/schedule 2 in 1 hour")
    out = await team.tick(hours=1)
    assert "⌛ #1 was never submitted for approval by its deadline" in out
    assert "⌛ #2 was sent back for changes and not resubmitted by its deadline" in out
    assert (team.post(1).state, team.post(2).state) == ("expired", "expired")
    assert team.sandbox_posts() == []


async def test_a_post_published_by_the_sweep_is_no_longer_armed(team: Team) -> None:
    await team.setup_workspace()
    post_id = await team.approved_post()
    await team.say("alice", f"/schedule {post_id} in 1 hour")
    assert post_id in team.herald.scheduler.armed()
    await team.tick(hours=1)
    assert team.post(post_id).state == "published"
    assert team.herald.scheduler.armed() == {}
