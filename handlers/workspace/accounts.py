"""Connected social accounts: /connect, /accounts, /slots."""

from __future__ import annotations

import re
import shlex

from sqlmodel import select

from handlers.core.access import ADMINS
from handlers.core.audit import audit
from handlers.core.chat import Reply
from handlers.core.commands import Param, Request, command
from handlers.core.errors import UserError
from handlers.core.lookups import account_rules, chat_link, get_workspace
from handlers.core.ports import AccountView, Networks, PublishError, Verified
from handlers.core.when import WhenError, parse_timezone
from storage.models import Account

# Keys every network takes in /connect, handled by Herald itself.
COMMON_KEYS = ("name", "slots", "timezone", "base_url")
SLOT_RE = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
# Words that make a key a secret whatever the network, beside what each connector declares secret:
# token, access_token, refresh_token, client_secret, app_password, password, api_key, secret, webhook…
SECRET_WORDS = ("token", "secret", "password", "passwd", "api_key", "apikey", "webhook", "private_key")
# Anything that looks like key=value or key: value, however broken the rest of the line is.
KEY_LIKE_RE = re.compile(r"(?<![\w.\-])([A-Za-z][\w.\-]*)\s*[=:]")


def holds_secret(networks: Networks, text: str) -> bool:
    """Whether a /connect line carries a secret: checked first, before the network, keys or syntax are
    read, so a line with a typo, a missing key or an unknown network is still caught."""
    connectors = [networks.get(name) for name in networks.keys()]  # noqa: SIM118 - a Networks, not a dict
    declared = {key for net in connectors if net is not None for key in net.connect_spec.secret}
    for match in KEY_LIKE_RE.finditer(text):
        key = match.group(1).lower().replace("-", "_")
        if key in declared or any(word in key for word in SECRET_WORDS):
            return True
    return False


def secret_in_group_reply() -> Reply:
    """The answer to a secret typed in a group: nothing stored, the message deleted where Herald may."""
    return Reply(
        "That message holds credentials, so I didn't store anything and removed it where I could. "
        "Consider the token seen by this chat: revoke it and make a new one. "
        "Then send /connect to me in a private chat.",
        error=True, delete_command=True,
    )


def parse_slots(words: list[str]) -> str:
    """'09:00 13:30' or '9:00,17:00' → '09:00,13:30' (sorted, unique); refuses anything else."""
    slots = set()
    for word in words:
        for part in filter(None, word.split(",")):
            m = SLOT_RE.fullmatch(part)
            if not m:
                raise UserError(f"'{part}' isn't a time of day. Posting slots look like 09:00 13:30 17:45.")
            slots.add(f"{int(m.group(1)):02d}:{m.group(2)}")
    return ",".join(sorted(slots))


def parse_pairs(text: str, usage: str) -> dict[str, str]:
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise UserError(f"I couldn't read that ({exc}). Usage: {usage}") from None
    pairs: dict[str, str] = {}
    for token in tokens:
        key, sep, value = token.partition("=")
        if not sep or not key:
            raise UserError(f"'{token}' isn't key=value. Usage: {usage}")
        key = key.lower()
        if key in pairs:
            raise UserError(f"{key}= is given twice.")
        pairs[key] = value
    return pairs


def connect_help(req: Request, key: str) -> str:
    network = req.ctx.networks.get(key)
    assert network is not None
    spec = network.connect_spec
    keys = [f"{k}=…" for k in spec.required] + [f"[{k}=…]" for k in spec.optional]
    return (
        f"/connect {key} {' '.join(keys)}\n"
        f"{spec.help}\n"
        "Every account also takes slots=09:00,13:00 (posting slots) and timezone=Area/City."
    ).strip()


