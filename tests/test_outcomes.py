"""Unknown outcomes are checked with the network before the team is asked (handlers/posts/publishing/outcomes.py).

A worker dies while a send is in flight (the publishing task cancelled mid-request, as in tests/test_crash.py),
and the restarted Herald asks the network: Mastodon by resending with the same Idempotency-Key inside its hour,
Bluesky by reading back the record key Herald chose. Found → sent with the network's id, and the team's report
says so; surely absent → sent again by the normal retry; can't tell → unconfirmed, never resent. A database
error before any request left is a transient failure, retried by itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy.exc import OperationalError
from sqlmodel import select

import handlers.posts.publishing.send as send
from handlers.core.ports import CANT_TELL, ErrorKind, Outgoing, Published, PublishError
from storage.models import Audience
from tests.conftest import FakeClock, Team, capturing
from tests.fakes.bluesky_api import FakeBluesky
from tests.fakes.mastodon_api import FakeMastodon
from tests.networks import RecordingNetwork

BSKY_PASSWORD = "abcd-efgh-ijkl-mnop"
CONFIRMED = "(its answer was lost; Herald confirmed it with the network)"


class CutOff:
    """The first create is held after (or before) the network acts on it, until the test lets it go."""

    def __init__(self, *, made: bool) -> None:
        self.made = made  # the post exists before the worker dies
        self.arrived = asyncio.Event()
        self.release = asyncio.Event()
        self.holding = True

    async def create(self, request: web.Request, real: Any) -> web.Response:
        if not self.holding:
            return await real(request)  # type: ignore[no-any-return]
        self.holding = False
        response = await real(request) if self.made else None
        self.arrived.set()
        await self.release.wait()
        return response or web.json_response({"error": "the client went away"}, status=503)


class CutOffMastodon(FakeMastodon):
    def __init__(self, clock: FakeClock, cut: CutOff) -> None:
        super().__init__(clock=clock.now)  # keys forgotten an hour after their first use, as Mastodon does
        self.cut = cut

    async def create(self, request: web.Request) -> web.Response:
        return await self.cut.create(request, super().create)


class CutOffBluesky(FakeBluesky):
    def __init__(self, clock: FakeClock, cut: CutOff) -> None:
        super().__init__(clock.now, password=BSKY_PASSWORD)
        self.cut = cut

    async def create_record(self, request: web.Request) -> web.Response:
        return await self.cut.create(request, super().create_record)


@pytest.fixture
async def started(db_url: str, clock: FakeClock) -> AsyncIterator[list[Any]]:
    """Heralds and fakes a test starts, stopped and closed at its end (held requests let go first)."""
    things: list[Any] = []
    yield things
    for thing in reversed(things):
        if isinstance(thing, CutOff):
            thing.release.set()
        elif hasattr(thing, "console"):
            await thing.stop()
        else:
            await thing.close()


async def crash_while_sending(db_url: str, clock: FakeClock, started: list[Any], fake: Any, cut: CutOff,
                              connect: str) -> tuple[int, Team]:
    """A team publishes a post to the fake's account; the worker dies while the create is in flight."""
    started.append(cut)
    await fake.start()
    started.append(fake)
    herald, _ = capturing(db_url, clock)
    await herald.start()
    team = Team(herald, clock, db_url)
    await team.setup_workspace(accounts=())
    assert (await team.say("alice", connect.format(url=fake.url))).startswith("Connected ")
    post_id = await team.approved_post("Autumn sale: 20% off all week")
    publishing = asyncio.create_task(team.say("alice", f"/publish {post_id}"))
    await asyncio.wait_for(cut.arrived.wait(), timeout=10)
    publishing.cancel()  # the process dies with the request in flight
    await asyncio.gather(publishing, return_exceptions=True)
    await herald.stop()
    assert [d.state for d in team.deliveries(post_id)] == ["sending"]
    return post_id, team


async def restart(db_url: str, clock: FakeClock, started: list[Any]) -> tuple[Team, str]:
    """The same worker starts again (its start-up recovery applies); what it told the team."""
    team, lines = await restart_telling(db_url, clock, started)
    return team, "\n".join(lines)


async def restart_telling(db_url: str, clock: FakeClock, started: list[Any]) -> tuple[Team, list[str]]:
    """As `restart`; the list the console keeps writing the team's chat into."""
    herald, lines = capturing(db_url, clock)
    await herald.start()
    started.append(herald)
    return Team(herald, clock, db_url), lines


