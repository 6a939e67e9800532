"""Account health: tokens refreshed before use and stored sealed; dead tokens found before a post is due,
the team told once with the fix, and the dead account's deliveries held (never sent with a dead token)."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from handlers.core.ports import AccountView, ErrorKind, PublishError
from handlers.workspace.health import check_accounts, due_for_check
from storage.models import Account
from tests.conftest import Team, recording_team
from tests.networks import RecordingNetwork


class TokenNetwork(RecordingNetwork):
    """A recording network whose tokens can be refreshed, and whose verify can be told the token died."""

    def __init__(self) -> None:
        super().__init__()
        self.dead: set[str] = set()
        self.refreshes: list[str] = []
        self.verifies: list[str] = []
        self.used_tokens: list[str | None] = []

    async def verify(self, account: AccountView) -> str:
        self.verifies.append(account.name)
        if account.name in self.dead:
            raise PublishError(ErrorKind.AUTH_EXPIRED, "the token was revoked")
        return "test account"

    async def refresh(self, account: AccountView) -> dict[str, Any] | None:
        if account.name in self.dead:
            raise PublishError(ErrorKind.AUTH_EXPIRED, "the refresh token was revoked")
        if account.credentials.get("token") == "old":
            self.refreshes.append(account.name)
            return {"token": "new", "expires_at": "2026-11-24T09:00:00+00:00"}
        return None

    async def publish(self, account: AccountView, post: Any) -> Any:
        self.used_tokens.append(account.credentials.get("token"))
        return await super().publish(account, post)


async def token_team(team: Team, *names: str) -> TokenNetwork:
    network = TokenNetwork()
    network.key = "recording"
    network.connect_spec = type(network.connect_spec)(required=(), secret=("token",), help="test network")
    team.herald.networks.add(network)
    await recording_team(team)  # workspace, bob approver; our network replaces the plain one below
    team.herald.networks.add(network)
    for name in names:
        out = await team.say("alice", f"/connect recording name={name} token=old")
        assert "Connected" in out, out
    return network


def credentials(team: Team, name: str) -> dict[str, Any]:
    with team.herald.db.session() as session:
        account = session.exec(select(Account).where(Account.name == name)).one()
        return team.herald.ctx.secrets.open(account.credentials)


async def test_an_expiring_token_is_refreshed_before_publishing_and_stored_sealed(team: Team) -> None:
    network = await token_team(team, "news")
    post_id = await team.approved_post()
    out = await team.say("alice", f"/publish {post_id}")
    assert "is published" in out
    assert network.refreshes == ["news"] and network.used_tokens == ["new"]
    assert credentials(team, "news") == {"token": "new", "expires_at": "2026-11-24T09:00:00+00:00"}
    with team.herald.db.session() as session:
        raw = session.exec(select(Account).where(Account.name == "news")).one().credentials
    assert raw is not None and b"new" not in raw  # sealed, not in the clear


async def test_a_dead_token_is_found_before_the_post_is_due_and_the_team_told_once(team: Team) -> None:
    network = await token_team(team, "news", "blog")
    post_id = await team.approved_post("Launch day")
    await team.say("alice", f"/schedule {post_id} in 2 hours")
    network.dead.add("news")
    team.clock.advance(hours=1)  # a post is due within 3 hours: its accounts are checked hourly
    assert sorted(due_for_check(team.herald.ctx)) == [1, 2]
    team.herald.console.captured = captured = []
    try:
        counts = await check_accounts(team.herald.ctx)
    finally:
        team.herald.console.captured = None
    assert counts == {"ok": 1, "dead": 1, "unknown": 0}
    told = "\n".join(captured)
    assert "news (recording) can't post any more: the refresh token was revoked" in told
    assert f"#{post_id} —" in told and "in 1 hour" in told
    assert "Fix: /connect recording name=news … (in a private chat with me)" in told
    accounts = await team.say("alice", "/accounts")
    assert "⚠ the refresh token was revoked" in accounts
    team.herald.console.captured = again = []
    try:
        team.clock.advance(hours=1, minutes=1)
        await check_accounts(team.herald.ctx)
    finally:
        team.herald.console.captured = None
    assert again == []  # told once
    out = await team.tick(minutes=1)
    assert f"#{post_id} is partly published: 1 of 2 accounts." in out
    assert "✗ news (recording): news needs reconnecting (the refresh token was revoked); nothing was sent there" in out
    assert "reconnect with /connect recording name=news" in out
    assert network.count("news") == 0 and network.count("blog") == 1
    network.dead.clear()
    assert "Reconnected news" in await team.say("alice", "/connect recording name=news token=fresh")
    out = await team.say("alice", f"/retry {post_id}")
    assert network.count("news") == 1 and network.used_tokens[-1] == "fresh"
    assert f"#{post_id} is published" in out


async def test_accounts_are_checked_daily_and_a_network_hiccup_is_not_a_dead_token(team: Team) -> None:
    network = await token_team(team, "news")
    assert due_for_check(team.herald.ctx) == []  # just connected = just checked
    team.clock.advance(hours=23)
    assert due_for_check(team.herald.ctx) == []
    team.clock.advance(hours=1)
    assert due_for_check(team.herald.ctx) == [1]

    async def hiccup(account: AccountView) -> str:
        raise PublishError(ErrorKind.TRANSIENT, "X is having trouble (503)")

    network.verify = hiccup  # type: ignore[method-assign]
    assert await check_accounts(team.herald.ctx) == {"ok": 0, "dead": 0, "unknown": 1}
    assert "healthy" in await team.say("alice", "/accounts")
    assert due_for_check(team.herald.ctx) == [1]  # checked again next time


async def test_parallel_uses_of_a_rotating_refresh_token_refresh_once_and_never_kill_the_account(team: Team) -> None:
    """Publishing, metrics and the health check can want a token at the same moment; a refresh token
    that rotates on use must be spent once, and the account stays healthy."""
    import asyncio

    from handlers.core.lookups import account_view
    from handlers.workspace.health import fresh_view

    network = await token_team(team, "news")
    spent: set[str] = set()

    async def rotating(account: AccountView) -> dict[str, Any] | None:
        token = account.credentials.get("token")
        if token != "old":
            return None
        if token in spent:
            raise PublishError(ErrorKind.AUTH_EXPIRED, f"refresh token {token} was already used")
        spent.add(token)
        await asyncio.sleep(0.01)  # the network takes a moment; the other callers arrive meanwhile
        return {"token": "new"}

    network.refresh = rotating  # type: ignore[method-assign]
    with team.herald.db.session() as session:
        view = account_view(team.herald.ctx, session.exec(select(Account)).one(), with_secrets=True)
    views = await asyncio.gather(*(fresh_view(team.herald.ctx, network, view) for _ in range(3)))
    assert [v.credentials["token"] for v in views] == ["new", "new", "new"]
    assert "healthy" in await team.say("alice", "/accounts")
    assert credentials(team, "news")["token"] == "new"
