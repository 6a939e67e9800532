"""Alerts: a post taking off, a comment surge, comments with the workspace's watch words; /watch and /alerts.

Every alert goes once (a SentOnce claim names it) to the workspace's team and report chats, with the post's
number and first words, the numbers that triggered it, a ⏸ Pause publishing button (the /pause line too) and a
🚨 Start crisis mode button (handlers/posts/publishing/crisis.py).

The rules, stated in /alerts:
- **Taking off** (`check_takeoff`): a delivery's engagements (likes + comments + shares + quotes + saves +
  clicks) at its latest reading, against the same account's usual at the same age: the median of its
  earlier posts (the last 20 sent within 90 days) at their reading closest to that age (within ±25%).
  It alerts when the engagements are ≥ Workspace.alert_factor × that median and at least 10. Enough history
  is 3 earlier posts with such a reading; without it there is no take-off alert (an absolute number means
  nothing across accounts of very different sizes). Same-age totals compare velocity: engagements per hour
  since publishing. Once per delivery.
- **Clicks taking off** (`check_click_takeoff`): people's clicks on a delivery's short links (handlers/posts/
  shortlinks.py; preview fetches not counted) within the last hour, against the median the same account's
  earlier posts (the last 20 within 90 days that had short links) got in the same hour of their life. It alerts
  at ≥ alert_factor × that median and at least 10 clicks, given 3 such earlier posts. Once per delivery.
- **Comment surge** (`check_surges`): the most comments a post got within one hour (a window ending at one
  of the newly fetched comments), against the median its earlier posts on the same accounts got in the same
  hour of their life. It alerts at ≥ 5 comments and ≥ alert_factor × that median, given 3 earlier posts whose
  hour has passed; without them, at 15 comments in an hour. Once per post.
- **Watch words** (`watch_alerts`, called by the inbox as it forwards new comments): a comment whose text
  holds one of Workspace.watch_words — whole words or phrases, any case, accents ignored, `word*` for a word
  start — is marked (InboxItem.watch_hit) when it is stored and alerted at once, one alert per post and batch.
- alert_factor 0 turns take-off and surge alerts off; watch words have their own switch (`/watch off`).
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import logging
import re
import statistics
import unicodedata
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from sqlalchemy import and_, func, or_
from sqlmodel import Session, col, select

from handlers.core.access import ADMINS, EDITORS
from handlers.core.audit import audit
from handlers.core.chat import Button, ChatAddress, Reply, theirs
from handlers.core.commands import Request, periodic
from handlers.core.commands import command as register
from handlers.core.context import Context
from handlers.core.errors import UserError
from handlers.core.lookups import get_workspace
from handlers.core.notices import claim_once
from handlers.core.when import format_delta, format_when
from handlers.engagement.metrics import ENGAGED, engagements
from storage.models import (
    Account,
    ChatLink,
    Click,
    Delivery,
    DeliveryState,
    InboxItem,
    MetricSnapshot,
    Post,
    SentOnce,
    ShortLink,
    Workspace,
)

log = logging.getLogger("herald.alerts")

ALERT_PURPOSES = ("team", "reports")  # /setup reports promises "reports, digests and alerts"
CHECK_EVERY = timedelta(minutes=5)
LOOKBACK = timedelta(hours=1)  # readings and comments this recent are looked at again on each run
RECENT = timedelta(days=7)  # posts younger than this can take off
BASELINE_DAYS = timedelta(days=90)
BASELINE_POSTS = 20
BASELINE_MIN = 3  # earlier posts needed for a baseline
AGE_TOLERANCE = 0.25  # an earlier post's reading counts as "the same age" within ±25%
TAKEOFF_FLOOR = 10  # fewer engagements than this never count as taking off
SURGE_WINDOW = timedelta(hours=1)
SURGE_MIN = 5
SURGE_FALLBACK = 15  # comments in an hour that alert when there is no baseline
FACTOR_RANGE = (1.5, 50.0)
DEFAULT_FACTOR = 3.0
MAX_WORDS = 50
MAX_WORD_LENGTH = 40
PAUSE_PROMPT = "Why pause publishing? (the team sees the reason)"
CRISIS_PROMPT = "What's happening? (the reason goes on the crisis card and into the holding statement)"


# --- watch words ------------------------------------------------------------------------------------


def fold(text: str) -> str:
    """Lower case without accents: 'Remboursé' → 'rembourse'."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def word_list(stored: str) -> list[str]:
    return [w for w in stored.split(",") if w.strip()]


