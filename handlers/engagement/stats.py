"""Per-post reports: `/stats <post>`, and the automatic reports 1 h, 24 h and 7 d after publishing (`/postreports`).

A report shows each account's numbers (likes, comments, shares, quotes, views, clicks, saves: whichever
its network gives), the post's total, the engagement rate with its formula and denominator, and a
chart of engagements over time. "The change since the last report" is the change since the numbers
the team was last shown for the post: every report marks the readings it showed (`MetricSnapshot.shown_at`),
and the next one compares with those.

Automatic reports (`post_reports_task`, every few minutes in every worker):
- each mark (Workspace.post_reports, e.g. "1h,24h,7d") is sent once per post, claimed with the key
  `postreport:<post>:<mark>` (handlers.core.notices.claim_once), so two workers never both send it;
- after downtime only the latest mark that has come is sent, never a backlog of three, and a mark more
  than LATE_LIMIT past is dropped (so turning reports on, or a long outage, doesn't flood the chat with
  reports on old posts);
- a report wants numbers from after its mark: when an account's last reading is older than the mark,
  its next reading is brought forward to now and the normal metrics poll (handlers.engagement.metrics.poll_metrics,
  with its rate limits and token refresh) runs before the report is written. If the network doesn't
  answer, the report shows the last numbers it has and says when they were read;
- a post whose every account is on a network that gives no numbers (Telegram channels) gets no
  automatic report: it would say nothing, three times.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, update
from sqlmodel import Session, col, select

from handlers.core.access import ADMINS
from handlers.core.audit import audit
from handlers.core.chat import Reply
from handlers.core.commands import Param, Request, command, periodic
from handlers.core.context import Context
from handlers.core.errors import UserError
from handlers.core.lookups import audience_name, get_post, get_workspace, post_targets
from handlers.core.notices import claim_once, tell_team
from handlers.core.ports import Series
from handlers.core.when import show_time
from handlers.core.words import short_text
from handlers.engagement.clicks import ClickCount, clicks_by, clicks_by_audience, total_clicks
from handlers.engagement.metrics import ENGAGED, LABELS, counted, engagements, poll_metrics
from handlers.engagement.reports import NO_AUDIENCE
from handlers.engagement.spread import period_spread, spread_lines
from handlers.engagement.traffic import funnel_lines
from storage.models import (
    METRIC_FIELDS,
    Audience,
    ChatLink,
    Delivery,
    DeliveryState,
    MetricSnapshot,
    Post,
    SentOnce,
    ShortLink,
    Workspace,
)

log = logging.getLogger("herald.post_reports")

# what counts as an engagement (the rate's numerator); views are the denominator, not an engagement
# engagement.ENGAGED in the order these reports have always written it
FORMULA_ORDER: tuple[str, ...] = ("likes", "comments", "shares", "quotes", "clicks", "saves")
assert sorted(FORMULA_ORDER) == sorted(ENGAGED)
FORMULA = "Engagements = " + " + ".join(LABELS[f] for f in FORMULA_ORDER) + "."
# networks whose API gives Herald no numbers at all, and why (said in the report instead of "no numbers yet")
NO_NUMBERS = {
    "telegram": "Telegram gives bots no view or reaction counts for channel posts",
}

EVERY = timedelta(minutes=5)  # how often the task looks for reports that are due
LATE_LIMIT = timedelta(hours=24)  # a report due longer ago than this is dropped, not sent late
MARK_MIN, MARK_MAX = timedelta(minutes=15), timedelta(days=30)  # Herald stops reading numbers at 30 days
MAX_MARKS = 6
UNITS = {"m": 1, "h": 60, "d": 1440}
MARK_RE = re.compile(r"(\d{1,5})\s*(m|mins?|minutes?|h|hrs?|hours?|d|days?)")


# --- marks: "1h,24h,7d" ---------------------------------------------------------------------------


def mark_label(minutes: int) -> str:
    """The stored form of a mark: 90m, 1h, 24h, 2d (a day and more in days unless 24h)."""
    if minutes % 1440 == 0 and minutes >= 2880:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


def mark_words(label: str) -> str:
    """'1h' → '1 hour', '24h' → '24 hours', '7d' → '7 days', '90m' → '90 minutes'."""
    value, unit = int(label[:-1]), {"m": "minute", "h": "hour", "d": "day"}[label[-1]]
    return f"{value} {unit}{'' if value == 1 else 's'}"


def mark_minutes(label: str) -> int:
    return int(label[:-1]) * UNITS[label[-1]]


def parse_marks(words: list[str], usage: str) -> list[str]:
    """Read `1h 24h 7d` (or `1h,24h,7d`) into sorted stored labels; refuse anything else clearly."""
    tokens = [t for w in words for t in w.split(",") if t]
    if not tokens:
        raise UserError(f"When should reports come? Usage: {usage}")
    if len(tokens) > MAX_MARKS:
        raise UserError(f"At most {MAX_MARKS} reports per post; you gave {len(tokens)}.")
    seen: dict[int, str] = {}
    for token in tokens:
        match = MARK_RE.fullmatch(token.strip().lower())
        if not match:
            raise UserError(
                f"'{token}' isn't a time after publishing. Use minutes, hours or days (30m, 1h, 24h, 7d), "
                f"or off. Usage: {usage}"
            )
        minutes = int(match.group(1)) * UNITS[match.group(2)[0]]
        if not MARK_MIN <= timedelta(minutes=minutes) <= MARK_MAX:
            raise UserError(
                f"'{token}' is out of range: reports can come from 15 minutes to 30 days after publishing "
                "(Herald stops reading a post's numbers after 30 days)."
            )
        if minutes in seen:
            raise UserError(f"'{seen[minutes]}' and '{token}' are the same time; give each time once.")
        seen[minutes] = token
    return [mark_label(m) for m in sorted(seen)]


def workspace_marks(ws: Workspace) -> list[str]:
    """The workspace's marks, shortest first (a malformed stored value is ignored, not fatal)."""
    marks = []
    for label in (ws.post_reports or "").split(","):
        label = label.strip()
        if label and label[-1:] in UNITS and label[:-1].isdigit():
            marks.append(label)
    return sorted(set(marks), key=mark_minutes)


