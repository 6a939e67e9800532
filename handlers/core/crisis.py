"""Crisis mode's one rule, asked by every path that publishes: while a crisis lasts, only what was approved
after it started goes out.

The commands that start and end crisis mode live in handlers/posts/publishing/crisis.py; this is the check the
publishing paths (the clock, /publish, /retry, /held publish) and the inbox's replies share, so none can miss it.
"""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, col, select

from handlers.core.when import show_time
from storage.models import Approval, Crisis, Decision, Post, Workspace


def active_crisis(session: Session, ws: Workspace) -> Crisis | None:
    """The crisis under way in this workspace, or None."""
    if ws.crisis_id is None:
        return None
    crisis = session.get(Crisis, ws.crisis_id)
    return crisis if crisis is not None and crisis.ended_at is None else None


def latest_approval_id(session: Session) -> int:
    """The highest Approval id so far: approvals above it were given after this moment."""
    return int(session.exec(select(func.max(Approval.id))).one() or 0)


def approved_since(session: Session, post: Post, crisis: Crisis) -> bool:
    """The post's current revision has an approval given after the crisis started."""
    return session.exec(
        select(Approval.id).where(Approval.post_id == post.id).where(Approval.revision == post.revision)
        .where(Approval.decision == Decision.APPROVE.value).where(col(Approval.id) > crisis.approvals_before)
    ).first() is not None


def crisis_hold(session: Session, ws: Workspace, post: Post) -> Crisis | None:
    """The crisis that holds this post back now (None: it may go). A post approved since the crisis started
    (its current revision) may go: the holding statement, or a post the team approved again."""
    crisis = active_crisis(session, ws)
    if crisis is None or approved_since(session, post, crisis):
        return None
    return crisis


def crisis_words(crisis: Crisis, tz: str) -> str:
    """'crisis mode is on (since …, by alice: reason)' for the messages that refuse or hold something."""
    return (f"crisis mode is on (since {show_time(crisis.started_at, tz)}, started by {crisis.started_by}: "
            f"{crisis.reason})")


def crisis_refusal(session: Session, ws: Workspace, post: Post) -> str | None:
    """Why crisis mode won't let this post go out now, with what to do; None when it may go."""
    crisis = crisis_hold(session, ws, post)
    if crisis is None:
        return None
    return (f"#{post.id} can't go out: {crisis_words(crisis, ws.timezone)}. Only posts approved since it started "
            f"go out; #{post.id} wasn't. /crisis shows what is held; /crisis end lifts it and walks the held posts. "
            "Nothing was changed.")


def reply_approvals_needed(session: Session, ws: Workspace) -> int:
    """Approvals a reply to a comment needs now: the policy's, and at least one while a crisis lasts."""
    return max(1, ws.approvals_needed) if active_crisis(session, ws) is not None else ws.approvals_needed
