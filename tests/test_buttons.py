"""The button codec shared by the chat front ends (bot/chats/buttons.py): each platform's spelling and budget."""

from __future__ import annotations

from bot.chats.buttons import DISCORD, DISCORD_MODAL, TELEGRAM, Overflow
from handlers.core.chat import Button


def test_a_discord_custom_id_round_trips_with_its_question_shortened_to_100_characters() -> None:
    button = Button("Schedule…", "schedule", {"post": 12, "note": "a b", "flags": [1, 2]}, prompt="When? " * 40)
    custom_id = DISCORD.encode(button)
    assert custom_id is not None and len(custom_id) == 100
    assert custom_id.startswith("herald:schedule:post=12,note=~a%20b,flags=!%5B1%2C2%5D:?When%3F%20")
    decoded = DISCORD.decode(custom_id)
    assert decoded is not None
    assert (decoded.command, decoded.args) == ("schedule", button.args)
    assert decoded.prompt is not None and button.prompt is not None and button.prompt.startswith(decoded.prompt)


def test_a_button_that_asks_keeps_asking_when_its_question_does_not_fit() -> None:
    button = Button("Go", "reject", {"post": 1, "note": "x" * 71}, prompt="Why?")
    custom_id = DISCORD.encode(button)
    assert custom_id is not None and custom_id.endswith(":?")
    decoded = DISCORD.decode(custom_id)
    assert decoded is not None and decoded.prompt == ""
    assert DISCORD.encode(Button("Go", "reject", {"post": 1, "note": "x" * 72}, prompt="Why?")) is None  # no room for "?"


def test_what_does_not_fit_is_refused_and_kept_in_memory_instead() -> None:
    big = Button("Big", "approve", {"note": "y" * 120})
    assert DISCORD.encode(big) is None and TELEGRAM.encode(big) is None
    overflow = Overflow("m:", keep=2)
    tokens = [overflow.store(big) for _ in range(3)]
    assert overflow.get(tokens[0]) is None and overflow.get(tokens[2]) is big  # the oldest is forgotten
    assert TELEGRAM.decode(tokens[2]) is None


def test_modal_ids_and_foreign_ids() -> None:
    assert DISCORD_MODAL.encode(Button("Draft", "draft", {})) == "heraldm:draft:"
    modal = DISCORD_MODAL.decode("heraldm:changes:post=3,revision=2")
    assert modal is not None and (modal.command, modal.args) == ("changes", {"post": 3, "revision": 2})
    for foreign in ("", "other:approve:post=1:", "herald:Approve:post=1:", "herald:approve:post=x:", "h:approve post"):
        assert DISCORD.decode(foreign) is None and TELEGRAM.decode(foreign) is None
