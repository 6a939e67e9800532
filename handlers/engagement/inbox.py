"""The inbox: comments and replies on published posts, read on a decaying cadence, forwarded to the team in batches.

- `read_comments` asks each network for the new comments of its sent deliveries up to 7 days old, one batched
  call per account (tokens refreshed first by handlers.workspace.health.fresh_view), often while a post is fresh and
  rarely later (COMMENT_CADENCE). A delivery is claimed for a read by a conditional UPDATE of its
  `comments_due_at`, so two workers don't read it twice; `comments_read_at` remembers up to when its comments
  were read, and the next read asks from 15 minutes before that (networks index comments late), so nothing is
  lost. A network's error is logged and the next read catches up.
- Each comment becomes one InboxItem; (delivery_id, remote_id) is unique and the insert is ON CONFLICT DO
  NOTHING, so a comment read twice (the overlap, or a second worker) is stored once. A comment holding the
  workspace's watch words is marked (`watch_hit`) as it is stored.
- `forward_new` claims a workspace's unforwarded items with one conditional UPDATE (forwarded_at IS NULL →
  now, RETURNING the ids this worker won) and sends one message to the team chats listing at most FORWARD_MAX
  items and "+k more — /inbox" beyond (one message per workspace per run), then the watch-word alerts
  (handlers.engagement.alerts) for the claimed items that hold watch words.
- `/inbox [post]` lists recent items with their numbers (the number /reply takes) and reply state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from handlers.core.chat import Reply, theirs
from handlers.core.commands import Param, Request, command, periodic
from handlers.core.context import Context
from handlers.core.errors import UserError
from handlers.core.lookups import account_view, get_post, get_workspace, parse_post_id
from handlers.core.notices import tell_team
from handlers.core.ports import AccountView, Comment, Networks, PublishError
from handlers.core.when import format_delta
from handlers.engagement.alerts import WatchedItem, first_words, watch_alerts, watch_hits, word_list
from handlers.workspace.health import DEAD, fresh_view
from storage.crypto import SecretBoxError
from storage.models import Account, Delivery, DeliveryState, InboxItem, Post, Workspace

log = logging.getLogger("herald.inbox")

# (age of the post up to, read its comments every): a fresh post's comments come in minutes, a week-old one's
# rarely; after 7 days Herald stops reading (X's recent search only reaches back 7 days anyway).
COMMENT_CADENCE: tuple[tuple[timedelta, timedelta], ...] = (
    (timedelta(hours=2), timedelta(minutes=10)),
    (timedelta(hours=24), timedelta(minutes=30)),
    (timedelta(days=3), timedelta(hours=2)),
    (timedelta(days=7), timedelta(hours=6)),
)
WINDOW = COMMENT_CADENCE[-1][0]
FIRST_READ = timedelta(minutes=10)  # after sending
OVERLAP = timedelta(minutes=15)  # each read asks again for this much before the last one
BATCH = 100  # remote ids per network call
RUN_LIMIT = 1000  # deliveries read per run
FORWARD_MAX = 10  # items listed in one forwarded message
LIST_MAX = 15  # items /inbox shows
RUN_EVERY = timedelta(minutes=2)

REPLY_STATES = {
    "awaiting_approval": "reply waiting for approval",
    "approved": "reply approved, going out",
    "sending": "reply being sent",
    "failed": "reply failed",
    "rejected": "reply rejected",
    "unconfirmed": "reply unconfirmed",
}


def next_comments_at(sent_at: datetime, now: datetime) -> datetime | None:
    """When to read a delivery's comments next, or None once it is 7 days old."""
    age = now - sent_at
    for up_to, every in COMMENT_CADENCE:
        if age < up_to:
            return min(now + every, sent_at + WINDOW)
    return None


@dataclass(frozen=True)
class Due:
    delivery_id: int
    remote_id: str
    workspace_id: int
    floor: datetime  # comments at or before this were read already


