"""Writing posts: /draft, /edit, /variant, /targets, /preview, /posts and /history."""

from __future__ import annotations

import re

from sqlmodel import Session, col, select

from handlers.core.access import EDITORS
from handlers.core.audit import audit
from handlers.core.chat import Button, Reply
from handlers.core.commands import Param, Request, command
from handlers.core.errors import UserError
from handlers.core.lookups import (
    account_rules,
    audience_accounts,
    delivery_audience,
    get_audience,
    get_workspace,
    post_targets,
    target_label,
)
from handlers.core.when import show_time
from handlers.core.words import short_text, state_label
from handlers.posts.calendar import first_picture, post_view
from handlers.posts.cards import draft_card
from handlers.posts.editing import after_content_change, content_changed, editable_post, set_targets
from handlers.posts.local_time import place_new_targets
from handlers.posts.media import MAX_ITEMS, store_media
from handlers.posts.render import AUDIENCE_PREFIX, render_targets, variant_key
from handlers.posts.shortlinks import destinations
from handlers.posts.thread_parts import check_steps, split_comment, split_parts
from storage.models import (
    Account,
    Audience,
    AuditEvent,
    Post,
    PostState,
)

OPTION_RE = re.compile(r"(?:^|\s)(link|campaign|to|keep)=(\S+)\s*$", re.IGNORECASE)
# an option at the end with nothing after the "=" (e.g. "/draft hello to="): a slip, not text to publish
EMPTY_OPTION_RE = re.compile(r"(?:^|\s)(link|campaign|to|keep)=\s*$", re.IGNORECASE)
OPTION_EXAMPLES = {"link": "link=https://shop.example/sale", "campaign": "campaign=spring",
                   "to": "to=acme-x,acme-bsky or to=all or to=audience:south,north", "keep": "keep=https://partner.example/terms"}
CAMPAIGN_RE = re.compile(r"[\w\-]{1,40}")
URL_RE = re.compile(r"https?://[^\s/$.?#][^\s]*", re.IGNORECASE)
MAX_TEXT = 20_000


def split_options(text: str) -> tuple[str, dict[str, str]]:
    """Peel trailing link=…, campaign=… and to=… options off a post's text."""
    options: dict[str, str] = {}
    while m := OPTION_RE.search(text):
        key = m.group(1).lower()
        if key in options:
            raise UserError(f"{key}= is given twice.")
        options[key] = m.group(2)
        text = text[: m.start()].rstrip()
    if empty := EMPTY_OPTION_RE.search(text):
        key = empty.group(1).lower()
        raise UserError(f"{key}= needs a value, e.g. {OPTION_EXAMPLES[key]}. Nothing was saved.")
    link = options.get("link")
    if link is not None and not URL_RE.fullmatch(link):
        raise UserError(f"link={link} isn't a web address. Links start with https://")
    for keep in options.get("keep", "").split(",") if options.get("keep") else ():
        if not URL_RE.fullmatch(keep):
            raise UserError(f"keep={keep} isn't a web address: keep= names links to send exactly as written, "
                            "e.g. keep=https://partner.example/terms (several: separated by commas).")
    campaign = options.get("campaign")
    if campaign is not None and not CAMPAIGN_RE.fullmatch(campaign):
        raise UserError("campaign= takes one word of letters, digits, '-' or '_' (at most 40).")
    if len(text) > MAX_TEXT:
        raise UserError(f"That text is {len(text)} characters; Herald keeps posts up to {MAX_TEXT}.")
    return text.strip(), options


def resolve_accounts(session: Session, ws_id: int, names: list[str]) -> list[Account]:
    accounts = list(session.exec(select(Account).where(Account.workspace_id == ws_id).order_by(Account.name)).all())
    if [n.lower() for n in names] == ["all"]:
        if not accounts:
            raise UserError("No accounts are connected yet. /connect sandbox name=brand connects one.")
        return accounts
    by_name = {a.name.lower(): a for a in accounts}
    chosen, unknown = [], []
    for name in names:
        account = by_name.get(name.lower())
        if account is None:
            unknown.append(name)
        elif account not in chosen:
            chosen.append(account)
    if unknown:
        known = ", ".join(a.name for a in accounts) or "none yet"
        raise UserError(f"No account called {', '.join(unknown)}. Accounts: {known}.")
    return chosen


