"""Crash tests (issue 5): a worker SIGKILLed at random points of publishing loses nothing and sends nothing twice.

The test process runs three fake networks on 127.0.0.1 (X without any idempotency, Mastodon with
`Idempotency-Key`, Bluesky with a record key derived from the delivery) and seeds a database through the
console chat: a workspace, one account on each network, and in every run two posts to all three, due two
seconds ahead in real time. It starts `python -m bot` as a headless worker on that database and SIGKILLs
it at one chosen point (see tests/crash_kit.py):

- `delay`: after a random delay around the posts' due time (before or after the claims);
- `upload`: when a network receives the first media upload (a delivery is claimed, its create not sent);
- `create`: when a network receives the first create request and holds it (the call is in flight);
- `answer`: right after a network wrote its whole answer to a create, the worker frozen before it could
  store it;
- `recovery`: as `create`, and then the restarted worker is killed too, the moment its start-up recovery
  has stored something about the send it finds in flight (stored what its network said — sent, pending again
  or unconfirmed —, or settled the post) — before or after it told the team. (This found a silent outcome: the recovery stored the post's outcome
  before telling the team, so a crash in between meant the team never heard of the unconfirmed send.)

Then it restarts the worker with the same HERALD_WORKER_ID (its start-up recovery applies), lets it finish,
stops it with SIGTERM and checks, for every delivery:

- the network holds at most one post for it, and a network without idempotency got at most one create;
- it ends `sent` with the remote id of the post the network holds, `failed` with a reason, or `unconfirmed`;
  a failed or unconfirmed one is in the team's chat (the restarted workers' console output) with its line;
- a delivery the kill found pending is sent after the restart; one already settled stays as it was;
- one it found in flight (`sending`) is checked with its network by the restarted worker
  (handlers/posts/publishing/outcomes.py): found (Mastodon: the same Idempotency-Key resent; Bluesky: its
  record key read back; X: the account's own posts read and matched by text) → sent with the post the network
  holds; surely absent (Bluesky) → sent again, once; can't tell (X when the post isn't among its posts: a create
  still on its way could land for a few minutes more) → unconfirmed and never resent. Each automatic resolution is compared with what the fake
  network held when the worker restarted: a "found" must be the one post it holds, a "surely absent" must
  be a post it didn't hold. Per network the harness counts the deliveries the kill left unknown, how many
  were resolved automatically and how many wrongly, prints them, and requires 0 wrong and at least 90 %
  resolved on the networks that can tell.

Where the kills landed is counted per delivery and printed (`pytest -s`); each of the four phases must be
hit at least once. `HERALD_CRASH_RUNS` sets the number of runs (default 8, at least 4), `HERALD_CRASH_SEED`
the random seed. The same runs on PostgreSQL when HERALD_TEST_POSTGRES_URL is set.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from random import Random
from typing import Any

import pytest
from sqlmodel import col, select

import handlers.posts.publishing.due as due
from bot.app import Herald
from bot.clock import SystemClock
from bot.settings import load_settings
from handlers.core.chat import Command, MediaIn
from handlers.posts.publishing.claims import CHECKED
from storage.crypto import SecretBox
from storage.models import Account, Delivery, Post
from tests.conftest import POSTGRES_ENV, FakeClock, Team, capturing, fresh_postgres, postgres_url
from tests.crash_kit import (
    PHASES,
    PNG,
    SETTLED,
    CrashBluesky,
    CrashMastodon,
    CrashX,
    Hook,
    Worker,
    connect_lines,
    phase_of,
)
from tests.networks import RecordingNetwork

RUNS = max(4, int(os.environ.get("HERALD_CRASH_RUNS", "8")))
SEED = int(os.environ.get("HERALD_CRASH_SEED", "20261124"))
MODES = ("delay", "upload", "create", "answer", "recovery")
POSTS_PER_RUN = 2
LEAD_SECONDS = 2  # posts are due this long after they are scheduled
WORKER_ID = "crash-worker"
SETTLE_TIMEOUT = 30.0
NOTICE_TIMEOUT = 5.0
READY = "Herald is running as a headless worker"
DONE_DELIVERIES = ("sent", "failed", "unconfirmed")
DONE_POSTS = ("published", "partially_published", "failed")
CAN_TELL = ("mastodon", "bluesky")  # the networks that can always tell (X only when the post is there)
GOAL = 0.9  # the share of unknown outcomes those networks must resolve without a person


@pytest.fixture(params=["sqlite", "postgresql"])
def crash_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        url = postgres_url()
        if url is None:
            pytest.skip(f"no PostgreSQL server given: set {POSTGRES_ENV} to run the crash tests on PostgreSQL")
        return fresh_postgres(url)
    return f"sqlite:///{tmp_path / 'herald.db'}"


class Networks:
    def __init__(self, hook: Hook) -> None:
        self.x = CrashX(hook)
        self.mastodon = CrashMastodon(hook)
        self.bluesky = CrashBluesky(hook)
        self.by_key: dict[str, Any] = {"x": self.x, "mastodon": self.mastodon, "bluesky": self.bluesky}


@pytest.fixture
async def networks() -> AsyncIterator[tuple[Networks, Hook]]:
    hook = Hook(Random(SEED))
    nets = Networks(hook)
    async with AsyncExitStack() as stack:
        for server in nets.by_key.values():
            await stack.enter_async_context(server)
        yield nets, hook
        hook.disarm()


class Seeder:
    """The team at the console chat of an in-process Herald that is never started (it publishes nothing):
    what alice types lands in the database the worker reads."""

    def __init__(self, database_url: str, secret_key: str) -> None:
        settings = load_settings(DATABASE_URL=database_url, HERALD_SECRET_KEY=secret_key,
                                 HERALD_WORKER_ID="crash-seeder")
        self.herald = Herald(settings, clock=SystemClock(), write=lambda _text: None)
        self.herald.db.migrate()

    async def say(self, line: str) -> str:
        self.herald.console.user = "alice"
        return await self.herald.console.say(line)

    async def attach(self, post_id: int) -> str:
        console = self.herald.console
        reply = await self.herald.handle(Command("attach", console.actor(), console.chat, text=str(post_id),
                                                 media=(MediaIn("spring.png", "image/png", PNG),)))
        return reply.text

    def rows(self, post_ids: list[int]) -> list[tuple[Delivery, Account, Post]]:
        with self.herald.db.session() as session:
            return list(session.exec(
                select(Delivery, Account, Post).where(col(Delivery.post_id).in_(post_ids))
                .where(Delivery.account_id == Account.id).where(Delivery.post_id == Post.id)
                .order_by(col(Delivery.id))
            ).all())


def settled(rows: list[tuple[Delivery, Account, Post]]) -> bool:
    return all(d.state in DONE_DELIVERIES and p.state in DONE_POSTS for d, _a, p in rows)


def told(output: str, post_id: int, account: Account, mark: str) -> bool:
    """The console output holds a notice about #post_id with this account's line starting with `mark`."""
    line = rf"  {re.escape(mark)} {re.escape(account.name)} \({account.network}\): "
    return re.search(rf"#{post_id}\b[^\n]*\n(?:  [^\n]*\n)*?{line}", output + "\n") is not None


