"""An audience's country on a network that restricts by it, through the front door: a post aimed at an audience
with country=ES goes to a Facebook Page with the post's `targeting` keeping it to Spain (the fake Graph server
reads that field as Graph does, a JSON object in one form field), a post without an audience goes with no
targeting, and the approval card says which account keeps the post to the country and which reaches all its
followers."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator

import pytest
from PIL import Image
from sqlmodel import select

from handlers.core.chat import Command, MediaIn
from storage.models import Account, Audience, DeliveryState
from tests.conftest import Team
from tests.fakes.meta_graph import PAGE_ID, PAGE_TOKEN, MetaGraphServer

SPANISH = "Las rebajas de primavera empiezan hoy en todas nuestras tiendas de la ciudad"
ENGLISH = "Our spring sale starts today in every one of our shops across the city"
FEED = f"/v25.0/{PAGE_ID}/feed"


@pytest.fixture
async def graph() -> AsyncIterator[MetaGraphServer]:
    async with MetaGraphServer() as server:
        yield server


async def spain(team: Team, graph: MetaGraphServer) -> None:
    """alice's workspace (bob approves): a Facebook Page on the fake Graph server and a sandbox account with X's
    rules, both in the south audience (Spanish, country ES)."""
    await team.say("alice", "/setup Acme")
    await team.say("alice", "/timezone Europe/Paris")
    out = await team.say("alice", f"/connect facebook name=acme-fb base_url={graph.url} token={PAGE_TOKEN} "
                                  f"page_id={PAGE_ID}")
    assert out.startswith("Connected acme-fb ("), out
    await team.say("alice", "/connect sandbox name=acme-es like=x")
    await team.say("alice", "/role bob approver")
    team.add_audience("south", ("acme-fb", "acme-es"), "Europe/Madrid", "es", country="ES")


def post_number(out: str) -> int:
    return int(out.split("#", 1)[1].split(" ", 1)[0].rstrip(".:"))


async def test_an_audience_country_keeps_the_facebook_post_to_that_country(team: Team,
                                                                           graph: MetaGraphServer) -> None:
    await spain(team, graph)
    targeted = post_number(await team.say("alice", f"/draft {SPANISH} to=audience:south"))
    card = await team.say("alice", f"/submit {targeted}")
    # the card: Facebook keeps it to Spain, the sandbox (X's rules) reaches everyone and says why
    assert "🌍 ES: only people in ES see it on acme-fb (Facebook country targeting)" in card, card
    assert "🌍 ES: reaches all followers of acme-es (Sandbox can't limit an organic post to a country)" in card
    assert card.count("🌍") == 2
    await team.say("bob", f"/approve {targeted}")
    out = await team.say("alice", f"/publish {targeted}")
    assert f"📣 #{targeted} is published on all 2 account(s):" in out
    assert "  ✓ acme-fb · south (facebook): https://www.facebook.com/1001/posts/" in out, out

    sent = graph.requests("POST", FEED)
    assert len(sent) == 1
    assert json.loads(sent[0].form["targeting"]) == {"geo_locations": {"countries": ["ES"]}}
    assert sent[0].form["message"] == SPANISH
    # the delivery is published with the Page post that carries the targeting
    with team.herald.db.session() as session:
        fb = session.exec(select(Account).where(Account.name == "acme-fb")).one()
        south = session.exec(select(Audience).where(Audience.name == "south")).one()
    (delivery,) = [d for d in team.deliveries(targeted) if d.account_id == fb.id]
    assert delivery.audience_id == south.id and DeliveryState(delivery.state) == DeliveryState.SENT
    assert graph.posts[delivery.remote_id]["targeting"] == {"geo_locations": {"countries": ["ES"]}}

    # a post straight to the account, no audience: no targeting, and no 🌍 line on its card
    plain = post_number(await team.say("alice", f"/draft {ENGLISH} to=acme-fb"))
    card = await team.say("alice", f"/submit {plain}")
    assert "🌍" not in card
    await team.say("bob", f"/approve {plain}")
    await team.say("alice", f"/publish {plain}")
    sent = graph.requests("POST", FEED)
    assert len(sent) == 2 and "targeting" not in sent[1].form and sent[1].form["message"] == ENGLISH
    (delivery,) = team.deliveries(plain)
    assert delivery.audience_id is None and graph.posts[delivery.remote_id]["targeting"] is None


async def test_a_photo_for_the_audience_goes_as_a_targeted_post_with_the_photo_attached(
        team: Team, graph: MetaGraphServer) -> None:
    """One image: Herald uploads it unpublished and attaches it to the targeted feed post (the photo alone would
    be a post of its own, outside the targeting)."""
    await spain(team, graph)
    post_id = post_number(await team.say("alice", f"/draft {SPANISH} to=audience:south"))
    console = team.herald.console
    console.user = "alice"
    reply = await team.herald.handle(Command("attach", console.actor(), console.chat, text=str(post_id),
                                             media=(MediaIn("sale.png", "image/png", png()),)))
    assert f"#{post_id}: 1 file(s) attached (1 in all)." in reply.text, reply.text
    await team.say("alice", f"/submit {post_id}")
    await team.say("bob", f"/approve {post_id}")
    out = await team.say("alice", f"/publish {post_id}")
    assert f"📣 #{post_id} is published on all 2 account(s):" in out, out

    (upload,) = graph.requests("POST", f"/v25.0/{PAGE_ID}/photos")
    assert upload.form["published"] == "false" and "targeting" not in upload.form
    (feed,) = graph.requests("POST", FEED)
    assert json.loads(feed.form["targeting"]) == {"geo_locations": {"countries": ["ES"]}}
    (photo_id,) = graph.photos
    assert json.loads(feed.form["attached_media[0]"]) == {"media_fbid": photo_id}
    with team.herald.db.session() as session:
        fb = session.exec(select(Account).where(Account.name == "acme-fb")).one()
    (delivery,) = [d for d in team.deliveries(post_id) if d.account_id == fb.id]
    assert graph.posts[delivery.remote_id]["photos"] == [photo_id]
    assert graph.posts[delivery.remote_id]["targeting"] == {"geo_locations": {"countries": ["ES"]}}


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (230, 90, 40)).save(out, "PNG")
    return out.getvalue()


async def test_a_linkedin_page_keeps_the_post_to_the_country_and_a_member_reaches_everyone(team: Team) -> None:
    """LinkedIn targets organization pages' posts (distribution.targetEntities with the country's geo URN, found
    with the Geo Typeahead), not a member's: the card says which, and the page's post carries Spain's URN."""
    from tests.fakes.linkedin_api import FakeLinkedIn

    async with FakeLinkedIn() as linkedin:
        await team.say("alice", "/setup Acme")
        for name, author in (("acme-li", " author=urn:li:organization:2414183"), ("ana-li", "")):
            out = await team.say("alice", f"/connect linkedin name={name} base_url={linkedin.url} "
                                          f"access_token=li-token{author}")
            assert out.startswith(f"Connected {name} ("), out
        await team.say("alice", "/role bob approver")
        team.add_audience("south", ("acme-li", "ana-li"), "Europe/Madrid", "es", country="ES")
        post_id = post_number(await team.say("alice", f"/draft {SPANISH} to=audience:south"))
        card = await team.say("alice", f"/submit {post_id}")
        assert "🌍 ES: only people in ES see it on acme-li (LinkedIn country targeting)" in card, card
        assert ("🌍 ES: reaches all followers of ana-li (LinkedIn limits only organization pages' posts to a "
                "country)") in card, card
        await team.say("bob", f"/approve {post_id}")
        out = await team.say("alice", f"/publish {post_id}")
        assert f"📣 #{post_id} is published on all 2 account(s):" in out, out
        sent = {s.json["author"]: s.json for s in linkedin.requests("POST", "/rest/posts")}
        assert sent["urn:li:organization:2414183"]["distribution"]["targetEntities"] == [
            {"geoLocations": ["urn:li:geo:105646813"]}]
        assert sent["urn:li:person:abc123"]["distribution"]["targetEntities"] == []
