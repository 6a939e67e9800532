"""Best times to post: `/besttime [network]` from this workspace's own numbers, general defaults until there are
enough, and the slots `/schedule <post> next best` picks from.

From the workspace's own history:
- every delivery published in the last HISTORY (12 weeks) that is at least a day old and has a reading about 24
  hours after it went out (the MetricSnapshot nearest to 24 h, between 18 h and 30 h) counts once — a post sent
  to two accounts counts as two posts, one per account;
- it is placed in the hour of the week it was published, in the workspace timezone ("Tue 09:00–10:00");
- a slot's score is the average engagement rate of its posts (engagements ÷ views, engagements = likes +
  comments + shares + quotes + saves + clicks) when every post counted has views, else the average engagements
  per post; the reply says which;
- the TOP best slots are shown with their numbers and how many posts each rests on;
- `/besttime clicks` scores the slots instead by the people who clicked each delivery's short links within 24
  hours of publishing (handlers/engagement/clicks.py), over the deliveries that had short links.
With fewer than MIN_POSTS such posts, the reply says so and shows the general defaults of the networks asked about
(each connector's profile declares them; OVERALL where it has none), named as general defaults and not the
workspace's own numbers.

`next best` (handlers/posts/scheduling.py) takes the soonest upcoming start of one of these slots that no other post
of the same accounts already has: the TOP own slots of the post's networks, or, with too little history, the
default hours shared by most of the post's networks.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from statistics import fmean
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

from handlers.core.chat import Reply
from handlers.core.commands import Request, command
from handlers.core.errors import UserError
from handlers.core.lookups import account_rules, audience_name, get_audience, get_workspace
from handlers.core.ports import Networks, PostingWindow
from handlers.engagement.metrics import engagements
from storage.models import (
    Account,
    Audience,
    Click,
    Delivery,
    DeliveryState,
    MetricSnapshot,
    ShortLink,
    Workspace,
)

HISTORY = timedelta(weeks=12)
READING_AT = timedelta(hours=24)
READING_SLACK = timedelta(hours=6)  # a reading 18–30 h after publishing stands for the 24-hour one
MIN_POSTS = 10
TOP = 3
SEARCH_DAYS = 14  # how far ahead `next best` looks
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


# --- general defaults ---------------------------------------------------------------------------------------


# Source: Sprout Social, "Best times to post on social media in 2023" — engagement across 34,000+ Sprout customers'
# profiles over a year, in local time; as reported by Social Media Today, 2023-05-10
# (https://www.socialmediatoday.com/news/report-best-times-to-post-social-platforms-twitter-instagram-tiktok-facebook-pintrist-linkedin/650006/)
# and, for TikTok, Sprout's "Best times to post on TikTok in 2023" (Tuesdays 2–6 pm, Wednesdays 2–5 pm, Thursdays
# 3–5 pm). The networks it covers carry their hours in their connectors' profiles (`best_times`); its overall
# finding — Tuesdays to Thursdays 9 am to noon — stands in for the networks it doesn't cover (Bluesky, Mastodon,
# Threads, YouTube, Telegram, Discord) and for Pinterest, which it says leans to the afternoon without hours.
SOURCE = "Sprout Social's 2023 study of engagement across 34,000+ brands"
OVERALL = (PostingWindow((1, 2, 3), 9, 12),)


def own_defaults(networks: Networks, network: str) -> tuple[PostingWindow, ...]:
    """The network's general best times from its connector's profile; none when it declares none."""
    profile = networks.profile(network)
    return profile.best_times if profile is not None else ()


def defaults_for(networks: Networks, network: str) -> tuple[PostingWindow, ...]:
    return own_defaults(networks, network) or OVERALL


def window_text(windows: tuple[PostingWindow, ...]) -> str:
    """'Tue–Fri 09:00–12:00', or 'Mon 08:00–13:00, Tue 08:00–14:00'."""
    parts = []
    for w in windows:
        days = DAYS[w.days[0]] if len(w.days) == 1 else f"{DAYS[w.days[0]]}–{DAYS[w.days[-1]]}"
        if len(w.days) > 1 and list(w.days) != list(range(w.days[0], w.days[-1] + 1)):
            days = ", ".join(DAYS[d] for d in w.days)
        parts.append(f"{days} {w.start:02d}:00–{w.end:02d}:00")
    return ", ".join(parts)


# --- the workspace's own history ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Slot:
    weekday: int  # 0 = Monday, in the workspace timezone
    hour: int
    score: float = 0.0
    posts: int = 0

    def label(self) -> str:
        return f"{DAYS[self.weekday]} {self.hour:02d}:00–{(self.hour + 1) % 24:02d}:00"


@dataclass
class History:
    posts: int  # deliveries counted (one per account a post went to)
    weeks: int
    by_rate: bool  # scores are engagement rates (else engagements per post)
    slots: list[Slot]  # best first
    by_clicks: bool = False  # scores are people's clicks on the posts' short links per post (/besttime clicks)

    @property
    def enough(self) -> bool:
        return self.posts >= MIN_POSTS


def hours_after(session: Session, later: Any, earlier: Any) -> ColumnElement[Any]:
    """`later - earlier` (two datetime columns) in hours, in SQL: PostgreSQL and SQLite spell it differently."""
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", later - earlier) / 3600.0
    return (func.julianday(later) - func.julianday(earlier)) * 24.0


def history(session: Session, ws: Workspace, account_ids: list[int] | None, now: datetime, *,
            audience: Audience | None = None) -> History:
    """Score the hours of the week by the 24-hour readings of the accounts' posts (see the module doc); given an
    audience, by its own deliveries' readings (whatever account), in its zone."""
    age = hours_after(session, col(MetricSnapshot.taken_at), col(Delivery.sent_at))
    lo, hi = (READING_AT - READING_SLACK) / timedelta(hours=1), (READING_AT + READING_SLACK) / timedelta(hours=1)
    mine = (col(Delivery.audience_id) == audience.id if audience is not None
            else col(Delivery.account_id).in_(account_ids or []))
    rows = session.execute(
        select(col(Delivery.id), col(Delivery.sent_at), MetricSnapshot, age)
        .join(MetricSnapshot, col(MetricSnapshot.delivery_id) == col(Delivery.id))
        .where(mine)
        .where(col(Delivery.state) == DeliveryState.SENT.value)
        .where(col(Delivery.sent_at) >= now - HISTORY).where(col(Delivery.sent_at) <= now - READING_AT)
        .where(age >= lo).where(age <= hi)
    ).all()
    nearest: dict[int, tuple[float, datetime, MetricSnapshot]] = {}
    for delivery_id, sent_at, snap, hours in rows:
        off = abs(float(hours) - 24.0)
        if delivery_id not in nearest or off < nearest[delivery_id][0]:
            nearest[delivery_id] = (off, sent_at, snap)
    picked = list(nearest.values())
    by_rate = bool(picked) and all(snap.impressions for _o, _s, snap in picked)
    zone = ZoneInfo(audience.timezone if audience is not None else ws.timezone)
    scores: dict[tuple[int, int], list[float]] = defaultdict(list)
    for _off, sent_at, snap in picked:
        engaged = engagements(snap)
        local = sent_at.astimezone(zone)
        scores[(local.weekday(), local.hour)].append(engaged / (snap.impressions or 1) if by_rate else float(engaged))
    return ranked(scores, [s for _o, s, _snap in picked], by_rate=by_rate)


