"""Instagram professional accounts through the Graph API's content publishing.

Publishing is two-phase and Meta downloads every image itself from a public URL:

1. ``POST /{ig-user-id}/media`` (``image_url``, ``caption``) → a container id; for several images
   one child container each (``is_carousel_item=true``) then a ``media_type=CAROUSEL`` container
   with ``children=…``;
2. wait until ``GET /{container-id}?fields=status_code`` is ``FINISHED``;
3. ``POST /{ig-user-id}/media_publish`` (``creation_id``) → the media id.

A failure after step 1 carries ``resume={"container_id": …}``; the next attempt reads that
container's status and publishes it (or, when it says PUBLISHED, finds the post) instead of
making another. Image URLs come from the account's ``media_url_template=`` or ``media_base_url=``
(see bot/networks/meta.py): Herald must serve its media store publicly for Instagram to work.

Two logins (both from platforms.md §3): ``login=instagram`` (default, Instagram Login,
graph.instagram.com, a 60-day token extended with ``grant_type=ig_refresh_token``) or
``login=facebook`` (Facebook Login, graph.facebook.com, the IG account linked to a Page, with a
Page or system-user token that doesn't expire, so no refresh).

Comments are answered with ``POST /{ig-comment-id}/replies`` (``message``; instagram_business_manage_comments,
or instagram_manage_comments with login=facebook); Instagram files a reply to a reply under its top-level comment.

Limits: 50 API posts per account per rolling 24 h (the current ``media_publish`` reference; a
carousel counts once), captions 2,200 characters, 30 hashtags, 20 mentions, 10 carousel items,
JPEG only (so the public media endpoint should serve JPEG).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar

from bot.networks.meta import (
    MetaGraphNetwork,
    check_media_template,
    check_media_urls,
    insight_values,
    media_url,
)
from handlers.core.counting import HASHTAG_RE, MENTION_RE, LimitCheck, TextRules
from handlers.core.ports import (
    AccountView,
    Comment,
    ConnectSpec,
    ErrorKind,
    FollowUpOut,
    Metrics,
    NetworkProfile,
    Outgoing,
    PostingWindow,
    Published,
    PublishError,
    ReadBudget,
    ReplyTarget,
    Verified,
)

INSIGHTS = ("views", "reach", "likes", "comments", "shares", "saved")
HOSTS = {"instagram": "https://graph.instagram.com", "facebook": "https://graph.facebook.com"}


class InstagramNetwork(MetaGraphNetwork):
    key: ClassVar[str] = "instagram"
    label: ClassVar[str] = "Instagram"
    default_base_url: ClassVar[str] = HOSTS["instagram"]
    publish_limits: ClassVar[tuple[tuple[int, float], ...]] = ((50, 86400.0),)
    profile: ClassVar[NetworkProfile] = NetworkProfile(
        key="instagram", label="Instagram", aliases=("ig",),
        text=TextRules(2200, max_images=10, media_only=True),
        # Meta's Business Use Case limits depend on the account's reach: one or two calls per post; stay modest
        read_budget=ReadBudget(500, timedelta(hours=1)),
        best_times=(PostingWindow((0,), 10, 12), PostingWindow((1,), 9, 13), PostingWindow((2,), 10, 13),
                    PostingWindow((4,), 9, 11)),
        hosts=frozenset({"instagram.com", "instagr.am"}), site_names=frozenset({"instagram"}),
        first_comment=True,
    )
    max_hashtags: ClassVar[int] = 30
    max_mentions: ClassVar[int] = 20
    status_field: ClassVar[str] = "status_code"
    no_replies: ClassVar[str | None] = None  # a reply goes to /{ig-comment-id}/replies
    reply_limits: ClassVar[tuple[tuple[int, float], ...] | None] = ()  # replies aren't in the 50 posts a day
    connect_spec: ClassVar[ConnectSpec] = ConnectSpec(
        required=("token",),
        optional=("login", "ig_user_id", "page_id", "media_url_template", "media_base_url"),
        secret=("token",),
        help=(
            "An Instagram professional (Business/Creator) account. Default login=instagram: in your Meta app's "
            "Instagram use case (Instagram Login, permissions instagram_business_basic, "
            "instagram_business_content_publish, instagram_business_manage_insights, "
            "instagram_business_manage_comments) generate a long-lived (60-day) token; Herald renews it. "
            "Or login=facebook with a Page token of the Page linked to the account and page_id= (or ig_user_id=). "
            "Instagram downloads images from a public URL: give media_url_template= with {sha256} "
            "(and {ext}/{filename}) where Herald's media is served. "
            "Example: /connect instagram name=brand-ig token=IGAA… "
            "media_url_template=https://media.example.com/herald/{sha256}.jpg"
        ),
    )

    def text_problems(self, text: str, media_count: int) -> list[str]:
        problems = []
        tags = len(HASHTAG_RE.findall(text))
        if tags > self.max_hashtags:
            problems.append(f"Instagram takes at most {self.max_hashtags} hashtags; this post has {tags}")
        mentions = len(MENTION_RE.findall(text))
        if mentions > self.max_mentions:
            problems.append(f"Instagram takes at most {self.max_mentions} @mentions; this post has {mentions}")
        if media_count == 0:
            problems.append("Instagram needs at least one image")
        return problems

    def login(self, account: AccountView) -> str:
        return str(account.settings.get("login") or "instagram").lower()

    def base(self, account: AccountView) -> str:
        return (account.base_url or HOSTS.get(self.login(account), self.default_base_url)).rstrip("/")

    def check(self, account: AccountView, text: str, media_count: int) -> LimitCheck:
        return check_media_urls(super().check(account, text, media_count), account, media_count, self.label)

    def user_id(self, account: AccountView) -> str:
        user = str(account.settings.get("ig_user_id") or "").strip()
        if not user:
            raise PublishError(ErrorKind.REJECTED, "this Instagram account has no ig_user_id; reconnect it with "
                               f"/connect instagram name={account.name} token=…")
        return user

    async def verify(self, account: AccountView) -> Verified:
        login = self.login(account)
        if login not in HOSTS:
            raise ValueError("login= is instagram (Instagram Login, the default) or facebook (a Page-linked account)")
        check_media_template(account.settings)
        ig_user = str(account.settings.get("ig_user_id") or "").strip()
        page = str(account.settings.get("page_id") or "").strip()
        if login == "instagram":
            body = await self.graph("GET", account, "me", params={"fields": "user_id,username"})
            found = str(body.get("user_id") or body.get("id") or "")
            if ig_user and found and ig_user != found:
                raise ValueError(f"the token belongs to @{body.get('username')} (id {found}), not {ig_user}")
        elif ig_user:
            body = await self.graph("GET", account, ig_user, params={"fields": "id,username"})
            found = str(body.get("id") or ig_user)
        elif page:
            linked = await self.graph("GET", account, page,
                                      params={"fields": "instagram_business_account{id,username}"})
            body = linked.get("instagram_business_account") or {}
            if not body:
                raise ValueError(f"Page {page} has no Instagram professional account linked to it")
            found = str(body.get("id"))
        else:
            raise ValueError("with login=facebook, give page_id= (the Page linked to the account) or ig_user_id=")
        username = body.get("username") or found
        return Verified(description=f"@{username} on Instagram (id {found})",
                        settings={"ig_user_id": found, "username": username})

    # -- publishing ---------------------------------------------------------------------------

    async def publish(self, account: AccountView, outgoing: Outgoing) -> Published:
        user = self.user_id(account)
        if not outgoing.media:
            raise PublishError(ErrorKind.REJECTED, "Instagram needs at least one image; it has no text-only posts")
        return await self.publish_container(account, user, outgoing, publish_edge="media_publish",
                                            post_word="media id")

    def check_reply(self, account: AccountView, text: str) -> LimitCheck:
        # a comment follows the caption's text rules (2,200 characters, 30 hashtags, 20 mentions), without an image
        return self.measure(text, 1)

    async def reply(self, account: AccountView, target: ReplyTarget, text: str) -> Published:
        return Published(remote_id=await self.comment_on(account, target, "replies", text))

    async def publish_follow_up(self, account: AccountView, follow: FollowUpOut) -> Published:
        """The first comment: `POST /{ig-media-id}/comments` (`message`), as the account."""
        if follow.kind != "comment":
            raise PublishError(ErrorKind.REJECTED, "Instagram has no threads; Herald joins the parts instead")
        target = ReplyTarget(comment_id=follow.root_id, post_id=follow.root_id)
        return Published(remote_id=await self.comment_on(account, target, "comments", follow.text))

    async def create_container(self, account: AccountView, user: str, outgoing: Outgoing) -> str:
        """The post's container: the single image's, or the CAROUSEL's (never a carousel item's: only
        the container returned here may go into resume["container_id"] and to media_publish)."""
        urls = [media_url(account, m, self.label) for m in outgoing.media]
        if len(urls) == 1:
            body = await self.graph("POST", account, user, "media",
                                    data={"image_url": urls[0], "caption": outgoing.text})
            return self.container_id(body, "image container")
        children = []
        for url in urls:
            child = await self.graph("POST", account, user, "media",
                                     data={"image_url": url, "is_carousel_item": "true"})
            children.append(self.container_id(child, "carousel item container"))
        await self.wait_for_children(account, children)
        body = await self.graph("POST", account, user, "media",
                                data={"media_type": "CAROUSEL", "children": ",".join(children),
                                      "caption": outgoing.text})
        return self.container_id(body, "carousel container")

    async def find_published(self, account: AccountView, user: str, outgoing: Outgoing,
                             container: str) -> Published:
        return await self.find_by_text(account, user, outgoing, container, edge="media", text_field="caption",
                                       where="account")

    # -- metrics, comments, token -------------------------------------------------------------

    async def fetch_metrics(self, account: AccountView, remote_ids: list[str]) -> dict[str, Metrics]:
        out: dict[str, Metrics] = {}
        followers = await self._followers(account)
        for media_id in remote_ids:
            try:
                counts = await self.graph("GET", account, media_id, params={"fields": "id,like_count,comments_count"})
            except PublishError as exc:
                if exc.kind == ErrorKind.REJECTED:
                    continue  # deleted or unknown: left out
                raise
            values: dict[str, int] = {}
            try:
                values = insight_values(await self.graph("GET", account, media_id, "insights",
                                                         params={"metric": ",".join(INSIGHTS)}))
            except PublishError as exc:
                if exc.kind in (ErrorKind.AUTH_EXPIRED, ErrorKind.RATE_LIMITED):
                    raise
                # e.g. "(#10) Not enough viewers", carousel children: keep the plain counts
            likes = values.get("likes", counts.get("like_count"))
            comments = values.get("comments", counts.get("comments_count"))
            out[media_id] = Metrics(
                likes=likes if isinstance(likes, int) else None,
                comments=comments if isinstance(comments, int) else None,
                shares=values.get("shares"), saves=values.get("saved"),
                impressions=values.get("views", values.get("impressions")), followers=followers,
            )
        return out

    async def _followers(self, account: AccountView) -> int | None:
        try:
            body = await self.graph("GET", account, self.user_id(account), params={"fields": "followers_count"})
        except PublishError as exc:
            if exc.kind in (ErrorKind.AUTH_EXPIRED, ErrorKind.RATE_LIMITED):
                raise
            return None
        count = body.get("followers_count")
        return count if isinstance(count, int) else None

    async def fetch_comments(
        self, account: AccountView, remote_ids: list[str], since: datetime | None
    ) -> list[Comment]:
        return await self.comments_on(account, remote_ids, since, edge="comments",
                                      params={"fields": "id,text,timestamp,username", "limit": 50}, link_field=None)

    async def refresh(self, account: AccountView) -> dict[str, Any] | None:
        if self.login(account) != "instagram":
            return None  # Page / system-user tokens don't expire
        return await self.refresh_long_lived(account, f"{self.base(account)}/refresh_access_token",
                                             "ig_refresh_token")
