"""The workspace through the console chat: /setup, /timezone, /role, /policy, /pause, /resume and /help."""

from __future__ import annotations

from sqlmodel import select

from storage.models import Member, Workspace
from tests.conftest import Team, refused


def workspace(team: Team) -> Workspace:
    with team.herald.db.session() as session:
        ws = session.get(Workspace, 1)
        assert ws is not None
        return ws


def roles(team: Team) -> dict[str, str]:
    with team.herald.db.session() as session:
        return {m.name: m.role for m in session.exec(select(Member)).all()}


async def scheduled_post_in_an_hour(team: Team) -> int:
    post_id = await team.approved_post("Launch day is here")
    out = await team.say("alice", f"/schedule {post_id} in 1 hour")
    assert "scheduled for Mon 23 Nov 2026 11:00 CET" in out
    return post_id


# /setup


async def test_setup_creates_the_workspace_with_its_author_as_admin(team: Team) -> None:
    out = await team.say("alice", "/setup Acme")
    assert "Workspace 'Acme' is ready and alice is its admin." in out
    assert "/connect sandbox name=brand" in out  # tells what to do next
    assert workspace(team).name == "Acme"
    assert roles(team) == {"alice": "admin"}
    assert len(team.snapshot()["chatlink"]) == 1


async def test_commands_before_setup_are_refused_and_point_to_setup(team: Team) -> None:
    await refused(team, "alice", "/draft Hello", "isn't set up yet", "/setup")
    await refused(team, "alice", "/policy", "isn't set up yet")
    assert team.snapshot()["workspace"] == []


async def test_setup_twice_is_refused_and_keeps_the_first_workspace(team: Team) -> None:
    await team.say("alice", "/setup Acme")
    await refused(team, "carol", "/setup Hijack", "already belongs to workspace 'Acme'")
    assert roles(team) == {"alice": "admin"}


async def test_a_workspace_name_over_80_characters_is_refused(team: Team) -> None:
    await refused(team, "alice", "/setup " + "A" * 81, "at most 80 characters")
    assert team.snapshot()["workspace"] == []


# /timezone


async def test_timezone_is_shown_and_set_by_an_admin(team: Team) -> None:
    await team.say("alice", "/setup Acme")
    out = await team.say("carol", "/timezone")
    assert "This workspace's timezone is UTC: it's Mon 23 Nov 2026 09:00 UTC now." in out
    out = await team.say("alice", "/timezone europe/paris")
    assert "Timezone set to Europe/Paris (was UTC)" in out
    assert "Mon 23 Nov 2026 10:00 CET (Europe/Paris)" in out
    assert workspace(team).timezone == "Europe/Paris"


async def test_a_misspelled_timezone_is_refused_with_a_suggestion(team: Team) -> None:
    await team.say("alice", "/setup Acme")
    await refused(team, "alice", "/timezone Europe/Pariss", "I don't know the time zone 'Europe/Pariss'",
                  "Did you mean 'Europe/Paris'?")
    await refused(team, "alice", "/timezone Mars/Phobos", "I don't know the time zone 'Mars/Phobos'", "IANA")
    assert workspace(team).timezone == "UTC"


async def test_a_viewer_cannot_change_the_timezone(team: Team) -> None:
    await team.say("alice", "/setup Acme")
    await refused(team, "carol", "/timezone Europe/Paris", "Only admins can change the timezone", "You're a viewer")


# /role


async def test_an_admin_gives_and_changes_roles(team: Team) -> None:
    await team.say("alice", "/setup Acme")
    assert "bob is now approver (was viewer)." in await team.say("alice", "/role @bob approver")
    assert "bob is now editor (was approver)." in await team.say("alice", "/role Bob EDITOR")
    assert roles(team) == {"alice": "admin", "bob": "editor"}
    out = await team.say("carol", "/role")  # anyone may read the list
    assert "alice (console): admin" in out and "bob (console): editor" in out
    assert "Everyone else is a viewer." in out


async def test_a_new_role_takes_effect_at_once(team: Team) -> None:
    await team.say("alice", "/setup Acme")
    await refused(team, "dave", "/draft Hello", "Only admins or editors can use /draft")
    await team.say("alice", "/role dave editor")
    assert "Draft #1 saved." in await team.say("dave", "/draft Hello")


async def test_a_viewer_cannot_give_roles(team: Team) -> None:
    await team.say("alice", "/setup Acme")
    await refused(team, "carol", "/role carol admin", "Only admins can give roles", "You're a viewer")
    assert roles(team) == {"alice": "admin"}


