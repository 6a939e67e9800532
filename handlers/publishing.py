"""Publishing: exactly once per account, never silently.

The rules (ARCHITECTURE.md, "The promises"):
- a post is claimed by one conditional UPDATE (state → publishing) and each delivery by another
  (pending → sending) before any network call, so two workers or two triggers can't both send;
- the remote id is stored the moment the network answers, in its own transaction;
- a send whose outcome is unknown (an error after the request may have left, or a crash while
  sending) becomes `unconfirmed`, is shown to the team, and is never retried automatically;
- only failures that surely did not post (rate limited, failed before sending) are retried on
  their own, after the wait the network asked for;
- every outcome is reported per account in the team chat with the command that fixes it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, update
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session, col, select

from handlers.approvals import require_publishable
from handlers.cards import UNAPPROVED, approvals_at_revision, rearm, state_label
from handlers.chat import Reply
from handlers.common import (
    Request,
    account_view,
    audit,
    claim_once,
    compose,
    get_post,
    get_workspace,
    link_for_account,
    post_targets,
    show_time,
    split_post_and_rest,
    target_named,
    tell_team,
    text_for_account,
)
from handlers.context import Context
from handlers.engagement import first_metrics_at
from handlers.errors import UserError
from handlers.health import DEAD, fresh_view, held_reason, mark_dead
from handlers.media import load_media
from handlers.ports import (
    GUARD,
    IN_FLIGHT,
    AccountView,
    ErrorKind,
    MediaFile,
    Outgoing,
    Published,
    PublishError,
)
from handlers.registry import EDITORS, command
from storage.crypto import SecretBoxError
from storage.models import (
    POST_TRANSITIONS,
    Account,
    Delivery,
    DeliveryState,
    Post,
    PostState,
    UnapprovedAction,
    UTCDateTime,
    Workspace,
    move_delivery,
    move_post,
)

log = logging.getLogger("herald.publishing")

MAX_AUTOMATIC_ATTEMPTS = 5
STALE_SENDING = timedelta(minutes=10)
DEFAULT_RETRY_AFTER = 60.0


@dataclass(frozen=True)
class Job:
    delivery_id: int
    account: AccountView
    outgoing: Outgoing


def claim_post(session: Session, post: Post, expected: PostState, now: datetime) -> bool:
    """Move a post to publishing with one conditional UPDATE; False if someone else got there first.

    The claim bumps the post's version (so any stale write elsewhere fails), records which revision
    goes out, and stamps its pending deliveries with the time they are meant to go out from.
    """
    if PostState.PUBLISHING not in POST_TRANSITIONS[expected]:
        return False
    result = session.exec(  # type: ignore[call-overload]
        update(Post)
        .where(col(Post.id) == post.id)
        .where(col(Post.state) == expected.value)
        .values(state=PostState.PUBLISHING.value, held_note=None, version=col(Post.version) + 1,
                sent_revision=col(Post.revision))
    )
    if result.rowcount != 1:
        return False
    session.exec(  # type: ignore[call-overload]
        update(Delivery)
        .where(col(Delivery.post_id) == post.id)
        .where(col(Delivery.state) == DeliveryState.PENDING.value)
        .where(col(Delivery.not_before).is_(None))
        .values(not_before=now)
    )
    return True


# The two statements every send runs, built once (building them per call cost a third of the claim, bench/)
_CLAIM_DELIVERY = (
    update(Delivery)
    .where(col(Delivery.id) == bindparam("delivery_id"))
    .where(col(Delivery.state) == DeliveryState.PENDING.value)
    .where((col(Delivery.not_before).is_(None)) | (col(Delivery.not_before) <= bindparam("now", type_=UTCDateTime())))
    .values(
        state=DeliveryState.SENDING.value, attempts=col(Delivery.attempts) + 1,
        auto_attempts=col(Delivery.auto_attempts) + 1, claimed_at=bindparam("now", type_=UTCDateTime()),
        claimed_by=bindparam("worker"), text=bindparam("text"), updated_at=bindparam("now", type_=UTCDateTime()),
    )
)
_SENDING_TO_SENT = (
    update(Delivery)
    .where(col(Delivery.id) == bindparam("delivery_id"))
    .where(col(Delivery.state) == DeliveryState.SENDING.value)
    .values(
        state=DeliveryState.SENT.value, remote_id=bindparam("remote_id"), remote_url=bindparam("remote_url"),
        sent_at=bindparam("now", type_=UTCDateTime()), updated_at=bindparam("now", type_=UTCDateTime()),
        error_kind=None, last_error=None, metrics_due_at=bindparam("metrics_due_at", type_=UTCDateTime()),
    )
)


def claim_delivery(ctx: Context, delivery_id: int, text: str) -> bool:
    """pending → sending for exactly one caller, before any network call."""
    with ctx.db.engine.begin() as connection:  # a Core connection: half the cost of an ORM session (bench/)
        result = connection.execute(_CLAIM_DELIVERY, {"delivery_id": delivery_id, "now": ctx.clock.now(),
                                                      "worker": ctx.worker_id, "text": text})
        return bool(result.rowcount == 1)


def record_sent(ctx: Context, delivery_id: int, published: Published) -> bool:
    """Store the network's answer at once. True if it came late (the delivery was given up as unconfirmed)."""
    now = ctx.clock.now()
    with ctx.db.engine.begin() as connection:  # the usual case, sending → sent, in one conditional UPDATE
        result = connection.execute(_SENDING_TO_SENT, {
            "delivery_id": delivery_id, "remote_id": published.remote_id, "remote_url": published.url, "now": now,
            "metrics_due_at": first_metrics_at(now)})
        if result.rowcount == 1:
            return False
    with ctx.db.session() as session:  # it was no longer sending: answered twice, or late
        delivery = session.get(Delivery, delivery_id)
        assert delivery is not None
        if DeliveryState(delivery.state) == DeliveryState.SENT:
            log.warning("delivery %s answered twice; keeping the first remote id %s", delivery_id, delivery.remote_id)
            return False
        late = DeliveryState(delivery.state) != DeliveryState.SENDING
        move_delivery(delivery, DeliveryState.SENT)
        delivery.remote_id, delivery.remote_url = published.remote_id, published.url
        delivery.sent_at = delivery.updated_at = now
        delivery.error_kind = delivery.last_error = None
        delivery.metrics_due_at = first_metrics_at(now)
        return late


