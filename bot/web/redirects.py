"""`GET /r/<code>`: a short link answers 302 to the target stored for it, and the click is handed to a queue.

The redirect never waits for the database to write: it looks the code up (a small cache, then the database in a
thread), answers, and puts a `Hit` on a bounded queue; one writer task drains the queue in batches (what came
within `GATHER_SECONDS`, up to `BATCH`) through
handlers/engagement/clicks.py (`ClickCounter.store` in a thread: the classification, the visitor hash, the
repeat rule, the flood limit, one INSERT per click). If the queue is full (the database far behind), hits are
counted per link in memory and written as one aggregated row each, so nothing grows without bound.

Safe by construction: the Location is only ever the target stored for the code (nothing from the request); a
code that isn't 8 URL-safe characters is 404 before the database is touched; an unknown or revoked code gets a
plain 404 page. Every answer carries `Cache-Control: no-store`, `Referrer-Policy: no-referrer` and
`X-Content-Type-Options: nosniff`. A revoked link stops answering within `CACHE_SECONDS` on every worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict

from aiohttp import web

from handlers.core.ports import Clock
from handlers.engagement.clicks import FLOOD, ClickCounter, Hit, fetcher_of, find_link
from handlers.posts.shortlinks import CODE_RE
from storage.db import Database
from storage.models import Click

log = logging.getLogger(__name__)

CACHE_SECONDS = 60.0
CACHE_ENTRIES = 20_000
QUEUE_SIZE = 50_000
BATCH = 1_000
GATHER_SECONDS = 0.25  # a batch gathers clicks this long (or up to BATCH): a few transactions a second, not one a click
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}
NOT_FOUND = ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Link not found</title></head>"
             "<body><h1>Link not found</h1><p>This short link doesn't exist or was withdrawn.</p></body></html>")


class Redirects:
    """The /r/<code> route, its lookup cache and the click writer."""

    def __init__(self, db: Database, clock: Clock, *, trust_forwarded_for: bool = False) -> None:
        self.db = db
        self.clock = clock
        self.trust_forwarded_for = trust_forwarded_for
        self.counter = ClickCounter(db)
        self.cache: OrderedDict[str, tuple[float, tuple[int, str] | None]] = OrderedDict()
        self.queue: asyncio.Queue[Hit] = asyncio.Queue(maxsize=QUEUE_SIZE)
        self.overflow: dict[int, int] = {}  # link id → hits the full queue couldn't take
        self.stored = 0  # rows written (the benchmark reads it)
        self.timings: list[float] | None = None  # seconds each redirect took, when a benchmark asks
        self._writer: asyncio.Task[None] | None = None
        self._flush = asyncio.Event()  # set by drain(): write what is queued now, without gathering more

    def attach(self, app: web.Application) -> None:
        app.router.add_get("/r/{code}", self.redirect)

    async def start(self) -> None:
        """Loads the user-agent parser's rules (most of a second, once) before the first click needs them, then
        starts the writer."""
        await asyncio.to_thread(fetcher_of, "Mozilla/5.0 (warm-up)")
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_forever(), name="herald-click-writer")

    async def stop(self) -> None:
        """Writes what is queued, then stops the writer."""
        if self._writer is None:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.drain(), timeout=10)
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer
        self._writer = None

    async def drain(self) -> None:
        """Returns once every hit queued so far is written (tests and the benchmark wait on it)."""
        self._flush.set()
        await self.queue.join()
        if self.overflow:
            await asyncio.to_thread(self._write_overflow)

    # --- the route ------------------------------------------------------------------------------

    async def redirect(self, request: web.Request) -> web.StreamResponse:
        if self.timings is None:
            return await self._redirect(request)
        started = time.perf_counter()
        try:
            return await self._redirect(request)
        finally:
            self.timings.append(time.perf_counter() - started)

    async def _redirect(self, request: web.Request) -> web.StreamResponse:
        code = request.match_info.get("code", "")
        if not CODE_RE.fullmatch(code):
            return self.not_found()
        found = await self.lookup(code)
        if found is None:
            return self.not_found()
        link_id, target = found
        if request.method == "GET":  # a HEAD only asks whether the link answers: nobody followed it
            hit = Hit(link_id, self.clock.now(), self.address(request), request.headers.get("User-Agent", ""))
            try:
                self.queue.put_nowait(hit)
            except asyncio.QueueFull:
                self.overflow[link_id] = self.overflow.get(link_id, 0) + 1
        return web.Response(status=302, headers={**HEADERS, "Location": target})

    def not_found(self) -> web.Response:
        return web.Response(status=404, text=NOT_FOUND, content_type="text/html", headers=HEADERS)

    def address(self, request: web.Request) -> str:
        if self.trust_forwarded_for:
            forwarded = request.headers.get("X-Forwarded-For", "")
            last = forwarded.rsplit(",", 1)[-1].strip()
            if last:
                return last  # the hop the load balancer added; earlier ones come from the client
        return request.remote or ""

    async def lookup(self, code: str) -> tuple[int, str] | None:
        now = time.monotonic()
        cached = self.cache.get(code)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        found = await asyncio.to_thread(find_link, self.db, code)
        self.cache[code] = (now, found)
        self.cache.move_to_end(code)
        while len(self.cache) > CACHE_ENTRIES:
            self.cache.popitem(last=False)
        return found

    # --- the writer -----------------------------------------------------------------------------

    async def _write_forever(self) -> None:
        while True:
            batch = [await self.queue.get()]
            if not self._flush.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._flush.wait(), GATHER_SECONDS)
            if self.queue.empty():
                self._flush.clear()
            while len(batch) < BATCH:
                try:
                    batch.append(self.queue.get_nowait())
                except asyncio.QueueEmpty:
                    break
            try:
                self.stored += await asyncio.to_thread(self.counter.store, batch)
                if self.overflow:
                    await asyncio.to_thread(self._write_overflow)
            except Exception:  # the database is away: these clicks are lost, the redirects go on
                log.exception("couldn't store %d click(s)", len(batch))
            finally:
                for _ in batch:
                    self.queue.task_done()

    def _write_overflow(self) -> None:
        overflow, self.overflow = self.overflow, {}
        at = self.clock.now().replace(second=0, microsecond=0)
        with self.db.session() as session:
            for link_id, count in overflow.items():
                session.add(Click(link_id=link_id, at=at, visitor=None, fetcher=FLOOD, count=count))
        self.stored += len(overflow)
