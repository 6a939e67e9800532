"""Posts aimed at audiences, through the front door: /targets and /draft to= take audience:<name>, /variant writes
an audience's text, and each (post, audience, account) is one delivery that sends the audience's version — its
variant, its landing page, utm_term=<audience> and short links of its own — exactly once.

The audiences are written straight to the database (Team.add_audience); the sandbox network publishes for real
and `team.sandbox_posts()` holds what each account received."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest
from sqlmodel import select

from storage.models import Account, Audience, ShortLink
from tests.conftest import FakeClock, Team, refused, running_team
from tests.fakes.mastodon_api import FakeMastodon
from tests.fakes.x_api import FakeX
from tests.test_utm import Fakes, connect
from tests.web_kit import PUBLIC as WEB_PUBLIC
from tests.web_kit import Site, address, site  # noqa: F401 - the fixture, taken by name

PUBLIC = "https://go.acme.com"
SHORT_RE = re.compile(re.escape(PUBLIC) + r"/r/[A-Za-z0-9_-]{8}")
SPANISH = "Las rebajas de primavera empiezan hoy en todas nuestras tiendas"
ENGLISH = "Our spring sale starts today in every one of our shops"


async def regions(team: Team) -> None:
    """alice's workspace (bob approves) with four sandbox accounts; south (es) and north (en) audiences, acme-eu
    reaching both."""
    await team.setup_workspace(accounts=("acme-es like=x", "acme-uk like=x", "acme-eu like=mastodon",
                                         "acme-plain like=x"))
    team.add_audience("south", ("acme-es", "acme-eu"), "Europe/Madrid", "es", link="https://shop.example/es",
                      country="ES")
    team.add_audience("north", ("acme-uk", "acme-eu"), "Europe/London", "en", link="https://shop.example/uk")


def post_number(out: str) -> int:
    return int(out.split("#", 1)[1].split(" ", 1)[0].rstrip(".:"))


def by_audience(team: Team, post_id: int) -> dict[tuple[str, str | None], int]:
    """The post's deliveries as (account, audience) → how many."""
    with team.herald.db.session() as session:
        names = {a.id: a.name for a in session.exec(select(Account)).all()}
        audiences = {a.id: a.name for a in session.exec(select(Audience)).all()}
    found: dict[tuple[str, str | None], int] = {}
    for d in team.deliveries(post_id):
        key = (names[d.account_id], audiences[d.audience_id] if d.audience_id is not None else None)
        found[key] = found.get(key, 0) + 1
    return found


def sent_texts(team: Team) -> dict[str, list[str]]:
    """What each sandbox account published, in order."""
    with team.herald.db.session() as session:
        names = {a.id: a.name for a in session.exec(select(Account)).all()}
    texts: dict[str, list[str]] = {}
    for post in team.sandbox_posts():
        texts.setdefault(names[post.account_id], []).append(post.text)
    return texts


async def publish(team: Team, post_id: int) -> str:
    await team.say("alice", f"/submit {post_id}")
    await team.say("bob", f"/approve {post_id}")
    return await team.say("alice", f"/publish {post_id}")


async def test_targets_make_one_delivery_per_audience_and_account(team: Team) -> None:
    await regions(team)
    post_id = post_number(await team.say("alice", "/draft Spring sale starts today! to=acme-plain"))
    out = await team.say("alice", f"/targets {post_id} audience:south audience:north acme-plain")
    assert (f"#{post_id}: targets set to acme-es · south, acme-eu · south, acme-eu · north, acme-plain, "
            "acme-uk · north.") in out
    assert by_audience(team, post_id) == {("acme-es", "south"): 1, ("acme-eu", "south"): 1,
                                          ("acme-eu", "north"): 1, ("acme-uk", "north"): 1,
                                          ("acme-plain", None): 1}
    assert "acme-eu · north" in out and "acme-eu · south" in out and "acme-es · south" in out
    # the same targets again keep the deliveries (and their keys); dropping an audience drops only its own
    keys = {d.id: d.idempotency_key for d in team.deliveries(post_id)}
    await team.say("alice", f"/targets {post_id} audience:south,north acme-plain")
    assert {d.id: d.idempotency_key for d in team.deliveries(post_id)} == keys
    await team.say("alice", f"/targets {post_id} audience:north")
    assert by_audience(team, post_id) == {("acme-eu", "north"): 1, ("acme-uk", "north"): 1}


