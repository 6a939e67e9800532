"""/reply: answering comments on the networks, through the workspace's approval policy (issue 6).

- `/reply <item> <text>` (editors and admins) answers an inbox item (a comment Herald fetched; its
  number is its InboxItem id) of this workspace, on a network that lets Herald answer, with a text that
  fits that network's rules for a comment. When the policy needs approvals the reply waits
  (`awaiting_approval`) and a card with Approve / Reject goes to the approvers' chats; otherwise it
  is sent at once. A new `/reply` on a waiting reply replaces it (its approvals start over).
- `/approve_reply <item>` and `/reject_reply <item> <reason>` (the card's buttons run them): the
  approver roles, the self-approval rule and the number of approvals are the workspace's post policy.
- Exactly once: the send is claimed by one conditional UPDATE (approved → sending) before the network
  is called; the reply's id is stored the moment the network answers; a send whose answer never came
  is `unconfirmed`, shown to the team and never sent again by itself. `/reply <item>` (no text) sends
  a failed or unconfirmed reply again: a person's decision. The same text keeps the same key, so
  networks that dedupe (Mastodon, Bluesky, the sandbox) can't post it twice.
- The clock (`settle_replies`) marks a reply stuck in `sending` for 10 minutes (a worker stopped in the
  middle) unconfirmed, and sends one left `approved` (stopped between the approval and the send).

States: None → awaiting_approval → approved → sending → sent | failed | unconfirmed; awaiting_approval →
rejected. failed / unconfirmed / rejected take a new reply (and failed / unconfirmed a resend).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from handlers.core.access import EDITORS, role_refusal
from handlers.core.audit import audit
from handlers.core.chat import Button, Reply, theirs
from handlers.core.commands import Request, command, periodic
from handlers.core.context import Context
from handlers.core.crisis import active_crisis, reply_approvals_needed
from handlers.core.errors import UserError
from handlers.core.lookups import account_view, get_workspace, parse_number
from handlers.core.notices import tell_team
from handlers.core.ports import AccountView, ErrorKind, Network, PublishError, ReplyTarget
from handlers.core.words import short_text
from handlers.workspace.health import DEAD, fresh_view, held_reason, mark_dead, reconnect_hint
from storage.crypto import SecretBoxError
from storage.models import Account, Delivery, InboxItem, Post, Workspace

log = logging.getLogger("herald.replies")

AWAITING = "awaiting_approval"
APPROVED = "approved"
SENDING = "sending"
SENT = "sent"
FAILED = "failed"
UNCONFIRMED = "unconfirmed"
REJECTED = "rejected"

STATE_WORDS = {
    None: "not written yet",
    AWAITING: "waiting for approval",
    APPROVED: "approved and about to be sent",
    SENDING: "being sent",
    SENT: "already sent",
    FAILED: "failed",
    UNCONFIRMED: "unconfirmed",
    REJECTED: "rejected",
}
REWRITABLE = (None, AWAITING, FAILED, UNCONFIRMED, REJECTED)  # states a new /reply may replace
STALE_SENDING = timedelta(minutes=10)
ITEM_WORD = "inbox item"


# -- reading ------------------------------------------------------------------------------------------


@dataclass
class Found:
    """An inbox item with the delivery it is under and the account that published it."""

    item: InboxItem
    delivery: Delivery
    account: Account

    @property
    def id(self) -> int:
        assert self.item.id is not None
        return self.item.id

    def label(self, ctx: Context) -> str:
        network = ctx.networks.get(self.account.network)
        return network.label if network is not None else ctx.networks.label(self.account.network)

    def where(self, ctx: Context) -> str:
        return f"{self.account.name} ({self.label(ctx)})"

    def target(self) -> ReplyTarget:
        text = self.item.reply_text or ""
        return ReplyTarget(comment_id=self.item.remote_id,
                           post_id=self.delivery.remote_id or self.item.parent_remote_id,
                           author=self.item.author, idempotency_key=reply_key(self.id, text))


def reply_key(item_id: int, text: str) -> str:
    """The same for every send of one text to one comment: a network that dedupes sees a resend as one reply."""
    return f"herald-reply-{item_id}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def parse_item(token: Any, usage: str) -> int:
    return parse_number(token, which=f"Which comment? Give its inbox number: {usage}",
                        wrong=f"'{token}' isn't an inbox item number (they're the #numbers /inbox shows). Usage: {usage}")


def split_item(req: Request) -> tuple[int, str]:
    """`<item> <text…>` typed (the text may span lines), or the item from a button's args."""
    if "item" in req.command.args:
        return parse_item(req.arg("item"), req.spec.usage), str(req.arg("text", "")).strip()
    match = re.match(r"\s*(\S*)\s*(.*)", req.command.text, re.DOTALL)
    head, rest = (match.group(1), match.group(2)) if match else ("", "")
    return parse_item(head, req.spec.usage), rest.strip()


