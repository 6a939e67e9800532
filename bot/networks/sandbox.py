"""The sandbox network: try Herald end to end with no social accounts.

`/connect sandbox name=<name> [like=x|bluesky|mastodon|…] [fail=…] [max_characters=N] [token=…]`

- It "publishes" into Herald's own database (table `sandboxpost`), deduplicating by the
  delivery's idempotency key like Mastodon's `Idempotency-Key`, so a retry can't post twice.
- `like=` makes it check text by another network's rules (X weighted length, Bluesky graphemes, Instagram
  hashtags…), asking that network's own connector in the directory, so a team can rehearse a campaign before
  connecting the real accounts.
- Its engagement is deterministic: a function of the post's id and age, growing like a real post's.
- `fail=` rehearses what goes wrong: `reject` (the network refuses the content), `auth` (expired
  token), `rate_limit` (429 with retry-after 60 s), `down` (unreachable before sending), and
  `timeout` (the post lands but the answer never comes: outcome unknown).
- Its comments come from a small cast of fans: the first 3–7 minutes after a post, then one every 2–5
  hours. `/reply` answers them: the reply is kept in the same table (deduplicated by the reply's key),
  checked by the `like=` network's text rules, and `fail=` rehearses a reply's failures too.
- `token=` is optional and stored encrypted like any credential; the sandbox refuses the
  literal token `invalid`, to rehearse a wrong credential at connect time.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import select

from handlers.core.counting import LimitCheck, TextRules, check_rules
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
    Network,
    NetworkProfile,
    Networks,
    Outgoing,
    Published,
    PublishError,
    ReplyTarget,
    Share,
    Unknown,
)
from storage.db import Database
from storage.models import SandboxPost

FAIL_MODES = ("reject", "auth", "rate_limit", "down", "timeout")
URL_BASE = "https://sandbox.herald.invalid"


class SandboxNetwork:
    key = "sandbox"
    label = "Sandbox"
    idempotent = True
    # threads and first comments, so a team can try both before connecting a real network
    profile = NetworkProfile(key="sandbox", label="Sandbox", text=TextRules(5000, max_images=10), threads=True,
                             first_comment=True)
    connect_spec = ConnectSpec(
        required=(),
        optional=("like", "fail", "max_characters"),
        secret=("token",),
        help=(
            "A pretend network for trying Herald. like=x|bluesky|mastodon|… checks text by that network's rules; "
            f"fail={'|'.join(FAIL_MODES)} rehearses a failure. Example: /connect sandbox name=brand-x like=x"
        ),
    )

    def __init__(self, db: Database, clock: Clock, networks: Networks) -> None:
        self.db = db
        self.clock = clock
        self.networks = networks  # the directory: the `like=` network's connector checks the text

    def _rules(self, account: AccountView) -> tuple[Network | None, int | None]:
        """The connector whose text rules the account follows (None: the sandbox's own), and its own limit."""
        like = self.networks.resolve(str(account.settings.get("like") or "sandbox"))
        limit = account.settings.get("max_characters")
        network = self.networks.get(like) if like not in (None, self.key) else None
        return network, int(limit) if limit else None

    def measure(self, text: str, media_count: int, *, max_characters: int | None = None) -> LimitCheck:
        return check_rules(self.key, self.profile.label, self.profile.text, text, media_count=media_count,
                           max_characters=max_characters)

    def check(self, account: AccountView, text: str, media_count: int) -> LimitCheck:
        like, limit = self._rules(account)
        return (like or self).measure(text, media_count, max_characters=limit)

    async def verify(self, account: AccountView) -> str:
        like = str(account.settings.get("like") or "sandbox").lower()
        if like not in self.networks.keys():  # noqa: SIM118 (the Networks port is no dict)
            raise ValueError(f"like={like} isn't a network. Use one of: {', '.join(self.networks.keys())}")
        fail = account.settings.get("fail")
        if fail is not None and fail not in FAIL_MODES:
            raise ValueError(f"fail={fail} isn't a failure I can rehearse. Use one of: {', '.join(FAIL_MODES)}")
        limit = account.settings.get("max_characters")
        if limit is not None and (not str(limit).isdigit() or not 1 <= int(limit) <= 100_000):
            raise ValueError("max_characters must be a whole number from 1 to 100000")
        if account.credentials.get("token") == "invalid":
            raise PublishError(ErrorKind.AUTH_EXPIRED, "the sandbox refused token 'invalid'")
        return f"sandbox account with {self.networks.label(like)} rules"

    @staticmethod
    def _rehearse_before(account: AccountView, what: str, many: str) -> None:
        """The `fail=` modes that refuse a send (`what`: "post" or "reply", `many` its plural) before anything
        is stored."""
        fail = account.settings.get("fail")
        if fail == "down":
            raise PublishError(ErrorKind.TRANSIENT, "the sandbox was unreachable (fail=down); nothing was sent")
        if fail == "rate_limit":
            raise PublishError(ErrorKind.RATE_LIMITED, f"the sandbox said: too many {many} (fail=rate_limit)",
                               retry_after=60.0)
        if fail == "auth":
            raise PublishError(ErrorKind.AUTH_EXPIRED, "the sandbox token has expired (fail=auth)")
        if fail == "reject":
            raise PublishError(ErrorKind.REJECTED, f"the sandbox refuses every {what} (fail=reject)")

    @staticmethod
    def _rehearse_after(account: AccountView, what: str) -> None:
        """`fail=timeout`: the send was stored, but its answer is lost."""
        if account.settings.get("fail") == "timeout":
            raise PublishError(ErrorKind.UNKNOWN_OUTCOME,
                               f"no answer came back within 30 seconds (fail=timeout), after the {what} was sent")

    def _store_once(self, account: AccountView, key: str, text: str) -> str:
        """Store a post (or thread part, or comment) once per idempotency key; its id, the same for a resend."""
        with self.db.session() as session:
            row = session.exec(select(SandboxPost).where(SandboxPost.idempotency_key == key)).first()
            if row is None:
                row = SandboxPost(account_id=account.id, idempotency_key=key, text=text, created_at=self.clock.now())
                session.add(row)
                session.flush()
            return str(row.id)

    async def publish(self, account: AccountView, post: Outgoing) -> Published:
        self._rehearse_before(account, "post", "posts")
        check = self.check(account, post.text, len(post.media))
        if not check.ok:
            raise PublishError(ErrorKind.REJECTED, "; ".join(check.problems))
        remote_id = self._store_once(account, post.idempotency_key, post.text)
        self._rehearse_after(account, "post")
        return Published(remote_id=remote_id, url=f"{URL_BASE}/{account.name}/{remote_id}")

    async def look_for_post(self, account: AccountView, post: Outgoing, since: datetime) -> Found:
        """Can't tell: `fail=timeout` is there so a team can rehearse an unconfirmed send (/confirm, /retry)."""
        return CANT_TELL

    async def publish_follow_up(self, account: AccountView, follow: FollowUpOut) -> Published:
        """A thread part (a reply to the part before) or the first comment, stored once per idempotency key like
        a post, with the same `fail=` rehearsals."""
        what = "comment" if follow.kind == "comment" else "thread part"
        self._rehearse_before(account, what, what + "s")
        check = self.check(account, follow.text, 0)
        if not check.ok:
            raise PublishError(ErrorKind.REJECTED, "; ".join(check.problems))
        remote_id = self._store_once(account, follow.idempotency_key, follow.text)
        self._rehearse_after(account, what)
        return Published(remote_id=remote_id, url=f"{URL_BASE}/{account.name}/{follow.root_id}#{remote_id}")

    async def look_for_follow_up(self, account: AccountView, follow: FollowUpOut, since: datetime) -> Found:
        return CANT_TELL

    async def fetch_shares(self, account: AccountView, remote_id: str) -> list[Share] | Unknown:
        """Can't tell: nobody else reads the sandbox, so nobody shares its posts."""
        return CANT_TELL

    async def fetch_metrics(self, account: AccountView, remote_ids: list[str]) -> dict[str, Metrics]:
        now = self.clock.now()
        ids = [int(r) for r in remote_ids if r.isdigit()]
        with self.db.session() as session:
            rows = session.exec(select(SandboxPost).where(SandboxPost.id.in_(ids))).all()  # type: ignore[union-attr]
            found = {str(row.id): row for row in rows if row.account_id == account.id}
        readings = {}
        for remote_id, row in found.items():
            assert row.created_at is not None
            minutes = max(0.0, (now - row.created_at).total_seconds() / 60)
            readings[remote_id] = engagement(f"{account.name}:{remote_id}", minutes)
        return readings


    async def fetch_comments(
        self, account: AccountView, remote_ids: list[str], since: datetime | None
    ) -> list[Comment]:
        """Deterministic comments from a small cast of fans: the first a few minutes (3–7) after the post, so a
        team can try /inbox and /reply in its first session, then one every few hours (2–5) of the post's life."""
        now = self.clock.now()
        ids = [int(r) for r in remote_ids if r.isdigit()]
        with self.db.session() as session:
            rows = session.exec(select(SandboxPost).where(SandboxPost.id.in_(ids))).all()  # type: ignore[union-attr]
        comments = []
        for row in rows:
            if row.account_id != account.id or row.created_at is None:
                continue
            seed = int(hashlib.sha256(f"{account.name}:{row.id}".encode()).hexdigest()[:8], 16)
            every = timedelta(hours=2 + seed % 4)
            at, n = row.created_at + timedelta(minutes=3 + seed % 5), 0
            while at <= now and n < 20:
                if since is None or at > since:
                    fan = FANS[(seed + n) % len(FANS)]
                    comments.append(Comment(remote_id=f"{row.id}-c{n}", parent_remote_id=str(row.id), author=fan,
                                            text=COMMENTS[(seed // 7 + n) % len(COMMENTS)], created_at=at,
                                            url=f"{URL_BASE}/{account.name}/{row.id}#c{n}"))
                at, n = at + every, n + 1
        return comments

    # -- answering comments ------------------------------------------------------------------------

    def reply_refusal(self, account: AccountView) -> str | None:
        return None

    def reply_text(self, account: AccountView, target: ReplyTarget, text: str) -> str:
        return text

    def check_reply(self, account: AccountView, text: str) -> LimitCheck:
        like, limit = self._rules(account)
        if like is not None and like.key in ("youtube", "tiktok", "pinterest"):  # rules about a post's video or image
            like = None
        media = 1 if like is not None and like.key == "instagram" else 0
        return (like or self).measure(text, media, max_characters=limit)

    async def reply(self, account: AccountView, target: ReplyTarget, text: str) -> Published:
        self._rehearse_before(account, "reply", "replies")
        check = self.check_reply(account, text)
        if not check.ok:
            raise PublishError(ErrorKind.REJECTED, "; ".join(check.problems))
        key = target.idempotency_key or f"reply:{target.comment_id}:{text}"
        with self.db.session() as session:
            row = session.exec(select(SandboxPost).where(SandboxPost.idempotency_key == key)).first()
            if row is None:
                post = session.get(SandboxPost, int(target.post_id)) if target.post_id.isdigit() else None
                if post is None or post.account_id != account.id or not target.comment_id.startswith(f"{post.id}-c"):
                    raise PublishError(ErrorKind.REJECTED, "the sandbox has no such comment to answer")
                row = SandboxPost(account_id=account.id, idempotency_key=key, text=text, created_at=self.clock.now())
                session.add(row)
                session.flush()
            remote_id = str(row.id)
        self._rehearse_after(account, "reply")
        return Published(remote_id=remote_id, url=f"{URL_BASE}/{account.name}/{target.post_id}#r{remote_id}")

    async def refresh(self, account: AccountView) -> dict[str, Any] | None:
        return None  # sandbox tokens never expire

    def remote_id_from_url(self, account: AccountView, url: str) -> str | None:
        prefix = f"{URL_BASE}/{account.name}/"
        tail = url[len(prefix):] if url.startswith(prefix) else ""
        return tail if tail.isdigit() else None


FANS = ("ana_k", "ben.builds", "chloe", "dev_dan", "emma_reads")
COMMENTS = ("Love this!", "When is it available?", "Great news 🎉", "Can you share more details?", "Congrats team")


def engagement(seed_text: str, age_minutes: float) -> Metrics:
    """Deterministic numbers that grow with age and level off over a couple of days."""
    seed = int(hashlib.sha256(seed_text.encode()).hexdigest()[:8], 16)
    reach = 800 + seed % 2400
    impressions = int(reach * (1 - math.exp(-age_minutes / 600)))
    like_rate = 0.02 + (seed % 5) / 100
    likes = int(impressions * like_rate)
    return Metrics(
        likes=likes,
        comments=likes // 9,
        shares=likes // 6,
        quotes=likes // 25,
        impressions=impressions,
        clicks=impressions // 45,
        saves=likes // 12,
    )
