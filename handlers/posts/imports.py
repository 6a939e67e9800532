"""Planning from a spreadsheet: /import reads a CSV plan and answers with a dry run; /import confirm creates its posts.

The file comes in as `Command.media` (a Telegram document, a Discord attachment, a path in the console) and is
read by handlers/posts/plan_file.py (encoding, header, one pydantic model per row). Here each row is checked
against the workspace: the accounts exist, the time (read like /schedule reads it, handlers/core/when.py) is in
the future, the zone is a real one, the pictures are there (web addresses are downloaded through the `Fetcher`
port and checked like /attach's; `#12` reuses a post's), and the text of every target fits its network, counted
by the network's own rules (posts/render.py). Nothing is created by the dry run: the good rows, resolved, are
kept as a pending `PlanImport`, so a restart doesn't lose it. /import confirm creates every good row's post
(drafts, or submitted for approval) in one transaction, re-checking what may have changed since; /import cancel
drops the dry run. A file already imported (same bytes) is refused."""

from __future__ import annotations

import asyncio
import codecs
import csv
import hashlib
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from handlers.core.access import EDITORS
from handlers.core.audit import audit
from handlers.core.chat import Attachment, MediaIn, Reply
from handlers.core.commands import Param, Request, command
from handlers.core.context import Context
from handlers.core.errors import UserError
from handlers.core.lookups import account_rules, audience_accounts, get_workspace, target_label
from handlers.core.notices import tell_team
from handlers.core.ports import FetchError
from handlers.core.when import WhenError, parse_timezone, parse_wall, parse_when, show_time, split_local
from handlers.core.words import short_text
from handlers.posts.drafts import resolve_targets, set_targets
from handlers.posts.local_time import (
    LOCAL_FORMAT,
    Group,
    LocalPlan,
    apply_plan,
    plan_groups,
    plan_local,
    split_options,
)
from handlers.posts.media import MAX_IMAGE_BYTES, MAX_ITEMS, sniff, store_media
from handlers.posts.plan_file import (
    MAX_ROWS,
    Column,
    PlanRow,
    Table,
    check_header,
    decode,
    example_hint,
    read_table,
)
from handlers.posts.render import AUDIENCE_PREFIX, render, variant_key
from handlers.posts.rules import approved_now, rearm
from handlers.posts.thread_parts import split_parts
from storage.models import (
    Account,
    Audience,
    ImportState,
    Media,
    PlanImport,
    Post,
    PostState,
    Workspace,
    move_post,
)

MAX_FILE_BYTES = 10 * 1024 * 1024
SHOWN_ERRORS = 25  # errors listed in the chat; every one is in the attached report
SHOWN_ROWS = 5  # good rows described in the chat; every one is in the attached report
MAX_FETCH_BYTES = MAX_IMAGE_BYTES  # one picture named by its web address
MAX_FETCHES = 200  # different web addresses in one file
MAX_FETCH_TOTAL = 200 * 1024 * 1024  # all of them together
FETCH_AT_ONCE = 4
HERALD_MEDIA_RE = re.compile(r"/media/([0-9a-f]{64})(?:\.\w+)?$", re.IGNORECASE)
POST_REF_RE = re.compile(r"(?:#|post\s*:?\s*)(\d{1,9})", re.IGNORECASE)


# -- the rows -------------------------------------------------------------------------------------------------


Complain = Callable[[str, str], None]  # (column, message): one error of the row being checked


@dataclass
class RowCheck:
    """One row after every check: what it becomes (`plan`, stored for confirm) or its errors."""

    number: int
    errors: list[str] = field(default_factory=list)
    plan: dict[str, Any] | None = None
    becomes: str = ""


@dataclass(frozen=True)
class Fetched:
    """A picture named by its web address: downloaded and checked (`item`), or why not (`problem`)."""

    item: MediaIn | None = None
    problem: str | None = None


def web_addresses(cell: str) -> list[str]:
    """The addresses in an `image` cell that Herald must download (not its own media links, not `#12`)."""
    return [part for part in cell.replace(",", " ").split()
            if part.lower().startswith(("http://", "https://")) and not HERALD_MEDIA_RE.search(part)]


