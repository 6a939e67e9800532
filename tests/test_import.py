"""/import: a CSV plan, a dry run with every error by row and column, then /import confirm creates the posts.

Through the console front door (a path), the real Telegram front end (a document fetched with getFile from the
loopback Bot API) and the real Discord front end (an attachment served by the Discord fake); plus the reading of
the file itself (encodings, header, rows) as fast unit tests. Pictures named by web address come from a loopback
web site.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pydantic import ValidationError
from sqlmodel import select

from bot.chats.discord import DiscordFront
from bot.chats.telegram import TelegramFront
from bot.fetcher import HttpFetcher
from handlers.core.errors import UserError
from handlers.core.ports import FetchError
from handlers.posts.imports import ranges
from handlers.posts.plan_file import MAX_ROWS, PlanRow, column_letter, decode, read_table
from storage.models import (
    Account,
    Audience,
    AudienceAccount,
    AuditEvent,
    Delivery,
    ImportState,
    Media,
    PlanImport,
    Post,
)
from tests.conftest import FakeClock, Team, make_herald, refused
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.loopback import LoopbackServer
from tests.fakes.telegram_api import FakeTelegram, tiny_jpeg

HEADER = ["text", "time", "zone", "accounts", "link", "campaign", "text_x", "submit"]
LONG = "Our winter collection is here, and it is warmer than ever. " * 5  # 295 characters


def plan_csv(rows: list[list[str]], header: list[str] = HEADER, *, delimiter: str = ",") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def good_row(n: int) -> list[str]:
    """Post n of a month's plan: a day of December at 09:00 or 17:30 Paris time, both accounts or one."""
    day, evening = 1 + n % 28, n % 2 == 1
    accounts = ("brand-x brand-bsky", "brand-x", "brand-bsky", "")[n % 4]
    variant = f"Deal {n} 🔥 on X" if n % 5 == 0 and accounts != "brand-bsky" else ""
    return [f"Plan post {n}: winter deals, day {day}", f"2026-12-{day:02d} {'17:30' if evening else '09:00'}",
            "Europe/Paris" if n % 3 else "", accounts, "https://shop.example/winter" if n % 2 else "",
            "winter" if n % 7 else "", variant, ""]


BAD_ROWS = {  # where in the file (0-based among the data rows) → (the row, what its one error says)
    3: (["Bad account", "2026-12-02 09:00", "", "brand-fb", "", "", "", ""],
        "column D (accounts): no account called brand-fb (accounts: brand-bsky, brand-x)"),
    40: (["In the past", "2026-11-01 09:00", "", "", "", "", "", ""],
         "column B (time): That time is in the past"),
    77: (["Bad zone", "2026-12-03 09:00", "Europe/Pariss", "", "", "", "", ""],
         "column C (zone): I don't know the time zone 'Europe/Pariss'. Did you mean 'Europe/Paris'?"),
    101: ([LONG.strip(), "2026-12-04 09:00", "", "brand-x brand-bsky", "", "", "", ""],
          "column A (text): for brand-x, ✗ X: 294/280 weighted characters — 14 weighted characters over the limit"),
    150: (["Bad link", "", "", "", "shop.example/sale", "", "", ""],
          "column E (link): 'shop.example/sale' isn't a web address; links start with https://"),
    170: (["Bad submit", "2026-12-05 09:00", "", "", "", "", "", "maybe"],
          "column H (submit): 'maybe' isn't yes or no"),
    190: (["Fine main text", "2026-12-06 09:00", "", "brand-x", "", "", LONG.strip(), ""],
          "column G (text_x): for brand-x, ✗ X: 294/280 weighted characters — 14 weighted characters over the limit"),
}


def month_plan() -> tuple[bytes, list[list[str]]]:
    """200 good rows with 7 bad ones among them; returns the file and the good rows in file order."""
    rows: list[list[str]] = []
    good: list[list[str]] = []
    n = 0
    while len(rows) < 207:
        if len(rows) in BAD_ROWS:
            rows.append(BAD_ROWS[len(rows)][0])
            continue
        rows.append(good_row(n))
        good.append(rows[-1])
        n += 1
    return plan_csv(rows), good


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def posts(team: Team) -> list[Post]:
    with team.herald.db.session() as session:
        return list(session.exec(select(Post).order_by(Post.id)).all())  # type: ignore[arg-type]


@pytest.fixture
async def acme(team: Team, tmp_path: Path) -> Team:
    await team.setup_workspace()
    team.herald.console.exports_dir = tmp_path / "exports"
    return team


# -- the console: a month's plan ------------------------------------------------------------------------------


