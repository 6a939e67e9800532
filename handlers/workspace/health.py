"""Account health: tokens refreshed before they expire, dead ones found before a post is due.

- `fresh_view` refreshes an account's credentials just before Herald uses them (publishing,
  metrics) when its connector says they need it, and stores the new ones sealed.
- `check_accounts` runs on the clock: every account is verified against its network once a
  day, and again within the hours before one of its posts is due. An account whose token is
  dead is marked `auth_expired`; the team is told once, with the posts it affects and the
  command that fixes it. Its deliveries are held (failed with the reconnect fix, never sent
  with a dead token) until someone reconnects it with /connect.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select

from handlers.core.chat import Reply
from handlers.core.context import Context
from handlers.core.lookups import account_view
from handlers.core.notices import tell_team
from handlers.core.ports import AccountView, ErrorKind, Network, PublishError
from handlers.core.when import show_time
from storage.crypto import SecretBoxError
from storage.models import Account, Delivery, DeliveryState, Post, PostState, Workspace

log = logging.getLogger("herald.health")

DAILY = timedelta(hours=24)
SOON = timedelta(hours=3)  # a post due this soon gets its accounts checked hourly
HOURLY = timedelta(hours=1)
DEAD = "auth_expired"


def reconnect_hint(account: Account) -> str:
    return f"/connect {account.network} name={account.name} … (in a private chat with me)"


_REFRESHING: dict[int, asyncio.Lock] = {}  # one refresh at a time per account in this process


def stored_credentials(ctx: Context, account_id: int) -> dict[str, Any] | None:
    with ctx.db.session() as session:
        account = session.get(Account, account_id)
        if account is None:
            return None
        try:
            return ctx.secrets.open(account.credentials)
        except SecretBoxError:
            return None


async def fresh_view(ctx: Context, network: Network, view: AccountView) -> AccountView:
    """The account view with credentials refreshed first if they need it. AUTH_EXPIRED marks the account.

    Refreshes of one account are serialised, and each starts from the credentials stored now: a
    refresh token that rotates on use (TikTok, X) is never spent twice, and a refusal only marks the
    account dead if the refused credentials are still the stored ones (not already replaced by a
    parallel refresh or a /connect).
    """
    async with _REFRESHING.setdefault(view.id, asyncio.Lock()):
        current = stored_credentials(ctx, view.id)
        if current is not None and current != view.credentials:
            view = replace(view, credentials=current)
        try:
            renewed = await network.refresh(view)
        except PublishError as exc:
            if exc.kind == ErrorKind.AUTH_EXPIRED:
                if stored_credentials(ctx, view.id) == view.credentials:
                    await mark_dead(ctx, view.id, exc.reason)
                raise
            log.warning("refreshing %s (%s) failed for now: %s", view.name, view.network, exc.reason)
            return view
        if not renewed:
            return view
        credentials = {**view.credentials, **renewed}
        with ctx.db.session() as session:
            account = session.get(Account, view.id)
            if account is not None:
                account.credentials = ctx.secrets.seal(credentials)
    log.info("refreshed the credentials of %s (%s)", view.name, view.network)
    return replace(view, credentials=credentials)


def affected_posts(ctx: Context, account_id: int) -> list[tuple[Post, Workspace]]:
    """Posts not yet published that would go to this account, soonest first."""
    waiting = [s.value for s in (PostState.DRAFT, PostState.IN_REVIEW, PostState.CHANGES_REQUESTED,
                                 PostState.APPROVED, PostState.SCHEDULED)]
    with ctx.db.session() as session:
        rows = session.exec(
            select(Post, Workspace).where(col(Post.id) == col(Delivery.post_id))
            .where(col(Delivery.account_id) == account_id)
            .where(col(Delivery.state) == DeliveryState.PENDING.value)
            .where(col(Post.state).in_(waiting)).where(col(Post.workspace_id) == col(Workspace.id))
        ).all()
        rows = list(rows)
    far = datetime.max.replace(tzinfo=ctx.clock.now().tzinfo)
    return sorted(rows, key=lambda pair: (pair[0].due_at or far, pair[0].id or 0))


async def mark_dead(ctx: Context, account_id: int, reason: str) -> None:
    """Mark the account; the first time, tell the team what it affects and how to fix it."""
    with ctx.db.session() as session:
        first = session.execute(  # only one caller (of any worker) is the first to mark it, and tells
            update(Account).where(col(Account.id) == account_id).where(col(Account.health) != DEAD)
            .values(health=DEAD, health_note=reason, checked_at=ctx.clock.now())
        ).rowcount == 1  # type: ignore[attr-defined]
        account = session.get(Account, account_id)
        if account is None or not first:
            return
        snapshot = Account.model_validate(account)
    posts = affected_posts(ctx, account_id)
    now = ctx.clock.now()
    lines = [f"⚠️ {snapshot.name} ({snapshot.network}) can't post any more: {reason}."]
    if posts:
        lines.append("Posts that would go there:")
        lines += [f"  #{p.id} — {show_time(p.due_at, p.due_tz or ws.timezone, now) if p.due_at else 'no time set'}"
                  for p, ws in posts[:10]]
        if len(posts) > 10:
            lines.append(f"  … and {len(posts) - 10} more")
        lines.append("Until it's reconnected they won't be sent there (the other accounts still get them).")
    lines.append(f"Fix: {reconnect_hint(snapshot)}, then /retry <post> for any that went out without it.")
    await tell_team(ctx, snapshot.workspace_id, Reply("\n".join(lines)))


def due_for_check(ctx: Context) -> list[int]:
    """Healthy accounts not checked for a day, or for an hour when one of their posts is due soon."""
    now = ctx.clock.now()
    with ctx.db.session() as session:
        accounts = session.exec(select(Account).where(Account.health != DEAD)).all()
        soon = set(session.exec(
            select(Delivery.account_id).where(col(Delivery.post_id) == col(Post.id))
            .where(col(Delivery.state) == DeliveryState.PENDING.value)
            .where(col(Post.state).in_([PostState.SCHEDULED.value, PostState.APPROVED.value,
                                        PostState.IN_REVIEW.value]))
            .where(col(Post.due_at).is_not(None)).where(col(Post.due_at) <= now + SOON)
        ).all())
        due = []
        for account in accounts:
            last = account.checked_at
            every = HOURLY if account.id in soon else DAILY
            if last is None or now - last >= every:
                assert account.id is not None
                due.append(account.id)
        return due


async def check_account(ctx: Context, account_id: int) -> str:
    """Refresh and verify one account; returns 'ok', 'dead', or 'unknown' (the network couldn't say)."""
    with ctx.db.session() as session:
        account = session.get(Account, account_id)
        if account is None:
            return "unknown"
        network = ctx.networks.get(account.network)
        if network is None:
            return "unknown"
        try:
            view = account_view(ctx, account, with_secrets=True)
        except SecretBoxError as exc:
            view = None
            reason = str(exc)
    if view is None:
        await mark_dead(ctx, account_id, reason)
        return "dead"
    refreshed: AccountView | None = None
    try:
        refreshed = await fresh_view(ctx, network, view)  # a refused refresh marks the account itself
        await network.verify(refreshed)
    except PublishError as exc:
        if exc.kind == ErrorKind.AUTH_EXPIRED:
            if refreshed is not None:
                await mark_dead(ctx, account_id, exc.reason)
            with ctx.db.session() as session:
                stored = session.get(Account, account_id)
                return "dead" if stored is not None and stored.health == DEAD else "unknown"
        log.warning("checking %s failed for now: %s", view.name, exc.reason)
        return "unknown"
    except Exception:  # a broken connector must not stop the other checks
        log.exception("checking account %s failed", account_id)
        return "unknown"
    with ctx.db.session() as session:
        stored = session.get(Account, account_id)
        if stored is not None:
            stored.checked_at = ctx.clock.now()
    return "ok"


def claim_check(ctx: Context, account_id: int) -> tuple[bool, datetime | None, datetime]:
    """Claim an account's check with one conditional UPDATE of checked_at, so that with several workers
    running the clock only one checks it: (claimed, the previous checked_at, the claim's time)."""
    now = ctx.clock.now()
    with ctx.db.session() as session:
        previous = session.exec(select(Account.checked_at).where(col(Account.id) == account_id)).first()
        claimed = session.execute(  # nobody checked it within the hour (the shortest period): it's ours
            update(Account).where(col(Account.id) == account_id).where(col(Account.health) != DEAD)
            .where(col(Account.checked_at).is_(None) | (col(Account.checked_at) <= now - HOURLY))
            .values(checked_at=now)
        ).rowcount == 1  # type: ignore[attr-defined]
    return claimed, previous, now


def unclaim_check(ctx: Context, account_id: int, previous: datetime | None, claimed_at: datetime) -> None:
    """The network couldn't say: put checked_at back so the next round checks the account again."""
    with ctx.db.session() as session:
        session.execute(
            update(Account).where(col(Account.id) == account_id).where(col(Account.checked_at) == claimed_at)
            .values(checked_at=previous)
        )


async def check_accounts(ctx: Context) -> dict[str, int]:
    """The clock's periodic health check; counts of each outcome (of the accounts this worker claimed)."""
    counts: dict[str, int] = {"ok": 0, "dead": 0, "unknown": 0}
    for account_id in due_for_check(ctx):
        claimed, previous, claimed_at = claim_check(ctx, account_id)
        if not claimed:
            continue  # another worker checks it
        outcome = await check_account(ctx, account_id)
        if outcome == "unknown":
            unclaim_check(ctx, account_id, previous, claimed_at)
        counts[outcome] += 1
    return counts


def held_reason(account: Any) -> str:
    return (f"{account.name} needs reconnecting ({account.health_note or 'its token no longer works'}); "
            "nothing was sent there")
