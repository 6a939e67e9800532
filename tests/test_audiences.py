"""Audiences through the console chat: /audience add, list, show, edit and remove, and every bad input refused
with nothing changed."""

from __future__ import annotations

from sqlmodel import select

from handlers import dispatch
from handlers.core.chat import Actor, ChatRef, Command, Reply
from storage.models import Account, Audience, AudienceAccount, AuditEvent, Delivery
from tests.conftest import Team, refused

ADD_SOUTH = "/audience add south accounts=acme-es,acme-x tz=Europe/Madrid lang=es"


async def acme(team: Team) -> None:
    """alice: admin; bob: approver; carol says nothing (a viewer); three sandbox accounts."""
    await team.setup_workspace(accounts=("acme-es like=x", "acme-x like=x", "acme-fr like=bluesky"))


def audiences(team: Team) -> list[Audience]:
    with team.herald.db.session() as session:
        return list(session.exec(select(Audience).order_by(Audience.id)).all())  # type: ignore[arg-type]


def reached_by(team: Team, audience_id: int) -> list[str]:
    with team.herald.db.session() as session:
        return sorted(session.exec(select(Account.name).where(AudienceAccount.audience_id == audience_id)
                                   .where(AudienceAccount.account_id == Account.id)).all())


def audit_details(team: Team) -> list[str]:
    with team.herald.db.session() as session:
        return list(session.exec(select(AuditEvent.detail).where(AuditEvent.action == "audience")
                                 .order_by(AuditEvent.id)).all())  # type: ignore[arg-type]


def aim(team: Team, post_id: int, account: str, audience_id: int) -> None:
    """Make the post's delivery to `account` one for the audience (as /targets with audiences will)."""
    with team.herald.db.session() as session:
        delivery = session.exec(select(Delivery).where(Delivery.post_id == post_id)
                                .where(Delivery.account_id == Account.id).where(Account.name == account)).one()
        delivery.audience_id = audience_id
        session.add(delivery)


async def elsewhere(team: Team, user: str, line: str) -> Reply:
    """A line typed in a Telegram group of another workspace."""
    name, _, text = line.lstrip("/").partition(" ")
    command = Command(name, Actor("telegram", user, user), ChatRef("telegram", "-500", title="Rival"), text=text)
    return await dispatch.handle(team.herald.ctx, command)


async def test_an_empty_workspace_says_how_to_add_an_audience(team: Team) -> None:
    await acme(team)
    out = await team.say("carol", "/audience")
    assert "No audiences yet" in out and "/audience add south accounts=acme-es tz=Europe/Madrid lang=es" in out


async def test_an_admin_adds_an_audience_and_gets_its_card(team: Team) -> None:
    await acme(team)
    out = await team.say("alice", '/audience add South accounts=acme-es, acme-x tz=europe/madrid lang=ES '
                                  'link=https://shop.example/es country=es notes="hot climate, 18-34"')
    assert out.startswith("Added audience south."), out
    assert "Accounts: acme-es (Sandbox), acme-x (Sandbox)" in out
    assert "Zone: Europe/Madrid (UTC+1; 10:00 there now)" in out  # 09:00 UTC on 23 Nov
    assert "Language: es" in out and "Link: https://shop.example/es" in out and "Country: ES" in out
    assert "Notes: hot climate, 18-34" in out and "audience:south" in out
    [south] = audiences(team)
    assert (south.name, south.timezone, south.language, south.link, south.country, south.notes) == (
        "south", "Europe/Madrid", "es", "https://shop.example/es", "ES", "hot climate, 18-34")
    assert south.created_at == team.clock.now() and south.removed_at is None
    assert reached_by(team, south.id or 0) == ["acme-es", "acme-x"]
    assert audit_details(team) == ["south added: accounts acme-es, acme-x; tz Europe/Madrid; lang es; "
                                   "link https://shop.example/es; country ES; notes hot climate, 18-34"]


async def test_any_iso_639_1_language_is_taken_and_named_saying_when_it_cant_be_checked(team: Team) -> None:
    await acme(team)
    out = await team.say("alice", "/audience add north accounts=acme-fr tz=Europe/Oslo lang=nb country=NO")
    assert "Language: nb (Norwegian Bokmål)" in out, out  # py3langid reports Bokmål as no: checkable
    out = await team.say("alice", "/audience add andes accounts=acme-fr tz=America/Lima lang=ay country=PE")
    assert "Language: ay (Aymara; posts' language can't be checked in it)" in out, out
    assert [a.language for a in audiences(team)] == ["nb", "ay"]


