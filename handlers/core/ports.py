"""The small protocols handlers need from the outside world; bot/app.py plugs the real ones in.

- `NetworkProfile`: what a connector declares about its network (key, label, aliases, text rules, read budget,
  best-time defaults, hosts): data only, so handlers keep no per-network tables.
- `Network`: one social network connector (validate, verify, publish, fetch metrics, answer comments, read
  who shared or quoted a post: `fetch_shares`, and look for a post whose send had an unknown outcome:
  `look_for_post`).
- `Networks`: the directory of connectors by network key, and their profiles.
- `Notifier`: posts a reply into a team chat on Herald's own initiative.
- `Clock`: the current time (tests inject a fake one).
- `Scheduler`: arms and disarms the on-time trigger of a post.
- `Fetcher`: downloads a file a user named by its web address (a picture in an /import plan).
- `Analytics`: reads visits and goal conversions per utm_content from the company site's analytics (Plausible,
  GA4).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import Enum, StrEnum
from typing import Any, Protocol

from handlers.core.chat import ChatAddress, MediaIn, Reply
from handlers.core.counting import LimitCheck, TextRules
from storage.models import ShareKind  # repost (shared as it is) or quote (with their own words)


@dataclass(frozen=True)
class AccountView:
    """An account as a connector sees it, credentials decrypted (never printed: repr=False)."""

    id: int
    workspace_id: int
    network: str
    name: str
    base_url: str | None
    settings: dict[str, Any]
    credentials: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class MediaFile:
    """One image (or video) of a post, read from Herald's media store for sending."""

    filename: str
    content_type: str
    data: bytes = field(repr=False)
    sha256: str = ""


@dataclass(frozen=True)
class Outgoing:
    """One delivery to send: the network's text variant, the link and media of the post.

    `resume` is what an earlier attempt of this delivery left (a container or upload id),
    so two-phase networks carry on from it instead of starting again. `country` is the ISO 3166-1 alpha-2 code of
    the delivery's audience (None: no audience, or one without a country); a connector whose profile declares
    `country_targeting` keeps the post to that country, the others ignore it.
    """

    delivery_id: int
    post_id: int
    idempotency_key: str
    text: str
    link: str | None = None
    media: tuple[MediaFile, ...] = ()
    campaign: str | None = None
    resume: dict[str, Any] = field(default_factory=dict)
    country: str | None = None


@dataclass(frozen=True)
class FollowUpOut:
    """One thread part after the first, or the first comment, of a published delivery.

    `parent_id` is what it answers (the part before it, or the post for a comment), `root_id` the post's own id
    (the thread's first part); `idempotency_key` is the same for every attempt of this one step.
    """

    kind: str  # "part" or "comment" (storage.models.FollowUpKind)
    number: int  # the part's number in the thread (2, 3, …); 0 for the comment
    text: str
    parent_id: str
    root_id: str
    idempotency_key: str


@dataclass(frozen=True)
class Verified:
    """What `verify` learned at connect time: who the account is, and values to keep with it.

    `settings` (ids, handles) are stored in the clear beside the account's own settings;
    `credentials` (session or long-lived tokens the network handed back) are sealed with the
    rest of its credentials.
    """

    description: str
    settings: dict[str, Any] = field(default_factory=dict)
    credentials: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Published:
    remote_id: str
    url: str | None = None


@dataclass(frozen=True)
class Metrics:
    """One reading of a delivery's engagement; None where the network doesn't give that number."""

    likes: int | None = None
    comments: int | None = None
    shares: int | None = None
    quotes: int | None = None
    impressions: int | None = None
    clicks: int | None = None
    saves: int | None = None
    followers: int | None = None  # the account's audience at reading time, where the network gives it


@dataclass(frozen=True)
class Comment:
    """A comment or reply on a published post, for the team's inbox."""

    remote_id: str  # the comment's id on the network
    parent_remote_id: str  # the published post it answers
    author: str
    text: str
    created_at: datetime
    url: str | None = None


@dataclass(frozen=True)
class ReplyTarget:
    """The comment a reply answers, as the team's inbox keeps it (handlers/engagement/replies.py)."""

    comment_id: str  # the comment's id on the network (InboxItem.remote_id)
    post_id: str  # the published post it is under (the delivery's remote id)
    author: str = ""  # who wrote the comment, as the network names them (@handle where it has one)
    idempotency_key: str = ""  # the same for every attempt of one reply: networks that dedupe use it


