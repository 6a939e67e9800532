"""A post's thread and first comment: `---` lines and `comment=` in a draft, /thread and /comment.

A post's first part is its text; `Post.parts` holds the parts after it. Each part is counted by each target
network's rules (handlers/posts/render.py); an empty part, a part or comment over a network's limit, or a comment for
an account whose network can't take one is refused with what to do, and nothing changes. Every change is an edit:
a new revision, and the approvals given before it no longer count (handlers/posts/editing.py).
"""

from __future__ import annotations

import re

from sqlmodel import Session

from handlers.core.access import EDITORS
from handlers.core.chat import Reply
from handlers.core.commands import Param, Request, command
from handlers.core.context import Context
from handlers.core.errors import UserError
from handlers.core.lookups import get_workspace, post_targets
from handlers.posts.editing import after_content_change, content_changed, editable_post
from handlers.posts.render import can_take_comment, render_targets
from storage.models import Post, Workspace

SEPARATOR_RE = re.compile(r"^[ \t]*---[ \t]*$", re.MULTILINE)
COMMENT_RE = re.compile(r"^[ \t]*comment=(.*)$", re.IGNORECASE | re.MULTILINE)
MAX_PARTS = 25


def split_parts(text: str) -> list[str]:
    """A draft's text cut at its `---` lines: its parts, each stripped. UserError for an empty part."""
    parts = [part.strip() for part in SEPARATOR_RE.split(text)]
    if len(parts) == 1:
        return parts
    empty = [str(i) for i, part in enumerate(parts, start=1) if not part]
    if empty:
        raise UserError(f"Part {', '.join(empty)} of the thread is empty (two --- lines in a row, or one at the start "
                        "or end). Write something between the --- lines. Nothing was saved.")
    if len(parts) > MAX_PARTS:
        raise UserError(f"That thread has {len(parts)} parts; Herald sends at most {MAX_PARTS}. Nothing was saved.")
    return parts


def split_comment(text: str) -> tuple[str, str | None]:
    """Peel a `comment=…` line off a draft's text: (the rest, the comment's text or None)."""
    found = list(COMMENT_RE.finditer(text))
    if not found:
        return text, None
    if len(found) > 1:
        raise UserError("comment= is given twice; a post has one first comment. Nothing was saved.")
    match = found[0]
    comment = match.group(1).strip()
    if not comment:
        raise UserError("comment= needs the comment's text on the same line, e.g. comment=Link in bio 👆. "
                        "Nothing was saved.")
    return (text[: match.start()] + text[match.end():]).strip(), comment


def check_steps(ctx: Context, session: Session, post: Post, ws: Workspace) -> None:
    """Refuse (UserError, so the transaction rolls back and nothing changes) a comment some target can't take and a
    part or comment over a target network's limit."""
    if post.comment:
        refused = [f"{a.name} ({ctx.networks.label(a.network)})" for _d, a in post_targets(session, post)
                   if not can_take_comment(ctx.networks.profile(a.network))]
        if refused:
            raise UserError(
                f"{', '.join(refused)} can't take a first comment: only Instagram, Facebook, LinkedIn and YouTube "
                f"(and X, Bluesky, Mastodon and Threads as a reply) can. Nothing changed. Post it without a comment, "
                f"or drop {'that account' if len(refused) == 1 else 'those accounts'} with /targets {post.id or ''} "
                "<accounts…> first.")
    if not post.parts and not post.comment:
        return  # no later part, no comment: nothing to check here (the card checks the post itself)
    bad = [f"  {one.account.name} {step.name}: {step.check.line()}" for one in render_targets(ctx, session, post, ws)
           for step in one.steps if step.check is not None and not step.check.ok]
    if bad:
        raise UserError("That doesn't fit every network:\n" + "\n".join(bad)
                        + "\nShorten it (or split a long part in two with a --- line). Nothing changed.")


def thread_lines(ctx: Context, session: Session, post: Post, ws: Workspace) -> list[str]:
    """The thread part by part, then how each account gets it with each part's check."""
    texts = [post.text, *post.parts]
    lines = [f"Thread of #{post.id}: {len(texts)} part(s)."]
    for number, text in enumerate(texts, start=1):
        lines.append(f"── part {number} ──")
        lines += ["│ " + line for line in text.splitlines()] or ["│ (empty)"]
    for one in render_targets(ctx, session, post, ws):
        lines.append(f"{one.account.name}: {one.thread or 'one post'}")
        if one.check is not None:
            lines.append(f"  part 1: {one.check.line()}")
        lines += [f"  {step.name}: {step.check.line()}" for step in one.steps if step.check is not None]
    return lines


