"""Threads connector against the fake Graph server (graph.threads.net-style paths)."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from PIL import Image

from bot.networks.meta import THREADS_VERSION
from bot.networks.threads import ThreadsNetwork
from handlers.core.ports import AccountView, ErrorKind, MediaFile, Outgoing, PublishError
from tests.fakes import kit
from tests.fakes.meta_graph import THREADS_TOKEN, THREADS_USER_ID, MetaGraphServer

V = f"/{THREADS_VERSION}"
U = THREADS_USER_ID
TEMPLATE = "https://media.example.com/herald/{sha256}{ext}"


def png(color: str = "red") -> MediaFile:
    buffer = io.BytesIO()
    Image.new("RGB", (2, 2), color).save(buffer, format="PNG")
    return MediaFile(f"{color}.png", "image/png", buffer.getvalue(), f"sha{color}")


def outgoing(text: str = "Hello Threads", **kwargs) -> Outgoing:
    return Outgoing(delivery_id=1, post_id=1, idempotency_key="k1", text=text, **kwargs)


server = kit.server_fixture(MetaGraphServer)


net = kit.network_fixture(ThreadsNetwork, poll_interval=0.01)


def account(server: MetaGraphServer, token: str = THREADS_TOKEN, credentials: dict | None = None,
            **settings) -> AccountView:
    return kit.account("threads", server.url, settings={"user_id": U, "media_url_template": TEMPLATE, **settings},
                       credentials=credentials or {"token": token})


def test_connect_spec_and_limits():
    spec = ThreadsNetwork.connect_spec
    assert spec.required == ("token",) and spec.secret == ("token",)
    assert "/connect threads" in spec.help
    assert ThreadsNetwork.publish_limits == ((250, 86400.0),)
    assert ThreadsNetwork.default_base_url == "https://graph.threads.net"


def test_check_counts_500_characters(net, server):
    assert net.check(account(server), "a" * 500, 0).ok
    assert not net.check(account(server), "a" * 501, 0).ok
    bare = AccountView(id=1, workspace_id=1, network="threads", name="b", base_url=None, settings={})
    assert net.check(bare, "text", 0).ok
    assert any("media_url_template" in p for p in net.check(bare, "text", 1).problems)


async def test_verify(net, server):
    acct = AccountView(id=1, workspace_id=1, network="threads", name="brand", base_url=server.url, settings={},
                       credentials={"token": THREADS_TOKEN})
    verified = await net.verify(acct)
    assert verified.description == f"@brand.threads on Threads (id {U})"
    assert verified.settings == {"user_id": U, "username": "brand.threads"}
    seen = server.requests("GET", f"{V}/me")[0]
    assert seen.header("authorization") == f"Bearer {THREADS_TOKEN}"


async def test_verify_wrong_token(net, server):
    with pytest.raises(PublishError) as err:
        await net.verify(account(server, token="nope"))
    assert err.value.kind == ErrorKind.AUTH_EXPIRED


async def test_publish_text(net, server):
    published = await net.publish(account(server), outgoing("Hi there"))
    create = server.requests("POST", f"{V}/{U}/threads")[0]
    assert create.form == {"media_type": "TEXT", "text": "Hi there"}
    container = next(iter(server.containers))
    assert server.requests("GET", f"{V}/{container}")[0].query["fields"] == "status,error_message"
    assert server.requests("POST", f"{V}/{U}/threads_publish")[0].form == {"creation_id": container}
    assert published.remote_id in server.media and published.url == server.media[published.remote_id]["permalink"]


async def test_publish_link_uses_link_attachment(net, server):
    await net.publish(account(server), outgoing("New post https://ex.com/a", link="https://ex.com/a"))
    form = server.requests("POST", f"{V}/{U}/threads")[0].form
    assert form == {"media_type": "TEXT", "text": "New post https://ex.com/a", "link_attachment": "https://ex.com/a"}


async def test_publish_image(net, server):
    await net.publish(account(server), outgoing("Pic", media=(png(),)))
    form = server.requests("POST", f"{V}/{U}/threads")[0].form
    assert form == {"media_type": "IMAGE", "image_url": "https://media.example.com/herald/shared.png", "text": "Pic"}


async def test_publish_carousel(net, server):
    published = await net.publish(account(server), outgoing("Two", media=(png("red"), png("blue"))))
    creates = server.requests("POST", f"{V}/{U}/threads")
    assert [c.form for c in creates[:2]] == [
        {"media_type": "IMAGE", "is_carousel_item": "true", "image_url": f"https://media.example.com/herald/sha{c}.png"}
        for c in ("red", "blue")]
    assert creates[2].form == {"media_type": "CAROUSEL", "children": ",".join(list(server.containers)[:2]),
                               "text": "Two"}
    assert server.media[published.remote_id]["container"] == list(server.containers)[2]


async def test_publish_5xx_is_unknown_outcome_and_resume_publishes_the_same_container(net, server):
    server.fail("POST", f"{V}/{U}/threads_publish", status=503)
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    container = next(iter(server.containers))
    assert err.value.kind == ErrorKind.UNKNOWN_OUTCOME and err.value.resume == {"container_id": container}
    published = await net.publish(account(server), outgoing(resume=err.value.resume))
    assert len(server.containers) == 1 and server.media[published.remote_id]["container"] == container


async def test_resume_after_a_lost_answer_finds_the_post(net, server):
    server.fail("POST", f"{V}/{U}/threads_publish", drop=True, after=True)
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing("Dropped"))
    assert err.value.kind == ErrorKind.UNKNOWN_OUTCOME
    published = await net.publish(account(server), outgoing("Dropped", resume=err.value.resume))
    assert len(server.media) == 1 and published.remote_id in server.media
    assert len(server.requests("POST", f"{V}/{U}/threads_publish")) == 1


async def test_slow_container_is_transient_with_resume(net, server):
    server.container_statuses = ["IN_PROGRESS"] * 20
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.TRANSIENT and err.value.resume["container_id"] in server.containers


async def test_container_error_is_rejected_with_its_message(net, server):
    server.container_statuses = ["ERROR"]
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing("img", media=(png(),)))
    assert err.value.kind == ErrorKind.REJECTED and "FAILED_DOWNLOADING_IMAGE" in err.value.reason


async def test_link_limit_is_rejected_with_threads_reason(net, server):
    server.fail("POST", f"{V}/{U}/threads", status=400, body={"error": {
        "message": "THREADS_API__LINK_LIMIT_EXCEEDED", "type": "THApiException", "code": 100,
        "error_user_msg": "Posts can include up to 5 links."}})
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.REJECTED and "up to 5 links" in err.value.reason


async def test_rate_limits(net, server):
    server.fail("POST", f"{V}/{U}/threads", status=429, headers={"Retry-After": "30"})
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.RATE_LIMITED and err.value.retry_after == 30
    usage = {"call_count": 100, "total_time": 5, "estimated_time_to_regain_access": 2}
    server.fail("POST", f"{V}/{U}/threads", status=400, body={"error": {"message": "limit", "code": 4}},
                headers={"X-App-Usage": json.dumps(usage)})
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.RATE_LIMITED and err.value.retry_after == 120


async def test_401_is_auth_expired(net, server):
    server.fail("POST", f"{V}/{U}/threads_publish", status=401, body={"error": {"message": "expired"}})
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.AUTH_EXPIRED and err.value.resume["container_id"]


async def test_metrics_mapping(net, server):
    media_id = (await net.publish(account(server), outgoing())).remote_id
    server.media[media_id]["insights"] = {"views": 1000, "likes": 20, "replies": 4, "reposts": 3, "quotes": 2,
                                          "shares": 1}
    metrics = await net.fetch_metrics(account(server), [media_id, "9999"])
    m = metrics[media_id]
    assert (m.likes, m.comments, m.shares, m.quotes, m.impressions, m.followers) == (20, 4, 4, 2, 1000, 321)
    assert list(metrics) == [media_id]
    seen = server.requests("GET", f"{V}/{media_id}/insights")[0]
    assert seen.query["metric"] == "views,likes,replies,reposts,quotes,shares"


async def test_replies(net, server, clock):
    media_id = (await net.publish(account(server), outgoing())).remote_id
    server.add_comment(media_id, "first", "ann", clock.now() - timedelta(hours=3))
    new_id = server.add_comment(media_id, "second", "bob", clock.now())
    replies = await net.fetch_comments(account(server), [media_id], clock.now() - timedelta(hours=1))
    assert [(r.remote_id, r.author, r.text, r.parent_remote_id) for r in replies] == \
        [(new_id, "@bob", "second", media_id)]
    assert replies[0].url and server.requests("GET", f"{V}/{media_id}/replies")
    assert len(await net.fetch_comments(account(server), [media_id], None)) == 2


async def test_refresh_when_due_and_not(net, server, clock):
    later = (clock.now() + timedelta(days=10)).isoformat()
    assert await net.refresh(account(server, credentials={"token": THREADS_TOKEN, "expires_at": later})) is None
    soon = (clock.now() + timedelta(hours=20)).isoformat()
    new = await net.refresh(account(server, credentials={"token": THREADS_TOKEN, "expires_at": soon}))
    assert new == {"token": server.refreshed[0],
                   "expires_at": (clock.now() + timedelta(seconds=5184000)).isoformat()}
    seen = server.requests("GET", "/refresh_access_token")[0]
    assert seen.query == {"grant_type": "th_refresh_token", "access_token": THREADS_TOKEN}


async def test_refresh_dead_token(net, server, clock):
    past = (clock.now() - timedelta(hours=1)).isoformat()
    with pytest.raises(PublishError) as err:
        await net.refresh(account(server, credentials={"token": "gone", "expires_at": past}))
    assert err.value.kind == ErrorKind.AUTH_EXPIRED and "/connect threads" in err.value.reason


async def test_slow_carousel_item_is_never_kept_as_the_post(net, server):
    """Regression: a child still IN_PROGRESS used to leave resume={"container_id": <child>}, and the retry
    published that one image, without text, as the whole post."""
    server.container_statuses = ["IN_PROGRESS"] * 20  # the first child never gets ready in time
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing("Two", media=(png("red"), png("blue"))))
    slow_child = next(iter(server.containers))
    assert err.value.kind == ErrorKind.TRANSIENT and err.value.resume == {"container_id": ""}
    server.containers[slow_child]["statuses"] = ["FINISHED"]
    published = await net.publish(account(server), outgoing("Two", media=(png("red"), png("blue")),
                                                            resume=err.value.resume))
    post = server.media[published.remote_id]
    assert post["text"] == "Two" and post["params"]["media_type"] == "CAROUSEL" and len(server.media) == 1
    assert slow_child not in post["params"]["children"]


async def test_the_fake_refuses_a_carousel_item_as_the_post(net, server):
    child = await net.graph("POST", account(server), U, "threads",
                            data={"media_type": "IMAGE", "is_carousel_item": "true",
                                  "image_url": "https://media.example.com/a.jpg"})
    with pytest.raises(PublishError) as err:
        await net.graph("POST", account(server), U, "threads_publish", data={"creation_id": child["id"]})
    assert err.value.kind == ErrorKind.REJECTED and not server.media


async def test_container_answer_without_id_is_transient(net, server):
    server.fail("POST", f"{V}/{U}/threads", status=200, body={})
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.TRANSIENT and not server.requests("POST", f"{V}/{U}/threads_publish")


async def test_resumed_container_that_turns_published_while_waiting_is_found(net, server):
    server.fail("POST", f"{V}/{U}/threads_publish", drop=True, after=True)
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing("Went out"))
    server.containers[err.value.resume["container_id"]]["statuses"] = ["FINISHED", "PUBLISHED"]
    published = await net.publish(account(server), outgoing("Went out", resume=err.value.resume))
    assert published.remote_id in server.media and len(server.media) == 1
    assert len(server.requests("POST", f"{V}/{U}/threads_publish")) == 1
