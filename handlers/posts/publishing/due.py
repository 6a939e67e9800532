"""The clock's entry points: a post's trigger time came (run_due), the sweep that catches what slipped, recovery after a crash."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, update
from sqlmodel import Session, col, select

from handlers.core.audit import audit
from handlers.core.chat import Reply
from handlers.core.context import Context
from handlers.core.crisis import crisis_hold, crisis_words
from handlers.core.lookups import get_workspace, post_targets
from handlers.core.notices import tell_team
from handlers.core.ports import CANT_TELL, AccountView, ErrorKind, Found, Outgoing, Published
from handlers.core.when import show_time
from handlers.engagement.metrics import first_metrics_at
from handlers.posts.publishing.claims import CHECKED, STALE_SENDING, claim_post
from handlers.posts.publishing.held import announce_held, held_notice
from handlers.posts.publishing.outcomes import ask_network, not_anothers, outgoing_of
from handlers.posts.publishing.send import send_pending, send_slot
from handlers.posts.publishing.settle import settle, settle_once
from handlers.posts.publishing.threads import open_steps, recover_steps
from handlers.posts.rules import UNAPPROVED, rearm
from storage.models import (
    Account,
    Delivery,
    DeliveryState,
    Post,
    PostState,
    UnapprovedAction,
    Workspace,
    move_post,
)

log = logging.getLogger("herald.publishing")


async def run_due(ctx: Context, post_id: int) -> None:
    """The clock reached this post's trigger time: publish it, hold it, or expire it, per the rules.

    A post held past the grace period is announced by the sweep (handlers.posts.publishing.held.announce_held), one
    notice per workspace for all the posts held, and again if a crash cut that notice off.
    """
    with ctx.sends.running_post(post_id):
        await _run_due(ctx, post_id)


async def _run_due(ctx: Context, post_id: int) -> None:
    now = ctx.clock.now()
    notice: Reply | None = None
    with ctx.db.session() as session:
        post = session.get(Post, post_id)
        if post is None:
            return
        ws = get_workspace(session, post.workspace_id)
        state = PostState(post.state)
        if state == PostState.PUBLISHING:
            pass  # resume pending deliveries (retry time reached, or a restart)
        elif post.due_at is None or post.held_note:
            return
        elif state in UNAPPROVED:
            deadline = post.due_at - timedelta(minutes=ws.approval_deadline_minutes)
            if now < deadline:
                rearm(ctx, post, ws)
                return
            # Only a submitted post that nobody objected to may go out unapproved, and only if the policy says so.
            if ws.unapproved_action == UnapprovedAction.HOLD or state != PostState.IN_REVIEW:
                move_post(post, PostState.EXPIRED)
                audit(session, ctx, ws.id or 0, post.id, "Herald", "expire", "not approved by its deadline")
                ctx.scheduler.disarm(post_id)
                why = {
                    PostState.DRAFT: "was never submitted for approval",
                    PostState.CHANGES_REQUESTED: "was sent back for changes and not resubmitted",
                    PostState.IN_REVIEW: "wasn't approved",
                }[state]
                notice = Reply(
                    f"⌛ #{post.id} {why} by its deadline ({show_time(deadline, post.due_tz or ws.timezone)}), "
                    f"so it was held and won't publish. To still send it, /schedule {post.id} <new time> "
                    "puts it back in review."
                )
            elif now < post.due_at:
                ctx.scheduler.arm(post_id, post.due_at)
                return
            else:
                notice = begin_publishing(ctx, session, post, ws, state, now, unapproved=True)
        elif state == PostState.SCHEDULED:
            if post.due_at > now:
                rearm(ctx, post, ws)
                return
            notice = begin_publishing(ctx, session, post, ws, state, now)
        else:
            return
    if notice is not None and post.held_note:
        return  # announced by the sweep (announce_held), once for all posts held, and again after a crash
    if notice is not None:
        await tell_team(ctx, ws.id or 0, notice)
    with ctx.db.session() as session:
        current = session.get(Post, post_id)
        going = current is not None and PostState(current.state) == PostState.PUBLISHING and not ws_paused(session, current)
    if going:
        result = await send_pending(ctx, post_id)
        if result is not None:
            await tell_team(ctx, ws.id or 0, result)


def ws_paused(session: Session, post: Post) -> bool:
    return get_workspace(session, post.workspace_id).paused


def begin_publishing(
    ctx: Context, session: Session, post: Post, ws: Workspace, state: PostState, now: datetime, *, unapproved: bool = False
) -> Reply | None:
    """Claim a due post, unless the workspace is paused or the post is past its grace period."""
    assert post.due_at is not None
    tz = post.due_tz or ws.timezone
    if ws.paused:
        return None  # held by the pause; /resume sweeps it
    crisis = crisis_hold(session, post=post, ws=ws)
    if crisis is not None:  # held like a post after downtime: /crisis end walks the held posts
        post.held_note = f"due {show_time(post.due_at, tz)}, while {crisis_words(crisis, tz)}"
        audit(session, ctx, ws.id or 0, post.id, "Herald", "hold", post.held_note)
        return held_notice(post)
    late = now - post.due_at
    if late > ctx.grace:
        post.held_note = (
            f"due {show_time(post.due_at, tz)}, but it couldn't go out within the "
            f"{int(ctx.grace.total_seconds() // 60)}-minute grace period (Herald was down or paused)"
        )
        audit(session, ctx, ws.id or 0, post.id, "Herald", "hold", post.held_note)
        return held_notice(post)
    if claim_post(session, post, state, now, own_times=True):
        ctx.scheduler.disarm(post.id or 0)
        session.refresh(post)
        detail = "published without approval, as the policy allows" if unapproved else "due"
        if late > LATE_NOTICE:
            detail += f", {format_lateness(late)} late"
        audit(session, ctx, ws.id or 0, post.id, "Herald", "publishing", detail)
        if unapproved:
            return Reply(f"ℹ️ #{post.id} wasn't approved by its time; the policy says publish anyway, so it's going out.")
        if late > LATE_NOTICE:  # a catch-up after downtime or a pause says so, rather than pass for on time
            return Reply(f"⏱ #{post.id} goes out {format_lateness(late)} late: its time was {show_time(post.due_at, tz)} "
                         f"(Herald was down or paused; still within the {int(ctx.grace.total_seconds() // 60)}-minute "
                         "grace period).")
    return None


# a post going out later than this after its time is announced as late (the clock and the sweep run on time
# within seconds; anything beyond a minute means Herald was down or paused)
LATE_NOTICE = timedelta(minutes=1)


def format_lateness(late: timedelta) -> str:
    minutes = int(late.total_seconds() // 60)
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


async def recover_interrupted(ctx: Context, *, at_start: bool = False) -> int:
    """Deliveries left `sending` by a crash are checked with their network (publishing/outcomes.py): found ones
    become sent, surely-absent ones pending again, the rest unconfirmed; the team is told. Returns how many."""
    now = ctx.clock.now()
    with ctx.db.session() as session:
        query = select(Delivery, Post, Account).where(Delivery.state == DeliveryState.SENDING.value) \
            .where(Delivery.post_id == Post.id).where(Delivery.account_id == Account.id)
        stuck = [
            (d.id, d.claimed_at, d.post_id, outgoing_of(ctx, session, d, p, a))
            for d, p, a in session.exec(query).all()
            if (at_start and d.claimed_by == ctx.worker_id) or (d.claimed_at and now - d.claimed_at > STALE_SENDING)
        ]
    # each is still `sending` while its network is asked: a crash meanwhile leaves it for the next recovery
    answers = await asyncio.gather(*(_ask(ctx, prepared, claimed_at or now)
                                     for _id, claimed_at, _post, prepared in stuck))
    post_ids = await recover_steps(ctx, at_start=at_start)  # thread parts and comments a crash left in flight
    recovered = len(post_ids)
    for (delivery_id, claimed_at, post_id, prepared), found in zip(stuck, answers, strict=True):
        assert delivery_id is not None
        if _recover(ctx, delivery_id, claimed_at, found, prepared[0].name if prepared else ""):
            recovered += 1
            post_ids.add(post_id)
    for post_id in sorted(post_ids):
        # the team is told before the post's outcome is stored: a crash in between leaves it publishing with
        # nothing in flight, which the next sweep settles and tells again (twice, rather than never)
        notice = settle(ctx, post_id, preview=True)
        if notice is not None:
            with ctx.db.session() as session:
                post = session.get(Post, post_id)
                ws_id = post.workspace_id if post else 0
            await tell_team(ctx, ws_id, notice)
        settle_once(ctx, post_id)
    return recovered


async def _ask(ctx: Context, prepared: tuple[AccountView, Outgoing] | None, since: datetime) -> Found:
    """What the delivery's network says about it; CANT_TELL without a connector or readable credentials."""
    network = ctx.networks.get(prepared[0].network) if prepared is not None else None
    if prepared is None or network is None:
        return CANT_TELL
    async with send_slot(prepared[0].network):
        found = await ask_network(network, prepared[0], prepared[1], since)
    return not_anothers(ctx, prepared[1].delivery_id, found)


