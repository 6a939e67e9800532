"""Read, check and echo back the times people type when scheduling a post.

This is Herald's "time is explicit" promise in one place:

* Users type times in plain words, in the workspace's language for time words (``LANGUAGES``:
  English, Russian, French, German, Spanish): "tomorrow 9am", "in 2 hours", "dec 3 9am",
  "завтра в 9", "demain à 21h", "morgen 9 Uhr", "mañana a las 9:30",
  "2026-12-01 18:30 Europe/Paris".  The day is read by ``dateparser`` (``languages=[language]``)
  in the workspace time zone, unless the text ends with an IANA zone name ("Europe/Paris",
  "America/New_York", "UTC", "GMT", "Z") or carries an explicit numeric UTC offset
  ("2026-12-01T18:30:00+02:00", "18:30 +05:30").
* The time of day is read here, not by dateparser, because dateparser can't say whether one was
  given (it fills in midnight or the current time) and reads "21h" as "in 21 hours".  A clock time is
  "9:30", "18.30", "9am", "9:30 pm", "noon", "21h", "21h30", "9 heures" (fr), "9 Uhr" (de),
  "в 9", "9 утра", "9 вечера" (ru), "a las 21", "9 de la noche" (es).
* A time is refused (``WhenError``, whose message says what to type instead) when:

  - the text is empty or can't be read as a time;
  - it names a day but no time of day ("tomorrow", "next tuesday", "le 3 décembre"), or a week or
    month but no day ("next week"): the refusal asks for the time with an example in that language;
  - it has two times of day ("tomorrow 9am 10am"), or a clock time that doesn't exist ("25:00",
    "9:75", "13pm");
  - it gives an hour without minutes or am/pm ("tomorrow at 9", "à 9", "um 9", "a las 9"), which
    could mean the morning or the evening ("в 9" is read as 09:00, as Russian speakers write it);
  - it is not in the future (compared with the ``now`` passed in).  A bare clock
    time ("17:00") means *today* at that time and is refused if already past,
    never silently moved to tomorrow;
  - it is a numeric date whose day and month could be swapped ("03/04/2027");
  - it is a wall-clock time that doesn't exist or happens twice in its zone
    because of a daylight-saving change (detected with zoneinfo, not a date list);
  - it names an unknown zone, or uses a zone abbreviation ("EST", "IST"), which
    means different things in different places;
  - it is more than two years (730 days) after ``now``: almost certainly a typo.

* Durations count from now: "in 2 hours", "через 2 часа", "dans 2 heures", "in 2 Stunden",
  "en 2 horas" are real elapsed time; "in 3 days" keeps the time of day.
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

from dateparser.date import DateDataParser  # type: ignore[import-untyped]
from dateparser.timezone_parser import pop_tz_offset_from_string  # type: ignore[import-untyped]

__all__ = [
    "LANGUAGES", "MAX_AHEAD", "When", "WhenError", "format_delta", "format_when", "parse_language",
    "parse_timezone", "parse_when",
]  # fmt: skip

#: Anything further ahead than this is refused as a probable typo.
MAX_AHEAD = timedelta(days=730)

#: The languages time words can be read in (the workspace's /language), with their names.
LANGUAGES: dict[str, str] = {"en": "English", "ru": "Russian", "fr": "French", "de": "German", "es": "Spanish"}

_EXAMPLES = "Try 'tomorrow 9am', 'in 2 hours' or '2026-12-01 18:30 Europe/Paris'."
_ZONE_EXAMPLES = "Use an IANA zone name such as 'Europe/Paris', 'America/New_York' or 'UTC'."

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip

_UTC_NAMES = frozenset({"UTC", "Z"})

# Zone abbreviations (and the legacy fixed zones tzdata still ships under such names, e.g. "EST" =
# UTC-5 all year, no summer time) -> the Area/City people usually mean by them.
_ABBREVIATIONS = {
    "EST": "America/New_York", "EDT": "America/New_York", "EST5EDT": "America/New_York",
    "CST": "America/Chicago", "CDT": "America/Chicago", "CST6CDT": "America/Chicago",
    "MST": "America/Denver", "MDT": "America/Denver", "MST7MDT": "America/Denver",
    "PST": "America/Los_Angeles", "PDT": "America/Los_Angeles", "PST8PDT": "America/Los_Angeles",
    "AKST": "America/Anchorage", "AKDT": "America/Anchorage", "HST": "Pacific/Honolulu",
    "BST": "Europe/London", "WET": "Europe/Lisbon", "WEST": "Europe/Lisbon",
    "CET": "Europe/Paris", "CEST": "Europe/Paris", "MET": "Europe/Paris", "MEZ": "Europe/Berlin",
    "EET": "Europe/Athens", "EEST": "Europe/Athens", "MSK": "Europe/Moscow", "IST": "Asia/Kolkata",
    "JST": "Asia/Tokyo", "KST": "Asia/Seoul", "PRC": "Asia/Shanghai", "ROC": "Asia/Taipei",
    "ROK": "Asia/Seoul", "AEST": "Australia/Sydney", "AEDT": "Australia/Sydney", "NZ": "Pacific/Auckland",
    "NZST": "Pacific/Auckland", "GB": "Europe/London", "UCT": "UTC",
}  # fmt: skip

# A trailing token we treat as a zone name: anything with a "/" that starts with a
# letter (so "03/04/2027" is not one), or exactly UTC / GMT / Z.
_ZONE_TOKEN = re.compile(r"(?:utc|gmt|z|[a-z][a-z0-9_+\-]*(?:/[a-z0-9_+\-]+)+)", re.IGNORECASE)

# d/m/y, d.m.y, d-m-y (and d/m without a year) where day and month might swap.
_NUMERIC_DATE = re.compile(r"(?<![\d/.\-:])(\d{1,2})([/.\-])(\d{1,2})(?:\2(\d{4}|\d{2}))?(?![\d/.\-:])")
# "18.30" -> "18:30": a dotted time, not part of a dotted date ("3.12.2026").
_DOTTED_TIME = re.compile(
    r"(?<![\d.])(\d{1,2})\.(\d{2})(?![\d.])(?!\s*(?![ap]\.?m|h\b|uhr)[^\W\d_])", re.IGNORECASE
)
_ISO_START = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_OFFSET_NAME = re.compile(r"UTC\\?[+-]")

# --- clock times, in every language and in each one's own words ------------------------------
# Each pattern has a group h (hour), maybe m (minutes) and half (a word saying morning/evening).

_HALVES = {
    "a": "am", "p": "pm",
    "утра": "am", "ночи": "night", "дня": "pm", "вечера": "pm",
    "mañana": "am", "madrugada": "am", "tarde": "pm", "noche": "night",
}  # fmt: skip


def _clock(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


_NOT_A_DURATION = r"(?<!\bin\s)(?<!dans\s)(?<!\ben\s)(?<!через\s)(?<!de\s)"
_COMMON_CLOCKS = (
    _clock(r"(?<![\d:+\-−])(?P<h>\d{1,2}):(?P<m>\d{2})(?::\d{2})?(?![\d:])(?:\s*(?P<half>[ap])\.?m\b\.?)?"),
    _clock(rf"{_NOT_A_DURATION}\b(?P<h>\d{{1,2}})\s*(?P<half>[ap])\.?m\b\.?"),
    _clock(rf"{_NOT_A_DURATION}\b(?P<h>\d{{1,2}})\s?h(?:\s?(?P<m>\d{{2}}))?\b"),
)
_NOON = {
    "en": r"\b(?:at\s+)?(?:noon|midday)\b", "ru": r"(?:в\s+)?\bполдень\b", "fr": r"(?:à\s+)?\bmidi\b",
    "de": r"(?:um\s+)?\bmittags?\b", "es": r"(?:al\s+|a\s+)?\bmediod[ií]a\b",
}  # fmt: skip
_MIDNIGHT = re.compile(r"\b(?:midnight|minuit|mitternacht|medianoche)\b|полноч\w*", re.IGNORECASE)
# Parts of the day dateparser reads as "that day": the clock time given with them must agree.
_EVENING = re.compile(r"\b(?:tonight|evening|night|afternoon)\b", re.IGNORECASE)
_MORNING = re.compile(r"\bmorning\b", re.IGNORECASE)
_AND = re.compile(r"\s*\b(?:and|or|и|или|et|ou|und|oder|y|o)\b\s*", re.IGNORECASE)


@dataclass(frozen=True)
class _Words:
    """How one language writes what dateparser can't tell us: times of day, "today", durations."""

    tomorrow: str  # in suggestions: "tomorrow 17:00"
    at_nine: str  # 9:00 as people of this language write it, for examples
    clocks: tuple[re.Pattern[str], ...]  # tried first, then the common ones
    connector: str  # the word before a clock time ("at", "à", "um", "в", "a las")
    bare_hour: re.Pattern[str]  # an hour alone, which could be morning or evening: refused
    bare_hint: str  # how to write hour {h} instead, formatted with h and h + 12
    today: re.Pattern[str]
    duration: re.Pattern[str]  # a word that makes the phrase a distance from now
    now_words: frozenset[str]
    examples: str  # "Try 'tomorrow 9am', ..." in the language's words
    rewrites: tuple[tuple[re.Pattern[str], str], ...] = ()  # for days dateparser doesn't read as typed


