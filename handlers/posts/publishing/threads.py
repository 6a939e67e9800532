"""Thread parts and first comments, exactly once each (ARCHITECTURE.md, "Never twice").

Once a delivery is sent, what follows it on its account — a thread's later parts, each a reply to the part before
it, then the first comment — becomes one `FollowUp` row per step, with the text rendered for that account
(handlers/posts/render.py: what the card showed and the approvers approved). The steps go one at a time, in order:
each is claimed (pending → sending) by one conditional UPDATE before its network call, and its remote id is stored
the moment the network answers, before the next step is sent, so a crash resumes after the last stored step.

A lost answer is checked with the network (`look_for_follow_up`): found → sent; surely not there → sent again;
can't tell → `unconfirmed`, and the steps after it are stopped (never sent blindly, never out of order); a refusal
stops them too. Each stop is in the post's report with the command that helps. Crisis mode holds the steps like
the posts (handlers/core/crisis.py): a step goes out only while the post may go.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from handlers.core.context import Context
from handlers.core.crisis import crisis_hold
from handlers.core.lookups import account_view, delivery_audience, get_workspace
from handlers.core.ports import CANT_TELL, ErrorKind, FollowUpOut, Found, Network, Published, PublishError
from handlers.posts.publishing.claims import STALE_SENDING
from handlers.posts.render import render
from handlers.workspace.health import fresh_view
from storage.models import Account, Delivery, DeliveryState, FollowUp, FollowUpKind, Post, PostState

log = logging.getLogger("herald.publishing")

MAX_STEP_ATTEMPTS = 5  # automatic tries of one step that surely didn't post (rate limited, unreachable)
STOPPED = "stopped"  # error_kind of a step not sent because one before it failed or stayed unconfirmed
NO_ROOT = "no_root"  # error_kind of a step whose post was confirmed live without its link: /confirm with it resends
OPEN = (DeliveryState.PENDING.value, DeliveryState.SENDING.value)
Slot = Callable[[str], AbstractAsyncContextManager[None]] | None  # a network's send slot (publishing/send.py)


def steps_of(session: Session, delivery_id: int) -> list[FollowUp]:
    """A delivery's steps in sending order: the parts by number, then the comment."""
    rows = session.exec(select(FollowUp).where(FollowUp.delivery_id == delivery_id)).all()
    return sorted(rows, key=lambda f: (f.kind == FollowUpKind.COMMENT.value, f.number))


def missed_steps(session: Session, delivery_ids: list[int]) -> int:
    """How many steps of these deliveries didn't go out (failed, stopped or unconfirmed)."""
    if not delivery_ids:
        return 0
    return len(session.exec(select(FollowUp.id).where(col(FollowUp.delivery_id).in_(delivery_ids))
                            .where(col(FollowUp.state).in_([DeliveryState.FAILED.value,
                                                            DeliveryState.UNCONFIRMED.value]))).all())


def open_steps(session: Session, delivery_ids: list[int]) -> list[FollowUp]:
    """The steps of these deliveries still to send or in flight."""
    if not delivery_ids:
        return []
    return list(session.exec(select(FollowUp).where(col(FollowUp.delivery_id).in_(delivery_ids))
                             .where(col(FollowUp.state).in_(OPEN))).all())


def make_steps(ctx: Context, delivery_id: int) -> None:
    """The steps of a sent delivery, rendered for its account, once (a second caller's insert is refused by the
    table's unique key and changes nothing)."""
    with ctx.db.session() as session:
        delivery = session.get(Delivery, delivery_id)
        if delivery is None or DeliveryState(delivery.state) != DeliveryState.SENT:
            return
        if session.exec(select(FollowUp.id).where(FollowUp.delivery_id == delivery_id)).first() is not None:
            return
        post, account = session.get(Post, delivery.post_id), session.get(Account, delivery.account_id)
        if post is None or account is None or not (post.parts or post.comment):
            return
        rendered = render(ctx, post, account, get_workspace(session, post.workspace_id), checked=False,
                          session=session, audience=delivery_audience(session, delivery))
        steps = [FollowUp(delivery_id=delivery_id, kind=step.kind, number=step.number, text=step.text,
                          idempotency_key=f"{delivery.idempotency_key}:{step.kind}{step.number}")
                 for step in rendered.steps]
    if not steps:
        return
    try:
        with ctx.db.session() as session:
            session.add_all(steps)
    except IntegrityError:
        log.info("the steps of delivery %s were made by another worker at the same moment", delivery_id)