def _recover(ctx: Context, delivery_id: int, claimed_at: datetime | None, found: Found, account: str) -> bool:
    """Store what the check found for one delivery a crash left `sending`, conditional on the claim it had: of
    two workers recovering it at once, one moves it and tells. True if this one did."""
    now = ctx.clock.now()
    if isinstance(found, Published):
        values: dict[str, Any] = dict(state=DeliveryState.SENT.value, remote_id=found.remote_id,
                                      remote_url=found.url, sent_at=now, error_kind=None, last_error=None,
                                      metrics_due_at=first_metrics_at(now))
    elif found is None:  # surely not there: an ordinary retry, now
        values = dict(state=DeliveryState.PENDING.value, not_before=now, error_kind=ErrorKind.TRANSIENT.value,
                      last_error=f"Herald stopped while sending it; {account}'s network says the post isn't there")
    else:
        values = dict(state=DeliveryState.UNCONFIRMED.value, error_kind=ErrorKind.UNKNOWN_OUTCOME.value,
                      last_error="Herald stopped while sending it, before the network's answer was saved")
    with ctx.db.session() as session:
        moved = session.exec(  # type: ignore[call-overload]
            update(Delivery).where(col(Delivery.id) == delivery_id)
            .where(col(Delivery.state) == DeliveryState.SENDING.value)
            .where(col(Delivery.claimed_at) == claimed_at)
            .values(updated_at=now, **values)
        )
        if moved.rowcount != 1:
            return False
        if isinstance(found, Published):
            delivery = session.get(Delivery, delivery_id)
            assert delivery is not None
            delivery.resume = {**(delivery.resume or {}), CHECKED: now.isoformat()}
    return True