async def test_notes_without_quotes_and_the_uk_alias_are_read(team: Team) -> None:
    await acme(team)
    out = await team.say("alice", "/audience add uk_students accounts=acme-fr tz=Europe/London lang=en "
                                  "country=uk notes=students, rainy weather")
    assert "Added audience uk_students." in out and "Zone: Europe/London (UTC+0;" in out
    [uk] = audiences(team)
    assert uk.country == "GB" and uk.notes == "students, rainy weather" and uk.link is None


async def test_everyone_lists_the_audiences_with_accounts_zones_and_offsets(team: Team) -> None:
    await acme(team)
    await team.say("alice", ADD_SOUTH + " link=https://shop.example/es country=ES notes='hot climate'")
    await team.say("alice", "/audience add east accounts=acme-fr tz=Asia/Kolkata lang=hi")
    out = await team.say("carol", "/audience")
    assert out.startswith("Audiences:"), out
    lines = out.splitlines()
    assert lines[1] == "  east: acme-fr (Sandbox) · Asia/Kolkata (UTC+5:30) · hi"
    assert lines[2] == ("  south: acme-es (Sandbox), acme-x (Sandbox) · Europe/Madrid (UTC+1) · es · "
                        "https://shop.example/es · ES · hot climate")
    assert out == await team.say("bob", "/audience list")


async def test_show_gives_the_card_and_the_posts_still_to_go_out_to_it(team: Team) -> None:
    await acme(team)
    await team.say("alice", ADD_SOUTH)
    [south] = audiences(team)
    out = await team.say("carol", "/audience south")
    assert out.startswith("Audience south") and "No post still to go out targets it." in out
    first = await team.approved_post("Rebajas de verano")
    second = await team.approved_post("Another post")
    aim(team, first, "acme-es", south.id or 0)
    await team.say("alice", f"/schedule {first} tomorrow 9am")
    out = await team.say("carol", "/audience SOUTH")
    assert "Posts still to go out to it:" in out
    assert f"#{first} scheduled · Tue 24 Nov 2026 09:00 CET (Europe/Madrid) · Rebajas de verano" in out
    assert f"#{second} " not in out
    await team.tick(hours=23)  # due: published, no longer waiting
    assert team.post(first).state == "published"
    assert "No post still to go out targets it." in await team.say("carol", "/audience south")


async def test_edit_changes_each_field_and_is_audited(team: Team) -> None:
    await acme(team)
    await team.say("alice", ADD_SOUTH + " link=https://shop.example/es country=ES notes=hot")
    [south] = audiences(team)
    out = await team.say("alice", "/audience edit south tz=Atlantic/Canary lang=pt link=off country=PT "
                                  "notes=\"surfers, 20-30\" accounts=+acme-fr,-acme-x")
    assert out.startswith("Changed audience south: "), out
    assert "Zone: Atlantic/Canary (UTC+0;" in out and "Accounts: acme-es (Sandbox), acme-fr (Sandbox)" in out
    row = audiences(team)[0]
    assert (row.timezone, row.language, row.link, row.country, row.notes) == (
        "Atlantic/Canary", "pt", None, "PT", "surfers, 20-30")
    assert reached_by(team, south.id or 0) == ["acme-es", "acme-fr"]
    assert audit_details(team)[-1] == (
        "south changed: accounts acme-es, acme-x → acme-es, acme-fr; tz Europe/Madrid → Atlantic/Canary; "
        "lang es → pt; link https://shop.example/es → none; country ES → PT; notes hot → surfers, 20-30")
    await team.say("alice", "/audience edit south accounts=acme-x")  # a plain list replaces them
    assert reached_by(team, south.id or 0) == ["acme-x"]
    out = await team.say("alice", "/audience edit south name=iberia")
    assert "name south → iberia" in out and [a.name for a in audiences(team)] == ["iberia"]
    assert "Audience iberia" in await team.say("carol", "/audience iberia")


async def test_a_zone_change_names_the_posts_already_scheduled_for_it(team: Team) -> None:
    await acme(team)
    await team.say("alice", ADD_SOUTH)
    [south] = audiences(team)
    post = await team.approved_post()
    aim(team, post, "acme-x", south.id or 0)
    out = await team.say("alice", "/audience edit south tz=Atlantic/Canary")
    assert f"keep their times (#{post})" in out


