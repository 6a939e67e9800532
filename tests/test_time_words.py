"""Time words through the console chat: /schedule never misreads a time, /timezone refuses abbreviations, and
/language sets the language times are typed in.

Every case here was misread before: 'tomorrow 21h' became 21 hours from now, 'next tuesday' became midnight,
'tomorrow 9am 10am' kept the current time of day, 'next week' kept the current minute, '25:00' was suggested
back as 'tomorrow 25:00', /timezone EST set a fixed UTC-5 zone, and only English was read.
"""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import inspect, text
from sqlmodel import select

from storage.db import Database, alembic_config
from storage.models import Workspace
from tests.conftest import Team, refused


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def workspace(team: Team) -> Workspace:
    with team.herald.db.session() as session:
        ws = session.exec(select(Workspace)).one()
        session.expunge(ws)
        return ws


async def scheduled_post(team: Team) -> int:
    """An approved post already set for tomorrow 9am (Paris); the clock says Monday 23 Nov 2026, 10:00 there."""
    await team.setup_workspace()
    post_id = await team.approved_post()
    await team.say("alice", f"/schedule {post_id} tomorrow 9am")
    return post_id


async def test_tomorrow_21h_is_tomorrow_at_nine_in_the_evening(team: Team) -> None:
    await team.setup_workspace()
    post_id = await team.approved_post()
    out = await team.say("alice", f"/schedule {post_id} tomorrow 21h")
    assert out.startswith(f"🗓 #{post_id} is scheduled for Tue 24 Nov 2026 21:00 CET (Europe/Paris) (in 1 day 11 hours)")
    assert team.post(post_id).due_at == utc(2026, 11, 24, 20, 0)


async def test_next_tuesday_without_a_time_asks_for_one(team: Team) -> None:
    post_id = await scheduled_post(team)
    out = await refused(team, "alice", f"/schedule {post_id} next tuesday", "no time of day", "Tue 24 Nov 2026",
                        "'next tuesday 9:00'")
    assert "00:00" not in out
    assert team.post(post_id).due_at == utc(2026, 11, 24, 8, 0)
    out = await team.say("alice", f"/schedule {post_id} next tuesday 9:00")
    assert "Tue 24 Nov 2026 09:00 CET (Europe/Paris)" in out


async def test_two_times_in_one_phrase_are_refused(team: Team) -> None:
    post_id = await scheduled_post(team)
    await refused(team, "alice", f"/schedule {post_id} tomorrow 9am 10am", "2 times of day ('9am' and '10am')",
                  "Give one, e.g. 'tomorrow 9am'")


async def test_next_week_asks_for_the_day_and_the_time(team: Team) -> None:
    post_id = await scheduled_post(team)
    await refused(team, "alice", f"/schedule {post_id} next week", "names a week", "which day or what time")


async def test_an_impossible_clock_time_is_refused_not_suggested_for_tomorrow(team: Team) -> None:
    post_id = await scheduled_post(team)
    out = await refused(team, "alice", f"/schedule {post_id} 25:00", "'25:00' isn't a time of day",
                        "hours go from 0 to 23")
    assert "tomorrow 25:00" not in out
    await refused(team, "alice", f"/schedule {post_id} tomorrow 9:75", "'9:75' isn't a time of day")


async def test_a_relative_duration_keeps_working(team: Team) -> None:
    await team.setup_workspace()
    post_id = await team.approved_post()
    out = await team.say("alice", f"/schedule {post_id} in 2 hours")
    assert "Mon 23 Nov 2026 12:00 CET (Europe/Paris) (in 2 hours)" in out


# /timezone


async def test_a_zone_abbreviation_is_refused_by_timezone_with_the_area_city_meant(team: Team) -> None:
    await team.say("alice", "/setup Acme")
    await refused(team, "alice", "/timezone EST", "'EST' is a zone abbreviation", "fixed UTC-5 with no summer time",
                  "Did you mean 'America/New_York'?")
    await refused(team, "alice", "/timezone cet", "Did you mean 'Europe/Paris'?")
    await refused(team, "alice", "/timezone PST", "Did you mean 'America/Los_Angeles'?")
    assert workspace(team).timezone == "UTC"


async def test_schedule_and_timezone_refuse_an_abbreviation_alike(team: Team) -> None:
    post_id = await scheduled_post(team)
    await refused(team, "alice", f"/schedule {post_id} tomorrow 9am EST", "zone abbreviation", "America/New_York")