def ranked(scores: dict[tuple[int, int], list[float]], sent: list[datetime], *, by_rate: bool = False,
           by_clicks: bool = False) -> History:
    """The hours of the week, best average first, over the posts sent at `sent`."""
    slots = sorted((Slot(day, hour, fmean(values), len(values)) for (day, hour), values in scores.items()),
                   key=lambda s: (-s.score, -s.posts, s.weekday, s.hour))
    weeks = max(1, math.ceil((max(sent) - min(sent)) / timedelta(weeks=1))) if sent else 0
    return History(posts=len(sent), weeks=weeks, by_rate=by_rate, slots=slots, by_clicks=by_clicks)


def click_history(session: Session, ws: Workspace, account_ids: list[int] | None, now: datetime, *,
                  audience: Audience | None = None) -> History:
    """Score the hours of the week by people's clicks on each delivery's short links within 24 hours of
    publishing (the deliveries of the last 12 weeks that had short links and are a day old); given an audience,
    its own deliveries' (whatever account), in its zone. A delivery's links are those made for its audience."""
    same_audience = func.coalesce(col(ShortLink.audience_id), 0) == func.coalesce(col(Delivery.audience_id), 0)
    mine = (col(Delivery.audience_id) == audience.id if audience is not None
            else col(Delivery.account_id).in_(account_ids or []))
    deliveries = session.execute(
        select(col(Delivery.post_id), col(Delivery.account_id), col(Delivery.audience_id), col(Delivery.sent_at))
        .join(ShortLink, and_(col(ShortLink.post_id) == col(Delivery.post_id),
                              col(ShortLink.account_id) == col(Delivery.account_id), same_audience))
        .where(mine)
        .where(col(Delivery.state) == DeliveryState.SENT.value)
        .where(col(Delivery.sent_at) >= now - HISTORY).where(col(Delivery.sent_at) <= now - READING_AT)
        .distinct()
    ).all()
    links = (col(ShortLink.audience_id) == audience.id if audience is not None
             else col(ShortLink.account_id).in_(account_ids or []))
    clicks = session.execute(
        select(col(ShortLink.post_id), col(ShortLink.account_id), col(ShortLink.audience_id), col(Click.at),
               col(Click.count))
        .join(Click, col(Click.link_id) == col(ShortLink.id))
        .where(links).where(col(Click.fetcher).is_(None))
        .where(col(Click.at) >= now - HISTORY - READING_AT)
    ).all()
    by_delivery: dict[tuple[int, int, int | None], list[tuple[datetime, int]]] = defaultdict(list)
    for post_id, account_id, audience_id, at, count in clicks:
        if at is not None:
            by_delivery[(post_id, account_id, audience_id)].append((at, int(count)))
    zone = ZoneInfo(audience.timezone if audience is not None else ws.timezone)
    scores: dict[tuple[int, int], list[float]] = defaultdict(list)
    sent: list[datetime] = []
    for post_id, account_id, audience_id, sent_at in deliveries:
        if sent_at is None:
            continue
        end = sent_at + READING_AT
        within = sum(n for at, n in by_delivery[(post_id, account_id, audience_id)] if sent_at <= at <= end)
        local = sent_at.astimezone(zone)
        scores[(local.weekday(), local.hour)].append(float(within))
        sent.append(sent_at)
    return ranked(scores, sent, by_clicks=True)


