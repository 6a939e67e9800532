"""A fake YouTube Data API v3 (channels, resumable videos.insert, videos.list statistics,
commentThreads, comments.insert replies) and Google OAuth token endpoint on 127.0.0.1."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer


def google_error(status: int, reason: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": status, "message": message, "errors": [
        {"message": message, "domain": "youtube.quota" if "uota" in reason else "global", "reason": reason}]}},
        status=status)


class FakeYouTube(LoopbackServer):
    def __init__(self, token: str = "ya29.token") -> None:
        super().__init__()
        self.token = token
        self.sessions: dict[str, dict[str, Any]] = {}
        self.videos: dict[str, dict[str, Any]] = {}
        self.stats: dict[str, dict[str, str]] = {}
        self.threads: dict[str, list[dict[str, Any]]] = {}
        self.accept_only: int | None = None  # keep only this many bytes of the next PUT (a broken upload)
        self.refresh_tokens = {"1//refresh": "ya29.token-2"}
        self.route("GET", "/youtube/v3/channels", self.channels)
        self.route("POST", "/upload/youtube/v3/videos", self.start_upload)
        self.route("PUT", "/upload/youtube/v3/videos", self.put_bytes)
        self.route("GET", "/youtube/v3/videos", self.list_videos)
        self.route("GET", "/youtube/v3/commentThreads", self.comment_threads)
        self.route("POST", "/youtube/v3/comments", self.insert_comment)
        self.route("POST", "/youtube/v3/commentThreads", self.insert_thread)
        self.replies: dict[str, list[dict[str, Any]]] = {}  # top-level comment id → the replies Herald made
        self.route("POST", "/token", self.token_endpoint)

    def denied(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return google_error(401, "authError", "Request had invalid authentication credentials.")
        return None

    async def channels(self, request: web.Request) -> web.Response:
        bad = self.denied(request)
        if bad:
            return bad
        if request.query.get("mine") != "true":
            return google_error(400, "missingRequiredParameter", "No filter selected.")
        return web.json_response({"kind": "youtube#channelListResponse", "items": [
            {"kind": "youtube#channel", "id": "UCacme123", "snippet": {"title": "Acme", "customUrl": "@acme"}}]})

    async def start_upload(self, request: web.Request) -> web.Response:
        bad = self.denied(request)
        if bad:
            return bad
        if request.query.get("uploadType") != "resumable" or set(request.query.get("part", "").split(",")) != {
                "snippet", "status"}:
            return google_error(400, "invalidParameter", "uploadType=resumable and part=snippet,status expected")
        body = await request.json()
        if not body["snippet"].get("title") or len(body["snippet"]["title"]) > 100:
            return google_error(400, "invalidTitle", "The request metadata specifies an invalid video title.")
        n = len(self.sessions) + 1
        self.sessions[f"S{n}"] = {"meta": body, "size": int(request.headers["X-Upload-Content-Length"]),
                                  "type": request.headers["X-Upload-Content-Type"], "data": b"", "video": None}
        location = f"{self.url}/upload/youtube/v3/videos?uploadType=resumable&upload_id=S{n}"
        return web.Response(status=200, headers={"Location": location})

    async def put_bytes(self, request: web.Request) -> web.Response:
        session = self.sessions.get(request.query.get("upload_id", ""))
        if session is None:
            return google_error(404, "notFound", "Upload session not found")
        data = await request.read()
        content_range = request.headers.get("Content-Range", "")
        if content_range == f"bytes */{session['size']}":  # status query
            return self.session_state(session)
        match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", content_range)
        start = int(match.group(1)) if match else 0
        if start != len(session["data"]):
            return web.json_response({"error": "wrong offset"}, status=400)
        if self.accept_only is not None:
            data, self.accept_only = data[:self.accept_only], None
        session["data"] += data
        return self.session_state(session)

    def session_state(self, session: dict[str, Any]) -> web.Response:
        received = len(session["data"])
        if received < session["size"]:
            headers = {"Range": f"bytes=0-{received - 1}"} if received else {}
            return web.Response(status=308, headers=headers)
        if session["video"] is None:
            video_id = f"dQw4w9WgXc{len(self.videos) + 1}"
            session["video"] = video_id
            self.videos[video_id] = {"kind": "youtube#video", "id": video_id, **session["meta"],
                                     "status": {**session["meta"]["status"], "uploadStatus": "uploaded"}}
            return web.json_response(self.videos[video_id], status=200)
        return web.json_response(self.videos[session["video"]], status=200)

    async def list_videos(self, request: web.Request) -> web.Response:
        bad = self.denied(request)
        if bad:
            return bad
        ids = request.query.get("id", "").split(",")
        if len(ids) > 50:
            return google_error(400, "invalidFilters", "Too many ids")
        items = [{"kind": "youtube#video", "id": vid, "statistics": self.stats[vid]} for vid in ids
                 if vid in self.stats]
        return web.json_response({"kind": "youtube#videoListResponse", "items": items,
                                  "pageInfo": {"totalResults": len(items), "resultsPerPage": len(items)}})

    async def comment_threads(self, request: web.Request) -> web.Response:
        bad = self.denied(request)
        if bad:
            return bad
        video_id = request.query.get("videoId", "")
        if video_id not in self.threads:
            return google_error(403, "commentsDisabled", "The video has disabled comments.")
        return web.json_response({"kind": "youtube#commentThreadListResponse", "items": self.threads[video_id]})

    async def _snippet(self, request: web.Request) -> dict[str, Any] | web.Response:
        """A comment insert's `snippet`, or the error answer for a bad token or a part other than snippet."""
        bad = self.denied(request)
        if bad:
            return bad
        if request.query.get("part") != "snippet":
            return google_error(400, "invalidParameter", "part=snippet expected")
        return dict((await request.json()).get("snippet") or {})

    async def insert_comment(self, request: web.Request) -> web.Response:
        """comments.insert: a reply to a top-level comment (snippet.parentId, snippet.textOriginal)."""
        snippet = await self._snippet(request)
        if isinstance(snippet, web.Response):
            return snippet
        parent, text = str(snippet.get("parentId") or ""), str(snippet.get("textOriginal") or "")
        if not parent:
            return google_error(400, "parentIdMissing", "The comment must be linked to a parent comment.")
        if not text.strip():
            return google_error(400, "commentTextRequired", "The comment must have a value for textOriginal.")
        if len(text) > 10000:
            return google_error(400, "commentTextTooLong", "The comment text is too long.")
        tops = {t["snippet"]["topLevelComment"]["id"] for threads in self.threads.values() for t in threads}
        if parent not in tops:
            return google_error(404, "commentNotFound", "The specified parent comment could not be found.")
        reply = {"kind": "youtube#comment", "id": f"{parent}.r{sum(map(len, self.replies.values())) + 1}",
                 "snippet": {"parentId": parent, "textOriginal": text, "textDisplay": text,
                             "authorDisplayName": "Acme", "authorChannelId": {"value": "UCacme123"}}}
        self.replies.setdefault(parent, []).append(reply)
        return web.json_response(reply)

    async def insert_thread(self, request: web.Request) -> web.Response:
        """commentThreads.insert: a top-level comment on a video (snippet.videoId,
        snippet.topLevelComment.snippet.textOriginal), by the channel itself."""
        snippet = await self._snippet(request)
        if isinstance(snippet, web.Response):
            return snippet
        video_id = str(snippet.get("videoId") or "")
        text = str((((snippet.get("topLevelComment") or {}).get("snippet")) or {}).get("textOriginal") or "")
        if video_id not in self.videos:
            return google_error(404, "videoNotFound", "The video identified by the videoId parameter could not be found.")
        if not text.strip():
            return google_error(400, "commentTextRequired", "The comment must have a value for textOriginal.")
        comment_id = f"Ug{video_id}{sum(map(len, self.threads.values())) + 1}"
        thread = {"kind": "youtube#commentThread", "id": comment_id, "snippet": {
            "videoId": video_id, "topLevelComment": {"kind": "youtube#comment", "id": comment_id, "snippet": {
                "videoId": video_id, "textOriginal": text, "textDisplay": text, "authorDisplayName": "Acme",
                "authorChannelId": {"value": "UCacme123"}}}}}
        self.threads.setdefault(video_id, []).append(thread)
        return web.json_response(thread)

    async def token_endpoint(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("client_id") != "123.apps.googleusercontent.com" or form.get("client_secret") != "GOCSPX-x":
            return web.json_response({"error": "invalid_client", "error_description": "Unauthorized"}, status=401)
        new = self.refresh_tokens.get(str(form.get("refresh_token")))
        if form.get("grant_type") != "refresh_token" or new is None:
            return web.json_response({"error": "invalid_grant",
                                      "error_description": "Token has been expired or revoked."}, status=400)
        self.token = new
        return web.json_response({"access_token": new, "expires_in": 3599, "token_type": "Bearer",
                                  "scope": "https://www.googleapis.com/auth/youtube.upload"})
