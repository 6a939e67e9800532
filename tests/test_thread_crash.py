"""A 5-part thread survives a SIGKILL after its part 3 (issue 18): X, Bluesky and Mastodon fakes, a real worker.

The team (an in-process Herald that is never started, as in tests/test_crash.py) drafts one post of five parts for
an X, a Bluesky and a Mastodon account and schedules it two seconds ahead; a headless `python -m bot` worker
publishes it. When one network (each in turn) receives part 3, the worker is frozen (SIGSTOP), the part is made and
its whole answer written, and the worker is SIGKILLed: part 3 is live but its remote id isn't stored. The worker is
started again with the same id: its recovery asks the network about part 3 (X: the account's own posts by text;
Bluesky: the record key; Mastodon: the same Idempotency-Key), stores it, and resumes at part 4.

Checked: every network holds the five parts exactly once, each replying to the one before; X (no idempotency) got
one create per part; the parts after 3 on the killed network were sent after the restart; every step's remote id
is the one the network holds; the team's chat got the post's report. Waits are on events (the fake's request, the
worker's output line), never on a timer.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlmodel import col, select

from storage.crypto import SecretBox
from storage.models import Account, Delivery, FollowUp, Post
from tests import test_crash
from tests.crash_kit import BSKY_PASSWORD, Worker, connect_lines
from tests.fakes.bluesky_api import FakeBluesky
from tests.fakes.mastodon_api import FakeMastodon
from tests.fakes.x_api import FakeX
from tests.test_crash import Seeder

crash_db = test_crash.crash_db  # the crash tests' database fixture: SQLite, and PostgreSQL when one is given
PARTS = ["1/ Our spring collection is here", "2/ Linen shirts in six colours", "3/ Made in Portugal",
         "4/ Free returns for 60 days", "5/ In store and online now"]
WORKER_ID = "thread-worker"
TIMEOUT = 60.0  # a bound on a failure, never a wait

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Lines(list[str]):
    """A worker's output lines; each new line wakes whoever waits for one."""

    def __init__(self) -> None:
        super().__init__()
        self.event = asyncio.Event()

    def append(self, line: str) -> None:
        super().append(line)
        self.event.set()

    async def wait_for(self, wanted: str, worker: Worker) -> None:
        async def seen() -> None:
            while wanted not in "".join(self):
                self.event.clear()
                if wanted in "".join(self):
                    return
                await self.event.wait()
        try:
            await asyncio.wait_for(seen(), TIMEOUT)
        except TimeoutError:
            pytest.fail(f"the worker never said {wanted!r}\n{worker.tail()}")


class Watcher(Worker):
    """A Worker whose output can be waited for line by line."""

    def new_output(self) -> list[str]:
        return Lines()

    @property
    def lines(self) -> Lines:
        assert isinstance(self.out, Lines)
        return self.out


class KillAt:
    """Shared by the fakes of one test: counts every create by (network, text) and, when armed for one network and
    text, freezes the worker as that create arrives and says so — after making the post and writing its whole
    answer, or (`hold`) holding the request unanswered, the post never made."""

    def __init__(self) -> None:
        self.creates: Counter[tuple[str, str]] = Counter()
        self.network: str | None = None
        self.text = ""
        self.hold = False
        self.freeze: Callable[[], None] | None = None
        self.fired = asyncio.Event()
        self.release = asyncio.Event()  # lets a held request end (its worker is gone) when the test ends

    async def create(self, network: str, text: str, request: web.Request, real: Handler) -> web.StreamResponse:
        self.creates[(network, text)] += 1
        if network != self.network or text != self.text or self.freeze is None:
            return await real(request)
        freeze, self.freeze = self.freeze, None
        freeze()  # the worker reads nothing from here on
        if self.hold:
            self.fired.set()
            await self.release.wait()
            return web.json_response({"error": "the client went away"}, status=503)
        response = await real(request)
        await response.prepare(request)
        await response.write_eof()
        self.fired.set()
        return response


def hooked(base: Any, network: str, route: str, text_of: Callable[[dict[str, Any]], str]) -> Any:
    """A subclass of a fake whose create route (`route`, the method's name) goes through its `kill` first."""

    async def create(self: Any, request: web.Request) -> web.StreamResponse:
        real = getattr(super(cls, self), route)
        return await self.kill.create(network, text_of(await request.json()), request, real)

    cls = type(f"Kill{base.__name__}", (base,), {route: create})
    return cls


