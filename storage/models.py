"""Herald's memory: the SQLModel tables and the state rules of posts and deliveries.

Every table of ARCHITECTURE.md lives here, together with the two state machines
(`POST_TRANSITIONS`, `DELIVERY_TRANSITIONS`). A change of state goes through
`move_post` / `move_delivery`, which refuse anything the table does not allow with a
message a user understands.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as naive UTC and hands them back aware (SQLite forgets zones)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("Herald stores only timezone-aware datetimes")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_column(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class Role(StrEnum):
    ADMIN = "admin"
    EDITOR = "editor"
    APPROVER = "approver"
    VIEWER = "viewer"

    @property
    def with_article(self) -> str:
        """'an admin', 'a viewer': for sentences like "You're a viewer here"."""
        return ("an " if self.value[0] in "aeiou" else "a ") + self.value


class PostState(StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    CHANGES_REQUESTED = "changes_requested"
    APPROVED = "approved"
    SCHEDULED = "scheduled"
    PUBLISHING = "publishing"
    PUBLISHED = "published"
    PARTIALLY_PUBLISHED = "partially_published"
    FAILED = "failed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class DeliveryState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNCONFIRMED = "unconfirmed"


class Decision(StrEnum):
    APPROVE = "approve"
    CHANGES = "changes"
    REJECT = "reject"


class UnapprovedAction(StrEnum):
    HOLD = "hold"
    PUBLISH = "publish"


class ChatPurpose(StrEnum):
    TEAM = "team"
    APPROVALS = "approvals"
    REPORTS = "reports"


P = PostState
POST_TRANSITIONS: dict[PostState, frozenset[PostState]] = {
    P.DRAFT: frozenset({P.IN_REVIEW, P.APPROVED, P.CANCELLED, P.EXPIRED, P.PUBLISHING}),
    P.IN_REVIEW: frozenset(
        {P.APPROVED, P.CHANGES_REQUESTED, P.REJECTED, P.CANCELLED, P.EXPIRED, P.PUBLISHING}
    ),
    P.CHANGES_REQUESTED: frozenset({P.IN_REVIEW, P.CANCELLED, P.EXPIRED, P.PUBLISHING}),
    P.APPROVED: frozenset({P.SCHEDULED, P.PUBLISHING, P.IN_REVIEW, P.CANCELLED}),
    P.SCHEDULED: frozenset({P.APPROVED, P.PUBLISHING, P.IN_REVIEW, P.CANCELLED}),
    P.PUBLISHING: frozenset({P.PUBLISHED, P.PARTIALLY_PUBLISHED, P.FAILED}),
    P.PARTIALLY_PUBLISHED: frozenset({P.PUBLISHING, P.PUBLISHED}),
    P.FAILED: frozenset({P.PUBLISHING, P.PUBLISHED, P.PARTIALLY_PUBLISHED, P.CANCELLED}),
    P.EXPIRED: frozenset({P.DRAFT, P.IN_REVIEW, P.CANCELLED}),
    P.PUBLISHED: frozenset(),
    P.REJECTED: frozenset(),
    P.CANCELLED: frozenset(),
}

D = DeliveryState
DELIVERY_TRANSITIONS: dict[DeliveryState, frozenset[DeliveryState]] = {
    D.PENDING: frozenset({D.SENDING, D.FAILED}),
    D.SENDING: frozenset({D.SENT, D.FAILED, D.UNCONFIRMED, D.PENDING}),
    D.FAILED: frozenset({D.PENDING}),
    D.UNCONFIRMED: frozenset({D.PENDING, D.SENT, D.FAILED}),
    D.SENT: frozenset(),
}

POST_STATE_WORDS: dict[PostState, str] = {
    P.DRAFT: "a draft",
    P.IN_REVIEW: "waiting for approval",
    P.CHANGES_REQUESTED: "back with its author for changes",
    P.APPROVED: "approved",
    P.SCHEDULED: "scheduled",
    P.PUBLISHING: "being published right now",
    P.PUBLISHED: "already published",
    P.PARTIALLY_PUBLISHED: "partly published",
    P.FAILED: "failed to publish",
    P.REJECTED: "rejected",
    P.CANCELLED: "cancelled",
    P.EXPIRED: "expired (not approved in time)",
}

ACTION_WORDS: dict[PostState, str] = {
    P.DRAFT: "go back to draft",
    P.IN_REVIEW: "go to review",
    P.CHANGES_REQUESTED: "get a change request",
    P.APPROVED: "be approved",
    P.SCHEDULED: "be scheduled",
    P.PUBLISHING: "be published",
    P.PUBLISHED: "be marked published",
    P.PARTIALLY_PUBLISHED: "be marked partly published",
    P.FAILED: "be marked failed",
    P.REJECTED: "be rejected",
    P.CANCELLED: "be cancelled",
    P.EXPIRED: "expire",
}


class IllegalTransition(Exception):
    """A state change the transition table does not allow; str() is for the user."""


def move_post(post: Post, to: PostState) -> None:
    """Change a post's state if the table allows it, else raise IllegalTransition."""
    current = PostState(post.state)
    if to not in POST_TRANSITIONS[current]:
        raise IllegalTransition(
            f"Post #{post.id} is {POST_STATE_WORDS[current]}, so it can't {ACTION_WORDS[to]}."
        )
    post.state = to


