"""Crisis mode (issue 19): one command for the day bad news breaks, and the way back.

- `/crisis start <reason> [resume=24h]` (admins, or the 🚨 button of a watch-word or surge alert): nothing is
  published any more unless approved after that moment (handlers/core/crisis.py is the rule every publishing
  path asks: the clock holds due posts like after downtime, /publish, /retry and /held publish refuse, replies
  wait for approval); the approval policy needs at least one approval, alerts fire at the workspace's crisis
  factor; a crisis card is pinned in the team chats (edited in place while it lasts, handlers/posts/publishing/
  held.py); a holding statement is drafted from the workspace's template, one variant per network, and sent
  for approval — one approval, then one press of the approval's button (or /publish) sends it to every account.
- `/crisis` shows where things stand; `/crisis template …` and `/crisis alerts <factor>` set it up beforehand.
- `/crisis end` (or the resume timer, on Herald's clock: the `crisis` periodic task, which also repeats an end
  notice a crash cut off): restores the policy and the alert factor, and walks the posts held meanwhile —
  each with publish now / reschedule / drop buttons — and `/crisis release <minutes>` publishes them all in
  their order, that many minutes apart.
"""

from __future__ import annotations

import logging
import re
import string
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlmodel import Session, col, select

from handlers.core.access import ADMINS, EDITORS
from handlers.core.audit import audit
from handlers.core.chat import Button, Reply
from handlers.core.commands import Request, command, periodic
from handlers.core.context import Context
from handlers.core.crisis import active_crisis, latest_approval_id
from handlers.core.errors import UserError
from handlers.core.lookups import get_workspace
from handlers.core.notices import tell_team
from handlers.core.when import show_time
from handlers.core.words import short_text
from handlers.engagement.alerts import FACTOR_RANGE
from handlers.engagement.replies import APPROVED as REPLY_APPROVED
from handlers.engagement.replies import AWAITING as REPLY_AWAITING
from handlers.posts.cards import approval_card
from handlers.posts.drafts import set_targets
from handlers.posts.publishing.due import sweep
from handlers.posts.publishing.held import crisis_card, held_lines, held_posts
from handlers.posts.rules import rearm, require_publishable
from storage.models import (
    Account,
    AuditEvent,
    Crisis,
    InboxItem,
    Post,
    PostState,
    Workspace,
    move_post,
)

log = logging.getLogger("herald.crisis")

USAGE = "/crisis [start <reason> [resume=24h] | end | release <minutes> | template [text|reset] | alerts <factor>]"
DEFAULT_TEMPLATE = ("We're aware of {reason} and we're looking into it right now. We'll share an update here as "
                    "soon as we can. — {company}")
PLACEHOLDERS = {
    "reason": "the reason given to /crisis start",
    "company": "the workspace's name",
    "network": "the network the statement goes to (X, Bluesky, …)",
    "date": "today's date in the workspace's timezone",
}
MAX_TEMPLATE = 2000
MAX_REASON = 300
RESUME_RE = re.compile(r"(?:^|\s)resume=(\S*)\s*$", re.IGNORECASE)
DURATION_RE = re.compile(r"(\d{1,4})\s*(m|min|mins|minutes?|h|hours?|d|days?)")
LONGEST_RESUME = timedelta(days=14)
WALKED = 8  # held posts that get their own buttons when crisis mode ends; /held lists them all
LONGEST_GAP = 24 * 60  # minutes between two released posts
TELL_AGAIN_AFTER = timedelta(minutes=2)  # an end whose notice a crash cut off is told again after this
CLOCK_EVERY = timedelta(minutes=1)


# -- reading the command ---------------------------------------------------------------------------------------


def action_of(req: Request) -> tuple[str, str]:
    """(what to do, the rest of the words). A button names it in `do` and its typed line is the rest."""
    pressed = req.arg("do")
    if pressed is not None:
        return str(pressed).lower(), str(req.arg("text", "")).strip()
    head, *rest = re.split(r"\s", req.command.text.strip(), maxsplit=1)  # a template may start on the next line
    return (head.lower() or "status"), (rest[0].strip() if rest else "")


