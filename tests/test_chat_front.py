"""What the chat front ends share: the ChatFront contract, and commands declaring what they take."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.chats.console import ConsoleChat
from bot.chats.discord import DiscordFront, slash_options
from bot.chats.front import ChatFront
from bot.chats.telegram import TelegramFront
from handlers.core.chat import Command, Reply
from handlers.core.commands import COMMANDS, Kind


async def nothing(command: Command) -> Reply:
    return Reply("")


def test_telegram_discord_and_the_console_keep_the_chat_front_contract(tmp_path: Path) -> None:
    fronts = [TelegramFront(nothing, "1:A"), DiscordFront(nothing, "token"), ConsoleChat(nothing, exports_dir=tmp_path)]
    assert all(isinstance(front, ChatFront) for front in fronts)
    assert [front.platform for front in fronts] == ["telegram", "discord", "console"]
    assert [front.receiving for front in fronts] == [False, False, True]  # the console needs no connection
    assert fronts[0].leader_name and fronts[1].leader_name and fronts[2].leader_name is None


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_what_a_command_takes_follows_its_usage(name: str) -> None:
    spec = COMMANDS[name]
    words = spec.usage.split()[1:]
    if spec.takes is None:
        return
    shown = [p for p in spec.takes if p.kind != Kind.MEDIA]
    assert len(shown) <= len(words), f"/{name} takes more than its usage says"
    for param, word in zip(shown, words, strict=False):
        assert not (word.startswith("[") and param.required), (name, word)  # optional in the usage: optional here
    if words and words[0].strip("<>[]") == "post":
        assert spec.takes[0].kind == Kind.POST
    options = slash_options(spec)
    assert len(options) <= 25 and len({o.name for o in options}) == len(options)
    assert all(len(o.description) <= 100 and o.name.islower() for o in options)
