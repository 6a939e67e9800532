"""Publish lateness: many posts × 3 accounts due at once, published by the real Herald to loopback networks.

Run: `python bench/lateness.py [--posts 1000] [--latency 0.05] [--spread 0] [--budgets open|default]
[--database-url URL] [--peer]`

A fake Mastodon, Bluesky and X (bench/common.py FakeNetwork: aiohttp on 127.0.0.1 in its own process, every create answered
after `--latency` seconds) get one account each, connected through /connect like a team would. The posts
are scheduled (bulk-inserted, approved, one pending delivery per account) for the same instant (or spread
evenly over `--spread` seconds); Herald — bot.app.Herald with its real scheduler, SystemClock, the real
connectors over the shared httpx client, the console chat writing to a sink — publishes them. The fake
servers record when each create arrives. Prints p50/p99/max lateness (arrival − due) per network, the
total time until the last one arrived, and the bound set by the connectors' budgets and the HTTP pool:

- `--budgets open`: the per-account publish budgets are lifted, so only Herald's own overhead and the
  connection pool (httpx max_connections) limit it: bound = ceil(requests / pool) × latency;
- `--budgets default`: the connectors' real budgets (Mastodon 300 / 5 min, Bluesky 1,666 / h, X 100 / 15 min
  per account), each a leaky bucket: an account's first `count` sends go at once, the rest at count/period
  per second, so bound = (N − count) × period / count. Default budgets run until every delivery ends or
  `--timeout`.

Herald's process CPU time from arming the burst to its end is printed too. With `--peer`, the same burst is then
sent by the typical APScheduler 3 scheduler in four variants (bench/peer.py), each against a fresh fake network,
and a table puts Herald beside each: sent, dropped (missed jobs), p50/p99/max lateness, CPU per delivery, and
Herald's p99 over the peer's.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func  # noqa: E402
from sqlmodel import col, select  # noqa: E402

from bench.common import KEY, FakeNetworkProcess, percentile, scratch_url, seed_due  # noqa: E402
from bench.peer import LABELS, VARIANTS, run_peer  # noqa: E402
from bot.app import Herald  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from handlers.core.chat import Actor, ChatRef, Command
from storage.models import Account, Delivery  # noqa: E402

NETWORKS = ("mastodon", "bluesky", "x")
LEAD = 8.0  # seconds between arming the posts and their due time


def pool_size(herald: Herald) -> int:
    """The shared httpx client's max_connections (bot/networks/http.py new_client)."""
    try:
        return int(herald.networks.client._transport._pool._max_connections)  # type: ignore[union-attr]
    except AttributeError:
        return 100


def budgets(herald: Herald) -> dict[str, tuple[tuple[int, float], ...]]:
    return {key: tuple(getattr(herald.networks.get(key), "publish_limits", ())) for key in NETWORKS}


def rate_bound(n: int, limits: tuple[tuple[int, float], ...]) -> float:
    """Seconds for n sends through leaky buckets of (count, period) that start full of room."""
    return max((max(0, n - count) * period / count for count, period in limits), default=0.0)


async def connect(herald: Herald, fake: FakeNetworkProcess) -> dict[str, int]:
    chat = ChatRef("console", "console", private=True)
    alice = Actor("console", "alice", "alice", username="alice")
    lines = (
        "setup Bench",
        "timezone UTC",
        f"connect mastodon name=bench-mastodon base_url={fake.url} access_token=mastodon-token",
        f"connect bluesky name=bench-bluesky handle=bench.test app_password=abcd-efgh-ijkl-mnop base_url={fake.url}",
        f"connect x name=bench-x access_token=x-token base_url={fake.url}",
    )
    for line in lines:
        name, _, rest = line.partition(" ")
        reply = await herald.handle(Command(name, alice, chat, text=rest))
        if reply.error:
            raise SystemExit(f"/{line} was refused: {reply.text}")
    with herald.db.session() as session:
        return {a.network: a.id for a in session.exec(select(Account)).all() if a.id is not None}


async def finished(herald: Herald, post_ids: list[int]) -> Counter[str]:
    with herald.db.session() as session:
        rows = session.exec(
            select(Delivery.state, func.count()).where(col(Delivery.post_id).in_(post_ids)).group_by(Delivery.state)
        ).all()
    return Counter({state: count for state, count in rows})