def parse_resume(text: str) -> tuple[str, timedelta | None]:
    """Peel `resume=24h` off the end of a reason: (the reason, how long until crisis mode ends by itself)."""
    found = RESUME_RE.search(text)
    if found is None:
        return text.strip(), None
    value = found.group(1).strip().lower()
    match = DURATION_RE.fullmatch(value)
    if match is None:
        raise UserError(f"resume={value or '…'} isn't a duration. Use minutes, hours or days, e.g. resume=90m, "
                        "resume=24h or resume=2d. Nothing was changed.")
    amount, unit = int(match.group(1)), match.group(2)[0]
    after = timedelta(minutes=amount * {"m": 1, "h": 60, "d": 1440}[unit])
    if not timedelta(minutes=1) <= after <= LONGEST_RESUME:
        raise UserError("resume= is from 1 minute to 14 days (e.g. resume=24h); leave it out to end crisis mode "
                        "only with /crisis end. Nothing was changed.")
    return text[: found.start()].strip(), after


def template_fields(template: str) -> list[str]:
    """The placeholders a template uses; UserError for a broken or unknown one (with what is allowed)."""
    known = ", ".join("{" + name + "}" for name in PLACEHOLDERS)
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        raise UserError(f"That template has a stray {{ or }}. Placeholders are {known}; write {{{{ or }}}} for a "
                        "brace itself. Nothing was changed.") from None
    fields = []
    for _text, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            raise UserError(f"{{{name}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}} isn't "
                            f"a placeholder I know. Use {known}. Nothing was changed.")
        fields.append(name)
    return fields


def fill(template: str, ws: Workspace, reason: str, network: str, now: datetime) -> str:
    """The statement's text for one network."""
    day = now.astimezone(ZoneInfo(ws.timezone)).strftime("%d %b %Y").lstrip("0")
    return template.format_map({"reason": reason, "company": ws.name, "network": network, "date": day}).strip()


def parse_minutes(text: str) -> int:
    words = text.split()
    if len(words) != 1 or not words[0].removesuffix("m").removesuffix("min").isdigit():
        raise UserError("How many minutes between them? e.g. /crisis release 10 (0 sends them all now). "
                        "Nothing was changed.")
    minutes = int(words[0].removesuffix("m").removesuffix("min"))
    if minutes > LONGEST_GAP:
        raise UserError(f"At most {LONGEST_GAP} minutes (a day) between two posts; {minutes} is too many. "
                        "Nothing was changed.")
    return minutes


# -- the command -------------------------------------------------------------------------------------------------


@command(
    "crisis",
    usage=USAGE, example="/crisis start Reports of a data breach resume=24h",
    summary="crisis mode: hold every post, approve every reply, pin a crisis card, draft a holding statement",
    details=(
        "/crisis shows where crisis mode stands.\n"
        "/crisis start <reason> [resume=24h] (admins; also the 🚨 button of an alert): nothing is published unless "
        "approved after this moment — due posts are held, /publish, /retry and /held publish refuse, every reply "
        "needs approval whatever the policy, alerts fire at the crisis factor; a card is pinned in the team chats "
        "and a holding statement is drafted from the template and sent for approval (one approval, then "
        "/publish sends it to every account). resume= ends it by itself after that long.\n"
        "/crisis end (admins): restores the policy and the alert factor and walks the held posts: publish now, "
        "reschedule or drop each; /crisis release <minutes> publishes them all in their order, that far apart.\n"
        "/crisis template <text> (admins) sets the holding statement, with {reason} {company} {network} {date}; "
        "/crisis template reset goes back to Herald's. /crisis alerts <factor> (admins): the alert factor while "
        "crisis mode lasts."
    ),
    group="Publishing",
)
async def crisis(req: Request) -> Reply:
    ws_id = req.need_workspace()
    do, rest = action_of(req)
    if do == "status":
        if rest:
            raise UserError(f"/crisis {req.command.text.strip()}? Usage: {USAGE}")
        return crisis_status(req.ctx, ws_id)
    if do == "start":
        req.require_role(ADMINS, "start crisis mode")
        return await start_crisis(req, ws_id, rest)
    if do == "end":
        req.require_role(ADMINS, "end crisis mode")
        if rest:
            raise UserError("/crisis end takes nothing after it. Nothing was changed.")
        return await end_command(req, ws_id)
    if do == "release":
        req.require_role(EDITORS, "publish the held posts")
        return await release(req, ws_id, parse_minutes(rest))
    if do == "template":
        return set_template(req, ws_id, rest)
    if do == "alerts":
        return set_crisis_factor(req, ws_id, rest)
    raise UserError(f"/crisis {do}? Usage: {USAGE} — e.g. /crisis start Reports of a data breach resume=24h.")