@dataclass(frozen=True)
class Share:
    """Someone else sharing or quoting a published post (handlers/engagement/spread.py keeps them).

    `via` is empty for a share of the post itself; for a second-degree share (a quote of a quote, one level)
    it is the remote id of the quote that was quoted.
    """

    kind: ShareKind  # storage.models.ShareKind, re-exported here for the connectors
    who: str  # the amplifier's stable id on the network (user id, DID, account id)
    handle: str  # how the network names them: @handle
    followers: int | None  # their audience when read; None where the network didn't say
    at: datetime | None = None  # when they shared it, where the network says (reposts often don't)
    remote_id: str = ""  # a quote's own id on the network ("" for a repost)
    text: str = ""  # a quote's words
    url: str | None = None
    engagement: int | None = None  # a quote's own likes + replies + reposts + quotes
    via: str = ""


class ErrorKind(StrEnum):
    RATE_LIMITED = "rate_limited"  # not sent; try again after retry_after
    AUTH_EXPIRED = "auth_expired"  # not sent; reconnect the account
    REJECTED = "rejected"  # not sent; the network refused the content
    TRANSIENT = "transient"  # not sent (failed before the request left); safe to retry
    UNKNOWN_OUTCOME = "unknown_outcome"  # the request may have reached the network


# Resume keys that mean something to Herald itself (see PublishError.resume).
IN_FLIGHT = "in_flight"  # true: a post may already exist; exhausted retries end unconfirmed, not failed
GUARD = "guard_"  # prefix of a connector's safety markers; lifted when the team explicitly resends


class Unknown(Enum):
    """The third answer of `Network.look_for_post`: the network can't tell whether the post is there."""

    CANT_TELL = "can't tell"


CANT_TELL = Unknown.CANT_TELL
Found = Published | None | Unknown  # look_for_post: found it, surely not there, can't tell


class PublishError(Exception):
    """A network's failure, classified so Herald knows whether a retry could post twice."""

    def __init__(
        self, kind: ErrorKind, reason: str, *, retry_after: float | None = None,
        resume: dict[str, Any] | None = None, paced: bool = False,
    ) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.retry_after = retry_after
        # True: Herald's own per-account budget held the send back before any request (RATE_LIMITED); it
        # waits its turn without counting as an attempt, so a burst is paced, never failed
        self.paced = paced
        # progress to keep for the next attempt (container / upload id). Two keys mean something to Herald:
        # "in_flight": true — a post may already exist and the next attempt checks for it, so when automatic
        # attempts run out the delivery is unconfirmed, not failed; keys starting "guard_" are safety
        # markers that Herald drops when the team explicitly resends (/retry <post> <account>).
        self.resume = resume or {}


@dataclass(frozen=True)
class ConnectSpec:
    """What `/connect <network>` takes: required and optional keys, and which of them are secret."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    secret: tuple[str, ...] = ()
    help: str = ""


@dataclass(frozen=True)
class ReadBudget:
    """How many metric readings one account may take per window (handlers/engagement/metrics.py)."""

    posts: int  # readings per account ...
    window: timedelta  # ... per this much time


@dataclass(frozen=True)
class PostingWindow:
    """Hours [start, end) on some weekdays (0 = Monday), in the audience's local time."""

    days: tuple[int, ...]
    start: int
    end: int


@dataclass(frozen=True)
class NetworkProfile:
    """Everything Herald's handlers know about one network, declared by its connector beside its limits.

    `text` is what the generic check measures (the connector adds its own problems); `best_times` are general
    best-time defaults from the study /besttime names (empty: its overall finding); `read_budget` None gets the
    modest default; `hosts` are the network's own sites (never UTM-tagged, with their subdomains) and
    `site_names` its names under any country domain (pinterest.fr, youtube.co.uk).
    """

    key: str  # x, mastodon, …
    label: str  # how the team reads its name: X, Mastodon, …
    text: TextRules
    aliases: tuple[str, ...] = ()  # other words /connect and friends accept for it: twitter, fb, …
    read_budget: ReadBudget | None = None
    # how many posts' sharers (who reposted / quoted it) one account may read per window; declared only by the
    # connectors whose fetch_shares reads them (None: the network can't say who shared)
    share_budget: ReadBudget | None = None
    best_times: tuple[PostingWindow, ...] = ()
    hosts: frozenset[str] = frozenset()
    site_names: frozenset[str] = frozenset()
    # how long the network refuses a text identical to one the account already posted (the evergreen queue never
    # resends one within it); None: the network takes identical posts
    duplicate_window: timedelta | None = None
    # a thread goes out natively: each part a reply to the part before (X, Bluesky, Mastodon, Threads); elsewhere the
    # parts are joined into one post where that fits, else only the first part goes
    threads: bool = False
    # the account can post the first comment under its own post (Instagram, Facebook, LinkedIn, YouTube); a network
    # with `threads` posts it as a reply when the team asks (/comment <post> replies on)
    first_comment: bool = False
    # the connector keeps an organic post to the country of its delivery's audience (`Outgoing.country`): Facebook
    # Page posts' `targeting`, LinkedIn organization posts' target audience; elsewhere a post with an audience
    # reaches all the account's followers
    country_targeting: bool = False
    # when only some accounts of the network can: (settings key, value prefix, who can) — LinkedIn targets
    # organization pages' posts (author urn:li:organization:…), not a member's
    country_targeting_only: tuple[str, str, str] | None = None

    def keeps_to_country(self, settings: Mapping[str, Any]) -> bool:
        """Whether a post of the account with these settings is kept to its audience's country."""
        if not self.country_targeting:
            return False
        if self.country_targeting_only is None:
            return True
        key, prefix, _who = self.country_targeting_only
        return str(settings.get(key) or "").startswith(prefix)


