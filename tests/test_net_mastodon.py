"""The Mastodon connector against mastodon-mock (a stateful Mastodon API served by uvicorn on 127.0.0.1),
and against a small LoopbackServer fake for what the mock can't do (202 media processing, dropped answers).
"""

from __future__ import annotations

import hashlib
import io
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from mastodon_mock.testing import MockServer
from PIL import Image

from bot.networks.http import new_client
from bot.networks.mastodon import MastodonNetwork, plain_text
from handlers.core.ports import AccountView, ErrorKind, MediaFile, Outgoing, PublishError
from tests.conftest import FakeClock
from tests.fakes import kit
from tests.fakes.mastodon_api import FakeMastodon


def png(color: tuple[int, int, int] = (0, 90, 200)) -> MediaFile:
    buf = io.BytesIO()
    Image.new("RGB", (2, 2), color).save(buf, format="PNG")
    data = buf.getvalue()
    return MediaFile("a.png", "image/png", data, hashlib.sha256(data).hexdigest())


def outgoing(text: str = "Spring sale starts today!", key: str | None = None, **kw: Any) -> Outgoing:
    """A delivery with its own idempotency key (the mock server lives for the whole module)."""
    return Outgoing(delivery_id=7, post_id=3, idempotency_key=key or f"herald-{uuid.uuid4().hex}", text=text, **kw)


@pytest.fixture(scope="module")
def mock():
    """One mastodon-mock for the module (seeded alice/bob/carol); tests use their own keys and texts."""
    with MockServer() as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def client(mock):
    sent: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        sent.append(request)

    http = new_client()
    http.event_hooks["request"] = [record]
    http.sent = sent  # type: ignore[attr-defined]
    await http.delete(f"{mock.base_url}/api/v1/_mock/faults")
    sent.clear()
    yield http
    await http.aclose()


@pytest.fixture
def net(client, clock) -> MastodonNetwork:
    return MastodonNetwork(client, clock)


def account(base: str | None, token: str = "alice_token", **settings: Any) -> AccountView:
    return kit.account("mastodon", base, settings=settings, credentials={"access_token": token})


async def as_bob(client: httpx.AsyncClient, mock: MockServer, method: str, path: str, **kw: Any) -> Any:
    response = await client.request(method, f"{mock.base_url}{path}", headers={"Authorization": "Bearer bob_token"},
                                    **kw)
    response.raise_for_status()
    return response.json()


async def fault(client: httpx.AsyncClient, mock: MockServer, **rule: Any) -> None:
    response = await client.post(f"{mock.base_url}/api/v1/_mock/faults", json=rule)
    response.raise_for_status()


# -- against mastodon-mock ----------------------------------------------------------------------------


async def test_verify_names_the_account_and_reads_instance_limits(net, mock, client):
    verified = await net.verify(account(mock.base_url))
    assert verified.description.startswith("@alice@127.0.0.1 on Mastodon (id ")
    assert verified.settings["username"] == "alice" and verified.settings["account_id"]
    assert verified.settings["max_characters"] == 500 and verified.settings["characters_reserved_per_url"] == 23
    assert client.sent[0].headers["authorization"] == "Bearer alice_token"  # type: ignore[attr-defined]


async def test_verify_wrong_token_is_auth_expired(net, mock):
    with pytest.raises(PublishError) as err:
        await net.verify(account(mock.base_url, token="wrong"))
    assert err.value.kind == ErrorKind.AUTH_EXPIRED and "requires an authenticated user" in err.value.reason


async def test_verify_needs_base_url(net):
    with pytest.raises(ValueError, match="base_url="):
        await net.verify(account(None))


async def test_check_uses_the_instance_limit(net, mock):
    assert not net.check(account(mock.base_url, max_characters=20), "x" * 30, 0).ok
    assert net.check(account(mock.base_url), "x" * 30, 0).ok


