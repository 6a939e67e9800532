"""The one web app: the media server's routes (`/media`, `/healthz`, bot/media_server.py) and the short links'
(`/r/<code>`, bot/web/redirects.py) and, given the handlers' context, the plan on the web (`/calendar/<token>`,
bot/web/calendar.py; `/review/<token>`, bot/web/review.py) in one aiohttp application on one port."""

from __future__ import annotations

from bot.media_server import MediaServer
from bot.web.calendar import CalendarPages
from bot.web.pages import attach_assets
from bot.web.redirects import Redirects
from bot.web.review import ReviewPages
from handlers.core.context import Context
from handlers.core.ports import Clock
from storage.db import Database


class WebApp(MediaServer):
    """Herald's public web server; start() / stop() in the running loop."""

    def __init__(self, db: Database, clock: Clock, *, host: str = "0.0.0.0", port: int = 8080,
                 public_url: str | None = None, trust_forwarded_for: bool = False,
                 ctx: Context | None = None) -> None:
        super().__init__(db, host=host, port=port, public_url=public_url)
        self.redirects = Redirects(db, clock, trust_forwarded_for=trust_forwarded_for)
        self.redirects.attach(self.app)
        if ctx is not None:
            attach_assets(self.app)
            CalendarPages(ctx).attach(self.app)
            ReviewPages(ctx).attach(self.app)

    async def start(self) -> None:
        await self.redirects.start()
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        await self.redirects.stop()
