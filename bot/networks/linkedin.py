"""LinkedIn: posts by a member or an organization page through the Posts API (Community Management).

`/connect linkedin name=<name> access_token=<token> [author=urn:li:organization:<id>]`

- Every call sends `Authorization: Bearer`, `LinkedIn-Version: YYYYMM` (`API_VERSION`, or `api_version=`)
  and `X-Restli-Protocol-Version: 2.0.0`.
- A post is `POST /rest/posts` {author, commentary, visibility PUBLIC, distribution MAIN_FEED,
  lifecycleState PUBLISHED}; LinkedIn answers 201 with the post URN in the `x-restli-id` header.
- Images: `POST /rest/images?action=initializeUpload` → uploadUrl + image URN → `PUT` the bytes →
  `content.media` (one) or `content.multiImage` (2–20). A link without images becomes
  `content.article {source, title}` (LinkedIn doesn't fetch the title itself).
- `commentary` is LinkedIn's "little" text format: reserved characters are backslash-escaped, or
  LinkedIn silently cuts the post at the first one; URLs and #hashtags are left as they are.
- LinkedIn has no idempotency key: a send whose answer is lost is UNKNOWN_OUTCOME. Uploaded image
  URNs are kept in `resume` so a retry doesn't upload them again.
- Country targeting (a delivery whose audience has a country, `Outgoing.country`, on an organization page):
  the post's `distribution.targetEntities` is `[{"geoLocations": ["urn:li:geo:<id>"]}]`, the country's geo URN
  found once per country with the Geo Typeahead API (`GET /rest/geoTypeahead?q=search&query=<English name>`,
  the element whose displayText is the country's name). LinkedIn targets organization posts only, and refuses a
  target audience under 300 followers (the refusal reaches the team as LinkedIn words it). A member's post
  reaches all followers, and the card says so. Sources: Posts API, "distribution.targetEntities" (organization
  posts' target audience: geoLocations, seniorities, industries, …),
  https://learn.microsoft.com/en-us/linkedin/marketing/community-management/shares/posts-api; Geo Typeahead,
  https://learn.microsoft.com/en-us/linkedin/shared/references/v2/standardized-data/locations/geo-typeahead.
- Rate limits are daily (per app and per member, reset at midnight UTC) and a 429 carries no reset
  header: Herald waits an hour (`RETRY_AFTER_429`) rather than guess.
- Metrics: organization posts via `/rest/organizationalEntityShareStatistics`; member posts via
  `/rest/socialMetadata` (reactions and comments only: member impressions need r_member_postAnalytics).
- Comments: `GET /rest/socialActions/{post urn}/comments`; Herald answers one with `POST
  /rest/socialActions/{comment urn}/comments` {actor, object (the post), parentComment, message.text}: open to
  w_organization_social (pages) and w_member_social (members), the scopes Herald already asks for.
- Access tokens last 60 days; refresh tokens exist only for approved partners. Where one was
  granted (refresh_token + client_id + client_secret), `refresh` uses it at www.linkedin.com.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pycountry

from bot.networks.common import (
    bearer,
    due_refresh,
    renewed_tokens,
    stored_expiry,
    to_int,
    token_answer,
)
from bot.networks.http import HttpNetwork
from handlers.core.counting import TextRules
from handlers.core.ports import (
    AccountView,
    Clock,
    Comment,
    ConnectSpec,
    ErrorKind,
    FollowUpOut,
    MediaFile,
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

API_VERSION = "202610"  # LinkedIn-Version; each version is supported for at least a year
OAUTH_BASE = "https://www.linkedin.com"
RETRY_AFTER_429 = 3600.0  # LinkedIn's 429 says nothing about when to come back
POSTING_ROLES = ("ADMINISTRATOR", "DIRECT_SPONSORED_CONTENT_POSTER", "CONTENT_ADMINISTRATOR", "CONTENT_ADMIN")
STATS_BATCH = 20
RESERVED = set("\\|{}@[]()<>#*_~")
_URL = re.compile(r"https?://\S+")
_HASHTAG = re.compile(r"#\w+")
_AUTHOR = re.compile(r"urn:li:(person|organization):[A-Za-z0-9_\-]+")


def escape_little(text: str) -> str:
    """Escape LinkedIn "little" reserved characters, keeping URLs and #hashtags intact."""
    out: list[str] = []
    i = 0
    while i < len(text):
        url = _URL.match(text, i)
        if url and (i == 0 or not text[i - 1].isalnum()):
            out.append(url.group())
            i = url.end()
            continue
        tag = _HASHTAG.match(text, i)
        if tag and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "&")):
            out.append(tag.group())
            i = tag.end()
            continue
        ch = text[i]
        out.append("\\" + ch if ch in RESERVED else ch)
        i += 1
    return "".join(out)