def record_failure(
    ctx: Context, delivery_id: int, kind: ErrorKind, reason: str, retry_after: float | None,
    resume: dict[str, Any] | None = None, *, paced: bool = False,
) -> bool:
    """Store a failure by its kind. True if it came late (the delivery was given up as unconfirmed).

    `resume` is the progress a two-phase network made (its container or upload id), kept so the
    next attempt carries on from it instead of starting again. `paced`: Herald's own budget for the
    account held the send back before any request — it waits for its slot and the claim is not an attempt.
    """
    now = ctx.clock.now()
    with ctx.db.session() as session:
        delivery = session.get(Delivery, delivery_id)
        assert delivery is not None
        state = DeliveryState(delivery.state)
        if state not in (DeliveryState.SENDING, DeliveryState.UNCONFIRMED, DeliveryState.PENDING):
            return False
        late = state == DeliveryState.UNCONFIRMED
        if late and kind in (ErrorKind.UNKNOWN_OUTCOME, ErrorKind.RATE_LIMITED, ErrorKind.TRANSIENT):
            return False  # still unknown, or a retry the team must decide on: leave it unconfirmed
        delivery.error_kind, delivery.last_error, delivery.updated_at = kind.value, reason, now
        if resume:  # progress is kept whatever happens next (a paced send resumes from it too)
            delivery.resume = {**(delivery.resume or {}), **resume}
        if paced and state == DeliveryState.SENDING:
            delivery.attempts, delivery.auto_attempts = max(0, delivery.attempts - 1), max(0, delivery.auto_attempts - 1)
            move_delivery(delivery, DeliveryState.PENDING)
            delivery.not_before = now + timedelta(seconds=max(1.0, retry_after or DEFAULT_RETRY_AFTER))
            return False
        if kind == ErrorKind.UNKNOWN_OUTCOME:
            move_delivery(delivery, DeliveryState.UNCONFIRMED)
        elif kind in (ErrorKind.RATE_LIMITED, ErrorKind.TRANSIENT) and delivery.auto_attempts < MAX_AUTOMATIC_ATTEMPTS:
            wait = retry_after if retry_after is not None else (
                DEFAULT_RETRY_AFTER if kind == ErrorKind.RATE_LIMITED else 15.0 * 2 ** delivery.attempts
            )
            move_delivery(delivery, DeliveryState.PENDING)
            delivery.not_before = now + timedelta(seconds=max(1.0, wait))
        elif kind in (ErrorKind.RATE_LIMITED, ErrorKind.TRANSIENT) and (delivery.resume or {}).get(IN_FLIGHT):
            # retries ran out while a post may exist on the network (an upload or container under way): ask
            move_delivery(delivery, DeliveryState.UNCONFIRMED)
            delivery.last_error = f"{reason} — and a post may already exist there from an earlier attempt"
        else:
            move_delivery(delivery, DeliveryState.FAILED)
        return late