async def fetch_all(ctx: Context, urls: list[str]) -> dict[str, Fetched]:
    """Download each address once (a few at a time) and check that it is a picture or video Herald can send."""
    if len(urls) > MAX_FETCHES:
        raise UserError(f"The plan names {len(urls)} different pictures by web address; an import fetches at most "
                        f"{MAX_FETCHES}. Nothing was imported. Split the file.")
    gate = asyncio.Semaphore(FETCH_AT_ONCE)

    async def one(url: str) -> Fetched:
        if ctx.fetcher is None:
            return Fetched(problem="this Herald doesn't fetch files from the web; attach it with /attach")
        async with gate:
            try:
                item = await ctx.fetcher.fetch(url, max_bytes=MAX_FETCH_BYTES)
            except FetchError as exc:
                return Fetched(problem=f"couldn't fetch it: {exc}")
        try:
            kind, name = sniff(item)
        except UserError as exc:
            return Fetched(problem=str(exc).rstrip("."))
        return Fetched(item=MediaIn(name, kind, item.data))

    results = await asyncio.gather(*(one(url) for url in urls))
    total = sum(len(f.item.data) for f in results if f.item is not None)
    if total > MAX_FETCH_TOTAL:
        raise UserError(f"The pictures this plan names add up to {total / 2**20:.0f} MB; an import fetches at most "
                        f"{MAX_FETCH_TOTAL // 2**20} MB. Nothing was imported. Split the file.")
    return dict(zip(urls, results, strict=True))


def refs_to_media(session: Session, ws_id: int, reference: str,
                  fetched: dict[str, Fetched]) -> tuple[list[int], list[str]]:
    """The pictures a plan's `image` cell names: another post's (`#12`), ones Herald serves (…/media/<sha256>),
    and ones on the web (their addresses, downloaded in `fetched`): (media ids, web addresses)."""
    post_ref = POST_REF_RE.fullmatch(reference)
    if post_ref:
        post = session.get(Post, int(post_ref.group(1)))
        if post is None or post.workspace_id != ws_id:
            raise ValueError(f"there's no post #{post_ref.group(1)} here to take the pictures of")
        if not post.media:
            raise ValueError(f"#{post.id} has no pictures to reuse")
        return list(post.media), []
    ids: list[int] = []
    urls: list[str] = []
    for part in reference.replace(",", " ").split():
        if part in fetched:
            problem = fetched[part].problem
            if problem:
                raise ValueError(f"{short_text(part, 60)}: {problem}")
            urls.append(part)
            continue
        found = HERALD_MEDIA_RE.search(part) or re.fullmatch(r"([0-9a-f]{64})", part, re.IGNORECASE)
        if found is None:
            raise ValueError(f"'{short_text(part, 40)}' is neither a web address (https://…) nor a picture Herald "
                             "holds; #12 reuses post #12's pictures")
        media = session.exec(select(Media.id).where(Media.workspace_id == ws_id)
                             .where(Media.sha256 == found.group(1).lower())).first()
        if media is None:
            raise ValueError(f"Herald holds no picture {found.group(1)[:12]}… in this workspace")
        ids.append(media)
    if len(ids) + len(urls) > MAX_ITEMS:
        raise ValueError(f"a post can hold at most {MAX_ITEMS} files; this names {len(ids) + len(urls)}")
    return ids, urls