def claim_due(ctx: Context, now: datetime, limit: int) -> list[tuple[AccountView, list[Due]]]:
    """The deliveries whose comments are due, claimed for this worker, grouped by account."""
    with ctx.db.session() as session:
        first_read = (col(Delivery.comments_due_at).is_(None) & col(Delivery.comments_read_at).is_(None)
                      & (col(Delivery.sent_at) <= now - FIRST_READ))
        rows = session.exec(
            select(Delivery, Account).where(col(Delivery.account_id) == col(Account.id))
            .where(Delivery.state == DeliveryState.SENT.value)
            .where(col(Delivery.remote_id).is_not(None))
            .where(col(Delivery.sent_at) >= now - WINDOW)
            .where(first_read | (col(Delivery.comments_due_at) <= now))
            .order_by(col(Delivery.sent_at).desc())
            .limit(limit)
        ).all()
        by_account: dict[int, tuple[Account, list[Due]]] = {}
        for delivery, account in rows:
            assert delivery.sent_at is not None and delivery.id is not None
            due = delivery.comments_due_at
            claim = update(Delivery).where(col(Delivery.id) == delivery.id)
            claim = claim.where(col(Delivery.comments_due_at).is_(None) if due is None
                                else col(Delivery.comments_due_at) == due)
            won = session.execute(claim.values(comments_due_at=next_comments_at(delivery.sent_at, now)
                                               or delivery.sent_at + WINDOW))
            if won.rowcount != 1 or account.health == DEAD:  # type: ignore[attr-defined]
                continue
            floor = (delivery.comments_read_at or delivery.sent_at) - OVERLAP
            by_account.setdefault(account.id or 0, (account, []))[1].append(
                Due(delivery.id, delivery.remote_id or "", account.workspace_id, floor))
    work = []
    for account, dues in by_account.values():
        try:
            work.append((account_view(ctx, account, with_secrets=True), dues))
        except SecretBoxError:  # credentials sealed with another key: the health check tells the team
            log.warning("comments of %s not read: its credentials can't be opened", account.name)
    return work


