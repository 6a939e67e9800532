"""Outside reviewers: /review makes a link for one person who is not in the chat (a client, the legal team) to
approve a post, ask for changes or reject it on a web page; the decision counts under the workspace's policy.

Where an outside approval counts (/policy outside=count, the default), a link hands on its maker's right to approve:
only someone who may approve the post under the policy makes one (not its author when self-approval is off), so a
link never lets an editor approve their own post. With outside=advice any editor may ask.

A link is a token signed with a key derived from Herald's secret key (itsdangerous) that carries a random nonce
stored in `reviewlink`. It opens the page only while the post is in review at the revision it was made for (an
edit kills it), before it expires (/policy review_days=N, 7 by default, on Herald's clock), until it is revoked
(/review <post> revoke), and for one decision: the decision claims the link with one conditional UPDATE, so a
replayed form or a second tab changes nothing. An approval is recorded as by "Name (outside reviewer)" through the
same code as a chat approval (handlers/posts/approvals.py); /policy outside=advice keeps it from counting.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import timedelta

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import update
from sqlmodel import Session, col, select

from handlers.core.access import CREW
from handlers.core.audit import audit
from handlers.core.chat import Button, Reply
from handlers.core.commands import Param, Request, command
from handlers.core.context import Context
from handlers.core.errors import UserError
from handlers.core.lookups import get_workspace
from handlers.core.notices import tell_team
from handlers.core.when import show_time
from handlers.core.words import state_label
from handlers.posts.approvals import approval_card_key, record_approval, record_decision, require_approver
from handlers.posts.calendar import PostView, needs_public_url, post_view
from handlers.posts.cards import approval_card
from handlers.posts.rules import OUTSIDE, require_publishable
from storage.models import Approval, Decision, Post, PostState, ReviewLink, Workspace

SALT = "review-link"
NAME_MAX = 60
NONCE_BYTES = 16
NONCE_CHARS = 22  # token_urlsafe(16)
NOTE_MAX = 2000


def serializer(ctx: Context) -> URLSafeSerializer:
    return URLSafeSerializer(ctx.secrets.derive("review-links"), salt=SALT)


def review_url(ctx: Context, nonce: str) -> str:
    return f"{needs_public_url(ctx)}/review/{serializer(ctx).dumps(nonce)}"


def start_code(ctx: Context, nonce: str) -> str:
    """The same link for Telegram's deep link (`t.me/<bot>?start=<code>`: at most 64 of A-Z a-z 0-9 _ -): `r-`, the
    nonce, and 16 characters of its HMAC."""
    mac = hmac.new(ctx.secrets.derive("review-links"), nonce.encode(), hashlib.sha256).digest()
    return f"r-{nonce}{base64.urlsafe_b64encode(mac).decode()[:16]}"


def nonce_of(ctx: Context, token: str) -> str | None:
    """The nonce a web token or a Telegram code carries, if its signature holds."""
    if token.startswith("r-") and len(token) == 2 + NONCE_CHARS + 16:
        nonce = token[2:2 + NONCE_CHARS]
        return nonce if hmac.compare_digest(start_code(ctx, nonce), token) else None
    try:
        nonce = serializer(ctx).loads(token)
    except BadSignature:
        return None
    return nonce if isinstance(nonce, str) else None


@command(
    "review",
    usage="/review <post> [name] | /review <post> revoke", example="/review 12 Dana from Legal",
    summary="a link for someone outside the chat to approve, ask for changes on or reject a post on the web",
    details="The link is for one person and one decision; it dies when the post is edited, after review_days "
            "(/policy), or with /review <post> revoke. The decision lands here and in /history. Where outside "
            "approvals count (/policy outside=count), only someone who may approve the post makes a link.",
    roles=CREW,
    group="Posts",
    takes=(Param.post(), Param.text("name", required=False, description="who reviews (or revoke)")),
)
async def review(req: Request) -> Reply:
    ctx = req.ctx
    needs_public_url(ctx)
    _, rest = req.post_and_rest()
    now = ctx.clock.now()
    with req.post_command() as (session, post, ws):
        if rest.lower() == "revoke":
            gone = session.exec(update(ReviewLink).where(col(ReviewLink.post_id) == post.id)
                                .where(col(ReviewLink.revision) == post.revision).where(col(ReviewLink.expires_at) > now)
                                .where(col(ReviewLink.used_at).is_(None)).where(col(ReviewLink.revoked_at).is_(None))
                                .values(revoked_at=now)).rowcount
            audit(session, ctx, ws.id or 0, post.id, req.actor_name, "review revoke", f"{gone} link(s)")
            return Reply(f"🔒 {gone} open review link(s) of #{post.id} revoked: they answer 'no longer open'.")
        if PostState(post.state) != PostState.IN_REVIEW:
            raise UserError(f"#{post.id} is {state_label(post)}; only a post in review can be sent to an outside "
                            f"reviewer. /submit {post.id} first.")
        if ws.outside_approvals:  # the link hands on the maker's approval: only someone who may approve makes one
            require_approver(req, ws, post, "have outside reviewers approve")
        name = " ".join(rest.split())[:NAME_MAX] or "Outside reviewer"
        nonce = secrets.token_urlsafe(NONCE_BYTES)
        expires = now + timedelta(days=ws.review_days)
        assert ws.id is not None and post.id is not None
        session.add(ReviewLink(workspace_id=ws.id, post_id=post.id, revision=post.revision, reviewer=name,
                               nonce=nonce, created_by=req.actor_name, created_at=now, expires_at=expires))
        audit(session, ctx, ws.id or 0, post.id, req.actor_name, "review link", f"for {name}, revision {post.revision}")
        counts = ("counts toward the approvals needed" if ws.outside_approvals
                  else "is advice: it doesn't count (/policy outside=count)")
        until = show_time(expires, ws.timezone, now)
    return Reply("\n".join([
        f"🔗 Review link of #{post.id} for {name} (revision {post.revision}, until {until}):",
        review_url(ctx, nonce),
        *([f"For a reviewer on Telegram, the same link opens the review in a private chat with me: "
           f"https://t.me/{ctx.telegram_bot}?start={start_code(ctx, nonce)}"] if ctx.telegram_bot else []),
        f"One decision: approve, ask for changes (with a note) or reject (with a reason); an approval {counts}.",
        f"It dies when #{post.id} is edited; /review {post.id} revoke ends it now. Send it only to {name}.",
    ]))


# --- the web page's side -------------------------------------------------------------------------


class ReviewClosed(Exception):
    """The link opens nothing: `reason` says why in words for the reviewer ('' for an unknown or forged link)."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ReviewPage:
    workspace_id: int
    reviewer: str
    workspace: str
    expires: str
    post: PostView