def describe_marks(marks: list[str]) -> str:
    if not marks:
        return "off"
    words = [mark_words(m) for m in marks]
    joined = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
    return f"{joined} after publishing"


# --- the report ------------------------------------------------------------------------------------


@dataclass
class AccountNumbers:
    """One account's part of a report: its latest reading, what the team was last shown, and its history."""

    name: str
    network: str
    current: MetricSnapshot | None
    previous: MetricSnapshot | None  # the reading the last report showed (None: never shown)
    history: list[MetricSnapshot]
    due: datetime | None  # its next reading
    sent_at: datetime | None = None  # when it went out: the chart's line starts there, at 0
    audience: Audience | None = None  # the audience this delivery reached (None: no audience)


@dataclass
class Report:
    text: str
    series: list[Series]
    shown: list[int]  # the snapshots this report shows, marked once it is sent
    gives_numbers: bool  # at least one account is on a network that gives numbers


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%"


def with_change(value: int, before: int | None, field: str) -> str:
    text = counted(value, field)
    if before is not None and value != before:
        text += f" ({value - before:+,})"
    return text


def numbers_text(current: MetricSnapshot, previous: MetricSnapshot | None) -> str:
    parts = []
    for field in METRIC_FIELDS:
        value = getattr(current, field)
        if value is None:
            continue
        before = getattr(previous, field) if previous is not None else None
        parts.append(with_change(value, before, field))
    return " · ".join(parts) or "no numbers from this network"


def account_rate(one: AccountNumbers) -> str:
    """'engagement rate 4.2% = 27 engagements ÷ 640 views' (or ÷ followers where the network gives no views)."""
    snap = one.current
    assert snap is not None
    engaged = engagements(snap)
    if snap.impressions:
        return f"engagement rate {pct(engaged, snap.impressions)} = {engaged:,} engagements ÷ {snap.impressions:,} views"
    if snap.impressions == 0:
        return "engagement rate: not yet (0 views so far)"
    if snap.followers:
        return (f"engagement rate {pct(engaged, snap.followers)} = {engaged:,} engagements ÷ {snap.followers:,} "
                f"followers (no views from {one.network})")
    return f"engagement rate: none ({one.network} gives neither views nor followers)"


