"""Start-up: time and memory for Herald to start with many scheduled posts in the database.

Run: `python bench/startup.py [--posts 100000] [--database-url URL]`
Seeds the posts (all scheduled, due over the next `--days` (60), across several workspaces, with their deliveries
and approvals), then starts Herald in a fresh process so the seeding doesn't count: `Herald.start()`
migrates, takes the worker lock, settles interrupted sends, rebuilds the schedule and sweeps once. Prints
the start time, the peak RSS of that process (and what it was before start), and how many posts were armed.
A throwaway SQLite file unless a URL is given (a PostgreSQL URL's public schema is emptied first).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import KEY, scratch_url, seed  # noqa: E402


def rss_mb() -> float:
    """The current resident set size, from /proc (Linux)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


async def child(url: str) -> None:
    from bot.app import Herald
    from bot.settings import load_settings

    settings = load_settings(DATABASE_URL=url, HERALD_SECRET_KEY=KEY)
    herald = Herald(settings, write=lambda _text: None)
    before = rss_mb()
    started = time.perf_counter()
    await herald.start()
    elapsed = time.perf_counter() - started
    result = {"seconds": elapsed, "rss_before_mb": before, "rss_after_mb": rss_mb(), "peak_rss_mb": peak_rss_mb(),
              "armed": len(herald.scheduler.armed()), "jobs": len(herald.scheduler.aps.get_jobs()),
              "dialect": herald.db.engine.dialect.name}
    await herald.stop()
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3, help="start-ups measured (fresh process each)")
    parser.add_argument("--days", type=float, default=60.0, help="the posts are due over this many days")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(child(args.child))
        return
    with tempfile.TemporaryDirectory() as tmp:
        url = scratch_url(args.database_url, tmp)
        started = time.perf_counter()
        seeded = seed(url, args.posts, now=datetime.now(UTC), mix={"scheduled": 1},
                      spread=timedelta(days=args.days))
        print(f"seeded {seeded.line()} in {time.perf_counter() - started:.1f} s", flush=True)
        results = []
        for _ in range(args.runs):
            out = subprocess.run([sys.executable, __file__, "--child", url], check=True, capture_output=True, text=True)
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{'run':<4} {'start s':>8} {'peak RSS MB':>12} {'RSS before MB':>14} {'armed':>8} {'jobs':>6}  "
          f"({results[0]['dialect']}, {args.posts:,} scheduled posts due over {args.days:g} days)")
    for n, r in enumerate(results, 1):
        print(f"{n:<4} {r['seconds']:8.2f} {r['peak_rss_mb']:12.1f} {r['rss_before_mb']:14.1f} {r['armed']:>8,} "
              f"{r['jobs']:>6,}")


if __name__ == "__main__":
    main()
