"""The approval step: /submit, /approve, /changes and /reject, with the workspace policy enforced."""

from __future__ import annotations

import re
from dataclasses import replace

from sqlmodel import Session, select

from handlers.core.access import ADMINS, EDITORS, role_refusal
from handlers.core.audit import audit
from handlers.core.chat import Button, Reply
from handlers.core.commands import Param, Request, check_revision, command
from handlers.core.context import Context
from handlers.core.crisis import active_crisis
from handlers.core.errors import UserError
from handlers.core.lookups import get_workspace
from handlers.core.notices import tell_team
from handlers.core.words import state_label
from handlers.posts.cards import approval_card, draft_card
from handlers.posts.rules import (
    approvals_at_revision,
    approved_now,
    awaiting_fix_approval,
    rearm,
    require_publishable,
)
from handlers.posts.series import fill_series_of
from storage.models import Approval, Decision, Post, PostState, Role, UnapprovedAction, Workspace, move_post


def approval_card_key(post_id: int) -> str:
    """The key an approval card is sent under into the approvals chats (Reply.replaces)."""
    return f"approval:{post_id}"


def check_button(req: Request, post: Post, verb: str, *, fix_ok: bool = False) -> None:
    """Refuse a stale button or command: wrong revision, or the post is no longer in review."""
    check_revision(req, post)
    if PostState(post.state) != PostState.IN_REVIEW and not (fix_ok and awaiting_fix_approval(post)):
        raise UserError(f"#{post.id} is {state_label(post)}, not waiting for approval, so it can't be {verb}.")


def require_approver(req: Request, ws: Workspace, post: Post, verb: str) -> None:
    roles = ws.approver_role_set()
    if req.role.value not in roles:
        raise UserError(role_refusal(roles, req.role, f"{verb} posts here", req.actor_name, suggest="approver",
                                     here=False))
    actor = req.command.actor
    me = (actor.platform, actor.user_id)
    wrote = me == (post.author_platform, post.author_user_id)
    edited = me == (post.editor_platform, post.editor_user_id)
    if (wrote or edited) and not ws.self_approval:
        raise UserError(
            f"You {'wrote' if wrote else 'wrote the current version of'} #{post.id}, and this workspace doesn't let "
            f"authors {verb} their own posts. Ask another approver (an admin can allow it with /policy self_approval=on)."
        )


