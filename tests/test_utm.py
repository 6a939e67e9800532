"""Links in posts get UTM parameters per network and campaign (/utm, on by default).

The end-to-end tests publish through the real X and Mastodon connectors to their loopback fakes and read the
tagged links from the requests the fakes received; the limit tests read the draft card's counts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass

import pytest
import regex
from sqlmodel import select

from handlers.posts.links import SocialSites, holds_link, social_sites, tag_links, tag_url
from storage.models import AuditEvent, Workspace
from tests.conftest import FakeClock, Team, refused
from tests.fakes.bluesky_api import FakeBluesky
from tests.fakes.mastodon_api import FakeMastodon
from tests.fakes.x_api import FakeX
from tests.networks import every_network

PARAMS = {"utm_source": "x", "utm_medium": "social", "utm_campaign": "spring", "utm_content": "post-7"}
TAGS = "utm_source=x&utm_medium=social&utm_campaign=spring&utm_content=post-7"
SOCIAL = social_sites(every_network())  # the sites of every connector's profile, and those Herald has none for


# --- the tagging rules ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://shop.acme.com/spring", f"https://shop.acme.com/spring?{TAGS}"),
        ("https://shop.acme.com", f"https://shop.acme.com/?{TAGS}"),
        # other parameters (and their encoding) and the fragment stay as written
        ("https://shop.acme.com/p?color=red&size=%2042#reviews", f"https://shop.acme.com/p?color=red&size=%2042&{TAGS}#reviews"),
        # sentence punctuation after a link stays after it; a parenthesis the link opened stays in it
        ("New: https://shop.acme.com/new.", f"New: https://shop.acme.com/new?{TAGS}."),
        ("(see https://en.wikipedia.org/wiki/Bird_(band))", f"(see https://en.wikipedia.org/wiki/Bird_(band)?{TAGS})"),
        # non-ASCII punctuation and emoji glued to a link end the sentence, not the link
        ("Sale https://shop.acme.com/p🎉", f"Sale https://shop.acme.com/p?{TAGS}🎉"),
        ("«https://shop.acme.com/p»", f"«https://shop.acme.com/p?{TAGS}»"),
        ("見て https://shop.acme.com/p。", f"見て https://shop.acme.com/p?{TAGS}。"),
        ("https://shop.acme.com/p…", f"https://shop.acme.com/p?{TAGS}…"),
        ("https://shop.acme.com/café/", f"https://shop.acme.com/café/?{TAGS}"),  # letters and / stay in it
        # links that already carry utm_ parameters are the team's own tagging
        ("https://shop.acme.com/?utm_source=newsletter", "https://shop.acme.com/?utm_source=newsletter"),
        ("https://shop.acme.com/?ref=1&UTM_Campaign=x", "https://shop.acme.com/?ref=1&UTM_Campaign=x"),
        # links to the social networks themselves
        ("https://x.com/acme/status/1 https://www.youtube.com/watch?v=abc https://pinterest.fr/pin/9 https://t.me/acme",
         "https://x.com/acme/status/1 https://www.youtube.com/watch?v=abc https://pinterest.fr/pin/9 https://t.me/acme"),
        ("mailto:hi@shop.acme.com ftp://files.shop.acme.com/a", "mailto:hi@shop.acme.com ftp://files.shop.acme.com/a"),
    ],
)
def test_links_are_tagged_by_the_rules(text: str, expected: str) -> None:
    assert tag_links(text, PARAMS, SOCIAL) == expected


def test_two_links_in_one_text_are_both_tagged_and_nothing_else_changes() -> None:
    text = "Sale https://shop.acme.com/a and https://blog.acme.com/b?x=1 — see you!"
    assert tag_links(text, PARAMS, SOCIAL) == f"Sale https://shop.acme.com/a?{TAGS} and https://blog.acme.com/b?x=1&{TAGS} — see you!"


def test_the_accounts_own_server_is_left_alone() -> None:
    own = SocialSites(frozenset({"social.acme.example"}))
    assert tag_url("https://social.acme.example/@acme/1", PARAMS, own) == "https://social.acme.example/@acme/1"


@pytest.mark.parametrize("link", ["https://ex.com?ref=nl", "https://ex.com#top", "https://ex.com"])
def test_a_link_without_a_path_is_recognised_once_tagged(link: str) -> None:
    """tag_url writes the empty path as "/": the text still holds the link, so it isn't added twice."""
    tagged = tag_links(f"Sale!\n{link}", PARAMS, SOCIAL)
    assert tagged != f"Sale!\n{link}" and holds_link(tagged, link)


