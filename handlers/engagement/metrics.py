"""Engagement: polling each published delivery's numbers on a decaying cadence (/stats: handlers/engagement/stats.py)."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, update
from sqlmodel import Session, col, select

from handlers.core.context import Context
from handlers.core.lookups import account_view, post_targets
from handlers.core.ports import AccountView, ErrorKind, Metrics, Networks, PublishError, ReadBudget
from handlers.workspace.health import fresh_view
from storage.crypto import SecretBoxError
from storage.models import METRIC_FIELDS, Account, Delivery, DeliveryState, MetricSnapshot, Post

log = logging.getLogger("herald.engagement")

# (age of the post up to, poll every): often in the first hours, rarely after a week, never after 30 days.
CADENCE: tuple[tuple[timedelta, timedelta], ...] = (
    (timedelta(hours=2), timedelta(minutes=10)),
    (timedelta(hours=24), timedelta(hours=1)),
    (timedelta(days=7), timedelta(hours=6)),
    (timedelta(days=30), timedelta(days=1)),
)
FIRST_POLL = timedelta(minutes=5)
BATCH = 1000  # deliveries per fetch_metrics call (the connector splits them as its API takes them)
LABELS = {
    "likes": "likes", "comments": "comments", "shares": "shares", "quotes": "quotes",
    "impressions": "views", "clicks": "clicks", "saves": "saves",
}
ONE = {"likes": "like", "comments": "comment", "shares": "share", "quotes": "quote", "impressions": "view",
       "clicks": "click", "saves": "save"}


def counted(value: int, field: str) -> str:
    """'1 save', '12 saves', '1,204 views': a reading's number with its name."""
    return f"{value:,} {ONE[field] if value == 1 else LABELS[field]}"


def first_metrics_at(sent_at: datetime) -> datetime:
    return sent_at + FIRST_POLL


def next_metrics_at(sent_at: datetime, now: datetime) -> datetime | None:
    """When to read a delivery's numbers next, or None once it is 30 days old."""
    age = now - sent_at
    for up_to, every in CADENCE:
        if age < up_to:
            return min(now + every, sent_at + CADENCE[-1][0])
    return None


def snapshot_values(delivery_id: int, metrics: Metrics, now: datetime) -> dict[str, Any]:
    """One MetricSnapshot row's values for a reading."""
    return {"delivery_id": delivery_id, "taken_at": now, "followers": metrics.followers,
            **{f: getattr(metrics, f) for f in METRIC_FIELDS}}


def store_snapshot(session: Session, delivery: Delivery, metrics: Metrics, now: datetime) -> None:
    session.add(MetricSnapshot(**snapshot_values(delivery.id or 0, metrics, now)))


# --- polling -------------------------------------------------------------------------------------------------
#
# Every worker runs poll_metrics every HERALD_METRICS_POLL_SECONDS. A round:
# 1. claims the due deliveries of each account with one conditional UPDATE that pushes their metrics_due_at a
#    LEASE ahead (… WHERE metrics_due_at <= now RETURNING …): another worker's round finds them not due, so each
#    delivery is read by one worker; if this worker dies mid-round, the lease runs out and another one reads them;
# 2. takes no more of an account than its read budget (its connector's profile) allows: the readings stored for the account in the
#    budget's window (MetricSnapshot rows, which every worker sees) are subtracted, and what is left over stays
#    due for a later round;
# 3. reads each account's posts in batched calls (the connector packs ids as its API takes them: X 100 per
#    call, Mastodon 20, Bluesky 25, ...), accounts a few at a time;
# 4. stores the readings and sets each delivery's next reading by the decaying CADENCE (a failed read moves on
#    to the next reading time too, so a broken account isn't hammered), except when the network says 429:
#    then every reading of that account due before the wait it names (RATE_LIMIT_WAIT when it names none) is
#    moved to the end of that wait, and nothing more is asked of the account in this round.

LEASE = timedelta(minutes=5)
RATE_LIMIT_WAIT = timedelta(minutes=15)
ROUND_LIMIT = 5000  # deliveries read per round and worker, at most
ACCOUNTS_AT_ONCE = 8  # accounts read concurrently (each one's calls stay one after another)


