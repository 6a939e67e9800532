"""The console front end itself: /as, numbered buttons, prompts, `\\` continuation and what it refuses."""

from __future__ import annotations

import pytest

from handlers.core.chat import ChatAddress, Reply
from tests.conftest import Team


async def changes_nothing(team: Team, user: str, line: str, *words: str) -> str:
    """Type a line that must change nothing: the reply holds `words`, and not one row changed."""
    before = team.snapshot()
    out = await team.say(user, line)
    for word in words:
        assert word in out, f"{word!r} not in {out!r}"
    assert team.snapshot() == before
    return out


async def submitted_post(team: Team) -> str:
    """alice drafts and submits #1; returns the approval card with its buttons."""
    await team.say("alice", "/draft Spring sale")
    card = await team.say("alice", "/submit 1")
    assert "[1] Approve  [2] Request changes  [3] Reject   (type a number to press)" in card
    return card


# /as


async def test_as_switches_who_is_typing(team: Team) -> None:
    await team.setup_workspace()
    console = team.herald.console
    assert await team.say("alice", "/as @dave") == "(you are now dave)"
    assert console.user == "dave"
    out = await console.say("/draft Hello")  # the next line is typed by dave, a viewer
    assert "Only admins or editors can use /draft. You're a viewer here" in out
    assert "/role dave <role>" in out
    assert team.snapshot()["post"] == []


async def test_as_with_a_bad_name_keeps_the_same_person(team: Team) -> None:
    await team.say("alice", "/setup Acme")
    out = await changes_nothing(team, "alice", "/as bad name!", "Usage: /as <name>")
    assert team.herald.console.user == "alice"
    assert "Usage: /as <name>" in out
    await changes_nothing(team, "alice", "/as", "Usage: /as <name>")
    assert team.herald.console.user == "alice"


# buttons


async def test_a_button_is_pressed_by_typing_its_number(team: Team) -> None:
    await team.setup_workspace()
    await submitted_post(team)
    out = await team.say("bob", "1")
    assert "✅ bob approved #1 (1 of 1)." in out
    assert team.post(1).state == "approved"


async def test_the_draft_card_buttons_preview_and_submit(team: Team) -> None:
    await team.setup_workspace()
    out = await team.say("alice", "/draft Spring sale")
    assert "[1] Submit for approval  [2] Preview  [3] Schedule…" in out
    out = await team.say("alice", "2")
    assert out.startswith("Preview of #1 (draft, revision 1):")
    await team.say("alice", "/draft Spring sale")  # a new card: its buttons are for #2
    out = await team.say("alice", "1")
    assert "asks for approval of #2" in out
    assert (team.post(1).state, team.post(2).state) == ("draft", "in_review")


async def test_a_button_with_a_prompt_takes_the_next_line_as_its_note(team: Team) -> None:
    await team.setup_workspace()
    await submitted_post(team)
    before = team.snapshot()
    out = await team.say("bob", "2")
    assert out == "What should change in #1? (type it, or a /command to skip)"
    assert team.snapshot() == before  # nothing happens until the note comes
    out = await team.say("bob", "Needs a price")
    assert "✏️ bob asked for changes on #1: Needs a price" in out
    assert team.post(1).state == "changes_requested"