@functools.lru_cache(maxsize=1024)
def _pattern(word: str) -> re.Pattern[str]:
    star = word.endswith("*")
    body = r"\s+".join(re.escape(part) for part in fold(word.rstrip("*")).split())
    return re.compile(r"(?<!\w)" + body + (r"\w*" if star else "") + r"(?!\w)")


def watch_hits(text: str, words: list[str]) -> list[str]:
    """The watch words (as the team wrote them) that `text` holds as whole words."""
    folded = fold(text)
    return [w for w in words if _pattern(w).search(folded)]


def parse_words(text: str) -> list[str]:
    """`refund lawsuit` → two words; `data breach, refund` → a phrase and a word (commas separate phrases)."""
    raw = text.split(",") if "," in text else text.split()
    words = [" ".join(w.split()) for w in raw if w.strip()]
    for word in words:
        core = word.rstrip("*")
        if not any(ch.isalnum() for ch in core) or "*" in core:
            raise UserError(f"'{word}' isn't a word I can watch: use letters or digits, and * only at the end "
                            "(refund* matches refunds). Example: /watch add refund, data breach")
        if len(word) > MAX_WORD_LENGTH:
            raise UserError(f"'{word[:20]}…' is too long: watch words are at most {MAX_WORD_LENGTH} characters.")
    return words


# --- sending ----------------------------------------------------------------------------------------


def pause_button() -> Button:
    return Button("⏸ Pause publishing", "pause", prompt=PAUSE_PROMPT)


def first_words(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit].rsplit(" ", 1)[0] if " " in flat[:limit] else flat[:limit]
    return cut.rstrip(" ,.;:") + "…"


def pause_line(ws: Workspace) -> str:
    if ws.paused:
        return f"Publishing is already paused ({ws.pause_reason or 'no reason given'}); /resume lifts it."
    return "To hold every scheduled post: /pause <reason>, or the button."


def crisis_button() -> Button:
    """Starts crisis mode (handlers/posts/publishing/crisis.py) with the reason typed after pressing it."""
    return Button("🚨 Start crisis mode", "crisis", {"do": "start"}, prompt=CRISIS_PROMPT)


def alert_reply(ws: Workspace, lines: list[str]) -> Reply:
    lines = [*lines, pause_line(ws)]
    if ws.crisis_id is not None:
        lines.append("🚨 Crisis mode is on: /crisis shows what is held.")
    buttons = (() if ws.paused else (pause_button(),)) + (() if ws.crisis_id is not None else (crisis_button(),))
    return Reply("\n".join(lines), buttons=buttons)


async def tell_alert_chats(ctx: Context, workspace_id: int, reply: Reply) -> int:
    """Send an alert to every chat of the workspace that gets team notices or reports (each chat once)."""
    with ctx.db.session() as session:
        links = session.exec(select(ChatLink).where(ChatLink.workspace_id == workspace_id)).all()
        chats = [ChatAddress(link.platform, link.chat_id) for link in links
                 if any(link.serves(p) for p in ALERT_PURPOSES)]
    sent = 0
    for chat in chats:
        try:
            await ctx.notifier.send(chat, reply)
            sent += 1
        except Exception:  # one unreachable chat must not stop the others
            log.exception("could not send an alert to %s:%s", chat.platform, chat.chat_id)
    return sent


def span(delta: timedelta) -> str:
    """'2 hours 5 minutes' for a timedelta."""
    if delta <= timedelta(0):
        return "0 minutes"
    base = datetime(2000, 1, 1, tzinfo=UTC)
    return format_delta(base + delta, base).removeprefix("in ")


def between(start: datetime, end: datetime, tz: str) -> str:
    """'between Mon 23 Nov 2026 10:05 and 11:05 CET (Europe/Paris)' (the date once when it is the same day)."""
    first, last = format_when(start, tz), format_when(end, tz)
    same_day = first.split(" ")[:4] == last.split(" ")[:4]
    if same_day:
        return f"between {' '.join(first.split(' ')[:5])} and {' '.join(last.split(' ')[4:])}"
    return f"between {first} and {last}"


def number(value: float) -> str:
    """A median as people read it: 20, 20.5."""
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"


def times(value: float) -> str:
    return f"{value:.1f}×"


# --- taking off -------------------------------------------------------------------------------------


def reading_at(snapshots: list[MetricSnapshot], sent_at: datetime, age: timedelta) -> MetricSnapshot | None:
    """The reading of a delivery closest to `age` after sending, if one is within ±25% of it."""
    tolerance = age * AGE_TOLERANCE
    near = [(abs(snap.taken_at - sent_at - age), snap.id or 0, snap) for snap in snapshots if snap.taken_at]
    near = [n for n in near if n[0] <= tolerance]
    return min(near, key=lambda n: (n[0], n[1]))[2] if near else None


