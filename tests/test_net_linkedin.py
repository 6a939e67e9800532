"""LinkedIn connector contract tests against a fake Posts API on 127.0.0.1."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image

from bot.networks.linkedin import LinkedInNetwork, escape_little
from handlers.core.ports import AccountView, ErrorKind, MediaFile, Outgoing, PublishError
from tests.fakes import kit
from tests.fakes.linkedin_api import FakeLinkedIn

ORG = "urn:li:organization:2414183"


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (2, 2), (200, 10, 10)).save(buf, "PNG")
    return buf.getvalue()


server = kit.server_fixture(FakeLinkedIn)


net = kit.network_fixture(LinkedInNetwork)


def account(server, author=ORG, token="li-token", **extra) -> AccountView:
    settings = {"author": author, "oauth_base_url": server.url, **extra.pop("settings", {})}
    return kit.account("linkedin", server.url, settings=settings, credentials={"access_token": token, **extra})


def outgoing(text="Spring sale starts today!", **kwargs) -> Outgoing:
    return Outgoing(delivery_id=1, post_id=1, idempotency_key="k1", text=text, **kwargs)


async def test_verify_organization(net, server):
    verified = await net.verify(account(server))
    assert verified.settings == {"author": ORG}
    assert "Acme Corp" in verified.description and "administrator" in verified.description
    seen = server.requests("GET", "/rest/organizationAcls")[0]
    assert seen.query == {"q": "roleAssignee", "state": "APPROVED"}
    assert seen.header("authorization") == "Bearer li-token"
    assert seen.header("linkedin-version") == "202610" and seen.header("x-restli-protocol-version") == "2.0.0"


async def test_verify_member_defaults_author(net, server):
    verified = await net.verify(account(server, author=""))
    assert verified.settings == {"author": "urn:li:person:abc123"}
    assert "Ana Kowalski" in verified.description


async def test_verify_org_without_role_is_a_setting_error(net, server):
    server.roles = {ORG: "ANALYST"}
    with pytest.raises(ValueError, match="can't post for"):
        await net.verify(account(server))
    with pytest.raises(ValueError, match="author="):
        await net.verify(account(server, author="acme"))


async def test_verify_wrong_token(net, server):
    with pytest.raises(PublishError) as err:
        await net.verify(account(server, token="nope"))
    assert err.value.kind == ErrorKind.AUTH_EXPIRED and "Invalid access token" in err.value.reason


async def test_publish_text(net, server):
    published = await net.publish(account(server), outgoing("Hello (world) #launch @team_x"))
    urn = published.remote_id
    assert urn.startswith("urn:li:share:") and published.url == f"https://www.linkedin.com/feed/update/{urn}/"
    seen = server.requests("POST", "/rest/posts")[0]
    assert seen.header("linkedin-version") == "202610" and seen.header("x-restli-protocol-version") == "2.0.0"
    body = seen.json
    assert body["author"] == ORG and body["visibility"] == "PUBLIC" and body["lifecycleState"] == "PUBLISHED"
    assert body["distribution"]["feedDistribution"] == "MAIN_FEED"
    assert body["commentary"] == r"Hello \(world\) #launch \@team\_x"
    assert "content" not in body


def test_little_escaping_keeps_urls_and_hashtags():
    assert escape_little("50% off [today] https://acme.test/a_b?x=(1) #sale_now") == \
        r"50% off \[today\] https://acme.test/a_b?x=(1) #sale_now"
    assert escape_little("C# \\ ~") == r"C\# \\ \~"


async def test_publish_one_image(net, server):
    data = png()
    await net.publish(account(server), outgoing(media=(MediaFile("a.png", "image/png", data),)))
    init = server.requests("POST", "/rest/images")[0]
    assert init.query == {"action": "initializeUpload"}
    assert init.json == {"initializeUploadRequest": {"owner": ORG}}
    put = server.requests("PUT", "/dms-uploads/1")[0]
    assert put.body == data and put.header("authorization") == "Bearer li-token"
    body = server.requests("POST", "/rest/posts")[0].json
    assert body["content"] == {"media": {"id": "urn:li:image:C4E10AQ0001"}}


async def test_publish_several_images(net, server):
    media = tuple(MediaFile(f"{i}.png", "image/png", png()) for i in range(3))
    await net.publish(account(server), outgoing(media=media))
    assert len(server.requests("PUT", "/dms-uploads/*")) == 3
    body = server.requests("POST", "/rest/posts")[0].json
    assert [i["id"] for i in body["content"]["multiImage"]["images"]] == [
        "urn:li:image:C4E10AQ0001", "urn:li:image:C4E10AQ0002", "urn:li:image:C4E10AQ0003"]


async def test_link_becomes_an_article(net, server):
    await net.publish(account(server), outgoing("Read our spring report\nhttps://acme.test/report",
                                                link="https://acme.test/report"))
    body = server.requests("POST", "/rest/posts")[0].json
    assert body["content"] == {"article": {"source": "https://acme.test/report", "title": "Read our spring report"}}
    assert "https://acme.test/report" in body["commentary"]


async def test_5xx_on_post_is_unknown_outcome_and_keeps_uploaded_images(net, server):
    server.fail("POST", "/rest/posts", status=500, body={"message": "Internal error", "status": 500})
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing(media=(MediaFile("a.png", "image/png", png()),)))
    assert err.value.kind == ErrorKind.UNKNOWN_OUTCOME
    assert err.value.resume == {"image_urns": ["urn:li:image:C4E10AQ0001"]}
    # the retry reuses the uploaded image instead of uploading it again
    await net.publish(account(server), outgoing(media=(MediaFile("a.png", "image/png", png()),),
                                                resume=err.value.resume))
    assert len(server.requests("POST", "/rest/images")) == 1
    assert server.requests("POST", "/rest/posts")[-1].json["content"]["media"]["id"] == "urn:li:image:C4E10AQ0001"


async def test_duplicate_is_rejected_in_plain_words(net, server):
    await net.publish(account(server), outgoing("Same words"))
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing("Same words"))
    assert err.value.kind == ErrorKind.REJECTED and "LinkedIn refuses duplicate posts" in err.value.reason


async def test_429_waits_an_hour_without_headers(net, server):
    server.fail("POST", "/rest/posts", status=429, body={"message": "Resource level throttle limit reached",
                                                         "status": 429})
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.RATE_LIMITED and err.value.retry_after == 3600.0
    assert "doesn't say when" in err.value.reason


async def test_429_with_retry_after_is_respected(net, server):
    server.fail("POST", "/rest/posts", status=429, headers={"Retry-After": "120"}, body={"message": "slow"})
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.retry_after == 120.0


async def test_401_on_publish_is_auth_expired(net, server):
    with pytest.raises(PublishError) as err:
        await net.publish(account(server, token="expired"), outgoing())
    assert err.value.kind == ErrorKind.AUTH_EXPIRED


async def test_403_says_what_permission_is_missing(net, server):
    server.fail("POST", "/rest/posts", status=403, body={"status": 403, "code": "ACCESS_DENIED",
                                                         "message": "Not enough permissions to access: POST /posts"})
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.REJECTED and "w_organization_social" in err.value.reason


async def test_org_metrics_batched(net, server):
    acct = account(server)
    urns = [(await net.publish(acct, outgoing(f"post {i}"))).remote_id for i in range(25)]
    for i, urn in enumerate(urns):
        server.stats[urn] = {"impressionCount": 100 + i, "clickCount": 7, "likeCount": 5, "commentCount": 2,
                             "shareCount": 1}
    del server.stats[urns[3]]  # deleted post: left out
    readings = await net.fetch_metrics(acct, urns)
    calls = server.requests("GET", "/rest/organizationalEntityShareStatistics")
    assert len(calls) == 2
    assert calls[0].query["q"] == "organizationalEntity" and calls[0].query["organizationalEntity"] == ORG
    assert len(readings) == 24 and urns[3] not in readings
    m = readings[urns[0]]
    assert (m.impressions, m.clicks, m.likes, m.comments, m.shares, m.saves) == (100, 7, 5, 2, 1, None)


async def test_member_metrics_from_social_metadata(net, server):
    acct = account(server, author="urn:li:person:abc123")
    urn = (await net.publish(acct, outgoing())).remote_id
    server.stats[urn] = {"likeCount": 9, "commentCount": 4}
    readings = await net.fetch_metrics(acct, [urn, "urn:li:share:1"])
    assert list(readings) == [urn]
    assert readings[urn].likes == 9 and readings[urn].comments == 4 and readings[urn].impressions is None


async def test_comments_since(net, server):
    urn = "urn:li:share:7000000000000000001"
    t0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    server.comments[urn] = [
        {"$URN": f"urn:li:comment:({urn},1)", "actor": "urn:li:person:x1", "message": {"text": "old"},
         "created": {"time": int(t0.timestamp() * 1000)}},
        {"$URN": f"urn:li:comment:({urn},2)", "actor": "urn:li:person:x2", "message": {"text": "Love it"},
         "created": {"time": int((t0 + timedelta(hours=2)).timestamp() * 1000)}},
    ]
    comments = await net.fetch_comments(account(server), [urn], t0 + timedelta(minutes=30))
    assert [(c.text, c.author, c.parent_remote_id) for c in comments] == [("Love it", "urn:li:person:x2", urn)]
    assert comments[0].created_at == t0 + timedelta(hours=2)
    assert server.requests("GET", f"/rest/socialActions/{urn}/comments")


async def test_refresh_when_due(net, server, clock):
    soon = (clock.now() + timedelta(hours=3)).isoformat()
    acct = account(server, refresh_token="li-refresh", client_secret="li-secret", expires_at=soon,
                   settings={"client_id": "app1"})
    new = await net.refresh(acct)
    assert new is not None and new["access_token"] == "li-token-2" and new["client_secret"] == "li-secret"
    assert new["expires_at"] == (clock.now() + timedelta(days=60)).isoformat()
    form = server.requests("POST", "/oauth/v2/accessToken")[0].form
    assert form == {"grant_type": "refresh_token", "refresh_token": "li-refresh", "client_id": "app1",
                    "client_secret": "li-secret"}


async def test_refresh_not_due_or_not_granted(net, server, clock):
    later = (clock.now() + timedelta(days=30)).isoformat()
    assert await net.refresh(account(server, refresh_token="li-refresh", client_secret="li-secret",
                                     expires_at=later, settings={"client_id": "app1"})) is None
    assert await net.refresh(account(server, expires_at=(clock.now() + timedelta(hours=2)).isoformat())) is None
    assert not server.requests("POST", "/oauth/v2/accessToken")
    with pytest.raises(PublishError) as err:
        await net.refresh(account(server, expires_at=(clock.now() - timedelta(hours=1)).isoformat()))
    assert err.value.kind == ErrorKind.AUTH_EXPIRED and "/connect linkedin name=brand" in err.value.reason


async def test_dead_refresh_token(net, server, clock):
    acct = account(server, refresh_token="revoked", client_secret="li-secret",
                   expires_at=clock.now().isoformat(), settings={"client_id": "app1"})
    with pytest.raises(PublishError) as err:
        await net.refresh(acct)
    assert err.value.kind == ErrorKind.AUTH_EXPIRED and "reconnect" in err.value.reason


async def test_refresh_answer_without_a_token_is_transient(net, server, clock):
    server.fail("POST", "/oauth/v2/accessToken", status=200, body={"expires_in": 5184000})
    acct = account(server, refresh_token="li-refresh", client_secret="li-secret",
                   expires_at=clock.now().isoformat(), settings={"client_id": "app1"})
    with pytest.raises(PublishError) as err:
        await net.refresh(acct)
    assert err.value.kind == ErrorKind.TRANSIENT and "answered the token refresh without a token" in err.value.reason


# -- country targeting (an audience's country) ---------------------------------------------------------------


async def test_an_organization_post_is_targeted_to_its_audience_country(net, server):
    """The country's geo URN comes from the Geo Typeahead (the element named exactly as the country: 'Spain', not
    'Spain, Minnesota'), is asked for once per country, and goes in distribution.targetEntities."""
    await net.publish(account(server), outgoing("Rebajas de primavera", country="es"))
    await net.publish(account(server), outgoing("Rebajas de verano", country="ES"))
    (lookup,) = server.requests("GET", "/rest/geoTypeahead")
    assert lookup.query["q"] == "search" and lookup.query["query"] == "Spain"
    assert lookup.header("linkedin-version") == "202610"
    for sent in server.requests("POST", "/rest/posts"):
        assert sent.json["distribution"]["targetEntities"] == [{"geoLocations": ["urn:li:geo:105646813"]}]
    await net.publish(account(server), outgoing("Spring sale", country="US"))
    assert server.requests("POST", "/rest/posts")[-1].json["distribution"]["targetEntities"] == [
        {"geoLocations": ["urn:li:geo:103644278"]}]  # 'United' alone would also name the UK and the Emirates


async def test_a_member_post_and_a_post_without_country_carry_no_target(net, server):
    member = account(server, author="urn:li:person:abc123")
    await net.publish(member, outgoing("Rebajas de primavera", country="ES"))
    await net.publish(account(server), outgoing("Spring sale, everywhere"))
    assert [s.json["distribution"]["targetEntities"] for s in server.requests("POST", "/rest/posts")] == [[], []]
    assert not server.requests("GET", "/rest/geoTypeahead")


async def test_targeting_refusals_send_nothing_and_say_why(net, server):
    # a country LinkedIn's typeahead doesn't name: refused before any post is sent
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing("Salg", country="DK"))
    assert err.value.kind == ErrorKind.REJECTED and "no location named Denmark" in err.value.reason
    with pytest.raises(PublishError):  # with a picture: refused before the upload, not after it
        await net.publish(account(server), outgoing("Salg", country="DK", media=(MediaFile("a.png", "image/png", png()),)))
    assert not server.requests("POST", "/rest/images")
    # a target audience under LinkedIn's 300-follower minimum: LinkedIn's words reach the team
    server.followers_in["urn:li:geo:103819153"] = 120
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing("Sommersalg", country="NO"))
    assert err.value.kind == ErrorKind.REJECTED and "too small" in err.value.reason
    assert not server.posts


def test_linkedin_targets_organization_pages_only():
    profile = LinkedInNetwork.profile
    assert profile.keeps_to_country({"author": ORG})
    assert not profile.keeps_to_country({"author": "urn:li:person:abc123"}) and not profile.keeps_to_country({})
