"""The plan as an iCalendar feed (RFC 5545, PyPI `icalendar`): one event per post, at its time in the workspace's
zone with that zone's VTIMEZONE, each linking to the post's page, so Google Calendar, Outlook and Apple Calendar
show the plan and follow it as it changes (a post keeps its event's UID when its time moves)."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlsplit

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
    name = f"{plan.name}: the plan" + (f" · {plan.campaign}" if plan.campaign else "")
    cal.add("x-wr-calname", name)
    cal.add("x-wr-timezone", plan.timezone)
    cal.add("refresh-interval", timedelta(hours=1), parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", "PT1H")
    for entry in entries:
        event = Event()
        url = f"{page}/post/{entry.number}"
        event.add("uid", f"post-{entry.number}@{host}")  # post numbers are unique on one Herald
        event.add("dtstamp", now)
        event.add("dtstart", entry.local)
        event.add("dtend", entry.local + LENGTH)
        event.add("summary", f"#{entry.number} {entry.words}")
        details = [f"{entry.state} · {', '.join(entry.networks) or 'no accounts'}"]
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
