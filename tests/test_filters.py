"""The filter language on real PostgreSQL: each filter selects exactly the right contacts.

Fixtures: a small seeded list whose expected answers are computed here in plain
Python, independently of the SQL compiler.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

from csm.filters import FilterError, check_filter
from csm.selection import selection_query
from csm.tables import Attempt, Contact, ContactList, Device, ListMember

GROUPS = {
    "reached": ["delivered_person", "agent_connected", "success"],
    "machine": ["delivered_machine", "undelivered_machine"],
}
TODAY = date(2026, 11, 25)
SUB_CAMPAIGN = 900_001


@dataclass
class Person:
    id: int = 0
    account: str = ""
    timezone: str = "America/Chicago"
    consent_sms: bool = True
    kinds: set[str] = field(default_factory=set)
    attributes: dict[str, Any] = field(default_factory=dict)
    results: list[tuple[date, str]] = field(default_factory=list)  # oldest first

    @property
    def attempts(self) -> int:
        return sum(1 for _, r in self.results if r not in ("skipped", "not_attempted"))

    @property
    def attempts_today(self) -> int:
        return sum(
            1 for d, r in self.results if d == TODAY and r not in ("skipped", "not_attempted")
        )

    @property
    def last_result(self) -> str | None:
        return self.results[-1][1] if self.results else None

    def ever(self, group: str) -> bool:
        return any(r in GROUPS[group] for _, r in self.results)


def _people(seed: int = 7, count: int = 240) -> list[Person]:
    rng = random.Random(seed)
    people = []
    for n in range(count):
        person = Person(
            account=f"F{seed}-{n}-{uuid.uuid4().hex[:6]}",
            timezone=rng.choice(["America/Chicago", "America/New_York", "America/Denver"]),
            consent_sms=rng.random() < 0.7,
            kinds={k for k in ("wireless", "landline", "email") if rng.random() < 0.6},
        )
        attributes: dict[str, Any] = {}
        if rng.random() < 0.9:
            attributes["balance"] = rng.choice([0, 50, 99.5, 100, 100.0, 250, 1000])
        if rng.random() < 0.9:
            attributes["state"] = rng.choice(["NY", "CA", "TX", "IL"])
        if rng.random() < 0.9:
            attributes["company"] = rng.choice(["Acme", "Acme Inc", "Apex", "Beta Inc", "Zed"])
        if rng.random() < 0.8:
            attributes["due_date"] = (
                date(2026, 11, 1) + timedelta(days=rng.randrange(60))
            ).isoformat()
        vip = rng.random()
        if vip < 0.3:
            attributes["vip"] = True
        elif vip < 0.4:
            attributes["vip"] = None
        elif vip < 0.6:
            attributes["vip"] = False
        person.attributes = attributes
        codes = [
            "no_answer",
            "busy",
            "delivered_machine",
            "delivered_person",
            "abandoned",
            "skipped",
            "success",
            "failed",
        ]
        for _ in range(rng.choice([0, 0, 1, 2, 3, 4])):
            person.results.append(
                (TODAY - timedelta(days=rng.choice([0, 0, 1, 2])), rng.choice(codes))
            )
        person.results.sort(key=lambda item: item[0])
        people.append(person)
    return people


@pytest.fixture(scope="module")
async def seeded(engine: AsyncEngine) -> tuple[int, list[Person]]:
    people = _people()
    async with engine.begin() as connection:
        list_id = await connection.scalar(
            insert(ContactList.__table__)
            .values(name=f"filters-{uuid.uuid4().hex[:8]}")
            .returning(ContactList.__table__.c.id)
        )
        for person in people:
            person.id = await connection.scalar(
                insert(Contact.__table__)
                .values(
                    account_key=person.account,
                    timezone=person.timezone,
                    consent_sms=person.consent_sms,
                    attributes=person.attributes,
                )
                .returning(Contact.__table__.c.id)
            )
            await connection.execute(
                insert(ListMember.__table__).values(list_id=list_id, contact_id=person.id)
            )
            for position, kind in enumerate(sorted(person.kinds), start=1):
                await connection.execute(
                    insert(Device.__table__).values(
                        contact_id=person.id,
                        position=position,
                        kind=kind,
                        value=f"{kind}-{person.id}",
                    )
                )
            for number, (day, result) in enumerate(person.results):
                await connection.execute(
                    insert(Attempt.__table__).values(
                        sub_campaign_id=SUB_CAMPAIGN,
                        campaign_id=1,
                        day=day,
                        pass_number=1,
                        contact_id=person.id,
                        device_id=0,
                        try_number=number,
                        channel="voice",
                        result=result,
                    )
                )
    return list_id, people


def _num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


CASES: list[tuple[str, Callable[[Person], bool]]] = [
    ("last_result in ('no_answer', 'busy')", lambda p: p.last_result in ("no_answer", "busy")),
    (
        "last_group = 'machine' and attempts < 3",
        lambda p: p.last_result in GROUPS["machine"] and p.attempts < 3,
    ),
    (
        "attempts_today = 0 or last_result = 'abandoned'",
        lambda p: p.attempts_today == 0 or p.last_result == "abandoned",
    ),
    (
        "attributes.balance >= 100 and attributes.state not in ('NY', 'CA')",
        lambda p: (
            _num(p.attributes.get("balance"))
            and p.attributes["balance"] >= 100
            and p.attributes.get("state") not in ("NY", "CA")
        ),
    ),
    (
        "attributes.company like 'A%' and not attributes.company like '%Inc'",
        lambda p: (
            str(p.attributes.get("company", "")).startswith("A")
            and not str(p.attributes.get("company", "")).endswith("Inc")
        ),
    ),
    (
        "not ever('reached') and has_wireless and consent.sms",
        lambda p: not p.ever("reached") and "wireless" in p.kinds and p.consent_sms,
    ),
    (
        "attributes.due_date < '2026-12-01' and timezone = 'America/Chicago'",
        lambda p: (
            p.attributes.get("due_date", "9999") < "2026-12-01" and p.timezone == "America/Chicago"
        ),
    ),
    ("attributes.vip is null", lambda p: p.attributes.get("vip") is None),
    ("", lambda p: True),
    ("attributes.vip", lambda p: p.attributes.get("vip") is True),
    ("last_group != 'reached'", lambda p: p.last_result not in GROUPS["reached"]),
    ("last_result is null", lambda p: p.last_result is None),
    ("attributes.balance = 100", lambda p: p.attributes.get("balance") == 100),
    ("not (has_email or has_landline)", lambda p: not ({"email", "landline"} & p.kinds)),
    ("ATTEMPTS >= 2 AND NOT consent.sms", None),  # keywords are case-insensitive, fields not
]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [c for c in CASES if c[1] is not None],
    ids=[c[0] or "<empty>" for c in CASES if c[1] is not None],
)
async def test_filter_selects_exactly(
    engine: AsyncEngine,
    seeded: tuple[int, list[Person]],
    expression: str,
    expected: Callable[[Person], bool],
) -> None:
    list_id, people = seeded
    node = check_filter(expression, GROUPS)
    query = selection_query(
        list_id=list_id, node=node, response_groups=GROUPS, sub_campaign_id=SUB_CAMPAIGN, day=TODAY
    )
    async with engine.connect() as connection:
        selected = set((await connection.execute(query)).scalars())
    wanted = {p.id for p in people if expected(p)}
    assert selected == wanted
    assert 0 < len(wanted) <= len(people)


async def test_before_launch_nobody_has_attempts(
    engine: AsyncEngine, seeded: tuple[int, list[Person]]
) -> None:
    list_id, people = seeded
    query = selection_query(
        list_id=list_id,
        node=check_filter("attempts = 0 and not ever('reached')", GROUPS),
        response_groups=GROUPS,
    )
    async with engine.connect() as connection:
        assert set((await connection.execute(query)).scalars()) == {p.id for p in people}


def test_field_names_are_case_sensitive_keywords_are_not() -> None:
    check_filter("attempts >= 2 AND NOT consent.sms", GROUPS)
    with pytest.raises(FilterError, match="unknown field 'ATTEMPTS'"):
        check_filter("ATTEMPTS >= 2", GROUPS)


HOSTILE = [
    "'; DROP TABLE contacts; --",
    "x' OR '1'='1",
    "\\'; SELECT pg_sleep(10); --",
    "$1",
    "%",
    "Robert'); DELETE FROM list_members; --",
    "\u202e\u0000"[:1],
]


@pytest.mark.parametrize("value", HOSTILE)
async def test_sql_in_a_string_literal_is_only_data(
    engine: AsyncEngine, seeded: tuple[int, list[Person]], value: str
) -> None:
    list_id, people = seeded
    quoted = "'" + value.replace("'", "''") + "'"
    expression = (
        f"attributes.company = {quoted} or attributes.company like {quoted} "
        f"or timezone in ({quoted}) or account != {quoted}"
    )
    query = selection_query(
        list_id=list_id,
        node=check_filter(expression, GROUPS),
        response_groups=GROUPS,
        sub_campaign_id=SUB_CAMPAIGN,
        day=TODAY,
    )
    async with engine.connect() as connection:
        selected = set((await connection.execute(query)).scalars())
        remaining = await connection.scalar(
            text("SELECT count(*) FROM list_members WHERE list_id = :l"), {"l": list_id}
        )
    assert selected == {p.id for p in people}  # `account != value` holds for everyone
    assert remaining == len(people)


ERRORS = [
    ("atempts = 0", "unknown field 'atempts' at column 1 (did you mean 'attempts'?)"),
    (
        "attempts = 0 and last_result = 'no_anser'",
        "unknown result code 'no_anser' at column 32 (did you mean 'no_answer'?)",
    ),
    ("ever('reachd')", "unknown response group 'reachd' at column 6 (did you mean 'reached'?)"),
    ("attempts = 'three'", "'attempts' is a whole number; compare it with one at column 12"),
    (
        "(attempts = 0",
        "expected ')' to close the parenthesis, found the end of the filter at column 14",
    ),
    ("attempts = 0 attempts", "unexpected 'attempts' at column 14"),
    ("last_result = no_answer", "expected a value, found 'no_answer' at column 15"),
    ("attributes.name like 5", "'like' needs a quoted pattern at column 22"),
    ("attempts is null", "'attempts' is never null at column 1"),
    ("attempts", "'attempts' is not a yes/no field at column 1"),
    ("timezone = 'a", "unterminated string at column 12"),
    ("has_wireless > true", "'has_wireless' is yes/no"),
    ("attributes.a.b = 1", "must name one attribute"),
    ("call('x')", "unknown function 'call' at column 1"),
    ("attempts = 1; drop table contacts", "unexpected character ';' at column 13"),
]


@pytest.mark.parametrize(("expression", "message"), ERRORS)
def test_errors_point_at_the_column(expression: str, message: str) -> None:
    with pytest.raises(FilterError) as caught:
        check_filter(expression, GROUPS)
    assert message in str(caught.value)
