"""The cap checker never lets through a schedule that breaks a cap, and blocks only when it must.

Hypothesis draws a policy (caps of every kind, a conversation pause) and a
schedule of attempts over three weeks in a zone with DST changes; the checker
decides each attempt in time order, as a pass does. An independent brute-force
check then looks at every period of every cap.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import example, given, settings
from hypothesis import strategies as st

from csm.compliance.caps import CapRules, PastAttempt, blocking_rule
from csm.compliance.policy import Cap, ContactPolicy, ConversationPause

ZONES = [ZoneInfo("America/New_York"), ZoneInfo("Pacific/Honolulu"), ZoneInfo("Europe/London")]
CHANNELS = ["voice", "dialer", "sms", "email"]
RESULTS = ["no_answer", "busy", "delivered_machine", "delivered_person", "success", "unknown"]
START = datetime(2026, 10, 20, tzinfo=UTC)  # the three weeks span the US and EU DST ends

caps = st.builds(
    Cap,
    name=st.sampled_from(["a", "b", "c"]),
    max=st.integers(1, 4),
    period=st.sampled_from(["day", "24h", "7d", "3d", "90m"]),
    channels=st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=4, unique=True),
    per=st.sampled_from(["account", "device"]),
)
policies = st.builds(
    ContactPolicy,
    caps=st.lists(caps, max_size=3, unique_by=lambda cap: cap.name),
    conversation_pause=st.none()
    | st.builds(
        ConversationPause,
        days=st.integers(1, 7),
        channels=st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=2, unique=True),
    ),
)
attempts = st.lists(
    st.tuples(
        st.integers(0, 21 * 24 * 60),  # minutes after START
        st.sampled_from(CHANNELS),
        st.sampled_from(["+15550001", "+15550002"]),
        st.sampled_from(RESULTS),
    ),
    max_size=60,
)


def _breaks(policy: ContactPolicy, done: list[PastAttempt], zone: ZoneInfo) -> str | None:
    """Brute force, independent of the checker: a cap or the pause broken by `done`?

    Periods are half-open: an attempt exactly a rolling period (or the pause's days)
    after another is outside it.
    """
    for cap in policy.caps:
        counted = [a for a in done if a.channel in cap.channels]
        for last in counted:
            if cap.period == "day":
                day = last.at.astimezone(zone).date()
                same = [a for a in counted if a.at.astimezone(zone).date() == day]
            else:
                span = cap.rolling
                assert span is not None
                same = [a for a in counted if last.at - span < a.at <= last.at]
            if cap.per == "device":
                same = [a for a in same if a.device == last.device]
            if len(same) > cap.max:
                return cap.name
    pause = policy.conversation_pause
    if pause is not None:
        span = timedelta(days=pause.days)
        for index, talk in enumerate(done):  # `done` is in time order
            if talk.result in pause.results and any(
                a.at < talk.at + span and a.channel in pause.channels for a in done[index + 1 :]
            ):
                return "conversation_pause"
    return None


@settings(max_examples=500, deadline=None)
@given(policy=policies, schedule=attempts, zone=st.sampled_from(ZONES))
@example(  # exactly at the end of the pause: allowed
    policy=ContactPolicy(conversation_pause=ConversationPause(days=2, channels=["voice"])),
    schedule=[(51, "voice", "+15550001", "delivered_person"), (2931, "voice", "+15550001", "busy")],
    zone=ZONES[0],
)
@example(  # exactly one rolling period later: allowed
    policy=ContactPolicy(caps=[Cap(name="a", max=1, period="24h")]),
    schedule=[(0, "voice", "+15550001", "busy"), (1440, "voice", "+15550001", "busy")],
    zone=ZONES[0],
)
def test_allowed_attempts_never_break_a_cap(
    policy: ContactPolicy, schedule: list[tuple[int, str, str, str]], zone: ZoneInfo
) -> None:
    allowed: list[PastAttempt] = []
    for minutes, channel, device, result in sorted(schedule):
        at = START + timedelta(minutes=minutes)
        rule = blocking_rule(
            CapRules.of(policy), allowed, channel=channel, device=device, at=at, zone=zone
        )
        candidate = PastAttempt(at, channel, device, result)
        if rule is None:
            allowed.append(candidate)
        else:
            # Blocked only when it had to be: letting it through would break that rule.
            assert _breaks(policy, [*allowed, candidate], zone) is not None, rule
    assert _breaks(policy, allowed, zone) is None


def test_a_cap_on_the_local_day_follows_the_contacts_clock() -> None:
    """One attempt per local day: 23:30 and 00:30 in Honolulu are different days."""
    policy = ContactPolicy(caps=[Cap(name="daily", max=1, period="day")])
    zone = ZoneInfo("Pacific/Honolulu")
    evening = datetime(2026, 11, 2, 23, 30, tzinfo=zone)
    done = [PastAttempt(evening, "voice", "+1", "no_answer")]
    check = dict(channel="voice", device="+1", zone=zone)
    assert (
        blocking_rule(CapRules.of(policy), done, at=evening + timedelta(minutes=20), **check)
        == "daily"
    )
    assert (
        blocking_rule(CapRules.of(policy), done, at=evening + timedelta(minutes=60), **check)
        is None
    )


def test_state_caps_hold_only_their_states() -> None:
    policy = ContactPolicy(caps=[Cap(name="fl", max=1, period="24h", states=["FL"])])
    now = datetime(2026, 11, 2, 15, tzinfo=UTC)
    done = [PastAttempt(now - timedelta(hours=2), "voice", "+1", "busy")]
    check = dict(channel="voice", device="+1", at=now, zone=ZoneInfo("America/New_York"))
    assert blocking_rule(CapRules.of(policy), done, state="FL", **check) == "fl"
    assert blocking_rule(CapRules.of(policy), done, state="GA", **check) is None


def test_a_channel_left_out_of_hours_keeps_its_default() -> None:
    policy = ContactPolicy.model_validate({"hours": {"voice": "09:00-20:00"}})
    assert policy.hours_for("voice", None) == (time(9), time(20))
    assert policy.hours_for("sms", None) == (time(8), time(21))  # not lifted by omission
    assert policy.hours_for("email", None) is None
    lifted = ContactPolicy.model_validate({"hours": {"sms": "any"}})
    assert lifted.hours_for("sms", None) is None
