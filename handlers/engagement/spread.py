"""How far a post spreads: who shared or quoted each published post, the reach through them, big-account alerts,
and /spread.

- `read_spread` (the clock, every few minutes) follows the metrics cadence: a delivery's sharers are read when a new
  metrics reading (handlers/engagement/metrics.py) shows shares or quotes and their number changed since the last
  time its sharers were read. One read per reading, whichever worker claims it (a SentOnce key). Each account
  takes no more than its connector's share budget (`NetworkProfile.share_budget`, counted in ShareReading rows
  every worker sees); a 429 stores the wait the network named (RATE_LIMIT_WAIT when it names none) and the
  account's share reads wait until then. Networks whose API doesn't say who shared (no share budget in their
  profile; their connector answers "can't tell") are skipped.
- Each sharer is one Amplifier row per post and person on a network (read again, brought up to date; a direct
  share is kept over a quote of a quote, a quote over a repost). Quotes of quotes are kept one level down
  (`via`).
- Reach through shares = the sum of the sharers' followers: an upper bound, since people who follow several
  sharers are counted once per sharer and not every follower sees a share.
- A sharer with at least Workspace.spread_alert_followers followers alerts the team once: who, how many
  followers, what they said, its tone from the watch words (complaint) and praise words (praise) or "unknown",
  with a Reply button (the quote joins the inbox, so /reply and its approvals answer it) and a button that starts
  crisis mode (`/crisis start <reason>`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from handlers.core.access import ADMINS, EDITORS
from handlers.core.audit import audit
from handlers.core.chat import Button, Reply, theirs
from handlers.core.commands import Request, command, periodic
from handlers.core.context import Context
from handlers.core.errors import UserError
from handlers.core.lookups import account_view, get_post, get_workspace, parse_post_id, post_targets
from handlers.core.notices import claim_once
from handlers.core.ports import CANT_TELL, ErrorKind, Networks, PublishError, ReadBudget, Share
from handlers.core.when import format_when
from handlers.engagement.alerts import first_words, fold, parse_words, tell_alert_chats, watch_hits, word_list
from handlers.engagement.inbox import insert_items
from handlers.workspace.health import DEAD, fresh_view
from storage.crypto import SecretBoxError
from storage.models import (
    Account,
    Amplifier,
    Delivery,
    DeliveryState,
    InboxItem,
    MetricSnapshot,
    Post,
    ShareKind,
    ShareReading,
    Workspace,
)

log = logging.getLogger("herald.spread")

RUN_EVERY = timedelta(minutes=5)
LOOKBACK = timedelta(hours=2)  # metric readings this recent can call for a share read
RATE_LIMIT_WAIT = timedelta(minutes=15)
TOP = 10  # amplifiers /spread lists
TOP_IN_REPORTS = 5  # amplifiers /spread (the last 7 days), /stats and /report list
TREE_MAX = 30  # lines of the share tree
DEFAULT_ALERT_FOLLOWERS = 10_000  # what Workspace.spread_alert_followers starts at (storage/models.py)
MAX_PRAISE_WORDS = 50
CRISIS_HANDLE_MAX = 24  # the crisis button's reason is short: a button's id holds 64 bytes on Telegram


# --- numbers people read ---------------------------------------------------------------------------------------


def compact(n: int) -> str:
    """120000 → '120k', 1250 → '1.3k', 2400000 → '2.4M', 950 → '950'."""
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if n >= size:
            value = n / size
            text = f"{value:.1f}" if value < 10 else f"{value:.0f}"
            return text.removesuffix(".0") + suffix
    return str(n)


def followers_words(n: int | None) -> str:
    if n is None:
        return "followers unknown"
    return f"{compact(n)} follower{'' if n == 1 else 's'}"


def engagement_words(n: int) -> str:
    return f"{n:,} engagement{'' if n == 1 else 's'}"


def share_budget(networks: Networks, network: str) -> ReadBudget | None:
    """How many posts' sharers an account of this network may read per window; None: the network can't tell."""
    profile = networks.profile(network)
    return profile.share_budget if profile is not None else None


# --- tone ------------------------------------------------------------------------------------------------------


def tone(ws: Workspace, text: str) -> str:
    """A quote's tone from the workspace's words: complaint (watch words), praise (praise words), or unknown."""
    complaint = watch_hits(text, word_list(ws.watch_words))
    praise = watch_hits(text, word_list(ws.praise_words))
    if complaint and praise:
        return f"mixed — watch words: {', '.join(complaint)}; praise words: {', '.join(praise)}"
    if complaint:
        return f"complaint — watch words: {', '.join(complaint)}"
    if praise:
        return f"praise — praise words: {', '.join(praise)}"
    return "unknown — it holds none of the watch words (/watch) or praise words (/spread praise)"


# --- reading ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Due:
    """A delivery whose sharers a new metrics reading calls for."""

    delivery_id: int
    post_id: int
    remote_id: str
    snapshot_id: int
    total: int


def find_due(session: Session, now: datetime) -> dict[int, list[Due]]:
    """Deliveries read lately whose shares + quotes changed since their sharers were last read: account → due."""
    rows = session.exec(
        select(MetricSnapshot, Delivery)
        .where(col(MetricSnapshot.delivery_id) == col(Delivery.id))
        .where(col(MetricSnapshot.taken_at) > now - LOOKBACK)
        .where(Delivery.state == DeliveryState.SENT.value).where(col(Delivery.remote_id).is_not(None))
        .order_by(col(MetricSnapshot.taken_at).desc(), col(MetricSnapshot.id).desc())
    ).all()
    latest: dict[int, tuple[MetricSnapshot, Delivery]] = {}
    for snap, delivery in rows:
        latest.setdefault(delivery.id or 0, (snap, delivery))
    last = last_totals(session, list(latest))
    due: dict[int, list[Due]] = defaultdict(list)
    growth: dict[int, int] = {}
    for snap, delivery in latest.values():
        total = (snap.shares or 0) + (snap.quotes or 0)
        if total <= 0 or last.get(delivery.id or 0) == total:
            continue
        growth[delivery.id or 0] = abs(total - last.get(delivery.id or 0, 0))
        due[delivery.account_id].append(Due(delivery.id or 0, delivery.post_id, delivery.remote_id or "",
                                            snap.id or 0, total))
    for dues in due.values():  # a tight budget goes first to the posts whose shares grew most
        dues.sort(key=lambda d: (-growth[d.delivery_id], d.delivery_id))
    return due


def last_totals(session: Session, delivery_ids: list[int]) -> dict[int, int]:
    """The shares + quotes each delivery showed when its sharers were last read."""
    totals: dict[int, int] = {}
    for start in range(0, len(delivery_ids), 500):
        rows = session.exec(
            select(ShareReading.delivery_id, ShareReading.total)
            .where(col(ShareReading.delivery_id).in_(delivery_ids[start:start + 500]))
            .where(col(ShareReading.total).is_not(None))
            .order_by(col(ShareReading.taken_at), col(ShareReading.id))
        ).all()
        for delivery_id, total in rows:  # in time order: the last one stays
            if delivery_id is not None and total is not None:
                totals[delivery_id] = total
    return totals


def reads_left(session: Session, networks: Networks, account: Account, now: datetime) -> int:
    """How many more deliveries' sharers the account's share budget allows now (0 while a 429's wait runs)."""
    waiting = session.exec(
        select(func.count()).select_from(ShareReading).where(ShareReading.account_id == account.id)
        .where(col(ShareReading.wait_until) > now)
    ).one()
    if waiting:
        return 0
    budget = share_budget(networks, account.network)
    if budget is None:
        return 0
    used = session.exec(
        select(func.count()).select_from(ShareReading).where(ShareReading.account_id == account.id)
        .where(col(ShareReading.delivery_id).is_not(None))
        .where(col(ShareReading.taken_at) > now - budget.window)
    ).one()
    return max(0, budget.posts - int(used))


def rank(kind: str, via: str) -> tuple[int, int]:
    """Which share of one person a post keeps: a direct one over a quote of a quote, then a quote over a repost."""
    return (0 if via else 1, 1 if kind == ShareKind.QUOTE.value else 0)


def amplifier_row(session: Session, delivery: Delivery, account: Account, who: str, now: datetime) -> Amplifier:
    """The post's row for this person on the network, made (by this worker or another) if it wasn't there."""
    table: Any = Amplifier.__table__  # type: ignore[attr-defined]
    values = {"workspace_id": account.workspace_id, "post_id": delivery.post_id, "delivery_id": delivery.id,
              "network": account.network, "who": who, "handle": "", "kind": ShareKind.REPOST.value,
              "remote_id": "", "text": "", "via": "", "first_seen_at": now, "updated_at": now}
    inserts: dict[str, Any] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
    insert = inserts.get(session.get_bind().dialect.name)
    if insert is not None:  # another worker may store the same person for the same post at the same time
        session.execute(insert(table).values(**values).on_conflict_do_nothing(
            index_elements=["post_id", "network", "who"]))
    else:
        try:
            with session.begin_nested():
                session.execute(table.insert().values(**values))
        except IntegrityError:
            pass
    return session.exec(select(Amplifier).where(Amplifier.post_id == delivery.post_id)
                        .where(Amplifier.network == account.network).where(Amplifier.who == who)).one()


def store_shares(session: Session, delivery: Delivery, account: Account, shares: list[Share],
                 now: datetime) -> list[int]:
    """Keep the sharers of a delivery, one row per post and person on the network; the ids of the rows stored."""
    ids = []
    for share in shares:
        if not share.who:
            continue
        row = amplifier_row(session, delivery, account, share.who, now)
        fresh = not row.handle
        row.handle = clean(share.handle) or row.handle
        if share.followers is not None:
            row.followers = share.followers
        if fresh or rank(share.kind.value, share.via) >= rank(row.kind, row.via):
            row.kind, row.via, row.delivery_id = share.kind.value, share.via, delivery.id or row.delivery_id
            row.shared_at = share.at or row.shared_at
            row.remote_id, row.text = share.remote_id, clean(share.text)
            row.url = share.url or row.url
            row.engagement = share.engagement
        row.updated_at = now
        session.add(row)
        session.flush()
        ids.append(row.id or 0)
    return ids


def clean(text: str) -> str:
    """Someone else's words as PostgreSQL stores them (it refuses NUL characters)."""
    return text.replace("\x00", "")


async def read_account(ctx: Context, account_id: int, dues: list[Due], now: datetime) -> list[int]:
    """Read the sharers of one account's due deliveries within its budget; the Amplifier ids stored."""
    with ctx.db.session() as session:
        account = session.get(Account, account_id)
        if account is None or account.health == DEAD:
            return []
        take = reads_left(session, ctx.networks, account, now)
        try:
            view = account_view(ctx, account, with_secrets=True)
        except SecretBoxError as exc:
            log.warning("sharers of %s not read: %s", account.name, exc)
            return []
    network = ctx.networks.get(view.network)
    if network is None or network.profile.share_budget is None or take <= 0:
        return []  # no connector here, a network that doesn't say who shared, or the budget is spent
    try:
        view = await fresh_view(ctx, network, view)
    except PublishError as exc:
        log.warning("sharers of %s not read: %s", view.name, exc.reason)
        return []
    stored: list[int] = []
    for due in dues[:take]:
        if not claim_once(ctx, f"spread:{due.delivery_id}:{due.snapshot_id}"):
            continue  # another worker reads this one
        try:
            shares = await network.fetch_shares(view, due.remote_id)
        except PublishError as exc:
            if exc.kind == ErrorKind.RATE_LIMITED:
                wait = timedelta(seconds=exc.retry_after) if exc.retry_after else RATE_LIMIT_WAIT
                until = now + max(wait, timedelta(seconds=1))
                with ctx.db.session() as session:
                    session.add(ShareReading(account_id=account_id, taken_at=now, wait_until=until))
                log.warning("sharers of %s wait until %s: %s", view.name, until.isoformat(), exc.reason)
                return stored
            log.warning("sharers of a post on %s not read: %s", view.name, exc.reason)
            with ctx.db.session() as session:  # counts against the budget; the next metrics reading tries again
                session.add(ShareReading(account_id=account_id, delivery_id=due.delivery_id, taken_at=now))
            continue
        if shares is CANT_TELL:
            return stored  # this network doesn't say who shared: nothing to count
        assert isinstance(shares, list)
        with ctx.db.session() as session:
            delivery, account = session.get(Delivery, due.delivery_id), session.get(Account, account_id)
            if delivery is None or account is None:
                continue
            stored += store_shares(session, delivery, account, shares, now)
            session.add(ShareReading(account_id=account_id, delivery_id=due.delivery_id, taken_at=now,
                                     total=due.total, found=len(shares)))
    return stored


@periodic("spread", every=RUN_EVERY)
async def read_spread(ctx: Context) -> int:
    """Read the sharers the latest metrics call for, then alert the big ones; how many alerts went out."""
    now = ctx.clock.now()
    with ctx.db.session() as session:
        due = find_due(session, now)
    for account_id, dues in sorted(due.items()):
        try:
            await read_account(ctx, account_id, dues, now)
        except Exception:  # one account's trouble must not stop the others
            log.exception("sharers of account %s failed", account_id)
    return await alert_big_sharers(ctx)


# --- alerts ----------------------------------------------------------------------------------------------------


def crisis_button(handle: str, post_id: int) -> Button:
    """Starts crisis mode (`/crisis start <reason>`, as the alerts' crisis button does), the reason naming who and
    which post (the handle cut short so the button's id fits Telegram's 64 bytes)."""
    return Button("🚨 Start crisis mode", "crisis",
                  {"do": "start", "text": f"{handle[:CRISIS_HANDLE_MAX]} on #{post_id}"})


def quote_item(session: Session, amp: Amplifier, delivery: Delivery, now: datetime, hit: str | None) -> int:
    """The quote as an inbox item (already shown: the alert shows it), so /reply and its approvals can answer it;
    its item number."""
    insert_items(session, [{
        "workspace_id": amp.workspace_id, "delivery_id": delivery.id, "remote_id": amp.remote_id,
        "parent_remote_id": delivery.remote_id or "", "author": amp.handle[:200], "text": amp.text, "url": amp.url,
        "posted_at": amp.shared_at or now, "fetched_at": now, "forwarded_at": now, "watch_hit": hit}])
    return session.exec(select(InboxItem.id).where(InboxItem.delivery_id == delivery.id)
                        .where(InboxItem.remote_id == amp.remote_id)).one() or 0


def reach(session: Session, post_id: int) -> tuple[int, int, int, int]:
    """(sharers, their followers, second-degree sharers, their followers) of a post."""
    rows = session.exec(select(Amplifier.via, Amplifier.followers).where(Amplifier.post_id == post_id)).all()
    first = [f or 0 for via, f in rows if not via]
    second = [f or 0 for via, f in rows if via]
    return len(first), sum(first), len(second), sum(second)


def claim_alerts(ctx: Context) -> list[int]:
    """Amplifiers above their workspace's threshold not alerted yet, claimed for this worker (alerted_at set)."""
    now = ctx.clock.now()
    with ctx.db.session() as session:
        candidates = session.exec(
            select(Amplifier.id).join(Workspace, col(Workspace.id) == col(Amplifier.workspace_id))
            .where(col(Amplifier.updated_at) > now - LOOKBACK)  # read lately: news, not a backlog
            .where(col(Amplifier.alerted_at).is_(None)).where(col(Workspace.spread_alert_followers) > 0)
            .where(col(Amplifier.followers) >= col(Workspace.spread_alert_followers))
            .order_by(col(Amplifier.id))
        ).all()
        won = []
        for amp_id in candidates:
            result = session.execute(update(Amplifier).where(col(Amplifier.id) == amp_id)
                                     .where(col(Amplifier.alerted_at).is_(None)).values(alerted_at=now))
            if result.rowcount == 1:  # type: ignore[attr-defined]
                won.append(amp_id or 0)
    return won


async def alert_big_sharers(ctx: Context) -> int:
    """Alert each sharer above the workspace's threshold, once; how many alerts went out."""
    sent = 0
    for amp_id in claim_alerts(ctx):
        with ctx.db.session() as session:
            amp = session.get(Amplifier, amp_id)
            assert amp is not None
            ws = get_workspace(session, amp.workspace_id)
            post, delivery = session.get(Post, amp.post_id), session.get(Delivery, amp.delivery_id)
            if post is None or delivery is None:
                continue
            where = ctx.networks.label(amp.network)
            did = "quoted" if amp.kind == ShareKind.QUOTE.value else "reposted"
            what = f"{theirs(via_handle(session, amp))}'s quote of #{post.id}" if amp.via else f"#{post.id}"
            lines = [f"📣 {theirs(amp.handle)} ({followers_words(amp.followers)}) {did} {what} on {where}"
                     + (f": “{theirs(first_words(amp.text, 160))}”" if amp.kind == ShareKind.QUOTE.value
                        and amp.text.strip() else ".")]
            buttons = []
            if amp.kind == ShareKind.QUOTE.value:
                hits = watch_hits(amp.text, word_list(ws.watch_words))
                lines.append(f"  Tone: {tone(ws, amp.text)}.")
                numbers = f"{engagement_words(amp.engagement)} on the quote" if amp.engagement is not None else ""
                if numbers or amp.url:
                    lines.append("  " + " · ".join(x for x in (numbers, amp.url or "") if x))
                item = quote_item(session, amp, delivery, ctx.clock.now(), ", ".join(hits) or None)
                amp.inbox_item_id = item
                buttons.append(Button("↩ Reply", "reply", {"item": item},
                                      prompt=f"Your reply to {amp.handle} (approved first if your policy asks)"))
            elif amp.url:
                lines.append(f"  {amp.url}")
            count, followers, second, second_followers = reach(session, post.id or 0)
            lines.append(f"  #{post.id} — “{first_words(post.text)}”: {count} share(s) by others, reach through shares "
                         f"up to {followers:,} followers" + (f"; {second} quote(s) of quotes, up to "
                                                               f"{second_followers:,} more" if second else "")
                         + f". /spread {post.id} shows the share tree.")
            if amp.kind == ShareKind.QUOTE.value:
                lines.append(f"Answer with /reply {amp.inbox_item_id} <text> (approved first when your policy asks), "
                             "or start crisis mode with the button.")
            else:
                lines.append("Start crisis mode with the button if it is bad news.")
            buttons.append(crisis_button(amp.handle, post.id or 0))
            ws_id = ws.id or 0
        await tell_alert_chats(ctx, ws_id, Reply("\n".join(lines), buttons=tuple(buttons)))
        sent += 1
    return sent


def via_handle(session: Session, amp: Amplifier) -> str:
    """Who wrote the quote a second-degree sharer quoted."""
    quoted = session.exec(select(Amplifier.handle).where(Amplifier.post_id == amp.post_id)
                          .where(Amplifier.remote_id == amp.via)).first()
    return quoted or "someone"


# --- /spread ---------------------------------------------------------------------------------------------------


def amplifier_line(ctx: Context, amp: Amplifier, tz: str) -> str:
    did = "quoted" if amp.kind == ShareKind.QUOTE.value else "reposted"
    when = f", {format_when(amp.shared_at, tz)}" if amp.shared_at else ""
    said = f": “{theirs(first_words(amp.text, 80))}”" if amp.kind == ShareKind.QUOTE.value and amp.text else ""
    numbers = f" — {engagement_words(amp.engagement)}" if amp.engagement else ""
    return (f"  {theirs(amp.handle)} ({followers_words(amp.followers)}) {did} on {ctx.networks.label(amp.network)}"
            f"{when}{said}{numbers}")


def share_tree(ctx: Context, session: Session, post: Post) -> list[str]:
    """The post on each account, its sharers under it, and the quotes of their quotes one level down."""
    rows = list(session.exec(select(Amplifier).where(Amplifier.post_id == post.id)
                             .order_by(col(Amplifier.followers).desc().nulls_last(), col(Amplifier.id))).all())
    under: dict[str, list[Amplifier]] = defaultdict(list)
    for amp in rows:
        if amp.via:
            under[amp.via].append(amp)
    lines: list[str] = []
    for delivery, account in post_targets(session, post):
        direct = [a for a in rows if not a.via and a.delivery_id == delivery.id]
        if not direct:
            continue
        lines.append(f"  #{post.id} on {account.name} ({ctx.networks.label(account.network)})")
        for n, amp in enumerate(direct):
            last = n == len(direct) - 1
            did = "quoted" if amp.kind == ShareKind.QUOTE.value else "reposted"
            lines.append(f"  {'└' if last else '├'} {theirs(amp.handle)} ({followers_words(amp.followers)}) {did}")
            for m, more in enumerate(under.get(amp.remote_id, []) if amp.remote_id else []):
                bar = " " if last else "│"
                end = "└" if m == len(under[amp.remote_id]) - 1 else "├"
                lines.append(f"  {bar}  {end} {theirs(more.handle)} ({followers_words(more.followers)}) quoted that")
    if len(lines) > TREE_MAX:
        lines = [*lines[:TREE_MAX], f"  … and {len(lines) - TREE_MAX} more lines"]
    return lines


def readable_networks(ctx: Context) -> str:
    """The networks whose connectors read who shared (their profiles carry a share budget)."""
    return ", ".join(p.label for p in ctx.networks.profiles() if p.share_budget is not None)


def post_spread(ctx: Context, session: Session, post: Post, ws: Workspace) -> Reply:
    count, followers, second, second_followers = reach(session, post.id or 0)
    head = f"📣 How far #{post.id} spread — “{first_words(post.text)}”"
    if not count and not second:
        live = post.published_at is not None
        why = (f"no one has shared or quoted it yet, as far as the networks say (Herald reads who shared on "
               f"{readable_networks(ctx)}, after each metrics reading that shows shares)." if live
               else "it isn't published yet.")
        return Reply(f"{head}\n  Nothing to show: {why}")
    kinds = session.exec(select(Amplifier.kind, func.count()).where(Amplifier.post_id == post.id)
                         .where(Amplifier.via == "").group_by(col(Amplifier.kind))).all()
    by_kind = {k: n for k, n in kinds}
    lines = [head,
             f"Shares by others: {count} ({by_kind.get('repost', 0)} repost(s), {by_kind.get('quote', 0)} quote(s)) · "
             f"reach through shares: up to {followers:,} followers (the sum of the sharers' followers: an upper bound, "
             "people who follow several of them count once for each)"]
    if second:
        lines.append(f"Quotes of quotes: {second}, up to {second_followers:,} more followers")
    top = session.exec(select(Amplifier).where(Amplifier.post_id == post.id)
                       .order_by(col(Amplifier.followers).desc().nulls_last(), col(Amplifier.id)).limit(TOP)).all()
    lines.append(f"Top amplifiers ({min(len(top), TOP)} of {count + second}):")
    lines += [amplifier_line(ctx, amp, ws.timezone) for amp in top]
    lines.append("Share tree:")
    lines += share_tree(ctx, session, post)
    return Reply("\n".join(lines))


@dataclass(frozen=True)
class PeriodSpread:
    """Shares by others in a period (by when Herald first saw them), for /stats, /report and /spread."""

    shares: int
    reach: int
    second: int
    top: tuple[Amplifier, ...]
    per_day: dict[str, dict[str, int]]  # network → {day (YYYY-MM-DD in the workspace zone): reach first seen then}


def period_spread(session: Session, workspace_id: int, start: datetime, end: datetime, *, tz: str = "UTC",
                  post_ids: list[int] | None = None) -> PeriodSpread:
    """The sharers Herald first saw in [start, end) (of these posts, when given)."""
    query = select(Amplifier).where(Amplifier.workspace_id == workspace_id) \
        .where(col(Amplifier.first_seen_at) >= start).where(col(Amplifier.first_seen_at) < end)
    if post_ids is not None:
        query = query.where(col(Amplifier.post_id).in_(post_ids))
    rows = list(session.exec(query).all())
    first = [a for a in rows if not a.via]
    days: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    zone = ZoneInfo(tz)
    for amp in first:
        assert amp.first_seen_at is not None
        days[amp.network][amp.first_seen_at.astimezone(zone).date().isoformat()] += amp.followers or 0
    top = sorted(rows, key=lambda a: (-(a.followers or 0), a.id or 0))[:TOP_IN_REPORTS]
    return PeriodSpread(len(first), sum(a.followers or 0 for a in first), len(rows) - len(first), tuple(top),
                        {network: dict(per_day) for network, per_day in days.items()})


async def spread_chart(ctx: Context, spread: PeriodSpread, start: datetime, end: datetime, tz: str) -> bytes | None:
    """Reach through shares per day and network (bars), drawn off the event loop; None without sharers or charts."""
    if ctx.charts is None or not spread.per_day:
        return None
    zone = ZoneInfo(tz)
    day, last = start.astimezone(zone).date(), (end - timedelta(microseconds=1)).astimezone(zone).date()
    labels = []
    while day <= last:
        labels.append(day.isoformat())
        day += timedelta(days=1)
    values = {ctx.networks.label(network): [float(per_day.get(label, 0)) for label in labels]
              for network, per_day in sorted(spread.per_day.items())}
    try:
        return await asyncio.to_thread(ctx.charts.bars, "Reach through shares per day (followers of new sharers)",
                                       [label[5:] for label in labels], values, ylabel="followers (upper bound)")
    except Exception:  # a chart that can't be drawn must not cost the team the numbers
        log.exception("the spread chart couldn't be drawn")
        return None


def spread_lines(ctx: Context, spread: PeriodSpread, more: str = "") -> list[str]:
    """The lines /spread, /stats and /report show: shares by others, reach through shares, the top amplifiers."""
    if not spread.shares and not spread.second:
        return [f"Shares by others: none seen (Herald reads who shared on {readable_networks(ctx)})."]
    lines = [f"Shares by others: {spread.shares}" + (f" (+{spread.second} quotes of quotes)" if spread.second else "")
             + f" · reach through shares: up to {spread.reach:,} followers (an upper bound){more}"]
    if spread.top:
        lines.append("Top amplifiers: " + "; ".join(
            f"{theirs(a.handle)} ({followers_words(a.followers)}, #{a.post_id} on {ctx.networks.label(a.network)})"
            for a in spread.top))
    return lines


SPREAD_USAGE = "/spread [post] | /spread alert=<followers>|off | /spread praise add|remove <words>|off"


def settings_text(ctx: Context, ws: Workspace) -> str:
    threshold = (f"a sharer with at least {ws.spread_alert_followers:,} followers alerts the team"
                 if ws.spread_alert_followers > 0
                 else f"big-account alerts are off (/spread alert={DEFAULT_ALERT_FOLLOWERS} turns them on)")
    praise = ", ".join(word_list(ws.praise_words)) or "none"
    return (f"Alerts: {threshold}. Praise words: {praise} (watch words mark complaints: /watch).\n"
            f"Herald reads who shared on {readable_networks(ctx)}; other networks don't say.")


@command("spread", usage=SPREAD_USAGE, example="/spread 12",
         summary="how far a post spread: who shared or quoted it, the reach through them, the share tree",
         details=("/spread alone sums up the last 7 days and shows the settings. alert=N: a sharer with at least N "
                  "followers alerts the team (admins; off turns it off). praise add/remove: words that mark a "
                  "quote as praise (editors); watch words mark complaints."),
         group="Engagement")
async def spread(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    text = req.command.text.strip()
    head, _, rest = text.partition(" ")
    head = head.lower()
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        if head.startswith("alert"):
            req.require_role(ADMINS, "change the big-account alert")
            value = (head.partition("=")[2] or rest).strip().lower().replace(",", "").replace("_", "")
            if value == "off":
                ws.spread_alert_followers = 0
            else:
                multiplier = 1_000 if value.endswith("k") else 1_000_000 if value.endswith("m") else 1
                try:
                    number = int(float(value.rstrip("km")) * multiplier) if value else -1
                except ValueError:
                    number = -1
                if number < 1:
                    raise UserError(f"'{text}' isn't a follower count. Example: /spread alert=50000 (or 50k), "
                                    "/spread alert=off")
                ws.spread_alert_followers = number
            audit(session, ctx, ws_id, None, req.actor_name, "spread", f"alert={ws.spread_alert_followers}")
            return Reply(settings_text(ctx, ws))
        if head == "praise":
            return praise_words(req, session, ws, rest)
        if not head:
            now = ctx.clock.now()
            start, tz = now - timedelta(days=7), ws.timezone
            week = period_spread(session, ws_id, start, now + timedelta(microseconds=1), tz=tz)  # up to now
            text = "\n".join(["📣 Shares by others in the last 7 days", *spread_lines(ctx, week),
                              "/spread <post> shows one post's sharers and share tree.", settings_text(ctx, ws)])
        else:
            if rest:
                raise UserError(f"/spread takes one post number. Usage: {SPREAD_USAGE}, e.g. /spread 12")
            post = get_post(session, ws_id, parse_post_id(head, SPREAD_USAGE))
            return post_spread(ctx, session, post, ws)
    return Reply(text, image=await spread_chart(ctx, week, start, now, tz))


def praise_words(req: Request, session: Session, ws: Workspace, rest: str) -> Reply:
    action, _, words_text = rest.strip().partition(" ")
    action = action.lower()
    current = word_list(ws.praise_words)
    if not action:
        return Reply(f"Praise words: {', '.join(current) or 'none'}. /spread praise add love, thank*")
    if action not in ("add", "remove", "off"):
        raise UserError(f"'{action}' isn't something /spread praise does: add, remove or off. "
                        "Example: /spread praise add love, thank*")
    req.require_role(EDITORS, "change the praise words")
    if action == "off":
        if not current:
            raise UserError("There are no praise words to clear.")
        ws.praise_words = ""
        audit(session, req.ctx, ws.id or 0, None, req.actor_name, "spread", "praise off")
        return Reply(f"Praise words cleared ({', '.join(current)}).")
    words = parse_words(words_text)
    if not words:
        raise UserError(f"Which words? Example: /spread praise {action} love, thank*")
    folded = {fold(w): w for w in current}
    if action == "add":
        fresh = list({fold(w): w for w in words if fold(w) not in folded}.values())
        if not fresh:
            raise UserError(f"Already there: {', '.join(words)}.")
        if len(current) + len(fresh) > MAX_PRAISE_WORDS:
            raise UserError(f"That would make {len(current) + len(fresh)} praise words; the most is "
                            f"{MAX_PRAISE_WORDS}.")
        ws.praise_words = ",".join([*current, *fresh])
    else:
        missing = [w for w in words if fold(w) not in folded]
        if missing:
            raise UserError(f"{', '.join(missing)} isn't a praise word. /spread praise lists them.")
        gone = {fold(w) for w in words}
        ws.praise_words = ",".join(w for w in current if fold(w) not in gone)
    audit(session, req.ctx, ws.id or 0, None, req.actor_name, "spread", f"praise {action} {', '.join(words)}")
    return Reply(f"Praise words: {', '.join(word_list(ws.praise_words)) or 'none'}. A quote holding one reads as "
                 "praise in the big-account alert.")