def test_a_text_holds_its_link_when_it_carries_it_tagged() -> None:
    assert holds_link(f"Hi https://shop.acme.com/spring?{TAGS}", "https://shop.acme.com/spring")
    assert not holds_link("Hi https://shop.acme.com/autumn", "https://shop.acme.com/spring")


# --- publishing through X and Mastodon -----------------------------------------------------------------------


@dataclass
class Fakes:
    x: FakeX
    mastodon: FakeMastodon


@pytest.fixture
async def fakes() -> AsyncIterator[Fakes]:
    async with AsyncExitStack() as stack:
        x = await stack.enter_async_context(FakeX())
        mastodon = await stack.enter_async_context(FakeMastodon())
        yield Fakes(x, mastodon)


async def connect(team: Team, fakes: Fakes) -> None:
    await team.say("alice", "/setup Acme")
    await team.say("alice", "/role bob approver")
    out = await team.say("alice", f"/connect x name=acme-x base_url={fakes.x.url} access_token=tok-1")
    assert out.startswith("Connected acme-x ("), out
    out = await team.say("alice", f"/connect mastodon name=acme-masto base_url={fakes.mastodon.url} "
                                  "access_token=masto-token")
    assert out.startswith("Connected acme-masto ("), out


async def publish(team: Team, draft: str) -> int:
    out = await team.say("alice", f"/draft {draft}")
    post_id = int(out.split("#", 1)[1].split(" ", 1)[0].rstrip("."))
    await team.say("alice", f"/submit {post_id}")
    await team.say("bob", f"/approve {post_id}")
    out = await team.say("alice", f"/publish {post_id}")
    assert f"📣 #{post_id} is published" in out, out
    return post_id


def sent_texts(fakes: Fakes) -> tuple[str, str]:
    """The text of the one post each fake was asked to create."""
    (tweet,) = fakes.x.requests("POST", "/2/tweets")
    (status,) = fakes.mastodon.requests("POST", "/api/v1/statuses")
    return tweet.json["text"], status.json["status"]


async def test_each_network_gets_its_own_source_on_the_posts_link_and_the_links_in_its_text(
    team: Team, fakes: Fakes
) -> None:
    await connect(team, fakes)
    post_id = await publish(
        team, "Spring is here! Sizes: https://shop.acme.com/sale?color=red#sizes — more at https://x.com/acme "
              "and https://blog.acme.com/?utm_source=blog link=https://shop.acme.com/spring campaign=spring")
    tweet, status = sent_texts(fakes)

    def tagged(network: str, account: str) -> str:
        return f"utm_source={network}&utm_medium=social&utm_campaign=spring&utm_content=post-{post_id}-{account}"

    assert tweet == (
        f"Spring is here! Sizes: https://shop.acme.com/sale?color=red&{tagged('x', 'acme-x')}#sizes — more at "
        f"https://x.com/acme and https://blog.acme.com/?utm_source=blog\n"
        f"https://shop.acme.com/spring?{tagged('x', 'acme-x')}")
    assert status == tweet.replace(tagged("x", "acme-x"), tagged("mastodon", "acme-masto"))
    # what the networks hold is what Herald sent
    assert [t["text"] for t in fakes.x.tweets.values()] == [tweet]
    assert [s["content"] for s in fakes.mastodon.statuses.values()] == [status]


async def test_a_post_without_a_campaign_is_tagged_with_the_default_one(team: Team, fakes: Fakes) -> None:
    await connect(team, fakes)
    post_id = await publish(team, "New blog post link=https://blog.acme.com/p/42")
    tweet, status = sent_texts(fakes)
    assert tweet == (f"New blog post\nhttps://blog.acme.com/p/42?utm_source=x&utm_medium=social&utm_campaign=herald"
                     f"&utm_content=post-{post_id}-acme-x")
    assert status.endswith(f"?utm_source=mastodon&utm_medium=social&utm_campaign=herald"
                           f"&utm_content=post-{post_id}-acme-masto")


async def test_with_utm_off_links_go_out_exactly_as_written(team: Team, fakes: Fakes) -> None:
    await connect(team, fakes)
    out = await team.say("alice", "/utm off")
    assert out == "UTM tagging is off: links in posts not yet published go out exactly as written."
    await publish(team, "Spring is here: https://shop.acme.com/sale?color=red#sizes link=https://shop.acme.com/spring "
                        "campaign=spring")
    tweet, status = sent_texts(fakes)
    assert tweet == status == "Spring is here: https://shop.acme.com/sale?color=red#sizes\nhttps://shop.acme.com/spring"
    assert "UTM tagging is off" in await team.say("bob", "/utm")
    out = await team.say("alice", "/utm on")
    assert out.startswith("UTM tagging is on")
    assert "UTM tagging is on" in await team.say("bob", "/utm")


# --- the setting --------------------------------------------------------------------------------------------