# Sends in flight at once per process, and per network. The slot is taken before the claim, so a delivery
# waiting for one is still `pending` (a crash then loses nothing and marks nothing unconfirmed). The total stays
# below the shared HTTP client's pool (100, bot/networks/http.py): requests queued inside httpcore's pool cost
# O(queued × connections) at every request start and end, and 3,000 sends due at once took minutes (bench/).
MAX_SENDS = 96
MAX_SENDS_PER_NETWORK = 48
_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Semaphore]] = weakref.WeakKeyDictionary()


@asynccontextmanager
async def send_slot(network: str) -> AsyncIterator[None]:
    """Hold one of the network's send slots and one of the process's (the network's first: no slot of the
    process is held while waiting for a busy network)."""
    slots = _SLOTS.setdefault(asyncio.get_running_loop(), {})
    mine = slots.setdefault(network, asyncio.Semaphore(MAX_SENDS_PER_NETWORK))
    everyone = slots.setdefault("", asyncio.Semaphore(MAX_SENDS))
    async with mine, everyone:
        yield


async def send_one(ctx: Context, job: Job) -> None:
    async with send_slot(job.account.network):
        await _send_one(ctx, job)


async def _send_one(ctx: Context, job: Job) -> None:
    if ctx.sends.stopping:
        return  # the process is stopping: the delivery stays pending for another worker or the next start
    if not claim_delivery(ctx, job.delivery_id, job.outgoing.text):
        return
    ctx.sends.in_flight += 1
    try:
        await _send_claimed(ctx, job)
    finally:
        ctx.sends.in_flight -= 1


async def drain_sends(ctx: Context, timeout: float) -> int:
    """Stop claiming new sends and wait (up to `timeout` seconds) for those in flight; how many remain.

    A send cut off by the stop would be `unconfirmed` (its answer never stored), so a stop lets them end.
    """
    ctx.sends.stopping = True
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while ctx.sends.in_flight and loop.time() < deadline:
        await asyncio.sleep(0.05)
    return ctx.sends.in_flight


async def _send_claimed(ctx: Context, job: Job) -> None:
    network = ctx.networks.get(job.account.network)
    if network is None:
        record_failure(ctx, job.delivery_id, ErrorKind.REJECTED,
                       f"this Herald has no {job.account.network} connector", None)
        return
    view: AccountView | None = None
    try:
        view = await fresh_view(ctx, network, job.account)  # a refused refresh marks the account itself
        published = await network.publish(view, job.outgoing)
    except PublishError as exc:
        late = record_failure(ctx, job.delivery_id, exc.kind, exc.reason, exc.retry_after, exc.resume,
                              paced=exc.paced)
        if exc.kind == ErrorKind.AUTH_EXPIRED and view is not None:  # the network refused the token itself:
            await mark_dead(ctx, job.account.id, exc.reason)  # marked, and the team told what it affects
    except Exception as exc:  # the request may have left: outcome unknown, never resend blindly
        log.exception("publishing delivery %s failed with an unexpected error", job.delivery_id)
        late = record_failure(ctx, job.delivery_id, ErrorKind.UNKNOWN_OUTCOME,
                              f"the send broke off ({type(exc).__name__}) after it may have reached the network", None)
    else:
        late = record_sent(ctx, job.delivery_id, published)
    if late:
        await resettle(ctx, job.outgoing.post_id)


