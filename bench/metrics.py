"""Metrics refresh at scale: 10,000 published deliveries read by Herald's real poll against loopback X and Mastodon.

Run: `python bench/metrics.py [--deliveries 10000] [--accounts 8] [--latency 0.05] [--hours 24] [--database-url URL]`

Half the accounts are X accounts, half Mastodon ones, each connected to a loopback server in a process of its
own (aiohttp on 127.0.0.1, every read answered after `--latency` seconds) that speaks X's `GET /2/tweets?ids=`
(100 ids a call) and Mastodon's `GET /api/v1/statuses?id[]=` (20 a call) and counts the requests. The
deliveries (bulk-inserted: published posts, one sent delivery each, spread evenly over the accounts, sent over
the last 30 days) are then read by `handlers.engagement.metrics.poll_metrics` — claims, read budgets, the connectors,
snapshot inserts and the next reading times — on a fake clock:

1. full refresh: every delivery due at once; rounds run until none is due. Prints per round: wall time, readings
   stored, requests made, and the time spent inside the database (every statement, measured at the cursor);
2. steady state: then `--hours` of rounds one simulated minute apart (HERALD_METRICS_POLL_SECONDS' default),
   each delivery read again on the decaying cadence: totals, and the slowest round.

A throwaway SQLite file unless `--database-url` names one (a PostgreSQL URL's public schema is emptied first).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp import web  # noqa: E402
from sqlalchemy import event, func, insert, select, text  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from bench.common import KEY, scratch_url  # noqa: E402
from bot.app import Herald  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from handlers.engagement.metrics import poll_metrics
from storage.models import Account, Delivery, Post, Workspace  # noqa: E402

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
BATCH = 5_000


# -- the loopback networks (run in a child process) -------------------------------------------------------------


class MetricsServer:
    """X and Mastodon reads with deterministic, growing numbers; counts every request by route."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.requests: Counter[str] = Counter()
        self.app = web.Application()
        self.app.router.add_get("/2/users/me", self.x_me)
        self.app.router.add_get("/2/tweets", self.x_tweets)
        self.app.router.add_get("/api/v1/accounts/verify_credentials", self.mastodon_me)
        self.app.router.add_get("/api/v1/statuses", self.mastodon_statuses)
        self.app.router.add_get("/_requests", self.counts)

    async def answer(self, route: str, body: Any) -> web.Response:
        self.requests[route] += 1
        await asyncio.sleep(self.latency)
        return web.json_response(body)

    async def x_me(self, _request: web.Request) -> web.Response:
        return await self.answer("x users/me", {"data": {"id": "1", "username": "bench",
                                                         "public_metrics": {"followers_count": 5000}}})

    async def x_tweets(self, request: web.Request) -> web.Response:
        ids = request.query.get("ids", "").split(",")
        n = self.requests["x tweets"]
        return await self.answer("x tweets", {"data": [{"id": i, "text": "bench", "public_metrics": {
            "like_count": n % 50, "reply_count": 1, "retweet_count": 2, "quote_count": 0, "bookmark_count": 1,
            "impression_count": 1000 + n}, "non_public_metrics": {"url_link_clicks": 3}} for i in ids]})

    async def mastodon_me(self, _request: web.Request) -> web.Response:
        return await self.answer("mastodon verify_credentials", {"id": "1", "username": "bench", "followers_count": 800})

    async def mastodon_statuses(self, request: web.Request) -> web.Response:
        n = self.requests["mastodon statuses"]
        return await self.answer("mastodon statuses", [
            {"id": i, "url": f"https://m.example/@bench/{i}", "favourites_count": n % 30, "reblogs_count": 1,
             "replies_count": 2} for i in request.query.getall("id[]", [])])

    async def counts(self, _request: web.Request) -> web.Response:
        return web.json_response(dict(self.requests))


async def serve(latency: float) -> None:
    server = MetricsServer(latency)
    runner = web.AppRunner(server.app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"http://127.0.0.1:{port}", flush=True)
    await asyncio.Event().wait()  # until terminated