def total_rate(measured: list[AccountNumbers]) -> str:
    """The post's rate: ÷ views over the accounts that give views, else ÷ followers; says which."""
    with_views = [a for a in measured if a.current is not None and a.current.impressions is not None]
    if with_views:
        engaged = sum(engagements(a.current) for a in with_views if a.current)
        views = sum(a.current.impressions or 0 for a in with_views if a.current)
        scope = "" if len(with_views) == len(measured) else (
            f", on {', '.join(a.name for a in with_views)} only: the accounts that give views")
        if not views:
            return f"  Engagement rate: not yet (0 views so far{scope})"
        return f"  Engagement rate: {pct(engaged, views)} (engagements {engaged:,} ÷ views {views:,}{scope})"
    with_followers = [a for a in measured if a.current is not None and a.current.followers]
    if with_followers:
        engaged = sum(engagements(a.current) for a in with_followers if a.current)
        followers = sum(a.current.followers or 0 for a in with_followers if a.current)
        scope = "" if len(with_followers) == len(measured) else (
            f", on {', '.join(a.name for a in with_followers)} only")
        return (f"  Engagement rate: {pct(engaged, followers)} (engagements {engaged:,} ÷ followers {followers:,}"
                f"{scope}: no account gives views)")
    return "  Engagement rate: none (no account gives views or followers)"


def totals_text(measured: list[AccountNumbers]) -> str:
    parts = []
    for field in METRIC_FIELDS:
        values = [getattr(a.current, field) for a in measured if a.current is not None]
        if all(v is None for v in values):
            continue
        value = sum(v or 0 for v in values)
        shown_before = [a for a in measured if a.previous is not None]
        before = None
        if len(shown_before) == len(measured):
            before = sum(getattr(a.previous, field) or 0 for a in measured if a.previous is not None)
        parts.append(with_change(value, before, field))
    return " · ".join(parts) or "nothing yet"


def timeline(one: AccountNumbers) -> list[tuple[datetime, int]]:
    """An account's engagements after each reading, from 0 when it went out."""
    points = [(s.taken_at, engagements(s)) for s in one.history if s.taken_at is not None]
    if points and one.sent_at is not None and one.sent_at < points[0][0]:
        points.insert(0, (one.sent_at, 0))  # every post starts from nothing
    return points


def summed(name: str, timelines: list[list[tuple[datetime, int]]]) -> Series:
    """The sum of several timelines at each of their times."""
    times = sorted({t for points in timelines for t, _v in points})
    total = []
    for at in times:
        # each account counts with its latest reading at that time (0 before its first one)
        total.append((at, float(sum(next((v for t, v in reversed(p) if t <= at), 0) for p in timelines))))
    return Series(name, tuple(total))


def chart_series(measured: list[AccountNumbers]) -> list[Series]:
    """Engagements over time: one line per account, and the post's total when it has several; a post that
    reached audiences has one line per audience (its accounts summed) instead of one per account."""
    if any(one.audience is not None for one in measured):
        return audience_series(measured)
    series = []
    timelines: list[list[tuple[datetime, int]]] = []
    for one in measured:
        points = timeline(one)
        if points:
            series.append(Series(one.name, tuple((t, float(v)) for t, v in points)))
            timelines.append(points)
    if len(timelines) > 1:
        series.append(summed("total", timelines))
    return series


def audience_series(measured: list[AccountNumbers]) -> list[Series]:
    series = []
    every: list[list[tuple[datetime, int]]] = []
    for name, _zone, group in audience_groups(measured):
        timelines = [points for points in (timeline(one) for one in group) if points]
        if timelines:
            series.append(summed(name, timelines))
            every += timelines
    if len(series) > 1:
        series.append(summed("total", every))
    return series


def audience_groups(accounts: list[AccountNumbers]) -> list[tuple[str, str | None, list[AccountNumbers]]]:
    """(audience name, its zone, its accounts) by name, the deliveries that reached no audience last."""
    groups: dict[int, tuple[Audience, list[AccountNumbers]]] = {}
    none: list[AccountNumbers] = []
    for one in accounts:
        if one.audience is None:
            none.append(one)
        else:
            groups.setdefault(one.audience.id or 0, (one.audience, []))[1].append(one)
    out: list[tuple[str, str | None, list[AccountNumbers]]] = [
        (audience_name(audience), audience.timezone, members)
        for audience, members in sorted(groups.values(), key=lambda pair: pair[0].name)]
    if none:
        out.append((NO_AUDIENCE, None, none))
    return out