async def test_an_approver_cannot_give_roles(team: Team) -> None:
    await team.setup_workspace()
    await refused(team, "bob", "/role bob admin", "Only admins can give roles", "You're an approver")


async def test_an_unknown_role_is_refused(team: Team) -> None:
    await team.say("alice", "/setup Acme")
    await refused(team, "alice", "/role bob boss", "'boss' isn't a role", "admin, editor, approver, viewer")


async def test_a_role_for_an_unusable_name_is_refused(team: Team) -> None:
    await team.say("alice", "/setup Acme")
    await refused(team, "alice", "/role bob! editor", "isn't a name I can use")
    await refused(team, "alice", "/role bob editor extra", "Usage: /role <person>")


async def test_the_only_admin_cannot_step_down(team: Team) -> None:
    await team.say("alice", "/setup Acme")
    await refused(team, "alice", "/role alice editor", "alice is the only admin", "Make someone else admin first")
    await team.say("alice", "/role bob admin")
    assert "alice is now editor (was admin)." in await team.say("alice", "/role alice editor")


# /policy


async def test_policy_shows_the_defaults(team: Team) -> None:
    await team.say("alice", "/setup Acme")
    out = await team.say("carol", "/policy")
    assert "Approval policy of 'Acme':" in out
    for line in ("approvals=1", "approvers=admin,approver", "self_approval=off", "deadline=0m", "unapproved=hold"):
        assert line in out


async def test_an_admin_changes_several_policy_settings_at_once(team: Team) -> None:
    await team.say("alice", "/setup Acme")
    out = await team.say(
        "alice", "/policy approvals=2 deadline=2h unapproved=publish self_approval=on approvers=admin,editor")
    assert "Policy updated." in out
    assert "approvals=2" in out and "deadline=120m" in out and "unapproved=publish" in out
    ws = workspace(team)
    assert (ws.approvals_needed, ws.approval_deadline_minutes, ws.unapproved_action, ws.self_approval,
            ws.approver_roles) == (2, 120, "publish", True, "admin,editor")


async def test_bad_policy_values_are_refused(team: Team) -> None:
    await team.say("alice", "/setup Acme")
    await refused(team, "alice", "/policy approvals=11", "approvals must be a whole number from 0 to 10")
    await refused(team, "alice", "/policy approvals=two", "approvals must be a whole number from 0 to 10")
    await refused(team, "alice", "/policy approvers=viewer", "approvers must be roles from admin, editor, approver")
    await refused(team, "alice", "/policy self_approval=maybe", "self_approval must be on or off")
    await refused(team, "alice", "/policy unapproved=later", "unapproved must be hold or publish")
    await refused(team, "alice", "/policy deadline=soon", "'soon' isn't a duration")
    await refused(team, "alice", "/policy deadline=15d", "at most 14 days")
    await refused(team, "alice", "/policy colour=red", "'colour=red' isn't a policy setting", "Usage: /policy")
    await refused(team, "alice", "/policy approvals", "'approvals' isn't a policy setting")


async def test_one_bad_setting_refuses_the_whole_policy_change(team: Team) -> None:
    await team.say("alice", "/setup Acme")
    await refused(team, "alice", "/policy approvals=3 deadline=soon", "'soon' isn't a duration")
    assert workspace(team).approvals_needed == 1


async def test_an_approver_cannot_change_the_policy(team: Team) -> None:
    await team.setup_workspace()
    await refused(team, "bob", "/policy approvals=0", "Only admins can change the approval policy",
                  "You're an approver")
    assert workspace(team).approvals_needed == 1


# /pause and /resume


async def test_a_pause_and_its_reason_show_in_the_queue(team: Team) -> None:
    await team.setup_workspace()
    await scheduled_post_in_an_hour(team)
    out = await team.say("bob", "/pause Bad news today")
    assert "⏸ Publishing paused by bob: Bad news today." in out
    assert "1 scheduled post(s) wait in /queue" in out
    out = await team.say("carol", "/queue")
    assert "⏸ Paused by bob: Bad news today — /resume" in out
    assert "#1" in out
    ws = workspace(team)
    assert ws.paused and ws.pause_reason == "Bad news today" and ws.paused_by == "bob"


