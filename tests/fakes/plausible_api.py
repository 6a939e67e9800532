"""A fake Plausible Stats API v2 (https://plausible.io/docs/stats-api) on 127.0.0.1.

`POST /api/v2/query` with `Authorization: Bearer <key>` and a JSON query. The fake checks what the docs require
(site_id, metrics, date_range, and the dimensions and filters Herald uses) and answers in the documented shape:
`{"results": [{"dimensions": [<utm_content>], "metrics": [...]}], "meta": {}, "query": {...}}`, the metrics in
the order asked. A wrong key is a 401 `{"error": …}`, an unknown site or goal a 400 `{"error": …}`.

`sessions` holds what the site saw: (utm_medium, utm_content, goals completed) per visit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer

METRICS = {"visitors", "visits", "pageviews", "events", "conversion_rate", "bounce_rate", "visit_duration"}


@dataclass
class Visit:
    content: str
    medium: str = "social"
    goals: tuple[str, ...] = ()
    visitor: str = ""
    day: str = ""  # YYYY-MM-DD; "" is inside any range


class FakePlausible(LoopbackServer):
    def __init__(self, *, key: str = "plausible-key", site: str = "acme.com",
                 goals: tuple[str, ...] = ("Signup",)) -> None:
        super().__init__()
        self.key = key
        self.site = site
        self.goals = goals
        self.visits: list[Visit] = []
        self.route("POST", "/api/v2/query", self.query)

    async def query(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.key}":
            return web.json_response({"error": "Invalid API key or site ID. Please make sure you're using a valid "
                                               "API key with access to the site you've requested."}, status=401)
        body = await request.json()
        if not isinstance(body, dict) or body.get("site_id") != self.site:
            return web.json_response({"error": "Invalid API key or site ID."}, status=401)
        metrics = body.get("metrics")
        if not isinstance(metrics, list) or not metrics or not set(metrics) <= METRICS:
            return web.json_response({"error": f"#/metrics: invalid metrics {metrics!r}"}, status=400)
        date_range = body.get("date_range")
        if not (isinstance(date_range, list) and len(date_range) == 2 and all(isinstance(d, str) for d in date_range)):
            return web.json_response({"error": "#/date_range: Invalid date range"}, status=400)
        if body.get("dimensions") not in (None, [], ["visit:utm_content"]):
            return web.json_response({"error": "the fake groups by visit:utm_content only"}, status=400)
        chosen = [v for v in self.visits if not v.day or date_range[0] <= v.day <= date_range[1]]
        goal = None
        for kind, name, values in body.get("filters") or []:
            if kind != "is":
                return web.json_response({"error": f"the fake filters with is only, not {kind}"}, status=400)
            if name == "visit:utm_medium":
                chosen = [v for v in chosen if v.medium in values]
            elif name == "event:goal":
                missing = [g for g in values if g not in self.goals]
                if missing:
                    return web.json_response({"error": f"The goal `{missing[0]}` is not configured for this site. "
                                                       "Find out how to configure goals here: …"}, status=400)
                goal = values
                chosen = [v for v in chosen if set(v.goals) & set(values)]
            else:
                return web.json_response({"error": f"the fake doesn't filter by {name}"}, status=400)
        groups: dict[str, list[Visit]] = {}
        for v in chosen:
            groups.setdefault(v.content, []).append(v)
        results = []
        for content, group in sorted(groups.items()):
            values: dict[str, Any] = {
                "visitors": len({v.visitor or id(v) for v in group}),
                "visits": len(group),
                "pageviews": len(group),
                "events": sum(sum(1 for g in v.goals if goal is None or g in goal) for v in group),
                "conversion_rate": 100.0 if goal else 0.0,
                "bounce_rate": 0,
                "visit_duration": 30,
            }
            results.append({"dimensions": [content], "metrics": [values[m] for m in metrics]})
        return web.json_response({"results": results, "meta": {}, "query": {**body, "site_id": self.site}})
