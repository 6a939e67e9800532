"""The neutral message model every front end converts to and from: Command in, Reply out."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Actor:
    """Who typed the command or pressed the button."""

    platform: str
    user_id: str
    name: str
    is_chat_admin: bool = False
    username: str | None = None  # the @handle where the platform has one (Telegram), lowercase, no '@'
    groups: tuple[str, ...] = ()  # the platform roles the person holds in this chat (Discord role ids)


@dataclass(frozen=True)
class ChatRef:
    """Where the command came from."""

    platform: str
    chat_id: str
    title: str = ""
    private: bool = False
    space: str = ""  # the server a channel belongs to (Discord guild id); "" where chats stand alone


@dataclass(frozen=True)
class MediaIn:
    """A file a user handed in with a command (a photo sent to the chat), already downloaded."""

    filename: str
    content_type: str
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class Command:
    """One command: `name` without the slash, `text` the raw words after it, `args` from buttons.

    `mentions` are the people (or platform roles, user_id "role:<id>") the front end resolved
    from the message: a text mention, the author of the message replied to, a Discord member
    or role option. `media` are files sent with the command.
    """

    name: str
    actor: Actor
    chat: ChatRef
    text: str = ""
    args: dict[str, Any] = field(default_factory=dict)
    mentions: tuple[Actor, ...] = ()
    media: tuple[MediaIn, ...] = ()


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
class Attachment:
    """A file Herald sends with a reply (a CSV export): the front end uploads it as a document."""

    filename: str
    content_type: str
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class Reply:
    """What Herald answers: text, buttons, and an optional image (PNG bytes).

    - `private`: holds something only the asker should see (credentials, account details).
    - `ask`: Herald wants one more line from the asker; the front end collects their next
      message (a reply prompt, a modal) and runs `ask.command` with it as `args["text"]`.
    - `update`: answering a button press, the new content of the message that carried the
      button (the card edited to show who did what); None leaves that message as it was.
    - `delete_command`: the command message itself held a secret; delete it where possible.
    - `card`: the post this reply is the card of, so a front end can find it again.
    - `attachment`: a file to send with the text (a CSV export).
    - `replaces`: a notice that is the latest state of one thing ("status:12", a post's publishing status):
      a front end that remembers the message it sent into that chat under this key edits that message
      instead of sending a new one (where the platform can edit); one it doesn't know, or can't edit, is
      sent as a new message and remembered. Answers to a person ignore it.
    - `pinned`: a notice to keep in sight (crisis mode's card): True pins the message that carries it (the one
      sent, or the one `replaces` edits) where the platform can pin; False unpins it; None leaves pins alone.
    """

    text: str
    buttons: tuple[Button, ...] = ()
    image: bytes | None = None
    private: bool = False
    error: bool = False
    ask: Button | None = None
    update: Reply | None = None
    delete_command: bool = False
    card: int | None = None
    attachment: Attachment | None = None
    replaces: str | None = None
    pinned: bool | None = None


# Third-party text (a commenter's name, a comment) is held between these two marks in a Reply's text: the
# Unicode "first strong isolate" and "pop directional isolate", invisible and harmless where they stay. A
# front end that renders markup shows what is between them as written (Discord escapes its markdown);
# the others drop them (`plain`).
THEIRS_OPEN, THEIRS_CLOSE = "\u2068", "\u2069"


def theirs(text: str) -> str:
    """Mark text written by someone outside the team, so no front end renders it as markup (on one line)."""
    return THEIRS_OPEN + " ".join(plain(text).splitlines()) + THEIRS_CLOSE


def plain(text: str) -> str:
    """The text without the marks of third-party text (for front ends that show text as it is)."""
    return text.replace(THEIRS_OPEN, "").replace(THEIRS_CLOSE, "")


@dataclass(frozen=True)
class ChatAddress:
    """A chat Herald can post into on its own (for notifications)."""

    platform: str
    chat_id: str


# The longest command Herald reads: a post is at most 20,000 characters (handlers/posts/drafts.py), plus options.
MAX_COMMAND_CHARS = 25_000
_ALLOWED_CONTROLS = frozenset("\n\r\t")


def unreadable(command: Command) -> str | None:
    """Why Herald won't read this command, or None. Control characters (NUL, terminal escapes), halves of
    characters (lone surrogates) and over-long text would be stored and sent as they are, or break the
    database (PostgreSQL refuses NUL): refused with what to do, before anything is looked at."""
    texts = [command.text, *(v for v in command.args.values() if isinstance(v, str))]
    if any(len(text) > MAX_COMMAND_CHARS for text in texts):
        return (f"That message is longer than the {MAX_COMMAND_CHARS:,} characters Herald reads in one command. "
                "Nothing was changed; shorten it and send it again.")
    for text in texts:
        for char in text:
            kind = unicodedata.category(char)
            if (kind == "Cc" and char not in _ALLOWED_CONTROLS) or kind == "Cs":
                what = "half of a character (a lone surrogate)" if kind == "Cs" else f"a control character (U+{ord(char):04X})"
                return (f"That message holds {what}, which can't be stored or published. Nothing was changed; "
                        "type it again without it (paste it as plain text).")
    return None