def load(session: Session, workspace_id: int, item_id: int) -> Found:
    item = session.get(InboxItem, item_id)
    delivery = session.get(Delivery, item.delivery_id) if item is not None else None
    account = session.get(Account, delivery.account_id) if delivery is not None else None
    if item is None or item.workspace_id != workspace_id or delivery is None or account is None:
        raise UserError(f"There's no {ITEM_WORD} #{item_id} in this workspace. /inbox lists the comments Herald "
                        "has fetched, with their numbers.")
    return Found(item, delivery, account)


def load_any(session: Session, item_id: int) -> Found:
    """An inbox item of whichever workspace (for the clock's work)."""
    item = session.get(InboxItem, item_id)
    if item is None:
        raise UserError(f"There's no {ITEM_WORD} #{item_id}.")
    return load(session, item.workspace_id, item_id)


def who(req: Request) -> str:
    actor = req.command.actor
    return f"{actor.platform}:{actor.user_id}"


def can_reply(ctx: Context, found: Found) -> tuple[Network, AccountView]:
    """The account's connector and view when Herald can answer there, else a refusal that says why."""
    network = ctx.networks.get(found.account.network)
    if network is None:
        raise UserError(f"This Herald has no {found.account.network} connector, so it can't answer item #{found.id}.")
    view = account_view(ctx, found.account)
    refusal = network.reply_refusal(view)
    if refusal:
        where = f" The comment: {found.item.url}" if found.item.url else ""
        raise UserError(f"Herald can't answer item #{found.id} on {found.where(ctx)}: {refusal}.{where}")
    return network, view


# -- the card approvers act on ------------------------------------------------------------------------


def reply_card(ctx: Context, session: Session, found: Found, ws: Workspace, headline: str) -> Reply:
    item = found.item
    post = session.get(Post, found.delivery.post_id)
    lines = [headline, f"Inbox item #{found.id} · {found.where(ctx)}"
             + (f" · under post #{post.id}: {short_text(post.text, 50)}" if post is not None else "")]
    lines.append(f"💬 {theirs(item.author or 'someone')}: {theirs(short_text(item.text, 200))}"
                 + (f"  {item.url}" if item.url else ""))
    lines.append(f"↪ Reply by {item.reply_by or 'someone'}:")
    lines += ["│ " + line for line in (item.reply_text or "").splitlines() or [""]]
    lines.append(f"Approvals: {len(item.reply_approvals or [])} of {reply_approvals_needed(session, ws)} · "
                 f"{STATE_WORDS.get(item.reply_state, item.reply_state or '')}")
    buttons: tuple[Button, ...] = ()
    if item.reply_state == AWAITING:
        args = {"item": found.id, "version": item.reply_version}
        buttons = (Button("Approve reply", "approve_reply", args),
                   Button("Reject reply", "reject_reply", args, prompt=f"Why reject the reply to item #{found.id}?"))
    return Reply("\n".join(lines), buttons=buttons)


def require_reply_approver(req: Request, ws: Workspace, found: Found, verb: str) -> None:
    roles = ws.approver_role_set()
    if req.role.value not in roles:
        raise UserError(role_refusal(roles, req.role, f"{verb} replies here", req.actor_name, suggest="approver",
                                     here=False))
    if found.item.reply_by_user == who(req) and not ws.self_approval:
        raise UserError(
            f"You wrote the reply to item #{found.id}, and this workspace doesn't let authors {verb} their own. "
            "Ask another approver (an admin can allow it with /policy self_approval=on)."
        )


