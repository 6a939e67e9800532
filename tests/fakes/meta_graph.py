"""A fake Meta Graph server for the Facebook, Instagram and Threads contract tests.

One server answers graph.facebook.com-, graph.instagram.com- and graph.threads.net-style paths
(``/v25.0/{node}[/{edge}]``, ``/v1.0/…``, ``/refresh_access_token``) with the documented JSON
shapes, keeps what was created (Page posts and photos, Instagram and Threads containers and
media, comments, insights), and checks the token (``Authorization: Bearer`` or
``access_token``), answering Graph's own OAuthException (code 190) otherwise. It downloads
nothing: image URLs are only checked for their shape (public https).

Comments can be answered: Facebook ``POST /{comment-id}/comments``, Instagram ``POST /{ig-comment-id}/replies``
(kept under the comment's ``replies``), Threads a TEXT container with ``reply_to_id`` then ``threads_publish``.

A Page post's ``targeting`` (feed and photos) is read as Graph reads it: one form field holding a JSON object;
anything else (not JSON, not an object, a country that isn't two capital letters) is Graph's (#100) refusal, and
the parsed object is kept on the post (``posts[id]["targeting"]``, None without one).

Tokens map to who they belong to: ``PAGE_TOKEN`` → the Page, ``IG_TOKEN`` → the Instagram
account, ``THREADS_TOKEN`` → the Threads profile (so ``/me`` answers per token).
"""

from __future__ import annotations

import itertools
import json
import re
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer

PAGE_TOKEN = "EAAG-page-token"
IG_TOKEN = "IGAA-ig-token"
THREADS_TOKEN = "THAA-threads-token"
PAGE_ID = "1001"
IG_USER_ID = "17841400000000001"
THREADS_USER_ID = "2001"

FB_METRICS = frozenset({"post_media_view", "post_clicks", "post_total_media_view_unique",
                        "post_reactions_by_type_total"})
IG_METRICS = frozenset({"views", "reach", "likes", "comments", "shares", "saved", "total_interactions"})
TH_METRICS = frozenset({"views", "likes", "replies", "reposts", "quotes", "shares"})


def graph_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def error(message: str, code: int, *, status: int = 400, subcode: int | None = None,
          kind: str = "OAuthException", headers: dict[str, str] | None = None) -> web.Response:
    body: dict[str, Any] = {"message": message, "type": kind, "code": code, "fbtrace_id": "AbCdEfGh123"}
    if subcode is not None:
        body["error_subcode"] = subcode
    return web.json_response({"error": body}, status=status, headers=headers)


