"""What every HTTP connector shares: one async client, error classification, up-front rate limits.

A connector subclasses `HttpNetwork`, sets its key/label/limits and its `profile` (handlers.core.ports
.NetworkProfile: the text rules, read budget, best-time defaults, hosts and aliases handlers read), adds the
problems only its network has in `text_problems`, and calls `self.call(...)`,
which turns every way a request can go wrong into a `PublishError` of the right kind:

- the request never left (connection refused, connect timeout, pool full) → TRANSIENT;
- it left but no usable answer came (read timeout, reset, 5xx, malformed JSON on success)
  → UNKNOWN_OUTCOME when it was a non-idempotent send (the post may exist), else TRANSIENT;
- 429 → RATE_LIMITED with the wait read from Retry-After or the network's reset headers;
- 401 → AUTH_EXPIRED; 400/403/404/409/413/415/422 → REJECTED with the network's own reason
  (a connector refines this with `classify()`).

Rate limits are also respected before sending: `publish_limits` (e.g. X: 100 posts per 15
minutes per account) are kept per account with aiolimiter, and a send that would break them
is not made: it comes back RATE_LIMITED with the time to wait, and Herald retries it then.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import httpx
from aiolimiter import AsyncLimiter

from bot.networks.common import parse_iso
from handlers.core.counting import LimitCheck, check_rules
from handlers.core.ports import (
    CANT_TELL,
    AccountView,
    Clock,
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
    ReplyTarget,
    Share,
    Unknown,
)

USER_AGENT = "Herald/0.1 (+https://github.com/herald-bot)"
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
# a create whose answer was lost may still be travelling: it can't land later than this after it was sent (the
# request's own timeouts are well under a minute; five minutes leave room for a network's queue). Only after it
# may "not among the account's recent posts" mean "not there" on a network without an idempotency key.
IN_FLIGHT_FOR = timedelta(minutes=5)


def new_client() -> httpx.AsyncClient:
    """The one HTTP client all connectors share (connection pooling, timeouts, user agent)."""
    return httpx.AsyncClient(
        timeout=TIMEOUT,
        headers={"User-Agent": USER_AGENT},
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        follow_redirects=False,
    )


def seconds_until(value: str | None, *, now: float | None = None) -> float | None:
    """Read a wait from a header value: seconds, an epoch timestamp, an HTTP date or ISO 8601."""
    if value is None or not str(value).strip():
        return None
    raw = str(value).strip()
    now = time.time() if now is None else now
    try:
        number = float(raw)
    except ValueError:
        number = None
    if number is not None:
        if number > 1_000_000_000:  # an epoch timestamp (X's x-rate-limit-reset, Bluesky's ratelimit-reset)
            return max(0.0, number - now)
        return max(0.0, number)
    try:
        parsed = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        parsed = None
    if parsed is None:
        parsed = parse_iso(raw)
        if parsed is None:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return max(0.0, parsed.timestamp() - now)


class HttpNetwork:
    """Base of the HTTP connectors. Subclasses set the class attributes and implement the calls."""

    key: ClassVar[str]
    label: ClassVar[str]
    profile: ClassVar[NetworkProfile]  # what handlers know about the network: text rules, budgets, hosts, …
    idempotent: ClassVar[bool] = False  # True when the network itself dedupes a retried send
    connect_spec: ClassVar[ConnectSpec]
    default_base_url: ClassVar[str]
    # (count, seconds) budgets per account, kept before sending a post
    publish_limits: ClassVar[tuple[tuple[int, float], ...]] = ()
    # headers that say when a rate limit resets, most specific first
    reset_headers: ClassVar[tuple[str, ...]] = ("retry-after", "x-rate-limit-reset", "x-ratelimit-reset",
                                                "ratelimit-reset")
    # how to read a post's id from its public link (for /confirm), a regex with a group named "id"
    url_id_pattern: ClassVar[str | None] = None
    # answering comments (/reply): why Herald can't on this network ({label} filled in), None where it can
    no_replies: ClassVar[str | None] = ("{label}'s API gives Herald no way to answer comments, so answer them "
                                        "on {label} itself")
    reply_max: ClassVar[int | None] = None  # a comment's length limit where it isn't the post's
    # budgets of replies per account where the network counts them apart from posts; None: they share publish_limits
    reply_limits: ClassVar[tuple[tuple[int, float], ...] | None] = None

    def __init__(self, client: httpx.AsyncClient, clock: Clock) -> None:
        self.client = client
        self.clock = clock
        self._limiters: dict[tuple[int, int], AsyncLimiter] = {}
        self._next_slot: dict[tuple[int, int], float] = {}  # (account, budget) → loop time of its last promised slot

    # -- what the handlers call -------------------------------------------------------------

    def check(self, account: AccountView, text: str, media_count: int) -> LimitCheck:
        return self.measure(text, media_count)

    def measure(self, text: str, media_count: int, *, max_characters: int | None = None,
                url_weight: int | None = None) -> LimitCheck:
        """The text by the profile's rules plus this network's own problems (`text_problems`)."""
        profile = self.profile
        return check_rules(profile.key, profile.label, profile.text, text, media_count=media_count,
                           max_characters=max_characters, url_weight=url_weight,
                           specific=self.text_problems(text, media_count))

    def text_problems(self, text: str, media_count: int) -> list[str]:
        """What only this network refuses in a text (Instagram's hashtags, Bluesky's bytes…); none by default."""
        return []

    async def fetch_comments(
        self, account: AccountView, remote_ids: list[str], since: datetime | None
    ) -> list[Comment]:
        return []

    async def refresh(self, account: AccountView) -> dict[str, Any] | None:
        return None

    def remote_id_from_url(self, account: AccountView, url: str) -> str | None:
        """The network's id of a post from its public link (the team's /confirm), or None if it can't be read."""
        if self.url_id_pattern is None:
            return None
        match = re.search(self.url_id_pattern, url)
        return match.group("id") if match else None

    async def fetch_metrics(self, account: AccountView, remote_ids: list[str]) -> dict[str, Metrics]:
        raise NotImplementedError

    def reply_refusal(self, account: AccountView) -> str | None:
        return self.no_replies.format(label=self.label) if self.no_replies else None

    def reply_text(self, account: AccountView, target: ReplyTarget, text: str) -> str:
        return text

    def check_reply(self, account: AccountView, text: str) -> LimitCheck:
        return self.measure(text, 0, max_characters=self.reply_max)

    async def reply(self, account: AccountView, target: ReplyTarget, text: str) -> Published:
        raise PublishError(ErrorKind.REJECTED, self.reply_refusal(account) or f"Herald can't answer on {self.label}")

    async def look_for_post(self, account: AccountView, post: Outgoing, since: datetime) -> Found:
        """Can't tell, unless the connector knows a way to ask its network (see Network.look_for_post)."""
        return CANT_TELL

    def absent(self, since: datetime) -> Found:
        """What "not among the account's posts" means for a network without an idempotency key: surely not
        there (None) once a create sent at `since` can no longer land (IN_FLIGHT_FOR later); can't tell before."""
        return None if self.clock.now() - since >= IN_FLIGHT_FOR else CANT_TELL

    async def publish_follow_up(self, account: AccountView, follow: FollowUpOut) -> Published:
        """A thread part or a comment-as-reply on a network with threads: its reply call, answering `parent_id`
        in the thread of `root_id`, with the step's own idempotency key. Networks with a first comment of their own
        (Instagram, Facebook, LinkedIn, YouTube) override this."""
        if not self.profile.threads:
            raise PublishError(ErrorKind.REJECTED, f"{self.label} takes no thread parts or first comments from Herald")
        return await self.reply(account, ReplyTarget(comment_id=follow.parent_id, post_id=follow.root_id,
                                                     idempotency_key=follow.idempotency_key), follow.text)

    async def look_for_follow_up(self, account: AccountView, follow: FollowUpOut, since: datetime) -> Found:
        """Can't tell, unless the connector knows a way to ask its network."""
        return CANT_TELL

    def follow_up_as_post(self, follow: FollowUpOut) -> Outgoing:
        """A step as an Outgoing, for the connectors whose look_for_post finds it the same way (text, record key)."""
        return Outgoing(delivery_id=0, post_id=0, idempotency_key=follow.idempotency_key, text=follow.text)

    async def fetch_shares(self, account: AccountView, remote_id: str) -> list[Share] | Unknown:
        """Can't tell who shared, unless the connector reads its network's reposted-by / quotes lists."""
        return CANT_TELL

    # -- helpers for subclasses --------------------------------------------------------------

    def base(self, account: AccountView) -> str:
        return (account.base_url or self.default_base_url).rstrip("/")

    async def hold_back(self, account: AccountView, *, reply: bool = False) -> None:
        """Count one send against the account's budgets; refuse (RATE_LIMITED) when one is spent. A `reply`
        counts against `reply_limits` where the network keeps replies apart, else against the posts'."""
        apart = reply and self.reply_limits is not None
        budgets = self.reply_limits if apart and self.reply_limits is not None else self.publish_limits
        what = "replies" if apart else "posts"
        limiters = []
        for i, (count, seconds) in enumerate(budgets):
            key = (account.id, i + (1000 if apart else 0))
            limiter = self._limiters.setdefault(key, AsyncLimiter(count, seconds))
            if not limiter.has_capacity():
                # a place in the queue, not a shared guess: each refused send gets the next free slot of the
                # budget, so a burst drains at the budget's pace instead of all retrying at the same moment
                # the wait is computed as an offset from now (not as `slot - now`), so a free queue gives exactly
                # the budget's spacing rather than a float a hair off it
                now = asyncio.get_running_loop().time()
                wait = max(0.0, self._next_slot.get(key, now) - now) + seconds / count
                self._next_slot[key] = now + wait
                raise PublishError(
                    ErrorKind.RATE_LIMITED,
                    f"{self.label} allows {count} {what} per {_span(seconds)} for one account; "
                    f"Herald paces them rather than be blocked",
                    retry_after=wait, paced=True,
                )
            limiters.append(limiter)
        for limiter in limiters:
            await limiter.acquire()  # returns at once: has_capacity() just said so

    async def refresh_grant(self, url: str, refresh_token: str, *, form: dict[str, Any],
                            auth: httpx.Auth | tuple[str, str] | None, refused: Callable[[str], str]) -> Any:
        """POST an OAuth 2.0 `grant_type=refresh_token` to `url` with the app's `form` fields (client id and
        secret in the body) and/or HTTP Basic `auth`; return the answer. A refresh token the network
        refuses (REJECTED or AUTH_EXPIRED) is AUTH_EXPIRED with `refused(reason)`, which says how to reconnect."""
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token, **form}
        extra: dict[str, Any] = {"auth": auth} if auth is not None else {}
        try:
            return await self.call("POST", url, data=data, **extra)
        except PublishError as exc:
            if exc.kind in (ErrorKind.REJECTED, ErrorKind.AUTH_EXPIRED):
                raise PublishError(ErrorKind.AUTH_EXPIRED, refused(exc.reason)) from exc
            raise

    async def call(
        self,
        method: str,
        url: str,
        *,
        sending: bool = False,
        expect_json: bool = True,
        **kwargs: Any,
    ) -> Any:
        """Make one request; return its JSON (or the response when `expect_json` is False).

        `sending` marks a request that creates something on the network: a failure after it
        left is then UNKNOWN_OUTCOME unless the network dedupes retries (`idempotent`).
        """
        unsafe = sending and not self.idempotent
        try:
            response = await self.client.request(method, url, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol,
                httpx.InvalidURL) as exc:
            raise PublishError(ErrorKind.TRANSIENT, f"couldn't reach {self.label} ({_describe(exc)}); "
                               "nothing was sent") from exc
        except httpx.TransportError as exc:
            if unsafe:
                raise PublishError(
                    ErrorKind.UNKNOWN_OUTCOME,
                    f"the connection to {self.label} broke after the request was sent ({_describe(exc)}); "
                    "the post may or may not be there",
                ) from exc
            raise PublishError(ErrorKind.TRANSIENT, f"{self.label} didn't answer ({_describe(exc)})") from exc
        self.raise_for(response, unsafe=unsafe)
        if not expect_json:
            return response
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            kind = ErrorKind.UNKNOWN_OUTCOME if unsafe else ErrorKind.TRANSIENT
            raise PublishError(kind, f"{self.label} answered {response.status_code} with something that "
                               "isn't JSON" + ("; the post may or may not be there" if unsafe else "")) from exc

    def raise_for(self, response: httpx.Response, *, unsafe: bool) -> None:
        status = response.status_code
        if status < 400:
            return
        refined = self.classify(response)
        if refined is not None:
            raise refined
        reason = self.error_reason(response)
        if status == 429:
            raise PublishError(ErrorKind.RATE_LIMITED, f"{self.label} says too many requests: {reason}",
                               retry_after=self.retry_after(response))
        if status == 401:
            raise PublishError(ErrorKind.AUTH_EXPIRED, f"{self.label} refused the credentials: {reason}")
        if status >= 500:
            if unsafe:
                raise PublishError(ErrorKind.UNKNOWN_OUTCOME,
                                   f"{self.label} failed with {status} while handling the post ({reason}); "
                                   "the post may or may not be there")
            raise PublishError(ErrorKind.TRANSIENT, f"{self.label} is having trouble ({status}: {reason})",
                               retry_after=self.retry_after(response))
        raise PublishError(ErrorKind.REJECTED, f"{self.label} refused it: {reason}")

    def classify(self, response: httpx.Response) -> PublishError | None:
        """A connector's own reading of an error answer (e.g. X's 403 duplicate); None = the default rules."""
        return None

    def error_reason(self, response: httpx.Response) -> str:
        """The network's message in plain words; connectors override for their error shapes."""
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            text = response.text.strip()
            return text[:300] if text else f"HTTP {response.status_code}"
        return _find_message(body) or f"HTTP {response.status_code}"

    def retry_after(self, response: httpx.Response) -> float | None:
        for name in self.reset_headers:
            wait = seconds_until(response.headers.get(name))
            if wait is not None:
                return wait
        return None


def _find_message(body: Any) -> str | None:
    if isinstance(body, dict):
        for key in ("error_description", "message", "detail", "error_msg", "error_user_msg", "title", "error"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()[:300]
            if isinstance(value, dict | list):
                found = _find_message(value)
                if found:
                    return found
        for key in ("errors", "error"):
            found = _find_message(body.get(key))
            if found:
                return found
    if isinstance(body, list):
        for item in body:
            found = _find_message(item)
            if found:
                return found
    return None


def _describe(exc: Exception) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _span(seconds: float) -> str:
    if seconds % 86400 == 0:
        return f"{int(seconds // 86400)} day" + ("s" if seconds != 86400 else "")
    if seconds % 3600 == 0:
        return f"{int(seconds // 3600)} hour" + ("s" if seconds != 3600 else "")
    if seconds % 60 == 0:
        return f"{int(seconds // 60)} minutes"
    return f"{seconds:g} seconds"
