"""After downtime: the posts held because their time passed beyond the grace period, and /held.

When Herald was down (or paused) across posts' due times, the sweep at restart (or /resume)
publishes those still within the grace period and holds the older ones (handlers/posts/publishing/,
`begin_publishing`), so nothing goes out late by surprise. Each sweep tells each workspace once,
in one notice listing the posts it held (`announce_held`), however many there are, and again if a
crash cut that notice off.

`/held` lists a workspace's held posts; `/held publish` sends them all now and `/held drop`
cancels them all; `/held publish 3 7` and `/held drop 3 7` do it for some. A post going out at each audience's
own time is held delivery by delivery (publishing/send.py: a delivery whose own time passed beyond the grace
period, or came during crisis mode, fails as `held`): /held lists those deliveries too, `/held publish` sends
them (like /retry of that audience) and `/held drop` drops them, and the rest of the post goes on. Publishing goes through
the same checks and claim as /publish (pause, approvals, target checks; an account whose token is
dead gets nothing and the team is told how to reconnect it).

Crisis mode (handlers/posts/publishing/crisis.py) holds posts the same way, with a note that says so
(CRISIS_HOLD); while it lasts, the news about held posts edits its pinned card (`crisis_card`) instead of
adding notices.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import distinct, func, update
from sqlmodel import Session, col, select

from handlers.core.access import EDITORS
from handlers.core.audit import audit
from handlers.core.chat import Reply
from handlers.core.commands import Request, command
from handlers.core.context import Context
from handlers.core.crisis import active_crisis, crisis_refusal
from handlers.core.errors import UserError
from handlers.core.lookups import (
    delivery_audience,
    delivery_label,
    get_workspace,
    parse_post_id,
    post_targets,
)
from handlers.core.notices import claim_once, tell_team
from handlers.core.when import show_time
from handlers.core.words import short_text, state_label
from handlers.posts.local_time import CANCELLED
from handlers.posts.publishing.claims import claim_to_publish_now, reopen_deliveries
from handlers.posts.publishing.send import send_pending
from handlers.posts.publishing.settle import HELD
from handlers.posts.publishing.threads import waiting_steps
from handlers.posts.rules import UNAPPROVED, rearm
from handlers.posts.scheduling import targets_by_post
from storage.models import (
    Account,
    Crisis,
    Delivery,
    DeliveryState,
    IllegalTransition,
    Post,
    PostState,
    SentOnce,
    Workspace,
    move_post,
)

log = logging.getLogger("herald.downtime")

HELD_STATES = (*UNAPPROVED, PostState.SCHEDULED)  # where a held post waits (its state doesn't change)
LISTED_IN_NOTICE = 20  # the summary notice names this many; /held lists them all
USAGE = "/held [publish|drop] [post…]"


def held_posts(session: Session, ws_id: int, ids: list[int] | None = None) -> list[Post]:
    """The workspace's posts held after downtime, by due time (only `ids`, when given)."""
    query = (
        select(Post).where(Post.workspace_id == ws_id).where(col(Post.held_note).is_not(None))
        .where(col(Post.state).in_([s.value for s in HELD_STATES]))
    )
    if ids is not None:
        query = query.where(col(Post.id).in_(ids))
    return list(session.exec(query.order_by(col(Post.due_at), col(Post.id))).all())


# a post whose deliveries are held one by one is publishing, or settled as failed or partly published
OWN_TIME_STATES = (PostState.PUBLISHING, PostState.FAILED, PostState.PARTIALLY_PUBLISHED)


def held_deliveries(session: Session, ws_id: int, ids: list[int] | None = None) -> list[tuple[Post, Delivery, Account]]:
    """The workspace's deliveries held at their own time (an audience's local time passed beyond the grace period,
    or came during crisis mode), by post and due time (only posts `ids`, when given)."""
    query = (
        select(Post, Delivery, Account).where(col(Delivery.post_id) == col(Post.id))
        .where(col(Delivery.account_id) == col(Account.id)).where(Post.workspace_id == ws_id)
        .where(col(Post.state).in_([s.value for s in OWN_TIME_STATES]))
        .where(Delivery.state == DeliveryState.FAILED.value).where(Delivery.error_kind == HELD)
    )
    if ids is not None:
        query = query.where(col(Post.id).in_(ids))
    rows = session.exec(query.order_by(col(Post.id), col(Delivery.due_at), col(Delivery.id))).all()
    return [(post, delivery, account) for post, delivery, account in rows]


