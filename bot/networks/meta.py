"""What Meta's three APIs share: Graph error bodies, usage headers, tokens, public media URLs,
and the two-phase container flow of Instagram and Threads.

Facebook Pages, Instagram and Threads all answer errors as
``{"error": {"message", "type", "code", "error_subcode", "error_user_msg", "fbtrace_id"}}``
(usually with HTTP 400, whatever the cause), so the HTTP status alone says little; the
``code`` does:

- 190 (and 102, 463, 467) → the token is dead: AUTH_EXPIRED; 200–299 (and 10 about a permission) → a permission is
  missing: AUTH_EXPIRED too (only reconnecting with a better token fixes it);
- 4, 17, 32, 613 and the Business Use Case codes 80000–80099 → RATE_LIMITED, the wait read
  from ``X-Business-Use-Case-Usage`` / ``X-Page-Usage`` / ``X-App-Usage``
  (``estimated_time_to_regain_access``, in minutes); Instagram's subcode 2207042 (publishing
  limit reached) too;
- 506 and 368 → REJECTED (duplicate post / blocked by policy), with Meta's own message;
- 1 and 2 (or ``is_transient``) → TRANSIENT, but UNKNOWN_OUTCOME on a post-creating call:
  code 2 answers have been seen where the post was made anyway.

Instagram and Threads don't take image bytes: Meta downloads every image from a public URL.
Herald keeps media in its own store, so an account names where that store is publicly served
(``media_url_template=https://media.example.com/herald/{sha256}.jpg`` or
``media_base_url=https://media.example.com/herald``), and the connector builds each image's URL.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import httpx

from bot.networks.common import bearer, parse_iso, to_int
from bot.networks.http import HttpNetwork
from handlers.core.counting import LimitCheck
from handlers.core.ports import (
    AccountView,
    Comment,
    ErrorKind,
    MediaFile,
    Outgoing,
    Published,
    PublishError,
    ReplyTarget,
)

GRAPH_VERSION = "v25.0"  # Graph API (Facebook, Instagram); released Feb 2026, available until Jul 2028
THREADS_VERSION = "v1.0"

AUTH_CODES = frozenset({102, 190, 463, 467})
RATE_CODES = frozenset({4, 17, 32, 341, 613})
DUPLICATE_CODES = frozenset({506})
IG_PUBLISH_LIMIT_SUBCODE = 2207042
NOT_READY_SUBCODE = 2207027  # media_publish refused: the container isn't FINISHED yet (nothing posted)
USAGE_HEADERS = ("x-business-use-case-usage", "x-page-usage", "x-app-usage", "x-ad-account-usage")
DEFAULT_RATE_WAIT = 600.0  # throttled with no usage header: Meta's windows are a rolling hour
LONG_LIVED = timedelta(days=60)

_EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp",
               "video/mp4": ".mp4", "video/quicktime": ".mov"}


def graph_error(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else None


def usage_wait(headers: httpx.Headers) -> float | None:
    """Seconds until access returns, from Meta's usage headers (their estimate is in minutes)."""
    waits: list[float] = []

    def scan(node: Any) -> None:
        if isinstance(node, dict):
            minutes = node.get("estimated_time_to_regain_access")
            if isinstance(minutes, int | float) and not isinstance(minutes, bool):
                waits.append(float(minutes) * 60.0)
            for value in node.values():
                scan(value)
        elif isinstance(node, list):
            for value in node:
                scan(value)

    for name in USAGE_HEADERS:
        raw = headers.get(name)
        if not raw:
            continue
        try:
            scan(json.loads(raw))
        except (json.JSONDecodeError, TypeError):
            continue
    positive = [w for w in waits if w > 0]
    return max(positive) if positive else None


def parse_time(value: Any) -> datetime | None:
    """Graph timestamps: '2026-11-23T10:00:00+0000' (Graph) or ISO 8601 with 'Z'."""
    if not isinstance(value, str) or not value:
        return None
    raw = value.replace("Z", "+00:00")
    if len(raw) > 5 and raw[-5] in "+-" and raw[-4:].isdigit():
        raw = f"{raw[:-2]}:{raw[-2:]}"  # Graph's +0000 → +00:00
    return parse_iso(raw)


