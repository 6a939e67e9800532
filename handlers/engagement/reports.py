"""Reports in the chat: /report <period> and /report campaign <name>; the numbers digests and /export share.

What a report counts:
- a period's posts are those whose `published_at` falls in it; each sent delivery counts with the
  numbers of its latest reading taken by the end of the period — a digest shows the period as it
  stood when it ended, even when it is sent late;
- the period before is as long (a calendar month: the month before) and its posts count with
  their numbers as they stood at *its* end, so both sets of posts are measured the same way. A
  /report of a period that ended a while ago (last month, asked on the 20th) reads both periods
  that long after their ends: this month's posts as of now, last month's as of 20 days after it;
- engagements = likes + comments + shares + quotes + saves + clicks (what a network doesn't give
  counts 0); engagement rate = engagements ÷ views, over the deliveries whose network gives views.
"""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func
from sqlmodel import Session, col, select

from handlers.core.chat import Reply
from handlers.core.commands import Request, command
from handlers.core.context import Context
from handlers.core.errors import UserError
from handlers.core.lookups import audience_accounts, audience_name, get_audience, get_workspace
from handlers.core.ports import Series
from handlers.core.when import format_delta, format_when
from handlers.core.words import short_text
from handlers.engagement.clicks import ClickCount, clicks_by_audience, period_click_lines, total_clicks
from handlers.engagement.metrics import ENGAGED, counted, engagements
from handlers.engagement.spread import period_spread, spread_lines
from handlers.engagement.traffic import funnel_lines
from storage.models import (
    METRIC_FIELDS,
    Account,
    Audience,
    Delivery,
    DeliveryState,
    MetricSnapshot,
    Post,
    PostState,
    ShortLink,
    Workspace,
)

ENGAGEMENT_FIELDS = ENGAGED
FORMULA = "engagements = likes + comments + shares + quotes + saves + clicks"
RATE_FORMULA = "engagement rate = engagements ÷ views, on the networks that give views"
TOP = 5
LISTED = 10  # posts listed by name in a report before "+k more"
NO_CAMPAIGN = "no campaign"
NO_AUDIENCE = "no audience"

ROLLING = {"day": 1, "week": 7, "month": 30}
PERIOD_HELP = (
    "day, week or month (the last 24 hours, 7 or 30 days), Nd (the last N days, e.g. 14d), "
    "a month like 2026-11, a day like 2026-11-05, or dates like 2026-11-01..2026-11-20 "
    "(whole days in the workspace timezone)"
)
_DAYS = re.compile(r"(\d{1,3})d")
_MONTH = re.compile(r"(\d{4})-(\d{2})")
_DATE = r"\d{4}-\d{2}-\d{2}"
_RANGE = re.compile(rf"({_DATE})(?:\.\.({_DATE}))?")


# -- periods ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """A span of time: `start` included, `end` excluded (or included when `through` — a span ending now)."""

    start: datetime
    end: datetime
    through: bool = False


@dataclass(frozen=True)
class Period:
    """What a report or export covers, the period it is compared with, and how to name both."""

    window: Window
    previous: Window
    name: str  # "the last 7 days", "November 2026"
    before: str  # "the 7 days before", "October 2026"
    key: str  # for file names: "2026-11-16_2026-11-23"
    during: str = ""  # "in the last 7 days", "on Mon 23 Nov 2026": for "nothing was published …"


def local_midnight(day: date, tz: str) -> datetime:
    """00:00 of `day` in `tz`, as UTC; where a DST change skips midnight (Chile, Lebanon), the day's first moment."""
    return datetime.combine(day, time(0, 0), tzinfo=ZoneInfo(tz)).astimezone(UTC)


YEARS = range(2000, 2101)  # periods Herald reads; anything else is a typo


def _year(year: int, text: str) -> int:
    if year not in YEARS:
        raise UserError(f"'{text}': give a year between {YEARS.start} and {YEARS.stop - 1}.")
    return year


def _day(text: str) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise UserError(f"'{text}' isn't a date (use YYYY-MM-DD, e.g. 2026-11-05).") from None
    _year(day.year, text)
    return day


