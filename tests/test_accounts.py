"""Connected accounts through the console chat: /connect (sandbox), /accounts, /slots, and secrets at rest."""

from __future__ import annotations

from sqlmodel import select

from storage.models import Account, AuditEvent
from tests.conftest import Team, refused

SECRET = "supersecret123"



def accounts(team: Team) -> list[Account]:
    with team.herald.db.session() as session:
        return list(session.exec(select(Account).order_by(Account.name)).all())


def account(team: Team, name: str) -> Account:
    found = [a for a in accounts(team) if a.name == name]
    assert len(found) == 1, [a.name for a in accounts(team)]
    return found[0]


async def workspace_of_alice(team: Team) -> None:
    await team.say("alice", "/setup Acme")
    await team.say("alice", "/timezone Europe/Paris")


# /connect


async def test_connecting_a_sandbox_account_with_x_rules(team: Team) -> None:
    await workspace_of_alice(team)
    out = await team.say("alice", "/connect sandbox name=brand-x like=x")
    assert "Connected brand-x (Sandbox, following X rules) — sandbox account with X rules." in out
    assert "No posting slots yet: /slots brand-x 09:00 17:00" in out
    acc = account(team, "brand-x")
    assert (acc.network, acc.settings, acc.credentials, acc.health) == ("sandbox", {"like": "x"}, None, "ok")


async def test_connect_takes_slots_timezone_and_base_url(team: Team) -> None:
    await workspace_of_alice(team)
    out = await team.say(
        "alice",
        "/connect sandbox name=brand-ny like=bluesky slots=17:30,9:00,09:00 timezone=america/new_york "
        "base_url=https://sandbox.example",
    )
    assert "Connected brand-ny (Sandbox, following Bluesky rules)" in out
    assert "Posting slots: 09:00 17:30." in out
    acc = account(team, "brand-ny")
    assert (acc.slots, acc.timezone, acc.base_url) == ("09:00,17:30", "America/New_York", "https://sandbox.example")
    out = await team.say("alice", "/accounts")
    assert "brand-ny: Sandbox · Bluesky rules · healthy · slots 09:00 17:30 (America/New_York)" in out


async def test_connect_keeps_fail_and_max_characters_for_rehearsals(team: Team) -> None:
    await workspace_of_alice(team)
    out = await team.say("alice", "/connect sandbox name=tiny max_characters=20 fail=reject")
    assert "Connected tiny (Sandbox)" in out
    assert account(team, "tiny").settings == {"max_characters": "20", "fail": "reject"}
    out = await team.say("alice", "/draft 123456789012345678901234567890")
    assert "tiny: ✗ Sandbox: 30/20 characters — 10 characters over the limit → fix with /variant 1 tiny <text>" in out


async def test_connect_without_options_explains_what_the_network_takes(team: Team) -> None:
    await workspace_of_alice(team)
    before = team.snapshot()
    out = await team.say("alice", "/connect sandbox")
    assert "/connect sandbox [like=…] [fail=…] [max_characters=…]" in out
    assert "fail=reject|auth|rate_limit|down|timeout" in out
    assert team.snapshot() == before


async def test_connecting_the_same_name_again_keeps_one_account(team: Team) -> None:
    await workspace_of_alice(team)
    await team.say("alice", "/connect sandbox name=brand like=x")
    await team.say("alice", "/connect sandbox name=brand like=x")
    assert [a.name for a in accounts(team)] == ["brand"]


async def test_connect_without_a_network_is_refused(team: Team) -> None:
    await workspace_of_alice(team)
    await refused(team, "alice", "/connect", "Which network?", "Available here: bluesky, discord, facebook",
                  "sandbox, telegram, threads, tiktok, x, youtube")


async def test_connect_without_name_is_refused(team: Team) -> None:
    await workspace_of_alice(team)
    await refused(team, "alice", "/connect sandbox like=x", "Missing name=.", "/connect sandbox [like=…]")
    await refused(team, "alice", "/connect sandbox name= like=x", "Missing name=.")


async def test_connect_with_an_unknown_key_is_refused(team: Team) -> None:
    await workspace_of_alice(team)
    await refused(team, "alice", "/connect sandbox name=a colour=blue", "Sandbox doesn't take colour")


async def test_connect_with_a_word_that_is_not_key_value_is_refused(team: Team) -> None:
    await workspace_of_alice(team)
    await refused(team, "alice", "/connect sandbox name=a foo", "'foo' isn't key=value", "Usage: /connect")
    await refused(team, "alice", '/connect sandbox name="a b', "I couldn't read that", "No closing quotation")
    await refused(team, "alice", "/connect sandbox name=a name=b", "name= is given twice")


async def test_connect_to_an_unknown_or_unavailable_network_is_refused(team: Team) -> None:
    await workspace_of_alice(team)
    await refused(team, "alice", "/connect myspace name=a", "'myspace' isn't a network I know",
                  "Available: bluesky, discord")


async def test_connect_with_bad_sandbox_settings_is_refused_clearly(team: Team) -> None:
    await workspace_of_alice(team)
    out = await refused(team, "alice", "/connect sandbox name=a like=myspace", "like=myspace isn't a network",
                        "Nothing was saved")
    assert "Something went wrong" not in out
    await refused(team, "alice", "/connect sandbox name=a fail=sometimes", "fail=sometimes isn't a failure",
                  "reject, auth, rate_limit, down, timeout")
    await refused(team, "alice", "/connect sandbox name=a max_characters=lots", "max_characters must be a whole number")
    await refused(team, "alice", "/connect sandbox name=a max_characters=0", "from 1 to 100000")


