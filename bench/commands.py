"""Command latency: /draft, /submit, /approve and /queue handled in-process with many posts in the database.

Run: `python bench/commands.py [--posts 100000] [--audiences 10] [--runs 300] [--database-url URL]`
Prints p50/p99/max per command in milliseconds. A throwaway SQLite file unless a URL is given (a PostgreSQL
URL's public schema is emptied first: point it at a scratch database). The benchmark workspace is set up
through commands; the other posts are bulk-inserted (bench/common.py) across it and several other
workspaces, in every state, with deliveries, approvals, audit events and metric snapshots. The benchmark
workspace has `--audiences` audiences (each in its own zone, reached by both accounts) and each draft is aimed at
two of them with a variant for one: a card then renders four deliveries, each with its audience's text, landing
page and language check.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import KEY, percentile, scratch_url, seed  # noqa: E402
from bot.app import Herald  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from handlers.core.chat import Actor, ChatRef, Command

COMMANDS = ("/draft", "/submit", "/approve", "/queue")


class Clock:
    def __init__(self) -> None:
        self.current = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current


ZONES = ("Europe/Madrid", "Europe/Oslo", "America/New_York", "Asia/Tokyo", "Australia/Sydney", "America/Sao_Paulo",
         "Africa/Lagos", "Asia/Kolkata", "Europe/London", "America/Los_Angeles")


async def measure(herald: Herald, runs: int, warmup: int, audiences: int) -> dict[str, list[float]]:
    chat = ChatRef("console", "console", private=True)
    alice, bob = Actor("console", "alice", "alice", username="alice"), Actor("console", "bob", "bob", username="bob")
    timings: dict[str, list[float]] = {name: [] for name in COMMANDS}

    async def timed(name: str, command: Command, keep: bool) -> str:
        start = time.perf_counter()
        reply = await herald.handle(command)
        elapsed = (time.perf_counter() - start) * 1000
        if reply.error:
            raise SystemExit(f"{name} was refused: {reply.text}")
        if keep:
            timings[name].append(elapsed)
        return reply.text

    for n in range(warmup + runs):
        keep = n >= warmup
        to = f" to=audience:a{n % audiences},audience:a{(n + 1) % audiences}" if audiences > 1 else ""
        text = await timed("/draft", Command("draft", alice, chat,
                                             text=f"Benchmark post {n} https://example.com/{n}{to}"), keep)
        post_id = int(text.split("#", 1)[1].split(" ", 1)[0].rstrip("."))
        if audiences > 1:  # a variant for the first audience (not timed: /variant isn't one of the four commands)
            await herald.handle(Command("variant", alice, chat,
                                        text=f"{post_id} audience:a{n % audiences} A tailored version of post {n}"))
        await timed("/submit", Command("submit", alice, chat, text=str(post_id)), keep)
        await timed("/approve", Command("approve", bob, chat, text=str(post_id)), keep)
        await timed("/queue", Command("queue", alice, chat), keep)
    return timings


async def run(url: str, posts: int, runs: int, warmup: int, audiences: int) -> tuple[str, dict[str, list[float]]]:
    clock = Clock()
    settings = load_settings(DATABASE_URL=url, HERALD_SECRET_KEY=KEY, HERALD_SWEEP_SECONDS=3600,
                             HERALD_METRICS_POLL_SECONDS=3600, HERALD_ACCOUNT_CHECK_SECONDS=86400)
    herald = Herald(settings, clock=clock, write=lambda _text: None)
    await herald.start()
    try:
        chat = ChatRef("console", "console", private=True)
        alice = Actor("console", "alice", "alice", username="alice")
        for line in ("setup Bench", "connect sandbox name=bench-x like=x", "connect sandbox name=bench-b like=bluesky",
                     "role bob approver",
                     *(f"audience add a{i} accounts=bench-x,bench-b tz={ZONES[i % len(ZONES)]} lang=en "
                       f"link=https://example.com/a{i}" for i in range(audiences))):
            name, _, rest = line.partition(" ")
            reply = await herald.handle(Command(name, alice, chat, text=rest))
            if reply.error:
                raise SystemExit(f"/{line} was refused: {reply.text}")
        started = time.perf_counter()
        seeded = seed(url, posts, now=clock.now(), into_workspace=1)
        print(f"seeded {seeded.line()} in {time.perf_counter() - started:.1f} s on {herald.db.engine.dialect.name}",
              flush=True)
        return herald.db.engine.dialect.name, await measure(herald, runs, warmup, audiences)
    finally:
        await herald.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--audiences", type=int, default=10, help="audiences of the benchmark workspace")
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=10, help="rounds run first and not counted")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        dialect, timings = await run(scratch_url(args.database_url, tmp), args.posts, args.runs, args.warmup,
                                      args.audiences)
    print(f"{'command':<10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  ({dialect}, {args.posts:,} posts, {args.audiences} audiences, "
          f"{args.runs} runs after {args.warmup} warm-up)")
    for name, values in timings.items():
        print(f"{name:<10} {statistics.median(values):8.2f} {percentile(values, 0.99):8.2f} {max(values):8.2f}")


if __name__ == "__main__":
    asyncio.run(main())
