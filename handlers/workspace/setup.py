"""The workspace: /setup, /timezone, /language (time words), /role, /readers (who reads in a Discord server) and /link."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import col, select

from handlers.core.access import ADMINS
from handlers.core.audit import audit
from handlers.core.chat import Button, Reply
from handlers.core.commands import Param, Request, command
from handlers.core.context import Context
from handlers.core.errors import UserError
from handlers.core.lookups import chat_link, get_workspace
from handlers.core.notices import tell_team
from handlers.core.when import LANGUAGES, WhenError, format_when, parse_language, parse_timezone
from storage.models import (
    ChatLink,
    LinkCode,
    Member,
    Role,
    Workspace,
)

PURPOSE_WORDS = {
    "approvals": "approval requests",
    "reports": "reports, digests and alerts",
    "team": "publish results and team notices",
}
LINK_CODE_TTL = timedelta(minutes=15)


def set_purpose(req: Request, purpose: str) -> Reply:
    """`/setup approvals` in a chat: approval requests (or reports) of the workspace come here."""
    ctx, cmd = req.ctx, req.command
    ws_id = req.need_workspace()
    req.require_role(ADMINS, f"choose where {PURPOSE_WORDS[purpose]} go")
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        link = chat_link(session, cmd.chat)
        if link is None:
            link = ChatLink(workspace_id=ws_id, platform=cmd.chat.platform, chat_id=cmd.chat.chat_id,
                            space=cmd.chat.space, title=cmd.chat.title, purposes=purpose, created_at=ctx.clock.now())
            session.add(link)
        elif not link.serves(purpose):
            link.purposes = ",".join([*[p for p in link.purposes.split(",") if p], purpose])
        moved = []
        if cmd.chat.space:  # one approvals channel per server: the server's other channels stop getting them
            for other in session.exec(select(ChatLink).where(ChatLink.workspace_id == ws_id)
                                      .where(ChatLink.platform == cmd.chat.platform)
                                      .where(ChatLink.space == cmd.chat.space)).all():
                if other.chat_id != cmd.chat.chat_id and other.serves(purpose):
                    if other.purposes == purpose:  # a channel that only did this: the server's space covers it
                        session.delete(other)
                    else:
                        other.purposes = ",".join(p for p in other.purposes.split(",") if p != purpose)
                    moved.append(other.title or other.chat_id)
        audit(session, ctx, ws_id, None, req.actor_name, "setup", f"{purpose} go to {cmd.chat.title or cmd.chat.chat_id}")
        name = ws.name
    extra = f" ({', '.join(moved)} no longer gets them)" if moved else ""
    return Reply(f"This chat now gets the {PURPOSE_WORDS[purpose]} of workspace '{name}'{extra}.")


@command(
    "setup",
    usage="/setup [workspace name | approvals | reports | team]", example="/setup Acme Marketing",
    summary="create a workspace for this chat (you become its admin), or choose this chat for approvals/reports",
    details=(
        "Run once in the team chat. Everyone else starts as a viewer until an admin gives them a /role.\n"
        "Then /setup approvals in another chat or channel (e.g. a Discord #approvals channel of the same\n"
        "server, or a chat joined with /link) sends approval requests there; /setup reports does the same\n"
        "for reports, digests and alerts."
    ),
    needs_workspace=False,
    group="Workspace",
)
async def setup(req: Request) -> Reply:
    ctx, cmd = req.ctx, req.command
    word = cmd.text.strip().lower()
    first, _, extra = word.partition(" ")
    if first in PURPOSE_WORDS and extra.strip():
        raise UserError(f"/setup {first} takes no more words (got '{extra.strip()}'). Nothing changed. "
                        f"Run /setup {first} in the chat that should get {PURPOSE_WORDS[first]}.")
    if word in PURPOSE_WORDS:
        return set_purpose(req, word)
    if req.workspace_id is not None:
        with ctx.db.session() as session:
            ws = get_workspace(session, req.workspace_id)
            raise UserError(f"This chat already belongs to workspace '{ws.name}'. /policy shows its rules.")
    name = (str(req.arg("text", "")) or cmd.text).strip() or cmd.chat.title
    if not name:  # a chat with no title of its own (the console, a private chat): ask rather than invent one
        return Reply("What's the team called? Type its name as your next message, or /setup Acme Marketing.",
                     ask=Button("Name the workspace", "setup", prompt="What's the team called?"))
    if len(name) > 80:
        raise UserError("A workspace name can be at most 80 characters.")
    now = ctx.clock.now()
    with ctx.db.session() as session:
        ws = Workspace(name=name, created_at=now)
        session.add(ws)
        session.flush()
        assert ws.id is not None
        session.add(
            ChatLink(workspace_id=ws.id, platform=cmd.chat.platform, chat_id=cmd.chat.chat_id,
                     space=cmd.chat.space, title=cmd.chat.title, created_at=now)
        )
        session.add(
            Member(workspace_id=ws.id, platform=cmd.actor.platform, user_id=cmd.actor.user_id,
                   name=cmd.actor.name, role=Role.ADMIN.value, created_at=now)
        )
        audit(session, ctx, ws.id, None, cmd.actor.name, "setup", f"workspace '{name}' created")
    return Reply(
        f"Workspace '{name}' is ready and {'you are' if cmd.actor.name == 'you' else cmd.actor.name + ' is'} "
        "its admin.\n"
        "Next:\n"
        "  /timezone Europe/Paris — the zone times are read and shown in (now UTC)\n"
        "  /connect sandbox name=brand — an account to try publishing with\n"
        "  /role <person> editor|approver — give your team their roles\n"
        "  /draft <text> — write your first post"
    )


@command(
    "timezone",
    usage="/timezone [Area/City]", example="/timezone Europe/Paris",
    summary="show or set the workspace timezone",
    details=(
        "Times you type are read in this zone unless you name another; every time is shown with it.\n"
        "Abbreviations (EST, CET, PST) are refused: they mean different things in different places and seasons."
    ),
    group="Workspace",
)
async def timezone(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    zone_text = req.command.text.strip()
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        now = ctx.clock.now()
        if not zone_text:
            return Reply(f"This workspace's timezone is {ws.timezone}: it's {format_when(now, ws.timezone)} now.")
        req.require_role(ADMINS, "change the timezone")
        try:
            zone = parse_timezone(zone_text)
        except WhenError as exc:
            raise UserError(str(exc)) from exc
        old, ws.timezone = ws.timezone, zone
        audit(session, ctx, ws_id, None, req.actor_name, "timezone", f"{old} → {zone}")
    return Reply(f"Timezone set to {zone} (was {old}). It's {format_when(now, zone)} there now.")


@command(
    "language",
    usage="/language [en|ru|fr|de|es]", example="/language de",
    summary="show or set the language times are typed in ('morgen 9 Uhr', 'demain à 21h')",
    details=(
        "The words /schedule reads: en 'tomorrow 9am', ru 'завтра в 9', fr 'demain à 21h', de 'morgen 9 Uhr',\n"
        "es 'mañana a las 9:30'. Numbers, ISO dates and zone names work in every language."
    ),
    group="Workspace",
)
async def language(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    code_text = req.command.text.strip()
    listed = ", ".join(f"{code} ({name})" for code, name in LANGUAGES.items())
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        if not code_text:
            return Reply(f"Times are read in {LANGUAGES.get(ws.language, ws.language)} ({ws.language}). Languages: {listed}. "
                         "Admins change it with /language <code>, e.g. /language de.")
        req.require_role(ADMINS, "change the language for times")
        try:
            code = parse_language(code_text)
        except WhenError as exc:
            raise UserError(str(exc)) from exc
        old, ws.language = ws.language, code
        audit(session, ctx, ws_id, None, req.actor_name, "language", f"{old} → {code}")
    return Reply(f"Times are now read in {LANGUAGES[code]} ({code}; was {old}), e.g. /schedule 12 "
                 f"{EXAMPLE_TIMES[code]}.")


EXAMPLE_TIMES = {"en": "tomorrow 9am", "ru": "завтра в 9:00", "fr": "demain à 21h", "de": "morgen 9 Uhr",
                 "es": "mañana a las 9:30"}


@command(
    "role",
    usage="/role <person> <admin|editor|approver|viewer>", example="/role bob approver",
    summary="give someone a role (admins); without arguments, list the members",
    details=(
        "admin: everything, including settings and accounts. editor: drafts, edits, schedules, publishes.\n"
        "approver: approves, requests changes, rejects. viewer: reads posts, queue, stats and reports."
    ),
    group="Workspace",
    takes=(Param.person(required=False), Param.role(required=False)),  # /role alone lists the members
)
async def role(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    words = req.words
    with ctx.db.session() as session:
        members = session.exec(select(Member).where(Member.workspace_id == ws_id).order_by(Member.name)).all()
        if not words:
            lines = [f"  {m.name} ({m.platform}): {m.role}" for m in members]
            return Reply("Members:\n" + "\n".join(lines) + "\nEveryone else is a viewer.")
        req.require_role(ADMINS, "give roles")
        mention = req.command.mentions[0] if req.command.mentions else None
        if mention is not None and len(words) == 1:
            words = [mention.name, *words]  # /role editor, replying to the person (or naming a Discord role)
        elif mention is not None and len(words) == 2:
            typed = words[0].lstrip("@").lower()
            if typed not in (mention.name.lstrip("@").lower(), (mention.username or "").lower(), mention.user_id):
                raise UserError(f"You replied to {mention.name} but typed {words[0]}. Nothing changed: reply to "
                                f"their message with just /role {words[1]}, or don't reply and use /role {words[0]} "
                                f"{words[1]}.")
        if len(words) != 2:
            raise UserError(f"Usage: {req.spec.usage} — or reply to the person's message with /role <role>.")
        who, role_name = words[0].lstrip("@"), words[1].lower()
        try:
            new_role = Role(role_name)
        except ValueError:
            raise UserError(
                f"'{words[1]}' isn't a role. Roles: admin, editor, approver, viewer."
            ) from None
        platform = req.command.chat.platform
        if mention is not None:
            matches = [m for m in members if (m.platform, m.user_id) == (mention.platform, mention.user_id)]
            if mention.username:  # a role given earlier by @username is now tied to the real person
                for stale in [m for m in members if m.platform == mention.platform
                              and m.user_id == "@" + mention.username.lower()]:
                    if not matches:
                        stale.user_id, stale.name = mention.user_id, mention.name
                        matches = [stale]
                    else:
                        session.delete(stale)
        else:
            matches = [m for m in members if who.lower() in (m.user_id.lower().lstrip("@"), m.name.lower().lstrip("@"))]
        if len(matches) > 1:
            raise UserError(f"More than one member is called {who}; reply to their message with /role {role_name}.")
        member = matches[0] if matches else None
        if member is None:
            if mention is not None:
                member = Member(workspace_id=ws_id, platform=mention.platform, user_id=mention.user_id,
                                name=mention.name, role=new_role.value, created_at=ctx.clock.now())
            else:
                if not re.fullmatch(r"[\w.\-]{1,64}", who):
                    raise UserError(f"'{words[0]}' isn't a name I can use. Use their username, e.g. /role @sam editor.")
                # known by @username until they first speak; then Herald keeps their real id
                member = Member(workspace_id=ws_id, platform=platform, user_id="@" + who.lower(), name=who,
                                role=new_role.value, created_at=ctx.clock.now())
            session.add(member)
            old = "viewer"
        else:
            old = member.role
            admins = [m for m in members if m.role == Role.ADMIN.value]
            if old == Role.ADMIN.value and new_role != Role.ADMIN and len(admins) == 1:
                raise UserError(f"{member.name} is the only admin. Make someone else admin first.")
            member.role = new_role.value
        audit(session, ctx, ws_id, None, req.actor_name, "role", f"{member.name}: {old} → {new_role.value}")
    return Reply(f"{member.name} is now {new_role.value} (was {old}).")


READERS = {
    "members": "only people with a Herald role (given with /role, also to a Discord role) and the server's admins",
    "open": "every member of the server",
}


@command(
    "readers",
    usage="/readers [members|open]", example="/readers open",
    summary="show or set who may read drafts, history, the inbox and exports in a Discord server",
    details=(
        "members (the default): in a Discord server, only people with a Herald role of their own (/role, also\n"
        "given to a Discord role) and the server's admins use Herald; everyone else is refused.\n"
        "open: every member of the server reads, as a viewer. In a channel that isn't the team, approvals or\n"
        "reports channel, what everyone may read is answered privately (only the asker sees it) either way."
    ),
    group="Workspace",
    takes=(Param.choice("readers", tuple(READERS), required=False, description="members | open"),),
)
async def readers(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    word = req.command.text.strip().lower()
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        if not word:
            other = "open" if ws.readers == "members" else "members"
            return Reply(f"Readers: {ws.readers} — in a Discord server, {READERS[ws.readers]} read drafts, history, "
                         f"the inbox and exports. Admins change it with /readers {other}.")
        req.require_role(ADMINS, "choose who reads")
        if word not in READERS:
            raise UserError(f"'{req.command.text.strip()}' isn't a choice. Nothing changed. Use /readers members "
                            "(only people with a Herald role) or /readers open (every member of the server).")
        old, ws.readers = ws.readers, word
        audit(session, ctx, ws_id, None, req.actor_name, "readers", f"{old} → {word}")
    return Reply(f"Readers: {word} (was {old}) — in a Discord server, {READERS[word]} now read drafts, history, "
                 "the inbox and exports.")


@command(
    "link",
    usage="/link [code]", example="/link K7PQ-2XMD",
    summary="join another chat to this workspace: /link gives a one-time code, /link <code> uses it",
    details=(
        "Run /link in a chat of the workspace (admins): Herald answers with a code valid 15 minutes.\n"
        "Run /link <code> in the other chat — a Telegram group, a Discord channel, any platform — and it\n"
        "joins the workspace: notices reach both, and whoever uses the code becomes an admin there.\n"
        "/link alone in a linked chat also lists the workspace's chats."
    ),
    needs_workspace=False,
    group="Workspace",
)
async def link(req: Request) -> Reply:
    ctx, cmd = req.ctx, req.command
    code = cmd.text.strip().upper().replace(" ", "")
    now = ctx.clock.now()
    if code:
        return await redeem_link_code(req, code, now)
    ws_id = req.need_workspace()
    req.require_role(ADMINS, "link chats")
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))
    shown = f"{raw[:4]}-{raw[4:]}"
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        session.add(LinkCode(workspace_id=ws_id, code_hash=hash_code(raw), created_by=req.actor_name,
                             expires_at=now + LINK_CODE_TTL, created_at=now))
        chats = session.exec(select(ChatLink).where(ChatLink.workspace_id == ws_id).order_by(ChatLink.id)).all()  # type: ignore[arg-type]
        listed = "\n".join(f"  {c.platform}: {c.title or c.chat_id} ({c.purposes.replace(',', ', ')})" for c in chats)
        audit(session, ctx, ws_id, None, req.actor_name, "link", "one-time code made")
        name = ws.name
    return Reply(
        f"To join another chat to '{name}', send this there within 15 minutes (it works once):\n"
        f"  /link {shown}\nChats of this workspace now:\n{listed}",
        private=True,  # whoever holds the code becomes an admin: show it to the asker only
    )


CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I to misread


def hash_code(code: str) -> str:
    return hashlib.sha256(code.replace("-", "").upper().encode()).hexdigest()


async def redeem_link_code(req: Request, code: str, now: datetime) -> Reply:
    ctx, cmd = req.ctx, req.command
    if not re.fullmatch(r"[A-Z0-9]{4}-?[A-Z0-9]{4}", code):
        raise UserError("That isn't a link code. Codes look like K7PQ-2XMD: run /link in the workspace's chat to get one.")
    if req.workspace_id is not None:
        with ctx.db.session() as session:
            ws = get_workspace(session, req.workspace_id)
            raise UserError(f"This chat already belongs to workspace '{ws.name}'. Nothing changed.")
    with ctx.db.session() as session:
        row = session.exec(select(LinkCode).where(LinkCode.code_hash == hash_code(code))).first()
        if row is None:
            raise UserError("That code isn't valid. Check it, or run /link in the workspace's chat for a new one.")
        if row.used_at is not None:
            raise UserError("That code was already used. Run /link in the workspace's chat for a new one.")
        if row.expires_at is not None and row.expires_at < now:
            raise UserError("That code has expired (codes last 15 minutes). Run /link again for a new one.")
        ws = get_workspace(session, row.workspace_id)
        taken = session.execute(  # one use: two chats redeeming at the same moment can't both join
            update(LinkCode).where(col(LinkCode.id) == row.id).where(col(LinkCode.used_at).is_(None))
            .values(used_at=now, used_by_chat=f"{cmd.chat.platform}:{cmd.chat.chat_id}")
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            raise UserError("That code was already used. Run /link in the workspace's chat for a new one.")
        session.add(ChatLink(workspace_id=row.workspace_id, platform=cmd.chat.platform, chat_id=cmd.chat.chat_id,
                             space=cmd.chat.space, title=cmd.chat.title, purposes=row.purposes, created_at=now))
        existing = session.exec(
            select(Member).where(Member.workspace_id == row.workspace_id).where(Member.platform == cmd.actor.platform)
            .where(Member.user_id == cmd.actor.user_id)
        ).first()
        if existing is None:
            session.add(Member(workspace_id=row.workspace_id, platform=cmd.actor.platform, user_id=cmd.actor.user_id,
                               name=cmd.actor.name, role=Role.ADMIN.value, created_at=now))
        audit(session, ctx, row.workspace_id, None, cmd.actor.name, "link",
              f"{cmd.chat.platform} chat {cmd.chat.title or cmd.chat.chat_id} joined (code from {row.created_by})")
        name, ws_id = ws.name, row.workspace_id
    note = Reply(f"🔗 {cmd.chat.title or 'A ' + cmd.chat.platform + ' chat'} ({cmd.chat.platform}) joined this "
                 f"workspace, linked by {cmd.actor.name}.")
    await tell_team(ctx, ws_id, note, skip=cmd.chat)
    return Reply(
        f"This chat is now part of workspace '{name}': drafts, approvals and notices are shared with its other "
        f"chats. {cmd.actor.name} is an admin here. /setup approvals makes this chat the approvals chat."
    )


async def chat_moved(ctx: Context, platform: str, old_chat_id: str, new_chat_id: str) -> bool:
    """A chat got a new id on its platform (a Telegram group upgraded to a supergroup): its link follows.

    Called by a front end, not typed by anyone. True if a linked chat moved.
    """
    with ctx.db.session() as session:
        link = session.exec(
            select(ChatLink).where(ChatLink.platform == platform).where(ChatLink.chat_id == old_chat_id)
        ).first()
        taken = session.exec(
            select(ChatLink).where(ChatLink.platform == platform).where(ChatLink.chat_id == new_chat_id)
        ).first()
        if link is None or taken is not None:
            return False
        link.chat_id = new_chat_id
        audit(session, ctx, link.workspace_id, None, "Herald", "chat moved",
              f"{platform} chat {link.title or old_chat_id}: {old_chat_id} → {new_chat_id}")
        ws_id = link.workspace_id
    await tell_team(ctx, ws_id, Reply("This group got a new address on Telegram (it became a supergroup); "
                                      "Herald follows it, nothing else changes."), purpose="team")
    return True