async def resettle(ctx: Context, post_id: int) -> None:
    """A late answer changed what the team was told: settle the post again and say so."""
    with ctx.db.session() as session:
        post = session.get(Post, post_id)
        if post is None or PostState(post.state) not in (PostState.FAILED, PostState.PARTIALLY_PUBLISHED):
            return
        move_post(post, PostState.PUBLISHING)
        ws_id = post.workspace_id
    notice = settle(ctx, post_id)
    if notice is not None:
        await tell_team(ctx, ws_id, Reply("Update — a late answer arrived.\n" + notice.text))


def pending_jobs(ctx: Context, session: Session, post: Post, now: datetime) -> list[Job]:
    """The deliveries to send now. One that can't be prepared, or is past the grace period, fails with a reason."""
    jobs = []
    media: tuple[MediaFile, ...] | None = None
    for delivery, account in post_targets(session, post):
        if DeliveryState(delivery.state) != DeliveryState.PENDING:
            continue
        if delivery.not_before is not None and delivery.not_before > now:
            continue
        assert delivery.id is not None and post.id is not None
        if delivery.not_before is not None and now - delivery.not_before > ctx.grace:
            move_delivery(delivery, DeliveryState.FAILED)
            delivery.error_kind = HELD
            delivery.last_error = (
                f"it was meant to go out {show_time(delivery.not_before, post.due_tz or 'UTC')} and couldn't within "
                f"the {int(ctx.grace.total_seconds() // 60)}-minute grace period (Herald was down or paused)"
            )
            continue
        if account.health == DEAD:  # held: never send with a token known to be dead
            move_delivery(delivery, DeliveryState.FAILED)
            delivery.error_kind, delivery.last_error = ErrorKind.AUTH_EXPIRED.value, held_reason(account)
            continue
        try:
            view = account_view(ctx, account, with_secrets=True)
        except SecretBoxError as exc:
            move_delivery(delivery, DeliveryState.FAILED)
            delivery.error_kind, delivery.last_error = ErrorKind.AUTH_EXPIRED.value, str(exc)
            continue
        text = compose(post, text_for_account(post, account))
        if media is None:
            media = load_media(session, post)
        jobs.append(Job(delivery.id, view, Outgoing(
            delivery_id=delivery.id, post_id=post.id, idempotency_key=delivery.idempotency_key, text=text,
            link=link_for_account(post, account), media=media, campaign=post.campaign, resume=dict(delivery.resume or {}),
        )))
    return jobs


async def send_pending(ctx: Context, post_id: int) -> Reply | None:
    """Send every pending delivery of a publishing post, then settle its state; the outcome notice."""
    with ctx.db.session() as session:
        post = session.get(Post, post_id)
        if post is None or PostState(post.state) != PostState.PUBLISHING:
            return None
        jobs = pending_jobs(ctx, session, post, ctx.clock.now())
    await asyncio.gather(*(send_one(ctx, job) for job in jobs))
    if ctx.sends.stopping and _still_pending(ctx, post_id):
        return None  # not settled now: the next start (or another worker's sweep) sends the rest and says so
    return settle_once(ctx, post_id)


def _still_pending(ctx: Context, post_id: int) -> bool:
    with ctx.db.session() as session:
        return session.exec(
            select(Delivery.id).where(Delivery.post_id == post_id).where(Delivery.state == DeliveryState.PENDING.value)
        ).first() is not None


HELD = "held"
FIXES = {
    HELD: "/retry {post} sends it now",
    ErrorKind.REJECTED.value: "fix the text with /variant {post} {account} <text>, then /retry {post}",
    ErrorKind.AUTH_EXPIRED.value: "reconnect with /connect {network} name={account} …, then /retry {post}",
    ErrorKind.RATE_LIMITED.value: "the network kept refusing for now; /retry {post} later",
    ErrorKind.TRANSIENT.value: "the network was unreachable; /retry {post}",
}