# -- status and settings -------------------------------------------------------------------------------------------


def crisis_status(ctx: Context, ws_id: int) -> Reply:
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        current = active_crisis(session, ws)
        if current is not None:
            card = crisis_card(ctx, session, ws, current)
            return replace(card, text=card.text + "\n" + timeline(session, ws, current), replaces=None, pinned=None)
        last = session.exec(select(Crisis).where(Crisis.workspace_id == ws_id)
                            .order_by(col(Crisis.id).desc())).first()
        lines = ["No crisis mode now. /crisis start <reason> [resume=24h] holds every post, makes every reply wait "
                 "for approval, pins a crisis card and drafts a holding statement."]
        if last is not None:
            lines.append(f"The last one: {show_time(last.started_at, ws.timezone)} to "
                         f"{show_time(last.ended_at, ws.timezone)}, started by {last.started_by}: {last.reason}.")
        lines.append(f"Holding statement template ({'your own' if ws.crisis_template else 'Herald’s'}; /crisis "
                     f"template <text> changes it): {ws.crisis_template or DEFAULT_TEMPLATE}")
        lines.append(f"Alerts during a crisis: at {ws.crisis_alert_factor:g}× the usual (/crisis alerts <factor>).")
        return Reply("\n".join(lines))


def timeline(session: Session, ws: Workspace, current: Crisis) -> str:
    """What happened since crisis mode started (the audit trail), newest last."""
    events = session.exec(
        select(AuditEvent).where(AuditEvent.workspace_id == ws.id)
        .where(col(AuditEvent.created_at) >= current.started_at).order_by(col(AuditEvent.id))
    ).all()
    lines = [f"  {show_time(e.created_at, ws.timezone)} · {e.actor} · {e.action}"
             + (f" #{e.post_id}" if e.post_id else "") + (f": {short_text(e.detail, 80)}" if e.detail else "")
             for e in events[-10:]]
    return "Since it started (the last 10; /history <post> for one post):\n" + "\n".join(lines)


def set_template(req: Request, ws_id: int, text: str) -> Reply:
    ctx = req.ctx
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        if not text:
            return Reply(f"Holding statement template ({'your own' if ws.crisis_template else 'Herald’s'}):\n"
                         f"{ws.crisis_template or DEFAULT_TEMPLATE}\n"
                         "Placeholders: " + ", ".join(f"{{{k}}} {v}" for k, v in PLACEHOLDERS.items()) + ".")
        req.require_role(ADMINS, "change the holding statement template")
        if text.lower() == "reset":
            ws.crisis_template = ""
            audit(session, ctx, ws_id, None, req.actor_name, "crisis template", "back to Herald's")
            return Reply(f"The holding statement template is Herald's again:\n{DEFAULT_TEMPLATE}")
        if len(text) > MAX_TEMPLATE:
            raise UserError(f"A template is at most {MAX_TEMPLATE} characters; that one has {len(text)}. "
                            "Nothing was changed.")
        template_fields(text)
        ws.crisis_template = text
        audit(session, ctx, ws_id, None, req.actor_name, "crisis template", short_text(text, 120))
        example = fill(text, ws, "a delayed delivery", "X", ctx.clock.now())
    return Reply(f"Holding statement template saved. With /crisis start a delayed delivery, X would get:\n{example}")


def set_crisis_factor(req: Request, ws_id: int, text: str) -> Reply:
    ctx = req.ctx
    low, high = FACTOR_RANGE
    if not text:
        with ctx.db.session() as session:
            ws = get_workspace(session, ws_id)
            return Reply(f"During a crisis, take-off and surge alerts fire at {ws.crisis_alert_factor:g}× the usual "
                         f"(now, outside one: {ws.alert_factor:g}×). /crisis alerts <factor> changes it ({low:g}–"
                         f"{high:g}).")
    raw = text.strip().lower().removeprefix("factor=").rstrip("x×")
    try:
        factor = float(raw)
    except ValueError:
        raise UserError(f"'{text}' isn't a factor. Example: /crisis alerts 1.5 (from {low:g} to {high:g} times the "
                        "usual engagement). Nothing was changed.") from None
    if not low <= factor <= high:
        raise UserError(f"The factor must be from {low:g} to {high:g}; {factor:g} isn't. Nothing was changed.")
    req.require_role(ADMINS, "change the crisis alert factor")
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        ws.crisis_alert_factor = factor
        now_on = active_crisis(session, ws) is not None
        if now_on:
            ws.alert_factor = factor
        audit(session, ctx, ws_id, None, req.actor_name, "crisis alerts", f"factor={factor:g}")
    return Reply(f"During a crisis, take-off and surge alerts fire at {factor:g}× the usual"
                 + (" — from now on, as crisis mode is on." if now_on else "."))


