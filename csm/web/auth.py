"""Who is asking: a signed, expiring session cookie after login, or the token as a bearer header.

The session cookie holds the manager's name and when it was issued, signed by
itsdangerous with a key derived from the token, so changing CSM_WEB_TOKEN logs
everyone out and nothing is stored server-side. A cookie older than the session's
lifetime (CSM_WEB_SESSION_HOURS), or one whose signature does not check, is no
session: the page sends the manager to sign in again.

Starlette's `AuthenticationMiddleware` runs `SessionBackend` once per request;
endpoints say what they need with `signed_in` (Starlette's `requires`), and a
refusal goes through one handler (`refuse`): JSON 401 for the API, the sign-in
form for pages.
"""

from __future__ import annotations

import hmac

from itsdangerous import BadData, URLSafeTimedSerializer
from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    SimpleUser,
    requires,
)
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, RedirectResponse, Response

COOKIE = "csm_session"
#: Separates the session's signatures from any other use of the token as a key.
SALT = "csm-web-session"
#: The scope a request has when it comes from a manager (session or bearer token).
AUTHENTICATED = "authenticated"

#: The guard of every endpoint but sign-in: without a manager, HTTP 401 goes to `refuse`.
signed_in = requires(AUTHENTICATED, status_code=401)


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


def user_of(connection: HTTPConnection, token: str, max_age_seconds: float) -> str | None:
    """The manager behind a request: the session's name, or "api" for the bearer token."""
    header = connection.headers.get("authorization", "")
    if header.lower().startswith("bearer ") and hmac.compare_digest(
        header[7:].strip().encode(), token.encode()
    ):
        return connection.headers.get("x-csm-user", "api")[:100]
    return signed_name(token, connection.cookies.get(COOKIE), max_age_seconds)


def token_matches(token: str, given: str) -> bool:
    return hmac.compare_digest(given.encode(), token.encode())


class SessionBackend(AuthenticationBackend):
    """Starlette's authentication from the session cookie or the bearer token."""

    def __init__(self, token: str, session_seconds: float) -> None:
        self.token = token
        self.session_seconds = session_seconds

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        name = user_of(conn, self.token, self.session_seconds)
        if name is None:
            return None  # Starlette's UnauthenticatedUser: `signed_in` refuses
        return AuthCredentials([AUTHENTICATED]), SimpleUser(name)


def manager(request: Request) -> str:
    """The signed-in manager's name (an endpoint behind `signed_in`)."""
    return request.user.display_name


async def refuse(request: Request, _exc: Exception) -> Response:
    """No manager behind the request: the API says so, a page sends to the sign-in form."""
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": "a token is needed (log in, or Bearer)"}, 401)
    return RedirectResponse(f"/login?next={request.url.path}", 303)


def start_session(
    response: Response, request: Request, token: str, name: str, session_seconds: float
) -> None:
    """Set the session cookie: HttpOnly, SameSite=Lax, expiring, Secure under https."""
    response.set_cookie(
        COOKIE,
        sign(token, name),
        max_age=max(int(session_seconds), 1),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",  # behind a TLS proxy: X-Forwarded-Proto
    )


def end_session(response: Response) -> None:
    response.delete_cookie(COOKIE)
