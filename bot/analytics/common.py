"""One JSON request to an analytics service, its failures classified (handlers.core.ports.AnalyticsError)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from bot.networks.http import seconds_until
from handlers.core.ports import AnalyticsError, AnalyticsErrorKind

REFUSED = (401, 403)


def _said(response: httpx.Response) -> str:
    """The service's own words from an error answer ({"error": "…"} or Google's {"error": {"message": …}})."""
    try:
        body = response.json()
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    elif error and isinstance(body, dict) and body.get("error_description"):  # OAuth: invalid_grant + why
        error = f"{error}: {body['error_description']}"
    return str(error)[:300] if error else ""


async def post_json(client: httpx.AsyncClient, service: str, url: str, *, headers: dict[str, str],
                    body: dict[str, Any] | None = None, form: dict[str, str] | None = None,
                    refused: tuple[int, ...] = REFUSED) -> Any:
    """POST and return the JSON answer; AnalyticsError when there is none worth reading (`refused`: the statuses
    that mean the credentials were refused)."""
    try:
        response = await client.post(url, headers=headers, json=body, data=form)
    except httpx.HTTPError as exc:
        raise AnalyticsError(AnalyticsErrorKind.UNREACHABLE,
                             f"{service} didn't answer ({type(exc).__name__})") from None
    said = _said(response)
    if response.status_code in refused:
        raise AnalyticsError(AnalyticsErrorKind.REFUSED,
                             f"{service} refused the credentials ({response.status_code}{': ' + said if said else ''})")
    if response.status_code == 429:
        wait = seconds_until(response.headers.get("retry-after"))
        raise AnalyticsError(AnalyticsErrorKind.RATE_LIMITED, f"{service} says too many requests (429)",
                             retry_after=wait)
    if response.status_code >= 500:
        raise AnalyticsError(AnalyticsErrorKind.UNREACHABLE, f"{service} had a server error ({response.status_code})")
    if response.status_code >= 400:
        raise AnalyticsError(AnalyticsErrorKind.BAD_ANSWER,
                             f"{service} refused the query ({response.status_code}{': ' + said if said else ''})")
    try:
        return response.json()
    except (ValueError, json.JSONDecodeError):
        raise AnalyticsError(AnalyticsErrorKind.BAD_ANSWER, f"{service} answered something that isn't JSON") from None


def malformed(service: str, what: str) -> AnalyticsError:
    return AnalyticsError(AnalyticsErrorKind.BAD_ANSWER, f"{service}'s answer isn't in the documented shape ({what})")


def count(value: Any, service: str) -> int:
    """A metric's value as a whole number (GA4 sends them as strings, Plausible as numbers; null is 0)."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise malformed(service, "a metric isn't a number")
    try:
        return int(float(value))
    except (TypeError, ValueError):
        raise malformed(service, "a metric isn't a number") from None
