"""A post at the same wall-clock time in each audience's own zone: "/schedule 12 tue 9:00 local".

The phrase's date and time (read by handlers.core.when.parse_wall) is placed in each audience's zone: every
delivery with an audience gets its own `due_at`; a delivery without one takes the workspace's zone. The post's
`due_at` is the earliest of them (the clock arms the post then) and `due_local` keeps the wall time. Publishing
then sends each delivery at its own time (handlers/posts/publishing/claims.py stamps each one's `not_before`).

With `skip=holidays`, an audience whose local date is a public holiday in its `country` (the `holidays`
library) moves to its next working day (not a weekend, not a holiday) at the same wall time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache

import holidays
from sqlmodel import Session

from handlers.core.errors import UserError
from handlers.core.lookups import audience_name, delivery_audience, post_targets
from handlers.core.when import MAX_AHEAD, WhenError, format_when, wall_in_zone, wall_words
from storage.models import Account, Audience, Delivery, Post, Workspace

SKIP_HOLIDAYS = "skip=holidays"
LOCAL_FORMAT = "%Y-%m-%d %H:%M"  # Post.due_local
WORKING_DAY_SEARCH = 30  # days looked ahead for a working day before giving up
# error kinds of deliveries a person stopped while they waited for their own time (/cancel, /unschedule on a post
# already out for some audiences); the publishing notice gives each its fix (publishing/settle.py FIXES)
CANCELLED = "cancelled"
UNSCHEDULED = "unscheduled"


@dataclass
class AudienceTime:
    """Where one audience (or the workspace's zone, for deliveries without one) goes out."""

    name: str  # the audience's name, or "" for the deliveries without an audience
    tz: str
    wall: datetime  # naive, in tz (after a holiday move)
    at: datetime  # UTC
    repeated: bool = False  # the zone has that wall time twice (fall-back night): the first one is taken
    moved_from: date | None = None  # skip=holidays moved it off this date…
    holiday: str = ""  # …which is this holiday


@dataclass
class LocalPlan:
    wall: datetime  # the wall time asked for (for next best / next slot: the earliest audience's)
    times: list[AudienceTime]
    by_delivery: dict[int, datetime] = field(default_factory=dict)
    label: str = ""  # what was asked for: "09:00", "the next best time", "the next posting slot"

    @property
    def earliest(self) -> datetime:
        return min(t.at for t in self.times)


def split_options(text: str) -> tuple[str, bool]:
    """The phrase without `skip=holidays`, and whether it was there."""
    words = text.split()
    kept = [w for w in words if w.lower() != SKIP_HOLIDAYS]
    return " ".join(kept), len(kept) != len(words)


@lru_cache(maxsize=64)
def _calendar(country: str, year: int) -> holidays.HolidayBase:
    return holidays.country_holidays(country, years=[year, year + 1])


def holiday_name(country: str, day: date) -> str | None:
    """The public holiday on `day` in `country` (ISO 3166-1 alpha-2), or None; KeyError-free for unknown ones."""
    return _calendar(country.upper(), day.year).get(day)


def known_country(country: str) -> bool:
    return country.upper() in holidays.list_supported_countries()


def next_working_day(country: str, day: date) -> date | None:
    """The first day after `day` that is neither a weekend (Saturday, Sunday) nor a public holiday."""
    for step in range(1, WORKING_DAY_SEARCH + 1):
        candidate = day + timedelta(days=step)
        if candidate.weekday() < 5 and holiday_name(country, candidate) is None:
            return candidate
    return None


@dataclass
class Group:
    """The deliveries of a post that reach one audience (or none: the workspace's zone)."""

    audience: Audience | None
    tz: str
    pairs: list[tuple[Delivery, Account]]

    @property
    def name(self) -> str:
        return audience_name(self.audience) if self.audience is not None else ""

    @property
    def who(self) -> str:
        return (f"audience {self.name} ({self.tz})" if self.audience is not None
                else f"the accounts without an audience ({self.tz})")


def audience_groups(session: Session, post: Post, ws: Workspace, example: str) -> dict[int | None, Group]:
    """The post's deliveries by audience; UserError (with `example`) when it reaches no audience."""
    groups: dict[int | None, Group] = {}
    for delivery, account in post_targets(session, post):
        group = groups.get(delivery.audience_id)
        if group is None:
            audience = delivery_audience(session, delivery)
            group = groups[delivery.audience_id] = Group(audience, audience.timezone if audience else ws.timezone, [])
        group.pairs.append((delivery, account))
    if all(group.audience is None for group in groups.values()):
        raise UserError(
            f"#{post.id} reaches no audience, so 'local' has no zones to use. Target audiences first "
            f"(/targets {post.id} audience:<name>), or give a time in one zone, e.g. {example}. Nothing was changed."
        )
    return dict(sorted(groups.items(), key=lambda item: (item[0] is None, item[0] or 0)))


def plan_of(groups: dict[int | None, Group], times: dict[int | None, AudienceTime], wall: datetime,
            label: str) -> LocalPlan:
    """The plan that gives each group's deliveries its time."""
    plan = LocalPlan(wall=wall, times=sorted(times.values(), key=lambda t: (t.at, t.name)), label=label)
    for audience_id, group in groups.items():
        for delivery, _account in group.pairs:
            assert delivery.id is not None
            plan.by_delivery[delivery.id] = times[audience_id].at
    return plan


def plan_local(session: Session, post: Post, ws: Workspace, wall: datetime, now: datetime,
               *, skip_holidays: bool, example: str) -> LocalPlan:
    """Each delivery's own time for `wall` in its audience's zone; UserError (nothing changed) when a zone
    skips that time, a time is already past or too far ahead, or the post has no audiences."""
    groups = audience_groups(session, post, ws, f"/schedule {post.id} {wall:%Y-%m-%d %H:%M} {ws.timezone}")
    return plan_groups(groups, wall, now, skip_holidays=skip_holidays, example=example)


def plan_groups(groups: dict[int | None, Group], wall: datetime, now: datetime, *, skip_holidays: bool,
                example: str) -> LocalPlan:
    """`plan_local` for groups already known (an /import row's audiences before its post exists: groups without
    deliveries give the times alone)."""
    plans: dict[int | None, AudienceTime] = {}
    for audience_id, group in groups.items():
        audience, name, tz, who = group.audience, group.name, group.tz, group.who
        day_wall, moved_from, holiday = wall, None, ""
        if skip_holidays and audience is not None and audience.country:
            if not known_country(audience.country):
                raise UserError(
                    f"skip=holidays: audience {name}'s country '{audience.country}' isn't one the holiday calendar "
                    f"knows (it wants an ISO code such as ES, NO, US). Fix the audience, or schedule without "
                    f"skip=holidays, e.g. {example}. Nothing was changed."
                )
            found = holiday_name(audience.country, wall.date())
            if found is not None:
                working = next_working_day(audience.country, wall.date())
                if working is None:
                    raise UserError(f"skip=holidays: no working day in {name} within {WORKING_DAY_SEARCH} days of "
                                    f"{wall:%Y-%m-%d}. Pick another day. Nothing was changed.")
                day_wall = datetime.combine(working, wall.time())
                moved_from, holiday = wall.date(), found
        try:
            placed = wall_in_zone(day_wall, tz)
        except WhenError as exc:
            raise UserError(f"For {who}: {exc} Nothing was changed.") from None
        if placed.at <= now:
            raise UserError(
                f"{wall_words(day_wall)} has already passed for {who} (it was {format_when(placed.at, tz)}). "
                f"Pick a later day, e.g. {example}. Nothing was changed."
            )
        if placed.at - now > MAX_AHEAD:
            raise UserError(f"{wall_words(day_wall)} is more than two years ahead, which is probably a typo: check "
                            "the year. Nothing was changed.")
        plans[audience_id] = AudienceTime(name, tz, day_wall, placed.at, placed.repeated, moved_from, holiday)
    return plan_of(groups, plans, wall, f"{wall:%H:%M}")


def apply_plan(session: Session, post: Post, plan: LocalPlan) -> None:
    """Store each delivery's own time, the post's wall time and its earliest time."""
    for delivery, _account in post_targets(session, post):
        delivery.due_at = plan.by_delivery.get(delivery.id or 0)
    post.due_local = plan.wall.strftime(LOCAL_FORMAT)


def clear_local(session: Session, post: Post) -> None:
    """A post back to one time for all: its deliveries' own times and its wall time go."""
    for delivery, _account in post_targets(session, post):
        delivery.due_at = None
    post.due_local = None


def place_new_targets(session: Session, post: Post, ws: Workspace, now: datetime) -> str:
    """After /targets on a post scheduled at a local time: each new delivery gets the post's wall time in its
    audience's zone (or the workspace's), the ones already placed keep theirs (a skip=holidays move included),
    and the post is armed at the earliest. A post left with no audience goes back to one time for all. Returns
    a sentence for the team ('' for a post not scheduled `local`); UserError (nothing changed) when a new
    audience's zone skips that time or it has passed there."""
    if not post.due_local:
        return ""
    pairs = post_targets(session, post)
    if all(delivery.audience_id is None for delivery, _account in pairs):
        clear_local(session, post)
        return f" It reaches no audience now, so every account goes out at one time again: {format_when(post.due_at, ws.timezone)}." \
            if post.due_at is not None else ""
    wall = datetime.strptime(post.due_local, LOCAL_FORMAT)
    new = [delivery for delivery, _account in pairs if delivery.due_at is None]
    if new:
        plan = plan_local(session, post, ws, wall, now, skip_holidays=False,
                          example=f"/schedule {post.id} {wall:%Y-%m-%d %H:%M} local")
        for delivery in new:
            delivery.due_at = plan.by_delivery[delivery.id or 0]
    times = [delivery.due_at for delivery, _account in pairs if delivery.due_at is not None]
    post.due_at = min(times)
    return f" New targets go out at {wall:%H:%M} in their own zones, like the others." if new else ""


def plan_lines(plan: LocalPlan, team_tz: str) -> list[str]:
    """One line per audience: its time in its zone and in the team's, with what moved it or what to know."""
    lines = []
    for one in plan.times:
        who = one.name or "no audience"
        line = f"  {who}: {format_when(one.at, one.tz)}"
        if one.tz != team_tz:
            line += f" — {format_when(one.at, team_tz)} for the team"
        if one.moved_from is not None:
            line += f" (moved from {one.moved_from:%a %-d %b}: {one.holiday}, a public holiday there)"
        if one.repeated:
            line += (f" (that night the clocks go back and {one.wall:%H:%M} happens twice in {one.tz}: the first "
                     "one is taken)")
        lines.append(line)
    return lines


def delivery_times(session: Session, post: Post) -> list[tuple[str, str, datetime, list[Delivery]]]:
    """(audience name or "", its zone, its time, its deliveries) per own time of a post scheduled `local`."""
    groups: dict[tuple[int | None, datetime], list[Delivery]] = {}
    for delivery, _account in post_targets(session, post):
        if delivery.due_at is not None:
            groups.setdefault((delivery.audience_id, delivery.due_at), []).append(delivery)
    rows = []
    for (_audience, at), deliveries in groups.items():
        audience = delivery_audience(session, deliveries[0])  # all of the group reach it
        rows.append((audience_name(audience) if audience else "", audience.timezone if audience else
                     (post.due_tz or "UTC"), at, deliveries))
    return sorted(rows, key=lambda row: (row[2], row[0]))
