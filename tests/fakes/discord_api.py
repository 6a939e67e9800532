"""A fake Discord on 127.0.0.1: the REST API (v10) and the gateway websocket, for the real discord.py.

REST (under /api/v10, bot routes need `Authorization: Bot <token>`):
- GET /gateway/bot, GET /users/@me, GET /oauth2/applications/@me
- PUT /applications/{app}/commands and /applications/{app}/guilds/{guild}/commands (bulk overwrite)
- POST /interactions/{id}/{token}/callback (types 4, 5, 6, 7, 8 autocomplete result, 9 modal)
- GET/PATCH/DELETE /webhooks/{app}/{token}/messages/@original|{id}, POST /webhooks/{app}/{token} (followups)
- POST /webhooks/{id}/{token} (a channel webhook made with `add_webhook`, `?wait=true` returns the message)
- GET /channels/{id}, POST /channels/{id}/messages (JSON or multipart `payload_json` + `files[n]`;
  `nonce` + `enforce_nonce` return the earlier message for a repeated nonce), GET /channels/{id}/messages
  (newest first, `limit` 1–100, default 50, `before`/`after` a message id; without the nonce, as Discord
  lists them), GET/PATCH /channels/{id}/messages/{id}; PUT/DELETE /channels/{id}/messages/pins/{id} (pin,
  unpin: the message's `pinned`)
- GET /attachments/{id}/{filename}: the bytes of an attachment a test handed in

Gateway (GET /gateway, websocket, JSON text frames): HELLO (op 10) → IDENTIFY (op 2) → READY
dispatch (application id, bot user, the guilds as unavailable) then GUILD_CREATE per guild with
its channels, roles and members; HEARTBEAT (op 1) → ACK (op 11); RESUME (op 6) → RESUMED.

Test helpers: `slash()` runs a slash command as a member, `click()` presses a button (custom_id)
on a stored message, `submit_modal()` submits a modal, `autocomplete()` asks for choices; each
waits for the bot's answer and returns the `Interaction` record (its callbacks, original response,
followups). The answer is the callback, or after a deferral (type 5 "thinking…", type 6 deferred
update) the edit of the original response or the first followup that resolves it: a test never reads
a deferral as the answer. `channel_messages()` reads what the bot posted in a channel; `wait_for()`
checks a condition again each time the bot has made a request.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer

API = "/api/v10"
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
MEMBER_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 31)  # view channel, send messages, use application commands
EPHEMERAL = 1 << 6
NONCE_WINDOW = 120.0  # seconds a nonce is remembered ("the past few minutes")
ANSWER_WITHIN = 20.0  # seconds a test waits for the bot's answer to an interaction before it fails


def jsonr(data: Any, status: int = 200) -> web.Response:
    """A JSON answer with Discord's exact content type (discord.py compares it to 'application/json')."""
    return web.Response(body=json.dumps(data).encode(), status=status, content_type="application/json")


def iso_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime())


@dataclass
class Interaction:
    """One interaction the fake sent the bot and everything the bot answered to it."""

    id: str
    token: str
    payload: dict[str, Any]
    callbacks: list[dict[str, Any]] = field(default_factory=list)  # bodies POSTed to /callback
    original: dict[str, Any] | None = None  # the response message (type 4/5), edited by PATCH @original
    followups: list[dict[str, Any]] = field(default_factory=list)
    answered: asyncio.Event = field(default_factory=asyncio.Event)  # the callback arrived
    settled: asyncio.Event = field(default_factory=asyncio.Event)  # the answer: a callback, or a deferral resolved
    # deferred (type 5) and not yet resolved: Discord makes the first followup edit the "thinking…"
    # original, keeping the deferral's visibility whatever flags the followup asks for
    loading: bool = False

    @property
    def callback(self) -> dict[str, Any]:
        return self.callbacks[0]

    @property
    def kind(self) -> int:
        return int(self.callbacks[0]["type"])

    @property
    def ephemeral(self) -> bool:
        data = self.callbacks[0].get("data") or {}
        return bool(int(data.get("flags") or 0) & EPHEMERAL)

    def embeds(self) -> list[dict[str, Any]]:
        """Embeds of the response (or, after a deferral, the original it became) and the followups."""
        found: list[dict[str, Any]] = []
        data = self.callbacks[0].get("data") or {} if self.callbacks else {}
        if self.kind in (4,):
            found += data.get("embeds") or []
        elif self.original is not None:
            found += self.original.get("embeds") or []
        for message in self.followups:
            found += message.get("embeds") or []
        return found