async def scenario(url: str, args: argparse.Namespace) -> dict[str, Any]:
    fake = FakeNetworkProcess(latency=args.latency)
    await fake.start()
    notices: list[str] = []
    settings = load_settings(DATABASE_URL=url, HERALD_SECRET_KEY=KEY)
    herald = Herald(settings, write=notices.append)
    if args.budgets == "open":
        for key in NETWORKS:
            herald.networks.get(key).publish_limits = ()  # type: ignore[union-attr]
    limits = budgets(herald)
    await herald.start()
    try:
        accounts = await connect(herald, fake)
        now = datetime.now(UTC)
        due0 = (now + timedelta(seconds=LEAD)).replace(microsecond=0)
        step = args.spread / args.posts
        due = [due0 + timedelta(seconds=step * n) for n in range(args.posts)]
        post_ids = seed_due(url, 1, [accounts[k] for k in NETWORKS], due, now=now)
        cpu0 = time.process_time()  # Herald's process CPU from arming the burst to its end (the fake runs apart)
        herald.scheduler.rebuild()  # what the window job (or a restart) does; /schedule arms one by one
        expected = args.posts * len(NETWORKS)
        deadline = time.time() + LEAD + args.timeout
        states: Counter[str] = Counter()
        while time.time() < deadline:
            await asyncio.sleep(0.5)
            states = await finished(herald, post_ids)
            if states["pending"] == 0 and states["sending"] == 0 and time.time() > due0.timestamp():
                break
        ended, cpu = time.time(), time.process_time() - cpu0
        created = await fake.created()
    finally:
        await herald.stop()
        await fake.stop()
    lateness: dict[str, list[float]] = {k: [] for k in NETWORKS}
    for network, arrived, text in created:
        match = re.match(r"#(\d+) ", text)
        if match:
            lateness[network].append(arrived - due[int(match.group(1))].timestamp())
    requests = len(created)
    pool = pool_size(herald)
    bound_pool = math.ceil(expected / pool) * args.latency
    bound_rate = max(rate_bound(args.posts, limits[k]) for k in NETWORKS)
    last = max((arrived for _n, arrived, _t in created), default=ended)
    return {"lateness": lateness, "requests": requests, "expected": expected, "states": states, "limits": limits,
            "bound": max(bound_pool + args.spread, bound_rate) if bound_rate else bound_pool + args.spread,
            "bound_pool": bound_pool, "bound_rate": bound_rate, "pool": pool,
            "total": last - due0.timestamp(), "notices": len(notices), "cpu": cpu}


def report(result: dict[str, Any], args: argparse.Namespace, dialect: str) -> None:
    every = [v for values in result["lateness"].values() for v in values]
    print(f"{args.posts:,} posts × {len(NETWORKS)} accounts due "
          f"{'at the same instant' if not args.spread else f'over {args.spread:g} s'}, {args.latency * 1000:g} ms "
          f"network latency, budgets {args.budgets}, {dialect}")
    print(f"{'network':<10} {'sent':>6} {'p50 s':>8} {'p99 s':>8} {'max s':>8}  budget per account")
    for network, values in result["lateness"].items():
        budget = ", ".join(f"{c}/{p:g}s" for c, p in result["limits"][network]) or "none (lifted)"
        if values:
            print(f"{network:<10} {len(values):>6} {statistics.median(values):8.3f} {percentile(values, 0.99):8.3f} "
                  f"{max(values):8.3f}  {budget}")
        else:
            print(f"{network:<10} {0:>6} {'-':>8} {'-':>8} {'-':>8}  {budget}")
    if every:
        print(f"{'all':<10} {len(every):>6} {statistics.median(every):8.3f} {percentile(every, 0.99):8.3f} "
              f"{max(every):8.3f}")
    print(f"creates received {result['requests']:,} of {result['expected']:,}; deliveries "
          + ", ".join(f"{state} {count:,}" for state, count in sorted(result["states"].items())))
    print(f"total time (due → last create arrived) {result['total']:.2f} s; bound {result['bound']:.2f} s "
          f"(HTTP pool of {result['pool']} × {args.latency * 1000:g} ms: {result['bound_pool']:.2f} s"
          f"{f' + {args.spread:g} s spread' if args.spread else ''}; budgets: {result['bound_rate']:.1f} s)")
    print(f"notices written to the console sink: {result['notices']:,}")
    per = f", {result['cpu'] / len(every) * 1000:.2f} ms per delivery sent" if every else ""
    print(f"Herald's process CPU from arming to the end of the burst: {result['cpu']:.2f} s{per}")


