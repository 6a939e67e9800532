"""A small fake Mastodon for what mastodon-mock doesn't do: async media processing (202 → 206 → 200),
dropped connections, recording the exact headers of each request (`seen`), forgetting an
Idempotency-Key an hour after it was first used (as Mastodon does; on the `clock` it is given, else
never), and an instance before quote posts (4.4: no /quotes route, 404) whose `reblogged_by` pages with the
`Link` header (mastodon-mock's doesn't page).

The Mastodon contract tests run against mastodon-mock (a full stateful Mastodon API); this fake only
covers those faults.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer


class FakeMastodon(LoopbackServer):
    KEY_MEMORY = timedelta(hours=1)

    def __init__(self, *, token: str = "masto-token", processing_polls: int = 1,
                 clock: Callable[[], datetime] | None = None) -> None:
        super().__init__()
        self.token = token
        self.processing_polls = processing_polls  # GETs answered 206 before a media is ready
        self.clock = clock  # the time an Idempotency-Key is kept by; None: keys are kept forever
        self.statuses: dict[str, dict[str, Any]] = {}
        self.by_key: dict[str, str] = {}
        self.key_used_at: dict[str, datetime] = {}
        self.media: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(110_000_000_000_000_001)
        self.route("GET", "/api/v1/accounts/verify_credentials", self.me)
        self.route("POST", "/api/v2/media", self.upload)
        self.route("GET", "/api/v1/media/{id}", self.media_status)
        self.route("POST", "/api/v1/statuses", self.create)
        self.route("GET", "/api/v1/statuses/{id}/context", self.context)
        self.route("GET", "/api/v1/statuses/{id}/reblogged_by", self.reblogged_by)
        self.boosters: dict[str, list[dict[str, Any]]] = {}  # status id → accounts, newest first

    def _ok(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.token}"

    async def me(self, request: web.Request) -> web.Response:
        if not self._ok(request):
            return web.json_response({"error": "The access token is invalid"}, status=401)
        return web.json_response({"id": "1", "username": "brand", "acct": "brand", "followers_count": 10,
                                  "url": f"{self.url}/@brand"})

    async def upload(self, request: web.Request) -> web.Response:
        if not self._ok(request):
            return web.json_response({"error": "The access token is invalid"}, status=401)
        form = self.seen[-1].form
        media_id = str(next(self._ids))
        self.media[media_id] = {"file": form["file"], "polls": 0}
        return web.json_response({"id": media_id, "type": "image", "url": None, "preview_url": None}, status=202)

    async def media_status(self, request: web.Request) -> web.Response:
        media = self.media.get(request.match_info["id"])
        if media is None:
            return web.json_response({"error": "Record not found"}, status=404)
        media["polls"] += 1
        if media["polls"] <= self.processing_polls:
            return web.json_response({"id": request.match_info["id"], "url": None}, status=206)
        return web.json_response({"id": request.match_info["id"], "url": f"{self.url}/m/{request.match_info['id']}"})

    async def create(self, request: web.Request) -> web.Response:
        if not self._ok(request):
            return web.json_response({"error": "The access token is invalid"}, status=401)
        key = request.headers.get("Idempotency-Key")
        if key and key in self.by_key and self.clock is not None \
                and self.clock() - self.key_used_at[key] > self.KEY_MEMORY:
            del self.by_key[key]  # forgotten: a resend now makes a second status
        if key and key in self.by_key:
            return web.json_response(self.statuses[self.by_key[key]])
        body = await request.json()
        for media_id in body.get("media_ids") or []:
            if self.media.get(media_id, {}).get("polls", 0) <= self.processing_polls:
                return web.json_response({"error": "Cannot attach files that have not finished processing. "
                                          "Try again in a moment!"}, status=422)
        answering = body.get("in_reply_to_id")
        if answering is not None and str(answering) not in self.statuses:
            return web.json_response({"error": "Record not found"}, status=404)
        status_id = str(next(self._ids))
        self.statuses[status_id] = {"id": status_id, "url": f"{self.url}/@brand/{status_id}",
                                    "content": body.get("status"), "media_ids": body.get("media_ids") or []}
        if answering is not None:
            self.statuses[status_id]["in_reply_to_id"] = str(answering)
        if key:
            self.by_key[key] = status_id
            if self.clock is not None:
                self.key_used_at[key] = self.clock()
        return web.json_response(self.statuses[status_id])

    async def context(self, request: web.Request) -> web.Response:
        """`GET /api/v1/statuses/:id/context`: the replies under a status, nested ones included (descendants)."""
        if not self._ok(request):
            return web.json_response({"error": "The access token is invalid"}, status=401)
        root = request.match_info["id"]
        if root not in self.statuses:
            return web.json_response({"error": "Record not found"}, status=404)
        found, parents = [], {root}
        for status in self.statuses.values():  # in creation order: a reply comes after what it answers
            if status.get("in_reply_to_id") in parents:
                parents.add(status["id"])
                found.append({"id": status["id"], "in_reply_to_id": status["in_reply_to_id"],
                              "created_at": status.get("created_at", "2026-11-23T09:00:00.000Z"),
                              "account": status.get("account", {"id": "1", "acct": "brand"}),
                              "content": f"<p>{status['content']}</p>", "url": status["url"]})
        return web.json_response({"ancestors": [], "descendants": found})

    async def reblogged_by(self, request: web.Request) -> web.Response:
        """Accounts that boosted a status, `limit` (40 by default, 80 at most) per page, older pages by `max_id`
        in the `Link` header as Mastodon pages them."""
        if not self._ok(request):
            return web.json_response({"error": "The access token is invalid"}, status=401)
        status_id = request.match_info["id"]
        if status_id not in self.statuses:
            return web.json_response({"error": "Record not found"}, status=404)
        limit = min(int(request.query.get("limit", "40")), 80)
        accounts = self.boosters.get(status_id, [])
        max_id = request.query.get("max_id")
        if max_id:
            accounts = [a for a in accounts if int(a["_boost"]) < int(max_id)]
        page = accounts[:limit]
        headers = {}
        if len(accounts) > limit:
            headers["Link"] = (f'<{self.url}/api/v1/statuses/{status_id}/reblogged_by?limit={limit}&max_id='
                               f'{page[-1]["_boost"]}>; rel="next"')
        return web.json_response([{k: v for k, v in a.items() if k != "_boost"} for a in page], headers=headers)

    def boost(self, status_id: str, acct: str, followers: int) -> None:
        """Someone boosts a status."""
        boost_id = str(next(self._ids))
        self.boosters.setdefault(status_id, []).insert(0, {
            "id": str(next(self._ids)), "username": acct.split("@")[0], "acct": acct, "followers_count": followers,
            "url": f"https://{acct.split('@')[-1]}/@{acct.split('@')[0]}", "_boost": boost_id})

    def comment(self, status_id: str, text: str, *, acct: str = "fan@other.social", account_id: str = "77",
                created_at: str = "2026-11-23T09:30:00.000Z") -> str:
        """Someone else's reply to a status (what Herald's inbox reads and /reply answers)."""
        comment_id = str(next(self._ids))
        self.statuses[comment_id] = {"id": comment_id, "url": f"https://other.social/@{acct.split('@')[0]}/{comment_id}",
                                     "content": text, "media_ids": [], "in_reply_to_id": status_id,
                                     "account": {"id": account_id, "acct": acct}, "created_at": created_at}
        return comment_id