# -- start -------------------------------------------------------------------------------------------------------------


async def start_crisis(req: Request, ws_id: int, text: str) -> Reply:
    ctx = req.ctx
    reason, after = parse_resume(" ".join(text.split()))
    if not reason:
        raise UserError("What's happening? The reason goes on the crisis card and into the holding statement: "
                        "/crisis start <reason> [resume=24h], e.g. /crisis start Reports of a data breach. "
                        "Nothing was changed.")
    if len(reason) > MAX_REASON:
        raise UserError(f"Keep the reason under {MAX_REASON} characters (it goes into the holding statement). "
                        "Nothing was changed.")
    now = ctx.clock.now()
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        current = active_crisis(session, ws)
        if current is not None:
            raise UserError(f"Crisis mode is already on, since {show_time(current.started_at, ws.timezone)} "
                            f"(started by {current.started_by}: {current.reason}). /crisis shows it; /crisis end "
                            "lifts it.")
        lowered = ws.crisis_alert_factor if ws.alert_factor <= 0 or ws.crisis_alert_factor < ws.alert_factor \
            else ws.alert_factor
        spell = Crisis(workspace_id=ws_id, reason=reason, started_by=req.actor_name, started_at=now,
                       resume_at=now + after if after else None, approvals_before=latest_approval_id(session),
                       saved_approvals_needed=ws.approvals_needed, saved_alert_factor=ws.alert_factor)
        session.add(spell)
        session.flush()
        # the claim: of two admins starting it at once, one wins (the workspace names one crisis under way)
        won = session.execute(
            update(Workspace).where(col(Workspace.id) == ws_id).where(col(Workspace.crisis_id).is_(None))
            .values(crisis_id=spell.id, approvals_needed=max(1, ws.approvals_needed), alert_factor=lowered)
        ).rowcount == 1  # type: ignore[attr-defined]
        if not won:
            raise UserError("Crisis mode was started at the same moment by someone else. /crisis shows it.")
        session.refresh(ws)
        # replies approved before now but not sent yet: approved again, during the crisis, before they go out
        session.execute(
            update(InboxItem).execution_options(synchronize_session=False).where(col(InboxItem.workspace_id) == ws_id)
            .where(col(InboxItem.reply_state) == REPLY_APPROVED).values(reply_state=REPLY_AWAITING, reply_approvals=[])
        )
        statement, problem = open_statement(req, session, ws, spell)
        audit(session, ctx, ws_id, None, req.actor_name, "crisis start",
              reason + (f" (ends by itself {show_time(spell.resume_at, ws.timezone)})" if spell.resume_at else ""))
        session.flush()
        card = crisis_card(ctx, session, ws, spell)
        approval = approval_card(ctx, session, statement, ws, f"📝 Holding statement #{statement.id} for crisis mode: "
                                 + (f"once approved, one press of its button (or /publish {statement.id}) sends it to every account." if problem is None
                                    else f"it doesn't fit every network yet — {problem}")) \
            if statement is not None else None
    await tell_team(ctx, ws_id, card)
    if approval is not None and problem is None:
        await tell_team(ctx, ws_id, approval, purpose="approvals", skip=req.command.chat)
    head = "🚨 Crisis mode is on. Nothing is published unless approved from now on; the card is pinned."
    if approval is None:
        return Reply(head + " No accounts are connected, so there's no holding statement to draft.")
    return Reply(head + "\n" + approval.text, buttons=approval.buttons, card=approval.card)


