"""How a post is shown in the chat: the draft card, the approval card, one-line summaries.

A card's check lines come from the post's renderings (handlers/posts/render.py); a command that has just
checked them (submit, approve, schedule) passes them in, so one press checks each target once.
"""

from __future__ import annotations

from sqlalchemy import literal, union_all
from sqlmodel import Session, col, func, select

from handlers.core.chat import Button, Reply
from handlers.core.context import Context
from handlers.core.lookups import delivery_label, post_targets
from handlers.core.when import show_time
from handlers.core.words import state_label
from handlers.posts.language import language_warning
from handlers.posts.links import URL_RE
from handlers.posts.render import Rendered, check_lines, render_targets, variant_for
from handlers.posts.rules import approvals_at_revision
from handlers.posts.shortlinks import links_note
from storage.models import (
    Approval,
    Decision,
    Media,
    Occurrence,
    Post,
    PostState,
    Series,
    SeriesState,
    Workspace,
)


def post_body(ctx: Context, session: Session, post: Post, ws: Workspace,
              rendered: list[Rendered] | None = None) -> list[str]:
    """The post's header, text, link, time and a check line per target (from `rendered` when the caller has
    the post's renderings already, else rendered here)."""
    head = f"Post #{post.id} · {state_label(post)} · revision {post.revision} · by {post.author_name}"
    if post.campaign:
        head += f" · campaign {post.campaign}"
    lines = [head]
    lines += ["│ " + line for line in (post.text or "(no text)").splitlines()]
    for number, part in enumerate(post.parts, start=2):
        lines.append(f"── part {number} of {1 + len(post.parts)} ──")
        lines += ["│ " + line for line in part.splitlines()]
    if post.comment:
        lines.append("💬 First comment" + (" (also as a reply on networks with threads)" if post.comment_replies else "")
                     + ":")
        lines += ["│ " + line for line in post.comment.splitlines()]
    if post.link:
        lines.append(f"Link: {post.link}")
    rendered = render_targets(ctx, session, post, ws) if rendered is None else rendered
    reached = [one.audience for one in rendered if one.audience is not None]
    note = links_note(ctx, ws, post, audiences=bool(reached), audience_links=any(a.link for a in reached))
    if note:
        lines.append(note)
    if post.media:
        stored = session.exec(select(func.count()).select_from(Media).where(col(Media.id).in_(post.media))).one()
        lines.append(f"Images: {len(post.media)}" if stored >= len(post.media) else
                     f"Images: {stored} of {len(post.media)} (removed after the media retention period)")
    tz = post.due_tz or ws.timezone
    lines.append(f"Time: {show_time(post.due_at, tz, ctx.clock.now())}" if post.due_at else "Time: not scheduled")
    if post.held_note:
        lines.append(f"⚠ Held: {post.held_note}")
    lines += series_lines(session, post)
    checks = check_lines(post, rendered)
    if checks:
        lines.append("Targets:")
        lines += checks
    else:
        lines.append(f"Targets: none — /targets {post.id} <account…> (see /accounts)")
    lines += [f"  {one.label}: the short link saves {one.saved} {one.check.unit}" for one in rendered
              if one.saved and one.check is not None]
    lines += variant_lines(post, rendered)
    lines += audience_lines(ctx, post, rendered)
    if post.variants:
        lines.append("Variants for: " + ", ".join(sorted(post.variants)))
    return lines


def series_lines(session: Session, post: Post) -> list[str]:
    """Where the post stands in a recurring series (/repeat): its post, or one of its dates (one round trip: the
    two indexed look-ups in one UNION ALL, the series whose post it is first)."""
    own = select(Series.template_post_id, Series.state, literal(0).label("rank")).where(
        Series.template_post_id == post.id)
    date_of = select(Series.template_post_id, Series.state, literal(1).label("rank")).join(
        Occurrence, col(Occurrence.series_id) == col(Series.id)).where(Occurrence.post_id == post.id)
    found = session.exec(union_all(own, date_of).order_by("rank").limit(1)).first()  # type: ignore[call-overload]
    if found is None:
        return []
    template, state, rank = found
    if rank == 0:
        running = state == SeriesState.ACTIVE.value
        return [f"🔁 The post of a {'recurring' if running else 'finished'} series: /repeat {post.id} shows its dates"]
    return [f"🔁 One date of the series of #{template} (/repeat {template})"]


def variant_lines(post: Post, rendered: list[Rendered]) -> list[str]:
    """What the accounts with a variant receive instead of the text above (the approver approves what goes
    out), each variant written before the main text's last edit marked until it is written again."""
    with_variant = [one for one in rendered if one.variant is not None and one.audience is None]
    if not with_variant:
        return []
    lines = ["Instead of the text above, these accounts get their variant:"]
    for one in with_variant:
        head = f"  {one.account.name} (variant for {one.variant})"
        head += stale_mark(post, one.variant)
        lines.append(head + ":")
        lines += ["  │ " + line for line in one.text.splitlines()] or ["  │ (empty)"]
    return lines


def stale_mark(post: Post, key: str | None) -> str:
    if key is None or key not in post.stale_variants:
        return ""
    return (f" ⚠ stale: written before the last edit of the text — /variant {post.id} {key} "
            f"<text> renews it, /variant {post.id} {key} off drops it")