@dataclass(frozen=True)
class TakeOff:
    delivery_id: int
    post_id: int
    account: str
    network: str
    engaged: int
    age: timedelta
    usual: float
    baseline: int
    snapshot: MetricSnapshot


def usual_at_age(session: Session, delivery: Delivery, age: timedelta) -> list[int]:
    """Engagements of the account's earlier posts at the same age (one value per post that has such a reading)."""
    assert delivery.sent_at is not None
    earlier = session.exec(
        select(Delivery).where(Delivery.account_id == delivery.account_id)
        .where(Delivery.state == DeliveryState.SENT.value).where(col(Delivery.id) != delivery.id)
        .where(col(Delivery.sent_at) < delivery.sent_at)
        .where(col(Delivery.sent_at) >= delivery.sent_at - BASELINE_DAYS)
        .order_by(col(Delivery.sent_at).desc()).limit(BASELINE_POSTS)
    ).all()
    if len(earlier) < BASELINE_MIN:
        return []
    tolerance = age * AGE_TOLERANCE
    near_age = or_(*(  # only each earlier post's readings near that age, not its whole history
        and_(col(MetricSnapshot.delivery_id) == d.id,
             col(MetricSnapshot.taken_at).between(d.sent_at + age - tolerance, d.sent_at + age + tolerance))
        for d in earlier if d.sent_at is not None))
    snaps: dict[int, list[MetricSnapshot]] = defaultdict(list)
    for snap in session.exec(select(MetricSnapshot).where(near_age)):
        snaps[snap.delivery_id].append(snap)
    values = []
    for other in earlier:
        assert other.sent_at is not None
        reading = reading_at(snaps[other.id or 0], other.sent_at, age)
        if reading is not None:
            values.append(engagements(reading))
    return values


def already_sent(session: Session, keys: list[str]) -> set[str]:
    """Which of these alert keys were claimed already (so their baselines aren't computed again)."""
    found: set[str] = set()
    for start in range(0, len(keys), 500):
        found.update(session.exec(select(SentOnce.key).where(col(SentOnce.key).in_(keys[start:start + 500]))))
    return found


def find_takeoffs(ctx: Context, session: Session, now: datetime) -> dict[int, list[TakeOff]]:
    """Deliveries read in the last hour whose engagements beat their account's usual: workspace → take-offs."""
    rows = session.exec(
        select(MetricSnapshot, Delivery, Account, Workspace)
        .where(col(MetricSnapshot.delivery_id) == col(Delivery.id))
        .where(col(Delivery.account_id) == col(Account.id))
        .where(col(Account.workspace_id) == col(Workspace.id))
        .where(col(MetricSnapshot.taken_at) > now - LOOKBACK)
        .where(Delivery.state == DeliveryState.SENT.value)
        .where(col(Delivery.sent_at) >= now - RECENT)
        .where(col(Workspace.alert_factor) > 0)
        .order_by(col(MetricSnapshot.taken_at).desc(), col(MetricSnapshot.id).desc())
    ).all()
    latest: dict[int, tuple[MetricSnapshot, Delivery, Account, Workspace]] = {}
    for snap, delivery, account, ws in rows:
        latest.setdefault(delivery.id or 0, (snap, delivery, account, ws))
    told = already_sent(session, [f"alert:takeoff:{d}" for d in latest])
    found: dict[int, list[TakeOff]] = defaultdict(list)
    for snap, delivery, account, ws in latest.values():
        engaged = engagements(snap)
        if engaged < TAKEOFF_FLOOR or snap.taken_at is None or delivery.sent_at is None:
            continue
        if f"alert:takeoff:{delivery.id}" in told:
            continue
        age = snap.taken_at - delivery.sent_at
        if age <= timedelta(0):
            continue
        values = usual_at_age(session, delivery, age)
        if len(values) < BASELINE_MIN:
            continue  # no baseline, no alert
        usual = statistics.median(values)
        if engaged >= ws.alert_factor * usual:
            found[ws.id or 0].append(TakeOff(delivery.id or 0, delivery.post_id, account.name, account.network,
                                             engaged, age, usual, len(values), snap))
    return found


def numbers_line(snap: MetricSnapshot) -> str:
    parts = [f"{getattr(snap, f):,} {f}" for f in ENGAGED
             if getattr(snap, f)]
    if snap.impressions:
        parts.append(f"{snap.impressions:,} views")
    return " · ".join(parts)


