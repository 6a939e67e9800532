"""The Telegram front end: Herald as a Telegram bot (python-telegram-bot 22), in groups and private chats.

It only translates: every update becomes a `handlers.core.chat.Command`, Herald's `Reply` becomes
Telegram messages. What it maps:

- `/command args` (also `/command@HeraldBot`) → Command(name, text=args). A command addressed to
  another bot is ignored; so is an unknown command in a group unless it names Herald.
- Replies are sent with parse_mode HTML, every character of Herald's text escaped; a reply longer
  than 4096 characters is split at line breaks; `Reply.image` goes as a photo (caption ≤ 1024);
  `Reply.attachment` (a CSV export) as a document (sendDocument), with the text as its caption when short.
- Buttons are inline keyboards whose callback_data (≤ 64 bytes) holds the command and its args
  (`h:approve post=12 revision=3`, written by the shared codec in bot/chats/buttons.py), so they keep
  working after a restart; a button too big for 64 bytes is kept in memory under a token. Pressing one runs the
  command as the presser: a refusal (stale button, wrong role) comes back as a callback alert and
  nothing changes; otherwise the card is edited to `Reply.update`, the callback gets a short
  toast and the reply is posted in the chat.
- Buttons with a prompt (Schedule…, Request changes, Reject) and `Reply.ask` send a
  ForceReply(selective) question; the person's reply to it becomes `args["text"]`. Pending
  questions are kept in memory, keyed by (chat id, question message id): after a restart an
  unanswered question is forgotten (pressing the button again asks again).
- Photos: an album is collected by media_group_id (a short debounce), the largest size of each
  photo is downloaded through getFile and handed in as `Command.media` — on /draft or /attach when
  the caption is that command, on /attach of the card's post when the photo replies to a Herald
  card, on /attach when it follows the same person's /draft in that chat within 30 minutes.
  Other photos are ignored. Any other document (a CSV plan) is downloaded the same way when its caption is a
  command (`/import`), and handed in as that command's `Command.media`.
- Actor: name = @username if any, else the full name; username lowercase; is_chat_admin from
  getChatAdministrators (cached for a minute). Mentions: the author of the message a command
  replies to, and text_mention entities.
- `Reply.private` in a group goes to the person's private chat (or, if they never started one,
  the group is told so without the content); `Reply.delete_command` deletes the command message,
  and when Herald may not, the answer starts by saying plainly that the secret is still in the chat.
- Rate limits: AIORateLimiter (30 messages/s overall, 20 per minute per group); a 429 is waited
  out (retry_after) and the request retried, never dropped.
- Polling (getUpdates long polling) by default; webhook mode when `webhook_url` is given.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import logging
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlparse

from telegram import (
    BotCommand,
    CallbackQuery,
    Chat,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageEntity,
    ReplyParameters,
    Update,
    User,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, TelegramError
from telegram.ext import AIORateLimiter, Application, ContextTypes, TypeHandler

from bot.chats.buttons import TELEGRAM, Overflow
from handlers.core.chat import Actor, Button, ChatAddress, ChatRef, Command, MediaIn, Reply, plain
from handlers.core.commands import COMMANDS

PLATFORM = "telegram"
log = logging.getLogger("herald.telegram")

MAX_TEXT = 4096  # sendMessage / editMessageText, after entity parsing
MAX_CAPTION = 1024
MAX_ALERT = 200  # answerCallbackQuery text
MAX_COMMANDS = 100  # setMyCommands
NOT_DELETED = ("I couldn't delete your message (I need the right to delete messages here): the token in it is "
               "exposed to everyone in this chat and must be revoked now.\n")
DRAFT_WINDOW = 30 * 60  # photos within 30 minutes of a person's /draft join it
COMMAND_RE = re.compile(r"^/([A-Za-z0-9_]{1,64})(?:@([A-Za-z0-9_]{1,64}))?(?:\s+|$)(.*)\Z", re.S)
ALLOWED_UPDATES = ["message", "callback_query"]


# -- text ---------------------------------------------------------------------------------------


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Pieces of at most `limit` UTF-16 units (Telegram's count), cut at line breaks where possible."""
    pieces: list[str] = []
    rest = text
    while utf16_len(rest) > limit:
        cut = 0
        size = 0
        for i, ch in enumerate(rest):
            size += 2 if ord(ch) > 0xFFFF else 1
            if size > limit:
                break
            cut = i + 1
        head = rest[:cut]
        newline = head.rfind("\n")
        space = head.rfind(" ")
        at = newline if newline > cut // 2 else space if space > cut // 2 else cut
        pieces.append(rest[:at].rstrip("\n"))
        rest = rest[at:].lstrip("\n") if at < cut else rest[at:]
    if rest or not pieces:
        pieces.append(rest)
    return [p for p in pieces if p.strip()] or [text[:limit] or "…"]