async def test_remove_is_refused_while_a_post_still_targets_it_then_frees_the_name(team: Team) -> None:
    await acme(team)
    await team.say("alice", ADD_SOUTH)
    [south] = audiences(team)
    post = await team.approved_post("Rebajas")
    aim(team, post, "acme-es", south.id or 0)
    out = await refused(team, "alice", "/audience remove south", "still targeted", f"#{post} approved · Rebajas",
                        f"/targets {post}", "audience:south", "/cancel")
    await team.say("alice", f"/cancel {post}")
    out = await team.say("alice", "/audience remove south")
    assert out.startswith("Removed audience south."), out
    [row] = audiences(team)
    assert row.removed_at == team.clock.now() and row.name == f"south~{row.id}"
    assert reached_by(team, row.id or 0) == ["acme-es", "acme-x"]  # kept for its reports
    assert "No audiences yet" in await team.say("carol", "/audience")
    await refused(team, "carol", "/audience south", "There's no audience 'south'")
    assert audit_details(team)[-1] == "south removed"
    again = await team.say("alice", "/audience add south accounts=acme-fr tz=Europe/Madrid lang=es")
    assert again.startswith("Added audience south."), again
    assert [a.name for a in audiences(team)] == [f"south~{row.id}", "south"]


async def test_a_published_post_does_not_hold_its_audience(team: Team) -> None:
    await acme(team)
    await team.say("alice", ADD_SOUTH)
    [south] = audiences(team)
    post = await team.approved_post()
    aim(team, post, "acme-es", south.id or 0)
    await team.say("alice", f"/publish {post}")
    await team.tick(minutes=1)
    assert team.post(post).state == "published"
    assert (await team.say("alice", "/audience remove south")).startswith("Removed audience south.")