def gather(session: Session, post: Post) -> list[AccountNumbers]:
    """Every live account of the post with its readings (oldest first) and the one last shown."""
    sent = [(d, a) for d, a in post_targets(session, post) if DeliveryState(d.state) == DeliveryState.SENT]
    ids = [d.id for d, _a in sent]
    snaps: dict[int, list[MetricSnapshot]] = {i or 0: [] for i in ids}
    for snap in session.exec(
        select(MetricSnapshot).where(col(MetricSnapshot.delivery_id).in_(ids))
        .order_by(col(MetricSnapshot.taken_at), col(MetricSnapshot.id))
    ).all():
        snaps[snap.delivery_id].append(snap)
    out = []
    audience_ids = sorted({d.audience_id for d, _a in sent if d.audience_id is not None})
    audiences = {a.id: a for a in session.exec(select(Audience).where(col(Audience.id).in_(audience_ids))).all()} \
        if audience_ids else {}
    for delivery, account in sent:
        history = snaps[delivery.id or 0]
        shown = [s for s in history if s.shown_at is not None]
        previous = max(shown, key=lambda s: (s.shown_at, s.id or 0)) if shown else None
        out.append(AccountNumbers(account.name, account.network, history[-1] if history else None, previous,
                                  history, delivery.metrics_due_at, delivery.sent_at,
                                  audiences.get(delivery.audience_id) if delivery.audience_id is not None else None))
    return out


def account_lines(one: AccountNumbers, indent: str = "  ") -> list[str]:
    """An account's numbers and rate (or why it has none)."""
    if one.current is not None:
        return [f"{indent}{one.name} ({one.network}): {numbers_text(one.current, one.previous)}",
                f"{indent}  {account_rate(one)}"]
    if one.network in NO_NUMBERS:
        return [f"{indent}{one.name} ({one.network}): no numbers: {NO_NUMBERS[one.network]}"]
    return [f"{indent}{one.name}: no numbers yet"]


def audience_lines(accounts: list[AccountNumbers]) -> list[str]:
    """A post that reached audiences: under each audience its accounts, then (for several) the audience's total
    and rate."""
    lines = []
    for name, zone, group in audience_groups(accounts):
        lines.append(f"  Audience {name} ({zone}):" if zone else f"  {NO_AUDIENCE.capitalize()}:")
        for one in group:
            lines += account_lines(one, "    ")
        measured = [a for a in group if a.current is not None]
        if measured and len(group) > 1:  # one account's line is its audience's total already
            lines.append(f"    {name} total: {totals_text(measured)}")
            lines.append("    " + total_rate(measured).strip())
    return lines


def build_report(session: Session, post: Post, ws: Workspace, now: datetime, header: list[str]) -> Report:
    """The report's text and chart data (not yet marked as shown)."""
    accounts = gather(session, post)
    tz = ws.timezone
    lines = list(header)
    measured = [a for a in accounts if a.current is not None]
    if any(one.audience is not None for one in accounts):
        lines += audience_lines(accounts)
    else:
        for one in accounts:
            lines += account_lines(one)
    if measured:
        networks = sorted({a.network for a in measured})
        if len(networks) > 1:  # several accounts on one network: that network's subtotal too
            for network in networks:
                group = [a for a in measured if a.network == network]
                if len(group) > 1:
                    lines.append(f"  {network} ({len(group)} accounts): {totals_text(group)}")
        lines.append(f"  Total: {totals_text(measured)}")
        lines.append(total_rate(measured))
        lines.append(FORMULA)
        before = [a.previous for a in measured if a.previous is not None]
        if not before:
            lines.append(f"First report of #{post.id}'s numbers: the next one shows the changes since this one.")
        else:
            last = max(s.shown_at for s in before if s.shown_at is not None)
            if all(a.previous is not None and a.current is not None and a.previous.id == a.current.id
                   for a in measured):
                lines.append(f"No new reading since the last report ({show_time(last, tz, now)}).")
            else:
                lines.append(f"Changes (+n) are since the last report, {show_time(last, tz, now)}.")
        read = max(a.current.taken_at for a in measured if a.current is not None and a.current.taken_at)
        lines.append(f"Numbers read {show_time(read, tz, now)}.")
    due = [a.due for a in accounts if a.due is not None]
    if due:
        lines.append(f"Next reading {show_time(min(due), tz, now)}.")
    lines += click_lines(session, post)
    lines += funnel_lines(session, post.workspace_id, [post.id or 0], tz, now, per_account=True)
    return Report(
        text="\n".join(lines),
        series=chart_series(measured),
        shown=[a.current.id for a in measured if a.current is not None and a.current.id is not None],
        gives_numbers=any(a.network not in NO_NUMBERS for a in accounts),
    )