def resolve_targets(session: Session, ws_id: int, names: list[str],
                    example: str) -> tuple[list[Account], list[Audience], dict[int, list[Account]]]:
    """The accounts and audiences (with the accounts that reach each) a list of names picks: audience:<name> is an
    audience, and so is a plain name after it that names one (audience:south,north); any other name is an account
    (or all of them: all). An unknown audience, or one no account reaches, is refused with `example`."""
    audiences: list[Audience] = []
    reach: dict[int, list[Account]] = {}  # audience id → the accounts that reach it
    account_names: list[str] = []
    after_audience = False
    for name in names:
        lowered = name.lower()
        if lowered.startswith(AUDIENCE_PREFIX):
            after_audience = True
            wanted = lowered.removeprefix(AUDIENCE_PREFIX)
            if not wanted:
                raise UserError(f"audience: needs the audience's name, e.g. {example}. Nothing changed.")
        elif after_audience and session.exec(select(Audience.id).where(Audience.workspace_id == ws_id)
                                             .where(Audience.name == lowered)
                                             .where(col(Audience.removed_at).is_(None))).first() is not None:
            wanted = lowered
        else:
            account_names.append(name)
            continue
        try:
            audience = get_audience(session, ws_id, wanted)
        except UserError as exc:
            raise UserError(f"{exc} Nothing changed. Audiences are written like this: {example}") from None
        assert audience.id is not None
        if audience.id in reach:
            continue
        reach[audience.id] = audience_accounts(session, audience.id)
        audiences.append(audience)
        if not reach[audience.id]:
            raise UserError(f"No account reaches audience {audience.name} yet, so a post can't go to it. Nothing "
                            f"changed. Give it accounts first (/audience), or name accounts: {example}")
    accounts = resolve_accounts(session, ws_id, account_names) if account_names else []
    return accounts, audiences, reach


