"""Herald's own short links: with HERALD_PUBLIC_URL set and `/links on` (the default), every http(s) link of a
post — in its text and its `link=` card — goes out as `<public url>/r/<code>`, one code per delivery (post ×
account × audience, so clicks count per audience) and target, redirecting to the link as tagged with UTM parameters (handlers/posts/links.py).

The codes are made where the outgoing text is composed (handlers/posts/render.py), in the caller's session, so
the card, /preview and the publish request show the same short link: what was approved is what goes out. A code
is 8 random URL-safe characters (`secrets`, 48 bits), never reused; the web app (bot/web/) answers it with the
target stored here and nothing taken from the request. A link the team marked `keep=` goes out exactly as
written (no UTM tags, no short link). Deleting a post leaves its short links answering; `/links revoke <post>`
stops them (404 from then on).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable

from sqlmodel import Session, col, select

from handlers.core.access import ADMINS
from handlers.core.audit import audit
from handlers.core.chat import Reply
from handlers.core.commands import Request, command
from handlers.core.context import Context
from handlers.core.errors import UserError
from handlers.core.lookups import get_workspace
from handlers.posts.links import URL_RE, kept, link_end
from storage.models import Account, Audience, Post, ShortLink, Workspace

CODE_LENGTH = 8  # secrets.token_urlsafe(6): 48 random bits
CODE_RE = re.compile(rf"[A-Za-z0-9_-]{{{CODE_LENGTH}}}")
PATH = "/r/"
NO_PUBLIC_URL = ("Herald's short links need its public address: set HERALD_PUBLIC_URL (and HERALD_HTTP_PORT) "
                 "and restart, then /links on")


def short_url(public_url: str, code: str) -> str:
    return f"{public_url.rstrip('/')}{PATH}{code}"


def without_codes(public_url: str | None, text: str) -> str:
    """The text with each of Herald's short links (`public_url`/r/<code>) cut to its prefix: two texts that differ
    only in their codes (the same link, made again for another post) read the same."""
    if not public_url:
        return text
    prefix = short_url(public_url, "")
    return re.sub(re.escape(prefix) + CODE_RE.pattern, prefix, text)


def new_code() -> str:
    return secrets.token_urlsafe(6)


def shortening(ctx: Context, ws: Workspace) -> bool:
    """True when this workspace's links go out as short links: switched on and a public address to serve them."""
    return bool(ws.short_links and ctx.public_url)


def link_for(session: Session, ws_id: int, post_id: int, account_id: int, target: str, now: object,
             audience_id: int | None = None) -> ShortLink:
    """The short link of (post, account, audience, target), made with a fresh random code the first time: each
    audience's delivery has its own, so clicks count per audience."""
    link = session.exec(select(ShortLink).where(ShortLink.post_id == post_id)
                        .where(ShortLink.account_id == account_id).where(ShortLink.audience_id == audience_id)
                        .where(ShortLink.target == target)).first()
    if link is not None:
        return link
    code = new_code()
    while session.exec(select(ShortLink.id).where(ShortLink.code == code)).first() is not None:
        code = new_code()  # 48 random bits: practically never, but a code is never reused
    link = ShortLink(code=code, workspace_id=ws_id, post_id=post_id, account_id=account_id, target=target,
                     audience_id=audience_id, created_at=now)  # type: ignore[arg-type]
    session.add(link)
    session.flush()
    return link


def shortener(ctx: Context, session: Session | None, post: Post, account: Account,
              ws: Workspace, audience: Audience | None = None) -> Callable[[str], str] | None:
    """Replaces every link of an outgoing text (already tagged) with its short link; None when links go out as
    they are. Without a session (a post not stored: the import's limit check) a link becomes a placeholder of
    the same length, so counting is right and nothing is stored."""
    if not shortening(ctx, ws):
        return None
    public = str(ctx.public_url)

    def one(url: str) -> str:
        if kept(post, url) or url.startswith(public.rstrip("/") + PATH):
            return url
        if session is None or post.id is None or account.id is None:
            return short_url(public, "x" * CODE_LENGTH)
        return short_url(public, link_for(session, post.workspace_id, post.id, account.id, url,
                                          ctx.clock.now(), audience.id if audience is not None else None).code)

    def replace(match: re.Match[str]) -> str:
        raw = match.group(0)
        url = link_end(raw)
        return one(url) + raw[len(url):]

    return lambda text: URL_RE.sub(replace, text)


