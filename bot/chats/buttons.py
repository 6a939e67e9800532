"""One button codec for every chat front end: a `Button` (command, args, prompt) written into the few bytes a
pressed button sends back, and read again, so buttons keep working after a restart.

Each platform has its budget and its own spelling, kept so that buttons already on cards keep working:

- Telegram callback_data, 64 bytes: `h:approve post=12 revision=3`; `p:` instead of `h:` marks a button that
  asks for a line first (its question is kept in memory by the front end).
- Discord custom_id, 100 characters: `herald:approve:post=12,revision=3:` then `?<question>`, the question
  shortened to fit; a modal's custom_id is `heraldm:<command>:<args>`.

In both, an int is written as is, a string quoted (`:` / `=~`), anything else as quoted JSON (`!` / `=!`).
`encode` answers None when a button doesn't fit: the front end keeps it in an `Overflow` (memory, lost on
restart) and sends its token instead.
"""

from __future__ import annotations

import json
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from handlers.core.chat import Button


def utf8_bytes(text: str) -> int:
    return len(text.encode())


@dataclass(frozen=True)
class ButtonCodec:
    """How one platform writes a Button: prefixes, separators, value marks and the budget."""

    prefix: str  # before the command
    asking_prefix: str  # before the command of a button that asks first (== prefix when the question travels)
    budget: int
    measure: Callable[[str], int]
    key_pattern: str  # what an argument's name may be
    args_start: str  # between the command and the arguments
    arg_sep: str  # between two arguments
    int_mark: str
    str_mark: str
    json_mark: str
    safe: str  # characters left unquoted in strings
    end: str = ""  # after the arguments (then the question, when it travels)
    carries_prompt: bool = False  # the question travels in the id (shortened to fit), after "?"
    args_always: bool = False  # write args_start even when there are no arguments

    def encode(self, button: Button) -> str | None:
        """The id for `button`, or None when it doesn't fit the budget (or an argument's name can't go in it)."""
        tokens = []
        for key, value in button.args.items():
            if not re.fullmatch(self.key_pattern, key):
                return None
            if isinstance(value, int) and not isinstance(value, bool):
                tokens.append(f"{key}{self.int_mark}{value}")
            elif isinstance(value, str):
                tokens.append(f"{key}{self.str_mark}{quote(value, safe=self.safe)}")
            else:
                tokens.append(f"{key}{self.json_mark}{quote(json.dumps(value, separators=(',', ':')), safe=self.safe)}")
        asks = button.prompt is not None
        head = (self.asking_prefix if asks else self.prefix) + button.command
        if tokens or self.args_always:
            head += self.args_start + self.arg_sep.join(tokens)
        head += self.end
        if not (self.carries_prompt and asks):
            return head if self.measure(head) <= self.budget else None
        head += "?"  # asks: the question follows, as much of it as fits
        if self.measure(head) > self.budget:
            return None
        prompt = button.prompt or ""
        while prompt and self.measure(head + quote(prompt, safe="")) > self.budget:
            prompt = prompt[:-1]
        return head + quote(prompt, safe="")

    def decode(self, data: str) -> Button | None:
        """The button an id stands for (label ""; prompt "" for one that asks, when the question stayed
        behind); None if the id isn't one of ours."""
        asks = False
        if data.startswith(self.prefix):
            rest = data[len(self.prefix):]
        elif data.startswith(self.asking_prefix):
            rest, asks = data[len(self.asking_prefix):], True
        else:
            return None
        prompt: str | None = "" if asks and not self.carries_prompt else None
        if self.end:
            rest, sep, tail = rest.rpartition(self.end)
            if not sep:
                return None
            if self.carries_prompt and tail.startswith("?"):
                prompt = unquote(tail[1:])
            elif tail:
                return None
        command, _, args_text = rest.partition(self.args_start)
        if not re.fullmatch(r"[a-z0-9_]{1,64}", command):
            return None
        marks = sorted({self.int_mark, self.str_mark, self.json_mark}, key=len, reverse=True)
        token_re = re.compile(f"({self.key_pattern})({'|'.join(map(re.escape, marks))})(.*)")
        args: dict[str, Any] = {}
        for token in filter(None, args_text.split(self.arg_sep)):
            match = token_re.fullmatch(token)
            if match is None:
                return None
            key, mark, raw = match.groups()
            try:
                args[key] = (int(raw) if mark == self.int_mark else unquote(raw) if mark == self.str_mark
                             else json.loads(unquote(raw)))
            except ValueError:
                return None
        return Button(label="", command=command, args=args, prompt=prompt)


TELEGRAM = ButtonCodec(
    prefix="h:", asking_prefix="p:", budget=64, measure=utf8_bytes, key_pattern=r"\w{1,32}",
    args_start=" ", arg_sep=" ", int_mark="=", str_mark=":", json_mark="!", safe="-_.~#@+,",
)
DISCORD = ButtonCodec(
    prefix="herald:", asking_prefix="herald:", budget=100, measure=len, key_pattern=r"[a-z_]{1,20}",
    args_start=":", arg_sep=",", int_mark="=", str_mark="=~", json_mark="=!", safe="", end=":",
    carries_prompt=True, args_always=True,
)
DISCORD_MODAL = ButtonCodec(
    prefix="heraldm:", asking_prefix="heraldm:", budget=100, measure=len, key_pattern=r"[a-z_]{1,20}",
    args_start=":", arg_sep=",", int_mark="=", str_mark="=~", json_mark="=!", safe="", args_always=True,
)


class Overflow:
    """Buttons too big for their platform's id, kept in memory under a random token (lost on restart)."""

    def __init__(self, prefix: str, keep: int) -> None:
        self.prefix = prefix
        self.keep = keep
        self.buttons: OrderedDict[str, Button] = OrderedDict()

    def store(self, button: Button) -> str:
        token = f"{self.prefix}{secrets.token_urlsafe(12)}"  # random: an old card's token never names a new button
        self.buttons[token] = button
        while len(self.buttons) > self.keep:
            self.buttons.popitem(last=False)
        return token

    def get(self, data: str) -> Button | None:
        return self.buttons.get(data) if data.startswith(self.prefix) else None