@dataclass
class Checker:
    """Checks rows against one workspace at one moment."""

    ctx: Context
    session: Session
    ws: Workspace
    accounts: list[Account]
    columns: dict[str, Column]
    variant_keys: dict[str, str]
    now: datetime
    submit_all: bool = False  # the /import submit option: rows whose submit cell is empty go for approval
    fetched: dict[str, Fetched] = field(default_factory=dict)  # pictures named by web address, downloaded

    def where(self, name: str) -> str:
        column = self.columns.get(name)
        return column.where if column is not None else name

    def cells(self, record: list[str]) -> dict[str, Any]:
        values: dict[str, Any] = {"variants": {}}
        for name, column in self.columns.items():
            cell = record[column.index] if column.index < len(record) else ""
            if name in self.variant_keys:
                values["variants"][name] = cell
            else:
                values[name] = cell
        return values

    def check(self, number: int, record: list[str]) -> RowCheck:
        out = RowCheck(number)

        def error(column: str, message: str) -> None:
            out.errors.append(f"Row {number}, {self.where(column)}: {message}")

        if len(record) > len(self.columns) and any(c.strip() for c in record[len(self.columns):]):
            out.errors.append(f"Row {number}: it has {len(record)} cells but the header names "
                              f"{len(self.columns)} columns (a comma inside a text needs double quotes)")
            return out
        values = self.cells(record)
        failed: set[str] = set()
        try:
            row = PlanRow.model_validate(values)
        except ValidationError as exc:
            for details in exc.errors():
                loc = [str(part) for part in details["loc"]]
                name = loc[1] if loc[0] == "variants" and len(loc) > 1 else loc[0]
                error(name, str(details.get("ctx", {}).get("error") or details["msg"]))
                failed.add(loc[0])
            cleared = {k: ({} if k == "variants" else "") if k in failed else v for k, v in values.items()}
            row = PlanRow.model_validate(cleared)

        zone = self.ws.timezone
        if row.zone and "zone" not in failed:
            try:
                zone = parse_timezone(row.zone)
            except WhenError as exc:
                error("zone", str(exc))
                failed.add("zone")
        due_at, due_tz = None, None
        phrase, skip_holidays = split_options(row.time)
        phrase, local = split_local(phrase)
        if skip_holidays and not local:
            error("time", "skip=holidays goes with a time in each audience's zone, e.g. tue 9:00 local skip=holidays")
            failed.add("time")
        elif local:
            failed.add("local")  # checked below, once the row's audiences are known
        if row.time and not failed & {"time", "zone", "local"}:
            try:
                when = parse_when(row.time, now=self.now, default_tz=zone, language=self.ws.language)
                due_at, due_tz = when.at, when.tz
                problem = approval_time_problem(self.ws, when.at, self.now)
                if problem:
                    error("time", problem)
            except WhenError as exc:
                error("time", str(exc))

        picked = self.targets(row.accounts, error) if "accounts" not in failed else None
        local_plan: LocalPlan | None = None
        if "local" in failed and picked is not None:
            local_plan = self.local_times(phrase, skip_holidays, picked, error)
            if local_plan is not None:
                due_at, due_tz = local_plan.earliest, self.ws.timezone

        media: list[int] = []
        urls: list[str] = []
        if row.image and "image" not in failed:
            try:
                media, urls = refs_to_media(self.session, self.ws.id or 0, row.image, self.fetched)
            except ValueError as exc:
                error("image", str(exc))
                failed.add("image")

        variants = {self.variant_keys[name]: text for name, text in row.variants.items()}
        if not row.text and not variants and not media and not urls and "text" not in failed:
            error("text", "the post has no text")
        elif picked is not None and not failed & {"text", "variants", "link", "image"}:
            used = {k for a in picked.accounts for k in (a.name, account_rules(a), a.network)}  # as render.variant_key
            for name in row.variants:
                key = self.variant_keys[name]
                if key not in used:
                    error(name, f"none of this row's accounts is {key}, so this text would go nowhere")
            self.check_limits(row, variants, len(media) + len(urls), picked, error)

        if out.errors:
            return out
        assert picked is not None
        submit = row.submit
        out.plan = {
            "row": number, "text": row.text, "variants": variants, "link": row.link or None,
            "campaign": row.campaign or None, "comment": row.comment or None, "accounts": [a.id for a in picked.direct],
            "audiences": [a.id for a in picked.audiences], "media": media, "fetch": urls,
            "due_at": due_at.isoformat() if due_at else None, "due_tz": due_tz, "submit": submit,
            "local": {"wall": local_plan.wall.strftime(LOCAL_FORMAT), "skip_holidays": skip_holidays}
            if local_plan is not None else None,
        }
        when_text = show_time(due_at, due_tz or zone) if due_at else "no time yet"
        if local_plan is not None:
            when_text = f"{local_plan.label} in each audience's own zone, from {when_text}"
        what = "submitted for approval" if (self.submit_all if submit is None else submit) else "draft"
        out.becomes = (f"Row {number} → {what} · {when_text} · to {picked.label()} · "
                       f"“{short_text(row.text or next(iter(variants.values()), ''), 40)}”")
        return out

    def targets(self, written: str, error: Complain) -> Targets | None:
        """The row's accounts and audiences, written as /draft's to= (acme-x, audience:south,north, all)."""
        names = written.replace(",", " ").split()
        if not names or [n.lower() for n in names] == ["all"]:
            if not self.accounts:
                error("accounts", "no accounts are connected yet (/connect sandbox name=brand connects one)")
                return None
            return Targets(list(self.accounts), [], {})
        if any(n.lower().startswith(AUDIENCE_PREFIX) for n in names):
            try:
                direct, audiences, reach = resolve_targets(self.session, self.ws.id or 0, names,
                                                           "audience:south acme-x")
            except UserError as exc:
                error("accounts", str(exc).replace(" Nothing changed.", ""))
                return None
            return Targets(sorted(direct, key=lambda a: a.name), audiences, reach)
        by_name = {a.name.lower(): a for a in self.accounts}
        unknown = [n for n in names if n.lower() not in by_name]
        if unknown:
            known = ", ".join(a.name for a in self.accounts) or "none yet"
            error("accounts", f"no account called {', '.join(unknown)} (accounts: {known})")
            return None
        chosen = {by_name[name.lower()].id: by_name[name.lower()] for name in names}
        return Targets(sorted(chosen.values(), key=lambda a: a.name), [], {})

    def local_times(self, phrase: str, skip_holidays: bool, picked: Targets, error: Complain) -> LocalPlan | None:
        """A row's `tue 9:00 local`: the time in each of its audiences' zones (its accounts without an audience:
        the workspace's), refused like /schedule refuses it (no audience, a time a zone skips or has passed)."""
        if not picked.audiences:
            error("time", "'local' needs audiences in the accounts column (audience:south) to take their zones from")
            return None
        try:
            wall = parse_wall(phrase, now=self.now, default_tz=self.ws.timezone, language=self.ws.language)
        except WhenError as exc:
            error("time", str(exc))
            return None
        groups: dict[int | None, Group] = {a.id: Group(a, a.timezone, []) for a in picked.audiences}
        if picked.direct:
            groups[None] = Group(None, self.ws.timezone, [])
        try:
            plan = plan_groups(groups, wall, self.now, skip_holidays=skip_holidays, example="tue 9:00 local")
        except UserError as exc:
            error("time", str(exc).replace(" Nothing was changed.", ""))
            return None
        problem = approval_time_problem(self.ws, plan.earliest, self.now)
        if problem:
            error("time", problem)
            return None
        return plan

    def check_limits(self, row: PlanRow, variants: dict[str, str], files: int, picked: Targets,
                     error: Complain) -> None:
        """Each target's text as it would go out (an audience's with its landing page and tags), checked by its
        network's own counting (posts/render.py), and each part of a thread (`---` lines in the text) as well."""
        try:
            parts = split_parts(row.text)
        except UserError as exc:
            error("text", str(exc).replace(" Nothing was saved.", ""))
            return
        post = Post(workspace_id=self.ws.id or 0, author_platform="", author_user_id="", author_name="",
                    text=parts[0], parts=parts[1:], link=row.link or None, campaign=row.campaign or None,
                    variants=variants, media=[0] * files, comment=row.comment or None)  # a post not stored: render counts its files, never reads them
        column_of = {key: name for name, key in self.variant_keys.items()}
        for account, audience in picked.pairs():
            rendered = render(self.ctx, post, account, self.ws, audience=audience)
            whom = target_label(account, audience)
            if rendered.check is not None and not rendered.check.ok:
                key = variant_key(post, account)
                column = column_of.get(key, "text") if key else "text"
                error(column, f"for {whom}, {rendered.check.line()}")
            for step in rendered.steps:
                if step.check is not None and not step.check.ok:
                    error("text", f"for {whom}, {step.name}: {step.check.line()}")