async def send_steps(ctx: Context, post_id: int, slot: Slot = None) -> None:
    """Send what follows each sent delivery of the post: the accounts side by side, each one's steps one at a time
    and in order. `slot(network)` (publishing/send.py's send slots) bounds the requests in flight per network."""
    with ctx.db.session() as session:
        post = session.get(Post, post_id)
        if post is None or not (post.parts or post.comment):
            return  # one part and no comment, as most posts: nothing follows, no step to make or send
        sent = [(d.id or 0, d.account_id, a.network) for d, a in session.exec(
            select(Delivery, Account).where(Delivery.post_id == post_id)
            .where(Delivery.state == DeliveryState.SENT.value).where(col(Delivery.account_id) == col(Account.id))
            .order_by(col(Delivery.id))).all()]

    async def one(delivery_id: int, account_id: int, network: str) -> None:
        make_steps(ctx, delivery_id)
        if slot is None:
            await _send_account_steps(ctx, post_id, delivery_id, account_id)
            return
        async with slot(network):
            await _send_account_steps(ctx, post_id, delivery_id, account_id)

    await asyncio.gather(*(one(*row) for row in sent))


async def _send_account_steps(ctx: Context, post_id: int, delivery_id: int, account_id: int) -> None:
    network: Network | None = None
    view = None
    while not ctx.sends.stopping:
        now = ctx.clock.now()
        with ctx.db.session() as session:
            steps = steps_of(session, delivery_id)
            if any(DeliveryState(s.state) in (DeliveryState.SENDING, DeliveryState.FAILED, DeliveryState.UNCONFIRMED)
                   for s in steps):
                return  # in flight elsewhere, or stopped: never past a step that isn't surely sent
            step = next((s for s in steps if s.state == DeliveryState.PENDING.value), None)
            if step is None or (step.not_before is not None and step.not_before > now):
                return
            post = session.get(Post, post_id)
            delivery = session.get(Delivery, delivery_id)
            account = session.get(Account, account_id)
            if post is None or delivery is None or account is None:
                return
            if crisis_hold(session, get_workspace(session, post.workspace_id), post) is not None:
                return  # held with the post: the sweep sends it once crisis mode ends (or the post is approved again)
            previous = [s for s in steps if s.kind == FollowUpKind.PART.value and s.number < step.number
                        and step.kind == FollowUpKind.PART.value]
            parent = previous[-1].remote_id if previous else delivery.remote_id
            follow = FollowUpOut(kind=step.kind, number=step.number, text=step.text, parent_id=parent or "",
                                 root_id=delivery.remote_id or "", idempotency_key=step.idempotency_key)
            step_id, name = step.id, account.name
            if network is None:
                network = ctx.networks.get(account.network)
                view = account_view(ctx, account, with_secrets=True) if network is not None else None
        assert step_id is not None
        if not follow.root_id:  # confirmed live without its link (/confirm): nothing to reply to
            _store(ctx, step_id, DeliveryState.FAILED, kind=NO_ROOT,
                   error=f"Herald doesn't know the post's id on {name}: /confirm {post_id} {name} <link> adds it "
                         "and sends the rest")
            return
        if network is None or view is None:
            _store(ctx, step_id, DeliveryState.FAILED, kind=ErrorKind.REJECTED.value,
                   error="this Herald has no connector for that network")
            return
        if not _claim(ctx, step_id):
            return
        ctx.sends.in_flight += 1  # a stop lets it end (publishing/send.py, drain_sends) rather than leave it unknown
        try:
            view = await _send_step(ctx, network, view, step_id, follow)
        finally:
            ctx.sends.in_flight -= 1


