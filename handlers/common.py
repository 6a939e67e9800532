"""Pieces every handler module shares: the request, post lookup, audit, team notices, target checks."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import object_session
from sqlmodel import Session, select

from handlers.chat import ChatAddress, ChatRef, Command, Reply
from handlers.context import Context
from handlers.errors import UserError
from handlers.limits import LimitCheck
from handlers.ports import AccountView
from handlers.registry import CommandSpec
from handlers.when import format_delta, format_when
from storage.models import (
    Account,
    AuditEvent,
    ChatLink,
    Delivery,
    Post,
    Role,
    SentOnce,
    Workspace,
)

log = logging.getLogger("herald.handlers")


@dataclass
class Request:
    """A command on its way through a handler, with the caller's workspace and role resolved."""

    ctx: Context
    command: Command
    spec: CommandSpec
    workspace_id: int | None
    role: Role

    @property
    def actor_name(self) -> str:
        return self.command.actor.name

    @property
    def words(self) -> list[str]:
        return self.command.text.split()

    @property
    def pressed(self) -> bool:
        """The command came from a button on a post's card (its args name the post)."""
        return "post" in self.command.args

    def arg(self, key: str, default: Any = None) -> Any:
        return self.command.args.get(key, default)

    def need_workspace(self) -> int:
        if self.workspace_id is None:
            raise UserError("This chat isn't set up yet. /setup creates a workspace here.")
        return self.workspace_id


def role_refusal(
    allowed: Iterable[str], role: Role, doing: str, actor: str, *, suggest: str = "<role>", here: bool = True
) -> str:
    """'Only admins or editors can use /draft. You're a viewer here; an admin can change that with /role …'"""
    names = " or ".join(sorted(r + "s" for r in allowed))
    return (
        f"Only {names} can {doing}. You're {role.with_article}{' here' if here else ''}; "
        f"an admin can change that with /role {actor} {suggest}."
    )


def chat_link(session: Session, chat: ChatRef) -> ChatLink | None:
    """The link of this very chat to its workspace, if it has one of its own."""
    return session.exec(
        select(ChatLink).where(ChatLink.platform == chat.platform).where(ChatLink.chat_id == chat.chat_id)
    ).first()


def parse_post_id(token: Any, usage: str) -> int:
    """Read a post number written as 12 or #12."""
    if isinstance(token, int):
        return token
    if token is None or not str(token).strip():
        raise UserError(f"Which post? Give its number: {usage}")
    raw = str(token).strip().lstrip("#")
    if not re.fullmatch(r"[0-9]{1,9}", raw):  # ASCII digits only ('²' is a digit to isdigit), and no overflow
        raise UserError(f"'{token}' isn't a post number. Usage: {usage}")
    return int(raw)


def split_post_and_rest(req: Request) -> tuple[int, str]:
    """For commands shaped `/cmd <post> <more text>`: the post number and the raw rest."""
    if req.pressed:
        return parse_post_id(req.arg("post"), req.spec.usage), str(req.arg("text", "")).strip()
    text = req.command.text.strip()
    head, _, rest = text.partition(" ")
    if "\n" in head:
        head, _, more = head.partition("\n")
        rest = more + (" " + rest if rest else "")
    return parse_post_id(head, req.spec.usage), rest.strip()


def get_post(session: Session, workspace_id: int, post_id: int) -> Post:
    post = session.get(Post, post_id)
    if post is None or post.workspace_id != workspace_id:
        raise UserError(f"There's no post #{post_id} in this workspace. /posts lists them.")
    return post


def get_workspace(session: Session, workspace_id: int) -> Workspace:
    ws = session.get(Workspace, workspace_id)
    if ws is None:  # pragma: no cover - a ChatLink always points at a workspace
        raise UserError("This chat's workspace is gone. /setup creates a new one.")
    return ws


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


def show_time(at: datetime | None, tz: str, now: datetime | None = None) -> str:
    if at is None:
        return "no time set"
    text = format_when(at, tz)
    if now is not None:
        text += f" ({format_delta(at, now)})"
    return text


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


