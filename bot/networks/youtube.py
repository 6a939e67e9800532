"""YouTube: one video per post through the Data API v3 resumable upload.

`/connect youtube name=<name> access_token=<token> made_for_kids=yes|no refresh_token=<token> client_id=<id>
client_secret=<secret>`

- made_for_kids= is required: YouTube (COPPA) makes the channel owner say whether the videos are made
  for children (`status.selfDeclaredMadeForKids`), so Herald never assumes it.

- Upload: `POST /upload/youtube/v3/videos?uploadType=resumable&part=snippet,status` with the JSON
  metadata (title = the text's first line, ≤100 characters; description = the text, ≤5,000 bytes;
  privacyStatus from `privacy_status=`, default public) → a session URI in `Location` → `PUT` the
  bytes there. Starting a session creates nothing, so only the `PUT` can leave a video behind.
- Resume: from the bytes' PUT on, failures carry `resume={"upload_url": …, "in_flight": true}` (the
  video may exist, so retries that run out end unconfirmed, not failed); a retry asks the session
  how far it got (`PUT` with `Content-Range: bytes */<size>`): 308 + `Range` → send the rest, 200/201
  → the video exists already (read it, don't upload again), 404/410 → the session is gone, start over.
- Quota: 10,000 units a day per Google Cloud project, reset at midnight Pacific time. platforms.md
  prices `videos.insert` at 1,600 units (→ 6 uploads a day); Google's current quota page gives it
  its own bucket of 100 calls a day. Herald keeps the stricter 6 a day per account (`publish_limits`).
  A `quotaExceeded` answer waits until the next Pacific midnight.
- Metrics: `GET /youtube/v3/videos?part=statistics` (≤50 ids): viewCount → impressions, likeCount,
  commentCount (favoriteCount is obsolete). Comments: `commentThreads?videoId=`; Herald answers a top-level
  comment with `POST /youtube/v3/comments?part=snippet` `{snippet: {parentId, textOriginal}}` (scope
  youtube.force-ssl, 50 quota units; no idempotency: a lost answer is unconfirmed).
- Tokens: Google access tokens last an hour; refresh at `POST https://oauth2.googleapis.com/token`
  (`oauth_base_url=` to change) with grant_type=refresh_token.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from bot.networks.common import (
    bearer,
    carried,
    due_refresh,
    parse_iso,
    renewed_tokens,
    to_int,
    token_answer,
)
from bot.networks.http import HttpNetwork
from handlers.core.counting import Counting, LimitCheck, TextRules
from handlers.core.ports import (
    IN_FLIGHT,
    AccountView,
    Comment,
    ConnectSpec,
    ErrorKind,
    FollowUpOut,
    MediaFile,
    Metrics,
    NetworkProfile,
    Outgoing,
    Published,
    PublishError,
    ReadBudget,
    ReplyTarget,
    Verified,
)

OAUTH_BASE = "https://oauth2.googleapis.com"
PACIFIC = ZoneInfo("America/Los_Angeles")
PRIVACY = ("public", "unlisted", "private")
YES_NO = {"yes": True, "no": False}
MADE_FOR_KIDS_HELP = ("made_for_kids= must be yes or no: whether this channel's videos are made for children "
                      "(YouTube requires the channel owner to say so; it limits comments and ads on them)")
STATS_BATCH = 50
QUOTA_REASONS = ("quotaExceeded", "dailyLimitExceeded")
SHORT_LIMIT_REASONS = ("rateLimitExceeded", "userRateLimitExceeded")
AUTH_REASONS = ("authError", "insufficientPermissions", "forbidden")
NEEDS_VIDEO = "YouTube needs a video; Herald can't post text or images there"


def seconds_to_pacific_midnight(now: datetime) -> float:
    """How long until YouTube's daily quota resets (midnight in America/Los_Angeles, DST included)."""
    local = now.astimezone(PACIFIC)
    midnight = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=PACIFIC)
    return (midnight.astimezone(UTC) - now.astimezone(UTC)).total_seconds()


def google_error(response: httpx.Response) -> tuple[list[str], str]:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return [], ""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        reasons = [str(e.get("reason")) for e in error.get("errors") or [] if isinstance(e, dict) and e.get("reason")]
        return reasons, str(error.get("message") or "")
    if isinstance(error, str):  # OAuth: {"error": "invalid_grant", "error_description": …}
        return [error], str(body.get("error_description") or "")
    return [], ""