class ServerProcess:
    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.url = ""
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        root = str(Path(__file__).resolve().parent.parent)
        code = (f"import sys, asyncio; sys.path.insert(0, {root!r}); from bench.metrics import serve; "
                f"asyncio.run(serve({self.latency!r}))")
        self.process = await asyncio.create_subprocess_exec(sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE)
        assert self.process.stdout is not None
        self.url = (await asyncio.wait_for(self.process.stdout.readline(), timeout=30)).decode().strip()

    async def requests(self) -> Counter[str]:
        import httpx

        async with httpx.AsyncClient(timeout=60) as client:
            return Counter((await client.get(f"{self.url}/_requests")).json())

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()


# -- measuring -----------------------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.current = NOW

    def now(self) -> datetime:
        return self.current


@dataclass
class DbTimer:
    """Time spent executing SQL (between the cursor's before/after events) and the statements run."""

    seconds: float = 0.0
    statements: int = 0
    _started: list[float] = field(default_factory=list)

    def attach(self, engine: Engine) -> None:
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, *_args: Any) -> None:
        self._started.append(time.perf_counter())

    def _after(self, *_args: Any) -> None:
        self.seconds += time.perf_counter() - self._started.pop()
        self.statements += 1


@dataclass
class Round:
    wall: float
    db: float
    statements: int
    readings: int
    requests: int


def seed(herald: Herald, url: str, deliveries: int, accounts: int) -> None:
    """One workspace, `accounts` accounts (X and Mastodon in turn) on the loopback server at `url`, and
    `deliveries` published posts with one sent delivery each, all due for a reading now."""
    engine = herald.db.engine
    post_t, del_t = Post.__table__, Delivery.__table__  # type: ignore[attr-defined]
    with herald.db.session() as session:
        workspace = Workspace(name="Bench", timezone="Europe/Paris", created_at=NOW)
        session.add(workspace)
        session.flush()
        ws_id = workspace.id
        team = []
        for n in range(accounts):
            network = ("x", "mastodon")[n % 2]
            team.append(Account(workspace_id=ws_id or 0, network=network, name=f"bench-{network}-{n}", base_url=url,
                                credentials=herald.ctx.secrets.seal({"access_token": "bench-token"}), created_at=NOW))
        session.add_all(team)
        session.flush()
        ids = [a.id for a in team]
    first_post = _next_id(engine, post_t)
    post_rows, delivery_rows = [], []
    for n in range(deliveries):
        sent = NOW - timedelta(days=30) * (n + 0.5) / deliveries
        post_rows.append({
            "id": first_post + n, "version": 1, "workspace_id": ws_id, "author_platform": "console",
            "author_user_id": "alice", "author_name": "alice", "text": f"Post {n}", "link": None, "campaign": None,
            "media": [], "variants": {}, "revision": 1, "sent_revision": 1, "state": "published", "due_at": sent,
            "due_tz": "UTC", "held_note": None, "published_at": sent, "created_at": sent, "updated_at": sent,
        })
        delivery_rows.append({
            "post_id": first_post + n, "account_id": ids[n % accounts], "state": "sent",
            "idempotency_key": f"metrics-bench-{n}", "remote_id": str(10_000_000 + n), "attempts": 1,
            "auto_attempts": 1, "claimed_at": sent, "claimed_by": "bench", "sent_at": sent,
            "metrics_due_at": NOW, "updated_at": sent, "resume": {},
        })
    with engine.begin() as connection:
        for rows, table in ((post_rows, post_t), (delivery_rows, del_t)):
            for start in range(0, len(rows), BATCH):
                connection.execute(insert(table), rows[start:start + BATCH])
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("SELECT setval(pg_get_serial_sequence('post', 'id'), (SELECT MAX(id) FROM post))"))
            connection.execute(text("ANALYZE"))


def _next_id(engine: Engine, table: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()) + 1


def due_now(herald: Herald, now: datetime) -> int:
    with herald.db.engine.connect() as connection:
        return int(connection.execute(
            select(func.count()).select_from(Delivery.__table__)  # type: ignore[attr-defined]
            .where(Delivery.__table__.c.metrics_due_at <= now)  # type: ignore[attr-defined]
        ).scalar_one())


