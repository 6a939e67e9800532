"""When posts go out: /schedule (plain words or the next posting slot), /unschedule, /cancel, /queue."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import union_all, update
from sqlmodel import Session, col, select

from handlers.core.access import EDITORS
from handlers.core.audit import audit
from handlers.core.chat import Reply
from handlers.core.commands import Param, Request, command
from handlers.core.errors import UserError
from handlers.core.lookups import audience_name, delivery_audience, get_workspace, post_targets
from handlers.core.notices import tell_team
from handlers.core.ports import Networks
from handlers.core.when import When, WhenError, format_when, parse_wall, parse_when, show_time, split_local
from handlers.core.words import short_text, state_label
from handlers.engagement.besttime import best_slots, next_start
from handlers.posts.cards import approval_card, draft_card, target_names
from handlers.posts.local_time import (
    CANCELLED,
    UNSCHEDULED,
    AudienceTime,
    LocalPlan,
    apply_plan,
    audience_groups,
    clear_local,
    delivery_times,
    plan_lines,
    plan_local,
    plan_of,
    split_options,
)
from handlers.posts.render import Rendered, variant_for
from handlers.posts.rules import (
    UNAPPROVED,
    approvals_at_revision,
    approved_now,
    rearm,
    refuse_series_post,
    require_publishable,
)
from storage.models import Account, Delivery, DeliveryState, Post, PostState, Workspace, move_post

SLOT_SEARCH_DAYS = 14
SCHEDULABLE = (*UNAPPROVED, PostState.APPROVED, PostState.SCHEDULED, PostState.EXPIRED)


def slot_floor(post: Post, ws: Workspace, now: datetime) -> datetime:
    """A slot must start after this: a minute from now, and for a post still waiting for approval, after the
    approval deadline."""
    earliest = now + timedelta(minutes=1)
    if PostState(post.state) not in (PostState.APPROVED, PostState.SCHEDULED) and ws.approvals_needed > 0:
        earliest += timedelta(minutes=ws.approval_deadline_minutes)
    return earliest


def taken_times(session: Session, post: Post, pairs: list[tuple[Delivery, Account]]) -> set[datetime]:
    """The times other waiting posts of the same accounts already have."""
    taken_rows = session.exec(
        select(Post.due_at)
        .join(Delivery, col(Delivery.post_id) == col(Post.id))
        .where(col(Delivery.account_id).in_([a.id for _d, a in pairs]))
        .where(Post.id != post.id)
        .where(col(Post.state).in_([s.value for s in (*UNAPPROVED, PostState.APPROVED, PostState.SCHEDULED)]))
        .where(col(Post.due_at).is_not(None))
    ).all()
    return {t for t in taken_rows if t is not None}


def next_best(session: Session, networks: Networks, post: Post, ws: Workspace, now: datetime) -> tuple[When, str]:
    """The soonest free start of a best time for the post's networks (handlers/engagement/besttime.py), and why that one."""
    pairs = post_targets(session, post)
    slots, own = best_slots(session, networks, ws, [a for _d, a in pairs], now)
    at = next_start(slots, ws.timezone, slot_floor(post, ws, now), taken_times(session, post, pairs))
    if at is None:
        raise UserError(f"Every best time of the next {SLOT_SEARCH_DAYS} days is taken. Give a time instead.")
    why = ("one of this workspace's best times by its own numbers (/besttime)" if own else
           "a general default best time for its networks: there isn't enough history of your own yet (/besttime)")
    return When(at=at, tz=ws.timezone), why


def slot_times(account: Account, ws: Workspace, now: datetime, days: int) -> list[datetime]:
    """The account's posting slots (/slots, in its zone or the workspace's) from today to `days` days on, in UTC."""
    zone = ZoneInfo(account.timezone or ws.timezone)
    local_today = now.astimezone(zone).date()
    times = []
    for day in range(days + 1):
        date = local_today + timedelta(days=day)
        for slot in account.slot_list():
            hh, mm = (int(x) for x in slot.split(":"))
            times.append(datetime.combine(date, time(hh, mm), tzinfo=zone).astimezone(ZoneInfo("UTC")))
    return sorted(times)


