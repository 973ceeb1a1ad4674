"""What a suppression names: a target (kind, value), normalised once, and a reason.

Targets are stored normalised exactly as the list importer stores devices and
account keys, so "(415) 555-0100" suppresses the device "+14155550100", and an
account key suppresses the account even if it is imported only later. A `Target`
is only ever made normalised: the store, the importer and the CLI all take it as is.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import TypedDict

from csm.lists import emails
from csm.lists.cells import is_formula_like
from csm.lists.phones import PhoneError, PhoneNormaliser
from csm.lists.rows import MAX_ACCOUNT_KEY
from csm.strategy.values import did_you_mean, with_hint
from csm.suppressions.errors import SuppressionError


class SuppressionKind(StrEnum):
    """What a suppression names."""

    ACCOUNT = "account"  # an account key, as written in list files
    PHONE = "phone"  # a phone number in E.164
    EMAIL = "email"  # an e-mail address, lower-cased


class Named(TypedDict, total=False):
    """The keyword arguments that name one target: exactly one of them is given."""

    account: str | None
    phone: str | None
    email: str | None


DEFAULT_REASON = "do_not_contact"
#: Reasons the pass activities and `receive_sms` write.
STOP_REPLY = "stop_reply"
HARD_BOUNCE = "hard_bounce"
#: The length of `suppressions.reason`.
MAX_REASON = 32
FORMULA_REASON = "formula-like text (starts with =, +, - or @): CSV injection risk"
#: A number already written in E.164. The numbering plan may not know it (synthetic lists use
#: unassigned exchanges such as 602-100), but a device or an inbound sender can still carry it,
#: and suppressing it must be possible: such a number is stored as written.
_E164 = re.compile(r"\+[1-9]\d{7,14}")


class BadCell(ValueError):
    """A target or reason cell that cannot be used; the message names no value."""


@dataclass(frozen=True)
class Target:
    """One suppressed thing: its kind and its value as stored (see the module's docstring)."""

    kind: SuppressionKind
    value: str

    @classmethod
    def read(cls, kind: SuppressionKind, text: str, default_region: str = "US") -> Target:
        """The target a cell spells, or BadCell (whose message a file's problem can show)."""
        cell = text.strip()
        if not cell:
            raise BadCell(f"empty {kind}")
        if kind is SuppressionKind.PHONE:
            return cls(kind, _phone(cell, default_region))
        if kind is SuppressionKind.EMAIL:
            try:
                return cls(kind, emails.normalise(cell))
            except emails.EmailError as err:
                raise BadCell(str(err)) from err
        if is_formula_like(cell):  # the list importer rejects such account keys: none can exist
            raise BadCell(FORMULA_REASON)
        if len(cell) > MAX_ACCOUNT_KEY:  # nor such long ones, and the unique index refuses them
            raise BadCell(f"account key longer than {MAX_ACCOUNT_KEY} characters")
        return cls(kind, cell)

    @classmethod
    def named(cls, kind: str, text: str, default_region: str = "US") -> Target:
        """The target of a request (a kind's name and a spelling), or SuppressionError."""
        chosen = kind_named(kind)
        try:
            return cls.read(chosen, text, default_region)
        except BadCell as err:
            raise SuppressionError(f"{chosen} {text.strip()!r}: {err}") from None

    @classmethod
    def one_of(cls, named: Named, default_region: str = "US") -> Target:
        """The one target that `account=`, `phone=` or `email=` names; None counts as not given."""
        unknown = sorted(set(named) - set(SuppressionKind))
        if unknown:
            raise TypeError(f"unexpected keyword argument {unknown[0]!r}")
        given = [(kind, text) for kind, text in named.items() if text is not None]
        if len(given) != 1:
            raise SuppressionError("name exactly one target: an account, a phone or an e-mail")
        kind, text = given[0]
        return cls.named(kind, str(text), default_region)


def normalise_target(kind: str, text: str, *, default_region: str = "US") -> str:
    """A target as stored: the account key stripped, a phone in E.164, an e-mail lower-cased."""
    return Target.named(kind, text, default_region).value


def kind_named(kind: str) -> SuppressionKind:
    """The kind a request names, or SuppressionError with the choices (and a hint)."""
    try:
        return SuppressionKind(kind)
    except ValueError:
        choices = ", ".join(SuppressionKind)
        hint = did_you_mean(kind, list(SuppressionKind))
        raise SuppressionError(with_hint(f"unknown kind {kind!r}: use {choices}", hint)) from None


def read_reason(text: str) -> str:
    """A reason cell as stored, or BadCell: short, printable, not formula-like."""
    reason = text.strip()
    if not reason:
        raise BadCell("empty reason")
    if len(reason) > MAX_REASON:
        raise BadCell(f"reason longer than {MAX_REASON} characters")
    if any(unicodedata.category(ch).startswith("C") for ch in reason):
        raise BadCell("reason has control characters")
    if is_formula_like(reason):
        raise BadCell(FORMULA_REASON)
    return reason


def checked_reason(reason: str) -> str:
    """The reason of a request as stored, or SuppressionError."""
    try:
        return read_reason(reason)
    except BadCell as err:
        raise SuppressionError(f"reason {reason!r}: {err}") from None


@lru_cache(maxsize=8)
def _phones(default_region: str) -> PhoneNormaliser:
    return PhoneNormaliser(default_region)


def _phone(cell: str, default_region: str) -> str:
    try:
        return _phones(default_region).normalise(cell).e164
    except PhoneError as err:
        if _E164.fullmatch(cell):
            return cell  # E.164 as written, though the plan does not know it: see _E164
        raise BadCell(str(err)) from err