def video_title(text: str, fallback: str) -> str:
    for line in text.splitlines():
        cleaned = re.sub(r"[<>]", "", line).strip()
        if cleaned:
            return cleaned[:100]
    return fallback[:100]


def made_for_kids_setting(settings: dict[str, Any]) -> bool | None:
    """made_for_kids=yes|no as a bool; None when it's missing or something else."""
    return YES_NO.get(str(settings.get("made_for_kids") or "").strip().lower())


class SessionGone(PublishError):
    """The resumable upload session no longer exists (404/410)."""


class YouTubeNetwork(HttpNetwork):
    key = "youtube"
    url_id_pattern = r"(?:[?&]v=|youtu\.be/|/shorts/)(?P<id>[\w-]{11})"
    label = "YouTube"
    idempotent = False
    default_base_url = "https://www.googleapis.com"
    # 10,000 units/day per project at 1,600 per upload = 6 uploads a day (see the module docstring)
    publish_limits = ((6, 86400.0),)
    profile = NetworkProfile(
        key="youtube", label="YouTube", aliases=("yt",),
        text=TextRules(5000, Counting.UTF8, "bytes"),  # no image count: it needs a video (text_problems)
        # 10,000 quota units / day; videos.list costs 1 unit per 50 videos → at most 400 units
        read_budget=ReadBudget(20_000, timedelta(days=1)),
        hosts=frozenset({"youtube.com", "youtu.be"}), site_names=frozenset({"youtube"}),
        first_comment=True,
    )
    no_replies = None  # comments.insert with snippet.parentId
    reply_limits = ()  # replies aren't uploads: only the project's daily quota (quotaExceeded) holds them back
    reply_max = 10000  # characters in a comment (3p figure)
    connect_spec = ConnectSpec(
        required=("access_token", "made_for_kids"),
        optional=("privacy_status", "category_id", "client_id", "expires_at", "oauth_base_url"),
        secret=("access_token", "refresh_token", "client_secret"),
        help=(
            "In Google Cloud Console enable the YouTube Data API v3, create an OAuth client (scopes "
            "youtube.upload and youtube.force-ssl), authorize the channel's Google account (e.g. with the "
            "OAuth Playground) and copy the access and refresh tokens with the client id and secret. "
            "made_for_kids=yes|no is required: the channel owner states whether its videos are made for "
            "children (YouTube's COPPA rule; 'yes' turns off comments and personalised ads on them). "
            "privacy_status=public|unlisted|private (default public; unverified API projects upload "
            "private only). Example: /connect youtube name=acme-yt access_token=ya29.… made_for_kids=no "
            "refresh_token=1//… client_id=123.apps.googleusercontent.com client_secret=GOCSPX-…"
        ),
    )

    def text_problems(self, text: str, media_count: int) -> list[str]:
        """Always NEEDS_VIDEO: the text rules can't tell a video from an image (`check` drops it with media)."""
        angled = ["YouTube descriptions can't contain < or >"] if "<" in text or ">" in text else []
        return [*angled, NEEDS_VIDEO]

    def headers(self, account: AccountView) -> dict[str, str]:
        return bearer(account.credentials.get("access_token", ""))

    def check(self, account: AccountView, text: str, media_count: int) -> LimitCheck:
        """The text rules can't tell a video from an image: with media, the video is checked at publish."""
        result = super().check(account, text, media_count)
        if media_count == 0:
            return result
        problems = [p for p in result.problems if p != NEEDS_VIDEO]
        if made_for_kids_setting(account.settings) is None:
            problems.append("YouTube needs made_for_kids=yes|no on the account: reconnect it with "
                            f"/connect youtube name={account.name} made_for_kids=… (the channel owner decides)")
        if media_count > 1:
            problems.append(f"YouTube takes one video per post; this post has {media_count} files")
        return replace(result, problems=tuple(problems))

    # -- errors ----------------------------------------------------------------------------

    def error_reason(self, response: httpx.Response) -> str:
        reasons, message = google_error(response)
        if message or reasons:
            return f"{message} ({', '.join(reasons)})" if reasons and message else (message or reasons[0])
        return super().error_reason(response)

    def classify(self, response: httpx.Response) -> PublishError | None:
        reasons, _ = google_error(response)
        reason = self.error_reason(response)
        if response.status_code in (404, 410) and response.request.method == "PUT":
            return SessionGone(ErrorKind.REJECTED, f"the YouTube upload session has expired ({reason})")
        if any(r in QUOTA_REASONS for r in reasons):
            wait = seconds_to_pacific_midnight(self.clock.now())
            return PublishError(ErrorKind.RATE_LIMITED, f"the Google project's daily YouTube quota is used up "
                                f"({reason}); it resets at midnight Pacific time", retry_after=wait)
        if any(r in SHORT_LIMIT_REASONS for r in reasons):
            return PublishError(ErrorKind.RATE_LIMITED, f"YouTube says too many requests ({reason})",
                                retry_after=self.retry_after(response) or 60.0)
        if "uploadLimitExceeded" in reasons:
            return PublishError(ErrorKind.REJECTED, f"the channel reached YouTube's daily upload limit ({reason}); "
                                "post it again tomorrow")
        if response.status_code == 401 or any(r in AUTH_REASONS for r in reasons):
            return PublishError(ErrorKind.AUTH_EXPIRED, f"YouTube refused the credentials: {reason}")
        if "youtubeSignupRequired" in reasons:
            return PublishError(ErrorKind.REJECTED, f"this Google account has no YouTube channel ({reason})")
        return None

    # -- connect ---------------------------------------------------------------------------

    async def verify(self, account: AccountView) -> Verified:
        made_for_kids = made_for_kids_setting(account.settings)
        if made_for_kids is None:
            raise ValueError(MADE_FOR_KIDS_HELP)
        privacy = str(account.settings.get("privacy_status") or "public").lower()
        if privacy not in PRIVACY:
            raise ValueError(f"privacy_status= must be one of {', '.join(PRIVACY)}")
        category = str(account.settings.get("category_id") or "22")
        if not category.isdigit():
            raise ValueError("category_id= is a number (22 = People & Blogs)")
        data = await self.call("GET", f"{self.base(account)}/youtube/v3/channels", headers=self.headers(account),
                               params={"part": "snippet", "mine": "true"})
        items = data.get("items") or []
        if not items:
            raise ValueError("this Google account has no YouTube channel; create one, then connect again")
        channel = items[0]
        snippet = channel.get("snippet") or {}
        handle = snippet.get("customUrl") or ""
        return Verified(
            description=f"YouTube channel {snippet.get('title')}{' (' + handle + ')' if handle else ''} "
                        f"(id {channel.get('id')}), uploads {privacy}"
                        f"{', made for kids' if made_for_kids else ', not made for kids'}",
            settings={"channel_id": str(channel.get("id")), "privacy_status": privacy,
                      "made_for_kids": "yes" if made_for_kids else "no"},
        )

    # -- publish ---------------------------------------------------------------------------

    async def publish(self, account: AccountView, post: Outgoing) -> Published:
        videos = [m for m in post.media if m.content_type.startswith("video/")]
        if len(videos) != 1 or len(post.media) != 1:
            raise PublishError(ErrorKind.REJECTED, "YouTube needs exactly one video (and no images) in the post")
        video = videos[0]
        if made_for_kids_setting(account.settings) is None:
            raise PublishError(ErrorKind.REJECTED, "YouTube needs the channel owner to say whether the videos are "
                               f"made for children: reconnect with /connect youtube name={account.name} "
                               "made_for_kids=yes|no …, then /retry")
        upload_url = str(post.resume.get("upload_url") or "")
        if upload_url:
            resumed = await self.resume_upload(account, video, upload_url)
            if resumed is not None:
                return resumed
        return await self.new_upload(account, post, video)

    def metadata(self, account: AccountView, post: Outgoing, video: MediaFile) -> dict[str, Any]:
        stem = video.filename.rsplit(".", 1)[0] or "Video"
        return {
            "snippet": {"title": video_title(post.text, stem), "description": post.text,
                        "categoryId": str(account.settings.get("category_id") or "22")},
            "status": {"privacyStatus": str(account.settings.get("privacy_status") or "public"),
                       "selfDeclaredMadeForKids": bool(made_for_kids_setting(account.settings))},
        }

    async def new_upload(self, account: AccountView, post: Outgoing, video: MediaFile) -> Published:
        await self.hold_back(account)
        response = await self.call(
            "POST", f"{self.base(account)}/upload/youtube/v3/videos", expect_json=False,
            params={"uploadType": "resumable", "part": "snippet,status"},
            headers={**self.headers(account), "X-Upload-Content-Length": str(len(video.data)),
                     "X-Upload-Content-Type": video.content_type or "video/mp4"},
            json=self.metadata(account, post, video))
        upload_url = response.headers.get("location")
        if not upload_url:
            raise PublishError(ErrorKind.TRANSIENT, "YouTube didn't open an upload session; nothing was uploaded")
        return await self.send_bytes(account, video, upload_url, 0)

    async def send_bytes(self, account: AccountView, video: MediaFile, upload_url: str, offset: int) -> Published:
        size = len(video.data)
        resume = {"upload_url": upload_url, IN_FLIGHT: True}  # the bytes may make the video from here on
        headers = {**self.headers(account), "Content-Type": video.content_type or "video/mp4"}
        if offset:
            headers["Content-Range"] = f"bytes {offset}-{size - 1}/{size}"
        try:
            response = await self.call("PUT", upload_url, sending=True, expect_json=False,
                                       content=video.data[offset:], headers=headers)
        except PublishError as exc:
            raise carried(exc, resume) from exc
        if response.status_code == 308:
            raise PublishError(ErrorKind.TRANSIENT, "YouTube kept only part of the video; Herald sends the rest "
                               "on the next try", retry_after=30.0, resume=resume)
        return self.finished(response, resume)

    async def resume_upload(self, account: AccountView, video: MediaFile, upload_url: str) -> Published | None:
        """Carry on with an earlier upload session; None when the session is gone and a new upload is safe."""
        size = len(video.data)
        resume = {"upload_url": upload_url, IN_FLIGHT: True}
        try:
            response = await self.call("PUT", upload_url, expect_json=False, content=b"",
                                       headers={**self.headers(account), "Content-Range": f"bytes */{size}"})
        except SessionGone:
            return None  # expired before the upload finished: no video was made
        except PublishError as exc:
            raise carried(exc, resume) from exc
        if response.status_code == 308:
            match = re.match(r"bytes=0-(\d+)", response.headers.get("range", ""))
            offset = int(match.group(1)) + 1 if match else 0
            return await self.send_bytes(account, video, upload_url, offset)
        return self.finished(response, resume)

    def finished(self, response: httpx.Response, resume: dict[str, Any]) -> Published:
        try:
            video = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise PublishError(ErrorKind.TRANSIENT, "YouTube's answer to the upload wasn't readable; Herald asks "
                               "the upload session again", resume=resume) from exc
        video_id = str(video.get("id") or "")
        if not video_id:
            raise PublishError(ErrorKind.TRANSIENT, "YouTube's answer to the upload had no video id; Herald asks "
                               "the upload session again", resume=resume)
        status = video.get("status") or {}
        if status.get("uploadStatus") == "rejected":
            raise PublishError(ErrorKind.REJECTED, f"YouTube rejected the video ({status.get('rejectionReason')})")
        if status.get("uploadStatus") == "failed":
            raise PublishError(ErrorKind.REJECTED, f"YouTube couldn't process the video ({status.get('failureReason')})")
        return Published(remote_id=video_id, url=f"https://www.youtube.com/watch?v={video_id}")

    # -- metrics and comments --------------------------------------------------------------

    async def fetch_metrics(self, account: AccountView, remote_ids: list[str]) -> dict[str, Metrics]:
        readings: dict[str, Metrics] = {}
        for start in range(0, len(remote_ids), STATS_BATCH):
            batch = remote_ids[start:start + STATS_BATCH]
            data = await self.call("GET", f"{self.base(account)}/youtube/v3/videos", headers=self.headers(account),
                                   params={"part": "statistics", "id": ",".join(batch), "maxResults": "50"})
            for item in data.get("items") or []:
                stats = item.get("statistics") or {}
                if item.get("id") in batch:
                    readings[str(item["id"])] = Metrics(
                        likes=to_int(stats.get("likeCount")), comments=to_int(stats.get("commentCount")),
                        impressions=to_int(stats.get("viewCount")))
        return readings

    async def fetch_comments(
        self, account: AccountView, remote_ids: list[str], since: datetime | None
    ) -> list[Comment]:
        found: list[Comment] = []
        for video_id in remote_ids:
            try:
                data = await self.call("GET", f"{self.base(account)}/youtube/v3/commentThreads",
                                       headers=self.headers(account),
                                       params={"part": "snippet", "videoId": video_id, "maxResults": "100",
                                               "order": "time", "textFormat": "plainText"})
            except PublishError as exc:
                if exc.kind == ErrorKind.REJECTED:  # comments disabled, or the video is gone
                    continue
                raise
            for thread in data.get("items") or []:
                top = ((thread.get("snippet") or {}).get("topLevelComment") or {})
                snippet = top.get("snippet") or {}
                created = parse_iso(snippet.get("publishedAt"))
                if created is None or (since is not None and created <= since):
                    continue
                comment_id = str(top.get("id") or thread.get("id"))
                found.append(Comment(
                    remote_id=comment_id, parent_remote_id=video_id,
                    author=str(snippet.get("authorDisplayName") or "someone"),
                    text=str(snippet.get("textOriginal") or snippet.get("textDisplay") or ""),
                    created_at=created, url=f"https://www.youtube.com/watch?v={video_id}&lc={comment_id}"))
        return found

    def check_reply(self, account: AccountView, text: str) -> LimitCheck:
        """A comment is counted in characters (a description is in bytes) and needs no video."""
        used, limit = len(text), self.reply_max or 10000
        problems = [p for p, bad in (("the text is empty", not text.strip()),
                                     (f"{used - limit} characters over the limit", used > limit)) if bad]
        return LimitCheck(self.key, used, limit, "characters", tuple(problems), label=self.profile.label)

    async def publish_follow_up(self, account: AccountView, follow: FollowUpOut) -> Published:
        """The first comment: `commentThreads.insert` (a top-level comment on the video, as the channel)."""
        if follow.kind != "comment":
            raise PublishError(ErrorKind.REJECTED, "YouTube has no threads; Herald joins the parts instead")
        await self.hold_back(account, reply=True)
        data = await self.call("POST", f"{self.base(account)}/youtube/v3/commentThreads", sending=True,
                               headers=self.headers(account), params={"part": "snippet"},
                               json={"snippet": {"videoId": follow.root_id,
                                                 "topLevelComment": {"snippet": {"textOriginal": follow.text}}}})
        thread_id = str(data.get("id") or "") if isinstance(data, dict) else ""
        if not thread_id:
            raise PublishError(ErrorKind.UNKNOWN_OUTCOME, "YouTube took the comment but didn't say its id; it may be "
                               "there")
        return Published(remote_id=thread_id, url=f"https://www.youtube.com/watch?v={follow.root_id}&lc={thread_id}")

    async def reply(self, account: AccountView, target: ReplyTarget, text: str) -> Published:
        await self.hold_back(account, reply=True)
        data = await self.call("POST", f"{self.base(account)}/youtube/v3/comments", sending=True,
                               headers=self.headers(account), params={"part": "snippet"},
                               json={"snippet": {"parentId": target.comment_id, "textOriginal": text}})
        comment_id = str(data.get("id") or "") if isinstance(data, dict) else ""
        if not comment_id:
            raise PublishError(ErrorKind.UNKNOWN_OUTCOME, "YouTube took the reply but didn't say its id; it may be "
                               "there")
        return Published(remote_id=comment_id, url=f"https://www.youtube.com/watch?v={target.post_id}&lc={comment_id}")

    # -- tokens ----------------------------------------------------------------------------

    async def refresh(self, account: AccountView) -> dict[str, Any] | None:
        now = self.clock.now()
        grant = due_refresh(account, now, timedelta(hours=24))
        if grant is None:
            return None
        refresh_token, client_id, client_secret = grant
        oauth = str(account.settings.get("oauth_base_url") or OAUTH_BASE).rstrip("/")
        data = await self.refresh_grant(
            f"{oauth}/token", refresh_token, form={"client_id": client_id, "client_secret": client_secret}, auth=None,
            refused=lambda why: f"Google refused the refresh token ({why}); reconnect with /connect youtube "
                                f"name={account.name} access_token=<new> refresh_token=<new>")
        return renewed_tokens(account.credentials, token_answer(data, "Google"), now,
                              lifetime=to_int(data.get("expires_in")) or 3599)
