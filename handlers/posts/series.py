"""Recurring posts (/repeat): a series of ordinary posts made from one post (the series' template) by a rule.

The rule is RFC 5545 (`RRULE:FREQ=WEEKLY;BYDAY=TU`), written as is or in words ("every 2 weeks on tue at 9:00
until 2027-03-01"), and computed with python-dateutil's rrule on wall-clock times of the workspace's zone, so
09:00 stays 09:00 local across daylight-saving changes. A series must end (until or count) within `MAX_SPAN` and
`MAX_COUNT`.

The clock (`fill_series`, every few minutes) creates the next `WINDOW` occurrences ahead of their time, each an
ordinary post (a copy of the template) linked to its date by an `Occurrence` row. The row's unique (series, date)
is the claim: a date gets one post however many workers fill at once or a crash repeats a run, because the post
and its row are written in one transaction. The workspace's /policy series=once|each says whether an occurrence
is approved with the series (the template's approval) or on its own.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from handlers.core.access import ALL_ROLES, EDITORS
from handlers.core.audit import audit
from handlers.core.chat import Reply
from handlers.core.commands import Param, Request, command, periodic
from handlers.core.context import Context
from handlers.core.errors import UserError
from handlers.core.lookups import get_workspace, post_targets
from handlers.core.notices import tell_team
from handlers.core.when import show_time
from handlers.core.words import state_label
from handlers.posts.cards import approval_card
from handlers.posts.drafts import split_options
from handlers.posts.editing import (
    EDITABLE,
    after_content_change,
    content_changed,
    copy_content,
    follow_series,
)
from handlers.posts.rules import UNAPPROVED, approvals_at_revision, rearm
from storage.models import Occurrence, Post, PostState, Series, SeriesState, Workspace, move_post

log = logging.getLogger("herald.series")

WINDOW = 3  # occurrences created ahead of their time
MAX_COUNT = 500  # occurrences a series may have
MAX_SPAN = timedelta(days=730)  # how far ahead its last date may be
MAX_INTERVAL = 99
DEFAULT_AT = time(9, 0)
SHOWN = 6  # dates /repeat <post> shows
FILL_EVERY = timedelta(minutes=5)
# a post may become a series' post while it is still being written or approved (not once it has a time of its own)
TEMPLATE_STATES = (*UNAPPROVED, PostState.APPROVED)
# what /repeat … stop and skip cancel: an occurrence that hasn't started publishing
CANCELLABLE = (*UNAPPROVED, PostState.APPROVED, PostState.SCHEDULED, PostState.EXPIRED)

EXAMPLE = "/repeat 12 every 2 weeks on tue,thu at 9:00 until 2027-03-01"
UNITS = {"day": "DAILY", "week": "WEEKLY", "month": "MONTHLY", "year": "YEARLY"}
DAY_NAMES = {"MO": "Mon", "TU": "Tue", "WE": "Wed", "TH": "Thu", "FR": "Fri", "SA": "Sat", "SU": "Sun"}
UNIT_WORDS = {"DAILY": "day", "WEEKLY": "week", "MONTHLY": "month", "YEARLY": "year"}

ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
CLOCK = re.compile(r"(\d{1,2})(?::(\d{2}))?\s*(am|pm)?")


@dataclass(frozen=True)
class Rule:
    """A series' rule as stored: the RRULE line and its first moment (wall-clock time in `tz`)."""

    text: str
    start: datetime  # naive, local to tz
    tz: str

    def build(self) -> rrule:
        built = rrulestr(self.text, dtstart=self.start)
        assert isinstance(built, rrule)
        return built

    def dates(self) -> list[datetime]:
        """Every date of the rule in UTC, in order (at most MAX_COUNT + 1: more is refused when the rule is made)."""
        zone = ZoneInfo(self.tz)
        out = []
        for local in self.build():
            out.append(local.replace(tzinfo=zone).astimezone(UTC))
            if len(out) > MAX_COUNT:
                break
        return out

    def words(self) -> str:
        """The rule as a person reads it: every 2 weeks on Tue, Thu at 09:00 until 2027-03-01."""
        parts = dict(p.split("=", 1) for p in self.text.removeprefix("RRULE:").split(";") if "=" in p)
        unit = UNIT_WORDS.get(parts.get("FREQ", ""), parts.get("FREQ", "").lower())
        interval = int(parts.get("INTERVAL", "1") or 1)
        said = f"every {unit}" if interval == 1 else f"every {interval} {unit}s"
        if "BYDAY" in parts:
            said += " on " + ", ".join(DAY_NAMES.get(d[-2:], d) for d in parts["BYDAY"].split(","))
        said += f" at {self.start:%H:%M}"
        if "UNTIL" in parts:
            said += f" until {parts['UNTIL'][:4]}-{parts['UNTIL'][4:6]}-{parts['UNTIL'][6:8]}"
        if "COUNT" in parts:
            said += f", {parts['COUNT']} times"
        return f"{said} ({self.tz}) — {self.text}"


