"""A fake X API v2 on 127.0.0.1: users/me, media upload, tweets, lookup, a user's posts, recent search, who
reposted and quoted a post (retweeted_by, quote_tweets: paged with meta.next_token / pagination_token), OAuth 2.0
refresh.

Answers with the documented JSON shapes, checks `Authorization: Bearer <token>` (401 otherwise) and
keeps state: posts (refusing duplicate text with X's 403), uploaded media, replies and tokens. A user's posts
(`GET /2/users/:id/tweets`) come newest first with their text as X gives it: links as t.co links, one more t.co
link for attached media, `&`, `<` and `>` escaped. A post with
`reply.in_reply_to_tweet_id` (Herald answering a comment) must name a post or reply it knows (403 otherwise).
"""

from __future__ import annotations

import base64
import html
import itertools
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer

UNAUTHORIZED = {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}


class FakeX(LoopbackServer):
    def __init__(self, *, token: str = "tok-1", refresh_token: str = "rt-1", client_id: str = "cid",
                 client_secret: str | None = None) -> None:
        super().__init__()
        self.tokens = {token}
        self.refresh_tokens = {refresh_token}
        self.client_id = client_id
        self.client_secret = client_secret
        self.user = {"id": "2244994945", "name": "Brand", "username": "brand",
                     "public_metrics": {"followers_count": 1234, "following_count": 5}}
        self.tweets: dict[str, dict[str, Any]] = {}
        self.media: dict[str, dict[str, Any]] = {}
        self.replies: list[dict[str, Any]] = []
        self.users: dict[str, dict[str, Any]] = {}  # other people (who repost and quote)
        self.reposters: dict[str, list[str]] = {}  # tweet id → user ids, newest first
        self.share_page = 100  # the most items a page of retweeted_by / quote_tweets holds (tests lower it)
        self.private_refused = False  # answer 403 when non_public_metrics are asked for
        self._ids = itertools.count(1_790_000_000_000_000_001)
        self._token_n = itertools.count(2)
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)  # stamps created_at; a test may set its clock
        self.route("GET", "/2/users/me", self.users_me)
        self.route("POST", "/2/media/upload", self.upload)
        self.route("POST", "/2/tweets", self.create)
        self.route("GET", "/2/tweets", self.lookup)
        self.route("GET", "/2/tweets/search/recent", self.search)
        self.route("GET", "/2/users/{id}/tweets", self.timeline)
        self.route("POST", "/2/oauth2/token", self.token)
        self.route("GET", "/2/tweets/{id}/retweeted_by", self.retweeted_by)
        self.route("GET", "/2/tweets/{id}/quote_tweets", self.quote_tweets)

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        return header.startswith("Bearer ") and header[7:] in self.tokens

    async def users_me(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response(UNAUTHORIZED, status=401)
        return web.json_response({"data": self.user})

    async def upload(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response(UNAUTHORIZED, status=401)
        form = self.seen[-1].form
        if "media" not in form or form.get("media_category") not in ("tweet_image", "tweet_gif"):
            return web.json_response({"errors": [{"message": "media and media_category are required"}]}, status=400)
        media_id = str(next(self._ids))
        self.media[media_id] = form["media"]
        return web.json_response({"data": {"id": media_id, "media_key": f"3_{media_id}", "size": len(
            form["media"]["data"]), "expires_after_secs": 86400, "image": {"image_type": form["media_type"]}}})

    async def create(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response(UNAUTHORIZED, status=401)
        body = await request.json()
        text = body.get("text", "")
        if any(t["text"] == text for t in self.tweets.values()):
            return web.json_response({"detail": "You are not allowed to create a Tweet with duplicate content.",
                                      "type": "about:blank", "title": "Forbidden", "status": 403}, status=403)
        answering = str((body.get("reply") or {}).get("in_reply_to_tweet_id") or "")
        if answering and answering not in self.tweets and all(r["id"] != answering for r in self.replies):
            return web.json_response({"detail": "You attempted to reply to a Tweet that is deleted or not visible to "
                                      "you.", "type": "about:blank", "title": "Forbidden", "status": 403}, status=403)
        media_ids = (body.get("media") or {}).get("media_ids") or []
        unknown = [m for m in media_ids if m not in self.media]
        if unknown:
            return web.json_response({"errors": [{"message": f"media ids {unknown} not found"}],
                                      "title": "Invalid Request", "detail": "One or more parameters to your "
                                      "request was invalid."}, status=400)
        tweet_id = str(next(self._ids))
        self.tweets[tweet_id] = {"id": tweet_id, "text": text, "media_ids": media_ids,
                                 "created_at": self.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                                 "public_metrics": {
            "retweet_count": 0, "reply_count": 0, "like_count": 0, "quote_count": 0, "bookmark_count": 0,
            "impression_count": 0}, "non_public_metrics": {"impression_count": 0, "url_link_clicks": 0,
                                                          "user_profile_clicks": 0}}
        if answering:
            self.tweets[tweet_id]["in_reply_to_tweet_id"] = answering
        return web.json_response({"data": {"id": tweet_id, "text": text}}, status=201)

    async def lookup(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response(UNAUTHORIZED, status=401)
        ids = request.query.get("ids", "").split(",")
        if len(ids) > 100:
            return web.json_response({"errors": [{"message": "ids: at most 100"}]}, status=400)
        fields = request.query.get("tweet.fields", "").split(",")
        if "non_public_metrics" in fields and self.private_refused:
            return web.json_response({"title": "Forbidden", "detail": "Sorry, you are not authorized to see the "
                                      "field non_public_metrics.", "status": 403}, status=403)
        data, errors = [], []
        for tweet_id in ids:
            tweet = self.tweets.get(tweet_id)
            if tweet is None:
                errors.append({"value": tweet_id, "detail": f"Could not find tweet with ids: [{tweet_id}].",
                               "title": "Not Found Error", "resource_type": "tweet", "parameter": "ids",
                               "resource_id": tweet_id,
                               "type": "https://api.twitter.com/2/problems/resource-not-found"})
                continue
            item = {"id": tweet_id, "text": tweet["text"], "edit_history_tweet_ids": [tweet_id]}
            for field in ("public_metrics", "non_public_metrics"):
                if field in fields:
                    item[field] = tweet[field]
            data.append(item)
        body: dict[str, Any] = {}
        if data:
            body["data"] = data
        if errors:
            body["errors"] = errors
        return web.json_response(body)

    async def timeline(self, request: web.Request) -> web.Response:
        """The user's own posts, newest first, from `start_time` on; `max_results` 5–100, `pagination_token`."""
        if not self._authorized(request):
            return web.json_response(UNAUTHORIZED, status=401)
        if request.match_info["id"] != self.user["id"]:
            return web.json_response({"errors": [{"detail": f"Could not find user with id: "
                                                  f"[{request.match_info['id']}].", "title": "Not Found Error",
                                                  "type": "https://api.twitter.com/2/problems/resource-not-found"}]})
        try:
            size = int(request.query.get("max_results", "10"))
            offset = int(request.query.get("pagination_token", "0") or 0)
        except ValueError:
            return web.json_response({"errors": [{"message": "max_results and pagination_token are numbers"}],
                                      "title": "Invalid Request"}, status=400)
        if not 5 <= size <= 100:
            return web.json_response({"errors": [{"message": f"The `max_results` query parameter value [{size}] "
                                                  "is not between 5 and 100"}], "title": "Invalid Request"}, status=400)
        start = request.query.get("start_time", "")
        excluded = request.query.get("exclude", "").split(",")
        posts = [t for t in reversed(self.tweets.values()) if t["created_at"] >= start.replace("Z", ".000Z")
                 and not ("replies" in excluded and t.get("in_reply_to_tweet_id"))]
        page = posts[offset:offset + size]
        body: dict[str, Any] = {"meta": {"result_count": len(page)}}
        if page:
            body["data"] = [{"id": t["id"], "text": as_x_shows(t), "created_at": t["created_at"],
                             "edit_history_tweet_ids": [t["id"]]} for t in page]
            body["meta"].update(newest_id=page[0]["id"], oldest_id=page[-1]["id"])
        if offset + size < len(posts):
            body["meta"]["next_token"] = str(offset + size)
        return web.json_response(body)

    async def search(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response(UNAUTHORIZED, status=401)
        query = request.query.get("query", "")
        wanted = {part.split(":", 1)[1] for part in query.split(" OR ") if part.startswith("conversation_id:")}
        start = request.query.get("start_time")
        hits = [r for r in self.replies if r["conversation_id"] in wanted and (not start or r["created_at"] > start)]
        offset = int(request.query.get("next_token", "0") or 0)
        page = hits[offset:offset + 2]  # small pages to exercise next_token
        users = {r["author_id"]: {"id": r["author_id"], "username": r["username"], "name": r["username"]}
                 for r in page}
        body: dict[str, Any] = {"meta": {"result_count": len(page)}}
        if page:
            body["data"] = [{k: v for k, v in r.items() if k != "username"} for r in page]
            body["includes"] = {"users": list(users.values())}
        if offset + 2 < len(hits):
            body["meta"]["next_token"] = str(offset + 2)
        return web.json_response(body)

    def _page(self, request: web.Request, items: list[Any]) -> tuple[list[Any], dict[str, Any]] | web.Response:
        """One page of a list as X pages it: max_results 10–100 (10 by default), pagination_token from next_token."""
        try:
            size = int(request.query.get("max_results", "10"))
        except ValueError:
            size = 0
        if not 10 <= size <= 100:
            return web.json_response({"errors": [{"message": "The `max_results` query parameter value "
                                      f"[{request.query.get('max_results')}] is not between 10 and 100"}],
                                      "title": "Invalid Request", "detail": "One or more parameters to your "
                                      "request was invalid."}, status=400)
        size = min(size, self.share_page)
        start = int(request.query.get("pagination_token", "0") or 0)
        page = items[start:start + size]
        meta: dict[str, Any] = {"result_count": len(page)}
        if start + size < len(items):
            meta["next_token"] = str(start + size)
        return page, meta

    def _user(self, request: web.Request, user_id: str) -> dict[str, Any]:
        fields = request.query.get("user.fields", "").split(",")
        user = self.users[user_id]
        return {k: v for k, v in user.items() if k != "public_metrics" or "public_metrics" in fields}

    async def retweeted_by(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response(UNAUTHORIZED, status=401)
        tweet_id = request.match_info["id"]
        if tweet_id not in self.tweets:
            return web.json_response({"errors": [{"detail": f"Could not find tweet with id: [{tweet_id}].",
                                                  "title": "Not Found Error", "type": "https://api.twitter.com/2/"
                                                  "problems/resource-not-found"}]})
        paged = self._page(request, self.reposters.get(tweet_id, []))
        if isinstance(paged, web.Response):
            return paged
        page, meta = paged
        body: dict[str, Any] = {"meta": meta}
        if page:
            body["data"] = [self._user(request, user_id) for user_id in page]
        return web.json_response(body)

    async def quote_tweets(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response(UNAUTHORIZED, status=401)
        tweet_id = request.match_info["id"]
        quotes = [t for t in reversed(self.tweets.values()) if t.get("quoted") == tweet_id]  # newest first
        paged = self._page(request, quotes)
        if isinstance(paged, web.Response):
            return paged
        page, meta = paged
        fields = request.query.get("tweet.fields", "").split(",")
        body: dict[str, Any] = {"meta": meta}
        if page:
            body["data"] = [{"id": t["id"], "text": t["text"], "edit_history_tweet_ids": [t["id"]],
                             **{f: t[f] for f in ("author_id", "created_at", "public_metrics") if f in fields}}
                            for t in page]
            if "author_id" in request.query.get("expansions", "").split(","):
                authors = dict.fromkeys(t["author_id"] for t in page)
                body["includes"] = {"users": [self._user(request, a) for a in authors]}
        return web.json_response(body)

    async def token(self, request: web.Request) -> web.Response:
        form = self.seen[-1].form
        if self.client_secret is not None:
            expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
            if request.headers.get("Authorization") != f"Basic {expected}":
                return web.json_response({"error": "unauthorized_client",
                                          "error_description": "Missing valid authorization header"}, status=401)
        if form.get("grant_type") != "refresh_token" or form.get("client_id") != self.client_id:
            return web.json_response({"error": "invalid_request",
                                      "error_description": "Value passed for the client id was invalid."}, status=400)
        if form.get("refresh_token") not in self.refresh_tokens:
            return web.json_response({"error": "invalid_request",
                                      "error_description": "Value passed for the token was invalid."}, status=400)
        self.refresh_tokens.discard(form["refresh_token"])  # refresh tokens rotate
        n = next(self._token_n)
        self.tokens.add(f"tok-{n}")
        self.refresh_tokens.add(f"rt-{n}")
        return web.json_response({"token_type": "bearer", "expires_in": 7200, "access_token": f"tok-{n}",
                                  "scope": "tweet.read tweet.write users.read offline.access",
                                  "refresh_token": f"rt-{n}"})

    # -- test helpers -----------------------------------------------------------------------------

    def engage(self, tweet_id: str, **numbers: int) -> None:
        for key, value in numbers.items():
            bucket = "non_public_metrics" if key in ("url_link_clicks", "user_profile_clicks") else "public_metrics"
            self.tweets[tweet_id][bucket][key] = value

    def person(self, username: str, followers: int) -> str:
        """Someone else on X, with their follower count; their user id."""
        user_id = str(next(self._ids))
        self.users[user_id] = {"id": user_id, "name": username.title(), "username": username,
                               "public_metrics": {"followers_count": followers, "following_count": 10}}
        return user_id

    def repost(self, tweet_id: str, user_id: str) -> None:
        self.reposters.setdefault(tweet_id, []).insert(0, user_id)
        self.tweets[tweet_id]["public_metrics"]["retweet_count"] += 1

    def quote(self, tweet_id: str, user_id: str, text: str, *, likes: int = 0,
              created_at: str = "2026-11-23T10:00:00.000Z") -> str:
        """Someone quotes a post (or a quote): the quote is a tweet of its own, which can be quoted and answered."""
        quote_id = str(next(self._ids))
        self.tweets[quote_id] = {"id": quote_id, "text": text, "author_id": user_id, "created_at": created_at,
                                 "quoted": tweet_id, "media_ids": [], "public_metrics": {
                                     "retweet_count": 0, "reply_count": 0, "like_count": likes, "quote_count": 0,
                                     "bookmark_count": 0, "impression_count": 0}, "non_public_metrics": {}}
        if tweet_id in self.tweets:
            self.tweets[tweet_id]["public_metrics"]["quote_count"] += 1
        return quote_id

    def reply(self, tweet_id: str, text: str, *, username: str = "fan", author_id: str = "99",
              created_at: str = "2026-11-23T10:00:00.000Z") -> str:
        reply_id = str(next(self._ids))
        self.replies.append({"id": reply_id, "text": text, "conversation_id": tweet_id, "author_id": author_id,
                             "username": username, "created_at": created_at, "in_reply_to_user_id": self.user["id"]})
        return reply_id


def as_x_shows(tweet: dict[str, Any]) -> str:
    """A post's text as X's API gives it back: links shortened to t.co, a t.co link for its media, `&<>` escaped."""
    links = itertools.count(1)
    text = re.sub(r"https?://\S+", lambda _m: f"https://t.co/{tweet['id'][-6:]}{next(links)}", tweet["text"])
    if tweet.get("media_ids"):
        text += f" https://t.co/m{tweet['id'][-6:]}"
    return html.escape(text, quote=False)