@command(
    "thread",
    usage="/thread <post> [add <text> | edit <n> <text> | remove <n>]", example="/thread 12 add And one more thing…",
    summary="show a post's thread parts, or add, change or remove one",
    details=("A draft becomes a thread with a line of three dashes (---) between its parts. X, Bluesky, Mastodon and "
             "Threads get a native thread (each part a reply to the one before); other networks get the parts joined "
             "into one post where that fits, else the first part only — the card says which. Each change is an edit: "
             "earlier approvals no longer count."),
    roles=EDITORS,
    group="Posts",
    takes=(Param.post(), Param.text(required=False, description="add <text>, edit <n> <text> or remove <n>")),
)
async def thread(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    post_id, rest = req.post_and_rest()
    action, _, after = rest.strip().partition(" ")
    action = action.lower()
    if not action:
        with req.post_command() as (session, post, ws):
            return Reply("\n".join(thread_lines(ctx, session, post, ws)))
    if action not in ("add", "edit", "remove"):
        raise UserError(f"/thread {post_id} takes add <text>, edit <n> <text> or remove <n>. Usage: {req.spec.usage}")
    with ctx.db.session() as session:
        post = editable_post(session, ws_id, post_id, "changed")
        ws = get_workspace(session, ws_id)
        texts = [post.text, *post.parts]
        if action == "add":
            added = split_parts(after)
            if not after.strip():
                raise UserError(f"What should the new part say? /thread {post_id} add <text>. Nothing changed.")
            texts += added
            if len(texts) > MAX_PARTS:
                raise UserError(f"#{post_id} would have {len(texts)} parts; Herald sends at most {MAX_PARTS}. "
                                "Nothing changed.")
            what = f"part {len(texts)} added" if len(added) == 1 else f"parts {len(texts) - len(added) + 1}–{len(texts)} added"
        else:
            number_word, _, text = after.strip().partition(" ")
            number = int(number_word) if number_word.isdigit() else 0
            if not 1 <= number <= len(texts):
                raise UserError(f"#{post_id} has {len(texts)} part(s); name one of 1–{len(texts)}, e.g. "
                                f"/thread {post_id} {action} {len(texts)}{' <text>' if action == 'edit' else ''}. "
                                "Nothing changed.")
            if action == "edit":
                if not text.strip():
                    raise UserError(f"Part {number} can't be empty: /thread {post_id} edit {number} <text>, or "
                                    f"/thread {post_id} remove {number}. Nothing changed.")
                texts[number - 1] = text.strip()
                what = f"part {number} edited"
            else:
                if len(texts) == 1:
                    raise UserError(f"#{post_id} has only one part: it is the post itself. Nothing changed.")
                texts.pop(number - 1)
                what = f"part {number} removed"
        post.text, post.parts = texts[0], texts[1:]
        check_steps(ctx, session, post, ws)
        note = content_changed(ctx, session, post, ws, req.command.actor, f"thread: {what}")
    return await after_content_change(req, post_id, f"#{post_id}: {what} ({len(texts)} part(s)).", note)


@command(
    "comment",
    usage="/comment <post> <text> | off | replies on|off", example="/comment 12 Link in bio 👆",
    summary="set the first comment posted right after a post (or remove it)",
    details=("Instagram, Facebook, LinkedIn and YouTube get it as the first comment under the post. On X, Bluesky, "
             "Mastodon and Threads it goes as a reply to the post only when asked: /comment 12 replies on. A draft "
             "can carry it too: a line comment=<text>. Each change is an edit: earlier approvals no longer count."),
    roles=EDITORS,
    group="Posts",
    takes=(Param.post(), Param.text(description="the comment's text, off, or replies on|off")),
)
async def comment(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    post_id, rest = req.post_and_rest()
    rest = rest.strip()
    if not rest:
        raise UserError(f"What should the comment say? Usage: {req.spec.usage}")
    with ctx.db.session() as session:
        post = editable_post(session, ws_id, post_id, "changed")
        ws = get_workspace(session, ws_id)
        words = rest.lower().split()
        if words == ["off"]:
            if not post.comment:
                raise UserError(f"#{post_id} has no first comment. Nothing changed.")
            post.comment, post.comment_replies = None, False
            what = "first comment removed"
        elif len(words) == 2 and words[0] == "replies" and words[1] in ("on", "off"):
            if not post.comment:
                raise UserError(f"#{post_id} has no first comment yet: /comment {post_id} <text> first.")
            post.comment_replies = words[1] == "on"
            what = ("first comment also as a reply on X, Bluesky, Mastodon and Threads" if post.comment_replies
                    else "first comment no longer as a reply on networks with threads")
        else:
            post.comment = rest
            what = "first comment set"
        check_steps(ctx, session, post, ws)
        note = content_changed(ctx, session, post, ws, req.command.actor, what)
    return await after_content_change(req, post_id, f"#{post_id}: {what}.", note)