def row(name: str, sent: int, dropped: str, lateness: list[float], cpu_ms: float | None, ratio: str) -> str:
    figures = (f"{statistics.median(lateness):8.3f} {percentile(lateness, 0.99):8.3f} {max(lateness):8.3f}"
               if lateness else f"{'-':>8} {'-':>8} {'-':>8}")
    cpu = f"{cpu_ms:10.2f}" if cpu_ms is not None else f"{'-':>10}"
    return f"{name:<46} {sent:>6} {dropped:>8} {figures} {cpu}  {ratio}"


def report_peers(result: dict[str, Any], peers: list[dict[str, Any]], args: argparse.Namespace, dialect: str) -> None:
    every = [v for values in result["lateness"].values() for v in values]
    herald_p99 = percentile(every, 0.99) if every else math.nan
    version = peers[0]["version"] if peers else "?"
    print()
    print(f"Herald beside the peer: the same {result['expected']:,} deliveries ({args.posts:,} posts × "
          f"{len(NETWORKS)} networks), the same fake network (a fresh one per run), {args.latency * 1000:g} ms latency;")
    print(f"the peer is APScheduler {version} AsyncIOScheduler, one date job per delivery, one POST each "
          f"(httpx, Herald's client settings)")
    print(f"{'scheduler':<46} {'sent':>6} {'dropped':>8} {'p50 s':>8} {'p99 s':>8} {'max s':>8} {'CPU ms/del':>10}"
          f"  Herald p99 / peer p99")
    sent = len(every)
    print(row(f"Herald (budgets {args.budgets}, {dialect})", sent, f"{result['expected'] - sent:,}", every,
              result["cpu"] / sent * 1000 if sent else None, ""))
    for peer in peers:
        lateness = peer["lateness"]
        ratio = f"{herald_p99 / percentile(lateness, 0.99):.2f}" if lateness else "- (peer sent none)"
        name = f"peer: {peer['store']}, {LABELS[peer['grace']]}"
        dropped = f"{peer['missed']:,}" + (f" +{peer['errors']} err" if peer["errors"] else "")
        print(row(name, peer["sent"], dropped, lateness,
                  peer["burst_cpu"] / peer["sent"] * 1000 if peer["sent"] else None, ratio))
    print("CPU ms/del: the process's CPU time from the end of arming to the end of the burst, per delivery sent "
          "(the fake network runs in its own process).")
    for peer in peers:
        late = "; ARMED AFTER THE DUE INSTANT: figures not comparable" if peer["armed_late"] else ""
        late += f"; gave up after --timeout {args.timeout:g} s" if peer["timed_out"] else ""
        print(f"peer {peer['store']}, {LABELS[peer['grace']]}: arming {peer['expected']:,} add_job "
              f"{peer['arm_s']:.2f} s ({peer['arm_cpu'] / peer['expected'] * 1000:.2f} ms CPU each, not counted "
              f"above); executed {peer['executed']:,}, missed {peer['missed']:,}, errors {peer['errors']:,}{late}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--posts", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds each create takes to answer")
    parser.add_argument("--spread", type=float, default=0.0, help="due times spread evenly over this many seconds")
    parser.add_argument("--budgets", choices=("open", "default"), default="open")
    parser.add_argument("--timeout", type=float, default=900.0, help="give up this long after the due time")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--peer", action="store_true",
                        help="then send the same burst with the typical APScheduler 3 scheduler (bench/peer.py)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = scratch_url(args.database_url, tmp)
        result = await scenario(url, args)
    dialect = "postgresql" if url.startswith("postgresql") else "sqlite"
    report(result, args, dialect)
    if args.peer:
        peers = []
        for store, grace in VARIANTS:
            peers.append(await run_peer(store, grace, posts=args.posts, spread=args.spread, latency=args.latency,
                                        timeout=args.timeout, lead=LEAD))
        report_peers(result, peers, args, dialect)


if __name__ == "__main__":
    asyncio.run(main())
