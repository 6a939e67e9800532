"""Visits and conversions on the company site, read from its analytics (Plausible or Google Analytics 4):
`/analytics connect|off`, the periodic read, and the "clicks → visits → conversions" lines of /stats and
/report campaign.

- **What is read.** Herald tags every link of a post with `utm_medium=social` and
  `utm_content=post-<n>-<account>` (handlers/posts/links.py; `utm_source` names the network), so the site's
  analytics count the sessions each delivery brought; a post's accounts are summed. A read asks the analytics for sessions (and, with a goal, the visitors who completed it) per
  `utm_content` among `utm_medium=social` sessions, from the day the oldest post being read was published to
  today, and keeps one row per post (PostTraffic), replaced by each read.
- **How often.** On the metrics cadence (handlers/engagement/metrics.py) of the workspace's newest post of
  the last 30 days — every 10 minutes in its first two hours, hourly in its first day, every 6 hours in its
  first week, daily after — and never more often than READ_GAP (the read budget: at most 6 reads an hour, 2
  queries each, far under Plausible's 600 requests an hour per key and GA4's hourly property quota). A 429 waits
  what the service names; a refused key stops reading until /analytics connect is run again.
- **Several workers.** A read is claimed by pushing the source's `due_at` ahead with one conditional UPDATE.
- **Privacy.** Only aggregate counts per post are read and stored: no visitor, address or page.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from handlers.core.access import ADMINS
from handlers.core.audit import audit
from handlers.core.chat import Reply
from handlers.core.commands import Request, command, periodic
from handlers.core.context import Context
from handlers.core.errors import UserError
from handlers.core.lookups import get_workspace
from handlers.core.notices import send_once
from handlers.core.ports import AnalyticsError, AnalyticsErrorKind, AnalyticsQuery, Traffic
from handlers.core.when import show_time
from handlers.engagement.clicks import clicks_by
from handlers.engagement.metrics import CADENCE, next_metrics_at
from handlers.workspace.accounts import holds_secret
from storage.crypto import SecretBoxError
from storage.models import AnalyticsSource, Post, PostTraffic

log = logging.getLogger("herald.traffic")

LABELS = {"plausible": "Plausible", "ga4": "Google Analytics 4"}
USAGE = ("/analytics connect plausible url=<https://plausible.io or your own> key=<API key> site=<site id> "
         "[goal=<goal name>] · /analytics connect ga4 property=<property id> credentials=<service account JSON "
         "file or the JSON itself> [goal=<key event name>] · /analytics · /analytics off")
KEYS = {"plausible": ({"url", "key", "site"}, {"goal"}), "ga4": ({"property", "credentials"}, {"goal"})}
# utm_content of Herald's links (handlers/posts/links.py): post-<number>-<account>, or post-<number> before
CONTENT_RE = re.compile(r"post-(\d+)(?:-(.+))?")
READ_GAP = timedelta(minutes=10)  # the read budget: one read per workspace per this much time, at most
LEASE = timedelta(minutes=5)  # a claimed read not finished by then is taken again
IDLE = timedelta(days=1)  # a workspace with no post of the last 30 days looks again this often
REFUSED_WAIT = timedelta(days=1)  # after a refused key: the team reconnects; Herald only looks again daily
RATE_LIMIT_WAIT = timedelta(minutes=15)
HORIZON = CADENCE[-1][0]  # posts older than this (30 days) keep their last reading
SECRET_RE = re.compile(r"(?<![\w.\-])(key|credentials)\s*=\s*['\"]?\{?", re.IGNORECASE)


def typed_secret(text: str) -> bool:
    """An /analytics line holding a Plausible key= or an inline GA4 service account (credentials={…})."""
    for match in SECRET_RE.finditer(text):
        if match.group(1).lower() == "key" or match.group(0).rstrip().endswith("{"):
            return True
    return False


def secret_in_group() -> Reply:
    return Reply(
        "That message holds an analytics key, so I didn't store anything and removed it where I could. "
        "Consider the key seen by this chat: revoke it and make a new one. "
        "Then send /analytics connect to me in a private chat.",
        error=True, delete_command=True,
    )


def parse_connect(text: str) -> tuple[str, dict[str, str]]:
    """'plausible url=… key=…' → ("plausible", pairs); an inline credentials={…} JSON is taken whole."""
    provider, _, rest = text.strip().partition(" ")
    provider = provider.lower()
    if provider not in KEYS:
        raise UserError(f"'{provider or '?'}' isn't an analytics service I read. Choose plausible or ga4.\n"
                        f"Usage: {USAGE}")
    pairs: dict[str, str] = {}
    inline = re.search(r"(?<![\w.\-])credentials=(\{.*\})", rest, re.DOTALL)
    if inline:
        pairs["credentials"] = inline.group(1)
        rest = rest[:inline.start()] + rest[inline.end():]
    try:
        tokens = shlex.split(rest)
    except ValueError as exc:
        raise UserError(f"I couldn't read that ({exc}). Usage: {USAGE}") from None
    for token in tokens:
        key, sep, value = token.partition("=")
        key = key.lower()
        if not sep or not key:
            raise UserError(f"'{token}' isn't key=value. Usage: {USAGE}")
        if key in pairs:
            raise UserError(f"{key}= is given twice.")
        pairs[key] = value
    required, optional = KEYS[provider]
    unknown = sorted(set(pairs) - required - optional)
    if unknown:
        raise UserError(f"{LABELS[provider]} doesn't take {', '.join(k + '=' for k in unknown)}. Usage: {USAGE}")
    missing = sorted(k for k in required if not pairs.get(k))
    if missing:
        raise UserError(f"Missing {', '.join(k + '=' for k in missing)} for {LABELS[provider]}. Usage: {USAGE}")
    return provider, pairs


def split_settings(provider: str, pairs: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(settings kept in the clear, secrets sealed), checked."""
    goal = pairs.get("goal") or None
    if provider == "plausible":
        url = pairs["url"].rstrip("/")
        if not re.fullmatch(r"https?://[^\s/]+(/[^\s]*)?", url):
            raise UserError("url= must be the Plausible address, e.g. https://plausible.io or https://stats.example.com")
        return {"url": url, "site": pairs["site"], "goal": goal}, {"key": pairs["key"]}
    prop = pairs["property"].removeprefix("properties/")
    if not prop.isdigit():
        raise UserError("property= is the GA4 property's number (Admin → Property details), e.g. property=123456789")
    raw = pairs["credentials"]
    if not raw.lstrip().startswith("{"):
        try:
            raw = Path(raw).expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            raise UserError(f"I can't read the service account file {pairs['credentials']} ({exc.strerror}).") from None
    try:
        account = json.loads(raw)
    except ValueError:
        raise UserError("credentials= isn't the service account's JSON key (it doesn't read as JSON).") from None
    if not isinstance(account, dict) or not account.get("client_email") or not account.get("private_key"):
        raise UserError("credentials= isn't a service account key: it needs client_email and private_key "
                        "(IAM → Service accounts → Keys → Add key → JSON).")
    return {"property": prop, "goal": goal, "client_email": account["client_email"]}, {"service_account": account}