class Network(Protocol):
    @property
    def key(self) -> str: ...  # the network's key: x, mastodon, …

    @property
    def profile(self) -> NetworkProfile: ...

    @property
    def label(self) -> str: ...

    @property
    def idempotent(self) -> bool: ...  # True when the network itself dedupes a retried send

    @property
    def connect_spec(self) -> ConnectSpec: ...

    def check(self, account: AccountView, text: str, media_count: int) -> LimitCheck: ...

    def measure(self, text: str, media_count: int, *, max_characters: int | None = None) -> LimitCheck:
        """The text by the network's own rules alone, no account (a sandbox account `like=` this network)."""
        ...

    def remote_id_from_url(self, account: AccountView, url: str) -> str | None:
        """The network's id of a post from its public link (the team's /confirm), or None if it can't be read."""
        ...

    async def verify(self, account: AccountView) -> str | Verified:
        """Check the credentials against the network (PublishError AUTH_EXPIRED when wrong,
        ValueError for a bad setting) and say who the account is."""
        ...

    async def publish(self, account: AccountView, post: Outgoing) -> Published: ...

    async def fetch_metrics(self, account: AccountView, remote_ids: list[str]) -> dict[str, Metrics]: ...

    async def fetch_comments(
        self, account: AccountView, remote_ids: list[str], since: datetime | None
    ) -> list[Comment]: ...

    async def refresh(self, account: AccountView) -> dict[str, Any] | None:
        """New credentials when the account's token needs refreshing now, else None.

        Raises PublishError(AUTH_EXPIRED) when the token is dead and only the team can fix it.
        """
        ...

    # -- answering comments (/reply) ------------------------------------------------------------

    def reply_refusal(self, account: AccountView) -> str | None:
        """Why Herald can't answer comments on this account's network, in plain words; None when it can."""
        ...

    def reply_text(self, account: AccountView, target: ReplyTarget, text: str) -> str:
        """The reply exactly as it will go out (Mastodon puts the commenter's @handle in front)."""
        ...

    def check_reply(self, account: AccountView, text: str) -> LimitCheck:
        """The reply's text measured the way this network counts a comment."""
        ...

    async def reply(self, account: AccountView, target: ReplyTarget, text: str) -> Published:
        """Answer the comment on the network; PublishError like publish (UNKNOWN_OUTCOME: it may be there)."""
        ...

    # -- unknown outcomes (after UNKNOWN_OUTCOME or a crash while sending) -------------------------

    async def look_for_post(self, account: AccountView, post: Outgoing, since: datetime) -> Found:
        """Ask the network whether this delivery, first tried at `since`, is live: its Published when it is,
        None when the network says for sure it isn't (so a normal retry can't post twice), CANT_TELL
        otherwise. Never sends anything that could make a second post."""
        ...

    # -- threads and first comments (handlers/posts/publishing/threads.py) ---------------------

    async def publish_follow_up(self, account: AccountView, follow: FollowUpOut) -> Published:
        """Post a thread part as a reply to the part before it, or the first comment under the post, by the
        network's own reply or comment call; PublishError like publish. A connector that can't says so with
        PublishError(REJECTED) (the default of bot/networks/http.py)."""
        ...

    async def look_for_follow_up(self, account: AccountView, follow: FollowUpOut, since: datetime) -> Found:
        """Like look_for_post, for a thread part or a comment whose answer was lost: found, surely not there
        (None), or CANT_TELL (the default)."""
        ...

    # -- how far a post spreads (handlers/engagement/spread.py) -----------------------------------

    async def fetch_shares(self, account: AccountView, remote_id: str) -> list[Share] | Unknown:
        """Who shared or quoted this published post (a page limit per list), with the quotes of its quotes one
        level down where the network can tell; CANT_TELL on a network whose API doesn't say who shared.
        PublishError like fetch_metrics (RATE_LIMITED with the wait the network names)."""
        ...