def insert_items(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Insert inbox rows, skipping ones already stored (by any worker); the ids of the rows this call added."""
    if not rows:
        return []
    table: Any = InboxItem.__table__  # type: ignore[attr-defined]
    inserts: dict[str, Any] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
    insert = inserts.get(session.get_bind().dialect.name)
    if insert is not None:
        added: list[int] = []
        for start in range(0, len(rows), 500):
            stmt = insert(table).values(rows[start:start + 500]).on_conflict_do_nothing(
                index_elements=["delivery_id", "remote_id"]).returning(table.c.id)
            added.extend(session.execute(stmt).scalars())
        return added
    added = []  # another engine: one row at a time, a duplicate rolled back to its savepoint
    for row in rows:
        try:
            with session.begin_nested():
                added.append(session.execute(table.insert().values(**row).returning(table.c.id)).scalar_one())
        except IntegrityError:
            continue
    return added


def item_row(due: Due, comment: Comment, now: datetime, words: list[str]) -> dict[str, Any]:
    text = comment.text.replace("\x00", "")
    hits = watch_hits(text, words) if words else []
    return {
        "workspace_id": due.workspace_id, "delivery_id": due.delivery_id, "remote_id": comment.remote_id,
        "parent_remote_id": comment.parent_remote_id or due.remote_id, "author": comment.author[:200],
        "text": text, "url": comment.url, "posted_at": comment.created_at, "fetched_at": now,
        "watch_hit": ", ".join(hits) if hits else None, "reply_approvals": [],
    }


async def read_comments(ctx: Context, *, limit: int = RUN_LIMIT) -> int:
    """Read the comments of every delivery whose time has come; returns how many new items were stored."""
    now = ctx.clock.now()
    work = claim_due(ctx, now, limit)
    if not work:
        return 0
    with ctx.db.session() as session:
        spaces = {view.workspace_id for view, _ in work}
        words = {ws.id: word_list(ws.watch_words)
                 for ws in session.exec(select(Workspace).where(col(Workspace.id).in_(spaces)))}
    stored = 0
    for view, dues in work:
        network = ctx.networks.get(view.network)
        if network is None:
            continue
        try:
            view = await fresh_view(ctx, network, view)
        except PublishError as exc:
            log.warning("comments of %s not read: %s", view.name, exc.reason)
            continue
        for start in range(0, len(dues), BATCH):
            chunk = dues[start:start + BATCH]
            by_remote = {d.remote_id: d for d in chunk}
            try:
                comments = await network.fetch_comments(view, list(by_remote), min(d.floor for d in chunk))
            except PublishError as exc:
                log.warning("comments of %s not read: %s", view.name, exc.reason)
                continue
            except Exception:  # a connector's bug must not stop the other accounts
                log.exception("comments of %s not read", view.name)
                continue
            rows = []
            for comment in comments:
                due = by_remote.get(comment.parent_remote_id)
                if due is None or comment.created_at <= due.floor:
                    continue
                rows.append(item_row(due, comment, now, words.get(due.workspace_id, [])))
            with ctx.db.session() as session:
                stored += len(insert_items(session, rows))
                session.execute(update(Delivery).where(col(Delivery.id).in_([d.delivery_id for d in chunk]))
                                .values(comments_read_at=now))
    return stored


# --- forwarding -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Forwarded:
    item: InboxItem
    post_id: int
    account: str
    network: str


def load_items(session: Session, ids: list[int]) -> list[Forwarded]:
    rows = session.exec(
        select(InboxItem, Delivery, Account).where(col(InboxItem.id).in_(ids))
        .where(col(InboxItem.delivery_id) == col(Delivery.id)).where(col(Delivery.account_id) == col(Account.id))
        .order_by(col(InboxItem.posted_at), col(InboxItem.id))
    ).all()
    return [Forwarded(item, delivery.post_id, account.name, account.network) for item, delivery, account in rows]


def item_line(networks: Networks, f: Forwarded, now: datetime | None = None) -> str:
    item = f.item
    parts = [f"#{item.id}", f"{theirs(item.author)} on {networks.label(f.network)}", f"post #{f.post_id}"]
    if now is not None and item.posted_at is not None:
        parts.append(format_delta(item.posted_at, now).replace("now", "just now"))
    parts.append(f"“{theirs(first_words(item.text))}”")
    if item.watch_hit:
        parts.append(f"⚠️ {item.watch_hit}")
    line = "  " + " · ".join(parts)
    if now is not None:
        line += " · " + reply_state(item)
    if item.url:
        line += f" · {item.url}"
    return line


def reply_state(item: InboxItem) -> str:
    if item.reply_state is None:
        return "no reply yet"
    if item.reply_state == "sent":
        return f"answered by {item.reply_by}" if item.reply_by else "answered"
    words = REPLY_STATES.get(item.reply_state, item.reply_state.replace("_", " "))
    return f"{words} ({item.reply_error})" if item.reply_error and item.reply_state == "failed" else words


def forward_text(networks: Networks, items: list[Forwarded]) -> str:
    count = len(items)
    lines = [f"💬 {count} new comment{'' if count == 1 else 's'} on your posts:"]
    lines += [item_line(networks, f) for f in items[:FORWARD_MAX]]
    if count > FORWARD_MAX:
        lines.append(f"  +{count - FORWARD_MAX} more — /inbox")
    first = items[0].item.id
    lines.append(f"Answer one with /reply <number> <text>, e.g. /reply {first} Thanks!")
    return "\n".join(lines)


async def forward_new(ctx: Context) -> int:
    """Forward every workspace's unforwarded items, one message each; returns how many items this worker sent."""
    now = ctx.clock.now()
    with ctx.db.session() as session:
        spaces = sorted(set(session.exec(
            select(InboxItem.workspace_id).where(col(InboxItem.forwarded_at).is_(None))).all()))
    forwarded = 0
    for ws_id in spaces:
        with ctx.db.session() as session:
            claim = (update(InboxItem).where(col(InboxItem.workspace_id) == ws_id)
                     .where(col(InboxItem.forwarded_at).is_(None)).values(forwarded_at=now)
                     .returning(col(InboxItem.id)).execution_options(synchronize_session=False))
            ids = list(session.execute(claim).scalars())
        if not ids:
            continue  # another worker got them
        with ctx.db.session() as session:
            items = load_items(session, ids)
        if not items:
            continue
        watched = [WatchedItem(f.item.id or 0, f.post_id, f.account, f.network, f.item.author, f.item.text,
                               f.item.url, f.item.watch_hit) for f in items if f.item.watch_hit]
        await tell_team(ctx, ws_id, Reply(forward_text(ctx.networks, items)))
        if watched:  # after the batch, so the alert and its pause button are the newest message in the chat
            await watch_alerts(ctx, ws_id, watched)
        forwarded += len(items)
    return forwarded


@periodic("inbox", every=RUN_EVERY)
async def run_inbox(ctx: Context) -> tuple[int, int]:
    """Read what is due, then forward what is new: (items stored, items forwarded)."""
    stored = 0
    try:
        stored = await read_comments(ctx)
    except Exception:
        log.exception("reading comments failed")
    return stored, await forward_new(ctx)


# --- /inbox -----------------------------------------------------------------------------------------


def cadence_words() -> str:
    first = f"{int(FIRST_READ.total_seconds() // 60)} minutes after publishing"
    steps = []
    for up_to, every in COMMENT_CADENCE:
        steps.append(f"every {span_words(every)} to {span_words(up_to)}")
    return f"{first}, then {', '.join(steps)}"


def span_words(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes % (24 * 60) == 0:
        days = minutes // (24 * 60)
        return "a day" if days == 1 else f"{days} days"
    if minutes % 60 == 0:
        hours = minutes // 60
        return "an hour" if hours == 1 else f"{hours} hours"
    return f"{minutes} minutes"


@command("inbox", usage="/inbox [post]", example="/inbox 12",
         summary="recent comments on your posts, with the number /reply takes and whether they were answered",
         details=f"Herald reads comments for 7 days after publishing ({cadence_words()}) and forwards new ones "
                 f"here in batches of at most {FORWARD_MAX}.",
         group="Engagement",
         takes=(Param.post(required=False),))
async def inbox(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    now = ctx.clock.now()
    text = req.command.text.strip()
    if len(text.split()) > 1:
        raise UserError(f"/inbox takes at most one post number. Usage: {req.spec.usage}, e.g. /inbox 12")
    with ctx.db.session() as session:
        post: Post | None = get_post(session, ws_id, parse_post_id(text, req.spec.usage)) if text else None
        query = select(InboxItem, Delivery, Account).where(col(InboxItem.delivery_id) == col(Delivery.id)) \
            .where(col(Delivery.account_id) == col(Account.id)).where(InboxItem.workspace_id == ws_id)
        counting = select(func.count()).select_from(InboxItem).where(InboxItem.workspace_id == ws_id)
        if post is not None:
            query = query.where(Delivery.post_id == post.id)
            counting = counting.join(Delivery, col(InboxItem.delivery_id) == col(Delivery.id)) \
                .where(Delivery.post_id == post.id)
        total = session.exec(counting).one()
        rows = session.exec(
            query.order_by(col(InboxItem.posted_at).desc(), col(InboxItem.id).desc()).limit(LIST_MAX)).all()
        items = [Forwarded(item, delivery.post_id, account.name, account.network) for item, delivery, account in rows]
        if post is not None:
            head = f"📥 Comments on #{post.id} — “{first_words(post.text)}”"
            if not items:
                live = post.published_at is not None
                return Reply(f"#{post.id} has no comments yet." if live else
                             f"#{post.id} isn't published yet, so it has no comments.")
        else:
            get_workspace(session, ws_id)
            head = "📥 Inbox"
            if not items:
                return Reply(f"📥 No comments yet. Herald reads comments on published posts {cadence_words()}, "
                             "and forwards new ones here.")
    shown = f"the latest {len(items)} of {total}" if total > len(items) else f"{total}"
    lines = [f"{head}: {shown} comment{'' if total == 1 else 's'}, newest first"]
    lines += [item_line(ctx.networks, f, now) for f in items]
    lines.append("Answer one with /reply <number> <text>." + ("" if post else " /inbox <post> shows one post's."))
    return Reply("\n".join(lines))