def delivery_line(post: Post, delivery: Delivery, account: Account, tz: str) -> str:
    state = DeliveryState(delivery.state)
    who = f"{account.name} ({account.network})"
    if state == DeliveryState.SENT:
        return f"  ✓ {who}: {delivery.remote_url or delivery.remote_id}"
    if state == DeliveryState.UNCONFIRMED:
        return (
            f"  ? {who}: unconfirmed — {delivery.last_error}. It may be live, so Herald won't resend it on "
            f"its own. Check the account: if it's there, /confirm {post.id} {account.name} <link>; "
            f"if not, /retry {post.id} {account.name}"
        )
    if state == DeliveryState.FAILED:
        fix = FIXES.get(delivery.error_kind or "", "/retry {post}").format(
            post=post.id, account=account.name, network=account.network)
        return f"  ✗ {who}: {delivery.last_error} → {fix}"
    if state == DeliveryState.PENDING and delivery.not_before is not None:
        return f"  ⏳ {who}: {delivery.last_error}; retrying by itself at {show_time(delivery.not_before, tz)}"
    return f"  … {who}: {state.value}"


@contextmanager
def _undone(session: Session, undo: bool) -> Iterator[None]:
    """Roll back what the block did when `undo`: a preview of what it would do, changing nothing."""
    try:
        yield
    finally:
        if undo:
            session.rollback()


def settle(ctx: Context, post_id: int, *, preview: bool = False) -> Reply | None:
    """Set a publishing post's final state from its deliveries; the per-account notice, or None if not done.

    With `preview`, only the notice: nothing is stored.
    """
    now = ctx.clock.now()
    with ctx.db.session() as session, _undone(session, preview):
        post = session.get(Post, post_id)
        if post is None or PostState(post.state) != PostState.PUBLISHING:
            return None
        ws = get_workspace(session, post.workspace_id)
        pairs = post_targets(session, post)
        states = [DeliveryState(d.state) for d, _a in pairs]
        if DeliveryState.SENDING in states:
            return None  # another send is still in flight; it settles the post when it ends
        tz = post.due_tz or ws.timezone
        lines = [delivery_line(post, d, a, tz) for d, a in pairs]
        waiting = [d.not_before for d, _a in pairs if DeliveryState(d.state) == DeliveryState.PENDING and d.not_before]
        sent = states.count(DeliveryState.SENT)
        if sent and post.published_at is None:  # live since its first account went out
            post.published_at = min((d.sent_at for d, _a in pairs if d.sent_at is not None), default=now)
        waits: list[str] = []
        if DeliveryState.PENDING in states:
            if waiting:
                ctx.scheduler.arm(post_id, min(waiting))
            head = f"⏳ #{post.id}: {sent} of {len(states)} sent so far; the rest retry by themselves."
            # told once per wait: a delivery paced by its account's budget waits without new attempts, so a
            # burst of posts doesn't repeat the same notice at every round
            waits = [f"waiting:{d.id}:{d.attempts}" for d, _a in pairs if DeliveryState(d.state) == DeliveryState.PENDING]
        elif sent == len(states):
            move_post(post, PostState.PUBLISHED)
            head = f"📣 #{post.id} is published on {'all ' if sent > 1 else ''}{sent} account(s):"
        elif sent:
            move_post(post, PostState.PARTIALLY_PUBLISHED)
            head = f"⚠️ #{post.id} is partly published: {sent} of {len(states)} accounts."
        else:
            move_post(post, PostState.FAILED)
            head = f"❌ #{post.id} didn't publish on any of its {len(states)} account(s)."
        if not waits:
            audit(session, ctx, post.workspace_id, post.id, "Herald", "publish",
                  f"{state_label(post)}: {sent}/{len(states)} sent")
    if waits and not preview and not any([claim_once(ctx, key) for key in waits]):  # noqa: C419 - claim each
        return None
    return Reply(head + "\n" + "\n".join(lines))


