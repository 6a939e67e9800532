"""The composition root: builds the database, the ports and the front ends, and runs them together."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from pydantic import SecretStr

from bot.analytics import HttpAnalytics
from bot.analytics.ga4 import GA4_API_URL
from bot.charts import MatplotlibCharts
from bot.chats.console import PLATFORM as CONSOLE
from bot.chats.console import ConsoleChat
from bot.chats.front import ChatFront
from bot.clock import SystemClock
from bot.fetcher import HttpFetcher
from bot.leader import TAKEOVER_SECONDS, Leadership
from bot.networks import NetworkDirectory, build_networks
from bot.scheduler import HeraldScheduler
from bot.settings import Settings, secret_key
from bot.web.previews import PillowPreviews
from bot.worker_lock import WorkerLock, migration_lock
from handlers import dispatch
from handlers.core.chat import ChatAddress, Command, Reply
from handlers.core.context import Context
from handlers.core.ports import Clock, Notifier
from handlers.posts.publishing.due import recover_interrupted
from handlers.posts.publishing.send import drain_sends
from handlers.workspace.setup import chat_moved
from storage.crypto import SecretBox, split_keys
from storage.db import Database

log = logging.getLogger("herald")

# how long a stop waits for the sends in flight (a Procfile platform kills ~30 s after SIGTERM)
STOP_GRACE_SECONDS = 20.0


class NotifierRouter:
    """The Notifier port: hands each notice to the front end of the chat's platform."""

    def __init__(self) -> None:
        self.fronts: dict[str, Notifier] = {}

    def register(self, platform: str, front: Notifier) -> None:
        self.fronts[platform] = front

    async def send(self, chat: ChatAddress, reply: Reply) -> None:
        front = self.fronts.get(chat.platform)
        if front is None:
            log.warning("no %s front end is running; a notice for chat %s was not delivered", chat.platform, chat.chat_id)
            return
        await front.send(chat, reply)


