"""A fake Pinterest API v5 (user account, boards, Pins, Pin analytics, OAuth token) on 127.0.0.1."""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer


class FakePinterest(LoopbackServer):
    def __init__(self, token: str = "pina-token") -> None:
        super().__init__()
        self.token = token
        self.boards = {"549755885175": {"id": "549755885175", "name": "Spring looks", "privacy": "PUBLIC",
                                        "owner": {"username": "acme"}}}
        self.pins: dict[str, dict[str, Any]] = {}
        self.analytics: dict[str, dict[str, int]] = {}
        self.refresh_tokens = {"pinr-refresh": "pina-token-2"}
        self.route("GET", "/v5/user_account", self.user_account)
        self.route("GET", "/v5/boards", self.list_boards)
        self.route("GET", "/v5/boards/{id}", self.get_board)
        self.route("POST", "/v5/pins", self.create_pin)
        self.route("GET", "/v5/pins/{id}/analytics", self.pin_analytics)
        self.route("POST", "/v5/oauth/token", self.oauth_token)

    def denied(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"code": 2, "message": "Authentication failed."}, status=401)
        return None

    async def user_account(self, request: web.Request) -> web.Response:
        return self.denied(request) or web.json_response(
            {"account_type": "BUSINESS", "id": "1234", "username": "acme", "follower_count": 420})

    async def list_boards(self, request: web.Request) -> web.Response:
        return self.denied(request) or web.json_response({"items": list(self.boards.values()), "bookmark": None})

    async def get_board(self, request: web.Request) -> web.Response:
        bad = self.denied(request)
        if bad:
            return bad
        board = self.boards.get(request.match_info["id"])
        if board is None:
            return web.json_response({"code": 40, "message": "Board not found."}, status=404)
        return web.json_response(board)

    async def create_pin(self, request: web.Request) -> web.Response:
        bad = self.denied(request)
        if bad:
            return bad
        body = await request.json()
        if body.get("board_id") not in self.boards:
            return web.json_response({"code": 40, "message": "Board not found."}, status=404)
        source = body.get("media_source") or {}
        images = [source] if source.get("source_type") == "image_base64" else source.get("items", [])
        if not images:
            return web.json_response({"code": 1, "message": "Invalid media_source"}, status=400)
        for image in images:
            base64.b64decode(image["data"], validate=True)
            if image.get("content_type") not in ("image/jpeg", "image/png"):
                return web.json_response({"code": 1, "message": "Invalid content_type"}, status=400)
        if len(body.get("description") or "") > 800:
            return web.json_response({"code": 1, "message": "Description too long"}, status=400)
        pin_id = str(813744226137000000 + len(self.pins) + 1)
        pin = {"id": pin_id, "created_at": "2026-11-23T09:00:00", "board_id": body["board_id"],
               "title": body.get("title"), "description": body.get("description"), "link": body.get("link"),
               "media": {"media_type": "image" if len(images) == 1 else "multiple_images"}}
        self.pins[pin_id] = pin
        return web.json_response(pin, status=201)

    async def pin_analytics(self, request: web.Request) -> web.Response:
        bad = self.denied(request)
        if bad:
            return bad
        for required in ("start_date", "end_date", "metric_types"):
            if required not in request.query:
                return web.json_response({"code": 1, "message": f"{required} is required"}, status=400)
        pin_id = request.match_info["id"]
        if pin_id not in self.pins:
            return web.json_response({"code": 50, "message": "Pin not found."}, status=404)
        wanted = request.query["metric_types"].split(",")
        values = {k: v for k, v in self.analytics.get(pin_id, {}).items() if k in wanted}
        return web.json_response({"all": {"daily_metrics": [{"date": request.query["end_date"],
                                                             "data_status": "READY", "metrics": values}],
                                          "summary_metrics": values, "lifetime_metrics": values}})

    async def oauth_token(self, request: web.Request) -> web.Response:
        expected = "Basic " + base64.b64encode(b"app1:pin-secret").decode()
        if request.headers.get("Authorization") != expected:
            return web.json_response({"code": 1, "message": "Invalid client credentials"}, status=401)
        form = await request.post()
        new = self.refresh_tokens.get(str(form.get("refresh_token")))
        if form.get("grant_type") != "refresh_token" or new is None:
            return web.json_response({"code": 1, "message": "Invalid refresh token."}, status=400)
        self.token = new
        return web.json_response({"access_token": new, "token_type": "bearer", "expires_in": 2592000,
                                  "refresh_token": "pinr-refresh-2", "refresh_token_expires_in": 5184000,
                                  "scope": "pins:read,pins:write"})
