"""The front door of every command: find the handler, the workspace and the caller's role, run it.

Front ends call `handle(ctx, command)` and render the `Reply`. A refusal (`UserError`, an
illegal state change, an unknown command, a missing role) comes back as a reply marked
`error=True`, and the handler's transaction is rolled back so nothing changed.

In a Discord server (ChatRef.space) the workspace's /readers setting decides who reads: with `members`,
a person without a Herald role of their own is refused every workspace command; and a read (a workspace
command every role may run) answered in a channel that isn't linked itself goes to the asker only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from sqlalchemy import update
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session, col, select

import handlers.engagement
import handlers.posts
import handlers.workspace  # noqa: F401  (each package registers its commands)
from handlers.core.access import ALL_ROLES, ROLE_RANK, role_refusal
from handlers.core.chat import Actor, Command, Reply, unreadable
from handlers.core.commands import COMMANDS, CommandSpec, Request, command
from handlers.core.context import Context
from handlers.core.errors import UserError
from handlers.core.lookups import chat_link, get_workspace
from handlers.engagement.traffic import typed_secret
from handlers.workspace.accounts import holds_secret, secret_in_group_reply
from storage.models import ChatLink, IllegalTransition, Member, Role, Workspace

log = logging.getLogger("herald.dispatch")

GROUP_ORDER = ("Workspace", "Accounts", "Posts", "Approvals", "Scheduling", "Publishing", "Engagement", "Other")
# each /help group is one place in the code: the package (or module) whose commands it lists
GROUP_HOMES = {
    # Accounts: the rest of handlers/workspace (accounts.py: /connect, /accounts, /slots; audiences.py: /audience)
    "Workspace": "handlers.workspace.setup", "Accounts": "handlers.workspace",
    "Posts": "handlers.posts", "Approvals": "handlers.posts.approvals", "Scheduling": "handlers.posts.scheduling",
    "Publishing": "handlers.posts.publishing", "Engagement": "handlers.engagement", "Other": "handlers.dispatch",
}


def chat_workspace(session: Session, cmd: Command) -> tuple[int | None, bool]:
    """The workspace of a chat: its own link, else a linked chat of the same server (Discord guild); and whether
    this very chat is linked."""
    link = chat_link(session, cmd.chat)
    if link is not None:
        return link.workspace_id, True
    if cmd.chat.space:
        link = session.exec(
            select(ChatLink).where(ChatLink.platform == cmd.chat.platform).where(ChatLink.space == cmd.chat.space)
            .order_by(ChatLink.id)  # type: ignore[arg-type]
        ).first()
        if link is not None:
            return link.workspace_id, False
    if cmd.chat.private:  # a private chat with Herald works in the one workspace where the person is a member
        spaces = sorted(set(session.exec(
            select(Member.workspace_id).where(Member.platform == cmd.actor.platform)
            .where(Member.user_id == cmd.actor.user_id)
        ).all()))
        if len(spaces) > 1:
            names = session.exec(select(Workspace.name).where(col(Workspace.id).in_(spaces))).all()
            raise UserError(
                f"You belong to several workspaces ({', '.join(sorted(names))}), so I won't guess which one this "
                "private chat is for. Ask an admin of the one you mean for /link in its chat, and send "
                "/link <code> here."
            )
        return (spaces[0] if spaces else None), False
    return None, False


def member_role(session: Session, workspace_id: int, actor: Actor) -> tuple[Role | None, int | None]:
    """The person's Herald role: as a member, else as the @username an admin named, else by platform role.

    The second value is the id of an `@username` member row this person matched: after their first
    command goes through, `claim` ties it to their real id, so whoever takes the username later
    doesn't inherit the role.
    """
    members = select(Member).where(Member.workspace_id == workspace_id).where(Member.platform == actor.platform)
    member = session.exec(members.where(Member.user_id == actor.user_id)).first()
    named = None
    if member is None and actor.username:  # named by @username in /role
        member = session.exec(members.where(Member.user_id == "@" + actor.username.lower())).first()
        named = member.id if member is not None else None
    if member is not None:
        return Role(member.role), named
    if actor.groups:
        ids = ["role:" + g for g in actor.groups]
        held = session.exec(members.where(col(Member.user_id).in_(ids))).all()
        if held:
            return max((Role(m.role) for m in held), key=ROLE_RANK.__getitem__), None
    return None, None


def claim(ctx: Context, member_id: int, actor: Actor) -> None:
    """Tie an `@username` member row to the person's real id (only if it is still unclaimed)."""
    with ctx.db.session() as session:
        session.execute(
            update(Member).where(col(Member.id) == member_id).where(col(Member.user_id).startswith("@"))
            .values(user_id=actor.user_id, name=actor.name)
        )