def _open(ctx: Context, session: Session, token: str) -> tuple[ReviewLink, Post, Workspace]:
    """The link a token names and its post, if it still opens; ReviewClosed otherwise."""
    nonce = nonce_of(ctx, token)
    if nonce is None:
        raise ReviewClosed()
    link = session.exec(select(ReviewLink).where(ReviewLink.nonce == nonce)).first()
    post = session.get(Post, link.post_id) if link is not None else None
    if link is None or post is None or post.workspace_id != link.workspace_id:
        raise ReviewClosed()
    if link.revoked_at is not None:
        raise ReviewClosed("This review link was withdrawn by the team.")
    if link.used_at is not None:
        raise ReviewClosed("This review link was used: your decision was recorded. Thank you.")
    if link.expires_at is not None and ctx.clock.now() >= link.expires_at:
        raise ReviewClosed("This review link has expired. Ask the team for a new one.")
    if post.revision != link.revision:
        raise ReviewClosed("The post was edited since this link was made. Ask the team for a link to the new version.")
    if PostState(post.state) != PostState.IN_REVIEW:
        raise ReviewClosed(f"The post is {state_label(post)} now, no longer waiting for review.")
    return link, post, get_workspace(session, link.workspace_id)


def open_review(ctx: Context, token: str) -> ReviewPage:
    """What the reviewer sees: exactly what each account will publish; ReviewClosed when the link opens nothing."""
    with ctx.db.session() as session:
        link, post, ws = _open(ctx, session, token)
        expires = show_time(link.expires_at, ws.timezone) if link.expires_at else ""
        return ReviewPage(link.workspace_id, link.reviewer, ws.name, expires, post_view(ctx, session, post, ws))


DECISIONS = {"approve": Decision.APPROVE, "changes": Decision.CHANGES, "reject": Decision.REJECT}