MASTODON = "/connect mastodon name=acme-masto base_url={url} access_token=masto-token"
BLUESKY = f"/connect bluesky name=acme-bsky base_url={{url}} handle=brand.bsky.social app_password={BSKY_PASSWORD}"


async def test_a_mastodon_send_cut_off_by_a_crash_is_found_with_its_idempotency_key_and_reported_live(
    db_url: str, clock: FakeClock, started: list[Any]
) -> None:
    cut = CutOff(made=True)
    fake = CutOffMastodon(clock, cut)
    post_id, _ = await crash_while_sending(db_url, clock, started, fake, cut, MASTODON)
    clock.advance(minutes=3)
    team, said = await restart(db_url, clock, started)
    [delivery] = team.deliveries(post_id)
    assert delivery.state == "sent", (delivery.state, delivery.last_error)
    assert list(fake.statuses) == [delivery.remote_id]  # one status: the one the lost answer was about
    assert delivery.remote_url == fake.statuses[delivery.remote_id]["url"]
    assert f"📣 #{post_id} is published on 1 account(s):" in said, said
    assert f"✓ acme-masto (mastodon): {delivery.remote_url} {CONFIRMED}" in said
    assert team.post(post_id).state == "published"
    creates = fake.requests("POST", "/api/v1/statuses")
    assert len(creates) == 2  # the resend carried the same key, so Mastodon answered with the same status
    assert {seen.header("idempotency-key") for seen in creates} == {delivery.idempotency_key}
    assert await team.tick(hours=2) == "" and len(fake.statuses) == 1


async def test_past_the_idempotency_keys_hour_a_mastodon_send_cut_off_stays_unconfirmed_and_is_not_resent(
    db_url: str, clock: FakeClock, started: list[Any]
) -> None:
    cut = CutOff(made=False)
    fake = CutOffMastodon(clock, cut)
    post_id, _ = await crash_while_sending(db_url, clock, started, fake, cut, MASTODON)
    clock.advance(minutes=55)  # Mastodon may have forgotten the key: a resend could post twice
    team, said = await restart(db_url, clock, started)
    [delivery] = team.deliveries(post_id)
    assert delivery.state == "unconfirmed" and delivery.error_kind == ErrorKind.UNKNOWN_OUTCOME.value
    assert "? acme-masto (mastodon): unconfirmed — Herald stopped while sending it" in said, said
    assert len(fake.requests("POST", "/api/v1/statuses")) == 1
    assert await team.tick(hours=2) == "" and len(fake.requests("POST", "/api/v1/statuses")) == 1


async def test_a_bluesky_send_cut_off_by_a_crash_is_found_by_its_record_key_with_one_create(
    db_url: str, clock: FakeClock, started: list[Any]
) -> None:
    cut = CutOff(made=True)
    fake = CutOffBluesky(clock, cut)
    post_id, _ = await crash_while_sending(db_url, clock, started, fake, cut, BLUESKY)
    team, said = await restart(db_url, clock, started)
    [delivery] = team.deliveries(post_id)
    assert delivery.state == "sent", (delivery.state, delivery.last_error)
    assert list(fake.records) == [delivery.remote_id]
    assert f"✓ acme-bsky (bluesky): {delivery.remote_url} {CONFIRMED}" in said, said
    assert team.post(post_id).state == "published"
    assert len(fake.requests("POST", "/xrpc/com.atproto.repo.createRecord")) == 1
    assert len(fake.requests("GET", "/xrpc/com.atproto.repo.getRecord")) == 1


async def test_a_bluesky_send_cut_off_before_the_post_was_made_is_sent_again_once(
    db_url: str, clock: FakeClock, started: list[Any]
) -> None:
    cut = CutOff(made=False)
    fake = CutOffBluesky(clock, cut)
    post_id, _ = await crash_while_sending(db_url, clock, started, fake, cut, BLUESKY)
    team, lines = await restart_telling(db_url, clock, started)
    said = "\n".join(lines)
    assert f"⏳ #{post_id}: 0 of 1 sent so far; the rest retry by themselves." in said, said
    assert "acme-bsky's network says the post isn't there" in said
    out = "\n".join(lines) + "\n" + await team.tick(seconds=1)  # sent by itself, on the retry's trigger
    [delivery] = team.deliveries(post_id)
    assert delivery.state == "sent", (delivery.state, delivery.last_error)
    assert list(fake.records) == [delivery.remote_id]
    assert f"📣 #{post_id} is published on 1 account(s):\n  ✓ acme-bsky (bluesky): {delivery.remote_url}\n" \
        in out + "\n", out
    assert len(fake.requests("POST", "/xrpc/com.atproto.repo.createRecord")) == 2  # the lost one, and this one