def clip(text: str, limit: int) -> str:
    if utf16_len(text) <= limit:
        return text
    while utf16_len(text) > limit - 1:
        text = text[: max(0, len(text) - max(1, utf16_len(text) - limit + 1))]
    return text + "…"


def esc(text: str) -> str:
    return html.escape(plain(text), quote=False)  # every character is shown as written: no marks needed


def mention(user: User) -> str:
    """A mention that works without a username (and makes ForceReply(selective) reach them)."""
    return f'<a href="tg://user?id={user.id}">{esc(display_name(user))}</a>'


def display_name(user: User) -> str:
    return f"@{user.username}" if user.username else (user.full_name or str(user.id))


# -- state kept in memory -----------------------------------------------------------------------


@dataclass
class Pending:
    """A question Herald asked (ForceReply): whose answer runs `button` with it as args["text"]."""

    button: Button
    user_id: int
    card_message_id: int | None  # the card whose button asked, edited with the outcome
    asked_at: float = field(default_factory=time.monotonic)


@dataclass
class Album:
    messages: list[Message] = field(default_factory=list)
    last: float = field(default_factory=time.monotonic)


@dataclass
class Origin:
    """Where a command came from: the chat, the person, and their message (to reply to or delete)."""

    chat: Chat
    user: User
    message_id: int | None = None