async def seed_run(seeder: Seeder, run: int, with_image: bool) -> tuple[list[int], datetime]:
    post_ids = []
    for n in range(1, POSTS_PER_RUN + 1):
        out = await seeder.say(f"/draft Crash run {run}, post {n}: the spring collection is in store now")
        post_id = int(out.split("#", 1)[1].split(" ", 1)[0].rstrip("."))
        if with_image:
            assert "1 file(s) attached" in await seeder.attach(post_id)
        out = await seeder.say(f"/schedule {post_id} in {LEAD_SECONDS} seconds")
        assert "scheduled for" in out, out
        post_ids.append(post_id)
    due = [p.due_at for _d, _a, p in seeder.rows(post_ids)]
    assert all(d is not None for d in due)
    return post_ids, max(d for d in due if d is not None)


async def wait_for(what: str, check: Any, worker: Worker, timeout: float, *, required: bool = True) -> None:
    """Wait until `check()`; fail if the worker dies first, or (when `required`) if it takes over `timeout`."""
    deadline = time.monotonic() + timeout
    while not check():
        assert worker.process is not None
        if worker.process.returncode is not None:
            pytest.fail(f"the worker exited ({worker.process.returncode}) while waiting for {what}\n{worker.tail()}")
        if time.monotonic() > deadline:
            if not required:
                return  # the checks after it say what is missing
            pytest.fail(f"timed out waiting for {what}\n{worker.tail()}")
        await asyncio.sleep(0.1)