def settle_once(ctx: Context, post_id: int) -> Reply | None:
    """`settle`, where another worker settling the same post at the same moment (each sent some of its
    deliveries) is no error: that one's write won, and it tells the team. Anything else that changed the
    post meanwhile leaves it publishing with nothing pending, which the sweep settles."""
    try:
        return settle(ctx, post_id)
    except StaleDataError:
        log.info("post %s was settled by another worker at the same moment", post_id)
        return None


async def run_due(ctx: Context, post_id: int) -> None:
    """The clock reached this post's trigger time: publish it, hold it, or expire it, per the rules.

    A post held past the grace period is announced by the sweep (handlers.downtime.announce_held), one
    notice per workspace for all the posts held, and again if a crash cut that notice off.
    """
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
    late = now - post.due_at
    if late > ctx.grace:
        post.held_note = (
            f"due {show_time(post.due_at, tz)}, but it couldn't go out within the "
            f"{int(ctx.grace.total_seconds() // 60)}-minute grace period (Herald was down or paused)"
        )
        audit(session, ctx, ws.id or 0, post.id, "Herald", "hold", post.held_note)
        return held_notice(post)
    if claim_post(session, post, state, now):
        ctx.scheduler.disarm(post.id or 0)
        session.refresh(post)
        detail = "published without approval, as the policy allows" if unapproved else "due"
        audit(session, ctx, ws.id or 0, post.id, "Herald", "publishing", detail)
        if unapproved:
            return Reply(f"ℹ️ #{post.id} wasn't approved by its time; the policy says publish anyway, so it's going out.")
    return None


def held_notice(post: Post) -> Reply:
    """The notice of one post held past the grace period."""
    return Reply(
        f"⚠️ #{post.id} was {post.held_note}. It's held so it doesn't go out late by surprise.\n"
        f"/publish {post.id} sends it now · /schedule {post.id} <when> moves it · /cancel {post.id} drops it"
    )


async def recover_interrupted(ctx: Context, *, at_start: bool = False) -> int:
    """Deliveries left `sending` by a crash become unconfirmed, and the team is told. Returns how many."""
    now = ctx.clock.now()
    with ctx.db.session() as session:
        query = select(Delivery).where(Delivery.state == DeliveryState.SENDING.value)
        stuck = [
            d for d in session.exec(query).all()
            if (at_start and d.claimed_by == ctx.worker_id) or (d.claimed_at and now - d.claimed_at > STALE_SENDING)
        ]
        post_ids = set()
        recovered = 0
        for delivery in stuck:
            # conditional on the claim it had: of two workers recovering it at once, one moves it and tells
            moved = session.exec(  # type: ignore[call-overload]
                update(Delivery).where(col(Delivery.id) == delivery.id)
                .where(col(Delivery.state) == DeliveryState.SENDING.value)
                .where(col(Delivery.claimed_at) == delivery.claimed_at)
                .values(state=DeliveryState.UNCONFIRMED.value, error_kind=ErrorKind.UNKNOWN_OUTCOME.value,
                        last_error="Herald stopped while sending it, before the network's answer was saved",
                        updated_at=now)
            )
            if moved.rowcount == 1:
                recovered += 1
                post_ids.add(delivery.post_id)
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
    # side by side, like the on-time jobs: one slow network must not make the posts after it miss their
    # grace period (the send slots bound how many requests go at once)
    results = await asyncio.gather(*(run_due(ctx, post_id) for post_id in due if post_id is not None),
                                   return_exceptions=True)
    for post_id, result in zip(due, results, strict=True):
        if isinstance(result, Exception):
            log.error("sweep could not run post %s", post_id, exc_info=result)
        elif isinstance(result, BaseException):
            raise result  # the process is going down (SystemExit, KeyboardInterrupt, cancellation)
    from handlers.downtime import announce_held  # downtime builds on this module

    await announce_held(ctx, workspace_id=workspace_id)
    return len(due)


