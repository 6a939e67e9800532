"""Read, check and echo back the times people type when scheduling a post.

This is Herald's "time is explicit" promise in one place:

* Users type times in plain words ("tomorrow 9am", "in 2 hours", "dec 3 9am",
  "2026-12-01 18:30 Europe/Paris").  They are parsed with ``dateparser`` in the
  workspace time zone, unless the text ends with an IANA zone name
  ("Europe/Paris", "America/New_York", "UTC", "GMT", "Z") or carries an explicit
  numeric UTC offset ("2026-12-01T18:30:00+02:00", "18:30 +05:30").
* A time is refused (``WhenError``, whose message says what to type instead) when:

  - the text is empty or can't be read as a time;
  - it is not in the future (compared with the ``now`` passed in).  A bare clock
    time ("17:00") means *today* at that time and is refused if already past,
    never silently moved to tomorrow;
  - it is a numeric date whose day and month could be swapped ("03/04/2027");
  - it is a wall-clock time that doesn't exist or happens twice in its zone
    because of a daylight-saving change (detected with zoneinfo, not a date list);
  - it names an unknown zone, or uses a zone abbreviation ("EST", "IST"), which
    means different things in different places;
  - it gives an hour without minutes or am/pm ("tomorrow at 9"), which dateparser
    would silently ignore;
  - it is more than two years (730 days) after ``now``: almost certainly a typo.

* Accepted times are echoed back with ``format_when`` as a full date with its zone,
  e.g. "Tue 24 Nov 2026 09:00 CET (Europe/Paris)".

The module never reads the real clock: ``now`` (timezone-aware) is always passed in.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

import dateparser  # type: ignore[import-untyped]
from dateparser.timezone_parser import pop_tz_offset_from_string  # type: ignore[import-untyped]

__all__ = ["MAX_AHEAD", "When", "WhenError", "format_delta", "format_when", "parse_timezone", "parse_when"]

#: Anything further ahead than this is refused as a probable typo.
MAX_AHEAD = timedelta(days=730)

_EXAMPLES = "Try 'tomorrow 9am', 'in 2 hours' or '2026-12-01 18:30 Europe/Paris'."
_ZONE_EXAMPLES = "Use an IANA zone name such as 'Europe/Paris', 'America/New_York' or 'UTC'."

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip

_UTC_NAMES = frozenset({"UTC", "Z"})
_NOW_WORDS = frozenset({"now", "right now", "immediately", "asap", "straight away", "right away"})

# A trailing token we treat as a zone name: anything with a "/" that starts with a
# letter (so "03/04/2027" is not one), or exactly UTC / GMT / Z.
_ZONE_TOKEN = re.compile(r"(?:utc|gmt|z|[a-z][a-z0-9_+\-]*(?:/[a-z0-9_+\-]+)+)", re.IGNORECASE)

# "in 2 hours", "in 90 minutes", "in 1 hour and 5 minutes", "2 hours from now".
_SUB_DAY_DURATION = re.compile(
    r"(?:in\s+)?"
    r"(?:(?:\d+|an?|one)\s*(?:seconds?|secs?|minutes?|mins?|hours?|hrs?)\b[\s,]*(?:and\s+)?)+"
    r"(?:from\s+now)?",
    re.IGNORECASE,
)

# A clock time on its own, optionally "today"/"at": "17:00", "5pm", "today at 9:30".
_CLOCK = r"(?:\d{1,2}[:.]\d{2}(?::\d{2})?(?:\s*[ap]\.?m\.?)?|\d{1,2}\s*[ap]\.?m\.?|noon|midday|midnight)"
_TODAY_TIME = re.compile(rf"(?:(today)\s+)?(?:at\s+)?({_CLOCK})", re.IGNORECASE)

# An hour with neither minutes nor am/pm after a day word or "at": dateparser drops it.
_DAY_WORDS = (
    r"at|today|tomorrow|tonight|mon(?:day)?|tue(?:s|sday)?|wed(?:nesday)?|thu(?:rs|rsday)?"
    r"|fri(?:day)?|sat(?:urday)?|sun(?:day)?"
)
_BARE_HOUR = re.compile(
    rf"\b(?:{_DAY_WORDS})\s+(?:at\s+)?(\d{{1,2}})(?![\d:.])(?!\s*(?:[ap]\.?m\b|h\b|[a-z]))",
    re.IGNORECASE,
)

# d/m/y, d.m.y, d-m-y (and d/m without a year) where day and month might swap.
_NUMERIC_DATE = re.compile(r"(?<![\d/.\-:])(\d{1,2})([/.\-])(\d{1,2})(?:\2(\d{4}|\d{2}))?(?![\d/.\-:])")
# "18.30" -> "18:30": dateparser reads a dotted time alone but drops it after "today"/"tomorrow".
_DOTTED_TIME = re.compile(r"(?<![\d.])(\d{1,2})\.(\d{2})(?![\d.])(?!\s*(?![ap]\.?m)[a-z])", re.IGNORECASE)
_ISO_START = re.compile(r"\d{4}-\d{2}-\d{2}")
_OFFSET_NAME = re.compile(r"UTC\\?[+-]")


class WhenError(ValueError):
    """A time Herald can't accept; str(err) is a plain-English message for the user that says what to type instead."""