async def test_a_plan_with_200_good_and_7_bad_rows_gives_7_errors_then_200_drafts(acme: Team, tmp_path: Path) -> None:
    data, good = month_plan()
    path = write(tmp_path, "december.csv", data)
    before = acme.snapshot()
    out = await acme.say("alice", f"/import {path}")
    after = acme.snapshot()
    assert {t for t in after if after[t] != before[t]} == {"planimport"}  # the dry run only, kept for confirm
    assert out.startswith("📋 Dry run of december.csv: 207 rows, 200 ready, 7 with errors. Nothing is created yet."), out
    errors = [line.strip() for line in out.splitlines() if line.startswith("  ✗ ")]
    assert len(errors) == 7, errors
    for (index, (_row, message)), line in zip(sorted(BAD_ROWS.items()), errors, strict=True):
        assert line.startswith(f"✗ Row {index + 2}, {message}"), (line, message)  # the header is row 1
    assert "Row 2 → draft · Tue 1 Dec 2026 09:00 CET (Europe/Paris) · to brand-bsky, brand-x" in out
    assert "/import confirm creates the 200 posts as drafts; the 7 row(s) with errors are left out." in out
    assert posts(acme) == []  # a dry run creates nothing

    report = next((tmp_path / "exports").glob("import-report-december*.csv"))
    lines = list(csv.reader(io.StringIO(report.read_bytes().decode("utf-8-sig"))))
    assert lines[0] == ["row", "status", "what it becomes or what is wrong"]
    assert sum(1 for line in lines[1:] if line[1] == "ok") == 200
    assert [line[0] for line in lines[1:] if line[1] == "error"] == [str(i + 2) for i in sorted(BAD_ROWS)]

    out = await acme.say("alice", "/import confirm")
    assert out.startswith("✅ Imported december.csv: 200 posts (#1–#200)."), out
    created = posts(acme)
    assert len(created) == 200 and {p.state for p in created} == {"draft"}
    assert [p.text for p in created] == [row[0] for row in good]
    first = created[0]  # good_row(0): 1 Dec 09:00 in the workspace zone (Paris), to every account
    assert first.due_at == datetime(2026, 12, 1, 8, 0, tzinfo=UTC) and first.due_tz == "Europe/Paris"
    assert first.variants == {"x": "Deal 0 🔥 on X"} and first.campaign is None and first.link is None
    second = created[1]
    assert second.due_at == datetime(2026, 12, 2, 16, 30, tzinfo=UTC) and second.link == "https://shop.example/winter"
    assert second.campaign == "winter"
    with acme.herald.db.session() as session:
        targets = {p.id: len(session.exec(select(Delivery).where(Delivery.post_id == p.id)).all()) for p in created}
        assert [targets[p.id] for p in created[:4]] == [2, 1, 1, 2]
        audits = session.exec(select(AuditEvent).where(AuditEvent.action == "import")).all()
        assert len(audits) == 200 and audits[0].detail == "row 2 of december.csv"
    assert "Tue 1 Dec 2026 09:00 CET" in await acme.say("alice", "/preview 1")

    # the same file again: recognised by its content and refused, whatever its name
    again = write(tmp_path, "december-copy.csv", data)
    await refused(acme, "alice", f"/import {again}", "This file was already imported (december.csv, by alice",
                  "#1–#200")
    await refused(acme, "alice", "/import confirm", "There's no import waiting to confirm")

    # two dry runs of one file confirmed at the same moment: the second finds the file imported
    with acme.herald.db.session() as session:
        done = session.exec(select(PlanImport)).one()
        session.add(PlanImport(workspace_id=done.workspace_id, filename="again.csv", content_hash=done.content_hash,
                               rows=done.rows[:1], created_by="alice"))
    await refused(acme, "alice", "/import confirm", "again.csv was already imported, so nothing was created again")


async def test_submitting_sends_the_rows_for_approval_with_one_notice(acme: Team, tmp_path: Path) -> None:
    data = plan_csv([good_row(0), good_row(1), [*good_row(2)[:7], "no"]])
    out = await acme.say("alice", f"/import submit {write(tmp_path, 'plan.csv', data)}")
    assert "Row 2 → submitted for approval" in out and "Row 4 → draft" in out
    assert "/import confirm creates the 3 posts (1 as draft(s), 2 submitted for approval)." in out
    out = await acme.say("alice", "/import confirm")
    assert "1 draft(s)" in out and "2 submitted for approval" in out
    assert [p.state for p in posts(acme)] == ["in_review", "in_review", "draft"]
    out = await acme.say("bob", "/approve 1")
    assert "Approved and scheduled for Tue 1 Dec 2026 09:00 CET" in out


