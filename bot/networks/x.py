"""X (Twitter) API v2 connector: posts, images, metrics and replies over plain HTTP.

- Posting: `POST /2/tweets` `{text, media: {media_ids}}` with an OAuth 2.0 user token (Bearer).
- Images: one-shot `POST /2/media/upload` (multipart `media` + `media_category=tweet_image|tweet_gif`),
  ids kept in the error's `resume` so a retry within the media's lifetime doesn't upload again.
- X has no idempotency key: a post whose answer is lost is UNKNOWN_OUTCOME (the base class rule),
  and a resend of the same text is refused by X as a duplicate (REJECTED "duplicate"). Herald then looks for it
  among the account's own posts since the attempt (`GET /2/users/:id/tweets`, matched by text; `look_for_post`).
- Metrics: `GET /2/tweets?ids=` (100 per call) with `public_metrics` (+ `non_public_metrics` for link
  clicks on own posts of the last 30 days, dropped when X refuses them).
- Who shared: `GET /2/tweets/:id/retweeted_by` (users with `public_metrics`) and `GET /2/tweets/:id/quote_tweets`
  (the quotes with `public_metrics`, their authors expanded), `pagination_token` from `meta.next_token`; the
  quotes of the most followed quotes that were quoted themselves are read one level down. Both lists allow 75
  requests per 15 minutes per user: the profile's share budget keeps well under that.
- Replies: recent search `conversation_id:<id>` (the last 7 days). Herald answers one with `POST /2/tweets`
  `{text, reply: {in_reply_to_tweet_id}}` (a post like any other: same limits, no idempotency key).
- Tokens: access tokens live 2 hours; with `offline.access` X also hands out a refresh token, which
  `refresh()` trades at `POST /2/oauth2/token` (the refresh token rotates on every use).
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from twitter_text.has_invalid_characters import has_invalid_characters  # type: ignore[import-untyped]

from handlers.core.counting import Counting, TextRules
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
    PostingWindow,
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
    renewed_tokens,
    resumed_uploads,
    to_int,
    uploads_resume,
    with_resume,
)
from .http import HttpNetwork, seconds_until

IDS_PER_CALL = 100  # GET /2/tweets takes up to 100 ids
QUERY_MAX = 512  # recent search query length on the self-serve tiers
SEARCH_WINDOW = timedelta(days=7)  # recent search only reaches back 7 days
SEARCH_PAGES = 5  # at most 5 pages of 100 replies per query per run
REFRESH_WINDOW = timedelta(hours=1)  # access tokens live 2 h: refresh in their second hour
MEDIA_TTL = timedelta(hours=23)  # media ids expire after 24 h (expires_after_secs 86400)
NOT_FOUND = "resource-not-found"
TIMELINE_PAGES = 3  # at most 3 pages of 100 of the account's own posts when looking for a lost one
CLOCK_SLACK = timedelta(minutes=2)  # X's clock and Herald's may differ: read from a little before the attempt
URL_RE = re.compile(r"https?://\S+")
SHARE_PAGE = 100  # users or quotes per page of retweeted_by / quote_tweets (X allows 10–100)
SHARE_PAGES = 2  # pages per list and reading
SECOND_DEGREE = 3  # quotes (the most followed first, quoted themselves) whose own quotes are read


class XNetwork(HttpNetwork):
    key = "x"
    url_id_pattern = r"/status(?:es)?/(?P<id>\d+)"
    label = "X"
    no_replies = None  # a reply is a post with reply.in_reply_to_tweet_id
    idempotent = False
    default_base_url = "https://api.x.com"
    publish_limits = ((100, 900.0),)  # POST /2/tweets: 100 per 15 minutes per user
    profile = NetworkProfile(
        key="x", label="X", aliases=("twitter",),
        text=TextRules(280, Counting.X_WEIGHTED, "weighted characters", max_images=4, media_only=True),
        # GET /2/tweets: 5,000 requests / 15 min per user, 100 ids per request → at most 100 requests
        read_budget=ReadBudget(10_000, timedelta(minutes=15)),
        # retweeted_by and quote_tweets: 75 requests / 15 min per user each; a post's reading takes at most
        # 2 + 2 pages and 3 second-degree quote lists (3 × 2 pages): 5 posts per 15 minutes stay under it
        share_budget=ReadBudget(5, timedelta(minutes=15)),
        best_times=(PostingWindow((1, 2, 3, 4), 9, 12),),
        hosts=frozenset({"x.com", "twitter.com", "t.co"}), site_names=frozenset({"twitter"}),
        # X refuses a status identical to one already on the account (403 "duplicate content") and publishes no
        # window: Herald keeps identical texts 90 days apart
        duplicate_window=timedelta(days=90),
        threads=True,
    )
    reset_headers = ("retry-after", "x-rate-limit-reset")
    refresh_window = REFRESH_WINDOW
    connect_spec = ConnectSpec(
        required=("access_token",),
        optional=("client_id",),
        secret=("access_token", "refresh_token", "client_secret"),
        help=(
            "An OAuth 2.0 user token of the X account, from your app at developer.x.com (scopes tweet.read "
            "tweet.write users.read media.write offline.access). Add refresh_token= and your app's client_id= "
            "(and client_secret= for a confidential app) so Herald can renew the 2-hour token by itself. "
            "Example: /connect x name=brand access_token=… refresh_token=… client_id=…"
        ),
    )

    # -- connect -------------------------------------------------------------------------------

    async def verify(self, account: AccountView) -> Verified:
        creds = dict(account.credentials)
        if not creds.get("access_token"):
            raise ValueError("access_token= is missing")
        new_creds: dict[str, Any] = {}
        if creds.get("refresh_token") and not self._client_id(account):
            raise ValueError("refresh_token= needs your app's client_id= to be used")
        if creds.get("refresh_token") and not creds.get("expires_at"):
            # just typed into /connect: a token of unknown age, so start a fresh 2 hours. (A stored account
            # has expires_at: the health check's verify must not rotate tokens it wouldn't keep.)
            new_creds = await self._refresh_tokens(account, creds)
            creds = new_creds
        body = await self.call("GET", f"{self.base(account)}/2/users/me", headers=bearer(creds["access_token"]),
                               params={"user.fields": "public_metrics"})
        user = body.get("data") or {}
        if not user.get("id"):
            raise PublishError(ErrorKind.TRANSIENT, "X didn't say who the token belongs to")
        return Verified(
            description=f"@{user.get('username')} on X (id {user['id']})",
            settings={"user_id": str(user["id"]), "username": user.get("username")},
            credentials=new_creds,
        )

    async def refresh(self, account: AccountView) -> dict[str, Any] | None:
        creds = dict(account.credentials)
        if not creds.get("refresh_token"):
            return None  # a bare access token: nothing to renew it with
        if not refresh_due(parse_iso(creds.get("expires_at")), self.clock.now(), self.refresh_window):
            return None
        return await self._refresh_tokens(account, creds)

    async def _refresh_tokens(self, account: AccountView, creds: dict[str, Any]) -> dict[str, Any]:
        client_id = self._client_id(account)
        if not client_id:
            raise PublishError(ErrorKind.AUTH_EXPIRED, f"X needs your app's client_id to renew the token; "
                               f"reconnect with /connect x name={account.name} access_token=… "
                               "refresh_token=… client_id=…")
        secret = creds.get("client_secret")
        body = await self.refresh_grant(
            f"{self.base(account)}/2/oauth2/token", creds["refresh_token"], form={"client_id": client_id},
            auth=httpx.BasicAuth(client_id, secret) if secret else None,
            refused=lambda why: f"X refused to renew the token ({why}); reconnect with /connect x "
                                f"name={account.name} access_token=… refresh_token=… client_id=…",
        )
        if not body.get("access_token"):
            raise PublishError(ErrorKind.TRANSIENT, "X's token answer had no access_token")
        return renewed_tokens(creds, body, self.clock.now(), lifetime=int(body.get("expires_in") or 7200),
                              stamp=iso_z)

    def text_problems(self, text: str, media_count: int) -> list[str]:
        return ["the text contains characters X refuses"] if has_invalid_characters(text) else []

    @staticmethod
    def _client_id(account: AccountView) -> str | None:
        return account.settings.get("client_id") or account.credentials.get("client_id")

    # -- publish -------------------------------------------------------------------------------

    async def publish(self, account: AccountView, post: Outgoing) -> Published:
        headers = self._headers(account)
        for media in post.media:
            if not media.content_type.startswith("image/"):
                raise PublishError(ErrorKind.REJECTED, f"{media.filename}: Herald posts images to X, not "
                                   f"{media.content_type} (videos need X's chunked upload)")
        media_ids = await self._upload_all(account, post, headers)
        body: dict[str, Any] = {"text": post.text}
        if media_ids:
            body["media"] = {"media_ids": media_ids}
        resume = self._resume(post, media_ids)
        await with_resume(self.hold_back(account), resume)
        answer = await with_resume(
            self.call("POST", f"{self.base(account)}/2/tweets", sending=True, headers=headers, json=body), resume)
        data = answer.get("data") or {}
        if not data.get("id"):
            raise PublishError(ErrorKind.UNKNOWN_OUTCOME, "X answered without the post's id; the post may be there",
                               resume=resume)
        tweet_id = str(data["id"])
        return Published(remote_id=tweet_id, url=self._url(account, tweet_id))

    async def look_for_post(self, account: AccountView, post: Outgoing, since: datetime) -> Found:
        """The account's own posts since the attempt (`GET /2/users/:id/tweets`, newest first, `start_time`), matched
        by text: X rewrites links to t.co, adds one for attached images and escapes `&<>`, so both sides are compared
        without links, unescaped, whitespace folded. X refuses a second post with the same text, so one match is the
        post. None found: surely not there only once the attempt can no longer land (IN_FLIGHT_FOR); before, can't
        tell. A read that fails, or an account without its user id, can't tell either."""
        user_id = str(account.settings.get("user_id") or "")
        if not user_id:
            return CANT_TELL
        wanted = _comparable(post.text)
        if not wanted:  # only images: nothing to tell it from another post by
            return CANT_TELL
        params: dict[str, Any] = {"max_results": 100, "tweet.fields": "created_at", "exclude": "retweets",
                                  "start_time": iso_z((since - CLOCK_SLACK).replace(microsecond=0))}
        try:
            headers = self._headers(account)
            for _page in range(TIMELINE_PAGES):
                body = await self.call("GET", f"{self.base(account)}/2/users/{user_id}/tweets", headers=headers,
                                       params=params)
                for tweet in body.get("data") or []:
                    if tweet.get("id") and _comparable(str(tweet.get("text") or "")) == wanted:
                        return Published(remote_id=str(tweet["id"]), url=self._url(account, str(tweet["id"])))
                token = (body.get("meta") or {}).get("next_token")
                if not token:
                    return self.absent(since)
                params["pagination_token"] = token
        except PublishError:
            return CANT_TELL
        return CANT_TELL  # more posts since then than Herald reads: can't tell

    async def look_for_follow_up(self, account: AccountView, follow: FollowUpOut, since: datetime) -> Found:
        """A thread part or reply is one of the account's own posts: found by its text like a post."""
        return await self.look_for_post(account, self.follow_up_as_post(follow), since)

    async def reply(self, account: AccountView, target: ReplyTarget, text: str) -> Published:
        """Answer a comment: a post in reply to it (X counts it against the same 100 posts per 15 minutes)."""
        headers = self._headers(account)
        await self.hold_back(account, reply=True)
        answer = await self.call("POST", f"{self.base(account)}/2/tweets", sending=True, headers=headers,
                                 json={"text": text, "reply": {"in_reply_to_tweet_id": target.comment_id}})
        data = (answer.get("data") or {}) if isinstance(answer, dict) else {}
        if not data.get("id"):
            raise PublishError(ErrorKind.UNKNOWN_OUTCOME, "X answered without the reply's id; it may be there")
        reply_id = str(data["id"])
        return Published(remote_id=reply_id, url=self._url(account, reply_id))

    async def _upload_all(self, account: AccountView, post: Outgoing, headers: dict[str, str]) -> list[str]:
        done = self._resumed_media(post)
        ids: list[str] = []
        for i, media in enumerate(post.media):
            key = media_key(i, media.sha256)
            if key in done:
                ids.append(done[key])
                continue
            category = "tweet_gif" if media.content_type == "image/gif" else "tweet_image"
            answer = await with_resume(self.call(
                "POST", f"{self.base(account)}/2/media/upload", headers=headers,
                files={"media": (media.filename, media.data, media.content_type)},
                data={"media_category": category, "media_type": media.content_type},
            ), self._resume(post, ids))
            data = answer.get("data") or answer
            media_id = data.get("id") or data.get("media_id_string") or data.get("media_id")
            if not media_id:
                raise PublishError(ErrorKind.TRANSIENT, f"X's upload answer for {media.filename} had no media id",
                                   resume=self._resume(post, ids))
            ids.append(str(media_id))
        return ids

    def _resumed_media(self, post: Outgoing) -> dict[str, str]:
        saved = resumed_uploads(post, "media_ids", "media_uploaded_at", MEDIA_TTL, self.clock.now())
        return {k: str(v) for k, v in saved.items()}

    def _resume(self, post: Outgoing, ids: list[str]) -> dict[str, Any]:
        return uploads_resume(post, ids, "media_ids", "media_uploaded_at", reused=bool(self._resumed_media(post)),
                              stamp=iso_z(self.clock.now()))

    def _url(self, account: AccountView, tweet_id: str) -> str:
        username = account.settings.get("username")
        return f"https://x.com/{username}/status/{tweet_id}" if username else f"https://x.com/i/status/{tweet_id}"

    def _headers(self, account: AccountView) -> dict[str, str]:
        token = account.credentials.get("access_token")
        if not token:
            raise PublishError(ErrorKind.AUTH_EXPIRED, f"no X token stored; reconnect with /connect x "
                               f"name={account.name} access_token=…")
        return bearer(token)

    # -- metrics and replies ---------------------------------------------------------------------

    async def fetch_metrics(self, account: AccountView, remote_ids: list[str]) -> dict[str, Metrics]:
        headers = self._headers(account)
        ids = list(dict.fromkeys(r for r in remote_ids if r))
        followers = await self._followers(account, headers)
        readings: dict[str, Metrics] = {}
        for start in range(0, len(ids), IDS_PER_CALL):
            chunk = ids[start:start + IDS_PER_CALL]
            found, retry = await self._tweets(account, headers, chunk, private=True)
            if retry:
                more, _ = await self._tweets(account, headers, retry, private=False)
                found.update(more)
            for tweet_id, tweet in found.items():
                readings[tweet_id] = _metrics(tweet, followers)
        return readings

    async def _tweets(self, account: AccountView, headers: dict[str, str], ids: list[str],
                      *, private: bool) -> tuple[dict[str, dict[str, Any]], list[str]]:
        """The tweets X returns for `ids`, and the ids to ask again without the private metrics."""
        fields = "public_metrics,non_public_metrics" if private else "public_metrics"
        try:
            body = await self.call("GET", f"{self.base(account)}/2/tweets", headers=headers,
                                   params={"ids": ",".join(ids), "tweet.fields": fields})
        except PublishError as exc:
            if private and exc.kind == ErrorKind.REJECTED:
                return {}, ids  # X refuses private metrics for this token or these posts: public ones only
            raise
        found = {str(t["id"]): t for t in body.get("data") or [] if t.get("id")}
        retry = []
        if private:
            gone = {str(e.get("resource_id") or e.get("value")) for e in body.get("errors") or []
                    if NOT_FOUND in str(e.get("type", "")) or e.get("title") == "Not Found Error"}
            retry = [i for i in ids if i not in found and i not in gone and body.get("errors")]
        return found, retry

    async def _followers(self, account: AccountView, headers: dict[str, str]) -> int | None:
        try:
            body = await self.call("GET", f"{self.base(account)}/2/users/me", headers=headers,
                                   params={"user.fields": "public_metrics"})
        except PublishError as exc:
            if exc.kind in (ErrorKind.AUTH_EXPIRED, ErrorKind.RATE_LIMITED):
                raise
            return None
        count = ((body.get("data") or {}).get("public_metrics") or {}).get("followers_count")
        return int(count) if count is not None else None

    async def fetch_comments(
        self, account: AccountView, remote_ids: list[str], since: datetime | None
    ) -> list[Comment]:
        headers = self._headers(account)
        now = self.clock.now()
        floor = now - SEARCH_WINDOW + timedelta(minutes=1)
        start = max(since, floor) if since else None
        own = str(account.settings.get("user_id") or "")
        wanted = set(remote_ids)
        comments: list[Comment] = []
        for query in _queries([r for r in dict.fromkeys(remote_ids) if r]):
            params: dict[str, Any] = {
                "query": query, "max_results": 100,
                "tweet.fields": "author_id,conversation_id,created_at,in_reply_to_user_id",
                "expansions": "author_id", "user.fields": "username",
            }
            if start is not None:
                params["start_time"] = start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            for _page in range(SEARCH_PAGES):
                body = await self.call("GET", f"{self.base(account)}/2/tweets/search/recent",
                                       headers=headers, params=params)
                users = {str(u["id"]): u.get("username") for u in (body.get("includes") or {}).get("users", [])}
                for tweet in body.get("data") or []:
                    parent = str(tweet.get("conversation_id") or "")
                    created = parse_iso(tweet.get("created_at"))
                    if parent not in wanted or str(tweet.get("id")) == parent or created is None:
                        continue
                    if str(tweet.get("author_id")) == own or (since is not None and created <= since):
                        continue
                    username = users.get(str(tweet.get("author_id"))) or str(tweet.get("author_id"))
                    comments.append(Comment(
                        remote_id=str(tweet["id"]), parent_remote_id=parent, author=f"@{username}",
                        text=tweet.get("text", ""), created_at=created,
                        url=f"https://x.com/{username}/status/{tweet['id']}",
                    ))
                token = (body.get("meta") or {}).get("next_token")
                if not token:
                    break
                params["next_token"] = token
        return comments

    # -- who shared -------------------------------------------------------------------------------

    async def fetch_shares(self, account: AccountView, remote_id: str) -> list[Share] | Unknown:
        headers = self._headers(account)
        own = str(account.settings.get("user_id") or "")
        try:
            shares = await self._reposted_by(account, headers, remote_id)
            quotes, quoted = await self._quotes(account, headers, remote_id, via="")
        except PublishError as exc:
            if exc.kind == ErrorKind.REJECTED:  # the post is gone, or X's tier doesn't serve these lists
                return CANT_TELL
            raise
        shares += quotes
        ahead = sorted((q for q in quotes if quoted.get(q.remote_id)), key=lambda q: -(q.followers or 0))
        for quote in ahead[:SECOND_DEGREE]:
            try:
                more, _ = await self._quotes(account, headers, quote.remote_id, via=quote.remote_id)
            except PublishError as exc:
                if exc.kind != ErrorKind.REJECTED:
                    raise
                continue  # that quote was deleted or is protected
            shares += more
        return [s for s in shares if s.who != own]

    async def _pages(self, account: AccountView, headers: dict[str, str], path: str,
                     params: dict[str, Any]) -> list[dict[str, Any]]:
        """Up to SHARE_PAGES pages of one of X's lists, each page's `includes.users` merged into its items."""
        params = {**params, "max_results": SHARE_PAGE}
        found: list[dict[str, Any]] = []
        for _page in range(SHARE_PAGES):
            body = await self.call("GET", f"{self.base(account)}{path}", headers=headers, params=params)
            users = {str(u.get("id")): u for u in (body.get("includes") or {}).get("users") or []}
            for item in body.get("data") or []:
                found.append({**item, "_author": users.get(str(item.get("author_id")), {})})
            token = (body.get("meta") or {}).get("next_token")
            if not token:
                break
            params["pagination_token"] = token
        return found

    async def _reposted_by(self, account: AccountView, headers: dict[str, str], remote_id: str) -> list[Share]:
        users = await self._pages(account, headers, f"/2/tweets/{remote_id}/retweeted_by",
                                  {"user.fields": "public_metrics,username"})
        return [Share(ShareKind.REPOST, who=str(u["id"]), handle=f"@{u.get('username') or u['id']}",
                      followers=to_int((u.get("public_metrics") or {}).get("followers_count")),
                      url=f"https://x.com/{u.get('username')}" if u.get("username") else None)
                for u in users if u.get("id")]

    async def _quotes(self, account: AccountView, headers: dict[str, str], remote_id: str,
                      *, via: str) -> tuple[list[Share], dict[str, int]]:
        """The quotes of a post, and how often each of them was quoted in turn."""
        tweets = await self._pages(account, headers, f"/2/tweets/{remote_id}/quote_tweets", {
            "tweet.fields": "created_at,public_metrics,author_id", "expansions": "author_id",
            "user.fields": "public_metrics,username"})
        shares, quoted = [], {}
        for tweet in tweets:
            if not tweet.get("id") or not tweet.get("author_id"):
                continue
            author, numbers = tweet["_author"], tweet.get("public_metrics") or {}
            username = author.get("username") or str(tweet["author_id"])
            shares.append(Share(
                ShareKind.QUOTE, who=str(tweet["author_id"]), handle=f"@{username}",
                followers=to_int((author.get("public_metrics") or {}).get("followers_count")),
                at=parse_iso(tweet.get("created_at")), remote_id=str(tweet["id"]), text=str(tweet.get("text") or ""),
                url=f"https://x.com/{username}/status/{tweet['id']}",
                engagement=sum(to_int(numbers.get(k)) or 0 for k in ("like_count", "reply_count", "retweet_count",
                                                                     "quote_count")),
                via=via))
            quoted[str(tweet["id"])] = to_int(numbers.get("quote_count")) or 0
        return shares, quoted

    # -- X's error shapes ------------------------------------------------------------------------

    def classify(self, response: httpx.Response) -> PublishError | None:
        if response.status_code == 403 and "duplicate" in self.error_reason(response).lower():
            return PublishError(ErrorKind.REJECTED, "duplicate: X refuses a post identical to one already on the "
                                "account (it may be there from an earlier attempt)")
        return None

    def error_reason(self, response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return super().error_reason(response)
        if isinstance(body, dict):
            messages = [str(e.get("message") or e.get("detail")) for e in body.get("errors") or []
                        if isinstance(e, dict) and (e.get("message") or e.get("detail"))]
            if messages:
                return "; ".join(dict.fromkeys(messages))[:300]
            for key in ("detail", "error_description", "title", "error"):
                if isinstance(body.get(key), str) and body[key].strip():
                    return str(body[key]).strip()[:300]
        return super().error_reason(response)

    def retry_after(self, response: httpx.Response) -> float | None:
        """The wait of the limit that is spent: per 15 minutes, or the user's / app's 24-hour cap."""
        waits = []
        for family in ("x-rate-limit", "x-user-limit-24hour", "x-app-limit-24hour"):
            if response.headers.get(f"{family}-remaining") == "0":
                wait = seconds_until(response.headers.get(f"{family}-reset"))
                if wait is not None:
                    waits.append(wait)
        return max(waits) if waits else super().retry_after(response)


def _metrics(tweet: dict[str, Any], followers: int | None) -> Metrics:
    public = tweet.get("public_metrics") or {}
    private = tweet.get("non_public_metrics") or {}
    return Metrics(
        likes=public.get("like_count"),
        comments=public.get("reply_count"),
        shares=public.get("retweet_count"),
        quotes=public.get("quote_count"),
        impressions=public.get("impression_count", private.get("impression_count")),
        clicks=private.get("url_link_clicks"),
        saves=public.get("bookmark_count"),
        followers=followers,
    )


def _comparable(text: str) -> str:
    """A post's text as X's timeline and Herald can both give it: no links, `&amp;` unescaped, whitespace folded."""
    return " ".join(URL_RE.sub(" ", html.unescape(text)).split())


def _queries(ids: list[str]) -> list[str]:
    """`conversation_id:a OR conversation_id:b …` queries that each fit X's query length."""
    queries: list[str] = []
    current = ""
    for remote_id in ids:
        term = f"conversation_id:{remote_id}"
        candidate = f"{current} OR {term}" if current else term
        if current and len(candidate) > QUERY_MAX:
            queries.append(current)
            candidate = term
        current = candidate
    if current:
        queries.append(current)
    return queries
