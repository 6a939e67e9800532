"""The evergreen queue (/evergreen): published posts Herald posts again, into the accounts' free posting slots.

Every few minutes (`fill_evergreen`) each account with posting slots (/slots) gets its free slots of the next day
filled from the library: a post goes again to an account it was published on, at most once per cooldown (default
30 days) and at most `cycles` times, the posts taking turns (the least recently run first). A repost rotates
through the post's wordings (as first published, then those of /evergreen vary) and never sends a text identical
to one the account posted within its network's duplicate window (the connector's profile says how long): it says
it differently, or skips the post and tells the team. A paused workspace (/pause) gets nothing.

Each repost is an ordinary post for that one account, created scheduled for the slot (a wording the approvers
haven't seen goes to them first). The `EvergreenRun` row's unique (account, slot) is the claim: one repost per
slot however many workers fill at once, written in one transaction with its post.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from handlers.core.access import ALL_ROLES, EDITORS
from handlers.core.audit import audit
from handlers.core.chat import Reply
from handlers.core.commands import Request, command, periodic
from handlers.core.context import Context
from handlers.core.errors import UserError
from handlers.core.lookups import account_rules, get_post, get_workspace, parse_post_id
from handlers.core.notices import send_once, tell_team
from handlers.core.when import show_time
from handlers.core.words import short_text, state_label
from handlers.posts.cards import approval_card
from handlers.posts.drafts import MAX_TEXT
from handlers.posts.editing import set_targets
from handlers.posts.render import render, variant_for
from handlers.posts.rules import UNAPPROVED, rearm
from handlers.posts.scheduling import slot_times
from handlers.posts.shortlinks import without_codes
from storage.models import (
    Account,
    Delivery,
    DeliveryState,
    EvergreenItem,
    EvergreenRun,
    MetricSnapshot,
    Post,
    PostState,
    Workspace,
    move_post,
)

log = logging.getLogger("herald.evergreen")

FILL_EVERY = timedelta(minutes=10)
LOOKAHEAD = timedelta(days=1)  # how far ahead free slots are filled
DEFAULT_COOLDOWN_DAYS = 30
MAX_COOLDOWN_DAYS = 365
MAX_CYCLES = 100
WAITING = (*UNAPPROVED, PostState.APPROVED, PostState.SCHEDULED, PostState.PUBLISHING)
LIBRARY_STATES = (PostState.PUBLISHED, PostState.PARTIALLY_PUBLISHED)
USAGE = "/evergreen [list | add <post> [cooldown=30d] [cycles=5] | remove <post> | vary <post> <text>]"


def same_text(a: str, b: str, public_url: str | None = None) -> bool:
    """Identical as a network sees a duplicate: the same words, whatever the spacing and case. Herald's own short
    links (`public_url`/r/<code>) count as the link they stand for: a repost gets a new code for the same link,
    and the same words with another code are still the same post to the people who read it."""
    def plain(text: str) -> str:
        return " ".join(without_codes(public_url, text).split()).casefold()
    return plain(a) == plain(b)


def wordings(item: EvergreenItem, source: Post, account: Account) -> list[str]:
    """The texts a repost to `account` rotates through: as first published to it, then the other wordings."""
    return [variant_for(source, account), *item.texts]


def repost(source: Post, text: str) -> Post:
    """A repost of `source` saying `text` (not saved): its link, campaign, media, a thread's later parts and its first
    comment; no variants (`text` is already the account's own wording, `wordings`)."""
    return Post(workspace_id=source.workspace_id, author_platform=source.author_platform,
                author_user_id=source.author_user_id, author_name=source.author_name, text=text, link=source.link,
                campaign=source.campaign, media=list(source.media), variants={}, parts=list(source.parts),
                comment=source.comment)


@dataclass(frozen=True)
class Choice:
    """What a slot gets: a library post and its wording, and why this wording when it isn't the next in turn."""

    item_id: int
    wording: int
    text: str
    why: str = ""


@dataclass(frozen=True)
class Skip:
    """A library post due for the slot whose every wording would repeat a recent post of the account."""

    item_id: int
    key: str
    notice: str


def recent_texts(ctx: Context, session: Session, account: Account, ws: Workspace,
                 since: datetime) -> list[tuple[str, datetime]]:
    """What the account posted since `since` (as sent) and what waits to go to it (as it will be sent)."""
    sent = session.exec(
        select(Delivery.text, Delivery.sent_at).where(Delivery.account_id == account.id)
        .where(Delivery.state == DeliveryState.SENT.value).where(col(Delivery.sent_at) >= since)
    ).all()
    texts = [(text, at) for text, at in sent if text is not None and at is not None]
    waiting = session.exec(
        select(Post).join(Delivery, col(Delivery.post_id) == col(Post.id)).where(Delivery.account_id == account.id)
        .where(col(Post.state).in_([s.value for s in WAITING]))
    ).all()
    texts += [(render(ctx, post, account, ws, checked=False).text, post.due_at or since) for post in waiting]
    return texts


def choose(ctx: Context, session: Session, ws: Workspace, account: Account, slot: datetime) -> tuple[Choice | None, list[Skip]]:
    """The library post and wording for one free slot of `account`, and the posts skipped because every wording
    of theirs would repeat a recent post (None: nothing is due)."""
    items = session.exec(select(EvergreenItem).where(EvergreenItem.workspace_id == ws.id)
                         .where(col(EvergreenItem.active).is_(True)).order_by(col(EvergreenItem.id))).all()
    due: list[tuple[datetime, EvergreenItem, Post, list[EvergreenRun]]] = []
    for item in items:
        sent_at = session.exec(
            select(Delivery.sent_at).where(Delivery.post_id == item.post_id).where(Delivery.account_id == account.id)
            .where(Delivery.state == DeliveryState.SENT.value)
        ).first()
        if sent_at is None:
            continue  # it was never published on this account
        runs = list(session.exec(select(EvergreenRun).where(EvergreenRun.item_id == item.id)
                                 .where(EvergreenRun.account_id == account.id)
                                 .order_by(col(EvergreenRun.slot_at))).all())
        if item.max_cycles and len(runs) >= item.max_cycles:
            continue
        last = max([sent_at, *(r.slot_at for r in runs if r.slot_at is not None)])
        if slot < last + timedelta(days=item.cooldown_days):
            continue
        source = session.get(Post, item.post_id)
        if source is not None:
            due.append((last, item, source, runs))
    profile = ctx.networks.profile(account_rules(account)) or ctx.networks.profile(account.network)
    window = profile.duplicate_window if profile is not None else None
    label = profile.label if profile is not None else account.network
    recent = recent_texts(ctx, session, account, ws, slot - window) if window else []
    skips: list[Skip] = []
    for _last, item, source, runs in sorted(due, key=lambda d: (d[0], d[1].id or 0)):  # the longest rested first
        texts = wordings(item, source, account)
        start = ((runs[-1].wording if runs else 0) + 1) % len(texts)
        clashes: list[tuple[int, datetime]] = []
        for step in range(len(texts)):
            index = (start + step) % len(texts)
            full = render(ctx, repost(source, texts[index]), account, ws, checked=False).text
            clash = next((at for text, at in recent if same_text(text, full, ctx.public_url)), None)
            if clash is None:
                why = "" if not clashes else (
                    f" It says it differently: wording {clashes[0][0] + 1} went to {account.name} on "
                    f"{show_time(clashes[0][1], ws.timezone)}, and {label} refuses an identical post within "
                    f"{window.days if window else 0} days.")
                return Choice(item.id or 0, index, texts[index], why), skips
            clashes.append((index, clash))
        assert window is not None
        key = f"evergreen-skip:{item.id}:{account.id}:{runs[-1].id if runs else 0}"
        skips.append(Skip(item.id or 0, key, (
            f"⏭ Evergreen: #{source.id} isn't posted again on {account.name} for now: each of its {len(texts)} "
            f"wording(s) went to {account.name} within the last {window.days} days (last on "
            f"{show_time(max(at for _i, at in clashes), ws.timezone)}), and {label} refuses an identical post "
            f"within {window.days} days. Its slots go to other posts; /evergreen vary {source.id} <text> adds "
            "another wording.")))
    return None, skips


def create_run(ctx: Context, ws_id: int, account_id: int, slot: datetime, choice: Choice) -> tuple[int, Reply] | None:
    """The repost of one slot, written with its EvergreenRun in one transaction; None if the slot was taken (by
    another worker) meanwhile. Returns its number and the team's notice (an approval card when it needs one)."""
    now = ctx.clock.now()
    try:
        with ctx.db.session() as session:
            ws = get_workspace(session, ws_id)
            item = session.get(EvergreenItem, choice.item_id)
            account = session.get(Account, account_id)
            assert item is not None and account is not None
            source = session.get(Post, item.post_id)
            assert source is not None
            tz = account.timezone or ws.timezone
            post = repost(source, choice.text)
            post.due_at, post.due_tz, post.created_at, post.updated_at = slot, tz, now, now
            session.add(post)
            session.flush()
            set_targets(session, post, [account])
            runs = len(session.exec(select(EvergreenRun.id).where(EvergreenRun.item_id == item.id)
                                    .where(EvergreenRun.account_id == account_id)).all()) + 1
            session.add(EvergreenRun(item_id=item.id or 0, account_id=account_id, slot_at=slot, post_id=post.id or 0,
                                     wording=choice.wording, created_at=now))
            # the wording as first published was approved then; another one goes to the approvers first
            approved = choice.wording == 0 or ws.approvals_needed == 0
            if approved:
                move_post(post, PostState.APPROVED)
                move_post(post, PostState.SCHEDULED)
            else:
                move_post(post, PostState.IN_REVIEW)
            of = f" of {item.max_cycles}" if item.max_cycles else ""
            wording = f"wording {choice.wording + 1} of {len(item.texts) + 1}"
            audit(session, ctx, ws_id, post.id, "Herald", "evergreen",
                  f"repost {runs}{of} of #{source.id} on {account.name}, {wording}")
            session.flush()
            headline = (f"♻️ Evergreen: #{source.id} goes out again on {account.name} at {show_time(slot, tz, now)} "
                        f"as #{post.id} (run {runs}{of}, {wording}).{choice.why}")
            notice = Reply(headline) if approved else approval_card(
                ctx, session, post, ws, f"{headline} This wording needs approval ({ws.approvals_needed} needed).")
            post_id = post.id or 0
    except IntegrityError:
        return None  # another worker filled that slot: the unique (account, slot) holds
    with ctx.db.session() as session:
        made = session.get(Post, post_id)
        if made is not None:
            rearm(ctx, made, get_workspace(session, ws_id))
    return post_id, notice


def free_slots(session: Session, ws: Workspace, account: Account, now: datetime) -> list[datetime]:
    """The account's slots of the next LOOKAHEAD that no waiting post and no repost takes."""
    taken = set(session.exec(
        select(Post.due_at).join(Delivery, col(Delivery.post_id) == col(Post.id))
        .where(Delivery.account_id == account.id).where(col(Post.state).in_([s.value for s in WAITING]))
        .where(col(Post.due_at).is_not(None))
    ).all())
    taken |= set(session.exec(select(EvergreenRun.slot_at).where(EvergreenRun.account_id == account.id)
                              .where(col(EvergreenRun.slot_at) > now)).all())
    return [at for at in slot_times(account, ws, now, LOOKAHEAD.days)
            if now + timedelta(minutes=1) < at <= now + LOOKAHEAD and at not in taken]


async def fill_workspace(ctx: Context, ws_id: int) -> int:
    """Fill the free slots of one workspace's accounts from its library; returns how many reposts were made."""
    now = ctx.clock.now()
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        if ws.paused:
            return 0  # /pause: nothing new is queued until /resume
        accounts = [a for a in session.exec(select(Account).where(Account.workspace_id == ws_id)
                                            .order_by(col(Account.name))).all() if a.slot_list()]
        slots = [(a.id or 0, at) for a in accounts for at in free_slots(session, ws, a, now)]
    made = 0
    for account_id, slot in sorted(slots, key=lambda s: s[1]):
        with ctx.db.session() as session:
            ws = get_workspace(session, ws_id)
            account = session.get(Account, account_id)
            if ws.paused or account is None:
                continue
            choice, skips = choose(ctx, session, ws, account, slot)
        for skip in skips:
            await send_once(ctx, skip.key, ws_id, Reply(skip.notice))
        if choice is None:
            continue
        result = create_run(ctx, ws_id, account_id, slot, choice)
        if result is not None:
            made += 1
            # after the commit: a crash in between loses the notice, never makes a repost twice
            await tell_team(ctx, ws_id, result[1], purpose="team" if not result[1].buttons else "approvals")
    return made


@periodic("evergreen", every=FILL_EVERY)
async def fill_evergreen(ctx: Context) -> int:
    """Fill every workspace's free posting slots from its evergreen library; returns how many reposts were made."""
    with ctx.db.session() as session:
        ws_ids = sorted(set(session.exec(select(EvergreenItem.workspace_id)
                                         .where(col(EvergreenItem.active).is_(True))).all()))
    made = 0
    for ws_id in ws_ids:
        try:
            made += await fill_workspace(ctx, ws_id)
        except Exception:  # one workspace's failure must not stop the others
            log.exception("evergreen slots of workspace %s could not be filled", ws_id)
    return made


def numbers(session: Session, post_id: int) -> str:
    """A repost's latest numbers (likes, comments, shares, impressions), or that it has none yet."""
    snapshot = session.exec(
        select(MetricSnapshot).join(Delivery, col(Delivery.id) == col(MetricSnapshot.delivery_id))
        .where(Delivery.post_id == post_id).order_by(col(MetricSnapshot.taken_at).desc())
    ).first()
    if snapshot is None:
        return "no numbers yet"
    parts = [f"{getattr(snapshot, name)} {name}" for name in ("likes", "comments", "shares", "impressions")
             if getattr(snapshot, name) is not None]
    return ", ".join(parts) or "no numbers yet"


def library(session: Session, ws: Workspace, now: datetime) -> str:
    items = session.exec(select(EvergreenItem).where(EvergreenItem.workspace_id == ws.id)
                         .where(col(EvergreenItem.active).is_(True)).order_by(col(EvergreenItem.id))).all()
    if not items:
        return "The evergreen library is empty. /evergreen add <post> puts a published post in it."
    lines = [f"♻️ Evergreen library ({len(items)} post(s)), filling the free /slots of the next day:"]
    if ws.paused:
        lines.append("⏸ Publishing is paused: no repost is queued until /resume.")
    for item in items:
        source = session.get(Post, item.post_id)
        assert source is not None
        cycles = f", at most {item.max_cycles} times per account" if item.max_cycles else ""
        lines.append(f"#{source.id} {short_text(source.text, 40)} · every {item.cooldown_days} days or more{cycles} · "
                     f"{len(item.texts) + 1} wording(s)")
        runs = session.exec(select(EvergreenRun, Account, Post).where(EvergreenRun.item_id == item.id)
                            .where(col(EvergreenRun.account_id) == col(Account.id))
                            .where(col(EvergreenRun.post_id) == col(Post.id))
                            .order_by(col(EvergreenRun.slot_at), col(Account.name))).all()
        if not runs:
            lines.append("  no run yet")
        for run, account, post in runs:
            lines.append(f"  {show_time(run.slot_at, post.due_tz or ws.timezone, now)} · {account.name} · #{post.id} "
                         f"{state_label(post)} · wording {run.wording + 1} · {numbers(session, post.id or 0)}")
    return "\n".join(lines)


def parse_options(words: list[str]) -> dict[str, int]:
    options: dict[str, int] = {}
    for word in words:
        key, sep, value = word.partition("=")
        key = key.lower()
        if not sep or key not in ("cooldown", "cycles") or key in options:
            raise UserError(f"'{word}' isn't an option here. Usage: {USAGE}. Nothing changed.")
        if key == "cooldown":
            m = re.fullmatch(r"(\d{1,3})\s*(d|days?)?", value.strip().lower())
            if m is None or not 1 <= int(m.group(1)) <= MAX_COOLDOWN_DAYS:
                raise UserError(f"cooldown= takes days from 1 to {MAX_COOLDOWN_DAYS}, like cooldown=30d. Nothing changed.")
            options[key] = int(m.group(1))
        else:
            if not value.isdigit() or int(value) > MAX_CYCLES:
                raise UserError(f"cycles= takes a number from 0 (no limit) to {MAX_CYCLES}. Nothing changed.")
            options[key] = int(value)
    return options


def library_post(session: Session, ws_id: int, token: str) -> Post:
    return get_post(session, ws_id, parse_post_id(token, USAGE))


@command(
    "evergreen",
    usage=USAGE, example="/evergreen add 12 cooldown=30d cycles=5",
    summary="the evergreen library: published posts Herald posts again into free posting slots",
    details=(
        "/evergreen lists the library with each post's runs and their numbers. add <post> puts a published post "
        f"in it (cooldown= days between two runs on an account, default {DEFAULT_COOLDOWN_DAYS}; cycles= runs per "
        "account at most, 0 = no limit); remove <post> takes it out (its reposts still waiting are cancelled); "
        "vary <post> <text> adds a wording the reposts take turns with. Herald fills the free /slots of the next "
        "day, never sends an account a text identical to one it posted within its network's duplicate window (it "
        "says it differently or skips and tells you), and queues nothing while /pause is on. Everyone may read the "
        "library; admins and editors change it."
    ),
    roles=ALL_ROLES,
    group="Posts",
)
async def evergreen(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    words = req.words
    now = ctx.clock.now()
    if not words or (len(words) == 1 and words[0].lower() == "list"):
        with ctx.db.session() as session:
            return Reply(library(session, get_workspace(session, ws_id), now))
    verb = words[0].lower()
    if verb not in ("add", "remove", "vary"):
        raise UserError(f"'{words[0]}' isn't something /evergreen does. Usage: {USAGE}")
    req.require_role(EDITORS, "change the evergreen library")
    if len(words) < 2:
        raise UserError(f"Which post? Usage: {USAGE}")
    if verb == "add":
        return add(req, ws_id, words[1], parse_options(words[2:]))
    if verb == "remove":
        return remove(req, ws_id, words[1])
    return vary(req, ws_id, words[1], req.command.text.strip().split(None, 2)[2:])


def add(req: Request, ws_id: int, token: str, options: dict[str, int]) -> Reply:
    ctx = req.ctx
    with ctx.db.session() as session:
        post = library_post(session, ws_id, token)
        if PostState(post.state) not in LIBRARY_STATES:
            raise UserError(f"#{post.id} is {state_label(post)}; only a published post goes in the evergreen library. "
                            "Nothing changed.")
        run = session.exec(select(EvergreenRun).where(EvergreenRun.post_id == post.id)).first()
        if run is not None:
            origin = session.get(EvergreenItem, run.item_id)
            raise UserError(f"#{post.id} is a repost of #{origin.post_id if origin else '?'}, which is the one in the "
                            "library. Nothing changed.")
        accounts = session.exec(select(Account).join(Delivery, col(Delivery.account_id) == col(Account.id))
                                .where(Delivery.post_id == post.id)
                                .where(Delivery.state == DeliveryState.SENT.value).order_by(col(Account.name))).all()
        item = session.exec(select(EvergreenItem).where(EvergreenItem.post_id == post.id)).first()
        if item is not None and item.active:
            raise UserError(f"#{post.id} is in the evergreen library already. /evergreen lists it. Nothing changed.")
        if item is None:
            item = EvergreenItem(workspace_id=ws_id, post_id=post.id or 0, cooldown_days=DEFAULT_COOLDOWN_DAYS,
                                 added_by=req.actor_name, added_at=ctx.clock.now())
            session.add(item)
        item.active = True
        item.cooldown_days = options.get("cooldown", item.cooldown_days)
        item.max_cycles = options.get("cycles", item.max_cycles)
        audit(session, ctx, ws_id, post.id, req.actor_name, "evergreen",
              f"added: cooldown {item.cooldown_days} days, cycles {item.max_cycles or 'no limit'}")
        slotless = [a.name for a in accounts if not a.slot_list()]
        cycles = f", at most {item.max_cycles} times per account" if item.max_cycles else ""
        text = (f"♻️ #{post.id} is in the evergreen library: it goes again to {', '.join(a.name for a in accounts)} "
                f"in free posting slots, every {item.cooldown_days} days or more{cycles}.")
        if slotless:
            verb = "has" if len(slotless) == 1 else "have"
            text += f"\n{', '.join(slotless)} {verb} no posting slots yet: /slots {slotless[0]} 10:00 sets one."
        if get_workspace(session, ws_id).paused:
            text += "\n⏸ Publishing is paused: nothing is queued until /resume."
    return Reply(text)


def remove(req: Request, ws_id: int, token: str) -> Reply:
    ctx = req.ctx
    cancelled = []
    with ctx.db.session() as session:
        post = library_post(session, ws_id, token)
        item = session.exec(select(EvergreenItem).where(EvergreenItem.post_id == post.id)).first()
        if item is None or not item.active:
            raise UserError(f"#{post.id} isn't in the evergreen library. /evergreen lists it. Nothing changed.")
        item.active = False
        ws = get_workspace(session, ws_id)
        waiting = session.exec(select(Post).join(EvergreenRun, col(EvergreenRun.post_id) == col(Post.id))
                               .where(EvergreenRun.item_id == item.id)
                               .where(col(Post.state).in_([s.value for s in (*UNAPPROVED, PostState.APPROVED,
                                                                               PostState.SCHEDULED)]))).all()
        for repost_post in waiting:
            move_post(repost_post, PostState.CANCELLED)
            rearm(ctx, repost_post, ws)
            cancelled.append(f"#{repost_post.id}")
        audit(session, ctx, ws_id, post.id, req.actor_name, "evergreen", "removed")
    gone = f" Its waiting reposts {', '.join(cancelled)} are cancelled." if cancelled else ""
    return Reply(f"#{post.id} is out of the evergreen library.{gone}")


def vary(req: Request, ws_id: int, token: str, rest: list[str]) -> Reply:
    ctx = req.ctx
    text = rest[0].strip() if rest else ""
    if not text:
        raise UserError(f"What should the other wording say? /evergreen vary {token} <text>. Nothing changed.")
    if len(text) > MAX_TEXT:
        raise UserError(f"That wording is {len(text)} characters; Herald keeps texts up to {MAX_TEXT}. Nothing changed.")
    with ctx.db.session() as session:
        post = library_post(session, ws_id, token)
        item = session.exec(select(EvergreenItem).where(EvergreenItem.post_id == post.id)).first()
        if item is None or not item.active:
            raise UserError(f"#{post.id} isn't in the evergreen library: /evergreen add {post.id} first. Nothing changed.")
        ws = get_workspace(session, ws_id)
        accounts = session.exec(select(Account).join(Delivery, col(Delivery.account_id) == col(Account.id))
                                .where(Delivery.post_id == post.id).order_by(col(Account.name))).all()
        if any(same_text(text, t) for t in [post.text, *item.texts]):
            raise UserError(f"#{post.id} has that wording already. Nothing changed.")
        bad = []
        for account in accounts:
            check = render(ctx, repost(post, text), account, ws).check
            if check is not None and not check.ok:
                bad.append(f"  {account.name}: {check.line()}")
        if bad:
            raise UserError("That wording doesn't fit every account:\n" + "\n".join(bad) + "\nNothing changed.")
        item.texts = [*item.texts, text]
        audit(session, ctx, ws_id, post.id, req.actor_name, "evergreen", f"wording {len(item.texts) + 1} added")
        needs = " Reposts in a new wording go to the approvers first." if ws.approvals_needed else ""
        return Reply(f"♻️ #{post.id} has {len(item.texts) + 1} wordings now; its reposts take turns with them.{needs}")
