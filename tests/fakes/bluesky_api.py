"""A fake Bluesky PDS on 127.0.0.1 speaking XRPC: sessions (JWTs with a real `exp`), createRecord with
rkeys, getRecord, uploadBlob, getPosts, getPostThread, getProfile. Other people's replies (`reply()`) carry
`reply.root` / `reply.parent` strong refs and getPosts shows them; a created record with `reply` refs must
point at posts it knows, with their own cids.

Like today's PDS, creating a record whose rkey already exists fails with a 500 InternalServerError
(bluesky-social/atproto#3718, indigo#873); `duplicate_error` switches to the explicit 400 error that
bluesky-social/atproto#4728 introduces.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer

TID_RE = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
DID = "did:plc:brand123456789abcdefghij"


def jwt(claims: dict[str, Any]) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'typ': 'at+jwt', 'alg': 'ES256K'})}.{part(claims)}.c2lnbmF0dXJl"


class FakeBluesky(LoopbackServer):
    def __init__(self, now: Callable[[], datetime], *, handle: str = "brand.bsky.social",
                 password: str = "abcd-efgh-ijkl-mnop") -> None:
        super().__init__()
        self.now = now
        self.handle = handle
        self.password = password
        self.access: set[str] = set()
        self.refresh: set[str] = set()
        self.records: dict[str, dict[str, Any]] = {}  # uri → record
        self.counts: dict[str, dict[str, int]] = {}
        self.replies: dict[str, list[dict[str, Any]]] = {}  # parent uri → thread nodes
        self.others: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}  # other people's posts: uri → (author, record)
        self.blobs: dict[str, bytes] = {}
        self.duplicate_error: str | None = None  # None: 500 like today; else the explicit 400 error name
        self.followers = 321
        self.people: dict[str, dict[str, Any]] = {}  # did → profile (followersCount) of other people
        self.reposters: dict[str, list[str]] = {}  # uri → dids, newest first
        self.quoted: dict[str, list[str]] = {}  # uri → uris of the posts quoting it, newest first
        self.share_page = 100  # the most items a page of getRepostedBy / getQuotes holds (tests lower it)
        self.batch_sizes: list[int] = []  # uris per getPosts call (Seen.query keeps one value per key)
        self._n = itertools.count(1)
        for path, handler in (
            ("/xrpc/com.atproto.server.createSession", self.create_session),
            ("/xrpc/com.atproto.server.refreshSession", self.refresh_session),
            ("/xrpc/com.atproto.repo.createRecord", self.create_record),
            ("/xrpc/com.atproto.repo.uploadBlob", self.upload_blob),
        ):
            self.route("POST", path, handler)
        for path, handler in (
            ("/xrpc/com.atproto.server.getSession", self.get_session),
            ("/xrpc/com.atproto.repo.getRecord", self.get_record),
            ("/xrpc/app.bsky.feed.getPosts", self.get_posts),
            ("/xrpc/app.bsky.feed.getPostThread", self.get_thread),
            ("/xrpc/app.bsky.actor.getProfile", self.get_profile),
            ("/xrpc/app.bsky.actor.getProfiles", self.get_profiles),
            ("/xrpc/app.bsky.feed.getRepostedBy", self.get_reposted_by),
            ("/xrpc/app.bsky.feed.getQuotes", self.get_quotes),
        ):
            self.route("GET", path, handler)

    # -- sessions ---------------------------------------------------------------------------------

    def _session(self) -> dict[str, Any]:
        n = next(self._n)
        now = int(self.now().timestamp())
        access = jwt({"scope": "com.atproto.appPass", "sub": DID, "iat": now, "exp": now + 7200, "n": n})
        refresh = jwt({"scope": "com.atproto.refresh", "sub": DID, "iat": now, "exp": now + 90 * 86400, "n": n})
        self.access.add(access)
        self.refresh.add(refresh)
        return {"did": DID, "handle": self.handle, "email": "team@brand.example", "accessJwt": access,
                "refreshJwt": refresh, "active": True, "didDoc": {"id": DID}}

    async def create_session(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("identifier") not in (self.handle, DID) or body.get("password") != self.password:
            return web.json_response({"error": "AuthenticationRequired", "message": "Invalid identifier or password"},
                                     status=401)
        return web.json_response(self._session())

    async def refresh_session(self, request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "")[7:]
        if token not in self.refresh:
            return web.json_response({"error": "ExpiredToken", "message": "Token has expired"}, status=400)
        self.refresh.discard(token)
        return web.json_response(self._session())

    async def get_session(self, request: web.Request) -> web.Response:
        denied = self._denied(request)
        if denied:
            return denied
        return web.json_response({"did": DID, "handle": self.handle, "active": True})

    def _denied(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return web.json_response({"error": "AuthMissing", "message": "Authentication Required"}, status=401)
        if header[7:] not in self.access:
            return web.json_response({"error": "ExpiredToken", "message": "Token has expired"}, status=400)
        return None

    def expire_sessions(self) -> None:
        self.access.clear()

    # -- repo -------------------------------------------------------------------------------------

    async def create_record(self, request: web.Request) -> web.Response:
        denied = self._denied(request)
        if denied:
            return denied
        body = await request.json()
        rkey = body.get("rkey") or f"3l{next(self._n):011d}"
        if body.get("repo") != DID or body.get("collection") != "app.bsky.feed.post" or not TID_RE.match(rkey):
            return web.json_response({"error": "InvalidRequest", "message": "Invalid repo, collection or rkey"},
                                     status=400)
        record = body.get("record") or {}
        if len(record.get("text", "")) > 300:
            return web.json_response({"error": "InvalidRequest",
                                      "message": "Invalid app.bsky.feed.post record: Record/text must not be longer "
                                                 "than 300 graphemes"}, status=400)
        bad_ref = self._bad_reply_refs(record.get("reply"))
        if bad_ref:
            return web.json_response({"error": "InvalidRequest", "message": f"Invalid app.bsky.feed.post record: "
                                      f"{bad_ref}"}, status=400)
        uri = f"at://{DID}/app.bsky.feed.post/{rkey}"
        if uri in self.records:
            if self.duplicate_error:
                return web.json_response({"error": self.duplicate_error, "message": f"Record already exists: {uri}"},
                                         status=400)
            return web.json_response({"error": "InternalServerError", "message": "Internal Server Error"}, status=500)
        self.records[uri] = record
        self.counts[uri] = {"likeCount": 0, "repostCount": 0, "replyCount": 0, "quoteCount": 0}
        return web.json_response({"uri": uri, "cid": _cid(uri), "commit": {"cid": _cid("c" + uri), "rev": rkey},
                                  "validationStatus": "valid"})

    async def get_record(self, request: web.Request) -> web.Response:
        q = request.query
        uri = f"at://{q.get('repo')}/{q.get('collection')}/{q.get('rkey')}"
        if uri not in self.records:
            return web.json_response({"error": "RecordNotFound", "message": f"Could not locate record: {uri}"},
                                     status=400)
        return web.json_response({"uri": uri, "cid": _cid(uri), "value": self.records[uri]})

    async def upload_blob(self, request: web.Request) -> web.Response:
        denied = self._denied(request)
        if denied:
            return denied
        data = self.seen[-1].body
        link = _cid(data.hex())
        self.blobs[link] = data
        return web.json_response({"blob": {"$type": "blob", "ref": {"$link": link},
                                           "mimeType": request.content_type, "size": len(data)}})

    # -- app.bsky ---------------------------------------------------------------------------------

    def _view(self, uri: str, author: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
        return {"uri": uri, "cid": _cid(uri), "author": author, "record": record,
                "indexedAt": record.get("createdAt"), **self.counts.get(uri, {})}

    async def get_posts(self, request: web.Request) -> web.Response:
        denied = self._denied(request)
        if denied:
            return denied
        uris = request.query.getall("uris", [])
        self.batch_sizes.append(len(uris))
        if len(uris) > 25:
            return web.json_response({"error": "InvalidRequest", "message": "uris must not have more than 25 "
                                      "elements"}, status=400)
        me = {"did": DID, "handle": self.handle}
        views = [self._view(u, me, self.records[u]) if u in self.records else self._view(u, *self.others[u])
                 for u in uris if u in self.records or u in self.others]
        return web.json_response({"posts": views})

    def _bad_reply_refs(self, reply: Any) -> str | None:
        """A reply's root and parent must be strong refs (uri + cid) to posts that exist, as the lexicon says."""
        if reply is None:
            return None
        for name in ("root", "parent"):
            ref = reply.get(name) if isinstance(reply, dict) else None
            if not isinstance(ref, dict) or not str(ref.get("uri", "")).startswith("at://") or not ref.get("cid"):
                return f"Record/reply/{name} must be a strong ref (uri and cid)"
            if ref["uri"] not in self.records and ref["uri"] not in self.others or ref["cid"] != _cid(ref["uri"]):
                return f"Record/reply/{name} points at {ref['uri']} with a cid that isn't its own"
        return None

    async def get_thread(self, request: web.Request) -> web.Response:
        denied = self._denied(request)
        if denied:
            return denied
        uri = request.query.get("uri", "")
        if uri not in self.records:
            return web.json_response({"error": "NotFound", "message": f"Post not found: {uri}"}, status=400)
        me = {"did": DID, "handle": self.handle}
        return web.json_response({"thread": {"$type": "app.bsky.feed.defs#threadViewPost",
                                             "post": self._view(uri, me, self.records[uri]),
                                             "replies": self._nodes(uri)}})

    def _nodes(self, uri: str) -> list[dict[str, Any]]:
        out = []
        for reply in self.replies.get(uri, []):
            if reply.get("blocked"):
                out.append({"$type": "app.bsky.feed.defs#blockedPost", "uri": reply["uri"], "blocked": True})
                continue
            out.append({"$type": "app.bsky.feed.defs#threadViewPost",
                        "post": self._view(reply["uri"], reply["author"], reply["record"]),
                        "replies": self._nodes(reply["uri"])})
        return out

    async def get_profile(self, request: web.Request) -> web.Response:
        denied = self._denied(request)
        if denied:
            return denied
        return web.json_response({"did": DID, "handle": self.handle, "followersCount": self.followers,
                                  "followsCount": 4, "postsCount": len(self.records)})

    def _paged(self, request: web.Request, items: list[Any]) -> tuple[list[Any], str | None] | web.Response:
        """A page as the AppView gives it: limit 1–100 (50 by default), `cursor` for the next page."""
        try:
            limit = int(request.query.get("limit", "50"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            return web.json_response({"error": "InvalidRequest", "message": "limit must be between 1 and 100"},
                                     status=400)
        size = min(limit, self.share_page)
        start = int(request.query.get("cursor", "0") or 0)
        return items[start:start + size], (str(start + size) if start + size < len(items) else None)

    def _basic(self, did: str) -> dict[str, Any]:
        person = self.people[did]
        return {"did": did, "handle": person["handle"], "displayName": person["handle"].split(".")[0].title()}

    async def get_reposted_by(self, request: web.Request) -> web.Response:
        denied = self._denied(request)
        if denied:
            return denied
        uri = request.query.get("uri", "")
        paged = self._paged(request, self.reposters.get(uri, []))
        if isinstance(paged, web.Response):
            return paged
        page, cursor = paged
        body: dict[str, Any] = {"uri": uri, "repostedBy": [self._basic(did) for did in page]}
        if cursor:
            body["cursor"] = cursor
        return web.json_response(body)

    async def get_quotes(self, request: web.Request) -> web.Response:
        denied = self._denied(request)
        if denied:
            return denied
        uri = request.query.get("uri", "")
        paged = self._paged(request, self.quoted.get(uri, []))
        if isinstance(paged, web.Response):
            return paged
        page, cursor = paged
        views = []
        for quote in page:
            author, record = self.others[quote]
            views.append(self._view(quote, self._basic(author["did"]), record))
        body: dict[str, Any] = {"uri": uri, "posts": views}
        if cursor:
            body["cursor"] = cursor
        return web.json_response(body)

    async def get_profiles(self, request: web.Request) -> web.Response:
        denied = self._denied(request)
        if denied:
            return denied
        actors = request.query.getall("actors", [])
        if len(actors) > 25:
            return web.json_response({"error": "InvalidRequest", "message": "actors must not have more than 25 "
                                      "elements"}, status=400)
        return web.json_response({"profiles": [{**self._basic(did), "followersCount": self.people[did]["followers"],
                                                "followsCount": 3, "postsCount": 10}
                                               for did in actors if did in self.people]})

    # -- test helpers -----------------------------------------------------------------------------

    def person(self, handle: str, followers: int) -> str:
        """Someone else on Bluesky, with their follower count; their DID."""
        did = f"did:plc:{handle.split('.')[0]}{next(self._n)}"
        self.people[did] = {"handle": handle, "followers": followers}
        return did

    def repost(self, uri: str, did: str) -> None:
        self.reposters.setdefault(uri, []).insert(0, did)
        self.counts.setdefault(uri, {}).setdefault("repostCount", 0)
        self.counts[uri]["repostCount"] += 1

    def quote(self, uri: str, did: str, text: str, *, likes: int = 0,
              created_at: str = "2026-11-23T10:00:00.000Z") -> str:
        """Someone quotes a post (or a quote): a post of theirs with an app.bsky.embed.record of it."""
        quote = f"at://{did}/app.bsky.feed.post/3l{next(self._n):011d}"
        record = {"$type": "app.bsky.feed.post", "text": text, "createdAt": created_at,
                  "embed": {"$type": "app.bsky.embed.record", "record": {"uri": uri, "cid": _cid(uri)}}}
        self.others[quote] = ({"did": did, "handle": self.people[did]["handle"]}, record)
        self.counts[quote] = {"likeCount": likes, "repostCount": 0, "replyCount": 0, "quoteCount": 0}
        self.quoted.setdefault(uri, []).insert(0, quote)
        self.counts.setdefault(uri, {}).setdefault("quoteCount", 0)
        self.counts[uri]["quoteCount"] += 1
        return quote

    def reply(self, parent: str, text: str, *, handle: str = "fan.bsky.social", did: str = "did:plc:fan",
              created_at: str = "2026-11-23T09:30:00.000Z", blocked: bool = False) -> str:
        uri = f"at://{did}/app.bsky.feed.post/3l{next(self._n):011d}"
        above = self.others.get(parent)
        root = ((above[1].get("reply") or {}).get("root") if above else None) or {"uri": parent, "cid": _cid(parent)}
        record = {"$type": "app.bsky.feed.post", "text": text, "createdAt": created_at,
                  "reply": {"root": root, "parent": {"uri": parent, "cid": _cid(parent)}}}
        author = {"did": did, "handle": handle}
        self.replies.setdefault(parent, []).append({"uri": uri, "author": author, "blocked": blocked, "record": record})
        self.others[uri] = (author, record)
        return uri


def _cid(seed: str) -> str:
    return "bafyrei" + hashlib.sha256(seed.encode()).hexdigest()[:52]
