"""The company site's analytics Herald reads visits and conversions from: Plausible (Stats API v2, cloud or
self-hosted) and Google Analytics 4 (Data API v1beta), over the one shared HTTP client.

`HttpAnalytics` is the handlers' `Analytics` port (handlers/core/ports.py); each provider turns every way a
request can go wrong into an `AnalyticsError` of the right kind (refused key, 429 with its wait, an answer
that isn't the documented shape, no answer).
"""

from __future__ import annotations

from typing import Any

import httpx

from bot.analytics.ga4 import GA4_API_URL, read_ga4
from bot.analytics.plausible import read_plausible
from handlers.core.ports import AnalyticsQuery, Clock, Traffic

PROVIDERS = ("plausible", "ga4")


class HttpAnalytics:
    def __init__(self, client: httpx.AsyncClient, clock: Clock, *, ga4_api_url: str = GA4_API_URL) -> None:
        self.client = client
        self.clock = clock
        self.ga4_api_url = ga4_api_url.rstrip("/")
        self.tokens: dict[str, tuple[str, float]] = {}  # GA4: service account email → (access token, ends at)

    def providers(self) -> tuple[str, ...]:
        return PROVIDERS

    async def read(self, provider: str, settings: dict[str, Any], secrets: dict[str, Any],
                   query: AnalyticsQuery) -> dict[str, Traffic]:
        if provider == "plausible":
            return await read_plausible(self.client, settings, secrets, query)
        if provider == "ga4":
            return await read_ga4(self, settings, secrets, query)
        raise ValueError(f"unknown analytics provider {provider!r}")
