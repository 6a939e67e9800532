"""The plan on the web, what it holds: /calendar's secret address, the posts a calendar link shows (the month, week
and list views and the ICS feed) and one post's page with the exact text each account receives.

bot/web/ draws the pages and the feed; what they contain is decided here. A calendar link belongs to one workspace
(narrowed to one campaign and/or one audience when made with them), so nothing of another workspace is reachable
through it, and a post page opens only a post that the link's calendar lists. Nothing shown names an internal id
beyond the post number.

A post scheduled at each audience's local time (`/schedule 12 tue 9:00 local`: `Post.due_local`, each delivery's
own `due_at`) goes out at several moments. The workspace calendar shows it as one entry per distinct moment (the
audiences that share it named together, each with its own wall time, the entry placed at the team's time): a month
or week cell is a day in the team's zone and an audience's 09:00 can fall on another team day than the earliest
one's, so one entry listing every time would sit on the wrong day (or the wrong hour in the list) for some of them;
one entry per moment keeps every cell and the list in time order and matches the feed's one event per moment. An
audience calendar shows that audience's moment only, in its zone.
"""

from __future__ import annotations

import calendar as months
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, update
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from handlers.core.access import EDITORS
from handlers.core.audit import audit
from handlers.core.chat import Reply
from handlers.core.commands import Request, command
from handlers.core.context import Context
from handlers.core.errors import UserError
from handlers.core.lookups import (
    audience_name,
    delivery_audience,
    get_audience,
    get_workspace,
    post_targets,
    target_label,
)
from handlers.core.ports import PreviewCard
from handlers.core.when import format_when, show_time
from handlers.core.words import short_text, state_label
from handlers.posts.render import landing_link, render, variant_for
from storage.models import Account, Audience, CalendarLink, Delivery, Media, Post, PostState, Workspace

