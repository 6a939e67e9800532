"""Claims: a post and each delivery are claimed by one conditional UPDATE before any network call; answers stored at once."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, update
from sqlmodel import Session, col

from handlers.core.audit import audit
from handlers.core.context import Context
from handlers.core.crisis import crisis_refusal
from handlers.core.errors import UserError
from handlers.core.ports import IN_FLIGHT, ErrorKind, Published
from handlers.core.words import state_label
from handlers.engagement.metrics import first_metrics_at
from handlers.posts.rules import UNAPPROVED, approvals_at_revision, require_publishable
from storage.models import (
    POST_TRANSITIONS,
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


def claim_post(session: Session, post: Post, expected: PostState, now: datetime, *, own_times: bool = False) -> bool:
    """Move a post to publishing with one conditional UPDATE; False if someone else got there first.

    The claim bumps the post's version (so any stale write elsewhere fails), records which revision
    goes out, and stamps its pending deliveries with the time they are meant to go out from: with `own_times`
    (the clock reached a post scheduled at each audience's local time), a delivery whose own time is still to
    come waits for it (its not_before; the post is re-armed for it when it settles), the rest go now.
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
    if own_times:
        session.exec(  # type: ignore[call-overload]
            update(Delivery)
            .where(col(Delivery.post_id) == post.id)
            .where(col(Delivery.state) == DeliveryState.PENDING.value)
            .where(col(Delivery.not_before).is_(None))
            .where(col(Delivery.due_at) > now)
            .values(not_before=col(Delivery.due_at))
        )
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


# Resume key: when Herald found on the network the post of a send whose answer was lost (publishing/outcomes.py)
CHECKED = "checked_with_network"


def record_found(ctx: Context, delivery_id: int, published: Published) -> bool:
    """A lost answer's post found on the network: sent as `record_sent` stores it, noting that Herald
    confirmed it with the network (the team's report says so). True if it came late."""
    late = record_sent(ctx, delivery_id, published)
    with ctx.db.session() as session:
        delivery = session.get(Delivery, delivery_id)
        if delivery is not None and DeliveryState(delivery.state) == DeliveryState.SENT \
                and delivery.remote_id == published.remote_id:
            delivery.resume = {**(delivery.resume or {}), CHECKED: ctx.clock.now().isoformat()}
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


def claim_to_publish_now(ctx: Context, session: Session, post: Post, ws: Workspace, actor: str) -> None:
    """The checks of "publish now" (/publish, /held publish), then the claim; UserError if it can't go now."""
    state = PostState(post.state)
    if ws.paused:
        raise UserError(f"Publishing is paused ({ws.pause_reason or 'no reason given'}). /resume first.")
    unapproved = False
    if state in UNAPPROVED and ws.approvals_needed > 0:
        if state == PostState.IN_REVIEW and ws.unapproved_action == UnapprovedAction.PUBLISH:
            unapproved = True
        elif state == PostState.IN_REVIEW:
            raise UserError(f"#{post.id} isn't approved yet: it's waiting for the approvers (/approve {post.id}).")
        else:
            raise UserError(f"#{post.id} isn't approved yet ({state_label(post)}). /submit {post.id} sends it to the approvers.")
    elif state not in (*UNAPPROVED, PostState.APPROVED, PostState.SCHEDULED):
        hint = f" /retry {post.id} re-sends what failed." if state in (
            PostState.FAILED, PostState.PARTIALLY_PUBLISHED) else ""
        raise UserError(f"#{post.id} is {state_label(post)}, so it can't be published now.{hint}")
    held_back = crisis_refusal(session, ws, post)
    if held_back is not None:
        raise UserError(held_back)
    require_publishable(ctx, session, post, ws)
    if state in UNAPPROVED and ws.approvals_needed == 0:  # the policy needs no approval: approved on its way out
        if state != PostState.IN_REVIEW:
            move_post(post, PostState.IN_REVIEW)
        move_post(post, PostState.APPROVED)
        session.flush()
        state = PostState.APPROVED
    if not claim_post(session, post, state, ctx.clock.now()):
        raise UserError(f"#{post.id} is already being published.")
    audit(session, ctx, ws.id or 0, post.id, actor, "publish now",
          "without approval, as the policy allows" if unapproved else "")
    ctx.scheduler.disarm(post.id or 0)


def reopen_deliveries(ctx: Context, session: Session, post: Post, ws: Workspace, again: list[Delivery], *,
                      lift: str | None = None) -> None:
    """Send these failed (or unconfirmed) deliveries again: /retry, and /held publish of deliveries held at their
    own time. A post changed since it went out needs a new approval first. A settled post is claimed first, and
    each delivery moves back only from the state read, so two of these at once (on two workers) can't both reset a
    delivery the other has already claimed and sent again; a post still publishing is claimed already, and the
    deliveries' conditional moves are the claim. `lift` drops resume keys with that prefix from an unconfirmed
    delivery the team checked (the connector's safety markers). UserError when it can't."""
    state = PostState(post.state)
    if (ws.approvals_needed > 0 and post.sent_revision is not None and post.revision != post.sent_revision
            and len(approvals_at_revision(session, post)) < ws.approvals_needed):
        raise UserError(
            f"#{post.id} changed since it went out (now revision {post.revision}), so the new version needs "
            f"approval first: approvers, /approve {post.id}. Then /retry {post.id}."
        )
    if state != PostState.PUBLISHING and not claim_post(session, post, state, ctx.clock.now()):
        raise UserError(f"#{post.id} is already being retried or published.")
    for delivery in again:
        was = DeliveryState(delivery.state)
        values: dict[str, Any] = {"state": DeliveryState.PENDING.value, "not_before": None, "auto_attempts": 0}
        if lift is not None and was == DeliveryState.UNCONFIRMED:
            values["resume"] = {k: v for k, v in (delivery.resume or {}).items() if not k.startswith(lift)}
        moved = session.exec(  # type: ignore[call-overload]
            update(Delivery).where(col(Delivery.id) == delivery.id).where(col(Delivery.state) == was.value)
            .values(**values)
        )
        if moved.rowcount != 1:
            raise UserError(f"#{post.id} is already being retried or published.")
