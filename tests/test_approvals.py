"""The approval step through the console chat: /submit, /approve, /changes, /reject, typed and by button."""

from __future__ import annotations

from sqlmodel import select

from bot.chats.console import PLATFORM
from handlers.core.chat import Actor, Command
from storage.models import Approval
from tests.conftest import Team

OVER_X_LIMIT = "Sale! " * 49 + "Sale!!"  # 300 characters: more than X allows (280)


async def draft(team: Team, text: str = "Spring sale starts today!", *, user: str = "alice") -> int:
    out = await team.say(user, f"/draft {text}")
    return int(out.split("#", 1)[1].split(" ", 1)[0].rstrip("."))


async def edit_elsewhere(team: Team, user: str, text: str) -> str:
    """/edit typed by `user` somewhere else (say, on their phone): this chat's last card keeps its buttons."""
    console = team.herald.console
    reply = await team.herald.handle(Command("edit", Actor(PLATFORM, user, user), console.chat, text=text))
    return reply.text


def approvals(team: Team, post_id: int) -> list[tuple[str, int, str, str | None]]:
    """(who, revision, decision, note) of every recorded decision on a post."""
    with team.herald.db.session() as session:
        rows = session.exec(select(Approval).where(Approval.post_id == post_id).order_by(Approval.id)).all()
        return [(a.name, a.revision, a.decision, a.note) for a in rows]


# --- submitting -------------------------------------------------------------------------------


async def test_submit_sends_a_draft_to_review_with_an_approval_card(team: Team) -> None:
    await team.setup_workspace()
    post_id = await draft(team)
    out = await team.say("alice", f"/submit {post_id}")
    assert f"🔔 alice asks for approval of #{post_id} (1 needed, from admin or approver)." in out
    assert "Approvals: 0 of 1 (revision 1)" in out
    assert "[1] Approve  [2] Request changes  [3] Reject" in out
    assert team.post(post_id).state == "in_review"


async def test_submit_is_refused_when_the_text_is_over_a_targets_limit(team: Team) -> None:
    await team.setup_workspace()
    post_id = await draft(team, OVER_X_LIMIT)
    before = team.snapshot()
    out = await team.say("alice", f"/submit {post_id}")
    assert out.startswith("✋ ")
    assert f"#{post_id} doesn't fit every network yet:" in out
    assert "brand-x:" in out and "300/280" in out
    assert "brand-bsky" not in out  # 300 graphemes fit Bluesky: only the offending account is named
    assert f"/variant {post_id} <account> <text>" in out
    assert team.post(post_id).state == "draft"
    assert team.snapshot() == before


async def test_submit_is_refused_when_the_post_has_no_targets(team: Team) -> None:
    await team.say("alice", "/setup Acme")
    await team.say("alice", "/role bob approver")
    post_id = await draft(team, "Nobody to send this to")  # no account connected yet
    before = team.snapshot()
    out = await team.say("alice", f"/submit {post_id}")
    assert out == f"✋ #{post_id} has no target accounts yet: /targets {post_id} <account…>"
    assert team.post(post_id).state == "draft"
    assert team.snapshot() == before


