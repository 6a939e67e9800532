"""Editing a post: a new revision voids its approvals, sends an approved post back to review, re-arms the clock;
an edit of a series' post (/repeat) reaches the series' future occurrences that aren't approved yet."""

from __future__ import annotations

import secrets as pysecrets
from collections.abc import Mapping, Sequence

from sqlmodel import Session, col, select

from handlers.core.audit import audit
from handlers.core.chat import Actor, Reply
from handlers.core.commands import Request
from handlers.core.context import Context
from handlers.core.errors import UserError
from handlers.core.lookups import audience_accounts, get_post, get_workspace, post_targets
from handlers.core.notices import tell_team
from handlers.core.words import state_label
from handlers.posts.cards import approval_card, draft_card
from handlers.posts.rules import UNAPPROVED, approvals_at_revision, rearm
from storage.models import (
    Account,
    Audience,
    Delivery,
    Occurrence,
    Post,
    PostState,
    Series,
    SeriesState,
    Workspace,
    move_post,
)

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


Target = tuple[int, int | None]  # a delivery's key: (account id, audience id or None)


def set_targets(session: Session, post: Post, accounts: list[Account], audiences: Sequence[Audience] = (), *,
                reach: Mapping[int, list[Account]] | None = None, new: bool = False) -> None:
    """Make the post's deliveries match `accounts` (no audience) and `audiences` (each of an audience's accounts,
    for that audience: from `reach` by audience id when the caller read them, else read here): add new ones, drop
    the others. A `new` post has none yet."""
    wanted: list[Target] = [(a.id or 0, None) for a in accounts]
    for audience in audiences:
        assert audience.id is not None
        found = reach[audience.id] if reach is not None and audience.id in reach \
            else audience_accounts(session, audience.id)
        wanted += [(a.id or 0, audience.id) for a in found]
    set_target_keys(session, post, wanted, new=new)


def set_target_keys(session: Session, post: Post, wanted: list[Target], *, new: bool = False) -> None:
    """Make the post's deliveries match `wanted`, one per (account, audience): a delivery kept keeps its state
    and key, so nothing already sent goes twice. A `new` post has no deliveries to read."""
    assert post.id is not None
    current = {} if new else {(d.account_id, d.audience_id): d for d, _a in post_targets(session, post)}
    for target, delivery in current.items():
        if target not in wanted:
            session.delete(delivery)
    for account_id, audience_id in dict.fromkeys(wanted):
        if (account_id, audience_id) not in current:
            key = f"h{post.id}a{account_id}" + (f"u{audience_id}" if audience_id is not None else "") \
                + f"-{pysecrets.token_hex(4)}"
            session.add(Delivery(post_id=post.id, account_id=account_id, audience_id=audience_id,
                                 idempotency_key=key))


def copy_content(session: Session, source: Post, post: Post) -> None:
    """Give `post` the content of `source`: text, link, campaign, media, variants and target accounts."""
    post.text, post.link, post.campaign = source.text, source.link, source.campaign
    post.media, post.variants, post.stale_variants = list(source.media), dict(source.variants), list(source.stale_variants)
    post.parts, post.comment, post.comment_replies = list(source.parts), source.comment, source.comment_replies
    post.editor_platform, post.editor_user_id = source.editor_platform, source.editor_user_id
    set_target_keys(session, post, [(d.account_id, d.audience_id) for d, _a in post_targets(session, source)])


def follow_series(ctx: Context, session: Session, template: Post) -> str:
    """Bring the content of a series' post (its template) to the series' future occurrences that are not approved
    yet (any, in a workspace without approvals) and weren't edited on their own; the approved ones keep what was
    approved. Returns a sentence for the team ('' when the post has no running series or nothing had to change)."""
    series = session.exec(select(Series).where(Series.template_post_id == template.id)).first()
    if series is None or series.state != SeriesState.ACTIVE.value:
        return ""
    rows = session.exec(
        select(Occurrence, Post).where(Occurrence.series_id == series.id).where(col(Occurrence.post_id) == col(Post.id))
        .where(col(Occurrence.skipped).is_(False)).where(col(Occurrence.occurs_at) > ctx.clock.now())
        .order_by(col(Occurrence.occurs_at))
    ).all()
    # with no approval step, a scheduled date was approved by nobody: it follows too
    follows = (*UNAPPROVED, *((PostState.APPROVED, PostState.SCHEDULED)
                              if get_workspace(session, template.workspace_id).approvals_needed == 0 else ()))
    followed, kept = [], []
    for occurrence, post in rows:
        if occurrence.template_revision == template.revision or occurrence.edited:
            continue
        if PostState(post.state) in follows:
            copy_content(session, template, post)
            post.revision += 1  # approvals given to the old text no longer count
            post.updated_at = ctx.clock.now()
            occurrence.template_revision = template.revision
            audit(session, ctx, post.workspace_id, post.id, "Herald", "edit",
                  f"follows #{template.id}, revision {template.revision}; revision {post.revision}")
            followed.append(f"#{post.id}")
        elif PostState(post.state) in (PostState.APPROVED, PostState.SCHEDULED):
            kept.append(f"#{post.id}")
    note = ""
    if followed:
        note += f" The series' next dates not yet approved ({', '.join(followed)}) now say the same."
    if kept:
        note += (f" Already approved, {', '.join(kept)} keep their text: /repeat {template.id} edit <date> <text> "
                 f"changes one, /repeat {template.id} skip <date> drops one.")
    return note


async def after_content_change(req: Request, post_id: int, headline: str, note: str) -> Reply:
    """Re-arm the clock and, for a post in review, send the new version to the approvers; a series' post passes the
    edit on to its occurrences not yet approved."""
    ctx = req.ctx
    with ctx.db.session() as session:
        post = get_post(session, req.need_workspace(), post_id)
        ws = get_workspace(session, post.workspace_id)
        rearm(ctx, post, ws)
        note += follow_series(ctx, session, post)
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
