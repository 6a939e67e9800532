"""The approval step: /submit, /approve, /changes and /reject, with the workspace policy enforced."""

from __future__ import annotations

from sqlmodel import Session

from handlers.cards import approval_card, approvals_at_revision, draft_card, rearm, state_label
from handlers.chat import Reply
from handlers.common import (
    Request,
    audit,
    get_post,
    get_workspace,
    post_targets,
    role_refusal,
    show_time,
    split_post_and_rest,
    target_checks,
    tell_team,
)
from handlers.context import Context
from handlers.errors import UserError
from handlers.registry import EDITORS, command
from storage.models import Approval, Decision, Post, PostState, Workspace, move_post


def require_publishable(ctx: Context, session: Session, post: Post) -> None:
    """A post must have targets and fit every target network's rules before it goes anywhere."""
    if not post_targets(session, post):
        raise UserError(f"#{post.id} has no target accounts yet: /targets {post.id} <account…>")
    bad = [(a, c) for a, c in target_checks(ctx, session, post) if not c.ok]
    if bad:
        lines = [f"  {a.name}: {c.line()}" for a, c in bad]
        raise UserError(
            f"#{post.id} doesn't fit every network yet:\n" + "\n".join(lines)
            + f"\nFix it with /edit {post.id} <text> or /variant {post.id} <account> <text>."
        )


def approved_now(ctx: Context, post: Post, ws: Workspace) -> str:
    """Move a post that has its approvals to approved, and on to scheduled when it has a time."""
    move_post(post, PostState.APPROVED)
    if post.due_at is None:
        return f"Approved. Publish with /publish {post.id} or set a time with /schedule {post.id} <when>."
    move_post(post, PostState.SCHEDULED)
    when = show_time(post.due_at, post.due_tz or ws.timezone, ctx.clock.now())
    paused = " Publishing is paused: it waits for /resume." if ws.paused else ""
    return f"Approved and scheduled for {when}.{paused}"


def awaiting_fix_approval(post: Post) -> bool:
    """A post that failed somewhere and got a new variant since it went out: it needs approval before /retry."""
    return PostState(post.state) in (PostState.FAILED, PostState.PARTIALLY_PUBLISHED) and (
        post.sent_revision is not None and post.revision != post.sent_revision)