# -- the live path: an unknown outcome is checked before the delivery is given up as unconfirmed ---------------


def lost_answer() -> None:
    raise PublishError(ErrorKind.UNKNOWN_OUTCOME, "no answer came back within 30 seconds")


async def recording(team: Team) -> RecordingNetwork:
    network = RecordingNetwork()
    team.herald.networks.add(network)
    await team.setup_workspace(accounts=())
    await team.say("alice", "/connect recording name=news")
    network.behaviour["news"] = lost_answer
    return network


async def test_a_lost_answer_the_network_finds_is_sent_with_its_id_and_the_report_says_it_was_checked(
    team: Team
) -> None:
    network = await recording(team)
    network.lookup = lambda post: Published("r-found", f"https://recording.invalid/found/{post.delivery_id}")
    post_id = await team.approved_post()
    out = await team.say("alice", f"/publish {post_id}")
    [delivery] = team.deliveries(post_id)
    assert delivery.state == "sent" and delivery.remote_id == "r-found"
    assert f"✓ news (recording): {delivery.remote_url} {CONFIRMED}" in out, out
    assert f"📣 #{post_id} is published on 1 account(s):" in out
    [(name, looked, since)] = network.looked_for
    assert name == "news" and looked.idempotency_key == delivery.idempotency_key and since <= team.clock.now()
    assert network.count("news") == 1


async def test_a_lost_answer_the_network_surely_lacks_is_retried_by_itself(team: Team) -> None:
    network = await recording(team)
    network.lookup = lambda _post: None
    post_id = await team.approved_post()
    out = await team.say("alice", f"/publish {post_id}")
    [delivery] = team.deliveries(post_id)
    assert delivery.state == "pending" and delivery.error_kind == ErrorKind.TRANSIENT.value
    assert "news's network says the post isn't there; retrying by itself at" in out, out
    del network.behaviour["news"]
    out = await team.tick(minutes=1)
    assert team.deliveries(post_id)[0].state == "sent", out
    assert network.count("news") == 2


@pytest.mark.parametrize("answer", ["can't tell", "the check breaks"])
async def test_a_lost_answer_the_network_cannot_tell_about_stays_unconfirmed_and_is_never_resent(
    team: Team, answer: str
) -> None:
    network = await recording(team)

    def breaks(_post: Outgoing) -> Any:
        raise PublishError(ErrorKind.UNKNOWN_OUTCOME, "the look-up timed out too")

    network.lookup = (lambda _post: CANT_TELL) if answer == "can't tell" else breaks
    post_id = await team.approved_post()
    out = await team.say("alice", f"/publish {post_id}")
    [delivery] = team.deliveries(post_id)
    assert delivery.state == "unconfirmed" and delivery.error_kind == ErrorKind.UNKNOWN_OUTCOME.value
    assert "? news (recording): unconfirmed — no answer came back within 30 seconds" in out, out
    assert await team.tick(hours=2) == ""
    assert network.count("news") == 1 and len(network.looked_for) == 1


