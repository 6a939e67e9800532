"""Several Herald workers on one database: every due post published exactly once, one process receives each
chat platform's updates (the others send only and take over when it stops), account checks done once.

The first test runs two real `python -m bot` headless workers (HERALD_CONSOLE=false) against loopback fake
networks served by this test process, on a SQLite file and (with HERALD_TEST_POSTGRES_URL) on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import text, update
from sqlmodel import select

from bot.app import Herald, chat_fronts
from bot.chats.discord import DiscordFront
from bot.chats.telegram import TelegramFront
from bot.leader import Leadership
from bot.settings import SettingsError, load_settings
from bot.worker_lock import ProcessLock, advisory_key, migration_lock
from handlers.core.chat import Button, ChatAddress, Reply
from handlers.core.ports import AccountView
from handlers.workspace.health import check_accounts
from storage.db import Database
from storage.models import Account, Delivery, Post
from tests.conftest import POSTGRES_ENV, TEST_KEY, FakeClock, Team, fresh_postgres, make_herald, postgres_url
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.loopback import Changes
from tests.fakes.mastodon_api import FakeMastodon
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.x_api import FakeX
from tests.networks import RecordingNetwork

ROOT = Path(__file__).resolve().parent.parent
POSTS = 40
NO_POSTGRES = f"no PostgreSQL server given: set {POSTGRES_ENV}=postgresql+psycopg://postgres@127.0.0.1:5432/<db>"


def database(engine: str, tmp_path: Path) -> str:
    if engine == "sqlite":
        return f"sqlite:///{tmp_path / 'herald.db'}"
    url = postgres_url()
    if url is None:
        pytest.skip(NO_POSTGRES)
    return fresh_postgres(url)


engines = pytest.mark.parametrize("engine", ["sqlite", "postgresql"])


# --- two `python -m bot` workers ---------------------------------------------------------------


class Worker:
    """A headless `python -m bot` with its own HERALD_WORKER_ID; its stdout is read line by line as it comes
    (each line wakes `changes`), its stderr goes to a file."""

    def __init__(self, db_url: str, worker_id: str, cwd: Path, changes: Changes, *, name: str | None = None,
                 **settings: str) -> None:
        self.worker_id = worker_id
        self.db_url, self.cwd, self.changes, self.settings = db_url, cwd, changes, settings
        self.err_path = cwd / f"{name or worker_id}.err"
        self.stdout = ""
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> Worker:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("HERALD_", "DATABASE_URL", "TELEGRAM_", "DISCORD_"))}
        env.update(PYTHONPATH=str(ROOT), DATABASE_URL=self.db_url, HERALD_SECRET_KEY=TEST_KEY,
                   HERALD_CONSOLE="false", HERALD_WORKER_ID=self.worker_id, HERALD_SWEEP_SECONDS="5",
                   **self.settings)
        with open(self.err_path, "w") as err:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", cwd=self.cwd, env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=err)
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for line in self.process.stdout:
            self.stdout += line.decode()
            self.changes.changed()

    @property
    def stderr(self) -> str:
        return self.err_path.read_text()

    async def stop(self) -> int:
        """SIGTERM, then the exit code once it has stopped (and its output is read to the end)."""
        if self.process is None:
            return 0
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(self.process.wait(), 15)
        except TimeoutError:
            self.process.kill()
            code = -9
        if self._reader is not None:
            await self._reader
        return code


async def seed(db_url: str, masto: list[FakeMastodon], x: FakeX) -> list[int]:
    """A workspace with three accounts on real connectors (two Mastodons, X) and POSTS scheduled posts,
    written through the console chat of an in-process Herald, which then stops."""
    herald = make_herald(db_url, FakeClock(datetime.now(UTC)), HERALD_SECRET_KEY=TEST_KEY)  # the workers' key
    await herald.start()
    team = Team(herald, FakeClock(), db_url)
    try:
        await team.say("alice", "/setup Acme")
        await team.say("alice", "/policy approvals=0")
        for n, server in enumerate(masto, start=1):
            out = await team.say("alice", f"/connect mastodon name=masto{n} base_url={server.url} "
                                          "access_token=masto-token")
            assert "Connected" in out, out
        assert "Connected" in await team.say("alice", f"/connect x name=brand-x base_url={x.url} access_token=tok-1")
        ids = []
        for n in range(POSTS):
            out = await team.say("alice", f"/draft Launch note {n}: the spring collection is in the shops")
            post_id = int(out.split("#", 1)[1].split(" ", 1)[0].rstrip("."))
            assert "scheduled" in await team.say("alice", f"/schedule {post_id} in 1 hour")
            ids.append(post_id)
        return ids
    finally:
        await herald.stop()


@engines
async def test_two_worker_processes_publish_every_due_post_exactly_once(engine: str, tmp_path: Path) -> None:
    db_url = database(engine, tmp_path)
    masto = [FakeMastodon(), FakeMastodon()]
    x = FakeX()
    for server in (*masto, x):
        await server.start()
    workers: list[Worker] = []
    try:
        ids = await seed(db_url, masto, x)
        # due within a few seconds from now, a few at a time (the workers start in the meantime)
        db = Database(db_url)
        start = datetime.now(UTC) + timedelta(seconds=4)
        with db.session() as session:
            for n, post_id in enumerate(ids):
                session.execute(update(Post).where(Post.id == post_id)  # type: ignore[arg-type]
                                .values(due_at=start + timedelta(seconds=0.1 * n)))
        output = Changes()
        workers = [await Worker(db_url, "w1", tmp_path, output).start(),
                   await Worker(db_url, "w2", tmp_path, output).start()]

        def told() -> set[int]:
            """The posts whose outcome (published, partly, failed) the workers told the team so far."""
            said = workers[0].stdout + workers[1].stdout
            return {int(n) for n in re.findall(r"^(?:📣|⚠️|❌) #(\d+) ", said, re.M)}

        # every post settled and its notice said (after the post's state is stored), whichever worker did it
        await output.wait_until(lambda: told() >= set(ids), 60, "every post's outcome notice")
        codes = [await w.stop() for w in workers]
        assert codes == [0, 0], [w.stderr[-3000:] for w in workers]

        with db.session() as session:
            posts = session.exec(select(Post)).all()
            rows = session.exec(select(Delivery, Account).where(Delivery.account_id == Account.id)).all()
        db.dispose()
        assert {p.state for p in posts} == {"published"}
        assert len(rows) == POSTS * 3 and {d.state for d, _a in rows} == {"sent"}
        # every delivery created exactly once on its network
        for n, server in enumerate(masto, start=1):
            keys = Counter(s.header("Idempotency-Key") for s in server.requests("POST", "/api/v1/statuses"))
            assert set(keys.values()) == {1}, keys.most_common(3)  # never sent twice, even with a key
            ours = {d.idempotency_key: d.remote_id for d, a in rows if a.name == f"masto{n}"}
            assert set(keys) == set(ours) and len(server.statuses) == POSTS
            assert set(ours.values()) == set(server.statuses)
        assert len(x.requests("POST", "/2/tweets")) == POSTS and len(x.tweets) == POSTS
        assert {d.remote_id for d, a in rows if a.name == "brand-x"} == set(x.tweets)
        # the team heard of each post once, from whichever worker settled it
        said = workers[0].stdout + workers[1].stdout
        for post_id in ids:
            assert said.count(f"📣 #{post_id} is published on all 3 account(s)") == 1, post_id
        split = Counter(d.claimed_by for d, _a in rows)
        print(f"\n{engine}: deliveries claimed per worker: {dict(split)}")
        assert set(split) <= {"w1", "w2"}
        assert split["w1"] > 0 and split["w2"] > 0, split  # both did some of the work
        for worker in workers:
            assert "Herald is running as a headless worker" in worker.stdout
            assert "Traceback" not in worker.stderr, worker.stderr[-3000:]
    finally:
        for worker in workers:
            await worker.stop()
        for server in (*masto, x):
            await server.close()


@engines
def test_workers_starting_together_on_an_empty_database_migrate_one_after_another(engine: str, tmp_path: Path) -> None:
    db_url = database(engine, tmp_path)
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def start() -> None:
        db = Database(db_url)
        sqlite_path = load_settings(DATABASE_URL=db_url).sqlite_path()
        try:
            barrier.wait()
            with migration_lock(db.engine, sqlite_path):
                db.migrate()
        except BaseException as exc:
            errors.append(exc)
        finally:
            db.dispose()

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    db = Database(db_url)
    with db.session() as session:
        assert session.exec(select(Post)).all() == []  # the schema is there, once
    db.dispose()


# --- a worker's id after a dropped database connection ---------------------------------------------


def worker_lock_pid(db: Database, worker_id: str) -> int | None:
    """The PostgreSQL backend holding the HERALD_WORKER_ID lock of `worker_id`, if any."""
    with db.engine.connect() as connection:
        return connection.execute(
            text("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                 "AND ((classid::bigint << 32) | objid::bigint) = :key"),
            {"key": advisory_key(f"herald-worker:{worker_id}")},
        ).scalar()


def cut_connection(db: Database, pid: int) -> None:
    """End a backend as a server restart or a network cut would."""
    with db.engine.connect() as admin:
        admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


async def running(worker: Worker) -> None:
    await worker.start()
    assert worker.process is not None
    await worker.changes.wait_until(
        lambda: "Herald is running" in worker.stdout or (worker.process and worker.process.returncode is not None),
        60, f"{worker.worker_id} to start")
    assert worker.process.returncode is None, worker.stderr


async def exited(worker: Worker, timeout: float = 60) -> int:
    """The worker's exit code, once it has stopped by itself (`timeout` bounds a failure)."""
    assert worker.process is not None
    return await asyncio.wait_for(worker.process.wait(), timeout)