async def test_with_no_approvals_needed_submit_approves_at_once(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/policy approvals=0")
    post_id = await draft(team)
    out = await team.say("alice", f"/submit {post_id}")
    assert f"#{post_id} needs no approval in this workspace. Approved." in out
    assert "[1] Approve" not in out
    assert team.post(post_id).state == "approved"
    assert approvals(team, post_id) == []


async def test_with_no_approvals_needed_scheduling_a_draft_schedules_it_at_once(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/policy approvals=0")
    post_id = await draft(team)
    out = await team.say("alice", f"/schedule {post_id} tomorrow 9am")
    assert out == (
        f"🗓 #{post_id}: Approved and scheduled for Tue 24 Nov 2026 09:00 CET (Europe/Paris) (in 23 hours)."
    )
    assert team.post(post_id).state == "scheduled"


# --- approving --------------------------------------------------------------------------------


async def test_an_approver_approves_by_typed_command(team: Team) -> None:
    await team.setup_workspace()
    post_id = await draft(team)
    await team.say("alice", f"/submit {post_id}")
    out = await team.say("bob", f"/approve {post_id}")
    assert f"✅ bob approved #{post_id} (1 of 1). Approved. Publish with /publish {post_id}" in out
    assert team.post(post_id).state == "approved"
    assert approvals(team, post_id) == [("bob", 1, "approve", None)]


async def test_an_approver_approves_by_pressing_the_button(team: Team) -> None:
    await team.setup_workspace()
    post_id = await draft(team)
    await team.say("alice", f"/submit {post_id}")
    out = await team.say("bob", "1")
    assert f"✅ bob approved #{post_id} (1 of 1)." in out
    assert team.post(post_id).state == "approved"


async def test_approving_a_timed_post_schedules_it(team: Team) -> None:
    await team.setup_workspace()
    post_id = await draft(team)
    await team.say("alice", f"/schedule {post_id} tomorrow 9am")
    await team.say("alice", f"/submit {post_id}")
    out = await team.say("bob", "1")
    assert "Approved and scheduled for Tue 24 Nov 2026 09:00 CET (Europe/Paris) (in 23 hours)." in out
    assert team.post(post_id).state == "scheduled"


async def test_two_approvals_need_two_different_approvers(team: Team) -> None:
    await team.setup_workspace(approvers=("bob", "carol"))
    await team.say("alice", "/policy approvals=2")
    post_id = await draft(team)
    out = await team.say("alice", f"/submit {post_id}")
    assert "(2 needed, from admin or approver)" in out
    assert "Approvals: 0 of 2 (revision 1)" in out

    out = await team.say("bob", "1")
    assert f"✅ bob approved #{post_id} (1 of 2). 1 more approval(s) needed." in out
    assert team.post(post_id).state == "in_review"

    before = team.snapshot()
    out = await team.say("bob", f"/approve {post_id}")  # the same person again
    assert out == f"✋ You already approved revision 1 of #{post_id}; it needs 1 more from someone else."
    assert team.post(post_id).state == "in_review"
    assert team.snapshot() == before

    out = await team.say("carol", f"/approve {post_id}")
    assert f"✅ carol approved #{post_id} (2 of 2). Approved." in out
    assert team.post(post_id).state == "approved"
    assert [(who, decision) for who, _r, decision, _n in approvals(team, post_id)] == [
        ("bob", "approve"), ("carol", "approve")]


async def test_an_edit_voids_earlier_approvals(team: Team) -> None:
    await team.setup_workspace(approvers=("bob", "carol"))
    await team.say("alice", "/policy approvals=2")
    post_id = await draft(team)
    await team.say("alice", f"/submit {post_id}")
    await team.say("bob", f"/approve {post_id}")
    out = await team.say("alice", f"/edit {post_id} Spring sale starts tomorrow!")
    assert "Revision 2." in out and "The 1 earlier approval(s) no longer count." in out
    assert "Approvals: 0 of 2 (revision 2)" in out
    out = await team.say("carol", f"/approve {post_id}")
    assert "(1 of 2)" in out  # bob's approval was for revision 1
    assert team.post(post_id).state == "in_review"


async def test_an_author_cannot_approve_their_own_post_by_default(team: Team) -> None:
    await team.setup_workspace()
    post_id = await draft(team)  # alice is admin, so she could approve others' posts
    await team.say("alice", f"/submit {post_id}")
    before = team.snapshot()
    for line in ("1", f"/approve {post_id}"):  # the button first, while the card is the last message
        out = await team.say("alice", line)
        assert out == (
            f"✋ You wrote #{post_id}, and this workspace doesn't let authors approve their own posts. "
            "Ask another approver (an admin can allow it with /policy self_approval=on)."
        )
    assert team.post(post_id).state == "in_review"
    assert team.snapshot() == before


async def test_self_approval_is_allowed_once_the_policy_says_so(team: Team) -> None:
    await team.setup_workspace()
    out = await team.say("alice", "/policy self_approval=on")
    assert "self_approval=on — authors approving their own posts" in out
    post_id = await draft(team)
    await team.say("alice", f"/submit {post_id}")
    out = await team.say("alice", "1")
    assert f"✅ alice approved #{post_id} (1 of 1). Approved." in out
    assert team.post(post_id).state == "approved"


async def test_a_viewer_pressing_approve_is_refused(team: Team) -> None:
    await team.setup_workspace()
    post_id = await draft(team)
    await team.say("alice", f"/submit {post_id}")
    before = team.snapshot()
    out = await team.say("vera", "1")  # never given a role: a viewer
    assert out == (
        "✋ Only admins or approvers can approve posts here. You're a viewer; "
        "an admin can change that with /role vera approver."
    )
    assert team.post(post_id).state == "in_review"
    assert team.snapshot() == before


async def test_an_editor_pressing_approve_is_refused(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/role eddie editor")
    post_id = await draft(team)
    await team.say("alice", f"/submit {post_id}")
    before = team.snapshot()
    out = await team.say("eddie", "1")
    assert out.startswith("✋ Only admins or approvers can approve posts here. You're an editor;")
    out = await team.say("eddie", f"/approve {post_id}")
    assert out.startswith("✋ Only admins or approvers can approve posts here. You're an editor;")
    assert team.post(post_id).state == "in_review"
    assert team.snapshot() == before


async def test_a_viewer_cannot_reject_by_button_either(team: Team) -> None:
    await team.setup_workspace()
    post_id = await draft(team)
    await team.say("alice", f"/submit {post_id}")
    before = team.snapshot()
    await team.say("vera", "3")
    out = await team.say("vera", "I don't like it")
    assert out.startswith("✋ Only admins or approvers can reject posts here. You're a viewer;")
    assert team.post(post_id).state == "in_review"
    assert team.snapshot() == before


async def test_a_stale_approve_button_changes_nothing(team: Team) -> None:
    await team.setup_workspace()
    post_id = await draft(team)
    await team.say("alice", f"/submit {post_id}")
    # alice edits from another device: the revision-1 card stays the last message in this chat
    out = await edit_elsewhere(team, "alice", f"{post_id} Spring sale starts tomorrow!")
    assert "Revision 2." in out
    assert team.post(post_id).revision == 2
    before = team.snapshot()
    out = await team.say("bob", "1")
    assert out == (
        f"✋ That button is for revision 1 of #{post_id}, but the post was edited since "
        "(now revision 2). Nothing changed; look at the latest version."
    )
    assert team.post(post_id).state == "in_review"
    assert approvals(team, post_id) == []
    assert team.snapshot() == before
    out = await team.say("bob", f"/approve {post_id}")  # approving the latest version works
    assert f"✅ bob approved #{post_id} (1 of 1)." in out
    assert approvals(team, post_id) == [("bob", 2, "approve", None)]


async def test_a_stale_reject_button_changes_nothing(team: Team) -> None:
    await team.setup_workspace()
    post_id = await draft(team)
    await team.say("alice", f"/submit {post_id}")
    await edit_elsewhere(team, "alice", f"{post_id} Spring sale starts tomorrow!")
    before = team.snapshot()
    out = await team.say("bob", "3")
    assert out == f"Why reject #{post_id}? (type it, or a /command to skip)"
    out = await team.say("bob", "Off brand")
    assert out.startswith(f"✋ That button is for revision 1 of #{post_id}")
    assert team.post(post_id).state == "in_review"
    assert team.snapshot() == before


async def test_approving_a_draft_never_submitted_is_refused(team: Team) -> None:
    await team.setup_workspace()
    post_id = await draft(team)
    before = team.snapshot()
    out = await team.say("bob", f"/approve {post_id}")
    assert out == f"✋ #{post_id} is draft, not waiting for approval, so it can't be approved."
    assert team.post(post_id).state == "draft"
    assert team.snapshot() == before


async def test_approving_an_already_approved_post_is_refused(team: Team) -> None:
    await team.setup_workspace(approvers=("bob", "carol"))
    post_id = await team.approved_post()
    before = team.snapshot()
    out = await team.say("carol", f"/approve {post_id}")
    assert out == f"✋ #{post_id} is approved, not waiting for approval, so it can't be approved."
    assert team.snapshot() == before


async def test_a_post_with_enough_approvals_after_the_policy_is_lowered_is_not_held(team: Team) -> None:
    await team.setup_workspace(approvers=("bob", "carol"))
    await team.say("alice", "/policy approvals=2")
    post_id = await draft(team)
    await team.say("alice", f"/submit {post_id}")
    await team.say("bob", f"/approve {post_id}")  # 1 of 2
    await team.say("alice", "/policy approvals=1")  # bob's approval is now all it needs
    await team.say("alice", f"/schedule {post_id} in 2 hours")
    out = await team.tick(hours=2)
    assert "wasn't approved" not in out
    assert team.post(post_id).state == "published"
    assert len(team.sandbox_posts()) == 2


# --- changes and rejection --------------------------------------------------------------------


async def test_request_changes_by_button_asks_for_a_note_and_sends_the_post_back(team: Team) -> None:
    await team.setup_workspace()
    post_id = await draft(team)
    await team.say("alice", f"/submit {post_id}")
    out = await team.say("bob", "2")
    assert out == f"What should change in #{post_id}? (type it, or a /command to skip)"
    assert team.post(post_id).state == "in_review"  # nothing happens until the note comes
    out = await team.say("bob", "Mention the discount code")
    assert out == (
        f"✏️ bob asked for changes on #{post_id}: Mention the discount code\n"
        f"alice: /edit {post_id} <text>, then /submit {post_id} again."
    )
    assert team.post(post_id).state == "changes_requested"
    assert approvals(team, post_id) == [("bob", 1, "changes", "Mention the discount code")]


async def test_a_post_sent_back_for_changes_can_be_edited_and_resubmitted(team: Team) -> None:
    await team.setup_workspace()
    post_id = await draft(team)
    await team.say("alice", f"/submit {post_id}")
    await team.say("bob", f"/changes {post_id} Mention the discount code")
    await team.say("alice", f"/edit {post_id} Spring sale: code SPRING10")
    out = await team.say("alice", f"/submit {post_id}")
    assert "Approvals: 0 of 1 (revision 2)" in out
    out = await team.say("bob", "1")
    assert f"✅ bob approved #{post_id} (1 of 1)." in out
    assert team.post(post_id).state == "approved"


async def test_changes_by_typed_command_need_a_note(team: Team) -> None:
    await team.setup_workspace()
    post_id = await draft(team)
    await team.say("alice", f"/submit {post_id}")
    before = team.snapshot()
    out = await team.say("bob", f"/changes {post_id}")
    assert out == "✋ Say what should change: /changes <post> <note>"
    assert team.snapshot() == before
    out = await team.say("bob", f"/changes {post_id} Too long")
    assert f"✏️ bob asked for changes on #{post_id}: Too long" in out
    assert team.post(post_id).state == "changes_requested"


async def test_reject_by_button_asks_why_and_the_post_never_publishes(team: Team) -> None:
    await team.setup_workspace()
    post_id = await draft(team)
    await team.say("alice", f"/schedule {post_id} in 2 hours")
    await team.say("alice", f"/submit {post_id}")
    assert post_id in team.herald.scheduler.armed()
    out = await team.say("bob", "3")
    assert out == f"Why reject #{post_id}? (type it, or a /command to skip)"
    out = await team.say("bob", "Off brand")
    assert out == f"⛔ bob rejected #{post_id}: Off brand\nIt won't publish. /draft starts a new post."
    assert team.post(post_id).state == "rejected"
    assert post_id not in team.herald.scheduler.armed()
    assert approvals(team, post_id) == [("bob", 1, "reject", "Off brand")]
    await team.tick(hours=3)
    assert team.sandbox_posts() == []
    out = await team.say("alice", f"/submit {post_id}")
    assert out.startswith(f"✋ #{post_id} is rejected; only drafts and posts sent back for changes")


async def test_reject_by_typed_command_needs_a_reason(team: Team) -> None:
    await team.setup_workspace()
    post_id = await draft(team)
    await team.say("alice", f"/submit {post_id}")
    out = await team.say("bob", f"/reject {post_id}")
    assert out == "✋ Say why: /reject <post> <reason>"
    assert team.post(post_id).state == "in_review"
    out = await team.say("bob", f"/reject {post_id} Legal said no")
    assert f"⛔ bob rejected #{post_id}: Legal said no" in out
    assert team.post(post_id).state == "rejected"


async def test_a_slash_command_skips_the_note_prompt(team: Team) -> None:
    await team.setup_workspace()
    post_id = await draft(team)
    await team.say("alice", f"/submit {post_id}")
    await team.say("bob", "3")  # Reject asks why…
    out = await team.say("bob", f"/approve {post_id}")  # …but bob changes his mind
    assert f"✅ bob approved #{post_id} (1 of 1)." in out
    assert team.post(post_id).state == "approved"
    assert [d for _w, _r, d, _n in approvals(team, post_id)] == ["approve"]
