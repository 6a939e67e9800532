"""Planning from a spreadsheet: /import reads a CSV plan and answers with a dry run; /import confirm creates its posts.

The file comes in as `Command.media` (a Telegram document, a Discord attachment, a path in the console). It is
decoded (UTF-8, with or without a byte-order mark, else the encoding charset-normalizer detects, named in the
answer), read by the csv module (comma, semicolon or tab), its header checked (known columns, no duplicates,
variant columns `text_<network or account>`), and each row validated by a pydantic model, then against the
workspace: the accounts exist, the time (read like /schedule reads it, handlers/core/when.py) is in the future,
the zone is a real one, the pictures are there (web addresses are downloaded through the `Fetcher` port and
checked like /attach's; `#12` reuses a post's), and the text of every target fits its network, counted by the
network's own rules (posts/render.py). Nothing is created by the dry run: the good
rows, resolved, are kept as a pending `PlanImport`, so a restart doesn't lose it. /import confirm creates every
good row's post (drafts, or submitted for approval) in one transaction, re-checking what may have changed since;
/import cancel drops the dry run. A file already imported (same bytes) is refused.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import difflib
import hashlib
import io
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any

from charset_normalizer import from_bytes
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, field_validator
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from handlers.core.access import EDITORS
from handlers.core.audit import audit
from handlers.core.chat import Attachment, MediaIn, Reply
from handlers.core.commands import Param, Request, command
from handlers.core.context import Context
from handlers.core.errors import UserError
from handlers.core.lookups import get_workspace
from handlers.core.notices import tell_team
from handlers.core.ports import FetchError
from handlers.core.when import WhenError, parse_timezone, parse_when, show_time
from handlers.core.words import short_text
from handlers.posts.drafts import CAMPAIGN_RE, MAX_TEXT, URL_RE, set_targets
from handlers.posts.media import MAX_IMAGE_BYTES, MAX_ITEMS, sniff, store_media
from handlers.posts.render import render, variant_key
from handlers.posts.rules import approved_now, rearm
from storage.models import (
    Account,
    ImportState,
    Media,
    PlanImport,
    Post,
    PostState,
    Workspace,
    move_post,
)

MAX_ROWS = 1_000
MAX_FILE_BYTES = 10 * 1024 * 1024
SHOWN_ERRORS = 25  # errors listed in the chat; every one is in the attached report
SHOWN_ROWS = 5  # good rows described in the chat; every one is in the attached report
COLUMNS = ("text", "time", "zone", "accounts", "link", "campaign", "image", "submit")
ALIASES = {"account": "accounts", "media": "image", "picture": "image", "when": "time", "timezone": "zone",
           "tz": "zone", "url": "link"}
VARIANT_PREFIX = "text_"
YES = frozenset({"yes", "y", "true", "1", "x", "submit", "oui", "ja", "sí", "si", "да"})
NO = frozenset({"no", "n", "false", "0", "draft", "non", "nein", "нет", ""})
MAX_FETCH_BYTES = MAX_IMAGE_BYTES  # one picture named by its web address
MAX_FETCHES = 200  # different web addresses in one file
MAX_FETCH_TOTAL = 200 * 1024 * 1024  # all of them together
FETCH_AT_ONCE = 4
HERALD_MEDIA_RE = re.compile(r"/media/([0-9a-f]{64})(?:\.\w+)?$", re.IGNORECASE)
POST_REF_RE = re.compile(r"(?:#|post\s*:?\s*)(\d{1,9})", re.IGNORECASE)
EXAMPLE = ("text,time,zone,accounts,link,campaign,text_x,submit\n"
           "Spring sale starts today!,2027-01-04 09:00,Europe/Paris,brand-x brand-bsky,https://shop.example/sale,"
           "spring,Spring sale 🌸,no")


def column_letter(index: int) -> str:
    """The spreadsheet's name of a column: 0 → A, 25 → Z, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _readable(value: str) -> str:
    """Refuse a cell holding control characters or halves of characters (they can't be stored or published)."""
    for char in value:
        kind = unicodedata.category(char)
        if (kind == "Cc" and char not in "\n\r\t") or kind == "Cs":
            raise ValueError(f"it holds a control character (U+{ord(char):04X}), which can't be published")
    return value


