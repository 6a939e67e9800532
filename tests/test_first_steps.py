"""What a new team trips over first (the trust issue, items 9 and 10): each line here was wrong before, through
the console chat as a person types it — a clear answer, and nothing changed where it is refused."""

from __future__ import annotations

from sqlmodel import select

from storage.models import Workspace
from tests.conftest import FakeClock, Team
from tests.test_console import changes_nothing
from tests.test_downtime import restart


async def test_setup_in_a_chat_without_a_title_asks_for_the_name_instead_of_calling_it_console(team: Team) -> None:
    out = await changes_nothing(team, "alice", "/setup", "What's the team called?")
    assert "console" not in out
    out = await team.say("alice", "Acme Marketing")
    assert "Workspace 'Acme Marketing' is ready and alice is its admin." in out
    with team.herald.db.session() as session:
        assert [w.name for w in session.exec(select(Workspace)).all()] == ["Acme Marketing"]


async def test_setup_approvals_with_more_words_is_refused(team: Team) -> None:
    await team.setup_workspace()
    out = await changes_nothing(team, "alice", "/setup approvals extra", "takes no more words", "Nothing changed")
    assert "already belongs" not in out


async def test_a_policy_key_given_twice_is_refused(team: Team) -> None:
    await team.setup_workspace()
    await changes_nothing(team, "alice", "/policy approvals=1 approvals=2", "approvals= is given twice",
                          "Nothing changed")


async def test_an_option_without_a_value_is_refused_not_published_as_text(team: Team) -> None:
    await team.setup_workspace()
    await changes_nothing(team, "alice", "/draft hello to=", "to= needs a value", "to=all", "Nothing was saved")
    await changes_nothing(team, "alice", "/draft hello link= campaign=spring", "link= needs a value")


async def test_alerts_off_shows_no_zero_times_rule(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/alerts off")
    out = await team.say("alice", "/alerts")
    assert "Take-off and surge alerts: off (/alerts on)." in out
    assert "0×" not in out
    assert "/alerts on brings back take-off and surge alerts at 3× the usual." in out


async def test_posts_shows_when_a_published_post_went_out(team: Team, clock: FakeClock) -> None:
    await team.setup_workspace()
    post_id = await team.approved_post()
    await team.say("alice", f"/schedule {post_id} in 2 hours")
    await team.tick(hours=2)
    out = await team.say("alice", "/posts")
    assert f"#{post_id} published · published Mon 23 Nov 2026 12:00 CET (Europe/Paris) · Spring sale" in out


async def test_a_catch_up_publish_after_downtime_says_it_is_late(team: Team, db_url: str, clock: FakeClock) -> None:
    await team.setup_workspace()
    post_id = await team.approved_post()
    await team.say("alice", f"/schedule {post_id} in 1 hour")
    team, lines = await restart(team, db_url, clock, hours=1, minutes=7)
    try:
        said = "\n".join(lines)
        assert (f"⏱ #{post_id} goes out 7 minutes late: its time was Mon 23 Nov 2026 11:00 CET (Europe/Paris) "
                "(Herald was down or paused; still within the 15-minute grace period).") in said
        assert f"📣 #{post_id} is published on all 2 account(s)" in said
    finally:
        await team.herald.stop()


async def test_control_characters_and_halves_of_characters_are_refused_before_anything_is_read(team: Team) -> None:
    await team.setup_workspace()
    await changes_nothing(team, "alice", "/draft a\x00b", "control character (U+0000)", "Nothing was changed")
    await changes_nothing(team, "alice", "/draft \x1b[31mred alert", "control character (U+001B)")
    await changes_nothing(team, "alice", "/draft broken \ud83d half", "lone surrogate")
    out = await team.say("alice", "/draft Two lines\nand a\ttab are fine")
    assert "Draft #1 saved." in out


async def test_overlong_text_and_numbers_are_refused_with_a_clear_message(team: Team) -> None:
    await team.setup_workspace()
    await changes_nothing(team, "alice", "/reply 12345678901234567890 thanks!", "isn't an inbox item number")
    await changes_nothing(team, "alice", "/schedule ² tomorrow 9am", "'²' isn't a post number")
    await changes_nothing(team, "alice", "/draft " + "a" * 30_000, "longer than the 25,000 characters")
    await team.say("alice", "/draft Spring sale")
    await changes_nothing(team, "alice", "/variant 1 x " + "b" * 20_001, "Herald keeps texts up to 20000")
