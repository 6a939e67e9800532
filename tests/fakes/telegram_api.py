"""A fake Telegram Bot API on 127.0.0.1, for the Telegram front end and the channel network.

It follows https://core.telegram.org/bots/api closely enough for python-telegram-bot 22 to run
against it unchanged (`base_url=f"{fake.url}/bot"`, `base_file_url=f"{fake.url}/file/bot"`):

- every method is `POST /bot<token>/<method>` with a JSON, form-urlencoded or multipart body
  (PTB sends form fields with JSON-encoded values, and multipart when it uploads a file);
  answers are `{"ok": true, "result": …}` or `{"ok": false, "error_code": …, "description": …}`
  (+ `parameters.retry_after` on 429); a token the server doesn't know gets 401 Unauthorized;
- getUpdates is real long polling: it holds the request until an update is queued or `timeout`
  seconds pass, and `offset` confirms (forgets) every update before it; while a webhook is set
  it answers 409 like Telegram, and queued updates are POSTed to the webhook instead, with the
  `X-Telegram-Bot-Api-Secret-Token` header;
- sendMessage / editMessageText parse `parse_mode=HTML` like Telegram (only its tags; a bare
  `<` or `&` is a 400 "can't parse entities"), and count the length after parsing (4096);
- pinChatMessage / unpinChatMessage need, in a group, an administrator bot with can_pin_messages;
- files the users send are stored and served by getFile (up to 20 MB, like Telegram) +
  `GET /file/bot<token>/<file_path>`;
  sendDocument keeps the bot's file the same way (the message's `document`, its bytes in `files`).

Tests drive it as the people in the chat: `say()`, `send_photo()`, `send_album()`, `send_document()`, `press()`,
then read what the bot did (`sent_to()`, `await wait_sent(...)`, `calls(method)`). The waits check again
each time the bot has made a call (`wait_until`), never on a timer.
"""

from __future__ import annotations

import asyncio
import html
import io
import itertools
import json
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from aiohttp import ClientSession, web

from tests.fakes.loopback import LoopbackServer

TOKEN = "123456:TEST-herald-token"
BOT_ID = 123456
ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a", "code",
                "pre", "blockquote", "tg-emoji"}
JSON_FIELDS = {"reply_markup", "media", "commands", "entities", "caption_entities", "allowed_updates",
               "link_preview_options", "reply_parameters", "scope"}
ADMIN_RIGHTS = ("can_manage_chat", "can_delete_messages", "can_manage_video_chats", "can_restrict_members",
                "can_promote_members", "can_change_info", "can_invite_users", "can_post_stories",
                "can_edit_stories", "can_delete_stories", "can_pin_messages")


class ApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after


@dataclass
class Call:
    """One successful Bot API call: the method, the bot's token, its parameters (files as bytes)."""

    method: str
    token: str
    params: dict[str, Any]
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    result: Any = None


GETFILE_LIMIT = 20 * 1024 * 1024


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.stack: list[str] = []
        self.error: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS and self.error is None:
            self.error = f'Unsupported start tag "{tag}"'
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if (not self.stack or self.stack[-1] != tag) and self.error is None:
            self.error = f'Unmatched end tag "{tag}"'
        if self.stack:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def parse_html(text: str) -> str:
    """The plain text Telegram keeps from an HTML-formatted message; ApiError(400) when it can't parse it."""
    bare_lt = re.search(r"<(?!/?[a-zA-Z][\w-]*(\s[^<>]*)?>)", text)
    bare_amp = re.search(r"&(?!(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);)", text)
    for found, what in ((bare_lt, "<"), (bare_amp, "&")):
        if found:
            offset = len(text[: found.start()].encode())
            raise ApiError(400, f"Bad Request: can't parse entities: unexpected {what} at byte offset {offset}")
    parser = _Html()
    parser.feed(text)
    parser.close()
    if parser.error is None and parser.stack:
        parser.error = f'Can\'t find end tag corresponding to start tag "{parser.stack[-1]}"'
    if parser.error:
        raise ApiError(400, f"Bad Request: can't parse entities: {parser.error}")
    return "".join(parser.parts)


def tiny_jpeg(size: tuple[int, int] = (4, 3), color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "JPEG")
    return out.getvalue()


