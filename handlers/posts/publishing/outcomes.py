"""Unknown outcomes checked with the network before the team is asked (ARCHITECTURE.md, "The promises").

A send whose answer was lost (UNKNOWN_OUTCOME, or a crash while it was `sending`) is first looked up on
its network with `Network.look_for_post`:
- found → `sent`, with the network's remote id, and the team's report says Herald confirmed it there;
- surely not there (only where the network's answer is authoritative) → `pending`, for a normal retry;
- can't tell, or the check itself fails or takes too long → `unconfirmed`, shown with /confirm and /retry.
A check never posts a second time: the connectors only ask, or resend where the network dedupes.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlmodel import Session, select

from handlers.core.context import Context
from handlers.core.lookups import account_view, delivery_audience, get_workspace
from handlers.core.ports import CANT_TELL, AccountView, Found, Network, Outgoing, Published
from handlers.posts.media import load_media
from handlers.posts.render import render
from storage.crypto import SecretBoxError
from storage.models import Account, Delivery, Post

log = logging.getLogger("herald.publishing")

CHECK_TIMEOUT = 60.0  # one look-up on the network; past it, can't tell


async def ask_network(network: Network, account: AccountView, post: Outgoing, since: datetime) -> Found:
    """The network's answer about one delivery; CANT_TELL when the check fails in any way."""
    try:
        return await asyncio.wait_for(network.look_for_post(account, post, since), CHECK_TIMEOUT)
    except Exception as exc:  # a check that breaks tells nothing: the delivery stays unconfirmed
        log.warning("checking delivery %s with %s failed: %s", post.delivery_id, account.network, exc)
        return CANT_TELL


def not_anothers(ctx: Context, delivery_id: int, found: Found) -> Found:
    """What the network found, unless it is a post another delivery of the same account already holds: an account
    that reaches two audiences sends two texts that may differ only in their links, and a network that compares
    texts without their links (X) would find the other audience's post. That proves nothing about this one, so it
    stays unconfirmed for a person (/confirm, /retry) rather than count as sent and never go out."""
    if not isinstance(found, Published):
        return found
    with ctx.db.session() as session:
        mine = session.get(Delivery, delivery_id)
        if mine is None:
            return found
        other = session.exec(select(Delivery.id).where(Delivery.account_id == mine.account_id)
                             .where(Delivery.remote_id == found.remote_id).where(Delivery.id != delivery_id)).first()
    if other is not None:
        log.warning("delivery %s: the post found (%s) is delivery %s's; left unconfirmed", delivery_id,
                    found.remote_id, other)
        return CANT_TELL
    return found


def outgoing_of(ctx: Context, session: Session, delivery: Delivery, post: Post, account: Account) -> \
        tuple[AccountView, Outgoing] | None:
    """The account and the delivery as they were sent (the text its claim stored), to look for on the
    network; None when the account's credentials can't be read."""
    assert delivery.id is not None and post.id is not None
    try:
        view = account_view(ctx, account, with_secrets=True)
    except SecretBoxError:
        return None
    audience = delivery_audience(session, delivery)
    rendered = render(ctx, post, account, get_workspace(session, post.workspace_id), checked=False,
                      session=session, audience=audience)
    return view, Outgoing(
        delivery_id=delivery.id, post_id=post.id, idempotency_key=delivery.idempotency_key,
        text=delivery.text or rendered.text, link=rendered.link,
        media=load_media(session, post), campaign=post.campaign, resume=dict(delivery.resume or {}),
        country=audience.country if audience is not None else None,
    )
