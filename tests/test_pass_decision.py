"""The per-contact decision of a pass (csm.passes.decision), without a database.

Every input is named and built here: contacts, the pass's window, the policy (parsed
from its TOML text, read into a `BatchGate` as a batch would be, with history written
by hand) and the instants at which the contact is checked.
"""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from csm.compliance.caps import PastAttempt
from csm.compliance.gate import BatchGate
from csm.compliance.policy import PRESETS, ContactPolicy
from csm.passes.contact import Contact, Device
from csm.passes.decision import (
    ENDS_CONTACT,
    NEXT_DEVICE,
    RETRYABLE,
    Hold,
    device_hold,
    opens_at,
    skip_reason,
    tries_next_device,
    wait_note,
)
from csm.strategy.model import Window
from csm.vocabulary import SkipReason

CHICAGO = ZoneInfo("America/Chicago")
NEW_YORK = ZoneInfo("America/New_York")
#: 15:00 in Chicago, 16:00 in New York, on a Tuesday.
NOON_ISH = datetime(2026, 3, 10, 20, 0, tzinfo=UTC)
PHONE = Device(11, "wireless", "+13125550101")
LANDLINE = Device(12, "landline", "+13125550102")


def contact(**changes: object) -> Contact:
    fields: dict = {
        "seq": 1,
        "contact_id": 7,
        "zone": CHICAGO,
        "consented": True,
        "devices": [PHONE, LANDLINE],
    }
    fields.update(changes)
    return Contact(**fields)


def gate(policy_text: str = "", **history: list[PastAttempt]) -> BatchGate:
    """The checks of one batch under the policy `policy_text`, with per-contact history."""
    checks = BatchGate(policy=ContactPolicy.model_validate(tomllib.loads(policy_text)))
    checks.history.update({int(k.removeprefix("c")): v for k, v in history.items()})
    return checks


def decide(
    who: Contact,
    *,
    checks: BatchGate | None = None,
    window: Window | None = None,
    at: datetime = NOON_ISH,
    channel: str = "voice",
) -> str | None:
    """The decision at `at`, the window read on the contact's clock."""
    local = at.astimezone(who.zone)
    return skip_reason(
        who,
        channel=channel,
        window=window,
        window_time=local.time() if window else None,
        local=local,
        checks=checks,
    )


# -- whether a contact is attempted ------------------------------------------------


def test_a_contact_with_consent_a_device_and_open_hours_is_attempted() -> None:
    assert decide(contact(), checks=gate()) is None
    assert decide(contact()) is None  # the checks off (benchmarks) leave only the pass's rules


def test_suppression_comes_first_then_consent() -> None:
    assert decide(contact(suppressed=True, consented=False)) == SkipReason.SUPPRESSED
    assert decide(contact(consented=False)) == SkipReason.NO_CONSENT


def test_a_final_outcome_a_lease_or_a_reservation_blocks_before_devices_are_looked_at() -> None:
    for reason in (SkipReason.FINAL, SkipReason.FINAL_ELSEWHERE, SkipReason.LEASED):
        checks = gate()
        checks.blocked[7] = reason
        assert decide(contact(devices=[]), checks=checks) == reason
    checks = gate()
    checks.blocked[8] = SkipReason.RESERVED  # another contact's block is not this one's
    assert decide(contact(), checks=checks) is None


def test_no_device_left_says_whether_suppression_took_them() -> None:
    assert decide(contact(devices=[])) == SkipReason.NO_ELIGIBLE_DEVICE
    assert decide(contact(devices=[], suppressed_devices=2)) == SkipReason.SUPPRESSED


def test_the_pass_window_is_read_on_its_own_clock_end_excluded() -> None:
    open_now = Window(start=time(14, 0), end=time(16, 0))
    assert decide(contact(), window=open_now) is None
    ended = Window(start=time(9, 0), end=time(15, 0))  # 15:00 in Chicago: just closed
    assert decide(contact(), window=ended) == SkipReason.OUTSIDE_WINDOW
    assert decide(contact(zone=NEW_YORK), window=open_now) == SkipReason.OUTSIDE_WINDOW
    assert decide(contact(zone=NEW_YORK), window=Window(start=time(15), end=time(17))) is None


def test_the_policy_hours_follow_the_contact_state_and_clock() -> None:
    late = at_local(CHICAGO, time(20, 30))
    assert decide(contact(), checks=gate(), at=late) is None  # default 08:00-21:00
    florida = gate(PRESETS["florida"])
    assert decide(contact(state="FL"), checks=florida, at=late) == SkipReason.OUTSIDE_WINDOW
    assert decide(contact(state="TX"), checks=florida, at=late) is None
    early = at_local(CHICAGO, time(7, 59))
    assert decide(contact(), checks=gate(), at=early) == SkipReason.OUTSIDE_WINDOW
    assert decide(contact(), checks=gate(), at=early, channel="email") is None  # any time


def test_a_holiday_of_the_policy_skips_on_the_contact_calendar() -> None:
    holiday = gate('holidays = ["2026-03-10"]')
    assert decide(contact(), checks=holiday) == SkipReason.HOLIDAY
    next_day = at_local(CHICAGO, time(12, 0)) + timedelta(days=1)
    assert decide(contact(), checks=holiday, at=next_day) is None


def test_the_window_is_checked_before_the_policy_hours() -> None:
    holiday = gate('holidays = ["2026-03-10"]')
    closed = Window(start=time(9, 0), end=time(10, 0))
    assert decide(contact(), checks=holiday, window=closed) == SkipReason.OUTSIDE_WINDOW