async def test_draft_to_audiences_mixed_with_accounts(team: Team) -> None:
    await regions(team)
    out = await team.say("alice", "/draft Spring sale starts today! to=acme-plain,audience:south,north")
    post_id = post_number(out)
    assert f"Draft #{post_id} saved." in out
    assert by_audience(team, post_id) == {("acme-es", "south"): 1, ("acme-eu", "south"): 1,
                                          ("acme-eu", "north"): 1, ("acme-uk", "north"): 1,
                                          ("acme-plain", None): 1}
    assert "  acme-eu · north: " in out and "  acme-plain: " in out


async def test_bad_audiences_are_refused_and_change_nothing(team: Team) -> None:
    await regions(team)
    team.add_audience("empty", (), "Europe/Paris", "fr")
    post_id = post_number(await team.say("alice", "/draft Spring sale starts today! to=acme-plain"))
    await refused(team, "alice", f"/targets {post_id} audience:west acme-plain", "There's no audience 'west'",
                  "Audiences here: empty, north, south", f"/targets {post_id} audience:south acme-x")
    await refused(team, "alice", f"/targets {post_id} audience:empty", "No account reaches audience empty",
                  f"/targets {post_id} audience:south acme-x")
    await refused(team, "alice", f"/targets {post_id} audience:", "audience: needs the audience's name")
    await refused(team, "alice", "/draft Hello there to=audience:west", "There's no audience 'west'",
                  "to=audience:south,north")
    await refused(team, "alice", f"/variant {post_id} audience:west Hola", "There's no audience 'west'",
                  f"/variant {post_id} audience:south <text>")
    await refused(team, "alice", f"/variant {post_id} audience:south Hola a todos",
                  "doesn't go to audience south", f"/targets {post_id} audience:south")
    # a removed audience is no longer targeted
    with team.herald.db.session() as session:
        south = session.exec(select(Audience).where(Audience.name == "south")).one()
        south.removed_at = team.clock.now()
        session.add(south)
        session.commit()
    await refused(team, "alice", f"/targets {post_id} audience:south", "There's no audience 'south'",
                  "Audiences here: empty, north.")


async def test_each_delivery_sends_its_audience_version_once(team: Team) -> None:
    await regions(team)
    out = await team.say("alice", f"/draft {ENGLISH} link=https://shop.example/sale campaign=spring "
                                  "to=acme-plain,audience:south,north")
    post_id = post_number(out)
    out = await team.say("alice", f"/variant {post_id} audience:south {SPANISH}")
    assert f"#{post_id}: variant for audience:south set." in out
    out = await publish(team, post_id)
    assert f"#{post_id} is published on all 5 account(s)" in out
    assert "✓ acme-eu · north (sandbox)" in out and "✓ acme-eu · south (sandbox)" in out
    assert "✓ acme-plain (sandbox)" in out
    texts = sent_texts(team)
    assert len(team.sandbox_posts()) == 5  # once per (post, audience, account): acme-eu twice, once per audience
    assert sorted(texts) == ["acme-es", "acme-eu", "acme-plain", "acme-uk"] and len(texts["acme-eu"]) == 2
    tags = "utm_source=sandbox&utm_medium=social&utm_campaign=spring&utm_content=post-{id}-{account}"
    south_es = f"{SPANISH}\nhttps://shop.example/es?{tags.format(id=post_id, account='acme-es')}&utm_term=south"
    assert texts["acme-es"] == [south_es]
    north_uk = f"{ENGLISH}\nhttps://shop.example/uk?{tags.format(id=post_id, account='acme-uk')}&utm_term=north"
    assert texts["acme-uk"] == [north_uk]
    eu = tags.format(id=post_id, account="acme-eu")
    assert sorted(texts["acme-eu"]) == sorted([
        f"{SPANISH}\nhttps://shop.example/es?{eu}&utm_term=south",
        f"{ENGLISH}\nhttps://shop.example/uk?{eu}&utm_term=north"])
    # a plain account target: the post's own link and no utm_term
    assert texts["acme-plain"] == [
        f"{ENGLISH}\nhttps://shop.example/sale?{tags.format(id=post_id, account='acme-plain')}"]
    # the sweep sends nothing again
    await team.tick(minutes=5)
    assert len(team.sandbox_posts()) == 5
    assert all(d.state == "sent" and d.attempts == 1 for d in team.deliveries(post_id))