async def decide_outside(ctx: Context, token: str, choice: str, note: str) -> str:
    """Records the reviewer's decision (one per link) under the workspace's policy, tells the approvals chat at
    once, and returns what the page says. ReviewClosed for a link that opens nothing (used, edited, expired…);
    UserError for a missing note (nothing changed)."""
    decision = DECISIONS.get(choice)
    note = " ".join(note.split())[:NOTE_MAX]
    if decision is None:
        raise UserError("Choose Approve, Request changes or Reject.")
    if decision != Decision.APPROVE and not note:
        raise UserError("Say what should change." if decision == Decision.CHANGES else "Say why you reject it.")
    now = ctx.clock.now()
    with ctx.db.session() as session:
        link, post, ws = _open(ctx, session, token)
        claimed = session.exec(update(ReviewLink).where(col(ReviewLink.id) == link.id)
                               .where(col(ReviewLink.used_at).is_(None)).where(col(ReviewLink.revoked_at).is_(None))
                               .values(used_at=now, decision=decision.value)).rowcount
        if claimed != 1:  # another tab or a replayed form got here first
            raise ReviewClosed("This review link was used: your decision was recorded. Thank you.")
        name = f"{link.reviewer} (outside reviewer)"
        user_id = f"review-{link.id}"
        ws_id, post_id = ws.id or 0, post.id or 0
        if decision == Decision.APPROVE:
            already = session.exec(select(Approval).where(Approval.post_id == post.id)
                                   .where(Approval.revision == post.revision).where(Approval.platform == OUTSIDE)
                                   .where(Approval.name == name).where(Approval.decision == Decision.APPROVE.value)
                                   ).first()
            if already is not None:
                raise ReviewClosed(f"{link.reviewer} already approved this version of the post.")
            require_publishable(ctx, session, post, ws)
            have, outcome = record_approval(ctx, session, post, ws, platform=OUTSIDE, user_id=user_id, name=name)
            counted = "" if ws.outside_approvals else " (advice: outside approvals don't count here)"
            text = f"✅ {name} approved #{post_id} on the web{counted} ({have} of {ws.approvals_needed}). {outcome}"
            headline = f"#{post_id}: {outcome}"
            said = "Thank you: your approval is recorded and the team is told."
        else:
            text = record_decision(ctx, session, post, ws, decision, note, platform=OUTSIDE, user_id=user_id, name=name)
            headline = f"#{post_id} is {state_label(post)}."
            said = "Thank you: the team is told" + (" what should change." if decision == Decision.CHANGES
                                                    else " why you rejected the post.")
        session.flush()
        card = approval_card(ctx, session, post, ws, headline)
    await tell_team(ctx, ws_id, Reply(text), purpose="approvals")
    await tell_team(ctx, ws_id, replace(card, replaces=approval_card_key(post_id)), purpose="approvals")
    return said


# --- the same link in a chat (Telegram's deep link) ------------------------------------------------


def chat_review(ctx: Context, code: str) -> Reply:
    """The review as a chat message: what each account will publish, and the three decisions as buttons."""
    try:
        page = open_review(ctx, code)
    except ReviewClosed as closed:
        raise UserError(closed.reason or "This review link doesn't exist. Ask the team for a new one.") from None
    view = page.post
    lines = [f"Review of post #{view.number} for {page.reviewer} (from {page.workspace}; until {page.expires})",
             f"Time: {view.time}"]
    for one in view.accounts:
        lines += [f"── {one.account} ({one.network}) ──", *("│ " + line for line in one.text.splitlines())]
        if one.link:
            lines.append(f"  Link card: {one.link}")
    if view.media:
        lines.append(f"Images: {len(view.media)} (on the web page of this review)")
    return Reply("\n".join(lines), buttons=(
        Button("Approve", "outside", {"code": code, "do": "approve"}),
        Button("Request changes", "outside", {"code": code, "do": "changes"}, prompt="What should change?"),
        Button("Reject", "outside", {"code": code, "do": "reject"}, prompt="Why reject it?"),
    ))


@command(
    "outside",
    usage="/outside <code> [approve | changes <note> | reject <reason>]", example="/outside r-… approve",
    summary="decide on a post as the outside reviewer a /review link was made for (its Telegram deep link)",
    needs_workspace=False,
    group="Posts",
)
async def outside(req: Request) -> Reply:
    code = str(req.arg("code", "")) or (req.words[0] if req.words else "")
    choice = str(req.arg("do", "")) or (req.words[1].lower() if len(req.words) > 1 else "")
    note = str(req.arg("text", "")) if req.arg("do") else " ".join(req.words[2:])
    if not code:
        raise UserError(f"Which review? {req.spec.usage}")
    if not choice:
        return chat_review(req.ctx, code)
    try:
        said = await decide_outside(req.ctx, code, choice, note)
    except ReviewClosed as closed:
        raise UserError(closed.reason or "This review link doesn't exist. Ask the team for a new one.") from None
    return Reply(said)
