"""Clicks on Herald's short links, counted honestly: what the web app's redirect hands over (bot/web/) becomes
click rows here, away from the redirect itself.

- **People apart from preview fetchers.** A network or chat app fetches a link to draw its preview card
  (Twitterbot, facebookexternalhit, TelegramBot, Discordbot, Slackbot, LinkedInBot, Bluesky's cardyb, a
  Mastodon server's "http.rb … Mastodon", …). `fetcher_of` names them: Herald's own list first (the fetchers a
  general parser misses or names vaguely), then PyPI `ua-parser` (anything it calls a spider). A fetch is
  stored with the fetcher's name and reported apart from people.
- **A repeat counts once.** The same visitor on the same short link within 30 minutes is one click: checked in
  memory and again by the INSERT itself (`… WHERE NOT EXISTS` a click of that visitor in the window), so
  workers sharing the table agree.
- **No address is stored.** A visitor is an HMAC of (address, browser) under the day's random key
  (`ClickKey`, shared by the workers through the database; keys older than yesterday are deleted), so a stored
  hash can't be traced back to an address once its day's key is gone.
- **Bounded.** Beyond `SOURCE_PER_MINUTE` new clicks a minute from one address, or `ROWS_PER_MINUTE` rows a
  minute in all, clicks are aggregated: one row per short link and minute with its count (visitor None,
  fetcher "flood"), so a flood can't grow the table faster than that.

One INSERT per stored click; `store` runs in the web app's writer thread, never in the redirect.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

from sqlalchemy import bindparam, delete, text
from sqlalchemy import select as sql_select  # sqlmodel's select types at most four columns
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select
from ua_parser import parse as parse_user_agent

from storage.db import Database
from storage.models import Account, Click, ClickKey, ShortLink, UTCDateTime

REPEAT_WINDOW = timedelta(minutes=30)
SOURCE_PER_MINUTE = 60  # new clicks a minute from one address before they are aggregated
ROWS_PER_MINUTE = 20_000  # rows a minute this process writes before every click is aggregated
FLOOD = "flood"
MAX_REMEMBERED = 200_000  # visitors remembered for the repeat window (the oldest forgotten first)

# Herald's own list: (what the user agent holds, lowercase) → the fetcher's name. Checked before ua-parser,
# which misses some (Bluesky's cardyb, Mastodon's http.rb) and names others vaguely.
KNOWN_FETCHERS: tuple[tuple[str, str], ...] = (
    ("telegrambot", "TelegramBot"),  # first: it says "like TwitterBot"
    ("twitterbot", "Twitterbot (X)"),
    ("facebookexternalhit", "facebookexternalhit (Facebook, Instagram, Threads)"),
    ("facebookcatalog", "facebookexternalhit (Facebook, Instagram, Threads)"),
    ("meta-externalagent", "facebookexternalhit (Facebook, Instagram, Threads)"),
    ("discordbot", "Discordbot"),
    ("slackbot", "Slackbot"),
    ("slack-imgproxy", "Slackbot"),
    ("linkedinbot", "LinkedInBot"),
    ("cardyb", "Bluesky cardyb"),
    ("bluesky", "Bluesky cardyb"),
    ("mastodon", "Mastodon server"),
    ("pinterestbot", "Pinterestbot"),
    ("pinterest/", "Pinterestbot"),
    ("whatsapp", "WhatsApp"),
    ("skypeuripreview", "Skype"),
    ("redditbot", "Redditbot"),
    ("embedly", "Embedly"),
    ("iframely", "Iframely"),
    ("googlebot", "Googlebot"),
    ("bingbot", "Bingbot"),
    ("applebot", "Applebot"),
    ("tiktok", "TikTok"),
    ("bytespider", "TikTok"),
)


@lru_cache(maxsize=4096)
def fetcher_of(user_agent: str) -> str | None:
    """The preview fetcher (or other robot) a user agent names, None for a person's browser. An empty user
    agent is a script, not a person."""
    agent = user_agent.strip()
    if not agent:
        return "no user agent"
    lowered = agent.lower()
    for needle, name in KNOWN_FETCHERS:
        if needle in lowered:
            return name
    parsed = parse_user_agent(agent)
    if parsed.device is not None and parsed.device.family == "Spider":
        return parsed.user_agent.family if parsed.user_agent is not None else "robot"
    return None


@dataclass(frozen=True)
class Hit:
    """One answered request to a short link, as the web app saw it (the address only ever lives here)."""

    link_id: int
    at: datetime
    address: str
    user_agent: str


@dataclass(frozen=True)
class ClickRow:
    link_id: int
    at: datetime
    visitor: str | None
    fetcher: str | None
    count: int = 1


# the casts name each parameter's type once: PostgreSQL refuses a parameter used twice with two guessed types
INSERT_ONCE = text(
    "INSERT INTO click (link_id, at, visitor, fetcher, count) "
    "SELECT CAST(:link_id AS INTEGER), :at, CAST(:visitor AS VARCHAR), CAST(:fetcher AS VARCHAR), 1 "
    "WHERE NOT EXISTS (SELECT 1 FROM click WHERE link_id = CAST(:link_id AS INTEGER) "
    "AND visitor = CAST(:visitor AS VARCHAR) AND at > :since)"
).bindparams(bindparam("at", type_=UTCDateTime()), bindparam("since", type_=UTCDateTime()))


class ClickCounter:
    """Turns hits into click rows (see the module doc). Not thread-safe: one writer calls `store`."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.keys: dict[str, bytes] = {}
        self.seen: OrderedDict[tuple[int, str], datetime] = OrderedDict()  # (link, visitor) → counted at
        self.minute: datetime | None = None  # the minute the counts below are for
        self.sources: dict[str, int] = {}  # address hash → new clicks this minute
        self.written = 0  # single rows this minute

    def key(self, day: str) -> bytes:
        """The day's key, shared by every worker: read, or made (the first worker of the day wins); keys older
        than yesterday are deleted."""
        key = self.keys.get(day)
        if key is not None:
            return key
        yesterday = (date.fromisoformat(day) - timedelta(days=1)).isoformat()
        with self.db.session() as session:
            row = session.get(ClickKey, day)
            if row is None:
                try:
                    with session.begin_nested():
                        session.add(ClickKey(day=day, key=secrets.token_hex(32)))
                except IntegrityError:
                    pass  # another worker made it first
                row = session.get(ClickKey, day)
            assert row is not None
            value = bytes.fromhex(row.key)
            session.execute(delete(ClickKey).where(col(ClickKey.day) < yesterday))
        self.keys = {d: k for d, k in self.keys.items() if d >= yesterday} | {day: value}
        return value

    def hash(self, day: str, *parts: str) -> str:
        return hmac.new(self.key(day), "\n".join(parts).encode("utf-8", "replace"), hashlib.sha256).hexdigest()[:32]

    def rows(self, hits: Iterable[Hit]) -> tuple[list[ClickRow], list[ClickRow]]:
        """(one row per click to insert once, aggregated flood rows)."""
        singles: list[ClickRow] = []
        floods: dict[tuple[int, datetime], int] = {}
        for hit in hits:
            day = hit.at.strftime("%Y-%m-%d")
            visitor = self.hash(day, hit.address, hit.user_agent)
            last = self.seen.get((hit.link_id, visitor))
            if last is not None and timedelta() <= hit.at - last < REPEAT_WINDOW:
                continue  # a repeat: counted once
            self.remember(hit.link_id, visitor, hit.at)
            minute = hit.at.replace(second=0, microsecond=0)
            if minute != self.minute:
                self.minute, self.sources, self.written = minute, {}, 0
            source = self.hash(day, hit.address)
            self.sources[source] = self.sources.get(source, 0) + 1
            if self.sources[source] > SOURCE_PER_MINUTE or self.written >= ROWS_PER_MINUTE:
                floods[(hit.link_id, minute)] = floods.get((hit.link_id, minute), 0) + 1
                continue
            self.written += 1
            singles.append(ClickRow(hit.link_id, hit.at, visitor, fetcher_of(hit.user_agent)))
        flood_rows = [ClickRow(link, at, None, FLOOD, n) for (link, at), n in floods.items()]
        return singles, flood_rows

    def remember(self, link_id: int, visitor: str, at: datetime) -> None:
        self.seen[(link_id, visitor)] = at
        self.seen.move_to_end((link_id, visitor))
        while self.seen:
            oldest_key, oldest = next(iter(self.seen.items()))
            if len(self.seen) <= MAX_REMEMBERED and at - oldest < REPEAT_WINDOW:
                break
            del self.seen[oldest_key]

    def store(self, hits: list[Hit]) -> int:
        """Writes a batch of hits in one transaction: one INSERT per click (skipped by the database when the
        visitor clicked that link within 30 minutes on another worker), one row per flooded link and minute.
        Returns the rows the batch asked to write."""
        singles, floods = self.rows(hits)
        if not singles and not floods:
            return 0
        with self.db.session() as session:
            if singles:
                session.connection().execute(INSERT_ONCE, [
                    {"link_id": r.link_id, "at": r.at, "visitor": r.visitor, "fetcher": r.fetcher,
                     "since": r.at - REPEAT_WINDOW} for r in singles])
            for r in floods:
                session.add(Click(link_id=r.link_id, at=r.at, visitor=None, fetcher=r.fetcher, count=r.count))
        return len(singles) + len(floods)


