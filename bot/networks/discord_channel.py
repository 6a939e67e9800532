"""Discord channel: publish a team's posts into a Discord channel (announcements, community news).

Two ways to connect:
- `/connect discord name=news channel=<channel id>`: Herald's own bot posts (POST
  /channels/{id}/messages with `Authorization: Bot <token>`, the bot token Herald runs with, or
  `token=` for another bot). Each delivery carries a `nonce` derived from its idempotency key
  with `enforce_nonce: true`: Discord returns the message it already created for that nonce
  if the same bot sends it again within a few minutes.
- `/connect discord name=news webhook=<webhook URL>` (secret): the channel's webhook executes
  with `?wait=true`, so Discord answers with the created message. Webhooks have no nonce.

Text up to 2,000 characters, up to 10 images as multipart `files[n]` with `payload_json`;
mentions are never parsed (`allowed_mentions.parse = []`), so a post can't ping @everyone.

Rate limits: every answer's X-RateLimit-Remaining / X-RateLimit-Reset-After is kept per route
(channel or webhook); with none left Herald waits (up to a second) or defers the send with the
time to wait, before Discord has to say 429. A 429 body {retry_after, global} sets the wait
(for every route when global).

Unknown outcomes: after a 5xx or a broken connection on the bot path Herald repeats the send
once, at once, with the same nonce. Discord dedupes a nonce only for "a few minutes", which an
immediate repeat is well within, so that repeat can't post twice; its answer is the message
(old or new). If the repeat fails too, the outcome is UNKNOWN: Herald's own later retries come
minutes to hours later, past the nonce window, so they must not count on it and the team
decides (/confirm or /retry) — unless the channel tells: Herald reads the channel's latest messages
(GET /channels/{id}/messages, newest first, back to the attempt) for one the bot wrote with the same
text (`look_for_post`). Found: sent. Not there, once a send can no longer land: surely not there.
The webhook path has no nonce, and a webhook can't read its channel: a failure after sending is
UNKNOWN at once, and stays so until the team decides.

Metrics: the message's reactions (GET the message; Σ reactions[].count as likes). No comments.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bot.networks.common import parse_iso
from bot.networks.http import HttpNetwork
from handlers.core.counting import TextRules
from handlers.core.ports import (
    CANT_TELL,
    AccountView,
    Clock,
    ConnectSpec,
    ErrorKind,
    Found,
    Metrics,
    NetworkProfile,
    Outgoing,
    Published,
    PublishError,
    ReadBudget,
    Verified,
)

WEBHOOK_RE = re.compile(r"^https?://[^/\s]+/api/(?:v\d+/)?webhooks/(\d+)/([\w\-.]+)/?$")
MAX_TEXT = 2000
MAX_FILES = 10
NONCE_MAX = 25
LOOK_PAGES = 3  # at most 3 pages of 100 of the channel's latest messages when looking for a lost post
CLOCK_SLACK = timedelta(minutes=2)  # Discord's clock and Herald's may differ: read from a little before the attempt
SHORT_WAIT = 1.0  # a route's limit that frees up within this many seconds is waited for; longer is deferred
MESSAGE_URL = "https://discord.com/channels/{guild}/{channel}/{message}"


def nonce_for(idempotency_key: str) -> str:
    """The delivery's nonce: its idempotency key when it fits Discord's 25 characters, else a digest of it."""
    if len(idempotency_key) <= NONCE_MAX:
        return idempotency_key
    return "h" + hashlib.sha256(idempotency_key.encode()).hexdigest()[: NONCE_MAX - 1]


class DiscordChannelNetwork(HttpNetwork):
    key = "discord"
    url_id_pattern = r"/channels/\d+/\d+/(?P<id>\d+)"
    label = "Discord channel"
    profile = NetworkProfile(
        key="discord", label="Discord",
        text=TextRules(2000, max_images=10, media_only=True),
        # one call per message; per-route buckets
        read_budget=ReadBudget(1_000, timedelta(minutes=5)),
        hosts=frozenset({"discord.com", "discord.gg", "discordapp.com"}),
    )
    no_replies = "Herald doesn't answer replies in a Discord channel it posts to; reply in the channel yourself"
    idempotent = False  # the nonce only holds for minutes and webhooks have none (see the module doc)
    default_base_url = "https://discord.com/api/v10"
    reset_headers = ("retry-after", "x-ratelimit-reset-after", "x-ratelimit-reset")
    connect_spec = ConnectSpec(
        required=(),
        optional=("channel",),
        secret=("webhook", "token"),
        help=(
            "Post into a Discord channel, as Herald's bot or through a webhook.\n"
            "Bot: invite Herald's bot to the server with Send Messages, Attach Files, Embed Links and Read Message "
            "History in the channel; turn on Developer Mode (User Settings → Advanced), right-click the channel → "
            "Copy Channel ID. Example: /connect discord name=news channel=123456789012345678\n"
            "Webhook: channel settings → Integrations → Webhooks → New Webhook → Copy Webhook URL, and send it to "
            "me privately: /connect discord name=news webhook=https://discord.com/api/webhooks/…"
        ),
    )

    def __init__(self, client: httpx.AsyncClient, clock: Clock, bot_token: str | None = None) -> None:
        super().__init__(client, clock)
        self.bot_token = bot_token
        self._blocked: dict[str, float] = {}  # route → monotonic time until which it has no requests left
        self._global_until = 0.0

    # -- connecting ---------------------------------------------------------------------------

    def _webhook(self, account: AccountView) -> tuple[str, str] | None:
        url = str(account.credentials.get("webhook") or "").strip()
        if not url:
            return None
        match = WEBHOOK_RE.match(url)
        if match is None:
            raise ValueError("webhook= must be a webhook URL like https://discord.com/api/webhooks/<id>/<token>")
        return match[1], match[2]

    def _token(self, account: AccountView) -> str:
        token = str(account.credentials.get("token") or self.bot_token or "").strip()
        if not token:  # nothing was sent: the account needs a token (or Herald its DISCORD_BOT_TOKEN)
            raise PublishError(ErrorKind.AUTH_EXPIRED, "posting as the bot needs Herald's bot token "
                               "(DISCORD_BOT_TOKEN) or the account's own: reconnect with /connect discord "
                               f"name={account.name} channel=… token=<bot token> (or give Herald DISCORD_BOT_TOKEN)")
        return token

    def _auth(self, account: AccountView) -> dict[str, str]:
        return {"Authorization": f"Bot {self._token(account)}"}

    async def verify(self, account: AccountView) -> Verified:
        webhook = self._webhook(account)
        channel = str(account.settings.get("channel") or account.settings.get("channel_id") or "").strip()
        if webhook is None and not channel:
            raise ValueError("give channel=<channel id> (Herald's bot posts) or webhook=<webhook URL>")
        if webhook is not None and channel:
            raise ValueError("give channel= or webhook=, not both")
        base = self.base(account)
        if webhook is not None:
            hook_id, hook_token = webhook
            try:
                data = await self.call("GET", f"{base}/webhooks/{hook_id}/{hook_token}")
            except PublishError as exc:
                if exc.kind in (ErrorKind.REJECTED, ErrorKind.AUTH_EXPIRED):
                    raise ValueError("Discord doesn't know that webhook (deleted, or the URL is incomplete)") from None
                raise
            settings = {"webhook_id": hook_id, "channel_id": str(data.get("channel_id") or ""),
                        "guild_id": str(data.get("guild_id") or "")}
            return Verified(f"webhook '{data.get('name') or hook_id}' of channel {settings['channel_id']}",
                            settings=settings)
        if not channel.isdigit():
            raise ValueError("channel= is the channel's numeric id (Developer Mode → right-click → Copy Channel ID)")
        me = await self.call("GET", f"{base}/users/@me", headers=self._auth(account))
        try:
            data = await self.call("GET", f"{base}/channels/{channel}", headers=self._auth(account))
        except PublishError as exc:
            if exc.kind == ErrorKind.REJECTED:
                raise ValueError(f"the bot can't see channel {channel}: invite it to the server and let it "
                                 "view and send messages in that channel") from None
            raise
        settings = {"channel_id": channel, "guild_id": str(data.get("guild_id") or ""),
                    "channel_name": str(data.get("name") or "")}
        where = f"#{data['name']}" if data.get("name") else f"channel {channel}"
        return Verified(f"{where} (id {channel}), posted by {me.get('username', 'the bot')}", settings=settings)

    # -- publishing ---------------------------------------------------------------------------

    async def publish(self, account: AccountView, outgoing: Outgoing) -> Published:
        if len(outgoing.text) > MAX_TEXT:
            raise PublishError(ErrorKind.REJECTED, f"Discord messages hold {MAX_TEXT} characters; "
                               f"this one has {len(outgoing.text)}")
        if len(outgoing.media) > MAX_FILES:
            raise PublishError(ErrorKind.REJECTED, f"Discord takes {MAX_FILES} files a message; this post has "
                               f"{len(outgoing.media)}")
        body: dict[str, Any] = {"content": outgoing.text, "allowed_mentions": {"parse": []}}
        base = self.base(account)
        webhook = self._webhook(account)
        if webhook is not None:
            url, headers, params = f"{base}/webhooks/{webhook[0]}/{webhook[1]}", {}, {"wait": "true"}
        else:
            channel = str(account.settings.get("channel_id") or account.settings.get("channel") or "")
            url, headers, params = f"{base}/channels/{channel}/messages", self._auth(account), {}
            body["nonce"] = nonce_for(outgoing.idempotency_key)
            body["enforce_nonce"] = True
        await self.hold_back(account)
        try:
            message = await self._send(url, headers, params, body, outgoing)
        except PublishError as exc:
            if exc.kind != ErrorKind.UNKNOWN_OUTCOME or webhook is not None:
                raise
            try:  # the same nonce, seconds later: Discord returns the message if the first send made one
                message = await self._send(url, headers, params, body, outgoing)
            except PublishError as again:
                raise PublishError(ErrorKind.UNKNOWN_OUTCOME,
                                   f"{exc.reason}; a repeat with the same nonce failed too ({again.reason})") from again
        guild = str(message.get("guild_id") or account.settings.get("guild_id") or "") or "@me"
        channel_id = str(message.get("channel_id") or account.settings.get("channel_id") or "")
        return Published(str(message["id"]), MESSAGE_URL.format(guild=guild, channel=channel_id,
                                                                message=message["id"]))

    async def look_for_post(self, account: AccountView, post: Outgoing, since: datetime) -> Found:
        """On the bot path: the channel's messages since the attempt (newest first, up to LOOK_PAGES pages of 100),
        the one the bot wrote with the delivery's text. One: it's the post; several: can't tell which; none: surely
        not there once the attempt can no longer land (IN_FLIGHT_FOR), can't tell before. Through a webhook (it
        can't read the channel) or when the channel can't be read: can't tell."""
        if self._webhook(account) is not None or not post.text:
            return CANT_TELL
        channel = str(account.settings.get("channel_id") or account.settings.get("channel") or "")
        base = self.base(account)
        floor = since - CLOCK_SLACK
        try:
            me = await self.call("GET", f"{base}/users/@me", headers=self._auth(account))
            params: dict[str, Any] = {"limit": 100}
            matches: list[dict[str, Any]] = []
            for _page in range(LOOK_PAGES):
                url = f"{base}/channels/{channel}/messages"
                route = _route("GET", url)
                await self._before(route)
                response = await self.call("GET", url, headers=self._auth(account), params=params, expect_json=False)
                self._note(route, response)
                messages = [m for m in _json(response) or [] if isinstance(m, dict) and m.get("id")]
                matches += [m for m in messages if str((m.get("author") or {}).get("id")) == str(me.get("id"))
                            and m.get("content") == post.text and _stamp(m) >= floor]
                if len(messages) < 100 or min(_stamp(m) for m in messages) < floor:
                    break
                params["before"] = messages[-1]["id"]
            else:
                return CANT_TELL  # more messages since the attempt than Herald reads
        except PublishError:
            return CANT_TELL
        if len(matches) > 1:
            return CANT_TELL
        if not matches:
            return self.absent(since)
        message = matches[0]
        guild = str(message.get("guild_id") or account.settings.get("guild_id") or "") or "@me"
        return Published(str(message["id"]), MESSAGE_URL.format(guild=guild, channel=channel, message=message["id"]))

    async def _send(self, url: str, headers: dict[str, str], params: dict[str, str], body: dict[str, Any],
                    outgoing: Outgoing) -> dict[str, Any]:
        route = _route("POST", url)
        await self._before(route)
        if outgoing.media:
            payload = {**body, "attachments": [{"id": i, "filename": m.filename} for i, m in enumerate(outgoing.media)]}
            files = [(f"files[{i}]", (m.filename, m.data, m.content_type)) for i, m in enumerate(outgoing.media)]
            response = await self.call("POST", url, sending=True, expect_json=False, headers=headers, params=params,
                                       data={"payload_json": json.dumps(payload)}, files=files)
        else:
            response = await self.call("POST", url, sending=True, expect_json=False, headers=headers, params=params,
                                       json=body)
        self._note(route, response)
        try:
            message = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise PublishError(ErrorKind.UNKNOWN_OUTCOME, f"Discord answered {response.status_code} with something "
                               "that isn't a message; the post may or may not be there") from exc
        if not isinstance(message, dict) or "id" not in message:
            raise PublishError(ErrorKind.UNKNOWN_OUTCOME, "Discord's answer had no message id (was ?wait=true "
                               "dropped?); the post may or may not be there")
        return message

    # -- metrics ------------------------------------------------------------------------------

    async def fetch_metrics(self, account: AccountView, remote_ids: list[str]) -> dict[str, Metrics]:
        base = self.base(account)
        webhook = self._webhook(account)
        found: dict[str, Metrics] = {}
        for remote_id in remote_ids:
            if webhook is not None:
                url, headers = f"{base}/webhooks/{webhook[0]}/{webhook[1]}/messages/{remote_id}", {}
            else:
                url = f"{base}/channels/{account.settings.get('channel_id')}/messages/{remote_id}"
                headers = self._auth(account)
            route = _route("GET", url)
            await self._before(route)
            try:
                response = await self.call("GET", url, headers=headers, expect_json=False)
            except PublishError as exc:
                if exc.kind == ErrorKind.REJECTED:  # deleted (404) or not readable (403): leave it out
                    continue
                raise
            self._note(route, response)
            message = response.json()
            reactions = message.get("reactions") or []
            found[remote_id] = Metrics(likes=sum(int(r.get("count") or 0) for r in reactions))
        return found

    # -- rate limits and errors -----------------------------------------------------------------

    async def _before(self, route: str) -> None:
        """Don't call a route Discord said is spent: wait a moment, or defer the send with the time left."""
        now = time.monotonic()
        wait = max(self._global_until, self._blocked.get(route, 0.0)) - now
        if wait <= 0:
            return
        if wait <= SHORT_WAIT:
            await asyncio.sleep(wait)
            return
        scope = "global rate limit (all of Herald's requests)" if self._global_until - now >= wait else \
            "rate limit for this channel"
        raise PublishError(ErrorKind.RATE_LIMITED, f"Discord's {scope} is spent for {wait:.0f} more seconds; "
                           "nothing was sent", retry_after=wait)

    def _note(self, route: str, response: httpx.Response) -> None:
        remaining = response.headers.get("x-ratelimit-remaining")
        reset_after = _number(response.headers.get("x-ratelimit-reset-after"))
        if remaining == "0" and reset_after is not None:
            self._blocked[route] = time.monotonic() + reset_after
        else:
            self._blocked.pop(route, None)

    def classify(self, response: httpx.Response) -> PublishError | None:
        route = _route(response.request.method, str(response.request.url))
        self._note(route, response)
        body = _json(response)
        code = body.get("code") if isinstance(body, dict) else None
        if response.status_code == 429:
            wait = _number(body.get("retry_after")) if isinstance(body, dict) else None
            wait = wait if wait is not None else self.retry_after(response)
            is_global = bool(isinstance(body, dict) and body.get("global")) or \
                response.headers.get("x-ratelimit-global", "").lower() == "true"
            until = time.monotonic() + (wait or 1.0)
            if is_global:
                self._global_until = until
            else:
                self._blocked[route] = until
            scope = "all of Herald's requests (global limit)" if is_global else "this channel"
            return PublishError(ErrorKind.RATE_LIMITED, f"Discord asks to slow down for {scope}", retry_after=wait)
        if response.status_code == 403 and code in (50001, 50013):
            return PublishError(ErrorKind.REJECTED, "the bot may not post there: give it View Channel, Send "
                                "Messages, Attach Files and Embed Links in that channel")
        if response.status_code == 404 and "/webhooks/" in str(response.request.url) and code == 10015:
            return PublishError(ErrorKind.REJECTED, "the webhook was deleted: make a new one and connect it again "
                                "with /connect discord name=<name> webhook=<URL>")
        return None

    def error_reason(self, response: httpx.Response) -> str:
        body = _json(response)
        if isinstance(body, dict):
            message = str(body.get("message") or f"HTTP {response.status_code}")
            detail = _first_error(body.get("errors"))
            return f"{message} ({detail})" if detail else message
        return super().error_reason(response)


def _stamp(message: dict[str, Any]) -> datetime:
    """When a listed message was written (a message without a readable time counts as the oldest)."""
    return parse_iso(message.get("timestamp")) or datetime.min.replace(tzinfo=UTC)


def _route(method: str, url: str) -> str:
    """Discord's bucket for a request: method and path with the major parameter (channel or webhook)
    kept and message ids folded."""
    path = httpx.URL(url).path
    return f"{method.upper()} " + re.sub(r"/messages/\d+", "/messages/:id", path)


def _number(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _first_error(errors: Any, path: str = "") -> str | None:
    """Discord's nested form errors: {"content": {"_errors": [{"message": …}]}} → "content: …"."""
    if not isinstance(errors, dict):
        return None
    for key, value in errors.items():
        if key == "_errors" and isinstance(value, list) and value:
            message = value[0].get("message") if isinstance(value[0], dict) else None
            if message:
                return f"{path}: {message}" if path else str(message)
        found = _first_error(value, f"{path}.{key}" if path else key)
        if found:
            return found
    return None
