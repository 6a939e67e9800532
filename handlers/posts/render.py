"""What goes out to each account: one rendering per delivery (post, account and, when the post targets audiences,
audience) — the text exactly as sent (variant, link, UTM tags, short links), the link for the link card, the
media count and the network's limit check.

`render` is the one place that composes it, from what the caller hands in (post, account, workspace, the
delivery's audience): it reads
nothing from the database but the post's short links (made in the caller's session the first time). Cards, /preview, the submission checks and publishing all use it, and a command
that needs the renderings twice in one press (approve: the check, then the card) passes them along.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from handlers.core.context import Context
from handlers.core.counting import LimitCheck
from handlers.core.lookups import account_rules, account_view, delivery_audience, post_targets, target_label
from handlers.core.ports import NetworkProfile
from handlers.posts.links import holds_link, tagger_for_account
from handlers.posts.shortlinks import shortener
from storage.models import Account, Audience, FollowUpKind, Post, Workspace


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
    # what follows the post on this account: a thread's later parts (each replying to the one before), then the
    # first comment, each as sent and with its own check
    steps: tuple[Step, ...] = ()
    thread: str | None = None  # how a thread reaches this account, in words (None: the post has one part)
    comment: str | None = None  # how the first comment reaches it, in words (None: the post has none)
    audience: Audience | None = None  # the audience this delivery reaches (None: a plain account target)

    @property
    def label(self) -> str:
        """The delivery as the team reads it: 'acme-x', or 'acme-es · south' for an audience's."""
        return target_label(self.account, self.audience)

    @property
    def variant_words(self) -> str:
        """Which text this delivery gets, in words: 'variant: audience south', 'variant: acme-x', 'main text'."""
        if self.variant is None:
            return "main text"
        return "variant: " + self.variant.replace(AUDIENCE_PREFIX, "audience ", 1)

    def failed_checks(self) -> list[tuple[str, LimitCheck]]:
        """Every check that failed: the post's own ("") and each step's (its name)."""
        out = [("", self.check)] if self.check is not None and not self.check.ok else []
        return out + [(step.name, step.check) for step in self.steps if step.check is not None and not step.check.ok]


@dataclass(frozen=True)
class Step:
    """A thread part after the first, or the first comment, as one account receives it."""

    kind: str  # FollowUpKind: part or comment
    number: int  # the part's number in the thread (2, 3, …); 0 for the comment
    text: str
    check: LimitCheck | None

    @property
    def name(self) -> str:
        return "first comment" if self.kind == FollowUpKind.COMMENT.value else f"part {self.number}"


AUDIENCE_PREFIX = "audience:"  # an audience's variant is stored under audience:<name>, as commands write it


def audience_key(audience: Audience) -> str:
    return AUDIENCE_PREFIX + audience.name


def variant_key(post: Post, account: Account, audience: Audience | None = None) -> str | None:
    """Which variant this delivery gets: one written for the account, else for its audience (when it reaches one),
    else for its network's rules (a sandbox's like=), else for its network; None when it gets the post's main
    text."""
    keys = (account.name, audience_key(audience) if audience is not None else None, account_rules(account),
            account.network)
    return next((k for k in keys if k is not None and k in post.variants), None)


def variant_for(post: Post, account: Account, audience: Audience | None = None) -> str:
    """The text this delivery gets before its link and tags: its variant, else the post's main text."""
    key = variant_key(post, account, audience)
    return post.variants[key] if key is not None else post.text


def landing_link(post: Post, audience: Audience | None) -> str | None:
    """The link the delivery carries: its audience's landing page, else the post's link=."""
    return audience.link if audience is not None and audience.link else post.link


def compose(post: Post, text: str, audience: Audience | None = None) -> str:
    """The full text that goes out: the variant plus the link when the text doesn't hold it yet (as written
    or tagged with UTM parameters). An audience's landing page stands for the post's link=, in the text too."""
    link = landing_link(post, audience)
    if link and post.link and link != post.link and post.link in text:
        text = text.replace(post.link, link)
    if link and not holds_link(text, link):
        return f"{text}\n{link}" if text else link
    return text