async def _send_step(ctx: Context, network: Network, view: Any, step_id: int, follow: FollowUpOut) -> Any:
    """One claimed step: sent and its answer stored, or its failure by kind. The account view, refreshed."""
    began = ctx.clock.now()
    try:
        view = await fresh_view(ctx, network, view)
        published = await network.publish_follow_up(view, follow)
    except PublishError as exc:
        if exc.kind == ErrorKind.UNKNOWN_OUTCOME:
            await _settle_unknown(ctx, network, view, step_id, follow, began, exc.reason)
        else:
            _failed(ctx, step_id, exc.kind, exc.reason, exc.retry_after, paced=exc.paced)
    except Exception as exc:  # the request may have left: check before anything else
        log.exception("sending step %s failed with an unexpected error", step_id)
        await _settle_unknown(ctx, network, view, step_id, follow, began,
                              f"the send broke off ({type(exc).__name__}) after it may have reached the network")
    else:
        _store(ctx, step_id, DeliveryState.SENT, published=published)
    return view


def _claim(ctx: Context, step_id: int) -> bool:
    """pending → sending for exactly one caller, before the network call."""
    with ctx.db.session() as session:
        result = session.exec(  # type: ignore[call-overload]
            update(FollowUp).where(col(FollowUp.id) == step_id).where(col(FollowUp.state) == DeliveryState.PENDING.value)
            .values(state=DeliveryState.SENDING.value, claimed_at=ctx.clock.now(), claimed_by=ctx.worker_id,
                    attempts=FollowUp.attempts + 1)
        )
        return bool(result.rowcount == 1)


def _store(ctx: Context, step_id: int, state: DeliveryState, *, published: Published | None = None,
           kind: str | None = None, error: str | None = None, not_before: datetime | None = None,
           claimed_at: Any = False) -> bool:
    """Move a step on from `sending` (or `pending`), conditional on where it was: True if this call moved it. A step
    that stays unconfirmed or fails stops the ones after it."""
    now = ctx.clock.now()
    values: dict[str, Any] = dict(state=state.value, error_kind=kind, last_error=error, not_before=not_before)
    if published is not None:
        values.update(remote_id=published.remote_id, remote_url=published.url, sent_at=now)
    with ctx.db.session() as session:
        query = update(FollowUp).where(col(FollowUp.id) == step_id).where(col(FollowUp.state).in_(OPEN))
        if claimed_at is not False:
            query = query.where(col(FollowUp.claimed_at) == claimed_at)
        moved = session.exec(query.values(**values)).rowcount == 1  # type: ignore[call-overload]
        if moved and state in (DeliveryState.FAILED, DeliveryState.UNCONFIRMED):
            step = session.get(FollowUp, step_id)
            assert step is not None
            why = f"not sent: {step_name(step)} {'is unconfirmed' if state == DeliveryState.UNCONFIRMED else 'failed'}"
            for later in steps_of(session, step.delivery_id):
                if later.state == DeliveryState.PENDING.value:
                    later.state, later.error_kind, later.last_error = DeliveryState.FAILED.value, STOPPED, why
        return moved