@dataclass(frozen=True)
class When:
    """A checked, future instant and the zone the user meant."""

    at: datetime  # timezone-aware, UTC
    tz: str  # IANA name of the zone the user meant (the one they typed, else the default)


@lru_cache(maxsize=1)
def _zones_by_lower() -> dict[str, str]:
    return {name.lower(): name for name in available_timezones()}


def parse_timezone(name: str) -> str:
    """Return the canonical IANA name for ``name`` (case-insensitive); "UTC"/"Z" give "UTC".

    Raises WhenError naming the zone, suggesting a close match when there is one.
    """
    cleaned = name.strip()
    if not cleaned:
        raise WhenError(f"I need a time zone name. {_ZONE_EXAMPLES}")
    if cleaned.upper() in _UTC_NAMES:
        return "UTC"
    zones = _zones_by_lower()
    canonical = zones.get(cleaned.lower())
    if canonical is not None:
        return canonical
    message = f"I don't know the time zone '{cleaned}'."
    city = cleaned.lower().replace(" ", "_")
    by_city = sorted(z for lower, z in zones.items() if lower.rsplit("/", 1)[-1] == city and "/" in lower)
    close = by_city[:1] or [
        zones[m] for m in difflib.get_close_matches(cleaned.lower(), list(zones), n=1, cutoff=0.75)
    ]
    if close:
        message += f" Did you mean '{close[0]}'?"
    raise WhenError(f"{message} {_ZONE_EXAMPLES}")


def parse_when(text: str, *, now: datetime, default_tz: str) -> When:
    """Read ``text`` as a future instant; see the module docstring for what is accepted and refused."""
    _require_aware(now, "now")
    zone_name = parse_timezone(default_tz)
    cleaned = " ".join(text.split())
    if not cleaned:
        raise WhenError(f"Tell me when to post. {_EXAMPLES}")

    body, zone_token = _split_trailing_zone(cleaned)
    if zone_token is not None:
        zone_name = parse_timezone(zone_token)
    if body.lower() in _NOW_WORDS:
        raise WhenError(
            "A scheduled post needs a time in the future, not 'now'. Try 'in 10 minutes' or 'tomorrow 9am'."
        )
    _refuse_swappable_day_month(body)
    _refuse_bare_hour(body)

    at, zone_name, today_time = _read(body, cleaned, now=now, zone_name=zone_name)

    if at <= now:
        shown = format_when(at, zone_name)
        if today_time is not None:
            raise WhenError(
                f"{shown}: that's already past today; did you mean tomorrow {today_time}? "
                f"Type 'tomorrow {today_time}'."
            )
        distance = "which is right now" if at == now else format_delta(at, now)
        raise WhenError(
            f"That time is in the past: I read '{cleaned}' as {shown}, {distance}. "
            "Give a time in the future, e.g. 'tomorrow 9am' or 'in 2 hours'."
        )
    if at - now > MAX_AHEAD:
        raise WhenError(
            f"I read '{cleaned}' as {format_when(at, zone_name)}, {format_delta(at, now)}. "
            "That's more than two years ahead, which is probably a typo: check the year."
        )
    return When(at=at, tz=zone_name)


