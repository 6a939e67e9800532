"""A CSV plan as /import reads it: the file's encoding, its header and columns, and the model of one row.

`decode` reads UTF-8 (its byte-order mark skipped), UTF-16 with a mark, else the encoding charset-normalizer finds
(a tie goes to the one spreadsheets save in), and says which; `read_table` reads the rows with the csv module
(comma, semicolon or tab; rows numbered as a spreadsheet numbers them, the header is row 1) and refuses more than
MAX_ROWS; `check_header` refuses a header Herald can't read (no header, a column twice, an unknown column, an
audiences column, no text column) and names each variant column's network or account; `PlanRow` is the pydantic
model of one row on its own. The workspace's checks of a row and the command are in handlers/posts/imports.py.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import io
import unicodedata
from dataclasses import dataclass
from typing import Annotated, Any

from charset_normalizer import from_bytes
from pydantic import AfterValidator, BaseModel, ConfigDict, field_validator

from handlers.core.context import Context
from handlers.core.errors import UserError
from handlers.core.words import short_text
from handlers.posts.drafts import CAMPAIGN_RE, MAX_TEXT, URL_RE
from storage.models import Account

MAX_ROWS = 1_000
COLUMNS = ("text", "time", "zone", "accounts", "link", "campaign", "image", "comment", "submit")
ALIASES = {"account": "accounts", "media": "image", "picture": "image", "when": "time", "timezone": "zone",
           "tz": "zone", "url": "link"}
VARIANT_PREFIX = "text_"
YES = frozenset({"yes", "y", "true", "1", "x", "submit", "oui", "ja", "sí", "si", "да"})
NO = frozenset({"no", "n", "false", "0", "draft", "non", "nein", "нет", ""})
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
    comment: str = ""  # the first comment, posted right after the post (like /draft's comment= line)
    submit: bool | None = None
    variants: dict[str, Annotated[str, AfterValidator(_post_text)]] = {}  # column name (text_x) → text

    @field_validator("text", "time", "zone", "accounts", "link", "campaign", "image")
    @classmethod
    def _plain(cls, value: str) -> str:
        return _readable(value)

    @field_validator("text", "comment")
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
        raise UserError(f"{column.where_first}: a plan can't name audiences yet. Nothing was imported. Name the "
                        "accounts in an 'accounts' column instead (see /accounts), and after the import aim a post "
                        "at audiences with /targets <post> audience:<name>.")
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
