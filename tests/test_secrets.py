"""Secrets stay secret: credentials only in private chats, encrypted at rest, never echoed or logged."""

from __future__ import annotations

import logging

import pytest

from handlers import dispatch
from handlers.core.chat import Actor, ChatRef, Command
from tests.conftest import Team


async def test_credentials_sent_in_a_group_chat_are_refused_and_nothing_is_stored(team: Team) -> None:
    await team.setup_workspace(accounts=())
    group = ChatRef("console", "console", title="team room", private=False)  # the workspace's chat, as a group
    before = team.snapshot()
    reply = await dispatch.handle(
        team.herald.ctx,
        Command("connect", Actor("console", "alice", "alice"), group, text="sandbox name=brand token=hunter2-secret"),
    )
    assert reply.error
    assert "holds credentials, so I didn't store anything" in reply.text
    assert "private chat" in reply.text
    assert "hunter2-secret" not in reply.text
    assert team.snapshot() == before


async def test_a_connect_without_credentials_is_fine_in_a_group(team: Team) -> None:
    await team.setup_workspace(accounts=())
    group = ChatRef("console", "console", title="team room", private=False)
    reply = await dispatch.handle(
        team.herald.ctx, Command("connect", Actor("console", "alice", "alice"), group, text="sandbox name=brand")
    )
    assert not reply.error and reply.text.startswith("Connected brand (Sandbox)")


async def test_tokens_never_reach_the_log(team: Team, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await team.setup_workspace(accounts=("brand token=log-canary-123 fail=timeout",))
    post_id = await team.approved_post()
    out = await team.say("alice", f"/publish {post_id}")
    assert "unconfirmed" in out
    assert "log-canary-123" not in caplog.text
    said = [entry.split("\n", 1)[1] for entry in team.transcript if "\n" in entry]
    assert all("log-canary-123" not in text for text in said)
    assert "log-canary-123" not in await team.say("alice", "/accounts")