def claim_to_publish_now(ctx: Context, session: Session, post: Post, ws: Workspace, actor: str) -> None:
    """The checks of "publish now" (/publish, /held publish), then the claim; UserError if it can't go now."""
    state = PostState(post.state)
    if ws.paused:
        raise UserError(f"Publishing is paused ({ws.pause_reason or 'no reason given'}). /resume first.")
    unapproved = False
    if state in UNAPPROVED:
        if ws.approvals_needed == 0:
            require_publishable(ctx, session, post)
            if state != PostState.IN_REVIEW:
                move_post(post, PostState.IN_REVIEW)
            move_post(post, PostState.APPROVED)
            session.flush()
            state = PostState.APPROVED
        elif state == PostState.IN_REVIEW and ws.unapproved_action == UnapprovedAction.PUBLISH:
            unapproved = True
        elif state == PostState.IN_REVIEW:
            raise UserError(f"#{post.id} isn't approved yet: it's waiting for the approvers (/approve {post.id}).")
        else:
            raise UserError(f"#{post.id} isn't approved yet ({state_label(post)}). /submit {post.id} sends it to the approvers.")
    elif state not in (PostState.APPROVED, PostState.SCHEDULED):
        hint = f" /retry {post.id} re-sends what failed." if state in (
            PostState.FAILED, PostState.PARTIALLY_PUBLISHED) else ""
        raise UserError(f"#{post.id} is {state_label(post)}, so it can't be published now.{hint}")
    require_publishable(ctx, session, post)
    if not claim_post(session, post, state, ctx.clock.now()):
        raise UserError(f"#{post.id} is already being published.")
    audit(session, ctx, ws.id or 0, post.id, actor, "publish now",
          "without approval, as the policy allows" if unapproved else "")
    ctx.scheduler.disarm(post.id or 0)


