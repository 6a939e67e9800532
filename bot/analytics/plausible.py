"""Plausible Stats API v2 (https://plausible.io/docs/stats-api): `POST {url}/api/v2/query` with
`Authorization: Bearer <key>` and a JSON query; the answer is `{"results": [{"dimensions": [...],
"metrics": [...]}], "meta": {...}, "query": {...}}`, the metrics in the order asked.

Herald asks at most two queries per read, grouped by `visit:utm_content` and filtered to its own links
(`visit:utm_medium` is "social", see handlers/posts/links.py):

- `visits` and `visitors` (sessions and unique visitors);
- with a goal: `visitors` and `events` filtered to `event:goal` = the goal (unique and total conversions).
"""

from __future__ import annotations

from typing import Any

import httpx

from bot.analytics.common import count, malformed, post_json
from handlers.core.ports import AnalyticsQuery, Traffic

SERVICE = "Plausible"
LIMIT = 10_000  # rows per query (Plausible's own default); more utm_content values than this are not read


def query_body(site: str, metrics: list[str], query: AnalyticsQuery, goal: str | None = None) -> dict[str, Any]:
    filters: list[Any] = [["is", "visit:utm_medium", [query.medium]]]
    if goal:
        filters.append(["is", "event:goal", [goal]])
    return {
        "site_id": site,
        "metrics": metrics,
        "date_range": [query.start.isoformat(), query.end.isoformat()],
        "dimensions": ["visit:utm_content"],
        "filters": filters,
        "pagination": {"limit": LIMIT, "offset": 0},
    }


def rows(answer: Any, width: int) -> dict[str, list[int]]:
    """utm_content → its metrics, from a documented answer (refused otherwise)."""
    results = answer.get("results") if isinstance(answer, dict) else None
    if not isinstance(results, list):
        raise malformed(SERVICE, "no results list")
    out: dict[str, list[int]] = {}
    for row in results:
        dims = row.get("dimensions") if isinstance(row, dict) else None
        metrics = row.get("metrics") if isinstance(row, dict) else None
        if not isinstance(dims, list) or len(dims) != 1 or not isinstance(metrics, list) or len(metrics) != width:
            raise malformed(SERVICE, "a row without one dimension and the metrics asked")
        out[str(dims[0])] = [count(m, SERVICE) for m in metrics]
    return out


async def read_plausible(client: httpx.AsyncClient, settings: dict[str, Any], secrets: dict[str, Any],
                         query: AnalyticsQuery) -> dict[str, Traffic]:
    url = f"{str(settings['url']).rstrip('/')}/api/v2/query"
    headers = {"Authorization": f"Bearer {secrets['key']}", "Content-Type": "application/json"}
    site = str(settings["site"])
    visits = rows(await post_json(client, SERVICE, url, headers=headers,
                                  body=query_body(site, ["visits", "visitors"], query)), 2)
    goal = settings.get("goal") or None
    converted: dict[str, list[int]] = {}
    if goal:
        converted = rows(await post_json(client, SERVICE, url, headers=headers,
                                         body=query_body(site, ["visitors", "events"], query, goal)), 2)
    out: dict[str, Traffic] = {}
    for content in {*visits, *converted}:
        v = visits.get(content, [0, 0])
        out[content] = Traffic(visits=v[0], visitors=v[1],
                               conversions=converted.get(content, [0, 0])[0] if goal else None)
    return out
