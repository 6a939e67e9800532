"""What the connector tests (tests/test_net_*.py) share: the HTTP client, a connector on it, a fake
server, and the account a connector is handed.

pytest only shares fixtures through conftest.py, so these are plain helpers and fixture factories:

    server = kit.server_fixture(FakeX)          # a module's `server` fixture: the fake, started and stopped
    net = kit.network_fixture(XNetwork)          # a module's `net` fixture: the connector on a fresh client
    acct = kit.account("x", server.url, settings={...}, credentials={...})

The `clock` fixture (a FakeClock) comes from tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

import httpx
import pytest

from bot.networks.http import new_client
from handlers.core.ports import AccountView, Clock

N = TypeVar("N")
S = TypeVar("S")


def account(network: str, base_url: str | None, *, settings: dict[str, Any] | None = None,
            credentials: dict[str, Any] | None = None, name: str = "brand", account_id: int = 1) -> AccountView:
    """An account as Herald hands it to a connector (workspace 1)."""
    return AccountView(id=account_id, workspace_id=1, network=network, name=name, base_url=base_url,
                       settings=dict(settings or {}), credentials=dict(credentials or {}))


@asynccontextmanager
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """The shared HTTP client Herald gives every connector (bot.networks.http.new_client), closed after."""
    async with new_client() as http:
        yield http


@asynccontextmanager
async def connector(cls: Callable[[httpx.AsyncClient, Clock], N], clock: Clock, **attrs: Any) -> AsyncIterator[N]:
    """A connector on its own client; `attrs` are set on it (e.g. poll_interval=0 so tests don't wait)."""
    async with client() as http:
        network = cls(http, clock)
        for name, value in attrs.items():
            setattr(network, name, value)
        yield network


def client_fixture() -> Any:
    """A module's `client` fixture: `client = kit.client_fixture()`."""

    @pytest.fixture
    async def _client() -> AsyncIterator[httpx.AsyncClient]:
        async with client() as http:
            yield http

    return _client


def server_fixture(fake: Callable[[], AbstractAsyncContextManager[S]]) -> Any:
    """A module's `server` fixture: the fake network, started for the test and closed after."""

    @pytest.fixture
    async def _server() -> AsyncIterator[S]:
        async with fake() as srv:
            yield srv

    return _server


def network_fixture(cls: Callable[[httpx.AsyncClient, Clock], Any], **attrs: Any) -> Any:
    """A module's `net` fixture: the connector on a fresh client and the test's `clock`."""

    @pytest.fixture
    async def _net(clock: Clock) -> AsyncIterator[Any]:
        async with connector(cls, clock, **attrs) as network:
            yield network

    return _net