@dataclass(frozen=True)
class Series:
    """One line of a chart: a name and its (time, value) points."""

    name: str
    points: tuple[tuple[datetime, float], ...]


class Charts(Protocol):
    """Draws the pictures Herald sends into the chat (bot/charts.py, matplotlib). Returns PNG bytes."""

    def line(self, title: str, series: list[Series], *, ylabel: str = "", tz: str = "UTC") -> bytes: ...

    def bars(self, title: str, labels: list[str], values: dict[str, list[float]], *, ylabel: str = "",
             split: bool = False) -> bytes: ...


@dataclass(frozen=True)
class PreviewCard:
    """One account's post as a preview shows it: the account, its network, the text as sent, the link card."""

    account: str
    network: str
    text: str
    link: str | None


class Previews(Protocol):
    """Draws approximate previews of a post as each account shows it (bot/web/previews.py, Pillow): one card per
    account, stacked, with the post's first picture; labelled as approximate. Returns PNG bytes."""

    def sheet(self, cards: list[PreviewCard], picture: bytes | None) -> bytes: ...


class Networks(Protocol):
    def get(self, key: str) -> Network | None: ...

    def keys(self) -> list[str]: ...

    def profiles(self) -> list[NetworkProfile]:
        """Every connector's profile, in the order they were registered."""
        ...

    def profile(self, key: str) -> NetworkProfile | None: ...

    def label(self, key: str) -> str:
        """The network's label (its key when no connector has it)."""
        ...

    def resolve(self, word: str) -> str | None:
        """The network key a word names (its key or an alias, any case), or None."""
        ...


class Notifier(Protocol):
    async def send(self, chat: ChatAddress, reply: Reply) -> None: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


class Scheduler(Protocol):
    def arm(self, post_id: int, at: datetime) -> None: ...

    def disarm(self, post_id: int) -> None: ...


class FetchError(Exception):
    """A file at a web address couldn't be fetched; str() says why in plain words."""


class Fetcher(Protocol):
    async def fetch(self, url: str, *, max_bytes: int) -> MediaIn:
        """The file at `url` (http or https), at most `max_bytes`; FetchError says why not."""
        ...


# -- visits and conversions from the company site's analytics (handlers/engagement/traffic.py) ----------------


@dataclass(frozen=True)
class Traffic:
    """What a site's analytics counted for one `utm_content` value (one post) over the range asked:
    visits (sessions) and conversions (visitors who completed the goal; None when no goal is read)."""

    visits: int
    visitors: int
    conversions: int | None = None


class AnalyticsErrorKind(StrEnum):
    REFUSED = "refused"  # 401/403: wrong key or credentials, or no access to the site or property
    RATE_LIMITED = "rate_limited"  # 429: try again after retry_after
    BAD_ANSWER = "bad_answer"  # an answer that isn't the documented shape, or the service said the query is wrong
    UNREACHABLE = "unreachable"  # no answer: connection refused, timeout, 5xx


class AnalyticsError(Exception):
    """An analytics service's failure, in plain words (`reason`)."""

    def __init__(self, kind: AnalyticsErrorKind, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.retry_after = retry_after


@dataclass(frozen=True)
class AnalyticsQuery:
    """One read: sessions and goal conversions per utm_content of the links tagged utm_medium=`medium`, over
    [start, end] (whole days, the site's own time zone)."""

    start: date
    end: date
    medium: str = "social"


class Analytics(Protocol):
    """The site analytics Herald reads visits and conversions from (bot/analytics/: Plausible, GA4).

    `settings` are kept in the clear (url, site, property, goal), `secrets` sealed (a Plausible key, a GA4
    service account). Both methods raise AnalyticsError."""

    def providers(self) -> tuple[str, ...]: ...

    async def read(self, provider: str, settings: dict[str, Any], secrets: dict[str, Any],
                   query: AnalyticsQuery) -> dict[str, Traffic]:
        """utm_content value → its traffic."""
        ...
