"""Reports in the chat: /report day|week — what went out, totals per network, the top posts."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from sqlmodel import col, select

from handlers.cards import short_text
from handlers.chat import Reply
from handlers.common import Request, get_workspace, show_time
from handlers.engagement import LABELS, post_total
from handlers.errors import UserError
from handlers.registry import command
from storage.models import METRIC_FIELDS, Post, PostState

PERIODS = {"day": timedelta(days=1), "week": timedelta(days=7)}
ENGAGEMENT_FIELDS = ("likes", "comments", "shares", "quotes", "saves", "clicks")


def summarize(numbers: dict[str, int]) -> str:
    return " · ".join(f"{numbers[f]:,} {LABELS[f]}" for f in METRIC_FIELDS if numbers.get(f)) or "no numbers yet"


@command(
    "report",
    usage="/report [day|week]", example="/report week",
    summary="what was published in the last day or week, totals per network, and the top posts",
    group="Engagement",
)
async def report(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    period = (req.command.text.strip().lower() or "week")
    if period not in PERIODS:
        raise UserError(f"'{period}' isn't a period. Usage: {req.spec.usage}")
    now = ctx.clock.now()
    since = now - PERIODS[period]
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        posts = session.exec(
            select(Post).where(Post.workspace_id == ws_id).where(col(Post.published_at).is_not(None))
            .where(col(Post.published_at) > since).order_by(col(Post.published_at))
        ).all()
        previous_count = len(session.exec(
            select(Post.id).where(Post.workspace_id == ws_id).where(col(Post.published_at).is_not(None))
            .where(col(Post.published_at) > since - PERIODS[period]).where(col(Post.published_at) <= since)
        ).all())
        title = f"📈 Report for the last {period} ({show_time(since, ws.timezone)} → {show_time(now, ws.timezone)})"
        if not posts:
            return Reply(f"{title}\nNothing was published in this period (the one before: {previous_count}).")
        totals: dict[str, int] = defaultdict(int)
        networks: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        ranked = []
        for post in posts:
            post_totals, per_network = post_total(session, post)
            for field, value in post_totals.items():
                totals[field] += value
            for network, numbers in per_network.items():
                for field, value in numbers.items():
                    networks[network][field] += value
            ranked.append((sum(post_totals.get(f, 0) for f in ENGAGEMENT_FIELDS), post))
        partial = [p for p in posts if PostState(p.state) != PostState.PUBLISHED]
        lines = [
            title,
            f"Published: {len(posts)} post(s) (the {period} before: {previous_count})"
            + (f"; {len(partial)} only partly: " + ", ".join(f"#{p.id}" for p in partial) if partial else ""),
            f"Total: {summarize(totals)}",
            "Per network:",
            *(f"  {network}: {summarize(numbers)}" for network, numbers in sorted(networks.items())),
            "Top posts:",
        ]
        ranked.sort(key=lambda pair: (-pair[0], pair[1].id or 0))
        for score, post in ranked[:3]:
            lines.append(f"  #{post.id} · {score:,} engagements · {short_text(post.text, 50)}")
    return Reply("\n".join(lines))
