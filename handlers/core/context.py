"""Everything a handler may use, in one object built by bot/app.py (or a test)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from handlers.core.ports import Analytics, Charts, Clock, Fetcher, Networks, Notifier, Previews, Scheduler
from storage.crypto import SecretBox
from storage.db import Database


@dataclass
class Sends:
    """This process's sends: how many are in flight, and whether it is stopping (then it claims no new
    ones, so a deploy's SIGTERM lets the sends under way finish instead of leaving them unconfirmed)."""

    stopping: bool = False
    in_flight: int = 0
    # posts this process is running now (a due post being claimed and sent, /publish, /retry): the sweep
    # leaves them to the run under way instead of running them a second time beside it
    running: Counter[int] = field(default_factory=Counter)

    @contextmanager
    def running_post(self, post_id: int) -> Iterator[None]:
        self.running[post_id] += 1
        try:
            yield
        finally:
            self.running[post_id] -= 1
            if self.running[post_id] <= 0:
                del self.running[post_id]


@dataclass
class Context:
    db: Database
    clock: Clock
    networks: Networks
    notifier: Notifier
    scheduler: Scheduler
    secrets: SecretBox
    grace: timedelta = timedelta(minutes=15)
    worker_id: str = "herald"
    # Herald's public address (HERALD_PUBLIC_URL) where networks that fetch images by URL find them
    public_url: str | None = None
    # draws charts for /stats, reports and digests (bot/charts.py); None where no charts are drawn
    charts: Charts | None = None
    # draws approximate previews of a post per account (/preview <post> image); None where none are drawn
    previews: Previews | None = None
    # the Telegram bot's username once its front end connected (/review's t.me deep links); None without Telegram
    telegram_bot: str | None = None
    sends: Sends = field(default_factory=Sends)
    # how long a published, failed or expired post keeps its images and videos (HERALD_MEDIA_RETENTION_DAYS)
    media_retention: timedelta = timedelta(days=90)
    # downloads files users name by their web address (pictures in an /import plan); None where nothing is fetched
    fetcher: Fetcher | None = None
    # the company site's analytics (Plausible, GA4: bot/analytics/); None where none can be read
    analytics: Analytics | None = None