async def sweep(ctx: Context, *, workspace_id: int | None = None) -> int:
    """The safety net: find every post whose time has come and isn't done, and run it. Returns how many."""
    now = ctx.clock.now()
    await recover_interrupted(ctx)
    with ctx.db.session() as session:
        query = select(Post, Workspace).where(col(Post.workspace_id) == col(Workspace.id))
        if workspace_id is not None:
            query = query.where(Post.workspace_id == workspace_id)
        # only posts whose time (or approval deadline) has come, found in SQL through ix_post_state_due: this
        # runs every 30 s, and reading every post due within 15 days cost 1.2 s at 100,000 posts (bench/)
        longest = session.exec(select(func.max(Workspace.approval_deadline_minutes))).one() or 0
        candidates = session.exec(
            query.where(col(Post.held_note).is_(None)).where(or_(
                and_(col(Post.state) == PostState.SCHEDULED.value, col(Post.due_at) <= now),
                and_(col(Post.state).in_([s.value for s in UNAPPROVED]),
                     col(Post.due_at) <= now + timedelta(minutes=longest)),
            ))
        ).all()
        due = [
            post.id for post, ws in candidates
            if post.due_at is not None and (
                post.due_at <= now if PostState(post.state) == PostState.SCHEDULED
                else post.due_at - timedelta(minutes=ws.approval_deadline_minutes) <= now
            )
        ]
        publishing = session.exec(
            query.where(Post.state == PostState.PUBLISHING.value)
        ).all()
        for post, _ws in publishing:
            deliveries = [d for d, _a in post_targets(session, post)]
            if any(DeliveryState(d.state) == DeliveryState.SENDING for d in deliveries):
                continue  # in flight; whoever sends it settles the post (or recovery does)
            pending = [d for d in deliveries if DeliveryState(d.state) == DeliveryState.PENDING]
            # a pending delivery whose time has come, or none pending at all: a post a crash left unsettled
            if not pending or any(d.not_before is None or d.not_before <= now for d in pending):
                due.append(post.id)
            elif post.due_local and any(s.not_before is None or s.not_before <= now for s in open_steps(
                    session, [d.id for d in deliveries if d.id is not None
                              and DeliveryState(d.state) == DeliveryState.SENT])):
                # some audiences still wait for their own time: the thread parts or comment of one already sent
                # don't wait with them
                due.append(post.id)
    # what this process is running already (its on-time job, /publish, a send waiting for a slot) is left to
    # that run: a second run beside it would only wait for the same slots and lose every claim
    due = [post_id for post_id in due if post_id not in ctx.sends.running]
    # side by side, like the on-time jobs: one slow network must not make the posts after it miss their
    # grace period (the send slots bound how many requests go at once)
    results = await asyncio.gather(*(run_due(ctx, post_id) for post_id in due if post_id is not None),
                                   return_exceptions=True)
    for post_id, result in zip(due, results, strict=True):
        if isinstance(result, Exception):
            log.error("sweep could not run post %s", post_id, exc_info=result)
        elif isinstance(result, BaseException):
            raise result  # the process is going down (SystemExit, KeyboardInterrupt, cancellation)

    await announce_held(ctx, workspace_id=workspace_id)
    return len(due)
