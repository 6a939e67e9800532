"""The plan on the web, drawn: `GET /calendar/<token>` (month, week and list views), `/calendar/<token>/post/<n>`
(one post's exact text per account and its images) and `/calendar/<token>.ics` (the feed, bot/web/ics.py).

What a calendar holds is decided in handlers/posts/calendar.py; this module reads the query, draws the templates
and answers 404 for a malformed, unknown or revoked token or a post the calendar doesn't list. Database reads run
in a thread; every page carries the security headers of bot/web/pages.py.
"""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.media_server import media_url
from bot.web.ics import feed
from bot.web.pages import HEADERS, guarded, not_found, page
from bot.web.previews import preview_png
from handlers.core.context import Context
from handlers.posts.calendar import (
    Entry,
    Plan,
    PostView,
    entries,
    first_picture,
    local_span,
    month_weeks,
    open_plan,
    plan_post,
)

TOKEN = "{token:[A-Za-z0-9_-]{32}}"
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTH_RE = re.compile(r"(\d{4})-(\d{2})")
FEED_PAST = timedelta(days=366)  # the feed holds what comes and the past year (a calendar app keeps older events)


def media_images(view: PostView) -> list[tuple[str, bool]]:
    """(same-origin address, is a video) of each of the post's stored pictures and videos."""
    return [(media_url("", sha, kind), kind.startswith("video/")) for sha, kind in view.media]


def plan_title(plan: Plan) -> str:
    """'Acme: the plan', narrowed: 'Acme: the plan · spring · south'."""
    return f"{plan.name}: the plan" + "".join(f" · {part}" for part in (plan.campaign, plan.audience) if part)


def preview_response(png: bytes) -> web.Response:
    return web.Response(body=png, content_type="image/png", headers=HEADERS)


def _month(text: str, today: date) -> date:
    m = MONTH_RE.fullmatch(text)
    if m and 1900 < int(m.group(1)) < 3000 and 1 <= int(m.group(2)) <= 12:
        return date(int(m.group(1)), int(m.group(2)), 1)
    return today.replace(day=1)


def _week(text: str, today: date) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        day = today
    return day - timedelta(days=day.weekday())


def _shift_month(first: date, months: int) -> date:
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


class CalendarPages:
    """The calendar routes on the one web app."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def attach(self, app: web.Application) -> None:
        app.router.add_get(f"/calendar/{TOKEN}.ics", guarded(self.ics))
        app.router.add_get(f"/calendar/{TOKEN}", guarded(self.calendar))
        app.router.add_get(f"/calendar/{TOKEN}/post/{{number:[0-9]{{1,12}}}}", guarded(self.post))
        app.router.add_get(f"/calendar/{TOKEN}/post/{{number:[0-9]{{1,12}}}}/preview/{{index:[0-9]{{1,3}}}}.png",
                           guarded(self.preview))

    def _plan(self, token: str) -> Plan | None:
        with self.ctx.db.session() as session:
            return open_plan(session, token)

    def _entries(self, plan: Plan, start: datetime | None, end: datetime | None) -> list[Entry]:
        with self.ctx.db.session() as session:
            return entries(session, plan, start, end)

    async def calendar(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        plan = await asyncio.to_thread(self._plan, token)
        if plan is None:
            return not_found()
        today = self.ctx.clock.now().astimezone(ZoneInfo(plan.timezone)).date()
        view = request.query.get("view", "month")
        view = view if view in ("month", "week", "list") else "month"
        first_of_month = _month(request.query.get("month", ""), today)
        monday = _week(request.query.get("week", ""), today)
        if view == "week":
            weeks = [[monday + timedelta(days=i) for i in range(7)]]
            start, end = local_span(plan, monday, 7)
            period = f"Week of {monday.strftime('%-d %B %Y')}"
            earlier, later = (f"view=week&week={monday - timedelta(days=7)}", f"view=week&week={monday + timedelta(days=7)}")
            labels = ("Previous week", "Next week")
            month_key, week_key = monday.strftime("%Y-%m"), monday.isoformat()
        else:
            weeks = month_weeks(first_of_month.year, first_of_month.month)
            span_first = weeks[0][0] if view == "month" else first_of_month
            span_days = (len(weeks) * 7 if view == "month"
                         else (_shift_month(first_of_month, 1) - first_of_month).days)
            start, end = local_span(plan, span_first, span_days)
            period = first_of_month.strftime("%B %Y")
            earlier = f"view={view}&month={_shift_month(first_of_month, -1).strftime('%Y-%m')}"
            later = f"view={view}&month={_shift_month(first_of_month, 1).strftime('%Y-%m')}"
            labels = ("Previous month", "Next month")
            month_key = first_of_month.strftime("%Y-%m")
            week_key = (today if today.replace(day=1) == first_of_month else first_of_month).isoformat()
        found = await asyncio.to_thread(self._entries, plan, start, end)
        by_day: dict[date, list[Entry]] = defaultdict(list)
        for entry in found:
            by_day[entry.local.date()].append(entry)
        title = plan_title(plan)
        return page("calendar.html", title=title, plan=plan, view=view, base=f"/calendar/{token}", period=period,
                    weeks=weeks, by_day=by_day, days=sorted(by_day.items()), weekdays=WEEKDAYS, today=today,
                    focus_month=first_of_month.month, earlier=earlier, later=later, earlier_label=labels[0],
                    later_label=labels[1], month_key=month_key, week_key=week_key)

    async def post(self, request: web.Request) -> web.StreamResponse:
        token, number = request.match_info["token"], int(request.match_info["number"])

        def read() -> tuple[Plan, PostView] | None:
            with self.ctx.db.session() as session:
                plan = open_plan(session, token)
                view = plan_post(self.ctx, session, plan, number) if plan is not None else None
                return (plan, view) if plan is not None and view is not None else None

        found = await asyncio.to_thread(read)
        if found is None:
            return not_found()
        plan, view = found
        return page("post.html", title=f"{plan.name}: post #{view.number}", post=view, base=f"/calendar/{token}",
                    images=media_images(view), preview_base=f"/calendar/{token}/post/{number}")

    async def preview(self, request: web.Request) -> web.StreamResponse:
        token, number = request.match_info["token"], int(request.match_info["number"])
        index = int(request.match_info["index"])

        def draw() -> bytes | None:
            with self.ctx.db.session() as session:
                plan = open_plan(session, token)
                view = plan_post(self.ctx, session, plan, number) if plan is not None else None
                if plan is None or view is None or index >= len(view.accounts):
                    return None
                picture = first_picture(session, plan.workspace_id, view)
            return preview_png(view.accounts[index], picture)

        png = await asyncio.to_thread(draw)
        return not_found() if png is None else preview_response(png)

    async def ics(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        plan = await asyncio.to_thread(self._plan, token)
        if plan is None:
            return not_found()
        found = await asyncio.to_thread(self._entries, plan, self.ctx.clock.now() - FEED_PAST, None)
        base = self.ctx.public_url.rstrip("/") if self.ctx.public_url else f"{request.scheme}://{request.host}"
        body = feed(plan, found, f"{base}/calendar/{token}", self.ctx.clock.now())
        return web.Response(body=body, content_type="text/calendar", charset="utf-8",
                            headers={**HEADERS, "Cache-Control": "no-cache",
                                     "Content-Disposition": 'inline; filename="plan.ics"'})
