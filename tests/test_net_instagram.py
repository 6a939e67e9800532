"""Instagram connector against the fake Graph server: containers, publishing, resume, metrics, token."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from PIL import Image

from bot.networks.instagram import InstagramNetwork
from bot.networks.meta import GRAPH_VERSION
from handlers.core.ports import AccountView, ErrorKind, MediaFile, Outgoing, PublishError
from tests.fakes import kit
from tests.fakes.meta_graph import IG_TOKEN, IG_USER_ID, PAGE_ID, PAGE_TOKEN, MetaGraphServer

V = f"/{GRAPH_VERSION}"
TEMPLATE = "https://media.example.com/herald/{sha256}{ext}"


def png(color: str = "red") -> MediaFile:
    buffer = io.BytesIO()
    Image.new("RGB", (2, 2), color).save(buffer, format="PNG")
    return MediaFile(f"{color}.png", "image/png", buffer.getvalue(), f"sha{color}")


def outgoing(text: str = "Hello IG", media: tuple[MediaFile, ...] = (), **kwargs) -> Outgoing:
    return Outgoing(delivery_id=1, post_id=1, idempotency_key="k1", text=text,
                    media=media if media else (png(),), **kwargs)


server = kit.server_fixture(MetaGraphServer)


net = kit.network_fixture(InstagramNetwork, poll_interval=0.01)


def account(server: MetaGraphServer, token: str = IG_TOKEN, credentials: dict | None = None,
            **settings) -> AccountView:
    return kit.account("instagram", server.url,
                       settings={"ig_user_id": IG_USER_ID, "media_url_template": TEMPLATE, **settings},
                       credentials=credentials or {"token": token})


def test_connect_spec_and_limits():
    spec = InstagramNetwork.connect_spec
    assert spec.required == ("token",) and "token" in spec.secret and "media_url_template" in spec.optional
    assert "/connect instagram" in spec.help
    assert InstagramNetwork.publish_limits == ((50, 86400.0),)
    assert InstagramNetwork.default_base_url == "https://graph.instagram.com"


def test_check_needs_an_image_and_a_media_url(net, server):
    assert "Instagram needs at least one image" in net.check(account(server), "hi", 0).problems
    bare = AccountView(id=1, workspace_id=1, network="instagram", name="b", base_url=None, settings={})
    assert any("media_url_template" in p for p in net.check(bare, "hi", 1).problems)
    assert net.check(account(server), "hi", 1).ok


async def test_verify_instagram_login(net, server):
    acct = AccountView(id=1, workspace_id=1, network="instagram", name="brand", base_url=server.url,
                       settings={"media_url_template": TEMPLATE}, credentials={"token": IG_TOKEN})
    verified = await net.verify(acct)
    assert verified.description == f"@brand on Instagram (id {IG_USER_ID})"
    assert verified.settings == {"ig_user_id": IG_USER_ID, "username": "brand"}
    seen = server.requests("GET", f"{V}/me")[0]
    assert seen.query["fields"] == "user_id,username" and seen.header("authorization") == f"Bearer {IG_TOKEN}"


async def test_verify_facebook_login_through_the_page(net, server):
    acct = AccountView(id=1, workspace_id=1, network="instagram", name="brand", base_url=server.url,
                       settings={"login": "facebook", "page_id": PAGE_ID}, credentials={"token": PAGE_TOKEN})
    verified = await net.verify(acct)
    assert verified.settings["ig_user_id"] == IG_USER_ID
    assert server.requests("GET", f"{V}/{PAGE_ID}")[0].query["fields"] == "instagram_business_account{id,username}"
    assert await net.refresh(acct) is None  # Page tokens don't expire


async def test_verify_wrong_token_and_bad_settings(net, server):
    with pytest.raises(PublishError) as err:
        await net.verify(account(server, token="nope"))
    assert err.value.kind == ErrorKind.AUTH_EXPIRED
    with pytest.raises(ValueError, match="https"):
        await net.verify(account(server, media_url_template="http://x/{sha256}"))
    with pytest.raises(ValueError, match="sha256"):
        await net.verify(account(server, media_url_template="https://x/static.jpg"))
    with pytest.raises(ValueError, match="login"):
        await net.verify(account(server, login="myspace"))


async def test_publish_one_image_two_phases(net, server):
    image = png()
    published = await net.publish(account(server), outgoing("Caption #brand", (image,)))
    create = server.requests("POST", f"{V}/{IG_USER_ID}/media")[0]
    assert create.form == {"image_url": "https://media.example.com/herald/shared.png", "caption": "Caption #brand"}
    assert create.header("authorization") == f"Bearer {IG_TOKEN}"
    container = next(iter(server.containers))
    assert server.requests("GET", f"{V}/{container}")[0].query["fields"] == "status_code,status"
    publish = server.requests("POST", f"{V}/{IG_USER_ID}/media_publish")[0]
    assert publish.form == {"creation_id": container}
    assert published.remote_id in server.media
    assert published.url == server.media[published.remote_id]["permalink"]


async def test_media_base_url_is_a_shorthand(net, server):
    acct = account(server, media_url_template="", media_base_url="https://cdn.example.com/m/")
    await net.publish(acct, outgoing("x", (png("blue"),)))
    assert server.requests("POST", f"{V}/{IG_USER_ID}/media")[0].form["image_url"] == \
        "https://cdn.example.com/m/shablue.png"


async def test_publish_carousel(net, server):
    published = await net.publish(account(server), outgoing("Three", (png("red"), png("blue"), png("green"))))
    creates = server.requests("POST", f"{V}/{IG_USER_ID}/media")
    children = creates[:3]
    assert [c.form for c in children] == [
        {"image_url": f"https://media.example.com/herald/sha{c}.png", "is_carousel_item": "true"}
        for c in ("red", "blue", "green")]
    parent = creates[3].form
    assert parent["media_type"] == "CAROUSEL" and parent["caption"] == "Three"
    assert parent["children"].split(",") == list(server.containers)[:3]
    assert server.media[published.remote_id]["container"] == list(server.containers)[3]


async def test_no_image_is_rejected_without_a_request(net, server):
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), Outgoing(1, 1, "k", "text only"))
    assert err.value.kind == ErrorKind.REJECTED and not server.seen


async def test_missing_media_url_setting_is_rejected(net, server):
    with pytest.raises(PublishError) as err:
        await net.publish(account(server, media_url_template=""), outgoing())
    assert err.value.kind == ErrorKind.REJECTED and "media_url_template" in err.value.reason


async def test_waits_for_the_container_to_finish(net, server):
    server.container_statuses = ["IN_PROGRESS", "IN_PROGRESS", "FINISHED"]
    published = await net.publish(account(server), outgoing())
    assert published.remote_id in server.media
    assert len(server.requests("GET", f"{V}/{next(iter(server.containers))}")) == 3


async def test_slow_container_is_kept_for_the_next_attempt(net, server):
    server.container_statuses = ["IN_PROGRESS"] * 10 + ["FINISHED"]
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    container = next(iter(server.containers))
    assert err.value.kind == ErrorKind.TRANSIENT and err.value.resume == {"container_id": container}
    assert not server.requests("POST", f"{V}/{IG_USER_ID}/media_publish")
    server.containers[container]["statuses"] = ["FINISHED"]
    published = await net.publish(account(server), outgoing(resume=err.value.resume))
    assert len(server.requests("POST", f"{V}/{IG_USER_ID}/media")) == 1  # no second container
    assert server.media[published.remote_id]["container"] == container


async def test_publish_5xx_is_unknown_outcome_and_resume_reuses_the_container(net, server):
    server.fail("POST", f"{V}/{IG_USER_ID}/media_publish", status=500, body={"error": {"message": "boom"}})
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    container = next(iter(server.containers))
    assert err.value.kind == ErrorKind.UNKNOWN_OUTCOME and err.value.resume == {"container_id": container}
    published = await net.publish(account(server), outgoing(resume=err.value.resume))
    assert len(server.containers) == 1 and server.media[published.remote_id]["container"] == container
    assert server.requests("POST", f"{V}/{IG_USER_ID}/media_publish")[-1].form == {"creation_id": container}


async def test_resume_of_a_container_that_was_published_finds_the_post(net, server):
    server.fail("POST", f"{V}/{IG_USER_ID}/media_publish", status=502, after=True)  # published, answer lost
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing("Lost answer"))
    assert err.value.kind == ErrorKind.UNKNOWN_OUTCOME
    published = await net.publish(account(server), outgoing("Lost answer", resume=err.value.resume))
    assert len(server.media) == 1 and published.remote_id in server.media
    assert len(server.requests("POST", f"{V}/{IG_USER_ID}/media_publish")) == 1  # never published twice


async def test_resume_of_an_expired_container_starts_again(net, server):
    server.container_statuses = ["EXPIRED"]
    await net.graph("POST", account(server), IG_USER_ID, "media",
                    data={"image_url": "https://media.example.com/a.jpg"})
    old = next(iter(server.containers))
    published = await net.publish(account(server), outgoing(resume={"container_id": old}))
    assert server.media[published.remote_id]["container"] != old


async def test_container_error_is_rejected(net, server):
    server.container_statuses = ["ERROR"]
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.REJECTED and "2207052" in err.value.reason


async def test_bad_image_url_is_rejected_with_instagram_reason(net, server):
    with pytest.raises(PublishError) as err:
        await net.publish(account(server, media_url_template="https://{sha256}"), outgoing())
    assert err.value.kind == ErrorKind.REJECTED and "Media download has failed" in err.value.reason


async def test_publishing_limit_reached_is_rate_limited(net, server):
    server.fail("POST", f"{V}/{IG_USER_ID}/media_publish", status=400, body={"error": {
        "message": "Application request limit reached", "code": 9, "error_subcode": 2207042,
        "error_user_msg": "You reached the maximum number of posts allowed in 24 hours."}})
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.RATE_LIMITED and err.value.retry_after == 3600
    assert "maximum number of posts" in err.value.reason and err.value.resume["container_id"]


async def test_business_use_case_throttle(net, server):
    usage = {IG_USER_ID: [{"type": "instagram", "call_count": 100, "estimated_time_to_regain_access": 3}]}
    server.fail("POST", f"{V}/{IG_USER_ID}/media", status=400,
                body={"error": {"message": "(#80002) too many calls to this Instagram account", "code": 80002}},
                headers={"X-Business-Use-Case-Usage": json.dumps(usage)})
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.RATE_LIMITED and err.value.retry_after == 180


async def test_429_and_401(net, server):
    server.fail("POST", f"{V}/{IG_USER_ID}/media", status=429, headers={"Retry-After": "12"})
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.RATE_LIMITED and err.value.retry_after == 12
    server.fail("POST", f"{V}/{IG_USER_ID}/media", status=401, body={"error": {"message": "bad"}})
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.AUTH_EXPIRED


async def test_container_5xx_is_transient_because_nothing_is_posted(net, server):
    server.fail("POST", f"{V}/{IG_USER_ID}/media", status=500)
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.TRANSIENT


async def test_local_budget_of_50_a_day(net, server):
    net.publish_limits = ((2, 86400.0),)  # type: ignore[misc]
    for i in range(2):
        await net.publish(account(server), outgoing(f"p{i}"))
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing("p3"))
    assert err.value.kind == ErrorKind.RATE_LIMITED and err.value.resume.get("container_id")


async def test_metrics_mapping(net, server):
    ids = [(await net.publish(account(server), outgoing(f"m{i}"))).remote_id for i in range(2)]
    server.media[ids[0]].update(likes=7, insights={"views": 800, "reach": 500, "likes": 9, "comments": 2,
                                                   "shares": 4, "saved": 3})
    server.media[ids[1]]["likes"] = 5
    server.fail("GET", f"{V}/{ids[1]}/insights", status=400, body={"error": {
        "message": "(#10) Not enough viewers for the media to show insights", "code": 10}})
    metrics = await net.fetch_metrics(account(server), [*ids, "404404"])
    m = metrics[ids[0]]
    assert (m.likes, m.comments, m.shares, m.saves, m.impressions, m.followers) == (9, 2, 4, 3, 800, 560)
    assert set(metrics) == set(ids)


async def test_metrics_without_insights_fall_back_to_counts(net, server):
    media_id = (await net.publish(account(server), outgoing())).remote_id
    server.media[media_id]["likes"] = 5
    server.fail("GET", f"{V}/{media_id}/insights", status=400, body={"error": {
        "message": "(#100) Insights are not available for this media", "code": 100}})
    m = (await net.fetch_metrics(account(server), [media_id]))[media_id]
    assert (m.likes, m.comments, m.impressions) == (5, 0, None)
    insights = server.requests("GET", f"{V}/{media_id}/insights")[0]
    assert insights.query["metric"] == "views,reach,likes,comments,shares,saved"


async def test_comments(net, server, clock):
    media_id = (await net.publish(account(server), outgoing())).remote_id
    server.add_comment(media_id, "old", "ann", clock.now() - timedelta(days=1))
    new_id = server.add_comment(media_id, "love it", "bob", clock.now())
    comments = await net.fetch_comments(account(server), [media_id], clock.now() - timedelta(hours=1))
    assert [(c.remote_id, c.author, c.text) for c in comments] == [(new_id, "@bob", "love it")]


async def test_refresh_when_due(net, server, clock):
    soon = (clock.now() + timedelta(hours=5)).isoformat()
    creds = {"token": IG_TOKEN, "expires_at": soon, "other": "kept"}
    new = await net.refresh(account(server, credentials=creds))
    assert new is not None and new["token"] == server.refreshed[0] and new["other"] == "kept"
    assert new["expires_at"] == (clock.now() + timedelta(seconds=5184000)).isoformat()
    seen = server.requests("GET", "/refresh_access_token")[0]
    assert seen.query == {"grant_type": "ig_refresh_token", "access_token": IG_TOKEN}


async def test_refresh_not_due(net, server, clock):
    later = (clock.now() + timedelta(days=30)).isoformat()
    assert await net.refresh(account(server, credentials={"token": IG_TOKEN, "expires_at": later})) is None
    assert not server.seen


async def test_refresh_when_expiry_unknown(net, server):
    new = await net.refresh(account(server))
    assert new is not None and new["token"].startswith(IG_TOKEN) and "expires_at" in new


async def test_refresh_dead_token(net, server, clock):
    soon = (clock.now() + timedelta(hours=1)).isoformat()
    with pytest.raises(PublishError) as err:
        await net.refresh(account(server, credentials={"token": "dead", "expires_at": soon}))
    assert err.value.kind == ErrorKind.AUTH_EXPIRED and "/connect instagram name=brand" in err.value.reason


async def test_not_ready_on_publish_is_transient_and_keeps_the_container(net, server):
    server.fail("POST", f"{V}/{IG_USER_ID}/media_publish", status=400, body={"error": {
        "message": "Media ID is not available", "code": 9007, "error_subcode": 2207027}})
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.TRANSIENT and err.value.resume == {"container_id": next(iter(server.containers))}


async def test_the_fake_refuses_a_carousel_item_as_the_post(net, server):
    child = await net.graph("POST", account(server), IG_USER_ID, "media",
                            data={"image_url": "https://media.example.com/a.jpg", "is_carousel_item": "true"})
    with pytest.raises(PublishError) as err:
        await net.graph("POST", account(server), IG_USER_ID, "media_publish", data={"creation_id": child["id"]})
    assert err.value.kind == ErrorKind.REJECTED and "carousel item" in err.value.reason and not server.media


async def test_slow_carousel_item_is_never_kept_as_the_post(net, server):
    """Regression: a child still IN_PROGRESS used to leave resume={"container_id": <child>}, and the retry
    published that one image, without caption, as the whole post."""
    server.container_statuses = ["IN_PROGRESS"] * 10 + ["FINISHED"]  # the first child is slow
    images = (png("red"), png("blue"), png("green"))
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing("Three", images))
    slow_child = next(iter(server.containers))
    assert err.value.kind == ErrorKind.TRANSIENT and err.value.resume == {"container_id": ""}
    assert not server.requests("POST", f"{V}/{IG_USER_ID}/media_publish")
    server.containers[slow_child]["statuses"] = ["FINISHED"]  # ready by the next attempt: still not the post
    published = await net.publish(account(server), outgoing("Three", images, resume=err.value.resume))
    post = server.media[published.remote_id]
    assert post["text"] == "Three" and post["params"]["media_type"] == "CAROUSEL"
    assert len(post["params"]["children"].split(",")) == 3 and slow_child not in post["params"]["children"]
    assert [r.form["creation_id"] for r in server.requests("POST", f"{V}/{IG_USER_ID}/media_publish")] == \
        [post["container"]] and len(server.media) == 1


async def test_failed_carousel_item_drops_an_older_container_from_resume(net, server):
    server.container_statuses = ["EXPIRED"]
    old = (await net.graph("POST", account(server), IG_USER_ID, "media",
                           data={"image_url": "https://media.example.com/a.jpg"}))["id"]
    server.container_statuses = ["ERROR"]  # the new carousel's first child can't be prepared
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing("Two", (png("red"), png("blue")),
                                                    resume={"container_id": old}))
    assert err.value.kind == ErrorKind.REJECTED and err.value.resume == {"container_id": ""}


async def test_container_answer_without_id_is_transient(net, server):
    server.fail("POST", f"{V}/{IG_USER_ID}/media", status=200, body={"oops": True})
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.TRANSIENT and "without its id" in err.value.reason
    assert not server.requests("POST", f"{V}/{IG_USER_ID}/media_publish")


async def test_resumed_container_that_turns_published_while_waiting_is_found_not_republished(net, server):
    """Regression: PUBLISHED seen while waiting was taken for FINISHED and media_publish was called again
    (Meta refuses: REJECTED, though the post is live)."""
    server.fail("POST", f"{V}/{IG_USER_ID}/media_publish", status=502, after=True)  # published, answer lost
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing("Live already"))
    container = err.value.resume["container_id"]
    server.containers[container]["statuses"] = ["IN_PROGRESS", "PUBLISHED"]  # first read says IN_PROGRESS
    published = await net.publish(account(server), outgoing("Live already", resume=err.value.resume))
    assert published.remote_id in server.media and len(server.media) == 1
    assert len(server.requests("POST", f"{V}/{IG_USER_ID}/media_publish")) == 1