async def test_the_file_says_which_rows_are_submitted_and_no_approval_needed_schedules_them(
        acme: Team, tmp_path: Path) -> None:
    await acme.say("alice", "/policy approvals=0")
    data = plan_csv([[*good_row(0)[:7], "yes"], good_row(1)])
    await acme.say("alice", f"/import {write(tmp_path, 'plan.csv', data)}")
    out = await acme.say("alice", "/import confirm")
    assert "1 approved at once" in out
    assert "Imported plan.csv: 2 posts (#1–#2)." in out
    assert [p.state for p in posts(acme)] == ["scheduled", "draft"]


async def test_cancel_drops_the_dry_run_and_the_file_can_be_imported_later(acme: Team, tmp_path: Path) -> None:
    path = write(tmp_path, "plan.csv", plan_csv([good_row(0)]))
    await acme.say("alice", f"/import {path}")
    assert "is waiting: /import confirm creates the posts" in await acme.say("alice", "/import")
    assert await acme.say("alice", "/import cancel") == "Import of plan.csv cancelled; nothing was created."
    await refused(acme, "alice", "/import cancel", "There's no import waiting")
    assert posts(acme) == []
    assert "1 ready" in await acme.say("alice", f"/import {path}")
    assert "1 posts (#1)" in await acme.say("alice", "/import confirm")


async def test_a_new_file_replaces_the_dry_run_waiting(acme: Team, tmp_path: Path) -> None:
    await acme.say("alice", f"/import {write(tmp_path, 'one.csv', plan_csv([good_row(0)]))}")
    out = await acme.say("alice", f"/import {write(tmp_path, 'two.csv', plan_csv([good_row(1), good_row(2)]))}")
    assert "(The dry run of one.csv that was waiting is dropped: this one replaces it.)" in out
    assert "Imported two.csv: 2 posts" in await acme.say("alice", "/import confirm")


async def test_confirm_checks_again_what_changed_since_the_dry_run(acme: Team, tmp_path: Path) -> None:
    data = plan_csv([good_row(0), ["Soon", "2026-11-23 11:00", "", "", "", "", "", ""]])
    await acme.say("alice", f"/import {write(tmp_path, 'plan.csv', data)}")
    acme.clock.advance(hours=2)  # 11:00 in Paris has passed
    await refused(acme, "alice", "/import confirm", "Nothing was created",
                  "Row 3: its time (Mon 23 Nov 2026 11:00 CET (Europe/Paris)) has passed since the dry run")


async def test_a_dry_run_survives_a_restart(db_url: str, clock: FakeClock, tmp_path: Path) -> None:
    herald = make_herald(db_url, clock)
    await herald.start()
    team = Team(herald, clock, db_url)
    await team.setup_workspace()
    await team.say("alice", f"/import {write(tmp_path, 'plan.csv', plan_csv([good_row(0), good_row(1)]))}")
    await herald.stop()
    herald = make_herald(db_url, clock)
    await herald.start()
    try:
        out = await Team(herald, clock, db_url).say("alice", "/import confirm")
        assert out.startswith("✅ Imported plan.csv: 2 posts (#1–#2)."), out
    finally:
        await herald.stop()


async def test_a_row_and_a_schedule_phrase_mean_the_same_time(acme: Team, tmp_path: Path) -> None:
    await acme.say("alice", "/language fr")
    data = plan_csv([["Deux lignes\nde texte", "demain à 21h", "", "", "", "", "", ""],
                     ["À New York", "demain 9:30", "America/New_York", "", "", "", "", ""],
                     ["Zone écrite", "2026-12-01 18:30 Asia/Tokyo", "", "", "", "", "", ""]])
    out = await acme.say("alice", f"/import {write(tmp_path, 'plan.csv', data)}")
    assert "3 ready" in out, out
    await acme.say("alice", "/import confirm")
    for phrase in ("demain à 21h", "demain 9:30 America/New_York", "2026-12-01 18:30 Asia/Tokyo"):
        await acme.say("alice", "/draft Par /schedule")
        await acme.say("alice", f"/schedule {len(posts(acme))} {phrase}")
    imported, scheduled = posts(acme)[:3], posts(acme)[3:]
    assert [(p.due_at, p.due_tz) for p in imported] == [(p.due_at, p.due_tz) for p in scheduled]
    assert imported[0].due_at == datetime(2026, 11, 24, 20, 0, tzinfo=UTC) and imported[1].due_tz == "America/New_York"
    assert imported[0].text == "Deux lignes\nde texte"