def _try(day: str, duration: str, language: str) -> str:
    return (f"Try '{day}', '{duration}' or '2026-12-01 18:30 Europe/Paris' "
            f"(times are read in {language}: /language changes it).")


def _day_words(*words: str) -> str:
    return "|".join(words)


_EN_DAYS = _day_words(
    "at", "today", "tomorrow", "tonight", r"mon(?:day)?", r"tue(?:s|sday)?", r"wed(?:nesday)?",
    r"thu(?:rs|rsday)?", r"fri(?:day)?", r"sat(?:urday)?", r"sun(?:day)?",
)
_RU_DAYS = _day_words("завтра", "сегодня", "послезавтра", "понедельник", "вторник", r"сред[ау]",
                      "четверг", r"пятниц[ау]", r"суббот[ау]", "воскресенье")
_FR_WEEKDAYS = "lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche"
_DE_WEEKDAYS = "montag|dienstag|mittwoch|donnerstag|freitag|samstag|sonntag"
_ES_WEEKDAYS = "lunes|martes|mi[ée]rcoles|jueves|viernes|s[áa]bado|domingo"
_RU_WEEKDAYS = r"понедельник|вторник|сред[ау]|четверг|пятниц[ау]|суббот[ау]|воскресенье"
_ALONE = r"\b(?![:.]\d)(?!\s*(?:[ap]\.?m\b|h\b|[^\W\d_]))"  # an hour with nothing after it that says which


