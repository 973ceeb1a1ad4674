"""Who is asking: a signed session cookie after login, or the token as a bearer header.

The session cookie holds the manager's name and an HMAC of it keyed by the token,
so changing CSM_WEB_TOKEN logs everyone out; nothing is stored server-side.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote, unquote

from starlette.requests import Request

COOKIE = "csm_session"


def sign(token: str, name: str) -> str:
    mac = hmac.new(token.encode(), name.encode(), hashlib.sha256).hexdigest()
    return f"{quote(name)}|{mac}"


def signed_name(token: str, cookie: str | None) -> str | None:
    """The name in a valid session cookie, else None."""
    if not cookie or "|" not in cookie:
        return None
    quoted, mac = cookie.rsplit("|", 1)
    name = unquote(quoted)
    expected = hmac.new(token.encode(), name.encode(), hashlib.sha256).hexdigest()
    return name if hmac.compare_digest(mac, expected) else None


def user_of(request: Request, token: str) -> str | None:
    """The manager behind a request: the session's name, or "api" for the bearer token."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer ") and hmac.compare_digest(
        header[7:].strip().encode(), token.encode()
    ):
        return request.headers.get("x-csm-user", "api")[:100]
    return signed_name(token, request.cookies.get(COOKIE))


def token_matches(token: str, given: str) -> bool:
    return hmac.compare_digest(given.encode(), token.encode())