def open_statement(req: Request, session: Session, ws: Workspace, spell: Crisis) -> tuple[Post | None, str | None]:
    """The holding statement: one post to every account, its text from the template with a variant per network
    when the template names the network; submitted for approval. (None, None) without accounts; the problem
    when it doesn't fit a network (it stays a draft to fix)."""
    ctx, actor = req.ctx, req.command.actor
    accounts = list(session.exec(select(Account).where(Account.workspace_id == ws.id).order_by(col(Account.name))).all())
    if not accounts:
        return None, None
    template = ws.crisis_template or DEFAULT_TEMPLATE
    now = ctx.clock.now()
    networks = sorted({a.network for a in accounts})
    texts = {n: fill(template, ws, spell.reason, ctx.networks.label(n), now) for n in networks}
    main = fill(template, ws, spell.reason, ctx.networks.label(networks[0]), now)
    post = Post(workspace_id=ws.id or 0, author_platform=actor.platform, author_user_id=actor.user_id,
                author_name=actor.name, editor_platform=actor.platform, editor_user_id=actor.user_id, text=main,
                campaign="crisis", created_at=now, updated_at=now,
                variants={n: t for n, t in texts.items() if t != main})
    session.add(post)
    session.flush()
    set_targets(session, post, accounts)
    session.flush()
    spell.statement_post_id = post.id
    audit(session, ctx, ws.id or 0, post.id, req.actor_name, "draft", "holding statement of crisis mode")
    try:
        require_publishable(ctx, session, post, ws)
    except UserError as exc:
        return post, str(exc)
    move_post(post, PostState.IN_REVIEW)
    audit(session, ctx, ws.id or 0, post.id, req.actor_name, "submit", f"revision {post.revision}")
    return post, None


# -- end --------------------------------------------------------------------------------------------------------------


async def end_command(req: Request, ws_id: int) -> Reply:
    ctx = req.ctx
    with ctx.db.session() as session:
        current = active_crisis(session, get_workspace(session, ws_id))
        if current is None:
            raise UserError("Crisis mode isn't on. /crisis start <reason> turns it on.")
        crisis_id = current.id or 0
    if not end_crisis(ctx, ws_id, crisis_id, req.actor_name):
        raise UserError("Crisis mode was ended at the same moment (by someone else or its timer).")
    card, walk = end_notices(ctx, crisis_id)
    await tell_team(ctx, ws_id, card)
    await tell_team(ctx, ws_id, walk, skip=req.command.chat)
    mark_told(ctx, crisis_id)
    return walk


def end_crisis(ctx: Context, ws_id: int, crisis_id: int, by: str) -> bool:
    """Lift crisis mode and put back the policy and the alert factor, in one transaction; False if it was lifted
    already (by another worker, a person, or the timer)."""
    now = ctx.clock.now()
    with ctx.db.session() as session:
        spell = session.get(Crisis, crisis_id)
        if spell is None or spell.ended_at is not None:
            return False
        won = session.execute(
            update(Workspace).where(col(Workspace.id) == ws_id).where(col(Workspace.crisis_id) == crisis_id)
            .values(crisis_id=None, approvals_needed=spell.saved_approvals_needed,
                    alert_factor=spell.saved_alert_factor)
        ).rowcount == 1  # type: ignore[attr-defined]
        if not won:
            return False
        spell.ended_at, spell.ended_by = now, by
        audit(session, ctx, ws_id, None, by, "crisis end",
              f"{spell.reason}; approvals back to {spell.saved_approvals_needed}, alerts back to "
              f"{spell.saved_alert_factor:g}×")
    return True


def end_notices(ctx: Context, crisis_id: int) -> tuple[Reply, Reply]:
    """The card's last state (unpinned), and the walk through the posts held meanwhile, with their buttons."""
    with ctx.db.session() as session:
        spell = session.get(Crisis, crisis_id)
        assert spell is not None
        ws = get_workspace(session, spell.workspace_id)
        card = crisis_card(ctx, session, ws, spell, ended=True)
        posts = held_posts(session, ws.id or 0)
        lines = [f"▶️ Crisis mode ended ({spell.ended_by}). Approvals are back to {spell.saved_approvals_needed} per "
                 f"post and reply; take-off and surge alerts back to "
                 + (f"{spell.saved_alert_factor:g}×." if spell.saved_alert_factor > 0 else "off.")]
        if not posts:
            lines.append("No post came due during it; scheduled posts go out at their times (/queue).")
            return card, Reply("\n".join(lines))
        lines.append(f"{len(posts)} post(s) were held, in their order (times in {ws.timezone}):")
        lines += held_lines(session, ws, posts)
        lines.append("Publish each now, reschedule it or drop it with its buttons — or all of them in their order, "
                     "spaced out: /crisis release <minutes between>, e.g. /crisis release 10.")
        if len(posts) > WALKED:
            lines.append(f"(buttons for the first {WALKED}; /held publish|drop <post> for the others)")
        buttons: list[Button] = []
        for post in posts[:WALKED]:
            buttons += [Button(f"📣 #{post.id} now", "held", {"words": f"publish {post.id}"}),
                        Button(f"🗓 #{post.id} later", "schedule", {"post": post.id},
                               prompt=f"When should #{post.id} go out? (e.g. tomorrow 9am)"),
                        Button(f"🗑 #{post.id}", "held", {"words": f"drop {post.id}"})]
        buttons.append(Button("📣 All, spaced out", "crisis", {"do": "release"},
                              prompt="How many minutes between them? (0 sends them all now)"))
    return card, Reply("\n".join(lines), buttons=tuple(buttons))