def default_slots(directory: Networks, networks: set[str]) -> list[Slot]:
    """The hours of the general defaults, those shared by the most of `networks` first."""
    shared: dict[tuple[int, int], int] = defaultdict(int)
    for network in networks:
        for w in defaults_for(directory, network):
            for day in w.days:
                for hour in range(w.start, w.end):
                    shared[(day, hour)] += 1
    most = max(shared.values(), default=0)
    return [Slot(day, hour, float(n)) for (day, hour), n in sorted(shared.items()) if n == most]


def accounts_on(session: Session, ws_id: int, network: str | None) -> list[Account]:
    """The workspace's accounts, or those on `network` (a sandbox account counts as the network it imitates)."""
    accounts = session.execute(select(Account).where(col(Account.workspace_id) == ws_id)).scalars().all()
    return [a for a in accounts if network is None or network in (a.network, account_rules(a))]


def best_slots(
    session: Session, networks: Networks, ws: Workspace, accounts: list[Account], now: datetime
) -> tuple[list[Slot], bool]:
    """The slots `next best` chooses from for posts to `accounts`, and whether they come from own numbers."""
    past = history(session, ws, [a.id for a in accounts if a.id is not None], now)
    if past.enough:
        return past.slots[:TOP], True
    return default_slots(networks, {account_rules(a) for a in accounts}), False


def next_start(slots: list[Slot], tz: str, after: datetime, taken: set[datetime]) -> datetime | None:
    """The soonest start of one of `slots` (hours of the week in `tz`) later than `after` and not in `taken`."""
    zone = ZoneInfo(tz)
    wanted = {(s.weekday, s.hour) for s in slots}
    first: date = after.astimezone(zone).date()
    for n in range(SEARCH_DAYS + 1):
        day = first + timedelta(days=n)
        for hour in range(24):
            if (day.weekday(), hour) not in wanted:
                continue
            at = datetime.combine(day, time(hour), tzinfo=zone).astimezone(ZoneInfo("UTC"))
            if at > after and at not in taken:
                return at
    return None


