"""The test backend: a real Herald (SQLite, APScheduler, sandbox network) driven through the console chat.

`team.say("alice", "/draft Hello")` types a line as alice and returns everything Herald printed,
including notices it sent on its own. The clock is a FakeClock: tests move it, never sleep.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bot.app import Herald
from bot.settings import load_settings
from handlers.posts.publishing.due import sweep
from storage.models import Delivery, Post, SandboxPost

TEST_KEY = "Zm9yLXRlc3RzLW9ubHktbm90LWEtcmVhbC1rZXktLS0="  # a valid Fernet key, for PostgreSQL test runs
START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday, 10:00 in Paris


class FakeClock:
    def __init__(self, start: datetime = START) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def advance(self, **kwargs: float) -> None:
        self.current += timedelta(**kwargs)


class Team:
    """People typing into one console chat of one Herald process."""

    def __init__(self, herald: Herald, clock: FakeClock, db_url: str) -> None:
        self.herald = herald
        self.clock = clock
        self.db_url = db_url
        self.transcript: list[str] = []

    async def say(self, user: str, line: str) -> str:
        self.herald.console.user = user
        out = await self.herald.console.say(line)
        self.transcript.append(f"{user}> {line}\n{out}")
        return out

    async def tick(self, **kwargs: float) -> str:
        """Move the clock and run the sweep, as the scheduler would; returns what Herald printed."""
        self.clock.advance(**kwargs)
        return "\n".join(await self.printed(sweep(self.herald.ctx)))

    async def printed(self, job: Awaitable[object]) -> list[str]:
        """Run a job (the sweep, a periodic task) and return each message Herald printed meanwhile."""
        captured: list[str] = []
        self.herald.console.captured = captured
        try:
            await job
        finally:
            self.herald.console.captured = None
        return captured

    def post(self, post_id: int) -> Post:
        with self.herald.db.session() as session:
            post = session.get(Post, post_id)
            assert post is not None
            return post

    def deliveries(self, post_id: int) -> list[Delivery]:
        with self.herald.db.session() as session:
            return list(session.exec(select(Delivery).where(Delivery.post_id == post_id).order_by(Delivery.id)).all())

    def add_audience(self, name: str, accounts: tuple[str, ...], tz: str, lang: str, *, link: str | None = None,
                     country: str | None = None, notes: str | None = None) -> int:
        """An audience of the (only) workspace reached by the named accounts, written straight to the database
        (tests of targeting, variants and local time; /audience add is tested through the console)."""
        from storage.models import Account, Audience, AudienceAccount, Workspace

        with self.herald.db.session() as session:
            ws = session.exec(select(Workspace)).one()
            audience = Audience(workspace_id=ws.id, name=name, timezone=tz, language=lang, link=link,
                                country=country, notes=notes, created_at=self.clock.now())
            session.add(audience)
            session.flush()
            for account_name in accounts:
                account = session.exec(select(Account).where(Account.workspace_id == ws.id)
                                       .where(Account.name == account_name)).one()
                session.add(AudienceAccount(audience_id=audience.id, account_id=account.id))
            session.commit()
            assert audience.id is not None
            return audience.id

    def sandbox_posts(self) -> list[SandboxPost]:
        with self.herald.db.session() as session:
            return list(session.exec(select(SandboxPost).order_by(SandboxPost.id)).all())

    def snapshot(self) -> dict[str, list[Any]]:
        """Every row of every table, to prove a refused command changed nothing."""
        from sqlmodel import SQLModel

        with self.herald.db.session() as session:
            return {
                table.name: [tuple(row) for row in session.execute(table.select()).all()]
                for table in SQLModel.metadata.sorted_tables
            }

    async def setup_workspace(self, *, approvers: tuple[str, ...] = ("bob",), accounts: tuple[str, ...] = (
            "brand-x like=x", "brand-bsky like=bluesky")) -> None:
        """alice: admin; bob: approver; two sandbox accounts with X and Bluesky rules."""
        await self.say("alice", "/setup Acme")
        await self.say("alice", "/timezone Europe/Paris")
        for spec in accounts:
            await self.say("alice", f"/connect sandbox name={spec}")
        for person in approvers:
            await self.say("alice", f"/role {person} approver")

    async def approved_post(self, text: str = "Spring sale starts today!") -> int:
        """A post drafted by alice and approved by bob; returns its number."""
        out = await self.say("alice", f"/draft {text}")
        post_id = int(out.split("#", 1)[1].split(" ", 1)[0].rstrip("."))
        await self.say("alice", f"/submit {post_id}")
        await self.say("bob", f"/approve {post_id}")
        return post_id


async def refused(team: Team, user: str, line: str, *words: str) -> str:
    """Type a line that Herald must refuse: a ✋ reply holding `words`, and not one row changed."""
    before = team.snapshot()
    out = await team.say(user, line)
    assert out.startswith("✋"), out
    for word in words:
        assert word in out, f"{word!r} not in {out!r}"
    assert team.snapshot() == before
    return out


def capturing(db_url: str, clock: FakeClock, network: Any = None, **settings: Any) -> tuple[Herald, list[str]]:
    """A Herald (not started) whose console output is collected in the returned list."""
    herald = make_herald(db_url, clock, **settings)
    lines: list[str] = []
    herald.console._write = lines.append
    if network is not None:
        herald.networks.add(network)
    return herald, lines


async def recording_team(team: Team, *names: str) -> Any:
    """alice's workspace with one account per name on a fresh RecordingNetwork; returns the network."""
    from tests.networks import RecordingNetwork

    network = RecordingNetwork()
    team.herald.networks.add(network)
    await team.setup_workspace(accounts=())
    for name in names:
        await team.say("alice", f"/connect recording name={name}")
    return network


def make_herald(db_url: str, clock: FakeClock, **settings: Any) -> Herald:
    """A Herald on `db_url` whose periodic sweep and poll never fire by themselves (tests tick instead)."""
    values = {"HERALD_SWEEP_SECONDS": 3600, "HERALD_METRICS_POLL_SECONDS": 3600, "HERALD_ACCOUNT_CHECK_SECONDS": 86400,
              **settings}
    if not db_url.startswith("sqlite"):
        values.setdefault("HERALD_SECRET_KEY", TEST_KEY)
    return Herald(load_settings(DATABASE_URL=db_url, **values), clock=clock, write=lambda _text: None)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


POSTGRES_ENV = "HERALD_TEST_POSTGRES_URL"


def postgres_url() -> str | None:
    """The PostgreSQL server to test on (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/herald_test)."""
    return os.environ.get(POSTGRES_ENV) or None


def fresh_postgres(url: str) -> str:
    """Empty the test database's public schema so the migrations start from nothing."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite in a temporary folder, or PostgreSQL when HERALD_TEST_POSTGRES_URL is set (CI runs both)."""
    url = postgres_url()
    return fresh_postgres(url) if url else f"sqlite:///{tmp_path / 'herald.db'}"


@contextlib.asynccontextmanager
async def running_team(db_url: str, clock: FakeClock, **settings: Any) -> AsyncIterator[Team]:
    """A started Herald (with `settings`, e.g. HERALD_PUBLIC_URL) and its team, stopped afterwards."""
    herald = make_herald(db_url, clock, **settings)
    await herald.start()
    try:
        yield Team(herald, clock, db_url)
    finally:
        await herald.stop()


@pytest.fixture
async def team(db_url: str, clock: FakeClock) -> AsyncIterator[Team]:
    async with running_team(db_url, clock) as team:
        yield team