class LinkedInNetwork(HttpNetwork):
    key = "linkedin"
    url_id_pattern = r"(?P<id>urn:li:(?:share|ugcPost|activity):\d+)"
    label = "LinkedIn"
    idempotent = False
    default_base_url = "https://api.linkedin.com"
    # ~150 posts a day per member (third-party figure; LinkedIn publishes no number)
    publish_limits = ((150, 86400.0),)
    profile = NetworkProfile(
        key="linkedin", label="LinkedIn",
        text=TextRules(3000, max_images=20),
        # daily per-member and per-app limits that LinkedIn doesn't publish
        read_budget=ReadBudget(2_000, timedelta(days=1)),
        best_times=(PostingWindow((1, 2), 10, 12),),
        hosts=frozenset({"linkedin.com", "lnkd.in"}), site_names=frozenset({"linkedin"}),
        # LinkedIn refuses a post identical to a recent one (422 "duplicate") and publishes no window
        duplicate_window=timedelta(days=90),
        first_comment=True,
        # an organization page's post carries its audience's country as the post's target audience
        # (distribution.targetEntities geoLocations); LinkedIn targets no member's post
        country_targeting=True,
        country_targeting_only=("author", "urn:li:organization:", "organization pages"),
    )
    no_replies = None  # a nested comment through the Comments API
    reply_limits = ()  # comments aren't counted with the posts (LinkedIn's daily call limits still apply)
    reply_max = 1250  # characters in a comment (3p figure; LinkedIn publishes none)
    connect_spec = ConnectSpec(
        required=("access_token",),
        optional=("author", "client_id", "expires_at", "oauth_base_url", "api_version"),
        secret=("access_token", "refresh_token", "client_secret"),
        help=(
            "Create an app at https://www.linkedin.com/developers/apps with the Community Management API "
            "(scopes w_organization_social, r_organization_social, rw_organization_admin for a page; "
            "w_member_social and openid profile for yourself), authorize it and copy the access token. "
            "author= is the page (urn:li:organization:<id>, the number in the page's admin URL) or leave it "
            "out to post as yourself. Tokens last 60 days; add refresh_token=, client_id= and client_secret= "
            "if LinkedIn granted you refresh tokens. Example: "
            "/connect linkedin name=acme-li access_token=AQX… author=urn:li:organization:2414183"
        ),
    )

    def __init__(self, client: httpx.AsyncClient, clock: Clock) -> None:
        super().__init__(client, clock)
        self._geo: dict[tuple[str, str], str] = {}  # (API base, country) → geo URN

    # -- plumbing --------------------------------------------------------------------------

    def headers(self, account: AccountView) -> dict[str, str]:
        return {
            **bearer(account.credentials.get("access_token", "")),
            "LinkedIn-Version": str(account.settings.get("api_version") or API_VERSION),
            "X-Restli-Protocol-Version": "2.0.0",
        }

    def classify(self, response: httpx.Response) -> PublishError | None:
        reason = self.error_reason(response)
        status = response.status_code
        if status == 429:
            return PublishError(
                ErrorKind.RATE_LIMITED,
                f"LinkedIn says too many requests ({reason}); its limits are daily and it doesn't say when "
                "they reset, so Herald waits an hour",
                retry_after=self.retry_after(response) or RETRY_AFTER_429,
            )
        if status == 422 and "duplicate" in reason.lower():
            return PublishError(ErrorKind.REJECTED, f"LinkedIn refuses duplicate posts ({reason})")
        if status == 426:
            return PublishError(ErrorKind.REJECTED, f"LinkedIn no longer supports this API version ({reason}); "
                                "reconnect with a newer api_version=YYYYMM")
        if status == 403:
            return PublishError(ErrorKind.REJECTED, f"LinkedIn refused: {reason} (the token may lack "
                                "w_organization_social / w_member_social, or the member isn't a page admin)")
        return None

    def author(self, account: AccountView) -> str:
        author = str(account.settings.get("author") or "")
        if not author:
            raise PublishError(ErrorKind.REJECTED, "this LinkedIn account has no author; reconnect it")
        return author

    async def geo_urn(self, account: AccountView, country: str) -> str:
        """The geo URN of a country (ISO 3166-1 alpha-2), from LinkedIn's Geo Typeahead: the element whose
        displayText is one of the country's English names; remembered per country (geo ids don't change)."""
        code = country.upper()
        known = (self.base(account), code)
        if known in self._geo:
            return self._geo[known]
        found = pycountry.countries.get(alpha_2=code)
        if found is None:
            raise PublishError(ErrorKind.REJECTED, f"'{country}' isn't a country code LinkedIn can target; "
                               "fix the audience's country=")
        names = [str(getattr(found, attr)) for attr in ("common_name", "name", "official_name")
                 if getattr(found, attr, None)]
        answer = await self.call("GET", f"{self.base(account)}/rest/geoTypeahead", headers=self.headers(account),
                                 params={"q": "search", "query": names[0],
                                         "locale": "(language:en,country:US)"})
        wanted = {n.casefold() for n in names}
        for element in answer.get("elements") or []:
            if str(element.get("displayText") or "").casefold() in wanted and element.get("entity"):
                self._geo[known] = str(element["entity"])
                return self._geo[known]
        offered = ", ".join(str(e.get("displayText")) for e in (answer.get("elements") or [])[:5]) or "nothing"
        raise PublishError(ErrorKind.REJECTED, f"LinkedIn has no location named {names[0]} to target (it "
                           f"offered {offered}); nothing was sent")

    # -- connect ---------------------------------------------------------------------------

    async def verify(self, account: AccountView) -> Verified:
        raw = str(account.settings.get("author") or "").strip()
        if raw.isdigit():
            raw = f"urn:li:organization:{raw}"
        if raw and not _AUTHOR.fullmatch(raw):
            raise ValueError("author= must be urn:li:organization:<id> (a page) or urn:li:person:<id>, "
                             "or left out to post as yourself")
        base = self.base(account)
        if raw.startswith("urn:li:organization:"):
            org_id = raw.rsplit(":", 1)[1]
            acls = await self.call("GET", f"{base}/rest/organizationAcls", headers=self.headers(account),
                                   params={"q": "roleAssignee", "state": "APPROVED"})
            roles = [e.get("role") for e in acls.get("elements", []) if e.get("organization") == raw]
            allowed = [r for r in roles if r in POSTING_ROLES]
            if not allowed:
                have = f" (your roles there: {', '.join(map(str, roles))})" if roles else ""
                raise ValueError(f"this LinkedIn member can't post for {raw}{have}; a page admin or content "
                                 "admin must authorize the app")
            name = raw
            try:
                org = await self.call("GET", f"{base}/rest/organizations/{org_id}", headers=self.headers(account))
                name = str(org.get("localizedName") or raw)
            except PublishError as exc:
                if exc.kind == ErrorKind.AUTH_EXPIRED:
                    raise
            return Verified(description=f"LinkedIn page {name} ({raw}, {allowed[0].lower()})",
                            settings={"author": raw})
        info = await self.call("GET", f"{base}/v2/userinfo", headers={"Authorization": self.headers(account)[
            "Authorization"]})
        sub = str(info.get("sub") or "")
        if not sub:
            raise ValueError("LinkedIn didn't say who this token belongs to; authorize with the openid scope")
        person = f"urn:li:person:{sub}"
        if raw and raw != person:
            raise ValueError(f"author={raw} isn't the member who authorized this token ({person})")
        return Verified(description=f"LinkedIn member {info.get('name') or sub} ({person})", settings={"author": person})

    # -- publish ---------------------------------------------------------------------------

    async def upload_image(self, account: AccountView, media: MediaFile) -> str:
        base = self.base(account)
        init = await self.call("POST", f"{base}/rest/images", headers=self.headers(account),
                               params={"action": "initializeUpload"},
                               json={"initializeUploadRequest": {"owner": self.author(account)}})
        value = init.get("value") or {}
        upload_url, urn = value.get("uploadUrl"), value.get("image")
        if not upload_url or not urn:
            raise PublishError(ErrorKind.TRANSIENT, "LinkedIn didn't return an image upload URL")
        await self.call("PUT", str(upload_url), expect_json=False, content=media.data,
                        headers={"Authorization": self.headers(account)["Authorization"],
                                 "Content-Type": media.content_type or "application/octet-stream"})
        return str(urn)

    async def publish(self, account: AccountView, post: Outgoing) -> Published:
        images = [m for m in post.media if m.content_type.startswith("image/")]
        if len(post.media) != len(images):
            raise PublishError(ErrorKind.REJECTED, "Herald posts only images to LinkedIn, not videos")
        if len(images) > 20:
            raise PublishError(ErrorKind.REJECTED, "LinkedIn takes at most 20 images in a post")
        author = self.author(account)
        # the country's geo URN first: a country LinkedIn can't target stops the post before any upload
        geo = await self.geo_urn(account, post.country) \
            if post.country and self.profile.keeps_to_country(account.settings) else None
        urns: list[str] = list(post.resume.get("image_urns") or [])
        if len(urns) != len(images):
            urns = []
            try:
                for media in images:
                    urns.append(await self.upload_image(account, media))
            except PublishError as exc:
                if exc.kind == ErrorKind.UNKNOWN_OUTCOME:  # an image upload is not a post: safe to redo
                    raise PublishError(ErrorKind.TRANSIENT, exc.reason) from exc
                raise
        body: dict[str, Any] = {
            "author": author,
            "commentary": escape_little(post.text),
            "visibility": "PUBLIC",
            "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [],
                             "thirdPartyDistributionChannels": []},
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": False,
        }
        if len(urns) == 1:
            body["content"] = {"media": {"id": urns[0]}}
        elif urns:
            body["content"] = {"multiImage": {"images": [{"id": u} for u in urns]}}
        elif post.link:
            body["content"] = {"article": {"source": post.link, "title": article_title(post.text, post.link)}}
        if geo is not None:
            body["distribution"]["targetEntities"] = [{"geoLocations": [geo]}]
        resume = {"image_urns": urns} if urns else {}
        await self.hold_back(account)
        try:
            response = await self.call("POST", f"{self.base(account)}/rest/posts", sending=True, expect_json=False,
                                       headers=self.headers(account), json=body)
        except PublishError as exc:
            raise PublishError(exc.kind, exc.reason, retry_after=exc.retry_after, resume=resume) from exc
        urn = response.headers.get("x-restli-id") or response.headers.get("x-linkedin-id")
        if not urn:
            raise PublishError(ErrorKind.UNKNOWN_OUTCOME, f"LinkedIn answered {response.status_code} without the "
                               "post's id; the post may or may not be there", resume=resume)
        return Published(remote_id=urn, url=f"https://www.linkedin.com/feed/update/{urn}/")

    # -- metrics and comments --------------------------------------------------------------

    async def fetch_metrics(self, account: AccountView, remote_ids: list[str]) -> dict[str, Metrics]:
        author = self.author(account)
        if author.startswith("urn:li:organization:"):
            return await self._org_metrics(account, author, remote_ids)
        return await self._member_metrics(account, remote_ids)

    async def _org_metrics(self, account: AccountView, org: str, remote_ids: list[str]) -> dict[str, Metrics]:
        readings: dict[str, Metrics] = {}
        for start in range(0, len(remote_ids), STATS_BATCH):
            batch = remote_ids[start:start + STATS_BATCH]
            shares = [r for r in batch if r.startswith("urn:li:share:")]
            ugc = [r for r in batch if r.startswith("urn:li:ugcPost:")]
            # Rest.li 2.0: List(...) syntax stays literal, the URNs inside are encoded
            query = f"q=organizationalEntity&organizationalEntity={quote(org, safe='')}"
            if shares:
                query += "&shares=List(" + ",".join(quote(s, safe="") for s in shares) + ")"
            if ugc:
                query += "&ugcPosts=List(" + ",".join(quote(s, safe="") for s in ugc) + ")"
            if not shares and not ugc:
                continue
            data = await self.call("GET", f"{self.base(account)}/rest/organizationalEntityShareStatistics?{query}",
                                   headers=self.headers(account))
            for element in data.get("elements", []):
                urn = element.get("share") or element.get("ugcPost")
                stats = element.get("totalShareStatistics") or {}
                if urn in batch:
                    readings[urn] = Metrics(
                        likes=to_int(stats.get("likeCount")), comments=to_int(stats.get("commentCount")),
                        shares=to_int(stats.get("shareCount")), impressions=to_int(stats.get("impressionCount")),
                        clicks=to_int(stats.get("clickCount")))
        return readings

    async def _member_metrics(self, account: AccountView, remote_ids: list[str]) -> dict[str, Metrics]:
        readings: dict[str, Metrics] = {}
        for urn in remote_ids:
            try:
                data = await self.call("GET", f"{self.base(account)}/rest/socialMetadata/{quote(urn, safe='')}",
                                       headers=self.headers(account))
            except PublishError as exc:
                if exc.kind == ErrorKind.REJECTED:  # deleted or not visible: leave it out
                    continue
                raise
            reactions = data.get("reactionSummaries") or {}
            likes = sum(to_int(v.get("count")) or 0 for v in reactions.values() if isinstance(v, dict))
            comments = (data.get("commentSummary") or {}).get("count")
            readings[urn] = Metrics(likes=likes, comments=to_int(comments))
        return readings

    async def fetch_comments(
        self, account: AccountView, remote_ids: list[str], since: datetime | None
    ) -> list[Comment]:
        found: list[Comment] = []
        for urn in remote_ids:
            try:
                data = await self.call("GET", f"{self.base(account)}/rest/socialActions/{quote(urn, safe='')}/comments",
                                       headers=self.headers(account))
            except PublishError as exc:
                if exc.kind == ErrorKind.REJECTED:
                    continue
                raise
            for element in data.get("elements", []):
                created_ms = (element.get("created") or {}).get("time")
                if created_ms is None:
                    continue
                created = datetime.fromtimestamp(int(created_ms) / 1000, tz=UTC)
                if since is not None and created <= since:
                    continue
                comment_urn = str(element.get("$URN") or element.get("commentUrn") or element.get("id"))
                found.append(Comment(
                    remote_id=comment_urn, parent_remote_id=urn,
                    author=str(element.get("actor") or "someone"),
                    text=str((element.get("message") or {}).get("text") or ""),
                    created_at=created,
                    url=f"https://www.linkedin.com/feed/update/{urn}/"))
        return found

    async def publish_follow_up(self, account: AccountView, follow: FollowUpOut) -> Published:
        """The first comment: the Comments API on the post itself (`object` the post, no `parentComment`)."""
        if follow.kind != "comment":
            raise PublishError(ErrorKind.REJECTED, "LinkedIn has no threads; Herald joins the parts instead")
        return await self.reply(account, ReplyTarget(comment_id=follow.root_id, post_id=follow.root_id), follow.text)

    async def reply(self, account: AccountView, target: ReplyTarget, text: str) -> Published:
        """A comment on the comment, as the account's author (the page or the member); a comment on the post itself
        when the target is the post (`comment_id` == `post_id`: the first comment)."""
        body: dict[str, Any] = {"actor": self.author(account), "object": target.post_id, "message": {"text": text}}
        if target.comment_id != target.post_id:
            body["parentComment"] = target.comment_id
        await self.hold_back(account, reply=True)
        response = await self.call("POST", f"{self.base(account)}/rest/socialActions/"
                                   f"{quote(target.comment_id, safe='')}/comments", sending=True, expect_json=False,
                                   headers=self.headers(account), json=body)
        try:
            created = response.json()
        except ValueError:
            created = {}
        created = created if isinstance(created, dict) else {}
        urn = str(created.get("$URN") or created.get("commentUrn") or "")
        header = response.headers.get("x-restli-id") or ""
        if not urn and header:
            urn = header if header.startswith("urn:") else f"urn:li:comment:({target.post_id},{header})"
        if not urn:
            raise PublishError(ErrorKind.UNKNOWN_OUTCOME, f"LinkedIn answered {response.status_code} without the "
                               "reply's id; it may be there")
        return Published(remote_id=urn, url=f"https://www.linkedin.com/feed/update/{target.post_id}/")

    # -- tokens ----------------------------------------------------------------------------

    async def refresh(self, account: AccountView) -> dict[str, Any] | None:
        creds = account.credentials
        now = self.clock.now()
        expires = stored_expiry(account)
        if not creds.get("refresh_token"):
            if expires is not None and expires <= now:
                raise PublishError(ErrorKind.AUTH_EXPIRED, "the LinkedIn access token has expired and LinkedIn "
                                   f"gave no refresh token; reconnect with /connect linkedin name={account.name} "
                                   "access_token=<new token>")
            return None
        grant = due_refresh(account, now, timedelta(hours=24))
        if grant is None:
            return None
        refresh_token, client_id, client_secret = grant
        oauth = str(account.settings.get("oauth_base_url") or OAUTH_BASE).rstrip("/")
        data = await self.refresh_grant(
            f"{oauth}/oauth/v2/accessToken", refresh_token,
            form={"client_id": client_id, "client_secret": client_secret}, auth=None,
            refused=lambda why: f"LinkedIn refused the refresh token ({why}); reconnect with "
                                f"/connect linkedin name={account.name} access_token=<new token>")
        return renewed_tokens(creds, token_answer(data, "LinkedIn"), now,
                              lifetime=to_int(data.get("expires_in")) or 5184000,
                              refresh_lifetime_field="refresh_token_expires_in")


def article_title(text: str, link: str) -> str:
    for line in text.splitlines():
        cleaned = line.replace(link, "").strip()
        if cleaned:
            return cleaned[:200]
    return urlsplit(link).netloc or link