def describe(source: AnalyticsSource, tz: str, now: datetime) -> str:
    s = source.settings
    where = f"{s.get('url')} site {s.get('site')}" if source.provider == "plausible" else f"property {s.get('property')}"
    goal = f"goal '{s['goal']}'" if s.get("goal") else "no goal (visits only)"
    read = f"last read {show_time(source.read_at, tz, now)}" if source.read_at else "not read yet"
    secret = "key" if source.provider == "plausible" else "service account key"
    lines = [f"Site analytics: {LABELS.get(source.provider, source.provider)} ({where}), {goal}; {secret} stored "
             f"encrypted; {read}."]
    if source.due_at is not None:
        lines.append(f"Next read {show_time(source.due_at, tz, now)}.")
    if source.note:
        lines.append(f"⚠ The last read failed: {source.note}")
    return "\n".join(lines)


@command(
    "analytics",
    usage="/analytics [connect plausible|ga4 key=value… | off]",
    example="/analytics connect plausible url=https://plausible.io key=… site=example.com goal=Signup",
    summary="read visits and conversions per post from the site's Plausible or Google Analytics (admins connect)",
    details=(
        "/analytics shows what is connected and when it was last read. Admins: /analytics connect plausible "
        "url=… key=… site=… [goal=…] or /analytics connect ga4 property=… credentials=<service account JSON> "
        "[goal=<key event>] (keys only in a private chat; checked with a real read, nothing stored when it is "
        "refused); /analytics off forgets the key and the numbers read. /stats and /report campaign then show "
        "clicks → visits → conversions."
    ),
    group="Engagement",
)
async def analytics(req: Request) -> Reply:
    ctx = req.ctx
    text = req.command.text.strip()
    if not req.command.chat.private and (typed_secret(text) or holds_secret(ctx.networks, text)):
        return secret_in_group()
    ws_id = req.need_workspace()
    verb, _, rest = text.partition(" ")
    verb = verb.lower()
    now = ctx.clock.now()
    if not verb:
        with ctx.db.session() as session:
            ws = get_workspace(session, ws_id)
            source = session.exec(select(AnalyticsSource).where(AnalyticsSource.workspace_id == ws_id)).first()
            if source is None:
                return Reply("No site analytics connected. " + USAGE.split(" · ")[0] + " (or ga4: /help analytics).")
            return Reply(describe(source, ws.timezone, now))
    if verb == "off":
        req.require_role(ADMINS, "turn site analytics off")
        with ctx.db.session() as session:
            source = session.exec(select(AnalyticsSource).where(AnalyticsSource.workspace_id == ws_id)).first()
            if source is None:
                return Reply("No site analytics was connected; nothing changed.")
            session.delete(source)
            session.execute(delete(PostTraffic).where(col(PostTraffic.workspace_id) == ws_id))
            audit(session, ctx, ws_id, None, req.actor_name, "analytics off", source.provider)
        return Reply(f"{LABELS.get(source.provider, source.provider)} is disconnected: its key and the visits and "
                     "conversions read are deleted.")
    if verb != "connect":
        raise UserError(f"Usage: {USAGE}")
    req.require_role(ADMINS, "connect site analytics")
    provider, pairs = parse_connect(rest)
    settings, secrets = split_settings(provider, pairs)
    if ctx.analytics is None:
        raise UserError("This Herald can't reach site analytics (no HTTP client). Nothing was saved.")
    today = now.date()
    try:
        await ctx.analytics.read(provider, settings, secrets, AnalyticsQuery(today - timedelta(days=1), today))
    except AnalyticsError as exc:
        raise UserError(f"{LABELS[provider]} didn't accept this: {exc.reason}. Nothing was saved.") from None
    with ctx.db.session() as session:
        source = session.exec(select(AnalyticsSource).where(AnalyticsSource.workspace_id == ws_id)).first()
        again = source is not None
        if source is None:
            source = AnalyticsSource(workspace_id=ws_id, provider=provider)
            session.add(source)
        elif source.provider != provider:
            session.execute(delete(PostTraffic).where(col(PostTraffic.workspace_id) == ws_id))
        source.provider, source.settings = provider, settings
        source.credentials = ctx.secrets.seal(secrets)
        source.connected_at, source.read_at, source.due_at, source.note = now, None, now, None
        audit(session, ctx, ws_id, None, req.actor_name, "analytics connect", provider)
    goal = f", goal '{settings['goal']}'" if settings.get("goal") else " (no goal=: visits only)"
    secret = "key" if provider == "plausible" else "service account key"
    return Reply(f"{'Reconnected' if again else 'Connected'} {LABELS[provider]}{goal}. The {secret} works and is "
                 "stored encrypted. I read visits per post on the metrics cadence; /stats and /report campaign show "
                 "clicks → visits → conversions.", private=True)