def recovered(seeder: Seeder, delivery_ids: list[int], post_ids: list[int], stage: str) -> dict[int, str]:
    """Post id → what the start-up recovery has stored about it so far, at `stage`: "stored" (what the network
    said of its send in flight: sent, pending again or unconfirmed) or "settled" (its outcome stored)."""
    query: Any
    with seeder.herald.db.engine.connect() as connection:
        if stage == "stored":
            query = select(Delivery.post_id, Delivery.state).where(col(Delivery.id).in_(delivery_ids)) \
                .where(Delivery.state != "sending")
        else:
            query = select(Post.id, Post.state).where(col(Post.id).in_(post_ids)) \
                .where(col(Post.state).in_(DONE_POSTS))
        return {post_id: state for post_id, state in connection.execute(query).all()}


async def kill_during_recovery(seeder: Seeder, worker: Worker, post_ids: list[int], stage: str,
                               on_start: Callable[[], None]) -> str:
    """Start the worker and kill it the moment its start-up recovery has stored `stage` for a post it had left
    in flight: frozen (SIGSTOP) at once, then killed, so its console shows what it had said by then."""
    in_flight = [d for d, _a, _p in seeder.rows(post_ids) if d.state == "sending"]
    waiting, waiting_ids = [d.post_id for d in in_flight], [d.id or 0 for d in in_flight]
    await worker.start()
    on_start()
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while not (done := recovered(seeder, waiting_ids, waiting, stage)):
        assert worker.process is not None and worker.process.returncode is None, worker.tail()
        assert time.monotonic() < deadline, f"the recovery never stored anything\n{worker.tail()}"
        await asyncio.sleep(0)
    worker.freeze()
    await worker.kill()
    post_id, state = next(iter(done.items()))
    said = re.search(rf"#{post_id} (is published|is partly published|didn't publish|: \d+ of \d+ sent)",
                     worker.output) is not None
    return f"the restarted worker killed once #{post_id} was {state}, " + (
        "after it told the team" if said else "before it told the team")