def move_delivery(delivery: Delivery, to: DeliveryState) -> None:
    current = DeliveryState(delivery.state)
    if to not in DELIVERY_TRANSITIONS[current]:
        raise IllegalTransition(f"That delivery is {current.value}, so it can't become {to.value}.")
    delivery.state = to


class Workspace(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str
    timezone: str = "UTC"
    language: str = Field(default="en", sa_column_kwargs={"server_default": "en"})  # time words: en ru fr de es
    # who reads in a Discord server: "members" (people with a Herald role) or "open" (every member of the server)
    readers: str = Field(default="members", sa_column_kwargs={"server_default": "members"})
    approvals_needed: int = 1
    approver_roles: str = "admin,approver"
    self_approval: bool = False
    unapproved_action: str = UnapprovedAction.HOLD.value
    approval_deadline_minutes: int = 0
    paused: bool = False
    pause_reason: str | None = None
    paused_by: str | None = None
    paused_at: datetime | None = utc_column()
    # engagement (issue 6): digests in the workspace timezone, automatic post reports, alerts, links
    digest_cadence: str = "off"  # off | daily | weekly
    digest_at: str = "09:00"  # HH:MM in the workspace timezone
    digest_weekday: int = 0  # 0 = Monday (weekly digests)
    post_reports: str = "1h,24h,7d"  # after publishing; "" = none
    watch_words: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    alert_factor: float = 3.0  # a post "takes off" at this many times the usual engagement for its age
    utm: bool = True  # add utm_source/medium/campaign to links
    # the query parameter that names a delivery's audience in its tagged links (/utm audience=…); "" = none
    utm_audience: str = Field(default="utm_term", sa_column_kwargs={"server_default": "utm_term"})
    # Herald's own short links (/links, handlers/posts/shortlinks.py): on by default, used only when HERALD_PUBLIC_URL
    # is set
    short_links: bool = True
    # how far posts spread (handlers/engagement/spread.py): someone with at least this many followers sharing or
    # quoting a post alerts the team (0: off); a quote holding these words reads as praise (watch words: complaint)
    spread_alert_followers: int = Field(default=10_000, sa_column_kwargs={"server_default": "10000"})
    praise_words: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    # recurring posts (/repeat): "once" = the series' post is approved once for every occurrence, "each" = every
    # occurrence is approved on its own (/policy series=once|each)
    series_approval: str = Field(default="once", sa_column_kwargs={"server_default": "once"})
    created_at: datetime | None = utc_column()
    # crisis mode (issue 19): the Crisis under way (None: none), the holding statement's template and the alert
    # factor while it lasts
    crisis_id: int | None = None
    crisis_template: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    crisis_alert_factor: float = Field(default=1.5, sa_column_kwargs={"server_default": "1.5"})
    # the plan on the web (issue 17): whether an outside reviewer's approval (/review) counts toward the approvals
    # a post needs (/policy outside=count|advice), and how long a review link lives (/policy review_days=N)
    outside_approvals: bool = True
    review_days: int = Field(default=7, sa_column_kwargs={"server_default": "7"})

    def approver_role_set(self) -> set[str]:
        return {r for r in self.approver_roles.split(",") if r}


class ChatLink(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("platform", "chat_id", name="uq_chatlink_chat"),)
    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    platform: str
    chat_id: str
    space: str = Field(default="", index=True)  # the server the chat belongs to (Discord guild id)
    title: str = ""
    purposes: str = "team,approvals,reports"
    created_at: datetime | None = utc_column()

    def serves(self, purpose: str) -> bool:
        return purpose in self.purposes.split(",")


class Member(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("workspace_id", "platform", "user_id", name="uq_member_user"),)
    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    platform: str
    user_id: str
    name: str
    role: str = Role.VIEWER.value
    created_at: datetime | None = utc_column()


class Account(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("workspace_id", "name", name="uq_account_name"),)
    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    network: str
    name: str
    base_url: str | None = None
    # Fernet ciphertext of a JSON object; never shown (repr=False) and never decrypted in logs.
    credentials: bytes | None = Field(default=None, sa_column=Column(LargeBinary), repr=False)
    settings: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    health: str = "ok"
    health_note: str | None = None
    checked_at: datetime | None = utc_column()  # last time its credentials were verified with the network
    slots: str = ""
    timezone: str | None = None
    created_at: datetime | None = utc_column()

    def slot_list(self) -> list[str]:
        return [s for s in self.slots.split(",") if s]


POST_VERSION = Column("version", Integer, nullable=False)


class Post(SQLModel, table=True):
    # Optimistic locking: every ORM update of a post checks and bumps `version`, so a write based on a
    # stale read (e.g. /cancel racing another worker's claim) fails with StaleDataError instead of
    # silently overwriting. Core UPDATEs (the claim) bump it themselves.
    __mapper_args__ = {"version_id_col": POST_VERSION}
    # /queue reads one workspace's waiting posts in time order; the sweep and the scheduler's window read
    # posts of some states due before a time (bench/: both scanned every post by due_at without these)
    __table_args__ = (
        Index("ix_post_workspace_state_due", "workspace_id", "state", "due_at"),
        Index("ix_post_state_due", "state", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    version: int | None = Field(default=None, sa_column=POST_VERSION)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    author_platform: str
    author_user_id: str
    author_name: str
    # who wrote the current revision (an edit makes the editor an author for self-approval)
    editor_platform: str | None = None
    editor_user_id: str | None = None
    text: str = Field(sa_column=Column(Text, nullable=False))
    link: str | None = None
    campaign: str | None = Field(default=None, index=True)
    media: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # Media ids, in order
    variants: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # variants written before the main text's last edit: the card marks them until they are written again
    stale_variants: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False,
                                                                         server_default="[]"))
    # links the team marked keep=: they go out as written, never shortened (legal or partner links)
    keep_links: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]"))
    revision: int = 1
    sent_revision: int | None = None  # the revision that went out when publishing started
    state: str = Field(default=PostState.DRAFT.value, index=True)
    due_at: datetime | None = utc_column(index=True)
    due_tz: str | None = None
    # scheduled at a wall-clock time in each audience's zone (/schedule <post> tue 9:00 local): that local time as
    # "YYYY-MM-DD HH:MM"; due_at is then the earliest of the deliveries' own times
    due_local: str | None = None
    held_note: str | None = None
    published_at: datetime | None = utc_column(index=True)  # reports, digests, exports, post reports
    created_at: datetime | None = utc_column()
    updated_at: datetime | None = utc_column()
    # a thread: the parts after the first (the first is `text`), in order; [] for a single post
    parts: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]"))
    # the first comment posted under the post right after it (Instagram, Facebook, LinkedIn, YouTube), and as a
    # reply on the networks with threads (X, Bluesky, Mastodon, Threads) when `comment_replies`
    comment: str | None = Field(default=None, sa_column=Column(Text))
    comment_replies: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=false()))