async def test_connect_with_a_token_the_network_refuses_saves_nothing(team: Team) -> None:
    await workspace_of_alice(team)
    await refused(team, "alice", "/connect sandbox name=a token=invalid", "Sandbox didn't accept these credentials",
                  "Nothing was saved")
    assert accounts(team) == []


async def test_connect_with_a_bad_name_slot_timezone_or_base_url_is_refused(team: Team) -> None:
    await workspace_of_alice(team)
    await refused(team, "alice", "/connect sandbox name=bad!name", "name= must be 1–40 letters")
    await refused(team, "alice", "/connect sandbox name=a slots=25:00", "'25:00' isn't a time of day")
    await refused(team, "alice", "/connect sandbox name=a timezone=Mars/Base", "I don't know the time zone 'Mars/Base'")
    await refused(team, "alice", "/connect sandbox name=a base_url=ftp://files", "base_url= must start with http")


async def test_only_admins_can_connect(team: Team) -> None:
    await team.setup_workspace()
    await refused(team, "carol", "/connect sandbox name=c", "Only admins can use /connect", "You're a viewer")
    await refused(team, "bob", "/connect sandbox name=c", "Only admins can use /connect", "You're an approver")


# secrets


async def test_a_token_is_never_shown_and_is_stored_encrypted(team: Team) -> None:
    await workspace_of_alice(team)
    out = await team.say("alice", f"/connect sandbox name=s token={SECRET}")
    assert "Connected s (Sandbox)" in out
    assert SECRET not in out
    out = await team.say("alice", "/accounts")
    assert "s: Sandbox · healthy · no slots · credentials stored encrypted" in out
    assert SECRET not in out
    with team.herald.db.session() as session:
        acc = session.exec(select(Account).where(Account.name == "s")).one()
        audit = session.exec(select(AuditEvent)).all()
    assert isinstance(acc.credentials, bytes)
    assert SECRET.encode() not in acc.credentials
    assert SECRET not in repr(acc) and "credentials" not in repr(acc)
    assert all(SECRET not in e.detail for e in audit)
    assert SECRET not in repr(team.snapshot())  # nowhere in any table, in clear
    assert team.herald.ctx.secrets.open(acc.credentials) == {"token": SECRET}


async def test_a_token_never_appears_in_a_refusal(team: Team) -> None:
    await workspace_of_alice(team)
    for line in (
        f"/connect sandbox name=bad! token={SECRET}",
        f"/connect sandbox name=s token={SECRET} colour=blue",
        f"/connect sandbox name=s token={SECRET} name=t",
        f"/connect sandbox name=s token={SECRET} like=myspace",
    ):
        out = await refused(team, "alice", line)
        assert SECRET not in out, line


# /accounts


async def test_accounts_lists_every_account_for_anyone(team: Team) -> None:
    await team.setup_workspace()
    out = await team.say("carol", "/accounts")
    assert out.splitlines() == [
        "Accounts:",
        "  brand-bsky: Sandbox · Bluesky rules · healthy · no slots",
        "  brand-x: Sandbox · X rules · healthy · no slots",
    ]


async def test_accounts_with_none_connected_says_how_to_connect(team: Team) -> None:
    await workspace_of_alice(team)
    out = await team.say("alice", "/accounts")
    assert "No accounts yet. /connect sandbox name=brand" in out


# /slots


async def test_slots_are_set_sorted_and_deduplicated_then_turned_off(team: Team) -> None:
    await team.setup_workspace()
    out = await team.say("alice", "/slots brand-x 13:00 8:15,13:00")
    assert "brand-x posting slots: 08:15 13:00." in out
    assert account(team, "brand-x").slots == "08:15,13:00"
    assert "slots 08:15 13:00 (Europe/Paris)" in await team.say("alice", "/accounts")
    out = await team.say("alice", "/slots brand-x off")
    assert "brand-x has no posting slots now." in out
    assert account(team, "brand-x").slots == ""


async def test_slots_used_by_schedule_next_slot(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/slots brand-x 09:00 17:30")
    await team.say("alice", "/slots brand-bsky 17:30")
    post_id = await team.approved_post()
    out = await team.say("alice", f"/schedule {post_id} next slot")
    assert "Mon 23 Nov 2026 17:30 CET (Europe/Paris)" in out  # 09:00 today is already past


async def test_a_bad_slot_time_is_refused(team: Team) -> None:
    await team.setup_workspace()
    await team.say("alice", "/slots brand-x 09:00")
    await refused(team, "alice", "/slots brand-x 9am", "'9am' isn't a time of day", "09:00 13:30 17:45")
    await refused(team, "alice", "/slots brand-x 24:00", "'24:00' isn't a time of day")
    await refused(team, "alice", "/slots brand-x 10:00 9:60", "'9:60' isn't a time of day")
    assert account(team, "brand-x").slots == "09:00"


async def test_slots_for_an_unknown_account_or_without_times_are_refused(team: Team) -> None:
    await team.setup_workspace()
    await refused(team, "alice", "/slots nope 09:00", "There's no account called nope", "/accounts")
    await refused(team, "alice", "/slots brand-x", "Usage: /slots <account>")
    await refused(team, "alice", "/slots", "Usage: /slots <account>")


async def test_only_admins_set_slots(team: Team) -> None:
    await team.setup_workspace()
    await refused(team, "carol", "/slots brand-x 09:00", "Only admins can use /slots", "You're a viewer")
    await refused(team, "bob", "/slots brand-x 09:00", "Only admins can use /slots", "You're an approver")


async def test_common_network_nicknames_are_understood(team: Team) -> None:
    await team.setup_workspace(accounts=())
    out = await refused(team, "alice", "/connect twitter name=acme")
    assert "Missing access_token=." in out and "/connect x access_token=" in out