async def test_only_admins_change_the_setting_and_bad_values_change_nothing(team: Team) -> None:
    await team.setup_workspace()
    await refused(team, "bob", "/utm off", "Only admins can change UTM tagging")
    await refused(team, "alice", "/utm maybe", "'maybe' isn't on, off or audience=<parameter>. Usage: /utm [on|off|")
    assert await team.say("alice", "/utm on") == "UTM tagging is already on."
    await team.say("alice", "/utm off")
    with team.herald.db.session() as session:
        assert [w.utm for w in session.exec(select(Workspace)).all()] == [False]
        assert [(e.actor, e.action, e.detail) for e in session.exec(
            select(AuditEvent).where(AuditEvent.action == "utm")).all()] == [("alice", "utm", "off")]


# --- /preview and the limit checks see the tagged text --------------------------------------------------------


def graphemes(text: str) -> int:
    return len(regex.findall(r"\X", text))


async def test_preview_shows_each_accounts_tagged_links(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/draft Spring is here link=https://shop.acme.com/spring campaign=spring")
    out = await team.say("bob", "/preview 1")
    tags = "utm_medium=social&utm_campaign=spring&utm_content=post-1"
    assert (f"── brand-bsky ──\n│ Spring is here\n│ https://shop.acme.com/spring?utm_source=sandbox&{tags}-brand-bsky\n"
            "  ✓ Bluesky:") in out
    assert (f"── brand-x ──\n│ Spring is here\n│ https://shop.acme.com/spring?utm_source=sandbox&{tags}-brand-x\n"
            "  ✓ X:") in out


async def test_the_limit_check_counts_the_tagged_link(team: Team) -> None:
    await team.setup_workspace()
    out = await team.say("alice", "/draft Spring is here link=https://shop.acme.com/spring campaign=spring")
    sent = "Spring is here\nhttps://shop.acme.com/spring?utm_source=sandbox&utm_medium=social&utm_campaign=spring" \
           "&utm_content=post-1-brand-bsky"
    assert f"brand-bsky: ✓ Bluesky: {graphemes(sent)}/300 graphemes" in out  # Bluesky counts the whole link
    assert f"brand-x: ✓ X: {len('Spring is here') + 1 + 23}/280 weighted characters" in out  # X counts any URL as 23


async def test_a_text_that_fits_only_without_the_tags_is_refused_for_bluesky(team: Team) -> None:
    await team.setup_workspace()
    body = "a" * 240
    out = await team.say("alice", f"/draft {body} link=https://shop.acme.com/spring campaign=spring")
    sent = f"{body}\nhttps://shop.acme.com/spring?utm_source=sandbox&utm_medium=social&utm_campaign=spring" \
           "&utm_content=post-1-brand-bsky"
    assert graphemes(f"{body}\nhttps://shop.acme.com/spring") <= 300 < graphemes(sent)
    assert f"brand-bsky: ✗ Bluesky: {graphemes(sent)}/300 graphemes — {graphemes(sent) - 300} graphemes over the limit" \
           in out
    await refused(team, "alice", "/submit 1", "Bluesky")
    await team.say("alice", "/utm off")  # without tags it fits
    out = await team.say("alice", "/preview 1")
    assert f"✓ Bluesky: {graphemes(body) + 1 + graphemes('https://shop.acme.com/spring')}/300 graphemes" in out


async def test_a_link_card_carries_the_tagged_link_too(team: Team, clock: FakeClock) -> None:
    """Bluesky (like Facebook, LinkedIn, Threads, Pinterest) shows the post's link as a card built from
    Outgoing.link, not from the text: it must be tagged like the text."""
    async with FakeBluesky(clock.now) as bluesky:
        await team.say("alice", "/setup Acme")
        await team.say("alice", "/role bob approver")
        out = await team.say("alice", f"/connect bluesky name=acme-bsky base_url={bluesky.url} "
                                      "handle=brand.bsky.social app_password=abcd-efgh-ijkl-mnop")
        assert out.startswith("Connected acme-bsky ("), out
        post_id = await publish(team, "Our spring drop link=https://shop.acme.com/spring campaign=spring")
        (record,) = bluesky.records.values()
        tagged = (f"https://shop.acme.com/spring?utm_source=bluesky&utm_medium=social&utm_campaign=spring"
                  f"&utm_content=post-{post_id}-acme-bsky")
        assert record["embed"]["external"]["uri"] == tagged
        assert record["text"].endswith(tagged)
        await team.say("alice", "/utm off")
        second = await publish(team, "Summer drop link=https://shop.acme.com/summer")
        assert second == post_id + 1
        assert [r["embed"]["external"]["uri"] for r in bluesky.records.values()][-1] == "https://shop.acme.com/summer"