def _takeoffs_in_thread(ctx: Context, now: datetime) -> dict[int, list[TakeOff]]:
    with ctx.db.session() as session:
        return find_takeoffs(ctx, session, now)


async def check_takeoff(ctx: Context) -> int:
    """Alert each delivery that takes off, once; returns how many alerts went out."""
    now = ctx.clock.now()
    # the baseline queries take long on a big history (1.6 s at 100,000 posts on PostgreSQL, bench/):
    # in a worker thread with its own session, so chat commands aren't held up meanwhile
    found = await asyncio.to_thread(_takeoffs_in_thread, ctx, now)
    return await tell_post_alerts(ctx, found, "alert:takeoff", lambda post_id, text: (
        f"🚀 #{post_id} is taking off — “{text}”"), functools.partial(takeoff_lines, ctx))


def takeoff_lines(ctx: Context, ws: Workspace, t: TakeOff) -> list[str]:
    ratio = f" — {times(t.engaged / t.usual)} " if t.usual else " — "
    lines = [f"  {t.account} ({ctx.networks.label(t.network)}): {t.engaged:,} engagements "
             f"{span(t.age)} after publishing{ratio}the usual {number(t.usual)} at that age (median of "
             f"{t.baseline} earlier posts on this account; alert at {ws.alert_factor:g}×)"]
    if numbers_line(t.snapshot):
        lines.append(f"    {numbers_line(t.snapshot)}")
    return lines


Alerted = TypeVar("Alerted", "TakeOff", "ClickTakeOff")


async def tell_post_alerts(ctx: Context, found: dict[int, list[Alerted]], key: str,
                           headline: Callable[[int, str], str],
                           describe: Callable[[Workspace, Alerted], list[str]]) -> int:
    """Each delivery found (workspace → deliveries) claimed once under `key`:<delivery>, then one alert per post:
    its headline, each account's lines, the /stats line. How many alerts went out."""
    sent = 0
    for ws_id, takeoffs in found.items():
        by_post: dict[int, list[Alerted]] = defaultdict(list)
        for t in takeoffs:
            if claim_once(ctx, f"{key}:{t.delivery_id}"):
                by_post[t.post_id].append(t)
        sent += await _tell_posts(ctx, ws_id, by_post, headline, describe)
    return sent


async def _tell_posts(ctx: Context, ws_id: int, by_post: dict[int, list[Alerted]], headline: Callable[[int, str], str],
                      describe: Callable[[Workspace, Alerted], list[str]]) -> int:
    sent = 0
    for post_id, items in sorted(by_post.items()):
        with ctx.db.session() as session:
            ws = get_workspace(session, ws_id)
            post = session.get(Post, post_id)
            text = first_words(post.text) if post else ""
        lines = [headline(post_id, text)]
        for item in sorted(items, key=lambda t: t.account):
            lines += describe(ws, item)
        lines.append(f"/stats {post_id} has the details.")
        await tell_alert_chats(ctx, ws_id, alert_reply(ws, lines))
        sent += 1
    return sent


# --- clicks taking off -----------------------------------------------------------------------------

CLICK_FLOOR = 10  # fewer people clicking within the hour than this never count as taking off


@dataclass
class ClickTakeOff:
    delivery_id: int
    post_id: int
    account: str
    network: str
    clicks: int
    age: timedelta
    usual: float
    baseline: int


def people_clicks(session: Session, post_id: int, account_id: int, start: datetime, end: datetime) -> int:
    """People's clicks on one delivery's short links within (start, end]."""
    return int(session.exec(
        select(func.coalesce(func.sum(Click.count), 0)).join(ShortLink, col(ShortLink.id) == col(Click.link_id))
        .where(ShortLink.post_id == post_id).where(ShortLink.account_id == account_id)
        .where(col(Click.fetcher).is_(None)).where(col(Click.at) > start).where(col(Click.at) <= end)).one())


