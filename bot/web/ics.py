"""The plan as an iCalendar feed (RFC 5545, PyPI `icalendar`): one event per post, at its time in the workspace's
zone with that zone's VTIMEZONE, each linking to the post's page, so Google Calendar, Outlook and Apple Calendar
show the plan and follow it as it changes (a post keeps its event's UID when its time moves).

A post scheduled at each audience's local time is one event per distinct moment (an entry of its own, see
handlers/posts/calendar.py), written in the zone of the audience going out then, with a UID of its own made of
the post number and the audiences' names (`post-12-us-east@host`), so each refresh finds the same events. An
audience calendar's events are in the audience's zone."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event

from handlers.posts.calendar import Entry, Plan

LENGTH = timedelta(minutes=15)  # how long a post's event lasts in a calendar app


def feed(plan: Plan, entries: list[Entry], page: str, now: datetime) -> bytes:
    """The feed of `entries`; `page` is the calendar's page address (posts at `<page>/post/<n>`)."""
    host = urlsplit(page).hostname or "herald"
    cal = Calendar()
    cal.add("prodid", "-//Herald//The plan//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    name = f"{plan.name}: the plan" + "".join(f" · {part}" for part in (plan.campaign, plan.audience) if part)
    cal.add("x-wr-calname", name)
    cal.add("x-wr-timezone", plan.timezone)
    cal.add("refresh-interval", timedelta(hours=1), parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", "PT1H")
    for entry in entries:
        event = Event()
        url = f"{page}/post/{entry.number}"
        # post numbers are unique on one Herald; a post's moments (local times) differ by their audiences
        event.add("uid", f"post-{entry.number}{'-' + entry.key if entry.key else ''}@{host}")
        event.add("dtstamp", now)
        start = entry.at.astimezone(ZoneInfo(entry.tz))
        event.add("dtstart", start)
        event.add("dtend", start + LENGTH)
        times = " · ".join(f"{name} {wall}" for name, wall in entry.audience_times)
        event.add("summary", f"#{entry.number} {times + ': ' if times else ''}{entry.words}")
        details = [f"{entry.state} · {', '.join(entry.networks) or 'no accounts'}"]
        if times:
            details.append(f"At each audience's own time: {times}")
        if entry.campaign:
            details.append(f"Campaign: {entry.campaign}")
        details.append(f"Accounts: {', '.join(entry.accounts) or 'none'}")
        details.append(url)
        event.add("description", "\n".join(details))
        event.add("url", url)
        event.add("status", "TENTATIVE" if entry.state in ("in review", "approved") else "CONFIRMED")
        event.add("transp", "TRANSPARENT")
        cal.add_component(event)
    cal.add_missing_timezones()
    return cal.to_ical()
