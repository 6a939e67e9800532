"""Editing a post: a new revision voids its approvals, sends an approved post back to review, re-arms the clock."""

from __future__ import annotations

from sqlmodel import Session

from handlers.core.audit import audit
from handlers.core.chat import Actor, Reply
from handlers.core.commands import Request
from handlers.core.context import Context
from handlers.core.errors import UserError
from handlers.core.lookups import get_post, get_workspace
from handlers.core.notices import tell_team
from handlers.core.words import state_label
from handlers.posts.cards import approval_card, draft_card
from handlers.posts.rules import approvals_at_revision, rearm
from storage.models import Post, PostState, Workspace, move_post

EDITABLE = (
    PostState.DRAFT, PostState.CHANGES_REQUESTED, PostState.IN_REVIEW,
    PostState.APPROVED, PostState.SCHEDULED, PostState.EXPIRED,
)


# A post that failed on some account can get a new variant for it (then /retry), after re-approval.
FIXABLE = (PostState.FAILED, PostState.PARTIALLY_PUBLISHED)


def content_changed(ctx: Context, session: Session, post: Post, ws: Workspace, actor: Actor, what: str) -> str:
    """A content change: new revision by `actor`, earlier approvals void, approved posts go back to review."""
    voided = len(approvals_at_revision(session, post))
    post.revision += 1
    post.updated_at = ctx.clock.now()
    post.editor_platform, post.editor_user_id = actor.platform, actor.user_id
    state = PostState(post.state)
    note = f"Revision {post.revision}."
    if state in FIXABLE and ws.approvals_needed > 0:
        note += f" The new version needs approval before /retry {post.id}."
    if state in (PostState.APPROVED, PostState.SCHEDULED) and ws.approvals_needed > 0:
        move_post(post, PostState.IN_REVIEW)
        note += f" It was {state.value}; it's back in review."
    elif state == PostState.EXPIRED:
        move_post(post, PostState.DRAFT)
        post.due_at = post.due_tz = None  # its time has passed; keeping it would expire the draft again
        note += f" It's a draft again and its old time is dropped: /submit it and /schedule {post.id} <when>."
    if voided:
        note += f" The {voided} earlier approval(s) no longer count."
    audit(session, ctx, ws.id or 0, post.id, actor.name, "edit", f"{what}; revision {post.revision}")
    return note


async def after_content_change(req: Request, post_id: int, headline: str, note: str) -> Reply:
    """Re-arm the clock and, for a post in review, send the new version to the approvers."""
    ctx = req.ctx
    with ctx.db.session() as session:
        post = get_post(session, req.need_workspace(), post_id)
        ws = get_workspace(session, post.workspace_id)
        rearm(ctx, post, ws)
        needs_review = PostState(post.state) == PostState.IN_REVIEW or (
            PostState(post.state) in FIXABLE and ws.approvals_needed > 0)
        if needs_review:
            card = approval_card(ctx, session, post, ws, f"{headline} {note} Please review the new version.")
        else:
            card = draft_card(ctx, session, post, ws, f"{headline} {note}")
    if needs_review:
        await tell_team(ctx, post.workspace_id, card, purpose="approvals", skip=req.command.chat)
    return card


def editable_post(session: Session, ws_id: int, post_id: int, doing: str, *, fixing: bool = False) -> Post:
    """The post, if it may still change; `fixing` also allows a post that failed on some account."""
    post = get_post(session, ws_id, post_id)
    if PostState(post.state) not in EDITABLE + (FIXABLE if fixing else ()):
        raise UserError(f"Post #{post_id} is {state_label(post)}, so it can't be {doing} any more.")
    return post
