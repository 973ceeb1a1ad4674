"""Phone numbers to E.164, with the number's single time zone when it has one.

`phonenumbers` is the authority, but parse + validate + format costs about
60 µs a number here, which alone would cap an import at ~16,000 rows/s per
core. Most list files carry North American numbers in a handful of canonical
spellings, so `PhoneNormaliser` first tries a strict fast path: a regular
expression that accepts only those spellings, followed by the library's own
validity rules for country code 1 (the same patterns, read from the library's
metadata at start-up and applied in the library's order). Anything the fast
path does not recognise goes to the library unchanged. The fast path never
rejects a number: it answers, or it defers. `tests/test_lists_normalise.py`
checks that every answer it gives equals the library's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberFormat, PhoneNumberType
from phonenumbers.timezone import time_zones_for_number
from phonenumbers.tzdata import TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX


class LineType(StrEnum):
    """What the numbering plan says about a number, to warn on a wireless/landline mix-up."""

    MOBILE = "mobile"
    FIXED = "fixed"
    EITHER = "either"  # NANP: the plan cannot tell wireless from landline
    OTHER = "other"  # toll-free, premium, VoIP, ...


class Phone(NamedTuple):
    """A valid number: its E.164 form and the one time zone its prefix maps to, if exactly one."""

    e164: str
    zone: str | None
    line_type: LineType


class PhoneError(ValueError):
    """A cell that is not a valid phone number; the message names no digits."""


_LINE_TYPES = {
    PhoneNumberType.MOBILE: LineType.MOBILE,
    PhoneNumberType.FIXED_LINE: LineType.FIXED,
    PhoneNumberType.FIXED_LINE_OR_MOBILE: LineType.EITHER,
}

#: Country code 1 in the canonical spellings: +1 4155550100, +1 (415) 555-0100, 1-415-555-0100,
#: (415) 555-0100, 415.555.0100. Without the "+", only when the default region dials with 1.
_CANONICAL = re.compile(r"(\+?)(?:1[ .-]?)?(?:\((\d{3})\)|(\d{3}))[ .-]?(\d{3})[ .-]?(\d{4})")

#: The order `phonenumbers` tests number types in (`_number_type_helper`).
_TYPE_ORDER = (
    ("premium_rate", PhoneNumberType.PREMIUM_RATE),
    ("toll_free", PhoneNumberType.TOLL_FREE),
    ("shared_cost", PhoneNumberType.SHARED_COST),
    ("voip", PhoneNumberType.VOIP),
    ("personal_number", PhoneNumberType.PERSONAL_NUMBER),
    ("pager", PhoneNumberType.PAGER),
    ("uan", PhoneNumberType.UAN),
    ("voicemail", PhoneNumberType.VOICEMAIL),
)


def _desc_matcher(desc: object, length: int) -> re.Pattern[str] | None:
    """The compiled pattern of a number description if a `length`-digit number can match it."""
    if desc is None:
        return None
    pattern = getattr(desc, "national_number_pattern", None)
    if not pattern:
        return None
    possible = getattr(desc, "possible_length", ()) or ()
    if possible and length not in possible:
        return None
    return re.compile(pattern)


@dataclass(frozen=True)
class _RegionRules:
    """One NANP region's rules for 10-digit national numbers, precompiled."""

    region: str
    leading_digits: re.Pattern[str] | None
    general: re.Pattern[str] | None
    special: tuple[tuple[re.Pattern[str], PhoneNumberType], ...]
    fixed_line: re.Pattern[str] | None
    mobile: re.Pattern[str] | None
    same_mobile_and_fixed: bool

    @classmethod
    def load(cls, region: str) -> _RegionRules | None:
        metadata = PhoneMetadata.metadata_for_region(region, None)
        if metadata is None:
            return None
        special = tuple(
            (matcher, number_type)
            for name, number_type in _TYPE_ORDER
            if (matcher := _desc_matcher(getattr(metadata, name), 10)) is not None
        )
        return cls(
            region=region,
            leading_digits=re.compile(metadata.leading_digits) if metadata.leading_digits else None,
            general=_desc_matcher(metadata.general_desc, 10),
            special=special,
            fixed_line=_desc_matcher(metadata.fixed_line, 10),
            mobile=_desc_matcher(metadata.mobile, 10),
            same_mobile_and_fixed=bool(metadata.same_mobile_and_fixed_line_pattern),
        )

    def number_type(self, national: str) -> PhoneNumberType:
        """The library's `_number_type_helper`, for a 10-digit national number."""
        if self.general is None or not self.general.fullmatch(national):
            return PhoneNumberType.UNKNOWN
        for matcher, number_type in self.special:
            if matcher.fullmatch(national):
                return number_type
        if self.fixed_line is not None and self.fixed_line.fullmatch(national):
            if self.same_mobile_and_fixed or (
                self.mobile is not None and self.mobile.fullmatch(national)
            ):
                return PhoneNumberType.FIXED_LINE_OR_MOBILE
            return PhoneNumberType.FIXED_LINE
        if (
            not self.same_mobile_and_fixed
            and self.mobile is not None
            and self.mobile.fullmatch(national)
        ):
            return PhoneNumberType.MOBILE
        return PhoneNumberType.UNKNOWN


