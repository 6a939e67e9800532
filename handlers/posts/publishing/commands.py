"""The publishing commands: /publish, /retry, /confirm, /pause and /resume."""

from __future__ import annotations

import re

from sqlalchemy import func
from sqlmodel import Session, select

from handlers.core.access import CREW, EDITORS
from handlers.core.audit import audit
from handlers.core.chat import Reply
from handlers.core.commands import Param, Request, command
from handlers.core.crisis import crisis_refusal
from handlers.core.errors import UserError
from handlers.core.lookups import (
    account_view,
    delivery_audience,
    delivery_label,
    get_audience,
    get_workspace,
    post_targets,
)
from handlers.core.notices import tell_team
from handlers.core.ports import GUARD
from handlers.core.when import format_when
from handlers.core.words import state_label
from handlers.engagement.metrics import first_metrics_at
from handlers.posts.publishing.claims import claim_to_publish_now, reopen_deliveries
from handlers.posts.publishing.due import sweep
from handlers.posts.publishing.send import send_pending, send_slot
from handlers.posts.publishing.settle import settle
from handlers.posts.publishing.threads import NO_ROOT, reopen_steps, send_steps, stuck_steps
from handlers.posts.rules import refuse_series_post
from storage.models import Account, Delivery, DeliveryState, Post, PostState, move_delivery, move_post