def find_click_takeoffs(session: Session, now: datetime) -> dict[int, list[ClickTakeOff]]:
    """Deliveries whose short links people clicked at least CLICK_FLOOR times in the last hour and ≥
    alert_factor × the median of the same account's earlier posts in the same hour of their life (3 earlier
    posts with short links at least): workspace → take-offs."""
    rows = session.exec(
        select(ShortLink.post_id, ShortLink.account_id, func.sum(Click.count))
        .join(ShortLink, col(ShortLink.id) == col(Click.link_id))
        .where(col(Click.at) > now - LOOKBACK).where(col(Click.at) <= now).where(col(Click.fetcher).is_(None))
        .group_by(col(ShortLink.post_id), col(ShortLink.account_id))).all()
    found: dict[int, list[ClickTakeOff]] = defaultdict(list)
    for post_id, account_id, clicks in rows:
        if int(clicks or 0) < CLICK_FLOOR:
            continue
        pair = session.exec(select(Delivery, Account, Workspace).where(Delivery.post_id == post_id)
                            .where(Delivery.account_id == account_id)
                            .where(col(Account.id) == col(Delivery.account_id))
                            .where(col(Workspace.id) == col(Account.workspace_id))).first()
        if pair is None:
            continue
        delivery, account, ws = pair
        if ws.alert_factor <= 0 or delivery.sent_at is None or already_sent(session, [f"alert:clicks:{delivery.id}"]):
            continue
        age = now - delivery.sent_at
        earlier = session.exec(
            select(Delivery).where(Delivery.account_id == account_id)
            .where(Delivery.state == DeliveryState.SENT.value)
            .where(col(Delivery.sent_at) < delivery.sent_at)
            .where(col(Delivery.sent_at) >= delivery.sent_at - BASELINE_DAYS)
            .where(col(Delivery.sent_at) <= now - age)  # that hour of its life has passed
            .order_by(col(Delivery.sent_at).desc()).limit(BASELINE_POSTS)).all()
        values = [people_clicks(session, e.post_id, account_id, e.sent_at + age - LOOKBACK, e.sent_at + age)
                  for e in earlier if e.sent_at is not None and session.exec(
                      select(ShortLink.id).where(ShortLink.post_id == e.post_id)
                      .where(ShortLink.account_id == account_id).limit(1)).first() is not None]
        if len(values) < BASELINE_MIN:
            continue  # no baseline, no alert
        usual = statistics.median(values)
        if int(clicks) >= ws.alert_factor * usual:
            found[ws.id or 0].append(ClickTakeOff(delivery.id or 0, post_id, account.name, account.network,
                                                  int(clicks), age, usual, len(values)))
    return found


def _click_takeoffs_in_thread(ctx: Context, now: datetime) -> dict[int, list[ClickTakeOff]]:
    with ctx.db.session() as session:
        return find_click_takeoffs(session, now)


async def check_click_takeoff(ctx: Context) -> int:
    """Alert each delivery whose short links people suddenly click, once; returns how many alerts went out."""
    found = await asyncio.to_thread(_click_takeoffs_in_thread, ctx, ctx.clock.now())
    return await tell_post_alerts(ctx, found, "alert:clicks", lambda post_id, text: (
        f"🚀 People are clicking #{post_id}'s link — “{text}”"), functools.partial(click_takeoff_lines, ctx))


def click_takeoff_lines(ctx: Context, ws: Workspace, t: ClickTakeOff) -> list[str]:
    ratio = f" — {times(t.clicks / t.usual)} " if t.usual else " — "
    return [f"  {t.account} ({ctx.networks.label(t.network)}): {t.clicks:,} clicks in the last hour, "
            f"{span(t.age)} after publishing{ratio}the usual {number(t.usual)} in that hour (median of "
            f"{t.baseline} earlier posts on this account; alert at {ws.alert_factor:g}×; preview fetches "
            "not counted)"]


# --- comment surges ---------------------------------------------------------------------------------


def peak_hour(posted: list[datetime], new: list[datetime]) -> tuple[int, datetime | None]:
    """The most comments within one hour ending at one of the new comments: (count, end of that hour)."""
    ordered = sorted(posted)
    best, end = 0, None
    for at in sorted(new):
        count = bisect.bisect_right(ordered, at) - bisect.bisect_right(ordered, at - SURGE_WINDOW)
        if count > best:
            best, end = count, at
    return best, end


def comments_between(session: Session, post_id: int, start: datetime, end: datetime) -> int:
    return session.exec(
        select(func.count()).select_from(InboxItem).join(Delivery, col(InboxItem.delivery_id) == col(Delivery.id))
        .where(Delivery.post_id == post_id)
        .where(col(InboxItem.posted_at) > start).where(col(InboxItem.posted_at) <= end)
    ).one()


@dataclass(frozen=True)
class Surge:
    post_id: int
    count: int
    start: datetime
    end: datetime
    usual: float | None
    baseline: int


SURGE_STALE = timedelta(hours=2)  # a surge is news while it is happening, not when read days later