# --- /besttime ------------------------------------------------------------------------------------------------


def score_text(slot: Slot, past: History) -> str:
    if past.by_clicks:
        value = f"{slot.score:,.1f} clicks per post"
    elif past.by_rate:
        value = f"{100 * slot.score:.1f}% engagement rate"
    else:
        value = f"{slot.score:,.1f} engagements per post"
    return f"{value} ({slot.posts} post{'s' if slot.posts != 1 else ''})"


def click_lines(past: History, on: str, tz: str) -> list[str]:
    """/besttime clicks: the hours whose posts people clicked most, or why there aren't any yet."""
    if not past.enough:
        return [f"⏰ Not enough clicks history yet{on}: {past.posts} post{'s' if past.posts != 1 else ''} with short "
                f"links at least a day old in the last {HISTORY.days // 7} weeks; Herald needs {MIN_POSTS}. Short "
                "links need HERALD_PUBLIC_URL and /links on. /besttime shows the times by engagements."]
    lines = [f"⏰ Best times to post{on} for clicks, from this workspace's short links ({tz}):"]
    lines += [f"  {n}. {slot.label()} · {score_text(slot, past)}" for n, slot in enumerate(past.slots[:TOP], 1)]
    lines.append(f"Based on {past.posts} posts over {past.weeks} week{'s' if past.weeks != 1 else ''}: the people "
                 "who clicked each post's short links within 24 hours of publishing (preview fetches not counted).")
    return lines