def next_slot(session: Session, post: Post, ws: Workspace, now: datetime) -> When:
    """The earliest posting slot of the post's accounts that no other post already takes.

    For a post still waiting for approval, slots inside the approval deadline are skipped.
    """
    earliest = slot_floor(post, ws, now)
    pairs = post_targets(session, post)
    slotted = [a for _d, a in pairs if a.slot_list()]
    if not slotted:
        names = ", ".join(a.name for _d, a in pairs) or "its accounts"
        raise UserError(
            f"None of #{post.id}'s accounts ({names}) has posting slots. Set them with "
            f"/slots <account> 09:00 13:00 17:30, or give a time: /schedule {post.id} tomorrow 9am, "
            f"or take the next best time (/besttime): /schedule {post.id} next best"
        )
    found = first_free_slot(slotted, ws, now, earliest, taken_times(session, post, pairs))
    if found is None:
        raise UserError(f"Every slot of the next {SLOT_SEARCH_DAYS} days is taken. Give a time instead.")
    return found


def first_free_slot(slotted: list[Account], ws: Workspace, now: datetime, earliest: datetime,
                    taken: set[datetime]) -> When | None:
    """The earliest posting slot of these accounts after `earliest` and not `taken`, in its account's zone."""
    candidates: list[tuple[datetime, str]] = []
    for account in slotted:
        tz = account.timezone or ws.timezone
        for at in slot_times(account, ws, now, SLOT_SEARCH_DAYS):
            if at > earliest and at not in taken:
                candidates.append((at, tz))
    if not candidates:
        return None
    at, tz = min(candidates)
    return When(at=at, tz=tz)


NEXT_SLOT_WORDS = ("next slot", "next", "slot", "queue")
NEXT_BEST_WORDS = ("next best", "best", "best time", "next best time")


def plan_next(session: Session, networks: Networks, post: Post, ws: Workspace, now: datetime,
              *, best: bool) -> tuple[LocalPlan, str]:
    """`next best local` / `next slot local`: for each audience on its own, the soonest free best time in its
    zone (the best hours of the week for its accounts' networks, /besttime) or its accounts' next free posting
    slot (/slots); and why, for next best."""
    words = "next best" if best else "next slot"
    example = f"/schedule {post.id} tue 9:00 local"
    groups = audience_groups(session, post, ws, f"/schedule {post.id} {words}")
    floor = slot_floor(post, ws, now)
    times: dict[int | None, AudienceTime] = {}
    own_numbers: list[bool] = []
    for audience_id, group in groups.items():
        accounts = [a for _d, a in group.pairs]
        taken = taken_times(session, post, group.pairs)
        if best:
            slots, own = best_slots(session, networks, ws, accounts, now)
            own_numbers.append(own)
            at = next_start(slots, group.tz, floor, taken)
            if at is None:
                raise UserError(f"Every best time of the next {SLOT_SEARCH_DAYS} days is taken for {group.who}. "
                                f"Give a time instead, e.g. {example}. Nothing was changed.")
        else:
            slotted = [a for a in accounts if a.slot_list()]
            if not slotted:
                names = ", ".join(a.name for a in accounts)
                raise UserError(
                    f"None of the accounts of {group.who} ({names}) has posting slots. Set them with /slots "
                    f"{accounts[0].name} 09:00 13:00 17:30, or give a time, e.g. {example}. Nothing was changed.")
            found = first_free_slot(slotted, ws, now, floor, taken)
            if found is None:
                raise UserError(f"Every slot of the next {SLOT_SEARCH_DAYS} days is taken for {group.who}. "
                                f"Give a time instead, e.g. {example}. Nothing was changed.")
            at = found.at
        wall = at.astimezone(ZoneInfo(group.tz)).replace(tzinfo=None)
        times[audience_id] = AudienceTime(group.name, group.tz, wall, at)
    first = min(times.values(), key=lambda t: (t.at, t.name))
    plan = plan_of(groups, times, first.wall, "the next best time" if best else "the next posting slot")
    why = ""
    if best:
        why = ("the best hours by this workspace's own numbers (/besttime), each in its audience's zone"
               if all(own_numbers) else
               "a general default best time for the networks, in each audience's zone: there isn't enough history "
               "of your own yet (/besttime)")
    return plan, why