class Herald:
    """One Herald process: database, scheduler, networks and the console chat, in one event loop."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        write: Callable[[str], None] | None = None,
        networks: NetworkDirectory | None = None,
        leader_every: float = TAKEOVER_SECONDS,
    ) -> None:
        self.settings = settings
        key, self.key_note = secret_key(settings)
        self.db = Database(settings.database_url)
        self.clock = clock or SystemClock()
        self.scheduler = HeraldScheduler(
            self.clock, sweep_seconds=settings.sweep_seconds, poll_seconds=settings.metrics_poll_seconds,
            check_seconds=settings.account_check_seconds,
        )
        self.notifier = NotifierRouter()
        self.networks = networks or build_networks(
            self.db, self.clock,
            telegram_token=_secret(settings.telegram_bot_token), telegram_api_url=settings.telegram_api_url,
            discord_token=_secret(settings.discord_bot_token),
        )
        self.ctx = Context(
            db=self.db, clock=self.clock, networks=self.networks, notifier=self.notifier,
            scheduler=self.scheduler, secrets=SecretBox(key),
            grace=timedelta(minutes=settings.grace_minutes), worker_id=settings.worker_id,
            public_url=settings.public_url, charts=MatplotlibCharts(), previews=PillowPreviews(),
            media_retention=timedelta(days=settings.media_retention_days),
            fetcher=HttpFetcher(allow_private=settings.fetch_private),
        )
        if self.networks.client is not None:  # the site's analytics over the connectors' shared HTTP client
            self.ctx.analytics = HttpAnalytics(self.networks.client, self.clock,
                                               ga4_api_url=settings.ga4_api_url or GA4_API_URL)
        self.lock = WorkerLock(self.db.engine, settings.worker_id, settings.sqlite_path())
        self.lock_lost = asyncio.Event()  # set when another process took this worker's id: stop the process
        self._lock_watch: asyncio.Task[None] | None = None
        # with several workers, one receives each chat platform's updates; the others send only
        self.leadership = Leadership(self.db.engine, settings.sqlite_path(), settings.worker_id, every=leader_every)
        self.fronts: list[ChatFront] = []
        self.services: list[Any] = []  # other servers Herald runs (the public media server)
        self.console = ConsoleChat(self.handle, write=write)
        self.notifier.register(CONSOLE, self.console)

    async def handle(self, command: Command) -> Reply:
        return await dispatch.handle(self.ctx, command)

    def add_front(self, front: ChatFront) -> None:
        """Serve a chat front end too: it gets Herald's notices for its platform and runs with Herald."""
        self.fronts.append(front)
        self.notifier.register(front.platform, front)

    async def start(self) -> None:
        """Migrate the database, take this worker's id, settle sends it left in flight, start the clock
        and the chat front ends."""
        with migration_lock(self.db.engine, self.settings.sqlite_path()):  # workers starting together
            self.db.migrate()
        self.lock.acquire()
        # the chat front ends first: what recovery and the first sweep have to say must reach the team.
        # Each receives updates if this worker holds its receiver lock, else it only sends (bot/leader.py).
        for front in self.fronts:
            await self.leadership.start_front(front)
            username = getattr(front, "username", "") if getattr(front, "platform", None) == "telegram" else ""
            if username:
                self.ctx.telegram_bot = username  # /review's deep links name the bot
        self.leadership.watch()
        for service in self.services:
            await service.start()
        await recover_interrupted(self.ctx, at_start=True)
        await self.scheduler.start(self.ctx)
        self._lock_watch = asyncio.create_task(self._watch_lock(), name="herald-worker-lock")

    async def keep_worker_lock(self) -> bool:
        """Make sure this process still holds its HERALD_WORKER_ID (taken again after a dropped connection).
        If another process took it, publish no more (the scheduler stops) and set `lock_lost`."""
        try:
            kept = self.lock.keep()
        except Exception:  # the database is unreachable: nothing can be claimed either; look again later
            log.warning("couldn't check the lock on HERALD_WORKER_ID '%s'; trying again", self.settings.worker_id,
                        exc_info=True)
            return True
        if not kept:
            log.error(self.lock.lost_line())
            self.scheduler.shutdown()
            self.lock_lost.set()
        return kept

    async def _watch_lock(self) -> None:
        while await self.keep_worker_lock():
            await asyncio.sleep(self.settings.lock_check_seconds)

    async def stop(self) -> None:
        if self._lock_watch is not None:
            self._lock_watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lock_watch
            self._lock_watch = None
        self.scheduler.shutdown()  # no new jobs; the sends under way finish, none start; then the rest goes
        left = await drain_sends(self.ctx, timeout=STOP_GRACE_SECONDS)
        if left:
            log.warning("stopping with %d send(s) still in flight: they will show as unconfirmed", left)
        await self.leadership.stop()
        for service in self.services:
            await service.stop()
        for front in reversed(self.fronts):
            try:
                await front.stop()
            except Exception:
                log.exception("stopping the %s front end failed", front.platform)
        self.leadership.release()  # after the front ends stopped receiving: another worker takes over
        if self.networks.client is not None:
            await self.networks.client.aclose()
        self.lock.release()
        self.db.dispose()


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def webhook_secret(settings: Settings) -> str | None:
    """The secret Telegram sends with each webhook update, when TELEGRAM_WEBHOOK_SECRET isn't set: derived
    from the bot token and HERALD_SECRET_KEY, so every worker behind the load balancer accepts the same
    one (a random one per process would let each setWebhook lock the others out)."""
    if not settings.telegram_webhook_url or settings.telegram_bot_token is None:
        return None
    key = split_keys(secret_key(settings)[0])[0].encode()  # the sealing key: stays put while old keys go
    token = settings.telegram_bot_token.get_secret_value().encode()
    return hmac.new(key, b"telegram-webhook:" + token, hashlib.sha256).hexdigest()


def web_app(herald: Herald, *, host: str = "0.0.0.0", port: int | None = None) -> Any:
    """The one web app (/media, /r/<code>, /healthz, /calendar, /review) on HERALD_HTTP_PORT (or `port`)."""
    from bot.web.app import WebApp

    settings = herald.settings
    return WebApp(herald.db, herald.clock, host=host, port=settings.http_port if port is None else port,
                  public_url=settings.public_url, trust_forwarded_for=settings.trust_forwarded_for, ctx=herald.ctx)


def chat_fronts(herald: Herald) -> list[str]:
    """Add the front ends whose tokens are set (Telegram, Discord) and the public web app; their names."""
    settings = herald.settings
    names = []
    if settings.telegram_bot_token is not None:
        from bot.chats.telegram import TelegramFront

        herald.add_front(TelegramFront(
            herald.handle, settings.telegram_bot_token.get_secret_value(), api_url=settings.telegram_api_url,
            webhook_url=settings.telegram_webhook_url, webhook_listen=settings.telegram_webhook_listen,
            webhook_port=settings.telegram_webhook_port,
            webhook_secret=_secret(settings.telegram_webhook_secret) or webhook_secret(settings),
            on_chat_moved=lambda old, new: chat_moved(herald.ctx, "telegram", old, new),
        ))
        names.append("Telegram (webhook)" if settings.telegram_webhook_url else "Telegram (polling)")
    if settings.discord_bot_token is not None:
        from bot.chats.discord import DiscordFront

        herald.add_front(DiscordFront(
            herald.handle, settings.discord_bot_token.get_secret_value(), api_url=settings.discord_api_url,
            guild_ids=settings.guild_ids() or None,
        ))
        names.append("Discord")
    if settings.public_url:
        herald.services.append(web_app(herald))
        names.append(f"media and short links at {settings.public_url}")
    return names