def _bare(day_words: str) -> re.Pattern[str]:
    return re.compile(rf"\b(?:{day_words})\s+(?P<h>\d{{1,2}}){_ALONE}", re.IGNORECASE)


_LANGUAGE_WORDS: dict[str, _Words] = {
    "en": _Words(
        examples=_EXAMPLES,
        tomorrow="tomorrow", at_nine="9:00", clocks=(), connector=r"at",
        bare_hour=_bare(_EN_DAYS), bare_hint="'{h}am', '{h}pm' or '{h:02d}:00'",
        today=_clock(r"today"), duration=_clock(r"\bin\b|\bfrom now\b|\bago\b|\blater\b"),
        now_words=frozenset({"now", "right now", "immediately", "asap", "straight away", "right away"}),
    ),
    "ru": _Words(
        examples=_try("завтра в 9:00", "через 2 часа", "Russian"),
        tomorrow="завтра", at_nine="в 9:00",
        clocks=(
            _clock(r"(?<!через\s)(?<!спустя\s)(?:\bв\s+|\bво\s+)?\b(?P<h>\d{1,2})(?:[:.](?P<m>\d{2}))?\s*(?P<half>утра|дня|вечера|ночи)\b"),
            _clock(r"(?:\bв\s+|\bво\s+)\b(?P<h>\d{1,2})(?:[:.](?P<m>\d{2}))?(?:\s*(?:часов|часа|час|ч\b\.?))?"
                   r"(?![\d:.])"),
        ),
        connector=r"в|во", bare_hour=_bare(_RU_DAYS), bare_hint="'в {h}:00' or 'в {h12}:00'",
        today=_clock(r"сегодня"), duration=_clock(r"через|спустя|назад"),
        now_words=frozenset({"сейчас", "прямо сейчас", "немедленно", "сразу"}),
        rewrites=(
            (_clock(rf"(?:\bв\s+|\bво\s+)?(?:следующ\w*|ближайш\w*)\s+({_RU_WEEKDAYS})"), r"\1"),
        ),
    ),
    "fr": _Words(
        examples=_try("demain à 9h", "dans 2 heures", "French"),
        tomorrow="demain", at_nine="9h00",
        clocks=(_clock(rf"{_NOT_A_DURATION}(?:\bà\s+)?\b(?P<h>\d{{1,2}})\s*(?:h|heures?)(?:\s*(?P<m>\d{{2}}))?\b"),),
        connector=r"à|a", bare_hour=_bare(rf"à|demain|aujourd'hui|après-demain|{_FR_WEEKDAYS}"),
        bare_hint="'{h}h' or '{h12}h'", today=_clock(r"aujourd'hui|aujourd’hui"),
        duration=_clock(r"\bdans\b|\bil y a\b|\bplus tard\b"),
        now_words=frozenset({"maintenant", "tout de suite", "immédiatement"}),
        rewrites=(
            (_clock(rf"\b(?:le\s+)?({_FR_WEEKDAYS})\s+prochain\b"), r"\1"),
            (_clock(r"^le\s+"), ""),
        ),
    ),
    "de": _Words(
        examples=_try("morgen 9 Uhr", "in 2 Stunden", "German"),
        tomorrow="morgen", at_nine="9 Uhr",
        clocks=(
            _clock(r"(?:\bum\s+)?\b(?P<h>\d{1,2})\s*uhr\s*(?P<m>\d{2})\b(?![:.]?\s*(?:uhr|h\b|\d))"),
            _clock(r"(?:\bum\s+)?\b(?P<h>\d{1,2})(?:[:.](?P<m>\d{2}))?\s*uhr\b"),
        ),
        connector=r"um", bare_hour=_bare(rf"um|morgen|heute|übermorgen|{_DE_WEEKDAYS}"),
        bare_hint="'{h} Uhr' or '{h12} Uhr'", today=_clock(r"heute"),
        duration=_clock(r"\bin\b|\bvor\b|\bspäter\b"),
        now_words=frozenset({"jetzt", "sofort", "gleich"}),
        rewrites=(
            (_clock(rf"\b(?:am\s+)?(?:nächsten|nächster|nächste|kommenden|kommender)\s+({_DE_WEEKDAYS})\b"), r"\1"),
            (_clock(r"^am\s+"), ""),
        ),
    ),
    "es": _Words(
        examples=_try("mañana a las 9:00", "en 2 horas", "Spanish"),
        tomorrow="mañana", at_nine="a las 9:00",
        clocks=(
            _clock(r"(?:\ba\s+las?\s+)?\b(?P<h>\d{1,2})(?::(?P<m>\d{2}))?\s+de\s+la\s+"
                   r"(?P<half>mañana|madrugada|tarde|noche)\b"),
            _clock(r"\ba\s+las?\s+(?P<h>1[3-9]|[2-9]\d)(?![\d:.])(?:\s*(?:h|horas)\b)?"),
            _clock(r"\ba\s+las?\s+(?P<h>\d{1,2}):(?P<m>\d{2})(?![\d:])"),
        ),
        connector=r"a\s+las?|a", bare_hour=_bare(rf"a\s+las?|a\s+la|mañana|hoy|{_ES_WEEKDAYS}"),
        bare_hint="'a las {h}:00' or 'a las {h12}:00'", today=_clock(r"hoy"),
        duration=_clock(r"\ben\b|\bdentro de\b|\bhace\b"),
        now_words=frozenset({"ahora", "ahora mismo", "ya", "inmediatamente"}),
        rewrites=(
            (_clock(rf"\b(?:el\s+)?(?:próximo|proximo)\s+({_ES_WEEKDAYS})\b"), r"\1"),
            (_clock(r"\bpasado\s+mañana\b"), "en 2 días"),
            (_clock(r"^el\s+"), ""),
        ),
    ),
}


