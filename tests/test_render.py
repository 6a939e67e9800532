"""One rendering per post and account (handlers/posts/render.py): the text exactly as sent, the link card's link
and the network's check — what cards, /preview, the submission checks and publishing all show and send.

The unit tests render posts that were never stored (render reads nothing from the database); the others go
through the console chat and compare what a team sees with what the network received.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
from sqlmodel import select

from handlers.core.chat import Command, Reply
from handlers.core.counting import LimitCheck
from handlers.core.lookups import account_view
from handlers.core.ports import AccountView
from handlers.posts.render import Rendered, check_lines, render, render_targets
from storage.models import Account, Post, Workspace
from tests.conftest import Team
from tests.networks import RecordingNetwork

LINK = "https://shop.acme.com/spring"
TAGS = "utm_medium=social&utm_campaign=spring&utm_content=post-7"


def account(name: str, network: str = "sandbox", like: str | None = None, id: int = 1) -> Account:
    return Account(id=id, workspace_id=1, network=network, name=name, settings={"like": like} if like else {})


def post(text: str = "Spring is here", link: str | None = LINK, **variants: str) -> Post:
    return Post(id=7, workspace_id=1, text=text, link=link, campaign="spring", variants=variants, media=[])


def workspace(utm: bool = True) -> Workspace:
    return Workspace(id=1, name="Acme", utm=utm)


# --- render: the text, the link and the check for one account -------------------------------------------------


VARIANTS = {"brand-x": "for brand-x", "x": "for X rules", "bluesky": "for Bluesky rules", "sandbox": "for sandboxes"}


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (account("brand-x", like="x"), "for brand-x"),  # the account's own variant first
        (account("brand-x2", like="x"), "for X rules"),  # then its network's rules (a sandbox's like=)
        (account("brand-bsky", like="bluesky"), "for Bluesky rules"),
        (account("plain"), "for sandboxes"),  # then its network
        (account("toot", network="mastodon"), "Spring is here"),  # then the main text
    ],
)
def test_render_picks_the_variant_for_the_account_then_its_rules_then_its_network_then_the_text(
        team: Team, target: Account, expected: str) -> None:
    rendered = render(team.herald.ctx, post(link=None, **VARIANTS), target, workspace())
    assert rendered.text == expected
    assert rendered.link is None


def test_render_adds_the_link_and_tags_it_for_the_accounts_network(team: Team) -> None:
    for target in (account("brand-x", like="x"), account("toot", network="mastodon")):
        tagged = f"{LINK}?utm_source={target.network}&{TAGS}-{target.name}"
        rendered = render(team.herald.ctx, post(), target, workspace())
        assert (rendered.text, rendered.link) == (f"Spring is here\n{tagged}", tagged)


def test_render_leaves_links_as_written_when_the_workspace_doesnt_tag(team: Team) -> None:
    rendered = render(team.herald.ctx, post("Spring https://shop.acme.com/new"), account("plain"), workspace(utm=False))
    assert (rendered.text, rendered.link) == (f"Spring https://shop.acme.com/new\n{LINK}", LINK)


@pytest.mark.parametrize("text", [f"Spring: {LINK} now", f"Spring: {LINK}?utm_source=sandbox&{TAGS}-plain now"])
def test_render_doesnt_add_the_link_when_the_text_holds_it(team: Team, text: str) -> None:
    rendered = render(team.herald.ctx, post(text), account("plain"), workspace())
    assert rendered.text == f"Spring: {LINK}?utm_source=sandbox&{TAGS}-plain now"
    assert rendered.link == f"{LINK}?utm_source=sandbox&{TAGS}-plain"


def test_render_adds_just_the_link_to_an_empty_text(team: Team) -> None:
    rendered = render(team.herald.ctx, post(""), account("plain"), workspace(utm=False))
    assert rendered.text == LINK


def test_render_checks_the_text_as_sent_with_the_accounts_network(team: Team) -> None:
    ctx = team.herald.ctx
    target = account("brand-bsky", like="bluesky")
    the_post = post("a" * 240)
    rendered = render(ctx, the_post, target, workspace())
    sandbox = ctx.networks.get("sandbox")
    assert sandbox is not None
    assert rendered.check == sandbox.check(account_view(ctx, target), rendered.text, 0)
    assert rendered.check is not None and not rendered.check.ok  # it fits only without the tags
    assert render(ctx, the_post, target, workspace(utm=False)).check.ok  # type: ignore[union-attr]
    assert render(ctx, the_post, target, workspace(), checked=False).check is None
    assert render(ctx, the_post, account("gone", network="friendster"), workspace()).check is None


# --- one press, one check per target; the card and the publish request are the rendering -------------------


class CountingNetwork(RecordingNetwork):
    """A RecordingNetwork that counts its checks per account."""

    def __init__(self) -> None:
        super().__init__()
        self.checks: Counter[str] = Counter()

    def check(self, account: AccountView, text: str, media_count: int) -> LimitCheck:
        self.checks[account.name] += 1
        return super().check(account, text, media_count)


async def counting_team(team: Team, *names: str) -> CountingNetwork:
    network = CountingNetwork()
    team.herald.networks.add(network)
    await team.setup_workspace(accounts=())
    for name in names:
        await team.say("alice", f"/connect recording name={name}")
    return network


def rendered_now(team: Team, post_id: int) -> list[Rendered]:
    with team.herald.db.session() as session:
        stored = session.get(Post, post_id)
        assert stored is not None
        ws = session.get(Workspace, stored.workspace_id)
        assert ws is not None
        return render_targets(team.herald.ctx, session, stored, ws)


def replies_of(team: Team, monkeypatch: pytest.MonkeyPatch) -> list[Reply]:
    """Every Reply the console chat gets from here on (it prints the text; a button's card edit is in `update`)."""
    console = team.herald.console
    handle = console.handle
    replies: list[Reply] = []

    async def recording(command: Command) -> Reply:
        reply = await handle(command)
        replies.append(reply)
        return reply

    monkeypatch.setattr(console, "handle", recording)
    return replies


async def test_one_approve_press_checks_each_target_once_and_the_card_and_the_send_are_the_rendering(
        team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    network = await counting_team(team, "rec-a", "rec-b")
    await team.say("alice", f"/draft Spring is here link={LINK} campaign=spring")
    await team.say("alice", "/variant 1 rec-b Spring for B")
    card = await team.say("alice", "/submit 1")
    assert "[1] Approve" in card
    replies = replies_of(team, monkeypatch)
    network.checks.clear()
    out = await team.say("bob", "1")  # bob presses Approve
    assert "✅ bob approved #1 (1 of 1)." in out
    assert network.checks == Counter({"rec-a": 1, "rec-b": 1})
    expected = rendered_now(team, 1)
    edited = replies[-1].update  # the approval card the button was on, now showing the decision
    assert edited is not None
    assert "\nTargets:\n" + "\n".join(check_lines(team.post(1), expected)) + "\n" in edited.text

    network.checks.clear()
    await team.say("alice", "/publish 1")
    assert network.checks == Counter({"rec-a": 1, "rec-b": 1})  # publish now checks once too
    sent = {(o.text, o.link) for o in network.outgoing}
    assert sent == {(r.text, r.link) for r in expected}
    tags = "utm_medium=social&utm_campaign=spring&utm_content=post-1"
    assert (f"Spring for B\n{LINK}?utm_source=recording&{tags}-rec-b", f"{LINK}?utm_source=recording&{tags}-rec-b") \
        in sent


async def test_a_submit_press_checks_each_target_once(team: Team) -> None:
    network = await counting_team(team, "rec-a", "rec-b")
    await team.say("alice", "/draft Spring is here")
    network.checks.clear()
    out = await team.say("alice", "1")  # Submit for approval, on the draft card
    assert "asks for approval of #1" in out
    assert network.checks == Counter({"rec-a": 1, "rec-b": 1})


# --- publishing sends exactly what /preview shows -----------------------------------------------------------


def preview_texts(preview: str) -> dict[str, str]:
    """Each account's text in a /preview reply."""
    texts = {}
    for name, body in re.findall(r"── (\S+) ──\n((?:│ .*\n?)+)", preview):
        texts[name] = "\n".join(line[2:] for line in body.rstrip("\n").split("\n"))
    return texts


@pytest.mark.parametrize("utm", ["on", "off"])
async def test_each_account_receives_exactly_the_text_preview_shows(team: Team, utm: str) -> None:
    await team.setup_workspace(accounts=("brand-x like=x", "brand-bsky like=bluesky", "plain"))
    await team.say("alice", f"/utm {utm}")
    await team.say("alice", f"/draft Spring is here: https://shop.acme.com/new\nSee you! link={LINK} campaign=spring")
    await team.say("alice", "/variant 1 bluesky Spring, short")
    await team.say("alice", f"/variant 1 brand-x Spring for X {LINK}")
    preview = preview_texts(await team.say("bob", "/preview 1"))
    assert set(preview) == {"brand-x", "brand-bsky", "plain"}
    await team.say("alice", "/submit 1")
    await team.say("bob", "/approve 1")
    await team.say("alice", "/publish 1")
    with team.herald.db.session() as session:
        names = {a.id: a.name for a in session.exec(select(Account)).all()}
    stored = {names[row.account_id]: row.text for row in team.sandbox_posts()}
    assert stored == preview
    assert stored["brand-bsky"].startswith("Spring, short\nhttps://shop.acme.com/spring")
    assert stored["brand-x"].startswith("Spring for X https://shop.acme.com/spring")
    assert ("utm_source=sandbox" in stored["plain"]) == (utm == "on")