class Harness:
    """The runs of one test: the team's database, the fake networks, and where the kills landed."""

    def __init__(self, database_url: str, folder: Path, nets: Networks, hook: Hook) -> None:
        self.nets, self.hook, self.folder = nets, hook, folder
        self.rng = Random(SEED)
        key = SecretBox.new_key()
        self.seeder = Seeder(database_url, key)
        self.env = Worker.environment(database_url, key, WORKER_ID)
        self.landed: Counter[str] = Counter()
        self.workers: list[Worker] = []
        # per network: deliveries the kill left unknown (`sending`), resolved automatically, resolved wrongly
        self.unknown: Counter[str] = Counter()
        self.resolved: Counter[str] = Counter()
        self.wrong: Counter[str] = Counter()
        self.held_at_restart: set[tuple[str, str]] = set()  # (network, text) of every post held then
        self.noted = False  # held_at_restart taken in this run

    def new_worker(self) -> Worker:
        worker = Worker(self.env, self.folder)
        self.workers.append(worker)
        return worker

    async def close(self) -> None:
        """Kill any worker a failed check left running, and close the team's Herald."""
        for worker in self.workers:
            if worker.process is not None and worker.process.returncode is None:
                await worker.kill()
        await self.seeder.herald.stop()

    async def setup(self) -> None:
        await self.seeder.say("/setup Acme")
        await self.seeder.say("/timezone Europe/Paris")
        await self.seeder.say("/policy approvals=0")
        for name, line in connect_lines(self.nets.x, self.nets.mastodon, self.nets.bluesky).items():
            out = await self.seeder.say(line)
            assert out.startswith(f"Connected {name} ("), out

    async def run(self, number: int) -> None:
        mode = MODES[(number - 1) % len(MODES)]
        self.noted = False
        post_ids, due = await seed_run(self.seeder, number, with_image=mode == "upload" or self.rng.random() < 0.3)
        what, at_kill, phases = await self.kill(number, mode, post_ids, due)
        said = ""
        if mode == "recovery":  # and the restarted worker dies too, in the middle of its recovery
            worker = self.new_worker()
            stage = self.rng.choice(("stored", "settled"))
            what += "; " + await kill_during_recovery(self.seeder, worker, post_ids, stage, self.note_held)
            said = worker.output
        counts = Counter(phases.values())
        self.landed.update(counts)
        print(f"\nrun {number} ({mode}): {what}; " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
        said += await self.finish(post_ids, at_kill, said)
        self.check(number, post_ids, at_kill, phases, said)

    async def kill(self, number: int, mode: str, post_ids: list[int],
                   due: datetime) -> tuple[str, dict[int, str], dict[int, str]]:
        """Start the worker and SIGKILL it at the run's point: what happened, and each delivery's state and
        phase at the kill."""
        worker = self.new_worker()
        # the hook waits for X's requests in the first round of modes (no idempotency: the case that matters
        # most), then Mastodon's, then Bluesky's
        target = list(self.nets.by_key)[(number - 1) // len(MODES) % len(self.nets.by_key)]
        self.hook.arm({"delay": None, "recovery": "create"}.get(mode, mode), target)
        await worker.start()
        self.hook.freeze = worker.freeze
        if mode == "delay":
            # the first delay run kills before the posts are due (nothing claimed yet); later ones anywhere near it
            offset = self.rng.uniform(-0.25, -0.05) if number <= len(MODES) else self.rng.uniform(-0.25, 0.1)
            await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds() + offset))
            what = f"killed {offset:+.2f} s from the due time"
        else:
            await wait_for(f"the {mode} hook", self.hook.fired.is_set, worker, SETTLE_TIMEOUT)
            what = self.hook.what
        await worker.kill()
        self.hook.disarm()
        rows = self.seeder.rows(post_ids)
        texts = {p.id: p.text for _d, _a, p in rows}
        at_kill = {d.id: d.state for d, _a, _p in rows if d.id is not None}
        phases = {d.id: phase_of(d.state, self.hook.for_text(a.network, texts[d.post_id]))
                  for d, a, _p in rows if d.id is not None}
        return what, at_kill, phases

    async def finish(self, post_ids: list[int], at_kill: dict[int, str], said: str) -> str:
        """The same worker id again: it settles what it left in flight and sends the rest. What it said."""
        worker = self.new_worker()
        await worker.start()
        if not self.noted:  # the first start since the kill: what the networks hold before it checks anything
            self.note_held()
        await wait_for("the worker to start", lambda: READY in worker.output, worker, SETTLE_TIMEOUT)
        await wait_for("the posts to settle", lambda: settled(self.seeder.rows(post_ids)), worker, SETTLE_TIMEOUT)
        open_at_kill = {d.post_id for d, _a, _p in self.seeder.rows(post_ids) if at_kill[d.id or 0] not in
                        DONE_DELIVERIES}
        await wait_for("the outcome notices", lambda: all(
            re.search(rf"#{pid} (is published|is partly published|didn't publish)", said + worker.output)
            for pid in open_at_kill), worker, NOTICE_TIMEOUT, required=False)
        assert await worker.stop() == 0, worker.tail()
        assert "Traceback" not in "".join(worker.err), worker.tail()
        return worker.output

    def note_held(self) -> None:
        """What every fake network holds now, just as a restarted worker begins its recovery."""
        self.noted = True
        self.held_at_restart = {(key, text) for key, net in self.nets.by_key.items() for text in net.posts().values()}

    def check(self, number: int, post_ids: list[int], at_kill: dict[int, str], phases: dict[int, str],
              said: str) -> None:
        """Nothing lost, nothing twice, nothing silent."""
        rows = self.seeder.rows(post_ids)
        for d, a, p in rows:
            assert d.id is not None
            net = self.nets.by_key[a.network]
            held = [remote_id for remote_id, text in net.posts().items() if text == p.text]
            creates = self.hook.for_text(a.network, p.text)
            where = f"run {number}, #{d.post_id} on {a.name}: {phases[d.id]}, now {d.state} ({d.last_error})"
            assert len(held) <= 1, f"{where}: the network holds {len(held)} posts"
            if a.network == "x":  # no idempotency: a second create would be a second post
                assert len(creates) <= 1, f"{where}: {len(creates)} creates"
            assert d.state in DONE_DELIVERIES and p.state in DONE_POSTS, where
            if d.state == "sent":
                assert held == [d.remote_id], f"{where}: stored {d.remote_id}, the network holds {held}"
            else:
                assert d.last_error, where
                mark = "?" if d.state == "unconfirmed" else "✗"
                assert told(said, d.post_id, a, mark), f"{where}: the team wasn't told\n{said}"
            if at_kill[d.id] == "pending":  # not yet claimed: nothing lost, it went out after the restart
                assert d.state == "sent" and len(creates) == 1, where
            elif at_kill[d.id] == "sending":  # its outcome unknown: checked with the network, else unconfirmed
                self.unknown[a.network] += 1
                if d.state == "unconfirmed":  # the network couldn't tell: shown to the team, never resent
                    assert d.last_error == "Herald stopped while sending it, before the network's answer was saved"
                    assert len(creates) <= 1, where
                else:
                    self.resolved[a.network] += 1
                    found = CHECKED in (d.resume or {})  # else: surely absent, then sent again by a retry
                    was_there = (a.network, p.text) in self.held_at_restart
                    right = d.state == "sent" and held == [d.remote_id] and (found or not was_there)
                    self.wrong[a.network] += not right
                    assert right, \
                        f"{where}: resolved wrongly (found: {found}, held at the restart: {was_there})"
            else:
                assert d.state == at_kill[d.id], where
        for post_id in post_ids:
            states = [d.state for d, _a, p in rows if p.id == post_id]
            post = next(p for _d, _a, p in rows if p.id == post_id)
            expected = ("published" if states.count("sent") == len(states)
                        else "partially_published" if "sent" in states else "failed")
            assert post.state == expected, (post_id, post.state, states)