class FollowUpKind(StrEnum):
    PART = "part"  # a later part of a thread, replying to the part before it
    COMMENT = "comment"  # the first comment under the post


class FollowUp(SQLModel, table=True):
    """One thread part (after the first) or the first comment of one delivery: claimed (pending → sending) before
    its network call, its remote id stored the moment the network answers, before the next one is sent."""

    __table_args__ = (UniqueConstraint("delivery_id", "kind", "number", name="uq_followup_step"),)

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="delivery.id", index=True)
    kind: str  # FollowUpKind
    number: int  # a part's number in the thread (2, 3, …); 0 for the comment
    text: str = Field(sa_column=Column(Text, nullable=False))
    state: str = Field(default=DeliveryState.PENDING.value, index=True)  # DeliveryState's values
    idempotency_key: str = Field(unique=True)
    remote_id: str | None = None
    remote_url: str | None = None
    attempts: int = 0
    error_kind: str | None = None
    last_error: str | None = None
    not_before: datetime | None = utc_column()
    claimed_at: datetime | None = utc_column()
    claimed_by: str | None = None
    sent_at: datetime | None = utc_column()


class Audience(SQLModel, table=True):
    """A group a campaign is tailored to (a region, a market, a segment): the accounts that reach it, its zone
    (posts can go out at 9:00 *its* time), its language, its landing page and its country (public holidays,
    geo-targeting where a network offers it)."""

    __table_args__ = (UniqueConstraint("workspace_id", "name", name="uq_audience_name"),)
    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    name: str  # lower case, letters, digits and - _ (it is written as audience:<name> in commands)
    timezone: str  # IANA, e.g. Europe/Madrid
    language: str  # ISO 639-1, e.g. es
    link: str | None = None  # the landing page: replaces the post's link= for this audience
    country: str | None = None  # ISO 3166-1 alpha-2, e.g. ES
    notes: str | None = None  # free-form: "hot climate, 18-34"
    created_at: datetime | None = utc_column()
    # /audience remove: kept for the reports of posts that reached it, no longer offered or targeted
    removed_at: datetime | None = utc_column()