def parse_period(text: str, now: datetime, tz: str, usage: str) -> Period:
    """Read a period word (see PERIOD_HELP); an empty text is the last 7 days."""
    word = text.strip().lower() or "week"
    days = ROLLING.get(word)
    if days is None and (match := _DAYS.fullmatch(word)):
        days = int(match.group(1))
        if not 1 <= days <= 366:
            raise UserError(f"'{word}': give between 1d and 366d. Usage: {usage}")
    if days is not None:
        span = timedelta(days=days)
        start = now - span
        noun = {1: "24 hours", 7: "7 days"}.get(days, f"{days} days")
        return Period(Window(start, now, through=True), Window(start - span, start),
                      f"the last {noun}", f"the {noun} before",
                      f"{start.astimezone(ZoneInfo(tz)):%Y-%m-%d}_{now.astimezone(ZoneInfo(tz)):%Y-%m-%d}",
                      f"in the last {noun}")
    if match := _MONTH.fullmatch(word):
        year, month = _year(int(match.group(1)), word), int(match.group(2))
        if not 1 <= month <= 12:
            raise UserError(f"'{word}' isn't a month (use YYYY-MM, e.g. 2026-11). Usage: {usage}")
        first = date(year, month, 1)
        following = date(year + month // 12, month % 12 + 1, 1)
        before = date(year - (month == 1), (month - 2) % 12 + 1, 1)
        return Period(Window(local_midnight(first, tz), local_midnight(following, tz)),
                      Window(local_midnight(before, tz), local_midnight(first, tz)),
                      f"{first:%B %Y}", f"{before:%B %Y}", f"{first:%Y-%m}", f"in {first:%B %Y}")
    if match := _RANGE.fullmatch(word):
        first = _day(match.group(1))
        last = _day(match.group(2)) if match.group(2) else first
        if last < first:
            raise UserError(f"'{word}' ends before it starts: put the earlier date first. Usage: {usage}")
        count = (last - first).days + 1
        earlier = first - timedelta(days=count)
        start, end = local_midnight(first, tz), local_midnight(last + timedelta(days=1), tz)
        name = day_words(first) if count == 1 else f"{day_words(first, year=False)} – {day_words(last)}"
        return Period(Window(start, end), Window(local_midnight(earlier, tz), start), name,
                      "the day before" if count == 1 else f"the {count} days before",
                      f"{first:%Y-%m-%d}" if count == 1 else f"{first:%Y-%m-%d}_{last:%Y-%m-%d}",
                      f"on {name}" if count == 1 else f"from {day_words(first)} to {day_words(last)}")
    raise UserError(f"'{text.strip()}' isn't a period. Use {PERIOD_HELP}. Usage: {usage}")


def day_words(day: date, *, year: bool = True) -> str:
    """'Mon 5 Nov 2026' (or 'Mon 5 Nov')."""
    text = f"{day:%a} {day.day} {day:%b}"
    return f"{text} {day.year}" if year else text


def span_text(start: datetime, end: datetime, tz: str) -> str:
    """'Mon 16 Nov 2026 10:00 → Mon 23 Nov 2026 10:00 CET (Europe/Paris)': the zone once when both share it."""
    first, last = format_when(start, tz), format_when(end, tz)
    zone = ZoneInfo(tz)
    if start.astimezone(zone).tzname() == end.astimezone(zone).tzname():
        first = " ".join(first.split(" ")[:5])
    return f"{first} → {last}"


# -- the numbers --------------------------------------------------------------------------------


@dataclass
class Sent:
    """One sent delivery of a published post, with its numbers as of one reading (None: no such number)."""

    post_id: int
    text: str
    campaign: str | None
    post_state: str
    published_at: datetime
    delivery_id: int
    network: str
    account: str
    url: str | None
    sent_at: datetime | None
    numbers: dict[str, int | None]
    read_at: datetime | None
    followers: int | None = None
    sent_text: str | None = None  # the text that went out on this account (its variant), if kept
    audience_id: int | None = None  # the audience this delivery reached (None: no audience)
    audience: str | None = None  # that audience's name

    @property
    def engagements(self) -> int:
        return sum(self.numbers.get(f) or 0 for f in ENGAGEMENT_FIELDS)

    @property
    def views(self) -> int | None:
        return self.numbers.get("impressions")

    def rate(self) -> tuple[float, str] | None:
        """(engagement rate in %, its basis): ÷ views where the network gives them, else ÷ followers."""
        if self.views:
            return 100 * self.engagements / self.views, "views"
        if self.followers:
            return 100 * self.engagements / self.followers, "followers"
        return None


def sent_deliveries(
    session: Session, workspace_id: int, *, window: Window | None = None, campaign: str | None = None,
    as_of: datetime | None = None,
) -> list[Sent]:
    """Every sent delivery of the workspace's posts published in `window` (or of `campaign`), in publishing
    order, with its latest reading taken by `as_of` (None: the latest of all)."""
    query = (
        select(Post, Delivery, Account)
        .where(Post.workspace_id == workspace_id).where(col(Post.published_at).is_not(None))
        .where(col(Delivery.post_id) == col(Post.id)).where(col(Delivery.account_id) == col(Account.id))
        .where(Delivery.state == DeliveryState.SENT.value)
    )
    if window is not None:
        query = query.where(col(Post.published_at) >= window.start)
        query = query.where(col(Post.published_at) <= window.end if window.through else
                            col(Post.published_at) < window.end)
    if campaign is not None:
        query = query.where(func.lower(col(Post.campaign)) == campaign.lower())
    rows = session.exec(query.order_by(col(Post.published_at), col(Post.id), col(Account.name),
                                       col(Delivery.audience_id))).all()
    readings = latest_readings(session, [d.id for _p, d, _a in rows if d.id is not None], as_of)
    audience_ids = sorted({d.audience_id for _p, d, _a in rows if d.audience_id is not None})
    audiences = dict(session.exec(select(Audience.id, Audience.name).where(
        col(Audience.id).in_(audience_ids))).all()) if audience_ids else {}
    found = []
    for post, delivery, account in rows:
        snap = readings.get(delivery.id or 0)
        assert post.published_at is not None
        found.append(Sent(
            post_id=post.id or 0, text=post.text, campaign=post.campaign, post_state=post.state,
            published_at=post.published_at, delivery_id=delivery.id or 0, network=account.network,
            account=account.name, url=delivery.remote_url, sent_at=delivery.sent_at,
            numbers={f: getattr(snap, f) if snap is not None else None for f in METRIC_FIELDS},
            read_at=snap.taken_at if snap is not None else None,
            followers=snap.followers if snap is not None else None,
            sent_text=delivery.text, audience_id=delivery.audience_id,
            audience=audiences.get(delivery.audience_id) if delivery.audience_id is not None else None,
        ))
    return found


def latest_readings(session: Session, delivery_ids: list[int], as_of: datetime | None) -> dict[int, MetricSnapshot]:
    """Each delivery's latest MetricSnapshot taken by `as_of`: one grouped query per 500 deliveries."""
    found: dict[int, MetricSnapshot] = {}
    for start in range(0, len(delivery_ids), 500):
        chunk = delivery_ids[start:start + 500]
        newest: Any = select(col(MetricSnapshot.delivery_id).label("delivery_id"),
                        func.max(MetricSnapshot.taken_at).label("taken_at")).where(
            col(MetricSnapshot.delivery_id).in_(chunk))
        if as_of is not None:
            newest = newest.where(col(MetricSnapshot.taken_at) <= as_of)
        latest = newest.group_by(col(MetricSnapshot.delivery_id)).subquery()
        snaps = session.exec(
            select(MetricSnapshot).join(latest, and_(
                col(MetricSnapshot.delivery_id) == latest.c.delivery_id,
                col(MetricSnapshot.taken_at) == latest.c.taken_at,
            )).order_by(col(MetricSnapshot.id))
        ).all()
        for snap in snaps:  # two readings at the same instant: the later row wins
            found[snap.delivery_id] = snap
    return found


@dataclass
class Tally:
    """Sums over some deliveries: the posts they belong to, each number, engagements, views."""

    posts: set[int] = field(default_factory=set)
    deliveries: int = 0
    numbers: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    engagements: int = 0
    views: int = 0
    viewed_engagements: int = 0  # engagements of the deliveries that give views: the rate's numerator

    def add(self, sent: Sent) -> None:
        self.posts.add(sent.post_id)
        self.deliveries += 1
        for name in METRIC_FIELDS:
            self.numbers[name] += sent.numbers.get(name) or 0
        self.engagements += sent.engagements
        if sent.views:
            self.views += sent.views
            self.viewed_engagements += sent.engagements

    @property
    def rate(self) -> float | None:
        return 100 * self.viewed_engagements / self.views if self.views else None


def tally(rows: Iterable[Sent]) -> Tally:
    out = Tally()
    for sent in rows:
        out.add(sent)
    return out


def grouped(rows: Iterable[Sent], key: str) -> dict[str, Tally]:
    groups: dict[str, Tally] = defaultdict(Tally)
    for sent in rows:
        if key == "network":
            name = sent.network
        elif key == "audience":
            name = sent.audience or NO_AUDIENCE
        else:
            name = sent.campaign or NO_CAMPAIGN
        groups[name].add(sent)
    return groups


def summarize(numbers: dict[str, int]) -> str:
    return " · ".join(counted(numbers[f], f) for f in METRIC_FIELDS if numbers.get(f)) or "no numbers yet"


def change(now: float, before: float) -> str:
    """'+25%', '-40%', '±0%', or 'new' when there was nothing before."""
    if before == 0:
        return "±0%" if now == 0 else "new"
    percent = round(100 * (now - before) / before)
    return "±0%" if percent == 0 else f"{percent:+d}%"


def versus(now: int, before: int) -> str:
    return f"{now:,} (before: {before:,}, {change(now, before)})"


def plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def rate_text(rate: float | None) -> str:
    return "–" if rate is None else f"{rate:.1f}%"


def group_lines(now: dict[str, Tally], before: dict[str, Tally] | None, *, limit: int = LISTED,
                more: str = "") -> list[str]:
    """'  x: 2 posts · 150 engagements (before: 100, +50%) · 3,000 views · rate 5.0%' per group, most engaged first."""
    names = set(now) | set(before or {})
    ordered = sorted(names, key=lambda n: (-(now[n].engagements if n in now else 0), n))
    lines = []
    for name in ordered:
        this = now.get(name) or Tally()
        parts = [plural(len(this.posts), "post")]
        if before is None:
            parts.append(f"{this.engagements:,} engagements")
        else:
            earlier = (before.get(name) or Tally()).engagements
            parts.append(f"{this.engagements:,} engagements (before: {earlier:,}, {change(this.engagements, earlier)})")
        if this.views:
            parts.append(f"{this.views:,} views · rate {rate_text(this.rate)}")
        lines.append(f"  {name}: " + " · ".join(parts))
    if len(lines) > limit:
        lines = [*lines[:limit], f"  +{len(lines) - limit} more{more}"]
    return lines


def ranked_posts(rows: list[Sent]) -> list[tuple[int, Tally, Sent]]:
    """Posts by engagements (then by number): (post id, its tally, one of its rows for text and campaign)."""
    per_post: dict[int, Tally] = defaultdict(Tally)
    first: dict[int, Sent] = {}
    for sent in rows:
        per_post[sent.post_id].add(sent)
        first.setdefault(sent.post_id, sent)
    return sorted(((p, t, first[p]) for p, t in per_post.items()), key=lambda item: (-item[1].engagements, item[0]))


def top_lines(rows: list[Sent], limit: int = TOP) -> list[str]:
    lines = [f"Top posts ({FORMULA}):"]
    for place, (post_id, numbers, sent) in enumerate(ranked_posts(rows)[:limit], start=1):
        rate = f" · {rate_text(numbers.rate)} of {numbers.views:,} views" if numbers.views else ""
        lines.append(f"  {place}. #{post_id} · {numbers.engagements:,} engagements{rate} · {short_text(sent.text, 50)}")
    return lines


def published_lines(rows: list[Sent], tz: str) -> list[str]:
    """What went out: one line per post, in publishing order, with the accounts it reached."""
    accounts: dict[int, list[str]] = defaultdict(list)
    posts: dict[int, Sent] = {}
    for sent in rows:
        if sent.account not in accounts[sent.post_id]:  # an account that reached two audiences is named once
            accounts[sent.post_id].append(sent.account)
        posts.setdefault(sent.post_id, sent)
    lines = []
    for post_id, sent in list(posts.items())[:LISTED]:
        local = sent.published_at.astimezone(ZoneInfo(tz))
        partly = " (partly published)" if PostState(sent.post_state) == PostState.PARTIALLY_PUBLISHED else ""
        lines.append(f"  #{post_id} {day_words(local.date(), year=False)} {local:%H:%M} · {', '.join(accounts[post_id])}{partly} · "
                     f"{short_text(sent.text, 40)}")
    if len(posts) > LISTED:
        lines.append(f"  +{len(posts) - LISTED} more (/export has them all)")
    return lines


@dataclass
class PeriodNumbers:
    now: list[Sent]
    before: list[Sent]
    lag: timedelta  # both periods' posts count with the readings taken up to this long after the period's end
    running: bool  # the period hasn't ended yet: its posts count with their numbers so far


def period_numbers(session: Session, workspace_id: int, window: Window, previous: Window,
                   now: datetime | None = None) -> PeriodNumbers:
    """Both periods' deliveries with their numbers read by the period's end — or, given `now` (a /report),
    read as long after each period's end as `now` is after the asked period's."""
    lag = max(now - window.end, timedelta()) if now is not None else timedelta()
    return PeriodNumbers(
        now=sent_deliveries(session, workspace_id, window=window, as_of=window.end + lag),
        before=sent_deliveries(session, workspace_id, window=previous, as_of=previous.end + lag),
        lag=lag,
        running=now is not None and window.end > now,
    )


def measured(numbers: PeriodNumbers) -> str:
    lag = numbers.lag
    if numbers.running:
        return "this period's posts with their numbers so far, the one before's as they stood at its end"
    if lag < timedelta(minutes=1):
        return "each period's posts with their numbers as they stood at its end"
    return f"each period's posts with their numbers as read up to {format_delta(STAMP + lag, STAMP)[3:]} after its end"


STAMP = datetime(2000, 1, 1, tzinfo=UTC)  # any instant: format_delta measures lag from it


def period_lines(numbers: PeriodNumbers, tz: str, before_name: str, previous: Window, *,
                 per_audience: bool = True) -> list[str]:
    """The body of a period report or digest (after its title); `per_audience` False leaves out the lines per
    audience (a report of one audience)."""
    now, before = tally(numbers.now), tally(numbers.before)
    compared = f"Compared with {before_name} ({span_text(previous.start, previous.end, tz)}): {measured(numbers)}."
    if not numbers.now:
        return [compared, f"Nothing was published in this period (before: {plural(len(before.posts), 'post')}, "
                          f"{before.engagements:,} engagements)."]
    lines = [
        compared,
        f"Published: {plural(len(now.posts), 'post')} on {plural(now.deliveries, 'account')} "
        f"(before: {len(before.posts):,}, {change(len(now.posts), len(before.posts))})",
        *published_lines(numbers.now, tz),
        f"Engagements: {versus(now.engagements, before.engagements)} · views: {versus(now.views, before.views)} · "
        f"engagement rate: {rate_text(now.rate)} (before: {rate_text(before.rate)})",
        f"Total: {summarize(now.numbers)}",
        "Per network:",
        *group_lines(grouped(numbers.now, "network"), grouped(numbers.before, "network")),
        "Per campaign:",
        *group_lines(grouped(numbers.now, "campaign"), grouped(numbers.before, "campaign"),
                     more=" (/report campaign <name> shows one)"),
        *(audience_group_lines(numbers) if per_audience else []),
        *top_lines(numbers.now),
        f"({RATE_FORMULA}.)",
    ]
    return lines


def audience_group_lines(numbers: PeriodNumbers) -> list[str]:
    """'Per audience:' and a line per audience (as per network), when a delivery of either period reached one;
    nothing otherwise (a workspace without audiences reads as it always has)."""
    if not any(s.audience_id is not None for s in [*numbers.now, *numbers.before]):
        return []
    return ["Per audience:", *group_lines(grouped(numbers.now, "audience"), grouped(numbers.before, "audience"),
                                          more=" (/report by audience compares them)")]


async def period_chart(ctx: Context, numbers: PeriodNumbers, title: str, now_name: str, before_name: str) -> bytes | None:
    """Engagements per network, this period beside the one before (bars), drawn off the event loop."""
    if ctx.charts is None or not numbers.now:
        return None
    now, before = grouped(numbers.now, "network"), grouped(numbers.before, "network")
    labels = sorted(set(now) | set(before))
    values = {
        now_name: [float(now[n].engagements) if n in now else 0.0 for n in labels],
        before_name: [float(before[n].engagements) if n in before else 0.0 for n in labels],
    }
    return await asyncio.to_thread(ctx.charts.bars, title, labels, values, ylabel="engagements")


# -- /report ------------------------------------------------------------------------------------


@command(
    "report",
    usage=("/report [day|week|month|<period>] [by audience] | /report campaign <name> | "
           "/report audience <name> [period]"),
    example="/report week",
    summary="posts published, totals per network and campaign, top posts, vs the period before; or one campaign",
    details=(
        f"Periods: {PERIOD_HELP}. The period before is as long (a calendar month: the month before).\n"
        "Each period's posts count with the numbers read by its end; for a period that ended a while ago, both "
        "periods are read that long after their ends (the last period as it is now).\n"
        "/report campaign <name>: every published post of the campaign, compared per post with the "
        "workspace's other posts published since the campaign's first post.\n"
        "/report week by audience: the audiences side by side (posts, views, engagements, rate, short-link "
        "clicks) in a table and a chart; /report audience <name> week: the report of one audience's deliveries."
        f"\n{FORMULA}; {RATE_FORMULA}."
    ),
    group="Engagement",
)
async def report(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    text = req.command.text.strip()
    head, _, rest = text.partition(" ")
    if head.lower() == "campaign":
        return await campaign_report(req, ws_id, rest.strip())
    if head.lower() == "audience":
        return await audience_report(req, ws_id, rest.strip())
    words = text.split()
    by_audience = (["by", "audience"], ["by", "audiences"])
    if [w.lower() for w in words[-2:]] in by_audience:
        return await audience_comparison(req, ws_id, " ".join(words[:-2]))
    if [w.lower() for w in words[:2]] in by_audience:  # /report by audience week
        return await audience_comparison(req, ws_id, " ".join(words[2:]))
    now = ctx.clock.now()
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        tz = ws.timezone
        period = parse_period(text, now, tz, req.spec.usage)
        numbers = period_numbers(session, ws_id, period.window, period.previous, now)
        # the sharers first seen in the period (handlers/engagement/spread.py): shown when there are any
        shared = period_spread(session, ws_id, period.window.start, period.window.end + timedelta(
            microseconds=1 if period.window.through else 0), tz=tz)
        clicks = period_click_lines(session, ws_id, period.window.start, period.window.end + timedelta(
            microseconds=1 if period.window.through else 0), (period.previous.start, period.previous.end))
        # the site's visits and conversions from the period's posts, when the workspace reads site analytics
        clicks += funnel_lines(session, ws_id, sorted({s.post_id for s in numbers.now}), tz, now)
    title = f"📈 Report for {period.name} ({span_text(period.window.start, period.window.end, tz)})"
    body = period_lines(numbers, tz, period.before, period.previous) + clicks
    if shared.shares or shared.second:
        body += spread_lines(ctx, shared, more=" — /spread shows the last 7 days with a chart")
    image = await period_chart(ctx, numbers, f"Engagements per network: {period.name} vs {period.before}",
                               period.name, period.before)
    return Reply("\n".join([title, *body]), image=image)


async def campaign_report(req: Request, ws_id: int, name: str) -> Reply:
    ctx = req.ctx
    if not name:
        raise UserError("Which campaign? Usage: /report campaign <name>, e.g. /report campaign spring")
    now = ctx.clock.now()
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        rows = sent_deliveries(session, ws_id, campaign=name)
        if not rows:
            raise UserError(no_campaign(session, ws, name))
        name = rows[0].campaign or name
        since = rows[0].published_at
        others = [r for r in sent_deliveries(session, ws_id, window=Window(since, now, through=True))
                  if (r.campaign or "").lower() != name.lower()]
        history = campaign_history(session, [r.delivery_id for r in rows], {r.delivery_id: r.network for r in rows})
        clicks = period_click_lines(session, ws_id, rows[0].published_at, now + timedelta(microseconds=1),
                                    post_ids=sorted({r.post_id for r in rows}))
        clicks += funnel_lines(session, ws_id, sorted({r.post_id for r in rows}), ws.timezone, now, per_post=True)
    tz = ws.timezone
    total, other = tally(rows), tally(others)
    per_post = total.engagements / len(total.posts)
    last = rows[-1].published_at
    when = format_when(since, tz) if last == since else span_text(since, last, tz)
    lines = [
        f"📈 Campaign {name}: {plural(len(total.posts), 'post')} on {plural(total.deliveries, 'account')}, "
        f"published {when}; latest numbers read by {format_when(now, tz)}",
        *published_lines(rows, tz),
        f"Engagements: {total.engagements:,} · views: {total.views:,} · engagement rate: {rate_text(total.rate)}",
        f"Total: {summarize(total.numbers)}",
        "Per network:",
        *group_lines(grouped(rows, "network"), None),
    ]
    if other.posts:
        average = other.engagements / len(other.posts)
        lines.append(
            f"Per post: {per_post:,.1f} engagements on average, vs {average:,.1f} for the "
            f"{plural(len(other.posts), 'other post')} published since the campaign's first post "
            f"({change(per_post, average)}); engagement rate {rate_text(total.rate)} vs {rate_text(other.rate)}."
        )
    else:
        lines.append(f"Per post: {per_post:,.1f} engagements on average; no other post was published since the "
                     "campaign's first one, so there is nothing to compare with.")
    lines += [*top_lines(rows), *clicks, f"({RATE_FORMULA}.)"]
    image = None
    if ctx.charts is not None and any(s.points for s in history):
        image = await asyncio.to_thread(ctx.charts.line, f"Campaign {name}: engagements over time", history,
                                        ylabel="engagements", tz=tz)
    return Reply("\n".join(lines), image=image)


def no_campaign(session: Session, ws: Workspace, name: str) -> str:
    """Why /report campaign found nothing: no published post yet, or no such campaign (with the known ones)."""
    waiting = session.exec(
        select(func.count()).select_from(Post).where(Post.workspace_id == ws.id)
        .where(func.lower(col(Post.campaign)) == name.lower())
    ).one()
    if waiting:
        return f"Campaign '{name}' has {plural(int(waiting), 'post')} but none is published yet, so there are no numbers."
    known = sorted({c for c in session.exec(select(Post.campaign).where(Post.workspace_id == ws.id)).all() if c})
    listed = ", ".join(known) if known else "none yet (give a post one with campaign=<name>)"
    return f"There's no campaign '{name}' in this workspace. Campaigns: {listed}."


def campaign_history(session: Session, delivery_ids: list[int], networks: dict[int, str]) -> list[Series]:
    """Engagements over time per network: after each reading, the sum of each delivery's latest numbers."""
    snaps = session.exec(
        select(MetricSnapshot).where(col(MetricSnapshot.delivery_id).in_(delivery_ids))
        .order_by(col(MetricSnapshot.taken_at), col(MetricSnapshot.id))
    ).all() if delivery_ids else []
    latest: dict[int, int] = {}
    totals: dict[str, int] = defaultdict(int)
    points: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    for snap in snaps:
        if snap.taken_at is None:
            continue
        network = networks[snap.delivery_id]
        engaged = engagements(snap)
        totals[network] += engaged - latest.get(snap.delivery_id, 0)
        latest[snap.delivery_id] = engaged
        value = float(totals[network])
        line = points[network]
        if line and line[-1][0] == snap.taken_at:
            line[-1] = (snap.taken_at, value)
        else:
            line.append((snap.taken_at, value))
    return [Series(network, tuple(points[network])) for network in sorted(points)]


# -- audiences -------------------------------------------------------------------------------------


def measured_alone(numbers: PeriodNumbers) -> str:
    """How the period's posts are measured, said without the period before."""
    if numbers.running:
        return "the period's posts with their numbers so far"
    if numbers.lag < timedelta(minutes=1):
        return "the period's posts with their numbers as they stood at its end"
    return (f"the period's posts with their numbers as read up to {format_delta(STAMP + numbers.lag, STAMP)[3:]} "
            "after its end")


@dataclass
class AudienceRow:
    """One audience's part of /report … by audience."""

    name: str
    zone: str
    tally: Tally
    clicks: ClickCount
    audience_id: int | None


def audience_rows(session: Session, workspace_id: int, rows: list[Sent], until: datetime) -> tuple[list[AudienceRow], bool]:
    """A row per audience of the workspace (and per removed one these posts reached, and 'no audience' when some
    deliveries reached none), most engaged first, with the people who clicked its short links on these posts
    before `until`; and whether these posts have short links at all."""
    audiences = {a.id: a for a in session.exec(
        select(Audience).where(Audience.workspace_id == workspace_id).order_by(col(Audience.name))).all()}
    post_ids = sorted({r.post_id for r in rows})
    has_links = bool(post_ids) and session.exec(
        select(ShortLink.id).where(col(ShortLink.post_id).in_(post_ids)).limit(1)).first() is not None
    clicks = clicks_by_audience(session, workspace_id=workspace_id, post_ids=post_ids, until=until) if has_links else {}
    per: dict[int | None, Tally] = defaultdict(Tally)
    for sent in rows:
        per[sent.audience_id].add(sent)
    out = []
    for audience_id, audience in audiences.items():
        if audience.removed_at is None or audience_id in per:
            out.append(AudienceRow(
                audience_name(audience) + (" (removed)" if audience.removed_at is not None else ""), audience.timezone,
                per.get(audience_id) or Tally(),
                total_clicks(c for (u, _a), c in clicks.items() if u == audience_id), audience_id))
    out.sort(key=lambda row: (-row.tally.engagements, row.name))
    if None in per:
        out.append(AudienceRow(NO_AUDIENCE, "–", per[None],
                               total_clicks(c for (u, _a), c in clicks.items() if u is None), None))
    return out, has_links


CHART_METRICS = ("posts", "views", "engagements", "engagement rate %", "clicks")
CHART_MOST = 8  # audiences drawn side by side before the chart keeps the most engaged


def audience_chart_values(rows: list[AudienceRow]) -> dict[str, list[float]]:
    """Per audience (one bar in each metric's group): posts, views, engagements, engagement rate in %, clicks."""
    return {row.name: [float(len(row.tally.posts)), float(row.tally.views), float(row.tally.engagements),
                       round(row.tally.rate or 0.0, 1), float(row.clicks.people)]
            for row in rows[:CHART_MOST]}


async def audience_comparison(req: Request, ws_id: int, period_text: str) -> Reply:
    """/report [period] by audience: the audiences side by side, a table and a grouped bar chart."""
    ctx = req.ctx
    now = ctx.clock.now()
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        tz = ws.timezone
        period = parse_period(period_text, now, tz, req.spec.usage)
        numbers = period_numbers(session, ws_id, period.window, period.previous, now)
        known = session.exec(select(Audience.id).where(Audience.workspace_id == ws_id)
                             .where(Audience.removed_at == None).limit(1)).first()  # noqa: E711 - SQL IS NULL
        if known is None and not any(s.audience_id is not None for s in numbers.now):
            raise UserError("This workspace has no audiences yet, so there's nothing to compare. "
                            "Add one: /audience add south accounts=acme-es tz=Europe/Madrid lang=es")
        until = period.window.end + numbers.lag + timedelta(microseconds=1)
        rows, has_links = audience_rows(session, ws_id, numbers.now, until)
    span = span_text(period.window.start, period.window.end, tz)
    title = f"📈 Audiences compared: {period.name} ({span})"
    if not numbers.now:
        return Reply(f"{title}\nNothing was published {period.during}, so there's nothing to compare.")
    lines = [title, f"Counted: {measured_alone(numbers)}; a post that reached two audiences counts in each.",
             "Audience | Zone | Posts | Views | Engagements | Rate | Clicks"]
    for row in rows:
        clicks = f"{row.clicks.people:,}" if has_links else "–"
        lines.append(f"{row.name} | {row.zone} | {len(row.tally.posts):,} | {row.tally.views:,} | "
                     f"{row.tally.engagements:,} | {rate_text(row.tally.rate)} | {clicks}")
    if has_links:
        apart = total_clicks(row.clicks for row in rows)
        lines.append(f"Clicks: the people who clicked each audience's short links on these posts · "
                     f"{apart.fetch_share()}.")
    else:
        lines.append("Clicks: these posts had no short links (/links).")
    lines.append(f"({FORMULA}; {RATE_FORMULA}.) /report audience <name> shows one audience.")
    image = None
    if ctx.charts is not None:
        values = audience_chart_values(rows)
        if len(rows) > CHART_MOST:
            lines.append(f"The chart shows the {CHART_MOST} most engaged audiences.")
        image = await asyncio.to_thread(ctx.charts.bars, f"Audiences compared: {period.name}", list(CHART_METRICS),
                                        values, ylabel="", split=True)
    return Reply("\n".join(lines), image=image)


def audience_click_lines(session: Session, workspace_id: int, audience_id: int, rows: list[Sent],
                         until: datetime) -> list[str]:
    """The people who clicked the audience's short links on these posts, per account, fetches apart; nothing
    when they had no short link."""
    post_ids = sorted({r.post_id for r in rows})
    if not post_ids or session.exec(select(ShortLink.id).where(col(ShortLink.post_id).in_(post_ids))
                                    .where(ShortLink.audience_id == audience_id).limit(1)).first() is None:
        return []
    clicks = {a: c for (u, a), c in clicks_by_audience(session, workspace_id=workspace_id, post_ids=post_ids,
                                                         until=until).items() if u == audience_id}
    total = total_clicks(clicks.values())
    lines = [f"Short-link clicks on these posts: {total.people:,} by people · {total.fetch_share()}"]
    if total.people:
        names = dict(session.exec(select(Account.id, Account.name).where(col(Account.id).in_(list(clicks)))).all())
        ranked = sorted(((c.people, names.get(a, f"account {a}")) for a, c in clicks.items() if c.people),
                        key=lambda pair: (-pair[0], pair[1]))
        lines.append("  Per account: " + " · ".join(f"{name} {n:,}" for n, name in ranked))
    return lines


async def audience_report(req: Request, ws_id: int, rest: str) -> Reply:
    """/report audience <name> [period]: the period report of one audience's deliveries."""
    ctx = req.ctx
    name, _, period_text = rest.partition(" ")
    if not name:
        raise UserError("Which audience? Usage: /report audience <name> [period], e.g. /report audience south week")
    now = ctx.clock.now()
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        tz = ws.timezone
        audience = get_audience(session, ws_id, name, removed_too=True)
        period = parse_period(period_text, now, tz, req.spec.usage)
        numbers = period_numbers(session, ws_id, period.window, period.previous, now)
        mine = PeriodNumbers(now=[s for s in numbers.now if s.audience_id == audience.id],
                             before=[s for s in numbers.before if s.audience_id == audience.id],
                             lag=numbers.lag, running=numbers.running)
        accounts = [a.name for a in audience_accounts(session, audience.id or 0)]
        clicks = audience_click_lines(session, ws_id, audience.id or 0, mine.now,
                                      period.window.end + numbers.lag + timedelta(microseconds=1))
    removed = " (removed)" if audience.removed_at else ""
    title = (f"📈 Report for audience {audience_name(audience)}{removed} ({audience.timezone}, {audience.language}), "
             f"{period.name} "
             f"({span_text(period.window.start, period.window.end, tz)})")
    reached = f"Reached through {', '.join(accounts)}." if accounts else "No account reaches it now."
    body = period_lines(mine, tz, period.before, period.previous, per_audience=False) + clicks
    image = await period_chart(ctx, mine, f"Audience {audience_name(audience)}: engagements per network, {period.name} vs "
                               f"{period.before}", period.name, period.before)
    return Reply("\n".join([title, reached, *body]), image=image)
