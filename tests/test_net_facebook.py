"""Facebook Pages connector against the fake Graph server: what it sends, what it makes of answers."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from PIL import Image

from bot.networks.facebook import FacebookNetwork
from bot.networks.meta import GRAPH_VERSION
from handlers.core.ports import AccountView, ErrorKind, MediaFile, Outgoing, PublishError
from tests.fakes import kit
from tests.fakes.meta_graph import PAGE_ID, PAGE_TOKEN, MetaGraphServer

V = f"/{GRAPH_VERSION}"


def png(color: str = "red") -> MediaFile:
    buffer = io.BytesIO()
    Image.new("RGB", (2, 2), color).save(buffer, format="PNG")
    data = buffer.getvalue()
    return MediaFile(f"{color}.png", "image/png", data, f"sha-{color}")


def outgoing(text: str = "Hello Page", **kwargs) -> Outgoing:
    return Outgoing(delivery_id=1, post_id=1, idempotency_key="k1", text=text, **kwargs)


server = kit.server_fixture(MetaGraphServer)


net = kit.network_fixture(FacebookNetwork)


def account(server: MetaGraphServer, token: str = PAGE_TOKEN, **settings) -> AccountView:
    return kit.account("facebook", server.url, settings={"page_id": PAGE_ID, **settings},
                       credentials={"token": token})


def test_connect_spec_keeps_the_token_secret():
    spec = FacebookNetwork.connect_spec
    assert spec.required == ("token",) and "token" in spec.secret
    assert "/connect facebook" in spec.help and FacebookNetwork.default_base_url == "https://graph.facebook.com"
    assert FacebookNetwork.idempotent is False


async def test_verify_reads_the_page_with_its_token(net, server):
    verified = await net.verify(account(server))
    assert verified.description == "Brand Page on Facebook (Page id 1001)"
    assert verified.settings == {"page_id": PAGE_ID, "page_name": "Brand Page"}
    seen = server.requests("GET", f"{V}/{PAGE_ID}")[0]
    assert seen.header("authorization") == f"Bearer {PAGE_TOKEN}"
    assert seen.query["fields"] == "id,name,link"


async def test_verify_without_page_id_asks_me(net, server):
    acct = AccountView(id=1, workspace_id=1, network="facebook", name="brand", base_url=server.url, settings={},
                       credentials={"token": PAGE_TOKEN})
    verified = await net.verify(acct)
    assert verified.settings["page_id"] == PAGE_ID
    assert server.requests("GET", f"{V}/me")


async def test_verify_wrong_token_is_auth_expired(net, server):
    with pytest.raises(PublishError) as err:
        await net.verify(account(server, token="nope"))
    assert err.value.kind == ErrorKind.AUTH_EXPIRED
    assert "Error validating access token" in err.value.reason and "/connect facebook" in err.value.reason


async def test_verify_bad_page_id_is_a_value_error(net, server):
    with pytest.raises(ValueError):
        await net.verify(account(server, page_id="brand-page"))


async def test_publish_text(net, server):
    published = await net.publish(account(server), outgoing("Hello Page"))
    seen = server.requests("POST", f"{V}/{PAGE_ID}/feed")[0]
    assert seen.form == {"message": "Hello Page"}
    assert seen.header("authorization") == f"Bearer {PAGE_TOKEN}"
    assert published.remote_id.startswith(f"{PAGE_ID}_")
    assert published.url == server.posts[published.remote_id]["permalink_url"]


async def test_publish_link_goes_in_the_link_field(net, server):
    await net.publish(account(server), outgoing("Read this https://ex.com/a", link="https://ex.com/a"))
    seen = server.requests("POST", f"{V}/{PAGE_ID}/feed")[0]
    assert seen.form == {"message": "Read this https://ex.com/a", "link": "https://ex.com/a"}


async def test_publish_one_image_uploads_it_as_a_photo_post(net, server):
    image = png()
    published = await net.publish(account(server), outgoing("Look", media=(image,)))
    seen = server.requests("POST", f"{V}/{PAGE_ID}/photos")[0]
    assert seen.content_type == "multipart/form-data"
    assert seen.form["message"] == "Look" and seen.form["published"] == "true"
    assert seen.form["source"]["data"] == image.data and seen.form["source"]["content_type"] == "image/png"
    assert published.remote_id in server.posts and not server.requests("POST", f"{V}/{PAGE_ID}/feed")


async def test_publish_several_images_attaches_unpublished_photos(net, server):
    published = await net.publish(account(server), outgoing("Album", media=(png("red"), png("blue"))))
    uploads = server.requests("POST", f"{V}/{PAGE_ID}/photos")
    assert [u.form["published"] for u in uploads] == ["false", "false"]
    feed = server.requests("POST", f"{V}/{PAGE_ID}/feed")[0]
    photo_ids = [pid for pid, p in server.photos.items() if not p["published"]]
    assert feed.form["message"] == "Album"
    assert [json.loads(feed.form[f"attached_media[{i}]"]) for i in range(2)] == [{"media_fbid": p} for p in photo_ids]
    assert server.posts[published.remote_id]["photos"] == photo_ids


async def test_album_failure_keeps_the_photos_and_the_retry_reuses_them(net, server):
    server.fail("POST", f"{V}/{PAGE_ID}/feed", status=500,
                body={"error": {"message": "An unexpected error has occurred.", "code": 2, "type": "OAuthException"}})
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing("Album", media=(png("red"), png("blue"))))
    assert err.value.kind == ErrorKind.UNKNOWN_OUTCOME
    kept = err.value.resume["photo_ids"]
    assert len(kept) == 2
    await net.publish(account(server), outgoing("Album", media=(png("red"), png("blue")), resume=err.value.resume))
    assert len(server.requests("POST", f"{V}/{PAGE_ID}/photos")) == 2  # not uploaded again
    assert json.loads(server.requests("POST", f"{V}/{PAGE_ID}/feed")[-1].form["attached_media[0]"]) == \
        {"media_fbid": kept[0]}


async def test_5xx_on_publish_is_unknown_outcome(net, server):
    server.fail("POST", f"{V}/{PAGE_ID}/feed", status=503, after=True)
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.UNKNOWN_OUTCOME


async def test_code_2_with_400_on_publish_is_unknown_outcome(net, server):
    server.fail("POST", f"{V}/{PAGE_ID}/feed", status=400,
                body={"error": {"message": "Service temporarily unavailable", "code": 2, "is_transient": True}})
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.UNKNOWN_OUTCOME and "temporarily unavailable" in err.value.reason


async def test_rate_limit_reads_business_use_case_usage(net, server):
    usage = {PAGE_ID: [{"type": "pages", "call_count": 100, "total_cputime": 20, "total_time": 30,
                        "estimated_time_to_regain_access": 7}]}
    server.fail("POST", f"{V}/{PAGE_ID}/feed", status=400,
                body={"error": {"message": "(#80001) There have been too many calls to this Page account.",
                                "type": "OAuthException", "code": 80001, "fbtrace_id": "x"}},
                headers={"X-Business-Use-Case-Usage": json.dumps(usage)})
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.RATE_LIMITED and err.value.retry_after == 7 * 60
    assert "too many calls" in err.value.reason


@pytest.mark.parametrize("code", [4, 17, 32, 613])
async def test_throttling_codes_are_rate_limited(net, server, code):
    server.fail("POST", f"{V}/{PAGE_ID}/feed", status=403,
                body={"error": {"message": "Application request limit reached", "code": code}},
                headers={"X-App-Usage": json.dumps({"call_count": 100, "total_time": 10, "total_cputime": 10})})
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.RATE_LIMITED and err.value.retry_after == 600


async def test_429_with_retry_after(net, server):
    server.fail("GET", f"{V}/{PAGE_ID}", status=429, headers={"Retry-After": "42"})
    with pytest.raises(PublishError) as err:
        await net.verify(account(server))
    assert err.value.kind == ErrorKind.RATE_LIMITED and err.value.retry_after == 42


async def test_401_is_auth_expired(net, server):
    server.fail("POST", f"{V}/{PAGE_ID}/feed", status=401, body={"error": {"message": "nope"}})
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.AUTH_EXPIRED


async def test_expired_token_while_publishing_is_auth_expired(net, server):
    with pytest.raises(PublishError) as err:
        await net.publish(account(server, token="old"), outgoing())
    assert err.value.kind == ErrorKind.AUTH_EXPIRED and not server.posts


async def test_duplicate_is_rejected_with_facebook_message(net, server):
    await net.publish(account(server), outgoing("Same"))
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing("Same"))
    assert err.value.kind == ErrorKind.REJECTED
    assert "duplicate" in err.value.reason.lower() and "#506" in err.value.reason


async def test_policy_block_368_is_rejected(net, server):
    server.fail("POST", f"{V}/{PAGE_ID}/feed", status=400, body={"error": {
        "message": "It looks like you were misusing this feature by going too fast.", "code": 368,
        "error_user_msg": "You're temporarily blocked from posting."}})
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.REJECTED and "temporarily blocked" in err.value.reason


async def test_permission_error_asks_to_reconnect(net, server):
    server.fail("POST", f"{V}/{PAGE_ID}/feed", status=403, body={"error": {
        "message": "(#200) The user hasn't authorized the application to perform this action", "code": 200}})
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing())
    assert err.value.kind == ErrorKind.AUTH_EXPIRED and "permission" in err.value.reason


async def test_permalink_failure_does_not_fail_the_publish(net, server):
    server.fail("GET", f"{V}/*", status=500)
    published = await net.publish(account(server), outgoing())
    assert published.url == f"https://www.facebook.com/{published.remote_id}"


async def test_metrics_batch_counts_and_insights(net, server):
    ids = []
    for i in range(3):
        ids.append((await net.publish(account(server), outgoing(f"post {i}"))).remote_id)
    post = server.posts[ids[0]]
    post.update(reactions=12, shares=3, insights={"post_media_view": 900, "post_clicks": 41})
    server.add_comment(ids[0], "nice", "Ann", net.clock.now())
    server.seen.clear()
    net.insights_batch = 2  # type: ignore[misc]
    metrics = await net.fetch_metrics(account(server), ids)
    m = metrics[ids[0]]
    assert (m.likes, m.comments, m.shares, m.impressions, m.clicks, m.followers) == (12, 1, 3, 900, 41, 1234)
    assert metrics[ids[1]].shares == 0 and metrics[ids[1]].impressions == 0
    lookups = server.requests("GET", f"{V}/")
    assert [r.query["ids"] for r in lookups] == [f"{ids[0]},{ids[1]}", f"{ids[0]},{ids[1]}", ids[2], ids[2]]
    assert "reactions.summary(total_count)" in lookups[0].query["fields"]
    assert lookups[1].query["fields"] == "insights.metric(post_media_view,post_clicks)"


async def test_metrics_leave_out_deleted_posts(net, server):
    kept = (await net.publish(account(server), outgoing("kept"))).remote_id
    metrics = await net.fetch_metrics(account(server), [kept, f"{PAGE_ID}_999"])
    assert list(metrics) == [kept]


async def test_metrics_survive_an_invalid_insights_metric(net, server):
    remote = (await net.publish(account(server), outgoing("x"))).remote_id
    server.posts[remote]["reactions"] = 5
    metrics = await net.fetch_metrics(account(server, insights_metrics="post_impressions"), [remote])
    assert metrics[remote].likes == 5 and metrics[remote].impressions is None


async def test_comments_newer_than_since(net, server, clock):
    remote = (await net.publish(account(server), outgoing("x"))).remote_id
    server.add_comment(remote, "old one", "Ann", clock.now() - timedelta(hours=2))
    new_id = server.add_comment(remote, "new one", "Bob", clock.now())
    comments = await net.fetch_comments(account(server), [remote], clock.now() - timedelta(hours=1))
    assert [(c.remote_id, c.author, c.text, c.parent_remote_id) for c in comments] == \
        [(new_id, "Bob", "new one", remote)]
    assert comments[0].created_at == clock.now()
    seen = server.requests("GET", f"{V}/{remote}/comments")[0]
    assert seen.query["since"] == str(int((clock.now() - timedelta(hours=1)).timestamp()))


async def test_refresh_is_not_needed_for_page_tokens(net, server):
    assert await net.refresh(account(server)) is None


async def test_photo_upload_answer_without_an_id_is_transient(net, server):
    server.fail("POST", f"{V}/{PAGE_ID}/photos", status=200, body={"success": True})
    with pytest.raises(PublishError) as err:
        await net.publish(account(server), outgoing("Album", media=(png("red"), png("blue"))))
    assert err.value.kind == ErrorKind.TRANSIENT and "nothing was posted" in err.value.reason
    assert not server.requests("POST", f"{V}/{PAGE_ID}/feed") and not server.posts


# -- country targeting (an audience's country) ------------------------------------------------------------


async def test_a_country_targets_the_feed_post_with_a_json_form_field(net, server):
    published = await net.publish(account(server), outgoing("Hola", link="https://ex.com/es", country="ES"))
    seen = server.requests("POST", f"{V}/{PAGE_ID}/feed")[0]
    assert seen.form["targeting"] == '{"geo_locations":{"countries":["ES"]}}'  # one field, JSON
    assert json.loads(seen.form["targeting"]) == {"geo_locations": {"countries": ["ES"]}}
    assert seen.form["message"] == "Hola" and seen.form["link"] == "https://ex.com/es"
    assert server.posts[published.remote_id]["targeting"] == {"geo_locations": {"countries": ["ES"]}}


async def test_no_country_sends_no_targeting(net, server):
    published = await net.publish(account(server), outgoing("Hello everyone"))
    assert "targeting" not in server.requests("POST", f"{V}/{PAGE_ID}/feed")[0].form
    assert server.posts[published.remote_id]["targeting"] is None


async def test_a_targeted_single_image_is_attached_to_a_targeted_feed_post(net, server):
    published = await net.publish(account(server), outgoing("Mira", media=(png(),), country="es"))
    upload = server.requests("POST", f"{V}/{PAGE_ID}/photos")
    assert len(upload) == 1 and upload[0].form["published"] == "false" and "targeting" not in upload[0].form
    photo_id = next(iter(server.photos))
    feed = server.requests("POST", f"{V}/{PAGE_ID}/feed")[0]
    assert json.loads(feed.form["targeting"]) == {"geo_locations": {"countries": ["ES"]}}
    assert json.loads(feed.form["attached_media[0]"]) == {"media_fbid": photo_id}
    post = server.posts[published.remote_id]
    assert post["photos"] == [photo_id] and post["targeting"] == {"geo_locations": {"countries": ["ES"]}}


async def test_a_targeted_album_carries_the_targeting_on_its_feed_post(net, server):
    published = await net.publish(account(server), outgoing("Álbum", media=(png("red"), png("blue")), country="FR"))
    feed = server.requests("POST", f"{V}/{PAGE_ID}/feed")[0]
    assert json.loads(feed.form["targeting"]) == {"geo_locations": {"countries": ["FR"]}}
    assert len(server.posts[published.remote_id]["photos"]) == 2


async def test_the_fake_graph_refuses_targeting_that_is_not_json(server):
    """The fake reads `targeting` as Graph does: a nested form array or plain words are refused, not ignored."""
    import aiohttp

    async with aiohttp.ClientSession() as http:
        for bad in ("ES", "geo_locations[countries][0]=ES", '{"geo_locations":{"countries":["Spain"]}}'):
            async with http.post(f"{server.url}{V}/{PAGE_ID}/feed", data={"message": "x", "targeting": bad},
                                 headers={"Authorization": f"Bearer {PAGE_TOKEN}"}) as answer:
                body = await answer.json()
                assert answer.status == 400 and body["error"]["code"] == 100, body
    assert not server.posts


def test_facebook_and_linkedin_pages_declare_country_targeting():
    from tests.networks import every_network

    flagged = sorted(p.key for p in every_network().profiles() if p.country_targeting)
    assert flagged == ["facebook", "linkedin"]
