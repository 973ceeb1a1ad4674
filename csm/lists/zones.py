"""Time zones of contacts: a zone named in the file, or one inferred from a US ZIP code.

A zone from the file is checked against the system's tz database and spelled
as the database spells it (`america/new_york` becomes `America/New_York`), so
compliance windows later compare like with like.

ZIP → zone comes from `ziptz` (PyPI `ziptz-us`): tables shipped in the wheel,
no network. Five digits are exact; the rare ZIP whose prefix was never
assigned gives no zone. Only used when the default region is the US or a US
territory: elsewhere five digits are some other country's postal code.
"""

from __future__ import annotations

import re
import zoneinfo
from functools import lru_cache

import ziptz

#: Regions whose postal codes are US ZIP codes.
ZIP_REGIONS = frozenset({"US", "PR", "VI", "GU", "AS", "MP"})

_ZIP = re.compile(r"(\d{5})(?:-?\d{4})?")


@lru_cache(maxsize=1)
def _known_zones() -> dict[str, str]:
    """Every zone the tz database has, keyed case-insensitively."""
    return {name.lower(): name for name in zoneinfo.available_timezones()}


@lru_cache(maxsize=4096)
def canonical_zone(text: str) -> str | None:
    """The tz database's spelling of zone `text`, or None when there is no such zone."""
    known = _known_zones().get(text.lower())
    if known is not None:
        return known
    try:  # a zone the database has but does not list (e.g. a link), exactly as spelled
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None
    return text


@lru_cache(maxsize=65536)
def zip_zone(postal_code: str) -> str | None:
    """The zone of a US ZIP (`94110` or ZIP+4 `94110-1234`), or None if it names none."""
    match = _ZIP.fullmatch(postal_code)
    if match is None:
        return None
    try:
        zone = ziptz.zone(match.group(1))
    except ziptz.ZipError:
        return None
    return canonical_zone(zone) if zone else None