async def test_a_time_that_leaves_no_time_for_approval_is_an_error_of_its_row(acme: Team, tmp_path: Path) -> None:
    await acme.say("alice", "/policy deadline=2h")
    data = plan_csv([["Soon", "in 1 hour", "", "", "", "", "", ""], ["Later", "in 3 hours", "", "", "", "", "", ""]])
    out = await acme.say("alice", f"/import {write(tmp_path, 'plan.csv', data)}")
    assert "Row 2, column B (time): Mon 23 Nov 2026 11:00 CET (Europe/Paris) leaves no time for approval" in out, out
    assert "1 ready" in out


async def test_only_editors_import(acme: Team, tmp_path: Path) -> None:
    await refused(acme, "bob", f"/import {write(tmp_path, 'plan.csv', plan_csv([good_row(0)]))}", "/import")


# -- bad files: a clear message, nothing changed -----------------------------------------------------------------


BAD_FILES = {
    "no header": (plan_csv([good_row(1)], header=good_row(0)), "The first row should name the columns"),
    "duplicate columns": (plan_csv([["a", "b"]], header=["text", "Text"]),
                          "The column 'text' appears twice: column A (text) and column B (Text)"),
    "10,000 rows": (plan_csv([good_row(n % 100) for n in range(10_000)]),
                    "That file has 10,000 rows; an import takes at most 1,000"),
    "audiences": (plan_csv([["Hi", "walkers"]], header=["text", "audiences"]),
                  "Column B (audiences): a plan can't name audiences yet. Nothing was imported. Name the accounts"),
    "unknown column": (plan_csv([["Hi", "brand-x"]], header=["text", "acounts"]),
                       "Column B (acounts): I don't know that column. Did you mean 'accounts'?"),
    "unknown network": (plan_csv([["Hi", "Yo"]], header=["text", "text_myspace"]),
                        "Column B (text_myspace): 'myspace' is neither a network"),
    "no text column": (plan_csv([["brand-x"]], header=["accounts"]), "The plan has no 'text' column"),
    "excel": (b"PK\x03\x04" + b"\x00" * 60, "That's a spreadsheet file (Excel or similar), not a CSV"),
    "empty": (b"  \n", "That file is empty"),
    "binary": (bytes(range(256)) * 4, "That file isn't text I can read"),
    "NUL": (b"text\nhi\x00there\n", "That file holds NUL bytes"),
    "header only": (plan_csv([]), "That file has a header but no rows to import"),
    "unclosed quote": (b'text,time\n"Hi there,2026-12-01 09:00\n', "Row 2 can't be read as CSV"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
async def test_a_bad_file_is_refused_with_a_clear_message(acme: Team, tmp_path: Path, case: str) -> None:
    data, message = BAD_FILES[case]
    await refused(acme, "alice", f"/import {write(tmp_path, 'plan.csv', data)}", message, "Nothing was imported")


async def test_a_file_whose_rows_are_all_bad_creates_nothing(acme: Team, tmp_path: Path) -> None:
    data = plan_csv([BAD_ROWS[3][0], BAD_ROWS[77][0]])
    out = await refused(acme, "alice", f"/import {write(tmp_path, 'plan.csv', data)}",
                        "2 rows, 0 ready, 2 with errors", "No row can be imported")
    assert "Row 2, column D (accounts)" in out and "Row 3, column C (zone)" in out


async def test_a_path_that_is_not_a_file_is_explained(acme: Team) -> None:
    await refused(acme, "alice", "/import /nowhere/plan.csv", "I can't find a file there")


async def test_another_encoding_is_detected_and_named(acme: Team, tmp_path: Path) -> None:
    text = ("text;accounts\n"
            "Découvrez notre café crème préféré: élaboré à la française avec des grains sélectionnés;brand-x\n"
            "Très bientôt les pâtisseries d'été arrivent à déguster près de chez vous;brand-x\n")
    out = await acme.say("alice", f"/import {write(tmp_path, 'latin.csv', text.encode('cp1252'))}")
    assert "The file isn't UTF-8: I read it as CP1252 (detected)." in out and "2 ready" in out, out
    await acme.say("alice", "/import confirm")
    assert [p.text for p in posts(acme)] == [line.split(";")[0] for line in text.splitlines()[1:]]


async def test_a_byte_order_mark_is_skipped_and_said(acme: Team, tmp_path: Path) -> None:
    data = "\ufefftext;accounts\nHallo aus Köln;brand-x\n".encode()  # Excel's "CSV UTF-8", semicolons
    out = await acme.say("alice", f"/import {write(tmp_path, 'bom.csv', data)}")
    assert "Read as UTF-8 (its byte-order mark skipped)." in out and "1 ready" in out, out
    await acme.say("alice", "/import confirm")
    assert posts(acme)[0].text == "Hallo aus Köln"


async def test_pictures_of_another_post_are_reused(acme: Team, tmp_path: Path) -> None:
    picture = write(tmp_path, "sale.jpg", tiny_jpeg())
    await acme.say("alice", f"/draft {picture} With a picture")
    data = plan_csv([["Same picture", "brand-x", "#1"], ["Nope", "brand-x", "cdn.example/a.jpg"],
                     ["No such post", "brand-x", "#7"]], header=["text", "accounts", "image"])
    out = await acme.say("alice", f"/import {write(tmp_path, 'plan.csv', data)}")
    assert "Row 3, column C (image): 'cdn.example/a.jpg' is neither a web address (https://…) nor a picture" in out
    assert "Row 4, column C (image): there's no post #7 here to take the pictures of" in out
    await acme.say("alice", "/import confirm")
    assert posts(acme)[1].media == posts(acme)[0].media != []


@pytest.fixture
async def pictures() -> AsyncIterator[LoopbackServer]:
    """A web site with pictures: /sale.jpg, /notes.txt, /big.jpg, /gone.jpg (404) and /moved (→ /sale.jpg)."""
    site = LoopbackServer()
    files = {"sale.jpg": (tiny_jpeg(), "image/jpeg"), "notes.txt": (b"just words", "text/plain"),
             "big.jpg": (tiny_jpeg((400, 300)), "image/jpeg")}

    async def serve(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name == "moved":
            raise web.HTTPFound("/sale.jpg")
        if name not in files:
            return web.Response(status=404, text="Not Found")
        data, kind = files[name]
        return web.Response(body=data, content_type=kind)

    site.route("GET", "/{name}", serve)
    async with site:
        yield site


async def test_pictures_named_by_web_address_are_fetched_checked_and_stored_on_confirm(
        db_url: str, clock: FakeClock, tmp_path: Path, pictures: LoopbackServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("handlers.posts.imports.MAX_FETCH_BYTES", 2000)  # big.jpg is bigger
    herald = make_herald(db_url, clock, HERALD_FETCH_PRIVATE=True)  # the site is on 127.0.0.1
    await herald.start()
    try:
        team = Team(herald, clock, db_url)
        await team.setup_workspace()
        site = pictures.url
        data = plan_csv([["One", "brand-x", f"{site}/sale.jpg"], ["Same one", "brand-bsky", f"{site}/sale.jpg"],
                         ["Redirected", "brand-x", f"{site}/moved"], ["Words", "brand-x", f"{site}/notes.txt"],
                         ["Gone", "brand-x", f"{site}/gone.jpg"], ["Big", "brand-x", f"{site}/big.jpg"]],
                        header=["text", "accounts", "image"])
        out = await team.say("alice", f"/import {write(tmp_path, 'plan.csv', data)}")
        assert "6 rows, 3 ready, 3 with errors" in out, out
        assert f"Row 5, column C (image): {site}/notes.txt: notes.txt isn't an image I can read" in out
        assert f"Row 6, column C (image): {site}/gone.jpg: couldn't fetch it: the site answered 404 Not Found" in out
        assert f"Row 7, column C (image): {site}/big.jpg: couldn't fetch it: the file is" in out
        assert len(pictures.requests("GET", "/sale.jpg")) == 2  # once for both rows, once after the redirect
        with herald.db.session() as session:
            assert session.exec(select(Media)).all() == []  # the dry run stores nothing
        out = await team.say("alice", "/import confirm")
        assert "Imported plan.csv: 3 posts (#1–#3)." in out, out
        created = posts(team)
        assert created[0].media == created[1].media and len(created[0].media) == 1
        with herald.db.session() as session:
            stored = session.exec(select(Media)).all()
            assert len(stored) == 2 and {m.data for m in stored} == {tiny_jpeg()}
        assert len(created[2].media) == 1 and created[2].media != created[0].media
    finally:
        await herald.stop()


async def test_a_picture_gone_by_confirm_stops_the_import(
        db_url: str, clock: FakeClock, tmp_path: Path, pictures: LoopbackServer) -> None:
    herald = make_herald(db_url, clock, HERALD_FETCH_PRIVATE=True)
    await herald.start()
    try:
        team = Team(herald, clock, db_url)
        await team.setup_workspace()
        data = plan_csv([["One", "brand-x", f"{pictures.url}/sale.jpg"]], header=["text", "accounts", "image"])
        assert "1 ready" in await team.say("alice", f"/import {write(tmp_path, 'plan.csv', data)}")
        pictures.fail("GET", "/sale.jpg", status=404)
        await refused(team, "alice", "/import confirm", "Nothing was created",
                      f"Row 2: {pictures.url}/sale.jpg: couldn't fetch it: the site answered 404")
        assert "Imported plan.csv: 1 posts (#1)." in await team.say("alice", "/import confirm")  # it's back
    finally:
        await herald.stop()


async def test_the_fetcher_refuses_local_addresses_other_schemes_and_redirects_home(pictures: LoopbackServer) -> None:
    careful = HttpFetcher()
    for url, reason in ((f"{pictures.url}/sale.jpg", "127.0.0.1 is a local or private address"),
                        ("http://localhost:1/x.jpg", "localhost is a local or private address"),
                        ("http://169.254.169.254/latest/meta-data", "is a local or private address"),
                        ("ftp://example.com/x.jpg", "only http:// and https://"),
                        ("http://[::1]:9/x", "is a local or private address")):
        with pytest.raises(FetchError, match=re.escape(reason)):
            await careful.fetch(url, max_bytes=10_000)
    assert pictures.requests() == []  # nothing was even asked
    trusting = HttpFetcher(allow_private=True)
    got = await trusting.fetch(f"{pictures.url}/moved", max_bytes=10_000)
    assert got.data == tiny_jpeg() and got.filename == "sale.jpg" and got.content_type == "image/jpeg"
    with pytest.raises(FetchError, match="a picture fetched from the web can be at most"):
        await trusting.fetch(f"{pictures.url}/big.jpg", max_bytes=1000)


# -- Telegram and Discord: a real file through the real front ends ---------------------------------------------


async def test_import_a_document_sent_in_telegram(db_url: str, clock: FakeClock) -> None:
    async with FakeTelegram() as tg:
        alice = tg.user("Alice", username="alice")
        group = tg.group("Acme marketing", admins=(alice,))
        herald = make_herald(db_url, clock)
        herald.add_front(TelegramFront(herald.handle, tg.token, api_url=tg.url, poll_timeout=5,
                                       group_rate=(1000, 60)))
        await herald.start()
        try:
            for line in ("/setup Acme", "/timezone Europe/Paris", "/connect sandbox name=brand-x like=x",
                         "/connect sandbox name=brand-bsky like=bluesky"):
                await tg.wait_answer(await tg.say(alice, group, line))
            data, _good = month_plan()
            message = await tg.send_document(alice, group, data, "december.csv", caption="/import")
            answer = await tg.wait_answer(message)
            shown = answer.get("text") or answer.get("caption") or ""
            assert shown.startswith("📋 Dry run of december.csv: 207 rows, 200 ready, 7 with errors."), answer
            assert [c.params["file_id"] for c in tg.calls("getFile")] == [message["document"]["file_id"]]
            [report] = await tg.wait_call("sendDocument")  # the full per-row report, as a file
            assert report.files["document"]["filename"] == "import-report-december.csv"
            assert len([line for line in tg.text_of(group).splitlines() if line.startswith("  ✗ Row ")]) == 7
            huge = await tg.send_document(alice, group, b"text\n" + b"x" * (21 * 2**20), "huge.csv", caption="/import")
            refusal = await tg.wait_answer(huge)
            assert "I couldn't fetch that file from Telegram (File is too big). Bots can download files up to 20 MB" in refusal["text"], refusal
            confirmed = await tg.wait_answer(await tg.say(alice, group, "/import confirm"))
            assert confirmed["text"].startswith("✅ Imported december.csv: 200 posts (#1–#200)."), confirmed
            with herald.db.session() as session:
                assert len(session.exec(select(Post)).all()) == 200
                [done] = session.exec(select(PlanImport)).all()
                assert done.state == ImportState.CONFIRMED.value and len(done.post_ids) == 200
        finally:
            await herald.stop()


async def test_import_an_attachment_in_discord(db_url: str, clock: FakeClock) -> None:
    fake = FakeDiscord()
    await fake.start()
    guild = fake.add_guild("Acme")
    channel = fake.add_channel(guild, "marketing")
    alice = fake.add_member(guild, "alice", manage_guild=True)
    herald = make_herald(db_url, clock)
    herald.add_front(DiscordFront(herald.handle, fake.token, api_url=fake.url, guild_ids=[int(guild)],
                                  guild_ready_timeout=0.05))
    await herald.start()
    try:
        for name, options in (("setup", {"args": "Acme"}), ("timezone", {"args": "Europe/Paris"}),
                              ("connect", {"args": "sandbox name=brand-x like=x"}),
                              ("connect", {"args": "sandbox name=brand-bsky like=bluesky"})):
            await fake.slash(alice, channel, name, **options)
        data, _good = month_plan()
        attachment = fake.add_attachment("december.csv", data, "text/csv")
        record = await fake.slash(alice, channel, "import", file=("attachment", attachment))
        message: dict[str, Any] = record.original if record.original is not None else record.followups[-1]
        embed = message["embeds"][0]
        assert embed["title"].startswith("📋 Dry run of december.csv: 207 rows, 200 ready, 7 with errors."), embed
        assert len([line for line in embed["description"].splitlines() if line.startswith("  ✗ Row ")]) == 7
        [report] = message["attachments"]
        assert report["filename"] == "import-report-december.csv"
        record = await fake.slash(alice, channel, "import", action="confirm")
        message = record.original if record.original is not None else record.followups[-1]
        assert message["embeds"][0]["title"].startswith("✅ Imported december.csv: 200 posts (#1–#200)."), message
        with herald.db.session() as session:
            assert len(session.exec(select(Post)).all()) == 200
    finally:
        await herald.stop()
        await fake.close()


# -- reading the file: fast unit tests -------------------------------------------------------------------------


def test_column_letters_are_the_spreadsheets() -> None:
    assert [column_letter(i) for i in (0, 1, 25, 26, 27, 51, 52, 701, 702)] == \
        ["A", "B", "Z", "AA", "AB", "AZ", "BA", "ZZ", "AAA"]


def test_post_numbers_are_shown_as_ranges() -> None:
    assert ranges([5, 6, 7, 9, 12, 13]) == "#5–#7, #9, #12–#13"
    assert ranges([]) == ""


def test_decode_reads_utf8_with_and_without_a_mark_and_names_other_encodings() -> None:
    assert decode("text\nhé".encode()).encoding == "UTF-8"
    assert decode(b"\xef\xbb\xbftext\nh\xc3\xa9").text == "text\nhé"
    utf16 = decode("text\nhé".encode("utf-16"))
    assert utf16.text == "text\nhé" and "byte-order mark" in utf16.note
    with pytest.raises(UserError, match="isn't valid UTF-16"):
        decode(b"\xff\xfe\x00\xd8")


def test_read_table_numbers_rows_as_a_spreadsheet_does_and_skips_blank_ones() -> None:
    table = read_table('text,time\n"two\nlines",tomorrow 9am\n,\nthird,\n')
    assert [c.name for c in table.columns] == ["text", "time"]
    assert [n for n, _cells in table.rows] == [2, 4]
    with pytest.raises(UserError, match=f"at most {MAX_ROWS:,}"):
        read_table("text\n" + "x\n" * (MAX_ROWS + 1))
    assert len(read_table("text\n" + "x\n" * MAX_ROWS).rows) == MAX_ROWS


def test_a_row_is_validated_by_its_model() -> None:
    row = PlanRow.model_validate({"text": "  Hi  ", "submit": "Yes", "variants": {"text_x": " ", "text_bsky": "B"}})
    assert row.text == "Hi" and row.submit is True and row.variants == {"text_bsky": "B"}
    assert PlanRow.model_validate({"submit": ""}).submit is None
    with pytest.raises(ValidationError) as caught:
        PlanRow.model_validate({"variants": {"text_x": "bell \x07"}})
    assert caught.value.errors()[0]["loc"] == ("variants", "text_x")
    for values in ({"link": "ftp://x"}, {"campaign": "two words"}, {"text": "bell \x07"}, {"submit": "perhaps"},
                   {"text": "x" * 20_001}):
        with pytest.raises(ValueError):
            PlanRow.model_validate(values)


async def test_a_row_for_audiences_makes_a_delivery_per_audience_account_with_its_landing_page(
        acme: Team, tmp_path: Path) -> None:
    """The accounts column takes audiences as /draft's to= does: each audience's accounts get that audience's
    version (its landing page, checked in the dry run); `tue 9:00 local` gives each audience its own 9:00 as
    /schedule does; an unknown audience, or 'local' without audiences, is an error of that row and column, and an
    audience left without accounts between the dry run and confirm stops the import."""
    acme.add_audience("south", ("brand-x",), "Europe/Madrid", "es", link="https://shop.example/es")
    acme.add_audience("north", ("brand-x", "brand-bsky"), "America/New_York", "en")
    rows = [["Rebajas de invierno hoy", "2026-12-02 09:00", "", "audience:south,north", "", "", "", ""],
            ["Winter sale", "2026-12-03 09:00", "", "brand-bsky audience:south", "", "", "", ""],
            ["Unknown", "2026-12-03 09:00", "", "audience:west", "", "", "", ""],
            ["Local", "tue 9:00 local", "", "audience:south,north", "", "", "", ""],
            ["No audience", "tue 9:00 local", "", "brand-x", "", "", "", ""],
            ["Nine nowhere", "2026-03-08 02:30 local", "", "audience:north", "", "", "", ""]]
    out = await acme.say("alice", f"/import {write(tmp_path, 'audiences.csv', plan_csv(rows))}")
    assert "Row 2 → draft · Wed 2 Dec 2026 09:00 CET (Europe/Paris) · to audience south, audience north" in out, out
    assert "Row 3 → draft · Thu 3 Dec 2026 09:00 CET (Europe/Paris) · to brand-bsky, audience south" in out, out
    assert "✗ Row 4, column D (accounts): There's no audience 'west'. Audiences here: north, south." in out, out
    assert ("Row 5 → draft · 09:00 in each audience's own zone, from Tue 24 Nov 2026 09:00 CET (Europe/Paris) · "
            "to audience south, audience north") in out, out
    assert "✗ Row 6, column B (time): 'local' needs audiences in the accounts column" in out, out
    assert "✗ Row 7, column B (time): For audience north (America/New_York): " in out, out  # 02:30 doesn't exist
    out = await acme.say("alice", "/import confirm")
    assert out.startswith("✅ Imported audiences.csv: 3 posts (#1–#3)."), out
    with acme.herald.db.session() as session:
        names = {a.id: a.name for a in session.exec(select(Account)).all()}
        audiences = {a.id: a.name for a in session.exec(select(Audience)).all()}
    first, second = (sorted((names[d.account_id], audiences.get(d.audience_id or 0)) for d in acme.deliveries(p))
                     for p in (1, 2))
    assert first == [("brand-bsky", "north"), ("brand-x", "north"), ("brand-x", "south")]
    assert second == [("brand-bsky", None), ("brand-x", "south")]
    preview = await acme.say("alice", "/preview 1")
    assert "shop.example/es" in preview, preview  # south's landing page on its delivery
    # the local row: 09:00 in Madrid (08:00 UTC) and in New York (14:00 UTC), the post armed at the earliest
    own = sorted((audiences[d.audience_id or 0], d.due_at) for d in acme.deliveries(3))
    assert own == [("north", datetime(2026, 11, 24, 14, 0, tzinfo=UTC))] * 2 + [
        ("south", datetime(2026, 11, 24, 8, 0, tzinfo=UTC))], own
    assert acme.post(3).due_at == datetime(2026, 11, 24, 8, 0, tzinfo=UTC) and acme.post(3).due_local

    # an audience left without accounts between the dry run and confirm: nothing is created
    again = [["Segunda ola de rebajas", "2026-12-04 09:00", "", "audience:south", "", "", "", ""]]
    await acme.say("alice", f"/import {write(tmp_path, 'again.csv', plan_csv(again))}")
    with acme.herald.db.session() as session:
        for link in session.exec(select(AudienceAccount)).all():
            session.delete(link)
        session.commit()
    out = await acme.say("alice", "/import confirm")
    assert out.startswith("✋ Nothing was created: since the dry run of again.csv,") and \
        "no account reaches audience south any more" in out, out
    assert len(posts(acme)) == 3


async def test_a_comment_column_gives_the_post_its_first_comment(acme: Team, tmp_path: Path) -> None:
    header = ["text", "time", "accounts", "comment"]
    rows = [["Spring sale starts today", "2026-12-02 09:00", "brand-x", "Sizes and shops: https://shop.example/s"],
            ["No comment", "2026-12-02 10:00", "brand-x", ""],
            ["Bad comment", "2026-12-02 11:00", "brand-x", "bell \x07 here"]]
    out = await acme.say("alice", f"/import {write(tmp_path, 'comments.csv', plan_csv(rows, header))}")
    assert "✗ Row 4, column D (comment): it holds a control character (U+0007), which can't be published" in out, out
    out = await acme.say("alice", "/import confirm")
    assert out.startswith("✅ Imported comments.csv: 2 posts (#1–#2)."), out
    assert [p.comment for p in posts(acme)] == ["Sizes and shops: https://shop.example/s", None]
    assert "Sizes and shops" in await acme.say("alice", "/preview 1")