class WhenError(ValueError):
    """A time Herald can't accept; str(err) is a plain-English message for the user that says what to type instead."""


@dataclass(frozen=True)
class When:
    """A checked, future instant and the zone the user meant."""

    at: datetime  # timezone-aware, UTC
    tz: str  # IANA name of the zone the user meant (the one they typed, else the default)


@dataclass(frozen=True)
class _Clock:
    hour: int
    minute: int
    typed: str
    start: int
    end: int


@lru_cache(maxsize=1)
def _zones_by_lower() -> dict[str, str]:
    return {name.lower(): name for name in available_timezones()}


def parse_language(code: str) -> str:
    """Return the language code for time words ("en", "ru", "fr", "de", "es"); WhenError lists them otherwise."""
    cleaned = code.strip().lower()
    if cleaned in LANGUAGES:
        return cleaned
    by_name = {name.lower(): key for key, name in LANGUAGES.items()}
    if cleaned in by_name:
        return by_name[cleaned]
    listed = ", ".join(f"{key} ({name})" for key, name in LANGUAGES.items())
    raise WhenError(f"I can't read times in '{code.strip()}'. Languages: {listed}. Example: /language de")


def parse_timezone(name: str) -> str:
    """Return the canonical IANA name for ``name`` (case-insensitive); "UTC"/"Z" give "UTC".

    Raises WhenError naming the zone, suggesting a close match when there is one.  Zone abbreviations
    ("EST", "CET", "PST") are refused with the Area/City they probably stand for, even those tzdata
    knows as fixed zones: "EST" there is UTC-5 all year, never New York's summer time.
    """
    cleaned = name.strip()
    if not cleaned:
        raise WhenError(f"I need a time zone name. {_ZONE_EXAMPLES}")
    if cleaned.upper() in _UTC_NAMES:
        return "UTC"
    meant = _ABBREVIATIONS.get(cleaned.upper())
    if meant is not None:
        raise WhenError(_abbreviation_message(cleaned.upper(), meant))
    return _canonical_zone(cleaned)