def held_delivery_lines(session: Session, ws: Workspace, rows: list[tuple[Post, Delivery, Account]]) -> list[str]:
    """One line per held delivery: post, audience and account, its own due time in the audience's zone, words."""
    lines = []
    for post, delivery, account in rows:
        audience = delivery_audience(session, delivery)
        due = delivery.due_at or delivery.not_before or post.due_at  # its own time, or the retry that waited
        zone = audience.timezone if audience is not None else ws.timezone
        lines.append(f"  #{post.id} · {delivery_label(session, delivery, account)} · due "
                     f"{show_time(due, zone) if due else 'now'} · {short_text(post.text, 40)}")
    return lines


def held_lines(session: Session, ws: Workspace, posts: list[Post]) -> list[str]:
    """One line per held post: number, due time in the workspace's zone, accounts, first words."""
    names = targets_by_post(session, [p.id for p in posts if p.id is not None])
    return [
        f"  #{post.id} · due {show_time(post.due_at, ws.timezone)} · "
        f"{', '.join(names.get(post.id or 0, [])) or 'no accounts'} · {short_text(post.text, 40)}"
        for post in posts
    ]


def commands_hint(example: list[int]) -> str:
    some = " ".join(str(i) for i in example[:2])
    return (f"/held publish sends them all now · /held drop cancels them all · "
            f"/held publish {some} or /held drop {some} for some")


ANNOUNCE_LEASE = timedelta(minutes=2)  # a notice claimed but not confirmed sent this long ago is sent again


def _key(post: Post) -> str:
    due = post.due_at.strftime("%Y%m%dT%H%M%S") if post.due_at else "-"
    return f"held:{post.id}:{due}"


async def announce_held(ctx: Context, *, workspace_id: int | None = None) -> int:
    """Tell each workspace, in one notice, about its held posts the team hasn't been told of; how many.

    At least once, never silently: a post's notice is claimed (SentOnce "held:…"), sent, then marked told
    ("held-told:…"). A crash between the claim and the mark leaves a claim without its mark, which a
    later sweep takes over after ANNOUNCE_LEASE and sends again — twice rather than never.
    """
    now = ctx.clock.now()
    with ctx.db.session() as session:
        query = (select(Post).where(col(Post.held_note).is_not(None))
                 .where(col(Post.state).in_([s.value for s in HELD_STATES])))
        if workspace_id is not None:
            query = query.where(Post.workspace_id == workspace_id)
        posts = list(session.exec(query).all())
        if not posts:
            return 0
        keys = [_key(p) for p in posts]
        seen = {row.key: row for row in session.exec(
            select(SentOnce).where(col(SentOnce.key).in_(keys + [f"{k}:told" for k in keys]))).all()}
    mine: dict[int, list[int]] = {}
    for post, key in zip(posts, keys, strict=True):
        if f"{key}:told" in seen:
            continue
        claim = seen.get(key)
        if claim is None:
            won = claim_once(ctx, key)
        elif claim.created_at is not None and now - claim.created_at > ANNOUNCE_LEASE:
            with ctx.db.session() as session:  # take over a claim whose worker didn't confirm the notice
                won = bool(session.exec(  # type: ignore[call-overload]
                    update(SentOnce).where(col(SentOnce.key) == key)
                    .where(col(SentOnce.created_at) == claim.created_at)
                    .values(created_at=now, worker=ctx.worker_id)
                ).rowcount == 1)
        else:
            won = False
        if won:
            mine.setdefault(post.workspace_id, []).append(post.id or 0)
    told = 0
    for ws_id, ids in mine.items():
        if await tell_held(ctx, ws_id, ids):
            for post in posts:
                if post.id in ids:
                    claim_once(ctx, f"{_key(post)}:told")
            told += len(ids)
    return told