AUDIENCE_WORD = "audience:"
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
    usage="/calendar [campaign] [audience:<name>] | /calendar revoke", example="/calendar spring",
    summary="a secret web address of the plan: a calendar page and a feed for Google, Outlook or Apple Calendar",
    details="Anyone holding the address sees the plan (scheduled, in review and published posts) until an editor "
            "runs /calendar revoke, which makes every earlier address answer 'not found' and gives a new one. "
            "/calendar audience:south shows only the posts that reach that audience, at its time in its zone.",
    roles=EDITORS,
    group="Posts",
)
async def calendar(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    needs_public_url(ctx)
    words = req.words
    revoke = len(words) == 1 and words[0].lower() == "revoke"
    named = [] if revoke else [w for w in words if w.lower().startswith(AUDIENCE_WORD)]
    if len(named) > 1:
        raise UserError("One audience per calendar address, e.g. /calendar audience:south "
                        "(each audience can have its own). Nothing changed.")
    if named and not named[0][len(AUDIENCE_WORD):].strip():
        raise UserError("Which audience? Name it after 'audience:', e.g. /calendar audience:south. Nothing changed.")
    rest = [w for w in words if w not in named]
    campaign = None if revoke or not rest else " ".join(rest)
    now = ctx.clock.now()
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        audience = get_audience(session, ws_id, named[0]) if named else None  # refuses unknown or removed ones
        audience_id = audience.id if audience is not None else None
        if revoke:
            gone = session.exec(update(CalendarLink).where(col(CalendarLink.workspace_id) == ws_id)
                                .where(col(CalendarLink.revoked_at).is_(None)).values(revoked_at=now)).rowcount
            audit(session, ctx, ws_id, None, req.actor_name, "calendar revoke", f"{gone} address(es)")
        link = None if revoke else session.exec(
            select(CalendarLink).where(CalendarLink.workspace_id == ws_id).where(CalendarLink.campaign == campaign)
            .where(CalendarLink.audience_id == audience_id)
            .where(col(CalendarLink.revoked_at).is_(None))).first()
        if link is None:
            link = CalendarLink(workspace_id=ws_id, campaign=campaign, audience_id=audience_id,
                                token=secrets.token_urlsafe(24), created_by=req.actor_name, created_at=now)
            session.add(link)
            audit(session, ctx, ws_id, None, req.actor_name, "calendar",
                  " · ".join(([f"campaign {campaign}"] if campaign else [])
                             + ([f"audience {audience.name}"] if audience is not None else [])))
        page, feed = calendar_urls(ctx, link.token)
        scope = " · ".join(([f"campaign {campaign}"] if campaign else [])
                           + ([f"audience {audience.name} ({audience.timezone})"] if audience is not None else [])) \
            or f"'{ws.name}'"
    head = (f"🔒 Every earlier calendar address of this workspace now answers 'not found'. The new one, for {scope}:"
            if revoke else f"🗓 The plan of {scope} on the web:")
    lines = [
        head,
        f"Page: {page}",
        f"Feed for Google Calendar, Outlook or Apple Calendar (subscribe by address): {feed}",
    ]
    if audience is not None:
        lines.append(f"It lists the posts that reach {audience.name}, at their time in {audience.timezone}.")
    lines.append("Anyone holding these addresses sees the plan, not just the team; /calendar revoke replaces them.")
    return Reply("\n".join(lines))


# --- what a calendar link shows ------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What a calendar token opens: the workspace's name, the zone its times are shown in (the workspace's, or the
    audience's for an audience calendar), the campaign and the audience it is narrowed to."""

    workspace_id: int
    name: str
    timezone: str
    campaign: str | None
    audience_id: int | None = None
    audience: str | None = None  # the audience's name, as the team knows it


@dataclass(frozen=True)
class Entry:
    """One post in a calendar: its number, when (UTC and in the plan's zone), where, what and how far along.

    A post scheduled at each audience's local time has one entry per distinct moment: `audience_times` names the
    audiences going out then, each with its wall time in its own zone ("09:00 EST"), and `key` tells the moments
    of one post apart (the feed's UIDs). `tz` is the zone the feed writes the event in."""

    number: int
    at: datetime
    local: datetime
    networks: tuple[str, ...]
    accounts: tuple[str, ...]
    campaign: str | None
    state: str
    words: str
    tz: str = "UTC"
    audience_times: tuple[tuple[str, str], ...] = ()
    key: str = ""


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
    if link.audience_id is not None:
        audience = session.get(Audience, link.audience_id)
        if audience is None or audience.workspace_id != ws.id:
            return None
        # a removed audience's calendar keeps showing its posts (they keep it too)
        return Plan(link.workspace_id, ws.name, audience.timezone, link.campaign, audience.id, audience_name(audience))
    return Plan(link.workspace_id, ws.name, ws.timezone, link.campaign)


def _when(post: Post) -> datetime | None:
    return post.published_at or post.due_at


def _posts(plan: Plan) -> SelectOfScalar[Post]:
    query = (select(Post).where(Post.workspace_id == plan.workspace_id)
             .where(col(Post.state).in_([s.value for s in SHOWN])))
    if plan.campaign is not None:
        query = query.where(func.lower(Post.campaign) == plan.campaign.lower())
    if plan.audience_id is not None:  # the posts with a delivery that reaches the audience
        query = query.where(col(Post.id).in_(select(Delivery.post_id).where(Delivery.audience_id == plan.audience_id)))
    return query


@dataclass(frozen=True)
class Moment:
    """When some of a post's deliveries go out: the UTC instant and each one's (audience or None, delivery, account)."""

    at: datetime
    targets: tuple[tuple[Audience | None, Delivery, Account], ...]


def is_local(post: Post, pairs: list[tuple[Delivery, Account]]) -> bool:
    """Whether the post goes out at each audience's own time (its deliveries carry their own due_at)."""
    return bool(post.due_local) and any(d.due_at is not None for d, _a in pairs)


def moments(session: Session, post: Post, plan: Plan | None = None) -> tuple[bool, list[Moment]]:
    """Whether the post goes out at local times, and its moments, earliest first: one for a post at one time, one
    per distinct delivery time for a post scheduled `local`. In an audience plan, only the deliveries that reach
    that audience."""
    at = _when(post)
    pairs = post_targets(session, post)
    local = is_local(post, pairs)
    if plan is not None and plan.audience_id is not None:
        pairs = [(d, a) for d, a in pairs if d.audience_id == plan.audience_id]
    if not local:
        if at is None:
            return local, []
        return local, [Moment(at, tuple((delivery_audience(session, d), d, a) for d, a in pairs))]
    found: dict[datetime, list[tuple[Audience | None, Delivery, Account]]] = {}
    for d, a in pairs:
        # the delivery's own scheduled moment (kept once sent, so the feed's events stay put)
        own = d.due_at or d.sent_at or at
        if own is not None:
            found.setdefault(own, []).append((delivery_audience(session, d), d, a))
    return local, [Moment(when, tuple(targets)) for when, targets in sorted(found.items())]


def _entry(session: Session, post: Post, plan: Plan, moment: Moment, team_tz: str, local: bool) -> Entry:
    assert post.id is not None
    zone = ZoneInfo(plan.timezone)
    accounts = [a for _au, _d, a in moment.targets]
    audiences: dict[str, str] = {}  # name ("" for accounts without an audience) → its zone
    for audience, _d, _a in moment.targets:
        # an audience's own zone; the accounts without one go out in the team's (handlers/posts/local_time.py)
        audiences.setdefault(audience_name(audience) if audience is not None else "",
                             audience.timezone if audience is not None else team_tz)
    times: tuple[tuple[str, str], ...] = ()
    key = ""
    tz = plan.timezone
    if local:
        named = sorted(audiences.items(), key=lambda item: (item[0] == "", item[0]))
        times = tuple((name or "no audience", _wall(moment.at, one_tz)) for name, one_tz in named)
        key = "-".join(re.sub(r"[^a-z0-9_-]", "-", name.lower()) or "team" for name, _tz in named)
        tz = named[0][1] if plan.audience_id is None else plan.timezone
    words = post.text
    if plan.audience_id is not None and moment.targets:  # the words this audience reads (its variant)
        audience, _d, account = moment.targets[0]
        words = variant_for(post, account, audience)
    return Entry(
        number=post.id, at=moment.at, local=moment.at.astimezone(zone),
        networks=tuple(sorted({a.network for a in accounts})),
        accounts=tuple(target_label(a, audience) for audience, _d, a in moment.targets),
        campaign=post.campaign, state=state_label(post), words=short_text(words, FIRST_WORDS),
        tz=tz, audience_times=times, key=key,
    )


def _wall(at: datetime, tz: str) -> str:
    """'09:00 EST': a moment's wall time in a zone, with the zone's abbreviation."""
    local = at.astimezone(ZoneInfo(tz))
    return f"{local:%H:%M} {local.tzname() or tz}"


def entries(session: Session, plan: Plan, start: datetime | None = None, end: datetime | None = None) -> list[Entry]:
    """The posts of the plan with a time in [start, end) (every one without bounds), in time order; a post
    scheduled at each audience's local time gives one entry per distinct moment that falls in the span."""
    when = func.coalesce(Post.published_at, Post.due_at)
    query = _posts(plan).where(when.is_not(None))
    bounds = []
    if start is not None:
        bounds.append(when >= start)
    if end is not None:
        bounds.append(when < end)
    if bounds:
        # a post at local times may have a later audience moment in the span although its earliest is outside
        own = select(Delivery.post_id).where(col(Delivery.due_at).is_not(None))
        if start is not None:
            own = own.where(col(Delivery.due_at) >= start)
        if end is not None:
            own = own.where(col(Delivery.due_at) < end)
        query = query.where(or_(and_(*bounds), col(Post.id).in_(own)))
    team_tz = get_workspace(session, plan.workspace_id).timezone
    found = []
    for post in session.exec(query.order_by(when, col(Post.id))).all():
        local, found_moments = moments(session, post, plan)
        for moment in found_moments:
            if (start is None or moment.at >= start) and (end is None or moment.at < end):
                found.append(_entry(session, post, plan, moment, team_tz, local))
    return sorted(found, key=lambda e: (e.at, e.number, e.key))


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
    """A post as the web shows it: what each account will publish (or published), its images, its time. For a
    post at each audience's local time, `times` gives each account's own moment, in step with `accounts`."""

    number: int
    revision: int
    state: str
    campaign: str | None
    time: str
    accounts: tuple[AccountText, ...]
    media: tuple[tuple[str, str], ...]  # (sha256, content type) of each stored picture or video, in order
    times: tuple[str, ...] = ()


def post_view(ctx: Context, session: Session, post: Post, ws: Workspace, *, audience_id: int | None = None) -> PostView:
    """What each target account receives — rendered exactly as publishing renders it — and the post's images;
    only the deliveries that reach `audience_id` when given (an audience calendar)."""
    assert post.id is not None
    texts, times = [], []
    pairs = post_targets(session, post)
    local = is_local(post, pairs)
    if audience_id is not None:
        pairs = [(d, a) for d, a in pairs if d.audience_id == audience_id]
    for delivery, account in pairs:
        audience = delivery_audience(session, delivery)
        label = target_label(account, audience)
        own = delivery.due_at if local else None
        if own is not None:
            zone = audience.timezone if audience is not None else ws.timezone
            times.append(format_when(own, zone) + ("" if zone == ws.timezone
                                                    else f" — {format_when(own, ws.timezone)} for the team"))
        else:
            times.append("")
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
    own_times = [t for t in times if t]
    if local and post.due_local and own_times:
        when = (own_times[0] if len(set(own_times)) == 1
                else f"{post.due_local[-5:]} in each audience's own zone (each account's time is below)")
    return PostView(post.id, post.revision, state_label(post), post.campaign, when, tuple(texts), media,
                    tuple(times) if local else ())


def plan_post(ctx: Context, session: Session, plan: Plan, number: int) -> PostView | None:
    """The post numbered `number` if this plan lists it (its workspace, its campaign and audience, a shown state),
    else None."""
    post = session.exec(_posts(plan).where(Post.id == number)).first()
    if post is None or _when(post) is None:
        return None
    return post_view(ctx, session, post, get_workspace(session, plan.workspace_id), audience_id=plan.audience_id)


def first_picture(session: Session, workspace_id: int, view: PostView) -> bytes | None:
    """The bytes of the post's first stored picture (not a video), for its previews; None without one."""
    for sha256, kind in view.media:
        if kind.startswith("image/"):
            data = session.exec(select(Media.data).where(Media.sha256 == sha256)
                                .where(Media.workspace_id == workspace_id).limit(1)).first()
            return bytes(data) if data is not None else None
    return None
