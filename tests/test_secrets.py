"""Secrets stay secret: credentials only in private chats, encrypted at rest, never echoed or logged."""

from __future__ import annotations

import logging

import pytest

from handlers import dispatch
from handlers.core.chat import Actor, ChatRef, Command
from handlers.workspace.accounts import holds_secret
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


@pytest.mark.parametrize("text", [
    "mastodn name=brand access_token=hunter2-secret",  # a typo in the network
    "sandbox token=hunter2-secret",  # name= missing
    "sandbox name=brand colour=red token=hunter2-secret",  # a key the network doesn't take
    "sandbox name=brand 'token=hunter2-secret",  # broken quoting
    "sandbox name=brand token: hunter2-secret",  # not key=value
    "myspace name=brand password=hunter2-secret",  # a network nobody knows, a common secret name
    "bluesky name=brand handle=acme.bsky.social app_password=hunter2-secret",
])
async def test_a_secret_in_a_group_is_caught_before_anything_else_is_read(team: Team, text: str) -> None:
    await team.setup_workspace(accounts=())
    group = ChatRef("console", "console", title="team room", private=False)
    before = team.snapshot()
    for actor in (Actor("console", "alice", "alice"), Actor("console", "mallory", "mallory")):  # admin, viewer
        reply = await dispatch.handle(team.herald.ctx, Command("connect", actor, group, text=text))
        assert reply.error and reply.delete_command
        assert "holds credentials, so I didn't store anything" in reply.text and "revoke it" in reply.text
        assert "hunter2" not in reply.text
    assert team.snapshot() == before


async def test_a_secret_in_a_group_with_a_typo_in_the_command_name_is_caught(team: Team) -> None:
    await team.setup_workspace(accounts=())
    group = ChatRef("console", "console", title="team room", private=False)
    reply = await dispatch.handle(
        team.herald.ctx, Command("conect", Actor("console", "alice", "alice"), group, text="sandbox token=hunter2")
    )
    assert reply.error and reply.delete_command and "revoke it" in reply.text


async def test_settings_that_only_look_like_keys_are_not_taken_for_secrets(team: Team) -> None:
    await team.setup_workspace(accounts=())
    group = ChatRef("console", "console", title="team room", private=False)
    reply = await dispatch.handle(team.herald.ctx, Command(
        "connect", Actor("console", "alice", "alice"), group,
        text="sandbox name=brand slots=09:00,17:30 timezone=Europe/Paris base_url=https://sandbox.example",
    ))
    assert not reply.delete_command
    assert not holds_secret(team.herald.ctx.networks, "sandbox name=brand like=x")
    assert holds_secret(team.herald.ctx.networks, "x name=brand Client-Secret=abc")
