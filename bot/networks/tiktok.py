"""TikTok: direct posts of a video or photos through the Content Posting API.

`/connect tiktok name=<name> access_token=<token> [privacy_level=…] [media_url_template=https://…/{sha256}]
[auto_add_music=on|off]`

- Video: `POST /v2/post/publish/video/init/` (FILE_UPLOAD: video_size, chunk_size,
  total_chunk_count) → publish_id + upload_url → `PUT` the chunks in order with `Content-Range`.
  Files under 64 MB go in one chunk; bigger ones in 10 MB chunks (the last one takes the rest).
- Photos: `POST /v2/post/publish/content/init/` (media_type PHOTO, DIRECT_POST). TikTok only pulls
  photos from URLs on a domain verified in the app (PULL_FROM_URL), so this needs
  `media_url_template` (e.g. `https://cdn.acme.test/herald/{sha256}`; `{sha256}` and `{filename}`
  are filled in per image) pointing at where the images are served publicly. `auto_add_music=on`
  lets TikTok add background music to photo posts (default off: nothing is added to the brand's post
  unless the account says so).
- Then `POST /v2/post/publish/status/fetch/` is polled until PUBLISH_COMPLETE (→ the public post
  id) or FAILED (fail_reason → REJECTED). Two phases: once a publish_id exists every failure carries
  `resume={"publish_id": …, "in_flight": true}`, and a retry polls that publish instead of posting
  again (and if the retries run out, Herald asks the team instead of calling it failed).
- `privacy_level` must be one the creator allows (creator_info at connect; default: the first
  allowed). Unaudited apps can only post SELF_ONLY.
- Rate limits per user token: 6 init requests/minute (kept up front), 30 status polls/minute,
  video/query 600/minute. A 429 has `error.code = rate_limit_exceeded` and no reset header: the
  window is one minute, so Herald waits 60 s.
- Metrics: `POST /v2/video/query/` (≤20 ids): like_count, comment_count, share_count, view_count.
  Comment text isn't available to regular apps, so `fetch_comments` returns [].
- Tokens: `POST /v2/oauth/token/` grant_type=refresh_token; the refresh token rotates (the newest
  is kept). Lifetimes come from the answer (docs say 24 h / 365 d, newer pages 2 h / 180 d).
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import httpx

from bot.networks.common import (
    bearer,
    carried,
    due_refresh,
    renewed_tokens,
    to_int,
)
from bot.networks.http import HttpNetwork
from handlers.core.counting import Counting, TextRules
from handlers.core.ports import (
    IN_FLIGHT,
    AccountView,
    ConnectSpec,
    ErrorKind,
    MediaFile,
    Metrics,
    NetworkProfile,
    Outgoing,
    PostingWindow,
    Published,
    PublishError,
    ReadBudget,
    Verified,
)

WINDOW = 60.0  # TikTok's rate limits are per one-minute sliding window
QUERY_BATCH = 20
AUTH_CODES = ("access_token_invalid", "scope_not_authorized", "token_not_authorized_for_specified_scope")
PLAIN = {
    "spam_risk_too_many_posts": "TikTok's daily cap on posts for this creator is reached",
    "spam_risk_user_banned_from_posting": "TikTok has banned this account from posting",
    "spam_risk_too_many_pending_share": "too many posts are still waiting on TikTok (5 pending at most)",
    "spam_risk_text": "TikTok flagged the caption as spam",
    "spam_risk": "TikTok flagged the post as spam",
    "unaudited_client_can_only_post_to_private_accounts":
        "this TikTok app isn't audited yet, so it can only post privately (privacy_level=SELF_ONLY)",
    "privacy_level_option_mismatch": "the privacy level isn't one this creator allows; reconnect to pick again",
    "url_ownership_unverified": "TikTok only pulls photos from a domain verified in the app; verify the "
                                "domain of media_url_template in the TikTok developer portal",
    "file_format_check_failed": "TikTok can't read the file's format",
    "duration_check_failed": "the video is too long or too short for this creator",
    "frame_rate_check_failed": "TikTok refuses the video's frame rate",
    "picture_size_check_failed": "TikTok refuses the picture size (photos: JPEG/WebP, at most 1080p)",
    "video_pull_failed": "TikTok couldn't download the video",
    "photo_pull_failed": "TikTok couldn't download the photos from media_url_template",
    "publish_cancelled": "the post was cancelled",
    "auth_removed": "the creator removed Herald's access",
    "internal": "TikTok failed internally",
}
PENDING = ("PROCESSING_UPLOAD", "PROCESSING_DOWNLOAD", "SEND_TO_USER_INBOX")


def auto_add_music_setting(settings: dict[str, Any]) -> bool | None:
    """auto_add_music=on|off (default off) as a bool; None for anything else."""
    raw = str(settings.get("auto_add_music") or "off").strip().lower()
    return {"on": True, "off": False}.get(raw)


def is_video(media: MediaFile) -> bool:
    return media.content_type.startswith("video/")


def plain(code: str, message: str) -> str:
    words = PLAIN.get(code) or next((v for k, v in PLAIN.items() if code.startswith(k)), None)
    detail = f"{code}: {message}" if message else code
    return f"{words} ({detail})" if words else detail


class TikTokNetwork(HttpNetwork):
    key = "tiktok"
    url_id_pattern = r"/(?:video|photo)/(?P<id>\d+)"
    label = "TikTok"
    no_replies = ("TikTok's API doesn't let apps like Herald read or answer comments, so answer them in the "
                  "TikTok app")
    idempotent = False
    default_base_url = "https://open.tiktokapis.com"
    publish_limits = ((6, 60.0),)  # init endpoints: 6 requests per minute per user token
    profile = NetworkProfile(
        key="tiktok", label="TikTok",
        text=TextRules(2200, Counting.UTF16, "UTF-16 units", max_images=35, media_only=True),  # 35: a photo post
        # Display API video/query: 600 requests / min, 20 videos per request
        read_budget=ReadBudget(2_000, timedelta(minutes=5)),
        best_times=(PostingWindow((1,), 14, 18), PostingWindow((2,), 14, 17), PostingWindow((3,), 15, 17)),
        hosts=frozenset({"tiktok.com"}), site_names=frozenset({"tiktok"}),
    )
    connect_spec = ConnectSpec(
        required=("access_token",),
        optional=("privacy_level", "media_url_template", "auto_add_music", "client_key", "expires_at"),
        secret=("access_token", "refresh_token", "client_secret"),
        help=(
            "Create an app at https://developers.tiktok.com with the Content Posting API (Direct Post, scope "
            "video.publish; video.list for metrics), authorize the creator and copy the access token, plus "
            "refresh_token=, client_key= and client_secret= so Herald can renew it (it lasts a day). "
            "privacy_level= PUBLIC_TO_EVERYONE | MUTUAL_FOLLOW_FRIENDS | FOLLOWER_OF_CREATOR | SELF_ONLY "
            "(unaudited apps: SELF_ONLY only). Photo posts need media_url_template= where Herald's images are "
            "served on a domain verified with TikTok; auto_add_music=on lets TikTok add music to them "
            "(default off). Example: /connect tiktok name=acme-tt access_token=act.… "
            "refresh_token=rft.… client_key=aw… client_secret=… privacy_level=SELF_ONLY"
        ),
    )

    # overridable per instance (tests poll at once)
    poll_interval = 3.0
    poll_attempts = 10
    single_chunk_max = 64 * 2**20  # up to this size, one chunk
    chunk_bytes = 10 * 2**20  # otherwise chunks of this size (TikTok: 5–64 MB)

    def text_problems(self, text: str, media_count: int) -> list[str]:
        return [] if media_count else ["TikTok needs a video or photos"]

    # -- plumbing --------------------------------------------------------------------------

    def headers(self, account: AccountView) -> dict[str, str]:
        return {**bearer(account.credentials.get("access_token", "")),
                "Content-Type": "application/json; charset=UTF-8"}

    def error_reason(self, response: httpx.Response) -> str:
        code, message = _envelope_error(response)
        if code:
            return plain(code, message)
        return super().error_reason(response)

    def classify(self, response: httpx.Response) -> PublishError | None:
        code, message = _envelope_error(response)
        return self.error_for(code, message, status=response.status_code,
                              retry_after=self.retry_after(response)) if code else None

    def error_for(self, code: str, message: str, *, status: int = 200,
                  retry_after: float | None = None) -> PublishError | None:
        reason = plain(code, message)
        if code in AUTH_CODES or code == "auth_removed":
            return PublishError(ErrorKind.AUTH_EXPIRED, f"TikTok refused the credentials: {reason}")
        if code == "rate_limit_exceeded" or status == 429:
            return PublishError(ErrorKind.RATE_LIMITED, f"TikTok says too many requests ({reason}); its limits "
                                "count per minute", retry_after=retry_after or WINDOW)
        if status >= 500:
            return None  # the default rules: unknown outcome for a send
        if code.startswith("spam_risk") or code in PLAIN:
            return PublishError(ErrorKind.REJECTED, f"TikTok refused it: {reason}")
        return None

    async def api(self, account: AccountView, path: str, body: dict[str, Any], *, sending: bool = False,
                  params: dict[str, str] | None = None) -> dict[str, Any]:
        """One call of TikTok's v2 API: JSON in, `data` out, `error.code != ok` raised even on 200."""
        answer = await self.call("POST", f"{self.base(account)}{path}", sending=sending,
                                 headers=self.headers(account), json=body, params=params)
        error = (answer or {}).get("error") or {}
        code = str(error.get("code") or "ok")
        if code != "ok":
            refined = self.error_for(code, str(error.get("message") or ""))
            raise refined or PublishError(ErrorKind.REJECTED, f"TikTok refused it: {plain(code, str(error.get('message') or ''))}")
        return dict(answer.get("data") or {})

    # -- connect ---------------------------------------------------------------------------

    async def verify(self, account: AccountView) -> Verified:
        music = auto_add_music_setting(account.settings)
        if music is None:
            raise ValueError("auto_add_music= must be on or off (whether TikTok may add background music to "
                             "photo posts; off when not given)")
        template = str(account.settings.get("media_url_template") or "")
        if template and (not template.startswith(("https://", "http://")) or
                         ("{sha256}" not in template and "{filename}" not in template)):
            raise ValueError("media_url_template= must be an https:// URL holding {sha256} or {filename}, "
                             "e.g. https://cdn.acme.test/herald/{sha256}")
        info = await self.api(account, "/v2/post/publish/creator_info/query/", {})
        options = [str(o) for o in info.get("privacy_level_options") or []]
        wanted = str(account.settings.get("privacy_level") or "").upper()
        if wanted and wanted not in options:
            raise ValueError(f"privacy_level={wanted} isn't allowed for this creator; "
                             f"choose one of {', '.join(options) or '(none offered)'}")
        level = wanted or (options[0] if options else "SELF_ONLY")
        username = str(info.get("creator_username") or "")
        settings = {"privacy_level": level, "username": username,
                    "max_video_post_duration_sec": info.get("max_video_post_duration_sec"),
                    "auto_add_music": "on" if music else "off"}
        photos = ("photo posts from " + template + (" with music added by TikTok" if music else "")
                  if template else "no photo posts (no media_url_template)")
        return Verified(
            description=f"@{username} on TikTok ({info.get('creator_nickname') or username}); posts as "
                        f"{level}, {photos}",
            settings={k: v for k, v in settings.items() if v is not None},
        )

    # -- publish ---------------------------------------------------------------------------

    async def publish(self, account: AccountView, post: Outgoing) -> Published:
        videos = [m for m in post.media if is_video(m)]
        photos = [m for m in post.media if not is_video(m)]
        if not post.media:
            raise PublishError(ErrorKind.REJECTED, "TikTok needs a video or photos")
        if videos and (len(videos) > 1 or photos):
            raise PublishError(ErrorKind.REJECTED, "TikTok takes one video, or photos, in a post — not both")
        publish_id = str(post.resume.get("publish_id") or "")
        if publish_id:
            outcome = await self.resume_publish(account, post, publish_id)
            if outcome is not None:
                return outcome
        if videos:
            return await self.publish_video(account, post, videos[0])
        return await self.publish_photos(account, post, photos)

    def privacy(self, account: AccountView) -> str:
        return str(account.settings.get("privacy_level") or "SELF_ONLY")

    def chunks(self, size: int) -> tuple[int, int]:
        """(chunk_size, total_chunk_count) by TikTok's rules: the last chunk takes the remainder."""
        if size <= self.single_chunk_max:
            return size, 1
        return self.chunk_bytes, size // self.chunk_bytes

    async def publish_video(self, account: AccountView, post: Outgoing, video: MediaFile) -> Published:
        size = len(video.data)
        chunk_size, count = self.chunks(size)
        body = {
            "post_info": {"title": post.text, "privacy_level": self.privacy(account), "disable_comment": False,
                          "disable_duet": False, "disable_stitch": False},
            "source_info": {"source": "FILE_UPLOAD", "video_size": size, "chunk_size": chunk_size,
                            "total_chunk_count": count},
        }
        await self.hold_back(account)
        data = await self.api(account, "/v2/post/publish/video/init/", body, sending=True)
        publish_id, upload_url = str(data.get("publish_id") or ""), str(data.get("upload_url") or "")
        if not publish_id or not upload_url:
            raise PublishError(ErrorKind.UNKNOWN_OUTCOME, "TikTok accepted the video but sent no publish id; "
                               "the post may or may not be there")
        # from here on a post may come of it (rule: in_flight → never "failed" when retries run out)
        resume = {"publish_id": publish_id, "upload_url": upload_url, IN_FLIGHT: True}
        await self.upload(video, upload_url, chunk_size, count, resume)
        return await self.poll(account, publish_id, resume, photo=False)

    async def upload(self, video: MediaFile, upload_url: str, chunk_size: int, count: int,
                     resume: dict[str, Any]) -> None:
        size = len(video.data)
        try:
            for i in range(count):
                first = i * chunk_size
                last = size - 1 if i == count - 1 else first + chunk_size - 1
                await self.call("PUT", upload_url, expect_json=False, content=video.data[first:last + 1],
                                headers={"Content-Type": video.content_type or "video/mp4",
                                         "Content-Range": f"bytes {first}-{last}/{size}"})
        except PublishError as exc:
            raise carried(exc, resume) from exc

    async def publish_photos(self, account: AccountView, post: Outgoing, photos: list[MediaFile]) -> Published:
        template = str(account.settings.get("media_url_template") or "")
        if not template:
            raise PublishError(ErrorKind.REJECTED, "TikTok photo posts need public image URLs: reconnect with "
                               f"/connect tiktok name={account.name} media_url_template=https://<your domain>/…/"
                               "{sha256}")
        if len(photos) > 35:
            raise PublishError(ErrorKind.REJECTED, "TikTok takes at most 35 photos in a post")
        urls = [template.replace("{sha256}", m.sha256).replace("{filename}", m.filename) for m in photos]
        title = next((line.strip() for line in post.text.splitlines() if line.strip()), "")
        body = {
            "media_type": "PHOTO",
            "post_mode": "DIRECT_POST",
            "post_info": {"title": title[:90], "description": post.text[:4000],
                          "privacy_level": self.privacy(account), "disable_comment": False,
                          "auto_add_music": bool(auto_add_music_setting(account.settings))},
            "source_info": {"source": "PULL_FROM_URL", "photo_images": urls, "photo_cover_index": 0},
        }
        await self.hold_back(account)
        data = await self.api(account, "/v2/post/publish/content/init/", body, sending=True)
        publish_id = str(data.get("publish_id") or "")
        if not publish_id:
            raise PublishError(ErrorKind.UNKNOWN_OUTCOME, "TikTok accepted the photos but sent no publish id; "
                               "the post may or may not be there")
        return await self.poll(account, publish_id, {"publish_id": publish_id, IN_FLIGHT: True}, photo=True)

    async def resume_publish(self, account: AccountView, post: Outgoing, publish_id: str) -> Published | None:
        """Carry on with an earlier attempt's publish; None when it failed and a new post is safe."""
        resume = {**post.resume, IN_FLIGHT: True}
        photo = not any(is_video(m) for m in post.media)
        status = await self.status(account, publish_id, resume)
        state = str(status.get("status") or "")
        if state == "FAILED":
            return None  # it never went out: start again
        if state == "PROCESSING_UPLOAD" and resume.get("upload_url"):
            video = next((m for m in post.media if is_video(m)), None)
            if video is not None and int(status.get("uploaded_bytes") or 0) < len(video.data):
                chunk_size, count = self.chunks(len(video.data))
                await self.upload(video, str(resume["upload_url"]), chunk_size, count, resume)
        return await self.poll(account, publish_id, resume, photo=photo, first=status)

    async def status(self, account: AccountView, publish_id: str, resume: dict[str, Any]) -> dict[str, Any]:
        try:
            return await self.api(account, "/v2/post/publish/status/fetch/", {"publish_id": publish_id})
        except PublishError as exc:
            raise carried(exc, resume) from exc

    async def poll(self, account: AccountView, publish_id: str, resume: dict[str, Any], *, photo: bool,
                   first: dict[str, Any] | None = None) -> Published:
        status = first
        for attempt in range(self.poll_attempts):
            if status is None:
                if attempt:
                    await asyncio.sleep(self.poll_interval)
                status = await self.status(account, publish_id, resume)
            state = str(status.get("status") or "")
            if state == "PUBLISH_COMPLETE":
                return self.published(account, publish_id, status, photo=photo)
            if state == "FAILED":
                reason = str(status.get("fail_reason") or "unknown")
                raise PublishError(ErrorKind.REJECTED, f"TikTok didn't publish it: {plain(reason, '')}",
                                   resume={**resume, IN_FLIGHT: False})  # TikTok says: no post
            status = None
        raise PublishError(ErrorKind.TRANSIENT, "TikTok is still processing the post; Herald checks on it again "
                           "rather than post it twice", retry_after=WINDOW, resume=resume)

    def published(self, account: AccountView, publish_id: str, status: dict[str, Any], *, photo: bool) -> Published:
        ids = [str(i) for i in status.get("publicaly_available_post_id") or []]
        username = str(account.settings.get("username") or "")
        profile = f"https://www.tiktok.com/@{username}" if username else None
        if not ids:  # private posts (and public ones still in moderation) have no public id
            return Published(remote_id=publish_id, url=profile)
        kind = "photo" if photo else "video"
        return Published(remote_id=ids[0], url=f"{profile}/{kind}/{ids[0]}" if profile else None)

    # -- metrics ---------------------------------------------------------------------------

    async def fetch_metrics(self, account: AccountView, remote_ids: list[str]) -> dict[str, Metrics]:
        video_ids: dict[str, str] = {}
        for remote_id in remote_ids:
            if remote_id.isdigit():
                video_ids[remote_id] = remote_id
                continue
            # a publish id (private post, or moderation wasn't over at publish time): ask for its post id
            try:
                status = await self.api(account, "/v2/post/publish/status/fetch/", {"publish_id": remote_id})
            except PublishError as exc:
                if exc.kind == ErrorKind.REJECTED:
                    continue
                raise
            ids = status.get("publicaly_available_post_id") or []
            if ids:
                video_ids[str(ids[0])] = remote_id
        readings: dict[str, Metrics] = {}
        ids = list(video_ids)
        for start in range(0, len(ids), QUERY_BATCH):
            batch = ids[start:start + QUERY_BATCH]
            data = await self.api(account, "/v2/video/query/", {"filters": {"video_ids": batch}},
                                  params={"fields": "id,like_count,comment_count,share_count,view_count"})
            for video in data.get("videos") or []:
                vid = str(video.get("id"))
                if vid in video_ids:
                    readings[video_ids[vid]] = Metrics(
                        likes=to_int(video.get("like_count")), comments=to_int(video.get("comment_count")),
                        shares=to_int(video.get("share_count")), impressions=to_int(video.get("view_count")))
        return readings

    # -- tokens ----------------------------------------------------------------------------

    async def refresh(self, account: AccountView) -> dict[str, Any] | None:
        now = self.clock.now()
        grant = due_refresh(account, now, timedelta(hours=24), "client_key")
        if grant is None:
            return None
        refresh_token, client_id, client_secret = grant
        dead = (f"TikTok refused the refresh token; reconnect with /connect tiktok name={account.name} "
                "access_token=<new> refresh_token=<new>")
        data = await self.refresh_grant(
            f"{self.base(account)}/v2/oauth/token/", refresh_token,
            form={"client_key": client_id, "client_secret": client_secret}, auth=None,
            refused=lambda why: f"{dead} ({why})")
        if not isinstance(data, dict):
            raise PublishError(ErrorKind.TRANSIENT, "TikTok answered the token refresh without a token")
        if not data.get("access_token"):  # TikTok's OAuth errors may come with HTTP 200
            raise PublishError(ErrorKind.AUTH_EXPIRED, f"{dead} ({data.get('error_description') or data.get('error')})")
        return renewed_tokens(account.credentials, data, now, lifetime=int(data.get("expires_in") or 86400),
                              refresh_lifetime_field="refresh_expires_in")


def _envelope_error(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return "", ""
    if not isinstance(body, dict):
        return "", ""
    error = body.get("error")
    if isinstance(error, dict):
        code = str(error.get("code") or "")
        return ("" if code == "ok" else code), str(error.get("message") or "")
    if isinstance(error, str):  # OAuth endpoint: {"error": "invalid_grant", "error_description": …}
        return error, str(body.get("error_description") or "")
    return "", ""
