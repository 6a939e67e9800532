"""Audiences: /audience add, edit and remove (admins); /audience and /audience <name> for everyone.

An audience is a group a campaign is tailored to: the workspace's accounts that reach it, its time zone
(validated like /timezone), its language (any ISO 639-1 code; the card says when the language checker can't
check it), a
landing page and a country (one the `holidays` package knows public holidays for).

A removed audience keeps its row (reports of the posts that reached it still name it) with `removed_at` set,
and its name becomes `<name>~<id>`: names are unique per workspace (uq_audience_name) and `~` is never part of
a live name, so the name is free again at once and the old row can't collide with a later one. `shown_name`
gives a removed audience's name as the team knew it.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import holidays
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from handlers.core.access import ADMINS
from handlers.core.audit import audit
from handlers.core.chat import Reply
from handlers.core.commands import Request, command
from handlers.core.context import Context
from handlers.core.errors import UserError
from handlers.core.languages import checkable_languages, detected_as, language_name
from handlers.core.lookups import REMOVED_MARK, audience_accounts, audience_name, get_audience
from handlers.core.when import WhenError, format_when, parse_timezone
from handlers.core.words import short_text, state_label
from storage.models import Account, Audience, AudienceAccount, Delivery, DeliveryState, Post, PostState

EXAMPLE = "/audience add south accounts=acme-es tz=Europe/Madrid lang=es"
USAGE_ADD = "/audience add <name> accounts=<a>,<b> tz=<Area/City> lang=<code> [link=https://…] [country=ES] [notes=\"…\"]"
USAGE_EDIT = "/audience edit <name> key=value… (accounts=… tz=… lang=… link=… country=… notes=… name=…)"
NAME_RE = re.compile(r"[a-z0-9_-]{1,32}")
SUBCOMMANDS = ("add", "edit", "remove", "list")  # never audience names: /audience <name> shows one
NOTES_MAX = 300
# the keys add and edit read, and the other spellings each takes
KEYS = {"accounts": "accounts", "account": "accounts", "tz": "tz", "timezone": "tz", "lang": "lang",
        "language": "lang", "link": "link", "country": "country", "notes": "notes", "name": "name"}
OPTIONAL = ("link", "country", "notes")  # edit clears them with key=off (or an empty value)
CLEARED = ("", "off", "none")
# posts that will never go out again: an audience they target may be removed (a failed post is retried only
# by a person, who then picks its targets again; rejected is final)
DONE_STATES = (PostState.PUBLISHED.value, PostState.CANCELLED.value, PostState.FAILED.value,
               PostState.REJECTED.value)
QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "«": '"', "»": '"'})  # phones type curly quotes


def shown_name(audience: Audience) -> str:
    """The name the team knew the audience by (a removed one is stored as <name>~<id>)."""
    return audience_name(audience)


@cache
def known_countries() -> frozenset[str]:
    """The ISO 3166-1 alpha-2 codes the `holidays` package knows public holidays for."""
    return frozenset(code for code in holidays.list_supported_countries() if len(code) == 2)


# --- reading what was typed ------------------------------------------------------------------------------


def tokens_of(text: str, usage: str) -> list[str]:
    try:
        return shlex.split(text.translate(QUOTES))
    except ValueError:
        raise UserError(f"I couldn't read that: a quote isn't closed. Put notes in double quotes, e.g. "
                        f"notes=\"hot climate, 18-34\". Nothing changed. Usage: {usage}") from None


def read_fields(tokens: list[str], usage: str) -> dict[str, str]:
    """key=value words into {key: value} (keys under their short name); words after notes= without '=' belong
    to the notes (notes=hot climate works without quotes), and so do accounts after a comma (accounts=a, b)."""
    fields: dict[str, str] = {}
    last = ""
    for token in tokens:
        key, sep, value = token.partition("=")
        if not sep:
            if last == "notes":
                fields["notes"] = f"{fields['notes']} {token}".strip()
                continue
            if last == "accounts" and (fields["accounts"].endswith(",") or token.startswith(",")):
                fields["accounts"] += token
                continue
            raise UserError(f"'{token}' isn't key=value. Nothing changed. Usage: {usage}\nExample: {EXAMPLE}")
        short = KEYS.get(key.strip().lower())
        if short is None:
            raise UserError(f"An audience has no {key}=. Keys: accounts=, tz=, lang=, link=, country=, notes= "
                            f"(and name= to rename). Nothing changed. Example: {EXAMPLE}")
        if short in fields:
            raise UserError(f"{short}= is given twice. Nothing changed.")
        fields[short] = value.strip()
        last = short
    return fields


def check_name(raw: str) -> str:
    name = raw.strip().lower()
    if not NAME_RE.fullmatch(name):
        raise UserError(f"'{raw}' can't be an audience name: use 1–32 letters, digits, '-' or '_' (e.g. south, "
                        f"latam, de-students). Nothing changed. Example: {EXAMPLE}")
    if name in SUBCOMMANDS:
        raise UserError(f"'{name}' is a word of /audience itself; pick another name. Nothing changed. "
                        f"Example: {EXAMPLE}")
    return name


def check_free(session: Session, ws_id: int, name: str, keep: int | None = None) -> None:
    taken = session.exec(select(Audience).where(Audience.workspace_id == ws_id).where(Audience.name == name)).first()
    if taken is not None and taken.id != keep:
        raise UserError(f"There's already an audience called {name}. Nothing changed. Pick another name, or "
                        f"change it with /audience edit {name} key=value….")


def read_accounts(session: Session, ws_id: int, raw: str, current: list[Account] | None) -> list[Account]:
    """accounts=a,b (replaces the list); with `current` (an edit) also accounts=+c (adds) or accounts=-d (drops)."""
    items = [item for item in re.split(r"[,\s]+", raw.strip()) if item]
    if not items:
        raise UserError(f"accounts= needs at least one account of this workspace. Nothing changed. Example: {EXAMPLE}")
    signs = {item[0] for item in items if item[0] in "+-"}
    delta = bool(signs)
    if delta and current is None:
        raise UserError("accounts=+… and accounts=-… change an existing audience (/audience edit); here list "
                        f"the accounts plainly. Nothing changed. Example: {EXAMPLE}")
    if delta and len([i for i in items if i[0] in "+-"]) != len(items):
        raise UserError("Either list the accounts (accounts=a,b replaces them) or mark each one with + or - "
                        "(accounts=+acme-fr,-acme-de); not both. Nothing changed.")
    workspace_accounts = list(session.exec(
        select(Account).where(Account.workspace_id == ws_id).order_by(Account.name)).all())
    by_name = {a.name.lower(): a for a in workspace_accounts}
    unknown = [item.lstrip("+-") for item in items if item.lstrip("+-").lower() not in by_name]
    if unknown:
        known = ", ".join(a.name for a in workspace_accounts) or "none yet (/connect sandbox name=brand adds one)"
        raise UserError(f"This workspace has no account called {', '.join(unknown)}. Nothing changed. "
                        f"Its accounts: {known}.")
    if not delta:
        chosen: list[Account] = []
        for item in items:
            if by_name[item.lower()] not in chosen:
                chosen.append(by_name[item.lower()])
        return sorted(chosen, key=lambda a: a.name)
    assert current is not None
    result = {a.id: a for a in current}
    for item in items:
        account = by_name[item[1:].lower()]
        if item[0] == "+":
            result[account.id] = account
        elif account.id not in result:
            now = ", ".join(a.name for a in current)
            raise UserError(f"{account.name} doesn't reach this audience (its accounts: {now}). Nothing changed.")
        else:
            del result[account.id]
    if not result:
        raise UserError("An audience needs at least one account, so I can't drop them all. Nothing changed. "
                        "To stop using it: /audience remove <name>.")
    return sorted(result.values(), key=lambda a: a.name)


def read_zone(raw: str) -> str:
    """The zone as /timezone reads it: IANA names, abbreviations such as EST refused with the Area/City meant."""
    try:
        return parse_timezone(raw)
    except WhenError as exc:
        raise UserError(f"{exc} Nothing changed.") from None


def read_language(raw: str) -> str:
    """Any ISO 639-1 code (pycountry's list), e.g. es, nb; a tag such as pt-BR is read as its language."""
    code = raw.strip().lower()
    if not code:
        raise UserError("lang= needs a two-letter ISO 639-1 code, e.g. lang=es. Nothing changed.")
    if language_name(code) is not None:
        return code
    base = re.split(r"[-_]", code, maxsplit=1)[0]
    hint = f" Did you mean lang={base}?" if base != code and language_name(base) is not None else ""
    raise UserError(f"'{raw.strip()}' isn't a two-letter ISO 639-1 language code.{hint} For example lang=es "
                    "(Spanish), lang=nb (Norwegian Bokmål), lang=en, lang=pt. Nothing changed.")


def read_link(raw: str) -> str:
    link = raw.strip()
    parts = urlsplit(link)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or re.search(r"\s", link):
        raise UserError(f"link= must be a web address starting with https:// (or http://), e.g. "
                        f"link=https://shop.example/es. '{link}' isn't one. Nothing changed.")
    return link


def read_country(raw: str) -> str:
    code = raw.strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", code):
        three = code in holidays.list_supported_countries()
        hint = f" ({code} is three letters: use {holidays.country_holidays(code).country})" if three else ""
        raise UserError(f"country= takes a two-letter ISO 3166-1 code, e.g. ES for Spain or DE for Germany"
                        f"{hint}. Nothing changed.")
    if code not in known_countries():
        raise UserError(f"No public holidays known for {code}: it isn't a country code the holidays calendar "
                        "knows (two letters, ISO 3166-1, e.g. ES, DE, US, GB). Nothing changed.")
    return str(holidays.country_holidays(code).country)  # UK is the holidays package's alias of GB


def read_notes(raw: str) -> str:
    notes = " ".join(raw.split())
    if len(notes) > NOTES_MAX:
        raise UserError(f"notes= can be at most {NOTES_MAX} characters (these are {len(notes)}). Nothing changed.")
    return notes


@dataclass
class Fields:
    """An audience's settings, read and checked (accounts as rows of this workspace)."""

    accounts: list[Account]
    timezone: str
    language: str
    link: str | None
    country: str | None
    notes: str | None


# --- showing ----------------------------------------------------------------------------------------------


def utc_offset(zone: str, now: datetime) -> str:
    """'UTC+1', 'UTC+5:30', 'UTC-3': the zone's offset at this moment (summer time included)."""
    offset = now.astimezone(ZoneInfo(zone)).utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")


def accounts_text(ctx: Context, accounts: list[Account]) -> str:
    return ", ".join(f"{a.name} ({ctx.networks.label(a.network)})" for a in accounts)


def card(ctx: Context, session: Session, audience: Audience) -> list[str]:
    assert audience.id is not None
    now = ctx.clock.now()
    local = now.astimezone(ZoneInfo(audience.timezone))
    lines = [
        f"Audience {shown_name(audience)}",
        f"  Accounts: {accounts_text(ctx, audience_accounts(session, audience.id))}",
        f"  Zone: {audience.timezone} ({utc_offset(audience.timezone, now)}; {local:%H:%M} there now)",
        f"  Language: {language_line(audience.language)}",
        f"  Link: {audience.link or 'none (posts keep their own link=)'}",
        f"  Country: {audience.country or 'none'}",
    ]
    if audience.notes:
        lines.append(f"  Notes: {audience.notes}")
    return lines


def language_line(code: str) -> str:
    checked = "" if detected_as(code) in checkable_languages() else "; posts' language can't be checked in it"
    return f"{code} ({language_name(code) or code}{checked})"


def summary_line(ctx: Context, session: Session, audience: Audience) -> str:
    assert audience.id is not None
    now = ctx.clock.now()
    parts = [accounts_text(ctx, audience_accounts(session, audience.id)),
             f"{audience.timezone} ({utc_offset(audience.timezone, now)})", audience.language]
    parts += [value for value in (audience.link, audience.country, audience.notes) if value]
    return f"  {shown_name(audience)}: " + " · ".join(parts)


def waiting_posts(session: Session, audience_id: int) -> list[tuple[Post, datetime | None]]:
    """The posts that may still go out to this audience (not published, cancelled, failed or rejected, and
    its delivery not sent yet), each with when it goes to the audience (its delivery's own time, else the
    post's), by post number."""
    rows = session.exec(
        select(Post, Delivery).where(Delivery.audience_id == audience_id).where(Delivery.post_id == Post.id)
        .where(col(Post.state).not_in(DONE_STATES)).where(Delivery.state != DeliveryState.SENT.value)
    ).all()
    posts: dict[int, Post] = {}
    times: dict[int, list[datetime]] = {}
    for post, delivery in rows:
        assert post.id is not None
        posts[post.id] = post
        due = delivery.due_at or post.due_at
        times.setdefault(post.id, []).extend([due] if due is not None else [])
    return [(posts[key], min(times[key], default=None)) for key in sorted(posts)]


def post_lines(waiting: list[tuple[Post, datetime | None]], zone: str) -> list[str]:
    return [f"  #{post.id} {state_label(post)}" + (f" · {format_when(due, zone)}" if due else "")
            + f" · {short_text(post.text, 50)}" for post, due in waiting]


# --- the command ------------------------------------------------------------------------------------------


@command(
    "audience",
    usage="/audience [name | add <name> accounts=… tz=… lang=… | edit <name> key=value… | remove <name>]",
    example=EXAMPLE,
    summary="the audiences posts are tailored to: list them, show one, or (admins) add, edit or remove one",
    details=(
        "/audience lists them; /audience <name> shows one and the posts still to go out to it.\n"
        f"{USAGE_ADD}\n"
        "  accounts= accounts of this workspace that reach it (at least one); tz= its IANA zone (abbreviations such\n"
        "  as EST are refused); lang= a two-letter ISO 639-1 code; link= its landing page (https://…); country= a\n"
        "  two-letter ISO 3166-1 code (its public holidays); notes= free words, in quotes when they hold spaces.\n"
        f"{USAGE_EDIT}\n"
        "  accounts= replaces the list, accounts=+acme-fr adds one, accounts=-acme-de drops one; link=off,\n"
        "  country=off and notes=off clear them; name= renames it.\n"
        "/audience remove <name> — refused while a post still to go out targets it; its reports keep it."
    ),
    group="Accounts",
)
async def audience(req: Request) -> Reply:
    text = req.command.text.strip()
    verb, _, rest = text.partition(" ")
    verb = verb.lower()
    if not text or verb == "list":
        return list_audiences(req)
    if verb == "add":
        return add(req, rest)
    if verb == "edit":
        return edit(req, rest)
    if verb == "remove":
        return remove(req, rest)
    if rest.strip():
        raise UserError(f"/audience takes add, edit or remove, or one audience's name to show it (got '{text}'). "
                        f"Usage: {req.spec.usage}. Example: {EXAMPLE}")
    return show(req, verb)


def list_audiences(req: Request) -> Reply:
    ctx, ws_id = req.ctx, req.need_workspace()
    with ctx.db.session() as session:
        rows = session.exec(select(Audience).where(Audience.workspace_id == ws_id)
                            .where(col(Audience.removed_at).is_(None)).order_by(Audience.name)).all()
        if not rows:
            return Reply("No audiences yet. An audience is who a post is tailored to: the accounts that reach it, its "
                         f"time zone, language, landing page and country. Admins add one with\n  {EXAMPLE}")
        lines = [summary_line(ctx, session, a) for a in rows]
    return Reply("Audiences:\n" + "\n".join(lines) + "\n/audience <name> shows one with the posts still to go out to it.")


def show(req: Request, name: str) -> Reply:
    ctx, ws_id = req.ctx, req.need_workspace()
    with ctx.db.session() as session:
        found = get_audience(session, ws_id, name)
        assert found.id is not None
        lines = card(ctx, session, found)
        waiting = waiting_posts(session, found.id)
        if waiting:
            lines += ["Posts still to go out to it:", *post_lines(waiting, found.timezone)]
        else:
            lines.append("No post still to go out targets it.")
    return Reply("\n".join(lines))


def name_and_fields(rest: str, usage: str) -> tuple[str, dict[str, str]]:
    tokens = tokens_of(rest, usage)
    if not tokens or "=" in tokens[0]:
        raise UserError(f"Which audience? Give its name first. Usage: {usage}\nExample: {EXAMPLE}")
    return tokens[0], read_fields(tokens[1:], usage)


def read_settings(session: Session, ws_id: int, fields: dict[str, str], base: Fields | None) -> Fields:
    """The settings after `fields` are applied to `base` (None: a new audience), every value checked."""
    current = base.accounts if base is not None else None  # an edit may add (+) or drop (-) accounts
    if base is None:
        missing = [key + "=" for key in ("accounts", "tz", "lang") if not fields.get(key)]
        if missing:
            raise UserError(f"Missing {', '.join(missing)}: an audience needs the accounts that reach it, its time "
                            f"zone and its language. Nothing changed. Usage: {USAGE_ADD}\nExample: {EXAMPLE}")
        base = Fields([], "", "", None, None, None)
    result = Fields(base.accounts, base.timezone, base.language, base.link, base.country, base.notes)
    if "accounts" in fields:
        result.accounts = read_accounts(session, ws_id, fields["accounts"], current)
    if "tz" in fields:
        result.timezone = read_zone(fields["tz"])
    if "lang" in fields:
        result.language = read_language(fields["lang"])
    for key, reader in (("link", read_link), ("country", read_country), ("notes", read_notes)):
        if key in fields:
            cleared = fields[key].strip().lower() in CLEARED
            setattr(result, key, None if cleared else reader(fields[key]))
    return result


def describe(fields: Fields) -> str:
    parts = [f"accounts {', '.join(a.name for a in fields.accounts)}", f"tz {fields.timezone}",
             f"lang {fields.language}"]
    parts += [f"{key} {value}" for key, value in (("link", fields.link), ("country", fields.country),
                                                   ("notes", fields.notes)) if value]
    return "; ".join(parts)


def store_accounts(session: Session, audience_id: int, accounts: list[Account]) -> None:
    session.execute(delete(AudienceAccount).where(col(AudienceAccount.audience_id) == audience_id))
    for account in accounts:
        assert account.id is not None
        session.add(AudienceAccount(audience_id=audience_id, account_id=account.id))


def flush_name(session: Session, name: str) -> None:
    """Write the audience now, so two people adding the same name at the same moment get a clear refusal."""
    try:
        session.flush()
    except IntegrityError:
        raise UserError(f"There's already an audience called {name} (it was added at the same moment). "
                        "Nothing changed; /audience lists them.") from None


def add(req: Request, rest: str) -> Reply:
    ctx, ws_id = req.ctx, req.need_workspace()
    req.require_role(ADMINS, "add audiences")
    raw_name, fields = name_and_fields(rest, USAGE_ADD)
    name = check_name(raw_name)
    if "name" in fields:
        raise UserError(f"The name comes first, without name=. Nothing changed. Example: {EXAMPLE}")
    with ctx.db.session() as session:
        check_free(session, ws_id, name)
        settings = read_settings(session, ws_id, fields, None)
        row = Audience(workspace_id=ws_id, name=name, timezone=settings.timezone, language=settings.language,
                       link=settings.link, country=settings.country, notes=settings.notes,
                       created_at=ctx.clock.now())
        session.add(row)
        flush_name(session, name)
        assert row.id is not None
        store_accounts(session, row.id, settings.accounts)
        session.flush()
        audit(session, ctx, ws_id, None, req.actor_name, "audience", f"{name} added: {describe(settings)}")
        lines = card(ctx, session, row)
    return Reply("\n".join([f"Added audience {name}.", *lines[1:],
                            f"Target it with audience:{name}; /audience edit {name} key=value… changes it."]))


def edit(req: Request, rest: str) -> Reply:
    ctx, ws_id = req.ctx, req.need_workspace()
    req.require_role(ADMINS, "change audiences")
    raw_name, fields = name_and_fields(rest, USAGE_EDIT)
    if not fields:
        raise UserError(f"What should change? Usage: {USAGE_EDIT}\nExample: /audience edit {raw_name.lower()} "
                        "tz=Atlantic/Canary accounts=+acme-fr")
    with ctx.db.session() as session:
        row = get_audience(session, ws_id, raw_name)
        assert row.id is not None
        old_name = row.name
        new_name = check_name(fields.pop("name")) if "name" in fields else old_name
        if new_name != old_name:
            check_free(session, ws_id, new_name, keep=row.id)
        before = Fields(audience_accounts(session, row.id), row.timezone, row.language, row.link, row.country,
                        row.notes)
        after = read_settings(session, ws_id, fields, before)
        changes = [f"name {old_name} → {new_name}"] if new_name != old_name else []
        for key, old, new in (
            ("accounts", ", ".join(a.name for a in before.accounts), ", ".join(a.name for a in after.accounts)),
            ("tz", before.timezone, after.timezone), ("lang", before.language, after.language),
            ("link", before.link, after.link), ("country", before.country, after.country),
            ("notes", before.notes, after.notes),
        ):
            if old != new:
                changes.append(f"{key} {old or 'none'} → {new or 'none'}")
        if not changes:
            raise UserError(f"That's how {old_name} already is; nothing changed. /audience {old_name} shows it.")
        row.name, row.timezone, row.language = new_name, after.timezone, after.language
        row.link, row.country, row.notes = after.link, after.country, after.notes
        if [a.id for a in after.accounts] != [a.id for a in before.accounts]:
            store_accounts(session, row.id, after.accounts)
        flush_name(session, new_name)
        audit(session, ctx, ws_id, None, req.actor_name, "audience", f"{old_name} changed: {'; '.join(changes)}")
        lines = card(ctx, session, row)
        waiting = waiting_posts(session, row.id) if after.timezone != before.timezone else []
    notes = [f"Changed audience {new_name}: {'; '.join(changes)}.", *lines[1:]]
    if waiting:  # their times were worked out in the old zone when they were scheduled
        ids = ", ".join(f"#{post.id}" for post, _ in waiting)
        notes.append(f"Posts already scheduled for it keep their times ({ids}); schedule them again to follow "
                     f"{after.timezone}.")
    return Reply("\n".join(notes))


def remove(req: Request, rest: str) -> Reply:
    ctx, ws_id = req.ctx, req.need_workspace()
    req.require_role(ADMINS, "remove audiences")
    words = rest.split()
    if len(words) != 1:
        raise UserError("Which audience? Usage: /audience remove <name>, e.g. /audience remove south. Nothing changed.")
    with ctx.db.session() as session:
        row = get_audience(session, ws_id, words[0])
        assert row.id is not None
        name = row.name
        waiting = waiting_posts(session, row.id)
        if waiting:
            first = waiting[0][0].id
            raise UserError(
                f"Audience {name} is still targeted by posts that haven't gone out:\n"
                + "\n".join(post_lines(waiting, row.timezone))
                + f"\nNothing changed. Take audience:{name} off each with /targets <post> … (e.g. /targets {first} "
                f"followed by the targets it keeps), or /cancel the post; then /audience remove {name} again."
            )
        row.removed_at = ctx.clock.now()
        row.name = f"{name}{REMOVED_MARK}{row.id}"  # frees the name (see the module's docstring)
        audit(session, ctx, ws_id, None, req.actor_name, "audience", f"{name} removed")
    return Reply(f"Removed audience {name}. Reports of posts that reached it still show it, and the name {name} "
                 "is free again.")