@dataclass
class Targets:
    """A row's targets: accounts on their own (`direct`) and audiences, each with the accounts that reach it."""

    direct: list[Account]
    audiences: list[Audience]
    reach: dict[int, list[Account]]

    def pairs(self) -> list[tuple[Account, Audience | None]]:
        return [(a, None) for a in self.direct] + [(a, audience) for audience in self.audiences
                                                   for a in self.reach[audience.id or 0]]

    @property
    def accounts(self) -> list[Account]:
        """Every account the row reaches, once, by name."""
        seen = {a.id: a for a, _audience in self.pairs()}
        return sorted(seen.values(), key=lambda a: a.name)

    def label(self) -> str:
        return ", ".join([a.name for a in self.direct] + [f"audience {a.name}" for a in self.audiences])


def approval_time_problem(ws: Workspace, at: datetime, now: datetime) -> str | None:
    """Why a post not yet approved can't have this time (the workspace wants approval earlier), or None."""
    if ws.approvals_needed > 0 and at - timedelta(minutes=ws.approval_deadline_minutes) <= now:
        return (f"{show_time(at, ws.timezone)} leaves no time for approval: this workspace wants approval "
                f"{ws.approval_deadline_minutes} minutes before. Pick a later time")
    return None


# -- the command ----------------------------------------------------------------------------------------------