@command(
    "submit",
    usage="/submit <post>", example="/submit 12",
    summary="send a draft to the approvers (or approve it at once if the policy needs no approval)",
    roles=EDITORS,
    group="Approvals",
    takes=(Param.post(),),
)
async def submit(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    post_id, _ = req.post_and_rest()
    with req.post_command() as (session, post, ws):
        if PostState(post.state) not in (PostState.DRAFT, PostState.CHANGES_REQUESTED):
            raise UserError(f"#{post.id} is {state_label(post)}; only drafts and posts sent back for changes can be submitted.")
        rendered = require_publishable(ctx, session, post, ws)
        if ws.approvals_needed == 0:
            move_post(post, PostState.IN_REVIEW)
            outcome = approved_now(ctx, post, ws)
            audit(session, ctx, ws_id, post.id, req.actor_name, "submit", "no approval needed by policy")
            rearm(ctx, post, ws)
            done = draft_card(ctx, session, post, ws, f"#{post.id} was submitted by {req.actor_name}. {outcome}",
                              rendered) if req.pressed else None
            return Reply(f"#{post.id} needs no approval in this workspace. {outcome}", update=done)
        move_post(post, PostState.IN_REVIEW)
        post.held_note = None
        audit(session, ctx, ws_id, post.id, req.actor_name, "submit", f"revision {post.revision}")
        rearm(ctx, post, ws)
        roles = " or ".join(sorted(ws.approver_role_set()))
        card = approval_card(
            ctx, session, post, ws,
            f"🔔 {req.actor_name} asks for approval of #{post.id} ({ws.approvals_needed} needed, from {roles}).",
            rendered,
        )
    # the draft card the button was on now says so (the approval card, headline changed, no buttons)
    sent_card = Reply("\n".join([f"#{post_id} was submitted for approval by {req.actor_name}.",
                                 *card.text.splitlines()[1:]]), card=post_id) if req.pressed else None
    # sent under a key, so a decision made away from the chat (an outside reviewer's, handlers/posts/review.py)
    # edits this card where the platform can edit
    await tell_team(ctx, ws_id, replace(card, replaces=approval_card_key(post_id)), purpose="approvals",
                    skip=req.command.chat)
    return Reply(card.text, buttons=card.buttons, card=card.card, update=sent_card)


def record_approval(ctx: Context, session: Session, post: Post, ws: Workspace, *, platform: str, user_id: str,
                    name: str) -> tuple[int, str]:
    """Records `name`'s approval of the post's current revision and applies the policy: (the approvals that count
    now, what happens next — approved, scheduled, or how many more are needed). The caller checked the approver
    and the post."""
    assert post.id is not None
    session.add(Approval(post_id=post.id, revision=post.revision, platform=platform, user_id=user_id, name=name,
                         decision=Decision.APPROVE.value, created_at=ctx.clock.now()))
    session.flush()
    have = len(approvals_at_revision(session, post))
    audit(session, ctx, ws.id or 0, post.id, name, "approve", f"revision {post.revision} ({have}/{ws.approvals_needed})")
    if have >= ws.approvals_needed and awaiting_fix_approval(post):
        outcome = f"The new version is approved: /retry {post.id} sends it where it failed."
    elif have >= ws.approvals_needed:
        outcome = approved_now(ctx, post, ws)
    else:
        outcome = f"{ws.approvals_needed - have} more approval(s) needed."
    rearm(ctx, post, ws)
    return have, outcome


def record_decision(ctx: Context, session: Session, post: Post, ws: Workspace, decision: Decision, note: str, *,
                    platform: str, user_id: str, name: str) -> str:
    """Records a request for changes or a rejection of the post's current revision with its note, moves the post,
    and returns the notice that says so. The caller checked the approver and the post."""
    assert post.id is not None
    session.add(Approval(post_id=post.id, revision=post.revision, platform=platform, user_id=user_id, name=name,
                         decision=decision.value, note=note, created_at=ctx.clock.now()))
    if decision == Decision.CHANGES:
        move_post(post, PostState.CHANGES_REQUESTED)
        text = (f"✏️ {name} asked for changes on #{post.id}: {note}\n"
                f"{post.author_name}: /edit {post.id} <text>, then /submit {post.id} again.")
    else:
        move_post(post, PostState.REJECTED)
        text = f"⛔ {name} rejected #{post.id}: {note}\nIt won't publish. /draft starts a new post."
    audit(session, ctx, ws.id or 0, post.id, name, decision.value, note)
    rearm(ctx, post, ws)
    return text


@command(
    "approve",
    usage="/approve <post>", example="/approve 12",
    summary="approve a post waiting for review",
    group="Approvals",
    takes=(Param.post(),),
)
async def approve(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    post_id, _ = req.post_and_rest()
    actor = req.command.actor
    with req.post_command() as (session, post, ws):
        require_approver(req, ws, post, "approve")
        check_button(req, post, "approved", fix_ok=True)
        approvals = approvals_at_revision(session, post)
        if any((a.platform, a.user_id) == (actor.platform, actor.user_id) for a in approvals):
            raise UserError(
                f"You already approved revision {post.revision} of #{post.id}; "
                f"it needs {ws.approvals_needed - len(approvals)} more from someone else."
            )
        rendered = require_publishable(ctx, session, post, ws)  # checked once: the card below shows these
        have, outcome = record_approval(ctx, session, post, ws, platform=actor.platform, user_id=actor.user_id,
                                        name=actor.name)
        # the holding statement of crisis mode: its first public word goes out with one press, not a command
        crisis = active_crisis(session, ws)
        statement = (crisis is not None and crisis.statement_post_id == post.id and post.due_at is None
                     and PostState(post.state) == PostState.APPROVED)
        buttons = (Button(f"📣 Publish #{post.id} to every account now", "publish", {"post": post.id}),) \
            if statement else ()
        if statement:
            outcome = (f"The holding statement is approved: the button (or /publish {post.id}) sends it to every "
                       "account now.")
        text = f"✅ {actor.name} approved #{post.id} ({have} of {ws.approvals_needed}). {outcome}"
        card = None
        if req.pressed:  # a button on a card: the card is edited to show the decision
            session.flush()
            card = approval_card(ctx, session, post, ws, f"#{post.id}: {outcome}", rendered)
    made = await fill_series_of(ctx, post_id)  # a series' post: its next dates are made now, not at the next round
    if made:
        text += f"\n🔁 Its series' next dates are made: {', '.join(f'#{n}' for n in made)} (/repeat {post_id})."
    reply = Reply(text, update=card, buttons=buttons)
    await tell_team(ctx, ws_id, Reply(text, buttons=buttons), skip=req.command.chat)
    return reply


async def decide(req: Request, decision: Decision) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    post_id, note = req.post_and_rest()
    verb, noun = ("request changes on", "what should change") if decision == Decision.CHANGES else ("reject", "why")
    if not note:
        raise UserError(f"Say {noun}: {req.spec.usage}")
    with req.post_command() as (session, post, ws):
        require_approver(req, ws, post, verb)
        check_button(req, post, "changed" if decision == Decision.CHANGES else "rejected")
        actor = req.command.actor
        text = record_decision(ctx, session, post, ws, decision, note, platform=actor.platform,
                               user_id=actor.user_id, name=actor.name)
        card = None
        if req.pressed:
            session.flush()
            card = approval_card(ctx, session, post, ws, f"#{post.id} is {state_label(post)}.")
    reply = Reply(text, update=card)
    await tell_team(ctx, ws_id, Reply(text), skip=req.command.chat)
    return reply


@command("changes", usage="/changes <post> <note>", example="/changes 12 Please add the price", summary="send a post back to its author with a note",
         group="Approvals",
         takes=(Param.post(), Param.text("note", description="what should change")))
async def changes(req: Request) -> Reply:
    return await decide(req, Decision.CHANGES)


@command("reject", usage="/reject <post> <reason>", example="/reject 12 Off-brand", summary="reject a post for good", group="Approvals",
         takes=(Param.post(), Param.text("reason", description="why the post is rejected")))
async def reject(req: Request) -> Reply:
    return await decide(req, Decision.REJECT)


POLICY_KEYS = {
    "approvals": "how many approvals a post needs (0–10; 0 = no approval step)",
    "approvers": "which roles may approve, comma-separated (e.g. admin,approver)",
    "self_approval": "on|off — may authors approve their own posts",
    "unapproved": "hold|publish — what happens to a post still unapproved at its deadline",
    "deadline": "how long before its time a post must be approved (e.g. 0, 30m, 2h)",
    "series": "once|each — a recurring post (/repeat) is approved once for the series, or each date on its own",
    "outside": "count|advice — an outside reviewer's approval (/review) counts toward the approvals needed, or is advice",
    "review_days": "how many days an outside reviewer's link (/review) lives (1–30)",
}


def parse_duration_minutes(text: str) -> int:
    m = re.fullmatch(r"(\d{1,4})\s*(m|min|mins|minutes?|h|hours?|d|days?)?", text.strip().lower())
    if not m:
        raise UserError(f"'{text}' isn't a duration. Use minutes or hours, e.g. 30m or 2h.")
    value, unit = int(m.group(1)), (m.group(2) or "m")[0]
    minutes = value * {"m": 1, "h": 60, "d": 1440}[unit]
    if minutes > 14 * 1440:
        raise UserError("The approval deadline can be at most 14 days before the post's time.")
    return minutes


def describe_policy(ws: Workspace) -> str:
    approvers = ", ".join(sorted(ws.approver_role_set()))
    deadline = (
        "at the post's time" if ws.approval_deadline_minutes == 0
        else f"{ws.approval_deadline_minutes} minutes before the post's time"
    )
    unapproved = (
        "held and the team is told (it won't publish)" if ws.unapproved_action == UnapprovedAction.HOLD
        else "published anyway, and the team is told"
    )
    return (
        f"Approval policy of '{ws.name}':\n"
        f"  approvals={ws.approvals_needed} — approvals each post needs\n"
        f"  approvers={','.join(sorted(ws.approver_role_set()))} — who may approve ({approvers})\n"
        f"  self_approval={'on' if ws.self_approval else 'off'} — authors approving their own posts\n"
        f"  deadline={ws.approval_deadline_minutes}m — approval is due {deadline}\n"
        f"  unapproved={ws.unapproved_action} — a post not approved by then is {unapproved}\n"
        f"  series={ws.series_approval} — a new recurring post (/repeat) is approved "
        f"{'once for all its dates' if ws.series_approval == 'once' else 'date by date'}\n"
        f"  outside={'count' if ws.outside_approvals else 'advice'} — an outside reviewer's approval (/review) "
        f"{'counts toward the approvals needed' if ws.outside_approvals else 'is advice; it does not count'}\n"
        f"  review_days={ws.review_days} — how long a review link lives\n"
        "Change with e.g. /policy approvals=2 deadline=2h unapproved=hold"
    )


@command(
    "policy",
    usage="/policy [approvals=N] [approvers=roles] [self_approval=on|off] [unapproved=hold|publish] [deadline=2h] [series=once|each] [outside=count|advice] [review_days=N]", example="/policy approvals=2 deadline=2h unapproved=hold",
    summary="show or change the approval policy (admins)",
    details="\n".join(f"{k}: {v}" for k, v in POLICY_KEYS.items()),
    group="Approvals",
)
async def policy(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        if not req.words:
            return Reply(describe_policy(ws))
        req.require_role(ADMINS, "change the approval policy")
        changes: dict[str, object] = {}
        seen: set[str] = set()
        for word in req.words:
            key, sep, value = word.partition("=")
            key, value = key.lower(), value.strip()
            if key in seen:
                raise UserError(f"{key}= is given twice. Nothing changed. Usage: {req.spec.usage}")
            seen.add(key)
            if not sep or key not in POLICY_KEYS:
                raise UserError(
                    f"'{word}' isn't a policy setting. Settings: "
                    + ", ".join(f"{k}=…" for k in POLICY_KEYS) + f"\nUsage: {req.spec.usage}"
                )
            if key == "approvals":
                if not value.isdigit() or not 0 <= int(value) <= 10:
                    raise UserError("approvals must be a whole number from 0 to 10.")
                changes["approvals_needed"] = int(value)
            elif key == "approvers":
                roles = {r.strip().lower() for r in value.split(",") if r.strip()}
                bad = roles - {r.value for r in Role}
                if not roles or bad or Role.VIEWER.value in roles:
                    raise UserError("approvers must be roles from admin, editor, approver (comma-separated).")
                changes["approver_roles"] = ",".join(sorted(roles))
            elif key == "self_approval":
                if value.lower() not in ("on", "off"):
                    raise UserError("self_approval must be on or off.")
                changes["self_approval"] = value.lower() == "on"
            elif key == "unapproved":
                if value.lower() not in ("hold", "publish"):
                    raise UserError("unapproved must be hold or publish.")
                changes["unapproved_action"] = value.lower()
            elif key == "deadline":
                changes["approval_deadline_minutes"] = parse_duration_minutes(value)
            elif key == "series":
                if value.lower() not in ("once", "each"):
                    raise UserError("series must be once or each. Nothing changed.")
                changes["series_approval"] = value.lower()
            elif key == "outside":
                if value.lower() not in ("count", "advice"):
                    raise UserError("outside must be count or advice. Nothing changed.")
                changes["outside_approvals"] = value.lower() == "count"
            elif key == "review_days":
                if not value.isdigit() or not 1 <= int(value) <= 30:
                    raise UserError("review_days must be a whole number of days from 1 to 30. Nothing changed.")
                changes["review_days"] = int(value)
        for attr, new_value in changes.items():
            setattr(ws, attr, new_value)
        audit(session, ctx, ws_id, None, req.actor_name, "policy", " ".join(req.words))
        text = "Policy updated.\n" + describe_policy(ws)
        settled = approve_what_now_has_enough(req, session, ws)
    return Reply("\n".join([text, *settled]))


def approve_what_now_has_enough(req: Request, session: Session, ws: Workspace) -> list[str]:
    """After the policy changed, posts in review that already have enough approvals become approved."""

    lines = []
    posts = session.exec(
        select(Post).where(Post.workspace_id == ws.id).where(Post.state == PostState.IN_REVIEW.value)
    ).all()
    for post in posts:
        have = len(approvals_at_revision(session, post))
        if have >= ws.approvals_needed:
            outcome = approved_now(req.ctx, post, ws)
            audit(session, req.ctx, ws.id or 0, post.id, req.actor_name, "approve",
                  f"policy now needs {ws.approvals_needed}; it had {have}")
            rearm(req.ctx, post, ws)
            lines.append(f"#{post.id} has enough approvals under the new policy. {outcome}")
    return lines