def destinations(ctx: Context, session: Session, text: str) -> list[str]:
    """'https://go.acme.com/r/q3Vx_8Lk → https://cars.acme.com/dealers?utm_…' for each short link of an outgoing
    text, so /preview shows where each one leads."""
    if not ctx.public_url:
        return []
    prefix = ctx.public_url.rstrip("/") + PATH
    shorts = [link_end(m) for m in URL_RE.findall(text) if link_end(m).startswith(prefix)]
    targets = dict(session.exec(select(ShortLink.code, ShortLink.target).where(
        col(ShortLink.code).in_([s.removeprefix(prefix) for s in shorts]))).all()) if shorts else {}
    return [f"{short} → {targets[short.removeprefix(prefix)]}" for short in shorts
            if short.removeprefix(prefix) in targets]


def links_note(ctx: Context, ws: Workspace, post: Post, *, audiences: bool = False,
               audience_links: bool = False) -> str | None:
    """The card's line on how the post's links go out; None when it holds no link (nor gets an audience's
    landing page: `audience_links`). `audiences`: the post goes to audiences, each with short links of its own."""
    if not audience_links and not post.link and not URL_RE.search(post.text or "") and not any(
            URL_RE.search(v) for v in post.variants.values()):
        return None
    if not ws.short_links:
        return "Links: sent as written (short links are off: /links on)"
    if not ctx.public_url:
        return f"Links: sent as written — {NO_PUBLIC_URL}"
    note = (f"Links: shortened to {ctx.public_url.rstrip('/')}{PATH}<code>, one per account"
            + (" and audience" if audiences else "") + ", clicks counted")
    if post.keep_links:
        note += "; kept as written: " + ", ".join(post.keep_links)
    return note


@command(
    "links",
    usage="/links [on|off|revoke <post>]", example="/links off",
    summary="show or set whether links in posts go out as Herald's short links with click counts",
    details=(
        "On (the default, when HERALD_PUBLIC_URL is set): every link in a post goes out as "
        "<public address>/r/<code>, one per account, so /stats counts the clicks each post brings. "
        "keep=https://… on /draft or /edit leaves one link exactly as written. "
        "/links revoke 12 stops the short links of post #12 (they answer 404 from then on)."
    ),
    group="Posts",
)
async def links(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    words = req.command.text.strip().split()
    wanted = words[0].lower() if words else ""
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        if not wanted:
            if shortening(ctx, ws):
                count = len(session.exec(select(ShortLink.id).where(ShortLink.workspace_id == ws_id)).all())
                return Reply(f"Short links are on: links in posts go out as {ctx.public_url}{PATH}<code> and "
                             f"their clicks show in /stats ({count} short link(s) so far). /links off turns "
                             "them off.")
            if ws.short_links:
                return Reply(f"Short links are on but not in use: {NO_PUBLIC_URL}.")
            return Reply("Short links are off: links go out as written. /links on turns them on.")
        if wanted not in ("on", "off", "revoke"):
            raise UserError(f"'{words[0]}' isn't on, off or revoke. Usage: {req.spec.usage}")
        req.require_role(ADMINS, "change short links")
        if wanted == "revoke":
            return revoke(req, session, ws, words[1:])
        on = wanted == "on"
        if on and not ctx.public_url:
            raise UserError(f"Short links can't be turned on here: {NO_PUBLIC_URL}. Nothing changed.")
        if ws.short_links == on:
            return Reply(f"Short links are already {wanted}.")
        ws.short_links = on
        audit(session, ctx, ws_id, None, req.actor_name, "links", wanted)
    if on:
        return Reply("Short links are on: links in posts not yet published go out as short links and their clicks "
                     "show in /stats. /preview <post> shows them.")
    return Reply("Short links are off: links in posts not yet published go out as written; the short links "
                 "already sent keep working.")


def revoke(req: Request, session: Session, ws: Workspace, words: list[str]) -> Reply:
    """Stops a post's short links (they answer 404 from then on)."""
    if len(words) != 1 or not words[0].lstrip("#").isdigit():
        raise UserError("Which post's links? e.g. /links revoke 12. Nothing changed.")
    post_id = int(words[0].lstrip("#"))
    rows = session.exec(select(ShortLink).where(ShortLink.workspace_id == ws.id)
                        .where(ShortLink.post_id == post_id)
                        .where(col(ShortLink.revoked_at).is_(None))).all()
    if not rows:
        raise UserError(f"Post #{post_id} has no short links in use. Nothing changed.")
    now = req.ctx.clock.now()
    for row in rows:
        row.revoked_at = now
    audit(session, req.ctx, ws.id or 0, post_id, req.actor_name, "links", f"revoked {len(rows)}")
    return Reply(f"Revoked the {len(rows)} short link(s) of #{post_id}: they answer 404 from now on (the web app "
                 "forgets a link it has cached within a minute).")
