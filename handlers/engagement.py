"""Engagement: polling each published delivery's numbers on a decaying cadence, and /stats."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from handlers.chat import Reply
from handlers.common import (
    Request,
    account_view,
    get_post,
    get_workspace,
    post_targets,
    show_time,
    split_post_and_rest,
)
from handlers.context import Context
from handlers.health import fresh_view
from handlers.ports import Metrics, PublishError
from handlers.registry import command
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
BATCH = 100
LABELS = {
    "likes": "likes", "comments": "comments", "shares": "shares", "quotes": "quotes",
    "impressions": "views", "clicks": "clicks", "saves": "saves",
}


def first_metrics_at(sent_at: datetime) -> datetime:
    return sent_at + FIRST_POLL


def next_metrics_at(sent_at: datetime, now: datetime) -> datetime | None:
    """When to read a delivery's numbers next, or None once it is 30 days old."""
    age = now - sent_at
    for up_to, every in CADENCE:
        if age < up_to:
            return min(now + every, sent_at + CADENCE[-1][0])
    return None


def store_snapshot(session: Session, delivery: Delivery, metrics: Metrics, now: datetime) -> None:
    session.add(MetricSnapshot(delivery_id=delivery.id or 0, taken_at=now,
                               **{f: getattr(metrics, f) for f in METRIC_FIELDS}))


async def poll_metrics(ctx: Context, *, limit: int = 1000) -> int:
    """Read the numbers of every delivery whose poll time has come, one batched call per account."""
    now = ctx.clock.now()
    with ctx.db.session() as session:
        rows = session.exec(
            select(Delivery, Account)
            .where(col(Delivery.account_id) == col(Account.id))
            .where(Delivery.state == DeliveryState.SENT.value)
            .where(col(Delivery.metrics_due_at).is_not(None))
            .where(col(Delivery.metrics_due_at) <= now)
            .order_by(col(Delivery.metrics_due_at))
            .limit(limit)
        ).all()
        by_account: dict[int, tuple[Account, list[Delivery]]] = {}
        for delivery, account in rows:
            by_account.setdefault(account.id or 0, (account, []))[1].append(delivery)
        work = [(account_view(ctx, a, with_secrets=True), [(d.id, d.remote_id) for d in ds]) for a, ds in by_account.values()]
    polled = 0
    for view, deliveries in work:
        network = ctx.networks.get(view.network)
        if network is None:
            continue
        try:
            view = await fresh_view(ctx, network, view)
        except PublishError as exc:
            log.warning("metrics for %s not read: %s", view.name, exc.reason)
        for start in range(0, len(deliveries), BATCH):
            chunk = deliveries[start:start + BATCH]
            ids = [remote for _id, remote in chunk if remote]
            try:
                readings = await network.fetch_metrics(view, ids)
            except PublishError as exc:
                log.warning("metrics for %s not read: %s", view.name, exc.reason)
                readings = {}
            with ctx.db.session() as session:
                for delivery_id, remote_id in chunk:
                    row = session.get(Delivery, delivery_id)
                    if row is None or row.sent_at is None:
                        continue
                    if remote_id in readings:
                        store_snapshot(session, row, readings[remote_id], now)
                        polled += 1
                    row.metrics_due_at = next_metrics_at(row.sent_at, now)
    return polled


def latest_two(session: Session, delivery_id: int) -> list[MetricSnapshot]:
    return list(session.exec(
        select(MetricSnapshot).where(MetricSnapshot.delivery_id == delivery_id)
        .order_by(col(MetricSnapshot.taken_at).desc(), col(MetricSnapshot.id).desc()).limit(2)
    ).all())


def format_numbers(current: MetricSnapshot, previous: MetricSnapshot | None) -> str:
    parts = []
    for field in METRIC_FIELDS:
        value = getattr(current, field)
        if value is None:
            continue
        text = f"{value:,} {LABELS[field]}"
        if previous is not None and getattr(previous, field) is not None:
            change = value - getattr(previous, field)
            if change:
                text += f" ({change:+,})"
        parts.append(text)
    return " · ".join(parts) or "no numbers from this network"


def engagements(snapshot: MetricSnapshot) -> int:
    return sum(getattr(snapshot, f) or 0 for f in ("likes", "comments", "shares", "quotes", "saves", "clicks"))


@command("stats", usage="/stats <post>", example="/stats 12", summary="engagement of a published post, per account and in total",
         group="Engagement")
async def stats(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    post_id, _ = split_post_and_rest(req)
    now = ctx.clock.now()
    with ctx.db.session() as session:
        post = get_post(session, ws_id, post_id)
        ws = get_workspace(session, ws_id)
        sent = [(d, a) for d, a in post_targets(session, post) if DeliveryState(d.state) == DeliveryState.SENT]
        if not sent:
            return Reply(f"#{post.id} isn't live anywhere yet ({post.state.replace('_', ' ')}), so there are no numbers.")
        lines = [f"📊 #{post.id} — published {show_time(post.published_at, ws.timezone, now)}"]
        totals: dict[str, int] = defaultdict(int)
        last_read: datetime | None = None
        waiting = []
        for delivery, account in sent:
            snaps = latest_two(session, delivery.id or 0)
            if not snaps:
                waiting.append(account.name)
                continue
            current = snaps[0]
            previous = snaps[1] if len(snaps) > 1 else None
            lines.append(f"  {account.name} ({account.network}): {format_numbers(current, previous)}")
            for field in METRIC_FIELDS:
                totals[field] += getattr(current, field) or 0
            if current.taken_at and (last_read is None or current.taken_at > last_read):
                last_read = current.taken_at
        for name in waiting:
            lines.append(f"  {name}: no numbers yet")
        if totals:
            total_text = " · ".join(f"{totals[f]:,} {LABELS[f]}" for f in METRIC_FIELDS if totals[f])
            lines.append(f"  Total: {total_text or 'nothing yet'}")
            engaged = sum(totals[f] for f in ("likes", "comments", "shares", "quotes", "saves", "clicks"))
            if totals["impressions"]:
                rate = 100 * engaged / totals["impressions"]
                lines.append(f"  Engagement rate: {rate:.1f}% (engagements {engaged:,} ÷ views {totals['impressions']:,})")
        if last_read:
            lines.append(f"Numbers read {show_time(last_read, ws.timezone, now)}; changes are since the reading before.")
        due = [d.metrics_due_at for d, _a in sent if d.metrics_due_at]
        if due:
            lines.append(f"Next reading {show_time(min(due), ws.timezone, now)}.")
    return Reply("\n".join(lines))


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
