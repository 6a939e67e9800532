"""Team notices: a reply posted into the workspace's chats on Herald's own initiative, and exactly-once sends."""

from __future__ import annotations

import logging

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from handlers.core.chat import ChatAddress, ChatRef, Reply
from handlers.core.context import Context
from storage.models import ChatLink, SentOnce

log = logging.getLogger("herald.handlers")


async def tell_team(
    ctx: Context, workspace_id: int, reply: Reply, *, purpose: str = "team", skip: ChatRef | None = None
) -> int:
    """Post a notice into every chat linked to the workspace for `purpose`; returns how many got it."""
    with ctx.db.session() as session:
        links = session.exec(select(ChatLink).where(ChatLink.workspace_id == workspace_id)).all()
        chats = [
            ChatAddress(link.platform, link.chat_id)
            for link in links
            if link.serves(purpose)
            and not (skip and skip.platform == link.platform and skip.chat_id == link.chat_id)
        ]
    sent = 0
    for chat in chats:
        try:
            await ctx.notifier.send(chat, reply)
            sent += 1
        except Exception:  # a chat that can't be reached must not stop the others
            log.exception("could not notify %s:%s", chat.platform, chat.chat_id)
    return sent


def claim_once(ctx: Context, key: str) -> bool:
    """Claim the right to send the notice named `key` (e.g. "digest:3:2026-11-24"); False if it was claimed before.

    The claim is an INSERT on a primary key, so with several workers exactly one wins.
    """
    try:
        with ctx.db.session() as session:
            session.add(SentOnce(key=key, worker=ctx.worker_id, created_at=ctx.clock.now()))
    except IntegrityError:
        return False
    return True


async def send_once(ctx: Context, key: str, workspace_id: int, reply: Reply, *, purpose: str = "team") -> bool:
    """Send a notice to the workspace's chats for `purpose` once, whichever worker gets here first."""
    if not claim_once(ctx, key):
        return False
    await tell_team(ctx, workspace_id, reply, purpose=purpose)
    return True
