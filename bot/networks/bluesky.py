"""Bluesky (AT Protocol) connector: XRPC over plain HTTP against the account's PDS.

- Session: `com.atproto.server.createSession` (handle + app password) once at connect time; the
  access and refresh JWTs are kept with the account's credentials and renewed by `refresh()` with
  `com.atproto.server.refreshSession` (createSession is tightly limited: 30 / 5 min, 300 / day).
- Posting: `com.atproto.repo.createRecord` of an `app.bsky.feed.post` WITH A CLIENT-CHOSEN rkey: a
  TID derived from the delivery's idempotency key, so every attempt of one delivery names the same
  record. A resend can't make a second post: the PDS refuses to create an existing record (today
  with a 500, soon with an explicit error), and Herald then reads the record back with
  `com.atproto.repo.getRecord` and reports it as published. Hence `idempotent = True`.
- Rich text: link and #hashtag facets with UTF-8 byte offsets; `outgoing.link` becomes an
  `app.bsky.embed.external` card (title = the URL: Herald doesn't fetch pages), unless images take the
  embed; images via `com.atproto.repo.uploadBlob` (≤ 1,000,000 bytes each, ≤ 4) → `app.bsky.embed.images`.
- Metrics: `app.bsky.feed.getPosts` (25 uris per call); replies: `app.bsky.feed.getPostThread`.
- Who shared: `app.bsky.feed.getRepostedBy` (profiles) and `app.bsky.feed.getQuotes` (post views), paged with
  `cursor`, the quotes of quoted quotes one level down; their followers from `app.bsky.actor.getProfiles`
  (25 actors per call: the lists' basic profiles have no follower counts).
- Answering a reply: a post with `reply: {root, parent}` strong refs (uri + cid), read with
  `app.bsky.feed.getPosts` at send time (the comment's own `reply.root`, else Herald's post), created
  with an rkey derived from the reply's key like a post's, so a resend finds the record instead of
  making a second one.
- Rate limits: 429 with `ratelimit-reset` (epoch seconds); 5,000 points/hour per account where a
  create costs 3 points (≈ 1,666 posts/hour).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import regex
from PIL import Image, UnidentifiedImageError

from handlers.core.counting import Counting, TextRules, amount, utf8_bytes
from handlers.core.ports import (
    CANT_TELL,
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
    refresh_due,
    resumed_uploads,
    uploads_resume,
    with_resume,
)
from .http import HttpNetwork

POST = "app.bsky.feed.post"
URIS_PER_CALL = 25  # app.bsky.feed.getPosts takes up to 25 uris
SHARE_PAGE = 100  # getRepostedBy / getQuotes: limit 1–100
SHARE_PAGES = 2  # pages per list and reading
SECOND_DEGREE = 3  # quotes (the most followed first, quoted themselves) whose own quotes are read
ACTORS_PER_CALL = 25  # app.bsky.actor.getProfiles takes up to 25 actors
MAX_BLOB = 1_000_000  # bytes per image in app.bsky.embed.images
REFRESH_WINDOW = timedelta(minutes=30)  # access JWTs live about 2 hours
BLOB_TTL = timedelta(minutes=30)  # a PDS drops blobs no record references after a while
THREAD_DEPTH = 10
TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
TID_EPOCH_US = 1_672_531_200_000_000  # 2023-01-01T00:00:00Z in microseconds
TID_SPAN_US = 1 << 46  # derived TIDs fall in 2023-01-01 … 2025-03 (always in the past)
AUTH_ERRORS = ("ExpiredToken", "InvalidToken", "AuthMissing", "AuthenticationRequired", "AccountTakedown")
URL_RE = regex.compile(r"https?://[^\s<>\"]+")
TAG_RE = regex.compile(r"(?:^|\s)([#＃])([^\s\u00AD\u2060\u200A\u200B\u200C\u200D\u20e2]*"
                       r"[^\d\s\p{P}\u00AD\u2060\u200A\u200B\u200C\u200D\u20e2]+"
                       r"[^\s\u00AD\u2060\u200A\u200B\u200C\u200D\u20e2]*)")


class BlueskyNetwork(HttpNetwork):
    key = "bluesky"
    label = "Bluesky"
    no_replies = None  # a reply is a post with reply.root / reply.parent
    idempotent = True  # the rkey is fixed per delivery: a resend can't create a second post
    default_base_url = "https://bsky.social"
    publish_limits = ((1666, 3600.0),)  # 5,000 points/hour per account, 3 points per created record
    profile = NetworkProfile(
        key="bluesky", label="Bluesky", aliases=("bsky",),
        text=TextRules(300, Counting.GRAPHEMES, "graphemes", max_images=4, media_only=True),
        # 3,000 requests / 5 min per IP; app.bsky.feed.getPosts takes 25 → at most 200 requests
        read_budget=ReadBudget(5_000, timedelta(minutes=5)),
        # AppView reads share the 3,000 requests / 5 min per IP; a post's sharers take at most 4 list pages,
        # 6 second-degree pages and a few getProfiles calls
        share_budget=ReadBudget(100, timedelta(minutes=5)),
        hosts=frozenset({"bsky.app", "bsky.social"}),
        threads=True,
    )
    max_bytes = 3000  # a post's text in UTF-8 bytes, besides its 300 graphemes
    reset_headers = ("retry-after", "ratelimit-reset")
    refresh_window = REFRESH_WINDOW
    connect_spec = ConnectSpec(
        required=("handle", "app_password"),
        optional=(),
        secret=("app_password",),
        help=(
            "Your handle and an app password (Bluesky → Settings → Privacy and security → App passwords → Add; "
            "not your account password). base_url= only if the account lives on its own PDS "
            "(default https://bsky.social). Example: /connect bluesky name=brand handle=brand.bsky.social "
            "app_password=abcd-efgh-ijkl-mnop"
        ),
    )

    def text_problems(self, text: str, media_count: int) -> list[str]:
        size = utf8_bytes(text)
        if size > self.max_bytes:
            return [f"{amount(size - self.max_bytes, 'bytes')} over Bluesky's {self.max_bytes}-byte limit"]
        return []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # sessions renewed in the middle of a call (access JWT expired), until refresh() hands them over
        self._sessions: dict[int, dict[str, Any]] = {}

    # -- session -------------------------------------------------------------------------------

    async def verify(self, account: AccountView) -> Verified:
        handle = str(account.settings.get("handle") or "").lstrip("@").strip()
        if not handle:
            raise ValueError("handle= is missing (e.g. handle=brand.bsky.social)")
        if not account.credentials.get("app_password"):
            raise ValueError("app_password= is missing")
        if account.credentials.get("access_jwt") and account.settings.get("did"):
            # a stored account (the health check): check the session it has rather than open another one
            # (createSession allows 30 per 5 minutes); a session renewed on the way waits for refresh()
            current = await self._xrpc(account, "GET", "com.atproto.server.getSession")
            if current.get("active") is False:
                raise PublishError(ErrorKind.AUTH_EXPIRED, self._reconnect(
                    account, f"the Bluesky account is {current.get('status', 'inactive')}"))
            return Verified(description=f"@{current.get('handle')} on Bluesky ({current.get('did')})",
                            settings={"did": current.get("did"), "handle": current.get("handle")})
        session = await self._create_session(account)
        return Verified(
            description=f"@{session['handle']} on Bluesky ({session['did']})",
            settings={"did": session["did"], "handle": session["handle"]},
            credentials=self._session_credentials(session),
        )

    async def refresh(self, account: AccountView) -> dict[str, Any] | None:
        """New session credentials when the access JWT is near its end, or one renewed mid-call."""
        creds = self._creds(account)
        expires = _jwt_expiry(creds.get("access_jwt"))
        if refresh_due(expires, self.clock.now(), self.refresh_window):
            await self._renew(account)
        renewed = self._sessions.pop(account.id, None)
        if renewed is None or renewed.get("access_jwt") == account.credentials.get("access_jwt"):
            return None
        return {**account.credentials, **renewed}

    def _creds(self, account: AccountView) -> dict[str, Any]:
        """The stored credentials, or the session renewed since, whichever lasts longer."""
        stored = dict(account.credentials)
        renewed = self._sessions.get(account.id)
        if renewed is None:
            return stored
        mine, theirs = _jwt_expiry(renewed.get("access_jwt")), _jwt_expiry(stored.get("access_jwt"))
        if theirs is not None and (mine is None or theirs > mine):
            self._sessions.pop(account.id, None)  # a reconnect stored a newer session
            return stored
        return {**stored, **renewed}

    async def _renew(self, account: AccountView) -> None:
        """refreshSession with the refresh JWT; if that is dead too, createSession with the app password."""
        creds = self._creds(account)
        session: dict[str, Any] | None = None
        if creds.get("refresh_jwt"):
            try:
                session = await self.call("POST", f"{self.base(account)}/xrpc/com.atproto.server.refreshSession",
                                          headers=bearer(creds["refresh_jwt"]))
            except PublishError as exc:
                if exc.kind not in (ErrorKind.AUTH_EXPIRED, ErrorKind.REJECTED):
                    raise
                session = None  # the refresh JWT is dead too: log in again with the app password
        if session is None:
            if not creds.get("app_password"):
                raise PublishError(ErrorKind.AUTH_EXPIRED, self._reconnect(account, "the Bluesky session ended"))
            session = await self._create_session(account)
        self._sessions[account.id] = self._session_credentials(session)

    async def _xrpc(self, account: AccountView, method: str, nsid: str, *, sending: bool = False,
                    headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        """One XRPC call with the account's session; an expired access JWT is renewed and the call made once more
        (safe: an expired token means the PDS did nothing)."""
        url = f"{self.base(account)}/xrpc/{nsid}"
        try:
            return await self.call(method, url, sending=sending, headers={**self._headers(account), **(headers or {})},
                                   **kwargs)
        except PublishError as exc:
            if exc.kind != ErrorKind.AUTH_EXPIRED or not exc.reason.startswith("Bluesky session:"):
                raise
        await self._renew(account)
        return await self.call(method, url, sending=sending, headers={**self._headers(account), **(headers or {})},
                               **kwargs)

    async def _create_session(self, account: AccountView) -> dict[str, Any]:
        handle = str(account.settings.get("handle") or account.settings.get("did") or "").lstrip("@")
        try:
            session = await self.call(
                "POST", f"{self.base(account)}/xrpc/com.atproto.server.createSession",
                json={"identifier": handle, "password": account.credentials.get("app_password")},
            )
        except PublishError as exc:
            if exc.kind == ErrorKind.AUTH_EXPIRED:
                raise PublishError(ErrorKind.AUTH_EXPIRED, self._reconnect(account, exc.reason)) from exc
            raise
        if not session.get("accessJwt") or not session.get("did"):
            raise PublishError(ErrorKind.TRANSIENT, "Bluesky's session answer had no token")
        if session.get("active") is False:
            raise PublishError(ErrorKind.AUTH_EXPIRED, f"the Bluesky account is {session.get('status', 'inactive')}")
        return session

    def _session_credentials(self, session: dict[str, Any]) -> dict[str, Any]:
        creds = {"access_jwt": session["accessJwt"], "refresh_jwt": session.get("refreshJwt")}
        expires = _jwt_expiry(session["accessJwt"])
        if expires is not None:
            creds["expires_at"] = iso_z(expires, "milliseconds")
        return creds

    def _reconnect(self, account: AccountView, why: str) -> str:
        return (f"{why}; reconnect with /connect bluesky name={account.name} handle=… app_password=… "
                "(a new app password if the old one was revoked)")

    def _headers(self, account: AccountView) -> dict[str, str]:
        token = self._creds(account).get("access_jwt")
        if not token:
            raise PublishError(ErrorKind.AUTH_EXPIRED, self._reconnect(account, "no Bluesky session stored"))
        return bearer(token)

    def _did(self, account: AccountView) -> str:
        did = account.settings.get("did")
        if not did:
            raise PublishError(ErrorKind.AUTH_EXPIRED, self._reconnect(account, "the account's DID isn't known"))
        return str(did)

    # -- publish -------------------------------------------------------------------------------

    async def publish(self, account: AccountView, post: Outgoing) -> Published:
        did = self._did(account)
        rkey = tid_for(post.idempotency_key)
        if len(post.media) > 4:
            raise PublishError(ErrorKind.REJECTED, "Bluesky takes at most 4 images per post")
        for media in post.media:
            if not media.content_type.startswith("image/"):
                raise PublishError(ErrorKind.REJECTED, f"{media.filename}: Herald posts images to Bluesky, not "
                                   f"{media.content_type}")
        images = await self._upload_all(account, post)
        record: dict[str, Any] = {"$type": POST, "text": post.text,
                                  "createdAt": iso_z(self.clock.now(), "milliseconds")}
        facets = make_facets(post.text)
        if facets:
            record["facets"] = facets
        if images:
            record["embed"] = {"$type": "app.bsky.embed.images", "images": images}
        elif post.link:
            record["embed"] = {"$type": "app.bsky.embed.external",
                               "external": {"uri": post.link, "title": post.link, "description": ""}}
        if account.settings.get("lang"):
            record["langs"] = [str(account.settings["lang"])]
        resume = self._resume(post, images)
        await with_resume(self.hold_back(account), resume)
        try:
            created = await self._xrpc(account, "POST", "com.atproto.repo.createRecord", sending=True,
                                       json={"repo": did, "collection": POST, "rkey": rkey, "record": record})
        except PublishError as exc:
            if exc.kind in (ErrorKind.AUTH_EXPIRED, ErrorKind.RATE_LIMITED):
                exc.resume = exc.resume or resume
                raise
            existing = await self._existing(account, did, rkey)  # an earlier attempt may have made it
            if existing is not None:
                return existing
            exc.resume = exc.resume or resume
            raise
        uri = str(created.get("uri") or f"at://{did}/{POST}/{rkey}")
        return Published(remote_id=uri, url=self._url(account, uri))

    async def look_for_follow_up(self, account: AccountView, follow: FollowUpOut, since: datetime) -> Found:
        """A part's record key is derived from its idempotency key like a post's: read back the same way."""
        return await self.look_for_post(account, self.follow_up_as_post(follow), since)

    async def reply(self, account: AccountView, target: ReplyTarget, text: str) -> Published:
        did = self._did(account)
        rkey = tid_for(target.idempotency_key or f"reply:{target.comment_id}:{text}")
        parent, root = await self._reply_refs(account, target)
        record: dict[str, Any] = {"$type": POST, "text": text, "createdAt": iso_z(self.clock.now(), "milliseconds"),
                                  "reply": {"root": root, "parent": parent}}
        facets = make_facets(text)
        if facets:
            record["facets"] = facets
        if account.settings.get("lang"):
            record["langs"] = [str(account.settings["lang"])]
        await self.hold_back(account, reply=True)
        try:
            created = await self._xrpc(account, "POST", "com.atproto.repo.createRecord", sending=True,
                                       json={"repo": did, "collection": POST, "rkey": rkey, "record": record})
        except PublishError as exc:
            if exc.kind in (ErrorKind.AUTH_EXPIRED, ErrorKind.RATE_LIMITED):
                raise
            existing = await self._existing(account, did, rkey)  # an earlier attempt of this reply made it
            if existing is not None:
                return existing
            raise
        uri = str(created.get("uri") or f"at://{did}/{POST}/{rkey}")
        return Published(remote_id=uri, url=self._url(account, uri))

    async def _reply_refs(self, account: AccountView, target: ReplyTarget) -> tuple[dict[str, str], dict[str, str]]:
        """(parent, root) strong refs of a reply to the comment: the comment itself, and its thread's root."""
        body = await self._xrpc(account, "GET", "app.bsky.feed.getPosts",
                                params={"uris": [target.comment_id, target.post_id]})
        views = {v.get("uri"): v for v in body.get("posts") or [] if isinstance(v, dict)}
        comment = views.get(target.comment_id)
        if not comment or not comment.get("cid"):
            raise PublishError(ErrorKind.REJECTED, "Bluesky no longer shows that comment (deleted, or its author "
                               "blocked this account), so there's nothing to answer")
        parent = {"uri": target.comment_id, "cid": str(comment["cid"])}
        record = comment.get("record") or {}
        root = (record.get("reply") or {}).get("root")
        if not record.get("reply") and str((record.get("embed") or {}).get("$type", "")).startswith(
                "app.bsky.embed.record"):
            root = parent  # a quote of the post (spread alerts' Reply): a post of its own, the root of its thread
        if not (isinstance(root, dict) and root.get("uri") and root.get("cid")):
            post = views.get(target.post_id)
            root = {"uri": target.post_id, "cid": str(post["cid"])} if post and post.get("cid") else parent
        return parent, {"uri": str(root["uri"]), "cid": str(root["cid"])}

    async def _existing(self, account: AccountView, did: str, rkey: str) -> Published | None:
        try:
            found = await self._xrpc(account, "GET", "com.atproto.repo.getRecord",
                                     params={"repo": did, "collection": POST, "rkey": rkey})
        except PublishError:
            return None
        uri = str(found.get("uri") or f"at://{did}/{POST}/{rkey}")
        return Published(remote_id=uri, url=self._url(account, uri))

    async def look_for_post(self, account: AccountView, post: Outgoing, since: datetime) -> Found:
        """`getRecord` by the record key Herald chose for the delivery: the record, or surely none
        (RecordNotFound; a retry uses the same key, so even a create still on its way can't make a second
        post), or can't tell when the PDS doesn't answer plainly."""
        did = self._did(account)
        rkey = tid_for(post.idempotency_key)
        try:
            found = await self._xrpc(account, "GET", "com.atproto.repo.getRecord",
                                     params={"repo": did, "collection": POST, "rkey": rkey})
        except PublishError as exc:
            return None if exc.kind == ErrorKind.REJECTED and "(RecordNotFound)" in exc.reason else CANT_TELL
        if not isinstance(found, dict) or not isinstance(found.get("value"), dict):
            return CANT_TELL
        uri = str(found.get("uri") or f"at://{did}/{POST}/{rkey}")
        return Published(remote_id=uri, url=self._url(account, uri))

    async def _upload_all(self, account: AccountView, post: Outgoing) -> list[dict[str, Any]]:
        done = self._resumed(post)
        images: list[dict[str, Any]] = []
        for i, media in enumerate(post.media):
            key = media_key(i, media.sha256)
            data, content_type, size = fit_image(media.data, media.content_type, media.filename)
            if key in done:
                blob = done[key]
            else:
                answer = await with_resume(self._xrpc(
                    account, "POST", "com.atproto.repo.uploadBlob", content=data,
                    headers={"Content-Type": content_type},
                ), self._resume(post, images))
                blob = answer.get("blob")
                if not isinstance(blob, dict):
                    raise PublishError(ErrorKind.TRANSIENT, f"Bluesky's upload answer for {media.filename} had "
                                       "no blob", resume=self._resume(post, images))
            image: dict[str, Any] = {"alt": "", "image": blob}
            if size:
                image["aspectRatio"] = {"width": size[0], "height": size[1]}
            images.append(image)
        return images

    def _resumed(self, post: Outgoing) -> dict[str, dict[str, Any]]:
        saved = resumed_uploads(post, "blobs", "blobs_uploaded_at", BLOB_TTL, self.clock.now())
        return {k: v for k, v in saved.items() if isinstance(v, dict)}

    def _resume(self, post: Outgoing, images: list[dict[str, Any]]) -> dict[str, Any]:
        return uploads_resume(post, [img["image"] for img in images], "blobs", "blobs_uploaded_at",
                              reused=bool(self._resumed(post)), stamp=iso_z(self.clock.now(), "milliseconds"))

    def remote_id_from_url(self, account: AccountView, url: str) -> str | None:
        """https://bsky.app/profile/<handle>/post/<rkey> of this account → its at:// record URI."""
        match = re.search(r"/profile/[^/]+/post/(?P<rkey>[\w.~:-]+)", url)
        did = account.settings.get("did")
        return f"at://{did}/app.bsky.feed.post/{match.group('rkey')}" if match and did else None

    def _url(self, account: AccountView, uri: str) -> str:
        handle = account.settings.get("handle") or account.settings.get("did")
        return f"https://bsky.app/profile/{handle}/post/{uri.rsplit('/', 1)[-1]}"

    # -- metrics and replies ---------------------------------------------------------------------

    async def fetch_metrics(self, account: AccountView, remote_ids: list[str]) -> dict[str, Metrics]:
        uris = list(dict.fromkeys(r for r in remote_ids if r))
        followers = await self._followers(account)
        readings: dict[str, Metrics] = {}
        for start in range(0, len(uris), URIS_PER_CALL):
            chunk = uris[start:start + URIS_PER_CALL]
            body = await self._xrpc(account, "GET", "app.bsky.feed.getPosts", params={"uris": chunk})
            for view in body.get("posts") or []:
                if view.get("uri") in chunk:
                    readings[view["uri"]] = Metrics(
                        likes=view.get("likeCount"), comments=view.get("replyCount"),
                        shares=view.get("repostCount"), quotes=view.get("quoteCount"), followers=followers)
        return readings

    async def _followers(self, account: AccountView) -> int | None:
        try:
            profile = await self._xrpc(account, "GET", "app.bsky.actor.getProfile",
                                       params={"actor": self._did(account)})
        except PublishError as exc:
            if exc.kind in (ErrorKind.AUTH_EXPIRED, ErrorKind.RATE_LIMITED):
                raise
            return None
        count = profile.get("followersCount")
        return int(count) if count is not None else None

    async def fetch_comments(
        self, account: AccountView, remote_ids: list[str], since: datetime | None
    ) -> list[Comment]:
        own = account.settings.get("did")
        comments: list[Comment] = []
        for uri in dict.fromkeys(r for r in remote_ids if r):
            try:
                body = await self._xrpc(account, "GET", "app.bsky.feed.getPostThread",
                                        params={"uri": uri, "depth": THREAD_DEPTH, "parentHeight": 0})
            except PublishError as exc:
                if exc.kind == ErrorKind.REJECTED:
                    continue  # NotFound: the post is gone
                raise
            pending = list((body.get("thread") or {}).get("replies") or [])
            while pending:
                node = pending.pop(0)
                pending.extend(node.get("replies") or [])
                view = node.get("post")
                if not isinstance(view, dict):
                    continue  # notFoundPost / blockedPost
                author = view.get("author") or {}
                record = view.get("record") or {}
                created = parse_iso(record.get("createdAt") or view.get("indexedAt"))
                if created is None or author.get("did") == own or (since is not None and created <= since):
                    continue
                handle = author.get("handle") or author.get("did")
                comments.append(Comment(
                    remote_id=str(view["uri"]), parent_remote_id=uri, author=f"@{handle}",
                    text=str(record.get("text") or ""), created_at=created,
                    url=f"https://bsky.app/profile/{handle}/post/{str(view['uri']).rsplit('/', 1)[-1]}",
                ))
        return comments

    # -- who shared -------------------------------------------------------------------------------

    async def fetch_shares(self, account: AccountView, remote_id: str) -> list[Share] | Unknown:
        own = account.settings.get("did")
        try:
            reposters = await self._pages(account, "app.bsky.feed.getRepostedBy", remote_id, "repostedBy")
            quotes = [(view, "") for view in await self._pages(account, "app.bsky.feed.getQuotes", remote_id, "posts")]
        except PublishError as exc:
            if exc.kind == ErrorKind.REJECTED:  # the post is gone
                return CANT_TELL
            raise
        ahead = [view for view, _via in quotes if view.get("quoteCount")]
        for view in ahead[:SECOND_DEGREE]:
            try:
                more = await self._pages(account, "app.bsky.feed.getQuotes", str(view.get("uri")), "posts")
            except PublishError as exc:
                if exc.kind != ErrorKind.REJECTED:
                    raise
                continue
            quotes += [(other, str(view.get("uri"))) for other in more]
        dids = list(dict.fromkeys([*(str(p.get("did")) for p in reposters),
                                   *(str((v.get("author") or {}).get("did")) for v, _via in quotes)]))
        followers = await self._follower_counts(account, [d for d in dids if d and d != own])
        shares = [Share(ShareKind.REPOST, who=str(p["did"]), handle=f"@{p.get('handle') or p['did']}",
                        followers=followers.get(str(p["did"])), at=parse_iso(p.get("indexedAt")),
                        url=f"https://bsky.app/profile/{p.get('handle') or p['did']}")
                  for p in reposters if p.get("did") and p.get("did") != own]
        for view, via in quotes:
            author = view.get("author") or {}
            if not author.get("did") or author.get("did") == own or not view.get("uri"):
                continue
            record, handle = view.get("record") or {}, author.get("handle") or author["did"]
            shares.append(Share(
                ShareKind.QUOTE, who=str(author["did"]), handle=f"@{handle}", followers=followers.get(author["did"]),
                at=parse_iso(record.get("createdAt") or view.get("indexedAt")), remote_id=str(view["uri"]),
                text=str(record.get("text") or ""),
                url=f"https://bsky.app/profile/{handle}/post/{str(view['uri']).rsplit('/', 1)[-1]}",
                engagement=sum(int(view.get(k) or 0) for k in ("likeCount", "replyCount", "repostCount", "quoteCount")),
                via=via))
        return shares

    async def _pages(self, account: AccountView, nsid: str, uri: str, field: str) -> list[dict[str, Any]]:
        """Up to SHARE_PAGES pages of a list that pages with `cursor`."""
        params: dict[str, Any] = {"uri": uri, "limit": SHARE_PAGE}
        found: list[dict[str, Any]] = []
        for _page in range(SHARE_PAGES):
            body = await self._xrpc(account, "GET", nsid, params=params)
            found += [item for item in body.get(field) or [] if isinstance(item, dict)]
            if not body.get("cursor"):
                break
            params["cursor"] = body["cursor"]
        return found

    async def _follower_counts(self, account: AccountView, dids: list[str]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for start in range(0, len(dids), ACTORS_PER_CALL):
            body = await self._xrpc(account, "GET", "app.bsky.actor.getProfiles",
                                    params={"actors": dids[start:start + ACTORS_PER_CALL]})
            for profile in body.get("profiles") or []:
                if profile.get("did") and profile.get("followersCount") is not None:
                    counts[str(profile["did"])] = int(profile["followersCount"])
        return counts

    # -- XRPC errors ---------------------------------------------------------------------------

    def classify(self, response: httpx.Response) -> PublishError | None:
        if response.status_code in (400, 401) and _xrpc_error(response) in AUTH_ERRORS:
            return PublishError(ErrorKind.AUTH_EXPIRED, f"Bluesky session: {self.error_reason(response)}")
        return None

    def error_reason(self, response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return super().error_reason(response)
        if isinstance(body, dict) and (body.get("message") or body.get("error")):
            message, code = body.get("message"), body.get("error")
            return (f"{message} ({code})" if message and code else str(message or code))[:300]
        return super().error_reason(response)


# -- helpers -------------------------------------------------------------------------------------------


def tid_for(key: str) -> str:
    """A valid TID (13 chars, base32-sortable) derived from `key`: the same delivery, the same rkey.

    64 bits: a zero top bit, 53 bits of microseconds (2023-01-01 plus up to ~2.2 years, so it never
    lies in the future) and 10 bits of "clock id", all taken from SHA-256 of the key.
    """
    digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    micros = TID_EPOCH_US + (digest >> 18) % TID_SPAN_US
    value = (micros << 10) | (digest & 0x3FF)
    chars = []
    for _ in range(13):
        chars.append(TID_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def make_facets(text: str) -> list[dict[str, Any]]:
    """Link and #hashtag facets with UTF-8 byte offsets (start inclusive, end exclusive)."""
    facets: list[dict[str, Any]] = []
    taken: list[tuple[int, int]] = []
    for match in URL_RE.finditer(text):
        url = match.group(0).rstrip(".,;:!?)]}'\"")
        start = match.start()
        end = start + len(url)
        taken.append((start, end))
        facets.append(_facet(text, start, end, {"$type": "app.bsky.richtext.facet#link", "uri": url}))
    for match in TAG_RE.finditer(text):
        tag = regex.sub(r"\p{P}+$", "", match.group(2))
        start = match.start(1)
        end = match.start(2) + len(tag)
        if not tag or len(tag) > 64 or any(s < end and start < e for s, e in taken):
            continue
        facets.append(_facet(text, start, end, {"$type": "app.bsky.richtext.facet#tag", "tag": tag}))
    facets.sort(key=lambda f: f["index"]["byteStart"])
    return facets


def _facet(text: str, start: int, end: int, feature: dict[str, Any]) -> dict[str, Any]:
    byte_start = len(text[:start].encode())
    byte_end = byte_start + len(text[start:end].encode())
    return {"index": {"byteStart": byte_start, "byteEnd": byte_end}, "features": [feature]}


def fit_image(data: bytes, content_type: str, filename: str) -> tuple[bytes, str, tuple[int, int] | None]:
    """The image as Bluesky takes it: EXIF stripped from JPEGs, ≤ 1,000,000 bytes; and its size."""
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError) as exc:
        if len(data) > MAX_BLOB:
            raise PublishError(ErrorKind.REJECTED, f"{filename} is over Bluesky's 1 MB image limit") from exc
        return data, content_type, None
    size = image.size
    if len(data) <= MAX_BLOB and not (content_type == "image/jpeg" and image.getexif()):
        return data, content_type, size
    rgb = image.convert("RGB")
    for scale, quality in ((1.0, 90), (1.0, 80), (0.75, 80), (0.5, 75), (0.35, 70), (0.25, 65)):
        frame = rgb if scale == 1.0 else rgb.resize((max(1, int(size[0] * scale)), max(1, int(size[1] * scale))))
        out = io.BytesIO()
        frame.save(out, format="JPEG", quality=quality, optimize=True)  # no exif= → metadata dropped
        if out.tell() <= MAX_BLOB:
            return out.getvalue(), "image/jpeg", frame.size
    raise PublishError(ErrorKind.REJECTED, f"{filename} can't be brought under Bluesky's 1 MB image limit")


def _jwt_expiry(token: str | None) -> datetime | None:
    """The `exp` of a JWT, read without verifying it (Herald only needs to know when to renew)."""
    if not token or token.count(".") < 2:
        return None
    payload = token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return datetime.fromtimestamp(int(claims["exp"]), UTC)
    except (ValueError, KeyError, TypeError):
        return None


def _xrpc_error(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("error") if isinstance(body, dict) else None
