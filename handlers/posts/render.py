"""What goes out to each account: one rendering per post and account — the text exactly as sent (variant, link,
UTM tags, short links), the link for the link card, the media count and the network's limit check.

`render` is the one place that composes it, from what the caller hands in (post, account, workspace): it reads
nothing from the database but the post's short links (made in the caller's session the first time). Cards, /preview, the submission checks and publishing all use it, and a command
that needs the renderings twice in one press (approve: the check, then the card) passes them along.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from handlers.core.context import Context
from handlers.core.counting import LimitCheck
from handlers.core.lookups import account_rules, account_view, post_targets
from handlers.posts.links import holds_link, tagger_for_account
from handlers.posts.shortlinks import shortener
from storage.models import Account, Post, Workspace


@dataclass(frozen=True)
class Rendered:
    """One post as one account receives it.

    `check` is the account's network's verdict on `text` and the media; None when this Herald has no
    connector for that network, or when the caller rendered without checking (publishing: the check held
    when the post was approved, and some networks' counts cost milliseconds per text).
    """

    account: Account
    text: str
    link: str | None
    media_count: int
    check: LimitCheck | None
    variant: str | None = None  # the variant this account gets (its key: account, rules or network), None: main
    saved: int = 0  # what the short links save by the network's count (Bluesky counts links as written)


def variant_key(post: Post, account: Account) -> str | None:
    """Which variant this account gets: one written for the account, else for its network's rules (a sandbox's
    like=), else for its network; None when it gets the post's main text."""
    return next((k for k in (account.name, account_rules(account), account.network) if k in post.variants), None)


def variant_for(post: Post, account: Account) -> str:
    """The text this account gets before its link and tags: its variant, else the post's main text."""
    key = variant_key(post, account)
    return post.variants[key] if key is not None else post.text


def compose(post: Post, text: str) -> str:
    """The full text that goes out: the variant plus the link when the text doesn't hold it yet (as written
    or tagged with UTM parameters)."""

    if post.link and not holds_link(text, post.link):
        return f"{text}\n{post.link}" if text else post.link
    return text


def render(ctx: Context, post: Post, account: Account, ws: Workspace, *, checked: bool = True,
           session: Session | None = None) -> Rendered:
    """The post as `account` receives it: its variant with the post's link added, every link tagged with the
    account's network's UTM parameters when the workspace tags links (/utm, handlers/posts/links.py), the link
    card's link tagged alike, then every link replaced by its short link when the workspace shortens links
    (/links, handlers/posts/shortlinks.py: made in `session` the first time), and (when `checked`) the
    network's check of that very text. Links marked keep= stay exactly as written."""

    text = compose(post, variant_for(post, account))
    link = post.link
    if ws.utm:
        tag = tagger_for_account(ctx.networks, post, account)
        text = tag(text)
        link = tag(link) if link else link
    written = text
    shorten = shortener(ctx, session, post, account, ws)
    if shorten is not None:
        text = shorten(text)
        link = shorten(link) if link else link
    media_count = len(post.media)
    network = ctx.networks.get(account.network) if checked else None
    check = saved = None
    if network is not None:
        view = account_view(ctx, account)
        check = network.check(view, text, media_count)
        if text != written:
            saved = network.check(view, written, media_count).used - check.used
    return Rendered(account=account, text=text, link=link, media_count=media_count, check=check,
                    variant=variant_key(post, account), saved=max(saved or 0, 0))


def render_targets(ctx: Context, session: Session, post: Post, ws: Workspace) -> list[Rendered]:
    """The post rendered and checked for each of its target accounts (read once), in the targets' order."""
    return [render(ctx, post, account, ws, session=session) for _delivery, account in post_targets(session, post)]


def check_lines(post: Post, rendered: list[Rendered]) -> list[str]:
    """One line per checked target: the account, then the network's own count and any problem."""
    lines = []
    for one in rendered:
        if one.check is None:
            continue
        line = f"  {one.account.name}: {one.check.line()}"
        if not one.check.ok:
            line += f" → fix with /variant {post.id} {one.account.name} <text>"
        lines.append(line)
    return lines
