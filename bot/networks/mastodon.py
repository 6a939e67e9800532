"""Mastodon connector: statuses, images, metrics and replies on any instance (plain REST).

- Posting: `POST /api/v1/statuses` with `Idempotency-Key: <delivery key>`: Mastodon remembers the key
  (about an hour) and answers a resend with the status it already made, so a retry can't post twice.
  Only for that hour: the first status attempt of a delivery is recorded in its resume
  (`guard_status_first_tried_at`), and once a status POST may have left (`in_flight`) a later attempt
  more than 50 minutes after it isn't sent but comes back UNKNOWN_OUTCOME for the team to check (their
  /retry <post> <account> lifts the guard); waits between
  retries of a failed status are kept under 10 minutes so the automatic ones stay inside the hour.
- Images: `POST /api/v2/media` (multipart `file`); a 202 means the server is still processing it, so
  Herald polls `GET /api/v1/media/:id` (206 while processing, 200 when ready) before attaching.
  Uploaded ids travel in the error's `resume`, so a retry attaches them instead of uploading again.
- Metrics: `GET /api/v1/statuses?id[]=…` (Mastodon 4.3+), else one `GET /api/v1/statuses/:id` each.
  No impressions, clicks or saves: Mastodon doesn't publish them.
- Who shared: `GET /api/v1/statuses/:id/reblogged_by` (accounts with `followers_count`) and, on instances
  with quote posts (4.5+; a 404 means the instance has none), `GET /api/v1/statuses/:id/quotes`, both paged
  by the `Link` header's `next`; the quotes of quoted quotes are read one level down.
- Replies: `GET /api/v1/statuses/:id/context` → `descendants`. Herald answers one with `POST /api/v1/statuses`
  `{status, in_reply_to_id}` (and the reply's own Idempotency-Key), the commenter's @handle put in front
  as Mastodon clients do, so they're notified. A reply whose answer was lost is unconfirmed: resent with
  the same text within the hour, Mastodon hands back the one it made.
- Limits: the instance's own `max_characters` / `characters_reserved_per_url` (read at connect time
  from `GET /api/v2/instance`); rate limits 300 requests / 5 min and 30 media uploads / 30 min per
  account by default, signalled with `X-RateLimit-*` headers (reset as an ISO time).
- base_url (the instance) is required: a token only works on the instance that issued it.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlparse

import httpx
from aiolimiter import AsyncLimiter

from handlers.core.counting import Counting, LimitCheck, TextRules
from handlers.core.ports import (
    CANT_TELL,
    GUARD,
    IN_FLIGHT,
    AccountView,
    Comment,
    ConnectSpec,
    ErrorKind,
    FollowUpOut,
    Found,
    Metrics,
    NetworkProfile,
    Outgoing,
    Published,
    PublishError,
    ReadBudget,
    ReplyTarget,
    Share,
    ShareKind,
    Unknown,
    Verified,
)

from .common import (
    bearer,
    iso_z,
    media_key,
    parse_iso,
    plain_text,
    resumed_uploads,
    to_int,
    uploads_resume,
    with_resume,
)
from .http import HttpNetwork

IDS_PER_CALL = 20  # GET /api/v1/statuses?id[]=… (Mastodon pages 20 statuses by default; no documented max)
SHARE_PAGE = 80  # reblogged_by / quotes: limit, at most 80 accounts (40 statuses) per page
QUOTES_PAGE = 40
SHARE_PAGES = 2  # pages per list and reading
SECOND_DEGREE = 3  # quotes (the most followed first, quoted themselves) whose own quotes are read
MEDIA_LIMIT = (30, 1800.0)  # POST /api/v2/media: 30 per 30 minutes per account
MEDIA_TTL = timedelta(hours=12)  # unattached media are removed by the instance after a day
MEDIA_POLLS = 30
# Mastodon keeps an Idempotency-Key about an hour: past this since the first status attempt, a resend
# could post twice, so Herald asks the team instead
STATUS_GUARD = GUARD + "status_first_tried_at"
KEY_TRUSTED_FOR = timedelta(minutes=50)
MAX_STATUS_RETRY_WAIT = 600.0  # a failed status is retried well inside the key's hour
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol, httpx.InvalidURL)


class MastodonNetwork(HttpNetwork):
    key = "mastodon"
    url_id_pattern = r"/(?P<id>\d+)/?(?:[?#].*)?$"
    label = "Mastodon"
    no_replies = None  # a reply is a status with in_reply_to_id
    idempotent = True  # Idempotency-Key: a resent status comes back as the one already made
    default_base_url = "https://mastodon.social"
    publish_limits = ((300, 300.0),)  # every API call shares 300 / 5 min per account; posts can't exceed it
    profile = NetworkProfile(
        key="mastodon", label="Mastodon",
        text=TextRules(500, Counting.URLS_FIXED, "characters", max_images=4, media_only=True),
        # 300 requests / 5 min per account; GET /api/v1/statuses?id[] takes 20 → at most 100 requests (a third)
        read_budget=ReadBudget(2_000, timedelta(minutes=5)),
        # the same 300 / 5 min: a post's sharers take at most 4 pages and 6 second-degree pages
        share_budget=ReadBudget(10, timedelta(minutes=5)),
        hosts=frozenset({"mastodon.social", "mastodon.online", "joinmastodon.org"}),
        threads=True,
    )
    reset_headers = ("retry-after", "x-ratelimit-reset")
    media_poll_seconds = 1.0
    media_limit = MEDIA_LIMIT
    connect_spec = ConnectSpec(
        required=("access_token",),
        optional=("visibility",),
        secret=("access_token",),
        help=(
            "Your instance's address and an access token: on the instance, Preferences → Development → "
            "New application, scopes read and write (or write:statuses, write:media, read:statuses, "
            "read:accounts), then copy 'Your access token'. visibility= public (default), unlisted or private. "
            "Example: /connect mastodon name=brand base_url=https://mastodon.social access_token=…"
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._media_limiters: dict[int, AsyncLimiter] = {}
        self._no_batch: set[str] = set()  # instances older than 4.3 (no GET /api/v1/statuses?id[]=)
        self.share_page, self.quotes_page = SHARE_PAGE, QUOTES_PAGE  # items asked per page
        self._no_quotes: set[str] = set()  # instances without quote posts (before 4.5: no /quotes)

    def check(self, account: AccountView, text: str, media_count: int) -> LimitCheck:
        limit = to_int(account.settings.get("max_characters"))
        per_url = to_int(account.settings.get("characters_reserved_per_url"))
        return self.measure(text, media_count, max_characters=limit, url_weight=per_url)

    # -- connect -------------------------------------------------------------------------------

    async def verify(self, account: AccountView) -> Verified:
        if not account.base_url:
            raise ValueError("Mastodon needs your instance's address: add base_url=https://your.instance "
                             "(e.g. base_url=https://mastodon.social)")
        visibility = account.settings.get("visibility")
        if visibility is not None and visibility not in ("public", "unlisted", "private"):
            raise ValueError("visibility= must be public, unlisted or private")
        me = await self.call("GET", f"{self.base(account)}/api/v1/accounts/verify_credentials",
                             headers=self._headers(account))
        host = urlparse(self.base(account)).hostname or ""
        settings: dict[str, Any] = {"account_id": str(me["id"]), "username": me.get("username"),
                                    "profile_url": me.get("url")}
        settings.update(await self._instance_limits(account))
        return Verified(description=f"@{me.get('username')}@{host} on Mastodon (id {me['id']})", settings=settings)

    async def _instance_limits(self, account: AccountView) -> dict[str, Any]:
        try:
            info = await self.call("GET", f"{self.base(account)}/api/v2/instance")
        except PublishError as exc:
            if exc.kind == ErrorKind.RATE_LIMITED:
                raise
            return {}  # an older or unusual server: Mastodon's defaults apply
        statuses = (info.get("configuration") or {}).get("statuses") or {}
        limits = {"max_characters": to_int(statuses.get("max_characters")),
                  "max_media": to_int(statuses.get("max_media_attachments")),
                  "characters_reserved_per_url": to_int(statuses.get("characters_reserved_per_url"))}
        return {k: v for k, v in limits.items() if v}

    # -- publish -------------------------------------------------------------------------------

    async def publish(self, account: AccountView, post: Outgoing) -> Published:
        headers = self._headers(account)
        max_media = to_int(account.settings.get("max_media")) or 4
        if len(post.media) > max_media:
            raise PublishError(ErrorKind.REJECTED, f"this instance takes at most {max_media} images per post")
        first_tried = parse_iso(post.resume.get(STATUS_GUARD))
        # only when a status may exist: if no status POST ever left (refused, rate limited, unreachable),
        # there is nothing the key would have to dedupe
        if first_tried is not None and post.resume.get(IN_FLIGHT) and self.clock.now() - first_tried > KEY_TRUSTED_FOR:
            raise PublishError(
                ErrorKind.UNKNOWN_OUTCOME,
                f"an earlier attempt (from {iso_z(first_tried)}) may have posted and Mastodon only remembers the "
                "Idempotency-Key for an hour, so Herald won't send it again by itself; check the account, then "
                f"/confirm {post.post_id} {account.name} <link> if it's there, or /retry {post.post_id} "
                f"{account.name} if it isn't",
                resume={STATUS_GUARD: post.resume[STATUS_GUARD]},
            )
        media_ids = await self._upload_all(account, post, headers)
        resume = self._resume(post, media_ids)
        body: dict[str, Any] = {"status": post.text,
                                "visibility": account.settings.get("visibility") or "public"}
        if media_ids:
            body["media_ids"] = media_ids
        await with_resume(self.hold_back(account), resume)
        # from here on every failure carries when the first status attempt was made
        resume = {**resume, STATUS_GUARD: post.resume[STATUS_GUARD] if first_tried else iso_z(self.clock.now())}
        try:
            status = await self.call(
                "POST", f"{self.base(account)}/api/v1/statuses", sending=True,
                headers={**headers, "Idempotency-Key": post.idempotency_key}, json=body,
            )
        except PublishError as exc:
            may_have_left = exc.kind in (ErrorKind.TRANSIENT, ErrorKind.UNKNOWN_OUTCOME) \
                and not isinstance(exc.__cause__, NOT_SENT)
            exc.resume = {**resume, **exc.resume, **({IN_FLIGHT: True} if may_have_left else {})}
            if exc.kind == ErrorKind.TRANSIENT and exc.retry_after is not None:
                exc.retry_after = min(exc.retry_after, MAX_STATUS_RETRY_WAIT)
            raise
        if not isinstance(status, dict) or not status.get("id"):
            raise PublishError(ErrorKind.TRANSIENT, "Mastodon answered without the status id; a retry is safe "
                               "(same Idempotency-Key)", resume={**resume, IN_FLIGHT: True})
        return Published(remote_id=str(status["id"]), url=status.get("url") or status.get("uri"))

    async def look_for_post(self, account: AccountView, post: Outgoing, since: datetime) -> Found:
        """Resend with the same Idempotency-Key while Mastodon still remembers it (under 50 minutes since the
        first status attempt): it answers with the status the lost attempt made, or makes the one status now.
        Past that, or when the resend fails too, can't tell."""
        recorded = parse_iso(post.resume.get(STATUS_GUARD))
        first = min(recorded, since) if recorded is not None else since
        if self.clock.now() - first > KEY_TRUSTED_FOR:
            return CANT_TELL
        try:
            return await self.publish(account, replace(post, resume={**post.resume, STATUS_GUARD: iso_z(first),
                                                                     IN_FLIGHT: True}))
        except PublishError:
            return CANT_TELL

    async def look_for_follow_up(self, account: AccountView, follow: FollowUpOut, since: datetime) -> Found:
        """The reply sent again with the step's Idempotency-Key while Mastodon still remembers it: the status the
        lost attempt made, or the one status now. Past that, or when the resend fails too, can't tell."""
        if self.clock.now() - since > KEY_TRUSTED_FOR:
            return CANT_TELL
        try:
            return await self.publish_follow_up(account, follow)
        except PublishError:
            return CANT_TELL

    def reply_text(self, account: AccountView, target: ReplyTarget, text: str) -> str:
        """The commenter's @handle in front (Mastodon notifies mentioned people only), unless the text has it."""
        handle = target.author.strip()
        if not re.fullmatch(r"@[\w.\-]+(@[\w.\-]+)?", handle) or re.search(
                rf"(?<![\w@]){re.escape(handle)}(?![\w@])", text, re.IGNORECASE):
            return text
        return f"{handle} {text}"

    def check_reply(self, account: AccountView, text: str) -> LimitCheck:
        return self.check(account, text, 0)

    async def reply(self, account: AccountView, target: ReplyTarget, text: str) -> Published:
        headers = {**self._headers(account), "Idempotency-Key": target.idempotency_key}
        body = {"status": text, "in_reply_to_id": target.comment_id,
                "visibility": account.settings.get("visibility") or "public"}
        await self.hold_back(account, reply=True)
        try:
            status = await self.call("POST", f"{self.base(account)}/api/v1/statuses", sending=True, headers=headers,
                                     json=body)
        except PublishError as exc:
            if exc.kind in (ErrorKind.TRANSIENT, ErrorKind.UNKNOWN_OUTCOME) and not isinstance(exc.__cause__, NOT_SENT):
                raise PublishError(ErrorKind.UNKNOWN_OUTCOME, f"{exc.reason}; the reply may be there (sent again "
                                   "with the same text within the hour, Mastodon won't post it twice)") from exc
            raise
        if not isinstance(status, dict) or not status.get("id"):
            raise PublishError(ErrorKind.UNKNOWN_OUTCOME, "Mastodon answered without the reply's id; it may be there")
        return Published(remote_id=str(status["id"]), url=status.get("url") or status.get("uri"))

    async def _upload_all(self, account: AccountView, post: Outgoing, headers: dict[str, str]) -> list[str]:
        done = self._resumed_media(post)
        ids: list[str] = []
        todo = [i for i, m in enumerate(post.media) if media_key(i, m.sha256) not in done]
        if todo:
            count, seconds = self.media_limit
            limiter = self._media_limiters.setdefault(account.id, AsyncLimiter(count, seconds))
            if not limiter.has_capacity(len(todo)):
                raise PublishError(ErrorKind.RATE_LIMITED, f"Mastodon allows {count} image uploads per "
                                   f"{seconds / 60:g} minutes for one account; Herald waits rather than be blocked",
                                   retry_after=seconds / count * len(todo))
        for i, media in enumerate(post.media):
            key = media_key(i, media.sha256)
            if key in done:
                ids.append(done[key])
                continue
            resume = self._resume(post, ids)
            await self._media_limiters[account.id].acquire()
            answer = await with_resume(self.call(
                "POST", f"{self.base(account)}/api/v2/media", headers=headers, expect_json=False,
                files={"file": (media.filename, media.data, media.content_type)}, data={"description": ""},
            ), resume)
            attachment = _json(answer)
            media_id = str(attachment.get("id") or "")
            if not media_id:
                raise PublishError(ErrorKind.TRANSIENT, f"Mastodon's upload answer for {media.filename} had no id",
                                   resume=resume)
            if answer.status_code == 202 or not attachment.get("url"):
                await with_resume(self._wait_processed(account, headers, media_id, media.filename),
                                   self._resume(post, [*ids, media_id]))
            ids.append(media_id)
        return ids

    async def _wait_processed(self, account: AccountView, headers: dict[str, str], media_id: str,
                              filename: str) -> None:
        for _ in range(MEDIA_POLLS):
            await asyncio.sleep(self.media_poll_seconds)
            answer = await self.call("GET", f"{self.base(account)}/api/v1/media/{media_id}", headers=headers,
                                     expect_json=False)
            if answer.status_code == 200 and _json(answer).get("url"):
                return
        raise PublishError(ErrorKind.TRANSIENT, f"Mastodon is still processing {filename}; Herald will attach it "
                           "on the next attempt")

    def _resumed_media(self, post: Outgoing) -> dict[str, str]:
        saved = resumed_uploads(post, "media_ids", "media_uploaded_at", MEDIA_TTL, self.clock.now())
        return {k: str(v) for k, v in saved.items()}

    def _resume(self, post: Outgoing, ids: list[str]) -> dict[str, Any]:
        return uploads_resume(post, ids, "media_ids", "media_uploaded_at", reused=bool(self._resumed_media(post)),
                              stamp=iso_z(self.clock.now()))

    def _headers(self, account: AccountView) -> dict[str, str]:
        token = account.credentials.get("access_token")
        if not token:
            raise PublishError(ErrorKind.AUTH_EXPIRED, f"no Mastodon token stored; reconnect with /connect mastodon "
                               f"name={account.name} base_url=… access_token=…")
        return bearer(token)

    # -- metrics and replies ---------------------------------------------------------------------

    async def fetch_metrics(self, account: AccountView, remote_ids: list[str]) -> dict[str, Metrics]:
        headers = self._headers(account)
        ids = list(dict.fromkeys(r for r in remote_ids if r))
        followers = await self._followers(account, headers)
        statuses: list[dict[str, Any]] = []
        base = self.base(account)
        for start in range(0, len(ids), IDS_PER_CALL):
            chunk = ids[start:start + IDS_PER_CALL]
            if base not in self._no_batch:
                try:
                    found = await self.call("GET", f"{base}/api/v1/statuses", headers=headers,
                                            params={"id[]": chunk})
                except PublishError as exc:
                    if exc.kind != ErrorKind.REJECTED:
                        raise
                    self._no_batch.add(base)  # before 4.3: no batch endpoint (404)
                else:
                    statuses.extend(s for s in found if isinstance(s, dict))
                    continue
            for status_id in chunk:
                try:
                    statuses.append(await self.call("GET", f"{base}/api/v1/statuses/{status_id}", headers=headers))
                except PublishError as exc:
                    if exc.kind != ErrorKind.REJECTED:
                        raise  # 404: deleted, left out
        wanted = set(ids)
        return {str(s["id"]): _metrics(s, followers) for s in statuses if str(s.get("id")) in wanted}

    async def _followers(self, account: AccountView, headers: dict[str, str]) -> int | None:
        try:
            me = await self.call("GET", f"{self.base(account)}/api/v1/accounts/verify_credentials", headers=headers)
        except PublishError as exc:
            if exc.kind in (ErrorKind.AUTH_EXPIRED, ErrorKind.RATE_LIMITED):
                raise
            return None
        return to_int(me.get("followers_count"))

    async def fetch_comments(
        self, account: AccountView, remote_ids: list[str], since: datetime | None
    ) -> list[Comment]:
        headers = self._headers(account)
        own = str(account.settings.get("account_id") or "")
        comments: list[Comment] = []
        for status_id in dict.fromkeys(r for r in remote_ids if r):
            try:
                context = await self.call("GET", f"{self.base(account)}/api/v1/statuses/{status_id}/context",
                                          headers=headers)
            except PublishError as exc:
                if exc.kind == ErrorKind.REJECTED:
                    continue  # the status is gone
                raise
            for reply in context.get("descendants") or []:
                who = reply.get("account") or {}
                created = parse_iso(reply.get("created_at"))
                if created is None or str(who.get("id")) == own or (since is not None and created <= since):
                    continue
                comments.append(Comment(
                    remote_id=str(reply["id"]), parent_remote_id=str(status_id), author=f"@{who.get('acct')}",
                    text=plain_text(reply.get("content") or ""), created_at=created,
                    url=reply.get("url") or reply.get("uri"),
                ))
        return comments


    # -- who shared -------------------------------------------------------------------------------

    async def fetch_shares(self, account: AccountView, remote_id: str) -> list[Share] | Unknown:
        headers = self._headers(account)
        own = str(account.settings.get("account_id") or "")
        try:
            boosters = await self._pages(account, headers, f"/api/v1/statuses/{remote_id}/reblogged_by",
                                           self.share_page)
        except PublishError as exc:
            if exc.kind == ErrorKind.REJECTED:  # the status is gone
                return CANT_TELL
            raise
        shares = [Share(ShareKind.REPOST, who=str(a["id"]), handle=f"@{a.get('acct') or a['id']}",
                        followers=to_int(a.get("followers_count")), url=a.get("url"))
                  for a in boosters if a.get("id") and str(a["id"]) != own]
        quotes = await self._quotes(account, headers, remote_id, first=True)
        # quoted themselves (quotes_count > 0), or not saying (an instance that doesn't count them): asked
        ahead = sorted((q for q in quotes if q.get("quotes_count") is None or to_int(q.get("quotes_count"))),
                       key=lambda q: -(to_int((q.get("account") or {}).get("followers_count")) or 0))
        found = [(q, "") for q in quotes]
        for quote in ahead[:SECOND_DEGREE]:
            found += [(q, str(quote["id"])) for q in await self._quotes(account, headers, str(quote["id"]), first=False)]
        for status, via in found:
            who = status.get("account") or {}
            if not who.get("id") or str(who["id"]) == own or not status.get("id"):
                continue
            shares.append(Share(
                ShareKind.QUOTE, who=str(who["id"]), handle=f"@{who.get('acct') or who['id']}",
                followers=to_int(who.get("followers_count")), at=parse_iso(status.get("created_at")),
                remote_id=str(status["id"]), text=plain_text(status.get("content") or ""),
                url=status.get("url") or status.get("uri"),
                engagement=sum(to_int(status.get(k)) or 0 for k in ("favourites_count", "reblogs_count",
                                                                     "replies_count", "quotes_count")),
                via=via))
        return shares

    async def _quotes(self, account: AccountView, headers: dict[str, str], status_id: str,
                      *, first: bool) -> list[dict[str, Any]]:
        """The statuses quoting a status; none on an instance without quote posts. The `first` list is of a status
        the instance just listed the boosts of: refused, the instance has no quote posts (before 4.5: 404)."""
        base = self.base(account)
        if base in self._no_quotes:
            return []
        try:
            return await self._pages(account, headers, f"/api/v1/statuses/{status_id}/quotes", self.quotes_page)
        except PublishError as exc:
            if exc.kind != ErrorKind.REJECTED:
                raise
            if first:
                self._no_quotes.add(base)  # remembered for this process: a restart asks again after an upgrade
            return []

    async def _pages(self, account: AccountView, headers: dict[str, str], path: str, limit: int) -> list[dict[str, Any]]:
        """Up to SHARE_PAGES pages of a list, following the `Link` header's next page on the same instance."""
        base = self.base(account)
        url: str | None = f"{base}{path}"
        params: dict[str, Any] | None = {"limit": limit}
        found: list[dict[str, Any]] = []
        for _page in range(SHARE_PAGES):
            if url is None:
                break
            response = await self.call("GET", url, headers=headers, params=params, expect_json=False)
            try:
                body = response.json()
            except ValueError as exc:
                raise PublishError(ErrorKind.TRANSIENT, f"Mastodon answered {path} with something that isn't "
                                   "JSON") from exc
            found += [item for item in body if isinstance(item, dict)] if isinstance(body, list) else []
            following = response.links.get("next", {}).get("url")
            url = following if following and following.startswith(base + "/") else None
            params = None  # the next link carries its own query
        return found


def _metrics(status: dict[str, Any], followers: int | None) -> Metrics:
    return Metrics(likes=to_int(status.get("favourites_count")), comments=to_int(status.get("replies_count")),
                   shares=to_int(status.get("reblogs_count")), quotes=to_int(status.get("quotes_count")),
                   followers=followers)


def _json(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise PublishError(ErrorKind.TRANSIENT, "Mastodon's media answer wasn't JSON") from exc
    return body if isinstance(body, dict) else {}
