"""Tests for handlers/core/when.py: Herald's "time is explicit" parsing, refusals and echo formatting."""

from __future__ import annotations

import os
import time
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime, timedelta, timezone

import pytest

from handlers.core.when import When, WhenError, format_delta, format_when, parse_timezone, parse_when

# Monday 23 Nov 2026, 10:00 UTC = 11:00 CET in Paris.
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
PARIS = "Europe/Paris"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def when(text: str, now: datetime = NOW, default_tz: str = PARIS) -> When:
    return parse_when(text, now=now, default_tz=default_tz)


def refusal(text: str, now: datetime = NOW, default_tz: str = PARIS) -> str:
    with pytest.raises(WhenError) as caught:
        parse_when(text, now=now, default_tz=default_tz)
    return str(caught.value)


# --- accepted -------------------------------------------------------------------------------


def test_tomorrow_9am_is_read_in_the_workspace_zone() -> None:
    assert when("tomorrow 9am") == When(at=utc(2026, 11, 24, 8, 0), tz=PARIS)


def test_tomorrow_9am_follows_a_different_workspace_zone() -> None:
    assert when("tomorrow 9am", default_tz="America/New_York") == When(
        at=utc(2026, 11, 24, 14, 0), tz="America/New_York"
    )


def test_the_result_is_utc_and_frozen() -> None:
    result = when("tomorrow 9am")
    assert result.at.tzinfo is UTC
    with pytest.raises(FrozenInstanceError):
        result.tz = "UTC"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("in 2 hours", utc(2026, 11, 23, 12, 0)),
        ("in 90 minutes", utc(2026, 11, 23, 11, 30)),
        ("in 3 days", utc(2026, 11, 26, 10, 0)),
        ("in 1 hour and 30 minutes", utc(2026, 11, 23, 11, 30)),
        ("2 hours from now", utc(2026, 11, 23, 12, 0)),
    ],
)
def test_relative_durations_count_from_now(text: str, expected: datetime) -> None:
    assert when(text) == When(at=expected, tz=PARIS)


def test_in_2_hours_is_two_real_hours_across_a_dst_jump() -> None:
    # 01:30 CET on the night clocks jump 02:00 -> 03:00: two hours later is 04:30 CEST.
    now = utc(2027, 3, 28, 0, 30)
    assert when("in 2 hours", now=now).at == utc(2027, 3, 28, 2, 30)


def test_in_1_day_keeps_the_wall_clock_time_across_a_dst_jump() -> None:
    now = utc(2027, 3, 27, 10, 0)  # 11:00 CET
    assert when("in 1 day", now=now).at == utc(2027, 3, 28, 9, 0)  # 11:00 CEST


def test_a_trailing_iana_zone_is_used_and_remembered() -> None:
    assert when("2026-12-01 18:30 Europe/Paris") == When(at=utc(2026, 12, 1, 17, 30), tz=PARIS)
    assert when("2026-12-01 18:30 America/New_York", default_tz="UTC") == When(
        at=utc(2026, 12, 1, 23, 30), tz="America/New_York"
    )


def test_a_trailing_zone_is_case_insensitive() -> None:
    assert when("2026-12-01 18:30 america/new_york") == When(
        at=utc(2026, 12, 1, 23, 30), tz="America/New_York"
    )


@pytest.mark.parametrize("zone", ["UTC", "utc", "Z"])
def test_a_trailing_utc_means_utc(zone: str) -> None:
    assert when(f"2026-12-01 18:30 {zone}") == When(at=utc(2026, 12, 1, 18, 30), tz="UTC")


def test_utc_in_the_middle_of_the_text_also_means_utc() -> None:
    assert when("9am utc tomorrow") == When(at=utc(2026, 11, 24, 9, 0), tz="UTC")


def test_an_iso_offset_gives_the_exact_instant_and_keeps_the_default_zone() -> None:
    assert when("2026-12-01T18:30:00+02:00") == When(at=utc(2026, 12, 1, 16, 30), tz=PARIS)
    assert when("2026-12-01T18:30:00Z") == When(at=utc(2026, 12, 1, 18, 30), tz=PARIS)