def media_url(account: AccountView, media: MediaFile, network_label: str) -> str:
    """The public URL Meta downloads this image from, built from the account's settings."""
    template = str(account.settings.get("media_url_template") or "").strip()
    base = str(account.settings.get("media_base_url") or "").strip()
    if not template and base:
        template = base.rstrip("/") + "/{sha256}{ext}"
    if not template:
        raise PublishError(
            ErrorKind.REJECTED,
            f"{network_label} downloads images from a public URL and this account has no "
            "media_url_template= (e.g. https://media.example.com/herald/{sha256}.jpg): reconnect with it",
        )
    ext = _EXTENSIONS.get(media.content_type.lower(), "")
    if not ext and "." in media.filename:
        ext = "." + media.filename.rsplit(".", 1)[1].lower()
    try:
        return template.format(sha256=media.sha256, filename=media.filename, ext=ext)
    except (KeyError, IndexError, ValueError) as exc:
        raise PublishError(ErrorKind.REJECTED, f"media_url_template= can use {{sha256}}, {{filename}} and "
                           f"{{ext}} only ({exc})") from exc


def check_media_urls(result: LimitCheck, account: AccountView, media_count: int, network_label: str) -> LimitCheck:
    """The text check, plus a problem when a post with images can't be sent: no public media URL setting."""
    if media_count and not (account.settings.get("media_url_template") or account.settings.get("media_base_url")):
        problem = f"{network_label} needs public image URLs: reconnect the account with media_url_template="
        return replace(result, problems=(*result.problems, problem))
    return result


def check_media_template(settings: dict[str, Any]) -> None:
    """ValueError at connect time for a media URL setting that can't work."""
    template = str(settings.get("media_url_template") or "")
    base = str(settings.get("media_base_url") or "")
    for key, value in (("media_url_template", template), ("media_base_url", base)):
        if value and not value.startswith("https://"):
            raise ValueError(f"{key}= must be a public https:// address Meta can download images from")
    if template:
        if "{sha256}" not in template and "{filename}" not in template:
            raise ValueError("media_url_template= needs {sha256} (or {filename}) where each image's name goes")
        try:
            template.format(sha256="0", filename="a.jpg", ext=".jpg")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"media_url_template= can use {{sha256}}, {{filename}} and {{ext}} only ({exc})") \
                from None


