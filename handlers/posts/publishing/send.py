"""Publishing: exactly once per account, never silently.

The rules (ARCHITECTURE.md, "The promises"):
- a post is claimed by one conditional UPDATE (state → publishing) and each delivery by another
  (pending → sending) before any network call, so two workers or two triggers can't both send;
- the remote id is stored the moment the network answers, in its own transaction;
- a send whose outcome is unknown (an error after the request may have left, or a crash while
  sending) is first checked with the network where it can tell (outcomes.py); what stays unknown becomes
  `unconfirmed`, is shown to the team, and is never retried automatically;
- only failures that surely did not post (rate limited, failed before sending) are retried on
  their own, after the wait the network asked for;
- every outcome is reported per account in the team chat with the command that fixes it.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from handlers.core.chat import Reply
from handlers.core.context import Context
from handlers.core.crisis import crisis_hold, crisis_words
from handlers.core.lookups import (
    account_view,
    audience_name,
    delivery_audience,
    get_workspace,
    post_targets,
)
from handlers.core.ports import (
    AccountView,
    ErrorKind,
    MediaFile,
    Network,
    Outgoing,
    Published,
    PublishError,
)
from handlers.core.when import show_time
from handlers.posts.media import load_media
from handlers.posts.publishing.claims import claim_delivery, record_failure, record_found, record_sent
from handlers.posts.publishing.outcomes import ask_network, not_anothers
from handlers.posts.publishing.settle import HELD, resettle, settle_once
from handlers.posts.publishing.threads import send_steps
from handlers.posts.render import render
from handlers.workspace.health import DEAD, fresh_view, held_reason, mark_dead
from storage.crypto import SecretBoxError
from storage.models import (
    Crisis,
    Delivery,
    DeliveryState,
    Post,
    PostState,
    Workspace,
    move_delivery,
)

log = logging.getLogger("herald.publishing")


@dataclass(frozen=True)
class Job:
    delivery_id: int
    account: AccountView
    outgoing: Outgoing


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
    began = ctx.clock.now()
    try:
        view = await fresh_view(ctx, network, job.account)  # a refused refresh marks the account itself
    except PublishError as exc:  # nothing was published: the refresh is no send
        late = record_failure(ctx, job.delivery_id, exc.kind, exc.reason, exc.retry_after, exc.resume,
                              paced=exc.paced)
    except Exception as exc:  # a database or refresh error before any send left: safe to retry
        log.warning("preparing delivery %s failed before anything was sent: %r", job.delivery_id, exc)
        late = record_failure(ctx, job.delivery_id, ErrorKind.TRANSIENT,
                              f"Herald couldn't prepare the send ({type(exc).__name__}); nothing was sent", None)
    else:
        late = await _publish(ctx, network, view, job, began)
    if late:
        await resettle(ctx, job.outgoing.post_id)


async def _publish(ctx: Context, network: Network, view: AccountView, job: Job, began: datetime) -> bool:
    """Send, and store the answer; an unknown outcome is checked with the network first. True if it came late."""
    try:
        published = await network.publish(view, job.outgoing)
    except PublishError as exc:
        if exc.kind == ErrorKind.UNKNOWN_OUTCOME:
            outgoing = replace(job.outgoing, resume={**job.outgoing.resume, **exc.resume})
            return await _check_unknown(ctx, network, view, outgoing, began, exc.reason, exc.resume)
        late = record_failure(ctx, job.delivery_id, exc.kind, exc.reason, exc.retry_after, exc.resume,
                              paced=exc.paced)
        if exc.kind == ErrorKind.AUTH_EXPIRED:  # the network refused the token itself:
            await mark_dead(ctx, job.account.id, exc.reason)  # marked, and the team told what it affects
        return late
    except Exception as exc:  # the request may have left: outcome unknown, never resend blindly
        log.exception("publishing delivery %s failed with an unexpected error", job.delivery_id)
        return await _check_unknown(
            ctx, network, view, job.outgoing, began,
            f"the send broke off ({type(exc).__name__}) after it may have reached the network", {})
    return record_sent(ctx, job.delivery_id, published)


async def _check_unknown(ctx: Context, network: Network, view: AccountView, outgoing: Outgoing, began: datetime,
                         reason: str, resume: dict[str, Any]) -> bool:
    """The answer was lost: ask the network before the team (publishing/outcomes.py). True if it came late."""
    found = not_anothers(ctx, outgoing.delivery_id, await ask_network(network, view, outgoing, began))
    if isinstance(found, Published):
        return record_found(ctx, outgoing.delivery_id, found)
    if found is None:  # the network says for sure it isn't there: an ordinary retry can't post twice
        return record_failure(ctx, outgoing.delivery_id, ErrorKind.TRANSIENT,
                              f"{reason}; {view.name}'s network says the post isn't there", None, resume)
    return record_failure(ctx, outgoing.delivery_id, ErrorKind.UNKNOWN_OUTCOME, reason, None, resume)


def pending_jobs(ctx: Context, session: Session, post: Post, ws: Workspace, now: datetime) -> list[Job]:
    """The deliveries to send now, each with the post as rendered for its account (handlers/posts/render.py:
    the text, link and media /preview shows). One that can't be prepared, or is past the grace period, fails
    with a reason."""
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
            audience = delivery_audience(session, delivery)
            own = (f" for {audience_name(audience)} ({show_time(delivery.not_before, audience.timezone)})"
                   if audience is not None and delivery.due_at is not None else "")
            delivery.last_error = (
                f"it was meant to go out {show_time(delivery.not_before, post.due_tz or 'UTC')}{own} and couldn't "
                f"within the {int(ctx.grace.total_seconds() // 60)}-minute grace period (Herald was down or paused), "
                "so it's held rather than going out late by surprise"
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
        audience = delivery_audience(session, delivery)
        rendered = render(ctx, post, account, ws, checked=False, session=session,  # the check held when approved
                          audience=audience)
        if media is None:
            media = load_media(session, post)
        jobs.append(Job(delivery.id, view, Outgoing(
            delivery_id=delivery.id, post_id=post.id, idempotency_key=delivery.idempotency_key, text=rendered.text,
            link=rendered.link, media=media, campaign=post.campaign, resume=dict(delivery.resume or {}),
            country=audience.country if audience is not None else None,
        )))
    return jobs


async def send_pending(ctx: Context, post_id: int) -> Reply | None:
    """Send every pending delivery of a publishing post, then settle its state; the outcome notice."""
    with ctx.sends.running_post(post_id):
        return await _send_pending(ctx, post_id)


async def _send_pending(ctx: Context, post_id: int) -> Reply | None:
    with ctx.db.session() as session:
        post = session.get(Post, post_id)
        if post is None or PostState(post.state) != PostState.PUBLISHING:
            return None
        ws = get_workspace(session, post.workspace_id)
        crisis = crisis_hold(session, ws, post)
        if crisis is not None:
            # what it still has to send waits for the end of crisis mode (the sweep then sends it); a delivery
            # whose own time came is held and the team told
            held = hold_own_times(ctx, session, post, ws, crisis)
        else:
            jobs = pending_jobs(ctx, session, post, ws, ctx.clock.now())
    if crisis is not None:
        return settle_once(ctx, post_id) if held else None
    await asyncio.gather(*(send_one(ctx, job) for job in jobs))
    await send_steps(ctx, post_id, send_slot)  # each sent account's thread parts and first comment, in order
    if ctx.sends.stopping and _still_pending(ctx, post_id):
        return None  # not settled now: the next start (or another worker's sweep) sends the rest and says so
    return settle_once(ctx, post_id)


def hold_own_times(ctx: Context, session: Session, post: Post, ws: Workspace, crisis: Crisis) -> bool:
    """Crisis mode holds each delivery whose own time (its audience's local time) came during it, like a post
    whose time comes then: it won't go by itself, and the notice says so with /retry (which, like /publish,
    needs an approval given since the crisis started). True if it held any."""
    now = ctx.clock.now()
    held = False
    for delivery, _account in post_targets(session, post):
        if (DeliveryState(delivery.state) != DeliveryState.PENDING or delivery.attempts or delivery.due_at is None
                or delivery.not_before is None or delivery.not_before > now):
            continue
        audience = delivery_audience(session, delivery)
        tz = audience.timezone if audience is not None else (post.due_tz or ws.timezone)
        move_delivery(delivery, DeliveryState.FAILED)
        delivery.error_kind = HELD
        delivery.last_error = (f"due {show_time(delivery.due_at, tz)}{' for ' + audience_name(audience) if audience else ''}, "
                               f"while {crisis_words(crisis, ws.timezone)}, so it's held")
        held = True
    return held


def _still_pending(ctx: Context, post_id: int) -> bool:
    with ctx.db.session() as session:
        return session.exec(
            select(Delivery.id).where(Delivery.post_id == post_id).where(Delivery.state == DeliveryState.PENDING.value)
        ).first() is not None