async def test_publish_text_with_link_and_idempotency(net, mock, client):
    text = f"Read it: https://example.com/spring {uuid.uuid4().hex[:6]}"
    acc = account(mock.base_url)
    key = f"herald-{uuid.uuid4().hex}"
    first = await net.publish(acc, outgoing(text, key, link="https://example.com/spring"))
    again = await net.publish(acc, outgoing(text, key, link="https://example.com/spring"))  # a retry
    assert again.remote_id == first.remote_id and first.url and first.url.endswith(first.remote_id)
    sent = [r for r in client.sent if r.url.path == "/api/v1/statuses"]  # type: ignore[attr-defined]
    assert [r.headers["idempotency-key"] for r in sent] == [key, key]
    status = (await client.get(f"{mock.base_url}/api/v1/statuses/{first.remote_id}")).json()
    assert "https://example.com/spring" in status["content"] and status["visibility"] == "public"
    timeline = await as_bob(client, mock, "GET", f"/api/v1/accounts/{status['account']['id']}/statuses",
                            params={"limit": 40})
    assert sum(text.split()[-1] in s["content"] for s in timeline) == 1  # one status, not two


async def test_another_delivery_is_another_status(net, mock):
    a = await net.publish(account(mock.base_url), outgoing("same words"))
    b = await net.publish(account(mock.base_url), outgoing("same words"))
    assert a.remote_id != b.remote_id


async def test_publish_with_images(net, mock, client):
    published = await net.publish(account(mock.base_url), outgoing(media=(png(), png((1, 2, 3)))))
    status = (await client.get(f"{mock.base_url}/api/v1/statuses/{published.remote_id}")).json()
    assert [m["type"] for m in status["media_attachments"]] == ["image", "image"]
    uploads = [r for r in client.sent if r.url.path == "/api/v2/media"]  # type: ignore[attr-defined]
    assert len(uploads) == 2 and b'name="file"; filename="a.png"' in uploads[0].read()


async def test_validation_error_is_rejected_with_the_reason(net, mock):
    with pytest.raises(PublishError) as err:
        await net.publish(account(mock.base_url), outgoing("x" * 600))
    assert err.value.kind == ErrorKind.REJECTED and "Text is too long" in err.value.reason


async def test_too_many_images_for_the_instance(net, mock):
    with pytest.raises(PublishError) as err:
        await net.publish(account(mock.base_url, max_media=1), outgoing(media=(png(), png())))
    assert err.value.kind == ErrorKind.REJECTED


async def test_429_reads_the_iso_reset(net, mock, client):
    reset = datetime.fromtimestamp(time.time() + 90, UTC).isoformat()
    await fault(client, mock, match={"methods": ["POST"], "path": "/api/v1/statuses"},
                effect={"type": "ratelimit", "headers": {"X-RateLimit-Reset": reset, "Retry-After": ""}}, count=1)
    with pytest.raises(PublishError) as err:
        await net.publish(account(mock.base_url), outgoing())
    assert err.value.kind == ErrorKind.RATE_LIMITED and 80 <= (err.value.retry_after or 0) <= 91


async def test_5xx_on_publish_is_transient_and_the_retry_is_safe(net, mock, client):
    await fault(client, mock, match={"methods": ["POST"], "path": "/api/v1/statuses"},
                effect={"type": "status", "status": 503}, count=1)
    with pytest.raises(PublishError) as err:
        await net.publish(account(mock.base_url), outgoing())
    assert err.value.kind == ErrorKind.TRANSIENT
    assert (await net.publish(account(mock.base_url), outgoing())).remote_id


async def test_failure_after_upload_keeps_the_media_for_the_retry(net, mock, client, clock):
    await fault(client, mock, match={"methods": ["POST"], "path": "/api/v1/statuses"},
                effect={"type": "status", "status": 500}, count=1)
    post = outgoing(media=(png(),))
    with pytest.raises(PublishError) as err:
        await net.publish(account(mock.base_url), post)
    media_id = next(iter(err.value.resume["media_ids"].values()))
    clock.advance(minutes=5)
    published = await net.publish(account(mock.base_url), Outgoing(**{**post.__dict__, "resume": err.value.resume}))
    status = (await client.get(f"{mock.base_url}/api/v1/statuses/{published.remote_id}")).json()
    assert [m["id"] for m in status["media_attachments"]] == [media_id]
    assert len([r for r in client.sent if r.url.path == "/api/v2/media"]) == 1  # type: ignore[attr-defined]


