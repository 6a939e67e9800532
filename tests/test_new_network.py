"""Adding a network touches only bot/networks/, the tests and the README: a throwaway connector, defined here with
its profile and a tiny loopback fake, is registered into the test Herald's directory, and the team connects it,
drafts to it, tailors a variant for it, publishes through it and asks for its best times — while no file under
handlers/ names it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from bot.networks import NetworkDirectory
from bot.networks.http import HttpNetwork
from handlers.core.counting import Counting, TextRules
from handlers.core.ports import (
    AccountView,
    ConnectSpec,
    Metrics,
    NetworkProfile,
    Outgoing,
    PostingWindow,
    Published,
    ReadBudget,
    Verified,
)
from tests.conftest import FakeClock, Team
from tests.fakes.loopback import LoopbackServer

HANDLERS = Path(__file__).resolve().parent.parent / "handlers"


class FakeParrot(LoopbackServer):
    """Parrot's API, as small as a network gets: who am I, and post a squawk (returns its id)."""

    def __init__(self) -> None:
        super().__init__()
        self.squawks: dict[str, str] = {}
        self.route("GET", "/v1/me", self.me)
        self.route("POST", "/v1/squawks", self.squawk)

    async def me(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer polly-token":
            return web.json_response({"error": "bad token"}, status=401)
        return web.json_response({"id": "7", "handle": "polly"})

    async def squawk(self, request: web.Request) -> web.Response:
        body = await request.json()
        squawk_id = str(len(self.squawks) + 1)
        self.squawks[squawk_id] = body["text"]
        return web.json_response({"id": squawk_id})


class ParrotNetwork(HttpNetwork):
    """A network Herald has never heard of, written the way every connector is: its profile beside its limits."""

    key = "parrot"
    label = "Parrot"
    default_base_url = "https://api.parrot.example"
    publish_limits = ((10, 60.0),)
    profile = NetworkProfile(
        key="parrot", label="Parrot", aliases=("squawk",),
        text=TextRules(150, Counting.GRAPHEMES, "graphemes", max_images=2),
        read_budget=ReadBudget(5, timedelta(hours=1)),
        best_times=(PostingWindow((5,), 7, 8),),
        hosts=frozenset({"parrot.example"}),
    )
    url_id_pattern = r"parrot\.example/[^/]+/(?P<id>\d+)"
    connect_spec = ConnectSpec(required=("token",), secret=("token",),
                               help="A Parrot token. Example: /connect parrot name=polly token=…")

    def text_problems(self, text: str, media_count: int) -> list[str]:
        return ["Parrot won't say 'cracker'"] if "cracker" in text.lower() else []

    async def verify(self, account: AccountView) -> Verified:
        me = await self.call("GET", f"{self.base(account)}/v1/me", headers=self.headers(account))
        return Verified(description=f"@{me['handle']} on Parrot (id {me['id']})", settings={"user_id": me["id"]})

    async def publish(self, account: AccountView, post: Outgoing) -> Published:
        await self.hold_back(account)
        body = await self.call("POST", f"{self.base(account)}/v1/squawks", sending=True,
                               headers=self.headers(account), json={"text": post.text})
        return Published(remote_id=str(body["id"]), url=f"https://parrot.example/{account.name}/{body['id']}")

    async def fetch_metrics(self, account: AccountView, remote_ids: list[str]) -> dict[str, Metrics]:
        return {}

    def headers(self, account: AccountView) -> dict[str, str]:
        return {"Authorization": f"Bearer {account.credentials.get('token', '')}"}


@pytest.fixture
async def parrot(team: Team) -> AsyncIterator[FakeParrot]:
    """The fake on 127.0.0.1, and the connector registered into the test Herald's directory: one line."""
    client = team.herald.networks.client
    assert client is not None
    team.herald.networks.add(ParrotNetwork(client, team.clock))
    async with FakeParrot() as fake:
        yield fake


async def connected(team: Team, fake: FakeParrot) -> str:
    await team.setup_workspace(accounts=())
    return await team.say("alice", f"/connect squawk name=polly base_url={fake.url} token=polly-token")


async def test_a_new_network_is_connected_by_its_alias_and_shown_by_its_label(team: Team, parrot: FakeParrot) -> None:
    out = await connected(team, parrot)
    assert "Connected polly (Parrot) — @polly on Parrot (id 7)." in out
    out = await team.say("alice", "/accounts")
    assert "polly: Parrot" in out


async def test_drafts_are_checked_by_the_new_networks_profile_and_its_own_rule(team: Team, parrot: FakeParrot) -> None:
    await connected(team, parrot)
    out = await team.say("alice", "/draft Hello parrots 🦜 to=polly")
    assert "polly: ✓ Parrot: 15/150 graphemes" in out  # the parrot is one grapheme
    out = await team.say("alice", f"/draft Polly wants a cracker {'🦜' * 131} to=polly")
    assert ("polly: ✗ Parrot: 153/150 graphemes — 3 graphemes over the limit; Parrot won't say 'cracker' "
            "→ fix with /variant 2 polly <text>") in out


async def test_a_variant_for_the_new_network_and_one_publish_reach_its_api_once(
    team: Team, parrot: FakeParrot
) -> None:
    await connected(team, parrot)
    await team.say("alice", "/role bob approver")
    await team.say("alice", "/draft Polly wants a cracker https://shop.acme.com/seeds to=polly")
    out = await team.say("alice", "/variant 1 parrot Seeds: https://shop.acme.com/seeds https://parrot.example/polly")
    assert "polly: ✓ Parrot: 144/150 graphemes" in out  # counted as sent: the shop link carries its UTM tags
    await team.say("alice", "/submit 1")
    await team.say("bob", "/approve 1")
    out = await team.say("alice", "/publish 1")
    assert "✓ polly (parrot): https://parrot.example/polly/1" in out
    assert "#1 is published" in out
    posts = parrot.requests("POST", "/v1/squawks")
    assert len(posts) == 1
    # the shop link is tagged for the new network; the network's own site (its profile's host) is not
    assert posts[0].json["text"] == (
        "Seeds: https://shop.acme.com/seeds?utm_source=parrot&utm_medium=social&utm_campaign=herald"
        "&utm_content=post-1-polly https://parrot.example/polly")
    out = await team.say("alice", "/publish 1")
    assert len(parrot.requests("POST", "/v1/squawks")) == 1


async def test_best_times_fall_back_to_the_new_networks_own_defaults(team: Team, parrot: FakeParrot) -> None:
    await connected(team, parrot)
    out = await team.say("alice", "/besttime parrot")
    assert "Not enough history yet on Parrot" in out
    assert "  Parrot: Sat 07:00–08:00" in out
    assert "overall finding" not in out


async def test_a_sandbox_account_like_a_network_is_checked_by_that_networks_own_connector(
    team: Team, parrot: FakeParrot
) -> None:
    await team.setup_workspace(accounts=("gram like=instagram", "rehearsal like=parrot"))
    tags = " ".join(f"#t{n}" for n in range(31))
    out = await team.say("alice", f"/draft {tags} cracker to=gram,rehearsal")
    assert "gram: ✗ Instagram: 152/2200 characters — Instagram takes at most 30 hashtags; this post has 31" in out
    assert ("rehearsal: ✗ Parrot: 152/150 graphemes — 2 graphemes over the limit; Parrot won't say 'cracker'"
            in out)


def test_no_file_under_handlers_names_the_new_network() -> None:
    named: list[Any] = [path for path in HANDLERS.rglob("*.py") if "parrot" in path.read_text().lower()]
    assert named == []


def test_the_directory_names_a_network_by_its_key_or_alias_and_refuses_a_taken_alias() -> None:
    directory = NetworkDirectory()
    directory.add(ParrotNetwork(httpx.AsyncClient(), FakeClock()))
    assert directory.resolve(" Squawk ") == directory.resolve("PARROT") == "parrot"
    assert directory.resolve("myspace") is None
    assert directory.label("parrot") == "Parrot" and directory.label("myspace") == "myspace"
    assert [p.key for p in directory.profiles()] == ["parrot"]

    class Copycat(ParrotNetwork):
        key = "copycat"
        profile = replace(ParrotNetwork.profile, key="copycat", label="Copycat")  # still answers to "squawk"

    with pytest.raises(ValueError, match="'squawk' already names parrot"):
        directory.add(Copycat(httpx.AsyncClient(), FakeClock()))
    assert directory.keys() == ["parrot"] and directory.resolve("copycat") is None