def test_a_numeric_offset_after_a_time_gives_the_exact_instant() -> None:
    assert when("2026-12-01 18:30 +05:30") == When(at=utc(2026, 12, 1, 13, 0), tz=PARIS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("next monday 10:00", utc(2026, 11, 30, 9, 0)),
        ("monday 10:00", utc(2026, 11, 30, 9, 0)),
        ("dec 3 9am", utc(2026, 12, 3, 8, 0)),
        ("3 December 2026 14:00", utc(2026, 12, 3, 13, 0)),
        ("today 17:00", utc(2026, 11, 23, 16, 0)),
        ("17:00", utc(2026, 11, 23, 16, 0)),
        ("5pm", utc(2026, 11, 23, 16, 0)),
        ("at 17:00", utc(2026, 11, 23, 16, 0)),
        ("18.30", utc(2026, 11, 23, 17, 30)),
        ("tomorrow 18.30", utc(2026, 11, 24, 17, 30)),
        ("jan 5 9am", utc(2027, 1, 5, 8, 0)),
        ("25/12/2026 10:00", utc(2026, 12, 25, 9, 0)),
        ("2028-11-01 10:00", utc(2028, 11, 1, 9, 0)),
    ],
)
def test_plain_word_times_are_read_in_the_workspace_zone(text: str, expected: datetime) -> None:
    assert when(text) == When(at=expected, tz=PARIS)


def test_the_machine_time_zone_does_not_leak_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    try:
        assert when("tomorrow 9am").at == utc(2026, 11, 24, 8, 0)
        assert when("17:00").at == utc(2026, 11, 23, 16, 0)
        assert when("in 2 hours").at == utc(2026, 11, 23, 12, 0)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert os.environ.get("TZ") != "America/Los_Angeles"


# --- refused --------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_text_is_refused_with_examples(text: str) -> None:
    assert "tomorrow 9am" in refusal(text)


def test_gibberish_is_refused_with_examples() -> None:
    assert refusal("banana o'clock") == (
        "I couldn't read 'banana o'clock' as a time. "
        "Try 'tomorrow 9am', 'in 2 hours' or '2026-12-01 18:30 Europe/Paris'."
    )


@pytest.mark.parametrize("text", ["now", "Now", "right now", "asap"])
def test_now_is_refused_because_a_future_time_is_needed(text: str) -> None:
    message = refusal(text)
    assert "future" in message
    assert "in 10 minutes" in message


def test_a_past_time_is_refused_and_shows_what_was_understood() -> None:
    message = refusal("yesterday 9am")
    assert "in the past" in message
    assert "Sun 22 Nov 2026 09:00 CET (Europe/Paris)" in message
    assert "1 day 2 hours ago" in message
    assert "tomorrow 9am" in message


def test_a_past_absolute_date_is_refused() -> None:
    assert "Sun 1 Nov 2026 09:00 CET (Europe/Paris)" in refusal("2026-11-01 09:00")


def test_exactly_now_is_refused_as_not_in_the_future() -> None:
    assert "which is right now" in refusal("2026-11-23 11:00")


@pytest.mark.parametrize(("text", "clock"), [("10:00", "10:00"), ("today 10:00", "10:00"), ("9am", "9am")])
def test_a_clock_time_already_past_today_is_refused_not_moved_to_tomorrow(text: str, clock: str) -> None:
    message = refusal(text)
    assert f"that's already past today; did you mean tomorrow {clock}?" in message
    assert "Mon 23 Nov 2026" in message


def test_a_clock_time_later_today_is_today_even_late_in_the_day() -> None:
    late = utc(2026, 11, 23, 20, 0)  # 21:00 in Paris
    assert when("21:30", now=late).at == utc(2026, 11, 23, 20, 30)
    assert "that's already past today; did you mean tomorrow 17:00?" in refusal("17:00", now=late)


def test_a_day_month_swappable_date_is_refused() -> None:
    message = refusal("03/04/2027 10:00")
    assert "could mean 3 April or 4 March" in message
    assert "2027-04-03" in message
    assert "'3 April 2027'" in message


@pytest.mark.parametrize("text", ["10.11.2027 9:00", "03-04-2027 10:00", "03/04 10:00"])
def test_other_swappable_numeric_dates_are_refused(text: str) -> None:
    assert "could mean" in refusal(text)


def test_same_day_and_month_is_not_ambiguous() -> None:
    assert when("04/04/2027 10:00").at == utc(2027, 4, 4, 8, 0)


def test_a_time_that_dst_skips_is_refused() -> None:
    message = refusal("2027-03-28 02:30 Europe/Paris")
    assert "02:30 on Sun 28 Mar 2027 doesn't exist in Europe/Paris" in message
    assert "03:30 CEST" in message
    assert "'2027-03-28 01:30 UTC'" in message


def test_a_time_that_dst_skips_is_refused_in_the_default_zone_and_in_words() -> None:
    assert "doesn't exist" in refusal("2027-03-28 02:30")
    assert "doesn't exist" in refusal("28 March 2027 02:30")


def test_a_time_that_dst_skips_is_refused_in_other_zones_too() -> None:
    message = refusal("2027-03-14 02:30 America/New_York")
    assert "doesn't exist in America/New_York" in message
    assert "'2027-03-14 07:30 UTC'" in message