async def test_a_database_error_before_any_request_left_is_transient_and_retried(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    network = await recording(team)
    del network.behaviour["news"]

    async def database_down(*_args: object) -> None:
        raise OperationalError("SELECT credentials", {}, Exception("connection refused"))

    monkeypatch.setattr(send, "fresh_view", database_down)
    post_id = await team.approved_post()
    out = await team.say("alice", f"/publish {post_id}")
    [delivery] = team.deliveries(post_id)
    assert delivery.state == "pending" and delivery.error_kind == ErrorKind.TRANSIENT.value, delivery.state
    assert "Herald couldn't prepare the send (OperationalError); nothing was sent; retrying by itself" in out, out
    assert network.calls == [] and network.looked_for == []
    monkeypatch.undo()
    out = await team.tick(minutes=1)
    assert team.deliveries(post_id)[0].state == "sent", out
    assert network.count("news") == 1


async def test_a_lost_answer_matched_to_another_audiences_post_of_the_account_stays_unconfirmed(team: Team) -> None:
    """One account reaching two audiences sends two texts; the second's answer is lost and the network's look-up
    (comparing texts without their links, as X's does) finds the first's post: that proves nothing about the
    second, which stays unconfirmed (never counted as sent, never resent blindly)."""
    network = RecordingNetwork()
    team.herald.networks.add(network)
    await team.setup_workspace(accounts=())
    await team.say("alice", "/connect recording name=news")
    team.add_audience("south", ("news",), "Europe/Madrid", "es", link="https://shop.example/es")
    team.add_audience("north", ("news",), "Europe/Oslo", "nb", link="https://shop.example/no")
    calls = []

    def second_answer_lost() -> None:
        calls.append(1)
        if len(calls) == 2:
            lost_answer()

    network.behaviour["news"] = second_answer_lost
    first: list[Published] = []
    network.lookup = lambda _post: first[0]  # whatever is asked, the network "finds" the first post
    out = await team.say("alice", "/draft Summer sale today! to=audience:south,audience:north")
    post_id = int(out.split("#", 1)[1].split(" ", 1)[0].rstrip(".:"))
    await team.say("alice", f"/submit {post_id}")
    await team.say("bob", f"/approve {post_id}")
    assert len(team.deliveries(post_id)) == 2  # one per audience, on the one account
    first.append(Published("r1", "https://recording.invalid/1"))  # what the first send answers
    out = await team.say("alice", f"/publish {post_id}")
    states = sorted((d.state, d.remote_id) for d in team.deliveries(post_id))
    assert states == [("sent", "r1"), ("unconfirmed", None)], (states, out)
    assert network.count("news") == 2  # never resent by itself
    assert "/confirm" in out, out


async def test_confirm_names_the_audience_when_an_account_has_two_unconfirmed_deliveries(team: Team) -> None:
    """One account reaching two audiences, both answers lost: /confirm with only the account can't tell which
    post the team found and asks; `audience:<name>` after the account (or alone) picks one, and nothing else
    changes."""
    network = RecordingNetwork()
    team.herald.networks.add(network)
    await team.setup_workspace(accounts=())
    await team.say("alice", "/connect recording name=news")
    team.add_audience("south", ("news",), "Europe/Madrid", "es")
    team.add_audience("north", ("news",), "Europe/Oslo", "nb")
    network.behaviour["news"] = lost_answer
    out = await team.say("alice", "/draft Summer sale today! to=audience:south,audience:north")
    post_id = int(out.split("#", 1)[1].split(" ", 1)[0].rstrip(".:"))
    await team.say("alice", f"/submit {post_id}")
    await team.say("bob", f"/approve {post_id}")
    await team.say("alice", f"/publish {post_id}")
    assert sorted(d.state for d in team.deliveries(post_id)) == ["unconfirmed", "unconfirmed"]

    out = await team.say("alice", f"/confirm {post_id} news r-south")
    assert out.startswith(f"✋ #{post_id} has 2 unconfirmed deliveries for news (news · "), out
    assert f"name one: /confirm {post_id} news audience:" in out, out
    out = await team.say("alice", f"/confirm {post_id} news audience:west r-south")
    assert out.startswith("✋") and "west" in out, out
    assert sorted(d.state for d in team.deliveries(post_id)) == ["unconfirmed", "unconfirmed"]  # nothing changed

    await team.say("alice", f"/confirm {post_id} news audience:south r-south")
    with team.herald.db.session() as session:
        names = {a.id: a.name for a in session.exec(select(Audience)).all()}
    by_audience = {names[d.audience_id]: d for d in team.deliveries(post_id)}
    assert (by_audience["south"].state, by_audience["south"].remote_id) == ("sent", "r-south")
    assert by_audience["north"].state == "unconfirmed"
    out = await team.say("alice", f"/confirm {post_id} audience:north r-north")
    assert f"#{post_id} is published on all 2 account(s)" in out, out
    assert sorted((d.state, d.remote_id) for d in team.deliveries(post_id)) == [("sent", "r-north"),
                                                                                 ("sent", "r-south")]
    assert network.count("news") == 2  # never resent
