"""E-mail addresses, checked for syntax only (no DNS) and stored lower-cased.

`email-validator` costs about 55 µs an address here. Nearly every address in
a real list is plain ASCII `local@domain.tld`, so a strict regular expression
accepts the short, plain ones and everything else goes to the library. The
fast path never rejects: it answers or defers, and
`tests/test_lists_normalise.py` checks its answers against the library's.
"""

from __future__ import annotations

import re
from functools import lru_cache

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email


class EmailError(ValueError):
    """A cell that is not a valid e-mail address; the message quotes no address."""


#: Lower-case ASCII dot-atom local part, hostname labels, alphabetic TLD. At most 64
#: characters in all, so no local-part, label or domain length limit can be reached.
_PLAIN = re.compile(
    r"[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}"
)
_FAST_MAX_LENGTH = 64


@lru_cache(maxsize=1)
def _special_use() -> re.Pattern[str]:
    """Domains email-validator refuses as special-use (`x.test`, `localhost`, ...)."""
    names = "|".join(re.escape(name.lower()) for name in SPECIAL_USE_DOMAIN_NAMES)
    return re.compile(rf"(?:^|\.)(?:{names})\Z")


def fast(text: str) -> str | None:
    """The lower-cased address if it is plainly valid, None to defer to the library."""
    if len(text) > _FAST_MAX_LENGTH or not text.isascii():
        return None
    lowered = text.lower()
    if not _PLAIN.fullmatch(lowered):
        return None
    domain = lowered.rpartition("@")[2]
    if "--" in domain:
        return None  # reserved "ab--" labels and Punycode: the library knows the rules
    if _special_use().search(domain):
        return None
    return lowered


def library(text: str) -> str:
    """The reference path: `email_validator` without deliverability checks."""
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as err:
        raise EmailError("not a valid e-mail address") from err
    return result.normalized.lower()


def normalise(text: str) -> str:
    """The address in `text` (a non-empty cell), lower-cased, or EmailError."""
    return fast(text) or library(text)