@command(
    "connect",
    usage="/connect <network> name=<name> key=value…", example="/connect sandbox name=acme-x like=x slots=09:00,17:00",
    summary="connect a social account or channel (admins)",
    details=(
        "/connect <network> alone shows what that network needs. Credentials go only in a private chat.\n"
        "Connecting again with the name of an existing account of the same network reconnects it\n"
        "(new credentials and settings, health reset)."
    ),
    roles=ADMINS,
    group="Accounts",
)
async def connect(req: Request) -> Reply:
    """Connect an account; a secret outside a private chat is refused first (the front door checks too)."""
    ctx = req.ctx
    if not req.command.chat.private and holds_secret(ctx.networks, req.command.text):
        return secret_in_group_reply()
    ws_id = req.need_workspace()
    key, _, rest = req.command.text.strip().partition(" ")
    key = ctx.networks.resolve(key) or key.lower()  # a network's key or one of its aliases (twitter, fb, …)
    known = ctx.networks.keys()
    if not key:
        raise UserError(f"Which network? Available here: {', '.join(known)}. Usage: {req.spec.usage}")
    network = ctx.networks.get(key)
    if network is None:
        raise UserError(f"'{key}' isn't a network I know. Available: {', '.join(known)}.")
    if not rest.strip():
        return Reply(connect_help(req, key))
    spec = network.connect_spec
    pairs = parse_pairs(rest, req.spec.usage)
    allowed = set(COMMON_KEYS) | set(spec.required) | set(spec.optional) | set(spec.secret)
    unknown = sorted(set(pairs) - allowed)
    if unknown:
        raise UserError(f"{network.label} doesn't take {', '.join(unknown)}.\n{connect_help(req, key)}")
    missing = [k for k in ("name", *spec.required) if not pairs.get(k)]
    if missing:
        raise UserError(f"Missing {', '.join(k + '=' for k in dict.fromkeys(missing))}.\n{connect_help(req, key)}")
    secrets = {k: pairs.pop(k) for k in spec.secret if k in pairs}
    name = pairs.pop("name")
    if not re.fullmatch(r"[A-Za-z0-9][\w.\-]{0,39}", name):
        raise UserError("name= must be 1–40 letters, digits, '.', '-' or '_' (it's how you'll refer to the account).")
    slots = parse_slots([pairs.pop("slots")]) if "slots" in pairs else ""
    tz = None
    if "timezone" in pairs:
        try:
            tz = parse_timezone(pairs.pop("timezone"))
        except WhenError as exc:
            raise UserError(str(exc)) from None
    base_url = pairs.pop("base_url", None)
    if base_url is not None and not re.match(r"https?://[^\s/]+", base_url):
        raise UserError("base_url= must start with http:// or https://")
    with ctx.db.session() as session:
        existing = session.exec(
            select(Account).where(Account.workspace_id == ws_id).where(Account.name == name)
        ).first()
        if existing is not None and existing.network != key:
            raise UserError(f"There's already a {existing.network} account called {name}. Pick another name=.")
    view = AccountView(id=existing.id or 0 if existing else 0, workspace_id=ws_id, network=key, name=name,
                       base_url=base_url, settings=pairs, credentials=secrets)
    try:
        verified = await network.verify(view)
    except ValueError as exc:
        raise UserError(f"{network.label}: {exc}. Nothing was saved.") from None
    except PublishError as exc:
        raise UserError(f"{network.label} didn't accept these credentials: {exc.reason}. Nothing was saved.") from None
    if isinstance(verified, Verified):
        who = verified.description
        pairs = {**pairs, **verified.settings}
        secrets = {**secrets, **verified.credentials}
    else:
        who = verified
    with ctx.db.session() as session:
        account = session.get(Account, existing.id) if existing else None
        if account is None:
            account = Account(workspace_id=ws_id, network=key, name=name, created_at=ctx.clock.now())
            session.add(account)
        elif not slots:
            slots = account.slots
        account.base_url, account.settings, account.slots = base_url, pairs, slots
        account.timezone = tz or account.timezone
        account.credentials = ctx.secrets.seal(secrets) if secrets else None
        account.health, account.health_note, account.checked_at = "ok", None, ctx.clock.now()
        session.flush()
        verb = "Reconnected" if existing else "Connected"
        audit(session, ctx, ws_id, None, req.actor_name, verb.lower(), f"{key} account {name}")
        rules = account_rules(account)
    extra = f", following {ctx.networks.label(rules)} rules" if rules != key else ""
    slot_text = f"Posting slots: {slots.replace(',', ' ')}." if slots else f"No posting slots yet: /slots {name} 09:00 17:00"
    where = ""
    chat = req.command.chat
    if chat.private:  # a private chat not linked itself works in the person's workspace: say which one
        with ctx.db.session() as session:
            where = "" if chat_link(session, chat) else f" in workspace '{get_workspace(session, ws_id).name}'"
    return Reply(f"{verb} {name} ({network.label}{extra}){where} — {who}.\n{slot_text}", private=bool(secrets))


def describe_account(networks: Networks, account: Account, ws_tz: str) -> str:
    rules = account_rules(account)
    parts = [f"{account.name}: {networks.label(account.network)}"]
    if rules != account.network:
        parts.append(f"{networks.label(rules)} rules")
    parts.append("healthy" if account.health == "ok" else f"⚠ {account.health_note or account.health}")
    slots = account.slot_list()
    parts.append(f"slots {' '.join(slots)} ({account.timezone or ws_tz})" if slots else "no slots")
    if account.credentials:
        parts.append("credentials stored encrypted")
    return "  " + " · ".join(parts)


@command("accounts", usage="/accounts", example="/accounts", summary="list the connected accounts", group="Accounts")
async def accounts(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        rows = session.exec(select(Account).where(Account.workspace_id == ws_id).order_by(Account.name)).all()
        if not rows:
            return Reply("No accounts yet. /connect sandbox name=brand connects one to try Herald with.")
        lines = [describe_account(ctx.networks, a, ws.timezone) for a in rows]
    # account details (health notes, which credentials are stored) are for the asker only
    return Reply("Accounts:\n" + "\n".join(lines), private=True)


@command(
    "slots",
    usage="/slots <account> <HH:MM…|off>", example="/slots acme-x 09:00 13:00 17:30",
    summary="set an account's posting slots, used by /schedule <post> next slot",
    details="Slots are times of day in the account's timezone (else the workspace's); /slots <account> off clears them.",
    roles=ADMINS,
    group="Accounts",
    takes=(Param.account(), Param.text("times", description="HH:MM… or off")),
)
async def slots(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    words = req.words
    if len(words) < 2:
        raise UserError(f"Usage: {req.spec.usage}")
    with ctx.db.session() as session:
        account = session.exec(
            select(Account).where(Account.workspace_id == ws_id).where(Account.name == words[0])
        ).first()
        if account is None:
            raise UserError(f"There's no account called {words[0]}. /accounts lists them.")
        value = "" if words[1:] == ["off"] else parse_slots(words[1:])
        account.slots = value
        audit(session, ctx, ws_id, None, req.actor_name, "slots", f"{account.name}: {value or 'off'}")
    return Reply(
        f"{words[0]} posting slots: {value.replace(',', ' ')}." if value else f"{words[0]} has no posting slots now."
    )
