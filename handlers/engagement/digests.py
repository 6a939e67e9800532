"""Digests: /digest daily HH:MM, /digest weekly <weekday> HH:MM, /digest off — and the task that sends them.

A digest is the period report (handlers/engagement/reports.py) for the period that ends at its send time: a daily
digest at 09:00 covers yesterday 09:00 → today 09:00, a weekly one last Monday 09:00 → this Monday
09:00, compared with the period before. Send times are wall-clock times in the workspace timezone
(zoneinfo), so they stay at 09:00 across DST changes; that day's period is then 23 or 25 hours long.
A time a DST change skips (02:30 on the spring-forward night) falls an hour later; one it repeats
is the first of the two.

The task runs every minute in every worker. For each workspace it takes the latest send time that
has passed; if that digest isn't claimed yet (a SentOnce row named by the workspace, the cadence and
the slot) it builds it, claims it and posts it to the chats linked for reports — so it goes out once
however many workers run, and a Herald that was down at 09:00 sends it when it comes back within the
same period, saying it's late. A digest whose period ended while Herald was down and whose next one
is due already is skipped: only the latest period is sent. Setting a digest claims the slot that has
just passed, so a new setting never sends a stale digest at once.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from handlers.core.access import ADMINS
from handlers.core.audit import audit
from handlers.core.chat import Reply
from handlers.core.commands import Request, command, periodic
from handlers.core.context import Context
from handlers.core.errors import UserError
from handlers.core.lookups import get_workspace
from handlers.core.notices import claim_once, tell_team
from handlers.core.when import show_time
from handlers.engagement.clicks import period_click_lines
from handlers.engagement.reports import Window, period_chart, period_lines, period_numbers, span_text
from handlers.engagement.traffic import funnel_lines
from storage.models import ChatLink, SentOnce, Workspace

log = logging.getLogger("herald.digests")

OFF, DAILY, WEEKLY = "off", "daily", "weekly"
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
LATE = timedelta(minutes=10)  # a digest sent this long after its time says it's late
_CLOCK = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
USAGE = "/digest daily HH:MM | /digest weekly <weekday> HH:MM | /digest off"


@dataclass(frozen=True)
class Setting:
    cadence: str
    at: str = "09:00"  # HH:MM in the workspace timezone
    weekday: int = 0  # Monday

    @staticmethod
    def of(ws: Workspace) -> Setting:
        return Setting(ws.digest_cadence, ws.digest_at, ws.digest_weekday)

    def describe(self) -> str:
        if self.cadence == DAILY:
            return f"daily at {self.at}"
        return f"weekly on {WEEKDAYS[self.weekday].capitalize()} at {self.at}"

    @property
    def step(self) -> int:
        return 1 if self.cadence == DAILY else 7

    def slot(self, day: date, tz: str) -> datetime:
        """The send time on local `day`, as UTC (a skipped wall time lands after the gap; zoneinfo fold=0)."""
        hour, minute = (int(part) for part in self.at.split(":"))
        return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(tz)).astimezone(UTC)

    def last_day(self, now: datetime, tz: str) -> date:
        """The local day of the latest send time at or before `now`."""
        day = now.astimezone(ZoneInfo(tz)).date()
        if self.cadence == WEEKLY:
            day -= timedelta(days=(day.weekday() - self.weekday) % 7)
        if self.slot(day, tz) > now:
            day -= timedelta(days=self.step)
        return day

    def key(self, workspace_id: int, day: date) -> str:
        return f"digest:{workspace_id}:{self.cadence}:{day.isoformat()}T{self.at}"

    def period(self, day: date, tz: str) -> tuple[Window, Window]:
        """The period the digest of local `day` covers, and the one before it."""
        step = timedelta(days=self.step)
        end, start, earlier = self.slot(day, tz), self.slot(day - step, tz), self.slot(day - 2 * step, tz)
        return Window(start, end), Window(earlier, start)


def parse_setting(words: list[str]) -> Setting:
    """`daily 09:00`, `weekly mon 09:00`, `off`; anything else is refused with the usage."""
    if not words:
        raise UserError(f"Usage: {USAGE}")
    cadence = words[0].lower()
    if cadence == OFF and len(words) == 1:
        return Setting(OFF)
    if cadence == DAILY and len(words) == 2:
        return Setting(DAILY, clock(words[1]))
    if cadence == WEEKLY and len(words) == 3:
        return Setting(WEEKLY, clock(words[2]), weekday(words[1]))
    if cadence in (DAILY, WEEKLY, OFF):
        example = {DAILY: "/digest daily 09:00", WEEKLY: "/digest weekly mon 09:00", OFF: "/digest off"}[cadence]
        raise UserError(f"That isn't how a {cadence} digest is set: e.g. {example}. Usage: {USAGE}")
    raise UserError(f"'{words[0]}' isn't daily, weekly or off. Usage: {USAGE}")


def clock(text: str) -> str:
    match = _CLOCK.fullmatch(text.strip())
    if match is None:
        raise UserError(f"'{text}' isn't a time of day: use 24-hour HH:MM, e.g. 09:00 or 17:30.")
    return f"{int(match.group(1)):02d}:{match.group(2)}"


def weekday(text: str) -> int:
    word = text.strip().lower()
    found = [i for i, name in enumerate(WEEKDAYS) if len(word) >= 3 and name.startswith(word)]
    if len(found) != 1:
        raise UserError(f"'{text}' isn't a weekday: use mon, tue, wed, thu, fri, sat or sun.")
    return found[0]


def report_chats(session: Session, workspace_id: int) -> list[ChatLink]:
    links = session.exec(select(ChatLink).where(ChatLink.workspace_id == workspace_id).order_by(col(ChatLink.id))).all()
    return [link for link in links if link.serves("reports")]


def schedule_lines(session: Session, ws: Workspace, now: datetime) -> list[str]:
    """When the next digest goes, what it covers, and where."""
    setting = Setting.of(ws)
    tz = ws.timezone
    day = setting.last_day(now, tz) + timedelta(days=setting.step)
    covers, _before = setting.period(day, tz)
    lines = [
        f"Next: {show_time(covers.end, tz, now)}, covering {span_text(covers.start, covers.end, tz)}, "
        "compared with the period before."
    ]
    chats = report_chats(session, ws.id or 0)
    if chats:
        names = ", ".join(f"{link.title or link.chat_id} ({link.platform})" for link in chats)
        lines.append(f"It goes to the chats linked for reports: {names}.")
    else:
        lines.append("No chat takes reports yet: run /setup reports in the chat that should get digests.")
    return lines


@command(
    "digest",
    usage="/digest [daily HH:MM | weekly <weekday> HH:MM | off]", example="/digest weekly mon 09:00",
    summary="show or set the digest: what was published, top posts, totals, vs the period before, with a chart",
    details=(
        "The time is in the workspace timezone. A daily digest covers the 24 hours up to its time, a weekly one "
        "the 7 days up to it, each compared with the period before; it goes to the chats linked for reports. "
        "If Herald was down at that time, the digest comes when it's back, within the same period. "
        "Admins set it; everyone can see it."
    ),
    group="Engagement",
)
async def digest(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    words = req.words
    now = ctx.clock.now()
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        current = Setting.of(ws)
        if not words:
            if current.cadence == OFF:
                return Reply("Digests are off. Turn them on with /digest daily 09:00 or /digest weekly mon 09:00 "
                             f"(times in {ws.timezone}).")
            return Reply("\n".join([f"Digest: {current.describe()} ({ws.timezone}).", *schedule_lines(session, ws, now)]))
        req.require_role(ADMINS, "change the digest")
        setting = parse_setting(words)
        ws.digest_cadence = setting.cadence
        if setting.cadence != OFF:
            ws.digest_at, ws.digest_weekday = setting.at, setting.weekday
        audit(session, ctx, ws_id, None, req.actor_name, "digest",
              f"{current.describe() if current.cadence != OFF else 'off'} → "
              f"{setting.describe() if setting.cadence != OFF else 'off'}")
        if setting.cadence == OFF:
            return Reply("Digests are off now. /digest daily 09:00 turns them back on.")
        lines = [f"Digest set: {setting.describe()} ({ws.timezone}).", *schedule_lines(session, ws, now)]
    # the send time that has just passed is settled: a new setting never sends a stale digest at once
    claim_once(ctx, setting.key(ws_id, setting.last_day(now, ws.timezone)))
    return Reply("\n".join(lines))


async def build_digest(ctx: Context, workspace_id: int, setting: Setting, day: date, now: datetime) -> Reply:
    """The digest of local `day`'s send time: its period's report, said late when it is."""
    with ctx.db.session() as session:
        ws = get_workspace(session, workspace_id)
        tz, name = ws.timezone, ws.name
        window, previous = setting.period(day, tz)
        numbers = period_numbers(session, workspace_id, window, previous)
        clicks = period_click_lines(session, workspace_id, window.start, window.end, (previous.start, previous.end))
        clicks += funnel_lines(session, workspace_id, sorted({s.post_id for s in numbers.now}), tz, now)
    kind = "Daily" if setting.cadence == DAILY else "Weekly"
    noun = "day" if setting.cadence == DAILY else "week"
    lines = [f"🗞 {kind} digest for {name}: {span_text(window.start, window.end, tz)}"]
    if now - window.end > LATE:
        lines.append(f"(Sent late: it was due {show_time(window.end, tz)}, when Herald wasn't running.)")
    lines += period_lines(numbers, tz, f"the {noun} before", previous) + clicks
    image = await period_chart(ctx, numbers, f"Engagements per network: this {noun} vs the {noun} before",
                               f"this {noun}", f"the {noun} before")
    return Reply("\n".join(lines), image=image)


@periodic("digests", every=timedelta(minutes=1))
async def send_digests(ctx: Context) -> int:
    """Send every workspace's digest whose time has passed and that no worker has sent; returns how many."""
    now = ctx.clock.now()
    with ctx.db.session() as session:
        spaces = session.exec(select(Workspace).where(col(Workspace.digest_cadence) != OFF)).all()
        due = []
        for ws in spaces:
            setting = Setting.of(ws)
            if setting.cadence not in (DAILY, WEEKLY):
                continue
            day = setting.last_day(now, ws.timezone)
            key = setting.key(ws.id or 0, day)
            if session.get(SentOnce, key) is None:
                due.append((ws.id or 0, setting, day, key))
    sent = 0
    for ws_id, setting, day, key in due:
        try:
            reply = await build_digest(ctx, ws_id, setting, day, now)
            if claim_once(ctx, key):  # another worker may have sent it while this one was drawing
                await tell_team(ctx, ws_id, reply, purpose="reports")
                sent += 1
        except Exception:  # one workspace's failure must not stop the others' digests
            log.exception("digest %s failed", key)
    return sent