class FakeDiscord(LoopbackServer):
    """Discord's REST API and gateway for one bot application."""

    def __init__(self, token: str = "bot-token") -> None:
        super().__init__()
        self.token = token
        self._ids = itertools.count(1_100_000_000_000_000_001)
        self.app_id = self.snowflake()
        self.bot_user = {"id": self.app_id, "username": "herald", "global_name": "Herald", "discriminator": "0",
                         "avatar": None, "bot": True, "flags": 0}
        self.guilds: dict[str, dict[str, Any]] = {}
        self.channels: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, dict[str, Any]] = {}
        self.attachments: dict[str, bytes] = {}
        self.webhooks: dict[str, dict[str, Any]] = {}  # webhook id → {token, channel_id, guild_id}
        self.commands: dict[str, list[dict[str, Any]]] = {}  # "global" or guild id → registered commands
        self.interactions: dict[str, Interaction] = {}
        self.nonces: dict[tuple[str, str, str], tuple[float, str]] = {}  # (author, channel, nonce) → (when, message)
        self.sockets: list[web.WebSocketResponse] = []
        self.identified = 0
        self.resumed = 0
        self._seq = 0
        self._ws_ready = asyncio.Event()
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)  # stamps new messages; a test may set its clock
        self._routes_added()

    def snowflake(self) -> str:
        return str(next(self._ids))

    # -- state the tests build -------------------------------------------------------------

    def add_guild(self, name: str = "Acme") -> str:
        guild_id = self.snowflake()
        everyone = {"id": guild_id, "name": "@everyone", "permissions": str(MEMBER_PERMISSIONS), "position": 0,
                    "color": 0, "hoist": False, "managed": False, "mentionable": False, "flags": 0}
        self.guilds[guild_id] = {"id": guild_id, "name": name, "icon": None, "owner_id": self.snowflake(),
                                 "roles": [everyone], "channels": [], "members": [], "member_count": 0,
                                 "features": [], "emojis": [], "stickers": [], "threads": [],
                                 "voice_states": [], "presences": [], "large": False, "unavailable": False,
                                 "verification_level": 0, "default_message_notifications": 0,
                                 "explicit_content_filter": 0, "mfa_level": 0, "nsfw_level": 0,
                                 "premium_tier": 0, "preferred_locale": "en-US", "system_channel_flags": 0,
                                 "joined_at": iso_now()}
        self.add_member(guild_id, "herald", user=self.bot_user)
        return guild_id

    def add_channel(self, guild_id: str | None, name: str) -> str:
        channel_id = self.snowflake()
        if guild_id is None:  # a DM channel
            channel = {"id": channel_id, "type": 1, "name": None, "recipients": [], "last_message_id": None}
        else:
            channel = {"id": channel_id, "type": 0, "name": name, "guild_id": guild_id, "position":
                       len(self.guilds[guild_id]["channels"]), "permission_overwrites": [], "nsfw": False,
                       "topic": None, "last_message_id": None, "rate_limit_per_user": 0, "parent_id": None}
            self.guilds[guild_id]["channels"].append({k: v for k, v in channel.items() if k != "guild_id"})
        self.channels[channel_id] = channel
        return channel_id

    def add_role(self, guild_id: str, name: str, permissions: int = 0) -> str:
        role_id = self.snowflake()
        guild = self.guilds[guild_id]
        guild["roles"].append({"id": role_id, "name": name, "permissions": str(permissions),
                               "position": len(guild["roles"]), "color": 0, "hoist": False, "managed": False,
                               "mentionable": True, "flags": 0})
        return role_id

    def add_member(self, guild_id: str, name: str, *, roles: tuple[str, ...] = (), admin: bool = False,
                   manage_guild: bool = False, user: dict[str, Any] | None = None) -> dict[str, Any]:
        user = user or {"id": self.snowflake(), "username": name.lower(), "global_name": name.capitalize(),
                        "discriminator": "0", "avatar": None, "bot": False, "flags": 0}
        permissions = MEMBER_PERMISSIONS | (ADMINISTRATOR if admin else 0) | (MANAGE_GUILD if manage_guild else 0)
        member = {"user": user, "roles": list(roles), "nick": None, "joined_at": iso_now(), "deaf": False,
                  "mute": False, "flags": 0, "permissions": str(permissions)}
        guild = self.guilds[guild_id]
        guild["members"].append({k: v for k, v in member.items() if k != "permissions"})
        guild["member_count"] = len(guild["members"])
        member["guild_id"] = guild_id
        return member

    def give_role(self, member: dict[str, Any], role_id: str) -> None:
        member["roles"].append(role_id)

    def add_webhook(self, channel_id: str, token: str = "webhook-token") -> str:
        webhook_id = self.snowflake()
        self.webhooks[webhook_id] = {"token": token, "channel_id": channel_id,
                                     "guild_id": self.channels[channel_id].get("guild_id")}
        return webhook_id

    def add_attachment(self, filename: str, data: bytes, content_type: str = "image/png") -> dict[str, Any]:
        attachment_id = self.snowflake()
        self.attachments[attachment_id] = data
        url = f"{self.url}/attachments/{attachment_id}/{filename}"
        return {"id": attachment_id, "filename": filename, "size": len(data), "url": url, "proxy_url": url,
                "content_type": content_type}

    # -- what the tests read ---------------------------------------------------------------

    def channel_messages(self, channel_id: str) -> list[dict[str, Any]]:
        return [m for m in self.messages.values() if m["channel_id"] == channel_id]

    def global_commands(self) -> list[dict[str, Any]]:
        return self.commands.get("global", [])

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """The first truthy `predicate()`, checked again after each request the bot makes."""
        return await self.wait_until(predicate, timeout, "the bot didn't do it in time")

    # -- interactions the tests make -------------------------------------------------------

    def _interaction(self, kind: int, member: dict[str, Any], channel_id: str, data: dict[str, Any],
                     message: dict[str, Any] | None = None) -> Interaction:
        interaction_id, token = self.snowflake(), f"itoken-{self.snowflake()}"
        channel = self.channels[channel_id]
        guild_id = channel.get("guild_id")
        payload: dict[str, Any] = {
            "id": interaction_id, "application_id": self.app_id, "type": kind, "token": token, "version": 1,
            "channel_id": channel_id, "channel": {k: v for k, v in channel.items() if k != "recipients"},
            "data": data, "locale": "en-US", "entitlements": [], "attachment_size_limit": 26214400,
            "app_permissions": str((1 << 53) - 1), "authorizing_integration_owners": {"0": guild_id or "0"},
            "context": 0 if guild_id else 1,
        }
        if guild_id:
            payload["guild_id"] = guild_id
            payload["guild_locale"] = "en-US"
            payload["guild"] = {"id": guild_id, "locale": "en-US", "features": []}
            payload["member"] = {k: v for k, v in member.items() if k != "guild_id"}
        else:
            payload["user"] = member["user"]
        if message is not None:
            payload["message"] = message
        record = Interaction(interaction_id, token, payload)
        self.interactions[interaction_id] = record
        self.interactions[token] = record
        return record

    async def _deliver(self, record: Interaction, wait: bool = True) -> Interaction:
        """Send the interaction to the bot; with `wait`, return once it is answered (a deferral resolved)."""
        await self.dispatch("INTERACTION_CREATE", record.payload)
        if wait:
            await asyncio.wait_for(record.settled.wait(), ANSWER_WITHIN)
        return record

    async def slash(self, who: dict[str, Any], channel_id: str, name: str, **options: Any) -> Interaction:
        """Run /name as `member` in a channel. Options: str → string, int → integer, a member dict → user,
        ("role", id) → role, ("attachment", {...}) → attachment (from `add_attachment`)."""
        opts: list[dict[str, Any]] = []
        resolved: dict[str, dict[str, Any]] = {}
        for key, value in options.items():
            if value is None:
                continue
            if isinstance(value, dict) and "user" in value:
                uid = value["user"]["id"]
                resolved.setdefault("users", {})[uid] = value["user"]
                resolved.setdefault("members", {})[uid] = {k: v for k, v in value.items()
                                                           if k not in ("user", "guild_id")}
                opts.append({"name": key, "type": 6, "value": uid})
            elif isinstance(value, tuple) and value[0] == "role":
                role = next(r for g in self.guilds.values() for r in g["roles"] if r["id"] == value[1])
                resolved.setdefault("roles", {})[role["id"]] = role
                opts.append({"name": key, "type": 8, "value": role["id"]})
            elif isinstance(value, tuple) and value[0] == "attachment":
                resolved.setdefault("attachments", {})[value[1]["id"]] = value[1]
                opts.append({"name": key, "type": 11, "value": value[1]["id"]})
            elif isinstance(value, int):
                opts.append({"name": key, "type": 4, "value": value})
            else:
                opts.append({"name": key, "type": 3, "value": str(value)})
        scope = self.channels[channel_id].get("guild_id") or "global"
        registered = {c["name"]: c for c in self.commands.get(scope, []) + self.global_commands()}
        assert name in registered, f"/{name} isn't registered with Discord"
        data = {"id": registered[name]["id"], "name": name, "type": 1, "options": opts, "resolved": resolved}
        if scope != "global":
            data["guild_id"] = scope
        return await self._deliver(self._interaction(2, who, channel_id, data))

    async def autocomplete(self, member: dict[str, Any], channel_id: str, name: str, option: str,
                           value: str) -> list[dict[str, Any]]:
        scope = self.channels[channel_id].get("guild_id") or "global"
        registered = {c["name"]: c for c in self.commands.get(scope, []) + self.global_commands()}
        data = {"id": registered[name]["id"], "name": name, "type": 1,
                "options": [{"name": option, "type": 3, "value": value, "focused": True}]}
        record = await self._deliver(self._interaction(4, member, channel_id, data))
        assert record.kind == 8, record.callbacks
        return list(record.callback["data"]["choices"])

    async def click(self, member: dict[str, Any], message_id: str, custom_id: str) -> Interaction:
        message = self.messages[message_id]
        data = {"custom_id": custom_id, "component_type": 2}
        return await self._deliver(self._interaction(3, member, message["channel_id"], data, message))

    async def submit_modal(self, member: dict[str, Any], channel_id: str, custom_id: str, value: str,
                           message_id: str | None = None) -> Interaction:
        modal_input = {"type": 4, "custom_id": "text", "value": value}
        data = {"custom_id": custom_id, "components": [{"type": 1, "components": [modal_input]}]}
        message = self.messages[message_id] if message_id else None
        return await self._deliver(self._interaction(5, member, channel_id, data, message))

    # -- gateway ---------------------------------------------------------------------------

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        await asyncio.wait_for(self._ws_ready.wait(), 5.0)
        self._seq += 1
        for ws in list(self.sockets):
            await ws.send_json({"op": 0, "t": event, "s": self._seq, "d": data})

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None})
        async for frame in ws:
            if frame.type != 1:  # TEXT
                continue
            message = json.loads(frame.data)
            op = message.get("op")
            if op == 1:
                await ws.send_json({"op": 11, "d": None, "s": None, "t": None})
            elif op in (2, 6):
                if message["d"].get("token") != self.token:
                    await ws.close(code=4004, message=b"Authentication failed.")
                    break
                self.sockets.append(ws)
                if op == 2:
                    self.identified += 1
                    await self._ready(ws)
                else:
                    self.resumed += 1
                    self._seq += 1
                    await ws.send_json({"op": 0, "t": "RESUMED", "s": self._seq, "d": {}})
                self._ws_ready.set()
            self.changed()  # a gateway frame is a request too (identified, resumed)
        if ws in self.sockets:
            self.sockets.remove(ws)
        if not self.sockets:
            self._ws_ready.clear()
        self.changed()
        return ws

    async def _ready(self, ws: web.WebSocketResponse) -> None:
        self._seq += 1
        ready = {"v": 10, "user": self.bot_user, "session_id": f"session-{self.snowflake()}",
                 "resume_gateway_url": self.url.replace("http", "ws") + "/gateway",
                 "guilds": [{"id": g, "unavailable": True} for g in self.guilds],
                 "application": {"id": self.app_id, "flags": 0}, "private_channels": [], "shard": [0, 1]}
        await ws.send_json({"op": 0, "t": "READY", "s": self._seq, "d": ready})
        for guild in self.guilds.values():
            self._seq += 1
            await ws.send_json({"op": 0, "t": "GUILD_CREATE", "s": self._seq, "d": guild})

    # -- REST --------------------------------------------------------------------------------

    def _routes_added(self) -> None:
        r = self.route
        r("GET", "/gateway", self._gateway)
        r("GET", f"{API}/gateway/bot", self._gateway_bot)
        r("GET", f"{API}/users/@me", self._me)
        r("GET", f"{API}/oauth2/applications/@me", self._application)
        r("PUT", f"{API}/applications/{{app}}/commands", self._put_commands)
        r("PUT", f"{API}/applications/{{app}}/guilds/{{guild}}/commands", self._put_commands)
        r("POST", f"{API}/interactions/{{iid}}/{{token}}/callback", self._callback)
        r("*", f"{API}/webhooks/{{wid}}/{{token}}/messages/{{mid}}", self._webhook_message)
        r("GET", f"{API}/webhooks/{{wid}}/{{token}}", self._get_webhook)
        r("POST", f"{API}/webhooks/{{wid}}/{{token}}", self._execute_webhook)
        r("GET", f"{API}/channels/{{cid}}", self._get_channel)
        r("POST", f"{API}/channels/{{cid}}/messages", self._create_message)
        r("GET", f"{API}/channels/{{cid}}/messages", self._list_messages)
        r("*", f"{API}/channels/{{cid}}/messages/{{mid}}", self._channel_message)
        r("*", f"{API}/channels/{{cid}}/messages/pins/{{mid}}", self._pin)
        r("GET", "/attachments/{aid}/{filename}", self._attachment)

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bot {self.token}"

    @staticmethod
    def _unauthorized() -> web.Response:
        return jsonr({"message": "401: Unauthorized", "code": 0}, status=401)

    @staticmethod
    def _not_found(what: str, code: int) -> web.Response:
        return jsonr({"message": f"Unknown {what}", "code": code}, status=404)

    async def _gateway_bot(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        return jsonr({"url": self.url.replace("http", "ws") + "/gateway", "shards": 1,
                                  "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0,
                                                          "max_concurrency": 1}})

    async def _me(self, request: web.Request) -> web.Response:
        return jsonr(self.bot_user) if self._authorized(request) else self._unauthorized()

    async def _application(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        return jsonr({"id": self.app_id, "name": "Herald", "description": "", "icon": None,
                                  "bot_public": False, "bot_require_code_grant": False, "verify_key": "0" * 64,
                                  "owner": {**self.bot_user, "bot": False}, "flags": 0, "summary": "",
                                  "bot": self.bot_user})

    async def _put_commands(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        body = await request.json()
        scope = request.match_info.get("guild", "global")
        saved = [{**c, "id": self.snowflake(), "application_id": self.app_id, "version": "1",
                  **({"guild_id": scope} if scope != "global" else {})} for c in body]
        self.commands[scope] = saved
        return jsonr(saved)

    # messages ------------------------------------------------------------------------------

    async def _message_body(self, request: web.Request) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The JSON of a message (plain or `payload_json`) and the uploaded files."""
        if request.content_type == "multipart/form-data":
            form = await request.post()
            body = json.loads(str(form.get("payload_json") or "{}"))
            files = []
            for key in form:
                value = form[key]
                if key.startswith("files[") and isinstance(value, web.FileField):
                    value.file.seek(0)
                    files.append({"filename": value.filename, "content_type": value.content_type,
                                  "data": value.file.read()})
            return body, files
        raw = await request.read()
        return (json.loads(raw) if raw else {}), []

    def _message(self, channel_id: str, body: dict[str, Any], files: list[dict[str, Any]],
                 author: dict[str, Any], **extra: Any) -> dict[str, Any]:
        message_id = self.snowflake()
        attachments = []
        for item in files:
            attachment = self.add_attachment(item["filename"], item["data"], item["content_type"] or "")
            attachments.append(attachment)
        channel = self.channels.get(channel_id, {})
        message = {
            "id": message_id, "channel_id": channel_id, "author": author, "content": body.get("content") or "",
            "timestamp": self.now().astimezone(UTC).isoformat(), "edited_timestamp": None, "tts": False, "mention_everyone": False,
            "mentions": [], "mention_roles": [], "attachments": attachments, "embeds": body.get("embeds") or [],
            "components": body.get("components") or [], "pinned": False, "type": 0,
            "flags": int(body.get("flags") or 0), "reactions": [], **extra,
        }
        if channel.get("guild_id"):
            message["guild_id"] = channel["guild_id"]
        if body.get("nonce") is not None:
            message["nonce"] = body["nonce"]
        return message

    def _store(self, message: dict[str, Any]) -> dict[str, Any]:
        if not message["flags"] & EPHEMERAL:
            self.messages[message["id"]] = message
        return message

    def _reattach(self, message: dict[str, Any], body: dict[str, Any], files: list[dict[str, Any]]) -> None:
        """An edit's `attachments` list names the files to keep (by id); uploaded files are added."""
        if "attachments" not in body and not files:
            return
        keep = {str(a.get("id")) for a in body.get("attachments") or []}
        kept = [a for a in message["attachments"] if str(a["id"]) in keep]
        message["attachments"] = kept + [self.add_attachment(f["filename"], f["data"], f["content_type"] or "")
                                         for f in files]

    @staticmethod
    def _edit(message: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        for key in ("content", "embeds", "components", "flags"):
            if key in body and body[key] is not None:
                message[key] = body[key]
        message["edited_timestamp"] = iso_now()
        return message

    async def _get_channel(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        channel = self.channels.get(request.match_info["cid"])
        return jsonr(channel) if channel else self._not_found("Channel", 10003)

    async def _create_message(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        channel_id = request.match_info["cid"]
        if channel_id not in self.channels:
            return self._not_found("Channel", 10003)
        body, files = await self._message_body(request)
        error = self._validate(body, files)
        if error is not None:
            return error
        nonce = body.get("nonce")
        if nonce is not None and body.get("enforce_nonce"):
            key = (str(self.bot_user["id"]), channel_id, str(nonce))
            earlier = self.nonces.get(key)
            if earlier and time.monotonic() - earlier[0] < NONCE_WINDOW and earlier[1] in self.messages:
                return jsonr(self.messages[earlier[1]])
        message = self._store(self._message(channel_id, body, files, self.bot_user))
        if nonce is not None and body.get("enforce_nonce"):
            self.nonces[(str(self.bot_user["id"]), channel_id, str(nonce))] = (time.monotonic(), message["id"])
        return jsonr(message)

    async def _list_messages(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        channel_id = request.match_info["cid"]
        if channel_id not in self.channels:
            return self._not_found("Channel", 10003)
        try:
            limit = int(request.query.get("limit", "50"))
            before = int(request.query.get("before", "0") or 0)
            after = int(request.query.get("after", "0") or 0)
        except ValueError:
            return jsonr({"message": "Invalid Form Body", "code": 50035}, status=400)
        if not 1 <= limit <= 100:
            return jsonr({"message": "Invalid Form Body", "code": 50035, "errors": {"limit": {"_errors": [
                {"code": "NUMBER_TYPE_MAX", "message": "int value should be less than or equal to 100."}]}}},
                status=400)
        listed = sorted((m for m in self.channel_messages(channel_id)
                         if (not before or int(m["id"]) < before) and int(m["id"]) > after),
                        key=lambda m: int(m["id"]), reverse=True)[:limit]
        return jsonr([{k: v for k, v in m.items() if k != "nonce"} for m in listed])

    @staticmethod
    def _validate(body: dict[str, Any], files: list[dict[str, Any]]) -> web.Response | None:
        problems = {}
        if len(body.get("content") or "") > 2000:
            problems["content"] = {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH",
                                                "message": "Must be 2000 or fewer in length."}]}
        if len(body.get("embeds") or []) > 10:
            problems["embeds"] = {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Too many embeds."}]}
        if len(files) > 10:
            problems["files"] = {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Too many files."}]}
        if not (body.get("content") or body.get("embeds") or files or body.get("components")):
            return jsonr({"message": "Cannot send an empty message", "code": 50006}, status=400)
        if problems:
            return jsonr({"message": "Invalid Form Body", "code": 50035, "errors": problems},
                                     status=400)
        return None

    async def _channel_message(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return self._unauthorized()
        message = self.messages.get(request.match_info["mid"])
        if message is None or message["channel_id"] != request.match_info["cid"]:
            return self._not_found("Message", 10008)
        if request.method == "GET":
            return jsonr(message)
        if request.method == "PATCH":
            body, _files = await self._message_body(request)
            return jsonr(self._edit(message, body))
        if request.method == "DELETE":
            self.messages.pop(message["id"], None)
            return web.Response(status=204)
        return jsonr({"message": "405: Method Not Allowed", "code": 0}, status=405)

    async def _pin(self, request: web.Request) -> web.Response:
        """Pin Message (PUT) / Unpin Message (DELETE): 204 No Content; the message shows `pinned`."""
        if not self._authorized(request):
            return self._unauthorized()
        message = self.messages.get(request.match_info["mid"])
        if message is None or message["channel_id"] != request.match_info["cid"]:
            return self._not_found("Message", 10008)
        if request.method not in ("PUT", "DELETE"):
            return jsonr({"message": "405: Method Not Allowed", "code": 0}, status=405)
        message["pinned"] = request.method == "PUT"
        return web.Response(status=204)

    async def _attachment(self, request: web.Request) -> web.Response:
        data = self.attachments.get(request.match_info["aid"])
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="application/octet-stream")

    # interactions ----------------------------------------------------------------------------

    async def _callback(self, request: web.Request) -> web.Response:
        record = self.interactions.get(request.match_info["iid"])
        if record is None or record.token != request.match_info["token"]:
            return self._not_found("interaction", 10062)
        if record.callbacks:
            return jsonr({"message": "Interaction has already been acknowledged.", "code": 40060},
                                     status=400)
        body, files = await self._message_body(request)
        record.callbacks.append(body)
        kind = int(body["type"])
        data = body.get("data") or {}
        payload = record.payload
        resource: dict[str, Any] = {"type": kind}
        if kind in (4, 5):
            flags = int(data.get("flags") or 0)
            message = self._message(payload["channel_id"], {**data, "content": data.get("content") or ""}, files,
                                    self.bot_user, interaction={"id": record.id, "type": payload["type"],
                                                 "name": (payload.get("data") or {}).get("name", ""),
                                                 "user": (payload.get("member") or payload)["user"]})
            message["flags"] = flags
            message["type"] = 20
            record.original = self._store(message)
            record.loading = kind == 5
            resource["message"] = message
        elif kind == 7:
            target = self.messages.get(payload.get("message", {}).get("id", ""))
            if target is None:
                return jsonr({"message": "Unknown Message", "code": 10008}, status=404)
            resource["message"] = self._edit(target, data)
        record.answered.set()
        if kind not in (5, 6):  # a deferral isn't the answer yet: its edit or followup is
            record.settled.set()
        if request.query.get("with_response") in ("1", "true", "True"):
            return jsonr({
                "interaction": {"id": record.id, "type": payload["type"],
                                "response_message_id": (resource.get("message") or {}).get("id"),
                                "response_message_loading": kind == 5,
                                "response_message_ephemeral": bool(int(data.get("flags") or 0) & EPHEMERAL)},
                "resource": resource,
            })
        return web.Response(status=204)

    async def _webhook_message(self, request: web.Request) -> web.StreamResponse:
        record = self.interactions.get(request.match_info["token"])
        wanted = request.match_info["mid"]
        if record is None:  # a channel webhook's own message
            hook = self.webhooks.get(request.match_info["wid"])
            if hook is None or hook["token"] != request.match_info["token"]:
                return self._not_found("Webhook", 10015)
            found = self.messages.get(wanted)
            if found is None or found.get("webhook_id") != request.match_info["wid"]:
                return self._not_found("Message", 10008)
            return jsonr(found)
        if wanted == "@original":
            message = record.original
            if message is None and record.callbacks and record.kind in (6, 7):  # the component's message
                message = self.messages.get(record.payload.get("message", {}).get("id", ""))
        else:
            message = next((m for m in record.followups if m["id"] == wanted), None)
        if message is None:
            return self._not_found("Message", 10008)
        if request.method == "GET":
            return jsonr(message)
        if request.method == "PATCH":
            body, files = await self._message_body(request)
            if message is record.original:
                record.loading = False
            self._reattach(message, body, files)
            edited = self._edit(message, body)
            record.settled.set()
            return jsonr(edited)
        if request.method == "DELETE":
            self.messages.pop(message["id"], None)
            if message is record.original:
                record.original = None
                record.loading = False
            record.settled.set()
            return web.Response(status=204)
        return web.Response(status=405)

    async def _get_webhook(self, request: web.Request) -> web.Response:
        hook = self.webhooks.get(request.match_info["wid"])
        if hook is None or hook["token"] != request.match_info["token"]:
            return self._not_found("Webhook", 10015)
        return jsonr({"id": request.match_info["wid"], "type": 1, "name": "Herald news",
                                  "channel_id": hook["channel_id"], "guild_id": hook["guild_id"],
                                  "application_id": None, "avatar": None, "token": hook["token"]})

    async def _execute_webhook(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        record = self.interactions.get(token)
        body, files = await self._message_body(request)
        if record is not None and record.loading and record.original is not None:
            # the first followup after a deferral edits the "thinking…" original and keeps its visibility
            record.loading = False
            edited = self._edit(record.original, {k: v for k, v in body.items() if k != "flags"})
            record.settled.set()
            return jsonr(edited)
        if record is not None:  # an interaction followup
            message = self._message(record.payload["channel_id"], body, files, self.bot_user,
                                    webhook_id=self.app_id)
            message["flags"] = int(body.get("flags") or 0)
            record.followups.append(self._store(message))
            record.settled.set()
            return jsonr(message)
        hook = self.webhooks.get(request.match_info["wid"])
        if hook is None or hook["token"] != token:
            return self._not_found("Webhook", 10015)
        error = self._validate(body, files)
        if error is not None:
            return error
        author = {"id": request.match_info["wid"], "username": "Herald news", "discriminator": "0000",
                  "avatar": None, "bot": True}
        message = self._store(self._message(hook["channel_id"], body, files, author,
                                            webhook_id=request.match_info["wid"]))
        if request.query.get("wait") in ("true", "1", "True"):
            return jsonr(message)
        return web.Response(status=204)