@command(
    "publish",
    usage="/publish <post>", example="/publish 12",
    summary="publish an approved post now (also sends a post held after downtime)",
    roles=EDITORS,
    group="Publishing",
)
async def publish(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    post_id, _ = split_post_and_rest(req)
    with ctx.db.session() as session:
        post = get_post(session, ws_id, post_id)
        ws = get_workspace(session, ws_id)
        claim_to_publish_now(ctx, session, post, ws, req.actor_name)
    result = await send_pending(ctx, post_id) or Reply(f"#{post_id} is being published.")
    await tell_team(ctx, ws_id, result, skip=req.command.chat)
    return result


@command(
    "retry",
    usage="/retry <post> [account]", example="/retry 12",
    summary="send again what failed; name an account to resend an unconfirmed one after checking it's not live",
    roles=EDITORS,
    group="Publishing",
)
async def retry(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    post_id, account_name = split_post_and_rest(req)
    with ctx.db.session() as session:
        post = get_post(session, ws_id, post_id)
        ws = get_workspace(session, ws_id)
        if ws.paused:
            raise UserError(f"Publishing is paused ({ws.pause_reason or 'no reason given'}). /resume first.")
        state = PostState(post.state)
        if state not in (PostState.FAILED, PostState.PARTIALLY_PUBLISHED):
            raise UserError(f"#{post.id} is {state_label(post)}; /retry is for posts that failed on some account.")
        pairs = post_targets(session, post)
        if account_name:
            chosen = target_named(pairs, account_name)
            if chosen is None:
                raise UserError(f"#{post.id} wasn't sent to an account called {account_name}.")
            delivery, account = chosen
            if DeliveryState(delivery.state) not in (DeliveryState.FAILED, DeliveryState.UNCONFIRMED):
                raise UserError(f"#{post.id} on {account.name} is {delivery.state}; nothing to retry there.")
            again = [delivery]
        else:
            again = [d for d, _a in pairs if DeliveryState(d.state) == DeliveryState.FAILED]
            unconfirmed = [a.name for d, a in pairs if DeliveryState(d.state) == DeliveryState.UNCONFIRMED]
            if not again:
                raise UserError(
                    f"#{post.id} has no failed deliveries. Unconfirmed ones ({', '.join(unconfirmed) or 'none'}) "
                    f"may be live: check, then /retry {post.id} <account> or /confirm {post.id} <account> <link>."
                )
        if (ws.approvals_needed > 0 and post.sent_revision is not None and post.revision != post.sent_revision
                and len(approvals_at_revision(session, post)) < ws.approvals_needed):
            raise UserError(
                f"#{post.id} changed since it went out (now revision {post.revision}), so the new version needs "
                f"approval first: approvers, /approve {post.id}. Then /retry {post.id}."
            )
        # the post is claimed first and each delivery moved back only from the state read: two /retry at once
        # (on two workers) can't both reset a delivery the other one has already claimed and sent again
        if not claim_post(session, post, state, ctx.clock.now()):
            raise UserError(f"#{post.id} is already being retried or published.")
        for delivery in again:
            was = DeliveryState(delivery.state)
            values: dict[str, Any] = {"state": DeliveryState.PENDING.value, "not_before": None, "auto_attempts": 0}
            if account_name is not None and was == DeliveryState.UNCONFIRMED:
                # the team checked the account and found nothing: lift the connector's safety markers
                values["resume"] = {k: v for k, v in (delivery.resume or {}).items() if not k.startswith(GUARD)}
            moved = session.exec(  # type: ignore[call-overload]
                update(Delivery).where(col(Delivery.id) == delivery.id).where(col(Delivery.state) == was.value)
                .values(**values)
            )
            if moved.rowcount != 1:
                raise UserError(f"#{post.id} is already being retried or published.")
        audit(session, ctx, ws_id, post.id, req.actor_name, "retry",
              ", ".join(a.name for d, a in pairs if d in again))
    result = await send_pending(ctx, post_id) or Reply(f"#{post_id} is being retried.")
    await tell_team(ctx, ws_id, result, skip=req.command.chat)
    return result


@command(
    "confirm",
    usage="/confirm <post> <account> [link]", example="/confirm 12 acme-x https://x.com/acme/status/1",
    summary="mark an unconfirmed delivery as live after you found it on the network",
    roles=EDITORS,
    group="Publishing",
)
async def confirm(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    post_id, rest = split_post_and_rest(req)
    account_name, _, link = rest.partition(" ")
    if not account_name:
        raise UserError(f"Which account? Usage: {req.spec.usage}")
    with ctx.db.session() as session:
        post = get_post(session, ws_id, post_id)
        chosen = target_named(post_targets(session, post), account_name)
        adding_link = chosen is not None and DeliveryState(chosen[0].state) == DeliveryState.SENT \
            and chosen[0].remote_id is None and bool(link.strip())
        if chosen is None or (DeliveryState(chosen[0].state) != DeliveryState.UNCONFIRMED and not adding_link):
            raise UserError(f"#{post.id} has no unconfirmed delivery to {account_name}.")
        delivery, account = chosen
        given = link.strip()
        is_url = "://" in given
        if given and not is_url and not re.fullmatch(r"[\w:./\-]{1,200}", given):
            raise UserError(f"'{given}' is neither a link nor a post id. Usage: {req.spec.usage}")
        network = ctx.networks.get(account.network)
        read_id = getattr(network, "remote_id_from_url", None)
        remote_id = (read_id(account_view(ctx, account), given) if is_url and read_id else None) or (
            None if is_url else given or None)
        if not adding_link:
            move_delivery(delivery, DeliveryState.SENT)
        now = ctx.clock.now()
        delivery.remote_url = given if is_url else delivery.remote_url
        delivery.remote_id = remote_id or delivery.remote_id
        delivery.updated_at = now
        if not adding_link:
            delivery.sent_at = now
        delivery.error_kind = delivery.last_error = None
        # numbers are read for it like for any sent delivery, when Herald knows its id on the network
        delivery.metrics_due_at = first_metrics_at(now) if delivery.remote_id else None
        no_numbers = delivery.remote_id is None
        audit(session, ctx, ws_id, post.id, req.actor_name, "confirm", f"{account.name} is live {given}".strip())
        state = PostState(post.state)
        if state in (PostState.FAILED, PostState.PARTIALLY_PUBLISHED):
            move_post(post, PostState.PUBLISHING)
    result = settle(ctx, post_id) or Reply(f"Marked #{post_id} on {account_name} as live.")
    if no_numbers:
        result = Reply(result.text + f"\n(Herald can't read numbers for {account_name} without the post's link "
                       f"or id: /confirm {post_id} {account_name} <link> again adds it.)")
    await tell_team(ctx, ws_id, result, skip=req.command.chat)
    return result