def rule_of(series: Series) -> Rule:
    return Rule(series.rule, datetime.fromisoformat(series.start_local), series.timezone)


def _clock(text: str) -> time:
    m = CLOCK.fullmatch(text.strip().lower())
    if m is None:
        raise UserError(f"'at {text}' isn't a time of day. Write it like at 9:00, at 17:30 or at 9am. Nothing was created.")
    hour, minute, half = int(m.group(1)), int(m.group(2) or 0), m.group(3)
    if half:
        if not 1 <= hour <= 12:
            raise UserError(f"'at {text}' isn't a time of day: with am/pm the hour is 1 to 12. Nothing was created.")
        hour = hour % 12 + (12 if half == "pm" else 0)
    elif m.group(2) is None:
        raise UserError(f"'at {text}' could be morning or evening: write at {hour}:00, at {hour}am or at {hour}pm. "
                        "Nothing was created.")
    if hour > 23 or minute > 59:
        raise UserError(f"'at {text}' isn't a time of day. Write it like at 9:00 or at 17:30. Nothing was created.")
    return time(hour, minute)


def _date(text: str, what: str) -> date:
    if not ISO_DATE.fullmatch(text):
        raise UserError(f"'{what} {text}' needs a date written like 2027-03-01. Nothing was created.")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UserError(f"'{what} {text}': there's no such date. Nothing was created.") from None