async def test_the_audience_link_is_added_when_the_post_has_none_and_replaces_it_in_the_text(team: Team) -> None:
    await regions(team)
    await team.say("alice", "/utm off")
    post_id = post_number(await team.say("alice", "/draft Spring sale starts today! to=audience:south,acme-plain"))
    post2 = post_number(await team.say(
        "alice", "/draft See https://shop.example/sale now! link=https://shop.example/sale to=audience:north"))
    out = await team.say("alice", f"/preview {post_id}")
    assert "── acme-es · south ──\n│ Spring sale starts today!\n│ https://shop.example/es" in out
    assert "── acme-plain ──\n│ Spring sale starts today!\n" in out
    out = await team.say("alice", f"/preview {post2}")
    assert "── acme-uk · north ──\n│ See https://shop.example/uk now!\n" in out
    await publish(team, post2)
    assert sorted(p.text for p in team.sandbox_posts()) == ["See https://shop.example/uk now!"] * 2


async def test_the_team_picks_the_parameter_that_names_the_audience(team: Team) -> None:
    await regions(team)
    post_id = post_number(await team.say("alice", "/draft Spring sale starts today! to=audience:south"))
    assert "UTM" in await team.say("bob", "/utm") and "utm_term=<audience>" in await team.say("bob", "/utm")
    await refused(team, "bob", "/utm audience=segment", "Only admins can change UTM tagging")
    await refused(team, "alice", "/utm audience=utm_content", "utm_content already says something else")
    await refused(team, "alice", "/utm audience=Segment Name", "isn't a parameter name")
    out = await team.say("alice", "/utm audience=segment")
    assert out == "From now on a post sent to an audience also gets segment=<audience>, in posts not yet published."
    preview = await team.say("alice", f"/preview {post_id}")
    assert f"utm_content=post-{post_id}-acme-es&segment=south" in preview and "utm_term" not in preview, preview
    await team.say("alice", "/utm audience=off")
    preview = await team.say("alice", f"/preview {post_id}")
    assert f"utm_content=post-{post_id}-acme-es\n" in preview and "segment=" not in preview, preview
    assert "the audience isn't named in links" in await team.say("bob", "/utm")
    await publish(team, post_id)
    assert [text.rsplit("?", 1)[1] for text in sent_texts(team)["acme-es"]] == [
        f"utm_source=sandbox&utm_medium=social&utm_campaign=herald&utm_content=post-{post_id}-acme-es"]


async def test_precedence_account_then_audience_then_network_then_main_text(team: Team) -> None:
    await regions(team)
    await team.say("alice", "/utm off")
    post_id = post_number(await team.say("alice", "/draft Main text for all to=audience:south,north,acme-plain"))
    await team.say("alice", f"/variant {post_id} x Network text for X")
    await team.say("alice", f"/variant {post_id} audience:south Texto para el sur")
    out = await team.say("alice", f"/variant {post_id} acme-eu Account text for acme-eu")
    assert "Audiences (what each group reads" in out
    south = out.split("── audience south (es, Europe/Madrid, ES) ──", 1)[1].split("── audience", 1)[0]
    assert "  acme-es (variant: audience south):\n  │ Texto para el sur" in south
    assert "  acme-eu (variant: acme-eu):\n  │ Account text for acme-eu" in south
    north = out.split("── audience north (en, Europe/London) ──", 1)[1]
    assert "  acme-uk (variant: x):\n  │ Network text for X" in north
    await publish(team, post_id)
    texts = sent_texts(team)
    assert texts["acme-es"] == ["Texto para el sur\nhttps://shop.example/es"]
    assert texts["acme-eu"] == ["Account text for acme-eu\nhttps://shop.example/es",
                                "Account text for acme-eu\nhttps://shop.example/uk"]
    assert texts["acme-uk"] == ["Network text for X\nhttps://shop.example/uk"]
    assert texts["acme-plain"] == ["Network text for X"]
    variants = team.post(post_id).variants
    assert variants["audience:south"] == "Texto para el sur"