def _failed(ctx: Context, step_id: int, kind: ErrorKind, reason: str, retry_after: float | None, *,
            paced: bool = False) -> None:
    """A step that surely didn't post: again after the wait while it may (rate limited, unreachable), else failed."""
    with ctx.db.session() as session:
        step = session.get(FollowUp, step_id)
        attempts = step.attempts if step is not None else MAX_STEP_ATTEMPTS
    if kind in (ErrorKind.RATE_LIMITED, ErrorKind.TRANSIENT) and (paced or attempts < MAX_STEP_ATTEMPTS):
        wait = max(1.0, retry_after if retry_after is not None else 15.0 * 2 ** attempts)
        _store(ctx, step_id, DeliveryState.PENDING, kind=kind.value, error=reason,
               not_before=ctx.clock.now() + timedelta(seconds=wait))
        return
    _store(ctx, step_id, DeliveryState.FAILED, kind=kind.value, error=reason)


async def _settle_unknown(ctx: Context, network: Network, view: Any, step_id: int, follow: FollowUpOut,
                          began: datetime, reason: str) -> None:
    found = await look_for(network, view, follow, began)
    if isinstance(found, Published):
        _store(ctx, step_id, DeliveryState.SENT, published=found)
    elif found is None:
        _store(ctx, step_id, DeliveryState.PENDING, kind=ErrorKind.TRANSIENT.value,
               error=f"{reason}; the network says it isn't there", not_before=ctx.clock.now())
    else:
        _store(ctx, step_id, DeliveryState.UNCONFIRMED, kind=ErrorKind.UNKNOWN_OUTCOME.value, error=reason)


async def look_for(network: Network, view: Any, follow: FollowUpOut, since: datetime) -> Found:
    """What the network says about a step whose answer was lost; CANT_TELL when the check itself fails."""
    try:
        return await network.look_for_follow_up(view, follow, since)
    except Exception:
        log.exception("looking for a step on %s failed", view.network)
        return CANT_TELL


async def recover_steps(ctx: Context, *, at_start: bool = False) -> set[int]:
    """Steps a crash left `sending`: asked of their network like the deliveries (publishing/due.py); found → sent,
    surely absent → pending again, the rest unconfirmed (the steps after stopped). The posts they belong to."""
    now = ctx.clock.now()
    with ctx.db.session() as session:
        rows = session.exec(
            select(FollowUp, Delivery, Account).where(FollowUp.state == DeliveryState.SENDING.value)
            .where(col(FollowUp.delivery_id) == col(Delivery.id)).where(col(Delivery.account_id) == col(Account.id))
        ).all()
        stuck = []
        for step, delivery, account in rows:
            if not ((at_start and step.claimed_by == ctx.worker_id)
                    or (step.claimed_at is not None and now - step.claimed_at > STALE_SENDING)):
                continue
            previous = [s for s in steps_of(session, step.delivery_id) if s.kind == FollowUpKind.PART.value
                        and step.kind == FollowUpKind.PART.value and s.number < step.number]
            follow = FollowUpOut(kind=step.kind, number=step.number, text=step.text,
                                 parent_id=(previous[-1].remote_id if previous else delivery.remote_id) or "",
                                 root_id=delivery.remote_id or "", idempotency_key=step.idempotency_key)
            stuck.append((step.id or 0, step.claimed_at, delivery.post_id, follow, account))
    posts = set()
    for step_id, claimed_at, post_id, follow, account in stuck:
        network = ctx.networks.get(account.network)
        found: Found = CANT_TELL
        if network is not None:
            try:
                view = await fresh_view(ctx, network, account_view(ctx, account, with_secrets=True))
                found = await look_for(network, view, follow, claimed_at or now)
            except Exception:
                log.exception("recovering step %s failed", step_id)
        why = "Herald stopped while sending it, before the network's answer was saved"
        if isinstance(found, Published):
            moved = _store(ctx, step_id, DeliveryState.SENT, published=found, claimed_at=claimed_at)
        elif found is None:
            moved = _store(ctx, step_id, DeliveryState.PENDING, kind=ErrorKind.TRANSIENT.value,
                           error=f"{why}; the network says it isn't there", not_before=now, claimed_at=claimed_at)
        else:
            moved = _store(ctx, step_id, DeliveryState.UNCONFIRMED, kind=ErrorKind.UNKNOWN_OUTCOME.value, error=why,
                           claimed_at=claimed_at)
        if moved:
            posts.add(post_id)
    return posts


