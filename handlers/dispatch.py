"""The front door of every command: find the handler, the workspace and the caller's role, run it.

Front ends call `handle(ctx, command)` and render the `Reply`. A refusal (`UserError`, an
illegal state change, an unknown command, a missing role) comes back as a reply marked
`error=True`, and the handler's transaction is rolled back so nothing changed.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session, col, select

import handlers.accounts
import handlers.approvals
import handlers.drafts
import handlers.engagement
import handlers.media
import handlers.publishing
import handlers.reports
import handlers.scheduling
import handlers.workspace  # noqa: F401  (each module registers its commands)
from handlers.chat import Actor, Command, Reply
from handlers.common import Request, role_refusal
from handlers.context import Context
from handlers.errors import UserError
from handlers.registry import COMMANDS, command
from storage.models import ChatLink, IllegalTransition, Member, Role

log = logging.getLogger("herald.dispatch")

GROUP_ORDER = ("Workspace", "Accounts", "Posts", "Approvals", "Scheduling", "Publishing", "Engagement", "Other")


ROLE_RANK = {Role.VIEWER: 0, Role.APPROVER: 1, Role.EDITOR: 2, Role.ADMIN: 3}


def chat_workspace(session: Session, cmd: Command) -> int | None:
    """The workspace of a chat: its own link, else a linked chat of the same server (Discord guild)."""
    link = session.exec(
        select(ChatLink).where(ChatLink.platform == cmd.chat.platform).where(ChatLink.chat_id == cmd.chat.chat_id)
    ).first()
    if link is None and cmd.chat.space:
        link = session.exec(
            select(ChatLink).where(ChatLink.platform == cmd.chat.platform).where(ChatLink.space == cmd.chat.space)
            .order_by(ChatLink.id)  # type: ignore[arg-type]
        ).first()
    if link is not None:
        return link.workspace_id
    if cmd.chat.private:  # a private chat with Herald works in the workspace where the person is a member
        member = session.exec(
            select(Member).where(Member.platform == cmd.actor.platform).where(Member.user_id == cmd.actor.user_id)
            .order_by(Member.id.desc())  # type: ignore[union-attr]
        ).first()
        return member.workspace_id if member is not None else None
    return None


def member_role(session: Session, workspace_id: int, actor: Actor) -> Role | None:
    """The person's Herald role: as a member, else as the @username an admin named, else by platform role."""
    members = select(Member).where(Member.workspace_id == workspace_id).where(Member.platform == actor.platform)
    member = session.exec(members.where(Member.user_id == actor.user_id)).first()
    if member is None and actor.username:  # named by @username in /role (a reply ties the role to their id)
        member = session.exec(members.where(Member.user_id == "@" + actor.username.lower())).first()
    if member is not None:
        return Role(member.role)
    if actor.groups:
        ids = ["role:" + g for g in actor.groups]
        held = session.exec(members.where(col(Member.user_id).in_(ids))).all()
        if held:
            return max((Role(m.role) for m in held), key=ROLE_RANK.__getitem__)
    return None


def resolve(ctx: Context, cmd: Command) -> tuple[int | None, Role]:
    """The workspace of the chat and the caller's role in it (chat admins default to admin)."""
    with ctx.db.session() as session:
        workspace_id = chat_workspace(session, cmd)
        if workspace_id is None:
            return None, Role.VIEWER
        role = member_role(session, workspace_id, cmd.actor)
        if role is not None:
            return workspace_id, role
        return workspace_id, Role.ADMIN if cmd.actor.is_chat_admin else Role.VIEWER


async def handle(ctx: Context, cmd: Command) -> Reply:
    """Run one command as its actor and return what to show them."""
    name = cmd.name.lower().lstrip("/")
    spec = COMMANDS.get(name)
    if spec is None:
        return Reply(f"I don't know /{name}. /help lists what I can do.", error=True)
    workspace_id, role = resolve(ctx, cmd)
    if spec.needs_workspace and workspace_id is None:
        return Reply("This chat isn't set up yet. /setup creates a workspace here, with you as its admin.", error=True)
    if role not in spec.roles:
        return Reply(role_refusal((r.value for r in spec.roles), role, f"use /{name}", cmd.actor.name), error=True)
    request = Request(ctx=ctx, command=cmd, spec=spec, workspace_id=workspace_id, role=role)
    try:
        return await spec.handler(request)
    except (UserError, IllegalTransition) as exc:
        return Reply(str(exc), error=True)
    except StaleDataError:
        return Reply(
            "That post changed at the same moment (another person or Herald itself, e.g. publishing it), "
            "so nothing was changed. Look at it again with /posts and retry.",
            error=True,
        )
    except Exception:
        log.exception("/%s failed", name)
        return Reply(f"Something went wrong with /{name}; nothing was changed. The error is in Herald's log.", error=True)


@command("help", usage="/help [command]", example="/help schedule", summary="what Herald can do, or the details of one command",
         needs_workspace=False)
async def help_command(req: Request) -> Reply:
    wanted = req.command.text.strip().lstrip("/").lower()
    if wanted:
        spec = COMMANDS.get(wanted)
        if spec is None:
            raise UserError(f"There's no /{wanted}. /help lists every command.")
        roles = "everyone" if len(spec.roles) == len(Role) else ", ".join(sorted(r.value for r in spec.roles))
        parts = [spec.usage, spec.summary + ".", spec.details, f"Example: {spec.example}", f"Who: {roles}."]
        return Reply("\n".join(p for p in parts if p))
    lines = ["Herald drafts, approves, schedules and publishes your posts from this chat."]
    for group in GROUP_ORDER:
        specs = [s for s in COMMANDS.values() if s.group == group]
        if specs:
            lines.append(f"{group}:")
            lines += [f"  {s.usage} — {s.summary}" for s in specs]
    lines.append("/help <command> gives details and an example.")
    return Reply("\n".join(lines))