# Each network's read budget is in its connector's profile (bot/networks/, from the networks' documented read
# limits, leaving most of each limit to publishing, comments and health checks); what a network doesn't publish
# gets this modest budget and its 429s.
DEFAULT_BUDGET = ReadBudget(1_000, timedelta(hours=1))


def read_budget(networks: Networks, network: str) -> ReadBudget:
    profile = networks.profile(network)
    return profile.read_budget if profile is not None and profile.read_budget is not None else DEFAULT_BUDGET


def readings_left(session: Session, networks: Networks, account: Account, now: datetime) -> int:
    """How many more readings the account's budget allows now (readings stored by any worker count)."""
    budget = read_budget(networks, account.network)
    used = session.exec(
        select(func.count()).select_from(MetricSnapshot)
        .join(Delivery, col(Delivery.id) == col(MetricSnapshot.delivery_id))
        .where(col(Delivery.account_id) == account.id)
        .where(col(MetricSnapshot.taken_at) > now - budget.window)
    ).one()
    return max(0, budget.posts - int(used))


@dataclass
class Claimed:
    """An account's deliveries this round has claimed: (delivery id, remote id, sent_at)."""

    view: AccountView
    deliveries: list[tuple[int, str | None, datetime | None]]


def fair_shares(wants: dict[int, int], limit: int) -> dict[int, int]:
    """Split `limit` over the accounts: each takes what it wants up to an equal share of what is left, so one
    account with a backlog can't crowd the others out of a round."""
    shares: dict[int, int] = {}
    left = limit
    ordered = sorted(wants.items(), key=lambda item: (item[1], item[0]))
    for n, (account_id, want) in enumerate(ordered):
        shares[account_id] = min(want, left // (len(ordered) - n))
        left -= shares[account_id]
    return shares


def claim_due(ctx: Context, now: datetime, limit: int) -> list[Claimed]:
    """Claim, per account and within its budget and fair share, the deliveries whose reading is due (see above)."""
    lease = now + LEASE
    due = (
        select(Delivery.id).where(Delivery.state == DeliveryState.SENT.value)
        .where(col(Delivery.metrics_due_at).is_not(None)).where(col(Delivery.metrics_due_at) <= now)
    )
    claimed: list[Claimed] = []
    with ctx.db.session() as session:
        counts = session.exec(
            select(Delivery.account_id, func.count()).where(Delivery.state == DeliveryState.SENT.value)
            .where(col(Delivery.metrics_due_at).is_not(None)).where(col(Delivery.metrics_due_at) <= now)
            .group_by(col(Delivery.account_id))
        ).all()
        accounts: dict[int, Account] = {}
        wants: dict[int, int] = {}
        for account_id, count in counts:
            account = session.get(Account, account_id)
            if account is None:
                continue
            accounts[account_id] = account
            wants[account_id] = min(int(count), readings_left(session, ctx.networks, account, now))
            if not wants[account_id]:
                log.info("metrics of %s wait: its read budget (%s) is spent for now", account.name,
                         read_budget(ctx.networks, account.network))
        for account_id, take in sorted(fair_shares(wants, limit).items()):
            if take <= 0:
                continue
            account = accounts[account_id]
            try:
                view = account_view(ctx, account, with_secrets=True)
            except SecretBoxError as exc:
                log.warning("metrics of %s not read: %s", account.name, exc)
                continue
            ids = due.where(Delivery.account_id == account_id).order_by(col(Delivery.metrics_due_at)).limit(take)
            rows = session.execute(
                update(Delivery).where(col(Delivery.id).in_(ids.scalar_subquery()))
                .where(col(Delivery.state) == DeliveryState.SENT.value).where(col(Delivery.metrics_due_at) <= now)
                .values(metrics_due_at=lease)
                .returning(col(Delivery.id), col(Delivery.remote_id), col(Delivery.sent_at))
                .execution_options(synchronize_session=False)
            ).all()
            if rows:
                claimed.append(Claimed(view, [(r[0], r[1], r[2]) for r in rows]))
    return claimed


def record(ctx: Context, chunk: list[tuple[int, str | None, datetime | None]], readings: dict[str, Metrics],
           now: datetime) -> int:
    """Store the readings of a chunk and set each delivery's next reading time; how many were stored."""
    rows = [snapshot_values(delivery_id, readings[remote_id], now) for delivery_id, remote_id, _sent in chunk
            if remote_id is not None and remote_id in readings]
    due = [{"id": delivery_id, "metrics_due_at": next_metrics_at(sent_at, now) if sent_at else None}
           for delivery_id, _remote, sent_at in chunk]
    with ctx.db.session() as session:
        if rows:
            session.execute(insert(MetricSnapshot), rows)
        session.execute(update(Delivery), due)  # an executemany UPDATE by primary key
    return len(rows)


def defer_account(ctx: Context, account_id: int, rest: list[int], until: datetime) -> None:
    """A 429: the account's readings due before `until` (and the rest of this round's) wait until then."""
    with ctx.db.session() as session:
        session.execute(
            update(Delivery).where(col(Delivery.account_id) == account_id)
            .where(col(Delivery.state) == DeliveryState.SENT.value)
            .where(col(Delivery.metrics_due_at).is_not(None)).where(col(Delivery.metrics_due_at) < until)
            .values(metrics_due_at=until).execution_options(synchronize_session=False))
        if rest:
            session.execute(
                update(Delivery).where(col(Delivery.id).in_(rest)).values(metrics_due_at=until)
                .execution_options(synchronize_session=False))


async def read_account(ctx: Context, job: Claimed, now: datetime) -> int:
    """Read one account's claimed deliveries, BATCH at a time; how many readings were stored."""
    view = job.view
    network = ctx.networks.get(view.network)
    if network is None:  # no connector for it in this process: try again at its next reading time
        return record(ctx, job.deliveries, {}, now)
    try:
        view = await fresh_view(ctx, network, view)
    except PublishError as exc:
        log.warning("metrics for %s not read: %s", view.name, exc.reason)
    stored = 0
    for start in range(0, len(job.deliveries), BATCH):
        chunk = job.deliveries[start:start + BATCH]
        try:
            readings = await network.fetch_metrics(view, [remote for _id, remote, _sent in chunk if remote])
        except PublishError as exc:
            if exc.kind == ErrorKind.RATE_LIMITED:
                wait = timedelta(seconds=exc.retry_after) if exc.retry_after else RATE_LIMIT_WAIT
                until = now + max(wait, timedelta(seconds=1))
                defer_account(ctx, view.id, [d for d, _r, _s in job.deliveries[start:]], until)
                log.warning("metrics for %s wait until %s: %s", view.name, until.isoformat(), exc.reason)
                return stored
            log.warning("metrics for %s not read: %s", view.name, exc.reason)
            readings = {}
        stored += record(ctx, chunk, readings, now)
    return stored


async def poll_metrics(ctx: Context, *, limit: int = ROUND_LIMIT) -> int:
    """One round: read the numbers of the deliveries whose reading is due (see above); how many were stored."""
    now = ctx.clock.now()
    jobs = claim_due(ctx, now, limit)
    gate = asyncio.Semaphore(ACCOUNTS_AT_ONCE)

    async def one(job: Claimed) -> int:
        async with gate:
            try:
                return await read_account(ctx, job, now)
            except Exception:  # one account's trouble must not stop the others; its lease runs out
                log.exception("metrics for %s failed", job.view.name)
                return 0

    return sum(await asyncio.gather(*(one(job) for job in jobs)))


def latest_two(session: Session, delivery_id: int) -> list[MetricSnapshot]:
    return list(session.exec(
        select(MetricSnapshot).where(MetricSnapshot.delivery_id == delivery_id)
        .order_by(col(MetricSnapshot.taken_at).desc(), col(MetricSnapshot.id).desc()).limit(2)
    ).all())


# what counts as an engagement, everywhere Herald adds them up (reports, digests, alerts, best times)
ENGAGED: tuple[str, ...] = ("likes", "comments", "shares", "quotes", "saves", "clicks")


def engagements(snapshot: MetricSnapshot) -> int:
    return sum(getattr(snapshot, f) or 0 for f in ENGAGED)


def post_total(session: Session, post: Post) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """Latest numbers of a post: totals, and per network."""
    totals: dict[str, int] = defaultdict(int)
    per_network: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for delivery, account in post_targets(session, post):
        snaps = latest_two(session, delivery.id or 0)
        if not snaps:
            continue
        for field in METRIC_FIELDS:
            value = getattr(snaps[0], field) or 0
            totals[field] += value
            per_network[account.network][field] += value
    return totals, per_network