@command(
    "besttime",
    usage="/besttime [clicks] [network] | /besttime [clicks] audience <name>", example="/besttime x",
    summary="when your posts do best, from your own numbers (general defaults until there are enough)",
    details=(
        f"Each post of the last {HISTORY.days // 7} weeks counts by its numbers 24 hours after publishing, in the "
        "hour of the week it went out (workspace timezone): engagement rate = engagements ÷ views where every "
        f"post has views, else engagements per post. With fewer than {MIN_POSTS} such posts you get general "
        f"defaults ({SOURCE}). /besttime clicks ranks the hours by the people who clicked each post's short "
        "links within 24 hours (Herald's own count, /links). /schedule <post> next best takes the next of the "
        "engagement times. /besttime [clicks] audience <name>: the same from that audience's own deliveries, in its zone."
    ),
    group="Engagement",
)
async def besttime(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    words = req.command.text.strip().lower().split()
    by_clicks = bool(words) and words[0] == "clicks"
    if words[by_clicks:by_clicks + 1] == ["audience"]:
        return audience_besttime(req, ws_id, " ".join(words[by_clicks + 1:]), by_clicks=by_clicks)
    wanted = " ".join(words[1:] if by_clicks else words) or None
    now = ctx.clock.now()
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        if wanted is not None and ctx.networks.profile(wanted) is None:
            here = sorted({account_rules(a) for a in accounts_on(session, ws_id, None)})
            everywhere = [p.key for p in ctx.networks.profiles()]
            raise UserError(f"'{wanted}' isn't a network. Try one of: {', '.join(here or everywhere)}. "
                            f"Usage: {req.spec.usage}")
        accounts = accounts_on(session, ws_id, wanted)
        ids = [a.id for a in accounts if a.id is not None]
        past = click_history(session, ws, ids, now) if by_clicks else history(session, ws, ids, now)
        networks = sorted({account_rules(a) for a in accounts} or ({wanted} if wanted else set()))
    on = f" on {ctx.networks.label(wanted)}" if wanted else ""
    tz = ws.timezone
    if by_clicks:
        return Reply("\n".join(click_lines(past, on, tz)))
    if past.enough:
        lines = [f"⏰ Best times to post{on}, from this workspace's own numbers ({tz}):"]
        lines += [f"  {n}. {slot.label()} · {score_text(slot, past)}"
                  for n, slot in enumerate(past.slots[:TOP], 1)]
        how = ("engagement rate = engagements ÷ views" if past.by_rate else
               "engagements = likes + comments + shares + quotes + saves + clicks (not every post has views, "
               "so no rate)")
        lines.append(f"Based on {past.posts} posts over {past.weeks} week{'s' if past.weeks != 1 else ''}: each "
                     f"post's numbers 24 hours after publishing; {how}.")
        lines.append("/schedule <post> next best takes the next of these times.")
        return Reply("\n".join(lines))
    lines = [f"⏰ Not enough history yet{on}: {past.posts} post{'s' if past.posts != 1 else ''} with numbers "
             f"24 hours after publishing in the last {HISTORY.days // 7} weeks; Herald needs {MIN_POSTS} to "
             "suggest times from your own numbers."]
    if not networks:
        lines.append("Connect an account first: /connect <network> …")
        return Reply("\n".join(lines))
    lines.append(f"General defaults — not your numbers, {SOURCE} — in {tz}:")
    for network in networks:
        label = ctx.networks.label(network)
        note = "" if own_defaults(ctx.networks, network) else " (the study's overall finding)"
        lines.append(f"  {label}: {window_text(defaults_for(ctx.networks, network))}{note}")
    lines.append("/schedule <post> next best uses these until your own history is enough.")
    return Reply("\n".join(lines))


def audience_besttime(req: Request, ws_id: int, name: str, *, by_clicks: bool = False) -> Reply:
    """/besttime [clicks] audience <name>: the best hours from the audience's own deliveries, in the audience's
    zone; refused while it has fewer than MIN_POSTS of them with a 24-hour reading (with short links, by clicks)."""
    if not name:
        raise UserError("Which audience? Usage: /besttime audience <name>, e.g. /besttime audience south")
    with req.ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        audience = get_audience(session, ws_id, name, removed_too=True)
        now = req.ctx.clock.now()
        past = (click_history(session, ws, None, now, audience=audience) if by_clicks
                else history(session, ws, None, now, audience=audience))
    tz = audience.timezone
    if by_clicks:
        if not past.enough:
            raise UserError(
                f"Not enough clicks history yet for audience {audience_name(audience)}: {past.posts} "
                f"post{'s' if past.posts != 1 else ''} reached it with short links at least a day old in the last "
                f"{HISTORY.days // 7} weeks; Herald needs {MIN_POSTS}. /besttime audience {audience_name(audience)} ranks "
                "its hours by engagement.")
        lines = [f"⏰ Best times to post to audience {audience_name(audience)} for clicks, from its own deliveries' short "
                 f"links, in its zone ({tz}):"]
        lines += [f"  {n}. {slot.label()} · {score_text(slot, past)}" for n, slot in enumerate(past.slots[:TOP], 1)]
        lines.append(f"Based on {past.posts} posts over {past.weeks} week{'s' if past.weeks != 1 else ''}: the "
                     "people who clicked each delivery's short links within 24 hours of publishing (preview fetches "
                     f"not counted), at its time in {tz}.")
        return Reply("\n".join(lines))
    if not past.enough:
        raise UserError(
            f"Not enough history yet for audience {audience_name(audience)}: {past.posts} post{'s' if past.posts != 1 else ''} "
            f"reached it with numbers 24 hours after publishing in the last {HISTORY.days // 7} weeks; Herald needs "
            f"{MIN_POSTS} to suggest its own times. /besttime shows the workspace's times meanwhile.")
    lines = [f"⏰ Best times to post to audience {audience_name(audience)}, from its own deliveries' numbers, in its zone ({tz}):"]
    lines += [f"  {n}. {slot.label()} · {score_text(slot, past)}" for n, slot in enumerate(past.slots[:TOP], 1)]
    how = ("engagement rate = engagements ÷ views" if past.by_rate else
           "engagements = likes + comments + shares + quotes + saves + clicks (not every post has views, so no rate)")
    lines.append(f"Based on {past.posts} posts over {past.weeks} week{'s' if past.weeks != 1 else ''}: each "
                 f"delivery to {audience_name(audience)}'s accounts, by its numbers 24 hours after publishing, at its time in "
                 f"{tz}; {how}.")
    return Reply("\n".join(lines))