# /language


async def test_language_is_shown_to_anyone_and_set_by_an_admin(team: Team) -> None:
    await team.say("alice", "/setup Acme")
    out = await team.say("carol", "/language")
    assert out.startswith("Times are read in English (en). Languages: en (English), ru (Russian), fr (French), "
                          "de (German), es (Spanish).")
    await refused(team, "carol", "/language de", "Only admins can change the language for times")
    out = await team.say("alice", "/language de")
    assert out == "Times are now read in German (de; was en), e.g. /schedule 12 morgen 9 Uhr."
    assert workspace(team).language == "de"
    assert "German (de)" in await team.say("carol", "/language")


async def test_an_unknown_language_is_refused_with_the_list(team: Team) -> None:
    await team.say("alice", "/setup Acme")
    await refused(team, "alice", "/language it", "I can't read times in 'it'",
                  "en (English), ru (Russian), fr (French), de (German), es (Spanish)", "/language de")
    assert workspace(team).language == "en"


async def test_in_german_morgen_9_uhr_is_tomorrow_at_nine(team: Team) -> None:
    await team.setup_workspace()
    post_id = await team.approved_post()
    await team.say("alice", "/language de")
    out = await team.say("alice", f"/schedule {post_id} morgen 9 Uhr")
    assert out.startswith(f"🗓 #{post_id} is scheduled for Tue 24 Nov 2026 09:00 CET (Europe/Paris) (in 23 hours)")
    assert team.post(post_id).due_at == utc(2026, 11, 24, 8, 0)
    out = await refused(team, "alice", f"/schedule {post_id} tomorrow 9am", "couldn't read", "'morgen 9 Uhr'",
                        "read in German: /language changes it")


async def test_each_language_reads_its_own_words(team: Team) -> None:
    await team.setup_workspace()
    post_id = await team.approved_post()
    for code, phrase, shown in [
        ("ru", "завтра в 9", "Tue 24 Nov 2026 09:00 CET"),
        ("fr", "demain à 21h", "Tue 24 Nov 2026 21:00 CET"),
        ("es", "mañana a las 9:30", "Tue 24 Nov 2026 09:30 CET"),
        ("ru", "через 2 часа", "Mon 23 Nov 2026 12:00 CET"),
        ("fr", "dans 2 heures", "Mon 23 Nov 2026 12:00 CET"),
        ("de", "in 2 Stunden", "Mon 23 Nov 2026 12:00 CET"),
        ("es", "en 2 horas", "Mon 23 Nov 2026 12:00 CET"),
    ]:
        await team.say("alice", f"/language {code}")
        out = await team.say("alice", f"/schedule {post_id} {phrase}")
        assert f"scheduled for {shown} (Europe/Paris)" in out, (code, phrase, out)


async def test_in_french_a_date_without_a_time_asks_for_one_in_french_words(team: Team) -> None:
    post_id = await scheduled_post(team)
    await team.say("alice", "/language fr")
    await refused(team, "alice", f"/schedule {post_id} le 3 décembre", "no time of day", "'le 3 décembre 9h00'")
    out = await team.say("alice", f"/schedule {post_id} le 3 décembre 9h00")
    assert "Thu 3 Dec 2026 09:00 CET (Europe/Paris)" in out


def test_the_migration_gives_existing_workspaces_english_and_can_be_undone(db_url: str) -> None:
    db = Database(db_url)
    config = alembic_config(db_url)
    try:
        with db.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0004")
            connection.execute(text("INSERT INTO workspace (name, timezone, approvals_needed, approver_roles, "
                                    "self_approval, unapproved_action, approval_deadline_minutes, paused, "
                                    "digest_cadence, digest_at, digest_weekday, post_reports, watch_words, "
                                    "alert_factor, utm) VALUES ('Old', 'Europe/Paris', 1, 'admin', false, 'hold', "
                                    "0, false, 'off', '09:00', 0, '', '', 3.0, true)"))
            command.upgrade(config, "head")
            assert connection.execute(text("SELECT language FROM workspace")).scalar_one() == "en"
            command.downgrade(config, "0004")
            assert "language" not in {c["name"] for c in inspect(connection).get_columns("workspace")}
            command.upgrade(config, "head")
            assert connection.execute(text("SELECT language FROM workspace")).scalar_one() == "en"
    finally:
        db.dispose()