def check_button(req: Request, post: Post, verb: str, *, fix_ok: bool = False) -> None:
    """Refuse a stale button or command: wrong revision, or the post is no longer in review."""
    revision = req.arg("revision")
    if revision is not None and int(revision) != post.revision:
        raise UserError(
            f"That button is for revision {revision} of #{post.id}, but the post was edited since "
            f"(now revision {post.revision}). Nothing changed; look at the latest version."
        )
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
)
async def submit(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    post_id, _ = split_post_and_rest(req)
    with ctx.db.session() as session:
        post = get_post(session, ws_id, post_id)
        ws = get_workspace(session, ws_id)
        if PostState(post.state) not in (PostState.DRAFT, PostState.CHANGES_REQUESTED):
            raise UserError(f"#{post.id} is {state_label(post)}; only drafts and posts sent back for changes can be submitted.")
        require_publishable(ctx, session, post)
        if ws.approvals_needed == 0:
            move_post(post, PostState.IN_REVIEW)
            outcome = approved_now(ctx, post, ws)
            audit(session, ctx, ws_id, post.id, req.actor_name, "submit", "no approval needed by policy")
            rearm(ctx, post, ws)
            done = draft_card(ctx, session, post, ws, f"#{post.id} was submitted by {req.actor_name}. {outcome}") \
                if req.pressed else None
            return Reply(f"#{post.id} needs no approval in this workspace. {outcome}", update=done)
        move_post(post, PostState.IN_REVIEW)
        post.held_note = None
        audit(session, ctx, ws_id, post.id, req.actor_name, "submit", f"revision {post.revision}")
        rearm(ctx, post, ws)
        roles = " or ".join(sorted(ws.approver_role_set()))
        card = approval_card(
            ctx, session, post, ws,
            f"🔔 {req.actor_name} asks for approval of #{post.id} ({ws.approvals_needed} needed, from {roles}).",
        )
    # the draft card the button was on now says so (the approval card, headline changed, no buttons)
    sent_card = Reply("\n".join([f"#{post_id} was submitted for approval by {req.actor_name}.",
                                 *card.text.splitlines()[1:]]), card=post_id) if req.pressed else None
    await tell_team(ctx, ws_id, card, purpose="approvals", skip=req.command.chat)
    return Reply(card.text, buttons=card.buttons, card=card.card, update=sent_card)


@command(
    "approve",
    usage="/approve <post>", example="/approve 12",
    summary="approve a post waiting for review",
    group="Approvals",
)
async def approve(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    post_id, _ = split_post_and_rest(req)
    actor = req.command.actor
    with ctx.db.session() as session:
        post = get_post(session, ws_id, post_id)
        ws = get_workspace(session, ws_id)
        require_approver(req, ws, post, "approve")
        check_button(req, post, "approved", fix_ok=True)
        approvals = approvals_at_revision(session, post)
        if any((a.platform, a.user_id) == (actor.platform, actor.user_id) for a in approvals):
            raise UserError(
                f"You already approved revision {post.revision} of #{post.id}; "
                f"it needs {ws.approvals_needed - len(approvals)} more from someone else."
            )
        require_publishable(ctx, session, post)
        session.add(Approval(post_id=post_id, revision=post.revision, platform=actor.platform,
                             user_id=actor.user_id, name=actor.name, decision=Decision.APPROVE.value,
                             created_at=ctx.clock.now()))
        have = len(approvals) + 1
        audit(session, ctx, ws_id, post.id, actor.name, "approve", f"revision {post.revision} ({have}/{ws.approvals_needed})")
        if have >= ws.approvals_needed and awaiting_fix_approval(post):
            outcome = f"The new version is approved: /retry {post.id} sends it where it failed."
        elif have >= ws.approvals_needed:
            outcome = approved_now(ctx, post, ws)
        else:
            outcome = f"{ws.approvals_needed - have} more approval(s) needed."
        rearm(ctx, post, ws)
        text = f"✅ {actor.name} approved #{post.id} ({have} of {ws.approvals_needed}). {outcome}"
        card = None
        if req.pressed:  # a button on a card: the card is edited to show the decision
            session.flush()
            card = approval_card(ctx, session, post, ws, f"#{post.id}: {outcome}")
    reply = Reply(text, update=card)
    await tell_team(ctx, ws_id, Reply(text), skip=req.command.chat)
    return reply


async def decide(req: Request, decision: Decision) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    post_id, note = split_post_and_rest(req)
    verb, noun = ("request changes on", "what should change") if decision == Decision.CHANGES else ("reject", "why")
    if not note:
        raise UserError(f"Say {noun}: {req.spec.usage}")
    with ctx.db.session() as session:
        post = get_post(session, ws_id, post_id)
        ws = get_workspace(session, ws_id)
        require_approver(req, ws, post, verb)
        check_button(req, post, "changed" if decision == Decision.CHANGES else "rejected")
        actor = req.command.actor
        session.add(Approval(post_id=post_id, revision=post.revision, platform=actor.platform,
                             user_id=actor.user_id, name=actor.name, decision=decision.value, note=note,
                             created_at=ctx.clock.now()))
        if decision == Decision.CHANGES:
            move_post(post, PostState.CHANGES_REQUESTED)
            text = (f"✏️ {actor.name} asked for changes on #{post.id}: {note}\n"
                    f"{post.author_name}: /edit {post.id} <text>, then /submit {post.id} again.")
        else:
            move_post(post, PostState.REJECTED)
            text = f"⛔ {actor.name} rejected #{post.id}: {note}\nIt won't publish. /draft starts a new post."
        audit(session, ctx, ws_id, post.id, actor.name, decision.value, note)
        rearm(ctx, post, ws)
        card = None
        if req.pressed:
            session.flush()
            card = approval_card(ctx, session, post, ws, f"#{post.id} is {state_label(post)}.")
    reply = Reply(text, update=card)
    await tell_team(ctx, ws_id, Reply(text), skip=req.command.chat)
    return reply


@command("changes", usage="/changes <post> <note>", example="/changes 12 Please add the price", summary="send a post back to its author with a note",
         group="Approvals")
async def changes(req: Request) -> Reply:
    return await decide(req, Decision.CHANGES)


@command("reject", usage="/reject <post> <reason>", example="/reject 12 Off-brand", summary="reject a post for good", group="Approvals")
async def reject(req: Request) -> Reply:
    return await decide(req, Decision.REJECT)