def workspace_accounts(session: Session, ws_id: int) -> list[Account]:
    return list(session.exec(select(Account).where(Account.workspace_id == ws_id).order_by(Account.name)).all())


def pending_import(session: Session, ws_id: int) -> PlanImport | None:
    return session.exec(select(PlanImport).where(PlanImport.workspace_id == ws_id)
                        .where(PlanImport.state == ImportState.PENDING.value)
                        .order_by(col(PlanImport.id).desc())).first()


def ranges(ids: list[int]) -> str:
    """#5–#9, #12: post numbers, consecutive ones as a range."""
    spans: list[list[int]] = []
    for number in sorted(ids):
        if spans and spans[-1][1] == number - 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    return ", ".join(f"#{a}" if a == b else f"#{a}–#{b}" for a, b in spans)


def report_file(filename: str, checks: list[RowCheck]) -> Attachment:
    """The full dry run, one line per row (and per error), as a CSV a spreadsheet opens."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["row", "status", "what it becomes or what is wrong"])
    for one in checks:
        if one.errors:
            writer.writerows([one.number, "error", problem] for problem in one.errors)
        else:
            writer.writerow([one.number, "ok", one.becomes])
    stem = re.sub(r"[^\w.\-]+", "_", filename.rsplit(".", 1)[0])[:60] or "plan"
    return Attachment(f"import-report-{stem}.csv", "text/csv", codecs.BOM_UTF8 + out.getvalue().encode("utf-8"))


@command(
    "import",
    usage="/import [submit] (with a CSV file) | /import confirm | /import cancel",
    example="/import (with plan.csv attached)",
    summary="plan many posts from a spreadsheet (CSV): a dry run first, then /import confirm creates them",
    details=(
        "Attach a CSV file (in the console: /import /path/to/plan.csv). Columns: text, time, zone, accounts (names, "
        "all, or audience:<name> like /draft's to=), "
        "link, campaign, image (https://… addresses, or #12 to reuse post #12's pictures), comment (the first comment), "
        "submit (yes/no), and text_<network> for a "
        "network's own text (text_x, text_linkedin). Herald answers with what each row becomes and every error "
        "with its row and column; nothing is created until /import confirm. /import submit sends the rows for "
        f"approval (a row's submit column wins). At most {MAX_ROWS:,} rows per file; the same file is imported once."
    ),
    roles=EDITORS,
    group="Posts",
    takes=(Param.choice("action", ("confirm", "cancel", "submit"), required=False,
                        description="confirm or cancel the waiting dry run; submit: rows go for approval"),
           Param.media("file", description="the plan: a spreadsheet saved as CSV")),
)
async def import_plan(req: Request) -> Reply:
    ws_id = req.need_workspace()
    words = [w.lower() for w in req.words]
    files = req.command.media
    if files:
        if len(files) > 1:
            raise UserError("Send one CSV file per /import. Nothing was imported.")
        if words not in ([], ["submit"]):
            raise UserError(f"With a file, /import takes only 'submit' (rows go for approval). Usage: {req.spec.usage}")
        return await dry_run(req, ws_id, files[0], submit=words == ["submit"])
    if words == ["confirm"]:
        return await confirm(req, ws_id)
    if words == ["cancel"]:
        return cancel(req, ws_id)
    if words:
        raise UserError(f"I can't find a file there. Attach the CSV to /import (in the console: /import "
                        f"/path/to/plan.csv, a file that exists). Usage: {req.spec.usage}")
    with req.ctx.db.session() as session:
        waiting = pending_import(session, ws_id)
        if waiting is not None:
            return Reply(f"The dry run of {waiting.filename} ({len(waiting.rows)} posts, {len(waiting.errors)} "
                         f"error(s), by {waiting.created_by}) is waiting: /import confirm creates the posts, "
                         "/import cancel drops it.")
    return Reply("Attach a CSV plan to /import and I'll show what each row becomes before anything is created. "
                 + example_hint())


async def dry_run(req: Request, ws_id: int, file: MediaIn, *, submit: bool) -> Reply:
    ctx = req.ctx
    if len(file.data) > MAX_FILE_BYTES:
        raise UserError(f"{file.filename} is {len(file.data) / 2**20:.1f} MB; a plan can be at most "
                        f"{MAX_FILE_BYTES // 2**20} MB. Nothing was imported.")
    digest = hashlib.sha256(file.data).hexdigest()
    decoded = await asyncio.to_thread(decode, file.data)  # a detection over megabytes: off the event loop
    table = await asyncio.to_thread(read_table, decoded.text)
    with ctx.db.session() as session:  # what refuses the whole file comes before any picture is fetched
        ws = get_workspace(session, ws_id)
        done = session.exec(select(PlanImport).where(PlanImport.workspace_id == ws_id)
                            .where(PlanImport.imported_hash == digest)).first()
        if done is not None:
            when = show_time(done.decided_at, ws.timezone) if done.decided_at else "earlier"
            raise UserError(f"This file was already imported ({done.filename}, by {done.decided_by} on {when}: "
                            f"{ranges(done.post_ids) or 'no posts'}). Nothing was imported again. To plan more, "
                            "import a file with only the new rows.")
        check_header(ctx, table, workspace_accounts(session, ws_id))
    image = next((c for c in table.columns if c.name == "image"), None)
    urls = sorted({url for _n, cells in table.rows if image is not None and image.index < len(cells)
                   for url in web_addresses(cells[image.index])})
    fetched = await fetch_all(ctx, urls) if urls else {}
    # the rows' checks (time words, counting) take a while for a long plan: off the event loop
    return await asyncio.to_thread(check_plan, req, ws_id, file, table, Read(decoded.note, decoded.encoding, digest),
                                   fetched, submit)


@dataclass(frozen=True)
class Read:
    """How the file was read: the note on its encoding, the encoding, the hash of its bytes."""

    note: str
    encoding: str
    digest: str


def check_plan(req: Request, ws_id: int, file: MediaIn, table: Table, read: Read, fetched: dict[str, Fetched],
               submit: bool) -> Reply:
    """Check every row against the workspace, keep the good ones as the pending import, and say what each becomes."""
    ctx = req.ctx
    now = ctx.clock.now()
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        accounts = workspace_accounts(session, ws_id)
        variant_keys = check_header(ctx, table, accounts)
        columns = {c.name: c for c in table.columns if c.name}
        checker = Checker(ctx, session, ws, accounts, columns, variant_keys, now, submit, fetched)
        checks = [checker.check(number, record) for number, record in table.rows]
        good = [c for c in checks if c.plan is not None]
        errors = [e for c in checks for e in c.errors]
        bad_rows = sum(1 for c in checks if c.errors)
        lines = [f"📋 Dry run of {file.filename}: {len(checks)} rows, {len(good)} ready, {bad_rows} with errors. "
                 "Nothing is created yet."]
        if read.note:
            lines.append(read.note)
        if errors:
            lines.append(f"{len(errors)} error(s):")
            lines += [f"  ✗ {e}" for e in errors[:SHOWN_ERRORS]]
            if len(errors) > SHOWN_ERRORS:
                lines.append(f"  … and {len(errors) - SHOWN_ERRORS} more in the attached report.")
        report = report_file(file.filename, checks)
        if not good:
            lines.append("No row can be imported; fix the file and send it again.")
            return Reply("\n".join(lines), error=True, attachment=report)
        lines.append("Ready:")
        lines += [f"  ✓ {c.becomes}" for c in good[:SHOWN_ROWS]]
        if len(good) > SHOWN_ROWS:
            lines.append(f"  … and {len(good) - SHOWN_ROWS} more rows (every row is in the attached report).")
        replaced = pending_import(session, ws_id)
        if replaced is not None:  # one dry run waits per workspace: this one replaces any other
            session.execute(update(PlanImport).where(col(PlanImport.workspace_id) == ws_id)
                            .where(col(PlanImport.state) == ImportState.PENDING.value)
                            .values(state=ImportState.CANCELLED.value, decided_by=req.actor_name, decided_at=now))
            lines.append(f"(The dry run of {replaced.filename} that was waiting is dropped: this one replaces it.)")
        session.add(PlanImport(
            workspace_id=ws_id, filename=file.filename[:200], content_hash=read.digest, encoding=read.encoding,
            submit=submit, rows=[c.plan for c in good if c.plan is not None], errors=errors, created_by=req.actor_name,
            author_platform=req.command.actor.platform, author_user_id=req.command.actor.user_id, created_at=now,
        ))
        sent = sum(1 for c in good if c.plan is not None and (submit if c.plan["submit"] is None else c.plan["submit"]))
        what = ("as drafts" if not sent else "submitted for approval" if sent == len(good)
                else f"({len(good) - sent} as draft(s), {sent} submitted for approval)")
        skipped = f"; the {bad_rows} row(s) with errors are left out" if bad_rows else ""
        posts = "the post" if len(good) == 1 else f"the {len(good)} posts"
        lines.append(f"/import confirm creates {posts} {what}{skipped}. /import cancel drops "
                     "this dry run.")
    return Reply("\n".join(lines), attachment=report)


def cancel(req: Request, ws_id: int) -> Reply:
    with req.ctx.db.session() as session:
        waiting = pending_import(session, ws_id)
        if waiting is None:
            raise UserError("There's no import waiting. Attach a CSV plan to /import to start one.")
        waiting.state = ImportState.CANCELLED.value
        waiting.decided_by, waiting.decided_at = req.actor_name, req.ctx.clock.now()
        return Reply(f"Import of {waiting.filename} cancelled; nothing was created.")


def recheck(session: Session, ws: Workspace, plan: dict[str, Any], accounts: dict[int, Account],
            now: datetime) -> str | None:
    """What changed since the dry run that stops this row (an account removed, its time passed), or None."""
    if any(a not in accounts for a in plan["accounts"]):
        return f"Row {plan['row']}: one of its accounts was removed since the dry run"
    for audience_id in plan.get("audiences", []):
        audience = session.get(Audience, audience_id)
        if audience is None or audience.removed_at is not None:
            return f"Row {plan['row']}: one of its audiences was removed since the dry run"
        if not audience_accounts(session, audience_id):
            return f"Row {plan['row']}: no account reaches audience {audience.name} any more"
    if plan["media"] and len(session.exec(select(Media.id).where(col(Media.id).in_(plan["media"]))).all()) \
            != len(set(plan["media"])):
        return f"Row {plan['row']}: its pictures are no longer kept"
    if plan["due_at"]:
        at = datetime.fromisoformat(plan["due_at"])
        if at <= now:
            return f"Row {plan['row']}: its time ({show_time(at, plan['due_tz'])}) has passed since the dry run"
        problem = approval_time_problem(ws, at, now)
        if problem:
            return f"Row {plan['row']}: {problem}"
    return None


async def confirm(req: Request, ws_id: int) -> Reply:
    ctx = req.ctx
    with ctx.db.session() as session:
        first = pending_import(session, ws_id)
        if first is None:
            raise UserError("There's no import waiting to confirm. Attach a CSV plan to /import first.")
        seen_id = first.id
        urls = sorted({url for plan in first.rows for url in plan.get("fetch", [])})
    fetched = await fetch_all(ctx, urls) if urls else {}  # downloaded again: stored with the posts, or not at all
    done = await asyncio.to_thread(create_posts, req, ws_id, seen_id, fetched)  # long: off the event loop
    for post in done.posts:  # committed: the clock looks at them from now on
        rearm(ctx, post, done.ws)
    ws, filename, submitted = done.ws, done.filename, done.submitted
    created = [post.id for post in done.posts if post.id is not None]
    drafts = len(created) - len(submitted)
    parts = [f"✅ Imported {filename}: {len(created)} posts ({ranges(created)})."]
    if drafts:
        parts.append(f"{drafts} draft(s): /posts draft lists them, /submit <post> sends one for approval.")
    if submitted:
        needed = ("approved at once (this workspace needs no approval)" if ws.approvals_needed == 0
                  else "submitted for approval")
        parts.append(f"{len(submitted)} {needed}: /queue shows what's planned.")
        if ws.approvals_needed > 0:
            await tell_team(ctx, ws_id, Reply(
                f"🔔 {req.actor_name} imported {len(submitted)} posts for approval from {filename}: "
                f"{ranges(submitted)}. /posts in_review lists them; /preview <post> shows one."),
                purpose="approvals", skip=req.command.chat)
    return Reply("\n".join(parts))


@dataclass
class Created:
    """What /import confirm created, committed: the posts (to arm on the clock) and which were submitted."""

    filename: str
    ws: Workspace
    posts: list[Post]
    submitted: list[int]


def create_posts(req: Request, ws_id: int, seen_id: int | None, fetched: dict[str, Fetched]) -> Created:
    """Create every row's post of the waiting import in one transaction, or refuse (UserError) and create none."""
    ctx = req.ctx
    actor = req.command.actor
    now = ctx.clock.now()
    with ctx.db.session() as session:
        waiting = pending_import(session, ws_id)
        if waiting is None or waiting.id != seen_id:
            raise UserError("The import waiting changed while I fetched its pictures (someone confirmed, cancelled "
                            "or replaced it). Nothing was created; /import shows what's waiting now.")
        ws = get_workspace(session, ws_id)
        accounts = {a.id: a for a in workspace_accounts(session, ws_id) if a.id is not None}
        stale = [p for p in (recheck(session, ws, plan, accounts, now) for plan in waiting.rows) if p]
        stale += [f"Row {plan['row']}: {short_text(url, 60)}: {fetched[url].problem}" for plan in waiting.rows
                  for url in plan.get("fetch", []) if fetched[url].problem]
        if stale:
            shown = "\n".join(f"  ✗ {s}" for s in stale[:SHOWN_ERRORS])
            raise UserError(f"Nothing was created: since the dry run of {waiting.filename},\n{shown}\n"
                            "/import cancel, fix the file and import it again.")
        try:  # the claim: one conditional UPDATE, and the file's hash unique among imported files
            claimed = session.execute(
                update(PlanImport).where(col(PlanImport.id) == waiting.id)
                .where(col(PlanImport.state) == ImportState.PENDING.value)
                .values(state=ImportState.CONFIRMED.value, imported_hash=waiting.content_hash,
                        decided_by=req.actor_name, decided_at=now)
            )
        except IntegrityError:
            raise UserError(f"{waiting.filename} was already imported, so nothing was created again. "
                            "/import cancel drops this dry run.") from None
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            raise UserError("That import was just confirmed or cancelled by someone else. Nothing more was created.")
        created: list[Post] = []
        submitted: list[int] = []
        stored: dict[str, int] = {}  # one stored file per web address, shared by the rows that name it
        for url, got in fetched.items():
            assert got.item is not None
            [stored[url]] = store_media(session, ws_id, (got.item,), req.actor_name)
        for plan in waiting.rows:
            parts = split_parts(plan["text"])  # a thread: its `---` lines (checked in the dry run)
            post = Post(
                workspace_id=ws_id, author_platform=actor.platform, author_user_id=actor.user_id,
                author_name=req.actor_name, text=parts[0], parts=parts[1:], link=plan["link"], campaign=plan["campaign"],
                comment=plan.get("comment"),
                variants=plan["variants"], media=[*plan["media"], *(stored[u] for u in plan.get("fetch", []))],
                editor_platform=actor.platform,
                editor_user_id=actor.user_id, created_at=now, updated_at=now,
                due_at=datetime.fromisoformat(plan["due_at"]) if plan["due_at"] else None, due_tz=plan["due_tz"],
            )
            session.add(post)
            session.flush()
            assert post.id is not None
            audiences = [a for a in (session.get(Audience, i) for i in plan.get("audiences", [])) if a is not None]
            set_targets(session, post, [accounts[a] for a in plan["accounts"]], audiences, new=True)
            if plan.get("local"):  # each audience's own time, placed as /schedule … local places it
                session.flush()
                wall = datetime.strptime(plan["local"]["wall"], LOCAL_FORMAT)
                placed = plan_local(session, post, ws, wall, now, skip_holidays=plan["local"]["skip_holidays"],
                                    example=f"tue {wall:%H:%M} local")
                apply_plan(session, post, placed)
                post.due_at, post.due_tz = placed.earliest, ws.timezone
            audit(session, ctx, ws_id, post.id, req.actor_name, "import", f"row {plan['row']} of {waiting.filename}")
            if plan["submit"] if plan["submit"] is not None else waiting.submit:
                move_post(post, PostState.IN_REVIEW)
                if ws.approvals_needed == 0:
                    approved_now(ctx, post, ws)
                audit(session, ctx, ws_id, post.id, req.actor_name, "submit", "imported for approval")
                submitted.append(post.id)
            created.append(post)
        session.execute(update(PlanImport).where(col(PlanImport.id) == waiting.id).values(post_ids=[p.id for p in created]))
        return Created(waiting.filename, ws, created, submitted)
