"""The neutral message model every front end converts to and from: Command in, Reply out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Actor:
    """Who typed the command or pressed the button."""

    platform: str
    user_id: str
    name: str
    is_chat_admin: bool = False


@dataclass(frozen=True)
class ChatRef:
    """Where the command came from."""

    platform: str
    chat_id: str
    title: str = ""
    private: bool = False


@dataclass(frozen=True)
class Command:
    """One command: `name` without the slash, `text` the raw words after it, `args` from buttons."""

    name: str
    actor: Actor
    chat: ChatRef
    text: str = ""
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Button:
    """A button under a reply; pressing it runs `command` with `args` as the presser.

    When `prompt` is set the front end first asks for a line of text (a note or reason)
    and passes it as `args["text"]`.
    """

    label: str
    command: str
    args: dict[str, Any] = field(default_factory=dict)
    prompt: str | None = None


@dataclass(frozen=True)
class Reply:
    """What Herald answers: text, buttons, and an optional image (PNG bytes)."""

    text: str
    buttons: tuple[Button, ...] = ()
    image: bytes | None = None
    private: bool = False
    error: bool = False


@dataclass(frozen=True)
class ChatAddress:
    """A chat Herald can post into on its own (for notifications)."""

    platform: str
    chat_id: str
