"""Cell normalisation: the fast paths agree with the libraries on everything they accept.

The phone and e-mail fast paths exist only for speed (docs/lists.md). These
tests are their licence: wherever a fast path answers, its answer must be the
library's, on random input (hypothesis) and on an exhaustive sweep of North
American area codes.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from csm.lists import cells, emails
from csm.lists.phones import PhoneError, PhoneNormaliser
from csm.lists.zones import canonical_zone, zip_zone

US = PhoneNormaliser("US")
CA = PhoneNormaliser("CA")
GB = PhoneNormaliser("GB")


def library_or_error(normaliser: PhoneNormaliser, text: str) -> object:
    try:
        return normaliser.library(text)
    except PhoneError as err:
        return err


def assert_phone_agrees(normaliser: PhoneNormaliser, text: str) -> None:
    fast = normaliser.fast(text)
    if fast is not None:
        assert library_or_error(normaliser, text) == fast, text


_digits = st.text(alphabet="0123456789", min_size=3, max_size=3)
_spellings = st.sampled_from(
    [
        "{a}{e}{l}",
        "({a}) {e}-{l}",
        "{a}-{e}-{l}",
        "{a}.{e}.{l}",
        "+1{a}{e}{l}",
        "+1 {a} {e} {l}",
        "+1 ({a}) {e}-{l}",
        "1-{a}-{e}-{l}",
        "1 ({a}) {e} {l}",
        "+{a}{e}{l}",
        "({a} {e}-{l}",
        "+44{a}{e}{l}",
        "{a}{e}{l} x12",
    ]
)


@settings(max_examples=600, deadline=None)
@given(
    spelling=_spellings,
    area=_digits,
    exchange=_digits,
    line=st.text(alphabet="0123456789", min_size=4, max_size=4),
)
def test_phone_fast_path_agrees_with_phonenumbers(
    spelling: str, area: str, exchange: str, line: str
) -> None:
    text = spelling.format(a=area, e=exchange, l=line)
    for normaliser in (US, CA, GB):
        assert_phone_agrees(normaliser, text)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="0123456789+-() .x", min_size=1, max_size=18))
def test_phone_fast_path_agrees_on_arbitrary_text(text: str) -> None:
    for normaliser in (US, GB):
        assert_phone_agrees(normaliser, text)


def test_phone_fast_path_agrees_for_every_area_code() -> None:
    """Every NPA 000-999 with exchanges that sit on pattern boundaries."""
    answered = 0
    for area in range(1000):
        for exchange in ("200", "211", "555", "911", "958", "999"):
            for spelling in (f"{area:03d}{exchange}0100", f"+1 {area:03d} {exchange} 0199"):
                fast = US.fast(spelling)
                if fast is not None:
                    answered += 1
                    assert library_or_error(US, spelling) == fast, spelling
    assert answered > 3000  # the fast path does answer for the bulk of real numbers


def test_phone_results() -> None:
    phone = US.normalise("(415) 555-0100")
    assert phone.e164 == "+14155550100"
    assert phone.zone == "America/Los_Angeles"
    assert US.normalise("+44 20 7946 0958").e164 == "+442079460958"  # library path
    assert US.normalise("8005550100").zone is None  # toll-free: no single zone
    with pytest.raises(PhoneError):
        US.normalise("12345")
    with pytest.raises(PhoneError, match="extension"):
        US.normalise("415 555 0100 ext. 12")


_local = st.text(alphabet="abcXYZ019._+-%'!", min_size=1, max_size=20)
_domain = st.sampled_from(
    [
        "example.com",
        "Example.COM",
        "mail.example.org",
        "ab--cd.com",
        "xn--bcher-kva.example",
        "localhost",
        "x.test",
        "x.local",
        "-bad.com",
        "bad-.com",
        "a.b",
        "1.2.3.4",
        "example",
        "exa_mple.com",
        "münchen.de",
        "a" * 70 + ".com",
    ]
)


@settings(max_examples=800, deadline=None)
@given(local=_local, domain=_domain)
def test_email_fast_path_agrees_with_email_validator(local: str, domain: str) -> None:
    text = f"{local}@{domain}"
    fast = emails.fast(text)
    if fast is not None:
        assert emails.library(text) == fast, text


@settings(max_examples=300, deadline=None)
@given(st.emails())
def test_email_fast_path_agrees_on_generated_addresses(text: str) -> None:
    fast = emails.fast(text)
    if fast is not None:
        assert emails.library(text) == fast


def test_email_results() -> None:
    assert emails.normalise("Alice.Smith@Example.COM") == "alice.smith@example.com"
    assert emails.fast("Alice.Smith@Example.COM") is not None  # the common case is fast
    assert emails.normalise("josé@example.com") == "josé@example.com"  # library path
    for bad in ("not-an-email", "a@b", "a..b@example.com", "a@localhost", "a@x.test"):
        with pytest.raises(emails.EmailError):
            emails.normalise(bad)


def test_flags_numbers_dates_and_formulas() -> None:
    assert [cells.parse_flag(v) for v in ("Yes", "y", "TRUE", "1", "no", "N", "false", "0")] == [
        True,
        True,
        True,
        True,
        False,
        False,
        False,
        False,
    ]
    with pytest.raises(cells.CellError):
        cells.parse_flag("maybe")
    assert cells.parse_number("42") == 42
    assert cells.parse_number("-4.5") == -4.5
    assert cells.parse_number("1e3") == 1000.0
    for bad in ("1,000", "abc", "nan", "inf", "1" * 65):
        with pytest.raises(cells.CellError):
            cells.parse_number(bad)
    assert cells.parse_date("2026-12-31", None) == "2026-12-31"
    assert cells.parse_date("12/31/2026", "%m/%d/%Y") == "2026-12-31"
    with pytest.raises(cells.CellError):
        cells.parse_date("13/45/2026", "%m/%d/%Y")
    for formula in ("=cmd()", "+cmd", "-cmd", "@SUM(A1)", "=1+2"):
        assert cells.is_formula_like(formula), formula
    for safe in ("-12.5", "+14155550100", "plain", "a=b", "x@y"):
        assert not cells.is_formula_like(safe), safe


def test_zones() -> None:
    assert canonical_zone("america/new_york") == "America/New_York"
    assert canonical_zone("UTC") == "UTC"
    assert canonical_zone("Mars/Olympus") is None
    assert canonical_zone("../../etc/passwd") is None
    assert zip_zone("94110") == "America/Los_Angeles"
    assert zip_zone("10001-1234") == "America/New_York"
    assert zip_zone("79835") == "America/Denver"  # an exact five-digit exception
    assert zip_zone("K1A 0B6") is None
    assert zip_zone("00000") is None