def render(ctx: Context, post: Post, account: Account, ws: Workspace, *, checked: bool = True,
           session: Session | None = None, audience: Audience | None = None) -> Rendered:
    """The post as `account` receives it: its variant with the post's link added, every link tagged with the
    account's network's UTM parameters when the workspace tags links (/utm, handlers/posts/links.py), the link
    card's link tagged alike, then every link replaced by its short link when the workspace shortens links
    (/links, handlers/posts/shortlinks.py: made in `session` the first time), and (when `checked`) the
    network's check of that very text. Links marked keep= stay exactly as written. A thread's later parts and
    the first comment follow as `steps`, each tagged, shortened and checked alike.

    A delivery to an audience (`audience`) gets the audience's variant (an account's own variant still comes
    first), its landing page instead of the post's link=, utm_term=<audience> among its tags and short links of
    its own (clicks count per audience)."""

    first = variant_for(post, account, audience)
    link = landing_link(post, audience)
    tagger = tagger_for_account(ctx.networks, post, account, audience, ws.utm_audience) if ws.utm \
        else (lambda words: words)
    shorten = shortener(ctx, session, post, account, ws, audience)

    def tag(words: str) -> str:
        return shorten(tagger(words)) if shorten is not None else tagger(words)

    # measuring the joined parts makes no short link: placeholders of the codes' length count the same
    placeholders = shortener(ctx, None, post, account, ws, audience)

    def measure_tag(words: str) -> str:
        return placeholders(tagger(words)) if placeholders is not None else tagger(words)

    media_count = len(post.media)
    connector = ctx.networks.get(account.network)
    profile = ctx.networks.profile(account.network)
    label = profile.label if profile is not None else account.network
    view = account_view(ctx, account) if connector is not None else None
    parts: list[str] = []
    thread = None
    if post.parts:
        count = 1 + len(post.parts)
        if profile is not None and profile.threads:
            parts = list(post.parts)
            thread = f"a thread of {count} parts, each a reply to the one before"
        else:
            joined = measure_tag(compose(post, JOINER.join([first, *post.parts]), audience))
            measured = connector.check(view, joined, media_count) if connector is not None and view is not None else None
            if measured is None or measured.used <= measured.limit:  # by length: other problems are the post's own
                first = JOINER.join([first, *post.parts])
                thread = f"the {count} parts joined into one post ({label} has no threads)"
            else:
                thread = f"only the first part: {label} has no threads and the {count} parts joined don't fit its limit"
    written = tagger(compose(post, first, audience))
    text = shorten(written) if shorten is not None else written
    link = tag(link) if link else link
    network = connector if checked else None
    check = network.check(view, text, media_count) if network is not None and view is not None else None
    saved = 0
    if check is not None and network is not None and view is not None and text != written:
        saved = max(network.check(view, written, media_count).used - check.used, 0)
    tagged_parts = [tag(part) for part in parts]  # each once: shortening looks its links up
    steps = [Step(FollowUpKind.PART.value, i + 2, words,
                  network.check(view, words, 0) if network is not None and view is not None else None)
             for i, words in enumerate(tagged_parts)]
    comment = None
    if post.comment:
        comment, goes = comment_route(post, profile, label)
        if goes:
            words = tag(post.comment)
            steps.append(Step(FollowUpKind.COMMENT.value, 0, words, network.check_reply(view, words)
                              if network is not None and view is not None else None))
    return Rendered(account=account, text=text, link=link, media_count=media_count, check=check,
                    variant=variant_key(post, account, audience), saved=saved, steps=tuple(steps), thread=thread,
                    comment=comment, audience=audience)


JOINER = "\n\n"  # how a thread's parts are joined on a network without threads


def comment_route(post: Post, profile: NetworkProfile | None, label: str) -> tuple[str, bool]:
    """How the post's first comment reaches an account of this network, in words, and whether it goes at all."""
    if profile is not None and profile.first_comment:
        return "posted as the first comment right after the post", True
    if profile is not None and profile.threads and post.comment_replies:
        return "posted as a reply to the post, right after it", True
    if profile is not None and profile.threads:
        return f"not posted on {label}: /comment {post.id} replies on posts it as a reply there", False
    return f"not posted: {label} takes no first comment", False


def can_take_comment(profile: NetworkProfile | None) -> bool:
    """A network that can carry a first comment (as a comment, or as a reply when asked)."""
    return profile is not None and (profile.first_comment or profile.threads)


def render_targets(ctx: Context, session: Session, post: Post, ws: Workspace) -> list[Rendered]:
    """The post rendered and checked for each of its deliveries (read once, each with its audience), in the
    targets' order."""
    return [render(ctx, post, account, ws, session=session, audience=delivery_audience(session, delivery))
            for delivery, account in post_targets(session, post)]


def check_lines(post: Post, rendered: list[Rendered]) -> list[str]:
    """One line per checked target: the account, then the network's own count and any problem."""
    lines = []
    for one in rendered:
        if one.check is None:
            continue
        line = f"  {one.label}: {one.check.line()}"
        if not one.check.ok:
            whom = audience_key(one.audience) if one.audience is not None else one.account.name
            line += f" → fix with /variant {post.id} {whom} <text>"
        lines.append(line)
        for step in one.steps:
            if step.check is None:
                continue
            fix = "" if step.check.ok else (f" → /thread {post.id} edit {step.number} <text>" if step.number
                                             else f" → /comment {post.id} <text>")
            lines.append(f"    {step.name}: {step.check.line()}{fix}")
        lines += [f"    thread: {note}" for note in (one.thread,) if note]
        lines += [f"    comment: {note}" for note in (one.comment,) if note]
    return lines