async def test_401_on_publish_is_auth_expired(net, mock):
    with pytest.raises(PublishError) as err:
        await net.publish(account(mock.base_url, token="revoked"), outgoing())
    assert err.value.kind == ErrorKind.AUTH_EXPIRED


async def test_metrics_batch_mapping_and_deleted(net, mock, client):
    acc = account(mock.base_url)
    a = (await net.publish(acc, outgoing("a"))).remote_id
    b = (await net.publish(acc, outgoing("b"))).remote_id
    await as_bob(client, mock, "POST", f"/api/v1/statuses/{a}/favourite")
    await as_bob(client, mock, "POST", f"/api/v1/statuses/{a}/reblog")
    await as_bob(client, mock, "POST", "/api/v1/statuses", json={"status": "@alice nice", "in_reply_to_id": a})
    await as_bob(client, mock, "POST", "/api/v1/accounts/" + (await client.get(
        f"{mock.base_url}/api/v1/accounts/verify_credentials", headers={"Authorization": "Bearer alice_token"}
    )).json()["id"] + "/follow")
    client.sent.clear()  # type: ignore[attr-defined]
    readings = await net.fetch_metrics(acc, [a, b, "999999"])
    assert set(readings) == {a, b}
    m = readings[a]
    assert (m.likes, m.shares, m.comments, m.impressions, m.saves) == (1, 1, 1, None, None)
    assert readings[b].likes == 0 and m.followers == 1
    batch = [r for r in client.sent if r.url.path == "/api/v1/statuses"]  # type: ignore[attr-defined]
    assert len(batch) == 1 and batch[0].url.params.get_list("id[]") == [a, b, "999999"]


async def test_metrics_batches_of_20(net, mock, client):
    ids = [str(n) for n in range(1, 46)]
    assert await net.fetch_metrics(account(mock.base_url), ids) == {}
    batch = [r for r in client.sent if r.url.path == "/api/v1/statuses"]  # type: ignore[attr-defined]
    assert [len(r.url.params.get_list("id[]")) for r in batch] == [20, 20, 5]


async def test_metrics_fall_back_per_status_before_4_3(net, mock, client):
    acc = account(mock.base_url)
    a = (await net.publish(acc, outgoing("a"))).remote_id
    await as_bob(client, mock, "POST", f"/api/v1/statuses/{a}/favourite")
    await fault(client, mock, match={"methods": ["GET"], "path": "/api/v1/statuses"},
                effect={"type": "status", "status": 404, "body": {"error": "Record not found"}})
    readings = await net.fetch_metrics(acc, [a, "999999"])
    assert set(readings) == {a} and readings[a].likes == 1
    readings = await net.fetch_metrics(acc, [a])  # remembered: no second try of the batch endpoint
    batch = [r for r in client.sent if r.url.path == "/api/v1/statuses" and r.method == "GET"]  # type: ignore
    assert len(batch) == 1


async def test_comments_are_the_descendants_without_our_own(net, mock, client):
    acc = account(mock.base_url)
    verified = await net.verify(acc)
    acc = account(mock.base_url, **verified.settings)
    a = (await net.publish(acc, outgoing("a"))).remote_id
    reply = await as_bob(client, mock, "POST", "/api/v1/statuses",
                         json={"status": "@alice When & where?", "in_reply_to_id": a})
    await as_bob(client, mock, "POST", "/api/v1/statuses", json={"status": "and more", "in_reply_to_id": reply["id"]})
    await net.publish(acc, outgoing("thanks"))
    comments = await net.fetch_comments(acc, [a, "999999"], None)
    assert [(c.author, c.text, c.parent_remote_id) for c in comments] == [
        ("@bob", "@alice When & where?", a), ("@bob", "and more", a)]
    assert comments[0].remote_id == reply["id"] and comments[0].created_at.tzinfo is not None
    later = await net.fetch_comments(acc, [a], comments[0].created_at)
    assert [c.text for c in later] == ["and more"]


def test_plain_text():
    assert plain_text("<p>Hi &amp; bye<br>now</p><p>next</p>") == "Hi & bye\nnow\n\nnext"