def find_link(db: Database, code: str) -> tuple[int, str] | None:
    """(link id, target) of a short link that answers, None when unknown or revoked."""
    with db.session() as session:
        row = session.exec(select(ShortLink.id, ShortLink.target, ShortLink.revoked_at)
                           .where(ShortLink.code == code)).first()
    if row is None or row[2] is not None or row[0] is None:
        return None
    return int(row[0]), str(row[1])


@dataclass
class ClickCount:
    people: int = 0
    fetches: int = 0
    floods: int = 0

    @property
    def total(self) -> int:
        return self.people + self.fetches + self.floods

    def fetch_share(self) -> str:
        """'3 preview fetches filtered (60%)'."""
        apart = self.fetches + self.floods
        if not self.total:
            return "no clicks yet"
        share = round(100 * apart / self.total)
        out = f"{self.fetches} preview fetch{'es' if self.fetches != 1 else ''}"
        if self.floods:
            out += f" and {self.floods} flood click{'s' if self.floods != 1 else ''}"
        return out + f" counted apart ({share}% of {self.total})"


def _add(counts: ClickCount, fetcher: str | None, n: int) -> None:
    if fetcher is None:
        counts.people += n
    elif fetcher == FLOOD:
        counts.floods += n
    else:
        counts.fetches += n