async def test_an_edit_marks_audience_variants_stale(team: Team) -> None:
    await regions(team)
    post_id = post_number(await team.say("alice", "/draft Spring sale starts today! to=audience:south"))
    await team.say("alice", f"/variant {post_id} audience:south ¡Rebajas de primavera desde hoy!")
    # every delivery gets the audience's variant: a new main text would reach no one
    await refused(team, "alice", f"/edit {post_id} Spring sale starts tomorrow!",
                  "acme-es · south (audience:south), acme-eu · south (audience:south)",
                  f"/variant {post_id} audience:south <text>")
    await team.say("alice", f"/targets {post_id} audience:south acme-plain")
    out = await team.say("alice", f"/edit {post_id} Spring sale starts tomorrow!")
    assert team.post(post_id).stale_variants == ["audience:south"]
    assert (f"  acme-es (variant: audience south) ⚠ stale: written before the last edit of the text — "
            f"/variant {post_id} audience:south <text> renews it") in out
    await team.say("alice", f"/variant {post_id} audience:south ¡Rebajas de primavera desde mañana!")
    assert team.post(post_id).stale_variants == []
    out = await team.say("alice", f"/variant {post_id} audience:south off")
    assert f"#{post_id}: variant for audience:south removed." in out
    assert "  acme-es (main text):" in out
    await refused(team, "alice", f"/variant {post_id} audience:south " + "a" * 20_001, "Herald keeps texts up to")


async def test_the_approval_card_warns_when_an_audience_reads_another_language(team: Team) -> None:
    await regions(team)
    post_id = post_number(await team.say("alice", f"/draft {ENGLISH} to=audience:south,north"))
    out = await team.say("alice", f"/submit {post_id}")
    assert "⚠ south expects es, this reads as en" in out
    assert "expects en" not in out  # north reads English
    # the geo line: no connector restricts an organic post by country, and the card says so
    assert "🌍 ES: reaches all followers of acme-es (Sandbox can't limit an organic post to a country)" in out
    assert out.count("🌍") == 2  # south's two accounts; north has no country
    out = await team.say("alice", f"/variant {post_id} audience:south {SPANISH}")
    assert "expects es" not in out
    assert "  acme-es (variant: audience south):\n  │ " + SPANISH in out
    # too short to judge: no warning
    short = post_number(await team.say("alice", "/draft Big sale today to=audience:south"))
    assert "expects es" not in await team.say("alice", f"/preview {short}") + await team.say("alice", f"/submit {short}")


async def test_retry_by_account_or_by_audience(team: Team) -> None:
    await team.setup_workspace(accounts=("acme-eu fail=reject", "acme-uk like=x"))
    team.add_audience("south", ("acme-eu",), "Europe/Madrid", "es")
    team.add_audience("north", ("acme-eu", "acme-uk"), "Europe/London", "en")
    post_id = post_number(await team.say("alice", "/draft Spring sale starts today! to=audience:south,north"))
    out = await publish(team, post_id)
    assert "✗ acme-eu · south (sandbox): the sandbox refuses every post (fail=reject)" in out
    assert "✗ acme-eu · north (sandbox)" in out and "✓ acme-uk · north (sandbox)" in out
    assert f"fix the text with /variant {post_id} audience:south <text>, then /retry {post_id}" in out
    await refused(team, "alice", f"/retry {post_id} audience:west", "There's no audience 'west'")
    await refused(team, "alice", f"/retry {post_id} acme-uk", f"#{post_id} on acme-uk · north is sent")
    attempts = {d.audience_id: d.attempts for d in team.deliveries(post_id) if d.state == "failed"}
    south_id, north_id = sorted(attempts)
    out = await team.say("alice", f"/retry {post_id} audience:south")  # still refused by the network
    assert "✗ acme-eu · south (sandbox)" in out
    assert {d.audience_id: d.attempts for d in team.deliveries(post_id) if d.state == "failed"} == {
        south_id: 2, north_id: 1}
    # south is removed meanwhile: its delivery still can be retried by its name
    with team.herald.db.session() as session:
        south = session.get(Audience, south_id)
        assert south is not None
        south.removed_at = team.clock.now()
        session.add(south)
        session.commit()
    await team.say("alice", "/connect sandbox name=acme-eu")
    out = await team.say("alice", f"/retry {post_id} audience:south")
    assert "✓ acme-eu · south (sandbox)" in out and "✗ acme-eu · north (sandbox)" in out
    assert len(team.sandbox_posts()) == 2
    out = await team.say("alice", f"/retry {post_id} acme-eu")  # every delivery of acme-eu that failed: north's
    assert f"#{post_id} is published on all 3 account(s)" in out
    assert len(team.sandbox_posts()) == 3
    assert by_audience(team, post_id) == {("acme-eu", "south"): 1, ("acme-eu", "north"): 1, ("acme-uk", "north"): 1}
    assert sorted((d.audience_id, d.attempts) for d in team.deliveries(post_id)) == sorted(
        [(south_id, 3), (north_id, 2), (north_id, 1)])  # acme-eu south, acme-eu north, acme-uk north


