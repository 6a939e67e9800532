"""Settling: a publishing post's final state from its deliveries, and the per-account notice with the fix for each failure."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session

from handlers.core.audit import audit
from handlers.core.chat import Reply
from handlers.core.context import Context
from handlers.core.lookups import audience_name, delivery_audience, get_workspace, post_targets, target_label
from handlers.core.notices import claim_once, tell_team
from handlers.core.ports import ErrorKind
from handlers.core.when import show_time
from handlers.core.words import state_label
from handlers.posts.local_time import CANCELLED, UNSCHEDULED
from handlers.posts.publishing.claims import CHECKED
from handlers.posts.publishing.threads import missed_steps, open_steps, step_lines
from storage.models import Account, Audience, Delivery, DeliveryState, Post, PostState, move_post

log = logging.getLogger("herald.publishing")


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
        await tell_team(ctx, ws_id, replace(notice, text="Update — a late answer arrived.\n" + notice.text))


def status_key(post_id: int) -> str:
    """The key of a post's status notice (Reply.replaces): each chat shows one status message per post, edited
    as the status changes where the platform can edit."""
    return f"status:{post_id}"


HELD = "held"


FIXES = {
    HELD: "/held publish {post} sends it now · /held drop {post} drops it",
    CANCELLED: "/retry {post} sends it after all",
    UNSCHEDULED: "/retry {post} sends it now",
    ErrorKind.REJECTED.value: "fix the text with /variant {post} {whom} <text>, then /retry {post}",
    ErrorKind.AUTH_EXPIRED.value: "reconnect with /connect {network} name={account} …, then /retry {post}",
    ErrorKind.RATE_LIMITED.value: "the network kept refusing for now; /retry {post} later",
    ErrorKind.TRANSIENT.value: "the network was unreachable; /retry {post}",
}


def waits_for_own_time(delivery: Delivery) -> bool:
    """A pending delivery not tried yet whose own time (its audience's local time) hasn't come: not a retry."""
    return (DeliveryState(delivery.state) == DeliveryState.PENDING and not delivery.attempts
            and delivery.due_at is not None and delivery.not_before is not None
            and delivery.not_before >= delivery.due_at)


def delivery_line(post: Post, delivery: Delivery, account: Account, tz: str, audience: Audience | None = None) -> str:
    state = DeliveryState(delivery.state)
    who = f"{target_label(account, audience)} ({account.network})"
    if waits_for_own_time(delivery):
        assert delivery.due_at is not None
        local = f"{show_time(delivery.due_at, audience.timezone)}, " if audience is not None else ""
        return f"  ⏰ {who}: goes out at its own time, {local}{show_time(delivery.due_at, tz)} for the team"
    if state == DeliveryState.SENT:
        checked = " (its answer was lost; Herald confirmed it with the network)" if CHECKED in (delivery.resume or {}) else ""
        return f"  ✓ {who}: {delivery.remote_url or delivery.remote_id}{checked}"
    if state == DeliveryState.UNCONFIRMED:
        return (
            f"  ? {who}: unconfirmed — {delivery.last_error}. It may be live, so Herald won't resend it on "
            f"its own. Check the account: if it's there, /confirm {post.id} {account.name} <link>; "
            f"if not, /retry {post.id} {account.name}"
        )
    if state == DeliveryState.FAILED:
        fix = FIXES.get(delivery.error_kind or "", "/retry {post}").format(
            post=post.id, account=account.name, network=account.network,
            whom=f"audience:{audience_name(audience)}" if audience is not None else account.name)  # whose text to fix
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


def waiting_words(states: list[DeliveryState], own_times: int = 0) -> str:
    """What the unsent accounts of a post still publishing do: "the rest retry by themselves" only when they
    all do; otherwise how many retry and how many wait for the team (their lines below say how to fix them).
    `own_times` of the pending ones wait for their audience's local time rather than retry."""
    pending = states.count(DeliveryState.PENDING) - own_times
    failed = states.count(DeliveryState.FAILED)
    unknown = states.count(DeliveryState.UNCONFIRMED)
    waiting = (f"{own_times} wait{'s' if own_times == 1 else ''} for {'its' if own_times == 1 else 'their'} "
               "audience's own time") if own_times else ""
    retrying = f"{pending} {'retries by itself' if pending == 1 else 'retry by themselves'}" if pending else ""
    if not failed and not unknown:
        if not own_times:
            return "the rest retry by themselves."
        return f"{waiting} and {retrying}." if pending else "the rest go out at their audience's own time."
    parts = [part for part in (waiting, retrying) if part]
    if failed:
        parts.append(f"{failed} failed")
    if unknown:
        parts.append(f"{unknown} {'is' if unknown == 1 else 'are'} unconfirmed")
    return ", ".join(parts[:-1]) + " and " + parts[-1] + " (see below for the fix)."


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
        steps = open_steps(session, [d.id for d, _a in pairs if d.id is not None])
        if steps and DeliveryState.PENDING not in states:
            # sent, with thread parts or a first comment still to go: settled when they are
            later = [s.not_before for s in steps if s.not_before is not None]
            if later:
                ctx.scheduler.arm(post_id, min(later))
            return None
        missed = missed_steps(session, [d.id for d, _a in pairs if d.id is not None])
        tz = post.due_tz or ws.timezone
        lines = [line for d, a in pairs for line in (delivery_line(post, d, a, tz, delivery_audience(session, d)),
                                                     *step_lines(session, post, d, a))]
        own_times = sum(1 for d, _a in pairs if waits_for_own_time(d))
        waiting = [d.not_before for d, _a in pairs if DeliveryState(d.state) == DeliveryState.PENDING and d.not_before]
        sent = states.count(DeliveryState.SENT)
        if sent and post.published_at is None:  # live since its first account went out
            post.published_at = min((d.sent_at for d, _a in pairs if d.sent_at is not None), default=now)
        waits: str | None = None
        if DeliveryState.PENDING in states:
            # the next pending delivery's time (a retry, or an audience's own time hours away), or sooner a thread
            # part or comment of a sent one that waits for its own retry
            later = waiting + [s.not_before for s in steps if s.not_before is not None]
            if later:
                ctx.scheduler.arm(post_id, min(later))
            head = f"⏳ #{post.id}: {sent} of {len(states)} sent so far; " + waiting_words(states, own_times)
            # told once per change of the post's status (which account is where, after how many attempts): a
            # delivery paced by its account's budget waits without new attempts, so a burst of posts doesn't repeat
            # the same notice at every round, while an account sent or failed meanwhile is news
            status = ",".join(f"{d.id}:{d.state}:{d.attempts}" for d, _a in sorted(pairs, key=lambda p: p[0].id or 0))
            waits = f"status:{post.id}:{hashlib.sha256(status.encode()).hexdigest()[:24]}"
        elif sent == len(states) and missed:
            move_post(post, PostState.PARTIALLY_PUBLISHED)
            head = (f"⚠️ #{post.id} is published on {'all ' if sent > 1 else ''}{sent} account(s), but {missed} thread "
                    f"part(s) or comment(s) didn't go out:")
        elif sent == len(states):
            move_post(post, PostState.PUBLISHED)
            head = f"📣 #{post.id} is published on {'all ' if sent > 1 else ''}{sent} account(s):"
        elif sent:
            move_post(post, PostState.PARTIALLY_PUBLISHED)
            head = f"⚠️ #{post.id} is partly published: {sent} of {len(states)} accounts."
        else:
            move_post(post, PostState.FAILED)
            head = f"❌ #{post.id} didn't publish on any of its {len(states)} account(s)."
        if waits is None:
            audit(session, ctx, post.workspace_id, post.id, "Herald", "publish",
                  f"{state_label(post)}: {sent}/{len(states)} sent")
    if waits is not None and not preview and not claim_once(ctx, waits):
        return None
    return Reply(head + "\n" + "\n".join(lines), replaces=status_key(post_id))


def settle_once(ctx: Context, post_id: int) -> Reply | None:
    """`settle`, where another worker settling the same post at the same moment (each sent some of its
    deliveries) is no error: that one's write won, and it tells the team. Anything else that changed the
    post meanwhile leaves it publishing with nothing pending, which the sweep settles."""
    try:
        return settle(ctx, post_id)
    except StaleDataError:
        log.info("post %s was settled by another worker at the same moment", post_id)
        return None
