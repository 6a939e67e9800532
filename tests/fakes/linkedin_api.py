"""A fake LinkedIn REST API on 127.0.0.1: Posts (with target audiences), Geo Typeahead, Images, share statistics,
social actions and comments, OAuth."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from tests.fakes.loopback import LoopbackServer

# A few of LinkedIn's geo URNs (the ids LinkedIn's own Geo Typeahead answers for these names)
GEOS = {
    "urn:li:geo:105646813": "Spain",
    "urn:li:geo:103819153": "Norway",
    "urn:li:geo:103644278": "United States",
    "urn:li:geo:101165590": "United Kingdom",
    "urn:li:geo:104305776": "United Arab Emirates",
    "urn:li:geo:105015875": "France",
    "urn:li:geo:101282230": "Germany",
    "urn:li:geo:102221843": "Spain, Minnesota, United States",
}
TARGET_MINIMUM = 300  # LinkedIn refuses a target audience smaller than this many followers


class FakeLinkedIn(LoopbackServer):
    def __init__(self, token: str = "li-token", *, member: str = "abc123", org: str = "2414183") -> None:
        super().__init__()
        self.token = token
        self.member = member
        self.org = org
        self.roles = {f"urn:li:organization:{org}": "ADMINISTRATOR"}
        self.posts: dict[str, dict[str, Any]] = {}
        self.images: dict[str, bytes | None] = {}
        self.stats: dict[str, dict[str, int]] = {}
        self.comments: dict[str, list[dict[str, Any]]] = {}
        self.refresh_tokens = {"li-refresh": "li-token-2"}
        self.route("GET", "/v2/userinfo", self.userinfo)
        self.route("GET", "/rest/organizationAcls", self.acls)
        self.route("GET", "/rest/organizations/{id}", self.organization)
        self.route("POST", "/rest/images", self.init_image)
        self.route("PUT", "/dms-uploads/{n}", self.upload)
        self.route("POST", "/rest/posts", self.create_post)
        self.route("GET", "/rest/geoTypeahead", self.geo_typeahead)
        # the page's followers per geo URN (a target audience under TARGET_MINIMUM is refused)
        self.followers_in: dict[str, int] = {urn: 5000 for urn in GEOS}
        self.route("GET", "/rest/organizationalEntityShareStatistics", self.share_stats)
        self.route("GET", "/rest/socialMetadata/{urn}", self.social_metadata)
        self.route("GET", "/rest/socialActions/{urn}/comments", self.list_comments)
        self.route("POST", "/rest/socialActions/{urn}/comments", self.create_comment)
        self.comment_replies: dict[str, list[dict[str, Any]]] = {}  # parent comment urn → nested comments
        self.route("POST", "/oauth/v2/accessToken", self.access_token)

    # -- helpers ------------------------------------------------------------------------

    def denied(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"status": 401, "serviceErrorCode": 65600, "code": "INVALID_ACCESS_TOKEN",
                                      "message": "Invalid access token"}, status=401)
        return None

    def versioned(self, request: web.Request) -> web.Response | None:
        if not re.fullmatch(r"\d{6}", request.headers.get("LinkedIn-Version", "")):
            return web.json_response({"status": 400, "code": "VERSION_MISSING",
                                      "message": "A version must be present"}, status=400)
        if request.headers.get("X-Restli-Protocol-Version") != "2.0.0":
            return web.json_response({"status": 400, "message": "Restli protocol 2.0.0 required"}, status=400)
        return None

    # -- routes -------------------------------------------------------------------------

    async def userinfo(self, request: web.Request) -> web.Response:
        return self.denied(request) or web.json_response(
            {"sub": self.member, "name": "Ana Kowalski", "given_name": "Ana", "email_verified": True})

    async def acls(self, request: web.Request) -> web.Response:
        bad = self.denied(request) or self.versioned(request)
        if bad:
            return bad
        elements = [{"organization": org, "role": role, "state": "APPROVED",
                     "roleAssignee": f"urn:li:person:{self.member}"} for org, role in self.roles.items()]
        return web.json_response({"elements": elements, "paging": {"start": 0, "count": 10}})

    async def organization(self, request: web.Request) -> web.Response:
        bad = self.denied(request) or self.versioned(request)
        if bad:
            return bad
        return web.json_response({"id": int(request.match_info["id"]), "localizedName": "Acme Corp",
                                  "vanityName": "acme"})

    async def init_image(self, request: web.Request) -> web.Response:
        bad = self.denied(request) or self.versioned(request)
        if bad:
            return bad
        if request.query.get("action") != "initializeUpload":
            return web.json_response({"message": "unknown action"}, status=400)
        body = await request.json()
        owner = body["initializeUploadRequest"]["owner"]
        n = len(self.images) + 1
        urn = f"urn:li:image:C4E10AQ{n:04d}"
        self.images[urn] = None
        return web.json_response({"value": {"uploadUrlExpiresAt": 1790000000000, "owner": owner,
                                            "uploadUrl": f"{self.url}/dms-uploads/{n}", "image": urn}})

    async def upload(self, request: web.Request) -> web.Response:
        bad = self.denied(request)
        if bad:
            return bad
        urn = f"urn:li:image:C4E10AQ{int(request.match_info['n']):04d}"
        self.images[urn] = await request.read()
        return web.Response(status=201)

    async def create_post(self, request: web.Request) -> web.Response:
        bad = self.denied(request) or self.versioned(request)
        if bad:
            return bad
        body = await request.json()
        for field in ("author", "commentary", "visibility", "distribution", "lifecycleState"):
            if field not in body:
                return web.json_response({"status": 422, "message": f"/{field} is required"}, status=422)
        content = body.get("content") or {}
        for ref in [content.get("media")] + list((content.get("multiImage") or {}).get("images", [])):
            if ref and self.images.get(ref["id"]) is None:
                return web.json_response({"status": 422, "message": f"image {ref['id']} was not uploaded"},
                                         status=422)
        refused = self.check_targeting(body)
        if refused:
            return refused
        for urn, post in self.posts.items():
            if post["commentary"] == body["commentary"] and post["author"] == body["author"]:
                return web.json_response({"status": 422, "code": "DUPLICATE_POST",
                                          "message": f"Content is a duplicate of {urn}"}, status=422)
        urn = f"urn:li:share:{7000000000000000000 + len(self.posts) + 1}"
        self.posts[urn] = body
        return web.Response(status=201, headers={"x-restli-id": urn})

    def check_targeting(self, body: dict[str, Any]) -> web.Response | None:
        """distribution.targetEntities as LinkedIn reads it: organization posts only, known geo URNs, and a target
        audience of at least TARGET_MINIMUM followers."""
        targets = (body.get("distribution") or {}).get("targetEntities") or []
        if not targets:
            return None
        if not str(body["author"]).startswith("urn:li:organization:"):
            return web.json_response({"status": 422, "message": "Target audience is only supported for "
                                      "organization posts"}, status=422)
        for target in targets:
            geos = target.get("geoLocations") or []
            unknown = [g for g in geos if g not in GEOS] if isinstance(geos, list) else [geos]
            if unknown:
                return web.json_response({"status": 400, "message": f"Invalid geo urn(s) {unknown}"}, status=400)
            if sum(self.followers_in.get(g, 0) for g in geos) < TARGET_MINIMUM:
                return web.json_response({"status": 400, "message": "The targeted audience is too small: at "
                                          f"least {TARGET_MINIMUM} members are required"}, status=400)
        return None

    async def geo_typeahead(self, request: web.Request) -> web.Response:
        bad = self.denied(request) or self.versioned(request)
        if bad:
            return bad
        query = request.query.get("query", "").casefold()
        if request.query.get("q") != "search" or not query:
            return web.json_response({"status": 400, "message": "q=search and query are required"}, status=400)
        found = [{"displayText": name, "entity": urn} for urn, name in GEOS.items() if query in name.casefold()]
        return web.json_response({"elements": found, "paging": {"start": 0, "count": 10}})

    async def share_stats(self, request: web.Request) -> web.Response:
        bad = self.denied(request) or self.versioned(request)
        if bad:
            return bad
        raw = request.rel_url.raw_query_string
        urns: list[tuple[str, str]] = []
        for kind, key in (("shares", "share"), ("ugcPosts", "ugcPost")):
            match = re.search(kind + r"=List\(([^)]*)\)", raw)
            if match:
                urns += [(key, unquote(u)) for u in match.group(1).split(",") if u]
        elements = []
        for key, urn in urns:
            if urn in self.stats:
                elements.append({key: urn, "organizationalEntity": unquote(request.query["organizationalEntity"]),
                                 "totalShareStatistics": {"uniqueImpressionsCount": 1, "engagement": 0.1,
                                                          **self.stats[urn]}})
        return web.json_response({"elements": elements, "paging": {"start": 0, "count": 10}})

    async def social_metadata(self, request: web.Request) -> web.Response:
        bad = self.denied(request) or self.versioned(request)
        if bad:
            return bad
        urn = request.match_info["urn"]
        if urn not in self.stats:
            return web.json_response({"status": 404, "message": "Not found"}, status=404)
        stats = self.stats[urn]
        return web.json_response({
            "entity": urn,
            "reactionSummaries": {"LIKE": {"reactionType": "LIKE", "count": stats.get("likeCount", 0) - 1},
                                  "PRAISE": {"reactionType": "PRAISE", "count": 1}},
            "commentSummary": {"count": stats.get("commentCount", 0), "topLevelCount": 1},
            "commentsState": "OPEN"})

    async def list_comments(self, request: web.Request) -> web.Response:
        bad = self.denied(request) or self.versioned(request)
        if bad:
            return bad
        urn = request.match_info["urn"]
        return web.json_response({"elements": self.comments.get(urn, []), "paging": {"start": 0, "count": 10}})

    async def create_comment(self, request: web.Request) -> web.Response:
        """Comments API: a comment on a post, or (parentComment, posted to the parent comment's urn) on a comment."""
        bad = self.denied(request) or self.versioned(request)
        if bad:
            return bad
        target, body = request.match_info["urn"], await request.json()
        for field in ("actor", "object", "message"):
            if field not in body:
                return web.json_response({"status": 422, "message": f"/{field} is required"}, status=422)
        text = str((body.get("message") or {}).get("text") or "")
        if not text:
            return web.json_response({"status": 422, "message": "/message/text is required"}, status=422)
        if body["actor"] not in (*self.roles, f"urn:li:person:{self.member}"):
            return web.json_response({"status": 403, "message": f"Not enough permissions to comment as "
                                      f"{body['actor']}"}, status=403)
        parent = body.get("parentComment")
        siblings = self.comments.get(body["object"], [])
        if parent is not None and (parent != target or all(c.get("$URN") != parent for c in siblings)):
            return web.json_response({"status": 404, "message": f"Parent comment {parent} not found on "
                                      f"{body['object']}"}, status=404)
        if parent is None and target != body["object"]:
            return web.json_response({"status": 400, "message": "object must be the urn in the path"}, status=400)
        n = sum(map(len, self.comment_replies.values())) + sum(map(len, self.comments.values())) + 100
        urn = f"urn:li:comment:({body['object']},{n})"
        created = {"actor": body["actor"], "object": body["object"], "message": {"text": text}, "id": str(n),
                   "commentUrn": urn, "$URN": urn, **({"parentComment": parent} if parent else {})}
        self.comment_replies.setdefault(parent or body["object"], []).append(created)
        return web.json_response(created, status=201, headers={"x-restli-id": str(n)})

    async def access_token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != "refresh_token" or form.get("client_secret") != "li-secret":
            return web.json_response({"error": "invalid_request", "error_description": "bad client"}, status=400)
        new = self.refresh_tokens.get(str(form.get("refresh_token")))
        if new is None:
            return web.json_response({"error": "invalid_grant",
                                      "error_description": "The provided authorization grant is invalid, "
                                                           "expired or revoked"}, status=400)
        self.token = new
        return web.json_response({"access_token": new, "expires_in": 5184000, "refresh_token": "li-refresh",
                                  "refresh_token_expires_in": 31000000})