async def poll_until(condition: Any, timeout: float, what: str) -> None:
    """Another process's state in the database, read again every 0.1 s until `condition()` holds: that
    process tells this one nothing else (`timeout` bounds a failure)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def test_a_worker_whose_lock_connection_dropped_takes_its_id_again(tmp_path: Path) -> None:
    db_url = database("postgresql", tmp_path)
    db = Database(db_url)
    first = Worker(db_url, "w1", tmp_path, Changes(), HERALD_LOCK_CHECK_SECONDS="0.2")
    second: Worker | None = None
    try:
        await running(first)
        pid = worker_lock_pid(db, "w1")
        assert pid is not None
        cut_connection(db, pid)
        await poll_until(lambda: worker_lock_pid(db, "w1") not in (None, pid), 30, "w1 to take its lock again")
        second = await Worker(db_url, "w1", tmp_path, Changes(), name="w1-again").start()  # the same id, meanwhile
        assert await exited(second) == 2
        assert "HERALD_WORKER_ID: 'w1' is already used by another running Herald" in second.stderr
        assert first.process is not None and first.process.returncode is None
        assert "taken again" in first.stderr
    finally:
        if second is not None:
            await second.stop()
        assert await first.stop() == 0, first.stderr
        db.dispose()


async def test_a_worker_whose_id_was_taken_while_its_connection_was_down_stops(tmp_path: Path) -> None:
    db_url = database("postgresql", tmp_path)
    db = Database(db_url)
    worker = Worker(db_url, "w1", tmp_path, Changes(), HERALD_LOCK_CHECK_SECONDS="0.2")
    try:
        await running(worker)
        pid = worker_lock_pid(db, "w1")
        assert pid is not None
        with db.engine.connect() as other:  # another process with the same id, waiting for the lock
            cut_connection(db, pid)
            other.execute(text("SELECT pg_advisory_lock(:key)"), {"key": advisory_key("herald-worker:w1")})
            code = await exited(worker, 30)
            other.rollback()
        assert code == 1
        lines = [line for line in worker.stderr.splitlines() if line.startswith("herald: ")]
        assert lines == [
            "herald: this worker lost the lock on HERALD_WORKER_ID 'w1' with a dropped database connection, and "
            "another running Herald took that id meanwhile; this one stops so that only one process works "
            "under it. Give each worker its own HERALD_WORKER_ID."
        ]
        assert "Traceback" not in worker.stderr
    finally:
        await worker.stop()
        db.dispose()


async def test_the_worker_lock_is_checked_again_in_process_after_a_dropped_connection(
    tmp_path: Path, clock: FakeClock
) -> None:
    db_url = database("postgresql", tmp_path)
    herald = make_herald(db_url, clock, HERALD_WORKER_ID="w1", HERALD_LOCK_CHECK_SECONDS=3600)
    await herald.start()
    other = make_herald(db_url, clock, HERALD_WORKER_ID="w1")
    try:
        pid = worker_lock_pid(herald.db, "w1")
        assert pid is not None
        cut_connection(herald.db, pid)
        assert await herald.keep_worker_lock()  # taken again
        with pytest.raises(SettingsError, match="already used by another running Herald"):
            await other.start()
        cut_connection(herald.db, worker_lock_pid(herald.db, "w1") or 0)
        other.lock.acquire()  # another process took the id before this one looked
        assert not await herald.keep_worker_lock()
        assert herald.lock_lost.is_set()  # python -m bot stops on it (the subprocess tests above)
    finally:
        other.lock.release()
        other.db.dispose()
        await herald.stop()



# --- one receiver per chat platform ----------------------------------------------------------------


@engines
def test_a_receiver_lock_is_held_by_one_holder_and_freed_when_its_session_ends(engine: str, tmp_path: Path) -> None:
    db_url = database(engine, tmp_path)
    db = Database(db_url)
    sqlite_path = load_settings(DATABASE_URL=db_url).sqlite_path()
    one, two = (ProcessLock(db.engine, sqlite_path, key="herald-leader:test", file_name="leader-test")
                for _ in range(2))
    try:
        assert one.try_acquire() and not two.try_acquire()
        assert one.still_held()
        one.release()
        assert two.try_acquire() and not one.try_acquire()
        if engine == "postgresql":  # the holder's database session is cut (a server restart, a network cut)
            assert two._connection is not None
            pid = two._connection.execute(text("SELECT pg_backend_pid()")).scalar()
            two._connection.commit()
            with db.engine.connect() as admin:
                admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            assert not two.still_held() and not two.held  # it notices, and gives up receiving
            assert one.try_acquire()
    finally:
        one.release()
        two.release()
        db.dispose()


class TwoDoorTelegram(FakeTelegram):
    """The fake Bot API reachable under /w1 and /w2 too, so the test sees which Herald made each call."""

    def __init__(self) -> None:
        super().__init__()
        self.polls: list[tuple[str, float]] = []  # (door, when) of each getUpdates
        for door in ("w1", "w2"):
            self.route("POST", f"/{door}/bot{{token}}/{{method}}", self._through(door))

    def _through(self, door: str) -> Any:
        async def handler(request: web.Request) -> web.StreamResponse:
            if request.match_info["method"].lower() == "getupdates":
                self.polls.append((door, asyncio.get_running_loop().time()))
            return await self._api(request)
        return handler

    def polled_by(self) -> set[str]:
        return {door for door, _at in self.polls}


def telegram_herald(db_url: str, clock: FakeClock, tg: FakeTelegram, door: str, worker_id: str) -> Herald:
    herald = make_herald(db_url, clock, HERALD_WORKER_ID=worker_id)
    herald.leadership.every = 0.2  # tries to take over five times a second (15 s in production)
    front = TelegramFront(herald.handle, tg.token, api_url=f"{tg.url}/{door}", poll_timeout=1,
                          group_rate=(1000, 60))
    tg.watch(front)
    herald.add_front(front)
    return herald


async def answer_to(tg: FakeTelegram, message: dict[str, Any]) -> list[dict[str, Any]]:
    """Every answer the bot gave to a message, once the worker that received it has handled it."""
    await tg.wait_answer(message)
    await tg.wait_handled(message)
    return tg.answers_to(message)


def count_checks(leadership: Leadership, changes: Changes) -> list[int]:
    """Count the lock checks (the takeover attempts) of a worker's leadership from now on; each wakes
    `changes`, so a test waits for a number of them instead of sleeping."""
    done = [0]
    check = leadership.check

    async def counted() -> None:
        await check()
        done[0] += 1
        changes.changed()

    leadership.check = counted  # type: ignore[method-assign]
    return done


@engines
async def test_one_worker_polls_telegram_the_other_sends_and_takes_over_when_it_stops(
    engine: str, tmp_path: Path, clock: FakeClock
) -> None:
    db_url = database(engine, tmp_path)
    async with TwoDoorTelegram() as tg:
        alice = tg.user("Alice", username="alice")
        group = tg.group("Acme", admins=(alice,))
        first = telegram_herald(db_url, clock, tg, "w1", "w1")
        second = telegram_herald(db_url, clock, tg, "w2", "w2")
        await first.start()
        await second.start()
        try:
            takeovers = count_checks(second.leadership, tg.changes)
            front1, front2 = first.fronts[0], second.fronts[0]
            assert isinstance(front1, TelegramFront) and isinstance(front2, TelegramFront)
            assert front1.receiving and not front2.receiving
            assert first.leadership.receiving(front1) and not second.leadership.receiving(front2)
            answers = await answer_to(tg, await tg.say(alice, group, "/setup Acme"))
            assert len(answers) == 1 and "Workspace 'Acme' is ready" in answers[0]["text"]
            tried = takeovers[0]  # the follower tries to take over a few times meanwhile
            await tg.wait_until(lambda: takeovers[0] >= tried + 3, 10, "the follower's takeover attempts")
            assert tg.polled_by() == {"w1"}
            assert len(tg.calls("setMyCommands")) == 1  # the / menu is registered by the poller

            # the one that doesn't poll still speaks for Herald (its notices, its publish results)
            await second.notifier.send(ChatAddress("telegram", str(group["id"])), Reply("A notice from w2"))
            assert any(m["text"] == "A notice from w2" for m in tg.sent_to(group))
            assert tg.requests("POST", f"/w2/bot{tg.token}/sendMessage")

            await first.stop()  # the poller goes away: the other takes over within a few checks
            stopped = asyncio.get_running_loop().time()
            await tg.wait_until(lambda: front2.receiving, 10, "the second worker to start polling")
            answers = await answer_to(tg, await tg.say(alice, group, "/help"))
            assert len(answers) == 1 and "Herald drafts" in answers[0]["text"]
            assert max(at for door, at in tg.polls if door == "w1") <= stopped  # never both at once
            assert min(at for door, at in tg.polls if door == "w2") >= stopped
            assert len(tg.calls("setMyCommands")) == 2
        finally:
            await second.stop()
            await first.stop()


async def test_discord_gateway_is_held_by_one_worker_the_other_sends_through_rest(
    tmp_path: Path, clock: FakeClock
) -> None:
    db_url = f"sqlite:///{tmp_path / 'herald.db'}"
    fake = FakeDiscord()
    await fake.start()
    guild = fake.add_guild("Acme")
    channel = fake.add_channel(guild, "marketing")
    herald = make_herald(db_url, clock)
    herald.leadership.every = 0.2
    front = DiscordFront(herald.handle, fake.token, api_url=fake.url, guild_ids=[int(guild)], guild_ready_timeout=0.05)
    herald.add_front(front)
    # another worker holds the gateway (its lock, as that process would hold it)
    other = ProcessLock(herald.db.engine, herald.settings.sqlite_path(), key=f"herald-leader:{front.leader_name}",
                        file_name=f"leader-{front.leader_name}")
    assert other.try_acquire()
    await herald.start()
    takeovers = count_checks(herald.leadership, fake.changes)
    try:
        assert not front.receiving and fake.identified == 0 and fake.commands.get(guild) is None
        card = Reply("#1 asks for approval\nSpring sale", buttons=(Button("Approve", "approve", {"post": 1}),))
        await herald.notifier.send(ChatAddress("discord", channel), card)  # through REST, with its buttons
        sent = fake.channel_messages(channel)[-1]
        assert sent["embeds"][0]["title"] == "#1 asks for approval"
        assert sent["components"][0]["components"][0]["custom_id"] == "herald:approve:post=1:"
        await fake.wait_until(lambda: takeovers[0] >= 3, 10, "the takeover attempts")
        assert fake.identified == 0  # still not connected while the other holds it
        other.release()  # that worker stopped
        await fake.wait_for(lambda: front.receiving and fake.identified)  # the gateway connection
        assert fake.identified == 1 and fake.commands.get(guild)
    finally:
        await herald.stop()
        other.release()
        await fake.close()


def test_webhook_workers_need_no_poller_and_share_one_webhook_secret(tmp_path: Path) -> None:
    def front(worker_id: str) -> TelegramFront:
        settings = load_settings(DATABASE_URL=f"sqlite:///{tmp_path / 'herald.db'}", HERALD_SECRET_KEY=TEST_KEY,
                                 HERALD_WORKER_ID=worker_id, TELEGRAM_BOT_TOKEN="1:A",
                                 TELEGRAM_WEBHOOK_URL="https://herald.example/telegram")
        herald = Herald(settings, clock=FakeClock())
        chat_fronts(herald)
        made = herald.fronts[0]
        herald.db.dispose()
        assert isinstance(made, TelegramFront)
        return made

    one, two = front("w1"), front("w2")
    assert one.leader_name is None  # behind a load balancer every worker takes updates
    assert one.webhook_secret == two.webhook_secret and re.fullmatch(r"[0-9a-f]{64}", one.webhook_secret or "")
    assert TelegramFront(one.handle, "1:A").leader_name == TelegramFront(one.handle, "1:A").leader_name


# --- the clock's work done once -------------------------------------------------------------------


class SlowVerify(RecordingNetwork):
    def __init__(self) -> None:
        super().__init__()
        self.verified: list[str] = []

    async def verify(self, account: AccountView) -> str:
        self.verified.append(account.name)
        await asyncio.sleep(0.05)  # both workers are checking at the same time
        return "test account"


async def test_two_workers_checking_accounts_at_once_check_each_account_once(db_url: str, clock: FakeClock) -> None:
    network = SlowVerify()
    one = make_herald(db_url, clock, HERALD_WORKER_ID="w1")
    two = make_herald(db_url, clock, HERALD_WORKER_ID="w2")
    for herald in (one, two):
        herald.networks.add(network)
    await one.start()
    await two.start()
    try:
        team = Team(one, clock, db_url)
        await team.say("alice", "/setup Acme")
        for name in ("a", "b", "c", "d"):
            await team.say("alice", f"/connect recording name={name}")
        network.verified.clear()  # /connect verified them once
        clock.advance(hours=25)
        counts = await asyncio.gather(check_accounts(one.ctx), check_accounts(two.ctx))
        assert sorted(network.verified) == ["a", "b", "c", "d"]
        assert counts[0]["ok"] + counts[1]["ok"] == 4
        assert await check_accounts(one.ctx) == {"ok": 0, "dead": 0, "unknown": 0}  # checked: not due again
        with one.db.session() as session:
            assert {a.checked_at for a in session.exec(select(Account)).all()} == {clock.now()}
    finally:
        await two.stop()
        await one.stop()
