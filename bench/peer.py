"""The peer baseline of `bench/lateness.py --peer`: the scheduler a typical Python chat bot uses, on the same burst.

The peer is what python-telegram-bot's JobQueue does: an APScheduler 3 `AsyncIOScheduler` (the version Herald
itself depends on) with one `date` job per delivery, due at the delivery's instant, each job making one POST
to the fake network's create endpoint (the same request Herald's connector makes: Mastodon `POST
/api/v1/statuses`, Bluesky `com.atproto.repo.createRecord` after one `createSession` at start, X `POST
/2/tweets`) over an httpx client built by Herald's own `bot.networks.http.new_client()` (100 connections, 20
kept alive, the same timeouts). Four variants:

- job store: `MemoryJobStore`, or `SQLAlchemyJobStore` on a new SQLite file (jobs survive a restart, as
  Herald's schedule does);
- misfire: APScheduler's default (`misfire_grace_time` 1 s: a job that starts more than 1 s after its run time
  is dropped as missed), or tuned by hand: `misfire_grace_time=None` and every send behind one
  `asyncio.Semaphore(96)` (Herald's 96 send slots).

Each variant runs in a process of its own (so its CPU time is its own: `time.process_time()` over the run)
against a fake network started fresh for it. The jobs are added to a paused scheduler and the scheduler
resumed once all are in the store; the arming (one `add_job` each, a committed INSERT on SQLite) is measured
apart and not counted in the burst. APScheduler's log is set to ERROR: its one warning per missed job would
otherwise be thousands of lines on stderr.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NETWORKS = ("mastodon", "bluesky", "x")
SLOTS = 96
VARIANTS = (("memory", "default"), ("memory", "tuned"), ("sqlite", "default"), ("sqlite", "tuned"))
LABELS = {"default": "default grace (1 s)", "tuned": "grace None + Semaphore(96)"}

_peer: dict[str, Any] = {}  # the child's client, fake network URL, Bluesky token and semaphore


def text_of(n: int) -> str:
    """Post n's text, as bench.common.seed_due writes it (the fake network finds n from the leading '#n ')."""
    return f"#{n} Benchmark post {n} #bench"


async def deliver(network: str, n: int) -> None:
    """One job: one create on one network (a module-level coroutine, so SQLAlchemyJobStore can store it)."""
    semaphore: asyncio.Semaphore | None = _peer["semaphore"]
    if semaphore is None:
        await _post(network, n)
    else:
        async with semaphore:
            await _post(network, n)


async def _post(network: str, n: int) -> None:
    client, url, text = _peer["client"], _peer["url"], text_of(n)
    if network == "mastodon":
        answer = await client.post(f"{url}/api/v1/statuses", json={"status": text, "visibility": "public"},
                                   headers={"Authorization": "Bearer mastodon-token",
                                            "Idempotency-Key": f"peer-{n}-mastodon"})
    elif network == "bluesky":
        record = {"$type": "app.bsky.feed.post", "text": text,
                  "createdAt": datetime.now(UTC).isoformat().replace("+00:00", "Z")}
        answer = await client.post(f"{url}/xrpc/com.atproto.repo.createRecord",
                                   json={"repo": "did:plc:bench", "collection": "app.bsky.feed.post",
                                         "rkey": f"peer{n}", "record": record},
                                   headers={"Authorization": f"Bearer {_peer['bluesky_token']}"})
    else:
        answer = await client.post(f"{url}/2/tweets", json={"text": text},
                                   headers={"Authorization": "Bearer x-token"})
    answer.raise_for_status()


