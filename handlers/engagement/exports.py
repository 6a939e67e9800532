"""/export <period>: a CSV of the posts published in a period, one row per account it went out on.

Columns (COLUMNS): the post, when that account published it (ISO 8601 in the workspace timezone),
campaign, network, account, link, each number from the latest reading (empty where the network
doesn't give it or nothing was read yet), engagements, engagement rate in % with its basis (views,
else followers), the clicks on Herald's short links (people, and preview fetches apart), when the numbers were read, the text that went out, and the audience the delivery reached (empty without one). The file is UTF-8 with a
byte-order mark so spreadsheet programs read accents right; cells a spreadsheet would run as a formula
(starting with = + - @) get a leading apostrophe.
"""

from __future__ import annotations

import csv
import io
import re
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from handlers.core.chat import Attachment, Reply
from handlers.core.commands import Request, command
from handlers.core.lookups import get_workspace
from handlers.engagement.clicks import ClickCount, clicks_by_target
from handlers.engagement.reports import PERIOD_HELP, Sent, parse_period, plural, sent_deliveries, span_text
from handlers.engagement.traffic import delivery_traffic
from storage.models import METRIC_FIELDS, Delivery, PostTraffic

NUMBERS = tuple("views" if f == "impressions" else f for f in METRIC_FIELDS)  # named the way the chat names them
COLUMNS = (
    "post_id", "published_at", "campaign", "network", "account", "url", *NUMBERS,
    "engagements", "engagement_rate_pct", "rate_basis", "short_link_clicks", "short_link_fetches", "site_visits",
    "site_conversions", "metrics_read_at",
    "text", "audience",
)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(text: str | None) -> str:
    """A text cell that a spreadsheet shows as text, never runs as a formula."""
    if not text:
        return ""
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_rows(rows: list[Sent], tz: str, clicks: dict[int, ClickCount] | None = None,
             traffic: dict[tuple[int, str], PostTraffic] | None = None) -> bytes:
    """The file; `clicks` holds each delivery's short-link clicks (none: it had no short link), `traffic` the
    site's visits and conversions per (post, account) (None: no site analytics connected)."""
    clicks = clicks or {}
    zone = ZoneInfo(tz)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for sent in rows:
        published = sent.sent_at or sent.published_at
        rate = sent.rate()
        numbers = ["" if sent.numbers.get(f) is None else str(sent.numbers[f]) for f in METRIC_FIELDS]
        writer.writerow([
            sent.post_id, published.astimezone(zone).isoformat(timespec="seconds"), cell(sent.campaign),
            cell(sent.network), cell(sent.account), cell(sent.url), *numbers,
            sent.engagements if sent.read_at else "", f"{rate[0]:.2f}" if rate else "", rate[1] if rate else "",
            *((clicks[sent.delivery_id].people, clicks[sent.delivery_id].fetches + clicks[sent.delivery_id].floods)
              if sent.delivery_id in clicks else ("", "")),
            *site_cells(traffic, sent),
            sent.read_at.astimezone(zone).isoformat(timespec="seconds") if sent.read_at else "",
            cell(sent.sent_text or sent.text),
            cell(sent.audience),
        ])
    return out.getvalue().encode("utf-8-sig")


def site_cells(traffic: dict[tuple[int, str], PostTraffic] | None, sent: Sent) -> tuple[str, str]:
    """site_visits and site_conversions of one delivery: empty without site analytics or before its first read,
    0 once read; conversions empty without a goal."""
    if traffic is None:
        return "", ""
    row = traffic.get((sent.post_id, sent.account))
    if row is None:
        read = any(post == sent.post_id for post, _account in traffic)
        return ("0", "") if read else ("", "")
    return str(row.visits), "" if row.conversions is None else str(row.conversions)


def delivery_clicks(session: Session, rows: list[Sent]) -> dict[int, ClickCount]:
    """Each exported delivery's short-link clicks so far, by delivery id (only those with short links)."""
    if not rows:
        return {}
    targets = clicks_by_target(session, sorted({r.post_id for r in rows}))
    accounts = dict(session.exec(select(Delivery.id, Delivery.account_id).where(
        col(Delivery.id).in_([r.delivery_id for r in rows]))).all())
    return {r.delivery_id: targets[(r.post_id, accounts[r.delivery_id], r.audience_id)] for r in rows
            if (r.post_id, accounts.get(r.delivery_id), r.audience_id) in targets}


def file_name(workspace: str, key: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", workspace.lower()).strip("-") or "workspace"
    return f"herald-{slug}-{key}.csv"


@command(
    "export",
    usage="/export [period]", example="/export 2026-11",
    summary="a CSV file of the posts published in a period and their latest numbers, one row per account",
    details=(
        f"Periods: {PERIOD_HELP}; /export alone is the last 7 days.\n"
        "Columns: " + ", ".join(COLUMNS) + ". published_at and metrics_read_at are in the workspace timezone; "
        "engagement_rate_pct = engagements ÷ views (rate_basis views), else ÷ followers where the network gives "
        "no views; an empty number means the network doesn't give it or nothing was read yet. "
        "short_link_clicks: people who clicked the account's short links so far (Herald's own count, /links); "
        "short_link_fetches: the preview fetches and flood clicks counted apart; empty without short links. "
        "site_visits and site_conversions: what the site's analytics counted for the account's links "
        "(/analytics); empty when none is connected or before the first read. audience: the audience the "
        "delivery reached, empty without one."
    ),
    group="Engagement",
)
async def export(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    now = ctx.clock.now()
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        tz = ws.timezone
        period = parse_period(req.command.text, now, tz, req.spec.usage)
        rows = sent_deliveries(session, ws_id, window=period.window)
        workspace = ws.name
        clicks = delivery_clicks(session, rows)
        traffic = delivery_traffic(session, ws_id, sorted({r.post_id for r in rows}))
    span = span_text(period.window.start, period.window.end, tz)
    if not rows:
        return Reply(f"Nothing was published {period.during} ({span}), so there's nothing to export.")
    posts = len({r.post_id for r in rows})
    data = csv_rows(rows, tz, clicks, traffic)
    return Reply(
        f"📄 Export of {period.name} ({span}): {plural(posts, 'post')} published, one row per account it went "
        f"out on ({plural(len(rows), 'row')}), with their latest numbers. Times are in {tz}.",
        attachment=Attachment(file_name(workspace, period.key), "text/csv", data),
    )
