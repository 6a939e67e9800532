"""The console chat: Herald on stdin/stdout, and the test backend every test talks through.

- Lines starting with `/` are commands; `/as <name>` switches who is typing.
- Buttons under a reply are shown numbered (`[1] Approve`); typing the number presses it.
  A button that needs a note (Request changes, Reject) asks for it on the next line.
- A line ending with `\\` continues on the next one, for multi-line posts.
- Notifications Herald sends on its own (publish results, approval requests) print here too.
- A file Herald sends (a CSV from /export) is written into ./exports/ and its path printed.
- A command that takes a file (/import, /draft) takes it as a path among its words: `/import /path/to/plan.csv`
  hands Herald that file's bytes, as Telegram and Discord hand in an attached file.

It keeps the chat front end contract of bot/chats/front.py like Telegram and Discord.
"""

from __future__ import annotations

import asyncio
import mimetypes
import re
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TextIO

from handlers.core.chat import Actor, Attachment, Button, ChatAddress, ChatRef, Command, MediaIn, Reply, plain
from handlers.core.commands import COMMANDS, Kind

PLATFORM = "console"
NAME_RE = re.compile(r"[\w.\-]{1,32}")


class ConsoleChat:
    """A line-based chat; `say()` pushes a line and returns what Herald printed in answer."""

    def __init__(
        self,
        handle: Callable[[Command], Awaitable[Reply]],
        *,
        chat_id: str = "console",
        user: str = "you",
        write: Callable[[str], None] | None = None,
        exports_dir: Path = Path("exports"),
    ) -> None:
        self.handle = handle
        self.exports_dir = exports_dir  # where files Herald sends (a CSV export) are written
        self.chat_id = chat_id
        self.user = user
        self._write = write or (lambda text: print(text, flush=True))
        self.buttons: list[Button] = []
        self.prompting: Button | None = None
        self.partial: list[str] = []
        self.captured: list[str] | None = None
        self.closed = False
        self.prompt_shown = False  # `name> ` is on screen, waiting for a line (serve)

    @property
    def chat(self) -> ChatRef:
        return ChatRef(PLATFORM, self.chat_id, private=True)

    def actor(self) -> Actor:
        return Actor(PLATFORM, self.user, self.user, username=self.user.lower())

    def emit(self, text: str) -> None:
        if self.captured is not None:
            self.captured.append(text)
        self._write(text)

    def render(self, reply: Reply) -> str:
        text = ("✋ " if reply.error else "") + ("📌 " if reply.pinned else "") + plain(reply.text)
        if reply.image is not None:
            text += f"\n[image: {len(reply.image):,} bytes]"
        if reply.attachment is not None:
            try:
                text += f"\n[file: {self.save(reply.attachment)} ({len(reply.attachment.data):,} bytes)]"
            except OSError as exc:
                text += f"\n[file {reply.attachment.filename} not saved: {exc}]"
        self.buttons = list(reply.buttons)  # buttons belong to the last message shown
        if reply.buttons:
            text += "\n" + "  ".join(
                f"[{i}] {b.label}" for i, b in enumerate(reply.buttons, start=1)
            ) + "   (type a number to press)"
        return text

    def save(self, attachment: Attachment) -> Path:
        """Write a file Herald sent into the exports folder, never over an earlier one; its path."""
        self.exports_dir.mkdir(parents=True, exist_ok=True)
        name = Path(attachment.filename).name or "file"
        stem, suffix = Path(name).stem, Path(name).suffix
        path, n = self.exports_dir / name, 1
        while path.exists():
            path, n = self.exports_dir / f"{stem}-{n}{suffix}", n + 1
        path.write_bytes(attachment.data)
        return path

    # -- the chat front end contract (bot/chats/front.py): one process, one terminal -------------

    platform = PLATFORM
    leader_name: str | None = None  # every process has its own console
    receiving = True

    async def start(self, *, receive: bool = True) -> None:
        """Nothing to connect: `serve()` reads the lines."""

    async def start_receiving(self) -> None:
        """The console always receives."""

    async def stop_receiving(self) -> None:
        """The console always receives."""

    async def stop(self) -> None:
        self.closed = True

    async def send(self, chat: ChatAddress, reply: Reply) -> None:
        """Notifier: Herald speaking on its own into this chat. A notice that comes while the prompt waits for
        a line takes the prompt's place and the prompt is written again under it, so what the person types
        next still starts on a fresh `name> ` line. A terminal can't edit or pin what it printed: a notice that
        `replaces` an earlier one (a post's status) is printed as it comes, a pinned one marked 📌."""
        if chat.chat_id != self.chat_id:
            return
        waiting = self.prompt_shown
        if waiting:
            sys.stdout.write("\r" + " " * len(self._prompt_text()) + "\r")  # rub out the bare prompt
            self.prompt_shown = False
        self.emit(self.render(reply))
        if waiting:
            self._write_prompt()

    async def say(self, line: str) -> str:
        """Handle one typed line; return everything printed because of it."""
        self.captured = []
        try:
            await self._line(line)
            return "\n".join(self.captured)
        finally:
            self.captured = None

    async def _line(self, raw: str) -> None:
        line = raw.rstrip("\n")
        if line.endswith("\\"):
            self.partial.append(line[:-1])
            return
        if self.partial:
            line = "\n".join([*self.partial, line])
            self.partial = []
        stripped = line.strip()
        if not stripped:
            return
        if self.prompting is not None and not stripped.startswith("/"):
            button, self.prompting = self.prompting, None
            await self._run(Command(button.command, self.actor(), self.chat, args={**button.args, "text": stripped}))
            return
        self.prompting = None
        if stripped.isdigit():
            await self._press(int(stripped))
            return
        if not stripped.startswith("/"):
            self.emit("Commands start with /. Type /help to see them.")
            return
        name, _, rest = stripped[1:].partition(" ")
        if "\n" in name:
            name, _, more = name.partition("\n")
            rest = more + (" " + rest if rest else "")
        name = name.lower()
        if name == "as":
            who = rest.strip().lstrip("@")
            if not NAME_RE.fullmatch(who):
                self.emit("Usage: /as <name> — a name of letters, digits, '.', '-' or '_'.")
                return
            self.user = who
            self.emit(f"(you are now {who})")
            return
        if name in ("quit", "exit"):
            self.closed = True
            return
        rest, media = self.file_of(name, rest.strip())
        await self._run(Command(name, self.actor(), self.chat, text=rest, media=media))

    @staticmethod
    def file_of(name: str, rest: str) -> tuple[str, tuple[MediaIn, ...]]:
        """For a command that takes a file: the first of its words that is the path of a file, read as that file
        (`/import submit /path/to/plan.csv`); the other words stay the command's text."""
        spec = COMMANDS.get(name)
        if spec is None or not spec.takes_kind(Kind.MEDIA):
            return rest, ()
        words = rest.split(" ")
        for i, word in enumerate(words):
            if not word.startswith(("/", "./", "~")):
                continue
            path = Path(word).expanduser()
            try:
                data = path.read_bytes() if path.is_file() else None
            except OSError:
                data = None
            if data is not None:
                kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                return " ".join(words[:i] + words[i + 1:]).strip(), (MediaIn(path.name, kind, data),)
        return rest, ()

    async def _press(self, number: int) -> None:
        if not 1 <= number <= len(self.buttons):
            self.emit(f"There's no button {number} on the last message." if self.buttons
                      else "There are no buttons to press.")
            return
        button = self.buttons[number - 1]
        if button.prompt:
            self.prompting = button
            self.emit(f"{button.prompt} (type it, or a /command to skip)")
            return
        await self._run(Command(button.command, self.actor(), self.chat, args=dict(button.args)))

    async def _run(self, command: Command) -> None:
        reply = await self.handle(command)
        self.emit(self.render(reply))
        if reply.ask is not None:  # Herald wants the next line as text for ask.command
            self.prompting = reply.ask

    async def serve(self, stream: TextIO = sys.stdin, prompt: bool = True) -> None:
        """Read lines until end of input or /quit.

        Lines are read by a daemon thread, so a Herald stopped by a signal never waits on a
        terminal nobody types into.
        """
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[str] = asyncio.Queue()

        def read() -> None:
            while True:
                line = stream.readline()
                loop.call_soon_threadsafe(lines.put_nowait, line)
                if line == "":
                    return

        threading.Thread(target=read, name="console-stdin", daemon=True).start()
        while not self.closed:
            if prompt:
                self._write_prompt()
            line = await lines.get()
            self.prompt_shown = False
            if line == "":
                break
            await self._line(line)

    def _prompt_text(self) -> str:
        return f"{self.user}> "

    def _write_prompt(self) -> None:
        sys.stdout.write(self._prompt_text())
        sys.stdout.flush()
        self.prompt_shown = True