class FakeTelegram(LoopbackServer):
    """The Bot API of one Telegram with one or more bots, some users, groups, channels."""

    def __init__(self, token: str = TOKEN, username: str = "HeraldBot") -> None:
        super().__init__()
        self.token = token
        self.bots: dict[str, dict[str, Any]] = {}
        self.bot = self.add_bot(token, username, BOT_ID)
        self.users: dict[int, dict[str, Any]] = {}
        self.chats: dict[int, dict[str, Any]] = {}
        self.members: dict[tuple[int, int], dict[str, Any]] = {}
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.pinned: dict[int, list[int]] = {}  # chat → its pinned messages' ids, newest last
        self.started: set[int] = set()  # users who opened a private chat with the bot
        self.log: list[Call] = []
        self.files: dict[str, dict[str, Any]] = {}
        self.webhook: dict[str, Any] | None = None
        self.webhook_deliveries: list[tuple[int, dict[str, Any]]] = []  # (HTTP status, update)
        self.commands: list[dict[str, str]] | None = None
        self.updates: list[dict[str, Any]] = []
        self.pushed: list[dict[str, Any]] = []  # every update ever queued or POSTed, confirmed ones too
        self.handled: set[int] = set()  # ids of the updates a watched front end has handled (see `watch`)
        self._update_ids = itertools.count(1)
        self._message_ids: dict[int, itertools.count[int]] = defaultdict(lambda: itertools.count(100))
        self._ids = itertools.count(1001)
        self._files = itertools.count(1)
        self._wake: asyncio.Event | None = None
        self._closing = False
        self._pushes: set[asyncio.Task[None]] = set()
        self.route("POST", "/bot{token}/{method}", self._api)
        self.route("GET", "/bot{token}/{method}", self._api)
        self.route("GET", "/file/bot{token}/{kind}/{name}", self._download)

    # -- the world ---------------------------------------------------------------------------

    def add_bot(self, token: str, username: str, bot_id: int | None = None) -> dict[str, Any]:
        bot = {"id": bot_id or next(self._ids) * 1000, "is_bot": True, "first_name": username.removesuffix("Bot"),
               "username": username, "can_join_groups": True, "can_read_all_group_messages": False,
               "supports_inline_queries": False, "can_connect_to_business": False, "has_main_web_app": False}
        self.bots[token] = bot
        return bot

    def user(self, first_name: str, *, username: str | None = None, last_name: str | None = None) -> dict[str, Any]:
        user: dict[str, Any] = {"id": next(self._ids), "is_bot": False, "first_name": first_name, "language_code": "en"}
        if username:
            user["username"] = username
        if last_name:
            user["last_name"] = last_name
        self.users[user["id"]] = user
        return user

    def group(self, title: str, *, admins: tuple[dict[str, Any], ...] = (), members: tuple[dict[str, Any], ...] = (),
              bot_admin: bool = True) -> dict[str, Any]:
        chat = {"id": -1_000_000_000_000 - next(self._ids), "type": "supergroup", "title": title}
        self.chats[chat["id"]] = chat
        for i, person in enumerate(admins):
            self.set_member(chat, person, "creator" if i == 0 else "administrator")
        for person in members:
            self.set_member(chat, person, "member")
        self.set_member(chat, self.bot, "administrator" if bot_admin else "member")
        return chat

    def channel(self, title: str, *, username: str | None = None, bot: dict[str, Any] | None = None,
                bot_status: str = "administrator", can_post: bool = True) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": -1_000_000_000_000 - next(self._ids), "type": "channel", "title": title}
        if username:
            chat["username"] = username
        self.chats[chat["id"]] = chat
        if bot_status != "left":
            self.set_member(chat, bot or self.bot, bot_status, can_post_messages=can_post)
        return chat

    def private(self, person: dict[str, Any]) -> dict[str, Any]:
        chat = {"id": person["id"], "type": "private", "first_name": person["first_name"]}
        if "username" in person:
            chat["username"] = person["username"]
        self.chats[chat["id"]] = chat
        self.started.add(person["id"])
        return chat

    def set_member(self, chat: dict[str, Any], person: dict[str, Any], status: str, **rights: bool) -> None:
        member: dict[str, Any] = {"status": status, "user": person}
        if status == "creator":
            member["is_anonymous"] = False
        if status == "administrator":
            member.update({"can_be_edited": False, "is_anonymous": False, **{r: True for r in ADMIN_RIGHTS}})
            if chat["type"] == "channel":
                member.update({"can_post_messages": True, "can_edit_messages": True})
            member.update(rights)
        self.members[(chat["id"], person["id"])] = member

    # -- what people do ----------------------------------------------------------------------

    def _message(self, person: dict[str, Any], chat: dict[str, Any], **content: Any) -> dict[str, Any]:
        message = {"message_id": next(self._message_ids[chat["id"]]), "date": int(time.time()),
                   "chat": chat, "from": person, **content}
        self.messages[(chat["id"], message["message_id"])] = message
        return message

    async def say(self, person: dict[str, Any], chat: dict[str, Any], text: str, *,
                  reply_to: dict[str, Any] | None = None) -> dict[str, Any]:
        """`person` writes `text` in `chat` (a reply to `reply_to` if given); returns the message."""
        content: dict[str, Any] = {"text": text}
        command = re.match(r"/[\w@]+", text)
        if command:
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": utf16_len(command.group())}]
        if reply_to is not None:
            content["reply_to_message"] = reply_to
        if chat["type"] == "private":
            self.started.add(person["id"])
        message = self._message(person, chat, **content)
        await self.push({"message": message})
        return message

    def photo_sizes(self, data: bytes) -> list[dict[str, Any]]:
        """Like Telegram: a small thumbnail and the full-size photo (largest last)."""
        sizes = []
        for width, blob in ((90, tiny_jpeg((2, 2), (0, 0, 255))), (1280, data)):
            number = next(self._files)
            file_id = f"AgAC-file-{number}-w{width}"
            self.files[file_id] = {"file_unique_id": f"uniq{number}", "file_path": f"photos/file_{number}.jpg",
                                   "data": blob}
            sizes.append({"file_id": file_id, "file_unique_id": f"uniq{number}", "width": width,
                          "height": width * 3 // 4, "file_size": len(blob)})
        return sizes

    async def send_photo(self, person: dict[str, Any], chat: dict[str, Any], data: bytes | None = None, *,
                         caption: str | None = None, media_group_id: str | None = None,
                         reply_to: dict[str, Any] | None = None) -> dict[str, Any]:
        content: dict[str, Any] = {"photo": self.photo_sizes(data or tiny_jpeg())}
        if caption is not None:
            content["caption"] = caption
        if media_group_id is not None:
            content["media_group_id"] = media_group_id
        if reply_to is not None:
            content["reply_to_message"] = reply_to
        message = self._message(person, chat, **content)
        await self.push({"message": message})
        return message

    async def send_document(self, person: dict[str, Any], chat: dict[str, Any], data: bytes, filename: str, *,
                            mime_type: str = "text/csv", caption: str | None = None) -> dict[str, Any]:
        """`person` sends a file (a Document): kept like Telegram keeps it, served by getFile and the file URL."""
        number = next(self._files)
        file_id = f"BQAC-file-{number}"
        self.files[file_id] = {"file_unique_id": f"uniq{number}", "file_path": f"documents/file_{number}",
                               "data": data}
        content: dict[str, Any] = {"document": {"file_id": file_id, "file_unique_id": f"uniq{number}",
                                                "file_name": filename, "mime_type": mime_type,
                                                "file_size": len(data)}}
        if caption is not None:
            content["caption"] = caption
            command = re.match(r"/[\w@]+", caption)
            if command:
                content["caption_entities"] = [{"type": "bot_command", "offset": 0,
                                                "length": utf16_len(command.group())}]
        if chat["type"] == "private":
            self.started.add(person["id"])
        message = self._message(person, chat, **content)
        await self.push({"message": message})
        return message

    async def send_album(self, person: dict[str, Any], chat: dict[str, Any], images: list[bytes], *,
                         caption: str | None = None) -> list[dict[str, Any]]:
        """An album: one message per photo sharing a media_group_id, the caption on the first."""
        group_id = f"1370{next(self._ids)}"
        return [await self.send_photo(person, chat, data, caption=caption if i == 0 else None,
                                      media_group_id=group_id) for i, data in enumerate(images)]

    async def press(self, person: dict[str, Any], message: dict[str, Any], label: str) -> str:
        """`person` presses the inline button labelled `label` under the bot's `message`."""
        current = self.messages[(message["chat"]["id"], message["message_id"])]
        rows = (current.get("reply_markup") or {}).get("inline_keyboard", [])
        buttons = [b for row in rows for b in row if b["text"] == label]
        assert buttons, f"no button {label!r} on message {current.get('text')!r}: {rows}"
        query_id = str(next(self._ids))
        await self.push({"callback_query": {"id": query_id, "from": person, "message": current,
                                            "chat_instance": str(current["chat"]["id"]),
                                            "data": buttons[0]["callback_data"]}})
        return query_id

    async def push(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an update for getUpdates, or POST it to the webhook when one is set."""
        update = {"update_id": next(self._update_ids), **update}
        self.pushed.append(update)
        if self.webhook and self.webhook.get("url"):
            await self._deliver(update)
            return update
        self.updates.append(update)
        self._notify()
        return update

    async def _deliver(self, update: dict[str, Any]) -> None:
        assert self.webhook is not None
        headers = {}
        if self.webhook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook["secret_token"]
        async with ClientSession() as session, session.post(self.webhook["url"], json=update,
                                                             headers=headers) as response:
            self.webhook_deliveries.append((response.status, update))
        self.changed()

    def _notify(self) -> None:
        if self._wake is not None:
            self._wake.set()
        self._wake = asyncio.Event()

    # -- what the bot did --------------------------------------------------------------------

    def calls(self, method: str | None = None, token: str | None = None) -> list[Call]:
        return [c for c in self.log if (method is None or c.method == method) and (token is None or c.token == token)]

    def sent_to(self, chat: dict[str, Any] | int) -> list[dict[str, Any]]:
        """The bot's messages in a chat as they are now (after edits), oldest first."""
        chat_id = chat if isinstance(chat, int) else chat["id"]
        return [m for (c, _i), m in sorted(self.messages.items(), key=lambda kv: kv[0][1])
                if c == chat_id and m["from"].get("is_bot")]

    def text_of(self, chat: dict[str, Any]) -> str:
        return "\n---\n".join(m.get("text") or m.get("caption") or "" for m in self.sent_to(chat))

    async def wait_sent(self, chat: dict[str, Any] | int, contains: str, *, timeout: float = 10.0,
                        after: int = 0) -> dict[str, Any]:
        """The first bot message in `chat` newer than message id `after` whose text holds `contains`."""

        def found() -> dict[str, Any] | None:
            for message in self.sent_to(chat):
                body = message.get("text") or message.get("caption") or ""
                if message["message_id"] > after and contains in body:
                    return message
            return None

        try:
            return await self.wait_until(found, timeout)
        except AssertionError:
            raise AssertionError(f"the bot sent nothing with {contains!r}; it sent:\n" + self.text_of(
                self.chats[chat if isinstance(chat, int) else chat["id"]])) from None

    def watch(self, front: Any) -> None:
        """Hear from a bot front end (its `on_handled` hook) which updates it has handled."""

        def handled(update_id: int) -> None:
            self.handled.add(update_id)
            self.changed()

        front.on_handled = handled

    async def wait_handled(self, message: dict[str, Any] | str, *, timeout: float = 10.0) -> None:
        """Wait until a watched front end has handled the update that brought a message (or a press, by its
        query id), its background work included: after it, what the bot didn't do, it won't do."""
        update_id = self.update_of(message)
        await self.wait_until(lambda: update_id in self.handled, timeout,
                              f"the bot didn't handle update {update_id} in time")

    def update_of(self, message: dict[str, Any] | str) -> int:
        """The id of the update that brought a person's message (or a button press, by its query id)."""
        for update in self.pushed:
            if isinstance(message, str):
                if (update.get("callback_query") or {}).get("id") == message:
                    return int(update["update_id"])
            elif (update.get("message") or {}) is message:
                return int(update["update_id"])
        raise KeyError(f"no update brought {message!r}")

    def answers_to(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        """The bot's answers to a message so far (Herald answers commands as replies), oldest first."""
        return [sent for sent in self.sent_to(message["chat"]["id"])
                if (sent.get("reply_to_message") or {}).get("message_id") == message["message_id"]]

    async def wait_answer(self, message: dict[str, Any], *, timeout: float = 10.0) -> dict[str, Any]:
        """The bot's first answer to a message, once it has come."""

        def first() -> dict[str, Any] | None:
            return next(iter(self.answers_to(message)), None)

        try:
            return await self.wait_until(first, timeout)
        except AssertionError:
            raise AssertionError(f"no answer to {message.get('text') or message.get('caption')!r}; the bot "
                                 "sent:\n" + self.text_of(message["chat"])) from None

    async def wait_call(self, method: str, *, timeout: float = 10.0, count: int = 1) -> list[Call]:
        """The calls of `method` once there are at least `count` of them."""
        try:
            await self.wait_until(lambda: len(self.calls(method)) >= count, timeout)
        except AssertionError:
            raise AssertionError(f"{method} was called {len(self.calls(method))} times, not {count}") from None
        return self.calls(method)

    def last_id(self, chat: dict[str, Any]) -> int:
        """The newest message id in a chat, to wait for messages after it."""
        ids = [i for (c, i) in self.messages if c == chat["id"]]
        return max(ids, default=0)

    def rate_limit_next(self, method: str, retry_after: int = 1, token: str | None = None) -> None:
        """Answer the next call of `method` with 429 Too Many Requests and parameters.retry_after."""
        self.fail("POST", f"/bot{token or self.token}/{method}", status=429, body={
            "ok": False, "error_code": 429, "description": f"Too Many Requests: retry after {retry_after}",
            "parameters": {"retry_after": retry_after}})

    # -- the HTTP side -----------------------------------------------------------------------

    async def close(self) -> None:
        self._closing = True
        self._notify()
        for task in list(self._pushes):
            task.cancel()
        await super().close()

    async def _params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        params: dict[str, Any] = dict(request.query)
        files: dict[str, dict[str, Any]] = {}
        if request.content_type == "application/json":
            body = await request.read()
            params.update(json.loads(body) if body else {})
            return params, files
        if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            posted = await request.post()
            for key in posted:
                value = posted[key]
                if isinstance(value, str):
                    params[key] = json.loads(value) if key in JSON_FIELDS else value
                else:
                    value.file.seek(0)
                    files[key] = {"filename": value.filename, "content_type": value.content_type,
                                  "data": value.file.read()}
        return params, files

    async def _api(self, request: web.Request) -> web.StreamResponse:
        token, method = request.match_info["token"], request.match_info["method"]
        if token not in self.bots:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        params, files = await self._params(request)
        handler = getattr(self, f"m_{method.lower()}", None)
        if handler is None:
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        try:
            result = await handler(token, params, files)
        except ApiError as exc:
            body: dict[str, Any] = {"ok": False, "error_code": exc.code, "description": exc.description}
            if exc.retry_after is not None:
                body["parameters"] = {"retry_after": exc.retry_after}
            return web.json_response(body, status=exc.code)
        self.log.append(Call(method, token, params, files, result))
        return web.json_response({"ok": True, "result": result})

    async def _download(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] not in self.bots:
            return web.Response(status=401, text="Unauthorized")
        path = f"{request.match_info['kind']}/{request.match_info['name']}"
        for info in self.files.values():
            if info["file_path"] == path:
                return web.Response(body=info["data"], content_type="application/octet-stream")
        return web.Response(status=404, text="Not Found")

    # -- lookups -----------------------------------------------------------------------------

    def _chat(self, chat_id: Any) -> dict[str, Any]:
        if chat_id is None or chat_id == "":
            raise ApiError(400, "Bad Request: chat_id is empty")
        text = str(chat_id)
        if text.startswith("@"):
            for chat in self.chats.values():
                if chat.get("username", "").lower() == text[1:].lower():
                    return chat
            raise ApiError(400, "Bad Request: chat not found")
        try:
            number = int(text)
        except ValueError:
            raise ApiError(400, "Bad Request: chat not found") from None
        if number in self.chats:
            return self.chats[number]
        raise ApiError(400, "Bad Request: chat not found")

    def _can_write(self, token: str, chat: dict[str, Any]) -> None:
        bot = self.bots[token]
        if chat["type"] == "private":
            if chat["id"] not in self.started or bot["id"] != self.bot["id"]:
                raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
            return
        member = self.members.get((chat["id"], bot["id"]))
        if member is None or member["status"] in ("left", "kicked"):
            what = "channel" if chat["type"] == "channel" else "group"
            raise ApiError(403, f"Forbidden: bot is not a member of the {what} chat")
        if chat["type"] == "channel" and not (member["status"] == "administrator" and member.get("can_post_messages")):
            raise ApiError(400, "Bad Request: need administrator rights in the channel chat")

    def _message_arg(self, chat: dict[str, Any], message_id: Any) -> dict[str, Any]:
        message = self.messages.get((chat["id"], int(message_id)))
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        return message

    def _text(self, params: dict[str, Any], key: str, limit: int) -> str:
        text = str(params.get(key) or "")
        if params.get("parse_mode") in ("HTML", "html"):
            text = parse_html(text)
        elif params.get("parse_mode"):
            raise ApiError(400, f"Bad Request: unsupported parse_mode {params['parse_mode']} in this fake")
        if utf16_len(text) > limit:
            raise ApiError(400, "Bad Request: message is too long" if key == "text"
                           else "Bad Request: message caption is too long")
        return text

    def _reply_to(self, chat: dict[str, Any], params: dict[str, Any]) -> dict[str, Any] | None:
        parameters = params.get("reply_parameters") or {}
        wanted = parameters.get("message_id") or params.get("reply_to_message_id")
        if not wanted:
            return None
        found = self.messages.get((chat["id"], int(wanted)))
        if found is None and not parameters.get("allow_sending_without_reply"):
            raise ApiError(400, "Bad Request: message to be replied not found")
        return found

    def _bot_message(self, token: str, chat: dict[str, Any], params: dict[str, Any], **content: Any) -> dict[str, Any]:
        message = self._message(self.bots[token], chat, **content)
        if chat["type"] == "channel":
            message.pop("from")
            message["from"] = {**self.bots[token]}  # kept so sent_to() finds it; Telegram sets sender_chat
            message["sender_chat"] = chat
        reply_to = self._reply_to(chat, params)
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        markup = params.get("reply_markup")
        if markup and "inline_keyboard" in markup:
            for row in markup["inline_keyboard"]:
                for button in row:
                    data = button.get("callback_data")
                    if data is not None and not 1 <= len(data.encode()) <= 64:
                        raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
            message["reply_markup"] = markup
        elif markup:
            message["force_reply_markup"] = markup  # not echoed by Telegram, kept for tests
        return message

    def _upload(self, params: dict[str, Any], files: dict[str, dict[str, Any]], key: str) -> bytes:
        value = params.get(key)
        if key in files:
            return bytes(files[key]["data"])
        if isinstance(value, str) and value.startswith("attach://") and value[9:] in files:
            return bytes(files[value[9:]]["data"])
        if isinstance(value, str) and value in self.files:
            return bytes(self.files[value]["data"])
        raise ApiError(400, "Bad Request: wrong remote file identifier specified")

    # -- methods -----------------------------------------------------------------------------

    async def m_getme(self, token: str, params: dict[str, Any], files: Any) -> Any:
        return self.bots[token]

    async def m_getupdates(self, token: str, params: dict[str, Any], files: Any) -> Any:
        if self.webhook and self.webhook.get("url"):
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; "
                                "use deleteWebhook to delete the webhook first")
        offset = int(params.get("offset") or 0)
        if offset:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        limit = int(params.get("limit") or 100)
        deadline = asyncio.get_running_loop().time() + float(params.get("timeout") or 0)
        while not self.updates and not self._closing:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            if self._wake is None:
                self._wake = asyncio.Event()
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except TimeoutError:
                break
        allowed = params.get("allowed_updates")
        found = [u for u in self.updates if not allowed or any(k in u for k in allowed)]
        return found[:limit]

    async def m_deletewebhook(self, token: str, params: dict[str, Any], files: Any) -> Any:
        self.webhook = None
        if str(params.get("drop_pending_updates")).lower() == "true":
            self.updates = []
        return True

    async def m_setwebhook(self, token: str, params: dict[str, Any], files: Any) -> Any:
        url = str(params.get("url") or "")
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        self.webhook = {"url": url, "secret_token": secret, "allowed_updates": params.get("allowed_updates")}
        if url and self.updates:  # pending updates now go to the webhook
            pending, self.updates = self.updates, []
            for update in pending:
                task = asyncio.ensure_future(self._deliver(update))
                self._pushes.add(task)
                task.add_done_callback(self._pushes.discard)
        return True

    async def m_getwebhookinfo(self, token: str, params: dict[str, Any], files: Any) -> Any:
        return {"url": (self.webhook or {}).get("url", ""), "has_custom_certificate": False,
                "pending_update_count": len(self.updates)}

    async def m_setmycommands(self, token: str, params: dict[str, Any], files: Any) -> Any:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise ApiError(400, "Bad Request: too many commands" if isinstance(commands, list)
                           else "Bad Request: commands must be an array")
        for item in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(item.get("command", ""))):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(item.get("description", ""))) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands = commands
        return True

    async def m_sendmessage(self, token: str, params: dict[str, Any], files: Any) -> Any:
        chat = self._chat(params.get("chat_id"))
        self._can_write(token, chat)
        text = self._text(params, "text", 4096)
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        return self._bot_message(token, chat, params, text=text)

    async def m_sendphoto(self, token: str, params: dict[str, Any], files: Any) -> Any:
        chat = self._chat(params.get("chat_id"))
        self._can_write(token, chat)
        data = self._upload(params, files, "photo")
        content: dict[str, Any] = {"photo": self.photo_sizes(data)}
        caption = self._text(params, "caption", 1024)
        if caption:
            content["caption"] = caption
        return self._bot_message(token, chat, params, **content)

    async def m_senddocument(self, token: str, params: dict[str, Any], files: Any) -> Any:
        """A file (a CSV export): kept like Telegram keeps it (getFile serves it), described as a Document."""
        chat = self._chat(params.get("chat_id"))
        self._can_write(token, chat)
        data = self._upload(params, files, "document")
        upload = files.get("document") or {}
        number = next(self._files)
        file_id = f"BQAC-file-{number}"
        name = upload.get("filename") or f"file_{number}"
        self.files[file_id] = {"file_unique_id": f"uniq{number}", "file_path": f"documents/{name}", "data": data}
        content: dict[str, Any] = {"document": {
            "file_id": file_id, "file_unique_id": f"uniq{number}", "file_name": name,
            "mime_type": upload.get("content_type") or "application/octet-stream", "file_size": len(data)}}
        caption = self._text(params, "caption", 1024)
        if caption:
            content["caption"] = caption
        return self._bot_message(token, chat, params, **content)

    async def m_sendmediagroup(self, token: str, params: dict[str, Any], files: Any) -> Any:
        chat = self._chat(params.get("chat_id"))
        self._can_write(token, chat)
        media = params.get("media")
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            raise ApiError(400, "Bad Request: wrong number of media specified (must be 2-10)")
        group_id = f"1370{next(self._ids)}"
        sent = []
        for item in media:
            if item.get("type") != "photo":
                raise ApiError(400, "Bad Request: unsupported media type in this fake")
            data = self._upload(item, files, "media")
            content: dict[str, Any] = {"photo": self.photo_sizes(data), "media_group_id": group_id}
            caption = self._text(item, "caption", 1024)
            if caption:
                content["caption"] = caption
            sent.append(content)
        return [self._bot_message(token, chat, params, **content) for content in sent]

    async def m_editmessagetext(self, token: str, params: dict[str, Any], files: Any) -> Any:
        chat = self._chat(params.get("chat_id"))
        message = self._message_arg(chat, params.get("message_id"))
        if message["from"]["id"] != self.bots[token]["id"]:
            raise ApiError(400, "Bad Request: message can't be edited")
        text = self._text(params, "text", 4096)
        markup = params.get("reply_markup")
        if text == message.get("text") and markup == message.get("reply_markup"):
            raise ApiError(400, "Bad Request: message is not modified: specified new message content and reply "
                                "markup are exactly the same as a current content and reply markup of the message")
        message["text"] = text
        message["edit_date"] = int(time.time())
        if markup:
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)
        return message

    async def m_pinchatmessage(self, token: str, params: dict[str, Any], files: Any) -> Any:
        """pinChatMessage: in a group the bot must be an administrator with can_pin_messages; the chat keeps its
        pinned messages (`pinned`, newest last) and getChat shows the newest as `pinned_message`."""
        chat = self._chat(params.get("chat_id"))
        self._can_pin(token, chat)
        message = self.messages.get((chat["id"], int(params.get("message_id") or 0)))
        if message is None:
            raise ApiError(400, "Bad Request: message to pin not found")
        pinned = self.pinned.setdefault(chat["id"], [])
        if message["message_id"] in pinned:
            pinned.remove(message["message_id"])
        pinned.append(message["message_id"])
        return True

    async def m_unpinchatmessage(self, token: str, params: dict[str, Any], files: Any) -> Any:
        """unpinChatMessage: `message_id` unpins that message; without it, the newest pinned one."""
        chat = self._chat(params.get("chat_id"))
        self._can_pin(token, chat)
        pinned = self.pinned.setdefault(chat["id"], [])
        wanted = params.get("message_id")
        if wanted is not None:
            if int(wanted) not in pinned:
                raise ApiError(400, "Bad Request: message to unpin not found")
            pinned.remove(int(wanted))
        elif pinned:
            pinned.pop()
        return True

    def _can_pin(self, token: str, chat: dict[str, Any]) -> None:
        self._can_write(token, chat)
        if chat["type"] == "private":
            return
        member = self.members.get((chat["id"], self.bots[token]["id"]), {})
        if member.get("status") != "creator" and not (member.get("status") == "administrator"
                                                      and member.get("can_pin_messages")):
            raise ApiError(400, "Bad Request: not enough rights to manage pinned messages in the chat")

    async def m_editmessagereplymarkup(self, token: str, params: dict[str, Any], files: Any) -> Any:
        chat = self._chat(params.get("chat_id"))
        message = self._message_arg(chat, params.get("message_id"))
        markup = params.get("reply_markup")
        if markup:
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)
        return message

    async def m_answercallbackquery(self, token: str, params: dict[str, Any], files: Any) -> Any:
        if not params.get("callback_query_id"):
            raise ApiError(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
        if len(str(params.get("text") or "")) > 200:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        return True

    async def m_getfile(self, token: str, params: dict[str, Any], files: Any) -> Any:
        file_id = str(params.get("file_id") or "")
        info = self.files.get(file_id)
        if info is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        if len(info["data"]) > GETFILE_LIMIT:  # bots download files up to 20 MB
            raise ApiError(400, "Bad Request: file is too big")
        return {"file_id": file_id, "file_unique_id": info["file_unique_id"], "file_size": len(info["data"]),
                "file_path": info["file_path"]}

    async def m_getchat(self, token: str, params: dict[str, Any], files: Any) -> Any:
        chat = self._chat(params.get("chat_id"))
        if chat["type"] != "private" and (chat["id"], self.bots[token]["id"]) not in self.members:
            raise ApiError(400, "Bad Request: chat not found")
        pinned = self.pinned.get(chat["id"])
        if pinned:  # the newest pinned message, without its chat (that is this object)
            chat = {**chat, "pinned_message": {k: v for k, v in self.messages[(chat["id"], pinned[-1])].items()
                                               if k != "chat"} | {"chat": {**chat}}}
        return {**chat, "accent_color_id": 0, "max_reaction_count": 11,
                "accepted_gift_types": {"unlimited_gifts": False, "limited_gifts": False,
                                        "unique_gifts": False, "premium_subscription": False}}

    async def m_getchatmember(self, token: str, params: dict[str, Any], files: Any) -> Any:
        chat = self._chat(params.get("chat_id"))
        user_id = int(params.get("user_id") or 0)
        member = self.members.get((chat["id"], user_id))
        if member is None:
            person = self.users.get(user_id) or next((b for b in self.bots.values() if b["id"] == user_id), None)
            if person is None:
                raise ApiError(400, "Bad Request: user not found")
            return {"status": "left", "user": person}
        return member

    async def m_getchatadministrators(self, token: str, params: dict[str, Any], files: Any) -> Any:
        chat = self._chat(params.get("chat_id"))
        return [m for (c, _u), m in self.members.items() if c == chat["id"]
                and m["status"] in ("creator", "administrator")]

    async def m_deletemessage(self, token: str, params: dict[str, Any], files: Any) -> Any:
        chat = self._chat(params.get("chat_id"))
        key = (chat["id"], int(params.get("message_id") or 0))
        message = self.messages.get(key)
        if message is None:
            raise ApiError(400, "Bad Request: message to delete not found")
        bot = self.bots[token]
        own = message.get("from", {}).get("id") == bot["id"]
        rights = self.members.get((chat["id"], bot["id"]), {})
        if not own and chat["type"] != "private" and not rights.get("can_delete_messages"):
            raise ApiError(400, "Bad Request: message can't be deleted")
        del self.messages[key]
        return True


def escape(text: str) -> str:
    return html.escape(text, quote=False)
