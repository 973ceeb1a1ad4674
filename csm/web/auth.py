"""Who is asking: a signed, expiring session cookie after login, or the token as a bearer header.

The session cookie holds the manager's name and when it was issued, signed by
itsdangerous with a key derived from the token, so changing CSM_WEB_TOKEN logs
everyone out and nothing is stored server-side. A cookie older than the session's
lifetime (CSM_WEB_SESSION_HOURS), or one whose signature does not check, is no
session: the page sends the manager to sign in again.
"""

from __future__ import annotations

import hmac

from itsdangerous import BadData, URLSafeTimedSerializer
from starlette.requests import Request

COOKIE = "csm_session"
#: Separates the session's signatures from any other use of the token as a key.
SALT = "csm-web-session"


def _serializer(token: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(token, salt=SALT)


def sign(token: str, name: str) -> str:
    """A session cookie's value for `name`, stamped with the time it is issued."""
    return _serializer(token).dumps({"name": name})


def signed_name(token: str, cookie: str | None, max_age_seconds: float) -> str | None:
    """The name in a valid session cookie no older than `max_age_seconds`, else None."""
    if not cookie:
        return None
    try:
        value = _serializer(token).loads(cookie, max_age=max_age_seconds)
    except BadData:  # tampered, signed with another token, or expired
        return None
    name = value.get("name") if isinstance(value, dict) else None
    return name if isinstance(name, str) and name else None


def user_of(request: Request, token: str, max_age_seconds: float) -> str | None:
    """The manager behind a request: the session's name, or "api" for the bearer token."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer ") and hmac.compare_digest(
        header[7:].strip().encode(), token.encode()
    ):
        return request.headers.get("x-csm-user", "api")[:100]
    return signed_name(token, request.cookies.get(COOKIE), max_age_seconds)


def token_matches(token: str, given: str) -> bool:
    return hmac.compare_digest(given.encode(), token.encode())