def account_rules(account: Account) -> str:
    """The network whose text rules apply: a sandbox account may follow another network's rules."""
    return str(account.settings.get("like") or account.network)


def account_view(ctx: Context, account: Account, *, with_secrets: bool = False) -> AccountView:
    assert account.id is not None
    settings = dict(account.settings)
    if ctx.public_url and not settings.get("media_url_template") and not settings.get("media_base_url"):
        settings["media_url_template"] = ctx.public_url + "/media/{sha256}.jpg"  # served by bot/media_server.py
    return AccountView(
        id=account.id,
        workspace_id=account.workspace_id,
        network=account.network,
        name=account.name,
        base_url=account.base_url,
        settings=settings,
        credentials=ctx.secrets.open(account.credentials) if with_secrets else {},
    )


def text_for_account(post: Post, account: Account) -> str:
    """A variant written for this account, else for its network's rules, else the base text.

    When the workspace tags links (/utm, on by default) the text comes with the post's link (as `compose`
    adds it) and every link tagged with UTM parameters for this account's network (handlers/utm.py), so
    every caller — the limit check, /preview, publishing — sees the text exactly as it is sent.
    """
    from handlers.utm import tag_for_account  # handlers.utm registers /utm with this module's helpers

    text = next((post.variants[k] for k in (account.name, account_rules(account), account.network)
                 if k in post.variants), post.text)
    if utm_on(post):
        return tag_for_account(compose(post, text), post, account)
    return text


def link_for_account(post: Post, account: Account) -> str | None:
    """The post's link as this account sends it in a link card (Bluesky, Facebook, LinkedIn, Threads,
    Pinterest): tagged with the account's UTM parameters when the workspace tags links."""
    from handlers.utm import tag_for_account

    if post.link and utm_on(post):
        return tag_for_account(post.link, post, account)
    return post.link


def utm_on(post: Post) -> bool:
    """The /utm setting of the post's workspace (read through the post's session; on when it has none)."""
    session = object_session(post)
    ws = session.get(Workspace, post.workspace_id) if session is not None else None
    return ws.utm if ws is not None else True


def compose(post: Post, text: str) -> str:
    """The full text that goes out: the variant plus the link when the text doesn't hold it yet (as written
    or tagged with UTM parameters)."""
    from handlers.utm import holds_link

    if post.link and not holds_link(text, post.link):
        return f"{text}\n{post.link}" if text else post.link
    return text


def post_targets(session: Session, post: Post) -> list[tuple[Delivery, Account]]:
    rows = session.exec(
        select(Delivery, Account).where(Delivery.post_id == post.id).where(Delivery.account_id == Account.id)
    ).all()
    return sorted(((d, a) for d, a in rows), key=lambda pair: pair[1].name)


def target_named(pairs: list[tuple[Delivery, Account]], name: str) -> tuple[Delivery, Account] | None:
    """The (delivery, account) of a post's target called `name` (any case), or None."""
    return next(((d, a) for d, a in pairs if a.name.lower() == name.lower()), None)


def target_checks(ctx: Context, session: Session, post: Post) -> list[tuple[Account, LimitCheck]]:
    """Check the post's text against each target account's network rules."""
    checks = []
    for _delivery, account in post_targets(session, post):
        network = ctx.networks.get(account.network)
        if network is None:
            continue
        text = compose(post, text_for_account(post, account))
        checks.append((account, network.check(account_view(ctx, account), text, len(post.media))))
    return checks


def check_lines(post: Post, checks: list[tuple[Account, LimitCheck]]) -> list[str]:
    """One line per target: the account, then the network's own count and any problem."""
    lines = []
    for account, check in checks:
        line = f"  {account.name}: {check.line()}"
        if not check.ok:
            line += f" → fix with /variant {post.id} {account.name} <text>"
        lines.append(line)
    return lines