# --- reading -------------------------------------------------------------------------------------------------


def next_read(newest: datetime | None, now: datetime) -> datetime:
    """The next read: the metrics cadence of the newest post, never sooner than READ_GAP."""
    due = next_metrics_at(newest, now) if newest is not None else None
    return max(due or now + IDLE, now + READ_GAP)


def claim(ctx: Context, now: datetime) -> list[int]:
    """The sources due now, claimed by pushing their due_at a LEASE ahead (one worker reads each)."""
    with ctx.db.session() as session:
        due = session.exec(select(AnalyticsSource.id).where(col(AnalyticsSource.due_at) <= now)).all()
        claimed = []
        for source_id in due:
            done = session.execute(
                update(AnalyticsSource).where(col(AnalyticsSource.id) == source_id)
                .where(col(AnalyticsSource.due_at) <= now).values(due_at=now + LEASE))
            if getattr(done, "rowcount", 0):
                claimed.append(int(source_id or 0))
    return claimed


def recent_posts(session: Session, ws_id: int, now: datetime) -> dict[int, datetime]:
    rows = session.exec(select(Post.id, Post.published_at).where(Post.workspace_id == ws_id)
                        .where(col(Post.published_at) > now - HORIZON)).all()
    return {int(p): at for p, at in rows if p is not None and at is not None}


