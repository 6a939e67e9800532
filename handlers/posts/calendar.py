"""The plan on the web, what it holds: /calendar's secret address, the posts a calendar link shows (the month, week
and list views and the ICS feed) and one post's page with the exact text each account receives.

bot/web/ draws the pages and the feed; what they contain is decided here. A calendar link belongs to one workspace
(narrowed to one campaign when made with one), so nothing of another workspace is reachable through it, and a post
page opens only a post that the link's calendar lists. Nothing shown names an internal id beyond the post number.
"""

from __future__ import annotations

import calendar as months
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, update
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from handlers.core.access import EDITORS
from handlers.core.audit import audit
from handlers.core.chat import Reply
from handlers.core.commands import Request, command
from handlers.core.context import Context
from handlers.core.errors import UserError
from handlers.core.lookups import delivery_audience, get_workspace, post_targets, target_label
from handlers.core.ports import PreviewCard
from handlers.core.when import show_time
from handlers.core.words import short_text, state_label
from handlers.posts.render import landing_link, render
from storage.models import CalendarLink, Media, Post, PostState, Workspace

TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{32}")
# what a calendar shows: posts on their way out and posts that went out
SHOWN = (PostState.IN_REVIEW, PostState.APPROVED, PostState.SCHEDULED, PostState.PUBLISHING, PostState.PUBLISHED,
         PostState.PARTIALLY_PUBLISHED, PostState.FAILED)
FIRST_WORDS = 80  # characters of a post's text in a calendar cell


def needs_public_url(ctx: Context) -> str:
    """Herald's public address, or a refusal naming the setting."""
    if not ctx.public_url:
        raise UserError("The plan on the web needs Herald's public address: set HERALD_PUBLIC_URL (see the README, "
                        "Configuration) and restart Herald. Nothing changed.")
    return ctx.public_url.rstrip("/")


def calendar_urls(ctx: Context, token: str) -> tuple[str, str]:
    """(the page, the ICS feed as webcal://) of a calendar token."""
    base = needs_public_url(ctx)
    feed = f"{base}/calendar/{token}.ics"
    return f"{base}/calendar/{token}", re.sub(r"^https?://", "webcal://", feed)