def surge_of(session: Session, post: Post, ws: Workspace, now: datetime) -> Surge | None:
    items = session.exec(
        select(InboxItem.posted_at, InboxItem.fetched_at).join(Delivery, col(InboxItem.delivery_id) == col(Delivery.id))
        .where(Delivery.post_id == post.id).where(col(InboxItem.posted_at).is_not(None))
    ).all()
    posted = [p for p, _f in items if p is not None]
    new = [p for p, f in items if p is not None and f is not None and f > now - LOOKBACK]
    count, end = peak_hour(posted, new)
    if count < SURGE_MIN or end is None:
        return None
    if now - end > SURGE_STALE:
        return None  # a burst that ended hours ago, only read now (first read after a deploy, a slow cadence)
    published = post.published_at or min(posted)
    age_end = end - published
    accounts = set(session.exec(select(Delivery.account_id).where(Delivery.post_id == post.id)).all())
    candidates = session.exec(
        select(Post).join(Delivery, col(Delivery.post_id) == col(Post.id))
        .where(Post.workspace_id == post.workspace_id).where(col(Post.id) != post.id)
        .where(col(Delivery.account_id).in_(accounts)).where(Delivery.state == DeliveryState.SENT.value)
        .where(col(Post.published_at).is_not(None)).where(col(Post.published_at) < published)
        .where(col(Post.published_at) >= published - BASELINE_DAYS)
        .where(col(Post.published_at) <= now - age_end)  # its same hour has passed
        .order_by(col(Post.published_at).desc())
    ).all()
    earlier = list({p.id: p for p in candidates}.values())[:BASELINE_POSTS]
    if len(earlier) >= BASELINE_MIN:
        values = []
        for other in earlier:
            assert other.published_at is not None and other.id is not None
            values.append(comments_between(session, other.id, other.published_at + age_end - SURGE_WINDOW,
                                           other.published_at + age_end))
        usual: float | None = statistics.median(values)
        assert usual is not None
        hit = count >= max(SURGE_MIN, ws.alert_factor * usual)
    else:
        usual, hit = None, count >= SURGE_FALLBACK
    if not hit:
        return None
    return Surge(post.id or 0, count, max(end - SURGE_WINDOW, published), end, usual, len(earlier))


def _surges_in_thread(ctx: Context, now: datetime) -> list[tuple[int, Surge]]:
    found: list[tuple[int, Surge]] = []
    with ctx.db.session() as session:
        post_ids = set(session.exec(
            select(Delivery.post_id).join(InboxItem, col(InboxItem.delivery_id) == col(Delivery.id))
            .where(col(InboxItem.fetched_at) > now - LOOKBACK)
        ).all())
        told = already_sent(session, [f"alert:surge:{p}" for p in post_ids])
        for post_id in sorted(post_ids):
            if f"alert:surge:{post_id}" in told:
                continue
            post = session.get(Post, post_id)
            if post is None:
                continue
            ws = get_workspace(session, post.workspace_id)
            if ws.alert_factor <= 0:
                continue
            surge = surge_of(session, post, ws, now)
            if surge is not None:
                found.append((ws.id or 0, surge))
    return found


async def check_surges(ctx: Context) -> int:
    """Alert each post whose comments surge, once; returns how many alerts went out."""
    now = ctx.clock.now()
    found = await asyncio.to_thread(_surges_in_thread, ctx, now)  # long queries: off the event loop
    sent = 0
    for ws_id, surge in found:
        if not claim_once(ctx, f"alert:surge:{surge.post_id}"):
            continue
        with ctx.db.session() as session:
            ws = get_workspace(session, ws_id)
            post = session.get(Post, surge.post_id)
            text = first_words(post.text) if post else ""
        if surge.usual is None:
            usual = f"there is too little history to compare ({SURGE_FALLBACK} in an hour alerts without it)"
        else:
            ratio = f"{times(surge.count / surge.usual)} " if surge.usual else ""
            usual = (f"{ratio}the usual {number(surge.usual)} in that hour of a post's life (median of "
                     f"{surge.baseline} earlier posts; alert at {ws.alert_factor:g}×)")
        lines = [
            f"💬 Comment surge on #{surge.post_id} — “{text}”",
            f"  {surge.count} comments {between(surge.start, surge.end, ws.timezone)}: {usual}",
            f"/inbox {surge.post_id} lists them.",
        ]
        await tell_alert_chats(ctx, ws_id, alert_reply(ws, lines))
        sent += 1
    return sent


# --- watch words ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WatchedItem:
    """A comment that holds watch words, as the inbox hands it over."""

    item_id: int
    post_id: int
    account: str
    network: str
    author: str
    text: str
    url: str | None
    hit: str


