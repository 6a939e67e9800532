"""A fake Google Analytics 4 on 127.0.0.1: the OAuth token endpoint a service account uses and the Data API's
`runReport` (https://developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/properties/runReport).

- `POST /token` takes the form `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>`, checks
  the JWT's RS256 signature against the service account's public key and its claims (iss, scope, aud, iat,
  exp), and answers `{"access_token", "expires_in", "token_type"}`; a bad assertion is 400 `invalid_grant`.
- `POST /v1beta/properties/<id>:runReport` with `Authorization: Bearer <token>` checks the request (dateRanges,
  dimensions, metrics, dimensionFilter) and answers in the documented shape: `dimensionHeaders`,
  `metricHeaders`, `rows: [{"dimensionValues": [{"value"}], "metricValues": [{"value": "<string>"}]}]`,
  `rowCount`, `metadata`, `kind` (no `rows` when nothing matched). A property the account can't read is 403
  PERMISSION_DENIED; an unknown metric is 400 INVALID_ARGUMENT.

`sessions` holds what the property saw: one `Visit` (utm_content, medium, key events as goals, user) a session.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.fakes.loopback import LoopbackServer
from tests.fakes.plausible_api import Visit  # one session: its utm_content, medium, key events (goals), user

GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPE = "https://www.googleapis.com/auth/analytics.readonly"
METRICS = {"sessions", "totalUsers", "activeUsers", "keyEvents", "conversions"}


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def google_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": status, "message": message, "status": code}}, status=status)


class FakeGA4(LoopbackServer):
    def __init__(self, *, property_id: str = "123456789", key_events: tuple[str, ...] = ("sign_up",)) -> None:
        super().__init__()
        self.property_id = property_id
        self.key_events = key_events
        self.sessions: list[Visit] = []
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.email = "herald-reader@acme-analytics.iam.gserviceaccount.com"
        self.tokens: set[str] = set()
        self.issued = 0
        self.route("POST", "/token", self.token)
        self.route("POST", "/v1beta/properties/{call}", self.run_report)

    def service_account(self) -> dict[str, Any]:
        """The JSON key Google hands out for the service account (after start: token_uri is this server)."""
        pem = self.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()).decode()
        return {"type": "service_account", "project_id": "acme-analytics", "private_key_id": "k1",
                "private_key": pem, "client_email": self.email, "client_id": "1234567890",
                "token_uri": f"{self.url}/token"}

    async def token(self, request: web.Request) -> web.Response:
        form = self.seen[-1].form or dict(await request.post())
        if form.get("grant_type") != GRANT:
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        try:
            head, claims_part, signature = str(form.get("assertion", "")).split(".")
            header, claims = json.loads(_unb64(head)), json.loads(_unb64(claims_part))
            self.private_key.public_key().verify(_unb64(signature), f"{head}.{claims_part}".encode(),
                                                 padding.PKCS1v15(), hashes.SHA256())
        except (ValueError, InvalidSignature):
            return web.json_response({"error": "invalid_grant", "error_description": "Invalid JWT Signature."},
                                     status=400)
        if (header.get("alg") != "RS256" or claims.get("iss") != self.email or claims.get("scope") != SCOPE
                or claims.get("aud") != f"{self.url}/token" or claims.get("exp", 0) - claims.get("iat", 0) > 3600):
            return web.json_response({"error": "invalid_grant", "error_description": "Invalid JWT claims."},
                                     status=400)
        self.issued += 1
        token = f"ya29.fake-{self.issued}"
        self.tokens.add(token)
        return web.json_response({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    async def run_report(self, request: web.Request) -> web.Response:
        prop, _, method = request.match_info["call"].partition(":")
        if method != "runReport":
            return google_error(404, "NOT_FOUND", "Method not found.")
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            return google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        if prop != self.property_id:
            return google_error(403, "PERMISSION_DENIED", "User does not have sufficient permissions for this "
                                                          "property. To learn more about Property ID, see …")
        body = await request.json()
        ranges = body.get("dateRanges")
        if not (isinstance(ranges, list) and ranges and {"startDate", "endDate"} <= set(ranges[0])):
            return google_error(400, "INVALID_ARGUMENT", "dateRanges must be set.")
        if body.get("dimensions") != [{"name": "sessionManualAdContent"}]:
            return google_error(400, "INVALID_ARGUMENT", "the fake groups by sessionManualAdContent only")
        names = [m.get("name", "") for m in body.get("metrics") or []]
        for name in names:
            base, _, event = name.partition(":")
            if base not in METRICS or (event and event not in self.key_events):
                return google_error(400, "INVALID_ARGUMENT", f"Field {name} is not a valid metric. For a list of "
                                                             "valid dimensions and metrics, see …")
        chosen = self.sessions
        flt = (body.get("dimensionFilter") or {}).get("filter")
        if flt is not None:
            if flt.get("fieldName") != "sessionMedium" or flt.get("stringFilter", {}).get("matchType") != "EXACT":
                return google_error(400, "INVALID_ARGUMENT", "the fake filters on sessionMedium EXACT only")
            chosen = [s for s in chosen if s.medium == flt["stringFilter"]["value"]]
        groups: dict[str, list[Visit]] = {}
        for s in chosen:
            groups.setdefault(s.content or "(not set)", []).append(s)

        def value(name: str, group: list[Visit]) -> str:
            base, _, event = name.partition(":")
            if base == "sessions":
                return str(len(group))
            if base in ("totalUsers", "activeUsers"):
                return str(len({s.visitor or id(s) for s in group}))
            return str(sum(sum(1 for e in s.goals if (e == event if event else e in self.key_events))
                           for s in group))

        rows = [{"dimensionValues": [{"value": content}],
                 "metricValues": [{"value": value(n, group)} for n in names]}
                for content, group in sorted(groups.items())]
        answer: dict[str, Any] = {
            "dimensionHeaders": [{"name": "sessionManualAdContent"}],
            "metricHeaders": [{"name": n, "type": "TYPE_INTEGER"} for n in names],
            "rowCount": len(rows),
            "metadata": {"currencyCode": "EUR", "timeZone": "Europe/Paris"},
            "kind": "analyticsData#runReport",
        }
        if rows:
            answer["rows"] = rows
        return web.json_response(answer)
