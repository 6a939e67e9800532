"""Command latency: /draft, /approve and /queue handled in-process with many posts in the database.

Run: `python bench/commands.py [--posts 10000] [--runs 200] [--database-url URL]`
Prints p50/p99/max per command in milliseconds. Uses a throwaway SQLite file unless a URL is given
(a PostgreSQL URL's public schema is emptied first: point it at a scratch database).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert  # noqa: E402
from sqlmodel import select  # noqa: E402

from bot.app import Herald  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from handlers.chat import Actor, ChatRef, Command  # noqa: E402
from storage.models import Account, Delivery, Post  # noqa: E402

KEY = "Zm9yLXRlc3RzLW9ubHktbm90LWEtcmVhbC1rZXktLS0="


class Clock:
    def __init__(self) -> None:
        self.current = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current


def seed(herald: Herald, posts: int) -> None:
    """Bulk-insert `posts` posts over two accounts, a fifth of them scheduled over the next 60 days."""
    with herald.db.session() as session:
        accounts = session.exec(select(Account)).all()
        now = herald.clock.now()
        rows = []
        for n in range(posts):
            scheduled = n % 5 == 0
            rows.append({
                "workspace_id": 1, "author_platform": "console", "author_user_id": "alice", "author_name": "alice",
                "text": f"Seeded post {n} with a little text #campaign", "media": [], "variants": {}, "revision": 1,
                "state": "scheduled" if scheduled else ("published" if n % 5 == 1 else "draft"),
                "due_at": now + timedelta(minutes=10 + n * 5) if scheduled else None,
                "created_at": now, "updated_at": now,
            })
        for start in range(0, len(rows), 5000):
            session.execute(insert(Post), rows[start:start + 5000])
        session.flush()
        ids = list(session.exec(select(Post.id)).all())
        deliveries = [
            {"post_id": pid, "account_id": account.id, "idempotency_key": f"seed-{pid}-{account.id}",
             "state": "pending", "attempts": 0}
            for pid in ids for account in accounts
        ]
        for start in range(0, len(deliveries), 5000):
            session.execute(insert(Delivery), deliveries[start:start + 5000])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def measure(herald: Herald, runs: int) -> dict[str, list[float]]:
    chat = ChatRef("console", "console", private=True)
    alice, bob = Actor("console", "alice", "alice", username="alice"), Actor("console", "bob", "bob", username="bob")
    timings: dict[str, list[float]] = {"/draft": [], "/submit": [], "/approve": [], "/queue": []}

    async def timed(name: str, command: Command) -> str:
        start = time.perf_counter()
        reply = await herald.handle(command)
        timings[name].append((time.perf_counter() - start) * 1000)
        if reply.error:
            raise SystemExit(f"{name} was refused: {reply.text}")
        return reply.text

    for n in range(runs):
        text = await timed("/draft", Command("draft", alice, chat, text=f"Benchmark post {n} https://example.com/{n}"))
        post_id = int(text.split("#", 1)[1].split(" ", 1)[0].rstrip("."))
        await timed("/submit", Command("submit", alice, chat, text=str(post_id)))
        await timed("/approve", Command("approve", bob, chat, text=str(post_id)))
        await timed("/queue", Command("queue", alice, chat))
    return timings


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        if not url.startswith("sqlite"):
            from sqlalchemy import create_engine, text

            engine = create_engine(url)
            with engine.begin() as connection:
                connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
                connection.execute(text("CREATE SCHEMA public"))
            engine.dispose()
        settings = load_settings(DATABASE_URL=url, HERALD_SECRET_KEY=KEY, HERALD_SWEEP_SECONDS=3600,
                                 HERALD_METRICS_POLL_SECONDS=3600)
        herald = Herald(settings, clock=Clock(), write=lambda _text: None)
        await herald.start()
        try:
            chat = ChatRef("console", "console", private=True)
            alice = Actor("console", "alice", "alice", username="alice")
            for line in ("setup Bench", "connect sandbox name=bench-x like=x", "connect sandbox name=bench-b like=bluesky",
                         "role bob approver"):
                name, _, rest = line.partition(" ")
                await herald.handle(Command(name, alice, chat, text=rest))
            started = time.perf_counter()
            seed(herald, args.posts)
            print(f"seeded {args.posts:,} posts in {time.perf_counter() - started:.1f} s "
                  f"on {herald.db.engine.dialect.name}")
            timings = await measure(herald, args.runs)
        finally:
            await herald.stop()
    print(f"{'command':<10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  (runs: {args.runs})")
    for name, values in timings.items():
        print(f"{name:<10} {statistics.median(values):8.2f} {percentile(values, 0.99):8.2f} {max(values):8.2f}")


if __name__ == "__main__":
    asyncio.run(main())