@dataclass(frozen=True)
class Caller:
    """Who runs a command where: the chat's workspace, the caller's role in it, and what decides who reads.

    - `named`: an `@username` member row to claim once the command goes through.
    - `own_role`: the role is the person's own (a member row, an @username row, a mapped Discord role), not
      the default a chat admin or anyone else gets.
    - `readers`: the workspace's /readers setting; `linked`: this very chat is linked (team, approvals, reports).
    """

    workspace_id: int | None
    role: Role
    named: int | None = None
    own_role: bool = False
    readers: str = "members"
    linked: bool = False


def resolve(ctx: Context, cmd: Command) -> Caller:
    """The workspace of the chat and the caller's role in it (chat admins default to admin)."""
    with ctx.db.session() as session:
        workspace_id, linked = chat_workspace(session, cmd)
        if workspace_id is None:
            return Caller(None, Role.VIEWER)
        ws = get_workspace(session, workspace_id)
        role, named = member_role(session, workspace_id, cmd.actor)
        if role is not None:
            return Caller(workspace_id, role, named, own_role=True, readers=ws.readers, linked=linked)
        return Caller(workspace_id, Role.ADMIN if cmd.actor.is_chat_admin else Role.VIEWER,
                      readers=ws.readers, linked=linked)


def in_server(cmd: Command) -> bool:
    """The command came from a channel of a Discord server (not a DM, not a chat that stands alone)."""
    return bool(cmd.chat.space) and not cmd.chat.private


def server_refusal(cmd: Command, caller: Caller) -> str | None:
    """Why a member of the server without a Herald role may not use this workspace (readers=members), or None."""
    if not in_server(cmd) or caller.readers != "members" or caller.own_role or cmd.actor.is_chat_admin:
        return None
    return (f"You're a viewer without a Herald role here, and in this server only people with a Herald role use "
            f"Herald (drafts, history, the inbox and exports included). Nothing was shown or changed. An admin can "
            f"give you one with /role {cmd.actor.name} viewer (or give a role to a Discord role), or let every "
            "member of the server read with /readers open.")


def is_read(spec: CommandSpec) -> bool:
    """A read: a workspace command every role may run (/posts, /preview, /history, /inbox, /stats, /export…).
    Outside the workspace's own channels its answer goes to the asker only."""
    return spec.needs_workspace and spec.roles == ALL_ROLES


def exposes_secret(ctx: Context, cmd: Command, *, known: bool) -> bool:
    """A /connect (or a command name with a typo: /conect with a token=, /analytic with a key=) outside a private
    chat that carries a secret. Checked before anything else, so the message is removed whatever else is wrong
    with it: the network, a key, the syntax, the caller's role or the chat. (/analytics checks its own.)"""
    if cmd.chat.private or known:
        return False
    texts = [cmd.text, *(v for v in cmd.args.values() if isinstance(v, str))]
    # a site analytics key (/analytics connect … key=) mistyped is caught too
    return any(holds_secret(ctx.networks, text) or typed_secret(text) for text in texts)


async def handle(ctx: Context, cmd: Command) -> Reply:
    """Run one command as its actor and return what to show them."""
    name = cmd.name.lower().lstrip("/")
    spec = COMMANDS.get(name)
    if exposes_secret(ctx, cmd, known=spec is not None and name != "connect"):
        return secret_in_group_reply()
    if spec is None:
        return Reply(f"I don't know /{name}. /help lists what I can do.", error=True)
    problem = unreadable(cmd)
    if problem is not None:
        return Reply(problem, error=True)
    try:
        caller = resolve(ctx, cmd)
    except UserError as exc:
        if spec.needs_workspace:
            return Reply(str(exc), error=True)
        caller = Caller(None, Role.VIEWER)  # /help, /link <code>, /setup still work
    workspace_id, role = caller.workspace_id, caller.role
    if spec.needs_workspace and workspace_id is None:
        return Reply("This chat isn't set up yet. /setup creates a workspace here, with you as its admin.", error=True)
    refusal = server_refusal(cmd, caller) if spec.needs_workspace else None
    if refusal is not None:
        return Reply(refusal, error=True)
    if role not in spec.roles:
        return Reply(role_refusal((r.value for r in spec.roles), role, f"use /{name}", cmd.actor.name), error=True)
    request = Request(ctx=ctx, command=cmd, spec=spec, workspace_id=workspace_id, role=role)
    try:
        reply = await spec.handler(request)
        if caller.named is not None and not reply.error:
            claim(ctx, caller.named, cmd.actor)
        if in_server(cmd) and not caller.linked and is_read(spec) and not reply.private:
            reply = replace(reply, private=True)  # a channel anyone of the server may see: the asker only
        return reply
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