async def watch_alerts(ctx: Context, workspace_id: int, items: list[WatchedItem]) -> int:
    """Alert the comments with watch words, one alert per post (the inbox claimed the items: each comes once)."""
    by_post: dict[int, list[WatchedItem]] = defaultdict(list)
    for item in items:
        by_post[item.post_id].append(item)
    sent = 0
    for post_id, hits in sorted(by_post.items()):
        hits.sort(key=lambda i: i.item_id)
        if not claim_once(ctx, f"alert:watch:{post_id}:{hits[0].item_id}"):
            continue
        with ctx.db.session() as session:
            ws = get_workspace(session, workspace_id)
            post = session.get(Post, post_id)
            text = first_words(post.text) if post else ""
        lines = [f"🚨 Watch words in {len(hits)} comment(s) on #{post_id} — “{text}”"]
        for item in hits:
            where = ctx.networks.label(item.network)
            said = theirs(first_words(item.text, 120))
            lines.append(f"  #{item.item_id} {theirs(item.author)} on {where} ({item.account}): “{said}” "
                         f"— matched: {item.hit}" + (f" · {item.url}" if item.url else ""))
        lines.append(f"Answer with /reply {hits[0].item_id} <text>; /inbox {post_id} shows the post's comments.")
        await tell_alert_chats(ctx, workspace_id, alert_reply(ws, lines))
        sent += 1
    return sent


# --- the clock --------------------------------------------------------------------------------------


@periodic("alerts", every=CHECK_EVERY)
async def check_alerts(ctx: Context) -> int:
    """Take-off (engagements, and clicks on short links) and surge checks (watch words go with the inbox, as
    comments arrive)."""
    sent = 0
    for check in (check_takeoff, check_click_takeoff, check_surges):
        try:
            sent += await check(ctx)
        except Exception:
            log.exception("alert check %s failed", check.__name__)
    return sent


# --- settings ---------------------------------------------------------------------------------------


WATCH_USAGE = "/watch [add word…|remove word…|off]"


@register("watch", usage=WATCH_USAGE, example="/watch add refund, data breach, lawsuit",
          summary="crisis watch: comments with these words alert the team at once",
          details=("Words or phrases (separate phrases with commas) are matched as whole words, in any case and "
                   "ignoring accents; refund* also matches refunds. /watch lists them, /watch off clears them. "
                   "Admins and editors change the list."),
          group="Engagement")