def waiting_steps(session: Session, ws_id: int) -> list[str]:
    """The workspace's posts whose thread parts or first comments still wait to go (held by crisis mode, or waiting
    for a retry), one phrase each: "#12 (3 on acme-x)"."""
    rows = session.exec(
        select(Delivery.post_id, Account.name).join(FollowUp, col(FollowUp.delivery_id) == col(Delivery.id))
        .join(Account, col(Account.id) == col(Delivery.account_id)).where(Account.workspace_id == ws_id)
        .where(FollowUp.state == DeliveryState.PENDING.value)
    ).all()
    counts: dict[int, dict[str, int]] = {}
    for post_id, name in rows:
        counts.setdefault(post_id, {}).setdefault(name, 0)
        counts[post_id][name] += 1
    return [f"#{post_id} (" + ", ".join(f"{n} on {name}" for name, n in sorted(per.items())) + ")"
            for post_id, per in sorted(counts.items())]


def stuck_steps(session: Session, delivery_id: int, *, unconfirmed: bool) -> list[FollowUp]:
    """A sent delivery's steps that didn't go: failed ones, those stopped after them, and (when `unconfirmed`: the
    team checked the account and the step isn't there) unconfirmed ones."""
    steps = steps_of(session, delivery_id)
    first = next((i for i, s in enumerate(steps)
                  if s.state in (DeliveryState.FAILED.value, DeliveryState.UNCONFIRMED.value)), None)
    if first is None or (steps[first].state == DeliveryState.UNCONFIRMED.value and not unconfirmed):
        return []  # nothing stuck, or a step that may be live comes first: only the team can say it isn't
    return [s for s in steps[first:] if s.state in (DeliveryState.FAILED.value, DeliveryState.UNCONFIRMED.value)]


def reopen_steps(session: Session, steps: list[FollowUp]) -> bool:
    """Back to pending for /retry, each only from the state read (two retries at once reopen it once)."""
    for step in steps:
        moved = session.exec(  # type: ignore[call-overload]
            update(FollowUp).where(col(FollowUp.id) == step.id).where(col(FollowUp.state) == step.state)
            .values(state=DeliveryState.PENDING.value, not_before=None, attempts=0, error_kind=None, last_error=None)
        )
        if moved.rowcount != 1:
            return False
    return True


def step_name(step: FollowUp) -> str:
    return "the first comment" if step.kind == FollowUpKind.COMMENT.value else f"part {step.number}"


def step_lines(session: Session, post: Post, delivery: Delivery, account: Account) -> list[str]:
    """One line per step of a delivery for the post's report: sent with its link, or why not and what helps."""
    lines = []
    for step in steps_of(session, delivery.id or 0):
        name = step_name(step)
        name = name[0].upper() + name[1:]
        state = DeliveryState(step.state)
        if state == DeliveryState.SENT:
            lines.append(f"    ↳ {name}: {step.remote_url or step.remote_id}")
        elif state == DeliveryState.UNCONFIRMED:
            lines.append(f"    ? {name}: unconfirmed — {step.last_error}. It may be live, so Herald sends neither it "
                         f"nor what follows; check {account.name}: if it isn't there, /retry {post.id} {account.name} "
                         "sends it and the rest")
        elif state == DeliveryState.FAILED and step.error_kind in (STOPPED, NO_ROOT):
            lines.append(f"    ✗ {name}: {step.last_error}")
        elif state == DeliveryState.FAILED:
            lines.append(f"    ✗ {name}: {step.last_error} → /retry {post.id} {account.name} sends it and the rest")
        elif PostState(post.state) == PostState.PUBLISHING:
            lines.append(f"    … {name}: {step.state}" + (f" ({step.last_error})" if step.last_error else ""))
    return lines