class MetaGraphServer(LoopbackServer):
    def __init__(self) -> None:
        super().__init__()
        self._ids = itertools.count(5001)
        self.tokens: dict[str, tuple[str, str]] = {
            PAGE_TOKEN: ("page", PAGE_ID), IG_TOKEN: ("ig", IG_USER_ID), THREADS_TOKEN: ("threads", THREADS_USER_ID),
        }
        self.page = {"id": PAGE_ID, "name": "Brand Page", "link": "https://www.facebook.com/brandpage",
                     "followers_count": 1234}
        self.ig_user = {"id": IG_USER_ID, "user_id": IG_USER_ID, "username": "brand", "followers_count": 560}
        self.threads_user = {"id": THREADS_USER_ID, "username": "brand.threads", "name": "Brand",
                             "followers_count": 321}
        self.posts: dict[str, dict[str, Any]] = {}  # Facebook posts
        self.photos: dict[str, dict[str, Any]] = {}  # Facebook photos
        self.containers: dict[str, dict[str, Any]] = {}  # Instagram and Threads containers
        self.media: dict[str, dict[str, Any]] = {}  # published Instagram media and Threads posts
        self.container_statuses: list[str] = []  # statuses the next container goes through (default FINISHED)
        self.refreshed: list[str] = []
        for method, path, handler in (
            ("GET", "/refresh_access_token", self._refresh),
            ("GET", "/{version}/", self._lookup_ids),
            ("GET", "/{version}/{node}", self._get_node),
            ("GET", "/{version}/{node}/{edge}", self._get_edge),
            ("POST", "/{version}/{node}/{edge}", self._post_edge),
        ):
            self.route(method, path, handler)

    # -- helpers -------------------------------------------------------------------------------

    def next_id(self) -> str:
        return str(next(self._ids))

    async def _who(self, request: web.Request) -> tuple[str, str] | None:
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else request.query.get("access_token")
        if not token and request.method == "POST":
            token = str((await request.post()).get("access_token") or "") or None
        return self.tokens.get(token or "")

    @staticmethod
    def _bad_token() -> web.Response:
        return error("Error validating access token: Session has expired on Sunday, 22-Nov-26.", 190, subcode=463)

    def _exists(self, node: str) -> bool:
        return node in self.posts or node in self.photos or node in self.containers or node in self.media

    @staticmethod
    def _missing(node: str) -> web.Response:
        return error(f"Unsupported get request. Object with ID '{node}' does not exist, cannot be loaded due to "
                     "missing permissions, or does not support this operation.", 100, subcode=33,
                     kind="GraphMethodException")

    def _container_status(self, container: dict[str, Any]) -> str:
        statuses = container["statuses"]
        status = statuses[0]
        if len(statuses) > 1:
            statuses.pop(0)
        return str(status)

    def add_comment(self, remote_id: str, text: str, author: str, at: datetime) -> str:
        comment_id = f"{remote_id}_c{self.next_id()}"
        target = self.posts.get(remote_id) or self.media[remote_id]
        target.setdefault("comments", []).append({"id": comment_id, "text": text, "author": author, "at": at})
        return comment_id

    # -- token refresh (Instagram Login and Threads: no version in the path) --------------------

    async def _refresh(self, request: web.Request) -> web.Response:
        token = request.query.get("access_token", "")
        who = self.tokens.get(token)
        if who is None:
            return self._bad_token()
        expected = {"ig": "ig_refresh_token", "threads": "th_refresh_token"}.get(who[0])
        if request.query.get("grant_type") != expected:
            return error("Invalid grant_type", 100)
        new = f"{token}-r{len(self.refreshed) + 1}"
        self.refreshed.append(new)
        self.tokens[new] = who
        return web.json_response({"access_token": new, "token_type": "bearer", "expires_in": 5184000})

    # -- reads -----------------------------------------------------------------------------------

    async def _lookup_ids(self, request: web.Request) -> web.Response:
        if await self._who(request) is None:
            return self._bad_token()
        ids = [i for i in request.query.get("ids", "").split(",") if i]
        missing = [i for i in ids if i not in self.posts]
        if missing:
            return error(f"(#803) Some of the aliases you requested do not exist: {','.join(missing)}", 803,
                         status=404)
        fields = request.query.get("fields", "")
        out: dict[str, Any] = {}
        for post_id in ids:
            post = self.posts[post_id]
            if "insights" in fields:
                wanted = re.search(r"insights\.metric\(([^)]*)\)", fields)
                names = wanted.group(1).split(",") if wanted else []
                bad = [n for n in names if n not in FB_METRICS]
                if bad:
                    return error(f"(#100) The value must be a valid insights metric: {bad[0]}", 100,
                                 kind="OAuthException")
                out[post_id] = {"id": post_id, "insights": {"data": [
                    {"name": n, "period": "lifetime", "values": [{"value": post["insights"].get(n, 0)}],
                     "title": n, "id": f"{post_id}/insights/{n}/lifetime"} for n in names]}}
            else:
                out[post_id] = {
                    "id": post_id,
                    "reactions": {"data": [], "summary": {"total_count": post["reactions"], "viewer_reaction": "NONE"}},
                    "comments": {"data": [], "summary": {"order": "ranked", "total_count": len(post.get("comments", [])),
                                                         "can_comment": True}},
                }
                if post["shares"]:
                    out[post_id]["shares"] = {"count": post["shares"]}
        return web.json_response(out)

    async def _get_node(self, request: web.Request) -> web.Response:
        who = await self._who(request)
        if who is None:
            return self._bad_token()
        node = request.match_info["node"]
        fields = request.query.get("fields", "")
        kind, own_id = who
        if node == "me" or node == own_id:
            if kind == "page":
                body = {k: self.page[k] for k in ("id", "name", "link", "followers_count")
                        if k in fields.split(",") or k == "id"}
                if fields.startswith("instagram_business_account"):  # the Instagram account linked to the Page
                    body["instagram_business_account"] = {"id": IG_USER_ID, "username": self.ig_user["username"]}
                return web.json_response(body)
            if kind == "ig":
                return web.json_response({k: v for k, v in self.ig_user.items() if k in fields or k == "id"})
            return web.json_response({k: v for k, v in self.threads_user.items() if k in fields or k == "id"})
        if node in self.containers:
            container = self.containers[node]
            status = self._container_status(container)
            if container["network"] == "ig":
                return web.json_response({"id": node, "status_code": status,
                                          "status": "Error: 2207052" if status == "ERROR" else status})
            body = {"id": node, "status": status}
            if status == "ERROR":
                body["error_message"] = "FAILED_DOWNLOADING_IMAGE"
            return web.json_response(body)
        if node in self.posts:
            return web.json_response({"id": node, "permalink_url": self.posts[node]["permalink_url"]})
        if node in self.media:
            item = self.media[node]
            return web.json_response({"id": node, "permalink": item["permalink"],
                                      "like_count": item.get("likes", 0),
                                      "comments_count": len(item.get("comments", []))})
        return self._missing(node)

    async def _get_edge(self, request: web.Request) -> web.Response:
        who = await self._who(request)
        if who is None:
            return self._bad_token()
        node, edge = request.match_info["node"], request.match_info["edge"]
        if edge == "threads_insights" and node in ("me", THREADS_USER_ID):
            return web.json_response({"data": [{"name": "followers_count", "period": "day",
                                                "title": "followers_count", "description": "",
                                                "total_value": {"value": self.threads_user["followers_count"]},
                                                "id": f"{THREADS_USER_ID}/insights/followers_count/day"}]})
        if edge in ("media", "threads") and node in (IG_USER_ID, THREADS_USER_ID, "me"):
            network = "ig" if edge == "media" else "threads"
            items = [m for m in reversed(self.media.values()) if m["network"] == network]
            key = "caption" if network == "ig" else "text"
            return web.json_response({"data": [{"id": m["id"], key: m.get("text", ""), "permalink": m["permalink"],
                                                "timestamp": graph_time(m["at"])} for m in items]})
        if edge == "insights":
            target = self.media.get(node)
            if target is None:
                return self._missing(node)
            names = [n for n in request.query.get("metric", "").split(",") if n]
            allowed = IG_METRICS if target["network"] == "ig" else TH_METRICS
            bad = [n for n in names if n not in allowed]
            if bad:
                return error(f"(#100) metric[0] must be one of the following values: {', '.join(sorted(allowed))}",
                             100)
            return web.json_response({"data": [
                {"name": n, "period": "lifetime", "values": [{"value": target["insights"].get(n, 0)}],
                 "title": n, "description": "", "id": f"{node}/insights/{n}/lifetime"} for n in names]})
        if edge in ("comments", "replies"):
            target = self.posts.get(node) or self.media.get(node)
            if target is None:
                return self._missing(node)
            since = request.query.get("since")
            comments = [c for c in target.get("comments", [])
                        if since is None or c["at"].timestamp() > int(since)]
            if node in self.posts:
                data = [{"id": c["id"], "message": c["text"], "created_time": graph_time(c["at"]),
                         "from": {"id": "9" + c["id"][-3:], "name": c["author"]},
                         "permalink_url": f"https://www.facebook.com/{c['id']}"} for c in comments]
            elif edge == "comments":
                data = [{"id": c["id"], "text": c["text"], "timestamp": graph_time(c["at"]), "username": c["author"]}
                        for c in comments]
            else:
                data = [{"id": c["id"], "text": c["text"], "timestamp": graph_time(c["at"]), "username": c["author"],
                         "permalink": f"https://www.threads.net/@{c['author']}/post/{c['id']}"} for c in comments]
            return web.json_response({"data": data, "paging": {"cursors": {"before": "a", "after": "b"}}})
        return self._missing(f"{node}/{edge}")

    # -- writes ----------------------------------------------------------------------------------

    async def _post_edge(self, request: web.Request) -> web.Response:
        who = await self._who(request)
        if who is None:
            return self._bad_token()
        node, edge = request.match_info["node"], request.match_info["edge"]
        form = await request.post()
        kind, own_id = who
        if edge in ("comments", "replies") and self.find_comment(node) is not None:
            return self._answer(kind, node, edge, form)
        if edge == "comments" and (node in self.posts and kind == "page"
                                   or node in self.media and self.media[node]["network"] == kind == "ig"):
            return self._own_comment(kind, node, form)
        if node != own_id and node != "me":
            return error("(#200) The user hasn't authorized the application to perform this action", 200)
        if kind == "page" and edge == "feed":
            return self._feed(form)
        if kind == "page" and edge == "photos":
            return self._photo(form)
        if kind == "ig" and edge == "media":
            return self._container(form, "ig")
        if kind == "threads" and edge == "threads":
            return self._container(form, "threads")
        if edge in ("media_publish", "threads_publish"):
            return self._publish(form, "ig" if kind == "ig" else "threads")
        return error(f"Unknown path components: /{edge}", 2500)

    def find_comment(self, comment_id: str) -> dict[str, Any] | None:
        """A comment on a Facebook post, an Instagram media or a Threads post, by its id."""
        for target in (*self.posts.values(), *self.media.values()):
            for comment in target.get("comments", []):
                if comment["id"] == comment_id:
                    return comment
        return None

    def _answer(self, kind: str, comment_id: str, edge: str, form: Any) -> web.Response:
        """Answering a comment: Facebook ``POST /{comment-id}/comments``, Instagram ``POST /{ig-comment-id}/replies``
        (``message``), each with its own network's token."""
        comment = self.find_comment(comment_id)
        assert comment is not None
        on_page = any(comment in p.get("comments", []) for p in self.posts.values())
        network = "page" if on_page else next(m["network"] for m in self.media.values() if comment in m["comments"])
        if (network, edge) not in (("page", "comments"), ("ig", "replies")) or kind != network:
            return error(f"(#100) Unsupported post request. Object with ID '{comment_id}' does not support this "
                         "operation", 100, kind="GraphMethodException")
        message = str(form.get("message") or "")
        if not message:
            return error("(#100) The parameter message is required", 100)
        reply_id = f"{comment_id}_r{self.next_id()}"
        comment.setdefault("replies", []).append({"id": reply_id, "text": message, "at": datetime.now(UTC)})
        return web.json_response({"id": reply_id})

    def _own_comment(self, kind: str, node: str, form: Any) -> web.Response:
        """The account's own comment under its post: Facebook ``POST /{post-id}/comments``, Instagram
        ``POST /{ig-media-id}/comments`` (``message``); kept among the post's comments, by the account itself."""
        message = str(form.get("message") or "")
        if not message:
            return error("(#100) The parameter message is required", 100)
        author = self.page["name"] if kind == "page" else self.ig_user["username"]
        return web.json_response({"id": self.add_comment(node, message, str(author), datetime.now(UTC))})

    @staticmethod
    def _targeting(form: Any) -> tuple[dict[str, Any] | None, web.Response | None]:
        """The post's `targeting` as Graph gets it: a form field holding a JSON object (None: not sent)."""
        raw = form.get("targeting")
        if raw is None:
            return None, None
        if not isinstance(raw, str):
            return None, error("(#100) Param targeting must be a JSON object", 100)
        try:
            spec = json.loads(raw)
        except ValueError:
            return None, error("(#100) Param targeting must be a JSON object", 100)
        geo = spec.get("geo_locations") if isinstance(spec, dict) else None
        countries = geo.get("countries") if isinstance(geo, dict) else None
        if not isinstance(countries, list) or not countries or not all(
                isinstance(c, str) and re.fullmatch(r"[A-Z]{2}", c) for c in countries):
            return None, error("(#100) Invalid targeting spec: geo_locations.countries takes country codes", 100)
        return spec, None

    def _feed(self, form: Any) -> web.Response:
        targeting, refused = self._targeting(form)
        if refused is not None:
            return refused
        message = str(form.get("message") or "")
        attached = []
        for key in sorted(k for k in form if k.startswith("attached_media[")):
            media_fbid = json.loads(str(form[key]))["media_fbid"]
            if media_fbid not in self.photos or self.photos[media_fbid]["published"]:
                return error(f"(#100) Invalid media_fbid {media_fbid}", 100)
            attached.append(media_fbid)
        if not message and not attached and not form.get("link"):
            return error("(#100) Missing message or attachment", 100)
        if any(p["message"] == message and message for p in self.posts.values()):
            return error("(#506) Duplicate status message", 506)
        post_id = f"{PAGE_ID}_{self.next_id()}"
        self.posts[post_id] = {"id": post_id, "message": message, "link": form.get("link"), "photos": attached,
                               "permalink_url": f"https://www.facebook.com/{PAGE_ID}/posts/{post_id.split('_')[1]}",
                               "reactions": 0, "shares": 0, "insights": {}, "comments": [], "targeting": targeting}
        return web.json_response({"id": post_id})

    def _photo(self, form: Any) -> web.Response:
        targeting, refused = self._targeting(form)
        if refused is not None:
            return refused
        source = form.get("source")
        if source is None and not form.get("url"):
            return error("(#324) Requires upload file", 324)
        photo_id = self.next_id()
        published = str(form.get("published", "true")).lower() != "false"
        data = b""
        if source is not None and not isinstance(source, str):
            source.file.seek(0)
            data = source.file.read()
        self.photos[photo_id] = {"id": photo_id, "published": published, "message": str(form.get("message") or ""),
                                 "data": data}
        if not published:
            return web.json_response({"id": photo_id})
        post_id = f"{PAGE_ID}_{self.next_id()}"
        self.posts[post_id] = {"id": post_id, "message": self.photos[photo_id]["message"], "photos": [photo_id],
                               "link": None, "permalink_url": f"https://www.facebook.com/photo/?fbid={photo_id}",
                               "reactions": 0, "shares": 0, "insights": {}, "comments": [], "targeting": targeting}
        return web.json_response({"id": photo_id, "post_id": post_id})

    def _container(self, form: Any, network: str) -> web.Response:
        params = {k: str(form[k]) for k in form}
        media_type = params.get("media_type", "IMAGE" if network == "ig" else "")
        if media_type == "CAROUSEL":
            children = [c for c in params.get("children", "").split(",") if c]
            if len(children) < 2 or any(c not in self.containers for c in children):
                return error("(#100) The children of a carousel must be 2 or more carousel item containers", 100)
        elif media_type == "IMAGE" or (network == "ig" and not media_type):
            url = params.get("image_url", "")
            if not re.match(r"https://[^\s/]+/\S+", url):
                return error("Media download has failed. The media URI doesn't meet our requirements.", 9004,
                             subcode=2207052)
        elif media_type == "TEXT" and network == "threads":
            if not params.get("text"):
                return error("(#100) The parameter text is required for TEXT posts", 100)
            answering = params.get("reply_to_id")
            if answering and answering not in self.media and self.find_comment(answering) is None:
                return error(f"(#100) Param reply_to_id {answering} is not a valid Threads media id", 100)
        else:
            return error(f"(#100) Invalid media_type {media_type}", 100)
        container_id = self.next_id()
        statuses = list(self.container_statuses) or ["FINISHED"]
        self.container_statuses = []
        self.containers[container_id] = {"id": container_id, "network": network, "params": params,
                                         "statuses": statuses}
        return web.json_response({"id": container_id})

    def _publish(self, form: Any, network: str) -> web.Response:
        container_id = str(form.get("creation_id") or "")
        container = self.containers.get(container_id)
        if container is None or container["network"] != network:
            return error(f"(#100) Param creation_id {container_id} is not a valid container", 100)
        if str(container["params"].get("is_carousel_item", "")).lower() == "true":
            # like Meta: an item container only goes into a CAROUSEL container, never out on its own
            return error("Media created with media_type=IMAGE is a carousel item and cannot be published as a "
                         "standalone post.", 100, subcode=2207089)
        status = container["statuses"][0]
        if status == "PUBLISHED":
            return error("(#100) The media has already been published", 100, subcode=2207006)
        if status != "FINISHED":
            return error("Media ID is not available: the media is not ready for publishing", 9007, subcode=2207027)
        container["statuses"] = ["PUBLISHED"]
        media_id = self.next_id()
        params = container["params"]
        text = params.get("caption" if network == "ig" else "text", "")
        permalink = (f"https://www.instagram.com/p/C{media_id}/" if network == "ig"
                     else f"https://www.threads.net/@{self.threads_user['username']}/post/T{media_id}")
        self.media[media_id] = {"id": media_id, "network": network, "container": container_id, "text": text,
                                "params": params, "permalink": permalink, "likes": 0, "insights": {},
                                "comments": [], "at": datetime.now(UTC)}
        return web.json_response({"id": media_id})