async def watch(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    action, _, rest = req.command.text.strip().partition(" ")
    action = action.lower()
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        current = word_list(ws.watch_words)
        if not action:
            if not current:
                return Reply("No watch words yet. /watch add refund, data breach — a comment holding one alerts "
                             "the team at once.")
            return Reply(f"👀 Watch words ({len(current)}): {', '.join(current)}.\nA new comment holding one "
                         "(whole words, any case, accents ignored) alerts the team at once with a pause button.")
        if action not in ("add", "remove", "off"):
            raise UserError(f"'{action}' isn't something /watch does. Usage: {WATCH_USAGE}, "
                            "e.g. /watch add refund, lawsuit")
        req.require_role(EDITORS, "change the watch words")
        if action == "off":
            if rest.strip():
                raise UserError("/watch off clears every watch word and takes nothing after it. To drop some: "
                                "/watch remove <word…>")
            if not current:
                raise UserError("There are no watch words to clear.")
            ws.watch_words = ""
            audit(session, ctx, ws_id, None, req.actor_name, "watch", "off")
            return Reply(f"Watch words cleared ({', '.join(current)}). No comment alerts until /watch add.")
        words = parse_words(rest)
        phrase = " ".join(rest.split())
        if action == "remove" and "," not in rest and len(words) > 1 and fold(phrase) in {fold(w) for w in current}:
            words = [phrase]  # /watch remove data breach: the phrase on the list, not two words
        if not words:
            raise UserError(f"Which words? Example: /watch {action} refund, data breach")
        folded = {fold(w): w for w in current}
        if action == "add":
            fresh = list({fold(w): w for w in words if fold(w) not in folded}.values())
            if not fresh:
                raise UserError(f"Already watching {', '.join(words)}. /watch lists the words.")
            if len(current) + len(fresh) > MAX_WORDS:
                raise UserError(f"That would make {len(current) + len(fresh)} watch words; the most is {MAX_WORDS}. "
                                "/watch remove some first.")
            ws.watch_words = ",".join([*current, *fresh])
            audit(session, ctx, ws_id, None, req.actor_name, "watch", "add " + ", ".join(fresh))
            known = [w for w in words if fold(w) in folded]
            note = f" (already watched: {', '.join(known)})" if known else ""
            return Reply(f"👀 Watching {', '.join(fresh)}{note}. Now {len(current) + len(fresh)} watch word(s): "
                         f"{', '.join([*current, *fresh])}.")
        missing = [w for w in words if fold(w) not in folded]
        if missing:
            raise UserError(f"I'm not watching {', '.join(missing)}. /watch lists the words.")
        gone = {fold(w) for w in words}
        kept = [w for w in current if fold(w) not in gone]
        ws.watch_words = ",".join(kept)
        audit(session, ctx, ws_id, None, req.actor_name, "watch", "remove " + ", ".join(words))
        left = f"Still watching: {', '.join(kept)}." if kept else "No watch words left."
        return Reply(f"Stopped watching {', '.join(folded[fold(w)] for w in words)}. {left}")


ALERTS_USAGE = "/alerts [factor=N|off|on]"


def alerts_text(ws: Workspace) -> str:
    factor = ws.alert_factor
    words = word_list(ws.watch_words)
    state = f"at {factor:g}× the usual" if factor > 0 else "off (/alerts on)"
    if factor <= 0:  # no rule to show while they're off: "≥ 0× the median" would read as "always"
        return "\n".join([
            f"🔔 Take-off and surge alerts: {state}.",
            "• Watch words: " + (", ".join(words) if words else "none") + " (/watch) — they still alert.",
            f"/alerts on brings back take-off and surge alerts at {DEFAULT_FACTOR:g}× the usual.",
        ])
    return "\n".join([
        f"🔔 Take-off and surge alerts: {state}.",
        f"• Taking off: a post's engagements (likes, comments, shares, quotes, saves, clicks) at its latest reading "
        f"≥ {factor:g}× the median of the same account's last {BASELINE_POSTS} earlier posts at that age (±25%), and "
        f"at least {TAKEOFF_FLOOR}. Needs {BASELINE_MIN} earlier posts with a reading at that age: no baseline, no "
        "alert.",
        f"• Comment surge: at least {SURGE_MIN} comments on a post within an hour and ≥ {factor:g}× the median its "
        f"earlier posts (on the same accounts) got in the same hour of their life; with fewer than {BASELINE_MIN} "
        f"such posts, {SURGE_FALLBACK} comments in an hour.",
        f"• Clicks taking off: at least {CLICK_FLOOR} people clicking a post's short link within an hour and ≥ "
        f"{factor:g}× the median the account's earlier posts got in the same hour of their life (needs "
        f"{BASELINE_MIN} earlier posts with short links); preview fetches don't count.",
        "• Watch words: " + (", ".join(words) if words else "none") + " (/watch).",
        "Each alert comes once, to the team and report chats, with ⏸ Pause publishing and 🚨 Start crisis mode "
        "buttons.",
    ])


@register("alerts", usage=ALERTS_USAGE, example="/alerts factor=4",
          summary="take-off and comment-surge alerts: show the rules or set how far above usual alerts",
          details=(f"factor=N (from {FACTOR_RANGE[0]:g} to {FACTOR_RANGE[1]:g}, default {DEFAULT_FACTOR:g}): a post "
                   "alerts at N times this workspace's usual for its age. off / on switch take-off and surge "
                   "alerts; watch words are set with /watch. Admins change it."),
          group="Engagement")
async def alerts(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    arg = req.command.text.strip().lower()
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        if not arg:
            return Reply(alerts_text(ws))
        if arg in ("off", "on"):
            req.require_role(ADMINS, "switch alerts")
            factor = 0.0 if arg == "off" else (ws.alert_factor or DEFAULT_FACTOR)
            if (factor > 0) == (ws.alert_factor > 0):
                raise UserError(f"Take-off and surge alerts are already {arg}.")
        else:
            raw = arg.removeprefix("factor=").removeprefix("factor ").strip().rstrip("x×")
            try:
                factor = float(raw)
            except ValueError:
                raise UserError(f"'{req.command.text.strip()}' isn't a setting. Usage: {ALERTS_USAGE}, "
                                "e.g. /alerts factor=4") from None
            low, high = FACTOR_RANGE
            if not low <= factor <= high:
                raise UserError(f"The factor must be from {low:g} to {high:g} (times the usual engagement); "
                                f"{factor:g} isn't. Example: /alerts factor=4")
            req.require_role(ADMINS, "change the alert factor")
        ws.alert_factor = factor
        audit(session, ctx, ws_id, None, req.actor_name, "alerts", f"factor={factor:g}")
        return Reply(alerts_text(ws))