class MetaGraphNetwork(HttpNetwork):
    """Base of the Facebook, Instagram and Threads connectors: one Graph dialect."""

    idempotent: ClassVar[bool] = False
    api_version: ClassVar[str] = GRAPH_VERSION
    insights_batch: ClassVar[int] = 50  # Graph's ?ids= takes at most 50 ids
    # how long publish waits for a container to be FINISHED before handing it to a later attempt
    poll_interval: ClassVar[float] = 2.0
    poll_tries: ClassVar[int] = 5
    refresh_within: ClassVar[timedelta] = timedelta(hours=24)

    # -- requests -----------------------------------------------------------------------------

    def token(self, account: AccountView) -> str:
        token = str(account.credentials.get("token") or account.credentials.get("access_token") or "")
        if not token:
            raise PublishError(ErrorKind.AUTH_EXPIRED, f"this {self.label} account has no token; reconnect with "
                               f"/connect {self.key} name={account.name} token=…")
        return token

    def api(self, account: AccountView, *parts: str) -> str:
        return "/".join([self.base(account), self.api_version, *[p.strip("/") for p in parts]])

    async def comment_on(self, account: AccountView, target: ReplyTarget, edge: str, text: str) -> str:
        """Answer a comment through its Graph `edge` (Facebook `comments`, Instagram `replies`): the answer's id."""
        await self.hold_back(account, reply=True)
        body = await self.graph("POST", account, target.comment_id, edge, sending=True, data={"message": text})
        remote = str(body.get("id") or "") if isinstance(body, dict) else ""
        if not remote:
            raise PublishError(ErrorKind.UNKNOWN_OUTCOME, f"{self.label} took the reply but didn't say its id; it "
                               "may be there")
        return remote

    async def graph(self, method: str, account: AccountView, *parts: str, sending: bool = False,
                    **kwargs: Any) -> Any:
        headers = bearer(self.token(account))
        return await self.call(method, self.api(account, *parts), sending=sending, headers=headers, **kwargs)

    # -- errors -------------------------------------------------------------------------------

    def raise_for(self, response: httpx.Response, *, unsafe: bool) -> None:
        if response.status_code >= 400:
            refined = self.graph_failure(response, unsafe=unsafe)
            if refined is not None:
                raise refined
        super().raise_for(response, unsafe=unsafe)

    def graph_failure(self, response: httpx.Response, *, unsafe: bool) -> PublishError | None:
        error = graph_error(response)
        if error is None:
            return None
        code, sub = to_int(error.get("code")), to_int(error.get("error_subcode"))
        reason = self.error_reason(response)
        if code in AUTH_CODES:
            return PublishError(ErrorKind.AUTH_EXPIRED, f"{self.label} says the token no longer works ({reason}); "
                                f"reconnect with /connect {self.key} name=<name> token=<new token>")
        # code 10 is also Instagram's "(#10) Not enough viewers" for insights: only a permission when it says so
        if (code == 10 and "permission" in reason.lower()) or (code is not None and 200 <= code <= 299):
            return PublishError(ErrorKind.AUTH_EXPIRED, f"the {self.label} token lacks a permission ({reason}); "
                                f"reconnect with a token that has it: /connect {self.key} name=<name> token=…")
        if code in RATE_CODES or (code is not None and 80000 <= code <= 80099) or sub == IG_PUBLISH_LIMIT_SUBCODE:
            wait = self.retry_after(response)
            if sub == IG_PUBLISH_LIMIT_SUBCODE and wait is None:
                wait = 3600.0
            return PublishError(ErrorKind.RATE_LIMITED, f"{self.label} is throttling this account: {reason}",
                                retry_after=wait if wait is not None else DEFAULT_RATE_WAIT)
        if sub == NOT_READY_SUBCODE:
            return PublishError(ErrorKind.TRANSIENT, f"{self.label} hasn't finished preparing the post ({reason})",
                                retry_after=60.0)
        if code in DUPLICATE_CODES or (code == 368 and "already" in reason.lower()):
            return PublishError(ErrorKind.REJECTED, f"{self.label} refuses duplicate posts: {reason}")
        if code == 368:
            return PublishError(ErrorKind.REJECTED, f"{self.label} blocked this post for its policies: {reason}")
        if code in (1, 2) or error.get("is_transient") is True:
            if unsafe:
                return PublishError(ErrorKind.UNKNOWN_OUTCOME, f"{self.label} had a temporary problem while "
                                    f"handling the post ({reason}); the post may or may not be there")
            return PublishError(ErrorKind.TRANSIENT, f"{self.label} had a temporary problem ({reason})",
                                retry_after=30.0)
        return None

    def error_reason(self, response: httpx.Response) -> str:
        error = graph_error(response)
        if error is None:
            return super().error_reason(response)
        text = str(error.get("error_user_msg") or error.get("message") or f"HTTP {response.status_code}")
        code = error.get("code")
        return f"{text.strip()[:300]} (code {code})" if code is not None else text.strip()[:300]

    def retry_after(self, response: httpx.Response) -> float | None:
        wait = usage_wait(response.headers)
        return wait if wait is not None else super().retry_after(response)

    # -- two-phase publishing (Instagram, Threads) --------------------------------------------

    status_field: ClassVar[str] = "status"  # Instagram: status_code; Threads: status

    async def container_status(self, account: AccountView, container_id: str) -> tuple[str, str]:
        fields = f"{self.status_field},status" if self.status_field != "status" else "status,error_message"
        body = await self.graph("GET", account, container_id, params={"fields": fields})
        if not isinstance(body, dict):
            body = {}  # an unreadable status is no status: the caller keeps waiting, never starts again
        status = str(body.get(self.status_field) or "").upper()
        detail = str(body.get("error_message") or body.get("status") or "")
        return status, detail

    async def wait_until_finished(self, account: AccountView, container_id: str) -> str:
        """Poll the container until FINISHED (or PUBLISHED: an earlier attempt's publish went through,
        so the caller must find the post, never publish again); hand it to a later attempt if it takes
        longer. Returns the status it ended on."""
        for attempt in range(self.poll_tries):
            status, detail = await self.container_status(account, container_id)
            if status in ("FINISHED", "PUBLISHED"):
                return status
            if status == "ERROR":
                raise PublishError(ErrorKind.REJECTED, f"{self.label} couldn't prepare the post: {detail or 'ERROR'}"
                                   " (are the image URLs public, and the images in a format it takes?)")
            if status == "EXPIRED":
                raise PublishError(ErrorKind.TRANSIENT, f"the {self.label} container expired before publishing; "
                                   "the next attempt makes a new one", resume={"container_id": ""})
            if attempt < self.poll_tries - 1:
                await asyncio.sleep(self.poll_interval)
        raise PublishError(ErrorKind.TRANSIENT, f"{self.label} is still preparing the post; Herald publishes it "
                           "on the next attempt", retry_after=60.0, resume={"container_id": container_id})

    async def wait_for_children(self, account: AccountView, children: list[str]) -> None:
        """Wait for every carousel item container. A child is never the post: whatever goes wrong here, the
        next attempt must not publish it (Meta refuses a carousel item as creation_id, or worse, would post
        one image alone), so the failure carries no child id and makes the next attempt start the carousel
        again (new item containers; the unused ones expire by themselves)."""
        for child_id in children:
            try:
                await self.wait_until_finished(account, child_id)
            except PublishError as exc:
                exc.resume = {"container_id": ""}
                exc.reason += " (a carousel image; the next attempt prepares the carousel again)"
                raise

    def container_id(self, body: Any, what: str) -> str:
        """The id of a container just made; TRANSIENT when the answer has none (a container is never a post)."""
        container = str(body.get("id") or "") if isinstance(body, dict) else ""
        if not container:
            raise PublishError(ErrorKind.TRANSIENT, f"{self.label} answered the {what} without its id; nothing "
                               "was published, the next attempt makes it again", resume={"container_id": ""})
        return container

    async def publish_container(self, account: AccountView, user: str, outgoing: Outgoing, *, publish_edge: str,
                                post_word: str) -> Published:
        """Publish the post's container (the resumed one, or a new one from `create_container`) with
        ``POST /{user}/{publish_edge}``; a container found already PUBLISHED is looked up, never published
        again. Every failure from here on keeps ``resume={"container_id": …}``."""
        container = str(outgoing.resume.get("container_id") or "")
        if container:
            status, _ = await self.container_status(account, container)
            if status == "PUBLISHED":
                return await self.find_published(account, user, outgoing, container)
            if status in ("EXPIRED", "ERROR"):
                container = ""  # expired or failed: nothing was posted, start again
        if not container:
            container = await self.create_container(account, user, outgoing)
        try:
            if await self.wait_until_finished(account, container) == "PUBLISHED":
                return await self.find_published(account, user, outgoing, container)
            await self.hold_back(account)
            body = await self.graph("POST", account, user, publish_edge, sending=True,
                                    data={"creation_id": container})
        except PublishError as exc:
            exc.resume = {"container_id": container, **exc.resume}
            raise
        media_id = str(body.get("id") or "") if isinstance(body, dict) else ""
        if not media_id:
            raise PublishError(ErrorKind.UNKNOWN_OUTCOME, f"{self.label} answered the publish without a {post_word}",
                               resume={"container_id": container})
        return Published(remote_id=media_id, url=await self.permalink(account, media_id))

    async def create_container(self, account: AccountView, user: str, outgoing: Outgoing) -> str:
        """The post's container (never a carousel item's: only this one goes to resume and to publishing)."""
        raise NotImplementedError

    async def find_published(self, account: AccountView, user: str, outgoing: Outgoing, container: str) -> Published:
        """The post an earlier attempt published from `container`."""
        raise NotImplementedError

    async def find_by_text(self, account: AccountView, user: str, outgoing: Outgoing, container: str, *,
                           edge: str, text_field: str, where: str) -> Published:
        """The latest 25 posts on ``/{user}/{edge}``: the one whose `text_field` is the post's text."""
        body = await self.graph("GET", account, user, edge,
                                params={"fields": f"id,{text_field},permalink,timestamp", "limit": 25})
        for item in body.get("data", []) if isinstance(body, dict) else []:
            if (item.get(text_field) or "") == outgoing.text:
                return Published(remote_id=str(item["id"]), url=item.get("permalink"))
        raise PublishError(ErrorKind.UNKNOWN_OUTCOME, f"{self.label} says container {container} was published, "
                           f"but Herald can't find the post among the latest 25; check the {where}",
                           resume={"container_id": container})

    async def permalink(self, account: AccountView, media_id: str) -> str | None:
        try:
            body = await self.graph("GET", account, media_id, params={"fields": "permalink"})
        except PublishError:
            return None  # the post exists: never fail the publish for its URL
        url = body.get("permalink")
        return url if isinstance(url, str) and url else None

    async def comments_on(self, account: AccountView, remote_ids: list[str], since: datetime | None, *, edge: str,
                          params: dict[str, Any], link_field: str | None) -> list[Comment]:
        """The comments under each post (``/{media-id}/{edge}``), newer than `since`; a post that's gone is
        skipped. `link_field` names the comment's link in the answer, when the network gives one."""
        out: list[Comment] = []
        for media_id in remote_ids:
            try:
                body = await self.graph("GET", account, media_id, edge, params=params)
            except PublishError as exc:
                if exc.kind == ErrorKind.REJECTED:
                    continue
                raise
            for item in body.get("data", []) if isinstance(body, dict) else []:
                created = parse_time(item.get("timestamp"))
                if created is None or (since is not None and created <= since):
                    continue
                out.append(Comment(remote_id=str(item.get("id")), parent_remote_id=media_id,
                                   author=f"@{item.get('username') or 'someone'}", text=str(item.get("text") or ""),
                                   created_at=created, url=item.get(link_field) if link_field else None))
        return out

    async def refresh_long_lived(self, account: AccountView, url: str, grant_type: str) -> dict[str, Any] | None:
        """Extend a 60-day Instagram/Threads token when it ends within `refresh_within` (or its end is
        unknown). A dead token → AUTH_EXPIRED; a token still too young to refresh (< 24 h) → None."""
        now = self.clock.now()
        expires = parse_time(account.credentials.get("expires_at"))
        if expires is not None and expires - now > self.refresh_within:
            return None
        token = self.token(account)
        try:
            body = await self.call("GET", url, params={"grant_type": grant_type, "access_token": token})
        except PublishError as exc:
            if exc.kind == ErrorKind.AUTH_EXPIRED or (expires is not None and expires <= now):
                raise PublishError(ErrorKind.AUTH_EXPIRED, f"the {self.label} token can't be renewed ({exc.reason}); "
                                   f"reconnect with /connect {self.key} name={account.name} token=<new token>") from exc
            if exc.kind == ErrorKind.REJECTED:
                return None  # e.g. a token under 24 h old: try again at the next check
            raise
        new_token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(new_token, str) or not new_token:
            raise PublishError(ErrorKind.TRANSIENT, f"{self.label} answered the token refresh without a token")
        seconds = to_int(body.get("expires_in"))
        until = now + (timedelta(seconds=seconds) if seconds else LONG_LIVED)
        creds = {k: v for k, v in account.credentials.items() if k != "access_token"}
        return {**creds, "token": new_token, "expires_at": until.astimezone(UTC).isoformat()}


def insight_values(body: Any) -> dict[str, int]:
    """{"data": [{"name": "likes", "values": [{"value": 3}]} | {"name", "total_value": {"value"}}]} → {name: n}."""
    out: dict[str, int] = {}
    data = body.get("data") if isinstance(body, dict) else None
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        value: Any = None
        values = item.get("values")
        if isinstance(values, list) and values and isinstance(values[-1], dict):
            value = values[-1].get("value")
        elif isinstance(item.get("total_value"), dict):
            value = item["total_value"].get("value")
        number = to_int(value) if not isinstance(value, dict) else sum(to_int(v) or 0 for v in value.values())
        if number is not None:
            out[item["name"]] = number
    return out