async def test_the_schedule_button_asks_when(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/draft Spring sale")
    assert await team.say("alice", "3") == "When? e.g. tomorrow 9am (type it, or a /command to skip)"
    out = await team.say("alice", "tomorrow 9am")
    assert "#1 is set for Tue 24 Nov 2026 09:00 CET (Europe/Paris)" in out
    assert team.post(1).due_at is not None


async def test_a_command_instead_of_the_note_skips_the_prompt(team: Team) -> None:
    await team.setup_workspace()
    await submitted_post(team)
    await team.say("bob", "3")  # Reject… asks why
    out = await team.say("bob", "/posts")
    assert "#1 in review" in out  # the command ran instead
    assert team.post(1).state == "in_review"
    out = await changes_nothing(team, "bob", "Actually, never mind", "Commands start with /")
    assert "rejected" not in out
    assert team.post(1).state == "in_review"


async def test_pressing_a_number_with_no_buttons(team: Team) -> None:
    await team.say("alice", "/setup Acme")
    assert await changes_nothing(team, "alice", "1") == "There are no buttons to press."


async def test_pressing_a_number_past_the_last_button(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/draft Spring sale")
    assert await changes_nothing(team, "alice", "7") == "There's no button 7 on the last message."
    assert await changes_nothing(team, "alice", "0") == "There's no button 0 on the last message."


async def test_a_number_after_a_reply_without_buttons_presses_nothing(team: Team) -> None:
    await team.setup_workspace()
    await submitted_post(team)  # the approval card: [1] Approve [2] Request changes [3] Reject
    await team.say("bob", "/posts")  # the last message now has no buttons
    out = await changes_nothing(team, "bob", "1")
    assert "no buttons" in out
    assert team.post(1).state == "in_review"


async def test_a_stale_button_for_an_older_revision_changes_nothing(team: Team) -> None:
    await team.setup_workspace()
    await submitted_post(team)
    stale = team.herald.console.buttons[0]
    await team.say("alice", "/edit 1 Spring sale -20%")
    team.herald.console.buttons = [stale]  # bob still looks at the card of revision 1
    await changes_nothing(team, "bob", "1", "That button is for revision 1 of #1", "now revision 2")
    assert team.post(1).state == "in_review"


# continuation, unknown commands, plain text


async def test_a_backslash_continues_the_line(team: Team) -> None:
    await team.setup_workspace()
    assert await team.say("alice", "/draft\\") == ""
    assert await team.say("alice", "First line\\") == ""
    assert await team.say("alice", "\\") == ""  # an empty line inside the post
    assert team.snapshot()["post"] == []
    out = await team.say("alice", "Last line")
    assert "Draft #1 saved." in out
    assert team.post(1).text == "First line\n\nLast line"


async def test_an_unknown_command_is_refused(team: Team) -> None:
    await team.setup_workspace()
    out = await changes_nothing(team, "alice", "/frobnicate now", "I don't know /frobnicate", "/help lists what I can do")
    assert out.startswith("✋")


async def test_commands_are_case_insensitive(team: Team) -> None:
    await team.setup_workspace()
    assert "Draft #1 saved." in await team.say("alice", "/DRAFT Hello")


async def test_a_line_without_a_slash_is_not_a_command(team: Team) -> None:
    await team.setup_workspace()
    out = await changes_nothing(team, "alice", "draft Hello", "Commands start with /. Type /help to see them.")
    assert out == "Commands start with /. Type /help to see them."


async def test_an_empty_line_prints_nothing(team: Team) -> None:
    await team.setup_workspace()
    assert await changes_nothing(team, "alice", "   ") == ""


async def test_notices_for_the_team_print_in_the_console(team: Team) -> None:
    await team.setup_workspace()
    post_id = await team.approved_post()
    await team.say("alice", f"/schedule {post_id} in 1 hour")
    out = await team.tick(minutes=61)
    assert f"📣 #{post_id} is published on all 2 account(s):" in out
    assert "✓ brand-x (sandbox): https://sandbox.herald.invalid/brand-x/" in out


async def test_a_notice_while_the_prompt_waits_takes_its_place_and_the_prompt_comes_back(
    team: Team, capsys: pytest.CaptureFixture[str]
) -> None:
    await team.setup_workspace()
    console = team.herald.console
    printed: list[str] = []
    console._write = printed.append  # what the console prints, apart from the prompt (written to stdout)
    console.user = "alice"
    console._write_prompt()
    await console.send(ChatAddress("console", console.chat_id), Reply("📣 #1 is published"))
    out = capsys.readouterr().out
    assert printed == ["📣 #1 is published"]
    assert out == "alice> " + "\r" + " " * len("alice> ") + "\r" + "alice> "  # rubbed out, then written again
    assert console.prompt_shown