@lru_cache(maxsize=1)
def _nanp_rules() -> tuple[_RegionRules, ...]:
    """The regions sharing country code 1, in the library's order (US first)."""
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(1, ())
    return tuple(rules for region in regions if (rules := _RegionRules.load(region)) is not None)


@lru_cache(maxsize=4096)
def single_zone(zones: tuple[str, ...]) -> str | None:
    """The zone of a number when the library names exactly one known zone, else None."""
    if len(zones) != 1 or zones[0] == "Etc/Unknown":
        return None
    try:
        ZoneInfo(zones[0])
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return zones[0]


@lru_cache(maxsize=1)
def _prefix_lengths() -> dict[str, tuple[int, ...]]:
    """For each first digit, the lengths of the time-zone table's prefixes, longest first."""
    lengths: dict[str, set[int]] = {}
    for prefix in TIMEZONE_DATA:
        lengths.setdefault(prefix[:1], set()).add(len(prefix))
    return {
        digit: tuple(sorted((n for n in found if n <= TIMEZONE_LONGEST_PREFIX), reverse=True))
        for digit, found in lengths.items()
    }


def _geographic_zones(e164: str) -> tuple[str, ...]:
    """`time_zones_for_geographical_number` on an E.164 string: longest listed prefix wins.

    Only prefix lengths the table has are tried, so a North American number
    costs a few lookups instead of nine.
    """
    digits = e164[1:]
    for length in _prefix_lengths().get(digits[:1], ()):
        zones = TIMEZONE_DATA.get(digits[:length])
        if zones is not None:
            return zones
    return _UNKNOWN_ZONES


_UNKNOWN_ZONES = ("Etc/Unknown",)
_MISSING = object()


class PhoneNormaliser:
    """Normalises phone cells for one default region; one instance per worker process."""

    def __init__(self, default_region: str) -> None:
        self.default_region = default_region.upper()
        self._national_ok = phonenumbers.country_code_for_region(self.default_region) == 1
        self._rules = _nanp_rules()
        self._geographical = {
            number_type: phonenumbers.is_number_type_geographical(number_type, 1)
            for number_type in vars(PhoneNumberType).values()
            if isinstance(number_type, int)
        }
        self._country_zone = single_zone(tuple(TIMEZONE_DATA.get("1", ())))
        # The zone table is keyed by prefixes of at most this many national digits, so the
        # zone of a number depends on those digits only: a cache keyed by them is exact.
        self._zone_key_length = max(_prefix_lengths().get("1", (1,))) - 1
        self._zones: dict[str, str | None] = {}

    def normalise(self, text: str) -> Phone:
        """The number in `text` (a non-empty cell), or PhoneError."""
        fast = self.fast(text)
        if fast is not None:
            return fast
        return self.library(text)

    def fast(self, text: str) -> Phone | None:
        """A canonical country-code-1 spelling, validated as the library would; None defers."""
        match = _CANONICAL.fullmatch(text)
        if match is None:
            return None
        plus, area, area_plain, exchange, line = match.groups()
        if not plus:
            if not self._national_ok:
                return None
        elif text[1] != "1":
            return None  # "+415...": a country code other than 1
        national = (area or area_plain) + exchange + line
        if national[0] in "01":
            return None  # the library may strip a national prefix here: let it decide
        # The library's region_code_for_number, then is_valid_number for that region.
        for rules in self._rules:
            if rules.leading_digits is None:
                number_type = rules.number_type(national)
                if number_type != PhoneNumberType.UNKNOWN:
                    break
            elif rules.leading_digits.match(national):
                number_type = rules.number_type(national)
                break
        else:
            return None  # no region claims it: invalid, and the library says why
        if number_type == PhoneNumberType.UNKNOWN:
            return None
        if self._geographical[number_type]:
            key = national[: self._zone_key_length]
            zone = self._zones.get(key, _MISSING)
            if zone is _MISSING:
                zone = self._zones[key] = single_zone(_geographic_zones("+1" + national))
        else:
            zone = self._country_zone
        return Phone("+1" + national, zone, _LINE_TYPES.get(number_type, LineType.OTHER))

    def library(self, text: str) -> Phone:
        """The reference path: parse, validate and format with `phonenumbers`."""
        try:
            number = phonenumbers.parse(text, self.default_region)
        except phonenumbers.NumberParseException as err:
            raise PhoneError("not a phone number") from err
        if number.extension:
            raise PhoneError("phone number has an extension")
        if not phonenumbers.is_valid_number(number):
            raise PhoneError("not a valid phone number")
        e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
        zone = single_zone(tuple(time_zones_for_number(number)))
        return Phone(e164, zone, _line_type(phonenumbers.number_type(number)))


def _line_type(number_type: PhoneNumberType) -> LineType:
    return _LINE_TYPES.get(number_type, LineType.OTHER)