def _abbreviation_message(abbreviation: str, meant: str) -> str:
    fixed = ""
    if abbreviation in _zones_by_lower().values() and meant != "UTC":
        offset = datetime(2026, 1, 1, tzinfo=ZoneInfo(abbreviation)).utcoffset() or timedelta(0)
        hours = int(offset.total_seconds() // 3600)
        fixed = f" ('{abbreviation}' alone is a fixed UTC{hours:+d} with no summer time)"
    return (
        f"'{abbreviation}' is a zone abbreviation{fixed}, and abbreviations mean different things in "
        f"different places and seasons. Did you mean '{meant}'? {_ZONE_EXAMPLES}"
    )


def _canonical_zone(cleaned: str) -> str:
    """The IANA name for a zone already stored (an old workspace may hold "EST"): no abbreviation check."""
    cleaned = cleaned.strip()
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


def parse_when(text: str, *, now: datetime, default_tz: str, language: str = "en") -> When:
    """Read ``text`` as a future instant in ``language``'s time words; see the module docstring."""
    _require_aware(now, "now")
    zone_name = _canonical_zone(default_tz)
    words = _LANGUAGE_WORDS[parse_language(language)]
    cleaned = " ".join(text.split())
    if not cleaned:
        raise WhenError(f"Tell me when to post. {words.examples}")

    body, zone_token = _split_trailing_zone(cleaned)
    if zone_token is not None:
        zone_name = parse_timezone(zone_token)
    if body.lower() in words.now_words or body.lower() in _LANGUAGE_WORDS["en"].now_words:
        raise WhenError(
            "A scheduled post needs a time in the future, not 'now'. Try 'in 10 minutes' or 'tomorrow 9am'."
        )
    _refuse_swappable_day_month(body)

    at, zone_name, today_time = _read(body, cleaned, words, language, now=now, zone_name=zone_name)

    if at <= now:
        shown = format_when(at, zone_name)
        if today_time is not None:
            tomorrow = f"{words.tomorrow} {today_time}"
            raise WhenError(
                f"{shown}: that's already past today; did you mean {tomorrow}? Type '{tomorrow}'."
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
    name = _canonical_zone(tz)
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


def _unreadable(text: str, words: _Words) -> WhenError:
    return WhenError(f"I couldn't read '{text}' as a time. {words.examples}")


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


def _find_clocks(text: str, words: _Words, language: str) -> tuple[list[_Clock], str]:
    """Every clock time in ``text`` (checked: 25:00 is refused) and the text with them blanked out."""
    found: list[_Clock] = []
    masked = text
    patterns = (*words.clocks, _clock(_NOON[language]), *_COMMON_CLOCKS)
    for pattern in patterns:
        for match in pattern.finditer(masked):
            typed = " ".join(match.group(0).split())
            groups = match.groupdict()
            if groups.get("h") is None:  # noon
                hour, minute = 12, 0
            else:
                hour = int(groups["h"])
                minute = int(groups.get("m") or 0)
                hour = _check_clock(hour, minute, (groups.get("half") or "").lower(), typed, words)
            found.append(_Clock(hour, minute, typed, match.start(), match.end()))
            masked = masked[: match.start()] + " " * (match.end() - match.start()) + masked[match.end():]
    found.sort(key=lambda clock: clock.start)
    return found, masked


def _check_clock(hour: int, minute: int, half_word: str, typed: str, words: _Words) -> int:
    """The hour on a 24-hour clock; refuses a clock time that doesn't exist."""
    half = _HALVES.get(half_word[:1] if half_word[:1] in "ap" and len(half_word) == 1 else half_word, "")
    example = f"'{words.tomorrow} {words.at_nine}'"
    if minute > 59 or hour > 23 or (half and not 1 <= hour <= 12):
        hours = "1 to 12 with am/pm or a word for the part of the day" if half else "0 to 23"
        raise WhenError(
            f"'{typed}' isn't a time of day: hours go from {hours} and minutes from 0 to 59. "
            f"Write a real time, e.g. {example}."
        )
    if half == "am" or (half == "night" and hour == 12):
        return 0 if hour == 12 else hour
    if half == "night":
        return hour if hour < 6 else hour + 12  # "в 2 ночи" is 02:00, "11 de la noche" is 23:00
    if half == "pm":
        return hour if hour == 12 else hour + 12
    return hour


def _refuse_bare_hour(masked: str, words: _Words) -> None:
    match = words.bare_hour.search(masked)
    if match is None:
        return
    hour = int(match.group("h"))
    shown = " ".join(match.group(0).split())
    if hour > 23:
        raise WhenError(f"'{shown}' isn't a time of day: hours go from 0 to 23. "
                        f"Write a real time, e.g. '{words.tomorrow} {words.at_nine}'.")
    if hour > 12:
        options = f"'{hour:02d}:00'"
    else:
        options = words.bare_hint.format(h=hour, h12=hour + 12 if hour < 12 else 0)
    raise WhenError(
        f"I can't tell what time '{shown}' means: morning or evening? Write the time as {options}."
    )


def _parse_day(text: str, language: str, base: datetime) -> tuple[datetime | None, str]:
    """dateparser's reading of ``text`` relative to the naive wall-clock time ``base``, and its period.

    The period ("time", "day", "week", "month", "year") says how precise the text was: dateparser fills
    what was not given with midnight or the current time, so "time" tells a duration ("in 2 hours")
    from a day ("tomorrow").  TIMEZONE is pinned to UTC so dateparser does no zone arithmetic of its
    own (with the default it consults the machine's zone); zones are handled here.
    """
    settings = {
        "RELATIVE_BASE": base,
        "PREFER_DATES_FROM": "future",
        "RETURN_AS_TIMEZONE_AWARE": False,
        "RETURN_TIME_AS_PERIOD": True,
        "TIMEZONE": "UTC",
    }
    try:
        data = DateDataParser(languages=[language], settings=settings).get_date_data(text)
    except (ValueError, OverflowError, TypeError):
        return None, ""
    at = data.date_obj if isinstance(data.date_obj, datetime) else None
    return at, str(data.period or "")


def _day_of(text: str, language: str, words: _Words, base: datetime) -> tuple[datetime | None, str]:
    """Read the day part as typed, or after the language's rewrites ("mardi prochain" -> "mardi")."""
    at, period = _parse_day(text, language, base)
    if at is not None:
        return at, period
    rewritten = text
    for pattern, replacement in words.rewrites:
        rewritten = pattern.sub(replacement, rewritten).strip()
    if rewritten != text and rewritten:
        return _parse_day(rewritten, language, base)
    return None, ""


def _read_words(
    body: str, cleaned: str, words: _Words, language: str, *, base: datetime, utc_base: datetime
) -> tuple[datetime, bool, str | None]:
    """Read plain words: (naive wall-clock time, True if that is UTC already, the clock if it means today)."""
    text = _DOTTED_TIME.sub(r"\1:\2", body)
    midnight = _MIDNIGHT.search(text)
    if midnight is not None:
        raise WhenError(
            f"'{midnight.group(0)}' could be the start or the end of the day. Write the time as '00:00' or '23:59' "
            f"with the day, e.g. '{words.tomorrow} 23:59'."
        )
    clocks, masked = _find_clocks(text, words, language)
    day_text = " ".join(masked.split()).strip(" ,")
    day_text = re.sub(rf"^(?:{words.connector})$|\s+(?:{words.connector})$", "", day_text, flags=re.IGNORECASE)
    if len(clocks) > 1:
        shown = " and ".join(f"'{clock.typed}'" for clock in clocks)
        example = " ".join(part for part in (_AND.sub(" ", day_text).strip(), clocks[0].typed) if part)
        raise WhenError(
            f"'{cleaned}' has {len(clocks)} times of day ({shown}), so I won't guess which one you mean. "
            f"Give one, e.g. '{example}'."
        )
    _refuse_bare_hour(masked, words)
    if clocks:
        clock = clocks[0]
        if not day_text or words.today.fullmatch(day_text):
            return base.replace(hour=clock.hour, minute=clock.minute, second=0, microsecond=0), False, clock.typed
        _refuse_disagreeing_part_of_day(cleaned, day_text, clock)
        day, period = _day_of(day_text, language, words, base)
        if day is None:
            raise _unreadable(cleaned, words)
        if period == "time":
            raise WhenError(
                f"'{cleaned}' has two times in it: '{day_text}' and '{clock.typed}'. Give one, "
                f"e.g. '{words.tomorrow} {clock.typed}'."
            )
        if period in ("week", "month", "year"):
            raise _no_day(cleaned, day_text, period, words)
        return day.replace(hour=clock.hour, minute=clock.minute, second=0, microsecond=0), False, None
    if not day_text:
        raise _unreadable(cleaned, words)
    at, period = _day_of(day_text, language, words, base)
    if at is None:
        raise _unreadable(cleaned, words)
    if words.duration.search(day_text):
        if period == "time":  # "in 2 hours": real elapsed time, so counted in UTC across a DST change
            in_utc, _ = _day_of(day_text, language, words, utc_base)
            if in_utc is None:
                raise _unreadable(cleaned, words)
            return in_utc, True, None
        return at, False, None  # "in 3 days": the same time of day, three days on
    if period in ("week", "month", "year"):
        raise _no_day(cleaned, day_text, period, words)
    if period == "time":
        raise WhenError(
            f"I couldn't tell the time of day in '{cleaned}'. Write it as a clock time, "
            f"e.g. '{words.tomorrow} {words.at_nine}'."
        )
    example = f"{body} {'21:00' if _EVENING.search(day_text) else words.at_nine}"
    raise WhenError(
        f"'{cleaned}' gives a day ({_date_words(at)}) but no time of day: at what time? Add it, e.g. '{example}'."
    )


def _refuse_disagreeing_part_of_day(cleaned: str, day_text: str, clock: _Clock) -> None:
    """'tonight 9:00' would be 09:00: a part of the day and a clock time must agree."""
    evening, morning = _EVENING.search(day_text), _MORNING.search(day_text)
    if (evening is not None and clock.hour < 12) or (morning is not None and clock.hour >= 12):
        word = (evening or morning).group(0)  # type: ignore[union-attr]
        raise WhenError(
            f"'{cleaned}' says '{word}' but {clock.hour:02d}:{clock.minute:02d}, so I can't tell which you mean. "
            f"Write the time on a 24-hour clock or with am/pm, e.g. 'today 21:00' or 'tomorrow 9am'."
        )


def _no_day(cleaned: str, day_text: str, period: str, words: _Words) -> WhenError:
    return WhenError(
        f"'{cleaned}' names a {period}{'' if day_text == cleaned else ' (' + repr(day_text) + ')'}, but not which "
        f"day or what time. Give the day and the time, e.g. '{words.tomorrow} {words.at_nine}' or a date with a time."
    )


def _read(
    body: str, cleaned: str, words: _Words, language: str, *, now: datetime, zone_name: str
) -> tuple[datetime, str, str | None]:
    """Return (UTC instant, zone name meant, the clock time if ``body`` means today at that time)."""
    if not body:
        raise _unreadable(cleaned, words)
    zone = ZoneInfo(zone_name)
    utc_base = now.astimezone(UTC).replace(tzinfo=None)

    # ISO 8601, possibly with an explicit offset: exact, no dateparser needed.
    if _ISO_START.match(body):
        if _ISO_DATE.fullmatch(body):
            raise WhenError(f"'{cleaned}' gives a day but no time of day: at what time? "
                            f"Add it, e.g. '{body} 09:00'.")
        try:
            iso = datetime.fromisoformat(body)
        except ValueError:
            pass
        else:
            if iso.tzinfo is not None:
                return iso.astimezone(UTC), zone_name, None
            return _localize(iso, zone, zone_name), zone_name, None

    # A zone abbreviation or numeric offset inside the text. dateparser would drop it
    # silently with RETURN_AS_TIMEZONE_AWARE=False, so take it out and apply it ourselves.
    rest, found = pop_tz_offset_from_string(body)
    if found is not None:
        found_name = str(found.tzname(None))
        if found_name.upper() in {"UTC", "GMT", "Z"}:
            return _read(rest.strip(), cleaned, words, language, now=now, zone_name="UTC")
        if not _OFFSET_NAME.match(found_name):
            meant = _ABBREVIATIONS.get(found_name.upper(), "America/New_York")
            raise WhenError(
                f"'{found_name}' is a zone abbreviation, and those mean different things in different "
                f"places (or seasons). Put an IANA zone name at the end instead, e.g. "
                f"'{rest.strip()} {meant}'. {_ZONE_EXAMPLES}"
            )
        fixed = timezone(found.utcoffset(None))
        wall, in_utc, _ = _read_words(rest.strip(), cleaned, words, language,
                                      base=now.astimezone(fixed).replace(tzinfo=None), utc_base=utc_base)
        return wall.replace(tzinfo=UTC if in_utc else fixed).astimezone(UTC), zone_name, None

    wall, in_utc, today_time = _read_words(body, cleaned, words, language,
                                           base=now.astimezone(zone).replace(tzinfo=None), utc_base=utc_base)
    if in_utc:
        return wall.replace(tzinfo=UTC), zone_name, None
    return _localize(wall, zone, zone_name), zone_name, today_time


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


# --- each audience's own zone: "/schedule 12 tue 9:00 local" ------------------------------------------------

#: The zone word that means "this wall-clock time in each audience's own zone" (handlers/posts/scheduling.py).
LOCAL_WORD = "local"


def split_local(text: str) -> tuple[str, bool]:
    """("tue 9:00", True) for "tue 9:00 local": the phrase without its trailing zone word, and whether it had it."""
    head, sep, last = " ".join(text.split()).rpartition(" ")
    if sep and last.lower() == LOCAL_WORD:
        return head, True
    return text, False


def parse_wall(text: str, *, now: datetime, default_tz: str, language: str = "en") -> datetime:
    """The naive wall-clock date and time a phrase names, read as ``parse_when`` reads it with today's date in
    ``default_tz`` (the day words "today", "tue" count from there): "tue 9:00" → 2026-12-08 09:00.

    Refused (WhenError with an example): an empty phrase, 'now', a zone or offset (``local`` is the zone),
    a duration ("in 2 hours" is no wall-clock time), and whatever ``parse_when`` refuses in the words."""
    _require_aware(now, "now")
    zone_name = _canonical_zone(default_tz)
    words = _LANGUAGE_WORDS[parse_language(language)]
    cleaned = " ".join(text.split())
    example = f"'{words.tomorrow} 09:00 {LOCAL_WORD}' or '2026-12-08 09:00 {LOCAL_WORD}'"
    if not cleaned:
        raise WhenError(f"At what time in each audience's zone? E.g. {example}.")
    body, zone_token = _split_trailing_zone(cleaned)
    if zone_token is not None:
        raise WhenError(f"'{LOCAL_WORD}' already means each audience's own zone, so '{zone_token}' can't go with "
                        f"it. Drop one of them, e.g. {example}.")
    if body.lower() in words.now_words or body.lower() in _LANGUAGE_WORDS["en"].now_words:
        raise WhenError(f"'{LOCAL_WORD}' needs a day and a clock time, not 'now'. E.g. {example}.")
    _refuse_swappable_day_month(body)
    if _ISO_START.match(body):
        if _ISO_DATE.fullmatch(body):
            raise WhenError(f"'{cleaned}' gives a day but no time of day: at what time? Add it, e.g. "
                            f"'{body} 09:00 {LOCAL_WORD}'.")
        try:
            iso = datetime.fromisoformat(body)
        except ValueError:
            pass
        else:
            if iso.tzinfo is not None:
                raise WhenError(f"'{cleaned}' carries its own UTC offset; with '{LOCAL_WORD}' give the wall-clock "
                                f"time alone, e.g. {example}.")
            return iso.replace(second=0, microsecond=0)
    rest, found = pop_tz_offset_from_string(body)
    if found is not None:
        raise WhenError(f"'{cleaned}' names a zone or offset; with '{LOCAL_WORD}' give the wall-clock time alone, "
                        f"e.g. {example}.")
    wall, in_utc, _today = _read_words(body, cleaned, words, language,
                                       base=now.astimezone(ZoneInfo(zone_name)).replace(tzinfo=None),
                                       utc_base=now.astimezone(UTC).replace(tzinfo=None))
    if in_utc:
        raise WhenError(f"'{cleaned}' counts from now, the same moment everywhere; '{LOCAL_WORD}' needs a day and a "
                        f"clock time, e.g. {example}.")
    return wall


@dataclass(frozen=True)
class WallTime:
    """A wall-clock time placed in one zone: the instant, and whether the zone has that time twice (the clocks
    go back that night; the first occurrence is taken)."""

    at: datetime  # UTC
    repeated: bool


def wall_in_zone(wall: datetime, zone_name: str) -> WallTime:
    """``wall`` (naive) in ``zone_name``; WhenError, with an example, when the clocks jump over it that night."""
    zone = ZoneInfo(_canonical_zone(zone_name))
    earlier = wall.replace(tzinfo=zone, fold=0)
    later = wall.replace(tzinfo=zone, fold=1)
    round_trip = earlier.astimezone(UTC).astimezone(zone)
    if round_trip.replace(tzinfo=None) != wall:
        raise WhenError(
            f"{wall:%H:%M} on {_date_words(wall)} doesn't exist in {zone_name}: the clocks jump forward over it "
            f"for daylight saving. Pick a time outside the jump, e.g. {round_trip:%H:%M} {LOCAL_WORD}."
        )
    return WallTime(at=earlier.astimezone(UTC), repeated=earlier.utcoffset() != later.utcoffset())


def wall_words(wall: datetime) -> str:
    """"Tue 8 Dec 2026 09:00": a wall-clock time with no zone."""
    return f"{_date_words(wall)} {wall:%H:%M}"