def audience_lines(ctx: Context, post: Post, rendered: list[Rendered]) -> list[str]:
    """What each audience reads, side by side: per audience, each of its accounts' exact text and which text it
    is (the audience's variant, an account's or network's, or the main text), a warning when the text reads in
    another language than the audience's, and whether the network can keep the post to the audience's country."""
    groups: dict[int, list[Rendered]] = {}
    for one in rendered:
        if one.audience is not None and one.audience.id is not None:
            groups.setdefault(one.audience.id, []).append(one)
    if not groups:
        return []
    lines = ["Audiences (what each group reads; an account's variant comes first, then the audience's, then the "
             "network's, then the main text):"]
    for group in sorted(groups.values(), key=lambda ones: ones[0].audience.name if ones[0].audience else ""):
        audience = group[0].audience
        assert audience is not None
        about = [audience.language, audience.timezone] + ([audience.country] if audience.country else [])
        lines.append(f"── audience {audience.name} ({', '.join(about)}) ──")
        for one in group:
            lines.append(f"  {one.account.name} ({one.variant_words}){stale_mark(post, one.variant)}:")
            lines += ["  │ " + line for line in one.text.splitlines()] or ["  │ (empty)"]
            warning = language_warning(variant_for(post, one.account, audience), audience.language, audience.name)
            if warning:
                lines.append("  " + warning)
            twin = next((other for other in rendered if other is not one and other.account.id == one.account.id
                         and without_links(other.text) == without_links(one.text)), None)
            profile = ctx.networks.profile(one.account.network)
            if twin is not None and profile is not None and profile.duplicate_window is not None:
                lines.append(f"  ⚠ {one.account.name} also gets this very text as {twin.label} (links aside): "
                             f"{profile.label} refuses a text the account just posted — give one of them a variant")
            if audience.country:
                lines.append("  " + geo_line(ctx, one, audience.country))
    return lines


def without_links(text: str) -> str:
    """The words of a text without its links: two audiences' texts that differ only in their landing page, tags or
    short link read the same to a network that refuses repeated texts."""
    return " ".join(URL_RE.sub(" ", text).split())


def geo_line(ctx: Context, one: Rendered, country: str) -> str:
    """Whether the account's post stays in the audience's country: kept there when the account's network restricts
    by country for this account (its profile's `keeps_to_country`), else it reaches all the account's followers,
    and the card says why."""
    label = ctx.networks.label(one.account.network)
    profile = ctx.networks.profile(one.account.network)
    if profile is not None and profile.keeps_to_country(one.account.settings or {}):
        return f"🌍 {country}: only people in {country} see it on {one.account.name} ({label} country targeting)"
    line = f"🌍 {country}: reaches all followers of {one.account.name}"
    if profile is not None and profile.country_targeting and profile.country_targeting_only is not None:
        return line + f" ({label} limits only {profile.country_targeting_only[2]}' posts to a country)"
    return line + f" ({label} can't limit an organic post to a country)"


def draft_card(ctx: Context, session: Session, post: Post, ws: Workspace, headline: str,
               rendered: list[Rendered] | None = None) -> Reply:
    """The card a draft is worked on from, with its Submit, Preview and Schedule buttons."""
    lines = [headline, *post_body(ctx, session, post, ws, rendered)]
    buttons: tuple[Button, ...] = ()
    if PostState(post.state) in (PostState.DRAFT, PostState.CHANGES_REQUESTED):
        buttons = (
            Button("Submit for approval", "submit", {"post": post.id}),
            Button("Preview", "preview", {"post": post.id}),
            Button("Schedule…", "schedule", {"post": post.id}, prompt="When? e.g. tomorrow 9am"),
        )
    return Reply("\n".join(lines), buttons=buttons, card=post.id)


DECISION_MARKS = {Decision.APPROVE.value: "✅", Decision.CHANGES.value: "✏️", Decision.REJECT.value: "⛔"}
DECISION_WORDS = {Decision.APPROVE.value: "approved", Decision.CHANGES.value: "asked for changes",
                  Decision.REJECT.value: "rejected"}


def decision_lines(session: Session, post: Post) -> list[str]:
    """Who decided what on the current revision, in order ("✅ bob approved", "✏️ carol asked for changes: …")."""
    rows = session.exec(
        select(Approval).where(Approval.post_id == post.id).where(Approval.revision == post.revision)
        .order_by(Approval.id)  # type: ignore[arg-type]
    ).all()
    return [f"{DECISION_MARKS.get(a.decision, '•')} {a.name} {DECISION_WORDS.get(a.decision, a.decision)}"
            + (f": {a.note}" if a.note else "") for a in rows]


def approval_card(ctx: Context, session: Session, post: Post, ws: Workspace, headline: str,
                  rendered: list[Rendered] | None = None) -> Reply:
    """The card approvers act on; once the post leaves review it shows the decisions and no buttons."""
    have = len(approvals_at_revision(session, post))
    lines = [
        headline,
        *post_body(ctx, session, post, ws, rendered),
        f"Approvals: {have} of {ws.approvals_needed} (revision {post.revision})",
        *decision_lines(session, post),
    ]
    buttons: tuple[Button, ...] = ()
    if PostState(post.state) == PostState.IN_REVIEW or (
        PostState(post.state) in (PostState.FAILED, PostState.PARTIALLY_PUBLISHED)
        and post.sent_revision is not None and post.revision != post.sent_revision
        and have < ws.approvals_needed
    ):
        args = {"post": post.id, "revision": post.revision}
        buttons = (
            Button("Approve", "approve", args),
            Button("Request changes", "changes", args, prompt=f"What should change in #{post.id}?"),
            Button("Reject", "reject", args, prompt=f"Why reject #{post.id}?"),
        )
    return Reply("\n".join(lines), buttons=buttons, card=post.id)


def target_names(session: Session, post: Post) -> str:
    return ", ".join(delivery_label(session, d, account) for d, account in post_targets(session, post)) or "no accounts"