class TelegramFront:
    """Herald's Telegram bot; `send` is Herald's Notifier for Telegram chats."""

    platform = PLATFORM

    def __init__(
        self,
        handle: Callable[[Command], Awaitable[Reply]],
        token: str,
        *,
        api_url: str | None = None,
        webhook_url: str | None = None,
        webhook_listen: str = "0.0.0.0",
        webhook_port: int = 8443,
        webhook_secret: str | None = None,
        webhook_path: str | None = None,
        poll_interval: float = 0.0,
        poll_timeout: int = 30,
        read_timeout: float = 10.0,
        album_wait: float = 1.2,
        admin_cache_seconds: float = 60.0,
        answer_within: float = 8.0,
        overall_rate: tuple[float, float] = (30, 1),
        group_rate: tuple[float, float] = (20, 60),
        max_retries: int = 1000,  # a 429 delays a message, it doesn't drop it
        max_pending: int = 1000,
        on_chat_moved: Callable[[str, str], Awaitable[object]] | None = None,
    ) -> None:
        self.handle = handle
        self.on_chat_moved = on_chat_moved  # a group became a supergroup: (old chat id, new chat id)
        self.token = token
        self.api_url = api_url.rstrip("/") if api_url else None
        self.webhook_url = webhook_url
        self.webhook_listen = webhook_listen
        self.webhook_port = webhook_port
        # without a secret anyone who finds the webhook URL could post updates as any user: make one
        self.webhook_secret = webhook_secret or (secrets.token_urlsafe(32) if webhook_url else None)
        self.webhook_path = webhook_path
        self.poll_interval = poll_interval
        self.poll_timeout = poll_timeout
        self.read_timeout = read_timeout
        self.album_wait = album_wait
        self.admin_cache_seconds = admin_cache_seconds
        self.answer_within = answer_within
        self.overall_rate = overall_rate
        self.group_rate = group_rate
        self.max_retries = max_retries
        self.max_pending = max_pending
        self.app: Application | None = None  # type: ignore[type-arg]
        self.username = ""
        self.bot_id = 0
        self.pending: OrderedDict[tuple[int, int], Pending] = OrderedDict()
        # (chat, Reply.replaces key) → the message Herald sent for it, edited when that notice changes
        self.replaceable: OrderedDict[tuple[int, str], int] = OrderedDict()
        self.prompts: OrderedDict[str, str] = OrderedDict()  # callback_data → the prompt text of that button
        self.overflow = Overflow("m:", max_pending)  # buttons too big for 64 bytes of callback_data
        self.albums: dict[tuple[int, str], Album] = {}
        self.drafted: dict[tuple[int, int], float] = {}  # (chat, user) → when they last made a /draft
        self.admins: dict[int, tuple[float, frozenset[int]]] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        # told an update's id once it is handled and the background work in flight then (a photo's download,
        # an album) is done: tests wait on it instead of sleeping to prove that nothing more comes
        self.on_handled: Callable[[int], object] | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def build(self) -> Application:  # type: ignore[type-arg]
        builder = (
            Application.builder()
            .token(self.token)
            .rate_limiter(AIORateLimiter(
                overall_max_rate=self.overall_rate[0], overall_time_period=self.overall_rate[1],
                group_max_rate=self.group_rate[0], group_time_period=self.group_rate[1],
                max_retries=self.max_retries,
            ))
            .read_timeout(self.read_timeout)
            .get_updates_read_timeout(self.poll_timeout + self.read_timeout)
            .media_write_timeout(60)
            # one slow command (a /publish, a message waiting in the rate limiter) mustn't hold up every
            # chat; Herald's own claims and optimistic locking keep concurrent commands safe
            .concurrent_updates(True)
        )
        if self.api_url:
            builder = builder.base_url(f"{self.api_url}/bot").base_file_url(f"{self.api_url}/file/bot")
        app = builder.build()
        app.add_handler(TypeHandler(Update, self._on_update))
        app.add_error_handler(self._on_error)
        return app

    @property
    def leader_name(self) -> str | None:
        """One process at a time may poll a bot token (Telegram answers 409 to a second): the name of the
        lock that decides which (bot/leader.py). Webhook mode needs none: every worker takes updates."""
        if self.webhook_url:
            return None
        return "telegram-" + hashlib.sha256(self.token.encode()).hexdigest()[:16]

    async def start(self, *, receive: bool = True) -> None:
        """Connect (getMe) and start the webhook server, or polling when `receive` (else send only: another
        process polls, and `start_receiving` takes over when it stops)."""
        self.app = app = self.build()
        await app.initialize()
        self.username = app.bot.username or ""
        self.bot_id = app.bot.id
        if not app.bot.can_read_all_group_messages:
            log.info("Telegram: @%s has privacy mode on: in groups where it isn't an admin it sees only commands "
                     "and replies to it (photos sent after /draft without a caption won't reach it)", self.username)
        await app.start()
        assert app.updater is not None
        if self.webhook_url:
            await self.register_commands()
            path = self.webhook_path if self.webhook_path is not None else urlparse(self.webhook_url).path
            await app.updater.start_webhook(
                listen=self.webhook_listen, port=self.webhook_port, url_path=path.lstrip("/"),
                webhook_url=self.webhook_url, secret_token=self.webhook_secret, allowed_updates=ALLOWED_UPDATES,
                drop_pending_updates=False,
            )
            log.info("Telegram: @%s receives updates at %s", self.username, self.webhook_url)
        elif receive:
            await self.start_receiving()
        else:
            log.info("Telegram: @%s sends only from this process; another Herald process polls", self.username)

    @property
    def receiving(self) -> bool:
        """Whether this process takes updates (polls, or serves the webhook)."""
        return self.app is not None and self.app.updater is not None and self.app.updater.running

    async def start_receiving(self) -> None:
        """Register the / menu and start long polling (this process became the one that polls)."""
        app = self.app
        if app is None or app.updater is None or app.updater.running:
            return
        await self.register_commands()
        await app.updater.start_polling(
            poll_interval=self.poll_interval, timeout=self.poll_timeout, allowed_updates=ALLOWED_UPDATES,
            drop_pending_updates=False,
        )
        log.info("Telegram: @%s is polling for updates", self.username)

    async def stop_receiving(self) -> None:
        """Stop polling and only send (another process polls now)."""
        app = self.app
        if app is not None and app.updater is not None and app.updater.running:
            await app.updater.stop()
            log.info("Telegram: @%s stopped polling; this process only sends", self.username)

    async def stop(self) -> None:
        app, self.app = self.app, None
        if app is None:
            return
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()

    async def register_commands(self) -> None:
        """setMyCommands: every Herald command with its summary, within Telegram's limits."""
        assert self.app is not None
        commands = [
            BotCommand(spec.name, clip(spec.summary, 256) or spec.name)
            for spec in COMMANDS.values()
            if re.fullmatch(r"[a-z0-9_]{1,32}", spec.name)
        ][:MAX_COMMANDS]
        try:
            await self.app.bot.set_my_commands(commands)
        except TelegramError:
            log.exception("Telegram refused the command list; the / menu stays as it was")

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("Telegram background task failed", exc_info=task.exception())

    @property
    def bot(self) -> Any:
        if self.app is None:
            raise RuntimeError("the Telegram front end isn't started")
        return self.app.bot

    # -- the Notifier ------------------------------------------------------------------------

    async def send(self, chat: ChatAddress, reply: Reply) -> None:
        """Herald speaking on its own (publish results, approval requests, reports). A notice that `replaces`
        one this process sent into the chat edits that message (editMessageText); a new message otherwise. A
        `pinned` notice is pinned when it is sent as a new message (pinChatMessage), and unpinned with False."""
        chat_id = int(chat.chat_id)
        key = reply.replaces
        if key is None:
            sent = await self.deliver(chat_id, reply)
            if reply.pinned and sent:
                await self.pin(chat_id, sent[0].message_id, pinned=True)
            return
        known = self.replaceable.get((chat_id, key))
        if known is not None and reply.pinned is False:
            await self.pin(chat_id, known, pinned=False)
        if known is not None and await self.replace_message(chat_id, known, reply):
            self.replaceable.move_to_end((chat_id, key))
            return
        sent = await self.deliver(chat_id, reply)
        if reply.pinned and sent:
            await self.pin(chat_id, sent[0].message_id, pinned=True)
        if len(sent) == 1 and sent[0].text is not None:  # one text message: the one to edit next time
            self.replaceable[(chat_id, key)] = sent[0].message_id
            self.replaceable.move_to_end((chat_id, key))
            while len(self.replaceable) > self.max_pending:
                self.replaceable.popitem(last=False)
        else:
            self.replaceable.pop((chat_id, key), None)

    async def pin(self, chat_id: int, message_id: int, *, pinned: bool) -> None:
        """Pin (or unpin) a message Herald sent. In a group the bot needs the right to pin messages; without it
        the notice is there all the same, unpinned, and the log says why."""
        try:
            if pinned:
                await self.bot.pin_chat_message(chat_id, message_id, disable_notification=True)
            else:
                await self.bot.unpin_chat_message(chat_id, message_id=message_id)
        except TelegramError as exc:
            log.warning("couldn't %s message %s in %s (%s); give Herald the right to pin messages",
                        "pin" if pinned else "unpin", message_id, chat_id, exc)

    async def replace_message(self, chat_id: int, message_id: int, reply: Reply) -> bool:
        """Edit a notice Herald sent into the new content of `reply`; False when it can't be (a picture or a
        file, text longer than one message, the message deleted or too old to edit): send a new one then."""
        text = ("✋ " if reply.error else "") + reply.text
        if reply.image is not None or reply.attachment is not None or reply.ask is not None \
                or len(split_text(text)) != 1:
            return False
        try:
            await self.bot.edit_message_text(esc(text), chat_id=chat_id, message_id=message_id,
                                             parse_mode=ParseMode.HTML, reply_markup=self.keyboard(reply.buttons))
        except BadRequest as exc:
            if "not modified" in str(exc).lower():
                return True  # it already says exactly that
            log.info("couldn't edit notice %s in %s (%s); sending a new one", message_id, chat_id, exc)
            return False
        except TelegramError as exc:
            log.info("couldn't edit notice %s in %s (%s); sending a new one", message_id, chat_id, exc)
            return False
        return True

    # -- updates ------------------------------------------------------------------------------

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("Telegram update failed", exc_info=context.error)

    async def _on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        try:
            if update.callback_query is not None:
                await self.on_button(update.callback_query)
            elif update.message is not None:
                await self.on_message(update.message)
        finally:
            self._handled(update.update_id)

    def _handled(self, update_id: int) -> None:
        """Call `on_handled` once the background work in flight now is done too."""
        hook = self.on_handled
        if hook is None:
            return
        pending = [task for task in self.tasks if not task.done()]
        if not pending:
            hook(update_id)
            return
        asyncio.gather(*pending, return_exceptions=True).add_done_callback(lambda _done: hook(update_id))

    async def on_message(self, message: Message) -> None:
        if message.migrate_to_chat_id is not None and self.on_chat_moved is not None:
            # the group became a supergroup with a new id: the workspace follows it
            await self.on_chat_moved(str(message.chat.id), str(message.migrate_to_chat_id))
            return
        user = message.from_user
        if user is None or user.is_bot:
            return
        if message.photo or self._media_document(message) is not None or self._command_document(message):
            self.on_media(message)
            return
        text = message.text
        if not text:
            return
        parsed = self.parse_command(text, message.chat)
        if parsed is not None:
            name, rest = parsed
            origin = Origin(message.chat, user, message.message_id)
            actor = await self.actor(user, message.chat)
            command = Command(name, actor, self.chat_ref(message.chat), text=rest,
                              mentions=await self.mentions(message))
            await self.run(origin, command)
            return
        if text.startswith("/"):
            return  # a command for another bot
        replied = message.reply_to_message
        key = (message.chat.id, replied.message_id) if replied is not None else None
        pending = self.pending.get(key) if key is not None else None
        if pending is None and message.chat.type == Chat.PRIVATE:
            pending = self._latest_pending(message.chat.id, user.id)
            key = next((k for k, p in self.pending.items() if p is pending), None)
        if pending is not None and key is not None and pending.user_id == user.id:
            del self.pending[key]
            await self.answer_prompt(message, pending)
        elif message.chat.type == Chat.PRIVATE:
            await self.deliver(message.chat.id, Reply("Commands start with /. Type /help to see them."))

    def _latest_pending(self, chat_id: int, user_id: int) -> Pending | None:
        found = [p for (c, _m), p in self.pending.items() if c == chat_id and p.user_id == user_id]
        return found[-1] if found else None

    def parse_command(self, text: str, chat: Chat) -> tuple[str, str] | None:
        """('draft', 'Hello') from '/draft Hello' or '/draft@HeraldBot Hello'; None when not for Herald."""
        match = COMMAND_RE.match(text.strip())
        if match is None:
            return None
        name, addressed, rest = match.group(1).lower(), match.group(2), match.group(3)
        if addressed is not None and addressed.lower() != self.username.lower():
            return None
        if name == "start" and "start" not in COMMANDS:  # Telegram's Start button (maybe with a deep-link payload)
            # an outside reviewer's deep link (t.me/<bot>?start=r-…, /review) opens the review; anything else: /help
            return ("outside", rest.strip()) if rest.strip().startswith("r-") else ("help", "")
        if name not in COMMANDS and addressed is None and chat.type != Chat.PRIVATE:
            return None  # maybe another bot's command: don't chatter in a group
        return name, rest.strip()

    async def run(self, origin: Origin, command: Command) -> Reply:
        reply = await self.handle(command)
        if command.name == "draft" and not reply.error and reply.ask is None:
            self.drafted[(origin.chat.id, origin.user.id)] = time.monotonic()
        await self.respond(origin, reply)
        return reply

    # -- who ----------------------------------------------------------------------------------

    def chat_ref(self, chat: Chat) -> ChatRef:
        private = chat.type == Chat.PRIVATE
        title = chat.title or (chat.full_name if private else "") or ""
        return ChatRef(PLATFORM, str(chat.id), title=title, private=private)

    async def actor(self, user: User, chat: Chat) -> Actor:
        admin = False
        if chat.type in (Chat.GROUP, Chat.SUPERGROUP):
            admin = user.id in await self.chat_admins(chat.id)
        return Actor(PLATFORM, str(user.id), display_name(user), is_chat_admin=admin,
                     username=user.username.lower() if user.username else None)

    async def chat_admins(self, chat_id: int) -> frozenset[int]:
        cached = self.admins.get(chat_id)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            members = await self.bot.get_chat_administrators(chat_id)
            ids = frozenset(m.user.id for m in members)
        except TelegramError as exc:
            log.warning("getChatAdministrators failed for %s: %s", chat_id, exc)
            ids = frozenset()
        self.admins[chat_id] = (now + self.admin_cache_seconds, ids)
        return ids

    async def mentions(self, message: Message) -> tuple[Actor, ...]:
        """The people a command is about: the author of the message it replies to, text mentions."""
        people: list[User] = []
        replied = message.reply_to_message
        if replied is not None and replied.from_user is not None and not replied.from_user.is_bot:
            people.append(replied.from_user)
        for entity in message.entities or ():
            if entity.type == MessageEntity.TEXT_MENTION and entity.user is not None and not entity.user.is_bot:
                people.append(entity.user)
        seen: set[int] = set()
        actors = []
        for person in people:
            if person.id not in seen:
                seen.add(person.id)
                actors.append(await self.actor(person, message.chat))
        return tuple(actors)

    # -- sending ------------------------------------------------------------------------------

    def keyboard(self, buttons: tuple[Button, ...]) -> InlineKeyboardMarkup | None:
        if not buttons:
            return None
        rows = []
        for button in buttons:
            data = TELEGRAM.encode(button) or self.overflow.store(button)
            if button.prompt:
                self.prompts[data] = button.prompt
                self.prompts.move_to_end(data)
                while len(self.prompts) > self.max_pending:
                    self.prompts.popitem(last=False)
            rows.append([InlineKeyboardButton(button.label, callback_data=data)])
        return InlineKeyboardMarkup(rows)

    async def _send_text(self, chat_id: int, text: str, *, markup: Any = None,
                         reply_to: int | None = None) -> Message:
        params = ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to else None
        try:
            return await self.bot.send_message(chat_id, text, parse_mode=ParseMode.HTML, reply_markup=markup,
                                               reply_parameters=params)
        except ChatMigrated as exc:  # the group became a supergroup with a new id
            log.warning("Telegram chat %s moved to %s; relink it with /link", chat_id, exc.new_chat_id)
            return await self.bot.send_message(exc.new_chat_id, text, parse_mode=ParseMode.HTML,
                                               reply_markup=markup)

    async def deliver(self, chat_id: int, reply: Reply, *, reply_to: int | None = None,
                      user: User | None = None, card_message_id: int | None = None) -> list[Message]:
        """Send a reply into a chat: text in pieces, buttons on the last, the image as a photo,
        and for `ask` a ForceReply question whose answer runs `ask.command`."""
        text = ("✋ " if reply.error else "") + reply.text
        ask = reply.ask
        group = chat_id < 0
        head = f"{mention(user)} " if ask is not None and user is not None and group else ""
        pieces = split_text(text, MAX_TEXT - (utf16_len(display_name(user)) + 1 if head and user else 0))
        markup: Any = self.keyboard(reply.buttons)
        if ask is not None and user is not None:
            markup = ForceReply(selective=True, input_field_placeholder=clip(ask.prompt or ask.label, 64) or None)
        sent: list[Message] = []
        document = reply.attachment
        document_caption = None  # a file with a short text and no picture goes as one message: file + caption
        if document is not None and reply.image is None and ask is None and utf16_len(text) <= MAX_CAPTION:
            document_caption, pieces = text, []
        if reply.image is not None:
            caption = text if utf16_len(text) <= MAX_CAPTION else None
            params = ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to else None
            photo = await self.bot.send_photo(chat_id, reply.image, caption=esc(caption) if caption else None,
                                              parse_mode=ParseMode.HTML, reply_parameters=params,
                                              reply_markup=markup if caption else None)
            sent.append(photo)
            if caption is not None:
                pieces = []
            reply_to = None
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            body = (head if last else "") + esc(piece)
            sent.append(await self._send_text(chat_id, body, markup=markup if last else None,
                                              reply_to=reply_to if i == 0 else None))
        if document is not None:  # a CSV export: sendDocument, multipart
            params = ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to and not sent else None
            sent.append(await self.bot.send_document(
                chat_id, document.data, filename=document.filename,
                caption=esc(document_caption) if document_caption else None, parse_mode=ParseMode.HTML,
                reply_parameters=params, reply_markup=markup if document_caption else None))
        if ask is not None and user is not None and sent:
            self.remember(chat_id, sent[-1].message_id, Pending(ask, user.id, card_message_id))
        return sent

    def remember(self, chat_id: int, message_id: int, pending: Pending) -> None:
        self.pending[(chat_id, message_id)] = pending
        while len(self.pending) > self.max_pending:
            self.pending.popitem(last=False)

    async def respond(self, origin: Origin, reply: Reply, *, card_message_id: int | None = None) -> None:
        """Answer a person: in the chat, or privately for `private` replies in a group."""
        reply_to = origin.message_id
        if reply.delete_command and origin.message_id is not None:
            try:
                await self.bot.delete_message(origin.chat.id, origin.message_id)
                reply_to = None
            except TelegramError as exc:
                log.info("couldn't delete a command holding a secret in %s: %s", origin.chat.id, exc)
                reply = replace(reply, text=NOT_DELETED + reply.text)
        if reply.private and origin.chat.type != Chat.PRIVATE:
            try:
                await self.deliver(origin.user.id, reply, user=origin.user)
                note = f"{mention(origin.user)}, I sent you that in our private chat."
            except (Forbidden, BadRequest):
                note = (f"{mention(origin.user)}, I have something only you should see, but I can't write to you "
                        f"first. Open a private chat with @{esc(self.username)}, press Start, then ask again.")
            await self._send_text(origin.chat.id, note, reply_to=reply_to)
            return
        await self.deliver(origin.chat.id, reply, reply_to=reply_to, user=origin.user,
                           card_message_id=card_message_id)

    async def edit_card(self, chat_id: int, message_id: int, card: Reply) -> None:
        text = clip(("✋ " if card.error else "") + card.text, MAX_TEXT)
        try:
            await self.bot.edit_message_text(esc(text), chat_id=chat_id, message_id=message_id,
                                             parse_mode=ParseMode.HTML, reply_markup=self.keyboard(card.buttons))
        except BadRequest as exc:
            if "not modified" not in str(exc).lower():
                log.warning("couldn't edit card %s in %s: %s", message_id, chat_id, exc)
        except TelegramError as exc:  # the action is done; a card left as it was must not hide the answer
            log.warning("couldn't edit card %s in %s: %s", message_id, chat_id, exc)

    # -- buttons and questions ---------------------------------------------------------------

    def button_for(self, data: str) -> Button | None:
        return self.overflow.get(data) or TELEGRAM.decode(data)

    async def on_button(self, query: CallbackQuery) -> None:
        message = query.message
        button = self.button_for(query.data or "")
        if message is None or button is None:
            await query.answer("This button no longer works. Use the command instead (/help lists them).",
                               show_alert=True)
            return
        chat = message.chat
        card_id = message.message_id if isinstance(message, Message) else None
        if button.prompt is not None:
            await query.answer()
            label = self._label(message, query.data or "")
            prompt = self.prompts.get(query.data or "") or button.prompt or f"{label}: what should I note?"
            ask = Button(label or button.command, button.command, button.args, prompt=prompt)
            await self.deliver(chat.id, Reply(prompt, ask=ask), user=query.from_user, card_message_id=card_id)
            return
        actor = await self.actor(query.from_user, chat)
        command = Command(button.command, actor, self.chat_ref(chat), args=dict(button.args))
        task = asyncio.ensure_future(self.handle(command))
        answered = False
        try:
            reply = await asyncio.wait_for(asyncio.shield(task), self.answer_within)
        except TimeoutError:
            await query.answer("Working on it…")
            answered = True
            reply = await task
        if reply.error:
            if answered:
                await self.deliver(chat.id, reply)
            else:
                await query.answer(clip("✋ " + reply.text, MAX_ALERT), show_alert=True)
            return
        if reply.update is not None and card_id is not None:
            await self.edit_card(chat.id, card_id, reply.update)  # the card shows it before the button settles
        if not answered:
            await query.answer(clip(reply.text.split("\n", 1)[0], MAX_ALERT))
        await self.respond(Origin(chat, query.from_user, None), reply, card_message_id=card_id)

    def _label(self, message: Any, data: str) -> str:
        markup = getattr(message, "reply_markup", None)
        for row in getattr(markup, "inline_keyboard", ()) or ():
            for key in row:
                if key.callback_data == data:
                    return str(key.text)
        return ""

    async def answer_prompt(self, message: Message, pending: Pending) -> None:
        """The person answered Herald's question: run the waiting command with their line."""
        assert message.from_user is not None
        line = (message.text or "").strip()
        button = pending.button
        actor = await self.actor(message.from_user, message.chat)
        command = Command(button.command, actor, self.chat_ref(message.chat),
                          args={**button.args, "text": line}, mentions=await self.mentions(message))
        reply = await self.handle(command)
        if command.name == "draft" and not reply.error and reply.ask is None:
            self.drafted[(message.chat.id, message.from_user.id)] = time.monotonic()
        if not reply.error and reply.update is not None and pending.card_message_id is not None:
            await self.edit_card(message.chat.id, pending.card_message_id, reply.update)
        await self.respond(Origin(message.chat, message.from_user, message.message_id), reply,
                           card_message_id=pending.card_message_id)

    # -- photos -------------------------------------------------------------------------------

    @staticmethod
    def _media_document(message: Message) -> Any:
        for item in (message.document, message.video):
            mime = getattr(item, "mime_type", None) or ""
            if item is not None and (mime.startswith("image/") or mime in ("video/mp4", "video/quicktime")):
                return item
        return None

    @staticmethod
    def _command_document(message: Message) -> bool:
        """A file sent with a command as its caption (/import with a CSV plan)."""
        return message.document is not None and (message.caption or "").strip().startswith("/")

    def on_media(self, message: Message) -> None:
        if message.media_group_id is None:
            self._spawn(self.media_command([message]))
            return
        key = (message.chat.id, message.media_group_id)
        album = self.albums.get(key)
        if album is None:
            album = self.albums[key] = Album()
            self._spawn(self._album_later(key))
        album.messages.append(message)
        album.last = time.monotonic()

    async def _album_later(self, key: tuple[int, str]) -> None:
        """Wait until no photo of the album has arrived for `album_wait` seconds, then handle it."""
        while True:
            album = self.albums[key]
            wait = album.last + self.album_wait - time.monotonic()
            if wait <= 0:
                break
            await asyncio.sleep(wait)
        album = self.albums.pop(key)
        await self.media_command(sorted(album.messages, key=lambda m: m.message_id))

    def _post_of_card(self, message: Message | None) -> int | None:
        """The post a Herald card is about, read from its buttons' callback data."""
        markup = message.reply_markup if message is not None else None
        for row in (markup.inline_keyboard if markup is not None else ()):
            for key in row:
                button = TELEGRAM.decode(str(key.callback_data or ""))
                if button is not None and isinstance(button.args.get("post"), int):
                    return int(button.args["post"])
        return None

    async def media_command(self, messages: list[Message]) -> None:
        first = messages[0]
        user, chat = first.from_user, first.chat
        assert user is not None
        caption = next((m.caption for m in messages if m.caption), None)
        replied = next((m.reply_to_message for m in messages if m.reply_to_message is not None), None)
        if caption and caption.strip().startswith("/"):
            parsed = self.parse_command(caption, chat)
            if parsed is None:
                return
            name, text = parsed
        elif replied is not None and replied.from_user is not None and replied.from_user.id == self.bot_id:
            post = self._post_of_card(replied)
            name, text = "attach", str(post) if post is not None else ""
        elif time.monotonic() - self.drafted.get((chat.id, user.id), -1e9) <= DRAFT_WINDOW:
            name, text = "attach", ""
        else:
            return  # a picture shared in the chat, not for Herald
        origin = Origin(chat, user, first.message_id)
        try:
            media = tuple([await self.download(m) for m in messages])
        except TelegramError as exc:
            await self.respond(origin, Reply(
                f"I couldn't fetch that file from Telegram ({exc.message}). Bots can download files up to 20 MB.",
                error=True))
            return
        actor = await self.actor(user, chat)
        await self.run(origin, Command(name, actor, self.chat_ref(chat), text=text, media=media,
                                       mentions=await self.mentions(first)))

    async def download(self, message: Message) -> MediaIn:
        if message.photo:
            largest = max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
            file_id, name, kind = largest.file_id, f"photo_{largest.file_unique_id}.jpg", "image/jpeg"
        else:
            item = self._media_document(message) or message.document
            assert item is not None  # on_message hands in only photos and documents
            file_id, kind = item.file_id, item.mime_type or "application/octet-stream"
            name = getattr(item, "file_name", None) or f"file_{item.file_unique_id}"
        telegram_file = await self.bot.get_file(file_id)
        data = bytes(await telegram_file.download_as_bytearray())
        return MediaIn(name, kind, data)