async def tell_held(ctx: Context, ws_id: int, ids: list[int]) -> bool:
    """One notice to the workspace about these held posts: the post's own notice when it is one, else a
    list of them with the commands that publish or drop them. False if it reached no chat."""
    minutes = int(ctx.grace.total_seconds() // 60)
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        crisis = active_crisis(session, ws)
        card = crisis_card(ctx, session, ws, crisis) if crisis is not None else None
        posts = held_posts(session, ws_id, ids)
        lines = held_lines(session, ws, posts[:LISTED_IN_NOTICE])
    if not posts:
        return True  # published or dropped in the meantime: nothing to say
    if card is not None:  # while crisis mode lasts, held work is news on its pinned card (edited in place)
        return await tell_team(ctx, ws_id, card) > 0
    if len(posts) == 1:
        return await tell_team(ctx, ws_id, held_notice(posts[0])) > 0
    if len(posts) > LISTED_IN_NOTICE:
        lines.append(f"  … and {len(posts) - LISTED_IN_NOTICE} more (/held lists them all)")
    head = (f"⚠️ {len(posts)} posts came due while Herald was down (or paused) and couldn't go out within "
            f"the {minutes}-minute grace period, so they're held rather than going out late by surprise "
            f"(times in {ws.timezone}):")
    return await tell_team(ctx, ws_id, Reply("\n".join([head, *lines, commands_hint([p.id or 0 for p in posts])]))) > 0


def parse_held(req: Request) -> tuple[str, list[int] | None]:
    """('list'|'publish'|'drop', the post numbers given or None for all). A button writes its words in `words`."""
    words = (req.command.text or str(req.arg("words", ""))).replace(",", " ").split()
    action = words[0].lower() if words else "list"
    if action not in ("list", "publish", "drop"):
        if words[0].lstrip("#").isdigit():
            some = " ".join(words)
            raise UserError(f"Publish or drop them? /held publish {some} or /held drop {some}.")
        raise UserError(f"/held {words[0]}? Usage: {USAGE} — e.g. /held, /held publish, /held drop 3 7.")
    numbers = [parse_post_id(word, USAGE) for word in words[1:]]
    if action == "list" and numbers:
        raise UserError(f"/held list shows every held post; to act on some: /held publish {' '.join(words[1:])} "
                        f"or /held drop {' '.join(words[1:])}.")
    return action, list(dict.fromkeys(numbers)) or None


def chosen(session: Session, ws_id: int,
           ids: list[int] | None) -> tuple[list[Post], dict[int, list[tuple[Delivery, Account]]]]:
    """The held posts and held deliveries (by post) a command is about; refuses numbers that are neither."""
    posts = held_posts(session, ws_id, ids)
    deliveries: dict[int, list[tuple[Delivery, Account]]] = {}
    for owner, delivery, account in held_deliveries(session, ws_id, ids):
        deliveries.setdefault(owner.id or 0, []).append((delivery, account))
    if ids is not None:
        found = {p.id for p in posts} | set(deliveries)
        missing = [i for i in ids if i not in found]
        if missing:
            wrong = []
            for post_id in missing:
                other = session.get(Post, post_id)
                wrong.append(f"#{post_id} isn't held" + (
                    f" (it's {state_label(other)})" if other is not None and other.workspace_id == ws_id
                    else " (there's no such post in this workspace)"))
            raise UserError("; ".join(wrong) + ". /held lists the held posts. Nothing was changed.")
    if not posts and not deliveries:
        raise UserError("No posts are held. (Posts whose time passes while Herald is down are held when they "
                        "are more than the grace period late.)")
    return posts, deliveries


@command(
    "held",
    usage=USAGE, example="/held publish 3 7",
    summary="posts held after downtime or by crisis mode: list them, publish them now, or drop them",
    details=(
        "A post whose time passed while Herald was down (or paused) goes out at restart if it is within the\n"
        "grace period; an older one is held so it doesn't go out late by surprise. In crisis mode (/crisis) a post\n"
        "whose time comes is held the same way.\n"
        "A post going out at each audience's own time is held audience by audience: only the delivery whose time\n"
        "passed waits, the rest goes out.\n"
        "/held lists them; /held publish sends them all now (like /publish, or /retry for a held delivery:\n"
        "approvals and pause apply); /held drop cancels them all; /held publish 3 7 or /held drop 3 7 for some."
    ),
    roles=EDITORS,
    group="Publishing",
)
async def held(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    action, ids = parse_held(req)
    if action == "publish":
        return await publish_held(req, ws_id, ids)
    if action == "drop":
        return await drop_held(req, ws_id, ids)
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        posts = held_posts(session, ws_id)
        own = held_deliveries(session, ws_id)
        if not posts and not own:
            return Reply("No posts are held. /queue shows what's coming up.")
        lines = held_lines(session, ws, posts)
        own_lines = held_delivery_lines(session, ws, own)
    why = "held by crisis mode (/crisis) or after downtime" if ws.crisis_id is not None else \
        "past the grace period after downtime"
    parts = []
    if posts:
        parts += [f"⚠️ {len(posts)} held post(s), {why} (times in {ws.timezone}):", *lines]
    if own:
        parts += [f"⚠️ {len(own)} held delivery(ies), {why}; the rest of each post went or goes on (times in "
                  f"each audience's zone, else {ws.timezone}):", *own_lines]
    numbers = list(dict.fromkeys([p.id or 0 for p in posts] + [p.id or 0 for p, _d, _a in own]))
    return Reply("\n".join([*parts, commands_hint(numbers)]))


async def publish_held(req: Request, ws_id: int, ids: list[int] | None) -> Reply:
    """Claim each chosen held post like /publish does, then send them; one reply for all."""
    ctx = req.ctx
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        if ws.paused:
            raise UserError(f"Publishing is paused ({ws.pause_reason or 'no reason given'}). /resume first.")
        posts, own = chosen(session, ws_id, ids)
        whole = [p.id for p in posts if p.id is not None]
    claimed: list[int] = []
    refused: list[str] = []
    for post_id in own:
        try:
            with ctx.db.session() as session:  # like /retry of those audiences: the rest of the post goes on
                rows = held_deliveries(session, ws_id, [post_id])  # read again: what is still held now
                if not rows:
                    raise UserError(f"#{post_id} isn't held any more.")
                owner = rows[0][0]
                ws = get_workspace(session, ws_id)
                held_back = crisis_refusal(session, ws, owner)
                if held_back is not None:
                    raise UserError(held_back)
                what = ", ".join(delivery_label(session, d, a) for _p, d, a in rows)
                reopen_deliveries(ctx, session, owner, ws, [d for _p, d, _a in rows])
                audit(session, ctx, ws_id, post_id, req.actor_name, "publish held", what)
            claimed.append(post_id)
        except (UserError, IllegalTransition) as exc:
            refused.append(f"  ✋ {exc}")
    for post_id in whole:
        try:
            with ctx.db.session() as session:  # each post on its own: one that can't go doesn't stop the rest
                post = session.get(Post, post_id)
                if post is None or post.held_note is None:
                    raise UserError(f"#{post_id} isn't held any more.")
                claim_to_publish_now(ctx, session, post, get_workspace(session, ws_id), req.actor_name)
            claimed.append(post_id)
        except (UserError, IllegalTransition) as exc:
            refused.append(f"  ✋ {exc}")
    if not claimed:
        raise UserError("None of them can go out now; they stay held:\n" + "\n".join(refused))
    results = await asyncio.gather(*(send_pending(ctx, post_id) for post_id in claimed))
    parts = [f"📣 {len(claimed)} held post(s) are going out now"
             + (f"; {len(refused)} stay held:" if refused else ".")]
    parts += refused
    parts += [(result.text if result is not None else f"#{post_id} is being published.")
              for post_id, result in zip(claimed, results, strict=True)]
    reply = Reply("\n".join(parts))
    await tell_team(ctx, ws_id, reply, skip=req.command.chat)
    await refresh_crisis_card(ctx, ws_id)
    return reply


async def drop_held(req: Request, ws_id: int, ids: list[int] | None) -> Reply:
    """Cancel the chosen held posts, and drop the chosen held deliveries (the rest of their posts goes on), all in
    one transaction."""
    ctx = req.ctx
    now = ctx.clock.now()
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        posts, own = chosen(session, ws_id, ids)
        for post in posts:
            move_post(post, PostState.CANCELLED)
            post.held_note = None
            audit(session, ctx, ws_id, post.id, req.actor_name, "cancel", "held after downtime")
            rearm(ctx, post, ws)
        dropped = [f"#{p.id}" for p in posts]
        parts: list[str] = []
        for post_id, deliveries in own.items():
            labels = []
            for delivery, account in deliveries:  # conditional: a delivery /held publish sent meanwhile stays sent
                moved = session.exec(  # type: ignore[call-overload]
                    update(Delivery).where(col(Delivery.id) == delivery.id)
                    .where(col(Delivery.state) == DeliveryState.FAILED.value).where(col(Delivery.error_kind) == HELD)
                    .values(error_kind=CANCELLED, updated_at=now,
                            last_error=f"held, then dropped by {req.actor_name}")
                )
                if moved.rowcount == 1:
                    labels.append(delivery_label(session, delivery, account))
            if labels:
                audit(session, ctx, ws_id, post_id, req.actor_name, "drop held", ", ".join(labels))
                parts.append(f"#{post_id} for {', '.join(labels)}")
    lines = [f"🗑 {len(dropped)} held post(s) cancelled; they won't publish: {', '.join(dropped)}."] if dropped else []
    if parts:
        lines.append(f"🗑 Held deliveries dropped; they won't publish: {'; '.join(parts)}. (/retry would send them "
                     "after all.)")
    reply = Reply("\n".join(lines) or "Nothing held was left to drop.")
    if not await refresh_crisis_card(ctx, ws_id):  # in crisis mode the pinned card says it
        await tell_team(ctx, ws_id, reply, skip=req.command.chat)
    return reply


def held_notice(post: Post) -> Reply:
    """The notice of one post held past the grace period (or by crisis mode)."""
    if CRISIS_HOLD in (post.held_note or ""):
        return Reply(
            f"⚠️ #{post.id} is held: it was {post.held_note}.\n"
            f"/held publish {post.id} sends it now · /schedule {post.id} <when> moves it · /held drop {post.id} drops it"
        )
    return Reply(
        f"⚠️ #{post.id} was {post.held_note}. It's held so it doesn't go out late by surprise.\n"
        f"/publish {post.id} sends it now · /schedule {post.id} <when> moves it · /cancel {post.id} drops it"
    )


# -- crisis mode's pinned card (the commands are in handlers/posts/publishing/crisis.py) ----------------------

CRISIS_HOLD = "while crisis mode is on"  # in the held_note of a post that came due during a crisis


def crisis_key(crisis: Crisis) -> str:
    """The card's Reply.replaces key: each notice about the crisis edits the one pinned card."""
    return f"crisis:{crisis.id}"


def statement_line(session: Session, crisis: Crisis) -> str:
    """Where the holding statement stands, with the command that moves it on."""
    post = session.get(Post, crisis.statement_post_id) if crisis.statement_post_id else None
    if post is None:
        return "Holding statement: none (no accounts connected when it started)."
    state = PostState(post.state)
    if state == PostState.IN_REVIEW:
        return f"Holding statement: #{post.id}, waiting for approval (/approve {post.id}; /preview {post.id} shows it)."
    if state in (PostState.DRAFT, PostState.CHANGES_REQUESTED):
        return f"Holding statement: #{post.id}, a draft to fix and send for approval (/preview {post.id}, /submit {post.id})."
    if state in (PostState.APPROVED, PostState.SCHEDULED):
        return f"Holding statement: #{post.id}, approved — /publish {post.id} sends it to every account."
    if state in (PostState.PUBLISHED, PostState.PARTIALLY_PUBLISHED, PostState.PUBLISHING, PostState.FAILED):
        sent = [a.name for d, a in post_targets(session, post) if DeliveryState(d.state) == DeliveryState.SENT]
        return f"Holding statement: #{post.id}, {state_label(post)}" + (
            f" — live on {', '.join(sent)}." if sent else ".")
    return f"Holding statement: #{post.id}, {state_label(post)}."


def crisis_card(ctx: Context, session: Session, ws: Workspace, crisis: Crisis, *, ended: bool = False) -> Reply:
    """The crisis card pinned in the team chats: what is held, since when, who started it and why."""
    tz = ws.timezone
    head = (f"🚨 CRISIS MODE since {show_time(crisis.started_at, tz)}, started by {crisis.started_by}: "
            f"{crisis.reason}")
    if ended:
        head = (f"✅ Crisis mode ended {show_time(crisis.ended_at, tz)} by {crisis.ended_by} (it began "
                f"{show_time(crisis.started_at, tz)}, started by {crisis.started_by}: {crisis.reason}).")
        return Reply(head, replaces=crisis_key(crisis), pinned=False)
    waiting = session.exec(
        select(func.count()).select_from(Post).where(Post.workspace_id == ws.id)
        .where(Post.state == PostState.SCHEDULED.value).where(col(Post.held_note).is_(None))
    ).one()
    posts = held_posts(session, ws.id or 0)
    lines = [head, f"Nothing goes out unless approved since then. {waiting} scheduled post(s) wait in /queue"
             + (f"; {len(posts)} came due and are held (times in {tz}):" if posts else "; none held yet.")]
    lines += held_lines(session, ws, posts[:LISTED_IN_NOTICE])
    if len(posts) > LISTED_IN_NOTICE:
        lines.append(f"  … and {len(posts) - LISTED_IN_NOTICE} more (/held lists them all)")
    audiences = session.exec(  # posts out for some audiences, the others waiting for their own time (`local`)
        select(func.count(distinct(col(Post.id)))).select_from(Post).join(Delivery, col(Delivery.post_id) == col(Post.id))
        .where(Post.workspace_id == ws.id).where(Post.state == PostState.PUBLISHING.value)
        .where(col(Post.due_local).is_not(None)).where(Delivery.state == DeliveryState.PENDING.value)
    ).one()
    if audiences:
        lines.append(f"{audiences} post(s) went out to some audiences and wait for the others' own time: each "
                     "audience is held when its time comes.")
    lines.append(f"Every reply to a comment needs approval; take-off and surge alerts at {ws.alert_factor:g}× the "
                 f"usual (was {crisis.saved_alert_factor:g}×)." if crisis.saved_alert_factor > 0 else
                 f"Every reply to a comment needs approval; take-off and surge alerts at {ws.alert_factor:g}× the "
                 "usual (they were off).")
    steps = waiting_steps(session, ws.id or 0)
    if steps:
        lines.append("Thread parts and first comments held after their post: " + ", ".join(steps)
                     + " — they follow when crisis mode ends.")
    lines.append(statement_line(session, crisis))
    lines.append(f"Ends by itself {show_time(crisis.resume_at, tz)}, or with /crisis end." if crisis.resume_at
                 else "/crisis end lifts it and walks the held posts.")
    return Reply("\n".join(lines), replaces=crisis_key(crisis), pinned=True)


async def refresh_crisis_card(ctx: Context, ws_id: int) -> bool:
    """Edit the pinned crisis card to show what is held now; False when no crisis is under way."""
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        crisis = active_crisis(session, ws)
        if crisis is None:
            return False
        card = crisis_card(ctx, session, ws, crisis)
    await tell_team(ctx, ws_id, card)
    return True
