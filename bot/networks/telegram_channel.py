"""Telegram channel connector: Herald's bot (or another bot) posts into a channel it administers.

- Connect: `/connect telegram name=news channel=@acme_news` — the bot must be an administrator of
  the channel with the right to post messages. By default the bot is Herald's own (the token given
  to the constructor, i.e. Herald's Telegram front end); `token=<bot token>` makes another bot post
  (a credential: only in a private chat with Herald). verify = getMe + getChat + getChatMember(bot).
- Posting (plain text, no parse_mode, so nothing needs escaping): `sendMessage` (text ≤ 4096),
  `sendPhoto` (one image, caption ≤ 1024), `sendMediaGroup` (2–10 images/videos, the caption on the
  first item); files are uploaded as multipart parts. Videos go with `sendVideo`.
- Telegram has no idempotency key: a send that may have reached Telegram (5xx, a broken
  connection after sending) is UNKNOWN_OUTCOME, never retried blindly. Nor can Herald look it up: the
  Bot API has no method that reads a channel's messages (only the MTProto client API does), so
  `look_for_post` can't tell and the team decides with /confirm or /retry.
- Errors: the Bot API's `{"ok": false, "error_code", "description", "parameters": {"retry_after"}}`
  → 429 RATE_LIMITED after `retry_after` seconds; 401 (a revoked token) and 403 / "not enough
  rights" / "chat not found" (the bot was removed or demoted) → AUTH_EXPIRED with the fix; other
  400s → REJECTED with Telegram's reason.
- Budget: 20 posts a minute per channel (Telegram's limit for one group/channel).
- Metrics: the Bot API gives bots no view counts for channel posts (only the MTProto client API
  does), so `fetch_metrics` returns nothing; no comments either.
- Links: `https://t.me/<channel username>/<message id>`, or `https://t.me/c/<internal id>/<message id>`
  for a private channel (its id without the -100 prefix).
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from handlers.core.counting import TextRules
from handlers.core.ports import (
    AccountView,
    Clock,
    ConnectSpec,
    ErrorKind,
    MediaFile,
    Metrics,
    NetworkProfile,
    Outgoing,
    Published,
    PublishError,
    Verified,
)

from .http import HttpNetwork

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_ALBUM = 10
CHANNEL_RE = re.compile(r"^(?:https?://)?(?:t\.me/|telegram\.me/)?@?([A-Za-z][A-Za-z0-9_]{3,31})/?$")
RIGHTS_WORDS = ("not enough rights", "need administrator rights", "chat_admin_required", "chat_write_forbidden",
                "have no rights", "not a member", "was kicked", "bot is not a member", "chat not found")


def parse_channel(value: str) -> str | int:
    """'@acme_news', 'acme_news', 't.me/acme_news' → '@acme_news'; '-1001234567890' → that number."""
    raw = str(value).strip()
    if re.fullmatch(r"-100\d{5,15}", raw):
        return int(raw)
    match = CHANNEL_RE.match(raw)
    if match is None:
        raise ValueError(f"channel={raw} isn't a channel: give its public @username (e.g. channel=@acme_news) "
                         "or, for a private channel, its numeric id (e.g. channel=-1001234567890)")
    return "@" + match.group(1)


def message_url(chat: dict[str, Any], message_id: int) -> str:
    username = chat.get("username")
    if username:
        return f"https://t.me/{username}/{message_id}"
    internal = str(chat.get("id", "")).removeprefix("-100").lstrip("-")
    return f"https://t.me/c/{internal}/{message_id}"


class TelegramChannelNetwork(HttpNetwork):
    key = "telegram"
    url_id_pattern = r"t\.me/(?:c/)?[\w]+/(?P<id>\d+)"
    label = "Telegram channel"
    no_replies = ("comments on a Telegram channel live in its discussion group, where Herald doesn't answer; "
                  "reply in the group yourself")
    idempotent = False  # no idempotency key in the Bot API: a resend is a second post
    default_base_url = "https://api.telegram.org"
    publish_limits = ((20, 60.0),)  # one channel: at most 20 messages a minute
    profile = NetworkProfile(
        key="telegram", label="Telegram",
        # an album takes 10; with media the text becomes a caption of at most 1,024 characters
        text=TextRules(4096, max_images=10, media_only=True, caption_limit=1024),
        hosts=frozenset({"t.me", "telegram.me", "telegram.org"}),
    )
    reset_headers = ("retry-after",)
    connect_spec = ConnectSpec(
        required=("channel",),
        optional=(),
        secret=("token",),
        help=(
            "Make Herald's bot an administrator of the channel with 'Post messages' (channel → Administrators → "
            "Add admin), then: /connect telegram name=news channel=@acme_news (a private channel: its id, "
            "e.g. channel=-1001234567890). To post as another bot, add token=<its token from @BotFather> — "
            "in a private chat with me only. Telegram gives bots no view counts, so /stats has no numbers "
            "for channel posts."
        ),
    )

    def __init__(self, client: httpx.AsyncClient, clock: Clock, *, bot_token: str | None = None,
                 api_url: str | None = None) -> None:
        super().__init__(client, clock)
        self.bot_token = bot_token
        self.api_url = api_url.rstrip("/") if api_url else None

    # -- plumbing ------------------------------------------------------------------------------

    def base(self, account: AccountView) -> str:
        return (account.base_url or self.api_url or self.default_base_url).rstrip("/")

    def _token(self, account: AccountView) -> str:
        token = account.credentials.get("token") or self.bot_token
        if not token:
            raise PublishError(ErrorKind.AUTH_EXPIRED, "there's no bot token: run Herald with its Telegram bot "
                               f"token, or reconnect with /connect telegram name={account.name} "
                               "channel=… token=<bot token> in a private chat")
        return str(token)

    def _url(self, account: AccountView, method: str) -> str:
        return f"{self.base(account)}/bot{self._token(account)}/{method}"

    async def api(self, account: AccountView, method: str, *, sending: bool = False, **kwargs: Any) -> Any:
        try:
            body = await self.call("POST", self._url(account, method), sending=sending, **kwargs)
        except PublishError as exc:
            if "<name>" in exc.reason:  # classify() doesn't know the account: name it in the fix
                exc.reason = exc.reason.replace("<name>", account.name)
                exc.args = (exc.reason,)
            raise
        if not isinstance(body, dict) or body.get("ok") is not True:  # Telegram answers errors with ok=false
            raise self._error(body if isinstance(body, dict) else {}, 400, account, unsafe=sending)
        return body.get("result")

    def classify(self, response: httpx.Response) -> PublishError | None:
        try:
            body = response.json()
        except ValueError:
            return None
        if not isinstance(body, dict) or "description" not in body:
            return None
        if response.status_code >= 500:
            return None  # the base decides: UNKNOWN_OUTCOME for a send, else TRANSIENT
        return self._error(body, response.status_code, None, unsafe=False)

    def error_reason(self, response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return super().error_reason(response)
        if isinstance(body, dict) and body.get("description"):
            return _plain(str(body["description"]))
        return super().error_reason(response)

    def _error(self, body: dict[str, Any], status: int, account: AccountView | None, *, unsafe: bool) -> PublishError:
        code = int(body.get("error_code") or status)
        description = str(body.get("description") or f"HTTP {code}")
        reason = _plain(description)
        lowered = description.lower()
        parameters = body.get("parameters") or {}
        name = account.name if account is not None else "<name>"
        if code == 429:
            wait = parameters.get("retry_after")
            return PublishError(ErrorKind.RATE_LIMITED, f"Telegram says too many messages: {reason}",
                                retry_after=float(wait) if wait is not None else None)
        if code == 401 or (code == 404 and "chat" not in lowered):  # a revoked or malformed token
            return PublishError(ErrorKind.AUTH_EXPIRED, f"Telegram refused the bot token ({reason}); check it "
                                f"with @BotFather and reconnect with /connect telegram name={name} channel=…")
        if code == 403 or any(word in lowered for word in RIGHTS_WORDS):
            return PublishError(ErrorKind.AUTH_EXPIRED, f"the bot can't post in the channel ({reason}): make the "
                                "bot an admin of the channel with 'Post messages', then /retry")
        if code >= 500:
            kind = ErrorKind.UNKNOWN_OUTCOME if unsafe else ErrorKind.TRANSIENT
            return PublishError(kind, f"Telegram failed with {code} ({reason})")
        return PublishError(ErrorKind.REJECTED, f"Telegram refused it: {reason}")

    # -- connecting ------------------------------------------------------------------------------

    async def verify(self, account: AccountView) -> Verified:
        channel = parse_channel(str(account.settings.get("channel") or ""))
        me = await self.api(account, "getMe")
        bot_name = f"@{me.get('username')}"
        try:
            chat = await self.api(account, "getChat", json={"chat_id": channel})
        except PublishError as exc:
            if exc.kind not in (ErrorKind.AUTH_EXPIRED, ErrorKind.REJECTED):
                raise  # busy or unreachable: not a verdict on the channel
            raise ValueError(f"Telegram can't find the channel {channel} for {bot_name} — check the name, and "
                             f"add {bot_name} to the channel as an administrator first") from None
        if chat.get("type") != "channel":
            raise ValueError(f"{channel} is a {chat.get('type', 'chat')}, not a channel")
        shown = f"@{chat['username']}" if chat.get("username") else str(chat.get("id"))
        member = await self.api(account, "getChatMember", json={"chat_id": chat["id"], "user_id": me["id"]})
        status = member.get("status")
        allowed = status == "creator" or (status == "administrator" and member.get("can_post_messages"))
        if not allowed:
            role = {"administrator": "an administrator without the right to post messages",
                    "member": "only a subscriber", "left": "not in the channel",
                    "kicked": "banned from the channel"}.get(str(status), str(status))
            raise ValueError(f"{bot_name} is {role} of {shown}: make the bot an admin of the channel with "
                             "'Post messages' (channel → Administrators → Add admin), then connect again")
        settings = {"chat_id": chat["id"], "username": chat.get("username") or "", "title": chat.get("title") or "",
                    "bot": me.get("username") or ""}
        return Verified(description=f"{shown} ({chat.get('title', '')}) on Telegram, posting as {bot_name}",
                        settings=settings)

    # -- posting -----------------------------------------------------------------------------------

    async def publish(self, account: AccountView, post: Outgoing) -> Published:
        chat_id = account.settings.get("chat_id") or parse_channel(str(account.settings.get("channel") or ""))
        text = post.text.strip()
        media = list(post.media)
        if len(media) > MAX_ALBUM:
            raise PublishError(ErrorKind.REJECTED, f"a Telegram album holds at most {MAX_ALBUM} photos or videos; "
                               f"this post has {len(media)}")
        if not media and not text:
            raise PublishError(ErrorKind.REJECTED, "the post has no text and no media")
        limit = MAX_CAPTION if media else MAX_TEXT
        if _utf16(text) > limit:
            raise PublishError(ErrorKind.REJECTED, f"Telegram takes at most {limit} characters "
                               f"{'in a caption' if media else 'in a message'}; this one has {_utf16(text)}")
        self._token(account)
        await self.hold_back(account)
        if not media:
            result = await self.api(account, "sendMessage", sending=True,
                                    json={"chat_id": chat_id, "text": text})
            messages = [result]
        elif len(media) == 1:
            item = media[0]
            method, field = ("sendVideo", "video") if _is_video(item) else ("sendPhoto", "photo")
            data = {"chat_id": str(chat_id)}
            if text:
                data["caption"] = text
            result = await self.api(account, method, sending=True, data=data,
                                    files={field: (item.filename, item.data, item.content_type)})
            messages = [result]
        else:
            described = []
            files = {}
            for i, item in enumerate(media):
                part = f"file{i}"
                entry: dict[str, Any] = {"type": "video" if _is_video(item) else "photo", "media": f"attach://{part}"}
                if i == 0 and text:
                    entry["caption"] = text
                described.append(entry)
                files[part] = (item.filename, item.data, item.content_type)
            result = await self.api(account, "sendMediaGroup", sending=True, files=files,
                                    data={"chat_id": str(chat_id), "media": json.dumps(described)})
            messages = list(result or [])
        if not messages or not all(isinstance(m, dict) and "message_id" in m for m in messages):
            raise PublishError(ErrorKind.UNKNOWN_OUTCOME, "Telegram answered without the message id; "
                               "the post may or may not be in the channel")
        first = messages[0]
        chat = first.get("chat") or {"id": chat_id, "username": account.settings.get("username")}
        return Published(remote_id=",".join(str(m["message_id"]) for m in messages),
                         url=message_url(chat, int(first["message_id"])))

    async def fetch_metrics(self, account: AccountView, remote_ids: list[str]) -> dict[str, Metrics]:
        """The Bot API gives bots no view or reaction totals for channel posts: nothing to report."""
        return {}


def _plain(description: str) -> str:
    for prefix in ("Bad Request: ", "Forbidden: ", "Unauthorized: ", "Conflict: "):
        if description.startswith(prefix):
            return description[len(prefix):]
    return description


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _is_video(item: MediaFile) -> bool:
    return item.content_type.startswith("video/")