@command(
    "pause",
    usage="/pause [reason]", example="/pause Waiting for the press statement",
    summary="hold every publication of the workspace until /resume",
    details="For the day bad news breaks. Scheduled posts stay in the queue; nothing goes out while paused.",
    roles=CREW,
    group="Publishing",
)
async def pause(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    # typed after /pause, or the answer to the prompt of an alert's ⏸ button
    reason = (str(req.arg("text", "") or "") or req.command.text).strip() or None
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        if ws.paused:
            raise UserError(
                f"Already paused by {ws.paused_by} since {format_when(ws.paused_at, ws.timezone) if ws.paused_at else '?'}"
                f"{': ' + ws.pause_reason if ws.pause_reason else ''}. /resume lifts it."
            )
        ws.paused, ws.pause_reason, ws.paused_by, ws.paused_at = True, reason, req.actor_name, ctx.clock.now()
        waiting = session.exec(
            select(func.count()).select_from(Post).where(Post.workspace_id == ws_id)
            .where(Post.state == PostState.SCHEDULED.value)
        ).one()
        audit(session, ctx, ws_id, None, req.actor_name, "pause", reason or "")
    notice = Reply(
        f"⏸ Publishing paused by {req.actor_name}{': ' + reason if reason else ''}.\n"
        f"Nothing goes out until /resume. {waiting} scheduled post(s) wait in /queue."
    )
    await tell_team(ctx, ws_id, notice, skip=req.command.chat)
    return notice


@command(
    "resume",
    usage="/resume", example="/resume",
    summary="lift the pause; posts that came due meanwhile publish if within the grace period",
    roles=CREW,
    group="Publishing",
)
async def resume(req: Request) -> Reply:

    ctx = req.ctx
    ws_id = req.need_workspace()
    with ctx.db.session() as session:
        ws = get_workspace(session, ws_id)
        if not ws.paused:
            raise UserError("Publishing isn't paused.")
        ws.paused, ws.pause_reason, ws.paused_by, ws.paused_at = False, None, None, None
        audit(session, ctx, ws_id, None, req.actor_name, "resume")
    notice = Reply(f"▶️ Publishing resumed by {req.actor_name}. Due posts go out now; /queue shows what's next.")
    await tell_team(ctx, ws_id, notice, skip=req.command.chat)
    await sweep(ctx, workspace_id=ws_id)
    return notice


@command(
    "publish",
    usage="/publish <post>", example="/publish 12",
    summary="publish an approved post now (also sends a post held after downtime)",
    roles=EDITORS,
    group="Publishing",
    takes=(Param.post(),),
)
async def publish(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    post_id, _ = req.post_and_rest()
    with req.post_command() as (session, post, ws):
        refuse_series_post(session, post, "published")
        claim_to_publish_now(ctx, session, post, ws, req.actor_name)
    result = await send_pending(ctx, post_id) or Reply(f"#{post_id} is being published.")
    await tell_team(ctx, ws_id, result, skip=req.command.chat)
    return result


def retry_targets(session: Session, post: Post, pairs: list[tuple[Delivery, Account]],
                  name: str, verb: str = "retry") -> list[tuple[Delivery, Account]]:
    """The deliveries /retry names: every one to an account (all the audiences it reaches), or every one to an
    audience (audience:<name>); refused when the post has none."""
    if name.lower().startswith("audience:"):
        wanted = name.lower().removeprefix("audience:")
        # by the post's own deliveries: an audience removed since it was sent can still be retried
        chosen = [(d, a) for d, a in pairs if (audience := delivery_audience(session, d)) is not None
                  and audience.name == wanted]
        if not chosen:
            known = get_audience(session, post.workspace_id, wanted)  # refuses an unknown one, naming those there are
            raise UserError(f"#{post.id} doesn't go to audience {known.name}. e.g. /{verb} {post.id} "
                            f"{pairs[0][1].name if pairs else 'acme-x'}")
        return chosen
    chosen = [(d, a) for d, a in pairs if a.name.lower() == name.lower()]
    if not chosen:
        raise UserError(f"#{post.id} wasn't sent to an account called {name}.")
    return chosen


@command(
    "retry",
    usage="/retry <post> [account|audience:name]", example="/retry 12",
    summary=("send again what failed (thread parts and first comments too); name an account to resend an "
             "unconfirmed one after checking it's not live"),
    details=("/retry 12 acme-es retries every delivery of #12 to acme-es (each audience it reaches); "
             "/retry 12 audience:south only those to audience south."),
    roles=EDITORS,
    group="Publishing",
    takes=(Param.post(), Param.account(required=False, description=("only this account or audience:<name> "
                                                                     "(default: every failed one)"))),
)
async def retry(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    post_id, account_name = req.post_and_rest()
    with req.post_command() as (session, post, ws):
        if ws.paused:
            raise UserError(f"Publishing is paused ({ws.pause_reason or 'no reason given'}). /resume first.")
        state = PostState(post.state)
        # a post still publishing (other accounts wait to retry by themselves) can have a failed or unconfirmed
        # account the team fixed: /retry acts on those deliveries now, each claimed on its own
        if state not in (PostState.FAILED, PostState.PARTIALLY_PUBLISHED, PostState.PUBLISHING):
            raise UserError(f"#{post.id} is {state_label(post)}; /retry is for posts that failed on some account.")
        held_back = crisis_refusal(session, ws, post)
        if held_back is not None:
            raise UserError(held_back)
        pairs = post_targets(session, post)
        named = retry_targets(session, post, pairs, account_name) if account_name else pairs
        # thread parts and first comments of sent accounts that didn't go (the failed ones, and the unconfirmed ones
        # of an account named: the team checked they aren't there), with the steps stopped after them
        steps = [s for d, _a in named if DeliveryState(d.state) == DeliveryState.SENT
                 for s in stuck_steps(session, d.id or 0, unconfirmed=bool(account_name))]
        if account_name:
            again = [d for d, _a in named if DeliveryState(d.state) in (DeliveryState.FAILED, DeliveryState.UNCONFIRMED)]
            if not again and not steps:
                states = ", ".join(f"{delivery_label(session, d, a)} is {d.state}" for d, a in named)
                raise UserError(f"#{post.id} on {states}; nothing to retry there.")
        else:
            again = [d for d, _a in pairs if DeliveryState(d.state) == DeliveryState.FAILED]
            unconfirmed = [delivery_label(session, d, a) for d, a in pairs if DeliveryState(d.state) == DeliveryState.UNCONFIRMED
                           or stuck_steps(session, d.id or 0, unconfirmed=True)]
            if not again and not steps:
                raise UserError(
                    f"#{post.id} has no failed deliveries. Unconfirmed ones ({', '.join(unconfirmed) or 'none'}) "
                    f"may be live: check, then /retry {post.id} <account> or /confirm {post.id} <account> <link>."
                )
        # the team checked an unconfirmed account it named and found nothing: lift the connector's safety markers
        reopen_deliveries(ctx, session, post, ws, again, lift=GUARD if account_name is not None else None)
        if not reopen_steps(session, steps):
            raise UserError(f"#{post.id} is already being retried or published.")
        what = [delivery_label(session, d, a) for d, a in pairs if d in again]
        if steps:
            what.append(f"{len(steps)} thread part(s) or comment(s)")
        audit(session, ctx, ws_id, post.id, req.actor_name, "retry", ", ".join(what))
    result = await send_pending(ctx, post_id) or Reply(f"#{post_id} is being retried.")
    await tell_team(ctx, ws_id, result, skip=req.command.chat)
    return result


def confirm_targets(session: Session, post: Post, pairs: list[tuple[Delivery, Account]], account_name: str,
                    audience_word: str) -> list[tuple[Delivery, Account]]:
    """The post's deliveries /confirm names: to an account, to an audience (audience:<name>), or to an account
    for one audience; refused when the post has none."""
    chosen = pairs
    if audience_word:
        chosen = retry_targets(session, post, chosen, audience_word, "confirm")
    if account_name:
        chosen = [(d, a) for d, a in chosen if a.name.lower() == account_name.lower()]
        if not chosen:
            tail = f" for {audience_word}" if audience_word else ""
            raise UserError(f"#{post.id} wasn't sent to an account called {account_name}{tail}.")
    return chosen


@command(
    "confirm",
    usage="/confirm <post> <account> [audience:<name>] [link]", example="/confirm 12 acme-x https://x.com/acme/status/1",
    summary="mark an unconfirmed delivery as live after you found it on the network",
    roles=EDITORS,
    group="Publishing",
    takes=(Param.post(), Param.account(), Param.text("link", required=False, description="the published post's link")),
)
async def confirm(req: Request) -> Reply:
    ctx = req.ctx
    ws_id = req.need_workspace()
    post_id, rest = req.post_and_rest()
    words = rest.split(" ")
    account_name, link = words[0], " ".join(words[1:])
    audience_word = ""
    if account_name.lower().startswith("audience:"):
        audience_word, account_name = account_name, ""
    elif link.lower().startswith("audience:"):
        audience_word, _, link = link.partition(" ")
    if not account_name and not audience_word:
        raise UserError(f"Which account? Usage: {req.spec.usage}")
    with req.post_command() as (session, post, _ws):
        pairs = confirm_targets(session, post, post_targets(session, post), account_name, audience_word)
        whom = " ".join(w for w in (account_name, audience_word) if w)
        unconfirmed = [(d, a) for d, a in pairs if DeliveryState(d.state) == DeliveryState.UNCONFIRMED]
        if len(unconfirmed) > 1:  # an account that reaches two audiences of the post, or an audience on two accounts
            labels = [delivery_label(session, d, a) for d, a in unconfirmed]
            first = unconfirmed[0]
            audience = delivery_audience(session, first[0])
            example = f"{first[1].name} audience:{audience.name}" if audience is not None else first[1].name
            raise UserError(f"#{post.id} has {len(unconfirmed)} unconfirmed deliveries for {whom} "
                            f"({', '.join(labels)}); name one: /confirm {post.id} {example} <link>.")
        missing_link = [(d, a) for d, a in pairs if DeliveryState(d.state) == DeliveryState.SENT
                        and d.remote_id is None]
        chosen = unconfirmed[0] if unconfirmed else (missing_link[0] if len(missing_link) == 1 and link.strip()
                                                     else None)
        adding_link = chosen is not None and not unconfirmed
        if chosen is None:
            raise UserError(f"#{post.id} has no unconfirmed delivery to {whom}.")
        delivery, account = chosen
        given = link.strip()
        is_url = "://" in given
        if given and not is_url and not re.fullmatch(r"[\w:./\-]{1,200}", given):
            raise UserError(f"'{given}' is neither a link nor a post id. Usage: {req.spec.usage}")
        network = ctx.networks.get(account.network)
        read_id = network.remote_id_from_url(account_view(ctx, account), given) if network and is_url else None
        remote_id = read_id or (None if is_url else given or None)
        if not adding_link:
            move_delivery(delivery, DeliveryState.SENT)
        now = ctx.clock.now()
        delivery.remote_url = given if is_url else delivery.remote_url
        delivery.remote_id = remote_id or delivery.remote_id
        delivery.updated_at = now
        if not adding_link:
            delivery.sent_at = now
        delivery.error_kind = delivery.last_error = None
        # numbers are read for it like for any sent delivery, when Herald knows its id on the network
        delivery.metrics_due_at = first_metrics_at(now) if delivery.remote_id else None
        no_numbers = delivery.remote_id is None
        audit(session, ctx, ws_id, post.id, req.actor_name, "confirm", f"{account.name} is live {given}".strip())
        state = PostState(post.state)
        if state in (PostState.FAILED, PostState.PARTIALLY_PUBLISHED):
            move_post(post, PostState.PUBLISHING)
        if adding_link:  # the parts and comment that waited for the post's id go now
            stuck = stuck_steps(session, delivery.id or 0, unconfirmed=False)
            if stuck and stuck[0].error_kind == NO_ROOT:
                reopen_steps(session, stuck)
    await send_steps(ctx, post_id, send_slot)  # its thread parts and first comment follow the post now it is known to be live
    result = settle(ctx, post_id) or Reply(f"Marked #{post_id} on {account_name} as live.")
    if no_numbers:
        result = Reply(result.text + f"\n(Herald can't read numbers for {account_name} without the post's link "
                       f"or id: /confirm {post_id} {account_name} <link> again adds it.)")
    await tell_team(ctx, ws_id, result, skip=req.command.chat)
    return result