def mark_told(ctx: Context, crisis_id: int) -> None:
    with ctx.db.session() as session:
        session.execute(update(Crisis).where(col(Crisis.id) == crisis_id).where(col(Crisis.told_end_at).is_(None))
                        .values(told_end_at=ctx.clock.now()))


@periodic("crisis", every=CLOCK_EVERY)
async def crisis_clock(ctx: Context) -> int:
    """End the crises whose resume time came, and tell again an end whose notice a crash cut off; how many ended."""
    now = ctx.clock.now()
    with ctx.db.session() as session:
        due = session.exec(select(Crisis.id, Crisis.workspace_id).where(col(Crisis.ended_at).is_(None))
                           .where(col(Crisis.resume_at) <= now)).all()
        untold = session.exec(select(Crisis.id, Crisis.workspace_id).where(col(Crisis.told_end_at).is_(None))
                              .where(col(Crisis.ended_at) <= now - TELL_AGAIN_AFTER)).all()
    ended = 0
    due_ids = {crisis_id for crisis_id, _ws in due}
    for crisis_id, ws_id in [*due, *untold]:
        assert crisis_id is not None
        if crisis_id in due_ids:
            if not end_crisis(ctx, ws_id, crisis_id, "Herald (its resume time came)"):
                continue
            ended += 1
        card, walk = end_notices(ctx, crisis_id)
        await tell_team(ctx, ws_id, card)
        await tell_team(ctx, ws_id, walk)
        mark_told(ctx, crisis_id)
    return ended


# -- release -------------------------------------------------------------------------------------------------------------


async def release(req: Request, ws_id: int, minutes: int) -> Reply:
    """Publish the held posts in their order, `minutes` apart: the first now, each next one that much later."""
    ctx = req.ctx
    now = ctx.clock.now()
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        if active_crisis(session, ws) is not None:
            raise UserError("Crisis mode is still on, so they would only be held again. /crisis end first.")
        posts = held_posts(session, ws_id)
        if not posts:
            raise UserError("No posts are held. /queue shows what's coming up.")
        ready = [p for p in posts if PostState(p.state) == PostState.SCHEDULED]
        unapproved = [p for p in posts if PostState(p.state) != PostState.SCHEDULED]
        if not ready:
            raise UserError("None of the held posts is approved, so none can go out: "
                            + ", ".join(f"#{p.id}" for p in unapproved) + " wait for approval (/approve <post>), "
                            "or /held drop them.")
        times = []
        for n, post in enumerate(ready):
            post.due_at, post.held_note = now + timedelta(minutes=minutes * n), None
            times.append(f"#{post.id} {'now' if n == 0 else show_time(post.due_at, post.due_tz or ws.timezone, now)}")
            audit(session, ctx, ws_id, post.id, req.actor_name, "schedule",
                  f"released after crisis mode: {show_time(post.due_at, post.due_tz or ws.timezone)}")
            rearm(ctx, post, ws)
    gap = f", {minutes} minute(s) apart" if minutes and len(ready) > 1 else ""
    text = f"📣 {len(ready)} held post(s) go out in their order{gap}: " + ", ".join(times) + "."
    if unapproved:
        text += (f"\n{', '.join(f'#{p.id}' for p in unapproved)} still need approval and stay held "
                 "(/approve <post>, then /held publish <post>).")
    await tell_team(ctx, ws_id, Reply(text), skip=req.command.chat)
    await sweep(ctx, workspace_id=ws_id)  # the first one is due now
    return Reply(text)