def click_lines(session: Session, post: Post) -> list[str]:
    """Clicks on the post's short links per account: people, with the preview fetches counted apart; nothing
    when the post has no short link."""
    if post.id is None or session.exec(select(ShortLink.id).where(ShortLink.post_id == post.id).limit(1)).first() is None:
        return []
    names = {a.id: a.name for _d, a in post_targets(session, post)}
    lines = ["Clicks on its short links (people; preview fetches by networks and chat apps counted apart):"]
    if session.exec(select(ShortLink.id).where(ShortLink.post_id == post.id)
                    .where(col(ShortLink.audience_id).is_not(None)).limit(1)).first() is not None:
        return lines + audience_click_lines(session, post, names)
    counts = clicks_by(session, workspace_id=post.workspace_id, by="account", post_ids=[post.id])
    linked = sorted(set(session.exec(select(ShortLink.account_id).where(ShortLink.post_id == post.id)).all()))
    for account_id in linked:
        one = counts.get(account_id, ClickCount())
        apart = f" · {one.fetch_share()}" if one.fetches or one.floods else ""
        lines.append(f"  {names.get(account_id, f'account {account_id}')}: {counted(one.people, 'clicks')}{apart}")
    total = total_clicks(counts.values())
    lines.append(f"  Total: {counted(total.people, 'clicks')} · {total.fetch_share()}")
    return lines


def audience_click_lines(session: Session, post: Post, names: dict[int | None, str]) -> list[str]:
    """The post's clicks under each audience its short links were made for: per account, the audience's total
    with the preview fetches apart, then the post's total."""
    counts = clicks_by_audience(session, workspace_id=post.workspace_id, post_ids=[post.id or 0])
    linked = set(session.exec(select(ShortLink.audience_id, ShortLink.account_id)
                              .where(ShortLink.post_id == post.id)).all())
    audiences = {a.id: a for a in session.exec(select(Audience).where(
        col(Audience.id).in_([u for u, _a in linked if u is not None]))).all()}
    named = {u: audiences[u].name if u in audiences else f"audience {u}" for u, _a in linked if u is not None}
    order = sorted({u for u, _a in linked}, key=lambda u: (u is None, named[u] if u is not None else ""))
    lines = []
    for audience_id in order:
        name = named[audience_id] if audience_id is not None else NO_AUDIENCE
        lines.append(f"  Audience {name}:" if audience_id is not None else f"  {NO_AUDIENCE.capitalize()}:")
        accounts = sorted((a for u, a in linked if u == audience_id), key=lambda a: names.get(a, ""))
        for account_id in accounts:
            one = counts.get((audience_id, account_id), ClickCount())
            apart = f" · {one.fetch_share()}" if one.fetches or one.floods else ""
            lines.append(f"    {names.get(account_id, f'account {account_id}')}: {counted(one.people, 'clicks')}{apart}")
        if len(accounts) > 1:
            mine = total_clicks(counts.get((audience_id, a), ClickCount()) for a in accounts)
            lines.append(f"    {name} total: {counted(mine.people, 'clicks')} · {mine.fetch_share()}")
    total = total_clicks(counts.values())
    lines.append(f"  Total: {counted(total.people, 'clicks')} · {total.fetch_share()}")
    return lines


async def draw(ctx: Context, post_id: int, series: list[Series], tz: str) -> bytes | None:
    """The chart as PNG bytes, drawn in a thread (matplotlib takes tens to hundreds of ms); None without one."""
    if ctx.charts is None or not series:
        return None
    try:
        return await asyncio.to_thread(ctx.charts.line, f"#{post_id}: engagements over time", series,
                                       ylabel="engagements", tz=tz)
    except Exception:  # a chart that can't be drawn must not cost the team the numbers
        log.exception("the chart of #%s couldn't be drawn", post_id)
        return None


def mark_shown(ctx: Context, snapshot_ids: list[int], now: datetime) -> None:
    if snapshot_ids:
        with ctx.db.session() as session:
            session.execute(update(MetricSnapshot).where(col(MetricSnapshot.id).in_(snapshot_ids)).values(shown_at=now))