async def test_a_worker_killed_anywhere_in_publishing_loses_nothing_and_sends_nothing_twice(
    crash_db: str, tmp_path: Path, networks: tuple[Networks, Hook]
) -> None:
    harness = Harness(crash_db, tmp_path, *networks)
    try:
        await harness.setup()
        for number in range(1, RUNS + 1):
            began = time.monotonic()
            await harness.run(number)
            print(f"  ({time.monotonic() - began:.1f} s)")
    finally:
        await harness.close()
    landed = harness.landed
    print(f"\nwhere the kills landed (per delivery, over {RUNS} runs):",
          ", ".join(f"{phase}: {landed[phase]}" for phase in (*PHASES, SETTLED)))
    for phase in PHASES:
        assert landed[phase] >= 1, f"no kill landed {phase}: {dict(landed)}"
    unknown, resolved, wrong = harness.unknown, harness.resolved, harness.wrong
    print("\nunknown outcomes left by the kills, per network: " + ", ".join(
        f"{key}: {unknown[key]} unknown, {resolved[key]} resolved automatically, {wrong[key]} wrongly"
        for key in harness.nets.by_key))
    can_tell = sum(unknown[key] for key in CAN_TELL)
    share = sum(resolved[key] for key in CAN_TELL) / can_tell if can_tell else 1.0
    print(f"resolved automatically on the networks that can tell ({', '.join(CAN_TELL)}): "
          f"{sum(resolved[key] for key in CAN_TELL)} of {can_tell} ({share:.0%}); "
          f"resolved wrongly: {sum(wrong.values())}")
    assert sum(wrong.values()) == 0
    assert share >= GOAL, f"only {share:.0%} of the unknown outcomes resolved on {CAN_TELL}"


async def test_a_crash_between_the_recovery_storing_an_unconfirmed_outcome_and_telling_the_team_is_told_later(
    db_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window the `recovery` runs above land in, made certain: the restarted worker stores that its send
    is unconfirmed and dies before the team hears it. The next start must still tell the team."""
    network = RecordingNetwork()
    herald, _ = capturing(db_url, clock, network)
    await herald.start()
    team = Team(herald, clock, db_url)
    await team.setup_workspace(accounts=())
    await team.say("alice", "/connect recording name=news")
    post_id = await team.approved_post()
    network.gate = asyncio.Event()  # the network call hangs…
    publishing = asyncio.create_task(team.say("alice", f"/publish {post_id}"))
    await asyncio.wait_for(network.entered.wait(), timeout=5)
    publishing.cancel()  # …and the process dies in the middle of it
    await asyncio.gather(publishing, return_exceptions=True)
    await herald.stop()
    network.gate = None

    def dies(*_args: object, **_kwargs: object) -> None:
        raise SystemExit("killed before the notice went out")

    herald, lines = capturing(db_url, clock, network)
    monkeypatch.setattr(due, "tell_team", dies)
    with pytest.raises(SystemExit):
        await herald.start()  # the start-up recovery dies on its way to the team
    monkeypatch.undo()
    await herald.stop()
    assert [d.state for d in team.deliveries(post_id)] == ["unconfirmed"]

    herald, lines = capturing(db_url, clock, network)
    await herald.start()
    try:
        said = "\n".join(lines)
        assert f"❌ #{post_id} didn't publish on any of its 1 account(s)." in said, said
        assert "? news (recording): unconfirmed — Herald stopped while sending it" in said
        assert team.post(post_id).state == "failed"
        assert network.count("news") == 1  # told, and never resent
    finally:
        await herald.stop()