async def one_round(herald: Herald, server: ServerProcess, timer: DbTimer, before: int) -> tuple[Round, int]:
    db0, st0 = timer.seconds, timer.statements
    start = time.perf_counter()
    readings = await poll_metrics(herald.ctx)
    wall = time.perf_counter() - start
    total = sum((await server.requests()).values())
    return Round(wall, timer.seconds - db0, timer.statements - st0, readings, total - before), total


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=10_000)
    parser.add_argument("--accounts", type=int, default=8, help="half X, half Mastodon")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds each read takes to answer")
    parser.add_argument("--hours", type=float, default=24.0, help="simulated hours of steady-state rounds")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    folder = tempfile.mkdtemp(prefix="herald-metrics-bench-")
    url = scratch_url(args.database_url, folder)
    clock = Clock()
    herald = Herald(load_settings(DATABASE_URL=url, HERALD_SECRET_KEY=KEY, HERALD_WORKER_ID="bench"),
                    clock=clock, write=lambda _text: None)
    herald.db.migrate()
    server = ServerProcess(args.latency)
    await server.start()
    try:
        seed(herald, server.url, args.deliveries, args.accounts)
        timer = DbTimer()
        timer.attach(herald.db.engine)
        dialect = herald.db.engine.dialect.name
        print(f"{args.deliveries:,} published deliveries on {args.accounts} accounts (X and Mastodon), {dialect}, "
              f"reads answered after {ms(args.latency)}")

        print("\n1. full refresh: every delivery due at once")
        requests = 0
        rounds: list[Round] = []
        while due_now(herald, clock.now()):
            result, requests = await one_round(herald, server, timer, requests)
            rounds.append(result)
            print(f"   round {len(rounds)}: {result.readings:,} readings, {result.requests:,} requests, "
                  f"wall {ms(result.wall)}, database {ms(result.db)} ({result.statements:,} statements)")
            if not result.readings:
                print("   (nothing read: budgets spent; stopping)")
                break
        x_calls = math.ceil(args.deliveries / args.accounts / 100) + 1
        masto_calls = math.ceil(args.deliveries / args.accounts / 20) + 1
        print(f"   fewest requests possible in one round: {(x_calls + masto_calls) * args.accounts // 2:,} "
              f"(per account: X {x_calls} = ⌈ids/100⌉ + followers, Mastodon {masto_calls} = ⌈ids/20⌉ + followers)")
        by_route = await server.requests()
        print("   requests by route: " + ", ".join(f"{k} {v:,}" for k, v in sorted(by_route.items())))

        if args.hours > 0:
            print(f"\n2. steady state: {args.hours:g} simulated hours of rounds one minute apart")
            steady: list[Round] = []
            for _ in range(int(args.hours * 60)):
                clock.current += timedelta(minutes=1)
                result, requests = await one_round(herald, server, timer, requests)
                steady.append(result)
            busy = [r for r in steady if r.readings]
            idle = [r for r in steady if not r.readings]
            worst = max(steady, key=lambda r: r.wall)
            print(f"   {len(steady):,} rounds: {sum(r.readings for r in steady):,} readings, "
                  f"{sum(r.requests for r in steady):,} requests, wall {sum(r.wall for r in steady):.1f} s, "
                  f"database {sum(r.db for r in steady):.1f} s")
            print(f"   rounds that read something: {len(busy):,}, on average {ms(sum(r.wall for r in busy) / max(1, len(busy)))} "
                  f"wall / {ms(sum(r.db for r in busy) / max(1, len(busy)))} database")
            print(f"   rounds with nothing due: {len(idle):,}, on average {ms(sum(r.wall for r in idle) / max(1, len(idle)))} "
                  f"wall / {ms(sum(r.db for r in idle) / max(1, len(idle)))} database")
            print(f"   slowest round: {worst.readings:,} readings, {worst.requests:,} requests, wall {ms(worst.wall)}, "
                  f"database {ms(worst.db)}")
    finally:
        await server.stop()
        if herald.networks.client is not None:
            await herald.networks.client.aclose()
        herald.db.dispose()


if __name__ == "__main__":
    asyncio.run(main())
