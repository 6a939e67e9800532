"""The post's rules: what may be published or scheduled, what comes after approval, when the clock looks at a post."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import object_session
from sqlmodel import Session, select

from handlers.core.context import Context
from handlers.core.errors import UserError
from handlers.core.when import show_time
from handlers.posts.render import Rendered, render_targets
from storage.models import Approval, Decision, Post, PostState, Series, SeriesState, Workspace, move_post

UNAPPROVED = (PostState.DRAFT, PostState.IN_REVIEW, PostState.CHANGES_REQUESTED)


OUTSIDE = "web"  # the platform of an outside reviewer's decision (/review, handlers/posts/review.py)


def approvals_at_revision(session: Session, post: Post) -> list[Approval]:
    """The approvals of the post's current revision that count: outside reviewers' too unless the workspace's policy
    takes them as advice only (/policy outside=advice)."""
    query = (select(Approval).where(Approval.post_id == post.id).where(Approval.revision == post.revision)
             .where(Approval.decision == Decision.APPROVE.value))
    ws = session.get(Workspace, post.workspace_id)
    if ws is not None and not ws.outside_approvals:
        query = query.where(Approval.platform != OUTSIDE)
    return list(session.exec(query.order_by(Approval.id)).all())  # type: ignore[arg-type]


def trigger_time(post: Post, ws: Workspace) -> datetime | None:
    """When the clock should look at this post: its time, or its approval deadline if unapproved."""
    if post.due_at is None:
        return None
    state = PostState(post.state)
    if state == PostState.SCHEDULED:
        return post.due_at
    if state in UNAPPROVED:
        return post.due_at - timedelta(minutes=ws.approval_deadline_minutes)
    return None


def rearm(ctx: Context, post: Post, ws: Workspace) -> None:
    assert post.id is not None
    at = trigger_time(post, ws)
    if at is None:
        ctx.scheduler.disarm(post.id)
    else:
        ctx.scheduler.arm(post.id, at)


def require_publishable(ctx: Context, session: Session, post: Post, ws: Workspace) -> list[Rendered]:
    """A post must have targets and fit every target network's rules before it goes anywhere; its renderings,
    checked, for the rest of the command (a card shows them without checking again)."""
    rendered = render_targets(ctx, session, post, ws)
    if not rendered:
        raise UserError(f"#{post.id} has no target accounts yet: /targets {post.id} <account…>")
    bad = [(one.account, what, check) for one in rendered for what, check in one.failed_checks()]
    if bad:
        lines = [f"  {a.name}{' ' + what if what else ''}: {c.line()}" for a, what, c in bad]
        raise UserError(
            f"#{post.id} doesn't fit every network yet:\n" + "\n".join(lines)
            + f"\nFix it with /edit {post.id} <text> or /variant {post.id} <account> <text>"
            + (f" (a part: /thread {post.id} edit <n> <text>; the comment: /comment {post.id} <text>)"
               if any(what for _a, what, _c in bad) else "") + "."
        )
    return rendered


def approved_now(ctx: Context, post: Post, ws: Workspace) -> str:
    """Move a post that has its approvals to approved, and on to scheduled when it has a time."""
    move_post(post, PostState.APPROVED)
    session = object_session(post)
    if post.due_at is None and isinstance(session, Session) and running_series(session, post):
        return f"Approved for its series: its dates go out with this approval (/repeat {post.id} shows them)."
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


def running_series(session: Session, post: Post) -> bool:
    """The post is the post of a running series (/repeat)."""
    return session.exec(select(Series.id).where(Series.template_post_id == post.id)
                        .where(Series.state == SeriesState.ACTIVE.value)).first() is not None


def refuse_series_post(session: Session, post: Post, doing: str) -> None:
    """The post of a running series (/repeat) doesn't go out itself: its dates do, each as a post of its own."""
    if running_series(session, post):
        raise UserError(
            f"#{post.id} is the post of a recurring series: its dates go out as posts of their own "
            f"(/repeat {post.id} shows them), so it can't be {doing} itself. Nothing changed. "
            f"/repeat {post.id} stop ends the series."
        )