def clicks_by(session: Session, *, workspace_id: int, by: str, since: datetime | None = None,
              until: datetime | None = None, post_ids: list[int] | None = None) -> dict[int, ClickCount]:
    """Clicks on the workspace's short links grouped `by` "account" or "post" (id → counts)."""
    key = col(ShortLink.account_id) if by == "account" else col(ShortLink.post_id)
    query = (select(key, Click.fetcher, func.sum(Click.count)).join(ShortLink, col(ShortLink.id) == col(Click.link_id))
             .where(ShortLink.workspace_id == workspace_id))
    if since is not None:
        query = query.where(col(Click.at) >= since)
    if until is not None:
        query = query.where(col(Click.at) < until)
    if post_ids is not None:
        query = query.where(col(ShortLink.post_id).in_(post_ids))
    out: dict[int, ClickCount] = {}
    for owner, fetcher, n in session.exec(query.group_by(key, col(Click.fetcher))).all():
        _add(out.setdefault(int(owner), ClickCount()), fetcher, int(n or 0))
    return out


def clicks_by_audience(session: Session, *, workspace_id: int, post_ids: list[int],
                       until: datetime | None = None) -> dict[tuple[int | None, int], ClickCount]:
    """Clicks on these posts' short links made before `until`, per (audience, account): the audience of the
    delivery each link was made for (None: a delivery without one)."""
    query = (select(ShortLink.audience_id, ShortLink.account_id, Click.fetcher, func.sum(Click.count))
             .join(ShortLink, col(ShortLink.id) == col(Click.link_id))
             .where(ShortLink.workspace_id == workspace_id).where(col(ShortLink.post_id).in_(post_ids)))
    if until is not None:
        query = query.where(col(Click.at) < until)
    out: dict[tuple[int | None, int], ClickCount] = {}
    for audience_id, account_id, fetcher, n in session.exec(query.group_by(
            col(ShortLink.audience_id), col(ShortLink.account_id), col(Click.fetcher))).all():
        _add(out.setdefault((audience_id, int(account_id)), ClickCount()), fetcher, int(n or 0))
    return out


