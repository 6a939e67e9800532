"""Threads through the Threads API (graph.threads.net, v1.0), with a Threads user token.

Two-phase like Instagram: ``POST /{user-id}/threads`` (``media_type`` TEXT | IMAGE | CAROUSEL,
``text``, ``image_url``, ``link_attachment``) → a container; wait for
``GET /{container-id}?fields=status,error_message`` = FINISHED; ``POST /{user-id}/threads_publish``
(``creation_id``) → the post id. A failure after the container exists keeps
``resume={"container_id": …}`` and the next attempt publishes that container (or, when it says
PUBLISHED, finds the post) instead of making another.

- Links: a text post gets ``link_attachment`` (the preview card); the text keeps its URL.
- Images: Meta downloads them from public URLs built from ``media_url_template=`` /
  ``media_base_url=`` (bot/networks/meta.py); a carousel takes 2–20 items.
- Limits: 500 characters (handlers.core.counting counts emoji by UTF-8 bytes), 5 links, 250 API posts
  per profile per rolling 24 h.
- Metrics: ``GET /{media-id}/insights?metric=views,likes,replies,reposts,quotes,shares``;
  replies: ``GET /{media-id}/replies``.
- Answering a reply: the same two steps with ``reply_to_id`` (a TEXT container, then ``threads_publish``),
  permission ``threads_manage_replies``; 1,000 replies per profile per rolling 24 h, apart from the 250 posts.
- Token: long-lived (60 days), extended with ``GET /refresh_access_token?grant_type=th_refresh_token``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar

from bot.networks.meta import (
    THREADS_VERSION,
    MetaGraphNetwork,
    check_media_template,
    check_media_urls,
    insight_values,
    media_url,
)
from handlers.core.counting import Counting, LimitCheck, TextRules, urls
from handlers.core.ports import (
    AccountView,
    Comment,
    ConnectSpec,
    ErrorKind,
    Metrics,
    NetworkProfile,
    Outgoing,
    Published,
    PublishError,
    ReadBudget,
    ReplyTarget,
    Verified,
)

INSIGHTS = ("views", "likes", "replies", "reposts", "quotes", "shares")


class ThreadsNetwork(MetaGraphNetwork):
    key: ClassVar[str] = "threads"
    label: ClassVar[str] = "Threads"
    api_version: ClassVar[str] = THREADS_VERSION
    default_base_url: ClassVar[str] = "https://graph.threads.net"
    publish_limits: ClassVar[tuple[tuple[int, float], ...]] = ((250, 86400.0),)
    profile: ClassVar[NetworkProfile] = NetworkProfile(
        key="threads", label="Threads",
        text=TextRules(500, Counting.EMOJI_BYTES, "characters", max_images=20, media_only=True),  # 20: a carousel
        # Meta's Business Use Case limits depend on the account's reach: one or two calls per post; stay modest
        read_budget=ReadBudget(1_000, timedelta(hours=1)),
        hosts=frozenset({"threads.net", "threads.com"}),
        threads=True,
    )
    max_links: ClassVar[int] = 5
    status_field: ClassVar[str] = "status"
    no_replies: ClassVar[str | None] = None  # a reply is a post with reply_to_id
    reply_limits: ClassVar[tuple[tuple[int, float], ...] | None] = ((1000, 86400.0),)
    connect_spec: ClassVar[ConnectSpec] = ConnectSpec(
        required=("token",),
        optional=("media_url_template", "media_base_url"),
        secret=("token",),
        help=(
            "A long-lived Threads user token: in your Meta app's Threads use case (use the Threads app id and "
            "secret) grant threads_basic, threads_content_publish, threads_read_replies and "
            "threads_manage_insights (and threads_manage_replies to answer replies with /reply), then exchange the short-lived token (grant_type=th_exchange_token); "
            "Herald renews it before its 60 days end. For images give media_url_template= with {sha256} "
            "where Herald's media is publicly served. "
            "Example: /connect threads name=brand-threads token=THAA… "
            "media_url_template=https://media.example.com/herald/{sha256}.jpg"
        ),
    )

    def text_problems(self, text: str, media_count: int) -> list[str]:
        links = len(urls(text))
        if links > self.max_links:
            return [f"Threads takes at most {self.max_links} links; this post has {links}"]
        return []

    def check(self, account: AccountView, text: str, media_count: int) -> LimitCheck:
        return check_media_urls(super().check(account, text, media_count), account, media_count, self.label)

    def user_id(self, account: AccountView) -> str:
        return str(account.settings.get("user_id") or "me")

    async def verify(self, account: AccountView) -> Verified:
        check_media_template(account.settings)
        body = await self.graph("GET", account, "me", params={"fields": "id,username,name"})
        user = str(body.get("id") or "")
        if not user:
            raise ValueError("Threads didn't say whose token this is")
        username = body.get("username") or user
        return Verified(description=f"@{username} on Threads (id {user})",
                        settings={"user_id": user, "username": username})

    # -- publishing ---------------------------------------------------------------------------

    async def publish(self, account: AccountView, outgoing: Outgoing) -> Published:
        return await self.publish_container(account, self.user_id(account), outgoing, publish_edge="threads_publish",
                                            post_word="post id")

    async def create_container(self, account: AccountView, user: str, outgoing: Outgoing) -> str:
        if not outgoing.media:
            data = {"media_type": "TEXT", "text": outgoing.text}
            if outgoing.link:
                data["link_attachment"] = outgoing.link
        elif len(outgoing.media) == 1:
            data = {"media_type": "IMAGE", "image_url": media_url(account, outgoing.media[0], self.label),
                    "text": outgoing.text}
        else:
            children = []
            for image in outgoing.media:
                child = await self.graph("POST", account, user, "threads",
                                         data={"media_type": "IMAGE", "is_carousel_item": "true",
                                               "image_url": media_url(account, image, self.label)})
                children.append(self.container_id(child, "carousel item container"))
            await self.wait_for_children(account, children)  # a child is never kept as the post's container
            data = {"media_type": "CAROUSEL", "children": ",".join(children), "text": outgoing.text}
        body = await self.graph("POST", account, user, "threads", data=data)
        return self.container_id(body, "container")

    async def find_published(self, account: AccountView, user: str, outgoing: Outgoing,
                             container: str) -> Published:
        return await self.find_by_text(account, user, outgoing, container, edge="threads", text_field="text",
                                       where="profile")

    async def reply(self, account: AccountView, target: ReplyTarget, text: str) -> Published:
        """A TEXT container with reply_to_id, then threads_publish. Only the publish can post: a failure
        before it leaves nothing behind (the container expires unpublished)."""
        user = self.user_id(account)
        body = await self.graph("POST", account, user, "threads",
                                data={"media_type": "TEXT", "text": text, "reply_to_id": target.comment_id})
        container = self.container_id(body, "reply container")
        try:
            status = await self.wait_until_finished(account, container)
        except PublishError as exc:
            if exc.kind == ErrorKind.TRANSIENT:
                raise PublishError(ErrorKind.TRANSIENT, "Threads was still preparing the reply, so it wasn't "
                                   "published; nothing was posted", retry_after=exc.retry_after) from exc
            raise
        if status == "PUBLISHED":
            raise PublishError(ErrorKind.UNKNOWN_OUTCOME, f"Threads says reply container {container} is already "
                               "published; the reply may be there")
        await self.hold_back(account, reply=True)
        published = await self.graph("POST", account, user, "threads_publish", sending=True,
                                     data={"creation_id": container})
        media_id = str(published.get("id") or "") if isinstance(published, dict) else ""
        if not media_id:
            raise PublishError(ErrorKind.UNKNOWN_OUTCOME, "Threads answered the publish without the reply's id; "
                               "it may be there")
        return Published(remote_id=media_id, url=await self.permalink(account, media_id))

    # -- metrics, replies, token --------------------------------------------------------------

    async def fetch_metrics(self, account: AccountView, remote_ids: list[str]) -> dict[str, Metrics]:
        out: dict[str, Metrics] = {}
        followers = await self._followers(account)
        for media_id in remote_ids:
            try:
                body = await self.graph("GET", account, media_id, "insights", params={"metric": ",".join(INSIGHTS)})
            except PublishError as exc:
                if exc.kind == ErrorKind.REJECTED:
                    continue  # deleted or unknown: left out
                raise
            values = insight_values(body)
            shared = [values[k] for k in ("reposts", "shares") if k in values]
            out[media_id] = Metrics(
                likes=values.get("likes"), comments=values.get("replies"),
                shares=sum(shared) if shared else None, quotes=values.get("quotes"),
                impressions=values.get("views"), followers=followers,
            )
        return out

    async def _followers(self, account: AccountView) -> int | None:
        try:
            body = await self.graph("GET", account, self.user_id(account), "threads_insights",
                                    params={"metric": "followers_count"})
        except PublishError as exc:
            if exc.kind in (ErrorKind.AUTH_EXPIRED, ErrorKind.RATE_LIMITED):
                raise
            return None
        return insight_values(body).get("followers_count")

    async def fetch_comments(
        self, account: AccountView, remote_ids: list[str], since: datetime | None
    ) -> list[Comment]:
        return await self.comments_on(account, remote_ids, since, edge="replies",
                                      params={"fields": "id,text,username,timestamp,permalink"},
                                      link_field="permalink")

    async def refresh(self, account: AccountView) -> dict[str, Any] | None:
        return await self.refresh_long_lived(account, f"{self.base(account)}/refresh_access_token",
                                             "th_refresh_token")
