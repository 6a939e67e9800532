"""A Network for tests that records every publish call, can be told how to fail and what a check for a lost
send finds, and the real connectors' text checks by network key (every connector of `build_networks`, no
account), for the limit tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Any

import httpx

from bot.networks import NetworkDirectory, build_networks
from handlers.core.counting import LimitCheck, TextRules, check_rules, count
from handlers.core.ports import (
    CANT_TELL,
    AccountView,
    Comment,
    ConnectSpec,
    ErrorKind,
    Found,
    Metrics,
    NetworkProfile,
    Outgoing,
    Published,
    PublishError,
    ReplyTarget,
    Share,
    Unknown,
)
from storage.db import Database
from tests.conftest import FakeClock


@cache
def every_network() -> NetworkDirectory:
    """Every connector Herald has (never started: nothing is sent), to measure texts by their rules."""
    return build_networks(Database("sqlite://"), FakeClock(), httpx.AsyncClient())


def _connector(network: str) -> Any:
    directory = every_network()
    key = directory.resolve(network)
    if key is None:
        known = ", ".join(p.key for p in directory.profiles())
        raise ValueError(f"unknown network {network!r}; known networks: {known}")
    return directory.get(key)


def check_text(network: str, text: str, *, media_count: int = 0, max_characters: int | None = None,
               url_weight: int | None = None) -> LimitCheck:
    """`text` measured by `network`'s connector: its profile's text rules plus its own problems."""
    connector = _connector(network)
    if url_weight is not None:
        return connector.measure(text, media_count, max_characters=max_characters, url_weight=url_weight)
    return connector.measure(text, media_count, max_characters=max_characters)


def count_text(network: str, text: str, *, url_weight: int | None = None) -> int:
    """`text`'s length as `network` counts it (its profile's counting)."""
    return count(_connector(network).profile.text.counting, text, url_weight=url_weight)


def network_labels() -> dict[str, str]:
    """Every network's key → label, from the connectors' profiles."""
    return {p.key: p.label for p in every_network().profiles()}


class RecordingNetwork:
    """Counts calls per account. `behaviour[account_name]` may raise, or block until released."""

    key = "recording"
    label = "Recording"
    profile = NetworkProfile(key="recording", label="Recording", text=TextRules(5000, max_images=10))
    idempotent = False
    connect_spec = ConnectSpec(required=(), optional=(), secret=(), help="test network")

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []  # (account name, text) per publish call that reached "the network"
        self.outgoing: list[Outgoing] = []  # everything each call was handed (media bytes, resume)
        self.behaviour: dict[str, Callable[[], None]] = {}
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()
        # what look_for_post answers for a delivery whose outcome is unknown (default: can't tell)
        self.lookup: Callable[[Outgoing], Found] = lambda _post: CANT_TELL
        self.looked_for: list[tuple[str, Outgoing, datetime]] = []  # (account name, delivery, since) per check

    def check(self, account: AccountView, text: str, media_count: int) -> LimitCheck:
        return self.measure(text, media_count)

    def measure(self, text: str, media_count: int, *, max_characters: int | None = None) -> LimitCheck:
        """By the sandbox's rules, as the sandbox itself reports them."""
        return check_rules("sandbox", "Sandbox", self.profile.text, text, media_count=media_count,
                           max_characters=max_characters)

    def remote_id_from_url(self, account: AccountView, url: str) -> str | None:
        return None

    async def verify(self, account: AccountView) -> str:
        return "test account"

    async def publish(self, account: AccountView, post: Outgoing) -> Published:
        self.calls.append((account.name, post.text))
        self.outgoing.append(post)
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        behaviour = self.behaviour.get(account.name)
        if behaviour is not None:
            behaviour()
        return Published(remote_id=f"r{len(self.calls)}", url=f"https://recording.invalid/{len(self.calls)}")

    async def look_for_post(self, account: AccountView, post: Outgoing, since: datetime) -> Found:
        self.looked_for.append((account.name, post, since))
        return self.lookup(post)

    async def fetch_shares(self, account: AccountView, remote_id: str) -> list[Share] | Unknown:
        return CANT_TELL

    async def fetch_metrics(self, account: AccountView, remote_ids: list[str]) -> dict[str, Metrics]:
        return {remote_id: Metrics(likes=1) for remote_id in remote_ids}

    async def fetch_comments(self, account: AccountView, remote_ids: list[str], since: datetime | None) -> list[Comment]:
        return []

    async def refresh(self, account: AccountView) -> dict[str, Any] | None:
        return None

    def reply_refusal(self, account: AccountView) -> str | None:
        return "it has no way to answer"

    def reply_text(self, account: AccountView, target: ReplyTarget, text: str) -> str:
        return text

    def check_reply(self, account: AccountView, text: str) -> LimitCheck:
        return self.measure(text, 0)

    async def reply(self, account: AccountView, target: ReplyTarget, text: str) -> Published:
        raise PublishError(ErrorKind.REJECTED, "it has no way to answer")

    def count(self, account_name: str) -> int:
        return sum(1 for name, _text in self.calls if name == account_name)
