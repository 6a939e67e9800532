"""Short-link redirects under load: p50/p99 latency at a steady request rate, and clicks stored per second.

Run: `python bench/redirects.py [--rate 1000] [--seconds 20] [--links 1000] [--database-url URL]`

Herald's real web app (bot/web/app.py: the redirect, its lookup cache, the click queue and writer) runs in its
own process on 127.0.0.1 against a scratch database holding `--links` short links. This process is the load
tool: an open-loop generator that starts request i at t0 + i/rate whatever
the answers before it did (on one of 32 keep-alive connections, a light client on raw asyncio streams), so
a slow answer can't slow the load down and hide itself. Latency is measured from
the moment a request was due to its 302 (queueing in the client included). Visitors: 80% browsers from 5,000
addresses (X-Forwarded-For, trusted as behind a load balancer), 20% preview fetchers, on random codes.

Then it prints, from the server: the clicks it stored during the run (rows, and rows/s), how long after the
last request its writer was done, and the writer's own capacity: `ClickCounter.store` timed on 50,000 new
clicks in batches of 1,000, as the writer batches them.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert  # noqa: E402
from sqlmodel import select  # noqa: E402

from bench.common import percentile, scratch_url  # noqa: E402
from bot.clock import SystemClock  # noqa: E402
from handlers.engagement.clicks import FLOOD, ROWS_PER_MINUTE, ClickCounter, Hit  # noqa: E402
from handlers.posts.shortlinks import new_code  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import Click, ShortLink  # noqa: E402

BROWSERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
)
FETCHERS = ("Twitterbot/1.0", "facebookexternalhit/1.1", "http.rb/5.2.0 (Mastodon/4.3.2; +https://m.example/)",
            "Mozilla/5.0 (compatible; Bluesky Cardyb/1.1; +mailto:support@bsky.app)", "TelegramBot (like TwitterBot)")


def seed_links(url: str, count: int) -> list[str]:
    db = Database(url)
    db.migrate()
    now = datetime.now(UTC)
    codes = [new_code() for _ in range(count)]
    with db.engine.begin() as connection:
        connection.execute(insert(ShortLink), [
            {"code": code, "workspace_id": 1, "post_id": 1 + i // 2, "account_id": 1 + i % 2,
             "target": f"https://shop.example/p/{i}?utm_source=x&utm_medium=social&utm_campaign=bench",
             "created_at": now} for i, code in enumerate(codes)])
    db.dispose()
    return codes


def serve(url: str, port: int, ready: Any, stop: Any, results: Any) -> None:
    """(In the server process.) The web app until `stop` is set; then what its writer did."""
    from bot.web.app import WebApp

    async def run() -> None:
        db = Database(url)
        app = WebApp(db, SystemClock(), host="127.0.0.1", port=port, public_url="https://go.bench.test",
                     trust_forwarded_for=True)
        await app.start()
        app.redirects.timings = []
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        stopped = time.perf_counter()
        await app.redirects.drain()
        drained = time.perf_counter() - stopped
        with db.session() as session:
            rows = session.exec(select(func.count()).select_from(Click)).one()
            counted = session.exec(select(func.sum(Click.count))).one()
            flooded = session.exec(select(func.count(), func.sum(Click.count)).where(Click.fetcher == FLOOD)).one()
        timings = sorted(t * 1000 for t in app.redirects.timings or [])
        results.put({"server_p50": percentile(timings, 0.5), "server_p99": percentile(timings, 0.99),
                     "rows": rows, "clicks": counted or 0,
                     "flood_rows": flooded[0] or 0, "flood_clicks": flooded[1] or 0, "drain": drained, "stored": app.redirects.stored})
        await app.stop()
        db.dispose()

    asyncio.run(run())


async def load(port: int, codes: list[str], rate: float, seconds: float,
               connections: int = 32) -> tuple[list[float], int, float]:
    """Open-loop load: (latencies in ms from each request's due time, non-302 answers, run time). A light
    HTTP/1.1 keep-alive client on raw asyncio streams (an HTTP client library would cost this process more CPU
    than the server spends), `connections` of them taking the requests in due order."""
    rng = random.Random(7)
    total = int(rate * seconds)
    addresses = [f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}" for i in range(5_000)]
    requests = []
    for _ in range(total):
        agent = rng.choice(FETCHERS) if rng.random() < 0.2 else rng.choice(BROWSERS)
        requests.append((f"GET /r/{rng.choice(codes)} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {agent}\r\n"
                         f"X-Forwarded-For: {rng.choice(addresses)}\r\n\r\n").encode())
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[int] = asyncio.Queue()

    async def fetch(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        if length:
            await reader.readexactly(length)
        return status

    async def worker(start: float) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while True:
            i = await queue.get()
            if i < 0:
                break
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if await fetch(reader, writer, requests[i]) != 302:
                errors += 1
            latencies.append((time.perf_counter() - due) * 1000)
        writer.close()

    # warm the lookup cache: the first request of a code reads the database
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for n, code in enumerate(codes):  # each from its own address, as people would
        await fetch(reader, writer, (f"GET /r/{code} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {BROWSERS[0]}\r\n"
                                     f"X-Forwarded-For: 10.255.{n // 256 % 256}.{n % 256}\r\n\r\n").encode())
    writer.close()
    await asyncio.sleep(1.0)  # the writer stores the warm-up's clicks before the measured run
    start = time.perf_counter() + 0.5
    workers = [asyncio.create_task(worker(start)) for _ in range(connections)]
    for i in range(total):  # handed out in due order, each to the first free connection
        queue.put_nowait(i)
    for _ in workers:
        queue.put_nowait(-1)
    await asyncio.gather(*workers)
    return latencies, errors, time.perf_counter() - start


def writer_capacity(url: str, count: int = 50_000, batch: int = 1_000) -> float:
    """`ClickCounter.store` rows per second on new clicks (distinct visitors), in the writer's batch size."""
    db = Database(url)
    counter = ClickCounter(db)
    at = datetime.now(UTC) + timedelta(hours=1)  # another minute than the run's: no flood aggregation from it
    hits = [Hit(1 + i % 100, at + timedelta(microseconds=i), f"172.16.{i // 256 % 256}.{i % 256}",
                f"Mozilla/5.0 bench {i}") for i in range(count)]
    counter.rows = _without_flood_limit(counter)  # type: ignore[method-assign]
    started = time.perf_counter()
    stored = 0
    for i in range(0, count, batch):
        stored += counter.store(hits[i:i + batch])
    elapsed = time.perf_counter() - started
    db.dispose()
    return stored / elapsed


def _without_flood_limit(counter: ClickCounter) -> Any:
    """The counter's own rows(), each hit from its own minute's fresh budget: capacity, not the flood rule."""
    real = counter.rows

    def rows(hits: Any) -> Any:
        counter.sources, counter.written = {}, 0
        return real(hits)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--links", type=int, default=1000)
    parser.add_argument("--port", type=int, default=18731)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = scratch_url(args.database_url, tmp)
        codes = seed_links(url, args.links)
        context = mp.get_context("spawn")
        ready, stop, results = context.Event(), context.Event(), context.Queue()
        server = context.Process(target=serve, args=(url, args.port, ready, stop, results))
        server.start()
        if not ready.wait(30):
            server.terminate()
            raise SystemExit("the web app didn't start")
        try:
            latencies, errors, elapsed = asyncio.run(load(args.port, codes, args.rate, args.seconds))
        finally:
            stop.set()
        stored = results.get(timeout=120)
        server.join(30)
        capacity = writer_capacity(url)
    dialect = "postgresql" if url.startswith("postgresql") else "sqlite"
    sent = len(latencies)
    print(f"redirects: {sent:,} requests at {args.rate:,.0f}/s target ({sent / elapsed:,.0f}/s achieved) over "
          f"{elapsed:.1f} s on {args.links:,} links, {dialect}; non-302 answers: {errors}")
    print(f"latency from due time: p50 {percentile(latencies, 0.5):.2f} ms · p99 {percentile(latencies, 0.99):.2f} ms"
          f" · max {max(latencies):.2f} ms")
    print(f"inside the web app (request handler): p50 {stored['server_p50']:.3f} ms · "
          f"p99 {stored['server_p99']:.3f} ms")
    requests = sent + len(codes)
    print(f"clicks stored: {stored['clicks']:,} of {requests:,} requests ({len(codes):,} of them the warm-up; "
          f"{requests - stored['clicks']:,} repeats within 30 minutes, counted once) in {stored['rows']:,} rows "
          f"({stored['rows'] / elapsed:,.0f} rows/s), {stored['flood_clicks']:,} of the clicks in "
          f"{stored['flood_rows']:,} aggregated rows (past {ROWS_PER_MINUTE:,} rows a minute); the writer was done "
          f"{stored['drain'] * 1000:.0f} ms after the last request")
    print(f"writer capacity: {capacity:,.0f} clicks/s stored (ClickCounter.store, batches of 1,000 new clicks)")


if __name__ == "__main__":
    main()