KillX = hooked(FakeX, "x", "create", lambda body: body.get("text", ""))
KillMastodon = hooked(FakeMastodon, "mastodon", "create", lambda body: body.get("status", ""))
KillBluesky = hooked(FakeBluesky, "bluesky", "create_record", lambda body: (body.get("record") or {}).get("text", ""))


def chains(x: FakeX, masto: FakeMastodon, bsky: FakeBluesky) -> dict[str, list[tuple[str, str]]]:
    """Per network, its posts as (remote id, text), following each reply to the one it answers from the first."""

    def follow(items: dict[str, str], parent_of: dict[str, str | None]) -> list[tuple[str, str]]:
        roots = [i for i, p in parent_of.items() if not p]
        assert len(roots) == 1, roots
        chain = [roots[0]]
        while children := [i for i, p in parent_of.items() if p == chain[-1]]:
            assert len(children) == 1, children
            chain.append(children[0])
        assert len(chain) == len(items), items
        return [(i, items[i]) for i in chain]

    return {
        "x": follow({i: t["text"] for i, t in x.tweets.items()},
                    {i: t.get("in_reply_to_tweet_id") for i, t in x.tweets.items()}),
        "mastodon": follow({i: s["content"] for i, s in masto.statuses.items()},
                           {i: s.get("in_reply_to_id") for i, s in masto.statuses.items()}),
        "bluesky": follow({u: r["text"] for u, r in bsky.records.items()},
                          {u: ((r.get("reply") or {}).get("parent") or {}).get("uri") for u, r in bsky.records.items()}),
    }


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[KillAt, FakeX, FakeMastodon, FakeBluesky]]:
    kill = KillAt()
    made = [KillX(), KillMastodon(), KillBluesky(lambda: datetime.now(UTC), password=BSKY_PASSWORD)]
    async with AsyncExitStack() as stack:
        for fake in made:
            fake.kill = kill
            await stack.enter_async_context(fake)
        yield kill, made[0], made[1], made[2]
        kill.release.set()


@pytest.mark.parametrize("network", ["x", "bluesky", "mastodon"])
async def test_a_sigkill_after_part_3_resumes_at_part_4_and_posts_no_part_twice(
        network: str, crash_db: str, tmp_path: Path, fakes: tuple[KillAt, FakeX, FakeMastodon, FakeBluesky]) -> None:
    """Killed once part 3 is made on the network and its answer written, before Herald stored it."""
    kill = fakes[0]
    kill.text = PARTS[2]
    at_kill, report, stored, state = await run(network, fakes, crash_db, tmp_path)
    # at the kill: part 3 is live on the network, its step still `sending` (its answer never stored)
    assert at_kill[(network, 3)] == "sending" and at_kill.get((network, 4)) == "pending", at_kill
    check_networks(network, PARTS, fakes, at_kill, report, stored, state)
    assert kill.creates[(network, PARTS[3])] == 1 and kill.creates[(network, PARTS[4])] == 1


@pytest.mark.parametrize("network", ["x", "bluesky", "mastodon"])
async def test_a_sigkill_with_part_4_in_flight_resumes_where_the_network_can_tell_and_stops_where_it_cant(
        network: str, crash_db: str, tmp_path: Path, fakes: tuple[KillAt, FakeX, FakeMastodon, FakeBluesky]) -> None:
    """Killed with part 3 stored and part 4's request held at the network (never made): Bluesky (its record key
    isn't there) and Mastodon (the same Idempotency-Key) send it once and go on; X can't tell yet (a lost create
    may still land for minutes), so part 4 is unconfirmed, part 5 is not sent, and the report says so."""
    kill = fakes[0]
    kill.text, kill.hold = PARTS[3], True
    at_kill, report, stored, state = await run(network, fakes, crash_db, tmp_path)
    assert at_kill[(network, 3)] == "sent" and at_kill[(network, 4)] == "sending", at_kill
    check_networks(network, PARTS[:3] if network == "x" else PARTS, fakes, at_kill, report, stored, state)
    assert kill.creates[(network, PARTS[4])] == (0 if network == "x" else 1)