@command(
    "calendar",
    usage="/calendar [campaign] | /calendar revoke", example="/calendar spring",
    summary="a secret web address of the plan: a calendar page and a feed for Google, Outlook or Apple Calendar",
    details="Anyone holding the address sees the plan (scheduled, in review and published posts) until an editor "
            "runs /calendar revoke, which makes every earlier address answer 'not found' and gives a new one.",
    roles=EDITORS,
    group="Posts",
)
async def calendar(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    needs_public_url(ctx)
    words = req.words
    revoke = len(words) == 1 and words[0].lower() == "revoke"
    campaign = None if revoke or not words else " ".join(words)
    now = ctx.clock.now()
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        if revoke:
            gone = session.exec(update(CalendarLink).where(col(CalendarLink.workspace_id) == ws_id)
                                .where(col(CalendarLink.revoked_at).is_(None)).values(revoked_at=now)).rowcount
            audit(session, ctx, ws_id, None, req.actor_name, "calendar revoke", f"{gone} address(es)")
        link = None if revoke else session.exec(
            select(CalendarLink).where(CalendarLink.workspace_id == ws_id).where(CalendarLink.campaign == campaign)
            .where(col(CalendarLink.revoked_at).is_(None))).first()
        if link is None:
            link = CalendarLink(workspace_id=ws_id, campaign=campaign, token=secrets.token_urlsafe(24),
                                created_by=req.actor_name, created_at=now)
            session.add(link)
            audit(session, ctx, ws_id, None, req.actor_name, "calendar", f"campaign {campaign}" if campaign else "")
        page, feed = calendar_urls(ctx, link.token)
        scope = f"campaign {campaign}" if campaign else f"'{ws.name}'"
    head = (f"🔒 Every earlier calendar address of this workspace now answers 'not found'. The new one, for {scope}:"
            if revoke else f"🗓 The plan of {scope} on the web:")
    return Reply("\n".join([
        head,
        f"Page: {page}",
        f"Feed for Google Calendar, Outlook or Apple Calendar (subscribe by address): {feed}",
        "Anyone holding these addresses sees the plan, not just the team; /calendar revoke replaces them.",
    ]))


# --- what a calendar link shows ------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What a calendar token opens: the workspace's name and zone, the campaign it is narrowed to."""

    workspace_id: int
    name: str
    timezone: str
    campaign: str | None


@dataclass(frozen=True)
class Entry:
    """One post in a calendar: its number, when (UTC and in the workspace's zone), where, what and how far along."""

    number: int
    at: datetime
    local: datetime
    networks: tuple[str, ...]
    accounts: tuple[str, ...]
    campaign: str | None
    state: str
    words: str


def open_plan(session: Session, token: str) -> Plan | None:
    """The plan a calendar token opens; None for a malformed, unknown or revoked token."""
    if not TOKEN_RE.fullmatch(token):
        return None
    link = session.exec(select(CalendarLink).where(CalendarLink.token == token)).first()
    if link is None or link.revoked_at is not None:
        return None
    ws = session.get(Workspace, link.workspace_id)
    if ws is None:
        return None
    return Plan(link.workspace_id, ws.name, ws.timezone, link.campaign)


def _when(post: Post) -> datetime | None:
    return post.published_at or post.due_at


def _posts(plan: Plan) -> SelectOfScalar[Post]:
    query = (select(Post).where(Post.workspace_id == plan.workspace_id)
             .where(col(Post.state).in_([s.value for s in SHOWN])))
    if plan.campaign is not None:
        query = query.where(func.lower(Post.campaign) == plan.campaign.lower())
    return query


def entries(session: Session, plan: Plan, start: datetime | None = None, end: datetime | None = None) -> list[Entry]:
    """The posts of the plan with a time in [start, end) (every one without bounds), in time order."""
    when = func.coalesce(Post.published_at, Post.due_at)
    query = _posts(plan).where(when.is_not(None))
    if start is not None:
        query = query.where(when >= start)
    if end is not None:
        query = query.where(when < end)
    zone = ZoneInfo(plan.timezone)
    found = []
    for post in session.exec(query.order_by(when, col(Post.id))).all():
        at = _when(post)
        assert at is not None and post.id is not None
        pairs = post_targets(session, post)
        accounts = [account for _d, account in pairs]
        found.append(Entry(
            number=post.id, at=at, local=at.astimezone(zone), networks=tuple(sorted({a.network for a in accounts})),
            accounts=tuple(target_label(a, delivery_audience(session, d)) for d, a in pairs),
            campaign=post.campaign, state=state_label(post), words=short_text(post.text, FIRST_WORDS),
        ))
    return found


def local_span(plan: Plan, first: date, days: int) -> tuple[datetime, datetime]:
    """The UTC bounds of `days` local days from `first` in the plan's zone (a DST day keeps its 23 or 25 hours)."""
    zone = ZoneInfo(plan.timezone)
    start = datetime.combine(first, time(), zone)
    return start, datetime.combine(first + timedelta(days=days), time(), zone)


def month_weeks(year: int, month: int) -> list[list[date]]:
    """The weeks (Monday first) that cover a month, each seven days, days of the months around included."""
    return months.Calendar(firstweekday=0).monthdatescalendar(year, month)


# --- one post, as each account receives it ---------------------------------------------------------


AccountText = PreviewCard  # one account's text as the web and the previews show it


@dataclass(frozen=True)
class PostView:
    """A post as the web shows it: what each account will publish (or published), its images, its time."""

    number: int
    revision: int
    state: str
    campaign: str | None
    time: str
    accounts: tuple[AccountText, ...]
    media: tuple[tuple[str, str], ...]  # (sha256, content type) of each stored picture or video, in order


def post_view(ctx: Context, session: Session, post: Post, ws: Workspace) -> PostView:
    """What each target account receives — rendered exactly as publishing renders it — and the post's images."""
    assert post.id is not None
    texts = []
    for delivery, account in post_targets(session, post):
        audience = delivery_audience(session, delivery)
        label = target_label(account, audience)
        if delivery.text is not None and delivery.sent_at is not None:  # what went out, as it went
            texts.append(AccountText(label, account.network, delivery.text, landing_link(post, audience)))
            continue
        one = render(ctx, post, account, ws, checked=False, session=session, audience=audience)
        texts.append(AccountText(label, account.network, one.text, one.link))
    stored = {m.id: m for m in session.exec(select(Media).where(col(Media.id).in_(post.media or [-1]))
                                            .where(Media.workspace_id == ws.id)).all()}
    media = tuple((stored[i].sha256, stored[i].content_type) for i in post.media if i in stored)
    at = _when(post)
    when = show_time(at, post.due_tz or ws.timezone) if at else "not scheduled"
    return PostView(post.id, post.revision, state_label(post), post.campaign, when, tuple(texts), media)


def plan_post(ctx: Context, session: Session, plan: Plan, number: int) -> PostView | None:
    """The post numbered `number` if this plan lists it (its workspace, its campaign, a shown state), else None."""
    post = session.exec(_posts(plan).where(Post.id == number)).first()
    if post is None or _when(post) is None:
        return None
    return post_view(ctx, session, post, get_workspace(session, plan.workspace_id))


def first_picture(session: Session, workspace_id: int, view: PostView) -> bytes | None:
    """The bytes of the post's first stored picture (not a video), for its previews; None without one."""
    for sha256, kind in view.media:
        if kind.startswith("image/"):
            data = session.exec(select(Media.data).where(Media.sha256 == sha256)
                                .where(Media.workspace_id == workspace_id).limit(1)).first()
            return bytes(data) if data is not None else None
    return None