def format_when(at: datetime, tz: str) -> str:
    """Full date in ``tz``: "Tue 24 Nov 2026 09:00 CET (Europe/Paris)", or "Tue 24 Nov 2026 08:00 UTC"."""
    _require_aware(at, "at")
    name = parse_timezone(tz)
    local = at.astimezone(ZoneInfo(name))
    abbreviation = local.tzname() or name
    text = f"{_date_words(local)} {local:%H:%M} {abbreviation}"
    return text if abbreviation == name else f"{text} ({name})"


def format_delta(at: datetime, now: datetime) -> str:
    """Short distance from ``now`` to ``at``: "in 2 hours 5 minutes", "in 3 days", "5 minutes ago", "now"."""
    _require_aware(at, "at")
    _require_aware(now, "now")
    total = int((at - now).total_seconds())
    if total == 0:
        return "now"
    remaining = abs(total)
    amounts = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        amounts.append((unit, remaining // size))
        remaining %= size
    first = next(i for i, (_, count) in enumerate(amounts) if count)
    parts = [
        f"{count} {unit}{'' if count == 1 else 's'}" for unit, count in amounts[first : first + 2] if count
    ]
    phrase = " ".join(parts)
    return f"in {phrase}" if total > 0 else f"{phrase} ago"


# --- internals -------------------------------------------------------------------------------


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")


def _date_words(local: datetime) -> str:
    return f"{_WEEKDAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]} {local.year}"


def _split_trailing_zone(text: str) -> tuple[str, str | None]:
    head, sep, last = text.rpartition(" ")
    if sep and _ZONE_TOKEN.fullmatch(last):
        return head.strip(), last
    return text, None


def _unreadable(text: str) -> WhenError:
    return WhenError(f"I couldn't read '{text}' as a time. {_EXAMPLES}")


def _refuse_swappable_day_month(body: str) -> None:
    for match in _NUMERIC_DATE.finditer(body):
        first, separator, second, year = match.groups()
        if year is None and separator != "/":
            continue  # "18.30" is a time, "12-01" is part of something else
        a, b = int(first), int(second)
        if not (1 <= a <= 12 and 1 <= b <= 12) or a == b:
            continue
        full_year = None if year is None else (int(year) + 2000 if len(year) == 2 else int(year))
        day_first = f"{a} {_MONTH_NAMES[b - 1]}"
        month_first = f"{b} {_MONTH_NAMES[a - 1]}"
        if full_year is not None:
            how = (
                f"Write it as {full_year}-{b:02d}-{a:02d} for {day_first} "
                f"(or {full_year}-{a:02d}-{b:02d} for {month_first}), "
                f"or with a month name, e.g. '{day_first} {full_year}'."
            )
        else:
            how = f"Write it with a month name, e.g. '{day_first}' or '{month_first}'."
        raise WhenError(f"'{match.group(0)}' could mean {day_first} or {month_first}. {how}")


def _refuse_bare_hour(body: str) -> None:
    match = _BARE_HOUR.search(body)
    if match is None:
        return
    hour = int(match.group(1))
    options = f"'{hour}am', '{hour}pm' or '{hour:02d}:00'" if hour <= 12 else f"'{hour:02d}:00'"
    raise WhenError(f"I can't tell what time '{match.group(0)}' means. Write the time as {options}.")


def _dateparse(text: str, base: datetime) -> datetime | None:
    """Run dateparser on ``text`` relative to the naive wall-clock time ``base``.

    TIMEZONE is pinned to UTC so dateparser does no zone arithmetic of its own: with a
    real zone there it shifts naive RELATIVE_BASE comparisons by that zone's offset, and
    with the default ("local") it consults the machine's zone.  Zones are handled here.
    """
    settings = {
        "RELATIVE_BASE": base,
        "PREFER_DATES_FROM": "future",
        "RETURN_AS_TIMEZONE_AWARE": False,
        "TIMEZONE": "UTC",
    }
    try:
        result = dateparser.parse(text, languages=["en"], settings=settings)
    except (ValueError, OverflowError, TypeError):
        return None
    return result if isinstance(result, datetime) else None


def _read(body: str, cleaned: str, *, now: datetime, zone_name: str) -> tuple[datetime, str, str | None]:
    """Return (UTC instant, zone name meant, the clock time if ``body`` was "[today] HH:MM")."""
    if not body:
        raise _unreadable(cleaned)
    zone = ZoneInfo(zone_name)

    # ISO 8601, possibly with an explicit offset: exact, no dateparser needed.
    if _ISO_START.match(body):
        try:
            iso = datetime.fromisoformat(body)
        except ValueError:
            pass
        else:
            if iso.tzinfo is not None:
                return iso.astimezone(UTC), zone_name, None
            return _localize(iso, zone, zone_name), zone_name, None

    # "in 2 hours": a real duration, counted in UTC so a DST change in between can't stretch it.
    lowered = body.lower()
    if _SUB_DAY_DURATION.fullmatch(body) and (lowered.startswith("in ") or lowered.endswith("from now")):
        result = _dateparse(body, now.astimezone(UTC).replace(tzinfo=None))
        if result is None:
            raise _unreadable(cleaned)
        return result.replace(tzinfo=UTC), zone_name, None

    # A zone abbreviation or numeric offset inside the text. dateparser would drop it
    # silently with RETURN_AS_TIMEZONE_AWARE=False, so take it out and apply it ourselves.
    rest, found = pop_tz_offset_from_string(body)
    if found is not None:
        found_name = str(found.tzname(None))
        if found_name.upper() in {"UTC", "GMT", "Z"}:
            return _read(rest.strip(), cleaned, now=now, zone_name="UTC")
        if not _OFFSET_NAME.match(found_name):
            raise WhenError(
                f"'{found_name}' is a zone abbreviation, and those mean different things in different "
                f"places (or seasons). Put an IANA zone name at the end instead, e.g. "
                f"'{rest.strip()} America/New_York'. {_ZONE_EXAMPLES}"
            )
        offset = found.utcoffset(None)
        fixed = timezone(offset)
        result = _dateparse(rest.strip(), now.astimezone(fixed).replace(tzinfo=None))
        if result is None:
            raise _unreadable(cleaned)
        return result.replace(tzinfo=fixed).astimezone(UTC), zone_name, None

    body = _DOTTED_TIME.sub(r"\1:\2", body)

    # "17:00" / "today 17:00" means today; dateparser would roll a past one to tomorrow.
    today_time = None
    clock = _TODAY_TIME.fullmatch(body)
    if clock is not None:
        today_time = clock.group(2)
        body = f"today {today_time}"

    result = _dateparse(body, now.astimezone(zone).replace(tzinfo=None))
    if result is None:
        raise _unreadable(cleaned)
    return _localize(result, zone, zone_name), zone_name, today_time


def _localize(wall: datetime, zone: ZoneInfo, zone_name: str) -> datetime:
    """Attach ``zone`` to a naive wall-clock time, refusing times a DST change skips or repeats."""
    earlier = wall.replace(tzinfo=zone, fold=0)
    later = wall.replace(tzinfo=zone, fold=1)
    clock = f"{wall:%H:%M} on {_date_words(wall)}"
    round_trip = earlier.astimezone(UTC).astimezone(zone)
    if round_trip.replace(tzinfo=None) != wall:
        as_utc = earlier.astimezone(UTC)
        raise WhenError(
            f"{clock} doesn't exist in {zone_name}: the clocks jump forward over it for daylight saving. "
            f"Pick a time outside the jump, e.g. {round_trip:%H:%M} {round_trip.tzname()}, "
            f"or give it in UTC, e.g. '{as_utc:%Y-%m-%d %H:%M} UTC'."
        )
    if earlier.utcoffset() != later.utcoffset():
        first, second = earlier.astimezone(UTC), later.astimezone(UTC)
        raise WhenError(
            f"{clock} happens twice in {zone_name}: the clocks go back an hour that night. "
            f"Say which one in UTC: '{first:%Y-%m-%d %H:%M} UTC' (the first, {earlier.tzname()}) or "
            f"'{second:%Y-%m-%d %H:%M} UTC' (the second, {later.tzname()}), or pick another time."
        )
    return earlier.astimezone(UTC)


def show_time(at: datetime | None, tz: str, now: datetime | None = None) -> str:
    if at is None:
        return "no time set"
    text = format_when(at, tz)
    if now is not None:
        text += f" ({format_delta(at, now)})"
    return text