@command(
    "schedule",
    usage="/schedule <post> <when>", example="/schedule 12 tomorrow 9am",
    summary="set when a post goes out: 'tomorrow 9am', 'in 2 hours', '2026-12-01 18:30 Europe/Paris', 'next slot'",
    details=(
        "Times are read in the workspace timezone unless you name a zone, and echoed back in full.\n"
        "'next slot' takes the accounts' next free posting slot (/slots); 'next best' the next free best time "
        "(/besttime: from your own numbers, or general defaults until there are enough).\n"
        "A post that isn't approved yet keeps its time and publishes once approved (see /policy).\n"
        "'tue 9:00 local' sends it at 9:00 in each audience's own zone (accounts without an audience: the\n"
        "workspace's zone); add skip=holidays to move an audience whose day is a public holiday in its country\n"
        "to its next working day, e.g. /schedule 12 2026-12-08 09:00 local skip=holidays.\n"
        "'next best local' and 'next slot local' choose for each audience on its own, in its zone."
    ),
    roles=EDITORS,
    group="Scheduling",
    takes=(Param.post(), Param.when()),
)
async def schedule(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    post_id, when_text = req.post_and_rest()
    if not when_text:
        raise UserError(f"When? Usage: {req.spec.usage}")
    now = ctx.clock.now()
    notify_approvers = False
    with req.post_command() as (session, post, ws):
        state = PostState(post.state)
        if state not in SCHEDULABLE:
            raise UserError(f"#{post.id} is {state_label(post)}, so it can't be scheduled.")
        refuse_series_post(session, post, "scheduled")
        if not post_targets(session, post):
            raise UserError(f"#{post.id} has no target accounts yet: /targets {post.id} <account…>")
        why = ""
        rendered: list[Rendered] | None = None  # checked below when the post is approved at once; the card reuses it
        phrase, skip_holidays = split_options(when_text)
        phrase, local = split_local(phrase)
        plan: LocalPlan | None = None
        example = f"/schedule {post.id} tue 9:00 local"
        if skip_holidays and not local:
            raise UserError(f"skip=holidays goes with a time in each audience's zone ('local'), e.g. "
                            f"{example} skip=holidays. Nothing was changed.")
        if local and phrase.lower() in (*NEXT_SLOT_WORDS, *NEXT_BEST_WORDS):
            if skip_holidays:
                raise UserError(f"skip=holidays goes with a day and a clock time, e.g. {example} skip=holidays. "
                                "Nothing was changed.")
            plan, why = plan_next(session, ctx.networks, post, ws, now, best=phrase.lower() in NEXT_BEST_WORDS)
            when = When(at=plan.earliest, tz=ws.timezone)
            apply_plan(session, post, plan)
        elif local:
            try:
                wall = parse_wall(phrase, now=now, default_tz=ws.timezone, language=ws.language)
            except WhenError as exc:
                raise UserError(str(exc)) from None
            plan = plan_local(session, post, ws, wall, now, skip_holidays=skip_holidays, example=example)
            when = When(at=plan.earliest, tz=ws.timezone)
            apply_plan(session, post, plan)
        elif when_text.lower() in ("next slot", "next", "slot", "queue"):
            when = next_slot(session, post, ws, now)
        elif when_text.lower() in ("next best", "best", "best time", "next best time"):
            when, why = next_best(session, ctx.networks, post, ws, now)
        else:
            try:
                when = parse_when(when_text, now=now, default_tz=ws.timezone, language=ws.language)
            except WhenError as exc:
                raise UserError(str(exc)) from None
        if plan is None:
            clear_local(session, post)  # one time for every account again
        post.due_at, post.due_tz, post.held_note = when.at, when.tz, None
        shown = show_time(when.at, when.tz, now)
        if plan is not None:
            shown = f"{plan.label} in each audience's own zone, from {show_time(when.at, when.tz, now)}"
        if state in (PostState.APPROVED, PostState.SCHEDULED):
            if state == PostState.APPROVED:
                move_post(post, PostState.SCHEDULED)
            outcome = f"🗓 #{post.id} is scheduled for {shown} on {target_names(session, post)}."
        elif ws.approvals_needed == 0 and state in (*UNAPPROVED, PostState.EXPIRED):
            rendered = require_publishable(ctx, session, post, ws)
            if state != PostState.IN_REVIEW:
                move_post(post, PostState.IN_REVIEW)
            outcome = f"🗓 #{post.id}: " + approved_now(ctx, post, ws)
        else:
            if state == PostState.EXPIRED:
                move_post(post, PostState.IN_REVIEW)
                notify_approvers = True
            missing = ws.approvals_needed - len(approvals_at_revision(session, post))
            deadline = when.at - timedelta(minutes=ws.approval_deadline_minutes)
            if deadline <= now:
                raise UserError(
                    f"{shown} leaves no time for approval: this workspace wants approval "
                    f"{ws.approval_deadline_minutes} minutes before. Pick a later time."
                )
            step = "" if PostState(post.state) == PostState.IN_REVIEW else f" Send it for approval with /submit {post.id}."
            outcome = (
                f"🗓 #{post.id} is set for {shown}. It publishes then once approved "
                f"({missing} approval(s) still needed by {show_time(deadline, when.tz)}).{step}"
            )
        if plan is not None:
            outcome += "\n" + "\n".join(plan_lines(plan, ws.timezone))
        if why:
            outcome += f"\n⏰ That's {why}."
        if ws.paused:
            outcome += "\n⏸ Publishing is paused right now: nothing goes out until /resume."
        audit(session, ctx, ws_id, post.id, req.actor_name, "schedule",
              f"{plan.label} local, from {plan.wall:%Y-%m-%d %H:%M}" if plan is not None else show_time(when.at, when.tz))
        rearm(ctx, post, ws)
        card = approval_card(ctx, session, post, ws, f"🔔 #{post.id} has a new time and needs approval.") \
            if notify_approvers else None
        shown_card = None
        if req.pressed:  # pressed on a draft card: it shows the new time
            session.flush()
            shown_card = draft_card(ctx, session, post, ws, outcome.splitlines()[0], rendered)
    if card is not None:
        await tell_team(ctx, ws_id, card, purpose="approvals", skip=req.command.chat)
    return Reply(outcome, update=shown_card)


@command("unschedule", usage="/unschedule <post>", example="/unschedule 12", summary="remove a post's time; it stays approved",
         roles=EDITORS, group="Scheduling",
         takes=(Param.post(),))
async def unschedule(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    post_id, _ = req.post_and_rest()
    with req.post_command() as (session, post, ws):
        state = PostState(post.state)
        if state == PostState.PUBLISHING and post.due_local:
            stopped = stop_waiting(req, session, post, ws, UNSCHEDULED,
                                   f"taken off the schedule by {req.actor_name} before its own time",
                                   "unschedule", "nothing waits for its time")
            reply = Reply(f"#{post_id} is already out for some audiences; the ones still waiting won't go by "
                          f"themselves now ({', '.join(stopped)}). /retry {post_id} sends them now.")
        else:
            if post.due_at is None or state not in SCHEDULABLE:
                raise UserError(f"#{post.id} isn't scheduled.")
            if state == PostState.SCHEDULED:
                move_post(post, PostState.APPROVED)
            post.due_at, post.due_tz, post.held_note = None, None, None
            clear_local(session, post)
            audit(session, ctx, ws_id, post.id, req.actor_name, "unschedule")
            rearm(ctx, post, ws)
            return Reply(f"#{post_id} has no time now ({state_label(post)}). /schedule {post_id} <when> sets one again.")
    await tell_team(ctx, ws_id, reply, skip=req.command.chat)
    return reply


def stop_waiting(req: Request, session: Session, post: Post, ws: Workspace, kind: str, why: str, action: str,
                 nothing: str) -> list[str]:
    """A post going out at each audience's own time (publishing already for some): its deliveries not yet sent
    and not in flight stop (failed, with `kind` and `why`), each by a conditional move from pending, and the post
    runs now so publishing settles it and tells the team; audited as `action`. The audiences (or accounts)
    stopped; UserError saying `nothing` when none was left to stop."""
    ctx = req.ctx
    now = ctx.clock.now()
    stopped = []
    for delivery, account in post_targets(session, post):
        if DeliveryState(delivery.state) != DeliveryState.PENDING:
            continue
        if kind == UNSCHEDULED and (delivery.attempts or delivery.due_at is None or delivery.due_at <= now):
            continue  # /unschedule takes away own times still to come; retries go on
        moved = session.exec(  # type: ignore[call-overload]
            update(Delivery).where(col(Delivery.id) == delivery.id)
            .where(col(Delivery.state) == DeliveryState.PENDING.value)
            .values(state=DeliveryState.FAILED.value, error_kind=kind, updated_at=now,
                    last_error=f"{why} ({show_time(delivery.due_at or now, ws.timezone)})")
        )
        if moved.rowcount == 1:
            audience = delivery_audience(session, delivery)
            stopped.append(f"{audience_name(audience)}: {account.name}" if audience else account.name)
    if not stopped:
        raise UserError(f"#{post.id} is already going out everywhere; {nothing}.")
    audit(session, ctx, ws.id or 0, post.id, req.actor_name, action, ", ".join(stopped))
    ctx.scheduler.arm(post.id or 0, now)  # settled by publishing (run_due), which tells the team
    return stopped


@command("cancel", usage="/cancel <post>", example="/cancel 12", summary="drop a post; it will never publish", roles=EDITORS,
         group="Scheduling",
         takes=(Param.post(),))
async def cancel(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    post_id, _ = req.post_and_rest()
    with req.post_command() as (session, post, ws):
        if PostState(post.state) == PostState.PUBLISHING and post.due_local:
            stopped = stop_waiting(req, session, post, ws, CANCELLED, f"cancelled by {req.actor_name}", "cancel",
                                   "nothing is left to cancel")
            reply = Reply(f"#{post_id} is already out for some audiences; the rest won't go: {', '.join(stopped)}. "
                          f"(/retry {post_id} would send them after all.)")
        else:
            move_post(post, PostState.CANCELLED)
            post.held_note = None
            audit(session, ctx, ws_id, post.id, req.actor_name, "cancel")
            rearm(ctx, post, ws)
            reply = Reply(f"#{post_id} is cancelled and won't publish.")
    await tell_team(ctx, ws_id, reply, skip=req.command.chat)
    return reply


def targets_by_post(session: Session, post_ids: list[int]) -> dict[int, list[str]]:
    """Account names per post, for many posts in one query."""
    rows = session.exec(
        select(Delivery.post_id, Account.name).where(col(Delivery.account_id) == col(Account.id))
        .where(col(Delivery.post_id).in_(post_ids)).order_by(col(Account.name))
    ).all()
    names: dict[int, list[str]] = {}
    for post_id, name in rows:
        names.setdefault(post_id, []).append(name)
    return names


QUEUE_LENGTH = 50


def upcoming(session: Session, ws_id: int, states: tuple[PostState, ...], limit: int) -> list[Post]:
    """The workspace's first `limit` posts in `states` with a time, in time order.

    One ordered index range per state (ix_post_workspace_state_due), merged: a single `state IN (…) ORDER BY
    due_at` lets PostgreSQL walk every post of every workspace by time through ix_post_due_at and filter,
    which with years of published posts before the waiting ones took 28 ms at 100,000 posts (bench/).
    """
    firsts = [
        select(Post.id, Post.due_at).where(Post.workspace_id == ws_id).where(Post.state == state.value)
        .where(col(Post.due_at).is_not(None)).order_by(col(Post.due_at)).limit(limit).subquery()
        for state in states
    ]
    merged = union_all(*(select(first.c.id, first.c.due_at) for first in firsts)).subquery()
    ids = list(session.exec(select(merged.c.id).order_by(merged.c.due_at, merged.c.id).limit(limit)).all())
    if not ids:
        return []
    found = {post.id: post for post in session.exec(select(Post).where(col(Post.id).in_(ids))).all()}
    return [found[i] for i in ids if i in found]


@command("queue", usage="/queue", example="/queue", summary="what's coming up, in time order", group="Scheduling")
async def queue(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    now = ctx.clock.now()
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        rows = upcoming(session, ws_id, (*UNAPPROVED, PostState.SCHEDULED, PostState.PUBLISHING), QUEUE_LENGTH)
        lines = []
        if ws.paused:
            lines.append(f"⏸ Paused by {ws.paused_by}{': ' + ws.pause_reason if ws.pause_reason else ''} — /resume")
        if not rows:
            lines.append("Nothing is scheduled. /schedule <post> <when> sets a time.")
        names = targets_by_post(session, [post.id for post in rows if post.id is not None])
        for post in rows:
            flag = ""
            if post.held_note:
                flag = " ⚠ held"
            elif PostState(post.state) in UNAPPROVED:
                flag = f" (needs approval: {state_label(post)})"
            own = delivery_times(session, post) if post.due_local else []
            if own:  # one line per audience: its local time, then the team's
                for name, tz, at, deliveries in own:
                    ids = {d.id for d in deliveries}
                    pairs = sorted(((d, a) for d, a in post_targets(session, post) if d.id in ids),
                                   key=lambda pair: pair[1].name)
                    done = all(DeliveryState(d.state) != DeliveryState.PENDING for d in deliveries)
                    # the words this audience reads (its variant), from its first account
                    words = variant_for(post, pairs[0][1], delivery_audience(session, pairs[0][0]))
                    lines.append(
                        f"  {format_when(at, tz)}{' ✓ sent' if done else ''} · {name or 'no audience'} · "
                        f"{format_when(at, ws.timezone)} for the team · #{post.id}{flag} · "
                        f"{', '.join(a.name for _d, a in pairs)} · {short_text(words, 40)}"
                    )
                continue
            lines.append(
                f"  {show_time(post.due_at, post.due_tz or ws.timezone, now)} · #{post.id}{flag} · "
                f"{', '.join(names.get(post.id or 0, [])) or 'no accounts'} · {short_text(post.text, 40)}"
            )
    return Reply("Queue:\n" + "\n".join(lines) if rows else "\n".join(lines))