def store(session: Session, ws_id: int, posts: dict[int, datetime], read: dict[str, Traffic], goal: bool,
          now: datetime) -> None:
    """The posts' rows replaced by this read: one a delivery that brought visits (utm_content names the post and
    the account), one with zeros for a post none came from."""
    by_delivery: dict[tuple[int, str], Traffic] = {}
    for content, traffic in read.items():
        match = CONTENT_RE.fullmatch(content.strip())
        if match and int(match.group(1)) in posts:
            key = (int(match.group(1)), match.group(2) or "")
            was = by_delivery.get(key, Traffic(0, 0, 0 if goal else None))
            by_delivery[key] = Traffic(was.visits + traffic.visits, was.visitors + traffic.visitors,
                                       (was.conversions or 0) + (traffic.conversions or 0) if goal else None)
    for post_id in posts:
        if not any(p == post_id for p, _a in by_delivery):
            by_delivery[(post_id, "")] = Traffic(0, 0, 0 if goal else None)
    session.execute(delete(PostTraffic).where(col(PostTraffic.workspace_id) == ws_id)
                    .where(col(PostTraffic.post_id).in_(list(posts))))
    for (post_id, account), traffic in sorted(by_delivery.items()):
        session.add(PostTraffic(workspace_id=ws_id, post_id=post_id, account=account, visits=traffic.visits,
                                visitors=traffic.visitors, conversions=traffic.conversions, read_at=now))


async def read_one(ctx: Context, source_id: int, now: datetime) -> bool:
    assert ctx.analytics is not None
    with ctx.db.session() as session:
        source = session.get(AnalyticsSource, source_id)
        if source is None:
            return False
        provider, settings, ws_id, sealed = source.provider, dict(source.settings), source.workspace_id, source.credentials
        connected = source.connected_at
        posts = recent_posts(session, ws_id, now)
    newest = max(posts.values(), default=None)
    note: str | None = None
    refused = ""
    due = next_read(newest, now)
    read: dict[str, Traffic] | None = None
    if posts:
        start = min(posts.values()).astimezone(UTC).date()
        try:
            read = await ctx.analytics.read(provider, settings, ctx.secrets.open(sealed),
                                            AnalyticsQuery(start, now.astimezone(UTC).date()))
        except SecretBoxError as exc:
            note, due = str(exc), now + REFUSED_WAIT
        except AnalyticsError as exc:
            note = exc.reason
            if exc.kind == AnalyticsErrorKind.RATE_LIMITED:
                due = now + (timedelta(seconds=exc.retry_after) if exc.retry_after else RATE_LIMIT_WAIT)
            elif exc.kind == AnalyticsErrorKind.REFUSED:
                due = now + REFUSED_WAIT
                refused = exc.reason
            log.warning("reading %s for workspace %s failed: %s", provider, ws_id, exc.reason)
    with ctx.db.session() as session:
        source = session.get(AnalyticsSource, source_id)
        if source is None:  # turned off meanwhile
            return False
        if read is not None:
            store(session, ws_id, posts, read, bool(settings.get("goal")), now)
            source.read_at = now
        source.note, source.due_at = note, due
    if refused:  # once per connection: the team fixes it, Herald only looks again daily
        stamp = connected.isoformat() if connected else ""
        await send_once(ctx, f"analytics-refused:{source_id}:{stamp}", ws_id, Reply(
            f"⚠ {refused} while reading visits and conversions, so they stop updating. An admin can run "
            "/analytics connect again (in a private chat) with a working key; /analytics shows the state."))
    return read is not None