def clicks_by_target(session: Session, post_ids: list[int]) -> dict[tuple[int, int, int | None], ClickCount]:
    """(post, account, audience) → its short links' clicks, for every delivery that has short links (0 when never
    clicked); the audience is None for a delivery without one."""
    out = {(p, a, u): ClickCount() for p, a, u in session.exec(
        select(ShortLink.post_id, ShortLink.account_id, ShortLink.audience_id)
        .where(col(ShortLink.post_id).in_(post_ids))).all()}
    query = (sql_select(col(ShortLink.post_id), col(ShortLink.account_id), col(ShortLink.audience_id),
                        col(Click.fetcher), func.sum(Click.count))
             .join(ShortLink, col(ShortLink.id) == col(Click.link_id)).where(col(ShortLink.post_id).in_(post_ids))
             .group_by(col(ShortLink.post_id), col(ShortLink.account_id), col(ShortLink.audience_id),
                       col(Click.fetcher)))
    for post_id, account_id, audience_id, fetcher, n in session.execute(query).all():
        _add(out.setdefault((post_id, account_id, audience_id), ClickCount()), fetcher, int(n or 0))
    return out


def total_clicks(counts: Iterable[ClickCount]) -> ClickCount:
    out = ClickCount()
    for one in counts:
        out.people += one.people
        out.fetches += one.fetches
        out.floods += one.floods
    return out


def _change(now: int, before: int) -> str:
    if before == 0:
        return "±0%" if now == 0 else "new"
    percent = round(100 * (now - before) / before)
    return "±0%" if percent == 0 else f"{percent:+d}%"


def period_click_lines(session: Session, workspace_id: int, start: datetime, end: datetime,
                       before: tuple[datetime, datetime] | None = None, post_ids: list[int] | None = None) -> list[str]:
    """Clicks on the workspace's short links made in [start, end): people per account and the posts they
    clicked most, preview fetches apart, and (given the period before) the change. Nothing when the workspace
    has no short link."""
    if session.exec(select(ShortLink.id).where(ShortLink.workspace_id == workspace_id).limit(1)).first() is None:
        return []
    by_account = clicks_by(session, workspace_id=workspace_id, by="account", since=start, until=end,
                           post_ids=post_ids)
    total = total_clicks(by_account.values())
    head = f"Short-link clicks: {total.people:,} by people"
    if before is not None:
        earlier = total_clicks(clicks_by(session, workspace_id=workspace_id, by="account", since=before[0],
                                         until=before[1], post_ids=post_ids).values())
        head += f" (before: {earlier.people:,}, {_change(total.people, earlier.people)})"
    lines = [f"{head} · {total.fetch_share()}"]
    if not total.people:
        return lines
    names = dict(session.exec(select(Account.id, Account.name).where(
        col(Account.id).in_(list(by_account)))).all())
    ranked = sorted(((c.people, names.get(a, f"account {a}")) for a, c in by_account.items() if c.people),
                    key=lambda pair: (-pair[0], pair[1]))
    lines.append("  Per account: " + " · ".join(f"{name} {n:,}" for n, name in ranked))
    by_post = clicks_by(session, workspace_id=workspace_id, by="post", since=start, until=end, post_ids=post_ids)
    top = sorted(((c.people, p) for p, c in by_post.items() if c.people), key=lambda pair: (-pair[0], pair[1]))[:5]
    lines.append("  Most clicked: " + " · ".join(f"#{p} {n:,}" for n, p in top))
    return lines