# -- against the small fake (faults mastodon-mock can't make) -------------------------------------------


@pytest.fixture
async def fake():
    async with FakeMastodon() as srv:
        yield srv


def fake_account(fake: FakeMastodon) -> AccountView:
    return AccountView(id=1, workspace_id=1, network="mastodon", name="brand", base_url=fake.url,
                       settings={}, credentials={"access_token": "masto-token"})


async def test_202_media_is_polled_until_processed(net, fake):
    net.media_poll_seconds = 0.01
    published = await net.publish(fake_account(fake), outgoing(media=(png(),)))
    polls = fake.requests("GET", "/api/v1/media/*")
    assert len(polls) == 2 and fake.statuses[published.remote_id]["media_ids"] == list(fake.media)
    upload = fake.requests("POST", "/api/v2/media")[0]
    assert upload.header("authorization") == "Bearer masto-token" and upload.form["file"]["filename"] == "a.png"


async def test_media_still_processing_is_transient_with_resume(net, fake):
    net.media_poll_seconds = 0.01
    fake.processing_polls = 10_000
    with pytest.raises(PublishError) as err:
        await net.publish(fake_account(fake), outgoing(media=(png(),)))
    assert err.value.kind == ErrorKind.TRANSIENT and list(err.value.resume["media_ids"].values()) == list(fake.media)
    assert fake.requests("POST", "/api/v1/statuses") == []


async def test_dropped_answer_is_transient_and_the_retry_returns_the_same_status(net, fake, clock):
    fake.fail("POST", "/api/v1/statuses", drop=True, after=True)
    with pytest.raises(PublishError) as err:
        await net.publish(fake_account(fake), outgoing(key="herald-d7"))
    assert err.value.kind == ErrorKind.TRANSIENT and len(fake.statuses) == 1
    assert err.value.resume == {"guard_status_first_tried_at": "2026-11-23T09:00:00Z", "in_flight": True}
    published = await net.publish(fake_account(fake), outgoing(key="herald-d7"))
    assert list(fake.statuses) == [published.remote_id]
    assert [s.header("idempotency-key") for s in fake.requests("POST", "/api/v1/statuses")] == ["herald-d7"] * 2


async def test_media_upload_budget(net, fake):
    net.media_poll_seconds = 0.01
    net.media_limit = (6, 1800.0)  # type: ignore[misc]  # 30 per 30 min for real
    fake.processing_polls = 0
    await net.publish(fake_account(fake), outgoing("p1", media=(png(),) * 4))
    with pytest.raises(PublishError) as err:
        await net.publish(fake_account(fake), outgoing("p2", media=(png(),) * 4))
    assert err.value.kind == ErrorKind.RATE_LIMITED and err.value.retry_after == 1200
    assert "6 image uploads per 30 minutes" in err.value.reason and len(fake.media) == 4


# -- Mastodon keeps an Idempotency-Key about an hour: the guard -------------------------------------------


@pytest.fixture
async def forgetful(clock):
    """The small fake, forgetting Idempotency-Keys an hour after their first use on the test's clock."""
    async with FakeMastodon(clock=clock.now) as srv:
        yield srv


def again(post: Outgoing, resume: dict[str, Any]) -> Outgoing:
    return Outgoing(**{**post.__dict__, "resume": resume})


async def test_the_fake_forgets_a_key_after_an_hour(net, forgetful, clock):
    first = await net.publish(fake_account(forgetful), outgoing(key="herald-h1"))
    clock.advance(minutes=59)
    assert (await net.publish(fake_account(forgetful), outgoing(key="herald-h1"))).remote_id == first.remote_id
    clock.advance(minutes=2)
    assert (await net.publish(fake_account(forgetful), outgoing(key="herald-h1"))).remote_id != first.remote_id