async def test_a_post_due_while_paused_waits_and_publishes_once_on_resume_within_grace(team: Team) -> None:
    await team.setup_workspace()
    post_id = await scheduled_post_in_an_hour(team)
    await team.say("alice", "/pause Crisis")
    await team.tick(minutes=61)  # past its time
    await team.tick(minutes=5)
    assert team.sandbox_posts() == []
    assert team.post(post_id).state == "scheduled"
    out = await team.say("alice", "/resume")  # 6 minutes late: inside the 15-minute grace
    assert "▶️ Publishing resumed by alice." in out
    assert f"#{post_id} is published on all 2 account(s)" in out
    assert team.post(post_id).state == "published"
    assert len(team.sandbox_posts()) == 2
    await team.tick(minutes=5)
    assert len(team.sandbox_posts()) == 2  # once, not twice
    assert "⏸" not in await team.say("alice", "/queue")


async def test_a_post_due_while_paused_past_the_grace_is_held_on_resume(team: Team) -> None:
    await team.setup_workspace()
    post_id = await scheduled_post_in_an_hour(team)
    await team.say("alice", "/pause")
    await team.tick(minutes=80)
    out = await team.say("alice", "/resume")
    assert f"#{post_id} was due Mon 23 Nov 2026 11:00 CET" in out
    assert "15-minute grace period" in out and f"/publish {post_id} sends it now" in out
    assert team.sandbox_posts() == []
    assert team.post(post_id).held_note


async def test_a_viewer_cannot_pause_or_resume(team: Team) -> None:
    await team.setup_workspace()
    await refused(team, "carol", "/pause Panic", "Only admins or approvers or editors can use /pause",
                  "You're a viewer")
    assert not workspace(team).paused
    await team.say("alice", "/pause")
    await refused(team, "carol", "/resume", "Only admins or approvers or editors can use /resume")
    assert workspace(team).paused


async def test_pausing_twice_or_resuming_unpaused_is_refused(team: Team) -> None:
    await team.setup_workspace()
    await refused(team, "alice", "/resume", "Publishing isn't paused.")
    await team.say("bob", "/pause Storm")
    await refused(team, "alice", "/pause again", "Already paused by bob", "Storm", "/resume lifts it")


# /help


async def test_help_lists_every_group_and_works_before_setup(team: Team) -> None:
    out = await team.say("carol", "/help")
    assert not out.startswith("✋")
    for group in ("Workspace:", "Accounts:", "Posts:", "Approvals:", "Scheduling:", "Publishing:"):
        assert group in out
    for usage in ("/setup [workspace name | approvals | reports | team]", "/draft <text>", "/pause [reason]", "/connect <network>"):
        assert usage in out


async def test_help_for_one_command_gives_details_and_who_may_use_it(team: Team) -> None:
    out = await team.say("carol", "/help /draft")
    assert "The text may span several lines." in out
    assert "Example: /draft Spring sale starts today!" in out
    assert "Who: admin, editor." in out
    assert "Who: everyone." in await team.say("carol", "/help posts")
    assert "Who: admin, approver, editor." in await team.say("carol", "/help pause")


async def test_help_for_an_unknown_command_is_refused(team: Team) -> None:
    await refused(team, "carol", "/help frobnicate", "There's no /frobnicate", "/help lists every command")


async def test_every_command_has_help_with_an_example_that_names_it(team: Team) -> None:
    from handlers.core.commands import COMMANDS

    assert len(COMMANDS) >= 30
    for name, spec in COMMANDS.items():
        out = await team.say("alice", f"/help {name}")
        assert out.startswith(spec.usage), name
        assert f"Example: /{name}" in out and out.count("Example:") == 1, name
        assert "Who: " in out, name


async def test_a_city_alone_is_answered_with_its_zone(team: Team) -> None:
    await team.setup_workspace()
    out = await refused(team, "alice", "/timezone Paris")
    assert "Did you mean 'Europe/Paris'?" in out


async def test_readers_is_shown_to_anyone_and_set_by_an_admin(team: Team) -> None:
    await team.say("alice", "/setup Acme")
    out = await team.say("carol", "/readers")
    assert out.startswith("Readers: members — in a Discord server, only people with a Herald role") and \
        "/readers open" in out
    await refused(team, "carol", "/readers open", "Only admins can choose who reads", "You're a viewer")
    await refused(team, "alice", "/readers everyone", "'everyone' isn't a choice. Nothing changed.",
                  "/readers open")
    assert workspace(team).readers == "members"
    out = await team.say("alice", "/readers OPEN")
    assert out.startswith("Readers: open (was members) — in a Discord server, every member of the server")
    assert workspace(team).readers == "open"