@pytest.fixture
async def short_team(db_url: str, clock: FakeClock) -> AsyncIterator[Team]:
    async with running_team(db_url, clock, HERALD_PUBLIC_URL=PUBLIC) as team:
        yield team


async def test_short_links_are_made_per_audience(short_team: Team) -> None:
    team = short_team
    await regions(team)
    out = await team.say(
        "alice", "/draft Spring sale starts today! link=https://shop.example/sale to=audience:south,north,acme-plain")
    post_id = post_number(out)
    assert f"Links: shortened to {PUBLIC}/r/<code>, one per account and audience, clicks counted" in out
    out = await team.say("alice", f"/preview {post_id}")
    assert "── acme-eu · south ──" in out
    await publish(team, post_id)
    texts = sent_texts(team)
    with team.herald.db.session() as session:
        links = {link.code: link for link in session.exec(select(ShortLink).where(ShortLink.post_id == post_id))}
        audiences = {a.id: a.name for a in session.exec(select(Audience)).all()}
        accounts = {a.id: a.name for a in session.exec(select(Account)).all()}
    assert len(links) == 5  # one per delivery: acme-eu has one for each audience
    for account, sent in texts.items():
        for text in sent:
            (short,) = SHORT_RE.findall(text)
            link = links[short.rsplit("/", 1)[1]]
            assert accounts[link.account_id] == account
            audience = audiences.get(link.audience_id) if link.audience_id is not None else None
            if audience is None:
                assert account == "acme-plain" and link.target.startswith("https://shop.example/sale?")
                assert "utm_term" not in link.target
            else:
                assert link.target.startswith(f"https://shop.example/{'es' if audience == 'south' else 'uk'}?")
                assert link.target.endswith(f"&utm_term={audience}")


@pytest.fixture
async def fakes() -> AsyncIterator[Fakes]:
    """The X and Mastodon fakes the real connectors publish to (X refuses a repeated text, Mastodon doesn't)."""
    async with AsyncExitStack() as stack:
        x = await stack.enter_async_context(FakeX())
        mastodon = await stack.enter_async_context(FakeMastodon())
        yield Fakes(x, mastodon)


async def test_the_card_warns_when_an_account_would_repeat_a_text_on_a_network_that_refuses_it(
        team: Team, fakes: Fakes) -> None:
    await connect(team, fakes)
    team.add_audience("south", ("acme-x", "acme-masto"), "Europe/Madrid", "es")
    team.add_audience("north", ("acme-x", "acme-masto"), "Europe/London", "es")
    # their texts differ only in their links (utm_term): the same text to X
    post_id = post_number(await team.say(
        "alice", "/draft Rebajas de primavera desde hoy mismo link=https://shop.example/sale to=audience:south,north"))
    out = await team.say("alice", f"/preview {post_id}")
    assert "── acme-x · south ──" in out and "── acme-x · north ──" in out
    out = await team.say("alice", f"/submit {post_id}")
    assert ("  ⚠ acme-x also gets this very text as acme-x · north (links aside): X refuses a text the account just posted — "
            "give one of them a variant") in out
    assert "acme-masto also gets" not in out  # Mastodon takes a repeated text
    out = await team.say("alice", f"/variant {post_id} audience:north Rebajas de primavera en el norte desde hoy")
    assert "also gets this very text" not in out


async def test_the_review_page_shows_each_audience_delivery_with_its_text(site: Site) -> None:  # noqa: F811
    team = site.team
    await regions(team)
    post_id = post_number(await team.say("alice", "/draft Spring sale starts today! to=audience:south,acme-plain"))
    await team.say("alice", f"/variant {post_id} audience:south ¡Rebajas de primavera desde hoy!")
    await team.say("alice", f"/schedule {post_id} 2026-11-25 10:00")
    await team.say("alice", f"/submit {post_id}")
    link = site.local(address(await team.say("bob", f"/review {post_id} Dana"), WEB_PUBLIC + "/review/"))
    page = await site.http.get(link.removeprefix(site.base))
    assert page.status_code == 200
    assert "acme-es · south" in page.text and "acme-eu · south" in page.text and "acme-plain" in page.text
    assert page.text.count("¡Rebajas de primavera desde hoy!") == 2
    assert "Spring sale starts today!" in page.text  # acme-plain reads the main text
