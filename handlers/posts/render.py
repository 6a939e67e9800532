"""What goes out to each account: the text (variant, link, UTM tags), the link card and the limit checks."""

from __future__ import annotations

from sqlalchemy.orm import object_session
from sqlmodel import Session

from handlers.core.context import Context
from handlers.core.counting import LimitCheck
from handlers.core.lookups import account_rules, account_view, post_targets
from handlers.core.ports import Networks
from handlers.posts.links import holds_link, tag_for_account
from storage.models import Account, Post, Workspace


def text_for_account(networks: Networks, post: Post, account: Account) -> str:
    """A variant written for this account, else for its network's rules, else the base text.

    When the workspace tags links (/utm, on by default) the text comes with the post's link (as `compose`
    adds it) and every link tagged with UTM parameters for this account's network (handlers/posts/links.py), so
    every caller — the limit check, /preview, publishing — sees the text exactly as it is sent.
    """

    text = next((post.variants[k] for k in (account.name, account_rules(account), account.network)
                 if k in post.variants), post.text)
    if utm_on(post):
        return tag_for_account(networks, compose(post, text), post, account)
    return text


def link_for_account(networks: Networks, post: Post, account: Account) -> str | None:
    """The post's link as this account sends it in a link card (Bluesky, Facebook, LinkedIn, Threads,
    Pinterest): tagged with the account's UTM parameters when the workspace tags links."""

    if post.link and utm_on(post):
        return tag_for_account(networks, post.link, post, account)
    return post.link


def utm_on(post: Post) -> bool:
    """The /utm setting of the post's workspace (read through the post's session; on when it has none)."""
    session = object_session(post)
    ws = session.get(Workspace, post.workspace_id) if session is not None else None
    return ws.utm if ws is not None else True


def compose(post: Post, text: str) -> str:
    """The full text that goes out: the variant plus the link when the text doesn't hold it yet (as written
    or tagged with UTM parameters)."""

    if post.link and not holds_link(text, post.link):
        return f"{text}\n{post.link}" if text else post.link
    return text


def target_checks(ctx: Context, session: Session, post: Post) -> list[tuple[Account, LimitCheck]]:
    """Check the post's text against each target account's network rules."""
    checks = []
    for _delivery, account in post_targets(session, post):
        network = ctx.networks.get(account.network)
        if network is None:
            continue
        text = compose(post, text_for_account(ctx.networks, post, account))
        checks.append((account, network.check(account_view(ctx, account), text, len(post.media))))
    return checks


def check_lines(post: Post, checks: list[tuple[Account, LimitCheck]]) -> list[str]:
    """One line per target: the account, then the network's own count and any problem."""
    lines = []
    for account, check in checks:
        line = f"  {account.name}: {check.line()}"
        if not check.ok:
            line += f" → fix with /variant {post.id} {account.name} <text>"
        lines.append(line)
    return lines