@periodic("traffic", every=READ_GAP)
async def read_traffic(ctx: Context) -> int:
    """Read every due workspace's site analytics; how many reads succeeded."""
    if ctx.analytics is None:
        return 0
    now = ctx.clock.now()
    done = 0
    for source_id in claim(ctx, now):
        try:
            done += await read_one(ctx, source_id, now)
        except Exception:
            log.exception("reading site analytics %s failed", source_id)
    return done


# --- showing -------------------------------------------------------------------------------------------------


@dataclass
class Funnel:
    clicks: int
    visits: int
    conversions: int | None

    def text(self) -> str:
        conv = f"{self.conversions:,}" if self.conversions is not None else "—"
        rate = ""
        if self.conversions is not None and self.visits:
            rate = f" ({100 * self.conversions / self.visits:.1f}% of visits converted)"
        return f"{self.clicks:,} → {self.visits:,} → {conv}{rate}"


def source_of(session: Session, ws_id: int) -> AnalyticsSource | None:
    return session.exec(select(AnalyticsSource).where(AnalyticsSource.workspace_id == ws_id)).first()


def traffic_rows(session: Session, ws_id: int, post_ids: list[int]) -> list[PostTraffic]:
    return list(session.exec(select(PostTraffic).where(PostTraffic.workspace_id == ws_id)
                             .where(col(PostTraffic.post_id).in_(post_ids))).all()) if post_ids else []


def delivery_traffic(session: Session, ws_id: int, post_ids: list[int]) -> dict[tuple[int, str], PostTraffic] | None:
    """(post, account name) → its visits and conversions as last read; None without site analytics."""
    if source_of(session, ws_id) is None:
        return None
    return {(t.post_id, t.account): t for t in traffic_rows(session, ws_id, post_ids)}


def _sum(rows: list[PostTraffic], goal: bool) -> tuple[int, int | None]:
    visits = sum(t.visits for t in rows)
    return visits, sum(t.conversions or 0 for t in rows) if goal else None


def funnel_lines(session: Session, ws_id: int, post_ids: list[int], tz: str, now: datetime, *,
                 per_post: bool = False, per_account: bool = False) -> list[str]:
    """'Clicks → visits → conversions: 12 → 9 → 2', for these posts (each post's accounts summed); per post or
    per account below it when asked; nothing without site analytics."""
    source = source_of(session, ws_id)
    if source is None or not post_ids:
        return []
    rows = traffic_rows(session, ws_id, post_ids)
    goal = source.settings.get("goal")
    label = LABELS.get(source.provider, source.provider)
    what = f"goal '{goal}'" if goal else "no goal set"
    if not rows:
        return [f"Clicks → visits → conversions: site visits not read yet from {label} ({what})."]
    when = f"read {show_time(max(t.read_at for t in rows if t.read_at), tz, now)}" \
        if any(t.read_at for t in rows) else "not read yet"
    clicks = clicks_by(session, workspace_id=ws_id, by="post", post_ids=post_ids)
    visits, conversions = _sum(rows, bool(goal))
    total = Funnel(sum(c.people for c in clicks.values()), visits, conversions)
    lines = [f"Clicks → visits → conversions: {total.text()} ({label}, {what}, {when})"]
    if per_post and len(post_ids) > 1:
        for p in post_ids:
            mine = [t for t in rows if t.post_id == p]
            if mine:
                lines.append(f"  #{p}: " + Funnel(clicks[p].people if p in clicks else 0,
                                                   *_sum(mine, bool(goal))).text())
    if per_account:
        named = sorted((t for t in rows if t.account and t.visits), key=lambda t: (-t.visits, t.account))
        if named:
            lines.append("  Visits per account: " + " · ".join(
                f"{t.account} {t.visits:,}" + (f" ({t.conversions:,} converted)" if goal else "") for t in named))
    return lines