@command(
    "stats",
    usage="/stats <post>", example="/stats 12",
    summary="a post's numbers per account and in total, change since the last report, rate, and a chart",
    details=(
        "Likes, comments, shares, quotes, views, clicks and saves, where each network gives them, with the change "
        "since the numbers last shown for this post (by /stats or an automatic report). "
        "Engagement rate = (likes + comments + shares + quotes + clicks + saves) ÷ views; on a network that "
        "gives no views, ÷ followers — the report says which. The chart shows engagements over time."
    ),
    group="Engagement",
    takes=(Param.post(),),
)
async def stats(req: Request) -> Reply:
    ctx = req.ctx
    post_id, _ = req.post_and_rest()
    now = ctx.clock.now()
    with req.post_command() as (session, post, ws):
        if not any(DeliveryState(d.state) == DeliveryState.SENT for d, _a in post_targets(session, post)):
            return Reply(f"#{post.id} isn't live anywhere yet ({post.state.replace('_', ' ')}), so there are no numbers.")
        report = build_report(session, post, ws, now,
                              [f"📊 #{post.id} — published {show_time(post.published_at, ws.timezone, now)}"])
        tz = ws.timezone
        # shares by others, since publishing (handlers/engagement/spread.py): shown once someone shared it
        shared = period_spread(session, ws.id or 0, post.published_at or now, now + timedelta(microseconds=1),
                               tz=tz, post_ids=[post.id or 0])
    text = report.text
    if shared.shares or shared.second:
        text += "\n" + "\n".join(spread_lines(ctx, shared, more=f" — /spread {post.id} shows the share tree"))
    image = await draw(ctx, post_id, report.series, tz)
    mark_shown(ctx, report.shown, now)
    return Reply(text, image=image)


# --- automatic reports ----------------------------------------------------------------------------


def report_key(post_id: int, label: str) -> str:
    return f"postreport:{post_id}:{label}"


def due_reports(ctx: Context, now: datetime) -> list[tuple[int, int, str]]:
    """(post, workspace, mark) for each post whose latest come mark is within LATE_LIMIT and not yet sent."""
    with ctx.db.session() as session:
        spaces = {ws.id: workspace_marks(ws) for ws in session.exec(
            select(Workspace).where(Workspace.post_reports != "")).all()}
        every_mark = {m for marks in spaces.values() for m in marks}
        if not every_mark:
            return []
        windows = [
            and_(col(Post.published_at) <= now - timedelta(minutes=mark_minutes(m)),
                 col(Post.published_at) > now - timedelta(minutes=mark_minutes(m)) - LATE_LIMIT)
            for m in every_mark
        ]
        rows = session.exec(
            select(Post.id, Post.workspace_id, Post.published_at)
            .where(col(Post.workspace_id).in_(list(spaces))).where(col(Post.published_at).is_not(None))
            .where(or_(*windows)).order_by(col(Post.published_at))
        ).all()
        wanted: list[tuple[int, int, str]] = []
        for post_id, ws_id, published_at in rows:
            if post_id is None or published_at is None:
                continue
            come = [m for m in spaces.get(ws_id, []) if published_at + timedelta(minutes=mark_minutes(m)) <= now]
            if come and now - (published_at + timedelta(minutes=mark_minutes(come[-1]))) <= LATE_LIMIT:
                wanted.append((post_id, ws_id, come[-1]))
        if not wanted:
            return []
        keys = [report_key(p, m) for p, _w, m in wanted]
        sent = set(session.exec(select(SentOnce.key).where(col(SentOnce.key).in_(keys))).all())
    return [(p, w, m) for p, w, m in wanted if report_key(p, m) not in sent]


def bring_readings_forward(ctx: Context, post_id: int, since: datetime, now: datetime) -> int:
    """Make the post's accounts whose last reading is older than `since` due for a reading now."""
    with ctx.db.session() as session:
        stale = []
        for delivery in session.exec(select(Delivery).where(Delivery.post_id == post_id)
                                     .where(Delivery.state == DeliveryState.SENT.value)
                                     .where(col(Delivery.metrics_due_at).is_not(None))).all():
            last = session.exec(select(MetricSnapshot.taken_at).where(MetricSnapshot.delivery_id == delivery.id)
                                .order_by(col(MetricSnapshot.taken_at).desc()).limit(1)).first()
            if last is None or last < since:
                stale.append(delivery.id)
        if not stale:
            return 0
        session.execute(update(Delivery).where(col(Delivery.id).in_(stale))
                        .where(col(Delivery.metrics_due_at) > now).values(metrics_due_at=now))
        return len(stale)


