"""Finding things: a chat's link, a post or workspace by number, a post's targets, an account as a connector sees it."""

from __future__ import annotations

import re
from typing import Any

from sqlmodel import Session, col, select

from handlers.core.chat import ChatRef
from handlers.core.context import Context
from handlers.core.errors import UserError
from handlers.core.ports import AccountView
from storage.models import Account, Audience, AudienceAccount, ChatLink, Delivery, Post, Workspace


def chat_link(session: Session, chat: ChatRef) -> ChatLink | None:
    """The link of this very chat to its workspace, if it has one of its own."""
    return session.exec(
        select(ChatLink).where(ChatLink.platform == chat.platform).where(ChatLink.chat_id == chat.chat_id)
    ).first()


def parse_number(token: Any, *, which: str, wrong: str) -> int:
    """Read a number a person typed (12 or #12): `which` asks for a missing one, `wrong` refuses a bad one."""
    if isinstance(token, int):
        return token
    if token is None or not str(token).strip():
        raise UserError(which)
    raw = str(token).strip().lstrip("#")
    if not re.fullmatch(r"[0-9]{1,9}", raw):  # ASCII digits only ('²' is a digit to isdigit), and no overflow
        raise UserError(wrong)
    return int(raw)


def parse_post_id(token: Any, usage: str) -> int:
    """Read a post number written as 12 or #12."""
    return parse_number(token, which=f"Which post? Give its number: {usage}",
                        wrong=f"'{token}' isn't a post number. Usage: {usage}")


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


def post_targets(session: Session, post: Post) -> list[tuple[Delivery, Account]]:
    rows = session.exec(
        select(Delivery, Account).where(Delivery.post_id == post.id).where(Delivery.account_id == Account.id)
    ).all()
    # an account that reaches two audiences of the post has a delivery for each: no audience first, then by audience
    return sorted(((d, a) for d, a in rows), key=lambda pair: (pair[1].name, pair[0].audience_id or 0))


def delivery_audience(session: Session, delivery: Delivery) -> Audience | None:
    """The audience a delivery reaches (a removed one too: its posts keep it), None for a plain account target."""
    return session.get(Audience, delivery.audience_id) if delivery.audience_id is not None else None


REMOVED_MARK = "~"  # a removed audience is renamed <name>~<id> (handlers/workspace/audiences.py)


def audience_name(audience: Audience) -> str:
    """The name the team knows an audience by (a removed one's too)."""
    return audience.name.split(REMOVED_MARK, 1)[0]


def target_label(account: Account, audience: Audience | None) -> str:
    """How a delivery is named to the team: the account, and its audience when it has one ('acme-es · south')."""
    return f"{account.name} · {audience_name(audience)}" if audience is not None else account.name


def delivery_label(session: Session, delivery: Delivery, account: Account) -> str:
    return target_label(account, delivery_audience(session, delivery))


def get_audience(session: Session, workspace_id: int, name: str, *, removed_too: bool = False) -> Audience:
    """The workspace's audience called `name` (any case; 'audience:' in front is allowed), or a refusal that
    lists the audiences there are. `removed_too` (reports of the past) also finds a removed one by the name the
    team knew it by, the latest removed first."""
    wanted = name.strip().lower().removeprefix("audience:")
    audience = session.exec(
        select(Audience).where(Audience.workspace_id == workspace_id).where(Audience.name == wanted)
        .where(Audience.removed_at == None)).first()  # noqa: E711 - SQL IS NULL
    if audience is None and removed_too and REMOVED_MARK not in wanted:
        audience = session.exec(
            select(Audience).where(Audience.workspace_id == workspace_id)
            .where(col(Audience.name).startswith(wanted + REMOVED_MARK, autoescape=True))
            .where(Audience.removed_at != None).order_by(col(Audience.removed_at).desc())).first()  # noqa: E711
    if audience is None:
        names = session.exec(select(Audience.name).where(Audience.workspace_id == workspace_id)
                             .where(Audience.removed_at == None)  # noqa: E711
                             .order_by(Audience.name)).all()
        known = f"Audiences here: {', '.join(names)}." if names else \
            "This workspace has no audiences yet: /audience add south accounts=acme-es tz=Europe/Madrid lang=es"
        raise UserError(f"There's no audience '{wanted}'. {known}")
    return audience


def audience_accounts(session: Session, audience_id: int) -> list[Account]:
    """The accounts that reach an audience, by name."""
    return list(session.exec(
        select(Account).where(AudienceAccount.audience_id == audience_id)
        .where(AudienceAccount.account_id == Account.id).order_by(Account.name)).all())