class AudienceAccount(SQLModel, table=True):
    """An account that reaches an audience; an account may reach several audiences."""

    __table_args__ = (UniqueConstraint("audience_id", "account_id", name="uq_audience_account"),)
    id: int | None = Field(default=None, primary_key=True)
    audience_id: int = Field(foreign_key="audience.id", index=True)
    account_id: int = Field(foreign_key="account.id", index=True)


class Delivery(SQLModel, table=True):
    __table_args__ = (
        # one delivery per (post, account, audience): an account that reaches two audiences of a post gets each
        # audience's version once (no audience counts as 0, so the NULLs can't repeat a target)
        Index("uq_delivery_target", "post_id", "account_id", text("coalesce(audience_id, 0)"), unique=True),
        # an account's sends in time order (the take-off alert's baseline of earlier posts: 3.2 s → 1.6 s a run
        # at 100,000 posts on PostgreSQL, bench/)
        Index("ix_delivery_account_sent", "account_id", "sent_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(foreign_key="post.id", index=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    # the audience this delivery reaches (its variant, landing page, utm_term and local time); None: no audience
    audience_id: int | None = Field(default=None, foreign_key="audience.id", index=True)
    # its own time when the post goes out at each audience's local time (/schedule … local); None: the post's due_at
    due_at: datetime | None = utc_column(index=True)
    state: str = Field(default=DeliveryState.PENDING.value, index=True)
    idempotency_key: str = Field(unique=True)
    text: str | None = Field(default=None, sa_column=Column(Text))
    remote_id: str | None = None
    remote_url: str | None = None
    attempts: int = 0
    auto_attempts: int = 0  # sends since the last human decision; automatic retries stop at a cap
    error_kind: str | None = None
    last_error: str | None = None
    not_before: datetime | None = utc_column()
    claimed_at: datetime | None = utc_column()
    claimed_by: str | None = None
    sent_at: datetime | None = utc_column()
    metrics_due_at: datetime | None = utc_column(index=True)
    # the inbox (handlers/inbox.py): when to read its comments next, and up to when they were read
    comments_due_at: datetime | None = utc_column()
    comments_read_at: datetime | None = utc_column()
    updated_at: datetime | None = utc_column()
    # what an earlier attempt left on a two-phase network (container / upload id), to resume from
    resume: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}"))


class Approval(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(foreign_key="post.id", index=True)
    revision: int
    platform: str
    user_id: str
    name: str
    decision: str
    note: str | None = None
    created_at: datetime | None = utc_column()


class AuditEvent(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    post_id: int | None = Field(default=None, foreign_key="post.id", index=True)
    actor: str
    action: str
    detail: str = ""
    created_at: datetime | None = utc_column()


class MetricSnapshot(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="delivery.id", index=True)
    taken_at: datetime | None = utc_column(index=True)
    likes: int | None = None
    comments: int | None = None
    shares: int | None = None
    quotes: int | None = None
    impressions: int | None = None
    clicks: int | None = None
    saves: int | None = None
    followers: int | None = None  # the account's audience at reading time (the rate's denominator without views)
    shown_at: datetime | None = utc_column()  # last shown to the team (/stats, a post report): "change since"


class Media(SQLModel, table=True):
    """An image or video a team member handed in, kept in the database so every worker can send it."""

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    filename: str
    content_type: str
    size: int
    sha256: str = Field(index=True)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False), repr=False)
    added_by: str = ""
    created_at: datetime | None = utc_column()


class LinkCode(SQLModel, table=True):
    """A one-time code from /link that lets another chat join a workspace."""

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    code_hash: str = Field(unique=True)
    created_by: str
    purposes: str = "team,approvals,reports"
    expires_at: datetime | None = utc_column()
    used_at: datetime | None = utc_column()
    used_by_chat: str | None = None
    created_at: datetime | None = utc_column()


class InboxItem(SQLModel, table=True):
    """A comment or reply on a published delivery, pulled from its network for the team's inbox."""

    __table_args__ = (UniqueConstraint("delivery_id", "remote_id"),)
    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    delivery_id: int = Field(foreign_key="delivery.id", index=True)
    remote_id: str
    parent_remote_id: str = ""
    author: str = ""
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    url: str | None = None
    posted_at: datetime | None = utc_column()
    fetched_at: datetime | None = utc_column(index=True)
    forwarded_at: datetime | None = utc_column(index=True)  # shown in the team chat (claimed once)
    watch_hit: str | None = None  # the watch words it matched
    # the team's answer (handlers/replies.py): None | awaiting_approval | approved | sending | sent | failed |
    # unconfirmed | rejected; approved → sending is the send's claim (one conditional UPDATE)
    reply_state: str | None = Field(default=None, index=True)
    reply_text: str | None = Field(default=None, sa_column=Column(Text))
    reply_by: str | None = None  # who wrote the reply (their name)
    reply_by_user: str | None = None  # "platform:user_id" of who wrote it, for the self-approval rule
    reply_version: int = 0  # bumped when the reply's text is replaced: its older approval buttons go stale
    reply_remote_id: str | None = None
    reply_url: str | None = None
    reply_error: str | None = None
    reply_approvals: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    replied_at: datetime | None = utc_column()


class SentOnce(SQLModel, table=True):
    """A notice that must go out once however many workers run (a digest, a post report, an alert).

    Inserting the row is the claim: the primary key makes a second worker's insert fail.
    """

    key: str = Field(primary_key=True)
    worker: str = ""
    created_at: datetime | None = utc_column()


class SandboxPost(SQLModel, table=True):
    """What the sandbox network 'published': Herald's stand-in for a real network's servers."""

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    idempotency_key: str = Field(unique=True)
    text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime | None = utc_column()


class Crisis(SQLModel, table=True):
    """One spell of crisis mode in a workspace (Workspace.crisis_id names the one under way).

    It keeps what it changed so /crisis end puts it back: the approval policy and the alert factor. Only posts
    with an approval whose id is above `approvals_before` (given after it started) may go out while it lasts.
    """

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    started_by: str
    started_at: datetime | None = utc_column()
    resume_at: datetime | None = utc_column(index=True)  # ends by itself then (None: only /crisis end)
    approvals_before: int = 0  # the highest Approval id when it started
    saved_approvals_needed: int = 1
    saved_alert_factor: float = 3.0
    statement_post_id: int | None = Field(default=None, foreign_key="post.id")
    ended_at: datetime | None = utc_column()
    ended_by: str | None = None
    told_end_at: datetime | None = utc_column()  # the end's notice (the held list) reached the team


class SeriesState(StrEnum):
    ACTIVE = "active"
    STOPPED = "stopped"
    ENDED = "ended"  # the rule has no date left


class Series(SQLModel, table=True):
    """A recurring post (/repeat): a template post and an RFC 5545 rule read in `timezone` from `start_local`.

    Each occurrence is an ordinary post (a copy of the template) created ahead of its time; see `Occurrence`.
    """

    __table_args__ = (UniqueConstraint("template_post_id", name="uq_series_template"),)
    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    template_post_id: int = Field(foreign_key="post.id")
    rule: str = Field(sa_column=Column(Text, nullable=False))  # RRULE:… (no DTSTART; that is start_local)
    start_local: str  # the rule's first moment, wall-clock time in `timezone`: 2026-11-24T09:00:00
    timezone: str
    approval: str = "once"  # once | each: copied from the workspace's /policy when the series is made
    state: str = Field(default=SeriesState.ACTIVE.value, index=True)
    created_by: str = ""
    created_at: datetime | None = utc_column()
    stopped_at: datetime | None = utc_column()


class Occurrence(SQLModel, table=True):
    """One date of a series: its post once created, or skipped. The unique date is the claim: one post per date,
    however many workers fill the window at once."""

    __table_args__ = (UniqueConstraint("series_id", "occurs_at", name="uq_occurrence_date"),)
    id: int | None = Field(default=None, primary_key=True)
    series_id: int = Field(foreign_key="series.id", index=True)
    occurs_at: datetime | None = utc_column(nullable=False)
    post_id: int | None = Field(default=None, foreign_key="post.id", index=True)
    skipped: bool = False
    edited: bool = False  # changed on its own (/repeat … edit <date>): edits of the series pass it by
    template_revision: int = 0  # the template's revision its content was copied from
    created_at: datetime | None = utc_column()


class EvergreenItem(SQLModel, table=True):
    """A published post in the evergreen library (/evergreen): Herald reposts it into free posting slots."""

    __table_args__ = (UniqueConstraint("post_id", name="uq_evergreen_post"),)
    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    post_id: int = Field(foreign_key="post.id")
    # other wordings to rotate through, after the text as first published
    texts: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    cooldown_days: int = 30  # at least this long between two runs on one account
    max_cycles: int = 0  # runs per account at most; 0 = no limit
    active: bool = True
    added_by: str = ""
    added_at: datetime | None = utc_column()


class EvergreenRun(SQLModel, table=True):
    """One repost of a library post into one account's slot: the unique slot is the claim (one run per slot)."""

    __table_args__ = (UniqueConstraint("account_id", "slot_at", name="uq_evergreen_slot"),)
    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="evergreenitem.id", index=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    slot_at: datetime | None = utc_column(nullable=False)
    post_id: int = Field(foreign_key="post.id")
    wording: int = 0  # which text: 0 = as first published, 1… = the item's other wordings
    created_at: datetime | None = utc_column()


METRIC_FIELDS: tuple[str, ...] = ("likes", "comments", "shares", "quotes", "impressions", "clicks", "saves")


class ImportState(StrEnum):
    PENDING = "pending"  # dry run done, waiting for /import confirm or /import cancel
    CONFIRMED = "confirmed"  # its posts were created
    CANCELLED = "cancelled"


class PlanImport(SQLModel, table=True):
    """A CSV plan handed to /import: its dry run, kept until /import confirm creates the posts (or cancel).

    `rows` are the good rows, already checked and resolved (text, variants, accounts, time, media), so confirm
    creates exactly what the dry run showed; `errors` are the refused rows' messages. `imported_hash` is the
    file's hash once confirmed: unique per workspace, so the same file can't be imported twice, even by two
    confirms at the same moment.
    """

    __table_args__ = (UniqueConstraint("workspace_id", "imported_hash", name="uq_planimport_file"),)
    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    filename: str
    content_hash: str = Field(index=True)  # sha256 of the file's bytes
    imported_hash: str | None = None
    encoding: str = ""
    state: str = Field(default=ImportState.PENDING.value, index=True)
    submit: bool = False  # the /import option: rows are submitted for approval unless their own column says no
    rows: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    errors: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    post_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_by: str = ""
    author_platform: str = ""
    author_user_id: str = ""
    decided_by: str | None = None
    created_at: datetime | None = utc_column()
    decided_at: datetime | None = utc_column()


class ShareKind(StrEnum):
    REPOST = "repost"  # shared as it is (a retweet, a boost, a repost)
    QUOTE = "quote"  # shared with their own words


class Amplifier(SQLModel, table=True):
    """Someone else who shared or quoted a published post, or (one level down, `via` set) quoted a quote of it.

    One row per post and amplifier on a network: read again, the row is brought up to date (their followers, the
    quote's engagement); someone who reposted and later quoted keeps the quote."""

    __table_args__ = (
        UniqueConstraint("post_id", "network", "who", name="uq_amplifier_post_who"),
        Index("ix_amplifier_workspace_seen", "workspace_id", "first_seen_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id")
    post_id: int = Field(foreign_key="post.id", index=True)
    delivery_id: int = Field(foreign_key="delivery.id", index=True)
    network: str
    who: str  # their stable id on the network (user id, DID, account id)
    handle: str
    kind: str = ShareKind.REPOST.value
    followers: int | None = None
    shared_at: datetime | None = utc_column()
    remote_id: str = ""  # the quote's own id on the network
    text: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    url: str | None = None
    engagement: int | None = None  # the quote's own likes + replies + reposts + quotes
    via: str = ""  # second degree: the remote id of the quote they quoted
    first_seen_at: datetime | None = utc_column()
    updated_at: datetime | None = utc_column(index=True)  # the alerts look at the rows read lately
    alerted_at: datetime | None = utc_column()  # the big-account alert went out (claimed once)
    inbox_item_id: int | None = Field(default=None, foreign_key="inboxitem.id")  # the quote in the inbox (/reply)


class ShareReading(SQLModel, table=True):
    """One reading of who shared a delivery (the share budget counts them), or, with `wait_until`, the wait a
    network named in a 429 for the account's share readings."""

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    delivery_id: int | None = Field(default=None, foreign_key="delivery.id", index=True)
    taken_at: datetime | None = utc_column(index=True)
    total: int | None = None  # the shares + quotes the metrics showed when it was read
    found: int = 0  # amplifiers the network listed
    wait_until: datetime | None = utc_column()


class ShortLink(SQLModel, table=True):
    """One of Herald's short links, `<public url>/r/<code>`: the tagged target one link of one delivery (post ×
    account) goes to. Made when the delivery's text is rendered, so the card shows what goes out; a code is
    random (`secrets`), never reused, and redirects only to the target stored here. It outlives its post unless
    revoked (/links revoke)."""

    __table_args__ = (Index("uq_shortlink_target", "post_id", "account_id", text("coalesce(audience_id, 0)"), "target",
                            unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True)
    workspace_id: int = Field(index=True)  # no foreign keys: a link keeps answering after its post is gone
    post_id: int = Field(index=True)
    account_id: int = Field(index=True)
    audience_id: int | None = None  # the delivery's audience: clicks count per audience
    target: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime | None = utc_column()
    revoked_at: datetime | None = utc_column()


class Click(SQLModel, table=True):
    """Clicks on a short link: one row a click (count 1), or one row a minute for a flood (count > 1, no visitor).
    `visitor` is a keyed hash of the address and browser whose key changes every day, never the address;
    `fetcher` names a link-preview robot (Twitterbot, …), None for a person."""

    __table_args__ = (Index("ix_click_link_visitor_at", "link_id", "visitor", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    link_id: int = Field(index=True)
    at: datetime | None = utc_column(index=True)
    visitor: str | None = None
    fetcher: str | None = None
    count: int = 1


class ClickKey(SQLModel, table=True):
    """The day's random key that hashes visitors (shared by every worker); keys older than yesterday are deleted,
    so yesterday's hashes can't be recomputed from an address."""

    day: str = Field(primary_key=True)  # YYYY-MM-DD (UTC)
    key: str


class CalendarLink(SQLModel, table=True):
    """A secret address of a workspace's plan on the web (/calendar): its pages and its ICS feed, narrowed to one
    campaign when `campaign` is set. `/calendar revoke` revokes every one of the workspace's and makes a new one;
    a revoked token answers 404."""

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    campaign: str | None = None
    audience_id: int | None = None  # narrowed to the posts that reach this audience, in its zone (/calendar audience:…)
    token: str = Field(unique=True)
    created_by: str = ""
    created_at: datetime | None = utc_column()
    revoked_at: datetime | None = utc_column()


class ReviewLink(SQLModel, table=True):
    """A link for one outside reviewer of one revision of one post (/review): its signed token carries `nonce`.
    It works until `expires_at`, for one decision (`used_at`), while the post is still at `revision`, unless
    revoked."""

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    post_id: int = Field(foreign_key="post.id", index=True)
    revision: int
    reviewer: str
    nonce: str = Field(unique=True)
    created_by: str = ""
    created_at: datetime | None = utc_column()
    expires_at: datetime | None = utc_column()
    used_at: datetime | None = utc_column()
    revoked_at: datetime | None = utc_column()
    decision: str | None = None
class AnalyticsSource(SQLModel, table=True):
    """The company site's analytics a workspace reads visits and conversions from (/analytics): one a workspace.
    `settings` in the clear (url, site, property, goal), `credentials` sealed like an account's (a Plausible key,
    a GA4 service account)."""

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", unique=True)
    provider: str  # plausible or ga4
    settings: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    credentials: bytes | None = Field(default=None, sa_column=Column(LargeBinary), repr=False)
    connected_at: datetime | None = utc_column()
    read_at: datetime | None = utc_column()  # the last successful read
    due_at: datetime | None = utc_column(index=True)  # the next read (claimed by pushing it ahead)
    note: str | None = None  # why the last read failed, until one succeeds


class PostTraffic(SQLModel, table=True):
    """Visits and conversions the site's analytics counted for one delivery's links (utm_content=post-<n>-<account>)
    since it was published, as last read: a post's rows are replaced by each read. `account` is the account's name
    as the tag has it ("" for a link tagged post-<n> alone, or a post no visit came from)."""

    __table_args__ = (UniqueConstraint("workspace_id", "post_id", "account", name="uq_posttraffic_delivery"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(index=True)
    post_id: int = Field(index=True)
    account: str = ""
    visits: int = 0
    visitors: int = 0
    conversions: int | None = None  # None: no goal was read
    read_at: datetime | None = utc_column()