def check_networks(target: str, on_target: list[str], fakes: tuple[KillAt, FakeX, FakeMastodon, FakeBluesky],
                   at_kill: dict[tuple[str, int], str], report: str, stored: dict[str, list[str | None]],
                   state: str) -> None:
    """Each network holds each part at most once, replying to the one before: the target `on_target`; the others the
    whole thread, except X when the kill caught one of its parts in flight before X made it (X can't tell for a few
    minutes: that part is unconfirmed and those after it aren't sent). What Herald stored is what the networks hold,
    the report says each, and the post is published only when every thread is whole."""
    kill, x, masto, bsky = fakes
    whole = 0
    for name, chain in chains(x, masto, bsky).items():
        want = on_target if name == target else PARTS
        caught = next((n for (net, n), st in at_kill.items() if net == name and st == "sending"), None)
        if name == "x" != target and caught is not None and all(t["text"] != PARTS[caught - 1]
                                                                for t in x.tweets.values()):
            want = PARTS[:caught - 1]
        assert [text for _id, text in chain] == want, (name, chain, at_kill)
        assert stored[name] == [remote for remote, _text in chain], name
        if want == PARTS:
            whole += 1
        else:
            assert f"    ? Part {len(want) + 1}: unconfirmed" in report, report
    # X has no idempotency: never a second create of a part (the lost answers found among the account's posts)
    assert all(kill.creates[("x", part)] <= 1 for part in PARTS), kill.creates
    assert report.count("    ↳ Part 5: ") == whole, report
    assert state == ("published" if whole == 3 else "partially_published"), report


async def run(network: str, fakes: tuple[KillAt, FakeX, FakeMastodon, FakeBluesky], database: str,
              folder: Path) -> tuple[dict[tuple[str, int], str], str, dict[str, list[str | None]], str]:
    """One thread to the three accounts, a worker killed at `kill`'s point on `network`, and a second worker that
    finishes it. Each step's state at the kill, the second worker's report, per network the remote ids stored for
    the post and each step sent, and the post's state."""
    kill, x, masto, bsky = fakes
    kill.network = network
    key = SecretBox.new_key()
    seeder = Seeder(database, key)
    workers: list[Watcher] = []
    try:
        await seeder.say("/setup Acme")
        await seeder.say("/policy approvals=0")
        for name, line in connect_lines(x, masto, bsky).items():
            out = await seeder.say(line)
            assert out.startswith(f"Connected {name} ("), out
        out = await seeder.say("/draft " + "\n---\n".join(PARTS))
        post_id = int(out.split("#", 1)[1].split(" ", 1)[0].rstrip("."))
        out = await seeder.say(f"/schedule {post_id} in 2 seconds")
        assert "scheduled for" in out, out

        env = Worker.environment(database, key, WORKER_ID)
        first = Watcher(env, folder)
        workers.append(first)
        await first.start()
        kill.freeze = first.freeze
        try:
            await asyncio.wait_for(kill.fired.wait(), TIMEOUT)
        except TimeoutError:
            pytest.fail(f"{kill.text!r} never reached {network}\n{first.tail()}")
        await first.kill()

        with seeder.herald.db.session() as session:
            rows = session.exec(select(FollowUp, Account).where(col(FollowUp.delivery_id) == col(Delivery.id))
                                .where(col(Delivery.account_id) == col(Account.id))
                                .where(Delivery.post_id == post_id)).all()
            at_kill = {(a.network, f.number): f.state for f, a in rows}

        second = Watcher(env, folder)
        workers.append(second)
        await second.start()
        await second.lines.wait_for(f"#{post_id} is published on all 3 account(s)", second)
        assert await second.stop() == 0, second.tail()
        assert "Traceback" not in "".join(second.err), second.tail()
        report = second.output

        stored: dict[str, list[str | None]] = {}
        with seeder.herald.db.session() as session:
            post = session.get(Post, post_id)
            assert post is not None
            for delivery, account in session.exec(select(Delivery, Account).where(Delivery.post_id == post_id)
                                                  .where(col(Delivery.account_id) == col(Account.id))).all():
                sent = sorted((f for f in session.exec(select(FollowUp).where(FollowUp.delivery_id == delivery.id))
                               if f.state == "sent"), key=lambda f: f.number)
                stored[account.network] = [delivery.remote_id, *(f.remote_id for f in sent)]
                assert f"  ✓ {account.name} ({account.network}): " in report
        return at_kill, report, stored, post.state
    finally:
        for worker in workers:
            if worker.process is not None and worker.process.returncode is None:
                await worker.kill()
        await seeder.herald.stop()