async def test_a_retry_within_the_hour_is_deduped(net, forgetful, clock):
    post = outgoing(key="herald-g1")
    forgetful.fail("POST", "/api/v1/statuses", drop=True, after=True)  # posted, the answer lost
    with pytest.raises(PublishError) as err:
        await net.publish(fake_account(forgetful), post)
    assert err.value.kind == ErrorKind.TRANSIENT and err.value.resume["in_flight"] is True
    assert err.value.resume["guard_status_first_tried_at"] == "2026-11-23T09:00:00Z"
    clock.advance(minutes=45)
    published = await net.publish(fake_account(forgetful), again(post, err.value.resume))
    assert list(forgetful.statuses) == [published.remote_id]  # Mastodon answered with the first one


async def test_an_attempt_after_50_minutes_is_not_sent(net, forgetful, clock):
    post = outgoing(key="herald-g2", media=(png(),))
    forgetful.processing_polls = 0
    forgetful.fail("POST", "/api/v1/statuses", drop=True, after=True)
    with pytest.raises(PublishError) as err:
        await net.publish(fake_account(forgetful), post)
    clock.advance(minutes=51)
    sent_before = len(forgetful.seen)
    with pytest.raises(PublishError) as late:
        await net.publish(fake_account(forgetful), again(post, err.value.resume))
    assert late.value.kind == ErrorKind.UNKNOWN_OUTCOME and "only remembers the Idempotency-Key" in late.value.reason
    assert "/retry 3 brand" in late.value.reason and "/confirm 3 brand" in late.value.reason
    assert len(forgetful.seen) == sent_before and len(forgetful.statuses) == 1  # nothing sent, no second status
    assert late.value.resume == {"guard_status_first_tried_at": "2026-11-23T09:00:00Z"}


async def test_the_teams_resend_without_the_guard_is_sent(net, forgetful, clock):
    post = outgoing(key="herald-g3")
    forgetful.fail("POST", "/api/v1/statuses", drop=True)  # the connection broke: nothing was made
    with pytest.raises(PublishError) as err:
        await net.publish(fake_account(forgetful), post)
    assert err.value.resume["in_flight"] is True and not forgetful.statuses
    clock.advance(hours=3)
    # the team checked the account and found nothing: /retry <post> <account> drops the guard_ keys
    lifted = {k: v for k, v in err.value.resume.items() if not k.startswith("guard_")}
    published = await net.publish(fake_account(forgetful), again(post, lifted))
    assert list(forgetful.statuses) == [published.remote_id]


async def test_an_old_guard_without_a_status_that_may_have_left_is_sent(net, forgetful, clock):
    post = outgoing(key="herald-g4")
    forgetful.fail("POST", "/api/v1/statuses", status=429, body={"error": "Too many requests"})
    with pytest.raises(PublishError) as err:
        await net.publish(fake_account(forgetful), post)
    assert err.value.kind == ErrorKind.RATE_LIMITED and "in_flight" not in err.value.resume
    assert err.value.resume["guard_status_first_tried_at"] == "2026-11-23T09:00:00Z"
    clock.advance(hours=2)  # a 429 made nothing: there is nothing a forgotten key could double
    published = await net.publish(fake_account(forgetful), again(post, err.value.resume))
    assert list(forgetful.statuses) == [published.remote_id]


async def test_the_first_attempt_time_is_kept_across_attempts(net, forgetful, clock):
    post = outgoing(key="herald-g5")
    forgetful.fail("POST", "/api/v1/statuses", status=503, body={"error": "busy"})
    with pytest.raises(PublishError) as first:
        await net.publish(fake_account(forgetful), post)
    clock.advance(minutes=20)
    forgetful.fail("POST", "/api/v1/statuses", status=503, body={"error": "busy"})
    with pytest.raises(PublishError) as second:
        await net.publish(fake_account(forgetful), again(post, first.value.resume))
    assert second.value.resume["guard_status_first_tried_at"] == "2026-11-23T09:00:00Z"


async def test_a_long_retry_after_on_the_status_is_cut_to_10_minutes(net, forgetful):
    forgetful.fail("POST", "/api/v1/statuses", status=503, body={"error": "down for maintenance"},
                   headers={"Retry-After": "7200"})
    with pytest.raises(PublishError) as err:
        await net.publish(fake_account(forgetful), outgoing(key="herald-g6"))
    assert err.value.kind == ErrorKind.TRANSIENT and err.value.retry_after == 600
    assert err.value.resume["in_flight"] is True