# -- which device, and after which result ------------------------------------------


def tried(n: int, at: datetime, device: str = PHONE.address, result: str = "no_answer") -> list:
    return [PastAttempt(at - timedelta(hours=i + 1), "voice", device, result) for i in range(n)]


def test_no_history_holds_no_device() -> None:
    checks = gate(PRESETS["reg_f"])
    assert device_hold(checks, contact(), PHONE, channel="voice", at=NOON_ISH) is None
    assert device_hold(None, contact(), PHONE, channel="voice", at=NOON_ISH) is None


def test_an_account_cap_holds_every_device_of_the_contact() -> None:
    checks = gate(PRESETS["reg_f"], c7=tried(7, NOON_ISH))
    hold = device_hold(checks, contact(), LANDLINE, channel="voice", at=NOON_ISH)
    assert hold == Hold("reg_f_7_in_7", per_device=False)
    assert checks.reason(hold.rule) == "capped:reg_f_7_in_7"
    assert device_hold(checks, contact(), PHONE, channel="sms", at=NOON_ISH) is None


def test_a_device_cap_holds_that_device_only() -> None:
    policy = '[[caps]]\nname = "two_a_day"\nmax = 2\nper = "device"\n'
    checks = gate(policy, c7=tried(2, NOON_ISH))
    assert device_hold(checks, contact(), PHONE, channel="voice", at=NOON_ISH) == Hold(
        "two_a_day", per_device=True
    )
    assert device_hold(checks, contact(), LANDLINE, channel="voice", at=NOON_ISH) is None


def test_the_conversation_pause_holds_and_says_so() -> None:
    checks = gate(PRESETS["reg_f"], c7=tried(1, NOON_ISH, result="delivered_person"))
    hold = device_hold(checks, contact(), PHONE, channel="voice", at=NOON_ISH)
    assert hold is not None and not hold.per_device
    assert checks.reason(hold.rule) == SkipReason.RECENT_CONVERSATION


def test_an_attempt_of_the_pass_counts_for_the_next_device() -> None:
    policy = '[[caps]]\nname = "one_a_day"\nmax = 1\n'
    checks = gate(policy)
    assert device_hold(checks, contact(), PHONE, channel="voice", at=NOON_ISH) is None
    checks.attempted(7, NOON_ISH, "voice", PHONE.address, "busy")
    hold = device_hold(checks, contact(), LANDLINE, channel="voice", at=NOON_ISH)
    assert hold == Hold("one_a_day", per_device=False)


@pytest.mark.parametrize(
    ("result", "next_device"),
    [
        ("busy", True),
        ("no_answer", True),
        ("bad_device", True),
        ("undelivered_machine", True),
        ("bounced", True),
        ("delivered_person", False),
        ("delivered_machine", False),
        ("agent_connected", False),
        ("opted_out", False),
        ("success", False),
        ("unknown", False),
    ],
)
def test_which_results_move_on_to_the_next_device(result: str, next_device: bool) -> None:
    assert tries_next_device(result) is next_device


def test_the_result_sets_agree() -> None:
    assert RETRYABLE <= NEXT_DEVICE  # a retry is a device the pass moved on from
    assert not ENDS_CONTACT & NEXT_DEVICE
    assert "unknown" in ENDS_CONTACT  # never resent: an unknown outcome may have reached


# -- when the windows open ----------------------------------------------------------


def at_local(zone: ZoneInfo, clock: time, day: date = date(2026, 3, 10)) -> datetime:
    return datetime.combine(day, clock, zone).astimezone(UTC)


def test_open_windows_open_now() -> None:
    now = at_local(CHICAGO, time(12))
    window = Window(start=time(9), end=time(17))
    assert opens_at(now, window=window, window_zone=CHICAGO, hours=None, zone=CHICAGO) == now
    assert opens_at(now, window=None, window_zone=None, hours=None, zone=CHICAGO) == now


def test_the_later_of_window_and_hours_opens() -> None:
    now = at_local(CHICAGO, time(6))
    window = Window(start=time(7), end=time(17))
    hours = (time(8), time(21))
    both = opens_at(now, window=window, window_zone=CHICAGO, hours=hours, zone=CHICAGO)
    assert both == at_local(CHICAGO, time(8))
    alone = opens_at(now, window=window, window_zone=CHICAGO, hours=None, zone=CHICAGO)
    assert alone == at_local(CHICAGO, time(7))


def test_a_window_in_another_zone_opens_on_that_clock() -> None:
    now = at_local(CHICAGO, time(6))  # 07:00 in New York
    window = Window(start=time(8), end=time(17), zone="America/New_York")
    opens = opens_at(now, window=window, window_zone=NEW_YORK, hours=None, zone=CHICAGO)
    assert opens == at_local(NEW_YORK, time(8))


def test_the_wait_note_says_what_for_how_many_and_until_when_only() -> None:
    now = at_local(CHICAGO, time(6))
    opens = at_local(CHICAGO, time(8))
    note = wait_note(opens, now, zone=CHICAGO, hours=(time(8), time(21)), left=1200)
    assert note == (
        "waiting for calling hours: 1,200 contacts left, the next open at 08:00 on their"
        " clock (13:00 UTC)"
    )
    note = wait_note(opens, now, zone=CHICAGO, hours=(time(7), time(21)), left=1)
    assert note is not None and note.startswith("waiting for its window: 1 contact left,")
    assert wait_note(now, now, zone=CHICAGO, hours=None, left=5) is None
