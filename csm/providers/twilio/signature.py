"""Twilio's webhook signature (`X-Twilio-Signature`): computed and checked.

A carrier signs each webhook it sends: base64 of an HMAC-SHA1, keyed with the
account's auth token, over the full URL it called followed by every POST
parameter's name and value, names in sorted order (a repeated name's values
sorted too). The webhook receiver refuses a request whose signature does not
check out, and the local carrier signs its callbacks with `sign`, so both ends
of the tests run this one definition. tests/test_twilio_signature.py holds it
against the official `twilio` package's validator.

Behind a proxy the URL the carrier signed may differ from the one the receiver
sees only by the scheme's default port (`:443`, `:80`) being written or not;
`verify` accepts either spelling, as Twilio's own validator does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit, urlunsplit

#: A webhook's POST parameters: one value per name, or several (a name repeated).
Params = Mapping[str, str | Iterable[str]]

DEFAULT_PORTS = {"https": 443, "http": 80}


def sign(auth_token: str, url: str, params: Params | None = None) -> str:
    """The `X-Twilio-Signature` value for a POST of `params` to `url`."""
    signed = url + "".join(f"{name}{value}" for name, value in _pairs(params or {}))
    digest = hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def verify(auth_token: str, url: str, params: Params | None, signature: str | None) -> bool:
    """Whether `signature` is the carrier's for this request (constant-time comparison)."""
    if not signature or not auth_token:
        return False
    return any(
        hmac.compare_digest(sign(auth_token, candidate, params), signature)
        for candidate in _spellings(url)
    )


def _pairs(params: Params) -> list[tuple[str, str]]:
    """Each (name, value) in signing order: names sorted, a name's distinct values sorted."""
    pairs: list[tuple[str, str]] = []
    for name in sorted(params):
        given = params[name]
        values = [given] if isinstance(given, str) else list(given)
        pairs.extend((name, value) for value in sorted(set(values)))
    return pairs


def _spellings(url: str) -> list[str]:
    """The URL as seen, and with its scheme's default port written out or left out."""
    parts = urlsplit(url)
    default = DEFAULT_PORTS.get(parts.scheme)
    if default is None or parts.hostname is None:
        return [url]
    host = parts.netloc.rsplit("@", 1)[-1]
    userinfo = parts.netloc[: len(parts.netloc) - len(host)]
    bare = host.rsplit(":", 1)[0] if parts.port is not None else host
    spelled = {url}
    if parts.port in (None, default):
        for netloc in (f"{userinfo}{bare}", f"{userinfo}{bare}:{default}"):
            spelled.add(urlunsplit(parts._replace(netloc=netloc)))
    return sorted(spelled)