async def send_post_report(ctx: Context, post_id: int, ws_id: int, label: str) -> bool:
    """Write and send one automatic report (already claimed); False when there was nothing to say."""
    now = ctx.clock.now()
    with ctx.db.session() as session:
        post = session.get(Post, post_id)
        if post is None or post.published_at is None:
            return False
        mark_at = post.published_at + timedelta(minutes=mark_minutes(label))
    if bring_readings_forward(ctx, post_id, mark_at, now):
        try:
            await poll_metrics(ctx)
        except Exception:  # the report goes out with the last numbers Herald has
            log.exception("reading #%s's numbers before its %s report failed", post_id, label)
    now = ctx.clock.now()
    with ctx.db.session() as session:
        post = get_post(session, ws_id, post_id)
        ws = get_workspace(session, ws_id)
        tz = ws.timezone
        header = [f"⏱ #{post.id}, {mark_words(label)} after publishing: {short_text(post.text, 50)}",
                  f"Published {show_time(post.published_at, tz, now)}."]
        if now - mark_at > 2 * EVERY:
            header[-1] += f" This report was due {show_time(mark_at, tz)}; it comes late."
        report = build_report(session, post, ws, now, header)
        later = [m for m in workspace_marks(ws) if mark_minutes(m) > mark_minutes(label)]
        if later:
            next_at = mark_at + timedelta(minutes=mark_minutes(later[0]) - mark_minutes(label))
            report.text += (f"\nNext report: {mark_words(later[0])} after publishing, {show_time(next_at, tz, now)}. "
                            "/postreports changes when reports come.")
    if not report.gives_numbers:
        log.info("no %s report for #%s: none of its networks gives numbers", label, post_id)
        return False
    image = await draw(ctx, post_id, report.series, tz)
    if await tell_team(ctx, ws_id, Reply(report.text, image=image), purpose="reports"):
        mark_shown(ctx, report.shown, now)  # only numbers someone saw count as "the last report"
    return True


@periodic("post_reports", every=EVERY)
async def post_reports_task(ctx: Context) -> int:
    """Send the automatic post reports that are due; returns how many went out."""
    sent = 0
    for post_id, ws_id, label in due_reports(ctx, ctx.clock.now()):
        if not claim_once(ctx, report_key(post_id, label)):
            continue  # another worker has it
        try:
            if await send_post_report(ctx, post_id, ws_id, label):
                sent += 1
        except Exception:
            log.exception("the %s report of #%s failed", label, post_id)
    return sent


@command(
    "postreports",
    usage="/postreports [<times after publishing> | off]", example="/postreports 1h 24h 7d",
    summary="show or set when automatic post reports come (admins set it)",
    details=(
        "Each published post gets a report with its numbers and a chart at these times after publishing, "
        "in the chats linked for reports (/setup reports). Times: 15 minutes to 30 days, e.g. 30m, 1h, 24h, 7d; "
        f"at most {MAX_MARKS}. If Herald was down, only the latest report that came due is sent (within "
        f"{int(LATE_LIMIT.total_seconds() // 3600)} hours), never several at once. /postreports off stops them."
    ),
    group="Engagement",
)
async def postreports(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    words = req.words
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        old = workspace_marks(ws)
        if not words:
            chats = [link.title or link.chat_id for link in session.exec(
                select(ChatLink).where(ChatLink.workspace_id == ws_id)).all() if link.serves("reports")]
            where = f" They go to: {', '.join(chats)}." if chats and old else (
                " No chat is linked for reports: /setup reports in the chat that should get them." if old else "")
            return Reply(f"Automatic post reports: {describe_marks(old)}.{where}")
        req.require_role(ADMINS, "change when post reports come")
        if len(words) == 1 and words[0].lower() == "off":
            new: list[str] = []
        else:
            new = parse_marks(words, req.spec.usage)
        ws.post_reports = ",".join(new)
        audit(session, ctx, ws_id, None, req.actor_name, "postreports", ws.post_reports or "off")
    return Reply(f"Automatic post reports: {describe_marks(new)} (was: {describe_marks(old)}).")