WEEKDAY_WORDS = {name[:n]: name[:2].upper() for name in (
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday") for n in range(2, len(name) + 1)}


def _days(text: str) -> list[str]:
    days = []
    for word in re.split(r"[,\s]+", text.strip().lower()):
        if not word or word == "and":
            continue
        key = WEEKDAY_WORDS.get(word)
        if key is None:
            raise UserError(f"'{word}' isn't a day of the week. Write days like on tue,thu. Nothing was created.")
        if key not in days:
            days.append(key)
    if not days:
        raise UserError("'on' needs days of the week, like on tue,thu. Nothing was created.")
    return days


def _local_until(rule_text: str, zone: ZoneInfo) -> str:
    """An RRULE's UNTIL given in UTC (…Z, as calendars write it) as the zone's wall-clock time the rule runs on."""
    m = re.search(r"UNTIL=(\d{8}T\d{6})Z", rule_text)
    if m is None:
        return rule_text
    local = datetime.strptime(m.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=UTC).astimezone(zone)
    return rule_text[:m.start()] + f"UNTIL={local:%Y%m%dT%H%M%S}" + rule_text[m.end():]


def parse_rule(text: str, *, now: datetime, tz: str) -> tuple[Rule, bool]:
    """Read `every 2 weeks [on tue,thu] [at 9:00] [from 2026-12-01] [until 2027-03-01 | count=6]` or an RRULE
    ([at …] [from …] may follow it) into a Rule, and whether a time of day was given. Refuses (UserError) anything
    unclear, never-ending, too long, without a date or in the past."""
    zone = ZoneInfo(tz)
    raw = " ".join(text.split())
    lowered = raw.lower()
    at, start_day = DEFAULT_AT, now.astimezone(zone).date()
    given_at = started = False
    pasted = lowered.startswith(("rrule:", "freq="))
    if pasted:
        line, _, rest = raw.partition(" ")
        if "dtstart" in lowered:
            raise UserError("Paste the RRULE line only; the start is written after it: "
                            "/repeat 12 RRULE:FREQ=WEEKLY;BYDAY=TU at 9:00 from 2026-12-01. Nothing was created.")
        rule_text = _local_until((line if line.upper().startswith("RRULE:") else "RRULE:" + line).upper(), zone)
        tail = rest
    else:
        m = re.match(r"every\s+(?:(\d+)\s+)?(day|week|month|year)s?\b", lowered)
        if m is None:
            raise UserError(f"I can't read '{raw}' as a repetition. Write it like {EXAMPLE}, or paste an RRULE: "
                            "/repeat 12 RRULE:FREQ=WEEKLY;BYDAY=TU. Nothing was created.")
        interval = int(m.group(1) or 1)
        if interval == 0:
            raise UserError(f"'{m.group(0)}' never comes round: repeat every 1 {m.group(2)} or more. Nothing was created.")
        if interval > MAX_INTERVAL:
            raise UserError(f"Every {interval} {m.group(2)}s is too far apart; at most every {MAX_INTERVAL}. "
                            "Nothing was created.")
        parts = [f"FREQ={UNITS[m.group(2)]}"] + ([f"INTERVAL={interval}"] if interval > 1 else [])
        tail = raw[m.end():]
    options = re.split(r"\s+(?=(?:on|at|from|until|count)\b)", " " + tail.strip(), flags=re.IGNORECASE)
    until: date | None = None
    count: int | None = None
    seen: set[str] = set()
    for option in (o.strip() for o in options):
        if not option:
            continue
        word, _, value = option.partition(" ")
        word = word.lower()
        name = "count" if word.startswith("count") else word
        if name in seen:
            raise UserError(f"'{name}' is given twice in '{raw}'. Nothing was created.")
        seen.add(name)
        if pasted and name in ("on", "until", "count"):
            raise UserError(f"With an RRULE, write '{name}' inside it (BYDAY=, UNTIL=, COUNT=); only at and from "
                            "may follow it. Nothing was created.")
        if name == "count":
            number = option[5:].lstrip(" =")
            if not number.isdigit() or int(number) == 0:
                raise UserError(f"'{option}' needs a number of times, like count=6. Nothing was created.")
            count = int(number)
        elif word == "on":
            parts.append("BYDAY=" + ",".join(_days(value)))
        elif word == "at":
            at, given_at = _clock(value), True
        elif word == "from":
            start_day, started = _date(value.strip(), "from"), True
        elif word == "until":
            until = _date(value.strip(), "until")
        else:
            raise UserError(f"I can't read '{option}' in '{raw}'. Write it like {EXAMPLE}. Nothing was created.")
    if not pasted:
        if until is not None and count is not None:
            raise UserError("Give until or count, not both. Nothing was created.")
        if until is not None:
            parts.append(f"UNTIL={until:%Y%m%d}T235959")
        if count is not None:
            parts.append(f"COUNT={count}")
        rule_text = "RRULE:" + ";".join(parts)
    if "UNTIL=" not in rule_text and "COUNT=" not in rule_text:
        raise UserError(
            f"That series never ends. Give it an end within {MAX_SPAN.days // 365} years or {MAX_COUNT} posts: "
            f"add until 2027-03-01 or count=6 (in an RRULE: ;UNTIL=20270301T235959 or ;COUNT=6). Nothing was created."
        )
    if not started and datetime.combine(start_day, at, tzinfo=zone) <= now:
        start_day += timedelta(days=1)  # no start given: from the next time the clock shows `at`
    rule = Rule(rule_text, datetime.combine(start_day, at), tz)
    try:
        dates = rule.dates()
    except (ValueError, TypeError) as exc:
        raise UserError(f"That RRULE can't be read ({exc}). An example: RRULE:FREQ=WEEKLY;BYDAY=TU;COUNT=6. "
                        "Nothing was created.") from None
    ends = re.search(r"UNTIL=(\d{8})", rule_text)
    if not dates and ends is not None and ends.group(1) < f"{rule.start:%Y%m%d}":
        raise UserError(f"'{raw}' ends before it starts ({rule.start:%Y-%m-%d}): the series would be in the past. "
                        "Nothing was created.")
    if not dates:
        raise UserError(f"'{raw}' gives no date at all (e.g. a day that never exists). Nothing was created.")
    if len(dates) > MAX_COUNT:
        raise UserError(f"That series has more than {MAX_COUNT} posts; give a nearer until or a smaller count. "
                        "Nothing was created.")
    if dates[-1] - now > MAX_SPAN:
        raise UserError(f"That series runs until {show_time(dates[-1], tz)}, more than {MAX_SPAN.days // 365} years "
                        "ahead; give a nearer until or a smaller count. Nothing was created.")
    if dates[-1] <= now:
        raise UserError(f"Every date of '{raw}' is in the past (the last was {show_time(dates[-1], tz)}). "
                        "Nothing was created.")
    return rule, given_at or "BYHOUR" in rule_text


def find_series(session: Session, template: Post) -> Series | None:
    return session.exec(select(Series).where(Series.template_post_id == template.id)).first()


def series_approved(session: Session, series: Series, template: Post, ws: Workspace) -> bool:
    """An occurrence may be created approved: no approval needed, or the series' post has its approvals."""
    if ws.approvals_needed == 0:
        return True
    return series.approval == "once" and len(approvals_at_revision(session, template)) >= ws.approvals_needed


def create_occurrence(ctx: Context, series_id: int, at: datetime) -> tuple[int, Reply | None] | None:
    """Create the post of one date (one transaction with its Occurrence row): its number and, when it needs its own
    approval, the card for the approvers. None if another worker (or an earlier run) already made that date, or the
    series isn't running."""
    now = ctx.clock.now()
    try:
        with ctx.db.session() as session:
            series = session.get(Series, series_id)
            if series is None or series.state != SeriesState.ACTIVE.value:
                return None
            template = session.get(Post, series.template_post_id)
            assert template is not None
            ws = get_workspace(session, series.workspace_id)
            post = Post(workspace_id=ws.id or 0, author_platform=template.author_platform,
                        author_user_id=template.author_user_id, author_name=template.author_name,
                        text=template.text, due_at=at, due_tz=series.timezone, created_at=now, updated_at=now)
            session.add(post)
            session.flush()
            copy_content(session, template, post)
            session.add(Occurrence(series_id=series_id, occurs_at=at, post_id=post.id,
                                   template_revision=template.revision, created_at=now))
            approved = series_approved(session, series, template, ws)
            if approved:
                move_post(post, PostState.APPROVED)
                move_post(post, PostState.SCHEDULED)
            else:
                move_post(post, PostState.IN_REVIEW)
            audit(session, ctx, ws.id or 0, post.id, "Herald", "series",
                  f"occurrence of #{template.id} for {show_time(at, series.timezone)}"
                  + (", approved with the series" if approved else ", needs its own approval"))
            session.flush()
            post_id = post.id or 0
            card = None if approved else approval_card(
                ctx, session, post, ws, f"🔁 #{post.id} is the {show_time(at, series.timezone)} post of the series of "
                f"#{template.id}; it needs approval ({ws.approvals_needed} needed).")
    except IntegrityError:
        return None  # that date was made by another worker: the unique (series, date) holds
    with ctx.db.session() as session:
        made = session.get(Post, post_id)
        if made is not None:
            rearm(ctx, made, get_workspace(session, made.workspace_id))
    return post_id, card


async def fill_series(ctx: Context, series_id: int) -> list[int]:
    """Bring one series up to date: pass on an edit of its post, create the next WINDOW occurrences, end it after
    its last date. Returns the posts created."""
    now = ctx.clock.now()
    with ctx.db.session() as session:
        series = session.get(Series, series_id)
        if series is None or series.state != SeriesState.ACTIVE.value:
            return []
        template = session.get(Post, series.template_post_id)
        assert template is not None
        ws = get_workspace(session, series.workspace_id)
        if PostState(template.state) in (PostState.CANCELLED, PostState.REJECTED):
            series.state, series.stopped_at = SeriesState.STOPPED.value, now  # its post is gone: so are new dates
            audit(session, ctx, ws.id or 0, template.id, "Herald", "repeat", f"stopped: #{template.id} is {template.state}")
            return []
        follow_series(ctx, session, template)
        ready = series.approval == "each" or series_approved(session, series, template, ws)
        made = {o.occurs_at: o for o in session.exec(select(Occurrence).where(Occurrence.series_id == series_id)).all()}
        dates = [at for at in rule_of(series).dates() if at > now]
        if not dates:
            series.state = SeriesState.ENDED.value
            audit(session, ctx, ws.id or 0, template.id, "Herald", "series", "ended: no date left")
            return []
    created: list[int] = []
    cards: list[Reply] = []
    ahead = 0
    for at in dates:
        if ahead >= WINDOW:
            break
        occurrence = made.get(at)
        if occurrence is not None and occurrence.skipped:
            continue
        ahead += 1
        if occurrence is None and ready:
            result = create_occurrence(ctx, series_id, at)
            if result is not None:
                created.append(result[0])
                if result[1] is not None:
                    cards.append(result[1])
    # after the commit: a crash in between loses a notice, never makes a post twice
    for card in cards:
        await tell_team(ctx, series.workspace_id, card, purpose="approvals")
    return created


async def fill_series_of(ctx: Context, post_id: int) -> list[int]:
    """Fill the running series whose post is `post_id` at once (its post was just approved); [] if it has none."""
    with ctx.db.session() as session:
        series_id = session.exec(select(Series.id).where(Series.template_post_id == post_id)
                                 .where(Series.state == SeriesState.ACTIVE.value)).first()
    return await fill_series(ctx, series_id) if series_id is not None else []


@periodic("series", every=FILL_EVERY)
async def fill_all_series(ctx: Context) -> int:
    """Keep every running series' next occurrences created; returns how many posts were created."""
    with ctx.db.session() as session:
        ids = list(session.exec(select(Series.id).where(Series.state == SeriesState.ACTIVE.value)).all())
    created = 0
    for series_id in ids:
        try:
            created += len(await fill_series(ctx, series_id or 0))
        except Exception:  # one series' failure must not stop the others
            log.exception("series %s could not be filled", series_id)
    return created


def occurrences_on(series: Series, day: date) -> list[datetime]:
    """The series' dates that fall on local `day`."""
    zone = ZoneInfo(series.timezone)
    return [at for at in rule_of(series).dates() if at.astimezone(zone).date() == day]


def date_of(series: Series, text: str, now: datetime, usage: str) -> list[datetime]:
    """The series' future dates on the day a person typed (2026-12-08); refused when it has none then."""
    word = text.strip()
    if not ISO_DATE.fullmatch(word):
        raise UserError(f"Which date? Write it like 2026-12-08: {usage}. /repeat {series.template_post_id} shows the "
                        "next dates.")
    try:
        day = date.fromisoformat(word)
    except ValueError:
        raise UserError(f"There's no date {word}. Nothing changed.") from None
    dates = occurrences_on(series, day)
    if not dates:
        raise UserError(f"The series of #{series.template_post_id} has no post on {word}. /repeat "
                        f"{series.template_post_id} shows its next dates. Nothing changed.")
    future = [at for at in dates if at > now]
    if not future:
        raise UserError(f"The post of {word} is in the past. Nothing changed.")
    return future


def occurrence_at(session: Session, series: Series, at: datetime) -> Occurrence | None:
    return session.exec(select(Occurrence).where(Occurrence.series_id == series.id)
                        .where(Occurrence.occurs_at == at)).first()


def describe(session: Session, series: Series, template: Post, ws: Workspace, now: datetime) -> str:
    """A series as /repeat shows it: its rule, how it is approved, and its next dates with their posts."""
    rule = rule_of(series)
    states = {SeriesState.ACTIVE.value: "running", SeriesState.STOPPED.value: "stopped",
              SeriesState.ENDED.value: "ended (no date left)"}
    how = ("each occurrence is approved on its own" if series.approval == "each" and ws.approvals_needed else
           f"approved once: the occurrences go out with the approval of #{template.id}" if ws.approvals_needed else
           "no approval needed in this workspace")
    lines = [f"🔁 #{template.id} repeats {rule.words()}; {states.get(series.state, series.state)}.", f"Approval: {how}."]
    if series.state == SeriesState.ACTIVE.value and not series_approved(session, series, template, ws) \
            and series.approval == "once":
        lines.append(f"⏳ Its occurrences are created once #{template.id} is approved (it's {state_label(template)}"
                     f"{f': /submit {template.id}' if PostState(template.state) == PostState.DRAFT else ''}).")
    made = {o.occurs_at: o for o in session.exec(select(Occurrence).where(Occurrence.series_id == series.id)).all()}
    posts = {p.id: p for p in session.exec(select(Post).where(
        col(Post.id).in_([o.post_id for o in made.values() if o.post_id is not None]))).all()}
    upcoming = [at for at in rule.dates() if at > now][:SHOWN]
    if series.state != SeriesState.ACTIVE.value:
        upcoming = [at for at in upcoming if at in made and made[at].post_id is not None
                    and posts[made[at].post_id or 0].state not in (PostState.CANCELLED.value,)]
    if not upcoming:
        lines.append("No date ahead.")
    else:
        lines.append("Next dates:")
    for at in upcoming:
        occurrence = made.get(at)
        if occurrence is None:
            what = f"its post is made when it is among the next {WINDOW}"
        elif occurrence.skipped:
            what = "skipped"
        else:
            post = posts[occurrence.post_id or 0]
            what = f"#{post.id}, {state_label(post)}" + (", edited on its own" if occurrence.edited else "")
        lines.append(f"  {show_time(at, series.timezone, now)} · {what}")
    if series.state == SeriesState.ACTIVE.value:
        lines.append(f"/repeat {template.id} skip <date> · /repeat {template.id} edit <date> <text> · "
                     f"/repeat {template.id} stop · /edit {template.id} changes the series.")
    return "\n".join(lines)


@command(
    "repeat",
    usage="/repeat <post> [every 2 weeks [on tue,thu] [at 9:00] [from date] [until date | count=6] | RRULE:… | "
          "skip <date> | edit <date> <text> | stop]",
    example=EXAMPLE,
    summary="make a post recurring; show, skip or edit one date, or stop its series",
    details=(
        "The post becomes the series' post: each date gets an ordinary post copied from it a few dates ahead, "
        "at the time of day in the workspace timezone (09:00 stays 09:00 across daylight-saving changes). "
        f"A series needs an end: until <date> or count=N, at most {MAX_COUNT} posts within "
        f"{MAX_SPAN.days // 365} years. An RFC 5545 rule may be pasted instead: RRULE:FREQ=WEEKLY;BYDAY=TU;COUNT=6 "
        "[at 9:00] [from 2026-12-01].\n"
        "/policy series=once|each: approve the series once, or each occurrence on its own. /edit <post> changes "
        "the occurrences not approved yet. Everyone may look at a series; admins and editors change it."
    ),
    roles=ALL_ROLES,
    group="Posts",
    takes=(Param.post(), Param.text("rule", required=False,
                                    description="every 2 weeks on tue at 9:00 until 2027-03-01 | skip <date> | "
                                                "edit <date> <text> | stop")),
)
async def repeat(req: Request) -> Reply:
    ctx = req.ctx
    _post_id, rest = req.post_and_rest()
    verb, _, after = rest.partition(" ")
    verb = verb.lower()
    if not rest or rest.lower() == "show":
        with req.post_command() as (session, template, ws):
            series = find_series(session, template)
            if series is None:
                return Reply(f"#{template.id} doesn't repeat. {EXAMPLE.replace('12', str(template.id))} makes it.")
            return Reply(describe(session, series, template, ws, ctx.clock.now()))
    req.require_role(EDITORS, "change a series")
    if verb == "stop":
        return await stop(req)
    if verb == "skip":
        return await skip(req, after)
    if verb == "edit":
        return await edit_one(req, after)
    return await start(req, rest)


async def start(req: Request, text: str) -> Reply:
    ctx = req.ctx
    now = ctx.clock.now()
    with req.post_command() as (session, template, ws):
        if find_series(session, template) is not None:
            raise UserError(f"#{template.id} already has a series (/repeat {template.id} shows it). A stopped or "
                            "ended series doesn't start again: /draft a new post for a new one. Nothing changed.")
        if session.exec(select(Occurrence).where(Occurrence.post_id == template.id)).first() is not None:
            raise UserError(f"#{template.id} is one date of a series; make the series' own post repeat instead. "
                            "Nothing changed.")
        if PostState(template.state) not in TEMPLATE_STATES:
            raise UserError(f"#{template.id} is {state_label(template)}; a series is made from a draft or a post in "
                            "review or approved (without a time of its own). Nothing was created.")
        if template.due_at is not None:
            raise UserError(f"#{template.id} has a time of its own ({show_time(template.due_at, template.due_tz or ws.timezone)}); "
                            f"a series sets its own times. /unschedule {template.id} first. Nothing was created.")
        if not post_targets(session, template):
            raise UserError(f"#{template.id} has no target accounts yet: /targets {template.id} <account…>. "
                            "Nothing was created.")
        rule, timed = parse_rule(text, now=now, tz=ws.timezone)
        series = Series(workspace_id=ws.id or 0, template_post_id=template.id or 0, rule=rule.text,
                        start_local=rule.start.isoformat(), timezone=rule.tz, approval=ws.series_approval,
                        created_by=req.actor_name, created_at=now)
        session.add(series)
        session.flush()
        audit(session, ctx, ws.id or 0, template.id, req.actor_name, "repeat", rule.text)
        series_id, template_id = series.id or 0, template.id
    await fill_series(ctx, series_id)
    with ctx.db.session() as session:
        made_series = session.get(Series, series_id)
        made_template = session.get(Post, template_id)
        assert made_series is not None and made_template is not None
        shown = describe(session, made_series, made_template, get_workspace(session, made_series.workspace_id), now)
    note = "" if timed else f"\n(No time of day given: {DEFAULT_AT:%H:%M}. /repeat {template_id} stop and make it " \
                            "again with at 17:30 for another.)"
    return Reply(shown + note)


async def stop(req: Request) -> Reply:
    ctx = req.ctx
    now = ctx.clock.now()
    cancelled = []
    with req.post_command() as (session, template, ws):
        series = find_series(session, template)
        if series is None or series.state != SeriesState.ACTIVE.value:
            raise UserError(f"#{template.id} has no running series. Nothing changed.")
        series.state, series.stopped_at = SeriesState.STOPPED.value, now
        rows = session.exec(
            select(Post).join(Occurrence, col(Occurrence.post_id) == col(Post.id))
            .where(Occurrence.series_id == series.id).where(col(Occurrence.occurs_at) > now)
            .order_by(col(Occurrence.occurs_at))
        ).all()
        for post in rows:
            if PostState(post.state) in CANCELLABLE:
                move_post(post, PostState.CANCELLED)
                post.held_note = None
                rearm(ctx, post, ws)
                audit(session, ctx, ws.id or 0, post.id, req.actor_name, "cancel", f"series of #{template.id} stopped")
                cancelled.append(f"#{post.id}")
        audit(session, ctx, ws.id or 0, template.id, req.actor_name, "repeat", "stopped")
        template_id = template.id
    gone = f" Its waiting posts {', '.join(cancelled)} are cancelled." if cancelled else ""
    reply = Reply(f"⏹ The series of #{template_id} is stopped: no new dates.{gone}")
    await tell_team(ctx, req.need_workspace(), reply, skip=req.command.chat)
    return reply


def running_series(session: Session, template: Post) -> Series:
    series = find_series(session, template)
    if series is None or series.state != SeriesState.ACTIVE.value:
        raise UserError(f"#{template.id} has no running series (/repeat {template.id} shows it). Nothing changed.")
    return series


async def skip(req: Request, text: str) -> Reply:
    ctx = req.ctx
    now = ctx.clock.now()
    usage = "/repeat <post> skip 2026-12-08"
    done = []
    try:
        with req.post_command() as (session, template, ws):
            series = running_series(session, template)
            for at in date_of(series, text, now, usage):
                occurrence = occurrence_at(session, series, at)
                shown = show_time(at, series.timezone, now)
                if occurrence is None:
                    session.add(Occurrence(series_id=series.id or 0, occurs_at=at, skipped=True, created_at=now))
                elif occurrence.skipped:
                    raise UserError(f"{shown} is skipped already. Nothing changed.")
                else:
                    post = session.get(Post, occurrence.post_id)
                    assert post is not None
                    if PostState(post.state) not in CANCELLABLE:
                        raise UserError(f"The post of {shown} (#{post.id}) is {state_label(post)}, so it can't be "
                                        "skipped. Nothing changed.")
                    move_post(post, PostState.CANCELLED)
                    post.held_note = None
                    rearm(ctx, post, ws)
                    occurrence.skipped = True
                    shown += f" (#{post.id} cancelled)"
                audit(session, ctx, ws.id or 0, template.id, req.actor_name, "repeat", f"skip {shown}")
                done.append(shown)
            session.flush()
            series_id, template_id = series.id or 0, template.id
    except IntegrityError:
        raise UserError("That date's post was being created at this very moment; nothing changed. Try again.") from None
    await fill_series(ctx, series_id)
    return Reply(f"⏭ Skipped {', '.join(done)} in the series of #{template_id}. /repeat {template_id} shows the next dates.")


async def edit_one(req: Request, text: str) -> Reply:
    ctx = req.ctx
    now = ctx.clock.now()
    usage = "/repeat <post> edit 2026-12-08 <new text>"
    day, _, words = text.strip().partition(" ")
    new_text, options = split_options(words)
    if "to" in options:
        raise UserError("One date's accounts can't change here. Nothing changed.")
    if not new_text and not options:
        raise UserError(f"What should that date's post say? {usage}")
    with req.post_command() as (session, template, _ws):
        series = running_series(session, template)
        dates = date_of(series, day, now, usage)
        if len(dates) > 1:
            raise UserError(f"The series has {len(dates)} posts on {day}; edit one by its number: /edit <post> <text>.")
        occurrence = occurrence_at(session, series, dates[0])
        if occurrence is not None and occurrence.skipped:
            raise UserError(f"{day} is skipped. Nothing changed.")
        series_id, at = series.id or 0, dates[0]
    if occurrence is None:  # beyond the window: its post is made now, to hold its own text
        create_occurrence(ctx, series_id, at)
    with ctx.db.session() as session:
        ws = get_workspace(session, req.need_workspace())
        found = session.get(Series, series_id)
        assert found is not None
        occurrence = occurrence_at(session, found, at)
        if occurrence is None or occurrence.post_id is None:
            raise UserError("That date's post couldn't be made; nothing changed. Try again.")
        post = session.get(Post, occurrence.post_id)
        assert post is not None
        if PostState(post.state) not in EDITABLE:
            raise UserError(f"The post of {day} (#{post.id}) is {state_label(post)}, so it can't be edited. Nothing changed.")
        if new_text:
            if post.variants:
                post.stale_variants = sorted(set(post.stale_variants) | set(post.variants))
            post.text = new_text
        if "link" in options:
            post.link = options["link"]
        if "campaign" in options:
            post.campaign = options["campaign"]
        occurrence.edited = True
        note = content_changed(ctx, session, post, ws, req.command.actor,
                               f"{day} of the series of #{found.template_post_id} edited on its own")
        post_id = post.id or 0
    return await after_content_change(req, post_id, f"Edited #{post_id}, the {day} post of the series; the other "
                                      "dates keep the series' text.", note)