async def test_bad_inputs_are_refused_and_change_nothing(team: Team) -> None:
    await acme(team)
    await team.say("alice", ADD_SOUTH)
    example = "Example: /audience add south"
    cases = [
        ("/audience add north accounts=acme-zz tz=Europe/Oslo lang=no", ["no account called acme-zz",
                                                                        "acme-es, acme-fr, acme-x"]),
        ("/audience add north accounts=acme-es tz=Mars/Olympus lang=no", ["I don't know the time zone 'Mars/Olympus'"]),
        ("/audience add north accounts=acme-es tz=EST lang=en", ["'EST' is a zone abbreviation",
                                                                 "America/New_York"]),
        ("/audience add north accounts=acme-es tz=Europe/Oslo lang=xx", ["'xx' isn't a two-letter ISO 639-1",
                                                                         "lang=nb (Norwegian Bokmål)"]),
        ("/audience add north accounts=acme-es tz=Europe/Oslo lang=nob", ["'nob' isn't a two-letter ISO 639-1"]),
        ("/audience add north accounts=acme-es tz=Europe/Oslo lang=pt-BR", ["Did you mean lang=pt?"]),
        ("/audience add north accounts=acme-es tz=Europe/Oslo lang=no link=shop.example", ["link= must", "https://"]),
        ("/audience add north accounts=acme-es tz=Europe/Oslo lang=no link=ftp://shop.example", ["link= must"]),
        ("/audience add north accounts=acme-es tz=Europe/Oslo lang=no link=https://", ["link= must"]),
        ("/audience add north accounts=acme-es tz=Europe/Oslo lang=no country=XX", ["No public holidays known for XX"]),
        ("/audience add north accounts=acme-es tz=Europe/Oslo lang=no country=Norway", ["two-letter ISO 3166-1"]),
        ("/audience add north accounts=acme-es tz=Europe/Oslo lang=no country=NOR", ["use NO"]),
        ("/audience add south accounts=acme-es tz=Europe/Oslo lang=no", ["already an audience called south"]),
        ("/audience add north tz=Europe/Oslo lang=no", ["Missing accounts=", example]),
        ("/audience add north accounts= tz=Europe/Oslo lang=no", ["Missing accounts="]),
        ("/audience add north accounts=acme-es", ["Missing tz=, lang="]),
        ("/audience add north accounts=+acme-es tz=Europe/Oslo lang=no", ["list the accounts plainly"]),
        ("/audience add North! accounts=acme-es tz=Europe/Oslo lang=no", ["can't be an audience name"]),
        ("/audience add edit accounts=acme-es tz=Europe/Oslo lang=no", ["a word of /audience itself"]),
        ("/audience add accounts=acme-es tz=Europe/Oslo lang=no", ["Which audience?"]),
        ("/audience add north accounts=acme-es tz=Europe/Oslo lang=no colour=red", ["no colour="]),
        ("/audience add north accounts=acme-es tz=Europe/Oslo lang=no tz=UTC", ["tz= is given twice"]),
        ("/audience add north accounts=acme-es tz=Europe/Oslo lang=no notes=\"unclosed", ["double quotes"]),
        ("/audience add north accounts=acme-es tz=Europe/Oslo lang=no notes=" + "x" * 301, ["at most 300"]),
        ("/audience edit south", ["What should change?"]),
        ("/audience edit north tz=UTC", ["There's no audience 'north'", "south"]),
        ("/audience edit south accounts=-acme-es,-acme-x", ["at least one account"]),
        ("/audience edit south accounts=-acme-fr", ["acme-fr doesn't reach this audience"]),
        ("/audience edit south accounts=+acme-fr,acme-x", ["not both"]),
        ("/audience edit south tz=CET", ["'CET' is a zone abbreviation"]),
        ("/audience edit south lang=klingon", ["isn't a two-letter ISO 639-1 language code"]),
        ("/audience edit south lang=", ["lang= needs a two-letter ISO 639-1 code"]),
        ("/audience edit south tz=", ["I need a time zone name"]),
        ("/audience edit south tz=Paris", ["Did you mean 'Europe/Paris'?"]),
        ("/audience edit south name=has space", ["isn't key=value"]),
        ("/audience edit south tz=Europe/Madrid", ["already is; nothing changed"]),
        ("/audience remove", ["Usage: /audience remove <name>"]),
        ("/audience remove north", ["There's no audience 'north'"]),
        ("/audience south extra words", ["takes add, edit or remove"]),
        ("/audience north", ["There's no audience 'north'", "Audiences here: south"]),
    ]
    for line, words in cases:
        await refused(team, "alice", line, *words)
    await team.say("alice", "/audience add north accounts=acme-fr tz=Europe/Oslo lang=no")
    await refused(team, "alice", "/audience edit north name=south", "already an audience called south")


async def test_only_admins_add_edit_or_remove_audiences(team: Team) -> None:
    await acme(team)
    await team.say("alice", ADD_SOUTH)
    await team.say("alice", "/role dan editor")
    for user, role in (("bob", "an approver"), ("carol", "a viewer"), ("dan", "an editor")):
        await refused(team, user, ADD_SOUTH.replace("south", "north"), "Only admins can add audiences", role)
        await refused(team, user, "/audience edit south tz=UTC", "Only admins can change audiences")
        await refused(team, user, "/audience remove south", "Only admins can remove audiences")
        assert "Audience south" in await team.say(user, "/audience south")


async def test_accounts_and_audiences_of_another_workspace_stay_apart(team: Team) -> None:
    await acme(team)
    await team.say("alice", ADD_SOUTH)
    assert "is ready" in (await elsewhere(team, "dave", "/setup Rival")).text
    await elsewhere(team, "dave", "/connect sandbox name=rival-x")
    await refused(team, "alice", "/audience add north accounts=rival-x tz=Europe/Oslo lang=no",
                  "no account called rival-x", "Its accounts: acme-es, acme-fr, acme-x")
    before = team.snapshot()
    theirs = await elsewhere(team, "dave", "/audience add south accounts=acme-es tz=Europe/Madrid lang=es")
    assert theirs.error and "no account called acme-es" in theirs.text and "Its accounts: rival-x" in theirs.text
    assert team.snapshot() == before
    assert "No audiences yet" in (await elsewhere(team, "dave", "/audience")).text
    mine = await elsewhere(team, "dave", "/audience add south accounts=rival-x tz=Europe/Madrid lang=es")
    assert not mine.error and "Added audience south." in mine.text  # the same name in another workspace
    assert [(a.workspace_id, a.name) for a in audiences(team)] == [(1, "south"), (2, "south")]
    assert "rival-x" not in await team.say("alice", "/audience south")
