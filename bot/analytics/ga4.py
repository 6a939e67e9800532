"""Google Analytics 4, Data API v1beta (https://developers.google.com/analytics/devguides/reporting/data/v1):
`POST {api}/v1beta/properties/{id}:runReport` with a bearer access token. The answer is
`{"dimensionHeaders": [...], "metricHeaders": [...], "rows": [{"dimensionValues": [{"value": …}],
"metricValues": [{"value": "12"}, …]}], "rowCount": n}` (metric values are strings; no `rows` when empty).

Herald asks one report per read: dimension `sessionManualAdContent` (utm_content), metrics `sessions`,
`totalUsers` and, with a goal, `keyEvents:<goal>` (conversions of that key event), filtered to
`sessionMedium` = "social".

The access token comes from the service account (its JSON key file: `client_email`, `private_key`,
`token_uri`): a JWT signed RS256 with the private key is exchanged at `token_uri` for an hour's token
(grant type `urn:ietf:params:oauth:grant-type:jwt-bearer`, scope analytics.readonly).
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from bot.analytics.common import count, malformed, post_json
from handlers.core.ports import AnalyticsError, AnalyticsErrorKind, AnalyticsQuery, Traffic

if TYPE_CHECKING:
    from bot.analytics import HttpAnalytics

SERVICE = "Google Analytics"
GA4_API_URL = "https://analyticsdata.googleapis.com"
TOKEN_URI = "https://oauth2.googleapis.com/token"
SCOPE = "https://www.googleapis.com/auth/analytics.readonly"
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
LIMIT = 10_000


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def service_account(secrets: dict[str, Any]) -> dict[str, Any]:
    """The service account's key (the JSON Google hands out), checked for the fields Herald uses."""
    account = secrets.get("service_account")
    if not isinstance(account, dict) or not account.get("client_email") or not account.get("private_key"):
        raise ValueError("the credentials aren't a service account key (client_email and private_key)")
    return account


def signed_jwt(account: dict[str, Any], now: float) -> str:
    """The RS256 assertion the token endpoint exchanges for an access token."""
    header = {"alg": "RS256", "typ": "JWT"}
    if account.get("private_key_id"):
        header["kid"] = str(account["private_key_id"])
    claims = {"iss": account["client_email"], "scope": SCOPE, "aud": account.get("token_uri") or TOKEN_URI,
              "iat": int(now), "exp": int(now) + 3600}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}".encode()
    try:
        key = serialization.load_pem_private_key(str(account["private_key"]).encode(), password=None)
    except (ValueError, TypeError):
        raise ValueError("the service account's private_key can't be read") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the service account's private_key isn't an RSA key")
    signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input.decode()}.{_b64(signature)}"


async def access_token(analytics: HttpAnalytics, account: dict[str, Any]) -> str:
    now = analytics.clock.now().timestamp()
    email = str(account["client_email"])
    kept = analytics.tokens.get(email)
    if kept is not None and kept[1] > now + 60:
        return kept[0]
    # the token endpoint answers 400 invalid_grant to a deleted key or a disabled account: refused, too
    answer = await post_json(analytics.client, SERVICE, str(account.get("token_uri") or TOKEN_URI), headers={},
                             form={"grant_type": GRANT, "assertion": signed_jwt(account, now)},
                             refused=(400, 401, 403))
    token = answer.get("access_token") if isinstance(answer, dict) else None
    if not token:
        raise malformed(SERVICE, "no access_token from the token endpoint")
    analytics.tokens[email] = (str(token), now + float(answer.get("expires_in") or 3600))
    return str(token)


def report_body(query: AnalyticsQuery, goal: str | None) -> dict[str, Any]:
    metrics = [{"name": "sessions"}, {"name": "totalUsers"}]
    if goal:
        metrics.append({"name": f"keyEvents:{goal}"})
    return {
        "dateRanges": [{"startDate": query.start.isoformat(), "endDate": query.end.isoformat()}],
        "dimensions": [{"name": "sessionManualAdContent"}],
        "metrics": metrics,
        "dimensionFilter": {"filter": {"fieldName": "sessionMedium",
                                       "stringFilter": {"matchType": "EXACT", "value": query.medium}}},
        "limit": str(LIMIT),
    }


async def read_ga4(analytics: HttpAnalytics, settings: dict[str, Any], secrets: dict[str, Any],
                   query: AnalyticsQuery) -> dict[str, Traffic]:
    try:
        account = service_account(secrets)
        token = await access_token(analytics, account)
    except ValueError as exc:
        raise AnalyticsError(AnalyticsErrorKind.REFUSED, f"{SERVICE}: {exc}") from None
    goal = settings.get("goal") or None
    url = f"{analytics.ga4_api_url}/v1beta/properties/{settings['property']}:runReport"
    answer = await post_json(analytics.client, SERVICE, url, headers={"Authorization": f"Bearer {token}"},
                             body=report_body(query, goal))
    if not isinstance(answer, dict):
        raise malformed(SERVICE, "not an object")
    width = 3 if goal else 2
    out: dict[str, Traffic] = {}
    for row in answer.get("rows") or []:
        dims = row.get("dimensionValues") if isinstance(row, dict) else None
        values = row.get("metricValues") if isinstance(row, dict) else None
        if not isinstance(dims, list) or len(dims) != 1 or not isinstance(values, list) or len(values) != width:
            raise malformed(SERVICE, "a row without one dimension and the metrics asked")
        numbers = [count(v.get("value") if isinstance(v, dict) else None, SERVICE) for v in values]
        content = str(dims[0].get("value") if isinstance(dims[0], dict) else "")
        out[content] = Traffic(visits=numbers[0], visitors=numbers[1], conversions=numbers[2] if goal else None)
    return out
