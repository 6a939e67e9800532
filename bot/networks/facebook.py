"""Facebook Pages through the Graph API, with a Page access token.

- Text and link posts: ``POST /{page-id}/feed`` (``message``, ``link``).
- One image: ``POST /{page-id}/photos`` (multipart ``source``, ``message`` as caption) → ``post_id``.
- Several images: each ``POST /{page-id}/photos`` with ``published=false`` (not a post yet), then
  ``POST /{page-id}/feed`` with ``attached_media[i]={"media_fbid": …}``; the uploaded photo ids are
  kept in the failure's ``resume`` so a retry doesn't upload them again.
- Country targeting (a delivery whose audience has a country, ``Outgoing.country``): the feed post carries
  ``targeting={"geo_locations":{"countries":["ES"]}}``, see `targeting_field`; a targeted single image goes out
  the album way (an unpublished photo attached to a targeted feed post), as that is where targeting is documented.
- No idempotency: a failed or unanswered post-creating call is UNKNOWN_OUTCOME.
- Metrics: reactions / comments / shares counts on the post object and ``insights``
  (default ``post_media_view`` (the replacement of ``post_impressions``) and ``post_clicks``;
  ``insights_metrics=`` changes the list, as Meta keeps deprecating metrics), 50 posts per call
  with ``?ids=``.
- Comments: ``GET /{post-id}/comments``; Herald answers one with ``POST /{comment-id}/comments`` (``message``),
  which needs ``pages_manage_engagement`` on the Page token. No idempotency: a lost answer is unconfirmed.
- Page tokens obtained from a long-lived user token don't expire, so there's nothing to refresh.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, ClassVar

from bot.networks.meta import MetaGraphNetwork, insight_values, parse_time
from handlers.core.counting import TextRules
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

DEFAULT_INSIGHTS = ("post_media_view", "post_clicks")
COUNT_FIELDS = "reactions.summary(total_count).limit(0),comments.summary(true).limit(0),shares"
INSIGHT_ALIASES = {
    "impressions": ("post_media_view", "post_impressions"),
    "clicks": ("post_clicks",),
}


def targeting_field(country: str) -> str:
    """The `targeting` form field that keeps a Page post to the people in one country.

    What was checked, and where (December 2026, with the docs search of the stored public pages):
    - `POST /{page-id}/feed` takes `targeting`, an "Object that limits the audience for this content. Anyone not
      in these demographics will not be able to view this content" (Graph API reference, Page Feed:
      https://developers.facebook.com/docs/graph-api/reference/page/feed; those words are the reference's as
      quoted when this was asked for: the stored copies the search reached stop before the parameter table, so
      the parameter's existence here rests on the changelog line below and the Page-feed SDKs that send it).
      The Graph API v2.8 changelog, quoted in restfb/restfb#589: "The targeting and feed_targeting fields on the
      /page/feed edge now consistently use geo_locations" — so a country goes in `geo_locations.countries`, an
      ISO 3166-1 alpha-2 code, the targeting spec the Live Video API documents the same way
      (https://developers.facebook.com/documentation/live-video-api/audience-targeting: `targeting` with
      `geo_locations: {countries: ["US","CA","MX"]}`).
    - Encoding: one form field holding the object as a JSON string, like every Graph API object parameter
      (`attached_media[i]`; the Marketing API's `-F 'targeting={"geo_locations": {"countries":["US"]}}'`,
      https://developers.facebook.com/docs/marketing-api/audiences/reference/basic-targeting); a nested form array
      is ignored (arsduo/koala#221: the geo-targeting was dropped until it was sent JSON-encoded).
    - Not found for `POST /{page-id}/photos` in the reference text the search reached, so a targeted single image
      is attached (unpublished) to a targeted feed post instead; Herald publishes no videos to Facebook.
    """
    return json.dumps({"geo_locations": {"countries": [country.upper()]}}, separators=(",", ":"))


class FacebookNetwork(MetaGraphNetwork):
    key: ClassVar[str] = "facebook"
    label: ClassVar[str] = "Facebook"
    default_base_url: ClassVar[str] = "https://graph.facebook.com"
    publish_limits: ClassVar[tuple[tuple[int, float], ...]] = ()  # Pages publish under BUC call limits only
    profile: ClassVar[NetworkProfile] = NetworkProfile(
        key="facebook", label="Facebook", aliases=("fb",),
        # Facebook accepts more photos per post; 10 is a conservative cap
        text=TextRules(63206, max_images=10, media_only=True),
        # Business Use Case limits depend on the Page's reach; 50 posts per call: stay modest
        read_budget=ReadBudget(2_000, timedelta(hours=1)),
        best_times=(PostingWindow((0,), 8, 13), PostingWindow((1,), 8, 14), PostingWindow((2,), 8, 13),
                    PostingWindow((3,), 8, 12)),
        hosts=frozenset({"facebook.com", "fb.com", "fb.me", "fb.watch"}), site_names=frozenset({"facebook"}),
        # a Page refuses a status identical to a recent one (#506) and Meta publishes no window
        duplicate_window=timedelta(days=90),
        first_comment=True,
        country_targeting=True,  # a Page post's `targeting` keeps it to the audience's country (targeting_field)
    )
    no_replies: ClassVar[str | None] = None  # a reply is a comment on the comment
    reply_max: ClassVar[int | None] = 8000  # a Facebook comment's length (3p figure; Meta publishes none)
    connect_spec: ClassVar[ConnectSpec] = ConnectSpec(
        required=("token",),
        optional=("page_id", "insights_metrics"),
        secret=("token",),
        help=(
            "A Facebook Page access token (pages_manage_posts, pages_read_engagement, pages_show_list; "
            "read_insights for clicks/views; pages_manage_engagement to answer comments with /reply): in Graph API Explorer or your app, get a long-lived user token, "
            "then GET /me/accounts gives each Page's token and id (a Page token got this way doesn't expire; "
            "a Business system-user token works too, with page_id=). "
            "Example: /connect facebook name=brand-fb token=EAAG… page_id=1234567890"
        ),
    )

    def page_id(self, account: AccountView) -> str:
        page = str(account.settings.get("page_id") or "").strip()
        if not page:
            raise PublishError(ErrorKind.REJECTED, "this Facebook account has no page_id; reconnect it with "
                               f"/connect facebook name={account.name} token=… page_id=…")
        return page

    async def verify(self, account: AccountView) -> Verified:
        page = str(account.settings.get("page_id") or "").strip()
        if page and not page.isdigit():
            raise ValueError("page_id= is the Page's number (Page → About → Page transparency, or GET /me/accounts)")
        metrics = str(account.settings.get("insights_metrics") or "")
        if metrics and not all(m.strip().isidentifier() for m in metrics.split(",")):
            raise ValueError("insights_metrics= is a comma-separated list such as post_media_view,post_clicks")
        body = await self.graph("GET", account, page or "me", params={"fields": "id,name,link"})
        page_id = str(body.get("id") or page)
        if page and page_id != page:
            raise ValueError(f"the token belongs to {body.get('name')} (id {page_id}), not Page {page}")
        name = body.get("name") or page_id
        return Verified(description=f"{name} on Facebook (Page id {page_id})",
                        settings={"page_id": page_id, "page_name": name})

    # -- publishing ---------------------------------------------------------------------------

    async def publish(self, account: AccountView, outgoing: Outgoing) -> Published:
        page = self.page_id(account)
        if len(outgoing.media) == 1 and not outgoing.country:
            await self.hold_back(account)
            image = outgoing.media[0]
            body = await self.graph("POST", account, page, "photos", sending=True,
                                    data={"message": outgoing.text, "published": "true"},
                                    files={"source": (image.filename, image.data, image.content_type)})
            remote = str(body.get("post_id") or body.get("id") or "") if isinstance(body, dict) else ""
        else:
            data: dict[str, str] = {"message": outgoing.text}
            photo_ids: list[str] = []
            if outgoing.media:
                photo_ids = await self._unpublished_photos(account, page, outgoing)
                for i, photo in enumerate(photo_ids):
                    data[f"attached_media[{i}]"] = json.dumps({"media_fbid": photo})
            elif outgoing.link:
                data["link"] = outgoing.link
            if outgoing.country:
                data["targeting"] = targeting_field(outgoing.country)
            await self.hold_back(account)
            try:
                body = await self.graph("POST", account, page, "feed", sending=True, data=data)
            except PublishError as exc:
                if photo_ids:
                    exc.resume = {**exc.resume, "photo_ids": photo_ids}
                raise
            remote = str(body.get("id") or "") if isinstance(body, dict) else ""
        if not remote:
            raise PublishError(ErrorKind.UNKNOWN_OUTCOME, "Facebook accepted the post but didn't say its id")
        return Published(remote_id=remote, url=await self._permalink(account, remote))

    async def reply(self, account: AccountView, target: ReplyTarget, text: str) -> Published:
        remote = await self.comment_on(account, target, "comments", text)
        return Published(remote_id=remote, url=await self._permalink(account, remote))

    async def publish_follow_up(self, account: AccountView, follow: FollowUpOut) -> Published:
        """The first comment: `POST /{post-id}/comments` (`message`), as the Page."""
        if follow.kind != "comment":
            raise PublishError(ErrorKind.REJECTED, "Facebook has no threads; Herald joins the parts instead")
        return await self.reply(account, ReplyTarget(comment_id=follow.root_id, post_id=follow.root_id), follow.text)

    async def _unpublished_photos(self, account: AccountView, page: str, outgoing: Outgoing) -> list[str]:
        kept = outgoing.resume.get("photo_ids")
        if isinstance(kept, list) and len(kept) == len(outgoing.media) and all(isinstance(p, str) for p in kept):
            return list(kept)
        ids: list[str] = []
        for image in outgoing.media:
            try:
                body = await self.graph("POST", account, page, "photos",
                                        data={"published": "false"},
                                        files={"source": (image.filename, image.data, image.content_type)})
            except PublishError as exc:
                exc.reason += " (while uploading the photos; nothing was posted)"
                raise
            photo_id = str(body.get("id") or "") if isinstance(body, dict) else ""
            if not photo_id:  # an unpublished photo shows nowhere: starting again posts nothing twice
                raise PublishError(ErrorKind.TRANSIENT, "Facebook answered a photo upload without the photo's id "
                                   "(while uploading the photos; nothing was posted)")
            ids.append(photo_id)
        return ids

    async def _permalink(self, account: AccountView, remote_id: str) -> str | None:
        try:
            body = await self.graph("GET", account, remote_id, params={"fields": "permalink_url"})
        except PublishError:
            return f"https://www.facebook.com/{remote_id}"  # the post exists: never fail the publish for a URL
        url = body.get("permalink_url")
        return url if isinstance(url, str) and url else f"https://www.facebook.com/{remote_id}"

    # -- metrics and comments -----------------------------------------------------------------

    def insights_metrics(self, account: AccountView) -> tuple[str, ...]:
        raw = str(account.settings.get("insights_metrics") or "")
        chosen = tuple(m.strip() for m in raw.split(",") if m.strip())
        return chosen or DEFAULT_INSIGHTS

    async def fetch_metrics(self, account: AccountView, remote_ids: list[str]) -> dict[str, Metrics]:
        out: dict[str, Metrics] = {}
        followers = await self._followers(account)
        metrics = self.insights_metrics(account)
        for start in range(0, len(remote_ids), self.insights_batch):
            chunk = remote_ids[start:start + self.insights_batch]
            counts = await self._lookup(account, chunk, COUNT_FIELDS)
            insights = await self._insights(account, [i for i in chunk if i in counts], metrics)
            for remote_id, body in counts.items():
                values = insights.get(remote_id, {})
                reactions = _summary(body.get("reactions"), "total_count")
                comments = _summary(body.get("comments"), "total_count")
                shares = body.get("shares", {}).get("count", 0) if isinstance(body.get("shares"), dict) else 0
                out[remote_id] = Metrics(
                    likes=reactions, comments=comments, shares=int(shares),
                    impressions=_first(values, INSIGHT_ALIASES["impressions"]),
                    clicks=_first(values, INSIGHT_ALIASES["clicks"]),
                    followers=followers,
                )
        return out

    async def _lookup(self, account: AccountView, ids: list[str], fields: str) -> dict[str, dict[str, Any]]:
        """GET /?ids=a,b&fields=… ; when one id is gone the whole call fails, so then go one by one."""
        if not ids:
            return {}
        try:
            body = await self.graph("GET", account, "", params={"ids": ",".join(ids), "fields": fields})
        except PublishError as exc:
            if exc.kind != ErrorKind.REJECTED:
                raise
            if len(ids) == 1:
                return {}  # a deleted or unknown post: left out
        else:
            return {k: v for k, v in body.items() if isinstance(v, dict)} if isinstance(body, dict) else {}
        found: dict[str, dict[str, Any]] = {}
        for remote_id in ids:
            found.update(await self._lookup(account, [remote_id], fields))
        return found

    async def _insights(self, account: AccountView, ids: list[str], metrics: tuple[str, ...]) -> dict[str, dict]:
        if not ids or not metrics:
            return {}
        field = f"insights.metric({','.join(metrics)})"
        try:
            bodies = await self._lookup(account, ids, field)
        except PublishError as exc:
            if exc.kind in (ErrorKind.AUTH_EXPIRED, ErrorKind.RATE_LIMITED):
                raise
            return {}
        return {k: insight_values(v.get("insights")) for k, v in bodies.items()}

    async def _followers(self, account: AccountView) -> int | None:
        try:
            body = await self.graph("GET", account, self.page_id(account), params={"fields": "followers_count"})
        except PublishError as exc:
            if exc.kind in (ErrorKind.AUTH_EXPIRED, ErrorKind.RATE_LIMITED):
                raise
            return None
        count = body.get("followers_count")
        return int(count) if isinstance(count, int) else None

    async def fetch_comments(
        self, account: AccountView, remote_ids: list[str], since: datetime | None
    ) -> list[Comment]:
        out: list[Comment] = []
        for remote_id in remote_ids:
            params: dict[str, Any] = {"fields": "id,message,created_time,from{id,name},permalink_url",
                                      "filter": "stream", "order": "reverse_chronological", "limit": 100}
            if since is not None:
                params["since"] = int(since.timestamp())
            try:
                body = await self.graph("GET", account, remote_id, "comments", params=params)
            except PublishError as exc:
                if exc.kind == ErrorKind.REJECTED:
                    continue  # the post is gone
                raise
            for item in body.get("data", []) if isinstance(body, dict) else []:
                created = parse_time(item.get("created_time"))
                if created is None or (since is not None and created <= since):
                    continue
                author = item.get("from") if isinstance(item.get("from"), dict) else {}
                out.append(Comment(remote_id=str(item.get("id")), parent_remote_id=remote_id,
                                   author=str(author.get("name") or "someone on Facebook"),
                                   text=str(item.get("message") or ""), created_at=created,
                                   url=item.get("permalink_url")))
        return out


def _summary(node: Any, key: str) -> int:
    if isinstance(node, dict) and isinstance(node.get("summary"), dict):
        value = node["summary"].get(key)
        if isinstance(value, int):
            return value
    return 0


def _first(values: dict[str, int], names: tuple[str, ...]) -> int | None:
    for name in names:
        if name in values:
            return values[name]
    return None