def test_a_time_that_dst_repeats_is_refused() -> None:
    message = refusal("2027-10-31 02:30 Europe/Paris")
    assert "02:30 on Sun 31 Oct 2027 happens twice in Europe/Paris" in message
    assert "'2027-10-31 00:30 UTC'" in message
    assert "'2027-10-31 01:30 UTC'" in message


def test_an_unknown_trailing_zone_is_refused_with_examples() -> None:
    message = refusal("2026-12-01 18:30 Mars/Olympus")
    assert "'Mars/Olympus'" in message
    for example in ("'Europe/Paris'", "'America/New_York'", "'UTC'"):
        assert example in message


def test_a_misspelt_zone_gets_a_suggestion() -> None:
    assert "Did you mean 'Europe/Paris'?" in refusal("2026-12-01 18:30 Europe/Pari")


def test_a_zone_abbreviation_is_refused_in_favour_of_an_iana_name() -> None:
    message = refusal("2026-12-01 18:30 EST")
    assert "'EST'" in message
    assert "America/New_York" in message


@pytest.mark.parametrize("text", ["tomorrow at 9", "tomorrow 9", "friday at 9"])
def test_an_hour_without_minutes_or_am_pm_is_refused(text: str) -> None:
    message = refusal(text)
    assert "'9am', '9pm' or '09:00'" in message


def test_more_than_two_years_ahead_is_refused_as_a_typo() -> None:
    message = refusal("2029-01-01 10:00")
    assert "more than two years ahead" in message
    assert "Mon 1 Jan 2029 10:00 CET (Europe/Paris)" in message


def test_a_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_when("tomorrow 9am", now=datetime(2026, 11, 23, 10, 0), default_tz=PARIS)


def test_an_unknown_default_zone_is_refused() -> None:
    assert "'Nowhere/Land'" in refusal("tomorrow 9am", default_tz="Nowhere/Land")


# --- parse_timezone -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("Europe/Paris", "Europe/Paris"),
        ("america/new_york", "America/New_York"),
        (" EUROPE/PARIS ", "Europe/Paris"),
        ("UTC", "UTC"),
        ("utc", "UTC"),
        ("Z", "UTC"),
    ],
)
def test_parse_timezone_returns_the_canonical_name(name: str, canonical: str) -> None:
    assert parse_timezone(name) == canonical


def test_parse_timezone_refuses_unknown_names_with_examples() -> None:
    with pytest.raises(WhenError) as caught:
        parse_timezone("Mars/Olympus")
    assert str(caught.value).startswith("I don't know the time zone 'Mars/Olympus'.")
    assert "'Europe/Paris', 'America/New_York' or 'UTC'" in str(caught.value)


def test_parse_timezone_suggests_a_close_match() -> None:
    with pytest.raises(WhenError, match="Did you mean 'America/New_York'"):
        parse_timezone("America/NewYork")


# --- format_when / format_delta -------------------------------------------------------------


def test_format_when_in_paris_shows_abbreviation_and_zone_name() -> None:
    assert format_when(utc(2026, 11, 24, 8, 0), PARIS) == "Tue 24 Nov 2026 09:00 CET (Europe/Paris)"
    assert format_when(utc(2027, 7, 1, 16, 5), PARIS) == "Thu 1 Jul 2027 18:05 CEST (Europe/Paris)"


def test_format_when_in_utc_does_not_repeat_the_name() -> None:
    assert format_when(utc(2026, 11, 24, 8, 0), "UTC") == "Tue 24 Nov 2026 08:00 UTC"


def test_format_when_converts_from_any_offset() -> None:
    at = datetime(2026, 12, 1, 18, 30, tzinfo=timezone(timedelta(hours=2)))
    assert format_when(at, "America/New_York") == "Tue 1 Dec 2026 11:30 EST (America/New_York)"


def test_format_when_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        format_when(datetime(2026, 11, 24, 8, 0), PARIS)


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (timedelta(hours=2, minutes=5), "in 2 hours 5 minutes"),
        (timedelta(days=3), "in 3 days"),
        (timedelta(seconds=40), "in 40 seconds"),
        (timedelta(minutes=-5), "5 minutes ago"),
        (timedelta(hours=1), "in 1 hour"),
        (timedelta(days=1, hours=2, minutes=30), "in 1 day 2 hours"),
        (timedelta(days=2, minutes=30), "in 2 days"),
        (timedelta(minutes=1, seconds=1), "in 1 minute 1 second"),
        (timedelta(0), "now"),
    ],
)
def test_format_delta_is_a_short_human_distance(delta: timedelta, expected: str) -> None:
    assert format_delta(NOW + delta, NOW) == expected
