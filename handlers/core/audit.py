"""The audit log: one row per thing a person or Herald did, shown by /history."""

from __future__ import annotations

from sqlmodel import Session

from handlers.core.context import Context
from storage.models import AuditEvent


def audit(
    session: Session, ctx: Context, workspace_id: int, post_id: int | None, actor: str, action: str, detail: str = ""
) -> None:
    session.add(
        AuditEvent(
            workspace_id=workspace_id,
            post_id=post_id,
            actor=actor,
            action=action,
            detail=detail,
            created_at=ctx.clock.now(),
        )
    )