def _post_text(value: str) -> str:
    """A post's text or a variant: readable, and at most as long as Herald keeps posts."""
    value = _readable(value.strip())
    if len(value) > MAX_TEXT:
        raise ValueError(f"the text is {len(value):,} characters; Herald keeps posts up to {MAX_TEXT:,}")
    return value


class PlanRow(BaseModel):
    """One row of a plan as written in the file, checked on its own (the workspace checks come after)."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    text: str = ""
    time: str = ""
    zone: str = ""
    accounts: str = ""
    link: str = ""
    campaign: str = ""
    image: str = ""
    submit: bool | None = None
    variants: dict[str, Annotated[str, AfterValidator(_post_text)]] = {}  # column name (text_x) → text

    @field_validator("text", "time", "zone", "accounts", "link", "campaign", "image")
    @classmethod
    def _plain(cls, value: str) -> str:
        return _readable(value)

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        return _post_text(value)

    @field_validator("variants")
    @classmethod
    def _variants(cls, value: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in value.items() if v}

    @field_validator("link")
    @classmethod
    def _link(cls, value: str) -> str:
        if value and not URL_RE.fullmatch(value):
            raise ValueError(f"'{short_text(value, 40)}' isn't a web address; links start with https://")
        return value

    @field_validator("campaign")
    @classmethod
    def _campaign(cls, value: str) -> str:
        if value and not CAMPAIGN_RE.fullmatch(value):
            raise ValueError("a campaign is one word of letters, digits, '-' or '_' (at most 40)")
        return value

    @field_validator("submit", mode="before")
    @classmethod
    def _submit(cls, value: Any) -> bool | None:
        word = str(value or "").strip().lower()
        if not word:
            return None
        if word in YES:
            return True
        if word in NO:
            return False
        raise ValueError(f"'{short_text(str(value), 20)}' isn't yes or no (leave it empty for the /import option)")


# -- the file -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str  # as named to the team
    note: str = ""  # what the team should know about how it was read


def decode(data: bytes) -> Decoded:
    """The file's text: UTF-8 (its byte-order mark skipped), UTF-16 with a mark, else the detected encoding."""
    if not data.strip():
        raise UserError("That file is empty. Nothing was imported. " + example_hint())
    if data.startswith(b"PK\x03\x04") or data.startswith(b"\xd0\xcf\x11\xe0"):
        raise UserError("That's a spreadsheet file (Excel or similar), not a CSV. Nothing was imported. Save it as "
                        "CSV (File › Save as / Download › CSV) and send that file.")
    for bom, name in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                      (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(bom):
            try:
                text = data[len(bom):].decode(name)
            except UnicodeDecodeError:
                raise UserError(f"That file starts like {name.upper()} (a byte-order mark) but isn't valid "
                                f"{name.upper()}. Nothing was imported. Save it as CSV UTF-8 and send it again.") from None
            return _text_only(Decoded(text, name.upper(), f"Read as {name.upper()} (its byte-order mark skipped)."))
    try:
        return _text_only(Decoded(data.decode("utf-8"), "UTF-8"))
    except UnicodeDecodeError:
        pass
    found = detect(data)
    if found is None:
        raise UserError("That file isn't text I can read (is it a CSV?). Nothing was imported. Save the plan as "
                        "CSV UTF-8 and send it again.")
    text, name = found
    encoding = name.replace("_", "-").upper()
    return _text_only(Decoded(text, encoding,
                              f"The file isn't UTF-8: I read it as {encoding} (detected). If accented letters look "
                              "wrong below, save it as CSV UTF-8 and import that instead."))


# Among encodings the detector finds equally likely, the ones spreadsheets save CSV in first: Excel's "CSV" on
# Western, Central European and Cyrillic Windows, then the ISO and Mac ones.
SPREADSHEET_ENCODINGS = ("cp1252", "cp1250", "cp1251", "iso8859_15", "latin_1", "iso8859_2", "mac_roman")


def detect(data: bytes) -> tuple[str, str] | None:
    """The text and encoding charset-normalizer finds most likely; a tie goes to the encoding spreadsheets use."""
    results = from_bytes(data)
    best = results.best()
    if best is None:
        return None
    tied = {name for match in results if match.chaos <= best.chaos and match.coherence >= best.coherence
            for name in match.could_be_from_charset}
    preferred = next((name for name in SPREADSHEET_ENCODINGS if name in tied), None)
    if preferred is not None:
        try:
            return data.decode(preferred), preferred
        except UnicodeDecodeError:
            pass
    return str(best), best.encoding


def _text_only(decoded: Decoded) -> Decoded:
    if "\x00" in decoded.text:
        raise UserError("That file holds NUL bytes, so it isn't a CSV text file. Nothing was imported. "
                        "Save the plan as CSV UTF-8 and send it again.")
    return decoded


def example_hint() -> str:
    return "A plan starts with a header row, e.g.:\n" + EXAMPLE


@dataclass(frozen=True)
class Column:
    index: int
    name: str  # as normalized: text, time, …, text_x
    written: str  # as written in the file

    @property
    def where(self) -> str:
        return f"column {column_letter(self.index)} ({self.written})"

    @property
    def where_first(self) -> str:
        """`where` at the start of a sentence."""
        return "C" + self.where[1:]


@dataclass(frozen=True)
class Table:
    columns: list[Column]
    rows: list[tuple[int, list[str]]]  # (spreadsheet row number: the header is row 1, its cells)


def normalized(name: str) -> str:
    word = "_".join(name.strip().lower().replace("-", " ").split())
    return ALIASES.get(word, word)


def read_table(text: str) -> Table:
    """The header and the rows of a CSV text; refuses a file too long or that the csv module can't read."""
    first_line = text.split("\n", 1)[0]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(first_line, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect, strict=True)
    header: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    number = 0
    try:
        for record in reader:
            number += 1
            if header is None:
                header = record
                continue
            if any(cell.strip() for cell in record):
                rows.append((number, record))
    except csv.Error as exc:
        raise UserError(f"Row {number + 1} can't be read as CSV ({exc}). Nothing was imported. A cell holding a "
                        "comma or a line break must be in double quotes, as spreadsheets write it.") from None
    if header is None or not any(cell.strip() for cell in header):
        raise UserError("That file has no header row. Nothing was imported. " + example_hint())
    if len(rows) > MAX_ROWS:
        raise UserError(f"That file has {len(rows):,} rows; an import takes at most {MAX_ROWS:,}. Nothing was "
                        f"imported. Split it into files of {MAX_ROWS:,} rows or fewer and import each.")
    if not rows:
        raise UserError("That file has a header but no rows to import. Nothing was imported.")
    columns = [Column(i, normalized(name), name.strip()) for i, name in enumerate(header)]
    return Table(columns, rows)


def check_header(ctx: Context, table: Table, accounts: list[Account]) -> dict[str, str]:
    """Refuse a header Herald can't read; returns each variant column's variant key (text_x → x)."""
    columns = table.columns
    known = set(COLUMNS)
    names = [c.name for c in columns]
    if not known.intersection(names) and not any(n.startswith(VARIANT_PREFIX) for n in names):
        cells = ", ".join(short_text(c.written, 30) for c in columns[:3])
        raise UserError(f"The first row should name the columns, but it reads '{cells}'. Nothing was imported. "
                        + example_hint())
    for column in columns:
        if not column.name and any(column.index < len(cells) and cells[column.index].strip()
                                   for _n, cells in table.rows):
            raise UserError(f"Column {column_letter(column.index)} has no name in the header row but holds "
                            "values. Nothing was imported. Name it (e.g. text_x) or delete it.")
    seen: dict[str, Column] = {}
    for column in columns:
        if not column.name:
            continue
        if column.name in seen:
            first = seen[column.name]
            raise UserError(f"The column '{column.name}' appears twice: {first.where} and {column.where}. "
                            "Nothing was imported. Keep one of them.")
        seen[column.name] = column
    if "audiences" in seen or "audience" in seen:
        column = seen.get("audiences") or seen["audience"]
        raise UserError(f"{column.where_first}: Herald has no audiences yet, so a plan can't name them. "
                        "Nothing was imported. Name the accounts in an 'accounts' column instead (see /accounts).")
    if "text" not in seen:
        raise UserError("The plan has no 'text' column (what each post says). Nothing was imported. "
                        + example_hint())
    by_name = {a.name.lower(): a.name for a in accounts}
    variants: dict[str, str] = {}
    for name, column in seen.items():
        if name in known:
            continue
        if name.startswith(VARIANT_PREFIX):
            word = column.written.strip()[len(VARIANT_PREFIX):].strip()
            key = by_name.get(word.lower()) or ctx.networks.resolve(word)
            if key is None:
                networks = ", ".join(sorted(p.key for p in ctx.networks.profiles()))
                raise UserError(f"{column.where_first}: '{word}' is neither a network ({networks}) nor one "
                                f"of your accounts ({', '.join(sorted(by_name.values())) or 'none yet'}). "
                                "Nothing was imported.")
            if key in variants.values():
                other = next(c for c, k in variants.items() if k == key)
                raise UserError(f"{column.where_first} and {seen[other].where} are both texts for {key}. "
                                "Nothing was imported. Keep one of them.")
            variants[name] = key
            continue
        close = difflib.get_close_matches(name, [*COLUMNS, "text_x"], n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise UserError(f"{column.where_first}: I don't know that column.{hint} Nothing was imported. "
                        f"Columns: {', '.join(COLUMNS)}, and text_<network or account> for a variant "
                        "(text_x, text_linkedin).")
    return variants


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
        if row.time and "time" not in failed and "zone" not in failed:
            try:
                when = parse_when(row.time, now=self.now, default_tz=zone, language=self.ws.language)
                due_at, due_tz = when.at, when.tz
                problem = approval_time_problem(self.ws, when.at, self.now)
                if problem:
                    error("time", problem)
            except WhenError as exc:
                error("time", str(exc))

        targets = self.targets(row.accounts, error) if "accounts" not in failed else None

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
        elif targets is not None and not failed & {"text", "variants", "link", "image"}:
            used = {k for a in targets for k in (a.name, str(a.settings.get("like") or a.network), a.network)}
            for name in row.variants:
                key = self.variant_keys[name]
                if key not in used:
                    error(name, f"none of this row's accounts is {key}, so this text would go nowhere")
            self.check_limits(row, variants, len(media) + len(urls), targets, error)

        if out.errors:
            return out
        assert targets is not None
        submit = row.submit
        out.plan = {
            "row": number, "text": row.text, "variants": variants, "link": row.link or None,
            "campaign": row.campaign or None, "accounts": [a.id for a in targets], "media": media, "fetch": urls,
            "due_at": due_at.isoformat() if due_at else None, "due_tz": due_tz, "submit": submit,
        }
        when_text = show_time(due_at, due_tz or zone) if due_at else "no time yet"
        what = "submitted for approval" if (self.submit_all if submit is None else submit) else "draft"
        out.becomes = (f"Row {number} → {what} · {when_text} · to {', '.join(a.name for a in targets)} · "
                       f"“{short_text(row.text or next(iter(variants.values()), ''), 40)}”")
        return out

    def targets(self, written: str, error: Complain) -> list[Account] | None:
        names = written.replace(",", " ").split()
        if not names or [n.lower() for n in names] == ["all"]:
            if not self.accounts:
                error("accounts", "no accounts are connected yet (/connect sandbox name=brand connects one)")
                return None
            return list(self.accounts)
        by_name = {a.name.lower(): a for a in self.accounts}
        unknown = [n for n in names if n.lower() not in by_name]
        if unknown:
            known = ", ".join(a.name for a in self.accounts) or "none yet"
            error("accounts", f"no account called {', '.join(unknown)} (accounts: {known})")
            return None
        chosen: list[Account] = []
        for name in names:
            if by_name[name.lower()] not in chosen:
                chosen.append(by_name[name.lower()])
        return sorted(chosen, key=lambda a: a.name)

    def check_limits(self, row: PlanRow, variants: dict[str, str], files: int, targets: list[Account],
                     error: Complain) -> None:
        """Each target's text as it would go out, checked by its network's own counting (posts/render.py)."""
        post = Post(workspace_id=self.ws.id or 0, author_platform="", author_user_id="", author_name="",
                    text=row.text, link=row.link or None, campaign=row.campaign or None, variants=variants,
                    media=[0] * files)  # a post not stored: render counts its files, never reads them
        column_of = {key: name for name, key in self.variant_keys.items()}
        for account in targets:
            check = render(self.ctx, post, account, self.ws).check
            if check is not None and not check.ok:
                key = variant_key(post, account)
                column = column_of.get(key, "text") if key else "text"
                error(column, f"for {account.name}, {check.line()}")


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
        "Attach a CSV file (in the console: /import /path/to/plan.csv). Columns: text, time, zone, accounts, "
        "link, campaign, image (https://… addresses, or #12 to reuse post #12's pictures), submit (yes/no), and text_<network> for a "
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
    decoded = decode(file.data)
    table = read_table(decoded.text)
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
        if decoded.note:
            lines.append(decoded.note)
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
            workspace_id=ws_id, filename=file.filename[:200], content_hash=digest, encoding=decoded.encoding,
            submit=submit, rows=[c.plan for c in good if c.plan is not None], errors=errors, created_by=req.actor_name,
            author_platform=req.command.actor.platform, author_user_id=req.command.actor.user_id, created_at=now,
        ))
        sent = sum(1 for c in good if c.plan is not None and (submit if c.plan["submit"] is None else c.plan["submit"]))
        what = ("as drafts" if not sent else "submitted for approval" if sent == len(good)
                else f"({len(good) - sent} as draft(s), {sent} submitted for approval)")
        skipped = f"; the {bad_rows} row(s) with errors are left out" if bad_rows else ""
        lines.append(f"/import confirm creates the {len(good)} posts {what}{skipped}. /import cancel drops "
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
    actor = req.command.actor
    with ctx.db.session() as session:
        first = pending_import(session, ws_id)
        if first is None:
            raise UserError("There's no import waiting to confirm. Attach a CSV plan to /import first.")
        seen_id = first.id
        urls = sorted({url for plan in first.rows for url in plan.get("fetch", [])})
    fetched = await fetch_all(ctx, urls) if urls else {}  # downloaded again: stored with the posts, or not at all
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
        created: list[int] = []
        submitted: list[int] = []
        stored: dict[str, int] = {}  # one stored file per web address, shared by the rows that name it
        for url, got in fetched.items():
            assert got.item is not None
            [stored[url]] = store_media(session, ws_id, (got.item,), req.actor_name)
        for plan in waiting.rows:
            post = Post(
                workspace_id=ws_id, author_platform=actor.platform, author_user_id=actor.user_id,
                author_name=req.actor_name, text=plan["text"], link=plan["link"], campaign=plan["campaign"],
                variants=plan["variants"], media=[*plan["media"], *(stored[u] for u in plan.get("fetch", []))],
                editor_platform=actor.platform,
                editor_user_id=actor.user_id, created_at=now, updated_at=now,
                due_at=datetime.fromisoformat(plan["due_at"]) if plan["due_at"] else None, due_tz=plan["due_tz"],
            )
            session.add(post)
            session.flush()
            assert post.id is not None
            set_targets(session, post, [accounts[a] for a in plan["accounts"]])
            audit(session, ctx, ws_id, post.id, req.actor_name, "import", f"row {plan['row']} of {waiting.filename}")
            if plan["submit"] if plan["submit"] is not None else waiting.submit:
                move_post(post, PostState.IN_REVIEW)
                if ws.approvals_needed == 0:
                    approved_now(ctx, post, ws)
                audit(session, ctx, ws_id, post.id, req.actor_name, "submit", "imported for approval")
                submitted.append(post.id)
            rearm(ctx, post, ws)
            created.append(post.id)
        session.execute(update(PlanImport).where(col(PlanImport.id) == waiting.id).values(post_ids=created))
        filename = waiting.filename
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