@command(
    "draft",
    usage="/draft <text> [link=https://…] [campaign=name] [to=account,audience:name,…|all]", example="/draft Spring sale starts today! link=https://shop.example/sale campaign=spring",
    summary="write a new post; shows a live check against each target network's limits",
    details=(
        "The text may span several lines. Options go at the end: link= adds a link, campaign= tags it, "
        "to= picks accounts (default: all connected accounts) or audiences (to=audience:south,north: each of "
        "their accounts gets that audience's version), keep= names links to send exactly as written "
        "(no UTM tags, no short link). A line of three dashes (---) splits it into the parts of a thread "
        "(/thread); a line comment=<text> adds the first comment posted right after it (/comment)."
    ),
    roles=EDITORS,
    group="Posts",
    takes=(Param.text(required=False, description="the post's text"),
           Param.text("link", required=False, keyword=True, description="a link to add, https://…"),
           Param.text("campaign", required=False, keyword=True, description="a campaign tag, one word"),
           Param.account("to", many=True, required=False, keyword=True,
                         description="the accounts (space-separated) or all; default: every connected one"),
           Param.media()),
)
async def draft(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    text, options = split_options(str(req.arg("text", req.command.text)))
    text, first_comment = split_comment(text)
    parts = split_parts(text)
    text = parts[0]
    cmd = req.command
    if not text and not cmd.media:
        if "text" in cmd.args or options:
            raise UserError(f"What should the post say? It needs some text. Usage: {req.spec.usage}")
        return Reply("What should the post say? Write it as your next message "
                     "(options like link=https://… or campaign=name go at the end).",
                     ask=Button("Write the post", "draft", prompt="What should the post say?"))
    now = ctx.clock.now()
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        accounts, audiences, reach = resolve_targets(session, ws_id, options["to"].split(","),
                                                     "to=audience:south,north") if "to" in options else (list(
            session.exec(select(Account).where(Account.workspace_id == ws_id).order_by(Account.name)).all()
        ), [], {})
        post = Post(
            workspace_id=ws_id, author_platform=cmd.actor.platform, author_user_id=cmd.actor.user_id,
            author_name=cmd.actor.name, text=text, link=options.get("link"), campaign=options.get("campaign"),
            keep_links=options["keep"].split(",") if options.get("keep") else [],
            editor_platform=cmd.actor.platform, editor_user_id=cmd.actor.user_id, created_at=now, updated_at=now,
            parts=parts[1:], comment=first_comment,
        )
        if cmd.media:

            if len(cmd.media) > MAX_ITEMS:
                raise UserError(f"A post can hold at most {MAX_ITEMS} files; you sent {len(cmd.media)}.")
            post.media = store_media(session, ws_id, cmd.media, cmd.actor.name)
        session.add(post)
        session.flush()
        set_targets(session, post, accounts, audiences, reach=reach, new=True)
        session.flush()
        check_steps(ctx, session, post, ws)
        audit(session, ctx, ws_id, post.id, cmd.actor.name, "draft", short_text(text))
        return draft_card(ctx, session, post, ws, f"Draft #{post.id} saved.")


@command(
    "edit",
    usage="/edit <post> <new text> [link=…] [campaign=…]", example="/edit 12 Spring sale starts tomorrow!",
    summary="replace a post's text; earlier approvals no longer count",
    roles=EDITORS,
    group="Posts",
    takes=(Param.post(), Param.text(description="the new text [link=…] [campaign=…]")),
)
async def edit(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    post_id, rest = req.post_and_rest()
    first, _, after = rest.partition(" ")
    everyone = first.lower() == "all" and bool(after.strip())  # /edit 12 all <text>: the variants go too
    text, options = split_options(after if everyone else rest)
    text, first_comment = split_comment(text)
    parts = split_parts(text) if text else [""]
    text = parts[0]
    if "to" in options:
        raise UserError(f"Change targets with /targets {post_id} <accounts…>.")
    if not text and not options and first_comment is None:
        raise UserError(f"What's the new text? Usage: {req.spec.usage}")
    with ctx.db.session() as session:
        post = editable_post(session, ws_id, post_id, "edited")
        ws = get_workspace(session, ws_id)
        keys = {target_label(a, audience): variant_key(post, a, audience) for a, audience in
                ((a, delivery_audience(session, d)) for d, a in post_targets(session, post))}
        if text and not everyone and keys and all(keys.values()):
            used = ", ".join(f"{name} ({key})" for name, key in sorted(keys.items()))
            some = sorted({key for key in keys.values() if key})[0]
            raise UserError(
                f"Every account of #{post_id} gets its own variant ({used}), so a new main text would go nowhere. "
                f"Nothing changed. Edit a variant: /variant {post_id} {some} <text> — or replace them all with "
                f"this text: /edit {post_id} all <text>"
            )
        if everyone:
            post.variants, post.stale_variants = {}, []
        elif text and post.variants:  # written for the old text: marked until someone writes them again
            post.stale_variants = sorted(set(post.stale_variants) | set(post.variants))
        if text:
            post.text = text
        if len(parts) > 1:  # the new text is a whole thread: it replaces every part; else only the first changes
            post.parts = parts[1:]
        if first_comment is not None:
            post.comment = first_comment
        if "link" in options:
            post.link = options["link"]
        if "campaign" in options:
            post.campaign = options["campaign"]
        if "keep" in options:
            post.keep_links = options["keep"].split(",")
        check_steps(ctx, session, post, ws)
        note = content_changed(ctx, session, post, ws, req.command.actor,
                               "text edited for every account, variants removed" if everyone else "text edited")
    return await after_content_change(req, post_id, f"Edited #{post_id}.", note)


@command(
    "variant",
    usage="/variant <post> <network|account|audience:name> <text|off>", example="/variant 12 x Spring sale 🌸 today only",
    summary="write a different text for one network, account or audience",
    details=("/variant 12 x off removes the X variant again. /variant 12 audience:south ¡Rebajas! writes the text "
             "audience south reads; an account's own variant comes first, then the audience's, then the network's."),
    roles=EDITORS,
    group="Posts",
    takes=(Param.post(), Param.account("target", description="a network, an account or audience:<name>"),
           Param.text(description="the text for it, or off")),
)
async def variant(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    post_id, rest = req.post_and_rest()
    target, _, text = rest.partition(" ")
    target, text = target.strip(), text.strip()
    if not target or not text:
        raise UserError(f"Usage: {req.spec.usage}")
    if len(text) > MAX_TEXT:
        raise UserError(f"That variant is {len(text)} characters; Herald keeps texts up to {MAX_TEXT}. Nothing changed.")
    with ctx.db.session() as session:
        post = editable_post(session, ws_id, post_id, "edited", fixing=True)
        ws = get_workspace(session, ws_id)
        pairs = post_targets(session, post)
        accounts = [a for _d, a in pairs]
        names = {a.name for a in accounts}
        networks = {account_rules(a) for a in accounts} | {a.network for a in accounts}
        key = target if target in names else target.lower()
        if key.startswith(AUDIENCE_PREFIX):
            try:
                audience = get_audience(session, ws_id, key)
            except UserError as exc:
                raise UserError(f"{exc} Nothing changed. e.g. /variant {post_id} audience:south <text>") from None
            key = AUDIENCE_PREFIX + audience.name
            if not any(d.audience_id == audience.id for d, _a in pairs) and text.lower() != "off":
                raise UserError(f"#{post_id} doesn't go to audience {audience.name}, so its variant would reach "
                                f"no one. Nothing changed. Target it first: /targets {post_id} audience:{audience.name}")
        elif key not in names and ctx.networks.profile(key) is None:
            known = sorted(p.key for p in ctx.networks.profiles())
            raise UserError(
                f"'{target}' is neither a network ({', '.join(known)}) nor one of "
                f"#{post_id}'s accounts ({', '.join(sorted(names)) or 'none'})."
            )
        if key not in names and key not in networks and not key.startswith(AUDIENCE_PREFIX):
            raise UserError(f"#{post_id} has no {ctx.networks.label(key)} account among its targets.")
        variants = dict(post.variants)
        if text.lower() == "off":
            if key not in variants:
                raise UserError(f"#{post_id} has no variant for {target}.")
            del variants[key]
            what = f"variant for {key} removed"
        else:
            variants[key] = text
            what = f"variant for {key} set"
        post.variants = variants
        post.stale_variants = [k for k in post.stale_variants if k != key]  # written (or dropped) now: current
        note = content_changed(ctx, session, post, ws, req.command.actor, what)
    return await after_content_change(req, post_id, f"#{post_id}: {what}.", note)


@command(
    "targets",
    usage="/targets <post> <account…|audience:name…|all>", example="/targets 12 acme-x acme-bsky",
    summary="choose which accounts (or audiences) a post goes to",
    details=("/targets 12 audience:south audience:north acme-x: each account of an audience gets that audience's "
             "version (its variant, landing page and utm_term); an account named alone gets the post as it is."),
    roles=EDITORS,
    group="Posts",
    takes=(Param.post(), Param.account("accounts", many=True,
                                       description="accounts or audience:<name> (space-separated), or all")),
)
async def targets(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    post_id, rest = req.post_and_rest()
    names = rest.replace(",", " ").split()
    if not names:
        raise UserError(f"Which accounts? Usage: {req.spec.usage}")
    with ctx.db.session() as session:
        post = editable_post(session, ws_id, post_id, "retargeted")
        ws = get_workspace(session, ws_id)
        accounts, audiences, reach = resolve_targets(session, ws_id, names, f"/targets {post_id} audience:south acme-x")
        set_targets(session, post, accounts, audiences, reach=reach)
        session.flush()
        placed = place_new_targets(session, post, ws, ctx.clock.now())
        what = "targets set to " + ", ".join(target_label(a, delivery_audience(session, d))
                                             for d, a in post_targets(session, post))
        note = content_changed(ctx, session, post, ws, req.command.actor, what) + placed
    return await after_content_change(req, post_id, f"#{post_id}: {what}.", note)


@command(
    "preview",
    usage="/preview <post> [image]", example="/preview 12",
    summary="show exactly what goes to each account, with each network's check (image: with approximate previews)",
    group="Posts",
    takes=(Param.post(),),
)
async def preview(req: Request) -> Reply:
    ctx = req.ctx
    post_id, rest = req.post_and_rest()
    if rest and rest.lower() != "image":
        raise UserError(f"'{rest}' isn't something /preview shows. Usage: {req.spec.usage}")
    image = None
    with req.post_command() as (session, post, ws):
        lines = [f"Preview of #{post.id} ({state_label(post)}, revision {post.revision}):"]
        rendered = render_targets(ctx, session, post, ws)
        if not rendered:
            lines.append(f"No targets yet — /targets {post.id} <account…>")
        for one in rendered:
            lines.append(f"── {one.label} ──")
            lines += ["│ " + line for line in one.text.splitlines()] or ["│ (empty)"]
            lines += ["  ↪ " + line for line in destinations(ctx, session, one.text)]
            if one.check is not None:
                lines.append("  " + one.check.line())
            if one.saved and one.check is not None:
                lines.append(f"  the short link saves {one.saved} {one.check.unit}")
            if one.thread:
                lines.append(f"  Thread: {one.thread}")
            for step in one.steps:
                lines.append(f"  ↳ {step.name}:")
                lines += ["  │ " + line for line in step.text.splitlines()]
                lines += ["    ↪ " + line for line in destinations(ctx, session, step.text)]
                if step.check is not None:
                    lines.append("    " + step.check.line())
            if one.comment:
                lines.append(f"  Comment: {one.comment}")
        tz = post.due_tz or ws.timezone
        lines.append(f"Time: {show_time(post.due_at, tz, ctx.clock.now())}")
        if rest and ctx.previews is not None and rendered:
            view = post_view(ctx, session, post, ws)
            image = ctx.previews.sheet(list(view.accounts), first_picture(session, ws.id or 0, view))
            lines.append("The picture: an approximate preview per account, drawn by Herald (not the networks' own).")
        elif rest and rendered:
            lines.append("Previews as images aren't drawn by this Herald.")
    return Reply("\n".join(lines), image=image)


@command(
    "posts",
    usage="/posts [state]", example="/posts scheduled",
    summary="list recent posts, optionally only those in one state",
    details="States: " + ", ".join(s.value for s in PostState),
    group="Posts",
)
async def posts(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    wanted = req.command.text.strip().lower().replace(" ", "_")
    if wanted and wanted not in {s.value for s in PostState}:
        raise UserError(f"'{wanted}' isn't a post state. States: {', '.join(s.value for s in PostState)}.")
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        query = select(Post).where(Post.workspace_id == ws_id)
        if wanted:
            query = query.where(Post.state == wanted)
        rows = session.exec(query.order_by(col(Post.id).desc()).limit(25)).all()
        if not rows:
            return Reply(f"No {wanted.replace('_', ' ') + ' ' if wanted else ''}posts yet. /draft <text> writes one.")
        lines = []
        for post in rows:
            if post.published_at is not None:  # what happened, not what was planned
                when = f" · published {show_time(post.published_at, ws.timezone)}"
            else:
                when = f" · {show_time(post.due_at, post.due_tz or ws.timezone)}" if post.due_at else ""
            lines.append(f"  #{post.id} {state_label(post)}{when} · {short_text(post.text, 50)}")
    title = f"{wanted.replace('_', ' ').capitalize()} posts" if wanted else "Recent posts"
    return Reply(f"{title}:\n" + "\n".join(lines))


@command("history", usage="/history <post>", example="/history 12", summary="show a post's audit trail", group="Posts",
         takes=(Param.post(),))
async def history(req: Request) -> Reply:
    post_id, _ = req.post_and_rest()
    with req.post_command() as (session, post, ws):
        events = session.exec(
            select(AuditEvent).where(AuditEvent.post_id == post.id).order_by(col(AuditEvent.id))
        ).all()
        lines = [f"History of #{post.id} (now {state_label(post)}):"]
        for event in events:
            when = show_time(event.created_at, ws.timezone)
            lines.append(f"  {when} · {event.actor} · {event.action}{': ' + event.detail if event.detail else ''}")
    return Reply("\n".join(lines))
