"""A carrier's webhook request, read and checked before anything is written.

The order matters: the body is read only up to its limit (413 beyond), parsed as
the form Twilio sends (400 when it is not one), then its `X-Twilio-Signature` is
checked against the URL the carrier was given — CSM_PUBLIC_URL + the route's path +
the query as received — with the account's auth token (403 otherwise). Only a
signed form reaches the database. A refusal's reason is short and names a field,
never a value a person wrote or a phone number.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, parse_qsl

from starlette.requests import Request

from csm.providers.twilio.protocol import KEY_PARAM
from csm.providers.twilio.signature import verify

#: The largest body a webhook may have: Twilio's are well under 4 KiB.
MAX_BODY = 64 * 1024
#: More fields than any Twilio webhook carries: a form beyond it is not one.
MAX_FIELDS = 200
FORM_TYPE = "application/x-www-form-urlencoded"
SIGNATURE_HEADER = "x-twilio-signature"


class Refused(Exception):
    """A request the receiver answers with `status` and a short plain `reason`."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class SignedForm:
    """A webhook whose signature checked out: its fields and the attempt key of its URL."""

    fields: dict[str, list[str]]
    key: str | None
    url: str

    def get(self, name: str) -> str | None:
        """The field's one value (None when absent or empty); a repeated field is a 400."""
        values = self.fields.get(name)
        if not values:
            return None
        if len(values) > 1:
            raise Refused(400, f"field {name} is repeated")
        return values[0] or None

    def require(self, name: str) -> str:
        """The field's value, which must be present (it may be empty only if `Body`)."""
        if name not in self.fields:
            raise Refused(400, f"field {name} is missing")
        value = self.get(name)
        if value is None and name != "Body":
            raise Refused(400, f"field {name} is empty")
        return value or ""


async def signed_form(request: Request, *, public_url: str, path: str, token: str) -> SignedForm:
    """The request's form once size, shape and signature are checked (else `Refused`).

    `path` is the route's path as the carrier was given it (protocol's *_PATH), so a
    proxy in front that strips or adds a prefix does not change what is verified."""
    body = await _body(request)
    fields = _form(request, body)
    query = request.scope.get("query_string", b"").decode("latin-1")
    url = public_url.rstrip("/") + path + (f"?{query}" if query else "")
    if not verify(token, url, fields, request.headers.get(SIGNATURE_HEADER)):
        raise Refused(403, "signature missing or not valid")
    return SignedForm(fields=fields, key=_key(query), url=url)


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise Refused(400, "Content-Length is not a number")
        if int(declared) > MAX_BODY:
            raise Refused(413, f"body over {MAX_BODY} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise Refused(413, f"body over {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _form(request: Request, body: bytes) -> dict[str, list[str]]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_TYPE:
        raise Refused(400, f"body is not a form ({FORM_TYPE})")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=True,
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        raise Refused(400, "body is not a well-formed form") from None
    fields: dict[str, list[str]] = {}
    for name, value in pairs:
        fields.setdefault(name, []).append(value)
    return fields


def _key(query: str) -> str | None:
    """The attempt key of the callback URL (None when it has none)."""
    try:
        keys = parse_qs(query, keep_blank_values=True, errors="strict").get(KEY_PARAM, [])
    except UnicodeDecodeError:
        raise Refused(400, "query is not well-formed") from None
    if len(keys) > 1:
        raise Refused(400, f"query parameter {KEY_PARAM} is repeated")
    return keys[0] or None if keys else None
