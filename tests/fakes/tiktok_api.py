"""A fake TikTok Content Posting + Display API (creator info, video/photo init, chunked upload,
status fetch, video query, OAuth refresh) on 127.0.0.1, answering in TikTok's envelope."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer

OK = {"code": "ok", "message": "", "log_id": "202611230900000000"}


def answer(data: dict[str, Any]) -> web.Response:
    return web.json_response({"data": data, "error": OK})


def error(code: str, message: str, status: int) -> web.Response:
    return web.json_response({"data": {}, "error": {"code": code, "message": message, "log_id": "x1"}},
                             status=status)


class FakeTikTok(LoopbackServer):
    def __init__(self, token: str = "act.token") -> None:
        super().__init__()
        self.token = token
        self.privacy_options = ["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"]
        self.publishes: dict[str, dict[str, Any]] = {}
        self.polls_before_done = 1  # status answers PROCESSING_* this many times, then PUBLISH_COMPLETE
        self.fail_reason: str | None = None  # make the next publishes FAILED with this reason
        self.videos: dict[str, dict[str, int]] = {}
        self.refresh_tokens = {"rft.one": ("act.token-2", "rft.two")}
        self.route("POST", "/v2/post/publish/creator_info/query/", self.creator_info)
        self.route("POST", "/v2/post/publish/video/init/", self.video_init)
        self.route("POST", "/v2/post/publish/content/init/", self.content_init)
        self.route("PUT", "/upload/{n}", self.upload)
        self.route("POST", "/v2/post/publish/status/fetch/", self.status_fetch)
        self.route("POST", "/v2/video/query/", self.video_query)
        self.route("POST", "/v2/oauth/token/", self.oauth_token)

    def denied(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return error("access_token_invalid", "The access token is invalid or not found in the request.", 401)
        return None

    async def creator_info(self, request: web.Request) -> web.Response:
        return self.denied(request) or answer({
            "creator_avatar_url": "https://p16.tiktokcdn.test/a.jpg", "creator_username": "acme",
            "creator_nickname": "Acme Official", "privacy_level_options": self.privacy_options,
            "comment_disabled": False, "duet_disabled": False, "stitch_disabled": True,
            "max_video_post_duration_sec": 600})

    def new_publish(self, kind: str, body: dict[str, Any], **extra: Any) -> str:
        n = len(self.publishes) + 1
        publish_id = f"v_pub_{kind}~v2-1.{7300000000000000000 + n}"
        self.publishes[publish_id] = {"n": n, "kind": kind, "body": body, "polls": 0, "received": b"",
                                      "fail_reason": self.fail_reason, **extra}
        return publish_id

    async def video_init(self, request: web.Request) -> web.Response:
        bad = self.denied(request)
        if bad:
            return bad
        body = await request.json()
        info = body.get("source_info") or {}
        if info.get("source") != "FILE_UPLOAD":
            return error("invalid_params", "source must be FILE_UPLOAD here", 400)
        size, chunk, count = info["video_size"], info["chunk_size"], info["total_chunk_count"]
        if count != max(1, size // chunk):
            return error("invalid_params", "total_chunk_count doesn't match video_size / chunk_size", 400)
        if body["post_info"].get("privacy_level") not in self.privacy_options:
            return error("privacy_level_option_mismatch", "privacy_level is not allowed", 400)
        publish_id = self.new_publish("file", body, size=size)
        n = self.publishes[publish_id]["n"]
        return answer({"publish_id": publish_id, "upload_url": f"{self.url}/upload/{n}"})

    async def content_init(self, request: web.Request) -> web.Response:
        bad = self.denied(request)
        if bad:
            return bad
        body = await request.json()
        info = body.get("source_info") or {}
        if body.get("media_type") != "PHOTO" or info.get("source") != "PULL_FROM_URL":
            return error("invalid_params", "photos are only pulled from URLs", 400)
        if not all(u.startswith("https://cdn.acme.test/") for u in info.get("photo_images", [])):
            return error("url_ownership_unverified", "Please verify the ownership of the domain", 403)
        if body["post_info"].get("privacy_level") not in self.privacy_options:
            return error("privacy_level_option_mismatch", "privacy_level is not allowed", 400)
        return answer({"publish_id": self.new_publish("photo", body)})

    async def upload(self, request: web.Request) -> web.Response:
        publish = next(p for p in self.publishes.values() if p["n"] == int(request.match_info["n"]))
        match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", request.headers.get("Content-Range", ""))
        data = await request.read()
        if not match or int(match.group(1)) != len(publish["received"]) or int(match.group(3)) != publish["size"] \
                or int(match.group(2)) - int(match.group(1)) + 1 != len(data):
            return web.json_response({"error": "bad range"}, status=416)
        publish["received"] += data
        return web.Response(status=201 if len(publish["received"]) == publish["size"] else 206)

    async def status_fetch(self, request: web.Request) -> web.Response:
        bad = self.denied(request)
        if bad:
            return bad
        publish = self.publishes.get((await request.json()).get("publish_id"))
        if publish is None:
            return error("invalid_publish_id", "publish_id does not exist", 400)
        uploaded = len(publish["received"])
        if publish["kind"] == "file" and uploaded < publish["size"]:
            return answer({"status": "PROCESSING_UPLOAD", "uploaded_bytes": uploaded})
        publish["polls"] += 1
        if publish["fail_reason"]:
            return answer({"status": "FAILED", "fail_reason": publish["fail_reason"]})
        if publish["polls"] <= self.polls_before_done:
            return answer({"status": "PROCESSING_DOWNLOAD", "uploaded_bytes": uploaded})
        public = publish["body"]["post_info"]["privacy_level"] != "SELF_ONLY"
        post_id = 7400000000000000000 + publish["n"]
        return answer({"status": "PUBLISH_COMPLETE", "uploaded_bytes": uploaded,
                       "publicaly_available_post_id": [post_id] if public else []})

    async def video_query(self, request: web.Request) -> web.Response:
        bad = self.denied(request)
        if bad:
            return bad
        fields = request.query.get("fields", "").split(",")
        ids = (await request.json())["filters"]["video_ids"]
        if len(ids) > 20:
            return error("invalid_params", "at most 20 video_ids", 400)
        videos = [{"id": vid, **{k: v for k, v in self.videos[vid].items() if k in fields}}
                  for vid in ids if vid in self.videos]
        return answer({"videos": videos, "cursor": 0, "has_more": False})

    async def oauth_token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("client_key") != "awkey" or form.get("client_secret") != "tt-secret":
            return web.json_response({"error": "invalid_client", "error_description": "Client key or secret is "
                                      "incorrect.", "log_id": "x2"}, status=400)
        pair = self.refresh_tokens.pop(str(form.get("refresh_token")), None)
        if form.get("grant_type") != "refresh_token" or pair is None:
            return web.json_response({"error": "invalid_grant", "error_description": "Refresh token is invalid or "
                                      "expired.", "log_id": "x3"})  # TikTok answers 200 here
        self.token = pair[0]
        return web.json_response({"access_token": pair[0], "expires_in": 86400, "open_id": "open-1",
                                  "refresh_expires_in": 31536000, "refresh_token": pair[1],
                                  "scope": "video.publish,video.list", "token_type": "Bearer"})
