"""A Network for tests that records every publish call, can be told how to fail, and what a check finds."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

from handlers.core.counting import LimitCheck, check_text
from handlers.core.ports import (
    CANT_TELL,
    AccountView,
    Comment,
    ConnectSpec,
    Found,
    Metrics,
    Outgoing,
    Published,
)


class RecordingNetwork:
    """Counts calls per account. `behaviour[account_name]` may raise, or block until released."""

    key = "recording"
    label = "Recording"
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
        return check_text("sandbox", text, media_count=media_count)

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

    async def fetch_metrics(self, account: AccountView, remote_ids: list[str]) -> dict[str, Metrics]:
        return {remote_id: Metrics(likes=1) for remote_id in remote_ids}

    async def fetch_comments(self, account: AccountView, remote_ids: list[str], since: datetime | None) -> list[Comment]:
        return []

    async def refresh(self, account: AccountView) -> dict[str, Any] | None:
        return None

    def count(self, account_name: str) -> int:
        return sum(1 for name, _text in self.calls if name == account_name)