async def run_variant(url: str, store: str, grace: str, posts: int, spread: float, lead: float,
                      timeout: float) -> dict[str, Any]:
    """In the child process: arm posts × 3 date jobs, let them run, count what happened."""
    import apscheduler
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobExecutionEvent
    from apscheduler.jobstores.memory import MemoryJobStore
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from bot.networks.http import new_client

    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    client = new_client()
    session = await client.post(f"{url}/xrpc/com.atproto.server.createSession",
                                json={"identifier": "bench.test", "password": "abcd-efgh-ijkl-mnop"})
    _peer.update(client=client, url=url, bluesky_token=session.json()["accessJwt"],
                 semaphore=asyncio.Semaphore(SLOTS) if grace == "tuned" else None)
    expected = posts * len(NETWORKS)
    counts = {"executed": 0, "missed": 0, "errors": 0}
    done = asyncio.Event()

    def listen(event: JobExecutionEvent) -> None:
        key = {EVENT_JOB_EXECUTED: "executed", EVENT_JOB_MISSED: "missed"}.get(event.code, "errors")
        counts[key] += 1
        if sum(counts.values()) >= expected:
            done.set()

    with tempfile.TemporaryDirectory() as tmp:
        jobstore = MemoryJobStore() if store == "memory" else SQLAlchemyJobStore(url=f"sqlite:///{tmp}/jobs.db")
        scheduler = AsyncIOScheduler(jobstores={"default": jobstore}, timezone=UTC,
                                     job_defaults={"misfire_grace_time": None} if grace == "tuned" else {})
        scheduler.add_listener(listen, EVENT_JOB_EXECUTED | EVENT_JOB_MISSED | EVENT_JOB_ERROR)
        scheduler.start(paused=True)
        if store == "sqlite":  # a committed INSERT per job: give the arming time to finish before the due instant
            lead += 1.5 * expected * calibrate(AsyncIOScheduler(timezone=UTC), SQLAlchemyJobStore(
                url=f"sqlite:///{tmp}/calibrate.db"))
        due0 = (datetime.now(UTC) + timedelta(seconds=lead)).replace(microsecond=0)
        step = spread / posts
        arm_wall, arm_cpu = time.time(), time.process_time()
        for n in range(posts):
            at = due0 + timedelta(seconds=step * n)
            for network in NETWORKS:
                scheduler.add_job(deliver, "date", run_date=at, args=(network, n))
        armed_wall, armed_cpu = time.time(), time.process_time()
        scheduler.resume()
        try:
            await asyncio.wait_for(done.wait(), timeout=max(0.0, due0.timestamp() - time.time()) + timeout)
            timed_out = False
        except TimeoutError:
            timed_out = True
        ended_wall, ended_cpu = time.time(), time.process_time()
        scheduler.shutdown(wait=False)
    await client.aclose()
    return {"due0": due0.timestamp(), "expected": expected, **counts, "version": apscheduler.__version__,
            "arm_s": armed_wall - arm_wall, "arm_cpu": armed_cpu - arm_cpu, "armed_late": armed_wall > due0.timestamp(),
            "burst_cpu": ended_cpu - armed_cpu, "ended": ended_wall, "timed_out": timed_out}


def calibrate(scheduler: Any, jobstore: Any, jobs: int = 100) -> float:
    """Seconds one add_job takes on this job store (to choose how far ahead the burst is due)."""
    scheduler.add_jobstore(jobstore)
    scheduler.start(paused=True)
    at = datetime.now(UTC) + timedelta(hours=1)
    started = time.perf_counter()
    for n in range(jobs):
        scheduler.add_job(deliver, "date", run_date=at, args=("x", n))
    seconds = (time.perf_counter() - started) / jobs
    scheduler.shutdown(wait=False)
    return seconds


def child(argv: list[str]) -> None:
    url, store, grace, posts, spread, lead, timeout = argv
    result = asyncio.run(run_variant(url, store, grace, int(posts), float(spread), float(lead), float(timeout)))
    print(json.dumps(result), flush=True)


async def run_peer(store: str, grace: str, *, posts: int, spread: float, latency: float, timeout: float,
                   lead: float) -> dict[str, Any]:
    """In the benchmark's process: a fresh fake network, the variant in a child process, the arrivals read back."""
    from bench.common import FakeNetworkProcess

    fake = FakeNetworkProcess(latency=latency)
    await fake.start()
    try:
        code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); from bench.peer import child; child(sys.argv[1:])"
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, fake.url, store, grace, str(posts), str(spread), str(lead), str(timeout),
            stdout=asyncio.subprocess.PIPE, cwd=str(ROOT))
        out, _ = await process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"the peer ({store}, {grace}) failed with exit code {process.returncode}")
        result = json.loads(out.decode().strip().splitlines()[-1])
        created = await fake.created()
    finally:
        await fake.stop()
    step = spread / posts
    lateness: list[float] = []
    for _network, arrived, text in created:
        n = int(text[1:].split(" ", 1)[0])
        lateness.append(arrived - (result["due0"] + step * n))
    result.update(store=store, grace=grace, lateness=lateness, sent=len(created))
    return result