def check_waiting(req: Request, found: Found, verb: str) -> None:
    """Refuse a stale button or a reply that isn't waiting for approval."""
    version = req.arg("version")
    if version is not None and int(version) != found.item.reply_version:
        raise UserError(f"That button is for an earlier reply to item #{found.id}; it was rewritten since. Nothing "
                        "changed; look at the latest card.")
    if found.item.reply_state != AWAITING:
        state = STATE_WORDS.get(found.item.reply_state, found.item.reply_state or "")
        raise UserError(f"The reply to item #{found.id} isn't waiting for approval (it's {state}), so it can't be "
                        f"{verb}.")


# -- /reply -------------------------------------------------------------------------------------------


@command(
    "reply",
    usage="/reply <item> <text>", example="/reply 7 Thanks! It ships on Monday.",
    summary="answer a comment from the inbox on its network (approved first when the policy needs it)",
    details=(
        "The item is the comment's number in /inbox. Herald answers on X, Mastodon, Bluesky, Facebook, Instagram, "
        "Threads, YouTube, LinkedIn and the sandbox; not on TikTok, Pinterest, Telegram or Discord channels. "
        "When the workspace needs approvals, the reply waits for them (/approve_reply, /reject_reply) and goes out "
        "when approved. /reply <item> alone sends a failed or unconfirmed reply again; a new text replaces one "
        "still waiting for approval."
    ),
    roles=EDITORS,
    group="Engagement",
)
async def reply(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    item_id, text = split_item(req)
    with ctx.db.session() as session:
        found = load(session, ws_id, item_id)
        ws = get_workspace(session, ws_id)
        network, view = can_reply(ctx, found)
        item = found.item
        state = item.reply_state
        if state in (APPROVED, SENDING):
            raise UserError(f"The reply to item #{item_id} is being sent right now; its outcome follows here.")
        if state == SENT:
            raise UserError(f"Item #{item_id} was already answered on {found.where(ctx)}: "
                            f"{item.reply_url or item.reply_remote_id}.")
        if not text:
            if state in (FAILED, UNCONFIRMED) and item.reply_text:
                text = item.reply_text  # the team sends it again
            elif state == AWAITING:
                raise UserError(f"The reply to item #{item_id} is waiting for approval: /approve_reply {item_id}. "
                                f"To change it, /reply {item_id} <new text>.")
            elif state == REJECTED:
                raise UserError(f"That reply was rejected ({item.reply_error}). Write a new one: /reply {item_id} <text>")
            else:
                raise UserError(f"Say what to answer {item.author or 'them'}: /reply {item_id} <text>")
        else:
            text = network.reply_text(view, found.target(), text)
        check = network.check_reply(view, text)
        if not check.ok:
            raise UserError(f"That reply doesn't fit {found.where(ctx)}: {check.line()}. Nothing was sent; "
                            f"shorten it and try again: /reply {item_id} <text>")
        if found.account.health == DEAD:
            raise UserError(f"{held_reason(found.account)}. Reconnect it with {reconnect_hint(found.account)}, then "
                            f"/reply {item_id} again.")
        # a failed or unconfirmed reply sent again as it was had its approvals: it goes out as it stands
        again = state in (FAILED, UNCONFIRMED) and text == item.reply_text
        # in crisis mode every reply needs an approval given during it, whatever the policy (a resend too)
        crisis = active_crisis(session, ws) is not None
        needed = reply_approvals_needed(session, ws)
        new_state = APPROVED if (again and not crisis) or needed <= 0 else AWAITING
        values: dict[str, Any] = {"reply_state": new_state, "reply_text": text, "reply_error": None}
        if again and new_state == AWAITING:
            values.update(reply_approvals=[])
        if not again:
            values.update(reply_by=req.actor_name, reply_by_user=who(req), reply_version=item.reply_version + 1,
                          reply_approvals=[], reply_remote_id=None, reply_url=None)
        written = session.execute(
            update(InboxItem).execution_options(synchronize_session=False).where(col(InboxItem.id) == item_id)
            .where(col(InboxItem.reply_version) == item.reply_version)
            .where(col(InboxItem.reply_state).is_(None) | col(InboxItem.reply_state).in_([s for s in REWRITABLE if s]))
            .values(**values)
        )
        if written.rowcount != 1:  # type: ignore[attr-defined]
            raise UserError(f"The reply to item #{item_id} changed at the same moment (another person, or Herald "
                            "sending it), so nothing was changed. Look at it again and retry.")
        audit(session, ctx, ws_id, found.delivery.post_id, req.actor_name, "reply",
              f"item #{item_id} on {found.account.name}: " + ("sent again" if again else short_text(text, 120)))
        card: Reply | None = None
        if new_state == AWAITING:
            session.flush()
            session.refresh(item)
            roles = " or ".join(sorted(ws.approver_role_set()))
            why = " — crisis mode: every reply is approved first" if crisis else ""
            card = reply_card(ctx, session, found, ws, f"🔔 {req.actor_name} wants to answer item #{item_id} on "
                              f"{found.where(ctx)} ({needed} approval(s) needed, from {roles}){why}.")
    if card is not None:
        await tell_team(ctx, ws_id, card, purpose="approvals", skip=req.command.chat)
        return Reply(card.text, buttons=card.buttons)
    outcome = await send_reply(ctx, item_id)
    return outcome or Reply(f"The reply to item #{item_id} is on its way (being sent by another Herald worker).")


# -- approving ------------------------------------------------------------------------------------------


@command(
    "approve_reply",
    usage="/approve_reply <item>", example="/approve_reply 7",
    summary="approve a reply to a comment; it goes out as soon as it has the approvals it needs",
    group="Engagement",
)
async def approve_reply(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    item_id, _ = split_item(req)
    me = who(req)
    with ctx.db.session() as session:
        found = load(session, ws_id, item_id)
        ws = get_workspace(session, ws_id)
        require_reply_approver(req, ws, found, "approve")
        check_waiting(req, found, "approved")
        version = found.item.reply_version
    with ctx.db.session() as session:
        # take the row first (a no-op UPDATE locks it until commit), then read it: two approvers at once can't
        # both write an approval list that misses the other's
        locked = session.execute(
            update(InboxItem).execution_options(synchronize_session=False).where(col(InboxItem.id) == item_id).where(col(InboxItem.reply_state) == AWAITING)
            .where(col(InboxItem.reply_version) == version).values(reply_version=col(InboxItem.reply_version))
        )
        if locked.rowcount != 1:  # type: ignore[attr-defined]
            current = load(session, ws_id, item_id)
            check_waiting(req, current, "approved")  # says what it became
            raise UserError(f"The reply to item #{item_id} changed at the same moment; nothing was changed.")
        found = load(session, ws_id, item_id)
        item = found.item
        approvals = list(item.reply_approvals or [])
        if me in approvals:
            raise UserError(f"You already approved the reply to item #{item_id}; it needs "
                            f"{ws.approvals_needed - len(approvals)} more from someone else.")
        approvals.append(me)
        item.reply_approvals = approvals
        needed = reply_approvals_needed(session, ws)
        done = len(approvals) >= needed
        if done:
            item.reply_state = APPROVED
        audit(session, ctx, ws_id, found.delivery.post_id, req.actor_name, "approve_reply",
              f"item #{item_id} ({len(approvals)}/{needed})")
        text = f"✅ {req.actor_name} approved the reply to item #{item_id} ({len(approvals)} of {needed})."
        if not done:
            text += f" {needed - len(approvals)} more approval(s) needed."
    outcome = await send_reply(ctx, item_id) if done else None
    if outcome is not None:
        text += "\n" + outcome.text
    card = None
    if "item" in req.command.args:  # a button on the card: the card shows where the reply stands now
        with ctx.db.session() as session:
            card = reply_card(ctx, session, load(session, ws_id, item_id), get_workspace(session, ws_id),
                              f"Reply to item #{item_id}: approved by {req.actor_name}.")
    await tell_team(ctx, ws_id, Reply(text), skip=req.command.chat)
    return Reply(text, update=card)


@command(
    "reject_reply",
    usage="/reject_reply <item> <reason>", example="/reject_reply 7 Too casual for a complaint",
    summary="reject a reply waiting for approval; it won't be sent",
    group="Engagement",
)
async def reject_reply(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    item_id, reason = split_item(req)
    if not reason:
        raise UserError(f"Say why: {req.spec.usage}")
    with ctx.db.session() as session:
        found = load(session, ws_id, item_id)
        ws = get_workspace(session, ws_id)
        require_reply_approver(req, ws, found, "reject")
        check_waiting(req, found, "rejected")
        rejected = session.execute(
            update(InboxItem).execution_options(synchronize_session=False).where(col(InboxItem.id) == item_id).where(col(InboxItem.reply_state) == AWAITING)
            .where(col(InboxItem.reply_version) == found.item.reply_version)
            .values(reply_state=REJECTED, reply_error=f"rejected by {req.actor_name}: {reason}")
        )
        if rejected.rowcount != 1:  # type: ignore[attr-defined]
            raise UserError(f"The reply to item #{item_id} changed at the same moment; nothing was changed.")
        audit(session, ctx, ws_id, found.delivery.post_id, req.actor_name, "reject_reply", f"item #{item_id}: {reason}")
        card = None
        if "item" in req.command.args:
            session.refresh(found.item)
            card = reply_card(ctx, session, found, ws, f"Reply to item #{item_id} rejected by {req.actor_name}.")
    text = (f"⛔ {req.actor_name} rejected the reply to item #{item_id}: {reason}\nIt won't be sent. "
            f"/reply {item_id} <text> writes a new one.")
    await tell_team(ctx, ws_id, Reply(text), skip=req.command.chat)
    return Reply(text, update=card)


# -- sending -----------------------------------------------------------------------------------------------


FIXES = {
    ErrorKind.REJECTED: "change it and send it again: /reply {item} <text>",
    ErrorKind.AUTH_EXPIRED: "reconnect with /connect {network} name={account} … (in a private chat with me), then "
                            "/reply {item} sends it again",
    ErrorKind.RATE_LIMITED: "{label} is holding this account back for now; /reply {item} sends it again later",
    ErrorKind.TRANSIENT: "nothing was sent; /reply {item} sends it again",
}


def claim_send(ctx: Context, item_id: int) -> bool:
    """approved → sending for exactly one caller, before any network call."""
    with ctx.db.session() as session:
        claimed = session.execute(
            update(InboxItem).execution_options(synchronize_session=False).where(col(InboxItem.id) == item_id).where(col(InboxItem.reply_state) == APPROVED)
            .values(reply_state=SENDING, replied_at=ctx.clock.now(), reply_error=None)
        )
        return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]


async def send_reply(ctx: Context, item_id: int) -> Reply | None:
    """Send an approved reply once; the outcome to show the team, or None when someone else is sending it."""
    if not claim_send(ctx, item_id):
        return None
    with ctx.db.session() as session:
        found = load_any(session, item_id)
        text = found.item.reply_text or ""
        target = found.target()
        secrets_error = ""
        try:
            view: AccountView | None = account_view(ctx, found.account, with_secrets=True)
        except SecretBoxError as exc:
            view, secrets_error = None, str(exc)
    network = ctx.networks.get(found.account.network)
    fresh: AccountView | None = None
    retry_after: float | None = None
    try:
        if network is None:
            raise PublishError(ErrorKind.REJECTED, f"this Herald has no {found.account.network} connector")
        if view is None:
            raise PublishError(ErrorKind.AUTH_EXPIRED, secrets_error)
        if found.account.health == DEAD:
            raise PublishError(ErrorKind.AUTH_EXPIRED, held_reason(found.account))
        fresh = await fresh_view(ctx, network, view)  # a refused refresh marks the account itself
        published = await network.reply(fresh, target, text)
    except PublishError as exc:
        kind, reason, retry_after = exc.kind, exc.reason, exc.retry_after
        if kind == ErrorKind.AUTH_EXPIRED and fresh is not None:  # the network refused the token itself
            await mark_dead(ctx, found.account.id or 0, reason)
    except Exception as exc:  # the request may have left: outcome unknown, never sent again by itself
        log.exception("answering inbox item %s failed with an unexpected error", item_id)
        kind, reason = ErrorKind.UNKNOWN_OUTCOME, f"the send broke off ({type(exc).__name__}) after it may have " \
                                                  f"reached {found.label(ctx)}"
    else:
        record_sent(ctx, item_id, published.remote_id, published.url)
        return Reply(f"↪ Answered {found.item.author or 'the comment'} on {found.where(ctx)} (item #{item_id}): "
                     f"{published.url or published.remote_id}")
    record_failure(ctx, item_id, kind, reason)
    return Reply(failure_line(ctx, found, kind, reason, retry_after))


def record_sent(ctx: Context, item_id: int, remote_id: str, url: str | None) -> None:
    """Store the network's answer at once; a late one (the clock gave the reply up as unconfirmed) corrects it."""
    with ctx.db.session() as session:
        session.execute(
            update(InboxItem).execution_options(synchronize_session=False).where(col(InboxItem.id) == item_id)
            .where(col(InboxItem.reply_state).in_([SENDING, UNCONFIRMED]))
            .values(reply_state=SENT, reply_remote_id=remote_id, reply_url=url, reply_error=None,
                    replied_at=ctx.clock.now())
        )


def record_failure(ctx: Context, item_id: int, kind: ErrorKind, reason: str) -> None:
    state = UNCONFIRMED if kind == ErrorKind.UNKNOWN_OUTCOME else FAILED
    # a reply the clock already gave up as unconfirmed stays so, unless the network said it surely didn't post
    from_states = [SENDING, UNCONFIRMED] if kind in (ErrorKind.REJECTED, ErrorKind.AUTH_EXPIRED) else [SENDING]
    with ctx.db.session() as session:
        session.execute(
            update(InboxItem).execution_options(synchronize_session=False).where(col(InboxItem.id) == item_id).where(col(InboxItem.reply_state).in_(from_states))
            .values(reply_state=state, reply_error=reason[:1000])
        )


def failure_line(ctx: Context, found: Found, kind: ErrorKind, reason: str, retry_after: float | None) -> str:
    item_id = found.id
    if kind == ErrorKind.UNKNOWN_OUTCOME:
        where = f" ({found.item.url})" if found.item.url else ""
        return (f"? The reply to item #{item_id} on {found.where(ctx)} is unconfirmed — {reason}. It may be there, "
                f"so Herald won't send it again on its own. Look under the comment{where}: if your reply is there, "
                f"there's nothing more to do; if not, /reply {item_id} sends it again.")
    fix = FIXES.get(kind, "/reply {item} sends it again").format(
        item=item_id, network=found.account.network, account=found.account.name, label=found.label(ctx))
    if kind == ErrorKind.RATE_LIMITED and retry_after:
        fix += f" (in about {max(1, round(retry_after / 60))} min)"
    return f"✗ The reply to item #{item_id} on {found.where(ctx)} didn't go out: {reason} → {fix}"


# -- the clock ------------------------------------------------------------------------------------------


@periodic("replies", every=timedelta(minutes=1))
async def settle_replies(ctx: Context) -> int:
    """Replies a stopped worker left behind: stuck sending → unconfirmed (told once); approved → sent now."""
    now = ctx.clock.now()
    cutoff = now - STALE_SENDING
    with ctx.db.session() as session:
        stuck = session.exec(select(InboxItem.id).where(col(InboxItem.reply_state) == SENDING)
                             .where(col(InboxItem.replied_at) <= cutoff)).all()
        approved = session.exec(select(InboxItem.id).where(col(InboxItem.reply_state) == APPROVED)).all()
    settled = 0
    for item_id in stuck:
        assert item_id is not None
        reason = (f"Herald stopped while sending it (no answer for {int(STALE_SENDING.total_seconds() // 60)} "
                  "minutes)")
        with ctx.db.session() as session:
            marked = session.execute(  # the UPDATE is the claim: one worker tells the team
                update(InboxItem).execution_options(synchronize_session=False).where(col(InboxItem.id) == item_id).where(col(InboxItem.reply_state) == SENDING)
                .where(col(InboxItem.replied_at) <= cutoff).values(reply_state=UNCONFIRMED, reply_error=reason)
            ).rowcount == 1  # type: ignore[attr-defined]
            found = load_any(session, item_id) if marked else None
        if found is not None:
            settled += 1
            await tell_team(ctx, found.item.workspace_id,
                            Reply(failure_line(ctx, found, ErrorKind.UNKNOWN_OUTCOME, reason, None)))
    for item_id in approved:
        assert item_id is not None
        outcome = await send_reply(ctx, item_id)
        if outcome is not None:
            settled += 1
            with ctx.db.session() as session:
                ws_id = load_any(session, item_id).item.workspace_id
            await tell_team(ctx, ws_id, outcome)
    return settled
